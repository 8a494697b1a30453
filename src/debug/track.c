/*
 * track.c - U: the stacks kept for debug and guarded objects, through
 * the shared stack depot (consumers/stack.h): an object keeps a 32-bit
 * id, the frames live once in the depot, symbols are looked up only
 * when a report prints them.
 */
#include "debug.h"
#include "consumers/stack.h"

/* Capturing may allocate (the unwinder's first use): such an allocation
 * is recorded without a stack rather than recursing. */
static __thread bool in_capture SN_TLS;

uint32_t dbg_stack_now(void)
{
	if (in_capture)
		return 0;
	in_capture = true;
	sn_stack_id id = sn_stack_capture();
	in_capture = false;
	return id;
}

void dbg_print_stack(const char *title, uint32_t stack, uint32_t tid, uint64_t ns)
{
	fprintf(stderr, "INFO: %s by thread %u at %llu.%06llu s:\n", title, tid, (unsigned long long)(ns / 1000000000u),
		(unsigned long long)(ns / 1000u % 1000000u));
	if (stack)
		sn_stack_print(stderr, stack, "    ");
	else
		fprintf(stderr, "    (no stack)\n");
}
