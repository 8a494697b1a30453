/*
 * test_purge.c - slabs whose owner stopped allocating, freed remotely.
 *
 * A thread that filled slabs and went idle (larson's main thread) used to
 * keep their pages: other threads' frees sat on the slabs' remote stacks
 * and only the owner takes those back. Now the remote free that makes
 * such a slab wholly free gives its pages back (docs/design.md, "Slabs
 * whose owner is idle").
 *
 *  - the regression: main allocates, a worker frees everything; the
 *    objects' pages are no longer resident (mincore), and main then gets
 *    every object back exactly once from the same slabs;
 *  - a double free into a purged slab aborts, remote or by the owner;
 *  - constructor and SLAB_TYPESAFE_BY_RCU caches keep their contents;
 *  - stress: an owner allocating and freeing locally while others free
 *    remotely into the same slabs; owners exiting while others still
 *    free into their slabs; slab_cache_shrink racing with remote frees.
 * Invariants: nothing handed out twice while live (a live-address set
 * and a tag in every object), nothing lost (active_objs back to 0,
 * slab_cache_destroy() returns 0).
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <slabnotify.h>

#include "test_hooks.h"

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#ifdef SLABNOTIFY_SANITIZER
#define SCALE 4
#else
#define SCALE 1
#endif

#define OBJ 512
#define NOBJ 16384 /* 8 MiB of 512-byte objects: 128 slabs of 64 KiB */

/* ------------------------------------------------------------------ */
/* Failures from worker threads                                       */
/* ------------------------------------------------------------------ */

static atomic_bool failed;
static pthread_mutex_t fail_lock = PTHREAD_MUTEX_INITIALIZER;
static char fail_msg[256];

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

/* ------------------------------------------------------------------ */
/* The regression: an idle owner's slabs, freed by another thread     */
/* ------------------------------------------------------------------ */

static void *objs[NOBJ];
static struct slab_cache *cache;

static void *free_all(void *arg)
{
	(void)arg;
	for (int i = 0; i < NOBJ; i++)
		slab_cache_free(cache, objs[i]);
	return NULL;
}

static void run_thread(void *(*fn)(void *))
{
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, fn, NULL), 0);
	pthread_join(t, NULL);
}

/* Resident pages among those holding objs[] (each page counted once). */
static size_t resident_pages(size_t *pages)
{
	long psz = sysconf(_SC_PAGESIZE);
	uintptr_t last = 0;
	size_t res = 0;
	*pages = 0;
	for (int i = 0; i < NOBJ; i++) {
		uintptr_t pg = (uintptr_t)objs[i] & ~(uintptr_t)(psz - 1);
		if (pg == last)
			continue;
		last = pg;
		unsigned char v = 0;
		cr_assert_eq(mincore((void *)pg, (size_t)psz, &v), 0);
		(*pages)++;
		res += v & 1;
	}
	return res;
}

static int cmp_ptr(const void *a, const void *b)
{
	uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
	return x < y ? -1 : x > y;
}

static void fill(void)
{
	for (int i = 0; i < NOBJ; i++) {
		objs[i] = slab_cache_alloc(cache, 0);
		cr_assert_not_null(objs[i]);
		memset(objs[i], 0xab, OBJ);
	}
	qsort(objs, NOBJ, sizeof(objs[0]), cmp_ptr);   /* pages counted once */
}

static unsigned long slabs_of(struct slab_cache *c)
{
	struct slab_cache_info info;
	cr_assert_eq(slab_cache_info(c, &info), 0);
	return info.num_slabs;
}

Test(purge, idle_owner_gets_pages_back_and_reuses_them)
{
	cache = slab_cache_create("purge-512", OBJ, 0, 0, NULL);
	cr_assert_not_null(cache);
	fill();
	unsigned long slabs = slabs_of(cache);
	size_t pages, res = resident_pages(&pages);
	cr_assert_eq(res, pages, "every filled page resident (%zu of %zu)", res, pages);
	run_thread(free_all);
	res = resident_pages(&pages);
	/* All but the owner's current slab (one of 128) is given back. */
	cr_assert_leq(res, pages / 32, "%zu of %zu pages still resident after every object was freed", res,
		      pages);
	struct slab_cache_info info;
	slab_cache_info(cache, &info);
	cr_assert_eq(info.active_objs, 0);

	/* The owner gets every object again, from the same slabs, once. */
	fill();
	cr_assert_leq(slabs_of(cache), slabs, "purged slabs reused, no new ones");
	qsort(objs, NOBJ, sizeof(objs[0]), cmp_ptr);
	for (int i = 1; i < NOBJ; i++)
		cr_assert_neq(objs[i], objs[i - 1], "%p handed out twice", objs[i]);
	for (int i = 0; i < NOBJ; i++)
		slab_cache_free(cache, objs[i]);
	cr_assert_eq(slab_cache_destroy(cache), 0);
}

/* ------------------------------------------------------------------ */
/* Double frees into a purged slab                                    */
/* ------------------------------------------------------------------ */

static void *free_all_then_one_again(void *arg)
{
	free_all(arg);
	slab_cache_free(cache, objs[NOBJ / 2]);
	return NULL;
}

Test(purge, remote_double_free_into_purged_slab_aborts, .signal = SIGABRT)
{
	cache = slab_cache_create("purge-df", OBJ, 0, 0, NULL);
	fill();
	run_thread(free_all_then_one_again);
}

Test(purge, owner_double_free_into_purged_slab_aborts, .signal = SIGABRT)
{
	cache = slab_cache_create("purge-df", OBJ, 0, 0, NULL);
	fill();
	run_thread(free_all);
	slab_cache_free(cache, objs[NOBJ / 2]);
}

/* ------------------------------------------------------------------ */
/* Caches whose free objects keep their contents                      */
/* ------------------------------------------------------------------ */

#define CTOR_MAGIC 0x5ca1ab1e0ddba11ULL

static void ctor(void *p)
{
	memset(p, 0, OBJ);
	*(uint64_t *)p = CTOR_MAGIC;
}

/* Free objects of these caches are read after their free (an RCU
 * reader may; a constructor's state must survive): nothing zeroes them. */
static void check_contents_kept(slab_flags_t flags, void (*c)(void *))
{
	cache = slab_cache_create("purge-keep", OBJ, 0, flags, c);
	cr_assert_not_null(cache);
	for (int i = 0; i < NOBJ; i++) {
		objs[i] = slab_cache_alloc(cache, 0);
		cr_assert_not_null(objs[i]);
		*(uint64_t *)objs[i] = CTOR_MAGIC;   /* constructed state, for the RCU cache too */
	}
	run_thread(free_all);
	for (int i = 0; i < NOBJ; i++)
		cr_assert_eq(__atomic_load_n((uint64_t *)objs[i], __ATOMIC_RELAXED), CTOR_MAGIC,
			     "free object %d lost its contents", i);
	cr_assert_eq(slab_cache_destroy(cache), 0);
}

Test(purge, ctor_cache_keeps_constructed_objects)
{
	check_contents_kept(0, ctor);
}

Test(purge, rcu_cache_keeps_free_objects)
{
	check_contents_kept(SLAB_TYPESAFE_BY_RCU, NULL);
}

/* ------------------------------------------------------------------ */
/* Stress: a live set and a queue of objects to free remotely         */
/* ------------------------------------------------------------------ */

#define SHARDS 32
#define SHARD_SLOTS 16384

static struct shard {
	pthread_mutex_t lock;
	uintptr_t slot[SHARD_SLOTS];
} live[SHARDS];

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	return x;
}

/* Insert (@add) or remove @p; false when it already is / is not live. */
static bool live_op(const void *p, bool add)
{
	uint64_t h = mix((uintptr_t)p);
	struct shard *s = &live[h % SHARDS];
	size_t i = (h / SHARDS) % SHARD_SLOTS;
	bool ok;
	pthread_mutex_lock(&s->lock);
	while (s->slot[i] && s->slot[i] != (uintptr_t)p)
		i = (i + 1) % SHARD_SLOTS;
	ok = add ? !s->slot[i] : s->slot[i] != 0;
	if (ok && add) {
		s->slot[i] = (uintptr_t)p;
	} else if (ok) {     /* backward-shift deletion: no tombstones */
		size_t hole = i;
		for (size_t j = (i + 1) % SHARD_SLOTS; s->slot[j]; j = (j + 1) % SHARD_SLOTS) {
			size_t home = (mix(s->slot[j]) / SHARDS) % SHARD_SLOTS;
			bool stays = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
			if (!stays) {
				s->slot[hole] = s->slot[j];
				hole = j;
			}
		}
		s->slot[hole] = 0;
	}
	pthread_mutex_unlock(&s->lock);
	return ok;
}

/* A bounded queue of objects for the freers (mutex and condvars). */
#define QCAP 4096
static struct {
	pthread_mutex_t lock;
	pthread_cond_t nonempty, nonfull;
	void *item[QCAP];
	unsigned head, len, producers;
} q = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER, { 0 }, 0, 0, 0 };

static void q_put(void *p)
{
	pthread_mutex_lock(&q.lock);
	while (q.len == QCAP)
		pthread_cond_wait(&q.nonfull, &q.lock);
	q.item[(q.head + q.len++) % QCAP] = p;
	pthread_cond_signal(&q.nonempty);
	pthread_mutex_unlock(&q.lock);
}

/* NULL once the queue is empty and every producer is done. */
static void *q_get(void)
{
	pthread_mutex_lock(&q.lock);
	while (q.len == 0 && q.producers)
		pthread_cond_wait(&q.nonempty, &q.lock);
	void *p = NULL;
	if (q.len) {
		p = q.item[q.head];
		q.head = (q.head + 1) % QCAP;
		q.len--;
		pthread_cond_signal(&q.nonfull);
	}
	pthread_mutex_unlock(&q.lock);
	return p;
}

static void producers_add(int n)
{
	pthread_mutex_lock(&q.lock);
	q.producers += (unsigned)n;
	if (!q.producers)
		pthread_cond_broadcast(&q.nonempty);
	pthread_mutex_unlock(&q.lock);
}

static atomic_ulong serial;

/* An object: its tag at both ends, checked before it is freed. */
static void *obj_new(struct slab_cache *c)
{
	uint64_t *p = slab_cache_alloc(c, 0);
	if (!p) {
		fail("allocation failed");
		return NULL;
	}
	if (!live_op(p, true))
		fail("%p handed out twice", (void *)p);
	uint64_t tag = atomic_fetch_add(&serial, 1) | 1;
	p[0] = tag;
	p[OBJ / 8 - 1] = ~tag;
	return p;
}

static void obj_free(struct slab_cache *c, uint64_t *p)
{
	if (p[0] != ~p[OBJ / 8 - 1] || !(p[0] & 1))
		fail("%p overwritten while live", (void *)p);
	if (!live_op(p, false))
		fail("%p freed but not live", (void *)p);
	slab_cache_free(c, p);
}

static void *freer(void *arg)
{
	struct slab_cache *c = arg;
	void *p;
	while ((p = q_get()))
		obj_free(c, p);
	return NULL;
}

struct owner_args {
	struct slab_cache *c;
	int rounds;
	bool shrink;    /* call slab_cache_shrink now and then */
};

/* Purges seen; each zap waits a little now and then, under the cache
 * lock, so that owners meet zaps in progress. */
static atomic_long zaps;

static void on_zap(void *base)
{
	(void)base;
	if (atomic_fetch_add(&zaps, 1) % 8 == 0)
		sched_yield();
}

/* Idle until the freers have caught up: the owner's full slabs empty
 * while it does not allocate, and are purged. */
static void wait_drained(void)
{
	for (int i = 0; i < 20000; i++) {
		pthread_mutex_lock(&q.lock);
		unsigned len = q.len;
		pthread_mutex_unlock(&q.lock);
		if (!len)
			break;
		sched_yield();
	}
	usleep(200);    /* the frees of the last objects taken */
}

/* Fill whole slabs, hand most objects to the freers, free the rest
 * locally: most at once (into the current slab), one in 1024 held for a
 * while (its later free takes a full slab back to the partial list: such
 * a slab is not purged); every other round stop allocating until the
 * freers caught up. */
static void *owner(void *arg)
{
	struct owner_args *a = arg;
	enum { BATCH = 384, HOLD = 64 };
	void *held[HOLD] = { 0 };
	uint64_t rng = (uintptr_t)&held | 1;
	for (int r = 0; r < a->rounds && !atomic_load(&failed); r++) {
		if (r % 2)
			wait_drained();
		for (int i = 0; i < BATCH; i++) {
			void *p = obj_new(a->c);
			if (!p)
				break;
			rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
			unsigned pick = (unsigned)(rng >> 54);   /* 0..1023 */
			if (pick < 832) {
				q_put(p);
			} else if (pick < 1023) {
				obj_free(a->c, p);
			} else {
				unsigned k = (unsigned)(rng >> 32) % HOLD;
				if (held[k])
					obj_free(a->c, held[k]);
				held[k] = p;
			}
		}
		if (a->shrink && r % 8 == 0)
			slab_cache_shrink(a->c);
	}
	for (int k = 0; k < HOLD; k++)
		if (held[k])
			q_put(held[k]);
	producers_add(-1);
	return NULL;
}

static void stress_setup(void)
{
	atomic_store(&failed, false);
	sn_test_hook_slab_zapped = on_zap;
	for (int i = 0; i < SHARDS; i++)
		pthread_mutex_init(&live[i].lock, NULL);
}

static void finish(struct slab_cache *c)
{
	cr_assert(!atomic_load(&failed), "%s", fail_msg);
	cr_assert_gt(atomic_load(&zaps), 0, "no slab was purged: the test tests nothing");
	cr_log_info("%ld slabs purged", atomic_load(&zaps));
	struct slab_cache_info info;
	slab_cache_info(c, &info);
	cr_assert_eq(info.active_objs, 0, "%lu objects lost", info.active_objs);
	cr_assert_eq(slab_cache_destroy(c), 0);
}

#define NFREERS 3

static void run_owners_and_freers(struct slab_cache *c, int owners, int rounds, bool shrink,
				  void *(*extra)(void *))
{
	pthread_t o[8], f[NFREERS], x;
	struct owner_args a = { c, rounds, shrink };
	producers_add(owners);
	for (int i = 0; i < NFREERS; i++)
		cr_assert_eq(pthread_create(&f[i], NULL, freer, c), 0);
	if (extra)
		cr_assert_eq(pthread_create(&x, NULL, extra, c), 0);
	for (int i = 0; i < owners; i++)
		cr_assert_eq(pthread_create(&o[i], NULL, owner, &a), 0);
	for (int i = 0; i < owners; i++)
		pthread_join(o[i], NULL);
	for (int i = 0; i < NFREERS; i++)
		pthread_join(f[i], NULL);
	if (extra)
		pthread_join(x, NULL);
}

Test(purge_stress, owner_allocates_and_frees_while_others_free_remotely, .init = stress_setup)
{
	struct slab_cache *c = slab_cache_create("purge-owner", OBJ, 0, 0, NULL);
	run_owners_and_freers(c, 2, 2400 / SCALE, false, NULL);
	finish(c);
}

/* Generations of owners that exit while the freers still free into
 * their slabs (which the exit gave up to the cache), some of them
 * purged (owners idle every other round), some purged while the exit
 * gives them up. */
Test(purge_stress, owners_exit_while_others_free, .init = stress_setup)
{
	struct slab_cache *c = slab_cache_create("purge-exit", OBJ, 0, 0, NULL);
	for (int g = 0; g < 60 / SCALE; g++)
		run_owners_and_freers(c, 2, 4 + g % 8, false, NULL);
	finish(c);
}

static atomic_bool shrinking_done;

static void *shrinker(void *arg)
{
	while (!atomic_load(&shrinking_done)) {
		slab_cache_shrink(arg);
		sched_yield();
	}
	return NULL;
}

Test(purge_stress, shrink_races_remote_frees, .init = stress_setup)
{
	struct slab_cache *c = slab_cache_create("purge-shrink", OBJ, 0, 0, NULL);
	pthread_t s;
	atomic_store(&shrinking_done, false);
	cr_assert_eq(pthread_create(&s, NULL, shrinker, c), 0);
	run_owners_and_freers(c, 2, 1200 / SCALE, true, NULL);
	atomic_store(&shrinking_done, true);
	pthread_join(s, NULL);
	finish(c);
}

/* The drop-in's caches: the same through slab_malloc (kmalloc-512). */
static void *free_all_kmalloc(void *arg)
{
	(void)arg;
	for (int i = 0; i < NOBJ; i++)
		slab_free(objs[i]);
	return NULL;
}

Test(purge, kmalloc_class_pages_given_back)
{
	for (int i = 0; i < NOBJ; i++) {
		objs[i] = slab_malloc(OBJ, 0);
		cr_assert_not_null(objs[i]);
		memset(objs[i], 0xcd, OBJ);
	}
	qsort(objs, NOBJ, sizeof(objs[0]), cmp_ptr);   /* pages counted once */
	run_thread(free_all_kmalloc);
	size_t pages, res = resident_pages(&pages);
	cr_assert_leq(res, pages / 32, "%zu of %zu pages still resident", res, pages);
}

/* ------------------------------------------------------------------ */
/* The page pool's dirty slabs: held while memory has not grown since  */
/* ------------------------------------------------------------------ */

/* One slab allocation (the page pool sweeps its dirty slabs on it) from
 * a new cache of @size; returns the cache, its object in *@obj. */
static struct slab_cache *slab_event(const char *name, size_t size, void **obj)
{
	struct slab_cache *c = slab_cache_create(name, size, 0, 0, NULL);
	cr_assert_not_null(c);
	*obj = slab_cache_alloc(c, 0);
	cr_assert_not_null(*obj);
	return c;
}

static size_t slab_bytes_of(struct slab_cache *c)
{
	struct slab_cache_info info;
	cr_assert_eq(slab_cache_info(c, &info), 0);
	return info.slab_bytes;
}

/* 8 MiB of slabs filled, freed, their cache destroyed: all of them dirty
 * in the page pool, still resident. */
static void dirty_8m(void)
{
	cache = slab_cache_create("pool-512", OBJ, 0, 0, NULL);
	cr_assert_not_null(cache);
	fill();
	for (int i = 0; i < NOBJ; i++)
		slab_cache_free(cache, objs[i]);
	cr_assert_eq(slab_cache_destroy(cache), 0);
	size_t pages, res = resident_pages(&pages);
	cr_assert_geq(res, pages * 9 / 10, "freshly freed slabs stay dirty (%zu of %zu resident)", res, pages);
}

Test(pool, dirty_slabs_held_while_memory_has_not_grown)
{
	dirty_8m();
	usleep(40 * 1000);            /* past the 10 ms delay */
	void *o;
	struct slab_cache *b = slab_event("pool-512-b", OBJ, &o);   /* reuses one of them */
	size_t pages, res = resident_pages(&pages);
	cr_assert_geq(res, pages * 8 / 10, "nothing grew since they were freed: kept (%zu of %zu resident)",
		      res, pages);
	slab_cache_free(b, o);
	cr_assert_eq(slab_cache_destroy(b), 0);
}

Test(pool, dirty_slabs_purged_once_memory_grows_fresh)
{
	dirty_8m();
	void *o1, *o2;
	/* A slab of another order: pages never backed, in a pool of its own. */
	struct slab_cache *big = slab_event("pool-40000", 40000, &o1);
	cr_assert_neq(slab_bytes_of(big), (size_t)64 << 10, "a slab order of its own");
	usleep(40 * 1000);
	struct slab_cache *b = slab_event("pool-512-b", OBJ, &o2);  /* the sweep */
	size_t pages, res = resident_pages(&pages);
	cr_assert_leq(res, pages / 10, "memory grew after they were freed: purged (%zu of %zu resident)", res,
		      pages);
	slab_cache_free(big, o1);
	slab_cache_free(b, o2);
	cr_assert_eq(slab_cache_destroy(big), 0);
	cr_assert_eq(slab_cache_destroy(b), 0);
}

Test(pool, dirty_slabs_purged_after_the_hold)
{
	dirty_8m();
	usleep(300 * 1000);           /* past the 250 ms hold */
	void *o;
	struct slab_cache *b = slab_event("pool-512-b", OBJ, &o);
	size_t pages, res = resident_pages(&pages);
	cr_assert_leq(res, pages / 10, "held no longer than 250 ms (%zu of %zu resident)", res, pages);
	slab_cache_free(b, o);
	cr_assert_eq(slab_cache_destroy(b), 0);
}

/* ------------------------------------------------------------------ */
/* The owner's scan of its full list racing with the purging free      */
/* ------------------------------------------------------------------ */

/*
 * The owner's scan_full() checks ST_PURGED, then take_remote() loads the
 * state (stack non-empty), then CASes it to OWNED. If the last remote
 * free purges the slab between that load and that CAS, the CAS fails,
 * reloads PURGED|FULL (head 0, count 0) and then succeeds, clearing
 * PURGED: the slab stays on the owner's full list, every object free but
 * its inuse still the object count; nothing ever frees into it again, so
 * its objects count as live for ever (slab_cache_destroy: EBUSY).
 * Each round: the owner fills slab A (retired FULL) and slab B (current,
 * dry); a freer frees all but one of A's objects (the owner idle, so the
 * purge's test passes); then the owner's next allocation (retire B, scan
 * A) races with the freer's free of A's last object.
 */
static struct {
	struct slab_cache *c;
	void *a[512];
	unsigned n;
	atomic_uint phase;      /* 1: free a[0..n-2]; 2: free a[n-1] after go */
	atomic_uint done;
	atomic_bool go;
	atomic_bool quit;
	unsigned delay;
} sr;

static void spin(unsigned n)
{
	for (volatile unsigned i = 0; i < n; i++)
		;
}

static void *scan_race_freer(void *arg)
{
	(void)arg;
	unsigned seen = 0;
	for (;;) {
		unsigned ph;
		while ((ph = atomic_load(&sr.phase)) == seen)
			if (atomic_load(&sr.quit))
				return NULL;
		seen = ph;
		if (ph % 2) {
			for (unsigned i = 0; i + 1 < sr.n; i++)
				slab_cache_free(sr.c, sr.a[i]);
		} else {
			while (!atomic_load(&sr.go))
				;
			spin(sr.delay);
			slab_cache_free(sr.c, sr.a[sr.n - 1]);
		}
		atomic_store(&sr.done, ph);
	}
}

Test(purge, owner_scan_racing_with_the_purge_loses_no_slab, .timeout = 120)
{
	struct slab_cache *c = slab_cache_create("purge-scan-race", 2048, 0, 0, NULL);
	cr_assert_not_null(c);
	struct slab_cache_info info;
	slab_cache_info(c, &info);
	unsigned per = info.objs_per_slab;
	uintptr_t mask = ~(uintptr_t)(info.slab_bytes - 1);
	cr_assert(per >= 2 && per <= 512, "%u objects per slab", per);
	sr.c = c;
	sn_test_hook_slab_zapped = on_zap;
	pthread_t f;
	cr_assert_eq(pthread_create(&f, NULL, scan_race_freer, NULL), 0);
	uint64_t rng = 88172645463325252ULL;
	void *mine[1024];
	unsigned ph = 0;
	long rounds = 0, bad = 0;
	time_t end = time(NULL) + 20 / SCALE;
	while (time(NULL) < end && !bad) {
		for (int k = 0; k < 256; k++, rounds++) {
			/* Two whole slabs: A (retired FULL), B (current, dry). The
			 * last round left A current with every object free and B
			 * idle on the partial list (or, after a shrink, none). */
			for (unsigned m = 0; m < 2 * per; m++)
				cr_assert_not_null(mine[m] = slab_cache_alloc(c, 0));
			uintptr_t a = (uintptr_t)mine[0] & mask;
			cr_assert_eq((uintptr_t)mine[per - 1] & mask, a);
			cr_assert_neq((uintptr_t)mine[per] & mask, a);
			cr_assert_eq((uintptr_t)mine[2 * per - 1] & mask, (uintptr_t)mine[per] & mask);
			sr.n = per;
			memcpy(sr.a, mine, per * sizeof(void *));
			atomic_store(&sr.go, false);
			atomic_store(&sr.phase, ++ph);
			while (atomic_load(&sr.done) != ph)
				sched_yield();
			rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
			sr.delay = (unsigned)(rng & 255);
			unsigned mydelay = (unsigned)((rng >> 20) & 255);
			atomic_store(&sr.phase, ++ph);
			atomic_store(&sr.go, true);
			spin(mydelay);
			void *x = slab_cache_alloc(c, 0);   /* retire B, scan A */
			cr_assert_not_null(x);
			while (atomic_load(&sr.done) != ph)
				sched_yield();
			slab_cache_free(c, x);
			for (unsigned i = per; i < 2 * per; i++)
				slab_cache_free(c, mine[i]);
		}
		/* Every object is free: after the caller's slabs are given up,
		 * no slab may stay (the freer never allocates). */
		slab_cache_shrink(c);
		slab_cache_info(c, &info);
		if (info.num_slabs)
			bad = (long)info.num_slabs;
	}
	atomic_store(&sr.quit, true);
	pthread_join(f, NULL);
	cr_log_info("%ld rounds, %ld purges", rounds, atomic_load(&zaps));
	cr_assert_eq(bad, 0, "after %ld rounds: %ld slabs left with every object free (a purged slab lost: "
		     "its objects count as in use for ever)", rounds, bad);
	cr_assert_eq(slab_cache_destroy(c), 0);
}
