/*
 * failslab.c - fault injection on the notifier chain (Linux's failslab).
 *
 * A consumer on the public API (and consumer.h). slab_fault_inject()
 * registers one notifier that vetoes ALLOC events with ENOMEM according
 * to the kernel's fault-injection knobs (Documentation/fault-injection),
 * checked in the order of the kernel's should_fail():
 *
 *   eligible:   an ALLOC event (never NEWPAGE, never a FREE), without
 *               SLAB_GFP_NOFAIL, of at least min_size bytes, of a cache
 *               whose name starts with cache_filter, with a function
 *               matching stack_filter on its stack (failstack.c).
 *               Ineligible calls change no state at all.
 *   probability 0 never fails;
 *   times       0 left: no more failures (-1: unlimited);
 *   space       while more than the event's size is left, subtract the
 *               size and let the allocation through (as the kernel does,
 *               a remainder not above the size stays and is not used);
 *   interval    > 1: count the calls that got this far, fail only every
 *               interval-th;
 *   probability the chance in percent (a double) that such a call fails.
 *
 * min_size compares the size the program asked for (the event's
 * requested: malloc(17000) is 17000, not its class's 20480); space and the
 * probe count the event's size (what the allocation takes).
 *
 * Reproducibility, per thread. Each thread draws from its own splitmix64
 * stream, seeded from attr->seed and the thread's ordinal (its place in
 * the order in which the program created its threads: the main thread is
 * 0; see consumer.h), and keeps its own interval count and space budget.
 * So a program that creates its threads in a fixed order gets the same
 * failures in every thread on every run, however the threads interleave;
 * the main thread's stream is the one a single-threaded program always
 * had. Only `times` is shared: the failures it allows go to whichever
 * threads get there first.
 *
 * The configuration is published with a sequence count (odd while it is
 * written) and read by the handler without a lock; the per-thread state
 * lives in TLS. So the handler takes no lock: nothing to fork around.
 *
 * Priority: the notifier is registered at INT_MAX / 2, above the
 * accounting handlers (memcg, the leak tracker), so that an injected
 * failure vetoes before anything is charged or recorded and nothing has
 * to be rolled back.
 *
 * Injection only ever sees caches with notification on. Starting it
 * switches notification on for every existing cache that the filter
 * matches, the kmalloc-* size classes and kmalloc-large included (they
 * exist from the start); caches created later need SLAB_NOTIFY (or
 * SLAB_ACCOUNT) or slab_cache_set_notify(). Stopping does not switch
 * notification off again: another consumer may rely on it.
 */
#include "slabnotify.h"
#include "consumer.h"
#include "../probes.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#define FILTER_MAX 128   /* cache names are shorter (64 with the NUL) */

struct fault_config {
	uint64_t active;
	double probability;
	uint64_t interval;
	uint64_t space;
	uint64_t min_size;
	uint64_t seed;
	uint64_t epoch;           /* bumped by every slab_fault_inject() */
	uint64_t has_filter;
	uint64_t filter_never;    /* longer than any cache name: no match */
	uint64_t filter_len;
	uint64_t has_stack;       /* stack_filter given: sn_fail_stack_match() */
	char filter[FILTER_MAX];
};
#define CFG_WORDS (sizeof(struct fault_config) / sizeof(uint64_t))
_Static_assert(sizeof(struct fault_config) % sizeof(uint64_t) == 0, "config in words");

/* Published: a sequence count, odd while written, and the words. */
static _Atomic unsigned cfg_seq;
static _Atomic uint64_t cfg_words[CFG_WORDS];
static _Atomic long times_left = -1;      /* the one shared knob */

static pthread_mutex_t ctl_lock = PTHREAD_MUTEX_INITIALIZER;   /* inject() calls */
static _Atomic unsigned long injected;
static uint64_t epoch_now;    /* under ctl_lock */
static bool registered;       /* under ctl_lock */

/* This thread's draws, interval count and space, for epoch @epoch. */
struct fault_thread {
	uint64_t epoch;
	uint64_t rng;
	unsigned long count;
	uint64_t space;
};
static __thread struct fault_thread tl_fault __attribute__((tls_model("initial-exec")));

/* splitmix64 (Steele, Lea, Flood 2014): tiny, full period, good enough. */
static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

/* Uniform in [0, 100). */
static double rand_percent(uint64_t *s)
{
	return (double)(splitmix64(s) >> 11) * 0x1.0p-53 * 100.0;
}

static void config_publish(const struct fault_config *c)
{
	uint64_t w[CFG_WORDS];
	memcpy(w, c, sizeof(w));
	atomic_fetch_add_explicit(&cfg_seq, 1, memory_order_acq_rel);
	for (size_t i = 0; i < CFG_WORDS; i++)
		atomic_store_explicit(&cfg_words[i], w[i], memory_order_relaxed);
	atomic_fetch_add_explicit(&cfg_seq, 1, memory_order_release);
}

/* A consistent copy of the configuration. */
static void config_read(struct fault_config *c)
{
	uint64_t w[CFG_WORDS];
	for (;;) {
		unsigned s1 = atomic_load_explicit(&cfg_seq, memory_order_acquire);
		if (s1 & 1)
			continue;
		for (size_t i = 0; i < CFG_WORDS; i++)
			w[i] = atomic_load_explicit(&cfg_words[i], memory_order_relaxed);
		sn_fence(__ATOMIC_ACQUIRE);
		if (atomic_load_explicit(&cfg_seq, memory_order_relaxed) == s1)
			break;
	}
	memcpy(c, w, sizeof(*c));
}

static bool filter_match(const struct fault_config *f, const struct slab_cache *c)
{
	if (!f->has_filter)
		return true;
	if (f->filter_never)
		return false;
	const char *name = slab_cache_name(c);
	return name && strncmp(name, f->filter, f->filter_len) == 0;
}

/* Take one of the failures `times` allows. */
static bool take_time(void)
{
	long t = atomic_load_explicit(&times_left, memory_order_relaxed);
	do {
		if (t == 0)
			return false;
		if (t < 0)
			return true;
	} while (!atomic_compare_exchange_weak_explicit(&times_left, &t, t - 1, memory_order_relaxed,
							 memory_order_relaxed));
	return true;
}

/* The kernel's should_fail(), per thread. */
static bool should_fail(const struct slab_event_data *d)
{
	struct fault_config cfg;
	config_read(&cfg);
	if (!cfg.active || d->requested < cfg.min_size || !filter_match(&cfg, d->cache))
		return false;
	if (cfg.has_stack && !sn_fail_stack_match())
		return false;
	struct fault_thread *ft = &tl_fault;
	if (ft->epoch != cfg.epoch) {
		uint64_t ord = sn_thread_ordinal();
		uint64_t mix = ord;
		ft->epoch = cfg.epoch;
		ft->rng = ord ? cfg.seed ^ splitmix64(&mix) : cfg.seed;
		ft->count = 0;
		ft->space = cfg.space;
	}
	if (cfg.probability <= 0.0 || atomic_load_explicit(&times_left, memory_order_relaxed) == 0)
		return false;
	if (ft->space > d->size) {
		ft->space -= d->size;
		return false;
	}
	if (cfg.interval > 1 && ++ft->count % cfg.interval)
		return false;
	if (cfg.probability < 100.0 && rand_percent(&ft->rng) >= cfg.probability)
		return false;
	if (!take_time())
		return false;
	atomic_fetch_add_explicit(&injected, 1, memory_order_relaxed);
	if (SN_PROBE_ACTIVE(fault_injected))
		SN_PROBE3(fault_injected, slab_cache_name(d->cache), d->size, d->requested);
	return true;
}

static int failslab_call(struct slab_notifier *nb, enum slab_event ev,
			 const struct slab_event_data *d)
{
	(void)nb;
	if (ev != SLAB_EVENT_ALLOC || (d->gfp & SLAB_GFP_NOFAIL))
		return SLAB_NOTIFY_DONE;
	if (should_fail(d))
		return slab_notify_from_errno(-ENOMEM);
	return SLAB_NOTIFY_DONE;
}

static struct slab_notifier failslab_nb = {
	.call = failslab_call,
	.priority = INT_MAX / 2,
};

/* fork: only ctl_lock is ours, and the handler never takes it; a child
 * born while another thread held it makes it anew. */
static void fork_child(void)
{
	pthread_mutex_init(&ctl_lock, NULL);
}

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void atfork_register(void)
{
	pthread_atfork(NULL, NULL, fork_child);
	sn_fail_stack_atfork();
}

/* @arg: the new configuration. */
static void notify_on_matching(struct slab_cache *c, void *arg)
{
	if (filter_match(arg, c))
		slab_cache_set_notify(c, true);
}

static int fail_errno(int err)
{
	errno = -err;
	return err;
}

static void config_from_attr(struct fault_config *next, const struct slab_fault_attr *attr)
{
	memset(next, 0, sizeof(*next));
	next->active = 1;
	next->probability = attr->probability;
	next->interval = attr->interval;
	next->space = attr->space;
	next->min_size = attr->min_size;
	next->seed = attr->seed;
	next->epoch = ++epoch_now;
	next->has_stack = attr->stack_filter != NULL;
	if (attr->cache_filter) {
		size_t len = strlen(attr->cache_filter);
		next->has_filter = 1;
		if (len >= FILTER_MAX) {
			next->filter_never = 1;
		} else {
			memcpy(next->filter, attr->cache_filter, len + 1);
			next->filter_len = len;
		}
	}
}

static int inject_stop(void)
{
	struct fault_config off = { .epoch = ++epoch_now };
	config_publish(&off);
	int ret = 0;
	if (registered) {
		ret = slab_notifier_unregister(&failslab_nb);
		if (ret == 0 || ret == -ENOENT) {
			registered = false;
			ret = 0;
		}
	}
	return ret;
}

int slab_fault_inject(const struct slab_fault_attr *attr)
{
	if (attr && !(attr->probability >= 0.0 && attr->probability <= 100.0))
		return fail_errno(-EINVAL);   /* out of range or NaN */

	pthread_mutex_lock(&ctl_lock);
	if (!attr) {
		int ret = inject_stop();
		pthread_mutex_unlock(&ctl_lock);
		return ret ? fail_errno(ret) : 0;
	}

	struct fault_config next;
	config_from_attr(&next, attr);
	pthread_once(&atfork_once, atfork_register);
	int err = sn_fail_stack_set(attr->stack_filter);
	if (err) {
		pthread_mutex_unlock(&ctl_lock);
		return fail_errno(err);
	}
	atomic_store(&times_left, attr->times < 0 ? -1 : attr->times);
	config_publish(&next);

	int ret = 0;
	if (!registered) {
		failslab_nb._next = NULL;
		failslab_nb._gen = 0;
		failslab_nb._flags = 0;
		ret = slab_notifier_register(&failslab_nb);
		if (ret == 0 || ret == -EEXIST) {
			registered = true;
			ret = 0;
		}
	}
	if (ret == 0) {
		slab_cache_for_each(notify_on_matching, &next);
	} else {
		struct fault_config off = { .epoch = ++epoch_now };
		config_publish(&off);
	}
	pthread_mutex_unlock(&ctl_lock);
	return ret ? fail_errno(ret) : 0;
}

unsigned long slab_fault_injected(void)
{
	return atomic_load_explicit(&injected, memory_order_relaxed);
}
