/*
 * os.c - the kernel's memory calls, behind the contract in os.h.
 *
 * Every call goes straight to the kernel with syscall(2) so that the
 * drop-in's interposed mmap/munmap/mremap (which charge a program's own
 * mappings to its memory group) never see slabnotify's own.
 */
#define _GNU_SOURCE
#include "os.h"

#include <errno.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <unistd.h>
#include <linux/membarrier.h>

#define PAGE 4096UL
#define MAP_LIMIT_BITS 48   /* what the segment map covers (internal.h) */

/*
 * Sanitizer builds call the libc functions instead: the sanitizers
 * intercept them to keep their shadow memory right (TSan would see a
 * reused address as a race). Those builds never run as the drop-in.
 */
#if defined(SLABNOTIFY_SANITIZER)
static void *sys_mmap(void *addr, size_t len, int prot, int flags)
{
	void *p = mmap(addr, len, prot, flags, -1, 0);
	if (p == MAP_FAILED) {
		errno = ENOMEM;
		return NULL;
	}
	return p;
}
#else
static void *sys_mmap(void *addr, size_t len, int prot, int flags)
{
	long r = syscall(SYS_mmap, addr, len, prot, flags, -1, 0L);
	if (r < 0 && r > -4096) {
		errno = ENOMEM;
		return NULL;
	}
	return (void *)r;
}
#endif

static int sys_munmap(void *p, size_t len)
{
#if defined(SLABNOTIFY_SANITIZER)
	return munmap(p, len);
#else
	return (int)syscall(SYS_munmap, p, len);
#endif
}

void *os_map(size_t size)
{
	if (size == 0 || size > ((size_t)1 << MAP_LIMIT_BITS)) {
		errno = ENOMEM;
		return NULL;
	}
	void *p = sys_mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE);
	if (p && (((uintptr_t)p + size - 1) >> MAP_LIMIT_BITS)) {
		/* Above what the segment map covers: the kernel was asked to
		 * give out 57-bit addresses without a hint. Refuse. */
		sys_munmap(p, size);
		errno = ENOMEM;
		return NULL;
	}
	return p;
}

void *os_map_aligned(size_t size, size_t align)
{
	if (align <= PAGE)
		return os_map(size);
	size_t over = size + align;
	if (over < size) {
		errno = ENOMEM;
		return NULL;
	}
	char *raw = os_map(over);
	if (!raw)
		return NULL;
	uintptr_t start = ((uintptr_t)raw + align - 1) & ~(uintptr_t)(align - 1);
	size_t head = start - (uintptr_t)raw;
	size_t tail = over - head - size;
	if (head)
		sys_munmap(raw, head);
	if (tail)
		sys_munmap((char *)start + size, tail);
	return (void *)start;
}

void os_unmap(void *p, size_t size)
{
	if (p && size)
		sys_munmap(p, size);
}

void os_decommit(void *p, size_t size)
{
	if (p && size)
		syscall(SYS_madvise, p, size, MADV_DONTNEED);
}

bool os_guard(void *p, size_t size)
{
	return syscall(SYS_mprotect, p, size, PROT_NONE) == 0;
}

bool os_unguard(void *p, size_t size)
{
	return syscall(SYS_mprotect, p, size, PROT_READ | PROT_WRITE) == 0;
}

/* Linux 6.13's values: Debian 12's headers predate them. */
#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#define MADV_GUARD_REMOVE  103
#endif

bool os_mark_guard(void *p, size_t size)
{
	return syscall(SYS_madvise, p, size, MADV_GUARD_INSTALL) == 0;
}

bool os_unmark_guard(void *p, size_t size)
{
	return syscall(SYS_madvise, p, size, MADV_GUARD_REMOVE) == 0;
}

void *os_remap(void *p, size_t old_size, size_t new_size, bool may_move, void *fixed_dst)
{
	long flags = 0;
	if (fixed_dst)
		flags = MREMAP_MAYMOVE | MREMAP_FIXED;
	else if (may_move)
		flags = MREMAP_MAYMOVE;
#if defined(SLABNOTIFY_SANITIZER)
	void *m = mremap(p, old_size, new_size, (int)flags, fixed_dst);
	long r = m == MAP_FAILED ? -ENOMEM : (long)m;
#else
	long r = syscall(SYS_mremap, p, old_size, new_size, flags, fixed_dst);
#endif
	if (r < 0 && r > -4096) {
		errno = ENOMEM;
		return NULL;
	}
	if (((uintptr_t)r + new_size - 1) >> MAP_LIMIT_BITS) {
		/* Moved out of the map's reach: cannot happen without a hint;
		 * treat as a failure the caller can report. */
		errno = ENOMEM;
		return NULL;
	}
	return (void *)r;
}

/* The lazily read values below are idempotent: threads that race to
 * compute one store the same result (relaxed atomics). */
unsigned os_addr_bits(void)
{
	static _Atomic unsigned bits;
	unsigned b = atomic_load_explicit(&bits, memory_order_relaxed);
	if (!b) {
		int probe;
		uintptr_t a = (uintptr_t)&probe;
		b = a ? 64u - (unsigned)__builtin_clzl(a) : 47u;
		atomic_store_explicit(&bits, b, memory_order_relaxed);
	}
	return b;
}

size_t os_physical_bytes(void)
{
	static _Atomic size_t total;
	size_t t = atomic_load_explicit(&total, memory_order_relaxed);
	if (!t) {
		struct sysinfo si;
		if (sysinfo(&si) == 0)
			t = ((size_t)si.totalram + (size_t)si.totalswap) * (si.mem_unit ? si.mem_unit : 1);
		else
			t = SIZE_MAX;
		atomic_store_explicit(&total, t, memory_order_relaxed);
	}
	return t;
}

/* A small file read without stdio (we may be inside malloc). */
static ssize_t read_small(const char *path, char *buf, size_t len)
{
	int fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = (ssize_t)syscall(SYS_read, fd, buf, len - 1);
	syscall(SYS_close, fd);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	return n;
}

size_t os_commit_limit(void)
{
	static _Atomic size_t cached;     /* 0: unknown; SIZE_MAX: not strict; else the limit */
	size_t v = atomic_load_explicit(&cached, memory_order_relaxed);
	if (v == 0) {
		char buf[4096];
		v = SIZE_MAX;
		if (read_small("/proc/sys/vm/overcommit_memory", buf, sizeof(buf)) > 0 && buf[0] == '2' &&
		    read_small("/proc/meminfo", buf, sizeof(buf)) > 0) {
			char *p = strstr(buf, "CommitLimit:");
			if (p)
				v = (size_t)strtoull(p + 12, NULL, 10) * 1024;
		}
		atomic_store_explicit(&cached, v, memory_order_relaxed);
	}
	return v == SIZE_MAX ? 0 : v;
}

bool os_membarrier_setup(void)
{
	long cmds = syscall(__NR_membarrier, MEMBARRIER_CMD_QUERY, 0);
	return cmds > 0 && (cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED) &&
	       syscall(__NR_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0) == 0;
}

bool os_membarrier(void)
{
	return syscall(__NR_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0) == 0;
}
