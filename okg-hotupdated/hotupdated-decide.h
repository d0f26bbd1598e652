/* okg-hotupdated's decisions, apart from the I/O that acts on them: which requests are taken
 * (busy / conflict / unchanged), how a download ended, which game processes a rollback or the
 * recovery signals, and how a request and the recovery at start differ (a table, not branches).
 * Pure: no /proc, no files, no clock; unit tested in tests/unit/test-hotupdate-decide.c. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hotupdated-game.h"
#include "hotupdated-record.h"
#include "hotupdated-request.h"
#include "hotupdated-status.h"

/* ---- request or recovery ---- */

typedef enum UpdateOrigin {
        ORIGIN_REQUEST,     /* POST /hot-update or the bus: answered when recorded */
        ORIGIN_RECOVERY,    /* at start: puts the recorded version back, then READY=1 */
        _ORIGIN_MAX,
} UpdateOrigin;

typedef struct UpdateOriginInfo {
        const char *log_what;         /* "Hot update to" ... "VERSION: STATE: message" */
        int failure_log_level;        /* LOG_* of a failed outcome (a success is LOG_INFO) */
        HotUpdatePhase download_phase;
        const char *download_note;    /* appended to the "Downloading" line */
        bool in_flight;               /* shown as inFlight, in STATUS=, named when stopped */
        bool sends_ready;             /* READY=1 once it is over */
        /* Every failure is reported as this outcome (the failure named in the message);
         * _OUTCOME_INVALID: as itself. */
        HotUpdateOutcome folds_failures_into;
} UpdateOriginInfo;

const UpdateOriginInfo *update_origin_info(UpdateOrigin o);

/* The outcome a failure o is reported as by an update of this origin. *ret_folded: another
 * outcome than o (the caller's message then names o, "ChecksumMismatch: ..."). */
HotUpdateOutcome update_origin_failure(UpdateOrigin origin, HotUpdateOutcome o, bool *ret_folded);

/* ---- admission ---- */

typedef enum Admission {
        ADMIT_SHUTTING_DOWN,  /* the daemon is stopping */
        ADMIT_BUSY,           /* another request's update is in flight */
        ADMIT_BUSY_RECOVERY,  /* the recovery at start is not over */
        ADMIT_CONFLICT,       /* the version in place, with another URL, file or checksum */
        ADMIT_SAME,           /* the version in place, asked again: Unchanged if the file is
                               * still the one installed, else applied again */
        ADMIT_NEW,            /* a new version: download and apply */
        _ADMISSION_MAX,
} Admission;

typedef struct AdmissionState {
        bool shutting_down;
        bool busy;                         /* an update (of busy_origin) is in flight */
        UpdateOrigin busy_origin;
        const HotUpdateVersion *current;   /* the version in place; NULL when none */
} AdmissionState;

/* p is a checked request (hotupdate_params_finish() done). */
Admission hotupdate_admit(const AdmissionState *s, const HotUpdateParams *p);

/* ---- how a download ended ---- */

typedef enum DownloadEndCause {
        DOWNLOAD_END_OK,                   /* the transfer itself completed */
        DOWNLOAD_END_TIMED_OUT,
        DOWNLOAD_END_FILESIZE_EXCEEDED,    /* the announced length was over the limit */
        DOWNLOAD_END_UNSUPPORTED_PROTOCOL, /* a redirect to a scheme not allowed */
        DOWNLOAD_END_ERROR,                /* any other transfer error */
} DownloadEndCause;

typedef struct DownloadEnd {
        DownloadEndCause cause;
        const char *transfer_error;        /* the transfer's own reason, for its errors */
        bool guard_stopped;                /* the destination policy ended it ... */
        const char *guard_reason;          /* ... for this reason */
        const char *refused;               /* a response refused while received ("": none) */
        bool too_large;                    /* the decoded bytes passed max_file_size */
        int write_error;                   /* negative errno of the download folder */
        long bad_status;                   /* a non-2xx answer that sent a body */
        long response_code;                /* of the last response */
        bool https_only;                   /* redirects had to stay on https */
        int decoder_error;                 /* once the body is all here: -EPIPE cut short */
        const char *failed_coding;         /* the coding whose stream failed */

        /* for the messages */
        const char *download_dir;
        uint64_t max_file_size;
        unsigned connect_timeout_sec, download_timeout_sec;
} DownloadEnd;

/* 0 when the file is complete; 1 when not, with the outcome in *ret and why in msg. Checks in
 * order of precedence: the policy, a refused response, the size limit, the folder, the HTTP
 * status, a time-out, a redirect off https, any other error, then the coded streams. */
int download_end_outcome(const DownloadEnd *e, HotUpdateOutcome *ret, char *msg, size_t size);

/* ---- which processes are signalled ---- */

/* The first process in procs that must not get signo (its default action would run, or it
 * ignores it), with its disposition; n when all handle it. */
size_t game_first_unsafe(const GameProc *procs, size_t n, int signo, GameDisposition *ret);

/* "1, 2, 3" into buf (truncated to size). */
void game_pids_text(const GameProc *procs, size_t n, char *buf, size_t size);

/* Recovery put a file back at installed_ticks: of the game processes found now, those to tell
 * are moved to the front of procs (order kept) and counted; started later ones read the file
 * anyway, unsafe ones do not handle the signal (yet). */
typedef struct RecoveryProcs {
        size_t n_signal, n_later, n_unsafe;
} RecoveryProcs;
void recovery_sort_procs(GameProc *procs, size_t n, uint64_t installed_ticks, int signo,
                         RecoveryProcs *ret);

typedef enum RecoveryReload {
        RECOVERY_RELOAD_STARTED_LATER,  /* only processes that read the file when they started */
        RECOVERY_RELOAD_SIGNAL,         /* signal the first n_signal */
        RECOVERY_RELOAD_WAIT,           /* none yet, or one not ready: poll again */
        RECOVERY_RELOAD_GIVE_UP_UNSAFE, /* the wait is over; one does not handle the signal */
        RECOVERY_RELOAD_GIVE_UP_ABSENT, /* the wait is over; no game */
} RecoveryReload;
/* can_wait: another poll fits before the recovery's deadline. */
RecoveryReload recovery_reload_action(const RecoveryProcs *c, bool can_wait);

/* After a signalled process exited and the previous file is back: of the processes running
 * now, those not among survivors go to later (started after restored_ticks: they read the
 * previous file), unsafe (do not handle signo) or signal. Each output array has room for
 * n_now; order kept. */
typedef struct RollbackProcs {
        GameProc *signal, *later, *unsafe;
        size_t n_signal, n_later, n_unsafe;
} RollbackProcs;
void rollback_sort_procs(const GameProc *survivors, size_t n_survivors, const GameProc *now,
                         size_t n_now, uint64_t restored_ticks, int signo, RollbackProcs *out);
