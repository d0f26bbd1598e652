/* io.kruise.game.ServiceQuality1: the plugin's object (which source won and why, who writes
 * the conditions) and one object per probe, its condition and its last result
 * (docs/bus-api.md); and the figures for /metrics. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "macro.h"
#include "okg-build-config.h"
#include "okg-metrics.h"
#include "probed-sq-manager.h"

static const char *handler_name(SqHandler h) {
        return h == SQ_HANDLER_HTTP ? "httpGet" : h == SQ_HANDLER_TCP ? "tcpSocket" : "exec";
}

static const char *runner_status(const SqRunner *r) {
        return !r->tracker.has_result ? "Unknown" : r->tracker.status ? "True" : "False";
}

static int get_runner_prop(sd_bus *bus, const char *path, const char *interface,
                           const char *property, sd_bus_message *reply, void *userdata,
                           sd_bus_error *error) {
        SqRunner *r = userdata;
        const SqProbe *p = r->probe;

        if (streq(property, "Name"))
                return sd_bus_message_append(reply, "s", p->name);
        if (streq(property, "ConditionType"))
                return sd_bus_message_append(reply, "s", p->condition_type);
        if (streq(property, "Container"))
                return sd_bus_message_append(reply, "s", p->container);
        if (streq(property, "Handler"))
                return sd_bus_message_append(reply, "s", handler_name(p->handler));
        if (streq(property, "Status"))
                return sd_bus_message_append(reply, "s", runner_status(r));
        if (streq(property, "Source"))
                return sd_bus_message_append(reply, "s", strempty(r->manager->source));
        if (streq(property, "Written"))
                return sd_bus_message_append(reply, "b", r->sent->n > 0);
        if (streq(property, "PeriodSeconds"))
                return sd_bus_message_append(reply, "u", sq_probe_period(p));
        if (streq(property, "TimeoutSeconds"))
                return sd_bus_message_append(reply, "u", sq_probe_timeout(p));
        return -EINVAL;
}

static const sd_bus_vtable probe_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Name", "s", get_runner_prop, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("ConditionType", "s", get_runner_prop, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Container", "s", get_runner_prop, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Handler", "s", get_runner_prop, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("PeriodSeconds", "u", get_runner_prop, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("TimeoutSeconds", "u", get_runner_prop, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Target", "s", okg_bus_property_get_string, offsetof(SqRunner, target),
                        SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Status", "s", get_runner_prop, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Message", "s", okg_bus_property_get_string,
                        offsetof(SqRunner, tracker.message), SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Source", "s", get_runner_prop, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Written", "b", get_runner_prop, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("LastError", "s", okg_bus_property_get_string, offsetof(SqRunner, last_error),
                        SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("LastProbeMessage", "s", okg_bus_property_get_string, offsetof(SqRunner, last_message),
                        SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("LastProbeTime", "t", NULL, offsetof(SqRunner, last_probe_realtime),
                        SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Probes", "t", NULL, offsetof(SqRunner, n_probes),
                        SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Failures", "t", NULL, offsetof(SqRunner, n_failures),
                        SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Writes", "t", NULL, offsetof(SqRunner, n_writes),
                        SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_VTABLE_END,
};

static int probe_find(sd_bus *bus, const char *path, const char *interface, void *userdata,
                      void **found, sd_bus_error *error) {
        SqManager *m = userdata;
        for (size_t i = 0; i < m->n_runners; i++)
                if (streq(m->runners[i]->path, path)) {
                        *found = m->runners[i];
                        return 1;
                }
        return 0;
}

static int probe_enumerate(sd_bus *bus, const char *prefix, void *userdata, char ***nodes,
                           sd_bus_error *error) {
        SqManager *m = userdata;
        char **l = calloc(m->n_runners + 1, sizeof(char *));
        if (!l)
                return -ENOMEM;
        for (size_t i = 0; i < m->n_runners; i++)
                if (!(l[i] = strdup(m->runners[i]->path))) {
                        strv_free(l);
                        return -ENOMEM;
                }
        *nodes = l;
        return 0;
}

/* The markers are shown while the pod names them and the config asks for them. */
static bool wants_ppm_list(const SqManager *m) {
        return m->config->enabled && m->have_pod && !isempty(m->pod.ppm_list) &&
               (m->config->source == SQ_SOURCE_AUTO || m->config->source == SQ_SOURCE_PODPROBEMARKER);
}

static int get_enabled(sd_bus *bus, const char *path, const char *interface, const char *property,
                       sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        SqManager *m = userdata;
        return sd_bus_message_append(reply, "b", m->config->enabled);
}

static int get_ppms(sd_bus *bus, const char *path, const char *interface, const char *property,
                    sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        SqManager *m = userdata;
        int r;

        r = sd_bus_message_open_container(reply, 'a', "(ss)");
        for (size_t i = 0; r >= 0 && wants_ppm_list(m) && i < m->n_ppms; i++)
                r = sd_bus_message_append(reply, "(ss)", m->ppms[i].name, m->ppms[i].state);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        return r;
}

static int method_list_probes(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        SqManager *m = userdata;
        int r;

        r = sd_bus_message_new_method_return(msg, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "(osssss)");
        for (size_t i = 0; r >= 0 && i < m->n_runners; i++) {
                SqRunner *x = m->runners[i];
                r = sd_bus_message_append(reply, "(osssss)", x->path, x->probe->name,
                                          x->probe->condition_type, runner_status(x),
                                          strempty(x->tracker.message), strempty(x->last_error));
        }
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int method_probe_now(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        sq_manager_choose_source(userdata);
        return sd_bus_reply_method_return(msg, "u", sq_manager_probe_now(userdata));
}

static int method_get_metrics(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_(freep) char *text = NULL;
        int r = sq_metrics_render(userdata, &text);
        if (r < 0)
                return r;
        return sd_bus_reply_method_return(msg, "s", text);
}

static const sd_bus_vtable manager_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Enabled", "b", get_enabled, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Source", "s", okg_bus_property_get_string, offsetof(SqManager, source),
                        SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("SourceReason", "s", okg_bus_property_get_string, offsetof(SqManager, source_reason),
                        SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("ProbesError", "s", okg_bus_property_get_string, offsetof(SqManager, probes_error),
                        SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("PodError", "s", okg_bus_property_get_string, offsetof(SqManager, pod_error),
                        SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Writer", "s", okg_bus_property_get_string, offsetof(SqManager, writer),
                        SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("WriterReason", "s", okg_bus_property_get_string, offsetof(SqManager, writer_reason),
                        SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Probes", "u", okg_bus_property_get_size, offsetof(SqManager, n_runners),
                        SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("PodProbeMarkers", "a(ss)", get_ppms, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("ConditionWrites", "t", NULL, offsetof(SqManager, condition_writes),
                        SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("StorageErrors", "t", NULL, offsetof(SqManager, storage_errors),
                        SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("LastStorageError", "s", okg_bus_property_get_string,
                        offsetof(SqManager, last_storage_error), SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_METHOD_WITH_ARGS("ListProbes", SD_BUS_NO_ARGS,
                                SD_BUS_RESULT("a(osssss)", probes), method_list_probes, 0),
        SD_BUS_METHOD_WITH_ARGS("ProbeNow", SD_BUS_NO_ARGS, SD_BUS_RESULT("u", started),
                                method_probe_now, 0),
        SD_BUS_METHOD_WITH_ARGS("GetMetrics", SD_BUS_NO_ARGS, SD_BUS_RESULT("s", text),
                                method_get_metrics, 0),
        SD_BUS_VTABLE_END,
};

/* Storage1's PropertiesChanged: a new PodResourceVersion means a new pod to read. */
static int on_storage_changed(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        SqManager *m = userdata;
        const char *iface, *name;
        bool hit = false;
        int r;

        r = sd_bus_message_read(msg, "s", &iface);
        if (r < 0 || !streq(iface, OKG_STORAGE_IFACE))
                return 0;
        r = sd_bus_message_enter_container(msg, 'a', "{sv}");
        while (r > 0 && (r = sd_bus_message_enter_container(msg, 'e', "sv")) > 0) {
                if (sd_bus_message_read(msg, "s", &name) < 0)
                        return 0;
                if (streq(name, "PodResourceVersion") || streq(name, "PodProbeMarkersVersion"))
                        hit = true;
                if (sd_bus_message_skip(msg, "v") < 0 || sd_bus_message_exit_container(msg) < 0)
                        return 0;
        }
        if (r >= 0 && sd_bus_message_exit_container(msg) >= 0 &&
            sd_bus_message_enter_container(msg, 'a', "s") > 0)
                while (sd_bus_message_read(msg, "s", &name) > 0)
                        if (streq(name, "PodResourceVersion") || streq(name, "PodProbeMarkersVersion"))
                                hit = true;
        if (hit)
                sq_manager_refresh(m);
        return 0;
}

int sq_bus_setup(sd_bus *bus, void *userdata) {
        SqManager *m = userdata;
        int r;

        r = sd_bus_add_object_vtable(bus, NULL, SQ_BUS_PATH, SQ_BUS_IFACE, manager_vtable, m);
        if (r >= 0)
                r = sd_bus_add_fallback_vtable(bus, NULL, SQ_BUS_PROBE_PREFIX, SQ_BUS_PROBE_IFACE,
                                               probe_vtable, probe_find, m);
        if (r >= 0)
                r = sd_bus_add_node_enumerator(bus, NULL, SQ_BUS_PROBE_PREFIX, probe_enumerate, m);
        if (r >= 0)
                r = sd_bus_add_object_manager(bus, NULL, SQ_BUS_PATH);
        if (r >= 0)
                r = sd_bus_match_signal_async(bus, NULL, OKG_STORAGE_NAME, OKG_STORAGE_PATH,
                                              "org.freedesktop.DBus.Properties",
                                              "PropertiesChanged", on_storage_changed, NULL, m);
        if (r >= 0)
                r = sd_bus_match_signal_async(bus, NULL, OKG_STORAGE_NAME, OKG_STORAGE_PATH,
                                              OKG_STORAGE_IFACE, "Acknowledged",
                                              sq_manager_on_acknowledged, NULL, m);
        return r;
}

void sq_bus_connected(OkgBus *b, bool reconnect, void *userdata) {
        SqManager *m = userdata;
        /* The pod may have changed while the bus was away. */
        if (reconnect)
                sq_manager_refresh(m);
}

void sq_bus_emit_manager_changed(SqManager *m) {
        int r = okg_bus_emit_all_changed(m->bus, SQ_BUS_PATH, SQ_BUS_IFACE);
        if (r < 0)
                log_debug_errno(r, "Failed to announce property changes: %m");
}

void sq_bus_emit_runner_changed(SqRunner *x) {
        int r = okg_bus_emit_all_changed(x->manager->bus, x->path, SQ_BUS_PROBE_IFACE);
        if (r < 0)
                log_debug_errno(r, "Failed to announce property changes of %s: %m", x->path);
}

/* A counter family with one sample per probe: the runner's uint64_t at offset. Labelled by
 * the condition type too: two PodProbeMarkers may name their probes alike, but a list never
 * holds a condition type twice, so the series are distinct. */
static void per_probe(OkgMetrics *x, SqManager *m, const char *name, const char *help,
                      size_t offset) {
        okg_metrics_family(x, name, "counter", help);
        for (size_t i = 0; i < m->n_runners; i++) {
                const char *l[] = { "probe", m->runners[i]->probe->name, "condition",
                                    m->runners[i]->probe->condition_type, NULL };
                okg_metrics_sample(x, name, l,
                                   (double) *(const uint64_t *) ((const char *) m->runners[i] + offset));
        }
}

int sq_metrics_render(SqManager *m, char **ret) {
        OkgMetrics x = {};
        const char *info[] = { "source", strempty(m->source), "reason", strempty(m->source_reason),
                               "writer", strempty(m->writer), NULL };
        int r;

        r = okg_metrics_begin(&x);
        if (r < 0)
                return r;
        okg_metrics_family(&x, "okg_sidecar_service_quality_info", "gauge",
                           "Where the probes come from and who writes the conditions, and why.");
        okg_metrics_sample(&x, "okg_sidecar_service_quality_info", info, 1);
        okg_metrics_family(&x, "okg_sidecar_service_quality_podprobemarker", "gauge",
                           "The PodProbeMarkers the pod names and what okg-storaged knows of each "
                           "(found, notfound, error, pending).");
        for (size_t i = 0; wants_ppm_list(m) && i < m->n_ppms; i++) {
                const char *l[] = { "name", m->ppms[i].name, "state", m->ppms[i].state, NULL };
                okg_metrics_sample(&x, "okg_sidecar_service_quality_podprobemarker", l, 1);
        }
        okg_metrics_family(&x, "okg_sidecar_service_quality_probes", "gauge", "Probes being run.");
        okg_metrics_sample(&x, "okg_sidecar_service_quality_probes", NULL, (double) m->n_runners);
        okg_metrics_family(&x, "okg_sidecar_service_quality_condition_writes_total", "counter",
                           "Condition writes handed to okg-storaged.");
        okg_metrics_sample(&x, "okg_sidecar_service_quality_condition_writes_total", NULL,
                           (double) m->condition_writes);
        okg_metrics_family(&x, "okg_sidecar_service_quality_condition", "gauge",
                           "A probe's result: 1 True, 0 False; absent until the first result.");
        for (size_t i = 0; i < m->n_runners; i++) {
                SqRunner *q = m->runners[i];
                const char *l[] = { "probe", q->probe->name, "condition", q->probe->condition_type,
                                    NULL };
                if (q->tracker.has_result)
                        okg_metrics_sample(&x, "okg_sidecar_service_quality_condition", l,
                                           q->tracker.status);
        }
        per_probe(&x, m, "okg_sidecar_service_quality_probes_total", "Probes run.",
                  offsetof(SqRunner, n_probes));
        per_probe(&x, m, "okg_sidecar_service_quality_probe_failures_total",
                  "Probes that failed or gave no result.", offsetof(SqRunner, n_failures));
        return okg_metrics_end(&x, ret);
}
