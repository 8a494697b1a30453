/*
 * test_memcg.c - memory accounting groups (src/memcg.c).
 *
 * Every Test() runs in a fresh process (Criterion forks), so the root
 * group starts at zero in each. Single-threaded tests rely on stat being
 * exact at a quiet moment: usage is the bytes of live charged objects,
 * excluding what sits pre-charged in the thread's stock.
 *
 * Covered: the tree and its argument checks; charges at every level of
 * the hierarchy; a parent's max limiting its children; vetoes (ENOMEM,
 * failcnt, no leaked object); NOFAIL force-charges; max set below usage;
 * cross-thread frees uncharging the owner; reparenting on destroy and
 * -EBUSY while a group is current somewhere or has children; reclaim
 * callbacks that free (allocation succeeds) or free nothing (veto); high
 * throttling (longer the further over, capped at 2 s; NOWAIT never
 * sleeps); events; SLAB_GFP_ACCOUNT against plain slab_malloc, large
 * objects included; objects from before accounting; peak and reset;
 * stocks; print; and a concurrent stress with a monitor thread.
 *
 * Worker threads never call cr_assert (it longjmps into the test's main
 * thread); they record the first failure and the main thread asserts.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <slabnotify.h>

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifdef SLABNOTIFY_SANITIZER
#define SCALE 10
#else
#define SCALE 1
#endif

/* ------------------------------------------------------------------ */
/* Helpers                                                            */
/* ------------------------------------------------------------------ */

static struct slab_memcg_stat st_of(const struct slab_memcg *g)
{
	struct slab_memcg_stat st;
	memset(&st, 0xa5, sizeof(st));
	int rc = slab_memcg_stat(g, &st);
	cr_assert_eq(rc, 0, "slab_memcg_stat() = %d", rc);
	return st;
}

static struct slab_memcg *mk(struct slab_memcg *parent, const char *name)
{
	errno = 0;
	struct slab_memcg *g = slab_memcg_create(parent, name);
	cr_assert_not_null(g, "slab_memcg_create(%s): %s", name, strerror(errno));
	return g;
}

static struct slab_cache *acct_cache(const char *name, size_t size)
{
	struct slab_cache *c = slab_cache_create(name, size, 0, SLAB_ACCOUNT, NULL);
	cr_assert_not_null(c, "slab_cache_create(%s): %s", name, strerror(errno));
	return c;
}

static unsigned long active_objs(struct slab_cache *c)
{
	struct slab_cache_info in;
	cr_assert_eq(slab_cache_info(c, &in), 0);
	return in.active_objs;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t large_footprint(const void *p)
{
	return (slab_usable_size(p) + 4095) & ~(size_t)4095;
}

/* A simple LIFO of objects a reclaim callback can free. */
struct pool {
	pthread_mutex_t lock;
	void **obj;
	size_t n, cap;
	size_t stride;        /* bytes per object, for the reclaim's return */
	unsigned calls;       /* reclaim callback invocations */
	slab_gfp_t last_gfp;
	bool frees;           /* false: the callback frees nothing */
};

static void pool_init(struct pool *p, size_t cap, size_t stride, bool frees)
{
	memset(p, 0, sizeof(*p));
	pthread_mutex_init(&p->lock, NULL);
	p->obj = calloc(cap, sizeof(void *));
	cr_assert_not_null(p->obj);
	p->cap = cap;
	p->stride = stride;
	p->frees = frees;
}

static void pool_push(struct pool *p, void *o)
{
	pthread_mutex_lock(&p->lock);
	if (p->n < p->cap) {
		p->obj[p->n++] = o;
		o = NULL;
	}
	pthread_mutex_unlock(&p->lock);
	if (o)
		slab_free(o);
}

static void *pool_pop(struct pool *p)
{
	pthread_mutex_lock(&p->lock);
	void *o = p->n ? p->obj[--p->n] : NULL;
	pthread_mutex_unlock(&p->lock);
	return o;
}

static void pool_free_all(struct pool *p)
{
	void *o;
	while ((o = pool_pop(p)))
		slab_free(o);
}

static void pool_destroy(struct pool *p)
{
	pool_free_all(p);
	free(p->obj);
	p->obj = NULL;
	pthread_mutex_destroy(&p->lock);
}

static size_t pool_reclaim(struct slab_memcg *g, size_t want, slab_gfp_t gfp, void *arg)
{
	(void)g;
	struct pool *p = arg;
	pthread_mutex_lock(&p->lock);
	p->calls++;
	p->last_gfp = gfp;
	pthread_mutex_unlock(&p->lock);
	if (!p->frees)
		return 0;
	size_t got = 0;
	void *o;
	while (got < want && (o = pool_pop(p))) {
		slab_free(o);
		got += p->stride;
	}
	return got;
}

/* ------------------------------------------------------------------ */
/* The tree and its arguments                                         */
/* ------------------------------------------------------------------ */

Test(memcg_api, root_create_enter_and_errors)
{
	struct slab_memcg *root = slab_memcg_root();
	cr_assert_not_null(root);
	cr_assert_str_eq(slab_memcg_name(root), "root");
	cr_assert_eq(slab_memcg_current(), root, "a thread starts in root");

	errno = 0;
	cr_assert_null(slab_memcg_create(NULL, NULL));
	cr_assert_eq(errno, EINVAL);

	char name[] = "tenant";
	struct slab_memcg *a = mk(NULL, name);
	name[0] = 'X';
	cr_assert_str_eq(slab_memcg_name(a), "tenant", "the name is copied");
	struct slab_memcg *b = mk(a, "b");

	struct slab_memcg_stat st = st_of(b);
	cr_assert_eq(st.usage, 0);
	cr_assert_eq(st.max, SIZE_MAX);
	cr_assert_eq(st.high, SIZE_MAX);
	cr_assert_eq(st.nr_objects, 0);

	cr_assert_eq(slab_memcg_enter(b), root, "enter returns the previous group");
	cr_assert_eq(slab_memcg_current(), b);
	cr_assert_eq(slab_memcg_enter(root), b);

	cr_assert_eq(slab_memcg_destroy(NULL), -EINVAL);
	cr_assert_eq(slab_memcg_destroy(root), -EINVAL);
	cr_assert_eq(errno, EINVAL);
	cr_assert_eq(slab_memcg_destroy(a), -EBUSY, "a has a live child");
	cr_assert_eq(errno, EBUSY);
	cr_assert_eq(slab_memcg_destroy(b), 0);
	cr_assert_eq(slab_memcg_destroy(a), 0);

	cr_assert_eq(slab_memcg_stat(NULL, &st), -EINVAL);
	cr_assert_eq(slab_memcg_set_max(NULL, 1), -EINVAL);
	cr_assert_eq(slab_memcg_set_high(NULL, 1), -EINVAL);
	cr_assert_eq(slab_memcg_reset_peak(NULL), -EINVAL);
	cr_assert_eq(slab_memcg_add_reclaim(root, NULL, NULL), -EINVAL);
	cr_assert_eq(slab_memcg_on_event(root, NULL, NULL), -EINVAL);
	cr_assert_eq(slab_memcg_remove_reclaim(root, pool_reclaim, NULL), -ENOENT);
	cr_assert_eq(slab_memcg_print(NULL), -EINVAL);
}

/* ------------------------------------------------------------------ */
/* Charging                                                           */
/* ------------------------------------------------------------------ */

Test(memcg_charge, account_cache_charges_stride_and_uncharges)
{
	struct slab_cache *c = acct_cache("acct-100", 100);
	size_t stride = slab_cache_size(c);
	cr_assert_geq(stride, 100);
	struct slab_memcg *g = mk(NULL, "g");
	slab_memcg_enter(g);
	enum { N = 300 };
	void *o[N];
	for (int i = 0; i < N; i++)
		cr_assert_not_null(o[i] = slab_cache_alloc(c, 0));
	struct slab_memcg_stat st = st_of(g);
	cr_assert_eq(st.usage, N * stride, "usage %zu != %zu", st.usage, N * stride);
	cr_assert_eq(st.nr_objects, N);
	cr_assert_eq(st.peak, N * stride, "peak %zu", st.peak);
	for (int i = 0; i < N; i++)
		slab_cache_free(c, o[i]);
	st = st_of(g);
	cr_assert_eq(st.usage, 0);
	cr_assert_eq(st.nr_objects, 0);
	cr_assert_eq(st.peak, N * stride, "the peak stays");
	slab_memcg_drain_stock();
	st = st_of(slab_memcg_root());
	cr_assert_eq(st.usage, 0);
	cr_assert_eq(st.stock, 0);
}

/*
 * The core's charges from the stock without an event (consumer.h's
 * charges), for a thread in @owner: usage, objects and peak exact; half
 * the objects freed by the thread itself, the rest after it moved to
 * @other, which must not be charged for them: everything goes back to
 * @owner. For a child group, the owner is recorded in the object (a
 * slab's first object takes the event's way, which makes the array).
 */
static void charged_way_is_exact(struct slab_memcg *owner, struct slab_memcg *other, size_t size, size_t n)
{
	struct slab_cache *c = acct_cache("acct-charged", size);
	size_t stride = slab_cache_size(c);
	slab_memcg_enter(owner);
	void **o = calloc(n, sizeof(void *));
	for (size_t i = 0; i < n; i++)
		cr_assert_not_null(o[i] = slab_cache_alloc(c, 0));
	struct slab_memcg_stat st = st_of(owner);
	cr_assert_eq(st.usage, n * stride, "usage %zu != %zu", st.usage, n * stride);
	cr_assert_eq(st.nr_objects, n);
	cr_assert_eq(st.peak, n * stride, "peak %zu", st.peak);
	for (size_t i = 0; i < n / 2; i++)
		slab_cache_free(c, o[i]);
	st = st_of(owner);
	cr_assert_eq(st.usage, (n - n / 2) * stride);
	cr_assert_eq(st.nr_objects, n - n / 2);
	slab_memcg_enter(other);
	for (size_t i = n / 2; i < n; i++)
		slab_cache_free(c, o[i]);
	cr_assert_eq(st_of(other).usage, 0, "the other group was charged for the owner's objects");
	cr_assert_eq(st_of(other).nr_objects, 0);
	slab_memcg_enter(slab_memcg_root());
	slab_memcg_drain_stock();
	st = st_of(owner);
	cr_assert_eq(st.usage, 0, "owner usage %zu", st.usage);
	cr_assert_eq(st.nr_objects, 0);
	cr_assert_eq(st.stock, 0);
	cr_assert_eq(st.peak, n * stride, "the peak stays");
	cr_assert_eq(st_of(slab_memcg_root()).usage, 0);
	free(o);
}

Test(memcg_charge, root_charges_without_events_are_exact)
{
	struct slab_memcg *root = slab_memcg_root();   /* accounting starts */
	charged_way_is_exact(root, mk(NULL, "g"), 100, 3000);
}

Test(memcg_charge, child_charges_without_events_are_exact)
{
	struct slab_memcg *g = mk(NULL, "g");
	cr_assert_eq(slab_memcg_set_max(g, 64u << 20), 0);
	charged_way_is_exact(g, mk(NULL, "h"), 48, 4000);
}

Test(memcg_charge, plain_cache_is_not_charged)
{
	struct slab_cache *c = slab_cache_create("plain", 64, 0, SLAB_NOTIFY, NULL);
	struct slab_memcg *g = mk(NULL, "g");
	slab_memcg_enter(g);
	void *p = slab_cache_alloc(c, 0);
	cr_assert_not_null(p);
	cr_assert_eq(st_of(g).usage, 0);
	/* ... but the same cache with SLAB_GFP_ACCOUNT on the call is. */
	void *q = slab_cache_alloc(c, SLAB_GFP_ACCOUNT);
	cr_assert_eq(st_of(g).usage, slab_cache_size(c));
	slab_cache_free(c, q);
	slab_cache_free(c, p);
	cr_assert_eq(st_of(g).usage, 0);
}

Test(memcg_hierarchy, a_charge_counts_at_every_level)
{
	struct slab_cache *c = acct_cache("acct-64", 64);
	struct slab_memcg *root = slab_memcg_root();
	struct slab_memcg *a = mk(NULL, "a"), *b = mk(a, "b"), *d = mk(b, "d"), *s = mk(a, "sibling");
	size_t base = st_of(root).usage;
	slab_memcg_enter(d);
	enum { N = 1000 };
	void **o = calloc(N, sizeof(void *));
	for (int i = 0; i < N; i++)
		cr_assert_not_null(o[i] = slab_cache_alloc(c, 0));
	size_t want = N * slab_cache_size(c);
	cr_assert_eq(st_of(d).usage, want);
	cr_assert_eq(st_of(b).usage, want);
	cr_assert_eq(st_of(a).usage, want);
	cr_assert_eq(st_of(root).usage - base, want);
	cr_assert_eq(st_of(s).usage, 0, "a sibling is not charged");
	cr_assert_eq(st_of(a).nr_objects, N);
	cr_assert_eq(st_of(root).nr_objects, N);
	for (int i = 0; i < N; i++)
		slab_cache_free(c, o[i]);
	cr_assert_eq(st_of(a).usage, 0);
	cr_assert_eq(st_of(d).nr_objects, 0);
	free(o);
}

Test(memcg_hierarchy, a_parents_max_limits_its_children)
{
	struct slab_cache *c = acct_cache("acct-64", 64);
	size_t stride = slab_cache_size(c);
	struct slab_memcg *p = mk(NULL, "p"), *c1 = mk(p, "c1"), *c2 = mk(p, "c2");
	const size_t max = 16384;
	cr_assert_eq(slab_memcg_set_max(p, max), 0);
	slab_memcg_enter(c1);
	void *o[1024];
	int n = 0;
	while (n < 1024 && (o[n] = slab_cache_alloc(c, 0)))
		n++;
	cr_assert_lt(n, 1024, "the parent's max must stop the child");
	cr_assert_eq(errno, ENOMEM);
	cr_assert_eq((size_t)n * stride, max, "exactly max fits: %d objects", n);
	struct slab_memcg_stat sp = st_of(p), s1 = st_of(c1);
	cr_assert_eq(sp.usage, max);
	cr_assert_eq(s1.usage, max);
	cr_assert_eq(sp.failcnt, 1, "failcnt counts at the group whose max was hit");
	cr_assert_eq(s1.failcnt, 0);
	cr_assert_geq(sp.events_max, 1);
	/* The sibling shares the parent's budget: nothing left. */
	slab_memcg_enter(c2);
	errno = 0;
	cr_assert_null(slab_cache_alloc(c, 0));
	cr_assert_eq(errno, ENOMEM);
	cr_assert_eq(st_of(p).failcnt, 2);
	/* Free one of c1's objects from c2: c2 can take its place. */
	slab_cache_free(c, o[--n]);
	cr_assert_not_null(o[n] = slab_cache_alloc(c, 0));
	cr_assert_eq(st_of(c2).usage, stride);
	n++;
	for (int i = 0; i < n; i++)
		slab_cache_free(c, o[i]);
	cr_assert_eq(st_of(p).usage, 0);
	cr_assert_eq(st_of(c1).usage, 0);
	cr_assert_eq(st_of(c2).usage, 0);
}

/* ------------------------------------------------------------------ */
/* max: vetoes, NOFAIL, max below usage                               */
/* ------------------------------------------------------------------ */

Test(memcg_max, veto_sets_enomem_counts_and_leaks_nothing)
{
	struct slab_cache *c = acct_cache("acct-128", 128);
	size_t stride = slab_cache_size(c);
	struct slab_memcg *g = mk(NULL, "g");
	slab_memcg_set_max(g, 10 * stride + stride / 2);
	slab_memcg_enter(g);
	void *o[10];
	for (int i = 0; i < 10; i++)
		cr_assert_not_null(o[i] = slab_cache_alloc(c, 0));
	unsigned long before = active_objs(c);
	for (int k = 1; k <= 3; k++) {
		errno = 0;
		cr_assert_null(slab_cache_alloc(c, 0));
		cr_assert_eq(errno, ENOMEM);
		cr_assert_eq(active_objs(c), before, "the vetoed object went back");
		struct slab_memcg_stat st = st_of(g);
		cr_assert_eq(st.failcnt, (unsigned long)k);
		cr_assert_eq(st.events_max, (unsigned long)k);
		cr_assert_eq(st.usage, 10 * stride);
		cr_assert_leq(st.usage, st.max);
		cr_assert_eq(st.nr_objects, 10);
	}
	for (int i = 0; i < 10; i++)
		slab_cache_free(c, o[i]);
	cr_assert_eq(st_of(g).usage, 0);
	cr_assert_eq(active_objs(c), before - 10);
}

Test(memcg_max, nofail_force_charges_and_counts)
{
	struct slab_cache *c = acct_cache("acct-64", 64);
	size_t stride = slab_cache_size(c);
	struct slab_memcg *g = mk(NULL, "g");
	slab_memcg_set_max(g, 4 * stride);
	slab_memcg_enter(g);
	void *o[6];
	for (int i = 0; i < 4; i++)
		cr_assert_not_null(o[i] = slab_cache_alloc(c, 0));
	cr_assert_null(slab_cache_alloc(c, 0));
	cr_assert_not_null(o[4] = slab_cache_alloc(c, SLAB_GFP_NOFAIL));
	cr_assert_not_null(o[5] = slab_cache_alloc(c, SLAB_GFP_NOFAIL));
	struct slab_memcg_stat st = st_of(g);
	cr_assert_eq(st.usage, 6 * stride, "NOFAIL charges past max");
	cr_assert_eq(st.events_nofail, 2);
	cr_assert_eq(st.failcnt, 1);
	cr_assert_geq(st.peak, 6 * stride);
	for (int i = 0; i < 6; i++)
		slab_cache_free(c, o[i]);
	cr_assert_eq(st_of(g).usage, 0);
	cr_assert_not_null(o[0] = slab_cache_alloc(c, 0), "room again after the frees");
	slab_cache_free(c, o[0]);
}

Test(memcg_max, set_max_below_usage_reclaims_at_once_then_fails)
{
	struct slab_cache *c = acct_cache("acct-64", 64);
	size_t stride = slab_cache_size(c);
	struct slab_memcg *g = mk(NULL, "g");
	struct pool none;
	pool_init(&none, 1, stride, false);
	cr_assert_eq(slab_memcg_add_reclaim(g, pool_reclaim, &none), 0);
	cr_assert_eq(slab_memcg_add_reclaim(g, pool_reclaim, &none), -EEXIST);
	slab_memcg_enter(g);
	enum { N = 100 };
	void *o[N];
	for (int i = 0; i < N; i++)
		cr_assert_not_null(o[i] = slab_cache_alloc(c, 0));
	cr_assert_eq(slab_memcg_set_max(g, N / 2 * stride), 0, "a max below usage is allowed");
	cr_assert_eq(none.calls, 1, "reclaim runs at once");
	struct slab_memcg_stat st = st_of(g);
	cr_assert_eq(st.usage, N * stride, "nothing was freed");
	cr_assert_eq(st.max, N / 2 * stride);
	errno = 0;
	cr_assert_null(slab_cache_alloc(c, 0), "later charges fail");
	cr_assert_eq(errno, ENOMEM);
	/* Free down to below max: charges work again, up to max. */
	for (int i = 0; i < N; i++)
		slab_cache_free(c, o[i]);
	int n = 0;
	while (n < N && (o[n] = slab_cache_alloc(c, 0)))
		n++;
	cr_assert_eq(n, N / 2);
	for (int i = 0; i < n; i++)
		slab_cache_free(c, o[i]);
	cr_assert_eq(slab_memcg_remove_reclaim(g, pool_reclaim, &none), 0);
	pool_destroy(&none);
}

Test(memcg_max, set_max_below_usage_with_a_freeing_reclaim)
{
	struct slab_cache *c = acct_cache("acct-64", 64);
	size_t stride = slab_cache_size(c);
	struct slab_memcg *g = mk(NULL, "g");
	struct pool p;
	pool_init(&p, 1000, stride, true);
	slab_memcg_add_reclaim(g, pool_reclaim, &p);
	slab_memcg_enter(g);
	for (int i = 0; i < 1000; i++)
		pool_push(&p, slab_cache_alloc(c, 0));
	slab_memcg_set_max(g, 300 * stride);
	struct slab_memcg_stat st = st_of(g);
	cr_assert_leq(st.usage, 300 * stride, "reclaim brought usage under the new max");
	cr_assert_geq(st.reclaimed, 700 * stride);
	pool_free_all(&p);
	cr_assert_eq(st_of(g).usage, 0);
	pool_destroy(&p);
}

/* ------------------------------------------------------------------ */
/* Cross-thread frees, reparenting                                    */
/* ------------------------------------------------------------------ */

struct xfer {
	struct slab_memcg *group;
	struct slab_cache *cache;
	void **obj;
	int n;
};

static void *alloc_in_group(void *arg)
{
	struct xfer *x = arg;
	slab_memcg_enter(x->group);
	for (int i = 0; i < x->n; i++)
		x->obj[i] = slab_cache_alloc(x->cache, 0);
	slab_memcg_drain_stock();
	return NULL;
}

static void *free_in_group(void *arg)
{
	struct xfer *x = arg;
	slab_memcg_enter(x->group);
	for (int i = 0; i < x->n; i++)
		slab_cache_free(x->cache, x->obj[i]);
	return NULL;   /* no drain: thread exit drains the stock */
}

Test(memcg_free, a_cross_thread_free_uncharges_the_owner)
{
	struct slab_cache *c = acct_cache("acct-64", 64);
	size_t stride = slab_cache_size(c);
	struct slab_memcg *g = mk(NULL, "owner"), *h = mk(NULL, "freer");
	enum { N = 5000 };
	void **o = calloc(N, sizeof(void *));
	struct xfer x = { g, c, o, N };
	pthread_t t;
	pthread_create(&t, NULL, alloc_in_group, &x);
	pthread_join(t, NULL);
	for (int i = 0; i < N; i++)
		cr_assert_not_null(o[i]);
	cr_assert_eq(st_of(g).usage, N * stride);
	cr_assert_eq(st_of(g).stock, 0, "the thread drained its stock");
	/* Another thread, current in another group, frees them all. */
	struct xfer y = { h, c, o, N };
	pthread_create(&t, NULL, free_in_group, &y);
	pthread_join(t, NULL);
	struct slab_memcg_stat sg = st_of(g), sh = st_of(h);
	cr_assert_eq(sg.usage, 0, "the owner was uncharged: %zu", sg.usage);
	cr_assert_eq(sg.nr_objects, 0);
	cr_assert_eq(sh.usage, 0);
	cr_assert_eq(sh.nr_objects, 0);
	cr_assert_eq(st_of(slab_memcg_root()).usage, 0);
	cr_assert_eq(st_of(slab_memcg_root()).stock, 0, "thread exit drained the stock");
	free(o);
}

struct holder {
	struct slab_memcg *group;
	pthread_barrier_t *entered, *release;
};

static void *hold_current(void *arg)
{
	struct holder *h = arg;
	slab_memcg_enter(h->group);
	pthread_barrier_wait(h->entered);
	pthread_barrier_wait(h->release);
	return NULL;   /* exiting drops it */
}

Test(memcg_reparent, destroy_moves_charges_to_the_parent)
{
	struct slab_cache *c = acct_cache("acct-64", 64);
	size_t stride = slab_cache_size(c);
	struct slab_memcg *p = mk(NULL, "p"), *k = mk(p, "kid");
	slab_memcg_enter(k);
	enum { N = 200 };
	void *o[N];
	for (int i = 0; i < N; i++)
		cr_assert_not_null(o[i] = slab_cache_alloc(c, 0));
	cr_assert_eq(slab_memcg_destroy(k), -EBUSY, "current in this thread");
	cr_assert_eq(slab_memcg_destroy(p), -EBUSY, "has a child");
	slab_memcg_enter(p);

	/* Current in another thread: still busy. */
	pthread_barrier_t b1, b2;
	pthread_barrier_init(&b1, NULL, 2);
	pthread_barrier_init(&b2, NULL, 2);
	struct holder h = { k, &b1, &b2 };
	pthread_t t;
	pthread_create(&t, NULL, hold_current, &h);
	pthread_barrier_wait(&b1);
	cr_assert_eq(slab_memcg_destroy(k), -EBUSY, "current in another thread");
	pthread_barrier_wait(&b2);
	pthread_join(t, NULL);

	cr_assert_eq(slab_memcg_destroy(k), 0);
	struct slab_memcg_stat sp = st_of(p);
	cr_assert_eq(sp.usage, N * stride, "the charges moved to the parent");
	cr_assert_eq(sp.nr_objects, N);
	cr_assert_eq(slab_memcg_destroy(p), -EBUSY, "p is current here");
	/* Later frees uncharge the parent. */
	for (int i = 0; i < N / 2; i++)
		slab_cache_free(c, o[i]);
	cr_assert_eq(st_of(p).usage, (N - N / 2) * stride);
	cr_assert_eq(st_of(p).nr_objects, N - N / 2);
	for (int i = N / 2; i < N; i++)
		slab_cache_free(c, o[i]);
	cr_assert_eq(st_of(p).usage, 0);
	cr_assert_eq(st_of(p).nr_objects, 0);
	cr_assert_eq(st_of(slab_memcg_root()).usage, 0);
	/* The zombie is gone: a new child and a destroy work as usual. */
	struct slab_memcg *k2 = mk(p, "kid2");
	cr_assert_eq(slab_memcg_destroy(k2), 0);
}

Test(memcg_reparent, zombie_chain_forwards_to_the_first_live_ancestor)
{
	struct slab_cache *c = acct_cache("acct-64", 64);
	size_t stride = slab_cache_size(c);
	struct slab_memcg *top = mk(NULL, "top"), *mid = mk(top, "mid"), *leaf = mk(mid, "leaf");
	slab_memcg_enter(leaf);
	void *o[64];
	for (int i = 0; i < 64; i++)
		cr_assert_not_null(o[i] = slab_cache_alloc(c, 0));
	slab_memcg_enter(slab_memcg_root());
	cr_assert_eq(slab_memcg_destroy(leaf), 0);
	cr_assert_eq(slab_memcg_destroy(mid), 0, "a zombie child does not keep its parent");
	cr_assert_eq(st_of(top).usage, 64 * stride);
	for (int i = 0; i < 64; i++)
		slab_cache_free(c, o[i]);
	cr_assert_eq(st_of(top).usage, 0);
	cr_assert_eq(st_of(top).nr_objects, 0);
	cr_assert_eq(slab_memcg_destroy(top), 0);
	cr_assert_eq(st_of(slab_memcg_root()).usage, 0);
}

Test(memcg_reparent, destroy_of_an_empty_group_and_twice)
{
	struct slab_memcg *g = mk(NULL, "g");
	cr_assert_eq(slab_memcg_destroy(g), 0);
	struct slab_memcg *h = mk(NULL, "h");
	slab_memcg_enter(h);
	slab_memcg_enter(slab_memcg_root());
	cr_assert_eq(slab_memcg_destroy(h), 0, "no longer current anywhere");
}

/* ------------------------------------------------------------------ */
/* Reclaim                                                            */
/* ------------------------------------------------------------------ */

Test(memcg_reclaim, a_callback_that_frees_makes_the_allocation_succeed)
{
	struct slab_cache *c = acct_cache("acct-64", 64);
	size_t stride = slab_cache_size(c);
	struct slab_memcg *g = mk(NULL, "g");
	const size_t max = 16384;
	slab_memcg_set_max(g, max);
	struct pool p;
	pool_init(&p, 100000, stride, true);
	slab_memcg_add_reclaim(g, pool_reclaim, &p);
	slab_memcg_enter(g);
	unsigned long objs0 = active_objs(c);
	enum { N = 5000 };
	for (int i = 0; i < N; i++) {
		void *o = slab_cache_alloc(c, 0);
		cr_assert_not_null(o, "allocation %d failed although reclaim can free", i);
		pool_push(&p, o);
	}
	struct slab_memcg_stat st = st_of(g);
	cr_assert_leq(st.usage, max);
	cr_assert_eq(st.failcnt, 0);
	cr_assert_gt(p.calls, 0);
	cr_assert_geq(st.events_max, p.calls);
	cr_assert_geq(st.reclaimed, (N * stride - max));
	cr_assert_eq(st.usage, p.n * stride, "usage matches the live objects");
	cr_assert_eq(active_objs(c) - objs0, p.n, "reclaimed objects really were freed");
	pool_free_all(&p);
	cr_assert_eq(st_of(g).usage, 0);
	pool_destroy(&p);
}

Test(memcg_reclaim, a_callback_that_frees_nothing_leads_to_a_veto)
{
	struct slab_cache *c = acct_cache("acct-64", 64);
	size_t stride = slab_cache_size(c);
	struct slab_memcg *g = mk(NULL, "g");
	slab_memcg_set_max(g, 8 * stride);
	struct pool none;
	pool_init(&none, 1, stride, false);
	slab_memcg_add_reclaim(g, pool_reclaim, &none);
	slab_memcg_enter(g);
	void *o[8];
	for (int i = 0; i < 8; i++)
		cr_assert_not_null(o[i] = slab_cache_alloc(c, 0));
	cr_assert_eq(none.calls, 0, "no reclaim below max");
	errno = 0;
	cr_assert_null(slab_cache_alloc(c, SLAB_GFP_NOWAIT));
	cr_assert_eq(errno, ENOMEM);
	cr_assert_eq(none.calls, 1, "reclaimed once, then retried once");
	cr_assert_eq(none.last_gfp, SLAB_GFP_NOWAIT, "the callback gets the allocation's gfp");
	struct slab_memcg_stat st = st_of(g);
	cr_assert_eq(st.failcnt, 1);
	cr_assert_eq(st.reclaimed, 0);
	for (int i = 0; i < 8; i++)
		slab_cache_free(c, o[i]);
	pool_destroy(&none);
}

/* The parent's max is hit by a child's charge: the parent's callbacks run. */
Test(memcg_reclaim, the_limiting_ancestors_callbacks_run)
{
	struct slab_cache *c = acct_cache("acct-64", 64);
	size_t stride = slab_cache_size(c);
	struct slab_memcg *p = mk(NULL, "p"), *k = mk(p, "k");
	slab_memcg_set_max(p, 64 * stride);
	struct pool pp, kp;
	pool_init(&pp, 10000, stride, true);
	pool_init(&kp, 1, stride, false);
	slab_memcg_add_reclaim(p, pool_reclaim, &pp);
	slab_memcg_add_reclaim(k, pool_reclaim, &kp);
	slab_memcg_enter(k);
	for (int i = 0; i < 1000; i++) {
		void *o = slab_cache_alloc(c, 0);
		cr_assert_not_null(o);
		pool_push(&pp, o);
	}
	cr_assert_gt(pp.calls, 0);
	cr_assert_eq(kp.calls, 0, "k has no max of its own");
	cr_assert_leq(st_of(p).usage, 64 * stride);
	pool_free_all(&pp);
	pool_destroy(&pp);
	pool_destroy(&kp);
}

/* ------------------------------------------------------------------ */
/* high: throttling                                                   */
/* ------------------------------------------------------------------ */

/* Fill @g with NOWAIT 4 KiB objects until its usage reaches @target. */
static void fill_nowait(struct pool *p, struct slab_memcg *g, size_t target)
{
	while (st_of(g).usage < target) {
		void *o = slab_malloc(4096, SLAB_GFP_ACCOUNT | SLAB_GFP_NOWAIT);
		cr_assert_not_null(o);
		pool_push(p, o);
	}
}

static double timed_alloc(struct pool *p, slab_gfp_t gfp)
{
	double t0 = now_s();
	void *o = slab_malloc(4096, SLAB_GFP_ACCOUNT | gfp);
	double dt = now_s() - t0;
	cr_assert_not_null(o);
	pool_push(p, o);
	return dt;
}

Test(memcg_high, throttling_grows_with_the_overage_and_is_capped, .timeout = 60)
{
	struct slab_memcg *g = mk(NULL, "g");
	const size_t high = 1 << 20;
	slab_memcg_set_high(g, high);
	slab_memcg_enter(g);
	struct pool p;
	pool_init(&p, 10000, 4096, true);

	/* Below high: no throttling at all. */
	fill_nowait(&p, g, high / 2);
	double below = timed_alloc(&p, 0);
	cr_assert_lt(below, 0.05, "below high: %.3f s", below);
	struct slab_memcg_stat st = st_of(g);
	cr_assert_eq(st.events_high, 0);
	cr_assert_eq(st.throttled_us, 0);

	/* 10 % over: (0.1)^2 s = 10 ms. */
	fill_nowait(&p, g, high + high / 10);
	double t10 = timed_alloc(&p, 0);
	/* 50 % over: 250 ms. */
	fill_nowait(&p, g, high + high / 2);
	double t50 = timed_alloc(&p, 0);
	/* 5x over: capped at 2 s. */
	fill_nowait(&p, g, 5 * high);
	unsigned long us0 = st_of(g).throttled_us;
	double tcap = timed_alloc(&p, 0);
	unsigned long capped_us = st_of(g).throttled_us - us0;
	cr_log_info("throttled: 10%% over %.3f s, 50%% over %.3f s, 400%% over %.3f s", t10, t50, tcap);
	cr_assert_geq(t10, 0.008, "10%% over sleeps ~10 ms: %.3f", t10);
	cr_assert_lt(t10, 0.2, "10%% over: %.3f", t10);
	cr_assert_gt(t50, 4 * t10, "further over sleeps longer: %.3f vs %.3f", t50, t10);
	cr_assert_geq(t50, 0.2, "50%% over sleeps ~250 ms: %.3f", t50);
	cr_assert_geq(tcap, 1.95, "far over sleeps the cap: %.3f", tcap);
	cr_assert_leq(tcap, 2.5, "never much past the 2 s cap: %.3f", tcap);
	cr_assert_geq(capped_us, 1950000, "throttled %lu us", capped_us);
	cr_assert_leq(capped_us, 2000000, "never past the 2 s cap: %lu us", capped_us);
	st = st_of(g);
	cr_assert_geq(st.events_high, 3);
	double slept = (double)st.throttled_us / 1e6;
	cr_assert_geq(slept, t10 + t50 + tcap - 0.1, "throttled_us %lu", st.throttled_us);
	cr_assert_leq(slept, t10 + t50 + tcap + 0.01, "throttled_us %lu", st.throttled_us);
	pool_free_all(&p);
	cr_assert_eq(st_of(g).usage, 0);
	pool_destroy(&p);
}

Test(memcg_high, nowait_never_sleeps)
{
	struct slab_memcg *g = mk(NULL, "g");
	slab_memcg_set_high(g, 64 * 1024);
	slab_memcg_enter(g);
	struct pool p;
	pool_init(&p, 10000, 4096, true);
	fill_nowait(&p, g, 1 << 20);   /* 16x over high */
	double t0 = now_s();
	for (int i = 0; i < 100; i++)
		timed_alloc(&p, SLAB_GFP_NOWAIT);
	double dt = now_s() - t0;
	struct slab_memcg_stat st = st_of(g);
	cr_assert_lt(dt, 0.5, "100 NOWAIT allocations far over high took %.3f s", dt);
	cr_assert_eq(st.throttled_us, 0);
	cr_assert_gt(st.events_high, 100, "each charge above high is an event");
	pool_free_all(&p);
	pool_destroy(&p);
}

Test(memcg_high, reclaim_below_high_avoids_the_sleep)
{
	struct slab_memcg *g = mk(NULL, "g");
	slab_memcg_set_high(g, 256 * 1024);
	struct pool p;
	pool_init(&p, 10000, 4096, true);
	slab_memcg_add_reclaim(g, pool_reclaim, &p);
	slab_memcg_enter(g);
	double t0 = now_s();
	for (int i = 0; i < 1000; i++)   /* 4 MB through a 256 KiB high */
		pool_push(&p, slab_malloc(4096, SLAB_GFP_ACCOUNT));
	double dt = now_s() - t0;
	struct slab_memcg_stat st = st_of(g);
	cr_assert_gt(st.events_high, 0);
	cr_assert_gt(p.calls, 0);
	cr_assert_gt(st.reclaimed, 0);
	cr_assert_leq(st.usage, 256 * 1024 + 4096);
	cr_assert_lt(dt, 1.0, "reclaim kept usage at high, little sleeping: %.3f s", dt);
	pool_free_all(&p);
	pool_destroy(&p);
}

/* ------------------------------------------------------------------ */
/* Events                                                             */
/* ------------------------------------------------------------------ */

struct ev_count {
	struct slab_memcg *g;
	unsigned n[3];
	bool wrong_group;
};

static void count_event(struct slab_memcg *g, enum slab_memcg_event ev, void *arg)
{
	struct ev_count *e = arg;
	if (g != e->g)
		e->wrong_group = true;
	if ((unsigned)ev < 3)
		e->n[ev]++;
}

Test(memcg_events, high_max_and_veto_fire_and_match_the_counters)
{
	struct slab_cache *c = acct_cache("acct-64", 64);
	size_t stride = slab_cache_size(c);
	struct slab_memcg *g = mk(NULL, "g");
	struct ev_count e = { .g = g };
	cr_assert_eq(slab_memcg_on_event(g, count_event, &e), 0);
	slab_memcg_set_high(g, 20 * stride);
	slab_memcg_set_max(g, 40 * stride);
	slab_memcg_enter(g);
	void *o[40];
	for (int i = 0; i < 20; i++)
		cr_assert_not_null(o[i] = slab_cache_alloc(c, 0));
	cr_assert_eq(e.n[SLAB_MEMCG_EVENT_HIGH], 0, "at high, not above");
	for (int i = 20; i < 40; i++)
		cr_assert_not_null(o[i] = slab_cache_alloc(c, SLAB_GFP_NOWAIT));
	cr_assert_eq(e.n[SLAB_MEMCG_EVENT_HIGH], 20, "one per charge above high");
	cr_assert_eq(e.n[SLAB_MEMCG_EVENT_MAX], 0);
	cr_assert_null(slab_cache_alloc(c, SLAB_GFP_NOWAIT));
	cr_assert_eq(e.n[SLAB_MEMCG_EVENT_MAX], 1);
	cr_assert_eq(e.n[SLAB_MEMCG_EVENT_VETO], 1);
	struct slab_memcg_stat st = st_of(g);
	cr_assert_eq(st.events_high, e.n[SLAB_MEMCG_EVENT_HIGH]);
	cr_assert_eq(st.events_max, e.n[SLAB_MEMCG_EVENT_MAX]);
	cr_assert_eq(st.failcnt, e.n[SLAB_MEMCG_EVENT_VETO]);
	cr_assert_not(e.wrong_group);
	for (int i = 0; i < 40; i++)
		slab_cache_free(c, o[i]);
}

/* ------------------------------------------------------------------ */
/* kmalloc                                                            */
/* ------------------------------------------------------------------ */

Test(memcg_kmalloc, account_flag_is_charged_and_plain_is_not)
{
	struct slab_memcg *g = mk(NULL, "g");
	slab_memcg_enter(g);
	void *plain = slab_malloc(100, 0);
	cr_assert_not_null(plain);
	cr_assert_eq(st_of(g).usage, 0, "plain slab_malloc is not charged");
	void *acct = slab_malloc(100, SLAB_GFP_ACCOUNT);
	cr_assert_not_null(acct);
	cr_assert_eq(st_of(g).usage, 112, "kmalloc-cg-112's stride");
	cr_assert_eq(st_of(g).nr_objects, 1);

	void *big_plain = slab_malloc(100000, 0);
	cr_assert_not_null(big_plain);
	cr_assert_eq(st_of(g).usage, 112, "plain large is not charged");
	void *big = slab_malloc(100000, SLAB_GFP_ACCOUNT);
	cr_assert_not_null(big);
	size_t fp = large_footprint(big);
	cr_assert_eq(fp, 102400, "large: its pages, nothing else");
	cr_assert_eq(st_of(g).usage, 112 + fp, "large: its pages");

	slab_free(big);
	slab_free(acct);
	cr_assert_eq(st_of(g).usage, 0);
	cr_assert_eq(st_of(g).nr_objects, 0);
	slab_free(big_plain);
	slab_free(plain);
	cr_assert_eq(st_of(g).usage, 0);
}

Test(memcg_kmalloc, large_objects_are_limited_too)
{
	struct slab_memcg *g = mk(NULL, "g");
	slab_memcg_set_max(g, 1 << 20);
	slab_memcg_enter(g);
	void *a = slab_malloc(600000, SLAB_GFP_ACCOUNT);
	cr_assert_not_null(a);
	errno = 0;
	cr_assert_null(slab_malloc(600000, SLAB_GFP_ACCOUNT));
	cr_assert_eq(errno, ENOMEM);
	void *b = slab_malloc(600000, 0);
	cr_assert_not_null(b, "unaccounted allocations are not limited");
	slab_free(a);
	cr_assert_not_null(a = slab_malloc(600000, SLAB_GFP_ACCOUNT));
	slab_free(a);
	slab_free(b);
	cr_assert_eq(st_of(g).usage, 0);
}

Test(memcg_kmalloc, realloc_moves_the_charge)
{
	struct slab_memcg *g = mk(NULL, "g");
	slab_memcg_enter(g);
	void *p = slab_malloc(10, SLAB_GFP_ACCOUNT);
	cr_assert_eq(st_of(g).usage, 16);
	p = slab_realloc(p, 1000, SLAB_GFP_ACCOUNT);
	cr_assert_not_null(p);
	cr_assert_eq(st_of(g).usage, 1024);
	slab_free(p);
	cr_assert_eq(st_of(g).usage, 0);
}

/* ------------------------------------------------------------------ */
/* Before accounting; peak; stocks; print                             */
/* ------------------------------------------------------------------ */

Test(memcg_misc, objects_from_before_accounting_are_never_uncharged)
{
	/* No memcg function has run yet in this process: nothing charges. */
	struct slab_cache *c = acct_cache("early", 64);
	void *o[100];
	for (int i = 0; i < 100; i++)
		cr_assert_not_null(o[i] = slab_cache_alloc(c, 0));
	void *k = slab_malloc(64, SLAB_GFP_ACCOUNT);
	struct slab_memcg *root = slab_memcg_root();
	cr_assert_eq(st_of(root).usage, 0);
	void *late = slab_cache_alloc(c, 0);
	cr_assert_eq(st_of(root).usage, slab_cache_size(c), "charged once accounting is on");
	for (int i = 0; i < 100; i++)
		slab_cache_free(c, o[i]);
	slab_free(k);
	struct slab_memcg_stat st = st_of(root);
	cr_assert_eq(st.usage, slab_cache_size(c), "early objects did not uncharge anything");
	cr_assert_eq(st.nr_objects, 1);
	slab_cache_free(c, late);
	cr_assert_eq(st_of(root).usage, 0);
}

Test(memcg_misc, peak_and_reset)
{
	struct slab_cache *c = acct_cache("acct-64", 64);
	size_t stride = slab_cache_size(c);
	struct slab_memcg *g = mk(NULL, "g");
	slab_memcg_enter(g);
	void *o[50];
	for (int i = 0; i < 50; i++)
		o[i] = slab_cache_alloc(c, 0);
	for (int i = 0; i < 50; i++)
		slab_cache_free(c, o[i]);
	struct slab_memcg_stat st = st_of(g);
	cr_assert_eq(st.usage, 0);
	cr_assert_eq(st.peak, 50 * stride, "peak %zu, want %zu", st.peak, 50 * stride);
	for (int i = 0; i < 10; i++)
		o[i] = slab_cache_alloc(c, 0);
	cr_assert_eq(slab_memcg_reset_peak(g), 0);
	st = st_of(g);
	cr_assert_eq(st.peak, 10 * stride, "reset sets peak to usage: %zu", st.peak);
	for (int i = 10; i < 30; i++)
		o[i] = slab_cache_alloc(c, 0);
	for (int i = 0; i < 30; i++)
		slab_cache_free(c, o[i]);
	st = st_of(g);
	cr_assert_eq(st.peak, 30 * stride, "peak after reset %zu", st.peak);
	cr_assert_eq(slab_memcg_reset_peak(g), 0);
	cr_assert_eq(st_of(g).peak, 0);
}

Test(memcg_misc, stock_is_reported_and_drained)
{
	struct slab_cache *c = acct_cache("acct-64", 64);
	size_t stride = slab_cache_size(c);
	struct slab_memcg *g = mk(NULL, "g");
	slab_memcg_enter(g);
	void *o = slab_cache_alloc(c, 0);
	struct slab_memcg_stat st = st_of(g);
	cr_assert_eq(st.usage, stride);
	cr_assert_gt(st.stock, 0, "a refill pre-charges a batch");
	cr_assert_eq(st_of(slab_memcg_root()).stock, st.stock);
	slab_memcg_drain_stock();
	st = st_of(g);
	cr_assert_eq(st.stock, 0);
	cr_assert_eq(st.usage, stride);
	slab_cache_free(c, o);
	/* A switch drains too. */
	o = slab_cache_alloc(c, 0);
	cr_assert_gt(st_of(g).stock, 0);
	slab_memcg_enter(slab_memcg_root());
	cr_assert_eq(st_of(g).stock, 0);
	slab_cache_free(c, o);
	cr_assert_eq(st_of(g).usage, 0);
	cr_assert_eq(st_of(g).nr_objects, 0);
}

Test(memcg_misc, print_shows_the_tree_like_cgroup_v2)
{
	struct slab_cache *c = acct_cache("acct-64", 64);
	struct slab_memcg *a = mk(NULL, "alpha"), *b = mk(a, "beta");
	slab_memcg_set_max(b, 12345);
	slab_memcg_enter(b);
	void *o = slab_cache_alloc(c, 0);
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	cr_assert_eq(slab_memcg_print(f), 0);
	fclose(f);
	cr_assert_not_null(strstr(buf, "/alpha/beta\n"), "%s", buf);
	cr_assert_not_null(strstr(buf, "/alpha\n"));
	cr_assert_not_null(strstr(buf, "memory.max"));
	cr_assert_not_null(strstr(buf, "12345"));
	cr_assert_not_null(strstr(buf, " max\n"), "SIZE_MAX prints as max");
	cr_assert_not_null(strstr(buf, "memory.current"));
	cr_assert_not_null(strstr(buf, "memory.events"));
	cr_assert_lt(strstr(buf, "/alpha\n"), strstr(buf, "/alpha/beta\n"), "parents first");
	free(buf);
	slab_cache_free(c, o);
}

struct exit_arg {
	struct slab_memcg *g;
	struct slab_cache *c;
	void *obj;
};

static void *alloc_and_exit(void *arg)
{
	struct exit_arg *x = arg;
	slab_memcg_enter(x->g);
	x->obj = slab_cache_alloc(x->c, 0);
	return NULL;   /* no drain: the exit destructor does it */
}

Test(memcg_misc, thread_exit_drains_and_leaves_the_group)
{
	struct slab_cache *c = acct_cache("acct-64", 64);
	struct slab_memcg *g = mk(NULL, "g");
	struct exit_arg x = { g, c, NULL };
	pthread_t t;
	pthread_create(&t, NULL, alloc_and_exit, &x);
	pthread_join(t, NULL);
	cr_assert_not_null(x.obj);
	struct slab_memcg_stat st = st_of(g);
	cr_assert_eq(st.stock, 0);
	cr_assert_eq(st.usage, slab_cache_size(c));
	cr_assert_eq(slab_memcg_destroy(g), 0, "the exited thread no longer has it current");
	cr_assert_eq(st_of(slab_memcg_root()).usage, slab_cache_size(c));
	slab_cache_free(c, x.obj);
	cr_assert_eq(st_of(slab_memcg_root()).usage, 0);
}

struct fork_arg {
	struct slab_memcg *g;
	struct slab_cache *c;
	void *obj;
	pthread_barrier_t *ready, *done;
};

static void *alloc_and_wait(void *arg)
{
	struct fork_arg *x = arg;
	slab_memcg_enter(x->g);
	x->obj = slab_cache_alloc(x->c, 0);
	pthread_barrier_wait(x->ready);
	pthread_barrier_wait(x->done);
	slab_cache_free(x->c, x->obj);
	return NULL;
}

Test(memcg_misc, a_fork_child_gets_back_the_other_threads_stocks)
{
	struct slab_cache *c = acct_cache("acct-64", 64);
	size_t stride = slab_cache_size(c);
	struct slab_memcg *g = mk(NULL, "g");
	pthread_barrier_t ready, done;
	pthread_barrier_init(&ready, NULL, 2);
	pthread_barrier_init(&done, NULL, 2);
	struct fork_arg x = { g, c, NULL, &ready, &done };
	pthread_t t;
	pthread_create(&t, NULL, alloc_and_wait, &x);
	pthread_barrier_wait(&ready);
	cr_assert_not_null(x.obj);
	cr_assert_gt(st_of(g).stock, 0, "the thread holds a stock");
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		struct slab_memcg_stat st;
		int bad = slab_memcg_stat(g, &st) != 0 || st.stock != 0 || st.usage != stride ||
			  st.nr_objects != 1;
		/* The thread that had g current does not exist here. */
		bad |= slab_memcg_destroy(g) != 0;
		bad |= slab_memcg_stat(slab_memcg_root(), &st) != 0 || st.usage != stride || st.stock != 0;
		_exit(bad);
	}
	int status = 0;
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child saw wrong figures: %#x", status);
	pthread_barrier_wait(&done);
	pthread_join(t, NULL);
	cr_assert_eq(st_of(g).usage, 0);
	cr_assert_eq(st_of(g).stock, 0);
}

static atomic_bool fk_stop;

static size_t fk_reclaim(struct slab_memcg *g, size_t want, slab_gfp_t gfp, void *arg)
{
	(void)g;
	(void)gfp;
	return pool_reclaim(g, want, 0, arg);
}

static void *fk_worker(void *arg)
{
	struct fork_arg *x = arg;
	slab_memcg_enter(x->g);
	struct pool *p = x->obj;
	while (!atomic_load(&fk_stop)) {
		void *o = slab_cache_alloc(x->c, 0);
		if (o)
			pool_push(p, o);
		if (rand() % 4 == 0)
			slab_free(pool_pop(p));
	}
	slab_memcg_drain_stock();
	return NULL;
}

/* Handlers take memcg's locks under the RCU read side while fork()
 * waits for a grace period: fork must never deadlock against them. */
Test(memcg_misc, fork_while_threads_charge_at_the_limit, .timeout = 120)
{
	struct slab_cache *c = acct_cache("acct-64", 64);
	struct slab_memcg *g = mk(NULL, "g");
	slab_memcg_set_max(g, 32 * 1024);
	struct pool p;
	pool_init(&p, 100000, slab_cache_size(c), true);
	slab_memcg_add_reclaim(g, fk_reclaim, &p);
	struct fork_arg x = { g, c, &p, NULL, NULL };
	pthread_t t[2];
	for (int i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, fk_worker, &x);
	for (int i = 0; i < 40 / SCALE + 4; i++) {
		struct timespec ts = { 0, 5000000 };
		nanosleep(&ts, NULL);
		pid_t pid = fork();
		cr_assert_geq(pid, 0);
		if (pid == 0) {
			/* The pool's lock may be held by a worker that does
			 * not exist here: no reclaim from it in the child. */
			slab_memcg_remove_reclaim(g, fk_reclaim, &p);
			slab_memcg_enter(g);
			void *o[16];
			int ok = 1;
			for (int k = 0; k < 16; k++)
				ok &= (o[k] = slab_cache_alloc(c, SLAB_GFP_NOFAIL)) != NULL;
			for (int k = 0; k < 16; k++)
				slab_cache_free(c, o[k]);
			struct slab_memcg_stat st;
			ok &= slab_memcg_stat(g, &st) == 0;
			ok &= slab_memcg_print(fopen("/dev/null", "w")) == 0;
			_exit(ok ? 0 : 1);
		}
		int status = 0;
		cr_assert_eq(waitpid(pid, &status, 0), pid);
		cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child %d: %#x", i, status);
	}
	atomic_store(&fk_stop, true);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	slab_memcg_remove_reclaim(g, fk_reclaim, &p);
	pool_free_all(&p);
	cr_assert_eq(st_of(g).usage, 0);
	cr_assert_leq(st_of(g).peak, 32 * 1024);
	pool_destroy(&p);
}

/* ------------------------------------------------------------------ */
/* Concurrent stress                                                  */
/* ------------------------------------------------------------------ */

#define S_THREADS 4
#define S_GROUPS  8
#define S_ITERS   (1500000 / SCALE)

static atomic_bool s_failed;
static char s_msg[512];
static pthread_mutex_t s_msg_lock = PTHREAD_MUTEX_INITIALIZER;

__attribute__((format(printf, 1, 2))) static void s_fail(const char *fmt, ...)
{
	pthread_mutex_lock(&s_msg_lock);
	if (!atomic_load(&s_failed)) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(s_msg, sizeof(s_msg), fmt, ap);
		va_end(ap);
		atomic_store(&s_failed, true);
	}
	pthread_mutex_unlock(&s_msg_lock);
}

struct s_group {
	struct slab_memcg *g;
	int parent;            /* index, -1: root */
	struct pool pool;      /* objects charged here, shared by all threads */
	size_t max;
	bool nowait;           /* has a high: allocate with NOWAIT there */
};

static struct s_group sg[S_GROUPS];
static struct slab_cache *s_cache;
static atomic_bool s_stop;
static atomic_ulong s_allocs, s_vetoes, s_samples;

/* Reclaim for a group: free from the pools of its subtree. */
static size_t s_reclaim(struct slab_memcg *g, size_t want, slab_gfp_t gfp, void *arg)
{
	(void)g;
	(void)gfp;
	int gi = (int)(intptr_t)arg;
	size_t got = 0;
	for (int i = 0; i < S_GROUPS && got < want; i++) {
		int a = i;
		while (a >= 0 && a != gi)
			a = sg[a].parent;
		if (a != gi)
			continue;
		void *o;
		while (got < want && (o = pool_pop(&sg[i].pool))) {
			size_t sz = slab_usable_size(o);
			slab_free(o);
			got += sz;
		}
	}
	return got;
}

static uint64_t rng_next(uint64_t *s)
{
	*s += 0x9e3779b97f4a7c15ULL;
	uint64_t z = *s;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void *s_worker(void *arg)
{
	uint64_t rng = 0x1234567ULL * (uint64_t)(intptr_t)arg + 99;
	void *local[64];
	int nlocal = 0;
	for (int it = 0; it < S_ITERS && !atomic_load(&s_failed); it++) {
		uint64_t r = rng_next(&rng);
		if (it % 64 == 0) {
			int gi = (int)(r % S_GROUPS);
			if (!slab_memcg_enter(sg[gi].g))
				s_fail("enter failed");
		}
		struct slab_memcg *cur = slab_memcg_current();
		int gi = 0;
		while (sg[gi].g != cur)
			gi++;
		slab_gfp_t nw = sg[gi].nowait ? SLAB_GFP_NOWAIT : 0;
		switch ((r >> 8) % 8) {
		case 0: case 1: case 2: {  /* cache object */
			void *o = slab_cache_alloc(s_cache, nw);
			atomic_fetch_add(&s_allocs, 1);
			if (!o) {
				if (errno != ENOMEM)
					s_fail("cache alloc errno %d", errno);
				atomic_fetch_add(&s_vetoes, 1);
				break;
			}
			pool_push(&sg[gi].pool, o);
			break;
		}
		case 3: case 4: {         /* kmalloc, mixed sizes, some large */
			size_t sz = (r >> 16) % 100 == 0 ? 70000 + (r >> 24) % 100000 : 8 + (r >> 16) % 2000;
			void *o = slab_malloc(sz, SLAB_GFP_ACCOUNT | nw);
			atomic_fetch_add(&s_allocs, 1);
			if (!o) {
				if (errno != ENOMEM)
					s_fail("malloc errno %d", errno);
				atomic_fetch_add(&s_vetoes, 1);
				break;
			}
			if (nlocal < 64)
				local[nlocal++] = o;
			else
				pool_push(&sg[gi].pool, o);
			break;
		}
		case 5: case 6: {         /* free from any group's pool: cross-thread */
			void *o = pool_pop(&sg[(r >> 16) % S_GROUPS].pool);
			slab_free(o);
			break;
		}
		default:                  /* free thread-local objects */
			while (nlocal > 0 && (rng_next(&rng) & 1))
				slab_free(local[--nlocal]);
			break;
		}
	}
	while (nlocal > 0)
		slab_free(local[--nlocal]);
	slab_memcg_drain_stock();
	return NULL;
}

static void *s_monitor(void *arg)
{
	(void)arg;
	while (!atomic_load(&s_stop)) {
		for (int i = 0; i < S_GROUPS; i++) {
			struct slab_memcg_stat st;
			if (slab_memcg_stat(sg[i].g, &st) != 0) {
				s_fail("stat failed");
				continue;
			}
			if (st.usage > st.max)
				s_fail("group %d: usage %zu > max %zu", i, st.usage, st.max);
			if (st.usage + st.stock > st.max)
				s_fail("group %d: usage %zu + stock %zu > max %zu", i, st.usage, st.stock, st.max);
		}
		atomic_fetch_add(&s_samples, 1);
		struct timespec ts = { 0, 200000 };
		nanosleep(&ts, NULL);
	}
	return NULL;
}

Test(memcg_stress, threads_switch_groups_limits_and_reclaim, .timeout = 240)
{
	/* root -> A, B; A -> A1, A2; B -> B1, B2; A1 -> A1x; B1 -> B1x */
	static const int parent[S_GROUPS] = { -1, -1, 0, 0, 1, 1, 2, 4 };
	static const char *names[S_GROUPS] = { "A", "B", "A1", "A2", "B1", "B2", "A1x", "B1x" };
	uint64_t rng = (uint64_t)time(NULL);
	cr_log_info("memcg stress seed %llu", (unsigned long long)rng);
	s_cache = acct_cache("stress-96", 96);
	for (int i = 0; i < S_GROUPS; i++) {
		sg[i].parent = parent[i];
		sg[i].g = mk(parent[i] < 0 ? NULL : sg[parent[i]].g, names[i]);
		pool_init(&sg[i].pool, 4096, 0, true);
		/* Random limits: a third unlimited, the rest 128 KiB .. 2 MiB. */
		uint64_t r = rng_next(&rng);
		sg[i].max = r % 3 == 0 ? SIZE_MAX : (128u << 10) + (size_t)((r >> 8) % (2u << 20));
		cr_assert_eq(slab_memcg_set_max(sg[i].g, sg[i].max), 0);
		if (i == 5) {   /* B2: a high too, and NOWAIT allocations */
			slab_memcg_set_high(sg[i].g, 96 << 10);
			sg[i].nowait = true;
		}
		if ((r >> 40) % 4 != 0)
			cr_assert_eq(slab_memcg_add_reclaim(sg[i].g, s_reclaim, (void *)(intptr_t)i), 0);
	}
	pthread_t th[S_THREADS], mon;
	pthread_create(&mon, NULL, s_monitor, NULL);
	for (int i = 0; i < S_THREADS; i++)
		pthread_create(&th[i], NULL, s_worker, (void *)(intptr_t)(i + 1));
	for (int i = 0; i < S_THREADS; i++)
		pthread_join(th[i], NULL);
	atomic_store(&s_stop, true);
	pthread_join(mon, NULL);
	cr_assert_not(atomic_load(&s_failed), "%s", s_msg);
	cr_log_info("stress: %lu allocations, %lu vetoes, %lu monitor samples",
		    atomic_load(&s_allocs), atomic_load(&s_vetoes), atomic_load(&s_samples));
	cr_assert_gt(atomic_load(&s_samples), 10);

	for (int i = 0; i < S_GROUPS; i++)
		pool_destroy(&sg[i].pool);
	for (int i = 0; i < S_GROUPS; i++) {
		struct slab_memcg_stat st = st_of(sg[i].g);
		cr_assert_eq(st.usage, 0, "group %s: usage %zu after all frees", names[i], st.usage);
		cr_assert_eq(st.nr_objects, 0, "group %s: %lu objects", names[i], st.nr_objects);
		cr_assert_eq(st.stock, 0, "group %s: stock %zu", names[i], st.stock);
		cr_assert_leq(st.peak, st.max, "group %s: peak %zu > max %zu", names[i], st.peak, st.max);
	}
	struct slab_memcg_stat rs = st_of(slab_memcg_root());
	cr_assert_eq(rs.usage, 0);
	cr_assert_eq(rs.nr_objects, 0);
	cr_assert_eq(rs.stock, 0);
	/* Leaves first, then their parents. */
	for (int i = S_GROUPS - 1; i >= 0; i--)
		cr_assert_eq(slab_memcg_destroy(sg[i].g), 0, "destroy %s", names[i]);
	cr_assert_eq(active_objs(s_cache), 0);
}

/* ------------------------------------------------------------------ */
/* Root only: no owner recorded, stocks without locked instructions    */
/* ------------------------------------------------------------------ */

/*
 * What `slabnotify run --max` sets up: every thread in the root group,
 * an accounted cache. Objects carry no owner (NULL stands for the root),
 * and the stocks are taken by drainers with the asymmetric protocol
 * (membarrier) while their owners charge. Four threads free each other's
 * objects through a shared pool under a max that is hit all the time
 * (each veto drains every stock), while a fifth registers and
 * unregisters a counting notifier: usage must never pass max, and must
 * be exactly 0 at the end, and the counting handler must see every
 * ALLOC it accepted freed exactly once.
 */
#define R_THREADS 4
#define R_ITERS   200000   /* not scaled: the max must be hit under the sanitizers too */

static struct pool r_pool;
static struct slab_cache *r_cache;
static atomic_bool r_stop;
static atomic_long r_balance;  /* the counting handler's ALLOCs - FREEs */
static atomic_ulong r_vetoes, r_max_seen_bad;
static size_t r_max;

static int r_count(struct slab_notifier *nb, enum slab_event ev, const struct slab_event_data *d)
{
	(void)nb;
	if (d->cache != r_cache)
		return SLAB_NOTIFY_DONE;
	if (ev == SLAB_EVENT_ALLOC)
		atomic_fetch_add(&r_balance, 1);
	else if (ev == SLAB_EVENT_FREE)
		atomic_fetch_sub(&r_balance, 1);
	return SLAB_NOTIFY_OK;
}

static void *r_worker(void *arg)
{
	uint64_t rng = 77 + (uint64_t)(intptr_t)arg;
	void *mine[32];
	int n = 0;
	for (int it = 0; it < R_ITERS; it++) {
		uint64_t r = rng_next(&rng);
		if (r % 3 != 0) {
			void *o = slab_cache_alloc(r_cache, 0);
			if (!o) {
				cr_assert_eq(errno, ENOMEM);
				atomic_fetch_add(&r_vetoes, 1);
				/* Make room: free another thread's objects. */
				for (int k = 0; k < 8; k++)
					slab_cache_free(r_cache, pool_pop(&r_pool));
				continue;
			}
			if (n < 32 && (r & 16))
				mine[n++] = o;
			else
				pool_push(&r_pool, o);
		} else {
			slab_cache_free(r_cache, pool_pop(&r_pool));
			if (n > 0)
				slab_cache_free(r_cache, mine[--n]);
		}
	}
	while (n > 0)
		slab_cache_free(r_cache, mine[--n]);
	return NULL;
}

static void *r_registrar(void *arg)
{
	struct slab_notifier *nb = arg;
	while (!atomic_load(&r_stop)) {
		memset(nb, 0, sizeof(*nb));
		nb->call = r_count;
		nb->priority = -5;
		cr_assert_eq(slab_notifier_register(nb), 0);
		struct timespec ts = { 0, 300000 };
		nanosleep(&ts, NULL);
		cr_assert_eq(slab_notifier_unregister(nb), 0);
		/* Unregistered: every object it accepted and that is still
		 * live will not be announced to it. Count those back. */
		cr_assert_geq(atomic_load(&r_balance), 0);
		atomic_store(&r_balance, 0);
	}
	return NULL;
}

static void *r_monitor(void *arg)
{
	(void)arg;
	while (!atomic_load(&r_stop)) {
		struct slab_memcg_stat st = st_of(slab_memcg_root());
		if (st.usage + st.stock > r_max)
			atomic_fetch_add(&r_max_seen_bad, 1);
		struct timespec ts = { 0, 100000 };
		nanosleep(&ts, NULL);
	}
	return NULL;
}

Test(memcg_stress, root_only_lockless_stocks_and_a_racing_notifier, .timeout = 240)
{
	r_cache = acct_cache("root-only-80", 80);
	struct slab_memcg *root = slab_memcg_root();
	struct slab_memcg_stat before = st_of(root);
	cr_assert_eq(before.usage, 0);
	r_max = 96u << 10;    /* a stock batch and a half: vetoes all the time */
	cr_assert_eq(slab_memcg_set_max(root, r_max), 0);
	/* Throttling on, just under max: short sleeps, often. */
	cr_assert_eq(slab_memcg_set_high(root, r_max - (16u << 10)), 0);
	pool_init(&r_pool, 1u << 16, 0, false);
	static struct slab_notifier nb;
	pthread_t th[R_THREADS], reg, mon;
	pthread_create(&reg, NULL, r_registrar, &nb);
	pthread_create(&mon, NULL, r_monitor, NULL);
	for (int i = 0; i < R_THREADS; i++)
		pthread_create(&th[i], NULL, r_worker, (void *)(intptr_t)i);
	for (int i = 0; i < R_THREADS; i++)
		pthread_join(th[i], NULL);
	atomic_store(&r_stop, true);
	pthread_join(reg, NULL);
	pthread_join(mon, NULL);
	void *o;
	while ((o = pool_pop(&r_pool)))
		slab_cache_free(r_cache, o);
	slab_memcg_drain_stock();
	struct slab_memcg_stat st = st_of(root);
	cr_log_info("root only: %lu vetoes, peak %zu, throttled %lu us", atomic_load(&r_vetoes), st.peak,
		    st.throttled_us);
	cr_assert_gt(atomic_load(&r_vetoes), 0, "the max was never hit");
	cr_assert_eq(atomic_load(&r_max_seen_bad), 0, "usage + stock went past max");
	cr_assert_leq(st.peak, r_max);
	cr_assert_eq(st.usage, 0, "usage %zu after every free", st.usage);
	cr_assert_eq(st.nr_objects, 0, "%lu objects", st.nr_objects);
	cr_assert_eq(st.stock, 0);
	cr_assert_eq(active_objs(r_cache), 0);
	slab_memcg_set_max(root, SIZE_MAX);
	slab_memcg_set_high(root, SIZE_MAX);
	pool_destroy(&r_pool);
}
