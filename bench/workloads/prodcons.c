/*
 * prodcons - four threads in a ring pass objects to each other, so that
 * nearly every object is freed by a thread other than the one that
 * allocated it.
 *
 * Thread i allocates objects of mixed sizes (60% 16..128 B, 30% 129..1024,
 * 10% 1025..4096), writes a tag at both ends, keeps some of them in a
 * private working set of 4096 slots for a while (replacing a random slot
 * and passing on the displaced object instead), and hands objects to
 * thread (i+1) % 4 in batches of 64 pointers.  Batches are themselves
 * malloc'd (~1.5 KiB) and freed by the receiver.  Thread i receives from
 * thread (i+3) % 4, checks the tags and frees.  Queues are mutex + condvar
 * lists; a producer whose outgoing queue holds QMAX batches drains its own
 * incoming queue first, which bounds the memory in flight.
 *
 * The sizes each thread allocates and the contents are a function of the
 * thread index only, so the per-thread checksums (and their sum) do not
 * depend on the scheduling.
 *
 * Prints: objects per thread and the checksum of every object received.
 */
#include "wl_common.h"
#include <pthread.h>

#define NTHREADS 4
#define BATCH 64
#define QMAX 32
#define WSET 4096

struct batch {
	struct batch *next;
	unsigned n;
	void *p[BATCH];
	uint32_t sz[BATCH];
};

struct queue {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct batch *head, *tail;
	unsigned len;
};

static struct queue q[NTHREADS];
static unsigned long per_thread;
static uint64_t result[NTHREADS];

static void push(struct queue *qu, struct batch *b)
{
	b->next = NULL;
	pthread_mutex_lock(&qu->lock);
	if (qu->tail)
		qu->tail->next = b;
	else
		qu->head = b;
	qu->tail = b;
	qu->len++;
	pthread_cond_signal(&qu->cond);
	pthread_mutex_unlock(&qu->lock);
}

static unsigned qlen(struct queue *qu)
{
	pthread_mutex_lock(&qu->lock);
	unsigned n = qu->len;
	pthread_mutex_unlock(&qu->lock);
	return n;
}

/* Pop one batch; wait for it if `wait`, else NULL when empty. */
static struct batch *pop(struct queue *qu, int wait)
{
	pthread_mutex_lock(&qu->lock);
	while (!qu->head && wait)
		pthread_cond_wait(&qu->cond, &qu->lock);
	struct batch *b = qu->head;
	if (b) {
		qu->head = b->next;
		if (!qu->head)
			qu->tail = NULL;
		qu->len--;
	}
	pthread_mutex_unlock(&qu->lock);
	return b;
}

static size_t pick_size(uint64_t *rng)
{
	uint64_t r = wl_next(rng);
	unsigned c = (unsigned)(r % 100);
	r >>= 8;
	if (c < 60)
		return 16 + r % 113;
	if (c < 90)
		return 129 + r % 896;
	return 1025 + r % 3072;
}

static uint64_t consume(struct batch *b, unsigned long *got)
{
	uint64_t sum = 0;
	for (unsigned i = 0; i < b->n; i++) {
		unsigned char *p = b->p[i];
		size_t n = b->sz[i];
		uint64_t tag;
		memcpy(&tag, p, 8);
		sum += wl_mix(tag ^ p[n - 1] ^ n);
		free(p);
	}
	*got += b->n;
	free(b);
	return sum;
}

static void *thread_main(void *arg)
{
	unsigned me = (unsigned)(uintptr_t)arg;
	struct queue *out = &q[(me + 1) % NTHREADS], *in = &q[me];
	uint64_t rng = 1000 + me, sum = 0;
	unsigned long made = 0, got = 0, sent = 0;
	void *ws[WSET];
	uint32_t wsz[WSET];
	unsigned wn = 0;
	struct batch *cur = NULL;

	while (sent < per_thread || got < per_thread) {
		if (sent < per_thread && qlen(out) < QMAX) {
			/* Make (up to) one batch. */
			if (!cur) {
				cur = wl_check(malloc(sizeof(*cur)), sizeof(*cur), "batch");
				cur->n = 0;
			}
			while (cur->n < BATCH && made < per_thread) {
				size_t n = pick_size(&rng);
				unsigned char *p = wl_check(malloc(n), n, "object");
				uint64_t tag = wl_next(&rng);
				memcpy(p, &tag, 8);
				p[n - 1] = (unsigned char)tag;
				made++;
				if (wn < WSET) {
					ws[wn] = p;
					wsz[wn++] = (uint32_t)n;
					continue;
				}
				unsigned k = (unsigned)(tag >> 40) % WSET;
				cur->p[cur->n] = ws[k];
				cur->sz[cur->n++] = wsz[k];
				ws[k] = p;
				wsz[k] = (uint32_t)n;
			}
			if (made == per_thread) {
				/* Flush the working set with the last batches. */
				while (wn && cur->n < BATCH) {
					wn--;
					cur->p[cur->n] = ws[wn];
					cur->sz[cur->n++] = wsz[wn];
				}
			}
			if (cur->n == BATCH || (made == per_thread && wn == 0)) {
				sent += cur->n;
				push(out, cur);
				cur = NULL;
			}
			/* Take whatever is already there, without waiting. */
			struct batch *b;
			while ((b = pop(in, 0)))
				sum += consume(b, &got);
		} else if (got < per_thread) {
			sum += consume(pop(in, 1), &got);
		} else {
			/* Nothing to receive; wait for room in the queue. */
			sched_yield();
		}
	}
	result[me] = sum;
	return NULL;
}

int main(int argc, char **argv)
{
	per_thread = wl_scale(argc, argv, 2000000);
	pthread_t th[NTHREADS];
	for (unsigned i = 0; i < NTHREADS; i++) {
		pthread_mutex_init(&q[i].lock, NULL);
		pthread_cond_init(&q[i].cond, NULL);
	}
	for (unsigned i = 0; i < NTHREADS; i++)
		if (pthread_create(&th[i], NULL, thread_main, (void *)(uintptr_t)i)) {
			fprintf(stderr, "prodcons: pthread_create failed\n");
			return 3;
		}
	uint64_t total = 0;
	for (unsigned i = 0; i < NTHREADS; i++) {
		pthread_join(th[i], NULL);
		total += result[i];
	}
	printf("prodcons threads=%d objects=%lu checksum=%016llx %016llx %016llx %016llx %016llx\n",
	       NTHREADS, per_thread, (unsigned long long)total, (unsigned long long)result[0],
	       (unsigned long long)result[1], (unsigned long long)result[2],
	       (unsigned long long)result[3]);
	return 0;
}
