/* io.kruise.game.Probe1 on the private bus: the manager object with ProbeNow, ListEndpoints,
 * GetMetrics and the StateChanged signal, and one object per endpoint with its last result and
 * counters. Fast-moving values (counters, times) do not announce their changes, so a steady
 * state costs no bus traffic. */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>

#include "log.h"
#include "macro.h"
#include "okg-build-config.h"
#include "probed-bus.h"
#include "probed-endpoint.h"
#include "probed-manager.h"
#include "probed-metrics.h"

static int property_get_const_string(sd_bus *bus, const char *path, const char *interface,
                                     const char *property, sd_bus_message *reply,
                                     void *userdata, sd_bus_error *error) {
        Endpoint *e = userdata;
        const ProbeEndpoint *c = e->config;
        const char *s = NULL;

        if (streq(property, "Url"))
                s = c->url;
        else if (streq(property, "Method"))
                s = c->method;
        else if (streq(property, "StorageType"))
                s = c->storage_type == PROBE_STORAGE_HTTP_METRIC ? "HTTPMetric" : "InKube";
        else if (streq(property, "MetricName"))
                s = c->metric_name;
        else if (streq(property, "FailureState"))
                s = c->failure_state;
        else if (streq(property, "JsonPath"))
                s = c->json_path;
        return sd_bus_message_append(reply, "s", strempty(s));
}

static int property_get_endpoint_u(sd_bus *bus, const char *path, const char *interface,
                                   const char *property, sd_bus_message *reply, void *userdata,
                                   sd_bus_error *error) {
        Endpoint *e = userdata;
        uint32_t v = 0;

        if (streq(property, "Index"))
                v = (uint32_t) e->index;
        else if (streq(property, "SuccessThreshold"))
                v = e->config->success_threshold;
        else if (streq(property, "FailureThreshold"))
                v = e->config->failure_threshold;
        else if (streq(property, "ExpectedStatusCode"))
                v = (uint32_t) e->config->expected_status;
        else if (streq(property, "LastStatusCode"))
                v = (uint32_t) e->last_status;
        else if (streq(property, "ConsecutiveSuccesses"))
                v = e->tracker.successes;
        else if (streq(property, "ConsecutiveFailures"))
                v = e->tracker.failures;
        return sd_bus_message_append(reply, "u", v);
}

static int property_get_timeout(sd_bus *bus, const char *path, const char *interface,
                                const char *property, sd_bus_message *reply, void *userdata,
                                sd_bus_error *error) {
        Endpoint *e = userdata;
        return sd_bus_message_append(reply, "t", (uint64_t) e->config->timeout_sec * USEC_PER_SEC);
}

static int property_get_result(sd_bus *bus, const char *path, const char *interface,
                               const char *property, sd_bus_message *reply, void *userdata,
                               sd_bus_error *error) {
        Endpoint *e = userdata;
        return sd_bus_message_append(reply, "s", probe_outcome_to_string(e->last_outcome));
}

static int method_endpoint_probe_now(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Endpoint *e = userdata;
        int r = endpoint_probe_now(e);

        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "Cannot start a probe of %s: %m",
                                               e->config->url);
        return sd_bus_reply_method_return(msg, "b", r > 0);
}

static const sd_bus_vtable endpoint_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Index", "u", property_get_endpoint_u, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Url", "s", property_get_const_string, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Method", "s", property_get_const_string, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("StorageType", "s", property_get_const_string, 0,
                        SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("MetricName", "s", property_get_const_string, 0,
                        SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("JsonPath", "s", property_get_const_string, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("FailureState", "s", property_get_const_string, 0,
                        SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("TimeoutUSec", "t", property_get_timeout, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("ExpectedStatusCode", "u", property_get_endpoint_u, 0,
                        SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("SuccessThreshold", "u", property_get_endpoint_u, 0,
                        SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("FailureThreshold", "u", property_get_endpoint_u, 0,
                        SD_BUS_VTABLE_PROPERTY_CONST),

        SD_BUS_PROPERTY("State", "s", okg_bus_property_get_string, offsetof(Endpoint, tracker.state),
                        SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("LastState", "s", okg_bus_property_get_string, offsetof(Endpoint, last_state),
                        SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("LastResult", "s", property_get_result, 0,
                        SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("LastError", "s", okg_bus_property_get_string, offsetof(Endpoint, last_error),
                        SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("LastStatusCode", "u", property_get_endpoint_u, 0,
                        SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Failing", "b", okg_bus_property_get_bool,
                        offsetof(Endpoint, tracker.failing), SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("StateChanges", "t", NULL, offsetof(Endpoint, n_state_changes),
                        SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),

        /* These move with every probe: read them, do not wait for a signal. */
        SD_BUS_PROPERTY("LastProbeTime", "t", NULL, offsetof(Endpoint, last_probe_realtime), 0),
        SD_BUS_PROPERTY("LastDurationUSec", "t", NULL, offsetof(Endpoint, last_duration_usec), 0),
        SD_BUS_PROPERTY("ConsecutiveSuccesses", "u", property_get_endpoint_u, 0, 0),
        SD_BUS_PROPERTY("ConsecutiveFailures", "u", property_get_endpoint_u, 0, 0),
        SD_BUS_PROPERTY("Probes", "t", NULL, offsetof(Endpoint, n_probes), 0),
        SD_BUS_PROPERTY("Failures", "t", NULL, offsetof(Endpoint, n_failures), 0),
        SD_BUS_PROPERTY("Probing", "b", okg_bus_property_get_bool, offsetof(Endpoint, probing), 0),

        SD_BUS_METHOD_WITH_ARGS("ProbeNow", SD_BUS_NO_ARGS, SD_BUS_RESULT("b", started),
                                method_endpoint_probe_now, 0),
        SD_BUS_VTABLE_END,
};

static int property_get_manager_const(sd_bus *bus, const char *path, const char *interface,
                                      const char *property, sd_bus_message *reply,
                                      void *userdata, sd_bus_error *error) {
        Manager *m = userdata;

        if (streq(property, "Version"))
                return sd_bus_message_append(reply, "s", OKG_VERSION);
        if (streq(property, "ProbeIntervalUSec"))
                return sd_bus_message_append(reply, "t",
                                             (uint64_t) m->config->interval_sec * USEC_PER_SEC);
        if (streq(property, "StartDelayUSec"))
                return sd_bus_message_append(reply, "t",
                                             (uint64_t) m->config->start_delay_sec * USEC_PER_SEC);
        return -EINVAL;
}

static int property_get_storage_pending(sd_bus *bus, const char *path, const char *interface,
                                        const char *property, sd_bus_message *reply,
                                        void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        return sd_bus_message_append(
                reply, "u",
                (uint32_t) (m->storage ? okg_storage_client_pending(m->storage) : 0));
}

static int method_probe_now(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        return sd_bus_reply_method_return(msg, "u", manager_probe_now(m));
}

static int method_list_endpoints(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        Manager *m = userdata;
        int r;

        r = sd_bus_message_new_method_return(msg, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "(uosssb)");
        if (r < 0)
                return r;
        for (size_t i = 0; i < m->n_endpoints; i++) {
                Endpoint *e = m->endpoints[i];
                r = sd_bus_message_append(reply, "(uosssb)", (uint32_t) e->index, e->path,
                                          e->config->url, strempty(e->tracker.state),
                                          probe_outcome_to_string(e->last_outcome),
                                          (int) e->tracker.failing);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int method_get_metrics(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        _cleanup_(freep) ProbeMetricsEndpoint *v = NULL;
        _cleanup_(freep) char *text = NULL;
        int r;

        v = calloc(m->n_endpoints ?: 1, sizeof(ProbeMetricsEndpoint));
        if (!v)
                return -ENOMEM;
        for (size_t i = 0; i < m->n_endpoints; i++) {
                Endpoint *e = m->endpoints[i];
                v[i] = (ProbeMetricsEndpoint) {
                        .config = e->config,
                        .state = e->tracker.state,
                        .probes = e->n_probes,
                        .failures = e->n_failures,
                        .state_changes = e->n_state_changes,
                        .failing = e->tracker.failing,
                };
        }
        r = probe_metrics_render(v, m->n_endpoints, &text);
        if (r < 0)
                return r;
        return sd_bus_reply_method_return(msg, "s", text);
}

static const sd_bus_vtable manager_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Version", "s", property_get_manager_const, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Endpoints", "u", okg_bus_property_get_size, offsetof(Manager, n_endpoints),
                        SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("ProbeIntervalUSec", "t", property_get_manager_const, 0,
                        SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("StartDelayUSec", "t", property_get_manager_const, 0,
                        SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("OpsState", "s", okg_bus_property_get_string, offsetof(Manager, ops_state),
                        SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("StorageWrites", "t", NULL, offsetof(Manager, storage_writes),
                        SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("StorageErrors", "t", NULL, offsetof(Manager, storage_errors),
                        SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("LastStorageError", "s", okg_bus_property_get_string,
                        offsetof(Manager, last_storage_error), SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("StoragePending", "u", property_get_storage_pending, 0, 0),

        SD_BUS_METHOD_WITH_ARGS("ProbeNow", SD_BUS_NO_ARGS, SD_BUS_RESULT("u", started),
                                method_probe_now, 0),
        SD_BUS_METHOD_WITH_ARGS("ListEndpoints", SD_BUS_NO_ARGS,
                                SD_BUS_RESULT("a(uosssb)", endpoints), method_list_endpoints, 0),
        SD_BUS_METHOD_WITH_ARGS("GetMetrics", SD_BUS_NO_ARGS, SD_BUS_RESULT("s", text),
                                method_get_metrics, 0),
        SD_BUS_SIGNAL_WITH_ARGS("StateChanged",
                                SD_BUS_ARGS("s", url, "s", old_state, "s", new_state), 0),
        SD_BUS_VTABLE_END,
};

int probe_bus_setup(sd_bus *bus, void *userdata) {
        Manager *m = userdata;
        int r;

        r = sd_bus_add_object_vtable(bus, NULL, OKG_PROBE_PATH, OKG_PROBE_IFACE, manager_vtable, m);
        if (r < 0)
                return r;
        for (size_t i = 0; i < m->n_endpoints; i++) {
                r = sd_bus_add_object_vtable(bus, NULL, m->endpoints[i]->path,
                                             OKG_PROBE_ENDPOINT_IFACE, endpoint_vtable,
                                             m->endpoints[i]);
                if (r < 0)
                        return r;
        }
        return 0;
}

void probe_bus_emit_endpoint_changed(Endpoint *e) {
        int r = okg_bus_emit_all_changed(e->manager->bus, e->path, OKG_PROBE_ENDPOINT_IFACE);
        if (r < 0)
                log_debug_errno(r, "Failed to announce property changes of %s: %m", e->path);
}

void probe_bus_emit_manager_changed(Manager *m) {
        int r = okg_bus_emit_all_changed(m->bus, OKG_PROBE_PATH, OKG_PROBE_IFACE);
        if (r < 0)
                log_debug_errno(r, "Failed to announce property changes of the manager: %m");
}

void probe_bus_emit_state_changed(Manager *m, Endpoint *e, const char *old_state,
                                  const char *new_state) {
        sd_bus *bus = okg_bus_get(m->bus);
        int r;

        if (!bus)
                return;
        r = sd_bus_emit_signal(bus, OKG_PROBE_PATH, OKG_PROBE_IFACE, "StateChanged", "sss",
                               e->config->url, strempty(old_state), strempty(new_state));
        if (r < 0)
                log_debug_errno(r, "Failed to emit StateChanged: %m");
}
