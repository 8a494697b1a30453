/*
 * quarantine.c - freed, poisoned debug objects wait here before their
 * slots go back to their caches, so that a write long after free finds
 * the poison still there to be checked.
 *
 * One FIFO for the process, bounded twice: QUAR_SLOTS objects, and a
 * number of bytes (QUAR_BYTES, or less under a memory limit: the slots
 * stay charged while they wait). The lock is a leaf: the oldest object
 * is taken out under it and checked and released after, so that a
 * report or the core's free never runs with it held; the core's fork
 * handlers take it (debug/fork.c) so that the child finds it free.
 */
#include "debug.h"

#include <pthread.h>

#define QUAR_SLOTS (1u << 16)
#define QUAR_BYTES ((size_t)16 << 20)

static struct {
	struct sn_mutex lock;
	uint32_t head, count;     /* oldest at head */
	size_t bytes, limit;
} q = { .lock = SN_MUTEX_INIT(SN_RANK_QUARANTINE), .limit = QUAR_BYTES };
/* Under q.lock. Apart from q: zero-initialised, it is in .bss (anonymous
 * pages, touched only under --debug), not 512 KiB of the drop-in's .data,
 * file-backed pages that a read nearby maps in every process. */
static void *ring[QUAR_SLOTS];

static void q_lock(void)
{
	sn_lock(&q.lock);
}

static void q_unlock(void)
{
	sn_unlock(&q.lock);
}

void quarantine_fork_prepare(void)
{
	pthread_mutex_lock(&q.lock.m);
}

void quarantine_fork_parent(void)
{
	pthread_mutex_unlock(&q.lock.m);
}

void quarantine_fork_child(void)
{
	sn_mutex_reinit(&q.lock);
}

void quarantine_set_limit(size_t bytes)
{
	q_lock();
	q.limit = bytes < QUAR_BYTES ? bytes : QUAR_BYTES;
	q_unlock();
}

static size_t slot_bytes(const void *slot)
{
	return slab_of(slot)->cache->size;
}

/* Under the lock: take the oldest object out. */
static void *q_pop(void)
{
	void *slot = ring[q.head];
	q.head = (q.head + 1) % QUAR_SLOTS;
	q.count--;
	q.bytes -= slot_bytes(slot);
	return slot;
}

static void evict(const char *fn, void *slot)
{
	struct slab_cache *c = slab_of(slot)->cache;
	dbg_check_freed(fn, c, slot, false);
	dbg_release(fn, c, slot);
}

void quarantine_put(const char *fn, struct slab_cache *c, void *slot)
{
	size_t bytes = c->size;
	void *out[2];
	unsigned n = 0;
	q_lock();
	/* Room for one: by count, then by bytes (at most two out per put
	 * keeps a free's cost bounded; the ring catches up over later ones). */
	if (q.count == QUAR_SLOTS)
		out[n++] = q_pop();
	while (n < 2 && q.count && q.bytes + bytes > q.limit)
		out[n++] = q_pop();
	ring[(q.head + q.count) % QUAR_SLOTS] = slot;
	q.count++;
	q.bytes += bytes;
	q_unlock();
	for (unsigned i = 0; i < n; i++)
		evict(fn, out[i]);
}

unsigned long quarantine_drain(void)
{
	unsigned long n = 0;
	for (;;) {
		q_lock();
		void *slot = q.count ? q_pop() : NULL;
		q_unlock();
		if (!slot)
			return n;
		evict("exit", slot);
		n++;
	}
}
