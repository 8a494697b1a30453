/*
 * os.h - the contract between slabnotify and the kernel's memory calls.
 *
 * os.c is the only file that maps, unmaps, protects, remaps or advises
 * memory. It calls the kernel directly (syscall(2)), never through the
 * libc symbols: the malloc drop-in interposes mmap, munmap, mremap and
 * brk to charge a program's own mappings, and slabnotify's mappings must
 * not be charged twice or recurse into that accounting.
 *
 * Contract:
 *  - os_map(n): n bytes (a multiple of the page size), readable and
 *    writable, zero-filled, private, not reserved against overcommit
 *    (MAP_NORESERVE), or NULL with errno = ENOMEM. Never below the
 *    address width the segment map covers (checked; see os_addr_bits).
 *  - os_map_aligned(n, align): as os_map, with the start aligned to
 *    @align (a power of two >= the page size); the slack is unmapped.
 *  - os_unmap(p, n): gives the range back. p and n page-aligned.
 *  - os_decommit(p, n): the pages are dropped (MADV_DONTNEED): they read
 *    as zero afterwards and cost no memory until touched.
 *  - os_guard(p, n): the pages become inaccessible (PROT_NONE);
 *    os_unguard(p, n) makes them readable and writable again.
 *  - os_mark_guard(p, n): the pages become guard markers in their own
 *    VMA (MADV_GUARD_INSTALL, Linux 6.13): they fault, their memory is
 *    given back, and no VMA is split or merged; os_unmark_guard(p, n)
 *    makes them zero-fill pages again. false where the kernel has no
 *    markers or the VMA refuses them (mlock'ed): use os_guard then.
 *  - os_remap(p, old, new, fixed_dst): mremap(2); grows in place when
 *    fixed_dst is NULL and may_move false, or moves to fixed_dst.
 *  - os_addr_bits(): the user address width, read at start-up from
 *    where the kernel placed the stack (47 on x86-64 with 4-level page
 *    tables, 48 on most arm64 kernels).
 *  - os_membarrier_setup(): registers the process for membarrier(2)'s
 *    private expedited command, once at start-up; os_membarrier() then
 *    makes every running thread of the process pass a full barrier, and
 *    returns false where the kernel cannot (sn_fence_heavy() in
 *    consumer.h is the rule built on it).
 *  - os_physical_bytes(): RAM plus swap, the most any request could ever
 *    be backed by; os_commit_limit(): the kernel's CommitLimit when
 *    overcommit is strict (vm.overcommit_memory = 2), else 0.
 */
#ifndef SLABNOTIFY_OS_H
#define SLABNOTIFY_OS_H

#include <stdbool.h>
#include <stddef.h>

#define SN_HIDDEN __attribute__((visibility("hidden")))

SN_HIDDEN void *os_map(size_t size);
SN_HIDDEN void *os_map_aligned(size_t size, size_t align);
SN_HIDDEN void os_unmap(void *p, size_t size);
SN_HIDDEN void os_decommit(void *p, size_t size);
SN_HIDDEN bool os_guard(void *p, size_t size);
SN_HIDDEN bool os_unguard(void *p, size_t size);
SN_HIDDEN bool os_mark_guard(void *p, size_t size);
SN_HIDDEN bool os_unmark_guard(void *p, size_t size);
SN_HIDDEN void *os_remap(void *p, size_t old_size, size_t new_size, bool may_move, void *fixed_dst);
SN_HIDDEN unsigned os_addr_bits(void);
SN_HIDDEN bool os_membarrier_setup(void);
SN_HIDDEN bool os_membarrier(void);
SN_HIDDEN size_t os_physical_bytes(void);
SN_HIDDEN size_t os_commit_limit(void);

#endif /* SLABNOTIFY_OS_H */
