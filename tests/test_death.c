/*
 * test_death.c - bad frees abort the process.
 *
 * The header promises: freeing a pointer slabnotify did not hand out, an
 * interior pointer, an object given to the wrong cache, or a detected
 * double free prints ONE line on stderr naming the function, the pointer
 * and the cache, then calls abort(). There is no silent corruption.
 *
 * The first group are Criterion death tests (.signal = SIGABRT); their
 * stderr is redirected so the expected messages do not clutter the log.
 * The second group fork a child by hand, capture its stderr through a
 * pipe and check the message itself (a Criterion death test cannot look
 * at what the dying process printed).
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <slabnotify.h>

#include "common.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define MiB ((size_t)1024 * 1024)

/* Keep the test log clean; the messages are checked in the fork tests. */
static void quiet(void)
{
	cr_redirect_stderr();
}

static struct slab_cache *cache64(const char *name)
{
	struct slab_cache *c = slab_cache_create(name, 64, 0, 0, NULL);
	cr_assert_not_null(c, "slab_cache_create(%s): %s", name, strerror(errno));
	return c;
}

static void *alloc_from(struct slab_cache *c)
{
	void *p = slab_cache_alloc(c, 0);
	cr_assert_not_null(p, "slab_cache_alloc: %s", strerror(errno));
	return p;
}

static void *kmalloc_ok(size_t size)
{
	void *p = slab_malloc(size, 0);
	cr_assert_not_null(p, "slab_malloc(%zu): %s", size, strerror(errno));
	return p;
}

/* ------------------------------------------------------------------ */
/* Death tests: each must end in SIGABRT                              */
/* ------------------------------------------------------------------ */

TestSuite(death, .init = quiet);

Test(death, free_stack_pointer, .signal = SIGABRT)
{
	long on_stack[8] = { 0 };
	slab_free(on_stack);
}

Test(death, free_glibc_malloc_pointer, .signal = SIGABRT)
{
	void *m = malloc(64);
	cr_assert_not_null(m);
	/* Make sure the allocator is initialised and has memory around. */
	slab_free(kmalloc_ok(64));
	slab_free(m);
}

Test(death, free_interior_plus8_of_cache_object, .signal = SIGABRT)
{
	struct slab_cache *c = cache64("death-int8");
	char *p = alloc_from(c);
	slab_free(p + 8);
}

Test(death, free_interior_plus1_of_cache_object, .signal = SIGABRT)
{
	struct slab_cache *c = cache64("death-int1");
	char *p = alloc_from(c);
	slab_free(p + 1);
}

Test(death, free_interior_plus8_of_kmalloc, .signal = SIGABRT)
{
	char *p = kmalloc_ok(64);
	slab_free(p + 8);
}

Test(death, free_interior_plus1_of_kmalloc, .signal = SIGABRT)
{
	char *p = kmalloc_ok(64);
	slab_free(p + 1);
}

Test(death, cache_free_interior_pointer, .signal = SIGABRT)
{
	struct slab_cache *c = cache64("death-cint");
	char *p = alloc_from(c);
	slab_cache_free(c, p + 8);
}

Test(death, cache_free_stack_pointer, .signal = SIGABRT)
{
	struct slab_cache *c = cache64("death-cstack");
	slab_cache_free(c, alloc_from(c)); /* the cache has a slab */
	long on_stack[8] = { 0 };
	slab_cache_free(c, on_stack);
}

Test(death, double_free_cache_free, .signal = SIGABRT)
{
	struct slab_cache *c = cache64("death-dfc");
	void *p = alloc_from(c);
	slab_cache_free(c, p);
	slab_cache_free(c, p);
}

Test(death, double_free_kmalloc, .signal = SIGABRT)
{
	void *p = kmalloc_ok(64);
	slab_free(p);
	slab_free(p);
}

Test(death, double_free_slab_free_of_cache_object, .signal = SIGABRT)
{
	struct slab_cache *c = cache64("death-dfs");
	void *p = alloc_from(c);
	slab_free(p);
	slab_free(p);
}

/* The object is fine, the cache is not: same size, different cache. */
Test(death, cache_free_to_wrong_cache, .signal = SIGABRT)
{
	struct slab_cache *a = cache64("death-wrong-a");
	struct slab_cache *b = cache64("death-wrong-b");
	slab_cache_free(b, alloc_from(b)); /* b is set up too */
	void *p = alloc_from(a);
	slab_cache_free(b, p);
}

Test(death, cache_free_of_kmalloc_pointer, .signal = SIGABRT)
{
	struct slab_cache *c = cache64("death-kmc");
	slab_cache_free(c, alloc_from(c));
	void *p = kmalloc_ok(64); /* kmalloc-64: same object size as @c */
	slab_cache_free(c, p);
}

Test(death, free_interior_of_large_page_aligned, .signal = SIGABRT)
{
	char *p = kmalloc_ok(1 * MiB);
	slab_free(p + 4096);
}

Test(death, free_interior_of_large_plus1, .signal = SIGABRT)
{
	char *p = kmalloc_ok(1 * MiB);
	slab_free(p + 1);
}

Test(death, double_free_large, .signal = SIGABRT)
{
	void *p = kmalloc_ok(1 * MiB);
	slab_free(p);
	slab_free(p);
}

Test(death, usable_size_of_glibc_pointer, .signal = SIGABRT)
{
	void *m = malloc(64);
	cr_assert_not_null(m);
	slab_free(kmalloc_ok(64));
	(void)slab_usable_size(m);
}

Test(death, usable_size_of_stack_pointer, .signal = SIGABRT)
{
	long on_stack[8] = { 0 };
	slab_free(kmalloc_ok(64));
	(void)slab_usable_size(on_stack);
}

/* realloc frees its argument, so a foreign one must not be copied from. */
Test(death, realloc_of_stack_pointer, .signal = SIGABRT)
{
	long on_stack[8] = { 0 };
	slab_free(kmalloc_ok(64));
	(void)slab_realloc(on_stack, 128, 0);
}

/* ------------------------------------------------------------------ */
/* The message: fork, capture the child's stderr                      */
/* ------------------------------------------------------------------ */

struct call {
	struct slab_cache *cache;
	void *ptr;
};

static void do_slab_free(void *arg)
{
	slab_free(((struct call *)arg)->ptr);
}

static void do_cache_free(void *arg)
{
	struct call *c = arg;
	slab_cache_free(c->cache, c->ptr);
}

static void do_usable_size(void *arg)
{
	(void)slab_usable_size(((struct call *)arg)->ptr);
}

/* Sanity of the harness: a correct free neither aborts nor prints. */
Test(death_message, good_free_is_silent)
{
	struct call call = { .ptr = kmalloc_ok(64) };
	struct outcome o;
	run_in_child(do_slab_free, &call, &o);
	cr_assert(WIFEXITED(o.status) && WEXITSTATUS(o.status) == 0,
		  "a good free killed the child (status %#x): %s", o.status, o.text);
	cr_assert_eq(o.len, 0, "a good free printed: %s", o.text);
	slab_free(call.ptr);
}

Test(death_message, free_of_stack_pointer)
{
	long on_stack[8] = { 0 };
	slab_free(kmalloc_ok(64));
	struct call call = { .ptr = on_stack };
	struct outcome o;
	run_in_child(do_slab_free, &call, &o);
	check_message(&o, "slab_free", on_stack, NULL);
}

Test(death_message, free_of_glibc_pointer)
{
	void *m = malloc(100);
	cr_assert_not_null(m);
	slab_free(kmalloc_ok(64));
	struct call call = { .ptr = m };
	struct outcome o;
	run_in_child(do_slab_free, &call, &o);
	check_message(&o, "slab_free", m, NULL);
	free(m);
}

Test(death_message, free_of_interior_pointer_names_cache)
{
	struct slab_cache *c = cache64("msg-interior");
	char *p = alloc_from(c);
	struct call call = { .ptr = p + 8 };
	struct outcome o;
	run_in_child(do_slab_free, &call, &o);
	check_message(&o, "slab_free", p + 8, "msg-interior");
	slab_cache_free(c, p);
}

Test(death_message, double_free_names_cache)
{
	struct slab_cache *c = cache64("msg-double");
	void *p = alloc_from(c);
	slab_cache_free(c, p);
	struct call call = { .cache = c, .ptr = p };
	struct outcome o;
	run_in_child(do_cache_free, &call, &o);
	check_message(&o, "slab_cache_free", p, "msg-double");
}

Test(death_message, double_free_kmalloc_names_class)
{
	void *p = kmalloc_ok(64);
	slab_free(p);
	struct call call = { .ptr = p };
	struct outcome o;
	run_in_child(do_slab_free, &call, &o);
	check_message(&o, "slab_free", p, "kmalloc-64");
}

Test(death_message, wrong_cache_names_a_cache)
{
	struct slab_cache *a = cache64("msg-owner");
	struct slab_cache *b = cache64("msg-given");
	slab_cache_free(b, alloc_from(b));
	void *p = alloc_from(a);
	struct call call = { .cache = b, .ptr = p };
	struct outcome o;
	run_in_child(do_cache_free, &call, &o);
	check_message(&o, "slab_cache_free", p, NULL);
	cr_assert(strstr(o.text, "msg-owner") || strstr(o.text, "msg-given"),
		  "message names neither cache: %s", o.text);
	slab_cache_free(a, p);
}

Test(death_message, interior_of_large_names_kmalloc_large)
{
	char *p = kmalloc_ok(1 * MiB);
	struct call call = { .ptr = p + 4096 };
	struct outcome o;
	run_in_child(do_slab_free, &call, &o);
	check_message(&o, "slab_free", p + 4096, "kmalloc-large");
	slab_free(p);
}

Test(death_message, usable_size_of_foreign_pointer)
{
	void *m = malloc(100);
	cr_assert_not_null(m);
	slab_free(kmalloc_ok(64));
	struct call call = { .ptr = m };
	struct outcome o;
	run_in_child(do_usable_size, &call, &o);
	check_message(&o, "slab_usable_size", m, NULL);
	free(m);
}
