/*
 * probes.c - the semaphores of the USDT probes (probes.h): two bytes
 * each in the ".probes" section, where tracers expect them; a tracer
 * increments one while it is attached to its probe.
 */
#include "probes.h"

#ifdef SN_HAVE_PROBES
#define SN_DEFINE_SEMAPHORE(name) \
	__attribute__((section(".probes"), visibility("hidden"))) volatile unsigned short \
		slabnotify_##name##_semaphore;
SN_PROBES(SN_DEFINE_SEMAPHORE)
#endif
