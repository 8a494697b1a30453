/*
 * memcg.c - memory accounting groups, as an ordinary notifier consumer.
 *
 * Everything here is built on the public API of slabnotify.h only (no
 * internal header): one notifier, one obj_ext slot, slab_cache_flags()
 * and slab_cache_size(). That the notifier API suffices is the point.
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
 * whichever thread frees. A slot left NULL (objects allocated before
 * accounting was on, or not accounted) is never uncharged.
 *
 * Per-thread stocks (memcg's per-CPU stock). A thread keeps a stock of
 * bytes pre-charged to one group (its current group) and every ancestor.
 * A charge takes from the stock with a CAS on the stock's own cache line;
 * an uncharge of an object of the stock's group returns the bytes there.
 * So the common path touches no shared cache line. When the stock runs
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
 * (refill, drain); the owner's fast path consumes with a CAS, the
 * drainer takes the bytes with atomic_exchange.
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
#include <sys/mman.h>
#include <time.h>

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
	_Atomic size_t bytes;                  /* pre-charged, unused */
	_Atomic(struct slab_memcg *) group;    /* the stock's group; owner writes under lock */
	_Atomic long nr_objs;                  /* object-count delta of group (owner only) */
	_Atomic long consumed;                 /* bytes handed out since the last sync */
	_Atomic long hw;                       /* high-water mark of consumed */
	_Atomic unsigned long hist_seq;        /* sync_seq when hw restarted */
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

static struct slab_memcg root_group __attribute__((aligned(MEMCG_STRIDE))) = {
	.max = SIZE_MAX,
	.high = SIZE_MAX,
	.cb_lock = PTHREAD_MUTEX_INITIALIZER,
	.name = "root",
	.gen = 1,
	.handle = 0,      /* set at init: &root_group | 1 */
};
static char *group_area;                            /* MEMCG_MAX_GROUPS slots */
static unsigned group_next_unused;                  /* tree_lock */
static _Atomic(struct slab_memcg *) group_free;     /* pushed lock-free, popped under tree_lock */
_Static_assert(sizeof(struct slab_memcg) <= MEMCG_STRIDE, "a group fits its slot");

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int ext_slot = -1;
static pthread_key_t thread_key;
static bool key_ok;
static pthread_mutex_t tree_lock = PTHREAD_MUTEX_INITIALIZER;
/* Every per-thread structure ever made, push-only: exited threads'
 * entries are marked unused and taken over by new threads, never
 * unlinked, so walkers need no lock. */
static _Atomic(struct memcg_thread *) registry;
static _Atomic unsigned long sync_seq __attribute__((aligned(CACHELINE)));

/* initial-exec, as the core's own TLS: one %fs-relative access, no
 * __tls_get_addr call on the charge path. */
#define MEMCG_TLS __attribute__((tls_model("initial-exec")))
static __thread struct memcg_thread *tls_self MEMCG_TLS;
static __thread int tls_in_reclaim MEMCG_TLS;
static __thread bool tls_creating MEMCG_TLS;
/* Bytes charged over high since this thread last slept for it. */
static __thread size_t tls_high_debt MEMCG_TLS;

/* ------------------------------------------------------------------ */
/* Small helpers                                                      */
/* ------------------------------------------------------------------ */

static int fail(int err)
{
	errno = err;
	return -err;
}

static void *map_zeroed(size_t bytes, size_t *mapped)
{
	size_t len = (bytes + 4095) & ~(size_t)4095;
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	*mapped = len;
	return p;
}

static uint64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void sleep_us(uint64_t us)
{
	struct timespec ts = { (time_t)(us / 1000000u), (long)(us % 1000000u) * 1000L };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static void atomic_max_size(_Atomic size_t *p, size_t v)
{
	size_t cur = atomic_load_explicit(p, RLX);
	while (cur < v && !atomic_compare_exchange_weak_explicit(p, &cur, v, RLX, RLX))
		;
}

static bool in_subtree(const struct slab_memcg *g, const struct slab_memcg *top)
{
	for (; g; g = g->parent)
		if (g == top)
			return true;
	return false;
}

static size_t sat_sub(size_t a, size_t b)
{
	return a > b ? a - b : 0;
}

/* ------------------------------------------------------------------ */
/* Hierarchical counters                                              */
/* ------------------------------------------------------------------ */

/*
 * Charge @n to @g and every ancestor without ever going past a max.
 * NULL on success; otherwise the first group that could not take it
 * (nothing is left charged).
 */
static struct slab_memcg *counters_try_charge(struct slab_memcg *g, size_t n)
{
	struct slab_memcg *a;
	for (a = g; a; a = a->parent) {
		size_t max = atomic_load_explicit(&a->max, RLX);
		size_t c = atomic_load_explicit(&a->charged, RLX);
		do {
			if (c > max || n > max - c)
				goto undo;
		} while (!atomic_compare_exchange_weak_explicit(&a->charged, &c, c + n, RLX, RLX));
	}
	return NULL;
undo:
	for (struct slab_memcg *b = g; b != a; b = b->parent)
		atomic_fetch_sub_explicit(&b->charged, n, RLX);
	return a;
}

/* NOFAIL: charge regardless, counting every group taken past max. */
static void counters_force_charge(struct slab_memcg *g, size_t n)
{
	for (struct slab_memcg *a = g; a; a = a->parent) {
		size_t c = atomic_fetch_add_explicit(&a->charged, n, RLX) + n;
		if (c > atomic_load_explicit(&a->max, RLX))
			atomic_fetch_add_explicit(&a->events_nofail, 1, RLX);
	}
}

/* Live groups only (stock groups are live). */
static void counters_uncharge(struct slab_memcg *g, size_t n)
{
	for (struct slab_memcg *a = g; a; a = a->parent)
		atomic_fetch_sub_explicit(&a->charged, n, RLX);
}

static void objs_add(struct slab_memcg *g, long d)
{
	for (struct slab_memcg *a = g; a; a = a->parent)
		atomic_fetch_add_explicit(&a->objs, (unsigned long)d, RLX);
}

static struct slab_memcg *group_of(const struct slab_memcg *h)
{
	uintptr_t v = (uintptr_t)h;
	struct slab_memcg *g = (struct slab_memcg *)(v & ~(uintptr_t)MEMCG_GEN_MASK);
	if (g != &root_group) {
		uintptr_t off = v - (uintptr_t)group_area;
		if (!group_area || off >= (uintptr_t)MEMCG_MAX_GROUPS * MEMCG_STRIDE)
			return NULL;
	}
	return atomic_load_explicit((_Atomic uintptr_t *)&g->handle, memory_order_acquire) == v && v ? g : NULL;
}

static struct slab_memcg *handle_of(struct slab_memcg *g)
{
	return (struct slab_memcg *)(uintptr_t)atomic_load_explicit((_Atomic uintptr_t *)&g->handle,
								  memory_order_relaxed);
}

/* A slot for a new group (tree lock held), or NULL. */
static struct slab_memcg *group_slot_take(void)
{
	struct slab_memcg *g = atomic_load(&group_free);
	while (g && !atomic_compare_exchange_weak(&group_free, &g, g->next_free))
		;
	if (!g && group_next_unused < MEMCG_MAX_GROUPS)
		g = (struct slab_memcg *)(group_area + (size_t)group_next_unused++ * MEMCG_STRIDE);
	return g;
}

/* The group is gone for good: its slot is free, its handles stale. */
static void zombie_release(struct slab_memcg *g)
{
	pthread_mutex_destroy(&g->cb_lock);
	atomic_store((_Atomic uintptr_t *)&g->handle, 0);
	g->next_free = atomic_load(&group_free);
	while (!atomic_compare_exchange_weak(&group_free, &g->next_free, g))
		;
}

/*
 * Uncharge one object of @n bytes from @owner and its ancestors, straight
 * from the counters. @owner may be a zombie: the decrement that leaves
 * exactly DEAD_MARK in a group's count word releases it. Each group's
 * parent is read before its count drops, and a group's count includes
 * the objects of its zombie children, so a parent outlives the walk.
 */
static void uncharge_direct(struct slab_memcg *owner, size_t n)
{
	struct slab_memcg *a = owner;
	while (a) {
		struct slab_memcg *next = a->parent;
		atomic_fetch_sub_explicit(&a->charged, n, RLX);
		unsigned long w = atomic_fetch_sub_explicit(&a->objs, 1, memory_order_acq_rel) - 1;
		if (unlikely(w == DEAD_MARK))
			zombie_release(a);
		a = next;
	}
}

/* ------------------------------------------------------------------ */
/* Callbacks                                                          */
/* ------------------------------------------------------------------ */

static void fire_event(struct slab_memcg *g, enum slab_memcg_event ev)
{
	struct event_ent snap[MEMCG_MAX_CB];
	pthread_mutex_lock(&g->cb_lock);
	unsigned n = g->nr_event;
	memcpy(snap, g->event, n * sizeof(snap[0]));
	pthread_mutex_unlock(&g->cb_lock);
	for (unsigned i = 0; i < n; i++)
		snap[i].fn(handle_of(g), ev, snap[i].arg);
}

/* Run @g's reclaim callbacks until @want bytes are reported freed. */
static size_t run_reclaim(struct slab_memcg *g, size_t want, slab_gfp_t gfp)
{
	struct reclaim_ent snap[MEMCG_MAX_CB];
	pthread_mutex_lock(&g->cb_lock);
	unsigned n = g->nr_reclaim;
	memcpy(snap, g->reclaim, n * sizeof(snap[0]));
	pthread_mutex_unlock(&g->cb_lock);
	if (!n)
		return 0;
	if (!want)
		want = 1;
	size_t got = 0;
	tls_in_reclaim++;
	for (unsigned i = 0; i < n && got < want; i++)
		got += snap[i].fn(handle_of(g), want - got, gfp, snap[i].arg);
	tls_in_reclaim--;
	atomic_fetch_add_explicit(&g->reclaimed, got, RLX);
	return got;
}

/* ------------------------------------------------------------------ */
/* Per-thread stocks                                                  */
/* ------------------------------------------------------------------ */

static void thread_exit(void *arg);

static struct memcg_thread *thread_self_slow(void)
{
	if (tls_creating)   /* pthread_setspecific may allocate */
		return NULL;
	tls_creating = true;
	struct memcg_thread *t;
	for (t = atomic_load_explicit(&registry, memory_order_acquire); t; t = t->next) {
		bool free_entry = false;
		if (!atomic_load_explicit(&t->in_use, RLX) &&
		    atomic_compare_exchange_strong(&t->in_use, &free_entry, true))
			break;
	}
	if (!t) {
		size_t mapped;
		t = map_zeroed(sizeof(*t), &mapped);
		if (!t) {
			tls_creating = false;
			return NULL;
		}
		t->map_bytes = mapped;
		pthread_mutex_init(&t->lock, NULL);
		atomic_init(&t->in_use, true);
		t->next = atomic_load_explicit(&registry, RLX);
		while (!atomic_compare_exchange_weak_explicit(&registry, &t->next, t, memory_order_release,
							      RLX))
			;
	}
	pthread_mutex_lock(&t->lock);
	atomic_store_explicit(&t->bytes, 0, RLX);
	atomic_store_explicit(&t->group, NULL, RLX);
	atomic_store_explicit(&t->nr_objs, 0, RLX);
	atomic_store_explicit(&t->consumed, 0, RLX);
	atomic_store_explicit(&t->hw, 0, RLX);
	atomic_store_explicit(&t->hist_seq, atomic_load(&sync_seq), RLX);
	t->cur = &root_group;
	pthread_mutex_unlock(&t->lock);
	tls_self = t;
	if (key_ok)
		pthread_setspecific(thread_key, t);
	tls_creating = false;
	return t;
}

static inline struct memcg_thread *thread_self(void)
{
	struct memcg_thread *t = tls_self;
	return likely(t) ? t : thread_self_slow();
}

/* Take the bytes out of @t's stock and uncharge them. Caller holds t->lock. */
static void stock_take_locked(struct memcg_thread *t)
{
	struct slab_memcg *g = atomic_load_explicit(&t->group, RLX);
	if (!g)
		return;
	size_t x = atomic_exchange_explicit(&t->bytes, 0, RLX);
	if (x)
		counters_uncharge(g, x);
}

/*
 * Owner only: raise the peaks of the stock's group and ancestors to what
 * this stock has seen since its last sync, then restart its high-water
 * mark. Valid for a group unless its peak was reset since.
 */
static void stock_sync_peak(struct memcg_thread *t)
{
	struct slab_memcg *g = atomic_load_explicit(&t->group, RLX);
	unsigned long seq = atomic_load(&sync_seq);
	if (g) {
		unsigned long hs = atomic_load_explicit(&t->hist_seq, RLX);
		long extra = atomic_load_explicit(&t->hw, RLX) - atomic_load_explicit(&t->consumed, RLX);
		size_t bytes = atomic_load_explicit(&t->bytes, RLX);
		for (struct slab_memcg *a = g; a; a = a->parent) {
			size_t ch = atomic_load_explicit(&a->charged, RLX);
			size_t cand = sat_sub(ch, bytes);
			if (extra > 0 && hs >= atomic_load_explicit(&a->reset_seq, RLX)) {
				size_t lim = atomic_load_explicit(&a->max, RLX);
				cand += (size_t)extra;
				if (lim < ch)
					lim = ch;
				if (cand > lim)
					cand = lim;
			}
			atomic_max_size(&a->peak, cand);
		}
	}
	atomic_store_explicit(&t->consumed, 0, RLX);
	atomic_store_explicit(&t->hw, 0, RLX);
	atomic_store_explicit(&t->hist_seq, seq, RLX);
}

static bool over_max(struct slab_memcg *g)
{
	for (struct slab_memcg *a = g; a; a = a->parent)
		if (atomic_load_explicit(&a->charged, RLX) > atomic_load_explicit(&a->max, RLX))
			return true;
	return false;
}

static void stock_drain_locked(struct memcg_thread *t);

/*
 * Owner, after sync_seq moved (a peak reset, a limit change, a forced
 * charge): fold the stock's high-water mark into the peaks, and keep the
 * stock only if its group and every ancestor are within max. A stock's
 * bytes count in `charged`, which the CAS keeps within max; a max set
 * below usage or a NOFAIL charge breaks that, and until a refill finds
 * room again the stock must neither hand out nor take back bytes.
 */
static void stock_revalidate(struct memcg_thread *t)
{
	pthread_mutex_lock(&t->lock);
	stock_sync_peak(t);
	struct slab_memcg *g = atomic_load_explicit(&t->group, RLX);
	if (g && over_max(g))
		stock_drain_locked(t);
	pthread_mutex_unlock(&t->lock);
}

/* Owner: empty the stock completely and detach it from its group. */
static void stock_drain_locked(struct memcg_thread *t)
{
	struct slab_memcg *g = atomic_load_explicit(&t->group, RLX);
	stock_sync_peak(t);
	if (!g)
		return;
	stock_take_locked(t);
	long d = atomic_exchange_explicit(&t->nr_objs, 0, RLX);
	if (d)
		objs_add(g, d);
	atomic_store_explicit(&t->group, NULL, RLX);
}

static void stock_drain_own(struct memcg_thread *t)
{
	pthread_mutex_lock(&t->lock);
	stock_drain_locked(t);
	pthread_mutex_unlock(&t->lock);
}

/* Drain every thread's stock of a group in @top's subtree. */
static void drain_stocks_under(struct slab_memcg *top)
{
	for (struct memcg_thread *t = atomic_load_explicit(&registry, memory_order_acquire); t;
	     t = t->next) {
		/* Under t->lock even when it looks empty: a refill holds the
		 * lock from its charge until the bytes are in the stock. */
		pthread_mutex_lock(&t->lock);
		struct slab_memcg *g = atomic_load_explicit(&t->group, RLX);
		if (g && in_subtree(g, top))
			stock_take_locked(t);
		pthread_mutex_unlock(&t->lock);
	}
}

/* Trim a stock that grew from uncharges back to one batch. */
static void stock_trim(struct memcg_thread *t)
{
	pthread_mutex_lock(&t->lock);
	struct slab_memcg *g = atomic_load_explicit(&t->group, RLX);
	size_t b = atomic_load_explicit(&t->bytes, RLX);
	if (g && b > MEMCG_BATCH) {
		/* Only the owner adds bytes and it is here; a drainer holds
		 * the lock we hold: the value cannot move. */
		atomic_store_explicit(&t->bytes, MEMCG_BATCH, RLX);
		counters_uncharge(g, b - MEMCG_BATCH);
	}
	pthread_mutex_unlock(&t->lock);
}

static void thread_exit(void *arg)
{
	struct memcg_thread *t = arg;
	stock_drain_own(t);
	pthread_mutex_lock(&tree_lock);
	if (t->cur && t->cur != &root_group)
		t->cur->nr_current--;
	t->cur = &root_group;
	pthread_mutex_unlock(&tree_lock);
	atomic_store_explicit(&t->in_use, false, memory_order_release);
	if (tls_self == t)
		tls_self = NULL;
}

/* Fast path: take @n bytes for @g from the stock. */
static inline bool stock_consume(struct memcg_thread *t, struct slab_memcg *g, size_t n)
{
	if (atomic_load_explicit(&t->group, RLX) != g ||
	    atomic_load_explicit(&t->hist_seq, RLX) != atomic_load_explicit(&sync_seq, RLX))
		return false;
	size_t b = atomic_load_explicit(&t->bytes, RLX);
	do {
		if (b < n)
			return false;
	} while (!atomic_compare_exchange_weak_explicit(&t->bytes, &b, b - n, RLX, RLX));
	long c = atomic_load_explicit(&t->consumed, RLX) + (long)n;
	atomic_store_explicit(&t->consumed, c, RLX);
	if (c > atomic_load_explicit(&t->hw, RLX))
		atomic_store_explicit(&t->hw, c, RLX);
	atomic_store_explicit(&t->nr_objs, atomic_load_explicit(&t->nr_objs, RLX) + 1, RLX);
	return true;
}

/* ------------------------------------------------------------------ */
/* Charging                                                           */
/* ------------------------------------------------------------------ */

/* Extra bytes a refill may take: a batch, less near any max or high. */
static size_t batch_room(struct slab_memcg *g, size_t n)
{
	size_t room = MEMCG_BATCH;
	for (struct slab_memcg *a = g; a; a = a->parent) {
		size_t lim = atomic_load_explicit(&a->max, RLX);
		size_t high = atomic_load_explicit(&a->high, RLX);
		if (high < lim)
			lim = high;
		size_t c = atomic_load_explicit(&a->charged, RLX);
		if (c >= lim || lim - c <= n)
			return 0;
		if (lim - c - n < room)
			room = lim - c - n;
	}
	return room;
}

/* Linux's calculate_high_delay(): a task owes ((usage - high) / high)^2
 * seconds per page it charged while over high. */
static uint64_t high_delay_us(size_t usage, size_t high, size_t debt_bytes)
{
	if (usage <= high)
		return 0;
	double ratio = (double)(usage - high) / (double)(high ? high : 1);
	double us = MEMCG_DELAY_PAGE_US * ratio * ratio * ((double)debt_bytes / MEMCG_PAGE);
	return us >= (double)MEMCG_DELAY_MAX_US ? MEMCG_DELAY_MAX_US : (uint64_t)us;
}

static bool over_high(struct slab_memcg *a)
{
	return atomic_load_explicit(&a->charged, RLX) > atomic_load_explicit(&a->high, RLX);
}

/* The charge left some ancestor of @g above its high: events, reclaim,
 * then throttling unless NOWAIT. */
static void handle_high(struct slab_memcg *g, size_t n, slab_gfp_t gfp)
{
	struct slab_memcg *over[MEMCG_MAX_TRIES];
	int no = 0;
	struct slab_memcg *top = NULL;
	for (struct slab_memcg *a = g; a; a = a->parent)
		if (over_high(a))
			top = a;
	if (!top)
		return;
	/* Other threads' stocks are not usage: take them back first. */
	drain_stocks_under(top);
	for (struct slab_memcg *a = g; a && no < MEMCG_MAX_TRIES; a = a->parent)
		if (over_high(a))
			over[no++] = a;
	if (!no)
		return;
	bool reclaimed = false;
	for (int i = 0; i < no; i++) {
		struct slab_memcg *a = over[i];
		atomic_fetch_add_explicit(&a->events_high, 1, RLX);
		if (SN_PROBE_ACTIVE(memcg_high))
			SN_PROBE3(memcg_high, a->name, atomic_load_explicit(&a->charged, RLX),
				  atomic_load_explicit(&a->high, RLX));
		fire_event(a, SLAB_MEMCG_EVENT_HIGH);
		if (!tls_in_reclaim && over_high(a)) {
			size_t ch = atomic_load_explicit(&a->charged, RLX);
			size_t hi = atomic_load_explicit(&a->high, RLX);
			if (run_reclaim(a, sat_sub(ch, hi), gfp))
				reclaimed = true;
		}
	}
	top = over[no - 1];
	if (reclaimed)
		drain_stocks_under(top);
	if ((gfp & SLAB_GFP_NOWAIT) || tls_in_reclaim)
		return;
	/* Throttled by the groups that throttle; the debt is slept once it
	 * is worth a sleep, as Linux's mem_cgroup_handle_over_high() does. */
	uint64_t delay = 0;
	tls_high_debt += n;
	for (int i = 0; i < no; i++) {
		if (__atomic_load_n(&over[i]->no_throttle, __ATOMIC_RELAXED))
			continue;
		uint64_t d = high_delay_us(atomic_load_explicit(&over[i]->charged, RLX),
					   atomic_load_explicit(&over[i]->high, RLX), tls_high_debt);
		if (d > delay)
			delay = d;
	}
	if (delay <= MEMCG_DELAY_MIN_US)
		return;
	tls_high_debt = 0;
	uint64_t start = now_us(), slept = 0;
	while (slept < delay) {
		uint64_t slice = delay - slept;
		sleep_us(slice < MEMCG_SLICE_US ? slice : MEMCG_SLICE_US);
		slept = now_us() - start;
		drain_stocks_under(top);
		bool still = false;
		for (int i = 0; i < no; i++)
			still |= over_high(over[i]);
		if (!still)
			break;
	}
	if (slept > MEMCG_DELAY_MAX_US)
		slept = MEMCG_DELAY_MAX_US;
	for (int i = 0; i < no; i++)
		atomic_fetch_add_explicit(&over[i]->throttled_us, slept, RLX);
}

/* Everything but a stock hit. 0, or -ENOMEM for a veto. */
/* @objs: 1 for an object, 0 for a plain charge (slab_memcg_charge). */
static int charge_slow(struct memcg_thread *t, struct slab_memcg *g, size_t n, long objs, slab_gfp_t gfp)
{
	bool in_stock = false;
	if (t) {
		if (atomic_load_explicit(&t->hist_seq, RLX) != atomic_load(&sync_seq))
			stock_revalidate(t);
		if (objs && stock_consume(t, g, n))
			return 0;
		size_t extra = batch_room(g, n);
		if (extra) {
			pthread_mutex_lock(&t->lock);
			if (atomic_load_explicit(&t->group, RLX) != g) {
				stock_drain_locked(t);
				atomic_store_explicit(&t->group, g, RLX);
			}
			if (!counters_try_charge(g, n + extra)) {
				atomic_fetch_add_explicit(&t->bytes, extra, RLX);
				atomic_store_explicit(&t->nr_objs,
						      atomic_load_explicit(&t->nr_objs, RLX) + objs, RLX);
				in_stock = true;
			}
			pthread_mutex_unlock(&t->lock);
		}
	}
	if (!in_stock) {
		struct slab_memcg *f = counters_try_charge(g, n);
		if (f) {
			/* Stocks are not usage: take them back before anything. */
			drain_stocks_under(f);
			f = counters_try_charge(g, n);
		}
		struct slab_memcg *done[MEMCG_MAX_TRIES];
		int nd = 0;
		while (f) {
			bool seen = false;
			for (int i = 0; i < nd; i++)
				seen |= done[i] == f;
			if (seen || nd == MEMCG_MAX_TRIES)
				break;
			done[nd++] = f;
			atomic_fetch_add_explicit(&f->events_max, 1, RLX);
			fire_event(f, SLAB_MEMCG_EVENT_MAX);
			if (!tls_in_reclaim) {
				size_t ch = atomic_load_explicit(&f->charged, RLX);
				size_t mx = atomic_load_explicit(&f->max, RLX);
				run_reclaim(f, sat_sub(ch + n, mx), gfp);
			}
			drain_stocks_under(f);
			f = counters_try_charge(g, n);
		}
		if (f) {
			if (!(gfp & SLAB_GFP_NOFAIL)) {
				atomic_fetch_add_explicit(&f->failcnt, 1, RLX);
				if (SN_PROBE_ACTIVE(memcg_charge_fail))
					SN_PROBE4(memcg_charge_fail, f->name, n, atomic_load_explicit(&f->charged, RLX),
						  atomic_load_explicit(&f->max, RLX));
				fire_event(f, SLAB_MEMCG_EVENT_VETO);
				return -ENOMEM;
			}
			counters_force_charge(g, n);
			/* Over max now: make every stock revalidate. */
			atomic_fetch_add(&sync_seq, 1);
			if (t)
				stock_revalidate(t);
		}
		if (objs)
			objs_add(g, objs);
	}
	/* Peaks: this is a sync point for the stock. */
	if (t && atomic_load_explicit(&t->group, RLX) == g) {
		stock_sync_peak(t);
	} else {
		for (struct slab_memcg *a = g; a; a = a->parent)
			atomic_max_size(&a->peak, atomic_load_explicit(&a->charged, RLX));
	}
	for (struct slab_memcg *a = g; a; a = a->parent)
		if (unlikely(over_high(a))) {
			handle_high(g, n, gfp);
			break;
		}
	return 0;
}

static void uncharge_object(struct slab_memcg *owner, size_t n)
{
	struct memcg_thread *t = tls_self;
	if (t && atomic_load_explicit(&t->group, RLX) == owner &&
	    atomic_load_explicit(&t->hist_seq, RLX) == atomic_load_explicit(&sync_seq, RLX)) {
		/* The stock's group is the thread's current one: live. */
		size_t b = atomic_fetch_add_explicit(&t->bytes, n, RLX) + n;
		atomic_store_explicit(&t->consumed, atomic_load_explicit(&t->consumed, RLX) - (long)n, RLX);
		atomic_store_explicit(&t->nr_objs, atomic_load_explicit(&t->nr_objs, RLX) - 1, RLX);
		if (unlikely(b > MEMCG_STOCK_MAX))
			stock_trim(t);
		return;
	}
	uncharge_direct(owner, n);
}

/* ------------------------------------------------------------------ */
/* The notifier                                                       */
/* ------------------------------------------------------------------ */

static size_t footprint(const struct slab_event_data *d)
{
	size_t s = slab_cache_size(d->cache);
	if (likely(s))
		return s;
	/* kmalloc-large: its pages (the descriptor is slabnotify's own). */
	return (d->size + LARGE_PAGE - 1) & ~(size_t)(LARGE_PAGE - 1);
}

/*
 * Caches that are not SLAB_ACCOUNT but have had an object charged
 * through SLAB_GFP_ACCOUNT (kmalloc-large, say): only their FREEs, and
 * those of SLAB_ACCOUNT caches, need the owner looked up. A lock-free
 * insert-only set of cache pointers (cache structures are never freed,
 * only reused: a stale entry costs a lookup, nothing else).
 */
#define ACCT_SET_BITS 11
static _Atomic(const struct slab_cache *) acct_set[1u << ACCT_SET_BITS];

static inline unsigned acct_hash(const struct slab_cache *c)
{
	return (unsigned)(((uintptr_t)c * 0x9e3779b97f4a7c15ULL) >> (64 - ACCT_SET_BITS));
}

static bool acct_set_has(const struct slab_cache *c)
{
	for (unsigned i = acct_hash(c), n = 0; n < (1u << ACCT_SET_BITS); n++) {
		const struct slab_cache *x = atomic_load_explicit(&acct_set[i], memory_order_acquire);
		if (x == c)
			return true;
		if (!x)
			return false;
		i = (i + 1) & ((1u << ACCT_SET_BITS) - 1);
	}
	return false;
}

static bool acct_set_add(const struct slab_cache *c)
{
	for (unsigned i = acct_hash(c), n = 0; n < (1u << ACCT_SET_BITS); n++) {
		const struct slab_cache *x = NULL;
		if (atomic_compare_exchange_strong(&acct_set[i], &x, c) || x == c)
			return true;
		i = (i + 1) & ((1u << ACCT_SET_BITS) - 1);
	}
	return false;   /* more caches than SLAB_MAX_CACHES: cannot happen */
}

static int memcg_call(struct slab_notifier *nb, enum slab_event ev, const struct slab_event_data *d)
{
	(void)nb;
	if (ev == SLAB_EVENT_ALLOC) {
		if (!(slab_cache_flags(d->cache) & SLAB_ACCOUNT)) {
			if (!(d->gfp & SLAB_GFP_ACCOUNT))
				return SLAB_NOTIFY_DONE;
			if (unlikely(!acct_set_has(d->cache)) && !acct_set_add(d->cache))
				return (d->gfp & SLAB_GFP_NOFAIL) ? SLAB_NOTIFY_DONE
								  : slab_notify_from_errno(-ENOMEM);
		}
		void **slot = slab_obj_ext(d->ptr, ext_slot);
		if (unlikely(!slot))   /* no room to record the owner */
			return (d->gfp & SLAB_GFP_NOFAIL) ? SLAB_NOTIFY_DONE : slab_notify_from_errno(-ENOMEM);
		size_t n = footprint(d);
		struct memcg_thread *t = thread_self();
		struct slab_memcg *g = t ? t->cur : &root_group;
		if (likely(t && stock_consume(t, g, n))) {
			*slot = g;
			return SLAB_NOTIFY_OK;
		}
		if (charge_slow(t, g, n, 1, d->gfp))
			return slab_notify_from_errno(-ENOMEM);
		*slot = g;
		return SLAB_NOTIFY_OK;
	}
	if (ev == SLAB_EVENT_FREE) {
		if (!(slab_cache_flags(d->cache) & SLAB_ACCOUNT) && !acct_set_has(d->cache))
			return SLAB_NOTIFY_DONE;   /* nothing of it was ever charged */
		void **slot = slab_obj_ext(d->ptr, ext_slot);
		struct slab_memcg *owner = slot ? *slot : NULL;
		if (!owner)
			return SLAB_NOTIFY_DONE;
		*slot = NULL;
		uncharge_object(owner, footprint(d));
	}
	return SLAB_NOTIFY_DONE;
}

static struct slab_notifier memcg_nb = {
	.call = memcg_call,
	.priority = 0,
};

/* ------------------------------------------------------------------ */
/* fork                                                               */
/* ------------------------------------------------------------------ */

/*
 * Only tree_lock is taken before fork(). The other locks (the stocks',
 * the groups' cb_lock) are taken inside notifier handlers, under the RCU
 * read side: holding them across the core's fork preparation, which
 * waits for the call_rcu thread and so for a grace period, could
 * deadlock against a handler blocked on one. Those critical sections are
 * a few atomic operations, so the child simply re-initialises the locks
 * (a thread that vanished in one leaves at most its in-flight batch
 * charged). No path takes tree_lock inside a handler, and nothing
 * allocates under it, so it is safe before or after the core's locks.
 */
static void fork_prepare(void)
{
	pthread_mutex_lock(&tree_lock);
}

static void fork_parent(void)
{
	pthread_mutex_unlock(&tree_lock);
}

/* Tree lock held. */
static void cb_locks_init(struct slab_memcg *g)
{
	pthread_mutex_init(&g->cb_lock, NULL);
	for (struct slab_memcg *c = g->first_child; c; c = c->next_sibling)
		cb_locks_init(c);
}

/* Only the forking thread lives on: the other threads' stocks go back
 * to their groups, as if those threads had exited. */
static void fork_child(void)
{
	pthread_mutex_init(&tree_lock, NULL);
	cb_locks_init(&root_group);
	for (struct memcg_thread *t = atomic_load(&registry); t; t = t->next) {
		pthread_mutex_init(&t->lock, NULL);
		if (t == tls_self || !atomic_load(&t->in_use))
			continue;
		struct slab_memcg *g = atomic_load_explicit(&t->group, RLX);
		if (g) {
			stock_take_locked(t);
			long d = atomic_exchange_explicit(&t->nr_objs, 0, RLX);
			if (d)
				objs_add(g, d);
			atomic_store_explicit(&t->group, NULL, RLX);
		}
		if (t->cur && t->cur != &root_group)
			t->cur->nr_current--;
		t->cur = &root_group;
		atomic_store(&t->in_use, false);
	}
}

static void find_large(struct slab_cache *c, void *arg)
{
	const char *name = slab_cache_name(c);
	if (name && strcmp(name, "kmalloc-large") == 0)
		*(struct slab_cache **)arg = c;
}

static void do_init(void)
{
	atomic_store((_Atomic uintptr_t *)&root_group.handle, (uintptr_t)&root_group | root_group.gen);
	size_t area = (size_t)MEMCG_MAX_GROUPS * MEMCG_STRIDE;
	void *a = mmap(NULL, area, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	group_area = a == MAP_FAILED ? NULL : a;
	int slot = slab_obj_ext_reserve();
	if (slot < 0) {
		fprintf(stderr, "slabnotify: memcg: no obj_ext slot left, accounting is off\n");
		return;
	}
	ext_slot = slot;
	key_ok = pthread_key_create(&thread_key, thread_exit) == 0;
	pthread_atfork(fork_prepare, fork_parent, fork_child);
	/* Make the kmalloc caches exist, then have kmalloc-large notify:
	 * its SLAB_GFP_ACCOUNT objects are charged like any other. */
	slab_free(slab_malloc(0, 0));
	struct slab_cache *large = NULL;
	slab_cache_for_each(find_large, &large);
	if (large)
		slab_cache_set_notify(large, true);
	if (slab_notifier_register(&memcg_nb) != 0)
		fprintf(stderr, "slabnotify: memcg: cannot register the notifier\n");
}

static inline void ensure_init(void)
{
	pthread_once(&init_once, do_init);
}

/* ------------------------------------------------------------------ */
/* The API                                                            */
/* ------------------------------------------------------------------ */

struct slab_memcg *slab_memcg_root(void)
{
	ensure_init();
	return handle_of(&root_group);
}

struct slab_memcg *slab_memcg_create(struct slab_memcg *parent_h, const char *name)
{
	ensure_init();
	struct slab_memcg *parent = parent_h ? group_of(parent_h) : &root_group;
	if (!name || !parent || !group_area) {
		errno = EINVAL;
		return NULL;
	}
	pthread_mutex_lock(&tree_lock);
	if (parent->dead) {
		pthread_mutex_unlock(&tree_lock);
		errno = EINVAL;
		return NULL;
	}
	struct slab_memcg *g = group_slot_take();
	if (!g) {
		pthread_mutex_unlock(&tree_lock);
		errno = ENOMEM;
		return NULL;
	}
	uint16_t gen = g->gen;
	memset(g, 0, sizeof(*g));
	g->gen = (uint16_t)(gen + 1u > MEMCG_GEN_MASK ? 1u : gen + 1u);
	atomic_init(&g->max, SIZE_MAX);
	atomic_init(&g->high, SIZE_MAX);
	atomic_init(&g->reset_seq, 0);
	pthread_mutex_init(&g->cb_lock, NULL);
	snprintf(g->name, sizeof(g->name), "%s", name);
	g->parent = parent;
	g->prev_sibling = parent->last_child;
	if (parent->last_child)
		parent->last_child->next_sibling = g;
	else
		parent->first_child = g;
	parent->last_child = g;
	parent->nr_children++;
	atomic_store((_Atomic uintptr_t *)&g->handle, (uintptr_t)g | g->gen);
	pthread_mutex_unlock(&tree_lock);
	return handle_of(g);
}

int slab_memcg_destroy(struct slab_memcg *h)
{
	ensure_init();
	struct slab_memcg *g = group_of(h);
	if (!g || g == &root_group)
		return fail(EINVAL);
	pthread_mutex_lock(&tree_lock);
	if (g->dead || group_of(h) != g) {
		pthread_mutex_unlock(&tree_lock);
		return fail(EINVAL);
	}
	if (g->nr_current || g->nr_children) {
		pthread_mutex_unlock(&tree_lock);
		return fail(EBUSY);
	}
	g->dead = true;
	atomic_store((_Atomic uintptr_t *)&g->handle, 0);   /* the program's handle is stale now */
	struct slab_memcg *p = g->parent;
	if (g->prev_sibling)
		g->prev_sibling->next_sibling = g->next_sibling;
	else
		p->first_child = g->next_sibling;
	if (g->next_sibling)
		g->next_sibling->prev_sibling = g->prev_sibling;
	else
		p->last_child = g->prev_sibling;
	p->nr_children--;
	/* No thread has it current, so no stock is of it; be sure anyway. */
	drain_stocks_under(g);
	pthread_mutex_unlock(&tree_lock);
	/* Its charges stay where they already count: in the parent. The
	 * zombie lives on for the FREEs of its remaining objects. */
	unsigned long w = atomic_fetch_add_explicit(&g->objs, DEAD_MARK, memory_order_acq_rel);
	if (w == 0)
		zombie_release(g);
	return 0;
}

static int set_limit(struct slab_memcg *h, size_t bytes, bool is_max)
{
	ensure_init();
	struct slab_memcg *g = group_of(h);
	if (!g)
		return fail(EINVAL);
	atomic_store(is_max ? &g->max : &g->high, bytes);
	/* Stocks revalidate against the new limit before their next use. */
	atomic_fetch_add(&sync_seq, 1);
	if (atomic_load(&g->charged) <= bytes)
		return 0;
	drain_stocks_under(g);
	size_t ch = atomic_load(&g->charged);
	if (ch > bytes && !tls_in_reclaim) {
		run_reclaim(g, ch - bytes, 0);
		drain_stocks_under(g);
	}
	return 0;
}

int slab_memcg_set_max(struct slab_memcg *g, size_t bytes)
{
	return set_limit(g, bytes, true);
}

int slab_memcg_set_high(struct slab_memcg *g, size_t bytes)
{
	return set_limit(g, bytes, false);
}

int slab_memcg_set_throttle(struct slab_memcg *h, bool throttle)
{
	ensure_init();
	struct slab_memcg *g = group_of(h);
	if (!g)
		return fail(EINVAL);
	__atomic_store_n(&g->no_throttle, !throttle, __ATOMIC_RELAXED);
	return 0;
}

struct slab_memcg *slab_memcg_enter(struct slab_memcg *h)
{
	ensure_init();
	struct slab_memcg *g = group_of(h);
	if (!g) {
		errno = EINVAL;
		return NULL;
	}
	struct memcg_thread *t = thread_self();
	if (!t) {
		errno = ENOMEM;
		return NULL;
	}
	struct slab_memcg *prev = t->cur;
	if (prev == g)
		return handle_of(prev);
	stock_drain_own(t);
	pthread_mutex_lock(&tree_lock);
	if (g->dead) {
		pthread_mutex_unlock(&tree_lock);
		errno = EINVAL;
		return NULL;
	}
	if (prev != &root_group)
		prev->nr_current--;
	if (g != &root_group)
		g->nr_current++;
	t->cur = g;
	pthread_mutex_unlock(&tree_lock);
	return handle_of(prev);
}

struct slab_memcg *slab_memcg_current(void)
{
	ensure_init();
	struct memcg_thread *t = tls_self;
	return handle_of(t ? t->cur : &root_group);
}

struct stock_sum {
	size_t stock;
	size_t hw_extra;
	long objs;
};

/* Sum the stocks of @g's subtree. */
static struct stock_sum stocks_of(const struct slab_memcg *g)
{
	struct stock_sum s = { 0, 0, 0 };
	unsigned long reset = atomic_load_explicit(&g->reset_seq, RLX);
	for (struct memcg_thread *t = atomic_load_explicit(&registry, memory_order_acquire); t;
	     t = t->next) {
		pthread_mutex_lock(&t->lock);
		struct slab_memcg *sg = atomic_load_explicit(&t->group, RLX);
		if (sg && in_subtree(sg, g)) {
			s.stock += atomic_load_explicit(&t->bytes, RLX);
			s.objs += atomic_load_explicit(&t->nr_objs, RLX);
			long extra = atomic_load_explicit(&t->hw, RLX) - atomic_load_explicit(&t->consumed, RLX);
			if (extra > 0 && atomic_load_explicit(&t->hist_seq, RLX) >= reset)
				s.hw_extra += (size_t)extra;
		}
		pthread_mutex_unlock(&t->lock);
	}
	return s;
}

static int group_stat(struct slab_memcg *g, struct slab_memcg_stat *st);

int slab_memcg_stat(const struct slab_memcg *h, struct slab_memcg_stat *st)
{
	ensure_init();
	struct slab_memcg *g = group_of(h);
	if (!g || !st)
		return fail(EINVAL);
	return group_stat(g, st);
}

/* The figures of @g (a live group or a zombie: printing walks both). */
static int group_stat(struct slab_memcg *g, struct slab_memcg_stat *st)
{
	struct stock_sum s = stocks_of(g);
	size_t ch = atomic_load(&g->charged);
	unsigned long w = atomic_load(&g->objs);
	memset(st, 0, sizeof(*st));
	st->usage = sat_sub(ch, s.stock);
	st->stock = s.stock < ch ? s.stock : ch;
	st->max = atomic_load(&g->max);
	st->high = atomic_load(&g->high);
	long objs = (long)w + s.objs;
	st->nr_objects = objs > 0 ? (unsigned long)objs : 0;
	size_t cand = st->usage;
	if (s.hw_extra) {
		size_t lim = st->max > ch ? st->max : ch;
		cand = cand + s.hw_extra > lim ? lim : cand + s.hw_extra;
		if (cand < st->usage)
			cand = st->usage;
	}
	atomic_max_size(&g->peak, cand);
	st->peak = atomic_load(&g->peak);
	st->failcnt = atomic_load(&g->failcnt);
	st->events_high = atomic_load(&g->events_high);
	st->events_max = atomic_load(&g->events_max);
	st->events_nofail = atomic_load(&g->events_nofail);
	st->reclaimed = atomic_load(&g->reclaimed);
	st->throttled_us = atomic_load(&g->throttled_us);
	return 0;
}

int slab_memcg_reset_peak(struct slab_memcg *h)
{
	ensure_init();
	struct slab_memcg *g = group_of(h);
	if (!g)
		return fail(EINVAL);
	unsigned long seq = atomic_fetch_add(&sync_seq, 1) + 1;
	atomic_store(&g->reset_seq, seq);
	struct stock_sum s = stocks_of(g);
	atomic_store(&g->peak, sat_sub(atomic_load(&g->charged), s.stock));
	return 0;
}

const char *slab_memcg_name(const struct slab_memcg *h)
{
	ensure_init();
	struct slab_memcg *g = group_of(h);
	if (!g) {
		errno = EINVAL;
		return NULL;
	}
	return g->name;
}

int slab_memcg_add_reclaim(struct slab_memcg *h,
			   size_t (*reclaim)(struct slab_memcg *g, size_t want,
					     slab_gfp_t gfp, void *arg),
			   void *arg)
{
	ensure_init();
	struct slab_memcg *g = group_of(h);
	if (!g || !reclaim)
		return fail(EINVAL);
	pthread_mutex_lock(&g->cb_lock);
	int err = 0;
	for (unsigned i = 0; i < g->nr_reclaim; i++)
		if (g->reclaim[i].fn == reclaim && g->reclaim[i].arg == arg)
			err = EEXIST;
	if (!err && g->nr_reclaim == MEMCG_MAX_CB)
		err = ENOSPC;
	if (!err)
		g->reclaim[g->nr_reclaim++] = (struct reclaim_ent){ reclaim, arg };
	pthread_mutex_unlock(&g->cb_lock);
	return err ? fail(err) : 0;
}

int slab_memcg_remove_reclaim(struct slab_memcg *h,
			      size_t (*reclaim)(struct slab_memcg *, size_t,
						slab_gfp_t, void *),
			      void *arg)
{
	ensure_init();
	struct slab_memcg *g = group_of(h);
	if (!g || !reclaim)
		return fail(EINVAL);
	pthread_mutex_lock(&g->cb_lock);
	int err = ENOENT;
	for (unsigned i = 0; i < g->nr_reclaim; i++)
		if (g->reclaim[i].fn == reclaim && g->reclaim[i].arg == arg) {
			memmove(&g->reclaim[i], &g->reclaim[i + 1],
				(g->nr_reclaim - i - 1) * sizeof(g->reclaim[0]));
			g->nr_reclaim--;
			err = 0;
			break;
		}
	pthread_mutex_unlock(&g->cb_lock);
	return err ? fail(err) : 0;
}

int slab_memcg_on_event(struct slab_memcg *h,
			void (*cb)(struct slab_memcg *g,
				   enum slab_memcg_event event, void *arg),
			void *arg)
{
	ensure_init();
	struct slab_memcg *g = group_of(h);
	if (!g || !cb)
		return fail(EINVAL);
	pthread_mutex_lock(&g->cb_lock);
	int err = g->nr_event == MEMCG_MAX_CB ? ENOSPC : 0;
	if (!err)
		g->event[g->nr_event++] = (struct event_ent){ cb, arg };
	pthread_mutex_unlock(&g->cb_lock);
	return err ? fail(err) : 0;
}

static void print_size(FILE *f, const char *key, size_t v)
{
	if (v == SIZE_MAX)
		fprintf(f, "  %-16s max\n", key);
	else
		fprintf(f, "  %-16s %zu\n", key, v);
}

struct print_rec {
	char path[512];
	struct slab_memcg_stat st;
};

/* Tree lock held. */
static size_t count_groups(const struct slab_memcg *g)
{
	size_t n = 1;
	for (const struct slab_memcg *c = g->first_child; c; c = c->next_sibling)
		n += count_groups(c);
	return n;
}

/* Tree lock held: the stats of @g's subtree, parents first. */
static void collect(struct slab_memcg *g, struct print_rec *r, size_t *i, const char *parent)
{
	struct print_rec *me = &r[(*i)++];
	if (g == &root_group) {
		strcpy(me->path, "/");
	} else {   /* parent + "/" + name, cut to fit */
		size_t cap = sizeof(me->path), pl = strcmp(parent, "/") ? strlen(parent) : 0;
		if (pl > cap - 2)
			pl = cap - 2;
		memcpy(me->path, parent, pl);
		me->path[pl] = '/';
		size_t nl = strnlen(g->name, cap - pl - 2);
		memcpy(me->path + pl + 1, g->name, nl);
		me->path[pl + 1 + nl] = '\0';
	}
	group_stat(g, &me->st);
	for (struct slab_memcg *c = g->first_child; c; c = c->next_sibling)
		collect(c, r, i, me->path);
}

/* The tree is snapshotted under the lock into a private mapping and
 * printed after: stdio may allocate, and nothing allocates under
 * tree_lock. */
int slab_memcg_print(FILE *f)
{
	ensure_init();
	if (!f)
		return fail(EINVAL);
	struct print_rec *r;
	size_t n, mapped;
	for (;;) {
		pthread_mutex_lock(&tree_lock);
		size_t want = count_groups(&root_group) + 8;
		pthread_mutex_unlock(&tree_lock);
		r = map_zeroed(want * sizeof(*r), &mapped);
		if (!r)
			return fail(ENOMEM);
		pthread_mutex_lock(&tree_lock);
		if (count_groups(&root_group) <= want) {
			n = 0;
			collect(&root_group, r, &n, "");
			pthread_mutex_unlock(&tree_lock);
			break;
		}
		pthread_mutex_unlock(&tree_lock);
		munmap(r, mapped);
	}
	for (size_t i = 0; i < n; i++) {
		const struct slab_memcg_stat *st = &r[i].st;
		fprintf(f, "%s\n", r[i].path);
		print_size(f, "memory.current", st->usage);
		print_size(f, "memory.peak", st->peak);
		print_size(f, "memory.max", st->max);
		print_size(f, "memory.high", st->high);
		fprintf(f, "  %-16s high %lu max %lu fail %lu nofail %lu\n", "memory.events",
			st->events_high, st->events_max, st->failcnt, st->events_nofail);
		fprintf(f, "  %-16s stock %zu objects %lu reclaimed %lu throttled_us %lu\n",
			"memory.stat", st->stock, st->nr_objects, st->reclaimed, st->throttled_us);
	}
	munmap(r, mapped);
	return 0;
}

/* slab_memcg_print()'s snapshot, handed to @fn (consumer.h). */
int sn_memcg_walk(void (*fn)(const char *path, const struct slab_memcg_stat *st, void *arg), void *arg)
{
	ensure_init();
	struct print_rec *r;
	size_t n, mapped;
	for (;;) {
		pthread_mutex_lock(&tree_lock);
		size_t want = count_groups(&root_group) + 8;
		pthread_mutex_unlock(&tree_lock);
		r = map_zeroed(want * sizeof(*r), &mapped);
		if (!r)
			return fail(ENOMEM);
		pthread_mutex_lock(&tree_lock);
		if (count_groups(&root_group) <= want) {
			n = 0;
			collect(&root_group, r, &n, "");
			pthread_mutex_unlock(&tree_lock);
			break;
		}
		pthread_mutex_unlock(&tree_lock);
		munmap(r, mapped);
	}
	for (size_t i = 0; i < n; i++)
		fn(r[i].path, &r[i].st, arg);
	munmap(r, mapped);
	return (int)n;
}

void slab_memcg_drain_stock(void)
{
	ensure_init();
	struct memcg_thread *t = tls_self;
	if (t)
		stock_drain_own(t);
}

void sn_memcg_root_snapshot(struct sn_memcg_snapshot *s)
{
	struct slab_memcg *g = &root_group;
	s->usage = atomic_load_explicit(&g->charged, RLX);
	s->peak = atomic_load_explicit(&g->peak, RLX);
	s->max = atomic_load_explicit(&g->max, RLX);
	s->high = atomic_load_explicit(&g->high, RLX);
	s->failcnt = atomic_load_explicit(&g->failcnt, RLX);
	s->events_high = atomic_load_explicit(&g->events_high, RLX);
	s->events_max = atomic_load_explicit(&g->events_max, RLX);
	s->throttled_us = atomic_load_explicit(&g->throttled_us, RLX);
	if (s->peak < s->usage)
		s->peak = s->usage;
}

/* ------------------------------------------------------------------ */
/* Plain charges: memory slabnotify did not allocate                  */
/* ------------------------------------------------------------------ */

int slab_memcg_charge(struct slab_memcg *h, size_t bytes, slab_gfp_t gfp)
{
	ensure_init();
	struct memcg_thread *t = thread_self();
	struct slab_memcg *g = h ? group_of(h) : (t ? t->cur : &root_group);
	if (!g || g->dead)
		return fail(EINVAL);
	if (!bytes)
		return 0;
	if (charge_slow(t, g, bytes, 0, gfp))
		return fail(ENOMEM);
	return 0;
}

int slab_memcg_uncharge(struct slab_memcg *h, size_t bytes)
{
	ensure_init();
	struct memcg_thread *t = tls_self;
	struct slab_memcg *g = h ? group_of(h) : (t ? t->cur : &root_group);
	if (!g || g->dead)
		return fail(EINVAL);
	counters_uncharge(g, bytes);
	return 0;
}
