/*
 * profile_state.h - the accounting's state, shared by profile.c (which
 * writes it) and profile_model.c (which reads it into the model). Not
 * for the renderers: they see the model only (profile.h).
 */
#ifndef SLABNOTIFY_PROFILE_STATE_H
#define SLABNOTIFY_PROFILE_STATE_H

#include <pthread.h>
#include <stdatomic.h>

#include "profile.h"

#define SN_PROF_POINTS 2048

/* One stack's figures, indexed by its id. live_*: atomics (--leaks and
 * sampled profiles change them without the lock); the rest under
 * sn_prof.lock. Weighted when sampled. */
struct prof_stack {
	_Atomic uint64_t live_bytes, live_blocks, live_foot;
	uint64_t peak_bytes, peak_blocks;   /* at the peak, when epoch is the last */
	uint32_t epoch;
	uint64_t calls, alloc_bytes, temp;
};

/* One thread's counts: only that thread writes them (relaxed stores, no
 * read-modify-write), the model adds them all up (relaxed loads). Blocks
 * are never freed, so an exited thread's counts stay in the sums. A
 * block of its own per cache line, so that threads share none. */
struct prof_tcount {
	uint64_t allocations, frees, bytes_allocated, temporary;
	struct prof_tcount *next;
	bool shared;                        /* the spare, when no block could be made: atomic adds */
} __attribute__((aligned(64)));

struct prof_state {
	struct sn_prof_config cfg;
	bool on;
	bool locked_all;                    /* FULL without sampling: every event under the lock */
	uint64_t t0, seed;
	struct prof_stack *stacks;          /* SN_STACK_MAX, by id */
	pthread_mutex_t lock;               /* every event with --profile; sampled ones with =BYTES */
	struct prof_tcount *_Atomic tcounts; /* every thread's, newest first */
	pthread_mutex_t tcount_lock;        /* adding a block */
	_Atomic uint64_t live, peak, peak_ns;  /* requested bytes: exact, across threads */
	_Atomic uint32_t epoch;             /* new peaks */
	pthread_mutex_t timeline_lock;
	struct sn_prof_point points[SN_PROF_POINTS];
	size_t npoints;
	uint64_t interval_ns, last_point_ns;
};

extern struct prof_state sn_prof SN_CONSUMER_API;

/* Nanoseconds since the profile started (coarse clock). */
SN_CONSUMER_API uint64_t sn_prof_now(void);
/* The counts of every thread, summed. */
SN_CONSUMER_API void sn_prof_counts(struct prof_tcount *sum);
/* Hold the accounting still (true) or let it go. */
SN_CONSUMER_API void sn_prof_hold(bool on);

#endif /* SLABNOTIFY_PROFILE_STATE_H */
