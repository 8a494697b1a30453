/*
 * stack_lib.h - libunwind and libdw, loaded with dlopen when stacks are
 * first needed, their functions reached through one table (stack_lib.c).
 *
 * Why: linked, they and what libdw brings (libelf, libz, liblzma,
 * libbz2) map about 448 KiB into every process under the drop-in, while
 * only the options with stacks use them. Loading calls dlopen, which
 * allocates and takes the loader's lock: only from a safe point (the
 * drop-in's constructor, an API call such as slab_leak_enable, never
 * malloc or a signal handler). One exception: where captures are rare
 * (--guard alone), libdw waits for the first report that prints a stack,
 * which may be in free() or a fault's signal handler. That report
 * already allocates and ends the program (or, continuing, is rare), no
 * lock of slabnotify's is held there, and the loader's own lock is
 * recursive for a fault inside a library's constructor. Everything else
 * only asks whether the table is there, and without it falls back to
 * glibc's backtrace() and dladdr() (stack.c, symbolize.c, failstack.c).
 */
#ifndef SLABNOTIFY_STACK_LIB_H
#define SLABNOTIFY_STACK_LIB_H

#include <stdbool.h>

#include "consumer.h"

#ifdef SLABNOTIFY_HAVE_UNWIND
#define UNW_LOCAL_ONLY
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <libunwind.h>

/* The headers' prototypes, as pointers. libunwind's public names are
 * macros for per-architecture symbols (unw_step is _ULx86_64_step): the
 * members are named without the prefix. */
struct sn_stack_lib {
	/* libunwind */
	__typeof__(unw_backtrace) *backtrace;
	__typeof__(unw_tdep_getcontext) *getcontext;
	__typeof__(unw_init_local) *init_local;
	__typeof__(unw_get_reg) *get_reg;
	__typeof__(unw_step) *step;
	/* libdw: libdwfl */
	__typeof__(dwfl_begin) *dwfl_begin;
	__typeof__(dwfl_end) *dwfl_end;
	__typeof__(dwfl_report_begin) *dwfl_report_begin;
	__typeof__(dwfl_report_end) *dwfl_report_end;
	__typeof__(dwfl_linux_proc_report) *dwfl_linux_proc_report;
	__typeof__(dwfl_linux_proc_find_elf) *dwfl_linux_proc_find_elf;
	__typeof__(dwfl_standard_find_debuginfo) *dwfl_standard_find_debuginfo;
	__typeof__(dwfl_addrmodule) *dwfl_addrmodule;
	__typeof__(dwfl_module_info) *dwfl_module_info;
	__typeof__(dwfl_module_addrinfo) *dwfl_module_addrinfo;
	__typeof__(dwfl_module_addrname) *dwfl_module_addrname;
	__typeof__(dwfl_module_getsrc) *dwfl_module_getsrc;
	__typeof__(dwfl_lineinfo) *dwfl_lineinfo;
	__typeof__(dwfl_module_addrdie) *dwfl_module_addrdie;
	__typeof__(dwfl_module_nextcu) *dwfl_module_nextcu;
	/* libdw: DWARF */
	__typeof__(dwarf_diename) *dwarf_diename;
	__typeof__(dwarf_formstring) *dwarf_formstring;
	__typeof__(dwarf_attr) *dwarf_attr;
	__typeof__(dwarf_ranges) *dwarf_ranges;
};

/* Filled once by sn_stack_lib_load(); read only after sn_stack_lib_ready(). */
SN_CONSUMER_API extern struct sn_stack_lib sn_lib;

/* A libdwfl session over this process's modules (libdw's own callbacks
 * for /proc/PID/maps), modules not yet reported; NULL without the table. */
SN_CONSUMER_API Dwfl *sn_dwfl_begin(void);
#endif

/* Load both libraries and fill the table, once; true if both are there.
 * Only outside the allocator and signal handlers: see the top. */
SN_CONSUMER_API bool sn_stack_lib_load(void);
/* Each alone, once: libunwind (capture), libdw (symbols). A consumer
 * that captures rarely loads libdw only when a report first prints a
 * stack (stack.c): the same rules, but a report is the end of the run
 * or of a faulting program, where the loader's cost is paid once. */
SN_CONSUMER_API bool sn_stack_lib_load_unwinder(void);
SN_CONSUMER_API bool sn_stack_lib_load_symbolizer(void);
/* Is the table there, both halves? Any context: no loading. */
SN_CONSUMER_API bool sn_stack_lib_ready(void);
/* Is libunwind's half there (capture)? libdw's (symbols)? */
SN_CONSUMER_API bool sn_unwinder_ready(void);
SN_CONSUMER_API bool sn_symbolizer_ready(void);
/* Why loading failed (dlerror's text, or "built without them"). */
SN_CONSUMER_API const char *sn_stack_lib_error(void);
/* The malloc drop-in says so in its constructor: from then on, stacks are
 * never set up on first use (that is inside malloc), only by an explicit
 * sn_stack_init(). The plain library allows it (its malloc is glibc's). */
SN_CONSUMER_API void sn_stack_lib_forbid_lazy(void);
SN_CONSUMER_API bool sn_stack_lib_lazy_allowed(void);

#endif /* SLABNOTIFY_STACK_LIB_H */
