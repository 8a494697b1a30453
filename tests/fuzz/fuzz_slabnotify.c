/*
 * fuzz_slabnotify.c - a libFuzzer harness for slabnotify's public API.
 *
 * The input is a sequence of operations (tests/fuzz/README.md has the
 * format). Every operation goes through the public header only, the way
 * a correct program would use it (the one deliberate misuse is destroying
 * a cache that still has objects, which must return -EBUSY). A model of
 * everything the harness owns is kept alongside and checked after every
 * call:
 *
 *  - live blocks never overlap (an interval set of [p, p + usable));
 *  - every live block holds the pattern it was filled with (derived from
 *    its id), checked before it is freed or reallocated and at the end;
 *  - every event a handler of ours receives is the one the header's rules
 *    predict, in chain order: ALLOC to each handler until a veto, the
 *    rollback FREEs in reverse, FREE to exactly the handlers that
 *    accepted the object and are still registered; per handler,
 *    accepted ALLOCs minus FREEs equals the live objects it accepted;
 *    NEWPAGE/FREEPAGE pair per handler and page;
 *  - a vetoed allocation returns NULL with the vetoing errno;
 *  - fault injection fails exactly the calls the kernel's knobs select
 *    (a model of failslab's documented should_fail());
 *  - memory groups: usage and object counts equal the model's exactly,
 *    charges above max are refused (and only those), usage is 0 once
 *    everything is freed;
 *  - slab_cache_info() active_objs equals the model for our caches.
 *
 * Inputs are independent: at the end of each one everything is freed,
 * caches and groups destroyed, handlers back to their idle behaviour and
 * registration, fault injection back to its inert configuration. A fixed
 * pool of handlers is registered once at start-up (unregistering waits
 * for a grace period), and operations that wait for RCU are budgeted per
 * input (SNFUZZ_SYNCS, SNFUZZ_BARRIERS).
 *
 * Built with -fsanitize=fuzzer it is the libFuzzer target; built with
 * replay.c (-DFUZZ_REPLAY is not needed, replay.c supplies main) it runs
 * corpus files as plain tests.
 */
#define _GNU_SOURCE
#include "slabnotify.h"

#include <urcu/urcu-bp.h>

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ------------------------------------------------------------------ */
/* Configuration (environment)                                        */
/* ------------------------------------------------------------------ */

static struct {
	bool trace;            /* SNFUZZ_TRACE=1: print every operation */
	int syncs;             /* SNFUZZ_SYNCS: synchronize_rcu per input */
	int barriers;          /* SNFUZZ_BARRIERS: rcu_barrier per input */
	bool allow_off_twice;  /* SNFUZZ_ALLOW=off-twice (known bug 1) */
	bool allow_off_live;   /* SNFUZZ_ALLOW=off-live (known bug 2) */
	bool allow_throttle;   /* SNFUZZ_ALLOW=throttle: no forced NOWAIT */
	bool allow_zero_ctor;  /* SNFUZZ_ALLOW=zero-ctor (crash zero-ctor-veto) */
} cfg;

#define TR(...) do { if (cfg.trace) fprintf(stderr, __VA_ARGS__); } while (0)

/* ------------------------------------------------------------------ */
/* Failure                                                            */
/* ------------------------------------------------------------------ */

static unsigned long op_index;
static const char *op_name = "start-up";

__attribute__((noreturn, format(printf, 3, 4)))
static void fz_die(int line, const char *cond, const char *fmt, ...)
{
	fflush(stdout);
	fprintf(stderr, "\nslabnotify-fuzz: invariant violated at op #%lu (%s), fuzz_slabnotify.c:%d: %s\n  ",
		op_index, op_name, line, cond);
	va_list ap;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

#define CHECK(c, ...) do { if (__builtin_expect(!(c), 0)) fz_die(__LINE__, #c, __VA_ARGS__); } while (0)

/* ------------------------------------------------------------------ */
/* Limits                                                             */
/* ------------------------------------------------------------------ */

#define MAX_BLOCKS       600
#define MAX_STASH        32
#define MAX_INPUT_CACHES 8
#define MAX_GROUPS       16     /* ids per input, root (0) included */
#define MAX_LIVE_GROUPS  8
#define MAX_LIVE_BYTES   ((size_t)48 << 20)
#define MAX_LARGE_REQ    ((size_t)400 << 10)
#define REF_LEN          (((size_t)4 << 20) + 8192)
#define MAX_REC          16384
#define NH               6      /* handlers of ours */
#define H_FIRST          0      /* priority INT_MAX, never unregistered */
#define H_OBS            5      /* the observer: INT_MIN, always accepts */

/* ------------------------------------------------------------------ */
/* Input                                                              */
/* ------------------------------------------------------------------ */

struct input {
	const uint8_t *p, *end;
};

static uint8_t in_u8(struct input *in)
{
	return in->p < in->end ? *in->p++ : 0;
}

static uint16_t in_u16(struct input *in)
{
	uint16_t lo = in_u8(in);
	return (uint16_t)(lo | (uint16_t)in_u8(in) << 8);
}

/* ------------------------------------------------------------------ */
/* The model                                                          */
/* ------------------------------------------------------------------ */

enum mc_kind { MC_KMALLOC, MC_CG, MC_LARGE, MC_PERSIST, MC_INPUT };

struct mcache {
	bool live;
	enum mc_kind kind;
	struct slab_cache *c;
	char name[32];
	size_t size;            /* object size (the events' size) */
	size_t align, stride, slab_bytes;
	slab_flags_t flags;
	bool ctor;
	bool notify;            /* notification on, by the model */
	bool canon_notify;      /* state between inputs (built-in, persistent) */
	bool all_notified;      /* every slab was made with notification on
				 * and outside a handler: the observer saw
				 * every NEWPAGE */
	int offs;               /* set_notify(false) calls in this lifetime */
	long nlive;             /* live blocks of ours in it */
	long pages[NH];         /* pages each handler holds (NEWPAGE - FREEPAGE) */
	bool dirty;             /* touched since the last check_state() */
};

#define N_KM       59
#define MC_KM0     0
#define MC_CG0     N_KM
#define MC_LARGE_I (2 * N_KM)
#define MC_P0      (MC_LARGE_I + 1)
#define N_PERSIST  3
#define MC_IN0     (MC_P0 + N_PERSIST)
#define NMC        (MC_IN0 + MAX_INPUT_CACHES)

static struct mcache mcs[NMC];

static const uint32_t kclass[N_KM] = {
	8, 16, 32, 48, 64, 80, 96, 112, 128,
	160, 192, 224, 256,
	272, 320, 384, 448, 512,
	544, 640, 768, 896, 1024,
	1040, 1104, 1280, 1536, 1792, 2048,
	2080, 2208, 2560, 3072, 3584, 4096,
	4160, 4416, 5120, 6144, 7168, 8192,
	8320, 8832, 10240, 12288, 14336, 16384,
	16640, 17664, 20480, 24576, 28672, 32768,
	33280, 35328, 40960, 49152, 57344, 65536,
};

struct block {
	void *p;
	size_t usable;          /* extent, filled with the pattern */
	size_t req;             /* what was asked for */
	size_t evsize;          /* the size its events carry */
	size_t fp;              /* bytes charged (0: not charged) */
	struct mcache *mc;
	unsigned id;
	uint32_t mask;          /* handlers that accepted its ALLOC */
	int owner;              /* memory group charged, -1: none */
	bool cache_obj;         /* from slab_cache_alloc */
	bool stash;             /* allocated by a handler (quietly) */
	bool pinned;            /* being reallocated: reclaim keeps off */
};

static struct block blocks[MAX_BLOCKS];
static int nblocks;
static int nstash;
static unsigned next_id;
static size_t live_bytes;

struct mgroup {
	bool used, live;
	struct slab_memcg *g;
	int parent;
	size_t max, high;
	size_t usage;           /* bytes charged to its subtree */
	long objs;
	int nchildren;
	bool reclaim;
	unsigned long vetoes;   /* VETO events it fired */
	unsigned long failcnt0; /* failcnt when the input began */
};

static struct mgroup grp[MAX_GROUPS];
static int cur_group;           /* the main thread's current group */
static bool in_helper;           /* a helper thread acts (main waits in join) */

/* The current group of the thread making calls: a helper thread's is root. */
static int acting_group(void)
{
	return in_helper ? 0 : cur_group;
}

enum {
	HM_VETO_ALLOC = 1 << 0,
	HM_VETO_PAGE  = 1 << 1,
	HM_ONESHOT    = 1 << 2,
	HM_ALLOC_IN   = 1 << 3,   /* slab_malloc inside, kept in the stash */
	HM_FREE_IN    = 1 << 4,   /* free a stash block inside */
	HM_CACHE_IN   = 1 << 5,   /* alloc + free from the event's cache inside */
	HM_RET_OK     = 1 << 6,   /* accept with SLAB_NOTIFY_OK (else DONE) */
	HM_UNREG_TRY  = 1 << 7,   /* unregister from inside: -EDEADLK */
};

struct handler {
	struct slab_notifier nb;   /* first: the callback casts back */
	int id;
	bool registered;
	unsigned seq;              /* registration order */
	unsigned mode;
	int err_sel;
	int veto_left;             /* -1: every time */
	unsigned rot;
	long balance;              /* accepted ALLOCs minus FREEs received */
	long expect;               /* live blocks with our bit */
};

static const int h_prio[NH] = { INT_MAX, 1000, 0, -10, -10, INT_MIN };
static struct handler hs[NH];
static unsigned reg_seq = 1;       /* memcg's notifier is 0 */
static int ext_slot = -1;

/* failslab, as documented in src/failslab.c and the kernel's knobs. */
static struct {
	bool registered;
	unsigned seq;
	bool active;
	double probability;
	unsigned long interval, count;
	long times;
	size_t space, min_size;
	bool has_filter, filter_never;
	size_t filter_len;
	char filter[128];
	uint64_t seed;
	uint64_t epoch;           /* bumped by every start */
} fs;

/* failslab's per-thread state (its draws, interval count and space),
 * for the main thread and the helper thread, whose ordinal it asks the
 * core for (the stream of a thread follows its ordinal). */
struct fs_thread {
	uint64_t epoch, rng;
	unsigned long count;
	size_t space;
};
static struct fs_thread fs_main_t, fs_help_t;
static uint32_t helper_ordinal;
uint32_t sn_thread_ordinal(void);

/* Budgets of the current input. */
static int syncs_left, barriers_left;

/* The trace of the events our handlers received during one call. */
struct rec {
	int h;
	enum slab_event ev;
	void *ptr;
	struct slab_cache *cache;
	size_t size;
	slab_gfp_t gfp;
	int ret;
	bool used;
};
static struct rec recs[MAX_REC];
static int nrec;

/* Blocks freed by the harness during the current call (top level, or
 * from inside a handler or a reclaim callback) and what FREEs they owe. */
struct xfree {
	void *p;
	uint32_t mask;
	struct slab_cache *cache;
	size_t evsize;
	int rec_lo, rec_hi;   /* the events recorded during the free itself */
};
static struct xfree xfrees[MAX_BLOCKS * 2];
static int nxfree;

static int call_veto_events, call_veto_gid;
static unsigned long call_injected0;
static int inside_depth;
static pthread_t main_thread;
static pthread_t actor;          /* the thread making calls: main or a helper */
static FILE *devnull;
static uint8_t *ref;            /* the pattern source */
static uint8_t *scratch;        /* copies of objects */
static struct slab_memcg *root_g;

/* ------------------------------------------------------------------ */
/* Small helpers                                                      */
/* ------------------------------------------------------------------ */

static bool is_pow2(size_t x)
{
	return x && !(x & (x - 1));
}

static size_t round_up(size_t x, size_t a)
{
	return (x + a - 1) & ~(a - 1);
}

static size_t pat_off(unsigned id)
{
	return (size_t)((id * 2654435761u) >> 8) & 4095;
}

#define CTOR_MAGIC 0xC7C7A11C0DEC0DEULL

static unsigned long ctor_calls;

static void fz_ctor(void *obj)
{
	uint64_t v = CTOR_MAGIC ^ (uintptr_t)obj;
	memcpy(obj, &v, sizeof(v));
	ctor_calls++;
}

static bool ctor_state(const void *obj)
{
	uint64_t v;
	memcpy(&v, obj, sizeof(v));
	return v == (CTOR_MAGIC ^ (uintptr_t)obj);
}

static bool all_zero(const void *p, size_t n)
{
	const uint8_t *b = p;
	return n == 0 || (b[0] == 0 && memcmp(b, b + 1, n - 1) == 0);
}

static struct mcache *mc_of(const struct slab_cache *c)
{
	for (int i = 0; i < NMC; i++)
		if (mcs[i].live && mcs[i].c == c)
			return &mcs[i];
	return NULL;
}

static int errno_decode(int ret)
{
	int e = slab_notify_to_errno(ret);
	return e ? -e : ENOMEM;
}

static const int veto_errs[8] = { -ENOMEM, -EPERM, -EACCES, -ENOSPC, -EAGAIN, -EIO, 0, -EINTR };

static int veto_ret(const struct handler *h)
{
	int e = veto_errs[h->err_sel & 7];
	return e ? slab_notify_from_errno(e) : SLAB_NOTIFY_BAD;
}

/* ------------------------------------------------------------------ */
/* Pointer -> block map, interval set, page map                      */
/* ------------------------------------------------------------------ */

#define BMAP_BITS 11
static struct { void *k; int v; } bmap[1u << BMAP_BITS];

static unsigned hash_ptr(const void *p, unsigned bits)
{
	return (unsigned)(((uintptr_t)p * 0x9E3779B97F4A7C15ULL) >> (64 - bits));
}

static int bmap_find(const void *p)
{
	unsigned m = (1u << BMAP_BITS) - 1;
	for (unsigned i = hash_ptr(p, BMAP_BITS);; i = (i + 1) & m) {
		if (!bmap[i].k)
			return -1;
		if (bmap[i].k == p)
			return bmap[i].v;
	}
}

static void bmap_set(void *p, int v)
{
	unsigned m = (1u << BMAP_BITS) - 1;
	for (unsigned i = hash_ptr(p, BMAP_BITS);; i = (i + 1) & m) {
		if (!bmap[i].k || bmap[i].k == p) {
			bmap[i].k = p;
			bmap[i].v = v;
			return;
		}
	}
}

static void bmap_del(const void *p)
{
	unsigned m = (1u << BMAP_BITS) - 1;
	unsigned i = hash_ptr(p, BMAP_BITS);
	while (bmap[i].k != p) {
		CHECK(bmap[i].k, "harness: pointer %p not in the block map", p);
		i = (i + 1) & m;
	}
	/* Backward-shift deletion: no tombstones. */
	for (unsigned j = i;;) {
		bmap[i].k = NULL;
		for (;;) {
			j = (j + 1) & m;
			if (!bmap[j].k)
				return;
			unsigned h = hash_ptr(bmap[j].k, BMAP_BITS);
			if ((j > i && (h <= i || h > j)) || (j < i && h <= i && h > j))
				break;
		}
		bmap[i] = bmap[j];
		i = j;
	}
}

struct ival {
	uintptr_t lo, hi;
};
static struct ival ivs[MAX_BLOCKS];
static int niv;

static int iv_lower(uintptr_t lo)
{
	int a = 0, b = niv;
	while (a < b) {
		int m = (a + b) / 2;
		if (ivs[m].lo < lo)
			a = m + 1;
		else
			b = m;
	}
	return a;
}

static bool iv_overlaps(uintptr_t lo, uintptr_t hi)
{
	int i = iv_lower(lo);
	if (i < niv && ivs[i].lo < hi)
		return true;
	return i > 0 && ivs[i - 1].hi > lo;
}

static void iv_insert(uintptr_t lo, uintptr_t hi)
{
	int i = iv_lower(lo);
	CHECK(i == niv || hi <= ivs[i].lo, "new block [%#lx, %#lx) overlaps the live block [%#lx, %#lx)",
	      (unsigned long)lo, (unsigned long)hi, (unsigned long)ivs[i].lo, (unsigned long)ivs[i].hi);
	CHECK(i == 0 || ivs[i - 1].hi <= lo, "new block [%#lx, %#lx) overlaps the live block [%#lx, %#lx)",
	      (unsigned long)lo, (unsigned long)hi, (unsigned long)ivs[i - 1].lo, (unsigned long)ivs[i - 1].hi);
	memmove(&ivs[i + 1], &ivs[i], (size_t)(niv - i) * sizeof(ivs[0]));
	ivs[i] = (struct ival){ lo, hi };
	niv++;
}

static void iv_remove(uintptr_t lo)
{
	int i = iv_lower(lo);
	CHECK(i < niv && ivs[i].lo == lo, "harness: interval %#lx missing", (unsigned long)lo);
	memmove(&ivs[i], &ivs[i + 1], (size_t)(niv - i - 1) * sizeof(ivs[0]));
	niv--;
}

/* Pages: base -> handlers that accepted its NEWPAGE. */
#define PMAP_BITS 15
struct pent {
	void *base;
	struct slab_cache *cache;
	uint32_t mask;
};
static struct pent pmap[1u << PMAP_BITS];
static unsigned npages;

static struct pent *pmap_get(void *base, bool create)
{
	unsigned m = (1u << PMAP_BITS) - 1;
	for (unsigned i = hash_ptr(base, PMAP_BITS);; i = (i + 1) & m) {
		if (pmap[i].base == base)
			return &pmap[i];
		if (!pmap[i].base) {
			if (!create)
				return NULL;
			CHECK(npages < (1u << PMAP_BITS) / 2, "harness: page map full (%u pages)", npages);
			npages++;
			pmap[i].base = base;
			pmap[i].mask = 0;
			pmap[i].cache = NULL;
			return &pmap[i];
		}
	}
}

static void pmap_del(struct pent *e)
{
	unsigned m = (1u << PMAP_BITS) - 1;
	unsigned i = (unsigned)(e - pmap);
	npages--;
	for (unsigned j = i;;) {
		pmap[i].base = NULL;
		for (;;) {
			j = (j + 1) & m;
			if (!pmap[j].base)
				return;
			unsigned h = hash_ptr(pmap[j].base, PMAP_BITS);
			if ((j > i && (h <= i || h > j)) || (j < i && h <= i && h > j))
				break;
		}
		pmap[i] = pmap[j];
		i = j;
	}
}

/* ------------------------------------------------------------------ */
/* The chain, as the header orders it                                 */
/* ------------------------------------------------------------------ */

enum { P_MINE, P_FAILSLAB, P_MEMCG };
struct part {
	int kind, h, prio;
	unsigned seq;
};

/* Every handler in calling order: ours, failslab (INT_MAX / 2) and memcg
 * (0, registered first of all). Highest priority first, ties in
 * registration order. */
static struct part chain_cache[NH + 2];
static int chain_cache_n = -1;   /* -1: registrations changed */

static int chain_parts(struct part *out)
{
	if (chain_cache_n >= 0) {
		memcpy(out, chain_cache, (size_t)chain_cache_n * sizeof(*out));
		return chain_cache_n;
	}
	int n = 0;
	for (int h = 0; h < NH; h++)
		if (hs[h].registered)
			out[n++] = (struct part){ P_MINE, h, h_prio[h], hs[h].seq };
	if (fs.registered)
		out[n++] = (struct part){ P_FAILSLAB, -1, INT_MAX / 2, fs.seq };
	out[n++] = (struct part){ P_MEMCG, -1, 0, 0 };
	for (int i = 1; i < n; i++) {
		struct part x = out[i];
		int j = i;
		while (j > 0 && (out[j - 1].prio < x.prio || (out[j - 1].prio == x.prio && out[j - 1].seq > x.seq))) {
			out[j] = out[j - 1];
			j--;
		}
		out[j] = x;
	}
	memcpy(chain_cache, out, (size_t)n * sizeof(*out));
	chain_cache_n = n;
	return n;
}

static int chain_mine(int *out, uint32_t mask)
{
	struct part p[NH + 2];
	int n = chain_parts(p), k = 0;
	for (int i = 0; i < n; i++)
		if (p[i].kind == P_MINE && (mask & (1u << p[i].h)))
			out[k++] = p[i].h;
	return k;
}

static uint32_t registered_mask(void)
{
	uint32_t m = 0;
	for (int h = 0; h < NH; h++)
		if (hs[h].registered)
			m |= 1u << h;
	return m;
}

/* ------------------------------------------------------------------ */
/* Memory groups                                                      */
/* ------------------------------------------------------------------ */

static bool group_fits(int g, size_t n)
{
	for (; g >= 0; g = grp[g].parent) {
		size_t u = grp[g].usage, m = grp[g].max;
		if (u > m || n > m - u)
			return false;
	}
	return true;
}

static void group_charge(int g, size_t n, int sign)
{
	for (; g >= 0; g = grp[g].parent) {
		if (sign > 0) {
			grp[g].usage += n;
			grp[g].objs++;
		} else {
			CHECK(grp[g].usage >= n && grp[g].objs > 0, "harness: group %d uncharged below 0", g);
			grp[g].usage -= n;
			grp[g].objs--;
		}
	}
}

static bool group_in_subtree(int g, int top)
{
	for (; g >= 0; g = grp[g].parent)
		if (g == top)
			return true;
	return false;
}

/* A finite high anywhere above the current group: allocations are made
 * NOWAIT so that they are not throttled (which sleeps, up to 2 s). */
static bool high_above(int g)
{
	for (; g >= 0; g = grp[g].parent)
		if (grp[g].high != SIZE_MAX)
			return true;
	return false;
}

/* ------------------------------------------------------------------ */
/* failslab's should_fail(), mirrored                                 */
/* ------------------------------------------------------------------ */

static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

static bool fs_filter_match(const char *name)
{
	if (!fs.has_filter)
		return true;
	if (fs.filter_never)
		return false;
	return strncmp(name, fs.filter, fs.filter_len) == 0;
}

/* @req: the bytes asked for (what min_size compares, as failslab.c does);
 * @size: the event's size (what the space budget counts). */
static bool fs_should_fail(const struct mcache *m, size_t req, size_t size)
{
	if (!fs.active || req < fs.min_size || !fs_filter_match(m->name))
		return false;
	struct fs_thread *t = in_helper ? &fs_help_t : &fs_main_t;
	if (t->epoch != fs.epoch) {
		uint64_t ord = in_helper ? helper_ordinal : 0, mix = ord;
		t->epoch = fs.epoch;
		t->rng = ord ? fs.seed ^ splitmix64(&mix) : fs.seed;
		t->count = 0;
		t->space = fs.space;
	}
	if (fs.probability <= 0.0 || fs.times == 0)
		return false;
	if (t->space > size) {
		t->space -= size;
		return false;
	}
	if (fs.interval > 1 && ++t->count % fs.interval)
		return false;
	if (fs.probability < 100.0 &&
	    (double)(splitmix64(&t->rng) >> 11) * 0x1.0p-53 * 100.0 >= fs.probability)
		return false;
	if (fs.times > 0)
		fs.times--;
	return true;
}

/* ------------------------------------------------------------------ */
/* Blocks                                                             */
/* ------------------------------------------------------------------ */

/*
 * The pattern of block @id over its first @filled bytes. Blocks up to
 * 64 KiB get it everywhere; larger ones (kmalloc-large) in their first
 * and last 4 KiB and in 64 bytes of every 4 KiB page between, so that the
 * pages between stay untouched (and unfaulted). Writes it (@write) or
 * compares it within [0, @upto); returns the first differing offset, or
 * SIZE_MAX.
 */
#define SPARSE_MIN ((size_t)64 << 10)

static size_t pat_range(uint8_t *p, const uint8_t *r, size_t lo, size_t hi, size_t upto, bool write)
{
	if (hi > upto)
		hi = upto;
	if (lo >= hi)
		return SIZE_MAX;
	if (write) {
		memcpy(p + lo, r + lo, hi - lo);
		return SIZE_MAX;
	}
	if (memcmp(p + lo, r + lo, hi - lo) == 0)
		return SIZE_MAX;
	while (p[lo] == r[lo])
		lo++;
	return lo;
}

static size_t pattern(void *pv, unsigned id, size_t filled, size_t upto, bool write)
{
	uint8_t *p = pv;
	const uint8_t *r = ref + pat_off(id);
	if (filled <= SPARSE_MIN)
		return pat_range(p, r, 0, filled, upto, write);
	size_t bad = pat_range(p, r, 0, 4096, upto, write);
	for (size_t o = 4096; bad == SIZE_MAX && o + 4096 < filled; o += 4096)
		bad = pat_range(p, r, o, o + 64, upto, write);
	if (bad == SIZE_MAX)
		bad = pat_range(p, r, filled - 4096, filled, upto, write);
	return bad;
}

static void fill(struct block *b)
{
	pattern(b->p, b->id, b->usable, b->usable, true);
}

static void check_content(const struct block *b)
{
	size_t i = pattern(b->p, b->id, b->usable, b->usable, false);
	if (i == SIZE_MAX)
		return;
	const uint8_t *p = b->p, *r = ref + pat_off(b->id);
	CHECK(0, "block #%u %p (%zu usable bytes, cache %s) corrupted at byte %zu: %#x, expected %#x",
	      b->id, b->p, b->usable, b->mc->name, i, p[i], r[i]);
}

static int blk_index(const void *p)
{
	return bmap_find(p);
}

/* Add a block the core returned; checks its placement. */
static struct block *blk_add(void *p, size_t req, size_t usable, size_t evsize, struct mcache *m,
			     uint32_t mask, int owner, size_t fp, bool cache_obj, bool stash)
{
	CHECK(nblocks < MAX_BLOCKS, "harness: too many blocks");
	CHECK(slab_owns(p), "slab_owns(%p) is false for a block just returned (cache %s)", p, m->name);
	iv_insert((uintptr_t)p, (uintptr_t)p + usable);
	int i = nblocks++;
	struct block *b = &blocks[i];
	*b = (struct block){ p, usable, req, evsize, fp, m, next_id++, mask, owner, cache_obj, stash, false };
	bmap_set(p, i);
	m->nlive++;
	m->dirty = true;
	live_bytes += usable;
	if (stash)
		nstash++;
	for (int h = 0; h < NH; h++)
		if (mask & (1u << h))
			hs[h].expect++;
	if (owner >= 0)
		group_charge(owner, fp, +1);
	return b;
}

/* Forget block @i (the caller frees it). */
static void blk_forget(int i)
{
	struct block *b = &blocks[i];
	iv_remove((uintptr_t)b->p);
	bmap_del(b->p);
	b->mc->nlive--;
	b->mc->dirty = true;
	live_bytes -= b->usable;
	if (b->stash)
		nstash--;
	for (int h = 0; h < NH; h++)
		if (b->mask & (1u << h))
			hs[h].expect--;
	if (b->owner >= 0)
		group_charge(b->owner, b->fp, -1);
	int last = --nblocks;
	if (i != last) {
		blocks[i] = blocks[last];
		bmap_set(blocks[i].p, i);
	}
}

static void xfree_add(const struct block *b)
{
	CHECK(nxfree < (int)(sizeof(xfrees) / sizeof(xfrees[0])), "harness: too many frees in one call");
	xfrees[nxfree++] = (struct xfree){ b->p, b->mask, b->mc->c, b->evsize, 0, MAX_REC };
}

/* Free block @i: contents checked, constructed state restored, the FREEs
 * it owes noted for the validation of the current call. */
static void blk_free(int i, bool by_cache)
{
	struct block *b = &blocks[i];
	check_content(b);
	void *p = b->p;
	struct mcache *m = b->mc;
	if (m->ctor)
		fz_ctor(p), ctor_calls--;
	xfree_add(b);
	struct xfree *x = &xfrees[nxfree - 1];
	x->rec_lo = nrec;
	bool cache_free = by_cache && b->cache_obj;
	blk_forget(i);
	if (cache_free)
		slab_cache_free(m->c, p);
	else
		slab_free(p);
	/* What came after is not this free's: the same memory may be handed
	 * out again within the same call (a block freed inside a handler). */
	x->rec_hi = nrec;
}

/* ------------------------------------------------------------------ */
/* Handlers                                                           */
/* ------------------------------------------------------------------ */

static const size_t stash_sizes[8] = { 1, 24, 100, 200, 777, 1024, 3000, 70000 };
static const slab_gfp_t stash_gfps[4] = { 0, SLAB_GFP_ZERO, SLAB_GFP_ACCOUNT, SLAB_GFP_ZERO | SLAB_GFP_ACCOUNT };

static struct mcache *kmalloc_target(size_t size, slab_gfp_t gfp);

static void rec_add(int h, enum slab_event ev, const struct slab_event_data *d, int ret)
{
	CHECK(nrec < MAX_REC, "harness: too many events in one call");
	recs[nrec++] = (struct rec){ h, ev, d->ptr, d->cache, d->size, d->gfp, ret, false };
}

static void page_event(struct handler *h, enum slab_event ev, const struct slab_event_data *d, bool accepted)
{
	struct mcache *m = mc_of(d->cache);
	CHECK(m, "page event for an unknown cache %p", (void *)d->cache);
	CHECK(m->kind != MC_LARGE, "page event for kmalloc-large");
	CHECK(d->size == m->slab_bytes, "%s of cache %s carries size %zu, the cache's slabs are %zu bytes",
	      ev == SLAB_EVENT_NEWPAGE ? "NEWPAGE" : "FREEPAGE", m->name, d->size, m->slab_bytes);
	uint32_t bit = 1u << h->id;
	m->dirty = true;
	if (ev == SLAB_EVENT_NEWPAGE) {
		if (!accepted)
			return;
		struct pent *e = pmap_get(d->ptr, true);
		CHECK(!(e->mask & bit), "handler %d got NEWPAGE of page %p (cache %s) twice without FREEPAGE",
		      h->id, d->ptr, m->name);
		CHECK(!e->mask || e->cache == d->cache, "page %p NEWPAGE'd for cache %s while held by another cache",
		      d->ptr, m->name);
		e->mask |= bit;
		e->cache = d->cache;
		m->pages[h->id]++;
	} else {
		struct pent *e = pmap_get(d->ptr, false);
		CHECK(e && (e->mask & bit), "handler %d got FREEPAGE of page %p (cache %s) without its NEWPAGE",
		      h->id, d->ptr, m->name);
		CHECK(e->cache == d->cache, "FREEPAGE of page %p names cache %s, its NEWPAGE another", d->ptr,
		      m->name);
		e->mask &= ~bit;
		m->pages[h->id]--;
		if (!e->mask)
			pmap_del(e);
	}
}

static void handler_inside(struct handler *h, enum slab_event ev, const struct slab_event_data *d)
{
	if (h->mode & HM_UNREG_TRY) {
		errno = 0;
		int r = slab_notifier_unregister(&h->nb);
		CHECK(r == -EDEADLK && errno == EDEADLK, "slab_notifier_unregister inside a handler returned %d errno %d",
		      r, errno);
	}
	if ((h->mode & HM_ALLOC_IN) && nstash < MAX_STASH && nblocks < MAX_BLOCKS - 4) {
		size_t sz = stash_sizes[h->rot % 8];
		slab_gfp_t g = stash_gfps[(h->rot / 8) % 4];
		h->rot++;
		errno = 0;
		void *q = slab_malloc(sz, g);
		CHECK(q, "slab_malloc(%zu, %#x) inside a handler failed, errno %d", sz, g, errno);
		struct mcache *m = kmalloc_target(sz, g);
		size_t usable = slab_usable_size(q);
		if (g & SLAB_GFP_ZERO)
			CHECK(all_zero(q, sz), "SLAB_GFP_ZERO block %p not zeroed (inside a handler)", q);
		struct block *b = blk_add(q, sz, usable, m->kind == MC_LARGE ? usable : m->size, m, 0, -1, 0, false, true);
		TR("      (inside handler %d) slab_malloc(%zu, %#x) = %p, kept\n", h->id, sz, g, q);
		fill(b);
		m->all_notified = false;   /* a quiet slab may have been made */
	}
	if ((h->mode & HM_FREE_IN) && nstash > 0) {
		for (int i = 0; i < nblocks; i++)
			if (blocks[i].stash && !blocks[i].pinned) {
				TR("      (inside handler %d) free %p\n", h->id, blocks[i].p);
				blk_free(i, false);
				break;
			}
	}
	if ((h->mode & HM_CACHE_IN) && ev != SLAB_EVENT_FREEPAGE) {
		struct mcache *m = mc_of(d->cache);
		if (m && m->kind != MC_LARGE) {
			errno = 0;
			void *o = slab_cache_alloc(d->cache, 0);
			CHECK(o, "slab_cache_alloc(%s) inside a handler failed, errno %d", m->name, errno);
			CHECK(!iv_overlaps((uintptr_t)o, (uintptr_t)o + m->size),
			      "object %p of %s allocated inside a handler overlaps a live block", o, m->name);
			CHECK(!m->ctor || ctor_state(o), "object %p of %s (inside a handler) not in its constructed state",
			      o, m->name);
			m->all_notified = false;
			slab_cache_free(d->cache, o);
		}
	}
}

static int handler_call(struct slab_notifier *nb, enum slab_event ev, const struct slab_event_data *d)
{
	struct handler *h = (struct handler *)nb;
	CHECK(pthread_equal(pthread_self(), actor), "handler %d called on a thread that makes no call (event %d)", h->id,
	      ev);
	CHECK(h->registered, "handler %d called (event %d, %p) while not registered", h->id, ev, d->ptr);
	CHECK(slab_in_handler(), "slab_in_handler() is false inside handler %d", h->id);
	int ret = (h->mode & HM_RET_OK) ? SLAB_NOTIFY_OK : SLAB_NOTIFY_DONE;
	bool may_veto = (ev == SLAB_EVENT_ALLOC && (h->mode & HM_VETO_ALLOC)) ||
			(ev == SLAB_EVENT_NEWPAGE && (h->mode & HM_VETO_PAGE));
	if (may_veto && h->veto_left != 0) {
		ret = veto_ret(h);
		if (h->veto_left > 0)
			h->veto_left--;
	}
	bool vetoed = (ret & SLAB_NOTIFY_STOP_MASK) && !(d->gfp & SLAB_GFP_NOFAIL);
	switch (ev) {
	case SLAB_EVENT_ALLOC:
	case SLAB_EVENT_FREE: {
		void **slot = slab_obj_ext(d->ptr, ext_slot);
		CHECK(slot, "slab_obj_ext(%p) is NULL in handler %d's %s of a notified object", d->ptr, h->id,
		      ev == SLAB_EVENT_ALLOC ? "ALLOC" : "FREE");
		void *mark = (void *)((uintptr_t)d->ptr ^ 1);
		if (ev == SLAB_EVENT_ALLOC) {
			CHECK(!*slot || *slot == mark, "obj_ext slot of %p holds %p at ALLOC (handler %d)", d->ptr,
			      *slot, h->id);
			*slot = mark;
			if (!vetoed)
				h->balance++;
		} else {
			CHECK(*slot == mark, "obj_ext slot of %p holds %p at FREE (handler %d), not its ALLOC's mark",
			      d->ptr, *slot, h->id);
			h->balance--;
		}
		break;
	}
	case SLAB_EVENT_NEWPAGE:
	case SLAB_EVENT_FREEPAGE:
		page_event(h, ev, d, !vetoed);
		break;
	default:
		CHECK(0, "unknown event %d", ev);
	}
	rec_add(h->id, ev, d, ret);
	if (ev != SLAB_EVENT_FREEPAGE && inside_depth == 0 && (h->mode & (HM_ALLOC_IN | HM_FREE_IN | HM_CACHE_IN |
									 HM_UNREG_TRY))) {
		inside_depth++;
		handler_inside(h, ev, d);
		inside_depth--;
	}
	return ret;
}

static void handler_register(struct handler *h)
{
	memset(&h->nb, 0, sizeof(h->nb));
	h->nb.call = handler_call;
	h->nb.priority = h_prio[h->id];
	h->nb.arg = h;
	h->registered = true;   /* before: no event can come in between */
	h->seq = reg_seq++;
	chain_cache_n = -1;
	int r = slab_notifier_register(&h->nb);
	CHECK(r == 0, "slab_notifier_register(handler %d) returned %d", h->id, r);
	errno = 0;
	r = slab_notifier_register(&h->nb);
	CHECK(r == -EEXIST && errno == EEXIST, "second slab_notifier_register returned %d errno %d", r, errno);
}

static void handler_unregister(struct handler *h)
{
	int r = slab_notifier_unregister(&h->nb);
	CHECK(r == 0, "slab_notifier_unregister(handler %d) returned %d", h->id, r);
	h->registered = false;
	chain_cache_n = -1;
	errno = 0;
	r = slab_notifier_unregister(&h->nb);
	CHECK(r == -ENOENT && errno == ENOENT, "second slab_notifier_unregister returned %d errno %d", r, errno);
	/* It never hears of what it accepted. */
	uint32_t bit = 1u << h->id;
	for (int i = 0; i < nblocks; i++)
		blocks[i].mask &= ~bit;
	h->balance = h->expect = 0;
	for (unsigned i = 0; i < (1u << PMAP_BITS); i++) {
		struct pent *e = &pmap[i];
		while (e->base && (e->mask & bit)) {
			struct mcache *m = mc_of(e->cache);
			if (m)
				m->pages[h->id]--;
			e->mask &= ~bit;
			if (e->mask)
				break;
			pmap_del(e);   /* shifts another entry into e: look again */
		}
	}
	for (int i = 0; i < NMC; i++) {
		mcs[i].pages[h->id] = 0;
		if (h->id == H_OBS)
			mcs[i].all_notified = false;
	}
}

static void handler_idle(struct handler *h)
{
	h->mode = 0;
	h->err_sel = 0;
	h->veto_left = -1;
}

/* ------------------------------------------------------------------ */
/* Memory-group callbacks                                             */
/* ------------------------------------------------------------------ */

static void memcg_event(struct slab_memcg *g, enum slab_memcg_event ev, void *arg)
{
	int gid = (int)(intptr_t)arg;
	CHECK(gid >= 0 && gid < MAX_GROUPS && grp[gid].used && grp[gid].g == g, "memcg event for unknown group");
	if (ev == SLAB_MEMCG_EVENT_VETO) {
		call_veto_events++;
		call_veto_gid = gid;
		grp[gid].vetoes++;
	}
}

/* Reclaim: free our charged blocks of the group's subtree, oldest first. */
static size_t memcg_reclaim(struct slab_memcg *g, size_t want, slab_gfp_t gfp, void *arg)
{
	(void)gfp;
	int gid = (int)(intptr_t)arg;
	CHECK(gid > 0 && gid < MAX_GROUPS && grp[gid].live && grp[gid].g == g, "reclaim callback for group %d", gid);
	size_t got = 0;
	int n = 0;
	for (int i = 0; i < nblocks && got < want && n < 8;) {
		struct block *b = &blocks[i];
		if (b->owner >= 0 && !b->pinned && group_in_subtree(b->owner, gid)) {
			got += b->fp;
			n++;
			TR("    reclaim frees #%u %p (%zu bytes)\n", b->id, b->p, b->fp);
			blk_free(i, true);
			continue;   /* another block moved into slot i */
		}
		i++;
	}
	return got;
}

/* ------------------------------------------------------------------ */
/* Validation of one call                                             */
/* ------------------------------------------------------------------ */

struct acall {                  /* an allocation attempt */
	struct mcache *mc;
	slab_gfp_t gfp;         /* as the events carry it */
	size_t req;
};

struct aresult {
	uint32_t mask;
	int owner;
	size_t fp, evsize;
};

static void begin_call(void)
{
	nrec = 0;
	nxfree = 0;
	call_veto_events = 0;
	call_veto_gid = -1;
	call_injected0 = slab_fault_injected();
}

static void validate_frees(void)
{
	for (int f = 0; f < nxfree; f++) {
		struct xfree *x = &xfrees[f];
		int want[NH];
		int n = chain_mine(want, x->mask), k = 0;
		for (int i = x->rec_lo; i < nrec && i < x->rec_hi; i++) {
			struct rec *r = &recs[i];
			if (r->used || r->ptr != x->p || (r->ev != SLAB_EVENT_ALLOC && r->ev != SLAB_EVENT_FREE))
				continue;
			CHECK(r->ev == SLAB_EVENT_FREE, "freeing %p: handler %d got ALLOC", x->p, r->h);
			CHECK(k < n, "freeing %p: handler %d got a FREE it is not owed (owed: mask %#x)", x->p, r->h,
			      x->mask);
			CHECK(r->h == want[k], "freeing %p: FREE went to handler %d, expected handler %d (chain order)",
			      x->p, r->h, want[k]);
			CHECK(r->gfp == 0 && r->cache == x->cache && r->size == x->evsize,
			      "FREE of %p carries gfp %#x cache %p size %zu, expected 0, %p, %zu", x->p, r->gfp,
			      (void *)r->cache, r->size, (void *)x->cache, x->evsize);
			r->used = true;
			k++;
		}
		CHECK(k == n, "freeing %p: %d of its %d FREE events delivered (owed by mask %#x)", x->p, k, n, x->mask);
	}
}

static void check_no_more_records(const char *what)
{
	for (int i = 0; i < nrec; i++)
		CHECK(recs[i].used || recs[i].ev == SLAB_EVENT_FREEPAGE,
		      "%s: unexpected event %d for %p (cache %p) to handler %d", what, recs[i].ev, recs[i].ptr,
		      (void *)recs[i].cache, recs[i].h);
}

/* A call that allocates and frees an object of its own through the public
 * API (slab_fault_inject makes sure the kmalloc caches exist with
 * slab_free(slab_malloc(0, 0))): its events must pair up within the call. */
static void consume_transient(const char *what)
{
	for (int i = 0; i < nrec; i++) {
		struct rec *r = &recs[i];
		if (!r->used && r->ev == SLAB_EVENT_NEWPAGE)
			r->used = true;   /* paired in the page map */
		if (r->used || r->ev != SLAB_EVENT_ALLOC)
			continue;
		void *x = r->ptr;
		int bal[NH] = { 0 };
		for (int j = i; j < nrec; j++) {
			struct rec *q = &recs[j];
			if (q->used || q->ptr != x || (q->ev != SLAB_EVENT_ALLOC && q->ev != SLAB_EVENT_FREE))
				continue;
			CHECK(q->cache == r->cache, "%s: events of %p name two caches", what, x);
			bool vetoed = (q->ret & SLAB_NOTIFY_STOP_MASK) && !(q->gfp & SLAB_GFP_NOFAIL);
			if (q->ev == SLAB_EVENT_ALLOC)
				bal[q->h] += !vetoed;
			else
				bal[q->h]--;
			CHECK(bal[q->h] >= 0, "%s: handler %d got FREE of %p before its ALLOC", what, q->h, x);
			q->used = true;
		}
		for (int h = 0; h < NH; h++)
			CHECK(bal[h] == 0, "%s: handler %d: the call's own object %p was not freed (or FREE lost)", what,
			      h, x);
	}
}

static void end_call_plain(const char *what)
{
	validate_frees();
	check_no_more_records(what);
	CHECK(call_veto_events == 0, "%s: %d memcg VETO events", what, call_veto_events);
	CHECK(slab_fault_injected() == call_injected0, "%s: failslab injected %lu failures", what,
	      slab_fault_injected() - call_injected0);
}

/*
 * An allocation attempt returned @res (errno @err). Check every event our
 * handlers saw against the chain's rules, predict failslab's and memcg's
 * decisions, and return what the new block owes (mask, charge).
 */
static bool end_call_alloc(const struct acall *a, void *res, int err, struct aresult *out)
{
	validate_frees();
	int mine[NH];
	int nm = chain_mine(mine, registered_mask());
	bool nofail = a->gfp & SLAB_GFP_NOFAIL;
	struct mcache *m = a->mc;
	*out = (struct aresult){ 0, -1, 0, m->kind == MC_LARGE ? 0 : m->size };

	/* NEWPAGE: to our handlers in chain order until a veto. */
	bool page_veto = false;
	int page_err = 0;
	for (int i = 0; i < nrec; i++) {
		if (recs[i].used || recs[i].ev != SLAB_EVENT_NEWPAGE)
			continue;
		void *base = recs[i].ptr;
		int k = 0;
		for (int j = i; j < nrec; j++) {
			struct rec *r = &recs[j];
			if (r->used || r->ev != SLAB_EVENT_NEWPAGE || r->ptr != base)
				continue;
			CHECK(r->cache == m->c, "NEWPAGE for cache %p during an allocation from %s", (void *)r->cache,
			      m->name);
			CHECK(r->gfp == a->gfp, "NEWPAGE carries gfp %#x, the allocation %#x", r->gfp, a->gfp);
			CHECK(k < nm && r->h == mine[k], "NEWPAGE %p went to handler %d, expected %d (chain order)", base,
			      r->h, k < nm ? mine[k] : -1);
			r->used = true;
			k++;
			if ((r->ret & SLAB_NOTIFY_STOP_MASK) && !nofail) {
				CHECK(!page_veto, "two NEWPAGE vetoes in one allocation");
				page_veto = true;
				page_err = errno_decode(r->ret);
				break;
			}
		}
		CHECK(page_veto || k == nm, "NEWPAGE %p reached %d of %d handlers without a veto", base, k, nm);
	}

	/* The object's own events: one object, x. */
	int xi[64];
	int nx = 0;
	void *x = NULL;
	for (int i = 0; i < nrec; i++) {
		struct rec *r = &recs[i];
		if (r->used || (r->ev != SLAB_EVENT_ALLOC && r->ev != SLAB_EVENT_FREE))
			continue;
		CHECK(!x || r->ptr == x, "events for two new objects in one allocation: %p and %p", x, r->ptr);
		x = r->ptr;
		CHECK(nx < 64, "too many events for one allocation");
		xi[nx++] = i;
		r->used = true;
	}
	check_no_more_records("allocation");
	unsigned long injected = slab_fault_injected() - call_injected0;

	if (!m->notify) {
		CHECK(nx == 0 && !page_veto, "allocation from %s (notification off) produced events", m->name);
		CHECK(res, "allocation from %s (notification off, no veto possible) failed, errno %d", m->name, err);
		CHECK(injected == 0 && call_veto_events == 0, "allocation from %s (off) vetoed by failslab or memcg",
		      m->name);
		if (m->kind == MC_LARGE)
			out->evsize = slab_usable_size(res);
		return true;
	}
	if (page_veto) {
		CHECK(nx == 0, "ALLOC events after a NEWPAGE veto");
		CHECK(!res, "allocation succeeded although its NEWPAGE was vetoed");
		CHECK(err == page_err, "NEWPAGE veto: errno %d, expected %d", err, page_err);
		CHECK(injected == 0 && call_veto_events == 0, "NEWPAGE veto and failslab/memcg veto together");
		return false;
	}
	/* Handler 0 runs first and is always registered: it saw the ALLOC. */
	CHECK(nx > 0, "notified allocation from %s: no ALLOC event (result %p, errno %d)", m->name, res, err);
	size_t evsize = recs[xi[0]].size;
	if (m->kind != MC_LARGE)
		CHECK(evsize == m->size, "ALLOC from %s carries size %zu, object size %zu", m->name, evsize, m->size);
	size_t fp = m->kind == MC_LARGE ? round_up(evsize, 4096) : m->stride;   /* large: its pages */
	bool charged = (m->flags & SLAB_ACCOUNT) || (a->gfp & SLAB_GFP_ACCOUNT);

	struct part parts[NH + 2];
	int np = chain_parts(parts), xk = 0, ncalled = 0;
	int called[NH];
	int vetoer = -1, exp_err = 0;   /* P_MINE, P_FAILSLAB, P_MEMCG */
	bool memcg_charged = false;
	for (int i = 0; i < np && vetoer < 0; i++) {
		struct part *p = &parts[i];
		if (p->kind == P_MINE) {
			CHECK(xk < nx, "allocation from %s: handler %d was not called (ALLOC went to %d handlers)",
			      m->name, p->h, xk);
			struct rec *r = &recs[xi[xk++]];
			CHECK(r->ev == SLAB_EVENT_ALLOC && r->h == p->h,
			      "allocation from %s: event %d to handler %d, expected ALLOC to handler %d", m->name, r->ev,
			      r->h, p->h);
			CHECK(r->gfp == a->gfp && r->cache == m->c && r->size == evsize,
			      "ALLOC carries gfp %#x cache %p size %zu; expected %#x %p %zu", r->gfp, (void *)r->cache,
			      r->size, a->gfp, (void *)m->c, evsize);
			called[ncalled++] = p->h;
			if ((r->ret & SLAB_NOTIFY_STOP_MASK) && !nofail) {
				vetoer = P_MINE;
				exp_err = errno_decode(r->ret);
			}
		} else if (p->kind == P_FAILSLAB) {
			if (!nofail && fs_should_fail(m, a->req, evsize)) {
				vetoer = P_FAILSLAB;
				exp_err = ENOMEM;
			}
		} else if (charged) {
			if (!nofail && !group_fits(acting_group(), fp)) {
				vetoer = P_MEMCG;
				exp_err = ENOMEM;
			} else {
				memcg_charged = true;
			}
		}
	}
	CHECK(injected == (vetoer == P_FAILSLAB), "failslab injected %lu failure(s); the model predicts %d (%s)",
	      injected, vetoer == P_FAILSLAB, m->name);
	if (vetoer >= 0) {
		int nb = vetoer == P_MINE ? ncalled - 1 : ncalled;
		for (int j = nb - 1; j >= 0; j--) {
			CHECK(xk < nx, "veto: handler %d did not get its rollback FREE", called[j]);
			struct rec *r = &recs[xi[xk++]];
			CHECK(r->ev == SLAB_EVENT_FREE && r->h == called[j],
			      "veto: event %d to handler %d, expected the rollback FREE to handler %d", r->ev, r->h,
			      called[j]);
			CHECK(r->gfp == a->gfp && r->cache == m->c && r->size == evsize,
			      "rollback FREE carries gfp %#x, expected the allocation's %#x", r->gfp, a->gfp);
		}
		CHECK(xk == nx, "veto: %d extra event(s) after the rollback", nx - xk);
		CHECK(!res, "vetoed allocation (by %s) returned %p",
		      vetoer == P_MINE ? "a handler" : vetoer == P_FAILSLAB ? "failslab" : "memcg", res);
		CHECK(err == exp_err, "vetoed allocation: errno %d, expected %d", err, exp_err);
		if (vetoer == P_MEMCG) {
			CHECK(call_veto_events == 1, "memcg veto: %d VETO events", call_veto_events);
			CHECK(group_in_subtree(acting_group(), call_veto_gid) && !group_fits(call_veto_gid, fp) &&
				      (grp[call_veto_gid].usage > grp[call_veto_gid].max ||
				       fp > grp[call_veto_gid].max - grp[call_veto_gid].usage),
			      "memcg VETO event at group %d, which is not a limiting ancestor", call_veto_gid);
		} else {
			CHECK(call_veto_events == 0, "VETO event without a memcg veto");
		}
		return false;
	}
	CHECK(xk == nx, "allocation: %d extra event(s) (a FREE of the new object?)", nx - xk);
	CHECK(res, "allocation from %s failed (errno %d) with no veto", m->name, err);
	CHECK(res == x, "allocation returned %p, the ALLOC events were for %p", res, x);
	CHECK(call_veto_events == 0, "VETO event for an allocation that succeeded");
	for (int j = 0; j < ncalled; j++)
		out->mask |= 1u << called[j];
	if (memcg_charged) {
		out->owner = acting_group();
		out->fp = fp;
	}
	out->evsize = evsize;
	if (m->kind == MC_LARGE)
		CHECK(evsize == slab_usable_size(res), "large ALLOC carries size %zu, usable %zu", evsize,
		      slab_usable_size(res));
	return true;
}

/* ------------------------------------------------------------------ */
/* Whole-state checks                                                 */
/* ------------------------------------------------------------------ */

/* After every operation: the handlers' balances, every live group, and
 * the caches the operation touched (@all: every cache). */
static void check_state_caches(bool all)
{
	CHECK(!slab_in_handler(), "slab_in_handler() true outside handlers");
	for (int h = 0; h < NH; h++)
		CHECK(hs[h].balance == hs[h].expect,
		      "handler %d: accepted ALLOCs - FREEs = %ld, but %ld live blocks of ours owe it a FREE", h,
		      hs[h].balance, hs[h].expect);
	for (int g = 0; g < MAX_GROUPS; g++) {
		if (!grp[g].live)
			continue;
		struct slab_memcg_stat st;
		int r = slab_memcg_stat(grp[g].g, &st);
		CHECK(r == 0, "slab_memcg_stat(group %d) returned %d", g, r);
		CHECK(st.usage == grp[g].usage && st.nr_objects == (unsigned long)grp[g].objs,
		      "group %d: usage %zu objects %lu, the model has %zu bytes in %ld objects", g, st.usage,
		      st.nr_objects, grp[g].usage, grp[g].objs);
		CHECK(st.max == grp[g].max && st.high == grp[g].high, "group %d: max %zu high %zu, set %zu %zu", g,
		      st.max, st.high, grp[g].max, grp[g].high);
		CHECK(st.failcnt - grp[g].failcnt0 == grp[g].vetoes, "group %d: failcnt %lu, VETO events %lu", g,
		      st.failcnt - grp[g].failcnt0, grp[g].vetoes);
		CHECK(st.peak >= st.usage, "group %d: peak %zu below usage %zu", g, st.peak, st.usage);
	}
	for (int i = 0; i < NMC; i++) {
		struct mcache *m = &mcs[i];
		if (!m->live || !(all || m->dirty))
			continue;
		m->dirty = false;
		CHECK(slab_cache_notify_enabled(m->c) == m->notify, "cache %s: notification %d, the model says %d",
		      m->name, slab_cache_notify_enabled(m->c), m->notify);
		if (m->kind == MC_KMALLOC)
			continue;   /* the library's own allocations live there */
		struct slab_cache_info info;
		int r = slab_cache_info(m->c, &info);
		CHECK(r == 0, "slab_cache_info(%s) returned %d", m->name, r);
		CHECK(info.active_objs == (unsigned long)m->nlive, "cache %s: active_objs %lu, the model has %ld",
		      m->name, info.active_objs, m->nlive);
		CHECK(info.notify == m->notify, "cache %s: info.notify %d", m->name, info.notify);
		if (m->kind != MC_LARGE && m->all_notified)
			CHECK(info.num_slabs == (unsigned long)m->pages[H_OBS],
			      "cache %s: %lu slabs, the observer holds %ld pages (every NEWPAGE notified)", m->name,
			      info.num_slabs, m->pages[H_OBS]);
	}
}

static void check_state(void)
{
	check_state_caches(false);
}

static void check_all_blocks(void)
{
	for (int i = 0; i < nblocks; i++) {
		struct block *b = &blocks[i];
		check_content(b);
		CHECK(slab_owns(b->p), "slab_owns(%p) false for a live block", b->p);
		size_t u = slab_usable_size(b->p);
		CHECK(u == b->usable, "slab_usable_size(%p) = %zu, was %zu", b->p, u, b->usable);
	}
}

/* ------------------------------------------------------------------ */
/* Allocation targets                                                 */
/* ------------------------------------------------------------------ */

static int kclass_index(size_t size)
{
	for (int i = 0; i < N_KM; i++)
		if (kclass[i] >= size)
			return i;
	return -1;
}

/* The cache slab_malloc(size, gfp) uses (the header's size classes). */
static struct mcache *kmalloc_target(size_t size, slab_gfp_t gfp)
{
	if (size > SLAB_KMALLOC_MAX)
		return &mcs[MC_LARGE_I];
	int i = kclass_index(size);
	return &mcs[(gfp & SLAB_GFP_ACCOUNT) ? MC_CG0 + i : MC_KM0 + i];
}

static struct mcache *aligned_target(size_t size, size_t align, slab_gfp_t gfp)
{
	if (align <= 8)
		return kmalloc_target(size, gfp);
	if (align <= 16)
		return kmalloc_target(size < 16 ? 16 : size, gfp);
	size_t want = size < align ? align : size;
	if (want > SLAB_KMALLOC_MAX)
		return &mcs[MC_LARGE_I];
	size_t pow2 = (size_t)1 << (64 - __builtin_clzl(want - 1));
	if (pow2 < want)
		pow2 = want;
	return kmalloc_target(pow2, gfp);
}

static slab_gfp_t fix_gfp(slab_gfp_t gfp)
{
	if (!cfg.allow_throttle && high_above(acting_group()))
		gfp |= SLAB_GFP_NOWAIT;
	return gfp;
}

static bool room_for(size_t bytes)
{
	return nblocks < MAX_BLOCKS - MAX_STASH - 8 && live_bytes + bytes < MAX_LIVE_BYTES;
}

/* After a successful kmalloc-family allocation: placement and contents. */
static struct block *accept_kmalloc(void *p, size_t req, size_t align, slab_gfp_t gfp, struct mcache *m,
				    const struct aresult *ar)
{
	size_t usable = slab_usable_size(p);
	if (m->kind == MC_LARGE) {
		CHECK(usable >= req, "large block %p: usable %zu < %zu requested", p, usable, req);
		CHECK(((uintptr_t)p & 4095) == 0, "large block %p not page-aligned", p);
	} else {
		CHECK(usable == m->size, "block %p from %s: usable %zu, the class is %zu", p, m->name, usable, m->size);
		size_t natural = m->size == 8 ? 8 : 16;
		CHECK(((uintptr_t)p & (natural - 1)) == 0, "block %p of %s not %zu-aligned", p, m->name, natural);
	}
	CHECK(((uintptr_t)p & (align - 1)) == 0, "block %p not aligned to %zu", p, align);
	if (gfp & SLAB_GFP_ZERO)
		CHECK(all_zero(p, req), "SLAB_GFP_ZERO block %p (%zu bytes, %s) not zeroed", p, req, m->name);
	struct block *b = blk_add(p, req, usable, ar->evsize ? ar->evsize : usable, m, ar->mask, ar->owner, ar->fp,
				  false, false);
	fill(b);
	return b;
}

/* ------------------------------------------------------------------ */
/* Operations                                                         */
/* ------------------------------------------------------------------ */

enum {
	OP_MALLOC, OP_FREE, OP_REALLOC, OP_ALIGNED, OP_USABLE,
	OP_CACHE_CREATE, OP_CACHE_ALLOC, OP_CACHE_BULK, OP_CACHE_SHRINK, OP_CACHE_DESTROY,
	OP_SET_NOTIFY, OP_HANDLER_MODE, OP_HANDLER_TOGGLE,
	OP_MEMCG_CREATE, OP_MEMCG_DESTROY, OP_MEMCG_ENTER, OP_MEMCG_LIMIT, OP_MEMCG_MISC, OP_MEMCG_RECLAIM,
	OP_FAULT_INJECT, OP_FAULT_STOP, OP_RCU_FREE, OP_CHECK_ALL, OP_FREE_MANY, OP_INFO,
	OP_RCU_BARRIER, OP_THREAD,
	NR_OPS
};

static const char *const op_names[NR_OPS] = {
	"malloc", "free", "realloc", "malloc_aligned", "usable_size",
	"cache_create", "cache_alloc", "cache_bulk", "cache_shrink", "cache_destroy",
	"set_notify", "handler_mode", "handler_toggle",
	"memcg_create", "memcg_destroy", "memcg_enter", "memcg_limit", "memcg_misc", "memcg_reclaim",
	"fault_inject", "fault_stop", "rcu_free", "check_all", "free_many", "info",
	"rcu_barrier", "thread",
};

static size_t pick_size(uint8_t sel, uint16_t v)
{
	switch (sel % 8) {
	case 0: return v % 17;
	case 1: return v % 257;
	case 2: return v % 4097;
	case 3: return v % 65537;
	case 4: return SLAB_KMALLOC_MAX + 1 + (size_t)v * 5 % (MAX_LARGE_REQ - SLAB_KMALLOC_MAX);
	case 5: {
		size_t c = kclass[v % N_KM];
		int d = (int)((v >> 4) % 3) - 1;   /* the class, one below, one above */
		return (size_t)((long)c + d);
	}
	case 6: return v % 1025;
	default: return v % 97;
	}
}

static const slab_gfp_t malloc_gfps[16] = {
	0, 0, 0, SLAB_GFP_ZERO, SLAB_GFP_ACCOUNT, SLAB_GFP_ACCOUNT, SLAB_GFP_ACCOUNT | SLAB_GFP_ZERO,
	SLAB_GFP_NOFAIL, SLAB_GFP_ACCOUNT | SLAB_GFP_NOFAIL, SLAB_GFP_NOWAIT, SLAB_GFP_ACCOUNT | SLAB_GFP_NOWAIT,
	SLAB_GFP_ZERO | SLAB_GFP_NOFAIL, 0, SLAB_GFP_ACCOUNT, SLAB_GFP_ZERO | SLAB_GFP_ACCOUNT | SLAB_GFP_NOFAIL, 0,
};

static const slab_gfp_t cache_gfps[8] = {
	0, 0, SLAB_GFP_ZERO, SLAB_GFP_NOFAIL, SLAB_GFP_ZERO | SLAB_GFP_NOFAIL, SLAB_GFP_NOWAIT, 0, SLAB_GFP_ZERO,
};

static void op_malloc(struct input *in)
{
	uint8_t sel = in_u8(in);
	uint16_t v = in_u16(in);
	slab_gfp_t gfp = fix_gfp(malloc_gfps[in_u8(in) % 16]);
	size_t size = pick_size(sel, v);
	if (!room_for(size + 4096))
		return;
	struct mcache *m = kmalloc_target(size, gfp);
	TR("  slab_malloc(%zu, %#x) -> %s\n", size, gfp, m->name);
	struct acall a = { m, gfp, size };
	struct aresult ar;
	begin_call();
	errno = 0;
	void *p = slab_malloc(size, gfp);
	int err = errno;
	if (end_call_alloc(&a, p, err, &ar))
		accept_kmalloc(p, size, 1, gfp, m, &ar);
	TR("    = %p errno %d\n", p, p ? 0 : err);
}

static void op_aligned(struct input *in)
{
	uint8_t sel = in_u8(in);
	uint16_t v = in_u16(in);
	uint8_t asel = in_u8(in);
	slab_gfp_t gfp = fix_gfp(malloc_gfps[in_u8(in) % 16]);
	size_t size = pick_size(sel, v);
	size_t align;
	switch (asel >> 5) {
	case 0: align = (size_t)1 << (asel % 8); break;          /* 1 .. 128 */
	case 1: align = (size_t)1 << (asel % 13); break;         /* .. 4096 */
	case 2: align = (size_t)1 << (asel % 17); break;         /* .. 64 KiB */
	case 3: align = (size_t)1 << (asel % 21); break;         /* .. 1 MiB */
	case 4: align = asel % 2 ? 0 : 3 * ((size_t)1 << (asel % 8)); break;   /* invalid */
	case 5: align = SLAB_MAX_ALIGN << 1; break;              /* too large */
	default: align = 64; break;
	}
	if (size > MAX_LARGE_REQ / 2 && align > 4096)
		size = MAX_LARGE_REQ / 2;
	TR("  slab_malloc_aligned(%zu, %zu, %#x)\n", size, align, gfp);
	if (!is_pow2(align) || align > SLAB_MAX_ALIGN) {
		begin_call();
		errno = 0;
		void *p = slab_malloc_aligned(size, align, gfp);
		CHECK(!p && errno == EINVAL, "slab_malloc_aligned(%zu, %zu) = %p errno %d, expected EINVAL", size, align,
		      p, errno);
		end_call_plain("slab_malloc_aligned(EINVAL)");
		return;
	}
	size_t want = size < align ? align : size;
	if (!room_for(2 * want + 8192))
		return;
	struct mcache *m = aligned_target(size, align, gfp);
	struct acall a = { m, gfp, size };
	struct aresult ar;
	begin_call();
	errno = 0;
	void *p = slab_malloc_aligned(size, align, gfp);
	int err = errno;
	if (end_call_alloc(&a, p, err, &ar))
		accept_kmalloc(p, size, align, gfp, m, &ar);
	TR("    = %p (%s) errno %d\n", p, m->name, p ? 0 : err);
}

static int pick_block(uint8_t sel)
{
	return nblocks ? sel % nblocks : -1;
}

static void op_free(struct input *in)
{
	int i = pick_block(in_u8(in));
	bool by_cache = in_u8(in) & 1;
	if (i < 0)
		return;
	TR("  free #%u %p (%s)%s\n", blocks[i].id, blocks[i].p, blocks[i].mc->name,
	   by_cache && blocks[i].cache_obj ? " by slab_cache_free" : "");
	begin_call();
	blk_free(i, by_cache);
	end_call_plain("free");
}

static void op_free_many(struct input *in)
{
	uint8_t start = in_u8(in), n = (uint8_t)(in_u8(in) % 48 + 1);
	for (int k = 0; k < n && nblocks; k++) {
		int i = (start + k) % nblocks;
		begin_call();
		blk_free(i, k & 1);
		end_call_plain("free_many");
	}
}

static void op_realloc(struct input *in)
{
	int i = pick_block(in_u8(in));
	uint8_t sel = in_u8(in);
	uint16_t v = in_u16(in);
	slab_gfp_t gfp = fix_gfp(malloc_gfps[in_u8(in) % 16]);
	if (i < 0 || blocks[i].cache_obj)
		return;   /* realloc of kmalloc blocks only */
	size_t size = (sel & 0xf0) == 0xf0 ? 0 : pick_size(sel, v);
	if (!room_for(size + 8192))
		return;
	struct block *b = &blocks[i];
	check_content(b);
	void *old = b->p;
	unsigned id = b->id;
	size_t old_usable = b->usable;
	b->pinned = true;
	struct mcache *m = kmalloc_target(size, gfp);
	TR("  slab_realloc(#%u %p [%zu], %zu, %#x) -> %s\n", id, old, old_usable, size, gfp, m->name);
	if (size == 0) {
		begin_call();
		b->pinned = false;
		xfree_add(b);
		blk_forget(i);
		errno = 0;
		void *p = slab_realloc(old, 0, gfp);
		CHECK(!p, "slab_realloc(p, 0) returned %p", p);
		end_call_plain("realloc(0)");
		return;
	}
	slab_gfp_t evgfp = gfp & ~SLAB_GFP_ZERO;
	struct acall a = { m, evgfp, size };
	begin_call();
	errno = 0;
	void *p = slab_realloc(old, size, gfp);
	int err = errno;
	i = blk_index(old);
	CHECK(i >= 0, "harness: block under realloc was freed");
	b = &blocks[i];
	b->pinned = false;
	if (p == old) {
		/* Kept in place (or a large block resized in place). */
		end_call_plain("realloc in place");
		size_t u = slab_usable_size(p);
		CHECK(u >= size, "realloc in place: usable %zu < %zu", u, size);
		if (u != b->usable) {
			CHECK(b->mc->kind == MC_LARGE, "realloc in place changed the usable size of a %s block",
			      b->mc->name);
			CHECK(!(gfp & SLAB_GFP_ZERO) || size <= old_usable || all_zero((char *)p + old_usable, size - old_usable),
			      "realloc in place with SLAB_GFP_ZERO: new bytes not zeroed");
			/* Contents up to the old extent are kept. */
			CHECK(pattern(p, id, old_usable, u < old_usable ? u : old_usable, false) == SIZE_MAX,
			      "realloc in place lost the contents");
			iv_remove((uintptr_t)p);
			live_bytes -= b->usable;
			b->usable = u;
			b->evsize = u;
			live_bytes += u;
			iv_insert((uintptr_t)p, (uintptr_t)p + u);
			fill(b);
		}
		b->req = size;
		return;
	}
	if (!p) {
		struct aresult ar;
		bool ok = end_call_alloc(&a, NULL, err, &ar);
		CHECK(!ok, "harness: realloc failure accepted");
		check_content(&blocks[i]);
		return;
	}
	/* Moved: the old block is freed (after the new one was allocated). */
	size_t keep = size < old_usable ? size : old_usable;
	CHECK(pattern(p, id, old_usable, keep, false) == SIZE_MAX, "slab_realloc lost the contents (%zu bytes kept)",
	      keep);
	if ((gfp & SLAB_GFP_ZERO) && size > old_usable)
		CHECK(all_zero((char *)p + old_usable, size - old_usable), "slab_realloc SLAB_GFP_ZERO: tail not zeroed");
	xfree_add(b);
	blk_forget(i);
	struct aresult ar;
	bool large_quiet = m->kind == MC_LARGE && !m->notify;
	if (large_quiet) {
		/* kmalloc-large without notification: moved by mremap or by
		 * alloc + copy + free, no ALLOC either way. */
		validate_frees();
		check_no_more_records("quiet large realloc");
		ar = (struct aresult){ 0, -1, 0, slab_usable_size(p) };
	} else {
		bool ok = end_call_alloc(&a, p, 0, &ar);
		CHECK(ok, "harness: realloc success refused");
	}
	size_t usable = slab_usable_size(p);
	if (m->kind != MC_LARGE)
		CHECK(usable == m->size, "realloc'd block %p: usable %zu, class %zu", p, usable, m->size);
	else
		CHECK(usable >= size, "realloc'd large block: usable %zu < %zu", usable, size);
	struct block *nb = blk_add(p, size, usable, ar.evsize ? ar.evsize : usable, m, ar.mask, ar.owner, ar.fp, false,
				   false);
	/* Same pattern source, new id: refill all. */
	fill(nb);
	TR("    = %p\n", p);
}

static void op_usable(struct input *in)
{
	int i = pick_block(in_u8(in));
	if (i < 0)
		return;
	struct block *b = &blocks[i];
	CHECK(slab_usable_size(b->p) == b->usable, "slab_usable_size(%p) = %zu, was %zu", b->p,
	      slab_usable_size(b->p), b->usable);
	CHECK(slab_owns(b->p) && slab_owns((char *)b->p + b->usable - 1), "slab_owns false inside block %p", b->p);
	CHECK(slab_usable_size(NULL) == 0, "slab_usable_size(NULL) != 0");
	int local;
	CHECK(!slab_owns(&local) && !slab_owns(ref), "slab_owns true for memory it does not own");
}

/* Caches a test may allocate from: persistent and live input caches. */
static struct mcache *pick_user_cache(uint8_t sel)
{
	struct mcache *c[N_PERSIST + MAX_INPUT_CACHES];
	int n = 0;
	for (int i = MC_P0; i < NMC; i++)
		if (mcs[i].live)
			c[n++] = &mcs[i];
	return n ? c[sel % n] : NULL;
}

static struct mcache *pick_any_cache(uint8_t sel)
{
	if (sel < 160)
		return pick_user_cache(sel);
	return &mcs[sel % (MC_LARGE_I + 1)];
}

static void cache_refresh_geometry(struct mcache *m)
{
	struct slab_cache_info info;
	CHECK(slab_cache_info(m->c, &info) == 0, "slab_cache_info(%s) failed", m->name);
	m->stride = info.size;
	m->align = info.align;
	m->slab_bytes = info.slab_bytes;
	CHECK(strcmp(info.name, m->name) == 0 && strcmp(slab_cache_name(m->c), m->name) == 0,
	      "cache name %s, created as %s", info.name, m->name);
	if (m->kind == MC_LARGE)
		return;
	CHECK(info.object_size == m->size, "cache %s: object_size %zu, created with %zu", m->name, info.object_size,
	      m->size);
	CHECK(info.size >= m->size && info.size % info.align == 0 && slab_cache_size(m->c) == info.size,
	      "cache %s: stride %zu for size %zu align %zu", m->name, info.size, m->size, info.align);
	CHECK(info.objs_per_slab >= 1 && info.slab_bytes >= info.objs_per_slab * info.size,
	      "cache %s: %u objects of %zu in %zu-byte slabs", m->name, info.objs_per_slab, info.size, info.slab_bytes);
}

static void op_cache_create(struct input *in)
{
	uint16_t v = in_u16(in);
	uint8_t asel = in_u8(in), fsel = in_u8(in);
	int slot = -1;
	for (int i = MC_IN0; i < NMC; i++)
		if (!mcs[i].live) {
			slot = i;
			break;
		}
	if (slot < 0)
		return;
	size_t size;
	switch (fsel >> 6) {
	case 0: size = v % 129; break;
	case 1: size = v % 1025; break;
	case 2: size = v % 8193; break;
	default: size = (v & 0xff) == 0xff ? SLAB_MAX_OBJECT_SIZE + 1 : (size_t)v * 4 + (v & 3); break;
	}
	static const size_t aligns[16] = { 0, 0, 0, 8, 16, 32, 64, 128, 256, 4096, 0, 0, 3, 24, 1u << 16, 1u << 19 };
	size_t align = aligns[asel % 16];
	slab_flags_t flags = 0;
	if (fsel & 1)
		flags |= SLAB_HWCACHE_ALIGN;
	if (fsel & 2)
		flags |= SLAB_NOTIFY;
	if (fsel & 4)
		flags |= SLAB_ACCOUNT;
	if ((fsel & 0x28) == 0x28 && (asel & 0x30) == 0x30)
		flags |= SLAB_TYPESAFE_BY_RCU;   /* rare: its destroy waits ~10 ms */
	if ((asel & 0xf0) == 0xf0)
		flags |= 0x1000;  /* an unknown flag (0x100 is SLAB_CONSISTENCY_CHECKS) */
	bool ctor = fsel & 0x10 ? true : false;
	if (ctor && size < 8)
		size = 8;
	if ((flags & SLAB_TYPESAFE_BY_RCU) && barriers_left <= 0)
		flags &= ~SLAB_TYPESAFE_BY_RCU;   /* its destroy waits for an rcu_barrier */
	struct mcache *m = &mcs[slot];
	snprintf(m->name, sizeof(m->name), "fz%d", slot - MC_IN0);
	bool einval = size == 0 || size > SLAB_MAX_OBJECT_SIZE || (align & (align - 1)) || (flags & 0x1000);
	/* The stride after alignment: the header bounds it by what a slab
	 * holds; past SLAB_MAX_OBJECT_SIZE either answer is accepted. */
	size_t a = align ? align : 8;
	if ((flags & SLAB_HWCACHE_ALIGN) && a < 64)
		a = 64;
	size_t stride = round_up(round_up(size ? size : 1, 8) + ((ctor || (flags & SLAB_TYPESAFE_BY_RCU)) ? 8 : 0),
				 is_pow2(a) ? a : 8);
	bool maybe = !einval && stride > SLAB_MAX_OBJECT_SIZE;
	TR("  slab_cache_create(%s, %zu, %zu, %#x, ctor %d)\n", m->name, size, align, flags, ctor);
	begin_call();
	errno = 0;
	struct slab_cache *c = slab_cache_create(m->name, size, align, flags, ctor ? fz_ctor : NULL);
	int err = errno;
	end_call_plain("slab_cache_create");
	if (einval) {
		CHECK(!c && err == EINVAL, "slab_cache_create(%zu, %zu, %#x) = %p errno %d, expected EINVAL", size, align,
		      flags, (void *)c, err);
		return;
	}
	if (!c) {
		CHECK(maybe && err == EINVAL, "slab_cache_create(%zu, %zu, %#x) failed, errno %d", size, align, flags,
		      err);
		return;
	}
	memset(m, 0, offsetof(struct mcache, name));
	m->live = true;
	m->kind = MC_INPUT;
	m->c = c;
	m->size = size;
	m->flags = flags;
	m->ctor = ctor;
	m->notify = (flags & (SLAB_NOTIFY | SLAB_ACCOUNT)) != 0;
	m->all_notified = m->notify && hs[H_OBS].registered;
	m->dirty = true;
	memset(m->pages, 0, sizeof(m->pages));
	cache_refresh_geometry(m);
	CHECK(m->align == a, "cache %s: align %zu, expected %zu", m->name, m->align, a);
	CHECK(slab_cache_flags(c) == flags, "slab_cache_flags(%s) = %#x, created %#x", m->name, slab_cache_flags(c),
	      flags);
	if (flags & SLAB_TYPESAFE_BY_RCU)
		barriers_left--;
}

static void cache_alloc_one(struct mcache *m, slab_gfp_t gfp)
{
	/* tests/fuzz/crashes/zero-ctor-veto: a vetoed SLAB_GFP_ZERO
	 * allocation leaves a zeroed, unconstructed object on the freelist. */
	if (m->ctor && !cfg.allow_zero_ctor)
		gfp &= ~SLAB_GFP_ZERO;
	if (!room_for(m->stride))
		return;
	struct acall a = { m, gfp, m->size };
	struct aresult ar;
	begin_call();
	errno = 0;
	void *p = slab_cache_alloc(m->c, gfp);
	int err = errno;
	if (!end_call_alloc(&a, p, err, &ar)) {
		TR("    slab_cache_alloc(%s, %#x) = NULL errno %d\n", m->name, gfp, err);
		return;
	}
	CHECK(((uintptr_t)p & (m->align - 1)) == 0, "object %p of %s not aligned to %zu", p, m->name, m->align);
	CHECK(slab_usable_size(p) == m->size, "slab_usable_size(object of %s) = %zu, size %zu", m->name,
	      slab_usable_size(p), m->size);
	if (gfp & SLAB_GFP_ZERO)
		CHECK(all_zero(p, m->size), "SLAB_GFP_ZERO object %p of %s not zeroed", p, m->name);
	else if (m->ctor)
		CHECK(ctor_state(p), "object %p of %s not in its constructed state", p, m->name);
	struct block *b = blk_add(p, m->size, m->size, m->size, m, ar.mask, ar.owner, ar.fp, true, false);
	fill(b);
	TR("    slab_cache_alloc(%s, %#x) = %p\n", m->name, gfp, p);
}

static void op_cache_alloc(struct input *in)
{
	struct mcache *m = pick_user_cache(in_u8(in));
	slab_gfp_t gfp = fix_gfp(cache_gfps[in_u8(in) % 8]);
	if (m)
		cache_alloc_one(m, gfp);
}

static void op_cache_bulk(struct input *in)
{
	struct mcache *m = pick_user_cache(in_u8(in));
	uint8_t g = in_u8(in);
	int n = in_u8(in) % 64 + 1;
	if (!m)
		return;
	TR("  bulk %d from %s\n", n, m->name);
	for (int k = 0; k < n; k++)
		cache_alloc_one(m, fix_gfp(cache_gfps[(g + (k & g)) % 8]));
}

static void op_cache_shrink(struct input *in)
{
	struct mcache *m = pick_any_cache(in_u8(in));
	if (!m)
		return;
	TR("  slab_cache_shrink(%s)\n", m->name);
	begin_call();
	errno = 0;
	long r = slab_cache_shrink(m->c);
	int err = errno;
	end_call_plain("slab_cache_shrink");
	if (m->kind == MC_LARGE) {    /* the freed mappings it kept, whole pages */
		CHECK(r >= 0 && r % 4096 == 0 && err == 0, "slab_cache_shrink(kmalloc-large) = %ld (errno %d)", r, err);
		return;
	}
	CHECK(r >= 0 && r % (long)m->slab_bytes == 0, "slab_cache_shrink(%s) = %ld (slabs of %zu)", m->name, r,
	      m->slab_bytes);
	if (m->nlive == 0 && m->kind != MC_KMALLOC) {
		struct slab_cache_info info;
		slab_cache_info(m->c, &info);
		CHECK(info.num_slabs == 0, "cache %s: no live object, shrunk, still %lu slabs", m->name, info.num_slabs);
	}
}

/*
 * The graveyard. Destroying a cache while the drain queued by a switch-off
 * is pending waits for an rcu_barrier (~10 ms: liburcu's call_rcu thread
 * batches for 10 ms). An empty cache that was switched off is therefore
 * shrunk and parked here, then destroyed by a later input once the drain
 * has long run, which costs nothing. Parked caches have no slab and no
 * object; the model forgets them.
 */
#define GRAVE_MAX 16
#define GRAVE_AGE_NS 100000000LL
static struct {
	struct slab_cache *c;
	char name[32];
	long long t;
} graves[GRAVE_MAX];
static int ngraves;

static long long now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void grave_destroy(int i)
{
	TR("  slab_cache_destroy(%s) (parked)\n", graves[i].name);
	begin_call();
	errno = 0;
	int r = slab_cache_destroy(graves[i].c);
	int err = errno;
	end_call_plain("slab_cache_destroy(parked)");
	CHECK(r == 0, "slab_cache_destroy(%s), parked empty, = %d errno %d", graves[i].name, r, err);
	graves[i] = graves[--ngraves];
}

static void graves_reap(bool all)
{
	long long now = now_ns();
	for (int i = ngraves; i-- > 0;)
		if (all || now - graves[i].t >= GRAVE_AGE_NS)
			grave_destroy(i);
}

static void cache_park(struct mcache *m)
{
	TR("  park %s\n", m->name);
	begin_call();
	long r = slab_cache_shrink(m->c);
	end_call_plain("shrink before parking");
	CHECK(r >= 0, "slab_cache_shrink(%s) = %ld", m->name, r);
	struct slab_cache_info info;
	slab_cache_info(m->c, &info);
	CHECK(info.num_slabs == 0 && info.active_objs == 0, "cache %s: empty and shrunk, still %lu slabs %lu objects",
	      m->name, info.num_slabs, info.active_objs);
	for (int h = 0; h < NH; h++)
		CHECK(m->pages[h] == 0, "cache %s shrunk to no slab: handler %d still holds %ld of its pages", m->name, h,
		      m->pages[h]);
	if (ngraves == GRAVE_MAX) {
		int oldest = 0;
		for (int i = 1; i < ngraves; i++)
			if (graves[i].t < graves[oldest].t)
				oldest = i;
		grave_destroy(oldest);
	}
	graves[ngraves].c = m->c;
	snprintf(graves[ngraves].name, sizeof(graves[ngraves].name), "%s", m->name);
	graves[ngraves].t = now_ns();
	ngraves++;
	m->live = false;
}

static void cache_destroy(struct mcache *m)
{
	if (m->nlive == 0 && m->offs > 0 && !(m->flags & SLAB_TYPESAFE_BY_RCU) && !cfg.allow_off_twice) {
		cache_park(m);
		return;
	}
	TR("  slab_cache_destroy(%s) with %ld live\n", m->name, m->nlive);
	begin_call();
	errno = 0;
	int r = slab_cache_destroy(m->c);
	int err = errno;
	end_call_plain("slab_cache_destroy");
	if (m->nlive) {
		CHECK(r == -EBUSY && err == EBUSY, "slab_cache_destroy(%s) with %ld objects = %d errno %d", m->name,
		      m->nlive, r, err);
		return;
	}
	CHECK(r == 0, "slab_cache_destroy(%s) = %d errno %d", m->name, r, err);
	for (int h = 0; h < NH; h++)
		CHECK(m->pages[h] == 0, "cache %s destroyed: handler %d still holds %ld of its pages (no FREEPAGE)",
		      m->name, h, m->pages[h]);
	m->live = false;
}

static void op_cache_destroy(struct input *in)
{
	struct mcache *m = pick_user_cache(in_u8(in));
	if (!m)
		return;
	if (m->kind == MC_PERSIST && m->nlive == 0)
		return;   /* the persistent caches stay */
	cache_destroy(m);
}

static void set_notify(struct mcache *m, bool on)
{
	TR("  slab_cache_set_notify(%s, %d)\n", m->name, on);
	begin_call();
	int r = slab_cache_set_notify(m->c, on);
	end_call_plain("slab_cache_set_notify");
	CHECK(r == 0, "slab_cache_set_notify(%s, %d) = %d", m->name, on, r);
	m->notify = on;
	m->dirty = true;
	if (!on) {
		m->offs++;
		m->all_notified = false;
	}
}

static void op_set_notify(struct input *in)
{
	struct mcache *m = pick_any_cache(in_u8(in));
	bool on = in_u8(in) & 1;
	if (!m)
		return;
	if (!on && m->kind == MC_INPUT) {
		/* Known bugs 1 and 2 (tests/fuzz/README.md): a cache slot reused
		 * after a destroy inherits negative notified counts, so that
		 * switching off with notified objects or pages live loses their
		 * FREEs; and a second switch-off before destroy re-queues the
		 * drain into a slot that create then zeroes. */
		if (!cfg.allow_off_twice && m->offs >= 1)
			return;
		if (!cfg.allow_off_live && m->nlive) {
			return;
		}
		if (!cfg.allow_off_live) {
			begin_call();
			slab_cache_shrink(m->c);
			end_call_plain("shrink before switching off");
		}
	}
	set_notify(m, on);
}

static void op_handler_mode(struct input *in)
{
	int h = in_u8(in) % (NH - 1);   /* not the observer */
	uint8_t mode = in_u8(in), e = in_u8(in);
	struct handler *hd = &hs[h];
	hd->mode = mode;
	hd->err_sel = e & 7;
	hd->veto_left = (mode & HM_ONESHOT) ? 1 + (e >> 6) : -1;
	TR("  handler %d mode %#x err %d\n", h, mode, hd->err_sel);
}

static void op_handler_toggle(struct input *in)
{
	int h = 1 + in_u8(in) % (NH - 2);   /* 1..4: 0 and the observer stay */
	struct handler *hd = &hs[h];
	if (hd->registered) {
		if (syncs_left <= 0)
			return;
		syncs_left--;
		TR("  unregister handler %d\n", h);
		begin_call();
		handler_unregister(hd);
		end_call_plain("unregister");
	} else {
		TR("  register handler %d\n", h);
		begin_call();
		handler_register(hd);
		end_call_plain("register");
	}
}

static int pick_group(uint8_t sel, bool with_root)
{
	int ids[MAX_GROUPS], n = 0;
	for (int g = with_root ? 0 : 1; g < MAX_GROUPS; g++)
		if (grp[g].live)
			ids[n++] = g;
	return n ? ids[sel % n] : -1;
}

static void op_memcg_create(struct input *in)
{
	int parent = pick_group(in_u8(in), true);
	int live = 0, id = -1;
	for (int g = 1; g < MAX_GROUPS; g++) {
		live += grp[g].live;
		if (!grp[g].used && id < 0)
			id = g;
	}
	if (id < 0 || live >= MAX_LIVE_GROUPS || parent < 0)
		return;
	char name[16];
	snprintf(name, sizeof(name), "g%d", id);
	TR("  slab_memcg_create(%d, %s)\n", parent, name);
	struct slab_memcg *g = slab_memcg_create(parent ? grp[parent].g : NULL, name);
	CHECK(g, "slab_memcg_create failed, errno %d", errno);
	CHECK(strcmp(slab_memcg_name(g), name) == 0, "slab_memcg_name = %s", slab_memcg_name(g));
	grp[id] = (struct mgroup){ true, true, g, parent, SIZE_MAX, SIZE_MAX, 0, 0, 0, false, 0, 0 };
	grp[parent].nchildren++;
	int r = slab_memcg_on_event(g, memcg_event, (void *)(intptr_t)id);
	CHECK(r == 0, "slab_memcg_on_event = %d", r);
}

static void memcg_destroy(int id)
{
	bool busy = id == cur_group || grp[id].nchildren > 0;
	TR("  slab_memcg_destroy(%d)%s\n", id, busy ? " (busy)" : "");
	begin_call();
	errno = 0;
	int r = slab_memcg_destroy(grp[id].g);
	int err = errno;
	end_call_plain("slab_memcg_destroy");
	if (busy) {
		CHECK(r == -EBUSY && err == EBUSY, "slab_memcg_destroy(busy group %d) = %d errno %d", id, r, err);
		return;
	}
	CHECK(r == 0, "slab_memcg_destroy(group %d) = %d errno %d", id, r, err);
	grp[id].live = false;
	grp[id].g = NULL;   /* may be released already: never touched again */
	grp[grp[id].parent].nchildren--;
}

static void op_memcg_destroy(struct input *in)
{
	int id = pick_group(in_u8(in), false);
	if (id > 0)
		memcg_destroy(id);
}

static void memcg_enter(int id)
{
	TR("  slab_memcg_enter(%d)\n", id);
	begin_call();
	struct slab_memcg *prev = slab_memcg_enter(grp[id].g);
	end_call_plain("slab_memcg_enter");
	CHECK(prev == grp[cur_group].g, "slab_memcg_enter returned %p, the previous group is %p", (void *)prev,
	      (void *)grp[cur_group].g);
	cur_group = id;
	CHECK(slab_memcg_current() == grp[id].g, "slab_memcg_current() is not the group entered");
}

static void op_memcg_enter(struct input *in)
{
	int id = pick_group(in_u8(in), true);
	if (id >= 0)
		memcg_enter(id);
}

static void op_memcg_limit(struct input *in)
{
	int id = pick_group(in_u8(in), true);
	uint8_t which = in_u8(in), v = in_u8(in);
	if (id < 0)
		return;
	size_t val;
	if (v < 16) {
		val = SIZE_MAX;
	} else if (v < 24) {
		val = 0;
	} else {
		long step = (v & 64) ? 64 : 4096;
		long d = ((long)(v & 63) - 16) * step;
		long u = (long)grp[id].usage;
		val = u + d > 0 ? (size_t)(u + d) : 0;
	}
	bool is_max = which & 1;
	TR("  slab_memcg_set_%s(%d, %zu) usage %zu\n", is_max ? "max" : "high", id, val, grp[id].usage);
	begin_call();
	int r = is_max ? slab_memcg_set_max(grp[id].g, val) : slab_memcg_set_high(grp[id].g, val);
	if (is_max)
		grp[id].max = val;
	else
		grp[id].high = val;
	end_call_plain("slab_memcg_set_limit");
	CHECK(r == 0, "slab_memcg_set_%s = %d", is_max ? "max" : "high", r);
}

static void op_memcg_misc(struct input *in)
{
	int id = pick_group(in_u8(in), true);
	uint8_t what = in_u8(in);
	if (id < 0)
		return;
	struct slab_memcg_stat st;
	switch (what % 4) {
	case 0:
		CHECK(slab_memcg_reset_peak(grp[id].g) == 0, "slab_memcg_reset_peak failed");
		CHECK(slab_memcg_stat(grp[id].g, &st) == 0 && st.peak == st.usage,
		      "after reset_peak: peak %zu, usage %zu", st.peak, st.usage);
		break;
	case 1:
		slab_memcg_drain_stock();
		CHECK(slab_memcg_stat(grp[id].g, &st) == 0 && st.stock == 0, "stock %zu after drain_stock", st.stock);
		break;
	case 2:
		CHECK(slab_memcg_print(devnull) == 0, "slab_memcg_print failed");
		break;
	default:
		CHECK(slab_memcg_stat(grp[id].g, &st) == 0, "slab_memcg_stat failed");
		CHECK(st.usage <= st.max || st.events_nofail > 0 || grp[id].max < grp[id].usage,
		      "group %d: usage %zu above max %zu with no forced charge", id, st.usage, st.max);
		break;
	}
}

static void op_memcg_reclaim(struct input *in)
{
	int id = pick_group(in_u8(in), false);
	if (id <= 0)
		return;
	TR("  reclaim callback on group %d: %s\n", id, grp[id].reclaim ? "remove" : "add");
	errno = 0;
	int r;
	if (grp[id].reclaim) {
		r = slab_memcg_remove_reclaim(grp[id].g, memcg_reclaim, (void *)(intptr_t)id);
		CHECK(r == 0, "slab_memcg_remove_reclaim = %d", r);
		r = slab_memcg_remove_reclaim(grp[id].g, memcg_reclaim, (void *)(intptr_t)id);
		CHECK(r == -ENOENT && errno == ENOENT, "second slab_memcg_remove_reclaim = %d errno %d", r, errno);
	} else {
		r = slab_memcg_add_reclaim(grp[id].g, memcg_reclaim, (void *)(intptr_t)id);
		CHECK(r == 0, "slab_memcg_add_reclaim = %d", r);
		r = slab_memcg_add_reclaim(grp[id].g, memcg_reclaim, (void *)(intptr_t)id);
		CHECK(r == -EEXIST && errno == EEXIST, "second slab_memcg_add_reclaim = %d errno %d", r, errno);
	}
	grp[id].reclaim = !grp[id].reclaim;
}

static const char long_filter[] =
	"fz-a-filter-longer-than-any-cache-name-can-be-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";
static const char *const filters[10] = { NULL, "kmalloc-", "kmalloc-cg-", "fz", "fzp", "fz0", "~", "", long_filter,
					 "kmalloc-large" };
static const char inert_filter[] = "~inert";

/* The model side of a successful slab_fault_inject(attr). */
static void fs_model_start(const struct slab_fault_attr *at)
{
	fs.active = true;
	fs.probability = at->probability;
	fs.interval = at->interval;
	fs.times = at->times < 0 ? -1 : at->times;
	fs.space = at->space;
	fs.min_size = at->min_size;
	fs.seed = at->seed;
	fs.epoch++;
	fs.has_filter = at->cache_filter != NULL;
	fs.filter_never = false;
	fs.filter_len = 0;
	if (at->cache_filter) {
		size_t len = strlen(at->cache_filter);
		if (len >= sizeof(fs.filter)) {
			fs.filter_never = true;
		} else {
			memcpy(fs.filter, at->cache_filter, len + 1);
			fs.filter_len = len;
		}
	}
	if (!fs.registered) {
		fs.registered = true;
		fs.seq = reg_seq++;
		chain_cache_n = -1;
	}
	/* Starting switches notification on for every matching cache. */
	for (int i = 0; i < NMC; i++)
		if (mcs[i].live && fs_filter_match(mcs[i].name)) {
			mcs[i].notify = true;
			mcs[i].dirty = true;
		}
}

static void fault_inject(const struct slab_fault_attr *at, bool einval)
{
	begin_call();
	errno = 0;
	int r = slab_fault_inject(at);
	int err = errno;
	validate_frees();
	consume_transient("slab_fault_inject");
	end_call_plain("slab_fault_inject");
	if (einval) {
		CHECK(r == -EINVAL && err == EINVAL, "slab_fault_inject(probability %g) = %d errno %d", at->probability,
		      r, err);
		return;
	}
	CHECK(r == 0, "slab_fault_inject = %d errno %d", r, err);
	fs_model_start(at);
}

static void op_fault_inject(struct input *in)
{
	static const double probs[16] = { 0, 0.5, 1, 5, 10, 25, 50, 99.9, 100, 100, 30, 75, 200, -1, NAN, 2.5 };
	static const unsigned long intervals[8] = { 0, 1, 2, 3, 7, 0, 1, 16 };
	static const long times[8] = { -1, 0, 1, 2, 5, 100, -1, -7 };
	static const size_t spaces[8] = { 0, 0, 64, 4096, 100000, 0, 1, 1u << 20 };
	static const size_t mins[8] = { 0, 0, 16, 256, 4096, 70000, 0, 9 };
	uint8_t a = in_u8(in), b = in_u8(in), c = in_u8(in);
	struct slab_fault_attr at = {
		.probability = probs[a % 16],
		.interval = intervals[(a >> 4) % 8],
		.times = times[b % 8],
		.space = spaces[(b >> 3) % 8],
		.min_size = mins[(b >> 5) % 8],
		.cache_filter = filters[c % 10],
		.seed = in_u8(in),
	};
	bool einval = !(at.probability >= 0.0 && at.probability <= 100.0);
	TR("  slab_fault_inject(p %g interval %lu times %ld space %zu min %zu filter %s seed %lu)\n", at.probability,
	   at.interval, at.times, at.space, at.min_size, at.cache_filter ? at.cache_filter : "NULL",
	   (unsigned long)at.seed);
	fault_inject(&at, einval);
}

static void op_fault_stop(struct input *in)
{
	(void)in;
	if (!fs.registered || syncs_left <= 0)
		return;
	syncs_left--;
	TR("  slab_fault_inject(NULL)\n");
	begin_call();
	int r = slab_fault_inject(NULL);
	end_call_plain("slab_fault_inject(NULL)");
	CHECK(r == 0, "slab_fault_inject(NULL) = %d", r);
	fs.registered = false;
	fs.active = false;
	chain_cache_n = -1;
}

/* Free an object of a SLAB_TYPESAFE_BY_RCU cache inside an RCU read-side
 * section: it stays readable, with the contents it had when freed. */
static void op_rcu_free(struct input *in)
{
	uint8_t sel = in_u8(in);
	int cand = -1, seen = 0;
	for (int i = 0; i < nblocks; i++)
		if (blocks[i].cache_obj && (blocks[i].mc->flags & SLAB_TYPESAFE_BY_RCU) && seen++ == sel % 8) {
			cand = i;
			break;
		}
	if (cand < 0)
		return;
	struct block *b = &blocks[cand];
	void *p = b->p;
	size_t n = b->usable;
	TR("  rcu_free #%u %p (%s)\n", b->id, p, b->mc->name);
	urcu_bp_read_lock();
	/* What it holds once freed: its contents, constructed state restored. */
	memcpy(scratch, p, n);
	uint64_t w = CTOR_MAGIC ^ (uintptr_t)p;
	if (b->mc->ctor)
		memcpy(scratch, &w, sizeof(w));
	begin_call();
	blk_free(cand, true);
	end_call_plain("rcu_free");
	CHECK(memcmp(p, scratch, n) == 0, "SLAB_TYPESAFE_BY_RCU object %p changed while freed under the read lock", p);
	urcu_bp_read_unlock();
}

static void count_cache(struct slab_cache *c, void *arg)
{
	(void)c;
	(*(int *)arg)++;
}

static void op_info(struct input *in)
{
	uint8_t what = in_u8(in);
	switch (what % 4) {
	case 0:
		slab_info_print(devnull);
		break;
	case 1:
		slab_stats_report(devnull, what & 4);
		break;
	case 2: {
		struct slab_mem_stat st;
		CHECK(slab_mem_stat(&st) == 0, "slab_mem_stat failed");
		CHECK(st.in_use <= st.peak && st.large_in_use <= st.in_use, "slab_mem_stat: in_use %zu peak %zu large %zu",
		      st.in_use, st.peak, st.large_in_use);
		break;
	}
	default: {
		int n = 0, live = 0;
		int r = slab_cache_for_each(count_cache, &n);
		for (int i = 0; i < NMC; i++)
			live += mcs[i].live;
		live += ngraves;
		CHECK(r == n && n == live, "slab_cache_for_each: %d caches (%d calls), the model has %d", r, n, live);
		break;
	}
	}
}

/*
 * A helper thread, made for the operation: it allocates from a cache or
 * with slab_malloc, frees blocks of the main thread (remote frees) and
 * exits (its active slabs go back, its memcg stock drains), while the
 * main thread waits in pthread_join: the calls stay in a fixed order.
 * Its current memory group is root.
 */
struct helper_job {
	struct mcache *m;
	int nalloc, nfree;
	uint8_t sel, gsel;
	uint16_t v;
};

static void *helper_main(void *arg)
{
	struct helper_job *j = arg;
	actor = pthread_self();
	in_helper = true;
	helper_ordinal = sn_thread_ordinal();
	fs_help_t.epoch = 0;     /* a new thread: its failslab state starts afresh */
	for (int k = 0; k < j->nalloc; k++) {
		if (j->m) {
			cache_alloc_one(j->m, fix_gfp(cache_gfps[(j->gsel + k) % 8]));
			continue;
		}
		size_t size = pick_size(j->sel, (uint16_t)(j->v + 37 * k));
		slab_gfp_t gfp = fix_gfp(malloc_gfps[(j->gsel + k) % 16]);
		if (!room_for(size + 4096))
			break;
		struct mcache *m = kmalloc_target(size, gfp);
		struct acall a = { m, gfp, size };
		struct aresult ar;
		begin_call();
		errno = 0;
		void *p = slab_malloc(size, gfp);
		int err = errno;
		if (end_call_alloc(&a, p, err, &ar))
			accept_kmalloc(p, size, 1, gfp, m, &ar);
	}
	for (int k = 0; k < j->nfree && nblocks; k++) {
		begin_call();
		blk_free((j->sel + 7 * k) % nblocks, k & 1);
		end_call_plain("free on a helper thread");
	}
	begin_call();   /* thread exit: validated by the main thread */
	return NULL;
}

static void op_thread(struct input *in)
{
	uint8_t a = in_u8(in), b = in_u8(in), g = in_u8(in);
	uint16_t v = in_u16(in);
	struct helper_job j = { a & 1 ? pick_user_cache(b) : NULL, (a >> 1) % 16, (a >> 5) * 3, b, g, v };
	TR("  helper thread: %d allocations from %s, %d frees\n", j.nalloc, j.m ? j.m->name : "slab_malloc",
	   j.nfree);
	pthread_t t;
	int r = pthread_create(&t, NULL, helper_main, &j);
	CHECK(r == 0, "pthread_create: %d", r);
	r = pthread_join(t, NULL);
	CHECK(r == 0, "pthread_join: %d", r);
	actor = main_thread;
	in_helper = false;
	end_call_plain("helper thread exit");
}

/* Wait for every queued RCU callback (the library's drains and deferred
 * slab releases run): makes their effects deterministic. Budgeted. */
static void op_rcu_barrier(struct input *in)
{
	/* One in 32 argument values: it costs ~10 ms. */
	if ((in_u8(in) & 0x1f) != 0x1f || barriers_left <= 0)
		return;
	barriers_left--;
	TR("  urcu_bp_barrier()\n");
	begin_call();
	urcu_bp_barrier();
	end_call_plain("rcu_barrier");
}

static void op_check_all(struct input *in)
{
	(void)in;
	check_all_blocks();
}

/* ------------------------------------------------------------------ */
/* Start-up and the end of an input                                  */
/* ------------------------------------------------------------------ */

struct found {
	const char *name;
	struct slab_cache *c;
};

static void find_cache(struct slab_cache *c, void *arg)
{
	struct found *f = arg;
	if (strcmp(slab_cache_name(c), f->name) == 0)
		f->c = c;
}

static struct slab_cache *cache_by_name(const char *name)
{
	struct found f = { name, NULL };
	slab_cache_for_each(find_cache, &f);
	CHECK(f.c, "start-up: no cache named %s", name);
	return f.c;
}

static void class_name(char *buf, size_t len, const char *prefix, uint32_t size)
{
	if (size >= 1024 && size % 1024 == 0)
		snprintf(buf, len, "%s%uk", prefix, size / 1024);
	else
		snprintf(buf, len, "%s%u", prefix, size);
}

static void builtin_init(int i, enum mc_kind kind, const char *name, size_t size)
{
	struct mcache *m = &mcs[i];
	memset(m, 0, sizeof(*m));
	m->live = true;
	m->kind = kind;
	snprintf(m->name, sizeof(m->name), "%s", name);
	m->c = cache_by_name(name);
	m->size = size;
	m->flags = slab_cache_flags(m->c);
	m->notify = m->canon_notify = slab_cache_notify_enabled(m->c);
	cache_refresh_geometry(m);
}

static void fuzz_init(void)
{
	const char *s;
	cfg.trace = (s = getenv("SNFUZZ_TRACE")) && *s && *s != '0';
	cfg.syncs = (s = getenv("SNFUZZ_SYNCS")) ? atoi(s) : 4;
	cfg.barriers = (s = getenv("SNFUZZ_BARRIERS")) ? atoi(s) : 1;
	/* The sequences once avoided for known bugs (issue 8: off-twice,
	 * off-live; zero-ctor) are fixed and fuzzed by default now;
	 * SNFUZZ_AVOID=NAME,... avoids them again, SNFUZZ_ALLOW=throttle
	 * lets allocations above a high limit sleep. */
	cfg.allow_off_twice = cfg.allow_off_live = cfg.allow_zero_ctor = true;
	if ((s = getenv("SNFUZZ_AVOID"))) {
		cfg.allow_off_twice = !strstr(s, "off-twice");
		cfg.allow_off_live = !strstr(s, "off-live");
		cfg.allow_zero_ctor = !strstr(s, "zero-ctor");
	}
	if ((s = getenv("SNFUZZ_ALLOW")))
		cfg.allow_throttle = strstr(s, "throttle") != NULL;
	main_thread = actor = pthread_self();
	devnull = fopen("/dev/null", "w");
	CHECK(devnull, "cannot open /dev/null");
	ref = malloc(REF_LEN);
	scratch = malloc(SLAB_MAX_OBJECT_SIZE + 64);
	CHECK(ref && scratch, "out of memory");
	uint64_t x = 0x2545F4914F6CDD1DULL;
	for (size_t i = 0; i < REF_LEN; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		ref[i] = (uint8_t)(x >> 24);
	}

	/* memcg first: it makes the kmalloc caches, has kmalloc-large
	 * notify and registers its notifier (priority 0, first of all). */
	root_g = slab_memcg_root();
	/* The kmalloc-cg-N caches, made on first use. */
	for (int i = 0; i < N_KM; i++)
		slab_free(slab_malloc(kclass[i], SLAB_GFP_ACCOUNT));
	slab_memcg_drain_stock();
	for (int i = 0; i < N_KM; i++) {
		char name[32];
		class_name(name, sizeof(name), "kmalloc-", kclass[i]);
		builtin_init(MC_KM0 + i, MC_KMALLOC, name, kclass[i]);
		class_name(name, sizeof(name), "kmalloc-cg-", kclass[i]);
		builtin_init(MC_CG0 + i, MC_CG, name, kclass[i]);
	}
	builtin_init(MC_LARGE_I, MC_LARGE, "kmalloc-large", 0);
	CHECK(mcs[MC_LARGE_I].notify && mcs[MC_CG0].notify && !mcs[MC_KM0].notify,
	      "start-up: unexpected notification state of the built-in caches");

	ext_slot = slab_obj_ext_reserve();
	CHECK(ext_slot >= 0, "slab_obj_ext_reserve = %d", ext_slot);

	/* failslab registered once, inert: its filter matches no cache. */
	struct slab_fault_attr inert = { .probability = 0, .times = -1, .cache_filter = inert_filter };
	fault_inject(&inert, false);

	for (int h = 0; h < NH; h++) {
		hs[h].id = h;
		handler_idle(&hs[h]);
		handler_register(&hs[h]);
	}

	/* Persistent caches: SLAB_TYPESAFE_BY_RCU ones cost an rcu_barrier
	 * to destroy, so these live for the whole run. */
	static const struct {
		const char *name;
		size_t size;
		slab_flags_t flags;
		bool ctor;
	} pc[N_PERSIST] = {
		{ "fzp0", 48, SLAB_TYPESAFE_BY_RCU | SLAB_NOTIFY, false },
		{ "fzp1", 200, SLAB_TYPESAFE_BY_RCU, true },
		{ "fzp2", 100, SLAB_TYPESAFE_BY_RCU | SLAB_ACCOUNT | SLAB_HWCACHE_ALIGN, false },
	};
	for (int i = 0; i < N_PERSIST; i++) {
		struct mcache *m = &mcs[MC_P0 + i];
		memset(m, 0, sizeof(*m));
		struct slab_cache *c = slab_cache_create(pc[i].name, pc[i].size, 0, pc[i].flags,
							 pc[i].ctor ? fz_ctor : NULL);
		CHECK(c, "start-up: slab_cache_create(%s) failed", pc[i].name);
		m->live = true;
		m->kind = MC_PERSIST;
		m->c = c;
		snprintf(m->name, sizeof(m->name), "%s", pc[i].name);
		m->size = pc[i].size;
		m->flags = pc[i].flags;
		m->ctor = pc[i].ctor;
		m->notify = m->canon_notify = (pc[i].flags & (SLAB_NOTIFY | SLAB_ACCOUNT)) != 0;
		m->all_notified = m->notify;
		cache_refresh_geometry(m);
	}

	grp[0] = (struct mgroup){ true, true, root_g, -1, SIZE_MAX, SIZE_MAX, 0, 0, 0, false, 0, 0 };
	CHECK(slab_memcg_on_event(root_g, memcg_event, (void *)(intptr_t)0) == 0, "slab_memcg_on_event(root)");
	cur_group = 0;
	check_state_caches(true);
	op_name = "idle";
}

/* Back to the state between inputs. */
static void fuzz_cleanup(void)
{
	op_name = "cleanup";
	for (int h = 0; h < NH; h++)
		handler_idle(&hs[h]);   /* no more allocations from inside */
	/* Everything freed, contents checked; newest first. */
	while (nblocks) {
		begin_call();
		blk_free(nblocks - 1, true);
		end_call_plain("cleanup free");
	}
	if (cur_group != 0)
		memcg_enter(0);
	for (;;) {   /* leaves first */
		bool any = false;
		for (int g = MAX_GROUPS - 1; g > 0; g--)
			if (grp[g].live && grp[g].nchildren == 0) {
				memcg_destroy(g);
				any = true;
			}
		if (!any)
			break;
	}
	for (int g = 1; g < MAX_GROUPS; g++) {
		CHECK(!grp[g].live, "cleanup: group %d still live", g);
		grp[g].used = false;
	}
	if (grp[0].max != SIZE_MAX || grp[0].high != SIZE_MAX) {
		begin_call();
		slab_memcg_set_max(root_g, SIZE_MAX);
		slab_memcg_set_high(root_g, SIZE_MAX);
		end_call_plain("cleanup limits");
		grp[0].max = grp[0].high = SIZE_MAX;
	}
	for (int i = MC_IN0; i < NMC; i++)
		if (mcs[i].live)
			cache_destroy(&mcs[i]);
	/* failslab back to inert (registered, matching no cache). */
	struct slab_fault_attr inert = { .probability = 0, .times = -1, .cache_filter = inert_filter };
	fault_inject(&inert, false);
	for (int i = 0; i < MC_IN0; i++)
		if (mcs[i].notify != mcs[i].canon_notify)
			set_notify(&mcs[i], mcs[i].canon_notify);
	for (int h = 0; h < NH; h++) {
		handler_idle(&hs[h]);
		if (!hs[h].registered) {
			begin_call();
			handler_register(&hs[h]);
			end_call_plain("cleanup register");
		}
	}
	slab_memcg_drain_stock();
	check_state_caches(true);
	/* Every charge returned, every FREE delivered. */
	CHECK(grp[0].usage == 0 && grp[0].objs == 0, "harness: root model not empty");
	for (int h = 0; h < NH; h++)
		CHECK(hs[h].balance == 0, "handler %d: %ld ALLOCs without their FREE at the end", h, hs[h].balance);
	struct slab_memcg_stat st;
	slab_memcg_stat(root_g, &st);
	CHECK(st.usage == 0 && st.nr_objects == 0 && st.stock == 0,
	      "end of input: root group usage %zu objects %lu stock %zu, everything was freed", st.usage, st.nr_objects,
	      st.stock);
	CHECK(nstash == 0 && niv == 0 && live_bytes == 0, "harness: model not empty");
	op_name = "idle";
}

static void fuzz_begin(void)
{
	syncs_left = cfg.syncs;
	barriers_left = cfg.barriers;
	graves_reap(false);
	struct slab_memcg_stat st;
	slab_memcg_stat(root_g, &st);
	grp[0].failcnt0 = st.failcnt;
	grp[0].vetoes = 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_init();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool inited;
	if (!inited) {   /* a driver that does not call LLVMFuzzerInitialize */
		inited = true;
		if (!root_g)
			fuzz_init();
	}
	struct input in = { data, data + size };
	fuzz_begin();
	op_index = 0;
	while (in.p < in.end) {
		int op = in_u8(&in) % NR_OPS;
		op_name = op_names[op];
		TR("#%lu %s\n", op_index, op_name);
		switch (op) {
		case OP_MALLOC: op_malloc(&in); break;
		case OP_FREE: op_free(&in); break;
		case OP_REALLOC: op_realloc(&in); break;
		case OP_ALIGNED: op_aligned(&in); break;
		case OP_USABLE: op_usable(&in); break;
		case OP_CACHE_CREATE: op_cache_create(&in); break;
		case OP_CACHE_ALLOC: op_cache_alloc(&in); break;
		case OP_CACHE_BULK: op_cache_bulk(&in); break;
		case OP_CACHE_SHRINK: op_cache_shrink(&in); break;
		case OP_CACHE_DESTROY: op_cache_destroy(&in); break;
		case OP_SET_NOTIFY: op_set_notify(&in); break;
		case OP_HANDLER_MODE: op_handler_mode(&in); break;
		case OP_HANDLER_TOGGLE: op_handler_toggle(&in); break;
		case OP_MEMCG_CREATE: op_memcg_create(&in); break;
		case OP_MEMCG_DESTROY: op_memcg_destroy(&in); break;
		case OP_MEMCG_ENTER: op_memcg_enter(&in); break;
		case OP_MEMCG_LIMIT: op_memcg_limit(&in); break;
		case OP_MEMCG_MISC: op_memcg_misc(&in); break;
		case OP_MEMCG_RECLAIM: op_memcg_reclaim(&in); break;
		case OP_FAULT_INJECT: op_fault_inject(&in); break;
		case OP_FAULT_STOP: op_fault_stop(&in); break;
		case OP_RCU_FREE: op_rcu_free(&in); break;
		case OP_CHECK_ALL: op_check_all(&in); break;
		case OP_FREE_MANY: op_free_many(&in); break;
		case OP_INFO: op_info(&in); break;
		case OP_RCU_BARRIER: op_rcu_barrier(&in); break;
		case OP_THREAD: op_thread(&in); break;
		default: break;
		}
		check_state();
		op_index++;
	}
	check_state_caches(true);
	check_all_blocks();
	fuzz_cleanup();
	return 0;
}
