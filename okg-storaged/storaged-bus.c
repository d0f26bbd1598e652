/* io.kruise.game.Storage1: what the plugins call to record results. */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <time.h>

#include "log.h"
#include "macro.h"
#include "okg-bus-api.h"
#include "okg-bus.h"
#include "okg-metrics.h"
#include "storaged-manager.h"

typedef const char *(*PairCheck)(const char *key, const char *value);

/* Reads an a{ss} into the field list, checking each pair. */
static int read_pairs(sd_bus_message *m, FieldKind kind, PairCheck check, json_object *fields,
                      sd_bus_error *error) {
        const char *key, *value;
        int r;

        r = sd_bus_message_enter_container(m, 'a', "{ss}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_read(m, "{ss}", &key, &value)) > 0) {
                const char *why = check(key, value);
                json_object *e;

                if (why)
                        return sd_bus_error_setf(error, OKG_STORAGE_ERROR_INVALID_ARGUMENT,
                                                 "%s \"%s\": %s",
                                                 kind == FIELD_LABEL ? "label" : "annotation", key, why);
                e = json_object_new_object();
                json_object_object_add(e, "kind", json_object_new_string(field_kind_to_string(kind)));
                json_object_object_add(e, "key", json_object_new_string(key));
                json_object_object_add(e, "value", json_object_new_string(value));
                json_object_array_add(fields, e);
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(m);
}

static int reply_write(sd_bus_message *m, Manager *mgr, ObjectKind kind, json_object *fields,
                       sd_bus_error *error) {
        uint64_t seq;
        int r;

        if (json_object_array_length(fields) == 0)
                return sd_bus_error_set(error, OKG_STORAGE_ERROR_INVALID_ARGUMENT, "nothing to set");
        r = manager_write(mgr, kind, fields, &seq);
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "Cannot accept the write: %m");
        return sd_bus_reply_method_return(m, "t", seq);
}

static int method_set_pod_metadata(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        json_object *fields = json_object_new_array();
        int r;

        r = read_pairs(m, FIELD_LABEL, storage_check_label, fields, error);
        if (r >= 0)
                r = read_pairs(m, FIELD_ANNOTATION, storage_check_annotation, fields, error);
        if (r >= 0)
                r = reply_write(m, userdata, OBJECT_POD, fields, error);
        json_object_put(fields);
        return r;
}

static int method_set_gameserver(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        json_object *fields = json_object_new_array();
        const char *ops_state;
        int r;

        r = sd_bus_message_read(m, "s", &ops_state);
        if (r >= 0 && !isempty(ops_state)) {
                json_object *e = json_object_new_object();
                if (strlen(ops_state) > 63) {
                        json_object_put(e);
                        json_object_put(fields);
                        return sd_bus_error_set(error, OKG_STORAGE_ERROR_INVALID_ARGUMENT,
                                                "opsState is longer than 63 characters");
                }
                json_object_object_add(e, "kind", json_object_new_string("opsState"));
                json_object_object_add(e, "key", json_object_new_string(""));
                json_object_object_add(e, "value", json_object_new_string(ops_state));
                json_object_array_add(fields, e);
        }
        if (r >= 0)
                r = read_pairs(m, FIELD_LABEL, storage_check_label, fields, error);
        if (r >= 0)
                r = read_pairs(m, FIELD_ANNOTATION, storage_check_annotation, fields, error);
        if (r >= 0)
                r = reply_write(m, userdata, OBJECT_GAMESERVER, fields, error);
        json_object_put(fields);
        return r;
}

/* The record as stored: the plugin's JSON object, with the pod, its namespace and its
 * GameServerSet added so fleet lookups and pruning can tell whose it is. */
static char *record_annotated(Manager *mgr, const char *json) {
        json_object *o = json_tokener_parse(json);
        char *s;

        if (!o)
                return NULL;
        json_object_object_add(o, "pod", json_object_new_string(mgr->pod));
        json_object_object_add(o, "namespace", json_object_new_string(mgr->namespace));
        if (mgr->gss)
                json_object_object_add(o, "gameServerSet", json_object_new_string(mgr->gss));
        s = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(o);
        return s;
}

static int method_put_record(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Manager *mgr = userdata;
        _cleanup_(freep) char *stored = NULL;
        json_object *fields, *e;
        const char *record, *why;
        int r;

        r = sd_bus_message_read(m, "s", &record);
        if (r < 0)
                return r;
        why = storage_check_record(record);
        if (why)
                return sd_bus_error_set(error, OKG_STORAGE_ERROR_INVALID_ARGUMENT, why);
        stored = record_annotated(mgr, record);
        if (!stored)
                return -ENOMEM;
        fields = json_object_new_array();
        e = json_object_new_object();
        json_object_object_add(e, "kind", json_object_new_string("data"));
        json_object_object_add(e, "key", json_object_new_string(mgr->pod));
        json_object_object_add(e, "value", json_object_new_string(stored));
        json_object_array_add(fields, e);
        r = reply_write(m, mgr, OBJECT_RECORDS, fields, error);
        json_object_put(fields);
        return r;
}

static int method_post_event(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        const char *type, *reason, *message, *why;
        uint64_t seq;
        int r;

        r = sd_bus_message_read(m, "sss", &type, &reason, &message);
        if (r < 0)
                return r;
        why = storage_check_event(type, reason, message);
        if (why)
                return sd_bus_error_set(error, OKG_STORAGE_ERROR_INVALID_ARGUMENT, why);
        r = manager_post_event(userdata, type, reason, message, &seq);
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "Cannot accept the event: %m");
        return sd_bus_reply_method_return(m, "t", seq);
}

/* a(sss): (type, status, message) per condition. The values journaled carry the times:
 * lastProbeTime is this call's, lastTransitionTime the call's when the status changed. A
 * condition equal to the one wanted before (status and message) keeps its times. */
static int method_set_pod_conditions(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Manager *mgr = userdata;
        Object *o = &mgr->objects[OBJECT_POD_STATUS].object;
        json_object *fields = json_object_new_array(), *seen = json_object_new_object();
        const char *type, *status, *message;
        char now[64];
        time_t t = time(NULL);
        struct tm tm;
        int r;

        strftime(now, sizeof now, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
        r = sd_bus_message_enter_container(m, 'a', "(sss)");
        while (r >= 0 && (r = sd_bus_message_read(m, "(sss)", &type, &status, &message)) > 0) {
                const char *why = storage_check_condition(type, status, message);
                _cleanup_(freep) char *value = NULL;
                Field *f;

                if (!why && json_object_object_get_ex(seen, type, NULL))
                        why = "the same condition type twice in one call";
                if (why) {
                        r = sd_bus_error_setf(error, OKG_STORAGE_ERROR_INVALID_ARGUMENT, "condition \"%s\": %s", type, why);
                        break;
                }
                json_object_object_add(seen, type, NULL);
                f = object_find(o, FIELD_CONDITION, type);
                value = pod_condition_value(f ? f->desired : NULL, manager_pod(mgr), type, status,
                                            message, now);
                if (!value && (!f || !f->desired || !(value = strdup(f->desired)))) {
                        r = -ENOMEM;
                        break;
                }
                json_object *e = json_object_new_object();
                json_object_object_add(e, "kind", json_object_new_string(field_kind_to_string(FIELD_CONDITION)));
                json_object_object_add(e, "key", json_object_new_string(type));
                json_object_object_add(e, "value", json_object_new_string(value));
                json_object_array_add(fields, e);
        }
        if (r >= 0)
                r = sd_bus_message_exit_container(m);
        if (r >= 0)
                r = reply_write(m, mgr, OBJECT_POD_STATUS, fields, error);
        json_object_put(fields);
        json_object_put(seen);
        return r;
}

static int method_get_pod(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        json_object *pod = manager_pod(userdata);

        if (!pod)
                return sd_bus_error_set(error, OKG_STORAGE_ERROR_NOT_KNOWN,
                                        "the pod has not been read yet (or the local store holds no pod)");
        return sd_bus_reply_method_return(
                m, "s", json_object_to_json_string_ext(pod, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
}

static int method_get_pod_probe_markers(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return ppmwatch_reply(userdata, m);
}

static int method_get_record(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return manager_get_record(userdata, m, NULL);
}

static int method_get_fleet_record(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        const char *field;
        int r;

        r = sd_bus_message_read(m, "s", &field);
        if (r < 0)
                return r;
        if (isempty(field))
                return sd_bus_error_set(error, OKG_STORAGE_ERROR_INVALID_ARGUMENT,
                                        "name the field to compare");
        return manager_get_record(userdata, m, field);
}

static int method_get_metrics(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Manager *mgr = userdata;
        const char *backend[] = { "backend", manager_backend(mgr), NULL };
        _cleanup_(freep) char *text = NULL;
        OkgMetrics x;
        int r;

        r = okg_metrics_begin(&x);
        if (r < 0)
                return r;
        okg_metrics_family(&x, "okg_sidecar_storage_backend", "gauge",
                           "Where okg-storaged records: kubernetes or local.");
        okg_metrics_sample(&x, "okg_sidecar_storage_backend", backend, 1);
        okg_metrics_family(&x, "okg_sidecar_storage_api_requests_total", "counter",
                           "Requests sent to the Kubernetes API server.");
        okg_metrics_sample(&x, "okg_sidecar_storage_api_requests_total", NULL,
                           (double) (mgr->kube ? kube_client_requests(mgr->kube) : 0));
        okg_metrics_family(&x, "okg_sidecar_storage_writes_acknowledged_total", "counter",
                           "Writes acknowledged by the API server or the local store.");
        okg_metrics_sample(&x, "okg_sidecar_storage_writes_acknowledged_total", NULL,
                           (double) mgr->acked_writes);
        okg_metrics_family(&x, "okg_sidecar_storage_retries_total", "counter",
                           "Requests retried after a network error, 401, 409, 429, 5xx or a refusal.");
        okg_metrics_sample(&x, "okg_sidecar_storage_retries_total", NULL, (double) mgr->retries);
        okg_metrics_family(&x, "okg_sidecar_storage_errors_total", "counter",
                           "Writes the API server refused for good (reported, not retried).");
        okg_metrics_sample(&x, "okg_sidecar_storage_errors_total", NULL, (double) mgr->failures);
        okg_metrics_family(&x, "okg_sidecar_storage_journal_damaged_entries", "gauge",
                           "Journal entries that could not be read at start (their writes are lost).");
        okg_metrics_sample(&x, "okg_sidecar_storage_journal_damaged_entries", NULL,
                           (double) (mgr->journal ? journal_damage(mgr->journal)->lines : 0));
        okg_metrics_family(&x, "okg_sidecar_storage_pending_writes", "gauge",
                           "Fields and events accepted but not acknowledged yet.");
        okg_metrics_sample(&x, "okg_sidecar_storage_pending_writes", NULL,
                           (double) manager_pending(mgr));
        r = okg_metrics_end(&x, &text);
        if (r < 0)
                return r;
        return sd_bus_reply_method_return(m, "s", text);
}

#define GETTER(fname, sig, expr)                                                                  \
        static int fname(sd_bus *bus, const char *path, const char *interface,                   \
                         const char *property, sd_bus_message *reply, void *userdata,            \
                         sd_bus_error *error) {                                                   \
                Manager *m = userdata;                                                            \
                return sd_bus_message_append(reply, sig, expr);                                   \
        }

GETTER(get_backend, "s", manager_backend(m))
GETTER(get_server, "s", m->kube ? kube_client_config(m->kube)->server : local_store_path(m->local))
GETTER(get_pending, "u", (uint32_t) manager_pending(m))
GETTER(get_requests, "t", (uint64_t) (m->kube ? kube_client_requests(m->kube) : 0))
GETTER(get_pod_rv, "s", manager_pod_resource_version(m))
GETTER(get_ppm_version, "t", ppmwatch_version(m))

#define EMITS SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE
static const sd_bus_vtable storage_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Backend", "s", get_backend, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Server", "s", get_server, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("PodName", "s", okg_bus_property_get_string, offsetof(Manager, pod),
                        SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Namespace", "s", okg_bus_property_get_string, offsetof(Manager, namespace),
                        SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("GameServerSet", "s", okg_bus_property_get_string, offsetof(Manager, gss),
                        EMITS),
        SD_BUS_PROPERTY("ResultConfigMap", "s", okg_bus_property_get_string, offsetof(Manager, records_name),
                        SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("ResultNamespace", "s", okg_bus_property_get_string, offsetof(Manager, records_namespace),
                        SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Pending", "u", get_pending, 0, EMITS),
        SD_BUS_PROPERTY("LastError", "s", okg_bus_property_get_string, offsetof(Manager, last_error),
                        EMITS),
        SD_BUS_PROPERTY("JournalDamage", "s", okg_bus_property_get_string, offsetof(Manager, journal_damage),
                        SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("RequestsSent", "t", get_requests, 0, EMITS),
        SD_BUS_PROPERTY("WritesAcknowledged", "t", NULL, offsetof(Manager, acked_writes), EMITS),
        SD_BUS_PROPERTY("Retries", "t", NULL, offsetof(Manager, retries), EMITS),
        SD_BUS_PROPERTY("Failures", "t", NULL, offsetof(Manager, failures), EMITS),
        SD_BUS_PROPERTY("Draining", "b", okg_bus_property_get_bool, offsetof(Manager, draining),
                        EMITS),
        SD_BUS_PROPERTY("PodResourceVersion", "s", get_pod_rv, 0, EMITS),
        SD_BUS_PROPERTY("PodProbeMarkersVersion", "t", get_ppm_version, 0, EMITS),
        SD_BUS_METHOD_WITH_ARGS("SetPodMetadata", SD_BUS_ARGS("a{ss}", labels, "a{ss}", annotations),
                                SD_BUS_RESULT("t", seq), method_set_pod_metadata,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("SetGameServer",
                                SD_BUS_ARGS("s", ops_state, "a{ss}", labels, "a{ss}", annotations),
                                SD_BUS_RESULT("t", seq), method_set_gameserver,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("PutRecord", SD_BUS_ARGS("s", record), SD_BUS_RESULT("t", seq),
                                method_put_record, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("PostEvent", SD_BUS_ARGS("s", type, "s", reason, "s", message),
                                SD_BUS_RESULT("t", seq), method_post_event,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("SetPodConditions", SD_BUS_ARGS("a(sss)", conditions),
                                SD_BUS_RESULT("t", seq), method_set_pod_conditions,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetPod", SD_BUS_NO_ARGS, SD_BUS_RESULT("s", json), method_get_pod,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetPodProbeMarkers", SD_BUS_NO_ARGS,
                                SD_BUS_RESULT("a(sss)", markers), method_get_pod_probe_markers,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetRecord", SD_BUS_NO_ARGS, SD_BUS_RESULT("s", record, "s", pod),
                                method_get_record, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetFleetRecord", SD_BUS_ARGS("s", field),
                                SD_BUS_RESULT("s", record, "s", pod), method_get_fleet_record,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetMetrics", SD_BUS_NO_ARGS, SD_BUS_RESULT("s", text),
                                method_get_metrics, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_SIGNAL_WITH_ARGS("Acknowledged", SD_BUS_ARGS("s", object, "t", seq), 0),
        SD_BUS_SIGNAL_WITH_ARGS("WriteFailed", SD_BUS_ARGS("s", object, "t", seq, "s", message), 0),
        SD_BUS_VTABLE_END,
};

int storaged_bus_setup(sd_bus *bus, void *userdata) {
        return sd_bus_add_object_vtable(bus, NULL, OKG_STORAGE_PATH, OKG_STORAGE_IFACE,
                                        storage_vtable, userdata);
}

static const char *signal_object(ObjectKind kind) {
        return kind == _OBJECT_KIND_MAX ? "event" : object_kind_to_string(kind);
}

void storaged_bus_acknowledged(Manager *m, ObjectKind kind, uint64_t seq) {
        sd_bus *bus = okg_bus_get(m->bus);
        if (bus)
                (void) sd_bus_emit_signal(bus, OKG_STORAGE_PATH, OKG_STORAGE_IFACE, "Acknowledged",
                                          "st", signal_object(kind), seq);
}

void storaged_bus_write_failed(Manager *m, ObjectKind kind, uint64_t seq, const char *message) {
        sd_bus *bus = okg_bus_get(m->bus);
        if (bus)
                (void) sd_bus_emit_signal(bus, OKG_STORAGE_PATH, OKG_STORAGE_IFACE, "WriteFailed",
                                          "sts", signal_object(kind), seq, strempty(message));
}

void storaged_bus_changed(Manager *m) {
        okg_bus_emit_all_changed(m->bus, OKG_STORAGE_PATH, OKG_STORAGE_IFACE);
}
