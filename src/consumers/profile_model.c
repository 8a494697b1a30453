/*
 * profile_model.c - the accounting read into one model (profile.h):
 * the summary, each section's stacks sorted largest first, the timeline.
 * Every renderer is a view of this model. It lives in one mapping of
 * its own (never slab memory).
 */
#define _GNU_SOURCE
#include "profile_state.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>

static int by_bytes(const void *a, const void *b)
{
	const struct sn_prof_row *x = a, *y = b;
	if (x->bytes != y->bytes)
		return x->bytes > y->bytes ? -1 : 1;
	if (x->blocks != y->blocks)
		return x->blocks > y->blocks ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

static int by_calls(const void *a, const void *b)
{
	const struct sn_prof_row *x = a, *y = b;
	if (x->calls != y->calls)
		return x->calls > y->calls ? -1 : 1;
	return by_bytes(a, b);
}

static void sort(struct sn_prof_section *s, int (*cmp)(const void *, const void *))
{
	if (s->n > 1)
		qsort(s->rows, s->n, sizeof(*s->rows), cmp);
}

static uint64_t rss_peak(void)
{
	struct rusage ru;
	return getrusage(RUSAGE_SELF, &ru) == 0 ? (uint64_t)ru.ru_maxrss * 1024 : 0;
}

static void summary_in(struct sn_prof_model *m)
{
	struct prof_state *s = &sn_prof;
	m->mode = s->cfg.mode;
	m->every = s->cfg.every;
	m->sample_bytes = s->cfg.sample_bytes;
	m->allocations = atomic_load(&s->allocations);
	m->frees = atomic_load(&s->frees);
	m->bytes_allocated = atomic_load(&s->bytes_allocated);
	m->peak_bytes = atomic_load(&s->peak);
	m->peak_ns = atomic_load(&s->peak_ns);
	m->in_use_bytes = atomic_load(&s->live);
	m->in_use_blocks = atomic_load(&s->live_blocks);
	m->temporary = atomic_load(&s->temporary);
	m->peak_rss_bytes = rss_peak();
	m->duration_ns = sn_prof_now();
}

/* One stack into the sections it belongs to. */
static void stack_in(struct sn_prof_model *m, sn_stack_id id, uint32_t epoch)
{
	const struct prof_stack *p = &sn_prof.stacks[id];
	uint64_t lb = atomic_load_explicit(&p->live_bytes, memory_order_relaxed);
	uint64_t ln = atomic_load_explicit(&p->live_blocks, memory_order_relaxed);
	if (m->mode == SN_PROF_FULL) {
		uint64_t pb = p->epoch == epoch ? p->peak_bytes : lb;
		uint64_t pn = p->epoch == epoch ? p->peak_blocks : ln;
		if (pb)
			m->peak.rows[m->peak.n++] = (struct sn_prof_row){ id, pb, pn, 0, 0 };
		if (p->calls)
			m->hot.rows[m->hot.n++] = (struct sn_prof_row){ id, p->alloc_bytes, 0, p->calls, 0 };
		if (p->temp)
			m->temp.rows[m->temp.n++] = (struct sn_prof_row){ id, 0, 0, p->temp, 0 };
	}
	if (!ln)
		return;
	if (sn_suppress_match(id)) {
		m->suppressed_bytes += lb;
		m->suppressed_blocks += ln;
		return;
	}
	uint64_t foot = atomic_load_explicit(&p->live_foot, memory_order_relaxed);
	m->leaks.rows[m->leaks.n++] = (struct sn_prof_row){ id, lb, ln, 0, foot };
	m->leaked_bytes += lb;
	m->leaked_blocks += ln;
	m->leaked_footprint += foot;
}

static bool model_memory(struct sn_prof_model *m, uint32_t ids)
{
	size_t rows = (size_t)ids + 1;
	size_t bytes = 4 * rows * sizeof(struct sn_prof_row) + SN_PROF_POINTS * sizeof(struct sn_prof_point);
	bytes = (bytes + 4095) & ~(size_t)4095;
	void *mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return false;
	m->mem_ = mem;
	m->mem_bytes_ = bytes;
	struct sn_prof_row *r = mem;
	m->peak.rows = r;
	m->hot.rows = r + rows;
	m->temp.rows = r + 2 * rows;
	m->leaks.rows = r + 3 * rows;
	m->points = (struct sn_prof_point *)(r + 4 * rows);
	return true;
}

bool sn_profile_model(struct sn_prof_model *m, unsigned top)
{
	memset(m, 0, sizeof(*m));
	if (!sn_prof.on)
		return false;
	sn_quiet_begin();    /* symbolising for the suppressions allocates */
	uint32_t ids = sn_stack_count();
	if (!model_memory(m, ids)) {
		sn_quiet_end();
		return false;
	}
	m->top = top ? top : 10;
	/* A consistent cut: no event changes a stack while it is read. */
	sn_prof_hold(true);
	summary_in(m);
	uint32_t epoch = atomic_load(&sn_prof.epoch);
	for (sn_stack_id id = 1; id <= ids; id++)
		stack_in(m, id, epoch);
	pthread_mutex_lock(&sn_prof.timeline_lock);
	m->npoints = sn_prof.npoints;
	memcpy(m->points, sn_prof.points, m->npoints * sizeof(*m->points));
	pthread_mutex_unlock(&sn_prof.timeline_lock);
	sn_prof_hold(false);
	sort(&m->peak, by_bytes);
	sort(&m->hot, by_calls);
	sort(&m->temp, by_calls);
	sort(&m->leaks, by_bytes);
	sn_quiet_end();
	return true;
}

void sn_profile_model_free(struct sn_prof_model *m)
{
	if (m->mem_)
		munmap(m->mem_, m->mem_bytes_);
	memset(m, 0, sizeof(*m));
}
