/* Building the Prometheus text exposition format (version 0.0.4): each daemon renders its own
 * families for its GetMetrics() bus method, and okg-sidecard serves them all on /metrics. Pure:
 * writes into a memory buffer. */
#pragma once

#include <stdint.h>
#include <stdio.h>

typedef struct OkgMetrics {
        FILE *f;
        char *buf;
        size_t len;
} OkgMetrics;

int okg_metrics_begin(OkgMetrics *m);
/* "# HELP name help" and "# TYPE name type"; type is counter, gauge, ... */
void okg_metrics_family(OkgMetrics *m, const char *name, const char *type, const char *help);
/* One sample: labels is NULL or a NULL-terminated list of name, value, name, value, ... */
void okg_metrics_sample(OkgMetrics *m, const char *name, const char *const *labels, double value);
/* Ends the text and hands it over (NUL-terminated). */
int okg_metrics_end(OkgMetrics *m, char **ret);
/* Writes a label value escaped (backslash, double quote, newline). */
void okg_metrics_escape(FILE *f, const char *s);
