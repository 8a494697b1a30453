/*
 * test_hardening.c - the allocator under attack and misuse (issue 8).
 *
 * Every bad free, corrupted free list, stale handle and bad argument is
 * caught with a message and abort(), or refused with EINVAL: each case
 * is a death test (.signal = SIGABRT) and a check of the message the
 * dying process printed (common.h), or an error-return test.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <slabnotify.h>

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <urcu/urcu-bp.h>

#include "common.h"
#include "internal.h"

static void quiet(void)
{
	cr_redirect_stderr();
}

static struct slab_cache *mk(const char *name, size_t size, slab_flags_t flags)
{
	struct slab_cache *c = slab_cache_create(name, size, 0, flags, NULL);
	cr_assert_not_null(c, "slab_cache_create(%s): %s", name, strerror(errno));
	return c;
}

static void *get(struct slab_cache *c)
{
	void *p = slab_cache_alloc(c, 0);
	cr_assert_not_null(p, "slab_cache_alloc: %s", strerror(errno));
	return p;
}

/* ------------------------------------------------------------------ */
/* Double frees, everywhere                                           */
/* ------------------------------------------------------------------ */

struct two {
	struct slab_cache *c;
	void *p, *q;
};

/* free(p); free(q); free(p): p is no longer at the head of any chain. */
static void interleaved_double_free(void *arg)
{
	struct two *t = arg;
	slab_cache_free(t->c, t->p);
	slab_cache_free(t->c, t->q);
	slab_cache_free(t->c, t->p);
}

Test(double_free, interleaved_aborts, .signal = SIGABRT, .init = quiet)
{
	struct two t = { mk("df-inter", 64, 0), NULL, NULL };
	t.p = get(t.c);
	t.q = get(t.c);
	interleaved_double_free(&t);
}

Test(double_free, interleaved_message)
{
	struct two t = { mk("df-inter-msg", 64, 0), NULL, NULL };
	t.p = get(t.c);
	t.q = get(t.c);
	struct outcome o;
	run_in_child(interleaved_double_free, &t, &o);
	check_message(&o, "slab_cache_free", t.p, "df-inter-msg");
	cr_assert_not_null(strstr(o.text, "double free"), "%s", o.text);
}

/* A double free with many other frees between, into a slab that is no
 * longer the current one. */
static void distant_double_free(void *arg)
{
	struct two *t = arg;
	void *objs[2000];
	for (int i = 0; i < 2000; i++)
		objs[i] = slab_malloc(64, 0);
	slab_free(t->p);
	for (int i = 0; i < 2000; i++)
		slab_free(objs[i]);
	slab_free(t->p);
}

Test(double_free, distant_message)
{
	struct two t = { NULL, slab_malloc(64, 0), NULL };
	struct outcome o;
	run_in_child(distant_double_free, &t, &o);
	check_message(&o, "slab_free", t.p, "kmalloc-64");
}

/* The second free comes from another thread (a remote free). */
static void *free_it(void *p)
{
	slab_free(p);
	return NULL;
}

static void remote_double_free(void *arg)
{
	struct two *t = arg;
	slab_free(t->p);
	pthread_t th;
	pthread_create(&th, NULL, free_it, t->p);
	pthread_join(th, NULL);
}

Test(double_free, from_another_thread_aborts, .signal = SIGABRT, .init = quiet)
{
	struct two t = { NULL, slab_malloc(100, 0), NULL };
	remote_double_free(&t);
}

Test(double_free, from_another_thread_message)
{
	struct two t = { NULL, slab_malloc(100, 0), NULL };
	struct outcome o;
	run_in_child(remote_double_free, &t, &o);
	check_message(&o, "slab_free", t.p, "kmalloc-112");
}

/* Objects of a thread that has exited (its slabs are unowned now). */
static void *alloc_two(void *arg)
{
	struct two *t = arg;
	t->p = slab_malloc(64, 0);
	t->q = slab_malloc(64, 0);
	return NULL;
}

static void exited_thread_double_free(void *arg)
{
	struct two *t = arg;
	pthread_t th;
	pthread_create(&th, NULL, alloc_two, t);
	pthread_join(th, NULL);
	slab_free(t->p);
	slab_free(t->q);
	slab_free(t->p);
}

Test(double_free, exited_threads_slab_aborts, .signal = SIGABRT, .init = quiet)
{
	struct two t = { 0 };
	exited_thread_double_free(&t);
}

Test(double_free, exited_threads_slab_message)
{
	struct two t = { 0 };
	struct outcome o;
	run_in_child(exited_thread_double_free, &t, &o);
	cr_assert(WIFSIGNALED(o.status) && WTERMSIG(o.status) == SIGABRT, "%s", o.text);
	cr_assert_not_null(strstr(o.text, "slab_free(): double free"), "%s", o.text);
}

/* A large object freed twice. */
static void large_double_free(void *arg)
{
	struct two *t = arg;
	slab_free(t->p);
	slab_free(t->p);
}

Test(double_free, large_aborts, .signal = SIGABRT, .init = quiet)
{
	struct two t = { NULL, slab_malloc(1 << 20, 0), NULL };
	large_double_free(&t);
}

Test(double_free, large_message)
{
	struct two t = { NULL, slab_malloc(1 << 20, 0), NULL };
	struct outcome o;
	run_in_child(large_double_free, &t, &o);
	check_message(&o, "slab_free", t.p, "kmalloc-large");
}

/* After the double free is caught nothing is handed out twice: a
 * program that continued (it cannot: abort) would not get overlapping
 * blocks. Checked the other way round: a correct program's blocks never
 * overlap, whatever the order of frees (test_stress.c checks more). */
Test(double_free, no_false_alarm_on_data_that_looks_like_links)
{
	/* Live objects full of small integers (the link values 0..objects
	 * un-keyed) and of zeroes are freed without complaint. */
	struct slab_cache *c = mk("df-data", 64, 0);
	void *objs[600];
	for (int i = 0; i < 600; i++) {
		objs[i] = get(c);
		uintptr_t *w = objs[i];
		for (int k = 0; k < 8; k++)
			w[k] = (uintptr_t)(i + k) % 300;
	}
	for (int i = 0; i < 600; i++)
		slab_cache_free(c, objs[(i * 7) % 600]);
	cr_assert_eq(slab_cache_destroy(c), 0);
}

/* ------------------------------------------------------------------ */
/* Frees of slots never allocated                                     */
/* ------------------------------------------------------------------ */

/* A slot of a fresh slab that was never handed out: its neighbour. */
static void never_allocated_free(void *arg)
{
	struct two *t = arg;
	slab_cache_free(t->c, t->q);
}

static void *unallocated_slot(struct slab_cache *c, void *p)
{
	struct slab_cache_info in;
	cr_assert_eq(slab_cache_info(c, &in), 0);
	/* Any other slot of p's slab: all but p are free in a fresh slab. */
	char *base = (char *)((uintptr_t)p & ~(uintptr_t)(in.slab_bytes - 1));
	for (unsigned i = 0; i < in.objs_per_slab; i++)
		if (base + (size_t)i * in.size != p)
			return base + (size_t)i * in.size;
	cr_assert_fail("no other slot");
	return NULL;
}

Test(invalid_free, never_allocated_slot_aborts, .signal = SIGABRT, .init = quiet)
{
	struct two t = { mk("inv-never", 64, 0), NULL, NULL };
	t.p = get(t.c);
	t.q = unallocated_slot(t.c, t.p);
	never_allocated_free(&t);
}

Test(invalid_free, never_allocated_slot_message)
{
	struct two t = { mk("inv-never-msg", 64, 0), NULL, NULL };
	t.p = get(t.c);
	t.q = unallocated_slot(t.c, t.p);
	struct outcome o;
	run_in_child(never_allocated_free, &t, &o);
	check_message(&o, "slab_cache_free", t.q, "inv-never-msg");
}

/* A slot of the slab's last page: never chained (objects are chained a
 * page at a time), its memory may still hold an old object's bytes; its
 * free is refused by the slab's chained limit, not let through. */
static void *last_slot(struct slab_cache *c, void *p)
{
	struct slab_cache_info in;
	cr_assert_eq(slab_cache_info(c, &in), 0);
	char *base = (char *)((uintptr_t)p & ~(uintptr_t)(in.slab_bytes - 1));
	cr_assert_gt(in.objs_per_slab, 64, "a slab of more than a chunk");
	return base + (size_t)(in.objs_per_slab - 1) * in.size;
}

Test(invalid_free, never_chained_slot_message)
{
	struct two t = { mk("inv-unchained", 64, 0), NULL, NULL };
	t.p = get(t.c);
	t.q = last_slot(t.c, t.p);
	memset(t.q, 0, 64);       /* what a handed-out object's link word reads */
	struct outcome o;
	run_in_child(never_allocated_free, &t, &o);
	check_message(&o, "slab_cache_free", t.q, "inv-unchained");
	cr_assert_not_null(strstr(o.text, "never allocated"), "%s", o.text);
}

/* Every object of a slab is handed out once, across its chunks, also
 * when the slab changes hands with chunks never chained: a thread takes
 * one object of a fresh slab and exits; the slab, given up, is taken by
 * the next thread, which fills it and more. */
struct fill { struct slab_cache *c; void **objs; size_t n; };

static void *take_one(void *arg)
{
	struct fill *f = arg;
	f->objs[0] = slab_cache_alloc(f->c, 0);
	return NULL;
}

static int cmp_ptr(const void *a, const void *b)
{
	uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
	return x < y ? -1 : x > y;
}

Test(freelist, chunks_survive_a_change_of_owner)
{
	struct fill f = { mk("fl-chunks", 48, 0), NULL, 0 };
	struct slab_cache_info in;
	slab_cache_info(f.c, &in);
	f.n = 3 * (size_t)in.objs_per_slab;
	f.objs = calloc(f.n, sizeof(void *));
	pthread_t th;
	pthread_create(&th, NULL, take_one, &f);
	pthread_join(th, NULL);
	cr_assert_not_null(f.objs[0]);
	for (size_t i = 1; i < f.n; i++) {
		f.objs[i] = slab_cache_alloc(f.c, 0);
		cr_assert_not_null(f.objs[i]);
		memset(f.objs[i], (int)i, 48);
	}
	void **sorted = malloc(f.n * sizeof(void *));
	memcpy(sorted, f.objs, f.n * sizeof(void *));
	qsort(sorted, f.n, sizeof(void *), cmp_ptr);
	for (size_t i = 1; i < f.n; i++)
		cr_assert_geq((uintptr_t)sorted[i] - (uintptr_t)sorted[i - 1], 48, "%p handed out twice, or overlaps",
			      sorted[i]);
	slab_cache_info(f.c, &in);
	cr_assert_eq(in.active_objs, f.n);
	for (size_t i = 0; i < f.n; i++)
		slab_cache_free(f.c, f.objs[i]);
	slab_cache_info(f.c, &in);
	cr_assert_eq(in.active_objs, 0);
	free(sorted);
	free(f.objs);
	cr_assert_eq(slab_cache_destroy(f.c), 0);
}

/* The live object survives the attempt (in a process that continues:
 * here the attempt aborts, so check in the parent that nothing moved). */
Test(invalid_free, live_object_untouched_in_parent)
{
	struct two t = { mk("inv-live", 64, 0), NULL, NULL };
	t.p = get(t.c);
	memset(t.p, 0x5a, 64);
	t.q = unallocated_slot(t.c, t.p);
	struct outcome o;
	run_in_child(never_allocated_free, &t, &o);
	cr_assert(WIFSIGNALED(o.status));
	for (int i = 0; i < 64; i++)
		cr_assert_eq(((unsigned char *)t.p)[i], 0x5a);
	slab_cache_free(t.c, t.p);
	cr_assert_eq(slab_cache_destroy(t.c), 0);
}

/* ------------------------------------------------------------------ */
/* Free-list integrity and random order                               */
/* ------------------------------------------------------------------ */

/* A write after free into the link word: the next allocation that
 * reaches the object aborts; the bad link is never followed. */
static void use_after_free_write(void *arg)
{
	struct two *t = arg;
	slab_cache_free(t->c, t->p);
	memset(t->p, 0x41, 8);
	for (int i = 0; i < 100000; i++)
		(void)slab_cache_alloc(t->c, 0);
}

Test(freelist, use_after_free_write_aborts, .signal = SIGABRT, .init = quiet)
{
	struct two t = { mk("fl-uaf", 64, 0), NULL, NULL };
	t.p = get(t.c);
	use_after_free_write(&t);
}

Test(freelist, use_after_free_write_message)
{
	struct two t = { mk("fl-uaf-msg", 64, 0), NULL, NULL };
	t.p = get(t.c);
	struct outcome o;
	run_in_child(use_after_free_write, &t, &o);
	check_message(&o, "slab_cache_alloc", t.p, "fl-uaf-msg");
	cr_assert_not_null(strstr(o.text, "free list corrupted"), "%s", o.text);
}

/* A 16-byte overflow from a live object into its free neighbour. */
static void overflow_into_free(void *arg)
{
	struct two *t = arg;
	slab_free(t->q);
	memset(t->p, 0x42, 32 + 16);     /* 32-byte block, 16 bytes over */
	for (int i = 0; i < 100000; i++)
		(void)slab_malloc(32, 0);
}

Test(freelist, overflow_into_free_neighbour_aborts, .signal = SIGABRT, .init = quiet)
{
	/* Find two adjacent 32-byte blocks. */
	struct two t = { 0 };
	void *blocks[512];
	for (int i = 0; i < 512; i++)
		blocks[i] = slab_malloc(32, 0);
	for (int i = 0; i < 512 && !t.p; i++)
		for (int j = 0; j < 512; j++)
			if ((char *)blocks[j] == (char *)blocks[i] + 32) {
				t.p = blocks[i];
				t.q = blocks[j];
				break;
			}
	cr_assert_not_null(t.p);
	overflow_into_free(&t);
}

/* A fresh slab hands its objects out in a random order: not ascending,
 * not descending, and not the same for two slabs. */
Test(freelist, fresh_slabs_in_random_order)
{
	struct slab_cache *a = mk("fl-rand-a", 64, 0), *b = mk("fl-rand-b", 64, 0);
	uintptr_t pa[64], pb[64];
	for (int i = 0; i < 64; i++) {
		pa[i] = (uintptr_t)get(a);
		pb[i] = (uintptr_t)get(b);
	}
	int up = 0, same = 0;
	uintptr_t base_a = pa[0] & ~(uintptr_t)0x3fff, base_b = pb[0] & ~(uintptr_t)0x3fff;
	for (int i = 1; i < 64; i++) {
		up += pa[i] > pa[i - 1];
		same += (pa[i] - base_a) == (pb[i] - base_b);
	}
	cr_assert(up > 10 && up < 53, "%d of 63 steps upwards: not a random order", up);
	cr_assert_lt(same, 16, "two slabs share %d of 64 positions", same);
}

/* ...but objects allocated one after another stay near each other, so
 * that a program walking them in allocation order keeps its locality:
 * the shuffle windows of 64-byte objects are 512 bytes, so consecutive
 * allocations are less than 1 KiB apart except where the chain wraps to
 * its chunk's start or moves to the next chunk (twice per 64 objects).
 * A shuffle of whole 4 KiB chunks puts more than half of them further. */
Test(freelist, fresh_slabs_keep_allocation_order_local)
{
	struct slab_cache *c = mk("fl-local", 64, 0);
	uintptr_t p[512];
	for (int i = 0; i < 512; i++)
		p[i] = (uintptr_t)get(c);
	int far = 0;
	for (int i = 1; i < 512; i++)
		far += (p[i] > p[i - 1] ? p[i] - p[i - 1] : p[i - 1] - p[i]) >= 1024;
	cr_assert_lt(far, 40, "%d of 511 consecutive allocations 1 KiB or more apart", far);
}

/* The freelist word of a handed-out object is cleared: no allocator data
 * leaks into new objects (and nothing to recover the key from). */
Test(freelist, handed_out_objects_hold_no_link)
{
	struct slab_cache *c = mk("fl-clear", 64, 0);
	void *objs[300];
	for (int i = 0; i < 300; i++)
		objs[i] = get(c);
	for (int i = 0; i < 300; i++)
		slab_cache_free(c, objs[i]);
	for (int i = 0; i < 300; i++) {
		objs[i] = get(c);
		cr_assert_eq(*(uintptr_t *)objs[i], 0, "object %d holds %#lx", i,
			     (unsigned long)*(uintptr_t *)objs[i]);
	}
	for (int i = 0; i < 300; i++)
		slab_cache_free(c, objs[i]);
}

/* ------------------------------------------------------------------ */
/* Metadata out of reach                                              */
/* ------------------------------------------------------------------ */

/* The pages around a segment's descriptors are inaccessible: a linear
 * overflow from the segment below, or an underflow from the first
 * slab, faults there instead of rewriting descriptors. */
static void write_below_first_slab(void *arg)
{
	char *first = arg;
	first[-1] = 1;
}

/* The fault must reach the test: not a sanitizer's SIGSEGV handler. */
static void default_segv(void)
{
	signal(SIGSEGV, SIG_DFL);
}

Test(metadata, guard_page_below_first_slab, .signal = SIGSEGV, .init = default_segv)
{
	void *p = slab_malloc(64, 0);
	struct slab *s = slab_of(p);
	struct segment *seg = segment_of_slab(s);
	char *chunk = (char *)((uintptr_t)p & ~SN_SEG_MASK);
	write_below_first_slab(chunk + ((size_t)seg->first_slab << seg->slab_shift));
}

Test(metadata, guard_page_at_segment_start, .signal = SIGSEGV, .init = default_segv)
{
	void *p = slab_malloc(64, 0);
	char *chunk = (char *)((uintptr_t)p & ~SN_SEG_MASK);
	chunk[SN_PAGE_SIZE - 1] = 1;
}

/* A large object has no header next to it: its neighbours are not
 * trusted, an interior free is refused. */
static void large_interior_free(void *arg)
{
	slab_free((char *)arg + 4096);
}

Test(metadata, large_interior_free_refused)
{
	char *p = slab_malloc(1 << 20, 0);
	struct outcome o;
	run_in_child(large_interior_free, p, &o);
	check_message(&o, "slab_free", p + 4096, "kmalloc-large");
}

/* ------------------------------------------------------------------ */
/* Handles                                                            */
/* ------------------------------------------------------------------ */

Test(handles, stale_cache_handle_refused_after_slot_reuse)
{
	struct slab_cache *c = mk("h-old", 64, 0);
	void *p = get(c);
	slab_cache_free(c, p);
	cr_assert_eq(slab_cache_destroy(c), 0);
	/* The next cache takes the slot c had (the one freed first). */
	struct slab_cache *d = mk("h-new", 64, 0);
	cr_assert_neq(d, c, "a new handle for the reused slot");
	errno = 0;
	cr_assert_null(slab_cache_alloc(c, 0), "alloc through a stale handle");
	cr_assert_eq(errno, EINVAL);
	errno = 0;
	cr_assert_eq(slab_cache_destroy(c), -EINVAL, "second destroy through a stale handle");
	cr_assert_eq(errno, EINVAL);
	cr_assert_eq(slab_cache_set_notify(c, true), -EINVAL);
	struct slab_cache_info in;
	cr_assert_eq(slab_cache_info(c, &in), -EINVAL);
	cr_assert_null(slab_cache_name(c));
	/* d is untouched and works. */
	void *q = get(d);
	slab_cache_free(d, q);
	cr_assert_eq(slab_cache_destroy(d), 0);
}

Test(handles, alloc_after_destroy_refused)
{
	struct slab_cache *c = mk("h-gone", 64, 0);
	slab_cache_free(c, get(c));
	cr_assert_eq(slab_cache_destroy(c), 0);
	errno = 0;
	cr_assert_null(slab_cache_alloc(c, 0));
	cr_assert_eq(errno, EINVAL);
}

Test(handles, null_and_foreign_handles_refused)
{
	int local;
	errno = 0;
	cr_assert_null(slab_cache_alloc(NULL, 0));
	cr_assert_eq(errno, EINVAL);
	cr_assert_null(slab_cache_alloc((struct slab_cache *)&local, 0));
	cr_assert_null(slab_cache_alloc((struct slab_cache *)(uintptr_t)0x10, 0));
	cr_assert_eq(slab_cache_destroy(NULL), -EINVAL);
	cr_assert_eq(slab_cache_destroy((struct slab_cache *)&local), -EINVAL);
	cr_assert_eq(slab_cache_shrink((struct slab_cache *)&local), -EINVAL);
}

static void free_to_stale_handle(void *arg)
{
	struct two *t = arg;
	slab_cache_free(t->c, t->p);
}

Test(handles, free_through_stale_handle_aborts)
{
	struct slab_cache *c = mk("h-stale-free", 64, 0);
	slab_cache_free(c, get(c));
	cr_assert_eq(slab_cache_destroy(c), 0);
	struct slab_cache *d = mk("h-stale-new", 64, 0);
	struct two t = { c, get(d), NULL };
	struct outcome o;
	run_in_child(free_to_stale_handle, &t, &o);
	cr_assert(WIFSIGNALED(o.status) && WTERMSIG(o.status) == SIGABRT, "%s", o.text);
	cr_assert_not_null(strstr(o.text, "slab_cache_free()"), "%s", o.text);
}

struct find {
	const char *name;
	struct slab_cache *c;
};

static void find_cb(struct slab_cache *c, void *arg)
{
	struct find *x = arg;
	if (!strcmp(slab_cache_name(c), x->name))
		x->c = c;
}

Test(handles, builtin_caches_cannot_be_destroyed)
{
	void *p = slab_malloc(64, 0);
	slab_free(p);
	struct slab_cache *k = NULL;
	struct find f = { "kmalloc-64", NULL };
	slab_cache_for_each(find_cb, &f);
	k = f.c;
	cr_assert_not_null(k);
	errno = 0;
	cr_assert_eq(slab_cache_destroy(k), -EINVAL);
	cr_assert_eq(errno, EINVAL);
	f.name = "kmalloc-large";
	f.c = NULL;
	slab_cache_for_each(find_cb, &f);
	cr_assert_eq(slab_cache_destroy(f.c), -EINVAL);
	/* slab_malloc still allocates from kmalloc-64. */
	p = slab_malloc(64, 0);
	cr_assert_not_null(p);
	slab_free(p);
}

Test(handles, unknown_gfp_bits_refused)
{
	struct slab_cache *c = mk("h-gfp", 64, 0);
	errno = 0;
	cr_assert_null(slab_cache_alloc(c, 0x100));
	cr_assert_eq(errno, EINVAL);
	errno = 0;
	cr_assert_null(slab_malloc(64, 0x8000));
	cr_assert_eq(errno, EINVAL);
	struct slab_cache_info in;
	slab_cache_info(c, &in);
	cr_assert_eq(in.active_objs, 0, "the refused object went back");
	cr_assert_eq(slab_cache_destroy(c), 0);
}

/* kmalloc works even when the cache table was filled first. */
Test(handles, kmalloc_after_the_table_is_full)
{
	static struct slab_cache *made[SLAB_MAX_CACHES];
	int n = 0;
	while (n < SLAB_MAX_CACHES && (made[n] = slab_cache_create("fill", 16, 0, 0, NULL)))
		n++;
	cr_assert_eq(errno, ENOMEM);
	void *p = slab_malloc(100, 0);
	cr_assert_not_null(p, "slab_malloc with a full cache table: %s", strerror(errno));
	slab_free(p);
	for (int i = 0; i < n; i++)
		cr_assert_eq(slab_cache_destroy(made[i]), 0);
	p = slab_malloc(5000, 0);
	cr_assert_not_null(p);
	slab_free(p);
}

/* ------------------------------------------------------------------ */
/* RCU callbacks never outlive their cache                            */
/* ------------------------------------------------------------------ */

/* Switching notification off twice queues a drain that re-queues itself;
 * destroy must wait for it, or the next cache in the slot zeroes a
 * queued rcu_head (a NULL call on liburcu's thread). */
Test(rcu, no_callback_pending_after_destroy)
{
	for (int round = 0; round < 20; round++) {
		struct slab_cache *c = mk("rcu-drain", 64, SLAB_NOTIFY | SLAB_TYPESAFE_BY_RCU);
		slab_cache_free(c, get(c));
		cr_assert_eq(slab_cache_set_notify(c, false), 0);
		cr_assert_eq(slab_cache_set_notify(c, false), 0);
		struct slab_cache *raw = cache_of_handle(c);
		cr_assert_eq(slab_cache_destroy(c), 0);
		cr_assert_eq(atomic_load(&raw->rcu_pending), 0, "round %d: a callback is still queued", round);
		/* The slot is taken again at once, and used. */
		struct slab_cache *d = mk("rcu-next", 64, SLAB_NOTIFY);
		cr_assert_eq(cache_of_handle(d), raw, "the same slot");
		slab_cache_free(d, get(d));
		cr_assert_eq(slab_cache_destroy(d), 0);
	}
	urcu_bp_barrier();
}

/* ------------------------------------------------------------------ */
/* FREE events survive destroy and re-creation in the same slot       */
/* ------------------------------------------------------------------ */

static int frees_seen, allocs_seen;
static int count_events(struct slab_notifier *nb, enum slab_event ev, const struct slab_event_data *d)
{
	(void)nb;
	(void)d;
	if (ev == SLAB_EVENT_ALLOC)
		allocs_seen++;
	if (ev == SLAB_EVENT_FREE)
		frees_seen++;
	return SLAB_NOTIFY_OK;
}

Test(notify_slot, free_delivered_after_recreate_in_same_slot)
{
	static struct slab_notifier nb = { .call = count_events };
	cr_assert_eq(slab_notifier_register(&nb), 0);
	struct slab_cache *c = mk("ns-old", 64, SLAB_NOTIFY);
	void *objs[600];
	for (int i = 0; i < 600; i++)
		objs[i] = get(c);
	for (int i = 0; i < 600; i++)
		slab_cache_free(c, objs[i]);
	struct slab_cache *raw = cache_of_handle(c);
	cr_assert_eq(slab_cache_destroy(c), 0);
	struct slab_cache *d = mk("ns-new", 64, SLAB_NOTIFY);
	cr_assert_eq(cache_of_handle(d), raw);
	allocs_seen = frees_seen = 0;
	void *p = get(d);
	cr_assert_eq(slab_cache_set_notify(d, false), 0);
	slab_cache_free(d, p);
	cr_assert_eq(allocs_seen, 1);
	cr_assert_eq(frees_seen, 1, "the FREE of an object allocated with notification on");
	cr_assert_eq(slab_cache_destroy(d), 0);
	cr_assert_eq(slab_notifier_unregister(&nb), 0);
}

Test(notify_slot, memcg_charge_back_to_zero_after_recreate)
{
	struct slab_memcg *g = slab_memcg_create(NULL, "ns-g");
	cr_assert_not_null(g);
	struct slab_memcg *prev = slab_memcg_enter(g);
	struct slab_cache *c = mk("ns-acct-old", 64, SLAB_ACCOUNT);
	void *objs[600];
	for (int i = 0; i < 600; i++)
		objs[i] = get(c);
	for (int i = 0; i < 600; i++)
		slab_cache_free(c, objs[i]);
	cr_assert_eq(slab_cache_destroy(c), 0);
	struct slab_cache *d = mk("ns-acct-new", 64, SLAB_ACCOUNT);
	void *p = get(d);
	cr_assert_eq(slab_cache_set_notify(d, false), 0);
	slab_cache_free(d, p);
	slab_memcg_drain_stock();
	struct slab_memcg_stat st;
	cr_assert_eq(slab_memcg_stat(g, &st), 0);
	cr_assert_eq(st.usage, 0, "usage %zu objects %lu", st.usage, st.nr_objects);
	cr_assert_eq(st.nr_objects, 0);
	cr_assert_eq(slab_cache_destroy(d), 0);
	slab_memcg_enter(prev);
	cr_assert_eq(slab_memcg_destroy(g), 0);
}

/* ------------------------------------------------------------------ */
/* Handlers may call the API: no lock of slabnotify's is held         */
/* ------------------------------------------------------------------ */

static struct slab_cache *probe_cache;
static int freepage_calls;
static void nop_cb(struct slab_cache *c, void *arg)
{
	(void)c;
	(void)arg;
}

static int api_in_freepage(struct slab_notifier *nb, enum slab_event ev, const struct slab_event_data *d)
{
	(void)nb;
	if (ev == SLAB_EVENT_FREEPAGE) {
		struct slab_cache_info in;
		slab_cache_info(d->cache, &in);
		slab_cache_for_each(nop_cb, NULL);
		slab_info_print(fopen("/dev/null", "w"));
		freepage_calls++;
	}
	return SLAB_NOTIFY_OK;
}

Test(handler_locks, freepage_during_destroy_may_call_the_api, .timeout = 30)
{
	static struct slab_notifier nb = { .call = api_in_freepage };
	cr_assert_eq(slab_notifier_register(&nb), 0);
	probe_cache = mk("hl-destroy", 64, SLAB_NOTIFY);
	void *objs[600];
	for (int i = 0; i < 600; i++)
		objs[i] = get(probe_cache);
	for (int i = 0; i < 600; i++)
		slab_cache_free(probe_cache, objs[i]);
	cr_assert_eq(slab_cache_destroy(probe_cache), 0);
	cr_assert_gt(freepage_calls, 0);
	cr_assert_eq(slab_notifier_unregister(&nb), 0);
}

static void *alloc_and_exit(void *arg)
{
	struct slab_cache *c = arg;
	void *objs[600];
	for (int i = 0; i < 600; i++)
		objs[i] = slab_cache_alloc(c, 0);
	for (int i = 0; i < 600; i++)
		slab_cache_free(c, objs[i]);
	return NULL;   /* the thread's slabs go back at exit: FREEPAGE */
}

Test(handler_locks, freepage_at_thread_exit_may_call_the_api, .timeout = 30)
{
	static struct slab_notifier nb = { .call = api_in_freepage };
	cr_assert_eq(slab_notifier_register(&nb), 0);
	struct slab_cache *c = mk("hl-exit", 64, SLAB_NOTIFY);
	for (int i = 0; i < 4; i++) {
		pthread_t th;
		pthread_create(&th, NULL, alloc_and_exit, c);
		pthread_join(th, NULL);
	}
	slab_cache_shrink(c);
	cr_assert_gt(freepage_calls, 0);
	cr_assert_eq(slab_cache_destroy(c), 0);
	cr_assert_eq(slab_notifier_unregister(&nb), 0);
}

/* ------------------------------------------------------------------ */
/* Alignment                                                          */
/* ------------------------------------------------------------------ */

Test(alignment, huge_alignments_are_given)
{
	static const size_t aligns[] = { (size_t)2 << 20, (size_t)4 << 20, (size_t)64 << 20 };
	for (size_t i = 0; i < sizeof(aligns) / sizeof(aligns[0]); i++) {
		void *p = slab_malloc_aligned(100, aligns[i], 0);
		cr_assert_not_null(p, "align %zu: %s", aligns[i], strerror(errno));
		cr_assert_eq((uintptr_t)p % aligns[i], 0, "%p not aligned to %zu", p, aligns[i]);
		memset(p, 1, 100);
		cr_assert_geq(slab_usable_size(p), 100);
		slab_free(p);
	}
}

/* ------------------------------------------------------------------ */
/* Memory-group handles                                               */
/* ------------------------------------------------------------------ */

Test(memcg_handles, foreign_and_stale_handles_refused)
{
	int local;
	struct slab_memcg *fake = (struct slab_memcg *)&local;
	errno = 0;
	cr_assert_null(slab_memcg_create(fake, "child-of-a-stack-int"));
	cr_assert_eq(errno, EINVAL);
	cr_assert_eq(local, local, "nothing written into it");
	struct slab_memcg *g = slab_memcg_create(NULL, "mh-g");
	cr_assert_not_null(g);
	cr_assert_eq(slab_memcg_destroy(g), 0);
	errno = 0;
	cr_assert_eq(slab_memcg_destroy(g), -EINVAL, "destroying a released group");
	cr_assert_eq(errno, EINVAL);
	errno = 0;
	cr_assert_null(slab_memcg_enter(g), "entering a released group");
	cr_assert_eq(errno, EINVAL);
	cr_assert_null(slab_memcg_create(g, "child-of-a-released-group"));
	struct slab_memcg_stat st;
	cr_assert_eq(slab_memcg_stat(g, &st), -EINVAL);
	cr_assert_eq(slab_memcg_set_max(g, 1), -EINVAL);
	cr_assert_eq(slab_memcg_set_max(fake, 1), -EINVAL);
	cr_assert_eq(slab_memcg_set_max(NULL, 1), -EINVAL);
	/* Its slot reused: the old handle still names nothing. */
	struct slab_memcg *h = slab_memcg_create(NULL, "mh-h");
	cr_assert_not_null(h);
	cr_assert_neq(h, g);
	cr_assert_eq(slab_memcg_destroy(g), -EINVAL);
	cr_assert_eq(slab_memcg_stat(h, &st), 0);
	cr_assert_eq(slab_memcg_destroy(h), 0);
	cr_assert_eq(slab_memcg_destroy(slab_memcg_root()), -EINVAL);
}

/* ------------------------------------------------------------------ */
/* high: Linux's throttling, or counting only                          */
/* ------------------------------------------------------------------ */

static unsigned long long mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000;
}

/* Throttling off: far above high, nothing sleeps; events are counted. */
Test(memcg_high, counting_only_never_sleeps, .timeout = 30)
{
	struct slab_memcg *g = slab_memcg_create(NULL, "hi-count");
	cr_assert_eq(slab_memcg_set_high(g, 1 << 20), 0);
	cr_assert_eq(slab_memcg_set_throttle(g, false), 0);
	struct slab_memcg *prev = slab_memcg_enter(g);
	static void *p[4096];
	unsigned long long t0 = mono_us();
	for (int i = 0; i < 4096; i++)   /* 16 MiB: 15x the high limit */
		p[i] = slab_malloc(4000, SLAB_GFP_ACCOUNT);
	unsigned long long took = mono_us() - t0;
	struct slab_memcg_stat st;
	slab_memcg_stat(g, &st);
	cr_assert_gt(st.events_high, 0);
	cr_assert_eq(st.throttled_us, 0);
	cr_assert_lt(took, 5000000ull, "took %llu us", took);
	for (int i = 0; i < 4096; i++)
		slab_free(p[i]);
	slab_memcg_enter(prev);
	cr_assert_eq(slab_memcg_destroy(g), 0);
}

/* Throttling on: a thread owes ((usage-high)/high)^2 s per page charged
 * over high; a small overage costs little, and no allocation sleeps more
 * than 2 s. 5 % over high for 64 pages: 0.0025 s a page, about 160 ms. */
Test(memcg_high, linux_throttling_scales_with_the_pages_over, .timeout = 60)
{
	struct slab_memcg *g = slab_memcg_create(NULL, "hi-thr");
	size_t high = 5u << 20;
	cr_assert_eq(slab_memcg_set_high(g, high), 0);
	struct slab_memcg *prev = slab_memcg_enter(g);
	static void *p[2048];
	int n = 0;
	while (n < 1280)          /* up to the high limit: no throttling */
		p[n++] = slab_malloc(4000, SLAB_GFP_ACCOUNT);
	struct slab_memcg_stat st;
	slab_memcg_stat(g, &st);
	cr_assert_eq(st.throttled_us, 0, "below high: %lu us", st.throttled_us);
	unsigned long long t0 = mono_us();
	while (n < 1280 + 64 + 64)
		p[n++] = slab_malloc(4000, SLAB_GFP_ACCOUNT);
	unsigned long long took = mono_us() - t0;
	slab_memcg_stat(g, &st);
	cr_assert_gt(st.throttled_us, 20000, "throttled %lu us", st.throttled_us);
	cr_assert_lt(st.throttled_us, 2000000, "throttled %lu us: quadratic in a small overage", st.throttled_us);
	cr_assert_lt(took, 3000000ull);
	for (int i = 0; i < n; i++)
		slab_free(p[i]);
	slab_memcg_enter(prev);
	cr_assert_eq(slab_memcg_destroy(g), 0);
}

/* ------------------------------------------------------------------ */
/* The lock order is checked (debug and sanitizer builds)             */
/* ------------------------------------------------------------------ */

#ifdef SLABNOTIFY_WITNESS
static void wrong_order(void *arg)
{
	(void)arg;
	static struct sn_mutex a = SN_MUTEX_INIT(SN_RANK_POOL), b = SN_MUTEX_INIT(SN_RANK_CACHE);
	sn_lock(&a);
	sn_lock(&b);
}

Test(witness, lock_order_violation_aborts)
{
	struct outcome o;
	run_in_child(wrong_order, NULL, &o);
	cr_assert(WIFSIGNALED(o.status) && WTERMSIG(o.status) == SIGABRT, "%s", o.text);
	cr_assert_not_null(strstr(o.text, "lock order violation"), "%s", o.text);
	cr_assert_not_null(strstr(o.text, "cache lock"), "%s", o.text);
}
#endif
