/*
 * introspect.c - glibc's introspection functions under the drop-in:
 * mallinfo2() consistent with slab_mem_stat(), malloc_trim() giving
 * memory back, mallopt() accepted, malloc_info() XML.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct mem { size_t in_use, peak, large_in_use; };

int main(void)
{
	int (*mem_stat)(struct mem *) = (int (*)(struct mem *))dlsym(RTLD_DEFAULT, "slab_mem_stat");
	if (!mem_stat) {
		printf("not on the drop-in\n");
		return 1;
	}
	static void *p[20000];
	for (int i = 0; i < 20000; i++)
		p[i] = malloc(100);
	void *big = malloc(1 << 20);
	struct mallinfo2 m = mallinfo2();
	struct mem st;
	mem_stat(&st);
	int ok = 1;
#define CHECK(cond) do { if (!(cond)) { printf("failed: %s\n", #cond); ok = 0; } } while (0)
	CHECK(m.uordblks >= 20000 * 112);
	CHECK(m.arena == st.in_use - st.large_in_use);
	CHECK(m.hblkhd == st.large_in_use);
	CHECK(m.hblks >= 1 && m.hblkhd >= (1u << 20));
	CHECK(m.arena >= m.uordblks);
	CHECK((size_t)mallinfo().uordblks == (m.uordblks & 0xffffffffu) || mallinfo().uordblks == (int)m.uordblks);
	for (int i = 0; i < 20000; i++)
		free(p[i]);
	free(big);
	size_t before = mallinfo2().arena;
	CHECK(malloc_trim(0) == 1);
	CHECK(mallinfo2().arena < before);
	CHECK(mallopt(M_ARENA_MAX, 1) == 1);
	char *xml = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&xml, &len);
	CHECK(malloc_info(0, f) == 0);
	fclose(f);
	CHECK(xml && strstr(xml, "<malloc version=\"slabnotify-1\">"));
	free(xml);
	printf(ok ? "ok\n" : "FAILED\n");
	return !ok;
}
