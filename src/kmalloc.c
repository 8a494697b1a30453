/*
 * kmalloc.c - general-purpose allocation on size-class caches (SLUB's
 * kmalloc) and the large path.
 *
 * Classes 8, 16, 32, 64, 96, 128, 192, 256, then powers of two up to
 * SLAB_KMALLOC_MAX, named as Linux names them (kmalloc-96, kmalloc-1k).
 * SLAB_GFP_ACCOUNT allocations use a parallel set, "kmalloc-cg-N",
 * created with SLAB_ACCOUNT on first use, so that the plain classes
 * never carry accounting. Larger requests get their own segment from
 * page.c and are objects of the pseudo-cache "kmalloc-large", so that
 * notifier consumers see every byte.
 */
#include "fastpath.h"

#include <errno.h>
#include <stdio.h>

#define NR_KMALLOC 16

static const uint32_t class_size[NR_KMALLOC] = {
	8, 16, 32, 64, 96, 128, 192, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536,
};
_Static_assert(SLAB_KMALLOC_MAX == 65536, "class table and SLAB_KMALLOC_MAX agree");

/* Class of sizes 0..192, by (size + 7) / 8. */
static const uint8_t small_index[25] = {
	0, 0, 1, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 6,
};

static struct slab_cache *kmalloc_caches[NR_KMALLOC];
static struct slab_cache *kmalloc_cg_caches[NR_KMALLOC];
struct slab_cache *sn_large_cache;
static pthread_once_t kmalloc_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t cg_lock = PTHREAD_MUTEX_INITIALIZER;

static void class_name(char *buf, size_t len, const char *prefix, uint32_t size)
{
	if (size >= 1024)
		snprintf(buf, len, "%s%uk", prefix, size / 1024);
	else
		snprintf(buf, len, "%s%u", prefix, size);
}

static void do_kmalloc_init(void)
{
	sn_large_cache = cache_create_internal("kmalloc-large", SN_PAGE_SIZE, 0, 0, NULL, HOOK_LARGE);
	for (int i = 0; i < NR_KMALLOC; i++) {
		char name[32];
		class_name(name, sizeof(name), "kmalloc-", class_size[i]);
		__atomic_store_n(&kmalloc_caches[i],
				 cache_create_internal(name, class_size[i], 0, 0, NULL, 0), __ATOMIC_RELEASE);
	}
}

void kmalloc_init(void)
{
	pthread_once(&kmalloc_once, do_kmalloc_init);
}

/* fork: cg_cache() holds cg_lock while it creates a cache; the child
 * must not inherit it held. Taken before the cache list lock (its order). */
void kmalloc_fork_prepare(void)
{
	pthread_mutex_lock(&cg_lock);
}

void kmalloc_fork_parent(void)
{
	pthread_mutex_unlock(&cg_lock);
}

void kmalloc_fork_child(void)
{
	pthread_mutex_init(&cg_lock, NULL);
}

static inline unsigned size_class(size_t size)
{
	if (size <= 192)
		return small_index[(size + 7) >> 3];
	return (unsigned)(63 - __builtin_clzl(size - 1));  /* fls(size-1) - 1 */
}

static SN_NOINLINE struct slab_cache *cg_cache(unsigned idx)
{
	kmalloc_init();
	pthread_mutex_lock(&cg_lock);
	if (!kmalloc_cg_caches[idx]) {
		char name[32];
		class_name(name, sizeof(name), "kmalloc-cg-", class_size[idx]);
		__atomic_store_n(&kmalloc_cg_caches[idx],
				 cache_create_internal(name, class_size[idx], 0, SLAB_ACCOUNT, NULL, 0),
				 __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&cg_lock);
	return __atomic_load_n(&kmalloc_cg_caches[idx], __ATOMIC_ACQUIRE);
}

static SN_NOINLINE struct slab_cache *kmalloc_cache_slow(unsigned idx, slab_gfp_t gfp)
{
	if (gfp & SLAB_GFP_ACCOUNT) {
		struct slab_cache *c = __atomic_load_n(&kmalloc_cg_caches[idx], __ATOMIC_ACQUIRE);
		return c ? c : cg_cache(idx);
	}
	kmalloc_init();
	return __atomic_load_n(&kmalloc_caches[idx], __ATOMIC_ACQUIRE);
}

/* ------------------------------------------------------------------ */
/* Large objects                                                      */
/* ------------------------------------------------------------------ */

static SN_NOINLINE void *large_alloc(size_t size, size_t align, slab_gfp_t gfp)
{
	kmalloc_init();
	struct slab_cache *c = sn_large_cache;
	if (!c) {
		errno = ENOMEM;
		return NULL;
	}
	struct slab *s = pages_alloc_large(size, align);
	if (!s)
		return NULL;
	__atomic_store_n(&s->cache, c, __ATOMIC_RELEASE);
	atomic_fetch_add_explicit(&c->nr_slabs, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&c->alloc_slab, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&c->dead_alloc_slow, 1, memory_order_relaxed);
	/* Fresh mappings are zero; reused ones are not. */
	if ((gfp & SLAB_GFP_ZERO) && !s->large_fresh)
		memset(s->base, 0, size);
	if (atomic_load_explicit(&c->hooks, memory_order_relaxed) & HOOK_ALLOC)
		return notify_alloc_hook(c, s, 0, s->base, gfp);
	return s->base;
}

/* Give a large object back, with no event (after FREE, or a veto). */
void large_release(struct slab *s)
{
	struct slab_cache *c = s->cache;
	notify_slab_release_ext(s);
	atomic_fetch_sub_explicit(&c->nr_slabs, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&c->free_slab, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&c->dead_free_slow, 1, memory_order_relaxed);
	s->cache = NULL;
	pages_free_large(s);
}

void large_free(const char *fn, struct slab *s, void *p)
{
	if (unlikely(p != s->base))
		sn_bad_free(fn, p, s->cache, "invalid pointer (not the start of an object)");
#ifndef SLABNOTIFY_NO_NOTIFY
	if (atomic_load_explicit(&s->cache->hooks, memory_order_relaxed) & HOOK_FREE)
		notify_free_hook(s->cache, s, 0, p);
#endif
	large_release(s);
}

/* ------------------------------------------------------------------ */
/* The API                                                            */
/* ------------------------------------------------------------------ */

void *slab_malloc(size_t size, slab_gfp_t gfp)
{
	if (unlikely(size > SLAB_KMALLOC_MAX))
		return large_alloc(size, 0, gfp);
	unsigned idx = size_class(size);
	/* Acquire pairs with the release in do_kmalloc_init(): a plain load
	 * on x86-64, and TSan sees the publication. */
	struct slab_cache *c = __atomic_load_n(&kmalloc_caches[idx], __ATOMIC_ACQUIRE);
	if (unlikely(!c || (gfp & SLAB_GFP_ACCOUNT))) {
		c = kmalloc_cache_slow(idx, gfp);
		if (!c) {
			errno = ENOMEM;
			return NULL;
		}
	}
	return cache_alloc(c, gfp);
}

void *slab_malloc_aligned(size_t size, size_t align, slab_gfp_t gfp)
{
	if (align == 0 || (align & (align - 1)) || align > SLAB_MAX_ALIGN) {
		errno = EINVAL;
		return NULL;
	}
	if (align <= 8)
		return slab_malloc(size, gfp);
	if (align <= 16)
		return slab_malloc(size < 16 ? 16 : size, gfp);
	/* Power-of-two classes are naturally aligned: slabs are aligned to
	 * their size and the stride is the class size. */
	size_t want = size < align ? align : size;
	if (want > SLAB_KMALLOC_MAX)
		return large_alloc(want, align, gfp);
	size_t pow2 = (size_t)1 << (64 - __builtin_clzl(want - 1));
	if (pow2 < want)
		pow2 = want;
	if (pow2 > SLAB_KMALLOC_MAX)
		return large_alloc(want, align, gfp);
	return slab_malloc(pow2, gfp);
}

size_t slab_usable_size(const void *p)
{
	if (!p)
		return 0;
	struct slab *s;
	struct slab_cache *c = owner_of("slab_usable_size", p, &s);
	if (atomic_load_explicit(&c->hooks, memory_order_relaxed) & HOOK_LARGE) {
		if (p != s->base)
			sn_bad_free("slab_usable_size", p, c, "invalid pointer (not the start of an object)");
		return s->large_size;
	}
	if (slab_obj_index(c, s, p) == UINT32_MAX)
		sn_bad_free("slab_usable_size", p, c, "invalid pointer (not the start of an object)");
	return c->object_size;
}

void *slab_realloc(void *p, size_t size, slab_gfp_t gfp)
{
	if (!p)
		return slab_malloc(size, gfp);
	if (size == 0) {
		slab_free(p);
		return NULL;
	}
	size_t old = slab_usable_size(p);
	struct slab *s = slab_of(p);
	if (s->cache == sn_large_cache && size > SLAB_KMALLOC_MAX &&
	    !(atomic_load_explicit(&sn_large_cache->hooks, memory_order_relaxed) & (HOOK_ALLOC | HOOK_FREE))) {
		/* Unobserved large object: resize its mapping, no copy. With
		 * notification on it moves by alloc+copy+free, so consumers
		 * see the FREE of the old and the ALLOC of the new. */
		struct slab *d = pages_realloc_large(s, size);
		if (!d)
			return NULL;
		if ((gfp & SLAB_GFP_ZERO) && size > old)
			memset(d->base + old, 0, size - old);
		return d->base;
	}
	/* Keep the block when it fits without wasting more than half. */
	if (size <= old && (old <= 256 || size > old / 2))
		return p;
	void *n = slab_malloc(size, gfp & ~SLAB_GFP_ZERO);
	if (!n)
		return NULL;
	memcpy(n, p, size < old ? size : old);
	if ((gfp & SLAB_GFP_ZERO) && size > old)
		memset((char *)n + old, 0, size - old);
	slab_free(p);
	return n;
}
