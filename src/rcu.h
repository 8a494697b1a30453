/*
 * rcu.h - the library's one door to liburcu-bp.
 *
 * urcu-bp needs no thread registration, so it works inside a malloc
 * replacement. The library uses the shared liburcu-bp: one RCU domain
 * per process, the one SLAB_TYPESAFE_BY_RCU readers use too.
 *
 * liburcu is not built with ThreadSanitizer, so TSan cannot see the
 * ordering that a grace period gives. Under TSan these wrappers tell it:
 * a read-side unlock and the end of an RCU callback release a token, and
 * the end of a grace period (synchronize, barrier) and the start of a
 * callback acquire it, and pointer publication is an explicit release
 * store and acquire load.
 *
 * Normal builds use liburcu's _LGPL_SOURCE inline read side (a TLS load
 * and two plain stores when the kernel has sys_membarrier), with the
 * files that call it built with -ftls-model=initial-exec so that the TLS
 * load needs no __tls_get_addr call. Sanitizer builds call the library's
 * functions instead: UBSan finds liburcu 0.13's reader records misaligned
 * for the inline version's member accesses.
 */
#ifndef SLABNOTIFY_RCU_H
#define SLABNOTIFY_RCU_H

#if !defined(SLABNOTIFY_SANITIZER)
#define _LGPL_SOURCE
#endif
#include <urcu/urcu-bp.h>
#include <urcu/compiler.h>

#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>
extern char sn_rcu_tsan_token;
#define SN_TSAN_RELEASE() __tsan_release(&sn_rcu_tsan_token)
#define SN_TSAN_ACQUIRE() __tsan_acquire(&sn_rcu_tsan_token)
#else
#define SN_TSAN_RELEASE() ((void)0)
#define SN_TSAN_ACQUIRE() ((void)0)
#endif

static inline void sn_rcu_read_lock(void)
{
	urcu_bp_read_lock();
}

static inline void sn_rcu_read_unlock(void)
{
	SN_TSAN_RELEASE();
	urcu_bp_read_unlock();
}

static inline void sn_synchronize_rcu(void)
{
	urcu_bp_synchronize_rcu();
	SN_TSAN_ACQUIRE();
}

static inline void sn_rcu_barrier(void)
{
	urcu_bp_barrier();
	SN_TSAN_ACQUIRE();
}

/* The notifier's per-thread guard (notify.c): while it is raised,
 * allocations are served without notification. */
extern __thread int sn_handler_depth __attribute__((tls_model("initial-exec"), visibility("hidden")));

/* Callbacks run through sn_call_rcu must start with SN_RCU_CALLBACK_BEGIN
 * and end with SN_RCU_CALLBACK_END. liburcu allocates on our behalf here
 * (its call_rcu thread and data on first use): those allocations are the
 * library's own, so they are made quietly, never charged or reported. */
static inline void sn_call_rcu(struct rcu_head *head, void (*fn)(struct rcu_head *))
{
	SN_TSAN_RELEASE();
	sn_handler_depth++;
	urcu_bp_call_rcu(head, fn);
	sn_handler_depth--;
}
#define SN_RCU_CALLBACK_BEGIN() SN_TSAN_ACQUIRE()
#define SN_RCU_CALLBACK_END()   SN_TSAN_RELEASE()

#if defined(__SANITIZE_THREAD__)
#define sn_rcu_dereference(p) __atomic_load_n(&(p), __ATOMIC_ACQUIRE)
#define sn_rcu_assign_pointer(p, v) __atomic_store_n(&(p), (v), __ATOMIC_RELEASE)
#else
#define sn_rcu_dereference(p) rcu_dereference(p)
#define sn_rcu_assign_pointer(p, v) rcu_assign_pointer(p, v)
#endif

#endif /* SLABNOTIFY_RCU_H */
