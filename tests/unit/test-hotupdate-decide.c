/* okg-hotupdated's decisions (hotupdated-decide.c): how a request and the recovery differ,
 * admission (busy / conflict / unchanged), how a download ended, which game processes a rollback
 * or the recovery signals. Values in, verdicts out: no I/O. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>

#include "hotupdated-decide.h"
#include "okg-test.h"

#define BIT(sig) (UINT64_C(1) << ((sig) - 1))

static char msg[512];

static void test_origins(void) {
        const UpdateOriginInfo *req = update_origin_info(ORIGIN_REQUEST);
        const UpdateOriginInfo *rec = update_origin_info(ORIGIN_RECOVERY);
        bool folded = true;

        ASSERT_TRUE(req->in_flight);
        ASSERT_TRUE(!req->sends_ready);
        ASSERT_EQ(req->download_phase, PHASE_DOWNLOADING);
        ASSERT_EQ(req->failure_log_level, LOG_WARNING);
        ASSERT_TRUE(!rec->in_flight);
        ASSERT_TRUE(rec->sends_ready);
        ASSERT_EQ(rec->download_phase, PHASE_RECOVERING);
        ASSERT_EQ(rec->failure_log_level, LOG_ERR);
        ASSERT_STREQ(rec->download_note, " (recovery)");

        /* A request reports each failure as itself ... */
        ASSERT_EQ(update_origin_failure(ORIGIN_REQUEST, OUTCOME_CHECKSUM_MISMATCH, &folded),
                  OUTCOME_CHECKSUM_MISMATCH);
        ASSERT_TRUE(!folded);
        ASSERT_EQ(update_origin_failure(ORIGIN_REQUEST, OUTCOME_INSUFFICIENT_STORAGE, &folded),
                  OUTCOME_INSUFFICIENT_STORAGE);
        ASSERT_TRUE(!folded);
        /* ... the recovery as RecoveryFailed, naming it. */
        ASSERT_EQ(update_origin_failure(ORIGIN_RECOVERY, OUTCOME_CHECKSUM_MISMATCH, &folded),
                  OUTCOME_RECOVERY_FAILED);
        ASSERT_TRUE(folded);
        ASSERT_EQ(update_origin_failure(ORIGIN_RECOVERY, OUTCOME_FORBIDDEN, &folded),
                  OUTCOME_RECOVERY_FAILED);
        ASSERT_TRUE(folded);
        ASSERT_EQ(update_origin_failure(ORIGIN_RECOVERY, OUTCOME_RECOVERY_FAILED, &folded),
                  OUTCOME_RECOVERY_FAILED);
        ASSERT_TRUE(!folded);
        /* Out of range: treated as a request, never read past the table. */
        ASSERT_TRUE(update_origin_info(_ORIGIN_MAX)->in_flight);
}

static void test_admission(void) {
        HotUpdateVersion cur = {
                .version = (char *) "v1",
                .url = (char *) "http://cdn/v1/game.cfg",
                .sha256 = (char *) "aa",
                .file_name = (char *) "game.cfg",
        };
        HotUpdateParams same = { (char *) "v1", (char *) "http://cdn/v1/game.cfg", NULL,
                                 (char *) "game.cfg", 0 };
        HotUpdateParams same_sha = same, other_sha = same, other_url = same, other_file = same,
                        next = same;
        AdmissionState s = { .current = &cur };

        same_sha.sha256 = (char *) "aa";
        other_sha.sha256 = (char *) "bb";
        other_url.url = (char *) "http://cdn/v1b/game.cfg";
        other_file.file_name = (char *) "other.cfg";
        next.version = (char *) "v2";

        ASSERT_EQ(hotupdate_admit(&s, &next), ADMIT_NEW);
        ASSERT_EQ(hotupdate_admit(&s, &same), ADMIT_SAME);
        ASSERT_EQ(hotupdate_admit(&s, &same_sha), ADMIT_SAME);
        ASSERT_EQ(hotupdate_admit(&s, &other_sha), ADMIT_CONFLICT);
        ASSERT_EQ(hotupdate_admit(&s, &other_url), ADMIT_CONFLICT);
        ASSERT_EQ(hotupdate_admit(&s, &other_file), ADMIT_CONFLICT);

        /* Nothing in place (or a record without a version): every version is new. */
        s.current = NULL;
        ASSERT_EQ(hotupdate_admit(&s, &same), ADMIT_NEW);
        HotUpdateVersion empty = {};
        s.current = &empty;
        ASSERT_EQ(hotupdate_admit(&s, &other_sha), ADMIT_NEW);
        s.current = &cur;

        /* Busy wins over conflict and unchanged; stopping wins over busy. */
        s.busy = true;
        s.busy_origin = ORIGIN_REQUEST;
        ASSERT_EQ(hotupdate_admit(&s, &other_sha), ADMIT_BUSY);
        ASSERT_EQ(hotupdate_admit(&s, &same), ADMIT_BUSY);
        s.busy_origin = ORIGIN_RECOVERY;
        ASSERT_EQ(hotupdate_admit(&s, &next), ADMIT_BUSY_RECOVERY);
        s.shutting_down = true;
        ASSERT_EQ(hotupdate_admit(&s, &next), ADMIT_SHUTTING_DOWN);
}

static DownloadEnd end_ok(void) {
        return (DownloadEnd) {
                .cause = DOWNLOAD_END_OK,
                .transfer_error = "No error",
                .refused = "",
                .response_code = 200,
                .download_dir = "/dl",
                .max_file_size = 1000,
                .connect_timeout_sec = 3,
                .download_timeout_sec = 60,
        };
}

static HotUpdateOutcome end(const DownloadEnd *e) {
        HotUpdateOutcome o = _OUTCOME_INVALID;

        msg[0] = 0;
        if (download_end_outcome(e, &o, msg, sizeof msg) == 0)
                return OUTCOME_SUCCEEDED;
        return o;
}

static void test_download_end(void) {
        DownloadEnd e = end_ok();

        ASSERT_EQ(end(&e), OUTCOME_SUCCEEDED);

        /* The HTTP status: a body that was an error page, or a bodiless non-2xx. */
        e.bad_status = 404;
        ASSERT_EQ(end(&e), OUTCOME_DOWNLOAD_FAILED);
        ASSERT_STREQ(msg, "the server answered HTTP 404");
        e = end_ok();
        e.response_code = 500;
        ASSERT_EQ(end(&e), OUTCOME_DOWNLOAD_FAILED);
        ASSERT_STREQ(msg, "the server answered HTTP 500");

        /* The size limit, counted by us or announced. */
        e = end_ok();
        e.too_large = true;
        e.cause = DOWNLOAD_END_ERROR;
        ASSERT_EQ(end(&e), OUTCOME_FILE_TOO_LARGE);
        ASSERT_STREQ(msg, "the file is larger than maxFileSizeBytes (1000 bytes)");
        e = end_ok();
        e.cause = DOWNLOAD_END_FILESIZE_EXCEEDED;
        ASSERT_EQ(end(&e), OUTCOME_FILE_TOO_LARGE);

        /* The folder: a full disk is InsufficientStorage. */
        e = end_ok();
        e.cause = DOWNLOAD_END_ERROR;
        e.write_error = -ENOSPC;
        ASSERT_EQ(end(&e), OUTCOME_INSUFFICIENT_STORAGE);
        ASSERT_TRUE(strncmp(msg, "cannot write to /dl: ", 21) == 0);
        e.write_error = -EIO;
        ASSERT_EQ(end(&e), OUTCOME_FAILED);

        /* Time-outs name both settings and the transfer's reason. */
        e = end_ok();
        e.cause = DOWNLOAD_END_TIMED_OUT;
        e.transfer_error = "Operation timed out after 60000 milliseconds";
        ASSERT_EQ(end(&e), OUTCOME_DOWNLOAD_TIMED_OUT);
        ASSERT_STREQ(msg, "download timed out (connectTimeoutSeconds 3, downloadTimeoutSeconds "
                          "60): Operation timed out after 60000 milliseconds");

        /* A redirect to a scheme not allowed: said as such only for an https download. */
        e = end_ok();
        e.cause = DOWNLOAD_END_UNSUPPORTED_PROTOCOL;
        e.transfer_error = "Protocol \"http\" not supported";
        ASSERT_EQ(end(&e), OUTCOME_DOWNLOAD_FAILED);
        ASSERT_STREQ(msg, "download failed: Protocol \"http\" not supported");
        e.https_only = true;
        ASSERT_EQ(end(&e), OUTCOME_DOWNLOAD_FAILED);
        ASSERT_TRUE(strncmp(msg, "refused a redirect away from https (", 36) == 0);

        e = end_ok();
        e.cause = DOWNLOAD_END_ERROR;
        e.transfer_error = "Couldn't connect to server";
        ASSERT_EQ(end(&e), OUTCOME_DOWNLOAD_FAILED);
        ASSERT_STREQ(msg, "download failed: Couldn't connect to server");

        /* The coded streams, checked only once everything else is fine. */
        e = end_ok();
        e.decoder_error = -EPIPE;
        e.failed_coding = "gzip";
        ASSERT_EQ(end(&e), OUTCOME_DOWNLOAD_FAILED);
        ASSERT_TRUE(strstr(msg, "the gzip stream stopped short") != NULL);
        e.decoder_error = -ENOMEM;
        ASSERT_EQ(end(&e), OUTCOME_FAILED);
        ASSERT_TRUE(strncmp(msg, "cannot decode the download: ", 28) == 0);
        e.response_code = 502;
        ASSERT_EQ(end(&e), OUTCOME_DOWNLOAD_FAILED);
        ASSERT_STREQ(msg, "the server answered HTTP 502");

        /* Precedence: the policy first, then a refused response, then the size. */
        e = end_ok();
        e.cause = DOWNLOAD_END_ERROR;
        e.too_large = true;
        e.refused = "refused a redirect from https to http://cdn";
        e.guard_stopped = true;
        e.guard_reason = "169.254.169.254 is link-local";
        ASSERT_EQ(end(&e), OUTCOME_FORBIDDEN);
        ASSERT_STREQ(msg, "169.254.169.254 is link-local");
        e.guard_stopped = false;
        ASSERT_EQ(end(&e), OUTCOME_DOWNLOAD_FAILED);
        ASSERT_STREQ(msg, "refused a redirect from https to http://cdn");
        e.refused = "";
        ASSERT_EQ(end(&e), OUTCOME_FILE_TOO_LARGE);
        e.refused = NULL;
        ASSERT_EQ(end(&e), OUTCOME_FILE_TOO_LARGE);
}

static GameProc proc(pid_t pid, uint64_t start, uint64_t caught, uint64_t ignored) {
        return (GameProc) {
                .pid = pid,
                .start_ticks = start,
                .masks = { .caught = caught, .ignored = ignored },
        };
}

static void test_game_procs(void) {
        GameProc p[3] = {
                proc(10, 100, BIT(SIGHUP), 0),
                proc(11, 100, 0, BIT(SIGHUP)),
                proc(12, 100, 0, 0),
        };
        GameDisposition d = GAME_SIGNAL_CAUGHT;

        ASSERT_EQ(game_first_unsafe(p, 1, SIGHUP, &d), 1);
        ASSERT_EQ(game_first_unsafe(p, 3, SIGHUP, &d), 1);
        ASSERT_EQ(d, GAME_SIGNAL_IGNORED);
        ASSERT_EQ(game_first_unsafe(p + 2, 1, SIGHUP, &d), 0);
        ASSERT_EQ(d, GAME_SIGNAL_DEFAULT);
        /* Another signal: only a handler for it counts. */
        ASSERT_EQ(game_first_unsafe(p, 1, SIGUSR1, NULL), 0);
        ASSERT_EQ(game_first_unsafe(p, 0, SIGHUP, NULL), 0);

        game_pids_text(p, 3, msg, sizeof msg);
        ASSERT_STREQ(msg, "10, 11, 12");
        game_pids_text(p, 0, msg, sizeof msg);
        ASSERT_STREQ(msg, "");
}

static void test_recovery_procs(void) {
        RecoveryProcs c;
        GameProc p[4] = {
                proc(20, 500, 0, 0),            /* does not handle it */
                proc(21, 50, BIT(SIGHUP), 0),   /* ran before: tell it */
                proc(22, 900, BIT(SIGHUP), 0),  /* started after the file was back */
                proc(23, 10, BIT(SIGHUP), 0),   /* ran before: tell it */
        };

        recovery_sort_procs(p, 4, 600, SIGHUP, &c);
        ASSERT_EQ(c.n_signal, 2);
        ASSERT_EQ(c.n_later, 1);
        ASSERT_EQ(c.n_unsafe, 1);
        ASSERT_EQ(p[0].pid, 21);
        ASSERT_EQ(p[1].pid, 23);
        /* One not ready for the signal: wait while there is time, then give up on it. */
        ASSERT_EQ(recovery_reload_action(&c, true), RECOVERY_RELOAD_WAIT);
        ASSERT_EQ(recovery_reload_action(&c, false), RECOVERY_RELOAD_GIVE_UP_UNSAFE);

        c = (RecoveryProcs) { .n_signal = 2 };
        ASSERT_EQ(recovery_reload_action(&c, true), RECOVERY_RELOAD_SIGNAL);
        c = (RecoveryProcs) { .n_signal = 1, .n_later = 3 };
        ASSERT_EQ(recovery_reload_action(&c, false), RECOVERY_RELOAD_SIGNAL);
        c = (RecoveryProcs) { .n_later = 1 };
        ASSERT_EQ(recovery_reload_action(&c, true), RECOVERY_RELOAD_STARTED_LATER);
        c = (RecoveryProcs) {};
        ASSERT_EQ(recovery_reload_action(&c, true), RECOVERY_RELOAD_WAIT);
        ASSERT_EQ(recovery_reload_action(&c, false), RECOVERY_RELOAD_GIVE_UP_ABSENT);
        c = (RecoveryProcs) { .n_later = 2, .n_unsafe = 1 };
        ASSERT_EQ(recovery_reload_action(&c, false), RECOVERY_RELOAD_GIVE_UP_UNSAFE);

        /* Nothing found. */
        recovery_sort_procs(p, 0, 600, SIGHUP, &c);
        ASSERT_EQ(c.n_signal + c.n_later + c.n_unsafe, 0);
}

static void test_rollback_procs(void) {
        GameProc survivors[1] = { proc(30, 100, BIT(SIGHUP), 0) };
        GameProc now[5] = {
                proc(30, 100, BIT(SIGHUP), 0),  /* the survivor itself */
                proc(30, 400, BIT(SIGHUP), 0),  /* its PID, reused by a process started later */
                proc(31, 300, BIT(SIGHUP), 0),  /* restarted while the rejected file was there */
                proc(32, 300, 0, 0),            /* restarted, no handler yet */
                proc(33, 700, BIT(SIGHUP), 0),  /* started after the previous file was back */
        };
        GameProc sig[5] = {}, later[5] = {}, unsafe[5] = {};
        RollbackProcs out = { .signal = sig, .later = later, .unsafe = unsafe };

        rollback_sort_procs(survivors, 1, now, 5, 500, SIGHUP, &out);
        ASSERT_EQ(out.n_signal, 2);
        ASSERT_EQ(sig[0].pid, 30);
        ASSERT_EQ(sig[0].start_ticks, 400);
        ASSERT_EQ(sig[1].pid, 31);
        ASSERT_EQ(out.n_unsafe, 1);
        ASSERT_EQ(unsafe[0].pid, 32);
        ASSERT_EQ(out.n_later, 1);
        ASSERT_EQ(later[0].pid, 33);

        /* The game is gone: nothing anywhere. */
        rollback_sort_procs(survivors, 1, now, 0, 500, SIGHUP, &out);
        ASSERT_EQ(out.n_signal + out.n_later + out.n_unsafe, 0);
}

int main(void) {
        test_origins();
        test_admission();
        test_download_end();
        test_game_procs();
        test_recovery_procs();
        test_rollback_procs();
        printf("hotupdate-decide: ok\n");
        return 0;
}
