/*
 * fail_threads.c - four threads, created in a fixed order, each making
 * OPS malloc/free calls; prints how many of each thread's mallocs failed.
 * Under fault injection with a fixed seed the line is the same on every
 * run, whatever the interleaving (per-thread streams).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define NT 4
#define OPS 200000

static unsigned long failed[NT];

static void *worker(void *arg)
{
	unsigned long *f = arg;
	for (int i = 0; i < OPS; i++) {
		void *p = malloc(16 + (size_t)(i % 200));
		if (!p)
			(*f)++;
		free(p);
	}
	return NULL;
}

int main(void)
{
	pthread_t t[NT];
	for (int i = 0; i < NT; i++)
		pthread_create(&t[i], NULL, worker, &failed[i]);
	for (int i = 0; i < NT; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < NT; i++)
		printf("%s%lu", i ? " " : "", failed[i]);
	printf("\n");
	return 0;
}
