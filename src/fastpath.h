/*
 * fastpath.h - the alloc and free fast paths, inlined into every entry
 * point (slab_cache_alloc, slab_malloc, the malloc drop-in).
 *
 * Alloc: pop the calling thread's cpu freelist. Free: when the object
 * belongs to the thread's active slab, push it back there. Both touch
 * thread-local data only: no atomic instruction, no lock. Everything
 * else (an empty freelist, another slab, notification, zeroing, large
 * objects) is one predictable branch away, out of line.
 *
 * The notification test reads the per-cache hooks word, which the free
 * path needs anyway for large objects: a cache without notification pays
 * one load and one branch per operation.
 */
#ifndef SLABNOTIFY_FASTPATH_H
#define SLABNOTIFY_FASTPATH_H

#include "internal.h"

/*
 * Per-thread statistics counters. Only the owning thread writes them;
 * readers sum them with relaxed loads. A plain aligned 64-bit increment
 * is what the relaxed store compiles to on x86-64 anyway, minus two
 * instructions; under TSan the atomic form keeps the model exact.
 */
#if defined(__SANITIZE_THREAD__)
#define STAT_INC(x) __atomic_store_n(&(x), (x) + 1, __ATOMIC_RELAXED)
#else
#define STAT_INC(x) ((x)++)
#endif

SN_HIDDEN void *alloc_post_hook(struct slab_cache *c, void *obj, slab_gfp_t gfp);
SN_HIDDEN void free_bad_index(const char *fn, struct slab_cache *c, void *obj) __attribute__((noreturn, cold));
SN_HIDDEN void cache_free_hooked(const char *fn, struct slab_cache *c, struct slab *s, void *obj);

static __attribute__((always_inline)) inline void *cache_alloc(struct slab_cache *c, slab_gfp_t gfp)
{
	struct slab_cpu *cpu = cpu_slot(c);
	void *obj = cpu->freelist;
	if (unlikely(!obj))
		return slab_alloc_slow(c, gfp);
	cpu->freelist = fp_get(c, obj);
	STAT_INC(cpu->alloc_fast);
#ifdef SLABNOTIFY_NO_NOTIFY
	if (unlikely(gfp))
#else
	if (unlikely((atomic_load_explicit(&c->hooks, memory_order_relaxed) & HOOK_ALLOC) | gfp))
#endif
		return alloc_post_hook(c, obj, gfp);
	return obj;
}

/* Free without hooks: validate, then push on the thread's freelist when
 * @s is its active slab. Only tail calls leave it, so the fast path
 * saves no registers. */
static __attribute__((always_inline)) inline void cache_free_plain(const char *fn, struct slab_cache *c,
								   struct slab *s, void *obj)
{
	if (unlikely(slab_obj_index(c, s, obj) == UINT32_MAX))
		free_bad_index(fn, c, obj);
	struct slab_cpu *cpu = cpu_slot(c);
	if (likely(cpu->slab == s)) {
		void *head = cpu->freelist;
		if (unlikely(head == obj))
			sn_bad_free(fn, obj, c, "double free");
		fp_set(c, obj, head);
		cpu->freelist = obj;
		STAT_INC(cpu->free_fast);
		return;
	}
	slab_free_slow(c, s, obj);
}

/* Free @obj of slab @s of cache @c; @fn names the API for messages.
 * Notification and large objects are one branch away, out of line. */
static __attribute__((always_inline)) inline void cache_free(const char *fn, struct slab_cache *c,
							     struct slab *s, void *obj)
{
#ifndef SLABNOTIFY_NO_NOTIFY
	if (unlikely(atomic_load_explicit(&c->hooks, memory_order_relaxed))) {
#else
	if (unlikely(atomic_load_explicit(&c->hooks, memory_order_relaxed) & HOOK_LARGE)) {
#endif
		cache_free_hooked(fn, c, s, obj);
		return;
	}
	cache_free_plain(fn, c, s, obj);
}

/* The owning cache of @p, checked: aborts naming @fn on a foreign one. */
static inline struct slab_cache *owner_of(const char *fn, const void *p, struct slab **sp)
{
	struct slab *s = slab_of(p);
	struct slab_cache *c = s ? __atomic_load_n(&s->cache, __ATOMIC_ACQUIRE) : NULL;
	if (unlikely(!c))
		sn_bad_free(fn, p, NULL, "invalid pointer");
	*sp = s;
	return c;
}

#endif /* SLABNOTIFY_FASTPATH_H */
