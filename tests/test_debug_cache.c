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

#include <signal.h>
#include <string.h>
#include <sys/wait.h>

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
