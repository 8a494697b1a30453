/*
 * alloc.c - the object-cache entry points and the fast paths' out-of-line
 * helpers. The fast paths themselves are in fastpath.h.
 */
#include "fastpath.h"

/* Zeroing and notification, after the object is off the freelist. */
SN_NOINLINE void *alloc_post_hook(struct slab_cache *c, void *obj, slab_gfp_t gfp)
{
	if (gfp & SLAB_GFP_ZERO)
		memset(obj, 0, c->object_size);
#ifndef SLABNOTIFY_NO_NOTIFY
	if (atomic_load_explicit(&c->hooks, memory_order_relaxed) & HOOK_ALLOC) {
		/* The object came off the thread's active slab. */
		struct slab *s = cpu_slot(c)->slab;
		return notify_alloc_hook(c, s, slab_obj_index(c, s, obj), obj, gfp);
	}
#endif
	return obj;
}

void free_bad_index(const char *fn, struct slab_cache *c, void *obj)
{
	sn_bad_free(fn, obj, c, "invalid pointer (not the start of an object)");
}

/* Large objects, and frees that may need a FREE event. */
SN_NOINLINE void cache_free_hooked(const char *fn, struct slab_cache *c, struct slab *s, void *obj)
{
	uint32_t hooks = atomic_load_explicit(&c->hooks, memory_order_relaxed);
	if (hooks & HOOK_LARGE) {
		large_free(fn, s, obj);
		return;
	}
	uint32_t idx = slab_obj_index(c, s, obj);
	if (unlikely(idx == UINT32_MAX))
		free_bad_index(fn, c, obj);
#ifndef SLABNOTIFY_NO_NOTIFY
	if (hooks & HOOK_FREE)
		notify_free_hook(c, s, idx, obj);
#endif
	cache_free_plain(fn, c, s, obj);
}

void *slab_cache_alloc(struct slab_cache *c, slab_gfp_t gfp)
{
	return cache_alloc(c, gfp);
}

void slab_cache_free(struct slab_cache *c, void *obj)
{
	if (unlikely(!obj))
		return;
	struct slab *s = slab_of(obj);
	struct slab_cache *owner = s ? __atomic_load_n(&s->cache, __ATOMIC_ACQUIRE) : NULL;
	if (unlikely(owner != c)) {
		if (!owner)
			sn_bad_free("slab_cache_free", obj, c, "invalid pointer");
		sn_fatal("slab_cache_free(): object of cache %s given to cache %s: pointer %p",
			 owner->name, c ? c->name : "none", obj);
	}
	cache_free("slab_cache_free", c, s, obj);
}

void slab_free(void *p)
{
	if (unlikely(!p))
		return;
	struct slab *s;
	struct slab_cache *c = owner_of("slab_free", p, &s);
	cache_free("slab_free", c, s, p);
}
