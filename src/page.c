/*
 * page.c - memory from the OS: segments, the segment map, slab pages
 * and large objects.
 *
 * A segment is a 4 MiB, 4 MiB-aligned mapping. A slab segment holds
 * slabs of one size (one "order"); its header and the slab descriptors
 * fill its first slots, so object memory stays naturally aligned and an
 * address finds its descriptor with a mask and a shift. A large segment
 * holds one object larger than the biggest size class.
 *
 * Every segment start is recorded in the segment map, one bit per 4 MiB,
 * so that a free can tell in a few instructions whether a pointer is
 * ours before it dereferences anything (mimalloc's segment map).
 *
 * Freed slabs stay "dirty" (still backed) for a short while, most
 * recent first, so that a program that frees and reallocates in waves
 * does not fault its memory back in each time. Dirty slabs older than
 * PURGE_DELAY_NS, or beyond DIRTY_MAX bytes, are returned to the OS with
 * madvise(MADV_DONTNEED) (mimalloc's delayed purge, in spirit), and
 * slab_cache_shrink() purges them all.
 *
 * Locking: one mutex per order protects that order's segment list and
 * descriptor lists. Slab segments are never unmapped: a purged slab's
 * memory is given back with madvise, which keeps the map bit valid for
 * the life of the process. Large segments are unmapped on free and
 * their bit cleared.
 */
#define _GNU_SOURCE   /* mremap */
#include "internal.h"

#include <errno.h>
#include <stdbool.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PURGE_DELAY_NS (50 * 1000 * 1000ULL)   /* 50 ms */
#define DIRTY_MAX      (8UL << 20)              /* per order */

_Atomic uint64_t sn_segmap[(1UL << (SN_ADDR_BITS - SN_SEG_SHIFT)) / 64];

/* Bytes in use (slabs given to caches, live large mappings) and peak. */
static _Atomic size_t mem_in_use, mem_peak, mem_large;

static void mem_account(long delta)
{
	size_t now = atomic_fetch_add_explicit(&mem_in_use, (size_t)delta, memory_order_relaxed) + (size_t)delta;
	size_t peak = atomic_load_explicit(&mem_peak, memory_order_relaxed);
	while (delta > 0 && now > peak &&
	       !atomic_compare_exchange_weak_explicit(&mem_peak, &peak, now, memory_order_relaxed,
						      memory_order_relaxed))
		;
}

int slab_mem_stat(struct slab_mem_stat *st)
{
	if (!st) {
		errno = EINVAL;
		return -EINVAL;
	}
	st->in_use = atomic_load(&mem_in_use);
	st->peak = atomic_load(&mem_peak);
	st->large_in_use = atomic_load(&mem_large);
	return 0;
}

struct order_pool {
	pthread_mutex_t lock;
	struct slab *free_desc;    /* clean unused descriptors, by ->next */
	struct slab *dirty_head;   /* freed, still backed: newest first */
	struct slab *dirty_tail;
	size_t dirty_bytes;
	unsigned long nr_segments;
};

static struct order_pool pools[SN_NR_ORDERS] = {
	[0 ... SN_NR_ORDERS - 1] = { .lock = PTHREAD_MUTEX_INITIALIZER },
};

void *os_map(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

void os_unmap(void *p, size_t size)
{
	if (p && size)
		munmap(p, size);
}

/* Map @size bytes (a multiple of the page size) aligned to a segment. */
static void *os_map_segment_aligned(size_t size)
{
	size_t over = size + SN_SEG_SIZE;
	if (over < size)
		return NULL;
	char *raw = os_map(over);
	if (!raw)
		return NULL;
	uintptr_t start = ((uintptr_t)raw + SN_SEG_MASK) & ~SN_SEG_MASK;
	size_t head = start - (uintptr_t)raw;
	size_t tail = over - head - size;
	if (head)
		munmap(raw, head);
	if (tail)
		munmap((char *)start + size, tail);
	return (void *)start;
}

static void segmap_set(uintptr_t seg, bool on)
{
	uintptr_t bit = seg >> SN_SEG_SHIFT;
	uint64_t mask = 1ULL << (bit & 63);
	if (on)
		atomic_fetch_or_explicit(&sn_segmap[bit >> 6], mask, memory_order_release);
	else
		atomic_fetch_and_explicit(&sn_segmap[bit >> 6], ~mask, memory_order_release);
}

/* A new slab segment for @shift; its free descriptors join the pool.
 * Called with the pool lock held. */
static bool segment_grow(struct order_pool *pool, unsigned shift)
{
	struct segment *seg = os_map_segment_aligned(SN_SEG_SIZE);
	if (!seg)
		return false;
	uint32_t nr = (uint32_t)(SN_SEG_SIZE >> shift);
	size_t header = sizeof(struct segment) + (size_t)nr * sizeof(struct slab);
	uint32_t first = (uint32_t)((header + ((1UL << shift) - 1)) >> shift);

	seg->magic = SN_SEG_MAGIC;
	seg->kind = SEG_SLABS;
	seg->slab_shift = (uint8_t)shift;
	seg->first_slab = (uint16_t)first;
	seg->nr_slabs = nr;
	seg->map_size = SN_SEG_SIZE;
	/* Push in reverse so that low addresses are used first. */
	for (uint32_t i = nr; i-- > first;) {
		struct slab *s = &seg->slabs[i];
		s->base = (char *)seg + ((size_t)i << shift);
		s->order_idx = (uint8_t)(shift - SN_MIN_SLAB_SHIFT);
		s->next = pool->free_desc;
		pool->free_desc = s;
	}
	pool->nr_segments++;
	segmap_set((uintptr_t)seg, true);
	return true;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void dirty_unlink(struct order_pool *pool, struct slab *s, size_t bytes)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		pool->dirty_head = s->next;
	if (s->next)
		s->next->prev = s->prev;
	else
		pool->dirty_tail = s->prev;
	s->next = s->prev = NULL;
	pool->dirty_bytes -= bytes;
}

/* Purge dirty slabs older than @older_than_ns (0: all). Lock held. */
static size_t pool_purge_locked(struct order_pool *pool, size_t bytes, uint64_t now, uint64_t delay)
{
	size_t purged = 0;
	struct slab *s;
	while ((s = pool->dirty_tail) &&
	       (pool->dirty_bytes > DIRTY_MAX || delay == 0 || now - s->map_size >= delay)) {
		dirty_unlink(pool, s, bytes);
		madvise(s->base, bytes, MADV_DONTNEED);
		s->map_size = 0;
		s->next = pool->free_desc;
		pool->free_desc = s;
		purged += bytes;
	}
	return purged;
}

struct slab *pages_alloc_slab(unsigned shift)
{
	struct order_pool *pool = &pools[shift - SN_MIN_SLAB_SHIFT];
	size_t bytes = (size_t)1 << shift;
	struct slab *s;
	pthread_mutex_lock(&pool->lock);
	if ((s = pool->dirty_head)) {
		dirty_unlink(pool, s, bytes);
		s->map_size = 0;
	} else {
		if (!pool->free_desc && !segment_grow(pool, shift)) {
			pthread_mutex_unlock(&pool->lock);
			errno = ENOMEM;
			return NULL;
		}
		s = pool->free_desc;
		pool->free_desc = s->next;
	}
	segment_of_slab(s)->nr_used++;
	pthread_mutex_unlock(&pool->lock);
	s->next = s->prev = NULL;
	mem_account((long)bytes);
	return s;
}

size_t pages_slab_bytes(const struct slab *s)
{
	return (size_t)1 << segment_of_slab(s)->slab_shift;
}

/* A slab goes back to its pool dirty; old dirty slabs are purged. The
 * descriptor keeps only its base and order; map_size holds the time. */
void pages_free_slab(struct slab *s)
{
	struct segment *seg = segment_of_slab(s);
	struct order_pool *pool = &pools[seg->slab_shift - SN_MIN_SLAB_SHIFT];
	size_t bytes = (size_t)1 << seg->slab_shift;
	char *base = s->base;
	uint8_t order_idx = s->order_idx;
	memset(s, 0, sizeof(*s));
	s->base = base;
	s->order_idx = order_idx;
	mem_account(-(long)bytes);
	uint64_t now = now_ns();
	s->map_size = (size_t)now;
	pthread_mutex_lock(&pool->lock);
	s->prev = NULL;
	s->next = pool->dirty_head;
	if (pool->dirty_head)
		pool->dirty_head->prev = s;
	else
		pool->dirty_tail = s;
	pool->dirty_head = s;
	pool->dirty_bytes += bytes;
	seg->nr_used--;
	pool_purge_locked(pool, bytes, now, PURGE_DELAY_NS);
	pthread_mutex_unlock(&pool->lock);
}

size_t pages_purge_all(void)
{
	size_t purged = 0;
	for (int i = 0; i < SN_NR_ORDERS; i++) {
		pthread_mutex_lock(&pools[i].lock);
		purged += pool_purge_locked(&pools[i], (size_t)1 << (i + SN_MIN_SLAB_SHIFT), 0, 0);
		pthread_mutex_unlock(&pools[i].lock);
	}
	return purged;
}

/*
 * Large objects: each its own segment, the descriptor in a header page,
 * the object at max(page, align) from the start, so that it lies in the
 * segment's first 4 MiB and the map finds its header.
 *
 * Freed large segments are kept in a small cache (LARGE_CACHE entries,
 * each for at most LARGE_CACHE_AGE_NS, in all at most half the bytes of
 * the live large objects, between 4 and 64 MiB, oldest evicted first) and
 * reused for a request that fits in at most twice its size: a program
 * that churns big buffers then neither maps nor faults them in again. Their map bit stays set while cached (they stay mapped); a
 * stale pointer into one finds no owning cache and is refused.
 * Growing realloc moves the pages with mremap() instead of copying.
 */
#define LARGE_CACHE        32
#define LARGE_CACHE_MIN_BYTES (4UL << 20)
#define LARGE_CACHE_BYTES  (64UL << 20)
#define LARGE_CACHE_MAX    (32UL << 20)
#define LARGE_CACHE_AGE_NS (1000 * 1000 * 1000ULL)

static struct {
	pthread_mutex_t lock;
	struct segment *seg[LARGE_CACHE];
	uint64_t freed_ns[LARGE_CACHE];
	size_t bytes;
	size_t live_bytes;       /* mapped bytes of live large objects */
} large_cache = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void large_live_adjust(size_t old_size, size_t new_size)
{
	pthread_mutex_lock(&large_cache.lock);
	large_cache.live_bytes += new_size - old_size;
	pthread_mutex_unlock(&large_cache.lock);
	atomic_fetch_add(&mem_large, new_size - old_size);
	mem_account((long)new_size - (long)old_size);
}

static size_t large_cache_limit(void)
{
	size_t lim = large_cache.live_bytes / 2;
	return lim < LARGE_CACHE_MIN_BYTES ? LARGE_CACHE_MIN_BYTES : lim > LARGE_CACHE_BYTES ? LARGE_CACHE_BYTES : lim;
}

static void large_unmap(struct segment *seg)
{
	segmap_set((uintptr_t)seg, false);
	os_unmap(seg, seg->map_size);
}

/* Take the smallest cached segment of at least @total bytes and at most
 * twice that; count the result as live. */
static struct segment *large_cache_take(size_t total)
{
	struct segment *best = NULL;
	int best_i = -1;
	pthread_mutex_lock(&large_cache.lock);
	for (int i = 0; i < LARGE_CACHE; i++) {
		struct segment *seg = large_cache.seg[i];
		if (seg && seg->map_size >= total && seg->map_size / 2 <= total &&
		    (!best || seg->map_size < best->map_size)) {
			best = seg;
			best_i = i;
		}
	}
	if (best) {
		large_cache.seg[best_i] = NULL;
		large_cache.bytes -= best->map_size;
		large_cache.live_bytes += best->map_size;
	}
	pthread_mutex_unlock(&large_cache.lock);
	return best;
}

/* Keep @seg for reuse; unmap what is too old, and the oldest while the
 * cache is over its limit. */
static void large_cache_put(struct segment *seg)
{
	struct segment *drop[LARGE_CACHE + 1];
	int nd = 0;
	uint64_t now = now_ns();
	pthread_mutex_lock(&large_cache.lock);
	large_cache.live_bytes -= seg->map_size;
	if (seg->map_size > LARGE_CACHE_MAX) {
		drop[nd++] = seg;
		seg = NULL;
	}
	for (int i = 0; i < LARGE_CACHE; i++) {
		struct segment *old = large_cache.seg[i];
		if (old && now - large_cache.freed_ns[i] >= LARGE_CACHE_AGE_NS) {
			drop[nd++] = old;
			large_cache.bytes -= old->map_size;
			large_cache.seg[i] = NULL;
		}
	}
	size_t limit = large_cache_limit();
	while (seg) {
		int slot = -1, oldest = -1;
		for (int i = 0; i < LARGE_CACHE; i++) {
			if (!large_cache.seg[i])
				slot = slot < 0 ? i : slot;
			else if (oldest < 0 || large_cache.freed_ns[i] < large_cache.freed_ns[oldest])
				oldest = i;
		}
		if (slot >= 0 && large_cache.bytes + seg->map_size <= limit) {
			large_cache.seg[slot] = seg;
			large_cache.freed_ns[slot] = now;
			large_cache.bytes += seg->map_size;
			break;
		}
		if (oldest < 0 || seg->map_size > limit) {
			drop[nd++] = seg;
			break;
		}
		drop[nd++] = large_cache.seg[oldest];     /* make room */
		large_cache.bytes -= large_cache.seg[oldest]->map_size;
		large_cache.seg[oldest] = NULL;
	}
	pthread_mutex_unlock(&large_cache.lock);
	while (nd)
		large_unmap(drop[--nd]);
}

/* Mapping size for @size bytes at offset @off: rounded up to a quarter
 * power of two (at most 25% more), so that freed segments fit later
 * requests of about the same size. */
static size_t large_total(size_t size, size_t off)
{
	if (size > ((size_t)1 << SN_ADDR_BITS))
		return 0;
	size_t need = off + size;
	unsigned shift = 63 - (unsigned)__builtin_clzl(need);  /* floor(log2) */
	size_t quarter = shift >= 2 ? (size_t)1 << (shift - 2) : 1;
	size_t total = (need + quarter - 1) & ~(quarter - 1);
	return (total + SN_PAGE_SIZE - 1) & ~(SN_PAGE_SIZE - 1);
}

static struct slab *large_setup(struct segment *seg, size_t off, size_t map_size, bool fresh)
{
	seg->magic = SN_SEG_MAGIC;
	seg->kind = SEG_LARGE;
	seg->slab_shift = SN_SEG_SHIFT;
	seg->first_slab = 0;
	seg->nr_slabs = 1;
	seg->nr_used = 1;
	seg->map_size = map_size;
	struct slab *s = &seg->slabs[0];
	memset(s, 0, sizeof(*s));
	s->base = (char *)seg + off;
	s->objects = 1;
	s->large_size = map_size - off;
	s->map_size = map_size;
	s->large_fresh = fresh;
	return s;
}

struct slab *pages_alloc_large(size_t size, size_t align)
{
	size_t off = align > SN_PAGE_SIZE ? align : SN_PAGE_SIZE;
	size_t total = large_total(size, off);
	if (!total) {
		errno = ENOMEM;
		return NULL;
	}
	struct segment *seg = large_cache_take(total);
	if (seg) {
		atomic_fetch_add(&mem_large, seg->map_size);
		mem_account((long)seg->map_size);
		return large_setup(seg, off, seg->map_size, false);
	}
	seg = os_map_segment_aligned(total);
	if (!seg) {
		errno = ENOMEM;
		return NULL;
	}
	struct slab *s = large_setup(seg, off, total, true);
	segmap_set((uintptr_t)seg, true);
	large_live_adjust(0, total);
	return s;
}

void pages_free_large(struct slab *s)
{
	struct segment *seg = segment_of_slab(s);
	atomic_fetch_sub(&mem_large, seg->map_size);
	mem_account(-(long)seg->map_size);
	large_cache_put(seg);
}

/*
 * Resize a large object to @size bytes, keeping its contents: in place
 * when it fits or the mapping can grow where it is, else by moving the
 * pages to a new segment-aligned place with mremap (no copy). Returns
 * the (possibly new) descriptor, or NULL with the object untouched.
 */
struct slab *pages_realloc_large(struct slab *s, size_t size)
{
	struct segment *seg = segment_of_slab(s);
	size_t off = (size_t)(s->base - (char *)seg);
	size_t total = large_total(size, off);
	if (!total) {
		errno = ENOMEM;
		return NULL;
	}
	if (total <= seg->map_size && total > seg->map_size / 2)
		return s;   /* fits, without wasting half */
	size_t old_size = seg->map_size;
	if (mremap(seg, seg->map_size, total, 0) != MAP_FAILED) {
		large_live_adjust(old_size, total);
		seg->map_size = s->map_size = total;
		s->large_size = total - off;
		return s;
	}
	struct segment *dst = os_map_segment_aligned(total);
	if (!dst) {
		errno = ENOMEM;
		return NULL;
	}
	if (mremap(seg, seg->map_size, total, MREMAP_MAYMOVE | MREMAP_FIXED, dst) == MAP_FAILED) {
		os_unmap(dst, total);
		errno = ENOMEM;
		return NULL;
	}
	segmap_set((uintptr_t)seg, false);
	segmap_set((uintptr_t)dst, true);
	large_live_adjust(old_size, total);
	dst->map_size = total;
	struct slab *d = &dst->slabs[0];
	d->base = (char *)dst + off;
	d->map_size = total;
	d->large_size = total - off;
	return d;
}

bool slab_owns(const void *p)
{
	struct slab *s = slab_of(p);
	if (!s)
		return false;
	struct segment *seg = segment_of_slab(s);
	if (seg->kind == SEG_LARGE)
		return (const char *)p >= s->base && (const char *)p < s->base + s->large_size;
	return s->cache != NULL && (uint32_t)(s - seg->slabs) >= seg->first_slab;
}

void pages_fork_prepare(void)
{
	for (int i = 0; i < SN_NR_ORDERS; i++)
		pthread_mutex_lock(&pools[i].lock);
	pthread_mutex_lock(&large_cache.lock);
}

void pages_fork_parent(void)
{
	pthread_mutex_unlock(&large_cache.lock);
	for (int i = SN_NR_ORDERS; i-- > 0;)
		pthread_mutex_unlock(&pools[i].lock);
}

void pages_fork_child(void)
{
	pthread_mutex_init(&large_cache.lock, NULL);
	for (int i = 0; i < SN_NR_ORDERS; i++)
		pthread_mutex_init(&pools[i].lock, NULL);
}
