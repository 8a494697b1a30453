/*
 * memcg_notifier.c - the ALLOC and FREE handler: who owns an object.
 * The design and the rules: memcg.h.
 */
#include "memcg.h"

#define SN_NOINLINE_MEMCG __attribute__((noinline))

/* ------------------------------------------------------------------ */
/* The notifier                                                       */
/* ------------------------------------------------------------------ */

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

/*
 * The owner of an object, in its obj_ext slot: NULL stands for the root
 * in SLAB_ACCOUNT caches, so that a process with only the root group
 * (what `slabnotify run --max` sets up) never makes the slot arrays. In
 * other caches (SLAB_GFP_ACCOUNT objects only) NULL means "not charged",
 * and the root is written out.
 */
static int owner_record(const struct slab_event_data *d, struct slab_memcg *g)
{
	if (g == &root_group && (d->flags & SLAB_ACCOUNT))
		return 0;
	void **slot = slab_event_ext(d, ext_slot);
	if (unlikely(!slot))
		return -ENOMEM;
	*slot = g;
	return 0;
}

static struct slab_memcg *owner_of(const struct slab_event_data *d)
{
	struct slab_memcg *owner = slab_event_ext_value(d, ext_slot);
	if (!owner && (d->flags & SLAB_ACCOUNT))
		owner = &root_group;
	return owner;
}

static SN_NOINLINE_MEMCG int memcg_alloc(const struct slab_event_data *d)
{
	if (!(d->flags & SLAB_ACCOUNT)) {
		if (!(d->gfp & SLAB_GFP_ACCOUNT))
			return SLAB_NOTIFY_DONE;
		if (unlikely(!acct_set_has(d->cache)) && !acct_set_add(d->cache))
			return (d->gfp & SLAB_GFP_NOFAIL) ? SLAB_NOTIFY_DONE : slab_notify_from_errno(-ENOMEM);
	}
	size_t n = d->footprint;
	struct memcg_thread *t = thread_self();
	struct slab_memcg *g = t ? t->cur : &root_group;
	if (unlikely(!(t && stock_consume(t, g, n))) && charge_slow(t, g, n, 1, d->gfp))
		return slab_notify_from_errno(-ENOMEM);
	if (unlikely(owner_record(d, g))) {
		/* No room to record the owner: the charge cannot stand. */
		uncharge_object(g, n);
		return (d->gfp & SLAB_GFP_NOFAIL) ? SLAB_NOTIFY_DONE : slab_notify_from_errno(-ENOMEM);
	}
	return SLAB_NOTIFY_OK;
}

static SN_NOINLINE_MEMCG void memcg_free(const struct slab_event_data *d)
{
	if (!(d->flags & SLAB_ACCOUNT) && !acct_set_has(d->cache))
		return;   /* nothing of it was ever charged */
	struct slab_memcg *owner = owner_of(d);
	if (owner)
		uncharge_object(owner, d->footprint);
}

/*
 * The common cases, with nothing called, so that the handler saves no
 * registers on its way: in a SLAB_ACCOUNT cache, a charge that the
 * thread's stock covers, its owner recorded where its slot exists (the
 * root needs none), and an uncharge into the stock. Anything else goes
 * the whole way, from the start.
 */
static inline bool alloc_fast(const struct slab_event_data *d)
{
	struct memcg_thread *t = tls_self;
	if (unlikely(!t) || unlikely(!(d->flags & SLAB_ACCOUNT)))
		return false;
	struct slab_memcg *g = t->cur;
	void **slot = NULL;
	if (g != &root_group && !(slot = slab_event_ext_made(d, ext_slot)))
		return false;
	if (!stock_consume(t, g, d->footprint))
		return false;
	if (slot)
		*slot = g;
	return true;
}

/* The stock's new size (trimmed by the caller above MEMCG_STOCK_MAX),
 * or 0 when the object went no further (memcg_free() does it all). */
static inline size_t free_fast(const struct slab_event_data *d)
{
	struct memcg_thread *t = tls_self;
	if (unlikely(!t) || unlikely(!(d->flags & SLAB_ACCOUNT)))
		return 0;
	struct slab_memcg *owner = slab_event_ext_value(d, ext_slot);
	return stock_put(t, owner ? owner : &root_group, d->footprint);
}

static int memcg_call(struct slab_notifier *nb, enum slab_event ev, const struct slab_event_data *d)
{
	(void)nb;
	if (likely(ev == SLAB_EVENT_ALLOC))
		return likely(alloc_fast(d)) ? SLAB_NOTIFY_OK : memcg_alloc(d);
	if (ev != SLAB_EVENT_FREE)
		return SLAB_NOTIFY_DONE;
	size_t stock = free_fast(d);
	if (unlikely(!stock))
		memcg_free(d);
	else if (unlikely(stock > MEMCG_STOCK_MAX))
		stock_trim(tls_self);
	return SLAB_NOTIFY_DONE;
}

struct slab_notifier memcg_nb = {
	.call = memcg_call,
	.priority = 0,
};

/*
 * The core's charges without an event (consumer.h): a thread's stock,
 * given to the core with its current group (memcg_stock.c,
 * memcg_tree.c), is taken from and given back to in the core's path,
 * which records the owner in ext_slot (NULL for the root, as here). What
 * the freeing thread's stock cannot take back goes to the owner's
 * counters; a full stock is trimmed.
 */
static void uncharge_owner(const void *owner, size_t n)
{
	uncharge_object((struct slab_memcg *)owner, n);
}

static void trim_own(void)
{
	if (tls_self)
		stock_trim(tls_self);
}

struct sn_charge memcg_charges = {
	.root = &root_group,
	.seq = &sync_seq,
	.stock_max = MEMCG_STOCK_MAX,
	.owner_slot = -1,   /* ext_slot, at init */
	.uncharge = uncharge_owner,
	.trim = trim_own,
};
