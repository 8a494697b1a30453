/*
 * mmap.c - the program's own anonymous memory, charged under --max.
 *
 * A cap that a program walks past is not the cap its user asked for:
 * CPython's small-object arenas, g++'s garbage-collected heap and
 * ImageMagick's pixel cache come from mmap, not malloc. With a limit set,
 * the drop-in interposes mmap, mmap64, munmap, mremap, mprotect, brk and
 * sbrk, and charges the program's private anonymous memory to the root
 * memory group, with the malloc'ed blocks: a mapping that does not fit
 * fails with ENOMEM, as the kernel's would under a cgroup limit.
 *
 * What is counted: private anonymous mappings, at their full size, from
 * the moment they are accessible (mmap with a protection other than
 * PROT_NONE, or mprotect of a PROT_NONE reservation), until munmap (or
 * mprotect back to PROT_NONE); mremap moves and resizes the charge; the
 * break (brk, sbrk) as it grows and shrinks. What is not: file mappings,
 * shared memory (MAP_SHARED), stacks (MAP_STACK, MAP_GROWSDOWN, and the
 * thread stacks glibc maps for itself), PROT_NONE reservations, and
 * anything glibc or the dynamic loader map through their internal calls.
 * The charge is made when memory becomes accessible, not when it is
 * touched: a program that maps much more than it uses is capped on what
 * it mapped.
 *
 * The ranges charged and reserved are kept in one sorted array (its own
 * mapping) under one lock. Without a limit none of this runs: the calls
 * go straight to the kernel.
 */
#define _GNU_SOURCE
#include "dropin.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define PAGE 4096UL

struct range {
	uintptr_t start, end;
	bool charged;       /* accessible: charged; else a reservation */
};

static struct {
	pthread_mutex_t lock;
	struct range *r;
	size_t n, cap, map_bytes;
	size_t charged, peak;
} M = { .lock = PTHREAD_MUTEX_INITIALIZER };

static bool accounting;

static uintptr_t page_down(uintptr_t a) { return a & ~(PAGE - 1); }
static uintptr_t page_up(uintptr_t a) { return (a + PAGE - 1) & ~(PAGE - 1); }

void mmap_accounting_init(void)
{
	accounting = true;
}

size_t mmap_charged_bytes(size_t *peak)
{
	/* Read as they are: also from a signal handler. */
	*peak = __atomic_load_n(&M.peak, __ATOMIC_RELAXED);
	return __atomic_load_n(&M.charged, __ATOMIC_RELAXED);
}

/* ------------------------------------------------------------------ */
/* The kernel's calls                                                 */
/* ------------------------------------------------------------------ */

static void *sys_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	long r = syscall(SYS_mmap, addr, len, prot, flags, fd, off);
	if (r < 0 && r > -4096) {
		errno = (int)-r;
		return MAP_FAILED;
	}
	return (void *)r;
}

static int sys_ret(long r)
{
	if (r < 0 && r > -4096) {
		errno = (int)-r;
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* The ranges (lock held)                                             */
/* ------------------------------------------------------------------ */

static bool ranges_reserve(size_t extra)
{
	if (M.n + extra <= M.cap)
		return true;
	size_t cap = M.cap ? M.cap * 2 : 256;
	while (cap < M.n + extra)
		cap *= 2;
	size_t bytes = page_up(cap * sizeof(struct range));
	struct range *fresh = sys_mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (fresh == MAP_FAILED)
		return false;
	if (M.r) {
		memcpy(fresh, M.r, M.n * sizeof(*fresh));
		syscall(SYS_munmap, M.r, M.map_bytes);
	}
	M.r = fresh;
	M.cap = cap;
	M.map_bytes = bytes;
	return true;
}

/* Cut [a, b) out of every range; returns the charged bytes removed. */
static size_t ranges_cut(uintptr_t a, uintptr_t b)
{
	size_t removed = 0;
	for (size_t i = 0; i < M.n;) {
		struct range *r = &M.r[i];
		if (r->end <= a || r->start >= b) {
			i++;
			continue;
		}
		uintptr_t lo = r->start > a ? r->start : a, hi = r->end < b ? r->end : b;
		if (r->charged)
			removed += hi - lo;
		if (r->start < a && r->end > b) {          /* split in two */
			if (!ranges_reserve(1))
				return removed;      /* keep the tail: over-count, never under */
			r = &M.r[i];
			memmove(&M.r[i + 2], &M.r[i + 1], (M.n - i - 1) * sizeof(*r));
			M.r[i + 1] = (struct range){ b, r->end, r->charged };
			r->end = a;
			M.n++;
			return removed;
		}
		if (r->start < a) {
			r->end = a;
			i++;
		} else if (r->end > b) {
			r->start = b;
			i++;
		} else {
			memmove(r, r + 1, (M.n - i - 1) * sizeof(*r));
			M.n--;
		}
	}
	return removed;
}

static bool ranges_add(uintptr_t a, uintptr_t b, bool charged)
{
	if (!ranges_reserve(1))
		return false;
	size_t i = 0;
	while (i < M.n && M.r[i].start < a)
		i++;
	memmove(&M.r[i + 1], &M.r[i], (M.n - i) * sizeof(M.r[0]));
	M.r[i] = (struct range){ a, b, charged };
	M.n++;
	return true;
}

/* The bytes of [a, b) we know of whose state is @charged. */
static size_t ranges_bytes(uintptr_t a, uintptr_t b, bool charged)
{
	size_t n = 0;
	for (size_t i = 0; i < M.n; i++) {
		const struct range *r = &M.r[i];
		if (r->charged != charged || r->end <= a || r->start >= b)
			continue;
		n += (r->end < b ? r->end : b) - (r->start > a ? r->start : a);
	}
	return n;
}

/* Give the known parts of [a, b) the state @to (splitting ranges at a
 * and b); returns the bytes that changed. Unknown parts stay unknown. */
static size_t ranges_flip(uintptr_t a, uintptr_t b, bool to)
{
	size_t changed = 0;
	for (size_t i = 0; i < M.n; i++) {
		if (M.r[i].end <= a || M.r[i].start >= b || M.r[i].charged == to)
			continue;
		if (!ranges_reserve(2))
			return changed;
		struct range *r = &M.r[i];
		uintptr_t lo = r->start > a ? r->start : a, hi = r->end < b ? r->end : b;
		if (r->start < lo) {          /* keep the head as it was */
			memmove(r + 1, r, (M.n - i) * sizeof(*r));
			M.n++;
			r->end = lo;
			r = &M.r[++i];
			r->start = lo;
		}
		if (hi < r->end) {            /* and the tail */
			memmove(r + 2, r + 1, (M.n - i - 1) * sizeof(*r));
			M.n++;
			r[1] = (struct range){ hi, r->end, r->charged };
			r->end = hi;
		}
		r->charged = to;
		changed += hi - lo;
	}
	return changed;
}

static void count(long delta)
{
	size_t now = M.charged + (size_t)delta;
	__atomic_store_n(&M.charged, now, __ATOMIC_RELAXED);
	if (now > M.peak)
		__atomic_store_n(&M.peak, now, __ATOMIC_RELAXED);
}

/* ------------------------------------------------------------------ */
/* Charging                                                           */
/* ------------------------------------------------------------------ */

static bool charge(size_t bytes)
{
	return !bytes || slab_memcg_charge(slab_memcg_root(), bytes, 0) == 0;
}

static void uncharge(size_t bytes)
{
	if (bytes)
		slab_memcg_uncharge(slab_memcg_root(), bytes);
}

static bool counted_kind(int flags, int fd)
{
	return (flags & MAP_ANONYMOUS) && !(flags & MAP_SHARED) && fd == -1 &&
	       !(flags & (MAP_STACK | MAP_GROWSDOWN));
}

/* ------------------------------------------------------------------ */
/* The interposed calls                                               */
/* ------------------------------------------------------------------ */

SN_EXPORT void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	/* slabnotify's own work (a report, the stats page, memcg's snapshots)
	 * maps in quiet sections: never the program's, never charged (at the
	 * max it would fail, and the report lose its slabinfo). */
	if (!accounting || !counted_kind(flags, fd) || len == 0 || slab_in_handler()) {
		void *p = sys_mmap(addr, len, prot, flags, fd, off);
		if (accounting && p != MAP_FAILED && (flags & MAP_FIXED)) {
			/* A file or shared mapping over memory we counted. */
			pthread_mutex_lock(&M.lock);
			uintptr_t a = (uintptr_t)p;
			size_t gone = ranges_cut(a, a + page_up(len));
			count(-(long)gone);
			pthread_mutex_unlock(&M.lock);
			uncharge(gone);
		}
		return p;
	}
	size_t bytes = page_up(len);
	bool accessible = prot != PROT_NONE;
	if (accessible && !charge(bytes)) {
		errno = ENOMEM;
		return MAP_FAILED;
	}
	void *p = sys_mmap(addr, len, prot, flags, fd, off);
	if (p == MAP_FAILED) {
		int e = errno;
		if (accessible)
			uncharge(bytes);
		errno = e;
		return p;
	}
	uintptr_t a = (uintptr_t)p;
	pthread_mutex_lock(&M.lock);
	size_t gone = (flags & MAP_FIXED) ? ranges_cut(a, a + bytes) : 0;
	bool kept = ranges_add(a, a + bytes, accessible);
	count((long)(accessible && kept ? bytes : 0) - (long)gone);
	pthread_mutex_unlock(&M.lock);
	if (accessible && !kept)
		uncharge(bytes);       /* cannot track it: do not count it */
	uncharge(gone);
	return p;
}

SN_EXPORT void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	return mmap(addr, len, prot, flags, fd, off);
}

SN_EXPORT int munmap(void *addr, size_t len)
{
	int r = sys_ret(syscall(SYS_munmap, addr, len));
	if (r || !accounting)
		return r;
	uintptr_t a = page_down((uintptr_t)addr);
	pthread_mutex_lock(&M.lock);
	size_t gone = ranges_cut(a, page_up((uintptr_t)addr + len));
	count(-(long)gone);
	pthread_mutex_unlock(&M.lock);
	uncharge(gone);
	return 0;
}

SN_EXPORT int mprotect(void *addr, size_t len, int prot)
{
	if (!accounting)
		return sys_ret(syscall(SYS_mprotect, addr, len, prot));
	uintptr_t a = page_down((uintptr_t)addr), b = page_up((uintptr_t)addr + len);
	bool accessible = prot != PROT_NONE;
	pthread_mutex_lock(&M.lock);
	size_t delta = ranges_bytes(a, b, !accessible);   /* what would change */
	pthread_mutex_unlock(&M.lock);
	if (accessible && delta && !charge(delta)) {
		errno = ENOMEM;
		return -1;
	}
	int r = sys_ret(syscall(SYS_mprotect, addr, len, prot));
	if (r) {
		int e = errno;
		if (accessible)
			uncharge(delta);
		errno = e;
		return r;
	}
	pthread_mutex_lock(&M.lock);
	size_t changed = ranges_flip(a, b, accessible);
	count(accessible ? (long)changed : -(long)changed);
	pthread_mutex_unlock(&M.lock);
	if (!accessible)
		uncharge(changed);
	else if (changed < delta)
		uncharge(delta - changed);
	return 0;
}

SN_EXPORT void *mremap(void *old, size_t old_len, size_t new_len, int flags, ...)
{
	void *fixed = NULL;
	if (flags & MREMAP_FIXED) {
		va_list ap;
		va_start(ap, flags);
		fixed = va_arg(ap, void *);
		va_end(ap);
	}
	if (!accounting) {
		long r = syscall(SYS_mremap, old, old_len, new_len, flags, fixed);
		return sys_ret(r) ? MAP_FAILED : (void *)r;
	}
	uintptr_t a = (uintptr_t)old, old_b = a + page_up(old_len);
	pthread_mutex_lock(&M.lock);
	bool charged = false;
	for (size_t i = 0; i < M.n; i++)
		if (M.r[i].start <= a && M.r[i].end >= old_b && M.r[i].charged)
			charged = true;
	pthread_mutex_unlock(&M.lock);
	size_t grow = page_up(new_len) > page_up(old_len) ? page_up(new_len) - page_up(old_len) : 0;
	if (charged && grow && !charge(grow)) {
		errno = ENOMEM;
		return MAP_FAILED;
	}
	long r = syscall(SYS_mremap, old, old_len, new_len, flags, fixed);
	if (sys_ret(r)) {
		int e = errno;
		if (charged)
			uncharge(grow);
		errno = e;
		return MAP_FAILED;
	}
	if (!charged)
		return (void *)r;
	uintptr_t n = (uintptr_t)r;
	pthread_mutex_lock(&M.lock);
	size_t gone = ranges_cut(a, old_b);
	gone += ranges_cut(n, n + page_up(new_len));
	bool kept = ranges_add(n, n + page_up(new_len), true);
	size_t now = kept ? page_up(new_len) : 0;
	count((long)now - (long)gone);
	pthread_mutex_unlock(&M.lock);
	size_t had = gone + grow;   /* charged for this range so far */
	if (had > now)
		uncharge(had - now);
	return (void *)r;
}

/* The break: glibc keeps its value, so the calls go to glibc's. */
SN_EXPORT int brk(void *addr)
{
	static int (*real)(void *);
	if (!real)
		real = (int (*)(void *))dlsym(RTLD_NEXT, "brk");
	if (!real) {
		errno = ENOMEM;
		return -1;
	}
	if (!accounting)
		return real(addr);
	static void *(*real_sbrk)(intptr_t);
	if (!real_sbrk)
		real_sbrk = (void *(*)(intptr_t))dlsym(RTLD_NEXT, "sbrk");
	uintptr_t cur = real_sbrk ? (uintptr_t)real_sbrk(0) : (uintptr_t)addr;
	uintptr_t want = (uintptr_t)addr;
	size_t grow = want > cur ? page_up(want) - page_up(cur) : 0;
	if (grow && !charge(grow)) {
		errno = ENOMEM;
		return -1;
	}
	int r = real(addr);
	if (r) {
		uncharge(grow);
		return r;
	}
	size_t shrink = want < cur ? page_up(cur) - page_up(want) : 0;
	pthread_mutex_lock(&M.lock);
	count((long)grow - (long)shrink);
	pthread_mutex_unlock(&M.lock);
	uncharge(shrink);
	return 0;
}

SN_EXPORT void *sbrk(intptr_t incr)
{
	static void *(*real)(intptr_t);
	if (!real)
		real = (void *(*)(intptr_t))dlsym(RTLD_NEXT, "sbrk");
	if (!real) {
		errno = ENOMEM;
		return (void *)-1;
	}
	if (!accounting || incr == 0)
		return real(incr);
	uintptr_t cur = (uintptr_t)real(0);
	uintptr_t want = cur + (uintptr_t)incr;
	size_t grow = incr > 0 ? page_up(want) - page_up(cur) : 0;
	if (grow && !charge(grow)) {
		errno = ENOMEM;
		return (void *)-1;
	}
	void *r = real(incr);
	if (r == (void *)-1) {
		uncharge(grow);
		return r;
	}
	size_t shrink = incr < 0 ? page_up(cur) - page_up(want) : 0;
	pthread_mutex_lock(&M.lock);
	count((long)grow - (long)shrink);
	pthread_mutex_unlock(&M.lock);
	uncharge(shrink);
	return r;
}
