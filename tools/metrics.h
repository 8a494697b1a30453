/*
 * metrics.h - the figures of live stats pages in the Prometheus text
 * exposition format (stat --prometheus, the exporter), and sizes for
 * people.
 */
#ifndef SLABNOTIFY_METRICS_H
#define SLABNOTIFY_METRICS_H

#include <stdint.h>
#include <stdio.h>

#include "../src/consumers/statpage.h"

/* Every metric family once, with HELP and TYPE, over all @n pages. */
void metrics_write(FILE *f, const struct sn_page *pages, size_t n);

/* "123456789 (117.7 MiB)", as the end-of-run report writes sizes. */
void fmt_size(char *out, size_t cap, uint64_t v);

#endif /* SLABNOTIFY_METRICS_H */
