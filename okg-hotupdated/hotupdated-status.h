/* Every way a hot update can end, with what each one means on the wire: the JSON "state", the
 * HTTP status, the D-Bus error name, and whether it is recorded on the pod. One table, so the
 * HTTP API, the bus API and docs/hot-update.md cannot drift apart. Pure. */
#pragma once

#include <stdbool.h>

typedef enum HotUpdateOutcome {
        OUTCOME_SUCCEEDED,
        OUTCOME_UNCHANGED,
        OUTCOME_RECOVERED,
        OUTCOME_INVALID,
        OUTCOME_UNAUTHORIZED,
        OUTCOME_FORBIDDEN,
        OUTCOME_NOT_FOUND,
        OUTCOME_METHOD_NOT_ALLOWED,
        OUTCOME_BUSY,
        OUTCOME_REQUEST_TOO_LARGE,
        OUTCOME_UNSUPPORTED_MEDIA_TYPE,
        OUTCOME_VERSION_CONFLICT,
        OUTCOME_DOWNLOAD_FAILED,
        OUTCOME_FILE_TOO_LARGE,
        OUTCOME_CHECKSUM_MISMATCH,
        OUTCOME_DOWNLOAD_TIMED_OUT,
        OUTCOME_GAME_NOT_RUNNING,
        OUTCOME_RELOAD_FAILED,
        OUTCOME_ROLLED_BACK,
        OUTCOME_ROLLBACK_FAILED,
        OUTCOME_INSUFFICIENT_STORAGE,
        OUTCOME_RECOVERY_FAILED,
        OUTCOME_SHUTTING_DOWN,
        OUTCOME_FAILED,
        _OUTCOME_MAX,
        _OUTCOME_INVALID = -22,
} HotUpdateOutcome;

typedef struct HotUpdateOutcomeInfo {
        const char *state;        /* "Succeeded": the JSON "state" and the record's */
        unsigned http_status;     /* 200, 400, ... */
        const char *bus_error;    /* NULL for the successes */
        bool success;             /* the version asked for is in place */
        bool recorded;            /* written to the annotation and the recovery record */
} HotUpdateOutcomeInfo;

const HotUpdateOutcomeInfo *hotupdate_outcome_info(HotUpdateOutcome o);
const char *hotupdate_outcome_to_string(HotUpdateOutcome o);
HotUpdateOutcome hotupdate_outcome_from_string(const char *s);
unsigned hotupdate_outcome_http_status(HotUpdateOutcome o);

/* The HTTP reason phrase for the statuses of the table. */
const char *hotupdate_http_reason(unsigned status);
/* Outcome for a failed local file operation: ENOSPC/EDQUOT are InsufficientStorage. */
HotUpdateOutcome hotupdate_outcome_from_errno(int error);

/* What the daemon is doing, for GET /hot-update and the State property. */
typedef enum HotUpdatePhase {
        PHASE_IDLE,
        PHASE_RECOVERING,
        PHASE_DOWNLOADING,
        PHASE_RELOADING,
        PHASE_CHECKING,
        PHASE_ROLLING_BACK,
        PHASE_RECORDING,
        PHASE_WAITING_FOR_GAME,
        _PHASE_MAX,
} HotUpdatePhase;

const char *hotupdate_phase_to_string(HotUpdatePhase p);
