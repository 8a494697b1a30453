/*
 * wl_common.h - bits shared by the preload_bench workloads: a seeded
 * PRNG, a checksum fold, and a die-on-NULL check.  Header-only; each
 * workload is one .c file built with `cc -O2` by bench/preload_bench.sh.
 *
 * Every workload is deterministic: the same seed gives the same sequence
 * of allocation sizes and the same contents, so the checksum it prints
 * must be identical under every allocator.  A different checksum means
 * an allocator returned memory that did not keep its contents (realloc)
 * or overlapped another live object.
 */
#ifndef WL_COMMON_H
#define WL_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* splitmix64: small, fast, good enough to drive allocation sizes. */
static inline uint64_t wl_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Uniform in [lo, hi]. */
static inline size_t wl_range(uint64_t *s, size_t lo, size_t hi)
{
	return lo + (size_t)(wl_next(s) % (uint64_t)(hi - lo + 1));
}

/* Order-dependent fold of a value into a running checksum. */
static inline uint64_t wl_fold(uint64_t h, uint64_t v)
{
	h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
	return h * 0x100000001b3ULL;
}

/* A stateless 64-bit mix (for keys and order-independent sums). */
static inline uint64_t wl_mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	return x ^ (x >> 33);
}

static inline void *wl_check(void *p, size_t n, const char *what)
{
	if (!p && n) {
		fprintf(stderr, "%s: out of memory (%zu bytes)\n", what, n);
		exit(3);
	}
	return p;
}

/* Scale factor from argv[1] (percent, default 100), to tune run time. */
static inline unsigned long wl_scale(int argc, char **argv, unsigned long n)
{
	if (argc > 1) {
		long pct = strtol(argv[1], NULL, 10);
		if (pct > 0)
			n = n * (unsigned long)pct / 100;
	}
	return n ? n : 1;
}

#endif
