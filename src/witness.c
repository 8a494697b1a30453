/*
 * witness.c - the lock-order check of debug builds (see lock.h).
 */
#include "internal.h"

#ifdef SLABNOTIFY_WITNESS

static const char *const rank_names[SN_RANK_COUNT] = {
	[SN_RANK_CAPTURE] = "stack capture", [SN_RANK_DEPOT] = "stack depot",
	[SN_RANK_CHAIN] = "notifier chain", [SN_RANK_CACHE_LIST] = "cache list",
	[SN_RANK_REGISTRY] = "thread registry", [SN_RANK_CACHE] = "cache",
	[SN_RANK_NOTIFY] = "cache notify", [SN_RANK_LARGE] = "large table",
	[SN_RANK_POOL] = "page pool", [SN_RANK_QUARANTINE] = "debug quarantine",
	[SN_RANK_GUARD] = "guard pool",
};

/* Bit r: a lock of rank r is held by this thread. */
static __thread uint32_t held SN_TLS;

static unsigned highest(uint32_t mask)
{
	return 31u - (unsigned)__builtin_clz(mask);
}

void sn_witness_acquire(unsigned rank)
{
	if (held >> rank)
		sn_fatal("slabnotify: lock order violation: taking the %s lock (rank %u) while "
			 "holding the %s lock (rank %u)",
			 rank_names[rank], rank, rank_names[highest(held)], highest(held));
	held |= 1u << rank;
}

void sn_witness_release(unsigned rank)
{
	held &= ~(1u << rank);
}

void sn_witness_assert_unlocked(const char *what)
{
	if (held)
		sn_fatal("slabnotify: %s called with the %s lock held", what, rank_names[highest(held)]);
}

#endif
