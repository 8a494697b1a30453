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
	struct prof_tcount sum;
	sn_prof_counts(&sum);
	m->allocations = sum.allocations;
	m->frees = sum.frees;
	m->bytes_allocated = sum.bytes_allocated;
	m->peak_bytes = atomic_load(&s->peak);
	m->peak_ns = atomic_load(&s->peak_ns);
	m->in_use_bytes = atomic_load(&s->live);
	m->in_use_blocks = sum.allocations - sum.frees;
	m->temporary = sum.temporary;
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

/* A stack's frames as the report shows them: call sites that differ
 * only in their pc (one line compiled twice, an unrolled loop) are one
 * line in the report, so they are one row. Interned strings compare by
 * pointer. */
static void frame_key(uintptr_t pc, uintptr_t key[3])
{
	struct sn_frame fr;
	sn_frame_resolve(pc, &fr);
	key[0] = fr.function ? (uintptr_t)fr.function : pc;
	key[1] = (uintptr_t)fr.file;
	key[2] = fr.file ? fr.line : 0;
}

static uint64_t line_hash(sn_stack_id id)
{
	void *const *pcs;
	uint32_t n = sn_stack_frames(id, &pcs);
	uint64_t h = n;
	for (uint32_t i = 0; i < n; i++) {
		uintptr_t k[3];
		frame_key((uintptr_t)pcs[i], k);
		for (int j = 0; j < 3; j++)
			h = (h ^ k[j]) * 0x100000001b3ULL;
	}
	return h;
}

static bool same_lines(sn_stack_id a, sn_stack_id b)
{
	void *const *pa, *const *pb;
	uint32_t n = sn_stack_frames(a, &pa);
	if (sn_stack_frames(b, &pb) != n)
		return false;
	for (uint32_t i = 0; i < n; i++) {
		uintptr_t ka[3], kb[3];
		frame_key((uintptr_t)pa[i], ka);
		frame_key((uintptr_t)pb[i], kb);
		if (memcmp(ka, kb, sizeof(ka)))
			return false;
	}
	return true;
}

static int by_key(const void *a, const void *b)
{
	const struct sn_prof_row *x = a, *y = b;
	return x->calls < y->calls ? -1 : x->calls > y->calls;
}

/* Merge the leak rows whose stacks read the same (the key rides in the
 * unused calls field meanwhile). */
static void merge_by_lines(struct sn_prof_section *s)
{
	for (size_t i = 0; i < s->n; i++)
		s->rows[i].calls = line_hash(s->rows[i].id);
	sort(s, by_key);
	size_t m = 0;
	for (size_t i = 0; i < s->n; i++) {
		struct sn_prof_row *r = &s->rows[i], *prev = m ? &s->rows[m - 1] : NULL;
		if (prev && prev->calls == r->calls && same_lines(prev->id, r->id)) {
			prev->bytes += r->bytes;
			prev->blocks += r->blocks;
			prev->footprint += r->footprint;
			continue;
		}
		s->rows[m++] = *r;
	}
	s->n = m;
	for (size_t i = 0; i < m; i++)
		s->rows[i].calls = 0;
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
	merge_by_lines(&m->leaks);   /* symbolised already, for the suppressions */
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
