/*
 * track.c - U: the stacks kept for debug and guarded objects, through
 * the shared stack depot (consumers/stack.h): an object keeps a 32-bit
 * id, the frames live once in the depot, symbols are looked up only
 * when a report prints them.
 */
#include "debug.h"
#include "consumers/stack.h"

/*
 * An object's allocation and free stacks keep 16 frames, as SLUB's
 * (TRACK_ADDRS_COUNT): a recursive builder's stacks differ by the path
 * down its recursion, so their number grows as 2^depth (bintree under
 * --debug: 655k stacks and 224 MB of RSS at 32 frames, 229k and 170 MB
 * at 16; 43 MB without --debug). An allocation made
 * while capturing (the unwinder's first use) gets no stack: stack.c.
 */
#define TRACK_FRAMES 16

uint32_t dbg_stack_now(void)
{
	return sn_stack_capture_depth(TRACK_FRAMES);
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
