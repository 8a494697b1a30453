/*
 * report_cases.c - ways a program ends, for test_reports.sh: each under
 * the drop-in must still get its report (for _exit and _Exit and fatal
 * signals, the summary), and a vfork child, which shares its parent's
 * memory, none.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void *volatile sink;

int main(int argc, char **argv)
{
	const char *what = argc > 1 ? argv[1] : "";
	sink = malloc(1000);
	if (!strcmp(what, "close-stderr")) {        /* as gnulib's close_stdout */
		fclose(stderr);
		return 0;
	}
	if (!strcmp(what, "at-cap")) {              /* ends with the cap reached */
		size_t n = 0;
		while (malloc(64 * 1024))
			n++;
		printf("%zu blocks\n", n);
		return 0;
	}
	if (!strcmp(what, "chdir"))                 /* as git -C does */
		return chdir(argc > 2 ? argv[2] : "/") != 0;
	if (!strcmp(what, "abort")) {
		while (malloc(64 * 1024))
			;
		abort();                            /* a program giving up at the cap */
	}
	if (!strcmp(what, "segv"))
		raise(SIGSEGV);
	if (!strcmp(what, "_exit"))
		_exit(3);                           /* no exit handlers: the drop-in's summary */
	if (!strcmp(what, "_Exit"))
		_Exit(4);
	if (!strcmp(what, "fork-_exit") || !strcmp(what, "vfork-_exit")) {
		int status;
		pid_t pid = what[0] == 'v' ? vfork() : fork();
		if (pid == 0)
			_exit(5);                   /* a fork child reports; a vfork child must not */
		if (pid < 0 || waitpid(pid, &status, 0) != pid)
			return 1;
		printf("child %d\n", WEXITSTATUS(status));
		return 0;
	}
	return 0;
}
