/*
 * A minimal stand-in for Criterion, used only by the TSan build.
 *
 * Criterion's sandbox (BoxFort) maps its shared arena at a random fixed
 * address that ThreadSanitizer's memory layout refuses, so a TSan-built
 * Criterion binary aborts before running a test ("Could not initialize
 * inheritable arena", Criterion issue #274). This header implements the
 * subset of Criterion's API our tests use, with the same meaning: each
 * test runs in its own forked process, .signal/.exit_code/.init/.fini/
 * .timeout/.disabled work, TestSuite options apply to their tests, and
 * the run ends with Criterion's "Synthesis" line. Tests compile
 * unchanged against either.
 */
#ifndef SN_TSAN_CRITERION_H
#define SN_TSAN_CRITERION_H

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

struct criterion_test_extra_data {
	int sentinel_;
	int signal;
	int exit_code;
	double timeout;
	bool disabled;
	const char *description;
	void (*init)(void);
	void (*fini)(void);
};

struct sn_shim_test {
	const char *suite, *name;
	void (*fn)(void);
	struct criterion_test_extra_data *data;
	struct sn_shim_test *next;
};

struct sn_shim_suite {
	const char *name;
	struct criterion_test_extra_data *data;
	struct sn_shim_suite *next;
};

void sn_shim_register(struct sn_shim_test *t);
void sn_shim_register_suite(struct sn_shim_suite *s);
void sn_shim_fail(const char *file, int line, const char *expr, const char *fmt, ...)
	__attribute__((noreturn, format(printf, 4, 5)));
void sn_shim_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define Test(suite, name, ...)                                                         \
	static void suite##_##name##_fn(void);                                         \
	static struct criterion_test_extra_data suite##_##name##_data = {              \
		.sentinel_ = 0, __VA_ARGS__                                            \
	};                                                                             \
	static struct sn_shim_test suite##_##name##_test = {                           \
		#suite, #name, suite##_##name##_fn, &suite##_##name##_data, NULL       \
	};                                                                             \
	__attribute__((constructor)) static void suite##_##name##_reg(void)            \
	{                                                                              \
		sn_shim_register(&suite##_##name##_test);                              \
	}                                                                              \
	static void suite##_##name##_fn(void)

#define TestSuite(suite, ...)                                                          \
	static struct criterion_test_extra_data suite##_suite_data = {                 \
		.sentinel_ = 0, __VA_ARGS__                                            \
	};                                                                             \
	static struct sn_shim_suite suite##_suite = { #suite, &suite##_suite_data, NULL }; \
	__attribute__((constructor)) static void suite##_suite_reg(void)               \
	{                                                                              \
		sn_shim_register_suite(&suite##_suite);                                \
	}

#define cr_assert(cond, ...)                                                           \
	do {                                                                           \
		if (!(cond))                                                           \
			sn_shim_fail(__FILE__, __LINE__, #cond, " " __VA_ARGS__);       \
	} while (0)
#define cr_expect(cond, ...)        cr_assert(cond, __VA_ARGS__)
#define cr_assert_fail(...)         sn_shim_fail(__FILE__, __LINE__, "fail", " " __VA_ARGS__)
#define cr_assert_eq(a, b, ...)     cr_assert((a) == (b), __VA_ARGS__)
#define cr_assert_neq(a, b, ...)    cr_assert((a) != (b), __VA_ARGS__)
#define cr_assert_lt(a, b, ...)     cr_assert((a) < (b), __VA_ARGS__)
#define cr_assert_leq(a, b, ...)    cr_assert((a) <= (b), __VA_ARGS__)
#define cr_assert_gt(a, b, ...)     cr_assert((a) > (b), __VA_ARGS__)
#define cr_assert_geq(a, b, ...)    cr_assert((a) >= (b), __VA_ARGS__)
#define cr_assert_null(a, ...)      cr_assert((a) == NULL, __VA_ARGS__)
#define cr_assert_not_null(a, ...)  cr_assert((a) != NULL, __VA_ARGS__)
#define cr_assert_str_eq(a, b, ...) cr_assert(strcmp((a), (b)) == 0, __VA_ARGS__)
#define cr_assert_str_neq(a, b, ...) cr_assert(strcmp((a), (b)) != 0, __VA_ARGS__)
#define cr_assert_not(cond, ...)    cr_assert(!(cond), __VA_ARGS__)
#define cr_expect_eq   cr_assert_eq
#define cr_expect_neq  cr_assert_neq
#define cr_expect_lt   cr_assert_lt
#define cr_expect_leq  cr_assert_leq
#define cr_expect_gt   cr_assert_gt
#define cr_expect_geq  cr_assert_geq
#define cr_expect_null cr_assert_null
#define cr_expect_not_null cr_assert_not_null
#define cr_expect_str_eq cr_assert_str_eq
#define cr_log_info(...)  sn_shim_log(__VA_ARGS__)
#define cr_log_warn(...)  sn_shim_log(__VA_ARGS__)
#define cr_log_error(...) sn_shim_log(__VA_ARGS__)
#define cr_skip_test(...) do { sn_shim_log("skipped"); _exit(0); } while (0)

#endif
