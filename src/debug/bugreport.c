/*
 * bugreport.c - the report of a debug violation, in SLUB's manner:
 *
 *   BUG kmalloc-32: Right Redzone overwritten
 *   -----------------------------------------------------------------------------
 *   INFO: 0x7f3c2a400058-0x7f3c2a400058 @offset=24. First byte 0x41 instead of 0xcc
 *   INFO: Object 0x7f3c2a400040 (24 bytes asked for, in kmalloc-32), found by free()
 *   INFO: Allocated by thread 0 at 0.000812 s:
 *       #0 main (overflow.c:9)
 *   Redzone  0x7f3c2a400030: cc cc ...
 *   Object   0x7f3c2a400040: 41 41 ...
 *   Redzone  0x7f3c2a400058: 41 cc ...
 *
 * then abort(), or with slab_debug_continue(true) (--debug-continue) a
 * FIX line and the program goes on. It writes to stderr (unbuffered: no
 * allocation for the text) and symbolises through the stack depot,
 * which may allocate: the report runs with no lock of ours held.
 */
#include "debug.h"
#include "consumers/consumer.h"

#include <stdlib.h>

static _Atomic bool keep_going;
/* A report symbolises, which allocates: a bug found meanwhile (in our own
 * allocations) is not reported inside the report. */
static __thread bool reporting SN_TLS;
static _Atomic unsigned long reports;

bool slab_debug_continue(bool on)
{
	return atomic_exchange(&keep_going, on);
}

unsigned long slab_debug_reports(void)
{
	return atomic_load(&reports);
}

unsigned long slab_debug_flush(void)
{
	return quarantine_drain();
}

/* At most 64 bytes of a region, 16 a line, as SLUB's print_section. */
void dbg_hexdump(const char *label, const uint8_t *p, size_t n)
{
	size_t shown = n > 64 ? 64 : n;
	for (size_t i = 0; i < shown; i += 16) {
		fprintf(stderr, "%-8s %p:", i ? "" : label, (const void *)(p + i));
		for (size_t j = i; j < i + 16 && j < shown; j++)
			fprintf(stderr, " %02x", p[j]);
		fputc('\n', stderr);
	}
	if (shown < n)
		fprintf(stderr, "%-8s ... %zu bytes more\n", "", n - shown);
}

void dbg_report(const struct dbg_bug *b)
{
	atomic_fetch_add(&reports, 1);
	if (reporting)
		return;
	reporting = true;
	sn_quiet_begin();
	fprintf(stderr, "BUG %s: %s\n", b->cache, b->what);
	fprintf(stderr, "-----------------------------------------------------------------------------\n");
	const struct dbg_cache *d = b->d;
	const char *obj = b->slot ? b->slot + d->off : NULL;
	const struct dbg_track *t = b->slot ? dbg_track_of(d, (void *)b->slot) : NULL;
	if (b->bad_lo)
		fprintf(stderr, "INFO: %p-%p @offset=%td. First byte 0x%x instead of 0x%x\n", (const void *)b->bad_lo,
			(const void *)b->bad_hi, (const char *)b->bad_lo - obj, b->found, b->expected);
	if (t) {
		fprintf(stderr, "INFO: Object %p (%u bytes asked for, in %s), found by %s()\n", (const void *)obj,
			t->req, b->cache, b->fn);
		if (d->flags & SLAB_STORE_USER) {
			dbg_print_stack("Allocated", t->alloc_stack, t->alloc_tid, t->alloc_ns);
			if (t->state != DBG_LIVE)
				dbg_print_stack("Freed", t->free_stack, t->free_tid, t->free_ns);
			if (b->second_free)
				dbg_print_stack("Freed again", dbg_stack_now(), sn_thread_ordinal(), dbg_now_ns());
		}
		dbg_hexdump("Redzone", (const uint8_t *)b->slot, d->off);
		dbg_hexdump("Object", (const uint8_t *)obj, t->req);
		dbg_hexdump("Redzone", (const uint8_t *)obj + t->req, d->track_off - d->off - t->req);
	}
	sn_quiet_end();
	reporting = false;
}

bool dbg_report_done(void)
{
	if (reporting || atomic_load(&keep_going)) {
		if (reporting)
			return true;
		fprintf(stderr, "FIX: continuing (--debug-continue): red zones and poison restored, a second free ignored\n\n");
		return true;
	}
	fprintf(stderr, "slabnotify: aborting after the report above (--debug-continue goes on)\n");
	abort();
}
