/* The service_quality plugin's context (docs/service-quality.md): the pod as okg-storaged saw
 * it, the probes of its kruise.io/podprobe annotation (or the downward-API file), one runner per
 * probe, and the conditions handed to okg-storaged. */
#pragma once

#include <curl/curl.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "okg-bus-api.h"
#include "okg-bus.h"
#include "okg-curl.h"
#include "probed-http.h"
#include "okg-storage-client.h"
#include "probed-sq-config.h"
#include "probed-sq.h"

#define SQ_BUS_NAME OKG_SERVICE_QUALITY_NAME
#define SQ_BUS_PATH OKG_SERVICE_QUALITY_PATH
#define SQ_BUS_IFACE OKG_SERVICE_QUALITY_IFACE
#define SQ_BUS_PROBE_PREFIX OKG_SERVICE_QUALITY_PROBE_PATH_PREFIX
#define SQ_BUS_PROBE_IFACE OKG_SERVICE_QUALITY_PROBE_IFACE

typedef struct SqManager SqManager;

/* One probe of the annotation: its timer, the probe in flight (a curl transfer, a connecting
 * socket or a child process), Kruise's thresholds, and what was handed to okg-storaged. */
typedef struct SqRunner {
        SqManager *manager;
        size_t index;
        const SqProbe *probe;            /* the manager's probes.v[index] */
        char *path;
        char *target;                    /* where it goes, for the bus and the logs */

        sd_event_source *timer;
        bool probing;
        uint64_t started_usec;           /* CLOCK_MONOTONIC start of the probe in flight */

        CURL *easy;                      /* tcpSocket to a host name */
        ProbeHttp *http;                 /* httpGet */
        char **headers;                  /* httpGet: its headers, curl's syntax */
        char *body;
        size_t body_len;
        char curl_error[CURL_ERROR_SIZE];
        char *url;                       /* httpGet: the request in flight (a redirect's) */
        unsigned n_redirects;            /* httpGet: redirects followed in this probe */
        bool opened_socket;              /* curl made a socket for the transfer in flight */

        int fd;                          /* tcpSocket: the connecting socket */
        sd_event_source *io;
        sd_event_source *deadline;       /* tcpSocket and exec: the probe's timeout */

        pid_t pid;                       /* exec: the child, 0 once reaped */
        pid_t pgid;                      /* exec: its process group (the child's PID) */
        sd_event_source *child;
        int out_fd, err_fd;
        sd_event_source *out_io, *err_io;
        char *out, *err;
        size_t out_len, err_len;
        bool timed_out;
        int last_exit;

        char *container_id;              /* the container the results are about */
        SqTracker tracker;

        /* The values handed to okg-storaged for the probe's condition type, newest first: the
         * manager's, so they outlive the runner (a change of the probe list). */
        SqHistory *sent;

        /* For the bus. */
        bool last_success;
        char *last_message;
        char *last_error;                /* why the last probe gave no result, or NULL */
        uint64_t last_probe_realtime;
        uint64_t n_probes, n_failures, n_writes;
} SqRunner;

struct SqManager {
        sd_event *event;
        OkgBus *bus;
        CurlGlue *glue;
        OkgStorageClient *storage;
        SqConfig *config;

        SqPod pod;
        bool have_pod;
        uint64_t start_realtime;         /* when the plugin started: the container's start when
                                          * no kubelet reports one (a local run) */
        char *pod_error;                 /* why the last GetPod gave nothing */
        uint64_t pod_error_since;        /* CLOCK_MONOTONIC, when that began */
        bool pod_error_warned;
        sd_bus_slot *get_pod_slot;
        sd_event_source *refresh_timer;

        /* The PodProbeMarkers the pod names, as okg-storaged follows them (GetPodProbeMarkers,
         * asked again whenever Storage1's properties change). */
        SqPpm *ppms;
        size_t n_ppms;
        bool have_ppms;                  /* an answer (or a failure) for the pod as last read */
        char *ppm_list;                  /* the pod's kruise.io/podprobemarker-list it was for */
        sd_bus_slot *get_ppms_slot;

        SqProbes probes;
        SqRunner **runners;
        size_t n_runners;
        SqSentBook sent;                 /* what was handed on, per condition type */

        /* Which source won and why (docs/service-quality.md). */
        char *source;                    /* "podprobemarker", "annotation", "file", "none",
                                          * "disabled" */
        char *source_reason;
        char *probes_error;              /* the annotation was refused: why */
        /* Who writes the conditions: "okg-probed", or "kruise-daemon" once another writer was
         * seen changing one of them. */
        char *writer;
        char *writer_reason;
        unsigned other_writer_strikes;
        uint64_t calls, calls_done;      /* SetPodConditions calls made, and finished */

        sd_event_source *sync_event;
        uint64_t condition_writes, storage_errors;
        char *last_storage_error;
};

/* Takes config. */
int sq_manager_new(sd_event *event, SqConfig *config, SqManager **ret);
SqManager *sq_manager_free(SqManager *m);
static inline void sq_manager_freep(SqManager **m) {
        sq_manager_free(*m);
}
int sq_manager_start(SqManager *m, const char *bus_address);

/* Asks okg-storaged for the pod again (its PodResourceVersion changed, or the bus came back). */
void sq_manager_refresh(SqManager *m);
/* Reads the source again (the downward-API file) and runs its probes. */
void sq_manager_choose_source(SqManager *m);
/* Starts every probe that is due and not in flight now; returns how many started. */
unsigned sq_manager_probe_now(SqManager *m);

/* The runners (probed-sq-runner.c). */
int sq_runner_new(SqManager *m, size_t index, SqRunner **ret);
SqRunner *sq_runner_free(SqRunner *r);
/* Arms the runner's next probe delay_usec from now. */
void sq_runner_schedule(SqRunner *r, uint64_t delay_usec);
/* Probes now when it is due and none is in flight (else re-arms); 1 when one started. */
int sq_runner_probe(SqRunner *r);
/* The runner's container in the pod as last read, NULL when none. */
const SqContainer *sq_runner_container(SqRunner *r);
/* Hands the changed conditions to okg-storaged at the end of this loop iteration. */
void sq_manager_schedule_sync(SqManager *m);

/* The bus side (probed-sq-bus.c). */
int sq_bus_setup(sd_bus *bus, void *userdata);
void sq_bus_connected(OkgBus *b, bool reconnect, void *userdata);
/* Storage1's Acknowledged signal (the match is added by sq_bus_setup()). */
int sq_manager_on_acknowledged(sd_bus_message *msg, void *userdata, sd_bus_error *error);
void sq_bus_emit_manager_changed(SqManager *m);
void sq_bus_emit_runner_changed(SqRunner *r);
int sq_metrics_render(SqManager *m, char **ret);
