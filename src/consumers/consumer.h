/*
 * consumer.h - what the consumers (memcg, failslab, the leak tracker, the
 * reports) and the drop-in may use beyond slabnotify.h: the small,
 * declared interface between them and the core. Nothing else of the
 * core is theirs to touch.
 */
#ifndef SLABNOTIFY_CONSUMER_H
#define SLABNOTIFY_CONSUMER_H

#include <stdint.h>

#include "slabnotify.h"

#define SN_CONSUMER_API __attribute__((visibility("hidden")))

/*
 * The calling thread's ordinal: its place in the order in which the
 * program created its threads (the main thread is 0). The drop-in
 * assigns it at pthread_create(), in the creating thread, so that a
 * program creating its threads in a fixed order gives each the same
 * ordinal on every run; a thread made otherwise gets the next free
 * ordinal when it first asks.
 */
SN_CONSUMER_API uint32_t sn_thread_ordinal(void);
SN_CONSUMER_API uint32_t sn_thread_ordinal_next(void);
SN_CONSUMER_API void sn_thread_ordinal_set(uint32_t ordinal);

/*
 * Quiet sections: while the calling thread is in one, its allocations
 * are served without notification (so never charged to a group, failed
 * by fault injection or recorded by the leak tracker), as a handler's
 * own allocations are. For slabnotify's own work in a program's process:
 * writing a report, for example. They nest.
 */
SN_CONSUMER_API void sn_quiet_begin(void);
SN_CONSUMER_API void sn_quiet_end(void);

/* The root group's figures, read without a lock (approximate while
 * threads charge; usage includes the per-thread stocks): for a report
 * written from a signal handler. Async-signal-safe. */
struct sn_memcg_snapshot {
	size_t usage, peak, max, high;
	unsigned long failcnt, events_high, events_max, throttled_us;
};
SN_CONSUMER_API void sn_memcg_root_snapshot(struct sn_memcg_snapshot *s);

/* kmalloc-large, the kmalloc caches made first (they are otherwise made
 * on first use): for a consumer that switches its notification on. */
SN_CONSUMER_API struct slab_cache *sn_kmalloc_large(void);

/* slab_info_print() of the caches that ever had a slab. */
SN_CONSUMER_API void sn_info_print_used(FILE *f);
/* slab_stats_report(), its slabinfo limited to the caches ever used. */
SN_CONSUMER_API void sn_stats_report(FILE *f, bool json, bool used_only);

#endif /* SLABNOTIFY_CONSUMER_H */
