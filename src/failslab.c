/*
 * failslab.c - fault injection on the notifier chain (Linux's failslab).
 *
 * A consumer on the public API only. slab_fault_inject() registers one
 * notifier that vetoes ALLOC events with ENOMEM according to the kernel's
 * fault-injection knobs (Documentation/fault-injection), checked in the
 * order of the kernel's should_fail():
 *
 *   eligible:   an ALLOC event (never NEWPAGE, never a FREE), without
 *               SLAB_GFP_NOFAIL, of at least min_size bytes, of a cache
 *               whose name starts with cache_filter. Ineligible calls
 *               change no state at all.
 *   probability 0 never fails;
 *   times       0 left: no more failures (-1: unlimited);
 *   space       while more than the event's size is left, subtract the
 *               size and let the allocation through (as the kernel does,
 *               a remainder not above the size stays and is not used);
 *   interval    > 1: count the calls that got this far, fail only every
 *               interval-th;
 *   probability the chance in percent (a double) that such a call fails.
 *
 * The size is the event's: the cache's object size (for slab_malloc, the
 * size class, not the requested bytes), or the block's usable size for
 * kmalloc-large.
 *
 * Reproducibility: the random numbers come from a splitmix64 generator
 * seeded with attr->seed at every slab_fault_inject(), and it is drawn
 * from only on the probability step, for 0 < probability < 100. All the
 * state (counters, space, times, generator) lives under one mutex, so a
 * single-threaded program fails at exactly the same calls every run; a
 * multi-threaded one does modulo the interleaving of its threads.
 *
 * Priority: the notifier is registered at INT_MAX / 2, above the
 * accounting handlers (memcg, the leak tracker), so that an injected
 * failure vetoes before anything is charged or recorded and nothing has
 * to be rolled back.
 *
 * Injection only ever sees caches with notification on. Starting it
 * switches notification on for every existing cache that the filter
 * matches, the kmalloc-* size classes and kmalloc-large included (they
 * are created first); caches created later need SLAB_NOTIFY (or
 * SLAB_ACCOUNT) or slab_cache_set_notify(). Stopping does not switch
 * notification off again: another consumer may rely on it.
 */
#include "slabnotify.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#define FILTER_MAX 128   /* cache names are shorter (64 with the NUL) */

struct fault_state {
	bool active;
	double probability;
	unsigned long interval;
	unsigned long count;      /* calls that reached the interval step */
	long times;               /* failures left, -1: no limit */
	size_t space;
	size_t min_size;
	bool has_filter;
	bool filter_never;        /* longer than any cache name: no match */
	size_t filter_len;
	char filter[FILTER_MAX];
	uint64_t rng;
};

static pthread_mutex_t ctl_lock = PTHREAD_MUTEX_INITIALIZER;   /* inject() calls */
static pthread_mutex_t state_lock = PTHREAD_MUTEX_INITIALIZER; /* the state */
static struct fault_state st;
static _Atomic unsigned long injected;
static bool registered;   /* under ctl_lock */
/* Set around slab_fault_inject()'s own allocation, which is never failed. */
static __thread bool tl_self __attribute__((tls_model("initial-exec")));
/* Between our fork prepare and parent/child handlers (see there). */
static __thread bool tl_forking __attribute__((tls_model("initial-exec")));

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

static bool filter_match(const struct fault_state *f, const struct slab_cache *c)
{
	if (!f->has_filter)
		return true;
	if (f->filter_never)
		return false;
	const char *name = slab_cache_name(c);
	return name && strncmp(name, f->filter, f->filter_len) == 0;
}

static bool filter_match_locked(const struct slab_cache *c)
{
	return filter_match(&st, c);
}

/* The kernel's should_fail(), on an eligible-looking event. */
static bool should_fail(const struct slab_event_data *d)
{
	bool fail = false;
	pthread_mutex_lock(&state_lock);
	if (!st.active || d->size < st.min_size || !filter_match_locked(d->cache))
		goto out;
	if (st.probability <= 0.0 || st.times == 0)
		goto out;
	if (st.space > d->size) {
		st.space -= d->size;
		goto out;
	}
	if (st.interval > 1 && ++st.count % st.interval)
		goto out;
	if (st.probability < 100.0 && rand_percent(&st.rng) >= st.probability)
		goto out;
	if (st.times > 0)
		st.times--;
	fail = true;
	atomic_fetch_add_explicit(&injected, 1, memory_order_relaxed);
out:
	pthread_mutex_unlock(&state_lock);
	return fail;
}

static int failslab_call(struct slab_notifier *nb, enum slab_event ev,
			 const struct slab_event_data *d)
{
	(void)nb;
	if (ev != SLAB_EVENT_ALLOC || (d->gfp & SLAB_GFP_NOFAIL) || tl_self || tl_forking)
		return SLAB_NOTIFY_DONE;
	if (should_fail(d))
		return slab_notify_from_errno(-ENOMEM);
	return SLAB_NOTIFY_DONE;
}

static struct slab_notifier failslab_nb = {
	.call = failslab_call,
	.priority = INT_MAX / 2,
};

/*
 * fork: a child must not inherit the state lock held by a thread that
 * does not exist there; the handler holds it briefly, with no other lock.
 * ctl_lock is not taken (inject() holds it across an RCU grace period):
 * the child makes it anew. Registered after the core's handlers
 * (slab_fault_inject() makes the kmalloc caches first), so ours run
 * before the core takes its locks. Between our prepare and parent/child
 * handlers the forking thread's allocations are let through untouched
 * (tl_forking): other fork handlers may allocate there while state_lock
 * is held (liburcu's child handler does, from the core's, which runs
 * before ours in the child).
 */
static void fork_prepare(void)
{
	tl_forking = true;
	pthread_mutex_lock(&state_lock);
}

static void fork_parent(void)
{
	pthread_mutex_unlock(&state_lock);
	tl_forking = false;
}

static void fork_child(void)
{
	pthread_mutex_unlock(&state_lock);   /* for TSan's books; then anew */
	pthread_mutex_init(&state_lock, NULL);
	pthread_mutex_init(&ctl_lock, NULL);
	tl_forking = false;
}

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void atfork_register(void)
{
	pthread_atfork(fork_prepare, fork_parent, fork_child);
}

/* @arg: the new state (a copy: no lock of ours under the cache-list lock). */
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

int slab_fault_inject(const struct slab_fault_attr *attr)
{
	if (attr && !(attr->probability >= 0.0 && attr->probability <= 100.0))
		return fail_errno(-EINVAL);   /* out of range or NaN */

	pthread_mutex_lock(&ctl_lock);
	if (!attr) {
		pthread_mutex_lock(&state_lock);
		st.active = false;
		pthread_mutex_unlock(&state_lock);
		int ret = 0;
		if (registered) {
			ret = slab_notifier_unregister(&failslab_nb);
			if (ret == 0 || ret == -ENOENT) {
				registered = false;
				ret = 0;
			}
		}
		pthread_mutex_unlock(&ctl_lock);
		return ret ? fail_errno(ret) : 0;
	}

	struct fault_state next = {
		.active = true,
		.probability = attr->probability,
		.interval = attr->interval,
		.times = attr->times < 0 ? -1 : attr->times,
		.space = attr->space,
		.min_size = attr->min_size,
		.rng = attr->seed,
	};
	if (attr->cache_filter) {
		size_t len = strlen(attr->cache_filter);
		next.has_filter = true;
		if (len >= FILTER_MAX) {
			next.filter_never = true;
		} else {
			memcpy(next.filter, attr->cache_filter, len + 1);
			next.filter_len = len;
		}
	}

	/* Make sure the size classes and kmalloc-large exist, so that
	 * they are switched on below. This allocation is neither failed
	 * nor counted by an older configuration. */
	tl_self = true;
	slab_free(slab_malloc(0, 0));
	tl_self = false;
	pthread_once(&atfork_once, atfork_register);

	pthread_mutex_lock(&state_lock);
	st = next;
	pthread_mutex_unlock(&state_lock);

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
	if (ret == 0)
		slab_cache_for_each(notify_on_matching, &next);
	else {
		pthread_mutex_lock(&state_lock);
		st.active = false;
		pthread_mutex_unlock(&state_lock);
	}
	pthread_mutex_unlock(&ctl_lock);
	return ret ? fail_errno(ret) : 0;
}

unsigned long slab_fault_injected(void)
{
	return atomic_load_explicit(&injected, memory_order_relaxed);
}
