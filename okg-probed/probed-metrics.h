/* The probe plugin's figures in the Prometheus text format: what GetMetrics() returns on the
 * bus and what the health port's /metrics serves for HTTPMetric endpoints. Pure: no I/O. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "probed-config.h"

typedef struct ProbeMetricsEndpoint {
        const ProbeEndpoint *config;
        const char *state;            /* the applied state, NULL when none yet */
        uint64_t probes, failures, state_changes;
        bool failing;
} ProbeMetricsEndpoint;

/* Escapes a Prometheus label value (backslash, double quote, newline). */
char *probe_metrics_escape(const char *s);
int probe_metrics_render(const ProbeMetricsEndpoint *eps, size_t n, char **ret);
