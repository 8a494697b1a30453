/*
 * profile_timeline.c - heap and RSS over the run (a view of the model):
 * a self-contained SVG with both curves, time and size axes, and the
 * peak marked and labelled with its top consumer's innermost frame.
 */
#define _GNU_SOURCE
#include "profile.h"
#include "profile_svg.h"

#include <inttypes.h>
#include <string.h>

#define TL_W 1000
#define TL_H 360
#define TL_L 80     /* margins */
#define TL_R 20
#define TL_T 40
#define TL_B 40

struct scale {
	double t_max, y_max;
};

static double sx(const struct scale *s, uint64_t ns)
{
	return TL_L + (double)ns / s->t_max * (TL_W - TL_L - TL_R);
}

static double sy(const struct scale *s, uint64_t v)
{
	return TL_H - TL_B - (double)v / s->y_max * (TL_H - TL_T - TL_B);
}

static const char *mib(double v, char *buf, size_t cap)
{
	snprintf(buf, cap, "%.1f MiB", v / 1048576.0);
	return buf;
}

static void axes(FILE *f, const struct scale *s)
{
	char b[32];
	fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#333\"/>\n", TL_L, TL_H - TL_B,
		TL_W - TL_R, TL_H - TL_B);
	fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#333\"/>\n", TL_L, TL_T, TL_L,
		TL_H - TL_B);
	for (int i = 0; i <= 4; i++) {
		double v = s->y_max * i / 4, y = TL_H - TL_B - (TL_H - TL_T - TL_B) * i / 4.0;
		fprintf(f, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n", TL_L - 6, y + 4,
			mib(v, b, sizeof(b)));
		double t = s->t_max * i / 4, x = TL_L + (TL_W - TL_L - TL_R) * i / 4.0;
		fprintf(f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%.3f s</text>\n", x, TL_H - TL_B + 18, t / 1e9);
	}
}

static void curve(FILE *f, const struct sn_prof_model *m, const struct scale *s, bool rss, const char *color)
{
	fprintf(f, "<polyline class=\"%s\" fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" points=\"",
		rss ? "rss" : "heap", color);
	bool peak_drawn = rss;
	for (size_t i = 0; i < m->npoints; i++) {
		const struct sn_prof_point *p = &m->points[i];
		if (!peak_drawn && p->ns >= m->peak_ns) {   /* the exact peak, in its place */
			fprintf(f, "%.1f,%.1f ", sx(s, m->peak_ns), sy(s, m->peak_bytes));
			peak_drawn = true;
		}
		if (rss && !p->rss)
			continue;
		fprintf(f, "%.1f,%.1f ", sx(s, p->ns), sy(s, rss ? p->rss : p->heap));
	}
	if (!peak_drawn)
		fprintf(f, "%.1f,%.1f ", sx(s, m->peak_ns), sy(s, m->peak_bytes));
	if (!rss)
		fprintf(f, "%.1f,%.1f", sx(s, m->duration_ns), sy(s, m->in_use_bytes));
	fprintf(f, "\"/>\n");
}

static void peak_mark(FILE *f, const struct sn_prof_model *m, const struct scale *s)
{
	char b[32], lab[96] = "";
	if (m->peak.n) {
		void *const *pcs;
		if (sn_stack_frames(m->peak.rows[0].id, &pcs)) {
			struct sn_frame fr;
			sn_frame_resolve((uintptr_t)pcs[0], &fr);
			snprintf(lab, sizeof(lab), "%s", sn_frame_label(&fr, b, sizeof(b)));
		}
	}
	double x = sx(s, m->peak_ns), y = sy(s, m->peak_bytes);
	fprintf(f, "<circle class=\"peak\" cx=\"%.1f\" cy=\"%.1f\" r=\"5\" fill=\"#c00\"/>\n", x, y);
	fprintf(f, "<text class=\"peak-label\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\" fill=\"#c00\">peak %s at %.3f s",
		x + (x > TL_W / 2 ? -8 : 8), y < TL_T + 20 ? y + 16 : y - 8, x > TL_W / 2 ? "end" : "start",
		mib((double)m->peak_bytes, b, sizeof(b)), (double)m->peak_ns / 1e9);
	if (lab[0]) {
		fputs(": ", f);
		svg_text(f, lab);
	}
	fputs("</text>\n", f);
}

void sn_timeline_svg(FILE *f, const struct sn_prof_model *m, bool standalone)
{
	struct scale s = { (double)(m->duration_ns ? m->duration_ns : 1), (double)m->peak_bytes };
	for (size_t i = 0; i < m->npoints; i++)
		if ((double)m->points[i].rss > s.y_max)
			s.y_max = (double)m->points[i].rss;
	if (s.y_max < 1)
		s.y_max = 1;
	s.y_max *= 1.05;
	if (standalone)
		fprintf(f, "<?xml version=\"1.0\" standalone=\"no\"?>\n");
	fprintf(f, "<svg class=\"timeline\" xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%d\" "
		   "height=\"%d\" viewBox=\"0 0 %d %d\" font-family=\"Verdana, sans-serif\" font-size=\"11\">\n",
		TL_W, TL_H, TL_W, TL_H);
	fprintf(f, "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"#fff\"/>\n", TL_W, TL_H);
	fprintf(f, "<text x=\"%d\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">Heap (requested bytes) and RSS over the run</text>\n",
		TL_W / 2);
	fprintf(f, "<text x=\"%d\" y=\"22\" fill=\"#1f5fbf\">&#9632; heap</text><text x=\"%d\" y=\"22\" fill=\"#999\">&#9632; RSS</text>\n",
		TL_W - 150, TL_W - 80);
	axes(f, &s);
	curve(f, m, &s, true, "#999");
	curve(f, m, &s, false, "#1f5fbf");
	peak_mark(f, m, &s);
	fprintf(f, "</svg>\n");
}

void sn_profile_timeline(FILE *f, const struct sn_prof_model *m)
{
	sn_timeline_svg(f, m, true);
}
