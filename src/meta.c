/*
 * meta.c - slabnotify's own memory: notification stamps, obj_ext
 * arrays, freelist permutations, large-object descriptors.
 *
 * It lives on pages of its own (POOL_META segments, or whole mappings
 * above META_MAX), never next to a program's objects, so that no
 * overflow from one can reach what slabnotify trusts. It is never
 * notified, never charged, never failed by fault injection, and not
 * shown as the program's memory. Every block is zeroed.
 */
#include "fastpath.h"

#include <errno.h>
#include <stdio.h>

#define META_MIN_SHIFT 6                 /* 64 bytes */
#define META_MAX_SHIFT 16                /* 64 KiB */
#define NR_META (META_MAX_SHIFT - META_MIN_SHIFT + 1)
_Static_assert(NR_META == SN_NR_META, "meta caches and their reserved slots agree");
#define META_BIG_MAGIC 0x5eb16a11u

static struct slab_cache *meta_caches[NR_META];

struct big_header {
	uint32_t magic;
	uint32_t _pad;
	size_t map_bytes;
	char _align[48];
};

static void do_meta_init(void)
{
	for (int i = 0; i < NR_META; i++) {
		char name[32];
		unsigned size = 1u << (META_MIN_SHIFT + i);
		if (size >= 1024)
			snprintf(name, sizeof(name), "slabnotify-meta-%uk", size / 1024);
		else
			snprintf(name, sizeof(name), "slabnotify-meta-%u", size);
		meta_caches[i] = cache_create_internal(name, size, 0, 0, NULL, CACHE_META, SN_SLOT_META + i);
		if (!meta_caches[i])
			sn_fatal("slabnotify: cannot create the %s cache", name);
	}
}

static pthread_once_t meta_once = PTHREAD_ONCE_INIT;

void meta_init(void)
{
	pthread_once(&meta_once, do_meta_init);
}

void *meta_zalloc(size_t size)
{
	meta_init();
	if (size > ((size_t)1 << META_MAX_SHIFT)) {
		size_t bytes = (size + sizeof(struct big_header) + SN_PAGE_SIZE - 1) & ~(SN_PAGE_SIZE - 1);
		struct big_header *b = os_map(bytes);
		if (!b)
			return NULL;
		b->magic = META_BIG_MAGIC;
		b->map_bytes = bytes;
		return b + 1;
	}
	unsigned shift = size <= (1u << META_MIN_SHIFT) ? META_MIN_SHIFT
							 : 64u - (unsigned)__builtin_clzl(size - 1);
	struct slab_cache *c = meta_caches[shift - META_MIN_SHIFT];
	void *p = cache_alloc("slabnotify", c, 0);
	if (p)
		memset(p, 0, c->object_size);
	return p;
}

void meta_free(void *p)
{
	if (!p)
		return;
	struct slab *s = slab_of(p);
	struct slab_cache *c = s ? __atomic_load_n(&s->cache, __ATOMIC_ACQUIRE) : NULL;
	if (c) {
		if (!(c->kind & CACHE_META))
			sn_bad_free("slabnotify", p, c, "internal: metadata freed to a program's cache");
		cache_free_plain("slabnotify", c, s, p, (uint32_t)slab_obj_index(c, s->base, p));
		return;
	}
	struct big_header *b = (struct big_header *)p - 1;
	if (((uintptr_t)b & (SN_PAGE_SIZE - 1)) || b->magic != META_BIG_MAGIC)
		sn_fatal("slabnotify: internal: bad metadata pointer %p", p);
	os_unmap(b, b->map_bytes);
}
