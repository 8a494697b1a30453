/*
 * options.h - parsing of the values that `slabnotify run` takes and the
 * SLABNOTIFY_* environment variables carry, shared by the command and
 * the malloc drop-in so that both accept exactly the same syntax.
 * Header-only and allocation-free: the drop-in parses before it can
 * allocate.
 */
#ifndef SLABNOTIFY_OPTIONS_H
#define SLABNOTIFY_OPTIONS_H

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

/* The environment the drop-in reads; `slabnotify run` sets them. */
#define SN_ENV_MAX        "SLABNOTIFY_MAX"        /* SIZE: hard limit of the root group */
#define SN_ENV_HIGH       "SLABNOTIFY_HIGH"       /* SIZE: soft limit */
#define SN_ENV_FAIL_PROB  "SLABNOTIFY_FAIL_PROBABILITY" /* percent 0..100 */
#define SN_ENV_FAIL_INT   "SLABNOTIFY_FAIL_INTERVAL"    /* N */
#define SN_ENV_FAIL_TIMES "SLABNOTIFY_FAIL_TIMES"       /* N, -1 unlimited */
#define SN_ENV_FAIL_SPACE "SLABNOTIFY_FAIL_SPACE"       /* SIZE */
#define SN_ENV_FAIL_MIN   "SLABNOTIFY_FAIL_MIN_SIZE"    /* SIZE */
#define SN_ENV_FAIL_CACHE "SLABNOTIFY_FAIL_CACHE"       /* cache name prefix */
#define SN_ENV_FAIL_STACK "SLABNOTIFY_FAIL_STACK"       /* glob: a function on the stack */
#define SN_ENV_SEED       "SLABNOTIFY_SEED"       /* unsigned 64-bit */
#define SN_ENV_LEAKS      "SLABNOTIFY_LEAKS"      /* sample 1-in-N, 1: all */
#define SN_ENV_PROFILE    "SLABNOTIFY_PROFILE"    /* SIZE: sample per SIZE bytes; 0 or 1: every allocation */
#define SN_ENV_TOP        "SLABNOTIFY_TOP"        /* N: rows per section */
#define SN_ENV_SUPPRESS   "SLABNOTIFY_SUPPRESSIONS"          /* FILE of leak:PATTERN lines */
#define SN_ENV_NO_DEF_SUPPRESS "SLABNOTIFY_NO_DEFAULT_SUPPRESSIONS" /* 1: none built in */
#define SN_ENV_FOLDED     "SLABNOTIFY_FOLDED"     /* FILE: folded stacks, %p is the pid */
#define SN_ENV_FLAMEGRAPH "SLABNOTIFY_FLAMEGRAPH" /* FILE.svg */
#define SN_ENV_TIMELINE   "SLABNOTIFY_TIMELINE"   /* FILE.svg */
#define SN_ENV_HTML       "SLABNOTIFY_HTML"       /* FILE.html */
#define SN_ENV_STATS      "SLABNOTIFY_STATS"      /* 1: statistics report */
#define SN_ENV_REPORT     "SLABNOTIFY_REPORT"     /* FILE, %p is the pid */
#define SN_ENV_JSON       "SLABNOTIFY_JSON"       /* 1: JSON report */
#define SN_ENV_STATPAGE   "SLABNOTIFY_STATPAGE"   /* 0: no live stats page (default 1) */

#define SN_ENV_DEBUG      "SLABNOTIFY_DEBUG"      /* letters of FZPU; empty: all */
#define SN_ENV_DEBUG_CONTINUE "SLABNOTIFY_DEBUG_CONTINUE" /* 1: report and go on */
#define SN_ENV_GUARD      "SLABNOTIFY_GUARD"      /* N: guard 1 in N allocations */
#define SN_ENV_GUARD_MAX  "SLABNOTIFY_GUARD_MAX"  /* guarded objects live at once */
#define SN_ENV_GUARD_PER_SEC "SLABNOTIFY_GUARD_PER_SEC" /* guarded objects a second, 0: no budget */
#define SN_ENV_LAUNCHER   "SLABNOTIFY_LAUNCHER"   /* "pid:fd": the launcher waits; the command says it reported */

/* "4096", "64K", "64M", "1.5G", "2T", optional "B"/"iB" (binary units).
 * Returns false on anything else, or on overflow. */
static inline bool sn_parse_size(const char *s, size_t *out)
{
	if (!s || !*s)
		return false;
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || !(v >= 0) || isinf(v))
		return false;
	double mult = 1;
	switch (*end) {
	case 'k': case 'K': mult = 1024.0; end++; break;
	case 'm': case 'M': mult = 1024.0 * 1024; end++; break;
	case 'g': case 'G': mult = 1024.0 * 1024 * 1024; end++; break;
	case 't': case 'T': mult = 1024.0 * 1024 * 1024 * 1024; end++; break;
	default: break;
	}
	if (mult > 1 && end[0] == 'i' && (end[1] == 'B' || end[1] == 'b'))
		end += 2;
	else if (*end == 'B' || *end == 'b')
		end++;
	if (*end)
		return false;
	double bytes = v * mult;
	if (bytes >= 18446744073709551615.0)
		return false;
	*out = (size_t)bytes;
	return true;
}

/* A decimal unsigned or signed integer, whole string. */
static inline bool sn_parse_long(const char *s, long min, long max, long *out)
{
	if (!s || !*s)
		return false;
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || *end || end == s || v < min || v > max)
		return false;
	*out = v;
	return true;
}

static inline bool sn_parse_u64(const char *s, uint64_t *out)
{
	if (!s || !*s || *s == '-')
		return false;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);
	if (errno || *end || end == s)
		return false;
	*out = v;
	return true;
}

/* A percentage 0..100 (a trailing '%' is allowed). */
static inline bool sn_parse_percent(const char *s, double *out)
{
	if (!s || !*s)
		return false;
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (*end == '%')
		end++;
	if (errno || *end || end == s || !(v >= 0 && v <= 100))
		return false;
	*out = v;
	return true;
}

/* slub_debug's letters: F (consistency checks), Z (red zones), P
 * (poisoning), U (user tracking), any case, any order; "" means all. */
#define SN_DEBUG_F 0x00000100U  /* SLAB_CONSISTENCY_CHECKS */
#define SN_DEBUG_Z 0x00000400U  /* SLAB_RED_ZONE */
#define SN_DEBUG_P 0x00000800U  /* SLAB_POISON */
#define SN_DEBUG_U 0x00010000U  /* SLAB_STORE_USER */
static inline bool sn_parse_debug_letters(const char *s, unsigned *out)
{
	unsigned f = 0;
	if (!s)
		return false;
	if (!*s)
		f = SN_DEBUG_F | SN_DEBUG_Z | SN_DEBUG_P | SN_DEBUG_U;
	for (; *s; s++)
		switch (*s) {
		case 'F': case 'f': f |= SN_DEBUG_F; break;
		case 'Z': case 'z': f |= SN_DEBUG_Z; break;
		case 'P': case 'p': f |= SN_DEBUG_P; break;
		case 'U': case 'u': f |= SN_DEBUG_U; break;
		default: return false;
		}
	*out = f;
	return true;
}

#endif /* SLABNOTIFY_OPTIONS_H */
