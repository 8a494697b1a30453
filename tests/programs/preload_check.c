/*
 * preload_check.c - is the slabnotify drop-in serving this process?
 * Prints "usable=N maps=M": N is malloc_usable_size(malloc(100)), 112
 * with slabnotify's size classes (kmalloc-112) where glibc says 104; M
 * is 1 if libslabnotify-malloc is mapped, 0 if not.
 */
#define _GNU_SOURCE
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int mapped(const char *name)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[4096];
	int found = 0;
	if (!f)
		return -1;
	while (!found && fgets(line, sizeof(line), f))
		found = strstr(line, name) != NULL;
	fclose(f);
	return found;
}

int main(void)
{
	void *p = malloc(100);
	if (!p)
		return 1;
	printf("usable=%zu maps=%d\n", malloc_usable_size(p),
	       mapped("libslabnotify-malloc"));
	free(p);
	return 0;
}
