/*
 * launch.c - running the command: `slabnotify run` stays its parent.
 *
 * The launcher forks, execs the command in the child, and waits for it,
 * so that it can see how the command ended:
 *  - its exit status is the launcher's (a death by a signal is passed on
 *    by the launcher dying of the same signal);
 *  - SIGTERM, SIGHUP, SIGUSR1, SIGUSR2 and SIGALRM sent to the launcher go
 *    on to the command; SIGINT and SIGQUIT from the terminal reach both,
 *    and the launcher lets the command decide;
 *  - when reports were asked for and the command ended without writing
 *    its own (killed by SIGKILL, say; _exit() writes the drop-in's
 *    summary), the launcher prints a summary of what it can see: how it
 *    ended and its peak RSS.
 * The command's drop-in says it reported through a pipe whose write end
 * it finds in SLABNOTIFY_LAUNCHER ("pid:fd"; only the launcher's direct
 * child, the command itself, answers).
 *
 * A statically linked command cannot load the drop-in: it is refused
 * with exit status 125 rather than run unobserved.
 */
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../src/options.h"
#include "slabnotify-tool.h"

static volatile sig_atomic_t child_pid;

static void forward(int sig)
{
	if (child_pid > 0)
		kill(child_pid, sig);
}

/* The path execvp() would run, in @out; false if there is none. */
static bool resolve(const char *cmd, char *out, size_t len)
{
	if (strchr(cmd, '/'))
		return snprintf(out, len, "%s", cmd) < (int)len && access(out, X_OK) == 0;
	const char *path = getenv("PATH");
	if (!path)
		path = "/usr/local/bin:/usr/bin:/bin";
	for (const char *p = path; *p;) {
		const char *e = strchr(p, ':');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		if (snprintf(out, len, "%.*s/%s", (int)n, n ? p : ".", cmd) < (int)len && access(out, X_OK) == 0)
			return true;
		p += n + (e != NULL);
	}
	return false;
}

/* An ELF executable with no program interpreter: statically linked. A
 * script, or anything unreadable, is left to exec. */
bool tool_is_static_executable(const char *cmd)
{
	char path[PATH_MAX];
	if (!resolve(cmd, path, sizeof(path)))
		return false;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	Elf64_Ehdr eh;
	bool is_static = false;
	if (read(fd, &eh, sizeof(eh)) == (ssize_t)sizeof(eh) && !memcmp(eh.e_ident, ELFMAG, SELFMAG) &&
	    eh.e_ident[EI_CLASS] == ELFCLASS64 && (eh.e_type == ET_EXEC || eh.e_type == ET_DYN)) {
		is_static = true;
		for (int i = 0; i < eh.e_phnum; i++) {
			Elf64_Phdr ph;
			if (pread(fd, &ph, sizeof(ph), (off_t)(eh.e_phoff + (size_t)i * eh.e_phentsize)) !=
			    (ssize_t)sizeof(ph))
				break;
			if (ph.p_type == PT_INTERP) {
				is_static = false;
				break;
			}
		}
	}
	close(fd);
	return is_static;
}

static void ended(const char *cmd, int status, const struct rusage *ru)
{
	long rss_kib = ru->ru_maxrss;
	if (WIFEXITED(status))
		fprintf(stderr, "slabnotify: %s (pid %d) ended without its report (by _exit() or a failed "
			"exec, with status %d); peak RSS %ld KiB\n", cmd, (int)child_pid, WEXITSTATUS(status), rss_kib);
	else if (WIFSIGNALED(status))
		fprintf(stderr, "slabnotify: %s (pid %d) was killed by signal %d (%s) before it could report; "
			"peak RSS %ld KiB\n", cmd, (int)child_pid, WTERMSIG(status), strsignal(WTERMSIG(status)),
			rss_kib);
}

/* Pass on how the command ended. */
static int pass_on(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status)) {
		int sig = WTERMSIG(status);
		signal(sig, SIG_DFL);
		sigset_t set;
		sigemptyset(&set);
		sigaddset(&set, sig);
		sigprocmask(SIG_UNBLOCK, &set, NULL);
		struct rlimit no_core = { 0, 0 };
		setrlimit(RLIMIT_CORE, &no_core);   /* the command dumped its core already */
		raise(sig);
		return 128 + sig;
	}
	return EXIT_LAUNCH;
}

int tool_run_and_wait(char *const *cmd, bool report_wanted)
{
	int notice[2], exec_err[2];
	if (pipe2(notice, O_CLOEXEC) != 0 || pipe2(exec_err, O_CLOEXEC) != 0) {
		fprintf(stderr, "slabnotify: pipe: %s\n", strerror(errno));
		return EXIT_LAUNCH;
	}
	/* The write end, where the command's drop-in finds it: inherited,
	 * and kept off the low descriptors a program uses. */
	int wfd = fcntl(notice[1], F_DUPFD, 200);
	if (wfd < 0)
		wfd = fcntl(notice[1], F_DUPFD, 3);
	close(notice[1]);
	char val[64];
	snprintf(val, sizeof(val), "%d:%d", (int)getpid(), wfd);
	setenv(SN_ENV_LAUNCHER, val, 1);
	fflush(NULL);

	pid_t pid = fork();
	if (pid < 0) {
		fprintf(stderr, "slabnotify: fork: %s\n", strerror(errno));
		return EXIT_LAUNCH;
	}
	if (pid == 0) {
		close(notice[0]);
		close(exec_err[0]);
		execvp(cmd[0], cmd);
		int err = errno;
		ssize_t w = write(exec_err[1], &err, sizeof(err));
		(void)w;
		_exit(EXIT_LAUNCH);
	}
	child_pid = pid;
	close(wfd);
	close(exec_err[1]);
	int err = 0;
	if (read(exec_err[0], &err, sizeof(err)) == (ssize_t)sizeof(err)) {
		waitpid(pid, NULL, 0);
		fprintf(stderr, "slabnotify: %s: %s\n", cmd[0], err == ENOENT ? "command not found" : strerror(err));
		return err == ENOENT ? EXIT_NOT_FOUND : EXIT_CANNOT_EXEC;
	}
	close(exec_err[0]);

	struct sigaction fw = { .sa_handler = forward }, ign = { .sa_handler = SIG_IGN };
	sigemptyset(&fw.sa_mask);
	sigemptyset(&ign.sa_mask);
	static const int forwarded[] = { SIGTERM, SIGHUP, SIGUSR1, SIGUSR2, SIGALRM };
	for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
		sigaction(forwarded[i], &fw, NULL);
	sigaction(SIGINT, &ign, NULL);
	sigaction(SIGQUIT, &ign, NULL);

	int status;
	struct rusage ru;
	pid_t r;
	while ((r = wait4(pid, &status, 0, &ru)) < 0 && errno == EINTR)
		;
	if (r < 0) {
		fprintf(stderr, "slabnotify: wait: %s\n", strerror(errno));
		return EXIT_LAUNCH;
	}
	fcntl(notice[0], F_SETFL, O_NONBLOCK);
	char c = 0;
	bool reported = read(notice[0], &c, 1) == 1;
	close(notice[0]);
	if (report_wanted && !reported)
		ended(cmd[0], status, &ru);
	return pass_on(status);
}
