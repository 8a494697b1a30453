/*
 * redzone.c - debug caches: the slot layout, red zones (Z), poison (P),
 * the object's state (F) and its record (U), at alloc and at free.
 *
 * Slot of a debug cache (offsets from the slot's start, which is where the
 * core's link word lives while the slot is free on a chain):
 *
 *   0 .. off            left red zone (off = max(16, align))
 *   off .. off+req      the object the program asked for (req bytes)
 *   off+req .. track    right red zone: the class's slack past req, then
 *                       at least DBG_RZ_MIN bytes, byte-exact
 *   track               struct dbg_track (state, sizes, stacks, times)
 *
 * Life of a debug object: NEW or RELEASED -> alloc: checked (F: not live,
 * not quarantined; P: poison intact), red zones armed (0xcc) -> LIVE ->
 * free: state checked (a second free names both stacks), red zones
 * checked, then 0xbb, poisoned (0x6b..0xa5) -> FREE, in quarantine ->
 * evicted: poison and red zones checked -> RELEASED, back to the core's
 * chain, where the core's checks apply to the slot as to any object.
 */
#include "debug.h"
#include "kmalloc.h"

#include <stdio.h>
#include <time.h>

struct dbg_cache sn_dbg_caches[SN_NR_SLOTS];

static uint64_t start_ns;

uint64_t dbg_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	uint64_t now = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	uint64_t zero = __atomic_load_n(&start_ns, __ATOMIC_RELAXED);
	if (!zero) {
		__atomic_compare_exchange_n(&start_ns, &zero, now, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
		zero = __atomic_load_n(&start_ns, __ATOMIC_RELAXED);
	}
	return now - zero;
}

/* ------------------------------------------------------------------ */
/* Layout                                                             */
/* ------------------------------------------------------------------ */

static size_t round_up(size_t x, size_t a)
{
	return (x + a - 1) & ~(a - 1);
}

/* The slot's bytes for an object of @size aligned to @align. */
static size_t dbg_layout(struct dbg_cache *d, size_t size, size_t align, slab_flags_t flags)
{
	size_t a = align < 16 ? 16 : align;
	d->flags = flags & SLAB_DEBUG_FLAGS;
	d->off = (uint32_t)a;
	d->osize = (uint32_t)size;
	d->track_off = (uint32_t)round_up(a + size + DBG_RZ_MIN, 8);
	return round_up(d->track_off + sizeof(struct dbg_track), a);
}

/* Publish @c as a debug cache laid out as @d. */
static void dbg_publish(struct slab_cache *c, const struct dbg_cache *d, const char *name)
{
	sn_dbg_caches[c->index] = *d;
	sn_dbg_caches[c->index].name = name ? name : c->name;
	atomic_fetch_or(&c->hooks, HOOK_DEBUG);
}

struct slab_cache *sn_debug_cache_create(const char *name, size_t size, size_t align, slab_flags_t flags,
					 void (*ctor)(void *))
{
	if (ctor || (flags & SLAB_TYPESAFE_BY_RCU)) {
		errno = EINVAL;
		return NULL;
	}
	if (flags & SLAB_HWCACHE_ALIGN && align < SN_CACHE_LINE)
		align = SN_CACHE_LINE;
	struct dbg_cache d;
	size_t slot = dbg_layout(&d, size, align, flags);
	if (slot > SLAB_MAX_OBJECT_SIZE) {
		errno = EINVAL;
		return NULL;
	}
	struct slab_cache *c = cache_create_internal(name, slot, d.off, flags, NULL, 0, -1);
	if (!c)
		return NULL;
	dbg_publish(c, &d, NULL);
	return cache_handle(c);
}

/* The twins are named as their classes: a report names the cache the
 * program's block would have come from. */
static char twin_names[2][SN_NR_CLASSES][24];

static const char *twin_name(unsigned i, bool accounted)
{
	char *buf = twin_names[accounted][i];
	uint32_t size = sn_class_size[i];
	const char *prefix = accounted ? "kmalloc-cg-" : "kmalloc-";
	if (size >= 1024 && size % 1024 == 0)
		snprintf(buf, sizeof(twin_names[0][0]), "%s%uk", prefix, size / 1024);
	else
		snprintf(buf, sizeof(twin_names[0][0]), "%s%u", prefix, size);
	return buf;
}

/* A class's name (for the guard's reports, which may come before the
 * kmalloc caches are made). */
const char *sn_class_name(unsigned cls)
{
	static char names[SN_NR_CLASSES][24];
	if (!names[cls][0]) {
		uint32_t size = sn_class_size[cls];
		if (size >= 1024 && size % 1024 == 0)
			snprintf(names[cls], sizeof(names[cls]), "kmalloc-%uk", size / 1024);
		else
			snprintf(names[cls], sizeof(names[cls]), "kmalloc-%u", size);
	}
	return names[cls];
}

bool sn_debug_make_twins(bool accounted, slab_flags_t flags, unsigned *first_slot)
{
	kmalloc_init();
	for (unsigned i = 0; i < SN_NR_CLASSES; i++) {
		struct dbg_cache d;
		size_t slot = dbg_layout(&d, sn_class_size[i], 16, flags);
		const char *name = twin_name(i, accounted);
		struct slab_cache *c = cache_create_internal(name, slot, 16, (accounted ? SLAB_ACCOUNT : 0) | flags,
							     NULL, CACHE_BUILTIN, -1);
		if (i == 0 && c)
			*first_slot = c->index;
		/* The drop-in indexes them from the first: they must follow it
		 * (they do when made first, single-threaded, in its constructor). */
		if (!c || c->index != *first_slot + i) {
			fprintf(stderr, "slabnotify: --debug: cannot make the debug cache of %s\n", name);
			return false;
		}
		dbg_publish(c, &d, name);
	}
	return true;
}

/* ------------------------------------------------------------------ */
/* Checks                                                             */
/* ------------------------------------------------------------------ */

/* The first byte of [p, p+n) that is not @v, or NULL; *last gets the
 * last. A clean range, every check's answer, is one memcmp of the range
 * against itself shifted by a byte (vectorised by libc): the byte loop
 * runs only over a range found dirty. */
const uint8_t *dbg_first_not(const uint8_t *p, size_t n, uint8_t v, const uint8_t **last)
{
	if (!n || (p[0] == v && !memcmp(p, p + 1, n - 1)))
		return NULL;
	const uint8_t *first = NULL;
	for (size_t i = 0; i < n; i++)
		if (p[i] != v) {
			if (!first)
				first = p + i;
			*last = p + i;
		}
	return first;
}

/* Check [p, p+n) holds @v; report @what and (continuing) restore it. */
static bool check_bytes(const char *fn, struct slab_cache *c, const struct dbg_cache *d, char *slot,
			uint8_t *p, size_t n, uint8_t v, const char *what, bool second_free)
{
	const uint8_t *last = NULL;
	const uint8_t *bad = dbg_first_not(p, n, v, &last);
	if (!bad)
		return true;
	struct dbg_bug b = { .cache = d->name ? d->name : c->name, .what = what, .fn = fn, .bad_lo = bad,
			     .bad_hi = last, .found = *bad, .expected = v, .slot = slot, .d = d,
			     .second_free = second_free };
	dbg_report(&b);
	if (dbg_report_done())
		memset(p, v, n);
	return false;
}

static bool check_redzones(const char *fn, struct slab_cache *c, const struct dbg_cache *d, char *slot,
			   uint8_t v, bool link_clobbered)
{
	struct dbg_track *t = dbg_track_of(d, slot);
	/* A slot on a core chain had its link word in the left red zone. */
	size_t skip = link_clobbered ? sizeof(uintptr_t) : 0;
	bool ok = check_bytes(fn, c, d, slot, (uint8_t *)slot + skip, d->off - skip, v, "Left Redzone overwritten",
			      false);
	char *end = slot + d->off + t->req;
	return check_bytes(fn, c, d, slot, (uint8_t *)end, (size_t)(slot + d->track_off - end), v,
			   "Right Redzone overwritten", false) && ok;
}

static void poison(const struct dbg_cache *d, char *slot, uint32_t req)
{
	if (!req)
		return;
	memset(slot + d->off, POISON_FREE, req - 1);
	slot[d->off + req - 1] = (char)POISON_END;
}

static bool check_poison(const char *fn, struct slab_cache *c, const struct dbg_cache *d, char *slot)
{
	uint32_t req = dbg_track_of(d, slot)->req;
	if (!req)
		return true;
	uint8_t *p = (uint8_t *)slot + d->off;
	return check_bytes(fn, c, d, slot, p, req - 1, POISON_FREE, "Poison overwritten", false) &&
	       check_bytes(fn, c, d, slot, p + req - 1, 1, POISON_END, "Poison overwritten", false);
}

/* A freed object (in quarantine, or released to its chain: @link_clobbered)
 * still as it was left: poison and red zones. */
bool dbg_check_freed(const char *fn, struct slab_cache *c, void *slot, bool link_clobbered)
{
	const struct dbg_cache *d = &sn_dbg_caches[c->index];
	bool ok = true;
	if (d->flags & SLAB_POISON)
		ok = check_poison(fn, c, d, slot);
	if (d->flags & SLAB_RED_ZONE)
		ok = check_redzones(fn, c, d, slot, RED_INACTIVE, link_clobbered) && ok;
	return ok;
}

static void bug_state(const char *fn, struct slab_cache *c, const struct dbg_cache *d, char *slot,
		      const char *what, bool second_free)
{
	struct dbg_bug b = { .cache = d->name ? d->name : c->name, .what = what, .fn = fn, .slot = slot, .d = d,
			     .second_free = second_free };
	dbg_report(&b);
}

/* ------------------------------------------------------------------ */
/* Alloc                                                              */
/* ------------------------------------------------------------------ */

/* The slot the core handed out must be one nobody holds. */
static void check_reuse(const char *fn, struct slab_cache *c, const struct dbg_cache *d, char *slot)
{
	struct dbg_track *t = dbg_track_of(d, slot);
	if (t->magic != dbg_magic(c, slot) || t->state == DBG_NEW)
		return;
	if (t->state == DBG_RELEASED) {
		dbg_check_freed(fn, c, slot, true);
		return;
	}
	if (d->flags & SLAB_CONSISTENCY_CHECKS) {
		bug_state(fn, c, d, slot, t->state == DBG_LIVE ? "Freelist corrupted: a live object handed out again"
							   : "Freelist corrupted: a quarantined object handed out",
			  false);
		dbg_report_done();
	}
}

static void arm(const struct slab_cache *c, const struct dbg_cache *d, char *slot, size_t req)
{
	struct dbg_track *t = dbg_track_of(d, slot);
	t->magic = dbg_magic(c, slot);
	t->state = DBG_LIVE;
	t->req = (uint32_t)req;
	t->free_stack = 0;
	t->free_tid = 0;
	t->free_ns = 0;
	if (d->flags & SLAB_STORE_USER) {
		t->alloc_stack = dbg_stack_now();
		t->alloc_tid = sn_thread_ordinal();
		t->alloc_ns = dbg_now_ns();
	}
	if (d->flags & SLAB_RED_ZONE) {
		memset(slot, RED_ACTIVE, d->off);
		memset(slot + d->off + req, RED_ACTIVE, d->track_off - d->off - req);
	}
}

void *sn_debug_alloc_hook(const char *fn, struct slab_cache *c, struct slab *s, uint32_t idx, void *slot,
			  slab_gfp_t gfp, size_t req)
{
	const struct dbg_cache *d = &sn_dbg_caches[c->index];
	check_reuse(fn, c, d, slot);
	if (req > d->osize)
		req = d->osize;    /* SN_REQ_OBJECT: a cache's whole object */
	if (gfp & SLAB_GFP_ZERO)
		memset((char *)slot + d->off, 0, d->osize);
#ifndef SLABNOTIFY_NO_NOTIFY
	/* The handlers see the slot: it is what is charged and freed. */
	if ((atomic_load_explicit(&c->hooks, memory_order_relaxed) & HOOK_ALLOC) &&
	    !notify_alloc_hook(c, s, idx, slot, gfp, req))
		return NULL;
#else
	(void)s;
	(void)idx;
#endif
	arm(c, d, slot, req);
	return (char *)slot + d->off;
}

/* ------------------------------------------------------------------ */
/* Free                                                               */
/* ------------------------------------------------------------------ */

/* The slot of @p, a pointer into a debug cache's slab; aborts on a
 * pointer that is not an object of it. */
static char *slot_of(const char *fn, struct slab_cache *c, struct slab *s, const void *p)
{
	const struct dbg_cache *d = &sn_dbg_caches[c->index];
	char *slot = (char *)p - d->off;
	uint64_t idx = slab_obj_index(c, s->base, slot);
	if ((uintptr_t)p < (uintptr_t)s->base + d->off || idx >= c->objects)
		sn_bad_free(fn, p, c, "invalid pointer (not the start of an object)");
	if (idx >= atomic_load_explicit(&s->fresh, memory_order_relaxed) ||
	    dbg_track_of(d, slot)->magic != dbg_magic(c, slot))
		sn_bad_free(fn, p, c, "free of an object never allocated");
	return slot;
}

/* Back to the core: the slot's FREE event, its chain, the core's checks. */
void dbg_release(const char *fn, struct slab_cache *c, void *slot)
{
	dbg_track_of(&sn_dbg_caches[c->index], slot)->state = DBG_RELEASED;
	struct slab *s = slab_of(slot);
	cache_free(fn, c, s, slot);
}

void sn_debug_free(const char *fn, struct slab_cache *c, struct slab *s, void *p)
{
	const struct dbg_cache *d = &sn_dbg_caches[c->index];
	char *slot = slot_of(fn, c, s, p);
	struct dbg_track *t = dbg_track_of(d, slot);
	if (t->state != DBG_LIVE) {
		bug_state(fn, c, d, slot, "Object already free", true);
		dbg_report_done();
		return;          /* continuing: the second free is ignored */
	}
	if (d->flags & SLAB_RED_ZONE)
		check_redzones(fn, c, d, slot, RED_ACTIVE, false);
	if (d->flags & SLAB_STORE_USER) {
		t->free_stack = dbg_stack_now();
		t->free_tid = sn_thread_ordinal();
		t->free_ns = dbg_now_ns();
	}
	t->state = DBG_FREE;
	if (d->flags & SLAB_RED_ZONE) {
		memset(slot, RED_INACTIVE, d->off);
		memset(slot + d->off + t->req, RED_INACTIVE, d->track_off - d->off - t->req);
	}
	if (d->flags & SLAB_POISON) {
		poison(d, slot, t->req);
		quarantine_put(fn, c, slot);
		return;
	}
	dbg_release(fn, c, slot);
}

size_t sn_debug_usable_size(const char *fn, struct slab_cache *c, struct slab *s, const void *p)
{
	char *slot = slot_of(fn, c, s, p);
	return dbg_track_of(&sn_dbg_caches[c->index], slot)->req;
}
