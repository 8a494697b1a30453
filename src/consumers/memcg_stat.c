/*
 * memcg_stat.c - reading the groups: statistics, peaks, the printed tree.
 * The design and the rules: memcg.h.
 */
#include "memcg.h"

/* Sum the stocks of @g's subtree. */
struct stock_sum stocks_of(const struct slab_memcg *g)
{
	struct stock_sum s = { 0, 0, 0 };
	unsigned long reset = atomic_load_explicit(&g->reset_seq, RLX);
	for (struct memcg_thread *t = atomic_load_explicit(&registry, memory_order_acquire); t;
	     t = t->next) {
		pthread_mutex_lock(&t->lock);
		struct slab_memcg *sg = atomic_load_explicit(&t->stock.group, RLX);
		if (sg && in_subtree(sg, g)) {
			s.stock += atomic_load_explicit(&t->stock.bytes, RLX);
			s.objs += atomic_load_explicit(&t->stock.nr_objs, RLX);
			long extra = atomic_load_explicit(&t->stock.hw, RLX) - atomic_load_explicit(&t->stock.consumed, RLX);
			if (extra > 0 && atomic_load_explicit(&t->stock.seq, RLX) >= reset)
				s.hw_extra += (size_t)extra;
		}
		pthread_mutex_unlock(&t->lock);
	}
	return s;
}

static int group_stat(struct slab_memcg *g, struct slab_memcg_stat *st);

int slab_memcg_stat(const struct slab_memcg *h, struct slab_memcg_stat *st)
{
	ensure_init();
	struct slab_memcg *g = group_of(h);
	if (!g || !st)
		return fail(EINVAL);
	return group_stat(g, st);
}

/* The figures of @g (a live group or a zombie: printing walks both). */
static int group_stat(struct slab_memcg *g, struct slab_memcg_stat *st)
{
	struct stock_sum s = stocks_of(g);
	size_t ch = atomic_load(&g->charged);
	unsigned long w = atomic_load(&g->objs);
	memset(st, 0, sizeof(*st));
	st->usage = sat_sub(ch, s.stock);
	st->stock = s.stock < ch ? s.stock : ch;
	st->max = atomic_load(&g->max);
	st->high = atomic_load(&g->high);
	long objs = (long)w + s.objs;
	st->nr_objects = objs > 0 ? (unsigned long)objs : 0;
	size_t cand = st->usage;
	if (s.hw_extra) {
		size_t lim = st->max > ch ? st->max : ch;
		cand = cand + s.hw_extra > lim ? lim : cand + s.hw_extra;
		if (cand < st->usage)
			cand = st->usage;
	}
	atomic_max_size(&g->peak, cand);
	st->peak = atomic_load(&g->peak);
	st->failcnt = atomic_load(&g->failcnt);
	st->events_high = atomic_load(&g->events_high);
	st->events_max = atomic_load(&g->events_max);
	st->events_nofail = atomic_load(&g->events_nofail);
	st->reclaimed = atomic_load(&g->reclaimed);
	st->throttled_us = atomic_load(&g->throttled_us);
	return 0;
}

static void print_size(FILE *f, const char *key, size_t v)
{
	if (v == SIZE_MAX)
		fprintf(f, "  %-16s max\n", key);
	else
		fprintf(f, "  %-16s %zu\n", key, v);
}

struct print_rec {
	char path[512];
	struct slab_memcg_stat st;
};

/* Tree lock held. */
static size_t count_groups(const struct slab_memcg *g)
{
	size_t n = 1;
	for (const struct slab_memcg *c = g->first_child; c; c = c->next_sibling)
		n += count_groups(c);
	return n;
}

/* Tree lock held: the stats of @g's subtree, parents first. */
static void collect(struct slab_memcg *g, struct print_rec *r, size_t *i, const char *parent)
{
	struct print_rec *me = &r[(*i)++];
	if (g == &root_group) {
		strcpy(me->path, "/");
	} else {   /* parent + "/" + name, cut to fit */
		size_t cap = sizeof(me->path), pl = strcmp(parent, "/") ? strlen(parent) : 0;
		if (pl > cap - 2)
			pl = cap - 2;
		memcpy(me->path, parent, pl);
		me->path[pl] = '/';
		size_t nl = strnlen(g->name, cap - pl - 2);
		memcpy(me->path + pl + 1, g->name, nl);
		me->path[pl + 1 + nl] = '\0';
	}
	group_stat(g, &me->st);
	for (struct slab_memcg *c = g->first_child; c; c = c->next_sibling)
		collect(c, r, i, me->path);
}

/*
 * The tree, snapshotted under the lock into a private mapping, then each
 * group handed to @fn with no lock held: stdio and callers may allocate,
 * and nothing allocates under tree_lock. The number of groups, or a
 * negative errno (consumer.h).
 */
int sn_memcg_walk(void (*fn)(const char *path, const struct slab_memcg_stat *st, void *arg), void *arg)
{
	ensure_init();
	struct print_rec *r;
	size_t n, mapped;
	for (;;) {
		pthread_mutex_lock(&tree_lock);
		size_t want = count_groups(&root_group) + 8;
		pthread_mutex_unlock(&tree_lock);
		r = map_zeroed(want * sizeof(*r), &mapped);
		if (!r)
			return fail(ENOMEM);
		pthread_mutex_lock(&tree_lock);
		if (count_groups(&root_group) <= want) {
			n = 0;
			collect(&root_group, r, &n, "");
			pthread_mutex_unlock(&tree_lock);
			break;
		}
		pthread_mutex_unlock(&tree_lock);
		munmap(r, mapped);
	}
	for (size_t i = 0; i < n; i++)
		fn(r[i].path, &r[i].st, arg);
	munmap(r, mapped);
	return (int)n;
}

static void print_group(const char *path, const struct slab_memcg_stat *st, void *arg)
{
	FILE *f = arg;
	fprintf(f, "%s\n", path);
	print_size(f, "memory.current", st->usage);
	print_size(f, "memory.peak", st->peak);
	print_size(f, "memory.max", st->max);
	print_size(f, "memory.high", st->high);
	fprintf(f, "  %-16s high %lu max %lu fail %lu nofail %lu\n", "memory.events", st->events_high,
		st->events_max, st->failcnt, st->events_nofail);
	fprintf(f, "  %-16s stock %zu objects %lu reclaimed %lu throttled_us %lu\n", "memory.stat", st->stock,
		st->nr_objects, st->reclaimed, st->throttled_us);
}

int slab_memcg_print(FILE *f)
{
	if (!f)
		return fail(EINVAL);
	int n = sn_memcg_walk(print_group, f);
	return n < 0 ? n : 0;
}

void sn_memcg_root_snapshot(struct sn_memcg_snapshot *s)
{
	struct slab_memcg *g = &root_group;
	s->usage = atomic_load_explicit(&g->charged, RLX);
	s->peak = atomic_load_explicit(&g->peak, RLX);
	s->max = atomic_load_explicit(&g->max, RLX);
	s->high = atomic_load_explicit(&g->high, RLX);
	s->failcnt = atomic_load_explicit(&g->failcnt, RLX);
	s->events_high = atomic_load_explicit(&g->events_high, RLX);
	s->events_max = atomic_load_explicit(&g->events_max, RLX);
	s->throttled_us = atomic_load_explicit(&g->throttled_us, RLX);
	if (s->peak < s->usage)
		s->peak = s->usage;
}
