/*
 * kmalloc.c - general-purpose allocation on size-class caches (SLUB's
 * kmalloc).
 *
 * 59 classes: 8, then 16-byte steps to 128, 160 .. 256 by 32, 272 ..
 * 512 and 544 .. 1024 (17b/16, 5b/4, 3b/2, 7b/4, 2b of b = 256, 512),
 * then six per doubling of b from 1 KiB up to SLAB_KMALLOC_MAX: 65b/64,
 * 69b/64, 5b/4, 3b/2, 7b/4, 2b (1040, 1104, 1280, ... 4160, 4416, 5120,
 * ... 64k). Four per doubling, as jemalloc and mimalloc space theirs,
 * plus two just above each power of two, because buffers of 2^n bytes
 * with a header are common and the header decides the class: a header
 * up to b/64 (Python's bytes, 33 bytes on 4096; sqlite's size word and
 * record headers, 8-48 bytes) wastes at most 1.5 % of its block, one up
 * to 5b/64 at most 5.8 % (sqlite's page-cache entry, a 4 KiB page and
 * 272 bytes of headers: 1.1 % of kmalloc-4416, where kmalloc-5k would
 * waste 15 %). Both are multiples of 16 from b = 1 KiB up, so
 * every class keeps the drop-in's 16-byte alignment. Below 1 KiB a small
 * header costs few bytes, and there is no split.
 *
 * They are named as Linux names its caches: the size in bytes, or in KiB
 * when it is a whole number of them (kmalloc-96, kmalloc-1280,
 * kmalloc-1k, kmalloc-3k).
 *
 * SLAB_GFP_ACCOUNT allocations use a parallel set, "kmalloc-cg-N", made
 * with SLAB_ACCOUNT, so that the plain classes never carry accounting.
 * Larger requests go to large.c as objects of "kmalloc-large".
 *
 * Every built-in cache has a reserved slot of the cache table
 * (internal.h), so that the class of a size gives its cache and its cpu
 * slot with no load, and so that their creation cannot fail for want of
 * a slot: they exist before any user cache and cannot be destroyed.
 */
#include "kmalloc.h"
#include "consumers/consumer.h"

#include <errno.h>
#include <stdio.h>

const uint32_t sn_class_size[SN_NR_CLASSES] = {
	8, 16, 32, 48, 64, 80, 96, 112, 128,
	160, 192, 224, 256,
	272, 320, 384, 448, 512,
	544, 640, 768, 896, 1024,
	1040, 1104, 1280, 1536, 1792, 2048,
	2080, 2208, 2560, 3072, 3584, 4096,
	4160, 4416, 5120, 6144, 7168, 8192,
	8320, 8832, 10240, 12288, 14336, 16384,
	16640, 17664, 20480, 24576, 28672, 32768,
	33280, 35328, 40960, 49152, 57344, 65536,
};
_Static_assert(SLAB_KMALLOC_MAX == 65536, "class table and SLAB_KMALLOC_MAX agree");

/* The class of sizes 0..1024, by (size + 7) / 8: the first class at
 * least that big (tests/test_kmalloc.c checks them against the sizes).
 * Constant, so that the fast path needs no "initialised yet?" test: a
 * class whose cache is not made yet has an empty chain in every thread,
 * and its slow path makes the caches. */
#define SN_CLASS_ITSELF(c) c
const uint8_t sn_small_class[129] = { SN_SMALL_CLASS(SN_CLASS_ITSELF) };
/* The same as slot offsets, for the kmalloc fast path. */
const uint32_t sn_small_slot_off[129] = { SN_SMALL_CLASS(SN_SLOT_OFF_OF) };
/* The same from kmalloc-16 up, for the drop-in (16-byte alignment). */
#define SN_CLASS16_ITSELF(c) SN_CLASS16(c)
const uint8_t sn_small_class16[129] = { SN_SMALL_CLASS(SN_CLASS16_ITSELF) };
/* Above 1 KiB, the class within the doubling of b by j = (size - b - 1)
 * / (b / 64), all bounds being multiples of b/64: 65b/64 (j 0), 69b/64
 * (1 .. 4), 5b/4 (5 .. 15), 3b/2 (16 .. 31), 7b/4 (32 .. 47), 2b (48 ..
 * 63). */
const uint8_t sn_class_in_doubling[64] = {
	0, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
	3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,
	4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
	5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5,
};
static pthread_once_t kmalloc_once = PTHREAD_ONCE_INIT;

static void class_name(char *buf, size_t len, const char *prefix, uint32_t size)
{
	if (size >= 1024 && size % 1024 == 0)
		snprintf(buf, len, "%s%uk", prefix, size / 1024);
	else
		snprintf(buf, len, "%s%u", prefix, size);
}

static void do_kmalloc_init(void)
{
	meta_init();
	for (int i = 0; i < SN_NR_CLASSES; i++) {
		char name[32];
		class_name(name, sizeof(name), "kmalloc-", sn_class_size[i]);
		if (!cache_create_internal(name, sn_class_size[i], 0, 0, NULL, CACHE_BUILTIN, SN_SLOT_KMALLOC + i))
			sn_fatal("slabnotify: cannot create the %s cache", name);
	}
	sn_large_cache = cache_create_internal("kmalloc-large", SN_PAGE_SIZE, 0, 0, NULL,
					       CACHE_BUILTIN | CACHE_LARGE, SN_SLOT_LARGE);
	if (!sn_large_cache)
		sn_fatal("slabnotify: cannot create the kmalloc-large cache");
}

void kmalloc_init(void)
{
	pthread_once(&kmalloc_once, do_kmalloc_init);
}

struct slab_cache *sn_kmalloc_large(void)
{
	kmalloc_init();
	return cache_handle(sn_large_cache);
}

/* The kmalloc-cg-N twins are made at the first accounted allocation: a
 * process that accounts nothing never has them. */
static pthread_once_t cg_once = PTHREAD_ONCE_INIT;

static void do_cg_init(void)
{
	for (int i = 0; i < SN_NR_CLASSES; i++) {
		char name[32];
		class_name(name, sizeof(name), "kmalloc-cg-", sn_class_size[i]);
		if (!cache_create_internal(name, sn_class_size[i], 0, SLAB_ACCOUNT, NULL, CACHE_BUILTIN,
					   SN_SLOT_KMALLOC_CG + i))
			sn_fatal("slabnotify: cannot create the %s cache", name);
	}
}

/* The slow path of a cache that is not live: a kmalloc class not made
 * yet is made now (the first allocation of the process, or the first
 * accounted one). False for any other cache. */
bool kmalloc_cache_made(struct slab_cache *c)
{
	uint32_t slot = (uint32_t)(c - sn_cache_table);
	if (slot < SN_SLOT_KMALLOC + SN_NR_CLASSES) {      /* SN_SLOT_KMALLOC is 0 */
		kmalloc_init();
	} else if (slot >= SN_SLOT_KMALLOC_CG && slot < SN_SLOT_KMALLOC_CG + SN_NR_CLASSES) {
		kmalloc_init();
		pthread_once(&cg_once, do_cg_init);
	} else {
		return false;
	}
	return atomic_load(&c->state) == CACHE_LIVE;
}

/* The cache serving @size, or NULL for the large path. */
struct slab_cache *kmalloc_cache_for(size_t size, slab_gfp_t gfp)
{
	if (size > SLAB_KMALLOC_MAX)
		return NULL;
	kmalloc_init();
	return class_cache(size_class(size), gfp);
}

/* ------------------------------------------------------------------ */
/* The API                                                            */
/* ------------------------------------------------------------------ */

void *sn_kmalloc(const char *fn, size_t size, slab_gfp_t gfp)
{
	return kmalloc_named(fn, size, gfp);
}

void *slab_malloc(size_t size, slab_gfp_t gfp)
{
	return kmalloc_named("slab_malloc", size, gfp);
}

/* Any power of two up to SLAB_MAX_ALIGN. Classes that are powers of two
 * are naturally aligned (slabs are aligned to their size, the stride is
 * the class size); larger alignments go to the large path. */
void *sn_kmalloc_aligned(const char *fn, size_t size, size_t align, slab_gfp_t gfp)
{
	if (align <= 16)
		return kmalloc_sized(fn, size < align ? align : size, size, gfp);
	size_t want = size < align ? align : size;
	if (want <= SLAB_KMALLOC_MAX) {
		size_t pow2 = (size_t)1 << (64 - __builtin_clzl(want - 1));
		if (pow2 <= SLAB_KMALLOC_MAX)
			return kmalloc_sized(fn, pow2, size, gfp);
	}
	return large_alloc(fn, want, align, gfp, size);
}

void *slab_malloc_aligned(size_t size, size_t align, slab_gfp_t gfp)
{
	if (align == 0 || (align & (align - 1)) || align > SLAB_MAX_ALIGN) {
		errno = EINVAL;
		return NULL;
	}
	return sn_kmalloc_aligned("slab_malloc_aligned", size, align, gfp);
}

size_t sn_usable_size(const char *fn, const void *p)
{
	if (!p)
		return 0;
	struct slab *s = slab_of(p);
	struct slab_cache *c = s ? __atomic_load_n(&s->cache, __ATOMIC_ACQUIRE) : NULL;
	if (!c)
		return large_usable_size(fn, p);
	if (atomic_load_explicit(&c->hooks, memory_order_relaxed) & HOOK_DEBUG)
		return sn_debug_usable_size(fn, c, s, p);
	if (slab_obj_index(c, s->base, p) >= c->objects)
		sn_bad_free(fn, p, c, "invalid pointer (not the start of an object)");
	return c->object_size;
}

size_t slab_usable_size(const void *p)
{
	return sn_usable_size("slab_usable_size", p);
}

void *sn_krealloc(const char *fn, void *p, size_t size, slab_gfp_t gfp)
{
	if (!p)
		return kmalloc_named(fn, size, gfp);
	if (size == 0) {
		sn_free_any(fn, p);
		return NULL;
	}
	struct slab *s = slab_of(p);
	if (!s || !__atomic_load_n(&s->cache, __ATOMIC_ACQUIRE))
		return large_realloc(fn, p, size, gfp);
	size_t old = sn_usable_size(fn, p);
	/* Keep the block when it fits without wasting more than half, and
	 * nobody observes it: handlers see a move as the FREE of the old
	 * block and the ALLOC of the new, with its requested size. */
	if (size <= old && (old <= 256 || size > old / 2) &&
	    !(atomic_load_explicit(&s->cache->hooks, memory_order_relaxed) & (HOOK_ALLOC_OUT | HOOK_FREE)))
		return p;
	void *n = kmalloc_named(fn, size, gfp & ~SLAB_GFP_ZERO);
	if (!n)
		return NULL;
	memcpy(n, p, size < old ? size : old);
	if ((gfp & SLAB_GFP_ZERO) && size > old)
		memset((char *)n + old, 0, size - old);
	sn_free_any(fn, p);
	return n;
}

void *slab_realloc(void *p, size_t size, slab_gfp_t gfp)
{
	return sn_krealloc("slab_realloc", p, size, gfp);
}
