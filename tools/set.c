/*
 * set.c - `slabnotify set PID [--max SIZE] [--high SIZE]
 * [--fail-probability P] [--fail-interval N] [--fail-times N]
 * [--fail-min-size SIZE] [--fail-space SIZE]`: change a running
 * process's limits and fault injection, as writing memory.max does.
 *
 * Every value is checked here first, with the parsers `run` uses
 * (src/options.h): one bad value and nothing is sent (exit 2). The
 * process checks the request again (and that its page is still its own
 * and private) and applies it before it answers; this command returns
 * once it has, so the next allocation of the process obeys. "none" (or
 * "max") lifts a limit.
 */
#define _GNU_SOURCE
#include "slabnotify-tool.h"
#include "statpage_read.h"
#include "../src/options.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SET_WAIT_MS 3000

static int set_usage(const char *what, const char *arg)
{
	fprintf(stderr, "slabnotify set: %s%s%s\n", what, arg ? " " : "", arg ? arg : "");
	fprintf(stderr, "usage: slabnotify set PID [--max SIZE] [--high SIZE] [--fail-probability P]\n"
			"         [--fail-interval N] [--fail-times N] [--fail-min-size SIZE] [--fail-space SIZE]\n");
	return EXIT_USAGE;
}

static bool parse_limit(const char *v, uint64_t *out)
{
	size_t s;
	if (v && (strcmp(v, "none") == 0 || strcmp(v, "max") == 0)) {
		*out = UINT64_MAX;
		return true;
	}
	if (!sn_parse_size(v, &s))
		return false;
	*out = s;
	return true;
}

/* One option and its value into @c; false if either is wrong. */
static bool parse_one(const char *opt, const char *v, struct sn_page_ctl *c, const char **expected)
{
	size_t sz = 0;
	long n = 0;
	if (strcmp(opt, "--max") == 0) {
		*expected = "a size such as 4096, 64K, 64M or 1.5G, or none";
		c->flags |= SN_CTL_MAX;
		return parse_limit(v, &c->max);
	}
	if (strcmp(opt, "--high") == 0) {
		*expected = "a size such as 4096, 64K, 64M or 1.5G, or none";
		c->flags |= SN_CTL_HIGH;
		return parse_limit(v, &c->high);
	}
	if (strcmp(opt, "--fail-probability") == 0) {
		*expected = "a percentage from 0 to 100";
		c->flags |= SN_CTL_FAIL_PROB;
		return sn_parse_percent(v, &c->fail_probability);
	}
	if (strcmp(opt, "--fail-interval") == 0) {
		*expected = "a positive integer";
		c->flags |= SN_CTL_FAIL_INT;
		bool ok = sn_parse_long(v, 1, LONG_MAX, &n);
		c->fail_interval = (uint64_t)n;
		return ok;
	}
	if (strcmp(opt, "--fail-times") == 0) {
		*expected = "an integer, -1 or more";
		c->flags |= SN_CTL_FAIL_TIMES;
		bool ok = sn_parse_long(v, -1, LONG_MAX, &n);
		c->fail_times = n;
		return ok;
	}
	if (strcmp(opt, "--fail-min-size") == 0 || strcmp(opt, "--fail-space") == 0) {
		*expected = "a size such as 4096, 64K, 64M or 1.5G";
		bool min = strcmp(opt, "--fail-min-size") == 0;
		c->flags |= min ? SN_CTL_FAIL_MIN : SN_CTL_FAIL_SPACE;
		bool ok = sn_parse_size(v, &sz);
		*(min ? &c->fail_min_size : &c->fail_space) = sz;
		return ok;
	}
	*expected = NULL;
	return false;
}

int cmd_set(int argc, char **argv)
{
	struct sn_page_ctl c = { 0 };
	const char *pid_arg = NULL;
	for (int i = 1; i < argc; i++) {
		if (argv[i][0] != '-') {
			if (pid_arg)
				return set_usage("unexpected argument", argv[i]);
			pid_arg = argv[i];
			continue;
		}
		char opt[64];
		const char *eq = strchr(argv[i], '='), *v;
		size_t len = eq ? (size_t)(eq - argv[i]) : strlen(argv[i]);
		if (len >= sizeof(opt))
			return set_usage("unknown option", argv[i]);
		memcpy(opt, argv[i], len);
		opt[len] = '\0';
		if (eq)
			v = eq + 1;
		else if (i + 1 < argc)
			v = argv[++i];
		else
			v = NULL;
		const char *expected;
		if (!parse_one(opt, v, &c, &expected)) {
			if (!expected)
				return set_usage("unknown option", opt);
			if (!v)
				return set_usage("missing the value of", opt);
			fprintf(stderr, "slabnotify set: invalid value '%s' for %s: expected %s\n", v, opt, expected);
			return EXIT_USAGE;
		}
	}
	if (!pid_arg)
		return set_usage("missing the PID", NULL);
	pid_t pid;
	if (tool_parse_pid("set", pid_arg, &pid))
		return EXIT_USAGE;
	if (!c.flags)
		return set_usage("nothing to set", NULL);
	int status = 0;
	enum sp_result r = sp_request(pid, &c, SET_WAIT_MS, &status);
	if (r != SP_OK)
		return tool_page_error("set", pid, r, NULL);
	if (status < 0) {
		fprintf(stderr, "slabnotify set: %d: the process refused the change: %s\n", (int)pid,
			strerror(-status));
		return status == -ESRCH ? EXIT_NO_PROCESS : 1;
	}
	return 0;
}
