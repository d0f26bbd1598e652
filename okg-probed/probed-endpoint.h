/* One probed endpoint: its timer, its HTTP client, its last result and its thresholds. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "probed-config.h"
#include "probed-http.h"
#include "probed-result.h"
#include "probed-state.h"

typedef struct Manager Manager;

struct Endpoint {
        Manager *manager;
        size_t index;
        const ProbeEndpoint *config;        /* owned by the manager's ProbeConfig */
        char *path;                         /* /io/kruise/game/Probe1/endpoint/<index> */

        ProbeHttp *http;
        char **headers;                     /* the request's extra headers, curl's syntax */
        sd_event_source *timer;
        bool probing;
        uint64_t started_usec;              /* CLOCK_MONOTONIC start of the probe in flight / last */
        char *hop_url;                      /* where a followed redirect sent the probe, or NULL */
        unsigned redirects;                 /* redirects followed by the probe in flight */
        bool same_method;                   /* whether hop_url is asked with the configured method */

        char body[PROBE_BODY_MAX];
        size_t body_len;
        bool truncated;

        ProbeTracker tracker;

        /* What the bus shows. */
        char *last_state;                   /* state of the last successful probe */
        ProbeOutcome last_outcome;
        char *last_error;
        long last_status;                   /* HTTP status of the last answer, 0 when none */
        uint64_t last_probe_realtime;       /* CLOCK_REALTIME end of the last probe */
        uint64_t last_duration_usec;
        uint64_t n_probes, n_failures, n_state_changes;
};

typedef struct Endpoint Endpoint;

int endpoint_new(Manager *m, size_t index, const ProbeEndpoint *config, Endpoint **ret);
Endpoint *endpoint_free(Endpoint *e);
static inline void endpoint_freep(Endpoint **e) {
        endpoint_free(*e);
}
/* Arms the first probe, delay_usec from now. */
int endpoint_start(Endpoint *e, uint64_t delay_usec);
/* Probes now unless a probe is in flight; 1 when one started, 0 when busy. */
int endpoint_probe_now(Endpoint *e);
