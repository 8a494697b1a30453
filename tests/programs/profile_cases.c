/*
 * profile_cases.c - programs with known allocation patterns, for the
 * heap profile's figures (tests/test_profile.sh). Every planted function
 * is noinline, so that it is a frame of its own.
 *
 *   ten        ten malloc(100) dropped, and a line printed (stdout's buffer)
 *   big        malloc(100 MiB), touch a page, free, exit
 *   pattern    peak owner peak_owner_fn (8 MiB live at the peak, with
 *              small_fn's 1000 x 64), hot_fn 5000 calls of 32 bytes
 *              freed at once (temporary), leak_fn 3 x 300 leaked
 *   churn N S  N allocations of S bytes by churn_fn, each freed at once;
 *              then N/10 of S bytes kept by keep_fn (leaked)
 *   thread-exit  a thread leaks 2 x 300 by leak_fn, then calls exit(0)
 *              while main waits
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PLANT __attribute__((noinline))
#define KEEP(p) __asm__ volatile("" : : "g"(p) : "memory")

PLANT char *leak_fn(void) { char *p = malloc(300); KEEP(p); return p; }
PLANT char *peak_owner_fn(size_t n) { char *p = malloc(n); memset(p, 1, 4096); KEEP(p); return p; }
PLANT char *small_fn(void) { char *p = malloc(64); KEEP(p); return p; }
PLANT void hot_fn(void) { char *p = malloc(32); KEEP(p); free(p); }
PLANT char *ten_fn(void) { char *p = malloc(100); KEEP(p); return p; }
PLANT void churn_fn(size_t s) { char *p = malloc(s); KEEP(p); free(p); }
PLANT char *keep_fn(size_t s) { char *p = malloc(s); KEEP(p); return p; }

static int pattern(void)
{
	static char *small[1000];
	for (int i = 0; i < 1000; i++)
		small[i] = small_fn();
	char *big = peak_owner_fn(8 << 20);
	free(big);
	for (int i = 0; i < 1000; i++)
		free(small[i]);
	for (int i = 0; i < 5000; i++)
		hot_fn();
	for (int i = 0; i < 3; i++)
		leak_fn();
	return 0;
}

static void *exit_from_thread(void *arg)
{
	(void)arg;
	leak_fn();
	leak_fn();
	exit(0);
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";
	if (!strcmp(mode, "ten")) {
		for (int i = 0; i < 10; i++)
			ten_fn();
		printf("ten leaked\n");
	} else if (!strcmp(mode, "big")) {
		char *p = malloc(100 << 20);
		if (!p)
			return 1;
		memset(p, 1, 4096);
		KEEP(p);
		free(p);
	} else if (!strcmp(mode, "pattern")) {
		return pattern();
	} else if (!strcmp(mode, "thread-exit")) {
		pthread_t t;
		if (pthread_create(&t, NULL, exit_from_thread, NULL) != 0)
			return 1;
		pthread_join(t, NULL);
		return 3;    /* never: the thread exits the process */
	} else if (!strcmp(mode, "churn") && argc > 3) {
		long n = atol(argv[2]);
		size_t s = (size_t)atol(argv[3]);
		for (long i = 0; i < n; i++)
			churn_fn(s);
		for (long i = 0; i < n / 10; i++)
			keep_fn(s);
	} else {
		fprintf(stderr, "usage: profile_cases ten|big|pattern|churn N SIZE\n");
		return 2;
	}
	return 0;
}
