/*
 * memcg_counters.c - the hierarchical counters, group handles and zombies.
 * The design and the rules: memcg.h.
 */
#include "memcg.h"

/* ------------------------------------------------------------------ */
/* Hierarchical counters                                              */
/* ------------------------------------------------------------------ */

/*
 * Charge @n to @g and every ancestor without ever going past a max.
 * NULL on success; otherwise the first group that could not take it
 * (nothing is left charged).
 */
struct slab_memcg *counters_try_charge(struct slab_memcg *g, size_t n)
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
void counters_force_charge(struct slab_memcg *g, size_t n)
{
	for (struct slab_memcg *a = g; a; a = a->parent) {
		size_t c = atomic_fetch_add_explicit(&a->charged, n, RLX) + n;
		if (c > atomic_load_explicit(&a->max, RLX))
			atomic_fetch_add_explicit(&a->events_nofail, 1, RLX);
	}
}

/* Live groups only (stock groups are live). */
void counters_uncharge(struct slab_memcg *g, size_t n)
{
	for (struct slab_memcg *a = g; a; a = a->parent)
		atomic_fetch_sub_explicit(&a->charged, n, RLX);
}

void objs_add(struct slab_memcg *g, long d)
{
	for (struct slab_memcg *a = g; a; a = a->parent)
		atomic_fetch_add_explicit(&a->objs, (unsigned long)d, RLX);
}

struct slab_memcg *group_of(const struct slab_memcg *h)
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

struct slab_memcg *handle_of(struct slab_memcg *g)
{
	return (struct slab_memcg *)(uintptr_t)atomic_load_explicit((_Atomic uintptr_t *)&g->handle,
								  memory_order_relaxed);
}

/* A slot for a new group (tree lock held), or NULL. */
struct slab_memcg *group_slot_take(void)
{
	struct slab_memcg *g = atomic_load(&group_free);
	while (g && !atomic_compare_exchange_weak(&group_free, &g, g->next_free))
		;
	if (!g && group_next_unused < MEMCG_MAX_GROUPS)
		g = (struct slab_memcg *)(group_area + (size_t)group_next_unused++ * MEMCG_STRIDE);
	return g;
}

/* The group is gone for good: its slot is free, its handles stale. */
void zombie_release(struct slab_memcg *g)
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
void uncharge_direct(struct slab_memcg *owner, size_t n)
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
