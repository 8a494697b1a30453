/*
 * guard.c - sampled guard pages (KFENCE, GWP-ASan): one allocation in N
 * on average is served from a pool of pages where every object page
 * lies between two inaccessible ones, at the page's end (an overflow
 * faults at once) or at its start (an underflow does); its page becomes
 * inaccessible when it is freed (a use after free faults), and freed
 * slots are reused oldest first, so that a stale pointer keeps faulting
 * for as long as possible.
 *
 * Memory: the pool is mapped once, 2 * max_live + 1 pages of address
 * space (2 MiB for the default 256), of which at most max_live pages
 * (1 MiB) are backed (with markers, only the live blocks' pages), plus
 * 64 bytes of record per slot. Sampling
 * costs the drop-in's malloc a decrement and branch in its class's cpu
 * slot.
 *
 * Pages: where the kernel has guard markers (MADV_GUARD_INSTALL, Linux
 * 6.13), the pool is one read-write mapping whose closed pages are
 * markers: opening or closing a slot's page changes its page table entry
 * only, and a closed page's memory is given back. Elsewhere (Debian 12's
 * 6.1), or for a slot whose close the kernel refuses (an mlock'ed pool),
 * mprotect, which splits the pool's VMA at each open page and merges it
 * again at its close: that VMA work was most of a block's system time.
 *
 * Time: a guarded block costs two system calls (the close flushes the
 * TLB, and in a threaded process interrupts the other CPUs) and two
 * stacks: 5-50 us in one thread, up to some 150 us with threads on a
 * VM, whatever the rate: bintree (70 million mallocs a second) spent 18%
 * more time at 1 in 5000, larson 28%. So the guarded blocks also have a
 * budget, by time: at most per_second of them a second (default 50, a
 * burst of 8 allowed: at 150 us a block, at most 0.75% of a CPU), the
 * others served plainly. Its clock is read only when a countdown runs
 * out.
 *
 * Faults: a SIGSEGV (SIGBUS) handler. A fault inside the pool is ours:
 * it prints heap-buffer-overflow or use-after-free with the address, the
 * object and its stacks, then the program dies with the original signal
 * (its own handler, if it has one, runs first). Any other fault goes to
 * the handler the program installed: the drop-in's sigaction and signal
 * record the program's handler here instead of replacing ours.
 */
#define _GNU_SOURCE
#include "debug.h"
#include "test_hooks.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <ucontext.h>

/* glibc's own entry point: bypasses the drop-in's interposed sigaction. */
extern int __sigaction(int sig, const struct sigaction *act, struct sigaction *old);

#define GUARD_RATE_DEFAULT 5000
#define GUARD_LIVE_DEFAULT 256
#define GUARD_LIVE_MAX     65536
#define GUARD_PER_SEC_DEFAULT 50
#define GUARD_BURST        8

enum { G_UNUSED, G_LIVE, G_FREED };

struct guard_slot {
	char *obj;
	uint32_t size, state;
	uint32_t alloc_stack, free_stack, alloc_tid, free_tid;
	uint64_t alloc_ns, free_ns;
	const char *cache;
	const struct slab_cache *owner; /* a SLAB_GUARD cache's, or NULL (malloc) */
	bool at_end;                /* at the page's end (else at its start) */
	bool by_mprotect;           /* its page closed by mprotect, not a marker */
};

static struct {
	struct sn_mutex lock;
	char *base, *end;
	unsigned nslots;
	struct guard_slot *slots;
	uint32_t *fifo;             /* free slots, oldest first */
	uint32_t head, count;
	uint64_t rng;
	unsigned long rate;
	_Atomic unsigned long per_second;  /* 0: no budget */
	unsigned max_live;
	struct sigaction prev[2];   /* the program's SIGSEGV, SIGBUS actions */
	bool handler_on;
	bool markers;               /* the pool's closed pages are guard markers */
	_Atomic bool reported;
} g = { .lock = SN_MUTEX_INIT(SN_RANK_GUARD), .rate = GUARD_RATE_DEFAULT,
     .per_second = GUARD_PER_SEC_DEFAULT, .max_live = GUARD_LIVE_DEFAULT };

static _Atomic(char *) pool_base, pool_end;
bool sn_test_guard_no_markers;

bool sn_guard_owns(const void *p)
{
	const char *b = atomic_load_explicit(&pool_base, memory_order_relaxed);
	return b && (const char *)p >= b && (const char *)p < atomic_load_explicit(&pool_end, memory_order_relaxed);
}

int slab_guard_config(unsigned long rate, unsigned max_live)
{
	if (max_live > GUARD_LIVE_MAX) {
		errno = EINVAL;
		return -EINVAL;
	}
	sn_lock(&g.lock);
	if (rate)
		g.rate = rate;
	if (max_live && !g.base)     /* fixed once the pool exists */
		g.max_live = max_live;
	sn_unlock(&g.lock);
	return 0;
}

unsigned long sn_guard_rate(void)
{
	return g.rate;
}

unsigned long slab_guard_per_second(unsigned long n)
{
	return atomic_exchange_explicit(&g.per_second, n, memory_order_relaxed);
}

/*
 * The budget, as a virtual schedule (GCRA): each guarded block moves the
 * theoretical arrival time one interval on; a block whose turn is more
 * than the burst ahead of now is refused. One word, a CAS, no lock.
 */
static _Atomic uint64_t budget_tat;

static bool budget_take(void)
{
	unsigned long per = atomic_load_explicit(&g.per_second, memory_order_relaxed);
	if (!per)
		return true;
	uint64_t step = 1000000000u / per + 1, now = dbg_now_ns();
	uint64_t tat = atomic_load_explicit(&budget_tat, memory_order_relaxed), next;
	do {
		uint64_t from = tat > now ? tat : now;
		if (from - now > GUARD_BURST * step)
			return false;
		next = from + step;
	} while (!atomic_compare_exchange_weak_explicit(&budget_tat, &tat, next, memory_order_relaxed,
							memory_order_relaxed));
	return true;
}

/* ------------------------------------------------------------------ */
/* The pool                                                           */
/* ------------------------------------------------------------------ */

static char *slot_page(unsigned i)
{
	return g.base + (2 * (size_t)i + 1) * SN_PAGE_SIZE;
}

static void g_lock(void) { sn_lock(&g.lock); }
static void g_unlock(void) { sn_unlock(&g.lock); }

/* The core's fork handlers, through debug/fork.c. */
void guard_fork_prepare(void) { pthread_mutex_lock(&g.lock.m); }
void guard_fork_parent(void) { pthread_mutex_unlock(&g.lock.m); }
void guard_fork_child(void) { sn_mutex_reinit(&g.lock); }

/* Under the lock. */
static bool pool_make(void)
{
	if (g.base)
		return true;
	unsigned n = g.max_live;
	size_t bytes = (2 * (size_t)n + 1) * SN_PAGE_SIZE;
	size_t meta = n * sizeof(struct guard_slot) + n * sizeof(uint32_t);
	char *base = os_map(bytes);
	char *m = os_map((meta + SN_PAGE_SIZE - 1) & ~(SN_PAGE_SIZE - 1));
	if (!base || !m)
		return false;
	g.markers = !sn_test_guard_no_markers && os_mark_guard(base, bytes);
	if (!g.markers && !os_guard(base, bytes))
		return false;
	g.slots = (struct guard_slot *)m;
	g.fifo = (uint32_t *)(m + n * sizeof(struct guard_slot));
	for (unsigned i = 0; i < n; i++)
		g.fifo[i] = i;
	g.count = n;
	g.nslots = n;
	g.rng = (uintptr_t)base ^ dbg_now_ns() ^ 0x9e3779b97f4a7c15ULL;
	g.base = base;
	g.end = base + bytes;
	atomic_store(&pool_end, g.end);
	atomic_store(&pool_base, base);
	return true;
}

/* A slot's page opened for a block, and closed at its free. */
static bool page_open(struct guard_slot *s, char *page)
{
	if (!g.markers || s->by_mprotect)
		return os_unguard(page, SN_PAGE_SIZE);
	return os_unmark_guard(page, SN_PAGE_SIZE);
}

static void page_close(struct guard_slot *s, char *page)
{
	s->by_mprotect = !g.markers || !os_mark_guard(page, SN_PAGE_SIZE);
	if (s->by_mprotect)
		os_guard(page, SN_PAGE_SIZE);
}

/* splitmix64's step over the state *@x. */
static uint64_t mix_next(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Under the lock. */
static uint64_t g_random(void)
{
	return mix_next(&g.rng);
}

/* The countdowns' draws: each thread its own sequence, so that threads
 * do not meet on a lock to draw. Seeded from the thread's ordinal and
 * the clock. */
static __thread uint64_t tick_rng;

/* The next countdown: uniform in [1, 2 * rate - 1], mean rate. */
int64_t sn_guard_next_tick(void)
{
	unsigned long r = g.rate;
	if (r <= 1)
		return 1;
	if (!tick_rng)
		tick_rng = dbg_now_ns() ^ ((uint64_t)sn_thread_ordinal() << 40) ^ 0x2545f4914f6cdd1dULL;
	return 1 + (int64_t)(mix_next(&tick_rng) % (2 * (uint64_t)r - 1));
}

void *sn_guard_alloc(size_t n, const char *cache, const struct slab_cache *owner)
{
	if (n > SN_PAGE_SIZE || !budget_take())
		return NULL;
	g_lock();
	if (atomic_load_explicit(&g.reported, memory_order_relaxed) || !pool_make() || !g.count) {
		g_unlock();
		return NULL;
	}
	uint32_t i = g.fifo[g.head];
	g.head = (g.head + 1) % g.nslots;
	g.count--;
	bool at_end = g_random() & 1;
	g_unlock();
	char *page = slot_page(i);
	struct guard_slot *s = &g.slots[i];
	if (!page_open(s, page))
		return NULL;      /* the slot is lost, not reused: cannot happen short of ENOMEM */
	/* A block of no bytes takes 16 all the same: at the page's end it
	 * would start on the guard page after it. */
	size_t rounded = n ? (n + 15) & ~(size_t)15 : 16;
	char *obj = at_end ? page + SN_PAGE_SIZE - rounded : page;
	/* The bytes of the page past the object: checked at free. */
	memset(page, RED_ACTIVE, SN_PAGE_SIZE);
	s->obj = obj;
	s->size = (uint32_t)n;
	s->at_end = at_end;
	s->cache = cache;
	s->owner = owner;
	s->alloc_stack = dbg_stack_now();
	s->alloc_tid = sn_thread_ordinal();
	s->alloc_ns = dbg_now_ns();
	s->free_stack = 0;
	__atomic_store_n(&s->state, G_LIVE, __ATOMIC_RELEASE);
	return obj;
}

static struct guard_slot *slot_of_ptr(const void *p, unsigned *idx)
{
	size_t page = (size_t)((const char *)p - g.base) / SN_PAGE_SIZE;
	if (!(page & 1))
		return NULL;
	*idx = (unsigned)(page / 2);
	return &g.slots[*idx];
}

/* ------------------------------------------------------------------ */
/* Reports                                                            */
/* ------------------------------------------------------------------ */

static void print_slot(const struct guard_slot *s)
{
	dbg_print_stack("Allocated", s->alloc_stack, s->alloc_tid, s->alloc_ns);
	if (s->state == G_FREED)
		dbg_print_stack("Freed", s->free_stack, s->free_tid, s->free_ns);
}

static void guard_bug(const struct guard_slot *s, const char *what, const char *detail, const void *addr)
{
	sn_quiet_begin();
	fprintf(stderr, "BUG %s: %s (guard page)\n", s ? s->cache : "guarded", what);
	fprintf(stderr, "-----------------------------------------------------------------------------\n");
	if (s) {
		ptrdiff_t off = (const char *)addr - s->obj;
		fprintf(stderr, "INFO: %s at %p @offset=%td of object %p (%u bytes, at the page's %s)\n", detail, addr,
			off, (void *)s->obj, s->size, s->at_end ? "end" : "start");
		print_slot(s);
	} else {
		fprintf(stderr, "INFO: %s at %p\n", detail, addr);
	}
	sn_quiet_end();
}

/* The cache name of the live guarded object that starts at @p, and in
 * *@owner its SLAB_GUARD cache (NULL for malloc's); NULL when @p is not
 * one (sn_guard_free() then reports what it is). */
const char *sn_guard_live_owner(const void *p, const struct slab_cache **owner)
{
	unsigned i;
	struct guard_slot *s = slot_of_ptr(p, &i);
	if (!s || __atomic_load_n(&s->state, __ATOMIC_ACQUIRE) != G_LIVE || (const char *)p != s->obj)
		return NULL;
	*owner = s->owner;
	return s->cache;
}

void sn_guard_free(const char *fn, void *p)
{
	unsigned i;
	struct guard_slot *s = slot_of_ptr(p, &i);
	if (!s || s->state == G_UNUSED || (char *)p != s->obj) {
		guard_bug(NULL, "invalid free", fn, p);
		dbg_report_done();
		return;
	}
	if (s->state == G_FREED) {
		guard_bug(s, "double free", fn, p);
		dbg_print_stack("Freed again", dbg_stack_now(), sn_thread_ordinal(), dbg_now_ns());
		dbg_report_done();
		return;
	}
	char *page = slot_page(i);
	const uint8_t *last = NULL, *tail = (const uint8_t *)s->obj + s->size;
	const uint8_t *bad = dbg_first_not(tail, (size_t)((const uint8_t *)page + SN_PAGE_SIZE - tail), RED_ACTIVE, &last);
	if (bad) {
		guard_bug(s, "heap-buffer-overflow", "found at free: a write", bad);
		fprintf(stderr, "INFO: %p-%p First byte 0x%x instead of 0x%x\n", (const void *)bad, (const void *)last,
			*bad, RED_ACTIVE);
		dbg_report_done();
	}
	s->free_stack = dbg_stack_now();
	s->free_tid = sn_thread_ordinal();
	s->free_ns = dbg_now_ns();
	__atomic_store_n(&s->state, G_FREED, __ATOMIC_RELEASE);
	page_close(s, page);
	g_lock();
	g.fifo[(g.head + g.count) % g.nslots] = i;
	g.count++;
	g_unlock();
}

size_t sn_guard_usable_size(const void *p)
{
	unsigned i;
	struct guard_slot *s = slot_of_ptr(p, &i);
	if (!s || s->state != G_LIVE || (const char *)p != s->obj)
		sn_bad_pointer("malloc_usable_size", p);
	return s->size;
}

/* ------------------------------------------------------------------ */
/* The fault handler                                                  */
/* ------------------------------------------------------------------ */

/* The object a fault at @a is about, and what happened to it. */
static const struct guard_slot *classify(uintptr_t a, const char **what)
{
	size_t page = (a - (uintptr_t)g.base) / SN_PAGE_SIZE;
	if (page & 1) {
		*what = "use-after-free";
		return &g.slots[page / 2];
	}
	/* A guard page: the object that ends before it, or starts after it,
	 * whichever is nearer. */
	const struct guard_slot *before = page >= 2 ? &g.slots[page / 2 - 1] : NULL;
	const struct guard_slot *after = page / 2 < g.nslots ? &g.slots[page / 2] : NULL;
	uintptr_t d_before = UINTPTR_MAX, d_after = UINTPTR_MAX;
	if (before && before->state != G_UNUSED)
		d_before = a - ((uintptr_t)before->obj + before->size);
	if (after && after->state != G_UNUSED)
		d_after = (uintptr_t)after->obj - a;
	if (d_before == UINTPTR_MAX && d_after == UINTPTR_MAX) {
		*what = "wild access";
		return NULL;
	}
	const struct guard_slot *s = d_before <= d_after ? before : after;
	*what = s->state == G_FREED ? "use-after-free"
				     : s == before ? "heap-buffer-overflow" : "heap-buffer-underflow";
	return s;
}

static bool is_write(const void *ucv)
{
#if defined(__x86_64__)
	const ucontext_t *uc = ucv;
	return uc->uc_mcontext.gregs[REG_ERR] & 2;
#else
	(void)ucv;
	return false;
#endif
}

static void call_prev(int sig, siginfo_t *si, void *uc)
{
	struct sigaction *p = &g.prev[sig == SIGBUS];
	if (p->sa_flags & SA_SIGINFO) {
		if (p->sa_sigaction) {
			p->sa_sigaction(sig, si, uc);
			return;
		}
	} else if (p->sa_handler != SIG_DFL && p->sa_handler != SIG_IGN) {
		p->sa_handler(sig);
		return;
	}
	/* Default (or ignored, which a fault cannot be): die of it. */
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	sigemptyset(&dfl.sa_mask);
	__sigaction(sig, &dfl, NULL);
	if (si->si_code <= 0)       /* sent, not a fault: send it again */
		raise(sig);
}

static void guard_signal(int sig, siginfo_t *si, void *uc)
{
	uintptr_t a = (uintptr_t)si->si_addr;
	bool ours = si->si_code > 0 && g.base && a >= (uintptr_t)g.base && a < (uintptr_t)g.end;
	if (!ours || atomic_exchange(&g.reported, true)) {
		call_prev(sig, si, uc);
		return;
	}
	const char *what;
	const struct guard_slot *s = classify(a, &what);
	guard_bug(s, what, is_write(uc) ? "write" : "read", (void *)a);
	/* The program's handler sees the fault too; then the fault repeats
	 * with the default action and the program dies of it. */
	call_prev(sig, si, uc);
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	sigemptyset(&dfl.sa_mask);
	__sigaction(sig, &dfl, NULL);
	/* Pending until the handler returns: the page may have been given out
	 * again meanwhile (the report allocates), so the fault might not repeat. */
	raise(sig);
}

/* Install the handler, keeping whatever was there for other faults.
 * Once: a second time would keep ours as the program's. */
static void install_once(void)
{
	struct sigaction sa = { .sa_sigaction = guard_signal, .sa_flags = SA_SIGINFO | SA_ONSTACK };
	sigemptyset(&sa.sa_mask);
	__sigaction(SIGSEGV, &sa, &g.prev[0]);
	__sigaction(SIGBUS, &sa, &g.prev[1]);
	g.handler_on = true;
}

void sn_guard_install_handler(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, install_once);
}

/* ------------------------------------------------------------------ */
/* SLAB_GUARD caches                                                  */
/* ------------------------------------------------------------------ */

/* The caches' countdown, one per thread for every SLAB_GUARD cache (as
 * the drop-in's is for malloc): below zero, the allocation is offered to
 * the pool. Read only on the hooked path (HOOK_GUARD): a cache without
 * the flag never reaches it. */
static __thread int64_t cache_tick SN_TLS;

void sn_guard_cache_created(struct slab_cache *c)
{
	sn_guard_install_handler();
	atomic_fetch_or(&c->hooks, HOOK_GUARD);
}

void *sn_guard_cache_sample(struct slab_cache *c, slab_gfp_t gfp)
{
	if (--cache_tick >= 0)
		return NULL;
	cache_tick = sn_guard_next_tick() - 1;
	/* A debug cache's object is inside its slot. */
	bool debug = atomic_load_explicit(&c->hooks, memory_order_relaxed) & HOOK_DEBUG;
	size_t n = debug ? sn_dbg_caches[c->index].osize : c->object_size;
	void *p = sn_guard_alloc(n, c->name, c);
	if (p && (gfp & SLAB_GFP_ZERO))
		memset(p, 0, n);
	return p;
}

/* The program's sigaction for SIGSEGV/SIGBUS while ours is installed:
 * recorded as the handler of the faults that are not ours. */
bool sn_guard_sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
	if (!g.handler_on || (sig != SIGSEGV && sig != SIGBUS))
		return false;
	struct sigaction *p = &g.prev[sig == SIGBUS];
	if (old)
		*old = *p;
	if (act)
		*p = *act;
	return true;
}

/* Live guarded objects of @c (slab_cache_destroy counts them as live). */
unsigned long sn_guard_live_of(const struct slab_cache *c)
{
	unsigned long n = 0;
	g_lock();
	for (unsigned i = 0; g.base && i < g.nslots; i++)
		n += g.slots[i].owner == c && __atomic_load_n(&g.slots[i].state, __ATOMIC_ACQUIRE) == G_LIVE;
	g_unlock();
	return n;
}
