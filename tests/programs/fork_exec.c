/*
 * fork_exec.c - three processes, each of which should write its own
 * report: this one, a child that exits normally (destructors run) and
 * a child that execs /bin/true (a fresh image loads the preload again).
 * Prints the three pids, one a line, for the test to match file names.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static pid_t spawn(int do_exec)
{
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0) {
		perror("fork");
		exit(1);
	}
	if (pid == 0) {
		if (do_exec) {
			execl("/bin/true", "true", (char *)NULL);
			_exit(127);
		}
		free(malloc(1000)); /* some allocation of its own */
		exit(0);
	}
	return pid;
}

static int wait_ok(pid_t pid)
{
	int st;
	return waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

int main(void)
{
	char *p = malloc(64);
	pid_t a = spawn(0), b = spawn(1);
	int ok = wait_ok(a) & wait_ok(b);
	printf("%d\n%d\n%d\n", (int)getpid(), (int)a, (int)b);
	free(p);
	return ok ? 0 : 1;
}
