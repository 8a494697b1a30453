/*
 * statpage.c - the live stats page: the process's figures, published in
 * a shared file that tools of the same user read (slabnotify stat, top,
 * exporter) and through which they change its limits (slabnotify set).
 * The layout and the protocol are in statpage.h.
 *
 * Who writes, and when. One thread of ours ("slabnotify-stat"), started
 * by slab_stat_page_enable() (the drop-in starts it from its constructor
 * unless SLABNOTIFY_STAT_PAGE=0). It sleeps on the control word (a shared
 * futex) for at most a second; each wake publishes, so figures are never
 * more than a second old, and a reader that wants them exact asks (a
 * control request with no flags) and is answered at once. The allocation
 * fast and slow paths are not touched at all: the cost is one wake-up a
 * second plus what a publish reads (slab_cache_info of the used caches,
 * the memory groups), and requests are served at most every 10 ms.
 *
 * The thread runs in a quiet section (its own allocations are never
 * charged, failed or tracked) with every signal blocked (the program's
 * signals go to the program's threads), and it is created with the C
 * library's pthread_create, not the drop-in's, so that it takes no
 * thread ordinal from the program (consumer.h).
 *
 * Exit and fork. A destructor publishes the final figures (flagged
 * SN_SUM_EXITED, for a reader that has the page mapped) and unlinks the
 * file; sn_stat_page_remove() unlinks it from a fatal signal handler. A
 * fork child maps its own page and starts its own thread: it must not
 * write its parent's.
 */
#define _GNU_SOURCE
#include "consumer.h"
#include "statpage.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* leak.c, not in the header (as for stats_report.c). */
__attribute__((visibility("hidden"))) size_t slab_leak_tracked_bytes(size_t *peak);

#define MIN_REQUEST_GAP_NS (10 * 1000 * 1000L)

static pthread_mutex_t pub_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sn_page *page;          /* under pub_lock */
static int page_fd = -1;
static char page_path[4200];          /* for unlink, also from a signal handler */
static _Atomic bool page_live;        /* the file exists and is ours */
static _Atomic bool stopping;
static bool atfork_done;
static bool started;                  /* under pub_lock */
static bool memcg_on;                 /* read the groups (memcg in use) */
static unsigned leak_sample;
static sn_stat_limits_fn limits_fn;
static struct slab_fault_attr fault;  /* the injection in force, for `set` */
static bool fault_on;
static char fault_filter[128], fault_stack[256];   /* what `set` keeps */
static int64_t last_publish_ns;

/* ------------------------------------------------------------------ */
/* Small helpers                                                      */
/* ------------------------------------------------------------------ */

static long futex(uint32_t *word, int op, uint32_t val, const struct timespec *ts)
{
	return syscall(SYS_futex, word, op, val, ts, NULL, 0);
}

static int64_t now_ns(clockid_t clk)
{
	struct timespec ts;
	clock_gettime(clk, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Whole-file read into @buf (NUL-terminated), -1 on failure. */
static ssize_t read_small(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, cap - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	return n;
}

/* Field 22 of /proc/self/stat: the start time in clock ticks after boot. */
static uint64_t start_ticks_self(void)
{
	char buf[1024];
	if (read_small("/proc/self/stat", buf, sizeof(buf)) < 0)
		return 0;
	return sn_proc_start_ticks(buf);
}

static void read_command(char *out, size_t cap)
{
	ssize_t n = read_small("/proc/self/cmdline", out, cap);
	if (n <= 0) {
		out[0] = '\0';
		return;
	}
	while (n > 0 && out[n - 1] == '\0')
		n--;
	for (ssize_t i = 0; i < n; i++)
		if ((unsigned char)out[i] < 0x20)
			out[i] = ' ';
	out[n] = '\0';
}

static uint64_t rss_bytes(void)
{
	char buf[128];
	if (read_small("/proc/self/statm", buf, sizeof(buf)) < 0)
		return 0;
	unsigned long size, res;
	if (sscanf(buf, "%lu %lu", &size, &res) != 2)
		return 0;
	return (uint64_t)res * (uint64_t)sysconf(_SC_PAGESIZE);
}

static uint64_t lim(size_t v)
{
	return v == SIZE_MAX ? UINT64_MAX : (uint64_t)v;
}

/* ------------------------------------------------------------------ */
/* The page file                                                      */
/* ------------------------------------------------------------------ */

/* DIR for pages: made 0700 if missing; refused unless ours and private. */
static int open_dir(void)
{
	char dir[4096];
	const char *env = getenv(SN_PAGE_ENV_DIR);
	if (env && *env)
		snprintf(dir, sizeof(dir), "%s", env);
	else
		snprintf(dir, sizeof(dir), "/dev/shm/slabnotify-%u", (unsigned)geteuid());
	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		return -1;
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0)
		return -1;
	struct stat st;
	if (fstat(dfd, &st) != 0 || st.st_uid != geteuid() || (st.st_mode & 077)) {
		close(dfd);
		errno = EPERM;
		return -1;
	}
	snprintf(page_path, sizeof(page_path), "%s/%d", dir, (int)getpid());
	return dfd;
}

/* A file of our pid can only be a leftover (pid reuse, or the image we
 * exec'd from): it is replaced, never reused. */
static int page_create(void)
{
	int dfd = open_dir();
	if (dfd < 0)
		return -errno;
	char name[24];
	snprintf(name, sizeof(name), "%d", (int)getpid());
	unlinkat(dfd, name, 0);
	int fd = openat(dfd, name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	int err = errno;
	close(dfd);
	if (fd < 0)
		return -err;
	/* Away from the low descriptors a program may reuse. */
	int hi = fcntl(fd, F_DUPFD_CLOEXEC, 200);
	if (hi >= 0) {
		close(fd);
		fd = hi;
	}
	void *m = MAP_FAILED;
	if (ftruncate(fd, sizeof(struct sn_page)) == 0)
		m = mmap(NULL, sizeof(struct sn_page), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED) {
		err = errno;
		unlink(page_path);
		close(fd);
		return -err;
	}
	struct sn_page *p = m;
	p->version = SN_PAGE_VERSION;
	p->size = sizeof(struct sn_page);
	p->pid = (int32_t)getpid();
	p->uid = (uint32_t)geteuid();
	p->start_ticks = start_ticks_self();
	p->start_time = (int64_t)time(NULL);
	read_command(p->command, sizeof(p->command));
	__atomic_store_n(&p->magic, SN_PAGE_MAGIC, __ATOMIC_RELEASE);   /* last: complete */
	page = p;
	page_fd = fd;
	atomic_store(&page_live, true);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Publishing                                                         */
/* ------------------------------------------------------------------ */

/* What a publish collects before it writes the page. */
struct figures {
	struct sn_page_summary sum;
	struct sn_page_group groups[SN_PAGE_GROUPS];
	struct sn_page_cache caches[SN_PAGE_CACHES];
};
static struct figures fig;            /* under pub_lock */

static void cache_row(struct slab_cache *c, void *arg)
{
	struct figures *f = arg;
	struct slab_cache_info i;
	if (slab_cache_info(c, &i) != 0)
		return;
	if (i.alloc_slab == 0 && i.alloc_fastpath + i.alloc_slowpath == 0)
		return;                    /* never used: as the report's slabinfo */
	f->sum.nr_caches_total++;
	if (f->sum.nr_caches >= SN_PAGE_CACHES)
		return;
	struct sn_page_cache *r = &f->caches[f->sum.nr_caches++];
	*r = (struct sn_page_cache){ .object_size = i.object_size, .size = i.size,
		.objs_per_slab = i.objs_per_slab, .slab_bytes = i.slab_bytes,
		.active_objs = i.active_objs, .num_objs = i.num_objs,
		.active_slabs = i.active_slabs, .num_slabs = i.num_slabs,
		.alloc_fastpath = i.alloc_fastpath, .alloc_slowpath = i.alloc_slowpath,
		.free_fastpath = i.free_fastpath, .free_slowpath = i.free_slowpath,
		.free_remote = i.free_remote, .alloc_slab = i.alloc_slab, .free_slab = i.free_slab };
	snprintf(r->name, sizeof(r->name), "%s", i.name);
}

static void group_row(const char *path, const struct slab_memcg_stat *st, void *arg)
{
	struct figures *f = arg;
	f->sum.nr_groups_total++;
	if (f->sum.nr_groups >= SN_PAGE_GROUPS)
		return;
	struct sn_page_group *g = &f->groups[f->sum.nr_groups++];
	*g = (struct sn_page_group){ .usage = st->usage, .peak = st->peak, .max = lim(st->max),
		.high = lim(st->high), .nr_objects = st->nr_objects, .failcnt = st->failcnt,
		.events_high = st->events_high, .events_max = st->events_max,
		.events_nofail = st->events_nofail, .throttled_us = st->throttled_us };
	snprintf(g->path, sizeof(g->path), "%s", path);
}

static void collect(struct figures *f, bool exiting)
{
	memset(&f->sum, 0, sizeof(f->sum));
	struct sn_page_summary *s = &f->sum;
	struct slab_mem_stat mem = { 0 };
	slab_mem_stat(&mem);
	s->heap_bytes = mem.in_use;
	s->heap_peak_bytes = mem.peak;
	s->large_bytes = mem.large_in_use;
	s->rss_bytes = rss_bytes();
	struct rusage ru;
	s->rss_peak_bytes = getrusage(RUSAGE_SELF, &ru) == 0 ? (uint64_t)ru.ru_maxrss * 1024 : 0;
	s->max = s->high = UINT64_MAX;
	s->vetoes_failslab = slab_fault_injected();
	if (memcg_on) {
		struct slab_memcg_stat root;
		if (slab_memcg_stat(slab_memcg_root(), &root) == 0) {
			s->flags |= SN_SUM_MEMCG;
			s->max = lim(root.max);
			s->high = lim(root.high);
			s->vetoes_memcg = root.failcnt;
		}
		sn_memcg_walk(group_row, f);
	}
	if (fault_on) {
		s->flags |= SN_SUM_FAULTS;
		s->fail_probability = fault.probability;
		s->fail_interval = fault.interval;
		s->fail_times = fault.times;
		s->fail_min_size = fault.min_size;
		s->fail_space = fault.space;
		s->fail_seed = fault.seed;
	}
	size_t peak = 0;
	s->leak_tracked_bytes = slab_leak_tracked_bytes(&peak);
	s->leak_tracked_peak_bytes = peak;
	s->leak_sample = leak_sample;
	if (leak_sample)
		s->flags |= SN_SUM_LEAKS;
	if (exiting)
		s->flags |= SN_SUM_EXITED;
	slab_cache_for_each(cache_row, f);
}

/* pub_lock held. The seqlock's writer side. */
static void publish_locked(bool exiting)
{
	if (!page)
		return;
	collect(&fig, exiting);
	uint64_t seq = __atomic_load_n(&page->seq, __ATOMIC_RELAXED);
	__atomic_store_n(&page->seq, seq + 1, __ATOMIC_RELAXED);
	sn_fence(__ATOMIC_RELEASE);
	page->sum = fig.sum;
	memcpy(page->groups, fig.groups, sizeof(fig.groups[0]) * fig.sum.nr_groups);
	memcpy(page->caches, fig.caches, sizeof(fig.caches[0]) * fig.sum.nr_caches);
	page->publishes++;
	page->published_ns = now_ns(CLOCK_REALTIME);
	__atomic_store_n(&page->seq, seq + 2, __ATOMIC_RELEASE);
	last_publish_ns = now_ns(CLOCK_MONOTONIC);
}

/* ------------------------------------------------------------------ */
/* Control requests                                                   */
/* ------------------------------------------------------------------ */

/* The file must still be ours and private: a request through a page
 * someone made writable to others is refused. */
static bool page_private(void)
{
	struct stat st;
	return fstat(page_fd, &st) == 0 && st.st_uid == geteuid() && !(st.st_mode & 077);
}

static int ctl_validate(const struct sn_page_ctl *c)
{
	if (c->flags & ~SN_CTL_ALL)
		return -EINVAL;
	if ((c->flags & SN_CTL_FAIL_PROB) && !(c->fail_probability >= 0 && c->fail_probability <= 100))
		return -EINVAL;
	if ((c->flags & SN_CTL_FAIL_INT) && c->fail_interval < 1)
		return -EINVAL;
	if ((c->flags & SN_CTL_FAIL_TIMES) && c->fail_times < -1)
		return -EINVAL;
	if ((c->flags & (SN_CTL_MAX | SN_CTL_HIGH)) && !limits_fn)
		return -ENOTSUP;
	return 0;
}

static int ctl_apply_faults(const struct sn_page_ctl *c)
{
	struct slab_fault_attr a = fault_on ? fault
		: (struct slab_fault_attr){ .probability = 0, .interval = 1, .times = -1, .seed = 1 };
	if (c->flags & SN_CTL_FAIL_PROB)
		a.probability = c->fail_probability;
	if (c->flags & SN_CTL_FAIL_INT)
		a.interval = c->fail_interval;
	if (c->flags & SN_CTL_FAIL_TIMES)
		a.times = c->fail_times;
	if (c->flags & SN_CTL_FAIL_MIN)
		a.min_size = c->fail_min_size;
	if (c->flags & SN_CTL_FAIL_SPACE)
		a.space = c->fail_space;
	/* An interval alone fails every Nth call, as at start (config.c). */
	if (!fault_on && !(c->flags & SN_CTL_FAIL_PROB) && a.interval > 1)
		a.probability = 100;
	int err = slab_fault_inject(&a);
	if (err)
		return err;
	fault = a;
	fault_on = true;
	return 0;
}

static int ctl_apply(const struct sn_page_ctl *c)
{
	if (!page_private())
		return -EPERM;
	int err = ctl_validate(c);
	if (err)
		return err;
	if (c->flags & (SN_CTL_MAX | SN_CTL_HIGH)) {
		size_t max = c->max == UINT64_MAX ? SIZE_MAX : (size_t)c->max;
		size_t high = c->high == UINT64_MAX ? SIZE_MAX : (size_t)c->high;
		err = limits_fn(c->flags & (SN_CTL_MAX | SN_CTL_HIGH), max, high);
		if (err)
			return err;
		memcg_on = true;
	}
	if (c->flags & (SN_CTL_FAIL_PROB | SN_CTL_FAIL_INT | SN_CTL_FAIL_TIMES | SN_CTL_FAIL_MIN |
			SN_CTL_FAIL_SPACE))
		err = ctl_apply_faults(c);
	return err;
}

/* pub_lock held: serve the request numbered @req. */
static void serve_request(uint32_t req)
{
	int64_t gap = now_ns(CLOCK_MONOTONIC) - last_publish_ns;
	if (gap >= 0 && gap < MIN_REQUEST_GAP_NS) {      /* the bound on the rate */
		struct timespec ts = { 0, MIN_REQUEST_GAP_NS - gap };
		nanosleep(&ts, NULL);
	}
	struct sn_page_ctl c;
	memcpy(&c, &page->ctl, sizeof(c));
	int status = c.flags ? ctl_apply(&c) : 0;
	publish_locked(false);
	page->ctl_status = status;
	__atomic_store_n(&page->ctl_ack, req, __ATOMIC_RELEASE);
	futex(&page->ctl_ack, FUTEX_WAKE, INT32_MAX, NULL);
}

/* ------------------------------------------------------------------ */
/* The thread                                                         */
/* ------------------------------------------------------------------ */

/* A delayed start (the drop-in's, a fork child's) makes the page after a
 * second: a process that execs or exits at once never makes one (an exec
 * or an _exit would leave it behind, for a reader to clean), and a
 * process that short is not one to watch. */
static bool child_page(void)
{
	struct timespec ts = { 1, 0 };
	nanosleep(&ts, NULL);
	pthread_mutex_lock(&pub_lock);
	bool ok = !atomic_load(&stopping) && page_create() == 0;
	if (ok)
		publish_locked(false);
	pthread_mutex_unlock(&pub_lock);
	return ok;
}

static void *stat_thread(void *arg)
{
	sn_quiet_begin();
	if (arg && !child_page()) {
		sn_quiet_end();
		return NULL;
	}
	for (;;) {
		uint32_t *reqw = &page->ctl_req;
		uint32_t req = __atomic_load_n(reqw, __ATOMIC_ACQUIRE);
		if (req == __atomic_load_n(&page->ctl_ack, __ATOMIC_RELAXED)) {
			struct timespec ts = { 1, 0 };
			futex(reqw, FUTEX_WAIT, req, &ts);
			req = __atomic_load_n(reqw, __ATOMIC_ACQUIRE);
		}
		pthread_mutex_lock(&pub_lock);
		if (atomic_load(&stopping)) {
			pthread_mutex_unlock(&pub_lock);
			break;
		}
		if (req != __atomic_load_n(&page->ctl_ack, __ATOMIC_RELAXED))
			serve_request(req);
		else
			publish_locked(false);
		pthread_mutex_unlock(&pub_lock);
	}
	sn_quiet_end();
	return NULL;
}

typedef int (*pthread_create_fn)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);

/* The C library's pthread_create: the drop-in's would give our thread
 * an ordinal of the program's. */
static int start_thread(bool child)
{
	pthread_create_fn create = (pthread_create_fn)dlsym(RTLD_NEXT, "pthread_create");
	if (!create)
		create = pthread_create;
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	pthread_t t;
	int err = create(&t, &attr, stat_thread, child ? &page_fd : NULL);
	pthread_attr_destroy(&attr);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!err)
		pthread_setname_np(t, "slabnotify-stat");
	return -err;
}

/* The child's own page and thread, made by the thread (child_page());
 * the parent's page is left alone. No prepare handler: the child needs
 * nothing the parent's thread could be changing but its own fields. */
static void fork_child(void)
{
	pthread_mutex_init(&pub_lock, NULL);
	bool had = atomic_exchange(&page_live, false);
	if (page)
		munmap(page, sizeof(*page));
	if (page_fd >= 0)
		close(page_fd);
	page = NULL;
	page_fd = -1;
	if ((had || started) && !atomic_load(&stopping))
		start_thread(true);
}

/* ------------------------------------------------------------------ */
/* Entry points                                                       */
/* ------------------------------------------------------------------ */

/* The default for library users: the root group's limits. */
static int root_limits(unsigned which, size_t max, size_t high)
{
	struct slab_memcg *root = slab_memcg_root();
	if (!root)
		return -ENOMEM;
	if ((which & SN_CTL_HIGH) && slab_memcg_set_high(root, high) != 0)
		return -errno;
	if ((which & SN_CTL_MAX) && slab_memcg_set_max(root, max) != 0)
		return -errno;
	return 0;
}

int sn_stat_page_start(sn_stat_limits_fn limits, bool memcg, bool delayed)
{
	sn_quiet_begin();
	pthread_mutex_lock(&pub_lock);
	int err = 0;
	if (page || started) {
		pthread_mutex_unlock(&pub_lock);
		sn_quiet_end();
		return 0;
	}
	started = true;
	limits_fn = limits;
	memcg_on = memcg;
	if (!atfork_done) {
		pthread_atfork(NULL, NULL, fork_child);
		atfork_done = true;
	}
	if (delayed) {
		err = start_thread(true);
	} else if (!(err = page_create())) {
		publish_locked(false);
		err = start_thread(false);
		if (err)
			sn_stat_page_remove();
	}
	pthread_mutex_unlock(&pub_lock);
	sn_quiet_end();
	return err;
}

int slab_stat_page_enable(void)
{
	int err = sn_stat_page_start(root_limits, true, false);
	if (err) {
		errno = -err;
		return err;
	}
	return 0;
}

void sn_stat_page_fault_attr(const struct slab_fault_attr *a, const char *filter, const char *stack)
{
	pthread_mutex_lock(&pub_lock);
	fault = *a;
	fault.cache_filter = fault.stack_filter = NULL;
	if (filter && strlen(filter) < sizeof(fault_filter)) {
		strcpy(fault_filter, filter);
		fault.cache_filter = fault_filter;
	}
	if (stack && strlen(stack) < sizeof(fault_stack)) {
		strcpy(fault_stack, stack);
		fault.stack_filter = fault_stack;
	}
	fault_on = true;
	pthread_mutex_unlock(&pub_lock);
}

void sn_stat_page_leaks(unsigned sample)
{
	leak_sample = sample;
}

void sn_stat_page_remove(void)
{
	if (atomic_exchange(&page_live, false))
		unlink(page_path);
}

__attribute__((destructor)) static void stat_page_exit(void)
{
	if (!started)
		return;
	sn_quiet_begin();
	atomic_store(&stopping, true);
	/* Kept locked: the thread, if it wakes, finds nothing more to do. */
	pthread_mutex_lock(&pub_lock);
	if (!atomic_load(&page_live)) {
		sn_quiet_end();
		return;
	}
	publish_locked(true);
	sn_stat_page_remove();
	/* A requester waiting now hears that we are gone. */
	uint32_t req = __atomic_load_n(&page->ctl_req, __ATOMIC_ACQUIRE);
	if (req != page->ctl_ack) {
		page->ctl_status = -ESRCH;
		__atomic_store_n(&page->ctl_ack, req, __ATOMIC_RELEASE);
		futex(&page->ctl_ack, FUTEX_WAKE, INT32_MAX, NULL);
	}
	sn_quiet_end();
}
