/*
 * debug.h - SLUB debugging (slub_debug=FZPU) and sampled guard pages
 * (KFENCE, GWP-ASan), for any cache and for every malloc block.
 *
 * Where things live:
 *  - A debug cache is an ordinary cache whose slots are bigger than the
 *    object: [left red zone][object][right red zone][struct dbg_track].
 *    The left red zone is at least 16 bytes (the alignment), so the
 *    object is never at a slot's start: the core's free, whose index
 *    test wants a slot's start, refuses it on its cold path
 *    (free_bad_index), which hands it here. The allocation reaches us
 *    through the cache's hooks word (HOOK_DEBUG, out of line like
 *    notification): the fast paths gain no instruction.
 *  - The slot's first word, the core's link word while the slot is on a
 *    free chain, lies in the left red zone: the core's own checks (a
 *    double free while on a chain, a corrupted chain, an interior
 *    pointer) keep working on the slot, and F adds the object's state
 *    kept in its track.
 *  - The drop-in's --debug makes a debug twin of each kmalloc class (and
 *    of each kmalloc-cg class under --max), consecutive in the cache
 *    table, and points its first-slot variable at them: malloc's fast
 *    path is unchanged, it only indexes other caches. Memory charging,
 *    fault injection and the leak tracker see the slot (its full size is
 *    charged); the program sees the object.
 *  - Poisoned freed objects wait in one bounded FIFO (quarantine.c): at
 *    most 16 MiB of slots (a quarter of --max under a limit) or 65536 of
 *    them; the oldest is checked and given back to its cache (its FREE
 *    event happens then) when room is needed, and all at exit.
 *  - Guarded objects (guard.c) live in one pool of pages, each slot page
 *    between two PROT_NONE pages; free makes the page inaccessible and
 *    the slot is reused oldest first. A SIGSEGV inside the pool is ours;
 *    any other goes to the program's handler (the drop-in interposes
 *    sigaction and signal for SIGSEGV and SIGBUS).
 */
#ifndef SLABNOTIFY_DEBUG_DEBUG_H
#define SLABNOTIFY_DEBUG_DEBUG_H

#include "internal.h"
#include "consumers/consumer.h"

#define DBG_MAGIC   0x5d6b1e5fu
#define DBG_RZ_MIN  16          /* right red zone past the object, at least */
#define RED_ACTIVE  0xcc        /* SLUB_RED_ACTIVE: red zone of a live object */
#define RED_INACTIVE 0xbb       /* SLUB_RED_INACTIVE: of a freed one */
#define POISON_FREE 0x6b        /* POISON_FREE */
#define POISON_END  0xa5        /* POISON_END: the object's last byte */

enum dbg_state { DBG_NEW = 0, DBG_LIVE = 1, DBG_FREE = 2, DBG_RELEASED = 3 };

/* An object's record, after its right red zone. */
struct dbg_track {
	uint32_t magic;         /* dbg_magic() once the slot was handed out */
	uint32_t state;         /* enum dbg_state */
	uint32_t req;           /* bytes the program asked for */
	uint32_t alloc_tid, free_tid;     /* sn_thread_ordinal() */
	uint32_t alloc_stack, free_stack; /* sn_stack_id, 0: none */
	uint32_t _pad;
	uint64_t alloc_ns, free_ns;       /* since the process started */
};

/* A debug cache's layout, by cache index. */
struct dbg_cache {
	uint32_t flags;         /* SLAB_DEBUG_FLAGS of the cache */
	uint32_t off;           /* object offset in its slot: the left red zone */
	uint32_t osize;         /* the object's size (a class's size for twins) */
	uint32_t track_off;     /* struct dbg_track's offset in the slot */
	const char *name;       /* the name reports give (the class's for twins) */
};
SN_HIDDEN extern struct dbg_cache sn_dbg_caches[SN_NR_SLOTS];

/* The record's check word, keyed by the slot and its cache: slabs move
 * between caches, and a slot may lie where another cache's record was. */
static inline uint32_t dbg_magic(const struct slab_cache *c, const void *slot)
{
	uint64_t x = ((uintptr_t)slot ^ ((uint64_t)c->index << 48) ^ c->secret) * 0x9e3779b97f4a7c15ULL;
	return (uint32_t)(x >> 32) ^ DBG_MAGIC;
}

static inline struct dbg_track *dbg_track_of(const struct dbg_cache *d, void *slot)
{
	return (struct dbg_track *)((char *)slot + d->track_off);
}

/* redzone.c */
SN_HIDDEN void dbg_release(const char *fn, struct slab_cache *c, void *slot);
SN_HIDDEN bool dbg_check_freed(const char *fn, struct slab_cache *c, void *slot, bool link_clobbered);
SN_HIDDEN uint64_t dbg_now_ns(void);
SN_HIDDEN const uint8_t *dbg_first_not(const uint8_t *p, size_t n, uint8_t v, const uint8_t **last);
/* Make the debug twins of the kmalloc classes (of kmalloc-cg-N when
 * @accounted) in consecutive cache slots from *@first_slot; false, with a
 * message, when they cannot be made so. */
SN_HIDDEN bool sn_debug_make_twins(bool accounted, slab_flags_t flags, unsigned *first_slot);

SN_HIDDEN const char *sn_class_name(unsigned cls);

/* quarantine.c */
SN_HIDDEN void quarantine_put(const char *fn, struct slab_cache *c, void *slot);
SN_HIDDEN void quarantine_set_limit(size_t bytes);
SN_HIDDEN unsigned long quarantine_drain(void);
SN_HIDDEN void quarantine_fork_prepare(void);
SN_HIDDEN void quarantine_fork_parent(void);
SN_HIDDEN void quarantine_fork_child(void);

/* guard.c: fork */
SN_HIDDEN void guard_fork_prepare(void);
SN_HIDDEN void guard_fork_parent(void);
SN_HIDDEN void guard_fork_child(void);

/* bugreport.c: a SLUB-style report. */
struct dbg_bug {
	const char *cache;      /* the cache's name */
	const char *what;       /* "Right Redzone overwritten" ... */
	const char *fn;         /* the function the program called */
	const uint8_t *bad_lo, *bad_hi; /* the corrupt bytes, or NULL */
	unsigned found, expected;
	const char *slot;       /* NULL when no debug slot */
	const struct dbg_cache *d;
	bool second_free;       /* print the current stack as the second free */
};
SN_HIDDEN void dbg_report(const struct dbg_bug *b);
/* Abort unless continuing; true when the caller should repair and go on. */
SN_HIDDEN bool dbg_report_done(void);
SN_HIDDEN void dbg_print_stack(const char *title, uint32_t stack, uint32_t tid, uint64_t ns);
SN_HIDDEN void dbg_hexdump(const char *label, const uint8_t *p, size_t n);

/* track.c: U */
SN_HIDDEN uint32_t dbg_stack_now(void);

#endif /* SLABNOTIFY_DEBUG_DEBUG_H */
