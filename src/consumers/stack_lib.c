/*
 * stack_lib.c - libunwind and libdw loaded on demand, by soname, into
 * the table of stack_lib.h: the one place that knows their symbols.
 *
 * RTLD_LOCAL: their symbols are ours only (libunwind's weak backtrace
 * does not replace glibc's for the program). Each library is loaded
 * whole or not at all, libunwind (capture) before libdw (symbols):
 * without libunwind, capture falls back to backtrace(); without libdw,
 * symbols to dladdr().
 * What dlopen allocates (the loader's data, the libraries' constructors)
 * is allocated in a quiet section: the leak tracker, when it is already
 * on (slab_leak_enable through the API), does not report it at exit.
 */
#define _GNU_SOURCE
#include "stack_lib.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#define UNWIND_SONAME "libunwind.so.8"
#define DW_SONAME     "libdw.so.1"

static pthread_once_t unwinder_once = PTHREAD_ONCE_INIT, symbolizer_once = PTHREAD_ONCE_INIT;
static _Atomic bool unwinder_loaded, symbolizer_loaded;
static _Atomic bool lazy_forbidden;
static char load_error[512] = "not loaded";

bool sn_stack_lib_ready(void)
{
	return sn_unwinder_ready() && sn_symbolizer_ready();
}

bool sn_unwinder_ready(void)
{
	return atomic_load_explicit(&unwinder_loaded, memory_order_acquire);
}

bool sn_symbolizer_ready(void)
{
	return atomic_load_explicit(&symbolizer_loaded, memory_order_acquire);
}

const char *sn_stack_lib_error(void)
{
	return load_error;
}

void sn_stack_lib_forbid_lazy(void)
{
	atomic_store_explicit(&lazy_forbidden, true, memory_order_relaxed);
}

bool sn_stack_lib_lazy_allowed(void)
{
	return !atomic_load_explicit(&lazy_forbidden, memory_order_relaxed);
}

#ifdef SLABNOTIFY_HAVE_UNWIND
struct sn_stack_lib sn_lib;
static Dwfl_Callbacks proc_callbacks;   /* libdw's own, for a live process */

/* A macro's expansion as a string: the symbol libunwind really exports. */
#define SYM_STR_(x) #x
#define SYM_STR(x)  SYM_STR_(x)

struct sym {
	void **slot;
	const char *name;
	bool in_dw;                         /* libdw's, else libunwind's */
};
#define UNW(member, name) { (void **)&sn_lib.member, SYM_STR(name), false }
#define DW(member)        { (void **)&sn_lib.member, #member, true }

static const struct sym syms[] = {
	UNW(backtrace, unw_backtrace), UNW(getcontext, unw_tdep_getcontext),
	UNW(init_local, unw_init_local), UNW(get_reg, unw_get_reg), UNW(step, unw_step),
	DW(dwfl_begin), DW(dwfl_end), DW(dwfl_report_begin), DW(dwfl_report_end),
	DW(dwfl_linux_proc_report), DW(dwfl_linux_proc_find_elf), DW(dwfl_standard_find_debuginfo),
	DW(dwfl_addrmodule), DW(dwfl_module_info), DW(dwfl_module_addrinfo), DW(dwfl_module_addrname),
	DW(dwfl_module_getsrc), DW(dwfl_lineinfo), DW(dwfl_module_addrdie), DW(dwfl_module_nextcu),
	DW(dwarf_diename), DW(dwarf_formstring), DW(dwarf_attr), DW(dwarf_ranges),
};

static void *open_lib(const char *soname)
{
	void *h = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
	if (!h)
		snprintf(load_error, sizeof(load_error), "%s", dlerror());
	return h;
}

/* The symbols of one library (libdw's, else libunwind's) into the table;
 * on failure its slots are cleared again. */
static bool resolve_from(void *h, bool in_dw, const char *soname)
{
	size_t n = sizeof(syms) / sizeof(syms[0]);
	for (size_t i = 0; i < n; i++) {
		if (syms[i].in_dw != in_dw)
			continue;
		if (!(*syms[i].slot = dlsym(h, syms[i].name))) {
			snprintf(load_error, sizeof(load_error), "%s has no %s", soname, syms[i].name);
			for (size_t j = 0; j < n; j++)
				if (syms[j].in_dw == in_dw)
					*syms[j].slot = NULL;
			return false;
		}
	}
	return true;
}

static bool load_one(const char *soname, bool in_dw)
{
	sn_quiet_begin();
	void *h = open_lib(soname);
	bool ok = h && resolve_from(h, in_dw, soname);
	if (h && !ok)
		dlclose(h);
	sn_quiet_end();
	return ok;
}

static void load_unwinder(void)
{
	atomic_store_explicit(&unwinder_loaded, load_one(UNWIND_SONAME, false), memory_order_release);
}

static void load_symbolizer(void)
{
	bool ok = load_one(DW_SONAME, true);
	if (ok) {
		proc_callbacks.find_elf = sn_lib.dwfl_linux_proc_find_elf;
		proc_callbacks.find_debuginfo = sn_lib.dwfl_standard_find_debuginfo;
	}
	atomic_store_explicit(&symbolizer_loaded, ok, memory_order_release);
}

Dwfl *sn_dwfl_begin(void)
{
	return sn_symbolizer_ready() ? sn_lib.dwfl_begin(&proc_callbacks) : NULL;
}
#else
static void load_unwinder(void)
{
	snprintf(load_error, sizeof(load_error), "built without libunwind and libdw");
}

static void load_symbolizer(void)
{
	load_unwinder();
}
#endif

bool sn_stack_lib_load_unwinder(void)
{
	pthread_once(&unwinder_once, load_unwinder);
	return sn_unwinder_ready();
}

bool sn_stack_lib_load_symbolizer(void)
{
	pthread_once(&symbolizer_once, load_symbolizer);
	return sn_symbolizer_ready();
}

/* libunwind first: libdw alone is no use to capture. */
bool sn_stack_lib_load(void)
{
	if (sn_stack_lib_load_unwinder())
		sn_stack_lib_load_symbolizer();
	return sn_stack_lib_ready();
}
