/* okg-hotupdated's Manager: owns every handle (event loop, bus, storage client, HTTP server, curl
 * glue, download folder) and runs one update at a time through download -> install -> reload ->
 * check -> record, plus the recovery at start. The HTTP and bus front ends submit requests and
 * wait for the outcome through a Waiter. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <json-c/json.h>
#include <systemd/sd-event.h>

#include "hotupdated-config.h"
#include "hotupdated-record.h"
#include "hotupdated-request.h"
#include "hotupdated-status.h"

typedef struct Manager Manager;
typedef struct Update Update;
typedef struct Waiter Waiter;

/* Called once with the outcome; the waiter is unlinked before. recorded: okg-storaged accepted
 * the record before the answer went out. */
typedef void (*WaiterDone)(Waiter *w, const HotUpdateResult *r, bool recorded);

struct Waiter {
        Waiter *prev, *next;
        Update *update;
        WaiterDone done;
};

int manager_new(sd_event *e, HotUpdateConfig *config, Manager **ret);   /* takes config */
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

/* hotupdated-http.c */
typedef struct OkgHttpServer OkgHttpServer;
int hotupdate_http_start(Manager *m, OkgHttpServer **ret);

/* hotupdated-bus.c */
typedef struct OkgBus OkgBus;
int hotupdate_bus_start(Manager *m, OkgBus **ret);
void hotupdate_bus_emit_changed(Manager *m, OkgBus *bus);
void hotupdate_bus_emit_finished(Manager *m, OkgBus *bus, const HotUpdateResult *r);
