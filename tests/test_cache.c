/*
 * test_cache.c - the object-cache API of the core allocator:
 * slab_cache_create() and its error paths, slab_cache_info(), object
 * alignment, SLAB_GFP_ZERO, constructors, shrink, destroy (including the
 * -EBUSY message), the statistics counters, slab_info_print(),
 * slab_cache_for_each() and slab_cache_name().
 *
 * Criterion runs every Test() in a fresh process, so each test starts
 * with an allocator that has seen nothing but that test. Everything here
 * is single-threaded, where slab_cache_info() is documented as exact.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <slabnotify.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* Helpers                                                            */
/* ------------------------------------------------------------------ */

static struct slab_cache_info info_of(const struct slab_cache *c)
{
	struct slab_cache_info in;

	memset(&in, 0xff, sizeof(in)); /* garbage: every field must be filled */
	int rc = slab_cache_info(c, &in);
	cr_assert_eq(rc, 0, "slab_cache_info() = %d (%s)", rc, strerror(errno));
	return in;
}

static struct slab_cache *create_ok(const char *name, size_t size, size_t align,
				    slab_flags_t flags, void (*ctor)(void *))
{
	errno = 0;
	struct slab_cache *c = slab_cache_create(name, size, align, flags, ctor);
	cr_assert_not_null(c, "slab_cache_create(%s, %zu, %zu, %#x) failed: %s",
			   name, size, align, flags, strerror(errno));
	return c;
}

/* slab_cache_create() must fail with NULL and errno EINVAL. */
static void expect_create_einval(const char *what, const char *name, size_t size,
				 size_t align, slab_flags_t flags)
{
	errno = 0;
	struct slab_cache *c = slab_cache_create(name, size, align, flags, NULL);
	int err = errno;
	cr_expect_null(c, "%s: slab_cache_create() should have failed", what);
	cr_expect_eq(err, EINVAL, "%s: errno = %d (%s), expected EINVAL", what,
		     err, strerror(err));
	if (c)
		slab_cache_destroy(c);
}

static void destroy_ok(struct slab_cache *c)
{
	int rc = slab_cache_destroy(c);
	cr_assert_eq(rc, 0, "slab_cache_destroy() = %d, expected 0", rc);
}

/* Consistency every quiescent cache must show, whatever its history. */
static void check_invariants(const struct slab_cache_info *in)
{
	cr_assert_gt(in->objs_per_slab, 0);
	cr_assert_eq(in->num_objs, in->num_slabs * (unsigned long)in->objs_per_slab,
		     "num_objs %lu != num_slabs %lu * objs_per_slab %u",
		     in->num_objs, in->num_slabs, in->objs_per_slab);
	cr_assert_leq(in->active_objs, in->num_objs);
	cr_assert_leq(in->active_slabs, in->num_slabs);
	/* Every slab holding an object is active, so enough of them exist. */
	cr_assert_geq(in->active_slabs * (unsigned long)in->objs_per_slab,
		      in->active_objs);
	cr_assert_eq(in->num_slabs, in->alloc_slab - in->free_slab,
		     "num_slabs %lu != alloc_slab %lu - free_slab %lu",
		     in->num_slabs, in->alloc_slab, in->free_slab);
}

static int cmp_ptr(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t)*(void *const *)a, y = (uintptr_t)*(void *const *)b;
	return x < y ? -1 : x > y;
}

/* Objects must not overlap: sorted, each ends before the next begins. */
static void check_disjoint(void **objs, size_t n, size_t size)
{
	void **sorted = malloc(n * sizeof(*sorted));
	cr_assert_not_null(sorted);
	memcpy(sorted, objs, n * sizeof(*sorted));
	qsort(sorted, n, sizeof(*sorted), cmp_ptr);
	for (size_t i = 1; i < n; i++)
		cr_assert_geq((uintptr_t)sorted[i] - (uintptr_t)sorted[i - 1], size,
			      "objects %p and %p overlap (size %zu)", sorted[i - 1],
			      sorted[i], size);
	free(sorted);
}

/*
 * Run slab_cache_destroy() with fd 2 sent to a temporary file and return
 * what was written there (malloc'd, NUL-terminated).
 */
static char *destroy_capturing_stderr(struct slab_cache *c, int *rc, int *err)
{
	FILE *tmp = tmpfile();
	cr_assert_not_null(tmp);
	fflush(stderr);
	int saved = dup(STDERR_FILENO);
	cr_assert_geq(saved, 0);
	cr_assert_geq(dup2(fileno(tmp), STDERR_FILENO), 0);

	errno = 0;
	*rc = slab_cache_destroy(c);
	*err = errno;

	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);

	off_t len = lseek(fileno(tmp), 0, SEEK_END);
	cr_assert_geq(len, 0);
	char *buf = calloc(1, (size_t)len + 1);
	cr_assert_not_null(buf);
	cr_assert_eq(pread(fileno(tmp), buf, (size_t)len, 0), len);
	fclose(tmp);
	return buf;
}

/* slab_info_print() into a malloc'd string. */
static char *slabinfo_text(void)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	cr_assert_not_null(f);
	slab_info_print(f);
	fclose(f);
	cr_assert_not_null(buf);
	return buf;
}

/* The slabinfo line whose first field is @name, copied into @line. */
static bool find_slabinfo_line(const char *text, const char *name, char *line,
			       size_t cap)
{
	size_t nlen = strlen(name);
	for (const char *s = text; *s;) {
		const char *e = strchr(s, '\n');
		size_t l = e ? (size_t)(e - s) : strlen(s);
		if (l > nlen && strncmp(s, name, nlen) == 0 &&
		    (s[nlen] == ' ' || s[nlen] == '\t')) {
			if (l >= cap)
				l = cap - 1;
			memcpy(line, s, l);
			line[l] = '\0';
			return true;
		}
		s = e ? e + 1 : s + l;
	}
	return false;
}

/* ------------------------------------------------------------------ */
/* slab_cache_create(): errors and valid boundaries                   */
/* ------------------------------------------------------------------ */

Test(cache_create, invalid_arguments_give_einval)
{
	expect_create_einval("NULL name", NULL, 64, 0, 0);
	expect_create_einval("size 0", "bad-size0", 0, 0, 0);
	expect_create_einval("align 3", "bad-align3", 64, 3, 0);
	expect_create_einval("align 24", "bad-align24", 64, 24, 0);
	expect_create_einval("align 6", "bad-align6", 64, 6, 0);
	expect_create_einval("align 48", "bad-align48", 64, 48, 0);
	expect_create_einval("align 4097", "bad-align4097", 64, 4097, 0);
	expect_create_einval("align SIZE_MAX", "bad-alignmax", 64, SIZE_MAX, 0);
	expect_create_einval("flag 0x1", "bad-flag1", 64, 0, 0x1);
	expect_create_einval("flag 0x80000000", "bad-flaghi", 64, 0, 0x80000000U);
	expect_create_einval("known flag plus 0x1", "bad-flagmix", 64, 0,
			     SLAB_HWCACHE_ALIGN | 0x1);
	expect_create_einval("size MAX+1", "bad-big", SLAB_MAX_OBJECT_SIZE + 1, 0, 0);
	expect_create_einval("size MAX+8", "bad-big8", SLAB_MAX_OBJECT_SIZE + 8, 0, 0);
	expect_create_einval("size SIZE_MAX", "bad-sizemax", SIZE_MAX, 0, 0);
	/* Rounding SIZE_MAX-7 up to 8 would overflow to 0: still EINVAL. */
	expect_create_einval("size SIZE_MAX-7", "bad-sizewrap", SIZE_MAX - 7, 0, 0);
	/* A small object aligned to twice the limit no longer fits a slab. */
	expect_create_einval("align beyond slab", "bad-bigalign", 100,
			     2 * (size_t)SLAB_MAX_OBJECT_SIZE, 0);
}

/* The largest object size is legal, and such objects are usable. */
Test(cache_create, max_object_size_is_accepted)
{
	struct slab_cache *c = create_ok("max-object", SLAB_MAX_OBJECT_SIZE, 0, 0, NULL);
	struct slab_cache_info in = info_of(c);
	cr_assert_eq(in.object_size, SLAB_MAX_OBJECT_SIZE);
	cr_assert_geq(in.slab_bytes, in.objs_per_slab * in.size);

	void *a = slab_cache_alloc(c, 0);
	void *b = slab_cache_alloc(c, 0);
	cr_assert_not_null(a);
	cr_assert_not_null(b);
	void *objs[2] = { a, b };
	check_disjoint(objs, 2, SLAB_MAX_OBJECT_SIZE);
	memset(a, 0x11, SLAB_MAX_OBJECT_SIZE);
	memset(b, 0x22, SLAB_MAX_OBJECT_SIZE);
	cr_assert_eq(((unsigned char *)a)[SLAB_MAX_OBJECT_SIZE - 1], 0x11);
	cr_assert_eq(((unsigned char *)b)[0], 0x22);
	slab_cache_free(c, a);
	slab_cache_free(c, b);
	destroy_ok(c);
}

/*
 * A cache with @flags can be created, reports its flags, and hands out
 * usable objects. One test per flag so a failure names the flag.
 */
static void exercise_flags(const char *name, slab_flags_t flags)
{
	struct slab_cache *c = create_ok(name, 48, 0, flags, NULL);
	struct slab_cache_info in = info_of(c);
	cr_expect_eq(in.flags & flags, flags, "flags %#x reported as %#x", flags,
		     in.flags);
	/* SLAB_ACCOUNT implies SLAB_NOTIFY. */
	bool want_notify = flags & (SLAB_NOTIFY | SLAB_ACCOUNT);
	cr_expect_eq(in.notify, want_notify, "flags %#x: notify %d", flags, in.notify);
	void *objs[8];
	for (int i = 0; i < 8; i++) {
		objs[i] = slab_cache_alloc(c, 0);
		cr_assert_not_null(objs[i], "flags %#x: alloc failed: %s", flags,
				   strerror(errno));
		memset(objs[i], 0x5c, 48);
	}
	cr_assert_eq(info_of(c).active_objs, 8);
	for (int i = 0; i < 8; i++)
		slab_cache_free(c, objs[i]);
	cr_assert_eq(info_of(c).active_objs, 0);
	destroy_ok(c);
}

Test(cache_flags, none)
{
	exercise_flags("flags-none", 0);
}

Test(cache_flags, hwcache_align)
{
	exercise_flags("flags-hwcache", SLAB_HWCACHE_ALIGN);
}

Test(cache_flags, typesafe_by_rcu)
{
	exercise_flags("flags-rcu", SLAB_TYPESAFE_BY_RCU);
}

Test(cache_flags, notify)
{
	exercise_flags("flags-notify", SLAB_NOTIFY);
}

Test(cache_flags, account)
{
	exercise_flags("flags-account", SLAB_ACCOUNT);
}

Test(cache_flags, all_together)
{
	exercise_flags("flags-all", SLAB_HWCACHE_ALIGN | SLAB_TYPESAFE_BY_RCU |
					    SLAB_NOTIFY | SLAB_ACCOUNT);
}

/* The name is copied: changing the caller's buffer changes nothing. */
Test(cache_create, name_is_copied)
{
	char buf[32] = "copied-name";
	struct slab_cache *c = create_ok(buf, 32, 0, 0, NULL);
	memset(buf, 'X', sizeof(buf) - 1);
	cr_assert_str_eq(slab_cache_name(c), "copied-name");
	struct slab_cache_info in = info_of(c);
	cr_assert_str_eq(in.name, "copied-name");
	destroy_ok(c);
}

static void count_cb(struct slab_cache *c, void *arg)
{
	(void)c;
	(void)arg;
}

/* At most SLAB_MAX_CACHES caches live at once; beyond that ENOMEM. */
Test(cache_create, cache_slots_run_out_with_enomem, .timeout = 120)
{
	int before = slab_cache_for_each(count_cb, NULL);
	cr_assert_geq(before, 0);
	static struct slab_cache *made[SLAB_MAX_CACHES + 1];
	int n = 0, err = 0;
	for (; n <= SLAB_MAX_CACHES; n++) {
		char name[32];
		snprintf(name, sizeof(name), "slot-%d", n);
		errno = 0;
		made[n] = slab_cache_create(name, 16, 0, 0, NULL);
		if (!made[n]) {
			err = errno;
			break;
		}
	}
	cr_assert_leq(n, SLAB_MAX_CACHES, "created %d caches, limit is %d", n,
		      SLAB_MAX_CACHES);
	cr_assert_eq(err, ENOMEM, "failure errno %d (%s), expected ENOMEM", err,
		     strerror(err));
	/* Only the caches that already existed may have taken slots. */
	cr_assert_geq(n, SLAB_MAX_CACHES - before,
		      "only %d caches could be created (%d existed before)", n, before);
	for (int i = 0; i < n; i++)
		destroy_ok(made[i]);
	/* Slots come back after destroy. */
	struct slab_cache *again = create_ok("slot-again", 16, 0, 0, NULL);
	destroy_ok(again);
}

/* ------------------------------------------------------------------ */
/* slab_cache_info()                                                  */
/* ------------------------------------------------------------------ */

Test(cache_info, null_arguments_give_einval)
{
	struct slab_cache *c = create_ok("info-null", 32, 0, 0, NULL);
	struct slab_cache_info in;
	errno = 0;
	cr_expect_eq(slab_cache_info(NULL, &in), -EINVAL);
	cr_expect_eq(errno, EINVAL);
	errno = 0;
	cr_expect_eq(slab_cache_info(c, NULL), -EINVAL);
	cr_expect_eq(errno, EINVAL);
	destroy_ok(c);
}

Test(cache_info, fields_of_a_new_cache)
{
	struct slab_cache *c = create_ok("info-40", 40, 0, 0, NULL);
	struct slab_cache_info in = info_of(c);

	cr_assert_str_eq(in.name, "info-40");
	cr_assert_eq(in.object_size, 40);
	cr_assert_geq(in.size, in.object_size);
	cr_assert_eq(in.align, 8, "align 0 means 8, got %zu", in.align);
	cr_assert_eq(in.size % in.align, 0, "stride %zu not a multiple of %zu",
		     in.size, in.align);
	cr_assert_gt(in.objs_per_slab, 0);
	cr_assert_geq(in.slab_bytes, in.objs_per_slab * in.size,
		      "slab_bytes %zu < %u * %zu", in.slab_bytes, in.objs_per_slab,
		      in.size);
	cr_assert_eq(in.active_objs, 0);
	cr_assert_eq(in.active_slabs, 0);
	cr_assert_eq(in.flags, 0);
	cr_assert_eq(in.notify, false);
	cr_assert_eq(in.alloc_fastpath + in.alloc_slowpath, 0);
	cr_assert_eq(in.free_fastpath + in.free_slowpath, 0);
	check_invariants(&in);
	destroy_ok(c);
}

/* active_objs follows every alloc and free exactly, across slabs. */
Test(cache_info, active_objs_count_exactly)
{
	struct slab_cache *c = create_ok("info-count", 40, 0, 0, NULL);
	unsigned per = info_of(c).objs_per_slab;
	size_t n = 3 * (size_t)per + 5; /* more than three slabs */
	void **objs = calloc(n, sizeof(*objs));
	cr_assert_not_null(objs);

	for (size_t i = 0; i < n; i++) {
		objs[i] = slab_cache_alloc(c, 0);
		cr_assert_not_null(objs[i], "alloc %zu: %s", i, strerror(errno));
		struct slab_cache_info in = info_of(c);
		cr_assert_eq(in.active_objs, i + 1, "after %zu allocs active_objs = %lu",
			     i + 1, in.active_objs);
		check_invariants(&in);
	}
	struct slab_cache_info full = info_of(c);
	cr_assert_geq(full.num_slabs, 4, "%zu objects of %u per slab in %lu slabs", n,
		      per, full.num_slabs);
	cr_assert_geq(full.alloc_slab, 4);

	/* Free in an order that is neither LIFO nor FIFO: evens, then odds. */
	size_t freed = 0;
	for (size_t pass = 0; pass < 2; pass++) {
		for (size_t i = pass; i < n; i += 2) {
			slab_cache_free(c, objs[i]);
			freed++;
			struct slab_cache_info in = info_of(c);
			cr_assert_eq(in.active_objs, n - freed,
				     "after %zu frees active_objs = %lu", freed,
				     in.active_objs);
			check_invariants(&in);
		}
	}
	struct slab_cache_info in = info_of(c);
	cr_assert_eq(in.active_objs, 0);
	/* As in SLUB, a thread's active slab counts as active even when it
	 * is empty (the header says so); every other slab is empty now. */
	cr_assert_leq(in.active_slabs, 1, "no object live but %lu active slabs",
		      in.active_slabs);
	cr_assert_gt(slab_cache_shrink(c), 0);
	in = info_of(c);
	cr_assert_eq(in.active_slabs, 0, "after shrink %lu active slabs", in.active_slabs);
	free(objs);
	destroy_ok(c);
}

/* ------------------------------------------------------------------ */
/* Alignment                                                          */
/* ------------------------------------------------------------------ */

/* Allocate a bit more than two slabs, check alignment, distinctness and
 * that every byte is ours, then free everything. */
static void exercise_alignment(const char *name, size_t size, size_t align,
			       slab_flags_t flags, size_t want_align)
{
	struct slab_cache *c = create_ok(name, size, align, flags, NULL);
	struct slab_cache_info in = info_of(c);
	cr_assert_eq(in.align, want_align, "%s: info.align %zu, expected %zu", name,
		     in.align, want_align);
	cr_assert_eq(in.size % want_align, 0, "%s: stride %zu not a multiple of %zu",
		     name, in.size, want_align);

	size_t n = 2 * (size_t)in.objs_per_slab + 1;
	if (n > 1000)
		n = 1000;
	void **objs = calloc(n, sizeof(*objs));
	cr_assert_not_null(objs);
	for (size_t i = 0; i < n; i++) {
		objs[i] = slab_cache_alloc(c, 0);
		cr_assert_not_null(objs[i]);
		cr_assert_eq((uintptr_t)objs[i] % want_align, 0,
			     "%s: object %p not aligned to %zu", name, objs[i], want_align);
		memset(objs[i], (int)(i & 0xff), size);
	}
	check_disjoint(objs, n, size);
	for (size_t i = 0; i < n; i++) {
		const unsigned char *b = objs[i];
		for (size_t j = 0; j < size; j++)
			cr_assert_eq(b[j], i & 0xff, "%s: object %zu byte %zu clobbered",
				     name, i, j);
		slab_cache_free(c, objs[i]);
	}
	cr_assert_eq(info_of(c).active_objs, 0);
	free(objs);
	destroy_ok(c);
}

Test(cache_align, every_power_of_two_8_to_4096)
{
	for (size_t align = 8; align <= 4096; align <<= 1) {
		char name[32];
		snprintf(name, sizeof(name), "align-%zu", align);
		exercise_alignment(name, 40, align, 0, align);
		/* An object size that is itself not a multiple of 8. */
		snprintf(name, sizeof(name), "align-odd-%zu", align);
		exercise_alignment(name, 13, align, 0, align);
	}
}

Test(cache_align, default_alignment_is_8)
{
	exercise_alignment("align-default", 20, 0, 0, 8);
}

Test(cache_align, hwcache_align_gives_64)
{
	exercise_alignment("hwcache-24", 24, 0, SLAB_HWCACHE_ALIGN, 64);
	exercise_alignment("hwcache-100", 100, 0, SLAB_HWCACHE_ALIGN, 64);
}

/* ------------------------------------------------------------------ */
/* SLAB_GFP_ZERO                                                      */
/* ------------------------------------------------------------------ */

static bool all_zero(const void *p, size_t n)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++)
		if (b[i])
			return false;
	return true;
}

Test(cache_gfp, zero_even_after_dirty_reuse)
{
	const size_t size = 200;
	struct slab_cache *c = create_ok("gfp-zero", size, 0, 0, NULL);
	size_t n = info_of(c).objs_per_slab + 10;
	void **objs = calloc(n, sizeof(*objs));
	cr_assert_not_null(objs);

	/* Dirty every object, free them all, then take them again zeroed. */
	for (int round = 0; round < 3; round++) {
		for (size_t i = 0; i < n; i++) {
			objs[i] = slab_cache_alloc(c, round ? SLAB_GFP_ZERO : 0);
			cr_assert_not_null(objs[i]);
			if (round)
				cr_assert(all_zero(objs[i], size),
					  "round %d object %zu (%p) not zeroed", round, i,
					  objs[i]);
			memset(objs[i], 0xa5, size);
		}
		for (size_t i = 0; i < n; i++)
			slab_cache_free(c, objs[i]);
	}

	/* The hottest reuse: free then allocate the very same object. */
	for (int i = 0; i < 100; i++) {
		void *p = slab_cache_alloc(c, 0);
		cr_assert_not_null(p);
		memset(p, 0xee, size);
		slab_cache_free(c, p);
		void *q = slab_cache_alloc(c, SLAB_GFP_ZERO);
		cr_assert_not_null(q);
		cr_assert(all_zero(q, size), "reused object %p not zeroed", q);
		slab_cache_free(c, q);
	}
	free(objs);
	destroy_ok(c);
}

/* ------------------------------------------------------------------ */
/* Constructors                                                       */
/* ------------------------------------------------------------------ */

#define CTOR_MAGIC 0xC0457A11C0457A11ULL
#define CTOR_FILL  0x5a

struct ctor_obj {
	uint64_t magic;      /* set by the constructor */
	uint64_t serial;     /* which construction made this object */
	unsigned char body[48]; /* CTOR_FILL after construction */
};

static unsigned long ctor_calls;

static void obj_ctor(void *p)
{
	struct ctor_obj *o = p;
	o->magic = CTOR_MAGIC;
	o->serial = ++ctor_calls;
	memset(o->body, CTOR_FILL, sizeof(o->body));
}

static void check_constructed(const struct ctor_obj *o)
{
	cr_assert_eq(o->magic, CTOR_MAGIC, "object %p not constructed (magic %#llx)",
		     (const void *)o, (unsigned long long)o->magic);
	cr_assert(o->serial >= 1 && o->serial <= ctor_calls,
		  "object %p has serial %llu, %lu constructions so far",
		  (const void *)o, (unsigned long long)o->serial, ctor_calls);
	for (size_t i = 0; i < sizeof(o->body); i++)
		cr_assert_eq(o->body[i], CTOR_FILL, "object %p body[%zu] = %#x",
			     (const void *)o, i, o->body[i]);
}

/* Reusing a freed object must not run the constructor again, and the
 * object comes back exactly as it was freed. */
Test(cache_ctor, not_rerun_on_reuse)
{
	struct slab_cache *c = create_ok("ctor-reuse", sizeof(struct ctor_obj), 0, 0,
					 obj_ctor);
	cr_assert_eq(ctor_calls, 0, "constructor ran before any slab was made");

	struct ctor_obj *o = slab_cache_alloc(c, 0);
	cr_assert_not_null(o);
	check_constructed(o);
	unsigned long calls = ctor_calls;
	struct slab_cache_info in = info_of(c);
	/* Once per object when its slab is made: the whole first slab. */
	cr_assert_eq(calls, in.num_objs, "%lu constructor calls for %lu objects",
		     calls, in.num_objs);

	for (int i = 0; i < 1000; i++) {
		uint64_t serial = o->serial;
		/* Use the object, then put it back in its constructed state. */
		memset(o->body, i & 0xff, sizeof(o->body));
		memset(o->body, CTOR_FILL, sizeof(o->body));
		slab_cache_free(c, o);
		struct ctor_obj *again = slab_cache_alloc(c, 0);
		cr_assert_not_null(again);
		check_constructed(again);
		if (again == o)
			cr_assert_eq(again->serial, serial,
				     "object %p was constructed again", (void *)o);
		o = again;
	}
	cr_assert_eq(ctor_calls, calls, "constructor ran %lu more times on reuse",
		     ctor_calls - calls);
	slab_cache_free(c, o);
	destroy_ok(c);
}

/* Many slabs: every object handed out is constructed, the constructor
 * ran exactly once per object of every slab made, and objects that come
 * back after free keep their construction. */
Test(cache_ctor, once_per_object_per_slab)
{
	struct slab_cache *c = create_ok("ctor-slabs", sizeof(struct ctor_obj), 0, 0,
					 obj_ctor);
	size_t n = 4 * (size_t)info_of(c).objs_per_slab + 3;
	struct ctor_obj **objs = calloc(n, sizeof(*objs));
	cr_assert_not_null(objs);

	for (int round = 0; round < 3; round++) {
		for (size_t i = 0; i < n; i++) {
			objs[i] = slab_cache_alloc(c, 0);
			cr_assert_not_null(objs[i]);
			check_constructed(objs[i]);
		}
		/* Serials are unique: no two live objects share a construction. */
		uint64_t *serials = calloc(ctor_calls + 1, sizeof(*serials));
		cr_assert_not_null(serials);
		for (size_t i = 0; i < n; i++) {
			cr_assert_eq(serials[objs[i]->serial], 0,
				     "two live objects carry construction %llu",
				     (unsigned long long)objs[i]->serial);
			serials[objs[i]->serial] = 1;
		}
		free(serials);

		struct slab_cache_info in = info_of(c);
		cr_assert_eq(ctor_calls, in.alloc_slab * in.objs_per_slab,
			     "round %d: %lu constructor calls, %lu slabs made of %u objects",
			     round, ctor_calls, in.alloc_slab, in.objs_per_slab);
		for (size_t i = 0; i < n; i++)
			slab_cache_free(c, objs[i]);
	}
	free(objs);
	destroy_ok(c);
}

/* ------------------------------------------------------------------ */
/* Shrink                                                             */
/* ------------------------------------------------------------------ */

Test(cache_shrink, releases_empty_slabs)
{
	struct slab_cache *c = create_ok("shrink-256", 256, 0, 0, NULL);
	cr_assert_eq(slab_cache_shrink(c), 0, "an untouched cache has nothing to give");

	size_t n = 8 * (size_t)info_of(c).objs_per_slab;
	void **objs = calloc(n, sizeof(*objs));
	cr_assert_not_null(objs);
	for (size_t i = 0; i < n; i++) {
		objs[i] = slab_cache_alloc(c, 0);
		cr_assert_not_null(objs[i]);
	}
	cr_assert_geq(info_of(c).num_slabs, 8);
	for (size_t i = 0; i < n; i++)
		slab_cache_free(c, objs[i]);

	struct slab_cache_info before = info_of(c);
	cr_assert_eq(before.active_objs, 0);
	cr_assert_geq(before.num_slabs, 1, "the thread's active slab at least");
	long got = slab_cache_shrink(c);
	struct slab_cache_info after = info_of(c);
	check_invariants(&after);

	cr_assert_gt(got, 0, "shrink released %ld bytes", got);
	cr_assert_lt(after.num_slabs, before.num_slabs);
	/* Only this thread used the cache: every slab is empty and goes. */
	cr_assert_eq(after.num_slabs, 0, "%lu empty slabs kept after shrink",
		     after.num_slabs);
	cr_assert_eq((unsigned long)got,
		     (before.num_slabs - after.num_slabs) * before.slab_bytes,
		     "shrink returned %ld for %lu slabs of %zu bytes", got,
		     before.num_slabs - after.num_slabs, before.slab_bytes);
	cr_assert_eq(after.free_slab - before.free_slab,
		     before.num_slabs - after.num_slabs);
	cr_assert_eq(slab_cache_shrink(c), 0, "second shrink found more to free");

	/* The cache still works. */
	void *p = slab_cache_alloc(c, 0);
	cr_assert_not_null(p);
	memset(p, 1, 256);
	cr_assert_eq(info_of(c).active_objs, 1);
	slab_cache_free(c, p);
	free(objs);
	destroy_ok(c);
}

/* Shrink never takes a slab that still holds a live object. */
Test(cache_shrink, keeps_live_objects)
{
	const size_t size = 128;
	struct slab_cache *c = create_ok("shrink-live", size, 0, 0, NULL);
	size_t n = 6 * (size_t)info_of(c).objs_per_slab;
	unsigned char **objs = calloc(n, sizeof(*objs));
	cr_assert_not_null(objs);
	for (size_t i = 0; i < n; i++) {
		objs[i] = slab_cache_alloc(c, 0);
		cr_assert_not_null(objs[i]);
		memset(objs[i], (int)(i * 7 & 0xff), size);
	}
	/* Free whole slabs' worth at the front and every other object after. */
	size_t live = 0;
	for (size_t i = 0; i < n; i++) {
		if (i < 2 * (size_t)info_of(c).objs_per_slab || i % 2) {
			slab_cache_free(c, objs[i]);
			objs[i] = NULL;
		} else {
			live++;
		}
	}
	long got = slab_cache_shrink(c);
	cr_assert_geq(got, 0);
	struct slab_cache_info in = info_of(c);
	check_invariants(&in);
	cr_assert_eq(in.active_objs, live);
	for (size_t i = 0; i < n; i++) {
		if (!objs[i])
			continue;
		for (size_t j = 0; j < size; j++)
			cr_assert_eq(objs[i][j], i * 7 & 0xff,
				     "live object %zu changed by shrink", i);
		slab_cache_free(c, objs[i]);
	}
	free(objs);
	destroy_ok(c);
}

/* ------------------------------------------------------------------ */
/* Destroy                                                            */
/* ------------------------------------------------------------------ */

Test(cache_destroy, empty_cache_returns_0_silently)
{
	struct slab_cache *c = create_ok("destroy-empty", 64, 0, 0, NULL);
	int rc, err;
	char *out = destroy_capturing_stderr(c, &rc, &err);
	cr_assert_eq(rc, 0);
	cr_assert_str_eq(out, "", "unexpected stderr: %s", out);
	free(out);

	/* Also after objects came and went (slabs exist but are empty). */
	c = create_ok("destroy-used", 64, 0, 0, NULL);
	void *objs[100];
	for (int i = 0; i < 100; i++) {
		objs[i] = slab_cache_alloc(c, 0);
		cr_assert_not_null(objs[i]);
	}
	for (int i = 0; i < 100; i++)
		slab_cache_free(c, objs[i]);
	out = destroy_capturing_stderr(c, &rc, &err);
	cr_assert_eq(rc, 0);
	cr_assert_str_eq(out, "", "unexpected stderr: %s", out);
	free(out);
}

struct visit {
	const char *name;
	const struct slab_cache *ptr;
	int by_name, by_ptr, calls;
};

static void visit_cb(struct slab_cache *c, void *arg)
{
	struct visit *v = arg;
	v->calls++;
	if (c == v->ptr)
		v->by_ptr++;
	if (strcmp(slab_cache_name(c), v->name) == 0)
		v->by_name++;
}

Test(cache_destroy, busy_cache_reports_and_stays_usable)
{
	struct slab_cache *c = create_ok("busy-cache", 32, 0, 0, NULL);
	void *objs[4];
	for (int i = 0; i < 3; i++) {
		objs[i] = slab_cache_alloc(c, 0);
		cr_assert_not_null(objs[i]);
		memset(objs[i], 0x30 + i, 32);
	}

	int rc, err;
	char *out = destroy_capturing_stderr(c, &rc, &err);
	cr_assert_eq(rc, -EBUSY, "destroy with live objects returned %d", rc);
	cr_assert_eq(err, EBUSY, "errno %d (%s), expected EBUSY", err, strerror(err));
	cr_assert_str_eq(out, "slabnotify: cache busy-cache destroyed with 3 objects remaining\n");
	free(out);

	/* Still usable: the live objects are intact, new ones come out. */
	struct slab_cache_info in = info_of(c);
	cr_assert_str_eq(in.name, "busy-cache");
	cr_assert_eq(in.active_objs, 3);
	for (int i = 0; i < 3; i++)
		for (int j = 0; j < 32; j++)
			cr_assert_eq(((unsigned char *)objs[i])[j], 0x30 + i);
	objs[3] = slab_cache_alloc(c, 0);
	cr_assert_not_null(objs[3]);
	cr_assert_eq(info_of(c).active_objs, 4);
	struct visit v = { .name = "busy-cache", .ptr = c };
	slab_cache_for_each(visit_cb, &v);
	cr_assert_eq(v.by_ptr, 1, "the busy cache left the cache list");

	for (int i = 0; i < 4; i++)
		slab_cache_free(c, objs[i]);
	out = destroy_capturing_stderr(c, &rc, &err);
	cr_assert_eq(rc, 0, "destroy after freeing everything returned %d", rc);
	cr_assert_str_eq(out, "");
	free(out);

	v = (struct visit){ .name = "busy-cache" };
	slab_cache_for_each(visit_cb, &v);
	cr_assert_eq(v.by_name, 0, "a destroyed cache is still listed");
}

/* The count in the message is the number of live objects. */
Test(cache_destroy, busy_message_counts_objects)
{
	struct slab_cache *c = create_ok("busy-many", 16, 0, 0, NULL);
	size_t n = 2 * (size_t)info_of(c).objs_per_slab + 7;
	void **objs = calloc(n, sizeof(*objs));
	cr_assert_not_null(objs);
	for (size_t i = 0; i < n; i++) {
		objs[i] = slab_cache_alloc(c, 0);
		cr_assert_not_null(objs[i]);
	}
	slab_cache_free(c, objs[0]); /* one less */

	int rc, err;
	char *out = destroy_capturing_stderr(c, &rc, &err);
	char want[128];
	snprintf(want, sizeof(want),
		 "slabnotify: cache busy-many destroyed with %zu objects remaining\n",
		 n - 1);
	cr_assert_eq(rc, -EBUSY);
	cr_assert_eq(err, EBUSY);
	cr_assert_str_eq(out, want);
	free(out);

	for (size_t i = 1; i < n; i++)
		slab_cache_free(c, objs[i]);
	free(objs);
	destroy_ok(c);
}

/* ------------------------------------------------------------------ */
/* Free of NULL, statistics                                           */
/* ------------------------------------------------------------------ */

Test(cache_free, null_is_a_noop)
{
	struct slab_cache *c = create_ok("free-null", 64, 0, 0, NULL);
	void *p = slab_cache_alloc(c, 0);
	cr_assert_not_null(p);
	struct slab_cache_info before = info_of(c);
	slab_cache_free(c, NULL);
	struct slab_cache_info after = info_of(c);
	cr_assert_eq(after.active_objs, 1);
	cr_assert_eq(after.free_fastpath + after.free_slowpath,
		     before.free_fastpath + before.free_slowpath,
		     "freeing NULL was counted as a free");
	slab_cache_free(c, p);
	cr_assert_eq(info_of(c).active_objs, 0);
	destroy_ok(c);
}

/* NULL is ignored whatever the handle, before and after the thread's
 * first free (which remembers a segment), as it is by free(). */
Test(cache_free, null_is_a_noop_with_any_handle)
{
	struct slab_cache *c = create_ok("free-null-any", 64, 0, 0, NULL);
	slab_cache_free((struct slab_cache *)(uintptr_t)0x1234, NULL);
	slab_cache_free(NULL, NULL);
	void *p = slab_cache_alloc(c, 0);
	cr_assert_not_null(p);
	slab_cache_free(c, p);
	slab_cache_free((struct slab_cache *)(uintptr_t)0x1234, NULL);
	slab_cache_free(NULL, NULL);
	slab_cache_free(c, NULL);
	cr_assert_eq(info_of(c).active_objs, 0);
	destroy_ok(c);
}

/* Allocate many, free many: every operation counted once. */
Test(cache_stats, counts_match_operations)
{
	struct slab_cache *c = create_ok("stats-bulk", 96, 0, 0, NULL);
	unsigned per = info_of(c).objs_per_slab;
	size_t n = 5 * (size_t)per + 1;
	void **objs = calloc(n, sizeof(*objs));
	cr_assert_not_null(objs);
	for (size_t i = 0; i < n; i++) {
		objs[i] = slab_cache_alloc(c, 0);
		cr_assert_not_null(objs[i]);
	}
	struct slab_cache_info in = info_of(c);
	cr_assert_eq(in.alloc_fastpath + in.alloc_slowpath, n,
		     "fast %lu + slow %lu allocs, made %zu", in.alloc_fastpath,
		     in.alloc_slowpath, n);
	cr_assert_geq(in.alloc_slowpath, 6, "six slabs needed, %lu slow allocs",
		      in.alloc_slowpath);
	cr_assert_geq(in.alloc_slab, 6, "%zu objects of %u per slab but %lu slabs", n,
		      per, in.alloc_slab);
	cr_assert_eq(in.free_fastpath + in.free_slowpath, 0);

	for (size_t i = 0; i < n; i++)
		slab_cache_free(c, objs[i]);
	in = info_of(c);
	cr_assert_eq(in.alloc_fastpath + in.alloc_slowpath, n);
	cr_assert_eq(in.free_fastpath + in.free_slowpath, n,
		     "fast %lu + slow %lu frees, made %zu", in.free_fastpath,
		     in.free_slowpath, n);
	cr_assert_eq(in.free_remote, 0, "single thread, yet %lu remote frees",
		     in.free_remote);
	check_invariants(&in);
	free(objs);
	destroy_ok(c);
}

/* Alloc/free of one object: after the first slow allocation that gives
 * the thread an active slab, everything stays on the thread's freelist. */
Test(cache_stats, ping_pong_stays_on_fastpath)
{
	struct slab_cache *c = create_ok("stats-pingpong", 64, 0, 0, NULL);
	const unsigned long n = 1000;
	for (unsigned long i = 0; i < n; i++) {
		void *p = slab_cache_alloc(c, 0);
		cr_assert_not_null(p);
		slab_cache_free(c, p);
	}
	struct slab_cache_info in = info_of(c);
	cr_assert_eq(in.alloc_fastpath + in.alloc_slowpath, n);
	cr_assert_eq(in.free_fastpath + in.free_slowpath, n);
	cr_assert_eq(in.alloc_slowpath, 1, "slow allocs: %lu", in.alloc_slowpath);
	cr_assert_eq(in.alloc_fastpath, n - 1, "fast allocs: %lu", in.alloc_fastpath);
	cr_assert_eq(in.free_fastpath, n, "fast frees: %lu", in.free_fastpath);
	cr_assert_eq(in.free_slowpath, 0, "slow frees: %lu", in.free_slowpath);
	cr_assert_eq(in.free_remote, 0);
	cr_assert_eq(in.alloc_slab, 1, "slabs made: %lu", in.alloc_slab);
	cr_assert_eq(in.active_objs, 0);
	destroy_ok(c);
}

/* Free the @n objects of @live (NULL ones too) and the array, check
 * that everything came back, and destroy @c. */
static void churn_drain(struct slab_cache *c, void **live, int n)
{
	for (int i = 0; i < n; i++)
		slab_cache_free(c, live[i]);
	struct slab_cache_info in = info_of(c);
	cr_assert_eq(in.active_objs, 0);
	check_invariants(&in);
	free(live);
	destroy_ok(c);
}

/* A live set that fills its slabs exactly, turned over one object at a
 * time in random order, a free before each allocation (an object pool's
 * churn): each slow allocation must bring several objects, not the one
 * just freed into a full slab. Returns the slow allocations of @steps;
 * checks that the slack stays bounded and that everything comes back. */
static unsigned long churn_slow(const char *name, size_t size, slab_flags_t flags, int live_n, int steps)
{
	struct slab_cache *c = create_ok(name, size, 0, flags, NULL);
	void **live = calloc((size_t)live_n, sizeof(*live));
	cr_assert_not_null(live);
	uint64_t r = 88172645463325252ull;
	for (int i = 0; i < live_n; i++)
		cr_assert_not_null(live[i] = slab_cache_alloc(c, 0));
	struct slab_cache_info before = info_of(c);
	cr_assert_geq(before.num_slabs, 8, "the live set spans %lu slabs", before.num_slabs);
	for (int i = 0; i < steps; i++) {
		r ^= r << 13, r ^= r >> 7, r ^= r << 17;
		unsigned j = (unsigned)(r % (unsigned)live_n);
		slab_cache_free(c, live[j]);
		cr_assert_not_null(live[j] = slab_cache_alloc(c, 0));
	}
	struct slab_cache_info in = info_of(c);
	unsigned long slow = in.alloc_slowpath - before.alloc_slowpath;
	cr_assert_eq(in.active_objs, (unsigned long)live_n);
	/* The slack is bounded: a slab or two and 1/16 of the slabs, not a
	 * slab per slow path. */
	cr_assert_leq(in.num_slabs, before.num_slabs + before.num_slabs / 8 + 2,
		      "%lu slabs for a live set of %lu", in.num_slabs, before.num_slabs);
	churn_drain(c, live, live_n);
	return slow;
}

/* 128 objects a slab, 16 slabs. Taking every partial slab as it came,
 * 94% of the allocations were slow; with slack (pick_partial) 6%. */
Test(cache_stats, churn_over_many_slabs_stays_mostly_fast)
{
	enum { STEPS = 200000 };
	unsigned long slow = churn_slow("stats-churn", 512, 0, 2048, STEPS);
	cr_assert_lt(slow, STEPS / 8, "%lu of %d allocations were slow", slow, STEPS);
}

/* 64 objects a slab, 64 slabs: two slack slabs are too few to matter
 * (23% slow); a bound that grows with the thread's full slabs gives
 * 16.5%. */
Test(cache_stats, churn_slack_grows_with_the_slabs)
{
	enum { STEPS = 200000 };
	unsigned long slow = churn_slow("stats-churn-1k", 1024, 0, 4096, STEPS);
	cr_assert_lt(slow, STEPS / 5, "%lu of %d allocations were slow", slow, STEPS);
}

/* 16 objects a slab, where 1/16 is under two objects: the rule asks for
 * two (without, 98.5% of the allocations were slow; with, about 42%, for
 * 68 slabs instead of 64). */
Test(cache_stats, churn_slack_for_big_objects)
{
	enum { STEPS = 200000 };
	unsigned long slow = churn_slow("stats-churn-4k", 4096, 0, 1024, STEPS);
	cr_assert_lt(slow, STEPS * 3 / 4, "%lu of %d allocations were slow", slow, STEPS);
}

/*
 * A notified cache, with a handler that sees every event, NEWPAGE among
 * them, gets the same slack: its slack slabs are announced like any
 * other (every cache of `slabnotify run --max` is notified; with notified
 * caches left out, 93,790 of these 100,000 allocations were slow).
 */
static int churn_events, churn_page_vetoes;
static bool churn_veto_pages;
static int churn_handler(struct slab_notifier *nb, enum slab_event ev, const struct slab_event_data *d)
{
	(void)nb, (void)d;
	__atomic_fetch_add(&churn_events, 1, __ATOMIC_RELAXED);
	if (ev == SLAB_EVENT_NEWPAGE && churn_veto_pages) {
		churn_page_vetoes++;
		return SLAB_NOTIFY_BAD;
	}
	return SLAB_NOTIFY_DONE;
}

Test(cache_stats, churn_slack_on_a_notified_cache)
{
	enum { STEPS = 100000 };
	static struct slab_notifier nb = { .call = churn_handler };
	cr_assert_eq(slab_notifier_register(&nb), 0);
	unsigned long slow = churn_slow("stats-churn-notify", 512, SLAB_NOTIFY, 2048, STEPS);
	cr_assert_eq(slab_notifier_unregister(&nb), 0);
	cr_assert_gt(churn_events, 2 * STEPS, "the handler saw %d events", churn_events);
	cr_assert_lt(slow, STEPS / 8, "%lu of %d allocations were slow", slow, STEPS);
}

/*
 * The veto rule holds for a slack slab: a NEWPAGE veto fails the
 * allocation that asked for the page (NULL, errno from the veto), even
 * where a thin partial slab could have served it. Every allocation that
 * saw a veto must be NULL; every other one an object; nothing is lost.
 */
Test(cache_stats, churn_newpage_veto_of_a_slack_slab_fails_the_allocation)
{
	enum { LIVE = 2048, STEPS = 20000 };
	static struct slab_notifier nb = { .call = churn_handler };
	cr_assert_eq(slab_notifier_register(&nb), 0);
	struct slab_cache *c = create_ok("stats-churn-veto", 512, 0, SLAB_NOTIFY, NULL);
	void **live = calloc(LIVE, sizeof(*live));
	cr_assert_not_null(live);
	for (int i = 0; i < LIVE; i++)
		cr_assert_not_null(live[i] = slab_cache_alloc(c, 0));
	churn_veto_pages = true;
	uint64_t r = 88172645463325252ull;
	int held = LIVE, refused = 0;
	for (int i = 0; i < STEPS; i++) {
		r ^= r << 13, r ^= r >> 7, r ^= r << 17;
		unsigned j = (unsigned)(r % LIVE);
		if (live[j]) {
			slab_cache_free(c, live[j]);
			held--;
		}
		int vetoes = churn_page_vetoes;
		errno = 0;
		live[j] = slab_cache_alloc(c, 0);
		if (churn_page_vetoes != vetoes) {
			cr_assert_null(live[j], "step %d: an allocation whose new slab was vetoed returned %p", i, live[j]);
			cr_assert_eq(errno, ENOMEM);
			refused++;
		} else {
			cr_assert_not_null(live[j], "step %d: NULL without a veto", i);
			held++;
		}
	}
	churn_veto_pages = false;
	cr_assert_gt(refused, 0, "no slack slab was asked for");
	struct slab_cache_info in = info_of(c);
	cr_assert_eq(in.active_objs, (unsigned long)held);
	churn_drain(c, live, LIVE);
	cr_assert_eq(slab_notifier_unregister(&nb), 0);
}

/* ------------------------------------------------------------------ */
/* slab_info_print, slab_cache_for_each, slab_cache_name              */
/* ------------------------------------------------------------------ */

Test(cache_introspect, slabinfo_format_and_columns)
{
	struct slab_cache *c = create_ok("slabinfo-test", 72, 0, 0, NULL);
	unsigned per = info_of(c).objs_per_slab;
	size_t n = (size_t)per + 3; /* two slabs */
	void **objs = calloc(n, sizeof(*objs));
	cr_assert_not_null(objs);
	for (size_t i = 0; i < n; i++) {
		objs[i] = slab_cache_alloc(c, 0);
		cr_assert_not_null(objs[i]);
	}
	struct slab_cache_info in = info_of(c);
	char *text = slabinfo_text();

	const char *head = "slabinfo - version: 2.1\n";
	cr_assert(strncmp(text, head, strlen(head)) == 0,
		  "slabinfo does not start with the 2.1 header:\n%s", text);
	const char *second = text + strlen(head);
	cr_assert(strncmp(second, "# name", 6) == 0,
		  "second line is not the '# name' header:\n%s", text);

	char line[512];
	cr_assert(find_slabinfo_line(text, "slabinfo-test", line, sizeof(line)),
		  "no line for slabinfo-test in:\n%s", text);
	char name[64];
	unsigned long active, num, objsize, objperslab;
	int got = sscanf(line, "%63s %lu %lu %lu %lu", name, &active, &num, &objsize,
			 &objperslab);
	cr_assert_eq(got, 5, "unparsable line: %s", line);
	cr_assert_eq(active, in.active_objs, "active_objs column %lu, info %lu: %s",
		     active, in.active_objs, line);
	cr_assert_eq(num, in.num_objs, "num_objs column %lu, info %lu: %s", num,
		     in.num_objs, line);
	cr_assert_eq(active, n);
	cr_assert_eq(objperslab, in.objs_per_slab, "objperslab column: %s", line);
	cr_assert(strstr(line, ": tunables") && strstr(line, ": slabdata"),
		  "not the 2.1 layout: %s", line);
	unsigned long active_slabs, num_slabs;
	const char *sd = strstr(line, ": slabdata");
	cr_assert_eq(sscanf(sd, ": slabdata %lu %lu", &active_slabs, &num_slabs), 2,
		     "slabdata columns: %s", line);
	cr_assert_eq(active_slabs, in.active_slabs);
	cr_assert_eq(num_slabs, in.num_slabs);
	free(text);

	/* After freeing, the columns follow. */
	for (size_t i = 0; i < n; i++)
		slab_cache_free(c, objs[i]);
	in = info_of(c);
	text = slabinfo_text();
	cr_assert(find_slabinfo_line(text, "slabinfo-test", line, sizeof(line)));
	cr_assert_eq(sscanf(line, "%63s %lu %lu", name, &active, &num), 3);
	cr_assert_eq(active, 0);
	cr_assert_eq(num, in.num_objs);
	free(text);
	free(objs);
	destroy_ok(c);

	/* A destroyed cache is no longer printed. */
	text = slabinfo_text();
	cr_assert(!find_slabinfo_line(text, "slabinfo-test", line, sizeof(line)),
		  "destroyed cache still printed");
	free(text);
}

Test(cache_introspect, for_each_visits_every_cache_once)
{
	struct slab_cache *a = create_ok("each-a", 16, 0, 0, NULL);
	struct slab_cache *b = create_ok("each-b", 32, 0, 0, NULL);
	struct visit va = { .name = "each-a", .ptr = a };
	int n = slab_cache_for_each(visit_cb, &va);
	cr_assert_eq(va.by_ptr, 1, "each-a visited %d times", va.by_ptr);
	cr_assert_eq(va.by_name, 1);
	cr_assert_eq(n, va.calls, "returned %d but called %d times", n, va.calls);
	cr_assert_geq(n, 2);

	struct visit vb = { .name = "each-b", .ptr = b };
	int n2 = slab_cache_for_each(visit_cb, &vb);
	cr_assert_eq(vb.by_ptr, 1);
	cr_assert_eq(n2, n);

	destroy_ok(a);
	struct visit vb2 = { .name = "each-b", .ptr = b };
	int n3 = slab_cache_for_each(visit_cb, &vb2);
	cr_assert_eq(n3, n - 1, "destroying one cache: %d -> %d", n, n3);
	cr_assert_eq(vb2.by_ptr, 1);
	destroy_ok(b);
}

Test(cache_introspect, name_matches)
{
	struct slab_cache *c = create_ok("named-cache", 8, 0, 0, NULL);
	cr_assert_str_eq(slab_cache_name(c), "named-cache");
	struct slab_cache *d = create_ok("other-cache", 8, 0, 0, NULL);
	cr_assert_str_eq(slab_cache_name(d), "other-cache");
	cr_assert_str_eq(slab_cache_name(c), "named-cache");
	destroy_ok(c);
	destroy_ok(d);
}
