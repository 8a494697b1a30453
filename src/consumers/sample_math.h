/*
 * sample_math.h - the two functions the heap profile's sampling needs,
 * without libm.
 *
 * The drop-in does not link libm: a preloaded libm is mapped and paged
 * into every process, about 300 KB of RSS in a program that does not use
 * it (bintree, git), for two calls that only --profile's sampling makes.
 * Both are exact to a few units in 1e-14, far below what sampling needs.
 */
#ifndef SLABNOTIFY_SAMPLE_MATH_H
#define SLABNOTIFY_SAMPLE_MATH_H

#include <stdint.h>
#include <string.h>

#define SAMPLE_LN2 0.69314718055994530942

/* ln(x) for a normal x > 0. With x = m 2^e, m in [sqrt(1/2), sqrt(2)):
 * ln x = e ln 2 + 2 atanh(s), s = (m - 1) / (m + 1), |s| < 0.172, whose
 * odd series is summed to s^15 (the next term is below 3e-14 of it). */
static inline double sample_ln(double x)
{
	uint64_t u;
	memcpy(&u, &x, sizeof(u));
	int e = (int)((u >> 52) & 0x7ff) - 1023;
	u = (u & 0x000fffffffffffffULL) | 0x3ff0000000000000ULL;
	double m;
	memcpy(&m, &u, sizeof(m));
	if (m > 1.41421356237309504880) {
		m *= 0.5;
		e++;
	}
	double s = (m - 1) / (m + 1), s2 = s * s;
	double t = 1.0 / 15;
	for (int k = 13; k >= 1; k -= 2)
		t = 1.0 / k + s2 * t;
	return e * SAMPLE_LN2 + 2 * s * t;
}

/* 1 - e^-y for y >= 0, without cancellation for small y: there by its
 * series; else e^-y = 2^-k e^-r (k = y / ln 2 rounded, |r| <= ln 2 / 2),
 * e^-r by its Taylor series to r^16. */
static inline double sample_one_minus_exp_neg(double y)
{
	if (y < 1e-3)
		return y * (1 - y / 2 * (1 - y / 3 * (1 - y / 4 * (1 - y / 5))));
	if (y > 700)
		return 1;
	int k = (int)(y / SAMPLE_LN2 + 0.5);
	double r = y - k * SAMPLE_LN2, acc = 1;
	for (int i = 16; i >= 1; i--)
		acc = 1 - r / i * acc;
	uint64_t u;
	memcpy(&u, &acc, sizeof(u));
	u -= (uint64_t)k << 52;   /* acc in [0.7, 1.42]: 2^-1010 at worst, still normal */
	memcpy(&acc, &u, sizeof(acc));
	return 1 - acc;
}

#endif /* SLABNOTIFY_SAMPLE_MATH_H */
