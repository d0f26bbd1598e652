/* okg-hotupdated's request path: admission (busy, conflict, unchanged), then the update
 * pipeline of a request: game lookup (signal mode) -> download (hotupdated-job.c) -> checksum ->
 * game lookup again -> install by rename (the replaced file is kept) -> reload (kill(2) or an
 * HTTP request) -> optional post-reload check and settle window, with rollback on failure ->
 * record and answer (hotupdated-update.c). The recovery at start is hotupdated-recovery.c. */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hotupdated-update.h"
#include "log.h"
#include "okg-util.h"

#define CHECK_PERIOD_USEC (250 * USEC_PER_MSEC)
#define CHECK_ATTEMPT_MAX_MSEC 2000U

static void update_after_reload(Update *u);
static void update_rollback(Update *u, const char *reason);
static void update_settle(Update *u);
static void update_succeed(Update *u, const char *note);
static void on_reload_done(Job *j, CURLcode result, void *userdata);

static void reload_failed_restore(Update *u, const char *reason) {
        Manager *m = u->m;
        int r;

        r = files_restore(m->dir_fd, u->p.file_name, u->had_previous);
        /* Of several games, those that got the signal reloaded the new file: they get the old
         * one back the same way. */
        if (r >= 0 && m->config->load_patch_type == LOAD_PATCH_SIGNAL)
                for (size_t i = 0; i < u->n_signalled; i++)
                        (void) kill(u->procs[i].pid, m->config->signal_number);
        if (r < 0)
                update_finish(u, OUTCOME_ROLLBACK_FAILED, "%s; restoring the previous file failed: %s",
                              reason, strerror(-r));
        else
                update_finish(u, OUTCOME_RELOAD_FAILED, "%s; the previous file is back in place",
                              reason);
}

/* Signal mode: the game is there and handles the signal. False when not, and the update is
 * finished. */
static bool game_ready(Update *u) {
        HotUpdateOutcome o;
        char msg[MSG_MAX];
        int r;

        if (u->m->config->load_patch_type != LOAD_PATCH_SIGNAL)
                return true;
        r = update_game_lookup(u, &o, msg, sizeof msg);
        if (r == 0)
                return true;
        update_finish(u, r < 0 ? OUTCOME_FAILED : o, "%s", r < 0 ? strerror(-r) : msg);
        return false;
}

static void update_install_and_reload(Update *u) {
        Manager *m = u->m;
        const HotUpdateConfig *c = m->config;
        char msg[MSG_MAX];
        int r;

        manager_set_phase(m, PHASE_RELOADING);

        /* Again right before the rename: the game may have gone while we downloaded, and then
         * nothing must change. */
        if (!game_ready(u))
                return;

        r = update_install(u, msg, sizeof msg);
        if (r < 0) {
                update_finish(u, hotupdate_outcome_from_errno(r), "%s", msg);
                return;
        }

        if (c->load_patch_type == LOAD_PATCH_SIGNAL) {
                r = update_signal_procs(u, msg, sizeof msg);
                if (r < 0) {
                        reload_failed_restore(u, msg);
                        return;
                }
                u->signalled_at = okg_now_usec();
                game_pids_text(u->procs, u->n_procs, msg, sizeof msg);
                log_info("Installed %s as %s/%s and sent %s to PID %s.", u->p.version,
                         c->download_dir, u->p.file_name, update_signal_name(u), msg);
                update_after_reload(u);
                return;
        }

        r = update_reload_request_start(u, on_reload_done);
        if (r < 0)
                reload_failed_restore(u, "cannot send the reload request");
}

/* The file is here and its checksum matches. */
static void update_downloaded(Update *u) {
        Manager *m = u->m;
        FileId id;

        /* Same bytes as the file in place (a new version name for the same content): nothing
         * to install, nothing for the game to reload. */
        if (m->current_in_place && m->have_current_id &&
            streq_ptr(m->record.current.file_name, u->p.file_name) &&
            streq_ptr(m->record.current.sha256, u->sha256) &&
            files_id(m->dir_fd, u->p.file_name, &id) >= 0 && files_id_equal(&id, &m->current_id)) {
                files_tmp_discard(m->dir_fd, &u->tmp);
                update_succeed(u, "the content is identical to the file in place; the game was "
                                  "not reloaded");
                return;
        }
        update_install_and_reload(u);
}

/* ---- post-reload check and settle window ---- */

static void check_start(Update *u);
static void on_check_done(Job *j, CURLcode result, void *userdata);

static int on_check_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        check_start(userdata);
        return 0;
}

static void update_after_reload(Update *u) {
        Manager *m = u->m;
        const HotUpdateConfig *c = m->config;

        if (!c->check_url) {
                update_settle(u);
                return;
        }
        manager_set_phase(m, PHASE_CHECKING);
        u->deadline = okg_now_usec() + (uint64_t) c->check_delay_msec * USEC_PER_MSEC +
                      (uint64_t) c->check_timeout_sec * USEC_PER_SEC;
        snprintf(u->last_check, sizeof u->last_check, "no answer yet");
        u->check_answered = false;
        if (update_arm_timer(u, (uint64_t) c->check_delay_msec * USEC_PER_MSEC, on_check_timer) < 0)
                update_rollback(u, "cannot arm the post-reload check timer");
}

static void check_start(Update *u) {
        const HotUpdateConfig *c = u->m->config;
        uint64_t now = okg_now_usec(), left_ms;
        int r;

        left_ms = u->deadline > now ? (u->deadline - now) / USEC_PER_MSEC : 0;
        if (left_ms < 50)
                left_ms = 50;
        if (left_ms > CHECK_ATTEMPT_MAX_MSEC)
                left_ms = CHECK_ATTEMPT_MAX_MSEC;
        r = job_setup(&u->job, c->check_url, false, left_ms, left_ms);
        if (r >= 0)
                r = job_start(&u->job, DESTINATION_GAME, on_check_done, u);
        if (r < 0) {
                char reason[JOB_MSG_MAX + 64];
                snprintf(reason, sizeof reason, "cannot start the post-reload check: %s",
                         job_setup_reason(&u->job, r));
                update_rollback(u, reason);
        }
}

/* Every signalled process still there (the same process, not a new one with its PID)? */
static bool procs_alive(Update *u, char *msg, size_t size) {
        for (size_t i = 0; i < u->n_signalled; i++)
                if (!game_alive(NULL, &u->procs[i])) {
                        snprintf(msg, size, "PID %d exited after the reload", (int) u->procs[i].pid);
                        return false;
                }
        return true;
}

static void on_check_done(Job *j, CURLcode result, void *userdata) {
        Update *u = userdata;
        const HotUpdateConfig *c = u->m->config;
        char reason[MSG_MAX + 64];
        long code = job_response_code(j);

        if (result == CURLE_OK) {
                snprintf(u->last_check, sizeof u->last_check, "HTTP %ld", code);
                u->check_answered = true;
        } else if (!(result == CURLE_OPERATION_TIMEDOUT && u->check_answered))
                /* An attempt the deadline cut short says less than the answer before it (an
                 * HTTP 500 must not read "timed out after 53 ms"): that answer is kept. */
                snprintf(u->last_check, sizeof u->last_check, "%s", job_reason(&u->job, result));
        job_stop(&u->job);

        if (c->load_patch_type == LOAD_PATCH_SIGNAL &&
            !procs_alive(u, u->last_check, sizeof u->last_check)) {
                snprintf(reason, sizeof reason, "post-reload check failed: %s", u->last_check);
                u->game_exited = true;
                update_rollback(u, reason);
                return;
        }
        if (result == CURLE_OK && code >= 200 && code <= 399) {
                update_settle(u);
                return;
        }
        if (okg_now_usec() + CHECK_PERIOD_USEC < u->deadline) {
                if (update_arm_timer(u, CHECK_PERIOD_USEC, on_check_timer) >= 0)
                        return;
        }
        snprintf(reason, sizeof reason,
                 "post-reload check %s did not answer 200-399 within %u s (last: %s)", c->check_url,
                 c->check_timeout_sec, u->last_check);
        update_rollback(u, reason);
}


static int on_settle_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        update_settle(userdata);
        return 0;
}

/* Signal mode: an update counts only when every signalled process is still the same process
 * signal.settleMilliseconds after the signal. A runtime whose handler ends it, at once or after
 * a drain, has not reloaded, whatever the post-reload check saw before it went. */
static void update_settle(Update *u) {
        const HotUpdateConfig *c = u->m->config;
        uint64_t end, now = okg_now_usec();
        char alive[MSG_MAX / 2], reason[MSG_MAX];

        if (c->load_patch_type != LOAD_PATCH_SIGNAL) {
                update_succeed(u, NULL);
                return;
        }
        if (!procs_alive(u, alive, sizeof alive)) {
                snprintf(reason, sizeof reason,
                         "the game exited on the signal: %s (checked %" PRIu64 " ms after %s)",
                         alive, (now - u->signalled_at) / USEC_PER_MSEC, update_signal_name(u));
                u->game_exited = true;
                update_rollback(u, reason);
                return;
        }
        end = u->signalled_at + (uint64_t) c->settle_msec * USEC_PER_MSEC;
        if (now < end) {
                manager_set_phase(u->m, PHASE_CHECKING);
                if (update_arm_timer(u, end - now, on_settle_timer) < 0)
                        update_rollback(u, "cannot arm the settle timer");
                return;
        }
        update_succeed(u, NULL);
}

/* ---- rollback ---- */

/* Appends "; PID a, b <what>" to buf for the processes in procs. */
static void append_pids(char *buf, size_t size, const GameProc *procs, size_t n, const char *what) {
        char pids[MSG_MAX / 2];
        size_t len = strlen(buf);

        if (n == 0 || len >= size)
                return;
        game_pids_text(procs, n, pids, sizeof pids);
        if (snprintf(buf + len, size - len, "; PID %s %s", pids, what) >= (int) (size - len))
                log_debug("The list of processes in the message was cut at %zu bytes.", size);
}

/* A signalled process exited after the signal, and the previous file is back. Told to reload it:
 * the signalled processes that survived, and the game's processes that started since (a
 * supervisor restarted the game) while the rejected file was in place, so that they do not
 * keep running on it. Not told: a process that started after the previous file was back (it
 * read that one), and one that does not handle the signal (yet), which would just end. */
static void rollback_survivors(Update *u, const char *reason, uint64_t restored_ticks) {
        Manager *m = u->m;
        _cleanup_(freep) GameProc *now = NULL, *later = NULL, *unsafe = NULL;
        size_t n_now = 0, n = 0, n_survivors, n_later, n_unsafe, n_signalled;
        char msg[MSG_MAX], pids[MSG_MAX / 2], err[MSG_MAX / 2] = "", notes[MSG_MAX] = "";
        int r;

        r = game_find(NULL, m->config->process_name, m->exclude_tree, &now, &n_now);
        if (r < 0) {
                snprintf(err, sizeof err, "; cannot look for a restarted game: %s", strerror(-r));
                n_now = 0;
        }
        later = calloc(n_now + 1, sizeof *later);
        unsafe = calloc(n_now + 1, sizeof *unsafe);
        GameProc *all = reallocarray(u->procs, u->n_procs + n_now + 1, sizeof *all);
        if (!later || !unsafe || !all) {
                if (all)
                        u->procs = all;
                update_finish(u, OUTCOME_ROLLBACK_FAILED,
                              "%s; the previous file is back but the game was not reloaded: %s",
                              reason, strerror(ENOMEM));
                return;
        }
        u->procs = all;

        /* The signalled ones still there, then those that started since. */
        for (size_t i = 0; i < u->n_signalled; i++)
                if (game_alive(NULL, &u->procs[i]))
                        u->procs[n++] = u->procs[i];
        n_survivors = n;
        RollbackProcs sorted = { .signal = u->procs + n, .later = later, .unsafe = unsafe };
        rollback_sort_procs(u->procs, n_survivors, now, n_now, restored_ticks,
                            m->config->signal_number, &sorted);
        n += sorted.n_signal;
        n_later = sorted.n_later;
        n_unsafe = sorted.n_unsafe;
        u->n_procs = n;
        u->n_signalled = 0;

        append_pids(notes, sizeof notes, later, n_later,
                    "started after the previous file was back and reads it: not signalled");
        snprintf(pids, sizeof pids, "started since the signal (a restart) but does not handle %s "
                 "yet: not signalled, it keeps what it read of the rejected file until it "
                 "reloads or restarts", update_signal_name(u));
        append_pids(notes, sizeof notes, unsafe, n_unsafe, pids);

        if (n == 0) {
                update_finish(u, OUTCOME_ROLLED_BACK, "%s; the previous file is back (%s)%s%s",
                              reason,
                              n_later + n_unsafe == 0 ? "the game is not running any more, "
                                                        "nothing signalled"
                                                      : "no process to signal",
                              notes, err);
                return;
        }
        r = update_signal_procs(u, msg, sizeof msg);
        n_signalled = u->n_signalled;
        if (r < 0) {
                update_finish(u, OUTCOME_ROLLBACK_FAILED,
                              "%s; the previous file is back but the game was not reloaded: "
                              "%s%s%s",
                              reason, msg, notes, err);
                return;
        }
        msg[0] = 0;
        if (n_survivors > 0) {
                game_pids_text(u->procs, n_survivors, pids, sizeof pids);
                snprintf(msg, sizeof msg, " and the processes still running (PID %s) were "
                         "reloaded again", pids);
        }
        if (n_signalled > n_survivors) {
                size_t len = strlen(msg);
                game_pids_text(u->procs + n_survivors, n_signalled - n_survivors, pids, sizeof pids);
                snprintf(msg + len, sizeof msg - len, "%s the game restarted since the signal "
                         "(PID %s) was sent %s to load it", n_survivors > 0 ? ";" : " and",
                         pids, update_signal_name(u));
        }
        update_finish(u, OUTCOME_ROLLED_BACK, "%s; the previous file is back%s%s%s", reason, msg,
                      notes, err);
}

static void update_rollback(Update *u, const char *reason) {
        Manager *m = u->m;
        const HotUpdateConfig *c = m->config;
        HotUpdateOutcome o;
        char msg[MSG_MAX];
        int r;

        manager_set_phase(m, PHASE_ROLLING_BACK);
        u->rolling_back = true;
        snprintf(u->rollback_reason, sizeof u->rollback_reason, "%s", reason);
        log_warning("Rolling back %s: %s", u->p.version, reason);

        r = files_restore(m->dir_fd, u->p.file_name, u->had_previous);
        if (r < 0) {
                update_finish(u, OUTCOME_ROLLBACK_FAILED,
                              "%s; restoring the previous file failed: %s", reason, strerror(-r));
                return;
        }
        uint64_t restored_ticks = game_boot_ticks_now();

        if (c->load_patch_type == LOAD_PATCH_REQUEST) {
                r = update_reload_request_start(u, on_reload_done);
                if (r < 0)
                        update_finish(u, OUTCOME_ROLLBACK_FAILED,
                                      "%s; the previous file is back but the reload request "
                                      "could not be sent",
                                      reason);
                return;
        }

        if (u->game_exited) {
                rollback_survivors(u, reason, restored_ticks);
                return;
        }

        /* The game may have been replaced in the meantime: signal whatever runs now. */
        r = update_game_lookup(u, &o, msg, sizeof msg);
        if (r != 0) {
                if (r > 0 && o == OUTCOME_GAME_NOT_RUNNING)
                        update_finish(u, OUTCOME_ROLLED_BACK,
                                      "%s; the previous file is back (the game is not running, "
                                      "nothing signalled)",
                                      reason);
                else
                        update_finish(u, OUTCOME_ROLLBACK_FAILED,
                                      "%s; the previous file is back but the game was not "
                                      "reloaded: %s",
                                      reason, r < 0 ? strerror(-r) : msg);
                return;
        }
        r = update_signal_procs(u, msg, sizeof msg);
        if (r < 0) {
                update_finish(u, OUTCOME_ROLLBACK_FAILED,
                              "%s; the previous file is back but the game was not reloaded: %s",
                              reason, msg);
                return;
        }
        update_finish(u, OUTCOME_ROLLED_BACK,
                      "%s; the previous file is back and the game was reloaded again", reason);
}

/* The reload request of the update, or of its rollback, answered. */
static void on_reload_done(Job *j, CURLcode result, void *userdata) {
        Update *u = userdata;
        char reason[MSG_MAX];
        bool ok = update_reload_answer(u, result, reason, sizeof reason);

        if (u->rolling_back) {
                if (ok)
                        update_finish(u, OUTCOME_ROLLED_BACK,
                                      "%s; the previous file is back and the game was reloaded "
                                      "again",
                                      u->rollback_reason);
                else
                        update_finish(u, OUTCOME_ROLLBACK_FAILED,
                                      "%s; the previous file is back but %s", u->rollback_reason,
                                      reason);
                return;
        }
        if (!ok) {
                reload_failed_restore(u, reason);
                return;
        }
        log_info("Installed %s as %s/%s; %s.", u->p.version, u->m->config->download_dir,
                 u->p.file_name, reason);
        update_after_reload(u);
}

static void update_succeed(Update *u, const char *note) {
        Manager *m = u->m;
        const HotUpdateConfig *c = m->config;
        char at[HOTUPDATE_TIME_SIZE], what[MSG_MAX];
        HotUpdateVersion v;

        hotupdate_now(at);
        HotUpdateVersion from = { u->p.version, u->p.url, u->sha256, u->p.file_name, at };
        if (hotupdate_version_copy(&from, &v) < 0) {
                update_finish(u, OUTCOME_FAILED, "out of memory");
                return;
        }
        /* What was in place becomes the previous version, even when it was a different file:
         * the record keeps the last two versions applied. */
        if (m->current_in_place) {
                hotupdate_version_done(&m->record.previous);
                m->record.previous = m->record.current;
        } else
                hotupdate_version_done(&m->record.current);
        m->record.current = v;
        m->current_in_place = true;
        m->have_current_id = files_id(m->dir_fd, u->p.file_name, &m->current_id) >= 0;

        if (note)
                snprintf(what, sizeof what, "%s", note);
        else if (c->load_patch_type == LOAD_PATCH_SIGNAL) {
                char pids[MSG_MAX / 2];
                game_pids_text(u->procs, u->n_procs, pids, sizeof pids);
                snprintf(what, sizeof what, "sent %s to PID %s%s", update_signal_name(u), pids,
                         c->check_url ? "; post-reload check passed" : "");
        } else
                snprintf(what, sizeof what, "reload request answered 2xx%s",
                         c->check_url ? "; post-reload check passed" : "");
        update_finish(u, OUTCOME_SUCCEEDED, "applied %s (%" PRIu64 " bytes) as %s/%s; %s",
                      u->p.version, u->size, c->download_dir, u->p.file_name, what);
}
/* ---- requests ---- */

static int on_update_run(sd_event_source *s, void *userdata) {
        Update *u = userdata;

        u->defer = sd_event_source_disable_unref(u->defer);
        if (update_refused_by_policy(u))
                return 0;
        if (u->has_immediate) {
                update_finish(u, u->immediate, "%s is already in place (%s/%s); nothing to do",
                              u->p.version, u->m->config->download_dir, u->p.file_name);
                return 0;
        }
        /* Fail fast, before downloading anything, when there is no game to reload. */
        if (game_ready(u))
                update_start_download(u, update_downloaded);
        return 0;
}

int manager_refusal(Manager *m, HotUpdateOutcome o, const char *message, const HotUpdateParams *p,
                    HotUpdateResult *ret) {
        char at[HOTUPDATE_TIME_SIZE], shown[HOTUPDATE_SHOWN_URL_MAX];

        if (o >= 0 && o < _OUTCOME_MAX)
                m->outcomes[o]++;
        hotupdate_now(at);
        HotUpdateResult r = {
                .version = p ? p->version : NULL,
                /* A refused URL may carry credentials: never echoed. */
                .url = p ? (char *) hotupdate_url_shown(p->url, shown, sizeof shown) : NULL,
                .sha256 = p ? p->sha256 : NULL,
                .file_name = p ? p->file_name : NULL,
                .outcome = o,
                .message = (char *) message,
                .at = at,
                .current_version = (char *) manager_current_version(m),
        };
        return hotupdate_result_copy(&r, ret);
}

int manager_submit(Manager *m, const HotUpdateParams *p, Waiter *w, HotUpdateResult *ret) {
        const HotUpdateVersion *cur = &m->record.current;
        AdmissionState s = {
                .shutting_down = m->shutting_down,
                .busy = m->update,
                .busy_origin = m->update ? m->update->origin : ORIGIN_REQUEST,
                .current = m->current_in_place ? cur : NULL,
        };
        _cleanup_(freep) char *msg = NULL;
        bool unchanged = false;
        FileId id;
        Update *u;
        int r;

        switch (hotupdate_admit(&s, p)) {
        case ADMIT_SHUTTING_DOWN:
                return manager_refusal(m, OUTCOME_SHUTTING_DOWN, "okg-hotupdated is stopping", p,
                                       ret) < 0 ? -ENOMEM : 1;
        case ADMIT_BUSY_RECOVERY:
                if (asprintf(&msg, "recovery at start is in progress (%s); try again later",
                             hotupdate_phase_to_string(m->phase)) < 0)
                        return -ENOMEM;
                return manager_refusal(m, OUTCOME_BUSY, msg, p, ret) < 0 ? -ENOMEM : 1;
        case ADMIT_BUSY:
                assert(m->update);
                if (asprintf(&msg, "another update is in flight (version %s, %s)",
                             m->update->p.version, hotupdate_phase_to_string(m->phase)) < 0)
                        return -ENOMEM;
                return manager_refusal(m, OUTCOME_BUSY, msg, p, ret) < 0 ? -ENOMEM : 1;
        case ADMIT_CONFLICT:
                if (asprintf(&msg, "version %s is already in place with different content (url "
                             "%s, fileName %s, sha256 %s); use a new version",
                             cur->version, cur->url, cur->file_name, cur->sha256) < 0)
                        return -ENOMEM;
                return manager_refusal(m, OUTCOME_VERSION_CONFLICT, msg, p, ret) < 0 ? -ENOMEM
                                                                                     : 1;
        case ADMIT_SAME:
                /* The same request again: nothing to do, unless the file was changed or removed
                 * behind our back, in which case it is applied again. */
                unchanged = m->have_current_id && files_id(m->dir_fd, p->file_name, &id) >= 0 &&
                            files_id_equal(&id, &m->current_id);
                if (!unchanged)
                        log_info("%s/%s is no longer what %s installed; applying %s again.",
                                 m->config->download_dir, p->file_name, cur->version, p->version);
                break;
        case ADMIT_NEW:
        default:
                break;
        }

        u = update_new(m, ORIGIN_REQUEST);
        if (!u)
                return -ENOMEM;
        r = hotupdate_params_copy(p, &u->p);
        if (r >= 0)
                r = sd_event_add_defer(m->event, &u->defer, on_update_run, u);
        if (r < 0) {
                update_free(u);
                return r;
        }
        if (unchanged) {
                u->has_immediate = true;
                u->immediate = OUTCOME_UNCHANGED;
                free(u->p.sha256);
                u->p.sha256 = strdup(cur->sha256);
        }
        m->update = u;
        if (w)
                waiter_link(u, w);
        log_info("Hot update to %s requested: %s as %s.", p->version, p->url, p->file_name);
        manager_notify_status(m);
        return 0;
}
