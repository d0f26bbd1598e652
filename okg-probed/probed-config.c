/* The http_probe plugin's `config` section: endpoints, thresholds and the markerPolices that map
 * a probed state to the GameServer's opsState, labels and annotations. No I/O. */
#define _GNU_SOURCE 1

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "okg-config.h"
#include "okg-kube-names.h"
#include "okg-util.h"
#include "probed-config.h"

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
static int read_string_map(OkgConfigCtx *c, const OkgNode *sec, const char *mp, MapKind kind,
                           KeyValue **ret, size_t *ret_n) {
        char what[80];

        if (!okg_config_check_mapping(c, sec, mp, NULL))
                return -EINVAL;
        if (sec->n == 0)
                return 0;

        KeyValue *kv = calloc(sec->n, sizeof(KeyValue));
        if (!kv)
                return -ENOMEM;
        key_values_free(*ret, *ret_n);
        *ret = kv;
        *ret_n = sec->n;

        for (size_t i = 0; i < sec->n; i++) {
                const OkgNode *k = sec->keys[i], *v = sec->values[i];
                _cleanup_(freep) char *vp = okg_config_path(c, mp, k->scalar);
                const char *why = NULL;

                if (!vp)
                        return -ENOMEM;
                kv[i].key = strdup(k->scalar);
                if (!kv[i].key)
                        return -ENOMEM;

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

                if (okg_config_note(c, okg_node_get_string(v, c->file, vp, c->e,
                                                           &kv[i].value)) < 0)
                        continue;

                if (kind == MAP_HEADERS && !okg_http_header_value_valid(kv[i].value))
                        okg_errors_add(c->e, c->file, v, vp,
                                       "a header value must not contain line breaks or other "
                                       "control characters (a tab is allowed)");
                else if (kind == MAP_LABELS && (why = kube_label_value_check(kv[i].value)))
                        okg_errors_add(c->e, c->file, v, vp, "invalid label value %s: %s",
                                       okg_node_describe(v, what, sizeof(what)), why);
        }
        return 0;
}

static int read_headers(OkgConfigCtx *c, const OkgNode *v, const char *key_path,
                        const OkgConfigItem *item, void *base) {
        ProbeEndpoint *ep = base;
        return read_string_map(c, v, key_path, MAP_HEADERS, &ep->headers, &ep->n_headers);
}

static int read_labels(OkgConfigCtx *c, const OkgNode *v, const char *key_path,
                       const OkgConfigItem *item, void *base) {
        MarkerPolicy *p = base;
        return read_string_map(c, v, key_path, MAP_LABELS, &p->labels, &p->n_labels);
}

static int read_annotations(OkgConfigCtx *c, const OkgNode *v, const char *key_path,
                            const OkgConfigItem *item, void *base) {
        MarkerPolicy *p = base;
        return read_string_map(c, v, key_path, MAP_ANNOTATIONS, &p->annotations,
                               &p->n_annotations);
}

static void marker_policy_done(MarkerPolicy *p) {
        free(p->state);
        free(p->ops_state);
        key_values_free(p->labels, p->n_labels);
        key_values_free(p->annotations, p->n_annotations);
}

#define MP(field) offsetof(MarkerPolicy, field)
#define EP(field) offsetof(ProbeEndpoint, field)
#define PC(field) offsetof(ProbeConfig, field)
#define NONEMPTY .flags = OKG_CONFIG_NONEMPTY

/* `state` is read by parse_policy(): null is not absent there. */
static const OkgConfigItem policy_items[] = {
        { "state" },
        { "gameServerOpsState", NULL, okg_config_read_string, MP(ops_state), NONEMPTY },
        { "labels", NULL, read_labels },
        { "annotations", NULL, read_annotations },
        {}
};

static void parse_policy(OkgConfigCtx *c, const OkgNode *m, const char *path, MarkerPolicy *p) {
        if (okg_config_read_items(c, m, path, policy_items, p) < 0)
                return;

        /* state may not be null-as-absent: `state: None` is common, `state:` is a mistake. */
        const OkgNode *sv = okg_node_get(m, "state");
        if (!sv)
                okg_config_missing(c, m, path, "state");
        else {
                _cleanup_(freep) char *sp = okg_config_path(c, path, "state");
                /* "" is kept, so that two empty states are also reported as duplicates. */
                if (sp && okg_config_note(c, okg_node_get_string(sv, c->file, sp, c->e,
                                                                 &p->state)) >= 0 &&
                    isempty(p->state))
                        okg_errors_add(c->e, c->file, sv, sp, "must not be empty");
        }
}

/* markerPolices (or markerPolicies): the messages name the spelling used, the last part of
 * key_path. */
static int read_policies(OkgConfigCtx *c, const OkgNode *seq, const char *key_path,
                         const OkgConfigItem *item, void *base) {
        ProbeEndpoint *ep = base;
        const char *key = strrchr(key_path, '.');
        char what[80];

        key = key ? key + 1 : key_path;
        if (seq->type != OKG_NODE_SEQUENCE) {
                okg_errors_add(c->e, c->file, seq, key_path,
                               "expected a sequence of policies, got %s",
                               okg_node_describe(seq, what, sizeof(what)));
                return -EINVAL;
        }
        if (seq->n == 0)
                return 0;

        ep->policies = calloc(seq->n, sizeof(MarkerPolicy));
        if (!ep->policies)
                return -ENOMEM;
        ep->n_policies = seq->n;

        for (size_t i = 0; i < seq->n; i++) {
                _cleanup_(freep) char *ip = okg_path_index(key_path, i);
                if (!ip)
                        return -ENOMEM;
                parse_policy(c, seq->values[i], ip, &ep->policies[i]);

                /* One state, one outcome: a second policy for it could never apply. */
                if (!ep->policies[i].state)
                        continue;
                for (size_t j = 0; j < i; j++)
                        if (streq_ptr(ep->policies[j].state, ep->policies[i].state)) {
                                const OkgNode *sv = okg_node_get(seq->values[i], "state");
                                _cleanup_(freep) char *sp = okg_config_path(c, ip, "state");
                                okg_errors_add(c->e, c->file, sv, sp,
                                               "duplicate state %s (also %s[%zu])",
                                               okg_node_describe(sv, what, sizeof(what)), key,
                                               j);
                                break;
                        }
        }
        return 0;
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

static const OkgConfigCheck json_path_check = {
        .noun = "JSON path",
        .expected = "dot-separated keys such as status.state",
        .valid = json_path_valid,
};
static const OkgConfigCheck metric_name_check = {
        .noun = "metric name",
        .expected = "[a-zA-Z_:][a-zA-Z0-9_:]*",
        .valid = prometheus_metric_name_valid,
};

static int read_expected_status(OkgConfigCtx *c, const OkgNode *v, const char *key_path,
                                const OkgConfigItem *item, void *base) {
        long long x;
        int r;

        r = okg_node_get_int(v, c->file, key_path, item->min, item->max, c->e, &x);
        if (r < 0)
                return r;
        if (x >= 300 && x <= 399) {
                /* Redirects are followed; one that is not is a failed probe. */
                okg_errors_add(c->e, c->file, v, key_path,
                               "must not be a redirect (300-399), got %lld: redirects are "
                               "followed, and a redirect's page is not a state",
                               x);
                return -EINVAL;
        }
        ((ProbeEndpoint *) base)->expected_status = (int) x;
        return 0;
}

static const OkgConfigChoice storage_type_choice = {
        .names = (const char *const[]) { "InKube", "HTTPMetric", NULL },
};
static const OkgConfigChoice method_choice = {
        .noun = "method",
        .names = (const char *const[]) { "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE",
                                         "OPTIONS", NULL },
};

static const OkgConfigItem in_kube_items[] = {
        { "annotationKey", NULL, okg_config_read_checked, EP(annotation_key), NONEMPTY,
          .data = &okg_config_annotation_key_check },
        { "labelKey", NULL, okg_config_read_checked, EP(label_key), NONEMPTY,
          .data = &okg_config_label_key_check },
        /* The proposal spells it markerPolices; accept the dictionary spelling too. */
        { "markerPolices", "markerPolicies", read_policies },
        {}
};

static const OkgConfigItem http_metric_items[] = {
        { "metricName", NULL, okg_config_read_checked, EP(metric_name), NONEMPTY,
          .data = &metric_name_check },
        {}
};

static const OkgConfigItem storage_items[] = {
        { "type", NULL, okg_config_read_choice, EP(storage_type), NONEMPTY,
          .data = &storage_type_choice },
        { "inKube", NULL, okg_config_read_section, .data = in_kube_items },
        { "httpMetric", NULL, okg_config_read_section, .data = http_metric_items },
        {}
};

/* url is checked for presence by parse_endpoint(). */
static const OkgConfigItem endpoint_items[] = {
        { "url", NULL, okg_config_read_url, EP(url), NONEMPTY },
        { "method", NULL, okg_config_read_choice_name, EP(method), NONEMPTY,
          .data = &method_choice },
        { "headers", NULL, read_headers },
        { "body", NULL, okg_config_read_string, EP(body) },
        { "timeout", NULL, okg_config_read_uint, EP(timeout_sec), 1, 3600 },
        { "expectedStatusCode", NULL, read_expected_status, 0, 100, 599 },
        { "jsonPath", NULL, okg_config_read_checked, EP(json_path), NONEMPTY,
          .data = &json_path_check },
        { "successThreshold", NULL, okg_config_read_uint, EP(success_threshold), 1, 10000 },
        { "failureThreshold", NULL, okg_config_read_uint, EP(failure_threshold), 1, 10000 },
        { "failureState", NULL, okg_config_read_string, EP(failure_state), NONEMPTY },
        { "storageConfig", NULL, okg_config_read_section, .data = storage_items },
        {}
};

static void parse_endpoint(OkgConfigCtx *c, const OkgNode *m, const char *path,
                           ProbeEndpoint *ep) {
        if (okg_config_read_items(c, m, path, endpoint_items, ep) < 0)
                return;

        const OkgNode *u = okg_node_get(m, "url");
        if (!u)
                okg_config_missing(c, m, path, "url");
        else if (okg_node_is_null(u)) {
                /* `url:` with no value */
                _cleanup_(freep) char *p = okg_config_path(c, path, "url");
                okg_errors_add(c->e, c->file, u, p, "expected a URL, got null");
        }

        /* HTTPMetric needs a metric name, in httpMetric. */
        const OkgNode *sec = okg_config_get_opt(m, "storageConfig");
        if (!sec || sec->type != OKG_NODE_MAPPING ||
            ep->storage_type != PROBE_STORAGE_HTTP_METRIC || ep->metric_name)
                return;
        const OkgNode *hm = okg_config_get_opt(sec, "httpMetric");
        if (hm && hm->type != OKG_NODE_MAPPING)
                hm = NULL;
        if (hm && okg_config_get_opt(hm, "metricName"))
                return;
        _cleanup_(freep) char *sp = okg_config_path(c, path, "storageConfig");
        _cleanup_(freep) char *hp = sp ? okg_config_path(c, sp, "httpMetric") : NULL;
        if (hp)
                okg_config_missing(c, hm ?: sec, hp, "metricName");
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

static int read_endpoints(OkgConfigCtx *c, const OkgNode *eps, const char *key_path,
                          const OkgConfigItem *item, void *base) {
        ProbeConfig *cfg = base;
        char what[80];

        if (eps->type != OKG_NODE_SEQUENCE) {
                okg_errors_add(c->e, c->file, eps, key_path,
                               "expected a sequence of endpoints, got %s",
                               okg_node_describe(eps, what, sizeof(what)));
                return -EINVAL;
        }
        if (eps->n == 0) {
                okg_errors_add(c->e, c->file, eps, key_path, "must list at least one endpoint");
                return -EINVAL;
        }
        cfg->endpoints = calloc(eps->n, sizeof(ProbeEndpoint));
        if (!cfg->endpoints)
                return -ENOMEM;
        cfg->n_endpoints = eps->n;
        for (size_t i = 0; i < eps->n && !c->oom; i++) {
                ProbeEndpoint *ep = &cfg->endpoints[i];
                _cleanup_(freep) char *ip = okg_path_index(key_path, i);

                *ep = (ProbeEndpoint) {
                        .timeout_sec = 1,
                        .success_threshold = 1,
                        .failure_threshold = 3,
                        .storage_type = PROBE_STORAGE_IN_KUBE,
                };
                ep->method = strdup("GET");
                if (!ip || !ep->method)
                        return -ENOMEM;
                parse_endpoint(c, eps->values[i], ip, ep);
        }
        return 0;
}

static const OkgConfigItem section_items[] = {
        { "endpoints", NULL, read_endpoints },
        { "startDelaySeconds", NULL, okg_config_read_uint, PC(start_delay_sec), 0, 86400 },
        { "probeIntervalSeconds", NULL, okg_config_read_uint, PC(interval_sec), 1, 86400 },
        {}
};

int probe_config_parse(const OkgNode *node, const char *file, const char *path,
                       OkgErrors *errors, ProbeConfig **ret) {
        _cleanup_(probe_config_freep) ProbeConfig *cfg = NULL;
        _cleanup_(okg_config_ctx_done) OkgConfigCtx c = {};
        OkgNode empty = { .type = OKG_NODE_MAPPING };
        int r;

        okg_config_ctx_init(&c, file, errors);
        cfg = calloc(1, sizeof(ProbeConfig));
        if (!cfg)
                return -ENOMEM;
        *cfg = (ProbeConfig) {
                .start_delay_sec = 0,
                .interval_sec = 10,
        };

        if (okg_node_is_null(node))
                node = &empty;
        if (okg_config_read_items(&c, node, path, section_items, cfg) >= 0 &&
            !okg_config_get_opt(node, "endpoints"))
                okg_config_missing(&c, node, path, "endpoints");

        r = okg_config_ctx_finish(&c);
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
