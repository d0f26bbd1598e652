/* A hot-update request as the HTTP and bus front ends receive it: the parameters (version, url,
 * sha256, fileName) from a form body, a query string or a JSON body, checked and normalised.
 * Pure: no I/O, so the unit tests and fuzzers call it directly. Reasons are one line, meant for
 * the client. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define HOTUPDATE_MAX_BODY 16384U        /* request body cap: 413 beyond */
#define HOTUPDATE_MAX_VERSION 128U
#define HOTUPDATE_MAX_URL 2048U
#define HOTUPDATE_SHOWN_URL_MAX (HOTUPDATE_MAX_URL + 8U)  /* room for a masked one */
#define HOTUPDATE_MAX_FILE_NAME 255U
#define HOTUPDATE_ERR_MAX 256U

typedef struct HotUpdateParams {
        char *version;
        char *url;
        char *sha256;       /* lowercase hex after hotupdate_params_finish(); NULL: not given */
        char *file_name;    /* given, or derived from the URL by hotupdate_params_finish() */
        unsigned seen;      /* parameters given so far (even empty), to refuse duplicates */
} HotUpdateParams;

void hotupdate_params_done(HotUpdateParams *p);
int hotupdate_params_copy(const HotUpdateParams *from, HotUpdateParams *to);

typedef enum HotUpdateBodyKind {
        BODY_FORM,          /* application/x-www-form-urlencoded, or no Content-Type */
        BODY_JSON,          /* application/json */
        BODY_UNSUPPORTED,
} HotUpdateBodyKind;

/* By media type, case-insensitive, parameters (";charset=...") ignored. NULL is a form, as a
 * bare `curl -d` would send it. */
HotUpdateBodyKind hotupdate_body_kind(const char *content_type);

/* Sets one parameter by name. A name that is not one of the four, a name given twice, a value
 * with a NUL byte: -EINVAL with the reason in err. An empty value counts as not given. */
int hotupdate_params_set(HotUpdateParams *p, const char *key, const char *value, size_t len,
                         char *err, size_t errlen);
/* key=value&key=value with %XX and '+' decoding: a form body or a query string. */
int hotupdate_parse_form(const char *s, size_t len, HotUpdateParams *p, char *err, size_t errlen);
/* A JSON object of strings: {"version": "v2", "url": "https://..."}. */
int hotupdate_parse_json(const char *s, size_t len, HotUpdateParams *p, char *err, size_t errlen);
/* Required parameters present and valid, sha256 lowercased, fileName derived from the URL when
 * not given. -EINVAL with the reason in err. */
int hotupdate_params_finish(HotUpdateParams *p, char *err, size_t errlen);

/* 1-128 characters from A-Z a-z 0-9 . _ - + */
bool hotupdate_version_is_valid(const char *v);
/* 64 hex digits, either case. */
bool hotupdate_sha256_is_valid(const char *s);
/* NULL when url is an acceptable download URL, else why not. */
const char *hotupdate_url_check(const char *url);
/* url as an answer or the log may show it: its user info masked as "***@" (okg_url_redact()).
 * NULL (show none) when it is not a valid URL and an '@' is left that could still be one. */
const char *hotupdate_url_shown(const char *url, char *buf, size_t size);
/* NULL when name is a safe file name for the download folder, else why not. */
const char *hotupdate_file_name_check(const char *name);
/* The URL's last path segment, percent-decoded and checked as a file name. -EINVAL with the
 * reason in *ret_reason (static text) when there is none or it is not safe. */
int hotupdate_file_name_from_url(const char *url, char **ret, const char **ret_reason);
/* %XX decoding (and '+' as space when plus_is_space). -EINVAL on a bad escape. The result may
 * contain NUL bytes; *ret_len says how many bytes it has. */
int hotupdate_percent_decode(const char *s, size_t len, bool plus_is_space, char **ret,
                             size_t *ret_len);
