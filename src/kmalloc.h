/*
 * kmalloc.h - the size-class lookup and the kmalloc fast path, inlined
 * into slab_malloc() and the malloc drop-in's entry points.
 *
 * A size up to 1 KiB finds its class in one table load; above, in a few
 * arithmetic instructions. The class is also the cache's slot in the
 * cache table and in every thread's cpu array, so the cache and the cpu
 * slot of a request cost no further load.
 */
#ifndef SLABNOTIFY_KMALLOC_H
#define SLABNOTIFY_KMALLOC_H

#include "fastpath.h"

#define SN_CLASS_1280 21   /* the first class above 1 KiB */

/* Class of sizes 0..1024, by (size + 7) / 8; filled once, at start. */
SN_HIDDEN extern uint8_t sn_small_class[129];
SN_HIDDEN extern const uint32_t sn_class_size[SN_NR_CLASSES];
SN_HIDDEN void *kmalloc_first(const char *fn, size_t size, slab_gfp_t gfp);

/* The class of @size (at most SLAB_KMALLOC_MAX): four per doubling
 * above 1 KiB. */
static inline unsigned size_class(size_t size)
{
	if (likely(size <= 1024))
		return sn_small_class[(size + 7) >> 3];
	size_t s = size - 1;
	unsigned e = 63u - (unsigned)__builtin_clzl(s);         /* 10 .. 15 */
	return SN_CLASS_1280 + (e - 10) * 4 + (unsigned)((s >> (e - 2)) & 3);
}

static inline struct slab_cache *class_cache(unsigned cls, slab_gfp_t gfp)
{
	return &sn_cache_table[((gfp & SLAB_GFP_ACCOUNT) ? SN_SLOT_KMALLOC_CG : SN_SLOT_KMALLOC) + cls];
}

/* The allocation every entry point shares; @fn names it in messages. */
static SN_ALWAYS_INLINE void *kmalloc_named(const char *fn, size_t size, slab_gfp_t gfp)
{
	if (unlikely(size > SLAB_KMALLOC_MAX))
		return large_alloc(fn, size, 0, gfp);
	/* Filled once, its last entry last: zero means "not yet". */
	if (unlikely(!__atomic_load_n(&sn_small_class[128], __ATOMIC_ACQUIRE)))
		return kmalloc_first(fn, size, gfp);
	unsigned slot = ((gfp & SLAB_GFP_ACCOUNT) ? SN_SLOT_KMALLOC_CG : SN_SLOT_KMALLOC) + size_class(size);
	return cache_alloc_cpu(fn, &sn_cache_table[slot], &sn_tls_thread->cpu[slot], gfp, true);
}

#endif /* SLABNOTIFY_KMALLOC_H */
