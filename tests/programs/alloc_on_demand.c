/*
 * alloc_on_demand.c - a program that allocates when told, for the tests of
 * the commands on running processes (test_live.sh). One command per line
 * on stdin, one answer per line on stdout (flushed):
 *   a SIZE [N]  malloc(SIZE) N times (default 1): "ok" or "fail K" (K failed)
 *   f           free everything allocated so far: "freed"
 *   t           malloc_trim(0): empty slabs go back: "trimmed"
 *   q           exit 0
 * With a FILE argument, the commands come from FILE (for gdb, which then
 * needs no shell to redirect). It reads with read(2) and answers with write(2): between commands it
 * allocates nothing of its own, so that its figures stay still while a
 * test reads them.
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

static void *blocks[100000];
static size_t nblocks;

static void say(const char *s)
{
	ssize_t r = write(1, s, strlen(s));
	(void)r;
}

static int read_line(char *buf, size_t cap)
{
	size_t n = 0;
	while (n + 1 < cap) {
		char c;
		ssize_t r = read(0, &c, 1);
		if (r <= 0)
			return n ? (int)n : -1;
		if (c == '\n')
			break;
		buf[n++] = c;
	}
	buf[n] = '\0';
	return (int)n;
}

int main(int argc, char **argv)
{
	char line[128], out[64];
	if (argc > 1) {
		int fd = open(argv[1], O_RDONLY);
		if (fd < 0 || dup2(fd, 0) < 0)
			return 2;
	}
	while (read_line(line, sizeof(line)) >= 0) {
		if (line[0] == 'q')
			return 0;
		if (line[0] == 'f') {
			for (size_t i = 0; i < nblocks; i++)
				free(blocks[i]);
			nblocks = 0;
			say("freed\n");
			continue;
		}
		if (line[0] == 't') {
			malloc_trim(0);
			say("trimmed\n");
			continue;
		}
		unsigned long size = 0, count = 1;
		if (sscanf(line, "a %lu %lu", &size, &count) < 1) {
			say("?\n");
			continue;
		}
		unsigned long failed = 0;
		for (unsigned long i = 0; i < count; i++) {
			void *p = malloc(size);
			if (!p)
				failed++;
			else if (nblocks < sizeof(blocks) / sizeof(blocks[0]))
				blocks[nblocks++] = p;
		}
		if (failed)
			snprintf(out, sizeof(out), "fail %lu\n", failed);
		else
			snprintf(out, sizeof(out), "ok\n");
		say(out);
	}
	return 0;
}
