/*
 * memcg_charge.c - charging past the stock: refills, max (drains, reclaim,
 * vetoes), high (events and throttling), event callbacks, plain charges.
 * The design and the rules: memcg.h.
 */
#include "memcg.h"

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
size_t run_reclaim(struct slab_memcg *g, size_t want, slab_gfp_t gfp)
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
int charge_slow(struct memcg_thread *t, struct slab_memcg *g, size_t n, long objs, slab_gfp_t gfp)
{
	bool in_stock = false;
	if (t) {
		if (atomic_load_explicit(&t->stock.seq, RLX) != atomic_load(&sync_seq))
			stock_revalidate(t);
		if (objs && stock_consume(t, g, n))
			return 0;
		size_t extra = batch_room(g, n);
		if (extra) {
			pthread_mutex_lock(&t->lock);
			if (atomic_load_explicit(&t->stock.group, RLX) != g) {
				stock_drain_locked(t);
				atomic_store_explicit(&t->stock.group, g, RLX);
			}
			if (!counters_try_charge(g, n + extra)) {
				/* Under t->lock, by the owner: no drainer. */
				atomic_store_explicit(&t->stock.bytes, atomic_load_explicit(&t->stock.bytes, RLX) + extra,
						      RLX);
				atomic_store_explicit(&t->stock.nr_objs,
						      atomic_load_explicit(&t->stock.nr_objs, RLX) + objs, RLX);
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
	if (t && atomic_load_explicit(&t->stock.group, RLX) == g) {
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

void uncharge_object(struct slab_memcg *owner, size_t n)
{
	struct memcg_thread *t = tls_self;
	size_t b = t ? stock_put(t, owner, n) : 0;
	if (likely(b)) {
		if (unlikely(b > MEMCG_STOCK_MAX))
			stock_trim(t);
		return;
	}
	uncharge_direct(owner, n);
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
