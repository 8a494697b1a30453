/*
 * thread.c - the per-thread structure: one cpu slot per cache (SLUB's
 * kmem_cache_cpu, per thread instead of per CPU), and the slabs the
 * thread owns through it.
 *
 * A thread starts out pointing at a shared, all-zero dummy structure, so
 * its first alloc finds an empty chain and its first free finds no slab
 * of its own: both go to the slow path, which gives the thread its own
 * structure. The fast paths therefore need no "is this thread set up"
 * test. The TLS pointer is initial-exec: one %fs-relative load.
 *
 * A thread's structure is touched by that thread only, with three
 * exceptions, all under the registry lock: statistics readers (relaxed
 * loads of the counters); slab_cache_destroy(), which flushes every
 * thread's slot of a cache no thread may be using; and, in a fork
 * child, the reaping of the threads that did not survive the fork.
 *
 * On exit (a pthread key destructor) a thread gives every slab it owns
 * back to its cache and folds its counters into the cache; the structure
 * is kept for the next thread. Slabs that become empty are released
 * after the registry lock is dropped: their FREEPAGE handlers run with
 * no lock held.
 */
#define _GNU_SOURCE   /* gettid */
#include "internal.h"
#include "consumers/consumer.h"

#include <errno.h>
#include <unistd.h>
#include <stdlib.h>

struct slab_thread sn_thread_dummy = { .last_seg = SN_NO_SEGMENT };
__thread struct slab_thread *sn_tls_thread SN_TLS = &sn_thread_dummy;
_Atomic int sn_orphans;

static struct sn_mutex registry_lock = SN_MUTEX_INIT(SN_RANK_REGISTRY);
static struct slab_thread *registry;      /* live threads (and fork orphans) */
static struct slab_thread *spare;         /* structures of exited threads */
static pthread_key_t exit_key;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;

static void thread_exit(void *arg);

bool sn_membarrier_ok;

static void make_key(void)
{
	if (pthread_key_create(&exit_key, thread_exit) != 0)
		sn_fatal("slabnotify: pthread_key_create failed");
	sn_membarrier_ok = os_membarrier_setup();
}

void thread_init_once(void)
{
	pthread_once(&key_once, make_key);
}

void sn_fence_heavy(void)
{
	if (!sn_membarrier_ok)
		sn_fence(__ATOMIC_SEQ_CST);
	else if (!os_membarrier())
		sn_fatal("slabnotify: membarrier(2) failed after it was registered");
}

static void registry_add(struct slab_thread *t)
{
	t->prev = NULL;
	t->next = registry;
	if (registry)
		registry->prev = t;
	registry = t;
}

static void registry_del(struct slab_thread *t)
{
	if (t->prev)
		t->prev->next = t->next;
	else
		registry = t->next;
	if (t->next)
		t->next->prev = t->prev;
	t->next = t->prev = NULL;
}

static struct slab_thread *thread_new(void)
{
	struct slab_thread *t;
	sn_lock(&registry_lock);
	t = spare;
	if (t)
		spare = t->next;
	sn_unlock(&registry_lock);
	if (!t) {
		t = os_map((sizeof(*t) + SN_PAGE_SIZE - 1) & ~(SN_PAGE_SIZE - 1));
		if (!t)
			return NULL;
	}
	if (!t->last_seg)
		t->last_seg = SN_NO_SEGMENT;   /* a fresh mapping; a spare keeps its own */
	t->live = true;
	t->orphan = false;
	t->stock = NULL;
	t->charge_group = NULL;
	atomic_store_explicit(&t->idle_bytes, 0, memory_order_relaxed);
	__atomic_store_n(&t->max_index, 0, __ATOMIC_RELAXED);
	sn_lock(&registry_lock);
	registry_add(t);
	sn_unlock(&registry_lock);
	return t;
}

/* The calling thread's own structure, made on first use. Slow path. */
struct slab_thread *thread_get(void)
{
	struct slab_thread *t = sn_tls_thread;
	if (likely(t != &sn_thread_dummy))
		return t;
	thread_init_once();
	t = thread_new();
	if (!t)
		return NULL;
	sn_tls_thread = t;
	pthread_setspecific(exit_key, t);
	return t;
}

static uint32_t max_index_of(const struct slab_thread *t)
{
	return __atomic_load_n(&t->max_index, __ATOMIC_RELAXED);
}

static unsigned long ld(const unsigned long *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static void st0(unsigned long *p)
{
	__atomic_store_n(p, 0, __ATOMIC_RELAXED);
}

/* Fold a slot's counters into its cache and clear them. */
static void fold_slot(struct slab_cache *c, struct slab_cpu *cpu)
{
	atomic_fetch_add_explicit(&c->dead_alloc_fast, ld(&cpu->alloc_fast), memory_order_relaxed);
	atomic_fetch_add_explicit(&c->dead_alloc_slow, ld(&cpu->alloc_slow), memory_order_relaxed);
	atomic_fetch_add_explicit(&c->dead_free_fast, ld(&cpu->free_fast), memory_order_relaxed);
	atomic_fetch_add_explicit(&c->dead_free_slow, ld(&cpu->free_slow), memory_order_relaxed);
	atomic_fetch_add_explicit(&c->dead_free_remote, ld(&cpu->free_remote), memory_order_relaxed);
	atomic_fetch_add_explicit(&c->dead_notified, (long)ld(&cpu->notified), memory_order_relaxed);
	st0(&cpu->alloc_fast);
	st0(&cpu->alloc_slow);
	st0(&cpu->free_fast);
	st0(&cpu->free_slow);
	st0(&cpu->free_remote);
	st0(&cpu->notified);
}

static bool slot_busy(const struct slab_cpu *cpu)
{
	return cpu->slab || cpu->partial || cpu->idle || cpu->full;
}

/*
 * Give up every slab of @t and fold its counters. Per cache, under the
 * registry lock (so that a concurrent slab_cache_destroy sees the slot
 * either before or after); the slabs to release are released after it
 * is dropped. The caller owns @t: it is the thread itself, or a reaper.
 */
static void thread_release_slots(struct slab_thread *t)
{
	uint32_t n = max_index_of(t);
	for (uint32_t i = 0; i < n; i++) {
		struct slab_cache *c = &sn_cache_table[i];
		struct slab_cpu *cpu = &t->cpu[i];
		struct slab *release = NULL;
		sn_lock(&registry_lock);
		if (atomic_load_explicit(&c->state, memory_order_relaxed) != CACHE_FREE) {
			if (slot_busy(cpu))
				cpu_release_all(c, t, cpu, &release);
			fold_slot(c, cpu);
		}
		sn_unlock(&registry_lock);
		if (release)
			slabs_release_list(c, release);
	}
}

static void thread_retire(struct slab_thread *t)
{
	sn_lock(&registry_lock);
	registry_del(t);
	t->live = false;
	t->orphan = false;
	t->next = spare;
	spare = t;
	sn_unlock(&registry_lock);
}

static void thread_exit(void *arg)
{
	struct slab_thread *t = arg;
	/* Frees made by later destructors take the slow path from here on. */
	sn_tls_thread = &sn_thread_dummy;
	thread_release_slots(t);
	thread_retire(t);
}

/* Flush every thread's slot of @c (slab_cache_destroy; no thread may be
 * using @c). Slabs to release go on *release. */
void threads_flush_cache(struct slab_cache *c, struct slab **release)
{
	sn_lock(&registry_lock);
	for (struct slab_thread *t = registry; t; t = t->next) {
		if (c->index >= max_index_of(t))
			continue;
		struct slab_cpu *cpu = &t->cpu[c->index];
		if (slot_busy(cpu))
			cpu_release_all(c, t, cpu, release);
		fold_slot(c, cpu);
	}
	sn_unlock(&registry_lock);
}

/* A destroyed cache's slot starts from zero in every thread. */
void threads_clear_cache(const struct slab_cache *c)
{
	sn_lock(&registry_lock);
	for (struct slab_thread *t = registry; t; t = t->next)
		if (c->index < max_index_of(t))
			memset(&t->cpu[c->index], 0, sizeof(t->cpu[c->index]));
	for (struct slab_thread *t = spare; t; t = t->next)
		memset(&t->cpu[c->index], 0, sizeof(t->cpu[c->index]));
	sn_unlock(&registry_lock);
}

/* Sum the live threads' counters of @c: alloc fast, alloc slow, free
 * fast, free slow, free remote, notified. Relaxed loads: exact at a
 * quiet moment. */
void threads_sum_counters(const struct slab_cache *c, unsigned long out[SN_NR_CPU_COUNTERS])
{
	memset(out, 0, SN_NR_CPU_COUNTERS * sizeof(out[0]));
	sn_lock(&registry_lock);
	for (struct slab_thread *t = registry; t; t = t->next) {
		if (c->index >= max_index_of(t))
			continue;
		const struct slab_cpu *cpu = &t->cpu[c->index];
		out[0] += ld(&cpu->alloc_fast);
		out[1] += ld(&cpu->alloc_slow);
		out[2] += ld(&cpu->free_fast);
		out[3] += ld(&cpu->free_slow);
		out[4] += ld(&cpu->free_remote);
		out[5] += ld(&cpu->notified);
	}
	sn_unlock(&registry_lock);
}

/*
 * fork(): the child keeps only the calling thread. The others' slabs
 * would be stranded; but the child's fork handler may neither notify
 * (FREEPAGE handlers, RCU registration) nor take locks that a thread of
 * the parent could have held. So the vanished threads are only marked
 * here, and reaped by the child's first allocation slow path.
 */
void threads_fork_prepare(void)
{
	pthread_mutex_lock(&registry_lock.m);
}

void threads_fork_parent(void)
{
	pthread_mutex_unlock(&registry_lock.m);
}

void threads_fork_child(void)
{
	/* The child is a new address space: its membarrier registration is
	 * made again, while it has one thread and no fast side can run. */
	if (sn_membarrier_ok)
		sn_membarrier_ok = os_membarrier_setup();
	sn_mutex_reinit(&registry_lock);
	struct slab_thread *self = sn_tls_thread;
	bool any = false;
	for (struct slab_thread *t = registry; t; t = t->next)
		if (t != self) {
			t->orphan = true;
			any = true;
		}
	atomic_store_explicit(&sn_orphans, any, memory_order_relaxed);
}

void threads_reap_orphans(void)
{
	for (;;) {
		sn_lock(&registry_lock);
		struct slab_thread *t = registry;
		while (t && !t->orphan)
			t = t->next;
		if (t)
			t->orphan = false;   /* ours to reap */
		else
			atomic_store_explicit(&sn_orphans, 0, memory_order_relaxed);
		sn_unlock(&registry_lock);
		if (!t)
			return;
		thread_release_slots(t);
		thread_retire(t);
	}
}

/* ------------------------------------------------------------------ */
/* Thread ordinals (consumer.h)                                       */
/* ------------------------------------------------------------------ */

/* Ordinal + 1 of the calling thread; 0: not yet known. */
static __thread uint32_t tl_ordinal SN_TLS;
_Atomic uint32_t sn_thread_next_ordinal = 1;   /* 0 is the main thread's */

uint32_t sn_thread_ordinal_next(void)
{
	return atomic_fetch_add_explicit(&sn_thread_next_ordinal, 1, memory_order_relaxed);
}

void sn_thread_ordinal_set(uint32_t ordinal)
{
	tl_ordinal = ordinal + 1;
}

uint32_t sn_thread_ordinal(void)
{
	if (unlikely(!tl_ordinal)) {
		/* The main thread is the process's own pid. */
		if (gettid() == getpid())
			tl_ordinal = 1;
		else
			tl_ordinal = sn_thread_ordinal_next() + 1;
	}
	return tl_ordinal - 1;
}

bool sn_thread_ordinals_all;

void sn_thread_ordinals_complete(void)
{
	sn_thread_ordinals_all = true;
}
