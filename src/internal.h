/*
 * internal.h - slabnotify's internal structures, shared by the layers.
 *
 * Layers, bottom up (each calls only the ones below it):
 *   os.c       the kernel's memory calls (os.h)
 *   page.c     segments, the segment map, slab pages (user and meta pools)
 *   meta.c     slabnotify's own metadata, on pages of their own
 *   thread.c   the per-thread structure: one cpu slot per cache
 *   slab.c     caches, the slow paths, the slab life cycle
 *   fastpath.h the inline alloc and free fast paths; alloc.c the entries
 *   large.c    objects above SLAB_KMALLOC_MAX, descriptors out of line
 *   kmalloc.c  the size classes
 *   notify.c   the notifier chain and the hooks the fast paths call
 *   stats.c    introspection and slabinfo
 * The consumers (src/consumers/) use the public API and consumer.h only.
 *
 * The slab life cycle, who may touch what and the lock order are stated
 * once, at the top of slab.c (and drawn in docs/design.md); lock.h has
 * the ranks.
 */
#ifndef SLABNOTIFY_INTERNAL_H
#define SLABNOTIFY_INTERNAL_H

#include "slabnotify.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "lock.h"
#include "os.h"
#include "rcu.h"

#define likely(x)   __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#define SN_NOINLINE __attribute__((noinline))
#define SN_COLD     __attribute__((cold, noinline))
#define SN_TLS      __attribute__((tls_model("initial-exec")))
#define SN_ALWAYS_INLINE __attribute__((always_inline)) inline

#define SN_PAGE_SHIFT     12
#define SN_PAGE_SIZE      (1UL << SN_PAGE_SHIFT)
#define SN_SEG_SHIFT      22                      /* 4 MiB segments */
#define SN_SEG_SIZE       (1UL << SN_SEG_SHIFT)
#define SN_SEG_MASK       (SN_SEG_SIZE - 1)
#define SN_MAP_BITS       48                      /* address bits the segment map covers */
#define SN_MIN_SLAB_SHIFT 12                      /* 4 KiB: SLUB order 0 */
#define SN_MAX_SLAB_SHIFT 20                      /* 1 MiB: order 8 */
#define SN_NR_ORDERS      (SN_MAX_SLAB_SHIFT - SN_MIN_SLAB_SHIFT + 1)
#define SN_CACHE_LINE     64
#define SN_CACHE_STRIDE   512                     /* bytes per cache table entry */
#define SN_GEN_MASK       (SN_CACHE_STRIDE - 1)   /* generation bits of a handle */
/* Empty slabs a thread may keep for reuse, in bytes, over all caches. */
#define SN_THREAD_IDLE_MAX (256UL << 10)
/* Full slabs looked at for remote frees per allocation slow path. */
#define SN_FULL_SCAN      4

/* Cache table slots. The kmalloc classes and kmalloc-large come first,
 * then the program's caches, SLAB_MAX_CACHES in all; past them the
 * accounted twins kmalloc-cg-N (made at the first accounted allocation)
 * and slabnotify's own caches (meta.c: on no cache list, no handle). */
#define SN_NR_CLASSES       59                  /* kmalloc size classes (kmalloc.c) */
#define SN_SLOT_KMALLOC     0   /* kmalloc_cache_made() relies on it */
#define SN_SLOT_LARGE       (SN_SLOT_KMALLOC + SN_NR_CLASSES)
#define SN_FIRST_USER_SLOT  (SN_SLOT_LARGE + 1)
#define SN_SLOT_KMALLOC_CG  SLAB_MAX_CACHES
#define SN_SLOT_META        (SN_SLOT_KMALLOC_CG + SN_NR_CLASSES)
#define SN_NR_META          11                  /* 64 B .. 64 KiB */
#define SN_NR_SLOTS         (SN_SLOT_META + SN_NR_META)

/* ------------------------------------------------------------------ */
/* The slab state word                                                */
/* ------------------------------------------------------------------ */
/*
 * slab->state packs, in one atomic 64-bit word:
 *   head   (24 bits) index+1 of the remote-free stack's top (0: empty)
 *   count  (24 bits) OWNED: objects on the remote stack;
 *                    otherwise: objects in use (not free anywhere)
 *   OWNED   some thread owns the slab (allocates from it, frees to it
 *           without atomics)
 *   LISTED  the slab is, or is about to be, on the cache's partial list
 *   PENDING a free claimed a list change; it settles the slab under the
 *           cache lock
 *   FULL    (owned) the slab is on its owner's full list: the owner holds
 *           none of its free objects and all were chained, so every
 *           object is in use or on the remote stack, and a count of
 *           `objects` means every object is free. Set by the owner when
 *           it retires the slab (in the CAS that finds the stack empty),
 *           cleared by the CAS that takes the stack or by the owner's
 *           own free into it.
 *   PURGED  (owned, FULL) the remote free that made the slab wholly free
 *           took the stack and gave the pages back, under the cache
 *           lock; the owner makes it anew (slab.c, "Purged slabs")
 * The remote stack is push-only plus take-all, so it has no ABA.
 */
#define ST_FIELD_MASK  ((1ULL << 24) - 1)
#define ST_COUNT_SHIFT 24
#define ST_OWNED       (1ULL << 48)
#define ST_LISTED      (1ULL << 49)
#define ST_PENDING     (1ULL << 50)
#define ST_FULL        (1ULL << 51)
#define ST_PURGED      (1ULL << 52)
#define ST_FLAGS_MASK  (~((1ULL << 48) - 1))

static inline uint32_t st_head(uint64_t w) { return (uint32_t)(w & ST_FIELD_MASK); }
static inline uint32_t st_count(uint64_t w) { return (uint32_t)((w >> ST_COUNT_SHIFT) & ST_FIELD_MASK); }
static inline uint64_t st_make(uint32_t head, uint32_t count, uint64_t flags)
{
	return (uint64_t)head | ((uint64_t)count << ST_COUNT_SHIFT) | flags;
}

/* ------------------------------------------------------------------ */
/* Slabs and segments                                                 */
/* ------------------------------------------------------------------ */

struct slab_meta;
struct slab_thread;

/* slab->owner: the owning thread, with this bit set while the slab sits
 * on the owner's full list (so that the owner's own frees to it take the
 * slow path once and put it back on its partial list). */
#define SLAB_OWNER_FULL ((uintptr_t)1)

enum slab_list { SLAB_LIST_NONE, SLAB_LIST_PARTIAL, SLAB_LIST_IDLE, SLAB_LIST_FULL };

/*
 * A slab descriptor (SLUB's struct slab), kept out of line in its
 * segment's header so that object memory stays naturally aligned and no
 * overflow from an object can reach it. 128 bytes: the descriptor of an
 * address is a shift away. Large objects use the same structure, made
 * in meta memory (large.c).
 *
 * Free objects are chained by index: an object's link word (at
 * cache->offset) holds (index+1 of the next free object) ^ secret ^ the
 * link word's address; 0 ends the chain. A decoded link above the slab's
 * object count is corruption: it is never followed. A new slab's objects
 * are chained a chunk (SN_CHUNK_BYTES, at least SN_CHUNK_MIN objects) at
 * a time, as the owner needs them, each chunk in a random order: a big
 * slab costs the pages it uses, not its size. The order is random within
 * windows of SN_SHUFFLE_BYTES (at least SN_SHUFFLE_MIN objects), the
 * windows in address order: objects allocated together stay near each
 * other, so a program that walks them in allocation order keeps the
 * hardware prefetcher (shuffling a whole 4 KiB chunk made bintree's walk
 * of its nodes 3x slower, docs/benchmarks.md).
 */
#define SN_CHUNK_BYTES   4096
#define SN_CHUNK_MIN     8
#define SN_SHUFFLE_BYTES 256
#define SN_SHUFFLE_MIN   8
struct slab {
	/* First line: the fast paths. */
	struct slab_cache *cache;   /* NULL: descriptor unused */
	char *base;                 /* first object (the slab's start) */
	uint32_t head;              /* free chain (owner, or lock holder when unowned) */
	uint32_t inuse;             /* owner, not current: objects not on head */
	_Atomic uint32_t fresh;     /* objects [0, fresh) were ever chained: one at
				     * or above it was never handed out (its
				     * free is refused); the owner raises it */
	uint32_t nr_local;          /* unowned: objects free on this side: on head,
				     * or never chained (lock holder) */
	_Atomic uintptr_t owner;    /* owning thread | SLAB_OWNER_FULL; 0: unowned */
	_Atomic uint64_t state;     /* see above */
	struct slab *next, *prev;   /* owner's lists, the partial list, pools */
	/* Second line: slow paths and notification. */
	_Atomic(struct slab_meta *) meta; /* obj_ext arrays (notify.c) */
	uint32_t page_stamp;        /* notifier generation at NEWPAGE, 0: none */
	uint8_t on_partial;         /* cache lock: on the cache's partial list */
	uint8_t counted_empty;      /* cache lock: counted in nr_empty */
	uint8_t order_idx;
	uint8_t list;               /* owner: enum slab_list */
	uint8_t idle;               /* owner: empty, counted in the thread's idle bytes */
	uint8_t large_fresh;        /* large: memory never used (reads as zero) */
	uint16_t _pad;
	union {
		size_t large_size;  /* large: usable bytes */
		unsigned long owner_mark; /* FULL: the owner's alloc_slow count when
				     * half the objects had come back remotely
				     * (atomic access; slab.c, "Purged slabs") */
		unsigned long freed_growths; /* pools: page.c's fresh_growths when freed */
	};
	size_t map_size;            /* large: bytes mapped; pools: when freed (ns) */
	struct rcu_head rcu;        /* SLAB_TYPESAFE_BY_RCU deferral */
	_Atomic(uint32_t *) stamps; /* per object: the notifier generation of its
				     * ALLOC, 0: not notified (notify.c) */
};
_Static_assert(sizeof(struct slab) == 128, "struct slab must be 128 bytes");

#define SN_SEG_MAGIC 0x51ab5e61u

enum seg_pool { POOL_USER, POOL_META, SN_NR_POOLS };

/*
 * A slab segment: 4 MiB, 4 MiB aligned, slabs of one size. Its first
 * page is inaccessible (an overflow from the segment below stops
 * there); the descriptors follow, one per slot, then another guard page,
 * then the slabs. Every address of the segment finds the descriptor
 * array at chunk + SN_PAGE_SIZE; the segment's own fields (this struct)
 * sit in the descriptor of slot 0, which is never a slab (the header
 * fills the first slots).
 */
struct segment {
	uint32_t magic;
	uint8_t slab_shift;
	uint8_t pool;
	uint16_t first_slab;        /* slots before it hold the header and guards */
	uint32_t nr_slabs;          /* slots in all */
	uint32_t nr_used;           /* slots in use (pool lock) */
	struct segment *next;       /* every segment of a pool (pool lock) */
	uint32_t next_fresh;        /* slots from here on never used (pool lock) */
	char _pad[128 - 28];
};
_Static_assert(sizeof(struct segment) == sizeof(struct slab), "the segment is descriptor 0");

static inline struct slab *segment_slabs(struct segment *seg)
{
	return (struct slab *)seg;
}

/* The segment map: one bit per 4 MiB of the address space it covers. */
extern _Atomic uint64_t sn_segmap[(1UL << (SN_MAP_BITS - SN_SEG_SHIFT)) / 64] SN_HIDDEN;

static inline bool segmap_test(uintptr_t p)
{
	if (unlikely(p >> SN_MAP_BITS))
		return false;
	uintptr_t bit = p >> SN_SEG_SHIFT;
	uint64_t word = atomic_load_explicit(&sn_segmap[bit >> 6], memory_order_relaxed);
	return (word >> (bit & 63)) & 1;
}

static inline struct segment *segment_at(uintptr_t chunk)
{
	return (struct segment *)(chunk + SN_PAGE_SIZE);
}

/* The descriptor of the slab holding @p, or NULL when @p is not in a
 * slab segment. Never faults on a foreign pointer. */
static inline struct slab *slab_of(const void *p)
{
	uintptr_t a = (uintptr_t)p;
	if (unlikely(!segmap_test(a)))
		return NULL;
	struct segment *seg = segment_at(a & ~SN_SEG_MASK);
	return segment_slabs(seg) + ((a & SN_SEG_MASK) >> seg->slab_shift);
}

static inline struct segment *segment_of_slab(const struct slab *s)
{
	return segment_at((uintptr_t)s & ~SN_SEG_MASK);
}

/* page.c */
SN_HIDDEN struct slab *pages_alloc_slab(unsigned slab_shift, enum seg_pool pool);
SN_HIDDEN void pages_free_slab(struct slab *s);
SN_HIDDEN size_t pages_purge_all(void);
SN_HIDDEN void pages_account_large(long delta);
SN_HIDDEN void pages_note_fresh(void);   /* large.c: a mapping needs pages never backed */
SN_HIDDEN void pages_fork_prepare(void);
SN_HIDDEN void pages_fork_parent(void);
SN_HIDDEN void pages_fork_child(void);

/* meta.c: slabnotify's own memory, never notified, never next to a
 * program's objects. Zeroed. */
SN_HIDDEN void meta_init(void);
SN_HIDDEN void *meta_zalloc(size_t size);
SN_HIDDEN void meta_free(void *p);

/* ------------------------------------------------------------------ */
/* Caches                                                             */
/* ------------------------------------------------------------------ */

/* slab_cache.hooks: what the fast paths must call out of line for. */
#define HOOK_ALLOC 0x1u   /* notification on: alloc goes to the hook */
#define HOOK_FREE  0x2u   /* notified objects may be live: free checks */
#define HOOK_LINK_AFTER 0x4u /* the link word follows the object (a constructor,
			      * TYPESAFE_BY_RCU): frees go out of line, so that
			      * the fast free knows the link word is the first */
#define HOOK_DEBUG 0x8u   /* a debug cache (src/debug/): alloc goes to its hook;
			   * its objects sit past a left red zone, so that their
			   * frees fail the index test and reach it too */
#define HOOK_GUARD 0x10u  /* SLAB_GUARD: alloc goes out of line, where the guard
			   * pool's countdown (src/debug/guard.c) may serve it */
#define HOOK_ALLOC_OUT (HOOK_ALLOC | HOOK_DEBUG | HOOK_GUARD) /* what sends an alloc out of line */

enum cache_state { CACHE_FREE, CACHE_LIVE, CACHE_DYING };
/* cache_create_internal() kinds. */
#define CACHE_BUILTIN 0x1u   /* a kmalloc class: cannot be destroyed */
#define CACHE_META    0x2u   /* slabnotify's own: never notified, meta pages */
#define CACHE_LARGE   0x4u   /* kmalloc-large: no slabs of its own */

struct slab_cache {
	/* First line: read by the fast paths. */
	uint32_t index;             /* slot in the per-thread cpu array */
	_Atomic uint32_t hooks;     /* HOOK_* */
	uintptr_t secret;           /* link-word key; bit 63 is always set */
	uint32_t offset;            /* link word offset in an object */
	uint32_t size;              /* stride */
	uint32_t objects;           /* per slab */
	uint32_t object_size;
	uint64_t inv;               /* inverse of the stride's odd part, mod 2^64 */
	uint8_t inv_shift;          /* trailing zero bits of the stride */
	uint8_t slab_shift;
	uint16_t gen;               /* handle generation, 1..SN_GEN_MASK */
	uint32_t kind;              /* CACHE_* */
	uintptr_t handle;           /* this cache | gen: what the program holds */
	uint32_t cpu_off;           /* offset of this cache's cpu slot in a thread */

	/* Slow path, under lock. */
	void (*ctor)(void *);
	struct sn_mutex lock __attribute__((aligned(SN_CACHE_LINE)));
	struct slab *partial;       /* unowned partial slabs, then empty ones */
	struct slab *partial_tail;
	uint32_t nr_partial;
	uint32_t nr_empty;          /* empty slabs kept on the partial list */
	uint32_t min_partial;
	uint32_t align;
	slab_flags_t flags;
	_Atomic int state;          /* enum cache_state */
	_Atomic uint32_t shrink_seq;/* bumped by slab_cache_shrink: threads trim */
	uint32_t next_free;         /* free-slot FIFO (cache list lock) */
	uint16_t *random_seq;       /* freelist order of new slabs (meta) */

	/* Counters: slabs, idle slabs of threads, threads that are gone. */
	_Atomic long nr_slabs;
	_Atomic long nr_idle;
	_Atomic unsigned long alloc_slab, free_slab;
	_Atomic unsigned long dead_alloc_fast, dead_alloc_slow;
	_Atomic unsigned long dead_free_fast, dead_free_slow, dead_free_remote;

	/* Notification bookkeeping (notify.c). */
	struct sn_mutex notify_lock;
	_Atomic long dead_notified;  /* notified counts of exited threads */
	_Atomic bool drain_queued;
	_Atomic uint32_t off_seq;     /* bumped by every switch-off */
	uint32_t drain_seq;           /* off_seq when the drain was queued */
	_Atomic long rcu_pending;     /* callbacks queued that point into this cache */
	struct rcu_head drain_rcu;

	struct slab_cache *next_cache; /* cache list, creation order */
	char name[64];
} __attribute__((aligned(SN_CACHE_STRIDE)));
_Static_assert(sizeof(struct slab_cache) == SN_CACHE_STRIDE, "one cache per table entry");

SN_HIDDEN extern struct slab_cache sn_cache_table[SN_NR_SLOTS];

/* The handle the program holds and the cache it names, or NULL. */
static inline struct slab_cache *cache_of_handle(const struct slab_cache *h)
{
	uintptr_t off = (uintptr_t)h - (uintptr_t)sn_cache_table;
	if (unlikely(off >= (uintptr_t)SN_SLOT_META * SN_CACHE_STRIDE))
		return NULL;
	struct slab_cache *c = (struct slab_cache *)((uintptr_t)sn_cache_table + (off & ~(uintptr_t)SN_GEN_MASK));
	if (unlikely(c->handle != (uintptr_t)h))
		return NULL;
	return c;
}

static inline struct slab_cache *cache_handle(const struct slab_cache *c)
{
	return (struct slab_cache *)c->handle;
}

/* ------------------------------------------------------------------ */
/* Threads                                                            */
/* ------------------------------------------------------------------ */

/*
 * The per-thread view of a cache (SLUB's kmem_cache_cpu). The current
 * slab's free chain lives here, so that an allocation touches only this
 * line and the cache's first line.
 */
struct slab_cpu {
	/* First line: fast paths. */
	uint32_t head;              /* current slab's free chain */
	/* A countdown kept for the layer above, which alone reads it: the
	 * drop-in's --guard samples one malloc in N per thread and class
	 * (dropin/malloc.c). Here it shares the line the fast path loads. */
	int32_t sample_tick;
	char *base_m1;              /* current slab's base minus one stride */
	struct slab *slab;          /* current slab, or NULL */
	unsigned long alloc_fast, free_fast;
	/* Notified objects and pages of this cache: +1 at a stamped ALLOC or
	 * NEWPAGE on this thread, -1 at a FREE or FREEPAGE on this thread. */
	unsigned long notified;
	struct slab *partial;       /* owned slabs with objects in use and free
				     * ones, oldest first (see cpu_refill) */
	unsigned long alloc_slow;
	/* Second line: slow paths. */
	unsigned long free_slow, free_remote;
	struct slab *full, *full_tail; /* owned slabs without, oldest first */
	uint32_t shrink_seq;        /* the cache's, when this slot last trimmed */
	uint32_t nr_full;
	struct slab *partial_tail;
	struct slab *idle;          /* owned slabs with every object free */
	uint32_t nr_slack;          /* slabs taken before a thin partial one */
	char _pad2[64 - 60];
};
_Static_assert(sizeof(struct slab_cpu) == 128, "two lines per cpu slot");
#define SN_CPU_SHIFT 7

/* slab_thread.last_seg before the thread's first hit: no chunk address
 * (a multiple of SN_SEG_SIZE) equals it, NULL's chunk 0 included, so
 * that free(NULL) needs no test of its own on the fast path. */
#define SN_NO_SEGMENT ((uintptr_t)1)

struct sn_stock;
struct slab_thread {
	/* The segment this thread's last free found in the segment map: a
	 * free in the same segment skips the map (segments never go away).
	 * Never 0: SN_NO_SEGMENT until the first hit. */
	uintptr_t last_seg __attribute__((aligned(SN_CACHE_LINE)));
	/* The consumer's stock for the charges without an event, and the
	 * group they go to (consumer.h's sn_thread_stock_set()); NULL in a
	 * reused structure. */
	struct sn_stock *stock;
	const void *charge_group;
	struct slab_cpu cpu[SN_NR_SLOTS] __attribute__((aligned(SN_CACHE_LINE)));
	struct slab_thread *next, *prev; /* registry */
	_Atomic size_t idle_bytes;       /* empty slabs kept (owner; a destroyer too) */
	uint64_t rng;                    /* owner: freelist start offsets */
	uint32_t max_index;              /* highest cpu slot touched + 1 */
	bool live;
	bool orphan;                     /* fork: its thread is gone, slabs not yet reaped */
};

/* thread.c */
extern __thread struct slab_thread *sn_tls_thread SN_TLS SN_HIDDEN;
extern struct slab_thread sn_thread_dummy SN_HIDDEN;
SN_HIDDEN struct slab_thread *thread_get(void);
/* The thread uses cpu slot @index: max_index, written by its thread and
 * read by statistics readers, bounds the slots they sum. */
static inline void thread_touch(struct slab_thread *t, uint32_t index)
{
	if (index + 1 > __atomic_load_n(&t->max_index, __ATOMIC_RELAXED))
		__atomic_store_n(&t->max_index, index + 1, __ATOMIC_RELAXED);
}
SN_HIDDEN void threads_flush_cache(struct slab_cache *c, struct slab **release);
SN_HIDDEN void threads_clear_cache(const struct slab_cache *c);
#define SN_NR_CPU_COUNTERS 6  /* alloc fast/slow, free fast/slow/remote, notified */
SN_HIDDEN void threads_sum_counters(const struct slab_cache *c, unsigned long out[SN_NR_CPU_COUNTERS]);
SN_HIDDEN void threads_reap_orphans(void);
SN_HIDDEN extern _Atomic int sn_orphans;
SN_HIDDEN void thread_init_once(void);
SN_HIDDEN void threads_fork_prepare(void);
SN_HIDDEN void threads_fork_parent(void);
SN_HIDDEN void threads_fork_child(void);

/* The descriptor of @p when it lies in the segment of thread @t's last
 * free, else NULL (then alloc.c's slab_of_remember() looks in the segment
 * map and remembers a hit): a free in the same segment needs no map
 * lookup, segments never go away. NULL for a NULL @p (SN_NO_SEGMENT). */
static inline struct slab *slab_of_last(struct slab_thread *t, const void *p)
{
	uintptr_t a = (uintptr_t)p, chunk = a & ~SN_SEG_MASK;
	if (unlikely(chunk != t->last_seg))
		return NULL;
	struct segment *seg = segment_at(chunk);
	return segment_slabs(seg) + ((a & SN_SEG_MASK) >> seg->slab_shift);
}

static inline struct slab_cpu *cpu_of(struct slab_thread *t, const struct slab_cache *c)
{
	return (struct slab_cpu *)((char *)t + c->cpu_off);
}

/* A slot's offset, slot << SN_CPU_SHIFT, is how the fast paths carry a
 * slot: its cpu slot is that many bytes into a thread's array, its cache
 * four times as many into the cache table, one scaled add each (where a
 * slot number costs two shifts and two adds). */
_Static_assert(SN_CACHE_STRIDE == 4 << SN_CPU_SHIFT, "a cache entry is four cpu slots");
#define SN_SLOT_OFF(slot) ((slot) << SN_CPU_SHIFT)
static inline struct slab_cpu *cpu_at(struct slab_thread *t, size_t slot_off)
{
	return (struct slab_cpu *)((char *)t->cpu + slot_off);
}

static inline struct slab_cache *cache_at(size_t slot_off)
{
	return (struct slab_cache *)((char *)sn_cache_table + slot_off * 4);
}

/* ------------------------------------------------------------------ */
/* Link words and object indices                                      */
/* ------------------------------------------------------------------ */

static inline uintptr_t *link_word(const struct slab_cache *c, const void *obj)
{
	return (uintptr_t *)((uintptr_t)obj + c->offset);
}

static inline uintptr_t link_key(const struct slab_cache *c, const uintptr_t *w)
{
	return c->secret ^ (uintptr_t)w;
}

/* The decoded link of a free object: 0..objects when it is on a chain.
 * A live object's word decodes above objects (it was cleared to 0 when
 * handed out, and the key has bit 63 set). */
static inline uintptr_t link_get(const struct slab_cache *c, const void *obj)
{
	const uintptr_t *w = link_word(c, obj);
	return *w ^ link_key(c, w);
}

static inline void link_set(const struct slab_cache *c, void *obj, uint32_t next)
{
	uintptr_t *w = link_word(c, obj);
	*w = (uintptr_t)next ^ link_key(c, w);
}

/* Objects a live slab can hold (a large object's descriptor: one). */
static inline uint32_t slab_capacity(const struct slab *s)
{
	const struct slab_cache *c = s->cache;
	return (c->kind & CACHE_LARGE) ? 1 : c->objects;
}

static inline void *slab_obj(const struct slab_cache *c, const char *base, uint32_t idx)
{
	return (void *)(base + (size_t)idx * c->size);
}

/*
 * Index of @obj in the slab at @base, or a value >= c->objects when it is
 * not the start of one of its objects. The stride is d0 * 2^k with d0
 * odd: off is a multiple of the stride exactly when rotr(off * d0^-1,
 * k) is at most (2^64-1)/stride, and it is then the quotient; objects is
 * below that bound, so one compare checks both.
 */
static inline uint64_t slab_obj_index(const struct slab_cache *c, const char *base, const void *obj)
{
	uint64_t off = (uint64_t)((uintptr_t)obj - (uintptr_t)base);
	uint64_t m = off * c->inv;
	unsigned k = c->inv_shift;
	return k ? (m >> k) | (m << (64 - k)) : m;
}

/* ------------------------------------------------------------------ */
/* Layer interfaces                                                   */
/* ------------------------------------------------------------------ */

/* slab.c */
SN_HIDDEN void *slab_alloc_slow(const char *fn, struct slab_cache *c, slab_gfp_t gfp, size_t req);
SN_HIDDEN void slab_free_slow(const char *fn, struct slab_cache *c, struct slab *s, void *obj, uint32_t idx);
SN_HIDDEN void slab_became_empty(struct slab_cache *c, struct slab *s);
SN_HIDDEN void slab_free_nohook(const char *fn, struct slab_cache *c, struct slab *s, void *obj, uint32_t idx);
SN_HIDDEN void slab_confirm_free(const char *fn, struct slab_cache *c, struct slab *s, void *obj, uint32_t idx);
SN_HIDDEN void slab_freelist_corrupt(const char *fn, struct slab_cache *c, const void *obj, uintptr_t link)
	__attribute__((noreturn, cold));
SN_HIDDEN void slab_free_suspect(const char *fn, struct slab_cache *c, struct slab *s, void *obj, uint32_t idx);
/* errno = @err, return NULL: a tail call keeps the fast paths frameless. */
SN_HIDDEN void *sn_fail_null(int err) __attribute__((cold));
SN_HIDDEN void cpu_release_all(struct slab_cache *c, struct slab_thread *t, struct slab_cpu *cpu,
			       struct slab **release);
SN_HIDDEN void slabs_release_list(struct slab_cache *c, struct slab *list);
SN_HIDDEN void cache_list_lock(void);
SN_HIDDEN void cache_list_unlock(void);
SN_HIDDEN struct slab_cache *cache_list_first(void);
SN_HIDDEN struct slab_cache *cache_create_internal(const char *name, size_t size, size_t align,
						    slab_flags_t flags, void (*ctor)(void *), uint32_t kind,
						    int slot);
SN_HIDDEN void sn_init(void);
SN_HIDDEN unsigned long cache_active_objs(const struct slab_cache *c);
SN_HIDDEN size_t slab_bytes_of(const struct slab_cache *c);

/* Bad input: one line naming the function the program called, the
 * pointer and the cache, then abort(). */
SN_HIDDEN void sn_bad_free(const char *fn, const void *p, const struct slab_cache *c,
			   const char *why) __attribute__((noreturn, cold));
SN_HIDDEN void sn_bad_pointer(const char *fn, const void *p) __attribute__((noreturn, cold));
SN_HIDDEN void sn_fatal(const char *fmt, ...) __attribute__((noreturn, cold, format(printf, 1, 2)));

/* large.c */
SN_HIDDEN extern struct slab_cache *sn_large_cache;
SN_HIDDEN void *large_alloc(const char *fn, size_t size, size_t align, slab_gfp_t gfp, size_t req);
SN_HIDDEN void large_free(const char *fn, void *p);
SN_HIDDEN struct slab *large_find(const void *p);
SN_HIDDEN size_t large_usable_size(const char *fn, const void *p);
SN_HIDDEN void *large_realloc(const char *fn, void *p, size_t size, slab_gfp_t gfp);
SN_HIDDEN void large_release(struct slab *s);
SN_HIDDEN long large_cache_flush(void);
SN_HIDDEN bool large_owns(const void *p);
SN_HIDDEN bool sn_size_possible(size_t size);
SN_HIDDEN void large_fork_prepare(void);
SN_HIDDEN void large_fork_parent(void);
SN_HIDDEN void large_fork_child(void);

/* kmalloc.c: the entry points' shared bodies; @fn names the function
 * the program called, for messages. */
SN_HIDDEN void kmalloc_init(void);
/* For a built-in cache made on first use (kmalloc-cg-N): make it; true
 * if @c is such a cache and is live now. */
SN_HIDDEN bool kmalloc_cache_made(struct slab_cache *c);
SN_HIDDEN struct slab_cache *kmalloc_cache_for(size_t size, slab_gfp_t gfp);
SN_HIDDEN void *sn_kmalloc(const char *fn, size_t size, slab_gfp_t gfp);
SN_HIDDEN void *sn_kmalloc_aligned(const char *fn, size_t size, size_t align, slab_gfp_t gfp);
SN_HIDDEN size_t sn_usable_size(const char *fn, const void *p);
SN_HIDDEN void *sn_krealloc(const char *fn, void *p, size_t size, slab_gfp_t gfp);

/* notify.c: the out-of-line hooks. */
/* @req: the bytes the caller asked for, or SN_REQ_OBJECT for the object
 * size (a constant, so that the fast path loads nothing for it). */
#define SN_REQ_OBJECT SIZE_MAX
SN_HIDDEN void *notify_alloc_hook(struct slab_cache *c, struct slab *s, uint32_t idx, void *obj,
				    slab_gfp_t gfp, size_t req);
SN_HIDDEN void notify_free_hook(struct slab_cache *c, struct slab *s, uint32_t idx, void *obj);
SN_HIDDEN int notify_newpage(struct slab_cache *c, struct slab *s, slab_gfp_t gfp);
SN_HIDDEN void notify_freepage(struct slab_cache *c, struct slab *s);
SN_HIDDEN void notify_slab_release_meta(struct slab *s);
SN_HIDDEN void notify_cache_init(struct slab_cache *c);
SN_HIDDEN void notify_cache_quiesce(struct slab_cache *c);
SN_HIDDEN uint32_t notify_initial_hooks(slab_flags_t flags);
SN_HIDDEN void notify_fork_rcu_prepare(void);
SN_HIDDEN void notify_fork_rcu_parent(void);
SN_HIDDEN void notify_fork_rcu_child(void);
SN_HIDDEN void notify_fork_prepare(void);
SN_HIDDEN void notify_fork_parent(void);
SN_HIDDEN void notify_fork_child(void);

/* src/debug/: SLUB debugging (debug caches) and guarded sampling. Called
 * only from paths already out of line: the fast paths pay nothing. */
SN_HIDDEN void *sn_debug_alloc_hook(const char *fn, struct slab_cache *c, struct slab *s, uint32_t idx,
				    void *slot, slab_gfp_t gfp, size_t req);
SN_HIDDEN void sn_debug_free(const char *fn, struct slab_cache *c, struct slab *s, void *p);
SN_HIDDEN size_t sn_debug_usable_size(const char *fn, struct slab_cache *c, struct slab *s, const void *p);
SN_HIDDEN struct slab_cache *sn_debug_cache_create(const char *name, size_t size, size_t align,
						    slab_flags_t flags, void (*ctor)(void *));
SN_HIDDEN bool sn_guard_owns(const void *p);
SN_HIDDEN void sn_guard_free(const char *fn, void *p);
SN_HIDDEN const char *sn_guard_live_owner(const void *p, const struct slab_cache **owner);
/* A SLAB_GUARD cache's allocation, once its countdown runs out: a guarded
 * object, or NULL (not this time, or none free). */
SN_HIDDEN void *sn_guard_cache_sample(struct slab_cache *c, slab_gfp_t gfp);
SN_HIDDEN void sn_guard_cache_created(struct slab_cache *c);
SN_HIDDEN unsigned long sn_guard_live_of(const struct slab_cache *c);
/* The quarantine's and the guard pool's locks, for the core's fork
 * handlers (lock.h). */
SN_HIDDEN void sn_debug_fork_prepare(void);
SN_HIDDEN void sn_debug_fork_parent(void);
SN_HIDDEN void sn_debug_fork_child(void);

#endif /* SLABNOTIFY_INTERNAL_H */
