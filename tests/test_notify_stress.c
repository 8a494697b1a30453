/*
 * test_notify_stress.c - the notifier chain under concurrency.
 *
 *  toggle       4 threads allocate and free (most frees cross-thread)
 *               while the main thread switches notification on and off
 *               as fast as it can. Per object: the handlers that got its
 *               ALLOC are exactly those that get its FREE (all or none);
 *               per handler: ALLOCs accepted == FREEs received, NEWPAGEs
 *               == FREEPAGEs once the cache is shrunk.
 *  churn        threads register and unregister handlers while others
 *               allocate and free. Per object and handler: a FREE comes
 *               only in the registration that accepted the ALLOC, and it
 *               does come when that registration spans the whole free;
 *               in a final registration of every handler, ALLOCs == FREEs.
 *  sleeping     a handler sleeps in ALLOC; other threads' allocations and
 *               frees (through the same chain) go on meanwhile; NOWAIT
 *               reaches the handler.
 *  fork         fork() while threads allocate: the child allocates and
 *               frees with notification working, registers and
 *               unregisters a handler, and exits 0.
 *
 * Worker threads never call cr_assert: they record the first failure and
 * stop; the main thread asserts after joining.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <slabnotify.h>
#include "consumers/consumer.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
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
#define SCALE 8
#else
#define SCALE 1
#endif

/* ------------------------------------------------------------------ */
/* Failure reporting and small helpers                                */
/* ------------------------------------------------------------------ */

static atomic_bool failed;
static pthread_mutex_t fail_lock = PTHREAD_MUTEX_INITIALIZER;
static char fail_msg[512];

__attribute__((format(printf, 1, 2))) static void fail(const char *fmt, ...)
{
	pthread_mutex_lock(&fail_lock);
	if (!atomic_load(&failed)) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(fail_msg, sizeof(fail_msg), fmt, ap);
		va_end(ap);
		atomic_store(&failed, true);
	}
	pthread_mutex_unlock(&fail_lock);
}

static void assert_no_failure(void)
{
	cr_assert(!atomic_load(&failed), "%s", fail_msg);
}

static void msleep(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static void usleep_(unsigned us)
{
	struct timespec ts = { us / 1000000, (long)(us % 1000000) * 1000L };
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static uint64_t rnd(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

static struct slab_cache_info info_of(const struct slab_cache *c)
{
	struct slab_cache_info in;
	cr_assert_eq(slab_cache_info(c, &in), 0);
	return in;
}

static atomic_bool stop;

/* ------------------------------------------------------------------ */
/* 4. Toggling notification under load                                */
/* ------------------------------------------------------------------ */

#define TG_HANDLERS 3
#define TG_THREADS 4
#define TG_POOL 512
#define OBJ_MAGIC 0x0b1ec7u

struct tg_obj {
	uint32_t magic;
	uint32_t mask;   /* handlers whose ALLOC it got */
	uint32_t ep[4];  /* churn: registration of each handler at ALLOC */
};

struct counting {
	struct slab_notifier nb;
	int id;
	atomic_long allocs, frees, newpages, freepages;
};

static struct slab_cache *tg_cache;
static struct counting tg_h[TG_HANDLERS];
static int tg_n = TG_HANDLERS;                 /* handlers registered */
#define TG_ALL ((1u << tg_n) - 1)
static _Atomic(struct tg_obj *) tg_pool[TG_POOL];
static atomic_long tg_ops, tg_notified_objs;

static __thread uint32_t tl_alloc_mask, tl_free_mask;
static __thread void *tl_alloc_ptr, *tl_free_ptr;

static int tg_call(struct slab_notifier *nb, enum slab_event ev, const struct slab_event_data *d)
{
	struct counting *h = nb->arg;
	if (d->cache != tg_cache)
		return SLAB_NOTIFY_OK;
	uint32_t bit = 1u << h->id;
	switch (ev) {
	case SLAB_EVENT_ALLOC:
		if (tl_alloc_mask & bit)
			fail("h%d: two ALLOCs in one allocation", h->id);
		tl_alloc_mask |= bit;
		tl_alloc_ptr = d->ptr;
		atomic_fetch_add(&h->allocs, 1);
		break;
	case SLAB_EVENT_FREE:
		if (d->ptr != tl_free_ptr)
			fail("h%d: FREE of %p while freeing %p", h->id, d->ptr, tl_free_ptr);
		if (tl_free_mask & bit)
			fail("h%d: two FREEs of %p", h->id, d->ptr);
		tl_free_mask |= bit;
		atomic_fetch_add(&h->frees, 1);
		break;
	case SLAB_EVENT_NEWPAGE:
		atomic_fetch_add(&h->newpages, 1);
		break;
	case SLAB_EVENT_FREEPAGE:
		atomic_fetch_add(&h->freepages, 1);
		break;
	}
	return SLAB_NOTIFY_OK;
}

static void tg_free(struct tg_obj *o)
{
	if (o->magic != OBJ_MAGIC)
		fail("object %p corrupted: magic %#x", (void *)o, o->magic);
	uint32_t want = o->mask;
	o->magic = 0;
	tl_free_ptr = o;
	tl_free_mask = 0;
	slab_cache_free(tg_cache, o);
	if (tl_free_mask != want)
		fail("object %p: ALLOC went to handler mask %#x, FREE to %#x (notification now %s)",
		     (void *)o, want, tl_free_mask, slab_cache_notify_enabled(tg_cache) ? "on" : "off");
	tl_free_ptr = NULL;
}

static void *tg_worker(void *arg)
{
	uint64_t seed = 0x1234567ULL + (uintptr_t)arg * 0x9e3779b97f4a7c15ULL;
	while (!atomic_load_explicit(&stop, memory_order_relaxed) && !atomic_load(&failed)) {
		tl_alloc_mask = 0;
		tl_alloc_ptr = NULL;
		struct tg_obj *o = slab_cache_alloc(tg_cache, 0);
		if (!o) {
			fail("allocation failed: %s", strerror(errno));
			break;
		}
		if (tl_alloc_mask && (tl_alloc_mask != TG_ALL || tl_alloc_ptr != o))
			fail("ALLOC of %p went to handler mask %#x (ptr %p)", (void *)o, tl_alloc_mask,
			     tl_alloc_ptr);
		if (tl_alloc_mask)
			atomic_fetch_add_explicit(&tg_notified_objs, 1, memory_order_relaxed);
		o->magic = OBJ_MAGIC;
		o->mask = tl_alloc_mask;
		struct tg_obj *old = atomic_exchange(&tg_pool[rnd(&seed) % TG_POOL], o);
		if (old)
			tg_free(old);
		atomic_fetch_add_explicit(&tg_ops, 1, memory_order_relaxed);
	}
	return NULL;
}

/* Switch tg_cache's notification on and off for 3 s (at random short
 * intervals) while the workers @t run, then stop and join them. Returns
 * the number of switches. */
static long toggle_while_working(pthread_t *t, uint64_t seed)
{
	double end = now_ms() + 3000.0 / (SCALE > 1 ? 2 : 1);
	long toggles = 0;
	bool on = true;
	while (now_ms() < end && !atomic_load(&failed)) {
		on = !on;
		if (slab_cache_set_notify(tg_cache, on) != 0)
			fail("slab_cache_set_notify failed");
		if (slab_cache_notify_enabled(tg_cache) != on)
			fail("slab_cache_notify_enabled() != %d right after switching", on);
		toggles++;
		unsigned r = (unsigned)(rnd(&seed) % 8);
		if (r < 4)
			usleep_(r * 50);
		else if (r == 7)
			msleep(2);
	}
	atomic_store(&stop, true);
	for (int i = 0; i < TG_THREADS; i++)
		pthread_join(t[i], NULL);
	assert_no_failure();
	return toggles;
}

/* @n handlers, the first pinned if @pin (alone, its ALLOCs are direct:
 * the switch-off drain meets them through the asymmetric fences). */
static void toggle_under_load(int n, bool pin)
{
	tg_n = n;
	tg_cache = slab_cache_create("toggle", 64, 0, SLAB_NOTIFY, NULL);
	cr_assert_not_null(tg_cache);
	for (int i = 0; i < tg_n; i++) {
		tg_h[i].nb.call = tg_call;
		tg_h[i].nb.arg = &tg_h[i];
		tg_h[i].nb.priority = i == 0 ? 5 : 0;
		tg_h[i].id = i;
		cr_assert_eq(slab_notifier_register(&tg_h[i].nb), 0);
		if (pin && i == 0)
			sn_notifier_pin(&tg_h[0].nb);
	}
	pthread_t t[TG_THREADS];
	for (long i = 0; i < TG_THREADS; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, tg_worker, (void *)i), 0);
	long toggles = toggle_while_working(t, 42);
	/* Switch off, then free what is left: born-on objects still notify. */
	cr_assert_eq(slab_cache_set_notify(tg_cache, false), 0);
	sn_rcu_barrier();
	for (int i = 0; i < TG_POOL; i++) {
		struct tg_obj *o = atomic_exchange(&tg_pool[i], NULL);
		if (o)
			tg_free(o);
	}
	assert_no_failure();
	long ops = atomic_load(&tg_ops), nobj = atomic_load(&tg_notified_objs);
	cr_log_info("toggle: %ld toggles, %ld operations, %ld notified objects", toggles, ops, nobj);
	cr_assert_gt(toggles, 100, "only %ld toggles", toggles);
	cr_assert_gt(ops, 10000 / SCALE, "only %ld operations", ops);
	cr_assert_gt(nobj, 0, "no object was notified");
	cr_assert_lt(nobj, ops, "every object was notified: the toggles did nothing");
	for (int i = 0; i < tg_n; i++) {
		long a = atomic_load(&tg_h[i].allocs), f = atomic_load(&tg_h[i].frees);
		cr_assert_eq(a, nobj, "h%d: %ld ALLOCs, %ld notified objects", i, a, nobj);
		cr_assert_eq(a - f, 0, "h%d: %ld ALLOCs accepted, %ld FREEs received", i, a, f);
	}
	cr_assert_eq(info_of(tg_cache).active_objs, 0);
	/* Pages: every notified slab, once released, got its FREEPAGE. */
	slab_cache_shrink(tg_cache);
	cr_assert_eq(info_of(tg_cache).num_slabs, 0, "slabs left after shrink");
	for (int i = 0; i < tg_n; i++) {
		long np = atomic_load(&tg_h[i].newpages), fp = atomic_load(&tg_h[i].freepages);
		cr_assert_eq(np, fp, "h%d: %ld NEWPAGEs, %ld FREEPAGEs", i, np, fp);
	}
	cr_assert_eq(slab_cache_destroy(tg_cache), 0);
}

Test(toggle, switching_under_load_keeps_every_pair, .timeout = 120)
{
	toggle_under_load(TG_HANDLERS, false);
}

Test(toggle, switching_under_load_keeps_every_pair_pinned_alone, .timeout = 120)
{
	toggle_under_load(1, true);
}

/*
 * The same switching under load, with the pinned notifier's charges
 * (consumer.h): each thread has a stock, most frees are cross-thread,
 * and at the end every byte taken from a stock is back in one (or went
 * to uncharge()), and the handler's events pair up.
 */
#define CG_BYTES (1L << 30)
static char cg_group;
static _Atomic unsigned long cg_seq;
static struct sn_stock cg_stock[TG_THREADS + 1];
static atomic_long cg_uncharged, cg_allocs, cg_frees;

static void cg_uncharge(const void *owner, size_t n)
{
	(void)owner;
	atomic_fetch_add(&cg_uncharged, (long)n);
}

static void cg_trim(void)
{
}

static struct sn_charge cg_charges = {
	.root = &cg_group, .seq = &cg_seq, .stock_max = 4 * CG_BYTES, .owner_slot = -1, .uncharge = cg_uncharge,
	.trim = cg_trim,
};

static int cg_call(struct slab_notifier *nb, enum slab_event ev, const struct slab_event_data *d)
{
	(void)nb;
	(void)d;
	if (ev == SLAB_EVENT_ALLOC)
		atomic_fetch_add(&cg_allocs, 1);
	else if (ev == SLAB_EVENT_FREE)
		atomic_fetch_add(&cg_frees, 1);
	return SLAB_NOTIFY_OK;
}

static void cg_stock_use(long i)
{
	atomic_store(&cg_stock[i].group, &cg_group);
	atomic_store(&cg_stock[i].bytes, (size_t)CG_BYTES);
	sn_thread_stock_set(&cg_stock[i], &cg_group);
}

static void *cg_worker(void *arg)
{
	cg_stock_use((long)arg);
	uint64_t seed = 0x7654321ULL + (uintptr_t)arg * 0x9e3779b97f4a7c15ULL;
	while (!atomic_load_explicit(&stop, memory_order_relaxed) && !atomic_load(&failed)) {
		struct tg_obj *o = slab_cache_alloc(tg_cache, 0);
		if (!o) {
			fail("allocation failed: %s", strerror(errno));
			break;
		}
		o->magic = OBJ_MAGIC;
		struct tg_obj *old = atomic_exchange(&tg_pool[rnd(&seed) % TG_POOL], o);
		if (old) {
			if (old->magic != OBJ_MAGIC)
				fail("object %p corrupted", (void *)old);
			old->magic = 0;
			slab_cache_free(tg_cache, old);
		}
		atomic_fetch_add_explicit(&tg_ops, 1, memory_order_relaxed);
	}
	return NULL;
}

#define CG_BALLAST (16 * TG_POOL)

/* Slabs for the workers, made while notification is off, each kept by
 * one object. */
static void *cg_ballast_thread(void *arg)
{
	(void)arg;
	void **ballast = calloc(CG_BALLAST, sizeof(void *));
	for (int i = 0; i < CG_BALLAST; i++)
		if (!(ballast[i] = slab_cache_alloc(tg_cache, 0)))
			return NULL;
	struct slab_cache_info in;
	if (slab_cache_info(tg_cache, &in) != 0)
		return NULL;
	for (int i = 0; i < CG_BALLAST; i++)
		if (i % in.objs_per_slab) {
			slab_cache_free(tg_cache, ballast[i]);
			ballast[i] = NULL;
		}
	return ballast;
}

Test(toggle, switching_under_load_keeps_every_charge, .timeout = 120)
{
	tg_cache = slab_cache_create("toggle-charged", 64, 0, SLAB_ACCOUNT, NULL);
	cr_assert_not_null(tg_cache);
	/* The slabs made while notification is off, and each kept by one
	 * object: no notified page keeps the FREE hook on, so that the drain
	 * really turns it off under the workers. */
	cr_assert_eq(slab_cache_set_notify(tg_cache, false), 0);
	sn_rcu_barrier();
	pthread_t bt;
	void **ballast;
	cr_assert_eq(pthread_create(&bt, NULL, cg_ballast_thread, NULL), 0);
	pthread_join(bt, (void **)&ballast);   /* its exit gives the slabs to the cache */
	cr_assert_not_null(ballast);
	unsigned long slabs = info_of(tg_cache).num_slabs;
	cr_assert_eq(slab_cache_set_notify(tg_cache, true), 0);
	static struct slab_notifier nb = { .call = cg_call };
	cr_assert_eq(slab_notifier_register(&nb), 0);
	sn_notifier_pin(&nb);
	cg_charges.owner_slot = slab_obj_ext_reserve();
	cr_assert(sn_notifier_charge_set(&nb, &cg_charges));
	cg_stock_use(TG_THREADS);
	pthread_t t[TG_THREADS];
	for (long i = 0; i < TG_THREADS; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, cg_worker, (void *)i), 0);
	long toggles = toggle_while_working(t, 43);
	cr_assert_eq(slab_cache_set_notify(tg_cache, false), 0);
	sn_rcu_barrier();
	for (int i = 0; i < TG_POOL; i++) {
		struct tg_obj *o = atomic_exchange(&tg_pool[i], NULL);
		if (o)
			slab_cache_free(tg_cache, o);
	}
	long ops = atomic_load(&tg_ops), evented = atomic_load(&cg_allocs);
	cr_log_info("toggle-charged: %ld toggles, %ld operations, %ld evented ALLOCs, %lu slabs (%lu before)",
		    toggles, ops, evented, info_of(tg_cache).num_slabs, slabs);
	for (int i = 0; i < CG_BALLAST; i++)
		if (ballast[i])
			slab_cache_free(tg_cache, ballast[i]);
	free(ballast);
	cr_assert_gt(toggles, 100, "only %ld toggles", toggles);
	cr_assert_gt(ops, 10000 / SCALE, "only %ld operations", ops);
	long bytes = 0, objs = 0, hw = 0;
	for (int i = 0; i <= TG_THREADS; i++) {
		bytes += (long)atomic_load(&cg_stock[i].bytes);
		objs += atomic_load(&cg_stock[i].nr_objs);
		hw += atomic_load(&cg_stock[i].hw);
	}
	cr_assert_gt(hw, 0, "nothing was charged");
	cr_assert_eq(bytes + atomic_load(&cg_uncharged), (TG_THREADS + 1) * CG_BYTES,
		     "bytes lost: %ld in the stocks, %ld uncharged", bytes, atomic_load(&cg_uncharged));
	cr_assert_eq(objs, 0, "%ld objects charged and never uncharged", objs);
	cr_assert_eq(evented, atomic_load(&cg_frees), "%ld ALLOC events, %ld FREEs", evented,
		     atomic_load(&cg_frees));
	cr_assert_eq(info_of(tg_cache).active_objs, 0);
}

/* ------------------------------------------------------------------ */
/* 5. Registration churn under load                                    */
/* ------------------------------------------------------------------ */

#define CH_HANDLERS 4
#define CH_WORKERS 3
#define CH_POOL 256

struct churn_h {
	struct slab_notifier nb;
	int id;
	atomic_uint cur_ep;   /* registration number, set before registering */
	atomic_uint state;    /* 2*ep+1: registered; 2*ep+2: unregistering/off */
	atomic_long allocs, frees;           /* all registrations */
	atomic_long ep_allocs, ep_frees;     /* the current registration */
	unsigned ep_next;                    /* owner thread only */
	bool registered;                     /* owner thread only */
};

static struct slab_cache *ch_cache;
static struct churn_h ch_h[CH_HANDLERS];
static _Atomic(struct tg_obj *) ch_pool[CH_POOL];
static atomic_long ch_ops, ch_regs, ch_checked_free;
static __thread uint32_t tl_alloc_ep[CH_HANDLERS], tl_free_ep[CH_HANDLERS];

static int ch_call(struct slab_notifier *nb, enum slab_event ev, const struct slab_event_data *d)
{
	struct churn_h *h = nb->arg;
	if (d->cache != ch_cache)
		return SLAB_NOTIFY_OK;
	unsigned ep = atomic_load(&h->cur_ep);
	unsigned st = atomic_load(&h->state);
	if (st != 2 * ep + 1 && st != 2 * ep + 2 && !(st == 2 * ep && ep))
		fail("h%d called in state %u, registration %u", h->id, st, ep);
	if (ev == SLAB_EVENT_ALLOC) {
		if (tl_alloc_ep[h->id])
			fail("h%d: two ALLOCs in one allocation", h->id);
		tl_alloc_ep[h->id] = ep;
		atomic_fetch_add(&h->allocs, 1);
		atomic_fetch_add(&h->ep_allocs, 1);
	} else if (ev == SLAB_EVENT_FREE) {
		if (d->ptr != tl_free_ptr)
			fail("h%d: FREE of %p while freeing %p", h->id, d->ptr, tl_free_ptr);
		if (tl_free_ep[h->id])
			fail("h%d: two FREEs of %p", h->id, d->ptr);
		tl_free_ep[h->id] = ep;
		atomic_fetch_add(&h->frees, 1);
		atomic_fetch_add(&h->ep_frees, 1);
	}
	return SLAB_NOTIFY_OK;
}

static void ch_register(struct churn_h *h)
{
	unsigned ep = ++h->ep_next;
	atomic_store(&h->ep_allocs, 0);
	atomic_store(&h->ep_frees, 0);
	atomic_store(&h->state, 2 * ep);
	atomic_store(&h->cur_ep, ep);
	int rc = slab_notifier_register(&h->nb);
	if (rc)
		fail("register h%d: %d", h->id, rc);
	atomic_store(&h->state, 2 * ep + 1);
	h->registered = true;
	atomic_fetch_add(&ch_regs, 1);
}

static void ch_unregister(struct churn_h *h)
{
	atomic_store(&h->state, 2 * atomic_load(&h->cur_ep) + 2);
	int rc = slab_notifier_unregister(&h->nb);
	if (rc)
		fail("unregister h%d: %d", h->id, rc);
	h->registered = false;
}

static void ch_free(struct tg_obj *o)
{
	if (o->magic != OBJ_MAGIC)
		fail("object %p corrupted: magic %#x", (void *)o, o->magic);
	uint32_t ep[CH_HANDLERS];
	unsigned s1[CH_HANDLERS], s2[CH_HANDLERS];
	memcpy(ep, o->ep, sizeof(ep));
	o->magic = 0;
	for (int k = 0; k < CH_HANDLERS; k++) {
		tl_free_ep[k] = 0;
		s1[k] = atomic_load(&ch_h[k].state);
	}
	tl_free_ptr = o;
	slab_cache_free(ch_cache, o);
	tl_free_ptr = NULL;
	for (int k = 0; k < CH_HANDLERS; k++) {
		s2[k] = atomic_load(&ch_h[k].state);
		if (tl_free_ep[k] && tl_free_ep[k] != ep[k])
			fail("h%d: FREE of %p in registration %u, its ALLOC was in %u (0: none)", k,
			     (void *)o, tl_free_ep[k], ep[k]);
		if (ep[k] && s1[k] == s2[k] && s1[k] == 2 * ep[k] + 1) {
			atomic_fetch_add_explicit(&ch_checked_free, 1, memory_order_relaxed);
			if (tl_free_ep[k] != ep[k])
				fail("h%d: no FREE of %p though registration %u accepted its ALLOC and "
				     "lasted through the free", k, (void *)o, ep[k]);
		}
	}
}

static void *ch_worker(void *arg)
{
	uint64_t seed = 0xabcdefULL + (uintptr_t)arg * 0x9e3779b97f4a7c15ULL;
	while (!atomic_load_explicit(&stop, memory_order_relaxed) && !atomic_load(&failed)) {
		memset(tl_alloc_ep, 0, sizeof(tl_alloc_ep));
		struct tg_obj *o = slab_cache_alloc(ch_cache, 0);
		if (!o) {
			fail("allocation failed: %s", strerror(errno));
			break;
		}
		o->magic = OBJ_MAGIC;
		memcpy(o->ep, tl_alloc_ep, sizeof(o->ep));
		struct tg_obj *old = atomic_exchange(&ch_pool[rnd(&seed) % CH_POOL], o);
		if (old)
			ch_free(old);
		atomic_fetch_add_explicit(&ch_ops, 1, memory_order_relaxed);
	}
	return NULL;
}

/* Each churn thread owns handlers id, id + 2. */
static void *ch_churner(void *arg)
{
	int first = (int)(intptr_t)arg;
	uint64_t seed = 0x5151ULL + (uint64_t)first;
	while (!atomic_load_explicit(&stop, memory_order_relaxed) && !atomic_load(&failed)) {
		struct churn_h *h = &ch_h[first + 2 * (int)(rnd(&seed) % 2)];
		if (h->registered)
			ch_unregister(h);
		else
			ch_register(h);
		usleep_((unsigned)(rnd(&seed) % 300));
	}
	return NULL;
}

Test(churn, register_unregister_while_allocating, .timeout = 120)
{
	ch_cache = slab_cache_create("churn", 64, 0, SLAB_NOTIFY, NULL);
	cr_assert_not_null(ch_cache);
	for (int k = 0; k < CH_HANDLERS; k++) {
		ch_h[k].nb.call = ch_call;
		ch_h[k].nb.arg = &ch_h[k];
		ch_h[k].nb.priority = k % 3 - 1;
		ch_h[k].id = k;
	}
	pthread_t w[CH_WORKERS], ch[2];
	for (long i = 0; i < CH_WORKERS; i++)
		cr_assert_eq(pthread_create(&w[i], NULL, ch_worker, (void *)i), 0);
	for (long i = 0; i < 2; i++)
		cr_assert_eq(pthread_create(&ch[i], NULL, ch_churner, (void *)i), 0);
	msleep(SCALE > 1 ? 1500 : 3000);
	atomic_store(&stop, true);
	for (int i = 0; i < 2; i++)
		pthread_join(ch[i], NULL);
	for (int i = 0; i < CH_WORKERS; i++)
		pthread_join(w[i], NULL);
	assert_no_failure();
	long regs = atomic_load(&ch_regs), checked = atomic_load(&ch_checked_free);
	cr_log_info("churn: %ld registrations, %ld operations, %ld frees checked for a due FREE", regs,
		    atomic_load(&ch_ops), checked);
	cr_assert_gt(regs, 20, "only %ld registrations", regs);
	cr_assert_gt(checked, 100, "only %ld frees checked for a due FREE", checked);

	/* Final round: every handler registered anew, load, then all freed
	 * while still registered: each registration balances exactly. */
	for (int k = 0; k < CH_HANDLERS; k++) {
		if (ch_h[k].registered)
			ch_unregister(&ch_h[k]);
		ch_register(&ch_h[k]);
	}
	atomic_store(&stop, false);
	for (long i = 0; i < CH_WORKERS; i++)
		cr_assert_eq(pthread_create(&w[i], NULL, ch_worker, (void *)(i + 10)), 0);
	msleep(300);
	atomic_store(&stop, true);
	for (int i = 0; i < CH_WORKERS; i++)
		pthread_join(w[i], NULL);
	for (int i = 0; i < CH_POOL; i++) {
		struct tg_obj *o = atomic_exchange(&ch_pool[i], NULL);
		if (o)
			ch_free(o);
	}
	assert_no_failure();
	for (int k = 0; k < CH_HANDLERS; k++) {
		long a = atomic_load(&ch_h[k].ep_allocs), f = atomic_load(&ch_h[k].ep_frees);
		cr_assert_gt(a, 0, "h%d: no ALLOC in the final registration", k);
		cr_assert_eq(a, f, "h%d: final registration accepted %ld ALLOCs, got %ld FREEs", k, a, f);
		long ta = atomic_load(&ch_h[k].allocs), tf = atomic_load(&ch_h[k].frees);
		cr_assert_geq(ta, tf, "h%d: more FREEs (%ld) than ALLOCs (%ld) overall", k, tf, ta);
		ch_unregister(&ch_h[k]);
	}
	cr_assert_eq(info_of(ch_cache).active_objs, 0);
	cr_assert_eq(slab_cache_destroy(ch_cache), 0);
}

/* ------------------------------------------------------------------ */
/* 6. A sleeping handler does not stop the others                      */
/* ------------------------------------------------------------------ */

static struct slab_cache *sl_cache;
static atomic_long sl_allocs, sl_frees;   /* by the busy threads */
static atomic_long sl_seen_during;        /* their ALLOCs seen by the handler */
static atomic_int sl_sleeping;
static long sl_allocs_before, sl_allocs_after, sl_frees_before, sl_frees_after;
static atomic_uint sl_gfp_seen;
static __thread bool tl_sleepy;

static int sl_call(struct slab_notifier *nb, enum slab_event ev, const struct slab_event_data *d)
{
	(void)nb;
	if (d->cache != sl_cache || ev != SLAB_EVENT_ALLOC)
		return SLAB_NOTIFY_OK;
	if (atomic_load(&sl_sleeping) && !tl_sleepy)
		atomic_fetch_add(&sl_seen_during, 1);
	if (!tl_sleepy)
		return SLAB_NOTIFY_OK;
	atomic_store(&sl_gfp_seen, d->gfp);
	if (d->gfp & SLAB_GFP_NOWAIT) {
		/* Must not sleep: and does not. */
		return SLAB_NOTIFY_OK;
	}
	sl_allocs_before = atomic_load(&sl_allocs);
	sl_frees_before = atomic_load(&sl_frees);
	atomic_store(&sl_sleeping, 1);
	usleep(300 * 1000);
	atomic_store(&sl_sleeping, 0);
	sl_allocs_after = atomic_load(&sl_allocs);
	sl_frees_after = atomic_load(&sl_frees);
	return SLAB_NOTIFY_OK;
}

static _Atomic(void *) sl_pool[64];

static void *sl_busy(void *arg)
{
	uint64_t seed = 77 + (uintptr_t)arg;
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		void *p = slab_cache_alloc(sl_cache, 0);
		if (!p) {
			fail("busy allocation failed");
			break;
		}
		atomic_fetch_add(&sl_allocs, 1);
		void *old = atomic_exchange(&sl_pool[rnd(&seed) % 64], p); /* cross-thread frees */
		if (old) {
			slab_cache_free(sl_cache, old);
			atomic_fetch_add(&sl_frees, 1);
		}
	}
	return NULL;
}

Test(sleeping, handler_sleeps_others_progress, .timeout = 60)
{
	sl_cache = slab_cache_create("sleepy", 48, 0, SLAB_NOTIFY, NULL);
	struct slab_notifier nb = { .call = sl_call };
	cr_assert_eq(slab_notifier_register(&nb), 0);
	pthread_t t[2];
	for (long i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, sl_busy, (void *)i);
	while (atomic_load(&sl_allocs) < 1000)
		msleep(1);

	tl_sleepy = true;
	double t0 = now_ms();
	void *p = slab_cache_alloc(sl_cache, 0);
	double slept = now_ms() - t0;
	cr_assert_not_null(p);
	cr_assert_geq(slept, 290.0, "the handler did not sleep (%.1f ms)", slept);
	cr_assert_eq(atomic_load(&sl_gfp_seen), 0);
	long da = sl_allocs_after - sl_allocs_before, df = sl_frees_after - sl_frees_before;
	cr_log_info("sleeping: during the 300 ms sleep others made %ld allocs, %ld frees", da, df);
	cr_assert_gt(da, 100, "other threads made %ld allocations during a 300 ms handler sleep", da);
	cr_assert_gt(df, 100, "other threads made %ld frees during a 300 ms handler sleep", df);
	cr_assert_gt(atomic_load(&sl_seen_during), 100, "the chain ran for the others meanwhile");

	/* NOWAIT (with and without ZERO) reaches the handler as given. */
	t0 = now_ms();
	void *q = slab_cache_alloc(sl_cache, SLAB_GFP_NOWAIT);
	cr_assert_not_null(q);
	cr_assert_eq(atomic_load(&sl_gfp_seen), SLAB_GFP_NOWAIT);
	void *r = slab_cache_alloc(sl_cache, SLAB_GFP_NOWAIT | SLAB_GFP_ZERO);
	cr_assert_eq(atomic_load(&sl_gfp_seen), SLAB_GFP_NOWAIT | SLAB_GFP_ZERO);
	cr_assert_lt(now_ms() - t0, 250.0, "NOWAIT allocations were slow");
	tl_sleepy = false;

	atomic_store(&stop, true);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	assert_no_failure();
	slab_cache_free(sl_cache, p);
	slab_cache_free(sl_cache, q);
	slab_cache_free(sl_cache, r);
	for (int i = 0; i < 64; i++) {
		void *o = atomic_exchange(&sl_pool[i], NULL);
		if (o)
			slab_cache_free(sl_cache, o);
	}
	cr_assert_eq(slab_notifier_unregister(&nb), 0);
	cr_assert_eq(info_of(sl_cache).active_objs, 0);
}

/* ------------------------------------------------------------------ */
/* 8. fork() in a multi-threaded parent                                */
/* ------------------------------------------------------------------ */

static struct slab_cache *fk_cache;
static atomic_long fk_allocs, fk_frees, fk_other, fk_ops;

static int fk_call(struct slab_notifier *nb, enum slab_event ev, const struct slab_event_data *d)
{
	(void)nb;
	if (d->cache == fk_cache) {
		if (ev == SLAB_EVENT_ALLOC)
			atomic_fetch_add(&fk_allocs, 1);
		else if (ev == SLAB_EVENT_FREE)
			atomic_fetch_add(&fk_frees, 1);
	}
	return SLAB_NOTIFY_OK;
}

static __attribute__((unused)) int fk_call2(struct slab_notifier *nb, enum slab_event ev,
					     const struct slab_event_data *d)
{
	(void)nb;
	if (d->cache == fk_cache && (ev == SLAB_EVENT_ALLOC || ev == SLAB_EVENT_FREE))
		atomic_fetch_add(&fk_other, 1);
	return SLAB_NOTIFY_OK;
}

static _Atomic(void *) fk_pool[128];

static void *fk_worker(void *arg)
{
	uint64_t seed = 99 + (uintptr_t)arg;
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		void *p = slab_cache_alloc(fk_cache, 0);
		void *m = slab_malloc(1 + rnd(&seed) % 60, 0);
		if (!p || !m) {
			fail("allocation failed in the parent");
			break;
		}
		slab_free(m);
		void *old = atomic_exchange(&fk_pool[rnd(&seed) % 128], p);
		if (old)
			slab_cache_free(fk_cache, old);
		atomic_fetch_add_explicit(&fk_ops, 1, memory_order_relaxed);
	}
	return NULL;
}

/* The child: exit status names the first check that failed. */
static int fork_child(void)
{
	alarm(30); /* a deadlock kills the child with SIGALRM */
	atomic_store(&fk_allocs, 0);
	atomic_store(&fk_frees, 0);
	enum { N = 2000 };
	static void *objs[N];
	for (int i = 0; i < N; i++)
		if (!(objs[i] = slab_cache_alloc(fk_cache, 0)))
			return 10;
	if (atomic_load(&fk_allocs) != N)
		return 11;
	for (int i = 0; i < N; i++)
		slab_cache_free(fk_cache, objs[i]);
	if (atomic_load(&fk_frees) != N)
		return 12;
	/* kmalloc works too. */
	for (int i = 0; i < N; i++)
		slab_free(slab_malloc((size_t)(i % 300) + 1, 0));
	/* Objects the parent's threads left: freeing them must not crash,
	 * and each was notified in the parent. */
	long before = atomic_load(&fk_frees);
	int inherited = 0;
	for (int i = 0; i < 128; i++) {
		void *o = atomic_exchange(&fk_pool[i], NULL);
		if (o) {
			slab_cache_free(fk_cache, o);
			inherited++;
		}
	}
	if (atomic_load(&fk_frees) - before != inherited)
		return 13;
#if !defined(__SANITIZE_THREAD__)
	/* Registration works (unregister waits for a grace period in the
	 * child's RCU state). Not under TSan: it forbids a multi-threaded
	 * parent's child to start threads (call_rcu's worker). */
	struct slab_notifier nb2 = { .call = fk_call2 };
	if (slab_notifier_register(&nb2))
		return 14;
	void *p = slab_cache_alloc(fk_cache, 0);
	slab_cache_free(fk_cache, p);
	if (atomic_load(&fk_other) != 2)
		return 15;
	if (slab_notifier_unregister(&nb2))
		return 16;
	p = slab_cache_alloc(fk_cache, 0);
	slab_cache_free(fk_cache, p);
	if (atomic_load(&fk_other) != 2)
		return 17;
#endif
	/* A new cache in the child. */
	struct slab_cache *c = slab_cache_create("child", 40, 0, SLAB_NOTIFY, NULL);
	if (!c)
		return 18;
	slab_cache_free(c, slab_cache_alloc(c, 0));
	if (slab_cache_destroy(c))
		return 19;
	if (slab_cache_set_notify(fk_cache, false) || slab_cache_set_notify(fk_cache, true))
		return 20;
	return 0;
}

Test(fork, child_of_threaded_parent_keeps_notifying, .timeout = 120)
{
	fk_cache = slab_cache_create("forked", 56, 0, SLAB_NOTIFY, NULL);
	struct slab_notifier nb = { .call = fk_call };
	cr_assert_eq(slab_notifier_register(&nb), 0);
	pthread_t t[3];
	for (long i = 0; i < 3; i++)
		pthread_create(&t[i], NULL, fk_worker, (void *)i);
	int forks = SCALE > 1 ? 3 : 8;
	for (int f = 0; f < forks; f++) {
		/* The other threads are really at it when we fork. */
		long ops0 = atomic_load(&fk_ops);
		while (atomic_load(&fk_ops) < ops0 + 3000)
			msleep(1);
		pid_t pid = fork();
		cr_assert_geq(pid, 0, "fork failed");
		if (pid == 0)
			_exit(fork_child());
		int status = 0;
		cr_assert_eq(waitpid(pid, &status, 0), pid);
		cr_assert(WIFEXITED(status), "fork %d: child killed by signal %d%s", f,
			  WIFSIGNALED(status) ? WTERMSIG(status) : 0,
			  WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM ? " (deadlock)" : "");
		cr_assert_eq(WEXITSTATUS(status), 0, "fork %d: child failed check %d", f, WEXITSTATUS(status));
	}
	atomic_store(&stop, true);
	for (int i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
	assert_no_failure();
	for (int i = 0; i < 128; i++) {
		void *o = atomic_exchange(&fk_pool[i], NULL);
		if (o)
			slab_cache_free(fk_cache, o);
	}
	/* The parent's own pairing held through the forks. */
	cr_assert_gt(atomic_load(&fk_allocs), 0);
	cr_assert_eq(atomic_load(&fk_allocs), atomic_load(&fk_frees));
	cr_assert_eq(slab_notifier_unregister(&nb), 0);
}
