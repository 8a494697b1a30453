/*
 * memcg_bench - what memory accounting costs.
 *
 * 1. pair: one thread, alloc + free of a 64-byte object, repeated; ns per
 *    pair. Rows: a plain cache (notification off, the baseline); a
 *    SLAB_NOTIFY cache with memcg's handler registered but not charging
 *    (the notifier's own cost); a SLAB_ACCOUNT cache charged to the root
 *    group; the same charged to a child group (no limits anywhere).
 *    The accounted rows should stay within 3x the baseline.
 * 2. scaling: the pair loop on 1 and 2 threads (both in the same child
 *    group), plain and accounted; million pairs per second in total, and
 *    the 2-thread/1-thread ratio. Per-thread stocks mean no shared cache
 *    line per charge, so accounting should scale as the plain cache does.
 * 3. curve: a stress-like workload on N threads (1, 2, 4, 8): each thread
 *    keeps 1024 slots and, per operation, frees a random occupied slot or
 *    fills an empty one with slab_malloc of 16..1024 bytes; one operation
 *    in 16 swaps an object through a shared exchange array instead, so
 *    other threads free it (cross-thread uncharges). Each thread charges
 *    its own group under a common parent. Million operations per second,
 *    with SLAB_GFP_ACCOUNT and without.
 *
 * Every figure is the median of the trials (default 7; --quick: 3 trials
 * of a fifth of the work). --markdown prints the tables as Markdown.
 * Plain and accounted runs alternate inside each trial, in one process.
 *
 *   build/bench/memcg_bench [--quick] [--trials N] [--markdown]
 *
 * Instructions: --callgrind MODE runs exactly 1,000,000 pairs in the
 * noinline memcg_pair_loop() and nothing else is counted:
 *   plain   a plain 64-byte cache (the baseline)
 *   root    a SLAB_ACCOUNT cache charged to the root group
 *   child   the same charged to a child group with a max (never hit)
 *   switch  the same, the thread switching between two child groups
 *           every 100 allocations
 *   valgrind --tool=callgrind --toggle-collect=memcg_pair_loop \
 *       --callgrind-out-file=cg.child build/bench/memcg_bench --callgrind child
 *   callgrind_annotate cg.child | grep TOTALS   # Ir / 1e6 = Ir per pair
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "slabnotify.h"

#define BENCH_LOOP __attribute__((noinline, used))
#define MAX_TRIALS 51
#define SLOTS      1024
#define XCHG_SLOTS 256

static int trials = 7;
static unsigned long work_div = 1;
static bool markdown;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void die(const char *what)
{
	fprintf(stderr, "memcg_bench: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* ------------------------------------------------------------------ */
/* 1. pair                                                            */
/* ------------------------------------------------------------------ */

static volatile char sink;

BENCH_LOOP static double pair_loop(struct slab_cache *c, unsigned long n)
{
	double t0 = now_s();
	for (unsigned long i = 0; i < n; i++) {
		char *p = slab_cache_alloc(c, 0);
		if (!p)
			die("slab_cache_alloc");
		p[0] = (char)i;
		sink = p[0];
		slab_cache_free(c, p);
	}
	return now_s() - t0;
}

/* ------------------------------------------------------------------ */
/* 2. scaling                                                         */
/* ------------------------------------------------------------------ */

struct pair_job {
	struct slab_cache *cache;   /* NULL: the thread makes its own */
	struct slab_memcg *group;
	unsigned long n;
	pthread_barrier_t *start;
};

static void *pair_thread(void *arg)
{
	struct pair_job *j = arg;
	struct slab_cache *c = j->cache;
	if (!c) {
		char name[64];
		snprintf(name, sizeof(name), "bench-acct-own-%p", (void *)j);
		if (!(c = slab_cache_create(name, 64, 0, SLAB_ACCOUNT, NULL)))
			die("slab_cache_create");
	}
	if (j->group)
		slab_memcg_enter(j->group);
	pair_loop(c, 1000);   /* warm up this thread's slabs and stock */
	pthread_barrier_wait(j->start);
	pair_loop(c, j->n);
	slab_memcg_drain_stock();
	if (!j->cache) {
		slab_memcg_enter(slab_memcg_root());
		slab_cache_destroy(c);
	}
	return NULL;
}

/* Million pairs per second in total for @nthreads threads. */
static double pair_threads(struct slab_cache *c, struct slab_memcg *g, int nthreads, unsigned long n)
{
	pthread_t th[8];
	struct pair_job job[8];
	pthread_barrier_t start;
	pthread_barrier_init(&start, NULL, (unsigned)nthreads + 1);
	for (int i = 0; i < nthreads; i++) {
		job[i] = (struct pair_job){ c, g, n, &start };
		pthread_create(&th[i], NULL, pair_thread, &job[i]);
	}
	pthread_barrier_wait(&start);
	double t0 = now_s();
	for (int i = 0; i < nthreads; i++)
		pthread_join(th[i], NULL);
	double dt = now_s() - t0;
	pthread_barrier_destroy(&start);
	return (double)n * nthreads / dt / 1e6;
}

/* ------------------------------------------------------------------ */
/* 3. curve                                                           */
/* ------------------------------------------------------------------ */

static _Atomic(void *) xchg[XCHG_SLOTS];

struct mix_job {
	struct slab_memcg *group;
	slab_gfp_t gfp;
	unsigned long ops;
	uint64_t seed;
	pthread_barrier_t *start;
};

static uint64_t rng_next(uint64_t *s)
{
	*s += 0x9e3779b97f4a7c15ULL;
	uint64_t z = *s;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

BENCH_LOOP static void mix_loop(void **slot, unsigned long ops, slab_gfp_t gfp, uint64_t *rng)
{
	for (unsigned long i = 0; i < ops; i++) {
		uint64_t r = rng_next(rng);
		size_t size = 16 + (size_t)((r >> 32) % 1009);
		if ((r & 15) == 0) {      /* hand an object to whoever comes next */
			char *p = slab_malloc(size, gfp);
			if (!p)
				die("slab_malloc");
			p[0] = 1;
			slab_free(atomic_exchange(&xchg[(r >> 8) % XCHG_SLOTS], p));
			continue;
		}
		void **s = &slot[(r >> 8) % SLOTS];
		if (*s) {
			slab_free(*s);
			*s = NULL;
		} else {
			char *p = slab_malloc(size, gfp);
			if (!p)
				die("slab_malloc");
			p[0] = 1;
			*s = p;
		}
	}
}

static void *mix_thread(void *arg)
{
	struct mix_job *j = arg;
	void **slot = calloc(SLOTS, sizeof(void *));
	if (!slot)
		die("calloc");
	uint64_t rng = j->seed;
	if (j->group)
		slab_memcg_enter(j->group);
	mix_loop(slot, 4096, j->gfp, &rng);   /* warm up */
	pthread_barrier_wait(j->start);
	mix_loop(slot, j->ops, j->gfp, &rng);
	for (int i = 0; i < SLOTS; i++)
		slab_free(slot[i]);
	free(slot);
	slab_memcg_drain_stock();
	return NULL;
}

static double mix_threads(struct slab_memcg **groups, slab_gfp_t gfp, int nthreads, unsigned long ops)
{
	pthread_t th[8];
	struct mix_job job[8];
	pthread_barrier_t start;
	pthread_barrier_init(&start, NULL, (unsigned)nthreads + 1);
	for (int i = 0; i < nthreads; i++) {
		job[i] = (struct mix_job){ groups[i], gfp, ops, 0x5eed0000ULL + (uint64_t)i, &start };
		pthread_create(&th[i], NULL, mix_thread, &job[i]);
	}
	pthread_barrier_wait(&start);
	double t0 = now_s();
	for (int i = 0; i < nthreads; i++)
		pthread_join(th[i], NULL);
	double dt = now_s() - t0;
	pthread_barrier_destroy(&start);
	for (int i = 0; i < XCHG_SLOTS; i++)
		slab_free(atomic_exchange(&xchg[i], NULL));
	return (double)ops * nthreads / dt / 1e6;
}

/* ------------------------------------------------------------------ */
/* Output                                                             */
/* ------------------------------------------------------------------ */

static void table_begin(const char *title, int ncol, const char *const *cols)
{
	if (markdown) {
		printf("\n**%s**\n\n|", title);
		for (int i = 0; i < ncol; i++)
			printf(" %s |", cols[i]);
		printf("\n|");
		for (int i = 0; i < ncol; i++)
			printf("%s", i ? "---:|" : "---|");
		printf("\n");
	} else {
		printf("\n%s\n", title);
		for (int i = 0; i < ncol; i++)
			printf(i ? " %14s" : "%-34s", cols[i]);
		printf("\n");
	}
}

static void row_begin(const char *name)
{
	printf(markdown ? "| %s |" : "%-34s", name);
}

static void cell(const char *fmt, double v)
{
	char buf[32];
	snprintf(buf, sizeof(buf), fmt, v);
	printf(markdown ? " %s |" : " %14s", buf);
}

static void row_end(void)
{
	printf("\n");
}

static void usage(void)
{
	fprintf(stderr, "usage: memcg_bench [--quick] [--trials N] [--markdown]\n"
			"       memcg_bench --callgrind plain|root|child|switch\n");
	exit(2);
}

/* The loop callgrind counts: @n pairs, entering @a and @b in turn every
 * 100 allocations when @b is given. */
BENCH_LOOP void memcg_pair_loop(struct slab_cache *c, unsigned long n, struct slab_memcg *a,
				struct slab_memcg *b)
{
	for (unsigned long i = 0; i < n; i++) {
		if (b && i % 100 == 0)
			slab_memcg_enter((i / 100) & 1 ? b : a);
		char *p = slab_cache_alloc(c, 0);
		if (!p)
			die("slab_cache_alloc");
		p[0] = (char)i;
		sink = p[0];
		slab_cache_free(c, p);
	}
}

static int callgrind_main(const char *mode)
{
	bool plain = strcmp(mode, "plain") == 0;
	struct slab_cache *c = slab_cache_create("cg-64", 64, 0, plain ? 0 : SLAB_ACCOUNT, NULL);
	struct slab_memcg *a = NULL, *b = NULL;
	if (!c)
		die("slab_cache_create");
	if (!plain && !slab_memcg_root())   /* accounting on: memcg's handler registered */
		die("slab_memcg_root");
	if (strcmp(mode, "child") == 0 || strcmp(mode, "switch") == 0) {
		a = slab_memcg_create(NULL, "cg-a");
		if (!a || slab_memcg_set_max(a, 1ul << 30))
			die("slab_memcg_create");
		slab_memcg_enter(a);
		if (strcmp(mode, "switch") == 0) {
			b = slab_memcg_create(NULL, "cg-b");
			if (!b || slab_memcg_set_max(b, 1ul << 30))
				die("slab_memcg_create");
		}
	} else if (!plain && strcmp(mode, "root") != 0) {
		usage();
	}
	memcg_pair_loop(c, 1000, a, b);   /* warm: slabs, stocks */
	memcg_pair_loop(c, 1000000, a, b);
	printf("callgrind: memcg_pair_loop ran 1000000 pairs, mode %s\n", mode);
	return 0;
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--callgrind") == 0 && i + 1 < argc)
			return callgrind_main(argv[i + 1]);
		if (strcmp(argv[i], "--quick") == 0) {
			trials = 3;
			work_div = 5;
		} else if (strcmp(argv[i], "--markdown") == 0) {
			markdown = true;
		} else if (strcmp(argv[i], "--trials") == 0 && i + 1 < argc) {
			trials = atoi(argv[++i]);
			if (trials < 1 || trials > MAX_TRIALS)
				usage();
		} else {
			usage();
		}
	}
	const unsigned long pairs = 5000000UL / work_div;
	const unsigned long scale_pairs = 5000000UL / work_div;
	const unsigned long mix_ops = 2000000UL / work_div;

	struct utsname u;
	uname(&u);
	time_t now = time(NULL);
	char date[64];
	strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S", localtime(&now));
	printf("%smemcg_bench: %s, %s %s, %ld CPUs online, %d trials (medians)%s\n", markdown ? "" : "# ",
	       date, u.sysname, u.machine, sysconf(_SC_NPROCESSORS_ONLN), trials, markdown ? "  " : "");

	struct slab_memcg *root = slab_memcg_root();
	struct slab_memcg *child = slab_memcg_create(NULL, "bench-child");
	struct slab_memcg *parent = slab_memcg_create(NULL, "bench-tenants");
	if (!root || !child || !parent)
		die("slab_memcg_create");
	struct slab_memcg *tenant[8];
	for (int i = 0; i < 8; i++) {
		char name[32];
		snprintf(name, sizeof(name), "tenant%d", i);
		if (!(tenant[i] = slab_memcg_create(parent, name)))
			die("slab_memcg_create");
	}
	struct slab_memcg *no_group[8] = { 0 };
	struct slab_cache *plain = slab_cache_create("bench-plain-64", 64, 0, 0, NULL);
	struct slab_cache *notified = slab_cache_create("bench-notify-64", 64, 0, SLAB_NOTIFY, NULL);
	struct slab_cache *acct = slab_cache_create("bench-acct-64", 64, 0, SLAB_ACCOUNT, NULL);
	if (!plain || !notified || !acct)
		die("slab_cache_create");

	/* 1. pair */
	enum { P_PLAIN, P_NOTIFY, P_ROOT, P_CHILD, P_N };
	static const char *pnames[P_N] = {
		"plain cache (notification off)", "SLAB_NOTIFY, not charged",
		"SLAB_ACCOUNT, root group", "SLAB_ACCOUNT, child group",
	};
	double pv[P_N][MAX_TRIALS];
	pair_loop(plain, 100000);
	pair_loop(notified, 100000);
	pair_loop(acct, 100000);
	for (int t = 0; t < trials; t++)
		for (int k = 0; k < P_N; k++) {
			int r = (k + t) % P_N;   /* rotate the order */
			struct slab_cache *c = r == P_PLAIN ? plain : r == P_NOTIFY ? notified : acct;
			struct slab_memcg *prev = slab_memcg_enter(r == P_CHILD ? child : root);
			pv[r][t] = pair_loop(c, pairs) / (double)pairs * 1e9;
			slab_memcg_enter(prev);
		}
	double pm[P_N];
	for (int k = 0; k < P_N; k++)
		pm[k] = median(pv[k], trials);
	static const char *pcols[] = { "1. pair, 64 B, 1 thread", "ns/pair", "x plain" };
	table_begin("1. alloc+free pair, 64-byte objects, one thread (ns per pair)", 3, pcols);
	for (int k = 0; k < P_N; k++) {
		row_begin(pnames[k]);
		cell("%.2f", pm[k]);
		cell("%.2fx", pm[k] / pm[P_PLAIN]);
		row_end();
	}

	/* 2. scaling */
	enum { S_PLAIN, S_NOTIFY, S_ACCT, S_ACCT_OWN, S_N };
	static const char *snames[S_N] = {
		"plain cache", "SLAB_NOTIFY cache, not charged", "SLAB_ACCOUNT, one child group",
		"same, a cache per thread",
	};
	double sv[S_N][2][MAX_TRIALS];   /* [row][threads-1][trial] */
	for (int t = 0; t < trials; t++)
		for (int a = 0; a < S_N; a++)
			for (int n = 1; n <= 2; n++) {
				struct slab_cache *c = a == S_PLAIN ? plain : a == S_NOTIFY ? notified
								: a == S_ACCT ? acct : NULL;
				sv[a][n - 1][t] = pair_threads(c, a >= S_ACCT ? child : NULL, n, scale_pairs);
			}
	static const char *scols[] = { "2. scaling, pair loop", "1 thread", "2 threads", "2/1" };
	table_begin("2. pair loop on 1 and 2 threads (million pairs/s, total)", 4, scols);
	for (int a = 0; a < S_N; a++) {
		double m1 = median(sv[a][0], trials), m2 = median(sv[a][1], trials);
		row_begin(snames[a]);
		cell("%.1f", m1);
		cell("%.1f", m2);
		cell("%.2fx", m2 / m1);
		row_end();
	}

	/* 3. curve */
	static const int nts[] = { 1, 2, 4, 8 };
	double cv[2][4][MAX_TRIALS];
	for (int t = 0; t < trials; t++)
		for (int k = 0; k < 4; k++)
			for (int a = 0; a < 2; a++)
				cv[a][k][t] = mix_threads(a ? tenant : no_group, a ? SLAB_GFP_ACCOUNT : 0, nts[k],
							  mix_ops);
	static const char *ccols[] = { "3. mixed workload", "plain Mops/s", "accounted", "cost" };
	table_begin("3. mixed alloc/free, 16..1024 B, 1/16 freed cross-thread (million ops/s, total)", 4,
		    ccols);
	for (int k = 0; k < 4; k++) {
		char name[32];
		snprintf(name, sizeof(name), "%d thread%s", nts[k], nts[k] > 1 ? "s" : "");
		double mp = median(cv[0][k], trials), ma = median(cv[1][k], trials);
		row_begin(name);
		cell("%.1f", mp);
		cell("%.1f", ma);
		cell("%.2fx", mp / ma);
		row_end();
	}

	/* Everything was freed and every stock drained: all back to zero. */
	struct slab_memcg_stat st;
	slab_memcg_drain_stock();
	slab_memcg_stat(root, &st);
	if (st.usage || st.nr_objects) {
		fprintf(stderr, "memcg_bench: root usage %zu, %lu objects left\n", st.usage, st.nr_objects);
		return 1;
	}
	return 0;
}
