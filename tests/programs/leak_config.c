/*
 * leak_config.c - a leak in a function whose name begins like one of
 * slabnotify's (leak_): the report must name leak_config, not main. And
 * ten malloc(100) dropped, for the requested-bytes figures.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((noinline)) char *leak_config(int i);
__attribute__((noinline)) char *leak_config(int i)
{
	char *p = malloc(100);
	if (p)
		memset(p, i, 100);
	__asm__ volatile("" : : "g"(p) : "memory");
	return p;
}

int main(void)
{
	for (int i = 0; i < 10; i++)
		leak_config(i);   /* dropped */
	printf("done\n");
	return 0;
}
