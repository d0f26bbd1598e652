/* okg-hotupdated's recovery at start, a state machine of its own: the record kept in the state
 * folder, else this pod's record from okg-storaged, else the fleet's newest (asking again while
 * okg-storaged cannot answer, up to a deadline) -> check the file in place -> download it again
 * when missing or different -> READY=1 -> tell a game that was already running (signal or
 * reload request, waiting for it up to gameWaitSeconds). Requests are hotupdated-pipeline.c. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hotupdated-update.h"
#include "log.h"
#include "okg-event.h"
#include "okg-storage-client.h"
#include "okg-util.h"

#define RECORD_FETCH_TIMEOUT_USEC (10 * USEC_PER_SEC)
#define GAME_POLL_USEC (500 * USEC_PER_MSEC)
#define RELOAD_RETRY_USEC (1 * USEC_PER_SEC)

static void recovery_reload(Update *u);
static int on_reload_timer(sd_event_source *s, uint64_t usec, void *userdata);
static void on_recovery_reload_done(Job *j, CURLcode result, void *userdata);

static void recovery_install(Update *u) {
        Manager *m = u->m;
        const HotUpdateConfig *c = m->config;
        char msg[MSG_MAX];

        if (update_install(u, msg, sizeof msg) < 0) {
                update_finish(u, OUTCOME_RECOVERY_FAILED, "%s", msg);
                return;
        }

        hotupdate_version_done(&m->record.current);
        m->record.current = u->applied;
        u->applied = (HotUpdateVersion) {};
        m->current_in_place = true;
        m->have_current_id = files_id(m->dir_fd, u->p.file_name, &m->current_id) >= 0;
        log_info("Recovery: %s is back in place as %s/%s.", u->p.version, c->download_dir,
                 u->p.file_name);

        u->deadline = okg_now_usec() + (uint64_t) c->game_wait_sec * USEC_PER_SEC;
        recovery_reload(u);
}

/* The game poll and the reload request's retry: try again. */
static int on_reload_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        recovery_reload(userdata);
        return 0;
}

/* Tells a game that was already running about the file recovery put back. A game that starts
 * after the file was in place reads it anyway, and one that does not handle the signal yet (it
 * may be starting up) is left alone until it does or the wait ends. */
static void recovery_reload(Update *u) {
        Manager *m = u->m;
        const HotUpdateConfig *c = m->config;
        RecoveryProcs sorted;
        RecoveryReload action;
        char pids[MSG_MAX / 2], msg[MSG_MAX];
        int r;

        if (c->load_patch_type == LOAD_PATCH_REQUEST) {
                r = update_reload_request_start(u, on_recovery_reload_done);
                if (r < 0)
                        update_finish(u, OUTCOME_RECOVERED,
                                      "re-applied %s; cannot send the reload request: %s",
                                      u->p.version, strerror(-r));
                return;
        }

        u->procs = mfree(u->procs);
        u->n_procs = 0;
        r = game_find(NULL, c->process_name, m->exclude_tree, &u->procs, &u->n_procs);
        if (r < 0)
                log_warning_errno(r, "Cannot scan /proc: %m");

        recovery_sort_procs(u->procs, u->n_procs, u->installed_ticks, c->signal_number, &sorted);
        action = recovery_reload_action(&sorted, okg_now_usec() + GAME_POLL_USEC < u->deadline);
        if (action == RECOVERY_RELOAD_WAIT) {
                /* Not there yet, or not ready for the signal: wait (after READY=1, so that a
                 * game that waits for the sidecar can start). */
                manager_send_ready(m);
                if (m->phase != PHASE_WAITING_FOR_GAME) {
                        log_info("Recovery: waiting up to %u s for \"%s\".", c->game_wait_sec,
                                 c->process_name);
                        manager_set_phase(m, PHASE_WAITING_FOR_GAME);
                }
                if (update_arm_timer(u, GAME_POLL_USEC, on_reload_timer) >= 0)
                        return;
                action = recovery_reload_action(&sorted, false);
        }

        switch (action) {
        case RECOVERY_RELOAD_STARTED_LATER:
                update_finish(u, OUTCOME_RECOVERED,
                              "re-applied %s; the game started after the file was in place",
                              u->p.version);
                break;
        case RECOVERY_RELOAD_SIGNAL:
                u->n_procs = sorted.n_signal;
                if (update_signal_procs(u, msg, sizeof msg) < 0) {
                        update_finish(u, OUTCOME_RECOVERED, "re-applied %s; %s", u->p.version, msg);
                        break;
                }
                game_pids_text(u->procs, u->n_procs, pids, sizeof pids);
                update_finish(u, OUTCOME_RECOVERED, "re-applied %s; sent %s to PID %s",
                              u->p.version, update_signal_name(u), pids);
                break;
        case RECOVERY_RELOAD_GIVE_UP_UNSAFE:
                update_finish(u, OUTCOME_RECOVERED,
                              "re-applied %s; the game does not handle %s, not signalled",
                              u->p.version, update_signal_name(u));
                break;
        case RECOVERY_RELOAD_GIVE_UP_ABSENT:
        default:
                update_finish(u, OUTCOME_RECOVERED,
                              "re-applied %s; no process titled \"%s\" within %u s, it reads "
                              "the file when it starts",
                              u->p.version, c->process_name, c->game_wait_sec);
                break;
        }
}

/* The record is here, or will not come: no more asking. */
static void recovery_stop_asking(Manager *m) {
        m->recovery_stage = RECOVERY_DONE;
        m->fetch_timer = sd_event_source_disable_unref(m->fetch_timer);
        m->refetch_timer = sd_event_source_disable_unref(m->refetch_timer);
}

static void recovery_nothing(Manager *m, const char *why) {
        Update *u = m->update;

        log_info("Recovery: %s.", why);
        recovery_stop_asking(m);
        if (u && u->origin == ORIGIN_RECOVERY)
                update_complete(u, false);
}

/* A record to restore: check the file, download it again when it is missing or different. */
static void recovery_apply(Manager *m, HotUpdateRecord *rec, bool from_fleet, const char *pod) {
        Update *u = m->update;
        char sha[SHA256_HEX_SIZE], at[HOTUPDATE_TIME_SIZE];
        FileId id;
        int r;

        recovery_stop_asking(m);
        u->from_fleet = from_fleet;
        u->applied = rec->current;
        rec->current = (HotUpdateVersion) {};
        if (from_fleet) {
                /* This pod applies it now; its own record says so. */
                hotupdate_now(at);
                free(u->applied.applied_at);
                u->applied.applied_at = strdup(at);
        } else {
                hotupdate_version_done(&m->record.previous);
                m->record.previous = rec->previous;
                rec->previous = (HotUpdateVersion) {};
                hotupdate_version_done(&m->record.current);
                if (hotupdate_version_copy(&u->applied, &m->record.current) < 0)
                        log_oom();
        }
        HotUpdateParams p = {
                .version = u->applied.version,
                .url = u->applied.url,
                .sha256 = u->applied.sha256,
                .file_name = u->applied.file_name,
        };
        if (!u->applied.applied_at || hotupdate_params_copy(&p, &u->p) < 0) {
                update_finish(u, OUTCOME_RECOVERY_FAILED, "out of memory");
                return;
        }

        log_info("Recovery: %s record%s%s says %s (%s as %s).",
                 from_fleet ? "the fleet's newest" : "this pod's", pod ? " from " : "",
                 strempty(pod), u->p.version, u->p.url, u->p.file_name);

        r = files_hash(m->dir_fd, u->p.file_name, sha, &id);
        if (r >= 0 && streq(sha, u->p.sha256)) {
                m->current_in_place = true;
                m->current_id = id;
                m->have_current_id = true;
                if (from_fleet) {
                        hotupdate_version_done(&m->record.current);
                        m->record.current = u->applied;
                        u->applied = (HotUpdateVersion) {};
                        update_finish(u, OUTCOME_RECOVERED, "%s was already in place",
                                      u->p.version);
                } else {
                        log_info("Recovery: %s/%s already has %s.", m->config->download_dir,
                                 u->p.file_name, u->p.version);
                        update_complete(u, false);
                }
                return;
        }
        if (r < 0 && r != -ENOENT)
                log_warning_errno(r, "Recovery: cannot read %s/%s, downloading it again: %m",
                                  m->config->download_dir, u->p.file_name);
        else
                log_info("Recovery: %s/%s is %s, downloading %s again.", m->config->download_dir,
                         u->p.file_name, r == -ENOENT ? "missing" : "different", u->p.version);
        if (!update_refused_by_policy(u))
                update_start_download(u, recovery_install);
}

static void on_record(int error, const char *message, const char *record, const char *pod,
                      void *userdata);

static int on_refetch(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;

        if (m->shutting_down || m->recovery_stage == RECOVERY_DONE)
                return 0;
        if (okg_storage_get_record(m->storage, m->recovery_stage == RECOVERY_OWN ? NULL : "appliedAt",
                                   on_record, m) < 0)
                (void) okg_event_source_rearm(s, USEC_PER_SEC);
        return 0;
}

static void on_record(int error, const char *message, const char *record, const char *pod,
                      void *userdata) {
        Manager *m = userdata;
        HotUpdateRecord rec = {};
        bool own;
        char err[256];

        if (m->shutting_down || m->recovery_stage == RECOVERY_DONE || !m->update ||
            m->update->origin != ORIGIN_RECOVERY)
                return;
        own = m->recovery_stage == RECOVERY_OWN;

        if (error < 0 && m->fetch_timer) {
                /* The API server may be out of reach for a moment: ask again each second until
                 * the recovery's own deadline, rather than start without the record. */
                log_warning_errno(error, "Recovery: okg-storaged cannot give %s yet: %s; asking again.",
                                  own ? "this pod's record" : "the fleet's newest record",
                                  message ?: "(no message)");
                if (okg_timer_arm(m->event, &m->refetch_timer, USEC_PER_SEC, 0, on_refetch, m,
                                  NULL) >= 0)
                        return;
                log_warning("Recovery: cannot arm a timer to ask again.");
                if (m->refetch_timer)
                        return;
        }
        if (error < 0)
                log_warning_errno(error, "Recovery: okg-storaged cannot give %s: %s",
                                  own ? "this pod's record" : "the fleet's newest record",
                                  message ?: "(no message)");
        else if (record && hotupdate_record_parse(record, &rec, err, sizeof err) < 0) {
                log_warning("Recovery: ignoring the %s record%s%s: %s", own ? "pod's" : "fleet's",
                            pod ? " of " : "", strempty(pod), err);
                hotupdate_record_done(&rec);
                rec = (HotUpdateRecord) {};
        }

        if (own && rec.last.at) {
                /* The last outcome stays visible (GET /hot-update) even with nothing to do. */
                hotupdate_result_done(&m->record.last);
                m->record.last = rec.last;
                rec.last = (HotUpdateResult) {};
                manager_history_push(m, &m->record.last);
        }
        if (hotupdate_version_is_set(&rec.current)) {
                recovery_apply(m, &rec, !own, pod);
                hotupdate_record_done(&rec);
                return;
        }
        hotupdate_record_done(&rec);

        if (own) {
                int r;
                m->recovery_stage = RECOVERY_FLEET;
                r = okg_storage_get_record(m->storage, "appliedAt", on_record, m);
                if (r >= 0)
                        return;
                log_warning_errno(r, "Recovery: cannot ask for the fleet's record: %m");
        }
        recovery_nothing(m, "no recorded version to restore");
}

static int on_fetch_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;

        log_warning("Recovery: okg-storaged did not answer within %" PRIu64
                    " s; starting without a recorded version.",
                    RECORD_FETCH_TIMEOUT_USEC / USEC_PER_SEC);
        recovery_nothing(m, "gave up waiting for the record");
        return 0;
}

static void on_resent(int error, const char *message, uint64_t seq, void *userdata) {
        if (error < 0 && error != -ECANCELED)
                log_warning_errno(error, "okg-storaged refused the record sent again: %s",
                                  message ?: "(no message)");
}

/* The record this daemon wrote last, kept in the state dir: it is this pod's newest by
 * construction (only this pod writes its key), so it wins over okg-storaged's copy, which may
 * lack the last write if the daemon was killed before okg-storaged accepted it. The record and
 * the annotation are handed to okg-storaged again. Returns 1 when there was one. */
static int recovery_from_local(Manager *m) {
        _cleanup_(freep) char *text = NULL, *annotation = NULL;
        HotUpdateRecord rec = {};
        char err[256];
        int r;

        r = okg_read_file(m->local_record_path, 1024 * 1024, &text, NULL);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return log_warning_errno(r, "Recovery: cannot read %s: %m", m->local_record_path), 0;
        if (hotupdate_record_parse(text, &rec, err, sizeof err) < 0) {
                log_warning("Recovery: ignoring %s: %s", m->local_record_path, err);
                hotupdate_record_done(&rec);
                return 0;
        }
        log_info("Recovery: using the record kept in %s%s%s.", m->local_record_path,
                 rec.current.version ? ", version " : "", strempty(rec.current.version));
        (void) okg_storage_put_record(m->storage, text, on_resent, m);
        if (rec.last.at && hotupdate_annotation_format(&rec.last, &annotation) >= 0) {
                OkgStrPair a = { m->config->annotation_key, annotation };
                (void) okg_storage_set_pod_metadata(m->storage, NULL, 0, &a, 1, on_resent, m);
        }
        if (rec.last.at) {
                hotupdate_result_done(&m->record.last);
                m->record.last = rec.last;
                rec.last = (HotUpdateResult) {};
                manager_history_push(m, &m->record.last);
        }
        if (hotupdate_version_is_set(&rec.current))
                recovery_apply(m, &rec, false, NULL);
        else
                recovery_nothing(m, "no recorded version to restore");
        hotupdate_record_done(&rec);
        return 1;
}

int recovery_begin(Manager *m) {
        int r;

        m->update = update_new(m, ORIGIN_RECOVERY);
        if (!m->update)
                return -ENOMEM;
        m->phase = PHASE_RECOVERING;
        m->recovery_stage = RECOVERY_OWN;
        if (recovery_from_local(m) > 0)
                return 0;
        r = okg_timer_arm(m->event, &m->fetch_timer, RECORD_FETCH_TIMEOUT_USEC, 0,
                          on_fetch_timeout, m, NULL);
        if (r < 0)
                return r;
        return okg_storage_get_record(m->storage, NULL, on_record, m);
}

/* The game's reload endpoint answered the file recovery put back (or did not, yet). */
static void on_recovery_reload_done(Job *j, CURLcode result, void *userdata) {
        Update *u = userdata;
        char reason[MSG_MAX];

        if (update_reload_answer(u, result, reason, sizeof reason)) {
                update_finish(u, OUTCOME_RECOVERED, "re-applied %s; %s", u->p.version, reason);
                return;
        }
        if (okg_now_usec() + RELOAD_RETRY_USEC < u->deadline) {
                manager_send_ready(u->m);
                manager_set_phase(u->m, PHASE_WAITING_FOR_GAME);
                if (update_arm_timer(u, RELOAD_RETRY_USEC, on_reload_timer) >= 0)
                        return;
        }
        update_finish(u, OUTCOME_RECOVERED,
                      "re-applied %s; the game's reload endpoint did not answer 2xx (%s), it "
                      "reads the file when it starts",
                      u->p.version, reason);
}
