/*
 * thread_fork.c - threads allocating while the main thread forks.
 *
 * NTHREADS workers each run a fixed sequence of malloc/realloc/free over
 * a private table of blocks, filling every block with a pattern and
 * checking it before freeing (a block handed out twice, or trampled,
 * breaks the check). Meanwhile the main thread forks NCHILD children;
 * each child, born with the allocator possibly mid-operation in another
 * thread, allocates and checks on its own and exits. The summary depends
 * only on the fixed sequences, so it is the same under any allocator.
 * Build: cc -O2 -pthread thread_fork.c
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define NTHREADS 4
#define NCHILD 8
#define SLOTS 512
#define OPS 200000

struct block {
	unsigned char *p;
	size_t size;
	unsigned char tag;
};

static uint32_t next_rand(uint32_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 17;
	*x ^= *x << 5;
	return *x;
}

/* Mostly small sizes, some medium, a few past the slab classes. */
static size_t pick_size(uint32_t r)
{
	switch (r % 16) {
	case 0:  return 70000 + r % 100000;
	case 1: case 2: return 1024 + r % 16384;
	default: return 1 + r % 512;
	}
}

static int check(const struct block *b)
{
	for (size_t i = 0; i < b->size; i += 61)
		if (b->p[i] != b->tag)
			return 0;
	return b->p[b->size - 1] == b->tag;
}

static void fill(struct block *b, unsigned char tag)
{
	b->tag = tag;
	memset(b->p, tag, b->size);
}

/* One worker's (or child's) whole sequence; returns a checksum, or 0
 * on a corrupted block or a failed allocation. */
static uint64_t churn(uint32_t seed, int ops)
{
	struct block *t = calloc(SLOTS, sizeof(*t));
	uint64_t sum = 0;
	uint32_t x = seed;
	int bad = !t;

	for (int i = 0; i < ops && !bad; i++) {
		uint32_t r = next_rand(&x);
		struct block *b = &t[r % SLOTS];
		if (b->p && !check(b)) {
			bad = 1;
			break;
		}
		sum += b->size;
		if (b->p && r % 3 == 0) {         /* grow or shrink in place */
			size_t n = pick_size(next_rand(&x));
			unsigned char *q = realloc(b->p, n);
			if (!q) { bad = 1; break; }
			size_t keep = n < b->size ? n : b->size;
			for (size_t k = 0; k < keep; k += 61)
				if (q[k] != b->tag) bad = 1;
			b->p = q;
			b->size = n;
			fill(b, (unsigned char)r);
		} else if (b->p) {
			free(b->p);
			b->p = NULL;
			b->size = 0;
		} else {
			b->size = pick_size(r);
			b->p = malloc(b->size);
			if (!b->p) { bad = 1; break; }
			fill(b, (unsigned char)(r >> 8));
		}
	}
	for (int i = 0; t && i < SLOTS; i++) {
		if (t[i].p && !check(&t[i]))
			bad = 1;
		free(t[i].p);
	}
	free(t);
	return bad ? 0 : sum;
}

static void *worker(void *arg)
{
	uint64_t *result = arg;
	*result = churn((uint32_t)*result, OPS);
	return NULL;
}

static int child_ok(pid_t pid)
{
	int st;
	return waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

int main(void)
{
	pthread_t th[NTHREADS];
	uint64_t result[NTHREADS];
	pid_t kids[NCHILD];
	int ok_children = 0;

	for (int i = 0; i < NTHREADS; i++) {
		result[i] = 1000u + (uint64_t)i * 7919u; /* the seed goes in */
		if (pthread_create(&th[i], NULL, worker, &result[i]) != 0) {
			perror("pthread_create");
			return 1;
		}
	}
	fflush(stdout);
	for (int i = 0; i < NCHILD; i++) {
		usleep(2000);
		kids[i] = fork();
		if (kids[i] < 0) {
			perror("fork");
			return 1;
		}
		if (kids[i] == 0)
			exit(churn(424242u + (uint32_t)i, 20000) ? 0 : 1);
	}
	for (int i = 0; i < NCHILD; i++)
		ok_children += child_ok(kids[i]);
	for (int i = 0; i < NTHREADS; i++)
		pthread_join(th[i], NULL);

	int ok_threads = 0;
	uint64_t total = 0;
	for (int i = 0; i < NTHREADS; i++) {
		ok_threads += result[i] != 0;
		total += result[i];
	}
	printf("threads: %d of %d ok, %d ops each, checksum %llu\n", ok_threads,
	       NTHREADS, OPS, (unsigned long long)total);
	printf("children: %d of %d ok\n", ok_children, NCHILD);
	return ok_threads == NTHREADS && ok_children == NCHILD ? 0 : 1;
}
