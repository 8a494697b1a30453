/*
 * leak.c - the leak tracker: allocation stacks of live objects.
 *
 * A consumer on the public API only. slab_leak_track() registers one
 * notifier, at the lowest priority (INT_MIN / 2) so that it runs after
 * every handler that may veto (failslab, memcg): what it records has
 * been accepted by all of them.
 *
 * At ALLOC of a sampled object the handler captures the stack (libunwind's
 * unw_backtrace(), or glibc's backtrace() without libunwind), looks it up
 * in a hash table of unique stacks (a stack depot), adds the object to
 * that record's live count and bytes, and keeps a pointer to the record
 * in the object's obj_ext slot. At FREE it reads the slot back and takes
 * the object off the record. Unsampled objects leave the slot NULL.
 * Every record holds LEAK_CAPTURE raw return addresses: the frames of
 * slabnotify itself (the handler, the hook, the slow path, slab_malloc,
 * the drop-in's malloc) are only cut off at report time, by name, so the
 * capture stays cheap; stacks that differ only inside slabnotify (fast
 * path or slow path, say) are merged in the report.
 *
 * Memory: records and the table live in anonymous mappings of their own
 * (not in slab memory): they never show in slabinfo, in the report, or
 * under failslab, and they are all released when tracking stops. Unique
 * stacks are never freed while tracking is on (as in Linux's stack depot):
 * a record whose objects are all freed keeps count 0 and is reused when
 * its stack shows up again.
 *
 * Sampling: one in @sample ALLOC events per thread, by a thread-local
 * countdown (deterministic for a given thread's sequence of allocations).
 *
 * Besides the stacks, the handler keeps the live bytes of all notified
 * objects it accepted (sampled or not) and their running peak, which
 * slab_stats_report() prints as the tracked peak.
 *
 * The cut: the leading frames whose function is slabnotify's (names
 * starting slab_, notify_, sn_, leak_, the core's allocation-path helpers,
 * and malloc and friends when they live in the module that holds
 * slabnotify, i.e. the drop-in), or nameless frames in that module. A
 * caller's own function named slab_* that allocates is cut as well (its
 * caller shows as #0).
 *
 * Symbolization is done at report time with elfutils' libdwfl: function
 * and offset from the symbol tables, file:line from DWARF where present.
 * Without libunwind/libdw (no SLABNOTIFY_HAVE_UNWIND), dladdr() gives
 * what the dynamic symbol tables know, without file:line.
 *
 * Stopping (slab_leak_track(0)) unregisters the handler and discards
 * every record: the FREE events of objects recorded so far would not be
 * delivered any more, so the records could only go stale. Notification
 * is not switched off again: other consumers may rely on it.
 */
#define _GNU_SOURCE
#include "slabnotify.h"
#include "json.h"

#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifdef SLABNOTIFY_HAVE_UNWIND
#define UNW_LOCAL_ONLY
#include <elfutils/libdwfl.h>
#include <libunwind.h>
#else
#include <execinfo.h>
#endif

#define LEAK_CAPTURE    40   /* raw frames kept: slabnotify's own and the caller's */
#define LEAK_MAX_FRAMES 16   /* caller frames printed */
#define LEAK_FALLBACK_SKIP 2 /* frames cut when no name is known: capture, handler */
#define LEAK_CHUNK      (1u << 20)

#define LEAK_TLS __attribute__((tls_model("initial-exec")))

struct leak_stack {
	struct leak_stack *next;     /* hash chain */
	uint64_t hash;
	_Atomic unsigned long count; /* live objects */
	_Atomic size_t bytes;        /* their bytes (atomic: FREE takes no lock) */
	uint32_t depth;
	void *pc[LEAK_CAPTURE];
};

struct chunk {
	struct chunk *next;
	size_t size, used;
};

/* The depot, under table_lock. */
static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static struct leak_stack **buckets;
static size_t nbuckets, nstacks, buckets_bytes;
static struct chunk *chunks;

/* Control: track() and report() calls, under ctl_lock. */
static pthread_mutex_t ctl_lock = PTHREAD_MUTEX_INITIALIZER;
static bool registered;
static int leak_slot = -1;

static _Atomic unsigned int leak_sample;
static _Atomic size_t all_live, all_peak;   /* every accepted object */

/*
 * Held for reading around every stack capture, for writing by fork's
 * prepare handler: so no thread is inside the unwinder when another
 * forks, and the child cannot inherit one of libunwind's internal locks
 * held (libunwind has no fork handlers). Writers first, so that a stream
 * of captures cannot starve a fork.
 */
static pthread_rwlock_t capture_lock = PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP;

static __thread unsigned int tl_countdown LEAK_TLS;
static __thread bool tl_quiet LEAK_TLS;     /* this thread is reporting */
static __thread bool tl_forking LEAK_TLS;   /* between fork's prepare and parent/child */

/* ------------------------------------------------------------------ */
/* Memory of our own                                                  */
/* ------------------------------------------------------------------ */

static void *map_zero(size_t bytes)
{
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

static size_t round_page(size_t n)
{
	size_t pg = 4096;
	return (n + pg - 1) & ~(pg - 1);
}

/* A zeroed record from the arena. Under table_lock. */
static struct leak_stack *record_alloc(void)
{
	size_t need = sizeof(struct leak_stack);
	if (!chunks || chunks->used + need > chunks->size) {
		struct chunk *c = map_zero(LEAK_CHUNK);
		if (!c)
			return NULL;
		c->size = LEAK_CHUNK;
		c->used = (sizeof(*c) + 15) & ~(size_t)15;
		c->next = chunks;
		chunks = c;
	}
	struct leak_stack *r = (struct leak_stack *)((char *)chunks + chunks->used);
	chunks->used += (need + 15) & ~(size_t)15;
	return r;
}

/* Double the bucket array. Under table_lock. False if out of memory. */
static bool table_grow(void)
{
	size_t n = nbuckets ? nbuckets * 2 : 1024;
	size_t bytes = round_page(n * sizeof(*buckets));
	struct leak_stack **nb = map_zero(bytes);
	if (!nb)
		return false;
	for (size_t i = 0; i < nbuckets; i++) {
		struct leak_stack *r = buckets[i], *next;
		for (; r; r = next) {
			next = r->next;
			size_t j = r->hash & (n - 1);
			r->next = nb[j];
			nb[j] = r;
		}
	}
	if (buckets)
		munmap(buckets, buckets_bytes);
	buckets = nb;
	nbuckets = n;
	buckets_bytes = bytes;
	return true;
}

/* Drop every record. Only with the handler unregistered. */
static void table_release(void)
{
	pthread_mutex_lock(&table_lock);
	while (chunks) {
		struct chunk *c = chunks;
		chunks = c->next;
		munmap(c, c->size);
	}
	if (buckets)
		munmap(buckets, buckets_bytes);
	buckets = NULL;
	nbuckets = nstacks = buckets_bytes = 0;
	pthread_mutex_unlock(&table_lock);
}

static uint64_t hash_frames(void *const *pc, uint32_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL ^ n;
	for (uint32_t i = 0; i < n; i++) {
		h ^= (uint64_t)(uintptr_t)pc[i];
		h *= 0x100000001b3ULL;
		h ^= h >> 29;
	}
	return h;
}

/* The record of this stack, made if new. Under table_lock. */
static struct leak_stack *depot_get(void *const *pc, uint32_t n)
{
	uint64_t h = hash_frames(pc, n);
	if (!buckets && !table_grow())
		return NULL;
	for (struct leak_stack *r = buckets[h & (nbuckets - 1)]; r; r = r->next)
		if (r->hash == h && r->depth == n && !memcmp(r->pc, pc, n * sizeof(*pc)))
			return r;
	if (nstacks >= nbuckets)
		table_grow();   /* on failure the chains just get longer */
	struct leak_stack *r = record_alloc();
	if (!r)
		return NULL;
	r->hash = h;
	r->depth = n;
	memcpy(r->pc, pc, n * sizeof(*pc));
	size_t j = h & (nbuckets - 1);
	r->next = buckets[j];
	buckets[j] = r;
	nstacks++;
	return r;
}

/* ------------------------------------------------------------------ */
/* The handler                                                        */
/* ------------------------------------------------------------------ */

#if defined(SLABNOTIFY_HAVE_UNWIND) && defined(__SANITIZE_THREAD__)
/*
 * Under TSan, walk with unw_step(): unw_backtrace()'s per-thread trace
 * cache is freed by a thread-specific-data destructor that runs after
 * TSan has finished the thread, and its mutex call then crashes.
 */
static __attribute__((always_inline)) inline int unw_walk(void **pc, int max)
{
	unw_context_t ctx;
	unw_cursor_t cur;
	int n = 0;
	if (unw_getcontext(&ctx) != 0 || unw_init_local(&cur, &ctx) != 0)
		return 0;
	do {
		unw_word_t ip = 0;
		if (unw_get_reg(&cur, UNW_REG_IP, &ip) != 0 || ip == 0)
			break;
		pc[n++] = (void *)(uintptr_t)ip;
	} while (n < max && unw_step(&cur) > 0);
	return n;
}
#endif

static __attribute__((always_inline)) inline int capture(void **pc)
{
#if defined(SLABNOTIFY_HAVE_UNWIND) && defined(__SANITIZE_THREAD__)
	int n = unw_walk(pc, LEAK_CAPTURE);
#elif defined(SLABNOTIFY_HAVE_UNWIND)
	int n = unw_backtrace(pc, LEAK_CAPTURE);
#else
	int n = backtrace(pc, LEAK_CAPTURE);
#endif
	return n > 0 ? n : 0;
}

static __attribute__((noinline)) int leak_capture_stack(void **pc)
{
	pthread_rwlock_rdlock(&capture_lock);
	int n = capture(pc);
	pthread_rwlock_unlock(&capture_lock);
	return n;
}

static bool sample_this(void)
{
	unsigned int s = atomic_load_explicit(&leak_sample, memory_order_relaxed);
	if (s <= 1)
		return s == 1;
	if (tl_countdown == 0 || tl_countdown > s)
		tl_countdown = s;
	if (--tl_countdown)
		return false;
	tl_countdown = s;
	return true;
}

static void live_add(size_t size)
{
	size_t now = atomic_fetch_add_explicit(&all_live, size, memory_order_relaxed) + size;
	size_t peak = atomic_load_explicit(&all_peak, memory_order_relaxed);
	while (now > peak &&
	       !atomic_compare_exchange_weak_explicit(&all_peak, &peak, now, memory_order_relaxed,
						      memory_order_relaxed))
		;
}

static __attribute__((noinline)) int leak_handler(struct slab_notifier *nb, enum slab_event ev,
						  const struct slab_event_data *d)
{
	(void)nb;
	if (ev == SLAB_EVENT_ALLOC) {
		live_add(d->size);
		if (tl_quiet || tl_forking || !sample_this())
			return SLAB_NOTIFY_DONE;
		void **slot = slab_obj_ext(d->ptr, leak_slot);
		if (!slot)
			return SLAB_NOTIFY_DONE;
		void *pc[LEAK_CAPTURE];
		int n = leak_capture_stack(pc);
		pthread_mutex_lock(&table_lock);
		struct leak_stack *r = depot_get(pc, (uint32_t)n);
		if (r) {
			atomic_fetch_add_explicit(&r->count, 1, memory_order_relaxed);
			atomic_fetch_add_explicit(&r->bytes, d->size, memory_order_relaxed);
		}
		pthread_mutex_unlock(&table_lock);
		*slot = r;
	} else if (ev == SLAB_EVENT_FREE) {
		atomic_fetch_sub_explicit(&all_live, d->size, memory_order_relaxed);
		void **slot = slab_obj_ext(d->ptr, leak_slot);
		struct leak_stack *r = slot ? *slot : NULL;
		if (!r)
			return SLAB_NOTIFY_DONE;
		*slot = NULL;
		/* No lock: records stay put while the handler is registered. */
		atomic_fetch_sub_explicit(&r->count, 1, memory_order_relaxed);
		atomic_fetch_sub_explicit(&r->bytes, d->size, memory_order_relaxed);
	}
	return SLAB_NOTIFY_DONE;
}

static struct slab_notifier leak_nb = {
	.call = leak_handler,
	.priority = INT_MIN / 2,
};

/* Live bytes of the objects the tracker accepted and their peak, since
 * tracking last started (for slab_stats_report; not in the header). */
__attribute__((visibility("hidden"))) size_t slab_leak_tracked_bytes(size_t *peak)
{
	if (peak)
		*peak = atomic_load_explicit(&all_peak, memory_order_relaxed);
	return atomic_load_explicit(&all_live, memory_order_relaxed);
}

/* Stop (true) or resume recording what the calling thread allocates;
 * returns the previous setting. For slab_stats_report(), whose memcg
 * query may allocate (not in the header). */
__attribute__((visibility("hidden"))) bool slab_leak_quiet(bool on)
{
	bool was = tl_quiet;
	tl_quiet = on;
	return was;
}

/*
 * fork: a child must not inherit our locks, or the unwinder's, held by a
 * thread that does not exist there. The prepare handler waits for the
 * captures and depot updates in flight (short, and they need no other
 * lock). ctl_lock is not taken (a report holds it for long and
 * allocates): the child makes it anew, so that it can track and report.
 * Our handlers are registered after the core's (slab_leak_track() makes
 * the kmalloc caches first), so they run before the core takes its locks.
 * Between our prepare and our parent/child handlers the forking thread
 * records nothing (tl_forking): other fork handlers may allocate there
 * (liburcu's child handler does, from the core's, which runs before ours
 * in the child) while our locks are still held. FREEs take no lock.
 */
static void fork_prepare(void)
{
	tl_forking = true;
	pthread_rwlock_wrlock(&capture_lock);
	pthread_mutex_lock(&table_lock);
}

static void fork_parent(void)
{
	pthread_mutex_unlock(&table_lock);
	pthread_rwlock_unlock(&capture_lock);
	tl_forking = false;
}

/* The child makes the locks anew: a rwlock's word also counts the
 * parent's waiting threads, which do not exist in the child. They are
 * unlocked first, so that TSan sees them released. */
static void fork_child(void)
{
	pthread_mutex_unlock(&table_lock);
	pthread_rwlock_unlock(&capture_lock);
	pthread_rwlockattr_t a;
	pthread_rwlockattr_init(&a);
	pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&capture_lock, &a);
	pthread_rwlockattr_destroy(&a);
	pthread_mutex_init(&table_lock, NULL);
	pthread_mutex_init(&ctl_lock, NULL);
	tl_forking = false;
}

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void atfork_register(void)
{
	pthread_atfork(fork_prepare, fork_parent, fork_child);
}

/* ------------------------------------------------------------------ */
/* Switching                                                          */
/* ------------------------------------------------------------------ */

static void notify_on(struct slab_cache *c, void *arg)
{
	(void)arg;
	slab_cache_set_notify(c, true);
}

static int fail_errno(int err)
{
	errno = -err;
	return err;
}

int slab_leak_track(unsigned int sample)
{
	pthread_mutex_lock(&ctl_lock);
	int ret = 0;
	if (sample == 0) {
		atomic_store(&leak_sample, 0);
		if (registered) {
			ret = slab_notifier_unregister(&leak_nb);
			if (ret == 0 || ret == -ENOENT) {
				registered = false;
				ret = 0;
				table_release();
			}
		}
		pthread_mutex_unlock(&ctl_lock);
		return ret ? fail_errno(ret) : 0;
	}
	/* The size classes and kmalloc-large exist before they are switched
	 * on; and the core's fork handlers are registered before ours. */
	slab_free(slab_malloc(0, 0));
	pthread_once(&atfork_once, atfork_register);
	if (leak_slot < 0) {
		int slot = slab_obj_ext_reserve();
		if (slot < 0) {
			pthread_mutex_unlock(&ctl_lock);
			return fail_errno(slot);
		}
		leak_slot = slot;
	}
	/* Warm the unwinder up here, before the handler can run: glibc's
	 * backtrace() loads libgcc_s (and allocates) on first use, and
	 * libunwind initialises its globals lazily, without ordering that
	 * other threads (or TSan) could see. */
	void *warm[LEAK_CAPTURE];
	(void)leak_capture_stack(warm);
	atomic_store(&leak_sample, sample);
	if (!registered) {
		atomic_store(&all_live, 0);
		atomic_store(&all_peak, 0);
		leak_nb._next = NULL;
		leak_nb._gen = 0;
		leak_nb._flags = 0;
		ret = slab_notifier_register(&leak_nb);
		if (ret == 0 || ret == -EEXIST) {
			registered = true;
			ret = 0;
		} else {
			atomic_store(&leak_sample, 0);
		}
	}
	if (ret == 0)
		slab_cache_for_each(notify_on, NULL);
	pthread_mutex_unlock(&ctl_lock);
	return ret ? fail_errno(ret) : 0;
}

/* ------------------------------------------------------------------ */
/* Symbolization                                                      */
/* ------------------------------------------------------------------ */

struct frame_info {
	const char *func;       /* NULL: unknown */
	uintptr_t off;          /* pc - function start */
	const char *file;       /* NULL: no line info */
	int line;
	const char *module;     /* NULL: unknown */
	uintptr_t mod_off;      /* pc - module base */
	bool lib_module;        /* in the module that holds slabnotify */
};

struct symbolizer {
#ifdef SLABNOTIFY_HAVE_UNWIND
	Dwfl *dwfl;
	Dwfl_Module *self;
#else
	void *self_base;
#endif
};

static void sym_begin(struct symbolizer *s)
{
	memset(s, 0, sizeof(*s));
#ifdef SLABNOTIFY_HAVE_UNWIND
	static const Dwfl_Callbacks cb = {
		.find_elf = dwfl_linux_proc_find_elf,
		.find_debuginfo = dwfl_standard_find_debuginfo,
	};
	s->dwfl = dwfl_begin(&cb);
	if (!s->dwfl)
		return;
	if (dwfl_linux_proc_report(s->dwfl, getpid()) != 0 ||
	    dwfl_report_end(s->dwfl, NULL, NULL) != 0) {
		dwfl_end(s->dwfl);
		s->dwfl = NULL;
		return;
	}
	s->self = dwfl_addrmodule(s->dwfl, (Dwarf_Addr)(uintptr_t)&slab_malloc);
#else
	Dl_info info;
	if (dladdr((void *)&slab_malloc, &info))
		s->self_base = info.dli_fbase;
#endif
}

static void sym_end(struct symbolizer *s)
{
#ifdef SLABNOTIFY_HAVE_UNWIND
	if (s->dwfl)
		dwfl_end(s->dwfl);
#endif
	(void)s;
}

/* Symbolize a return address (looked up at pc - 1, the call). */
static void sym_frame(struct symbolizer *s, uintptr_t pc, struct frame_info *fi)
{
	memset(fi, 0, sizeof(*fi));
	uintptr_t at = pc ? pc - 1 : pc;
#ifdef SLABNOTIFY_HAVE_UNWIND
	if (!s->dwfl)
		return;
	Dwfl_Module *m = dwfl_addrmodule(s->dwfl, at);
	if (!m)
		return;
	fi->lib_module = m == s->self;
	Dwarf_Addr base = 0;
	fi->module = dwfl_module_info(m, NULL, &base, NULL, NULL, NULL, NULL, NULL);
	fi->mod_off = pc - (uintptr_t)base;
	GElf_Off off = 0;
	GElf_Sym sym;
	const char *name = dwfl_module_addrinfo(m, at, &off, &sym, NULL, NULL, NULL);
	if (name && *name) {
		fi->func = name;
		fi->off = (uintptr_t)off + (pc - at);
	}
	Dwfl_Line *line = dwfl_module_getsrc(m, at);
	if (line) {
		int lineno = 0;
		const char *file = dwfl_lineinfo(line, NULL, &lineno, NULL, NULL, NULL);
		if (file && lineno > 0) {
			fi->file = file;
			fi->line = lineno;
		}
	}
#else
	Dl_info info;
	if (!dladdr((void *)at, &info))
		return;
	fi->module = info.dli_fname;
	fi->mod_off = pc - (uintptr_t)info.dli_fbase;
	fi->lib_module = s->self_base && info.dli_fbase == s->self_base;
	if (info.dli_sname && info.dli_saddr) {
		fi->func = info.dli_sname;
		fi->off = pc - (uintptr_t)info.dli_saddr;
	}
#endif
}

/* Does @name (a symbol, maybe with a .cold/.part.N/.isra.N suffix)
 * belong to slabnotify's allocation path? */
static bool internal_name(const char *name, bool lib_module)
{
	static const char *const prefixes[] = {
		"slab_", "notify_", "sn_", "leak_", "unw_", "_ULx86_64_", "_Ux86_64_",
		"_ULaarch64_", "_Uaarch64_",
	};
	static const char *const exact[] = {
		"chain_call_alloc", "call_one", "alloc_post_hook", "large_alloc", "cache_alloc",
		"kmalloc_cache_slow", "cg_cache", "new_slab", "allocate_slab", "capture",
		"backtrace", "__backtrace",
	};
	/* The drop-in's entry points, when they are ours. */
	static const char *const dropin[] = {
		"malloc", "calloc", "realloc", "reallocarray", "aligned_alloc", "posix_memalign",
		"memalign", "valloc", "pvalloc",
	};
	char base[128];
	size_t len = strcspn(name, ".");
	if (len >= sizeof(base))
		return false;
	memcpy(base, name, len);
	base[len] = '\0';
	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
		if (!strncmp(base, prefixes[i], strlen(prefixes[i])))
			return true;
	for (size_t i = 0; i < sizeof(exact) / sizeof(exact[0]); i++)
		if (!strcmp(base, exact[i]))
			return true;
	if (lib_module)
		for (size_t i = 0; i < sizeof(dropin) / sizeof(dropin[0]); i++)
			if (!strcmp(base, dropin[i]))
				return true;
	return false;
}

/* Index of the first caller frame: after the leading run of slabnotify's
 * own frames: by name, or nameless in the module that holds slabnotify
 * (static functions the symbol tables at hand do not name, as with
 * dladdr() or a stripped library). LEAK_FALLBACK_SKIP if none is known. */
static uint32_t first_user_frame(struct symbolizer *s, void *const *pc, uint32_t depth)
{
	uint32_t i = 0, named = 0;
	struct frame_info fi;
	while (i < depth) {
		sym_frame(s, (uintptr_t)pc[i], &fi);
		if (fi.func ? !internal_name(fi.func, fi.lib_module) : !fi.lib_module)
			break;
		named += fi.func != NULL;
		i++;
	}
	if (named == 0 && depth > LEAK_FALLBACK_SKIP && i < LEAK_FALLBACK_SKIP)
		i = LEAK_FALLBACK_SKIP;
	return i;
}

/* ------------------------------------------------------------------ */
/* The report                                                         */
/* ------------------------------------------------------------------ */

struct entry {
	uint64_t hash;           /* of the caller frames */
	unsigned long count;
	size_t bytes;
	uint32_t first, depth;   /* caller frames: pc[first..depth) */
	void *pc[LEAK_CAPTURE];
};

static int cmp_hash(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;
	if (x->hash != y->hash)
		return x->hash < y->hash ? -1 : 1;
	uint32_t nx = x->depth - x->first, ny = y->depth - y->first;
	if (nx != ny)
		return nx < ny ? -1 : 1;
	return memcmp(x->pc + x->first, y->pc + y->first, nx * sizeof(void *));
}

static int cmp_bytes(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;
	if (x->bytes != y->bytes)
		return x->bytes > y->bytes ? -1 : 1;
	if (x->count != y->count)
		return x->count > y->count ? -1 : 1;
	return 0;
}

static void print_frame_text(FILE *f, unsigned idx, uintptr_t pc, const struct frame_info *fi)
{
	fprintf(f, "  #%u 0x%016" PRIxPTR, idx, pc);
	if (fi->func)
		fprintf(f, " %s+0x%" PRIxPTR, fi->func, fi->off);
	if (fi->file)
		fprintf(f, " (%s:%d)", fi->file, fi->line);
	else if (fi->module)
		fprintf(f, " (%s+0x%" PRIxPTR ")", fi->module, fi->mod_off);
	fputc('\n', f);
}

static void print_frame_json(FILE *f, uintptr_t pc, const struct frame_info *fi)
{
	fprintf(f, "{\"pc\":\"0x%" PRIxPTR "\"", pc);
	if (fi->func) {
		fprintf(f, ",\"function\":");
		json_string(f, fi->func);
		fprintf(f, ",\"offset\":%" PRIuPTR, fi->off);
	}
	if (fi->file) {
		fprintf(f, ",\"file\":");
		json_string(f, fi->file);
		fprintf(f, ",\"line\":%d", fi->line);
	}
	if (fi->module) {
		fprintf(f, ",\"module\":");
		json_string(f, fi->module);
	}
	fputc('}', f);
}

/* Copy the live records. Returns the count; *out is a mapping of
 * *bytes_out bytes, or NULL. */
static size_t snapshot(struct entry **out, size_t *bytes_out)
{
	*out = NULL;
	*bytes_out = 0;
	pthread_mutex_lock(&table_lock);
	size_t n = 0;
	for (size_t i = 0; i < nbuckets; i++)
		for (struct leak_stack *r = buckets[i]; r; r = r->next)
			n += atomic_load_explicit(&r->count, memory_order_relaxed) > 0;
	size_t bytes = round_page((n ? n : 1) * sizeof(struct entry));
	struct entry *e = n ? map_zero(bytes) : NULL;
	size_t k = 0;
	if (e) {
		for (size_t i = 0; i < nbuckets; i++)
			for (struct leak_stack *r = buckets[i]; r; r = r->next) {
				unsigned long cnt = atomic_load_explicit(&r->count, memory_order_relaxed);
				if (!cnt || k == n)
					continue;
				e[k].count = cnt;
				e[k].bytes = atomic_load_explicit(&r->bytes, memory_order_relaxed);
				e[k].depth = r->depth;
				memcpy(e[k].pc, r->pc, r->depth * sizeof(void *));
				k++;
			}
	}
	pthread_mutex_unlock(&table_lock);
	*out = e;
	*bytes_out = e ? bytes : 0;
	return k;
}

int slab_leak_report(FILE *f, unsigned int max_stacks, bool json)
{
	if (!f) {
		errno = EINVAL;
		return -EINVAL;
	}
	pthread_mutex_lock(&ctl_lock);
	bool quiet = tl_quiet;
	tl_quiet = true;   /* what symbolizing allocates is not recorded */
	unsigned int sample = atomic_load(&leak_sample);

	struct entry *e;
	size_t map_bytes;
	size_t n = snapshot(&e, &map_bytes);

	struct symbolizer sym;
	sym_begin(&sym);

	/* Cut slabnotify's frames off, then merge equal caller stacks. */
	for (size_t i = 0; i < n; i++) {
		e[i].first = first_user_frame(&sym, e[i].pc, e[i].depth);
		e[i].hash = hash_frames(e[i].pc + e[i].first, e[i].depth - e[i].first);
	}
	if (n > 1)
		qsort(e, n, sizeof(*e), cmp_hash);
	size_t m = 0;
	for (size_t i = 0; i < n; i++) {
		if (m && cmp_hash(&e[m - 1], &e[i]) == 0) {
			e[m - 1].count += e[i].count;
			e[m - 1].bytes += e[i].bytes;
			continue;
		}
		if (m != i)
			e[m] = e[i];
		m++;
	}
	if (m > 1)
		qsort(e, m, sizeof(*e), cmp_bytes);

	size_t total_bytes = 0;
	unsigned long total_objs = 0;
	for (size_t i = 0; i < m; i++) {
		total_bytes += e[i].bytes;
		total_objs += e[i].count;
	}
	size_t shown = max_stacks && max_stacks < m ? max_stacks : m;

	if (json) {
		fprintf(f, "{\"tracking\":%s,\"sample\":%u,\"bytes\":%zu,\"objects\":%lu,"
			   "\"stacks\":%zu,\"shown\":%zu,\"leaks\":[",
			sample ? "true" : "false", sample, total_bytes, total_objs, m, shown);
		for (size_t i = 0; i < shown; i++) {
			fprintf(f, "%s{\"bytes\":%zu,\"objects\":%lu,\"frames\":[", i ? "," : "",
				e[i].bytes, e[i].count);
			uint32_t last = e[i].depth;
			if (last - e[i].first > LEAK_MAX_FRAMES)
				last = e[i].first + LEAK_MAX_FRAMES;
			for (uint32_t j = e[i].first; j < last; j++) {
				struct frame_info fi;
				sym_frame(&sym, (uintptr_t)e[i].pc[j], &fi);
				if (j > e[i].first)
					fputc(',', f);
				print_frame_json(f, (uintptr_t)e[i].pc[j], &fi);
			}
			fprintf(f, "]}");
		}
		fprintf(f, "]}\n");
	} else {
		for (size_t i = 0; i < shown; i++) {
			fprintf(f, "%zu bytes in %lu object%s allocated from:\n", e[i].bytes, e[i].count,
				e[i].count == 1 ? "" : "s");
			uint32_t last = e[i].depth;
			if (last - e[i].first > LEAK_MAX_FRAMES)
				last = e[i].first + LEAK_MAX_FRAMES;
			for (uint32_t j = e[i].first; j < last; j++) {
				struct frame_info fi;
				sym_frame(&sym, (uintptr_t)e[i].pc[j], &fi);
				print_frame_text(f, j - e[i].first, (uintptr_t)e[i].pc[j], &fi);
			}
			fputc('\n', f);
		}
		if (shown < m)
			fprintf(f, "slabnotify: %zu more stacks not shown\n", m - shown);
		fprintf(f, "slabnotify: %zu bytes in %lu objects leaked from %zu stacks", total_bytes,
			total_objs, m);
		if (!sample)
			fprintf(f, " (leak tracking is off)");
		else if (sample > 1)
			fprintf(f, " (1 in %u allocations sampled)", sample);
		fputc('\n', f);
	}

	sym_end(&sym);
	if (e)
		munmap(e, map_bytes);
	tl_quiet = quiet;
	pthread_mutex_unlock(&ctl_lock);
	return (int)shown;
}
