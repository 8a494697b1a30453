/*
 * test_failslab.c - fault injection (src/failslab.c): every knob of
 * struct slab_fault_attr, the NOFAIL bypass, NEWPAGE never vetoed, the
 * switching of notification on existing caches, reproducibility by seed,
 * bad attributes, stopping, and many threads at once.
 *
 * Criterion runs every Test() in a fresh process, so the injection state
 * and slab_fault_injected() start from zero in each.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <slabnotify.h>

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* Helpers                                                            */
/* ------------------------------------------------------------------ */

static struct slab_cache *mkcache(const char *name, size_t size, slab_flags_t flags)
{
	struct slab_cache *c = slab_cache_create(name, size, 0, flags, NULL);
	cr_assert_not_null(c, "slab_cache_create(%s) failed: %s", name, strerror(errno));
	return c;
}

static void inject_ok(const struct slab_fault_attr *a)
{
	int rc = slab_fault_inject(a);
	cr_assert_eq(rc, 0, "slab_fault_inject() = %d (%s)", rc, strerror(-rc));
}

static struct slab_fault_attr attr(double prob)
{
	struct slab_fault_attr a = { .probability = prob, .interval = 1, .times = -1, .seed = 1 };
	return a;
}

/* Allocate @n objects one at a time; record in @failed[i] whether the
 * i-th failed (errno must be ENOMEM); free the successes at the end.
 * Returns the number of failures. */
static unsigned alloc_pattern(struct slab_cache *c, unsigned n, slab_gfp_t gfp, bool *failed)
{
	void **objs = calloc(n, sizeof(void *));
	cr_assert_not_null(objs);
	unsigned fails = 0;
	for (unsigned i = 0; i < n; i++) {
		errno = 0;
		objs[i] = slab_cache_alloc(c, gfp);
		if (!objs[i]) {
			cr_assert_eq(errno, ENOMEM, "allocation %u failed with errno %d", i, errno);
			fails++;
		}
		if (failed)
			failed[i] = !objs[i];
	}
	for (unsigned i = 0; i < n; i++)
		slab_cache_free(c, objs[i]);
	free(objs);
	return fails;
}

static unsigned long active_objs(struct slab_cache *c)
{
	struct slab_cache_info in;
	cr_assert_eq(slab_cache_info(c, &in), 0);
	return in.active_objs;
}

struct find_arg {
	const char *name;
	struct slab_cache *found;
};

static void find_fn(struct slab_cache *c, void *arg)
{
	struct find_arg *f = arg;
	if (!strcmp(slab_cache_name(c), f->name))
		f->found = c;
}

static struct slab_cache *find_cache(const char *name)
{
	struct find_arg f = { name, NULL };
	slab_cache_for_each(find_fn, &f);
	return f.found;
}

/* A low-priority accounting handler: sees only what failslab let by. */
static _Atomic long seen_alloc, seen_free, seen_newpage;

static int counter_call(struct slab_notifier *nb, enum slab_event ev, const struct slab_event_data *d)
{
	(void)nb;
	(void)d;
	switch (ev) {
	case SLAB_EVENT_ALLOC: atomic_fetch_add(&seen_alloc, 1); break;
	case SLAB_EVENT_FREE: atomic_fetch_add(&seen_free, 1); break;
	case SLAB_EVENT_NEWPAGE: atomic_fetch_add(&seen_newpage, 1); break;
	default: break;
	}
	return SLAB_NOTIFY_OK;
}

static struct slab_notifier counter_nb = { .call = counter_call, .priority = 0 };

/* ------------------------------------------------------------------ */
/* Attributes                                                         */
/* ------------------------------------------------------------------ */

Test(failslab, bad_attr_is_einval)
{
	double bad[] = { -1.0, -0.0001, 100.0001, 1000.0, NAN, -INFINITY, INFINITY };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct slab_fault_attr a = attr(bad[i]);
		errno = 0;
		int rc = slab_fault_inject(&a);
		cr_expect_eq(rc, -EINVAL, "probability %g: rc %d", bad[i], rc);
		cr_expect_eq(errno, EINVAL, "probability %g: errno %d", bad[i], errno);
	}
	/* Nothing was started: allocations go through. */
	struct slab_cache *c = mkcache("fs-bad", 64, SLAB_NOTIFY);
	cr_expect_eq(alloc_pattern(c, 100, 0, NULL), 0);
	cr_expect_eq(slab_fault_injected(), 0);
	/* The bounds themselves are valid. */
	struct slab_fault_attr lo = attr(0.0), hi = attr(100.0);
	cr_expect_eq(slab_fault_inject(&lo), 0);
	cr_expect_eq(slab_fault_inject(&hi), 0);
	cr_expect_eq(slab_fault_inject(NULL), 0);
}

Test(failslab, stop_when_not_started)
{
	cr_expect_eq(slab_fault_inject(NULL), 0);
	cr_expect_eq(slab_fault_inject(NULL), 0);
}

Test(failslab, probability_zero_never_fails)
{
	struct slab_cache *c = mkcache("fs-p0", 64, SLAB_NOTIFY);
	struct slab_fault_attr a = attr(0);
	inject_ok(&a);
	cr_expect_eq(alloc_pattern(c, 5000, 0, NULL), 0);
	cr_expect_eq(slab_fault_injected(), 0);
}

Test(failslab, probability_hundred_always_fails)
{
	struct slab_cache *c = mkcache("fs-p100", 64, SLAB_NOTIFY);
	struct slab_fault_attr a = attr(100);
	inject_ok(&a);
	cr_expect_eq(alloc_pattern(c, 1000, 0, NULL), 1000);
	cr_expect_eq(slab_fault_injected(), 1000);
	/* A vetoed object went back: nothing is live. */
	cr_expect_eq(active_objs(c), 0);
	/* slab_malloc too (the kmalloc caches were switched on). */
	errno = 0;
	cr_expect_null(slab_malloc(100, 0));
	cr_expect_eq(errno, ENOMEM);
	cr_expect_null(slab_malloc(200000, 0), "kmalloc-large is switched on too");
	cr_expect_eq(slab_fault_injected(), 1002);
}

Test(failslab, probability_half)
{
	struct slab_cache *c = mkcache("fs-p50", 64, SLAB_NOTIFY);
	struct slab_fault_attr a = attr(50);
	a.seed = 12345;
	inject_ok(&a);
	unsigned fails = alloc_pattern(c, 10000, 0, NULL);
	cr_expect(fails > 4500 && fails < 5500, "50%%: %u failures of 10000", fails);
	cr_expect_eq(slab_fault_injected(), fails);

	a.probability = 12.5;
	inject_ok(&a);
	unsigned f2 = alloc_pattern(c, 10000, 0, NULL);
	cr_expect(f2 > 1000 && f2 < 1500, "12.5%%: %u failures of 10000", f2);
}

Test(failslab, interval_every_nth)
{
	struct slab_cache *c = mkcache("fs-int", 64, SLAB_NOTIFY);
	struct slab_fault_attr a = attr(100);
	a.interval = 4;
	inject_ok(&a);
	bool failed[400];
	cr_expect_eq(alloc_pattern(c, 400, 0, failed), 100);
	for (unsigned i = 0; i < 400; i++)
		cr_expect_eq(failed[i], (i + 1) % 4 == 0, "call %u", i + 1);

	/* interval 0 and 1 mean every call. */
	a.interval = 0;
	inject_ok(&a);
	cr_expect_eq(alloc_pattern(c, 50, 0, NULL), 50);
	a.interval = 1;
	inject_ok(&a);
	cr_expect_eq(alloc_pattern(c, 50, 0, NULL), 50);
}

Test(failslab, interval_with_probability)
{
	struct slab_cache *c = mkcache("fs-intp", 64, SLAB_NOTIFY);
	struct slab_fault_attr a = attr(50);
	a.interval = 10;
	a.seed = 7;
	inject_ok(&a);
	bool failed[20000];
	unsigned fails = alloc_pattern(c, 20000, 0, failed);
	for (unsigned i = 0; i < 20000; i++)
		if (failed[i])
			cr_assert_eq((i + 1) % 10, 0, "call %u failed off the interval", i + 1);
	cr_expect(fails > 850 && fails < 1150, "%u failures: expected about 1000", fails);
}

Test(failslab, times_limits_failures)
{
	struct slab_cache *c = mkcache("fs-times", 64, SLAB_NOTIFY);
	struct slab_fault_attr a = attr(100);
	a.times = 5;
	inject_ok(&a);
	bool failed[100];
	cr_expect_eq(alloc_pattern(c, 100, 0, failed), 5);
	for (unsigned i = 0; i < 100; i++)
		cr_expect_eq(failed[i], i < 5, "call %u", i);
	cr_expect_eq(slab_fault_injected(), 5);

	/* times 0: never. */
	a.times = 0;
	inject_ok(&a);
	cr_expect_eq(alloc_pattern(c, 100, 0, NULL), 0);

	/* With an interval: the first 3 every-7th calls. */
	a.times = 3;
	a.interval = 7;
	inject_ok(&a);
	cr_expect_eq(alloc_pattern(c, 100, 0, failed), 3);
	for (unsigned i = 0; i < 100; i++)
		cr_expect_eq(failed[i], i == 6 || i == 13 || i == 20, "call %u", i + 1);
}

Test(failslab, space_lets_bytes_through)
{
	struct slab_cache *c = mkcache("fs-space", 64, SLAB_NOTIFY);
	struct slab_fault_attr a = attr(100);
	/* Kernel rule: while space > size, space -= size and pass. 10 * 64
	 * go through (641 -> 1); then 1 > 64 is false: every call fails. */
	a.space = 10 * 64 + 1;
	inject_ok(&a);
	bool failed[50];
	cr_expect_eq(alloc_pattern(c, 50, 0, failed), 40);
	for (unsigned i = 0; i < 50; i++)
		cr_expect_eq(failed[i], i >= 10, "call %u", i);

	/* Exactly 640: the 10th call sees 64 > 64 false, and fails. */
	a.space = 10 * 64;
	inject_ok(&a);
	cr_expect_eq(alloc_pattern(c, 50, 0, failed), 41);
	cr_expect(!failed[8] && failed[9]);

	/* Sizes add up across caches: 256 + 64 + 64 pass, then fail. */
	struct slab_cache *big = mkcache("fs-space-big", 256, SLAB_NOTIFY);
	a.space = 256 + 64 + 64 + 1;
	inject_ok(&a);
	void *p1 = slab_cache_alloc(big, 0), *p2 = slab_cache_alloc(c, 0), *p3 = slab_cache_alloc(c, 0);
	cr_expect(p1 && p2 && p3);
	cr_expect_null(slab_cache_alloc(c, 0));
	slab_cache_free(big, p1);
	slab_cache_free(c, p2);
	slab_cache_free(c, p3);
}

Test(failslab, min_size_ignores_small)
{
	struct slab_cache *small = mkcache("fs-min-small", 64, SLAB_NOTIFY);
	struct slab_cache *edge = mkcache("fs-min-edge", 128, SLAB_NOTIFY);
	struct slab_cache *large = mkcache("fs-min-large", 512, SLAB_NOTIFY);
	struct slab_fault_attr a = attr(100);
	a.min_size = 128;
	inject_ok(&a);
	cr_expect_eq(alloc_pattern(small, 100, 0, NULL), 0);
	cr_expect_eq(alloc_pattern(edge, 100, 0, NULL), 100);
	cr_expect_eq(alloc_pattern(large, 100, 0, NULL), 100);
	/* slab_malloc: 64 bytes (kmalloc-64) pass, 200 (kmalloc-224) fail. */
	void *p = slab_malloc(64, 0);
	cr_expect_not_null(p);
	slab_free(p);
	cr_expect_null(slab_malloc(200, 0));
	/* An ignored call does not count for the interval either. */
	a.interval = 2;
	inject_ok(&a);
	bool failed[10];
	cr_expect_eq(alloc_pattern(small, 10, 0, NULL), 0);
	cr_expect_eq(alloc_pattern(edge, 10, 0, failed), 5);
	cr_expect(!failed[0] && failed[1]);
}

Test(failslab, cache_filter_prefix)
{
	struct slab_cache *a1 = mkcache("fsf-alpha-1", 64, SLAB_NOTIFY);
	struct slab_cache *a2 = mkcache("fsf-alpha-2", 64, SLAB_NOTIFY);
	struct slab_cache *b = mkcache("fsf-beta", 64, SLAB_NOTIFY);
	struct slab_fault_attr a = attr(100);
	char filter[32];
	strcpy(filter, "fsf-alpha");
	a.cache_filter = filter;
	inject_ok(&a);
	memset(filter, 0, sizeof(filter));  /* the filter was copied */
	cr_expect_eq(alloc_pattern(a1, 20, 0, NULL), 20);
	cr_expect_eq(alloc_pattern(a2, 20, 0, NULL), 20);
	cr_expect_eq(alloc_pattern(b, 20, 0, NULL), 0);
	void *p = slab_malloc(32, 0);
	cr_expect_not_null(p, "kmalloc is not filtered in");
	slab_free(p);

	/* Exact name, and a name the filter is longer than. */
	a.cache_filter = "fsf-alpha-2";
	inject_ok(&a);
	cr_expect_eq(alloc_pattern(a1, 20, 0, NULL), 0);
	cr_expect_eq(alloc_pattern(a2, 20, 0, NULL), 20);
	a.cache_filter = "fsf-beta-and-more";
	inject_ok(&a);
	cr_expect_eq(alloc_pattern(b, 20, 0, NULL), 0);

	/* The kmalloc classes by prefix. */
	a.cache_filter = "kmalloc-";
	inject_ok(&a);
	cr_expect_null(slab_malloc(32, 0));
	cr_expect_null(slab_malloc(4000, 0));
	cr_expect_eq(alloc_pattern(a1, 20, 0, NULL), 0);

	/* Empty filter matches all. */
	a.cache_filter = "";
	inject_ok(&a);
	cr_expect_eq(alloc_pattern(b, 20, 0, NULL), 20);
}

Test(failslab, switches_notification_on_matching_caches)
{
	struct slab_cache *quiet = mkcache("fsn-quiet", 64, 0);
	struct slab_cache *other = mkcache("fsx-other", 64, 0);
	cr_assert(!slab_cache_notify_enabled(quiet));
	struct slab_fault_attr a = attr(100);
	a.cache_filter = "fsn-";
	inject_ok(&a);
	cr_expect(slab_cache_notify_enabled(quiet));
	cr_expect(!slab_cache_notify_enabled(other), "a cache outside the filter is left alone");
	cr_expect_eq(alloc_pattern(quiet, 10, 0, NULL), 10);
	cr_expect_eq(alloc_pattern(other, 10, 0, NULL), 0);

	/* No filter: every cache, the kmalloc classes and kmalloc-large too. */
	a.cache_filter = NULL;
	inject_ok(&a);
	cr_expect(slab_cache_notify_enabled(other));
	const char *names[] = { "kmalloc-8", "kmalloc-96", "kmalloc-1k", "kmalloc-64k", "kmalloc-large" };
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		struct slab_cache *k = find_cache(names[i]);
		cr_assert_not_null(k, "%s exists", names[i]);
		cr_expect(slab_cache_notify_enabled(k), "%s notifies", names[i]);
	}
	errno = 0;
	cr_expect_null(slab_malloc(1 << 20, 0));
	cr_expect_eq(errno, ENOMEM);
}

/* ------------------------------------------------------------------ */
/* Bypasses                                                           */
/* ------------------------------------------------------------------ */

Test(failslab, nofail_bypasses)
{
	struct slab_cache *c = mkcache("fs-nofail", 64, SLAB_NOTIFY);
	struct slab_fault_attr a = attr(100);
	a.interval = 2;
	inject_ok(&a);
	cr_expect_eq(alloc_pattern(c, 100, SLAB_GFP_NOFAIL, NULL), 0);
	cr_expect_eq(alloc_pattern(c, 100, SLAB_GFP_NOFAIL | SLAB_GFP_ZERO, NULL), 0);
	cr_expect_eq(slab_fault_injected(), 0);
	/* NOFAIL calls were not eligible: the interval starts now. */
	bool failed[4];
	cr_expect_eq(alloc_pattern(c, 4, 0, failed), 2);
	cr_expect(!failed[0] && failed[1] && !failed[2] && failed[3]);
	void *p = slab_malloc(300000, SLAB_GFP_NOFAIL);
	cr_expect_not_null(p);
	slab_free(p);
}

Test(failslab, newpage_never_vetoed)
{
	struct slab_cache *c = mkcache("fs-newpage", 1024, SLAB_NOTIFY);
	cr_assert_eq(slab_notifier_register(&counter_nb), 0);
	struct slab_fault_attr a = attr(100);
	inject_ok(&a);
	/* NOFAIL objects need new slabs: NEWPAGE reaches the low handler. */
	void *objs[200];
	for (int i = 0; i < 200; i++) {
		objs[i] = slab_cache_alloc(c, SLAB_GFP_NOFAIL);
		cr_assert_not_null(objs[i]);
	}
	cr_expect_gt(atomic_load(&seen_newpage), 0);
	cr_expect_eq(atomic_load(&seen_alloc), 200);
	/* Vetoed ALLOCs never reach the lower handler. */
	cr_expect_eq(alloc_pattern(c, 100, 0, NULL), 100);
	cr_expect_eq(atomic_load(&seen_alloc), 200);
	for (int i = 0; i < 200; i++)
		slab_cache_free(c, objs[i]);
	cr_expect_eq(atomic_load(&seen_free), 200);
	cr_expect_eq(slab_notifier_unregister(&counter_nb), 0);
}

Test(failslab, stop_with_null)
{
	struct slab_cache *c = mkcache("fs-stop", 64, SLAB_NOTIFY);
	struct slab_fault_attr a = attr(100);
	inject_ok(&a);
	cr_expect_eq(alloc_pattern(c, 10, 0, NULL), 10);
	inject_ok(NULL);
	cr_expect_eq(alloc_pattern(c, 10, 0, NULL), 0);
	cr_expect_eq(slab_fault_injected(), 10, "the count is kept");
	/* And it starts again. */
	inject_ok(&a);
	cr_expect_eq(alloc_pattern(c, 10, 0, NULL), 10);
	cr_expect_eq(slab_fault_injected(), 20);
	inject_ok(NULL);
}

/* ------------------------------------------------------------------ */
/* Reproducibility                                                    */
/* ------------------------------------------------------------------ */

#define REPRO_N 10000

/* The same workload in the test and in a fresh process: no asserts, so
 * that the child can run it before Criterion starts. 0 or an errno. */
static int run_seed_plain(struct slab_cache *c, struct slab_cache *d, uint64_t seed, bool *failed)
{
	struct slab_fault_attr a = attr(30);
	a.seed = seed;
	a.interval = 2;
	a.times = -1;
	int rc = slab_fault_inject(&a);
	if (rc)
		return rc;
	/* Interleave two caches and slab_malloc; free as we go. */
	for (unsigned i = 0; i < REPRO_N; i++) {
		void *p;
		switch (i % 3) {
		case 0: p = slab_cache_alloc(c, 0); failed[i] = !p; slab_cache_free(c, p); break;
		case 1: p = slab_cache_alloc(d, 0); failed[i] = !p; slab_cache_free(d, p); break;
		default: p = slab_malloc(i % 500, 0); failed[i] = !p; slab_free(p); break;
		}
	}
	return slab_fault_inject(NULL);
}

static void run_seed(struct slab_cache *c, struct slab_cache *d, uint64_t seed, bool *failed)
{
	cr_assert_eq(run_seed_plain(c, d, seed, failed), 0);
}

Test(failslab, reproducible_by_seed)
{
	struct slab_cache *c = mkcache("fs-repro-a", 48, SLAB_NOTIFY);
	struct slab_cache *d = mkcache("fs-repro-b", 200, SLAB_NOTIFY);
	static bool r1[REPRO_N], r2[REPRO_N], r3[REPRO_N];
	run_seed(c, d, 42, r1);
	unsigned long n1 = slab_fault_injected();
	run_seed(c, d, 42, r2);
	unsigned long n2 = slab_fault_injected() - n1;
	run_seed(c, d, 43, r3);
	cr_expect_eq(n1, n2);
	cr_expect(n1 > 1000 && n1 < 2000, "about 15%% fail: %lu", n1);
	cr_expect(memcmp(r1, r2, sizeof(r1)) == 0, "same seed, same failures");
	unsigned diff = 0;
	for (unsigned i = 0; i < REPRO_N; i++)
		diff += r1[i] != r3[i];
	cr_expect_gt(diff, 100, "another seed, other failures (%u differ)", diff);
}

/*
 * Same program, same seed, another process: the test binary runs itself
 * (posix_spawn of /proc/self/exe, so that no fork of a threaded process
 * keeps running), and this constructor does the workload there before
 * the test runner starts, writing the failure pattern to stdout.
 */
#define REPRO_ENV "SN_TEST_FAILSLAB_REPRO_CHILD"

__attribute__((constructor)) static void repro_child(void)
{
	if (!getenv(REPRO_ENV))
		return;
	static bool r[REPRO_N];
	struct slab_cache *c = slab_cache_create("fs-repro-a", 48, 0, SLAB_NOTIFY, NULL);
	struct slab_cache *d = slab_cache_create("fs-repro-b", 200, 0, SLAB_NOTIFY, NULL);
	if (!c || !d || run_seed_plain(c, d, 42, r) != 0)
		_exit(3);
	size_t done = 0;
	while (done < sizeof(r)) {
		ssize_t w = write(1, (char *)r + done, sizeof(r) - done);
		if (w <= 0)
			_exit(4);
		done += (size_t)w;
	}
	_exit(0);
}

Test(failslab, reproducible_across_processes)
{
	struct slab_cache *c = mkcache("fs-repro-a", 48, SLAB_NOTIFY);
	struct slab_cache *d = mkcache("fs-repro-b", 200, SLAB_NOTIFY);
	static bool r1[REPRO_N], r2[REPRO_N];
	run_seed(c, d, 42, r1);

	int fds[2];
	cr_assert_eq(pipe(fds), 0);
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
	posix_spawn_file_actions_addclose(&fa, fds[0]);
	char *argv[] = { "test_failslab", NULL };
	cr_assert_eq(setenv(REPRO_ENV, "1", 1), 0);
	pid_t pid;
	int rc = posix_spawn(&pid, "/proc/self/exe", &fa, NULL, argv, environ);
	unsetenv(REPRO_ENV);
	posix_spawn_file_actions_destroy(&fa);
	cr_assert_eq(rc, 0, "posix_spawn: %s", strerror(rc));
	close(fds[1]);
	size_t got = 0;
	while (got < sizeof(r2)) {
		ssize_t n = read(fds[0], (char *)r2 + got, sizeof(r2) - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fds[0]);
	int status;
	waitpid(pid, &status, 0);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %#x", status);
	cr_assert_eq(got, sizeof(r2));
	cr_expect(memcmp(r1, r2, sizeof(r1)) == 0, "a process with the same seed fails the same calls");
}

/* ------------------------------------------------------------------ */
/* Threads                                                            */
/* ------------------------------------------------------------------ */

#define NTHREADS 4
#define PER_THREAD 5000

static struct slab_cache *mt_cache;
static _Atomic unsigned long mt_fails;

static void *mt_worker(void *arg)
{
	(void)arg;
	unsigned long fails = 0;
	for (int i = 0; i < PER_THREAD; i++) {
		void *p = (i & 1) ? slab_cache_alloc(mt_cache, 0) : slab_malloc((size_t)(i % 300), 0);
		if (!p) {
			fails++;
			continue;
		}
		if (i & 1)
			slab_cache_free(mt_cache, p);
		else
			slab_free(p);
	}
	atomic_fetch_add(&mt_fails, fails);
	return NULL;
}

Test(failslab, threads)
{
	mt_cache = mkcache("fs-mt", 96, SLAB_NOTIFY);
	struct slab_fault_attr a = attr(25);
	a.seed = 99;
	inject_ok(&a);
	pthread_t t[NTHREADS];
	for (int i = 0; i < NTHREADS; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, mt_worker, NULL), 0);
	/* Reconfigure while they run. */
	a.probability = 50;
	inject_ok(&a);
	for (int i = 0; i < NTHREADS; i++)
		pthread_join(t[i], NULL);
	inject_ok(NULL);
	unsigned long f = atomic_load(&mt_fails);
	cr_expect_eq(f, slab_fault_injected(), "every failure counted once");
	cr_expect(f > NTHREADS * PER_THREAD / 10 && f < NTHREADS * PER_THREAD * 6 / 10, "%lu failures", f);
	cr_expect_eq(active_objs(mt_cache), 0);
}

/* ------------------------------------------------------------------ */
/* fork                                                               */
/* ------------------------------------------------------------------ */

/*
 * An idle thread kept alive across the forks below. Under TSan, a child
 * of a single-threaded process inherits the locks the fork handlers took
 * (ours and the core's, which the core re-initialises in the child
 * without releasing) as still held in TSan's books, and reports lock
 * orders that cannot deadlock there; TSan does not check children of
 * multi-threaded processes. The deadlock this test is about shows the
 * same either way (the child hangs).
 */
static int idle_pipe[2], idle_ready[2];

static __attribute__((unused)) void *idle_thread(void *arg)
{
	(void)arg;
	char ch = 'r';
	ssize_t r = write(idle_ready[1], &ch, 1);   /* then only blocks */
	r = read(idle_pipe[0], &ch, 1);
	(void)r;
	return NULL;
}

/* Under TSan only (the reason above). Returns once the thread is past
 * its start-up, which allocates: a fork must not catch that midway
 * (gcc 12's ASan allocator, for one, is not fork-safe). */
static pthread_t idle_start(void)
{
	pthread_t t = 0;
#if defined(__SANITIZE_THREAD__)
	cr_assert_eq(pipe(idle_pipe), 0);
	cr_assert_eq(pipe(idle_ready), 0);
	cr_assert_eq(pthread_create(&t, NULL, idle_thread, NULL), 0);
	char ch;
	cr_assert_eq(read(idle_ready[0], &ch, 1), 1);
#endif
	return t;
}

static void idle_stop(pthread_t t)
{
#if defined(__SANITIZE_THREAD__)
	ssize_t w = write(idle_pipe[1], "x", 1);
	(void)w;
	pthread_join(t, NULL);
	for (int i = 0; i < 2; i++) {
		close(idle_pipe[i]);
		close(idle_ready[i]);
	}
#else
	(void)t;
#endif
}

/* A child fork handler registered before failslab's runs first in the
 * child, while failslab's prepare handler still holds its lock; its
 * allocations must go through, not deadlock (liburcu's own child handler
 * allocates so under the malloc drop-in). */
static void child_allocates(void)
{
	void *p = slab_malloc(100, 0);
	slab_free(p);
}

Test(failslab, fork_handlers_that_allocate)
{
	struct slab_cache *c = mkcache("fs-fork", 64, SLAB_NOTIFY);
	cr_assert_eq(pthread_atfork(NULL, NULL, child_allocates), 0);
	struct slab_fault_attr a = attr(50);
	inject_ok(&a);
	pthread_t idle = idle_start();
	for (int i = 0; i < 5; i++) {
		pid_t pid = fork();
		cr_assert_geq(pid, 0);
		if (pid == 0) {
			alarm(20);
			/* Injection goes on in the child. */
			unsigned f = alloc_pattern(c, 1000, 0, NULL);
			_exit(f > 300 && f < 700 ? 0 : 1);
		}
		int status;
		waitpid(pid, &status, 0);
		cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child %d: status %#x", i, status);
	}
	idle_stop(idle);
	inject_ok(NULL);
}
