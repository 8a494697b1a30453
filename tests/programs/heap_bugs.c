/*
 * heap_bugs.c - programs with planted heap bugs, for --debug and --guard
 * (tests/test_debug.sh). `heap_bugs BUG` plants BUG; `heap_bugs BUG
 * clean` runs the same steps without the faulty access, and prints the
 * same output: under --debug and --guard it must run clean.
 *
 * Each bug lives in a function of its own, so that the report's stacks
 * can be checked by name: make_block (the allocation), drop_block (the
 * free), and the function of the bug.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int clean;
static volatile char sink;

__attribute__((noinline)) static char *make_block(size_t n)
{
	char *p = malloc(n);
	if (!p) {
		perror("malloc");
		exit(1);
	}
	memset(p, 'a', n);
	return p;
}

__attribute__((noinline)) static void drop_block(char *p)
{
	free(p);
}

/* Other allocations, so that the freed block's slot is not the next. */
__attribute__((noinline)) static void churn(void)
{
	char *v[64];
	for (int i = 0; i < 64; i++)
		v[i] = make_block(16 + (size_t)i * 8);
	for (int i = 0; i < 64; i++)
		free(v[i]);
}

__attribute__((noinline)) static void overflow_one(void)
{
	char *p = make_block(24);
	if (!clean)
		p[24] = 'X';          /* one byte past the end */
	drop_block(p);
}

__attribute__((noinline)) static void underflow_one(void)
{
	char *p = make_block(24);
	if (!clean)
		p[-1] = 'X';          /* one byte before the start */
	drop_block(p);
}

__attribute__((noinline)) static void write_after_free(void)
{
	char *p = make_block(200);
	drop_block(p);
	churn();
	if (!clean)
		p[100] = 'X';         /* 100 bytes into the freed block */
}

__attribute__((noinline)) static void double_free(void)
{
	char *p = make_block(48);
	drop_block(p);
	churn();
	if (!clean)
		drop_block(p);
}

__attribute__((noinline)) static void read_after_free(void)
{
	char *p = make_block(40);
	char c = p[3];
	drop_block(p);
	if (!clean)
		c = p[3];             /* a read of the freed block */
	sink = c;
}

__attribute__((noinline)) static void read_overflow(void)
{
	char *p = make_block(40);
	char c = 0;
	/* Past the end by a page at most: the block's own page, or its guard. */
	for (int i = 0; i < (clean ? 40 : 4096 + 40); i++)
		c ^= p[i];
	sink = c;
	drop_block(p);
}

/* write_after_free, 40 calls deep: the stacks kept are the innermost 16. */
__attribute__((noinline)) static int descend(int n)
{
	if (n == 0) {
		write_after_free();
		return 0;
	}
	return descend(n - 1) + 1;   /* not a tail call: every level a frame */
}

__attribute__((noinline)) static void deep_write_after_free(void)
{
	sink = (char)descend(40);
}

static sigjmp_buf env;

static void own_handler(int sig)
{
	(void)sig;
	siglongjmp(env, 1);
}

/* The program's own SIGSEGV handler gets its own faults. */
__attribute__((noinline)) static void own_segv(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = own_handler;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, NULL);
	if (sigsetjmp(env, 1) == 0) {
		if (!clean)
			sink = *(volatile char *)16;   /* not slabnotify's memory */
		else
			siglongjmp(env, 1);
	}
	printf("own handler: caught\n");
	char *p = make_block(32);
	drop_block(p);
}

/* Not a bug: whether realloc within its class keeps the block. Under
 * --guard only guarded blocks move (this one is not: the program has
 * allocated before, so the countdown is past its first tick); under
 * --debug every block moves, so that a stale pointer is caught. */
__attribute__((noinline)) static void realloc_place(void)
{
	char *p = make_block(100);
	char *q = realloc(p, 110);
	if (!q) {
		perror("realloc");
		exit(1);
	}
	printf("realloc: %s\n", q == p ? "in place" : "moved");
	free(q);
}

/* Not a bug: blocks of no bytes are distinct and can be freed. A guarded
 * one placed at its page's end once pointed at the guard page after it,
 * and its free was refused as invalid (glibc's regcomp makes them). */
__attribute__((noinline)) static void zero_size(void)
{
	enum { N = 64 };
	char *p[N];
	for (int i = 0; i < N; i++) {
		p[i] = i & 1 ? malloc(0) : calloc(0, 8);
		if (!p[i]) {
			perror("malloc(0)");
			exit(1);
		}
	}
	int same = 0;
	for (int i = 0; i < N; i++)
		for (int j = 0; j < i; j++)
			same += p[i] == p[j];
	for (int i = 0; i < N; i++)
		free(p[i]);
	printf("zero-size: %d blocks, %d the same\n", N, same);
}

/* Not a bug: how many of the program's first blocks of each class are
 * guarded. A guarded block's usable size is the size asked for, a
 * class's block is rounded up to the class: each size here is one below
 * a class size. At 1 in 10^9, none should be: the classes the
 * drop-in's own start-up had used once guarded their next block each. */
size_t malloc_usable_size(void *p);    /* glibc's malloc.h, here not to move the lines above */

__attribute__((noinline)) static void count_guarded(void)
{
	static const size_t sizes[] = { 15, 31, 47, 63, 79, 95, 111, 127, 159, 191, 223, 255, 319, 383, 447, 511,
					639, 767, 895, 1023 };
	enum { N = sizeof(sizes) / sizeof(sizes[0]) };
	void *p[N];
	int guarded = 0;
	for (int i = 0; i < N; i++) {
		p[i] = malloc(sizes[i]);
		if (!p[i]) {
			perror("malloc");
			exit(1);
		}
		guarded += malloc_usable_size(p[i]) == sizes[i];
	}
	for (int i = 0; i < N; i++)
		free(p[i]);
	printf("count-guarded: %d of %d\n", guarded, (int)N);
}

int main(int argc, char **argv)
{
	if (argc == 2 && !strcmp(argv[1], "count-guarded")) {
		count_guarded();
		return 0;
	}
	if (argc == 2 && !strcmp(argv[1], "realloc-place")) {
		realloc_place();
		return 0;
	}
	if (argc == 2 && !strcmp(argv[1], "zero-size")) {
		zero_size();
		return 0;
	}
	static const struct { const char *name; void (*fn)(void); } bugs[] = {
		{ "overflow", overflow_one }, { "underflow", underflow_one },
		{ "write-after-free", write_after_free }, { "deep-write-after-free", deep_write_after_free },
		{ "double-free", double_free },
		{ "read-after-free", read_after_free }, { "read-overflow", read_overflow },
		{ "own-segv", own_segv },
	};
	if (argc < 2) {
		fprintf(stderr, "usage: heap_bugs BUG [clean]\n");
		return 2;
	}
	clean = argc > 2 && !strcmp(argv[2], "clean");
	for (size_t i = 0; i < sizeof(bugs) / sizeof(bugs[0]); i++)
		if (!strcmp(argv[1], bugs[i].name)) {
			printf("%s: start\n", bugs[i].name);
			fflush(stdout);
			bugs[i].fn();
			printf("%s: done\n", bugs[i].name);
			return 0;
		}
	fprintf(stderr, "heap_bugs: unknown bug %s\n", argv[1]);
	return 2;
}
