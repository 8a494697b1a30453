/*
 * lock.h - slabnotify's mutexes and their order, written once.
 *
 * Every lock of the core has a rank. A thread may only take a lock of a
 * higher rank than every lock it holds (jemalloc's witness, in small):
 *
 *   1 SN_RANK_CAPTURE     the stack depot's unwinder lock (a rwlock, read
 *                         while unwinding, which may allocate)
 *   2 SN_RANK_DEPOT       the stack depot's table (adding a stack)
 *   3 SN_RANK_CHAIN       the notifier chain (register, unregister)
 *   4 SN_RANK_CACHE_LIST  the cache table (create, destroy, for_each)
 *   5 SN_RANK_REGISTRY    the thread registry (exit, flush, statistics)
 *   6 SN_RANK_CACHE       one cache's partial list (c->lock)
 *   7 SN_RANK_NOTIFY      one cache's notification switch (c->notify_lock)
 *   8 SN_RANK_LARGE       the large-object table
 *   9 SN_RANK_POOL        one page pool (an order's segments)
 *  10 SN_RANK_QUARANTINE  the debug quarantine (src/debug/quarantine.c)
 *  11 SN_RANK_GUARD       the guard-page pool (src/debug/guard.c)
 *
 * No notifier handler is ever called with any of them held: the code
 * that releases slabs (FREEPAGE) collects them under the locks and
 * releases them after. Consumers' own locks rank before all of these:
 * a consumer may hold its lock while it calls the API (and allocates,
 * which under --debug captures a stack), never the other way round.
 *
 * fork(): the core has one set of pthread_atfork handlers (slab.c),
 * registered first, so its prepare handler runs after every consumer's
 * (prepare handlers run in reverse order of registration). It first
 * waits for the notifier's RCU readers (handlers, which may capture
 * stacks), then takes every lock above in rank order; the parent
 * releases them in reverse; the child makes them anew, all before the
 * RCU child handler, the first thing in the child that may allocate or
 * free. No layer registers handlers of its own for these locks: a
 * child handler registered after the core's would run after that first
 * free, and find its lock still held by the parent's thread.
 *
 * In debug builds (SLABNOTIFY_WITNESS: Debug and sanitizer builds) each
 * acquisition is checked against the locks the thread holds, and
 * sn_witness_assert_unlocked() checks that a handler is about to run
 * with none held; a violation prints one line and aborts. fork()'s
 * handlers take many locks of one rank at once and use the raw
 * pthread calls (lock_all/unlock_all in their layers).
 */
#ifndef SLABNOTIFY_LOCK_H
#define SLABNOTIFY_LOCK_H

#include <pthread.h>
#include <stdint.h>

enum sn_lock_rank {
	SN_RANK_CAPTURE = 1,
	SN_RANK_DEPOT,
	SN_RANK_CHAIN,
	SN_RANK_CACHE_LIST,
	SN_RANK_REGISTRY,
	SN_RANK_CACHE,
	SN_RANK_NOTIFY,
	SN_RANK_LARGE,
	SN_RANK_POOL,
	SN_RANK_QUARANTINE,
	SN_RANK_GUARD,
	SN_RANK_COUNT
};

struct sn_mutex {
	pthread_mutex_t m;
	unsigned rank;
};

#define SN_MUTEX_INIT(r) { PTHREAD_MUTEX_INITIALIZER, (r) }

#ifdef SLABNOTIFY_WITNESS
__attribute__((visibility("hidden"))) void sn_witness_acquire(unsigned rank);
__attribute__((visibility("hidden"))) void sn_witness_release(unsigned rank);
__attribute__((visibility("hidden"))) void sn_witness_assert_unlocked(const char *what);
#else
static inline void sn_witness_acquire(unsigned rank) { (void)rank; }
static inline void sn_witness_release(unsigned rank) { (void)rank; }
static inline void sn_witness_assert_unlocked(const char *what) { (void)what; }
#endif

static inline void sn_lock(struct sn_mutex *l)
{
	sn_witness_acquire(l->rank);
	pthread_mutex_lock(&l->m);
}

static inline void sn_unlock(struct sn_mutex *l)
{
	pthread_mutex_unlock(&l->m);
	sn_witness_release(l->rank);
}

static inline void sn_mutex_init(struct sn_mutex *l, unsigned rank)
{
	pthread_mutex_init(&l->m, NULL);
	l->rank = rank;
}

/* fork(): the child re-makes a lock the parent's other threads may hold. */
static inline void sn_mutex_reinit(struct sn_mutex *l)
{
	pthread_mutex_init(&l->m, NULL);
}

#endif /* SLABNOTIFY_LOCK_H */
