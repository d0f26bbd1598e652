/* Request parameters: parsing and checks; see hotupdated-request.h. */
#include <curl/curl.h>
#include <errno.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hotupdated-request.h"
#include "macro.h"
#include "okg-curl.h"
#include "okg-kube-names.h"

_printf_(3, 4) static int fail(char *err, size_t errlen, const char *fmt, ...) {
        va_list ap;

        if (err && errlen > 0) {
                va_start(ap, fmt);
                vsnprintf(err, errlen, fmt, ap);
                va_end(ap);
        }
        return -EINVAL;
}

void hotupdate_params_done(HotUpdateParams *p) {
        if (!p)
                return;
        free(p->version);
        free(p->url);
        free(p->sha256);
        free(p->file_name);
        *p = (HotUpdateParams) {};
}

int hotupdate_params_copy(const HotUpdateParams *from, HotUpdateParams *to) {
        HotUpdateParams c = {};

        c.seen = from->seen;
        if ((from->version && !(c.version = strdup(from->version))) ||
            (from->url && !(c.url = strdup(from->url))) ||
            (from->sha256 && !(c.sha256 = strdup(from->sha256))) ||
            (from->file_name && !(c.file_name = strdup(from->file_name)))) {
                hotupdate_params_done(&c);
                return -ENOMEM;
        }
        *to = c;
        return 0;
}

HotUpdateBodyKind hotupdate_body_kind(const char *content_type) {
        size_t n;

        if (!content_type)
                return BODY_FORM;
        while (*content_type == ' ' || *content_type == '\t')
                content_type++;
        n = strcspn(content_type, "; \t");
        if (n == 0)
                return BODY_FORM;
        if (n == strlen("application/x-www-form-urlencoded") &&
            strncasecmp(content_type, "application/x-www-form-urlencoded", n) == 0)
                return BODY_FORM;
        if (n == strlen("application/json") && strncasecmp(content_type, "application/json", n) == 0)
                return BODY_JSON;
        return BODY_UNSUPPORTED;
}

static int hexval(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

int hotupdate_percent_decode(const char *s, size_t len, bool plus_is_space, char **ret,
                             size_t *ret_len) {
        _cleanup_(freep) char *out = malloc(len + 1);
        size_t n = 0;

        if (!out)
                return -ENOMEM;
        for (size_t i = 0; i < len; i++) {
                if (s[i] == '%') {
                        int hi, lo;
                        if (i + 2 >= len)
                                return -EINVAL;
                        hi = hexval(s[i + 1]);
                        lo = hexval(s[i + 2]);
                        if (hi < 0 || lo < 0)
                                return -EINVAL;
                        out[n++] = (char) (hi << 4 | lo);
                        i += 2;
                } else if (s[i] == '+' && plus_is_space)
                        out[n++] = ' ';
                else
                        out[n++] = s[i];
        }
        out[n] = 0;
        *ret = TAKE_PTR(out);
        if (ret_len)
                *ret_len = n;
        return 0;
}

static const char *const param_names[] = { "version", "url", "sha256", "fileName" };

static int param_index(const char *key) {
        for (size_t i = 0; i < ELEMENTSOF(param_names); i++)
                if (streq(key, param_names[i]))
                        return (int) i;
        return -1;
}

/* Bytes of a name or value that are safe to echo in a one-line reason. */
static void printable(const char *s, size_t len, char *buf, size_t size) {
        size_t n = 0;
        for (size_t i = 0; i < len && n + 4 < size; i++) {
                unsigned char c = (unsigned char) s[i];
                buf[n++] = c >= 0x20 && c < 0x7f && c != '"' ? (char) c : '?';
        }
        if (len > 0 && n + 4 >= size && n >= 3)
                memcpy(buf + n - 3, "...", 3);
        buf[n] = 0;
}

int hotupdate_params_set(HotUpdateParams *p, const char *key, const char *value, size_t len,
                         char *err, size_t errlen) {
        char **fields[] = { &p->version, &p->url, &p->sha256, &p->file_name };
        char shown[72];
        char **field;
        int i;

        if (!key)
                return fail(err, errlen, "parameter without a name");
        i = param_index(key);
        if (i < 0) {
                printable(key, strlen(key), shown, sizeof shown);
                return fail(err, errlen,
                            "unknown parameter \"%s\" (expected version, url, sha256, fileName)",
                            shown);
        }
        field = fields[i];
        /* Empty counts as absent, but a second, empty copy is still a duplicate. */
        if (p->seen & (1U << i))
                return fail(err, errlen, "parameter \"%s\" given twice", key);
        p->seen |= 1U << i;
        if (value && memchr(value, 0, len))
                return fail(err, errlen, "parameter \"%s\" contains a NUL byte", key);
        if (!value || len == 0)
                return 0;
        *field = strndup(value, len);
        return *field ? 0 : -ENOMEM;
}

int hotupdate_parse_form(const char *s, size_t len, HotUpdateParams *p, char *err, size_t errlen) {
        size_t i = 0;
        int r;

        if (!s)
                return 0;
        while (i < len) {
                _cleanup_(freep) char *key = NULL, *value = NULL;
                size_t end = i, eq, key_len, value_len = 0;

                while (end < len && s[end] != '&')
                        end++;
                if (end == i) {
                        /* "a=1&&b=2": empty pieces carry nothing. */
                        i = end + 1;
                        continue;
                }
                eq = i;
                while (eq < end && s[eq] != '=')
                        eq++;

                r = hotupdate_percent_decode(s + i, eq - i, true, &key, &key_len);
                if (r == -ENOMEM)
                        return r;
                if (r < 0)
                        return fail(err, errlen, "malformed %%-escape in a parameter name");
                if (key_len == 0)
                        return fail(err, errlen, "parameter without a name");
                if (memchr(key, 0, key_len))
                        return fail(err, errlen, "parameter name contains a NUL byte");
                if (eq < end) {
                        r = hotupdate_percent_decode(s + eq + 1, end - eq - 1, true, &value,
                                                     &value_len);
                        if (r == -ENOMEM)
                                return r;
                        if (r < 0) {
                                char shown[72];
                                printable(key, key_len, shown, sizeof shown);
                                return fail(err, errlen, "malformed %%-escape in parameter \"%s\"",
                                            shown);
                        }
                }
                r = hotupdate_params_set(p, key, value, value_len, err, errlen);
                if (r < 0)
                        return r;
                i = end + 1;
        }
        return 0;
}

static void json_putp(json_object **o) {
        if (*o)
                json_object_put(*o);
}

static void json_tokener_freep(json_tokener **t) {
        if (*t)
                json_tokener_free(*t);
}

int hotupdate_parse_json(const char *s, size_t len, HotUpdateParams *p, char *err, size_t errlen) {
        _cleanup_(json_tokener_freep) json_tokener *tok = NULL;
        _cleanup_(json_putp) json_object *o = NULL;
        int r;

        if (len == 0)
                return fail(err, errlen, "empty JSON body");
        if (len > HOTUPDATE_MAX_BODY || memchr(s, 0, len))
                return fail(err, errlen, "invalid JSON body");

        /* Depth 2 is all an object of strings needs; deeper input is refused early. */
        tok = json_tokener_new_ex(2);
        if (!tok)
                return -ENOMEM;
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
        o = json_tokener_parse_ex(tok, s, (int) len);
        if (!o || json_tokener_get_error(tok) != json_tokener_success)
                return fail(err, errlen, "invalid JSON body: %s",
                            json_tokener_get_error(tok) == json_tokener_continue
                                    ? "unexpected end of input"
                                    : json_tokener_error_desc(json_tokener_get_error(tok)));
        /* Anything but whitespace after the value is an error. */
        for (size_t i = json_tokener_get_parse_end(tok); i < len; i++)
                if (!strchr(" \t\r\n", s[i]))
                        return fail(err, errlen, "invalid JSON body: trailing data");
        if (!json_object_is_type(o, json_type_object))
                return fail(err, errlen, "JSON body must be an object");

        json_object_object_foreach(o, key, val) {
                char shown[72];

                if (param_index(key) < 0) {
                        printable(key, strlen(key), shown, sizeof shown);
                        return fail(err, errlen,
                                    "unknown parameter \"%s\" (expected version, url, sha256, "
                                    "fileName)",
                                    shown);
                }
                if (json_object_is_type(val, json_type_null))
                        continue;
                if (!json_object_is_type(val, json_type_string))
                        return fail(err, errlen, "parameter \"%s\" must be a string", key);
                r = hotupdate_params_set(p, key, json_object_get_string(val),
                                         (size_t) json_object_get_string_len(val), err, errlen);
                if (r < 0)
                        return r;
        }
        return 0;
}

bool hotupdate_version_is_valid(const char *v) {
        size_t n;

        if (!v)
                return false;
        n = strlen(v);
        if (n == 0 || n > HOTUPDATE_MAX_VERSION)
                return false;
        for (const char *c = v; *c; c++)
                if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                      (*c >= '0' && *c <= '9') || strchr("._-+", *c)))
                        return false;
        return true;
}

bool hotupdate_sha256_is_valid(const char *s) {
        if (!s || strlen(s) != 64)
                return false;
        for (const char *c = s; *c; c++)
                if (hexval(*c) < 0)
                        return false;
        return true;
}

const char *hotupdate_url_check(const char *url) {
        _cleanup_(curl_url_cleanupp) CURLU *u = NULL;
        _cleanup_(curl_freep) char *scheme = NULL, *host = NULL, *user = NULL, *password = NULL;
        size_t n;

        if (isempty(url))
                return "is empty";
        n = strlen(url);
        if (n > HOTUPDATE_MAX_URL)
                return "is longer than 2048 characters";
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char) url[i];
                if (c <= 0x20 || c >= 0x7f)
                        return "contains spaces, control or non-ASCII characters (percent-encode them)";
        }

        u = curl_url();
        if (!u)
                return "cannot be parsed (out of memory)";
        /* No scheme guessing: "cdn.example.com/x" is refused, not read as http. */
        if (curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK)
                return "is not a valid absolute URL";
        if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK || !scheme)
                return "has no scheme";
        if (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0)
                return "must use http or https";
        if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || isempty(host))
                return "has no host";
        /* Credentials would end up in the annotation, the record and the logs. */
        if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK && user)
                return "must not contain credentials (user:password@)";
        if (curl_url_get(u, CURLUPART_PASSWORD, &password, 0) == CURLUE_OK && password)
                return "must not contain credentials (user:password@)";
        return NULL;
}

const char *hotupdate_url_shown(const char *url, char *buf, size_t size) {
        const char *masked;

        if (!url || size == 0)
                return NULL;
        okg_url_redact(url, buf, size);
        if (!hotupdate_url_check(url))
                return buf;
        /* An invalid one may hide user info the mask does not see ("u:pw@host/x" without
         * "://"): shown only when its sole '@' is the masked one, or it has none. */
        masked = strstr(buf, "://***@");
        for (const char *c = buf; (c = strchr(c, '@')); c++)
                if (!masked || c != masked + strlen("://***"))
                        return NULL;
        return buf;
}

const char *hotupdate_file_name_check(const char *name) {
        size_t n;

        if (isempty(name))
                return "is empty";
        n = strlen(name);
        if (n > HOTUPDATE_MAX_FILE_NAME)
                return "is longer than 255 characters";
        if (name[0] == '.')
                return "must not start with '.' (no hidden files, no \".\" or \"..\")";
        if (name[0] == '-')
                return "must not start with '-'";
        for (const char *c = name; *c; c++) {
                if (*c == '/' || *c == '\\')
                        return "must be a plain name without '/' or '\\'";
                if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                      (*c >= '0' && *c <= '9') || strchr("._-+~@=,", *c)))
                        return "may only contain A-Z a-z 0-9 and . _ - + ~ @ = ,";
        }
        return NULL;
}

int hotupdate_file_name_from_url(const char *url, char **ret, const char **ret_reason) {
        _cleanup_(curl_url_cleanupp) CURLU *u = NULL;
        _cleanup_(curl_freep) char *path = NULL;
        _cleanup_(freep) char *name = NULL;
        const char *last, *why;
        size_t len;
        int r;

        u = curl_url();
        if (!u)
                return -ENOMEM;
        if (curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK ||
            curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK || !path) {
                *ret_reason = "the URL cannot be parsed";
                return -EINVAL;
        }
        last = strrchr(path, '/');
        last = last ? last + 1 : path;
        if (!*last) {
                *ret_reason = "the URL has no file name (its path ends in '/'); give fileName";
                return -EINVAL;
        }
        r = hotupdate_percent_decode(last, strlen(last), false, &name, &len);
        if (r == -ENOMEM)
                return r;
        if (r < 0 || memchr(name, 0, len)) {
                *ret_reason = "the URL's file name has a malformed %-escape; give fileName";
                return -EINVAL;
        }
        why = hotupdate_file_name_check(name);
        if (why) {
                *ret_reason = "the URL's file name is not safe (only A-Z a-z 0-9 . _ - + ~ @ = "
                              ", not starting with '.' or '-'); give fileName";
                return -EINVAL;
        }
        *ret = TAKE_PTR(name);
        return 0;
}

int hotupdate_params_finish(HotUpdateParams *p, char *err, size_t errlen) {
        const char *why;
        int r;

        if (!p->version)
                return fail(err, errlen, "parameter \"version\" is missing");
        if (!hotupdate_version_is_valid(p->version))
                return fail(err, errlen,
                            "invalid version: 1-%u characters from A-Z a-z 0-9 . _ - +",
                            HOTUPDATE_MAX_VERSION);
        if (!p->url)
                return fail(err, errlen, "parameter \"url\" is missing");
        why = hotupdate_url_check(p->url);
        if (why)
                return fail(err, errlen, "invalid url: %s", why);
        if (p->sha256) {
                if (!hotupdate_sha256_is_valid(p->sha256))
                        return fail(err, errlen, "invalid sha256: expected 64 hex digits");
                for (char *c = p->sha256; *c; c++)
                        if (*c >= 'A' && *c <= 'F')
                                *c = (char) (*c - 'A' + 'a');
        }
        if (p->file_name) {
                why = hotupdate_file_name_check(p->file_name);
                if (why)
                        return fail(err, errlen, "invalid fileName: %s", why);
        } else {
                r = hotupdate_file_name_from_url(p->url, &p->file_name, &why);
                if (r == -ENOMEM)
                        return r;
                if (r < 0)
                        return fail(err, errlen, "%s", why);
        }
        return 0;
}
