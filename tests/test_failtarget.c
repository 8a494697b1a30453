/*
 * test_failtarget.c - targeted fault injection: min_size compares the
 * bytes asked for, not the size class; stack_filter fails only the
 * allocations made with a matching function on the stack.
 */
#include <criterion/criterion.h>
#include <slabnotify.h>

#include <errno.h>
#include <string.h>

static struct slab_fault_attr attr100(void)
{
	return (struct slab_fault_attr){ .probability = 100, .interval = 1, .times = -1, .seed = 1 };
}

/* The asm after the call keeps it from being a tail call, so that these
 * functions are on the stack when the allocation is made. */
static __attribute__((noinline)) void *target_alloc(size_t n)
{
	void *p = slab_malloc(n, 0);
	__asm__ volatile("" ::: "memory");
	return p;
}

static __attribute__((noinline)) void *target_outer(size_t n)
{
	void *p = target_alloc(n);
	__asm__ volatile("" ::: "memory");
	return p;
}

/* Not the same body as target_alloc's: the compiler would fold them. */
static volatile int elsewhere_calls;
static __attribute__((noinline)) void *elsewhere_alloc(size_t n)
{
	void *p = slab_malloc(n, 0);
	elsewhere_calls++;
	return p;
}

Test(failtarget, min_size_compares_the_request)
{
	struct slab_fault_attr a = attr100();
	a.min_size = 20000;
	cr_assert_eq(slab_fault_inject(&a), 0);
	/* 17000 is served by kmalloc-20k (20480 bytes) but asks for less. */
	void *p = slab_malloc(17000, 0);
	cr_expect_not_null(p, "malloc(17000) failed under min_size 20000");
	slab_free(p);
	cr_expect_null(slab_malloc(20000, 0));
	cr_expect_eq(errno, ENOMEM);
	/* Large blocks too: the request, not the pages. */
	a.min_size = 80000;
	cr_assert_eq(slab_fault_inject(&a), 0);
	p = slab_malloc(79000, 0);
	cr_expect_not_null(p, "a 79000-byte large block failed under min_size 80000");
	slab_free(p);
	cr_expect_null(slab_malloc(80000, 0));
	cr_expect_eq(slab_fault_injected(), 2);
}

Test(failtarget, stack_filter_fails_only_matching_stacks)
{
	struct slab_fault_attr a = attr100();
	a.stack_filter = "target_*";
	cr_assert_eq(slab_fault_inject(&a), 0);
	for (int i = 0; i < 200; i++) {      /* the second time on, from the cache */
		void *q = elsewhere_alloc(64);
		cr_assert_not_null(q, "elsewhere_alloc failed (iteration %d)", i);
		slab_free(q);
		cr_assert_null(target_alloc(64), "target_alloc passed (iteration %d)", i);
		cr_assert_null(target_outer(64), "target_outer passed (iteration %d)", i);
	}
	cr_expect_eq(slab_fault_injected(), 400);
	/* A function deeper in the stack matches too. */
	a.stack_filter = "target_outer";    /* a clone's name (.constprop.0) matches too */
	cr_assert_eq(slab_fault_inject(&a), 0);
	void *p = target_alloc(64);
	cr_expect_not_null(p, "target_alloc failed under target_outer");
	slab_free(p);
	cr_expect_null(target_outer(64));
	/* A new pattern: the cached answers of the old one do not count. */
	a.stack_filter = "elsewhere_alloc";
	cr_assert_eq(slab_fault_inject(&a), 0);
	cr_expect_null(elsewhere_alloc(64));
	p = target_outer(64);
	cr_expect_not_null(p);
	slab_free(p);
}

Test(failtarget, stack_filter_matches_nothing_of_slabnotify)
{
	struct slab_fault_attr a = attr100();
	a.stack_filter = "slab_malloc";      /* slabnotify's own frame */
	cr_assert_eq(slab_fault_inject(&a), 0);
	void *p = elsewhere_alloc(64);
	cr_expect_not_null(p, "slabnotify's own frame matched");
	slab_free(p);
}

Test(failtarget, stack_filter_too_long)
{
	char longp[300];
	memset(longp, 'x', sizeof(longp) - 1);
	longp[sizeof(longp) - 1] = '\0';
	struct slab_fault_attr a = attr100();
	a.stack_filter = longp;
	cr_expect_eq(slab_fault_inject(&a), -EINVAL);
	cr_expect_eq(errno, EINVAL);
}
