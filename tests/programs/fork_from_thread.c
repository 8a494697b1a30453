/*
 * fork_from_thread.c - six threads churn malloc/realloc/free while a
 * seventh forks; each child allocates, starts a thread of its own, then
 * execs /bin/true. Under fault injection any allocation may fail: the
 * program copes with NULL. It must always finish (a hang is a lock held
 * across fork, in the parent or the child).
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define NCHURN 6
#define NFORK 20
#define OPS 60000

static volatile int stop;

static void *churn(void *arg)
{
	uint64_t s = (uintptr_t)arg * 0x9e3779b97f4a7c15ULL + 1;
	void *slot[256] = { 0 };
	for (int i = 0; i < OPS && !stop; i++) {
		s ^= s << 13, s ^= s >> 7, s ^= s << 17;
		int k = (int)(s % 256);
		size_t n = 8 + (s >> 20) % 3000;
		if (!slot[k]) {
			slot[k] = malloc(n);
		} else if (s & 0x100) {
			void *q = realloc(slot[k], n);
			if (q)
				slot[k] = q;
		} else {
			free(slot[k]);
			slot[k] = NULL;
		}
		if (slot[k])
			memset(slot[k], 1, 8);
	}
	for (int k = 0; k < 256; k++)
		free(slot[k]);
	return NULL;
}

static void *child_thread(void *arg)
{
	free(malloc(100));
	return arg;
}

static void *forker(void *arg)
{
	(void)arg;
	for (int i = 0; i < NFORK; i++) {
		pid_t pid = fork();
		if (pid == 0) {
			void *p = malloc(1000);
			free(p);
			pthread_t t;
			if (pthread_create(&t, NULL, child_thread, NULL) == 0)
				pthread_join(t, NULL);
			execl("/bin/true", "true", (char *)NULL);
			_exit(127);
		}
		if (pid > 0)
			waitpid(pid, NULL, 0);
	}
	return NULL;
}

int main(void)
{
	pthread_t t[NCHURN + 1];
	int made = 0;
	for (int i = 0; i < NCHURN; i++)
		if (pthread_create(&t[made], NULL, churn, (void *)(uintptr_t)(i + 1)) == 0)
			made++;
	int forked = pthread_create(&t[made], NULL, forker, NULL) == 0;
	if (forked)
		pthread_join(t[made], NULL);
	for (int i = 0; i < made; i++)
		pthread_join(t[i], NULL);
	printf("done\n");
	return 0;
}
