/* The plugins' side of io.kruise.game.Storage1: asynchronous calls to okg-storaged that are
 * queued in order and re-sent until okg-storaged accepted them (it journals a write before it
 * replies), so a write survives okg-storaged or dbus-daemon restarting underneath the plugin.
 * A call okg-storaged refuses as invalid is not retried; its callback gets the error. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "okg-bus.h"

typedef struct OkgStorageClient OkgStorageClient;

typedef struct OkgStrPair {
        const char *key;
        const char *value;
} OkgStrPair;

/* error: 0, or a negative errno when okg-storaged refused the call (message: its D-Bus error
 * message) or the client was freed with the call still queued (-ECANCELED, message NULL).
 * seq: okg-storaged's sequence number of the accepted write; the Acknowledged(t) signal with
 * that number says it reached the API server (or the local store). */
typedef void (*OkgStorageWriteDone)(int error, const char *message, uint64_t seq,
                                    void *userdata);
/* record: the JSON text of the record, NULL when there is none; pod: whose record it is. */
typedef void (*OkgStorageRecordDone)(int error, const char *message, const char *record,
                                     const char *pod, void *userdata);

int okg_storage_client_new(sd_event *e, OkgBus *bus, OkgStorageClient **ret);
OkgStorageClient *okg_storage_client_free(OkgStorageClient *c);
static inline void okg_storage_client_freep(OkgStorageClient **c) {
        okg_storage_client_free(*c);
}
/* Calls not yet accepted by okg-storaged. */
size_t okg_storage_client_pending(const OkgStorageClient *c);

/* Pod labels/annotations: set the given keys (other keys are left alone). */
int okg_storage_set_pod_metadata(OkgStorageClient *c, const OkgStrPair *labels, size_t n_labels,
                                 const OkgStrPair *annotations, size_t n_annotations,
                                 OkgStorageWriteDone cb, void *userdata);
/* The GameServer of this pod: spec.opsState (NULL or "" leaves it alone) and labels/annotations. */
int okg_storage_set_gameserver(OkgStorageClient *c, const char *ops_state, const OkgStrPair *labels,
                               size_t n_labels, const OkgStrPair *annotations,
                               size_t n_annotations, OkgStorageWriteDone cb, void *userdata);
/* This pod's record in the result ConfigMap: a JSON object, stored as given. */
int okg_storage_put_record(OkgStorageClient *c, const char *record_json, OkgStorageWriteDone cb,
                           void *userdata);
/* A Kubernetes Event on the pod; type "Normal" or "Warning". */
int okg_storage_post_event(OkgStorageClient *c, const char *type, const char *reason,
                           const char *message, OkgStorageWriteDone cb, void *userdata);
/* Pod status conditions (type, status "True"/"False", message): okg-storaged merges them by
 * type into status.conditions, other conditions are left alone. */
typedef struct OkgPodCondition {
        const char *type, *status, *message;
} OkgPodCondition;
int okg_storage_set_pod_conditions(OkgStorageClient *c, const OkgPodCondition *conditions,
                                   size_t n, OkgStorageWriteDone cb, void *userdata);
/* This pod's record; with fleet_field non-NULL, instead the record of the pod's GameServerSet
 * with the greatest value of that top-level string field (see docs/storage.md). Unlike writes,
 * a read is sent at once and not retried: -ENOTCONN (returned) while the bus is away, or the
 * error in the callback (e.g. okg-storaged's Busy while the API server is out of reach). */
int okg_storage_get_record(OkgStorageClient *c, const char *fleet_field, OkgStorageRecordDone cb,
                           void *userdata);
