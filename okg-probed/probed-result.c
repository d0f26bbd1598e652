/* One HTTP answer -> a probe result: status check, body trimming, UTF-8 check and the dotted
 * JSON path. No I/O; see probed-result.h. */
#include <curl/curl.h>
#include <errno.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "macro.h"
#include "okg-curl.h"
#include "okg-json.h"
#include "okg-string-table.h"
#include "probed-result.h"

static const char *const probe_outcome_table[_PROBE_OUTCOME_MAX] = {
        [PROBE_OUTCOME_NONE] = "none",
        [PROBE_OUTCOME_SUCCESS] = "success",
        [PROBE_OUTCOME_TIMEOUT] = "timeout",
        [PROBE_OUTCOME_CONNECT_ERROR] = "connect-error",
        [PROBE_OUTCOME_HTTP_ERROR] = "http-error",
        [PROBE_OUTCOME_BAD_STATUS] = "bad-status",
        [PROBE_OUTCOME_BAD_BODY] = "bad-body",
};

DEFINE_STRING_TABLE_LOOKUP_TO_STRING(probe_outcome, ProbeOutcome);

bool probe_status_ok(long status, int expected) {
        if (expected > 0)
                return status == expected;
        return status >= 200 && status <= 399;
}

static bool is_ws(char c) {
        return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

const char *probe_body_trim(const char *body, size_t len, size_t *ret_len) {
        while (len > 0 && is_ws(body[0])) {
                body++;
                len--;
        }
        while (len > 0 && is_ws(body[len - 1]))
                len--;
        *ret_len = len;
        return body;
}

bool probe_utf8_valid(const char *s, size_t len) {
        const unsigned char *p = (const unsigned char *) s, *end = p + len;

        while (p < end) {
                unsigned c = *p, n;
                uint32_t cp;

                if (c == 0)
                        return false;
                if (c < 0x80) {
                        p++;
                        continue;
                }
                if (c >= 0xc2 && c <= 0xdf) {
                        n = 1;
                        cp = c & 0x1f;
                } else if (c >= 0xe0 && c <= 0xef) {
                        n = 2;
                        cp = c & 0x0f;
                } else if (c >= 0xf0 && c <= 0xf4) {
                        n = 3;
                        cp = c & 0x07;
                } else
                        return false;
                if ((size_t) (end - p) <= n)
                        return false;
                for (unsigned i = 1; i <= n; i++) {
                        if ((p[i] & 0xc0) != 0x80)
                                return false;
                        cp = (cp << 6) | (p[i] & 0x3f);
                }
                /* Overlong forms, UTF-16 surrogates and values past U+10FFFF. */
                if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
                    (cp >= 0xd800 && cp <= 0xdfff))
                        return false;
                p += n + 1;
        }
        return true;
}

_printf_(4, 5) static int fail(int r, char *err, size_t err_size, const char *fmt, ...) {
        va_list ap;

        if (err && err_size > 0) {
                va_start(ap, fmt);
                vsnprintf(err, err_size, fmt, ap);
                va_end(ap);
        }
        return r;
}

static bool all_digits(const char *s, size_t n) {
        if (n == 0)
                return false;
        for (size_t i = 0; i < n; i++)
                if (s[i] < '0' || s[i] > '9')
                        return false;
        return true;
}

/* Follows a dotted path. json-c represents a JSON null as NULL, so the value found is
 * returned through *ret and may be NULL; -ENOENT when a segment names nothing. */
static int json_walk(json_object *o, const char *path, json_object **ret) {
        _cleanup_(freep) char *copy = strdup(path);
        char *seg, *rest;

        if (!copy)
                return -ENOMEM;
        for (seg = copy; seg; seg = rest) {
                size_t n = strcspn(seg, ".");
                json_object *next = NULL;

                rest = seg[n] ? seg + n + 1 : NULL;
                seg[n] = 0;
                if (json_object_is_type(o, json_type_object)) {
                        if (!json_object_object_get_ex(o, seg, &next))
                                return -ENOENT;
                } else if (json_object_is_type(o, json_type_array) && all_digits(seg, n) &&
                           n < 10) {
                        size_t idx = (size_t) strtoul(seg, NULL, 10);
                        if (idx >= json_object_array_length(o))
                                return -ENOENT;
                        next = json_object_array_get_idx(o, idx);
                } else
                        return -ENOENT;
                o = next;
        }
        *ret = o;
        return 0;
}

static const char *json_type_phrase(json_object *o) {
        switch (json_object_get_type(o)) {
        case json_type_null:
                return "null";
        case json_type_object:
                return "an object";
        case json_type_array:
                return "an array";
        default:
                return "a scalar";
        }
}

/* "a" or "an" before a noun, for messages. */
static const char *article(const char *noun) {
        return strchr("aeiou", noun[0]) ? "an" : "a";
}

static int json_state(const char *text, size_t len, const char *path, char **ret, char *err,
                      size_t err_size) {
        _cleanup_(json_tokener_freep) json_tokener *tok = NULL;
        _cleanup_(json_object_putp) json_object *doc = NULL;
        _cleanup_(freep) char *nul_terminated = NULL;
        enum json_tokener_error je;
        json_object *v = NULL;
        int r;
        const char *s;
        size_t n;
        char *copy;

        if (len == 0)
                return fail(-EBADMSG, err, err_size, "the body is empty, expected JSON");

        /* json-c only knows a top-level literal (null, 3) has ended when it sees the
         * terminating NUL, so parse a NUL-terminated copy including the NUL. */
        nul_terminated = strndup(text, len);
        tok = json_tokener_new();
        if (!nul_terminated || !tok)
                return -ENOMEM;
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
        doc = json_tokener_parse_ex(tok, nul_terminated, (int) len + 1);
        je = json_tokener_get_error(tok);
        if (je == json_tokener_continue)
                return fail(-EBADMSG, err, err_size, "the body is not JSON: unexpected end of data");
        if (je != json_tokener_success)
                return fail(-EBADMSG, err, err_size, "the body is not JSON: %s at offset %zu",
                            json_tokener_error_desc(je), json_tokener_get_parse_end(tok));
        if (json_tokener_get_parse_end(tok) < len)
                return fail(-EBADMSG, err, err_size,
                            "the body is not JSON: unexpected data at offset %zu",
                            json_tokener_get_parse_end(tok));

        r = json_walk(doc, path, &v);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return fail(-ENOENT, err, err_size, "no field \"%s\" in the JSON body", path);

        switch (json_object_get_type(v)) {
        case json_type_string:
                s = json_object_get_string(v);
                n = (size_t) json_object_get_string_len(v);
                break;
        case json_type_boolean:
        case json_type_int:
        case json_type_double:
                s = json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN);
                n = strlen(s);
                break;
        default:
                return fail(-EMEDIUMTYPE, err, err_size,
                            "field \"%s\" of the JSON body is %s, expected a string, number or "
                            "boolean",
                            path, json_type_phrase(v));
        }
        if (!probe_utf8_valid(s, n))
                return fail(-EBADMSG, err, err_size,
                            "field \"%s\" of the JSON body contains a NUL character", path);
        uint32_t cp;
        if (okg_find_control(s, n, &cp) >= 0)
                return fail(-EBADMSG, err, err_size,
                            "field \"%s\" of the JSON body contains %s %s (U+%04X); a state "
                            "is one line of printable text",
                            path, article(okg_control_kind(cp)), okg_control_kind(cp),
                            (unsigned) cp);

        copy = strndup(s, n);
        if (!copy)
                return -ENOMEM;
        *ret = copy;
        return 0;
}

int probe_body_state(const char *body, size_t len, const char *json_path, char **ret_state,
                     char *err, size_t err_size) {
        const char *t;
        size_t n;
        char *copy;

        if (err && err_size > 0)
                err[0] = 0;
        t = probe_body_trim(body ?: "", body ? len : 0, &n);
        if (!probe_utf8_valid(t, n))
                return fail(-EBADMSG, err, err_size,
                            memchr(t, 0, n) ? "the body contains a NUL byte"
                                            : "the body is not valid UTF-8");
        if (json_path)
                return json_state(t, n, json_path, ret_state, err, err_size);
        /* A state travels into a pod annotation, a label, the log and tables: CR/LF, an escape
         * sequence, a line separator or a bidi override in it is a broken page (or a state
         * made to read otherwise than it is), not a state. */
        uint32_t cp;
        ptrdiff_t at = okg_find_control(t, n, &cp);
        if (at >= 0)
                return fail(-EBADMSG, err, err_size,
                            "the body contains %s %s (U+%04X at offset %zu); a state is one line "
                            "of printable text",
                            article(okg_control_kind(cp)), okg_control_kind(cp), (unsigned) cp,
                            (size_t) (t - body) + (size_t) at);

        copy = strndup(t, n);
        if (!copy)
                return -ENOMEM;
        *ret_state = copy;
        return 0;
}

/* location without userinfo, query and fragment, for a message: a login redirect may carry a
 * token, and another host's URL may carry credentials. */
static void describe_url(CURLU *u, char *buf, size_t size) {
        _cleanup_(curl_freep) char *s = NULL;

        if (curl_url_set(u, CURLUPART_USER, NULL, 0) != CURLUE_OK ||
            curl_url_set(u, CURLUPART_PASSWORD, NULL, 0) != CURLUE_OK ||
            curl_url_set(u, CURLUPART_QUERY, NULL, 0) != CURLUE_OK ||
            curl_url_set(u, CURLUPART_FRAGMENT, NULL, 0) != CURLUE_OK ||
            curl_url_get(u, CURLUPART_URL, &s, 0) != CURLUE_OK || !s) {
                snprintf(buf, size, "?");
                return;
        }
        okg_escape_controls(s, buf, size);
}

int probe_redirect_next(const char *from_url, long status, const char *location,
                        unsigned redirects, char **ret_next, char *err, size_t err_size) {
        _cleanup_(curl_url_cleanupp) CURLU *from = NULL, *to = NULL;
        _cleanup_(curl_freep) char *from_host = NULL, *to_host = NULL, *scheme = NULL,
                                   *next = NULL, *user = NULL, *password = NULL;
        char shown[256];
        char *copy;

        if (err && err_size > 0)
                err[0] = 0;
        if (isempty(location))
                return fail(-ENOENT, err, err_size,
                            "HTTP status %ld: a redirect without a Location to follow", status);
        if (redirects >= PROBE_MAX_REDIRECTS)
                return fail(-EMLINK, err, err_size, "more than %u redirects", PROBE_MAX_REDIRECTS);

        from = curl_url();
        to = curl_url();
        if (!from || !to)
                return -ENOMEM;
        /* Resolve location against the URL it answered (curl gives it absolute already; a
         * relative one is resolved the same way). */
        if (curl_url_set(from, CURLUPART_URL, from_url, 0) != CURLUE_OK ||
            curl_url_get(from, CURLUPART_HOST, &from_host, 0) != CURLUE_OK ||
            curl_url_set(to, CURLUPART_URL, from_url, 0) != CURLUE_OK ||
            curl_url_set(to, CURLUPART_URL, location, CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK ||
            curl_url_get(to, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
            curl_url_get(to, CURLUPART_HOST, &to_host, 0) != CURLUE_OK)
                return fail(-EPROTONOSUPPORT, err, err_size,
                            "HTTP status %ld: a redirect to a URL that cannot be parsed", status);
        if (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0)
                return fail(-EPROTONOSUPPORT, err, err_size,
                            "HTTP status %ld: a redirect to a %s URL, only http and https are "
                            "followed",
                            status, scheme);
        if (strcasecmp(from_host, to_host) != 0) {
                describe_url(to, shown, sizeof shown);
                return fail(-EREMOTE, err, err_size,
                            "HTTP status %ld: a redirect to another host (%s) is not followed",
                            status, shown);
        }
        /* curl would send them as basic auth, and they would show where the URL does. */
        if (curl_url_get(to, CURLUPART_USER, &user, 0) == CURLUE_OK ||
            curl_url_get(to, CURLUPART_PASSWORD, &password, 0) == CURLUE_OK)
                return fail(-EPROTONOSUPPORT, err, err_size,
                            "HTTP status %ld: a redirect to a URL with credentials is not "
                            "followed",
                            status);
        if (curl_url_get(to, CURLUPART_URL, &next, 0) != CURLUE_OK || !next)
                return -ENOMEM;
        copy = strdup(next);
        if (!copy)
                return -ENOMEM;
        *ret_next = copy;
        return 0;
}

bool probe_redirect_keeps_method(long status, const char *method) {
        if (status == 307 || status == 308)
                return true;
        return streq(method, "GET") || streq(method, "HEAD");
}
