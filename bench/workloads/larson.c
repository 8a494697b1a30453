/*
 * larson - server-style churn: four worker threads replace the blocks of
 * slot arrays, and the arrays travel between the threads, so most blocks
 * are freed by a thread other than the one that allocated them.
 *
 * There are 8 arrays ("connections") of 2048 slots, each filled at start
 * with blocks of 8..1000 bytes. A worker takes an array from a shared
 * FIFO (mutex + condvar), does 512 steps on it, and puts it back at the
 * tail; the next worker to take it is usually another one. A step picks
 * a random slot, checks and frees its block and allocates a new one of a
 * random size there, writing a tag at both ends (one, at 8 bytes). Each array goes round
 * 600 times (2.5 M steps in all); then the arrays are drained.
 *
 * Each array carries its own random state and checksum, so what happens
 * to an array, and its checksum, does not depend on which thread runs it
 * or when: the printed checksums are the same under every allocator and
 * every scheduling. How many frees were cross-thread does depend on the
 * scheduling; it goes to stderr.
 *
 * Optional argument: a scale in percent of the rounds (default 100).
 */
#include "wl_common.h"
#include <pthread.h>

#define NTHREADS 4
#define NARRAYS 8
#define SLOTS 2048
#define STEPS 512   /* per visit of an array: 1/4 of its slots */
#define ROUNDS 600  /* visits of each array */
#define MINSZ 8
#define MAXSZ 1000

struct array {
	uint64_t rng;
	uint64_t sum;
	unsigned long rounds_done;
	unsigned long bad;
	unsigned char *p[SLOTS];
	uint16_t sz[SLOTS];
	uint8_t owner[SLOTS]; /* the thread that allocated the block */
};

static struct array arrays[NARRAYS];
static unsigned long rounds;

/* The FIFO of arrays waiting for a worker. */
static pthread_mutex_t q_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t q_cond = PTHREAD_COND_INITIALIZER;
static struct array *q[NARRAYS];
static unsigned q_head, q_len, finished;

static unsigned long cross[NTHREADS], frees[NTHREADS]; /* written once, at a worker's end */

static unsigned char *new_block(struct array *a, unsigned slot, unsigned me)
{
	uint64_t r = wl_next(&a->rng);
	size_t n = MINSZ + (size_t)(r % (MAXSZ - MINSZ + 1));
	unsigned char *p = wl_check(malloc(n), n, "larson");
	uint64_t tag = (r & 0xffffffffffffULL) | (uint64_t)slot << 48;
	memcpy(p, &tag, 8);
	if (n > 8)
		p[n - 1] = (unsigned char)(tag >> 8);
	a->p[slot] = p;
	a->sz[slot] = (uint16_t)n;
	a->owner[slot] = (uint8_t)me;
	return p;
}

/* Check and free the block of @slot; 1 if thread @me did not allocate it. */
static int free_block(struct array *a, unsigned slot, unsigned me)
{
	unsigned char *p = a->p[slot];
	size_t n = a->sz[slot];
	uint64_t tag;
	memcpy(&tag, p, 8);
	if ((tag >> 48) != slot || (n > 8 && p[n - 1] != (unsigned char)(tag >> 8)))
		a->bad++;
	a->sum = wl_fold(a->sum, tag ^ n);
	free(p);
	return a->owner[slot] != me;
}

static struct array *take(void)
{
	pthread_mutex_lock(&q_lock);
	while (q_len == 0 && finished < NARRAYS)
		pthread_cond_wait(&q_cond, &q_lock);
	struct array *a = NULL;
	if (q_len) {
		a = q[q_head];
		q_head = (q_head + 1) % NARRAYS;
		q_len--;
	}
	pthread_mutex_unlock(&q_lock);
	return a;
}

static void give_back(struct array *a)
{
	pthread_mutex_lock(&q_lock);
	if (a->rounds_done == rounds) {
		if (++finished == NARRAYS)
			pthread_cond_broadcast(&q_cond);
	} else {
		q[(q_head + q_len) % NARRAYS] = a;
		q_len++;
		pthread_cond_signal(&q_cond);
	}
	pthread_mutex_unlock(&q_lock);
}

static void *worker(void *arg)
{
	unsigned me = (unsigned)(uintptr_t)arg;
	unsigned long nfree = 0, ncross = 0;
	struct array *a;
	while ((a = take())) {
		for (unsigned s = 0; s < STEPS; s++) {
			unsigned slot = (unsigned)(wl_next(&a->rng) % SLOTS);
			ncross += (unsigned long)free_block(a, slot, me);
			new_block(a, slot, me);
		}
		nfree += STEPS;
		a->rounds_done++;
		give_back(a);
	}
	frees[me] = nfree;
	cross[me] = ncross;
	return NULL;
}

int main(int argc, char **argv)
{
	rounds = wl_scale(argc, argv, ROUNDS);
	for (unsigned i = 0; i < NARRAYS; i++) {
		struct array *a = &arrays[i];
		a->rng = 0x1a250a00 + i;
		for (unsigned s = 0; s < SLOTS; s++)
			new_block(a, s, NTHREADS); /* the main thread */
		q[i] = a;
	}
	q_len = NARRAYS;

	pthread_t th[NTHREADS];
	for (unsigned i = 0; i < NTHREADS; i++)
		if (pthread_create(&th[i], NULL, worker, (void *)(uintptr_t)i)) {
			fprintf(stderr, "larson: pthread_create failed\n");
			return 3;
		}
	for (unsigned i = 0; i < NTHREADS; i++)
		pthread_join(th[i], NULL);

	uint64_t total = 0;
	unsigned long bad = 0;
	for (unsigned i = 0; i < NARRAYS; i++) {
		struct array *a = &arrays[i];
		for (unsigned s = 0; s < SLOTS; s++)
			free_block(a, s, NTHREADS);
		total = wl_fold(total, a->sum);
		bad += a->bad;
	}
	unsigned long nf = 0, nc = 0;
	for (unsigned i = 0; i < NTHREADS; i++) {
		nf += frees[i];
		nc += cross[i];
	}
	printf("larson threads=%d arrays=%d slots=%d steps=%lu checksum=%016llx bad=%lu\n",
	       NTHREADS, NARRAYS, SLOTS, (unsigned long)NARRAYS * rounds * STEPS,
	       (unsigned long long)total, bad);
	fprintf(stderr, "larson: %.1f%% of the workers' frees were of blocks another thread allocated\n",
		nf ? 100.0 * (double)nc / (double)nf : 0.0);
	return bad != 0;
}
