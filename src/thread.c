/*
 * thread.c - the per-thread structure: one cpu slot per cache (SLUB's
 * kmem_cache_cpu, per thread instead of per CPU).
 *
 * A thread starts out pointing at a shared, all-zero dummy structure, so
 * its first alloc finds an empty freelist and its first free finds no
 * matching slab: both go to the slow path, which gives the thread its
 * own structure. The fast paths therefore need no "is this thread set
 * up" test. The TLS pointer is initial-exec: one %fs-relative load.
 *
 * A thread's structure is touched by that thread only, with two
 * exceptions that need the registry lock: statistics readers (relaxed
 * loads of the counters), and slab_cache_destroy(), which flushes every
 * thread's slot of a cache that no thread may be using.
 *
 * On exit (a pthread key destructor) a thread gives its active slabs
 * back to their caches and folds its counters into them; the structure
 * is kept on a free list for the next thread.
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>

struct slab_thread sn_thread_dummy;
__thread struct slab_thread *sn_tls_thread SN_TLS = &sn_thread_dummy;

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct slab_thread *registry;      /* live threads */
static struct slab_thread *spare;         /* structures of exited threads */
static pthread_key_t exit_key;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;

static void thread_exit(void *arg);

static void make_key(void)
{
	if (pthread_key_create(&exit_key, thread_exit) != 0)
		sn_fatal("slabnotify: pthread_key_create failed");
}

void thread_init_once(void)
{
	pthread_once(&key_once, make_key);
}

static struct slab_thread *thread_new(void)
{
	struct slab_thread *t;
	pthread_mutex_lock(&registry_lock);
	t = spare;
	if (t)
		spare = t->next;
	pthread_mutex_unlock(&registry_lock);
	if (!t) {
		t = os_map(sizeof(*t));
		if (!t)
			return NULL;
	}
	t->live = true;
	__atomic_store_n(&t->max_index, 0, __ATOMIC_RELAXED);
	pthread_mutex_lock(&registry_lock);
	t->prev = NULL;
	t->next = registry;
	if (registry)
		registry->prev = t;
	registry = t;
	pthread_mutex_unlock(&registry_lock);
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

/* max_index is written by its thread and read by statistics readers. */
void thread_touch(struct slab_thread *t, uint32_t index)
{
	if (index + 1 > __atomic_load_n(&t->max_index, __ATOMIC_RELAXED))
		__atomic_store_n(&t->max_index, index + 1, __ATOMIC_RELAXED);
}

static uint32_t max_index_of(const struct slab_thread *t)
{
	return __atomic_load_n(&t->max_index, __ATOMIC_RELAXED);
}

static unsigned long ld(const unsigned long *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

/* Fold a slot's counters into its cache and clear the slot. */
static void fold_slot(struct slab_cache *c, struct slab_cpu *cpu)
{
	atomic_fetch_add_explicit(&c->dead_alloc_fast, ld(&cpu->alloc_fast), memory_order_relaxed);
	atomic_fetch_add_explicit(&c->dead_alloc_slow, ld(&cpu->alloc_slow), memory_order_relaxed);
	atomic_fetch_add_explicit(&c->dead_free_fast, ld(&cpu->free_fast), memory_order_relaxed);
	atomic_fetch_add_explicit(&c->dead_free_slow, ld(&cpu->free_slow), memory_order_relaxed);
	atomic_fetch_add_explicit(&c->dead_free_remote, ld(&cpu->free_remote), memory_order_relaxed);
	atomic_fetch_add_explicit(&c->dead_notified, (long)ld(&cpu->notified), memory_order_relaxed);
	__atomic_store_n(&cpu->alloc_fast, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&cpu->alloc_slow, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&cpu->free_fast, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&cpu->free_slow, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&cpu->free_remote, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&cpu->notified, 0, __ATOMIC_RELAXED);
}

/* Give every active slab back and fold the counters. The caller owns
 * @t: it is the thread itself, or a fork child for a vanished thread. */
static void thread_release_slots(struct slab_thread *t)
{
	cache_list_lock();
	for (struct slab_cache *c = cache_list_first(); c; c = c->next_cache) {
		if (c->index >= max_index_of(t))
			continue;
		struct slab_cpu *cpu = &t->cpu[c->index];
		if (cpu->slab)
			cpu_deactivate(c, cpu);
		pthread_mutex_lock(&registry_lock);
		fold_slot(c, cpu);
		pthread_mutex_unlock(&registry_lock);
	}
	cache_list_unlock();
}

static void thread_retire(struct slab_thread *t)
{
	pthread_mutex_lock(&registry_lock);
	if (t->prev)
		t->prev->next = t->next;
	else
		registry = t->next;
	if (t->next)
		t->next->prev = t->prev;
	t->live = false;
	t->next = spare;
	spare = t;
	pthread_mutex_unlock(&registry_lock);
}

static void thread_exit(void *arg)
{
	struct slab_thread *t = arg;
	/* Frees made by later destructors take the slow path from here on. */
	sn_tls_thread = &sn_thread_dummy;
	thread_release_slots(t);
	thread_retire(t);
}

/* Flush every thread's slot of @c. Called by slab_cache_destroy, with
 * the cache list lock held; no thread may be using @c. */
void threads_flush_cache(struct slab_cache *c)
{
	pthread_mutex_lock(&registry_lock);
	for (struct slab_thread *t = registry; t; t = t->next) {
		if (c->index >= max_index_of(t))
			continue;
		struct slab_cpu *cpu = &t->cpu[c->index];
		if (cpu->slab)
			cpu_deactivate(c, cpu);
		fold_slot(c, cpu);
	}
	pthread_mutex_unlock(&registry_lock);
}

/* Sum the live threads' counters of @c: alloc fast, alloc slow, free
 * fast, free slow, free remote, notified. Relaxed loads: exact at a
 * quiet moment. */
void threads_sum_counters(const struct slab_cache *c, unsigned long out[SN_NR_CPU_COUNTERS])
{
	memset(out, 0, SN_NR_CPU_COUNTERS * sizeof(out[0]));
	pthread_mutex_lock(&registry_lock);
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
	pthread_mutex_unlock(&registry_lock);
}

/* fork(): the child keeps only the calling thread. The others' slabs
 * would be stranded, so the child releases them as if they had exited. */
void threads_fork_prepare(void)
{
	pthread_mutex_lock(&registry_lock);
}

void threads_fork_parent(void)
{
	pthread_mutex_unlock(&registry_lock);
}

void threads_fork_child(void)
{
	pthread_mutex_init(&registry_lock, NULL);
	struct slab_thread *self = sn_tls_thread;
	struct slab_thread *t = registry;
	while (t) {
		struct slab_thread *next = t->next;
		if (t != self) {
			thread_release_slots(t);
			thread_retire(t);
		}
		t = next;
	}
}
