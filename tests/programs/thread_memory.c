/*
 * thread_memory.c - the memory a thread costs: four threads, each
 * allocating once, are held alive while the main thread reads how much
 * its resident memory grew since it started them (libunwind's
 * per-thread trace cache is 256 KiB of it). Prints
 * "memory of 4 threads: N KiB".
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { THREADS = 4 };
static pthread_barrier_t started, counted;

static long rss_kib(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	if (!f) {
		perror("/proc/self/status");
		exit(1);
	}
	char line[256];
	long kib = -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

static void *worker(void *arg)
{
	(void)arg;
	free(malloc(100));
	pthread_barrier_wait(&started);
	pthread_barrier_wait(&counted);
	return NULL;
}

int main(void)
{
	pthread_t t[THREADS];
	pthread_barrier_init(&started, NULL, THREADS + 1);
	pthread_barrier_init(&counted, NULL, THREADS + 1);
	long before = rss_kib();
	for (int i = 0; i < THREADS; i++)
		if (pthread_create(&t[i], NULL, worker, NULL)) {
			fprintf(stderr, "thread_maps: pthread_create failed\n");
			return 1;
		}
	pthread_barrier_wait(&started);
	long during = rss_kib();
	pthread_barrier_wait(&counted);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	printf("memory of %d threads: %ld KiB\n", THREADS, during - before);
	return 0;
}
