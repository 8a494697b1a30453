/*
 * notify_event.h - the notifier's per-event path (notify.c has the
 * design), inlined where the events start: the hooked allocation and free
 * (alloc.c), so that a notified pair makes one call per event, the
 * handler's. Only notify.c and alloc.c include it; everything else goes
 * through notify_alloc_hook() and notify_free_hook() (internal.h).
 */
#ifndef SLABNOTIFY_NOTIFY_EVENT_H
#define SLABNOTIFY_NOTIFY_EVENT_H

#include "internal.h"
#include "consumers/consumer.h"

#include <errno.h>

struct chain {
	struct rcu_head rcu;
	size_t map_bytes;
	uint32_t gen;
	uint32_t n;
	struct slab_notifier *nb[];
};

/* A slab's obj_ext arrays, in meta memory, each made on first need (its
 * stamps hang from the descriptor itself). */
struct slab_meta {
	_Atomic(void **) slots[SLAB_OBJ_EXT_SLOTS];
};
/* slab_event_ext() reads the arrays through the slab's meta pointer as an
 * array of arrays. */
_Static_assert(offsetof(struct slab_meta, slots) == 0, "slab_meta is its slots");

SN_HIDDEN extern struct chain *notify_chain;   /* RCU-protected */
SN_HIDDEN extern _Atomic int notify_ext_slots_used;
/* The gate (consumer.h), as installed. */
SN_HIDDEN extern const struct sn_notify_gate *_Atomic notify_gate;
/* What the chain's only member is, if anything the ALLOC path cares
 * about (else 0): the gate's notifier, whose gate may keep ALLOCs off
 * the chain, and the pinned notifier, whose ALLOCs are called directly.
 * One word, so that the common ALLOC tests both at once. */
#define SOLO_GATE   0x1u
#define SOLO_PINNED 0x2u
#define SOLO_CHARGE 0x4u   /* with SOLO_PINNED: it has charges (consumer.h) */
SN_HIDDEN extern _Atomic uint32_t notify_solo;
/* The stamp of an object allocated by the pinned notifier's direct ALLOC
 * (consumer.h; while it is the chain's only member): its FREE is due to
 * that notifier alone, for good. STAMP_CHARGED: the same, charged from
 * a stock with no event (consumer.h's charges), so that its free gives
 * the bytes back with no event either. Generations stay below both
 * (slab_notifier_register()). */
#define STAMP_PINNED  0x80000000u
#define STAMP_CHARGED 0x80000001u
SN_HIDDEN extern struct slab_notifier *_Atomic notify_pinned;
SN_HIDDEN extern const struct sn_charge *_Atomic notify_charge;
SN_HIDDEN uint32_t *stamps_make(struct slab *s);
SN_HIDDEN void notified_add_slow(struct slab_cache *c, long delta);
SN_HIDDEN void notify_drain_kick(struct slab_cache *c);
SN_HIDDEN int chain_roll_back(struct chain *ch, uint32_t i, enum slab_event undo, const struct slab_event_data *d,
			      int ret);
SN_HIDDEN void *alloc_vetoed(struct slab_cache *c, struct slab *s, uint32_t idx, void *obj, slab_gfp_t gfp,
			     int err);
SN_HIDDEN int veto_errno(struct slab_notifier *nb, const struct slab_event_data *d, int ret);

static inline uint32_t *stamps_of(struct slab *s)
{
	return atomic_load_explicit(&s->stamps, memory_order_acquire);
}

/* NULL every existing slot word of a freshly allocated object. */
static inline void ext_clear_slots(struct slab_meta *m, uint32_t idx)
{
	if (likely(!m))
		return;
	int used = atomic_load_explicit(&notify_ext_slots_used, memory_order_relaxed);
	for (int i = 0; i < used; i++) {
		void **arr = atomic_load_explicit(&m->slots[i], memory_order_acquire);
		if (arr)
			arr[idx] = NULL;
	}
}

/* The per-thread notified counts: see notify.c ("Switching"). @t is
 * the calling thread's own structure, not the dummy. */
static SN_ALWAYS_INLINE void notified_add_own(struct slab_thread *t, struct slab_cache *c, long delta)
{
	thread_touch(t, c->index);
	struct slab_cpu *cpu = &t->cpu[c->index];
	__atomic_store_n(&cpu->notified, cpu->notified + (unsigned long)delta, __ATOMIC_RELAXED);
}

static inline void notified_add(struct slab_cache *c, long delta)
{
	struct slab_thread *t = sn_tls_thread;
	if (unlikely(t == &sn_thread_dummy)) {
		notified_add_slow(c, delta);
		return;
	}
	notified_add_own(t, c, delta);
}

/* A stamped object or page went: with notification off, let the drain
 * look again (the CAS orders our count against its queued flag). */
static inline void notified_dec(struct slab_cache *c)
{
	notified_add(c, -1);
	if (likely(atomic_load_explicit(&c->hooks, memory_order_relaxed) & HOOK_ALLOC))
		return;
	notify_drain_kick(c);   /* its compare-and-swap is the full barrier */
}

static inline int call_one(struct slab_notifier *nb, enum slab_event ev, const struct slab_event_data *d)
{
	sn_witness_assert_unlocked("a notifier handler");
	return nb->call(nb, ev, d);
}

/*
 * Send @ev (ALLOC or NEWPAGE) along the chain @ch (non-empty). On a
 * veto, send @undo to the handlers before the vetoing one, in reverse.
 * Returns 0, or the negative errno of the veto. Caller holds the RCU read
 * lock and the handler guard.
 */
static SN_ALWAYS_INLINE int chain_call_alloc(struct chain *ch, enum slab_event ev, enum slab_event undo,
				   const struct slab_event_data *d)
{
	uint32_t i = 0;
	do {
		int ret = call_one(ch->nb[i], ev, d);
		if (unlikely(ret & SLAB_NOTIFY_STOP_MASK) && !(d->gfp & SLAB_GFP_NOFAIL))
			return chain_roll_back(ch, i, undo, d, ret);
	} while (++i < ch->n);
	return 0;
}

/* Send @ev (FREE or FREEPAGE) to the handlers that accepted @stamp: one
 * read-side section, the handler guard around the calls. A stamp at
 * least the array's generation (its newest member's) is due to every
 * handler in it: the common case, with no generation to compare. */
static SN_ALWAYS_INLINE void chain_call_free(enum slab_event ev, const struct slab_event_data *d, uint32_t stamp)
{
	sn_rcu_read_lock();
	struct chain *ch = sn_rcu_dereference(notify_chain);
	sn_handler_depth++;
	if (likely(ch) && likely(stamp >= ch->gen)) {
		for (uint32_t i = 0; i < ch->n; i++)
			call_one(ch->nb[i], ev, d);
	} else {
		for (uint32_t i = 0; ch && i < ch->n; i++)
			if (ch->nb[i]->_gen <= stamp)
				call_one(ch->nb[i], ev, d);
	}
	sn_handler_depth--;
	sn_rcu_read_unlock();
}

/* The FREE of an object stamped STAMP_PINNED, to the pinned notifier: no
 * read-side section, as no grace period can wait for a call of it (it is
 * never unregistered), and no array to walk. */
static SN_ALWAYS_INLINE void pinned_call_free(const struct slab_event_data *d)
{
	struct slab_notifier *nb = atomic_load_explicit(&notify_pinned, memory_order_relaxed);
	sn_handler_depth++;
	call_one(nb, SLAB_EVENT_FREE, d);
	sn_handler_depth--;
}

/* The gate, with its notifier alone (@solo), kept this ALLOC off the
 * chain (consumer.h). */
static SN_ALWAYS_INLINE bool gate_keeps(uint32_t solo, const struct slab_event_data *d)
{
	const struct sn_notify_gate *g =
		solo & SOLO_GATE ? atomic_load_explicit(&notify_gate, memory_order_acquire) : NULL;
	return g && !g->alloc(d);
}

/* The free of an object no handler accepted: the gate's. */
static SN_ALWAYS_INLINE void gate_free(const struct slab_event_data *d)
{
	const struct sn_notify_gate *g = atomic_load_explicit(&notify_gate, memory_order_acquire);
	if (g)
		g->free(d);
}

static inline size_t event_obj_size(const struct slab_cache *c, const struct slab *s)
{
	return (c->kind & CACHE_LARGE) ? s->large_size : c->object_size;
}

/* What an object takes: its stride, or a large object's pages. */
static inline size_t event_footprint(const struct slab_cache *c, const struct slab *s)
{
	if (c->kind & CACHE_LARGE)
		return (s->large_size + SN_PAGE_SIZE - 1) & ~(size_t)(SN_PAGE_SIZE - 1);
	return c->size;
}

/* The event of object @idx of @s: what handlers need, without a lookup. */
static SN_ALWAYS_INLINE void event_init(struct slab_event_data *d, const struct slab_cache *c, struct slab *s,
					 uint32_t idx, void *obj, slab_gfp_t gfp, size_t req)
{
	size_t size = event_obj_size(c, s);
	*d = (struct slab_event_data){ cache_handle(c), obj, size, gfp, req == SN_REQ_OBJECT ? size : req,
				       c->flags, event_footprint(c, s), (void *const *)&s->meta, idx };
}

/* Stamp object @idx of @s, its extension words NULLed first for the
 * handlers: the slab's stamp array, or NULL when it could not be made. */
static SN_ALWAYS_INLINE uint32_t *stamp_object(struct slab *s, uint32_t idx, uint32_t stamp)
{
	uint32_t *stamps = stamps_of(s);
	if (unlikely(!stamps) && !(stamps = stamps_make(s)))
		return NULL;
	ext_clear_slots(atomic_load_explicit(&s->meta, memory_order_acquire), idx);
	stamps[idx] = stamp;
	return stamps;
}

/* Count a stamped object of @c on the allocating thread (@cpu, its slot
 * of @c, when the caller has it: one store). */
static SN_ALWAYS_INLINE void notified_inc(struct slab_cache *c, struct slab_cpu *cpu)
{
	if (cpu)
		__atomic_store_n(&cpu->notified, cpu->notified + 1, __ATOMIC_RELAXED);
	else
		notified_add(c, 1);
}

/*
 * The ALLOC of an object while the pinned notifier is alone: one call,
 * outside any read-side section (no array is read, and the notifier is
 * never unregistered). With no read-side section for a switch-off's
 * grace period to wait for, the object is counted before its handler
 * runs, and the switch is read again after the count, across the light
 * fence of consumer.h; the drain reads the counts after the heavy one
 * (notify.c, "Switching"): either it sees this count, or this ALLOC sees
 * the switch off and goes unnotified.
 */
static SN_ALWAYS_INLINE void *pinned_alloc_event(struct slab_cache *c, struct slab *s, struct slab_cpu *cpu,
						 uint32_t idx, slab_gfp_t gfp, struct slab_event_data *d)
{
	uint32_t *stamps = stamp_object(s, idx, STAMP_PINNED);
	if (unlikely(!stamps))
		return alloc_vetoed(c, s, idx, d->ptr, gfp, -ENOMEM);
	notified_inc(c, cpu);
	sn_fence_light();
	struct slab_notifier *nb = atomic_load_explicit(&notify_pinned, memory_order_relaxed);
	int ret = 0;
	if (likely(atomic_load_explicit(&c->hooks, memory_order_relaxed) & HOOK_ALLOC)) {
		sn_handler_depth++;
		ret = call_one(nb, SLAB_EVENT_ALLOC, d);
		sn_handler_depth--;
		if (likely(!(ret & SLAB_NOTIFY_STOP_MASK)) || (gfp & SLAB_GFP_NOFAIL))
			return d->ptr;
	}
	stamps[idx] = 0;
	notified_dec(c);
	return ret ? alloc_vetoed(c, s, idx, d->ptr, gfp, veto_errno(nb, d, ret)) : d->ptr;
}

/*
 * The ALLOC event of object @idx of @s, on its way to the caller; @cpu
 * is the allocating thread's slot of @c when the caller has it (the
 * notified count is then one store), else NULL. One read-side section;
 * the object's stamp is written before the handlers run (so that
 * slab_obj_ext() works in them) and kept only if none vetoed. Inside a
 * handler, allocations are served quietly. Everything the veto path
 * needs is read back from the event, so that little stays live across
 * the handlers' calls.
 */
static SN_ALWAYS_INLINE void *notify_alloc_event(struct slab_cache *c, struct slab *s, struct slab_cpu *cpu,
					  uint32_t idx, void *obj, slab_gfp_t gfp, size_t req)
{
	if (sn_handler_depth)
		return obj;
	struct slab_event_data d;
	event_init(&d, c, s, idx, obj, gfp, req);
	uint32_t solo = atomic_load_explicit(&notify_solo, memory_order_acquire);
	if (unlikely(solo)) {
		if (gate_keeps(solo, &d))
			return obj;
		if (solo & SOLO_PINNED)
			return pinned_alloc_event(c, s, cpu, idx, gfp, &d);
	}
	sn_rcu_read_lock();
	struct chain *ch = sn_rcu_dereference(notify_chain);
	if (unlikely(!ch || !ch->n) || !(atomic_load_explicit(&c->hooks, memory_order_relaxed) & HOOK_ALLOC)) {
		sn_rcu_read_unlock();
		return obj;
	}
	uint32_t *stamps = stamp_object(s, idx, ch->gen);
	if (unlikely(!stamps)) {
		sn_rcu_read_unlock();
		return alloc_vetoed(c, s, idx, obj, gfp, -ENOMEM);
	}
	sn_handler_depth++;
	int err = chain_call_alloc(ch, SLAB_EVENT_ALLOC, SLAB_EVENT_FREE, &d);
	sn_handler_depth--;
	if (likely(!err)) {
		notified_inc(c, cpu);
		sn_rcu_read_unlock();
		return d.ptr;
	}
	stamps[idx] = 0;
	sn_rcu_read_unlock();
	return alloc_vetoed(c, s, idx, obj, gfp, err);
}

/* ------------------------------------------------------------------ */
/* The charges without an event (consumer.h)                          */
/* ------------------------------------------------------------------ */

/*
 * No call on their common way, so that the hooked paths that take them
 * save no registers: everything else is a tail call out.
 *   The ALLOC takes the footprint from the thread's stock first (which
 * changes nothing when it cannot), then counts the object, and reads the
 * switch again across the light fence, as the pinned notifier's direct
 * ALLOC does; a switch found off gives the bytes back (charged_undo()).
 */
SN_HIDDEN void *charged_undo(struct slab_cache *c, uint32_t idx, size_t n);
SN_HIDDEN void charged_free_slow(const char *fn, struct slab_cache *c, struct slab *s, void *obj, uint32_t idx,
				 size_t left);

static SN_ALWAYS_INLINE unsigned long charge_seq(const struct sn_charge *ch)
{
	return atomic_load_explicit(ch->seq, memory_order_relaxed);
}

/* The owners' array (the charges' extension slot) of a slab with the
 * arrays @m, or NULL. */
static SN_ALWAYS_INLINE void **charge_owners_of(const struct sn_charge *ch, struct slab_meta *m)
{
	return m ? atomic_load_explicit(&m->slots[ch->owner_slot], memory_order_acquire) : NULL;
}

/* The same for the charged way to write in, or NULL when another
 * consumer has slots too (which that way would have to clear). */
static SN_ALWAYS_INLINE void **charge_owners(const struct sn_charge *ch, struct slab_meta *m)
{
	if (atomic_load_explicit(&notify_ext_slots_used, memory_order_relaxed) != 1)
		return NULL;
	return charge_owners_of(ch, m);
}

/* The owner of charged object @idx of @s. */
static SN_ALWAYS_INLINE const void *charge_owner(const struct sn_charge *ch, struct slab *s, uint32_t idx)
{
	void **owners = charge_owners_of(ch, atomic_load_explicit(&s->meta, memory_order_acquire));
	void *owner = owners ? owners[idx] : NULL;
	return owner ? owner : ch->root;
}

/* The rest of a hooked allocation: alloc.c's, the whole way. */
typedef void *(*alloc_way_fn)(const char *fn, struct slab_cache *c, uint32_t idx, slab_gfp_t gfp, size_t req);

/* Object @idx of the calling thread's current slab of @c, just off its
 * chain, charged with no event, or else @whole's (a tail call: nothing
 * was changed). A slab with extension arrays goes to @meta, which is this
 * with @in_meta, entered only from here: the owner is written there, so
 * that the common way (the root's, in a slab with no arrays) keeps fewer
 * values live. */
static SN_ALWAYS_INLINE void *charged_alloc(const char *fn, struct slab_cache *c, uint32_t idx, slab_gfp_t gfp,
					    size_t req, alloc_way_fn whole, alloc_way_fn meta, bool in_meta)
{
	struct slab_thread *t = sn_tls_thread;
	struct sn_stock *st = t->stock;
	if (!in_meta) {   /* @meta is reached only from here, after these */
		if (likely(!st))   /* the one test that the other ways pay */
			return whole(fn, c, idx, gfp, req);
		uint32_t solo = atomic_load_explicit(&notify_solo, memory_order_acquire);
		if (!(solo & SOLO_CHARGE) || !(c->flags & SLAB_ACCOUNT) || gfp || sn_handler_depth ||
		    (atomic_load_explicit(&c->hooks, memory_order_relaxed) & (HOOK_GUARD | HOOK_DEBUG)))
			return whole(fn, c, idx, gfp, req);
	}
	struct slab_cpu *cpu = cpu_of(t, c);
	struct slab *s = cpu->slab;
	const struct sn_charge *ch = atomic_load_explicit(&notify_charge, memory_order_relaxed);
	const void *g = t->charge_group;
	struct slab_meta *m = atomic_load_explicit(&s->meta, memory_order_acquire);
	void **owners = NULL;
	if (!in_meta) {
		if (unlikely(m))
			return meta(fn, c, idx, gfp, req);
		if (g != ch->root)   /* an owner with nowhere to go: the whole way makes the array */
			return whole(fn, c, idx, gfp, req);
	} else if (!(owners = charge_owners(ch, m))) {
		return whole(fn, c, idx, gfp, req);
	}
	uint32_t *stamps = stamps_of(s);
	size_t n = event_footprint(c, s);
	if (unlikely(!stamps) || !sn_stock_consume(st, g, charge_seq(ch), n))
		return whole(fn, c, idx, gfp, req);
	notified_inc(c, cpu);
	sn_fence_light();
	if (unlikely(!(atomic_load_explicit(&c->hooks, memory_order_relaxed) & HOOK_ALLOC)))
		return charged_undo(c, idx, n);
	if (in_meta)
		owners[idx] = g == ch->root ? NULL : (void *)g;
	stamps[idx] = STAMP_CHARGED;
	return cpu->base_m1 + (size_t)(idx + 1) * c->size;
}

/* The FREE of object @idx of @s, if it was charged (@in_meta: the slab
 * has extension arrays, so the owner may be another group): its stamp cleared,
 * its count taken back (then the switch read, as notified_dec() does)
 * and its bytes back in the freeing thread's stock. Returns CHARGED_NO
 * (not charged: the event way), CHARGED_DONE, or what is left for
 * charged_free_slow(): the stock's size (0: uncharge(), above stock_max:
 * trim(); the switch off: the drain's kick), or SIZE_MAX with nothing
 * done (no stock). Stock sizes after a put are at least a footprint, so
 * never CHARGED_NO or CHARGED_DONE. */
#define CHARGED_NO   ((size_t)1)
#define CHARGED_DONE ((size_t)2)
static SN_ALWAYS_INLINE size_t charged_free(struct slab_cache *c, struct slab *s, uint32_t idx, bool in_meta)
{
	uint32_t *stamps = stamps_of(s);
	if (likely(!stamps) || stamps[idx] != STAMP_CHARGED)
		return CHARGED_NO;
	struct slab_thread *t = sn_tls_thread;
	struct sn_stock *st = t->stock;
	if (unlikely(!st))
		return SIZE_MAX;
	const struct sn_charge *ch = atomic_load_explicit(&notify_charge, memory_order_relaxed);
	const void *owner = in_meta ? charge_owner(ch, s, idx) : ch->root;
	size_t left = sn_stock_put(st, owner, charge_seq(ch), event_footprint(c, s));
	stamps[idx] = 0;
	notified_add_own(t, c, -1);   /* a stock is never the dummy thread's */
	if (likely(left > CHARGED_DONE && left <= ch->stock_max) &&
	    likely(atomic_load_explicit(&c->hooks, memory_order_relaxed) & HOOK_ALLOC))
		return CHARGED_DONE;
	return left;
}

/* The FREE event of object @idx of @s, if its ALLOC was notified; else
 * the gate's free. A charged object (charged_free() did not take it)
 * is uncharged here. */
static SN_ALWAYS_INLINE void notify_free_event(struct slab_cache *c, struct slab *s, uint32_t idx, void *obj)
{
	uint32_t *stamps = stamps_of(s);
	uint32_t stamp = stamps ? stamps[idx] : 0;
	if (unlikely(stamp == STAMP_CHARGED)) {
		const struct sn_charge *ch = atomic_load_explicit(&notify_charge, memory_order_relaxed);
		stamps[idx] = 0;
		notified_dec(c);
		ch->uncharge(charge_owner(ch, s, idx), event_footprint(c, s));
		return;
	}
	struct slab_event_data d;
	event_init(&d, c, s, idx, obj, 0, SN_REQ_OBJECT);
	if (!stamp) {
		gate_free(&d);
		return;
	}
	if (stamp == STAMP_PINNED)
		pinned_call_free(&d);
	else
		chain_call_free(SLAB_EVENT_FREE, &d, stamp);
	stamps[idx] = 0;     /* after the handlers: slab_obj_ext() works in them */
	notified_dec(c);
}

#endif /* SLABNOTIFY_NOTIFY_EVENT_H */
