/* What okg-hotupdated writes through okg-storaged and reads back at recovery: the recovery
 * record (the pod's entry in the result ConfigMap) and the outcome JSON of the pod annotation.
 * Building and parsing only; no I/O. The format is documented in docs/hot-update.md. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <json-c/json.h>

#include "hotupdated-status.h"

#define HOTUPDATE_RECORD_FORMAT 1
/* "2024-05-01T12:00:00.123Z": fixed width, so string order is time order. */
#define HOTUPDATE_TIME_LEN 24U
#define HOTUPDATE_TIME_SIZE (HOTUPDATE_TIME_LEN + 1U)

/* A version in place: all five fields set, or version NULL for "none". */
typedef struct HotUpdateVersion {
        char *version;
        char *url;
        char *sha256;
        char *file_name;
        char *applied_at;
} HotUpdateVersion;

/* How one update (or recovery) ended. */
typedef struct HotUpdateResult {
        char *version;            /* asked for; may be NULL for a refused request */
        char *url;
        char *sha256;             /* of the downloaded file when there was one, else as asked */
        char *file_name;
        HotUpdateOutcome outcome;
        char *message;
        char *at;                 /* when it ended */
        char *current_version;    /* what is in place afterwards; NULL: none */
} HotUpdateResult;

typedef struct HotUpdateRecord {
        HotUpdateVersion current;
        HotUpdateVersion previous;
        HotUpdateResult last;     /* last.at NULL: none */
} HotUpdateRecord;

void hotupdate_version_done(HotUpdateVersion *v);
int hotupdate_version_copy(const HotUpdateVersion *from, HotUpdateVersion *to);
static inline bool hotupdate_version_is_set(const HotUpdateVersion *v) {
        return v && v->version;
}
void hotupdate_result_done(HotUpdateResult *r);
int hotupdate_result_copy(const HotUpdateResult *from, HotUpdateResult *to);
void hotupdate_record_done(HotUpdateRecord *r);

/* usec: CLOCK_REALTIME microseconds. Years 1000-9999 only, to keep the width fixed. */
int hotupdate_format_time(uint64_t usec, char buf[HOTUPDATE_TIME_SIZE]);
bool hotupdate_time_is_valid(const char *s);

/* Fresh JSON objects (the caller puts them); NULL on OOM. */
json_object *hotupdate_version_to_json(const HotUpdateVersion *v);
json_object *hotupdate_result_to_json(const HotUpdateResult *r);
json_object *hotupdate_record_to_json(const HotUpdateRecord *r);

/* Compact JSON text (malloc'ed) of the record and of the annotation value. */
int hotupdate_record_format(const HotUpdateRecord *r, char **ret);
int hotupdate_annotation_format(const HotUpdateResult *r, char **ret);

/* Parses and checks a record as stored (possibly by another pod of the fleet: every field that
 * leads to a file write is checked as strictly as a request). A malformed lastResult is dropped,
 * not fatal. -EBADMSG with the reason in err. */
int hotupdate_record_parse(const char *text, HotUpdateRecord *ret, char *err, size_t errlen);
