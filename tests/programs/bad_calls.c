/*
 * bad_calls.c - a program that misuses the allocator on purpose, one way
 * per argument, for test_dropin_misuse.sh. Under the drop-in, each must
 * abort with one line that names the function the program called.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern void *__libc_malloc(size_t);

static void *volatile sink;

int main(int argc, char **argv)
{
	const char *what = argc > 1 ? argv[1] : "";
	if (!strcmp(what, "double-free")) {
		char *p = malloc(40), *q = malloc(40);
		free(p);
		free(q);
		free(p);
	} else if (!strcmp(what, "realloc-interior")) {
		char *p = malloc(100);
		sink = realloc(p + 16, 200);
	} else if (!strcmp(what, "usable-interior")) {
		char *p = malloc(100);
		printf("%zu\n", malloc_usable_size(p + 8));
	} else if (!strcmp(what, "large-double-free")) {
		char *p = malloc(1 << 20);
		free(p);
		free(p);
	} else if (!strcmp(what, "glibc-pointer")) {
		/* As a library loaded with RTLD_DEEPBIND would: glibc's malloc. */
		void *p = __libc_malloc(64);
		free(p);
	} else if (!strcmp(what, "aligned")) {
		/* Large alignments work (huge pages want 2 MiB). */
		static const size_t al[] = { 1u << 21, 1u << 22, 1u << 26 };
		for (int i = 0; i < 3; i++) {
			void *p = NULL;
			if (posix_memalign(&p, al[i], 100) || (uintptr_t)p % al[i]) {
				printf("posix_memalign(%zu) failed\n", al[i]);
				return 1;
			}
			free(p);
			p = memalign(al[i], 5000);
			if (!p || (uintptr_t)p % al[i]) {
				printf("memalign(%zu) failed\n", al[i]);
				return 1;
			}
			free(p);
			p = aligned_alloc(al[i], al[i]);
			if (!p || (uintptr_t)p % al[i]) {
				printf("aligned_alloc(%zu) failed\n", al[i]);
				return 1;
			}
			free(p);
		}
		void *p;
		printf("bad alignment: %d\n", posix_memalign(&p, 24, 10));
		printf("ok\n");
		return 0;
	} else if (!strcmp(what, "impossible")) {
		errno = 0;
		void *p = malloc((size_t)1 << 40), *q = calloc(1, (size_t)1 << 40);
		printf("malloc(1T)=%s calloc(1T)=%s errno=%d\n", p ? "ptr" : "NULL", q ? "ptr" : "NULL", errno);
		return 0;
	}
	return 0;
}
