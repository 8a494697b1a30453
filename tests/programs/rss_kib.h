/*
 * rss_kib.h - the test programs' reading of their own resident set:
 * VmRSS of /proc/self/status, in KiB, or -1 when it cannot be read.
 */
#ifndef TESTS_PROGRAMS_RSS_KIB_H
#define TESTS_PROGRAMS_RSS_KIB_H

#include <stdio.h>

static long rss_kib(void)
{
	char line[256];
	long kib = -1;
	FILE *f = fopen("/proc/self/status", "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

#endif
