/*
 * json.h - the one JSON string writer of the reports and of `slabnotify stat`.
 * Header-only: both files are public-API consumers with no shared .c.
 */
#ifndef SLABNOTIFY_JSON_H
#define SLABNOTIFY_JSON_H

#include <stdio.h>

/* Write @s as a JSON string: quotes and backslashes escaped, control
 * characters as \uXXXX. */
static inline void json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch < 0x20)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

#endif /* SLABNOTIFY_JSON_H */
