/*
 * notify.c - the slab event notifier chain (the 2007 seed, done right).
 *
 * The chain is an immutable, priority-ordered array of handlers,
 * published with sn_rcu_assign_pointer() and replaced whole on every
 * registration change (copy on write). Callers walk it under the
 * liburcu-bp read side: lockless, and handlers may sleep. A pinned
 * notifier (memcg's, the profile's: never unregistered) gets its ALLOCs,
 * and the FREEs of the objects allocated then, directly, without the
 * read side, while it is alone in the chain (notify_solo).
 *
 * Pairing: every registration gets a generation number; an array
 * version carries the generation of its newest member. A notified
 * object (page) is stamped with the generation of the array its ALLOC
 * (NEWPAGE) walked; its FREE (FREEPAGE) goes to the handlers of the
 * current array whose generation is at most the stamp: exactly those
 * that accepted, minus those unregistered since. An object allocated by
 * the pinned notifier's direct ALLOC (while it is the array's only
 * member) is stamped STAMP_PINNED instead: its FREE is due to it alone,
 * for good; one charged from a stock with no event (the charges,
 * consumer.h) STAMP_CHARGED, and its free gives the bytes back with no
 * event either. Stamp 0 means "not notified": objects allocated while
 * notification was off, inside a handler, or with no handler registered.
 *
 * A veto rolls back exactly: FREE (FREEPAGE) to the handlers that
 * accepted before the vetoing one, in reverse order, then the object
 * goes back to its freelist (the page to the OS) with no other event.
 *
 * Runtime switching: HOOK_ALLOC follows the switch. HOOK_FREE stays on
 * while stamped objects or pages may be live; when notification is off
 * and the last one goes, an RCU callback clears it, so that the
 * notification-off fast path is back to a single untaken branch. The
 * grace period orders that against ALLOC hooks that saw the switch on.
 */
#include "notify_event.h"
#include "probes.h"
#include "test_hooks.h"
#include "consumers/consumer.h"

#include <errno.h>
#include <stdlib.h>

__thread int sn_handler_depth SN_TLS;
#if defined(__SANITIZE_THREAD__)
char sn_rcu_tsan_token;
#endif

#define NB_REGISTERED 0x1u
#define NB_PINNED     0x2u   /* sn_notifier_pin(): never unregistered */

static struct sn_mutex chain_lock = SN_MUTEX_INIT(SN_RANK_CHAIN);
struct chain *notify_chain;     /* RCU-protected */
uint32_t notify_chain_gen;            /* under chain_lock */
_Atomic int notify_ext_slots_used;
const struct sn_notify_gate *_Atomic notify_gate;
_Atomic uint32_t notify_solo;

bool sn_test_free_hooked(const struct slab_cache *h)
{
	const struct slab_cache *c = cache_of_handle((struct slab_cache *)h);
	return c && (atomic_load(&c->hooks) & HOOK_FREE);
}

bool slab_in_handler(void)
{
	return sn_handler_depth > 0;
}

/* The handler guard, for slabnotify's own work (consumer.h). */
void sn_quiet_begin(void)
{
	sn_handler_depth++;
}

void sn_quiet_end(void)
{
	sn_handler_depth--;
}

/* ------------------------------------------------------------------ */
/* Stamps and extension arrays                                        */
/* ------------------------------------------------------------------ */

/* An array of @n elements of @elem bytes installed in @slot once. */
static void *meta_array(_Atomic(void *) *slot, size_t n, size_t elem)
{
	void *arr = atomic_load_explicit(slot, memory_order_acquire);
	if (likely(arr))
		return arr;
	void *fresh = meta_zalloc(n * elem);
	if (!fresh)
		return NULL;
	if (!atomic_compare_exchange_strong(slot, &arr, fresh)) {
		meta_free(fresh);
		return arr;
	}
	return fresh;
}

/* The slab's stamp array (in its descriptor: one load), made with the
 * slab's first notified object. */
SN_NOINLINE uint32_t *stamps_make(struct slab *s)
{
	return meta_array((_Atomic(void *) *)&s->stamps, slab_capacity(s), sizeof(uint32_t));
}

static struct slab_meta *meta_get(struct slab *s, bool create)
{
	struct slab_meta *m = atomic_load_explicit(&s->meta, memory_order_acquire);
	if (likely(m) || !create)
		return m;
	return meta_array((_Atomic(void *) *)&s->meta, 1, sizeof(struct slab_meta));
}

void notify_slab_release_meta(struct slab *s)
{
	meta_free(atomic_exchange(&s->stamps, NULL));
	struct slab_meta *m = atomic_exchange(&s->meta, NULL);
	if (!m)
		return;
	for (int i = 0; i < SLAB_OBJ_EXT_SLOTS; i++)
		meta_free(atomic_load(&m->slots[i]));
	meta_free(m);
}

int slab_obj_ext_reserve(void)
{
	int n = atomic_load(&notify_ext_slots_used);
	do {
		if (n >= SLAB_OBJ_EXT_SLOTS) {
			errno = ENOSPC;
			return -ENOSPC;
		}
	} while (!atomic_compare_exchange_weak(&notify_ext_slots_used, &n, n + 1));
	return n;
}

/* Slot @slot's word of object @idx of the notified slab @s, its array
 * made on first need. */
static void **ext_word(struct slab *s, uint32_t idx, int slot)
{
	struct slab_meta *m = meta_get(s, true);
	if (!m)
		return NULL;
	void **arr = meta_array((_Atomic(void *) *)&m->slots[slot], slab_capacity(s), sizeof(void *));
	return arr ? &arr[idx] : NULL;
}

void **slab_obj_ext(const void *obj, int slot)
{
	if (!obj || slot < 0 || slot >= atomic_load(&notify_ext_slots_used))
		return NULL;
	struct slab *s = slab_of(obj);
	struct slab_cache *c = s ? __atomic_load_n(&s->cache, __ATOMIC_ACQUIRE) : NULL;
	uint64_t idx;
	if (c) {
		idx = slab_obj_index(c, s->base, obj);
		if (idx >= c->objects)
			return NULL;
	} else if ((s = large_find(obj))) {
		c = s->cache;
		idx = 0;
	} else {
		return NULL;
	}
	if (!(atomic_load_explicit(&c->hooks, memory_order_relaxed) & (HOOK_ALLOC | HOOK_FREE)))
		return NULL;
	uint32_t *stamps = stamps_of(s);
	if (!stamps || !stamps[idx])   /* not notified: no extension */
		return NULL;
	return ext_word(s, (uint32_t)idx, slot);
}

/* slab_event_ext() when the array is not made yet (or a bad slot). The
 * event's slab is the one whose arrays it points to: no lookup, and no
 * stamp needed (the gate's objects have none). */
void **slab_event_ext_slow(const struct slab_event_data *d, int slot)
{
	if (d->_idx == UINT32_MAX || !d->_ext || slot < 0 || slot >= atomic_load(&notify_ext_slots_used))
		return NULL;     /* a page event, or no such slot */
	struct slab *s = caa_container_of((void *)d->_ext, struct slab, meta);
	return ext_word(s, d->_idx, slot);
}

/* ------------------------------------------------------------------ */
/* Switching                                                          */
/* ------------------------------------------------------------------ */

void notify_cache_init(struct slab_cache *c)
{
	sn_mutex_init(&c->notify_lock, SN_RANK_NOTIFY);
	atomic_store(&c->dead_notified, 0);
	atomic_store(&c->drain_queued, false);
	atomic_store(&c->rcu_pending, 0);
}

/* slab_cache_destroy(): once the cache is DYING no drain re-queues
 * itself; wait until no callback queued for it remains, so that the
 * slot (and its rcu_head) can be reused. */
void notify_cache_quiesce(struct slab_cache *c)
{
	while (atomic_load(&c->rcu_pending) > 0)
		sn_rcu_barrier();
}

uint32_t notify_initial_hooks(slab_flags_t flags)
{
#ifdef SLABNOTIFY_NO_NOTIFY
	(void)flags;
	return 0;
#else
	return (flags & (SLAB_NOTIFY | SLAB_ACCOUNT)) ? HOOK_ALLOC | HOOK_FREE : 0;
#endif
}

/* Per-thread notified counts (see struct slab_cpu). Only the owning
 * thread writes its slot; relaxed stores keep TSan's model exact. A
 * thread with no structure yet (a free before its first allocation)
 * makes one, out of line. */
SN_NOINLINE void notified_add_slow(struct slab_cache *c, long delta)
{
	struct slab_thread *t = thread_get();
	if (unlikely(!t)) {
		atomic_fetch_add(&c->dead_notified, delta);
		return;
	}
	thread_touch(t, c->index);
	struct slab_cpu *cpu = &t->cpu[c->index];
	__atomic_store_n(&cpu->notified, cpu->notified + (unsigned long)delta, __ATOMIC_RELAXED);
}

/* Stamped objects and pages of @c that may be live. Once notification
 * is off and a grace period has passed no count goes up, so a sum of
 * zero read then is exact (each term read is at least its final value). */
static long notified_live(const struct slab_cache *c)
{
	unsigned long v[SN_NR_CPU_COUNTERS];
	threads_sum_counters(c, v);
	return (long)v[5] + atomic_load(&((struct slab_cache *)c)->dead_notified);
}

/*
 * Clearing HOOK_FREE is safe once every ALLOC hook that saw notification
 * on has finished and counted its stamp. Such a hook read the switch in
 * an RCU read-side section that began before the last switch-off, so a
 * grace period that starts after the last switch-off covers it. A direct
 * ALLOC of the pinned notifier has no read-side section: it counts its
 * stamp first and reads the switch again after a light fence, and the
 * drain sums the counts after a heavy one (consumer.h), so either the
 * drain sees its count or it sees the switch off and stays unnotified.
 * A drain queued before a later switch-off is therefore queued again
 * instead. While stamped objects remain, the drain stands down; the free of one
 * with notification off queues it again.
 */
static void drain_schedule(struct slab_cache *c);

static void drain_cb(struct rcu_head *head)
{
	SN_RCU_CALLBACK_BEGIN();
	struct slab_cache *c = caa_container_of(head, struct slab_cache, drain_rcu);
	/* Summed before taking notify_lock (the registry lock nests the other
	 * way round); a switch-on or -off since is caught under the lock.
	 * After the heavy fence: the direct ALLOCs of the pinned notifier
	 * (notify_event.h) count before they read the switch, outside any
	 * read-side section. */
	sn_fence_heavy();
	long live = notified_live(c);
	bool stood_down = false;
	sn_lock(&c->notify_lock);
	bool off = !(atomic_load(&c->hooks) & HOOK_ALLOC);
	bool dying = atomic_load(&c->state) != CACHE_LIVE;
	if (off && !dying && c->drain_seq != atomic_load(&c->off_seq)) {
		c->drain_seq = atomic_load(&c->off_seq);
		sn_call_rcu(&c->drain_rcu, drain_cb);      /* still queued */
		sn_unlock(&c->notify_lock);
		SN_RCU_CALLBACK_END();
		return;
	} else if (off && live == 0) {
		atomic_fetch_and(&c->hooks, ~HOOK_FREE);
		atomic_store(&c->drain_queued, false);
	} else {
		atomic_store(&c->drain_queued, false);
		stood_down = off && !dying;
	}
	sn_unlock(&c->notify_lock);
	/* A free that found the drain still queued relies on us. */
	if (stood_down && notified_live(c) == 0)
		drain_schedule(c);
	atomic_fetch_sub(&c->rcu_pending, 1);
	SN_RCU_CALLBACK_END();
}

/* Clear HOOK_FREE after a grace period if nothing stamped is live then. */
static void drain_schedule(struct slab_cache *c)
{
	bool expected = false;
	if (atomic_load(&c->state) == CACHE_LIVE &&
	    atomic_compare_exchange_strong(&c->drain_queued, &expected, true)) {
		sn_lock(&c->notify_lock);
		c->drain_seq = atomic_load(&c->off_seq);
		sn_unlock(&c->notify_lock);
		atomic_fetch_add(&c->rcu_pending, 1);
		sn_call_rcu(&c->drain_rcu, drain_cb);
	}
}

/* A stamped object or page went while notification is off: let the
 * drain look again. */
void notify_drain_kick(struct slab_cache *c)
{
	drain_schedule(c);
}

int slab_cache_set_notify(struct slab_cache *h, bool on)
{
	struct slab_cache *c = cache_of_handle(h);
	if (!c || atomic_load(&c->state) != CACHE_LIVE) {
		errno = EINVAL;
		return -EINVAL;
	}
#ifdef SLABNOTIFY_NO_NOTIFY
	(void)on;
	errno = ENOSYS;
	return -ENOSYS;
#else
	sn_lock(&c->notify_lock);
	if (on) {
		atomic_fetch_or(&c->hooks, HOOK_ALLOC | HOOK_FREE);
	} else {
		atomic_fetch_and(&c->hooks, ~HOOK_ALLOC);
		atomic_fetch_add(&c->off_seq, 1);
	}
	sn_unlock(&c->notify_lock);
	if (!on)
		drain_schedule(c);
	return 0;
#endif
}

bool slab_cache_notify_enabled(const struct slab_cache *h)
{
	struct slab_cache *c = cache_of_handle(h);
	return c && (atomic_load(&c->hooks) & HOOK_ALLOC);
}

/* ------------------------------------------------------------------ */
/* Calling the chain                                                  */
/* ------------------------------------------------------------------ */

/* Handlers before @i, in reverse, get @undo; the veto's errno. */
SN_NOINLINE int chain_roll_back(struct chain *ch, uint32_t i, enum slab_event undo,
				       const struct slab_event_data *d, int ret)
{
	for (uint32_t j = i; j-- > 0;)
		call_one(ch->nb[j], undo, d);
	return veto_errno(ch->nb[i], d, ret);
}

/* The errno of @nb's veto @ret; the probe names its cause: the vetoing
 * handler's function and priority. */
SN_NOINLINE int veto_errno(struct slab_notifier *nb, const struct slab_event_data *d, int ret)
{
	int err = slab_notify_to_errno(ret);
	if (SN_PROBE_ACTIVE(veto))
		SN_PROBE4(veto, slab_cache_name(d->cache), err ? err : -ENOMEM, (void *)nb->call, nb->priority);
	return err ? err : -ENOMEM;
}

/* The object goes back after a veto (or a failure to stamp it), with no
 * further event; errno is the veto's. */
SN_NOINLINE void *alloc_vetoed(struct slab_cache *c, struct slab *s, uint32_t idx, void *obj,
				      slab_gfp_t gfp, int err)
{
	sn_handler_depth++;
	if (c->kind & CACHE_LARGE) {
		large_release(s);
	} else {
		/* Zeroed for the caller: constructed again before it goes back
		 * to its chain, as a free object must be. */
		if (c->ctor && (gfp & SLAB_GFP_ZERO))
			c->ctor(obj);
		slab_free_nohook("slab_alloc", c, s, obj, idx);
	}
	sn_handler_depth--;
	errno = -err;
	return NULL;
}

/* charged_alloc() found the switch off after it took the bytes: they go
 * back, the count with them, and the object goes unnotified. */
void *charged_undo(struct slab_cache *c, uint32_t idx, size_t n)
{
	const struct sn_charge *ch = atomic_load_explicit(&notify_charge, memory_order_relaxed);
	struct slab_thread *t = sn_tls_thread;
	struct slab_cpu *cpu = cpu_of(t, c);
	if (!sn_stock_put(t->stock, t->charge_group, charge_seq(ch), n))
		ch->uncharge(t->charge_group, n);
	notified_dec(c);
	return cpu->base_m1 + (size_t)(idx + 1) * c->size;
}

void *notify_alloc_hook(struct slab_cache *c, struct slab *s, uint32_t idx, void *obj, slab_gfp_t gfp,
			size_t req)
{
	return notify_alloc_event(c, s, NULL, idx, obj, gfp, req);
}

void notify_free_hook(struct slab_cache *c, struct slab *s, uint32_t idx, void *obj)
{
	notify_free_event(c, s, idx, obj);
}

int notify_newpage(struct slab_cache *c, struct slab *s, slab_gfp_t gfp)
{
	if (sn_handler_depth)
		return 0;
	size_t bytes = slab_bytes_of(c);
	struct slab_event_data d = { cache_handle(c), s->base, bytes, gfp, bytes, c->flags, bytes, NULL, UINT32_MAX };
	int err = 0;
	sn_rcu_read_lock();
	struct chain *ch = sn_rcu_dereference(notify_chain);
	if (ch && ch->n && (atomic_load(&c->hooks) & HOOK_ALLOC)) {
		sn_handler_depth++;
		err = chain_call_alloc(ch, SLAB_EVENT_NEWPAGE, SLAB_EVENT_FREEPAGE, &d);
		sn_handler_depth--;
		if (!err) {
			s->page_stamp = ch->gen;
			notified_add(c, 1);
		}
	}
	sn_rcu_read_unlock();
	return err;
}

void notify_freepage(struct slab_cache *c, struct slab *s)
{
	uint32_t stamp = s->page_stamp;
	s->page_stamp = 0;
	size_t bytes = slab_bytes_of(c);
	struct slab_event_data d = { cache_handle(c), s->base, bytes, 0, bytes, c->flags, bytes, NULL, UINT32_MAX };
	chain_call_free(SLAB_EVENT_FREEPAGE, &d, stamp);
	notified_dec(c);
}

/* ------------------------------------------------------------------ */
/* Registration                                                       */
/* ------------------------------------------------------------------ */

static struct chain *chain_alloc(uint32_t n)
{
	size_t bytes = sizeof(struct chain) + n * sizeof(struct slab_notifier *);
	bytes = (bytes + SN_PAGE_SIZE - 1) & ~(SN_PAGE_SIZE - 1);
	struct chain *ch = os_map(bytes);
	if (ch)
		ch->map_bytes = bytes;
	return ch;
}

static void chain_free_rcu(struct rcu_head *head)
{
	SN_RCU_CALLBACK_BEGIN();
	struct chain *ch = caa_container_of(head, struct chain, rcu);
	os_unmap(ch, ch->map_bytes);
	SN_RCU_CALLBACK_END();
}

/* What the chain @ch's only member is (notify_solo). Under chain_lock. */
static uint32_t solo_of(const struct chain *ch)
{
	if (!ch || ch->n != 1)
		return 0;
	const struct sn_notify_gate *g = atomic_load(&notify_gate);
	uint32_t solo = g && ch->nb[0] == g->nb ? SOLO_GATE : 0;
	if (ch->nb[0] == atomic_load_explicit(&notify_pinned, memory_order_relaxed))
		solo |= SOLO_PINNED | (atomic_load(&notify_charge) ? SOLO_CHARGE : 0);
	return solo;
}

void sn_notify_gate_set(const struct sn_notify_gate *g)
{
	sn_lock(&chain_lock);
	atomic_store(&notify_gate, g);
	atomic_store(&notify_solo, solo_of(notify_chain));
	sn_unlock(&chain_lock);
}

/* The first notifier pinned. Pinned notifiers stay, so no other can
 * ever be alone in the chain. Its direct ALLOCs stamp STAMP_PINNED; the
 * chain's stamp its generation, as ever, also in the moments a chain in
 * which it is alone is published before notify_solo says so. */
struct slab_notifier *_Atomic notify_pinned;

/* The solo paths (notify_solo) that @next ends stop before it is
 * published, so that every ALLOC that starts after a registration
 * returns walks the array that has the new member; those it starts
 * start after. */
static void chain_publish(struct chain *next)
{
	struct chain *old = notify_chain;
	uint32_t solo = solo_of(next);
	atomic_store(&notify_solo, solo & atomic_load(&notify_solo));
	sn_rcu_assign_pointer(notify_chain, next);
	atomic_store(&notify_solo, solo);
	if (old)
		sn_call_rcu(&old->rcu, chain_free_rcu);
}

void sn_notifier_pin(struct slab_notifier *nb)
{
	sn_lock(&chain_lock);
	if (nb->_flags & NB_REGISTERED) {
		nb->_flags |= NB_PINNED;
		if (!atomic_load_explicit(&notify_pinned, memory_order_relaxed)) {
			atomic_store_explicit(&notify_pinned, nb, memory_order_relaxed);
			atomic_store(&notify_solo, solo_of(notify_chain));
		}
	}
	sn_unlock(&chain_lock);
}

/* The first pinned notifier's charges (consumer.h): set once. */
const struct sn_charge *_Atomic notify_charge;

bool sn_notifier_charge_set(struct slab_notifier *nb, const struct sn_charge *ch)
{
	sn_lock(&chain_lock);
	bool ok = ch && ch->root && ch->seq && ch->uncharge && ch->trim && ch->owner_slot >= 0 &&
		  ch->owner_slot < SLAB_OBJ_EXT_SLOTS && nb && nb == atomic_load(&notify_pinned) &&
		  !atomic_load(&notify_charge);
	if (ok) {
		atomic_store(&notify_charge, ch);
		atomic_store(&notify_solo, solo_of(notify_chain));
	}
	sn_unlock(&chain_lock);
	return ok;
}

void sn_thread_stock_set(struct sn_stock *st, const void *group)
{
	struct slab_thread *t = sn_tls_thread;
	if (t == &sn_thread_dummy) {
		if (!st || !(t = thread_get()))
			return;   /* an exiting thread, or no memory: no charges */
	}
	t->charge_group = group;
	t->stock = st;
}

static void rcu_fork_register(void);

int slab_notifier_register(struct slab_notifier *nb)
{
	if (!nb || !nb->call) {
		errno = EINVAL;
		return -EINVAL;
	}
	sn_init();
	sn_lock(&chain_lock);
	if (nb->_flags & NB_REGISTERED) {
		sn_unlock(&chain_lock);
		errno = EEXIST;
		return -EEXIST;
	}
	if (notify_chain_gen == STAMP_PINNED - 1) {   /* generations: 2^31 - 1 */
		sn_unlock(&chain_lock);
		errno = ENOSPC;
		return -ENOSPC;
	}
	struct chain *old = notify_chain;
	uint32_t n = old ? old->n : 0;
	struct chain *ch = chain_alloc(n + 1);
	if (!ch) {
		sn_unlock(&chain_lock);
		errno = ENOMEM;
		return -ENOMEM;
	}
	/* Highest priority first; equal priorities in registration order. */
	uint32_t pos = 0;
	while (pos < n && old->nb[pos]->priority >= nb->priority)
		pos++;
	for (uint32_t i = 0; i < pos; i++)
		ch->nb[i] = old->nb[i];
	ch->nb[pos] = nb;
	for (uint32_t i = pos; i < n; i++)
		ch->nb[i + 1] = old->nb[i];
	ch->n = n + 1;
	nb->_gen = ++notify_chain_gen;
	nb->_flags = NB_REGISTERED;
	ch->gen = notify_chain_gen;
	chain_publish(ch);
	rcu_fork_register();
	sn_unlock(&chain_lock);
	return 0;
}

int slab_notifier_unregister(struct slab_notifier *nb)
{
	if (!nb) {
		errno = EINVAL;
		return -EINVAL;
	}
	if (sn_handler_depth) {
		errno = EDEADLK;
		return -EDEADLK;
	}
	sn_lock(&chain_lock);
	struct chain *old = notify_chain;
	uint32_t n = old ? old->n : 0, pos = 0;
	while (pos < n && old->nb[pos] != nb)
		pos++;
	if (pos == n) {
		sn_unlock(&chain_lock);
		errno = ENOENT;
		return -ENOENT;
	}
	if (nb->_flags & NB_PINNED) {
		sn_unlock(&chain_lock);
		errno = EBUSY;
		return -EBUSY;
	}
	struct chain *ch = chain_alloc(n - 1);
	if (!ch) {
		sn_unlock(&chain_lock);
		errno = ENOMEM;
		return -ENOMEM;
	}
	for (uint32_t i = 0, j = 0; i < n; i++)
		if (i != pos)
			ch->nb[j++] = old->nb[i];
	ch->n = n - 1;
	ch->gen = notify_chain_gen;
	chain_publish(ch);
	sn_unlock(&chain_lock);
	/* Once this returns, no call of @nb is in flight. */
	sn_synchronize_rcu();
	nb->_flags = 0;
	return 0;
}

/* ------------------------------------------------------------------ */
/* fork                                                               */
/* ------------------------------------------------------------------ */

/*
 * fork() must not begin while a grace period is in progress that waits
 * for readers, and readers are handlers that may wait for a consumer's
 * lock. A consumer's pthread_atfork prepare handler takes its locks, and
 * prepare handlers run in reverse order of registration, so the RCU
 * preparation has to run before any consumer's: slab_notifier_register()
 * registers it again (once per registration, at most RCU_FORK_MAX times)
 * after the consumer's own handlers, and only the first one to run works.
 */
#define RCU_FORK_MAX 16
static int rcu_fork_registered;
static bool rcu_fork_prepared;

static void rcu_fork_prepare(void)
{
	if (rcu_fork_prepared)
		return;
	rcu_fork_prepared = true;
	sn_handler_depth++;     /* liburcu's own allocations: quiet */
	urcu_bp_call_rcu_before_fork();
	urcu_bp_before_fork();
	sn_handler_depth--;
}

static void rcu_fork_parent(void)
{
	if (!rcu_fork_prepared)
		return;
	rcu_fork_prepared = false;
	sn_handler_depth++;
	urcu_bp_after_fork_parent();
	urcu_bp_call_rcu_after_fork_parent();
	sn_handler_depth--;
}

static void rcu_fork_child(void)
{
	if (!rcu_fork_prepared)
		return;
	rcu_fork_prepared = false;
	/* The child's call_rcu thread is made here, before the consumers'
	 * child handlers have re-made their locks: its allocations must not
	 * reach them. */
	sn_handler_depth++;
	urcu_bp_after_fork_child();
	urcu_bp_call_rcu_after_fork_child();
	sn_handler_depth--;
}

/* Called by slab_notifier_register() with chain_lock held. */
static void rcu_fork_register(void)
{
	if (rcu_fork_registered < RCU_FORK_MAX) {
		rcu_fork_registered++;
		pthread_atfork(rcu_fork_prepare, rcu_fork_parent, rcu_fork_child);
	}
}

/* The core's fork handlers (slab.c): the RCU wait first, before any
 * lock is taken; its child handler last, once every lock is made anew
 * (it starts a thread and frees). */
void notify_fork_rcu_prepare(void)
{
	rcu_fork_prepare();
}

void notify_fork_rcu_parent(void)
{
	rcu_fork_parent();
}

void notify_fork_rcu_child(void)
{
	rcu_fork_child();
}

void notify_fork_prepare(void)
{
	pthread_mutex_lock(&chain_lock.m);
}

void notify_fork_parent(void)
{
	pthread_mutex_unlock(&chain_lock.m);
}

void notify_fork_child(void)
{
	sn_mutex_reinit(&chain_lock);
}
