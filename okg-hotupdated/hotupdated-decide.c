/* okg-hotupdated's decisions as pure functions; see hotupdated-decide.h. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>

#include "hotupdated-decide.h"

static const UpdateOriginInfo origin_table[_ORIGIN_MAX] = {
        [ORIGIN_REQUEST] = {
                .log_what = "Hot update to",
                .failure_log_level = LOG_WARNING,
                .download_phase = PHASE_DOWNLOADING,
                .download_note = "",
                .in_flight = true,
                .sends_ready = false,
                .folds_failures_into = _OUTCOME_INVALID,
        },
        [ORIGIN_RECOVERY] = {
                .log_what = "Recovery of",
                .failure_log_level = LOG_ERR,
                .download_phase = PHASE_RECOVERING,
                .download_note = " (recovery)",
                .in_flight = false,
                .sends_ready = true,
                .folds_failures_into = OUTCOME_RECOVERY_FAILED,
        },
};

const UpdateOriginInfo *update_origin_info(UpdateOrigin o) {
        if (o < 0 || o >= _ORIGIN_MAX)
                o = ORIGIN_REQUEST;
        return &origin_table[o];
}

HotUpdateOutcome update_origin_failure(UpdateOrigin origin, HotUpdateOutcome o, bool *ret_folded) {
        HotUpdateOutcome f = update_origin_info(origin)->folds_failures_into;
        bool folded = f != _OUTCOME_INVALID && f != o;

        if (ret_folded)
                *ret_folded = folded;
        return folded ? f : o;
}

/* ---- admission ---- */

static bool str_eq(const char *a, const char *b) {
        return a && b && strcmp(a, b) == 0;
}

Admission hotupdate_admit(const AdmissionState *s, const HotUpdateParams *p) {
        const HotUpdateVersion *cur = s->current;

        if (s->shutting_down)
                return ADMIT_SHUTTING_DOWN;
        if (s->busy)
                return s->busy_origin == ORIGIN_RECOVERY ? ADMIT_BUSY_RECOVERY : ADMIT_BUSY;
        if (!cur || !cur->version || !str_eq(cur->version, p->version))
                return ADMIT_NEW;
        if (!str_eq(cur->url, p->url) || !str_eq(cur->file_name, p->file_name) ||
            (p->sha256 && !str_eq(p->sha256, cur->sha256)))
                return ADMIT_CONFLICT;
        return ADMIT_SAME;
}

/* ---- how a download ended ---- */

static const char *str_or_empty(const char *s) {
        return s ?: "";
}

int download_end_outcome(const DownloadEnd *e, HotUpdateOutcome *ret, char *msg, size_t size) {
        const char *why = str_or_empty(e->transfer_error);
        long code = e->response_code;

        if (e->guard_stopped) {
                *ret = OUTCOME_FORBIDDEN;
                snprintf(msg, size, "%s", str_or_empty(e->guard_reason));
        } else if (e->refused && e->refused[0]) {
                *ret = OUTCOME_DOWNLOAD_FAILED;
                snprintf(msg, size, "%s", e->refused);
        } else if (e->too_large || e->cause == DOWNLOAD_END_FILESIZE_EXCEEDED) {
                *ret = OUTCOME_FILE_TOO_LARGE;
                snprintf(msg, size, "the file is larger than maxFileSizeBytes (%" PRIu64 " bytes)",
                         e->max_file_size);
        } else if (e->write_error < 0) {
                *ret = hotupdate_outcome_from_errno(e->write_error);
                snprintf(msg, size, "cannot write to %s: %s", e->download_dir,
                         strerror(-e->write_error));
        } else if (e->bad_status > 0 || (e->cause == DOWNLOAD_END_OK && (code < 200 || code > 299))) {
                *ret = OUTCOME_DOWNLOAD_FAILED;
                snprintf(msg, size, "the server answered HTTP %ld", e->bad_status ?: code);
        } else if (e->cause == DOWNLOAD_END_TIMED_OUT) {
                *ret = OUTCOME_DOWNLOAD_TIMED_OUT;
                snprintf(msg, size, "download timed out (connectTimeoutSeconds %u, "
                         "downloadTimeoutSeconds %u): %s",
                         e->connect_timeout_sec, e->download_timeout_sec, why);
        } else if (e->cause == DOWNLOAD_END_UNSUPPORTED_PROTOCOL && e->https_only) {
                *ret = OUTCOME_DOWNLOAD_FAILED;
                snprintf(msg, size, "refused a redirect away from https (%s): the file is fetched "
                         "over TLS only (allowInsecureRedirects: true allows http)", why);
        } else if (e->cause != DOWNLOAD_END_OK) {
                *ret = OUTCOME_DOWNLOAD_FAILED;
                snprintf(msg, size, "download failed: %s", why);
        } else if (e->decoder_error == -EPIPE) {
                /* The body is all here: every coded stream must have ended with it. */
                *ret = OUTCOME_DOWNLOAD_FAILED;
                snprintf(msg, size, "the compressed stream ended early (the %s stream stopped "
                         "short: a cut or broken object on the server); nothing was installed",
                         str_or_empty(e->failed_coding));
        } else if (e->decoder_error < 0) {
                *ret = OUTCOME_FAILED;
                snprintf(msg, size, "cannot decode the download: %s", strerror(-e->decoder_error));
        } else
                return 0;
        return 1;
}

/* ---- which processes are signalled ---- */

static bool disposition_unsafe(GameDisposition d) {
        return d == GAME_SIGNAL_DEFAULT || d == GAME_SIGNAL_IGNORED;
}

size_t game_first_unsafe(const GameProc *procs, size_t n, int signo, GameDisposition *ret) {
        for (size_t i = 0; i < n; i++) {
                GameDisposition d = game_signal_disposition(&procs[i].masks, signo);
                if (disposition_unsafe(d)) {
                        if (ret)
                                *ret = d;
                        return i;
                }
        }
        return n;
}

void game_pids_text(const GameProc *procs, size_t n, char *buf, size_t size) {
        size_t len = 0;

        if (size == 0)
                return;
        buf[0] = 0;
        for (size_t i = 0; i < n && len + 16 < size; i++)
                len += (size_t) snprintf(buf + len, size - len, "%s%d", i ? ", " : "",
                                         (int) procs[i].pid);
}

void recovery_sort_procs(GameProc *procs, size_t n, uint64_t installed_ticks, int signo,
                         RecoveryProcs *ret) {
        RecoveryProcs c = {};

        for (size_t i = 0; i < n; i++) {
                GameProc p = procs[i];

                if (p.start_ticks > installed_ticks)
                        c.n_later++;
                else if (!disposition_unsafe(game_signal_disposition(&p.masks, signo)))
                        procs[c.n_signal++] = p;
                else
                        c.n_unsafe++;
        }
        *ret = c;
}

RecoveryReload recovery_reload_action(const RecoveryProcs *c, bool can_wait) {
        if (c->n_signal == 0 && c->n_unsafe == 0 && c->n_later > 0)
                return RECOVERY_RELOAD_STARTED_LATER;
        if (c->n_signal > 0 && c->n_unsafe == 0)
                return RECOVERY_RELOAD_SIGNAL;
        if (can_wait)
                return RECOVERY_RELOAD_WAIT;
        return c->n_unsafe > 0 ? RECOVERY_RELOAD_GIVE_UP_UNSAFE : RECOVERY_RELOAD_GIVE_UP_ABSENT;
}

static bool procs_contain(const GameProc *procs, size_t n, const GameProc *p) {
        for (size_t i = 0; i < n; i++)
                if (procs[i].pid == p->pid && procs[i].start_ticks == p->start_ticks)
                        return true;
        return false;
}

void rollback_sort_procs(const GameProc *survivors, size_t n_survivors, const GameProc *now,
                         size_t n_now, uint64_t restored_ticks, int signo, RollbackProcs *out) {
        out->n_signal = out->n_later = out->n_unsafe = 0;
        for (size_t i = 0; i < n_now; i++) {
                if (procs_contain(survivors, n_survivors, &now[i]))
                        continue;
                if (now[i].start_ticks > restored_ticks)
                        out->later[out->n_later++] = now[i];
                else if (disposition_unsafe(game_signal_disposition(&now[i].masks, signo)))
                        out->unsafe[out->n_unsafe++] = now[i];
                else
                        out->signal[out->n_signal++] = now[i];
        }
}
