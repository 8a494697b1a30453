/*
 * metrics.c - Prometheus text exposition of live stats pages.
 *
 * Names follow Prometheus's conventions: base units (_bytes), counters
 * end in _total, every sample carries the process's pid and command.
 * A family's samples are written together, over every process, as the
 * format requires. A limit that is not set is +Inf.
 */
#include "metrics.h"

#include <inttypes.h>
#include <string.h>

void fmt_size(char *out, size_t cap, uint64_t v)
{
	static const char *const unit[] = { "KiB", "MiB", "GiB", "TiB" };
	if (v < 1024) {
		snprintf(out, cap, "%" PRIu64, v);
		return;
	}
	int u = 0;
	uint64_t div = 1024;
	while (u < 3 && v / div >= 1024) {
		div *= 1024;
		u++;
	}
	uint64_t tenths = (v * 10 + div / 2) / div;
	snprintf(out, cap, "%" PRIu64 " (%" PRIu64 ".%" PRIu64 " %s)", v, tenths / 10, tenths % 10, unit[u]);
}

/* A label value: backslash, quote and newline escaped. */
static void label(FILE *f, const char *name, const char *v)
{
	fprintf(f, "%s=\"", name);
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			fprintf(f, "\\%c", *v);
		else if (*v == '\n')
			fputs("\\n", f);
		else
			fputc(*v, f);
	}
	fputc('"', f);
}

static void proc_labels(FILE *f, const struct sn_page *p)
{
	fprintf(f, "pid=\"%d\",", (int)p->pid);
	label(f, "command", p->command);
}

static void family(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void value(FILE *f, uint64_t v)
{
	if (v == UINT64_MAX)
		fputs(" +Inf\n", f);
	else
		fprintf(f, " %" PRIu64 "\n", v);
}

/* A per-process figure: one sample per page. */
#define PROC_METRIC(m_name, m_type, m_help, m_expr)                                   \
	do {                                                                  \
		family(f, m_name, m_type, m_help);                                  \
		for (size_t k = 0; k < n; k++) {                              \
			const struct sn_page *p = &pages[k];                  \
			fprintf(f, "%s{", m_name);                              \
			proc_labels(f, p);                                    \
			fputc('}', f);                                        \
			value(f, (m_expr));                                     \
		}                                                             \
	} while (0)

/* A per-group figure, for processes that publish groups. */
#define GROUP_METRIC(m_name, m_type, m_help, m_field)                                 \
	do {                                                                  \
		family(f, m_name, m_type, m_help);                                  \
		for (size_t k = 0; k < n; k++)                                \
			for (uint64_t g = 0; g < pages[k].sum.nr_groups; g++) { \
				const struct sn_page_group *gr = &pages[k].groups[g]; \
				fprintf(f, "%s{", m_name);                      \
				proc_labels(f, &pages[k]);                    \
				fputc(',', f);                                \
				label(f, "group", gr->path);                  \
				fputc('}', f);                                \
				value(f, gr->m_field);                          \
			}                                                     \
	} while (0)

#define CACHE_METRIC(m_name, m_type, m_help, m_expr)                                  \
	do {                                                                  \
		family(f, m_name, m_type, m_help);                                  \
		for (size_t k = 0; k < n; k++)                                \
			for (uint64_t c = 0; c < pages[k].sum.nr_caches; c++) { \
				const struct sn_page_cache *ca = &pages[k].caches[c]; \
				fprintf(f, "%s{", m_name);                      \
				proc_labels(f, &pages[k]);                    \
				fputc(',', f);                                \
				label(f, "cache", ca->name);                  \
				fputc('}', f);                                \
				value(f, (m_expr));                             \
			}                                                     \
	} while (0)

static void group_events(FILE *f, const struct sn_page *pages, size_t n)
{
	static const char *const ev[] = { "high", "max", "fail", "nofail" };
	const char *name = "slabnotify_memcg_events_total";
	family(f, name, "counter", "memory group events, as memory.events (high, max; fail: vetoed charges)");
	for (size_t k = 0; k < n; k++)
		for (uint64_t g = 0; g < pages[k].sum.nr_groups; g++) {
			const struct sn_page_group *gr = &pages[k].groups[g];
			uint64_t v[] = { gr->events_high, gr->events_max, gr->failcnt, gr->events_nofail };
			for (int e = 0; e < 4; e++) {
				fprintf(f, "%s{", name);
				proc_labels(f, &pages[k]);
				fputc(',', f);
				label(f, "group", gr->path);
				fprintf(f, ",event=\"%s\"}", ev[e]);
				value(f, v[e]);
			}
		}
}

static void vetoes(FILE *f, const struct sn_page *pages, size_t n)
{
	const char *name = "slabnotify_vetoes_total";
	family(f, name, "counter", "allocations refused, by cause (failslab: injected faults; memcg: a group's max)");
	for (size_t k = 0; k < n; k++) {
		const char *cause[] = { "failslab", "memcg" };
		uint64_t v[] = { pages[k].sum.vetoes_failslab, pages[k].sum.vetoes_memcg };
		for (int c = 0; c < 2; c++) {
			fprintf(f, "%s{", name);
			proc_labels(f, &pages[k]);
			fprintf(f, ",cause=\"%s\"}", cause[c]);
			value(f, v[c]);
		}
	}
}

void metrics_write(FILE *f, const struct sn_page *pages, size_t n)
{
	PROC_METRIC("slabnotify_heap_bytes", "gauge", "slab pages and large blocks in use", p->sum.heap_bytes);
	PROC_METRIC("slabnotify_heap_peak_bytes", "gauge", "highest slabnotify_heap_bytes", p->sum.heap_peak_bytes);
	PROC_METRIC("slabnotify_large_bytes", "gauge", "the large blocks' part of the heap", p->sum.large_bytes);
	PROC_METRIC("slabnotify_rss_bytes", "gauge", "resident set size", p->sum.rss_bytes);
	PROC_METRIC("slabnotify_rss_peak_bytes", "gauge", "highest resident set size", p->sum.rss_peak_bytes);
	PROC_METRIC("slabnotify_start_time_seconds", "gauge", "process start, seconds since the epoch",
		    (uint64_t)p->start_time);
	PROC_METRIC("slabnotify_leak_tracked_bytes", "gauge", "live bytes the leak tracker accepted",
		    p->sum.leak_tracked_bytes);
	vetoes(f, pages, n);
	GROUP_METRIC("slabnotify_memcg_usage_bytes", "gauge", "memory group usage (memory.current)", usage);
	GROUP_METRIC("slabnotify_memcg_peak_bytes", "gauge", "memory group peak (memory.peak)", peak);
	GROUP_METRIC("slabnotify_memcg_max_bytes", "gauge", "memory group hard limit (memory.max)", max);
	GROUP_METRIC("slabnotify_memcg_high_bytes", "gauge", "memory group soft limit (memory.high)", high);
	group_events(f, pages, n);
	CACHE_METRIC("slabnotify_cache_active_objects", "gauge", "objects allocated and not freed", ca->active_objs);
	CACHE_METRIC("slabnotify_cache_objects", "gauge", "object capacity of the cache's slabs", ca->num_objs);
	CACHE_METRIC("slabnotify_cache_object_size_bytes", "gauge", "stride of an object", ca->size);
	CACHE_METRIC("slabnotify_cache_slabs", "gauge", "slabs of the cache", ca->num_slabs);
	CACHE_METRIC("slabnotify_cache_slab_bytes", "gauge", "bytes of the cache's slabs", ca->num_slabs * ca->slab_bytes);
	CACHE_METRIC("slabnotify_cache_allocations_total", "counter", "allocations from the cache",
		     ca->alloc_fastpath + ca->alloc_slowpath);
	CACHE_METRIC("slabnotify_cache_frees_total", "counter", "frees into the cache",
		     ca->free_fastpath + ca->free_slowpath);
}
