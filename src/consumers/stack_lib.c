/*
 * stack_lib.c - libunwind and libdw loaded on demand, by soname, into
 * the table of stack_lib.h: the one place that knows their symbols.
 *
 * RTLD_LOCAL: their symbols are ours only (libunwind's weak backtrace
 * does not replace glibc's for the program). All or nothing: a table
 * with one library and not the other would make two fallbacks to test.
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

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static _Atomic bool loaded;
static _Atomic bool lazy_forbidden;
static char load_error[512] = "not loaded";

bool sn_stack_lib_ready(void)
{
	return atomic_load_explicit(&loaded, memory_order_acquire);
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

static bool resolve_all(void *unw, void *dw)
{
	for (size_t i = 0; i < sizeof(syms) / sizeof(syms[0]); i++) {
		*syms[i].slot = dlsym(syms[i].in_dw ? dw : unw, syms[i].name);
		if (!*syms[i].slot) {
			snprintf(load_error, sizeof(load_error), "%s has no %s",
				 syms[i].in_dw ? DW_SONAME : UNWIND_SONAME, syms[i].name);
			return false;
		}
	}
	return true;
}

static void load(void)
{
	sn_quiet_begin();
	void *unw = open_lib(UNWIND_SONAME);
	void *dw = unw ? open_lib(DW_SONAME) : NULL;
	bool ok = dw && resolve_all(unw, dw);
	if (ok) {
		proc_callbacks.find_elf = sn_lib.dwfl_linux_proc_find_elf;
		proc_callbacks.find_debuginfo = sn_lib.dwfl_standard_find_debuginfo;
	} else {
		memset(&sn_lib, 0, sizeof(sn_lib));
		if (dw)
			dlclose(dw);
		if (unw)
			dlclose(unw);
	}
	sn_quiet_end();
	atomic_store_explicit(&loaded, ok, memory_order_release);
}

Dwfl *sn_dwfl_begin(void)
{
	return sn_stack_lib_ready() ? sn_lib.dwfl_begin(&proc_callbacks) : NULL;
}
#else
static void load(void)
{
	snprintf(load_error, sizeof(load_error), "built without libunwind and libdw");
}
#endif

bool sn_stack_lib_load(void)
{
	pthread_once(&load_once, load);
	return sn_stack_lib_ready();
}
