/* The Manager and the update state machine; see hotupdated-manager.h and docs/hot-update.md.
 *
 * One update at a time. A request update goes: game lookup (signal mode) -> download into an
 * unnamed temp file (curl multi on the loop, hashed as it is written) -> checksum -> game lookup
 * again -> install by rename (the replaced file is kept) -> reload (kill(2) or an HTTP request)
 * -> optional post-reload check, with rollback on failure -> record through okg-storaged ->
 * answer. Recovery at start is an update too: record -> file check -> download if needed ->
 * READY=1 -> reload of a game that was already running. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "hotupdated-download.h"
#include "hotupdated-files.h"
#include "hotupdated-game.h"
#include "hotupdated-guard.h"
#include "hotupdated-manager.h"
#include "hotupdated-sha256.h"
#include "log.h"
#include "okg-metrics.h"
#include "macro.h"
#include "okg-bus.h"
#include "okg-build-config.h"
#include "okg-curl.h"
#include "okg-http-server.h"
#include "okg-storage-client.h"
#include "okg-util.h"

#define HISTORY_MAX 20U
#define RECORD_FETCH_TIMEOUT_USEC (10 * USEC_PER_SEC)
#define RECORD_ACCEPT_TIMEOUT_USEC (5 * USEC_PER_SEC)
#define CHECK_PERIOD_USEC (250 * USEC_PER_MSEC)
#define CHECK_ATTEMPT_MAX_MSEC 2000U
#define GAME_POLL_USEC (500 * USEC_PER_MSEC)
#define RELOAD_RETRY_USEC (1 * USEC_PER_SEC)
#define MAX_REDIRECTS 5L
#define MSG_MAX 512

typedef enum UpdateOrigin {
        ORIGIN_REQUEST,
        ORIGIN_RECOVERY,
} UpdateOrigin;

typedef enum TransferKind {
        XFER_NONE,
        XFER_DOWNLOAD,
        XFER_RELOAD,
        XFER_CHECK,
} TransferKind;

typedef enum RecoveryStage {
        RECOVERY_OWN,       /* waiting for this pod's record */
        RECOVERY_FLEET,     /* waiting for the fleet's newest */
        RECOVERY_DONE,      /* answered, or given up waiting */
} RecoveryStage;

struct Update {
        Manager *m;
        UpdateOrigin origin;
        HotUpdateParams p;
        Waiter *waiters;
        sd_event_source *defer;
        sd_event_source *timer;

        CURL *easy;
        TransferKind xfer;
        struct curl_slist *headers;
        char *post_body;
        char errbuf[CURL_ERROR_SIZE];
        Guard guard;                    /* the destination policy on this transfer */

        /* download */
        TmpFile tmp;
        Sha256 hash;
        char sha256[SHA256_HEX_SIZE];
        uint64_t size;
        long bad_status;
        bool too_large;
        int write_error;
        bool https_only;                /* an https URL: redirects must stay on https */
        char refused[MSG_MAX];          /* a response the header callback refused, and why */
        char *content_encoding;         /* of the response being received (a 2xx) */
        char *transfer_encoding;
        DownloadDecoder *decoder;       /* set up at its first body byte */

        /* install and reload */
        bool had_previous;
        uint64_t installed_ticks;
        GameProc *procs;
        size_t n_procs;
        size_t n_signalled;
        uint64_t signalled_at;          /* CLOCK_MONOTONIC usec: start of the settle window */
        bool game_exited;               /* a signalled process is gone: do not signal anew */
        uint64_t deadline;              /* CLOCK_MONOTONIC usec: check or game wait */
        char last_check[MSG_MAX];
        bool rolling_back;
        char rollback_reason[MSG_MAX];

        /* a request already decided at submit time (Unchanged) */
        bool has_immediate;
        HotUpdateOutcome immediate;

        /* recovery */
        HotUpdateVersion applied;       /* the version being restored */
        bool from_fleet;

        HotUpdateResult result;
        bool finished;
        uint64_t record_ticket;
};

struct Manager {
        sd_event *event;
        HotUpdateConfig *config;
        OkgBus *bus;
        OkgStorageClient *storage;
        OkgHttpServer *http;
        CurlGlue *curl;
        unsigned codings;               /* DOWNLOAD_CODING_* that we decode */
        int dir_fd;
        pid_t exclude_tree;

        HotUpdateRecord record;         /* what this pod's record says (and will say) */
        bool current_in_place;          /* record.current is the file on disk */
        FileId current_id;
        bool have_current_id;

        HotUpdateResult history[HISTORY_MAX];
        size_t history_first, n_history;

        Update *update;
        HotUpdatePhase phase;
        bool ready;
        bool shutting_down;
        uint64_t record_sent, record_done;
        uint64_t updates_total;
        uint64_t outcomes[_OUTCOME_MAX];  /* for /metrics: every outcome, refusals included */
        uint64_t downloads, download_bytes, download_usec;

        RecoveryStage recovery_stage;
        sd_event_source *fetch_timer;
        sd_event_source *refetch_timer;   /* asks again while okg-storaged cannot answer */
        char *local_record_path;          /* <state-dir>/hotupdated-record.json */
};

static void update_finish(Update *u, HotUpdateOutcome o, const char *fmt, ...) _printf_(3, 4);
static void update_start_download(Update *u);
static void update_after_reload(Update *u);
static void update_rollback(Update *u, const char *reason);
static void update_settle(Update *u);
static void recovery_reload(Update *u);
static int recovery_on_retry(sd_event_source *s, uint64_t usec, void *userdata);

/* ---- small helpers ---- */

static void now_rfc3339(char buf[HOTUPDATE_TIME_SIZE]) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        if (hotupdate_format_time((uint64_t) ts.tv_sec * USEC_PER_SEC +
                                          (uint64_t) ts.tv_nsec / 1000,
                                  buf) < 0)
                snprintf(buf, HOTUPDATE_TIME_SIZE, "1970-01-01T00:00:00.000Z");
}

static void manager_set_phase(Manager *m, HotUpdatePhase p) {
        if (m->phase == p)
                return;
        m->phase = p;
        hotupdate_bus_emit_changed(m, m->bus);
}

static const char *current_version_or_null(Manager *m) {
        return m->current_in_place ? m->record.current.version : NULL;
}

static void manager_notify_status(Manager *m) {
        const char *v = current_version_or_null(m);

        if (m->update && m->update->origin == ORIGIN_REQUEST)
                (void) sd_notifyf(false, "STATUS=Updating to %s (%s)", m->update->p.version,
                                  hotupdate_phase_to_string(m->phase));
        else
                (void) sd_notifyf(false, "STATUS=Serving /hot-update on port %u; version %s",
                                  (unsigned) manager_http_port(m), v ?: "(none)");
}

static void manager_send_ready(Manager *m) {
        if (m->ready)
                return;
        m->ready = true;
        (void) sd_notify(false, "READY=1");
        manager_notify_status(m);
        log_info("Ready: /hot-update on %s:%u, download folder %s, version %s.",
                 m->config->bind_address, (unsigned) manager_http_port(m), m->config->download_dir,
                 current_version_or_null(m) ?: "(none)");
}

static void history_push(Manager *m, const HotUpdateResult *r) {
        HotUpdateResult copy;
        size_t slot;

        if (hotupdate_result_copy(r, &copy) < 0)
                return;
        if (m->n_history == HISTORY_MAX) {
                hotupdate_result_done(&m->history[m->history_first]);
                m->history[m->history_first] = copy;
                m->history_first = (m->history_first + 1) % HISTORY_MAX;
                return;
        }
        slot = (m->history_first + m->n_history) % HISTORY_MAX;
        m->history[slot] = copy;
        m->n_history++;
}

static const char *signal_name(Manager *m) {
        return m->config->signal_name ?: "SIGHUP";
}

static void pids_text(const GameProc *procs, size_t n, char *buf, size_t size) {
        size_t len = 0;

        buf[0] = 0;
        for (size_t i = 0; i < n && len + 16 < size; i++)
                len += (size_t) snprintf(buf + len, size - len, "%s%d", i ? ", " : "",
                                         (int) procs[i].pid);
}

/* ---- Update lifetime ---- */

static Update *update_new(Manager *m, UpdateOrigin origin) {
        Update *u = calloc(1, sizeof *u);

        if (!u)
                return NULL;
        u->m = m;
        u->origin = origin;
        u->tmp = TMP_FILE_NULL;
        return u;
}

static void update_stop_transfer(Update *u) {
        if (u->easy) {
                curl_glue_remove(u->m->curl, u->easy);
                curl_easy_cleanup(u->easy);
                u->easy = NULL;
        }
        if (u->headers) {
                curl_slist_free_all(u->headers);
                u->headers = NULL;
        }
        u->post_body = mfree(u->post_body);
        u->content_encoding = mfree(u->content_encoding);
        u->transfer_encoding = mfree(u->transfer_encoding);
        u->decoder = download_decoder_free(u->decoder);
        u->xfer = XFER_NONE;
}

static Update *update_free(Update *u) {
        if (!u)
                return NULL;
        update_stop_transfer(u);
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

static void waiter_link(Update *u, Waiter *w) {
        w->update = u;
        w->prev = NULL;
        w->next = u->waiters;
        if (u->waiters)
                u->waiters->prev = w;
        u->waiters = w;
}

void waiter_detach(Waiter *w) {
        Update *u;

        if (!w || !w->update)
                return;
        u = w->update;
        if (w->prev)
                w->prev->next = w->next;
        else
                u->waiters = w->next;
        if (w->next)
                w->next->prev = w->prev;
        w->prev = w->next = NULL;
        w->update = NULL;
}

/* The update is over and recorded (or the wait for okg-storaged timed out): answer everyone
 * waiting and make room for the next one. */
static void update_complete(Update *u, bool recorded) {
        Manager *m = u->m;

        if (m->update == u)
                m->update = NULL;
        while (u->waiters) {
                Waiter *w = u->waiters;
                waiter_detach(w);
                w->done(w, &u->result, recorded);
        }
        if (u->origin == ORIGIN_RECOVERY)
                manager_send_ready(m);
        update_free(u);
        m->phase = PHASE_IDLE;
        hotupdate_bus_emit_changed(m, m->bus);
        manager_notify_status(m);
}

static int arm_timer(Update *u, uint64_t usec, sd_event_time_handler_t cb) {
        u->timer = sd_event_source_disable_unref(u->timer);
        return sd_event_add_time_relative(u->m->event, &u->timer, CLOCK_MONOTONIC, usec, 0, cb, u);
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

static void update_finish(Update *u, HotUpdateOutcome o, const char *fmt, ...) {
        Manager *m = u->m;
        const HotUpdateOutcomeInfo *info = hotupdate_outcome_info(o);
        char message[MSG_MAX], at[HOTUPDATE_TIME_SIZE];
        const char *sha;
        va_list ap;
        int r;

        va_start(ap, fmt);
        vsnprintf(message, sizeof message, fmt, ap);
        va_end(ap);

        update_stop_transfer(u);
        files_tmp_discard(m->dir_fd, &u->tmp);
        u->timer = sd_event_source_disable_unref(u->timer);
        now_rfc3339(at);

        sha = u->sha256[0] ? u->sha256 : u->p.sha256;
        HotUpdateResult res = {
                .version = u->p.version,
                .url = u->p.url,
                .sha256 = (char *) sha,
                .file_name = u->p.file_name,
                .outcome = o,
                .message = message,
                .at = at,
                .current_version = (char *) current_version_or_null(m),
        };
        hotupdate_result_done(&u->result);
        if (hotupdate_result_copy(&res, &u->result) < 0) {
                log_oom();
                u->result = (HotUpdateResult) { .outcome = o };
        }
        u->finished = true;

        if (u->origin == ORIGIN_RECOVERY)
                log_full(info->success ? LOG_INFO : LOG_ERR, "Recovery of %s: %s: %s",
                         strempty(u->p.version), info->state, message);
        else
                log_full(info->success ? LOG_INFO : LOG_WARNING, "Hot update to %s: %s: %s",
                         strempty(u->p.version), info->state, message);

        history_push(m, &u->result);
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
                r = arm_timer(u, RECORD_ACCEPT_TIMEOUT_USEC, on_record_timeout);
        if (r < 0) {
                log_error_errno(r, "Failed to record the outcome: %m");
                update_complete(u, false);
        }
}

/* ---- the game process ---- */

/* Finds the processes to signal and checks each one handles the signal (the default action of
 * SIGHUP would end the game). Returns 0 when there is at least one and all are safe, else 1
 * with the outcome and reason, or a negative errno. */
static int game_lookup(Update *u, HotUpdateOutcome *ret_outcome, char *msg, size_t size) {
        Manager *m = u->m;
        const HotUpdateConfig *c = m->config;
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
        for (size_t i = 0; i < u->n_procs; i++) {
                GameDisposition d = game_signal_disposition(&u->procs[i].masks, c->signal_number);
                if (d == GAME_SIGNAL_DEFAULT || d == GAME_SIGNAL_IGNORED) {
                        snprintf(msg, size,
                                 d == GAME_SIGNAL_DEFAULT
                                         ? "PID %d (\"%s\") does not handle %s; sending it would "
                                           "run the default action (for most signals: end the game)"
                                         : "PID %d (\"%s\") ignores %s; it would not reload",
                                 (int) u->procs[i].pid, c->process_name, signal_name(m));
                        *ret_outcome = OUTCOME_RELOAD_FAILED;
                        return 1;
                }
        }
        return 0;
}

/* kill(2) to every selected process. On failure the reason is in msg, and the processes
 * signalled before the failing one are the first u->n_signalled. */
static int signal_procs(Update *u, char *msg, size_t size) {
        Manager *m = u->m;

        u->n_signalled = 0;
        for (size_t i = 0; i < u->n_procs; i++) {
                if (kill(u->procs[i].pid, m->config->signal_number) < 0) {
                        int r = -errno;
                        snprintf(msg, size, "cannot send %s to PID %d: %s", signal_name(m),
                                 (int) u->procs[i].pid,
                                 r == -ESRCH ? "it exited" : strerror(-r));
                        return r;
                }
                u->n_signalled++;
        }
        return 0;
}

/* ---- curl ---- */

static void on_transfer_done(CurlGlue *g, CURL *easy, CURLcode result, void *userdata);

static size_t discard_data(char *ptr, size_t size, size_t nmemb, void *userdata) {
        return size * nmemb;
}

#define EASY_SET(e, opt, val)                                             \
        do {                                                              \
                if (curl_easy_setopt((e), (opt), (val)) != CURLE_OK)      \
                        return -EIO;                                      \
        } while (0)

static int easy_setup(Update *u, const char *url, bool follow, uint64_t connect_ms,
                      uint64_t total_ms) {
        const HotUpdateConfig *c = u->m->config;
        CURL *e;

        update_stop_transfer(u);
        u->errbuf[0] = 0;
        e = u->easy = curl_easy_init();
        if (!e)
                return -ENOMEM;
        EASY_SET(e, CURLOPT_URL, url);
        EASY_SET(e, CURLOPT_NOSIGNAL, 1L);
        EASY_SET(e, CURLOPT_PROTOCOLS_STR, "http,https");
        EASY_SET(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
        EASY_SET(e, CURLOPT_FOLLOWLOCATION, follow ? 1L : 0L);
        EASY_SET(e, CURLOPT_MAXREDIRS, MAX_REDIRECTS);
        EASY_SET(e, CURLOPT_CONNECTTIMEOUT_MS, (long) connect_ms);
        EASY_SET(e, CURLOPT_TIMEOUT_MS, (long) total_ms);
        EASY_SET(e, CURLOPT_USERAGENT, "okg-hotupdated/" OKG_VERSION);
        EASY_SET(e, CURLOPT_ERRORBUFFER, u->errbuf);
        EASY_SET(e, CURLOPT_WRITEFUNCTION, discard_data);
        if (c->ca_file)
                EASY_SET(e, CURLOPT_CAINFO, c->ca_file);
        return 0;
}

static const char *curl_reason(Update *u, CURLcode result) {
        if (guard_stopped(&u->guard, result))
                return u->guard.reason;
        return u->errbuf[0] ? u->errbuf : curl_easy_strerror(result);
}

static int transfer_start(Update *u, TransferKind kind) {
        int r = guard_attach(&u->guard, u->easy, &u->m->config->policy,
                             kind == XFER_DOWNLOAD ? DESTINATION_DOWNLOAD : DESTINATION_GAME);
        if (r >= 0)
                r = curl_glue_add(u->m->curl, u->easy, on_transfer_done, u);
        if (r < 0)
                return r;
        u->xfer = kind;
        return 0;
}

/* ---- download ---- */

/* Decoded bytes: the file. maxFileSizeBytes counts these (a small coded body may expand to
 * much more). */
static int download_sink(const void *data, size_t n, void *userdata) {
        Update *u = userdata;
        int r;

        /* Servers without Content-Length (or one that lies) are cut here. */
        if (u->tmp.size + n > u->m->config->max_file_size) {
                u->too_large = true;
                return -EFBIG;
        }
        r = files_tmp_write(&u->tmp, data, n);
        if (r < 0) {
                u->write_error = r;
                return r;
        }
        sha256_update(&u->hash, data, n);
        return 0;
}

static int download_decoder_setup(Update *u) {
        if (u->decoder)
                return 0;
        return download_decoder_new(u->content_encoding, u->transfer_encoding, &u->decoder);
}

static size_t on_download_data(char *ptr, size_t size, size_t nmemb, void *userdata) {
        Update *u = userdata;
        size_t n = size * nmemb;
        long code = 0;
        int r;

        /* Only the body of a 2xx answer is the file; an error page is not written anywhere. */
        (void) curl_easy_getinfo(u->easy, CURLINFO_RESPONSE_CODE, &code);
        if (code < 200 || code > 299) {
                u->bad_status = code;
                return 0;
        }
        r = download_decoder_setup(u);
        if (r >= 0)
                r = download_decoder_feed(u->decoder, ptr, n, download_sink, u);
        if (r == -EBADMSG)
                snprintf(u->refused, sizeof u->refused,
                         "the %s stream the server sent is not valid (corrupt, or followed by "
                         "more bytes); nothing was installed",
                         download_decoder_failed_coding(u->decoder));
        else if (r < 0 && !u->too_large && u->write_error == 0)
                u->write_error = r;
        return r < 0 ? 0 : n;
}

/* Where a redirect goes, resolved against the URL that answered it: 1 when it stays on https, 0
 * when not (*ret_target says where, scheme://host), -ENOMEM. One libcurl cannot parse counts
 * as staying: libcurl refuses it anyway (CURLOPT_REDIR_PROTOCOLS_STR). */
static int redirect_stays_https(Update *u, const char *location, char **ret_target) {
        CURLU *h = curl_url();
        char *base = NULL, *scheme = NULL, *host = NULL;
        int r = 1;

        if (!h)
                return -ENOMEM;
        if (curl_easy_getinfo(u->easy, CURLINFO_EFFECTIVE_URL, &base) == CURLE_OK && base)
                (void) curl_url_set(h, CURLUPART_URL, base, 0);
        if (curl_url_set(h, CURLUPART_URL, location, CURLU_NON_SUPPORT_SCHEME) == CURLUE_OK &&
            curl_url_get(h, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
            strcasecmp(scheme, "https") != 0) {
                (void) curl_url_get(h, CURLUPART_HOST, &host, 0);
                if (asprintf(ret_target, "%s://%s", scheme, strempty(host)) < 0)
                        r = -ENOMEM;
                else
                        r = 0;
        }
        curl_free(scheme);
        curl_free(host);
        curl_url_cleanup(h);
        return r;
}

/* Every header line of every response, redirects included. Refuses, before any byte of a body
 * is taken: a redirect that leaves https (unless allowInsecureRedirects), and a content or
 * transfer coding we cannot decode. The codings of a 2xx answer are kept for its decoder. */
static size_t on_download_header(char *line, size_t size, size_t nmemb, void *userdata) {
        Update *u = userdata;
        size_t n = size * nmemb;
        _cleanup_(freep) char *v = NULL, *target = NULL;
        char bad[64], known[64];
        bool transfer = false;
        long code = 0;
        int r;

        (void) curl_easy_getinfo(u->easy, CURLINFO_RESPONSE_CODE, &code);
        if (code >= 300 && code <= 399) {
                if (!u->https_only)
                        return n;
                r = download_header_value(line, n, "Location", &v);
                if (r > 0)
                        r = redirect_stays_https(u, v, &target);
                if (r < 0) {
                        u->write_error = r;
                        return 0;
                }
                if (r == 0 && target) {
                        snprintf(u->refused, sizeof u->refused,
                                 "refused a redirect from https to %s: the file would be fetched "
                                 "without TLS (allowInsecureRedirects: true allows it)",
                                 target);
                        return 0;
                }
                return n;
        }
        if (code < 200 || code > 299)
                return n;
        if (n >= 5 && strncmp(line, "HTTP/", 5) == 0) {
                /* A new response (after a 1xx): its codings only. */
                u->content_encoding = mfree(u->content_encoding);
                u->transfer_encoding = mfree(u->transfer_encoding);
                return n;
        }
        r = download_header_value(line, n, "Content-Encoding", &v);
        if (r == 0) {
                transfer = true;
                r = download_header_value(line, n, "Transfer-Encoding", &v);
        }
        if (r < 0) {
                u->write_error = r;
                return 0;
        }
        if (r == 0)
                return n;
        if (download_coding_check(v, u->m->codings, transfer, bad, sizeof bad) > 0) {
                download_codings_format(u->m->codings, known, sizeof known);
                snprintf(u->refused, sizeof u->refused,
                         "the server sent %s: %s, a coding okg-hotupdated cannot decode (it "
                         "decodes %s); nothing was installed",
                         transfer ? "Transfer-Encoding" : "Content-Encoding", bad, known);
                return 0;
        }
        /* The header may come in several lines: their lists add up. */
        char **list = transfer ? &u->transfer_encoding : &u->content_encoding;
        if (*list) {
                char *joined;
                if (asprintf(&joined, "%s, %s", *list, v) < 0) {
                        u->write_error = -ENOMEM;
                        return 0;
                }
                free(*list);
                *list = joined;
        } else
                *list = TAKE_PTR(v);
        return n;
}

/* allowedSources and allowedFileNames, for a request and for a recorded version alike (a
 * record may predate the list). True when refused, and the update is finished. */
static bool update_refused_by_policy(Update *u) {
        const HotUpdatePolicy *p = &u->m->config->policy;
        char msg[MSG_MAX];

        if (!hotupdate_policy_check_source(p, u->p.url, msg, sizeof msg) &&
            !hotupdate_policy_check_file_name(p, u->p.file_name, msg, sizeof msg))
                return false;
        if (u->origin == ORIGIN_RECOVERY)
                update_finish(u, OUTCOME_RECOVERY_FAILED, "Forbidden: %s", msg);
        else
                update_finish(u, OUTCOME_FORBIDDEN, "%s", msg);
        return true;
}

static void update_start_download(Update *u) {
        Manager *m = u->m;
        const HotUpdateConfig *c = m->config;
        int r;

        r = files_tmp_open(m->dir_fd, &u->tmp);
        if (r < 0) {
                update_finish(u, u->origin == ORIGIN_RECOVERY ? OUTCOME_RECOVERY_FAILED
                                                              : hotupdate_outcome_from_errno(r),
                              "cannot create a file in %s: %s", c->download_dir, strerror(-r));
                return;
        }
        sha256_init(&u->hash);
        u->sha256[0] = 0;
        u->bad_status = 0;
        u->too_large = false;
        u->write_error = 0;
        u->refused[0] = 0;
        u->https_only = !c->allow_insecure_redirects && strncasecmp(u->p.url, "https:", 6) == 0;

        r = easy_setup(u, u->p.url, true, (uint64_t) c->connect_timeout_sec * 1000,
                       (uint64_t) c->download_timeout_sec * 1000);
        if (r >= 0 &&
            (curl_easy_setopt(u->easy, CURLOPT_WRITEFUNCTION, on_download_data) != CURLE_OK ||
             curl_easy_setopt(u->easy, CURLOPT_WRITEDATA, u) != CURLE_OK ||
             curl_easy_setopt(u->easy, CURLOPT_MAXFILESIZE_LARGE,
                              (curl_off_t) c->max_file_size) != CURLE_OK ||
             /* Every coding we decode is asked for and decoded by us (download_decoder_*),
              * not by libcurl, whose decoders take a stream cut short for a whole one: the
              * file, its size limit and its checksum are the decoded content. */
             curl_easy_setopt(u->easy, CURLOPT_ACCEPT_ENCODING, "gzip, deflate, br, zstd") !=
                     CURLE_OK ||
             curl_easy_setopt(u->easy, CURLOPT_HTTP_CONTENT_DECODING, 0L) != CURLE_OK ||
             curl_easy_setopt(u->easy, CURLOPT_HEADERFUNCTION, on_download_header) != CURLE_OK ||
             curl_easy_setopt(u->easy, CURLOPT_HEADERDATA, u) != CURLE_OK ||
             (u->https_only &&
              curl_easy_setopt(u->easy, CURLOPT_REDIR_PROTOCOLS_STR, "https") != CURLE_OK)))
                r = -EIO;
        if (r >= 0)
                r = transfer_start(u, XFER_DOWNLOAD);
        if (r < 0) {
                update_finish(u, OUTCOME_FAILED, "cannot start the download: %s", strerror(-r));
                return;
        }
        log_info("Downloading %s for %s%s.", u->p.url, u->p.version,
                 u->origin == ORIGIN_RECOVERY ? " (recovery)" : "");
        manager_set_phase(m, u->origin == ORIGIN_RECOVERY ? PHASE_RECOVERING : PHASE_DOWNLOADING);
        manager_notify_status(m);
}

/* Maps how the transfer ended to an outcome; 0 when the file is complete. */
static int download_outcome(Update *u, CURLcode result, HotUpdateOutcome *ret, char *msg,
                            size_t size) {
        const HotUpdateConfig *c = u->m->config;
        long code = 0;

        (void) curl_easy_getinfo(u->easy, CURLINFO_RESPONSE_CODE, &code);
        if (guard_stopped(&u->guard, result)) {
                *ret = OUTCOME_FORBIDDEN;
                snprintf(msg, size, "%s", u->guard.reason);
        } else if (u->refused[0]) {
                *ret = OUTCOME_DOWNLOAD_FAILED;
                snprintf(msg, size, "%s", u->refused);
        } else if (u->too_large || result == CURLE_FILESIZE_EXCEEDED) {
                *ret = OUTCOME_FILE_TOO_LARGE;
                snprintf(msg, size, "the file is larger than maxFileSizeBytes (%" PRIu64 " bytes)",
                         c->max_file_size);
        } else if (u->write_error < 0) {
                *ret = hotupdate_outcome_from_errno(u->write_error);
                snprintf(msg, size, "cannot write to %s: %s", c->download_dir,
                         strerror(-u->write_error));
        } else if (u->bad_status > 0 || (result == CURLE_OK && (code < 200 || code > 299))) {
                *ret = OUTCOME_DOWNLOAD_FAILED;
                snprintf(msg, size, "the server answered HTTP %ld", u->bad_status ?: code);
        } else if (result == CURLE_OPERATION_TIMEDOUT) {
                *ret = OUTCOME_DOWNLOAD_TIMED_OUT;
                snprintf(msg, size, "download timed out (connectTimeoutSeconds %u, "
                         "downloadTimeoutSeconds %u): %s",
                         c->connect_timeout_sec, c->download_timeout_sec, curl_reason(u, result));
        } else if (result == CURLE_UNSUPPORTED_PROTOCOL && u->https_only) {
                *ret = OUTCOME_DOWNLOAD_FAILED;
                snprintf(msg, size, "refused a redirect away from https (%s): the file is fetched "
                         "over TLS only (allowInsecureRedirects: true allows http)",
                         curl_reason(u, result));
        } else if (result != CURLE_OK) {
                *ret = OUTCOME_DOWNLOAD_FAILED;
                snprintf(msg, size, "download failed: %s", curl_reason(u, result));
        } else {
                /* The body is all here: every coded stream must have ended with it. */
                int r = download_decoder_setup(u);
                if (r >= 0)
                        r = download_decoder_finish(u->decoder);
                if (r == -EPIPE) {
                        *ret = OUTCOME_DOWNLOAD_FAILED;
                        snprintf(msg, size, "the compressed stream ended early (the %s stream "
                                 "stopped short: a cut or broken object on the server); nothing "
                                 "was installed", download_decoder_failed_coding(u->decoder));
                } else if (r < 0) {
                        *ret = OUTCOME_FAILED;
                        snprintf(msg, size, "cannot decode the download: %s", strerror(-r));
                } else
                        return 0;
        }
        return 1;
}

static void update_install_and_reload(Update *u);
static void recovery_install(Update *u);
static void update_succeed(Update *u, const char *note);

static void download_done(Update *u, CURLcode result) {
        Manager *m = u->m;
        HotUpdateOutcome o;
        char msg[MSG_MAX];

        if (download_outcome(u, result, &o, msg, sizeof msg) > 0) {
                if (u->origin == ORIGIN_RECOVERY)
                        update_finish(u, OUTCOME_RECOVERY_FAILED, "%s: %s",
                                      hotupdate_outcome_to_string(o), msg);
                else
                        update_finish(u, o, "%s", msg);
                return;
        }
        update_stop_transfer(u);
        sha256_final_hex(&u->hash, u->sha256);
        u->size = u->tmp.size;

        if (u->p.sha256 && !streq(u->p.sha256, u->sha256)) {
                if (u->origin == ORIGIN_RECOVERY)
                        update_finish(u, OUTCOME_RECOVERY_FAILED,
                                      "ChecksumMismatch: expected sha256 %s, the download has %s",
                                      u->p.sha256, u->sha256);
                else
                        update_finish(u, OUTCOME_CHECKSUM_MISMATCH,
                                      "expected sha256 %s, the download has %s", u->p.sha256,
                                      u->sha256);
                return;
        }
        log_info("Downloaded %s: %" PRIu64 " bytes, sha256 %s.", u->p.url, u->size, u->sha256);

        if (u->origin == ORIGIN_RECOVERY) {
                recovery_install(u);
                return;
        }

        /* Same bytes as the file in place (a new version name for the same content): nothing
         * to install, nothing for the game to reload. */
        FileId id;
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

/* ---- install, reload, check, rollback ---- */

static int reload_request_start(Update *u) {
        Manager *m = u->m;
        const HotUpdateConfig *c = m->config;
        _cleanup_(freep) char *url = NULL;
        bool v6 = strchr(c->request_address, ':');
        int r;

        if (asprintf(&url, "http://%s%s%s:%u%s", v6 ? "[" : "", c->request_address, v6 ? "]" : "",
                     (unsigned) c->request_port, c->request_path) < 0)
                return -ENOMEM;
        r = easy_setup(u, url, false, (uint64_t) c->connect_timeout_sec * 1000,
                       (uint64_t) c->request_timeout_sec * 1000);
        if (r < 0)
                return r;

        if (!streq(c->request_method, "GET") && !streq(c->request_method, "DELETE")) {
                /* Tell the game what it is reloading; it may ignore the body. */
                _cleanup_(freep) char *path = NULL;
                json_object *o = json_object_new_object();
                if (!o)
                        return -ENOMEM;
                if (asprintf(&path, "%s/%s", c->download_dir, u->p.file_name) < 0) {
                        json_object_put(o);
                        return -ENOMEM;
                }
                json_object_object_add(o, "version", json_object_new_string(u->p.version));
                json_object_object_add(o, "fileName", json_object_new_string(u->p.file_name));
                json_object_object_add(o, "path", json_object_new_string(path));
                if (u->sha256[0])
                        json_object_object_add(o, "sha256", json_object_new_string(u->sha256));
                json_object_object_add(o, "rollback", json_object_new_boolean(u->rolling_back));
                u->post_body = strdup(json_object_to_json_string_ext(
                                o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
                json_object_put(o);
                if (!u->post_body)
                        return -ENOMEM;
                u->headers = curl_slist_append(NULL, "Content-Type: application/json");
                if (!u->headers)
                        return -ENOMEM;
                EASY_SET(u->easy, CURLOPT_HTTPHEADER, u->headers);
                EASY_SET(u->easy, CURLOPT_POSTFIELDS, u->post_body);
                EASY_SET(u->easy, CURLOPT_POSTFIELDSIZE, (long) strlen(u->post_body));
        }
        if (!streq(c->request_method, "GET") && !streq(c->request_method, "POST"))
                EASY_SET(u->easy, CURLOPT_CUSTOMREQUEST, c->request_method);
        else if (streq(c->request_method, "GET"))
                EASY_SET(u->easy, CURLOPT_HTTPGET, 1L);
        return transfer_start(u, XFER_RELOAD);
}

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

/* "cannot install DIR/NAME: why", naming the path that failed when it is another one (the
 * previous copy's name taken by a folder, say). */
static void install_failure(const HotUpdateConfig *c, const char *name, const char *failed, int r,
                            char *msg, size_t size) {
        if (failed[0] && !streq(failed, name))
                snprintf(msg, size, "cannot install %s/%s: %s/%s: %s", c->download_dir, name,
                         c->download_dir, failed, strerror(-r));
        else
                snprintf(msg, size, "cannot install %s/%s: %s", c->download_dir, name,
                         strerror(-r));
}

static void update_install_and_reload(Update *u) {
        Manager *m = u->m;
        const HotUpdateConfig *c = m->config;
        HotUpdateOutcome o;
        char msg[MSG_MAX], failed[FILES_NAME_MAX];
        int r;

        manager_set_phase(m, PHASE_RELOADING);

        /* Again right before the rename: the game may have gone while we downloaded, and then
         * nothing must change. */
        if (c->load_patch_type == LOAD_PATCH_SIGNAL) {
                r = game_lookup(u, &o, msg, sizeof msg);
                if (r != 0) {
                        update_finish(u, r < 0 ? OUTCOME_FAILED : o, "%s",
                                      r < 0 ? strerror(-r) : msg);
                        return;
                }
        }

        r = files_install(m->dir_fd, &u->tmp, u->p.file_name, &u->had_previous, failed,
                          sizeof failed);
        if (r < 0) {
                install_failure(c, u->p.file_name, failed, r, msg, sizeof msg);
                update_finish(u, hotupdate_outcome_from_errno(r), "%s", msg);
                return;
        }
        u->installed_ticks = game_boot_ticks_now();

        if (c->load_patch_type == LOAD_PATCH_SIGNAL) {
                r = signal_procs(u, msg, sizeof msg);
                if (r < 0) {
                        reload_failed_restore(u, msg);
                        return;
                }
                u->signalled_at = okg_now_usec();
                pids_text(u->procs, u->n_procs, msg, sizeof msg);
                log_info("Installed %s as %s/%s and sent %s to PID %s.", u->p.version,
                         c->download_dir, u->p.file_name, signal_name(m), msg);
                update_after_reload(u);
                return;
        }

        r = reload_request_start(u);
        if (r < 0)
                reload_failed_restore(u, "cannot send the reload request");
}

static void check_start(Update *u);

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
        if (arm_timer(u, (uint64_t) c->check_delay_msec * USEC_PER_MSEC, on_check_timer) < 0)
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
        r = easy_setup(u, c->check_url, false, left_ms, left_ms);
        if (r >= 0)
                r = transfer_start(u, XFER_CHECK);
        if (r < 0)
                update_rollback(u, "cannot start the post-reload check");
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

static void check_done(Update *u, CURLcode result) {
        const HotUpdateConfig *c = u->m->config;
        char reason[MSG_MAX + 64];
        long code = 0;

        (void) curl_easy_getinfo(u->easy, CURLINFO_RESPONSE_CODE, &code);
        if (result != CURLE_OK)
                snprintf(u->last_check, sizeof u->last_check, "%s", curl_reason(u, result));
        else
                snprintf(u->last_check, sizeof u->last_check, "HTTP %ld", code);
        update_stop_transfer(u);

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
                if (arm_timer(u, CHECK_PERIOD_USEC, on_check_timer) >= 0)
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
                         alive, (now - u->signalled_at) / USEC_PER_MSEC, signal_name(u->m));
                u->game_exited = true;
                update_rollback(u, reason);
                return;
        }
        end = u->signalled_at + (uint64_t) c->settle_msec * USEC_PER_MSEC;
        if (now < end) {
                manager_set_phase(u->m, PHASE_CHECKING);
                if (arm_timer(u, end - now, on_settle_timer) < 0)
                        update_rollback(u, "cannot arm the settle timer");
                return;
        }
        update_succeed(u, NULL);
}

static bool procs_contain(const GameProc *procs, size_t n, const GameProc *p) {
        for (size_t i = 0; i < n; i++)
                if (procs[i].pid == p->pid && procs[i].start_ticks == p->start_ticks)
                        return true;
        return false;
}

/* Appends "; PID a, b <what>" to buf for the processes in procs. */
static void append_pids(char *buf, size_t size, const GameProc *procs, size_t n, const char *what) {
        char pids[MSG_MAX / 2];
        size_t len = strlen(buf);

        if (n == 0 || len >= size)
                return;
        pids_text(procs, n, pids, sizeof pids);
        snprintf(buf + len, size - len, "; PID %s %s", pids, what);
}

/* A signalled process exited after the signal, and the previous file is back. Told to reload it:
 * the signalled processes that survived, and the game's processes that started since (a
 * supervisor restarted the game) while the rejected file was in place, so that they do not
 * keep running on it. Not told: a process that started after the previous file was back (it
 * read that one), and one that does not handle the signal (yet), which would just end. */
static void rollback_survivors(Update *u, const char *reason, uint64_t restored_ticks) {
        Manager *m = u->m;
        _cleanup_(freep) GameProc *now = NULL, *later = NULL, *unsafe = NULL;
        size_t n_now = 0, n = 0, n_survivors, n_later = 0, n_unsafe = 0, n_signalled;
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
        for (size_t i = 0; i < n_now; i++) {
                GameDisposition d;

                if (procs_contain(u->procs, n_survivors, &now[i]))
                        continue;
                d = game_signal_disposition(&now[i].masks, m->config->signal_number);
                if (now[i].start_ticks > restored_ticks)
                        later[n_later++] = now[i];
                else if (d == GAME_SIGNAL_DEFAULT || d == GAME_SIGNAL_IGNORED)
                        unsafe[n_unsafe++] = now[i];
                else
                        u->procs[n++] = now[i];
        }
        u->n_procs = n;
        u->n_signalled = 0;

        append_pids(notes, sizeof notes, later, n_later,
                    "started after the previous file was back and reads it: not signalled");
        snprintf(pids, sizeof pids, "started since the signal (a restart) but does not handle %s "
                 "yet: not signalled, it keeps what it read of the rejected file until it "
                 "reloads or restarts", signal_name(m));
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
        r = signal_procs(u, msg, sizeof msg);
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
                pids_text(u->procs, n_survivors, pids, sizeof pids);
                snprintf(msg, sizeof msg, " and the processes still running (PID %s) were "
                         "reloaded again", pids);
        }
        if (n_signalled > n_survivors) {
                size_t len = strlen(msg);
                pids_text(u->procs + n_survivors, n_signalled - n_survivors, pids, sizeof pids);
                snprintf(msg + len, sizeof msg - len, "%s the game restarted since the signal "
                         "(PID %s) was sent %s to load it", n_survivors > 0 ? ";" : " and",
                         pids, signal_name(m));
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
                r = reload_request_start(u);
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
        r = game_lookup(u, &o, msg, sizeof msg);
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
        r = signal_procs(u, msg, sizeof msg);
        if (r < 0) {
                update_finish(u, OUTCOME_ROLLBACK_FAILED,
                              "%s; the previous file is back but the game was not reloaded: %s",
                              reason, msg);
                return;
        }
        update_finish(u, OUTCOME_ROLLED_BACK,
                      "%s; the previous file is back and the game was reloaded again", reason);
}

static void reload_done(Update *u, CURLcode result) {
        char reason[MSG_MAX];
        long code = 0;

        (void) curl_easy_getinfo(u->easy, CURLINFO_RESPONSE_CODE, &code);
        if (result != CURLE_OK)
                snprintf(reason, sizeof reason, "reload request failed: %s",
                         curl_reason(u, result));
        else
                snprintf(reason, sizeof reason, "reload request answered HTTP %ld", code);
        update_stop_transfer(u);
        bool ok = result == CURLE_OK && code >= 200 && code <= 299;

        if (u->origin == ORIGIN_RECOVERY) {
                if (ok) {
                        update_finish(u, OUTCOME_RECOVERED, "re-applied %s; %s", u->p.version,
                                      reason);
                        return;
                }
                if (okg_now_usec() + RELOAD_RETRY_USEC < u->deadline) {
                        manager_send_ready(u->m);
                        manager_set_phase(u->m, PHASE_WAITING_FOR_GAME);
                        if (arm_timer(u, RELOAD_RETRY_USEC, recovery_on_retry) >= 0)
                                return;
                }
                update_finish(u, OUTCOME_RECOVERED,
                              "re-applied %s; the game's reload endpoint did not answer 2xx "
                              "(%s), it reads the file when it starts",
                              u->p.version, reason);
                return;
        }
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

static void on_transfer_done(CurlGlue *g, CURL *easy, CURLcode result, void *userdata) {
        Update *u = userdata;

        switch (u->xfer) {
        case XFER_DOWNLOAD: {
                curl_off_t usec = 0, bytes = 0;
                if (curl_easy_getinfo(easy, CURLINFO_TOTAL_TIME_T, &usec) == CURLE_OK && usec > 0)
                        u->m->download_usec += (uint64_t) usec;
                if (curl_easy_getinfo(easy, CURLINFO_SIZE_DOWNLOAD_T, &bytes) == CURLE_OK && bytes > 0)
                        u->m->download_bytes += (uint64_t) bytes;
                u->m->downloads++;
                download_done(u, result);
                break;
        }
        case XFER_RELOAD:
                reload_done(u, result);
                break;
        case XFER_CHECK:
                check_done(u, result);
                break;
        case XFER_NONE:
                break;
        }
}

static void update_succeed(Update *u, const char *note) {
        Manager *m = u->m;
        const HotUpdateConfig *c = m->config;
        char at[HOTUPDATE_TIME_SIZE], what[MSG_MAX];
        HotUpdateVersion v;

        now_rfc3339(at);
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
                pids_text(u->procs, u->n_procs, pids, sizeof pids);
                snprintf(what, sizeof what, "sent %s to PID %s%s", signal_name(m), pids,
                         c->check_url ? "; post-reload check passed" : "");
        } else
                snprintf(what, sizeof what, "reload request answered 2xx%s",
                         c->check_url ? "; post-reload check passed" : "");
        update_finish(u, OUTCOME_SUCCEEDED, "applied %s (%" PRIu64 " bytes) as %s/%s; %s",
                      u->p.version, u->size, c->download_dir, u->p.file_name, what);
}

/* ---- recovery ---- */

static void recovery_install(Update *u) {
        Manager *m = u->m;
        const HotUpdateConfig *c = m->config;
        char failed[FILES_NAME_MAX], msg[MSG_MAX];
        int r;

        r = files_install(m->dir_fd, &u->tmp, u->p.file_name, &u->had_previous, failed,
                          sizeof failed);
        if (r < 0) {
                install_failure(c, u->p.file_name, failed, r, msg, sizeof msg);
                update_finish(u, OUTCOME_RECOVERY_FAILED, "%s", msg);
                return;
        }
        u->installed_ticks = game_boot_ticks_now();

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

static int on_game_poll(sd_event_source *s, uint64_t usec, void *userdata) {
        recovery_reload(userdata);
        return 0;
}

static int recovery_on_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        recovery_reload(userdata);
        return 0;
}

/* Tells a game that was already running about the file recovery put back. A game that starts
 * after the file was in place reads it anyway, and one that does not handle the signal yet (it
 * may be starting up) is left alone until it does or the wait ends. */
static void recovery_reload(Update *u) {
        Manager *m = u->m;
        const HotUpdateConfig *c = m->config;
        size_t n_signal = 0, n_later = 0, n_unsafe = 0;
        char pids[MSG_MAX / 2];
        int r;

        if (c->load_patch_type == LOAD_PATCH_REQUEST) {
                r = reload_request_start(u);
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

        /* Keep the ones to signal at the front. */
        for (size_t i = 0; i < u->n_procs; i++) {
                GameProc p = u->procs[i];
                GameDisposition d = game_signal_disposition(&p.masks, c->signal_number);

                if (p.start_ticks > u->installed_ticks)
                        n_later++;
                else if (d == GAME_SIGNAL_CAUGHT || d == GAME_SIGNAL_BLOCKED)
                        u->procs[n_signal++] = p;
                else
                        n_unsafe++;
        }

        if (n_signal == 0 && n_unsafe == 0 && n_later > 0) {
                update_finish(u, OUTCOME_RECOVERED,
                              "re-applied %s; the game started after the file was in place",
                              u->p.version);
                return;
        }
        if (n_signal > 0 && n_unsafe == 0) {
                char msg[MSG_MAX];

                u->n_procs = n_signal;
                if (signal_procs(u, msg, sizeof msg) < 0) {
                        update_finish(u, OUTCOME_RECOVERED, "re-applied %s; %s", u->p.version, msg);
                        return;
                }
                pids_text(u->procs, u->n_procs, pids, sizeof pids);
                update_finish(u, OUTCOME_RECOVERED, "re-applied %s; sent %s to PID %s",
                              u->p.version, signal_name(m), pids);
                return;
        }

        /* Not there yet, or not ready for the signal: wait (after READY=1, so that a game that
         * waits for the sidecar can start). */
        if (okg_now_usec() + GAME_POLL_USEC < u->deadline) {
                manager_send_ready(m);
                if (m->phase != PHASE_WAITING_FOR_GAME) {
                        log_info("Recovery: waiting up to %u s for \"%s\".", c->game_wait_sec,
                                 c->process_name);
                        manager_set_phase(m, PHASE_WAITING_FOR_GAME);
                }
                if (arm_timer(u, GAME_POLL_USEC, on_game_poll) >= 0)
                        return;
        }
        if (n_unsafe > 0)
                update_finish(u, OUTCOME_RECOVERED,
                              "re-applied %s; the game does not handle %s, not signalled",
                              u->p.version, signal_name(m));
        else
                update_finish(u, OUTCOME_RECOVERED,
                              "re-applied %s; no process titled \"%s\" within %u s, it reads "
                              "the file when it starts",
                              u->p.version, c->process_name, c->game_wait_sec);
}

static void recovery_nothing(Manager *m, const char *why) {
        Update *u = m->update;

        log_info("Recovery: %s.", why);
        m->recovery_stage = RECOVERY_DONE;
        m->fetch_timer = sd_event_source_disable_unref(m->fetch_timer);
        m->refetch_timer = sd_event_source_disable_unref(m->refetch_timer);
        if (u && u->origin == ORIGIN_RECOVERY)
                update_complete(u, false);
}

/* A record to restore: check the file, download it again when it is missing or different. */
static void recovery_apply(Manager *m, HotUpdateRecord *rec, bool from_fleet, const char *pod) {
        Update *u = m->update;
        char sha[SHA256_HEX_SIZE], at[HOTUPDATE_TIME_SIZE];
        FileId id;
        int r;

        m->recovery_stage = RECOVERY_DONE;
        m->fetch_timer = sd_event_source_disable_unref(m->fetch_timer);
        m->refetch_timer = sd_event_source_disable_unref(m->refetch_timer);

        u->from_fleet = from_fleet;
        u->applied = rec->current;
        rec->current = (HotUpdateVersion) {};
        if (from_fleet) {
                /* This pod applies it now; its own record says so. */
                now_rfc3339(at);
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
                update_start_download(u);
}

static void on_record(int error, const char *message, const char *record, const char *pod,
                      void *userdata);

static int on_refetch(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;

        if (m->shutting_down || m->recovery_stage == RECOVERY_DONE)
                return 0;
        if (okg_storage_get_record(m->storage, m->recovery_stage == RECOVERY_OWN ? NULL : "appliedAt",
                                   on_record, m) < 0) {
                (void) sd_event_source_set_time_relative(s, USEC_PER_SEC);
                (void) sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        }
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
                if (m->refetch_timer) {
                        (void) sd_event_source_set_time_relative(m->refetch_timer, USEC_PER_SEC);
                        (void) sd_event_source_set_enabled(m->refetch_timer, SD_EVENT_ONESHOT);
                } else if (sd_event_add_time_relative(m->event, &m->refetch_timer, CLOCK_MONOTONIC,
                                                      USEC_PER_SEC, 0, on_refetch, m) >= 0)
                        return;
                else
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
                history_push(m, &m->record.last);
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
                history_push(m, &m->record.last);
        }
        if (hotupdate_version_is_set(&rec.current))
                recovery_apply(m, &rec, false, NULL);
        else
                recovery_nothing(m, "no recorded version to restore");
        hotupdate_record_done(&rec);
        return 1;
}

static int recovery_begin(Manager *m) {
        int r;

        m->update = update_new(m, ORIGIN_RECOVERY);
        if (!m->update)
                return -ENOMEM;
        m->phase = PHASE_RECOVERING;
        m->recovery_stage = RECOVERY_OWN;
        if (recovery_from_local(m) > 0)
                return 0;
        r = sd_event_add_time_relative(m->event, &m->fetch_timer, CLOCK_MONOTONIC,
                                       RECORD_FETCH_TIMEOUT_USEC, 0, on_fetch_timeout, m);
        if (r < 0)
                return r;
        return okg_storage_get_record(m->storage, NULL, on_record, m);
}

/* ---- requests ---- */

static int on_update_run(sd_event_source *s, void *userdata) {
        Update *u = userdata;
        HotUpdateOutcome o;
        char msg[MSG_MAX];
        int r;

        u->defer = sd_event_source_disable_unref(u->defer);
        if (update_refused_by_policy(u))
                return 0;
        if (u->has_immediate) {
                update_finish(u, u->immediate, "%s is already in place (%s/%s); nothing to do",
                              u->p.version, u->m->config->download_dir, u->p.file_name);
                return 0;
        }
        /* Fail fast, before downloading anything, when there is no game to reload. */
        if (u->m->config->load_patch_type == LOAD_PATCH_SIGNAL) {
                r = game_lookup(u, &o, msg, sizeof msg);
                if (r != 0) {
                        update_finish(u, r < 0 ? OUTCOME_FAILED : o, "%s",
                                      r < 0 ? strerror(-r) : msg);
                        return 0;
                }
        }
        update_start_download(u);
        return 0;
}

int manager_refusal(Manager *m, HotUpdateOutcome o, const char *message, const HotUpdateParams *p,
                    HotUpdateResult *ret) {
        char at[HOTUPDATE_TIME_SIZE];

        if (o >= 0 && o < _OUTCOME_MAX)
                m->outcomes[o]++;
        now_rfc3339(at);
        HotUpdateResult r = {
                .version = p ? p->version : NULL,
                .url = p ? p->url : NULL,
                .sha256 = p ? p->sha256 : NULL,
                .file_name = p ? p->file_name : NULL,
                .outcome = o,
                .message = (char *) message,
                .at = at,
                .current_version = (char *) current_version_or_null(m),
        };
        return hotupdate_result_copy(&r, ret);
}

int manager_submit(Manager *m, const HotUpdateParams *p, Waiter *w, HotUpdateResult *ret) {
        const HotUpdateVersion *cur = &m->record.current;
        _cleanup_(freep) char *msg = NULL;
        bool unchanged = false;
        Update *u;
        int r;

        if (m->shutting_down)
                return manager_refusal(m, OUTCOME_SHUTTING_DOWN, "okg-hotupdated is stopping", p,
                                       ret) < 0 ? -ENOMEM : 1;
        if (m->update) {
                if (m->update->origin == ORIGIN_RECOVERY)
                        r = asprintf(&msg, "recovery at start is in progress (%s); try again later",
                                     hotupdate_phase_to_string(m->phase));
                else
                        r = asprintf(&msg, "another update is in flight (version %s, %s)",
                                     m->update->p.version, hotupdate_phase_to_string(m->phase));
                if (r < 0)
                        return -ENOMEM;
                return manager_refusal(m, OUTCOME_BUSY, msg, p, ret) < 0 ? -ENOMEM : 1;
        }

        if (m->current_in_place && cur->version && streq(cur->version, p->version)) {
                FileId id;

                if (!streq(cur->url, p->url) || !streq(cur->file_name, p->file_name) ||
                    (p->sha256 && !streq(p->sha256, cur->sha256))) {
                        if (asprintf(&msg, "version %s is already in place with different "
                                     "content (url %s, fileName %s, sha256 %s); use a new version",
                                     cur->version, cur->url, cur->file_name, cur->sha256) < 0)
                                return -ENOMEM;
                        return manager_refusal(m, OUTCOME_VERSION_CONFLICT, msg, p, ret) < 0
                                       ? -ENOMEM
                                       : 1;
                }
                /* The same request again: nothing to do, unless the file was changed or removed
                 * behind our back, in which case it is applied again. */
                unchanged = m->have_current_id && files_id(m->dir_fd, p->file_name, &id) >= 0 &&
                            files_id_equal(&id, &m->current_id);
                if (!unchanged)
                        log_info("%s/%s is no longer what %s installed; applying %s again.",
                                 m->config->download_dir, p->file_name, cur->version, p->version);
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

/* ---- status ---- */

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
        const char *v = current_version_or_null(m);

        if (!o)
                return NULL;
        json_add(o, "state", json_object_new_string(hotupdate_phase_to_string(m->phase)));
        json_add(o, "version", v ? json_object_new_string(v) : NULL);
        json_add(o, "current", m->current_in_place ? hotupdate_version_to_json(&m->record.current)
                                                   : NULL);
        json_add(o, "previous", hotupdate_version_is_set(&m->record.previous)
                                        ? hotupdate_version_to_json(&m->record.previous)
                                        : NULL);
        if (m->update && m->update->origin == ORIGIN_REQUEST) {
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
                        size_t k = (m->history_first + i - 1) % HISTORY_MAX;
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

int manager_metrics_text(Manager *m, char **ret) {
        const char *version = current_version_or_null(m);
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
        Manager *m = calloc(1, sizeof *m);
        const char *s;

        if (!m)
                return -ENOMEM;
        m->event = sd_event_ref(e);
        m->config = config;
        m->dir_fd = -EBADF;
        s = getenv("OKG_SIDECARD_PID");
        if (s)
                m->exclude_tree = (pid_t) atoi(s);
        s = getenv("OKG_STATE_DIR");
        if (asprintf(&m->local_record_path, "%s/hotupdated-record.json",
                     isempty(s) ? "/var/lib/okg-sidecar" : s) < 0) {
                m->local_record_path = NULL;
                manager_free(m);
                return -ENOMEM;
        }
        *ret = m;
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
                if (u->origin == ORIGIN_REQUEST && !u->finished)
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
                hotupdate_result_done(&m->history[(m->history_first + i) % HISTORY_MAX]);
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
