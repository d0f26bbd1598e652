/* Prometheus text exposition of the probe state; see probed-metrics.h and docs/metrics.md. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "okg-metrics.h"
#include "probed-metrics.h"

char *probe_metrics_escape(const char *s) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);

        if (!f)
                return NULL;
        okg_metrics_escape(f, s);
        if (fclose(f) != 0) {
                free(buf);
                return NULL;
        }
        return buf;
}

typedef enum Column {
        COL_PROBES,
        COL_FAILURES,
        COL_STATE_CHANGES,
        COL_FAILING,
        COL_STATE,
        _COL_MAX,
} Column;

static const struct {
        const char *name, *type, *help;
} columns[_COL_MAX] = {
        [COL_PROBES] = { "okg_sidecar_probe_probes_total", "counter", "Probes made." },
        [COL_FAILURES] = { "okg_sidecar_probe_failures_total", "counter", "Probes that failed." },
        [COL_STATE_CHANGES] = { "okg_sidecar_probe_state_changes_total", "counter",
                                "Changes of the applied state." },
        [COL_FAILING] = { "okg_sidecar_probe_failing", "gauge",
                          "1 while failureThreshold consecutive failures stand." },
        [COL_STATE] = { "okg_sidecar_probe_state", "gauge",
                        "1 for the endpoint's applied state (absent before the first one)." },
};

static bool is_metric(const ProbeMetricsEndpoint *e) {
        return e->config->storage_type == PROBE_STORAGE_HTTP_METRIC && e->config->metric_name;
}

int probe_metrics_render(const ProbeMetricsEndpoint *eps, size_t n, char **ret) {
        OkgMetrics m;
        int r;

        r = okg_metrics_begin(&m);
        if (r < 0)
                return r;

        for (Column c = 0; c < _COL_MAX; c++) {
                okg_metrics_family(&m, columns[c].name, columns[c].type, columns[c].help);
                for (size_t i = 0; i < n; i++) {
                        char index[32];
                        snprintf(index, sizeof index, "%zu", i);
                        const char *labels[] = {
                                "endpoint", index, "url", eps[i].config->url,
                                "state", eps[i].state, NULL,
                        };
                        uint64_t v = c == COL_PROBES            ? eps[i].probes
                                     : c == COL_FAILURES        ? eps[i].failures
                                     : c == COL_STATE_CHANGES   ? eps[i].state_changes
                                     : c == COL_FAILING         ? (uint64_t) eps[i].failing
                                                                : 1;
                        if (c == COL_STATE && !eps[i].state)
                                continue;
                        if (c != COL_STATE)
                                labels[4] = NULL;   /* no state label */
                        okg_metrics_sample(&m, columns[c].name, labels, (double) v);
                }
        }

        /* HTTPMetric endpoints: the state under the name the config gives, one family per
         * name even when endpoints share it. */
        for (size_t i = 0; i < n; i++) {
                const char *name = eps[i].config->metric_name;
                bool seen = false;

                if (!is_metric(&eps[i]))
                        continue;
                for (size_t j = 0; j < i && !seen; j++)
                        seen = is_metric(&eps[j]) && streq(eps[j].config->metric_name, name);
                if (seen)
                        continue;
                okg_metrics_family(&m, name, "gauge",
                                   "State reported by the game's probe endpoint (HTTPMetric).");
                for (size_t j = i; j < n; j++) {
                        char index[32];
                        if (!is_metric(&eps[j]) || !streq(eps[j].config->metric_name, name) ||
                            !eps[j].state)
                                continue;
                        snprintf(index, sizeof index, "%zu", j);
                        const char *labels[] = {
                                "endpoint", index, "url", eps[j].config->url,
                                "state", eps[j].state, NULL,
                        };
                        okg_metrics_sample(&m, name, labels, 1);
                }
        }

        return okg_metrics_end(&m, ret);
}
