/*
 * statpage.c (drop-in) - the live stats page of a program on the drop-in
 * (consumers/statpage.c), on by default: a program is observable with
 * `slabnotify stat`, `top` and the exporter the moment something looks
 * wrong, without having been started for it, at the price of one
 * wake-up a second of a thread of ours (docs/benchmarks.md has the
 * figures). SLABNOTIFY_STATPAGE=0 (`slabnotify run --no-stat-page`)
 * turns it off. The page appears one second after the start: a program
 * that ends sooner (most commands of a shell script) publishes none and
 * leaves nothing behind, even when it ends by _exit() or a signal.
 *
 * `slabnotify set --max/--high` arrives in dropin_limits(), on the page's
 * thread: the same as SLABNOTIFY_MAX/HIGH at start (config.c), so that
 * the allocations made from then on are charged to the root group. What
 * was allocated before a first limit was never charged and is not
 * counted in its usage.
 */
#include "dropin.h"
#include "options.h"
#include "consumers/statpage.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int dropin_limits(unsigned which, size_t max, size_t high)
{
	struct slab_memcg *root = slab_memcg_root();
	if (!root)
		return -ENOMEM;
	if (which & SN_CTL_HIGH) {
		slab_memcg_set_throttle(root, false);   /* counted, never slept on */
		if (slab_memcg_set_high(root, high) != 0)
			return -errno;
		sn_cfg.has_high = true;
		sn_cfg.high = high;
	}
	if (which & SN_CTL_MAX) {
		if (slab_memcg_set_max(root, max) != 0)
			return -errno;
		sn_cfg.has_max = true;
		sn_cfg.max = max;
		mmap_accounting_init();
	}
	/* From now on the paths charge (the fast path's table is rewritten
	 * entry by entry, each seen by a thread at its next allocation). */
	__atomic_store_n(&sn_malloc_gfp, SLAB_GFP_ACCOUNT, __ATOMIC_RELAXED);
	dropin_set_first_slot(SN_SLOT_KMALLOC_CG);
	return 0;
}

void dropin_stat_page_init(void)
{
	const char *v = getenv(SN_ENV_STATPAGE);
	if (v && strcmp(v, "0") == 0)
		return;
	if (sn_cfg.faults)
		sn_stat_page_fault_attr(&sn_cfg.fault, getenv(SN_ENV_FAIL_CACHE), getenv(SN_ENV_FAIL_STACK));
	if (sn_cfg.leaks)
		sn_stat_page_leaks(sn_cfg.leak_sample);
	sn_stat_page_start(dropin_limits, sn_cfg.has_max || sn_cfg.has_high, true);
}
