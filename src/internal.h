/*
 * internal.h - slabnotify's internal structures, shared by the layers.
 *
 * Layers, bottom up (no layer reaches around the one below it):
 *   page.c     segments from the OS, the segment map, slab and large pages
 *   thread.c   the per-thread structure (SLUB's kmem_cache_cpu array)
 *   slab.c     caches, slow paths, the slab state machine
 *   alloc.c    the alloc and free fast paths
 *   kmalloc.c  size classes and the large path
 *   notify.c   the notifier chain and the hooks the fast paths call
 *   stats.c    introspection and slabinfo
 *   memcg.c, failslab.c, leak.c: consumers, on the public API only
 *
 * See docs/design.md for the life cycle and the locking rules.
 */
#ifndef SLABNOTIFY_INTERNAL_H
#define SLABNOTIFY_INTERNAL_H

#include "slabnotify.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "rcu.h"

#define likely(x)   __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#define SN_NOINLINE __attribute__((noinline))
#define SN_COLD     __attribute__((cold, noinline))
#define SN_HIDDEN   __attribute__((visibility("hidden")))
#define SN_TLS      __attribute__((tls_model("initial-exec")))

#define SN_PAGE_SHIFT     12
#define SN_PAGE_SIZE      (1UL << SN_PAGE_SHIFT)
#define SN_SEG_SHIFT      22                      /* 4 MiB segments */
#define SN_SEG_SIZE       (1UL << SN_SEG_SHIFT)
#define SN_SEG_MASK       (SN_SEG_SIZE - 1)
#define SN_ADDR_BITS      47                      /* user address space */
#define SN_MIN_SLAB_SHIFT 12                      /* 4 KiB: SLUB order 0 */
#define SN_MAX_SLAB_SHIFT 20                      /* 1 MiB: order 8 */
#define SN_NR_ORDERS      (SN_MAX_SLAB_SHIFT - SN_MIN_SLAB_SHIFT + 1)
#define SN_CACHE_LINE     64

/* ------------------------------------------------------------------ */
/* Slab state word                                                    */
/* ------------------------------------------------------------------ */
/*
 * slab->state packs, in one atomic 64-bit word:
 *   head   (24 bits) index+1 of the remote-free stack's top (0: empty)
 *   count  (24 bits) FROZEN: objects on the remote stack;
 *                    otherwise: objects in use (not free anywhere)
 *   FROZEN  the slab is some thread's active slab (SLUB's "frozen")
 *   LISTED  the slab is, or is about to be, on the cache's partial list
 *   PENDING a free claimed a list change; it will settle the slab
 *           under the cache lock
 * The remote stack is push-only plus take-all, so it has no ABA.
 */
#define ST_HEAD_BITS   24
#define ST_COUNT_SHIFT 24
#define ST_FIELD_MASK  ((1ULL << 24) - 1)
#define ST_FROZEN      (1ULL << 48)
#define ST_LISTED      (1ULL << 49)
#define ST_PENDING     (1ULL << 50)

static inline uint32_t st_head(uint64_t w) { return (uint32_t)(w & ST_FIELD_MASK); }
static inline uint32_t st_count(uint64_t w) { return (uint32_t)((w >> ST_COUNT_SHIFT) & ST_FIELD_MASK); }
static inline uint64_t st_make(uint32_t head, uint32_t count, uint64_t flags)
{
	return (uint64_t)head | ((uint64_t)count << ST_COUNT_SHIFT) | flags;
}

/* ------------------------------------------------------------------ */
/* Slabs and segments                                                 */
/* ------------------------------------------------------------------ */

struct slab_ext;

/*
 * One slab descriptor (SLUB's struct slab), kept out of line in its
 * segment's header so that object memory stays naturally aligned.
 * 128 bytes, so that the descriptor of an address is a shift away.
 */
struct slab {
	struct slab_cache *cache;   /* NULL: descriptor unused */
	char *base;                 /* first object */
	_Atomic uint64_t state;     /* see above */
	void *freelist;             /* free objects, owner or lock holder */
	uint32_t nr_local;          /* objects on freelist (unfrozen only) */
	uint32_t objects;           /* capacity */
	struct slab *next, *prev;   /* partial list or free-descriptor list */
	_Atomic(struct slab_ext *) ext; /* notify stamps, obj_ext slots */
	uint32_t page_stamp;        /* notifier generation at NEWPAGE, 0: none */
	uint8_t on_partial;         /* lock-protected */
	uint8_t counted_empty;      /* lock-protected: counted in nr_empty */
	uint8_t order_idx;
	uint8_t large_fresh;        /* kmalloc-large: memory never used (zero) */
	size_t large_size;          /* kmalloc-large: usable bytes */
	size_t map_size;            /* kmalloc-large: bytes mapped */
	struct rcu_head rcu;        /* TYPESAFE_BY_RCU deferral */
	_Atomic(uint32_t *) stamps; /* notifier generation per object (notify.c) */
	char _pad[128 - 96 - sizeof(struct rcu_head)];
};
_Static_assert(sizeof(struct slab) == 128, "struct slab must be 128 bytes");
#define SN_SLAB_DESC_SHIFT 7

enum seg_kind { SEG_SLABS = 1, SEG_LARGE = 2 };
#define SN_SEG_MAGIC 0x51ab5e60u

/* A segment: 4 MiB aligned, holding slabs of one size, or one large
 * object. Its header (this struct and the descriptors) fills the first
 * slab slots. */
struct segment {
	uint32_t magic;
	uint8_t kind;
	uint8_t slab_shift;
	uint16_t first_slab;        /* slots before it hold this header */
	uint32_t nr_slabs;          /* slots in all */
	uint32_t nr_used;           /* slots in use (pages lock) */
	struct segment *next, *prev;/* per-order segment list (pages lock) */
	size_t map_size;
	char _pad[128 - 40];
	struct slab slabs[];
};
_Static_assert(sizeof(struct segment) == 128, "segment header layout");

/* The segment map: one bit per 4 MiB of address space. */
extern _Atomic uint64_t sn_segmap[(1UL << (SN_ADDR_BITS - SN_SEG_SHIFT)) / 64] SN_HIDDEN;

static inline bool segmap_test(uintptr_t p)
{
	if (unlikely(p >> SN_ADDR_BITS))
		return false;
	uintptr_t bit = p >> SN_SEG_SHIFT;
	uint64_t word = atomic_load_explicit(&sn_segmap[bit >> 6], memory_order_relaxed);
	return (word >> (bit & 63)) & 1;
}

/* The descriptor of the slab holding @p, or NULL when slabnotify does
 * not own @p. Never faults on a foreign pointer. */
static inline struct slab *slab_of(const void *p)
{
	uintptr_t a = (uintptr_t)p;
	if (unlikely(!segmap_test(a)))
		return NULL;
	struct segment *seg = (struct segment *)(a & ~SN_SEG_MASK);
	uintptr_t idx = (a & SN_SEG_MASK) >> seg->slab_shift;
	return &seg->slabs[idx];
}

static inline struct segment *segment_of_slab(const struct slab *s)
{
	return (struct segment *)((uintptr_t)s & ~SN_SEG_MASK);
}

/* page.c */
SN_HIDDEN struct slab *pages_alloc_slab(unsigned slab_shift);
SN_HIDDEN void pages_free_slab(struct slab *s);
SN_HIDDEN size_t pages_purge_all(void);
SN_HIDDEN struct slab *pages_alloc_large(size_t size, size_t align);
SN_HIDDEN void pages_free_large(struct slab *s);
SN_HIDDEN struct slab *pages_realloc_large(struct slab *s, size_t size);
SN_HIDDEN size_t pages_slab_bytes(const struct slab *s);
SN_HIDDEN void pages_fork_prepare(void);
SN_HIDDEN void pages_fork_parent(void);
SN_HIDDEN void pages_fork_child(void);
SN_HIDDEN void *os_map(size_t size);
SN_HIDDEN void os_unmap(void *p, size_t size);

/* ------------------------------------------------------------------ */
/* Caches                                                             */
/* ------------------------------------------------------------------ */

/* slab_cache.hooks: what the fast paths must call out of line for. */
#define HOOK_ALLOC 0x1u   /* notification on: alloc goes to the hook */
#define HOOK_FREE  0x2u   /* notified objects may be live: free checks */
#define HOOK_LARGE 0x4u   /* kmalloc-large: no slab, its own free path */

struct slab_cache {
	/* Read by the fast paths: keep together, first cache line. */
	uint32_t index;             /* slot in the per-thread cpu array */
	_Atomic uint32_t hooks;     /* HOOK_* */
	uintptr_t secret;           /* freelist pointer hardening */
	uint32_t offset;            /* freelist pointer offset in object */
	uint32_t size;              /* stride */
	uint32_t object_size;
	uint32_t reciprocal;        /* ceil(2^32 / size) */
	uint32_t objects;           /* per slab */
	uint32_t slab_shift;
	uint32_t align;
	slab_flags_t flags;
	void (*ctor)(void *);

	/* Slow path, under lock. */
	pthread_mutex_t lock __attribute__((aligned(SN_CACHE_LINE)));
	struct slab *partial;       /* partial slabs, then empty ones */
	struct slab *partial_tail;
	uint32_t nr_partial;
	uint32_t nr_empty;          /* empty slabs kept on the partial list */
	uint32_t min_partial;
	bool in_use;

	/* Counters of slabs and of threads that are gone. */
	_Atomic long nr_slabs;
	_Atomic unsigned long alloc_slab, free_slab;
	_Atomic unsigned long dead_alloc_fast, dead_alloc_slow;
	_Atomic unsigned long dead_free_fast, dead_free_slow, dead_free_remote;

	/* Notification bookkeeping (notify.c). */
	pthread_mutex_t notify_lock;
	_Atomic long dead_notified;  /* notified counts of exited threads */
	_Atomic bool drain_queued;
	_Atomic uint32_t off_seq;     /* bumped by every switch-off */
	uint32_t drain_seq;           /* off_seq when the drain was queued */
	struct rcu_head drain_rcu;

	struct slab_cache *next_cache; /* cache list */
	char name[64];
};

/* The per-thread view of a cache (SLUB's kmem_cache_cpu). */
struct slab_cpu {
	void *freelist;
	struct slab *slab;
	unsigned long alloc_fast, alloc_slow;
	unsigned long free_fast, free_slow, free_remote;
	/* Notified objects and pages of this cache: +1 at a stamped ALLOC or
	 * NEWPAGE on this thread, -1 at a FREE or FREEPAGE on this thread.
	 * The sum over threads is the number live; no shared counter is
	 * touched per operation (notify.c). */
	unsigned long notified;
};
_Static_assert(sizeof(struct slab_cpu) == 64, "one cpu slot per cache line");

struct slab_thread {
	struct slab_cpu cpu[SLAB_MAX_CACHES];
	struct slab_thread *next, *prev; /* registry */
	uint32_t max_index;              /* highest cpu slot touched + 1 */
	bool live;
};

/* thread.c */
extern __thread struct slab_thread *sn_tls_thread SN_TLS SN_HIDDEN;
extern struct slab_thread sn_thread_dummy SN_HIDDEN;
SN_HIDDEN struct slab_thread *thread_get(void);
SN_HIDDEN void thread_touch(struct slab_thread *t, uint32_t index);
SN_HIDDEN void threads_flush_cache(struct slab_cache *c);
#define SN_NR_CPU_COUNTERS 6  /* alloc fast/slow, free fast/slow/remote, notified */
SN_HIDDEN void threads_sum_counters(const struct slab_cache *c, unsigned long out[SN_NR_CPU_COUNTERS]);
SN_HIDDEN void thread_init_once(void);
SN_HIDDEN void threads_fork_prepare(void);
SN_HIDDEN void threads_fork_parent(void);
SN_HIDDEN void threads_fork_child(void);

static inline struct slab_cpu *cpu_slot(const struct slab_cache *c)
{
	return &sn_tls_thread->cpu[c->index];
}

/* Hardened freelist pointers (CONFIG_SLAB_FREELIST_HARDENED). */
static inline void *fp_get(const struct slab_cache *c, const void *obj)
{
	const uintptr_t *slot = (const uintptr_t *)((const char *)obj + c->offset);
	return (void *)(*slot ^ c->secret ^ (uintptr_t)slot);
}

static inline void fp_set(const struct slab_cache *c, void *obj, void *next)
{
	uintptr_t *slot = (uintptr_t *)((char *)obj + c->offset);
	*slot = (uintptr_t)next ^ c->secret ^ (uintptr_t)slot;
}

static inline void *slab_obj(const struct slab_cache *c, const struct slab *s, uint32_t idx)
{
	return s->base + (size_t)idx * c->size;
}

/*
 * Index of @obj in @s, or UINT32_MAX if it is not the start of an
 * object. Uses the reciprocal: for offsets below 2^21 the quotient of
 * an exact multiple is exact, and any other offset fails the check.
 */
static inline uint32_t slab_obj_index(const struct slab_cache *c, const struct slab *s, const void *obj)
{
	uintptr_t off = (uintptr_t)obj - (uintptr_t)s->base;
	uint32_t idx = (uint32_t)(((uint64_t)off * c->reciprocal) >> 32);
	if (unlikely(off != (uintptr_t)idx * c->size || idx >= s->objects))
		return UINT32_MAX;
	return idx;
}

/* slab.c */
SN_HIDDEN void *slab_alloc_slow(struct slab_cache *c, slab_gfp_t gfp);
SN_HIDDEN void slab_free_slow(struct slab_cache *c, struct slab *s, void *obj);
SN_HIDDEN void slab_free_nohook(struct slab_cache *c, struct slab *s, void *obj);
SN_HIDDEN long cpu_deactivate(struct slab_cache *c, struct slab_cpu *cpu);
SN_HIDDEN void cache_list_lock(void);
SN_HIDDEN void cache_list_unlock(void);
SN_HIDDEN struct slab_cache *cache_list_first(void);
SN_HIDDEN struct slab_cache *cache_create_internal(const char *name, size_t size, size_t align,
						    slab_flags_t flags, void (*ctor)(void *), uint32_t hooks);
SN_HIDDEN void slabs_fork_prepare(void);
SN_HIDDEN void slabs_fork_parent(void);
SN_HIDDEN void slabs_fork_child(void);
SN_HIDDEN void sn_init(void);
SN_HIDDEN unsigned long cache_active_objs(const struct slab_cache *c);
SN_HIDDEN void notify_fork_prepare(void);
SN_HIDDEN void notify_fork_parent(void);
SN_HIDDEN void notify_fork_child(void);

/* Bad input: one line naming the function, the pointer and the cache,
 * then abort(). */
SN_HIDDEN void sn_bad_free(const char *fn, const void *p, const struct slab_cache *c,
			   const char *why) __attribute__((noreturn, cold));
SN_HIDDEN void sn_fatal(const char *fmt, ...) __attribute__((noreturn, cold, format(printf, 1, 2)));

/* kmalloc.c */
SN_HIDDEN extern struct slab_cache *sn_large_cache;
SN_HIDDEN void large_free(const char *fn, struct slab *s, void *p);
SN_HIDDEN void large_release(struct slab *s);
SN_HIDDEN void kmalloc_init(void);
SN_HIDDEN void kmalloc_fork_prepare(void);
SN_HIDDEN void kmalloc_fork_parent(void);
SN_HIDDEN void kmalloc_fork_child(void);

/* notify.c: the out-of-line hooks the fast paths call. */
SN_HIDDEN void *notify_alloc_hook(struct slab_cache *c, struct slab *s, uint32_t idx, void *obj,
				    slab_gfp_t gfp);
SN_HIDDEN void notify_free_hook(struct slab_cache *c, struct slab *s, uint32_t idx, void *obj);
SN_HIDDEN int notify_newpage(struct slab_cache *c, struct slab *s, slab_gfp_t gfp);
SN_HIDDEN void notify_freepage(struct slab_cache *c, struct slab *s);
SN_HIDDEN void notify_slab_release_ext(struct slab *s);
SN_HIDDEN void notify_cache_init(struct slab_cache *c);
SN_HIDDEN uint32_t notify_initial_hooks(slab_flags_t flags);

static inline size_t slab_bytes_of(const struct slab_cache *c)
{
	return (size_t)1 << c->slab_shift;
}

#endif /* SLABNOTIFY_INTERNAL_H */
