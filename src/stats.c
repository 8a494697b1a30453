/*
 * stats.c - introspection: slab_cache_info() and /proc/slabinfo.
 *
 * The per-thread counters are summed with relaxed loads under the thread
 * registry lock, plus the totals of threads that are gone. The figures
 * are exact whenever no thread is allocating or freeing, approximate
 * (but never torn) otherwise, as /proc/slabinfo is.
 */
#include "internal.h"
#include "consumers/consumer.h"

#include <errno.h>
#include <stdio.h>

/* alloc fast, alloc slow, free fast, free slow, free remote, notified */
static void cache_counters(const struct slab_cache *c, unsigned long v[SN_NR_CPU_COUNTERS])
{
	threads_sum_counters(c, v);
	v[0] += atomic_load(&c->dead_alloc_fast);
	v[1] += atomic_load(&c->dead_alloc_slow);
	v[2] += atomic_load(&c->dead_free_fast);
	v[3] += atomic_load(&c->dead_free_slow);
	v[4] += atomic_load(&c->dead_free_remote);
}

unsigned long cache_active_objs(const struct slab_cache *c)
{
	unsigned long v[SN_NR_CPU_COUNTERS];
	cache_counters(c, v);
	long live = (long)(v[0] + v[1]) - (long)(v[2] + v[3]);
	return live > 0 ? (unsigned long)live : 0;
}

int slab_cache_info(const struct slab_cache *h, struct slab_cache_info *out)
{
	struct slab_cache *mc = cache_of_handle(h);
	if (!mc || !out) {
		errno = EINVAL;
		return -EINVAL;
	}
	const struct slab_cache *c = mc;
	unsigned long v[SN_NR_CPU_COUNTERS];
	cache_counters(c, v);
	long live = (long)(v[0] + v[1]) - (long)(v[2] + v[3]);
	bool large = c->kind & CACHE_LARGE;

	memset(out, 0, sizeof(*out));
	snprintf(out->name, sizeof(out->name), "%s", c->name);
	out->object_size = large ? 0 : c->object_size;
	out->size = large ? 0 : c->size;
	out->align = c->align;
	out->objs_per_slab = large ? 1 : c->objects;
	out->slab_bytes = large ? 0 : slab_bytes_of(c);
	out->active_objs = live > 0 ? (unsigned long)live : 0;
	out->num_slabs = (unsigned long)atomic_load(&mc->nr_slabs);
	out->num_objs = out->num_slabs * out->objs_per_slab;
	sn_lock(&mc->lock);
	unsigned long empty = c->nr_empty;
	sn_unlock(&mc->lock);
	empty += (unsigned long)atomic_load(&mc->nr_idle);
	out->active_slabs = out->num_slabs > empty ? out->num_slabs - empty : 0;
	out->alloc_fastpath = v[0];
	out->alloc_slowpath = v[1];
	out->free_fastpath = v[2];
	out->free_slowpath = v[3];
	out->free_remote = v[4];
	out->alloc_slab = atomic_load(&mc->alloc_slab);
	out->free_slab = atomic_load(&mc->free_slab);
	out->flags = c->flags;
	out->notify = atomic_load(&mc->hooks) & HOOK_ALLOC;
	return 0;
}

int slab_cache_for_each(void (*fn)(struct slab_cache *c, void *arg), void *arg)
{
	int n = 0;
	kmalloc_init();     /* the built-in caches exist from the start */
	cache_list_lock();
	for (struct slab_cache *c = cache_list_first(); c; c = c->next_cache, n++)
		if (fn)
			fn(cache_handle(c), arg);
	cache_list_unlock();
	return n;
}

struct print_args {
	FILE *f;
	bool used_only;
};

static void print_line(struct slab_cache *c, void *arg)
{
	struct print_args *a = arg;
	FILE *f = a->f;
	struct slab_cache_info i;
	if (slab_cache_info(c, &i))
		return;
	if (a->used_only && i.alloc_slab == 0 && i.alloc_fastpath + i.alloc_slowpath == 0)
		return;
	unsigned pages = (unsigned)(i.slab_bytes >> SN_PAGE_SHIFT);
	fprintf(f, "%-17s %6lu %6lu %6zu %4u %4u : tunables %4u %4u %4u : slabdata %6lu %6lu %6u\n",
		i.name, i.active_objs, i.num_objs, i.size, i.objs_per_slab, pages, 0u, 0u, 0u,
		i.active_slabs, i.num_slabs, 0u);
}

static void info_print(FILE *f, bool used_only)
{
	struct print_args a = { f, used_only };
	fprintf(f, "slabinfo - version: 2.1\n");
	fprintf(f, "# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab>"
		   " : tunables <limit> <batchcount> <sharedfactor>"
		   " : slabdata <active_slabs> <num_slabs> <sharedavail>\n");
	slab_cache_for_each(print_line, &a);
}

void slab_info_print(FILE *f)
{
	if (f)
		info_print(f, false);
}

void sn_info_print_used(FILE *f)
{
	if (f)
		info_print(f, true);
}

slab_flags_t slab_cache_flags(const struct slab_cache *h)
{
	const struct slab_cache *c = cache_of_handle(h);
	return c ? c->flags : 0;
}

size_t slab_cache_size(const struct slab_cache *h)
{
	const struct slab_cache *c = cache_of_handle(h);
	if (!c || (c->kind & CACHE_LARGE))
		return 0;
	return c->size;
}
