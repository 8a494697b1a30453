/*
 * symbolize.c - return addresses to function, file:line and module
 * (stack.h), with a cache: a report symbolises only the frames it
 * prints, each pc once per process.
 *
 * elfutils' libdwfl gives the function from the symbol tables and
 * file:line from DWARF; when libdw is not loaded (stack_lib.h: never
 * loaded from here, a report may run in a signal handler), dladdr()
 * gives what the dynamic symbol tables know. The session is made on first use and told
 * about the modules again when an address falls in none it knows (a
 * library loaded since). C++ names are demangled with libstdc++'s
 * __cxa_demangle when the program has it loaded (found with dlsym: C
 * programs do not pay for libstdc++).
 *
 * Strings are copied into an arena of our own, interned, and never
 * freed: sn_frame's pointers live until exit. The cache and the arena
 * are anonymous mappings, never slab memory; what libdwfl allocates is
 * allocated in a quiet section, so no consumer records it.
 */
#define _GNU_SOURCE
#include "stack.h"
#include "stack_lib.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define CACHE_SLOTS  (1u << 16)   /* pcs; past that, frames are resolved uncached */
#define INTERN_SLOTS (1u << 15)
#define ARENA_CHUNK  (1u << 20)

struct cached {
	uintptr_t pc;              /* 0: empty */
	struct sn_frame frame;
};

static pthread_mutex_t sym_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cached *cache;
static unsigned cache_used;
static const char **interned;
static unsigned interned_used;
static char *arena;
static size_t arena_used, arena_size;
static bool set_up;

typedef char *(*demangle_fn)(const char *, char *, size_t *, int *);
static demangle_fn demangle;

#ifdef SLABNOTIFY_HAVE_UNWIND
static Dwfl *dwfl;
#endif

/* ------------------------------------------------------------------ */
/* Strings of our own                                                 */
/* ------------------------------------------------------------------ */

static void *map_lazy(size_t bytes)
{
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

static char *arena_copy(const char *s, size_t len)
{
	if (len + 1 > ARENA_CHUNK)
		return NULL;
	if (!arena || arena_used + len + 1 > arena_size) {
		char *c = map_lazy(ARENA_CHUNK);
		if (!c)
			return NULL;
		arena = c;
		arena_used = 0;
		arena_size = ARENA_CHUNK;
	}
	char *p = arena + arena_used;
	memcpy(p, s, len);
	p[len] = '\0';
	arena_used += len + 1;
	return p;
}

static uint64_t hash_str(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
	return h;
}

/* A copy of @s that lives until exit, the same pointer for equal
 * strings. Under sym_lock. */
static const char *intern(const char *s)
{
	if (!s || !*s)
		return NULL;
	size_t len = strlen(s);
	if (!interned || interned_used * 2 >= INTERN_SLOTS)
		return arena_copy(s, len);
	for (uint64_t i = hash_str(s);; i++) {
		const char **slot = &interned[i & (INTERN_SLOTS - 1)];
		if (!*slot) {
			*slot = arena_copy(s, len);
			interned_used += *slot != NULL;
			return *slot;
		}
		if (!strcmp(*slot, s))
			return *slot;
	}
}

/* ------------------------------------------------------------------ */
/* Resolving                                                          */
/* ------------------------------------------------------------------ */

static void setup(void)
{
	set_up = true;
	cache = map_lazy(CACHE_SLOTS * sizeof(*cache));
	interned = map_lazy(INTERN_SLOTS * sizeof(*interned));
	demangle = (demangle_fn)dlsym(RTLD_DEFAULT, "__cxa_demangle");
}

/* The function's name, demangled when it is a C++ one. */
static const char *function_name(const char *raw)
{
	if (!raw || !*raw)
		return NULL;
	if (demangle && raw[0] == '_' && raw[1] == 'Z') {
		int status = -1;
		char *d = demangle(raw, NULL, NULL, &status);
		if (d && status == 0) {
			const char *s = intern(d);
			free(d);
			return s;
		}
		free(d);
	}
	return intern(raw);
}

#ifdef SLABNOTIFY_HAVE_UNWIND
static bool dwfl_report_all(void)
{
	if (!dwfl && !(dwfl = sn_dwfl_begin()))
		return false;
	sn_lib.dwfl_report_begin(dwfl);
	if (sn_lib.dwfl_linux_proc_report(dwfl, getpid()) != 0 || sn_lib.dwfl_report_end(dwfl, NULL, NULL) != 0) {
		sn_lib.dwfl_end(dwfl);
		dwfl = NULL;
		return false;
	}
	return true;
}

/*
 * The system's libraries get function names only, no file:line: their
 * line tables are in separate, compressed debug files whose first use
 * costs about 80 ms per process (libc's, for the _start frames of every
 * stack), and "../sysdeps/..." says little to the reader.
 */
static bool system_module(const char *path)
{
	static const char *const dirs[] = { "/lib/", "/lib64/", "/usr/lib/", "/usr/lib64/" };
	for (size_t i = 0; path && i < sizeof(dirs) / sizeof(*dirs); i++)
		if (!strncmp(path, dirs[i], strlen(dirs[i])))
			return true;
	return false;
}

/* false: no libdwfl session could be made (then dladdr). */
static bool resolve_dwfl(uintptr_t at, struct sn_frame *out)
{
	if (!dwfl && !dwfl_report_all())
		return false;
	Dwfl_Module *m = sn_lib.dwfl_addrmodule(dwfl, at);
	if (!m && dwfl_report_all())
		m = sn_lib.dwfl_addrmodule(dwfl, at);
	if (!m)
		return true;
	out->module = intern(sn_lib.dwfl_module_info(m, NULL, NULL, NULL, NULL, NULL, NULL, NULL));
	GElf_Off off = 0;
	GElf_Sym sym;
	out->function = function_name(sn_lib.dwfl_module_addrinfo(m, at, &off, &sym, NULL, NULL, NULL));
	if (system_module(out->module))
		return true;
	Dwfl_Line *line = sn_lib.dwfl_module_getsrc(m, at);
	int lineno = 0;
	const char *file = line ? sn_lib.dwfl_lineinfo(line, NULL, &lineno, NULL, NULL, NULL) : NULL;
	if (file && lineno > 0) {
		out->file = intern(file);
		out->line = (unsigned)lineno;
	}
	return true;
}
#endif

static void resolve_uncached(uintptr_t at, struct sn_frame *out)
{
#ifdef SLABNOTIFY_HAVE_UNWIND
	if (sn_symbolizer_ready() && resolve_dwfl(at, out))
		return;
#endif
	Dl_info info;
	if (!dladdr((void *)at, &info))
		return;
	out->module = intern(info.dli_fname);
	out->function = function_name(info.dli_sname);
}

void sn_frame_resolve(uintptr_t pc, struct sn_frame *out)
{
	memset(out, 0, sizeof(*out));
	out->pc = pc;
	if (!pc)
		return;
	sn_quiet_begin();
	pthread_mutex_lock(&sym_lock);
	if (!set_up)
		setup();
	struct cached *slot = NULL;
	if (cache) {
		for (uint64_t i = (pc * 0x9e3779b97f4a7c15ULL) >> 48;; i++) {
			struct cached *c = &cache[i & (CACHE_SLOTS - 1)];
			if (c->pc == pc) {
				*out = c->frame;
				goto done;
			}
			if (!c->pc) {
				slot = cache_used * 2 < CACHE_SLOTS ? c : NULL;
				break;
			}
		}
	}
	resolve_uncached(pc - 1, out);    /* a return address: the call */
	if (slot) {
		slot->pc = pc;
		slot->frame = *out;
		cache_used++;
	}
done:
	pthread_mutex_unlock(&sym_lock);
	sn_quiet_end();
}

/* A report of a run whose captures are rare loads libdw now, at its
 * first stack: in a fault's signal handler too, where the report already
 * allocates (stack_lib.h). Without it, names by dladdr(). */
static void symbols_for_report(FILE *f)
{
	if (!sn_stack_symbols_deferred() || sn_stack_lib_load_symbolizer())
		return;
	static _Atomic bool said;
	if (!atomic_exchange(&said, true))
		fprintf(f, "slabnotify: cannot load libdw (%s): stacks without file:line\n", sn_stack_lib_error());
}

void sn_stack_print(FILE *f, sn_stack_id id, const char *indent)
{
	symbols_for_report(f);
	void *const *pcs;
	uint32_t n = sn_stack_frames(id, &pcs);
	for (uint32_t i = 0; i < n; i++) {
		struct sn_frame fr;
		sn_frame_resolve((uintptr_t)pcs[i], &fr);
		fprintf(f, "%s#%u %s", indent ? indent : "", i, fr.function ? fr.function : "??");
		if (fr.file)
			fprintf(f, " (%s:%u)", fr.file, fr.line);
		else if (fr.module)
			fprintf(f, " (%s)", fr.module);
		fputc('\n', f);
	}
}
