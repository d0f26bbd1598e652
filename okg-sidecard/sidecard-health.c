/* /healthz and /readyz on healthPort, with a JSON body of per-daemon state, and /metrics: the
 * suite's figures in the Prometheus text format, gathered from every daemon's GetMetrics(). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"
#include "okg-build-config.h"
#include "okg-bus-api.h"
#include "okg-event.h"
#include "okg-list.h"
#include "okg-metrics.h"
#include "sidecard-manager.h"

#define SCRAPE_TIMEOUT_USEC (2 * USEC_PER_SEC)
#define MAX_SOURCES 8

/* One /metrics request waiting for the daemons' answers, its connection suspended. */
struct Scrape {
        Manager *manager;
        LIST_FIELDS(Scrape, scrapes);
        struct MHD_Connection *connection;
        sd_bus_slot *slots[MAX_SOURCES];
        char *names[MAX_SOURCES];
        char *texts[MAX_SOURCES];
        size_t n_sources;
        unsigned pending;
        sd_event_source *timeout;
        bool done;
};

static Scrape *scrape_free(Scrape *sc) {
        Manager *m;

        if (!sc)
                return NULL;
        m = sc->manager;
        if (LIST_LINKED(scrapes, m->scrapes, sc))
                LIST_REMOVE(scrapes, m->scrapes, sc);
        for (size_t i = 0; i < sc->n_sources; i++) {
                sd_bus_slot_unref(sc->slots[i]);
                free(sc->names[i]);
                free(sc->texts[i]);
        }
        sd_event_source_disable_unref(sc->timeout);
        free(sc);
        return NULL;
}

static void scrape_finish(Scrape *sc) {
        if (sc->done)
                return;
        sc->done = true;
        sc->timeout = sd_event_source_disable_unref(sc->timeout);
        MHD_resume_connection(sc->connection);
        okg_http_server_kick(sc->manager->health);
}

static int on_scrape_reply(sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Scrape *sc = userdata;
        sd_bus_slot *current = sd_bus_get_current_slot(sd_bus_message_get_bus(reply));
        const sd_bus_error *e = sd_bus_message_get_error(reply);
        const char *text = NULL;

        for (size_t i = 0; i < sc->n_sources; i++) {
                if (!sc->slots[i] || sc->slots[i] != current)
                        continue;
                if (!e && sd_bus_message_read(reply, "s", &text) >= 0)
                        sc->texts[i] = strdup(text);
                else
                        log_debug("No metrics from %s: %s", sc->names[i], e ? strempty(e->message) : "bad reply");
                sc->slots[i] = sd_bus_slot_unref(sc->slots[i]);
                break;
        }
        if (sc->pending > 0 && --sc->pending == 0)
                scrape_finish(sc);
        return 0;
}

static int on_scrape_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        scrape_finish(userdata);
        return 0;
}

static void unit_samples(Manager *m, OkgMetrics *x, const char *name, int which) {
        for (size_t i = 0; i < m->n_units; i++) {
                Unit *u = m->units[i];
                const char *l[] = { "unit", u->name, NULL };
                double v = which == 0 ? (u->pid > 0) : which == 1 ? u->ready : (double) u->restarts;
                okg_metrics_sample(x, name, l, v);
        }
}

static void own_metrics(Manager *m, Scrape *sc, OkgMetrics *x) {
        const char *info[] = { "version", OKG_VERSION, NULL };

        okg_metrics_family(x, "okg_sidecar_info", "gauge", "The suite's version.");
        okg_metrics_sample(x, "okg_sidecar_info", info, 1);
        okg_metrics_family(x, "okg_sidecar_healthy", "gauge", "1 when /healthz answers 200.");
        okg_metrics_sample(x, "okg_sidecar_healthy", NULL, manager_is_healthy(m));
        okg_metrics_family(x, "okg_sidecar_ready", "gauge", "1 when /readyz answers 200.");
        okg_metrics_sample(x, "okg_sidecar_ready", NULL, manager_is_ready(m));
        okg_metrics_family(x, "okg_sidecar_unit_up", "gauge",
                           "1 when the daemon's process runs (bus, storage, each plugin).");
        unit_samples(m, x, "okg_sidecar_unit_up", 0);
        okg_metrics_family(x, "okg_sidecar_unit_ready", "gauge", "1 when the daemon reported READY=1.");
        unit_samples(m, x, "okg_sidecar_unit_ready", 1);
        okg_metrics_family(x, "okg_sidecar_plugin_restarts_total", "counter",
                           "Automatic restarts of each daemon by okg-sidecard.");
        unit_samples(m, x, "okg_sidecar_plugin_restarts_total", 2);
        okg_metrics_family(x, "okg_sidecar_metrics_source_up", "gauge",
                           "1 when the daemon answered GetMetrics for this scrape.");
        for (size_t i = 0; sc && i < sc->n_sources; i++) {
                const char *l[] = { "source", sc->names[i], NULL };
                okg_metrics_sample(x, "okg_sidecar_metrics_source_up", l, sc->texts[i] != NULL);
        }
}

static enum MHD_Result respond_metrics(Manager *m, struct MHD_Connection *c, Scrape *sc) {
        _cleanup_(freep) char *text = NULL;
        OkgMetrics x;

        if (okg_metrics_begin(&x) < 0)
                return MHD_NO;
        own_metrics(m, sc, &x);
        for (size_t i = 0; sc && i < sc->n_sources; i++)
                if (sc->texts[i])
                        fputs(sc->texts[i], x.f);
        if (okg_metrics_end(&x, &text) < 0)
                return MHD_NO;
        return okg_http_respond(c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", text,
                                strlen(text));
}

/* Asks every running daemon for its figures. The scrape is done at once when nobody could be
 * asked; NULL only when memory ran out. */
static Scrape *scrape_start(Manager *m, struct MHD_Connection *c) {
        sd_bus *bus = okg_bus_get(m->bus);
        Scrape *sc = calloc(1, sizeof(Scrape));

        if (!sc)
                return NULL;
        sc->manager = m;
        sc->connection = c;
        LIST_PREPEND(scrapes, m->scrapes, sc);
        for (size_t i = 0; bus && i < m->n_units && sc->n_sources < MAX_SOURCES; i++) {
                Unit *u = m->units[i];
                const char *name = u->kind == UNIT_STORAGE  ? OKG_STORAGE_NAME
                                   : u->kind == UNIT_PLUGIN ? u->type->bus_name
                                                            : NULL;
                _cleanup_(freep) char *path = NULL;
                size_t k = sc->n_sources;

                if (!name || u->pid <= 0 || !u->ready)
                        continue;
                /* io.kruise.game.Probe1 lives at /io/kruise/game/Probe1. */
                if (asprintf(&path, "/%s", name) < 0)
                        break;
                for (char *p = path; *p; p++)
                        if (*p == '.')
                                *p = '/';
                sc->names[k] = strdup(u->name);
                if (!sc->names[k])
                        break;
                sc->n_sources++;
                if (sd_bus_call_method_async(bus, &sc->slots[k], name, path, name, "GetMetrics",
                                             on_scrape_reply, sc, "") >= 0)
                        sc->pending++;
        }
        if (sc->pending == 0 ||
            okg_timer_arm(m->event, &sc->timeout, SCRAPE_TIMEOUT_USEC, 0, on_scrape_timeout, sc,
                          "metrics-scrape") < 0) {
                for (size_t i = 0; i < sc->n_sources; i++)
                        sc->slots[i] = sd_bus_slot_unref(sc->slots[i]);
                sc->pending = 0;
                sc->done = true;
        }
        return sc;
}

void sidecard_health_stop(Manager *m) {
        while (m->scrapes)
                scrape_free(m->scrapes);
        m->health = okg_http_server_free(m->health);
        m->health_serving = mfree(m->health_serving);
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
        if (streq(url, "/metrics")) {
                Scrape *sc = *con_cls;
                if (!sc) {
                        sc = scrape_start(m, c);
                        if (!sc)
                                return okg_http_respond_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
                                                              "out of memory");
                        if (!sc->done) {
                                *con_cls = sc;
                                MHD_suspend_connection(c);
                                return MHD_YES;
                        }
                }
                *con_cls = NULL;
                ret = respond_metrics(m, c, sc);
                scrape_free(sc);
                return ret;
        }
        if (streq(url, "/healthz"))
                ok = manager_is_healthy(m);
        else if (streq(url, "/readyz"))
                ok = manager_is_ready(m);
        else
                return okg_http_respond_error(c, MHD_HTTP_NOT_FOUND,
                                              "unknown path; try /healthz, /readyz or /metrics");
        body = sidecard_health_json(m->state, m->gate_timed_out, m->units, m->n_units, ok);
        ret = okg_http_respond_json(c, ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, body);
        json_object_put(body);
        return ret;
}

/* An address as it is written before ":PORT": an IPv6 one in brackets. Three printf
 * arguments, for "%s%s%s". */
#define BRACKETS_IF_V6(a) strchr((a), ':') ? "[" : "", (a), strchr((a), ':') ? "]" : ""

int sidecard_health_listen(Manager *m) {
        int fd, r;

        r = okg_http_listen(m->config->health_address, m->config->health_port, &fd);
        if (r < 0)
                return log_error_errno(r, "Cannot serve health on %s%s%s:%u: %m",
                                       BRACKETS_IF_V6(m->config->health_address),
                                       m->config->health_port);
        if (m->health_fd >= 0)
                close(m->health_fd);
        m->health_fd = fd;
        return 0;
}

int sidecard_health_serve(Manager *m) {
        bool v6 = strchr(m->config->health_address, ':');
        OkgHttpServer *s = NULL;
        int r;

        r = okg_http_server_new_listening(m->event, TAKE_FD(m->health_fd), NULL, on_request, m, &s);
        if (r < 0)
                return log_error_errno(r, "Cannot serve health on %s%s%s:%u: %m",
                                       BRACKETS_IF_V6(m->config->health_address),
                                       m->config->health_port);
        /* Scrapes in flight belong to the old server's connections. */
        while (m->scrapes)
                scrape_free(m->scrapes);
        okg_http_server_free(m->health);
        m->health = s;
        free(m->health_serving);
        if (asprintf(&m->health_serving, "%s%s%s:%u", v6 ? "[" : "", m->config->health_address,
                     v6 ? "]" : "", okg_http_server_port(s)) < 0)
                m->health_serving = NULL;
        log_info("Serving /healthz and /readyz on %s.", strempty(m->health_serving));
        return 0;
}

int sidecard_health_start(Manager *m) {
        int r;

        r = sidecard_health_listen(m);
        if (r < 0)
                return r;
        return sidecard_health_serve(m);
}
