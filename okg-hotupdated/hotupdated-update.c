/* One update and the steps a request and the recovery share; see hotupdated-update.h. The
 * differences between the two origins are data (update_origin_info()), not branches here. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hotupdated-update.h"
#include "log.h"
#include "okg-event.h"
#include "okg-json.h"
#include "okg-storage-client.h"
#include "okg-util.h"

#define RECORD_ACCEPT_TIMEOUT_USEC (5 * USEC_PER_SEC)

/* ---- lifetime ---- */

Update *update_new(Manager *m, UpdateOrigin origin) {
        Update *u = calloc(1, sizeof *u);

        if (!u)
                return NULL;
        u->m = m;
        u->origin = origin;
        u->tmp = TMP_FILE_NULL;
        job_init(&u->job, m->curl, m->config, m->codings);
        return u;
}

Update *update_free(Update *u) {
        if (!u)
                return NULL;
        job_stop(&u->job);
        files_tmp_discard(u->m->dir_fd, &u->tmp);
        sd_event_source_disable_unref(u->defer);
        sd_event_source_disable_unref(u->timer);
        free(u->procs);
        hotupdate_params_done(&u->p);
        hotupdate_version_done(&u->applied);
        hotupdate_result_done(&u->result);
        free(u);
        return NULL;
}

void waiter_link(Update *u, Waiter *w) {
        w->update = u;
        LIST_PREPEND(waiters, u->waiters, w);
}

void waiter_detach(Waiter *w) {
        if (!w || !w->update)
                return;
        LIST_REMOVE(waiters, w->update->waiters, w);
        w->update = NULL;
}

void update_complete(Update *u, bool recorded) {
        Manager *m = u->m;

        if (m->update == u)
                m->update = NULL;
        while (u->waiters) {
                Waiter *w = u->waiters;
                waiter_detach(w);
                w->done(w, &u->result, recorded);
        }
        if (update_origin_info(u->origin)->sends_ready)
                manager_send_ready(m);
        update_free(u);
        m->phase = PHASE_IDLE;
        hotupdate_bus_emit_changed(m, m->bus);
        manager_notify_status(m);
}

int update_arm_timer(Update *u, uint64_t usec, sd_event_time_handler_t cb) {
        /* Each step has its own callback: a new source rather than the old one moved. */
        u->timer = sd_event_source_disable_unref(u->timer);
        return okg_timer_arm(u->m->event, &u->timer, usec, 0, cb, u, NULL);
}

/* ---- recording ---- */

static void on_annotation_written(int error, const char *message, uint64_t seq, void *userdata) {
        if (error < 0 && error != -ECANCELED)
                log_warning_errno(error, "okg-storaged refused the result annotation: %s",
                                  message ?: "(no message)");
}

static void on_event_posted(int error, const char *message, uint64_t seq, void *userdata) {
        if (error < 0 && error != -ECANCELED)
                log_debug_errno(error, "okg-storaged refused the event: %s", strempty(message));
}

static void on_record_written(int error, const char *message, uint64_t seq, void *userdata) {
        Manager *m = userdata;

        m->record_done++;
        if (m->shutting_down)
                return;
        if (error < 0)
                log_warning_errno(error, "okg-storaged refused the recovery record: %s",
                                  message ?: "(no message)");
        if (m->update && m->update->finished && m->record_done >= m->update->record_ticket)
                update_complete(m->update, error >= 0);
}

static int on_record_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        Update *u = userdata;

        log_warning("okg-storaged has not accepted the record of %s within %" PRIu64
                    " s; answering now, the write stays queued.",
                    strempty(u->result.version), RECORD_ACCEPT_TIMEOUT_USEC / USEC_PER_SEC);
        update_complete(u, false);
        return 0;
}

/* Annotation, record and event, in this order; the answer waits for the record. */
static int record_outcome(Manager *m, Update *u) {
        _cleanup_(freep) char *annotation = NULL, *record = NULL;
        const HotUpdateOutcomeInfo *info = hotupdate_outcome_info(u->result.outcome);
        int r;

        r = hotupdate_annotation_format(&u->result, &annotation);
        if (r < 0)
                return r;
        r = hotupdate_record_format(&m->record, &record);
        if (r < 0)
                return r;
        /* Before anyone is told: okg-storaged may not have the record for a while (its queue is
         * in our memory until it accepts), and a restart must not go back behind an answer. */
        r = okg_write_file_atomic(m->local_record_path, record, strlen(record), 0600);
        if (r < 0)
                log_warning_errno(r, "Cannot keep the record in %s: %m", m->local_record_path);

        OkgStrPair a = { m->config->annotation_key, annotation };
        r = okg_storage_set_pod_metadata(m->storage, NULL, 0, &a, 1, on_annotation_written, m);
        if (r < 0)
                return r;
        r = okg_storage_put_record(m->storage, record, on_record_written, m);
        if (r < 0)
                return r;
        u->record_ticket = ++m->record_sent;

        _cleanup_(freep) char *text = NULL;
        if (asprintf(&text, "%s %s: %s", info->state, strempty(u->result.version),
                     strempty(u->result.message)) >= 0)
                (void) okg_storage_post_event(m->storage, info->success ? "Normal" : "Warning",
                                              info->success ? "HotUpdate" : "HotUpdateFailed",
                                              text, on_event_posted, m);
        return 0;
}

static void update_finishv(Update *u, HotUpdateOutcome o, const char *prefix, const char *fmt,
                           va_list ap) _printf_(4, 0);
static void update_finishv(Update *u, HotUpdateOutcome o, const char *prefix, const char *fmt,
                           va_list ap) {
        Manager *m = u->m;
        const HotUpdateOutcomeInfo *info = hotupdate_outcome_info(o);
        const UpdateOriginInfo *origin = update_origin_info(u->origin);
        char message[MSG_MAX], at[HOTUPDATE_TIME_SIZE];
        size_t len = 0;
        const char *sha;
        int r;

        message[0] = 0;
        if (prefix)
                len = (size_t) snprintf(message, sizeof message, "%s: ", prefix);
        if (len < sizeof message)
                vsnprintf(message + len, sizeof message - len, fmt, ap);

        job_stop(&u->job);
        files_tmp_discard(m->dir_fd, &u->tmp);
        u->timer = sd_event_source_disable_unref(u->timer);
        hotupdate_now(at);

        sha = u->sha256[0] ? u->sha256 : u->p.sha256;
        HotUpdateResult res = {
                .version = u->p.version,
                .url = u->p.url,
                .sha256 = (char *) sha,
                .file_name = u->p.file_name,
                .outcome = o,
                .message = message,
                .at = at,
                .current_version = (char *) manager_current_version(m),
        };
        hotupdate_result_done(&u->result);
        if (hotupdate_result_copy(&res, &u->result) < 0) {
                log_oom();
                u->result = (HotUpdateResult) { .outcome = o };
        }
        u->finished = true;

        log_full(info->success ? LOG_INFO : origin->failure_log_level, "%s %s: %s: %s",
                 origin->log_what, strempty(u->p.version), info->state, message);

        manager_history_push(m, &u->result);
        m->updates_total++;
        if (u->result.outcome >= 0 && u->result.outcome < _OUTCOME_MAX)
                m->outcomes[u->result.outcome]++;
        hotupdate_bus_emit_finished(m, m->bus, &u->result);

        if (!info->recorded) {
                update_complete(u, false);
                return;
        }
        hotupdate_result_done(&m->record.last);
        if (hotupdate_result_copy(&u->result, &m->record.last) < 0)
                log_oom();
        manager_set_phase(m, PHASE_RECORDING);
        r = record_outcome(m, u);
        if (r >= 0)
                r = update_arm_timer(u, RECORD_ACCEPT_TIMEOUT_USEC, on_record_timeout);
        if (r < 0) {
                log_error_errno(r, "Failed to record the outcome: %m");
                update_complete(u, false);
        }
}

void update_finish(Update *u, HotUpdateOutcome o, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        update_finishv(u, o, NULL, fmt, ap);
        va_end(ap);
}

void update_fail(Update *u, HotUpdateOutcome o, bool name_it, const char *fmt, ...) {
        bool folded;
        HotUpdateOutcome reported = update_origin_failure(u->origin, o, &folded);
        va_list ap;

        va_start(ap, fmt);
        update_finishv(u, reported, folded && name_it ? hotupdate_outcome_to_string(o) : NULL,
                       fmt, ap);
        va_end(ap);
}

/* ---- the game process ---- */

const char *update_signal_name(Update *u) {
        return u->m->config->signal_name ?: "SIGHUP";
}

int update_game_lookup(Update *u, HotUpdateOutcome *ret_outcome, char *msg, size_t size) {
        Manager *m = u->m;
        const HotUpdateConfig *c = m->config;
        GameDisposition d;
        size_t i;
        int r;

        u->procs = mfree(u->procs);
        u->n_procs = 0;
        r = game_find(NULL, c->process_name, m->exclude_tree, &u->procs, &u->n_procs);
        if (r < 0) {
                snprintf(msg, size, "cannot scan /proc: %s", strerror(-r));
                *ret_outcome = OUTCOME_FAILED;
                return 1;
        }
        if (u->n_procs == 0) {
                snprintf(msg, size, "no process titled \"%s\" is running", c->process_name);
                *ret_outcome = OUTCOME_GAME_NOT_RUNNING;
                return 1;
        }
        i = game_first_unsafe(u->procs, u->n_procs, c->signal_number, &d);
        if (i < u->n_procs) {
                snprintf(msg, size,
                         d == GAME_SIGNAL_DEFAULT
                                 ? "PID %d (\"%s\") does not handle %s; sending it would "
                                   "run the default action (for most signals: end the game)"
                                 : "PID %d (\"%s\") ignores %s; it would not reload",
                         (int) u->procs[i].pid, c->process_name, update_signal_name(u));
                *ret_outcome = OUTCOME_RELOAD_FAILED;
                return 1;
        }
        return 0;
}

int update_signal_procs(Update *u, char *msg, size_t size) {
        Manager *m = u->m;

        u->n_signalled = 0;
        for (size_t i = 0; i < u->n_procs; i++) {
                if (kill(u->procs[i].pid, m->config->signal_number) < 0) {
                        int r = -errno;
                        snprintf(msg, size, "cannot send %s to PID %d: %s", update_signal_name(u),
                                 (int) u->procs[i].pid,
                                 r == -ESRCH ? "it exited" : strerror(-r));
                        return r;
                }
                u->n_signalled++;
        }
        return 0;
}

/* ---- download ---- */

bool update_refused_by_policy(Update *u) {
        const HotUpdatePolicy *p = &u->m->config->policy;
        char msg[MSG_MAX];

        if (!hotupdate_policy_check_source(p, u->p.url, msg, sizeof msg) &&
            !hotupdate_policy_check_file_name(p, u->p.file_name, msg, sizeof msg))
                return false;
        update_fail(u, OUTCOME_FORBIDDEN, true, "%s", msg);
        return true;
}

typedef void (*UpdateDownloaded)(Update *u);

static void on_download_done(Job *j, CURLcode result, void *userdata) {
        Update *u = userdata;
        UpdateDownloaded downloaded = u->downloaded;
        Manager *m = u->m;
        HotUpdateOutcome o;
        char msg[MSG_MAX];

        m->download_usec += j->usec;
        m->download_bytes += j->bytes;
        m->downloads++;

        if (job_download_end(j, result, &o, msg, sizeof msg) > 0) {
                update_fail(u, o, true, "%s", msg);
                return;
        }
        memcpy(u->sha256, j->sha256, sizeof u->sha256);
        u->size = u->tmp.size;

        if (u->p.sha256 && !streq(u->p.sha256, u->sha256)) {
                update_fail(u, OUTCOME_CHECKSUM_MISMATCH, true,
                            "expected sha256 %s, the download has %s", u->p.sha256, u->sha256);
                return;
        }
        log_info("Downloaded %s: %" PRIu64 " bytes, sha256 %s.", u->p.url, u->size, u->sha256);
        downloaded(u);
}

void update_start_download(Update *u, void (*downloaded)(Update *u)) {
        Manager *m = u->m;
        const UpdateOriginInfo *origin = update_origin_info(u->origin);
        int r;

        r = files_tmp_open(m->dir_fd, &u->tmp);
        if (r < 0) {
                update_fail(u, hotupdate_outcome_from_errno(r), false,
                            "cannot create a file in %s: %s", m->config->download_dir,
                            strerror(-r));
                return;
        }
        u->sha256[0] = 0;
        u->downloaded = downloaded;
        r = job_download_start(&u->job, u->p.url, &u->tmp, on_download_done, u);
        if (r < 0) {
                update_finish(u, OUTCOME_FAILED, "cannot start the download: %s",
                              job_setup_reason(&u->job, r));
                return;
        }
        log_info("Downloading %s for %s%s.", u->p.url, u->p.version, origin->download_note);
        manager_set_phase(m, origin->download_phase);
        manager_notify_status(m);
}

/* ---- install and reload ---- */

int update_install(Update *u, char *msg, size_t size) {
        const HotUpdateConfig *c = u->m->config;
        const char *name = u->p.file_name;
        char failed[FILES_NAME_MAX];
        int r;

        r = files_install(u->m->dir_fd, &u->tmp, name, &u->had_previous, failed, sizeof failed);
        if (r < 0) {
                /* Naming the path that failed when it is another one (the previous copy's name
                 * taken by a folder, say). */
                if (failed[0] && !streq(failed, name))
                        snprintf(msg, size, "cannot install %s/%s: %s/%s: %s", c->download_dir,
                                 name, c->download_dir, failed, strerror(-r));
                else
                        snprintf(msg, size, "cannot install %s/%s: %s", c->download_dir, name,
                                 strerror(-r));
                return r;
        }
        u->installed_ticks = game_boot_ticks_now();
        return 0;
}

int update_reload_request_start(Update *u, JobDone done) {
        const HotUpdateConfig *c = u->m->config;
        _cleanup_(freep) char *url = NULL;
        bool v6 = strchr(c->request_address, ':');
        int r;

        if (asprintf(&url, "http://%s%s%s:%u%s", v6 ? "[" : "", c->request_address, v6 ? "]" : "",
                     (unsigned) c->request_port, c->request_path) < 0)
                return -ENOMEM;
        r = job_setup(&u->job, url, false, (uint64_t) c->connect_timeout_sec * 1000,
                      (uint64_t) c->request_timeout_sec * 1000);
        if (r < 0)
                return r;

        if (!streq(c->request_method, "GET") && !streq(c->request_method, "DELETE")) {
                /* Tell the game what it is reloading; it may ignore the body. */
                _cleanup_(freep) char *path = NULL;
                _cleanup_(json_object_putp) json_object *o = json_object_new_object();
                if (!o)
                        return -ENOMEM;
                if (asprintf(&path, "%s/%s", c->download_dir, u->p.file_name) < 0)
                        return -ENOMEM;
                json_object_object_add(o, "version", json_object_new_string(u->p.version));
                json_object_object_add(o, "fileName", json_object_new_string(u->p.file_name));
                json_object_object_add(o, "path", json_object_new_string(path));
                if (u->sha256[0])
                        json_object_object_add(o, "sha256", json_object_new_string(u->sha256));
                json_object_object_add(o, "rollback", json_object_new_boolean(u->rolling_back));
                r = job_set_json_body(&u->job, json_object_to_json_string_ext(
                                o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
                if (r < 0)
                        return r;
        }
        r = job_set_method(&u->job, c->request_method);
        if (r < 0)
                return r;
        return job_start(&u->job, DESTINATION_GAME, done, u);
}

bool update_reload_answer(Update *u, CURLcode result, char *reason, size_t size) {
        long code = job_response_code(&u->job);

        if (result != CURLE_OK)
                snprintf(reason, size, "reload request failed: %s", job_reason(&u->job, result));
        else
                snprintf(reason, size, "reload request answered HTTP %ld", code);
        job_stop(&u->job);
        return result == CURLE_OK && code >= 200 && code <= 299;
}
