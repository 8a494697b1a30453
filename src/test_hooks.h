/*
 * test_hooks.h - where tests may step into the core.
 *
 * Some races open a window of a few instructions between two system
 * calls; a test cannot hit them by chance. Each hook is a pointer called
 * on a slow path next to a system call (so its cost is nil), NULL unless
 * a test built against the static library sets it. Not part of the API.
 */
#ifndef SLABNOTIFY_TEST_HOOKS_H
#define SLABNOTIFY_TEST_HOOKS_H

#include "os.h"

/* large_remap: the pages of @old moved to @moved, not yet published. */
SN_HIDDEN extern void (*sn_test_hook_large_moved)(void *old, void *moved);

/* slab_zap: a purged slab's pages were just given back (the cache lock
 * is held: the owner's scan and give-up wait on it meanwhile). */
SN_HIDDEN extern void (*sn_test_hook_slab_zapped)(void *base);

/* guard.c: true before the pool is made, and its pages are closed by
 * mprotect even where the kernel has guard markers (the path of kernels
 * before 6.13). */
SN_HIDDEN extern bool sn_test_guard_no_markers;

/* notify.c: the last notifier generation handed out (under the chain's
 * lock): a test of the generations' limit starts near it. */
SN_HIDDEN extern uint32_t notify_chain_gen;

/* notify.c: whether @c's frees still take the hooked way (HOOK_FREE):
 * a test of the switch-off's drain reads it. */
SN_HIDDEN bool sn_test_free_hooked(const struct slab_cache *c);

#endif
