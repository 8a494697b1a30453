/*
 * leak.c - the leak tracker: allocation stacks of live objects.
 *
 * A consumer on the public API and stack.h. slab_leak_track() registers
 * one notifier, at the lowest priority (INT_MIN / 2) so that it runs
 * after every handler that may veto (failslab, memcg): what it records
 * has been accepted by all of them.
 *
 * At ALLOC of a sampled object the handler takes the stack's id from the
 * depot (sn_stack_capture), adds the object to that stack's live count
 * and requested bytes (what the caller asked for, not the size class),
 * and keeps the id in the object's obj_ext slot with the difference
 * between the object's size and the request. At FREE it
 * reads the slot back and takes the object off. Unsampled objects leave
 * the slot 0. The counts are arrays indexed by stack id, in a mapping of
 * our own (never slab memory: never in slabinfo or under failslab),
 * released when tracking stops.
 *
 * Sampling: one in @sample ALLOC events per thread, by a thread-local
 * countdown (deterministic for a given thread's sequence of allocations).
 *
 * Besides the stacks, the handler keeps the live bytes of all notified
 * objects it accepted (sampled or not) and their running peak, which
 * slab_stats_report() prints as the tracked peak.
 *
 * Stopping (slab_leak_track(0)) unregisters the handler and discards the
 * counts: the FREE events of objects recorded so far would not be
 * delivered any more, so they could only go stale. Notification is not
 * switched off again: other consumers may rely on it.
 */
#define _GNU_SOURCE
#include "slabnotify.h"
#include "json.h"
#include "stack.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define LEAK_TLS __attribute__((tls_model("initial-exec")))

struct leak_count {
	_Atomic unsigned long count;  /* live objects */
	_Atomic size_t bytes;         /* their bytes (atomic: FREE takes no lock) */
};

static struct leak_count *counts;    /* SN_STACK_MAX, by stack id */
#define COUNTS_BYTES ((size_t)SN_STACK_MAX * sizeof(struct leak_count))

/* Control: track() and report() calls, under ctl_lock. */
static pthread_mutex_t ctl_lock = PTHREAD_MUTEX_INITIALIZER;
static bool registered;
static int leak_slot = -1;

static _Atomic unsigned int leak_sample;
static _Atomic size_t all_live, all_peak;   /* every accepted object */

static __thread unsigned int tl_countdown LEAK_TLS;
static __thread bool tl_quiet LEAK_TLS;     /* this thread is reporting */

/* ------------------------------------------------------------------ */
/* The handler                                                        */
/* ------------------------------------------------------------------ */

static bool sample_this(void)
{
	unsigned int s = atomic_load_explicit(&leak_sample, memory_order_relaxed);
	if (s <= 1)
		return s == 1;
	if (tl_countdown == 0 || tl_countdown > s)
		tl_countdown = s;
	if (--tl_countdown)
		return false;
	tl_countdown = s;
	return true;
}

static void live_add(size_t size)
{
	size_t now = atomic_fetch_add_explicit(&all_live, size, memory_order_relaxed) + size;
	size_t peak = atomic_load_explicit(&all_peak, memory_order_relaxed);
	while (now > peak &&
	       !atomic_compare_exchange_weak_explicit(&all_peak, &peak, now, memory_order_relaxed,
						      memory_order_relaxed))
		;
}

/* What the object's slot keeps: the stack id, and above it how much
 * smaller than the object the request was (requested bytes at FREE,
 * where the event carries only the object's size). */
static void *slot_word(sn_stack_id id, const struct slab_event_data *d)
{
	uintptr_t slack = d->size >= d->requested ? d->size - d->requested : 0;
	if (slack > UINT32_MAX)
		slack = 0;
	return (void *)(((uintptr_t)slack << 32) | id);
}

static __attribute__((noinline)) int leak_handler(struct slab_notifier *nb, enum slab_event ev,
						  const struct slab_event_data *d)
{
	(void)nb;
	if (ev == SLAB_EVENT_ALLOC) {
		live_add(d->size);
		if (tl_quiet || !sample_this())
			return SLAB_NOTIFY_DONE;
		void **slot = slab_event_ext(d, leak_slot);
		if (!slot)
			return SLAB_NOTIFY_DONE;
		sn_stack_id id = sn_stack_capture();
		if (id) {
			atomic_fetch_add_explicit(&counts[id].count, 1, memory_order_relaxed);
			atomic_fetch_add_explicit(&counts[id].bytes, d->requested, memory_order_relaxed);
		}
		*slot = slot_word(id, d);
	} else if (ev == SLAB_EVENT_FREE) {
		atomic_fetch_sub_explicit(&all_live, d->size, memory_order_relaxed);
		void **slot = slab_event_ext(d, leak_slot);
		uintptr_t w = slot ? (uintptr_t)*slot : 0;
		sn_stack_id id = (sn_stack_id)w;
		if (!id)
			return SLAB_NOTIFY_DONE;
		*slot = NULL;
		atomic_fetch_sub_explicit(&counts[id].count, 1, memory_order_relaxed);
		atomic_fetch_sub_explicit(&counts[id].bytes, d->size - (w >> 32), memory_order_relaxed);
	}
	return SLAB_NOTIFY_DONE;
}

static struct slab_notifier leak_nb = {
	.call = leak_handler,
	.priority = INT_MIN / 2,
};

/* Live bytes of the objects the tracker accepted and their peak, since
 * tracking last started (for slab_stats_report; not in the header). */
__attribute__((visibility("hidden"))) size_t slab_leak_tracked_bytes(size_t *peak)
{
	if (peak)
		*peak = atomic_load_explicit(&all_peak, memory_order_relaxed);
	return atomic_load_explicit(&all_live, memory_order_relaxed);
}

/* Stop (true) or resume recording what the calling thread allocates;
 * returns the previous setting. For slab_stats_report(), whose memcg
 * query may allocate (not in the header). */
__attribute__((visibility("hidden"))) bool slab_leak_quiet(bool on)
{
	bool was = tl_quiet;
	tl_quiet = on;
	return was;
}

/* ------------------------------------------------------------------ */
/* Switching                                                          */
/* ------------------------------------------------------------------ */

static void notify_on(struct slab_cache *c, void *arg)
{
	(void)arg;
	slab_cache_set_notify(c, true);
}

static int fail_errno(int err)
{
	errno = -err;
	return err;
}

static int leak_stop(void)
{
	atomic_store(&leak_sample, 0);
	if (!registered)
		return 0;
	int ret = slab_notifier_unregister(&leak_nb);
	if (ret != 0 && ret != -ENOENT)
		return ret;
	registered = false;
	if (counts)
		munmap(counts, COUNTS_BYTES);
	counts = NULL;
	return 0;
}

static int leak_start(unsigned int sample)
{
	/* The size classes and kmalloc-large exist before they are switched
	 * on; and the core's fork handlers are registered before the
	 * depot's. */
	slab_free(slab_malloc(0, 0));
	sn_stack_init();
	if (leak_slot < 0) {
		int slot = slab_obj_ext_reserve();
		if (slot < 0)
			return slot;
		leak_slot = slot;
	}
	if (!counts) {
		void *p = mmap(NULL, COUNTS_BYTES, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (p == MAP_FAILED)
			return -ENOMEM;
		counts = p;
	}
	atomic_store(&leak_sample, sample);
	if (!registered) {
		atomic_store(&all_live, 0);
		atomic_store(&all_peak, 0);
		leak_nb._next = NULL;
		leak_nb._gen = 0;
		leak_nb._flags = 0;
		int ret = slab_notifier_register(&leak_nb);
		if (ret != 0 && ret != -EEXIST) {
			atomic_store(&leak_sample, 0);
			return ret;
		}
		registered = true;
	}
	slab_cache_for_each(notify_on, NULL);
	return 0;
}

int slab_leak_track(unsigned int sample)
{
	pthread_mutex_lock(&ctl_lock);
	int ret = sample ? leak_start(sample) : leak_stop();
	pthread_mutex_unlock(&ctl_lock);
	return ret ? fail_errno(ret) : 0;
}

/* ------------------------------------------------------------------ */
/* The report                                                         */
/* ------------------------------------------------------------------ */

struct entry {
	sn_stack_id id;
	unsigned long count;
	size_t bytes;
};

static int cmp_bytes(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;
	if (x->bytes != y->bytes)
		return x->bytes > y->bytes ? -1 : 1;
	if (x->count != y->count)
		return x->count > y->count ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

static void print_frame_json(FILE *f, const struct sn_frame *fr)
{
	fprintf(f, "{\"pc\":\"0x%" PRIxPTR "\"", fr->pc);
	if (fr->function) {
		fprintf(f, ",\"function\":");
		json_string(f, fr->function);
	}
	if (fr->file) {
		fprintf(f, ",\"file\":");
		json_string(f, fr->file);
		fprintf(f, ",\"line\":%u", fr->line);
	}
	if (fr->module) {
		fprintf(f, ",\"module\":");
		json_string(f, fr->module);
	}
	fputc('}', f);
}

static void print_frames_json(FILE *f, sn_stack_id id)
{
	void *const *pcs;
	uint32_t n = sn_stack_frames(id, &pcs);
	for (uint32_t j = 0; j < n; j++) {
		struct sn_frame fr;
		sn_frame_resolve((uintptr_t)pcs[j], &fr);
		if (j)
			fputc(',', f);
		print_frame_json(f, &fr);
	}
}

/* The stacks with live objects, in a mapping of *map_bytes bytes. */
static size_t snapshot(struct entry **out, size_t *map_bytes)
{
	*out = NULL;
	*map_bytes = 0;
	uint32_t ids = counts ? sn_stack_count() : 0;
	size_t bytes = ((size_t)(ids ? ids : 1) * sizeof(struct entry) + 4095) & ~(size_t)4095;
	struct entry *e = ids ? mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
			      : MAP_FAILED;
	if (e == MAP_FAILED)
		return 0;
	size_t k = 0;
	for (sn_stack_id id = 1; id <= ids; id++) {
		unsigned long cnt = atomic_load_explicit(&counts[id].count, memory_order_relaxed);
		if (cnt)
			e[k++] = (struct entry){ id, cnt, atomic_load_explicit(&counts[id].bytes, memory_order_relaxed) };
	}
	*out = e;
	*map_bytes = bytes;
	return k;
}

static void report_json(FILE *f, const struct entry *e, size_t m, size_t shown, unsigned sample,
			size_t total_bytes, unsigned long total_objs)
{
	fprintf(f, "{\"tracking\":%s,\"sample\":%u,\"bytes\":%zu,\"objects\":%lu,"
		   "\"stacks\":%zu,\"shown\":%zu,\"leaks\":[",
		sample ? "true" : "false", sample, total_bytes, total_objs, m, shown);
	for (size_t i = 0; i < shown; i++) {
		fprintf(f, "%s{\"bytes\":%zu,\"objects\":%lu,\"frames\":[", i ? "," : "", e[i].bytes,
			e[i].count);
		print_frames_json(f, e[i].id);
		fprintf(f, "]}");
	}
	fprintf(f, "]}\n");
}

static void report_text(FILE *f, const struct entry *e, size_t m, size_t shown, unsigned sample,
			size_t total_bytes, unsigned long total_objs)
{
	for (size_t i = 0; i < shown; i++) {
		fprintf(f, "%zu bytes in %lu object%s allocated from:\n", e[i].bytes, e[i].count,
			e[i].count == 1 ? "" : "s");
		sn_stack_print(f, e[i].id, "  ");
		fputc('\n', f);
	}
	if (shown < m)
		fprintf(f, "slabnotify: %zu more stacks not shown\n", m - shown);
	fprintf(f, "slabnotify: %zu bytes in %lu objects leaked from %zu stacks", total_bytes, total_objs, m);
	if (!sample)
		fprintf(f, " (leak tracking is off)");
	else if (sample > 1)
		fprintf(f, " (1 in %u allocations sampled)", sample);
	fputc('\n', f);
}

int slab_leak_report(FILE *f, unsigned int max_stacks, bool json)
{
	if (!f) {
		errno = EINVAL;
		return -EINVAL;
	}
	pthread_mutex_lock(&ctl_lock);
	bool quiet = tl_quiet;
	tl_quiet = true;   /* what symbolizing allocates is not recorded */
	unsigned int sample = atomic_load(&leak_sample);
	struct entry *e;
	size_t map_bytes;
	size_t m = snapshot(&e, &map_bytes);
	if (m > 1)
		qsort(e, m, sizeof(*e), cmp_bytes);
	size_t total_bytes = 0;
	unsigned long total_objs = 0;
	for (size_t i = 0; i < m; i++) {
		total_bytes += e[i].bytes;
		total_objs += e[i].count;
	}
	size_t shown = max_stacks && max_stacks < m ? max_stacks : m;
	if (json)
		report_json(f, e, m, shown, sample, total_bytes, total_objs);
	else
		report_text(f, e, m, shown, sample, total_bytes, total_objs);
	if (e)
		munmap(e, map_bytes);
	tl_quiet = quiet;
	pthread_mutex_unlock(&ctl_lock);
	return (int)shown;
}
