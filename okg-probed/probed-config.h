/* The http_probe plugin's `config` section: parsed and validated without I/O. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "okg-yaml.h"

typedef struct KeyValue {
        char *key, *value;
} KeyValue;

typedef struct MarkerPolicy {
        char *state;                 /* state: the observed state, matched exactly */
        char *ops_state;             /* gameServerOpsState, may be NULL */
        KeyValue *labels;            /* labels: { k: v } */
        size_t n_labels;
        KeyValue *annotations;       /* annotations: { k: v } */
        size_t n_annotations;
} MarkerPolicy;

typedef enum ProbeStorageType {
        PROBE_STORAGE_IN_KUBE,
        PROBE_STORAGE_HTTP_METRIC,
} ProbeStorageType;

typedef struct ProbeEndpoint {
        char *url;                   /* required, http or https */
        char *method;                /* default GET */
        KeyValue *headers;           /* headers: { k: v } */
        size_t n_headers;
        char *body;                  /* body, optional */
        unsigned timeout_sec;        /* timeout, default 1 (kubelet's) */
        int expected_status;         /* expectedStatusCode, 0 = any 200-399 */
        char *json_path;             /* jsonPath: dotted path into a JSON body, optional */
        unsigned success_threshold;  /* default 1 */
        unsigned failure_threshold;  /* default 3 */
        char *failure_state;         /* failureState: state applied after failureThreshold, optional */
        ProbeStorageType storage_type;
        char *annotation_key;        /* storageConfig.inKube.annotationKey, optional */
        char *label_key;             /* storageConfig.inKube.labelKey, optional */
        MarkerPolicy *policies;      /* markerPolices (or markerPolicies) */
        size_t n_policies;
        char *metric_name;           /* storageConfig.httpMetric.metricName */
} ProbeEndpoint;

typedef struct ProbeConfig {
        ProbeEndpoint *endpoints;
        size_t n_endpoints;
        unsigned start_delay_sec;    /* startDelaySeconds, default 0 (none) */
        unsigned interval_sec;       /* probeIntervalSeconds, default 10, must be > 0 */
} ProbeConfig;

int probe_config_parse(const OkgNode *node, const char *file, const char *path,
                       OkgErrors *errors, ProbeConfig **ret);
ProbeConfig *probe_config_free(ProbeConfig *c);
static inline void probe_config_freep(ProbeConfig **c) {
        probe_config_free(*c);
}
int probe_config_validate(const OkgNode *node, const char *file, const char *path,
                          OkgErrors *errors);
