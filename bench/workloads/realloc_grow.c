/*
 * realloc_grow - growable byte vectors that double and halve with realloc.
 *
 * NVEC vectors start at 16 bytes.  Each step picks a vector at random.
 * A growing vector appends 1..2048 bytes (a memset with a byte that is a
 * function of the vector's state), doubling its capacity with realloc
 * when full, until its capacity reaches its own limit (a power of two
 * between 4 KiB and 1 MiB, one in eight vectors aims at 256 KiB..1 MiB).
 * Then it shrinks: each step halves its length and reallocs the capacity
 * down to a power of two just above it, until it is below 64 bytes; then
 * it is freed (3 times in 4: a fresh malloc(16) takes its place) or kept
 * and grown again.  A vector that starts over draws a new limit.
 *
 * After every realloc the bytes at the start, the middle and the end of
 * the kept contents are folded into the checksum, so an allocator whose
 * realloc loses data prints a different checksum.
 *
 * Prints: steps, reallocs, and the checksum.
 */
#include "wl_common.h"

#define NVEC 96

struct vec {
	unsigned char *p;
	size_t len, cap, limit;
	int shrinking;
	uint32_t gen;
};

static uint64_t sum;
static unsigned long reallocs;

static void new_limit(struct vec *v, uint64_t *rng)
{
	unsigned shift = (wl_next(rng) & 7) == 0 ? (unsigned)wl_range(rng, 18, 20)
						   : (unsigned)wl_range(rng, 12, 16);
	v->limit = (size_t)1 << shift;
}

static void do_realloc(struct vec *v, size_t cap)
{
	v->p = wl_check(realloc(v->p, cap), cap, "realloc");
	v->cap = cap;
	reallocs++;
	if (v->len)
		sum = wl_fold(sum, v->p[0] | (uint64_t)v->p[v->len / 2] << 8 |
					   (uint64_t)v->p[v->len - 1] << 16 | (uint64_t)v->len << 24);
}

int main(int argc, char **argv)
{
	unsigned long steps = wl_scale(argc, argv, 1000000);
	uint64_t rng = 7;
	struct vec vs[NVEC];
	for (unsigned i = 0; i < NVEC; i++) {
		vs[i] = (struct vec){ .cap = 16, .gen = i };
		vs[i].p = wl_check(malloc(16), 16, "malloc");
		new_limit(&vs[i], &rng);
	}
	for (unsigned long s = 0; s < steps; s++) {
		struct vec *v = &vs[wl_next(&rng) % NVEC];
		if (!v->shrinking) {
			size_t n = wl_range(&rng, 1, 2048);
			if (v->len + n > v->limit) {
				v->shrinking = 1;
				continue;
			}
			if (v->len + n > v->cap) {
				size_t cap = v->cap;
				while (cap < v->len + n)
					cap *= 2;
				do_realloc(v, cap);
			}
			memset(v->p + v->len, (int)((v->gen * 31 + v->len) & 0xff), n);
			v->len += n;
		} else if (v->len >= 64) {
			v->len /= 2;
			size_t cap = 64;
			while (cap < v->len)
				cap *= 2;
			if (cap < v->cap)
				do_realloc(v, cap);
		} else {
			v->shrinking = 0;
			v->gen += NVEC;
			new_limit(v, &rng);
			if (wl_next(&rng) & 3) {
				sum = wl_fold(sum, v->len ? v->p[v->len - 1] : 0);
				free(v->p);
				v->p = wl_check(malloc(16), 16, "malloc");
				v->len = 0;
				v->cap = 16;
			}
		}
	}
	for (unsigned i = 0; i < NVEC; i++) {
		sum = wl_fold(sum, vs[i].len);
		free(vs[i].p);
	}
	printf("realloc_grow steps=%lu reallocs=%lu checksum=%016llx\n", steps, reallocs,
	       (unsigned long long)sum);
	return 0;
}
