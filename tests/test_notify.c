/*
 * test_notify.c - the slab event notifier chain, functionally.
 *
 *  chain_order       ALLOC/NEWPAGE/FREE order and event data (cache, ptr,
 *                    size, gfp) through 5 handlers of mixed priorities,
 *                    ties in registration order.
 *  chain_veto        vetoes at random chain positions on ALLOC and on
 *                    NEWPAGE, with random error codes: rollback FREE
 *                    (FREEPAGE) to the earlier handlers in reverse order,
 *                    nothing to the vetoer and later ones, NULL + errno,
 *                    the object back on the freelist (the page back to
 *                    the OS), no further event, and at the end every
 *                    (handler, object/page) pair balanced.
 *  encoding          slab_notify_from_errno()/slab_notify_to_errno().
 *  registration      -EEXIST, -EINVAL, -ENOENT, -EDEADLK from handlers,
 *                    late handlers get no FREE, unregistered ones nothing,
 *                    unregister waits for a handler sleeping elsewhere.
 *  switching         slab_cache_set_notify() both ways at any time, with
 *                    the pairing rules across switches (and a race
 *                    off/on/off during an in-flight ALLOC).
 *  gfp               NOWAIT (and ZERO) reach the handler.
 *  nested            allocations in handlers are quiet; frees of notified
 *                    objects in handlers are notified.
 *  typesafe_rcu      SLAB_TYPESAFE_BY_RCU defers the page, not the FREE.
 *  nofail            SLAB_GFP_NOFAIL overrides vetoes.
 *  obj_ext           extension slots.
 *  large             kmalloc-large objects are notified with their size.
 *
 * Criterion runs every Test() in its own process: registrations, switches
 * and reserved extension slots do not leak from one test to another.
 * Handlers run on allocating/freeing threads; they never call cr_assert
 * (it longjmps into the test's main thread), they record errors that the
 * test asserts on afterwards.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <slabnotify.h>
#include "consumers/consumer.h"
#include "test_hooks.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The library's RCU door (src/rcu.h): urcu_bp_read_lock() and friends from
 * the shared liburcu-bp, plus the TSan annotations of their ordering. (Not
 * the _LGPL_SOURCE inlines: UBSan flags their reader records misaligned in
 * liburcu 0.13.) */
#include "rcu.h"

/* Criterion 2.4.1's runner process leaks 48 bytes now and then when tests
 * run in parallel (criterion_run_all_tests -> calloc, never freed), which
 * LeakSanitizer turns into a failing exit status. The library maps its
 * memory itself, so LSan sees nothing of it anyway: suppress Criterion's. */
#if defined(__SANITIZE_ADDRESS__)
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
	return "leak:libcriterion.so\n";
}
#endif

#ifdef SLABNOTIFY_SANITIZER
#define SCALE 4
#else
#define SCALE 1
#endif

/* ------------------------------------------------------------------ */
/* Small helpers                                                      */
/* ------------------------------------------------------------------ */

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rnd(void)
{
	uint64_t x = rng_state;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return rng_state = x;
}

static unsigned rnd_below(unsigned n)
{
	return (unsigned)(rnd() % n);
}

static void msleep(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static struct slab_cache_info info_of(const struct slab_cache *c)
{
	struct slab_cache_info in;
	cr_assert_eq(slab_cache_info(c, &in), 0);
	return in;
}

static struct slab_cache *create_ok(const char *name, size_t size, slab_flags_t flags)
{
	struct slab_cache *c = slab_cache_create(name, size, 0, flags, NULL);
	cr_assert_not_null(c, "slab_cache_create(%s) failed: %s", name, strerror(errno));
	return c;
}

static const char *ev_name(int ev)
{
	switch (ev) {
	case SLAB_EVENT_ALLOC: return "ALLOC";
	case SLAB_EVENT_FREE: return "FREE";
	case SLAB_EVENT_NEWPAGE: return "NEWPAGE";
	case SLAB_EVENT_FREEPAGE: return "FREEPAGE";
	default: return "?";
	}
}

struct find_arg {
	const char *name;
	struct slab_cache *found;
};

static void find_cb(struct slab_cache *c, void *arg)
{
	struct find_arg *fa = arg;
	if (strcmp(slab_cache_name(c), fa->name) == 0)
		fa->found = c;
}

/* A kmalloc cache by name (the kmalloc caches exist after first use). */
static struct slab_cache *find_cache(const char *name)
{
	slab_free(slab_malloc(16, 0));
	struct find_arg fa = { name, NULL };
	slab_cache_for_each(find_cb, &fa);
	cr_assert_not_null(fa.found, "cache %s not found", name);
	return fa.found;
}

/* ------------------------------------------------------------------ */
/* The event log and the recording handler                            */
/* ------------------------------------------------------------------ */

struct event {
	int h;                  /* handler id */
	int ev;                 /* enum slab_event */
	struct slab_cache *cache;
	void *ptr;
	size_t size;
	slab_gfp_t gfp;
	int ret;                /* what the handler returned */
	bool in_handler;        /* slab_in_handler() during the call */
	size_t requested;
};

#define MAX_EVENTS 16384
static struct event evlog[MAX_EVENTS];
static int nev;
static bool ev_overflow;
static pthread_mutex_t evlock = PTHREAD_MUTEX_INITIALIZER;

static void log_clear(void)
{
	pthread_mutex_lock(&evlock);
	nev = 0;
	pthread_mutex_unlock(&evlock);
}

static int log_count(void)
{
	pthread_mutex_lock(&evlock);
	int n = nev;
	pthread_mutex_unlock(&evlock);
	return n;
}

/* Count events matching (h or -1, ev or -1, ptr or NULL). */
static int log_find(int h, int ev, const void *ptr)
{
	int n = 0;
	pthread_mutex_lock(&evlock);
	for (int i = 0; i < nev; i++)
		if ((h < 0 || evlog[i].h == h) && (ev < 0 || evlog[i].ev == ev) &&
		    (!ptr || evlog[i].ptr == ptr))
			n++;
	pthread_mutex_unlock(&evlock);
	return n;
}

static void log_dump(const char *why)
{
	fprintf(stderr, "event log (%s), %d events:\n", why, nev);
	for (int i = 0; i < nev && i < 64; i++)
		fprintf(stderr, "  [%d] h%d %-8s %p size %zu gfp %#x ret %#x\n", i, evlog[i].h,
			ev_name(evlog[i].ev), evlog[i].ptr, evlog[i].size, evlog[i].gfp, evlog[i].ret);
}

#define MAX_OBJS 4096
struct objcount {
	void *ptr;
	long alloc, free, newpage, freepage; /* accepted ALLOC/NEWPAGE, received FREE/FREEPAGE */
};

struct rec;
typedef int (*rec_hook)(struct rec *r, enum slab_event ev, const struct slab_event_data *d);

struct rec {
	struct slab_notifier nb;
	int id;
	struct slab_cache *only;   /* events of this cache only (NULL: all) */
	bool log;                  /* append to evlog */
	/* Veto: the next @veto_event (ALLOC or NEWPAGE) gets @veto_ret. */
	int veto_event;            /* -1: none */
	int veto_ret;
	bool veto_sticky;          /* keep vetoing */
	rec_hook hook;             /* optional extra action, its return wins if nonzero */
	void *hook_arg;
	/* Pairing per (handler, ptr). */
	pthread_mutex_t lock;
	struct objcount objs[MAX_OBJS];
	int nobjs;
	int errors;
	char errmsg[256];
	atomic_long calls;
};

static void rec_error(struct rec *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void rec_error(struct rec *r, const char *fmt, ...)
{
	if (r->errors++ == 0) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(r->errmsg, sizeof(r->errmsg), fmt, ap);
		va_end(ap);
	}
}

static struct objcount *rec_obj(struct rec *r, void *ptr)
{
	for (int i = 0; i < r->nobjs; i++)
		if (r->objs[i].ptr == ptr)
			return &r->objs[i];
	if (r->nobjs == MAX_OBJS) {
		rec_error(r, "too many distinct objects (test bug)");
		return &r->objs[0];
	}
	struct objcount *o = &r->objs[r->nobjs++];
	memset(o, 0, sizeof(*o));
	o->ptr = ptr;
	return o;
}

static int rec_call(struct slab_notifier *nb, enum slab_event ev, const struct slab_event_data *d)
{
	struct rec *r = nb->arg;
	if (r->only && d->cache != r->only)
		return SLAB_NOTIFY_OK;
	atomic_fetch_add(&r->calls, 1);
	int ret = SLAB_NOTIFY_OK;
	if (r->veto_event == (int)ev) {
		ret = r->veto_ret;
		if (!r->veto_sticky)
			r->veto_event = -1;
	}
	if (r->hook) {
		int h = r->hook(r, ev, d);
		if (h)
			ret = h;
	}
	bool vetoed = (ret & SLAB_NOTIFY_STOP_MASK) && !(d->gfp & SLAB_GFP_NOFAIL);

	pthread_mutex_lock(&r->lock);
	struct objcount *o = rec_obj(r, d->ptr);
	switch (ev) {
	case SLAB_EVENT_ALLOC:
		if (!vetoed)
			o->alloc++;
		if (o->alloc > 1)
			rec_error(r, "h%d: second ALLOC of live %p", r->id, d->ptr);
		break;
	case SLAB_EVENT_NEWPAGE:
		if (!vetoed)
			o->newpage++;
		if (o->newpage > 1)
			rec_error(r, "h%d: second NEWPAGE of live page %p", r->id, d->ptr);
		break;
	case SLAB_EVENT_FREE:
		if (o->free >= o->alloc)
			rec_error(r, "h%d: FREE of %p without an accepted ALLOC", r->id, d->ptr);
		o->free++;
		break;
	case SLAB_EVENT_FREEPAGE:
		if (o->freepage >= o->newpage)
			rec_error(r, "h%d: FREEPAGE of %p without an accepted NEWPAGE", r->id, d->ptr);
		o->freepage++;
		break;
	}
	/* Normalise to "accepted minus received": 0 or 1 once paired up. */
	if (o->free && o->alloc) {
		o->free--;
		o->alloc--;
	}
	if (o->freepage && o->newpage) {
		o->freepage--;
		o->newpage--;
	}
	pthread_mutex_unlock(&r->lock);

	if (r->log) {
		pthread_mutex_lock(&evlock);
		if (nev < MAX_EVENTS)
			evlog[nev++] = (struct event){ r->id, ev, d->cache, d->ptr, d->size, d->gfp, ret,
						       slab_in_handler(), d->requested };
		else
			ev_overflow = true;
		pthread_mutex_unlock(&evlock);
	}
	return ret;
}

static void rec_init(struct rec *r, int id, int priority, struct slab_cache *only)
{
	memset(r, 0, sizeof(*r));
	r->nb.call = rec_call;
	r->nb.priority = priority;
	r->nb.arg = r;
	r->id = id;
	r->only = only;
	r->log = true;
	r->veto_event = -1;
	pthread_mutex_init(&r->lock, NULL);
}

static void rec_register(struct rec *r)
{
	int rc = slab_notifier_register(&r->nb);
	cr_assert_eq(rc, 0, "register h%d: %d", r->id, rc);
}

static void rec_unregister(struct rec *r)
{
	int rc = slab_notifier_unregister(&r->nb);
	cr_assert_eq(rc, 0, "unregister h%d: %d", r->id, rc);
}

static void rec_check(struct rec *r)
{
	cr_assert_eq(r->errors, 0, "handler h%d: %d errors, first: %s", r->id, r->errors, r->errmsg);
}

/* Every (handler, object) pair balanced, and with @pages every (handler,
 * page) pair too (call it after the slabs were released). */
static void rec_check_pairs(struct rec *r, bool pages)
{
	rec_check(r);
	for (int i = 0; i < r->nobjs; i++) {
		struct objcount *o = &r->objs[i];
		cr_assert(o->alloc == 0 && o->free == 0,
			  "h%d: object %p: %ld accepted ALLOCs not paired with a FREE", r->id, o->ptr,
			  o->alloc);
		if (pages)
			cr_assert(o->newpage == 0 && o->freepage == 0,
				  "h%d: page %p: %ld accepted NEWPAGEs not paired with a FREEPAGE", r->id,
				  o->ptr, o->newpage);
	}
}

#define rec_check_balanced(r) rec_check_pairs((r), true)
#define rec_check_objects(r) rec_check_pairs((r), false)

/* Accepted and not yet freed, for (handler, ptr). */
static long rec_live(struct rec *r, void *ptr, int ev)
{
	pthread_mutex_lock(&r->lock);
	long v = 0;
	for (int i = 0; i < r->nobjs; i++)
		if (r->objs[i].ptr == ptr)
			v = ev == SLAB_EVENT_ALLOC ? r->objs[i].alloc : r->objs[i].newpage;
	pthread_mutex_unlock(&r->lock);
	return v;
}

/* ------------------------------------------------------------------ */
/* 1. Chain order, event data, vetoes                                 */
/* ------------------------------------------------------------------ */

#define NH 5
static struct rec H[NH];
/* Priorities and registration order give the chain order h1 h4 h0 h2 h3:
 * 10 (h1 registered before h4), 0 (h0 before h2), -5 (h3). */
static const int prio[NH] = { 0, 10, 0, -5, 10 };
static const int reg_order[NH] = { 3, 0, 1, 2, 4 };
static const int chain[NH] = { 1, 4, 0, 2, 3 };

static void setup_chain(struct slab_cache *c)
{
	for (int i = 0; i < NH; i++)
		rec_init(&H[i], i, prio[i], c);
	for (int i = 0; i < NH; i++)
		rec_register(&H[reg_order[i]]);
}

struct exp {
	int h, ev;
	void *ptr;       /* NULL: any (checked for consistency by the caller) */
	size_t size;
	slab_gfp_t gfp;
	bool check_gfp;
};

static void expect_log(const char *what, struct slab_cache *c, const struct exp *e, int n)
{
	pthread_mutex_lock(&evlock);
	bool ok = nev == n;
	int bad = ok ? -1 : (nev < n ? nev : n);
	for (int i = 0; ok && i < n; i++) {
		const struct event *v = &evlog[i];
		if (v->h != e[i].h || v->ev != e[i].ev || v->cache != c || (e[i].ptr && v->ptr != e[i].ptr) ||
		    v->size != e[i].size || (e[i].check_gfp && v->gfp != e[i].gfp) || !v->in_handler) {
			ok = false;
			bad = i;
		}
	}
	if (!ok) {
		log_dump(what);
		fprintf(stderr, "expected %d events:\n", n);
		for (int i = 0; i < n; i++)
			fprintf(stderr, "  [%d] h%d %-8s %p size %zu gfp %#x\n", i, e[i].h, ev_name(e[i].ev),
				e[i].ptr, e[i].size, e[i].gfp);
	}
	pthread_mutex_unlock(&evlock);
	cr_assert(ok, "%s: event log differs from the expected one at [%d] (see stderr)", what, bad);
}

Test(chain_order, events_data_and_priority_order)
{
	struct slab_cache *c = create_ok("order", 72, SLAB_NOTIFY);
	struct slab_cache_info in = info_of(c);
	setup_chain(c);

	/* First allocation: NEWPAGE to every handler in chain order, then
	 * ALLOC in chain order. Slabs are aligned to their size, and a new
	 * slab hands out its objects in a random order: the page is the
	 * object's address rounded down. */
	log_clear();
	void *a = slab_cache_alloc(c, SLAB_GFP_ZERO);
	cr_assert_not_null(a);
	void *page = (void *)((uintptr_t)a & ~(uintptr_t)(in.slab_bytes - 1));
	struct exp e[2 * NH];
	for (int i = 0; i < NH; i++) {
		e[i] = (struct exp){ chain[i], SLAB_EVENT_NEWPAGE, page, in.slab_bytes, SLAB_GFP_ZERO, true };
		e[NH + i] = (struct exp){ chain[i], SLAB_EVENT_ALLOC, a, 72, SLAB_GFP_ZERO, true };
	}
	expect_log("first alloc", c, e, 2 * NH);

	/* Second allocation from the same slab: ALLOC only, gfp as given. */
	log_clear();
	void *b = slab_cache_alloc(c, SLAB_GFP_NOWAIT);
	cr_assert_not_null(b);
	for (int i = 0; i < NH; i++)
		e[i] = (struct exp){ chain[i], SLAB_EVENT_ALLOC, b, 72, SLAB_GFP_NOWAIT, true };
	expect_log("second alloc", c, e, NH);

	/* A free: FREE to each handler exactly once, gfp 0, no other event. */
	log_clear();
	slab_cache_free(c, a);
	cr_assert_eq(log_count(), NH);
	for (int i = 0; i < NH; i++) {
		cr_assert_eq(log_find(i, SLAB_EVENT_FREE, a), 1, "h%d: FREE of a", i);
		cr_assert_eq(evlog[i].size, 72);
		cr_assert_eq(evlog[i].gfp, 0, "FREE carries gfp 0");
		cr_assert_eq(evlog[i].cache, c);
	}
	log_clear();
	slab_cache_free(c, b);
	cr_assert_eq(log_count(), NH);

	/* Shrink: FREEPAGE of the slab to each handler, size slab_bytes. */
	log_clear();
	cr_assert_gt(slab_cache_shrink(c), 0);
	cr_assert_eq(log_count(), NH);
	for (int i = 0; i < NH; i++) {
		cr_assert_eq(log_find(i, SLAB_EVENT_FREEPAGE, page), 1, "h%d: FREEPAGE of the slab", i);
		cr_assert_eq(evlog[i].size, in.slab_bytes);
		cr_assert_eq(evlog[i].gfp, 0);
	}
	for (int i = 0; i < NH; i++)
		rec_check_balanced(&H[i]);
	cr_assert_eq(info_of(c).num_slabs, 0);
	cr_assert(!slab_in_handler(), "slab_in_handler() outside handlers");
}

/* The expected log of a veto by chain[v] of @ev on @ptr: @ev to chain[0..v],
 * then the undo event to chain[v-1..0]. */
static int veto_expect(struct exp *e, int v, int ev, void *ptr, size_t size, slab_gfp_t gfp)
{
	int n = 0;
	int undo = ev == SLAB_EVENT_ALLOC ? SLAB_EVENT_FREE : SLAB_EVENT_FREEPAGE;
	for (int i = 0; i <= v; i++)
		e[n++] = (struct exp){ chain[i], ev, ptr, size, gfp, true };
	for (int i = v; i-- > 0;)
		e[n++] = (struct exp){ chain[i], undo, ptr, size, 0, false };
	return n;
}

static const int veto_codes[] = { 0 /* SLAB_NOTIFY_BAD */, EPERM, EACCES, ENOSPC, EAGAIN, EIO, -EACCES };

Test(chain_veto, random_positions_alloc_and_newpage, .timeout = 60)
{
	struct slab_cache *c = create_ok("veto", 200, SLAB_NOTIFY);
	struct slab_cache_info in = info_of(c);
	setup_chain(c);
	void *live[256];
	int nlive = 0;
	int trials = 400 / SCALE;
	int seen[2][NH] = { { 0 } };

	for (int t = 0; t < trials; t++) {
		int v = (int)rnd_below(NH);
		bool newpage = rnd_below(3) == 0;
		int code = veto_codes[rnd_below(sizeof(veto_codes) / sizeof(veto_codes[0]))];
		int ret = code ? slab_notify_from_errno(code) : SLAB_NOTIFY_BAD;
		int want_errno = -slab_notify_to_errno(ret);
		slab_gfp_t gfp = (slab_gfp_t[]){ 0, SLAB_GFP_ZERO, SLAB_GFP_NOWAIT }[rnd_below(3)];
		seen[newpage][v]++;
		struct exp e[2 * NH];
		char what[128];
		snprintf(what, sizeof(what), "trial %d: %s veto by h%d (chain pos %d), ret %#x", t,
			 newpage ? "NEWPAGE" : "ALLOC", chain[v], v, ret);

		if (newpage) {
			/* Empty the cache so that the next alloc needs a page. */
			while (nlive)
				slab_cache_free(c, live[--nlive]);
			slab_cache_shrink(c);
			cr_assert_eq(info_of(c).num_slabs, 0, "%s: cache not empty after shrink", what);
		}
		/* ALLOC trial: a known object at the head of the freelist, so
		 * that the next allocation takes it and needs no page. */
		void *head = NULL;
		if (!newpage) {
			head = slab_cache_alloc(c, 0);
			cr_assert_not_null(head);
			slab_cache_free(c, head);
		}
		struct slab_cache_info before = info_of(c);
		log_clear();
		H[chain[v]].veto_event = newpage ? SLAB_EVENT_NEWPAGE : SLAB_EVENT_ALLOC;
		H[chain[v]].veto_ret = ret;
		errno = 0;
		void *q = slab_cache_alloc(c, gfp);
		int err = errno;
		cr_assert_null(q, "%s: allocation succeeded", what);
		cr_assert_eq(err, want_errno, "%s: errno %d (%s), expected %d", what, err, strerror(err),
			     want_errno);
		cr_assert_eq(H[chain[v]].veto_event, -1, "%s: the vetoer was not called", what);
		int n;
		if (newpage) {
			n = veto_expect(e, v, SLAB_EVENT_NEWPAGE, NULL, in.slab_bytes, gfp);
			expect_log(what, c, e, n);
			void *page = evlog[0].ptr;
			for (int i = 0; i < n; i++)
				cr_assert_eq(evlog[i].ptr, page, "%s: events name different pages", what);
			cr_assert_eq((uintptr_t)page % in.slab_bytes, 0);
		} else {
			n = veto_expect(e, v, SLAB_EVENT_ALLOC, head, 200, gfp);
			expect_log(what, c, e, n);
		}
		/* Nothing changed in the cache: no live object, no slab kept. */
		struct slab_cache_info after = info_of(c);
		cr_assert_eq(after.active_objs, before.active_objs, "%s: active_objs %lu -> %lu", what,
			     before.active_objs, after.active_objs);
		cr_assert_eq(after.num_slabs, before.num_slabs, "%s: num_slabs %lu -> %lu", what,
			     before.num_slabs, after.num_slabs);
		for (int i = 0; i < NH; i++)
			rec_check(&H[i]);

		/* No further event; the object is back at the freelist head. */
		cr_assert_eq(log_count(), n, "%s: late events", what);
		log_clear();
		void *r = slab_cache_alloc(c, 0);
		cr_assert_not_null(r);
		if (!newpage)
			cr_assert_eq(r, head, "%s: vetoed object %p not back on the freelist (got %p)", what,
				     head, r);
		/* The retry is accepted by all: (NEWPAGE) + ALLOC to each, no FREE. */
		cr_assert_eq(log_find(-1, SLAB_EVENT_FREE, NULL), 0, "%s: FREE after the retry", what);
		cr_assert_eq(log_find(-1, SLAB_EVENT_FREEPAGE, NULL), 0);
		cr_assert_eq(log_find(-1, SLAB_EVENT_ALLOC, r), NH);
		for (int i = 0; i < NH; i++)
			cr_assert_eq(rec_live(&H[i], r, SLAB_EVENT_ALLOC), 1, "%s: h%d", what, i);
		live[nlive++] = r;
		/* Vary the state: keep some objects live, free some. */
		int extra = (int)rnd_below(6);
		for (int i = 0; i < extra && nlive < 250; i++)
			cr_assert_not_null(live[nlive++] = slab_cache_alloc(c, 0));
		for (int i = (int)rnd_below(4); i > 0 && nlive; i--) {
			int k = (int)rnd_below((unsigned)nlive);
			slab_cache_free(c, live[k]);
			live[k] = live[--nlive];
		}
	}
	while (nlive)
		slab_cache_free(c, live[--nlive]);
	slab_cache_shrink(c);
	cr_assert_eq(info_of(c).active_objs, 0);
	cr_assert_eq(info_of(c).num_slabs, 0);
	for (int i = 0; i < NH; i++)
		rec_check_balanced(&H[i]);
	/* The random trials did cover every position, both kinds. */
	for (int k = 0; k < 2; k++)
		for (int i = 0; i < NH; i++)
			cr_assert_gt(seen[k][i], 0, "position %d kind %d never tried", i, k);
	cr_assert(!ev_overflow);
}

/* A veto in a chain where handlers share a priority: rollback follows the
 * registration order of equals exactly. */
Test(chain_veto, equal_priorities_roll_back_in_reverse_registration_order)
{
	struct slab_cache *c = create_ok("eq", 64, SLAB_NOTIFY);
	struct rec r[4];
	for (int i = 0; i < 4; i++) {
		rec_init(&r[i], i, 7, c);
		rec_register(&r[i]);
	}
	void *warm = slab_cache_alloc(c, 0); /* the NEWPAGE out of the way */
	cr_assert_not_null(warm);
	log_clear();
	r[3].veto_event = SLAB_EVENT_ALLOC;
	r[3].veto_ret = slab_notify_from_errno(EACCES);
	errno = 0;
	cr_assert_null(slab_cache_alloc(c, 0));
	cr_assert_eq(errno, EACCES);
	cr_assert_eq(nev, 7);
	static const int want_h[7] = { 0, 1, 2, 3, 2, 1, 0 };
	static const int want_ev[7] = { SLAB_EVENT_ALLOC, SLAB_EVENT_ALLOC, SLAB_EVENT_ALLOC, SLAB_EVENT_ALLOC,
					SLAB_EVENT_FREE, SLAB_EVENT_FREE, SLAB_EVENT_FREE };
	for (int i = 0; i < 7; i++) {
		cr_assert_eq(evlog[i].h, want_h[i], "[%d] h%d, expected h%d", i, evlog[i].h, want_h[i]);
		cr_assert_eq(evlog[i].ev, want_ev[i], "[%d] %s", i, ev_name(evlog[i].ev));
	}
	/* Vetoing the first handler: nobody hears anything but it. */
	log_clear();
	r[0].veto_event = SLAB_EVENT_ALLOC;
	r[0].veto_ret = SLAB_NOTIFY_BAD;
	errno = 0;
	cr_assert_null(slab_cache_alloc(c, 0));
	cr_assert_eq(errno, ENOMEM);
	cr_assert_eq(nev, 1);
	cr_assert_eq(evlog[0].h, 0);
	slab_cache_free(c, warm);
	slab_cache_shrink(c);
	for (int i = 0; i < 4; i++)
		rec_check_balanced(&r[i]);
}

/* ------------------------------------------------------------------ */
/* 2. Encoding                                                        */
/* ------------------------------------------------------------------ */

Test(encoding, from_errno_to_errno_round_trip)
{
	cr_assert_eq(slab_notify_from_errno(0), SLAB_NOTIFY_OK);
	cr_assert_eq(slab_notify_to_errno(SLAB_NOTIFY_OK), 0);
	cr_assert_eq(slab_notify_to_errno(SLAB_NOTIFY_DONE), 0);
	cr_assert_eq(slab_notify_to_errno(SLAB_NOTIFY_BAD), -ENOMEM);
	cr_assert_eq(slab_notify_to_errno(SLAB_NOTIFY_STOP_MASK), 0);
	cr_assert_eq(slab_notify_to_errno(SLAB_NOTIFY_STOP_MASK | SLAB_NOTIFY_OK), 0);
	/* EPERM is the one errno that encodes as plain BAD (kernel quirk). */
	cr_assert_eq(slab_notify_from_errno(EPERM), SLAB_NOTIFY_BAD);
	cr_assert_eq(slab_notify_from_errno(-EPERM), SLAB_NOTIFY_BAD);
	cr_assert_eq(slab_notify_to_errno(slab_notify_from_errno(EPERM)), -ENOMEM);
	for (int e = 2; e < 4096; e++) {
		int pos = slab_notify_from_errno(e), neg = slab_notify_from_errno(-e);
		cr_assert_eq(pos, neg, "from_errno(%d) %#x != from_errno(-%d) %#x", e, pos, e, neg);
		cr_assert(pos & SLAB_NOTIFY_STOP_MASK, "from_errno(%d) = %#x has no stop bit", e, pos);
		cr_assert_eq(pos, SLAB_NOTIFY_STOP_MASK | (SLAB_NOTIFY_OK + e), "kernel encoding of %d", e);
		cr_assert_eq(slab_notify_to_errno(pos), -e, "to_errno(from_errno(%d)) = %d", e,
			     slab_notify_to_errno(pos));
	}
	cr_assert_eq(slab_notify_to_errno(slab_notify_from_errno(ENOMEM)), -ENOMEM);
	cr_assert_eq(slab_notify_to_errno(slab_notify_from_errno(EACCES)), -EACCES);
}

/* The header: "The negative errno of a return value: 0 unless the stop
 * bit is set". Values without the stop bit are accepted, never errors. */
Test(encoding, to_errno_is_zero_without_stop_bit)
{
	int bad = 0, first = -1;
	for (int ret = 0; ret < SLAB_NOTIFY_STOP_MASK; ret++)
		if (slab_notify_to_errno(ret) != 0 && bad++ == 0)
			first = ret;
	cr_assert_eq(bad, 0, "slab_notify_to_errno() is nonzero for %d values without the stop bit, "
			     "first %#x -> %d", bad, first, first >= 0 ? slab_notify_to_errno(first) : 0);
}

/* ------------------------------------------------------------------ */
/* 3. Registration                                                    */
/* ------------------------------------------------------------------ */

Test(registration, errors)
{
	struct rec a;
	rec_init(&a, 0, 0, NULL);
	errno = 0;
	cr_assert_eq(slab_notifier_register(NULL), -EINVAL);
	cr_assert_eq(errno, EINVAL);
	struct slab_notifier nocall = { 0 };
	errno = 0;
	cr_assert_eq(slab_notifier_register(&nocall), -EINVAL);
	cr_assert_eq(errno, EINVAL);
	errno = 0;
	cr_assert_eq(slab_notifier_unregister(&a.nb), -ENOENT);
	cr_assert_eq(errno, ENOENT);
	cr_assert_eq(slab_notifier_register(&a.nb), 0);
	errno = 0;
	cr_assert_eq(slab_notifier_register(&a.nb), -EEXIST);
	cr_assert_eq(errno, EEXIST);
	cr_assert_eq(slab_notifier_unregister(&a.nb), 0);
	errno = 0;
	cr_assert_eq(slab_notifier_unregister(&a.nb), -ENOENT);
	cr_assert_eq(errno, ENOENT);
	/* Registrable again once unregistered. */
	cr_assert_eq(slab_notifier_register(&a.nb), 0);
	cr_assert_eq(slab_notifier_unregister(&a.nb), 0);
}

static int deadlk_ret[4];
static int deadlk_errno[4];
static int deadlk_n;
static struct rec *deadlk_other;

static int deadlk_hook(struct rec *r, enum slab_event ev, const struct slab_event_data *d)
{
	(void)d;
	/* Unregister itself, then another registered handler. */
	for (int k = 0; k < 2 && (ev == SLAB_EVENT_ALLOC || ev == SLAB_EVENT_FREE) && deadlk_n < 4; k++) {
		errno = 0;
		deadlk_ret[deadlk_n] = slab_notifier_unregister(k ? &deadlk_other->nb : &r->nb);
		deadlk_errno[deadlk_n] = errno;
		deadlk_n++;
	}
	return 0;
}

Test(registration, unregister_from_a_handler_is_edeadlk)
{
	struct slab_cache *c = create_ok("deadlk", 32, SLAB_NOTIFY);
	struct rec a, b;
	rec_init(&a, 0, 5, c);
	rec_init(&b, 1, 0, c);
	a.hook = deadlk_hook;
	deadlk_other = &b;
	rec_register(&a);
	rec_register(&b);
	void *p = slab_cache_alloc(c, 0); /* ALLOC: unregister self, then b */
	cr_assert_not_null(p);
	slab_cache_free(c, p);            /* FREE: the same again */
	cr_assert_eq(deadlk_n, 4);
	for (int i = 0; i < 4; i++) {
		cr_assert_eq(deadlk_ret[i], -EDEADLK, "call %d: %d", i, deadlk_ret[i]);
		cr_assert_eq(deadlk_errno[i], EDEADLK);
	}
	/* Both still registered: they hear the next allocation. */
	log_clear();
	p = slab_cache_alloc(c, 0);
	cr_assert_eq(log_find(0, SLAB_EVENT_ALLOC, p), 1);
	cr_assert_eq(log_find(1, SLAB_EVENT_ALLOC, p), 1);
	slab_cache_free(c, p);
	rec_unregister(&a);
	rec_unregister(&b);
	rec_check_objects(&a);
	rec_check_objects(&b);
}

/*
 * Registration and pairing, with handler a alone at times. @pin: a is
 * the pinned notifier (consumer.h): the objects allocated while it is
 * alone have their FREEs sent to it directly, also once b is registered,
 * and a must not be unregistered.
 */
static void late_and_unregistered(bool pin)
{
	struct slab_cache *c = create_ok("late", 40, SLAB_NOTIFY);
	struct rec a, b;
	rec_init(&a, 0, 0, c);
	rec_init(&b, 1, 0, c);

	/* Allocated with no handler at all: nobody gets its FREE. */
	void *x0 = slab_cache_alloc(c, 0);
	rec_register(&a);
	if (pin)
		sn_notifier_pin(&a.nb);
	log_clear();
	slab_cache_free(c, x0);
	cr_assert_eq(log_count(), 0, "FREE of an object allocated before any handler");

	/* a registered; x allocated; b registered after: only a gets FREE. */
	void *x = slab_cache_alloc(c, 0);
	rec_register(&b);
	void *y = slab_cache_alloc(c, 0);
	log_clear();
	slab_cache_free(c, x);
	cr_assert_eq(log_find(0, SLAB_EVENT_FREE, x), 1);
	cr_assert_eq(log_find(1, SLAB_EVENT_FREE, x), 0, "late handler got the FREE of an older object");
	cr_assert_eq(log_count(), 1);
	log_clear();
	slab_cache_free(c, y);
	cr_assert_eq(log_find(0, SLAB_EVENT_FREE, y), 1);
	cr_assert_eq(log_find(1, SLAB_EVENT_FREE, y), 1);

	/* Unregistered: nothing more, not even the FREE of what it accepted,
	 * nor after it registers again (a new registration is a new handler). */
	void *z = slab_cache_alloc(c, 0);
	void *w = slab_cache_alloc(c, 0);
	cr_assert_eq(rec_live(&b, z, SLAB_EVENT_ALLOC), 1);
	rec_unregister(&b);
	log_clear();
	slab_cache_free(c, z);
	void *u = slab_cache_alloc(c, 0);
	cr_assert_eq(log_find(1, -1, NULL), 0, "unregistered handler was called");
	cr_assert_eq(log_find(0, SLAB_EVENT_FREE, z), 1);
	rec_register(&b);
	log_clear();
	slab_cache_free(c, w);
	cr_assert_eq(log_find(1, -1, NULL), 0, "re-registered handler got the FREE of its old object");
	cr_assert_eq(log_find(0, SLAB_EVENT_FREE, w), 1);
	slab_cache_free(c, u);
	cr_assert_eq(log_find(1, -1, NULL), 0);
	if (pin) {
		errno = 0;
		cr_assert_eq(slab_notifier_unregister(&a.nb), -EBUSY, "a pinned notifier was unregistered");
		cr_assert_eq(errno, EBUSY);
		/* Alone again: its FREE comes straight, and b hears nothing. */
		rec_unregister(&b);
		log_clear();
		void *v = slab_cache_alloc(c, 0);
		slab_cache_free(c, v);
		cr_assert_eq(log_find(0, SLAB_EVENT_ALLOC, v), 1);
		cr_assert_eq(log_find(0, SLAB_EVENT_FREE, v), 1);
		cr_assert_eq(log_find(1, -1, NULL), 0);
	}
	rec_check(&a);
	rec_check(&b);
}

Test(registration, late_handler_gets_no_free_and_unregistered_gets_nothing)
{
	late_and_unregistered(false);
}

Test(registration, pinned_handler_pairs_the_same_and_stays)
{
	late_and_unregistered(true);
}

/* Pinning a notifier that is not registered does nothing: it registers
 * and unregisters as ever. */
Test(registration, pinning_an_unregistered_notifier_is_ignored)
{
	struct rec a;
	rec_init(&a, 0, 0, NULL);
	sn_notifier_pin(&a.nb);
	rec_register(&a);
	rec_unregister(&a);
	rec_check(&a);
}

/* Alone and pinned, a still gets no FREE of an object allocated before
 * it registered (under another handler, since gone). */
Test(registration, pinned_handler_gets_no_free_of_older_objects)
{
	struct slab_cache *c = create_ok("late-pinned", 40, SLAB_NOTIFY);
	struct rec a, b;
	rec_init(&a, 0, 0, c);
	rec_init(&b, 1, 0, c);
	rec_register(&b);
	void *o = slab_cache_alloc(c, 0);
	rec_register(&a);
	sn_notifier_pin(&a.nb);
	rec_unregister(&b);
	log_clear();
	slab_cache_free(c, o);
	cr_assert_eq(log_count(), 0, "the FREE of an object allocated before the pinned handler registered");
	rec_check(&a);
}

/* Only the first notifier pinned can ever be alone again; a second one
 * stays as well, and both pair as any handler does. */
Test(registration, second_pinned_handler_stays_and_pairs)
{
	struct slab_cache *c = create_ok("pinned-two", 40, SLAB_NOTIFY);
	struct rec a, b;
	rec_init(&a, 0, 0, c);
	rec_init(&b, 1, 0, c);
	rec_register(&a);
	sn_notifier_pin(&a.nb);
	void *x = slab_cache_alloc(c, 0);
	rec_register(&b);
	sn_notifier_pin(&b.nb);
	cr_assert_eq(slab_notifier_unregister(&b.nb), -EBUSY, "the second pinned notifier was unregistered");
	void *y = slab_cache_alloc(c, 0);
	log_clear();
	slab_cache_free(c, x);
	slab_cache_free(c, y);
	cr_assert_eq(log_find(0, SLAB_EVENT_FREE, x), 1);
	cr_assert_eq(log_find(1, SLAB_EVENT_FREE, x), 0, "late handler got the FREE of an older object");
	cr_assert_eq(log_find(0, SLAB_EVENT_FREE, y), 1);
	cr_assert_eq(log_find(1, SLAB_EVENT_FREE, y), 1);
	cr_assert_eq(log_count(), 3);
	rec_check_objects(&a);
	rec_check_objects(&b);
}

/* The pinned notifier alone vetoes: its direct ALLOC gives NULL with
 * the veto's errno, the object goes back with no FREE, NOFAIL overrides,
 * and nothing stays counted as notified. */
Test(registration, pinned_handler_alone_vetoes_exactly)
{
	struct slab_cache *c = create_ok("pinned-veto", 48, SLAB_NOTIFY);
	struct rec a;
	rec_init(&a, 0, 0, c);
	rec_register(&a);
	sn_notifier_pin(&a.nb);
	a.veto_event = SLAB_EVENT_ALLOC;
	a.veto_ret = slab_notify_from_errno(-EDQUOT);
	a.veto_sticky = true;
	log_clear();
	errno = 0;
	cr_assert_null(slab_cache_alloc(c, 0), "a vetoed allocation returned an object");
	cr_assert_eq(errno, EDQUOT);
	cr_assert_eq(log_find(0, SLAB_EVENT_ALLOC, NULL), 1);
	cr_assert_eq(log_find(0, SLAB_EVENT_FREE, NULL), 0, "a FREE for a vetoed ALLOC");
	void *p = slab_cache_alloc(c, SLAB_GFP_NOFAIL);
	cr_assert_not_null(p, "NOFAIL overrides the veto");
	a.veto_event = -1;
	log_clear();
	slab_cache_free(c, p);
	cr_assert_eq(log_find(0, SLAB_EVENT_FREE, p), 1);
	cr_assert_eq(info_of(c).active_objs, 0);
	rec_check_objects(&a);
}

/* Generations stay below the pinned stamp: registration fails with
 * ENOSPC once they run out, and the last ones pair as any other. */
Test(registration, generations_run_out_with_enospc)
{
	struct slab_cache *c = create_ok("gen-limit", 40, SLAB_NOTIFY);
	struct rec a, b, d;
	rec_init(&a, 0, 0, c);
	rec_init(&b, 1, 0, c);
	rec_init(&d, 2, 0, c);
	notify_chain_gen = 0x7ffffffdu;
	rec_register(&a);
	rec_register(&b);
	errno = 0;
	cr_assert_eq(slab_notifier_register(&d.nb), -ENOSPC, "a registration past the last generation");
	cr_assert_eq(errno, ENOSPC);
	log_clear();
	void *x = slab_cache_alloc(c, 0);
	rec_unregister(&a);
	slab_cache_free(c, x);
	cr_assert_eq(log_find(1, SLAB_EVENT_ALLOC, x), 1);
	cr_assert_eq(log_find(1, SLAB_EVENT_FREE, x), 1, "the FREE of an object stamped with the last generation");
	cr_assert_eq(log_find(0, SLAB_EVENT_FREE, x), 0);
	rec_unregister(&b);
	rec_check_objects(&b);
}

static atomic_int slow_entered, slow_done;

static int slow_hook(struct rec *r, enum slab_event ev, const struct slab_event_data *d)
{
	(void)r;
	(void)d;
	if (ev == SLAB_EVENT_ALLOC && !atomic_load(&slow_entered)) {
		atomic_store(&slow_entered, 1);
		msleep(300);
		atomic_store(&slow_done, 1);
	}
	return 0;
}

static void *slow_alloc_thread(void *arg)
{
	struct slab_cache *c = arg;
	void *p = slab_cache_alloc(c, 0);
	slab_cache_free(c, p);
	return p;
}

Test(registration, unregister_waits_for_a_running_handler)
{
	struct slab_cache *c = create_ok("wait", 32, SLAB_NOTIFY);
	struct rec a;
	rec_init(&a, 0, 0, c);
	a.log = false;
	a.hook = slow_hook;
	rec_register(&a);
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, slow_alloc_thread, c), 0);
	while (!atomic_load(&slow_entered))
		msleep(1);
	double t0 = now_ms();
	cr_assert_eq(slab_notifier_unregister(&a.nb), 0);
	double waited = now_ms() - t0;
	cr_assert_eq(atomic_load(&slow_done), 1,
		     "unregister returned after %.1f ms while the handler was still running", waited);
	void *p;
	pthread_join(t, &p);
	cr_assert_not_null(p);
}

/* ------------------------------------------------------------------ */
/* 4. Switching notification at run time                              */
/* ------------------------------------------------------------------ */

Test(switching, on_off_any_time_with_pairing)
{
	struct slab_cache *off = create_ok("sw-off", 32, 0);
	struct slab_cache *on = create_ok("sw-on", 32, SLAB_NOTIFY);
	struct slab_cache *acct = create_ok("sw-acct", 32, SLAB_ACCOUNT);
	cr_assert(!slab_cache_notify_enabled(off));
	cr_assert(slab_cache_notify_enabled(on), "SLAB_NOTIFY at create means on");
	cr_assert(slab_cache_notify_enabled(acct), "SLAB_ACCOUNT implies SLAB_NOTIFY");
	cr_assert(!info_of(off).notify);
	cr_assert(info_of(on).notify);
	cr_assert(!slab_cache_notify_enabled(NULL));
	errno = 0;
	cr_assert_eq(slab_cache_set_notify(NULL, true), -EINVAL);
	cr_assert_eq(errno, EINVAL);

	struct slab_cache *c = off;
	struct rec a;
	rec_init(&a, 0, 0, c);
	rec_register(&a);

	log_clear();
	void *p_off = slab_cache_alloc(c, 0); /* while off: never a FREE */
	cr_assert_eq(log_count(), 0);
	cr_assert_eq(slab_cache_set_notify(c, true), 0);
	cr_assert(slab_cache_notify_enabled(c));
	cr_assert(info_of(c).notify);
	void *p_on = slab_cache_alloc(c, 0);
	cr_assert_eq(log_find(0, SLAB_EVENT_ALLOC, p_on), 1);
	log_clear();
	slab_cache_free(c, p_off); /* freed while on, allocated while off */
	cr_assert_eq(log_count(), 0, "FREE of an object allocated while notification was off");

	cr_assert_eq(slab_cache_set_notify(c, false), 0);
	cr_assert(!slab_cache_notify_enabled(c));
	cr_assert(!info_of(c).notify);
	sn_rcu_barrier(); /* every deferred switch-off step has run */
	void *q_off = slab_cache_alloc(c, 0);
	cr_assert_eq(log_count(), 0, "ALLOC while off");
	slab_cache_free(c, p_on); /* allocated while on: FREE even though off */
	cr_assert_eq(log_find(0, SLAB_EVENT_FREE, p_on), 1, "FREE lost after switching off");
	log_clear();
	slab_cache_free(c, q_off);
	sn_rcu_barrier();
	void *r = slab_cache_alloc(c, 0);
	slab_cache_free(c, r);
	cr_assert_eq(log_count(), 0);

	/* Rapid toggles with objects born in each state. */
	void *objs[64];
	bool notified[64];
	for (int i = 0; i < 64; i++) {
		bool st = rnd_below(2);
		cr_assert_eq(slab_cache_set_notify(c, st), 0);
		cr_assert_eq(slab_cache_notify_enabled(c), st);
		log_clear();
		objs[i] = slab_cache_alloc(c, 0);
		notified[i] = st;
		cr_assert_eq(log_find(0, SLAB_EVENT_ALLOC, objs[i]), st ? 1 : 0);
		if (rnd_below(4) == 0)
			sn_rcu_barrier();
	}
	for (int k = 0; k < 64; k++) {
		int i = (k * 37) % 64;
		cr_assert_eq(slab_cache_set_notify(c, rnd_below(2)), 0);
		log_clear();
		slab_cache_free(c, objs[i]);
		cr_assert_eq(log_find(0, SLAB_EVENT_FREE, objs[i]), notified[i] ? 1 : 0,
			     "object %d (born %s) freed with notification %s", i, notified[i] ? "on" : "off",
			     slab_cache_notify_enabled(c) ? "on" : "off");
		if (rnd_below(4) == 0)
			sn_rcu_barrier();
	}
	slab_cache_set_notify(c, true);
	slab_cache_shrink(c);
	rec_check_balanced(&a);
}

/*
 * The switch-off race: notification is switched off (the deferred
 * "nothing notified is live" step is queued and its grace period starts),
 * on again, an ALLOC starts and runs its handler, off again, and the first
 * grace period ends while that ALLOC is still in its handler. The object
 * was notified, so its FREE must come. (The reader thread keeps the first
 * grace period open until the ALLOC is under way.)
 */
static atomic_int race_phase;   /* reader: 1 locked; main: 2 unlock */
static atomic_int hold_armed, hold_entered, hold_release, hold_go, hold_warm;

static void *rcu_reader_thread(void *arg)
{
	(void)arg;
	sn_rcu_read_lock();
	atomic_store(&race_phase, 1);
	while (atomic_load(&race_phase) != 2)
		msleep(1);
	sn_rcu_read_unlock();
	return NULL;
}

static int hold_hook(struct rec *r, enum slab_event ev, const struct slab_event_data *d)
{
	(void)r;
	(void)d;
	if (ev == SLAB_EVENT_ALLOC && atomic_exchange(&hold_armed, 0)) {
		atomic_store(&hold_entered, 1);
		while (!atomic_load(&hold_release))
			msleep(1);
	}
	return 0;
}

/* Makes its active slab while notification is off (no notified page, so
 * no notified_live count), then allocates on request. */
static void *hold_alloc_thread(void *arg)
{
	slab_cache_free(arg, slab_cache_alloc(arg, 0));
	atomic_store(&hold_warm, 1);
	while (!atomic_load(&hold_go))
		msleep(1);
	return slab_cache_alloc(arg, 0);
}

/* The allocating thread warmed up, handler a registered (and pinned if
 * @pin) with hold_hook, notification on. */
static pthread_t hold_start(struct slab_cache *c, struct rec *a, bool pin)
{
	pthread_t allocer;
	pthread_create(&allocer, NULL, hold_alloc_thread, c);
	while (!atomic_load(&hold_warm))
		msleep(1);
	rec_init(a, 0, 0, c);
	a->hook = hold_hook;
	rec_register(a);
	if (pin)
		sn_notifier_pin(&a->nb);
	cr_assert_eq(slab_cache_set_notify(c, true), 0);
	return allocer;
}

/* The held ALLOC let go: its object was accepted, and its FREE comes. */
static void *hold_finish(struct slab_cache *c, pthread_t allocer, struct rec *a, const char *lost)
{
	atomic_store(&hold_release, 1);
	void *p;
	pthread_join(allocer, &p);
	cr_assert_not_null(p);
	cr_assert_eq(rec_live(a, p, SLAB_EVENT_ALLOC), 1, "the ALLOC was accepted");
	log_clear();
	slab_cache_free(c, p);
	cr_expect_eq(log_find(0, SLAB_EVENT_FREE, p), 1, "%s", lost);
	return p;
}

Test(switching, off_on_off_during_an_inflight_alloc_keeps_its_free, .timeout = 30)
{
	struct slab_cache *c = create_ok("race", 32, 0);
	pthread_t reader;
	struct rec a;
	pthread_t allocer = hold_start(c, &a, false);
	sn_rcu_barrier();

	pthread_create(&reader, NULL, rcu_reader_thread, NULL);
	while (atomic_load(&race_phase) != 1)
		msleep(1);
	cr_assert_eq(slab_cache_set_notify(c, false), 0); /* deferred step queued */
	msleep(100);                                     /* its grace period runs */
	cr_assert_eq(slab_cache_set_notify(c, true), 0);
	atomic_store(&hold_armed, 1);
	atomic_store(&hold_go, 1);
	while (!atomic_load(&hold_entered))
		msleep(1);
	cr_assert_eq(slab_cache_set_notify(c, false), 0);
	atomic_store(&race_phase, 2);                     /* the grace period ends */
	pthread_join(reader, NULL);
	msleep(300);
	void *p = hold_finish(c, allocer, &a,
			      "object allocated while notification was on got no FREE (switched off/on/off "
			      "during its ALLOC)");

	/* Whatever happened, a later life of the same object, allocated while
	 * notification is off, must not produce a FREE either. */
	cr_assert_eq(slab_cache_set_notify(c, true), 0);
	cr_assert_eq(slab_cache_set_notify(c, false), 0);
	sn_rcu_barrier();
	atomic_store(&hold_go, 0);
	log_clear();
	unsigned n = info_of(c).objs_per_slab * 2;
	void **q = calloc(n, sizeof(void *));
	bool reused = false;
	for (unsigned i = 0; i < n && !reused; i++) {
		q[i] = slab_cache_alloc(c, 0); /* off: not notified */
		reused = q[i] == p;
	}
	cr_assert(reused, "test needs %p allocated again", p);
	cr_assert_eq(log_count(), 0);
	for (unsigned i = 0; i < n; i++)
		slab_cache_free(c, q[i]);
	free(q);
	cr_expect_eq(log_count(), 0, "FREE of an object allocated while notification was off "
				     "(a stale stamp from the lost FREE)");
	rec_check_objects(&a);
}

/*
 * The same switch-off, for the pinned notifier alone, whose ALLOCs are
 * called outside any read-side section: no grace period waits for its
 * handler, so the drain that runs while the handler holds must find the
 * object counted already, and its FREE must still come.
 */
Test(switching, off_during_a_pinned_inflight_alloc_keeps_its_free, .timeout = 30)
{
	struct slab_cache *c = create_ok("race-pinned", 32, 0);
	struct rec a;
	pthread_t allocer = hold_start(c, &a, true);
	atomic_store(&hold_armed, 1);
	atomic_store(&hold_go, 1);
	while (!atomic_load(&hold_entered))
		msleep(1);
	cr_assert_eq(slab_cache_set_notify(c, false), 0);
	sn_rcu_barrier();                                 /* the drain has run */
	hold_finish(c, allocer, &a,
		    "object allocated by the pinned notifier's direct ALLOC got no FREE (switched off "
		    "during its ALLOC)");
	rec_check_objects(&a);
}

/* ------------------------------------------------------------------ */
/* 6 (single-threaded part). gfp reaches the handler                  */
/* ------------------------------------------------------------------ */

Test(gfp, nowait_and_zero_are_passed_through)
{
	struct slab_cache *c = create_ok("gfp", 96, SLAB_NOTIFY);
	struct rec a;
	rec_init(&a, 0, 0, c);
	rec_register(&a);
	static const slab_gfp_t gfps[] = { 0, SLAB_GFP_NOWAIT, SLAB_GFP_ZERO, SLAB_GFP_NOWAIT | SLAB_GFP_ZERO };
	void *p[4];
	for (int i = 0; i < 4; i++) {
		log_clear();
		p[i] = slab_cache_alloc(c, gfps[i]);
		cr_assert_not_null(p[i]);
		int k = nev - 1;
		cr_assert_eq(evlog[k].ev, SLAB_EVENT_ALLOC);
		cr_assert_eq(evlog[k].gfp, gfps[i], "ALLOC gfp %#x, expected %#x", evlog[k].gfp, gfps[i]);
		if (nev == 2) /* the first one also made the slab */
			cr_assert_eq(evlog[0].gfp, gfps[i], "NEWPAGE gfp %#x", evlog[0].gfp);
	}
	/* slab_malloc passes gfp too. */
	struct slab_cache *k64 = find_cache("kmalloc-64");
	struct rec b;
	rec_init(&b, 1, 0, k64);
	rec_register(&b);
	cr_assert_eq(slab_cache_set_notify(k64, true), 0);
	log_clear();
	void *m = slab_malloc(50, SLAB_GFP_NOWAIT);
	cr_assert_eq(log_find(1, SLAB_EVENT_ALLOC, m), 1);
	cr_assert_eq(evlog[nev - 1].gfp, SLAB_GFP_NOWAIT);
	cr_assert_eq(evlog[nev - 1].size, 64);
	slab_free(m);
	for (int i = 0; i < 4; i++)
		slab_cache_free(c, p[i]);
	rec_check(&a);
	rec_check(&b);
}

/* ------------------------------------------------------------------ */
/* 7. Allocation inside handlers                                      */
/* ------------------------------------------------------------------ */

static struct slab_cache *nest_c;
static void *nest_victim;             /* notified object to free inside */
static void *nest_objs[8];
static int nest_n;
static bool nest_in_handler_ok = true;
static int nest_armed;                /* 1: on next ALLOC, 2: on next FREE */

static int nest_hook(struct rec *r, enum slab_event ev, const struct slab_event_data *d)
{
	(void)r;
	if (!slab_in_handler())
		nest_in_handler_ok = false;
	if (d->cache != nest_c || !nest_armed)
		return 0;
	if ((nest_armed == 1 && ev == SLAB_EVENT_ALLOC) || (nest_armed == 2 && ev == SLAB_EVENT_FREE)) {
		nest_armed = 0;
		/* Kept: freed later outside any handler. */
		nest_objs[nest_n++] = slab_cache_alloc(nest_c, 0);
		nest_objs[nest_n++] = slab_malloc(24, 0);
		/* Allocated and freed right here. */
		void *t = slab_cache_alloc(nest_c, SLAB_GFP_ZERO);
		slab_cache_free(nest_c, t);
		slab_free(slab_malloc(30, 0));
		if (nest_victim) {
			void *v = nest_victim;
			nest_victim = NULL;
			slab_cache_free(nest_c, v);
		}
	}
	return 0;
}

Test(nested, allocations_in_handlers_are_quiet_frees_are_not)
{
	nest_c = create_ok("nest", 48, SLAB_NOTIFY);
	struct slab_cache *k32 = find_cache("kmalloc-32");
	cr_assert_eq(slab_cache_set_notify(k32, true), 0);
	struct rec a, b;
	rec_init(&a, 0, 1, NULL); /* every cache */
	rec_init(&b, 1, 0, NULL);
	a.hook = nest_hook;
	rec_register(&a);
	rec_register(&b);
	cr_assert(!slab_in_handler());

	/* kmalloc-32 is notified outside handlers. */
	log_clear();
	void *m = slab_malloc(20, 0);
	cr_assert_eq(log_find(-1, SLAB_EVENT_ALLOC, m), 2, "kmalloc-32 is notified");
	slab_free(m);
	cr_assert_eq(log_find(-1, SLAB_EVENT_FREE, m), 2);

	void *x = slab_cache_alloc(nest_c, 0);
	nest_victim = x;
	nest_armed = 1;
	log_clear();
	void *y = slab_cache_alloc(nest_c, 0);
	cr_assert_not_null(y);
	cr_assert_eq(nest_n, 2);
	cr_assert_not_null(nest_objs[0]);
	cr_assert_not_null(nest_objs[1]);
	cr_assert(nest_in_handler_ok, "slab_in_handler() false inside a handler");
	cr_assert(!slab_in_handler());
	/* The events: ALLOC y to both, FREE x to both (a nested, notified
	 * free), and nothing for the handler's own allocations. */
	cr_assert_eq(log_find(-1, SLAB_EVENT_ALLOC, y), 2);
	cr_assert_eq(log_find(-1, SLAB_EVENT_FREE, x), 2, "a notified object freed in a handler");
	cr_assert_eq(log_count(), 4, "events for allocations made inside a handler");
	/* The handler's objects produce no FREE later. */
	log_clear();
	slab_cache_free(nest_c, nest_objs[0]);
	slab_free(nest_objs[1]);
	cr_assert_eq(log_count(), 0, "FREE of an object allocated inside a handler");

	/* The same from a FREE handler, freeing a notified object inside. */
	void *z = slab_cache_alloc(nest_c, 0);
	nest_victim = z;
	nest_n = 0;
	nest_armed = 2;
	log_clear();
	slab_cache_free(nest_c, y);
	cr_assert_eq(nest_n, 2);
	cr_assert_eq(log_find(-1, SLAB_EVENT_FREE, y), 2);
	cr_assert_eq(log_find(-1, SLAB_EVENT_FREE, z), 2, "a notified object freed in a FREE handler");
	cr_assert_eq(log_count(), 4);
	log_clear();
	slab_cache_free(nest_c, nest_objs[0]);
	slab_free(nest_objs[1]);
	cr_assert_eq(log_count(), 0);
	cr_assert(nest_in_handler_ok);
	rec_check_objects(&a);
	rec_check_objects(&b);
	cr_assert_eq(info_of(nest_c).active_objs, 0);
}

/* ------------------------------------------------------------------ */
/* 9. SLAB_TYPESAFE_BY_RCU                                             */
/* ------------------------------------------------------------------ */

#define RCU_OBJ 128
static atomic_int rd_phase;   /* 1 locked, 2 go read, 3 read done, 4 unlock */
static void *rd_obj;
static atomic_int rd_intact;

static void *typesafe_reader(void *arg)
{
	(void)arg;
	sn_rcu_read_lock();
	atomic_store(&rd_phase, 1);
	while (atomic_load(&rd_phase) != 2)
		msleep(1);
	const volatile unsigned char *b = rd_obj;
	int intact = 1;
	for (int i = 0; i < RCU_OBJ; i++)
		if (b[i] != 0xA5)
			intact = 0;
	atomic_store(&rd_intact, intact);
	atomic_store(&rd_phase, 3);
	while (atomic_load(&rd_phase) != 4)
		msleep(1);
	sn_rcu_read_unlock();
	return NULL;
}

static bool all_bytes(const void *p, size_t n, unsigned char v)
{
	const volatile unsigned char *b = p;
	for (size_t i = 0; i < n; i++)
		if (b[i] != v)
			return false;
	return true;
}

/* Allocate @nslabs slabs' worth from @press, each object filled with 0x5A:
 * a slab page given back to the page layer is soon reused by them. */
static void press_slabs(struct slab_cache *press, unsigned nslabs, void ***keep, size_t *nkeep)
{
	struct slab_cache_info pi = info_of(press);
	size_t n = (size_t)pi.objs_per_slab * nslabs;
	*keep = realloc(*keep, (*nkeep + n) * sizeof(void *));
	for (size_t i = 0; i < n; i++) {
		void *q = slab_cache_alloc(press, 0);
		cr_assert_not_null(q);
		memset(q, 0x5A, pi.object_size);
		(*keep)[(*nkeep)++] = q;
	}
}

Test(typesafe_rcu, freed_memory_readable_until_unlock_freepage_at_release)
{
	struct slab_cache *c = create_ok("rcu", RCU_OBJ, SLAB_TYPESAFE_BY_RCU | SLAB_NOTIFY);
	/* Another cache with slabs of the same size: the page layer would hand
	 * it our page if the page were given back before the grace period. */
	struct slab_cache *press = create_ok("press", RCU_OBJ, 0);
	cr_assert_eq(info_of(press).slab_bytes, info_of(c).slab_bytes, "test needs equal slab sizes");
	void **keep = NULL;
	size_t nkeep = 0;
	struct rec a;
	rec_init(&a, 0, 0, c);
	rec_register(&a);
	void *o = slab_cache_alloc(c, 0);
	cr_assert_not_null(o);
	memset(o, 0xA5, RCU_OBJ);
	cr_assert_eq(log_find(0, SLAB_EVENT_NEWPAGE, NULL), 1);
	void *page = evlog[0].ptr;

	rd_obj = o;
	pthread_t t;
	pthread_create(&t, NULL, typesafe_reader, NULL);
	while (atomic_load(&rd_phase) != 1)
		msleep(1);
	log_clear();
	slab_cache_free(c, o);
	cr_assert_eq(log_find(0, SLAB_EVENT_FREE, o), 1, "FREE is not deferred");
	cr_assert_eq(log_find(0, SLAB_EVENT_FREEPAGE, NULL), 0, "FREEPAGE before the slab is released");
	cr_assert(all_bytes(o, RCU_OBJ, 0xA5), "freed object's content changed at free");
	long bytes = slab_cache_shrink(c);
	cr_assert_gt(bytes, 0, "shrink released nothing");
	cr_assert_eq(info_of(c).num_slabs, 0);
	cr_assert_eq(log_find(0, SLAB_EVENT_FREEPAGE, page), 1, "FREEPAGE when the slab is released");
	cr_assert_eq(log_count(), 2);
	/* Time for a grace period to end, and pressure to reuse the page. */
	msleep(100);
	press_slabs(press, 4, &keep, &nkeep);
	atomic_store(&rd_phase, 2);
	while (atomic_load(&rd_phase) != 3)
		msleep(1);
	cr_assert_eq(atomic_load(&rd_intact), 1,
		     "reader under urcu_bp_read_lock() saw the freed object's memory change "
		     "before its grace period");
	atomic_store(&rd_phase, 4);
	pthread_join(t, NULL);

	/* After the grace period the page really goes back: reused or zeroed. */
	sn_rcu_barrier();
	for (int i = 0; i < 16 && all_bytes(o, RCU_OBJ, 0xA5); i++)
		press_slabs(press, 1, &keep, &nkeep);
	cr_assert(!all_bytes(o, RCU_OBJ, 0xA5), "the page was never given back");
	cr_assert_eq(log_count(), 2, "no event after the grace period");
	rec_check_balanced(&a);
	cr_assert_eq(slab_cache_destroy(c), 0);
	for (size_t i = 0; i < nkeep; i++)
		slab_cache_free(press, keep[i]);
	free(keep);
}

/* ------------------------------------------------------------------ */
/* 10. NOFAIL                                                         */
/* ------------------------------------------------------------------ */

Test(nofail, vetoes_ignored_every_handler_gets_free)
{
	struct slab_cache *c = create_ok("nofail", 64, SLAB_NOTIFY);
	struct slab_cache_info in = info_of(c);
	setup_chain(c);
	for (int i = 0; i < NH; i++)
		H[i].veto_sticky = true;
	/* chain[1] vetoes NEWPAGE, chain[3] vetoes ALLOC: both ignored. */
	H[chain[1]].veto_event = SLAB_EVENT_NEWPAGE;
	H[chain[1]].veto_ret = SLAB_NOTIFY_BAD;
	H[chain[3]].veto_event = SLAB_EVENT_ALLOC;
	H[chain[3]].veto_ret = slab_notify_from_errno(EACCES);
	log_clear();
	errno = 0;
	void *p = slab_cache_alloc(c, SLAB_GFP_NOFAIL);
	cr_assert_not_null(p, "NOFAIL allocation vetoed (errno %d)", errno);
	struct exp e[2 * NH];
	void *page = (void *)((uintptr_t)p & ~(uintptr_t)(in.slab_bytes - 1));
	for (int i = 0; i < NH; i++) {
		e[i] = (struct exp){ chain[i], SLAB_EVENT_NEWPAGE, page, in.slab_bytes, SLAB_GFP_NOFAIL, true };
		e[NH + i] = (struct exp){ chain[i], SLAB_EVENT_ALLOC, p, 64, SLAB_GFP_NOFAIL, true };
	}
	expect_log("NOFAIL alloc", c, e, 2 * NH);
	cr_assert(evlog[1].ret & SLAB_NOTIFY_STOP_MASK, "the vetoer did veto");
	for (int i = 0; i < NH; i++) {
		cr_assert_eq(rec_live(&H[i], p, SLAB_EVENT_ALLOC), 1, "h%d accepted", i);
		cr_assert_eq(rec_live(&H[i], page, SLAB_EVENT_NEWPAGE), 1);
	}
	cr_assert_eq(info_of(c).active_objs, 1);

	/* Without NOFAIL the same chain vetoes. */
	errno = 0;
	cr_assert_null(slab_cache_alloc(c, 0));
	cr_assert_eq(errno, EACCES);

	log_clear();
	slab_cache_free(c, p);
	for (int i = 0; i < NH; i++)
		cr_assert_eq(log_find(i, SLAB_EVENT_FREE, p), 1, "h%d: FREE after a NOFAIL ALLOC", i);
	cr_assert_eq(log_count(), NH);
	slab_cache_shrink(c);
	for (int i = 0; i < NH; i++)
		cr_assert_eq(log_find(i, SLAB_EVENT_FREEPAGE, page), 1, "h%d: FREEPAGE after a NOFAIL NEWPAGE", i);
	for (int i = 0; i < NH; i++)
		rec_check_balanced(&H[i]);
}

/* ------------------------------------------------------------------ */
/* 11. obj_ext                                                        */
/* ------------------------------------------------------------------ */

static int ext_slot;
static atomic_int ext_not_null_at_alloc;
static atomic_int ext_alloc_calls;
static void *_Atomic ext_read_at_free;
static atomic_int ext_free_calls;

static int ext_hook(struct rec *r, enum slab_event ev, const struct slab_event_data *d)
{
	(void)r;
	void **w = slab_obj_ext(d->ptr, ext_slot);
	if (ev == SLAB_EVENT_ALLOC) {
		atomic_fetch_add(&ext_alloc_calls, 1);
		if (!w || *w)
			atomic_fetch_add(&ext_not_null_at_alloc, 1);
		if (w)
			*w = (void *)((uintptr_t)d->ptr ^ 0x5a5a5a5aUL);
	} else if (ev == SLAB_EVENT_FREE) {
		atomic_fetch_add(&ext_free_calls, 1);
		atomic_store(&ext_read_at_free, w ? *w : NULL);
	}
	return 0;
}

static void *free_in_thread(void *arg)
{
	slab_free(arg);
	return NULL;
}

Test(obj_ext, reserve_distinct_slots_then_enospc)
{
	bool used[SLAB_OBJ_EXT_SLOTS] = { false };
	int n = 0;
	for (;;) {
		errno = 0;
		int s = slab_obj_ext_reserve();
		if (s < 0) {
			cr_assert_eq(s, -ENOSPC);
			cr_assert_eq(errno, ENOSPC);
			break;
		}
		cr_assert_lt(s, SLAB_OBJ_EXT_SLOTS, "slot %d out of range", s);
		cr_assert(!used[s], "slot %d handed out twice", s);
		used[s] = true;
		n++;
		cr_assert_leq(n, SLAB_OBJ_EXT_SLOTS);
	}
	cr_assert_geq(n, 4, "only %d slots available", n);
	cr_assert_eq(slab_obj_ext_reserve(), -ENOSPC, "ENOSPC is sticky");
}

Test(obj_ext, null_at_each_alloc_value_kept_to_free_on_another_thread)
{
	ext_slot = slab_obj_ext_reserve();
	cr_assert_geq(ext_slot, 0);
	int other = slab_obj_ext_reserve();
	cr_assert_geq(other, 0);
	cr_assert_neq(other, ext_slot);
	struct slab_cache *c = create_ok("ext", 56, SLAB_NOTIFY);
	struct rec a;
	rec_init(&a, 0, 0, c);
	a.hook = ext_hook;
	rec_register(&a);

	void *x = slab_cache_alloc(c, 0);
	cr_assert_not_null(x);
	cr_assert_eq(atomic_load(&ext_alloc_calls), 1);
	void **w = slab_obj_ext(x, ext_slot);
	cr_assert_not_null(w);
	cr_assert_eq(*w, (void *)((uintptr_t)x ^ 0x5a5a5a5aUL), "value set at ALLOC");
	void **w2 = slab_obj_ext(x, other);
	cr_assert_not_null(w2);
	cr_assert_null(*w2, "untouched slot is NULL");
	cr_assert_neq(w, w2);
	*w2 = (void *)0x1234;
	/* Bad slots. */
	cr_assert_null(slab_obj_ext(x, -1));
	cr_assert_null(slab_obj_ext(x, SLAB_OBJ_EXT_SLOTS));
	cr_assert_null(slab_obj_ext(NULL, ext_slot));

	/* Freed on another thread: the FREE handler reads the ALLOC's value. */
	pthread_t t;
	pthread_create(&t, NULL, free_in_thread, x);
	pthread_join(t, NULL);
	cr_assert_eq(atomic_load(&ext_free_calls), 1);
	cr_assert_eq(atomic_load(&ext_read_at_free), (void *)((uintptr_t)x ^ 0x5a5a5a5aUL),
		     "slot value at FREE (other thread)");

	/* Reuse: the same object again, every slot NULL at ALLOC. */
	void *y = slab_cache_alloc(c, 0);
	*slab_obj_ext(y, other) = (void *)0x5678;
	slab_cache_free(c, y);
	void *y2 = slab_cache_alloc(c, 0);
	cr_assert_eq(y2, y, "LIFO reuse expected");
	cr_assert_eq(atomic_load(&ext_not_null_at_alloc), 0, "slot not NULL at a notified ALLOC");
	cr_assert_null(*slab_obj_ext(y2, other), "other slot not NULL-initialised at ALLOC");
	cr_assert_eq(*slab_obj_ext(y2, ext_slot), (void *)((uintptr_t)y2 ^ 0x5a5a5a5aUL));
	slab_cache_free(c, y2);

	/* Non-notifying cache, and a foreign pointer: no extension. */
	struct slab_cache *plain = create_ok("ext-plain", 56, 0);
	void *z = slab_cache_alloc(plain, 0);
	cr_assert_null(slab_obj_ext(z, ext_slot));
	slab_cache_free(plain, z);
	int local;
	cr_assert_null(slab_obj_ext(&local, ext_slot));
	rec_check_objects(&a);
}

/* The header: NULL "when @obj has no extension (not notified...)". An
 * object allocated while notification was off was never NULL-initialised;
 * a consumer must not read the previous owner's value through it. */
Test(obj_ext, no_stale_value_for_an_object_allocated_while_off)
{
	int slot = slab_obj_ext_reserve();
	cr_assert_geq(slot, 0);
	struct slab_cache *c = create_ok("ext-stale", 64, SLAB_NOTIFY);
	struct rec a;
	rec_init(&a, 0, 0, c);
	rec_register(&a);
	void *x = slab_cache_alloc(c, 0);
	*slab_obj_ext(x, slot) = (void *)0xdeadbeef; /* a consumer's value */
	slab_cache_free(c, x);
	cr_assert_eq(slab_cache_set_notify(c, false), 0);
	sn_rcu_barrier();
	void *y = slab_cache_alloc(c, 0); /* not notified */
	cr_assert_eq(y, x, "LIFO reuse expected");
	cr_assert_eq(slab_cache_set_notify(c, true), 0);
	void **w = slab_obj_ext(y, slot);
	cr_expect(w == NULL || *w == NULL,
		  "slab_obj_ext() of an object allocated while notification was off returns the "
		  "previous object's value %p", w ? *w : NULL);
	cr_expect_null(w, "slab_obj_ext() of a non-notified object should be NULL");
	slab_cache_free(c, y);
	rec_check_objects(&a);
}

/* ------------------------------------------------------------------ */
/* 12. Large objects                                                  */
/* ------------------------------------------------------------------ */

Test(large, one_mib_alloc_and_free_are_notified)
{
	struct slab_cache *lc = find_cache("kmalloc-large");
	cr_assert(!slab_cache_notify_enabled(lc));
	struct rec a;
	rec_init(&a, 0, 0, lc);
	rec_register(&a);
	void *q = slab_malloc(1u << 20, 0); /* off: nothing */
	cr_assert_not_null(q);
	cr_assert_eq(log_count(), 0);
	cr_assert_eq(slab_cache_set_notify(lc, true), 0);
	slab_free(q);
	cr_assert_eq(log_count(), 0);

	log_clear();
	const size_t sz = 1u << 20;
	void *p = slab_malloc(sz, SLAB_GFP_NOWAIT);
	cr_assert_not_null(p);
	memset(p, 0x11, sz);
	cr_assert_eq(log_count(), 1);
	cr_assert_eq(evlog[0].ev, SLAB_EVENT_ALLOC);
	cr_assert_eq(evlog[0].ptr, p);
	cr_assert_eq(evlog[0].cache, lc);
	cr_assert_geq(evlog[0].size, sz, "ALLOC size %zu < 1 MiB", evlog[0].size);
	cr_assert_eq(evlog[0].size, slab_usable_size(p));
	cr_assert_eq(evlog[0].gfp, SLAB_GFP_NOWAIT);
	log_clear();
	slab_free(p);
	cr_assert_eq(log_count(), 1);
	cr_assert_eq(evlog[0].ev, SLAB_EVENT_FREE);
	cr_assert_eq(evlog[0].ptr, p);
	cr_assert_geq(evlog[0].size, sz);

	/* A veto of a large allocation: NULL, errno, no FREE later. */
	a.veto_event = SLAB_EVENT_ALLOC;
	a.veto_ret = slab_notify_from_errno(E2BIG);
	log_clear();
	errno = 0;
	cr_assert_null(slab_malloc(3u << 20, 0));
	cr_assert_eq(errno, E2BIG);
	cr_assert_eq(log_count(), 1);
	struct slab_cache_info in = info_of(lc);
	cr_assert_eq(in.num_slabs, 0, "the vetoed large object was not given back");
	rec_check_balanced(&a);
}

/* ------------------------------------------------------------------ */
/* 13. The requested size                                             */
/* ------------------------------------------------------------------ */

/* The last event @ev of @ptr in the log. */
static struct event *log_last(int ev, const void *ptr)
{
	for (int i = nev; i-- > 0;)
		if (evlog[i].ev == ev && evlog[i].ptr == ptr)
			return &evlog[i];
	cr_assert_fail("no %s of %p", ev_name(ev), ptr);
	return NULL;
}

/* Handlers are told what the caller asked for: malloc(100) is 100 bytes
 * of the 112-byte class; an aligned request, a large one and a realloc
 * too; slab_cache_alloc asks for the object size. FREE carries size. */
Test(requested, alloc_events_carry_the_bytes_asked_for)
{
	struct slab_cache *k112 = find_cache("kmalloc-112");
	struct slab_cache *lc = find_cache("kmalloc-large");
	struct rec a;
	rec_init(&a, 0, 0, NULL);
	rec_register(&a);
	cr_assert_eq(slab_cache_set_notify(k112, true), 0);
	cr_assert_eq(slab_cache_set_notify(lc, true), 0);

	log_clear();
	void *p = slab_malloc(100, 0);
	struct event *e = log_last(SLAB_EVENT_ALLOC, p);
	cr_assert_eq(e->size, 112);
	cr_assert_eq(e->requested, 100, "requested %zu", e->requested);
	slab_free(p);
	cr_assert_eq(log_last(SLAB_EVENT_FREE, p)->requested, 112);

	/* A realloc that fits its block still moves while observed. */
	p = slab_malloc(100, 0);
	void *q = slab_realloc(p, 98, 0);
	cr_assert_neq(q, p);
	cr_assert_eq(log_last(SLAB_EVENT_ALLOC, q)->requested, 98);
	log_last(SLAB_EVENT_FREE, p);
	slab_free(q);

	struct slab_cache *c = slab_cache_create("req-40", 40, 8, SLAB_NOTIFY, NULL);
	void *o = slab_cache_alloc(c, 0);
	cr_assert_eq(log_last(SLAB_EVENT_ALLOC, o)->requested, 40);
	slab_cache_free(c, o);

	void *big = slab_malloc((1u << 20) + 1, 0);
	e = log_last(SLAB_EVENT_ALLOC, big);
	cr_assert_eq(e->requested, (1u << 20) + 1);
	cr_assert_eq(e->size, slab_usable_size(big));
	slab_free(big);

	cr_assert_eq(slab_cache_set_notify(k112, false), 0);
	struct slab_cache *k128 = find_cache("kmalloc-128");
	cr_assert_eq(slab_cache_set_notify(k128, true), 0);
	void *al = slab_malloc_aligned(100, 64, 0);
	e = log_last(SLAB_EVENT_ALLOC, al);
	cr_assert_eq(e->cache, k128, "an aligned 100 comes from the 128 class");
	cr_assert_eq(e->requested, 100);
	slab_free(al);
	slab_cache_set_notify(k128, false);
	slab_cache_set_notify(lc, false);
	rec_unregister(&a);
	slab_cache_destroy(c);
}

/* ------------------------------------------------------------------ */
/* 14. What the event carries for a handler: flags, footprint, ext     */
/* ------------------------------------------------------------------ */

static int ev_slot = -1;
static atomic_int ev_bad, ev_allocs, ev_frees;
static struct slab_cache *ev_cache;

static int ev_handler(struct slab_notifier *nb, enum slab_event ev, const struct slab_event_data *d)
{
	(void)nb;
	if (d->cache != ev_cache)
		return SLAB_NOTIFY_DONE;
	if (ev == SLAB_EVENT_ALLOC) {
		atomic_fetch_add(&ev_allocs, 1);
		/* Fresh: NULL-initialised, and not made by a read. */
		if (slab_event_ext_value(d, ev_slot) != NULL)
			atomic_fetch_add(&ev_bad, 1);
		void **w = slab_event_ext(d, ev_slot);
		if (!w || w != slab_obj_ext(d->ptr, ev_slot))
			atomic_fetch_add(&ev_bad, 1);
		else
			*w = d->ptr;   /* the handler's word: the object itself */
		if (!(d->flags & SLAB_NOTIFY) || d->footprint != slab_cache_size(d->cache))
			atomic_fetch_add(&ev_bad, 1);
	} else if (ev == SLAB_EVENT_FREE) {
		atomic_fetch_add(&ev_frees, 1);
		if (slab_event_ext_value(d, ev_slot) != d->ptr)
			atomic_fetch_add(&ev_bad, 1);
	} else if (slab_event_ext(d, ev_slot) != NULL) {
		atomic_fetch_add(&ev_bad, 1);   /* page events have no object */
	}
	return SLAB_NOTIFY_OK;
}

Test(event_ext, handlers_get_their_word_flags_and_footprint_without_a_lookup)
{
	ev_slot = slab_obj_ext_reserve();
	cr_assert_geq(ev_slot, 0);
	ev_cache = slab_cache_create("ev-ext-72", 72, 8, SLAB_NOTIFY, NULL);
	cr_assert_not_null(ev_cache);
	static struct slab_notifier nb = { .call = ev_handler };
	cr_assert_eq(slab_notifier_register(&nb), 0);
	void *o[300];
	for (int i = 0; i < 300; i++)
		cr_assert_not_null(o[i] = slab_cache_alloc(ev_cache, 0));
	for (int i = 0; i < 300; i++)
		cr_assert_eq(*slab_obj_ext(o[i], ev_slot), o[i], "object %d keeps its own word", i);
	for (int i = 0; i < 300; i++)
		slab_cache_free(ev_cache, o[i]);
	/* Reused objects start NULL again. */
	void *r = slab_cache_alloc(ev_cache, 0);
	slab_cache_free(ev_cache, r);
	cr_assert_eq(slab_notifier_unregister(&nb), 0);
	cr_assert_eq(atomic_load(&ev_allocs), 301);
	cr_assert_eq(atomic_load(&ev_frees), 301);
	cr_assert_eq(atomic_load(&ev_bad), 0);
	slab_cache_destroy(ev_cache);
}

/* ------------------------------------------------------------------ */
/* charges: the first pinned notifier's charges without an event      */
/* ------------------------------------------------------------------ */

#define CH_BYTES (1L << 20)
static char ch_group;                       /* the charges' group: a token */
static _Atomic unsigned long ch_seq;
static struct sn_stock ch_stock;            /* the test thread's */
static atomic_long ch_uncharged, ch_uncharges, ch_trims;

static const void *_Atomic ch_uncharged_owner;

static void ch_uncharge(const void *owner, size_t footprint)
{
	atomic_store(&ch_uncharged_owner, owner);
	atomic_fetch_add(&ch_uncharges, 1);
	atomic_fetch_add(&ch_uncharged, (long)footprint);
}

static void ch_trim(void)
{
	atomic_fetch_add(&ch_trims, 1);
}

static struct sn_charge ch_charges = {
	.root = &ch_group, .seq = &ch_seq, .stock_max = 2 * CH_BYTES, .owner_slot = -1, .uncharge = ch_uncharge,
	.trim = ch_trim,
};

static void ch_stock_fill_for(struct sn_stock *st, long bytes, void *group)
{
	memset(st, 0, sizeof(*st));
	atomic_store(&st->group, group);
	atomic_store(&st->seq, atomic_load(&ch_seq));
	atomic_store(&st->bytes, (size_t)bytes);
}

static void ch_stock_fill(struct sn_stock *st, long bytes)
{
	ch_stock_fill_for(st, bytes, &ch_group);
}

/* Handler a, registered and pinned, with the charges; this thread's
 * stock holds CH_BYTES. */
static void charges_start(struct rec *a, struct slab_cache *only)
{
	rec_init(a, 0, 0, only);
	rec_register(a);
	cr_assert_not(sn_notifier_charge_set(&a->nb, &ch_charges), "charges for a notifier not pinned");
	sn_notifier_pin(&a->nb);
	cr_assert_not(sn_notifier_charge_set(&a->nb, &ch_charges), "charges without an owner slot");
	ch_charges.owner_slot = slab_obj_ext_reserve();
	cr_assert_geq(ch_charges.owner_slot, 0);
	cr_assert(sn_notifier_charge_set(&a->nb, &ch_charges));
	cr_assert_not(sn_notifier_charge_set(&a->nb, &ch_charges), "charges set twice");
	ch_stock_fill(&ch_stock, CH_BYTES);
	sn_thread_stock_set(&ch_stock, &ch_group);
}

Test(charges, accounted_pair_is_charged_without_events)
{
	struct slab_cache *c = create_ok("ch-acct", 100, SLAB_ACCOUNT);
	struct rec a;
	charges_start(&a, c);
	size_t stride = info_of(c).size;
	slab_cache_free(c, slab_cache_alloc(c, 0));   /* the slab and its stamps, by the event way */
	log_clear();
	void *p[10];
	for (int i = 0; i < 10; i++)
		p[i] = slab_cache_alloc(c, 0);
	cr_assert_eq(atomic_load(&ch_stock.bytes), CH_BYTES - 10 * stride, "the footprints came from the stock");
	cr_assert_eq(atomic_load(&ch_stock.nr_objs), 10);
	cr_assert_eq(atomic_load(&ch_stock.consumed), 10 * (long)stride);
	cr_assert_eq(atomic_load(&ch_stock.hw), 10 * (long)stride, "the high-water mark follows");
	cr_assert_eq(log_find(0, SLAB_EVENT_ALLOC, NULL), 0, "an ALLOC event for a charged object");
	for (int i = 0; i < 10; i++)
		slab_cache_free(c, p[i]);
	cr_assert_eq(atomic_load(&ch_stock.bytes), CH_BYTES, "the footprints went back");
	cr_assert_eq(atomic_load(&ch_stock.nr_objs), 0);
	cr_assert_eq(atomic_load(&ch_stock.consumed), 0);
	cr_assert_eq(log_find(0, SLAB_EVENT_FREE, NULL), 0, "a FREE event for a charged object");
	cr_assert_eq(atomic_load(&ch_uncharges) + atomic_load(&ch_trims), 0);
	cr_assert_eq(info_of(c).active_objs, 0);
	rec_check_objects(&a);
}

/* A stock that cannot serve (empty, another group, a stale sequence
 * number, none) changes nothing: the events go as ever. */
Test(charges, a_stock_that_cannot_serve_sends_the_events)
{
	struct slab_cache *c = create_ok("ch-declined", 64, SLAB_ACCOUNT);
	struct rec a;
	charges_start(&a, c);
	slab_cache_free(c, slab_cache_alloc(c, 0));
	static char other;
	for (int way = 0; way < 4; way++) {
		ch_stock_fill(&ch_stock, way == 0 ? 8 : CH_BYTES);
		if (way == 1)
			atomic_store(&ch_stock.group, &other);
		if (way == 2)
			atomic_store(&ch_stock.seq, atomic_load(&ch_seq) + 1);
		sn_thread_stock_set(way == 3 ? NULL : &ch_stock, &ch_group);
		struct sn_stock before = ch_stock;
		log_clear();
		void *p = slab_cache_alloc(c, 0);
		cr_assert_eq(log_find(0, SLAB_EVENT_ALLOC, p), 1, "way %d: no ALLOC event", way);
		cr_assert_eq(atomic_load(&ch_stock.bytes), atomic_load(&before.bytes), "way %d: the stock changed", way);
		cr_assert_eq(atomic_load(&ch_stock.nr_objs), 0);
		slab_cache_free(c, p);
		cr_assert_eq(log_find(0, SLAB_EVENT_FREE, p), 1, "way %d: the FREE of an evented ALLOC", way);
	}
	cr_assert_eq(atomic_load(&ch_uncharges), 0, "an uncharge for an object never charged");
	rec_check_objects(&a);
}

Test(charges, only_accounted_caches_outside_quiet_sections)
{
	struct slab_cache *plain = create_ok("ch-plain", 64, SLAB_NOTIFY);
	struct slab_cache *acct = create_ok("ch-quiet", 64, SLAB_ACCOUNT);
	struct rec a;
	charges_start(&a, NULL);
	log_clear();
	void *p = slab_cache_alloc(plain, 0);
	cr_assert_eq(log_find(0, SLAB_EVENT_ALLOC, p), 1);
	slab_cache_free(plain, p);
	cr_assert_eq(log_find(0, SLAB_EVENT_FREE, p), 1);
	sn_quiet_begin();
	void *q = slab_cache_alloc(acct, 0);
	sn_quiet_end();
	slab_cache_free(acct, q);
	void *z = slab_cache_alloc(acct, SLAB_GFP_ZERO);   /* flags take the event way */
	cr_assert_eq(log_find(0, SLAB_EVENT_ALLOC, z), 1);
	slab_cache_free(acct, z);
	cr_assert_eq(atomic_load(&ch_stock.bytes), CH_BYTES, "a charge outside an accounted cache or inside a quiet "
							       "section");
	cr_assert_eq(atomic_load(&ch_stock.nr_objs), 0);
	rec_check_objects(&a);
}

/* What the freeing thread's stock cannot take goes to uncharge(); a
 * stock above stock_max is trimmed. */
static void *ch_free_thread(void *arg)
{
	void **p = arg;
	slab_cache_free(p[0], p[1]);   /* this thread has no stock */
	return NULL;
}

Test(charges, uncharge_and_trim_take_what_the_stock_cannot)
{
	struct slab_cache *c = create_ok("ch-uncharge", 96, SLAB_ACCOUNT);
	struct rec a;
	charges_start(&a, c);
	size_t stride = info_of(c).size;
	slab_cache_free(c, slab_cache_alloc(c, 0));
	log_clear();
	void *p = slab_cache_alloc(c, 0), *q = slab_cache_alloc(c, 0);
	void *arg[2] = { c, p };
	pthread_t t;
	pthread_create(&t, NULL, ch_free_thread, arg);
	pthread_join(t, NULL);
	cr_assert_eq(atomic_load(&ch_uncharges), 1, "a free by a thread without a stock");
	cr_assert_eq(atomic_load(&ch_uncharged), (long)stride);
	atomic_store(&ch_stock.bytes, 2 * CH_BYTES);   /* at stock_max: the next put goes above */
	slab_cache_free(c, q);
	cr_assert_eq(atomic_load(&ch_trims), 1, "a stock above stock_max untrimmed");
	cr_assert_eq(atomic_load(&ch_uncharges), 1);
	cr_assert_eq(log_find(0, SLAB_EVENT_FREE, NULL), 0);
	rec_check_objects(&a);
}

/* Charged objects keep their uncharge through a second handler's
 * registration and the cache's switch-off; new ones go along the chain. */
Test(charges, uncharge_outlives_the_solo_state_and_the_switch)
{
	struct slab_cache *c = create_ok("ch-switch", 48, SLAB_ACCOUNT);
	struct rec a, b;
	charges_start(&a, c);
	size_t stride = info_of(c).size;
	slab_cache_free(c, slab_cache_alloc(c, 0));
	void *p = slab_cache_alloc(c, 0), *q = slab_cache_alloc(c, 0);
	cr_assert_eq(atomic_load(&ch_stock.nr_objs), 2);
	cr_assert_eq(atomic_load(&ch_stock.bytes), CH_BYTES - 2 * stride);
	rec_init(&b, 1, 0, c);
	rec_register(&b);
	log_clear();
	void *r = slab_cache_alloc(c, 0);
	cr_assert_eq(atomic_load(&ch_stock.nr_objs), 2, "charged while not alone");
	cr_assert_eq(log_find(0, SLAB_EVENT_ALLOC, r) + log_find(1, SLAB_EVENT_ALLOC, r), 2);
	slab_cache_free(c, p);
	cr_assert_eq(atomic_load(&ch_stock.nr_objs), 1);
	cr_assert_eq(slab_cache_set_notify(c, false), 0);
	sn_rcu_barrier();
	sn_rcu_barrier();
	slab_cache_free(c, q);
	slab_cache_free(c, r);
	cr_assert_eq(atomic_load(&ch_stock.nr_objs), 0, "a charged object lost its uncharge to the switch");
	cr_assert_eq(atomic_load(&ch_stock.bytes), CH_BYTES, "every charged object's bytes came back");
	cr_assert_eq(atomic_load(&ch_uncharges), 0);
	cr_assert_eq(log_find(0, SLAB_EVENT_FREE, r) + log_find(1, SLAB_EVENT_FREE, r), 2);
	cr_assert_eq(log_find(0, SLAB_EVENT_FREE, p) + log_find(0, SLAB_EVENT_FREE, q), 0);
	rec_check_objects(&a);
	rec_check_objects(&b);
}

/* A charged object freed with notification off lets the drain turn the
 * FREE hook off, as any notified object's free does. */
Test(charges, a_charged_free_after_the_switch_off_lets_the_drain_finish)
{
	struct slab_cache *c = create_ok("ch-drain", 40, SLAB_ACCOUNT);
	cr_assert_eq(slab_cache_set_notify(c, false), 0);
	sn_rcu_barrier();
	pthread_t t;
	pthread_create(&t, NULL, hold_alloc_thread, c);   /* its slab, with no notified page */
	while (!atomic_load(&hold_warm))
		msleep(1);
	struct rec a;
	charges_start(&a, c);
	cr_assert_eq(slab_cache_set_notify(c, true), 0);
	atomic_store(&hold_go, 1);
	void *p;
	pthread_join(t, &p);
	cr_assert_not_null(p);
	cr_assert_eq(log_find(0, SLAB_EVENT_ALLOC, p), 1, "the other thread has no stock: an event");
	void *q = slab_cache_alloc(c, 0);
	cr_assert_eq(atomic_load(&ch_stock.nr_objs), 1, "q was not charged");
	slab_cache_free(c, p);
	cr_assert_eq(slab_cache_set_notify(c, false), 0);
	sn_rcu_barrier();
	sn_rcu_barrier();
	cr_assert(sn_test_free_hooked(c), "the FREE hook went off under a live charged object");
	slab_cache_free(c, q);
	cr_assert_eq(atomic_load(&ch_stock.nr_objs), 0);
	for (int i = 0; i < 4 && sn_test_free_hooked(c); i++)
		sn_rcu_barrier();
	cr_assert_not(sn_test_free_hooked(c), "the drain never finished after the last charged free");
	rec_check_objects(&a);
}

/* A group other than the root: its objects carry it as their owner in
 * the charges' slot, once the slab has that array (made here by the
 * handler of the first, evented, ALLOC); their free goes back to a stock
 * of that group, or to uncharge() with the owner. */
static int ch_make_owners(struct rec *r, enum slab_event ev, const struct slab_event_data *d)
{
	(void)r;
	if (ev == SLAB_EVENT_ALLOC)
		slab_event_ext(d, ch_charges.owner_slot);
	return 0;
}

Test(charges, another_group_is_recorded_as_the_owner)
{
	struct slab_cache *c = create_ok("ch-owner", 72, SLAB_ACCOUNT);
	struct rec a;
	charges_start(&a, c);
	a.hook = ch_make_owners;
	static char child;
	ch_stock_fill_for(&ch_stock, CH_BYTES, &child);
	sn_thread_stock_set(&ch_stock, &child);
	size_t stride = info_of(c).size;
	log_clear();
	void *first = slab_cache_alloc(c, 0);
	cr_assert_eq(log_find(0, SLAB_EVENT_ALLOC, first), 1, "no owners' array yet: the event's way");
	cr_assert_eq(atomic_load(&ch_stock.nr_objs), 0);
	void *p = slab_cache_alloc(c, 0), *q = slab_cache_alloc(c, 0);
	cr_assert_eq(log_find(0, SLAB_EVENT_ALLOC, p) + log_find(0, SLAB_EVENT_ALLOC, q), 0);
	cr_assert_eq(atomic_load(&ch_stock.nr_objs), 2);
	cr_assert_eq(atomic_load(&ch_stock.bytes), CH_BYTES - 2 * stride);
	void **w = slab_obj_ext(p, ch_charges.owner_slot);
	cr_assert_not_null(w);
	cr_assert_eq(*w, (void *)&child, "the owner recorded");
	slab_cache_free(c, p);
	cr_assert_eq(atomic_load(&ch_stock.nr_objs), 1);
	cr_assert_eq(atomic_load(&ch_stock.bytes), CH_BYTES - stride, "back to the group's stock");
	/* In the root now: the child's object goes to uncharge(), with its owner. */
	ch_stock_fill(&ch_stock, CH_BYTES);
	sn_thread_stock_set(&ch_stock, &ch_group);
	slab_cache_free(c, q);
	cr_assert_eq(atomic_load(&ch_uncharges), 1);
	cr_assert_eq(atomic_load(&ch_uncharged), (long)stride);
	cr_assert_eq(atomic_load(&ch_uncharged_owner), (const void *)&child);
	/* A root object in the same slab: its owner word is cleared. */
	void *r = slab_cache_alloc(c, 0);
	w = slab_obj_ext(r, ch_charges.owner_slot);
	cr_assert(!w || !*w, "a root object with an owner");
	slab_cache_free(c, r);
	cr_assert_eq(atomic_load(&ch_stock.bytes), CH_BYTES);
	slab_cache_free(c, first);
	rec_check_objects(&a);
}
