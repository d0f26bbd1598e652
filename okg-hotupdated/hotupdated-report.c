/* okg-hotupdated's status and metrics: GET /hot-update and GetStatus (the version in place, the
 * update in flight, the last result, the history, the protections) and the Prometheus text of
 * GetMetrics. Reads the Manager, changes nothing. */
#include <stdbool.h>
#include <stdio.h>

#include "hotupdated-update.h"
#include "okg-metrics.h"

static void json_add(json_object *o, const char *key, json_object *v) {
        if (json_object_object_add(o, key, v) < 0)
                json_object_put(v);
}

void manager_protections(Manager *m, bool on[_PROTECTION_MAX]) {
        const HotUpdateConfig *c = m->config;
        hotupdate_policy_protections(&c->policy, c->auth_token_file, c->bind_address, on);
}

json_object *manager_status_json(Manager *m) {
        json_object *o = json_object_new_object(), *h, *p;
        bool on[_PROTECTION_MAX];
        const char *v = manager_current_version(m);

        if (!o)
                return NULL;
        json_add(o, "state", json_object_new_string(hotupdate_phase_to_string(m->phase)));
        json_add(o, "version", v ? json_object_new_string(v) : NULL);
        json_add(o, "current", m->current_in_place ? hotupdate_version_to_json(&m->record.current)
                                                   : NULL);
        json_add(o, "previous", hotupdate_version_is_set(&m->record.previous)
                                        ? hotupdate_version_to_json(&m->record.previous)
                                        : NULL);
        if (m->update && update_origin_info(m->update->origin)->in_flight) {
                json_object *f = json_object_new_object();
                if (f) {
                        json_add(f, "version", json_object_new_string(m->update->p.version));
                        json_add(f, "url", json_object_new_string(m->update->p.url));
                        json_add(f, "fileName", json_object_new_string(m->update->p.file_name));
                        json_add(f, "state",
                                 json_object_new_string(hotupdate_phase_to_string(m->phase)));
                }
                json_add(o, "inFlight", f);
        } else
                json_add(o, "inFlight", NULL);
        json_add(o, "lastResult",
                 m->record.last.at ? hotupdate_result_to_json(&m->record.last) : NULL);
        h = json_object_new_array();
        if (h)
                for (size_t i = m->n_history; i > 0; i--) {
                        size_t k = (m->history_first + i - 1) % HOTUPDATE_HISTORY_MAX;
                        json_object *e = hotupdate_result_to_json(&m->history[k]);
                        if (e && json_object_array_add(h, e) < 0)
                                json_object_put(e);
                }
        json_add(o, "history", h);
        manager_protections(m, on);
        p = json_object_new_object();
        for (size_t i = 0; p && i < _PROTECTION_MAX; i++)
                json_add(p, hotupdate_protection_names[i], json_object_new_boolean(on[i]));
        json_add(o, "protections", p);
        return o;
}

int manager_metrics_text(Manager *m, char **ret) {
        const char *version = manager_current_version(m);
        const char *info[] = { "version", version ?: "", NULL };
        bool on[_PROTECTION_MAX];
        OkgMetrics x;
        int r;

        r = okg_metrics_begin(&x);
        if (r < 0)
                return r;
        okg_metrics_family(&x, "okg_sidecar_hotupdate_total", "counter",
                           "Hot-update requests by result (the state in the answer), refusals included.");
        for (int o = 0; o < _OUTCOME_MAX; o++) {
                const char *l[] = { "result", hotupdate_outcome_info((HotUpdateOutcome) o)->state, NULL };
                okg_metrics_sample(&x, "okg_sidecar_hotupdate_total", l, (double) m->outcomes[o]);
        }
        okg_metrics_family(&x, "okg_sidecar_hotupdate_downloads_total", "counter",
                           "Downloads started and ended, successful or not.");
        okg_metrics_sample(&x, "okg_sidecar_hotupdate_downloads_total", NULL, (double) m->downloads);
        okg_metrics_family(&x, "okg_sidecar_hotupdate_download_bytes_total", "counter",
                           "Bytes received by downloads.");
        okg_metrics_sample(&x, "okg_sidecar_hotupdate_download_bytes_total", NULL,
                           (double) m->download_bytes);
        okg_metrics_family(&x, "okg_sidecar_hotupdate_download_seconds_total", "counter",
                           "Time spent downloading.");
        okg_metrics_sample(&x, "okg_sidecar_hotupdate_download_seconds_total", NULL,
                           (double) m->download_usec / 1e6);
        okg_metrics_family(&x, "okg_sidecar_hotupdate_version_info", "gauge",
                           "The version in place (empty before the first update).");
        okg_metrics_sample(&x, "okg_sidecar_hotupdate_version_info", info, 1);
        okg_metrics_family(&x, "okg_sidecar_hotupdate_protection", "gauge",
                           "1 for each hot-update protection that is on (docs/hot-update.md).");
        manager_protections(m, on);
        for (size_t i = 0; i < _PROTECTION_MAX; i++) {
                const char *l[] = { "protection", hotupdate_protection_names[i], NULL };
                okg_metrics_sample(&x, "okg_sidecar_hotupdate_protection", l, on[i] ? 1 : 0);
        }
        return okg_metrics_end(&x, ret);
}
