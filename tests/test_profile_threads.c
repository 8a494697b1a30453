/*
 * test_profile_threads.c - the heap profile's summary across threads:
 * exact allocations, frees, requested bytes, bytes and blocks in use and
 * the peak, with every allocation recorded, sampled (the gate ahead of
 * the notifier), and with --leaks; while the process is single-threaded
 * first, then with threads running at once (the summary's counts are
 * per thread, the live bytes one word written with plain adds while one
 * thread runs and atomically after: tests/tsan runs this under TSan).
 *
 * Criterion runs every Test() in a fresh process.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <slabnotify.h>

#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "consumers/profile.h"

#define THREADS 4
#define PAIRS   50000     /* malloc+free pairs per thread */
#define HELD    500       /* blocks each thread holds at once, at the barrier */
#define KEPT    37        /* blocks each thread leaves live */

static pthread_barrier_t all_hold;

/* Requested sizes that are not the classes' (the figures are requested
 * bytes, not footprints). */
static size_t size_of(unsigned t, unsigned i)
{
	return 1 + (t * 131 + i * 7) % 700;
}

struct totals {
	uint64_t allocations, frees, bytes, live, live_blocks, held;
};

static void expected(unsigned threads, struct totals *e)
{
	memset(e, 0, sizeof(*e));
	for (unsigned t = 0; t < threads; t++) {
		for (unsigned i = 0; i < PAIRS + HELD + KEPT; i++)
			e->bytes += size_of(t, i);
		for (unsigned i = PAIRS; i < PAIRS + HELD; i++)
			e->held += size_of(t, i);
		for (unsigned i = PAIRS + HELD; i < PAIRS + HELD + KEPT; i++)
			e->live += size_of(t, i);
		e->allocations += PAIRS + HELD + KEPT;
		e->frees += PAIRS + HELD;
		e->live_blocks += KEPT;
	}
}

static void *worker(void *arg)
{
	unsigned t = (unsigned)(uintptr_t)arg;
	for (unsigned i = 0; i < PAIRS; i++)
		slab_free(slab_malloc(size_of(t, i), 0));
	void *held[HELD];
	for (unsigned i = 0; i < HELD; i++)
		held[i] = slab_malloc(size_of(t, PAIRS + i), 0);
	pthread_barrier_wait(&all_hold);
	for (unsigned i = 0; i < HELD; i++)
		slab_free(held[i]);
	for (unsigned i = 0; i < KEPT; i++)
		cr_assert_not_null(slab_malloc(size_of(t, PAIRS + HELD + i), 0));
	return NULL;
}

/* Thread 0's work on the main thread (single-threaded), then the others
 * at once, and the summary against the sums. */
static void run(const struct sn_prof_config *cfg)
{
	cr_assert_eq(sn_profile_start(cfg), 0);
	struct sn_prof_model base;
	cr_assert(sn_profile_model(&base, 1));
	sn_profile_model_free(&base);
	pthread_barrier_init(&all_hold, NULL, 1);
	worker((void *)0);
	pthread_barrier_destroy(&all_hold);
	pthread_barrier_init(&all_hold, NULL, THREADS - 1);
	pthread_t th[THREADS];
	for (unsigned t = 1; t < THREADS; t++)
		cr_assert_eq(pthread_create(&th[t], NULL, worker, (void *)(uintptr_t)t), 0);
	for (unsigned t = 1; t < THREADS; t++)
		pthread_join(th[t], NULL);
	pthread_barrier_destroy(&all_hold);

	struct sn_prof_model m;
	cr_assert(sn_profile_model(&m, 10));
	struct totals e;
	expected(THREADS, &e);
	/* The model of the start allocates nothing we count; what the
	 * library and Criterion allocate meanwhile would show as extra. */
	cr_expect_eq(m.allocations - base.allocations, e.allocations, "allocations %lu, expected %lu",
		     (unsigned long)(m.allocations - base.allocations), (unsigned long)e.allocations);
	cr_expect_eq(m.frees - base.frees, e.frees, "frees %lu, expected %lu",
		     (unsigned long)(m.frees - base.frees), (unsigned long)e.frees);
	cr_expect_eq(m.bytes_allocated - base.bytes_allocated, e.bytes, "bytes %lu, expected %lu",
		     (unsigned long)(m.bytes_allocated - base.bytes_allocated), (unsigned long)e.bytes);
	cr_expect_eq(m.in_use_bytes - base.in_use_bytes, e.live, "in use %lu, expected %lu",
		     (unsigned long)(m.in_use_bytes - base.in_use_bytes), (unsigned long)e.live);
	cr_expect_eq(m.in_use_blocks - base.in_use_blocks, e.live_blocks);
	/* The peak: at least what threads 1.. held at once at their barrier
	 * (plus thread 0's kept blocks), at most everything ever live. */
	struct totals e1;
	expected(1, &e1);
	uint64_t held_at_once = e.held - e1.held + e1.live;
	cr_expect_geq(m.peak_bytes - base.in_use_bytes, held_at_once, "peak %lu below %lu",
		      (unsigned long)(m.peak_bytes - base.in_use_bytes), (unsigned long)held_at_once);
	cr_expect_leq(m.peak_bytes, base.in_use_bytes + e.held + e.live + 700 * THREADS);
	sn_profile_model_free(&m);
}

Test(profile_threads, every_allocation_exact)
{
	struct sn_prof_config c = { .mode = SN_PROF_FULL };
	run(&c);
}

Test(profile_threads, sampled_summary_exact)
{
	struct sn_prof_config c = { .mode = SN_PROF_FULL, .sample_bytes = 64 << 10 };
	run(&c);
}

Test(profile_threads, leaks_exact)
{
	struct sn_prof_config c = { .mode = SN_PROF_LEAKS, .every = 1 };
	run(&c);
}

Test(profile_threads, leaks_sampled_exact)
{
	struct sn_prof_config c = { .mode = SN_PROF_LEAKS, .every = 7 };
	run(&c);
}
