/*
 * stack.c - stack capture and the stack depot (stack.h).
 *
 * Capture. libunwind's unw_backtrace() (glibc's backtrace() when
 * libunwind could not be loaded: stack_lib.h) takes the raw return
 * addresses; the leading frames that lie
 * in slabnotify's own code (the capture, the handler, the hook, the slow
 * path, the drop-in's malloc) are cut at once, by address, so that the
 * depot holds the caller's frames only and stacks that differ only
 * inside slabnotify are one stack. Frames before the first of ours (the
 * unwinder's own) go with them.
 *
 * Slabnotify's code. When it is a module of its own (the drop-in,
 * libslabnotify.so), the executable segments of that module. When it is
 * linked into the program (libslabnotify.a), the module is the program's,
 * so the address ranges of the compilation units built from slabnotify's
 * source tree are taken from DWARF instead (the tree: the directory two
 * levels above this file's). Never a function's name: a program's own
 * leak_config() is the program's.
 *
 * The depot. Unique stacks in an open hash table with chains, each
 * stack numbered in order of arrival (its id, from 1). Lookups take no
 * lock (records are published with release stores and never change or
 * go away); a new stack is added under depot_lock. Records, the id table
 * and the buckets live in anonymous mappings of their own, never in
 * slab memory, and stay until exit (as in Linux's stack depot): an id
 * held anywhere stays valid.
 *
 * fork. The child must not inherit the depot's lock, or one of the
 * unwinder's (libunwind has no fork handlers), held by a thread that
 * does not exist there: captures hold capture_lock for reading, and the
 * core's fork handlers (slab.c, in lock.h's order: after the RCU wait,
 * before the notifier chain) call sn_stack_fork_prepare(), which takes
 * it for writing and the depot lock. The forking thread captures
 * nothing between prepare and parent/child (other fork handlers may
 * allocate there), and a walk captures nothing inside itself (the lock
 * is not recursive: a nested read waits behind a waiting fork, which
 * waits for the outer read). Every capture comes from an allocation or a handler,
 * after the core's initialisation registered those handlers.
 */
#define _GNU_SOURCE
#include "stack.h"
#include "stack_lib.h"
#include "lock.h"

#include <dlfcn.h>
#include <execinfo.h>
#include <link.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define RAW_FRAMES    64          /* taken: ours and the caller's */
#define KEPT_FRAMES   32          /* kept: the caller's */
#define DEPOT_MAX     SN_STACK_MAX
/* One bucket per stack the depot can hold, so that chains stay short even
 * when it is full: --debug captures two stacks per object, and bintree's
 * recursion makes many (its --debug run 30.7 s with 2^16 buckets, 19.5 s
 * with these). 8 MiB of address space, backed as stacks arrive. */
#define DEPOT_BUCKETS DEPOT_MAX
#define DEPOT_CHUNK   (1u << 20)
#define MAX_RANGES    512

#define STACK_TLS __attribute__((tls_model("initial-exec")))

struct rec {
	struct rec *_Atomic next;   /* hash chain */
	uint64_t hash;
	uint32_t depth;
	void *pc[];
};

static struct sn_mutex depot_lock = SN_MUTEX_INIT(SN_RANK_DEPOT);
static struct rec *_Atomic *buckets;     /* DEPOT_BUCKETS heads */
static struct rec *_Atomic *by_id;       /* DEPOT_MAX records; [0] unused */
static _Atomic uint32_t nstacks;
static char *chunk;                      /* the record arena, under depot_lock */
static size_t chunk_used, chunk_size;

static pthread_rwlock_t capture_lock = PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP;
static __thread bool tl_forking STACK_TLS;
/* Inside a walk: an allocation the unwinder makes (a dlopen'ed
 * libunwind's thread-local data, by __tls_get_addr) is recorded without
 * a stack. Taking capture_lock again there would deadlock with a fork
 * waiting for it: the lock prefers its writer, and is not recursive. */
static __thread bool tl_walking STACK_TLS;

struct range { uintptr_t lo, hi; };
static struct range self_ranges[MAX_RANGES];
static unsigned nself;

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static _Atomic bool ready;

/* ------------------------------------------------------------------ */
/* Memory of our own                                                  */
/* ------------------------------------------------------------------ */

static void *map_lazy(size_t bytes)
{
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

/* @bytes from the arena. Under depot_lock. */
static void *arena_take(size_t bytes)
{
	bytes = (bytes + 15) & ~(size_t)15;
	if (!chunk || chunk_used + bytes > chunk_size) {
		char *c = map_lazy(DEPOT_CHUNK);
		if (!c)
			return NULL;
		chunk = c;
		chunk_used = 0;
		chunk_size = DEPOT_CHUNK;
	}
	void *p = chunk + chunk_used;
	chunk_used += bytes;
	return p;
}

/* ------------------------------------------------------------------ */
/* Slabnotify's address ranges                                        */
/* ------------------------------------------------------------------ */

static void range_add(uintptr_t lo, uintptr_t hi)
{
	if (nself < MAX_RANGES && lo < hi)
		self_ranges[nself++] = (struct range){ lo, hi };
}

struct phdr_search {
	uintptr_t addr;
	bool found, is_program;
};

/* The executable segments of the module that holds @addr. */
static int phdr_visit(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)size;
	struct phdr_search *s = arg;
	bool holds = false;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
		if (ph->p_type == PT_LOAD && s->addr >= lo && s->addr < lo + ph->p_memsz)
			holds = true;
	}
	if (!holds)
		return 0;
	s->found = true;
	s->is_program = !info->dlpi_name || !info->dlpi_name[0];
	if (!s->is_program)
		for (int i = 0; i < info->dlpi_phnum; i++) {
			const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
			if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X))
				range_add(info->dlpi_addr + ph->p_vaddr,
					  info->dlpi_addr + ph->p_vaddr + ph->p_memsz);
		}
	return 1;
}

#ifdef SLABNOTIFY_HAVE_UNWIND
/* A compilation unit's source path, made absolute with its directory. */
static void cu_path(Dwarf_Die *cu, char *out, size_t cap)
{
	const char *name = sn_lib.dwarf_diename(cu);
	out[0] = '\0';
	if (!name)
		return;
	Dwarf_Attribute attr;
	const char *dir = sn_lib.dwarf_formstring(sn_lib.dwarf_attr(cu, DW_AT_comp_dir, &attr));
	if (name[0] != '/' && dir)
		snprintf(out, cap, "%s/%s", dir, name);
	else
		snprintf(out, cap, "%s", name);
}

/* Linked into the program: the ranges of the units under slabnotify's
 * source tree (this file is TREE/consumers/stack.c). */
static void ranges_from_dwarf(void)
{
	Dwfl *dwfl = sn_dwfl_begin();
	if (!dwfl)
		return;
	if (sn_lib.dwfl_linux_proc_report(dwfl, getpid()) != 0 || sn_lib.dwfl_report_end(dwfl, NULL, NULL) != 0)
		goto out;
	Dwarf_Addr here = (Dwarf_Addr)(uintptr_t)&sn_stack_capture, bias = 0;
	Dwfl_Module *m = sn_lib.dwfl_addrmodule(dwfl, here);
	Dwarf_Die *cu = m ? sn_lib.dwfl_module_addrdie(m, here, &bias) : NULL;
	if (!cu)
		goto out;
	char root[4096], path[4096];
	cu_path(cu, root, sizeof(root));
	char *tail = strstr(root, "/consumers/stack.c");
	if (!tail)
		goto out;
	tail[1] = '\0';    /* ".../src/" */
	size_t rootlen = strlen(root);
	for (cu = NULL; (cu = sn_lib.dwfl_module_nextcu(m, cu, &bias));) {
		cu_path(cu, path, sizeof(path));
		if (strncmp(path, root, rootlen) != 0)
			continue;
		Dwarf_Addr base, lo, hi;
		ptrdiff_t off = 0;
		while ((off = sn_lib.dwarf_ranges(cu, off, &base, &lo, &hi)) > 0)
			range_add((uintptr_t)(lo + bias), (uintptr_t)(hi + bias));
	}
out:
	sn_lib.dwfl_end(dwfl);
}
#endif

static void find_self(void)
{
	struct phdr_search s = { .addr = (uintptr_t)&sn_stack_capture };
	dl_iterate_phdr(phdr_visit, &s);
#ifdef SLABNOTIFY_HAVE_UNWIND
	if (s.found && s.is_program && sn_symbolizer_ready())
		ranges_from_dwarf();
#endif
}

bool sn_stack_pc_is_self(uintptr_t pc)
{
	uintptr_t at = pc ? pc - 1 : 0;    /* a return address: the call */
	for (unsigned i = 0; i < nself; i++)
		if (at >= self_ranges[i].lo && at < self_ranges[i].hi)
			return true;
	return false;
}

/* ------------------------------------------------------------------ */
/* Capture                                                            */
/* ------------------------------------------------------------------ */

#ifdef SLABNOTIFY_HAVE_UNWIND
/*
 * Two walks. unw_backtrace() keeps a per-thread trace cache, which makes
 * a capture on every allocation affordable, but its first use maps and
 * fills 256 KiB per thread (about 80 us). A consumer that captures
 * rarely (--guard, at most some hundred stacks a second) walks with
 * unw_step() instead, which has no per-thread data. So does TSan's
 * build: the trace cache is freed by a thread-specific-data destructor
 * that runs after TSan has finished the thread, and its mutex call then
 * crashes.
 */
static _Atomic bool rare_captures;

void sn_stack_capture_rarely(void)
{
	atomic_store_explicit(&rare_captures, true, memory_order_relaxed);
}

static bool captures_are_rare(void)
{
	return atomic_load_explicit(&rare_captures, memory_order_relaxed);
}

static bool walks_by_steps(void)
{
#ifdef __SANITIZE_THREAD__
	return true;
#else
	return captures_are_rare();
#endif
}

static int step_capture(void **pc, int max)
{
	unw_context_t ctx;
	unw_cursor_t cur;
	int n = 0;
	if (sn_lib.getcontext(&ctx) != 0 || sn_lib.init_local(&cur, &ctx) != 0)
		return 0;
	do {
		unw_word_t ip = 0;
		if (sn_lib.get_reg(&cur, UNW_REG_IP, &ip) != 0 || ip == 0)
			break;
		pc[n++] = (void *)(uintptr_t)ip;
	} while (n < max && sn_lib.step(&cur) > 0);
	return n;
}

static int unwind_capture(void **pc, int max)
{
	if (walks_by_steps())
		return step_capture(pc, max);
	return sn_lib.backtrace(pc, max);
}
#else
void sn_stack_capture_rarely(void)
{
}

static bool captures_are_rare(void)
{
	return false;
}
#endif

static int raw_capture(void **pc, int max)
{
	int n;
#ifdef SLABNOTIFY_HAVE_UNWIND
	if (sn_unwinder_ready())
		n = unwind_capture(pc, max);
	else
#endif
		n = backtrace(pc, max);
	return n > 0 ? n : 0;
}

/* Index of the caller's first frame: past the first run of ours (and
 * what comes before it: the unwinder's). 0 if none of ours is seen. */
static int first_caller_frame(void *const *pc, int n)
{
	int i = 0;
	while (i < n && !sn_stack_pc_is_self((uintptr_t)pc[i]))
		i++;
	if (i == n)
		return 0;
	while (i < n && sn_stack_pc_is_self((uintptr_t)pc[i]))
		i++;
	return i;
}

/*
 * Walk no further than the frames kept: the frames of ours before the
 * caller's are as many as the last capture's on this thread (the same
 * path, mostly), so the walk stops that many past @kept. When more
 * of ours came this time and the walk was cut there, it is taken again
 * in full. Returns the frames taken, *first the caller's first.
 */
static __thread int tl_ours STACK_TLS = 8;

static int capture_kept(void **pc, int kept, int *first)
{
	int max = tl_ours + kept;
	if (max > RAW_FRAMES)
		max = RAW_FRAMES;
	int n = raw_capture(pc, max);
	*first = first_caller_frame(pc, n);
	if (n == max && max < RAW_FRAMES && (*first == 0 || *first > tl_ours)) {
		n = raw_capture(pc, RAW_FRAMES);
		*first = first_caller_frame(pc, n);
	}
	if (*first)
		tl_ours = *first;
	return n;
}

/* ------------------------------------------------------------------ */
/* The depot                                                          */
/* ------------------------------------------------------------------ */

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

/* The id of a record in the chain from @head equal to pc[0..n), or 0. */
static sn_stack_id chain_find(struct rec *r, uint64_t h, void *const *pc, uint32_t n)
{
	for (; r; r = atomic_load_explicit(&r->next, memory_order_acquire))
		if (r->hash == h && r->depth == n && !memcmp(r->pc, pc, n * sizeof(*pc)))
			return (sn_stack_id)(uintptr_t)r->pc[n];   /* the id follows the frames */
	return 0;
}

static sn_stack_id depot_insert(void *const *pc, uint32_t n, uint64_t h)
{
	struct rec *_Atomic *head = &buckets[h & (DEPOT_BUCKETS - 1)];
	sn_lock(&depot_lock);
	sn_stack_id id = chain_find(atomic_load_explicit(head, memory_order_acquire), h, pc, n);
	uint32_t next = atomic_load_explicit(&nstacks, memory_order_relaxed) + 1;
	if (!id && next < DEPOT_MAX) {
		struct rec *r = arena_take(sizeof(*r) + (n + 1) * sizeof(void *));
		if (r) {
			r->hash = h;
			r->depth = n;
			memcpy(r->pc, pc, n * sizeof(*pc));
			r->pc[n] = (void *)(uintptr_t)next;
			atomic_store_explicit(&r->next, atomic_load_explicit(head, memory_order_relaxed),
					      memory_order_relaxed);
			atomic_store_explicit(&by_id[next], r, memory_order_release);
			atomic_store_explicit(head, r, memory_order_release);
			atomic_store_explicit(&nstacks, next, memory_order_release);
			id = next;
		}
	}
	sn_unlock(&depot_lock);
	return id;
}

static sn_stack_id depot_get(void *const *pc, uint32_t n)
{
	uint64_t h = hash_frames(pc, n);
	struct rec *head = atomic_load_explicit(&buckets[h & (DEPOT_BUCKETS - 1)], memory_order_acquire);
	sn_stack_id id = chain_find(head, h, pc, n);
	return id ? id : depot_insert(pc, n, h);
}

uint32_t sn_stack_frames(sn_stack_id id, void *const **pcs)
{
	*pcs = NULL;
	if (!id || id > atomic_load_explicit(&nstacks, memory_order_acquire))
		return 0;
	struct rec *r = atomic_load_explicit(&by_id[id], memory_order_acquire);
	if (!r)
		return 0;
	*pcs = r->pc;
	return r->depth;
}

uint32_t sn_stack_count(void)
{
	return atomic_load_explicit(&nstacks, memory_order_acquire);
}

/* ------------------------------------------------------------------ */
/* fork and setup                                                     */
/* ------------------------------------------------------------------ */

void sn_stack_fork_prepare(void)
{
	tl_forking = true;
	pthread_rwlock_wrlock(&capture_lock);
	pthread_mutex_lock(&depot_lock.m);
}

void sn_stack_fork_parent(void)
{
	pthread_mutex_unlock(&depot_lock.m);
	pthread_rwlock_unlock(&capture_lock);
	tl_forking = false;
}

/* The child makes the locks anew: a rwlock's word also counts the
 * parent's waiting threads, which do not exist in the child. They are
 * unlocked first, so that TSan sees them released. */
void sn_stack_fork_child(void)
{
	pthread_mutex_unlock(&depot_lock.m);
	pthread_rwlock_unlock(&capture_lock);
	pthread_rwlockattr_t a;
	pthread_rwlockattr_init(&a);
	pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&capture_lock, &a);
	pthread_rwlockattr_destroy(&a);
	sn_mutex_reinit(&depot_lock);
	tl_forking = false;
}

static void stack_setup(void)
{
	buckets = map_lazy(DEPOT_BUCKETS * sizeof(*buckets));
	by_id = map_lazy(DEPOT_MAX * sizeof(*by_id));
	if (!buckets || !by_id)
		return;
	find_self();
	/* Warm the unwinder up before a handler needs it: glibc's
	 * backtrace() loads libgcc_s (and allocates) on first use, and
	 * libunwind initialises its globals lazily, without ordering that
	 * other threads (or TSan) could see. */
	void *warm[RAW_FRAMES];
	(void)raw_capture(warm, RAW_FRAMES);
	atomic_store_explicit(&ready, true, memory_order_release);
}

/* The libraries first: stack_setup() warms up the unwinder it will use.
 * Rare captures defer libdw to the first report (sn_stack_print). */
void sn_stack_init(void)
{
	if (captures_are_rare())
		sn_stack_lib_load_unwinder();
	else
		sn_stack_lib_load();
	pthread_once(&init_once, stack_setup);
}

bool sn_stack_symbols_deferred(void)
{
	return captures_are_rare() && !sn_symbolizer_ready();
}

/* Set up on first use where that may load libraries (stack_lib.h): not
 * in the drop-in, whose constructor did it when an option wanted stacks. */
static bool capture_ready(void)
{
	if (atomic_load_explicit(&ready, memory_order_acquire))
		return true;
	if (!sn_stack_lib_lazy_allowed())
		return false;
	sn_stack_init();
	return atomic_load_explicit(&ready, memory_order_acquire);
}

/* Every walk holds capture_lock for reading, as the header says: a fork
 * must not copy a walk in progress (libunwind has no fork handlers).
 * false, and no walk, while this thread forks or walks already. */
static bool walk_begin(void)
{
	if (tl_forking || tl_walking)
		return false;
	tl_walking = true;
	sn_witness_acquire(SN_RANK_CAPTURE);
	pthread_rwlock_rdlock(&capture_lock);
	return true;
}

static void walk_end(void)
{
	pthread_rwlock_unlock(&capture_lock);
	sn_witness_release(SN_RANK_CAPTURE);
	tl_walking = false;
}

static int locked_raw_capture(void **pc, int max)
{
	if (!walk_begin())
		return 0;
	int n = raw_capture(pc, max);
	walk_end();
	return n;
}

/* A dlopen'ed libunwind's thread-local data (the trace cache's) is
 * allocated on the thread's first access, by __tls_get_addr calling
 * malloc: touched here, at the thread's start, rather than inside the
 * first allocation it records. The walk by steps has none. */
void sn_stack_thread_start(void)
{
	if (!atomic_load_explicit(&ready, memory_order_acquire) || captures_are_rare())
		return;
	void *pc[4];
	(void)locked_raw_capture(pc, 4);
}

int sn_stack_raw(void **pc, int max)
{
	return capture_ready() ? locked_raw_capture(pc, max) : 0;
}

sn_stack_id sn_stack_capture_depth(int frames)
{
	if (!capture_ready() || !walk_begin())
		return 0;
	if (frames > KEPT_FRAMES)
		frames = KEPT_FRAMES;
	void *pc[RAW_FRAMES];
	int first, n = capture_kept(pc, frames, &first);
	walk_end();
	int keep = n - first;
	if (keep > frames)
		keep = frames;
	return keep > 0 ? depot_get(pc + first, (uint32_t)keep) : 0;
}

sn_stack_id sn_stack_capture(void)
{
	return sn_stack_capture_depth(KEPT_FRAMES);
}
