/* The recovery record and the annotation value; see hotupdated-record.h. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hotupdated-record.h"
#include "hotupdated-request.h"
#include "macro.h"

void hotupdate_version_done(HotUpdateVersion *v) {
        if (!v)
                return;
        free(v->version);
        free(v->url);
        free(v->sha256);
        free(v->file_name);
        free(v->applied_at);
        *v = (HotUpdateVersion) {};
}

static int dup_field(char **to, const char *from) {
        *to = NULL;
        if (!from)
                return 0;
        *to = strdup(from);
        return *to ? 0 : -ENOMEM;
}

int hotupdate_version_copy(const HotUpdateVersion *from, HotUpdateVersion *to) {
        HotUpdateVersion c = {};

        if (dup_field(&c.version, from->version) < 0 || dup_field(&c.url, from->url) < 0 ||
            dup_field(&c.sha256, from->sha256) < 0 || dup_field(&c.file_name, from->file_name) < 0 ||
            dup_field(&c.applied_at, from->applied_at) < 0) {
                hotupdate_version_done(&c);
                return -ENOMEM;
        }
        *to = c;
        return 0;
}

void hotupdate_result_done(HotUpdateResult *r) {
        if (!r)
                return;
        free(r->version);
        free(r->url);
        free(r->sha256);
        free(r->file_name);
        free(r->message);
        free(r->at);
        free(r->current_version);
        *r = (HotUpdateResult) {};
}

int hotupdate_result_copy(const HotUpdateResult *from, HotUpdateResult *to) {
        HotUpdateResult c = { .outcome = from->outcome };

        if (dup_field(&c.version, from->version) < 0 || dup_field(&c.url, from->url) < 0 ||
            dup_field(&c.sha256, from->sha256) < 0 || dup_field(&c.file_name, from->file_name) < 0 ||
            dup_field(&c.message, from->message) < 0 || dup_field(&c.at, from->at) < 0 ||
            dup_field(&c.current_version, from->current_version) < 0) {
                hotupdate_result_done(&c);
                return -ENOMEM;
        }
        *to = c;
        return 0;
}

void hotupdate_record_done(HotUpdateRecord *r) {
        if (!r)
                return;
        hotupdate_version_done(&r->current);
        hotupdate_version_done(&r->previous);
        hotupdate_result_done(&r->last);
}

int hotupdate_format_time(uint64_t usec, char buf[HOTUPDATE_TIME_SIZE]) {
        time_t t = (time_t) (usec / USEC_PER_SEC);
        char tmp[96];
        struct tm tm;

        if (!gmtime_r(&t, &tm) || tm.tm_year + 1900 < 1000 || tm.tm_year + 1900 > 9999)
                return -ERANGE;
        snprintf(tmp, sizeof tmp, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 (unsigned) (usec % USEC_PER_SEC / 1000));
        if (strlen(tmp) != HOTUPDATE_TIME_LEN)
                return -ERANGE;
        memcpy(buf, tmp, HOTUPDATE_TIME_SIZE);
        return 0;
}

bool hotupdate_time_is_valid(const char *s) {
        static const char pattern[] = "dddd-dd-ddTdd:dd:dd.dddZ";

        if (!s || strlen(s) != HOTUPDATE_TIME_LEN)
                return false;
        for (size_t i = 0; i < HOTUPDATE_TIME_LEN; i++) {
                if (pattern[i] == 'd') {
                        if (s[i] < '0' || s[i] > '9')
                                return false;
                } else if (s[i] != pattern[i])
                        return false;
        }
        return true;
}

static int add_string(json_object *o, const char *key, const char *value) {
        json_object *v;

        if (!value)
                return 0;
        v = json_object_new_string(value);
        if (!v)
                return -ENOMEM;
        if (json_object_object_add(o, key, v) < 0) {
                json_object_put(v);
                return -ENOMEM;
        }
        return 0;
}

static int add_object(json_object *o, const char *key, json_object *v) {
        if (!v)
                return -ENOMEM;
        if (json_object_object_add(o, key, v) < 0) {
                json_object_put(v);
                return -ENOMEM;
        }
        return 0;
}

static int version_fields(json_object *o, const HotUpdateVersion *v) {
        if (!hotupdate_version_is_set(v))
                return 0;
        if (add_string(o, "version", v->version) < 0 || add_string(o, "url", v->url) < 0 ||
            add_string(o, "sha256", v->sha256) < 0 || add_string(o, "fileName", v->file_name) < 0 ||
            add_string(o, "appliedAt", v->applied_at) < 0)
                return -ENOMEM;
        return 0;
}

json_object *hotupdate_version_to_json(const HotUpdateVersion *v) {
        json_object *o = json_object_new_object();

        if (!o)
                return NULL;
        if (version_fields(o, v) < 0) {
                json_object_put(o);
                return NULL;
        }
        return o;
}

json_object *hotupdate_result_to_json(const HotUpdateResult *r) {
        const HotUpdateOutcomeInfo *info = hotupdate_outcome_info(r->outcome);
        json_object *o = json_object_new_object();

        if (!o)
                return NULL;
        if (add_string(o, "version", r->version) < 0 || add_string(o, "url", r->url) < 0 ||
            add_string(o, "sha256", r->sha256) < 0 || add_string(o, "fileName", r->file_name) < 0 ||
            add_string(o, "state", info->state) < 0 ||
            add_object(o, "success", json_object_new_boolean(info->success)) < 0 ||
            add_string(o, "message", strempty(r->message)) < 0 || add_string(o, "at", r->at) < 0 ||
            (r->current_version ? add_string(o, "currentVersion", r->current_version)
                                /* A NULL value is JSON null. */
                                : json_object_object_add(o, "currentVersion", NULL)) < 0) {
                json_object_put(o);
                return NULL;
        }
        return o;
}

json_object *hotupdate_record_to_json(const HotUpdateRecord *r) {
        json_object *o = json_object_new_object();

        if (!o)
                return NULL;
        if (add_object(o, "format", json_object_new_int(HOTUPDATE_RECORD_FORMAT)) < 0 ||
            version_fields(o, &r->current) < 0 ||
            (hotupdate_version_is_set(&r->previous) &&
             add_object(o, "previous", hotupdate_version_to_json(&r->previous)) < 0) ||
            (r->last.at && add_object(o, "lastResult", hotupdate_result_to_json(&r->last)) < 0)) {
                json_object_put(o);
                return NULL;
        }
        return o;
}

static int format_json(json_object *o, char **ret) {
        const char *s;

        if (!o)
                return -ENOMEM;
        s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                                      JSON_C_TO_STRING_NOSLASHESCAPE);
        *ret = s ? strdup(s) : NULL;
        json_object_put(o);
        return *ret ? 0 : -ENOMEM;
}

int hotupdate_record_format(const HotUpdateRecord *r, char **ret) {
        return format_json(hotupdate_record_to_json(r), ret);
}

int hotupdate_annotation_format(const HotUpdateResult *r, char **ret) {
        return format_json(hotupdate_result_to_json(r), ret);
}

_printf_(3, 4) static int bad(char *err, size_t errlen, const char *fmt, ...) {
        va_list ap;

        if (err && errlen > 0) {
                va_start(ap, fmt);
                vsnprintf(err, errlen, fmt, ap);
                va_end(ap);
        }
        return -EBADMSG;
}

/* The string member key, NULL when absent; -EBADMSG when present but not a string. */
static int get_string(json_object *o, const char *key, const char **ret) {
        json_object *v;

        *ret = NULL;
        if (!json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null))
                return 0;
        if (!json_object_is_type(v, json_type_string))
                return -EBADMSG;
        *ret = json_object_get_string(v);
        return 0;
}

static int parse_version(json_object *o, const char *what, HotUpdateVersion *ret, char *err,
                         size_t errlen) {
        const char *f[5];
        static const char *const keys[5] = { "version", "url", "sha256", "fileName", "appliedAt" };
        HotUpdateVersion v = {};
        unsigned n = 0;

        for (unsigned i = 0; i < 5; i++) {
                if (get_string(o, keys[i], &f[i]) < 0)
                        return bad(err, errlen, "%s%s\"%s\" is not a string", strempty(what),
                                   what ? ": " : "", keys[i]);
                n += !!f[i];
        }
        if (n == 0) {
                *ret = v;
                return 0;
        }
        for (unsigned i = 0; i < 5; i++)
                if (!f[i])
                        return bad(err, errlen, "%s%s\"%s\" is missing", strempty(what),
                                   what ? ": " : "", keys[i]);
        if (!hotupdate_version_is_valid(f[0]))
                return bad(err, errlen, "%s%sinvalid version", strempty(what), what ? ": " : "");
        if (hotupdate_url_check(f[1]))
                return bad(err, errlen, "%s%sinvalid url: %s", strempty(what), what ? ": " : "",
                           hotupdate_url_check(f[1]));
        if (!hotupdate_sha256_is_valid(f[2]))
                return bad(err, errlen, "%s%sinvalid sha256", strempty(what), what ? ": " : "");
        if (hotupdate_file_name_check(f[3]))
                return bad(err, errlen, "%s%sinvalid fileName: %s", strempty(what),
                           what ? ": " : "", hotupdate_file_name_check(f[3]));
        if (!hotupdate_time_is_valid(f[4]))
                return bad(err, errlen, "%s%sinvalid appliedAt", strempty(what), what ? ": " : "");

        HotUpdateVersion from = { (char *) f[0], (char *) f[1], (char *) f[2], (char *) f[3],
                                  (char *) f[4] };
        if (hotupdate_version_copy(&from, &v) < 0)
                return -ENOMEM;
        for (char *c = v.sha256; *c; c++)
                if (*c >= 'A' && *c <= 'F')
                        *c = (char) (*c - 'A' + 'a');
        *ret = v;
        return 0;
}

/* Lenient: a lastResult we cannot read is only history. Returns 1 when one was read. */
static int parse_result(json_object *o, HotUpdateResult *ret) {
        const char *version, *url, *sha, *file, *state, *message, *at, *current;
        HotUpdateOutcome outcome;

        if (get_string(o, "version", &version) < 0 || get_string(o, "url", &url) < 0 ||
            get_string(o, "sha256", &sha) < 0 || get_string(o, "fileName", &file) < 0 ||
            get_string(o, "state", &state) < 0 || get_string(o, "message", &message) < 0 ||
            get_string(o, "at", &at) < 0 || get_string(o, "currentVersion", &current) < 0)
                return 0;
        outcome = hotupdate_outcome_from_string(state);
        if (outcome < 0 || !hotupdate_time_is_valid(at))
                return 0;

        HotUpdateResult from = {
                .version = (char *) version,
                .url = (char *) url,
                .sha256 = (char *) sha,
                .file_name = (char *) file,
                .outcome = outcome,
                .message = (char *) message,
                .at = (char *) at,
                .current_version = (char *) current,
        };
        if (hotupdate_result_copy(&from, ret) < 0)
                return -ENOMEM;
        return 1;
}

static void json_putp(json_object **o) {
        if (*o)
                json_object_put(*o);
}

int hotupdate_record_parse(const char *text, HotUpdateRecord *ret, char *err, size_t errlen) {
        _cleanup_(json_putp) json_object *o = NULL;
        HotUpdateRecord rec = {};
        json_object *v;
        int r;

        if (isempty(text))
                return bad(err, errlen, "empty record");
        o = json_tokener_parse(text);
        if (!o || !json_object_is_type(o, json_type_object))
                return bad(err, errlen, "record is not a JSON object");
        if (json_object_object_get_ex(o, "format", &v) &&
            (!json_object_is_type(v, json_type_int) ||
             json_object_get_int64(v) != HOTUPDATE_RECORD_FORMAT))
                return bad(err, errlen, "unsupported record format (expected %d)",
                           HOTUPDATE_RECORD_FORMAT);

        r = parse_version(o, NULL, &rec.current, err, errlen);
        if (r < 0)
                goto fail;
        if (json_object_object_get_ex(o, "previous", &v) && !json_object_is_type(v, json_type_null)) {
                if (!json_object_is_type(v, json_type_object)) {
                        r = bad(err, errlen, "previous: not an object");
                        goto fail;
                }
                r = parse_version(v, "previous", &rec.previous, err, errlen);
                if (r < 0)
                        goto fail;
        }
        if (json_object_object_get_ex(o, "lastResult", &v) &&
            json_object_is_type(v, json_type_object)) {
                r = parse_result(v, &rec.last);
                if (r < 0)
                        goto fail;
        }
        *ret = rec;
        return 0;
fail:
        hotupdate_record_done(&rec);
        return r;
}
