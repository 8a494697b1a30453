/*
 * memcg_stock.c - the per-thread stocks: the registry, draining, trimming
 * (the fast consume and put are inline in memcg.h).
 * The design and the rules: memcg.h.
 */
#include "memcg.h"

/* ------------------------------------------------------------------ */
/* Per-thread stocks                                                  */
/* ------------------------------------------------------------------ */

struct memcg_thread *thread_self_slow(void)
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
	atomic_store_explicit(&t->stock.bytes, 0, RLX);
	atomic_store_explicit(&t->stock.group, NULL, RLX);
	atomic_store_explicit(&t->stock.nr_objs, 0, RLX);
	atomic_store_explicit(&t->stock.consumed, 0, RLX);
	atomic_store_explicit(&t->stock.hw, 0, RLX);
	atomic_store_explicit(&t->stock.seq, atomic_load(&sync_seq), RLX);
	t->cur = &root_group;
	pthread_mutex_unlock(&t->lock);
	tls_self = t;
	sn_thread_stock_set(&t->stock, &root_group);
	if (key_ok)
		pthread_setspecific(thread_key, t);
	tls_creating = false;
	return t;
}






/* Drainer, holding t->lock: the owner's fast path is out of the bytes. */
static void drainer_enter(struct memcg_thread *t)
{
	atomic_store_explicit(&t->stock.draining, 1, RLX);
	if (t == tls_self)
		return;     /* the owner is here: not in its fast path */
	sn_fence_heavy();
	while (atomic_load_explicit(&t->stock.busy, memory_order_acquire))
		sched_yield();
}

static void drainer_leave(struct memcg_thread *t)
{
	atomic_store_explicit(&t->stock.draining, 0, memory_order_release);
}

/* Take the bytes out of @t's stock and uncharge them. Caller holds t->lock. */
void stock_take_locked(struct memcg_thread *t)
{
	struct slab_memcg *g = atomic_load_explicit(&t->stock.group, RLX);
	if (!g)
		return;
	drainer_enter(t);
	size_t x = atomic_load_explicit(&t->stock.bytes, RLX);
	atomic_store_explicit(&t->stock.bytes, 0, RLX);
	drainer_leave(t);
	if (x)
		counters_uncharge(g, x);
}

/*
 * Owner only: raise the peaks of the stock's group and ancestors to what
 * this stock has seen since its last sync, then restart its high-water
 * mark. Valid for a group unless its peak was reset since.
 */
void stock_sync_peak(struct memcg_thread *t)
{
	struct slab_memcg *g = atomic_load_explicit(&t->stock.group, RLX);
	unsigned long seq = atomic_load(&sync_seq);
	if (g) {
		unsigned long hs = atomic_load_explicit(&t->stock.seq, RLX);
		long extra = atomic_load_explicit(&t->stock.hw, RLX) - atomic_load_explicit(&t->stock.consumed, RLX);
		size_t bytes = atomic_load_explicit(&t->stock.bytes, RLX);
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
	atomic_store_explicit(&t->stock.consumed, 0, RLX);
	atomic_store_explicit(&t->stock.hw, 0, RLX);
	atomic_store_explicit(&t->stock.seq, seq, RLX);
}

static bool over_max(struct slab_memcg *g)
{
	for (struct slab_memcg *a = g; a; a = a->parent)
		if (atomic_load_explicit(&a->charged, RLX) > atomic_load_explicit(&a->max, RLX))
			return true;
	return false;
}

/*
 * Owner, after sync_seq moved (a peak reset, a limit change, a forced
 * charge): fold the stock's high-water mark into the peaks, and keep the
 * stock only if its group and every ancestor are within max. A stock's
 * bytes count in `charged`, which the CAS keeps within max; a max set
 * below usage or a NOFAIL charge breaks that, and until a refill finds
 * room again the stock must neither hand out nor take back bytes.
 */
void stock_revalidate(struct memcg_thread *t)
{
	pthread_mutex_lock(&t->lock);
	stock_sync_peak(t);
	struct slab_memcg *g = atomic_load_explicit(&t->stock.group, RLX);
	if (g && over_max(g))
		stock_drain_locked(t);
	pthread_mutex_unlock(&t->lock);
}

/* Owner: empty the stock completely and detach it from its group. */
void stock_drain_locked(struct memcg_thread *t)
{
	struct slab_memcg *g = atomic_load_explicit(&t->stock.group, RLX);
	stock_sync_peak(t);
	if (!g)
		return;
	stock_take_locked(t);
	long d = atomic_exchange_explicit(&t->stock.nr_objs, 0, RLX);
	if (d)
		objs_add(g, d);
	atomic_store_explicit(&t->stock.group, NULL, RLX);
}

void stock_drain_own(struct memcg_thread *t)
{
	pthread_mutex_lock(&t->lock);
	stock_drain_locked(t);
	pthread_mutex_unlock(&t->lock);
}

/* Drain every thread's stock of a group in @top's subtree. */
void drain_stocks_under(struct slab_memcg *top)
{
	for (struct memcg_thread *t = atomic_load_explicit(&registry, memory_order_acquire); t;
	     t = t->next) {
		/* Under t->lock even when it looks empty: a refill holds the
		 * lock from its charge until the bytes are in the stock. */
		pthread_mutex_lock(&t->lock);
		struct slab_memcg *g = atomic_load_explicit(&t->stock.group, RLX);
		if (g && in_subtree(g, top))
			stock_take_locked(t);
		pthread_mutex_unlock(&t->lock);
	}
}

/* Trim a stock that grew from uncharges back to one batch. */
void stock_trim(struct memcg_thread *t)
{
	pthread_mutex_lock(&t->lock);
	struct slab_memcg *g = atomic_load_explicit(&t->stock.group, RLX);
	size_t b = atomic_load_explicit(&t->stock.bytes, RLX);
	if (g && b > MEMCG_BATCH) {
		/* Only the owner adds bytes and it is here; a drainer holds
		 * the lock we hold: the value cannot move. */
		atomic_store_explicit(&t->stock.bytes, MEMCG_BATCH, RLX);
		counters_uncharge(g, b - MEMCG_BATCH);
	}
	pthread_mutex_unlock(&t->lock);
}

void thread_exit(void *arg)
{
	struct memcg_thread *t = arg;
	stock_drain_own(t);
	pthread_mutex_lock(&tree_lock);
	if (t->cur && t->cur != &root_group)
		t->cur->nr_current--;
	t->cur = &root_group;
	pthread_mutex_unlock(&tree_lock);
	sn_thread_stock_set(NULL, NULL);   /* the exiting thread's, before @t can serve another */
	if (tls_self == t)
		tls_self = NULL;
	atomic_store_explicit(&t->in_use, false, memory_order_release);
}
