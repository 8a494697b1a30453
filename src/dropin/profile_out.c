/*
 * profile_out.c - the drop-in's heap profile: --leaks and --profile
 * (SLABNOTIFY_LEAKS, SLABNOTIFY_PROFILE) started from the constructor,
 * and at exit the sections in the report plus the pictures asked for
 * (--folded, --flamegraph, --timeline, --html), every one a view of the
 * same model (consumers/profile.h).
 *
 * The pictures' paths are absolute (the launcher makes them so; a
 * variable set by hand is made absolute at start, as --report is); %p is
 * the pid, so that each process of a tree keeps its own. A file that
 * cannot be written gets one line in the report, and nothing else
 * changes.
 */
#define _GNU_SOURCE
#include "dropin.h"
#include "options.h"
#include "consumers/profile.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { OUT_FOLDED, OUT_FLAME, OUT_TIMELINE, OUT_HTML, OUT_N };

static const char *const out_env[OUT_N] = {
	SN_ENV_FOLDED, SN_ENV_FLAMEGRAPH, SN_ENV_TIMELINE, SN_ENV_HTML,
};
static const char *const out_what[OUT_N] = {
	"the folded stacks", "the flame graph", "the timeline", "the HTML report",
};

static struct {
	bool on;
	unsigned top;
	char out[OUT_N][1024];
} P;

static void warn(const char *a, const char *b, const char *c)
{
	char buf[512];
	int n = snprintf(buf, sizeof(buf), "slabnotify: %s%s%s\n", a, b, c);
	if (n > 0) {
		ssize_t r = write(STDERR_FILENO, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
		(void)r;
	}
}

static void path_absolute(char *dst, size_t cap, const char *v)
{
	dst[0] = '\0';
	if (v[0] == '/') {
		snprintf(dst, cap, "%s", v);
		return;
	}
	char cwd[512];
	if (getcwd(cwd, sizeof(cwd)))
		snprintf(dst, cap, "%s/%s", cwd, v);
}

static void configure_outputs(void)
{
	for (int i = 0; i < OUT_N; i++) {
		const char *v = getenv(out_env[i]);
		if (v && *v)
			path_absolute(P.out[i], sizeof(P.out[i]), v);
	}
	long top;
	const char *v = getenv(SN_ENV_TOP);
	if (v && sn_parse_long(v, 1, 1000000, &top))
		P.top = (unsigned)top;
	else if (v)
		warn("ignoring " SN_ENV_TOP "=", v, ": not a positive number");
	sn_suppress_defaults(!getenv(SN_ENV_NO_DEF_SUPPRESS) || !strcmp(getenv(SN_ENV_NO_DEF_SUPPRESS), "0"));
	if ((v = getenv(SN_ENV_SUPPRESS)) && *v && !sn_suppress_load(v))
		warn("cannot read the suppressions in ", v, errno == ENOENT ? ": no such file" : ": unreadable");
}

void profile_configure(void)
{
	struct sn_prof_config c = { 0 };
	const char *prof = getenv(SN_ENV_PROFILE);
	long every = 0;
	size_t bytes = 0;
	if (prof && *prof && strcmp(prof, "0") != 0) {
		if (!sn_parse_size(prof, &bytes)) {
			warn("ignoring " SN_ENV_PROFILE "=", prof, ": not a size (like 1, 512K)");
			return;
		}
		c.mode = SN_PROF_FULL;
		c.sample_bytes = bytes > 1 ? bytes : 0;
	} else if (getenv(SN_ENV_LEAKS)) {
		const char *v = getenv(SN_ENV_LEAKS);
		if (!sn_parse_long(v, 0, UINT32_MAX, &every)) {
			warn("ignoring " SN_ENV_LEAKS "=", v, ": not a valid number");
			return;
		}
		if (!every)
			return;
		c.mode = SN_PROF_LEAKS;
		c.every = (unsigned)every;
	} else {
		return;
	}
	configure_outputs();
	if (sn_profile_start(&c) != 0)
		return;
	P.on = true;
	sn_cfg.leaks = sn_cfg.report_wanted = true;
	sn_cfg.leak_sample = c.every;
}

bool profile_active(void)
{
	return P.on;
}

/* @src with %p replaced by the pid. */
static void expand(char *out, size_t cap, const char *src)
{
	size_t o = 0;
	for (const char *s = src; *s && o + 24 < cap; s++) {
		if (s[0] == '%' && s[1] == 'p') {
			o += (size_t)snprintf(out + o, cap - o, "%d", (int)getpid());
			s++;
		} else {
			out[o++] = *s;
		}
	}
	out[o] = '\0';
}

static void write_view(FILE *report, int which, const struct sn_prof_model *m)
{
	char path[1100];
	expand(path, sizeof(path), P.out[which]);
	FILE *f = fopen(path, "w");
	if (!f) {
		fprintf(report, "slabnotify: cannot write %s to %s: %s\n", out_what[which], path, strerror(errno));
		return;
	}
	const char *title = sn_cfg.cmdline[0] ? sn_cfg.cmdline : "?";
	const struct sn_prof_section *main = sn_profile_main_section(m);
	switch (which) {
	case OUT_FOLDED: sn_profile_folded(f, main); break;
	case OUT_FLAME:  sn_profile_flamegraph(f, main, m->mode == SN_PROF_FULL ? "Peak consumers" : "Leaks"); break;
	case OUT_TIMELINE: sn_profile_timeline(f, m); break;
	case OUT_HTML:   sn_profile_html(f, m, title); break;
	}
	if (fclose(f) != 0)
		fprintf(report, "slabnotify: cannot write %s to %s: %s\n", out_what[which], path, strerror(errno));
}

void profile_report(FILE *f, bool json)
{
	struct sn_prof_model m;
	if (!sn_profile_model(&m, P.top)) {
		if (json)
			fputs("\"leaks\":null", f);
		return;
	}
	if (json)
		sn_profile_json(f, &m);
	else
		sn_profile_text(f, &m);
	for (int i = 0; i < OUT_N; i++)
		if (P.out[i][0])
			write_view(json ? stderr : f, i, &m);
	sn_profile_model_free(&m);
}
