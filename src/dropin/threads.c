/*
 * threads.c - the drop-in's pthread_create().
 */
#define _GNU_SOURCE
#include "dropin.h"
#include "consumers/stack.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

/* ------------------------------------------------------------------ */
/* Threads: their creation order                                      */
/* ------------------------------------------------------------------ */

/*
 * pthread_create() numbers each thread in the creating thread, before it
 * exists, so that fault injection's per-thread streams (consumer.h) follow
 * the order in which the program created its threads, not the order in
 * which they happened to start.
 */
struct thread_start {
	void *(*fn)(void *);
	void *arg;
	uint32_t ordinal;
};

static void *thread_trampoline(void *p)
{
	struct thread_start st = *(struct thread_start *)p;
	sn_quiet_begin();
	free(p);
	sn_stack_thread_start();
	sn_quiet_end();
	sn_thread_ordinal_set(st.ordinal);
	return st.fn(st.arg);
}

typedef int (*pthread_create_fn)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);

SN_EXPORT int pthread_create(pthread_t *thread, const pthread_attr_t *attr, void *(*fn)(void *), void *arg)
{
	static _Atomic(pthread_create_fn) real;
	pthread_create_fn next = atomic_load_explicit(&real, memory_order_acquire);
	if (!next) {
		next = (pthread_create_fn)dlsym(RTLD_NEXT, "pthread_create");
		if (!next)
			return EAGAIN;
		atomic_store_explicit(&real, next, memory_order_release);
	}
	sn_quiet_begin();
	struct thread_start *st = malloc(sizeof(*st));
	sn_quiet_end();
	if (!st)
		return EAGAIN;
	st->fn = fn;
	st->arg = arg;
	st->ordinal = sn_thread_ordinal_next();
	int err = next(thread, attr, thread_trampoline, st);
	if (err) {
		sn_quiet_begin();
		free(st);
		sn_quiet_end();
	}
	return err;
}

