/*
 * memcg_tree.c - the groups: creation, destruction, limits, the current
 * group, callbacks registration, initialisation and fork.
 * The design and the rules: memcg.h.
 */
#include "memcg.h"

/* The shared state (declared in memcg.h). */
struct slab_memcg root_group __attribute__((aligned(MEMCG_STRIDE))) = {
	.max = SIZE_MAX,
	.high = SIZE_MAX,
	.cb_lock = PTHREAD_MUTEX_INITIALIZER,
	.name = "root",
	.gen = 1,
	.handle = 0,      /* set at init: &root_group | 1 */
};
char *group_area;
unsigned group_next_unused;
_Atomic(struct slab_memcg *) group_free;
pthread_once_t init_once = PTHREAD_ONCE_INIT;
int ext_slot = -1;
pthread_key_t thread_key;
bool key_ok;
pthread_mutex_t tree_lock = PTHREAD_MUTEX_INITIALIZER;
_Atomic(struct memcg_thread *) registry;
_Atomic unsigned long sync_seq __attribute__((aligned(CACHELINE)));
__thread struct memcg_thread *tls_self MEMCG_TLS;
__thread int tls_in_reclaim MEMCG_TLS;
__thread bool tls_creating MEMCG_TLS;
__thread size_t tls_high_debt MEMCG_TLS;

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
		/* A drainer or an owner that vanished mid-way. */
		atomic_store_explicit(&t->stock.draining, 0, RLX);
		atomic_store_explicit(&t->stock.busy, 0, RLX);
		if (t == tls_self || !atomic_load(&t->in_use))
			continue;
		struct slab_memcg *g = atomic_load_explicit(&t->stock.group, RLX);
		if (g) {
			stock_take_locked(t);
			long d = atomic_exchange_explicit(&t->stock.nr_objs, 0, RLX);
			if (d)
				objs_add(g, d);
			atomic_store_explicit(&t->stock.group, NULL, RLX);
		}
		if (t->cur && t->cur != &root_group)
			t->cur->nr_current--;
		t->cur = &root_group;
		atomic_store(&t->in_use, false);
	}
}

void do_init(void)
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
	/* kmalloc-large notifies: its SLAB_GFP_ACCOUNT objects are charged
	 * like any other. */
	slab_cache_set_notify(sn_kmalloc_large(), true);
	if (slab_notifier_register(&memcg_nb) != 0)
		fprintf(stderr, "slabnotify: memcg: cannot register the notifier\n");
	else {
		sn_notifier_pin(&memcg_nb);   /* never unregistered */
		memcg_charges.owner_slot = ext_slot;
		sn_notifier_charge_set(&memcg_nb, &memcg_charges);
	}
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
	sn_thread_stock_set(&t->stock, g);   /* the core's charges: its group now */
	return handle_of(prev);
}

struct slab_memcg *slab_memcg_current(void)
{
	ensure_init();
	struct memcg_thread *t = tls_self;
	return handle_of(t ? t->cur : &root_group);
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

void slab_memcg_drain_stock(void)
{
	ensure_init();
	struct memcg_thread *t = tls_self;
	if (t)
		stock_drain_own(t);
}
