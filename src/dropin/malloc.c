/*
 * malloc.c - the malloc drop-in: libslabnotify-malloc.so.
 *
 * Exports the C and POSIX allocation functions on top of the size-class
 * caches, for LD_PRELOAD or direct linking. Every block is aligned to
 * alignof(max_align_t) = 16, so requests below 16 bytes use kmalloc-16.
 *
 * Configuration comes from SLABNOTIFY_* variables (src/options.h), read
 * by a constructor: before it runs, allocations are served plainly. A
 * malformed value is reported once, naming the variable, and ignored.
 * With a limit set, allocations are accounted (SLAB_GFP_ACCOUNT, the
 * kmalloc-cg-N caches and kmalloc-large) to the root memory group, so
 * a program past its cap sees NULL and ENOMEM, as under a cgroup limit.
 * The report is written by a destructor when the process exits.
 *
 * Recursion: nothing on the allocation path calls malloc. The consumers
 * allocate from inside their handlers, where the notifier's guard serves
 * them quietly.
 */
#include "consumers/consumer.h"
#include "kmalloc.h"
#include "options.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SN_EXPORT __attribute__((visibility("default")))
#define MIN_ALIGN 16

/* SLAB_GFP_ACCOUNT once a limit is set; read by every allocation. */
static slab_gfp_t malloc_gfp;

struct report_opts {
	bool wanted;
	bool stats;
	bool leaks;
	bool json;
	const char *file;
};
static struct report_opts report;

/* ------------------------------------------------------------------ */
/* The allocation functions                                           */
/* ------------------------------------------------------------------ */

/* Every message names the function the program called. */
static SN_ALWAYS_INLINE void *sn_alloc(const char *fn, size_t n, slab_gfp_t extra)
{
	void *p = kmalloc_named(fn, n < MIN_ALIGN ? MIN_ALIGN : n, malloc_gfp | extra);
	if (unlikely(!p))
		errno = ENOMEM;
	return p;
}

static void *sn_alloc_aligned(const char *fn, size_t align, size_t n)
{
	void *p = align <= MIN_ALIGN ? sn_kmalloc(fn, n < MIN_ALIGN ? MIN_ALIGN : n, malloc_gfp)
				     : sn_kmalloc_aligned(fn, n, align, malloc_gfp);
	if (unlikely(!p))
		errno = ENOMEM;
	return p;
}

SN_EXPORT void *malloc(size_t n)
{
	if (unlikely(n > PTRDIFF_MAX)) {
		errno = ENOMEM;
		return NULL;
	}
	return sn_alloc("malloc", n, 0);
}

SN_EXPORT void free(void *p)
{
	if (unlikely(!p))
		return;
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
	void *q = sn_krealloc("realloc", p, n < MIN_ALIGN ? MIN_ALIGN : n, malloc_gfp);
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
	return p ? sn_usable_size("malloc_usable_size", p) : 0;
}

/* ------------------------------------------------------------------ */
/* Threads: their creation order                                      */
/* ------------------------------------------------------------------ */

/*
 * pthread_create() numbers each thread in the creating thread, before it
 * exists, so that fault injection's per-thread streams (consumer.h) follow
 * the order in which the program created its threads, not the order in
 * which they happened to start.
 */
struct thread_start {
	void *(*fn)(void *);
	void *arg;
	uint32_t ordinal;
};

static void *thread_trampoline(void *p)
{
	struct thread_start st = *(struct thread_start *)p;
	sn_quiet_begin();
	free(p);
	sn_quiet_end();
	sn_thread_ordinal_set(st.ordinal);
	return st.fn(st.arg);
}

typedef int (*pthread_create_fn)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);

SN_EXPORT int pthread_create(pthread_t *thread, const pthread_attr_t *attr, void *(*fn)(void *), void *arg)
{
	static _Atomic(pthread_create_fn) real;
	pthread_create_fn next = atomic_load_explicit(&real, memory_order_acquire);
	if (!next) {
		next = (pthread_create_fn)dlsym(RTLD_NEXT, "pthread_create");
		if (!next)
			return EAGAIN;
		atomic_store_explicit(&real, next, memory_order_release);
	}
	sn_quiet_begin();
	struct thread_start *st = malloc(sizeof(*st));
	sn_quiet_end();
	if (!st)
		return EAGAIN;
	st->fn = fn;
	st->arg = arg;
	st->ordinal = sn_thread_ordinal_next();
	int err = next(thread, attr, thread_trampoline, st);
	if (err) {
		sn_quiet_begin();
		free(st);
		sn_quiet_end();
	}
	return err;
}

/* ------------------------------------------------------------------ */
/* Configuration                                                      */
/* ------------------------------------------------------------------ */

static void warn_env(const char *var, const char *val, const char *what)
{
	char buf[256];
	int n = snprintf(buf, sizeof(buf), "slabnotify: ignoring %s=%s: %s\n", var, val, what);
	if (n > 0) {
		ssize_t r = write(STDERR_FILENO, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
		(void)r;
	}
}

static bool env_size(const char *var, size_t *out)
{
	const char *v = getenv(var);
	if (!v)
		return false;
	if (sn_parse_size(v, out))
		return true;
	warn_env(var, v, "not a size (like 4096, 64M, 1.5G)");
	return false;
}

static bool env_long(const char *var, long min, long *out)
{
	const char *v = getenv(var);
	if (!v)
		return false;
	if (sn_parse_long(v, min, LONG_MAX, out))
		return true;
	warn_env(var, v, "not a valid number");
	return false;
}

static bool env_flag(const char *var)
{
	const char *v = getenv(var);
	return v && *v && strcmp(v, "0") != 0;
}

static void configure_memcg(void)
{
	size_t max = SIZE_MAX, high = SIZE_MAX;
	bool has_max = env_size(SN_ENV_MAX, &max);
	bool has_high = env_size(SN_ENV_HIGH, &high);
	if (!has_max && !has_high)
		return;
	struct slab_memcg *root = slab_memcg_root();
	if (!root)
		return;
	if (has_max)
		slab_memcg_set_max(root, max);
	if (has_high) {
		/* A soft limit on a program with no reclaim to run: crossings
		 * are counted and reported, never slept on (slabnotify(1)). */
		slab_memcg_set_throttle(root, false);
		slab_memcg_set_high(root, high);
	}
	malloc_gfp = SLAB_GFP_ACCOUNT;
	report.wanted = true;
}

static void configure_failslab(void)
{
	struct slab_fault_attr a = { .probability = 0, .interval = 1, .times = -1, .seed = 1 };
	bool any = false;
	const char *v;
	long n;
	if ((v = getenv(SN_ENV_FAIL_PROB))) {
		if (sn_parse_percent(v, &a.probability))
			any = true;
		else
			warn_env(SN_ENV_FAIL_PROB, v, "not a percentage 0..100");
	}
	if (env_long(SN_ENV_FAIL_INT, 1, &n)) {
		a.interval = (unsigned long)n;
		any = true;
	}
	if (env_long(SN_ENV_FAIL_TIMES, -1, &n)) {
		a.times = n;
		any = true;
	}
	if (env_size(SN_ENV_FAIL_SPACE, &a.space))
		any = true;
	env_size(SN_ENV_FAIL_MIN, &a.min_size);
	a.cache_filter = getenv(SN_ENV_FAIL_CACHE);
	if ((v = getenv(SN_ENV_SEED)) && !sn_parse_u64(v, &a.seed))
		warn_env(SN_ENV_SEED, v, "not an unsigned number");
	if (!any)
		return;
	/* An interval alone fails every Nth call, as the kernel's does. */
	if (!getenv(SN_ENV_FAIL_PROB) && a.interval > 1)
		a.probability = 100;
	if (slab_fault_inject(&a) == 0)
		report.wanted = true;
}

static void configure_leaks(void)
{
	long sample;
	if (!getenv(SN_ENV_LEAKS) || !env_long(SN_ENV_LEAKS, 0, &sample) || sample == 0)
		return;
	if (slab_leak_track((unsigned)sample) == 0)
		report.leaks = report.wanted = true;
}

__attribute__((constructor(101))) static void sn_malloc_configure(void)
{
	configure_memcg();
	configure_failslab();
	configure_leaks();
	report.stats = env_flag(SN_ENV_STATS);
	report.json = env_flag(SN_ENV_JSON);
	report.file = getenv(SN_ENV_REPORT);
	if (report.stats || report.file || report.json)
		report.wanted = true;
}

/* ------------------------------------------------------------------ */
/* The report at exit                                                 */
/* ------------------------------------------------------------------ */

/* FILE with every %p replaced by the pid (and %% by %). */
static FILE *report_open(void)
{
	if (!report.file || !*report.file)
		return stderr;
	char path[4096], pid[24];
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	size_t o = 0;
	for (const char *s = report.file; *s && o + 24 < sizeof(path); s++) {
		if (s[0] == '%' && s[1] == 'p') {
			o += (size_t)snprintf(path + o, sizeof(path) - o, "%s", pid);
			s++;
		} else if (s[0] == '%' && s[1] == '%') {
			path[o++] = '%';
			s++;
		} else {
			path[o++] = *s;
		}
	}
	path[o] = '\0';
	FILE *f = fopen(path, "w");
	if (!f) {
		fprintf(stderr, "slabnotify: cannot write report %s: %s\n", path, strerror(errno));
		return stderr;
	}
	return f;
}

__attribute__((destructor(101))) static void sn_malloc_report(void)
{
	if (!report.wanted)
		return;
	FILE *f = report_open();
	if (report.json) {
		fprintf(f, "{\"pid\":%d,\"stats\":", (int)getpid());
		slab_stats_report(f, true);
		fprintf(f, ",\"leaks\":");
		if (report.leaks)
			slab_leak_report(f, 0, true);
		else
			fprintf(f, "null");
		fprintf(f, "}\n");
	} else {
		fprintf(f, "==%d== slabnotify report\n", (int)getpid());
		slab_stats_report(f, false);
		if (report.leaks)
			slab_leak_report(f, 20, false);
	}
	if (f != stderr)
		fclose(f);
	else
		fflush(f);
}
