/*
 * trace_events - a slab event tracer: one notifier handler that prints
 * every slab event (cache name, pointer, size) and vetoes every 5th
 * allocation of the cache "session", to show what a veto looks like from
 * both sides.
 *
 * Two caches: "session" (96-byte objects) and "buffer" (256 bytes), both
 * created with SLAB_NOTIFY. The program allocates 12 sessions and 3
 * buffers, frees them all and shrinks the caches, so every kind of event
 * appears: NEWPAGE (a slab obtained), ALLOC, FREE and FREEPAGE (a slab
 * given back). Vetoed sessions come back as NULL with errno EAGAIN, the
 * error the handler chose. Exits 0 when every count matches.
 */
#include <slabnotify.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

static struct slab_cache *session_cache;

static const char *event_name(enum slab_event ev)
{
	switch (ev) {
	case SLAB_EVENT_ALLOC:    return "ALLOC";
	case SLAB_EVENT_FREE:     return "FREE";
	case SLAB_EVENT_NEWPAGE:  return "NEWPAGE";
	case SLAB_EVENT_FREEPAGE: return "FREEPAGE";
	}
	return "?";
}

struct tracer {
	unsigned long events[4];
	unsigned long session_allocs; /* ALLOC events of "session" seen */
	unsigned long vetoed;
};

/* Handlers run on the allocating or freeing thread, inside the call. */
static int trace_call(struct slab_notifier *nb, enum slab_event ev, const struct slab_event_data *d)
{
	struct tracer *t = nb->arg;
	t->events[ev]++;
	int ret = SLAB_NOTIFY_OK;
	const char *note = "";
	if (ev == SLAB_EVENT_ALLOC && d->cache == session_cache && ++t->session_allocs % 5 == 0 &&
	    !(d->gfp & SLAB_GFP_NOFAIL)) {
		ret = slab_notify_from_errno(EAGAIN); /* the veto: the caller gets NULL, EAGAIN */
		t->vetoed++;
		note = "  <- vetoed (every 5th session)";
	}
	printf("  event %-8s cache %-8s ptr %p size %6zu%s\n", event_name(ev), slab_cache_name(d->cache),
	       d->ptr, d->size, note);
	return ret;
}

int main(void)
{
	session_cache = slab_cache_create("session", 96, 0, SLAB_NOTIFY, NULL);
	struct slab_cache *buffer_cache = slab_cache_create("buffer", 256, 0, SLAB_NOTIFY, NULL);
	if (!session_cache || !buffer_cache) {
		perror("slab_cache_create");
		return 1;
	}
	struct tracer t = { { 0 }, 0, 0 };
	struct slab_notifier nb = { .call = trace_call, .priority = 0, .arg = &t };
	if (slab_notifier_register(&nb) != 0) {
		perror("slab_notifier_register");
		return 1;
	}

	printf("Allocating 12 objects from \"session\"; the tracer vetoes every 5th:\n");
	void *sessions[12];
	int got = 0, refused = 0;
	for (int i = 0; i < 12; i++) {
		errno = 0;
		sessions[i] = slab_cache_alloc(session_cache, 0);
		if (sessions[i]) {
			printf("session #%-2d -> %p\n", i + 1, sessions[i]);
			got++;
		} else {
			printf("session #%-2d -> NULL, errno %s (%s)\n", i + 1,
			       errno == EAGAIN ? "EAGAIN" : "?", strerror(errno));
			refused++;
		}
	}

	printf("\nAllocating 3 objects from \"buffer\" (never vetoed):\n");
	void *buffers[3];
	for (int i = 0; i < 3; i++) {
		buffers[i] = slab_cache_alloc(buffer_cache, 0);
		printf("buffer  #%d  -> %p\n", i + 1, buffers[i]);
	}

	printf("\nFreeing everything (vetoed sessions were never handed out, so they get no FREE):\n");
	for (int i = 0; i < 12; i++)
		slab_cache_free(session_cache, sessions[i]); /* NULL is ignored */
	for (int i = 0; i < 3; i++)
		slab_cache_free(buffer_cache, buffers[i]);

	printf("\nShrinking both caches (their empty slabs go back: FREEPAGE):\n");
	long bytes = slab_cache_shrink(session_cache) + slab_cache_shrink(buffer_cache);
	printf("released %ld bytes\n", bytes);

	slab_notifier_unregister(&nb);
	printf("\nSummary: %lu NEWPAGE, %lu ALLOC, %lu FREE, %lu FREEPAGE events; "
	       "%d sessions allocated, %d vetoed\n",
	       t.events[SLAB_EVENT_NEWPAGE], t.events[SLAB_EVENT_ALLOC], t.events[SLAB_EVENT_FREE],
	       t.events[SLAB_EVENT_FREEPAGE], got, refused);
	printf("Every accepted ALLOC got its FREE: ALLOC %lu - vetoed %lu = FREE %lu\n",
	       t.events[SLAB_EVENT_ALLOC], t.vetoed, t.events[SLAB_EVENT_FREE]);

	bool ok = refused == 2 && got == 10 && t.vetoed == 2 &&
		  t.events[SLAB_EVENT_ALLOC] - t.vetoed == t.events[SLAB_EVENT_FREE] &&
		  t.events[SLAB_EVENT_NEWPAGE] == t.events[SLAB_EVENT_FREEPAGE] &&
		  slab_cache_destroy(session_cache) == 0 && slab_cache_destroy(buffer_cache) == 0;
	if (!ok)
		printf("unexpected counts\n");
	return ok ? 0 : 1;
}
