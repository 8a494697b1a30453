/*
 * test_sample_math.c - the profile's sampling math without libm
 * (src/consumers/sample_math.h) against libm's, over the ranges the
 * sampling uses: ln of uniform draws in (0, 1), and 1 - e^-y for a
 * block's share of the mean gap, from one byte of a 512 KiB mean to
 * far more than one mean.
 */
#include <criterion/criterion.h>

#include "consumers/sample_math.h"

#include <math.h>
#include <stdint.h>

static double rel_err(double got, double want)
{
	return fabs(got - want) / fabs(want);
}

Test(sample_math, ln_matches_libm_over_the_unit_interval)
{
	uint64_t x = 88172645463325252ULL;
	double worst = 0;
	for (int i = 0; i < 200000; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		double u = ((double)(x >> 11) + 0.5) / 9007199254740992.0;
		double e = rel_err(sample_ln(u), log(u));
		worst = e > worst ? e : worst;
	}
	cr_assert_lt(worst, 1e-13, "worst relative error %g", worst);
	/* The ends and the seams of the reduction. */
	const double at[] = { 0.5 / 9007199254740992.0, 1e-300, 0.25, 0.5, 0.70710678118654752,
			      0.70710678118654758, 0.999999, 1 - 1e-16, 2, 1e10 };
	for (unsigned i = 0; i < sizeof(at) / sizeof(at[0]); i++)
		cr_assert_lt(fabs(sample_ln(at[i]) - log(at[i])), 1e-13 * (1 + fabs(log(at[i]))),
			     "ln(%g): %.17g, libm %.17g", at[i], sample_ln(at[i]), log(at[i]));
	cr_assert_eq(sample_ln(1.0), 0.0);
}

Test(sample_math, one_minus_exp_neg_matches_expm1)
{
	double worst = 0, worst_at = 0;
	for (double y = 1.0 / (512 * 1024); y < 800; y *= 1.0007) {
		double e = rel_err(sample_one_minus_exp_neg(y), -expm1(-y));
		if (e > worst)
			worst = e, worst_at = y;
	}
	cr_assert_lt(worst, 1e-13, "worst relative error %g at y = %g", worst, worst_at);
	const double at[] = { 1e-12, 9.99e-4, 1e-3, 1.0000001e-3, 0.34657359, 0.5, 1, 40, 699, 701, 1e6 };
	for (unsigned i = 0; i < sizeof(at) / sizeof(at[0]); i++)
		cr_assert_lt(rel_err(sample_one_minus_exp_neg(at[i]), -expm1(-at[i])), 1e-13, "y = %g", at[i]);
}
