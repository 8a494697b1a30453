/*
 * bintree - build and tear down binary trees of 32..56-byte nodes.
 *
 * One long-lived tree of depth LONG_DEPTH stays up for the whole run.
 * Then, twice (the argument scales this), for each depth d = 4, 6, ...,
 * MAX_DEPTH: 2^(MAX_DEPTH - d + 3) trees of depth d are built.  A finished
 * tree is not freed at once but put in a ring of RING trees, and the tree
 * it displaces (built RING trees earlier) is walked and freed.  So frees
 * happen in tree order long after the allocations, interleaved with the
 * next builds, and at any time RING trees of the current depth are live.
 *
 * Node size depends on its depth in the tree (24-byte header plus 8, 16,
 * 24 or 32 bytes of payload: 32..56 bytes), so four size classes are in
 * use at once.  Every node's payload is written on build and read back on
 * the walk.
 *
 * Prints: nodes built and a checksum of the walks.
 */
#include "wl_common.h"

#define MAX_DEPTH 16
#define LONG_DEPTH 16
#define RING 6

struct node {
	struct node *l, *r;
	uint32_t val;
	uint16_t plen, pad_;
	unsigned char payload[];
};

static unsigned long built;

static struct node *build(unsigned depth, uint32_t val)
{
	size_t plen = 8 + 8 * (depth & 3); /* 8, 16, 24, 32 */
	struct node *n = wl_check(malloc(sizeof(*n) + plen), sizeof(*n) + plen, "node");
	n->val = val;
	n->plen = (uint16_t)plen;
	memset(n->payload, (int)(val & 0xff), plen);
	built++;
	if (depth) {
		n->l = build(depth - 1, 2 * val);
		n->r = build(depth - 1, 2 * val + 1);
	} else {
		n->l = n->r = NULL;
	}
	return n;
}

/* Walk and optionally free; returns a checksum of the tree. */
static uint64_t walk(struct node *n, int do_free)
{
	if (!n)
		return 0;
	uint64_t h = n->val + n->payload[n->plen - 1] + ((uint64_t)n->plen << 32);
	h += walk(n->l, do_free) * 3 + walk(n->r, do_free);
	if (do_free)
		free(n);
	return h;
}

int main(int argc, char **argv)
{
	unsigned long passes = wl_scale(argc, argv, 2);
	struct node *ring[RING] = { 0 };
	uint64_t sum = 0;
	unsigned slot = 0;
	struct node *longlived = build(LONG_DEPTH, 1);
	for (unsigned long pass = 0; pass < passes; pass++) {
		for (unsigned d = 4; d <= MAX_DEPTH; d += 2) {
			unsigned long iters = 1ul << (MAX_DEPTH - d + 3);
			for (unsigned long i = 0; i < iters; i++) {
				struct node *t = build(d, (uint32_t)(i + d));
				if (ring[slot])
					sum = wl_fold(sum, walk(ring[slot], 1));
				ring[slot] = t;
				slot = (slot + 1) % RING;
			}
			sum = wl_fold(sum, walk(longlived, 0));
		}
	}
	for (unsigned i = 0; i < RING; i++)
		sum = wl_fold(sum, walk(ring[i], 1));
	sum = wl_fold(sum, walk(longlived, 1));
	printf("bintree nodes=%lu checksum=%016llx\n", built, (unsigned long long)sum);
	return 0;
}
