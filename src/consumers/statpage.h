/*
 * statpage.h - the layout of the live stats page, shared by the writer
 * (statpage.c, inside the observed process) and the readers (tools/).
 *
 * One file per process, DIR/PID, where DIR is $SLABNOTIFY_STAT_DIR or
 * /dev/shm/slabnotify-UID (mode 0700, owned by the user; the file 0600).
 * The file is exactly sizeof(struct sn_page) bytes, mapped shared by
 * both sides. Readers trust nothing in it: the magic, the version, the
 * size, the pid (against the file's name), every count and every string's
 * terminator are checked before a figure is used (tools/statpage_read.c).
 *
 * Consistency: the figures are written under a seqlock (`seq` odd while
 * written); a reader copies them out and retries when `seq` moved.
 *
 * Control (`slabnotify set`, and a reader that wants fresh figures): the
 * requester holds an exclusive flock on the file, fills `ctl`, bumps
 * `ctl_req` and wakes it (a shared futex); the process applies what is
 * valid, publishes, stores the result in `ctl_status` and sets `ctl_ack`
 * to the request's number, and wakes that.
 *
 * Layout changes bump SN_PAGE_VERSION: a reader refuses other versions.
 */
#ifndef SLABNOTIFY_STATPAGE_H
#define SLABNOTIFY_STATPAGE_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define SN_PAGE_MAGIC   0x3145474150424c53ull   /* "SLBPAGE1", little endian */
#define SN_PAGE_VERSION 1u
#define SN_PAGE_CACHES  320      /* rows; caches beyond are counted in nr_caches_total */
#define SN_PAGE_GROUPS  64
#define SN_PAGE_ENV_DIR "SLABNOTIFY_STAT_DIR"

/* Control flags: which fields of struct sn_page_ctl a request sets. */
#define SN_CTL_MAX        0x01u
#define SN_CTL_HIGH       0x02u
#define SN_CTL_FAIL_PROB  0x04u
#define SN_CTL_FAIL_INT   0x08u
#define SN_CTL_FAIL_TIMES 0x10u
#define SN_CTL_FAIL_MIN   0x20u
#define SN_CTL_FAIL_SPACE 0x40u
#define SN_CTL_ALL        0x7fu

/* Summary flags. */
#define SN_SUM_MEMCG   0x01u     /* memcg figures are valid */
#define SN_SUM_FAULTS  0x02u     /* fault injection is configured */
#define SN_SUM_LEAKS   0x04u     /* leak tracking is on */
#define SN_SUM_EXITED  0x08u     /* final figures, written at exit */

struct sn_page_cache {
	char name[64];
	uint64_t object_size, size, objs_per_slab, slab_bytes;
	uint64_t active_objs, num_objs, active_slabs, num_slabs;
	uint64_t alloc_fastpath, alloc_slowpath, free_fastpath, free_slowpath;
	uint64_t free_remote, alloc_slab, free_slab;
};

struct sn_page_group {
	char path[128];
	uint64_t usage, peak, max, high, nr_objects;   /* max/high: UINT64_MAX is none */
	uint64_t failcnt, events_high, events_max, events_nofail, throttled_us;
};

struct sn_page_summary {
	uint64_t flags;                  /* SN_SUM_* */
	uint64_t heap_bytes, heap_peak_bytes, large_bytes;
	uint64_t rss_bytes, rss_peak_bytes;
	uint64_t max, high;              /* root limits, UINT64_MAX: none */
	uint64_t vetoes_failslab, vetoes_memcg;
	double fail_probability;
	uint64_t fail_interval, fail_min_size, fail_space, fail_seed;
	int64_t fail_times;
	uint64_t leak_tracked_bytes, leak_tracked_peak_bytes, leak_sample;
	uint64_t nr_caches, nr_caches_total, nr_groups, nr_groups_total;
};

struct sn_page_ctl {
	uint32_t flags;                  /* SN_CTL_* */
	uint32_t pad;
	uint64_t max, high;              /* UINT64_MAX: none */
	double fail_probability;
	uint64_t fail_interval, fail_min_size, fail_space;
	int64_t fail_times;
};

struct sn_page {
	/* Header: fixed for the file's life. */
	uint64_t magic;
	uint32_t version;
	uint32_t size;                   /* sizeof(struct sn_page) */
	int32_t pid;
	uint32_t uid;
	uint64_t start_ticks;            /* /proc/PID/stat field 22: tells pid reuse */
	int64_t start_time;              /* seconds since the epoch */
	char command[512];               /* the command line, spaces between words */
	/* Control. */
	uint32_t ctl_req;                /* futex word, bumped by the requester */
	uint32_t ctl_ack;                /* futex word: the last request handled */
	int32_t ctl_status;              /* 0, or a negative errno for the last request */
	uint32_t pad0;
	struct sn_page_ctl ctl;
	/* Figures, under the seqlock. */
	uint64_t seq;
	uint64_t publishes;
	int64_t published_ns;            /* CLOCK_REALTIME of the last publish */
	struct sn_page_summary sum;
	struct sn_page_group groups[SN_PAGE_GROUPS];
	struct sn_page_cache caches[SN_PAGE_CACHES];
};

/* Field 22 of a /proc/PID/stat text: the process's start time in clock
 * ticks after boot, which the page records and readers compare, so that a
 * reused pid is never taken for the page's writer. 0 if malformed. */
static inline uint64_t sn_proc_start_ticks(const char *stat_text)
{
	const char *p = strrchr(stat_text, ')');   /* the command may hold spaces */
	if (!p)
		return 0;
	int field = 2;
	for (; *p && field < 22; p++)
		if (*p == ' ')
			field++;
	return strtoull(p, NULL, 10);
}

#endif /* SLABNOTIFY_STATPAGE_H */
