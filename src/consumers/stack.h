/*
 * stack.h - call stacks for the consumers: capture, a deduplicating
 * depot (a stack is an id, an object keeps the id, never the frames),
 * and symbolisation with a cache.
 *
 *   stack.c      capture (libunwind, or glibc's backtrace), the cut of
 *                slabnotify's own frames by address, the depot, fork
 *   symbolize.c  pc -> function, file:line, module (libdwfl, or dladdr),
 *                C++ names demangled, cached until exit
 *   stack_lib.c  libunwind and libdw, loaded by sn_stack_init()
 */
#ifndef SLABNOTIFY_STACK_H
#define SLABNOTIFY_STACK_H

#include <stdint.h>
#include <stdio.h>

#include "consumer.h"

/* A deduplicated call stack: an index in the depot; 0 is "no stack". */
typedef uint32_t sn_stack_id;
/* The caller's stack, slabnotify's own frames cut by address (its module),
 * deduplicated. Safe inside a notifier handler and in a quiet section;
 * returns 0 when the depot is full or the stack cannot be taken. */
SN_CONSUMER_API sn_stack_id sn_stack_capture(void);
/* The same, keeping at most @frames of the caller's (at most 32, what
 * sn_stack_capture() keeps). */
SN_CONSUMER_API sn_stack_id sn_stack_capture_depth(int frames);
/* The frames of a stack, innermost first; returns their number. */
SN_CONSUMER_API uint32_t sn_stack_frames(sn_stack_id id, void *const **pcs);
/* One symbolised frame. Strings are owned by the symbolisation cache and
 * live until exit; any of them may be NULL. */
struct sn_frame { const char *function, *file, *module; unsigned line; uintptr_t pc; };
SN_CONSUMER_API void sn_frame_resolve(uintptr_t pc, struct sn_frame *out);
/* Print a stack, one frame per line: INDENT "#N function (file:line)". */
SN_CONSUMER_API void sn_stack_print(FILE *f, sn_stack_id id, const char *indent);

/* Beyond the shared API, for the profile and the suppressions. */

/* Ids are below this. */
#define SN_STACK_MAX (1u << 20)

/* The number of stacks in the depot (ids are 1..sn_stack_count()). */
SN_CONSUMER_API uint32_t sn_stack_count(void);
/* Does @pc (a return address) lie in slabnotify's own code? */
SN_CONSUMER_API bool sn_stack_pc_is_self(uintptr_t pc);
/* Set up capture now (outside malloc and any handler: it may load
 * libunwind and libdw, stack_lib.h): the unwinder warmed up,
 * slabnotify's address ranges found. */
SN_CONSUMER_API void sn_stack_init(void);
/* Before sn_stack_init(), by a caller whose captures are rare (at most
 * some hundred a second: --guard alone): walk frame by frame, without
 * libunwind's per-thread trace cache (256 KiB and some 80 us per thread
 * at its first capture), and load libdw only when a report first prints
 * a stack (its six libraries cost some 0.2 ms per process). */
SN_CONSUMER_API void sn_stack_capture_rarely(void);
/* Is libdw's loading left to the first report that prints a stack? */
SN_CONSUMER_API bool sn_stack_symbols_deferred(void);
/* In a new thread, before its code: the unwinder's per-thread data made
 * there, not inside the first capture (the drop-in's pthread_create). */
SN_CONSUMER_API void sn_stack_thread_start(void);
/* The raw return addresses, innermost first, slabnotify's frames kept
 * (failstack.c); 0 when capture is not set up (see sn_stack_init). */
SN_CONSUMER_API int sn_stack_raw(void **pc, int max);
/* fork(): called by the core's fork handlers only (lock.h's order). */
SN_CONSUMER_API void sn_stack_fork_prepare(void);
SN_CONSUMER_API void sn_stack_fork_parent(void);
SN_CONSUMER_API void sn_stack_fork_child(void);

#endif /* SLABNOTIFY_STACK_H */
