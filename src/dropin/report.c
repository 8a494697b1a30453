/*
 * report.c - the drop-in's report: at exit, at abort() and on fatal
 * signals.
 *
 * Where it goes. To a descriptor duplicated from stderr when the program
 * started (so that a program closing its stderr at exit, as gnulib's
 * close_stdout does, still gets its report), or to the --report file:
 * with %p, one file per process (truncated); without, every process of
 * the tree appends its report to the one file (the launcher truncates it
 * before the program starts), under an exclusive flock so that reports
 * never interleave. A file that cannot be written gets one line on the
 * descriptor, and the report goes there.
 *
 * What it says. A header with the pid and the command line, the limits
 * in force, the heap (slab pages and large blocks in use, and their
 * peak), the peak RSS, the memory group's usage, peak, max and high
 * events and the time throttled when a limit is set, the program's own
 * mappings charged under --max, and the vetoes by cause; then the leaks
 * (--leaks) and the statistics of the caches ever used (--stats).
 *
 * Who pays for it. The writer runs in a quiet section (consumer.h): what
 * it allocates is never charged to the capped group, never failed by
 * fault injection and never recorded as a leak.
 *
 * Abort and fatal signals. A handler for SIGABRT, SIGSEGV, SIGBUS, SIGILL,
 * SIGFPE, SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGPIPE, SIGXCPU and SIGXFSZ
 * (installed only where the program inherited the default action) writes
 * the summary, built without locks or allocation from counters read as
 * they are, then restores the default action and raises the signal
 * again: the program dies as it would have, with the same status. Leak
 * stacks and statistics need locks and memory, so they are written at a
 * normal exit only.
 *
 * _exit() and _Exit() run no exit handlers: the drop-in's own _exit()
 * writes the same summary (it may be called from a signal handler, where
 * only the summary is safe), then ends the process as glibc's does. A
 * vfork child (vfork, posix_spawn) shares its parent's memory and runs
 * no fork handler: its getpid() is not the pid recorded at start and in
 * every fork child, and it writes nothing.
 */
#define _GNU_SOURCE
#include "dropin.h"
#include "consumers/json.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

static int report_fd = STDERR_FILENO;
static _Atomic bool reported;
static pid_t report_pid;     /* this process's: see _exit() */

/* ------------------------------------------------------------------ */
/* Text without locks or allocation                                   */
/* ------------------------------------------------------------------ */

struct sbuf {
	char b[4096];
	size_t n;
};

static void sb_str(struct sbuf *s, const char *t)
{
	while (*t && s->n < sizeof(s->b) - 1)
		s->b[s->n++] = *t++;
}

static void sb_u64(struct sbuf *s, uint64_t v)
{
	char d[24];
	int n = 0;
	do
		d[n++] = (char)('0' + v % 10);
	while ((v /= 10) && n < 24);
	while (n--)
		if (s->n < sizeof(s->b) - 1)
			s->b[s->n++] = d[n];
}

/* "123456789 (117.7 MiB)": bytes, and a readable size. */
static void sb_size(struct sbuf *s, uint64_t v)
{
	static const char *const unit[] = { "KiB", "MiB", "GiB", "TiB" };
	sb_u64(s, v);
	if (v < 1024)
		return;
	int u = 0;
	uint64_t div = 1024;
	while (u < 3 && v / div >= 1024) {
		div *= 1024;
		u++;
	}
	uint64_t tenths = (v * 10 + div / 2) / div;
	sb_str(s, " (");
	sb_u64(s, tenths / 10);
	sb_str(s, ".");
	sb_u64(s, tenths % 10);
	sb_str(s, " ");
	sb_str(s, unit[u]);
	sb_str(s, ")");
}

static void sb_limit(struct sbuf *s, bool set, size_t v)
{
	if (set && v != SIZE_MAX)
		sb_size(s, v);
	else
		sb_str(s, "none");
}

static const char *signal_name(int sig)
{
	switch (sig) {
	case SIGABRT: return "SIGABRT";
	case SIGSEGV: return "SIGSEGV";
	case SIGBUS:  return "SIGBUS";
	case SIGILL:  return "SIGILL";
	case SIGFPE:  return "SIGFPE";
	case SIGTERM: return "SIGTERM";
	case SIGINT:  return "SIGINT";
	case SIGQUIT: return "SIGQUIT";
	case SIGHUP:  return "SIGHUP";
	case SIGPIPE: return "SIGPIPE";
	case SIGXCPU: return "SIGXCPU";
	case SIGXFSZ: return "SIGXFSZ";
	default:      return "a signal";
	}
}

static size_t rss_peak_bytes(void)
{
	struct rusage ru;
	return getrusage(RUSAGE_SELF, &ru) == 0 ? (size_t)ru.ru_maxrss * 1024 : 0;
}

/*
 * The summary, the same at exit, in a signal handler and at _exit().
 * @ended: how the process ended when not by exit() ("killed by SIGSEGV",
 * "ended by _exit(3)"), else NULL. @memcg: the root group's figures
 * (exact at exit, read as they are otherwise).
 */
static void summary(struct sbuf *s, const char *ended, const struct sn_memcg_snapshot *m)
{
	sb_str(s, "==");
	sb_u64(s, (uint64_t)getpid());
	sb_str(s, "== slabnotify report");
	if (ended) {
		sb_str(s, " (");
		sb_str(s, ended);
		sb_str(s, ")");
	}
	sb_str(s, ": ");
	sb_str(s, sn_cfg.cmdline[0] ? sn_cfg.cmdline : "?");
	/* Concise: the limits and the vetoes only where there can be any. */
	bool limited = sn_cfg.has_max || sn_cfg.has_high || sn_cfg.faults;
	if (limited) {
		sb_str(s, "\nslabnotify: limits: max ");
		sb_limit(s, sn_cfg.has_max, sn_cfg.max);
		sb_str(s, ", high ");
		sb_limit(s, sn_cfg.has_high, sn_cfg.high);
		if (sn_cfg.faults) {
			const struct slab_fault_attr *a = &sn_cfg.fault;
			sb_str(s, "; fault injection: ");
			sb_u64(s, (uint64_t)a->probability);
			uint64_t frac = (uint64_t)((a->probability - (double)(uint64_t)a->probability) * 1000 + 0.5);
			if (frac) {
				sb_str(s, ".");
				if (frac < 100)
					sb_str(s, "0");
				if (frac < 10)
					sb_str(s, "0");
				sb_u64(s, frac);
			}
			sb_str(s, "% of allocations, seed ");
			sb_u64(s, a->seed);
			if (a->interval > 1) {
				sb_str(s, ", every ");
				sb_u64(s, a->interval);
				sb_str(s, "th");
			}
			if (a->times >= 0) {
				sb_str(s, ", at most ");
				sb_u64(s, (uint64_t)a->times);
				sb_str(s, " times");
			}
		}
	}
	struct slab_mem_stat mem = { 0 };
	slab_mem_stat(&mem);
	sb_str(s, ended ? "\nslabnotify: heap: " : "\nslabnotify: heap at exit: ");
	sb_size(s, mem.in_use);
	sb_str(s, " in use, peak ");
	sb_size(s, mem.peak);
	sb_str(s, " (slab pages and large blocks); RSS peak ");
	sb_size(s, rss_peak_bytes());
	if (sn_cfg.has_max || sn_cfg.has_high) {
		sb_str(s, "\nslabnotify: memory group: usage ");
		sb_size(s, m->usage);
		sb_str(s, ", peak ");
		sb_size(s, m->peak);
		sb_str(s, "; ");
		sb_u64(s, m->events_max);
		sb_str(s, " max events, ");
		sb_u64(s, m->failcnt);
		sb_str(s, " failed charges, ");
		sb_u64(s, m->events_high);
		sb_str(s, " high events, ");
		sb_u64(s, m->throttled_us / 1000);
		sb_str(s, " ms throttled");
	}
	if (sn_cfg.has_max) {
		size_t peak = 0, now = mmap_charged_bytes(&peak);
		sb_str(s, "\nslabnotify: the program's own mappings: ");
		sb_size(s, now);
		sb_str(s, " charged, peak ");
		sb_size(s, peak);
	}
	unsigned long vf = slab_fault_injected(), vm = m->failcnt;
	if (!limited && !vf && !vm) {
		sb_str(s, "\n");
		return;
	}
	sb_str(s, "\nslabnotify: vetoes: ");
	sb_u64(s, vf);
	sb_str(s, " failslab, ");
	sb_u64(s, vm);
	sb_str(s, " memcg, ");
	sb_u64(s, vf + vm);
	sb_str(s, " total\n");
}

/* ------------------------------------------------------------------ */
/* Where the report goes                                              */
/* ------------------------------------------------------------------ */

static void write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}

/* The report file's path with %p replaced by the pid, in @out. */
static void expand_path(char *out, size_t cap)
{
	struct sbuf pid = { .n = 0 };
	sb_u64(&pid, (uint64_t)getpid());
	pid.b[pid.n] = '\0';
	size_t o = 0;
	for (const char *s = sn_cfg.report_path; *s && o + 24 < cap; s++) {
		if (s[0] == '%' && s[1] == 'p') {
			memcpy(out + o, pid.b, pid.n);
			o += pid.n;
			s++;
		} else if (s[0] == '%' && s[1] == '%') {
			out[o++] = '%';
			s++;
		} else {
			out[o++] = *s;
		}
	}
	out[o] = '\0';
}

/* The descriptor to write to (locked when shared), or report_fd. */
static int target_open(bool *opened)
{
	*opened = false;
	if (!sn_cfg.report_to_file)
		return report_fd;
	char path[sizeof(sn_cfg.report_path) + 32];
	expand_path(path, sizeof(path));
	int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (sn_cfg.report_per_pid ? O_TRUNC : O_APPEND);
	int fd = open(path, flags, 0644);
	if (fd < 0) {
		struct sbuf s = { .n = 0 };
		sb_str(&s, "slabnotify: cannot write the report to ");
		sb_str(&s, path);
		sb_str(&s, ": ");
		sb_str(&s, strerror(errno));
		sb_str(&s, "; it follows here\n");
		write_all(report_fd, s.b, s.n);
		return report_fd;
	}
	if (!sn_cfg.report_per_pid)
		flock(fd, LOCK_EX);
	*opened = true;
	return fd;
}

static void target_close(int fd, bool opened)
{
	if (opened)
		close(fd);    /* drops the flock too */
	/* Tell the launcher, if it waits for us, that the report is out. */
	if (sn_cfg.launcher_fd >= 0 && getpid() == sn_cfg.main_pid)
		write_all(sn_cfg.launcher_fd, "R", 1);
}

/* ------------------------------------------------------------------ */
/* The report at exit                                                 */
/* ------------------------------------------------------------------ */

static void exit_report_text(FILE *f, const struct sn_memcg_snapshot *m)
{
	struct sbuf s = { .n = 0 };
	summary(&s, NULL, m);
	fwrite(s.b, 1, s.n, f);
	if (profile_active())
		profile_report(f, false);
	if (sn_cfg.stats)
		sn_stats_report(f, false, true);
}

static void json_size(FILE *f, const char *key, bool set, size_t v)
{
	if (set && v != SIZE_MAX)
		fprintf(f, "\"%s\":%zu", key, v);
	else
		fprintf(f, "\"%s\":null", key);
}

static void exit_report_json(FILE *f, const struct sn_memcg_snapshot *m)
{
	struct slab_mem_stat mem = { 0 };
	slab_mem_stat(&mem);
	fprintf(f, "{\"pid\":%d,\"command\":", (int)getpid());
	json_string(f, sn_cfg.cmdline);
	fprintf(f, ",\"limits\":{");
	json_size(f, "max", sn_cfg.has_max, sn_cfg.max);
	fputc(',', f);
	json_size(f, "high", sn_cfg.has_high, sn_cfg.high);
	if (sn_cfg.faults)
		fprintf(f, ",\"fault_probability\":%g,\"fault_seed\":%llu", sn_cfg.fault.probability,
			(unsigned long long)sn_cfg.fault.seed);
	fprintf(f, "},\"heap\":{\"in_use_bytes\":%zu,\"peak_bytes\":%zu,\"peak_rss_bytes\":%zu",
		mem.in_use, mem.peak, rss_peak_bytes());
	if (sn_cfg.has_max) {
		size_t peak = 0, now = mmap_charged_bytes(&peak);
		fprintf(f, ",\"mappings_charged_bytes\":%zu,\"mappings_peak_bytes\":%zu", now, peak);
	}
	fprintf(f, "},\"vetoes\":{\"failslab\":%lu,\"memcg\":%lu}", slab_fault_injected(), m->failcnt);
	if (sn_cfg.has_max || sn_cfg.has_high)
		fprintf(f, ",\"memcg\":{\"usage\":%zu,\"peak\":%zu,\"events_max\":%lu,\"failcnt\":%lu,"
			   "\"events_high\":%lu,\"throttled_us\":%lu}",
			m->usage, m->peak, m->events_max, m->failcnt, m->events_high, m->throttled_us);
	if (sn_cfg.stats) {
		fprintf(f, ",\"stats\":");
		sn_stats_report(f, true, true);
	}
	if (profile_active()) {   /* "summary" and the sections asked for */
		fputc(',', f);
		profile_report(f, true);
	}
	fprintf(f, "}\n");
}

/* The root group's exact figures (after its stocks are summed). */
static void memcg_figures(struct sn_memcg_snapshot *m)
{
	memset(m, 0, sizeof(*m));
	if (!sn_cfg.has_max && !sn_cfg.has_high)
		return;
	struct slab_memcg_stat st;
	if (slab_memcg_stat(slab_memcg_root(), &st) != 0)
		return;
	*m = (struct sn_memcg_snapshot){ st.usage, st.peak, st.max, st.high, st.failcnt,
					 st.events_high, st.events_max, st.throttled_us };
}

__attribute__((destructor(101))) static void exit_report(void)
{
	sn_dropin_debug_exit();     /* quarantined blocks checked, released: not leaks */
	if (!sn_cfg.report_wanted || atomic_exchange(&reported, true))
		return;
	sn_quiet_begin();
	struct sn_memcg_snapshot m;
	memcg_figures(&m);
	/* Composed in memory, then written at once (and under the file's
	 * lock when processes share it). */
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	if (f) {
		if (sn_cfg.json)
			exit_report_json(f, &m);
		else
			exit_report_text(f, &m);
		fclose(f);
	}
	bool opened;
	int fd = target_open(&opened);
	if (text)
		write_all(fd, text, len);
	target_close(fd, opened);
	free(text);
	sn_quiet_end();
}

/* ------------------------------------------------------------------ */
/* Abort and fatal signals                                            */
/* ------------------------------------------------------------------ */

static const int fatal_signals[] = {
	SIGABRT, SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGPIPE, SIGXCPU, SIGXFSZ,
};

/* The summary alone, without locks or allocation: once per process. */
static void summary_report(const char *ended)
{
	if (atomic_exchange(&reported, true))
		return;
	struct sn_memcg_snapshot m;
	sn_memcg_root_snapshot(&m);
	struct sbuf s = { .n = 0 };
	summary(&s, ended, &m);
	bool opened;
	int fd = target_open(&opened);
	write_all(fd, s.b, s.n);
	target_close(fd, opened);
}

static void fatal_signal(int sig)
{
	int saved = errno;
	sn_stat_page_remove();
	struct sbuf how = { .n = 0 };
	sb_str(&how, "killed by ");
	sb_str(&how, signal_name(sig));
	how.b[how.n] = '\0';
	summary_report(how.b);
	/* The default action, so that the program dies as it would have. */
	signal(sig, SIG_DFL);
	errno = saved;
	raise(sig);
}

/* ------------------------------------------------------------------ */
/* _exit() and _Exit()                                                */
/* ------------------------------------------------------------------ */

static void report_forked(void)
{
	report_pid = getpid();
}

static _Noreturn void end_process(int status)
{
	for (;;) {      /* as glibc's _exit() */
		syscall(SYS_exit_group, status);
		syscall(SYS_exit, status);
	}
}

static void exit_without_handlers(const char *fn, int status)
{
	if (getpid() != report_pid)
		return;     /* a vfork child: see the top */
	sn_stat_page_remove();
	if (!sn_cfg.report_wanted)
		return;
	struct sbuf how = { .n = 0 };
	sb_str(&how, "ended by ");
	sb_str(&how, fn);
	sb_str(&how, "(");
	sb_u64(&how, (uint64_t)(status & 0xff));
	sb_str(&how, ")");
	how.b[how.n] = '\0';
	summary_report(how.b);
}

__attribute__((constructor(101))) static void report_pid_init(void)
{
	report_pid = getpid();
	pthread_atfork(NULL, NULL, report_forked);
}

SN_EXPORT _Noreturn void _exit(int status)
{
	exit_without_handlers("_exit", status);
	end_process(status);
}

SN_EXPORT _Noreturn void _Exit(int status)
{
	exit_without_handlers("_Exit", status);
	end_process(status);
}

void report_init(void)
{
	/* Duplicated away from the low descriptors a program may reuse. */
	int fd = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 200);
	if (fd < 0)
		fd = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
	if (fd >= 0)
		report_fd = fd;
	for (size_t i = 0; i < sizeof(fatal_signals) / sizeof(fatal_signals[0]); i++) {
		struct sigaction old;
		if (sigaction(fatal_signals[i], NULL, &old) != 0 || old.sa_handler != SIG_DFL ||
		    (old.sa_flags & SA_SIGINFO))
			continue;
		struct sigaction sa;
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = fatal_signal;
		sigemptyset(&sa.sa_mask);
		sa.sa_flags = SA_RESETHAND;
		sigaction(fatal_signals[i], &sa, NULL);
	}
}
