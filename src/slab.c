/*
 * slab.c - caches and the slow paths (SLUB, adapted to userspace).
 *
 * Life cycle of a slab (see docs/design.md for the full picture):
 *
 *   new (from page.c) --freeze--> ACTIVE on one thread (FROZEN)
 *   ACTIVE, freelist ran dry --> collect remote frees, or retire FULL
 *   FULL (on no list) --first remote free--> PARTIAL (LISTED)
 *   PARTIAL --taken by an allocating thread--> ACTIVE
 *   PARTIAL/any unfrozen, all objects free --> kept EMPTY on the partial
 *       list up to min_partial, else released to page.c
 *   thread exit / flush: ACTIVE --> PARTIAL, FULL or EMPTY
 *
 * Who may touch what:
 *  - cpu->freelist, cpu->slab: the owning thread only (fast paths).
 *  - slab->freelist, nr_local, list links, on_partial, counted_empty,
 *    and the cache's partial list: the cache lock holder, for unfrozen
 *    slabs. A frozen slab's objects live in its owner's cpu->freelist.
 *  - slab->state: anyone, with atomic compare-and-swap. Frees of objects
 *    of a slab that is not the freeing thread's active slab push onto
 *    the remote stack in the state word. For an unfrozen slab the same
 *    CAS counts the object as free; a free that takes a full slab to
 *    partial, or a listed slab to empty, claims PENDING and settles the
 *    slab under the lock. Only the PENDING claimant may release a slab
 *    that has PENDING set, so a claimant's descriptor stays valid.
 *
 * Lock order: cache list lock -> thread registry lock -> cache lock ->
 * page pool lock. Notifier handlers are never called with a lock held,
 * except FREEPAGE during slab_cache_destroy (cache list lock only).
 */
#include "fastpath.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t cache_list_mutex = PTHREAD_MUTEX_INITIALIZER;
static struct slab_cache cache_table[SLAB_MAX_CACHES];
static struct slab_cache *cache_list;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static uintptr_t secret_seed;

void sn_fatal(const char *fmt, ...)
{
	char buf[256];
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
	sn_fatal("%s(): %s: pointer %p (cache %s)", fn, why, p, c ? c->name : "none");
}

void cache_list_lock(void) { pthread_mutex_lock(&cache_list_mutex); }
void cache_list_unlock(void) { pthread_mutex_unlock(&cache_list_mutex); }
struct slab_cache *cache_list_first(void) { return cache_list; }

/* ------------------------------------------------------------------ */
/* Initialisation and fork                                            */
/* ------------------------------------------------------------------ */

static void fork_prepare(void)
{
	notify_fork_prepare();
	kmalloc_fork_prepare();
	cache_list_lock();
	for (struct slab_cache *c = cache_list; c; c = c->next_cache)
		pthread_mutex_lock(&c->lock);
	threads_fork_prepare();
	pages_fork_prepare();
}

static void fork_parent(void)
{
	pages_fork_parent();
	threads_fork_parent();
	for (struct slab_cache *c = cache_list; c; c = c->next_cache)
		pthread_mutex_unlock(&c->lock);
	cache_list_unlock();
	kmalloc_fork_parent();
	notify_fork_parent();
}

static void fork_child(void)
{
	pages_fork_child();
	for (struct slab_cache *c = cache_list; c; c = c->next_cache)
		pthread_mutex_init(&c->lock, NULL);
	pthread_mutex_init(&cache_list_mutex, NULL);
	kmalloc_fork_child();
	notify_fork_child();
	threads_fork_child();
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
	thread_init_once();
	pthread_atfork(fork_prepare, fork_parent, fork_child);
}

void sn_init(void)
{
	pthread_once(&init_once, do_init);
}

/* ------------------------------------------------------------------ */
/* Cache geometry (SLUB's calculate_order)                            */
/* ------------------------------------------------------------------ */

static unsigned fls_u(unsigned long x)
{
	return x ? (unsigned)(64 - __builtin_clzl(x)) : 0;
}

/* Smallest slab shift whose leftover is at most 1/@fract of the slab. */
static int calc_slab_shift(size_t size, unsigned min_objects, unsigned max_shift, unsigned fract)
{
	unsigned shift = SN_MIN_SLAB_SHIFT + 2;  /* slub_min_order 2: 16 KiB */
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
	const unsigned max_shift = 18;  /* 256 KiB, our slub_max_order */
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
	/* One object per slab is acceptable; bounded waste still wins. */
	int s = calc_slab_shift(size, 1, SN_MAX_SLAB_SHIFT, 16);
	return s >= 0 ? (unsigned)s : SN_MAX_SLAB_SHIFT;
}

static bool flags_valid(slab_flags_t flags)
{
	const slab_flags_t known = SLAB_HWCACHE_ALIGN | SLAB_TYPESAFE_BY_RCU | SLAB_NOTIFY | SLAB_ACCOUNT;
	return (flags & ~known) == 0;
}

/* Stride, freelist offset and alignment of a cache. */
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
	/* The freelist pointer must not overwrite what a constructor built
	 * or what an RCU reader may still read: put it after the object. */
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
	c->slab_shift = calculate_shift(stride);
	c->objects = (uint32_t)((1UL << c->slab_shift) / stride);
	c->reciprocal = (uint32_t)(((1ULL << 32) + stride - 1) / stride);
	/* SLUB keeps ilog2(size)/2 empty slabs, 5..10; we are leaner. */
	unsigned mp = fls_u(stride) / 2;
	c->min_partial = mp < 2 ? 2 : mp > 5 ? 5 : mp;
	if (c->slab_shift >= 18)
		c->min_partial = 1;
	return 0;
}

struct slab_cache *cache_create_internal(const char *name, size_t size, size_t align,
					 slab_flags_t flags, void (*ctor)(void *), uint32_t hooks)
{
	sn_init();
	cache_list_lock();
	struct slab_cache *c = NULL;
	for (unsigned i = 0; i < SLAB_MAX_CACHES; i++)
		if (!cache_table[i].in_use) {
			c = &cache_table[i];
			break;
		}
	if (!c) {
		cache_list_unlock();
		errno = ENOMEM;
		return NULL;
	}
	uint32_t index = (uint32_t)(c - cache_table);
	memset(c, 0, sizeof(*c));
	c->index = index;
	int err = size && size <= SLAB_MAX_OBJECT_SIZE ? cache_geometry(c, size, align, flags, ctor != NULL) : -EINVAL;
	if (err) {
		cache_list_unlock();
		errno = -err;
		return NULL;
	}
	c->flags = flags;
	c->ctor = ctor;
	c->secret = secret_seed * (index + 0x9e37) ^ (secret_seed >> 17);
	pthread_mutex_init(&c->lock, NULL);
	snprintf(c->name, sizeof(c->name), "%s", name);
	notify_cache_init(c);
	atomic_store(&c->hooks, hooks | notify_initial_hooks(flags));
	c->in_use = true;
	/* Append, so that slabinfo lists caches in creation order. */
	struct slab_cache **pp = &cache_list;
	while (*pp)
		pp = &(*pp)->next_cache;
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
	return cache_create_internal(name, size, align, flags, ctor, 0);
}

const char *slab_cache_name(const struct slab_cache *c)
{
	return c ? c->name : NULL;
}

/* ------------------------------------------------------------------ */
/* Partial list (cache lock held)                                     */
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
	slab_release_now(caa_container_of(head, struct slab, rcu));
	SN_RCU_CALLBACK_END();
}

/* Give an empty slab back: FREEPAGE, extension arrays, then the OS
 * (after a grace period for SLAB_TYPESAFE_BY_RCU). No lock held. */
static void slab_release(struct slab_cache *c, struct slab *s)
{
	if (s->page_stamp)
		notify_freepage(c, s);
	notify_slab_release_ext(s);
	s->cache = NULL;
	atomic_fetch_sub_explicit(&c->nr_slabs, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&c->free_slab, 1, memory_order_relaxed);
	if (c->flags & SLAB_TYPESAFE_BY_RCU)
		sn_call_rcu(&s->rcu, slab_release_rcu);
	else
		slab_release_now(s);
}

/* A new frozen slab with every object on its chain. NULL on failure,
 * with errno from the OS or from a NEWPAGE veto. */
static struct slab *slab_new(struct slab_cache *c, slab_gfp_t gfp)
{
	struct slab *s = pages_alloc_slab(c->slab_shift);
	if (!s)
		return NULL;
	s->objects = c->objects;
	s->freelist = NULL;
	s->nr_local = 0;
	atomic_store_explicit(&s->state, ST_FROZEN, memory_order_relaxed);
	for (uint32_t i = 0; i < c->objects; i++) {
		void *obj = slab_obj(c, s, i);
		if (c->ctor)
			c->ctor(obj);
		fp_set(c, obj, i + 1 < c->objects ? slab_obj(c, s, i + 1) : NULL);
	}
	/* Publish the owner last: slab_of() users see a complete slab. */
	__atomic_store_n(&s->cache, c, __ATOMIC_RELEASE);
	atomic_fetch_add_explicit(&c->nr_slabs, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&c->alloc_slab, 1, memory_order_relaxed);
	if (unlikely(atomic_load_explicit(&c->hooks, memory_order_relaxed) & HOOK_ALLOC)) {
		int err = notify_newpage(c, s, gfp);
		if (err) {  /* vetoed: back to the OS with no further event */
			s->cache = NULL;
			atomic_fetch_sub_explicit(&c->nr_slabs, 1, memory_order_relaxed);
			atomic_fetch_sub_explicit(&c->alloc_slab, 1, memory_order_relaxed);
			pages_free_slab(s);
			errno = -err;
			return NULL;
		}
	}
	return s;
}

/* ------------------------------------------------------------------ */
/* Settling an unfrozen slab (cache lock held)                        */
/* ------------------------------------------------------------------ */

enum settle_action { SETTLE_NONE, SETTLE_LIST, SETTLE_DISCARD };

/*
 * Put an unfrozen slab where its state says it belongs: on the partial
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
		if (w & ST_FROZEN) {
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
	bool empty = !(w & ST_FROZEN) && st_count(w) == 0;
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
		if (!(w & ST_FROZEN) && s->on_partial)
			partial_del(c, s);
		return NULL;
	}
}

/* ------------------------------------------------------------------ */
/* The thread's active slab                                           */
/* ------------------------------------------------------------------ */

/* Active slab ran dry: take its remote frees if any (true), or retire
 * it as full, on no list (false). No lock needed for either. */
static bool cpu_refill_or_retire(struct slab_cache *c, struct slab_cpu *cpu)
{
	struct slab *s = cpu->slab;
	uint64_t w = atomic_load_explicit(&s->state, memory_order_acquire), nw;
	do {
		if (st_head(w))
			nw = st_make(0, 0, w & (ST_FROZEN | ST_PENDING));
		else
			nw = st_make(0, s->objects, w & ST_PENDING);
	} while (!atomic_compare_exchange_weak_explicit(&s->state, &w, nw, memory_order_acq_rel,
							 memory_order_acquire));
	if (st_head(w)) {
		cpu->freelist = slab_obj(c, s, st_head(w) - 1);
		return true;
	}
	cpu->slab = NULL;
	return false;
}

/* Freeze a slab taken off the partial list; returns its free chain. */
static void *slab_freeze_locked(struct slab_cache *c, struct slab *s)
{
	uint64_t w = atomic_load_explicit(&s->state, memory_order_acquire), nw;
	void *chain;
	do {
		if (s->nr_local) {
			/* Leave the remote stack for later; count what it holds. */
			uint32_t remote = s->objects - st_count(w) - s->nr_local;
			nw = st_make(st_head(w), remote, ST_FROZEN | (w & ST_PENDING));
			chain = s->freelist;
		} else {
			nw = st_make(0, 0, ST_FROZEN | (w & ST_PENDING));
			chain = st_head(w) ? slab_obj(c, s, st_head(w) - 1) : NULL;
		}
	} while (!atomic_compare_exchange_weak_explicit(&s->state, &w, nw, memory_order_acq_rel,
							 memory_order_acquire));
	s->freelist = NULL;
	s->nr_local = 0;
	return chain;
}

static bool cpu_take_partial(struct slab_cache *c, struct slab_cpu *cpu)
{
	pthread_mutex_lock(&c->lock);
	struct slab *s;
	while ((s = c->partial)) {
		partial_del(c, s);
		void *chain = slab_freeze_locked(c, s);
		if (chain) {
			pthread_mutex_unlock(&c->lock);
			cpu->slab = s;
			cpu->freelist = chain;
			return true;
		}
		/* Listed with nothing free cannot happen; be safe: retire. */
		atomic_store(&s->state, st_make(0, s->objects, 0));
	}
	pthread_mutex_unlock(&c->lock);
	return false;
}

/*
 * Hand the active slab back to the cache, whatever its freelist holds.
 * The caller owns @cpu: its own thread, an exiting thread, or a flush
 * of a cache no thread uses.
 */
long cpu_deactivate(struct slab_cache *c, struct slab_cpu *cpu)
{
	struct slab *s = cpu->slab;
	void *chain = cpu->freelist;
	uint32_t n = 0;
	for (void *o = chain; o; o = fp_get(c, o))
		n++;
	cpu->slab = NULL;
	cpu->freelist = NULL;

	pthread_mutex_lock(&c->lock);
	s->freelist = chain;
	s->nr_local = n;
	uint64_t w = atomic_load_explicit(&s->state, memory_order_acquire), nw;
	do {
		uint32_t in_use = s->objects - n - st_count(w);
		nw = st_make(st_head(w), in_use, w & ST_PENDING);
	} while (!atomic_compare_exchange_weak_explicit(&s->state, &w, nw, memory_order_acq_rel,
							 memory_order_acquire));
	struct slab *dead = slab_settle_locked(c, s, false);
	pthread_mutex_unlock(&c->lock);
	if (!dead)
		return 0;
	slab_release(c, dead);
	return (long)slab_bytes_of(c);
}

/* Install a new slab; a handler of its NEWPAGE may have installed one
 * meanwhile (it allocated from this cache), which is handed back. */
static bool cpu_new_slab(struct slab_cache *c, struct slab_cpu *cpu, slab_gfp_t gfp)
{
	struct slab *s = slab_new(c, gfp);
	if (!s)
		return false;
	if (cpu->slab)
		cpu_deactivate(c, cpu);
	cpu->slab = s;
	cpu->freelist = s->base;
	return true;
}

void *slab_alloc_slow(struct slab_cache *c, slab_gfp_t gfp)
{
	struct slab_thread *t = thread_get();
	if (unlikely(!t)) {
		errno = ENOMEM;
		return NULL;
	}
	thread_touch(t, c->index);
	struct slab_cpu *cpu = &t->cpu[c->index];
	void *obj;
	while (!(obj = cpu->freelist)) {
		if (cpu->slab && cpu_refill_or_retire(c, cpu))
			continue;
		if (cpu_take_partial(c, cpu))
			continue;
		if (!cpu_new_slab(c, cpu, gfp))
			return NULL;
	}
	cpu->freelist = fp_get(c, obj);
	STAT_INC(cpu->alloc_slow);
	if (unlikely((atomic_load_explicit(&c->hooks, memory_order_relaxed) & HOOK_ALLOC) | gfp))
		return alloc_post_hook(c, obj, gfp);
	return obj;
}

/* ------------------------------------------------------------------ */
/* Frees that miss the active slab                                    */
/* ------------------------------------------------------------------ */

/* Push onto the slab's remote stack; settle it if this free claims it. */
static void slab_push_remote(struct slab_cache *c, struct slab *s, void *obj, uint32_t idx)
{
	uint64_t w = atomic_load_explicit(&s->state, memory_order_relaxed), nw;
	bool claim;
	do {
		claim = false;
		if (unlikely(st_head(w) == idx + 1))
			sn_bad_free("slab_free", obj, c, "double free");
		fp_set(c, obj, st_head(w) ? slab_obj(c, s, st_head(w) - 1) : NULL);
		uint64_t flags = w & (ST_FROZEN | ST_LISTED | ST_PENDING);
		if (w & ST_FROZEN) {
			nw = st_make(idx + 1, st_count(w) + 1, flags);
			continue;
		}
		if (unlikely(st_count(w) == 0))
			sn_bad_free("slab_free", obj, c, "double free or free of a free slab");
		uint32_t in_use = st_count(w) - 1;
		if ((!(w & ST_LISTED) || in_use == 0) && !(w & ST_PENDING)) {
			flags |= ST_PENDING;
			claim = true;
		}
		nw = st_make(idx + 1, in_use, flags);
	} while (!atomic_compare_exchange_weak_explicit(&s->state, &w, nw, memory_order_acq_rel,
							 memory_order_relaxed));
	if (!claim)
		return;
	pthread_mutex_lock(&c->lock);
	struct slab *dead = slab_settle_locked(c, s, true);
	pthread_mutex_unlock(&c->lock);
	if (dead)
		slab_release(c, dead);
}

void slab_free_nohook(struct slab_cache *c, struct slab *s, void *obj)
{
	if (atomic_load_explicit(&c->hooks, memory_order_relaxed) & HOOK_LARGE) {
		large_release(s);
		return;
	}
	struct slab_thread *t = thread_get();
	struct slab_cpu *cpu = t ? &t->cpu[c->index] : NULL;
	if (cpu && cpu->slab == s) {
		if (unlikely(cpu->freelist == obj))
			sn_bad_free("slab_free", obj, c, "double free");
		fp_set(c, obj, cpu->freelist);
		cpu->freelist = obj;
		STAT_INC(cpu->free_fast);
		return;
	}
	uint32_t idx = slab_obj_index(c, s, obj);
	if (cpu) {
		thread_touch(t, c->index);
		STAT_INC(cpu->free_slow);
		if (atomic_load_explicit(&s->state, memory_order_relaxed) & ST_FROZEN)
			STAT_INC(cpu->free_remote);
	}
	slab_push_remote(c, s, obj, idx);
}

void slab_free_slow(struct slab_cache *c, struct slab *s, void *obj)
{
	slab_free_nohook(c, s, obj);
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
		if (!(w & (ST_FROZEN | ST_PENDING)) && st_count(w) == 0 &&
		    atomic_compare_exchange_strong(&s->state, &w, 0)) {
			partial_del(c, s);
			s->next = dead;
			dead = s;
		}
		s = next;
	}
	return dead;
}

static long release_list(struct slab_cache *c, struct slab *dead)
{
	long bytes = 0;
	while (dead) {
		struct slab *next = dead->next;
		bytes += (long)slab_bytes_of(c);
		slab_release(c, dead);
		dead = next;
	}
	return bytes;
}

long slab_cache_shrink(struct slab_cache *c)
{
	if (!c || (atomic_load(&c->hooks) & HOOK_LARGE)) {
		errno = EINVAL;
		return -EINVAL;
	}
	struct slab_cpu *cpu = cpu_slot(c);
	long bytes = cpu->slab ? cpu_deactivate(c, cpu) : 0;
	pthread_mutex_lock(&c->lock);
	struct slab *dead = partial_take_empties_locked(c);
	pthread_mutex_unlock(&c->lock);
	bytes += release_list(c, dead);
	pages_purge_all();   /* "back to the OS" means now, not after the delay */
	return bytes;
}

int slab_cache_destroy(struct slab_cache *c)
{
	if (!c || !c->in_use || (atomic_load(&c->hooks) & HOOK_LARGE)) {
		errno = EINVAL;
		return -EINVAL;
	}
	cache_list_lock();
	threads_flush_cache(c);
	unsigned long live = cache_active_objs(c);
	if (live) {
		cache_list_unlock();
		fprintf(stderr, "slabnotify: cache %s destroyed with %lu objects remaining\n", c->name, live);
		errno = EBUSY;
		return -EBUSY;
	}
	pthread_mutex_lock(&c->lock);
	c->min_partial = 0;
	struct slab *dead = partial_take_empties_locked(c);
	pthread_mutex_unlock(&c->lock);
	release_list(c, dead);
	/* Deferred slab releases and a queued HOOK_FREE drain refer to the
	 * cache's slot: let them finish before the slot can be reused. */
	if ((c->flags & SLAB_TYPESAFE_BY_RCU) || atomic_load(&c->drain_queued))
		sn_rcu_barrier();
	struct slab_cache **pp = &cache_list;
	while (*pp != c)
		pp = &(*pp)->next_cache;
	*pp = c->next_cache;
	pthread_mutex_destroy(&c->lock);
	c->in_use = false;
	cache_list_unlock();
	return 0;
}
