/*
 * test_classes.c - the size-class tables of the kmalloc fast path,
 * checked against the class sizes (internal: the tables are constant so
 * that the fast path has no initialisation test).
 */
#include <criterion/criterion.h>

#include "kmalloc.h"

/* The constant class tables (kmalloc.c): every size up to 1 KiB gets
 * the smallest class that holds it; the drop-in's from 16 bytes up. */
Test(kmalloc_sizes, class_tables_give_the_smallest_class)
{
	for (size_t size = 0; size <= 1024; size++) {
		unsigned k = size_class_by(sn_small_class, size);
		cr_assert_geq(sn_class_size[k], size, "size %zu: class %u (%u bytes)", size, k, sn_class_size[k]);
		cr_assert(k == 0 || sn_class_size[k - 1] < size, "size %zu: class %u is not the smallest", size, k);
		unsigned k16 = size_class_by(sn_small_class16, size);
		size_t want = size < 16 ? 16 : size;
		cr_assert_geq(sn_class_size[k16], want);
		cr_assert(sn_class_size[k16 - 1] < want, "drop-in size %zu: class %u is not the smallest", size, k16);
	}
}


/* Above 1 KiB the class is computed (kmalloc.h): every size up to
 * SLAB_KMALLOC_MAX gets the smallest class that holds it, and the table
 * rises strictly to SLAB_KMALLOC_MAX, each class 16-byte aligned. */
Test(kmalloc_sizes, computed_classes_give_the_smallest_class)
{
	for (unsigned k = 1; k < SN_NR_CLASSES; k++)
		cr_assert_gt(sn_class_size[k], sn_class_size[k - 1], "class %u", k);
	cr_assert_eq(sn_class_size[SN_NR_CLASSES - 1], SLAB_KMALLOC_MAX);
	for (unsigned k = 1; k < SN_NR_CLASSES; k++)
		cr_assert_eq(sn_class_size[k] % 16, 0, "class %u: %u bytes", k, sn_class_size[k]);
	for (size_t size = 1025; size <= SLAB_KMALLOC_MAX; size++) {
		unsigned k = size_class(size);
		cr_assert_lt(k, SN_NR_CLASSES, "size %zu: class %u", size, k);
		cr_assert_geq(sn_class_size[k], size, "size %zu: class %u (%u bytes)", size, k, sn_class_size[k]);
		cr_assert_lt(sn_class_size[k - 1], size, "size %zu: class %u is not the smallest", size, k);
	}
}

/* The two classes just above each power of two from 1 KiB: b + b/64 and
 * b + 5b/64 (kmalloc.c), at the boundaries the lookup's comparisons make. */
Test(kmalloc_sizes, classes_just_above_powers_of_two)
{
	for (size_t b = 1024; b < SLAB_KMALLOC_MAX; b *= 2) {
		cr_assert_eq(sn_class_size[size_class(b + 1)], b + b / 64, "b = %zu", b);
		cr_assert_eq(sn_class_size[size_class(b + b / 64)], b + b / 64, "b = %zu", b);
		cr_assert_eq(sn_class_size[size_class(b + b / 64 + 1)], b + 5 * b / 64, "b = %zu", b);
		cr_assert_eq(sn_class_size[size_class(b + 5 * b / 64)], b + 5 * b / 64, "b = %zu", b);
		cr_assert_eq(sn_class_size[size_class(b + 5 * b / 64 + 1)], b + b / 4, "b = %zu", b);
	}
}
