/*
 * runwait - run one command and report its wall time and peak RSS, for
 * bench/preload_bench.sh (a dependency-free /usr/bin/time -f '%e %M').
 *
 *   runwait [-e NAME=VALUE]... [-u NAME]... [-C DIR] [-i IN] [-o OUT]
 *           [-E ERR] [-t SECONDS] -- COMMAND [ARG...]
 *
 * The environment changes (-e sets, -u unsets), the directory and the
 * redirections apply to the child only, so a LD_PRELOAD given with -e
 * affects the command and everything it runs, never runwait itself.
 * The child runs in its own process group; after -t SECONDS the whole
 * group is killed, and so it is when runwait gets SIGINT, SIGTERM or
 * SIGHUP (which it then re-raises).
 *
 * Prints one line on stdout: "WALL_SECONDS MAXRSS_KIB CPU_SECONDS STATUS"
 * where WALL_SECONDS runs from just before fork() to the return of wait4()
 * (CLOCK_MONOTONIC), MAXRSS_KIB is ru_maxrss from wait4(): the largest
 * peak resident set of the child and of the descendants it waited for
 * (the same figure as GNU time's %M), CPU_SECONDS is user + system time
 * of the same processes, and STATUS is "ok", "exit=N", "signal=N" or
 * "timeout".  Exit status: 0 if the command exited 0, 1
 * otherwise, 2 on a usage or setup error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAXENV 64

static void usage(void)
{
	fprintf(stderr, "usage: runwait [-e NAME=VALUE]... [-u NAME]... [-C DIR] [-i IN] [-o OUT] "
			"[-E ERR] [-t SECONDS] -- COMMAND [ARG...]\n");
	exit(2);
}

static void redirect(const char *path, int fd, int flags)
{
	if (!path)
		return;
	int f = open(path, flags, 0644);
	if (f < 0 || dup2(f, fd) < 0) {
		fprintf(stderr, "runwait: %s: %s\n", path, strerror(errno));
		_exit(127);
	}
	close(f);
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static volatile sig_atomic_t timed_out, interrupted;
static void on_alarm(int sig)
{
	(void)sig;
	timed_out = 1;
}

/* The child has its own process group, so a ^C or a kill of the script
 * reaches runwait only: pass it on to the whole group. */
static void on_interrupt(int sig)
{
	interrupted = sig;
}

int main(int argc, char **argv)
{
	const char *setv[MAXENV], *unsetv[MAXENV];
	int nset = 0, nunset = 0, opt;
	const char *dir = NULL, *in = NULL, *out = NULL, *err = NULL;
	unsigned timeout = 0;
	while ((opt = getopt(argc, argv, "+e:u:C:i:o:E:t:")) != -1) {
		switch (opt) {
		case 'e':
			if (nset == MAXENV || !strchr(optarg, '='))
				usage();
			setv[nset++] = optarg;
			break;
		case 'u':
			if (nunset == MAXENV)
				usage();
			unsetv[nunset++] = optarg;
			break;
		case 'C': dir = optarg; break;
		case 'i': in = optarg; break;
		case 'o': out = optarg; break;
		case 'E': err = optarg; break;
		case 't': timeout = (unsigned)strtoul(optarg, NULL, 10); break;
		default: usage();
		}
	}
	if (optind >= argc)
		usage();

	struct sigaction sa = { .sa_handler = on_alarm };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, NULL); /* no SA_RESTART: wait4 returns EINTR */
	struct sigaction si = { .sa_handler = on_interrupt };
	sigemptyset(&si.sa_mask);
	sigaction(SIGINT, &si, NULL);
	sigaction(SIGTERM, &si, NULL);
	sigaction(SIGHUP, &si, NULL);

	fflush(NULL);
	double t0 = now();
	pid_t pid = fork();
	if (pid < 0) {
		perror("runwait: fork");
		return 2;
	}
	if (pid == 0) {
		setpgid(0, 0);
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGHUP, SIG_DFL);
		for (int i = 0; i < nunset; i++)
			unsetenv(unsetv[i]);
		for (int i = 0; i < nset; i++)
			putenv((char *)setv[i]);
		if (dir && chdir(dir) != 0) {
			fprintf(stderr, "runwait: cd %s: %s\n", dir, strerror(errno));
			_exit(127);
		}
		redirect(in, 0, O_RDONLY);
		redirect(out, 1, O_WRONLY | O_CREAT | O_TRUNC);
		redirect(err, 2, O_WRONLY | O_CREAT | O_TRUNC);
		execvp(argv[optind], argv + optind);
		fprintf(stderr, "runwait: %s: %s\n", argv[optind], strerror(errno));
		_exit(127);
	}
	setpgid(pid, pid); /* both sides, whichever runs first */
	if (timeout)
		alarm(timeout);
	int status;
	struct rusage ru;
	pid_t r;
	while ((r = wait4(pid, &status, 0, &ru)) < 0 && errno == EINTR) {
		if (timed_out || interrupted) {
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL);
		}
	}
	if (interrupted) {
		kill(-pid, SIGKILL);
		signal(interrupted, SIG_DFL);
		raise(interrupted);
		return 2;
	}
	double t1 = now();
	alarm(0);
	if (r < 0) {
		perror("runwait: wait4");
		return 2;
	}
	/* Anything the command left behind in its group goes too. */
	kill(-pid, SIGKILL);
	char st[32];
	if (timed_out)
		snprintf(st, sizeof(st), "timeout");
	else if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		snprintf(st, sizeof(st), "ok");
	else if (WIFEXITED(status))
		snprintf(st, sizeof(st), "exit=%d", WEXITSTATUS(status));
	else
		snprintf(st, sizeof(st), "signal=%d", WTERMSIG(status));
	double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
		     (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
	printf("%.3f %ld %.3f %s\n", t1 - t0, ru.ru_maxrss, cpu, st);
	return strcmp(st, "ok") == 0 ? 0 : 1;
}
