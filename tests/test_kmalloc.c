/*
 * test_kmalloc.c - the general-purpose allocator (SLUB's kmalloc):
 * slab_malloc() over every size up to past SLAB_KMALLOC_MAX and into the
 * large path, the size classes, slab_malloc(0), ENOMEM for impossible
 * sizes, slab_malloc_aligned(), slab_realloc(), slab_usable_size(),
 * slab_free(), slab_owns() and the kmalloc-N caches in slabinfo.
 *
 * Each Test() runs in its own process (Criterion), so cache counts seen
 * here come only from the test itself.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <slabnotify.h>

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KiB ((size_t)1024)
#define MiB (1024 * KiB)

/* The documented size classes, smallest first. */
static const size_t classes[] = {
	8, 16, 32, 48, 64, 80, 96, 112, 128,
	160, 192, 224, 256,
	272, 320, 384, 448, 512,
	544, 640, 768, 896, 1024,
	1040, 1104, 1280, 1536, 1792, 2048,
	2080, 2208, 2560, 3072, 3584, 4096,
	4160, 4416, 5120, 6144, 7168, 8192,
	8320, 8832, 10240, 12288, 14336, 16384,
	16640, 17664, 20480, 24576, 28672, 32768,
	33280, 35328, 40960, 49152, 57344, 65536,
};
#define NCLASSES (sizeof(classes) / sizeof(classes[0]))

/* ------------------------------------------------------------------ */
/* Helpers                                                            */
/* ------------------------------------------------------------------ */

static bool is_aligned(const void *p, size_t a)
{
	return ((uintptr_t)p & (a - 1)) == 0;
}

/* The alignment slab_malloc() promises for @size. */
static size_t min_align(size_t size)
{
	return size > 8 ? 16 : 8;
}

static unsigned char pattern(size_t i, unsigned seed)
{
	return (unsigned char)((i * 131u + seed * 17u + (i >> 8)) & 0xff);
}

static void fill(void *p, size_t n, unsigned seed)
{
	unsigned char *b = p;
	for (size_t i = 0; i < n; i++)
		b[i] = pattern(i, seed);
}

/* Index of the first byte of [0, n) that lost its pattern, or n. */
static size_t first_bad(const void *p, size_t n, unsigned seed)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++)
		if (b[i] != pattern(i, seed))
			return i;
	return n;
}

static bool all_zero(const void *p, size_t n)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++)
		if (b[i])
			return false;
	return true;
}

/* slab_malloc() that must succeed, with the documented guarantees. */
static void *malloc_ok(size_t size)
{
	errno = 0;
	void *p = slab_malloc(size, 0);
	cr_assert_not_null(p, "slab_malloc(%zu) failed: %s", size, strerror(errno));
	cr_assert(is_aligned(p, min_align(size)), "slab_malloc(%zu) = %p, not %zu-aligned",
		  size, p, min_align(size));
	cr_assert_geq(slab_usable_size(p), size, "slab_usable_size(slab_malloc(%zu)) = %zu",
		      size, slab_usable_size(p));
	cr_assert(slab_owns(p), "slab_owns(slab_malloc(%zu)) is false", size);
	return p;
}

struct find {
	const char *name;
	struct slab_cache *found;
	int hits;
};

static void find_cb(struct slab_cache *c, void *arg)
{
	struct find *f = arg;
	if (strcmp(slab_cache_name(c), f->name) == 0) {
		f->found = c;
		f->hits++;
	}
}

/* The live cache called @name, or NULL. */
static struct slab_cache *find_cache(const char *name)
{
	struct find f = { .name = name };
	slab_cache_for_each(find_cb, &f);
	cr_assert_leq(f.hits, 1, "%d caches are called %s", f.hits, name);
	return f.found;
}

static unsigned long active_of(struct slab_cache *c)
{
	struct slab_cache_info in;
	cr_assert_eq(slab_cache_info(c, &in), 0);
	return in.active_objs;
}

static unsigned long active_by_name(const char *name)
{
	struct slab_cache *c = find_cache(name);
	cr_assert_not_null(c, "no cache %s", name);
	return active_of(c);
}

/*
 * The name of class @cls's cache, written to @name. The header calls the
 * caches "kmalloc-N"; Linux, which this follows, spells the classes from
 * 1024 up "kmalloc-1k" ... "kmalloc-64k". Either spelling is accepted,
 * whichever exists (the decimal one is tried first).
 */
static struct slab_cache *class_cache(size_t cls, char *name, size_t cap)
{
	snprintf(name, cap, "kmalloc-%zu", cls);
	struct slab_cache *c = find_cache(name);
	if (!c && cls >= 1024 && cls % 1024 == 0) {
		char alt[32];
		snprintf(alt, sizeof(alt), "kmalloc-%zuk", cls / 1024);
		if ((c = find_cache(alt)))
			snprintf(name, cap, "%s", alt);
	}
	return c;
}

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

static bool has_line_for(const char *text, const char *name)
{
	size_t n = strlen(name);
	for (const char *s = text; *s;) {
		if (strncmp(s, name, n) == 0 && (s[n] == ' ' || s[n] == '\t'))
			return true;
		const char *e = strchr(s, '\n');
		if (!e)
			break;
		s = e + 1;
	}
	return false;
}

static int cmp_ptr(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t)*(void *const *)a, y = (uintptr_t)*(void *const *)b;
	return x < y ? -1 : x > y;
}

/* ------------------------------------------------------------------ */
/* slab_malloc() sizes                                                */
/* ------------------------------------------------------------------ */

/* Every size from 0 to 70000 (past SLAB_KMALLOC_MAX into the large path):
 * aligned, usable size large enough, first and last usable byte ours. */
Test(kmalloc_sizes, every_size_to_70000, .timeout = 200)
{
#ifdef SLABNOTIFY_SANITIZER
	const size_t step = 7;
#else
	const size_t step = 1;
#endif
	for (size_t size = 0; size <= 70000; size += step) {
		unsigned char *p = malloc_ok(size);
		size_t usable = slab_usable_size(p);
		memset(p, 0x5e, size);
		if (usable >= 2) {
			p[usable - 1] = 0xa2;
			p[0] = 0xa1;
			cr_assert_eq(p[0], 0xa1);
			cr_assert_eq(p[usable - 1], 0xa2);
		}
		slab_free(p);
	}
}

/* Sizes around every class boundary and well into the large path, all
 * live at once: each fully writable and none overlapping another. */
Test(kmalloc_sizes, class_boundaries_all_live)
{
	size_t sizes[3 * NCLASSES + 16];
	size_t n = 0;
	sizes[n++] = 0;
	sizes[n++] = 1;
	for (size_t i = 0; i < NCLASSES; i++) {
		sizes[n++] = classes[i] - 1;
		sizes[n++] = classes[i];
		sizes[n++] = classes[i] + 1;
	}
	sizes[n++] = SLAB_KMALLOC_MAX + 4096;
	sizes[n++] = 70000;
	sizes[n++] = 100000;
	sizes[n++] = 1 * MiB - 1;
	sizes[n++] = 1 * MiB;
	sizes[n++] = 1 * MiB + 1;
	sizes[n++] = 10 * MiB;
	sizes[n++] = 10 * MiB + 12345;

	void *ptrs[sizeof(sizes) / sizeof(sizes[0])];
	for (size_t i = 0; i < n; i++) {
		ptrs[i] = malloc_ok(sizes[i]);
		fill(ptrs[i], sizes[i], (unsigned)i);
	}
	for (size_t i = 0; i < n; i++) {
		size_t bad = first_bad(ptrs[i], sizes[i], (unsigned)i);
		cr_assert_eq(bad, sizes[i], "slab_malloc(%zu) = %p: byte %zu overwritten",
			     sizes[i], ptrs[i], bad);
	}
	/* Disjoint: sort by address and compare with the usable sizes. */
	void *sorted[sizeof(ptrs) / sizeof(ptrs[0])];
	memcpy(sorted, ptrs, n * sizeof(void *));
	qsort(sorted, n, sizeof(void *), cmp_ptr);
	for (size_t i = 1; i < n; i++)
		cr_assert_geq((uintptr_t)sorted[i] - (uintptr_t)sorted[i - 1],
			      slab_usable_size(sorted[i - 1]),
			      "%p (usable %zu) overlaps %p", sorted[i - 1],
			      slab_usable_size(sorted[i - 1]), sorted[i]);
	/* The whole usable size is ours too. */
	for (size_t i = 0; i < n; i++)
		memset(ptrs[i], 0x77, slab_usable_size(ptrs[i]));
	for (size_t i = 0; i < n; i++)
		slab_free(ptrs[i]);
}

/* Each request lands in the documented class: kmalloc-N for the
 * smallest N >= size (N-1 and N in the class, N+1 in the next). */
Test(kmalloc_sizes, size_classes_map_to_kmalloc_caches)
{
	size_t prev = 0;
	for (size_t i = 0; i < NCLASSES; i++) {
		size_t cls = classes[i];
		char name[32];
		size_t reqs[2] = { prev + 1, cls };
		for (int r = 0; r < 2; r++) {
			void *keep = malloc_ok(reqs[r]); /* makes the cache exist */
			cr_assert_not_null(class_cache(cls, name, sizeof(name)),
					   "no cache for class %zu (kmalloc-%zu)", cls, cls);
			unsigned long base = active_by_name(name);
			cr_assert_geq(base, 1, "slab_malloc(%zu) not counted in %s",
				      reqs[r], name);
			void *p = malloc_ok(reqs[r]);
			cr_assert_eq(active_by_name(name), base + 1,
				     "slab_malloc(%zu) did not come from %s", reqs[r], name);
			cr_assert_geq(slab_usable_size(p), reqs[r]);
			slab_free(p);
			cr_assert_eq(active_by_name(name), base,
				     "slab_free of a %zu-byte block not counted in %s",
				     reqs[r], name);
			slab_free(keep);
			cr_assert_eq(active_by_name(name), base - 1);
		}
		prev = cls;
	}
}

/* A power of two plus a header, the blocks the classes just above each
 * power of two are for (kmalloc.c): Python's 4 KiB bytes (4129), sqlite's
 * 4 KiB page-cache entry (4368) and an 8 KiB record with its header
 * (8240) get the class just above, with that usable size, and realloc
 * keeps the block while it stays in its class. */
Test(kmalloc_sizes, headers_above_powers_of_two)
{
	static const size_t want[][2] = {
		{ 1025, 1040 }, { 1100, 1104 }, { 4097, 4160 }, { 4129, 4160 }, { 4161, 4416 },
		{ 4368, 4416 }, { 4417, 5120 }, { 8240, 8320 }, { 8464, 8832 }, { 32769, 33280 },
		{ 35328, 35328 }, { 35329, 40960 },
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		char name[32];
		void *p = malloc_ok(want[i][0]);
		cr_assert_eq(slab_usable_size(p), want[i][1], "slab_malloc(%zu): usable %zu, want %zu",
			     want[i][0], slab_usable_size(p), want[i][1]);
		cr_assert_not_null(class_cache(want[i][1], name, sizeof(name)), "no kmalloc-%zu", want[i][1]);
		cr_assert_eq(active_by_name(name), 1, "slab_malloc(%zu) is not in %s", want[i][0], name);
		fill(p, want[i][0], (unsigned)i);
		void *q = slab_realloc(p, want[i][1], 0);
		cr_assert_eq(q, p, "realloc to %zu within kmalloc-%zu moved the block", want[i][1], want[i][1]);
		void *r = slab_realloc(q, want[i][1] + 1, 0);
		cr_assert_not_null(r);
		cr_assert_neq(r, q, "realloc past kmalloc-%zu kept the block", want[i][1]);
		cr_assert_eq(first_bad(r, want[i][0], (unsigned)i), want[i][0], "realloc lost the contents");
		cr_assert_gt(slab_usable_size(r), want[i][1]);
		slab_free(r);
		cr_assert_eq(active_by_name(name), 0);
	}
}

/* Past SLAB_KMALLOC_MAX the request is tracked as "kmalloc-large". */
Test(kmalloc_sizes, large_requests_are_tracked)
{
	void *p = malloc_ok(SLAB_KMALLOC_MAX + 1);
	struct slab_cache *large = find_cache("kmalloc-large");
	cr_assert_not_null(large, "no kmalloc-large cache after a large request");
	unsigned long base = active_of(large);
	cr_assert_geq(base, 1);
	void *q = malloc_ok(10 * MiB);
	cr_assert_eq(active_of(large), base + 1);
	slab_free(q);
	slab_free(p);
	cr_assert_eq(active_of(large), base - 1);
	/* And the 64 KiB class is not the large path. */
	void *k = malloc_ok(SLAB_KMALLOC_MAX);
	cr_assert_eq(active_of(large), base - 1);
	slab_free(k);
}

Test(kmalloc_sizes, zero_size_gives_unique_pointers)
{
	enum { N = 1000 };
	static void *ptrs[N];
	for (int i = 0; i < N; i++) {
		errno = 0;
		ptrs[i] = slab_malloc(0, 0);
		cr_assert_not_null(ptrs[i], "slab_malloc(0) #%d: %s", i, strerror(errno));
		cr_assert(slab_owns(ptrs[i]));
	}
	void *sorted[N];
	memcpy(sorted, ptrs, sizeof(sorted));
	qsort(sorted, N, sizeof(void *), cmp_ptr);
	for (int i = 1; i < N; i++)
		cr_assert_neq(sorted[i], sorted[i - 1], "slab_malloc(0) returned %p twice",
			      sorted[i]);
	for (int i = 0; i < N; i++)
		slab_free(ptrs[i]);
}

Test(kmalloc_sizes, impossible_sizes_give_enomem)
{
	static const size_t bad[] = {
		SIZE_MAX, SIZE_MAX - 1, SIZE_MAX - 4095, (size_t)PTRDIFF_MAX + 1,
		(size_t)PTRDIFF_MAX + 4096,
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		errno = 0;
		void *p = slab_malloc(bad[i], 0);
		cr_expect_null(p, "slab_malloc(%#zx) succeeded", bad[i]);
		cr_expect_eq(errno, ENOMEM, "slab_malloc(%#zx): errno %d (%s)", bad[i],
			     errno, strerror(errno));
		errno = 0;
		p = slab_malloc(bad[i], SLAB_GFP_ZERO);
		cr_expect_null(p);
		cr_expect_eq(errno, ENOMEM);
		errno = 0;
		p = slab_malloc_aligned(bad[i], 4096, 0);
		cr_expect_null(p, "slab_malloc_aligned(%#zx, 4096) succeeded", bad[i]);
		cr_expect_eq(errno, ENOMEM, "slab_malloc_aligned(%#zx, 4096): errno %d (%s)",
			     bad[i], errno, strerror(errno));
	}
	/* The allocator is still fine afterwards. */
	slab_free(malloc_ok(100));
}

/* SLAB_GFP_ZERO zeroes recycled memory in every size range. */
Test(kmalloc_sizes, gfp_zero_after_dirty_reuse)
{
	static const size_t sizes[] = { 1, 8, 24, 64, 200, 3000, 65536, 100000, 2 * MiB };
	enum { N = 16 };
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		void *ptrs[N];
		for (int round = 0; round < 2; round++) {
			for (int i = 0; i < N; i++) {
				ptrs[i] = slab_malloc(sizes[s], round ? SLAB_GFP_ZERO : 0);
				cr_assert_not_null(ptrs[i]);
				if (round)
					cr_assert(all_zero(ptrs[i], sizes[s]),
						  "slab_malloc(%zu, ZERO) = %p not zeroed",
						  sizes[s], ptrs[i]);
				memset(ptrs[i], 0xc3, slab_usable_size(ptrs[i]));
			}
			for (int i = 0; i < N; i++)
				slab_free(ptrs[i]);
		}
		void *a = slab_malloc_aligned(sizes[s], 256, SLAB_GFP_ZERO);
		cr_assert_not_null(a);
		cr_assert(all_zero(a, sizes[s]), "slab_malloc_aligned(%zu, 256, ZERO) dirty",
			  sizes[s]);
		slab_free(a);
	}
}

/* ------------------------------------------------------------------ */
/* slab_malloc_aligned()                                              */
/* ------------------------------------------------------------------ */

Test(kmalloc_aligned, every_power_of_two_up_to_max)
{
	static const size_t sizes[] = { 1, 8, 24, 100, 4000, 65536, 70000, 300000 };
	for (size_t align = 1; align <= SLAB_MAX_ALIGN; align <<= 1) {
		for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
			size_t size = sizes[s];
			errno = 0;
			void *p = slab_malloc_aligned(size, align, 0);
			cr_assert_not_null(p, "slab_malloc_aligned(%zu, %zu): %s", size, align,
					   strerror(errno));
			cr_assert(is_aligned(p, align), "slab_malloc_aligned(%zu, %zu) = %p",
				  size, align, p);
			cr_assert_geq(slab_usable_size(p), size);
			cr_assert(slab_owns(p));
			fill(p, size, (unsigned)align);
			cr_assert_eq(first_bad(p, size, (unsigned)align), size);
			slab_free(p);
		}
	}
}

/* Many aligned blocks live at once stay distinct. */
Test(kmalloc_aligned, many_live_blocks_are_distinct)
{
	enum { N = 64 };
	static const size_t aligns[] = { 32, 4096, 65536 };
	for (size_t a = 0; a < sizeof(aligns) / sizeof(aligns[0]); a++) {
		void *ptrs[N];
		for (int i = 0; i < N; i++) {
			ptrs[i] = slab_malloc_aligned(64, aligns[a], 0);
			cr_assert_not_null(ptrs[i]);
			cr_assert(is_aligned(ptrs[i], aligns[a]));
			fill(ptrs[i], 64, (unsigned)i);
		}
		for (int i = 0; i < N; i++) {
			cr_assert_eq(first_bad(ptrs[i], 64, (unsigned)i), 64,
				     "aligned block %p overwritten", ptrs[i]);
			slab_free(ptrs[i]);
		}
	}
}

Test(kmalloc_aligned, bad_alignment_gives_einval)
{
	static const size_t bad[] = {
		0, 3, 6, 24, 48, 100, 4097, SLAB_MAX_ALIGN + 1, (size_t)SLAB_MAX_ALIGN * 2,
		(size_t)1 << 40, (size_t)1 << 63, SIZE_MAX,
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		errno = 0;
		void *p = slab_malloc_aligned(64, bad[i], 0);
		cr_expect_null(p, "slab_malloc_aligned(64, %#zx) succeeded", bad[i]);
		cr_expect_eq(errno, EINVAL, "slab_malloc_aligned(64, %#zx): errno %d (%s)",
			     bad[i], errno, strerror(errno));
		if (p)
			slab_free(p);
	}
}

/* ------------------------------------------------------------------ */
/* slab_realloc()                                                     */
/* ------------------------------------------------------------------ */

Test(kmalloc_realloc, null_allocates)
{
	errno = 0;
	void *p = slab_realloc(NULL, 100, 0);
	cr_assert_not_null(p, "slab_realloc(NULL, 100): %s", strerror(errno));
	cr_assert_geq(slab_usable_size(p), 100);
	cr_assert(is_aligned(p, 16));
	memset(p, 1, 100);
	slab_free(p);
}

/* Grow through every range (classes, the large path) and back down:
 * the common prefix survives every move. */
Test(kmalloc_realloc, grow_and_shrink_preserve_contents)
{
	static const size_t steps[] = {
		1, 8, 9, 17, 100, 192, 193, 1000, 5000, 65535, 65536, 65537, 200000,
		1 * MiB, 3 * MiB + 5, 1 * MiB, 70000, 65536, 4096, 257, 64, 16, 7, 1,
	};
	size_t n = sizeof(steps) / sizeof(steps[0]);
	unsigned seed = 1;
	size_t cur = steps[0];
	unsigned char *p = malloc_ok(cur);
	fill(p, cur, seed);
	for (size_t i = 1; i < n; i++) {
		size_t next = steps[i];
		errno = 0;
		unsigned char *q = slab_realloc(p, next, 0);
		cr_assert_not_null(q, "slab_realloc(%zu -> %zu): %s", cur, next,
				   strerror(errno));
		cr_assert_geq(slab_usable_size(q), next);
		cr_assert(is_aligned(q, min_align(next)));
		size_t keep = cur < next ? cur : next;
		size_t bad = first_bad(q, keep, seed);
		cr_assert_eq(bad, keep, "slab_realloc(%zu -> %zu): byte %zu lost", cur,
			     next, bad);
		/* Refill with a new pattern so the next step checks fresh data. */
		seed++;
		fill(q, next, seed);
		p = q;
		cur = next;
	}
	slab_free(p);
}

Test(kmalloc_realloc, size_zero_frees)
{
	void *keep = malloc_ok(64);
	unsigned long base = active_by_name("kmalloc-64");
	void *p = malloc_ok(64);
	cr_assert_eq(active_by_name("kmalloc-64"), base + 1);
	void *r = slab_realloc(p, 0, 0);
	cr_assert_null(r, "slab_realloc(p, 0) returned %p", r);
	cr_assert_eq(active_by_name("kmalloc-64"), base, "slab_realloc(p, 0) did not free");

	void *big = malloc_ok(2 * MiB);
	unsigned long lbase = active_by_name("kmalloc-large");
	cr_assert_null(slab_realloc(big, 0, 0));
	cr_assert_eq(active_by_name("kmalloc-large"), lbase - 1);
	slab_free(keep);
}

/* A failed realloc leaves the block alone: same pointer, same bytes. */
Test(kmalloc_realloc, failure_leaves_block_intact)
{
	static const size_t sizes[] = { 8, 100, 4096, 65536, 1 * MiB };
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t size = sizes[i];
		void *p = malloc_ok(size);
		size_t usable = slab_usable_size(p);
		fill(p, size, 7);
		static const size_t bad[] = { SIZE_MAX, (size_t)PTRDIFF_MAX + 1 };
		for (size_t b = 0; b < 2; b++) {
			errno = 0;
			void *q = slab_realloc(p, bad[b], 0);
			cr_assert_null(q, "slab_realloc(%zu -> %#zx) succeeded", size, bad[b]);
			cr_assert_eq(errno, ENOMEM, "errno %d (%s)", errno, strerror(errno));
			cr_assert_eq(slab_usable_size(p), usable);
			cr_assert_eq(first_bad(p, size, 7), size,
				     "failed realloc damaged the %zu-byte block", size);
		}
		/* Still a live block that can grow normally afterwards. */
		void *q = slab_realloc(p, size * 2, 0);
		cr_assert_not_null(q);
		cr_assert_eq(first_bad(q, size, 7), size);
		slab_free(q);
	}
}

/* Alignment from slab_malloc_aligned() survives realloc. */
/* As realloc() does, slab_realloc keeps the contents and the default
 * (max_align_t) alignment when a block from slab_malloc_aligned moves;
 * the header documents that a larger alignment is not carried over. */
Test(kmalloc_realloc, keeps_default_alignment_from_aligned_blocks)
{
	static const size_t aligns[] = { 64, 4096, 65536, SLAB_MAX_ALIGN };
	static const size_t steps[] = { 200, 5000, 100, 100000, 3000, 2 * MiB, 50 };
	for (size_t a = 0; a < sizeof(aligns) / sizeof(aligns[0]); a++) {
		size_t cur = 100;
		void *p = slab_malloc_aligned(cur, aligns[a], 0);
		cr_assert_not_null(p);
		fill(p, cur, 3);
		for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
			void *q = slab_realloc(p, steps[i], 0);
			cr_assert_not_null(q);
			cr_assert(is_aligned(q, 16),
				  "realloc of a %zu-aligned block to %zu gave %p", aligns[a],
				  steps[i], q);
			size_t keep = cur < steps[i] ? cur : steps[i];
			cr_assert_eq(first_bad(q, keep, 3), keep);
			fill(q, steps[i], 3);
			p = q;
			cur = steps[i];
		}
		slab_free(p);
	}
}

/* ------------------------------------------------------------------ */
/* slab_free(), slab_usable_size(), slab_owns()                       */
/* ------------------------------------------------------------------ */

Test(kmalloc_misc, null_pointers)
{
	cr_assert_eq(slab_usable_size(NULL), 0);
	slab_free(NULL);
	/* Nothing broke. */
	void *p = malloc_ok(32);
	slab_free(NULL);
	slab_free(p);
}

/* The fast free has no NULL test of its own: NULL misses the thread's
 * last segment, which is never 0. A thread's first call, a fresh thread
 * structure and a reused one (the second thread gets the first's). */
static void *free_null_thread(void *arg)
{
	(void)arg;
	slab_free(NULL);                   /* before this thread has a structure */
	void *p = slab_malloc(40, 0);
	cr_assert_not_null(p);
	slab_free(NULL);                   /* with one, no free yet */
	slab_free(p);
	slab_free(NULL);                   /* after a free */
	return NULL;
}

Test(kmalloc_misc, null_free_in_new_threads)
{
	for (int i = 0; i < 3; i++) {
		pthread_t t;
		cr_assert_eq(pthread_create(&t, NULL, free_null_thread, NULL), 0);
		cr_assert_eq(pthread_join(t, NULL), 0);
	}
}

/* slab_free() and slab_usable_size() take objects of any cache. */
Test(kmalloc_misc, custom_cache_objects)
{
	struct slab_cache *c = slab_cache_create("kmtest-100", 100, 0, 0, NULL);
	cr_assert_not_null(c);
	void *objs[10];
	for (int i = 0; i < 10; i++) {
		objs[i] = slab_cache_alloc(c, 0);
		cr_assert_not_null(objs[i]);
		cr_assert_geq(slab_usable_size(objs[i]), 100);
		cr_assert(slab_owns(objs[i]));
		memset(objs[i], 0x42, slab_usable_size(objs[i]));
	}
	cr_assert_eq(active_of(c), 10);
	for (int i = 0; i < 10; i++) {
		slab_free(objs[i]);
		cr_assert_eq(active_of(c), 9 - (unsigned long)i,
			     "slab_free of a kmtest-100 object not counted");
	}
	cr_assert_eq(slab_cache_destroy(c), 0);
}

Test(kmalloc_misc, owns_only_our_memory)
{
	int on_stack = 0;
	void *glibc = malloc(64);
	cr_assert_not_null(glibc);
	cr_assert(!slab_owns(&on_stack), "slab_owns(stack address) is true");
	cr_assert(!slab_owns(glibc), "slab_owns(glibc malloc) is true");
	cr_assert(!slab_owns(NULL), "slab_owns(NULL) is true");
	cr_assert(!slab_owns((void *)1));
	cr_assert(!slab_owns((void *)(uintptr_t)-1), "slab_owns(~0) is true");
	cr_assert(!slab_owns((void *)&slab_malloc), "slab_owns(code) is true");
	free(glibc);

	unsigned char *small = malloc_ok(64);
	unsigned char *large = malloc_ok(2 * MiB);
	struct slab_cache *c = slab_cache_create("owns-cache", 48, 0, 0, NULL);
	cr_assert_not_null(c);
	unsigned char *obj = slab_cache_alloc(c, 0);
	cr_assert_not_null(obj);
	cr_assert(slab_owns(small));
	cr_assert(slab_owns(small + 8), "interior of a small block");
	cr_assert(slab_owns(large));
	cr_assert(slab_owns(large + MiB), "interior of a large block");
	cr_assert(slab_owns(obj));
	slab_cache_free(c, obj);
	cr_assert_eq(slab_cache_destroy(c), 0);
	slab_free(small);
	slab_free(large);
}

/* The kmalloc-N caches are listed by slab_info_print(). */
Test(kmalloc_misc, kmalloc_caches_in_slabinfo)
{
	void *ptrs[NCLASSES];
	for (size_t i = 0; i < NCLASSES; i++)
		ptrs[i] = malloc_ok(classes[i]);
	char *text = slabinfo_text();
	for (size_t i = 0; i < NCLASSES; i++) {
		char name[32];
		cr_assert_not_null(class_cache(classes[i], name, sizeof(name)),
				   "no cache for class %zu", classes[i]);
		cr_expect(has_line_for(text, name), "%s missing from slabinfo:\n%s", name,
			  text);
	}
	free(text);
	for (size_t i = 0; i < NCLASSES; i++)
		slab_free(ptrs[i]);
}

/* ------------------------------------------------------------------ */
/* The large path: reuse of freed segments and realloc by mremap      */
/* ------------------------------------------------------------------ */

/* A freed large block is reused; SLAB_GFP_ZERO must still give zeros. */
Test(kmalloc_large, zero_after_reuse_of_a_freed_segment)
{
	for (int round = 0; round < 8; round++) {
		size_t n = 300 * 1024 + (size_t)round * 4096;
		unsigned char *p = slab_malloc(n, round ? SLAB_GFP_ZERO : 0);
		cr_assert_not_null(p);
		for (size_t i = 0; i < n; i += 997)
			cr_assert(!round || p[i] == 0, "round %d byte %zu of a reused block is %d", round, i, p[i]);
		memset(p, 0xa5, n);
		slab_free(p);
	}
}

/* Growing and shrinking a large block keeps every byte, whether the
 * mapping grows in place or moves (mremap), and the result is usable. */
Test(kmalloc_large, realloc_grow_and_shrink_keeps_contents)
{
	size_t n = 100 * 1024;
	unsigned char *p = slab_malloc(n, 0);
	cr_assert_not_null(p);
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(i * 7);
	/* A neighbour mapping makes in-place growth fail sometimes. */
	void *block = slab_malloc(5 * 1024 * 1024, 0);
	cr_assert_not_null(block);
	for (size_t to = 2 * n; to <= 16 * 1024 * 1024; to *= 2) {
		unsigned char *q = slab_realloc(p, to, 0);
		cr_assert_not_null(q);
		for (size_t i = 0; i < n; i++)
			cr_assert_eq(q[i], (unsigned char)(i * 7), "byte %zu lost growing to %zu", i, to);
		cr_assert_geq(slab_usable_size(q), to);
		memset(q + n, 0x5a, to - n);
		p = q;
	}
	unsigned char *q = slab_realloc(p, 80 * 1024, 0);
	cr_assert_not_null(q);
	for (size_t i = 0; i < 80 * 1024; i++)
		cr_assert_eq(q[i], (unsigned char)(i * 7));
	cr_assert_geq(slab_usable_size(q), 80 * 1024);
	slab_free(q);
	slab_free(block);
}

/* slab_mem_stat(): memory in use follows allocations; peak remembers. */
Test(kmalloc_large, mem_stat_in_use_and_peak)
{
	struct slab_mem_stat a, b, c;
	cr_assert_eq(slab_mem_stat(NULL), -EINVAL);
	cr_assert_eq(slab_mem_stat(&a), 0);
	void *p = slab_malloc(10 * 1024 * 1024, 0);
	cr_assert_not_null(p);
	cr_assert_eq(slab_mem_stat(&b), 0);
	cr_assert_geq(b.in_use, a.in_use + 10 * 1024 * 1024);
	cr_assert_geq(b.large_in_use, 10 * 1024 * 1024);
	cr_assert_geq(b.peak, b.in_use);
	slab_free(p);
	cr_assert_eq(slab_mem_stat(&c), 0);
	cr_assert_leq(c.in_use + 10 * 1024 * 1024, b.in_use);
	cr_assert_geq(c.peak, b.in_use);
}
