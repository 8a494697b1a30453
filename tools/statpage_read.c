/*
 * statpage_read.c - finding, validating and reading live stats pages,
 * and sending control requests (statpage_read.h).
 */
#define _GNU_SOURCE
#include "statpage_read.h"
#include "slabnotify-tool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <math.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int sp_exit_status(enum sp_result r)
{
	switch (r) {
	case SP_OK:             return 0;
	case SP_NO_PROCESS:     return EXIT_NO_PROCESS;
	case SP_NOT_SLABNOTIFY: return EXIT_NOT_SLABNOTIFY;
	case SP_OTHER_USER:     return EXIT_OTHER_USER;
	case SP_BAD_PAGE:       return EXIT_BAD_PAGE;
	case SP_NO_ANSWER:      return EXIT_NO_ANSWER;
	case SP_BAD_DIR:        return EXIT_BAD_PAGE;
	}
	return 1;
}

const char *sp_reason(enum sp_result r)
{
	switch (r) {
	case SP_OK:             return "ok";
	case SP_NO_PROCESS:     return "no such process";
	case SP_NOT_SLABNOTIFY: return "not a slabnotify process (it publishes no stats page)";
	case SP_OTHER_USER:     return "the process belongs to another user";
	case SP_BAD_PAGE:       return "its stats page is not valid and was refused";
	case SP_NO_ANSWER:      return "the process did not answer (stopped, or busy)";
	case SP_BAD_DIR:        return "the stats page directory is not the user's own and private";
	}
	return "?";
}

void sp_dir(char *out, size_t cap)
{
	const char *env = getenv(SN_PAGE_ENV_DIR);
	if (env && *env)
		snprintf(out, cap, "%s", env);
	else
		snprintf(out, cap, "/dev/shm/slabnotify-%u", (unsigned)geteuid());
}

static int open_dir(void)
{
	char dir[4096];
	sp_dir(dir, sizeof(dir));
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0)
		return -1;
	struct stat st;
	if (fstat(dfd, &st) != 0 || st.st_uid != geteuid() || (st.st_mode & 077)) {
		close(dfd);
		return -2;
	}
	return dfd;
}

/* Field 22 of /proc/PID/stat; 0 when the process is gone. */
static unsigned long long start_ticks(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	return sn_proc_start_ticks(buf);
}

/* Alive, and ours? */
static enum sp_result check_process(pid_t pid)
{
	if (pid <= 0)
		return SP_NO_PROCESS;
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d", (int)pid);
	struct stat st;
	if (stat(path, &st) != 0)
		return SP_NO_PROCESS;
	if (st.st_uid != geteuid())
		return SP_OTHER_USER;
	return SP_OK;
}

static void unlink_page(int dfd, pid_t pid)
{
	char name[24];
	snprintf(name, sizeof(name), "%d", (int)pid);
	unlinkat(dfd, name, 0);
}

/* The page file of @pid, checked as a file; -1 with *r set otherwise. */
static int open_page(pid_t pid, int mode, enum sp_result *r)
{
	*r = check_process(pid);
	int dfd = open_dir();
	if (dfd < 0) {
		if (*r == SP_OK)
			*r = dfd == -2 ? SP_BAD_DIR : SP_NOT_SLABNOTIFY;
		return -1;
	}
	if (*r == SP_NO_PROCESS)
		unlink_page(dfd, pid);        /* a dead process's page */
	if (*r != SP_OK) {
		close(dfd);
		return -1;
	}
	char name[24];
	snprintf(name, sizeof(name), "%d", (int)pid);
	int fd = openat(dfd, name, mode | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		*r = errno == ENOENT ? SP_NOT_SLABNOTIFY : SP_BAD_PAGE;
		close(dfd);
		return -1;
	}
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
	    (st.st_mode & 077) || st.st_size != (off_t)sizeof(struct sn_page)) {
		*r = SP_BAD_PAGE;
		close(fd);
		close(dfd);
		return -1;
	}
	close(dfd);
	return fd;
}

#define WHY(...) (snprintf(why, whylen, __VA_ARGS__), false)

static bool terminated(const char *s, size_t cap)
{
	return memchr(s, '\0', cap) != NULL;
}

bool sp_valid(const struct sn_page *p, pid_t pid, char *why, size_t whylen)
{
	if (p->magic != SN_PAGE_MAGIC)
		return WHY("bad magic");
	if (p->version != SN_PAGE_VERSION)
		return WHY("version %u, this reader knows %u", p->version, SN_PAGE_VERSION);
	if (p->size != sizeof(*p))
		return WHY("size %u, expected %zu", p->size, sizeof(*p));
	if (p->pid != (int32_t)pid)
		return WHY("written for pid %d", (int)p->pid);
	if (p->uid != (uint32_t)geteuid())
		return WHY("written by uid %u", p->uid);
	if (!terminated(p->command, sizeof(p->command)))
		return WHY("command line not terminated");
	const struct sn_page_summary *s = &p->sum;
	if (s->nr_caches > SN_PAGE_CACHES || s->nr_caches > s->nr_caches_total)
		return WHY("%llu cache rows", (unsigned long long)s->nr_caches);
	if (s->nr_groups > SN_PAGE_GROUPS || s->nr_groups > s->nr_groups_total)
		return WHY("%llu group rows", (unsigned long long)s->nr_groups);
	if (s->flags & ~(uint64_t)(SN_SUM_MEMCG | SN_SUM_FAULTS | SN_SUM_LEAKS | SN_SUM_EXITED))
		return WHY("unknown flags %#llx", (unsigned long long)s->flags);
	if (!(s->fail_probability >= 0 && s->fail_probability <= 100))
		return WHY("fault probability out of range");
	for (uint64_t i = 0; i < s->nr_caches; i++)
		if (!terminated(p->caches[i].name, sizeof(p->caches[i].name)) || !p->caches[i].name[0])
			return WHY("cache row %llu has no name", (unsigned long long)i);
	for (uint64_t i = 0; i < s->nr_groups; i++)
		if (!terminated(p->groups[i].path, sizeof(p->groups[i].path)) || p->groups[i].path[0] != '/')
			return WHY("group row %llu has no path", (unsigned long long)i);
	return true;
}

/* A seqlock read through pread: the sequence word lies before the
 * figures, so the copy reads it first; it is read again after. */
static bool read_consistent(int fd, struct sn_page *out)
{
	for (int tries = 0; tries < 200; tries++) {
		if (pread(fd, out, sizeof(*out), 0) != (ssize_t)sizeof(*out))
			return false;
		uint64_t again;
		if (pread(fd, &again, sizeof(again), offsetof(struct sn_page, seq)) != sizeof(again))
			return false;
		if (!(out->seq & 1) && again == out->seq)
			return true;
		struct timespec ts = { 0, 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	return false;
}

enum sp_result sp_read(pid_t pid, struct sn_page *out, bool fresh, int wait_ms, char *why, size_t whylen)
{
	snprintf(why, whylen, "%s", "");
	if (fresh) {
		int status;
		struct sn_page_ctl none = { 0 };
		enum sp_result r = sp_request(pid, &none, wait_ms, &status);
		if (r != SP_OK && r != SP_NO_ANSWER && r != SP_BAD_PAGE)
			return r;      /* a bad page is described by the read below */
	}
	enum sp_result r;
	int fd = open_page(pid, O_RDONLY, &r);
	if (fd < 0)
		return r;
	bool ok = read_consistent(fd, out);
	close(fd);
	if (!ok) {
		snprintf(why, whylen, "cannot read a consistent copy");
		return SP_BAD_PAGE;
	}
	if (!sp_valid(out, pid, why, whylen))
		return SP_BAD_PAGE;
	if (out->start_ticks != start_ticks(pid)) {   /* the pid was reused */
		int dfd = open_dir();
		if (dfd >= 0) {
			unlink_page(dfd, pid);
			close(dfd);
		}
		return SP_NOT_SLABNOTIFY;
	}
	return SP_OK;
}

static long futex(uint32_t *word, int op, uint32_t val, const struct timespec *ts)
{
	return syscall(SYS_futex, word, op, val, ts, NULL, 0);
}

static long ms_since(const struct timespec *t0)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

/* An exclusive flock, given up after @wait_ms: one requester at a time. */
static bool lock_page(int fd, int wait_ms, const struct timespec *t0)
{
	while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		if (errno != EWOULDBLOCK || ms_since(t0) > wait_ms)
			return false;
		struct timespec ts = { 0, 5 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	return true;
}

static enum sp_result wait_ack(int fd, pid_t pid, uint32_t *map, uint32_t req, int wait_ms,
			       const struct timespec *t0, int *status)
{
	for (;;) {
		uint32_t ack;
		if (pread(fd, &ack, sizeof(ack), offsetof(struct sn_page, ctl_ack)) != sizeof(ack))
			return SP_BAD_PAGE;
		if (ack == req) {
			int32_t st;
			if (pread(fd, &st, sizeof(st), offsetof(struct sn_page, ctl_status)) != sizeof(st))
				return SP_BAD_PAGE;
			*status = st;
			return SP_OK;
		}
		if (kill(pid, 0) != 0 && errno == ESRCH)
			return SP_NO_PROCESS;
		long left = wait_ms - ms_since(t0);
		if (left <= 0)
			return SP_NO_ANSWER;
		struct timespec ts = { 0, (left < 50 ? left : 50) * 1000000L };
		futex(map, FUTEX_WAIT, ack, &ts);
	}
}

enum sp_result sp_request(pid_t pid, const struct sn_page_ctl *ctl, int wait_ms, int *status)
{
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	enum sp_result r;
	int fd = open_page(pid, O_RDWR, &r);
	if (fd < 0)
		return r;
	char why[128];
	struct sn_page hdr;
	if (!lock_page(fd, wait_ms, &t0)) {
		close(fd);
		return SP_NO_ANSWER;
	}
	if (!read_consistent(fd, &hdr) || !sp_valid(&hdr, pid, why, sizeof(why))) {
		close(fd);
		return SP_BAD_PAGE;
	}
	/* Only the futex words are used through the mapping, by the kernel:
	 * a page truncated meanwhile gives EFAULT, never a fault here. */
	char *map = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		close(fd);
		return SP_BAD_PAGE;
	}
	uint32_t req = hdr.ctl_req + 1;
	if (pwrite(fd, ctl, sizeof(*ctl), offsetof(struct sn_page, ctl)) != sizeof(*ctl) ||
	    pwrite(fd, &req, sizeof(req), offsetof(struct sn_page, ctl_req)) != sizeof(req))
		r = SP_BAD_PAGE;
	else {
		futex((uint32_t *)(map + offsetof(struct sn_page, ctl_req)), FUTEX_WAKE, 1, NULL);
		r = wait_ack(fd, pid, (uint32_t *)(map + offsetof(struct sn_page, ctl_ack)), req, wait_ms,
			     &t0, status);
	}
	munmap(map, 4096);
	close(fd);       /* drops the flock */
	return r;
}

static int cmp_pid(const void *a, const void *b)
{
	pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
	return (x > y) - (x < y);
}

int sp_list(pid_t *pids, int cap)
{
	int dfd = open_dir();
	if (dfd == -2)
		return -1;
	if (dfd < 0)
		return 0;
	DIR *d = fdopendir(dup(dfd));
	int n = 0;
	struct dirent *e;
	while (d && (e = readdir(d))) {
		char *end;
		long v = strtol(e->d_name, &end, 10);
		if (*end || end == e->d_name || v <= 0 || v > INT32_MAX)
			continue;
		pid_t pid = (pid_t)v;
		if (kill(pid, 0) != 0 && errno == ESRCH) {
			unlinkat(dfd, e->d_name, 0);    /* gone: clean its page */
			continue;
		}
		if (n < cap)
			pids[n++] = pid;
	}
	if (d)
		closedir(d);
	close(dfd);
	qsort(pids, (size_t)n, sizeof(pids[0]), cmp_pid);
	return n;
}
