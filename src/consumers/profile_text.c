/*
 * profile_text.c - the profile as text (a view of the model): the
 * summary line, then the sections the mode has, each its top rows,
 * largest first, every frame "#N function (file:line)".
 */
#define _GNU_SOURCE
#include "profile.h"

#include <inttypes.h>
#include <string.h>

/* "1.2 MiB" (or "512 B"), into @buf. */
static const char *human(uint64_t v, char *buf, size_t cap)
{
	static const char *const unit[] = { "KiB", "MiB", "GiB", "TiB" };
	if (v < 1024) {
		snprintf(buf, cap, "%" PRIu64 " B", v);
		return buf;
	}
	double x = (double)v / 1024;
	int u = 0;
	while (u < 3 && x >= 1024) {
		x /= 1024;
		u++;
	}
	snprintf(buf, cap, "%.1f %s", x, unit[u]);
	return buf;
}

const char *sn_frame_label(const struct sn_frame *fr, char *buf, size_t cap)
{
	if (fr->function)
		return fr->function;
	const char *mod = fr->module ? strrchr(fr->module, '/') : NULL;
	snprintf(buf, cap, "%s@0x%" PRIxPTR, mod ? mod + 1 : fr->module ? fr->module : "?", fr->pc);
	return buf;
}

static const char *plural(uint64_t n, const char *one, const char *many)
{
	return n == 1 ? one : many;
}

/* "N bytes", with a readable size after it past 1 KiB: at most 20
 * digits, " bytes (", a human() figure and ")". */
#define SIZE_TEXT_MAX 64
static const char *size(uint64_t v, char *buf, size_t cap)
{
	char h[32];
	if (v < 1024)
		snprintf(buf, cap, "%" PRIu64 " bytes", v);
	else
		snprintf(buf, cap, "%" PRIu64 " bytes (%s)", v, human(v, h, sizeof(h)));
	return buf;
}

static void summary(FILE *f, const struct sn_prof_model *m)
{
	char a[SIZE_TEXT_MAX], b[SIZE_TEXT_MAX], c[SIZE_TEXT_MAX], d[SIZE_TEXT_MAX], e[SIZE_TEXT_MAX];
	fprintf(f, "slabnotify: %" PRIu64 " allocations, %" PRIu64 " frees, %s allocated; peak heap %s at %.3f s; "
		   "peak RSS %s; in use at exit %s in %" PRIu64 " %s; leaked %s in %" PRIu64 " %s",
		m->allocations, m->frees, size(m->bytes_allocated, a, sizeof(a)), size(m->peak_bytes, b, sizeof(b)),
		(double)m->peak_ns / 1e9, human(m->peak_rss_bytes, c, sizeof(c)), size(m->in_use_bytes, d, sizeof(d)),
		m->in_use_blocks, plural(m->in_use_blocks, "block", "blocks"), size(m->leaked_bytes, e, sizeof(e)),
		m->leaked_blocks, plural(m->leaked_blocks, "block", "blocks"));
	if (m->suppressed_blocks)
		fprintf(f, " (%" PRIu64 " bytes in %" PRIu64 " %s suppressed)", m->suppressed_bytes,
			m->suppressed_blocks, plural(m->suppressed_blocks, "block", "blocks"));
	fputc('\n', f);
	if (m->mode == SN_PROF_FULL && m->sample_bytes)
		fprintf(f, "slabnotify: stacks sampled once per %zu bytes on average; their figures are estimates\n",
			m->sample_bytes);
	else if (m->mode == SN_PROF_LEAKS && m->every > 1)
		fprintf(f, "slabnotify: 1 in %u allocations sampled for the leak stacks\n", m->every);
}

static size_t shown(const struct sn_prof_section *s, const struct sn_prof_model *m)
{
	return s->n < m->top ? s->n : m->top;
}

static void more(FILE *f, const struct sn_prof_section *s, const struct sn_prof_model *m)
{
	if (s->n > m->top)
		fprintf(f, "(%zu more stacks not shown; --top N shows more)\n\n", s->n - m->top);
}

static void peak_section(FILE *f, const struct sn_prof_model *m)
{
	char a[32];
	fprintf(f, "\nPEAK CONSUMERS: the stacks holding the most memory at the peak, %s at %.3f s\n\n",
		human(m->peak_bytes, a, sizeof(a)), (double)m->peak_ns / 1e9);
	for (size_t i = 0; i < shown(&m->peak, m); i++) {
		const struct sn_prof_row *r = &m->peak.rows[i];
		fprintf(f, "%" PRIu64 " bytes in %" PRIu64 " %s allocated from:\n", r->bytes, r->blocks,
			plural(r->blocks, "block", "blocks"));
		sn_stack_print(f, r->id, "  ");
		fputc('\n', f);
	}
	more(f, &m->peak, m);
}

static void hot_section(FILE *f, const struct sn_prof_model *m)
{
	fprintf(f, "HOT SPOTS: the stacks with the most allocation calls\n\n");
	for (size_t i = 0; i < shown(&m->hot, m); i++) {
		const struct sn_prof_row *r = &m->hot.rows[i];
		fprintf(f, "%" PRIu64 " %s, %" PRIu64 " bytes, from:\n", r->calls, plural(r->calls, "call", "calls"),
			r->bytes);
		sn_stack_print(f, r->id, "  ");
		fputc('\n', f);
	}
	more(f, &m->hot, m);
}

static void temp_section(FILE *f, const struct sn_prof_model *m)
{
	double pct = m->allocations ? 100.0 * (double)m->temporary / (double)m->allocations : 0;
	fprintf(f, "TEMPORARY ALLOCATIONS: freed before the same thread's next allocation, "
		   "%" PRIu64 " of %" PRIu64 " (%.1f%%)\n\n", m->temporary, m->allocations, pct);
	for (size_t i = 0; i < shown(&m->temp, m); i++) {
		const struct sn_prof_row *r = &m->temp.rows[i];
		fprintf(f, "%" PRIu64 " temporary %s from:\n", r->calls, plural(r->calls, "allocation", "allocations"));
		sn_stack_print(f, r->id, "  ");
		fputc('\n', f);
	}
	more(f, &m->temp, m);
}

static void leak_section(FILE *f, const struct sn_prof_model *m)
{
	fprintf(f, m->mode == SN_PROF_FULL ? "LEAKS: blocks still live at exit\n\n" : "\n");
	for (size_t i = 0; i < shown(&m->leaks, m); i++) {
		const struct sn_prof_row *r = &m->leaks.rows[i];
		fprintf(f, "%" PRIu64 " bytes [%" PRIu64 " with rounding] in %" PRIu64 " %s allocated from:\n",
			r->bytes, r->footprint, r->blocks, plural(r->blocks, "block", "blocks"));
		sn_stack_print(f, r->id, "  ");
		fputc('\n', f);
	}
	more(f, &m->leaks, m);
	fprintf(f, "slabnotify: %" PRIu64 " bytes in %" PRIu64 " %s leaked from %zu %s", m->leaked_bytes,
		m->leaked_blocks, plural(m->leaked_blocks, "block", "blocks"), m->leaks.n,
		plural(m->leaks.n, "stack", "stacks"));
	if (m->suppressed_blocks)
		fprintf(f, "; %" PRIu64 " bytes in %" PRIu64 " %s suppressed", m->suppressed_bytes,
			m->suppressed_blocks, plural(m->suppressed_blocks, "block", "blocks"));
	fputc('\n', f);
}

void sn_profile_text(FILE *f, const struct sn_prof_model *m)
{
	summary(f, m);
	if (m->mode == SN_PROF_FULL) {
		peak_section(f, m);
		hot_section(f, m);
		temp_section(f, m);
	}
	leak_section(f, m);
}
