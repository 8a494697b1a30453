/*
 * test_debug_cache.c - the per-cache debug flags (SLAB_RED_ZONE,
 * SLAB_POISON, SLAB_STORE_USER, SLAB_CONSISTENCY_CHECKS, SLAB_GUARD) for
 * library users: each planted bug is reported with SLUB's first line and
 * the child dies of SIGABRT; a correct program is silent; continue mode
 * counts reports and goes on.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdlib.h>
#include <criterion/redirect.h>
#include <slabnotify.h>

#include "common.h"
#include "test_hooks.h"

#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ALL_DEBUG (SLAB_CONSISTENCY_CHECKS | SLAB_RED_ZONE | SLAB_POISON | SLAB_STORE_USER)

static struct slab_cache *debug_cache(const char *name, size_t size)
{
	struct slab_cache *c = slab_cache_create(name, size, 0, ALL_DEBUG, NULL);
	cr_assert_not_null(c, "slab_cache_create with the debug flags");
	return c;
}

static void expect_bug(const struct outcome *o, const char *first_line)
{
	cr_assert(WIFSIGNALED(o->status) && WTERMSIG(o->status) == SIGABRT, "status %#x, stderr: %s", o->status,
		  o->text);
	cr_assert(strncmp(o->text, first_line, strlen(first_line)) == 0, "first line: %.200s", o->text);
}

static void overflow(void *arg)
{
	(void)arg;
	struct slab_cache *c = debug_cache("dbg-overflow", 24);
	char *p = slab_cache_alloc(c, 0);
	p[24] = 1;
	slab_cache_free(c, p);
}

Test(debug_cache, right_redzone)
{
	struct outcome o;
	run_in_child(overflow, NULL, &o);
	expect_bug(&o, "BUG dbg-overflow: Right Redzone overwritten\n");
	cr_assert(strstr(o.text, "@offset=24. First byte 0x1 instead of 0xcc"), "%s", o.text);
}

static void underflow(void *arg)
{
	(void)arg;
	struct slab_cache *c = debug_cache("dbg-underflow", 40);
	char *p = slab_cache_alloc(c, 0);
	p[-3] = 0;
	slab_cache_free(c, p);
}

Test(debug_cache, left_redzone)
{
	struct outcome o;
	run_in_child(underflow, NULL, &o);
	expect_bug(&o, "BUG dbg-underflow: Left Redzone overwritten\n");
	cr_assert(strstr(o.text, "@offset=-3."), "%s", o.text);
}

static void write_after_free(void *arg)
{
	(void)arg;
	struct slab_cache *c = debug_cache("dbg-uaf", 128);
	char *p = slab_cache_alloc(c, 0);
	slab_cache_free(c, p);
	for (int i = 0; i < 10; i++)
		slab_cache_free(c, slab_cache_alloc(c, 0));
	p[100] = 'x';
	slab_debug_flush();
}

Test(debug_cache, poison_after_free)
{
	struct outcome o;
	run_in_child(write_after_free, NULL, &o);
	expect_bug(&o, "BUG dbg-uaf: Poison overwritten\n");
	cr_assert(strstr(o.text, "@offset=100. First byte 0x78 instead of 0x6b"), "%s", o.text);
	cr_assert(strstr(o.text, "INFO: Freed by thread"), "no free stack: %s", o.text);
}

static void double_free(void *arg)
{
	(void)arg;
	struct slab_cache *c = debug_cache("dbg-df", 64);
	void *p = slab_cache_alloc(c, 0);
	slab_cache_free(c, p);
	slab_cache_free(c, p);
}

Test(debug_cache, double_free_names_both_frees)
{
	struct outcome o;
	run_in_child(double_free, NULL, &o);
	expect_bug(&o, "BUG dbg-df: Object already free\n");
	cr_assert(strstr(o.text, "INFO: Allocated by") && strstr(o.text, "INFO: Freed by") &&
		  strstr(o.text, "INFO: Freed again by"), "%s", o.text);
}

static void correct(void *arg)
{
	(void)arg;
	struct slab_cache *c = debug_cache("dbg-ok", 100);
	void *v[500];
	for (int i = 0; i < 500; i++) {
		v[i] = slab_cache_alloc(c, i & 1 ? SLAB_GFP_ZERO : 0);
		memset(v[i], i, 100);
	}
	for (int i = 0; i < 500; i++)
		slab_cache_free(c, v[i]);
	slab_debug_flush();
	if (slab_debug_reports() != 0)
		abort();
}

Test(debug_cache, correct_program_is_silent)
{
	struct outcome o;
	run_in_child(correct, NULL, &o);
	cr_assert(WIFEXITED(o.status) && WEXITSTATUS(o.status) == 0, "status %#x: %s", o.status, o.text);
	cr_assert_eq(o.len, 0, "printed: %s", o.text);
}

Test(debug_cache, continue_mode_counts_and_goes_on)
{
	cr_redirect_stderr();
	slab_debug_continue(true);
	struct slab_cache *c = debug_cache("dbg-cont", 32);
	char *p = slab_cache_alloc(c, 0);
	p[32] = 7;
	slab_cache_free(c, p);
	cr_assert_eq(slab_debug_reports(), 1);
	slab_cache_free(c, p);     /* the second free is reported and ignored */
	cr_assert_eq(slab_debug_reports(), 2);
	slab_debug_flush();
	cr_assert_eq(slab_debug_reports(), 2, "the repaired red zone was reported again");
	slab_debug_continue(false);
}

Test(debug_cache, flags_with_constructor_refused)
{
	cr_assert_null(slab_cache_create("dbg-ctor", 32, 0, SLAB_RED_ZONE, (void (*)(void *))abort));
	cr_assert_eq(errno, EINVAL);
}

/* ------------------------------------------------------------------ */
/* SLAB_GUARD: sampled guard pages for a library cache                */
/* ------------------------------------------------------------------ */

#define PAGE 4096u

/* Every allocation guarded (rate 1, and no budget by time), at most
 * @max_live at a time. */
static struct slab_cache *guard_cache(const char *name, size_t size, unsigned max_live)
{
	cr_assert_eq(slab_guard_config(1, max_live), 0);
	slab_guard_per_second(0);
	struct slab_cache *c = slab_cache_create(name, size, 0, SLAB_GUARD, NULL);
	cr_assert_not_null(c, "slab_cache_create with SLAB_GUARD");
	return c;
}

/* A guarded object of @size (a multiple of 16) lies at its page's
 * start, or ends at its page's end. */
static bool guarded_at(const void *p, size_t size, bool *at_end)
{
	uintptr_t a = (uintptr_t)p;
	*at_end = (a + size) % PAGE == 0;
	return a % PAGE == 0 || *at_end;
}

Test(debug_cache, guard_every_object_at_rate_1)
{
	struct slab_cache *c = guard_cache("grd-all", 32, 64);
	char *v[16];
	bool end;
	for (int i = 0; i < 16; i++) {
		v[i] = slab_cache_alloc(c, SLAB_GFP_ZERO);
		cr_assert(guarded_at(v[i], 32, &end), "object %d at %p is not against a guard page", i, v[i]);
		for (int j = 0; j < i; j++)
			cr_assert_neq((uintptr_t)v[i] / PAGE, (uintptr_t)v[j] / PAGE, "two objects share a page");
		for (int k = 0; k < 32; k++)
			cr_assert_eq(v[i][k], 0, "SLAB_GFP_ZERO");
	}
	for (int i = 0; i < 16; i++)
		slab_cache_free(c, v[i]);
	cr_assert_eq(slab_cache_destroy(c), 0);
}

/* Under ASan or TSan the sanitizer's runtime installed its SIGSEGV handler
 * first, so it is the "program's handler" the guard passes a fault on to:
 * TSan's then exits with status 1 instead of dying of the signal, and
 * under ASan the use-after-free report stops after its first stack line
 * (open: docs/design.md, SLAB_GUARD). The plain build checks all of it. */
#ifdef SLABNOTIFY_SANITIZER
#define SKIP_WHERE_A_SANITIZER_OWNS_SIGSEGV() cr_skip_test("a sanitizer runtime owns SIGSEGV")
#else
#define SKIP_WHERE_A_SANITIZER_OWNS_SIGSEGV() ((void)0)
#endif

/* One byte past the end: at the page's end it faults at once; at its
 * start, the free finds it (the rest of the page is checked). */
static void guard_overflow(void *arg)
{
	bool *end = arg;
	struct slab_cache *c = guard_cache("grd-over", 32, 8);
	char *p = slab_cache_alloc(c, 0);
	guarded_at(p, 32, end);
	p[32] = 1;
	slab_cache_free(c, p);
}

/* The same, with the pool's pages closed by mprotect: the path of
 * kernels without guard markers (before 6.13, Debian 12's). */
static void guard_overflow_by_mprotect(void *arg)
{
	sn_test_guard_no_markers = true;
	guard_overflow(arg);
}

static void expect_overflow_reports(void (*child)(void *))
{
	for (int round = 0; round < 8; round++) {
		struct outcome o;
		bool end = false;
		run_in_child(child, &end, &o);
		cr_assert(strncmp(o.text, "BUG grd-over: heap-buffer-overflow (guard page)\n", 48) == 0,
			  "first line: %.300s", o.text);
		bool at_end = strstr(o.text, "at the page's end") != NULL;
		int sig = at_end ? SIGSEGV : SIGABRT;
		cr_assert(WIFSIGNALED(o.status) && WTERMSIG(o.status) == sig, "status %#x (want signal %d): %s",
			  o.status, sig, o.text);
		cr_assert(strstr(o.text, at_end ? "INFO: write at" : "found at free: a write"), "%s", o.text);
		cr_assert(strstr(o.text, "@offset=32 of object"), "%s", o.text);
		cr_assert(strstr(o.text, "INFO: Allocated by thread"), "no allocation stack: %s", o.text);
	}
}

Test(debug_cache, guard_overflow_by_one_byte)
{
	SKIP_WHERE_A_SANITIZER_OWNS_SIGSEGV();
	expect_overflow_reports(guard_overflow);
}

Test(debug_cache, guard_overflow_by_one_byte_pages_by_mprotect)
{
	SKIP_WHERE_A_SANITIZER_OWNS_SIGSEGV();
	expect_overflow_reports(guard_overflow_by_mprotect);
}

/* The slot is used twice, so that a page closed, opened again and closed
 * again still faults. */
static void guard_uaf(void *arg)
{
	(void)arg;
	struct slab_cache *c = guard_cache("grd-uaf", 48, 1);
	slab_cache_free(c, slab_cache_alloc(c, 0));
	volatile char *p = slab_cache_alloc(c, 0);
	slab_cache_free(c, (void *)p);
	(void)p[5];
}

static void guard_uaf_by_mprotect(void *arg)
{
	sn_test_guard_no_markers = true;
	guard_uaf(arg);
}

static void expect_uaf_report(void (*child)(void *))
{
	struct outcome o;
	run_in_child(child, NULL, &o);
	cr_assert(WIFSIGNALED(o.status) && WTERMSIG(o.status) == SIGSEGV, "status %#x: %s", o.status, o.text);
	cr_assert(strncmp(o.text, "BUG grd-uaf: use-after-free (guard page)\n", 41) == 0, "first line: %.300s",
		  o.text);
	cr_assert(strstr(o.text, "INFO: read at") && strstr(o.text, "@offset=5 of object"), "%s", o.text);
	cr_assert(strstr(o.text, "INFO: Allocated by") && strstr(o.text, "INFO: Freed by"), "%s", o.text);
}

Test(debug_cache, guard_use_after_free_faults)
{
	SKIP_WHERE_A_SANITIZER_OWNS_SIGSEGV();
	expect_uaf_report(guard_uaf);
}

Test(debug_cache, guard_use_after_free_faults_pages_by_mprotect)
{
	SKIP_WHERE_A_SANITIZER_OWNS_SIGSEGV();
	expect_uaf_report(guard_uaf_by_mprotect);
}

/* The mappings of /proc/self/maps that overlap [lo, hi), and how many of
 * them are inaccessible. */
static int maps_in(uintptr_t lo, uintptr_t hi, int *inaccessible)
{
	FILE *f = fopen("/proc/self/maps", "r");
	cr_assert_not_null(f);
	char line[512];
	int n = 0;
	*inaccessible = 0;
	while (fgets(line, sizeof(line), f)) {
		unsigned long a, b;
		char perm[5];
		if (sscanf(line, "%lx-%lx %4s", &a, &b, perm) != 3 || b <= lo || a >= hi)
			continue;
		n++;
		*inaccessible += perm[0] == '-' && perm[1] == '-';
	}
	fclose(f);
	return n;
}

/* Where the kernel has guard markers, the pool stays one read-write
 * mapping however many of its pages are open: no VMA is split. */
Test(debug_cache, guard_pool_is_one_mapping_where_the_kernel_has_markers)
{
	void *probe = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(probe, MAP_FAILED);
	bool markers = madvise(probe, PAGE, 102 /* MADV_GUARD_INSTALL */) == 0;
	munmap(probe, PAGE);
	if (!markers)
		cr_skip_test("this kernel has no guard markers (Linux 6.13)");
	struct slab_cache *c = guard_cache("grd-maps", 64, 16);
	void *v[8];
	for (int i = 0; i < 8; i++)
		v[i] = slab_cache_alloc(c, 0);
	for (int i = 0; i < 8; i += 2)
		slab_cache_free(c, v[i]);
	uintptr_t lo = (uintptr_t)v[1] & ~(uintptr_t)(PAGE - 1), hi = lo + PAGE;
	for (int i = 1; i < 8; i += 2) {
		uintptr_t pg = (uintptr_t)v[i] & ~(uintptr_t)(PAGE - 1);
		lo = pg < lo ? pg : lo;
		hi = pg + PAGE > hi ? pg + PAGE : hi;
	}
	int none, n = maps_in(lo - PAGE, hi + PAGE, &none);
	cr_assert_eq(n, 1, "the pool's open pages are in %d mappings", n);
	cr_assert_eq(none, 0, "an inaccessible mapping: the pages were closed by mprotect");
	for (int i = 1; i < 8; i += 2)
		slab_cache_free(c, v[i]);
	cr_assert_eq(slab_cache_destroy(c), 0);
}

static void guard_correct(void *arg)
{
	(void)arg;
	struct slab_cache *c = guard_cache("grd-ok", 100, 256);
	char *v[300];
	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < 300; i++) {
			v[i] = slab_cache_alloc(c, 0);
			memset(v[i], i, 100);
		}
		for (int i = 0; i < 300; i++)
			slab_cache_free(c, v[i]);
	}
	if (slab_cache_destroy(c) != 0 || slab_debug_reports() != 0)
		abort();
}

Test(debug_cache, guard_correct_program_is_silent)
{
	struct outcome o;
	run_in_child(guard_correct, NULL, &o);
	cr_assert(WIFEXITED(o.status) && WEXITSTATUS(o.status) == 0, "status %#x: %s", o.status, o.text);
	cr_assert_eq(o.len, 0, "printed: %s", o.text);
}

static double seconds_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Allocate and free @n objects of @c at once; the number guarded. Not
 * by the address alone: an unguarded object is freed and handed out
 * again at the same address, which lies at a page's start or end one
 * time in 64 (the chain's random start), and was then counted @n times.
 * A guarded object is in the guard pool, not in a slab. */
static int guarded_of(struct slab_cache *c, int n)
{
	int guarded = 0;
	bool end;
	for (int i = 0; i < n; i++) {
		char *p = slab_cache_alloc(c, 0);
		cr_assert_not_null(p);
		guarded += guarded_at(p, 32, &end) && !slab_owns(p);
		slab_cache_free(c, p);
	}
	return guarded;
}

Test(debug_cache, guard_budget_default)
{
	cr_assert_eq(slab_guard_per_second(0), 50, "the default budget is 50 a second");
}

/* guard.c's burst: the blocks allowed at once, before the rate applies. */
#define GUARD_BURST 8

/* The budget by time: at rate 1 and 100 a second, a burst of 8 (9 with
 * the one due now), then one per 10 ms; with no budget, every one. */
Test(debug_cache, guard_budget_bounds_guarded_blocks_a_second)
{
	struct slab_cache *c = guard_cache("grd-budget", 32, 256);
	cr_assert_eq(slab_guard_per_second(100), 0);
	double t0 = seconds_now();
	int first = guarded_of(c, 2000);
	double took = seconds_now() - t0;
	cr_assert_geq(first, GUARD_BURST + 1, "the burst: %d guarded", first);
	cr_assert_leq(first, GUARD_BURST + 1 + (int)(took * 100) + 1, "%d guarded in %.3f s at 100 a second", first,
		      took);
	double rested = seconds_now();
	usleep(100 * 1000);
	int later = guarded_of(c, 2000);
	rested = seconds_now() - rested;
	/* 100 ms of credit or more, one block per 10 ms, at most a burst. */
	int credit = (int)(rested * 100) + 2;
	cr_assert_geq(later, GUARD_BURST, "after 100 ms: %d guarded", later);
	cr_assert_leq(later, credit < GUARD_BURST + 1 ? credit : GUARD_BURST + 1, "after %.3f s: %d guarded", rested,
		      later);
	cr_assert_eq(slab_guard_per_second(0), 100);
	cr_assert_eq(guarded_of(c, 500), 500, "no budget: every block guarded");
	cr_assert_eq(slab_cache_destroy(c), 0);
}

Test(debug_cache, guard_beyond_max_live_from_the_slab)
{
	struct slab_cache *c = guard_cache("grd-max", 32, 4);
	char *v[12];
	bool end;
	for (int i = 0; i < 12; i++)
		v[i] = slab_cache_alloc(c, 0);
	for (int i = 0; i < 4; i++)
		cr_assert(guarded_at(v[i], 32, &end), "object %d at %p not guarded", i, v[i]);
	/* The rest come from one slab: some share a page, which guarded
	 * objects never do. */
	int shared = 0;
	for (int i = 4; i < 12; i++)
		for (int j = 4; j < i; j++)
			shared += (uintptr_t)v[i] / PAGE == (uintptr_t)v[j] / PAGE;
	cr_assert_gt(shared, 0, "objects beyond max_live are not slab objects");
	/* A guarded slot freed is offered again. */
	slab_cache_free(c, v[0]);
	char *again = slab_cache_alloc(c, 0);
	cr_assert(guarded_at(again, 32, &end), "a freed guarded slot is not reused");
	slab_cache_free(c, again);
	for (int i = 1; i < 12; i++)
		slab_cache_free(c, v[i]);
	cr_assert_eq(slab_cache_destroy(c), 0);
}

Test(debug_cache, guard_destroy_with_guarded_objects_live)
{
	cr_redirect_stderr();
	struct slab_cache *c = guard_cache("grd-destroy", 64, 8);
	char *p = slab_cache_alloc(c, 0);
	bool end;
	cr_assert(guarded_at(p, 64, &end));
	/* A guarded object is as live as any: the cache stays. */
	cr_assert_eq(slab_cache_destroy(c), -EBUSY);
	memset(p, 1, 64);
	slab_cache_free(c, p);
	cr_assert_eq(slab_cache_destroy(c), 0);
}

/* A guarded object given to another cache is refused as any object is:
 * one line naming both caches, then abort (it was freed, silently, into
 * the guard pool under the wrong cache's name). */
static void guard_free_to_wrong_cache(void *arg)
{
	(void)arg;
	struct slab_cache *a = guard_cache("grd-wrong-a", 32, 8);
	struct slab_cache *b = slab_cache_create("grd-wrong-b", 32, 0, 0, NULL);
	cr_assert_not_null(b);
	char *p = slab_cache_alloc(a, 0);
	bool end;
	cr_assert(guarded_at(p, 32, &end));
	cr_assert_eq(write(STDOUT_FILENO, &p, sizeof(p)), (ssize_t)sizeof(p));
	slab_cache_free(b, p);
}

Test(debug_cache, guard_object_freed_to_wrong_cache)
{
	int fds[2];
	cr_assert_eq(pipe(fds), 0);
	fflush(stdout);
	int saved = dup(STDOUT_FILENO);
	dup2(fds[1], STDOUT_FILENO);
	struct outcome o;
	run_in_child(guard_free_to_wrong_cache, NULL, &o);
	dup2(saved, STDOUT_FILENO);
	close(saved);
	close(fds[1]);
	void *p = NULL;
	cr_assert_eq(read(fds[0], &p, sizeof(p)), (ssize_t)sizeof(p), "the child allocated nothing");
	close(fds[0]);
	check_message(&o, "slab_cache_free", p, "grd-wrong-a");
	cr_assert_not_null(strstr(o.text, "given to cache grd-wrong-b"), "%s", o.text);
}

static void guard_free_to_wrong_cache_direct(void)
{
	struct slab_cache *a = guard_cache("grd-wrong-c", 32, 8);
	struct slab_cache *b = slab_cache_create("grd-wrong-d", 32, 0, 0, NULL);
	cr_assert_not_null(b);
	char *p = slab_cache_alloc(a, 0);
	slab_cache_free(b, p);
}

Test(debug_cache, guard_wrong_cache_aborts, .signal = SIGABRT)
{
	guard_free_to_wrong_cache_direct();
}

Test(debug_cache, guard_with_constructor_refused)
{
	cr_assert_null(slab_cache_create("grd-ctor", 32, 0, SLAB_GUARD, (void (*)(void *))abort));
	cr_assert_eq(errno, EINVAL);
}
