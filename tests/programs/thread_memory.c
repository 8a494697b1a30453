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

#include "rss_kib.h"

enum { THREADS = 4 };
static pthread_barrier_t started, counted;

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
			fprintf(stderr, "thread_memory: pthread_create failed\n");
			return 1;
		}
	pthread_barrier_wait(&started);
	long during = rss_kib();
	pthread_barrier_wait(&counted);
	if (before < 0 || during < 0) {
		fprintf(stderr, "thread_memory: cannot read VmRSS of /proc/self/status\n");
		return 1;
	}
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	printf("memory of %d threads: %ld KiB\n", THREADS, during - before);
	return 0;
}
