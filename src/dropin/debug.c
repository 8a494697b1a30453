/*
 * debug.c - the drop-in's --debug (SLABNOTIFY_DEBUG=FZPU) and --guard
 * (SLABNOTIFY_GUARD=N): the configuration, what malloc.c hands over while
 * either is on (realloc, malloc_usable_size, the sampled allocation), the
 * exit check, and sigaction/signal for SIGSEGV and SIGBUS, so that a
 * program installing its own handler keeps ours for the guard pool's
 * faults and gets every other fault itself.
 *
 * --debug makes the kmalloc classes' debug twins (src/debug/redzone.c)
 * and points malloc's first cache slot at them: malloc, calloc and free
 * take their usual fast paths into other caches. Aligned allocations
 * (memalign and the like) and blocks above 64 KiB are served as without
 * --debug: the core's checks only (see slabnotify(1)).
 */
#define _GNU_SOURCE
#include "dropin.h"
#include "debug/debug.h"
#include "options.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern int __sigaction(int sig, const struct sigaction *act, struct sigaction *old);
/* guard.c */
SN_HIDDEN void *sn_guard_alloc(size_t n, const char *cache, const struct slab_cache *owner);
SN_HIDDEN int64_t sn_guard_next_tick(void);
SN_HIDDEN size_t sn_guard_usable_size(const void *p);
SN_HIDDEN void sn_guard_install_handler(void);
SN_HIDDEN bool sn_guard_sigaction(int sig, const struct sigaction *act, struct sigaction *old);

bool sn_dropin_checking;
static bool debug_on;   /* --debug: the twins of the classes */
static bool guard_on;
static _Atomic bool exit_checked;

/* ------------------------------------------------------------------ */
/* Configuration                                                      */
/* ------------------------------------------------------------------ */

static void warn(const char *var, const char *val, const char *what)
{
	char buf[256];
	int n = snprintf(buf, sizeof(buf), "slabnotify: ignoring %s=%s: %s\n", var, val, what);
	if (n > 0 && write(STDERR_FILENO, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1) < 0)
		return;
}

static void configure_debug(void)
{
	const char *v = getenv(SN_ENV_DEBUG);
	slab_flags_t flags;
	if (!v || !strcmp(v, "0"))
		return;
	if (!sn_parse_debug_letters(v, &flags)) {
		warn(SN_ENV_DEBUG, v, "not a set of the letters F, Z, P, U");
		return;
	}
	bool accounted = sn_malloc_slot0 == SN_SLOT_KMALLOC_CG;
	unsigned first;
	if (!sn_debug_make_twins(accounted, flags, &first))
		return;
	/* Waiting slots stay charged: a quarter of the limit at most. */
	if (sn_cfg.has_max)
		quarantine_set_limit(sn_cfg.max / 4);
	slab_debug_continue(getenv(SN_ENV_DEBUG_CONTINUE) && strcmp(getenv(SN_ENV_DEBUG_CONTINUE), "0"));
	dropin_set_first_slot(first);
	debug_on = sn_dropin_checking = true;
}

/* The countdown has 31 bits: a rate above 2^30, whose draws reach past
 * them, guards a block at least every 2^31 of a class. */
static int32_t tick_of(int64_t t)
{
	return t > INT32_MAX ? INT32_MAX : (int32_t)t;
}

/*
 * The slots this thread used before --guard was on (the start-up's own
 * blocks, the stack libraries' loading) have counts but no countdown:
 * drawn here, or each would guard its next block, in every process, as
 * if its countdown had run out. The constructor runs before the
 * program's threads; any other slot is drawn at its first allocation.
 */
static void draw_used_slots(void)
{
	struct slab_thread *t = sn_tls_thread;
	for (unsigned i = 0; t && i < SN_NR_SLOTS; i++) {
		struct slab_cpu *cpu = &t->cpu[i];
		if (cpu->alloc_fast || cpu->alloc_slow)
			cpu->sample_tick = tick_of(sn_guard_next_tick() - 1);
	}
}

static void configure_guard(void)
{
	const char *v = getenv(SN_ENV_GUARD);
	long rate;
	if (!v)
		return;
	if (!sn_parse_long(v, 0, LONG_MAX, &rate)) {
		warn(SN_ENV_GUARD, v, "not a rate (1 in N allocations)");
		return;
	}
	if (rate == 0)
		return;
	long live;
	const char *m = getenv(SN_ENV_GUARD_MAX);
	if (m && !sn_parse_long(m, 1, 65536, &live)) {
		warn(SN_ENV_GUARD_MAX, m, "not a number of objects 1..65536");
		m = NULL;
	}
	slab_guard_config((unsigned long)rate, m ? (unsigned)live : 0);
	long per_sec;
	const char *b = getenv(SN_ENV_GUARD_PER_SEC);
	if (b && !sn_parse_long(b, 0, LONG_MAX, &per_sec))
		warn(SN_ENV_GUARD_PER_SEC, b, "not a number of guarded blocks a second (0: no budget)");
	else if (b)
		slab_guard_per_second((unsigned long)per_sec);
	sn_guard_install_handler();
	draw_used_slots();
	guard_on = sn_dropin_checking = true;
	sn_malloc_inline_end = 0;   /* every malloc passes the countdown */
}

/* Called by config.c's constructor, after the limits (the twins follow
 * the accounting) and before the leak tracker (which switches on the
 * notification of the caches that exist). */
void sn_dropin_debug_configure(void)
{
	configure_debug();
	configure_guard();
}

/* ------------------------------------------------------------------ */
/* What malloc.c hands over                                           */
/* ------------------------------------------------------------------ */

/* malloc.c's countdown in @cpu ran out: a guarded block, if one is free.
 * A slot's first allocation finds the countdown at 0, never set: it is
 * drawn then, with this allocation its first step. */
void *sn_dropin_sampled(size_t n, struct slab_cpu *cpu)
{
	if (!guard_on) {
		cpu->sample_tick = INT32_MAX;
		return NULL;
	}
	if (!cpu->alloc_fast && !cpu->alloc_slow) {
		int64_t t = sn_guard_next_tick();
		if (t > 1) {
			cpu->sample_tick = tick_of(t - 2);
			return NULL;
		}
	}
	cpu->sample_tick = tick_of(sn_guard_next_tick() - 1);
	unsigned cls = size_class_by(sn_small_class16, n);
	return sn_guard_alloc(n, sn_class_name(cls), NULL);
}

size_t sn_dropin_usable_size(const char *fn, void *p)
{
	if (sn_guard_owns(p))
		return sn_guard_usable_size(p);
	return sn_usable_size(fn, p);
}

/* Under --debug, always a new block: a stale pointer to the old one is
 * then caught (quarantine, poison). Under --guard alone, only a guarded
 * block moves (its page is made inaccessible); the others grow in place
 * where their class allows, as without --guard, so that a program that
 * grows its buffers does not pay a copy per call. */
void *sn_dropin_realloc(const char *fn, void *p, size_t n)
{
	if (!debug_on && !sn_guard_owns(p)) {
		void *q = sn_krealloc(fn, p, n, sn_malloc_gfp);
		if (!q)
			errno = ENOMEM;
		return q;
	}
	size_t old = sn_dropin_usable_size(fn, p);
	void *q = sn_dropin_alloc(fn, n);
	if (!q)
		return NULL;
	memcpy(q, p, old < n ? old : n);
	sn_free_any(fn, p);
	return q;
}

/* Quarantined objects are checked and released before the exit report,
 * so that the leak tracker does not count them. Once. */
void sn_dropin_debug_exit(void)
{
	if (!sn_dropin_checking || atomic_exchange(&exit_checked, true))
		return;
	slab_debug_flush();
}

__attribute__((destructor)) static void debug_exit(void)
{
	sn_dropin_debug_exit();
}

/* ------------------------------------------------------------------ */
/* The program's signal handlers                                      */
/* ------------------------------------------------------------------ */

SN_EXPORT int sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
	if (sn_guard_sigaction(sig, act, old))
		return 0;
	return __sigaction(sig, act, old);
}

SN_EXPORT sighandler_t signal(int sig, sighandler_t handler)
{
	struct sigaction sa = { .sa_handler = handler, .sa_flags = SA_RESTART }, old;
	sigemptyset(&sa.sa_mask);
	if (sigaction(sig, &sa, &old) != 0)
		return SIG_ERR;
	return old.sa_handler;
}
