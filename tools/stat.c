/*
 * stat.c - `slabnotify stat PID [--json | --prometheus]`: a running
 * process's live stats page, once, freshly published (the process is
 * asked and answers at once; a stopped one gives the figures it last
 * published, said on stderr). The text is the end-of-run report's
 * summary with the slabinfo rows and the memory groups; JSON has the
 * report's keys (docs/slabnotify.1); --prometheus is what the exporter
 * serves for the process.
 */
#define _GNU_SOURCE
#include "metrics.h"
#include "slabnotify-tool.h"
#include "statpage_read.h"
#include "../src/consumers/json.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define STAT_WAIT_MS 2000

int tool_parse_pid(const char *cmd, const char *s, pid_t *out)
{
	char *end;
	long v = strtol(s ? s : "", &end, 10);
	if (!s || !*s || *end || v <= 0 || v > INT32_MAX) {
		fprintf(stderr, "slabnotify %s: '%s' is not a process id\n", cmd, s ? s : "");
		return EXIT_USAGE;
	}
	*out = (pid_t)v;
	return 0;
}

int tool_page_error(const char *cmd, pid_t pid, int r, const char *why)
{
	fprintf(stderr, "slabnotify %s: %d: %s%s%s\n", cmd, (int)pid, sp_reason(r), why && *why ? ": " : "",
		why ? why : "");
	return sp_exit_status(r);
}

static void limit_text(char *out, size_t cap, uint64_t v)
{
	if (v == UINT64_MAX)
		snprintf(out, cap, "none");
	else
		fmt_size(out, cap, v);
}

static void print_summary(FILE *f, const struct sn_page *p)
{
	const struct sn_page_summary *s = &p->sum;
	char a[64], b[64], c[64], d[64];
	fprintf(f, "==%d== slabnotify stat: %s\n", (int)p->pid, p->command[0] ? p->command : "?");
	limit_text(a, sizeof(a), s->max);
	limit_text(b, sizeof(b), s->high);
	fprintf(f, "slabnotify: limits: max %s, high %s", a, b);
	if (s->flags & SN_SUM_FAULTS) {
		fprintf(f, "; fault injection: %g%% of allocations, seed %" PRIu64, s->fail_probability, s->fail_seed);
		if (s->fail_interval > 1)
			fprintf(f, ", every %" PRIu64 "th", s->fail_interval);
		if (s->fail_times >= 0)
			fprintf(f, ", at most %" PRId64 " times", s->fail_times);
		if (s->fail_min_size)
			fprintf(f, ", from %" PRIu64 " bytes", s->fail_min_size);
	}
	fmt_size(a, sizeof(a), s->heap_bytes);
	fmt_size(b, sizeof(b), s->heap_peak_bytes);
	fmt_size(c, sizeof(c), s->rss_bytes);
	fmt_size(d, sizeof(d), s->rss_peak_bytes);
	fprintf(f, "\nslabnotify: heap: %s in use, peak %s (slab pages and large blocks); RSS %s, peak %s\n",
		a, b, c, d);
	if ((s->flags & SN_SUM_MEMCG) && s->nr_groups) {
		const struct sn_page_group *g = &p->groups[0];
		fmt_size(a, sizeof(a), g->usage);
		fmt_size(b, sizeof(b), g->peak);
		fprintf(f, "slabnotify: memory group: usage %s, peak %s; %" PRIu64 " max events, %" PRIu64
			   " failed charges, %" PRIu64 " high events, %" PRIu64 " ms throttled\n",
			a, b, g->events_max, g->failcnt, g->events_high, g->throttled_us / 1000);
	}
	fprintf(f, "slabnotify: vetoes: %" PRIu64 " failslab, %" PRIu64 " memcg, %" PRIu64 " total\n",
		s->vetoes_failslab, s->vetoes_memcg, s->vetoes_failslab + s->vetoes_memcg);
	if (s->flags & SN_SUM_LEAKS) {
		fmt_size(a, sizeof(a), s->leak_tracked_bytes);
		fmt_size(b, sizeof(b), s->leak_tracked_peak_bytes);
		fprintf(f, "slabnotify: leak tracker: %s live, peak %s (1 in %" PRIu64 " sampled)\n", a, b,
			s->leak_sample);
	}
}

static void print_slabinfo(FILE *f, const struct sn_page *p)
{
	fprintf(f, "slabinfo - version: 2.1\n");
	fprintf(f, "# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab>"
		   " : tunables <limit> <batchcount> <sharedfactor>"
		   " : slabdata <active_slabs> <num_slabs> <sharedavail>\n");
	for (uint64_t i = 0; i < p->sum.nr_caches; i++) {
		const struct sn_page_cache *c = &p->caches[i];
		fprintf(f, "%-17s %6" PRIu64 " %6" PRIu64 " %6" PRIu64 " %4" PRIu64 " %4" PRIu64
			   " : tunables %4u %4u %4u : slabdata %6" PRIu64 " %6" PRIu64 " %6u\n",
			c->name, c->active_objs, c->num_objs, c->size, c->objs_per_slab, c->slab_bytes / 4096,
			0u, 0u, 0u, c->active_slabs, c->num_slabs, 0u);
	}
	if (p->sum.nr_caches_total > p->sum.nr_caches)
		fprintf(f, "# %" PRIu64 " more caches not on the page\n", p->sum.nr_caches_total - p->sum.nr_caches);
}

static void lim_cg(FILE *f, const char *key, uint64_t v)
{
	if (v == UINT64_MAX)
		fprintf(f, "  %-16s max\n", key);
	else
		fprintf(f, "  %-16s %" PRIu64 "\n", key, v);
}

static void print_groups(FILE *f, const struct sn_page *p)
{
	for (uint64_t i = 0; i < p->sum.nr_groups; i++) {
		const struct sn_page_group *g = &p->groups[i];
		fprintf(f, "%s\n", g->path);
		lim_cg(f, "memory.current", g->usage);
		lim_cg(f, "memory.peak", g->peak);
		lim_cg(f, "memory.max", g->max);
		lim_cg(f, "memory.high", g->high);
		fprintf(f, "  %-16s high %" PRIu64 " max %" PRIu64 " fail %" PRIu64 " nofail %" PRIu64 "\n",
			"memory.events", g->events_high, g->events_max, g->failcnt, g->events_nofail);
	}
}

static void json_lim(FILE *f, const char *key, uint64_t v)
{
	if (v == UINT64_MAX)
		fprintf(f, "\"%s\":null", key);
	else
		fprintf(f, "\"%s\":%" PRIu64, key, v);
}

static void print_json(FILE *f, const struct sn_page *p)
{
	const struct sn_page_summary *s = &p->sum;
	fprintf(f, "{\"pid\":%d,\"command\":", (int)p->pid);
	json_string(f, p->command);
	fprintf(f, ",\"start_time\":%" PRId64 ",\"published_ns\":%" PRId64 ",\"exited\":%s,\"limits\":{",
		p->start_time, p->published_ns, (s->flags & SN_SUM_EXITED) ? "true" : "false");
	json_lim(f, "max", s->max);
	fputc(',', f);
	json_lim(f, "high", s->high);
	if (s->flags & SN_SUM_FAULTS)
		fprintf(f, ",\"fault_probability\":%g,\"fault_seed\":%" PRIu64, s->fail_probability, s->fail_seed);
	fprintf(f, "},\"summary\":{\"in_use_bytes\":%" PRIu64 ",\"peak_bytes\":%" PRIu64 ",\"large_bytes\":%" PRIu64
		   ",\"rss_bytes\":%" PRIu64 ",\"peak_rss_bytes\":%" PRIu64 "}",
		s->heap_bytes, s->heap_peak_bytes, s->large_bytes, s->rss_bytes, s->rss_peak_bytes);
	fprintf(f, ",\"vetoes\":{\"failslab\":%" PRIu64 ",\"memcg\":%" PRIu64 "}", s->vetoes_failslab, s->vetoes_memcg);
	fprintf(f, ",\"memcg\":[");
	for (uint64_t i = 0; i < s->nr_groups; i++) {
		const struct sn_page_group *g = &p->groups[i];
		fprintf(f, "%s{\"group\":", i ? "," : "");
		json_string(f, g->path);
		fprintf(f, ",\"usage\":%" PRIu64 ",\"peak\":%" PRIu64 ",", g->usage, g->peak);
		json_lim(f, "max", g->max);
		fputc(',', f);
		json_lim(f, "high", g->high);
		fprintf(f, ",\"events_high\":%" PRIu64 ",\"events_max\":%" PRIu64 ",\"failcnt\":%" PRIu64
			   ",\"events_nofail\":%" PRIu64 ",\"throttled_us\":%" PRIu64 "}",
			g->events_high, g->events_max, g->failcnt, g->events_nofail, g->throttled_us);
	}
	fprintf(f, "],\"caches\":[");
	for (uint64_t i = 0; i < s->nr_caches; i++) {
		const struct sn_page_cache *c = &p->caches[i];
		fprintf(f, "%s{\"name\":", i ? "," : "");
		json_string(f, c->name);
		fprintf(f, ",\"object_size\":%" PRIu64 ",\"size\":%" PRIu64 ",\"objs_per_slab\":%" PRIu64
			   ",\"slab_bytes\":%" PRIu64 ",\"active_objs\":%" PRIu64 ",\"num_objs\":%" PRIu64
			   ",\"active_slabs\":%" PRIu64 ",\"num_slabs\":%" PRIu64 ",\"alloc_fastpath\":%" PRIu64
			   ",\"alloc_slowpath\":%" PRIu64 ",\"free_fastpath\":%" PRIu64 ",\"free_slowpath\":%" PRIu64
			   ",\"free_remote\":%" PRIu64 ",\"alloc_slab\":%" PRIu64 ",\"free_slab\":%" PRIu64 "}",
			c->object_size, c->size, c->objs_per_slab, c->slab_bytes, c->active_objs, c->num_objs,
			c->active_slabs, c->num_slabs, c->alloc_fastpath, c->alloc_slowpath, c->free_fastpath,
			c->free_slowpath, c->free_remote, c->alloc_slab, c->free_slab);
	}
	fprintf(f, "],\"leaks\":");
	if (s->flags & SN_SUM_LEAKS)
		fprintf(f, "{\"tracked_bytes\":%" PRIu64 ",\"tracked_peak_bytes\":%" PRIu64 ",\"sample\":%" PRIu64 "}",
			s->leak_tracked_bytes, s->leak_tracked_peak_bytes, s->leak_sample);
	else
		fprintf(f, "null");
	fprintf(f, "}\n");
}

static int stat_usage(const char *fmt, const char *arg)
{
	fprintf(stderr, "slabnotify stat: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\nusage: slabnotify stat PID [--json | --prometheus]\n");
	return EXIT_USAGE;
}

int cmd_stat(int argc, char **argv)
{
	const char *pid_arg = NULL;
	int format = 0;   /* 0 text, 1 json, 2 prometheus */
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			format = format == 2 ? -1 : 1;
		else if (strcmp(argv[i], "--prometheus") == 0)
			format = format == 1 ? -1 : 2;
		else if (argv[i][0] == '-')
			return stat_usage("unknown option '%s'", argv[i]);
		else if (pid_arg)
			return stat_usage("unexpected argument '%s'", argv[i]);
		else
			pid_arg = argv[i];
	}
	if (format < 0)
		return stat_usage("%s--json and --prometheus exclude each other", "");
	if (!pid_arg)
		return stat_usage("%smissing the PID", "");
	pid_t pid;
	if (tool_parse_pid("stat", pid_arg, &pid))
		return EXIT_USAGE;
	static struct sn_page page;
	char why[160];
	enum sp_result r = sp_read(pid, &page, true, STAT_WAIT_MS, why, sizeof(why));
	if (r != SP_OK)
		return tool_page_error("stat", pid, r, why);
	if (format == 1)
		print_json(stdout, &page);
	else if (format == 2)
		metrics_write(stdout, &page, 1);
	else {
		print_summary(stdout, &page);
		print_slabinfo(stdout, &page);
		if (page.sum.nr_groups)
			print_groups(stdout, &page);
	}
	return ferror(stdout) ? 1 : 0;
}
