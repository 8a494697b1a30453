/*
 * profile_json.c - the profile as JSON members (a view of the model),
 * for the drop-in's report object: "summary", and "peak", "hotspots",
 * "temporary", "leaks" for the sections the mode has. The keys are a
 * contract: docs/report-format.md.
 */
#define _GNU_SOURCE
#include "profile.h"
#include "json.h"

#include <inttypes.h>

static void json_str_or_null(FILE *f, const char *s)
{
	if (s)
		json_string(f, s);
	else
		fputs("null", f);
}

static void frames(FILE *f, sn_stack_id id)
{
	void *const *pcs;
	uint32_t n = sn_stack_frames(id, &pcs);
	fputs("\"frames\":[", f);
	for (uint32_t i = 0; i < n; i++) {
		struct sn_frame fr;
		sn_frame_resolve((uintptr_t)pcs[i], &fr);
		fputs(i ? ",{\"function\":" : "{\"function\":", f);
		json_str_or_null(f, fr.function);
		fputs(",\"file\":", f);
		json_str_or_null(f, fr.file);
		if (fr.file)
			fprintf(f, ",\"line\":%u", fr.line);
		else
			fputs(",\"line\":null", f);
		fputs(",\"module\":", f);
		json_str_or_null(f, fr.module);
		fputc('}', f);
	}
	fputc(']', f);
}

static size_t shown(const struct sn_prof_section *s, const struct sn_prof_model *m)
{
	return s->n < m->top ? s->n : m->top;
}

/* "stacks":[...] with the members @kind asks for: b bytes, n blocks, c calls. */
static void stacks(FILE *f, const struct sn_prof_section *s, const struct sn_prof_model *m, const char *kind)
{
	fputs("\"stacks\":[", f);
	for (size_t i = 0; i < shown(s, m); i++) {
		const struct sn_prof_row *r = &s->rows[i];
		fputs(i ? ",{" : "{", f);
		for (const char *k = kind; *k; k++) {
			if (*k == 'c')
				fprintf(f, "\"calls\":%" PRIu64 ",", r->calls);
			else if (*k == 'b')
				fprintf(f, "\"bytes\":%" PRIu64 ",", r->bytes);
			else if (*k == 'n')
				fprintf(f, "\"blocks\":%" PRIu64 ",", r->blocks);
		}
		frames(f, r->id);
		fputc('}', f);
	}
	fputc(']', f);
}

void sn_profile_json(FILE *f, const struct sn_prof_model *m)
{
	fprintf(f, "\"summary\":{\"allocations\":%" PRIu64 ",\"frees\":%" PRIu64 ",\"bytes_allocated\":%" PRIu64
		   ",\"peak_bytes\":%" PRIu64 ",\"peak_rss_bytes\":%" PRIu64 ",\"in_use_at_exit_bytes\":%" PRIu64
		   ",\"in_use_at_exit_blocks\":%" PRIu64 ",\"leaked_bytes\":%" PRIu64 ",\"leaked_blocks\":%" PRIu64 "}",
		m->allocations, m->frees, m->bytes_allocated, m->peak_bytes, m->peak_rss_bytes, m->in_use_bytes,
		m->in_use_blocks, m->leaked_bytes, m->leaked_blocks);
	if (m->mode == SN_PROF_FULL) {
		fprintf(f, ",\"peak\":{\"bytes\":%" PRIu64 ",", m->peak_bytes);
		stacks(f, &m->peak, m, "bn");
		fputs("},\"hotspots\":{", f);
		stacks(f, &m->hot, m, "cb");
		fprintf(f, "},\"temporary\":{\"allocations\":%" PRIu64 ",", m->temporary);
		stacks(f, &m->temp, m, "c");
		fputc('}', f);
	}
	fprintf(f, ",\"leaks\":{\"bytes\":%" PRIu64 ",\"blocks\":%" PRIu64 ",\"suppressed_bytes\":%" PRIu64
		   ",\"suppressed_blocks\":%" PRIu64 ",",
		m->leaked_bytes, m->leaked_blocks, m->suppressed_bytes, m->suppressed_blocks);
	stacks(f, &m->leaks, m, "bn");
	fputc('}', f);
}
