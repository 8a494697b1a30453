/*
 * notify_bench - the cost of slab event notification on the hot path.
 *
 * Every figure is ns per slab_cache_alloc() + write 1 byte +
 * slab_cache_free() pair on a 64-byte cache, the median of repeated
 * trials run round-robin over the cases (so drift hits every case alike):
 *
 *   (a) off        notification off (the cache never had it on)
 *   (b) on, 1      notification on, one no-op handler; ratio to (a)
 *                  (target: <= 2.5x)
 *   (c) on, N      the same with 1, 2, 4 and 8 no-op handlers
 *   (d) 2 threads  two threads each doing pairs on the same cache with
 *                  notification on and one handler (ns per pair per
 *                  thread), and the same with notification off
 *
 * Options: --markdown (Markdown tables), --quick (fewer, shorter trials),
 * --trials N, --pairs N (per trial).
 *
 * Instruction counts: --callgrind-off / --callgrind-on run exactly
 * 1,000,000 pairs in the noinline function notify_pair_loop(), with
 * notification off / on with one no-op handler, and nothing else timed.
 *
 * The compiled-out comparison is the same program built with the hooks
 * compiled out (SLABNOTIFY_NO_NOTIFY: the fast paths lose the hooks test,
 * and switching notification on fails with ENOSYS, which the program
 * detects and reports). Exact commands, from the repository root:
 *
 *   cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo
 *   cmake --build build --target notify_bench
 *   cmake -S . -B build-nonotify -DSLABNOTIFY_NO_NOTIFY=ON -DSLABNOTIFY_BUILD_TESTS=OFF
 *   cmake --build build-nonotify --target notify_bench
 *
 *   build/bench/notify_bench                  # (a)-(d), plain table
 *   build/bench/notify_bench --markdown
 *   build-nonotify/bench/notify_bench         # compiled out: (a) only
 *
 *   valgrind --tool=callgrind --toggle-collect=notify_pair_loop \
 *       --callgrind-out-file=cg.off build/bench/notify_bench --callgrind-off
 *   valgrind --tool=callgrind --toggle-collect=notify_pair_loop \
 *       --callgrind-out-file=cg.on build/bench/notify_bench --callgrind-on
 *   (--callgrind-on=N: N no-op handlers, 1..8)
 *   valgrind --tool=callgrind --toggle-collect=notify_pair_loop \
 *       --callgrind-out-file=cg.out build-nonotify/bench/notify_bench --callgrind-off
 *   callgrind_annotate cg.off | head -20      # "PROGRAM TOTALS" Ir / 1e6 = Ir per pair
 *
 * The callgrind totals include the loop itself (a few instructions per
 * pair) and everything the calls do, handlers included.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
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

#include <urcu/urcu-bp.h> /* urcu_bp_barrier(): the library's own liburcu-bp */

#include "slabnotify.h"

#if defined(__GNUC__) && !defined(__clang__)
#define BENCH_LOOP __attribute__((noinline, noipa, used))
#else
#define BENCH_LOOP __attribute__((noinline, used))
#endif

#define CALLGRIND_PAIRS 1000000ULL
#define MAX_HANDLERS 8
#define OBJ_SIZE 64

/* ------------------------------------------------------------------ */
/* The measured loop and the handlers                                 */
/* ------------------------------------------------------------------ */

/* The loop callgrind counts (--toggle-collect=notify_pair_loop). */
BENCH_LOOP void notify_pair_loop(struct slab_cache *c, uint64_t pairs)
{
	for (uint64_t i = 0; i < pairs; i++) {
		char *p = slab_cache_alloc(c, 0);
		*(volatile char *)p = 1;
		slab_cache_free(c, p);
	}
}

static int noop_call(struct slab_notifier *nb, enum slab_event ev, const struct slab_event_data *d)
{
	(void)nb;
	(void)ev;
	(void)d;
	return SLAB_NOTIFY_OK;
}

static struct slab_notifier handlers[MAX_HANDLERS];
static int nr_registered;

static void set_handlers(int n)
{
	while (nr_registered < n) {
		struct slab_notifier *nb = &handlers[nr_registered];
		memset(nb, 0, sizeof(*nb));
		nb->call = noop_call;
		if (slab_notifier_register(nb) != 0) {
			perror("slab_notifier_register");
			exit(1);
		}
		nr_registered++;
	}
	while (nr_registered > n)
		slab_notifier_unregister(&handlers[--nr_registered]);
}

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* ------------------------------------------------------------------ */
/* Cases                                                              */
/* ------------------------------------------------------------------ */

enum case_id {
	C_OFF, C_ON1, C_ON2, C_ON4, C_ON8, C_MT_ON, C_MT_OFF, C_COUNT,
};
static const struct {
	const char *label;
	const char *desc;
	int handlers;    /* -1: notification off */
	int threads;
} cases[C_COUNT] = {
	[C_OFF]    = { "(a) off",          "notification off",                             -1, 1 },
	[C_ON1]    = { "(b) on, 1 handler", "notification on, 1 no-op handler",              1, 1 },
	[C_ON2]    = { "(c) on, 2 handlers", "notification on, 2 no-op handlers",             2, 1 },
	[C_ON4]    = { "(c) on, 4 handlers", "notification on, 4 no-op handlers",             4, 1 },
	[C_ON8]    = { "(c) on, 8 handlers", "notification on, 8 no-op handlers",             8, 1 },
	[C_MT_ON]  = { "(d) 2 threads, on",  "2 threads, same cache, on, 1 handler (per thread)", 1, 2 },
	[C_MT_OFF] = { "(d) 2 threads, off", "2 threads, same cache, off (per thread)",        -1, 2 },
};

static struct slab_cache *cache_off, *cache_on;

struct mt_arg {
	struct slab_cache *c;
	uint64_t pairs;
	atomic_int *ready;
	atomic_int *go;
	double ns;
};

static void *mt_thread(void *p)
{
	struct mt_arg *a = p;
	/* Warm: this thread's own active slab, outside the timing. */
	notify_pair_loop(a->c, 1000);
	atomic_fetch_add(a->ready, 1);
	while (!atomic_load(a->go))
		;
	double t0 = now_ns();
	notify_pair_loop(a->c, a->pairs);
	a->ns = now_ns() - t0;
	return NULL;
}

/* One trial of @id: ns per pair (per thread for the 2-thread cases). */
static double run_case(enum case_id id, uint64_t pairs)
{
	struct slab_cache *c = cases[id].handlers < 0 ? cache_off : cache_on;
	if (cases[id].handlers >= 0)
		set_handlers(cases[id].handlers);
	if (cases[id].threads == 1) {
		notify_pair_loop(c, 1000); /* warm */
		double t0 = now_ns();
		notify_pair_loop(c, pairs);
		return (now_ns() - t0) / (double)pairs;
	}
	atomic_int ready = 0, go = 0;
	struct mt_arg a[2];
	pthread_t t[2];
	for (int i = 0; i < 2; i++) {
		a[i] = (struct mt_arg){ c, pairs, &ready, &go, 0 };
		if (pthread_create(&t[i], NULL, mt_thread, &a[i]) != 0) {
			perror("pthread_create");
			exit(1);
		}
	}
	while (atomic_load(&ready) < 2)
		;
	atomic_store(&go, 1);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	return (a[0].ns + a[1].ns) / 2.0 / (double)pairs;
}

static int cmp_double(const void *x, const void *y)
{
	double a = *(const double *)x, b = *(const double *)y;
	return a < b ? -1 : a > b;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(double), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

/* ------------------------------------------------------------------ */
/* Setup and output                                                   */
/* ------------------------------------------------------------------ */

/* False when the hooks are compiled out (SLABNOTIFY_NO_NOTIFY). */
static bool setup_caches(void)
{
	cache_off = slab_cache_create("bench-off", OBJ_SIZE, 0, 0, NULL);
	cache_on = slab_cache_create("bench-on", OBJ_SIZE, 0, 0, NULL);
	if (!cache_off || !cache_on) {
		perror("slab_cache_create");
		exit(1);
	}
	int rc = slab_cache_set_notify(cache_on, true);
	if (rc == -ENOSYS)
		return false;
	if (rc != 0) {
		fprintf(stderr, "slab_cache_set_notify: %s\n", strerror(-rc));
		exit(1);
	}
	return true;
}

static void cpu_model(char *buf, size_t len)
{
	snprintf(buf, len, "unknown CPU");
	FILE *f = fopen("/proc/cpuinfo", "r");
	if (!f)
		return;
	char line[512];
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "model name", 10) == 0) {
			char *p = strchr(line, ':');
			if (p) {
				p += 1 + (p[1] == ' ');
				p[strcspn(p, "\n")] = 0;
				snprintf(buf, len, "%s", p);
			}
			break;
		}
	}
	fclose(f);
}

static int callgrind_main(bool on, int nh)
{
	bool hooks = setup_caches();
	struct slab_cache *c = cache_off;
	const char *what = "notification off";
	if (!hooks) {
		what = "notification compiled out (SLABNOTIFY_NO_NOTIFY)";
		if (on) {
			fprintf(stderr, "notify_bench: --callgrind-on: notification is compiled out in this build\n");
			return 1;
		}
	} else if (on) {
		set_handlers(nh);
		c = cache_on;
		static char buf[64];
		snprintf(buf, sizeof(buf), "notification on, %d no-op handler%s", nh, nh > 1 ? "s" : "");
		what = buf;
	}
	notify_pair_loop(c, 1000); /* warm: slab and thread state outside the count */
	notify_pair_loop(c, CALLGRIND_PAIRS);
	printf("callgrind: notify_pair_loop ran %llu alloc+free pairs on a %d-byte cache, %s\n",
	       (unsigned long long)CALLGRIND_PAIRS, OBJ_SIZE, what);
	return 0;
}

static void usage(const char *prog)
{
	fprintf(stderr,
		"usage: %s [--markdown] [--quick] [--trials N] [--pairs N]\n"
		"       %s --callgrind-off | --callgrind-on[=N handlers, 1..8]\n"
		"See the comment at the top of bench/notify_bench.c for the commands.\n",
		prog, prog);
}

int main(int argc, char **argv)
{
	bool md = false, quick = false;
	int trials = 11;
	uint64_t pairs = 2000000;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--markdown") == 0) {
			md = true;
		} else if (strcmp(a, "--quick") == 0) {
			quick = true;
		} else if (strcmp(a, "--trials") == 0 && i + 1 < argc) {
			trials = atoi(argv[++i]);
		} else if (strcmp(a, "--pairs") == 0 && i + 1 < argc) {
			pairs = strtoull(argv[++i], NULL, 0);
		} else if (strcmp(a, "--callgrind-off") == 0) {
			return callgrind_main(false, 0);
		} else if (strcmp(a, "--callgrind-on") == 0) {
			return callgrind_main(true, 1);
		} else if (strncmp(a, "--callgrind-on=", 15) == 0) {
			int nh = atoi(a + 15);
			if (nh < 1 || nh > MAX_HANDLERS) {
				usage(argv[0]);
				return 2;
			}
			return callgrind_main(true, nh);
		} else {
			usage(argv[0]);
			return strcmp(a, "--help") == 0 ? 0 : 2;
		}
	}
	if (quick) {
		trials = 5;
		pairs /= 4;
	}
	if (trials < 1 || pairs < 1000) {
		usage(argv[0]);
		return 2;
	}

	bool hooks = setup_caches();
	int ncases = hooks ? C_COUNT : 1;
	enum case_id order[C_COUNT] = { C_OFF, C_ON1, C_ON2, C_ON4, C_ON8, C_MT_ON, C_MT_OFF };
	if (!hooks) {
		/* Compiled out: only (a) and its 2-thread twin are meaningful. */
		order[1] = C_MT_OFF;
		ncases = 2;
	}

	char date[64], cpu[256], cmd[1024] = "";
	time_t now = time(NULL);
	struct tm tm;
	struct utsname u;
	strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S %z", localtime_r(&now, &tm));
	if (uname(&u) != 0)
		snprintf(u.machine, sizeof(u.machine), "unknown");
	cpu_model(cpu, sizeof(cpu));
	for (int i = 0; i < argc; i++) {
		size_t l = strlen(cmd);
		snprintf(cmd + l, sizeof(cmd) - l, "%s%s", i ? " " : "", argv[i]);
	}
	const char *build = hooks ? "notification hooks compiled in"
				  : "notification hooks COMPILED OUT (SLABNOTIFY_NO_NOTIFY)";
	if (md)
		printf("notify_bench: %s, `%s`, %s (%ld CPUs), command: `%s`\n\n%s; %d trials of %" PRIu64
		       " pairs per case, round-robin, median.\n\n",
		       date, u.machine, cpu, sysconf(_SC_NPROCESSORS_ONLN), cmd, build, trials, pairs);
	else
		printf("notify_bench: %s | %s | %s (%ld CPUs) | %s\n%s; %d trials of %" PRIu64
		       " pairs per case, round-robin, median\n",
		       date, u.machine, cpu, sysconf(_SC_NPROCESSORS_ONLN), cmd, build, trials, pairs);
	fflush(stdout);

	double *res[C_COUNT];
	for (int k = 0; k < C_COUNT; k++)
		res[k] = calloc((size_t)trials, sizeof(double));
	for (int t = 0; t < trials; t++) {
		for (int j = 0; j < ncases; j++) {
			/* Rotate the order every trial. */
			enum case_id id = order[(j + t) % ncases];
			res[id][t] = run_case(id, pairs);
		}
	}
	set_handlers(0);
	urcu_bp_barrier();

	double med[C_COUNT] = { 0 };
	for (int j = 0; j < ncases; j++)
		med[order[j]] = median(res[order[j]], trials);
	double base = med[C_OFF];

	if (md) {
		printf("| case | ns/pair | vs (a) off |\n|---|---:|---:|\n");
	} else {
		printf("%-22s %9s %11s  %s\n", "case", "ns/pair", "vs (a) off", "what");
	}
	for (int j = 0; j < ncases; j++) {
		enum case_id id = order[j];
		const char *label = cases[id].label;
		const char *desc = cases[id].desc;
		if (!hooks && id == C_OFF) {
			label = "(a) compiled out";
			desc = "hooks compiled out";
		}
		if (md)
			printf("| %s: %s | %.2f | %.2fx |\n", label, desc, med[id], med[id] / base);
		else
			printf("%-22s %9.2f %10.2fx  %s\n", label, med[id], med[id] / base, desc);
	}
	if (hooks) {
		double ratio = med[C_ON1] / base;
		if (md)
			printf("\nOne no-op handler costs %.2fx the notification-off pair (target <= 2.5x): %s.\n",
			       ratio, ratio <= 2.5 ? "met" : "NOT met");
		else
			printf("one no-op handler: %.2fx the off pair (target <= 2.5x): %s\n", ratio,
			       ratio <= 2.5 ? "met" : "NOT met");
	}
	for (int k = 0; k < C_COUNT; k++)
		free(res[k]);
	return 0;
}
