/*
 * report.c - slab_stats_report(): totals, peak, vetoes by cause and the
 * slabinfo table, as text or as one JSON object.
 *
 * A consumer on the public API only. The per-cache figures come from
 * slab_cache_info(), copied out under slab_cache_for_each() into a
 * buffer of our own and printed after the cache-list lock is dropped;
 * the text variant prints the table itself with slab_info_print().
 *
 * Totals: active objects, their bytes (active_objs * stride, SLUB's
 * s->size, so metadata and alignment included), slabs (all, and active)
 * and slab bytes (num_slabs * bytes per slab). kmalloc-large has no
 * fixed size: its objects are counted apart (large objects), with the
 * bytes of their live mappings from slab_mem_stat().
 *
 * Memory: slab_mem_stat(), what slabnotify has in use (slab pages given
 * to caches, live large mappings) and its peak, kept by the page layer.
 *
 * Peak, four views, none of which costs the allocator anything extra:
 *  - memory: slab_mem_stat()'s peak, the true peak footprint;
 *  - bytes: the highest total object bytes seen by any slab_stats_report()
 *    call of this process (report-time sampling: a lower bound);
 *  - tracked: the running peak of live bytes of the notified objects
 *    the leak tracker accepted (every notified allocation, sampled or
 *    not, event sizes), since tracking last started; 0 when it never
 *    ran;
 *  - memcg: the root memory group's peak charge (SLAB_ACCOUNT objects
 *    and SLAB_GFP_ACCOUNT allocations only).
 *
 * Vetoes by cause: failslab, the failures injected so far
 * (slab_fault_injected()); memcg, the root group's failcnt. memcg counts
 * a veto in the failcnt of the group whose max was hit, so vetoes by a
 * child group's own limit are not in the root's figure (the public API
 * has no way to walk the groups; slab_memcg_print() shows each).
 *
 * Side effect: asking for the root group's figures initialises memcg,
 * which registers its notifier and switches kmalloc-large's
 * notification on (see src/memcg.c), as any memcg call does.
 */
#include "slabnotify.h"
#include "json.h"
#include "consumer.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>

/* leak.c, not in the header. */
__attribute__((visibility("hidden"))) size_t slab_leak_tracked_bytes(size_t *peak);
__attribute__((visibility("hidden"))) bool slab_leak_quiet(bool on);

struct cache_snap {
	struct slab_cache_info *info;
	size_t cap, n;
};

static pthread_mutex_t report_lock = PTHREAD_MUTEX_INITIALIZER;
static size_t seen_peak;   /* under report_lock */

static void snap_one(struct slab_cache *c, void *arg)
{
	struct cache_snap *s = arg;
	if (s->n < s->cap && slab_cache_info(c, &s->info[s->n]) == 0)
		s->n++;
}

struct totals {
	unsigned long caches, active_objs, num_objs, slabs, active_slabs;
	unsigned long large_objects, notifying;
	size_t bytes, slab_bytes;
};

static bool is_large(const struct slab_cache_info *i)
{
	return i->size == 0 && strcmp(i->name, "kmalloc-large") == 0;
}

static void sum(const struct cache_snap *s, struct totals *t)
{
	memset(t, 0, sizeof(*t));
	for (size_t k = 0; k < s->n; k++) {
		const struct slab_cache_info *i = &s->info[k];
		t->caches++;
		t->notifying += i->notify;
		t->active_objs += i->active_objs;
		if (is_large(i)) {
			t->large_objects += i->active_objs;
			continue;
		}
		t->num_objs += i->num_objs;
		t->slabs += i->num_slabs;
		t->active_slabs += i->active_slabs;
		t->bytes += i->active_objs * i->size;
		t->slab_bytes += i->num_slabs * i->slab_bytes;
	}
}

void slab_stats_report(FILE *f, bool json)
{
	sn_stats_report(f, json, false);
}

void sn_stats_report(FILE *f, bool json, bool used_only)
{
	if (!f)
		return;
	pthread_mutex_lock(&report_lock);
	/* What the report itself allocates (memcg's first use does) is not
	 * a leak of the program's. */
	bool was_quiet = slab_leak_quiet(true);

	/* Our own buffer, outside slab memory: no lock of ours is held in
	 * the callback but the cache-list lock, and nothing allocates. */
	struct cache_snap s = { .cap = SLAB_MAX_CACHES + 8 };
	size_t map_bytes = (s.cap * sizeof(struct slab_cache_info) + 4095) & ~(size_t)4095;
	void *m = mmap(NULL, map_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m != MAP_FAILED) {
		s.info = m;
		slab_cache_for_each(snap_one, &s);
	} else {
		s.cap = 0;
	}

	struct totals t;
	sum(&s, &t);
	if (t.bytes > seen_peak)
		seen_peak = t.bytes;
	size_t tracked_peak = 0;
	size_t tracked_live = slab_leak_tracked_bytes(&tracked_peak);

	struct slab_mem_stat mem;
	if (slab_mem_stat(&mem) != 0)
		memset(&mem, 0, sizeof(mem));
	struct slab_memcg_stat mst;
	bool have_memcg = slab_memcg_stat(slab_memcg_root(), &mst) == 0;
	if (!have_memcg)
		memset(&mst, 0, sizeof(mst));
	unsigned long v_failslab = slab_fault_injected();
	unsigned long v_memcg = mst.failcnt;

	if (json) {
		fprintf(f, "{\"totals\":{\"caches\":%lu,\"notifying\":%lu,\"active_objs\":%lu,"
			   "\"num_objs\":%lu,\"bytes\":%zu,\"slabs\":%lu,\"active_slabs\":%lu,"
			   "\"slab_bytes\":%zu,\"large_objects\":%lu,\"large_bytes\":%zu},",
			t.caches, t.notifying, t.active_objs, t.num_objs, t.bytes, t.slabs,
			t.active_slabs, t.slab_bytes, t.large_objects, mem.large_in_use);
		fprintf(f, "\"memory\":{\"in_use\":%zu,\"peak\":%zu,\"large_in_use\":%zu},",
			mem.in_use, mem.peak, mem.large_in_use);
		fprintf(f, "\"peak\":{\"memory\":%zu,\"bytes\":%zu,\"tracked_bytes\":%zu,"
			   "\"tracked_live\":%zu,\"memcg_bytes\":%zu},",
			mem.peak, seen_peak, tracked_peak, tracked_live, mst.peak);
		fprintf(f, "\"vetoes\":{\"failslab\":%lu,\"memcg\":%lu,\"total\":%lu},", v_failslab,
			v_memcg, v_failslab + v_memcg);
		fprintf(f, "\"memcg\":{\"usage\":%zu,\"peak\":%zu,\"nr_objects\":%lu,\"failcnt\":%lu,"
			   "\"events_max\":%lu,\"events_high\":%lu},",
			mst.usage, mst.peak, mst.nr_objects, mst.failcnt, mst.events_max,
			mst.events_high);
		fprintf(f, "\"slabinfo\":[");
		for (size_t k = 0, shown = 0; k < s.n; k++) {
			const struct slab_cache_info *i = &s.info[k];
			if (used_only && i->alloc_slab == 0 && i->alloc_fastpath + i->alloc_slowpath == 0)
				continue;
			fprintf(f, "%s{\"name\":", shown++ ? "," : "");
			json_string(f, i->name);
			fprintf(f, ",\"active_objs\":%lu,\"num_objs\":%lu,\"objsize\":%zu,\"size\":%zu,"
				   "\"objperslab\":%u,\"slab_bytes\":%zu,\"active_slabs\":%lu,"
				   "\"num_slabs\":%lu,\"notify\":%s,\"alloc_fastpath\":%lu,"
				   "\"alloc_slowpath\":%lu,\"free_fastpath\":%lu,\"free_slowpath\":%lu,"
				   "\"free_remote\":%lu,\"alloc_slab\":%lu,\"free_slab\":%lu}",
				i->active_objs, i->num_objs, i->object_size, i->size, i->objs_per_slab,
				i->slab_bytes, i->active_slabs, i->num_slabs, i->notify ? "true" : "false",
				i->alloc_fastpath, i->alloc_slowpath, i->free_fastpath, i->free_slowpath,
				i->free_remote, i->alloc_slab, i->free_slab);
		}
		fprintf(f, "]}\n");
	} else {
		fprintf(f, "slabnotify: totals: %lu caches (%lu notifying), %lu active objects, "
			   "%zu bytes, %lu slabs (%lu active), %zu slab bytes, %lu large objects "
			   "(%zu bytes)\n",
			t.caches, t.notifying, t.active_objs, t.bytes, t.slabs, t.active_slabs,
			t.slab_bytes, t.large_objects, mem.large_in_use);
		fprintf(f, "slabnotify: memory: %zu bytes in use, peak %zu (slabs and large objects)\n",
			mem.in_use, mem.peak);
		fprintf(f, "slabnotify: peak: %zu bytes of memory, %zu object bytes at a report, "
			   "%zu tracked bytes (%zu live), %zu memcg bytes\n",
			mem.peak, seen_peak, tracked_peak, tracked_live, mst.peak);
		fprintf(f, "slabnotify: vetoes: %lu failslab, %lu memcg, %lu total\n", v_failslab,
			v_memcg, v_failslab + v_memcg);
		if (used_only)
			sn_info_print_used(f);
		else
			slab_info_print(f);
	}
	if (m != MAP_FAILED)
		munmap(m, map_bytes);
	slab_leak_quiet(was_quiet);
	pthread_mutex_unlock(&report_lock);
}
