/*
 * profile_svg.h - what the SVG views (profile_flame.c,
 * profile_timeline.c) give the HTML page (profile_html.c): the same
 * drawings, standalone documents or inline in a page.
 */
#ifndef SLABNOTIFY_PROFILE_SVG_H
#define SLABNOTIFY_PROFILE_SVG_H

#include <stdio.h>

#include "profile.h"

/* @s as XML text: '<', '>', '&' and quotes escaped. */
static inline void svg_text(FILE *f, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '<': fputs("&lt;", f); break;
		case '>': fputs("&gt;", f); break;
		case '&': fputs("&amp;", f); break;
		case '"': fputs("&quot;", f); break;
		case '\'': fputs("&#39;", f); break;
		default:
			if ((unsigned char)*s >= 0x20)
				fputc(*s, f);
		}
	}
}

/* @id: the svg element's id; @standalone: with the XML declaration. */
SN_CONSUMER_API void sn_flame_svg(FILE *f, const struct sn_prof_section *s, const char *title, const char *id,
				  bool standalone);
SN_CONSUMER_API void sn_timeline_svg(FILE *f, const struct sn_prof_model *m, bool standalone);

#endif /* SLABNOTIFY_PROFILE_SVG_H */
