/*
 * spawn_fork.c - threads started while the main thread forks.
 *
 * Two spawners start short-lived threads one after another; each new
 * thread's first steps (under the drop-in: touching the unwinder's
 * thread-local data, which allocates) overlap the main thread's forks.
 * Every child allocates, checks and exits. Prints a fixed summary.
 * Build: cc -O2 -pthread spawn_fork.c
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define NFORK 200

static atomic_bool done;
static atomic_long started;

static void *short_lived(void *arg)
{
	(void)arg;
	char *p = malloc(64);
	if (!p)
		abort();
	memset(p, 0x5a, 64);
	free(p);
	atomic_fetch_add(&started, 1);
	return NULL;
}

static void *spawner(void *arg)
{
	(void)arg;
	while (!atomic_load(&done)) {
		pthread_t t;
		if (pthread_create(&t, NULL, short_lived, NULL) == 0)
			pthread_join(t, NULL);
	}
	return NULL;
}

int main(void)
{
	pthread_t s[2];
	for (int i = 0; i < 2; i++)
		if (pthread_create(&s[i], NULL, spawner, NULL))
			return 1;
	int ok = 0;
	for (int i = 0; i < NFORK; i++) {
		pid_t pid = fork();
		if (pid == 0) {
			char *p = malloc(100);
			_exit(p && memset(p, 1, 100) == p ? 0 : 1);
		}
		int st;
		if (pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0)
			ok++;
	}
	atomic_store(&done, true);
	for (int i = 0; i < 2; i++)
		pthread_join(s[i], NULL);
	printf("children: %d of %d ok, threads started: %s\n", ok, NFORK,
	       atomic_load(&started) > 0 ? "some" : "none");
	return ok == NFORK ? 0 : 1;
}
