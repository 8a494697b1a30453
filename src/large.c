/*
 * large.c - objects above SLAB_KMALLOC_MAX: each its own mapping.
 *
 * A large object is a page-rounded anonymous mapping; its descriptor (a
 * struct slab, in meta memory) is out of line, found through a hash
 * table keyed by the object's address. Nothing a program's overflow can
 * reach is trusted: there is no header next to the object. The objects
 * belong to the pseudo-cache "kmalloc-large", so that notifier consumers
 * see every byte; an object is charged its pages and nothing else.
 *
 * Mappings come in size classes, four per doubling (as jemalloc's large
 * classes: at most 25 % of address space over the page-rounded request,
 * and pages are only backed when touched), so that a freed mapping fits
 * the next request of about its size. The object is still the pages it
 * asked for (its usable size, and what --max charges: a program that asks
 * for N bytes under a cap of M succeeds whenever N, what it holds and a
 * page fit under M); the rest of its mapping is room to grow in place. Freed mappings are kept for reuse
 * (LARGE_CACHE entries, each for at most LARGE_CACHE_AGE_NS, in all at
 * most LARGE_CACHE_LIVE_FACTOR times the bytes of the live large objects,
 * between 4 and 64 MiB,
 * oldest evicted first). A request takes the smallest cached mapping
 * that holds it, whole up to twice its size, split beyond that with the
 * rest cached again; with none big enough, the largest smaller one,
 * grown with mremap. Reused memory is already backed: the first bytes
 * of such an object cost no page fault. Growing realloc stays in place
 * while the mapping holds the new size, copies into a cached mapping of
 * at most half again the size (cheaper than faulting fresh pages in),
 * else moves its pages with mremap(2); a shrink below half copies what
 * is kept into a smaller object and caches the old mapping whole (a
 * mapping above LARGE_CACHE_MAX, which no cache keeps, unmaps its
 * tail). slab_cache_shrink of this cache (so malloc_trim) unmaps the
 * cache.
 *
 * Requests that no machine state could back (above RAM plus swap, or
 * above the commit limit when overcommit is strict) fail at once with
 * ENOMEM, as glibc's do, rather than succeed and be killed on touch.
 *
 * Locking: one mutex (SN_RANK_LARGE) for the table and the mapping
 * cache; no handler is called and no syscall made under it, except the
 * unmapping of evicted entries, which is done after it is dropped.
 */
#include "fastpath.h"
#include "probes.h"
#include "test_hooks.h"

#include <errno.h>
#include <time.h>

#define LARGE_CACHE           128
#define LARGE_CACHE_MIN_BYTES (4UL << 20)
#define LARGE_CACHE_BYTES     (64UL << 20)
#define LARGE_CACHE_MAX       (32UL << 20)     /* a bigger mapping is not kept */
#define LARGE_CACHE_AGE_NS    (1000 * 1000 * 1000ULL)
/* Cached bytes, at most this many times the live large bytes: at 1x,
 * bigbuf's buffer churn evicted a mapping every 50 requests and faulted
 * 300 MB of pages back in (2.7x mimalloc's time; at 4x 1.25x, for 4 MiB
 * more peak RSS, docs/benchmarks.md). */
#define LARGE_CACHE_LIVE_FACTOR 4
#define TOMBSTONE             ((struct slab *)1)

struct slab_cache *sn_large_cache;
void (*sn_test_hook_large_moved)(void *old, void *moved);

struct cached_map {
	char *base;
	size_t bytes;
	uint64_t freed_ns;
};

static struct {
	struct sn_mutex lock;
	struct slab **slot;        /* open addressing, by base address */
	size_t cap, used, tombs;   /* cap: a power of two, or 0 */
	size_t table_bytes;
	struct cached_map cache[LARGE_CACHE];
	size_t cached_bytes;
	size_t live_bytes;         /* mapped bytes of live large objects */
} L = { .lock = SN_MUTEX_INIT(SN_RANK_LARGE) };

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static size_t page_round(size_t n)
{
	return (n + SN_PAGE_SIZE - 1) & ~(SN_PAGE_SIZE - 1);
}

/* The mapping for @n bytes: page-rounded, then up to its class (four
 * per doubling) when it is small enough to be cached. */
static size_t large_class_bytes(size_t n)
{
	size_t b = page_round(n);
	if (b < n || b > LARGE_CACHE_MAX)
		return b;
	size_t step = ((size_t)1 << (63 - __builtin_clzl(b))) / 4;
	if (step < SN_PAGE_SIZE)
		return b;
	return (b + step - 1) & ~(step - 1);
}

bool sn_size_possible(size_t size)
{
	if (size > os_physical_bytes())
		return false;
	size_t commit = os_commit_limit();
	return !commit || size <= commit;
}

/* ------------------------------------------------------------------ */
/* The table (lock held)                                              */
/* ------------------------------------------------------------------ */

static size_t hash_addr(const void *p, size_t cap)
{
	return (size_t)(((uintptr_t)p >> SN_PAGE_SHIFT) * 0x9e3779b97f4a7c15ULL >> 20) & (cap - 1);
}

static bool table_insert_locked(struct slab *d);

/* Grow (or clean) the table; the old array is freed after unlocking by
 * the caller (*old, *old_bytes). */
static bool table_rehash_locked(void **old, size_t *old_bytes)
{
	size_t cap = L.cap ? L.cap : 256;
	while ((L.used + 1) * 2 > cap)
		cap *= 2;
	size_t bytes = cap * sizeof(struct slab *);
	struct slab **fresh = os_map(page_round(bytes));
	if (!fresh)
		return false;
	struct slab **prev = L.slot;
	size_t prev_cap = L.cap;
	*old = prev;
	*old_bytes = L.table_bytes;
	L.slot = fresh;
	L.cap = cap;
	L.table_bytes = page_round(bytes);
	L.used = L.tombs = 0;
	for (size_t i = 0; i < prev_cap; i++)
		if (prev[i] && prev[i] != TOMBSTONE)
			table_insert_locked(prev[i]);
	return true;
}

static bool table_insert_locked(struct slab *d)
{
	for (size_t i = hash_addr(d->base, L.cap);; i = (i + 1) & (L.cap - 1)) {
		if (!L.slot[i] || L.slot[i] == TOMBSTONE) {
			if (L.slot[i] == TOMBSTONE)
				L.tombs--;
			L.slot[i] = d;
			L.used++;
			return true;
		}
	}
}

static size_t table_find_locked(const void *p)
{
	if (!L.cap)
		return SIZE_MAX;
	for (size_t i = hash_addr(p, L.cap), n = 0; n < L.cap; i = (i + 1) & (L.cap - 1), n++) {
		struct slab *d = L.slot[i];
		if (!d)
			return SIZE_MAX;
		if (d != TOMBSTONE && d->base == p)
			return i;
	}
	return SIZE_MAX;
}

/* struct slab's idle byte marks a large object being freed. */
static struct slab *table_remove_locked(const void *p)
{
	size_t i = table_find_locked(p);
	if (i == SIZE_MAX)
		return NULL;
	struct slab *d = L.slot[i];
	L.slot[i] = TOMBSTONE;
	L.used--;
	L.tombs++;
	return d;
}

/* Insert, growing first when more than half full (counting tombs). */
static bool table_add(struct slab *d)
{
	void *old = NULL;
	size_t old_bytes = 0;
	sn_lock(&L.lock);
	if ((L.used + L.tombs + 1) * 2 > L.cap && !table_rehash_locked(&old, &old_bytes)) {
		sn_unlock(&L.lock);
		return false;
	}
	table_insert_locked(d);
	L.live_bytes += d->map_size;
	sn_unlock(&L.lock);
	os_unmap(old, old_bytes);
	return true;
}

/* ------------------------------------------------------------------ */
/* The mapping cache (lock held)                                      */
/* ------------------------------------------------------------------ */

static size_t cache_limit_locked(void)
{
	size_t lim = L.live_bytes * LARGE_CACHE_LIVE_FACTOR;
	return lim < LARGE_CACHE_MIN_BYTES ? LARGE_CACHE_MIN_BYTES : lim > LARGE_CACHE_BYTES ? LARGE_CACHE_BYTES : lim;
}

/* Keep [base, base+bytes) if there is room (evicting the oldest); what
 * must go is appended to @drop. */
static void cache_put_locked(char *base, size_t bytes, uint64_t now, struct cached_map *drop, int *nd)
{
	for (int i = 0; i < LARGE_CACHE; i++) {
		struct cached_map *m = &L.cache[i];
		if (m->base && now - m->freed_ns >= LARGE_CACHE_AGE_NS) {
			drop[(*nd)++] = *m;
			L.cached_bytes -= m->bytes;
			m->base = NULL;
		}
	}
	if (bytes > LARGE_CACHE_MAX || bytes > cache_limit_locked()) {
		drop[(*nd)++] = (struct cached_map){ base, bytes, now };
		return;
	}
	for (;;) {
		int slot = -1, oldest = -1;
		for (int i = 0; i < LARGE_CACHE; i++) {
			if (!L.cache[i].base)
				slot = slot < 0 ? i : slot;
			else if (oldest < 0 || L.cache[i].freed_ns < L.cache[oldest].freed_ns)
				oldest = i;
		}
		if (slot >= 0 && L.cached_bytes + bytes <= cache_limit_locked()) {
			L.cache[slot] = (struct cached_map){ base, bytes, now };
			L.cached_bytes += bytes;
			return;
		}
		if (oldest < 0) {
			drop[(*nd)++] = (struct cached_map){ base, bytes, now };
			return;
		}
		drop[(*nd)++] = L.cache[oldest];     /* make room */
		L.cached_bytes -= L.cache[oldest].bytes;
		L.cache[oldest].base = NULL;
	}
}

static void unmap_all(const struct cached_map *drop, int nd)
{
	while (nd--)
		os_unmap(drop[nd].base, drop[nd].bytes);
}

/* Every cached mapping back to the OS (slab_cache_shrink of kmalloc-large,
 * and so malloc_trim): the bytes given back. */
long large_cache_flush(void)
{
	struct cached_map drop[LARGE_CACHE];
	int nd = 0;
	long bytes = 0;
	sn_lock(&L.lock);
	for (int i = 0; i < LARGE_CACHE; i++) {
		if (!L.cache[i].base)
			continue;
		bytes += (long)L.cache[i].bytes;
		drop[nd++] = L.cache[i];
		L.cache[i].base = NULL;
	}
	L.cached_bytes = 0;
	sn_unlock(&L.lock);
	unmap_all(drop, nd);
	return bytes;
}

/* The cached mapping closest to @bytes: the smallest that holds them,
 * else the largest that does not; whole (its size in *@got). */
static char *cache_take_locked(size_t bytes, size_t *got)
{
	int fit = -1, under = -1;
	for (int i = 0; i < LARGE_CACHE; i++) {
		size_t b = L.cache[i].bytes;
		if (!L.cache[i].base)
			continue;
		if (b >= bytes && (fit < 0 || b < L.cache[fit].bytes))
			fit = i;
		else if (b < bytes && (under < 0 || b > L.cache[under].bytes))
			under = i;
	}
	int best = fit >= 0 ? fit : under;
	if (best < 0)
		return NULL;
	struct cached_map *m = &L.cache[best];
	char *base = m->base;
	*got = m->bytes;
	m->base = NULL;
	L.cached_bytes -= *got;
	return base;
}

/*
 * A cached mapping of @got bytes made into one of @bytes, lock dropped:
 * one more than twice as big is split, its tail cached again; a smaller
 * one grows (its pages move with mremap, only the new tail is fresh).
 * NULL if it cannot grow.
 */
static char *cache_fit(char *base, size_t got, size_t bytes)
{
	if (got >= bytes) {
		if (got - bytes > bytes) {
			struct cached_map drop[LARGE_CACHE + 2];
			int nd = 0;
			sn_lock(&L.lock);
			cache_put_locked(base + bytes, got - bytes, now_ns(), drop, &nd);
			sn_unlock(&L.lock);
			unmap_all(drop, nd);
		}
		return base;
	}
	char *nb = os_remap(base, got, bytes, true, NULL);
	if (!nb)
		os_unmap(base, got);
	else
		pages_note_fresh();
	return nb;
}


/* ------------------------------------------------------------------ */
/* Objects                                                            */
/* ------------------------------------------------------------------ */

void *large_alloc(const char *fn, size_t size, size_t align, slab_gfp_t gfp, size_t req)
{
	(void)fn;
	if (SN_PROBE_ACTIVE(large_alloc))
		SN_PROBE3(large_alloc, size, req, align);
	kmalloc_init();
	struct slab_cache *c = sn_large_cache;
	size_t bytes = large_class_bytes(size);
	if (bytes < size || !sn_size_possible(bytes)) {
		errno = ENOMEM;
		return NULL;
	}
	struct slab *d = meta_zalloc(sizeof(*d));
	if (!d) {
		errno = ENOMEM;
		return NULL;
	}
	char *base = NULL;
	if (align <= SN_PAGE_SIZE) {
		size_t got = 0;
		sn_lock(&L.lock);
		base = cache_take_locked(bytes, &got);
		sn_unlock(&L.lock);
		if (base) {
			base = cache_fit(base, got, bytes);
			if (base && got > bytes && got - bytes <= bytes)
				bytes = got;   /* kept whole */
		}
	}
	bool fresh = !base;
	if (fresh)
		base = os_map_aligned(bytes, align);
	if (!base) {
		meta_free(d);
		errno = ENOMEM;
		return NULL;
	}
	if (fresh)
		pages_note_fresh();
	d->base = base;
	atomic_store_explicit(&d->fresh, 1, memory_order_relaxed);
	d->large_size = page_round(size);   /* what is charged: the pages asked for */
	d->map_size = bytes;
	d->large_fresh = fresh;
	if (!table_add(d)) {
		os_unmap(base, bytes);
		meta_free(d);
		errno = ENOMEM;
		return NULL;
	}
	__atomic_store_n(&d->cache, c, __ATOMIC_RELEASE);
	atomic_fetch_add_explicit(&c->nr_slabs, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&c->alloc_slab, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&c->dead_alloc_slow, 1, memory_order_relaxed);
	pages_account_large((long)bytes);
	/* Fresh mappings are zero; reused ones are not. */
	if ((gfp & SLAB_GFP_ZERO) && !fresh)
		memset(base, 0, size);
	if (atomic_load_explicit(&c->hooks, memory_order_relaxed) & HOOK_ALLOC)
		return notify_alloc_hook(c, d, 0, base, gfp, req);
	return base;
}

/* Give a large object back, with no event (after FREE, or a veto). The
 * descriptor is off the table already, or is taken off here. */
void large_release(struct slab *d)
{
	struct slab_cache *c = d->cache;
	struct cached_map drop[LARGE_CACHE + 2];
	int nd = 0;
	notify_slab_release_meta(d);
	atomic_fetch_sub_explicit(&c->nr_slabs, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&c->free_slab, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&c->dead_free_slow, 1, memory_order_relaxed);
	pages_account_large(-(long)d->map_size);
	sn_lock(&L.lock);
	size_t i = table_find_locked(d->base);
	if (i != SIZE_MAX && L.slot[i] == d) {
		L.slot[i] = TOMBSTONE;
		L.used--;
		L.tombs++;
	}
	L.live_bytes -= d->map_size;
	cache_put_locked(d->base, d->map_size, now_ns(), drop, &nd);
	sn_unlock(&L.lock);
	unmap_all(drop, nd);
	meta_free(d);
}

/* The descriptor of the large object at @p (its start), or NULL. */
struct slab *large_find(const void *p)
{
	sn_lock(&L.lock);
	size_t i = table_find_locked(p);
	struct slab *d = i == SIZE_MAX ? NULL : L.slot[i];
	sn_unlock(&L.lock);
	return d;
}

/* Is @p inside a live large object? A scan: for diagnostics only. */
static struct slab *large_containing(const void *p)
{
	struct slab *found = NULL;
	sn_lock(&L.lock);
	for (size_t i = 0; i < L.cap && !found; i++) {
		struct slab *d = L.slot[i];
		if (d && d != TOMBSTONE && (const char *)p >= d->base && (const char *)p < d->base + d->large_size)
			found = d;
	}
	sn_unlock(&L.lock);
	return found;
}

bool large_owns(const void *p)
{
	return large_containing(p) != NULL;
}

/* Not a live large object's start: abort with the best description. */
static void large_bad(const char *fn, const void *p)
{
	bool cached = false, freeing = false;
	sn_lock(&L.lock);
	for (int i = 0; i < LARGE_CACHE; i++)
		cached |= L.cache[i].base == p;
	size_t i = table_find_locked(p);
	freeing = i != SIZE_MAX && L.slot[i]->idle;
	sn_unlock(&L.lock);
	if (cached || freeing)
		sn_bad_free(fn, p, sn_large_cache, "double free");
	if (large_containing(p))
		sn_bad_free(fn, p, sn_large_cache, "invalid pointer (not the start of an object)");
	sn_bad_pointer(fn, p);
}

void large_free(const char *fn, void *p)
{
	/* Marked, not yet removed: FREE handlers still find the object (its
	 * obj_ext slots); a second free of it meanwhile is refused. */
	sn_lock(&L.lock);
	size_t i = table_find_locked(p);
	struct slab *d = i == SIZE_MAX ? NULL : L.slot[i];
	bool again = d && d->idle;
	if (d)
		d->idle = 1;
	sn_unlock(&L.lock);
	if (!d || again)
		large_bad(fn, p);
#ifndef SLABNOTIFY_NO_NOTIFY
	if (atomic_load_explicit(&d->cache->hooks, memory_order_relaxed) & HOOK_FREE)
		notify_free_hook(d->cache, d, 0, p);
#endif
	large_release(d);
}

size_t large_usable_size(const char *fn, const void *p)
{
	struct slab *d = large_find(p);
	if (!d)
		large_bad(fn, p);
	return d->large_size;
}

/* A cached mapping for a growing object: one that holds @bytes, at most
 * half again as many (copying into pages already backed costs less than
 * faulting in fresh ones: bigbuf's doubling buffers, 186k faults to 5k). */
static char *cache_take_fit(size_t bytes, size_t *got)
{
	sn_lock(&L.lock);
	char *base = cache_take_locked(bytes, got);
	if (base && (*got < bytes || *got - bytes > bytes / 2)) {
		uint64_t now = now_ns();
		struct cached_map drop[LARGE_CACHE + 2];
		int nd = 0;
		cache_put_locked(base, *got, now, drop, &nd);   /* not this one */
		sn_unlock(&L.lock);
		unmap_all(drop, nd);
		return NULL;
	}
	sn_unlock(&L.lock);
	return base;
}

/* Move @d's object to @nb (@got bytes, already mapped), lock held. */
static void large_move_locked(struct slab *d, char *nb, size_t got, size_t copy)
{
	memcpy(nb, d->base, copy);
	table_remove_locked(d->base);
	d->base = nb;
	L.live_bytes += got - d->map_size;
	d->map_size = d->large_size = got;
	d->large_fresh = 0;
	table_insert_locked(d);
}

/*
 * Resize an unobserved large object: in place when its mapping still
 * fits (down to half of it), else by giving back its tail (a mapping no
 * cache keeps; shrink_by_copy takes the others), by copying it
 * into a cached mapping, or by moving its pages with mremap. Returns the
 * (maybe new) address, or NULL with the object untouched.
 */
static void *large_remap(struct slab *d, size_t size, slab_gfp_t gfp)
{
	size_t bytes = large_class_bytes(size);
	if (bytes < size || !sn_size_possible(bytes)) {
		errno = ENOMEM;
		return NULL;
	}
	size_t old_bytes = d->map_size, old_size = d->large_size;
	char *old = d->base, *nb;
	if (bytes <= old_bytes && bytes >= old_bytes / 2) {
		nb = old;     /* the mapping holds it: nothing moves */
		bytes = old_bytes;
		goto zero;
	}
	size_t got;
	if (bytes > old_bytes && (nb = cache_take_fit(bytes, &got))) {
		struct cached_map drop[LARGE_CACHE + 2];
		int nd = 0;
		sn_lock(&L.lock);
		large_move_locked(d, nb, got, old_size);
		cache_put_locked(old, old_bytes, now_ns(), drop, &nd);
		sn_unlock(&L.lock);
		unmap_all(drop, nd);
		pages_account_large((long)got - (long)old_bytes);
		bytes = got;
		goto zero;
	}
	/* Off the table while its pages move: the kernel may hand the old
	 * address to another thread's new mapping before we are done. */
	sn_lock(&L.lock);
	table_remove_locked(old);
	sn_unlock(&L.lock);
	if (bytes < old_bytes) {
		os_unmap(old + bytes, old_bytes - bytes);
		nb = old;
	} else {
		nb = os_remap(old, old_bytes, bytes, true, NULL);
		if (!nb) {
			sn_lock(&L.lock);
			table_insert_locked(d);
			sn_unlock(&L.lock);
			errno = ENOMEM;
			return NULL;
		}
		pages_note_fresh();
		if (sn_test_hook_large_moved)
			sn_test_hook_large_moved(old, nb);
	}
	sn_lock(&L.lock);
	d->base = nb;
	d->map_size = d->large_size = bytes;
	table_insert_locked(d);
	L.live_bytes += bytes - old_bytes;
	sn_unlock(&L.lock);
	pages_account_large((long)bytes - (long)old_bytes);
zero:
	if ((gfp & SLAB_GFP_ZERO) && size > old_size && !d->large_fresh)
		memset(nb + old_size, 0, size - old_size);
	d->large_size = page_round(size);
	return nb;
}

/* A shrink below half of a cacheable mapping copies what is kept into a
 * smaller object and caches the old mapping whole (backed, and reusable
 * for the next big request), rather than unmapping its tail: pieces cut
 * off that way are rarely reused and fault in again (docs/design.md). */
static bool shrink_by_copy(const struct slab *d, size_t size)
{
	return size < d->map_size / 2 && d->map_size <= LARGE_CACHE_MAX;
}

void *large_realloc(const char *fn, void *p, size_t size, slab_gfp_t gfp)
{
	struct slab *d = large_find(p);
	if (!d)
		large_bad(fn, p);
	struct slab_cache *c = d->cache;
	bool observed = atomic_load_explicit(&c->hooks, memory_order_relaxed) & (HOOK_ALLOC | HOOK_FREE);
	bool remappable = size > SLAB_KMALLOC_MAX && !observed;
	if (remappable && !shrink_by_copy(d, size))
		return large_remap(d, size, gfp);
	/* Observed, small enough for a class, or a shrink by copy: move by
	 * alloc + copy + free, so that consumers see the FREE of the old and
	 * the ALLOC of the new (with its requested size: an observed block
	 * is never kept). */
	size_t old = d->large_size;
	if (size <= old && size > old / 2 && !observed)
		return p;
	void *n = slab_malloc(size, gfp & ~SLAB_GFP_ZERO);
	if (!n)   /* a shrink by copy that found no memory gives its tail back */
		return remappable ? large_remap(d, size, gfp) : NULL;
	memcpy(n, p, size < old ? size : old);
	if ((gfp & SLAB_GFP_ZERO) && size > old)
		memset((char *)n + old, 0, size - old);
	large_free(fn, p);
	return n;
}

void large_fork_prepare(void)
{
	pthread_mutex_lock(&L.lock.m);
}

void large_fork_parent(void)
{
	pthread_mutex_unlock(&L.lock.m);
}

void large_fork_child(void)
{
	sn_mutex_reinit(&L.lock);
}
