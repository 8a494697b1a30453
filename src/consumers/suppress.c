/*
 * suppress.c - leak suppressions (profile.h), in LeakSanitizer's format:
 * "leak:PATTERN" lines, '#' comments; other kinds of line are ignored.
 * A pattern matches a frame's function, file or module name anywhere in
 * it ('*' matches any run of characters, a leading '^' or trailing '$'
 * anchors it); a stack is suppressed when a pattern matches any frame.
 *
 * By default the runtime's own allocations kept by design are left out:
 * glibc's stdio buffers, the dynamic loader's and the locale data,
 * libunwind's and liburcu's, and every stack that passes through
 * slabnotify's own code (found by address, not by name).
 *
 * No allocation: the file is read with read(2) into static storage, so
 * the drop-in may load it from its constructor.
 */
#define _GNU_SOURCE
#include "profile.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#define MAX_PATTERNS 256
#define PATTERN_LEN  256

static const char *const default_patterns[] = {
	"_IO_file_doallocate",   /* stdio buffers */
	"^_nl_",                 /* locale data */
	"ld-linux",              /* the dynamic loader */
	"^_dl_",                 /* the loader's work in libc (dlopen) */
	"libunwind.so",
	"liburcu",
	"libslabnotify",
};

static char patterns[MAX_PATTERNS][PATTERN_LEN];
static unsigned npatterns;
static bool defaults = true;

void sn_suppress_defaults(bool on)
{
	defaults = on;
}

static void pattern_add(const char *p, size_t len)
{
	while (len && (p[len - 1] == ' ' || p[len - 1] == '\t' || p[len - 1] == '\r'))
		len--;
	if (!len || len >= PATTERN_LEN || npatterns == MAX_PATTERNS)
		return;
	memcpy(patterns[npatterns], p, len);
	patterns[npatterns][len] = '\0';
	npatterns++;
}

static void parse_line(const char *line, size_t len)
{
	while (len && (*line == ' ' || *line == '\t')) {
		line++;
		len--;
	}
	if (len > 5 && !strncmp(line, "leak:", 5))
		pattern_add(line + 5, len - 5);
}

bool sn_suppress_load(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	static char buf[1 << 16];
	size_t n = 0;
	ssize_t r;
	while (n < sizeof(buf) - 1 && (r = read(fd, buf + n, sizeof(buf) - 1 - n)) != 0) {
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			close(fd);
			errno = e;
			return false;
		}
		n += (size_t)r;
	}
	close(fd);
	buf[n] = '\0';
	for (char *p = buf; *p;) {
		char *end = strchr(p, '\n');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		parse_line(p, len);
		p += len + (end != NULL);
	}
	return true;
}

/* '*' globbing, the whole of @s. */
static bool glob(const char *p, const char *s)
{
	for (; *p; p++, s++) {
		if (*p == '*') {
			while (p[1] == '*')
				p++;
			if (!p[1])
				return true;
			for (; *s; s++)
				if (glob(p + 1, s))
					return true;
			return false;
		}
		if (*s != *p)
			return false;
	}
	return !*s;
}

/* LeakSanitizer's match: anywhere in @s unless anchored. */
static bool pattern_match(const char *pat, const char *s)
{
	if (!s)
		return false;
	char g[PATTERN_LEN + 2];
	size_t len = strlen(pat), o = 0;
	if (pat[0] == '^') {
		pat++;
		len--;
	} else {
		g[o++] = '*';
	}
	bool end = len && pat[len - 1] == '$';
	memcpy(g + o, pat, len - end);
	o += len - end;
	if (!end)
		g[o++] = '*';
	g[o] = '\0';
	return glob(g, s);
}

static bool frame_match(const char *pat, const struct sn_frame *fr)
{
	return pattern_match(pat, fr->function) || pattern_match(pat, fr->file) ||
	       pattern_match(pat, fr->module);
}

static bool any_pattern(const struct sn_frame *fr)
{
	if (defaults)
		for (size_t i = 0; i < sizeof(default_patterns) / sizeof(*default_patterns); i++)
			if (frame_match(default_patterns[i], fr))
				return true;
	for (unsigned i = 0; i < npatterns; i++)
		if (frame_match(patterns[i], fr))
			return true;
	return false;
}

bool sn_suppress_match(sn_stack_id id)
{
	void *const *pcs;
	uint32_t n = sn_stack_frames(id, &pcs);
	for (uint32_t i = 0; i < n; i++) {
		if (defaults && sn_stack_pc_is_self((uintptr_t)pcs[i]))
			return true;
		struct sn_frame fr;
		sn_frame_resolve((uintptr_t)pcs[i], &fr);
		if (any_pattern(&fr))
			return true;
	}
	return false;
}
