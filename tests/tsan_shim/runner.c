/*
 * runner.c - main() of the TSan stand-in for Criterion (see criterion.h).
 * Runs each registered test in a forked child, checks how it ended
 * against .signal/.exit_code, enforces .timeout (default 300 s), and
 * prints Criterion's synthesis line. Exit status 0 only if all passed.
 */
#include "criterion/criterion.h"

#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static struct sn_shim_test *tests, **tests_tail = &tests;
static struct sn_shim_suite *suites;
static const struct sn_shim_test *current;

void sn_shim_register(struct sn_shim_test *t)
{
	*tests_tail = t;
	tests_tail = &t->next;
}

void sn_shim_register_suite(struct sn_shim_suite *s)
{
	s->next = suites;
	suites = s;
}

void sn_shim_fail(const char *file, int line, const char *expr, const char *fmt, ...)
{
	fprintf(stderr, "[----] %s:%d: Assertion Failed: %s\n[----]   ", file, line, expr);
	va_list ap;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	fflush(stderr);
	_exit(1);
}

void sn_shim_log(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "[----] %s::%s: ", current ? current->suite : "?", current ? current->name : "?");
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
}

static const struct criterion_test_extra_data *suite_of(const struct sn_shim_test *t)
{
	for (struct sn_shim_suite *s = suites; s; s = s->next)
		if (!strcmp(s->name, t->suite))
			return s->data;
	return NULL;
}

/* Test options, falling back to the suite's. */
static struct criterion_test_extra_data options(const struct sn_shim_test *t)
{
	struct criterion_test_extra_data d = *t->data;
	const struct criterion_test_extra_data *s = suite_of(t);
	if (s) {
		if (!d.init) d.init = s->init;
		if (!d.fini) d.fini = s->fini;
		if (!d.signal) d.signal = s->signal;
		if (!d.timeout) d.timeout = s->timeout;
		if (s->disabled) d.disabled = true;
	}
	return d;
}

static void run_child(const struct sn_shim_test *t, const struct criterion_test_extra_data *d)
{
	current = t;
	if (d->init)
		d->init();
	t->fn();
	if (d->fini)
		d->fini();
	fflush(NULL);
	exit(0);
}

/* 0 passed, 1 failed, 2 crashed. */
static int run_one(const struct sn_shim_test *t)
{
	struct criterion_test_extra_data d = options(t);
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		alarm((unsigned)(d.timeout > 0 ? d.timeout : 300));
		run_child(t, &d);
	}
	int st = 0;
	waitpid(pid, &st, 0);
	bool ok;
	if (d.signal)
		ok = WIFSIGNALED(st) && WTERMSIG(st) == d.signal;
	else
		ok = WIFEXITED(st) && WEXITSTATUS(st) == d.exit_code;
	if (ok) {
		printf("[PASS] %s::%s\n", t->suite, t->name);
		return 0;
	}
	if (WIFSIGNALED(st)) {
		printf("[FAIL] %s::%s: CRASH (signal %d)\n", t->suite, t->name, WTERMSIG(st));
		return 2;
	}
	printf("[FAIL] %s::%s: exit status %d\n", t->suite, t->name, WEXITSTATUS(st));
	return 1;
}

int main(int argc, char **argv)
{
	(void)argc;
	(void)argv;   /* Criterion's --jobs/--timeout are accepted and ignored */
	setvbuf(stdout, NULL, _IOLBF, 0);
	int counts[3] = { 0, 0, 0 }, n = 0;
	for (const struct sn_shim_test *t = tests; t; t = t->next) {
		if (options(t).disabled)
			continue;
		counts[run_one(t)]++;
		n++;
	}
	printf("[====] Synthesis: Tested: %d | Passing: %d | Failing: %d | Crashing: %d \n", n,
	       counts[0], counts[1] + counts[2], counts[2]);
	return counts[1] + counts[2] ? 1 : 0;
}
