/*
 * profile_folded.c - a section as folded stacks (a view of the model):
 * one line per stack, outermost frame first, "frame;frame;leaf BYTES",
 * which flamegraph.pl, inferno and speedscope read. Every stack of the
 * section, not only the top rows: the picture is of all of it.
 */
#define _GNU_SOURCE
#include "profile.h"

#include <inttypes.h>
#include <string.h>

/* A frame's label with the separators folded text reserves replaced. */
static void put_label(FILE *f, const struct sn_frame *fr)
{
	char buf[96];
	for (const char *s = sn_frame_label(fr, buf, sizeof(buf)); *s; s++)
		fputc(*s == ';' ? ':' : *s == '\n' ? ' ' : *s, f);
}

void sn_profile_folded(FILE *f, const struct sn_prof_section *s)
{
	for (size_t i = 0; i < s->n; i++) {
		void *const *pcs;
		uint32_t n = sn_stack_frames(s->rows[i].id, &pcs);
		if (!n || !s->rows[i].bytes)
			continue;
		for (uint32_t j = n; j-- > 0;) {
			struct sn_frame fr;
			sn_frame_resolve((uintptr_t)pcs[j], &fr);
			put_label(f, &fr);
			fputc(j ? ';' : ' ', f);
		}
		fprintf(f, "%" PRIu64 "\n", s->rows[i].bytes);
	}
}
