/* The http_probe plugin's `config` section: endpoints, thresholds and the markerPolices that map
 * a probed state to the GameServer's opsState, labels and annotations. No I/O. */
#define _GNU_SOURCE 1

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "macro.h"
#include "okg-config.h"
#include "okg-kube-names.h"
#include "probed-config.h"

typedef struct Ctx {
        const char *file;
        OkgErrors *e;
        int oom;
} Ctx;

static int note(Ctx *c, int r) {
        if (r == -ENOMEM)
                c->oom = r;
        return r;
}

/* Null values count as absent, so `timeout:` with nothing after it keeps the default. */
static OkgNode *get_opt(const OkgNode *m, const char *key) {
        OkgNode *v = okg_node_get(m, key);
        return okg_node_is_null(v) ? NULL : v;
}

static char *path_key(Ctx *c, const char *path, const char *key) {
        char *p = okg_path_key(path, key);
        if (!p)
                note(c, -ENOMEM);
        return p;
}

/* Reads an optional string into *field (replacing the default). 1 when set, 0 when absent. */
static int opt_string(Ctx *c, const OkgNode *m, const char *path, const char *key,
                      bool allow_empty, char **field, const OkgNode **ret_node) {
        OkgNode *v = get_opt(m, key);
        _cleanup_(freep) char *p = NULL, *s = NULL;
        int r;

        if (!v)
                return 0;
        p = path_key(c, path, key);
        if (!p)
                return -ENOMEM;
        r = okg_node_get_string(v, c->file, p, c->e, &s);
        if (r < 0)
                return note(c, r);
        if (!allow_empty && isempty(s)) {
                okg_errors_add(c->e, c->file, v, p, "must not be empty");
                return -EINVAL;
        }
        free(*field);
        *field = TAKE_PTR(s);
        if (ret_node)
                *ret_node = v;
        return 1;
}

static int opt_int(Ctx *c, const OkgNode *m, const char *path, const char *key, long long min,
                   long long max, long long *ret) {
        OkgNode *v = get_opt(m, key);
        _cleanup_(freep) char *p = NULL;
        int r;

        if (!v)
                return 0;
        p = path_key(c, path, key);
        if (!p)
                return -ENOMEM;
        r = okg_node_get_int(v, c->file, p, min, max, c->e, ret);
        if (r < 0)
                return note(c, r);
        return 1;
}

static int opt_uint(Ctx *c, const OkgNode *m, const char *path, const char *key, long long min,
                    long long max, unsigned *field) {
        long long x;
        int r = opt_int(c, m, path, key, min, max, &x);
        if (r > 0)
                *field = (unsigned) x;
        return r;
}

/* A sub-section that must be a mapping; keys == NULL allows any key. NULL when absent/wrong. */
static const OkgNode *opt_section(Ctx *c, const OkgNode *m, const char *path, const char *key,
                                  const char *const *keys, char **ret_path) {
        OkgNode *v = get_opt(m, key);
        char what[80];

        *ret_path = path_key(c, path, key);
        if (!*ret_path || !v)
                return NULL;
        if (v->type != OKG_NODE_MAPPING) {
                okg_errors_add(c->e, c->file, v, *ret_path, "expected a mapping, got %s",
                               okg_node_describe(v, what, sizeof(what)));
                return NULL;
        }
        note(c, okg_node_check_keys(v, c->file, *ret_path, keys, c->e));
        return v;
}

static void missing(Ctx *c, const OkgNode *at, const char *path, const char *key) {
        _cleanup_(freep) char *p = path_key(c, path, key);
        if (p)
                okg_errors_add(c->e, c->file, at, p, "required key is missing");
}

static void key_values_free(KeyValue *kv, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(kv[i].key);
                free(kv[i].value);
        }
        free(kv);
}

typedef enum MapKind {
        MAP_HEADERS,
        MAP_LABELS,
        MAP_ANNOTATIONS,
} MapKind;

/* A string -> string mapping (headers, labels, annotations), each side checked for its kind. */
static void parse_string_map(Ctx *c, const OkgNode *m, const char *path, const char *key,
                             MapKind kind, KeyValue **ret, size_t *ret_n) {
        _cleanup_(freep) char *mp = NULL;
        const OkgNode *sec = opt_section(c, m, path, key, NULL, &mp);
        char what[80];

        if (!sec || sec->n == 0)
                return;

        KeyValue *kv = calloc(sec->n, sizeof(KeyValue));
        if (!kv) {
                note(c, -ENOMEM);
                return;
        }
        key_values_free(*ret, *ret_n);
        *ret = kv;
        *ret_n = sec->n;

        for (size_t i = 0; i < sec->n; i++) {
                const OkgNode *k = sec->keys[i], *v = sec->values[i];
                _cleanup_(freep) char *vp = path_key(c, mp, k->scalar);
                const char *why = NULL;

                if (!vp)
                        return;
                kv[i].key = strdup(k->scalar);
                if (!kv[i].key) {
                        note(c, -ENOMEM);
                        return;
                }

                switch (kind) {
                case MAP_HEADERS:
                        if (!okg_http_token_valid(k->scalar))
                                okg_errors_add(c->e, c->file, k, mp,
                                               "invalid header name %s (expected letters, "
                                               "digits and !#$%%&'*+-.^_`|~)",
                                               okg_node_describe(k, what, sizeof(what)));
                        break;
                case MAP_LABELS:
                        why = kube_qualified_name_check(k->scalar);
                        if (why)
                                okg_errors_add(c->e, c->file, k, mp, "invalid label key %s: %s",
                                               okg_node_describe(k, what, sizeof(what)), why);
                        break;
                case MAP_ANNOTATIONS:
                        why = kube_qualified_name_check(k->scalar);
                        if (why)
                                okg_errors_add(c->e, c->file, k, mp,
                                               "invalid annotation key %s: %s",
                                               okg_node_describe(k, what, sizeof(what)), why);
                        break;
                }

                if (note(c, okg_node_get_string(v, c->file, vp, c->e, &kv[i].value)) < 0)
                        continue;

                if (kind == MAP_HEADERS && strpbrk(kv[i].value, "\r\n"))
                        okg_errors_add(c->e, c->file, v, vp,
                                       "a header value must not contain line breaks");
                else if (kind == MAP_LABELS && (why = kube_label_value_check(kv[i].value)))
                        okg_errors_add(c->e, c->file, v, vp, "invalid label value %s: %s",
                                       okg_node_describe(v, what, sizeof(what)), why);
        }
}

static void marker_policy_done(MarkerPolicy *p) {
        free(p->state);
        free(p->ops_state);
        key_values_free(p->labels, p->n_labels);
        key_values_free(p->annotations, p->n_annotations);
}

static void parse_policy(Ctx *c, const OkgNode *m, const char *path, MarkerPolicy *p) {
        static const char *const keys[] = {
                "state", "gameServerOpsState", "labels", "annotations", NULL,
        };
        char what[80];

        if (m->type != OKG_NODE_MAPPING) {
                okg_errors_add(c->e, c->file, m, path, "expected a mapping, got %s",
                               okg_node_describe(m, what, sizeof(what)));
                return;
        }
        note(c, okg_node_check_keys(m, c->file, path, keys, c->e));

        /* state may not be null-as-absent: `state: None` is common, `state:` is a mistake. */
        const OkgNode *sv = okg_node_get(m, "state");
        if (!sv)
                missing(c, m, path, "state");
        else {
                _cleanup_(freep) char *sp = path_key(c, path, "state");
                if (sp && note(c, okg_node_get_string(sv, c->file, sp, c->e, &p->state)) >= 0 &&
                    isempty(p->state))
                        okg_errors_add(c->e, c->file, sv, sp, "must not be empty");
        }

        opt_string(c, m, path, "gameServerOpsState", false, &p->ops_state, NULL);
        parse_string_map(c, m, path, "labels", MAP_LABELS, &p->labels, &p->n_labels);
        parse_string_map(c, m, path, "annotations", MAP_ANNOTATIONS, &p->annotations,
                         &p->n_annotations);
}

static void parse_policies(Ctx *c, const OkgNode *seq, const char *path, const char *key,
                           ProbeEndpoint *ep) {
        _cleanup_(freep) char *pp = path_key(c, path, key);
        char what[80];

        if (!pp)
                return;
        if (seq->type != OKG_NODE_SEQUENCE) {
                okg_errors_add(c->e, c->file, seq, pp, "expected a sequence of policies, got %s",
                               okg_node_describe(seq, what, sizeof(what)));
                return;
        }
        if (seq->n == 0)
                return;

        ep->policies = calloc(seq->n, sizeof(MarkerPolicy));
        if (!ep->policies) {
                note(c, -ENOMEM);
                return;
        }
        ep->n_policies = seq->n;

        for (size_t i = 0; i < seq->n; i++) {
                _cleanup_(freep) char *ip = okg_path_index(pp, i);
                if (!ip) {
                        note(c, -ENOMEM);
                        return;
                }
                parse_policy(c, seq->values[i], ip, &ep->policies[i]);

                /* One state, one outcome: a second policy for it could never apply. */
                if (!ep->policies[i].state)
                        continue;
                for (size_t j = 0; j < i; j++)
                        if (streq_ptr(ep->policies[j].state, ep->policies[i].state)) {
                                const OkgNode *sv = okg_node_get(seq->values[i], "state");
                                _cleanup_(freep) char *sp = path_key(c, ip, "state");
                                okg_errors_add(c->e, c->file, sv, sp,
                                               "duplicate state %s (also %s[%zu])",
                                               okg_node_describe(sv, what, sizeof(what)), key,
                                               j);
                                break;
                        }
        }
}

static void parse_storage(Ctx *c, const OkgNode *m, const char *path, ProbeEndpoint *ep) {
        static const char *const keys[] = { "type", "inKube", "httpMetric", NULL };
        static const char *const inkube_keys[] = {
                "annotationKey", "labelKey", "markerPolices", "markerPolicies", NULL,
        };
        static const char *const metric_keys[] = { "metricName", NULL };
        _cleanup_(freep) char *sp = NULL, *ip = NULL, *hp = NULL, *type = NULL;
        const OkgNode *sec = opt_section(c, m, path, "storageConfig", keys, &sp), *v = NULL;
        char what[80];
        bool type_ok = true;

        if (!sec)
                return;

        if (opt_string(c, sec, sp, "type", false, &type, &v) > 0) {
                if (strcasecmp(type, "InKube") == 0)
                        ep->storage_type = PROBE_STORAGE_IN_KUBE;
                else if (strcasecmp(type, "HTTPMetric") == 0)
                        ep->storage_type = PROBE_STORAGE_HTTP_METRIC;
                else {
                        _cleanup_(freep) char *p = path_key(c, sp, "type");
                        okg_errors_add(c->e, c->file, v, p,
                                       "invalid value %s (expected InKube or HTTPMetric)",
                                       okg_node_describe(v, what, sizeof(what)));
                        type_ok = false;
                }
        }

        const OkgNode *ik = opt_section(c, sec, sp, "inKube", inkube_keys, &ip);
        if (ik) {
                if (opt_string(c, ik, ip, "annotationKey", false, &ep->annotation_key, &v) > 0) {
                        const char *why = kube_qualified_name_check(ep->annotation_key);
                        if (why) {
                                _cleanup_(freep) char *p = path_key(c, ip, "annotationKey");
                                okg_errors_add(c->e, c->file, v, p,
                                               "invalid annotation key %s: %s",
                                               okg_node_describe(v, what, sizeof(what)), why);
                        }
                }
                if (opt_string(c, ik, ip, "labelKey", false, &ep->label_key, &v) > 0) {
                        const char *why = kube_qualified_name_check(ep->label_key);
                        if (why) {
                                _cleanup_(freep) char *p = path_key(c, ip, "labelKey");
                                okg_errors_add(c->e, c->file, v, p, "invalid label key %s: %s",
                                               okg_node_describe(v, what, sizeof(what)), why);
                        }
                }

                /* The proposal spells it markerPolices; accept the dictionary spelling too. */
                OkgNode *pv = NULL;
                const char *pk = NULL;
                if (okg_node_get_either(ik, "markerPolices", "markerPolicies", c->file, ip, c->e,
                                        &pv, &pk) > 0 &&
                    !okg_node_is_null(pv))
                        parse_policies(c, pv, ip, pk, ep);
        }

        const OkgNode *hm = opt_section(c, sec, sp, "httpMetric", metric_keys, &hp);
        if (hm) {
                if (opt_string(c, hm, hp, "metricName", false, &ep->metric_name, &v) > 0 &&
                    !prometheus_metric_name_valid(ep->metric_name)) {
                        _cleanup_(freep) char *p = path_key(c, hp, "metricName");
                        okg_errors_add(c->e, c->file, v, p,
                                       "invalid metric name %s (expected "
                                       "[a-zA-Z_:][a-zA-Z0-9_:]*)",
                                       okg_node_describe(v, what, sizeof(what)));
                }
        }

        if (type_ok && ep->storage_type == PROBE_STORAGE_HTTP_METRIC && !ep->metric_name &&
            !(hm && get_opt(hm, "metricName")) && hp) {
                _cleanup_(freep) char *p = path_key(c, hp, "metricName");
                if (p)
                        okg_errors_add(c->e, c->file, hm ?: sec, p, "required key is missing");
        }
}

static bool json_path_valid(const char *s) {
        if (isempty(s))
                return false;
        /* Dotted keys: no empty segment, so no leading, trailing or doubled dot. */
        if (s[0] == '.' || s[strlen(s) - 1] == '.' || strstr(s, ".."))
                return false;
        for (; *s; s++)
                if ((unsigned char) *s < ' ' || *s == 0x7f)
                        return false;
        return true;
}

static void parse_endpoint(Ctx *c, const OkgNode *m, const char *path, ProbeEndpoint *ep) {
        static const char *const keys[] = {
                "url",
                "method",
                "headers",
                "body",
                "timeout",
                "expectedStatusCode",
                "jsonPath",
                "successThreshold",
                "failureThreshold",
                "failureState",
                "storageConfig",
                NULL,
        };
        static const char *const methods[] = {
                "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", NULL,
        };
        const OkgNode *v = NULL;
        char what[80];
        long long x;
        int r;

        if (m->type != OKG_NODE_MAPPING) {
                okg_errors_add(c->e, c->file, m, path, "expected a mapping, got %s",
                               okg_node_describe(m, what, sizeof(what)));
                return;
        }
        note(c, okg_node_check_keys(m, c->file, path, keys, c->e));

        r = opt_string(c, m, path, "url", false, &ep->url, &v);
        if (r == 0 && !okg_node_get(m, "url"))
                missing(c, m, path, "url");
        else if (r == 0) {
                /* `url:` with no value */
                _cleanup_(freep) char *p = path_key(c, path, "url");
                okg_errors_add(c->e, c->file, okg_node_get(m, "url"), p,
                               "expected a URL, got null");
        } else if (r > 0) {
                _cleanup_(freep) char *p = path_key(c, path, "url");
                (void) okg_config_url_check(c->e, c->file, v, p, ep->url);
        }

        _cleanup_(freep) char *method = NULL;
        if (opt_string(c, m, path, "method", false, &method, &v) > 0) {
                bool ok = false;
                for (const char *const *mm = methods; *mm && !ok; mm++)
                        if (strcasecmp(method, *mm) == 0) {
                                ok = true;
                                if (free_and_strdup(&ep->method, *mm) < 0)
                                        note(c, -ENOMEM);
                        }
                if (!ok) {
                        _cleanup_(freep) char *p = path_key(c, path, "method");
                        okg_errors_add(c->e, c->file, v, p,
                                       "invalid method %s (expected GET, HEAD, POST, PUT, "
                                       "PATCH, DELETE or OPTIONS)",
                                       okg_node_describe(v, what, sizeof(what)));
                }
        }

        parse_string_map(c, m, path, "headers", MAP_HEADERS, &ep->headers, &ep->n_headers);
        opt_string(c, m, path, "body", true, &ep->body, NULL);
        opt_uint(c, m, path, "timeout", 1, 3600, &ep->timeout_sec);
        if (opt_int(c, m, path, "expectedStatusCode", 100, 599, &x) > 0) {
                if (x >= 300 && x <= 399) {
                        /* Redirects are followed; one that is not is a failed probe. */
                        _cleanup_(freep) char *p = path_key(c, path, "expectedStatusCode");
                        okg_errors_add(c->e, c->file, okg_node_get(m, "expectedStatusCode"), p,
                                       "must not be a redirect (300-399), got %lld: redirects "
                                       "are followed, and a redirect's page is not a state",
                                       (long long) x);
                } else
                        ep->expected_status = (int) x;
        }

        if (opt_string(c, m, path, "jsonPath", false, &ep->json_path, &v) > 0 &&
            !json_path_valid(ep->json_path)) {
                _cleanup_(freep) char *p = path_key(c, path, "jsonPath");
                okg_errors_add(c->e, c->file, v, p,
                               "invalid JSON path %s (expected dot-separated keys such as "
                               "status.state)",
                               okg_node_describe(v, what, sizeof(what)));
        }

        opt_uint(c, m, path, "successThreshold", 1, 10000, &ep->success_threshold);
        opt_uint(c, m, path, "failureThreshold", 1, 10000, &ep->failure_threshold);
        opt_string(c, m, path, "failureState", false, &ep->failure_state, NULL);

        parse_storage(c, m, path, ep);
}

static void endpoint_done(ProbeEndpoint *ep) {
        free(ep->url);
        free(ep->method);
        key_values_free(ep->headers, ep->n_headers);
        free(ep->body);
        free(ep->json_path);
        free(ep->failure_state);
        free(ep->annotation_key);
        free(ep->label_key);
        for (size_t i = 0; i < ep->n_policies; i++)
                marker_policy_done(&ep->policies[i]);
        free(ep->policies);
        free(ep->metric_name);
}

ProbeConfig *probe_config_free(ProbeConfig *c) {
        if (!c)
                return NULL;
        for (size_t i = 0; i < c->n_endpoints; i++)
                endpoint_done(&c->endpoints[i]);
        free(c->endpoints);
        free(c);
        return NULL;
}

static const char *const section_keys[] = {
        "endpoints", "startDelaySeconds", "probeIntervalSeconds", NULL,
};

int probe_config_parse(const OkgNode *node, const char *file, const char *path,
                       OkgErrors *errors, ProbeConfig **ret) {
        _cleanup_(probe_config_freep) ProbeConfig *cfg = NULL;
        OkgErrors local = {};
        Ctx c = { .file = file, .e = errors ?: &local };
        size_t n_before = c.e->n;
        OkgNode empty = { .type = OKG_NODE_MAPPING };
        char what[80];
        int r;

        cfg = calloc(1, sizeof(ProbeConfig));
        if (!cfg)
                return -ENOMEM;
        cfg->start_delay_sec = 0;
        cfg->interval_sec = 10;

        if (okg_node_is_null(node))
                node = &empty;
        if (node->type != OKG_NODE_MAPPING) {
                okg_errors_add(c.e, file, node, path, "expected a mapping, got %s",
                               okg_node_describe(node, what, sizeof(what)));
                okg_errors_done(&local);
                return -EINVAL;
        }
        note(&c, okg_node_check_keys(node, file, path, section_keys, c.e));

        const OkgNode *eps = get_opt(node, "endpoints");
        _cleanup_(freep) char *ep_path = path_key(&c, path, "endpoints");
        if (!ep_path) {
                okg_errors_done(&local);
                return -ENOMEM;
        }
        if (!eps)
                missing(&c, node, path, "endpoints");
        else if (eps->type != OKG_NODE_SEQUENCE)
                okg_errors_add(c.e, file, eps, ep_path, "expected a sequence of endpoints, got %s",
                               okg_node_describe(eps, what, sizeof(what)));
        else if (eps->n == 0)
                okg_errors_add(c.e, file, eps, ep_path, "must list at least one endpoint");
        else {
                cfg->endpoints = calloc(eps->n, sizeof(ProbeEndpoint));
                if (!cfg->endpoints) {
                        okg_errors_done(&local);
                        return -ENOMEM;
                }
                cfg->n_endpoints = eps->n;
                for (size_t i = 0; i < eps->n && !c.oom; i++) {
                        ProbeEndpoint *ep = &cfg->endpoints[i];
                        _cleanup_(freep) char *ip = okg_path_index(ep_path, i);

                        *ep = (ProbeEndpoint) {
                                .timeout_sec = 1,
                                .success_threshold = 1,
                                .failure_threshold = 3,
                                .storage_type = PROBE_STORAGE_IN_KUBE,
                        };
                        ep->method = strdup("GET");
                        if (!ip || !ep->method) {
                                note(&c, -ENOMEM);
                                break;
                        }
                        parse_endpoint(&c, eps->values[i], ip, ep);
                }
        }

        opt_uint(&c, node, path, "startDelaySeconds", 0, 86400, &cfg->start_delay_sec);
        opt_uint(&c, node, path, "probeIntervalSeconds", 1, 86400, &cfg->interval_sec);

        r = c.oom;
        if (r == 0 && c.e->n > n_before)
                r = -EINVAL;
        okg_errors_sort(c.e, n_before, file);
        okg_errors_done(&local);
        if (r < 0)
                return r;

        if (ret)
                *ret = TAKE_PTR(cfg);
        return 0;
}

int probe_config_validate(const OkgNode *node, const char *file, const char *path,
                          OkgErrors *errors) {
        return probe_config_parse(node, file, path, errors, NULL);
}
