/* The service_quality plugin's pure logic: the kruise.io/podprobe annotation, the pod facts a
 * probe needs, Kruise's result rules and message. No I/O (docs/service-quality.md). */
#define _GNU_SOURCE 1

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "log.h"
#include "macro.h"
#include "okg-json.h"
#include "okg-kube-names.h"
#include "okg-util.h"
#include "probed-sq.h"

#ifndef MIN
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#endif


_printf_(3, 4) static void set_err(char *err, size_t size, const char *fmt, ...) {
        va_list ap;
        if (!err || size == 0)
                return;
        va_start(ap, fmt);
        (void) vsnprintf(err, size, fmt, ap);
        va_end(ap);
}

char *sq_strf(const char *fmt, ...) {
        va_list ap;
        char *s;
        int n;

        va_start(ap, fmt);
        n = vasprintf(&s, fmt, ap);
        va_end(ap);
        return n < 0 ? NULL : s;
}

static void probe_done(SqProbe *p) {
        free(p->name);
        free(p->container);
        free(p->condition_type);
        strv_free(p->command);
        free(p->scheme);
        free(p->host);
        free(p->path);
        free(p->port_name);
        for (size_t i = 0; i < p->n_headers; i++) {
                free(p->headers[i].name);
                free(p->headers[i].value);
        }
        free(p->headers);
        *p = (SqProbe) {};
}

void sq_probes_done(SqProbes *p) {
        for (size_t i = 0; i < p->n; i++)
                probe_done(&p->v[i]);
        free(p->v);
        *p = (SqProbes) {};
}

static json_object *get(json_object *o, const char *key) {
        json_object *v = NULL;
        if (!json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, key, &v))
                return NULL;
        return json_object_is_type(v, json_type_null) ? NULL : v;
}

static const char *get_str(json_object *o, const char *key) {
        json_object *v = get(o, key);
        return json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

/* A string field: 1 set, 0 absent, -EINVAL wrong type / empty when required. */
static int str_field(json_object *o, const char *key, bool required, char **ret, const char *at,
                     char *err, size_t es) {
        json_object *v = get(o, key);
        if (!v) {
                if (required) {
                        set_err(err, es, "%s: \"%s\" is missing", at, key);
                        return -EINVAL;
                }
                return 0;
        }
        if (!json_object_is_type(v, json_type_string)) {
                set_err(err, es, "%s.%s: must be a string", at, key);
                return -EINVAL;
        }
        if (required && json_object_get_string_len(v) == 0) {
                set_err(err, es, "%s.%s: must not be empty", at, key);
                return -EINVAL;
        }
        if (memchr(json_object_get_string(v), 0, (size_t) json_object_get_string_len(v))) {
                set_err(err, es, "%s.%s: must not contain NUL", at, key);
                return -EINVAL;
        }
        *ret = strdup(json_object_get_string(v));
        return *ret ? 1 : -ENOMEM;
}

static int uint_field(json_object *o, const char *key, unsigned *ret, const char *at, char *err,
                      size_t es) {
        json_object *v = get(o, key);
        int64_t x;
        if (!v)
                return 0;
        if (!json_object_is_type(v, json_type_int)) {
                set_err(err, es, "%s.%s: must be an integer", at, key);
                return -EINVAL;
        }
        x = json_object_get_int64(v);
        if (x < 0 || x > INT32_MAX) {
                set_err(err, es, "%s.%s: must be between 0 and %d", at, key, INT32_MAX);
                return -EINVAL;
        }
        *ret = (unsigned) x;
        return 1;
}

/* An IntOrString port: a number 1-65535 or a name. */
static int port_field(json_object *o, SqProbe *p, const char *at, char *err, size_t es) {
        json_object *v = get(o, "port");
        if (!v) {
                set_err(err, es, "%s: \"port\" is missing", at);
                return -EINVAL;
        }
        if (json_object_is_type(v, json_type_int)) {
                int64_t x = json_object_get_int64(v);
                if (x < 1 || x > 65535) {
                        set_err(err, es, "%s.port: must be between 1 and 65535", at);
                        return -EINVAL;
                }
                p->port = (int) x;
                return 0;
        }
        if (json_object_is_type(v, json_type_string) && json_object_get_string_len(v) > 0 &&
            json_object_get_string_len(v) <= 63 &&
            !memchr(json_object_get_string(v), 0, (size_t) json_object_get_string_len(v))) {
                p->port_name = strdup(json_object_get_string(v));
                return p->port_name ? 0 : -ENOMEM;
        }
        set_err(err, es, "%s.port: must be a number or a port name", at);
        return -EINVAL;
}

static int parse_exec(json_object *o, SqProbe *p, const char *at, char *err, size_t es) {
        json_object *cmd = get(o, "command");
        size_t n;
        if (!json_object_is_type(cmd, json_type_array) || json_object_array_length(cmd) == 0) {
                set_err(err, es, "%s.command: must be a non-empty array of strings", at);
                return -EINVAL;
        }
        n = json_object_array_length(cmd);
        p->command = calloc(n + 1, sizeof(char *));
        if (!p->command)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                json_object *s = json_object_array_get_idx(cmd, i);
                if (!json_object_is_type(s, json_type_string) ||
                    memchr(json_object_get_string(s), 0, (size_t) json_object_get_string_len(s))) {
                        set_err(err, es, "%s.command[%zu]: must be a string", at, i);
                        return -EINVAL;
                }
                p->command[i] = strdup(json_object_get_string(s));
                if (!p->command[i])
                        return -ENOMEM;
        }
        return 0;
}

static bool header_name_valid(const char *s) {
        if (!*s)
                return false;
        for (; *s; s++)
                if (!(isalnum((unsigned char) *s) || strchr("!#$%&'*+-.^_`|~", *s)))
                        return false;
        return true;
}

static int parse_http(json_object *o, SqProbe *p, const char *at, char *err, size_t es) {
        _cleanup_(freep) char *scheme = NULL;
        json_object *hs;
        int r;

        r = str_field(o, "scheme", false, &scheme, at, err, es);
        if (r < 0)
                return r;
        if (!scheme || strcasecmp(scheme, "http") == 0)
                p->scheme = strdup("http");
        else if (strcasecmp(scheme, "https") == 0)
                p->scheme = strdup("https");
        else {
                set_err(err, es, "%s.scheme: must be HTTP or HTTPS", at);
                return -EINVAL;
        }
        if (!p->scheme)
                return -ENOMEM;
        if ((r = str_field(o, "host", false, &p->host, at, err, es)) < 0 ||
            (r = str_field(o, "path", false, &p->path, at, err, es)) < 0 ||
            (r = port_field(o, p, at, err, es)) < 0)
                return r;
        if (p->host && (strpbrk(p->host, "/@ \t\r\n?#") || !*p->host)) {
                set_err(err, es, "%s.host: not a host name or IP", at);
                return -EINVAL;
        }

        hs = get(o, "httpHeaders");
        if (!hs)
                return 0;
        if (!json_object_is_type(hs, json_type_array)) {
                set_err(err, es, "%s.httpHeaders: must be an array", at);
                return -EINVAL;
        }
        p->headers = calloc(json_object_array_length(hs) ?: 1, sizeof(SqHeader));
        if (!p->headers)
                return -ENOMEM;
        for (size_t i = 0; i < json_object_array_length(hs); i++) {
                json_object *h = json_object_array_get_idx(hs, i);
                SqHeader *x = &p->headers[p->n_headers];
                char hat[128];

                (void) snprintf(hat, sizeof hat, "%s.httpHeaders[%zu]", at, i);
                if (!json_object_is_type(h, json_type_object)) {
                        set_err(err, es, "%s: must be an object", hat);
                        return -EINVAL;
                }
                r = str_field(h, "name", true, &x->name, hat, err, es);
                if (r >= 0) {
                        p->n_headers++;
                        r = str_field(h, "value", false, &x->value, hat, err, es);
                }
                if (r < 0)
                        return r;
                if (!x->value && !(x->value = strdup("")))
                        return -ENOMEM;
                if (!header_name_valid(x->name) || !okg_http_header_value_valid(x->value)) {
                        set_err(err, es, "%s: not a valid header", hat);
                        return -EINVAL;
                }
        }
        return 0;
}

static int parse_one(json_object *o, SqProbe *p, const char *at, char *err, size_t es) {
        json_object *probe, *h;
        char pat[64];
        int n = 0, r;

        if (!json_object_is_type(o, json_type_object)) {
                set_err(err, es, "%s: must be an object", at);
                return -EINVAL;
        }
        if ((r = str_field(o, "name", true, &p->name, at, err, es)) < 0 ||
            (r = str_field(o, "containerName", true, &p->container, at, err, es)) < 0 ||
            (r = str_field(o, "podConditionType", true, &p->condition_type, at, err, es)) < 0)
                return r;
        /* What okg-storaged accepts as a condition type (and the API server as well). The
         * type is quoted escaped: a refusal stays on one line. */
        if (kube_qualified_name_check(p->condition_type)) {
                char q[128];
                set_err(err, es, "%s.podConditionType: \"%s\" is not a qualified name: %s", at,
                        okg_escape_controls(p->condition_type, q, sizeof q),
                        kube_qualified_name_check(p->condition_type));
                return -EINVAL;
        }
        if (streq(p->condition_type, "Ready") || streq(p->condition_type, "ContainersReady") ||
            streq(p->condition_type, "Initialized") || streq(p->condition_type, "PodScheduled")) {
                set_err(err, es, "%s.podConditionType: \"%s\" is kubelet's own", at,
                        p->condition_type);
                return -EINVAL;
        }
        probe = get(o, "probe");
        (void) snprintf(pat, sizeof pat, "%s.probe", at);
        if (!json_object_is_type(probe, json_type_object)) {
                set_err(err, es, "%s: must be an object", pat);
                return -EINVAL;
        }
        if ((r = uint_field(probe, "initialDelaySeconds", &p->initial_delay, pat, err, es)) < 0 ||
            (r = uint_field(probe, "timeoutSeconds", &p->timeout, pat, err, es)) < 0 ||
            (r = uint_field(probe, "periodSeconds", &p->period, pat, err, es)) < 0 ||
            (r = uint_field(probe, "successThreshold", &p->success_threshold, pat, err, es)) < 0 ||
            (r = uint_field(probe, "failureThreshold", &p->failure_threshold, pat, err, es)) < 0)
                return r;

        n = !!get(probe, "exec") + !!get(probe, "httpGet") + !!get(probe, "tcpSocket") +
            !!get(probe, "grpc");
        if (n != 1) {
                set_err(err, es, "%s: %s", pat,
                        n == 0 ? "no exec, httpGet or tcpSocket" : "more than one handler");
                return -EINVAL;
        }
        if ((h = get(probe, "exec"))) {
                p->handler = SQ_HANDLER_EXEC;
                (void) snprintf(pat, sizeof pat, "%s.probe.exec", at);
                return parse_exec(h, p, pat, err, es);
        }
        if ((h = get(probe, "httpGet"))) {
                p->handler = SQ_HANDLER_HTTP;
                (void) snprintf(pat, sizeof pat, "%s.probe.httpGet", at);
                if (!json_object_is_type(h, json_type_object)) {
                        set_err(err, es, "%s: must be an object", pat);
                        return -EINVAL;
                }
                return parse_http(h, p, pat, err, es);
        }
        if ((h = get(probe, "tcpSocket"))) {
                struct in6_addr a6;

                p->handler = SQ_HANDLER_TCP;
                (void) snprintf(pat, sizeof pat, "%s.probe.tcpSocket", at);
                if (!json_object_is_type(h, json_type_object)) {
                        set_err(err, es, "%s: must be an object", pat);
                        return -EINVAL;
                }
                if ((r = str_field(h, "host", false, &p->host, pat, err, es)) < 0)
                        return r;
                /* A host name (dialled by name) or an IP address, nothing else. */
                if (p->host && (!*p->host || p->host[strspn(p->host, "abcdefghijklmnopqrstuvwxyz"
                                                         "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_:")] ||
                               (strchr(p->host, ':') && inet_pton(AF_INET6, p->host, &a6) != 1))) {
                        set_err(err, es, "%s.host: not a host name or IP", pat);
                        return -EINVAL;
                }
                return port_field(h, p, pat, err, es);
        }
        set_err(err, es, "%s.grpc: gRPC probes are not supported", pat);
        return -EOPNOTSUPP;
}

/* How many of the first n bytes of s are JSON white space, from the start. */
static size_t span_space(const char *s, size_t n) {
        size_t i = 0;
        while (i < n && strchr(" \t\r\n", s[i]) && s[i])
                i++;
        return i;
}

int sq_json_parse_strict(const char *text, size_t len, const char *what, json_object **ret,
                         char *err, size_t err_size) {
        _cleanup_(json_object_putp) json_object *root = NULL;
        _cleanup_(json_tokener_freep) json_tokener *tok = NULL;
        _cleanup_(freep) char *copy = NULL;
        size_t end;

        if (len > INT_MAX - 1 || memchr(text, 0, len)) {
                set_err(err, err_size,
                        len > INT_MAX - 1 ? "too long" : "not JSON: it holds a NUL byte");
                return -EINVAL;
        }
        if (len == span_space(text, len)) {
                set_err(err, err_size, "empty (white space only): not a %s", what);
                return -EINVAL;
        }
        /* With its NUL the tokener knows where the text ends (a lone literal or number). */
        copy = strndup(text, len);
        tok = json_tokener_new();
        if (!copy || !tok)
                return -ENOMEM;
        root = json_tokener_parse_ex(tok, copy, (int) len + 1);
        if (json_tokener_get_error(tok) == json_tokener_continue ||
            json_tokener_get_error(tok) == json_tokener_error_parse_eof) {
                set_err(err, err_size, "not JSON: the text ends before the %s does", what);
                return -EINVAL;
        }
        if (json_tokener_get_error(tok) != json_tokener_success) {
                set_err(err, err_size, "not JSON: %s at offset %zu",
                        json_tokener_error_desc(json_tokener_get_error(tok)),
                        json_tokener_get_parse_end(tok));
                return -EINVAL;
        }
        end = json_tokener_get_parse_end(tok);
        if (end < len && span_space(copy + end, len - end) < len - end) {
                set_err(err, err_size, "trailing data after the %s (offset %zu)", what,
                        end + span_space(copy + end, len - end));
                return -EINVAL;
        }
        /* Then the value once more, as Kruise's json.Unmarshal reads it: no comments, single
         * quotes, trailing commas or other json-c leniencies (a hand-written text that only
         * json-c accepts would fail everywhere else). */
        end = MIN(end, len);
        copy[end] = 0;
        json_tokener_reset(tok);
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
        json_object_put(json_tokener_parse_ex(tok, copy, (int) end + 1));
        if (json_tokener_get_error(tok) != json_tokener_success) {
                set_err(err, err_size, "not JSON: %s at offset %zu",
                        json_tokener_error_desc(json_tokener_get_error(tok)),
                        json_tokener_get_parse_end(tok));
                return -EINVAL;
        }
        *ret = TAKE_PTR(root);
        return 0;
}

int sq_probes_parse(const char *text, size_t len, SqProbes *ret, char *err, size_t err_size) {
        _cleanup_(json_object_putp) json_object *root = NULL;
        _cleanup_(sq_probes_done) SqProbes out = {};
        size_t n;
        int r;

        r = sq_json_parse_strict(text, len, "JSON array", &root, err, err_size);
        if (r < 0)
                return r;
        /* Kruise's json.Unmarshal of null gives an empty list: no probes. */
        if (!root) {
                out.v = calloc(1, sizeof(SqProbe));
                if (!out.v)
                        return -ENOMEM;
                *ret = out;
                out.v = NULL;
                return 0;
        }
        if (!json_object_is_type(root, json_type_array)) {
                set_err(err, err_size, "must be a JSON array");
                return -EINVAL;
        }
        n = json_object_array_length(root);
        out.v = calloc(n ?: 1, sizeof(SqProbe));
        if (!out.v)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                char at[32];
                (void) snprintf(at, sizeof at, "[%zu]", i);
                out.n++;
                r = parse_one(json_object_array_get_idx(root, i), &out.v[i], at, err, err_size);
                if (r < 0)
                        return r;
                for (size_t j = 0; j < i; j++)
                        if (streq(out.v[j].condition_type, out.v[i].condition_type)) {
                                set_err(err, err_size, "%s.podConditionType: \"%s\" is also the "
                                        "type of [%zu]", at, out.v[i].condition_type, j);
                                return -EINVAL;
                        }
        }
        *ret = out;
        out.v = NULL;        /* handed over */
        out.n = 0;
        return 0;
}

static bool strv_equal(char **a, char **b) {
        if (!a || !b)
                return a == b;
        for (; *a && *b; a++, b++)
                if (!streq(*a, *b))
                        return false;
        return !*a && !*b;
}

static bool probe_equal(const SqProbe *a, const SqProbe *b) {
        if (!streq(a->name, b->name) || !streq(a->container, b->container) ||
            !streq(a->condition_type, b->condition_type) || a->handler != b->handler ||
            !strv_equal(a->command, b->command) || !streq_ptr(a->scheme, b->scheme) ||
            !streq_ptr(a->host, b->host) || !streq_ptr(a->path, b->path) || a->port != b->port ||
            !streq_ptr(a->port_name, b->port_name) || a->n_headers != b->n_headers ||
            a->initial_delay != b->initial_delay || a->timeout != b->timeout ||
            a->period != b->period || a->success_threshold != b->success_threshold ||
            a->failure_threshold != b->failure_threshold)
                return false;
        for (size_t i = 0; i < a->n_headers; i++)
                if (!streq(a->headers[i].name, b->headers[i].name) ||
                    !streq(a->headers[i].value, b->headers[i].value))
                        return false;
        return true;
}

bool sq_probes_equal(const SqProbes *a, const SqProbes *b) {
        if (a->n != b->n)
                return false;
        for (size_t i = 0; i < a->n; i++)
                if (!probe_equal(&a->v[i], &b->v[i]))
                        return false;
        return true;
}

/* ---- the pod ---- */

void sq_pod_done(SqPod *p) {
        free(p->annotation);
        free(p->ppm_list);
        for (size_t i = 0; i < p->n_labels; i++) {
                free(p->labels[i].key);
                free(p->labels[i].value);
        }
        free(p->labels);
        free(p->pod_ip);
        free(p->node_name);
        for (size_t i = 0; i < p->n_containers; i++) {
                SqContainer *c = &p->containers[i];
                free(c->name);
                free(c->id);
                for (size_t j = 0; j < c->n_ports; j++)
                        free(c->ports[j].name);
                free(c->ports);
        }
        free(p->containers);
        for (size_t i = 0; i < p->n_conditions; i++) {
                free(p->conditions[i].type);
                free(p->conditions[i].status);
                free(p->conditions[i].message);
        }
        free(p->conditions);
        *p = (SqPod) {};
}

static int dup_opt(const char *s, char **ret) {
        if (!s)
                return 0;
        *ret = strdup(s);
        return *ret ? 0 : -ENOMEM;
}

static SqContainer *container_find(SqPod *p, const char *name) {
        for (size_t i = 0; i < p->n_containers; i++)
                if (streq(p->containers[i].name, name))
                        return &p->containers[i];
        return NULL;
}

static int add_containers(SqPod *p, json_object *list, bool init_only_restartable) {
        size_t n;
        if (!json_object_is_type(list, json_type_array))
                return 0;
        n = json_object_array_length(list);
        for (size_t i = 0; i < n; i++) {
                json_object *c = json_object_array_get_idx(list, i), *ports;
                const char *name = get_str(c, "name");
                SqContainer *x, *v;

                if (!name || container_find(p, name))
                        continue;
                if (init_only_restartable && !streq_ptr(get_str(c, "restartPolicy"), "Always"))
                        continue;
                v = reallocarray(p->containers, p->n_containers + 1, sizeof(SqContainer));
                if (!v)
                        return -ENOMEM;
                p->containers = v;
                x = &v[p->n_containers];
                *x = (SqContainer) {};
                x->name = strdup(name);
                if (!x->name)
                        return -ENOMEM;
                p->n_containers++;
                ports = get(c, "ports");
                if (!json_object_is_type(ports, json_type_array))
                        continue;
                x->ports = calloc(json_object_array_length(ports) ?: 1, sizeof(SqPort));
                if (!x->ports)
                        return -ENOMEM;
                for (size_t j = 0; j < json_object_array_length(ports); j++) {
                        json_object *pt = json_object_array_get_idx(ports, j);
                        const char *pn = get_str(pt, "name");
                        json_object *num = get(pt, "containerPort");
                        if (!pn || !json_object_is_type(num, json_type_int))
                                continue;
                        x->ports[x->n_ports].number = (int) json_object_get_int64(num);
                        x->ports[x->n_ports].name = strdup(pn);
                        if (!x->ports[x->n_ports].name)
                                return -ENOMEM;
                        x->n_ports++;
                }
        }
        return 0;
}

static void add_statuses(SqPod *p, json_object *list) {
        if (!json_object_is_type(list, json_type_array))
                return;
        for (size_t i = 0; i < json_object_array_length(list); i++) {
                json_object *s = json_object_array_get_idx(list, i);
                const char *name = get_str(s, "name"), *id = get_str(s, "containerID"), *at;
                json_object *running = get(get(s, "state"), "running");
                SqContainer *c = name ? container_find(p, name) : NULL;
                const char *sep;

                if (!c)
                        continue;
                if (id) {
                        sep = strstr(id, "://");
                        free(c->id);
                        c->id = strdup(sep ? sep + 3 : id);
                }
                c->running = json_object_is_type(running, json_type_object);
                at = get_str(running, "startedAt");
                if (!at || sq_parse_time(at, &c->started_usec) < 0)
                        c->started_usec = 0;
        }
}

int sq_pod_parse(const char *json, size_t len, SqPod *ret) {
        _cleanup_(json_object_putp) json_object *root = NULL;
        _cleanup_(json_tokener_freep) json_tokener *tok = NULL;
        _cleanup_(sq_pod_done) SqPod p = {};
        json_object *spec, *status, *conds, *spn, *labels;
        int r;

        if (len > INT_MAX || memchr(json, 0, len))
                return -EINVAL;
        tok = json_tokener_new();
        if (!tok)
                return -ENOMEM;
        root = json_tokener_parse_ex(tok, json, (int) len);
        if (!root || json_tokener_get_error(tok) != json_tokener_success ||
            !json_object_is_type(root, json_type_object))
                return -EINVAL;

        spec = get(root, "spec");
        status = get(root, "status");
        if ((r = dup_opt(get_str(get(get(root, "metadata"), "annotations"), SQ_ANNOTATION),
                         &p.annotation)) < 0 ||
            (r = dup_opt(get_str(get(get(root, "metadata"), "annotations"), SQ_PPM_LIST_ANNOTATION),
                         &p.ppm_list)) < 0 ||
            (r = dup_opt(get_str(status, "podIP"), &p.pod_ip)) < 0 ||
            (r = dup_opt(get_str(spec, "nodeName"), &p.node_name)) < 0)
                return r;
        labels = get(get(root, "metadata"), "labels");
        if (json_object_is_type(labels, json_type_object)) {
                p.labels = calloc(json_object_object_length(labels) ?: 1, sizeof(SqLabel));
                if (!p.labels)
                        return -ENOMEM;
                json_object_object_foreach(labels, k, v) {
                        if (!json_object_is_type(v, json_type_string))
                                continue;
                        SqLabel *l = &p.labels[p.n_labels++];
                        if (!(l->key = strdup(k)) || !(l->value = strdup(json_object_get_string(v))))
                                return -ENOMEM;
                }
        }
        spn = get(spec, "shareProcessNamespace");
        p.share_process_namespace = json_object_is_type(spn, json_type_boolean) &&
                                    json_object_get_boolean(spn);
        if ((r = add_containers(&p, get(spec, "containers"), false)) < 0 ||
            (r = add_containers(&p, get(spec, "initContainers"), true)) < 0)
                return r;
        p.has_statuses = json_object_is_type(get(status, "containerStatuses"), json_type_array);
        add_statuses(&p, get(status, "containerStatuses"));
        add_statuses(&p, get(status, "initContainerStatuses"));

        conds = get(status, "conditions");
        if (json_object_is_type(conds, json_type_array)) {
                size_t n = json_object_array_length(conds);
                p.conditions = calloc(n ?: 1, sizeof(SqCondition));
                if (!p.conditions)
                        return -ENOMEM;
                for (size_t i = 0; i < n; i++) {
                        json_object *c = json_object_array_get_idx(conds, i);
                        SqCondition *x = &p.conditions[p.n_conditions];
                        if (!get_str(c, "type"))
                                continue;
                        p.n_conditions++;
                        if ((r = dup_opt(get_str(c, "type"), &x->type)) < 0 ||
                            (r = dup_opt(get_str(c, "status") ?: "", &x->status)) < 0 ||
                            (r = dup_opt(get_str(c, "message") ?: "", &x->message)) < 0)
                                return r;
                }
        }
        *ret = p;
        p = (SqPod) {};
        return 0;
}

const SqContainer *sq_pod_container(const SqPod *p, const char *name) {
        return container_find((SqPod *) p, name);
}

char *sq_pod_missing_container(const SqPod *p, const char *name) {
        _cleanup_(freep) char *list = NULL;
        size_t n = 1;

        for (size_t i = 0; i < p->n_containers; i++)
                n += strlen(p->containers[i].name) + 2;
        list = calloc(1, n);
        if (!list)
                return NULL;
        for (size_t i = 0; i < p->n_containers; i++) {
                if (i > 0)
                        strcat(list, ", ");
                strcat(list, p->containers[i].name);
        }
        return sq_strf("container %s is not in the pod (containers: %s)", name,
                       p->n_containers > 0 ? list : "none");
}

const SqCondition *sq_pod_condition(const SqPod *p, const char *type) {
        for (size_t i = 0; i < p->n_conditions; i++)
                if (streq(p->conditions[i].type, type))
                        return &p->conditions[i];
        return NULL;
}

static int digits(const char **s, int n, int *ret) {
        int v = 0;
        for (int i = 0; i < n; i++, (*s)++) {
                if (!isdigit((unsigned char) **s))
                        return -EINVAL;
                v = v * 10 + (**s - '0');
        }
        *ret = v;
        return 0;
}

int sq_parse_time(const char *s, uint64_t *ret) {
        struct tm tm = {};
        int Y, M, D, h, m, sec, oh = 0, om = 0, sign = 0;
        uint64_t frac = 0, scale = 1000000;
        time_t t;

        if (digits(&s, 4, &Y) < 0 || *s++ != '-' || digits(&s, 2, &M) < 0 || *s++ != '-' ||
            digits(&s, 2, &D) < 0 || (*s != 'T' && *s != 't') || !*s++ ||
            digits(&s, 2, &h) < 0 || *s++ != ':' || digits(&s, 2, &m) < 0 || *s++ != ':' ||
            digits(&s, 2, &sec) < 0)
                return -EINVAL;
        if (*s == '.') {
                s++;
                if (!isdigit((unsigned char) *s))
                        return -EINVAL;
                for (; isdigit((unsigned char) *s); s++)
                        if (scale > 1) {
                                scale /= 10;
                                frac += (uint64_t) (*s - '0') * scale;
                        }
        }
        if (*s == 'Z' || *s == 'z')
                s++;
        else if (*s == '+' || *s == '-') {
                sign = *s++ == '+' ? 1 : -1;
                if (digits(&s, 2, &oh) < 0 || *s++ != ':' || digits(&s, 2, &om) < 0)
                        return -EINVAL;
        } else
                return -EINVAL;
        if (*s || Y < 1970 || M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60 ||
            oh > 23 || om > 59)
                return -EINVAL;
        tm.tm_year = Y - 1900;
        tm.tm_mon = M - 1;
        tm.tm_mday = D;
        tm.tm_hour = h;
        tm.tm_min = m;
        tm.tm_sec = sec;
        t = timegm(&tm);
        t -= (time_t) sign * (oh * 3600 + om * 60);
        if (t < 0)
                return -EINVAL;
        *ret = (uint64_t) t * 1000000 + frac;
        return 0;
}

/* ---- where a probe goes ---- */

int sq_probe_resolve_port(const SqProbe *p, const SqContainer *c, int *ret, char *err,
                          size_t err_size) {
        const char *s;
        long v = 0;

        if (!p->port_name) {
                *ret = p->port;
                return 0;
        }
        for (size_t i = 0; c && i < c->n_ports; i++)
                if (streq(c->ports[i].name, p->port_name) && c->ports[i].number > 0 &&
                    c->ports[i].number <= 65535) {
                        *ret = c->ports[i].number;
                        return 0;
                }
        for (s = p->port_name; isdigit((unsigned char) *s) && v <= 65535; s++)
                v = v * 10 + (*s - '0');
        if (!*s && v >= 1 && v <= 65535) {
                *ret = (int) v;
                return 0;
        }
        set_err(err, err_size, "port \"%s\" is not a port of container %s", p->port_name,
                p->container);
        return -ENOENT;
}

const char *sq_probe_host(const SqProbe *p, const SqPod *pod) {
        if (!isempty(p->host))
                return p->host;
        if (pod && !isempty(pod->pod_ip))
                return pod->pod_ip;
        return "127.0.0.1";
}

char *sq_url_path_escape(const char *path) {
        static const char hex[] = "0123456789ABCDEF";
        size_t n = strlen(path), o = 0;
        char *out = malloc(n * 3 + 1);

        if (!out)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                unsigned char ch = (unsigned char) path[i];
                bool keep = ch > 0x20 && ch < 0x7f && !strchr("\"<>\\^`{|}", ch);
                /* A "%" that starts an escape stays one; another is a percent sign. */
                if (ch == '%')
                        keep = isxdigit((unsigned char) path[i + 1]) &&
                               isxdigit((unsigned char) path[i + 2]);
                if (keep)
                        out[o++] = (char) ch;
                else {
                        out[o++] = '%';
                        out[o++] = hex[ch >> 4];
                        out[o++] = hex[ch & 15];
                }
        }
        out[o] = 0;
        return out;
}

int sq_probe_url(const SqProbe *p, const SqPod *pod, const SqContainer *c, char **ret, char *err,
                 size_t err_size) {
        const char *host = sq_probe_host(p, pod);
        _cleanup_(freep) char *path = sq_url_path_escape(p->path ?: "");
        bool v6 = strchr(host, ':') != NULL;
        int port, r;

        if (!path)
                return -ENOMEM;
        r = sq_probe_resolve_port(p, c, &port, err, err_size);
        if (r < 0)
                return r;
        if (asprintf(ret, "%s://%s%s%s:%d%s%s", p->scheme ?: "http", v6 ? "[" : "", host,
                     v6 ? "]" : "", port, path[0] == '/' || !path[0] ? "" : "/", path) < 0)
                return -ENOMEM;
        return 0;
}

/* ---- results ---- */

/* The length of the valid UTF-8 sequence at s (at most n bytes), 0 when invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n) {
        uint32_t cp;
        return s[0] < 0x80 ? 1 : okg_utf8_decode(s, n, &cp);
}

char *sq_message_make(const char *data, size_t len) {
        const unsigned char *s = (const unsigned char *) data;
        size_t chars = 0, i, o = 0;
        char *out;

        /* Go counts an invalid byte as one character, as we do here. */
        for (i = 0; i < len; chars++) {
                size_t k = utf8_seq(s + i, len - i);
                i += k ?: 1;
        }
        if (chars > SQ_MESSAGE_MAX)
                len = SQ_MESSAGE_MAX;
        out = malloc(len * 3 + 1);
        if (!out)
                return NULL;
        for (i = 0; i < len;) {
                size_t k = utf8_seq(s + i, len - i);
                bool control = k == 1 && ((s[i] < 0x20 && s[i] != '\t' && s[i] != '\r' &&
                                           s[i] != '\n') || s[i] == 0x7f);
                /* What okg-storaged (and a D-Bus string) cannot carry, NUL included, becomes
                 * U+FFFD, as Go's JSON encoder writes invalid UTF-8. And a message must fit
                 * in 1024 bytes, even one of fewer characters: cut at a character's end. */
                const char *piece = k == 0 || control ? "\xef\xbf\xbd" : (const char *) s + i;
                size_t plen = k == 0 || control ? 3 : k;

                if (o + plen > SQ_MESSAGE_MAX)
                        break;
                memcpy(out + o, piece, plen);
                o += plen;
                i += k ?: 1;
        }
        out[o] = 0;
        return out;
}

char *sq_http_message(long status, const char *body, size_t len, bool *ret_success) {
        char *m;
        if (len > SQ_BODY_MAX)
                len = SQ_BODY_MAX;
        if (status >= 300 && status < 400) {
                /* A redirect kubelet did not follow (another host, no Location, 300, 304):
                 * a success with its warning text, which Kruise writes as the message. */
                _cleanup_(freep) char *w = NULL;
                static const char prefix[] = "Probe terminated redirects, Response body: ";
                *ret_success = true;
                w = malloc(sizeof prefix + len);
                if (!w)
                        return NULL;
                memcpy(w, prefix, sizeof prefix - 1);
                memcpy(w + sizeof prefix - 1, body, len);
                return sq_message_make(w, sizeof prefix - 1 + len);
        }
        if (status >= 200 && status < 300) {
                *ret_success = true;
                return sq_message_make(body, len);
        }
        *ret_success = false;
        if (asprintf(&m, "HTTP probe failed with statuscode: %ld", status) < 0)
                return NULL;
        return m;
}

void sq_tracker_done(SqTracker *t) {
        free(t->message);
        *t = (SqTracker) { .last = -1 };
}

void sq_tracker_reset(SqTracker *t) {
        sq_tracker_done(t);
}

int sq_tracker_feed(SqTracker *t, const SqProbe *p, bool success, const char *message) {
        unsigned threshold;
        bool changed;

        if (t->last == (int) success)
                t->run++;
        else {
                t->last = success;
                t->run = 1;
        }
        threshold = success ? (p->success_threshold ?: 1) : (p->failure_threshold ?: 1);
        if (t->run < threshold)
                return 0;
        message = message ?: "";
        changed = !t->has_result || t->status != success || !streq_ptr(t->message, message);
        if (!changed)
                return 0;
        if (free_and_strdup(&t->message, message) < 0)
                return -ENOMEM;
        t->has_result = true;
        t->status = success;
        return 1;
}

void sq_history_done(SqHistory *h) {
        for (size_t i = 0; i < h->n; i++)
                free(h->message[i]);
        for (size_t i = 0; i < h->n_pending; i++)
                free(h->pending[i].message);
        free(h->pending);
        for (size_t i = 0; i < h->n_acked; i++)
                free(h->acked_message[i]);
        *h = (SqHistory) {};
}


/* Pushes a copy of message on a ring of SQ_HISTORY values, newest first. */
static int ring_push(bool *status, char **message, size_t *n, bool st, const char *msg) {
        char *copy = strdup(strempty(msg));

        if (!copy)
                return -ENOMEM;
        if (*n == SQ_HISTORY)
                free(message[--*n]);
        memmove(message + 1, message, *n * sizeof(char *));
        memmove(status + 1, status, *n * sizeof(bool));
        message[0] = copy;
        status[0] = st;
        (*n)++;
        return 0;
}

static bool ring_has(const bool *status, char *const *message, size_t n, const char *st,
                     const char *msg) {
        for (size_t i = 0; i < n; i++)
                if (streq_ptr(st, status[i] ? "True" : "False") && streq_ptr(msg, message[i]))
                        return true;
        return false;
}

int sq_history_handed(SqHistory *h, bool status, const char *message, uint64_t call) {
        char *copy;

        if (h->n_pending == SQ_PENDING_MAX) {
                /* An outage of SQ_PENDING_MAX values: the oldest may still come to the pod
                 * (a retried write), so nothing is judged until the ones kept are acknowledged. */
                free(h->pending[0].message);
                memmove(h->pending, h->pending + 1, --h->n_pending * sizeof(SqValue));
                h->pending_lost = true;
        } else {
                SqValue *v = reallocarray(h->pending, h->n_pending + 1, sizeof(SqValue));
                if (!v)
                        return -ENOMEM;
                h->pending = v;
        }
        copy = strdup(strempty(message));
        if (!copy)
                return -ENOMEM;
        h->pending[h->n_pending++] = (SqValue) { status, copy, call, 0 };
        return sq_history_push(h, status, message);
}

void sq_history_accepted(SqHistory *h, uint64_t call, uint64_t seq) {
        for (size_t i = 0; i < h->n_pending; i++)
                if (h->pending[i].call == call)
                        h->pending[i].seq = seq;
}

int sq_history_acknowledged(SqHistory *h, uint64_t seq) {
        size_t i = h->n_pending;
        SqValue *v;
        int k;

        while (i > 0 && (h->pending[i - 1].seq == 0 || h->pending[i - 1].seq > seq))
                i--;
        if (i == 0)
                return 0;
        v = &h->pending[i - 1];
        if (h->n_acked == 0 || h->acked_status[0] != v->status ||
            !streq(h->acked_message[0], v->message)) {
                k = ring_push(h->acked_status, h->acked_message, &h->n_acked, v->status,
                              v->message);
                if (k < 0)
                        return k;
        }
        for (size_t j = 0; j < i; j++)
                free(h->pending[j].message);
        memmove(h->pending, h->pending + i, (h->n_pending - i) * sizeof(SqValue));
        h->n_pending -= i;
        /* The forgotten ones were older than every one kept. */
        h->pending_lost = false;
        return 0;
}

int sq_history_push(SqHistory *h, bool status, const char *message) {
        return ring_push(h->status, h->message, &h->n, status, message);
}

bool sq_history_has(const SqHistory *h, const char *status, const char *message) {
        return ring_has(h->status, h->message, h->n, status, message);
}

SqVerdict sq_history_judge(const SqHistory *h, const char *status, const char *message) {
        if (sq_history_has(h, status, message) ||
            ring_has(h->acked_status, h->acked_message, h->n_acked, status, message))
                return SQ_VERDICT_OWN;
        for (size_t i = 0; i < h->n_pending; i++)
                if (streq_ptr(status, h->pending[i].status ? "True" : "False") &&
                    streq_ptr(message, h->pending[i].message))
                        return SQ_VERDICT_OWN;
        /* Before the first acknowledgement the pod may hold anything written before the plugin
         * started (its own earlier run's values): no judgement on that. */
        if (h->n_acked == 0 || h->pending_lost)
                return SQ_VERDICT_UNKNOWN;
        return SQ_VERDICT_OTHER;
}

void sq_sent_book_done(SqSentBook *b) {
        for (size_t i = 0; i < b->n; i++) {
                free(b->v[i]->type);
                sq_history_done(&b->v[i]->history);
                free(b->v[i]);
        }
        free(b->v);
        *b = (SqSentBook) {};
}

SqHistory *sq_sent_book_get(SqSentBook *b, const char *type) {
        SqSent **v, *e;

        for (size_t i = 0; i < b->n; i++)
                if (streq(b->v[i]->type, type))
                        return &b->v[i]->history;
        v = reallocarray(b->v, b->n + 1, sizeof(SqSent *));
        if (!v)
                return NULL;
        b->v = v;
        e = calloc(1, sizeof *e);
        if (!e)
                return NULL;
        e->type = strdup(type);
        if (!e->type) {
                free(e);
                return NULL;
        }
        b->v[b->n++] = e;
        return &e->history;
}

bool sq_probe_due(const SqProbe *p, const SqContainer *c, uint64_t now_usec,
                  uint64_t *ret_wait_usec) {
        uint64_t at;

        *ret_wait_usec = 0;
        if (!c || c->started_usec == 0)
                return false;
        at = c->started_usec + (uint64_t) sq_probe_initial_delay(p) * 1000000;
        if (now_usec >= at)
                return true;
        *ret_wait_usec = at - now_usec;
        return false;
}

int sq_cgroup_has_container(const char *text, const char *id) {
        size_t idlen;
        const char *line = text;

        if (isempty(id) || !text)
                return 0;
        idlen = strlen(id);
        while (line && *line) {
                const char *end = strchrnul(line, '\n'), *path = memchr(line, ':', (size_t) (end - line));
                if (path)
                        path = memchr(path + 1, ':', (size_t) (end - path - 1));
                if (path) {
                        /* Look at each path component: it is the ID, or ID plus a runtime's
                         * prefix ("cri-containerd-", "docker-") and ".scope". */
                        const char *comp = path + 1;
                        while (comp < end) {
                                const char *ce = memchr(comp, '/', (size_t) (end - comp));
                                size_t cl;
                                if (!ce)
                                        ce = end;
                                cl = (size_t) (ce - comp);
                                for (size_t k = 0; k + idlen <= cl; k++)
                                        if (memcmp(comp + k, id, idlen) == 0 &&
                                            (k == 0 || comp[k - 1] == '-') &&
                                            (k + idlen == cl ||
                                             (cl - k - idlen == 6 &&
                                              memcmp(comp + k + idlen, ".scope", 6) == 0)))
                                                return 1;
                                comp = ce + 1;
                        }
                }
                line = *end ? end + 1 : NULL;
        }
        return 0;
}
