/*
 * config.c - the drop-in's configuration: the SLABNOTIFY_* variables
 * (src/options.h), read by a constructor. Before it runs, allocations are
 * served plainly. A malformed value is reported once, naming the
 * variable, and ignored.
 */
#include "dropin.h"
#include "options.h"
#include "consumers/stack.h"
#include "consumers/stack_lib.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct dropin_config sn_cfg;

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
	sn_cfg.has_max = has_max;
	sn_cfg.has_high = has_high;
	sn_cfg.max = max;
	sn_cfg.high = high;
	if (has_max)
		slab_memcg_set_max(root, max);
	if (has_high) {
		/* A soft limit on a program with no reclaim to run: crossings
		 * are counted and reported, never slept on (slabnotify(1)). */
		slab_memcg_set_throttle(root, false);
		slab_memcg_set_high(root, high);
	}
	sn_malloc_gfp = SLAB_GFP_ACCOUNT;
	dropin_set_first_slot(SN_SLOT_KMALLOC_CG);
	sn_cfg.report_wanted = true;
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
	a.stack_filter = getenv(SN_ENV_FAIL_STACK);
	if ((v = getenv(SN_ENV_SEED)) && !sn_parse_u64(v, &a.seed))
		warn_env(SN_ENV_SEED, v, "not an unsigned number");
	if (!any)
		return;
	/* An interval alone fails every Nth call, as the kernel's does. */
	if (!getenv(SN_ENV_FAIL_PROB) && a.interval > 1)
		a.probability = 100;
	if (slab_fault_inject(&a) == 0) {
		sn_cfg.fault = a;
		sn_cfg.fault.cache_filter = NULL;   /* the environment's; not kept */
		sn_cfg.fault.stack_filter = NULL;
		sn_cfg.faults = true;
		sn_cfg.report_wanted = true;
	}
}

/* The first option given that records stacks, or NULL: --debug only with
 * U (user tracking), the letters' default. *@rare: --guard is the only
 * one, which takes two stacks per guarded block, a few hundred a second
 * at most; every other takes them per allocation. */
static const char *stack_option(bool *rare)
{
	const char *v;
	unsigned letters;
	const char *fail_stack = getenv(SN_ENV_FAIL_STACK);
	bool fail_stack_on = fail_stack && *fail_stack;
	*rare = false;
	if ((v = getenv(SN_ENV_PROFILE)) && *v && strcmp(v, "0"))
		return "--profile (" SN_ENV_PROFILE ")";
	if ((v = getenv(SN_ENV_LEAKS)) && *v && strcmp(v, "0"))
		return "--leaks (" SN_ENV_LEAKS ")";
	if ((v = getenv(SN_ENV_DEBUG)) && strcmp(v, "0") && sn_parse_debug_letters(v, &letters) &&
	    (letters & SN_DEBUG_U))
		return "--debug (" SN_ENV_DEBUG ")";
	if ((v = getenv(SN_ENV_GUARD)) && *v && strcmp(v, "0")) {
		*rare = !fail_stack_on;
		return "--guard (" SN_ENV_GUARD ")";
	}
	if (fail_stack_on)
		return "--fail-stack (" SN_ENV_FAIL_STACK ")";
	return NULL;
}

/*
 * libunwind and libdw are loaded here, when an option wants stacks, and
 * nowhere else in the drop-in: dlopen allocates (through our malloc,
 * served plainly: no limit, debug cache or tracker is on yet, so that a
 * small --max cannot fail it and the loader's blocks are no leaks) and
 * must not run inside malloc or a signal handler. Without them the run
 * goes on with glibc's backtrace() and dladdr(): the exported names of
 * functions, no file:line (slabnotify(1), README).
 */
static void configure_stacks(void)
{
	sn_stack_lib_forbid_lazy();
	bool rare;
	const char *opt = stack_option(&rare);
	if (!opt)
		return;
	if (rare)
		sn_stack_capture_rarely();
	sn_stack_init();
	if (rare ? sn_unwinder_ready() : sn_stack_lib_ready())
		return;
	char buf[768];
	int n = snprintf(buf, sizeof(buf),
			 "slabnotify: %s: cannot load libunwind and libdw (%s): stacks without file:line, "
			 "functions by their exported names only\n",
			 opt, sn_stack_lib_error());
	if (n > 0) {
		ssize_t r = write(STDERR_FILENO, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
		(void)r;
	}
}

/* The command line from /proc/self/cmdline, words joined by spaces. */
static void read_cmdline(void)
{
	int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	ssize_t n = read(fd, sn_cfg.cmdline, sizeof(sn_cfg.cmdline) - 1);
	close(fd);
	if (n <= 0)
		return;
	while (n > 0 && sn_cfg.cmdline[n - 1] == '\0')
		n--;
	for (ssize_t i = 0; i < n; i++)    /* one line: words by spaces, no controls */
		if ((unsigned char)sn_cfg.cmdline[i] < 0x20)
			sn_cfg.cmdline[i] = ' ';
	sn_cfg.cmdline[n] = '\0';
}

/* SLABNOTIFY_REPORT, made absolute now: a program that changes directory
 * (git -C) must not write its report there. The launcher passes absolute
 * paths already; this is for the variable set by hand. */
static void configure_report_path(void)
{
	const char *v = getenv(SN_ENV_REPORT);
	if (!v || !*v)
		return;
	size_t o = 0;
	if (v[0] != '/') {
		if (!getcwd(sn_cfg.report_path, sizeof(sn_cfg.report_path) - 2))
			return;
		o = strlen(sn_cfg.report_path);
		sn_cfg.report_path[o++] = '/';
	}
	if (o + strlen(v) >= sizeof(sn_cfg.report_path))
		return;
	strcpy(sn_cfg.report_path + o, v);
	sn_cfg.report_to_file = true;
	sn_cfg.report_per_pid = strstr(v, "%p") != NULL;
}

/* SLABNOTIFY_LAUNCHER "pid:fd": when the launcher is our parent, it
 * waits on fd to hear that we wrote our report. */
static void configure_launcher(void)
{
	sn_cfg.launcher_fd = -1;
	const char *v = getenv(SN_ENV_LAUNCHER);
	char *end;
	if (!v)
		return;
	long pid = strtol(v, &end, 10);
	if (*end != ':' || pid != (long)getppid())
		return;
	long fd = strtol(end + 1, &end, 10);
	if (*end || fd < 0 || fcntl((int)fd, F_GETFD) < 0)
		return;
	sn_cfg.launcher_fd = (int)fd;
	sn_cfg.main_pid = (int)getpid();
}

__attribute__((constructor(101))) static void sn_malloc_configure(void)
{
	configure_launcher();
	sn_thread_ordinal_set(0);     /* the main thread runs constructors */
	read_cmdline();
	configure_stacks();     /* first: before any limit, debug cache or tracker */
	configure_memcg();
	sn_dropin_debug_configure();     /* debug.c: after the limit, before the leaks */
	configure_failslab();
	sn_thread_ordinals_complete();   /* threads.c numbers the program's threads */
	profile_configure();   /* --leaks, --profile: profile_out.c */
	sn_cfg.stats = env_flag(SN_ENV_STATS);
	sn_cfg.json = env_flag(SN_ENV_JSON);
	configure_report_path();
	if (sn_cfg.stats || sn_cfg.report_to_file || sn_cfg.json)
		sn_cfg.report_wanted = true;
	if (sn_cfg.has_max)
		mmap_accounting_init();
	if (sn_cfg.report_wanted)
		report_init();
	dropin_stat_page_init();
}

