/*
 * alloc_bench - slabnotify against glibc, mimalloc, tcmalloc and jemalloc.
 *
 * Six patterns, each timed as alloc+free together:
 *   pair         alloc one object, write a byte, free it, repeat (ns per pair)
 *   batch        alloc 1000 objects, free them in a fixed random order
 *                (ns per alloc+free pair)
 *   batch-mixed  the batch pattern with sizes drawn from 16..512 bytes
 *                (fixed seed), slab_malloc against each peer's malloc
 *   prodcons     a producer thread allocates, a consumer thread frees, through
 *                a bounded SPSC ring (ns per object, end-to-end wall time)
 *   xbatch       a thread allocates batches of 1000, a second thread frees
 *                every batch (ns per block, end-to-end wall time)
 *   larson       1, 2 and 4 threads replace random blocks (8..1000 bytes) of
 *                a shared slot array, so most frees are of blocks another
 *                thread allocated (ns per free+alloc step, wall time / steps)
 *   churn        an object pool: 4096 live blocks of one size, each step
 *                frees a random one and allocates its replacement (ns per
 *                free+alloc step)
 *
 * Every allocator runs in its own process: the parent re-executes itself
 * (/proc/self/exe --child LIB) once per allocator library; tcmalloc and
 * jemalloc are LD_PRELOADed into their child, mimalloc is dlopen()ed
 * locally, glibc is the plain child and slabnotify is linked in. Children
 * stay alive and run one trial per command received over a pipe; the
 * parent runs one trial at a time: for each trial, for each row, every
 * allocator once, round-robin (the order rotates every trial); it reports
 * the median of the trials. See bench/README.md.
 *
 * --callgrind runs one pattern in-process (no children) for valgrind
 * --tool=callgrind: the legacy pair loop bench_pair_loop(), and for every
 * pattern but prodcons and larson a loop (bench_cg_*) whose allocations and
 * frees go through the noinline steps bench_cg_alloc() and bench_cg_free(),
 * so that callgrind_annotate --inclusive=yes gives instructions per alloc
 * and per free separately (bench/callgrind.sh).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <stdarg.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <gnu/libc-version.h>
#endif

#include "slabnotify.h"

extern char **environ;

/* ------------------------------------------------------------------ */
/* Configuration                                                      */
/* ------------------------------------------------------------------ */

#define BATCH          1000     /* objects per batch round */
#define RING_CAP       1024     /* SPSC ring slots (power of two) */
#define CMD_FD         3        /* child: commands from the parent */
#define RES_FD         4        /* child: results to the parent */
#define HELLO_TIMEOUT_MS  30000
#define TRIAL_TIMEOUT_MS 120000
#define DEFAULT_TRIALS 11
#define QUICK_TRIALS   5
#define CALLGRIND_PAIRS 1000000ULL
#define PERM_SEED      0x5eedb0a7c0ffee11ULL
#define MIXED_SEED     0x6d1bed51e5ULL   /* batch-mixed sizes */
#define MIXED_MIN      16
#define MIXED_MAX      512
#define XB_NBUF        4        /* xbatch: batches in flight */
#define LARSON_SLOTS   1024     /* larson: live blocks per thread */
#define LARSON_MIN     8
#define LARSON_MAX     1000
#define LARSON_MAXTHREADS 4
#define LARSON_SEED    0x1a250aULL

/* Keep the measured loops out of line, under their own names, and out of
 * GCC's cloning/identical-code-folding so callgrind can find them. */
#if defined(__GNUC__) && !defined(__clang__)
#define BENCH_LOOP __attribute__((noinline, noipa, used))
#else
#define BENCH_LOOP __attribute__((noinline, used))
#endif

enum pattern {
	PAT_PAIR, PAT_BATCH, PAT_BATCH_MIXED, PAT_PRODCONS, PAT_XBATCH, PAT_LARSON, PAT_CHURN, PAT_COUNT
};
static const char *const pattern_names[PAT_COUNT] = {
	"pair", "batch", "batch-mixed", "prodcons", "xbatch", "larson", "churn",
};
static const char *const pattern_desc[PAT_COUNT] = {
	"immediate alloc + write 1 byte + free, repeated; ns per alloc+free pair",
	"1000 allocs, then 1000 frees in a fixed random order; ns per alloc+free pair",
	"the batch pattern with 1000 sizes drawn uniformly from 16..512 B (fixed seed); "
	"slabnotify is slab_malloc; ns per alloc+free pair",
	"producer thread allocs, consumer thread frees via an SPSC ring of 1024; ns per object (wall time / objects)",
	"thread A allocs batches of 1000 and hands each to thread B, which frees it in a fixed "
	"random order (4 batches in flight); ns per block (wall time / blocks)",
	"N threads each step alloc a block of 8..1000 B, swap it into a random slot of a shared "
	"array (1024 slots per thread) and free the block it displaces, allocated by another "
	"thread (N-1)/N of the time; slabnotify is slab_malloc; ns per step (wall time / steps of all threads)",
	"an object pool of 4096 live blocks: each step frees a random block, then allocates its "
	"replacement (the live set fills its slabs; no slack comes from growth); ns per step",
};
/* The unit of one table, and the name of a row's parameter. */
static const char *const pattern_unit[PAT_COUNT] = {
	"ns/pair", "ns/pair", "ns/pair", "ns/object", "ns/block", "ns/step", "ns/step",
};
static const size_t sizes[] = { 16, 64, 256, 1024, 4096 };
#define NSIZES (sizeof(sizes) / sizeof(sizes[0]))
#define SIZE64_IDX 1
static const uint32_t larson_threads[] = { 1, 2, 4 };
#define NLARSON (sizeof(larson_threads) / sizeof(larson_threads[0]))
#define MAXROWS NSIZES

/* Work per timed trial of the full run, by pattern and row (--quick
 * divides it by 10): pairs, batch alloc+free pairs (rounds * BATCH),
 * prodcons objects, xbatch blocks or larson steps (all threads together).
 * Every allocator in a row does the same work; large sizes get less so
 * that slow cells (glibc trims and re-faults its heap on every 4 MB
 * batch) keep the run affordable. */
static const uint64_t pattern_iters[PAT_COUNT][MAXROWS] = {
	[PAT_PAIR]        = { 2000000, 2000000, 2000000, 2000000, 2000000 },
	[PAT_BATCH]       = { 1000000, 1000000, 1000000,  500000,  100000 },
	[PAT_BATCH_MIXED] = { 1000000 },
	[PAT_PRODCONS]    = {  400000,  400000,  200000,  200000,  200000 },
	[PAT_XBATCH]      = { 1000000, 1000000, 1000000,  500000,  200000 },
	[PAT_LARSON]      = { 2000000, 2000000, 2000000 },
	[PAT_CHURN]       = { 2000000, 2000000, 2000000, 1000000,  500000 },
};

/* One row of a pattern's table: a size (or the thread count of larson). */
struct rowdef {
	char label[16];
	uint32_t param;
	uint64_t iters;
};

/* Allocator libraries (one child process each) and the runners they
 * serve (one table column each; slabnotify serves two). */
enum lib { LIB_SLABNOTIFY, LIB_GLIBC, LIB_MIMALLOC, LIB_TCMALLOC, LIB_JEMALLOC, LIB_COUNT };
static const char *const lib_names[LIB_COUNT] = {
	"slabnotify", "glibc", "mimalloc", "tcmalloc", "jemalloc",
};
enum runner {
	R_SN_CACHE, R_SN_MALLOC, R_GLIBC, R_MIMALLOC, R_TCMALLOC, R_JEMALLOC,
	R_COUNT,
	R_NULL = R_COUNT, /* --callgrind only: loop overhead baseline */
};
static const struct {
	const char *name;
	enum lib lib;
} runners[R_COUNT] = {
	[R_SN_CACHE]  = { "slabnotify-cache", LIB_SLABNOTIFY },
	[R_SN_MALLOC] = { "slabnotify", LIB_SLABNOTIFY },
	[R_GLIBC]     = { "glibc", LIB_GLIBC },
	[R_MIMALLOC]  = { "mimalloc", LIB_MIMALLOC },
	[R_TCMALLOC]  = { "tcmalloc", LIB_TCMALLOC },
	[R_JEMALLOC]  = { "jemalloc", LIB_JEMALLOC },
};

/* The allocator interface every pattern calls through, for everyone. */
struct bench_alloc {
	const char *name;
	void *(*alloc)(size_t size);
	void (*free)(void *p);
};

volatile uintptr_t bench_sink; /* the work's result goes here */

/* ------------------------------------------------------------------ */
/* Small helpers                                                      */
/* ------------------------------------------------------------------ */

static const char *g_prog = "alloc_bench";

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "%s: ", g_prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

/* A bad command line: the message, a pointer to --help, exit status 2. */
static void bad_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void bad_usage(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "%s: ", g_prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n(%s --help for the options)\n", g_prog);
	exit(2);
}

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* The batch pattern's free order: a Fisher-Yates permutation from a
 * fixed seed, hence the same in every process and every run. */
static void make_perm(uint32_t *perm, uint32_t n)
{
	uint64_t s = PERM_SEED;
	for (uint32_t i = 0; i < n; i++)
		perm[i] = i;
	for (uint32_t i = n - 1; i > 0; i--) {
		uint32_t j = (uint32_t)(splitmix64(&s) % (i + 1));
		uint32_t t = perm[i];
		perm[i] = perm[j];
		perm[j] = t;
	}
}

/* The batch-mixed pattern's sizes: uniform in MIXED_MIN..MIXED_MAX from
 * a fixed seed, the same in every process and every run. */
static void make_mixed_sizes(uint32_t *out, uint32_t n)
{
	uint64_t s = MIXED_SEED;
	for (uint32_t i = 0; i < n; i++)
		out[i] = MIXED_MIN + (uint32_t)(splitmix64(&s) % (MIXED_MAX - MIXED_MIN + 1));
}

static int write_full(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* 0: got it all; -1: EOF or error; -2: timeout (timeout_ms < 0: none). */
static int read_full(int fd, void *buf, size_t len, int timeout_ms)
{
	char *p = buf;
	double deadline = now_ns() + (double)timeout_ms * 1e6;
	while (len) {
		if (timeout_ms >= 0) {
			double left = (deadline - now_ns()) / 1e6;
			if (left <= 0)
				return -2;
			struct pollfd pfd = { .fd = fd, .events = POLLIN };
			int r = poll(&pfd, 1, (int)left + 1);
			if (r < 0) {
				if (errno == EINTR)
					continue;
				return -1;
			}
			if (r == 0)
				continue;
		}
		ssize_t n = read(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#endif
}

static inline void spin_wait(unsigned *spins)
{
	if (++*spins < 256) {
		cpu_relax();
	} else {
		*spins = 0;
		sched_yield();
	}
}

/* ------------------------------------------------------------------ */
/* The allocators                                                     */
/* ------------------------------------------------------------------ */

static struct slab_cache *g_cache64;

static void *sn_cache_alloc(size_t size)
{
	(void)size;
	return slab_cache_alloc(g_cache64, 0);
}

static void sn_cache_free(void *p)
{
	slab_cache_free(g_cache64, p);
}

static void *sn_malloc(size_t size)
{
	return slab_malloc(size, 0);
}

static void sn_free(void *p)
{
	slab_free(p);
}

static _Alignas(64) unsigned char null_buf[4096];

static __attribute__((noinline)) void *null_alloc(size_t size)
{
	(void)size;
	return null_buf;
}

static __attribute__((noinline)) void null_free(void *p)
{
	(void)p;
}

static const char *lib_path_of(void *sym)
{
	Dl_info di;
	if (sym && dladdr(sym, &di) && di.dli_fname)
		return di.dli_fname;
	return "?";
}

/* Allocate and free one object to see the allocator works at all. */
static int probe(const struct bench_alloc *a, char *info, size_t infolen)
{
	void *p = a->alloc(64);
	if (!p) {
		snprintf(info, infolen, "%s: a 64-byte allocation failed: %s",
			 a->name, strerror(errno));
		return -1;
	}
	memset(p, 0x5a, 64);
	a->free(p);
	return 0;
}

/* Set up runner @r in this process. 0, or -1 with the reason in @info. */
static int setup_runner(int r, struct bench_alloc *out, char *info, size_t infolen)
{
	memset(out, 0, sizeof(*out));
	out->name = r == R_NULL ? "null" : runners[r].name;
	switch (r) {
	case R_SN_CACHE:
		if (!g_cache64)
			g_cache64 = slab_cache_create("alloc_bench-64", 64, 0, 0, NULL);
		if (!g_cache64) {
			snprintf(info, infolen, "slab_cache_create(64) failed: %s",
				 strerror(errno));
			return -1;
		}
		out->alloc = sn_cache_alloc;
		out->free = sn_cache_free;
		snprintf(info, infolen,
			 "slabnotify %d.%d, slab_cache_alloc/slab_cache_free on a 64-byte cache (linked in)",
			 SLABNOTIFY_VERSION_MAJOR, SLABNOTIFY_VERSION_MINOR);
		break;
	case R_SN_MALLOC:
		out->alloc = sn_malloc;
		out->free = sn_free;
		snprintf(info, infolen, "slabnotify %d.%d, slab_malloc/slab_free (linked in)",
			 SLABNOTIFY_VERSION_MAJOR, SLABNOTIFY_VERSION_MINOR);
		break;
	case R_GLIBC: {
		void *m = dlsym(RTLD_DEFAULT, "malloc");
		void *f = dlsym(RTLD_DEFAULT, "free");
		const char *path = lib_path_of(m);
		if (!m || !f || !strstr(path, "libc.so")) {
			snprintf(info, infolen, "malloc resolves to %s, not glibc (LD_PRELOAD set?)",
				 path);
			return -1;
		}
		out->alloc = (void *(*)(size_t))m;
		out->free = (void (*)(void *))f;
#ifdef __GLIBC__
		snprintf(info, infolen, "glibc %s, malloc/free (%s)", gnu_get_libc_version(), path);
#else
		snprintf(info, infolen, "libc malloc/free (%s)", path);
#endif
		break;
	}
	case R_MIMALLOC: {
		const char *name = getenv("ALLOC_BENCH_MIMALLOC");
		if (!name || !*name)
			name = "libmimalloc.so.2";
		void *h = dlopen(name, RTLD_NOW | RTLD_LOCAL);
		if (!h) {
			const char *e = dlerror();
			snprintf(info, infolen, "not available: dlopen(%s): %s", name,
				 e ? e : "failed");
			return -1;
		}
		void *m = dlsym(h, "mi_malloc");
		void *f = dlsym(h, "mi_free");
		int (*ver)(void) = (int (*)(void))dlsym(h, "mi_version");
		if (!m || !f) {
			snprintf(info, infolen, "%s has no mi_malloc/mi_free", name);
			return -1;
		}
		out->alloc = (void *(*)(size_t))m;
		out->free = (void (*)(void *))f;
		int v = ver ? ver() : 0;
		snprintf(info, infolen, "mimalloc %d.%d.%d, mi_malloc/mi_free (dlopen %s)",
			 v / 100, v / 10 % 10, v % 10, lib_path_of(m));
		break;
	}
	case R_TCMALLOC: {
		void *m = dlsym(RTLD_DEFAULT, "tc_malloc");
		void *f = dlsym(RTLD_DEFAULT, "tc_free");
		if (!m || !f) {
			snprintf(info, infolen,
				 "tcmalloc is not loaded (run with LD_PRELOAD=libtcmalloc_minimal.so.4)");
			return -1;
		}
		const char *(*ver)(int *, int *, const char **) =
			(const char *(*)(int *, int *, const char **))dlsym(RTLD_DEFAULT, "tc_version");
		int maj = 0, min = 0;
		const char *patch = NULL;
		const char *vs = ver ? ver(&maj, &min, &patch) : NULL;
		out->alloc = (void *(*)(size_t))m;
		out->free = (void (*)(void *))f;
		snprintf(info, infolen, "%s, tc_malloc/tc_free (LD_PRELOAD %s)",
			 vs ? vs : "tcmalloc", lib_path_of(m));
		break;
	}
	case R_JEMALLOC: {
		void *m = dlsym(RTLD_DEFAULT, "malloc");
		void *f = dlsym(RTLD_DEFAULT, "free");
		const char *path = lib_path_of(m);
		int (*mallctl)(const char *, void *, size_t *, void *, size_t) =
			(int (*)(const char *, void *, size_t *, void *, size_t))
				dlsym(RTLD_DEFAULT, "mallctl");
		if (!m || !f || !mallctl || !strstr(path, "jemalloc")) {
			snprintf(info, infolen,
				 "jemalloc is not loaded: malloc resolves to %s (run with LD_PRELOAD=libjemalloc.so.2)",
				 path);
			return -1;
		}
		const char *v = NULL;
		size_t vlen = sizeof(v);
		if (mallctl("version", &v, &vlen, NULL, 0) != 0)
			v = NULL;
		out->alloc = (void *(*)(size_t))m;
		out->free = (void (*)(void *))f;
		snprintf(info, infolen, "jemalloc %.40s, malloc/free (LD_PRELOAD %s)",
			 v ? v : "?", path);
		break;
	}
	case R_NULL:
		out->alloc = null_alloc;
		out->free = null_free;
		snprintf(info, infolen, "null allocator (loop overhead only)");
		return 0;
	default:
		snprintf(info, infolen, "unknown allocator %d", r);
		return -1;
	}
	char why[256];
	if (probe(out, why, sizeof(why)) != 0) {
		snprintf(info, infolen, "%s", why);
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* The measured loops                                                 */
/* ------------------------------------------------------------------ */

/* Pattern (a). Returns 0, or -1 if an allocation failed. */
static inline __attribute__((always_inline)) int
pair_body(const struct bench_alloc *a, size_t size, uint64_t n)
{
	void *(*alloc)(size_t) = a->alloc;
	void (*release)(void *) = a->free;
	uintptr_t acc = 0;
	for (uint64_t i = 0; i < n; i++) {
		unsigned char *p = alloc(size);
		if (__builtin_expect(p == NULL, 0))
			return -1;
		p[0] = (unsigned char)i;
		acc ^= (uintptr_t)p + p[0];
		release(p);
	}
	bench_sink ^= acc;
	return 0;
}

/* The loop callgrind counts (--toggle-collect=bench_pair_loop). */
int bench_pair_loop(const struct bench_alloc *a, size_t size, uint64_t n);
BENCH_LOOP int bench_pair_loop(const struct bench_alloc *a, size_t size, uint64_t n)
{
	return pair_body(a, size, n);
}

/* The same loop under another name, for warm-up outside the count. */
int bench_pair_warmup(const struct bench_alloc *a, size_t size, uint64_t n);
BENCH_LOOP int bench_pair_warmup(const struct bench_alloc *a, size_t size, uint64_t n)
{
	return pair_body(a, size, n);
}

/* Pattern churn: CHURN_LIVE blocks of @size live; @steps times, free a
 * random one and allocate its replacement in its place. */
#define CHURN_LIVE 4096
#define CHURN_SEED 0x2545F4914F6CDD1Dull
int bench_churn_loop(const struct bench_alloc *a, size_t size, uint64_t steps);
BENCH_LOOP int bench_churn_loop(const struct bench_alloc *a, size_t size, uint64_t steps)
{
	static unsigned char *live[CHURN_LIVE];
	void *(*alloc)(size_t) = a->alloc;
	void (*release)(void *) = a->free;
	uint64_t seed = CHURN_SEED;
	uint32_t n = 0;   /* live[0..n) hold blocks */
	for (; n < CHURN_LIVE && (live[n] = alloc(size)); n++)
		live[n][0] = (unsigned char)n;
	int rc = n < CHURN_LIVE ? -1 : 0;
	for (uint64_t i = 0; i < steps && !rc; i++) {
		uint32_t j = (uint32_t)(splitmix64(&seed) % CHURN_LIVE);
		bench_sink ^= live[j][0];
		release(live[j]);
		if (__builtin_expect(!(live[j] = alloc(size)), 0)) {
			live[j] = live[--n];   /* keep live[0..n) whole */
			rc = -1;
		} else {
			live[j][0] = (unsigned char)i;
		}
	}
	while (n)
		release(live[--n]);
	return rc;
}

/* Pattern (b): @rounds times, BATCH allocs then BATCH frees in @perm
 * order. @slots holds BATCH pointers. */
int bench_batch_loop(const struct bench_alloc *a, size_t size, uint64_t rounds,
		     void **slots, const uint32_t *perm);
BENCH_LOOP int bench_batch_loop(const struct bench_alloc *a, size_t size, uint64_t rounds,
				void **slots, const uint32_t *perm)
{
	void *(*alloc)(size_t) = a->alloc;
	void (*release)(void *) = a->free;
	uintptr_t acc = 0;
	for (uint64_t r = 0; r < rounds; r++) {
		for (uint32_t i = 0; i < BATCH; i++) {
			unsigned char *p = alloc(size);
			if (__builtin_expect(p == NULL, 0)) {
				while (i--)
					release(slots[i]);
				return -1;
			}
			p[0] = (unsigned char)i;
			slots[i] = p;
		}
		for (uint32_t i = 0; i < BATCH; i++) {
			unsigned char *q = slots[perm[i]];
			acc ^= (uintptr_t)q + q[0];
			release(q);
		}
	}
	bench_sink ^= acc;
	return 0;
}

/* The batch pattern with sizes[i] for the i-th allocation of a round. */
int bench_batch_mixed_loop(const struct bench_alloc *a, const uint32_t *msizes,
			   uint64_t rounds, void **slots, const uint32_t *perm);
BENCH_LOOP int bench_batch_mixed_loop(const struct bench_alloc *a, const uint32_t *msizes,
				      uint64_t rounds, void **slots, const uint32_t *perm)
{
	void *(*alloc)(size_t) = a->alloc;
	void (*release)(void *) = a->free;
	uintptr_t acc = 0;
	for (uint64_t r = 0; r < rounds; r++) {
		for (uint32_t i = 0; i < BATCH; i++) {
			unsigned char *p = alloc(msizes[i]);
			if (__builtin_expect(p == NULL, 0)) {
				while (i--)
					release(slots[i]);
				return -1;
			}
			p[0] = (unsigned char)i;
			slots[i] = p;
		}
		for (uint32_t i = 0; i < BATCH; i++) {
			unsigned char *q = slots[perm[i]];
			acc ^= (uintptr_t)q + q[0];
			release(q);
		}
	}
	bench_sink ^= acc;
	return 0;
}

/* Thread attributes pinning thread k of @n to the (k mod m)-th of the m
 * CPUs this process may use, when it may use at least two: unpinned, the
 * scheduler sometimes stacks two busy threads on one CPU and the result
 * becomes bimodal. */
static void pin_attrs(pthread_attr_t *attr, int n)
{
	cpu_set_t allowed;
	int cpus[CPU_SETSIZE], m = 0;
	for (int k = 0; k < n; k++)
		pthread_attr_init(&attr[k]);
	if (sched_getaffinity(0, sizeof(allowed), &allowed) != 0 || CPU_COUNT(&allowed) < 2)
		return;
	for (int i = 0; i < CPU_SETSIZE; i++)
		if (CPU_ISSET(i, &allowed))
			cpus[m++] = i;
	for (int k = 0; k < n; k++) {
		cpu_set_t one;
		CPU_ZERO(&one);
		CPU_SET(cpus[k % m], &one);
		pthread_attr_setaffinity_np(&attr[k], sizeof(one), &one);
	}
}

/* Pattern (c): a bounded single-producer single-consumer ring. Each index
 * is written by one side only; the other side keeps a cached copy and
 * reloads it (acquire) only when the ring looks full/empty. */
struct spsc_ring {
	_Alignas(64) _Atomic size_t head; /* next slot to fill (producer) */
	_Alignas(64) _Atomic size_t tail; /* next slot to drain (consumer) */
	_Alignas(64) void *slot[RING_CAP];
};

struct prodcons {
	const struct bench_alloc *a;
	size_t size;
	uint64_t n;
	struct spsc_ring *ring;
	pthread_barrier_t start;
	atomic_int failed;  /* producer got NULL and stopped */
	double t0, t1;      /* producer start, consumer end */
	uintptr_t acc;
};

static void *producer_main(void *arg)
{
	struct prodcons *pc = arg;
	struct spsc_ring *r = pc->ring;
	void *(*alloc)(size_t) = pc->a->alloc;
	size_t size = pc->size;
	size_t head = 0, tail_seen = 0;
	unsigned spins = 0;

	pthread_barrier_wait(&pc->start);
	pc->t0 = now_ns();
	for (uint64_t i = 0; i < pc->n; i++) {
		unsigned char *p = alloc(size);
		if (__builtin_expect(p == NULL, 0)) {
			atomic_store_explicit(&pc->failed, 1, memory_order_release);
			return NULL;
		}
		p[0] = (unsigned char)i;
		while (head - tail_seen >= RING_CAP) {
			tail_seen = atomic_load_explicit(&r->tail, memory_order_acquire);
			if (head - tail_seen >= RING_CAP)
				spin_wait(&spins);
		}
		r->slot[head & (RING_CAP - 1)] = p;
		head++;
		atomic_store_explicit(&r->head, head, memory_order_release);
	}
	return NULL;
}

static void *consumer_main(void *arg)
{
	struct prodcons *pc = arg;
	struct spsc_ring *r = pc->ring;
	void (*release)(void *) = pc->a->free;
	size_t tail = 0, head_seen = 0;
	uintptr_t acc = 0;
	unsigned spins = 0;

	pthread_barrier_wait(&pc->start);
	for (uint64_t i = 0; i < pc->n; i++) {
		while (tail == head_seen) {
			head_seen = atomic_load_explicit(&r->head, memory_order_acquire);
			if (tail != head_seen)
				break;
			if (atomic_load_explicit(&pc->failed, memory_order_acquire)) {
				head_seen = atomic_load_explicit(&r->head, memory_order_acquire);
				if (tail == head_seen)
					goto out;
				break;
			}
			spin_wait(&spins);
		}
		unsigned char *q = r->slot[tail & (RING_CAP - 1)];
		acc ^= (uintptr_t)q + q[0];
		release(q);
		tail++;
		atomic_store_explicit(&r->tail, tail, memory_order_release);
	}
out:
	pc->t1 = now_ns();
	pc->acc = acc;
	return NULL;
}

static struct spsc_ring g_ring;

/* Returns ns per object, or -1 with @err set. */
static double run_prodcons(const struct bench_alloc *a, size_t size, uint64_t n,
			   char *err, size_t errlen)
{
	struct prodcons pc = { .a = a, .size = size, .n = n, .ring = &g_ring };
	pthread_attr_t attr[2];
	pthread_t prod, cons;
	int e;

	atomic_store(&g_ring.head, 0);
	atomic_store(&g_ring.tail, 0);
	atomic_store(&pc.failed, 0);
	/* Producer and consumer on two different CPUs when we may use two:
	 * otherwise the scheduler's placement decides much of the variance. */
	pin_attrs(attr, 2);
	if ((e = pthread_barrier_init(&pc.start, NULL, 2)) != 0) {
		snprintf(err, errlen, "pthread_barrier_init: %s", strerror(e));
		goto out_attr;
	}
	if ((e = pthread_create(&cons, &attr[1], consumer_main, &pc)) != 0) {
		snprintf(err, errlen, "pthread_create: %s", strerror(e));
		goto out_barrier;
	}
	if ((e = pthread_create(&prod, &attr[0], producer_main, &pc)) != 0) {
		/* Let the consumer through the barrier and out at once. */
		snprintf(err, errlen, "pthread_create: %s", strerror(e));
		atomic_store(&pc.failed, 1);
		pthread_barrier_wait(&pc.start);
		pthread_join(cons, NULL);
		goto out_barrier;
	}
	pthread_join(prod, NULL);
	pthread_join(cons, NULL);
	bench_sink ^= pc.acc;
	if (atomic_load(&pc.failed)) {
		snprintf(err, errlen, "%s: allocation of %zu bytes failed in the producer",
			 a->name, size);
		e = ENOMEM;
	}
out_barrier:
	pthread_barrier_destroy(&pc.start);
out_attr:
	pthread_attr_destroy(&attr[0]);
	pthread_attr_destroy(&attr[1]);
	return e ? -1 : (pc.t1 - pc.t0) / (double)n;
}

static uint32_t g_perm[BATCH];
static uint32_t g_msizes[BATCH];
static void *g_slots[BATCH];

/* Pattern xbatch: thread A allocates BATCH blocks into one of XB_NBUF
 * buffers and publishes it (a release store of the batch count); thread
 * B waits for it (acquire), frees its blocks in @perm order and gives the
 * buffer back (release of its own count). Each count is written by one
 * side only; the other side re-reads it when it has to wait. */
struct xbatch {
	const struct bench_alloc *a;
	size_t size;
	uint64_t rounds;
	const uint32_t *perm;
	_Alignas(64) _Atomic uint64_t filled; /* batches published by A */
	_Alignas(64) _Atomic uint64_t freed;  /* batches freed by B */
	_Alignas(64) atomic_int failed;       /* A got NULL and stopped */
	pthread_barrier_t start;
	double t0, t1;                        /* A's start, B's end */
	uintptr_t acc;
};

static void *g_xbuf[XB_NBUF][BATCH];

static void *xb_producer(void *arg)
{
	struct xbatch *x = arg;
	void *(*alloc)(size_t) = x->a->alloc;
	void (*release)(void *) = x->a->free;
	size_t size = x->size;
	uint64_t freed_seen = 0;
	unsigned spins = 0;

	pthread_barrier_wait(&x->start);
	x->t0 = now_ns();
	for (uint64_t r = 0; r < x->rounds; r++) {
		while (r - freed_seen >= XB_NBUF) {
			freed_seen = atomic_load_explicit(&x->freed, memory_order_acquire);
			if (r - freed_seen >= XB_NBUF)
				spin_wait(&spins);
		}
		void **buf = g_xbuf[r % XB_NBUF];
		for (uint32_t i = 0; i < BATCH; i++) {
			unsigned char *p = alloc(size);
			if (__builtin_expect(p == NULL, 0)) {
				while (i--)
					release(buf[i]);
				atomic_store_explicit(&x->failed, 1, memory_order_release);
				return NULL;
			}
			p[0] = (unsigned char)i;
			buf[i] = p;
		}
		atomic_store_explicit(&x->filled, r + 1, memory_order_release);
	}
	return NULL;
}

static void *xb_consumer(void *arg)
{
	struct xbatch *x = arg;
	void (*release)(void *) = x->a->free;
	const uint32_t *perm = x->perm;
	uint64_t filled_seen = 0;
	uintptr_t acc = 0;
	unsigned spins = 0;

	pthread_barrier_wait(&x->start);
	for (uint64_t r = 0; r < x->rounds; r++) {
		while (filled_seen <= r) {
			filled_seen = atomic_load_explicit(&x->filled, memory_order_acquire);
			if (filled_seen > r)
				break;
			if (atomic_load_explicit(&x->failed, memory_order_acquire)) {
				filled_seen = atomic_load_explicit(&x->filled, memory_order_acquire);
				if (filled_seen <= r)
					goto out;
				break;
			}
			spin_wait(&spins);
		}
		void **buf = g_xbuf[r % XB_NBUF];
		for (uint32_t i = 0; i < BATCH; i++) {
			unsigned char *q = buf[perm[i]];
			acc ^= (uintptr_t)q + q[0];
			release(q);
		}
		atomic_store_explicit(&x->freed, r + 1, memory_order_release);
	}
out:
	x->t1 = now_ns();
	x->acc = acc;
	return NULL;
}

/* Returns ns per block, or -1 with @err set. */
static double run_xbatch(const struct bench_alloc *a, size_t size, uint64_t rounds,
			 char *err, size_t errlen)
{
	struct xbatch x = { .a = a, .size = size, .rounds = rounds, .perm = g_perm };
	pthread_attr_t attr[2];
	pthread_t prod, cons;
	int e;

	atomic_store(&x.filled, 0);
	atomic_store(&x.freed, 0);
	atomic_store(&x.failed, 0);
	pin_attrs(attr, 2);
	if ((e = pthread_barrier_init(&x.start, NULL, 2)) != 0) {
		snprintf(err, errlen, "pthread_barrier_init: %s", strerror(e));
		goto out_attr;
	}
	if ((e = pthread_create(&cons, &attr[1], xb_consumer, &x)) != 0) {
		snprintf(err, errlen, "pthread_create: %s", strerror(e));
		goto out_barrier;
	}
	if ((e = pthread_create(&prod, &attr[0], xb_producer, &x)) != 0) {
		snprintf(err, errlen, "pthread_create: %s", strerror(e));
		atomic_store(&x.failed, 1);
		pthread_barrier_wait(&x.start);
		pthread_join(cons, NULL);
		goto out_barrier;
	}
	pthread_join(prod, NULL);
	pthread_join(cons, NULL);
	bench_sink ^= x.acc;
	if (atomic_load(&x.failed)) {
		snprintf(err, errlen, "%s: allocation of %zu bytes failed in the allocating thread",
			 a->name, size);
		e = ENOMEM;
	}
out_barrier:
	pthread_barrier_destroy(&x.start);
out_attr:
	pthread_attr_destroy(&attr[0]);
	pthread_attr_destroy(&attr[1]);
	return e ? -1 : (x.t1 - x.t0) / (double)(rounds * BATCH);
}

/* Pattern larson: every thread fills its own LARSON_SLOTS slots of a
 * shared array (untimed), then, after a common start, each step
 * allocates a block of a random size, swaps it into a random slot of the
 * whole array (atomic exchange) and frees the block it displaced, which
 * another thread allocated (N-1)/N of the time. */
struct larson;
struct larson_thread {
	_Alignas(64) struct larson *l;
	unsigned idx;
	int failed;
	double t_start, t_end;
	uintptr_t acc;
};

struct larson {
	const struct bench_alloc *a;
	unsigned nthreads;
	uint32_t nslots;    /* nthreads * LARSON_SLOTS, a power of two */
	uint64_t steps;     /* per thread */
	pthread_barrier_t start;
	struct larson_thread th[LARSON_MAXTHREADS];
};

static _Alignas(64) unsigned char *_Atomic g_lslots[LARSON_MAXTHREADS * LARSON_SLOTS];

static inline size_t larson_size(uint64_t r)
{
	return LARSON_MIN + (size_t)((r >> 32) % (LARSON_MAX - LARSON_MIN + 1));
}

static void *larson_main(void *arg)
{
	struct larson_thread *me = arg;
	struct larson *l = me->l;
	void *(*alloc)(size_t) = l->a->alloc;
	void (*release)(void *) = l->a->free;
	uint64_t s = LARSON_SEED + 0x9e3779b97f4a7c15ULL * (me->idx + 1);
	uint32_t mask = l->nslots - 1;
	uintptr_t acc = 0;

	for (uint32_t i = me->idx * LARSON_SLOTS; i < (me->idx + 1) * LARSON_SLOTS; i++) {
		uint64_t r = splitmix64(&s);
		unsigned char *p = alloc(larson_size(r));
		if (p)
			p[0] = (unsigned char)r;
		else
			me->failed = 1;
		atomic_store_explicit(&g_lslots[i], p, memory_order_relaxed);
	}
	pthread_barrier_wait(&l->start);
	me->t_start = now_ns();
	for (uint64_t k = 0; k < l->steps && !me->failed; k++) {
		uint64_t r = splitmix64(&s);
		unsigned char *p = alloc(larson_size(r));
		if (__builtin_expect(p == NULL, 0)) {
			me->failed = 1;
			break;
		}
		p[0] = (unsigned char)r;
		unsigned char *old = atomic_exchange_explicit(&g_lslots[(uint32_t)r & mask], p,
							      memory_order_acq_rel);
		if (__builtin_expect(old != NULL, 1)) {
			acc ^= (uintptr_t)old + old[0];
			release(old);
		}
	}
	me->t_end = now_ns();
	me->acc = acc;
	return NULL;
}

/* Returns ns per step (wall time / steps of all threads), or -1. */
static double run_larson(const struct bench_alloc *a, unsigned nthreads, uint64_t total,
			 char *err, size_t errlen)
{
	struct larson l = { .a = a, .nthreads = nthreads };
	pthread_attr_t attr[LARSON_MAXTHREADS];
	pthread_t th[LARSON_MAXTHREADS];
	unsigned started = 0;
	double t0 = 0, t1 = 0;
	int e;

	if (nthreads < 1 || nthreads > LARSON_MAXTHREADS || (nthreads & (nthreads - 1))) {
		snprintf(err, errlen, "larson: %u threads (1, 2 or 4)", nthreads);
		return -1;
	}
	l.nslots = nthreads * LARSON_SLOTS;
	l.steps = total / nthreads ? total / nthreads : 1;
	pin_attrs(attr, (int)nthreads);
	if ((e = pthread_barrier_init(&l.start, NULL, nthreads)) != 0) {
		snprintf(err, errlen, "pthread_barrier_init: %s", strerror(e));
		goto out_attr;
	}
	for (unsigned k = 0; k < nthreads; k++) {
		l.th[k].l = &l;
		l.th[k].idx = k;
	}
	for (; started < nthreads; started++)
		if ((e = pthread_create(&th[started], &attr[started], larson_main,
					&l.th[started])) != 0)
			break;
	if (e) /* the started threads wait at the barrier for the rest: end the child */
		die("larson: pthread_create: %s", strerror(e));
	uintptr_t acc = 0;
	for (unsigned k = 0; k < nthreads; k++) {
		pthread_join(th[k], NULL);
		if (l.th[k].failed)
			e = ENOMEM;
		if (k == 0 || l.th[k].t_start < t0)
			t0 = l.th[k].t_start;
		if (l.th[k].t_end > t1)
			t1 = l.th[k].t_end;
		acc ^= l.th[k].acc;
	}
	bench_sink ^= acc;
	/* The blocks still live, untimed. */
	for (uint32_t i = 0; i < l.nslots; i++) {
		unsigned char *p = atomic_exchange(&g_lslots[i], NULL);
		if (p)
			a->free(p);
	}
	if (e)
		snprintf(err, errlen, "%s: an allocation of %d..%d bytes failed", a->name,
			 LARSON_MIN, LARSON_MAX);
	pthread_barrier_destroy(&l.start);
out_attr:
	for (unsigned k = 0; k < nthreads; k++)
		pthread_attr_destroy(&attr[k]);
	return e ? -1 : (t1 - t0) / (double)(l.steps * nthreads);
}

/* One timed run of @pat (@param: the size, or larson's thread count);
 * ns per op, or -1 with @err set. */
static double run_pattern(const struct bench_alloc *a, int pat, size_t param, uint64_t iters,
			  char *err, size_t errlen)
{
	double t0, t1;
	size_t size = param;
	uint64_t rounds = iters / BATCH ? iters / BATCH : 1;
	switch (pat) {
	case PAT_PAIR:
		t0 = now_ns();
		if (bench_pair_loop(a, size, iters) != 0)
			goto nomem;
		t1 = now_ns();
		return (t1 - t0) / (double)iters;
	case PAT_BATCH:
		t0 = now_ns();
		if (bench_batch_loop(a, size, rounds, g_slots, g_perm) != 0)
			goto nomem;
		t1 = now_ns();
		return (t1 - t0) / (double)(rounds * BATCH);
	case PAT_BATCH_MIXED:
		t0 = now_ns();
		if (bench_batch_mixed_loop(a, g_msizes, rounds, g_slots, g_perm) != 0) {
			snprintf(err, errlen, "%s: an allocation of %d..%d bytes failed: %s",
				 a->name, MIXED_MIN, MIXED_MAX, strerror(errno));
			return -1;
		}
		t1 = now_ns();
		return (t1 - t0) / (double)(rounds * BATCH);
	case PAT_PRODCONS:
		return run_prodcons(a, size, iters, err, errlen);
	case PAT_XBATCH:
		return run_xbatch(a, size, rounds, err, errlen);
	case PAT_LARSON:
		return run_larson(a, (unsigned)param, iters, err, errlen);
	case PAT_CHURN:
		t0 = now_ns();
		if (bench_churn_loop(a, size, iters) != 0)
			goto nomem;
		t1 = now_ns();
		return (t1 - t0) / (double)iters;
	}
	snprintf(err, errlen, "unknown pattern %d", pat);
	return -1;
nomem:
	snprintf(err, errlen, "%s: allocation of %zu bytes failed: %s", a->name, size,
		 strerror(errno));
	return -1;
}

/* ------------------------------------------------------------------ */
/* Instruction counting (--callgrind)                                 */
/* ------------------------------------------------------------------ */

/* The steps: one allocation and one free, out of line, so that
 * callgrind_annotate --inclusive=yes reports the allocator's cost of each
 * (plus the call through the table: see the null allocator). The empty
 * asm after the call keeps it a call (no tail jump), so the callee's cost
 * is always inside the step. */
void *bench_step_alloc(const struct bench_alloc *a, size_t size);
BENCH_LOOP void *bench_step_alloc(const struct bench_alloc *a, size_t size)
{
	void *p = a->alloc(size);
	__asm__ __volatile__("" ::: "memory");
	return p;
}

void bench_step_free(const struct bench_alloc *a, void *p);
BENCH_LOOP void bench_step_free(const struct bench_alloc *a, void *p)
{
	a->free(p);
	__asm__ __volatile__("" ::: "memory");
}

/* The loops valgrind collects in (--toggle-collect=NAME); each calls
 * the steps once per allocation and once per free. */
int bench_cg_pair(const struct bench_alloc *a, size_t size, uint64_t n);
BENCH_LOOP int bench_cg_pair(const struct bench_alloc *a, size_t size, uint64_t n)
{
	uintptr_t acc = 0;
	for (uint64_t i = 0; i < n; i++) {
		unsigned char *p = bench_step_alloc(a, size);
		if (__builtin_expect(p == NULL, 0))
			return -1;
		p[0] = (unsigned char)i;
		acc ^= (uintptr_t)p + p[0];
		bench_step_free(a, p);
	}
	bench_sink ^= acc;
	return 0;
}

/* One batch: BATCH allocations of @size, or of msizes[i] when given. */
static inline __attribute__((always_inline)) int
cg_fill_body(const struct bench_alloc *a, size_t size, const uint32_t *msizes, void **slots)
{
	for (uint32_t i = 0; i < BATCH; i++) {
		unsigned char *p = bench_step_alloc(a, msizes ? msizes[i] : size);
		if (__builtin_expect(p == NULL, 0)) {
			while (i--)
				bench_step_free(a, slots[i]);
			return -1;
		}
		p[0] = (unsigned char)i;
		slots[i] = p;
	}
	return 0;
}

static inline __attribute__((always_inline)) uintptr_t
cg_drain_body(const struct bench_alloc *a, void **slots, const uint32_t *perm)
{
	uintptr_t acc = 0;
	for (uint32_t i = 0; i < BATCH; i++) {
		unsigned char *q = slots[perm[i]];
		acc ^= (uintptr_t)q + q[0];
		bench_step_free(a, q);
	}
	return acc;
}

int bench_cg_batch(const struct bench_alloc *a, size_t size, uint64_t rounds, void **slots,
		   const uint32_t *perm);
BENCH_LOOP int bench_cg_batch(const struct bench_alloc *a, size_t size, uint64_t rounds,
			      void **slots, const uint32_t *perm)
{
	for (uint64_t r = 0; r < rounds; r++) {
		if (cg_fill_body(a, size, NULL, slots) != 0)
			return -1;
		bench_sink ^= cg_drain_body(a, slots, perm);
	}
	return 0;
}

int bench_cg_batch_mixed(const struct bench_alloc *a, const uint32_t *msizes, uint64_t rounds,
			 void **slots, const uint32_t *perm);
BENCH_LOOP int bench_cg_batch_mixed(const struct bench_alloc *a, const uint32_t *msizes,
				    uint64_t rounds, void **slots, const uint32_t *perm)
{
	for (uint64_t r = 0; r < rounds; r++) {
		if (cg_fill_body(a, 0, msizes, slots) != 0)
			return -1;
		bench_sink ^= cg_drain_body(a, slots, perm);
	}
	return 0;
}

/* churn: the pool's fill, @steps turns and drain, every op a step call
 * (CHURN_LIVE + @steps allocs and as many frees). */
int bench_cg_churn(const struct bench_alloc *a, size_t size, uint64_t steps);
BENCH_LOOP int bench_cg_churn(const struct bench_alloc *a, size_t size, uint64_t steps)
{
	static unsigned char *live[CHURN_LIVE];
	uint64_t seed = CHURN_SEED;
	for (uint32_t n = 0; n < CHURN_LIVE; n++)
		if (!(live[n] = bench_step_alloc(a, size)))
			return -1;
	for (uint64_t i = 0; i < steps; i++) {
		uint32_t j = (uint32_t)(splitmix64(&seed) % CHURN_LIVE);
		bench_step_free(a, live[j]);
		if (!(live[j] = bench_step_alloc(a, size)))
			return -1;
	}
	for (uint32_t n = 0; n < CHURN_LIVE; n++)
		bench_step_free(a, live[n]);
	return 0;
}

/* xbatch: the allocating thread's batch and the freeing thread's batch,
 * collected; and the same under other names for the warm-up. */
int bench_cg_xbatch_fill(const struct bench_alloc *a, size_t size, void **slots);
BENCH_LOOP int bench_cg_xbatch_fill(const struct bench_alloc *a, size_t size, void **slots)
{
	return cg_fill_body(a, size, NULL, slots);
}

uintptr_t bench_cg_xbatch_drain(const struct bench_alloc *a, void **slots, const uint32_t *perm);
BENCH_LOOP uintptr_t bench_cg_xbatch_drain(const struct bench_alloc *a, void **slots,
					   const uint32_t *perm)
{
	return cg_drain_body(a, slots, perm);
}

static __attribute__((noinline)) int xb_warm_fill(const struct bench_alloc *a, size_t size,
						  void **slots)
{
	return cg_fill_body(a, size, NULL, slots);
}

static __attribute__((noinline)) uintptr_t xb_warm_drain(const struct bench_alloc *a,
							 void **slots, const uint32_t *perm)
{
	return cg_drain_body(a, slots, perm);
}

/* Under valgrind the threads are serialised anyway: the two sides
 * strictly alternate (semaphores), so only one is ever inside a collected
 * function and the count is the same in every run. */
struct cg_xbatch {
	const struct bench_alloc *a;
	uint64_t warm, rounds;
	sem_t full, empty;
	uintptr_t acc;
};

static void sem_wait_intr(sem_t *s)
{
	while (sem_wait(s) != 0 && errno == EINTR)
		;
}

static void *cg_xbatch_consumer(void *arg)
{
	struct cg_xbatch *x = arg;
	for (uint64_t r = 0; r < x->warm + x->rounds; r++) {
		sem_wait_intr(&x->full);
		if (r < x->warm)
			x->acc ^= xb_warm_drain(x->a, g_slots, g_perm);
		else
			x->acc ^= bench_cg_xbatch_drain(x->a, g_slots, g_perm);
		sem_post(&x->empty);
	}
	return NULL;
}

static int cg_xbatch(const struct bench_alloc *a, size_t size, uint64_t warm, uint64_t rounds)
{
	struct cg_xbatch x = { .a = a, .warm = warm, .rounds = rounds };
	pthread_t cons;
	int e;
	if (sem_init(&x.full, 0, 0) != 0 || sem_init(&x.empty, 0, 0) != 0)
		die("sem_init: %s", strerror(errno));
	if ((e = pthread_create(&cons, NULL, cg_xbatch_consumer, &x)) != 0)
		die("pthread_create: %s", strerror(e));
	for (uint64_t r = 0; r < warm + rounds; r++) {
		int rc = r < warm ? xb_warm_fill(a, size, g_slots)
				  : bench_cg_xbatch_fill(a, size, g_slots);
		if (rc != 0)
			die("--callgrind: %s: allocation of %zu bytes failed: %s", a->name, size,
			    strerror(errno));
		sem_post(&x.full);
		sem_wait_intr(&x.empty);
	}
	pthread_join(cons, NULL);
	bench_sink ^= x.acc;
	sem_destroy(&x.full);
	sem_destroy(&x.empty);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Child side                                                         */
/* ------------------------------------------------------------------ */

struct msg_hello {
	int32_t runner;
	int32_t ok;
	char info[248];
};

enum { OP_QUIT = 0, OP_RUN = 1 };

struct msg_cmd {
	int32_t op;
	int32_t runner;
	int32_t pattern;
	uint32_t size;
	uint64_t iters;
};

struct msg_result {
	int32_t ok;
	int32_t pad;
	double ns;
	char err[176];
};

static int child_main(const char *libname)
{
	int lib = -1;
	for (int l = 0; l < LIB_COUNT; l++)
		if (strcmp(libname, lib_names[l]) == 0)
			lib = l;
	if (lib < 0)
		die("--child: unknown allocator library '%s'", libname);
	if (fcntl(CMD_FD, F_GETFD) < 0 || fcntl(RES_FD, F_GETFD) < 0)
		die("--child is internal: it needs the parent's pipes on fds %d and %d",
		    CMD_FD, RES_FD);

	struct bench_alloc vt[R_COUNT];
	bool ok[R_COUNT] = { false };
	for (int r = 0; r < R_COUNT; r++) {
		if ((int)runners[r].lib != lib)
			continue;
		struct msg_hello h;
		memset(&h, 0, sizeof(h));
		h.runner = r;
		h.ok = setup_runner(r, &vt[r], h.info, sizeof(h.info)) == 0;
		ok[r] = h.ok;
		if (write_full(RES_FD, &h, sizeof(h)) != 0)
			return 1;
	}
	make_perm(g_perm, BATCH);
	make_mixed_sizes(g_msizes, BATCH);

	for (;;) {
		struct msg_cmd c;
		if (read_full(CMD_FD, &c, sizeof(c), -1) != 0 || c.op == OP_QUIT)
			return 0;
		struct msg_result res;
		memset(&res, 0, sizeof(res));
		if (c.runner < 0 || c.runner >= R_COUNT || !ok[c.runner] ||
		    c.pattern < 0 || c.pattern >= PAT_COUNT) {
			snprintf(res.err, sizeof(res.err), "bad command (runner %d pattern %d)",
				 c.runner, c.pattern);
		} else {
			const struct bench_alloc *a = &vt[c.runner];
			/* Warm up (1/8 of the work, at least one batch), then time. */
			uint64_t warm = c.iters / 8;
			if (warm < BATCH)
				warm = BATCH;
			double ns = run_pattern(a, c.pattern, c.size, warm, res.err, sizeof(res.err));
			if (ns >= 0)
				ns = run_pattern(a, c.pattern, c.size, c.iters, res.err,
						 sizeof(res.err));
			res.ok = ns >= 0;
			res.ns = ns;
		}
		if (write_full(RES_FD, &res, sizeof(res)) != 0)
			return 1;
	}
}

/* ------------------------------------------------------------------ */
/* Parent side                                                        */
/* ------------------------------------------------------------------ */

#if defined(__x86_64__) && defined(__LP64__)
#define MULTIARCH "x86_64-linux-gnu"
#elif defined(__x86_64__)
#define MULTIARCH "x86_64-linux-gnux32"
#elif defined(__aarch64__)
#define MULTIARCH "aarch64-linux-gnu"
#elif defined(__i386__)
#define MULTIARCH "i386-linux-gnu"
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define MULTIARCH "powerpc64le-linux-gnu"
#elif defined(__s390x__)
#define MULTIARCH "s390x-linux-gnu"
#elif defined(__riscv) && __riscv_xlen == 64
#define MULTIARCH "riscv64-linux-gnu"
#elif defined(__arm__)
#define MULTIARCH "arm-linux-gnueabihf"
#else
#define MULTIARCH "."
#endif

/* Find the first of @names in the usual library directories; the env
 * variable @override names the file directly. */
static bool find_lib(const char *override, const char *const *names, char *out, size_t outlen)
{
	static const char *const dirs[] = {
		"/usr/lib/" MULTIARCH, "/lib/" MULTIARCH, "/usr/local/lib",
		"/usr/lib64", "/lib64", "/usr/lib", "/lib",
	};
	const char *env = getenv(override);
	if (env && *env) {
		snprintf(out, outlen, "%s", env);
		return access(env, R_OK) == 0;
	}
	for (const char *const *n = names; *n; n++)
		for (size_t d = 0; d < sizeof(dirs) / sizeof(dirs[0]); d++) {
			snprintf(out, outlen, "%s/%s", dirs[d], *n);
			if (access(out, R_OK) == 0)
				return true;
		}
	snprintf(out, outlen, "%s", names[0]);
	return false;
}

struct child {
	pid_t pid;
	int cmd_fd, res_fd;
	bool alive;
};

static struct child g_child[LIB_COUNT];
static bool g_avail[R_COUNT];
static char g_info[R_COUNT][256];
static const char *g_argv0;

/* Move @fd to a number >= 10, close-on-exec. */
static int fd_high(int fd)
{
	int n = fcntl(fd, F_DUPFD_CLOEXEC, 10);
	if (n < 0)
		die("fcntl(F_DUPFD_CLOEXEC): %s", strerror(errno));
	close(fd);
	return n;
}

static void child_reap(int lib, bool force)
{
	struct child *c = &g_child[lib];
	int st;
	if (!c->pid)
		return;
	if (force)
		kill(c->pid, SIGKILL);
	close(c->cmd_fd);
	close(c->res_fd);
	while (waitpid(c->pid, &st, 0) < 0 && errno == EINTR)
		;
	if (!force && WIFSIGNALED(st))
		fprintf(stderr, "%s: %s child died of signal %d (%s)\n", g_prog, lib_names[lib],
			WTERMSIG(st), strsignal(WTERMSIG(st)));
	else if (!force && WIFEXITED(st) && WEXITSTATUS(st))
		fprintf(stderr, "%s: %s child exited with status %d\n", g_prog, lib_names[lib],
			WEXITSTATUS(st));
	c->pid = 0;
	c->alive = false;
}

static void mark_lib_unavailable(int lib, const char *why)
{
	for (int r = 0; r < R_COUNT; r++)
		if ((int)runners[r].lib == lib) {
			if (g_avail[r] || !g_info[r][0])
				snprintf(g_info[r], sizeof(g_info[r]), "n/a: %.240s", why);
			g_avail[r] = false;
		}
}

static void spawn_child(int lib, const bool want[R_COUNT])
{
	char preload[512] = "";
	bool need = false;
	for (int r = 0; r < R_COUNT; r++)
		if ((int)runners[r].lib == lib && want[r])
			need = true;
	if (!need)
		return;

	if (lib == LIB_TCMALLOC) {
		static const char *const names[] = {
			"libtcmalloc_minimal.so.4", "libtcmalloc.so.4", NULL
		};
		if (!find_lib("ALLOC_BENCH_TCMALLOC", names, preload, sizeof(preload))) {
			char why[600];
			snprintf(why, sizeof(why), "not installed (%s not found)", preload);
			mark_lib_unavailable(lib, why);
			return;
		}
	} else if (lib == LIB_JEMALLOC) {
		static const char *const names[] = { "libjemalloc.so.2", NULL };
		if (!find_lib("ALLOC_BENCH_JEMALLOC", names, preload, sizeof(preload))) {
			char why[600];
			snprintf(why, sizeof(why), "not installed (%s not found)", preload);
			mark_lib_unavailable(lib, why);
			return;
		}
	}

	/* The child's environment: ours without LD_PRELOAD, plus the peer. */
	size_t n = 0;
	while (environ[n])
		n++;
	char **envp = calloc(n + 2, sizeof(*envp));
	char *pre = NULL;
	if (!envp)
		die("out of memory");
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], "LD_PRELOAD=", 11) != 0)
			envp[k++] = environ[i];
	if (preload[0]) {
		if (asprintf(&pre, "LD_PRELOAD=%s", preload) < 0)
			die("out of memory");
		envp[k++] = pre;
	}
	envp[k] = NULL;

	int cp[2], rp[2];
	if (pipe2(cp, O_CLOEXEC) != 0 || pipe2(rp, O_CLOEXEC) != 0)
		die("pipe: %s", strerror(errno));
	for (int i = 0; i < 2; i++) {
		cp[i] = fd_high(cp[i]);
		rp[i] = fd_high(rp[i]);
	}
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, cp[0], CMD_FD);
	posix_spawn_file_actions_adddup2(&fa, rp[1], RES_FD);
	char *argv[] = { (char *)g_argv0, "--child", (char *)lib_names[lib], NULL };
	const char *exe = access("/proc/self/exe", X_OK) == 0 ? "/proc/self/exe" : g_argv0;
	pid_t pid;
	int e = posix_spawn(&pid, exe, &fa, NULL, argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	close(cp[0]);
	close(rp[1]);
	free(pre);
	free(envp);
	if (e != 0) {
		char why[300];
		snprintf(why, sizeof(why), "cannot start child (%s): %s", exe, strerror(e));
		close(cp[1]);
		close(rp[0]);
		mark_lib_unavailable(lib, why);
		return;
	}
	struct child *c = &g_child[lib];
	c->pid = pid;
	c->cmd_fd = cp[1];
	c->res_fd = rp[0];
	c->alive = true;
}

static void child_hello(int lib)
{
	struct child *c = &g_child[lib];
	if (!c->alive)
		return;
	for (int r = 0; r < R_COUNT; r++) {
		if ((int)runners[r].lib != lib)
			continue;
		struct msg_hello h;
		int e = read_full(c->res_fd, &h, sizeof(h), HELLO_TIMEOUT_MS);
		if (e != 0 || h.runner != r) {
			child_reap(lib, true);
			mark_lib_unavailable(lib, e == -2 ? "child did not answer"
							  : "child failed to start");
			return;
		}
		h.info[sizeof(h.info) - 1] = 0;
		g_avail[r] = h.ok;
		if (h.ok)
			snprintf(g_info[r], sizeof(g_info[r]), "%s", h.info);
		else
			snprintf(g_info[r], sizeof(g_info[r]), "n/a: %s", h.info);
	}
}

/* One trial of runner @r in its child; ns per op or NAN. */
static double child_trial(int r, int pat, const struct rowdef *row)
{
	int lib = runners[r].lib;
	struct child *c = &g_child[lib];
	const char *rowname = pat == PAT_LARSON ? "threads" : "size";
	if (!c->alive || !g_avail[r])
		return NAN;
	struct msg_cmd cmd = {
		.op = OP_RUN, .runner = r, .pattern = pat, .size = row->param, .iters = row->iters,
	};
	struct msg_result res;
	int e = write_full(c->cmd_fd, &cmd, sizeof(cmd));
	if (e == 0)
		e = read_full(c->res_fd, &res, sizeof(res), TRIAL_TIMEOUT_MS);
	if (e != 0) {
		char why[200];
		snprintf(why, sizeof(why), "child %s during %s %s %s",
			 e == -2 ? "timed out" : "died", pattern_names[pat], rowname, row->label);
		fprintf(stderr, "%s: %s: %s\n", g_prog, lib_names[lib], why);
		child_reap(lib, e == -2);
		mark_lib_unavailable(lib, why);
		return NAN;
	}
	if (!res.ok) {
		res.err[sizeof(res.err) - 1] = 0;
		fprintf(stderr, "%s: %s, %s %s %s: %s\n", g_prog, runners[r].name,
			pattern_names[pat], rowname, row->label, res.err);
		return NAN;
	}
	return res.ns;
}

static void children_quit(void)
{
	for (int l = 0; l < LIB_COUNT; l++) {
		struct child *c = &g_child[l];
		if (!c->alive)
			continue;
		struct msg_cmd cmd = { .op = OP_QUIT };
		if (write_full(c->cmd_fd, &cmd, sizeof(cmd)) != 0) {
			child_reap(l, true);
			continue;
		}
		child_reap(l, false);
	}
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* Median of @n values; NAN if any is NAN (a failed trial). */
static double median(double *v, int n)
{
	for (int i = 0; i < n; i++)
		if (isnan(v[i]))
			return NAN;
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* ------------------------------------------------------------------ */
/* Output                                                             */
/* ------------------------------------------------------------------ */

static void cpu_model(char *out, size_t len)
{
	static const char *const keys[] = { "model name", "Model", "cpu model", "Hardware", "cpu" };
	snprintf(out, len, "unknown CPU");
	FILE *f = fopen("/proc/cpuinfo", "r");
	if (!f)
		return;
	char line[512], best[512] = "";
	int best_rank = 100;
	while (fgets(line, sizeof(line), f)) {
		char *colon = strchr(line, ':');
		if (!colon)
			continue;
		for (int k = 0; k < (int)(sizeof(keys) / sizeof(keys[0])) && k < best_rank; k++) {
			size_t kl = strlen(keys[k]);
			if (strncmp(line, keys[k], kl) == 0 && (line[kl] == ' ' || line[kl] == '\t' ||
								 line[kl] == ':')) {
				char *v = colon + 1;
				while (*v == ' ' || *v == '\t')
					v++;
				v[strcspn(v, "\n")] = 0;
				if (*v) {
					snprintf(best, sizeof(best), "%s", v);
					best_rank = k;
				}
			}
		}
	}
	fclose(f);
	if (best[0])
		snprintf(out, len, "%s", best);
}

static void fmt_ns(char *buf, size_t len, double v)
{
	if (isnan(v))
		snprintf(buf, len, "n/a");
	else if (v < 100)
		snprintf(buf, len, "%.2f", v);
	else
		snprintf(buf, len, "%.1f", v);
}

static void fmt_ratio(char *buf, size_t len, double a, double b)
{
	if (isnan(a) || isnan(b) || b <= 0)
		snprintf(buf, len, "n/a");
	else
		snprintf(buf, len, "%.2f", a / b);
}

static bool pattern_is_batched(int pat)
{
	return pat == PAT_BATCH || pat == PAT_BATCH_MIXED || pat == PAT_XBATCH;
}

static uint64_t work_for(int pat, int row, bool quick)
{
	uint64_t w = pattern_iters[pat][row];
	if (quick)
		w /= 10;
	if (pattern_is_batched(pat))
		w = w / BATCH ? w / BATCH * BATCH : BATCH;
	return w ? w : 1;
}

/* The rows of @pat's table; *cache_row is the row whose slabnotify-cache
 * figure the "cache-64" line shows, or -1 when the pattern has none (the
 * cache has one size: batch-mixed and larson allocate many). */
static int pattern_rows(int pat, bool quick, struct rowdef *rows, int *cache_row)
{
	int n = 0;
	*cache_row = -1;
	switch (pat) {
	case PAT_BATCH_MIXED:
		snprintf(rows[0].label, sizeof(rows[0].label), "%d-%d", MIXED_MIN, MIXED_MAX);
		rows[0].param = 0;
		rows[0].iters = work_for(pat, 0, quick);
		return 1;
	case PAT_LARSON:
		for (size_t i = 0; i < NLARSON; i++, n++) {
			snprintf(rows[n].label, sizeof(rows[n].label), "%u", larson_threads[i]);
			rows[n].param = larson_threads[i];
			rows[n].iters = work_for(pat, n, quick);
		}
		return n;
	default:
		for (size_t i = 0; i < NSIZES; i++, n++) {
			snprintf(rows[n].label, sizeof(rows[n].label), "%zu", sizes[i]);
			rows[n].param = (uint32_t)sizes[i];
			rows[n].iters = work_for(pat, n, quick);
		}
		*cache_row = SIZE64_IDX;
		return n;
	}
}

/* "2000000 pairs", "1000 rounds of 1000 (500 at 1024 B, ...)". */
static void describe_work(int pat, bool quick, char *out, size_t len)
{
	struct rowdef rows[MAXROWS];
	int cache_row;
	int n = pattern_rows(pat, quick, rows, &cache_row);
	uint64_t base = rows[0].iters;
	static const char *const what[PAT_COUNT] = {
		[PAT_PAIR] = " pairs", [PAT_BATCH] = " rounds of 1000",
		[PAT_BATCH_MIXED] = " rounds of 1000", [PAT_PRODCONS] = " objects",
		[PAT_XBATCH] = " batches of 1000", [PAT_LARSON] = " steps (all threads together)",
		[PAT_CHURN] = " steps",
	};
	uint64_t div = pattern_is_batched(pat) ? BATCH : 1;
	size_t l;
	snprintf(out, len, "%" PRIu64 "%s", base / div, what[pat]);
	for (int i = 1; i < n; i++) {
		if (rows[i].iters == base)
			continue;
		l = strlen(out);
		snprintf(out + l, len - l, ", %" PRIu64 " at %s%s", rows[i].iters / div,
			 rows[i].label, pat == PAT_LARSON ? " threads" : " B");
	}
	if (pat == PAT_LARSON) {
		l = strlen(out);
		snprintf(out + l, len - l, "; %d live blocks per thread", LARSON_SLOTS);
	}
	if (pat == PAT_CHURN) {
		l = strlen(out);
		snprintf(out + l, len - l, "; %d live blocks", CHURN_LIVE);
	}
}

/* med[row][runner]; the cache-64 line reads R_SN_CACHE at the cache row. */
struct spread {
	double spread; /* (max - min) / median over the trials of one cell */
	int r, row;    /* that cell; r < 0: none */
};

static void print_table(int pat, double med[MAXROWS][R_COUNT], const struct spread *worst,
			int trials, bool quick, bool md)
{
	static const int cols[] = { R_SN_MALLOC, R_GLIBC, R_MIMALLOC, R_TCMALLOC, R_JEMALLOC };
	const int ncols = (int)(sizeof(cols) / sizeof(cols[0]));
	const char *unit = pattern_unit[pat];
	const char *rowname = pat == PAT_LARSON ? "threads" : "size";
	struct rowdef rows[MAXROWS];
	int cache_row;
	int nrows = pattern_rows(pat, quick, rows, &cache_row);
	char work[200];
	describe_work(pat, quick, work, sizeof(work));

	if (md) {
		printf("### %s\n\n%s (median of %d trials; per trial: %s).\n\n", pattern_names[pat],
		       pattern_desc[pat], trials, work);
		printf("| %s | slabnotify | glibc | mimalloc | tcmalloc | jemalloc | slabnotify/mimalloc | slabnotify/glibc |\n",
		       rowname);
		printf("|---|---:|---:|---:|---:|---:|---:|---:|\n");
	} else {
		printf("\n== %s: %s\n   (%s, median of %d trials; per trial: %s)\n",
		       pattern_names[pat], pattern_desc[pat], unit, trials, work);
		printf("%-9s %11s %9s %9s %9s %9s %8s %8s\n", rowname, "slabnotify", "glibc",
		       "mimalloc", "tcmalloc", "jemalloc", "sn/mi", "sn/glibc");
	}
	for (int row = cache_row >= 0 ? -1 : 0; row < nrows; row++) {
		int ri = row < 0 ? cache_row : row;
		char label[24];
		if (row < 0)
			snprintf(label, sizeof(label), "cache-64");
		else
			snprintf(label, sizeof(label), "%s", rows[ri].label);
		double v[R_COUNT];
		for (int c = 0; c < ncols; c++)
			v[cols[c]] = med[ri][cols[c]];
		if (row < 0)
			v[R_SN_MALLOC] = med[ri][R_SN_CACHE];
		char cell[8][32];
		for (int c = 0; c < ncols; c++)
			fmt_ns(cell[c], sizeof(cell[c]), v[cols[c]]);
		fmt_ratio(cell[5], sizeof(cell[5]), v[R_SN_MALLOC], v[R_MIMALLOC]);
		fmt_ratio(cell[6], sizeof(cell[6]), v[R_SN_MALLOC], v[R_GLIBC]);
		if (md)
			printf("| %s | %s | %s | %s | %s | %s | %s | %s |\n", label, cell[0], cell[1],
			       cell[2], cell[3], cell[4], cell[5], cell[6]);
		else
			printf("%-9s %11s %9s %9s %9s %9s %8s %8s\n", label, cell[0], cell[1],
			       cell[2], cell[3], cell[4], cell[5], cell[6]);
	}
	const char *note = cache_row >= 0
		? "cache-64: the slabnotify column is slab_cache_alloc/slab_cache_free on a 64-byte "
		  "cache; the peer columns repeat their malloc(64)/free figures. Ratios are "
		  "slabnotify time / peer time (below 1 means slabnotify is faster)."
		: "Ratios are slabnotify time / peer time (below 1 means slabnotify is faster).";
	char sp[160] = "";
	if (worst->r >= 0)
		snprintf(sp, sizeof(sp), " Largest spread over the trials, (max-min)/median: %.0f%% (%s, %s %s).",
			 worst->spread * 100, runners[worst->r].name,
			 rows[worst->row].label, pat == PAT_LARSON ? "threads" : "bytes");
	if (md)
		printf("\n%s%s\n\n", note, sp);
	else
		printf("   %s%s\n", note, sp);
	fflush(stdout);
}

static void print_header(int argc, char **argv, bool md, int trials, bool quick)
{
	char date[64], cpu[256], cmd[1024] = "";
	time_t t = time(NULL);
	struct tm tm;
	struct utsname u;
	strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S %z", localtime_r(&t, &tm));
	if (uname(&u) != 0)
		snprintf(u.machine, sizeof(u.machine), "unknown");
	cpu_model(cpu, sizeof(cpu));
	for (int i = 0; i < argc; i++) {
		size_t l = strlen(cmd);
		snprintf(cmd + l, sizeof(cmd) - l, "%s%s", i ? " " : "", argv[i]);
	}
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	if (md) {
		printf("alloc_bench: %s, `%s`, %s (%ld CPUs), command: `%s`\n\n", date, u.machine,
		       cpu, ncpu, cmd);
		printf("%d trials per cell%s, run round-robin over the allocators, one process per allocator.\n\n",
		       trials, quick ? " (--quick)" : "");
		for (int r = 0; r < R_COUNT; r++)
			printf("- %s: %s\n", runners[r].name, g_info[r]);
		printf("\n");
	} else {
		printf("alloc_bench: %s | %s | %s (%ld CPUs) | %s\n", date, u.machine, cpu, ncpu,
		       cmd);
		printf("%d trials per cell%s, round-robin over the allocators, one process per allocator:\n",
		       trials, quick ? " (--quick)" : "");
		for (int r = 0; r < R_COUNT; r++)
			printf("  %-16s %s\n", runners[r].name, g_info[r]);
	}
	fflush(stdout);
}

/* ------------------------------------------------------------------ */
/* Modes                                                              */
/* ------------------------------------------------------------------ */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: %s [--quick] [--markdown] [--pattern P[,P...]] [--trials N]\n"
		"                   [--only NAME[,NAME...]]\n"
		"       %s --callgrind [--pattern P] [--only NAME] [--pairs N] [--size BYTES]\n"
		"\n"
		"Measures alloc+free (median of N trials, round-robin, one child process\n"
		"per allocator) for slabnotify (slab_cache 64 bytes, slab_malloc), glibc,\n"
		"mimalloc, tcmalloc and jemalloc.\n"
		"  --quick        fewer trials (%d) and 1/10 of the work per trial\n"
		"  --markdown     print the tables as Markdown\n"
		"  --pattern P    only these patterns: pair, batch, batch-mixed, prodcons,\n"
		"                 xbatch, larson, churn, or all (the default)\n"
		"  --trials N     trials per cell, 1..101 (default %d)\n"
		"  --only NAMES   only these allocators: slabnotify, slabnotify-cache, glibc,\n"
		"                 mimalloc, tcmalloc, jemalloc\n"
		"  --callgrind    run one pattern once, in this process, for valgrind\n"
		"                 --tool=callgrind (see bench/callgrind.sh): --pattern pair\n"
		"                 (default; loops bench_pair_loop and bench_cg_pair), batch\n"
		"                 (bench_cg_batch), batch-mixed (bench_cg_batch_mixed),\n"
		"                 xbatch (bench_cg_xbatch_fill, bench_cg_xbatch_drain) or\n"
		"                 churn (bench_cg_churn: the fill and drain of its 4096\n"
		"                 blocks count as ops too); every\n"
		"                 alloc and free is a call of bench_step_alloc/bench_step_free;\n"
		"                 --only slabnotify-cache (default), slabnotify, glibc,\n"
		"                 mimalloc, null (call overhead), or tcmalloc/jemalloc when\n"
		"                 LD_PRELOADed; --pairs N allocs+frees (default %llu; batch\n"
		"                 patterns: rounded down to a multiple of 1000), --size\n"
		"                 BYTES (default 64; not for batch-mixed)\n"
		"Exit status: 0 done (n/a cells included), 1 fatal error, 2 bad command line.\n"
		"See bench/README.md.\n",
		g_prog, g_prog, QUICK_TRIALS, DEFAULT_TRIALS, (unsigned long long)CALLGRIND_PAIRS);
}

static int runner_by_name(const char *name)
{
	if (strcmp(name, "null") == 0)
		return R_NULL;
	for (int r = 0; r < R_COUNT; r++)
		if (strcmp(name, runners[r].name) == 0)
			return r;
	return -1;
}

static int pattern_by_name(const char *name)
{
	for (int p = 0; p < PAT_COUNT; p++)
		if (strcmp(name, pattern_names[p]) == 0)
			return p;
	return -1;
}

static uint64_t parse_u64(const char *opt, const char *s, uint64_t min, uint64_t max)
{
	char *end;
	errno = 0;
	unsigned long long v = s ? strtoull(s, &end, 10) : 0;
	if (!s || errno || end == s || *end || v < min || v > max || s[0] == '-')
		bad_usage("%s wants a number from %" PRIu64 " to %" PRIu64 " (got '%s')", opt, min,
			  max, s ? s : "");
	return v;
}

static const char *const cg_loops[PAT_COUNT] = {
	[PAT_PAIR] = "bench_cg_pair",
	[PAT_BATCH] = "bench_cg_batch",
	[PAT_BATCH_MIXED] = "bench_cg_batch_mixed",
	[PAT_XBATCH] = "bench_cg_xbatch_fill,bench_cg_xbatch_drain",
	[PAT_CHURN] = "bench_cg_churn",
};

static int callgrind_main(int pat, const char *only, uint64_t pairs, size_t size,
			  bool size_given)
{
	const char *name = only ? only : "slabnotify-cache";
	int r = runner_by_name(name);
	if (r < 0 || strchr(name, ','))
		bad_usage("--callgrind --only: one allocator of slabnotify-cache, slabnotify, "
			  "glibc, mimalloc, tcmalloc, jemalloc, null (got '%s')", name);
	if (!cg_loops[pat])
		bad_usage("--callgrind counts the patterns pair, batch, batch-mixed, xbatch and churn, "
			  "not %s", pattern_names[pat]);
	if (pat == PAT_BATCH_MIXED && size_given)
		bad_usage("--callgrind --pattern batch-mixed draws its sizes (%d..%d); drop --size",
			  MIXED_MIN, MIXED_MAX);
	if (r == R_SN_CACHE && pat == PAT_BATCH_MIXED)
		bad_usage("--callgrind: slabnotify-cache is a 64-byte cache; batch-mixed needs "
			  "slabnotify (slab_malloc)");
	if (r == R_SN_CACHE && size != 64)
		bad_usage("--callgrind: slabnotify-cache is a 64-byte cache; drop --size");
	struct bench_alloc a;
	char info[256];
	if (setup_runner(r, &a, info, sizeof(info)) != 0)
		die("--callgrind: %s: %s", name, info);
	make_perm(g_perm, BATCH);
	make_mixed_sizes(g_msizes, BATCH);

	uint64_t rounds = pairs / BATCH ? pairs / BATCH : 1;
	uint64_t warm_rounds = rounds / 10 + 1;
	uint64_t ops = pattern_is_batched(pat) ? rounds * BATCH : pairs;
	int rc = 0;
	switch (pat) {
	case PAT_PAIR:
		rc = bench_pair_warmup(&a, size, pairs / 10 + 1000);
		if (!rc)
			rc = bench_pair_loop(&a, size, pairs);
		if (!rc)
			rc = bench_cg_pair(&a, size, pairs);
		break;
	case PAT_BATCH:
		rc = bench_batch_loop(&a, size, warm_rounds, g_slots, g_perm);
		if (!rc)
			rc = bench_cg_batch(&a, size, rounds, g_slots, g_perm);
		break;
	case PAT_BATCH_MIXED:
		rc = bench_batch_mixed_loop(&a, g_msizes, warm_rounds, g_slots, g_perm);
		if (!rc)
			rc = bench_cg_batch_mixed(&a, g_msizes, rounds, g_slots, g_perm);
		break;
	case PAT_XBATCH:
		rc = cg_xbatch(&a, size, warm_rounds, rounds);
		break;
	case PAT_CHURN:
		rc = bench_churn_loop(&a, size, pairs / 10 + 1000);
		if (!rc)
			rc = bench_cg_churn(&a, size, pairs);
		ops = pairs + CHURN_LIVE;
		break;
	}
	if (rc != 0)
		die("--callgrind: %s: an allocation failed: %s", name, strerror(errno));
	char sz[32];
	if (pat == PAT_BATCH_MIXED)
		snprintf(sz, sizeof(sz), "%d-%d", MIXED_MIN, MIXED_MAX);
	else
		snprintf(sz, sizeof(sz), "%zu", size);
	/* One line for scripts (bench/callgrind.sh), then for people. */
	printf("callgrind: pattern=%s allocator=%s ops=%" PRIu64 " size=%s loops=%s\n",
	       pattern_names[pat], name, ops, sz, cg_loops[pat]);
	printf("%s: %s: %" PRIu64 " allocs and %" PRIu64 " frees of %s bytes, each a call of "
	       "bench_step_alloc / bench_step_free, inside %s%s.\n",
	       pattern_names[pat], info, ops, ops, sz, cg_loops[pat],
	       pat == PAT_XBATCH ? " (allocating thread / freeing thread)" : "");
	printf("Ir per alloc = inclusive Ir of bench_step_alloc / %" PRIu64
	       " with --toggle-collect on the loop(s); likewise per free.\n", ops);
	if (pat == PAT_PAIR)
		printf("Legacy count: Ir collected with --toggle-collect=bench_pair_loop / %" PRIu64
		       " = instructions per pair, loop included.\n", pairs);
	return 0;
}

int main(int argc, char **argv)
{
	bool quick = false, md = false, callgrind = false, size_given = false;
	bool pat_on[PAT_COUNT] = { false };
	bool pat_given = false;
	int trials = 0, npat = 0, cg_pat = PAT_PAIR;
	const char *only = NULL;
	uint64_t pairs = CALLGRIND_PAIRS;
	size_t cg_size = 64;

	g_argv0 = argv[0];
	const char *slash = strrchr(argv[0], '/');
	g_prog = slash ? slash + 1 : argv[0];

	if (argc >= 2 && strcmp(argv[1], "--child") == 0) {
		if (argc != 3)
			die("--child is internal: --child LIB");
		return child_main(argv[2]);
	}

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *val = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--quick") == 0) {
			quick = true;
		} else if (strcmp(a, "--markdown") == 0) {
			md = true;
		} else if (strcmp(a, "--callgrind") == 0) {
			callgrind = true;
		} else if (strcmp(a, "--pattern") == 0) {
			if (!val || !*val)
				bad_usage("--pattern wants pattern names (pair, batch, batch-mixed, "
					  "prodcons, xbatch, larson, churn, all)");
			char buf[256];
			snprintf(buf, sizeof(buf), "%s", val);
			for (char *sv, *tok = strtok_r(buf, ",", &sv); tok;
			     tok = strtok_r(NULL, ",", &sv)) {
				int p = pattern_by_name(tok);
				if (strcmp(tok, "all") == 0) {
					for (p = 0; p < PAT_COUNT; p++)
						pat_on[p] = true;
					npat += PAT_COUNT;
				} else if (p < 0) {
					bad_usage("--pattern: unknown pattern '%s' (pair, batch, "
						  "batch-mixed, prodcons, xbatch, larson, churn, all)", tok);
				} else {
					pat_on[p] = true;
					cg_pat = p;
					npat++;
				}
			}
			pat_given = true;
			i++;
		} else if (strcmp(a, "--trials") == 0) {
			trials = (int)parse_u64(a, val, 1, 101);
			i++;
		} else if (strcmp(a, "--only") == 0) {
			if (!val || !*val)
				bad_usage("--only wants allocator names");
			only = val;
			i++;
		} else if (strcmp(a, "--pairs") == 0) {
			pairs = parse_u64(a, val, 1, UINT64_C(1) << 40);
			i++;
		} else if (strcmp(a, "--size") == 0) {
			cg_size = (size_t)parse_u64(a, val, 1, 1u << 20);
			size_given = true;
			i++;
		} else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "%s: unknown option '%s'\n", g_prog, a);
			usage(stderr);
			return 2;
		}
	}

	if (callgrind) {
		if (npat > 1)
			bad_usage("--callgrind runs one pattern at a time");
		if (quick || md || trials)
			bad_usage("--callgrind takes --pattern, --only, --pairs and --size only");
		return callgrind_main(cg_pat, only, pairs, cg_size, size_given);
	}
	if (size_given || pairs != CALLGRIND_PAIRS)
		bad_usage("--pairs and --size are options of --callgrind");

	if (!pat_given)
		for (int p = 0; p < PAT_COUNT; p++)
			pat_on[p] = true;
	if (!trials)
		trials = quick ? QUICK_TRIALS : DEFAULT_TRIALS;

	bool want[R_COUNT];
	for (int r = 0; r < R_COUNT; r++)
		want[r] = only == NULL;
	if (only) {
		char buf[256];
		snprintf(buf, sizeof(buf), "%s", only);
		for (char *sv, *tok = strtok_r(buf, ",", &sv); tok; tok = strtok_r(NULL, ",", &sv)) {
			int r = runner_by_name(tok);
			if (r < 0 || r == R_NULL)
				bad_usage("--only: unknown allocator '%s' (slabnotify, slabnotify-cache, "
					  "glibc, mimalloc, tcmalloc, jemalloc)", tok);
			want[r] = true;
			if (r == R_SN_MALLOC)
				want[R_SN_CACHE] = true;
		}
	}

	signal(SIGPIPE, SIG_IGN);
	for (int r = 0; r < R_COUNT; r++)
		if (!want[r])
			snprintf(g_info[r], sizeof(g_info[r]), "n/a: not selected (--only)");
	for (int l = 0; l < LIB_COUNT; l++)
		spawn_child(l, want);
	for (int l = 0; l < LIB_COUNT; l++)
		child_hello(l);
	for (int r = 0; r < R_COUNT; r++)
		if (!want[r])
			g_avail[r] = false;

	print_header(argc, argv, md, trials, quick);
	bool avail_at_start[R_COUNT];
	memcpy(avail_at_start, g_avail, sizeof(g_avail));

	bool progress = isatty(STDERR_FILENO);
	/* samples[trial][row][runner] */
	double (*samples)[MAXROWS][R_COUNT] = calloc((size_t)trials, sizeof(*samples));
	if (!samples)
		die("out of memory");
	for (int p = 0; p < PAT_COUNT; p++) {
		if (!pat_on[p])
			continue;
		struct rowdef rows[MAXROWS];
		int cache_row;
		int nrows = pattern_rows(p, quick, rows, &cache_row);
		double med[MAXROWS][R_COUNT];
		struct spread worst = { .r = -1 };
		/* Trial-major: every trial visits every row and allocator once,
		 * so slow drifts and bursts of load on the machine spread over all
		 * cells instead of hitting one row. Within a row the allocators
		 * run round-robin, starting one later each trial. */
		for (int t = 0; t < trials; t++) {
			if (progress)
				fprintf(stderr, "\r%s: %-11s trial %d/%d ", g_prog, pattern_names[p],
					t + 1, trials);
			for (int ri = 0; ri < nrows; ri++) {
				/* The runners of this row; the cache only in its row. */
				int list[R_COUNT], n = 0;
				for (int r = 0; r < R_COUNT; r++) {
					samples[t][ri][r] = NAN;
					if (r != R_SN_CACHE || ri == cache_row)
						list[n++] = r;
				}
				for (int k = 0; k < n; k++) {
					int r = list[(k + t) % n];
					samples[t][ri][r] = child_trial(r, p, &rows[ri]);
				}
			}
		}
		for (int ri = 0; ri < (int)MAXROWS; ri++) {
			for (int r = 0; r < R_COUNT; r++) {
				if (ri >= nrows) {
					med[ri][r] = NAN;
					continue;
				}
				double v[101];
				for (int t = 0; t < trials; t++)
					v[t] = samples[t][ri][r];
				med[ri][r] = median(v, trials);
				/* median() sorted v: the cell's spread is (max-min)/median. */
				double sp = isnan(med[ri][r]) || med[ri][r] <= 0
						    ? NAN : (v[trials - 1] - v[0]) / med[ri][r];
				if (!isnan(sp) && (worst.r < 0 || sp > worst.spread)) {
					worst.spread = sp;
					worst.r = r;
					worst.row = ri;
				}
			}
		}
		if (progress)
			fprintf(stderr, "\r%60s\r", "");
		print_table(p, med, &worst, trials, quick, md);
	}
	free(samples);
	children_quit();
	for (int r = 0; r < R_COUNT; r++)
		if (avail_at_start[r] && !g_avail[r])
			printf("%s%s %s\n", md ? "\nNote: " : "note: ", runners[r].name, g_info[r]);
	return 0;
}
