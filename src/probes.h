/*
 * probes.h - slabnotify's USDT probes (provider "slabnotify"), for
 * bpftrace, perf, SystemTap and gdb (docs/probes.md lists them).
 *
 * They sit on slow paths and events only, never on the allocation or
 * free fast paths: a probe is a nop instruction and a note in the ELF
 * file, so it costs nothing when no tracer is attached. A probe whose
 * arguments cost something to compute has a semaphore, set by the
 * tracer while it is attached: SN_PROBE_ACTIVE(name) tests it, and the
 * arguments are computed only then.
 */
#ifndef SLABNOTIFY_PROBES_H
#define SLABNOTIFY_PROBES_H

#if defined(__has_include)
#if __has_include(<sys/sdt.h>) && !defined(SLABNOTIFY_NO_PROBES)
#define SN_HAVE_PROBES 1
#endif
#endif

#ifdef SN_HAVE_PROBES
#define _SDT_HAS_SEMAPHORES 1
#include <sys/sdt.h>

/* Every probe has a semaphore (sdt.h then names one in every note);
 * they are defined in probes.c. */
#define SN_PROBES(X) X(slab_alloc) X(slab_free) X(veto) X(memcg_charge_fail) X(memcg_high) \
	X(fault_injected) X(large_alloc)
#define SN_PROBE_SEMAPHORE(name) \
	__attribute__((visibility("hidden"))) extern volatile unsigned short slabnotify_##name##_semaphore;
SN_PROBES(SN_PROBE_SEMAPHORE)

#define SN_PROBE_ACTIVE(name) __builtin_expect(slabnotify_##name##_semaphore, 0)
#define SN_PROBE1(name, a) STAP_PROBE1(slabnotify, name, a)
#define SN_PROBE2(name, a, b) STAP_PROBE2(slabnotify, name, a, b)
#define SN_PROBE3(name, a, b, c) STAP_PROBE3(slabnotify, name, a, b, c)
#define SN_PROBE4(name, a, b, c, d) STAP_PROBE4(slabnotify, name, a, b, c, d)
#else
#define SN_PROBE_ACTIVE(name) 0
#define SN_PROBE1(name, a) ((void)0)
#define SN_PROBE2(name, a, b) ((void)0)
#define SN_PROBE3(name, a, b, c) ((void)0)
#define SN_PROBE4(name, a, b, c, d) ((void)0)
#endif

#endif /* SLABNOTIFY_PROBES_H */
