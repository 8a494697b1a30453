/*
 * profile_html.c - the whole profile on one self-contained page (a view
 * of the model): the summary, the timeline, the flame graphs (peak
 * consumers and leaks) inline, and the tables of every section. No
 * network: styles and scripts are in the page.
 */
#define _GNU_SOURCE
#include "profile.h"
#include "profile_svg.h"

#include <inttypes.h>

static void frames_cell(FILE *f, sn_stack_id id)
{
	void *const *pcs;
	uint32_t n = sn_stack_frames(id, &pcs);
	fputs("<td class=\"st\">", f);
	for (uint32_t i = 0; i < n; i++) {
		struct sn_frame fr;
		char buf[96];
		sn_frame_resolve((uintptr_t)pcs[i], &fr);
		fprintf(f, "#%u ", i);
		svg_text(f, sn_frame_label(&fr, buf, sizeof(buf)));
		if (fr.file) {
			fputs(" <span class=\"loc\">(", f);
			svg_text(f, fr.file);
			fprintf(f, ":%u)</span>", fr.line);
		}
		fputs("<br>", f);
	}
	fputs("</td>", f);
}

/* A table of a section's top rows; @cols: b bytes, n blocks, c calls. */
static void table(FILE *f, const char *title, const struct sn_prof_section *s, const struct sn_prof_model *m,
		  const char *cols)
{
	static const char *const head[] = { ['b'] = "bytes", ['n'] = "blocks", ['c'] = "calls" };
	fprintf(f, "<h2>%s</h2>\n<table><tr>", title);
	for (const char *c = cols; *c; c++)
		fprintf(f, "<th>%s</th>", head[(unsigned char)*c]);
	fputs("<th>stack</th></tr>\n", f);
	size_t shown = s->n < m->top ? s->n : m->top;
	for (size_t i = 0; i < shown; i++) {
		const struct sn_prof_row *r = &s->rows[i];
		fputs("<tr>", f);
		for (const char *c = cols; *c; c++)
			fprintf(f, "<td class=\"num\">%" PRIu64 "</td>",
				*c == 'b' ? r->bytes : *c == 'n' ? r->blocks : r->calls);
		frames_cell(f, r->id);
		fputs("</tr>\n", f);
	}
	if (!shown)
		fputs("<tr><td colspan=\"4\">none</td></tr>\n", f);
	fputs("</table>\n", f);
}

static void summary(FILE *f, const struct sn_prof_model *m)
{
	fprintf(f, "<table class=\"sum\">"
		   "<tr><th>allocations</th><td>%" PRIu64 "</td></tr><tr><th>frees</th><td>%" PRIu64 "</td></tr>"
		   "<tr><th>bytes allocated</th><td>%" PRIu64 "</td></tr>"
		   "<tr><th>peak heap</th><td>%" PRIu64 " bytes at %.3f s</td></tr>"
		   "<tr><th>peak RSS</th><td>%" PRIu64 " bytes</td></tr>"
		   "<tr><th>in use at exit</th><td>%" PRIu64 " bytes in %" PRIu64 " blocks</td></tr>"
		   "<tr><th>leaked</th><td>%" PRIu64 " bytes in %" PRIu64 " blocks (%" PRIu64 " bytes in %" PRIu64
		   " blocks suppressed)</td></tr></table>\n",
		m->allocations, m->frees, m->bytes_allocated, m->peak_bytes, (double)m->peak_ns / 1e9,
		m->peak_rss_bytes, m->in_use_bytes, m->in_use_blocks, m->leaked_bytes, m->leaked_blocks,
		m->suppressed_bytes, m->suppressed_blocks);
}

void sn_profile_html(FILE *f, const struct sn_prof_model *m, const char *title)
{
	fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>slabnotify: ", f);
	svg_text(f, title);
	fputs("</title>\n<style>body{font-family:Verdana,sans-serif;margin:1.5em;color:#222}"
	      "table{border-collapse:collapse;margin-bottom:1.5em}td,th{border:1px solid #ccc;padding:3px 8px;"
	      "vertical-align:top;text-align:left}td.num{text-align:right}td.st{font-family:monospace;font-size:12px}"
	      ".loc{color:#777}svg{display:block;margin-bottom:1.5em;max-width:100%;height:auto}</style></head>\n<body>\n"
	      "<h1>slabnotify heap profile</h1>\n<p class=\"cmd\">", f);
	svg_text(f, title);
	fputs("</p>\n", f);
	summary(f, m);
	if (m->mode == SN_PROF_FULL) {
		fputs("<h2>Heap over time</h2>\n", f);
		sn_timeline_svg(f, m, false);
		fputs("<h2>Peak consumers (flame graph)</h2>\n", f);
		sn_flame_svg(f, &m->peak, "Peak consumers: bytes live at the peak", "fg-peak", false);
	}
	fputs("<h2>Leaks (flame graph)</h2>\n", f);
	sn_flame_svg(f, &m->leaks, "Leaks: bytes live at exit", "fg-leaks", false);
	if (m->mode == SN_PROF_FULL) {
		table(f, "Peak consumers", &m->peak, m, "bn");
		table(f, "Hot spots", &m->hot, m, "cb");
		table(f, "Temporary allocations", &m->temp, m, "c");
	}
	table(f, "Leaks", &m->leaks, m, "bn");
	fputs("</body></html>\n", f);
}
