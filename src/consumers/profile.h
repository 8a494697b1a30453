/*
 * profile.h - the heap profile: one notifier's accounting (profile.c),
 * one in-memory model of it (profile_model.c), and the views of that
 * model (profile_text.c, profile_json.c, profile_folded.c,
 * profile_svg.c, profile_html.c). The drop-in's --leaks and --profile
 * are this; the library's slab_leak_* API is leak.c.
 *
 * Every figure in bytes is in requested bytes (what the program asked
 * for); the footprint (with the size classes' rounding) is kept beside
 * it where it is known.
 */
#ifndef SLABNOTIFY_PROFILE_H
#define SLABNOTIFY_PROFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "stack.h"

enum sn_prof_mode {
	SN_PROF_LEAKS = 1,   /* live objects by stack only: the cheap subset */
	SN_PROF_FULL,        /* peak consumers, hot spots, temporaries, leaks, timeline */
};

struct sn_prof_config {
	enum sn_prof_mode mode;
	unsigned every;       /* LEAKS: record 1 in @every allocations (1: all) */
	size_t sample_bytes;  /* FULL: one sample per this many bytes on average; 0: all */
};

/* Start recording (outside any handler). 0, or a negative errno. */
SN_CONSUMER_API int sn_profile_start(const struct sn_prof_config *cfg);

/* ------------------------------------------------------------------ */
/* The model: a snapshot of the accounting, for the renderers         */
/* ------------------------------------------------------------------ */

struct sn_prof_row {
	sn_stack_id id;
	uint64_t bytes;       /* requested */
	uint64_t blocks;
	uint64_t calls;       /* hot spots: allocations; temporary: temporary ones */
	uint64_t footprint;   /* leaks: bytes with the classes' rounding */
};

struct sn_prof_point {
	uint64_t ns;          /* since the start */
	uint64_t heap;        /* requested bytes live */
	uint64_t rss;         /* resident bytes, 0 if unknown */
};

struct sn_prof_section {
	struct sn_prof_row *rows;   /* every stack of the section, largest first */
	size_t n;
};

struct sn_prof_model {
	enum sn_prof_mode mode;
	unsigned every;
	size_t sample_bytes;
	unsigned top;               /* rows shown per section */
	/* the summary */
	uint64_t allocations, frees, bytes_allocated;
	uint64_t peak_bytes, peak_ns, peak_rss_bytes;
	uint64_t in_use_bytes, in_use_blocks, duration_ns;
	uint64_t temporary;         /* temporary allocations in all */
	uint64_t leaked_bytes, leaked_blocks, leaked_footprint;
	uint64_t suppressed_bytes, suppressed_blocks;
	struct sn_prof_section peak, hot, temp, leaks;
	struct sn_prof_point *points;
	size_t npoints;
	void *mem_;                 /* one mapping for all of it */
	size_t mem_bytes_;
};

/* Suppressions (suppress.c): LeakSanitizer's "leak:PATTERN" lines. */
SN_CONSUMER_API void sn_suppress_defaults(bool on);
/* Add the file's patterns; false (with errno) if it cannot be read. */
SN_CONSUMER_API bool sn_suppress_load(const char *path);
/* Does a suppression match a frame of @id (function, file or module)? */
SN_CONSUMER_API bool sn_suppress_match(sn_stack_id id);

/* The model of what was recorded so far, @top rows shown per section.
 * Leaks are the live stacks no suppression matches. False if there is
 * no profile or no memory. */
SN_CONSUMER_API bool sn_profile_model(struct sn_prof_model *m, unsigned top);
SN_CONSUMER_API void sn_profile_model_free(struct sn_prof_model *m);

/* Views. Each writes the sections the mode has. */
SN_CONSUMER_API void sn_profile_text(FILE *f, const struct sn_prof_model *m);
SN_CONSUMER_API void sn_profile_json(FILE *f, const struct sn_prof_model *m);
/* The stacks of @s, outermost frame first: "frame;frame;leaf BYTES". */
SN_CONSUMER_API void sn_profile_folded(FILE *f, const struct sn_prof_section *s);
/* An interactive flame graph of @s (zoom on click, search). */
SN_CONSUMER_API void sn_profile_flamegraph(FILE *f, const struct sn_prof_section *s, const char *title);
/* Heap and RSS over the run, the peak marked with its top consumer. */
SN_CONSUMER_API void sn_profile_timeline(FILE *f, const struct sn_prof_model *m);
/* One self-contained page: summary, timeline, flame graphs, tables. */
SN_CONSUMER_API void sn_profile_html(FILE *f, const struct sn_prof_model *m, const char *title);

/* The section a flame graph or folded file shows: the peak consumers
 * with --profile, the leaks with --leaks. */
static inline const struct sn_prof_section *sn_profile_main_section(const struct sn_prof_model *m)
{
	return m->mode == SN_PROF_FULL ? &m->peak : &m->leaks;
}

/* A frame's name for the views: the function, else module+offset. */
SN_CONSUMER_API const char *sn_frame_label(const struct sn_frame *fr, char *buf, size_t cap);

#endif /* SLABNOTIFY_PROFILE_H */
