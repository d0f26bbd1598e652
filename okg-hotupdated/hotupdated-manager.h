/* okg-hotupdated's Manager: owns every handle (event loop, bus, storage client, HTTP server, curl
 * glue, download folder) and runs one update at a time: a request through download -> install ->
 * reload -> check -> record (hotupdated-pipeline.c), or the recovery at start
 * (hotupdated-recovery.c); both are an Update (hotupdated-update.h). The HTTP and bus front ends
 * submit requests and wait for the outcome through a Waiter; status and metrics are read from
 * here (hotupdated-report.c). */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <json-c/json.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "hotupdated-config.h"
#include "hotupdated-files.h"
#include "hotupdated-record.h"
#include "hotupdated-request.h"
#include "hotupdated-status.h"
#include "okg-list.h"

typedef struct Manager Manager;
typedef struct Update Update;
typedef struct Waiter Waiter;
typedef struct OkgBus OkgBus;
typedef struct OkgHttpServer OkgHttpServer;
typedef struct OkgStorageClient OkgStorageClient;
typedef struct CurlGlue CurlGlue;

#define HOTUPDATE_HISTORY_MAX 20U

typedef enum RecoveryStage {
        RECOVERY_OWN,       /* waiting for this pod's record */
        RECOVERY_FLEET,     /* waiting for the fleet's newest */
        RECOVERY_DONE,      /* answered, or given up waiting */
} RecoveryStage;

struct Manager {
        sd_event *event;
        HotUpdateConfig *config;
        OkgBus *bus;
        OkgStorageClient *storage;
        OkgHttpServer *http;
        CurlGlue *curl;
        unsigned codings;               /* DOWNLOAD_CODING_* that we decode */
        int dir_fd;
        pid_t exclude_tree;

        HotUpdateRecord record;         /* what this pod's record says (and will say) */
        bool current_in_place;          /* record.current is the file on disk */
        FileId current_id;
        bool have_current_id;

        HotUpdateResult history[HOTUPDATE_HISTORY_MAX];
        size_t history_first, n_history;

        Update *update;                 /* the one update (request or recovery), or NULL */
        HotUpdatePhase phase;
        bool ready;
        bool shutting_down;
        uint64_t record_sent, record_done;
        uint64_t updates_total;
        uint64_t outcomes[_OUTCOME_MAX];  /* for /metrics: every outcome, refusals included */
        uint64_t downloads, download_bytes, download_usec;

        RecoveryStage recovery_stage;
        sd_event_source *fetch_timer;
        sd_event_source *refetch_timer;   /* asks again while okg-storaged cannot answer */
        char *local_record_path;          /* <state-dir>/hotupdated-record.json */
};

/* Called once with the outcome; the waiter is unlinked before. recorded: okg-storaged accepted
 * the record before the answer went out. */
typedef void (*WaiterDone)(Waiter *w, const HotUpdateResult *r, bool recorded);

struct Waiter {
        LIST_FIELDS(Waiter, waiters);
        Update *update;
        WaiterDone done;
};

/* Takes ownership of config on every path: on success the Manager frees it, on failure
 * manager_new() has freed it already. The caller passes it with TAKE_PTR() and never frees it
 * after the call. */
int manager_new(sd_event *e, HotUpdateConfig *config, Manager **ret);
Manager *manager_free(Manager *m);
static inline void manager_freep(Manager **m) {
        manager_free(*m);
}
/* Bus, HTTP server, recovery; READY=1 is sent once recovery has put the file in place. */
int manager_start(Manager *m);

/* Submits a checked request (hotupdate_params_finish() done). Returns 0 when the update was
 * taken (w->done will be called), 1 when it was refused at once (Busy, VersionConflict,
 * ShuttingDown: *ret is filled, nothing is recorded), or a negative errno. */
int manager_submit(Manager *m, const HotUpdateParams *p, Waiter *w, HotUpdateResult *ret);
/* The waiter goes away (client disconnected): the update goes on without it. */
void waiter_detach(Waiter *w);

/* Fills a result for a request refused before it reached the manager (400, 401, ...). */
int manager_refusal(Manager *m, HotUpdateOutcome o, const char *message, const HotUpdateParams *p,
                    HotUpdateResult *ret);

/* GET /hot-update and GetStatus: current version, in-flight update, last result, history. */
json_object *manager_status_json(Manager *m);
/* Which protections of the endpoint are on (hotupdated-policy.h). */
void manager_protections(Manager *m, bool on[_PROTECTION_MAX]);

const HotUpdateConfig *manager_config(Manager *m);
sd_event *manager_event(Manager *m);
HotUpdatePhase manager_phase(Manager *m);
/* The version in place ("" when none), and the record's fields. */
const HotUpdateVersion *manager_current(Manager *m);
bool manager_current_in_place(Manager *m);
const HotUpdateResult *manager_last_result(Manager *m);
uint64_t manager_updates_total(Manager *m);
/* GetMetrics: the Prometheus text of this daemon's families. */
int manager_metrics_text(Manager *m, char **ret);
uint16_t manager_http_port(Manager *m);
struct OkgHttpServer *manager_http(Manager *m);

/* For the daemon's own files (hotupdated-update.c, -pipeline.c, -recovery.c): */
void manager_set_phase(Manager *m, HotUpdatePhase p);
/* STATUS= for the service manager: the update in flight, or what is served. */
void manager_notify_status(Manager *m);
/* READY=1, once. */
void manager_send_ready(Manager *m);
/* Keeps a copy of r for GET /hot-update's history (the last HOTUPDATE_HISTORY_MAX). */
void manager_history_push(Manager *m, const HotUpdateResult *r);
/* The version in place, NULL when none. */
const char *manager_current_version(Manager *m);
/* Now, as the record's timestamps are written. */
void hotupdate_now(char buf[HOTUPDATE_TIME_SIZE]);

/* hotupdated-recovery.c: starts the recovery at start (an Update of origin recovery). */
int recovery_begin(Manager *m);

/* hotupdated-http.c */
int hotupdate_http_start(Manager *m, OkgHttpServer **ret);

/* hotupdated-bus.c */
int hotupdate_bus_start(Manager *m, OkgBus **ret);
void hotupdate_bus_emit_changed(Manager *m, OkgBus *bus);
void hotupdate_bus_emit_finished(Manager *m, OkgBus *bus, const HotUpdateResult *r);
