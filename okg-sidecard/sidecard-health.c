/* /healthz and /readyz on healthPort, with a JSON body of per-daemon state. */
#include <string.h>

#include "log.h"
#include "macro.h"
#include "sidecard-manager.h"

static json_object *health_body(Manager *m, bool ok) {
        json_object *o = json_object_new_object(), *units = json_object_new_array();

        json_object_object_add(o, "status", json_object_new_string(ok ? "ok" : "unavailable"));
        json_object_object_add(o, "state", json_object_new_string(manager_state_to_string(m->state)));
        json_object_object_add(o, "waitingForGame",
                               json_object_new_boolean(m->state == MANAGER_WAITING_FOR_GAME));
        if (m->gate_timed_out)
                json_object_object_add(o, "gameWaitTimedOut", json_object_new_boolean(true));
        for (size_t i = 0; i < m->n_units; i++) {
                Unit *u = m->units[i];
                json_object *j = json_object_new_object();

                json_object_object_add(j, "name", json_object_new_string(u->name));
                json_object_object_add(j, "kind", json_object_new_string(unit_kind_to_string(u->kind)));
                json_object_object_add(j, "state", json_object_new_string(unit_state_to_string(u->state)));
                json_object_object_add(j, "ready", json_object_new_boolean(u->ready));
                json_object_object_add(j, "pid", json_object_new_int(u->pid > 0 ? u->pid : 0));
                json_object_object_add(j, "restarts", json_object_new_int((int) u->restarts));
                if (u->last_exit_text)
                        json_object_object_add(j, "lastExit", json_object_new_string(u->last_exit_text));
                json_object_array_add(units, j);
        }
        json_object_object_add(o, "units", units);
        return o;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls) {
        Manager *m = cls;
        json_object *body;
        enum MHD_Result ret;
        bool ok;

        if (!streq(method, "GET") && !streq(method, "HEAD"))
                return okg_http_respond_error(c, MHD_HTTP_METHOD_NOT_ALLOWED,
                                              "only GET and HEAD are served here");
        if (streq(url, "/healthz"))
                ok = manager_is_healthy(m);
        else if (streq(url, "/readyz"))
                ok = manager_is_ready(m);
        else
                return okg_http_respond_error(c, MHD_HTTP_NOT_FOUND,
                                              "unknown path; try /healthz or /readyz");
        body = health_body(m, ok);
        ret = okg_http_respond_json(c, ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, body);
        json_object_put(body);
        return ret;
}

int sidecard_health_start(Manager *m) {
        OkgHttpServer *s = NULL;
        int r;

        r = okg_http_server_new(m->event, m->config->health_address, m->config->health_port, NULL,
                                on_request, m, &s);
        if (r < 0)
                return log_error_errno(r, "Cannot serve health on %s:%u: %m",
                                       m->config->health_address, m->config->health_port);
        okg_http_server_free(m->health);
        m->health = s;
        log_info("Serving /healthz and /readyz on %s:%u.", m->config->health_address,
                 okg_http_server_port(s));
        return 0;
}
