/* okg-probed's one context: the event loop, the bus, the curl multi glue, the storage client,
 * the endpoints, and what has been handed to okg-storaged so far. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "okg-bus.h"
#include "okg-curl.h"
#include "okg-storage-client.h"
#include "probed-config.h"
#include "probed-state.h"

typedef struct Endpoint Endpoint;

typedef struct Manager {
        sd_event *event;
        OkgBus *bus;
        CurlGlue *glue;
        OkgStorageClient *storage;
        ProbeConfig *config;

        Endpoint **endpoints;
        size_t n_endpoints;

        /* Every field handed to okg-storaged, with the value handed: the edge trigger. */
        ProbeFields sent;
        char *ops_state;                  /* the last opsState handed on, NULL when none */
        uint64_t storage_writes;          /* calls handed to the storage client */
        uint64_t storage_errors;          /* calls okg-storaged refused */
        char *last_storage_error;

        sd_event_source *sync_event;      /* coalesces state changes of one loop iteration */
        uint64_t random_state;            /* xorshift, for the probes' jitter */
} Manager;

/* Takes the config. */
int manager_new(sd_event *event, ProbeConfig *config, Manager **ret);
Manager *manager_free(Manager *m);
static inline void manager_freep(Manager **m) {
        manager_free(*m);
}
/* Joins the bus (address NULL: $OKG_BUS_ADDRESS) and schedules the first probes. */
int manager_start(Manager *m, const char *bus_address);
/* Starts a probe of every endpoint that is not probing already; returns how many started. */
unsigned manager_probe_now(Manager *m);

/* A cheap uniform random number, for jitter. */
uint32_t manager_random(Manager *m);

/* Called by an endpoint when its applied state changed. */
void manager_endpoint_state_changed(Manager *m, Endpoint *e, const char *old_state,
                                    const char *new_state);
