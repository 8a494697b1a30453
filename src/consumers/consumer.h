/*
 * consumer.h - what the consumers (memcg, failslab, the leak tracker, the
 * reports) and the drop-in may use beyond slabnotify.h: the small,
 * declared interface between them and the core. Nothing else of the
 * core is theirs to touch.
 */
#ifndef SLABNOTIFY_CONSUMER_H
#define SLABNOTIFY_CONSUMER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/single_threaded.h>

#include "slabnotify.h"

#define SN_CONSUMER_API __attribute__((visibility("hidden")))

/*
 * A memory fence (a __ATOMIC_* order). Under TSan, which does not model
 * fences (gcc refuses atomic_thread_fence there), a sequentially
 * consistent read-modify-write of a word of our own stands in for it: a
 * full barrier on the hardware, and atomic for TSan's model.
 */
#if defined(__SANITIZE_THREAD__)
static inline void sn_fence(int order)
{
	static int sn_fence_word;
	(void)order;
	__atomic_fetch_add(&sn_fence_word, 0, __ATOMIC_SEQ_CST);
}
#else
#define sn_fence(order) __atomic_thread_fence(order)
#endif

/*
 * Asymmetric fences (Dekker's pattern, as liburcu's urcu-memb and Linux's
 * membarrier users make it), for a fast side that must not pay a full
 * barrier: the fast side stores, calls sn_fence_light(), then loads; the
 * slow side stores, calls sn_fence_heavy(), then loads. Either the fast
 * side's load sees the slow side's store, or the slow side's load sees
 * the fast side's. With membarrier(2), light is a compiler barrier and
 * heavy makes every running thread of the process pass a full barrier;
 * without it (an old kernel, a sandbox), light is a full fence.
 */
SN_CONSUMER_API extern bool sn_membarrier_ok;   /* set once, at start-up */
SN_CONSUMER_API void sn_fence_heavy(void);
static inline __attribute__((always_inline)) void sn_fence_light(void)
{
	if (__builtin_expect(sn_membarrier_ok, 1))
		atomic_signal_fence(memory_order_seq_cst);
	else
		sn_fence(__ATOMIC_SEQ_CST);
}

/*
 * The calling thread's ordinal: its place in the order in which the
 * program created its threads (the main thread is 0). The drop-in
 * assigns it at pthread_create(), in the creating thread, so that a
 * program creating its threads in a fixed order gives each the same
 * ordinal on every run; a thread made otherwise gets the next free
 * ordinal when it first asks.
 */
SN_CONSUMER_API uint32_t sn_thread_ordinal(void);
SN_CONSUMER_API uint32_t sn_thread_ordinal_next(void);
SN_CONSUMER_API void sn_thread_ordinal_set(uint32_t ordinal);
/*
 * Whether the program has one thread, so that a figure only its threads
 * write may be kept with plain adds. True while glibc says the process
 * is single-threaded, or, in the drop-in (which numbers every thread the
 * program makes through pthread_create, in the creating thread, before
 * the new one exists: sn_thread_ordinals_complete()), while no thread
 * has been numbered; slabnotify's own threads, made with the C library's
 * pthread_create, work in quiet sections and do not count. A thread made
 * otherwise counts from its first sn_thread_ordinal().
 */
SN_CONSUMER_API extern _Atomic uint32_t sn_thread_next_ordinal;   /* thread.c */
SN_CONSUMER_API extern bool sn_thread_ordinals_all;
static inline bool sn_thread_alone(void)
{
	if (sn_thread_ordinals_all)
		return atomic_load_explicit(&sn_thread_next_ordinal, memory_order_relaxed) == 1 || __libc_single_threaded;
	return __libc_single_threaded;
}
SN_CONSUMER_API void sn_thread_ordinals_complete(void);

/*
 * Quiet sections: while the calling thread is in one, its allocations
 * are served without notification (so never charged to a group, failed
 * by fault injection or recorded by the leak tracker), as a handler's
 * own allocations are. For slabnotify's own work in a program's process:
 * writing a report, for example. They nest.
 */
SN_CONSUMER_API void sn_quiet_begin(void);
SN_CONSUMER_API void sn_quiet_end(void);

/*
 * A gate ahead of the notifier chain, for a consumer that needs the chain
 * (its handler, a stack capture) for a sample of the allocations only,
 * and a cheap look at all of them: the sampled heap profile. While the
 * gate's notifier @nb is the chain's only handler, alloc() sees every
 * ALLOC first (never one of a quiet section), on the allocating thread;
 * false keeps the object off the chain: it is not notified (no stamp, no
 * FREE event), and its free goes to free() instead, as does the free of
 * every other object no handler accepted. true sends it along the chain
 * as ever. With other handlers in the chain, alloc() is not called.
 * Installed once, for the process's life; the pointer is kept.
 */
struct sn_notify_gate {
	struct slab_notifier *nb;
	bool (*alloc)(const struct slab_event_data *d);
	void (*free)(const struct slab_event_data *d);
};
SN_CONSUMER_API void sn_notify_gate_set(const struct sn_notify_gate *g);

/*
 * Pinning: @nb, registered, stays so for the process's life
 * (slab_notifier_unregister(@nb) fails with EBUSY from then on). While
 * the first notifier pinned is the chain's only handler, its ALLOCs are
 * called directly, and so are the FREEs of the objects allocated then,
 * for good: no read-side section and no walk, as no grace period can
 * need to wait for a call of it, so its handler must not rely on running
 * inside one. For the consumers that never stop: memcg (alone under `slabnotify run --max`) and the
 * profile (alone under `--leaks` or `--profile`). An unregistered @nb is
 * left as it is.
 */
SN_CONSUMER_API void sn_notifier_pin(struct slab_notifier *nb);

/*
 * Stocks (Linux memcg's per-CPU stocks, per thread): bytes a consumer
 * charged to a group in advance, handed out and taken back by the
 * owning thread with no locked instruction. memcg keeps one per thread
 * (memcg.h has its rules: refills, drains, peaks); the core's charges
 * (below) take from and give back to the same one.
 *   The owner and a drainer (which holds the consumer's lock of the
 * stock) meet through the asymmetric fences above: the owner marks
 * itself busy, sn_fence_light(), then reads `draining`; the drainer sets
 * `draining`, sn_fence_heavy(), then waits for `busy` to clear. Either
 * the owner sees `draining` and leaves for its slow path, or the drainer
 * sees `busy` and waits the few instructions of the update.
 *   A stock serves its group only while its `seq` is the consumer's
 * current sequence number (@seq below): a peak reset, a limit change or
 * a forced charge moves that, and the owner's slow path catches up.
 */
struct sn_stock {
	_Atomic size_t bytes;           /* charged, not handed out */
	_Atomic(void *) group;          /* charged to (NULL: none); the owner writes it under the lock */
	_Atomic long nr_objs;           /* objects handed out, net, since the last sync (owner) */
	_Atomic long consumed;          /* bytes handed out, net, since the last sync (owner) */
	_Atomic long hw;                /* consumed's high-water mark since then */
	_Atomic unsigned long seq;      /* the sequence number when hw restarted */
	_Atomic int busy;               /* the owner is in sn_stock_consume() or _put() */
	_Atomic int draining;           /* a drainer is taking the bytes */
};

#define SN_STOCK_INLINE static inline __attribute__((always_inline))

SN_STOCK_INLINE bool sn_stock_enter(struct sn_stock *st)
{
	atomic_store_explicit(&st->busy, 1, memory_order_relaxed);
	sn_fence_light();
	if (__builtin_expect(!atomic_load_explicit(&st->draining, memory_order_relaxed), 1))
		return true;
	atomic_store_explicit(&st->busy, 0, memory_order_release);
	return false;
}

SN_STOCK_INLINE void sn_stock_leave(struct sn_stock *st)
{
	atomic_store_explicit(&st->busy, 0, memory_order_release);
}

SN_STOCK_INLINE bool sn_stock_serves(struct sn_stock *st, const void *g, unsigned long seq)
{
	return atomic_load_explicit(&st->group, memory_order_relaxed) == g &&
	       atomic_load_explicit(&st->seq, memory_order_relaxed) == seq;
}

/* Owner: take @n bytes of group @g (sequence number @seq) for one
 * object; false when the stock cannot (nothing changed). */
SN_STOCK_INLINE bool sn_stock_consume(struct sn_stock *st, const void *g, unsigned long seq, size_t n)
{
	if (!sn_stock_serves(st, g, seq) || !sn_stock_enter(st))
		return false;
	size_t b = atomic_load_explicit(&st->bytes, memory_order_relaxed);
	if (b < n) {
		sn_stock_leave(st);
		return false;
	}
	atomic_store_explicit(&st->bytes, b - n, memory_order_relaxed);
	sn_stock_leave(st);
	long c = atomic_load_explicit(&st->consumed, memory_order_relaxed) + (long)n;
	atomic_store_explicit(&st->consumed, c, memory_order_relaxed);
	if (c > atomic_load_explicit(&st->hw, memory_order_relaxed))
		atomic_store_explicit(&st->hw, c, memory_order_relaxed);
	atomic_store_explicit(&st->nr_objs, atomic_load_explicit(&st->nr_objs, memory_order_relaxed) + 1,
			      memory_order_relaxed);
	return true;
}

/* Owner: give back the @n bytes of one object of group @g; the stock's
 * new size, or 0 when it could not (nothing changed: the caller
 * uncharges). */
SN_STOCK_INLINE size_t sn_stock_put(struct sn_stock *st, const void *g, unsigned long seq, size_t n)
{
	if (!sn_stock_serves(st, g, seq) || !sn_stock_enter(st))
		return 0;
	size_t b = atomic_load_explicit(&st->bytes, memory_order_relaxed) + n;
	atomic_store_explicit(&st->bytes, b, memory_order_relaxed);
	sn_stock_leave(st);
	atomic_store_explicit(&st->consumed, atomic_load_explicit(&st->consumed, memory_order_relaxed) - (long)n,
			      memory_order_relaxed);
	atomic_store_explicit(&st->nr_objs, atomic_load_explicit(&st->nr_objs, memory_order_relaxed) - 1,
			      memory_order_relaxed);
	return b;
}

/*
 * Charges without an event, for the first notifier pinned (memcg's, as
 * Linux's memcg_slab_post_alloc_hook() takes its per-CPU stock). While
 * that notifier is the chain's only handler, the ALLOC of an object of a
 * SLAB_ACCOUNT cache (outside handlers and quiet sections), by a thread
 * that has a stock for the charges (sn_thread_stock_set(): the stock and
 * the group the thread's allocations are charged to) while that stock
 * serves that group, takes the object's footprint (slab_event_data's)
 * from the stock in the core's own path, and records the group as the
 * object's owner in extension slot @owner_slot (NULL for @root, whose
 * objects need no owner). That stands for the ALLOC event returning
 * SLAB_NOTIFY_OK with the owner so recorded and every other extension
 * slot left NULL, and no event is sent. When the stock cannot serve (or
 * the owner's array is not made yet, or another consumer has slots), the
 * ALLOC event goes as ever. The FREE of an object so charged is no event
 * either: its footprint goes back to the freeing thread's stock if that
 * serves the object's owner, else to uncharge(owner); a stock that grew
 * above @stock_max calls trim(). Both run on the thread that gives the
 * bytes back (on a free's common way, after the object is back in its
 * slab) and must not allocate or sleep. Set once, for the process's life;
 * false (and nothing set) unless @nb is the first notifier pinned.
 */
struct sn_charge {
	const void *root;
	const _Atomic unsigned long *seq;
	size_t stock_max;
	int owner_slot;
	void (*uncharge)(const void *owner, size_t footprint);
	void (*trim)(void);
};
SN_CONSUMER_API bool sn_notifier_charge_set(struct slab_notifier *nb, const struct sn_charge *ch);
/* The calling thread's stock for the charges (NULL: none) and the group
 * its allocations are charged to, until set again or the thread exits. */
SN_CONSUMER_API void sn_thread_stock_set(struct sn_stock *st, const void *group);

/* The root group's figures, read without a lock (approximate while
 * threads charge; usage includes the per-thread stocks): for a report
 * written from a signal handler. Async-signal-safe. */
struct sn_memcg_snapshot {
	size_t usage, peak, max, high;
	unsigned long failcnt, events_high, events_max, throttled_us;
};
SN_CONSUMER_API void sn_memcg_root_snapshot(struct sn_memcg_snapshot *s);

/* kmalloc-large, the kmalloc caches made first (they are otherwise made
 * on first use): for a consumer that switches its notification on. */
SN_CONSUMER_API struct slab_cache *sn_kmalloc_large(void);

/* slab_info_print() of the caches that ever had a slab. */
SN_CONSUMER_API void sn_info_print_used(FILE *f);
/* slab_stats_report(), its slabinfo limited to the caches ever used. */
SN_CONSUMER_API void sn_stats_report(FILE *f, bool json, bool used_only);

/* Calls @fn with each memory group's path ("/", "/a/b") and figures,
 * parents first. The tree is snapshotted first, so @fn may allocate.
 * Returns the number of groups, or a negative errno. */
SN_CONSUMER_API int sn_memcg_walk(void (*fn)(const char *path, const struct slab_memcg_stat *st,
					     void *arg), void *arg);

/*
 * The live stats page (statpage.c). sn_stat_page_start() makes it and
 * starts its thread: @limits applies `slabnotify set --max/--high`
 * (@which: SN_CTL_MAX | SN_CTL_HIGH of statpage.h), 0 or a negative
 * errno; @memcg: publish the memory groups (false keeps memcg
 * uninitialised, as a drop-in without limits wants); @delayed: the page
 * is made after a second (a process that ends sooner makes none). The
 * drop-in tells
 * it the fault injection and leak sampling it configured. remove()
 * unlinks the page: async-signal-safe, for fatal signal handlers.
 */
/*
 * Fault injection's stack filter (failstack.c): set the glob (NULL: none;
 * -EINVAL past 255 bytes); match: whether the calling thread's stack has
 * a function, outside slabnotify, whose name matches it (true with no
 * pattern). atfork: its fork handlers, registered by failslab before its
 * notifier is.
 */
SN_CONSUMER_API int sn_fail_stack_set(const char *pattern);
SN_CONSUMER_API bool sn_fail_stack_match(void);
SN_CONSUMER_API void sn_fail_stack_atfork(void);

typedef int (*sn_stat_limits_fn)(unsigned which, size_t max, size_t high);
SN_CONSUMER_API int sn_stat_page_start(sn_stat_limits_fn limits, bool memcg, bool delayed);
SN_CONSUMER_API void sn_stat_page_fault_attr(const struct slab_fault_attr *a, const char *cache_filter,
					     const char *stack_filter);
SN_CONSUMER_API void sn_stat_page_leaks(unsigned sample);
SN_CONSUMER_API void sn_stat_page_remove(void);

#endif /* SLABNOTIFY_CONSUMER_H */
