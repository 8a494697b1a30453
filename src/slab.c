/*
 * slab.c - caches and the slow paths (SLUB, with thread-owned slabs).
 *
 * The life of a slab
 * ------------------
 *   new (page.c) ----------------------------> OWNED, current
 *   OWNED, current, chain ran dry:  remote frees waiting? take them;
 *                                   else -> OWNED, FULL (owner's full list,
 *                                   ST_FULL in the state word)
 *   OWNED, FULL, the owner frees into it ----> OWNED, partial (owner's list)
 *   OWNED, FULL, remote frees, seen by the owner's scan -> OWNED, current
 *   OWNED, FULL, the last object freed remotely while the owner does not
 *   allocate from the cache ----------------> OWNED, FULL, PURGED: pages
 *                                   given back (see "Purged slabs")
 *   OWNED, PURGED, seen by the owner's scan -> OWNED, current, as new
 *   OWNED, partial -------------------------> OWNED, current (when needed,
 *                                   oldest first: see pick_partial)
 *   OWNED, not current, every object free --> idle (the owner's idle list,
 *                                   within the thread's SN_THREAD_IDLE_MAX
 *                                   bytes), or given up
 *   OWNED, given up (thread exit, shrink, destroy, idle bound, fork
 *   child's reaping) ------------------------> UNOWNED: the cache's partial
 *                                   list, full (no list), or empty (kept up
 *                                   to min_partial, else released)
 *   UNOWNED, on the partial list, taken by an allocating thread -> OWNED
 * A thread's allocation slow path prefers, in order: its current slab's
 * remote frees, its own partial slabs (unless those looked at are thin:
 * pick_partial), its idle slabs, its full slabs that received remote
 * frees or were purged (the oldest SN_FULL_SCAN), the cache's partial
 * list, a new slab.
 *
 * Who may touch what
 * ------------------
 * | data                                          | who                        |
 * |-----------------------------------------------|----------------------------|
 * | cpu->head/base/slab, cpu lists, cpu counters  | the owning thread (counters: readers too, relaxed, under the registry lock) |
 * | an owned slab's head, inuse, next/prev, list, idle | its owner                |
 * | an unowned slab's head, nr_local, next/prev, on_partial, counted_empty; the cache's partial list | the cache lock holder |
 * | slab->state                                   | anyone, by compare-and-swap |
 * | a PURGED slab's pages, while being zapped     | the purger, under the cache lock |
 * | slab->owner_mark (FULL slabs)                 | the remote free that brings the count to half (atomic) |
 * | slab->owner                                   | written by the owner (taking, giving up: under the cache lock); read by anyone |
 * | segment pools                                 | the pool's lock            |
 * A thread that exits, a fork child reaping a vanished thread, and
 * slab_cache_destroy() (whose callers promise no concurrent use) act as
 * the owner of the slots they flush, under the registry lock.
 *
 * Frees
 * -----
 * The owner pushes onto the chain without atomics (fast path). Any other
 * thread pushes onto the slab's remote stack in the state word with one
 * compare-and-swap: for an owned slab that counts it on the stack, for
 * an unowned one it also counts the object free, and a free that takes
 * an unowned full slab to partial, or a listed one to empty, claims
 * PENDING and settles the slab under the cache lock. Only the PENDING
 * claimant may release a slab with PENDING set. The remote free that
 * would make an owned FULL slab wholly free (count + 1 == objects: the
 * owner holds none of its objects, see ST_FULL in internal.h) purges it
 * instead, under the cache lock, when the owner has not allocated from
 * the cache since half the slab came back.
 *
 * Locks
 * -----
 * The order is in lock.h, once. No handler is called with a lock held:
 * slabs to be released (FREEPAGE) are collected under the locks and
 * released after (slabs_release_list).
 */
#include "fastpath.h"
#include "probes.h"
#include "consumers/stack.h"
#include "test_hooks.h"

#include <errno.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

struct slab_cache sn_cache_table[SN_NR_SLOTS];

static struct sn_mutex cache_list_mutex = SN_MUTEX_INIT(SN_RANK_CACHE_LIST);
static struct slab_cache *cache_list;
static uint32_t free_head = UINT32_MAX, free_tail = UINT32_MAX; /* slot FIFO */
static uint32_t next_unused;       /* slots never used, from SN_FIRST_USER_SLOT */
static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static uintptr_t secret_seed;

/* ------------------------------------------------------------------ */
/* Messages                                                           */
/* ------------------------------------------------------------------ */

void sn_fatal(const char *fmt, ...)
{
	char buf[320];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if (n > (int)sizeof(buf) - 2)
		n = (int)sizeof(buf) - 2;
	buf[n++] = '\n';
	/* write(2): no stdio locks or buffers, we may be inside malloc. */
	ssize_t r = write(STDERR_FILENO, buf, (size_t)n);
	(void)r;
	abort();
}

void sn_bad_free(const char *fn, const void *p, const struct slab_cache *c, const char *why)
{
	sn_fatal("slabnotify: %s(): %s: pointer %p (cache %s)", fn, why, p, c ? c->name : "none");
}

void slab_freelist_corrupt(const char *fn, struct slab_cache *c, const void *obj, uintptr_t link)
{
	sn_fatal("slabnotify: %s(): free list corrupted in cache %s: the free object %p holds "
		 "%#lx (a write after free, or an overflow into it)",
		 fn, c->name, obj, (unsigned long)link);
}

void cache_list_lock(void) { sn_lock(&cache_list_mutex); }
void cache_list_unlock(void) { sn_unlock(&cache_list_mutex); }
struct slab_cache *cache_list_first(void) { return cache_list; }

size_t slab_bytes_of(const struct slab_cache *c)
{
	return (size_t)1 << c->slab_shift;
}

/* ------------------------------------------------------------------ */
/* Initialisation and fork                                            */
/* ------------------------------------------------------------------ */

/* Every cache lock, the listed caches' and slabnotify's own (meta). */
static void cache_locks(void (*op)(struct sn_mutex *))
{
	for (struct slab_cache *c = cache_list; c; c = c->next_cache)
		op(&c->lock);
	for (int i = 0; i < SN_NR_META; i++)
		if (atomic_load_explicit(&sn_cache_table[SN_SLOT_META + i].state, memory_order_relaxed) == CACHE_LIVE)
			op(&sn_cache_table[SN_SLOT_META + i].lock);
}

static void raw_lock(struct sn_mutex *l) { pthread_mutex_lock(&l->m); }
static void raw_unlock(struct sn_mutex *l) { pthread_mutex_unlock(&l->m); }

/* In the rank order of lock.h, after the RCU wait: the stack depot,
 * chain, cache list, registry, caches, large table, pools, the debug
 * layer's (the witness does not see these raw calls). */
static void fork_prepare(void)
{
	notify_fork_rcu_prepare();
	sn_stack_fork_prepare();
	notify_fork_prepare();
	pthread_mutex_lock(&cache_list_mutex.m);
	threads_fork_prepare();
	cache_locks(raw_lock);
	large_fork_prepare();
	pages_fork_prepare();
	sn_debug_fork_prepare();
}

static void fork_parent(void)
{
	sn_debug_fork_parent();
	pages_fork_parent();
	large_fork_parent();
	cache_locks(raw_unlock);
	threads_fork_parent();
	pthread_mutex_unlock(&cache_list_mutex.m);
	notify_fork_parent();
	sn_stack_fork_parent();
	notify_fork_rcu_parent();
}

/* The child has one thread: the locks are made anew, and nothing here
 * notifies or takes a lock another thread of the parent could have held,
 * until the RCU child handler, last (it frees: every lock is new by
 * then). The vanished threads' slabs are reaped later, from an ordinary
 * slow path (threads_reap_orphans). */
static void fork_child(void)
{
	sn_debug_fork_child();
	pages_fork_child();
	large_fork_child();
	cache_locks(sn_mutex_reinit);
	sn_mutex_reinit(&cache_list_mutex);
	threads_fork_child();
	notify_fork_child();
	sn_stack_fork_child();
	notify_fork_rcu_child();
}

static void do_init(void)
{
	uintptr_t seed = 0;
	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != sizeof(seed)) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		seed = (uintptr_t)ts.tv_nsec * 0x9e3779b97f4a7c15ULL ^ (uintptr_t)&seed ^ (uintptr_t)getpid();
	}
	secret_seed = seed | 1;
	next_unused = SN_FIRST_USER_SLOT;
	thread_init_once();
	pthread_atfork(fork_prepare, fork_parent, fork_child);
}

void sn_init(void)
{
	pthread_once(&init_once, do_init);
}

static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

/* ------------------------------------------------------------------ */
/* Cache geometry (SLUB's calculate_order)                            */
/* ------------------------------------------------------------------ */

static unsigned fls_u(unsigned long x)
{
	return x ? (unsigned)(64 - __builtin_clzl(x)) : 0;
}

/*
 * Smallest slab shift, from SN_SLAB_SHIFT_FLOOR, whose leftover is at
 * most 1/@fract of the slab. The floor is 64 KiB (mimalloc's small
 * pages), not SLUB's 16 KiB: with a few dozen objects per slab a thread
 * whose frees land all over its slabs (larson-style churn) ran its
 * current slab dry every five allocations; objects are chained a page at
 * a time, so a slab costs only the pages it hands out.
 */
#define SN_SLAB_SHIFT_FLOOR 16

static int calc_slab_shift(size_t size, unsigned min_objects, unsigned max_shift, unsigned fract)
{
	unsigned shift = SN_SLAB_SHIFT_FLOOR;
	while ((1UL << shift) < min_objects * size && shift < max_shift)
		shift++;
	for (; shift <= max_shift; shift++) {
		size_t slab = 1UL << shift;
		if (slab < size)
			continue;
		if (slab % size <= slab / fract)
			return (int)shift;
	}
	return -1;
}

static unsigned calculate_shift(size_t size)
{
	static unsigned nr_cpus;
	if (!nr_cpus) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		nr_cpus = n > 0 ? (unsigned)n : 1;
	}
	const unsigned max_shift = 16;  /* 64 KiB: SLUB's slub_max_order 3 is 32 KiB */
	unsigned min_objects = 4 * (fls_u(nr_cpus) + 1);
	unsigned max_objects = (unsigned)((1UL << max_shift) / size);
	if (min_objects > max_objects)
		min_objects = max_objects ? max_objects : 1;
	for (; min_objects > 1; min_objects--)
		for (unsigned fract = 16; fract >= 4; fract /= 2) {
			int s = calc_slab_shift(size, min_objects, max_shift, fract);
			if (s >= 0)
				return (unsigned)s;
		}
	/* Few objects per slab: the smallest slab that wastes at most a
	 * quarter (a slab's unused tail is never touched: it costs address
	 * space, not memory). */
	int s = calc_slab_shift(size, 1, SN_MAX_SLAB_SHIFT, 4);
	return s >= 0 ? (unsigned)s : SN_MAX_SLAB_SHIFT;
}

/*
 * SLUB's rule bounds a slab's leftover by the slab's size, which lets a
 * full 64 KiB slab of kmalloc-4160 keep 3 KiB of its touched pages unused
 * (4.8 %, more than the class wastes on a 4129-byte request). Pages past
 * the last object are never touched, so what costs memory is the rest of
 * the page the last object ends in. A slab up to 4 times bigger whose
 * touched pages waste at most 1/64 of them is taken instead (kmalloc-4160
 * in 256 KiB: 64 bytes in 63 objects); a bigger slab costs no more while
 * partly used, as objects are chained a chunk at a time.
 */
#define SN_TOUCHED_WASTE_FRACT 64
#define SN_TOUCHED_WASTE_SHIFTS 2

static bool touched_pages_tight(size_t size, unsigned shift)
{
	size_t used = ((1UL << shift) / size) * size;
	size_t touched = (used + SN_PAGE_SIZE - 1) & ~(SN_PAGE_SIZE - 1);
	return (touched - used) * SN_TOUCHED_WASTE_FRACT <= touched;
}

static unsigned slab_shift_for(size_t size)
{
	unsigned shift = calculate_shift(size);
	for (unsigned s = shift; s <= shift + SN_TOUCHED_WASTE_SHIFTS && s <= SN_MAX_SLAB_SHIFT; s++)
		if (touched_pages_tight(size, s))
			return s;
	return shift;
}

static bool flags_valid(slab_flags_t flags)
{
	const slab_flags_t known = SLAB_HWCACHE_ALIGN | SLAB_TYPESAFE_BY_RCU | SLAB_NOTIFY | SLAB_ACCOUNT |
				   SLAB_DEBUG_FLAGS;
	return (flags & ~known) == 0;
}

/* The inverse of odd @d modulo 2^64 (Newton's iteration). */
static uint64_t inverse_odd(uint64_t d)
{
	uint64_t x = d;      /* correct to 3 bits */
	for (int i = 0; i < 5; i++)
		x *= 2 - d * x;
	return x;
}

/* Stride, link-word offset, alignment, slab size, index inverse. */
static int cache_geometry(struct slab_cache *c, size_t size, size_t align, slab_flags_t flags, bool has_ctor)
{
	if (align == 0)
		align = 8;
	if (flags & SLAB_HWCACHE_ALIGN && align < SN_CACHE_LINE)
		align = SN_CACHE_LINE;
	if (align < 8)
		align = 8;
	if (align > SLAB_MAX_OBJECT_SIZE)
		return -EINVAL;
	size_t stride = (size + 7) & ~(size_t)7;
	size_t offset = 0;
	/* The link word must not overwrite what a constructor built or what
	 * an RCU reader may still read: put it after the object. */
	if (has_ctor || (flags & SLAB_TYPESAFE_BY_RCU)) {
		offset = stride;
		stride += sizeof(void *);
	}
	stride = (stride + align - 1) & ~(align - 1);
	if (stride > (1UL << SN_MAX_SLAB_SHIFT))
		return -EINVAL;
	c->object_size = (uint32_t)size;
	c->size = (uint32_t)stride;
	c->offset = (uint32_t)offset;
	c->align = (uint32_t)align;
	c->slab_shift = (uint8_t)slab_shift_for(stride);
	c->objects = (uint32_t)((1UL << c->slab_shift) / stride);
	c->inv_shift = (uint8_t)__builtin_ctzl(stride);
	c->inv = inverse_odd(stride >> c->inv_shift);
	/* SLUB keeps ilog2(size)/2 empty slabs, 5..10; we are leaner. */
	unsigned mp = fls_u(stride) / 2;
	c->min_partial = mp < 2 ? 2 : mp > 5 ? 5 : mp;
	if (c->slab_shift >= 18)
		c->min_partial = 1;
	return 0;
}

/* Objects chained at a time (internal.h): about a page's worth; all of
 * them with a constructor, which runs when the slab is made (the
 * header's promise, SLUB's rule). */
static uint32_t chunk_objects(const struct slab_cache *c)
{
	if (c->ctor)
		return c->objects;
	uint32_t n = SN_CHUNK_BYTES / c->size;
	if (n < SN_CHUNK_MIN)
		n = SN_CHUNK_MIN;
	return n < c->objects ? n : c->objects;
}

/* Objects in one shuffle window (internal.h): SN_SHUFFLE_BYTES of them,
 * at least SN_SHUFFLE_MIN. */
static uint32_t shuffle_window(const struct slab_cache *c)
{
	uint32_t w = SN_SHUFFLE_BYTES / c->size;
	return w < SN_SHUFFLE_MIN ? SN_SHUFFLE_MIN : w;
}

/* Fisher-Yates over seq[0..n). */
static void shuffle(uint16_t *seq, uint32_t n, uint64_t *rng)
{
	for (uint32_t i = n ? n - 1 : 0; i > 0; i--) {
		uint32_t j = (uint32_t)(splitmix64(rng) % (i + 1));
		uint16_t tmp = seq[i];
		seq[i] = seq[j];
		seq[j] = tmp;
	}
}

/* CONFIG_SLAB_FREELIST_RANDOM: a permutation of a chunk's object indices,
 * random within each shuffle window, the windows in address order; each
 * chunk starts it at a random place. Made with the cache's first slab
 * (a cache never used costs nothing). */
static uint16_t *cache_random_seq(struct slab_cache *c)
{
	uint16_t *seq = __atomic_load_n(&c->random_seq, __ATOMIC_ACQUIRE);
	uint32_t n = chunk_objects(c);
	if (seq || n < 2 || n > UINT16_MAX || (c->kind & CACHE_META))
		return seq;
	seq = meta_zalloc(n * sizeof(uint16_t));
	if (!seq)
		return NULL;     /* no memory: address order, still correct */
	uint64_t rng = c->secret ^ 0x5eedULL;
	for (uint32_t i = 0; i < n; i++)
		seq[i] = (uint16_t)i;
	uint32_t w = shuffle_window(c);
	for (uint32_t b = 0; b < n; b += w)
		shuffle(seq + b, n - b < w ? n - b : w, &rng);
	uint16_t *none = NULL;
	if (!__atomic_compare_exchange_n(&c->random_seq, &none, seq, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
		meta_free(seq);
		return none;
	}
	return seq;
}

/* A free slot (cache list lock held): reserved, or the one free longest. */
static struct slab_cache *slot_take(int reserved)
{
	if (reserved >= 0)
		return sn_cache_table[reserved].state == CACHE_FREE ? &sn_cache_table[reserved] : NULL;
	if (free_head != UINT32_MAX) {
		struct slab_cache *c = &sn_cache_table[free_head];
		free_head = c->next_free;
		if (free_head == UINT32_MAX)
			free_tail = UINT32_MAX;
		return c;
	}
	if (next_unused < SLAB_MAX_CACHES)
		return &sn_cache_table[next_unused++];
	return NULL;
}

static void slot_put(struct slab_cache *c)
{
	c->next_free = UINT32_MAX;
	if (free_tail == UINT32_MAX)
		free_head = c->index;
	else
		sn_cache_table[free_tail].next_free = c->index;
	free_tail = c->index;
}

struct slab_cache *cache_create_internal(const char *name, size_t size, size_t align,
					 slab_flags_t flags, void (*ctor)(void *), uint32_t kind, int slot)
{
	sn_init();
	cache_list_lock();
	struct slab_cache *c = slot_take(slot);
	if (!c) {
		cache_list_unlock();
		errno = ENOMEM;
		return NULL;
	}
	uint32_t index = (uint32_t)(c - sn_cache_table);
	uint16_t gen = c->gen;
	/* Zeroed around its state word, which a thread allocating from a
	 * kmalloc class being made reads meanwhile: atomically only. */
	memset(c, 0, offsetof(struct slab_cache, state));
	memset((char *)c + offsetof(struct slab_cache, state) + sizeof(c->state), 0,
	       sizeof(*c) - offsetof(struct slab_cache, state) - sizeof(c->state));
	c->index = index;
	c->cpu_off = (uint32_t)(offsetof(struct slab_thread, cpu) + (size_t)index * sizeof(struct slab_cpu));
	c->gen = gen;
	int err = size && size <= SLAB_MAX_OBJECT_SIZE ? cache_geometry(c, size, align, flags, ctor != NULL) : -EINVAL;
	if (err) {
		if (slot < 0)
			slot_put(c);
		cache_list_unlock();
		errno = -err;
		return NULL;
	}
	if (++c->gen > SN_GEN_MASK)
		c->gen = 1;
	c->handle = (uintptr_t)c | c->gen;
	c->kind = kind;
	c->flags = flags;
	c->ctor = ctor;
	uint64_t s = secret_seed ^ ((uint64_t)index << 32) ^ c->gen;
	c->secret = (uintptr_t)splitmix64(&s) | (1ULL << 63);
	sn_mutex_init(&c->lock, SN_RANK_CACHE);
	snprintf(c->name, sizeof(c->name), "%s", name);
	notify_cache_init(c);
	atomic_store(&c->hooks, ((kind & CACHE_META) ? 0 : notify_initial_hooks(flags)) |
				(c->offset ? HOOK_LINK_AFTER : 0));
	atomic_store(&c->state, CACHE_LIVE);
	/* Append, so that slabinfo lists caches in creation order. */
	struct slab_cache **pp = &cache_list;
	while (*pp)
		pp = &(*pp)->next_cache;
	if (!(kind & CACHE_META))
		*pp = c;
	cache_list_unlock();
	return c;
}

struct slab_cache *slab_cache_create(const char *name, size_t size, size_t align,
				     slab_flags_t flags, void (*ctor)(void *obj))
{
	if (!name || size == 0 || (align & (align - 1)) || !flags_valid(flags) ||
	    size > SLAB_MAX_OBJECT_SIZE) {
		errno = EINVAL;
		return NULL;
	}
	kmalloc_init();     /* the built-in caches first: their slots, their order */
	struct slab_cache *h;
	if (flags & (SLAB_DEBUG_FLAGS & ~SLAB_GUARD))   /* its own layout: src/debug/redzone.c */
		h = sn_debug_cache_create(name, size, align, flags, ctor);
	else if ((flags & SLAB_GUARD) && (ctor || (flags & SLAB_TYPESAFE_BY_RCU)))
		h = sn_fail_null(EINVAL);   /* a guarded object's page is gone at free */
	else {
		struct slab_cache *c = cache_create_internal(name, size, align, flags, ctor, 0, -1);
		h = c ? cache_handle(c) : NULL;
	}
	if (h && (flags & SLAB_GUARD))
		sn_guard_cache_created(cache_of_handle(h));
	return h;
}

const char *slab_cache_name(const struct slab_cache *h)
{
	struct slab_cache *c = cache_of_handle(h);
	return c ? c->name : NULL;
}

/* ------------------------------------------------------------------ */
/* The cache's partial list (cache lock held)                         */
/* ------------------------------------------------------------------ */

static void partial_add(struct slab_cache *c, struct slab *s, bool empty)
{
	s->on_partial = 1;
	if (empty) {     /* empties at the tail: partial slabs are used first */
		s->counted_empty = 1;
		c->nr_empty++;
		s->next = NULL;
		s->prev = c->partial_tail;
		if (c->partial_tail)
			c->partial_tail->next = s;
		else
			c->partial = s;
		c->partial_tail = s;
	} else {
		s->prev = NULL;
		s->next = c->partial;
		if (c->partial)
			c->partial->prev = s;
		else
			c->partial_tail = s;
		c->partial = s;
	}
	c->nr_partial++;
}

static void partial_del(struct slab_cache *c, struct slab *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		c->partial = s->next;
	if (s->next)
		s->next->prev = s->prev;
	else
		c->partial_tail = s->prev;
	s->next = s->prev = NULL;
	s->on_partial = 0;
	c->nr_partial--;
	if (s->counted_empty) {
		s->counted_empty = 0;
		c->nr_empty--;
	}
}

/* ------------------------------------------------------------------ */
/* Slab creation and release                                          */
/* ------------------------------------------------------------------ */

static void slab_release_now(struct slab *s)
{
	pages_free_slab(s);
}

static void slab_release_rcu(struct rcu_head *head)
{
	SN_RCU_CALLBACK_BEGIN();
	struct slab *s = caa_container_of(head, struct slab, rcu);
	struct slab_cache *c = s->cache;
	s->cache = NULL;
	slab_release_now(s);
	atomic_fetch_sub(&c->rcu_pending, 1);
	SN_RCU_CALLBACK_END();
}

/* Give an empty slab back: FREEPAGE, metadata, then the page layer
 * (after a grace period for SLAB_TYPESAFE_BY_RCU). No lock held. */
static void slab_release(struct slab_cache *c, struct slab *s)
{
	sn_witness_assert_unlocked("slab_release");
	if (s->page_stamp)
		notify_freepage(c, s);
	notify_slab_release_meta(s);
	atomic_store_explicit(&s->owner, 0, memory_order_relaxed);
	atomic_fetch_sub_explicit(&c->nr_slabs, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&c->free_slab, 1, memory_order_relaxed);
	if (SN_PROBE_ACTIVE(slab_free))
		SN_PROBE3(slab_free, c->name, s->base, (size_t)1 << c->slab_shift);
	if (c->flags & SLAB_TYPESAFE_BY_RCU) {
		atomic_fetch_add(&c->rcu_pending, 1);
		sn_call_rcu(&s->rcu, slab_release_rcu);
	} else {
		__atomic_store_n(&s->cache, NULL, __ATOMIC_RELEASE);
		slab_release_now(s);
	}
}

void slabs_release_list(struct slab_cache *c, struct slab *list)
{
	while (list) {
		struct slab *next = list->next;
		list->next = NULL;
		slab_release(c, list);
		list = next;
	}
}

static uint64_t thread_rand(struct slab_thread *t)
{
	if (!t->rng)
		t->rng = secret_seed ^ (uintptr_t)t;
	return splitmix64(&t->rng);
}

/*
 * Chain the next chunk of @s's never-chained objects, in the cache's
 * random order from a random start (address order without a sequence),
 * constructing them first. The owner's (or a new slab's maker's) work.
 * Returns the chain's head; 0 when every object was chained before.
 */
static uint32_t slab_extend_chain(struct slab_cache *c, struct slab *s, struct slab_thread *t)
{
	uint32_t from = atomic_load_explicit(&s->fresh, memory_order_relaxed);
	uint32_t e = chunk_objects(c);
	uint32_t m = c->objects - from < e ? c->objects - from : e;   /* this chunk's size */
	if (!m)
		return 0;
	char *base = slab_obj(c, s->base, from);
	if (c->ctor)
		for (uint32_t i = 0; i < m; i++)
			c->ctor(slab_obj(c, base, i));
	const uint16_t *seq = cache_random_seq(c);
	uint32_t first = 0, prev = UINT32_MAX;
	for (uint32_t k = 0, pos = seq ? (uint32_t)(thread_rand(t) % e) : 0; k < e; k++) {
		uint32_t cur = seq ? seq[pos] : k;
		pos = pos + 1 == e ? 0 : pos + 1;
		if (cur >= m)       /* the slab's last, shorter chunk */
			continue;
		if (prev == UINT32_MAX)
			first = cur;
		else
			link_set(c, slab_obj(c, base, prev), from + cur + 1);
		prev = cur;
	}
	link_set(c, slab_obj(c, base, prev), 0);
	/* Released: a thread that is handed one of these objects and frees it
	 * sees them chained (the fast free refuses indices at or above). */
	atomic_store_explicit(&s->fresh, from + m, memory_order_release);
	return from + first + 1;
}

/* A new slab owned by @t, its chain in *head. NULL on failure, with
 * errno from the OS or from a NEWPAGE veto (then *vetoed is set). */
static struct slab *slab_new(struct slab_cache *c, struct slab_thread *t, uint32_t *head, slab_gfp_t gfp,
			     bool *vetoed)
{
	struct slab *s = pages_alloc_slab(c->slab_shift, (c->kind & CACHE_META) ? POOL_META : POOL_USER);
	if (!s)
		return NULL;
	atomic_store_explicit(&s->fresh, 0, memory_order_relaxed);
	s->head = 0;
	s->inuse = 0;
	s->nr_local = 0;
	s->list = SLAB_LIST_NONE;
	s->idle = 0;
	atomic_store_explicit(&s->state, ST_OWNED, memory_order_relaxed);
	atomic_store_explicit(&s->owner, (uintptr_t)t, memory_order_relaxed);
	/* A debug cache's records must not be believed from another life of
	 * the memory (src/debug/redzone.c). */
	if (unlikely(atomic_load_explicit(&c->hooks, memory_order_relaxed) & HOOK_DEBUG))
		memset(s->base, 0, (size_t)c->objects * c->size);
	*head = slab_extend_chain(c, s, t);
	/* Publish the owner cache last: slab_of() users see a complete slab. */
	__atomic_store_n(&s->cache, c, __ATOMIC_RELEASE);
	atomic_fetch_add_explicit(&c->nr_slabs, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&c->alloc_slab, 1, memory_order_relaxed);
	if (SN_PROBE_ACTIVE(slab_alloc))
		SN_PROBE3(slab_alloc, c->name, s->base, (size_t)1 << c->slab_shift);
	if (unlikely(atomic_load_explicit(&c->hooks, memory_order_relaxed) & HOOK_ALLOC)) {
		int err = notify_newpage(c, s, gfp);
		if (err) {  /* vetoed: back to the page layer, no further event */
			notify_slab_release_meta(s);
			__atomic_store_n(&s->cache, NULL, __ATOMIC_RELEASE);
			atomic_store_explicit(&s->owner, 0, memory_order_relaxed);
			atomic_fetch_sub_explicit(&c->nr_slabs, 1, memory_order_relaxed);
			atomic_fetch_sub_explicit(&c->alloc_slab, 1, memory_order_relaxed);
			pages_free_slab(s);
			errno = -err;
			*vetoed = true;
			return NULL;
		}
	}
	return s;
}

/* ------------------------------------------------------------------ */
/* Unowned slabs (cache lock held)                                    */
/* ------------------------------------------------------------------ */

enum settle_action { SETTLE_NONE, SETTLE_LIST, SETTLE_DISCARD };

/*
 * Put an unowned slab where its state says it belongs: on the partial
 * list if it has free objects, off it if full, released if empty and
 * enough empties are kept. @claimant: the caller set PENDING and clears
 * it. Returns the slab to release after unlocking, or NULL.
 */
static struct slab *slab_settle_locked(struct slab_cache *c, struct slab *s, bool claimant)
{
	uint64_t w = atomic_load_explicit(&s->state, memory_order_acquire), nw;
	enum settle_action act;
	do {
		bool pending_other = !claimant && (w & ST_PENDING);
		nw = claimant ? (w & ~ST_PENDING) : w;
		if (w & ST_OWNED) {
			act = SETTLE_NONE;
		} else if (st_count(w) == 0 && !pending_other && c->nr_empty + !s->counted_empty > c->min_partial) {
			act = SETTLE_DISCARD;
			nw = 0;
		} else if (st_head(w) || s->nr_local) {
			act = SETTLE_LIST;
			nw |= ST_LISTED;
		} else {
			act = SETTLE_NONE;
			nw &= ~ST_LISTED;
		}
	} while (!atomic_compare_exchange_weak_explicit(&s->state, &w, nw, memory_order_acq_rel,
							 memory_order_acquire));
	bool empty = !(w & ST_OWNED) && st_count(w) == 0;
	switch (act) {
	case SETTLE_DISCARD:
		if (s->on_partial)
			partial_del(c, s);
		return s;
	case SETTLE_LIST:
		if (!s->on_partial) {
			partial_add(c, s, empty);
		} else if (empty && !s->counted_empty) {
			s->counted_empty = 1;
			c->nr_empty++;
		}
		return NULL;
	default:
		if (!(w & ST_OWNED) && s->on_partial)
			partial_del(c, s);
		return NULL;
	}
}

/* Take an unowned slab for @t. Its free objects become @t's: the
 * lock-side chain, or, when that is empty, the remote stack. */
static uint32_t slab_take_locked(struct slab_cache *c, struct slab *s, struct slab_thread *t)
{
	uint64_t w = atomic_load_explicit(&s->state, memory_order_acquire), nw;
	uint32_t head, inuse;
	do {
		uint32_t in_use = st_count(w);
		if (s->nr_local) {
			nw = st_make(st_head(w), c->objects - in_use - s->nr_local, ST_OWNED | (w & ST_PENDING));
			head = s->head;
			inuse = c->objects - s->nr_local;
		} else {
			nw = st_make(0, 0, ST_OWNED | (w & ST_PENDING));
			head = st_head(w);
			inuse = in_use;
		}
	} while (!atomic_compare_exchange_weak_explicit(&s->state, &w, nw, memory_order_acq_rel,
							 memory_order_acquire));
	s->head = 0;
	s->nr_local = 0;
	s->inuse = inuse;
	s->list = SLAB_LIST_NONE;
	s->idle = 0;
	atomic_store_explicit(&s->owner, (uintptr_t)t, memory_order_relaxed);
	return head;
}

/*
 * Purged slabs
 * ------------
 * Only an owner takes its remote frees back, so a thread that filled
 * slabs and stopped allocating (larson's main thread) kept every page of
 * them while others freed their objects. The invariant that lets anyone
 * else know such a slab is wholly free:
 *   while an owned slab has ST_FULL, its owner holds none of its free
 *   objects (no chain: it was retired with an empty one) and all of them
 *   were chained (fresh == objects); so each object is in use or on the
 *   remote stack, and the remote count reaches the object count exactly
 *   when every object is free.
 * ST_FULL is set by the CAS that finds the stack empty when the owner
 * retires its current slab (retire_full), and cleared by the CAS that
 * takes the stack (scan_full) or by the owner's own free into the slab,
 * before it pushes (that free holds an object in use, so no remote free
 * can complete the slab meanwhile).
 * The remote free that would complete it takes the cache lock, takes the
 * stack (head and count 0, ST_PURGED) and gives the pages back, all
 * under the lock, when the owner is idle: its count of allocation slow
 * paths in the cache is what it was when half the slab had come back
 * (slab_mark_owner); a busy owner takes the slab back soon and would only
 * fault its pages in again. The owner's scan waits on the lock for the
 * zap, then makes the slab anew as slab_new does (nothing chained,
 * chunks chained as needed); giving it up makes it an unowned empty slab
 * with nothing chained. Thread exit, shrink, destroy and fork take the
 * same lock, so none meets a zap half done.
 * Double frees: every object of a purged slab is free. Its link words
 * are zero, which the fast path takes for live, but the free reaches a
 * slow path (FULL: not the owner's fast case; another thread: the
 * stack's CAS), which sees ST_PURGED and aborts. Once the owner made the
 * slab anew (fresh 0 first), a free is checked as in a new slab; as for
 * any object, a double free that races with the reuse is not caught.
 * Not purged: caches whose free objects keep contents (a constructor's
 * state, an RCU reader's view: HOOK_LINK_AFTER), debug caches (poison,
 * records), slabnotify's own (freed under other locks), one-object slabs.
 */
static bool slab_purgeable(const struct slab_cache *c)
{
	return !(atomic_load_explicit(&c->hooks, memory_order_relaxed) & (HOOK_LINK_AFTER | HOOK_DEBUG)) &&
	       !(c->kind & CACHE_META) && c->objects >= 2;
}

void (*sn_test_hook_slab_zapped)(void *base);

/* The objects' pages, given back. */
static void slab_zap(struct slab_cache *c, struct slab *s)
{
	size_t used = ((size_t)c->objects * c->size + SN_PAGE_SIZE - 1) & ~(SN_PAGE_SIZE - 1);
	os_decommit(s->base, used);
	if (unlikely(sn_test_hook_slab_zapped != NULL))
		sn_test_hook_slab_zapped(s->base);
}

/* A purged slab starts again with nothing chained (its owner, or the
 * cache lock holder giving it up). */
static void slab_unchain_purged(struct slab_cache *c, struct slab *s)
{
	atomic_store_explicit(&s->fresh, 0, memory_order_relaxed);
	s->head = 0;
	s->inuse = 0;
	s->nr_local = c->objects;
}

/* The owner's count of allocation slow paths in @c. Its structure is
 * never unmapped (thread.c keeps exited ones for reuse): a stale owner
 * reads as some count, which only affects the idleness guess. */
static unsigned long owner_alloc_slow(const struct slab_cache *c, const struct slab *s)
{
	uintptr_t o = atomic_load_explicit(&s->owner, memory_order_relaxed) & ~SLAB_OWNER_FULL;
	return o ? __atomic_load_n(&cpu_of((struct slab_thread *)o, c)->alloc_slow, __ATOMIC_RELAXED) : 0;
}

/* Half the FULL slab's objects came back remotely: note how busy its
 * owner is, to tell at the last free whether it allocated since. */
static SN_NOINLINE void slab_mark_owner(struct slab_cache *c, struct slab *s)
{
	__atomic_store_n(&s->owner_mark, owner_alloc_slow(c, s), __ATOMIC_RELAXED);
}

/*
 * The free of @idx would make the FULL slab @s wholly free: purge it if
 * its owner made no allocation slow path in the cache since half the
 * slab came back (an owner that allocates takes the slab back soon, and
 * would only fault its pages in again: prodcons' producer). False when
 * not purged (the caller pushes as usual).
 */
static SN_NOINLINE bool slab_purge(const char *fn, struct slab_cache *c, struct slab *s, uint32_t idx)
{
	bool done = false;
	sn_lock(&c->lock);
	uint64_t w = atomic_load_explicit(&s->state, memory_order_acquire);
	/* Idle? A guess, read before the state is checked (harmless: see
	 * owner_alloc_slow); the state decides whether the slab is free. */
	if (owner_alloc_slow(c, s) != __atomic_load_n(&s->owner_mark, __ATOMIC_RELAXED))
		w = 0;
	while ((w & (ST_OWNED | ST_FULL | ST_PURGED)) == (ST_OWNED | ST_FULL) && st_count(w) + 1 == c->objects) {
		if (unlikely(st_head(w) == idx + 1))
			sn_bad_free(fn, slab_obj(c, s->base, idx), c, "double free");
		uint64_t nw = (w & ST_FLAGS_MASK) | ST_PURGED;
		if (atomic_compare_exchange_weak_explicit(&s->state, &w, nw, memory_order_acq_rel,
							  memory_order_acquire)) {
			slab_zap(c, s);
			done = true;
			break;
		}
	}
	sn_unlock(&c->lock);
	return done;
}

/* The owner takes back a purged slab of its full list: its first chunk. */
static uint32_t take_purged(struct slab_cache *c, struct slab *s, struct slab_thread *t)
{
	sn_lock(&c->lock);      /* the purger zaps under it: wait until it is done */
	sn_unlock(&c->lock);
	/* fresh 0 before PURGED goes: a late double free is refused as one
	 * into a new slab. */
	slab_unchain_purged(c, s);
	s->nr_local = 0;
	atomic_fetch_and_explicit(&s->state, ~(ST_FULL | ST_PURGED), memory_order_acq_rel);
	return slab_extend_chain(c, s, t);
}

/*
 * The owner gives @s up (it is on none of its lists, not current): its
 * chain becomes the lock-side chain, its state counts the objects in
 * use. Returns the slab to release, or NULL. Takes the cache lock.
 */
static struct slab *slab_give_up(struct slab_cache *c, struct slab *s)
{
	sn_lock(&c->lock);
	s->nr_local = c->objects - s->inuse;
	uint64_t w = atomic_load_explicit(&s->state, memory_order_acquire), nw;
	if (w & ST_PURGED)      /* settled under this lock: it cannot change now */
		slab_unchain_purged(c, s);
	do {
		uint32_t in_use = (w & ST_PURGED) ? 0 : s->inuse - st_count(w);
		nw = st_make(st_head(w), in_use, w & ST_PENDING);
	} while (!atomic_compare_exchange_weak_explicit(&s->state, &w, nw, memory_order_acq_rel,
							 memory_order_acquire));
	atomic_store_explicit(&s->owner, 0, memory_order_relaxed);
	s->list = SLAB_LIST_NONE;
	struct slab *dead = slab_settle_locked(c, s, false);
	sn_unlock(&c->lock);
	return dead;
}

/* ------------------------------------------------------------------ */
/* The owner's lists                                                  */
/* ------------------------------------------------------------------ */

/* The owner's three lists: the head (and tail) pointers of @s's. */
static struct slab **own_list_head(struct slab_cpu *cpu, const struct slab *s, struct slab ***tailp)
{
	switch (s->list) {
	case SLAB_LIST_FULL:
		*tailp = &cpu->full_tail;
		return &cpu->full;
	case SLAB_LIST_PARTIAL:
		*tailp = &cpu->partial_tail;
		return &cpu->partial;
	default:   /* SLAB_LIST_IDLE: a stack, no tail */
		*tailp = NULL;
		return &cpu->idle;
	}
}

static void own_unlink(struct slab_cpu *cpu, struct slab *s)
{
	struct slab **tailp;
	struct slab **headp = own_list_head(cpu, s, &tailp);
	if (s->prev)
		s->prev->next = s->next;
	else
		*headp = s->next;
	if (s->next)
		s->next->prev = s->prev;
	else if (tailp)
		*tailp = s->prev;
	if (s->list == SLAB_LIST_FULL)
		cpu->nr_full--;
	s->next = s->prev = NULL;
	s->list = SLAB_LIST_NONE;
}

/* Append @s to the owner's list @list (partial or full: both are first
 * in, first out). */
static void own_append(struct slab_cpu *cpu, struct slab *s, enum slab_list list)
{
	s->list = (uint8_t)list;
	struct slab **tailp;
	struct slab **headp = own_list_head(cpu, s, &tailp);
	s->next = NULL;
	s->prev = *tailp;
	if (*tailp)
		(*tailp)->next = s;
	else
		*headp = s;
	*tailp = s;
}

/*
 * The partial list is first in, first out: a slab goes to its tail when
 * it gets a free object back and is taken from its head, so that the
 * slab taken has had the longest time to gather frees. Taking the
 * newest instead (a stack) hands a program whose live set is spread
 * over its slabs the slab that just got its first object back, one
 * object per slow path (alloc_bench's churn pattern).
 */
static void own_partial_add(struct slab_cpu *cpu, struct slab *s)
{
	own_append(cpu, s, SLAB_LIST_PARTIAL);
}

/* Idle slabs: last used first (its pages are the likeliest resident). */
static void own_idle_add(struct slab_cpu *cpu, struct slab *s)
{
	s->list = SLAB_LIST_IDLE;
	s->prev = NULL;
	s->next = cpu->idle;
	if (cpu->idle)
		cpu->idle->prev = s;
	cpu->idle = s;
}

static void own_full_add(struct slab_cpu *cpu, struct slab *s)
{
	own_append(cpu, s, SLAB_LIST_FULL);
	cpu->nr_full++;
}

static void idle_clear(struct slab_cache *c, struct slab_thread *t, struct slab *s)
{
	if (s->idle) {
		s->idle = 0;
		atomic_fetch_sub_explicit(&t->idle_bytes, slab_bytes_of(c), memory_order_relaxed);
		atomic_fetch_sub_explicit(&c->nr_idle, 1, memory_order_relaxed);
	}
}

/* The current slab ran dry: mark it FULL in the CAS that finds its
 * remote stack empty, so that the remote count alone says when it is
 * wholly free; or take the frees that came meanwhile. */
static uint32_t retire_full(struct slab *s)
{
	uint64_t w = atomic_load_explicit(&s->state, memory_order_acquire), nw;
	do
		nw = st_head(w) ? w & (ST_OWNED | ST_PENDING) : w | ST_FULL;
	while (!atomic_compare_exchange_weak_explicit(&s->state, &w, nw, memory_order_acq_rel,
						       memory_order_acquire));
	return st_head(w);
}

/* Take the remote stack of an owned slab: its head, count in *n. A
 * failed exchange looks again: the free that made the slab wholly free
 * may have purged it meanwhile (its stack taken, ST_PURGED set), and
 * that state must stay for the next scan to see (take_purged). */
static uint32_t take_remote(struct slab *s, uint32_t *n)
{
	uint64_t w = atomic_load_explicit(&s->state, memory_order_acquire);
	*n = 0;
	do {
		if (!st_head(w))
			return 0;
	} while (!atomic_compare_exchange_weak_explicit(&s->state, &w, w & (ST_OWNED | ST_PENDING),
							 memory_order_acq_rel, memory_order_acquire));
	*n = st_count(w);
	return st_head(w);
}

static void make_current(struct slab_cache *c, struct slab_thread *t, struct slab_cpu *cpu, struct slab *s,
			 uint32_t head)
{
	idle_clear(c, t, s);
	atomic_store_explicit(&s->owner, (uintptr_t)t, memory_order_relaxed);
	cpu->slab = s;
	cpu->base_m1 = s->base - c->size;
	cpu->head = head;
	s->head = 0;
}

/* Objects on a chain (walked with the corruption check). */
static uint32_t chain_length(const char *fn, struct slab_cache *c, const char *base, uint32_t head)
{
	uint32_t n = 0;
	for (uint32_t v = head; v; n++) {
		if (n >= c->objects)
			sn_fatal("slabnotify: %s(): free list of cache %s loops", fn, c->name);
		void *obj = slab_obj(c, base, v - 1);
		uintptr_t next = link_get(c, obj);
		if (next > c->objects)
			slab_freelist_corrupt(fn, c, obj, next);
		v = (uint32_t)next;
	}
	return n;
}

/* The current slab stops being current: its chain goes back to the
 * descriptor, with the count of objects outside it. */
static struct slab *current_detach(const char *fn, struct slab_cache *c, struct slab_cpu *cpu)
{
	struct slab *s = cpu->slab;
	s->head = cpu->head;
	s->inuse = atomic_load_explicit(&s->fresh, memory_order_relaxed) - chain_length(fn, c, s->base, cpu->head);
	cpu->slab = NULL;
	cpu->base_m1 = NULL;
	cpu->head = 0;
	return s;
}

/*
 * Give up every slab of @cpu (current, partial, full) to the cache; the
 * slabs to release go on *release (by ->next). The caller acts as the
 * slot's owner: its thread, an exiting thread, a reaper, a destroyer.
 */
void cpu_release_all(struct slab_cache *c, struct slab_thread *t, struct slab_cpu *cpu, struct slab **release)
{
	if (cpu->slab) {
		struct slab *s = current_detach("slab_cache_shrink", c, cpu);
		own_partial_add(cpu, s);
	}
	struct slab *lists[3] = { cpu->partial, cpu->idle, cpu->full };
	cpu->partial = cpu->partial_tail = cpu->idle = cpu->full = cpu->full_tail = NULL;
	cpu->nr_full = 0;
	cpu->nr_slack = 0;
	for (int i = 0; i < 3; i++) {
		struct slab *s = lists[i];
		while (s) {
			struct slab *next = s->next;
			s->next = s->prev = NULL;
			idle_clear(c, t, s);
			struct slab *dead = slab_give_up(c, s);
			if (dead) {
				dead->next = *release;
				*release = dead;
			}
			s = next;
		}
	}
}

/* Give back @t's idle slabs of @c (slab_cache_shrink, memory pressure). */
static void cpu_trim_idle(struct slab_cache *c, struct slab_thread *t, struct slab_cpu *cpu)
{
	struct slab *release = NULL;
	struct slab *s;
	while ((s = cpu->idle)) {
		own_unlink(cpu, s);
		idle_clear(c, t, s);
		struct slab *dead = slab_give_up(c, s);
		if (dead) {
			dead->next = release;
			release = dead;
		}
	}
	cpu->shrink_seq = atomic_load_explicit(&c->shrink_seq, memory_order_relaxed);
	slabs_release_list(c, release);
}

/* ------------------------------------------------------------------ */
/* The allocation slow path                                           */
/* ------------------------------------------------------------------ */

/* A full slab that has received remote frees, among the oldest few. */
static struct slab *scan_full(struct slab_cache *c, struct slab_thread *t, struct slab_cpu *cpu, uint32_t *head)
{
	for (int i = 0; i < SN_FULL_SCAN && cpu->full; i++) {
		struct slab *s = cpu->full;
		uint32_t n;
		own_unlink(cpu, s);
		if (atomic_load_explicit(&s->state, memory_order_acquire) & ST_PURGED) {
			*head = take_purged(c, s, t);
			return s;
		}
		uint32_t h = take_remote(s, &n);
		if (h) {
			s->inuse -= n;
			*head = h;
			return s;
		}
		own_full_add(cpu, s);   /* rotate: look at the next one */
	}
	return NULL;
}

static bool take_cache_partial(struct slab_cache *c, struct slab_thread *t, struct slab_cpu *cpu)
{
	sn_lock(&c->lock);
	struct slab *s;
	while ((s = c->partial)) {
		partial_del(c, s);
		uint32_t head = slab_take_locked(c, s, t);
		if (head || atomic_load_explicit(&s->fresh, memory_order_relaxed) < c->objects ||
		    (head = retire_full(s))) {
			sn_unlock(&c->lock);
			make_current(c, t, cpu, s, head);
			return true;
		}
		/* Listed with nothing free cannot happen: keep it as full. */
		atomic_store_explicit(&s->owner, (uintptr_t)t | SLAB_OWNER_FULL, memory_order_relaxed);
		own_full_add(cpu, s);
	}
	sn_unlock(&c->lock);
	return false;
}

/*
 * The partial slab to allocate from next: the head of the list (the
 * oldest), or among the first SN_PARTIAL_PEEK the one with the most free
 * objects (on its chain, never chained, or waiting on its remote stack).
 * When even that one is thin (fewer than 1/SN_SLACK_FRACT of its objects
 * free, or fewer than two), the program frees and allocates around a
 * live set that fills its slabs, and every slab it takes would give it
 * an object or two, each costing a slow path on both sides (and the free
 * into a full slab an atomic): then the slab is left in *thin and NULL
 * returned, so that the caller takes a new slab first, and the thin one
 * only if none can be had. Such slack slabs are bounded: a thread and
 * cache take at most SN_SLACK_MAX, plus one per SN_SLACK_FRACT of its
 * full slabs, until one of its slabs empties (cpu->nr_slack). Left out:
 * caches of fewer than 8 objects a slab (a slab of slack would be too
 * much of their footprint). In a notified cache a slack slab is
 * announced (NEWPAGE) like any other, and a handler's veto of it fails
 * the allocation that asked for it, as the veto rule in slabnotify.h
 * says, though the thin slab could have served it: a page was asked for
 * and refused (the fuzzing regression newpage-veto-of-slack-slab). Only
 * a failure of the OS's sends the allocation to the thin slab.
 */
#define SN_PARTIAL_PEEK 4
#define SN_SLACK_FRACT  16
#define SN_SLACK_MAX    2
static uint32_t partial_free(const struct slab_cache *c, struct slab *s)
{
	uint64_t w = atomic_load_explicit(&s->state, memory_order_relaxed);
	return c->objects - s->inuse + st_count(w);
}

static struct slab *pick_partial(struct slab_cache *c, struct slab_cpu *cpu, struct slab **thin)
{
	struct slab *best = cpu->partial;
	if (!best)
		return NULL;
	uint32_t want = c->objects / SN_SLACK_FRACT;
	if (want < 2)
		want = 2;
	uint32_t best_free = partial_free(c, best);
	struct slab *x = best->next;
	for (int i = 1; i < SN_PARTIAL_PEEK && x && best_free < want; i++, x = x->next) {
		uint32_t n = partial_free(c, x);
		if (n > best_free) {
			best = x;
			best_free = n;
		}
	}
	if (best_free >= want || c->objects < 8 || cpu->nr_slack >= SN_SLACK_MAX + cpu->nr_full / SN_SLACK_FRACT)
		return best;
	*thin = best;
	return NULL;
}

/* Give the thread a chain to allocate from. False, with errno, when
 * no memory can be had. */
static bool cpu_refill(const char *fn, struct slab_cache *c, struct slab_thread *t, struct slab_cpu *cpu,
		       slab_gfp_t gfp)
{
	struct slab *s = cpu->slab;
	uint32_t head, n;
	if (s) {
		if ((head = take_remote(s, &n)) || (head = slab_extend_chain(c, s, t)) || (head = retire_full(s))) {
			cpu->head = head;
			return true;
		}
		/* Dry: retire it to the full list. */
		current_detach(fn, c, cpu);
		atomic_store_explicit(&s->owner, (uintptr_t)t | SLAB_OWNER_FULL, memory_order_relaxed);
		own_full_add(cpu, s);
	}
	struct slab *thin = NULL;
	if ((s = pick_partial(c, cpu, &thin)) || (s = cpu->idle)) {
		own_unlink(cpu, s);
		make_current(c, t, cpu, s, s->head);
		return true;
	}
	if ((s = scan_full(c, t, cpu, &head))) {
		make_current(c, t, cpu, s, head);
		return true;
	}
	if (take_cache_partial(c, t, cpu))
		return true;
	int saved_errno = errno;
	bool vetoed = false;
	s = slab_new(c, t, &head, gfp, &vetoed);
	if (!s && thin && !vetoed) {
		/* The OS had no new slab: the thin one after all. */
		errno = saved_errno;
		own_unlink(cpu, thin);
		make_current(c, t, cpu, thin, thin->head);
		return true;
	}
	if (!s)
		return false;
	if (thin)
		cpu->nr_slack++;
	if (cpu->slab) {
		/* A NEWPAGE handler allocated from this cache meanwhile and
		 * installed a slab: keep the new one as a partial slab. */
		s->head = head;
		s->inuse = 0;
		own_partial_add(cpu, s);
	} else {
		make_current(c, t, cpu, s, head);
	}
	return true;
}

void *slab_alloc_slow(const char *fn, struct slab_cache *c, slab_gfp_t gfp, size_t req)
{
	struct slab_thread *t = thread_get();
	if (unlikely(!t)) {
		errno = ENOMEM;
		return NULL;
	}
	if (unlikely(atomic_load_explicit(&sn_orphans, memory_order_relaxed)))
		threads_reap_orphans();
	/* Acquire: a class made by another thread is seen whole. */
	if (unlikely(atomic_load_explicit(&c->state, memory_order_acquire) != CACHE_LIVE) &&
	    !kmalloc_cache_made(c)) {
		errno = EINVAL;
		return NULL;
	}
	thread_touch(t, c->index);
	struct slab_cpu *cpu = cpu_of(t, c);
	if (unlikely(cpu->shrink_seq != atomic_load_explicit(&c->shrink_seq, memory_order_relaxed)))
		cpu_trim_idle(c, t, cpu);
	while (!cpu->head)
		if (!cpu_refill(fn, c, t, cpu, gfp))
			return NULL;
	uint32_t h = cpu->head;
	void *obj = cpu->base_m1 + (size_t)h * c->size;
	uintptr_t next = link_get(c, obj);
	if (unlikely(next > c->objects))
		slab_freelist_corrupt(fn, c, obj, next);
	cpu->head = (uint32_t)next;
	*link_word(c, obj) = 0;
	STAT_INC(cpu->alloc_slow);
	if (unlikely((atomic_load_explicit(&c->hooks, memory_order_relaxed) & HOOK_ALLOC_OUT) | gfp))
		return alloc_post_hook(fn, c, h - 1, gfp, req);
	return obj;
}

/* ------------------------------------------------------------------ */
/* Frees that leave the fast path                                     */
/* ------------------------------------------------------------------ */

/* A remote free claimed the unowned slab: put it where it belongs. */
static SN_NOINLINE void slab_settle_claimed(struct slab_cache *c, struct slab *s)
{
	sn_lock(&c->lock);
	struct slab *dead = slab_settle_locked(c, s, true);
	sn_unlock(&c->lock);
	if (dead)
		slab_release(c, dead);
}

static SN_NOINLINE void remote_double_free(const char *fn, struct slab_cache *c, const void *obj)
{
	sn_bad_free(fn, obj, c, "double free");
}

static void slab_push_unowned(const char *fn, struct slab_cache *c, struct slab *s, void *obj, uint32_t idx);
static void slab_push_last(const char *fn, struct slab_cache *c, struct slab *s, void *obj, uint32_t idx);

/* Push onto the slab's remote stack. An owned slab's (the common case)
 * is a leaf with one compare-and-swap: head and count change, the flags
 * stay; every other way out is a tail call (no stack frame here): the
 * free that would make a FULL slab wholly free (@may_purge: it may purge
 * it), the one that brings it to half (its owner's mark), an unowned
 * slab's free (it may settle the slab). */
static SN_ALWAYS_INLINE void slab_push_remote(const char *fn, struct slab_cache *c, struct slab *s, void *obj,
					     uint32_t idx, bool may_purge)
{
	uint64_t w = atomic_load_explicit(&s->state, memory_order_relaxed);
	while (likely(w & ST_OWNED)) {
		if (unlikely(st_head(w) == idx + 1 || (w & ST_PURGED))) {
			remote_double_free(fn, c, obj);
			return;
		}
		if (may_purge && unlikely((w & ST_FULL) && st_count(w) + 1 == c->objects)) {
			slab_push_last(fn, c, s, obj, idx);
			return;
		}
		link_set(c, obj, st_head(w));
		uint64_t nw = ((w & ~ST_FIELD_MASK) + (1ULL << ST_COUNT_SHIFT)) | (idx + 1);
		if (atomic_compare_exchange_weak_explicit(&s->state, &w, nw, memory_order_acq_rel,
							  memory_order_relaxed)) {
			if (unlikely((nw & ST_FULL) && st_count(nw) == c->objects / 2))
				slab_mark_owner(c, s);
			return;
		}
	}
	slab_push_unowned(fn, c, s, obj, idx);
}

/* The free that would make a FULL slab wholly free: purge it, or push
 * as any other (the owner is busy, or the state moved meanwhile). */
static SN_NOINLINE void slab_push_last(const char *fn, struct slab_cache *c, struct slab *s, void *obj,
				       uint32_t idx)
{
	if (slab_purgeable(c) && slab_purge(fn, c, s, idx))
		return;
	slab_push_remote(fn, c, s, obj, idx, false);
}

/* The same for an unowned slab: the count is of objects in use; a free
 * that takes it to partial or empty claims it (PENDING) and settles it. */
static SN_NOINLINE void slab_push_unowned(const char *fn, struct slab_cache *c, struct slab *s, void *obj,
					  uint32_t idx)
{
	uint64_t w = atomic_load_explicit(&s->state, memory_order_relaxed), nw;
	bool claim;
	do {
		claim = false;
		if (unlikely(st_head(w) == idx + 1))
			sn_bad_free(fn, obj, c, "double free");
		if (w & ST_OWNED) {     /* taken meanwhile: an owned slab's push */
			slab_push_remote(fn, c, s, obj, idx, true);
			return;
		}
		link_set(c, obj, st_head(w));
		uint64_t flags = w & (ST_LISTED | ST_PENDING);
		if (unlikely(st_count(w) == 0))
			sn_bad_free(fn, obj, c, "double free or free of an object never allocated");
		uint32_t in_use = st_count(w) - 1;
		if ((!(w & ST_LISTED) || in_use == 0) && !(w & ST_PENDING)) {
			flags |= ST_PENDING;
			claim = true;
		}
		nw = st_make(idx + 1, in_use, flags);
	} while (!atomic_compare_exchange_weak_explicit(&s->state, &w, nw, memory_order_acq_rel,
							 memory_order_relaxed));
	if (claim)
		slab_settle_claimed(c, s);
}

/* An owned slab, not current, has every object back on its chain. */
void slab_became_empty(struct slab_cache *c, struct slab *s)
{
	struct slab_thread *t = sn_tls_thread;
	struct slab_cpu *cpu = cpu_of(t, c);
	size_t bytes = slab_bytes_of(c);
	own_unlink(cpu, s);
	cpu->nr_slack = 0;   /* a slab came back whole: slack is there again */
	if (atomic_load_explicit(&t->idle_bytes, memory_order_relaxed) + bytes <= SN_THREAD_IDLE_MAX) {
		s->idle = 1;
		atomic_fetch_add_explicit(&t->idle_bytes, bytes, memory_order_relaxed);
		atomic_fetch_add_explicit(&c->nr_idle, 1, memory_order_relaxed);
		own_idle_add(cpu, s);
		return;
	}
	struct slab *dead = slab_give_up(c, s);
	if (dead)
		slab_release(c, dead);
}

static void slab_free_slow_other(const char *fn, struct slab_cache *c, struct slab *s, void *obj, uint32_t idx,
				 struct slab_thread *t, uintptr_t owner);

/* Frees the fast path did not take. Another thread's slab first: the
 * common case, a leaf down to its compare-and-swap. */
void slab_free_slow(const char *fn, struct slab_cache *c, struct slab *s, void *obj, uint32_t idx)
{
	struct slab_thread *t = sn_tls_thread;
	uintptr_t owner = atomic_load_explicit(&s->owner, memory_order_relaxed);
	if (likely(owner && t != &sn_thread_dummy && (owner & ~SLAB_OWNER_FULL) != (uintptr_t)t)) {
		struct slab_cpu *cpu = cpu_of(t, c);
		thread_touch(t, c->index);
		STAT_INC(cpu->free_slow);      /* every slow free; of them, remote ones: */
		STAT_INC(cpu->free_remote);
		slab_push_remote(fn, c, s, obj, idx, true);
		return;
	}
	slab_free_slow_other(fn, c, s, obj, idx, t, owner);
}

/* Our own full slab, an unowned one, or no thread structure yet. */
static SN_NOINLINE void slab_free_slow_other(const char *fn, struct slab_cache *c, struct slab *s, void *obj,
					     uint32_t idx, struct slab_thread *t, uintptr_t owner)
{
	if (t == &sn_thread_dummy)
		t = thread_get();
	if (t) {
		struct slab_cpu *cpu = cpu_of(t, c);
		thread_touch(t, c->index);
		STAT_INC(cpu->free_slow);
		if (owner == ((uintptr_t)t | SLAB_OWNER_FULL)) {
			/* Our own full slab: back on our partial list. Every
			 * object of a purged one was free already. */
			if (atomic_load_explicit(&s->state, memory_order_acquire) & ST_PURGED)
				sn_bad_free(fn, obj, c, "double free");
			atomic_fetch_and_explicit(&s->state, ~ST_FULL, memory_order_relaxed);
			own_unlink(cpu, s);
			atomic_store_explicit(&s->owner, (uintptr_t)t, memory_order_relaxed);
			own_partial_add(cpu, s);
			link_set(c, obj, s->head);
			s->head = idx + 1;
			if (--s->inuse == 0)
				slab_became_empty(c, s);
			return;
		}
		if (owner == (uintptr_t)t && cpu->slab != s) {
			/* Reached with a dummy thread pointer: ours after all. */
			link_set(c, obj, s->head);
			s->head = idx + 1;
			if (--s->inuse == 0)
				slab_became_empty(c, s);
			return;
		}
		if (owner == (uintptr_t)t) {
			link_set(c, obj, cpu->head);
			cpu->head = idx + 1;
			return;
		}
		if (owner)
			STAT_INC(cpu->free_remote);
	}
	slab_push_remote(fn, c, s, obj, idx, true);
}

/* The fast path's free of an object whose link word looks free: abort
 * if it is, else free it on the slow path. */
void slab_free_suspect(const char *fn, struct slab_cache *c, struct slab *s, void *obj, uint32_t idx)
{
	slab_confirm_free(fn, c, s, obj, idx);
	/* Data that decodes as a link: make it not look free, then free. */
	*link_word(c, obj) = 0;
	cache_free_plain(fn, c, s, obj, idx);
}

void *sn_fail_null(int err)
{
	errno = err;
	return NULL;
}

/* Free with no event: a veto's rollback, or after the FREE event. */
void slab_free_nohook(const char *fn, struct slab_cache *c, struct slab *s, void *obj, uint32_t idx)
{
	cache_free_plain(fn, c, s, obj, idx);
}

/*
 * The object's link word decodes as a chain value: it is free (a double
 * free), or it holds data that decodes so by chance (about one value in
 * 2^55). Walk the chains the caller may walk; when the object is on one,
 * abort. An unowned slab's chains are walked under the cache lock, which
 * keeps ownership still. A slab owned by another thread keeps its chain
 * private: finding the object on no chain we can see, we still abort,
 * since only a free object holds such a word.
 */
static bool chain_has(struct slab_cache *c, const char *base, uint32_t head, uint32_t idx)
{
	uint32_t steps = 0;
	for (uint32_t v = head; v && steps <= c->objects; steps++) {
		if (v == idx + 1)
			return true;
		void *obj = slab_obj(c, base, v - 1);
		uintptr_t next = __atomic_load_n(link_word(c, obj), __ATOMIC_RELAXED) ^ link_key(c, link_word(c, obj));
		if (next > c->objects)
			return false;
		v = (uint32_t)next;
	}
	return false;
}

void slab_confirm_free(const char *fn, struct slab_cache *c, struct slab *s, void *obj, uint32_t idx)
{
	struct slab_thread *t = sn_tls_thread;
	struct slab_cpu *cpu = cpu_of(t, c);
	uintptr_t owner = atomic_load_explicit(&s->owner, memory_order_relaxed);
	bool found = chain_has(c, s->base, st_head(atomic_load_explicit(&s->state, memory_order_acquire)), idx);
	if (found) {
		/* on the remote stack */
	} else if (cpu->slab == s) {
		found = chain_has(c, s->base, cpu->head, idx);
	} else if ((owner & ~SLAB_OWNER_FULL) == (uintptr_t)t) {
		found = chain_has(c, s->base, s->head, idx);
	} else if (owner) {
		found = true;       /* another thread's private chain: see above */
	} else {
		sn_lock(&c->lock);
		if (atomic_load_explicit(&s->owner, memory_order_relaxed))
			found = true;
		else
			found = chain_has(c, s->base, s->head, idx) ||
				chain_has(c, s->base, st_head(atomic_load(&s->state)), idx);
		sn_unlock(&c->lock);
	}
	if (found)
		sn_bad_free(fn, obj, c, "double free (or free of an object never allocated)");
}

/* ------------------------------------------------------------------ */
/* Shrink and destroy                                                 */
/* ------------------------------------------------------------------ */

/* Take every empty, unclaimed slab off the partial list. Lock held. */
static struct slab *partial_take_empties_locked(struct slab_cache *c)
{
	struct slab *dead = NULL, *s = c->partial;
	while (s) {
		struct slab *next = s->next;
		uint64_t w = atomic_load_explicit(&s->state, memory_order_acquire);
		if (!(w & (ST_OWNED | ST_PENDING)) && st_count(w) == 0 &&
		    atomic_compare_exchange_strong(&s->state, &w, 0)) {
			partial_del(c, s);
			s->next = dead;
			dead = s;
		}
		s = next;
	}
	return dead;
}

static long list_bytes(const struct slab_cache *c, const struct slab *s)
{
	long n = 0;
	for (; s; s = s->next)
		n += (long)slab_bytes_of(c);
	return n;
}

long slab_cache_shrink(struct slab_cache *h)
{
	struct slab_cache *c = cache_of_handle(h);
	if (!c) {
		errno = EINVAL;
		return -EINVAL;
	}
	if (c->kind & CACHE_LARGE)      /* its "empty slabs": the cached mappings */
		return large_cache_flush();
	/* Other threads give up their idle slabs at their next slow path. */
	atomic_fetch_add(&c->shrink_seq, 1);
	struct slab *release = NULL;
	struct slab_thread *t = sn_tls_thread;
	if (t != &sn_thread_dummy)
		cpu_release_all(c, t, cpu_of(t, c), &release);
	long bytes = list_bytes(c, release);
	slabs_release_list(c, release);
	sn_lock(&c->lock);
	struct slab *dead = partial_take_empties_locked(c);
	sn_unlock(&c->lock);
	bytes += list_bytes(c, dead);
	slabs_release_list(c, dead);
	pages_purge_all();   /* "back to the OS" means now, not after the delay */
	return bytes;
}

int slab_cache_destroy(struct slab_cache *h)
{
	struct slab_cache *c = cache_of_handle(h);
	if (!c || (c->kind & (CACHE_BUILTIN | CACHE_META | CACHE_LARGE)) ||
	    atomic_load(&c->state) != CACHE_LIVE) {
		errno = EINVAL;
		return -EINVAL;
	}
	struct slab *release = NULL;
	threads_flush_cache(c, &release);
	slabs_release_list(c, release);
	unsigned long live = cache_active_objs(c);
	if (atomic_load_explicit(&c->hooks, memory_order_relaxed) & HOOK_GUARD)
		live += sn_guard_live_of(c);   /* sampled into the guard pool */
	if (live) {
		fprintf(stderr, "slabnotify: cache %s destroyed with %lu objects remaining\n", c->name, live);
		errno = EBUSY;
		return -EBUSY;
	}
	sn_lock(&c->lock);
	c->min_partial = 0;
	struct slab *dead = partial_take_empties_locked(c);
	sn_unlock(&c->lock);
	slabs_release_list(c, dead);
	/* RCU callbacks that point into the cache (deferred slab releases, a
	 * queued HOOK_FREE drain) finish before the slot can be reused. */
	atomic_store(&c->state, CACHE_DYING);
	notify_cache_quiesce(c);
	cache_list_lock();
	struct slab_cache **pp = &cache_list;
	while (*pp != c)
		pp = &(*pp)->next_cache;
	*pp = c->next_cache;
	threads_clear_cache(c);
	uint16_t *seq = __atomic_exchange_n(&c->random_seq, NULL, __ATOMIC_ACQ_REL);
	pthread_mutex_destroy(&c->lock.m);
	c->handle = 0;      /* stale handles are refused from now on */
	atomic_store(&c->state, CACHE_FREE);
	slot_put(c);
	cache_list_unlock();
	meta_free(seq);
	return 0;
}
