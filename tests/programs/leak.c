/*
 * leak.c - a planted leak for the leak report: fixture_leaky_loader()
 * allocates 16 blocks of 1000 bytes and drops them. Global and noinline
 * so that its frame is on the allocation stack and its name in the
 * symbol table. Everything else is freed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((noinline)) int fixture_leaky_loader(int n);
__attribute__((noinline)) int fixture_leaky_loader(int n)
{
	int made = 0;
	for (int i = 0; i < n; i++) {
		char *p = malloc(1000);
		if (!p)
			break;
		memset(p, i, 1000);
		__asm__ volatile("" : : "g"(p) : "memory"); /* keep the malloc */
		made++;
	}
	return made; /* the blocks are dropped here */
}

int main(void)
{
	char *ok = malloc(4000); /* freed: must not be reported */
	int n = fixture_leaky_loader(16);
	free(ok);
	printf("leaked %d blocks\n", n);
	return 0;
}
