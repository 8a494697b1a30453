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

