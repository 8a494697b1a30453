/*
 * fail_indices.c - deterministic malloc sequence for fault injection:
 * 2000 mallocs of sizes from a fixed LCG, all freed; prints the indices
 * whose malloc returned NULL, then the count. Output goes through a
 * static buffer and write(2), not stdio, so that printing allocates
 * nothing and cannot itself be failed.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define N 2000

static char out[64 * 1024];
static size_t used;

static void emit(const char *s)
{
	size_t n = strlen(s);
	if (used + n < sizeof(out)) {
		memcpy(out + used, s, n);
		used += n;
	}
}

int main(void)
{
	static void *blocks[N];
	uint32_t x = 12345;
	int failed = 0;
	char line[32];

	for (int i = 0; i < N; i++) {
		x = x * 1103515245u + 12345u;
		size_t size = 16 + (x >> 16) % 2000;
		blocks[i] = malloc(size);
		if (!blocks[i]) {
			snprintf(line, sizeof(line), "%d ", i);
			emit(line);
			failed++;
		}
	}
	for (int i = 0; i < N; i++)
		free(blocks[i]);
	snprintf(line, sizeof(line), "\nfailed %d of %d\n", failed, N);
	emit(line);
	return write(1, out, used) == (ssize_t)used ? 0 : 1;
}
