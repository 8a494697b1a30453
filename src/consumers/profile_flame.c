/*
 * profile_flame.c - a section as an interactive flame graph (a view of
 * the model): a self-contained SVG, the outermost frame at the bottom,
 * each frame as wide as the bytes below it; click a frame to zoom to
 * it, "Reset zoom" to go back, "Search" to highlight frames matching a
 * regular expression; hover for the frame's bytes.
 *
 * The stacks are merged into a tree by frame label, children in the
 * order the section gives (largest stack first). The script avoids the
 * characters XML reserves ('<' and '&'), so the same text is valid in a
 * standalone SVG and inside an HTML page (profile_html.c).
 */
#define _GNU_SOURCE
#include "profile.h"
#include "profile_svg.h"

#include <inttypes.h>
#include <string.h>
#include <sys/mman.h>

#define FG_WIDTH 1200
#define FG_ROW   16
#define FG_TOP   44
#define LABEL    96

struct node {
	char label[LABEL];
	uint64_t value;
	int32_t child, sibling;   /* -1: none */
};

struct tree {
	struct node *n;
	size_t used, cap, bytes;
	unsigned depth;
};

static int32_t node_new(struct tree *t, const char *label)
{
	if (t->used == t->cap)
		return -1;
	struct node *x = &t->n[t->used];
	snprintf(x->label, sizeof(x->label), "%s", label);
	x->value = 0;
	x->child = x->sibling = -1;
	return (int32_t)t->used++;
}

/* The child of @parent labelled @label, made if new. */
static int32_t child_of(struct tree *t, int32_t parent, const char *label)
{
	int32_t *link = &t->n[parent].child;
	for (; *link >= 0; link = &t->n[*link].sibling)
		if (!strcmp(t->n[*link].label, label))
			return *link;
	int32_t c = node_new(t, label);
	if (c >= 0)
		*link = c;
	return c;
}

static void tree_add(struct tree *t, const struct sn_prof_row *r)
{
	void *const *pcs;
	uint32_t n = sn_stack_frames(r->id, &pcs);
	int32_t at = 0;
	t->n[0].value += r->bytes;
	for (uint32_t j = n; j-- > 0 && at >= 0;) {
		struct sn_frame fr;
		char buf[LABEL];
		sn_frame_resolve((uintptr_t)pcs[j], &fr);
		at = child_of(t, at, sn_frame_label(&fr, buf, sizeof(buf)));
		if (at >= 0)
			t->n[at].value += r->bytes;
		if (n - j > t->depth)
			t->depth = n - j;
	}
}

static bool tree_build(struct tree *t, const struct sn_prof_section *s)
{
	size_t frames = 1;
	for (size_t i = 0; i < s->n; i++) {
		void *const *pcs;
		frames += sn_stack_frames(s->rows[i].id, &pcs);
	}
	t->bytes = (frames * sizeof(struct node) + 4095) & ~(size_t)4095;
	void *m = mmap(NULL, t->bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return false;
	t->n = m;
	t->cap = frames;
	t->used = 0;
	t->depth = 0;
	node_new(t, "all");
	for (size_t i = 0; i < s->n; i++)
		tree_add(t, &s->rows[i]);
	return true;
}

static uint32_t hash_label(const char *s)
{
	uint32_t h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

struct draw {
	FILE *f;
	struct tree *t;
	uint64_t total;
	unsigned height;
};

/* The label cut to the frame's width (7 px a character), as the script
 * does: the picture reads without scripts too (as an <img>). */
static void fit_label(FILE *f, const char *label, double pw)
{
	int n = (int)((pw - 6) / 7);
	if (n < 3)
		return;
	char buf[LABEL];
	size_t len = strlen(label);
	if (len > (size_t)n)
		snprintf(buf, sizeof(buf), "%.*s..", n - 2, label);
	else
		snprintf(buf, sizeof(buf), "%s", label);
	svg_text(f, buf);
}

static void draw_node(struct draw *d, int32_t i, uint64_t offset, unsigned depth)
{
	const struct node *x = &d->t->n[i];
	double fx = (double)offset / (double)d->total, fw = (double)x->value / (double)d->total;
	if (fw * FG_WIDTH >= 0.1) {
		uint32_t h = hash_label(x->label);
		double px = fx * FG_WIDTH, pw = fw * FG_WIDTH;
		unsigned y = d->height - FG_ROW * (depth + 1) - 4;
		fprintf(d->f, "<g class=\"fr\" data-x=\"%.9f\" data-w=\"%.9f\" data-d=\"%u\" data-l=\"", fx, fw, depth);
		svg_text(d->f, x->label);
		fprintf(d->f, "\"><title>");
		svg_text(d->f, x->label);
		fprintf(d->f, " (%" PRIu64 " bytes, %.2f%%)</title><rect x=\"%.2f\" y=\"%u\" width=\"%.2f\" height=\"%u\" "
			      "fill=\"rgb(%u,%u,%u)\" rx=\"2\"/><text x=\"%.2f\" y=\"%u\">",
			x->value, 100.0 * fw, px, y, pw, FG_ROW - 1, 205 + h % 50, (h >> 8) % 200, (h >> 16) % 55,
			px + 3, y + 11);
		fit_label(d->f, x->label, pw);   /* the script fits them again on zoom */
		fputs("</text></g>\n", d->f);
	}
	uint64_t o = offset;
	for (int32_t c = x->child; c >= 0; c = d->t->n[c].sibling) {
		draw_node(d, c, o, depth + 1);
		o += d->t->n[c].value;
	}
}

/* The behaviour: zoom, reset, search, labels fitted to the widths.
 * No '<' or '&' in it (see above). */
static const char fg_script[] =
	"(function (svg) {\n"
	"  var W = %d, all = svg.querySelectorAll('g.fr'), info = svg.querySelector('.fg-info');\n"
	"  function fit(g, px, pw) {\n"
	"    var t = g.querySelector('text'), l = g.getAttribute('data-l'), n = Math.floor((pw - 6) / 7);\n"
	"    t.setAttribute('x', px + 3);\n"
	"    if (3 > n) { t.textContent = ''; return; }\n"
	"    t.textContent = l.length > n ? l.substring(0, n - 2) + '..' : l;\n"
	"  }\n"
	"  function zoom(x0, w0, d0) {\n"
	"    var e = 1e-9;\n"
	"    all.forEach(function (g) {\n"
	"      var x = +g.getAttribute('data-x'), w = +g.getAttribute('data-w'), d = +g.getAttribute('data-d');\n"
	"      var r = g.querySelector('rect'), inside = x + e >= x0 ? x0 + w0 + e >= x + w : false;\n"
	"      var above = x0 + e >= x ? x + w + e >= x0 + w0 : false;\n"
	"      if (d >= d0 ? inside : false) {\n"
	"        var px = (x - x0) / w0 * W, pw = w / w0 * W;\n"
	"        r.setAttribute('x', px); r.setAttribute('width', pw); g.style.display = '';\n"
	"        g.style.opacity = 1; fit(g, px, pw);\n"
	"      } else if (d0 > d ? above : false) {\n"
	"        r.setAttribute('x', 0); r.setAttribute('width', W); g.style.display = '';\n"
	"        g.style.opacity = 0.6; fit(g, 0, W);\n"
	"      } else {\n"
	"        g.style.display = 'none';\n"
	"      }\n"
	"    });\n"
	"  }\n"
	"  all.forEach(function (g) {\n"
	"    g.querySelector('rect').setAttribute('data-c', g.querySelector('rect').getAttribute('fill'));\n"
	"    g.style.cursor = 'pointer';\n"
	"    g.addEventListener('click', function () {\n"
	"      zoom(+g.getAttribute('data-x'), +g.getAttribute('data-w'), +g.getAttribute('data-d'));\n"
	"      info.textContent = 'zoomed to ' + g.getAttribute('data-l');\n"
	"    });\n"
	"  });\n"
	"  svg.querySelector('.fg-reset').addEventListener('click', function () { zoom(0, 1, 0); info.textContent = ''; });\n"
	"  svg.querySelector('.fg-search').addEventListener('click', function () {\n"
	"    var q = window.prompt('Search frames (regular expression):', '');\n"
	"    if (q === null) return;\n"
	"    svg.fgSearch(q);\n"
	"  });\n"
	"  svg.fgSearch = function (q) {\n"
	"    var re = new RegExp(q), hits = 0;\n"
	"    all.forEach(function (g) {\n"
	"      var r = g.querySelector('rect'), m = q !== '' ? re.test(g.getAttribute('data-l')) : false;\n"
	"      r.setAttribute('fill', m ? 'rgb(230,0,230)' : r.getAttribute('data-c'));\n"
	"      if (m) hits++;\n"
	"    });\n"
	"    info.textContent = q === '' ? '' : hits + ' frames match ' + q;\n"
	"    return hits;\n"
	"  };\n"
	"  zoom(0, 1, 0);\n"
	"  /* #search=RE and #zoom=LABEL in the address: for links and tests */\n"
	"  var h = decodeURIComponent(window.location.hash), i = h.indexOf('search='), z = h.indexOf('zoom=');\n"
	"  if (i >= 0) svg.fgSearch(h.substring(i + 7).split(',')[0]);\n"
	"  if (z >= 0) all.forEach(function (g) {\n"
	"    if (g.getAttribute('data-l') === h.substring(z + 5).split(',')[0]) g.dispatchEvent(new Event('click'));\n"
	"  });\n"
	"})(document.getElementById('%s'));\n";

void sn_flame_svg(FILE *f, const struct sn_prof_section *s, const char *title, const char *id, bool standalone)
{
	struct tree t;
	if (!tree_build(&t, s)) {
		fprintf(f, "<!-- slabnotify: no memory for the flame graph -->\n");
		return;
	}
	unsigned height = FG_TOP + FG_ROW * (t.depth + 1) + 8;
	if (standalone)
		fprintf(f, "<?xml version=\"1.0\" standalone=\"no\"?>\n");
	fprintf(f, "<svg id=\"%s\" class=\"flamegraph\" xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" "
		   "width=\"%d\" height=\"%u\" viewBox=\"0 0 %d %u\" font-family=\"Verdana, sans-serif\" font-size=\"12\">\n",
		id, FG_WIDTH, height, FG_WIDTH, height);
	fprintf(f, "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%u\" fill=\"#f8f4ec\"/>\n", FG_WIDTH, height);
	fprintf(f, "<text x=\"%d\" y=\"20\" text-anchor=\"middle\" font-size=\"16\">", FG_WIDTH / 2);
	svg_text(f, title);
	fprintf(f, "</text>\n<text class=\"fg-reset\" x=\"10\" y=\"20\" style=\"cursor:pointer\">Reset zoom</text>\n"
		   "<text class=\"fg-search\" x=\"%d\" y=\"20\" text-anchor=\"end\" style=\"cursor:pointer\">Search</text>\n"
		   "<text class=\"fg-info\" x=\"10\" y=\"38\" fill=\"#555\"></text>\n",
		FG_WIDTH - 10);
	if (t.n[0].value) {
		struct draw d = { f, &t, t.n[0].value, height };
		draw_node(&d, 0, 0, 0);
	} else {
		fprintf(f, "<text x=\"%d\" y=\"%u\" text-anchor=\"middle\">no stacks</text>\n", FG_WIDTH / 2, height - 12);
	}
	fprintf(f, "<script type=\"text/javascript\">\n");
	fprintf(f, fg_script, FG_WIDTH, id);
	fprintf(f, "</script>\n</svg>\n");
	munmap(t.n, t.bytes);
}

void sn_profile_flamegraph(FILE *f, const struct sn_prof_section *s, const char *title)
{
	sn_flame_svg(f, s, title, "flamegraph", true);
}
