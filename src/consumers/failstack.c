/*
 * failstack.c - the stack filter of fault injection (--fail-stack
 * PATTERN, slab_fault_attr.stack_filter): an allocation is eligible only
 * when a function on its stack has a name matching PATTERN, a shell glob
 * (fnmatch(3)): failslab's require-start/require-end of Linux, by name.
 *
 * Each eligible allocation captures its return addresses (stack.c's
 * raw capture: libunwind, or glibc's backtrace() when it is not loaded). Whether the
 * function at an address matches is decided once per address and
 * pattern, and cached: a lock-free table of words (the address, the
 * pattern's epoch, the answer), so that a call site seen before costs
 * the stack capture and a few loads. Deciding names the function with
 * elfutils' libdwfl (the ELF symbol table: static functions too) or,
 * without it (stack_lib.h) or where it finds nothing, dladdr(); slabnotify's own frames
 * never match (the drop-in's malloc would match "malloc" for every
 * allocation): those of its shared object, or, linked statically into
 * the program, the functions named slab_* and sn_* (its other internal
 * functions are then on the stack too: a pattern should name the
 * program's).
 *
 * Locks: one, around libdwfl (not thread-safe) and the pattern, taken
 * only to decide an address not in the table. fork holds it across
 * (registered by failslab before its notifier: consumer.h's rule).
 */
#define _GNU_SOURCE
#include "consumer.h"
#include "stack.h"
#include "stack_lib.h"

#include <dlfcn.h>
#include <errno.h>
#include <fnmatch.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>

#define DEPTH 48
#define SLOTS 8192                     /* power of two */
#define PROBES 8
#define PATTERN_MAX 256

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char pattern[PATTERN_MAX];      /* under lock */
static _Atomic uint32_t epoch;         /* bumped by every new pattern; 0: none */
/* address << 16 | (epoch & 0x7fff) << 1 | match; 0: empty. */
static _Atomic uint64_t table[SLOTS];

#ifdef SLABNOTIFY_HAVE_UNWIND
static Dwfl *dwfl;                     /* under lock */
static bool dwfl_tried;
#endif

static void fork_prepare(void)
{
	pthread_mutex_lock(&lock);
}

static void fork_parent(void)
{
	pthread_mutex_unlock(&lock);
}

static void fork_child(void)
{
	pthread_mutex_init(&lock, NULL);
}

void sn_fail_stack_atfork(void)
{
	pthread_atfork(fork_prepare, fork_parent, fork_child);
}

int sn_fail_stack_set(const char *p)
{
	if (p && strlen(p) >= PATTERN_MAX)
		return -EINVAL;
	pthread_mutex_lock(&lock);
	if (p)
		strcpy(pattern, p);
	uint32_t e = atomic_load(&epoch) + 1;
	if (!(e & 0x7fff))
		e++;                           /* never 0 in the table's 15 bits */
	atomic_store(&epoch, p ? e : 0);
	pthread_mutex_unlock(&lock);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Naming a return address                                            */
/* ------------------------------------------------------------------ */

/* Is @pc (in function @name) slabnotify's own? */
static bool ours(uintptr_t pc, const char *name)
{
	Dl_info self, at, exe;
	if (!dladdr((void *)&sn_fail_stack_set, &self))
		return false;
	bool linked_in = dladdr((void *)getauxval(AT_ENTRY), &exe) && exe.dli_fbase == self.dli_fbase;
	if (linked_in)
		return name && (strncmp(name, "slab_", 5) == 0 || strncmp(name, "sn_", 3) == 0);
	return dladdr((void *)pc, &at) && self.dli_fbase == at.dli_fbase;
}

#ifdef SLABNOTIFY_HAVE_UNWIND
/* lock held. The module list, made again when an address is in none
 * (a library loaded since). */
static Dwfl_Module *module_of(uintptr_t pc)
{
	if (!dwfl && !dwfl_tried) {
		dwfl_tried = true;
		dwfl = sn_dwfl_begin();
	}
	if (!dwfl)
		return NULL;
	Dwfl_Module *m = sn_lib.dwfl_addrmodule(dwfl, pc);
	if (!m) {
		sn_lib.dwfl_report_begin(dwfl);
		sn_lib.dwfl_linux_proc_report(dwfl, getpid());
		sn_lib.dwfl_report_end(dwfl, NULL, NULL);
		m = sn_lib.dwfl_addrmodule(dwfl, pc);
	}
	return m;
}
#endif

/* lock held. The name of the function at @pc, or NULL. */
static const char *function_at(uintptr_t pc)
{
#ifdef SLABNOTIFY_HAVE_UNWIND
	Dwfl_Module *m = sn_symbolizer_ready() ? module_of(pc) : NULL;
	const char *name = m ? sn_lib.dwfl_module_addrname(m, pc) : NULL;
	if (name)
		return name;
#endif
	Dl_info info;
	return dladdr((void *)pc, &info) ? info.dli_sname : NULL;
}

/* lock held. The name as written, without the suffix of a compiler's
 * clone (parse.constprop.0, parse.isra.0, parse.cold), or as it is. */
static bool name_matches(const char *name)
{
	const char *dot = strchr(name, '.');
	if (dot && (size_t)(dot - name) < 256) {
		char base[256];
		memcpy(base, name, (size_t)(dot - name));
		base[dot - name] = '\0';
		if (fnmatch(pattern, base, 0) == 0)
			return true;
	}
	return fnmatch(pattern, name, 0) == 0;
}

/* Decide @pc for epoch @e (lock taken here). */
static bool decide(uintptr_t pc, uint32_t e)
{
	pthread_mutex_lock(&lock);
	bool match = false;
	if (atomic_load(&epoch) == e) {
		const char *name = function_at(pc - 1);   /* inside the call, not after it */
		match = name && !ours(pc, name) && name_matches(name);
	}
	pthread_mutex_unlock(&lock);
	return match;
}

/* ------------------------------------------------------------------ */
/* The table                                                          */
/* ------------------------------------------------------------------ */

static size_t slot_of(uintptr_t pc)
{
	return (size_t)((pc * 0x9E3779B97F4A7C15ull) >> 40) & (SLOTS - 1);
}

static bool frame_matches(uintptr_t pc, uint32_t e)
{
	uint64_t tag = ((uint64_t)pc << 16) | ((uint64_t)(e & 0x7fff) << 1);
	size_t home = slot_of(pc), victim = home;
	for (size_t i = 0; i < PROBES; i++) {
		size_t k = (home + i) & (SLOTS - 1);
		uint64_t w = atomic_load_explicit(&table[k], memory_order_relaxed);
		if ((w & ~(uint64_t)1) == tag)
			return w & 1;
		if (!w || ((w >> 1) & 0x7fff) != (e & 0x7fff))
			victim = k;                    /* empty or stale: room here */
	}
	bool match = decide(pc, e);
	atomic_store_explicit(&table[victim], tag | match, memory_order_relaxed);
	return match;
}

bool sn_fail_stack_match(void)
{
	uint32_t e = atomic_load_explicit(&epoch, memory_order_acquire);
	if (!e)
		return true;
	void *pc[DEPTH];
	int n = sn_stack_raw(pc, DEPTH);
	for (int i = 1; i < n; i++)                /* 0 is the capture's */
		if (frame_matches((uintptr_t)pc[i], e))
			return true;
	return false;
}
