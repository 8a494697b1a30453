/*
 * slabnotify.h - a SLUB-style slab allocator with slab event notifications.
 *
 * This is the one public header. Everything a program needs is declared
 * here; internal headers live under src/ and are not installed.
 *
 * Conventions (all functions):
 *  - Every function is thread-safe unless its comment says otherwise.
 *    None is async-signal-safe: do not allocate or free in a signal
 *    handler (the same rule as every malloc).
 *  - On failure a function returns NULL or a negative errno value and sets
 *    errno to the positive value. Bad arguments give EINVAL, exhaustion
 *    gives ENOMEM.
 *  - Handles (struct slab_cache *, struct slab_memcg *) carry a
 *    generation: a handle of a destroyed cache or group, even once its
 *    slot holds a new one, and any pointer that is not a handle, are
 *    refused with EINVAL (or a message and abort() where the function
 *    returns nothing, as slab_cache_free). Built-in caches cannot be
 *    destroyed.
 *
 * What a bad free gets. Each of these prints one line on stderr naming
 * the function the program called (free(), realloc(), slab_cache_free()
 * ...), the pointer and the cache, then calls abort():
 *  - a pointer slabnotify did not hand out (stack, globals, another
 *    allocator's heap; a pointer into glibc's heap is named as such, with
 *    the likely cause: a library loaded with RTLD_DEEPBIND, or mixed
 *    allocators), an interior pointer, an object given to the wrong cache;
 *  - every double free, and every free of a slot never handed out, as
 *    long as the object has not been allocated again: on the owning
 *    thread, from another thread, into a slab of a thread that exited,
 *    of a large object. The free objects' link words are keyed: a freed
 *    object is recognised in one compare and confirmed on its chain. (A
 *    live object whose first word happens to decode as a link, about one
 *    value in 2^55, is found on no chain and freed normally; when its
 *    slab belongs to another thread, whose chains are private, such a
 *    free is taken for a double free.)
 *  - a corrupted free list (a write after free, an overflow into a free
 *    object): a link that does not name an object of its own slab is
 *    caught when it would be followed, and never followed.
 * New slabs hand out their objects in a random order, and a handed-out
 * object's link word is cleared. Descriptors and every other piece of
 * metadata live apart from the objects, behind guard pages.
 *
 * The design and the locking rules are in docs/design.md.
 */
#ifndef SLABNOTIFY_H
#define SLABNOTIFY_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SLABNOTIFY_VERSION_MAJOR 0
#define SLABNOTIFY_VERSION_MINOR 1

/* ------------------------------------------------------------------ */
/* Flags                                                              */
/* ------------------------------------------------------------------ */

/* Cache flags, given to slab_cache_create(). Values follow Linux. */
typedef unsigned int slab_flags_t;
/* Align objects to the hardware cache line (64 bytes). */
#define SLAB_HWCACHE_ALIGN   0x00002000U
/*
 * Slab pages go back to the OS only after an RCU grace period; objects
 * themselves may be reused at once (Linux's SLAB_TYPESAFE_BY_RCU). A
 * reader that found an object under urcu_bp_read_lock() may still read
 * it after it was freed, and must revalidate its identity. Readers use
 * liburcu-bp's urcu_bp_read_lock()/urcu_bp_read_unlock(): the library
 * links the shared liburcu-bp, so there is one RCU domain per process.
 */
#define SLAB_TYPESAFE_BY_RCU 0x00080000U
/* Announce the slab events to the notifier chain from the start. */
#define SLAB_NOTIFY          0x00400000U
/* Charge objects to the current memory group (implies SLAB_NOTIFY). */
#define SLAB_ACCOUNT         0x04000000U

/*
 * Debugging, per cache, with SLUB's names and meanings (slub_debug=FZPU);
 * the malloc drop-in's --debug turns them on for every malloc block.
 * A violation prints a SLUB-style report on stderr ("BUG NAME: Right
 * Redzone overwritten", the bytes found and expected, the object, its
 * allocation and free stacks) and aborts, unless slab_debug_continue().
 * Not with a constructor or SLAB_TYPESAFE_BY_RCU (EINVAL): both need
 * freed objects left intact, which poisoning and red zones are not.
 */
/* F: the object's state (live, freed, quarantined) checked at every
 * alloc and free, besides the checks that are always on. */
#define SLAB_CONSISTENCY_CHECKS 0x00000100U
/* Z: red zones before and after every object (the bytes between the
 * size asked for and the object's end too), checked at free. */
#define SLAB_RED_ZONE        0x00000400U
/* P: freed objects are poisoned and wait in a bounded quarantine; the
 * poison is checked when they leave it, when reused and at exit. */
#define SLAB_POISON          0x00000800U
/* U: the allocating and freeing stack, thread and time of each object. */
#define SLAB_STORE_USER      0x00010000U
/* Sampled guard pages: one allocation in the rate of slab_guard_config()
 * (on average, one countdown per thread for all such caches) is served
 * from the guard pool: against an inaccessible page, made inaccessible at
 * free; an overflow past the page or a use after free faults (SIGSEGV,
 * with a report), one within the page is found at free (SIGABRT). Not
 * sampled: objects above a page, allocations while the cache is notified
 * (a guarded object has no events), and when the pool's max_live are all
 * live (the slab serves them). slab_cache_destroy() counts live guarded
 * objects as live. Alone it keeps the cache's layout; with the other
 * debug flags, objects not sampled are checked by them. */
#define SLAB_GUARD           0x00000200U
#define SLAB_DEBUG_FLAGS (SLAB_CONSISTENCY_CHECKS | SLAB_RED_ZONE | SLAB_POISON | SLAB_STORE_USER | SLAB_GUARD)

/* Per-allocation flags. 0 is the default. */
typedef unsigned int slab_gfp_t;
#define SLAB_GFP_ZERO    0x01U  /* return zeroed memory */
#define SLAB_GFP_NOWAIT  0x02U  /* the caller cannot sleep */
#define SLAB_GFP_NOFAIL  0x04U  /* vetoes are ignored (see notifiers) */
#define SLAB_GFP_ACCOUNT 0x08U  /* slab_malloc: charge to the memory group */

/* ------------------------------------------------------------------ */
/* Object caches                                                      */
/* ------------------------------------------------------------------ */

struct slab_cache;

/*
 * Create a cache of objects of @size bytes aligned to @align (0 means
 * the natural alignment of 8, or 64 with SLAB_HWCACHE_ALIGN). @ctor, if
 * not NULL, runs once per object when its slab is made; objects must be
 * freed back in their constructed state. @name is copied.
 *
 * EINVAL: NULL name, size 0, align not 0 or a power of two, an unknown
 * flag, or a size (after alignment) beyond what a slab holds
 * (SLAB_MAX_OBJECT_SIZE). ENOMEM: out of memory or of cache slots
 * (at most SLAB_MAX_CACHES caches live at once, the kmalloc classes
 * included; their kmalloc-cg-N twins come on top).
 */
struct slab_cache *slab_cache_create(const char *name, size_t size,
				     size_t align, slab_flags_t flags,
				     void (*ctor)(void *obj));

#define SLAB_MAX_CACHES      1024
#define SLAB_MAX_OBJECT_SIZE (256u * 1024u)

/* Allocate an object. NULL with errno ENOMEM, or a notifier's error;
 * EINVAL for a stale or foreign handle or unknown gfp bits. */
void *slab_cache_alloc(struct slab_cache *c, slab_gfp_t gfp);

/* Free an object of @c. NULL is ignored. Aborts on a bad pointer. */
void slab_cache_free(struct slab_cache *c, void *obj);

/*
 * Give the cache's empty slabs back to the OS; returns the bytes
 * released. The calling thread's own active slab is flushed first;
 * other threads keep theirs (there is no IPI in userspace). For
 * kmalloc-large: the freed mappings it keeps for reuse.
 */
long slab_cache_shrink(struct slab_cache *c);

/*
 * Destroy a cache. No thread may use @c concurrently (as in Linux).
 * When objects are still live nothing under them is freed: it prints
 * "slabnotify: cache NAME destroyed with N objects remaining" on stderr
 * and returns -EBUSY; the cache stays usable. 0 on success; -EINVAL for
 * a stale or foreign handle and for the built-in kmalloc caches. Once it
 * returns 0, no RCU callback of the cache is pending and @c is stale.
 */
int slab_cache_destroy(struct slab_cache *c);

/* ------------------------------------------------------------------ */
/* General-purpose allocation (SLUB's kmalloc)                        */
/* ------------------------------------------------------------------ */

/*
 * 45 size classes: 8, then every 16 bytes up to 128, then four per
 * doubling up to SLAB_KMALLOC_MAX (160, 192, 224, 256, 320, ... 1k,
 * 1280, 1536, 1792, 2k, 2560, ... 56k, 64k), so that no request wastes
 * more than a quarter of its block, in caches named as Linux names them:
 * the size in bytes, or in KiB when it is a whole number of them
 * (kmalloc-48, kmalloc-1280, kmalloc-1k, kmalloc-3k). Larger requests
 * get mappings of their own, rounded to pages (cache "kmalloc-large").
 * A request that no machine could back (above RAM plus swap, or the
 * commit limit under strict overcommit) fails with ENOMEM at once.
 * slab_malloc(0) returns a unique pointer that slab_free() takes. Every
 * pointer is aligned to at least 16 (alignof(max_align_t)) except the
 * 8-byte class. Unknown gfp bits give EINVAL.
 */
#define SLAB_KMALLOC_MAX (64u * 1024u)
/* Largest alignment slab_malloc_aligned() supports (larger: EINVAL). */
#define SLAB_MAX_ALIGN   ((size_t)1 << 30)

void *slab_malloc(size_t size, slab_gfp_t gfp);
/* @align must be a power of two (EINVAL otherwise). */
void *slab_malloc_aligned(size_t size, size_t align, slab_gfp_t gfp);
/*
 * Like realloc(): p NULL allocates; size 0 frees p and returns NULL.
 * On failure p is left untouched. As with realloc(), only the default
 * alignment is kept when the block moves.
 */
void *slab_realloc(void *p, size_t size, slab_gfp_t gfp);
/* Free memory from slab_malloc*() or any cache. NULL is ignored. */
void slab_free(void *p);
/* Usable bytes of @p (any cache). 0 for NULL. Aborts on a bad pointer. */
size_t slab_usable_size(const void *p);
/* True if @p lies in memory slabnotify owns (never faults). */
bool slab_owns(const void *p);

/* ------------------------------------------------------------------ */
/* Introspection                                                      */
/* ------------------------------------------------------------------ */

struct slab_cache_info {
	char name[64];
	size_t object_size;        /* requested size */
	size_t size;               /* stride: object, metadata, alignment */
	size_t align;
	unsigned int objs_per_slab;
	size_t slab_bytes;         /* bytes per slab */
	unsigned long active_objs; /* objects allocated and not freed */
	unsigned long num_objs;    /* capacity of all slabs */
	unsigned long active_slabs;/* num_slabs less the empty slabs kept on
				    * the partial list (SLUB counts every slab;
				    * threads' active slabs count as active) */
	unsigned long num_slabs;
	/* SLUB's statistics counters (CONFIG_SLUB_STATS names). */
	unsigned long alloc_fastpath;  /* popped from the thread's freelist */
	unsigned long alloc_slowpath;  /* needed a new or partial slab */
	unsigned long free_fastpath;   /* pushed on the thread's freelist */
	unsigned long free_slowpath;   /* any other free */
	unsigned long free_remote;     /* slow frees from another thread */
	unsigned long alloc_slab;      /* slabs obtained from the OS */
	unsigned long free_slab;       /* slabs given back */
	slab_flags_t flags;
	bool notify;               /* notification currently on */
};

/* Fill @out for @c. EINVAL for NULL. Exact when no thread allocates. */
int slab_cache_info(const struct slab_cache *c, struct slab_cache_info *out);

/* Print every cache in the /proc/slabinfo version 2.1 format. */
void slab_info_print(FILE *f);

/* Memory slabnotify has in use: slab pages given to caches plus the
 * mappings of live large objects, now and at its highest, in bytes. A
 * slab whose pages went back while its owner thread was idle still
 * counts until the owner uses or releases it (docs/design.md). */
struct slab_mem_stat {
	size_t in_use;
	size_t peak;
	size_t large_in_use;   /* the large objects' part of in_use */
};
int slab_mem_stat(struct slab_mem_stat *st);

/* Call @fn for every live cache (under the cache-list lock: @fn must
 * not create or destroy caches). Returns the number of caches. */
int slab_cache_for_each(void (*fn)(struct slab_cache *c, void *arg), void *arg);

/* The cache's name (valid until it is destroyed). */
const char *slab_cache_name(const struct slab_cache *c);
/* Cheap accessors for handlers (no locks, no sums). */
slab_flags_t slab_cache_flags(const struct slab_cache *c);
/* The stride: an object's full footprint with metadata and alignment
 * (SLUB's s->size); 0 for kmalloc-large, whose objects vary. */
size_t slab_cache_size(const struct slab_cache *c);

/* ------------------------------------------------------------------ */
/* Slab event notifications                                           */
/* ------------------------------------------------------------------ */

enum slab_event {
	SLAB_EVENT_ALLOC,    /* an object was allocated (may veto) */
	SLAB_EVENT_FREE,     /* an object is being freed */
	SLAB_EVENT_NEWPAGE,  /* a slab page was obtained (may veto) */
	SLAB_EVENT_FREEPAGE, /* a slab page is given back */
};

struct slab_event_data {
	struct slab_cache *cache;
	void *ptr;        /* the object, or the slab page's base */
	size_t size;      /* the cache's object size, or the slab's bytes */
	slab_gfp_t gfp;   /* the allocation's flags; 0 for frees, except the
			   * rollback FREE of a vetoed allocation, which runs
			   * in (and carries) the allocation's context */
	size_t requested; /* ALLOC and its rollback FREE: the bytes the caller
			   * asked for (malloc(100): 100, where size is the
			   * class's 112); a cache's object size for
			   * slab_cache_alloc. Other events: equal to size
			   * (a handler that needs the requested size at FREE
			   * keeps it from the ALLOC) */
	slab_flags_t flags; /* the cache's flags (slab_cache_flags()) */
	size_t footprint; /* the memory the object takes: the cache's stride
			   * (slab_cache_size()), a large object's pages; for
			   * page events, the slab's bytes */
	/* private, for slab_event_ext(): the slab's pointer to its arrays
	 * (read at each use: an array made by an earlier handler, or during
	 * the ALLOC that a rollback FREE undoes, is seen) */
	void *const *_ext;
	uint32_t _idx;
};

struct slab_notifier {
	int (*call)(struct slab_notifier *nb, enum slab_event event,
		    const struct slab_event_data *data);
	int priority;     /* higher runs first; ties in registration order */
	void *arg;        /* the handler's own */
	/* private fields after: zero them before the first registration */
	struct slab_notifier *_next;
	uint32_t _gen;
	uint32_t _flags;
};

/* Return values, with the kernel's encoding (NOTIFY_*). */
#define SLAB_NOTIFY_DONE      0x0000
#define SLAB_NOTIFY_OK        0x0001
#define SLAB_NOTIFY_STOP_MASK 0x8000
#define SLAB_NOTIFY_BAD       (SLAB_NOTIFY_STOP_MASK | 0x0002)

/* Encode an errno value (-ENOMEM or ENOMEM alike) as a veto. Note that
 * EPERM encodes as SLAB_NOTIFY_BAD, which decodes as ENOMEM. */
static inline int slab_notify_from_errno(int err)
{
	if (err > 0)
		err = -err;
	if (err)
		return SLAB_NOTIFY_STOP_MASK | (SLAB_NOTIFY_OK - err);
	return SLAB_NOTIFY_OK;
}

/* The negative errno of a veto: 0 unless the stop bit is set (no veto,
 * no error; the kernel's notifier_to_errno does not look at the bit),
 * -ENOMEM for plain SLAB_NOTIFY_BAD. */
static inline int slab_notify_to_errno(int ret)
{
	if (!(ret & SLAB_NOTIFY_STOP_MASK))
		return 0;
	ret &= ~SLAB_NOTIFY_STOP_MASK;
	if (ret == (SLAB_NOTIFY_BAD & ~SLAB_NOTIFY_STOP_MASK))
		return -ENOMEM;
	return ret > SLAB_NOTIFY_OK ? SLAB_NOTIFY_OK - ret : 0;
}

/*
 * The notifier chain. Rules for handlers (each one tested):
 *  - The chain is called under the RCU read side (liburcu-bp), without
 *    a lock. Handlers may sleep unless gfp has SLAB_GFP_NOWAIT; other
 *    threads' allocations and frees go on meanwhile.
 *  - A veto is a return with SLAB_NOTIFY_STOP_MASK set, legal only on
 *    ALLOC and NEWPAGE. The handlers that accepted before it get FREE
 *    (FREEPAGE) in reverse order; the vetoing handler and those after it
 *    hear nothing; the object returns to its freelist (the page to the
 *    OS) with no further event; the caller gets NULL with errno set to
 *    -slab_notify_to_errno(ret). That holds for a NEWPAGE that a partly
 *    used slab could have spared (a cache turning over a live set that
 *    fills its slabs takes a little slack): the page was asked for.
 *  - With SLAB_GFP_NOFAIL vetoes are ignored: every handler called,
 *    the vetoing one included, has accepted and will get the FREE. A
 *    handler that sees NOFAIL should account the object, not veto it.
 *  - For every handler and object (page), the ALLOCs it accepted and the
 *    FREEs it receives pair up exactly once. A handler registered after
 *    an object was allocated never gets that object's FREE; an object
 *    allocated while notification was off never produces a FREE, and
 *    one allocated while it was on always does, even after it is off.
 *  - A handler may allocate and free through slabnotify. Its allocations
 *    are served without notification (a per-thread guard) and produce no
 *    FREE later; its frees of notified objects are still notified.
 *  - Registration and unregistration are safe at any time, from any
 *    thread, while others allocate.
 *  - fork(): a consumer whose pthread_atfork() prepare handler takes
 *    locks that its handlers also take must call pthread_atfork() before
 *    slab_notifier_register(). Registration arranges for the RCU fork
 *    preparation (which waits for readers, i.e. running handlers) to run
 *    before such a consumer's prepare handler takes its locks.
 */
/* 0, -EEXIST if already registered, -EINVAL for NULL nb or callback,
 * -ENOSPC after 2^31 - 1 registrations in one process, -ENOMEM. */
int slab_notifier_register(struct slab_notifier *nb);
/* Waits for an RCU grace period: once it returns no call of @nb is in
 * flight. -ENOENT if not registered; -EDEADLK from inside a handler;
 * -EBUSY for the notifiers of slabnotify's own consumers, which stay. */
int slab_notifier_unregister(struct slab_notifier *nb);

/* Switch notification of @c on or off, at any time, both ways. */
int slab_cache_set_notify(struct slab_cache *c, bool on);
bool slab_cache_notify_enabled(const struct slab_cache *c);

/*
 * Per-object extension slots (Linux's obj_exts), for consumers.
 * slab_obj_ext_reserve() returns a slot number (SLAB_OBJ_EXT_SLOTS
 * exist), or -ENOSPC. slab_obj_ext() returns the slot's word for a live
 * notified object, NULL-initialised at each notified ALLOC and valid from
 * the first ALLOC handler to the last FREE handler; it returns NULL when
 * @obj was not notified (allocated while notification was off, inside a
 * handler, or with no handler registered) or @slot is bad. The arrays
 * live out of line, per slab, and are made when first needed.
 */
#define SLAB_OBJ_EXT_SLOTS 8
int slab_obj_ext_reserve(void);
void **slab_obj_ext(const void *obj, int slot);

/*
 * The same from inside an ALLOC or FREE handler, without a lookup: the
 * event carries the object's place in its slab's arrays. NULL for page
 * events and bad slots. Use it in handlers; slab_obj_ext() anywhere.
 */
void **slab_event_ext_slow(const struct slab_event_data *d, int slot);
/* The word's address, NULL when its array was never made: a look that
 * makes nothing. */
static inline void **slab_event_ext_made(const struct slab_event_data *d, int slot)
{
	if (d->_ext && (unsigned)slot < SLAB_OBJ_EXT_SLOTS) {
		void **const *arrays = (void **const *)__atomic_load_n(d->_ext, __ATOMIC_ACQUIRE);
		void **arr = arrays ? __atomic_load_n(&arrays[slot], __ATOMIC_ACQUIRE) : NULL;
		if (arr)
			return &arr[d->_idx];
	}
	return NULL;
}

static inline void **slab_event_ext(const struct slab_event_data *d, int slot)
{
	void **w = slab_event_ext_made(d, slot);
	return w ? w : slab_event_ext_slow(d, slot);
}

/* The value of the word, NULL when it was never made (nothing stored):
 * a read that never makes the array. */
static inline void *slab_event_ext_value(const struct slab_event_data *d, int slot)
{
	void **w = slab_event_ext_made(d, slot);
	return w ? *w : NULL;
}

/* True while the calling thread runs inside a notifier handler. */
bool slab_in_handler(void);

/* ------------------------------------------------------------------ */
/* Memory accounting groups (memcg)                                   */
/* ------------------------------------------------------------------ */

/*
 * Groups form a tree under the root. Each thread has a current group
 * (root at start). Objects of SLAB_ACCOUNT caches, and slab_malloc()
 * with SLAB_GFP_ACCOUNT ("kmalloc-cg-N" caches), are charged their full
 * stride to the current group and every ancestor at ALLOC, and
 * uncharged from that owner at FREE, whichever thread frees them.
 */
struct slab_memcg;

struct slab_memcg_stat {
	size_t usage;         /* bytes of live charged objects, subtree */
	size_t peak;          /* highest usage since creation/reset */
	size_t max;           /* hard limit (SIZE_MAX: none) */
	size_t high;          /* soft limit (SIZE_MAX: none) */
	size_t stock;         /* bytes pre-charged in per-thread stocks */
	unsigned long nr_objects;  /* live charged objects, subtree */
	unsigned long failcnt;     /* vetoed charges */
	unsigned long events_high; /* charges that went above high */
	unsigned long events_max;  /* charges that hit max */
	unsigned long events_nofail; /* NOFAIL charges forced over max */
	unsigned long reclaimed;   /* bytes freed by reclaim callbacks */
	unsigned long throttled_us;/* time slept by high throttling */
};

struct slab_memcg *slab_memcg_root(void);
/* NULL parent means root. EINVAL for a NULL name, or a parent that is
 * not a live group's handle; ENOMEM past 4096 groups. */
struct slab_memcg *slab_memcg_create(struct slab_memcg *parent, const char *name);
/* Moves remaining charges to the parent; @g is stale afterwards.
 * -EBUSY while some thread has @g current or it has children; -EINVAL
 * for root, NULL or a stale handle. */
int slab_memcg_destroy(struct slab_memcg *g);
/* SIZE_MAX means no limit. A max below usage is allowed: reclaim runs
 * at once and later charges fail. */
int slab_memcg_set_max(struct slab_memcg *g, size_t bytes);
/*
 * The soft limit, with Linux's memory.high semantics: a charge that
 * leaves the group above high runs its reclaim callbacks, counts a high
 * event, and (unless SLAB_GFP_NOWAIT) throttles the charging thread:
 * it owes ((usage - high) / high)^2 seconds per 4 KiB charged over high,
 * slept once the debt passes 10 ms, at most 2 s per allocation, and less
 * if usage falls back under high meanwhile.
 */
int slab_memcg_set_high(struct slab_memcg *g, size_t bytes);
/* Throttle above high (true, the default), or only count high events
 * and reclaim (false). EINVAL for a bad handle. */
int slab_memcg_set_throttle(struct slab_memcg *g, bool throttle);
/*
 * Charge @bytes of memory that slabnotify did not allocate (a mapping, a
 * buffer of another allocator) to @g (NULL: the calling thread's current
 * group), as an allocation would be charged: 0, or -ENOMEM past a max
 * (after reclaim; SLAB_GFP_NOFAIL forces it), high counted and throttled
 * as for objects. No object is counted. Uncharge with the same group and
 * bytes, before the group is destroyed. EINVAL for a stale handle.
 */
int slab_memcg_charge(struct slab_memcg *g, size_t bytes, slab_gfp_t gfp);
int slab_memcg_uncharge(struct slab_memcg *g, size_t bytes);
/* Make @g the calling thread's current group; returns the previous.
 * NULL with EINVAL for a stale or foreign handle. */
struct slab_memcg *slab_memcg_enter(struct slab_memcg *g);
struct slab_memcg *slab_memcg_current(void);
int slab_memcg_stat(const struct slab_memcg *g, struct slab_memcg_stat *st);
int slab_memcg_reset_peak(struct slab_memcg *g);
const char *slab_memcg_name(const struct slab_memcg *g);

/*
 * Reclaim callbacks. Called on the thread whose charge needs room,
 * inside the ALLOC notification, with the allocation's gfp (they may
 * sleep unless it has SLAB_GFP_NOWAIT). Return the bytes freed. By the
 * notifier's rules, objects they free are uncharged, and whatever they
 * allocate themselves is not charged and cannot recurse into reclaim.
 */
typedef size_t (*slab_memcg_reclaim_fn)(struct slab_memcg *g, size_t want,
					slab_gfp_t gfp, void *arg);
int slab_memcg_add_reclaim(struct slab_memcg *g,
			   size_t (*reclaim)(struct slab_memcg *g, size_t want,
					     slab_gfp_t gfp, void *arg),
			   void *arg);
int slab_memcg_remove_reclaim(struct slab_memcg *g,
			      size_t (*reclaim)(struct slab_memcg *, size_t,
						slab_gfp_t, void *),
			      void *arg);

enum slab_memcg_event {
	SLAB_MEMCG_EVENT_HIGH, /* usage crossed high */
	SLAB_MEMCG_EVENT_MAX,  /* a charge hit max */
	SLAB_MEMCG_EVENT_VETO, /* a charge was vetoed */
};
/* The callback runs out of the hot path, on the charging thread. */
int slab_memcg_on_event(struct slab_memcg *g,
			void (*cb)(struct slab_memcg *g,
				   enum slab_memcg_event event, void *arg),
			void *arg);
/* Print the tree like cgroup v2's memory.current/peak/max/high/events. */
int slab_memcg_print(FILE *f);
/* Drain the calling thread's charge stock. */
void slab_memcg_drain_stock(void);

/* ------------------------------------------------------------------ */
/* Fault injection (failslab)                                         */
/* ------------------------------------------------------------------ */

/* The kernel's fault-injection knobs (Documentation/fault-injection). */
struct slab_fault_attr {
	double probability;       /* percent, 0..100 */
	unsigned long interval;   /* fail only every Nth eligible call (0,1: all) */
	long times;               /* at most this many failures; -1: no limit */
	size_t space;             /* let this many bytes through first */
	size_t min_size;          /* ignore requests (the bytes asked for) smaller than this */
	const char *cache_filter; /* only caches whose name starts so; NULL: all */
	uint64_t seed;            /* same seed, same program: same failures */
	/* Only allocations with a function whose name matches this shell
	 * glob (fnmatch) on their stack, slabnotify's own frames aside (the
	 * idea of Linux's failslab require-start, by name); NULL: all. The
	 * stack is captured at every eligible allocation and each call
	 * site's answer cached. Copied; EINVAL past 255 bytes. */
	const char *stack_filter;
};

/* Start injecting ALLOC vetoes (ENOMEM) per @attr; NULL stops it. */
int slab_fault_inject(const struct slab_fault_attr *attr);
/* Failures injected so far. */
unsigned long slab_fault_injected(void);

/* ------------------------------------------------------------------ */
/* Leak tracker and reports                                           */
/* ------------------------------------------------------------------ */

/* Record the allocation stack of live objects of notifying caches: all
 * of them (@sample 1) or one in @sample. 0 stops recording. */
int slab_leak_track(unsigned int sample);
/* Report live recorded objects grouped by stack, largest first,
 * symbolized (function, and file:line where debug info exists).
 * @max_stacks 0 means all. Returns the number of stacks printed. */
int slab_leak_report(FILE *f, unsigned int max_stacks, bool json);

/* Totals, peak, vetoes by cause and slabinfo, as text or JSON. */
void slab_stats_report(FILE *f, bool json);

/*
 * Publish this process's figures on a live stats page, for
 * `slabnotify stat`, `top` and `exporter`, and let `slabnotify set`
 * change the root group's max and high and the fault injection while it
 * runs. The page is /dev/shm/slabnotify-UID/PID ($SLABNOTIFY_STAT_DIR/PID
 * if set), mode 0600, refreshed every second by a thread of slabnotify's
 * own (signals blocked, allocations never charged) and at once when a
 * reader asks; it is removed at exit. The allocation paths do nothing
 * more. It initialises the memory groups (as slab_memcg_root() does).
 * 0 (also when already on), or a negative errno: the directory is not
 * the user's own and private (EPERM), no memory or thread (ENOMEM, EAGAIN).
 * The malloc drop-in turns it on by itself (SLABNOTIFY_STAT_PAGE=0: off).
 */
int slab_stat_page_enable(void);

/* ------------------------------------------------------------------ */
/* Debugging (SLAB_RED_ZONE ... SLAB_GUARD)                           */
/* ------------------------------------------------------------------ */

/* After a report, repair what can be repaired (red zones, poison; a
 * second free is ignored) and go on (true), or abort (false, the
 * default). Returns the previous setting. */
bool slab_debug_continue(bool on);
/* Reports printed so far (they count in continue mode). */
unsigned long slab_debug_reports(void);
/* Check every object in quarantine now, and release them all (what
 * happens at exit); returns the number checked. */
unsigned long slab_debug_flush(void);
/* SLAB_GUARD caches (and the drop-in's --guard): one allocation in
 * @rate on average is guarded, at most @max_live at a time (each costs
 * a page of memory and one of address space, plus one guard page).
 * 0 keeps the current value. The defaults: 5000 and 256. */
int slab_guard_config(unsigned long rate, unsigned max_live);
/* The guarded blocks' budget by time: at most @n a second (a burst of
 * 8 allowed), so that sampling costs a program a bounded share of its
 * time however fast it allocates (a guarded block costs two system
 * calls and two stacks, 5-150 us); a sampled allocation past the budget
 * is served plainly. 0: no budget. The default is 50. Returns the
 * previous value. */
unsigned long slab_guard_per_second(unsigned long n);

#ifdef __cplusplus
}
#endif

#endif /* SLABNOTIFY_H */
