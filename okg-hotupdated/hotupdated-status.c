/* The outcome table; see hotupdated-status.h and docs/hot-update.md. */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "hotupdated-status.h"
#include "macro.h"
#include "okg-bus-api.h"
#include "okg-string-table.h"

#define E(x) OKG_HOTUPDATE_ERROR(x)

static const HotUpdateOutcomeInfo table[_OUTCOME_MAX] = {
        [OUTCOME_SUCCEEDED]              = { "Succeeded", 200, NULL, true, true },
        [OUTCOME_UNCHANGED]              = { "Unchanged", 200, NULL, true, true },
        [OUTCOME_RECOVERED]              = { "Recovered", 200, NULL, true, true },
        [OUTCOME_INVALID]                = { "Invalid", 400, E("InvalidArgument"), false, false },
        [OUTCOME_UNAUTHORIZED]           = { "Unauthorized", 401, E("Unauthorized"), false, false },
        [OUTCOME_FORBIDDEN]              = { "Forbidden", 403, E("Forbidden"), false, true },
        [OUTCOME_NOT_FOUND]              = { "NotFound", 404, E("NotFound"), false, false },
        [OUTCOME_METHOD_NOT_ALLOWED]     = { "MethodNotAllowed", 405, E("MethodNotAllowed"), false, false },
        [OUTCOME_BUSY]                   = { "Busy", 409, E("Busy"), false, false },
        [OUTCOME_REQUEST_TOO_LARGE]      = { "RequestTooLarge", 413, E("RequestTooLarge"), false, false },
        [OUTCOME_UNSUPPORTED_MEDIA_TYPE] = { "UnsupportedMediaType", 415, E("UnsupportedMediaType"), false, false },
        [OUTCOME_VERSION_CONFLICT]       = { "VersionConflict", 422, E("VersionConflict"), false, false },
        [OUTCOME_DOWNLOAD_FAILED]        = { "DownloadFailed", 502, E("DownloadFailed"), false, true },
        [OUTCOME_FILE_TOO_LARGE]         = { "FileTooLarge", 502, E("FileTooLarge"), false, true },
        [OUTCOME_CHECKSUM_MISMATCH]      = { "ChecksumMismatch", 502, E("ChecksumMismatch"), false, true },
        [OUTCOME_DOWNLOAD_TIMED_OUT]     = { "DownloadTimedOut", 504, E("DownloadTimedOut"), false, true },
        [OUTCOME_GAME_NOT_RUNNING]       = { "GameNotRunning", 503, E("GameNotRunning"), false, true },
        [OUTCOME_RELOAD_FAILED]          = { "ReloadFailed", 500, E("ReloadFailed"), false, true },
        [OUTCOME_ROLLED_BACK]            = { "RolledBack", 500, E("RolledBack"), false, true },
        [OUTCOME_ROLLBACK_FAILED]        = { "RollbackFailed", 500, E("RollbackFailed"), false, true },
        [OUTCOME_INSUFFICIENT_STORAGE]   = { "InsufficientStorage", 507, E("InsufficientStorage"), false, true },
        [OUTCOME_RECOVERY_FAILED]        = { "RecoveryFailed", 500, E("RecoveryFailed"), false, true },
        [OUTCOME_SHUTTING_DOWN]          = { "ShuttingDown", 503, E("ShuttingDown"), false, false },
        [OUTCOME_FAILED]                 = { "Failed", 500, E("Failed"), false, true },
};

const HotUpdateOutcomeInfo *hotupdate_outcome_info(HotUpdateOutcome o) {
        if (o < 0 || o >= _OUTCOME_MAX)
                return &table[OUTCOME_FAILED];
        return &table[o];
}

const char *hotupdate_outcome_to_string(HotUpdateOutcome o) {
        return hotupdate_outcome_info(o)->state;
}

HotUpdateOutcome hotupdate_outcome_from_string(const char *s) {
        if (!s)
                return _OUTCOME_INVALID;
        for (int i = 0; i < _OUTCOME_MAX; i++)
                if (streq(table[i].state, s))
                        return (HotUpdateOutcome) i;
        return _OUTCOME_INVALID;
}

unsigned hotupdate_outcome_http_status(HotUpdateOutcome o) {
        return hotupdate_outcome_info(o)->http_status;
}

const char *hotupdate_http_reason(unsigned status) {
        switch (status) {
        case 200: return "OK";
        case 400: return "Bad Request";
        case 401: return "Unauthorized";
        case 403: return "Forbidden";
        case 404: return "Not Found";
        case 405: return "Method Not Allowed";
        case 409: return "Conflict";
        case 413: return "Content Too Large";
        case 415: return "Unsupported Media Type";
        case 422: return "Unprocessable Content";
        case 500: return "Internal Server Error";
        case 502: return "Bad Gateway";
        case 503: return "Service Unavailable";
        case 504: return "Gateway Timeout";
        case 507: return "Insufficient Storage";
        default: return "Unknown";
        }
}

HotUpdateOutcome hotupdate_outcome_from_errno(int error) {
        error = error < 0 ? -error : error;
        return error == ENOSPC || error == EDQUOT ? OUTCOME_INSUFFICIENT_STORAGE : OUTCOME_FAILED;
}

static const char *const hotupdate_phase_table[_PHASE_MAX] = {
        [PHASE_IDLE] = "idle",
        [PHASE_RECOVERING] = "recovering",
        [PHASE_DOWNLOADING] = "downloading",
        [PHASE_RELOADING] = "reloading",
        [PHASE_CHECKING] = "checking",
        [PHASE_ROLLING_BACK] = "rolling-back",
        [PHASE_RECORDING] = "recording",
        [PHASE_WAITING_FOR_GAME] = "waiting-for-game",
};

DEFINE_STRING_TABLE_LOOKUP_TO_STRING(hotupdate_phase, HotUpdatePhase);
