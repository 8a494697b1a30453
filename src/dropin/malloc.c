/*
 * malloc.c - the malloc drop-in's allocation functions.
 *
 * The C and POSIX allocation functions on top of the size-class caches,
 * for LD_PRELOAD or direct linking. Every block is aligned to
 * alignof(max_align_t) = 16, so requests below 16 bytes use kmalloc-16.
 * With a limit set (config.c), allocations are accounted (SLAB_GFP_ACCOUNT:
 * the kmalloc-cg-N caches and kmalloc-large) to the root memory group, so
 * a program past its cap sees NULL and ENOMEM, as under a cgroup limit.
 * Every message names the function the program called.
 *
 * Recursion: nothing on the allocation path calls malloc. The consumers
 * allocate from inside their handlers, where the notifier's guard serves
 * them quietly.
 */
#include "dropin.h"

#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <string.h>

#define MIN_ALIGN 16

slab_gfp_t sn_malloc_gfp;
unsigned sn_malloc_slot0 = SN_SLOT_KMALLOC;

/*
 * The fast path's own table, by (n + 7) / 8 for n up to 1 KiB: the slot
 * offset (internal.h) of n's class, sn_malloc_slot0 included. One load
 * gives the thread's cpu slot and the cache, where the class, the first
 * slot and the two shifts cost five instructions.
 */
#define SLOT_OFF16_OF(cls) SN_SLOT_OFF_OF(SN_CLASS16(cls))
uint32_t sn_malloc_slot_off[129] = { SN_SMALL_CLASS(SLOT_OFF16_OF) };

void dropin_set_first_slot(unsigned first)
{
	__atomic_store_n(&sn_malloc_slot0, first, __ATOMIC_RELAXED);
	for (unsigned i = 0; i < 129; i++)
		__atomic_store_n(&sn_malloc_slot_off[i], SN_SLOT_OFF(first + sn_small_class16[i]), __ATOMIC_RELAXED);
}

/* ------------------------------------------------------------------ */
/* The allocation functions                                           */
/* ------------------------------------------------------------------ */

static SN_NOINLINE void *null_enomem(void)
{
	errno = ENOMEM;
	return NULL;
}

/* Above the classes, or impossible (more than PTRDIFF_MAX). */
static SN_NOINLINE void *alloc_large(const char *fn, size_t n, slab_gfp_t extra)
{
	if (n > PTRDIFF_MAX)
		return null_enomem();
	void *p = large_alloc(fn, n, 0, sn_malloc_gfp | extra, n);
	return p ? p : null_enomem();
}

/*
 * Every message names the function the program called. The classes from
 * kmalloc-16 (16-byte alignment); the charged twins under a limit, whose
 * SLAB_ACCOUNT charges without a flag, so the fast path passes none:
 * no flag to test, one load for the first slot.
 */
static SN_ALWAYS_INLINE unsigned malloc_slot(size_t n)
{
	return __atomic_load_n(&sn_malloc_slot0, __ATOMIC_RELAXED) + size_class_by(sn_small_class16, n);
}

static SN_ALWAYS_INLINE void *alloc_in_slot(const char *fn, size_t n, unsigned slot, struct slab_cpu *cpu)
{
	return cache_alloc_cpu(fn, &sn_cache_table[slot], cpu, 0, true, n, true);
}

/* @n is below sn_malloc_inline_end, so at most 1 KiB (said to the
 * compiler, which cannot know the variable's two values; UBSan checks). */
static SN_ALWAYS_INLINE void *sn_alloc_small(const char *fn, size_t n)
{
	if (n > 1024)
		__builtin_unreachable();
	size_t off = __atomic_load_n(&sn_malloc_slot_off[(n + 7) >> 3], __ATOMIC_RELAXED);
	return cache_alloc_cpu(fn, cache_at(off), cpu_at(sn_tls_thread, off), 0, true, n, true);
}

/*
 * Requests from sn_malloc_inline_end on leave the fast path: those above
 * 1 KiB (the classes the one-load table covers), and, with --guard
 * (debug.c sets the bound to 0), every request, so that --guard's
 * countdown costs nothing to a program run without it: the one
 * comparison a size needs anyway, against a load.
 */
size_t sn_malloc_inline_end = 1024 + 1;

/* --guard's countdown ran out (below zero) in the thread's slot for @n:
 * a guarded block if the pool has one, else the usual one. The slot is
 * found again here, so that the fast path keeps nothing for this call. */
static SN_NOINLINE void *alloc_sampled(const char *fn, size_t n)
{
	unsigned slot = malloc_slot(n);
	struct slab_cpu *cpu = &sn_tls_thread->cpu[slot];
	void *p = sn_dropin_sampled(n, cpu);
	return p ? p : alloc_in_slot(fn, n, slot, cpu);
}

/*
 * Every exit is a tail call, so that --guard's every allocation passes
 * through here with no stack frame (the sampled call is kept apart). The
 * classes above 1 KiB come here, and under --guard every class size; each
 * counts down in the cpu slot its path loads anyway (without --guard the
 * count runs out once in 2^31, and is set back). Large blocks, never
 * guarded, leave first; their test sits behind the one by which
 * size_class_by picks its direct table (1024), so that a small size pays
 * a single compare.
 */
static SN_ALWAYS_INLINE void *alloc_outside(const char *fn, size_t n, slab_gfp_t extra)
{
	if (unlikely(n > 1024) && n > SLAB_KMALLOC_MAX)
		return alloc_large(fn, n, extra);
	unsigned slot = malloc_slot(n);
	struct slab_cpu *cpu = &sn_tls_thread->cpu[slot];
	if (unlikely(--cpu->sample_tick < 0))
		return alloc_sampled(fn, n);
	return alloc_in_slot(fn, n, slot, cpu);
}

static SN_NOINLINE void *alloc_out_of_line(const char *fn, size_t n, slab_gfp_t extra)
{
	return alloc_outside(fn, n, extra);
}

/* malloc's own: no name or flags to pass (--guard's cost per malloc). */
static SN_NOINLINE void *malloc_out_of_line(size_t n)
{
	return alloc_outside("malloc", n, 0);
}

static SN_ALWAYS_INLINE void *sn_alloc(const char *fn, size_t n, slab_gfp_t extra)
{
	if (unlikely(n >= sn_malloc_inline_end))
		return alloc_out_of_line(fn, n, extra);
	return sn_alloc_small(fn, n);
}

void *sn_dropin_alloc(const char *fn, size_t n)
{
	return sn_alloc(fn, n, 0);
}

static void *sn_alloc_aligned(const char *fn, size_t align, size_t n)
{
	void *p = align <= MIN_ALIGN ? sn_kmalloc(fn, n < MIN_ALIGN ? MIN_ALIGN : n, sn_malloc_gfp)
				     : sn_kmalloc_aligned(fn, n, align, sn_malloc_gfp);
	if (unlikely(!p))
		errno = ENOMEM;
	return p;
}

SN_EXPORT void *malloc(size_t n)
{
	if (unlikely(n >= sn_malloc_inline_end))
		return malloc_out_of_line(n);
	return sn_alloc_small("malloc", n);
}

SN_EXPORT void free(void *p)
{
	sn_free_any("free", p);
}

SN_EXPORT void *calloc(size_t n, size_t size)
{
	size_t bytes;
	if (unlikely(__builtin_mul_overflow(n, size, &bytes) || bytes > PTRDIFF_MAX)) {
		errno = ENOMEM;
		return NULL;
	}
	/* Large blocks are zeroed by the large path only when they are not
	 * fresh (zero) mappings. */
	if (bytes > SLAB_KMALLOC_MAX)
		return sn_alloc("calloc", bytes, SLAB_GFP_ZERO);
	void *p = sn_alloc("calloc", bytes, 0);
	if (likely(p))
		memset(p, 0, bytes);
	return p;
}

SN_EXPORT void *realloc(void *p, size_t n)
{
	if (unlikely(n > PTRDIFF_MAX)) {
		errno = ENOMEM;
		return NULL;
	}
	if (!p)
		return sn_alloc("realloc", n, 0);
	if (n == 0) {           /* glibc: frees and returns NULL */
		sn_free_any("realloc", p);
		return NULL;
	}
	if (unlikely(sn_dropin_checking))
		return sn_dropin_realloc("realloc", p, n);
	void *q = sn_krealloc("realloc", p, n, sn_malloc_gfp);
	if (unlikely(!q))
		errno = ENOMEM;
	return q;
}

SN_EXPORT void *reallocarray(void *p, size_t n, size_t size)
{
	size_t bytes;
	if (unlikely(__builtin_mul_overflow(n, size, &bytes))) {
		errno = ENOMEM;
		return NULL;
	}
	return realloc(p, bytes);
}

static bool power_of_two(size_t x)
{
	return x && !(x & (x - 1));
}

/* C17: any power of two is a valid alignment; the size need not be a
 * multiple of it (DR 460). Alignments past SLAB_MAX_ALIGN cannot be
 * given: ENOMEM (they are valid, only too large). */
SN_EXPORT void *aligned_alloc(size_t align, size_t n)
{
	if (unlikely(!power_of_two(align))) {
		errno = EINVAL;
		return NULL;
	}
	if (unlikely(n > PTRDIFF_MAX || align > SLAB_MAX_ALIGN)) {
		errno = ENOMEM;
		return NULL;
	}
	return sn_alloc_aligned("aligned_alloc", align, n);
}

/* POSIX: EINVAL only unless align is a power of two multiple of
 * sizeof(void *); ENOMEM on exhaustion; errno is left alone. */
SN_EXPORT int posix_memalign(void **out, size_t align, size_t n)
{
	if (!power_of_two(align) || align % sizeof(void *))
		return EINVAL;
	if (n > PTRDIFF_MAX || align > SLAB_MAX_ALIGN)
		return ENOMEM;
	int saved = errno;
	void *p = sn_alloc_aligned("posix_memalign", align, n);
	errno = saved;
	if (!p)
		return ENOMEM;
	*out = p;
	return 0;
}

/* glibc: an alignment that is not a power of two is rounded up. */
static void *memalign_named(const char *fn, size_t align, size_t n)
{
	if (!power_of_two(align))
		align = align && align <= SLAB_MAX_ALIGN ? (size_t)1 << (64 - __builtin_clzl(align)) : MIN_ALIGN;
	if (unlikely(n > PTRDIFF_MAX || align > SLAB_MAX_ALIGN)) {
		errno = ENOMEM;
		return NULL;
	}
	return sn_alloc_aligned(fn, align, n);
}

SN_EXPORT void *memalign(size_t align, size_t n)
{
	return memalign_named("memalign", align, n);
}

SN_EXPORT void *valloc(size_t n)
{
	return memalign_named("valloc", SN_PAGE_SIZE, n);
}

SN_EXPORT void *pvalloc(size_t n)
{
	size_t rounded = (n + SN_PAGE_SIZE - 1) & ~(SN_PAGE_SIZE - 1);
	if (rounded < n) {
		errno = ENOMEM;
		return NULL;
	}
	return memalign_named("pvalloc", SN_PAGE_SIZE, rounded ? rounded : SN_PAGE_SIZE);
}

SN_EXPORT size_t malloc_usable_size(void *p)
{
	if (unlikely(sn_dropin_checking) && p)
		return sn_dropin_usable_size("malloc_usable_size", p);
	return p ? sn_usable_size("malloc_usable_size", p) : 0;
}


/* ------------------------------------------------------------------ */
/* glibc's introspection, answered with slabnotify's figures          */
/* ------------------------------------------------------------------ */

/*
 * mallinfo2(): arena is the slab pages in use, hblks/hblkhd the large
 * blocks and their bytes, uordblks the bytes of live blocks (each at its
 * class's size), fordblks what the slabs hold free, usmblks the peak of
 * arena + hblkhd (glibc leaves it 0). Exact at a quiet moment.
 */
struct heap_sum {
	size_t live_bytes;
	unsigned long large_blocks;
};

static void sum_cache(struct slab_cache *c, void *arg)
{
	struct heap_sum *h = arg;
	struct slab_cache_info in;
	if (slab_cache_info(c, &in) != 0)
		return;
	if (in.size == 0)
		h->large_blocks += in.active_objs;
	else
		h->live_bytes += in.active_objs * in.size;
}

SN_EXPORT struct mallinfo2 mallinfo2(void)
{
	struct mallinfo2 mi;
	memset(&mi, 0, sizeof(mi));
	struct heap_sum h = { 0, 0 };
	sn_quiet_begin();
	slab_cache_for_each(sum_cache, &h);
	sn_quiet_end();
	struct slab_mem_stat st = { 0 };
	slab_mem_stat(&st);
	size_t slabs = st.in_use - st.large_in_use;
	mi.arena = slabs;
	mi.hblks = h.large_blocks;
	mi.hblkhd = st.large_in_use;
	mi.uordblks = h.live_bytes;
	mi.fordblks = slabs > h.live_bytes ? slabs - h.live_bytes : 0;
	mi.usmblks = st.peak;
	mi.ordblks = 1;
	return mi;
}

/* The old interface: the same figures in ints, which wrap as glibc's do. */
SN_EXPORT struct mallinfo mallinfo(void)
{
	struct mallinfo2 m = mallinfo2();
	struct mallinfo mi = {
		(int)m.arena, (int)m.ordblks, (int)m.smblks, (int)m.hblks, (int)m.hblkhd,
		(int)m.usmblks, (int)m.fsmblks, (int)m.uordblks, (int)m.fordblks, (int)m.keepcost,
	};
	return mi;
}

static void shrink_cache(struct slab_cache *c, void *arg)
{
	long *bytes = arg;
	long r = slab_cache_shrink(c);
	if (r > 0)
		*bytes += r;
}

/* As slab_cache_shrink(): the calling thread's slabs of every cache go
 * back to the caches, empty slabs to the OS at once; other threads give
 * theirs at their next slow path. 1 if memory went back. */
SN_EXPORT int malloc_trim(size_t pad)
{
	(void)pad;
	long bytes = 0;
	sn_quiet_begin();
	slab_cache_for_each(shrink_cache, &bytes);
	sn_quiet_end();
	return bytes > 0;
}

SN_EXPORT void malloc_stats(void)
{
	struct mallinfo2 m = mallinfo2();
	sn_quiet_begin();
	fprintf(stderr,
		"Arena 0 (slabnotify slabs):\nsystem bytes     = %10zu\nin use bytes     = %10zu\n"
		"Total (incl. large blocks):\nsystem bytes     = %10zu\nin use bytes     = %10zu\n"
		"max mmap regions = %10zu\nmax mmap bytes   = %10zu\n",
		m.arena, m.uordblks, m.arena + m.hblkhd, m.uordblks + m.hblkhd, m.hblks, m.hblkhd);
	sn_quiet_end();
}

static void info_cache(struct slab_cache *c, void *arg)
{
	FILE *f = arg;
	struct slab_cache_info in;
	if (slab_cache_info(c, &in) != 0 || (in.num_slabs == 0 && in.active_objs == 0))
		return;
	fprintf(f, "<cache name=\"%s\" size=\"%zu\" active=\"%lu\" total=\"%lu\" slabs=\"%lu\" slab_bytes=\"%zu\"/>\n",
		in.name, in.size, in.active_objs, in.num_objs, in.num_slabs, in.slab_bytes);
}

/* An XML page like glibc's, with slabnotify's caches. */
SN_EXPORT int malloc_info(int options, FILE *f)
{
	if (options != 0 || !f) {
		errno = EINVAL;
		return -1;
	}
	struct mallinfo2 m = mallinfo2();
	sn_quiet_begin();
	fprintf(f, "<malloc version=\"slabnotify-1\">\n");
	slab_cache_for_each(info_cache, f);
	fprintf(f, "<total type=\"slabs\" size=\"%zu\"/>\n<total type=\"mmap\" count=\"%zu\" size=\"%zu\"/>\n"
		   "<system type=\"current\" size=\"%zu\"/>\n<system type=\"max\" size=\"%zu\"/>\n"
		   "<aspace type=\"total\" size=\"%zu\"/>\n</malloc>\n",
		m.arena, m.hblks, m.hblkhd, m.arena + m.hblkhd, m.usmblks, m.arena + m.hblkhd);
	sn_quiet_end();
	return 0;
}

/* glibc's tuning knobs have no meaning here: accepted and ignored (1),
 * so that programs that set them run as they do on glibc. */
SN_EXPORT int mallopt(int param, int value)
{
	(void)value;
	switch (param) {
	case M_MXFAST: case M_TRIM_THRESHOLD: case M_TOP_PAD: case M_MMAP_THRESHOLD:
	case M_MMAP_MAX: case M_CHECK_ACTION: case M_PERTURB: case M_ARENA_TEST: case M_ARENA_MAX:
		return 1;
	default:
		return 0;
	}
}
