/*
 * slabnotify - run a program on the slabnotify malloc drop-in.
 *
 *   slabnotify run [OPTIONS] -- CMD [ARGS...]
 *   slabnotify demo [OPTIONS]
 *   slabnotify help | --help | --version
 *
 * This is a pure launcher: it validates the options, turns them into
 * the SLABNOTIFY_* variables that libslabnotify-malloc.so reads, puts
 * the library in LD_PRELOAD and execs the command. It must never call a
 * slab_* function: it is linked with the static library only because
 * the build links every tool so, and an allocator of its own alive next
 * to the preloaded one would be two heaps in one process.
 *
 * Values are checked with the same parsers (src/options.h) the drop-in
 * uses, so that anything the command accepts the drop-in accepts too,
 * and a typo is a usage error (exit 2) before anything runs rather than
 * a warning in the middle of the program's output.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "slabnotify.h" /* only for the version macros */
#include "../src/options.h"
#include "slabnotify-tool.h"

#define STR_(x) #x
#define STR(x) STR_(x)
#define TOOL_VERSION STR(SLABNOTIFY_VERSION_MAJOR) "." STR(SLABNOTIFY_VERSION_MINOR)


#define PRELOAD_NAME "libslabnotify-malloc.so"

/* ------------------------------------------------------------------ */
/* The option table                                                   */
/* ------------------------------------------------------------------ */

enum value_kind {
	V_SIZE,     /* sn_parse_size */
	V_PERCENT,  /* sn_parse_percent */
	V_COUNT,    /* sn_parse_long, 1..LONG_MAX */
	V_TIMES,    /* sn_parse_long, -1..LONG_MAX */
	V_SAMPLE,   /* sn_parse_long, 1..UINT_MAX */
	V_U64,      /* sn_parse_u64 */
	V_STRING,   /* anything non-empty */
	V_INFILE,   /* a readable file */
	V_OUTFILE,  /* a path to write at exit: made absolute */
	V_FLAG,     /* no value: the variable is set to "1" */
	V_DEBUG,    /* sn_parse_debug_letters: some of F, Z, P, U */
};

struct option_def {
	const char *name;     /* without the leading "--" */
	const char *env;      /* the SLABNOTIFY_* variable it sets */
	enum value_kind kind;
	bool value_optional;  /* --leaks or --leaks=N: only "=" gives a value */
	const char *implicit; /* the value when it is optional and absent; a flag's ("1" if NULL) */
	bool fault;           /* a failslab knob: needs a seed */
	const char *metavar;
	const char *help;
};

/* Order is the order of --help and of the man page's OPTIONS. */
static const struct option_def options[] = {
	{ "max", SN_ENV_MAX, V_SIZE, false, NULL, false, "SIZE",
	  "hard limit: allocations past it fail (NULL, ENOMEM)" },
	{ "high", SN_ENV_HIGH, V_SIZE, false, NULL, false, "SIZE",
	  "soft limit: crossings are counted, never failed or slowed" },
	{ "fail-probability", SN_ENV_FAIL_PROB, V_PERCENT, false, NULL, true, "P",
	  "fail P percent (0-100) of allocations" },
	{ "fail-interval", SN_ENV_FAIL_INT, V_COUNT, false, NULL, true, "N",
	  "fail only every Nth eligible allocation" },
	{ "fail-times", SN_ENV_FAIL_TIMES, V_TIMES, false, NULL, true, "N",
	  "fail at most N times (-1: no limit)" },
	{ "fail-space", SN_ENV_FAIL_SPACE, V_SIZE, false, NULL, true, "SIZE",
	  "let SIZE bytes through before failing any" },
	{ "fail-min-size", SN_ENV_FAIL_MIN, V_SIZE, false, NULL, true, "SIZE",
	  "fail only requests of at least SIZE bytes" },
	{ "fail-cache", SN_ENV_FAIL_CACHE, V_STRING, false, NULL, true, "NAME",
	  "fail only in caches whose name starts with NAME" },
	{ "fail-stack", SN_ENV_FAIL_STACK, V_STRING, false, NULL, true, "PATTERN",
	  "fail only allocations with a function matching PATTERN on the stack" },
	{ "seed", SN_ENV_SEED, V_U64, false, NULL, false, "S",
	  "fault injection seed (default 1): same seed, same failures" },
	{ "leaks", SN_ENV_LEAKS, V_SAMPLE, true, "1", false, "[=N]",
	  "report blocks live at exit by stack (sample 1 in N)" },
	{ "profile", SN_ENV_PROFILE, V_SIZE, true, "1", false, "[=BYTES]",
	  "heap profile: peak consumers, hot spots, temporaries, leaks (sample per BYTES)" },
	{ "top", SN_ENV_TOP, V_COUNT, false, NULL, false, "N",
	  "show the top N stacks of each section (default 10)" },
	{ "suppressions", SN_ENV_SUPPRESS, V_INFILE, false, NULL, false, "FILE",
	  "leave out leaks matching FILE's leak:PATTERN lines" },
	{ "no-default-suppressions", SN_ENV_NO_DEF_SUPPRESS, V_FLAG, false, NULL, false, NULL,
	  "report the runtime's own blocks kept by design too" },
	{ "folded", SN_ENV_FOLDED, V_OUTFILE, false, NULL, false, "FILE",
	  "write the stacks as folded text (%p: the pid)" },
	{ "flamegraph", SN_ENV_FLAMEGRAPH, V_OUTFILE, false, NULL, false, "FILE.svg",
	  "write an interactive flame graph (%p: the pid)" },
	{ "timeline", SN_ENV_TIMELINE, V_OUTFILE, false, NULL, false, "FILE.svg",
	  "write heap and RSS over time, with --profile (%p: the pid)" },
	{ "html", SN_ENV_HTML, V_OUTFILE, false, NULL, false, "FILE",
	  "write the whole profile as one web page (%p: the pid)" },
	{ "debug", SN_ENV_DEBUG, V_DEBUG, true, "FZPU", false, "[=FZPU]",
	  "SLUB debugging: checks, red zones, poison, stacks (abort on a bug)" },
	{ "debug-continue", SN_ENV_DEBUG_CONTINUE, V_FLAG, false, NULL, false, NULL,
	  "after a --debug report, repair and go on" },
	{ "guard", SN_ENV_GUARD, V_SAMPLE, true, "5000", false, "[=N]",
	  "guard pages around 1 in N allocations (default 5000)" },
	{ "stats", SN_ENV_STATS, V_FLAG, false, NULL, false, NULL,
	  "report statistics and slabinfo at exit" },
	{ "report", SN_ENV_REPORT, V_STRING, false, NULL, false, "FILE",
	  "write the report to FILE (%p: the pid), not stderr" },
	{ "json", SN_ENV_JSON, V_FLAG, false, NULL, false, NULL,
	  "write the report as JSON" },
	{ "no-stat-page", SN_ENV_STATPAGE, V_FLAG, false, "0", false, NULL,
	  "publish no live stats page (for stat, top, set, exporter)" },
};

#define N_OPTIONS (sizeof(options) / sizeof(options[0]))

/* What the command line chose: one value per table entry, NULL if
 * the option was not given (a later occurrence wins, as in most tools). */
struct settings {
	const char *value[N_OPTIONS];
	char *const *cmd;     /* CMD [ARGS...], NULL-terminated */
};

/* ------------------------------------------------------------------ */
/* Help and usage                                                     */
/* ------------------------------------------------------------------ */

static const char *progname = "slabnotify";

static void print_synopsis(FILE *f)
{
	fprintf(f,
		"usage: %s run [OPTIONS] -- CMD [ARGS...]\n"
		"       %s demo [OPTIONS]\n"
		"       %s stat PID [--json | --prometheus]\n"
		"       %s top [PID]\n"
		"       %s set PID [--max SIZE] [--high SIZE] [--fail-probability P ...]\n"
		"       %s exporter [--listen ADDR:PORT]\n"
		"       %s help | --help | --version\n",
		progname, progname, progname, progname, progname, progname, progname);
}

static void print_version(void)
{
	printf("slabnotify %s\n", TOOL_VERSION);
}

static void print_help(FILE *f)
{
	print_synopsis(f);
	fputs("\nRun CMD on the slabnotify malloc drop-in (" PRELOAD_NAME "),\n"
	      "with a memory cap, fault injection, a leak report and statistics.\n"
	      "\nCommands:\n"
	      "  run     run CMD under the drop-in; exits with CMD's status\n"
	      "  demo    run a bundled workload under --max 16M --leaks --stats\n"
	      "  stat    print a running process's live figures (text, JSON, Prometheus)\n"
	      "  top     live full-screen view of a process's caches, or of all processes\n"
	      "  set     change a running process's limits and fault injection\n"
	      "  exporter  serve every process's figures to Prometheus over HTTP\n"
	      "  help    print this help\n"
	      "\nOptions:\n", f);
	for (size_t i = 0; i < N_OPTIONS; i++) {
		const struct option_def *o = &options[i];
		char left[64];
		snprintf(left, sizeof(left), "--%s%s%s", o->name,
			 o->metavar && !o->value_optional ? " " : "",
			 o->metavar ? o->metavar : "");
		fprintf(f, "  %-26s %s\n", left, o->help);
	}
	fputs("  --help                     print this help\n"
	      "  --version                  print the version\n"
	      "\nSIZE is bytes with an optional K, M, G or T suffix (binary units,\n"
	      "optionally followed by B or iB): 4096, 64K, 64M, 1.5G.\n"
	      "Exit status: CMD's; 2 for a usage error; 125 if the drop-in is not\n"
	      "found; 126 if CMD cannot be executed; 127 if it is not found.\n"
	      "See slabnotify(1).\n", f);
}

/* Every usage error ends here: one line saying what, then the synopsis. */
__attribute__((format(printf, 1, 2)))
static _Noreturn void usage_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "%s: ", progname);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	print_synopsis(stderr);
	fprintf(stderr, "Try '%s --help' for more information.\n", progname);
	exit(EXIT_USAGE);
}

/* ------------------------------------------------------------------ */
/* Parsing                                                            */
/* ------------------------------------------------------------------ */

static bool value_valid(enum value_kind kind, const char *v)
{
	size_t size;
	double pct;
	long n;
	uint64_t u;
	unsigned flags;

	switch (kind) {
	case V_SIZE:    return sn_parse_size(v, &size);
	case V_PERCENT: return sn_parse_percent(v, &pct);
	case V_COUNT:   return sn_parse_long(v, 1, LONG_MAX, &n);
	case V_TIMES:   return sn_parse_long(v, -1, LONG_MAX, &n);
	case V_SAMPLE:  return sn_parse_long(v, 1, UINT_MAX, &n);
	case V_U64:     return sn_parse_u64(v, &u);
	case V_STRING:  return v && *v;
	case V_INFILE:  return v && *v && access(v, R_OK) == 0;
	case V_OUTFILE: return v && *v;
	case V_FLAG:    return true;
	case V_DEBUG:   return v && *v && sn_parse_debug_letters(v, &flags);
	}
	return false;
}

static const char *kind_expects(enum value_kind kind)
{
	switch (kind) {
	case V_SIZE:    return "a size such as 4096, 64K, 64M or 1.5G";
	case V_PERCENT: return "a percentage from 0 to 100";
	case V_COUNT:   return "a positive integer";
	case V_TIMES:   return "an integer, -1 or more";
	case V_SAMPLE:  return "a positive integer";
	case V_U64:     return "an unsigned 64-bit integer";
	case V_STRING:  return "a non-empty string";
	case V_INFILE:  return "a readable file";
	case V_OUTFILE: return "a file name";
	case V_FLAG:    return "no value";
	case V_DEBUG:   return "letters among F, Z, P and U";
	}
	return "?";
}

static const struct option_def *find_option(const char *name, size_t len)
{
	for (size_t i = 0; i < N_OPTIONS; i++)
		if (strlen(options[i].name) == len &&
		    strncmp(options[i].name, name, len) == 0)
			return &options[i];
	return NULL;
}

/*
 * Parse argv[*i] (an option starting with "--") and maybe its value in
 * argv[*i + 1]; record it in @s. Exits with a usage error on anything
 * wrong, naming the option and what it expects.
 */
static void parse_option(int argc, char **argv, int *i, struct settings *s)
{
	const char *arg = argv[*i] + 2;
	const char *eq = strchr(arg, '=');
	size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
	const struct option_def *o = find_option(arg, len);
	if (!o)
		usage_error("unknown option '%s'", argv[*i]);

	const char *v;
	if (o->kind == V_FLAG) {
		if (eq)
			usage_error("option '--%s' takes no value", o->name);
		v = o->implicit ? o->implicit : "1";
	} else if (eq) {
		v = eq + 1;
	} else if (o->value_optional) {
		v = o->implicit;
	} else if (*i + 1 < argc) {
		v = argv[++*i];
	} else {
		usage_error("option '--%s' needs a value", o->name);
	}

	if (!value_valid(o->kind, v))
		usage_error("invalid value '%s' for --%s: expected %s", v,
			    o->name, kind_expects(o->kind));
	s->value[o - options] = v;
}

/* Parse "[OPTIONS] [-- CMD ARGS...]" from argv[first]. With @need_cmd,
 * "--" and CMD are required; without, they are refused. */
static void parse_args(int argc, char **argv, int first, bool need_cmd,
		       struct settings *s)
{
	int i;
	for (i = first; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			break;
		if (strcmp(argv[i], "--help") == 0) {
			print_help(stdout);
			exit(0);
		}
		if (strcmp(argv[i], "--version") == 0) {
			print_version();
			exit(0);
		}
		if (strncmp(argv[i], "--", 2) != 0)
			usage_error(need_cmd ? "expected an option or '--' before the command, got '%s'"
					     : "unexpected argument '%s'", argv[i]);
		parse_option(argc, argv, &i, s);
	}
	if (!need_cmd) {
		if (i < argc)
			usage_error("'%s' takes no command", argv[first - 1]);
		return;
	}
	if (i >= argc)
		usage_error("missing '--' before the command");
	if (i + 1 >= argc)
		usage_error("missing the command after '--'");
	s->cmd = &argv[i + 1];
}

/* ------------------------------------------------------------------ */
/* Finding the drop-in                                                */
/* ------------------------------------------------------------------ */

#if defined(__x86_64__)
#define MULTIARCH "x86_64-linux-gnu"
#elif defined(__aarch64__)
#define MULTIARCH "aarch64-linux-gnu"
#else
#define MULTIARCH NULL
#endif

static bool is_file(const char *path)
{
	return access(path, R_OK) == 0;
}

/*
 * The drop-in's absolute path in @out, or false with a message. Order:
 * $SLABNOTIFY_PRELOAD (exactly that; a wrong one is an error, not a
 * reason to fall back silently), then beside our own executable in the
 * build tree (build/tools/ -> build/src/) and in an installed prefix
 * (bin/ -> lib/, lib/<multiarch>/, lib64/).
 */
static bool find_preload(char *out, size_t outsz)
{
	const char *forced = getenv("SLABNOTIFY_PRELOAD");
	if (forced && *forced) {
		if (!realpath(forced, out) || !is_file(out)) {
			fprintf(stderr, "%s: SLABNOTIFY_PRELOAD=%s: %s\n", progname,
				forced, strerror(errno ? errno : ENOENT));
			return false;
		}
		return true;
	}

	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n < 0) {
		fprintf(stderr, "%s: /proc/self/exe: %s\n", progname, strerror(errno));
		return false;
	}
	self[n] = '\0';
	char *slash = strrchr(self, '/');
	if (slash)
		*slash = '\0';

	const char *rel[] = {
		"../src/" PRELOAD_NAME,
		"../lib/" PRELOAD_NAME,
		MULTIARCH ? "../lib/" MULTIARCH "/" PRELOAD_NAME : NULL,
		"../lib64/" PRELOAD_NAME,
	};
	for (size_t i = 0; i < sizeof(rel) / sizeof(rel[0]); i++) {
		char cand[PATH_MAX + 64];
		if (!rel[i])
			continue;
		snprintf(cand, sizeof(cand), "%s/%s", self, rel[i]);
		if (is_file(cand) && realpath(cand, out) && strlen(out) < outsz)
			return true;
	}
	fprintf(stderr, "%s: cannot find " PRELOAD_NAME " beside %s "
		"(looked in ../src, ../lib, ../lib/%s, ../lib64); "
		"set SLABNOTIFY_PRELOAD to its path\n",
		progname, self, MULTIARCH ? MULTIARCH : "<multiarch>");
	return false;
}

/* ------------------------------------------------------------------ */
/* The environment                                                    */
/* ------------------------------------------------------------------ */

/* Prepend @lib to LD_PRELOAD, keeping what the user had, unless it is
 * already there (a nested `slabnotify run` must not load it twice). */
static bool set_ld_preload(const char *lib)
{
	/* ld.so splits LD_PRELOAD at spaces and colons. */
	if (strpbrk(lib, " :")) {
		fprintf(stderr, "%s: the drop-in's path '%s' has a space or colon, "
			"which LD_PRELOAD cannot hold\n", progname, lib);
		return false;
	}
	const char *old = getenv("LD_PRELOAD");
	if (!old || !*old)
		return setenv("LD_PRELOAD", lib, 1) == 0;

	size_t len = strlen(lib);
	for (const char *p = old; (p = strstr(p, lib)); p += len) {
		bool starts = p == old || p[-1] == ' ' || p[-1] == ':';
		bool ends = p[len] == '\0' || p[len] == ' ' || p[len] == ':';
		if (starts && ends)
			return true;
	}
	char *both;
	if (asprintf(&both, "%s:%s", lib, old) < 0)
		return false;
	int rc = setenv("LD_PRELOAD", both, 1);
	free(both);
	return rc == 0;
}

/*
 * The chosen options become variables; options not given leave any
 * variable already in the environment alone, so the two compose. Fault
 * injection without --seed gets seed 1 (unless SLABNOTIFY_SEED is set):
 * a run is then reproducible by default, and nothing needs printing.
 */
/*
 * --report FILE: made absolute here, so that a program that changes its
 * directory (git -C) writes where the user meant; without %p, every
 * process of the tree appends its report to FILE, which starts empty.
 * A file that cannot be made is said once; the reports then go to
 * stderr (the drop-in says so too), and the program runs all the same.
 */
static const char *report_path(const char *v, char *buf, size_t len)
{
	if (v[0] != '/') {
		char cwd[PATH_MAX];
		if (!getcwd(cwd, sizeof(cwd)) || (size_t)snprintf(buf, len, "%s/%s", cwd, v) >= len)
			return v;
		v = buf;
	}
	if (!strstr(v, "%p")) {
		FILE *f = fopen(v, "w");
		if (f)
			fclose(f);
		else
			fprintf(stderr, "%s: cannot write the report to %s: %s\n", progname, v, strerror(errno));
	}
	return v;
}

/* The pictures and the suppressions: absolute, as --report. */
static const char *absolute_path(const char *v, char *buf, size_t len)
{
	char cwd[PATH_MAX];
	if (v[0] == '/' || !getcwd(cwd, sizeof(cwd)) || (size_t)snprintf(buf, len, "%s/%s", cwd, v) >= len)
		return v;
	return buf;
}

static bool set_slabnotify_env(const struct settings *s)
{
	bool faults = false;
	for (size_t i = 0; i < N_OPTIONS; i++) {
		if (!s->value[i])
			continue;
		const char *v = s->value[i];
		char abs_path[PATH_MAX + 64];
		if (strcmp(options[i].env, SN_ENV_REPORT) == 0)
			v = report_path(v, abs_path, sizeof(abs_path));
		else if (options[i].kind == V_OUTFILE || options[i].kind == V_INFILE)
			v = absolute_path(v, abs_path, sizeof(abs_path));
		if (setenv(options[i].env, v, 1) != 0)
			return false;
		faults |= options[i].fault;
	}
	const struct option_def *seed = find_option("seed", 4);
	if (faults && !s->value[seed - options])
		return setenv(SN_ENV_SEED, "1", 0) == 0;
	return true;
}

/* ------------------------------------------------------------------ */
/* Commands                                                           */
/* ------------------------------------------------------------------ */

/* Set everything up and exec; returns only on failure, with the status. */
static int launch(const struct settings *s)
{
	char lib[PATH_MAX];
	if (!find_preload(lib, sizeof(lib)))
		return EXIT_LAUNCH;
	if (!set_ld_preload(lib) || !set_slabnotify_env(s)) {
		fprintf(stderr, "%s: cannot set the environment: %s\n", progname,
			strerror(errno));
		return EXIT_LAUNCH;
	}
	if (tool_is_static_executable(s->cmd[0])) {
		fprintf(stderr, "%s: %s is statically linked: the drop-in cannot be loaded into it, "
			"so it would run unobserved; not run\n", progname, s->cmd[0]);
		return EXIT_LAUNCH;
	}
	/* --debug and --guard report bugs as they find them, not at exit. */
	bool report_wanted = false;
	for (size_t i = 0; i < N_OPTIONS; i++)
		report_wanted |= s->value[i] != NULL && strcmp(options[i].name, "seed") != 0 &&
				 strcmp(options[i].name, "no-stat-page") != 0 &&
				 strncmp(options[i].name, "debug", 5) != 0 && strcmp(options[i].name, "guard") != 0;
	return tool_run_and_wait(s->cmd, report_wanted);
}

static const char *given(const struct settings *s, const char *name)
{
	return s->value[find_option(name, strlen(name)) - options];
}

/* The pictures need stacks: --profile, or --leaks for the leaks'. */
static void check_needs(const struct settings *s)
{
	static const char *const need_stacks[] = { "folded", "flamegraph", "html", "top", "suppressions",
						   "no-default-suppressions" };
	bool stacks = given(s, "profile") || given(s, "leaks");
	for (size_t i = 0; i < sizeof(need_stacks) / sizeof(*need_stacks); i++)
		if (given(s, need_stacks[i]) && !stacks)
			usage_error("option '--%s' needs --profile or --leaks", need_stacks[i]);
	if (given(s, "timeline") && !given(s, "profile"))
		usage_error("option '--timeline' needs --profile");
}

static int cmd_run(int argc, char **argv)
{
	struct settings s = { 0 };
	parse_args(argc, argv, 2, true, &s);
	check_needs(&s);
	return launch(&s);
}

/*
 * The demo is `run --max 16M --leaks --stats -- <ourselves> __demo-workload`:
 * the workload runs in a fresh process on the drop-in, and the report at
 * its exit is the drop-in's own. Options given to `demo` are applied on
 * top of those defaults (--json, --report FILE, --max 8M).
 */
static int cmd_demo(int argc, char **argv)
{
	static const struct { const char *name, *value; } defaults[] = {
		{ "max", "16M" }, { "leaks", "1" }, { "stats", "1" },
	};
	struct settings s = { 0 };
	parse_args(argc, argv, 2, false, &s);
	for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++) {
		const struct option_def *o = find_option(defaults[i].name,
							 strlen(defaults[i].name));
		if (!s.value[o - options])
			s.value[o - options] = defaults[i].value;
	}

	static char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n < 0) {
		fprintf(stderr, "%s: /proc/self/exe: %s\n", progname, strerror(errno));
		return EXIT_LAUNCH;
	}
	self[n] = '\0';
	char *cmd[] = { self, DEMO_WORKLOAD_CMD, NULL };
	s.cmd = cmd;
	return launch(&s);
}

/* `slabnotify top` and `slabnotify exporter`: slabnotify-top and
 * slabnotify-exporter, next to this program (tools/CMakeLists.txt says
 * why), given the same argv, so that ps and pgrep still show
 * "slabnotify top PID". */
static int exec_helper(const char *name, char **argv)
{
	char self[PATH_MAX], path[PATH_MAX + 32];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0) {
		fprintf(stderr, "%s %s: cannot find this program's directory: %s\n", progname, name, strerror(errno));
		return EXIT_LAUNCH;
	}
	self[n] = '\0';
	char *slash = strrchr(self, '/');
	*slash = '\0';
	snprintf(path, sizeof(path), "%s/slabnotify-%s", self, name);
	execv(path, argv);
	int err = errno;
	fprintf(stderr, "%s %s: cannot run %s: %s\n", progname, name, path, strerror(err));
	return err == ENOENT ? EXIT_NOT_FOUND : EXIT_CANNOT_EXEC;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		usage_error("missing a command (run, demo or help)");

	const char *cmd = argv[1];
	if (strcmp(cmd, "run") == 0)
		return cmd_run(argc, argv);
	if (strcmp(cmd, "demo") == 0)
		return cmd_demo(argc, argv);
	if (strcmp(cmd, "stat") == 0)
		return cmd_stat(argc - 1, argv + 1);
	if (strcmp(cmd, "set") == 0)
		return cmd_set(argc - 1, argv + 1);
	if (strcmp(cmd, "top") == 0 || strcmp(cmd, "exporter") == 0)
		return exec_helper(cmd, argv);
	if (strcmp(cmd, DEMO_WORKLOAD_CMD) == 0)
		return demo_workload();
	if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 ||
	    strcmp(cmd, "-h") == 0) {
		print_help(stdout);
		return 0;
	}
	if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
		print_version();
		return 0;
	}
	usage_error("unknown command '%s'", cmd);
}
