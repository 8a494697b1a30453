/*
 * profile.c - the heap profile's accounting (profile.h): one notifier at
 * the lowest priority (it runs after every handler that may veto, so
 * what it records was accepted), counters per stack id and in all.
 *
 * In all, exact in every mode: allocations, frees, requested bytes
 * allocated, live bytes and blocks, and the peak of the live bytes (a
 * compare-and-swap on each new high, so that one big block freed before
 * exit is the peak). Per stack: live bytes, blocks and footprint; with
 * --profile also the allocations, the bytes allocated, the temporary
 * allocations (freed before any other allocation by the same thread,
 * heaptrack's definition) and the live bytes and blocks at the moment of
 * the peak.
 *
 * The peak's owners without a copy at every new peak: each new peak
 * starts an epoch; a stack about to change while its figures are from an
 * older epoch first saves them as "at the peak" (they have not changed
 * since the peak). At the end, a stack saved in the last epoch shows its
 * saved figures, any other its live ones. With every allocation recorded
 * the global figures and the stacks change under one lock, so this is
 * exact; with sampling it is an estimate like the rest.
 *
 * Sampling (--profile=BYTES), as tcmalloc's heap profiler does it: each
 * thread counts down an exponentially distributed number of bytes (mean
 * BYTES); the allocation that takes the count to zero is sampled, and
 * weighs 1/p blocks and size/p bytes, where p = 1 - exp(-size/BYTES) is
 * its chance to be sampled: the totals are unbiased. --leaks=N keeps its
 * 1 in N allocations (a per-thread countdown), unweighted.
 *
 * The object's extension slot keeps a word: the stack id (0: not
 * sampled), the difference between the object's size and the request
 * (the FREE event carries only the size) and a bit saying the object was
 * allocated while we recorded (older objects are not ours to subtract).
 *
 * The timeline: every 64 allocations a thread looks at the coarse clock;
 * at most every `interval` a point (time, live bytes, RSS from
 * /proc/self/statm) is added; when the points are full, every other one
 * is dropped and the interval doubles.
 */
#define _GNU_SOURCE
#include "profile.h"
#include "profile_state.h"
#include "sample_math.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PROF_TLS __attribute__((tls_model("initial-exec")))
/* The per-event helpers, inlined into the gate's paths and the handler:
 * an unsampled pair is a few dozen instructions, calls would be a third. */
#define PROF_INLINE static inline __attribute__((always_inline))
#define WORD_OURS (1ULL << 63)
#define TICK_EVERY 64
#define FIRST_INTERVAL_NS 1000000ULL    /* 1 ms */
#define TC_CHUNK (64u << 10)            /* per-thread count blocks, mapped this many bytes at a time */

struct prof_state sn_prof;

static int prof_slot = -1;
static bool started;

static __thread void *tl_last PROF_TLS;          /* this thread's last allocation */
static __thread int64_t tl_bytes_left PROF_TLS;  /* to the next sample */
static __thread uint64_t tl_rng PROF_TLS;
static __thread unsigned tl_count PROF_TLS;      /* --leaks=N countdown, timeline ticks */
static __thread unsigned tl_ticks PROF_TLS;
static __thread bool tl_forking PROF_TLS;

uint64_t sn_prof_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	uint64_t t = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
	return t > sn_prof.t0 ? t - sn_prof.t0 : 0;
}

/* ------------------------------------------------------------------ */
/* The timeline                                                       */
/* ------------------------------------------------------------------ */

static uint64_t rss_now(void)
{
	char buf[64];
	int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	char *p = strchr(buf, ' ');
	return p ? strtoull(p + 1, NULL, 10) * (uint64_t)sysconf(_SC_PAGESIZE) : 0;
}

static void timeline_add(uint64_t now)
{
	struct prof_state *s = &sn_prof;
	if (s->npoints == SN_PROF_POINTS) {
		for (size_t i = 0; i < SN_PROF_POINTS / 2; i++)
			s->points[i] = s->points[2 * i + 1];
		s->npoints = SN_PROF_POINTS / 2;
		__atomic_store_n(&s->interval_ns, s->interval_ns * 2, __ATOMIC_RELAXED);
	}
	s->points[s->npoints++] = (struct sn_prof_point){
		now, atomic_load_explicit(&s->live, memory_order_relaxed), rss_now()
	};
	__atomic_store_n(&s->last_point_ns, now, __ATOMIC_RELAXED);
}

/* Is a point due? Read without the lock first (relaxed: a stale answer
 * costs a trylock or one tick's delay), then again under it. */
static bool point_due(uint64_t now)
{
	return now - __atomic_load_n(&sn_prof.last_point_ns, __ATOMIC_RELAXED) >=
	       __atomic_load_n(&sn_prof.interval_ns, __ATOMIC_RELAXED);
}

static void timeline_tick(void)
{
	if (++tl_ticks % TICK_EVERY)
		return;
	uint64_t now = sn_prof_now();
	if (!point_due(now) || pthread_mutex_trylock(&sn_prof.timeline_lock) != 0)
		return;
	if (point_due(now))
		timeline_add(now);
	pthread_mutex_unlock(&sn_prof.timeline_lock);
}

/* ------------------------------------------------------------------ */
/* In all                                                             */
/* ------------------------------------------------------------------ */

static __thread struct prof_tcount *tl_tc PROF_TLS;
static struct prof_tcount tc_spare = { .shared = true };
static struct prof_tcount *tc_pool;      /* under tcount_lock */
static size_t tc_pool_left;

/* A block for the calling thread, on its first event. */
static __attribute__((noinline)) struct prof_tcount *tcount_new(void)
{
	pthread_mutex_lock(&sn_prof.tcount_lock);
	if (!tc_pool_left) {
		void *mem = mmap(NULL, TC_CHUNK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (mem != MAP_FAILED) {
			tc_pool = mem;
			tc_pool_left = TC_CHUNK / sizeof(*tc_pool);
		}
	}
	struct prof_tcount *t = &tc_spare;
	if (tc_pool_left) {
		t = tc_pool++;
		tc_pool_left--;
		t->next = atomic_load_explicit(&sn_prof.tcounts, memory_order_relaxed);
		atomic_store_explicit(&sn_prof.tcounts, t, memory_order_release);
	}
	pthread_mutex_unlock(&sn_prof.tcount_lock);
	(void)sn_thread_ordinal();    /* a thread the drop-in did not number counts now */
	tl_tc = t;
	return t;
}

PROF_INLINE struct prof_tcount *tcount(void)
{
	struct prof_tcount *t = tl_tc;
	return __builtin_expect(t != NULL, 1) ? t : tcount_new();
}

/* Add to a count of the calling thread's: its own word, so no
 * read-modify-write (the spare's is shared: atomic). */
static inline void tc_add(bool shared, uint64_t *count, uint64_t v)
{
	if (__builtin_expect(shared, 0))
		atomic_fetch_add_explicit((_Atomic uint64_t *)count, v, memory_order_relaxed);
	else
		__atomic_store_n(count, *count + v, __ATOMIC_RELAXED);
}

void sn_prof_counts(struct prof_tcount *sum)
{
	memset(sum, 0, sizeof(*sum));
	struct prof_tcount *t = atomic_load_explicit(&sn_prof.tcounts, memory_order_acquire);
	for (int spare = 0; spare < 2; spare++, t = &tc_spare)
		for (; t; t = spare ? NULL : t->next) {
			sum->allocations += __atomic_load_n(&t->allocations, __ATOMIC_RELAXED);
			sum->frees += __atomic_load_n(&t->frees, __ATOMIC_RELAXED);
			sum->bytes_allocated += __atomic_load_n(&t->bytes_allocated, __ATOMIC_RELAXED);
			sum->temporary += __atomic_load_n(&t->temporary, __ATOMIC_RELAXED);
		}
}

static void peak_new(void)
{
	atomic_store_explicit(&sn_prof.peak_ns, sn_prof_now(), memory_order_relaxed);
	atomic_fetch_add_explicit(&sn_prof.epoch, 1, memory_order_relaxed);
}

/*
 * The live bytes, exact across threads, and their peak. While the
 * program has one thread (sn_thread_alone(): known before a second one
 * exists) nobody else writes them: plain adds (relaxed load and store).
 * Then one atomic add per event, and a compare-and-swap on a new high.
 * Returns true if this made a new peak.
 */
PROF_INLINE bool live_add(uint64_t req)
{
	struct prof_state *s = &sn_prof;
	uint64_t now, peak = atomic_load_explicit(&s->peak, memory_order_relaxed);
	if (sn_thread_alone()) {
		now = atomic_load_explicit(&s->live, memory_order_relaxed) + req;
		atomic_store_explicit(&s->live, now, memory_order_relaxed);
		if (now <= peak)
			return false;
		atomic_store_explicit(&s->peak, now, memory_order_relaxed);
		peak_new();
		return true;
	}
	now = atomic_fetch_add_explicit(&s->live, req, memory_order_relaxed) + req;
	while (now > peak)
		if (atomic_compare_exchange_weak_explicit(&s->peak, &peak, now, memory_order_relaxed,
							  memory_order_relaxed)) {
			peak_new();
			return true;
		}
	return false;
}

PROF_INLINE void live_sub(uint64_t req)
{
	struct prof_state *s = &sn_prof;
	if (sn_thread_alone())
		atomic_store_explicit(&s->live, atomic_load_explicit(&s->live, memory_order_relaxed) - req,
				      memory_order_relaxed);
	else
		atomic_fetch_sub_explicit(&s->live, req, memory_order_relaxed);
}

/* Every allocation recorded, sampled or not. True on a new peak. */
PROF_INLINE bool global_alloc(uint64_t req)
{
	struct prof_tcount *t = tcount();
	bool shared = t->shared;
	tc_add(shared, &t->allocations, 1);
	tc_add(shared, &t->bytes_allocated, req);
	return live_add(req);
}

PROF_INLINE void global_free(uint64_t req, bool temporary)
{
	struct prof_tcount *t = tcount();
	bool shared = t->shared;
	tc_add(shared, &t->frees, 1);
	if (temporary)
		tc_add(shared, &t->temporary, 1);
	live_sub(req);
}

/* ------------------------------------------------------------------ */
/* Per stack                                                          */
/* ------------------------------------------------------------------ */

/* Save the figures "at the peak" before the first change since it. */
static void stack_snap(struct prof_stack *p)
{
	uint32_t e = atomic_load_explicit(&sn_prof.epoch, memory_order_relaxed);
	if (p->epoch != e) {
		p->peak_bytes = atomic_load_explicit(&p->live_bytes, memory_order_relaxed);
		p->peak_blocks = atomic_load_explicit(&p->live_blocks, memory_order_relaxed);
		p->epoch = e;
	}
}

static void stack_add(struct prof_stack *p, uint64_t bytes, uint64_t blocks, uint64_t foot)
{
	atomic_fetch_add_explicit(&p->live_bytes, bytes, memory_order_relaxed);
	atomic_fetch_add_explicit(&p->live_blocks, blocks, memory_order_relaxed);
	atomic_fetch_add_explicit(&p->live_foot, foot, memory_order_relaxed);
}

static void stack_sub(struct prof_stack *p, uint64_t bytes, uint64_t blocks, uint64_t foot)
{
	atomic_fetch_sub_explicit(&p->live_bytes, bytes, memory_order_relaxed);
	atomic_fetch_sub_explicit(&p->live_blocks, blocks, memory_order_relaxed);
	atomic_fetch_sub_explicit(&p->live_foot, foot, memory_order_relaxed);
}

/* The weights of a sampled allocation of @req bytes: bytes and blocks
 * it stands for. Exact (1, req) when every allocation is recorded. */
static void weights(uint64_t req, uint64_t *bytes, uint64_t *blocks)
{
	size_t mean = sn_prof.cfg.sample_bytes;
	if (sn_prof.cfg.mode != SN_PROF_FULL || !mean) {
		*bytes = req;
		*blocks = 1;
		return;
	}
	double p = sample_one_minus_exp_neg((double)(req ? req : 1) / (double)mean);
	*bytes = (uint64_t)((double)req / p + 0.5);
	*blocks = (uint64_t)(1.0 / p + 0.5);
}

/* ------------------------------------------------------------------ */
/* Sampling                                                           */
/* ------------------------------------------------------------------ */

static uint64_t rng_next(void)
{
	/* Seeded by the thread's ordinal: a run samples as the last did. */
	if (!tl_rng)
		tl_rng = ((uint64_t)sn_thread_ordinal() + 1) * 0x9e3779b97f4a7c15ULL ^ sn_prof.seed;
	uint64_t x = tl_rng;   /* xorshift64* */
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	tl_rng = x;
	return x * 0x2545f4914f6cdd1dULL;
}

static int64_t next_sample_gap(void)
{
	double u = ((double)(rng_next() >> 11) + 0.5) / 9007199254740992.0;   /* (0, 1) */
	double gap = -sample_ln(u) * (double)sn_prof.cfg.sample_bytes;
	return gap < 1 ? 1 : gap > 9e18 ? INT64_MAX : (int64_t)gap;
}

/* Is this allocation recorded by stack? */
PROF_INLINE bool sample_this(uint64_t req)
{
	const struct sn_prof_config *c = &sn_prof.cfg;
	if (c->mode == SN_PROF_LEAKS) {
		if (c->every <= 1)
			return true;
		if (tl_count == 0 || tl_count > c->every)
			tl_count = c->every;
		if (--tl_count)
			return false;
		tl_count = c->every;
		return true;
	}
	if (!c->sample_bytes)
		return true;
	if (tl_bytes_left == 0)
		tl_bytes_left = next_sample_gap();
	tl_bytes_left -= (int64_t)req;
	if (tl_bytes_left > 0)
		return false;
	tl_bytes_left = next_sample_gap();
	return true;
}

/* ------------------------------------------------------------------ */
/* The handler                                                        */
/* ------------------------------------------------------------------ */

PROF_INLINE void *slot_word(sn_stack_id id, const struct slab_event_data *d)
{
	uint64_t slack = d->size >= d->requested ? d->size - d->requested : 0;
	if (slack >= (1ULL << 31))
		slack = 0;
	return (void *)(uintptr_t)(WORD_OURS | (slack << 32) | id);
}

/* Every allocation recorded, under one lock (--profile without =BYTES). */
PROF_INLINE bool full_locked(void)
{
	return sn_prof.locked_all;
}

/* What every recorded allocation does, with a stack or not: the exact
 * figures, and the word its free reads. True on a new peak. */
PROF_INLINE bool record_alloc(const struct slab_event_data *d, void **slot, sn_stack_id id)
{
	*slot = slot_word(id, d);
	tl_last = d->ptr;
	return global_alloc(d->requested);
}

/* An allocation with a stack, or any under the full lock. */
static void stack_alloc(const struct slab_event_data *d, void **slot, sn_stack_id id)
{
	uint64_t req = d->requested;
	bool full = sn_prof.cfg.mode == SN_PROF_FULL, locked = full_locked() || full;
	if (locked)
		pthread_mutex_lock(&sn_prof.lock);
	struct prof_stack *p = id ? &sn_prof.stacks[id] : NULL;
	if (p) {
		uint64_t wb, wn;
		weights(req, &wb, &wn);
		if (full) {    /* under the lock; --leaks keeps the live figures only */
			stack_snap(p);   /* before the change */
			p->calls += wn;
			p->alloc_bytes += wb;
		}
		stack_add(p, wb, wn, d->size);
	}
	if (record_alloc(d, slot, id) && p && full_locked()) {
		p->peak_bytes = atomic_load_explicit(&p->live_bytes, memory_order_relaxed);
		p->peak_blocks = atomic_load_explicit(&p->live_blocks, memory_order_relaxed);
		p->epoch = atomic_load_explicit(&sn_prof.epoch, memory_order_relaxed);
	}
	if (locked)
		pthread_mutex_unlock(&sn_prof.lock);
}

PROF_INLINE void on_alloc(const struct slab_event_data *d, void **slot, bool sampled)
{
	sn_stack_id id = sampled ? sn_stack_capture() : 0;
	if (id || full_locked())
		stack_alloc(d, slot, id);
	else
		record_alloc(d, slot, 0);
	if (sn_prof.cfg.mode == SN_PROF_FULL)
		timeline_tick();
}

/* The free of an allocation with a stack, or any under the full lock. */
static void stack_free(const struct slab_event_data *d, sn_stack_id id, uint64_t req, bool temporary)
{
	bool full = sn_prof.cfg.mode == SN_PROF_FULL, locked = full_locked() || full;
	if (locked)
		pthread_mutex_lock(&sn_prof.lock);
	global_free(req, temporary);
	if (id) {
		struct prof_stack *p = &sn_prof.stacks[id];
		uint64_t wb, wn;
		weights(req, &wb, &wn);
		if (full)
			stack_snap(p);
		stack_sub(p, wb, wn, d->size);
		if (temporary && full)
			p->temp += wn;
	}
	if (locked)
		pthread_mutex_unlock(&sn_prof.lock);
}

PROF_INLINE void on_free(const struct slab_event_data *d, void **slot)
{
	uint64_t w = (uint64_t)(uintptr_t)*slot;
	if (!(w & WORD_OURS))
		return;
	*slot = NULL;
	sn_stack_id id = (sn_stack_id)w;
	uint64_t req = d->size - ((w & ~WORD_OURS) >> 32);
	bool temporary = d->ptr == tl_last;
	if (temporary)
		tl_last = NULL;
	if (id || full_locked())
		stack_free(d, id, req, temporary);
	else
		global_free(req, temporary);
}

/* The gate said this allocation is sampled: the handler need not ask. */
static __thread bool tl_gated PROF_TLS;

static int prof_handler(struct slab_notifier *nb, enum slab_event ev, const struct slab_event_data *d)
{
	(void)nb;
	if (tl_forking || (ev != SLAB_EVENT_ALLOC && ev != SLAB_EVENT_FREE))
		return SLAB_NOTIFY_DONE;
	void **slot = slab_event_ext(d, prof_slot);
	if (!slot)
		return SLAB_NOTIFY_DONE;
	if (ev == SLAB_EVENT_ALLOC) {
		bool sampled = tl_gated || sample_this(d->requested);
		tl_gated = false;
		on_alloc(d, slot, sampled);
	} else {
		on_free(d, slot);
	}
	return SLAB_NOTIFY_DONE;
}

/*
 * Sampling's gate (consumer.h): while the profile is the only handler,
 * an allocation that is not sampled is counted here and never walks the
 * notifier chain; its free comes back here, by its word.
 */
static bool gate_alloc(const struct slab_event_data *d)
{
	if (tl_forking)
		return false;
	if (sample_this(d->requested)) {
		tl_gated = true;
		return true;
	}
	void **slot = slab_event_ext(d, prof_slot);
	if (slot)
		on_alloc(d, slot, false);
	return false;
}

static void gate_free(const struct slab_event_data *d)
{
	void **slot = slab_event_ext_made(d, prof_slot);
	if (slot)
		on_free(d, slot);
}

static struct slab_notifier prof_nb = {
	.call = prof_handler,
	.priority = INT_MIN / 2,
};

static const struct sn_notify_gate prof_gate = {
	.nb = &prof_nb,
	.alloc = gate_alloc,
	.free = gate_free,
};

/* ------------------------------------------------------------------ */
/* Starting, and fork                                                 */
/* ------------------------------------------------------------------ */

/* The forking thread records nothing between prepare and parent/child:
 * other fork handlers may allocate there while our lock is held. */
static void fork_prepare(void)
{
	tl_forking = true;
	pthread_mutex_lock(&sn_prof.timeline_lock);
	pthread_mutex_lock(&sn_prof.lock);
	pthread_mutex_lock(&sn_prof.tcount_lock);
}

static void fork_parent(void)
{
	pthread_mutex_unlock(&sn_prof.tcount_lock);
	pthread_mutex_unlock(&sn_prof.lock);
	pthread_mutex_unlock(&sn_prof.timeline_lock);
	tl_forking = false;
}

static void fork_child(void)
{
	pthread_mutex_unlock(&sn_prof.tcount_lock);
	pthread_mutex_unlock(&sn_prof.lock);
	pthread_mutex_unlock(&sn_prof.timeline_lock);
	pthread_mutex_init(&sn_prof.tcount_lock, NULL);
	pthread_mutex_init(&sn_prof.lock, NULL);
	pthread_mutex_init(&sn_prof.timeline_lock, NULL);
	tl_forking = false;
}

static void notify_on(struct slab_cache *c, void *arg)
{
	(void)arg;
	slab_cache_set_notify(c, true);
}

int sn_profile_start(const struct sn_prof_config *cfg)
{
	if (!cfg || (cfg->mode != SN_PROF_LEAKS && cfg->mode != SN_PROF_FULL))
		return -EINVAL;
	if (started)
		return -EBUSY;
	/* The size classes and kmalloc-large exist before they are switched
	 * on, and the core's fork handlers come before the depot's. */
	slab_free(slab_malloc(0, 0));
	sn_stack_init();
	int slot = slab_obj_ext_reserve();
	if (slot < 0)
		return slot;
	void *mem = mmap(NULL, (size_t)SN_STACK_MAX * sizeof(struct prof_stack), PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (mem == MAP_FAILED)
		return -ENOMEM;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	sn_prof.t0 = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
	sn_prof.seed = 0x5eed5eed5eed5eedULL;
	sn_prof.stacks = mem;
	sn_prof.cfg = *cfg;
	sn_prof.locked_all = cfg->mode == SN_PROF_FULL && !cfg->sample_bytes;
	sn_prof.interval_ns = FIRST_INTERVAL_NS;
	pthread_mutex_init(&sn_prof.lock, NULL);
	pthread_mutex_init(&sn_prof.timeline_lock, NULL);
	pthread_mutex_init(&sn_prof.tcount_lock, NULL);
	prof_slot = slot;
	if (cfg->mode == SN_PROF_FULL)
		timeline_add(0);
	pthread_atfork(fork_prepare, fork_parent, fork_child);
	int ret = slab_notifier_register(&prof_nb);
	if (ret != 0)
		return ret;
	sn_notifier_pin(&prof_nb);   /* never unregistered */
	/* Recording every allocation, the gate would only add a call. */
	if ((cfg->mode == SN_PROF_FULL && cfg->sample_bytes) || (cfg->mode == SN_PROF_LEAKS && cfg->every > 1))
		sn_notify_gate_set(&prof_gate);
	started = true;
	sn_prof.on = true;
	slab_cache_for_each(notify_on, NULL);
	return 0;
}

/* Hold the accounting still (for a consistent model), or let it go. */
void sn_prof_hold(bool on)
{
	if (on)
		pthread_mutex_lock(&sn_prof.lock);
	else
		pthread_mutex_unlock(&sn_prof.lock);
}
