/*
 * fastpath.h - the alloc and free fast paths, inlined into every entry
 * point (slab_cache_alloc, slab_malloc, the malloc drop-in).
 *
 * Alloc: pop the current slab's free chain, kept in the calling thread's
 * cpu slot. Free: push onto the chain of the slab the object belongs to
 * when the calling thread owns that slab: the cpu slot's chain for the
 * current slab, the descriptor's for any other. Both touch thread-local
 * data only: no atomic instruction, no lock. Everything else (an empty
 * chain, a slab another thread owns, notification, zeroing) is one
 * predictable branch away, out of line.
 *
 * The checks stay on, and are cheap:
 *  - a foreign pointer is refused by the segment map before anything is
 *    dereferenced (large objects and foreign pointers leave here);
 *  - an interior pointer fails the exact-division test that also gives
 *    the object's index (one multiply, one rotate, one compare);
 *  - a double free: the object's link word decodes to a chain value only
 *    while the object is free (a handed-out object's word was cleared,
 *    and the key has bit 63 set), so one compare finds every candidate;
 *    slab_confirm_free() then decides;
 *  - a corrupted chain: a decoded link beyond the slab's objects is
 *    never followed (slab_freelist_corrupt aborts).
 * The notification test reads the cache's hooks word: a cache without
 * notification pays one load and one branch per operation.
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

SN_HIDDEN void *alloc_post_hook(const char *fn, struct slab_cache *c, uint32_t idx, slab_gfp_t gfp,
				size_t req);
/*
 * The fast paths' ways out are tail calls, so that they need no stack
 * frame: these abort, but are not declared noreturn (a call to a
 * noreturn function is a call, and aligns the stack on the fast path).
 */
SN_HIDDEN void free_bad_index(const char *fn, struct slab_cache *c, struct slab *s, const void *obj)
	__attribute__((cold));
SN_HIDDEN void *alloc_chain_corrupt(const char *fn, struct slab_cache *c, const void *obj, uintptr_t link)
	__attribute__((cold));
/* The drop-in's: as slab_alloc_slow and alloc_post_hook, with errno
 * ENOMEM on failure, as malloc() must set it. */
SN_HIDDEN void *slab_alloc_slow_enomem(const char *fn, struct slab_cache *c, size_t req);
SN_HIDDEN void *alloc_post_hook_enomem(const char *fn, struct slab_cache *c, uint32_t idx, size_t req);
SN_HIDDEN void cache_free_hooked(const char *fn, struct slab_cache *c, struct slab *s, void *obj, uint32_t idx);
/* The fast paths' exits, with as few arguments as they can: the rest is
 * found again from the pointer, out of line. */
SN_HIDDEN void slab_free_suspect_p(const char *fn, void *obj);
SN_HIDDEN void free_not_slab(const char *fn, void *p);

/* Pop from @cpu's chain of cache @c. @plain: a kmalloc class, whose
 * link word is the object's first (no constructor, not TYPESAFE_BY_RCU).
 * @req: the bytes the caller asked for, for the handlers (read only on
 * the way out to them). @enomem: the malloc drop-in's (gfp 0, errno
 * ENOMEM on failure). */
static SN_ALWAYS_INLINE void *cache_alloc_cpu(const char *fn, struct slab_cache *c, struct slab_cpu *cpu,
					      slab_gfp_t gfp, bool plain, size_t req, bool enomem)
{
	uint32_t h = cpu->head;
	if (unlikely(!h))
		return enomem ? slab_alloc_slow_enomem(fn, c, req) : slab_alloc_slow(fn, c, gfp, req);
	void *obj = cpu->base_m1 + (size_t)h * c->size;
	uintptr_t *w = plain ? (uintptr_t *)obj : link_word(c, obj);
	uintptr_t next = *w ^ link_key(c, w);
	if (unlikely(next > c->objects))
		return alloc_chain_corrupt(fn, c, obj, next);
	cpu->head = (uint32_t)next;
	*w = 0;     /* no allocator data in a handed-out object */
	STAT_INC(cpu->alloc_fast);
#ifdef SLABNOTIFY_NO_NOTIFY
	if (unlikely((atomic_load_explicit(&c->hooks, memory_order_relaxed) & (HOOK_DEBUG | HOOK_GUARD)) | gfp))
#else
	if (unlikely((atomic_load_explicit(&c->hooks, memory_order_relaxed) & HOOK_ALLOC_OUT) | gfp))
#endif
		return enomem ? alloc_post_hook_enomem(fn, c, h - 1, req) : alloc_post_hook(fn, c, h - 1, gfp, req);
	return obj;
}

static SN_ALWAYS_INLINE void *cache_alloc(const char *fn, struct slab_cache *c, slab_gfp_t gfp)
{
	return cache_alloc_cpu(fn, c, cpu_of(sn_tls_thread, c), gfp, false, SN_REQ_OBJECT, false);
}

/* Free without hooks: @idx is checked (below @fresh, the slab's chained
 * limit). Pushes onto the calling thread's chain when it owns the slab;
 * only tail calls leave it. A free object's link decodes to at most
 * @fresh: the double-free test needs no other bound (@suspect: make it;
 * false where the caller made a wider one). */
static SN_ALWAYS_INLINE void cache_free_plain_by(struct slab_thread *t, const char *fn, struct slab_cache *c,
						 struct slab *s, void *obj, uint32_t idx, uint32_t fresh,
						 bool first_word, bool suspect)
{
	uintptr_t *w = first_word ? (uintptr_t *)obj : link_word(c, obj);
	uintptr_t key = link_key(c, w);
	if (suspect && unlikely((*w ^ key) <= fresh)) {
		/* Looks free: a double free, or data that decodes so. */
		slab_free_suspect_p(fn, obj);
		return;
	}
	struct slab_cpu *cpu = cpu_of(t, c);
	if (likely(cpu->slab == s)) {
		*w = cpu->head ^ key;
		cpu->head = idx + 1;
	} else if (likely(atomic_load_explicit(&s->owner, memory_order_relaxed) == (uintptr_t)t)) {
		*w = s->head ^ key;
		s->head = idx + 1;
		if (unlikely(--s->inuse == 0)) {
			STAT_INC(cpu->free_fast);
			slab_became_empty(c, s);
			return;
		}
	} else {
		slab_free_slow(fn, c, s, obj, idx);
		return;
	}
	STAT_INC(cpu->free_fast);
}

static SN_ALWAYS_INLINE void cache_free_plain(const char *fn, struct slab_cache *c, struct slab *s, void *obj,
					      uint32_t idx)
{
	cache_free_plain_by(sn_tls_thread, fn, c, s, obj, idx,
			    atomic_load_explicit(&s->fresh, memory_order_relaxed), false, true);
}

/* The same after the caller's double-free test (link_get() <= objects),
 * with nothing run since that could have written the object. */
static SN_ALWAYS_INLINE void cache_free_plain_tested(const char *fn, struct slab_cache *c, struct slab *s,
						     void *obj, uint32_t idx)
{
	cache_free_plain_by(sn_tls_thread, fn, c, s, obj, idx,
			    atomic_load_explicit(&s->fresh, memory_order_relaxed), false, false);
}

/* Free @obj of slab @s of cache @c by thread @t; @fn names the API. */
static SN_ALWAYS_INLINE void cache_free_by(struct slab_thread *t, const char *fn, struct slab_cache *c,
					   struct slab *s, void *obj)
{
	uint64_t idx = slab_obj_index(c, s->base, obj);
	uint32_t fresh = atomic_load_explicit(&s->fresh, memory_order_relaxed);
	/* Not an object's start, or one never handed out. */
	if (unlikely(idx >= fresh)) {
		free_bad_index(fn, c, s, obj);
		return;
	}
#ifndef SLABNOTIFY_NO_NOTIFY
	if (unlikely(atomic_load_explicit(&c->hooks, memory_order_relaxed) & (HOOK_FREE | HOOK_LINK_AFTER))) {
		cache_free_hooked(fn, c, s, obj, (uint32_t)idx);
		return;
	}
#else
	if (unlikely(atomic_load_explicit(&c->hooks, memory_order_relaxed) & HOOK_LINK_AFTER)) {
		cache_free_hooked(fn, c, s, obj, (uint32_t)idx);
		return;
	}
#endif
	cache_free_plain_by(t, fn, c, s, obj, (uint32_t)idx, fresh, true, true);
}

static SN_ALWAYS_INLINE void cache_free(const char *fn, struct slab_cache *c, struct slab *s, void *obj)
{
	cache_free_by(sn_tls_thread, fn, c, s, obj);
}

SN_HIDDEN void sn_free_any_miss(const char *fn, void *p);

/* Free any pointer slabnotify handed out: a slab object, a large object;
 * NULL does nothing (it misses the last segment; the miss path returns);
 * anything else aborts naming @fn. Every exit is a tail call. */
static SN_ALWAYS_INLINE void sn_free_any(const char *fn, void *p)
{
	struct slab_thread *t = sn_tls_thread;
	struct slab *s = slab_of_last(t, p);
	if (unlikely(!s)) {
		sn_free_any_miss(fn, p);
		return;
	}
	struct slab_cache *c = __atomic_load_n(&s->cache, __ATOMIC_ACQUIRE);
	if (unlikely(!c)) {
		free_not_slab(fn, p);
		return;
	}
	cache_free_by(t, fn, c, s, p);
}

#endif /* SLABNOTIFY_FASTPATH_H */
