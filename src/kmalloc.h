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

#define SN_CLASS_ABOVE_1K 23   /* the first class above 1 KiB: 1040 */
#define SN_CLASSES_PER_DOUBLING 6

/* The class of sizes 0..1024, by (size + 7) / 8, as X(class) each: the
 * first class at least that big (tests/test_kmalloc.c checks them). */
#define SN_SMALL_CLASS(X) \
	X(0), X(0), X(1), X(2), X(2), X(3), X(3), X(4), X(4), X(5), X(5), X(6), X(6), X(7), X(7), X(8), \
	X(8), X(9), X(9), X(9), X(9), X(10), X(10), X(10), X(10), X(11), X(11), X(11), X(11), X(12), X(12), X(12), \
	X(12), X(13), X(13), X(14), X(14), X(14), X(14), X(14), X(14), X(15), X(15), X(15), X(15), X(15), X(15), X(15), \
	X(15), X(16), X(16), X(16), X(16), X(16), X(16), X(16), X(16), X(17), X(17), X(17), X(17), X(17), X(17), X(17), \
	X(17), X(18), X(18), X(18), X(18), X(19), X(19), X(19), X(19), X(19), X(19), X(19), X(19), X(19), X(19), X(19), \
	X(19), X(20), X(20), X(20), X(20), X(20), X(20), X(20), X(20), X(20), X(20), X(20), X(20), X(20), X(20), X(20), \
	X(20), X(21), X(21), X(21), X(21), X(21), X(21), X(21), X(21), X(21), X(21), X(21), X(21), X(21), X(21), X(21), \
	X(21), X(22), X(22), X(22), X(22), X(22), X(22), X(22), X(22), X(22), X(22), X(22), X(22), X(22), X(22), X(22), \
	X(22)

/* The same from kmalloc-16 up, for the drop-in (16-byte alignment):
 * SN_SMALL_CLASS(X) with X(SN_CLASS16(class)). */
#define SN_CLASS16(cls) ((cls) < 1 ? 1 : (cls))

/* Class of sizes 0..1024, by (size + 7) / 8 (kmalloc.c); the second
 * from kmalloc-16 up. */
SN_HIDDEN extern const uint8_t sn_small_class[129];
SN_HIDDEN extern const uint32_t sn_small_slot_off[129];   /* the same, as kmalloc slot offsets */
/* The slot offset (internal.h) of kmalloc class @cls. */
#define SN_SLOT_OFF_OF(cls) SN_SLOT_OFF(SN_SLOT_KMALLOC + (cls))
SN_HIDDEN extern const uint8_t sn_small_class16[129];
SN_HIDDEN extern const uint8_t sn_class_in_doubling[64];
SN_HIDDEN extern const uint32_t sn_class_size[SN_NR_CLASSES];

/* The class of @size (at most SLAB_KMALLOC_MAX), small sizes by @table.
 * Above 1 KiB, for size in (b, 2b]: the class within the doubling by the
 * size's 64ths of b (kmalloc.c says why those bounds), one load. */
static SN_ALWAYS_INLINE unsigned size_class_by(const uint8_t *table, size_t size)
{
	if (likely(size <= 1024))
		return table[(size + 7) >> 3];
	unsigned e = 63u - (unsigned)__builtin_clzl(size - 1);  /* b = 2^e, 10 .. 15 */
	size_t j = ((size - 1) >> (e - 6)) - 64;                /* (size - b - 1) / (b / 64): 0 .. 63 */
	return SN_CLASS_ABOVE_1K + (e - 10) * SN_CLASSES_PER_DOUBLING + sn_class_in_doubling[j];
}

static inline unsigned size_class(size_t size)
{
	return size_class_by(sn_small_class, size);
}

static inline struct slab_cache *class_cache(unsigned cls, slab_gfp_t gfp)
{
	return &sn_cache_table[((gfp & SLAB_GFP_ACCOUNT) ? SN_SLOT_KMALLOC_CG : SN_SLOT_KMALLOC) + cls];
}

/* The allocation every entry point shares; @fn names it in messages.
 * @size picks the class; @req is what the caller asked for (smaller for
 * an aligned request), which handlers are told. */
static SN_ALWAYS_INLINE void *kmalloc_sized(const char *fn, size_t size, size_t req, slab_gfp_t gfp)
{
	if (unlikely(size > SLAB_KMALLOC_MAX))
		return large_alloc(fn, size, 0, gfp, req);
	size_t off = likely(size <= 1024) ? sn_small_slot_off[(size + 7) >> 3]
					  : (size_t)SN_SLOT_OFF_OF(size_class(size));
	if (gfp & SLAB_GFP_ACCOUNT)   /* the charged twin */
		off += SN_SLOT_OFF((size_t)(SN_SLOT_KMALLOC_CG - SN_SLOT_KMALLOC));
	return cache_alloc_cpu(fn, cache_at(off), cpu_at(sn_tls_thread, off), gfp, true, req, false);
}

static SN_ALWAYS_INLINE void *kmalloc_named(const char *fn, size_t size, slab_gfp_t gfp)
{
	return kmalloc_sized(fn, size, size, gfp);
}

#endif /* SLABNOTIFY_KMALLOC_H */
