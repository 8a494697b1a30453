/*
 * page.c - slab pages: segments, the segment map, and the page pools.
 *
 * A segment is a 4 MiB, 4 MiB-aligned mapping holding slabs of one size
 * (one "order", 4 KiB .. 1 MiB) for one pool: POOL_USER for the caches a
 * program allocates from, POOL_META for slabnotify's own metadata, so
 * that no overflow from a program's object can run into metadata.
 *
 *   chunk + 0            guard page (PROT_NONE): an overflow from the
 *                        mapping below stops here
 *   chunk + 4 KiB        struct segment, then one descriptor per slot
 *   first slab - 4 KiB   guard page: an underflow from the first slab
 *                        stops here
 *   first slab ...       the slabs, each aligned to its size
 *
 * Every segment start is recorded in the segment map, one bit per 4 MiB,
 * so that a free tells in a few instructions whether a pointer is ours
 * before it dereferences anything (mimalloc's segment map). Segments are
 * never unmapped: a bit once set stays true for the life of the process.
 *
 * Freed slabs stay "dirty" (still backed) for a short while, most recent
 * first, so that a program that frees and reallocates in waves does not
 * fault its memory back in each time. Dirty slabs older than
 * PURGE_DELAY_NS are given back with os_decommit (mimalloc's delayed
 * purge, in spirit) once the program's memory has grown fresh since they
 * were freed (its new pages could have been these), else after
 * PURGE_HOLD_NS: by the pool that frees a slab, and by a sweep of every
 * pool at most once per delay from any slab allocation or free, so that
 * an order nobody frees into any more is purged too. There is no
 * cap in bytes: a cap below a program's wave (a batch of 4 MiB freed and
 * allocated again) made every wave fault its pages in again, 60x slower.
 * slab_cache_shrink() purges them all at once.
 *
 * Locking: one mutex per pool and order (SN_RANK_POOL) protects that
 * pool's segment list and descriptor lists. Nothing here notifies.
 */
#include "internal.h"

#include <errno.h>
#include <time.h>

/* 10 ms: at 50 ms, sqlite3 sorting 8 KiB rows (bench/rss_bench.sh's
 * sqlite_blob) kept the slabs of one phase backed while the next phase
 * faulted in new ones, 41.6 MiB peak RSS against 33.7 at 10 ms (glibc:
 * 31.2); a wave of frees and allocations within 10 ms still reuses its
 * backed slabs. */
#define PURGE_DELAY_NS (10 * 1000 * 1000ULL)
/* 250 ms: a dirty slab freed after the last time the program's memory
 * had to grow fresh from the OS (a slab never backed or purged, a new
 * large mapping) waits this long instead. Nothing has needed new pages
 * since, so keeping its own costs no peak, and they may be wanted back:
 * bintree's second pass faulted in again the 944 slabs its first had
 * given back at 10 ms (19450 page faults, mimalloc's 10639; 10630 from
 * 100 ms on, sqlite_blob's peak unchanged, docs/benchmarks.md). */
#define PURGE_HOLD_NS (250 * 1000 * 1000ULL)

_Atomic uint64_t sn_segmap[(1UL << (SN_MAP_BITS - SN_SEG_SHIFT)) / 64];

/* Bytes in use by the program (user slabs, large mappings) and peak. */
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

void pages_account_large(long delta)
{
	atomic_fetch_add_explicit(&mem_large, (size_t)delta, memory_order_relaxed);
	mem_account(delta);
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
	struct sn_mutex lock;
	struct slab *free_desc;    /* clean unused descriptors, by ->next */
	struct slab *dirty_head;   /* freed, still backed: newest first */
	struct slab *dirty_tail;
	size_t dirty_bytes;
	struct segment *segments;
};

static struct order_pool pools[SN_NR_POOLS][SN_NR_ORDERS] = {
	[0 ... SN_NR_POOLS - 1] = { [0 ... SN_NR_ORDERS - 1] = { .lock = SN_MUTEX_INIT(SN_RANK_POOL) } },
};

static void segmap_set(uintptr_t chunk)
{
	uintptr_t bit = chunk >> SN_SEG_SHIFT;
	atomic_fetch_or_explicit(&sn_segmap[bit >> 6], 1ULL << (bit & 63), memory_order_release);
}

/* A new segment for @shift; its free descriptors join the pool. Pool
 * lock held. */
static bool segment_grow(struct order_pool *pool, unsigned shift, enum seg_pool kind)
{
	char *chunk = os_map_aligned(SN_SEG_SIZE, SN_SEG_SIZE);
	if (!chunk)
		return false;
	uint32_t nr = (uint32_t)(SN_SEG_SIZE >> shift);
	size_t header = (size_t)nr * sizeof(struct slab);   /* slot 0's is the segment's */
	size_t region = SN_PAGE_SIZE + ((header + SN_PAGE_SIZE - 1) & ~(SN_PAGE_SIZE - 1)) + SN_PAGE_SIZE;
	uint32_t first = (uint32_t)((region + ((1UL << shift) - 1)) >> shift);
	if (!os_guard(chunk, SN_PAGE_SIZE) ||
	    !os_guard(chunk + ((size_t)first << shift) - SN_PAGE_SIZE, SN_PAGE_SIZE)) {
		os_unmap(chunk, SN_SEG_SIZE);
		return false;
	}
	struct segment *seg = segment_at((uintptr_t)chunk);
	seg->magic = SN_SEG_MAGIC;
	seg->slab_shift = (uint8_t)shift;
	seg->pool = (uint8_t)kind;
	seg->first_slab = (uint16_t)first;
	seg->nr_slabs = nr;
	/* Descriptors are made as their slots are first used: the pages of
	 * the header that no slab needs yet stay untouched. */
	seg->next_fresh = first;
	seg->next = pool->segments;
	pool->segments = seg;
	segmap_set((uintptr_t)chunk);
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

/* Times a slab or a large object needed pages never backed (or purged):
 * the program's memory grew fresh from the OS. */
static _Atomic unsigned long fresh_growths;

void pages_note_fresh(void)
{
	atomic_fetch_add_explicit(&fresh_growths, 1, memory_order_relaxed);
}

/* Dirty slab @s is purged at @now after @delay (0: all) when memory has
 * grown fresh since it was freed, else after PURGE_HOLD_NS. */
static bool purge_due(const struct slab *s, uint64_t now, uint64_t delay)
{
	if (delay == 0)
		return true;
	uint64_t age = now - s->map_size;
	return age >= delay && (s->freed_growths != atomic_load_explicit(&fresh_growths, memory_order_relaxed) ||
				age >= PURGE_HOLD_NS);
}

/* Purge the dirty slabs purge_due() says (oldest first: the first one it
 * spares, it spares all newer). Lock held. */
static size_t pool_purge_locked(struct order_pool *pool, size_t bytes, uint64_t now, uint64_t delay)
{
	size_t purged = 0;
	struct slab *s;
	while ((s = pool->dirty_tail) && purge_due(s, now, delay)) {
		dirty_unlink(pool, s, bytes);
		os_decommit(s->base, bytes);
		s->map_size = 0;
		s->freed_growths = 0;
		s->next = pool->free_desc;
		pool->free_desc = s;
		purged += bytes;
	}
	return purged;
}

static _Atomic uint64_t next_sweep_ns;

/* Every pool's old dirty slabs, at most once per PURGE_DELAY_NS; a pool
 * busy in another thread is left to its next free. No lock held. */
static void pages_sweep(uint64_t now)
{
	uint64_t due = atomic_load_explicit(&next_sweep_ns, memory_order_relaxed);
	if (likely(now < due) ||
	    !atomic_compare_exchange_strong_explicit(&next_sweep_ns, &due, now + PURGE_DELAY_NS,
						     memory_order_relaxed, memory_order_relaxed))
		return;
	for (int k = 0; k < SN_NR_POOLS; k++)
		for (int i = 0; i < SN_NR_ORDERS; i++) {
			struct order_pool *pool = &pools[k][i];
			if (pthread_mutex_trylock(&pool->lock.m))
				continue;
			sn_witness_acquire(pool->lock.rank);
			pool_purge_locked(pool, (size_t)1 << (i + SN_MIN_SLAB_SHIFT), now, PURGE_DELAY_NS);
			sn_unlock(&pool->lock);
		}
}

struct slab *pages_alloc_slab(unsigned shift, enum seg_pool kind)
{
	struct order_pool *pool = &pools[kind][shift - SN_MIN_SLAB_SHIFT];
	size_t bytes = (size_t)1 << shift;
	struct slab *s;
	bool fresh = false;
	sn_lock(&pool->lock);
	if ((s = pool->dirty_head)) {
		dirty_unlink(pool, s, bytes);
		s->map_size = 0;
		s->freed_growths = 0;   /* the union's other members start at 0 */
	} else if ((s = pool->free_desc)) {
		pool->free_desc = s->next;
		fresh = true;
	} else {
		fresh = true;
		struct segment *seg = pool->segments;
		if ((!seg || seg->next_fresh == seg->nr_slabs) && !segment_grow(pool, shift, kind)) {
			sn_unlock(&pool->lock);
			errno = ENOMEM;
			return NULL;
		}
		seg = pool->segments;
		uint32_t i = seg->next_fresh++;
		s = &segment_slabs(seg)[i];
		s->base = (char *)((uintptr_t)seg & ~SN_SEG_MASK) + ((size_t)i << shift);
		s->order_idx = (uint8_t)(shift - SN_MIN_SLAB_SHIFT);
	}
	segment_of_slab(s)->nr_used++;
	sn_unlock(&pool->lock);
	s->next = s->prev = NULL;
	if (kind == POOL_USER)
		mem_account((long)bytes);
	if (fresh)
		pages_note_fresh();
	pages_sweep(now_ns());
	return s;
}

/* A slab goes back to its pool dirty; old dirty slabs are purged. The
 * descriptor keeps only its base and order; map_size holds the time. */
void pages_free_slab(struct slab *s)
{
	struct segment *seg = segment_of_slab(s);
	struct order_pool *pool = &pools[seg->pool][seg->slab_shift - SN_MIN_SLAB_SHIFT];
	size_t bytes = (size_t)1 << seg->slab_shift;
	char *base = s->base;
	uint8_t order_idx = s->order_idx;
	memset(s, 0, sizeof(*s));
	s->base = base;
	s->order_idx = order_idx;
	if (seg->pool == POOL_USER)
		mem_account(-(long)bytes);
	uint64_t now = now_ns();
	s->map_size = (size_t)now;
	s->freed_growths = atomic_load_explicit(&fresh_growths, memory_order_relaxed);
	sn_lock(&pool->lock);
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
	sn_unlock(&pool->lock);
	pages_sweep(now);
}

size_t pages_purge_all(void)
{
	size_t purged = 0;
	for (int k = 0; k < SN_NR_POOLS; k++)
		for (int i = 0; i < SN_NR_ORDERS; i++) {
			sn_lock(&pools[k][i].lock);
			purged += pool_purge_locked(&pools[k][i], (size_t)1 << (i + SN_MIN_SLAB_SHIFT), 0, 0);
			sn_unlock(&pools[k][i].lock);
		}
	return purged;
}

bool slab_owns(const void *p)
{
	struct slab *s = slab_of(p);
	if (!s)
		return large_owns(p);
	struct segment *seg = segment_of_slab(s);
	uint32_t slot = (uint32_t)(s - segment_slabs(seg));
	return slot >= seg->first_slab && __atomic_load_n(&s->cache, __ATOMIC_ACQUIRE) != NULL;
}

/* fork: every pool lock is taken, so no child inherits one held. */
void pages_fork_prepare(void)
{
	for (int k = 0; k < SN_NR_POOLS; k++)
		for (int i = 0; i < SN_NR_ORDERS; i++)
			pthread_mutex_lock(&pools[k][i].lock.m);
}

void pages_fork_parent(void)
{
	for (int k = SN_NR_POOLS; k-- > 0;)
		for (int i = SN_NR_ORDERS; i-- > 0;)
			pthread_mutex_unlock(&pools[k][i].lock.m);
}

void pages_fork_child(void)
{
	for (int k = 0; k < SN_NR_POOLS; k++)
		for (int i = 0; i < SN_NR_ORDERS; i++)
			sn_mutex_reinit(&pools[k][i].lock);
}
