/*
 * memcg.h - memory accounting groups, as an ordinary notifier consumer:
 * the design, the rules and the shared state of memcg_*.c.
 *
 * Everything here is built on the public API of slabnotify.h (no
 * internal header of the core): one notifier, one obj_ext slot read and
 * written through the event (slab_event_ext(), no lookup), the cache's
 * flags and the object's footprint from the event; consumer.h only for
 * kmalloc-large. That the notifier API suffices is the point.
 *
 * Files: memcg_counters.c (hierarchical counters, handles, zombies),
 * memcg_stock.c (per-thread stocks), memcg_charge.c (refills, max,
 * reclaim, high and throttling), memcg_notifier.c (the handler),
 * memcg_tree.c (groups, limits, init, fork), memcg_stat.c (reading).
 *
 * Groups form a tree under the root. Every group keeps hierarchical
 * counters, like the kernel's page_counter: a charge to a group is
 * applied to it and to every ancestor.
 *
 * Charging (the ALLOC handler). Objects of SLAB_ACCOUNT caches and
 * every ALLOC whose gfp has SLAB_GFP_ACCOUNT (the kmalloc-cg-N caches,
 * kmalloc-large) are charged their footprint: the cache's stride, or for
 * kmalloc-large the size rounded up to 4 KiB.
 * The owner (the charging thread's current group) goes into the object's
 * obj_ext slot; the FREE handler reads it back and uncharges the owner,
 * whichever thread frees. In SLAB_ACCOUNT caches a NULL slot is the root:
 * a process with the root group only never writes (nor makes) the slot
 * arrays. In other caches (objects charged through SLAB_GFP_ACCOUNT) the
 * root is written out and NULL means "not charged". Objects allocated
 * before accounting was on get no FREE here at all (the notifier pairs
 * FREE with the ALLOCs a handler saw).
 *
 * Per-thread stocks (memcg's per-CPU stock). A thread keeps a stock of
 * bytes pre-charged to one group (its current group) and every ancestor.
 * A charge takes from the stock, an uncharge of an object of the stock's
 * group returns the bytes there, with plain loads and stores on the
 * thread's own cache line: no locked instruction, no shared line (the
 * stock and its protocol with drainers: struct sn_stock, consumer.h; the
 * core's charges, for a thread in the root, use it too: memcg_notifier.c).
 * When the stock runs
 * short the thread charges the object plus a batch (64 KiB, less when
 * that would come near max or high of any ancestor) to the counters.
 *   A group's counter `charged` is therefore usage + stocks; `usage` is
 * reported as charged minus the bytes sitting in the stocks of the
 * group's subtree (exact at a quiet moment), `stock` separately. The max
 * check is made on `charged` with a compare-and-swap that never goes
 * past max, so neither stocks nor in-flight charges ever push a group
 * over its max, and a monitor never sees usage above max.
 *   Stocks are drained on thread exit (a pthread key destructor), on
 * slab_memcg_enter(), on slab_memcg_drain_stock(), and - every thread's
 * stock of the groups involved - before any veto, before a high event is
 * declared, and while throttling. Another thread's stock is drained under
 * the stock's own mutex, which its owner takes only on its slow path
 * (refill, drain); against the owner's fast path it uses the asymmetric
 * protocol of consumer.h's stocks (drainer_enter()).
 *   Object counts use the same stocks as per-thread deltas (a counter
 * with no limit needs no reservation), folded in at drain.
 *   A global sequence number (sync_seq) moves on every limit change,
 * peak reset and forced (NOFAIL) charge; a stock whose number is stale
 * takes the slow path, and is emptied if its group or an ancestor is now
 * above max, so that bytes pre-charged under an old limit are never
 * handed out past a new one.
 *
 * max (hard). A charge that does not fit under some ancestor's max first
 * drains the stocks of that ancestor's subtree and retries; then it is a
 * max event: that group's reclaim callbacks run (with the allocation's
 * gfp) and the charge is retried once more (each limiting group is
 * reclaimed at most once per charge). If it still does not fit the
 * allocation is vetoed with ENOMEM and the limiting group's failcnt rises,
 * unless the gfp has SLAB_GFP_NOFAIL: then the charge is forced and
 * counted in events_nofail of every group it took past max.
 *
 * high (soft). A slow-path charge that leaves an ancestor above its high
 * (after draining stocks) is a high event for that group: its reclaim
 * callbacks run, and unless NOWAIT the thread is throttled as Linux's
 * memory.high throttles (mem_cgroup_handle_over_high, calculate_high_
 * delay): the thread owes
 *     ((usage - high) / high)^2 seconds per 4 KiB it charged over high
 * (10 % over: 10 ms a page; 100 % over: 1 s a page). The debt is kept
 * per thread and slept once it exceeds 10 ms, at most 2 s per
 * allocation, in slices of 10 ms while the group stays above high; the
 * time slept is added to throttled_us of every group above high. A
 * group with throttling switched off (slab_memcg_set_throttle) only
 * counts its high events and runs its reclaim callbacks: what the
 * launcher's --high does, for programs that have no reclaim to run.
 * Stocks are never refilled past a high, so each charge above high
 * takes the slow path.
 *
 * peak: the highest usage seen. Usage is only summed at slow-path points
 * (refill, drain, stat), so each stock also keeps the high-water mark of
 * what it handed out since its last sync; at a sync the group's peak is
 * raised to (charged - this stock) + (that high-water excess). This is
 * exact when one thread charges a group, an upper estimate when several
 * do concurrently (bounded by charged, so never above max without
 * NOFAIL). slab_memcg_reset_peak() sets peak to the current usage and
 * makes every stock restart its high-water mark for that group.
 *
 * Reparenting. slab_memcg_destroy() unlinks the group and marks it dead;
 * its charges already count in its parent (hierarchical counters), so
 * they simply stay there. A dead group remains as a zombie, as Linux's
 * obj_cgroup does, for the FREEs of its remaining objects: they uncharge
 * it and its ancestors, i.e. the parent. The zombie is released when its
 * object count reaches zero: a DEAD mark is added to the count word, and
 * the one decrement that leaves exactly the mark frees it (no refcount
 * per object, no RCU).
 *
 * Reclaim callbacks run on the charging thread, inside the ALLOC
 * notification, with no lock of ours held: the objects they free come
 * back to our FREE handler re-entrantly and are uncharged; what they
 * allocate is served quietly by the notifier's guard. Callbacks invoked
 * from slab_memcg_set_max()/set_high() run outside a handler; a
 * thread-local flag keeps charges made from inside any reclaim callback
 * from recursing into reclaim (or throttling).
 *
 * Counters and events are kept at the group whose limit is involved:
 * failcnt, events_max and the VETO/MAX callbacks at the limiting
 * ancestor (as page_counter's failcnt), events_high, the HIGH callbacks
 * and throttled_us at each group found above its high. events_high and
 * HIGH count every charge that leaves the group above high (as the
 * kernel's memory.events "high"), not only the first crossing. Event
 * callbacks run on the charging thread, only on those slow events.
 *
 * FREE events of caches that are neither SLAB_ACCOUNT nor ever had an
 * object charged through SLAB_GFP_ACCOUNT return at once, without the
 * obj_ext lookup (a small insert-only set of such caches).
 *
 * The notifier is registered at priority 0 on first use of any memcg
 * function (pthread_once): below failslab (INT_MAX / 2), so an injected
 * failure vetoes before we charge, and above the leak tracker
 * (INT_MIN / 2). A veto by a later handler sends us the FREE, which
 * uncharges.
 *
 * Memory: groups and per-thread structures live in anonymous mappings of
 * their own, so that they never recurse into the allocator (the malloc
 * drop-in routes calloc() to slabnotify, accounted) and never show up in
 * the accounting.
 *
 * Lock order: tree_lock -> a stock's lock. A group's cb_lock is taken
 * alone. No lock is held while a callback runs, and nothing allocates
 * under a lock (print snapshots first). The registry of per-thread
 * structures is push-only and walked without a lock. fork: see
 * fork_prepare().
 */
#ifndef SLABNOTIFY_MEMCG_H
#define SLABNOTIFY_MEMCG_H

#include "slabnotify.h"
#include "../probes.h"
#include "consumer.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <time.h>

#define MEMCG_HIDDEN __attribute__((visibility("hidden")))
#define MEMCG_BATCH       (64u * 1024u)  /* bytes per stock refill */
#define MEMCG_STOCK_MAX   (2u * MEMCG_BATCH) /* trimmed back to a batch above */
#define MEMCG_MAX_CB      16             /* reclaim / event callbacks per group */
#define MEMCG_NAME_MAX    64
#define MEMCG_MAX_TRIES   8              /* limiting groups reclaimed per charge */
#define MEMCG_DELAY_MAX_US  2000000ULL   /* throttling cap per allocation */
#define MEMCG_DELAY_PAGE_US 1000000.0    /* per page charged, at 100 % over high */
#define MEMCG_DELAY_MIN_US  10000ULL     /* debts below this are not slept */
#define MEMCG_PAGE          4096.0
#define MEMCG_SLICE_US      10000ULL     /* throttling re-check period */
#define LARGE_PAGE        4096u
#define DEAD_MARK         (1UL << 62)    /* in a group's object count word */
#define CACHELINE         64

#define likely(x)   __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#define RLX memory_order_relaxed

struct reclaim_ent {
	slab_memcg_reclaim_fn fn;
	void *arg;
};

struct event_ent {
	void (*fn)(struct slab_memcg *g, enum slab_memcg_event event, void *arg);
	void *arg;
};

struct slab_memcg {
	/* Written by refills, drains and direct charges. */
	_Atomic size_t charged __attribute__((aligned(CACHELINE))); /* usage + stocks */
	_Atomic unsigned long objs;   /* live objects (mod 2^64), + DEAD_MARK */
	_Atomic size_t peak;
	/* Read-mostly. */
	_Atomic size_t max __attribute__((aligned(CACHELINE)));
	_Atomic size_t high;
	_Atomic unsigned long reset_seq;   /* sync_seq at the last reset_peak */
	struct slab_memcg *parent;         /* immutable; NULL for root */
	/* Event counters (slow paths only). */
	_Atomic unsigned long failcnt, events_high, events_max, events_nofail;
	_Atomic unsigned long reclaimed, throttled_us;
	/* Tree, under tree_lock. */
	struct slab_memcg *first_child, *last_child, *next_sibling, *prev_sibling;
	unsigned nr_children;              /* live children */
	unsigned nr_current;               /* threads having it current */
	bool dead;
	bool no_throttle;                  /* high counts events only */
	uint16_t gen;                      /* handle generation (kept across reuse) */
	uintptr_t handle;                  /* this group | gen; 0 once destroyed */
	struct slab_memcg *next_free;      /* free group slots */
	/* Callbacks, under cb_lock. */
	pthread_mutex_t cb_lock;
	unsigned nr_reclaim, nr_event;
	struct reclaim_ent reclaim[MEMCG_MAX_CB];
	struct event_ent event[MEMCG_MAX_CB];
	char name[MEMCG_NAME_MAX];
};

/*
 * Per-thread state: the stock and the current group. The first cache
 * line is the owner's fast path; other threads touch it only to drain
 * (under @lock) or to read it for statistics.
 */
struct memcg_thread {
	struct sn_stock stock;                 /* consumer.h; its group a struct slab_memcg */
	struct slab_memcg *cur;                /* current group (owner only) */
	/* Cold. */
	pthread_mutex_t lock __attribute__((aligned(CACHELINE)));
	struct memcg_thread *next;             /* registry: set before publication */
	_Atomic bool in_use;                   /* owned by a live thread */
	size_t map_bytes;
};

/*
 * Handles. Groups live in one reserved area of MEMCG_MAX_GROUPS slots of
 * MEMCG_STRIDE bytes (the root is a static slot of its own); a handle is
 * the slot's address with a generation in its low bits, bumped when the
 * slot is freed. A stale handle (a destroyed group, even once its slot
 * holds another group) or a foreign pointer is refused with EINVAL. A
 * destroyed group whose objects are still charged lives on as a zombie
 * with no handle, and its slot is freed with its last object.
 */
#define MEMCG_STRIDE      2048u
#define MEMCG_GEN_MASK    (MEMCG_STRIDE - 1)
#define MEMCG_MAX_GROUPS  4096u

extern MEMCG_HIDDEN struct slab_memcg root_group;
extern MEMCG_HIDDEN char *group_area;                            /* MEMCG_MAX_GROUPS slots */
extern MEMCG_HIDDEN unsigned group_next_unused;                  /* tree_lock */
extern MEMCG_HIDDEN _Atomic(struct slab_memcg *) group_free;     /* pushed lock-free, popped under tree_lock */
_Static_assert(sizeof(struct slab_memcg) <= MEMCG_STRIDE, "a group fits its slot");

extern MEMCG_HIDDEN pthread_once_t init_once;
extern MEMCG_HIDDEN int ext_slot;
extern MEMCG_HIDDEN pthread_key_t thread_key;
extern MEMCG_HIDDEN bool key_ok;
extern MEMCG_HIDDEN pthread_mutex_t tree_lock;
/* Every per-thread structure ever made, push-only: exited threads'
 * entries are marked unused and taken over by new threads, never
 * unlinked, so walkers need no lock. */
extern MEMCG_HIDDEN _Atomic(struct memcg_thread *) registry;
extern MEMCG_HIDDEN _Atomic unsigned long sync_seq __attribute__((aligned(CACHELINE)));

/* initial-exec, as the core's own TLS: one %fs-relative access, no
 * __tls_get_addr call on the charge path. */
#define MEMCG_TLS __attribute__((tls_model("initial-exec")))
extern MEMCG_HIDDEN __thread struct memcg_thread *tls_self MEMCG_TLS;
extern MEMCG_HIDDEN __thread int tls_in_reclaim MEMCG_TLS;
extern MEMCG_HIDDEN __thread bool tls_creating MEMCG_TLS;
/* Bytes charged over high since this thread last slept for it. */
extern MEMCG_HIDDEN __thread size_t tls_high_debt MEMCG_TLS;

extern MEMCG_HIDDEN struct slab_notifier memcg_nb;
extern MEMCG_HIDDEN struct sn_charge memcg_charges;   /* consumer.h */

/* ------------------------------------------------------------------ */
/* Functions shared by the memcg_*.c files                            */
/* ------------------------------------------------------------------ */

/* memcg_tree.c: the first use of any memcg function, once. */
MEMCG_HIDDEN void do_init(void);

/* memcg_counters.c */
MEMCG_HIDDEN struct slab_memcg *counters_try_charge(struct slab_memcg *g, size_t n);
MEMCG_HIDDEN void counters_force_charge(struct slab_memcg *g, size_t n);
MEMCG_HIDDEN void counters_uncharge(struct slab_memcg *g, size_t n);
MEMCG_HIDDEN void objs_add(struct slab_memcg *g, long d);
MEMCG_HIDDEN struct slab_memcg *group_of(const struct slab_memcg *h);
MEMCG_HIDDEN struct slab_memcg *handle_of(struct slab_memcg *g);
MEMCG_HIDDEN struct slab_memcg *group_slot_take(void);
MEMCG_HIDDEN void zombie_release(struct slab_memcg *g);
MEMCG_HIDDEN void uncharge_direct(struct slab_memcg *owner, size_t n);

/* memcg_stock.c */
MEMCG_HIDDEN struct memcg_thread *thread_self_slow(void);
MEMCG_HIDDEN void stock_take_locked(struct memcg_thread *t);
MEMCG_HIDDEN void stock_sync_peak(struct memcg_thread *t);
MEMCG_HIDDEN void stock_revalidate(struct memcg_thread *t);
MEMCG_HIDDEN void stock_drain_locked(struct memcg_thread *t);
MEMCG_HIDDEN void stock_drain_own(struct memcg_thread *t);
MEMCG_HIDDEN void drain_stocks_under(struct slab_memcg *top);
MEMCG_HIDDEN void stock_trim(struct memcg_thread *t);
MEMCG_HIDDEN void thread_exit(void *arg);

/* memcg_charge.c */
MEMCG_HIDDEN size_t run_reclaim(struct slab_memcg *g, size_t want, slab_gfp_t gfp);
MEMCG_HIDDEN int charge_slow(struct memcg_thread *t, struct slab_memcg *g, size_t n, long objs, slab_gfp_t gfp);
MEMCG_HIDDEN void uncharge_object(struct slab_memcg *owner, size_t n);


/* memcg_stat.c */
/* What the stocks of a subtree hold: for statistics and peak resets. */
struct stock_sum {
	size_t stock;
	size_t hw_extra;
	long objs;
};
MEMCG_HIDDEN struct stock_sum stocks_of(const struct slab_memcg *g);

/* ------------------------------------------------------------------ */
/* Small helpers                                                      */
/* ------------------------------------------------------------------ */

static inline int fail(int err)
{
	errno = err;
	return -err;
}

static inline void *map_zeroed(size_t bytes, size_t *mapped)
{
	size_t len = (bytes + 4095) & ~(size_t)4095;
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	*mapped = len;
	return p;
}

static inline uint64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static inline void sleep_us(uint64_t us)
{
	struct timespec ts = { (time_t)(us / 1000000u), (long)(us % 1000000u) * 1000L };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static inline void atomic_max_size(_Atomic size_t *p, size_t v)
{
	size_t cur = atomic_load_explicit(p, RLX);
	while (cur < v && !atomic_compare_exchange_weak_explicit(p, &cur, v, RLX, RLX))
		;
}

static inline bool in_subtree(const struct slab_memcg *g, const struct slab_memcg *top)
{
	for (; g; g = g->parent)
		if (g == top)
			return true;
	return false;
}

static inline size_t sat_sub(size_t a, size_t b)
{
	return a > b ? a - b : 0;
}

/* ------------------------------------------------------------------ */
/* The stock fast paths                                               */
/* ------------------------------------------------------------------ */

/* Fast path: take @n bytes for @g from the stock (consumer.h). */
static inline __attribute__((always_inline)) bool stock_consume(struct memcg_thread *t, struct slab_memcg *g, size_t n)
{
	return sn_stock_consume(&t->stock, g, atomic_load_explicit(&sync_seq, RLX), n);
}

/* Fast path: give @n bytes of one object of @g back to the stock; the
 * new stock size, or 0 when it could not (the caller uncharges). */
static inline __attribute__((always_inline)) size_t stock_put(struct memcg_thread *t, struct slab_memcg *g, size_t n)
{
	return sn_stock_put(&t->stock, g, atomic_load_explicit(&sync_seq, RLX), n);
}

static inline struct memcg_thread *thread_self(void)
{
	struct memcg_thread *t = tls_self;
	return likely(t) ? t : thread_self_slow();
}

static inline void ensure_init(void)
{
	pthread_once(&init_once, do_init);
}

#endif /* SLABNOTIFY_MEMCG_H */
