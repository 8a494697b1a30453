/*
 * dropin.h - what the parts of the malloc drop-in (libslabnotify-malloc.so)
 * share:
 *   malloc.c   the C and POSIX allocation functions, glibc's introspection
 *   threads.c  pthread_create: threads numbered in creation order
 *   config.c   SLABNOTIFY_* variables, read by a constructor
 *   report.c   the report at exit, at abort() and on fatal signals
 *   mmap.c     the program's own anonymous mappings, charged under --max
 *   statpage.c the live stats page, and `slabnotify set` applied
 */
#ifndef SLABNOTIFY_DROPIN_H
#define SLABNOTIFY_DROPIN_H

#include "consumers/consumer.h"
#include "kmalloc.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define SN_EXPORT __attribute__((visibility("default")))

/* SLAB_GFP_ACCOUNT once a limit is set, for the paths that pass flags;
 * the fast path reads only the first cache slot of its classes:
 * SN_SLOT_KMALLOC, or SN_SLOT_KMALLOC_CG under a limit (set with it). */
SN_HIDDEN extern slab_gfp_t sn_malloc_gfp;
SN_HIDDEN extern unsigned sn_malloc_slot0;
SN_HIDDEN extern size_t sn_malloc_inline_end;
/* The classes' first slot from now on (the charged twins, --debug's):
 * sn_malloc_slot0 and the fast path's table (malloc.c) with it. */
SN_HIDDEN void dropin_set_first_slot(unsigned first);

/* What config.c read, for the report. */
struct dropin_config {
	bool report_wanted;
	bool stats, leaks, json;
	bool has_max, has_high, faults;
	size_t max, high;
	struct slab_fault_attr fault;
	unsigned leak_sample;
	bool report_to_file;
	bool report_per_pid;          /* the path has %p */
	char report_path[4096];       /* absolute; %p not yet expanded */
	char cmdline[1024];           /* the program's command line, spaces between words */
	int launcher_fd;              /* the launcher waits on it for "reported", or -1 */
	int main_pid;                 /* the process the launcher started */
};
SN_HIDDEN extern struct dropin_config sn_cfg;

/* profile_out.c: --leaks, --profile and their pictures */
SN_HIDDEN void profile_configure(void);
SN_HIDDEN bool profile_active(void);
/* The profile's sections into the report: text, or JSON members. */
SN_HIDDEN void profile_report(FILE *f, bool json);

/* debug.c: --debug and --guard. While either is on, malloc.c hands
 * realloc and malloc_usable_size over, and its countdown's end. */
SN_HIDDEN extern bool sn_dropin_checking;
SN_HIDDEN void sn_dropin_debug_configure(void);
SN_HIDDEN void sn_dropin_debug_exit(void);
SN_HIDDEN void *sn_dropin_sampled(size_t n, struct slab_cpu *cpu);
SN_HIDDEN void *sn_dropin_realloc(const char *fn, void *p, size_t n);
SN_HIDDEN size_t sn_dropin_usable_size(const char *fn, void *p);
/* malloc.c: malloc's body, for debug.c. */
SN_HIDDEN void *sn_dropin_alloc(const char *fn, size_t n);

/* report.c */
SN_HIDDEN void report_init(void);     /* the report's descriptor, the signal handlers */
/* mmap.c */
SN_HIDDEN void mmap_accounting_init(void);
SN_HIDDEN size_t mmap_charged_bytes(size_t *peak);
/* statpage.c */
SN_HIDDEN void dropin_stat_page_init(void);

#endif /* SLABNOTIFY_DROPIN_H */
