/*
 * idle_owner.c - the main thread fills 8 MiB of 512-byte blocks and
 * stops allocating; another thread frees them all. Prints how much the
 * resident set grew from before the blocks to after their frees, in KiB:
 * the pages of slabs emptied by remote frees go back though their owner
 * is idle (issue 9; it was the whole 8 MiB).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rss_kib.h"

#define N 16384
static void *blocks[N];

static void *free_all(void *arg)
{
	for (int i = 0; i < N; i++)
		free(blocks[i]);
	return arg;
}

int main(void)
{
	long before = rss_kib();
	for (int i = 0; i < N; i++) {
		blocks[i] = malloc(512);
		if (!blocks[i])
			return 2;
		memset(blocks[i], 0x5a, 512);
	}
	pthread_t t;
	if (pthread_create(&t, NULL, free_all, NULL))
		return 3;
	pthread_join(t, NULL);
	printf("grew %ld KiB\n", rss_kib() - before);
	return 0;
}
