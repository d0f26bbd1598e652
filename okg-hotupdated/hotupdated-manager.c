/* okg-hotupdated's Manager: its lifetime (the handles it owns, started in order, freed in
 * reverse), the state every part reads (phase, STATUS=, READY=1, the history) and the
 * accessors of hotupdated-manager.h. The update itself is hotupdated-update.c, -pipeline.c and
 * -recovery.c; status and metrics hotupdated-report.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "hotupdated-download.h"
#include "hotupdated-update.h"
#include "log.h"
#include "okg-bus.h"
#include "okg-curl.h"
#include "okg-http-server.h"
#include "okg-storage-client.h"
#include "okg-util.h"

/* ---- the state every part reads ---- */

void hotupdate_now(char buf[HOTUPDATE_TIME_SIZE]) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        if (hotupdate_format_time((uint64_t) ts.tv_sec * USEC_PER_SEC +
                                          (uint64_t) ts.tv_nsec / 1000,
                                  buf) < 0)
                snprintf(buf, HOTUPDATE_TIME_SIZE, "1970-01-01T00:00:00.000Z");
}

void manager_set_phase(Manager *m, HotUpdatePhase p) {
        if (m->phase == p)
                return;
        m->phase = p;
        hotupdate_bus_emit_changed(m, m->bus);
}

const char *manager_current_version(Manager *m) {
        return m->current_in_place ? m->record.current.version : NULL;
}

void manager_notify_status(Manager *m) {
        const char *v = manager_current_version(m);

        if (m->update && update_origin_info(m->update->origin)->in_flight)
                (void) sd_notifyf(false, "STATUS=Updating to %s (%s)", m->update->p.version,
                                  hotupdate_phase_to_string(m->phase));
        else
                (void) sd_notifyf(false, "STATUS=Serving /hot-update on port %u; version %s",
                                  (unsigned) manager_http_port(m), v ?: "(none)");
}

void manager_send_ready(Manager *m) {
        if (m->ready)
                return;
        m->ready = true;
        (void) sd_notify(false, "READY=1");
        manager_notify_status(m);
        log_info("Ready: /hot-update on %s:%u, download folder %s, version %s.",
                 m->config->bind_address, (unsigned) manager_http_port(m), m->config->download_dir,
                 manager_current_version(m) ?: "(none)");
}

void manager_history_push(Manager *m, const HotUpdateResult *r) {
        HotUpdateResult copy;
        size_t slot;

        if (hotupdate_result_copy(r, &copy) < 0)
                return;
        if (m->n_history == HOTUPDATE_HISTORY_MAX) {
                hotupdate_result_done(&m->history[m->history_first]);
                m->history[m->history_first] = copy;
                m->history_first = (m->history_first + 1) % HOTUPDATE_HISTORY_MAX;
                return;
        }
        slot = (m->history_first + m->n_history) % HOTUPDATE_HISTORY_MAX;
        m->history[slot] = copy;
        m->n_history++;
}

/* ---- accessors ---- */

const HotUpdateConfig *manager_config(Manager *m) {
        return m->config;
}

sd_event *manager_event(Manager *m) {
        return m->event;
}

HotUpdatePhase manager_phase(Manager *m) {
        return m->phase;
}

const HotUpdateVersion *manager_current(Manager *m) {
        return &m->record.current;
}

bool manager_current_in_place(Manager *m) {
        return m->current_in_place;
}

const HotUpdateResult *manager_last_result(Manager *m) {
        return &m->record.last;
}


uint64_t manager_updates_total(Manager *m) {
        return m->updates_total;
}

OkgHttpServer *manager_http(Manager *m) {
        return m->http;
}

uint16_t manager_http_port(Manager *m) {
        return m->http ? okg_http_server_port(m->http) : m->config->port;
}


/* ---- lifetime ---- */

int manager_new(sd_event *e, HotUpdateConfig *config, Manager **ret) {
        _cleanup_(manager_freep) Manager *m = NULL;
        const char *s;

        /* Ours from here on, whatever happens: the caller passed it with TAKE_PTR(). */
        m = calloc(1, sizeof *m);
        if (!m) {
                hotupdate_config_free(config);
                return -ENOMEM;
        }
        m->config = config;
        m->event = sd_event_ref(e);
        m->dir_fd = -EBADF;
        s = getenv("OKG_SIDECARD_PID");
        if (s)
                m->exclude_tree = (pid_t) atoi(s);
        s = getenv("OKG_STATE_DIR");
        if (asprintf(&m->local_record_path, "%s/hotupdated-record.json",
                     isempty(s) ? "/var/lib/okg-sidecar" : s) < 0) {
                m->local_record_path = NULL;
                return -ENOMEM;
        }
        *ret = TAKE_PTR(m);
        return 0;
}

Manager *manager_free(Manager *m) {
        if (!m)
                return NULL;
        m->shutting_down = true;

        if (m->update) {
                Update *u = m->update;
                HotUpdateResult r = {};

                m->update = NULL;
                if (update_origin_info(u->origin)->in_flight && !u->finished)
                        log_notice("Stopping with the update to %s unfinished (%s); the file in "
                                   "place and the record are unchanged.",
                                   u->p.version, hotupdate_phase_to_string(m->phase));
                /* An update that already has its outcome (being recorded) reports it. */
                if (!u->finished)
                        (void) manager_refusal(m, OUTCOME_SHUTTING_DOWN,
                                               "okg-hotupdated stopped before the update finished",
                                               &u->p, &r);
                while (u->waiters) {
                        Waiter *w = u->waiters;
                        waiter_detach(w);
                        w->done(w, u->finished ? &u->result : &r, false);
                }
                hotupdate_result_done(&r);
                update_free(u);
        }
        m->fetch_timer = sd_event_source_disable_unref(m->fetch_timer);
        m->refetch_timer = sd_event_source_disable_unref(m->refetch_timer);
        m->storage = okg_storage_client_free(m->storage);
        m->http = okg_http_server_free(m->http);
        m->bus = okg_bus_free(m->bus);
        m->curl = curl_glue_free(m->curl);
        if (m->dir_fd >= 0)
                close(m->dir_fd);
        hotupdate_record_done(&m->record);
        for (size_t i = 0; i < m->n_history; i++)
                hotupdate_result_done(&m->history[(m->history_first + i) % HOTUPDATE_HISTORY_MAX]);
        hotupdate_config_free(m->config);
        sd_event_unref(m->event);
        free(m->local_record_path);
        free(m);
        return NULL;
}


int manager_start(Manager *m) {
        const HotUpdateConfig *c = m->config;
        _cleanup_(freep) char *created = NULL;
        int r;

        r = files_open_dir(c->download_dir, &m->dir_fd, &created);
        if (r < 0)
                return log_error_errno(r, "Failed to open the download folder %s: %m",
                                       c->download_dir);
        /* A folder appearing out of nowhere (the default /app/downloads, and /app) is said. */
        if (created && !c->download_dir_set)
                log_notice("downloadDir is not set: created the default download folder %s%s%s%s. "
                           "The game sees downloads only if it is a volume shared with the game "
                           "container; set downloadDir to that volume.",
                           c->download_dir, streq(created, c->download_dir) ? "" : " (and ",
                           streq(created, c->download_dir) ? "" : created,
                           streq(created, c->download_dir) ? "" : ")");
        else if (created)
                log_notice("Created the download folder %s (%s did not exist).", c->download_dir,
                           created);
        m->codings = download_decoder_codings();
        r = files_remove_stale(m->dir_fd);
        if (r > 0)
                log_info("Removed %d temp file(s) left in %s by an interrupted update.", r,
                         c->download_dir);

        r = curl_glue_new(m->event, &m->curl);
        if (r < 0)
                return log_error_errno(r, "Failed to set up libcurl: %m");
        r = hotupdate_bus_start(m, &m->bus);
        if (r < 0)
                return log_error_errno(r, "Failed to join the private bus: %m");
        r = okg_storage_client_new(m->event, m->bus, &m->storage);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the storage client: %m");
        r = hotupdate_http_start(m, &m->http);
        if (r < 0)
                return log_error_errno(r, "Failed to serve /hot-update on %s:%u: %m",
                                       c->bind_address, (unsigned) c->port);
        r = recovery_begin(m);
        if (r < 0)
                return log_error_errno(r, "Failed to start recovery: %m");
        return 0;
}
