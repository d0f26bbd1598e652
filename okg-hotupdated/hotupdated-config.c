/* The hot_update plugin's `config` section: keys, defaults and checks. No I/O: paths and URLs
 * are checked for form only; whether they exist is the daemon's business at run time. */
#define _GNU_SOURCE 1

#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hotupdated-config.h"
#include "macro.h"
#include "okg-config.h"
#include "okg-kube-names.h"
#include "okg-signal.h"

#define DEFAULT_ANNOTATION_KEY "sidecar.vke.volcengine.com/hot-update-result"

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

/* Null values count as absent, so `caFile:` with nothing after it keeps the default. */
static OkgNode *get_opt(const OkgNode *m, const char *key) {
        OkgNode *v = okg_node_get(m, key);
        return okg_node_is_null(v) ? NULL : v;
}

/* Reads an optional string into *field (replacing the default). 1 when set, 0 when absent. */
static int opt_string(Ctx *c, const OkgNode *m, const char *path, const char *key,
                      bool allow_empty, char **field, const OkgNode **ret_node) {
        OkgNode *v = get_opt(m, key);
        _cleanup_(freep) char *p = NULL, *s = NULL;
        int r;

        if (!v)
                return 0;
        p = okg_path_key(path, key);
        if (!p)
                return note(c, -ENOMEM);
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

static int opt_uint(Ctx *c, const OkgNode *m, const char *path, const char *key, long long min,
                    long long max, unsigned *field) {
        OkgNode *v = get_opt(m, key);
        _cleanup_(freep) char *p = NULL;
        long long x;
        int r;

        if (!v)
                return 0;
        p = okg_path_key(path, key);
        if (!p)
                return note(c, -ENOMEM);
        r = okg_node_get_int(v, c->file, p, min, max, c->e, &x);
        if (r < 0)
                return note(c, r);
        *field = (unsigned) x;
        return 1;
}

/* A sub-section that must be a mapping with only the given keys. NULL when absent or wrong. */
static const OkgNode *opt_section(Ctx *c, const OkgNode *m, const char *path, const char *key,
                                  const char *const *keys, char **ret_path) {
        OkgNode *v = get_opt(m, key);
        char what[80];

        *ret_path = okg_path_key(path, key);
        if (!*ret_path) {
                note(c, -ENOMEM);
                return NULL;
        }
        if (!v)
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
        _cleanup_(freep) char *p = okg_path_key(path, key);
        if (!p) {
                note(c, -ENOMEM);
                return;
        }
        okg_errors_add(c->e, c->file, at, p, "required key is missing");
}

static bool is_ip_address(const char *s) {
        unsigned char buf[sizeof(struct in6_addr)];
        return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

static void check_ip(Ctx *c, const OkgNode *at, const char *path, const char *key,
                     const char *s) {
        if (is_ip_address(s))
                return;
        _cleanup_(freep) char *p = okg_path_key(path, key);
        char what[80];
        okg_errors_add(c->e, c->file, at, p,
                       "invalid address %s (expected a numeric IPv4 or IPv6 address)",
                       okg_node_describe(at, what, sizeof(what)));
}

static void check_absolute(Ctx *c, const OkgNode *at, const char *path, const char *key,
                           const char *s) {
        if (s[0] == '/')
                return;
        _cleanup_(freep) char *p = okg_path_key(path, key);
        char what[80];
        okg_errors_add(c->e, c->file, at, p, "must be an absolute path, got %s",
                       okg_node_describe(at, what, sizeof(what)));
}

static void parse_signal(Ctx *c, const OkgNode *m, const char *path, HotUpdateConfig *cfg) {
        static const char *const keys[] = { "processName", "signalName", "settleMilliseconds",
                                            NULL };
        _cleanup_(freep) char *sp = NULL;
        const OkgNode *sec = opt_section(c, m, path, "signal", keys, &sp), *v = NULL;
        char what[80];

        if (!sec) {
                if (!get_opt(m, "signal") && cfg->load_patch_type == LOAD_PATCH_SIGNAL && sp) {
                        _cleanup_(freep) char *p = okg_path_key(sp, "processName");
                        if (p)
                                okg_errors_add(c->e, c->file, m, p, "required key is missing");
                }
                return;
        }

        if (opt_string(c, sec, sp, "processName", false, &cfg->process_name, NULL) == 0 &&
            cfg->load_patch_type == LOAD_PATCH_SIGNAL)
                missing(c, sec, sp, "processName");
        opt_uint(c, sec, sp, "settleMilliseconds", 0, 60000, &cfg->settle_msec);

        _cleanup_(freep) char *name = NULL;
        if (opt_string(c, sec, sp, "signalName", false, &name, &v) > 0) {
                int sig = okg_signal_from_string(name);
                char buf[32];

                if (sig < 0 || !okg_signal_format(sig, buf, sizeof(buf))) {
                        _cleanup_(freep) char *p = okg_path_key(sp, "signalName");
                        okg_errors_add(c->e, c->file, v, p,
                                       "unknown signal %s (expected a name such as SIGHUP, "
                                       "SIGUSR1 or SIGUSR2)",
                                       okg_node_describe(v, what, sizeof(what)));
                        return;
                }
                if (free_and_strdup(&cfg->signal_name, buf) < 0) {
                        note(c, -ENOMEM);
                        return;
                }
                cfg->signal_number = sig;
        }
}

static bool path_valid(const char *s) {
        if (s[0] != '/')
                return false;
        for (; *s; s++)
                if ((unsigned char) *s <= ' ' || *s == 0x7f || *s == '#')
                        return false;
        return true;
}

/* A host name as RFC 1123 has it, or a numeric address. */
static bool host_valid(const char *s) {
        if (is_ip_address(s))
                return true;
        size_t len = strlen(s);
        if (len == 0 || len > 253)
                return false;
        for (size_t i = 0, start = 0; i <= len; i++) {
                if (i < len && s[i] != '.') {
                        char ch = s[i];
                        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                              (ch >= '0' && ch <= '9') || ch == '-'))
                                return false;
                        continue;
                }
                if (i == start || i - start > 63 || s[start] == '-' || s[i - 1] == '-')
                        return false;
                start = i + 1;
        }
        return true;
}

static void parse_request(Ctx *c, const OkgNode *m, const char *path, HotUpdateConfig *cfg) {
        static const char *const keys[] = { "address", "port", "path", "method", "timeoutSeconds",
                                            NULL };
        static const char *const methods[] = { "GET", "POST", "PUT", "PATCH", "DELETE", NULL };
        _cleanup_(freep) char *rp = NULL;
        const OkgNode *sec = opt_section(c, m, path, "request", keys, &rp), *v = NULL;
        char what[80];

        if (!sec) {
                if (!get_opt(m, "request") && cfg->load_patch_type == LOAD_PATCH_REQUEST && rp) {
                        _cleanup_(freep) char *p = okg_path_key(rp, "port");
                        if (p)
                                okg_errors_add(c->e, c->file, m, p, "required key is missing");
                }
                return;
        }

        if (opt_string(c, sec, rp, "address", false, &cfg->request_address, &v) > 0 &&
            strchr(cfg->request_address, '@')) {
                /* Refused like credentials in every URL of the config, and not echoed. */
                _cleanup_(freep) char *p = okg_path_key(rp, "address");
                okg_errors_add(c->e, c->file, v, p, "invalid address: must not contain "
                               "credentials (user:password@)");
        } else if (cfg->request_address && !host_valid(cfg->request_address)) {
                _cleanup_(freep) char *p = okg_path_key(rp, "address");
                okg_errors_add(c->e, c->file, v, p,
                               "invalid address %s (expected a host name or numeric address)",
                               okg_node_describe(v, what, sizeof(what)));
        }

        unsigned port;
        int r = opt_uint(c, sec, rp, "port", 1, 65535, &port);
        if (r > 0)
                cfg->request_port = (uint16_t) port;
        else if (r == 0 && cfg->load_patch_type == LOAD_PATCH_REQUEST)
                missing(c, sec, rp, "port");

        if (opt_string(c, sec, rp, "path", false, &cfg->request_path, &v) > 0 &&
            !path_valid(cfg->request_path)) {
                _cleanup_(freep) char *p = okg_path_key(rp, "path");
                okg_errors_add(c->e, c->file, v, p,
                               "invalid path %s (expected an absolute URL path such as /reload)",
                               okg_node_describe(v, what, sizeof(what)));
        }

        _cleanup_(freep) char *method = NULL;
        if (opt_string(c, sec, rp, "method", false, &method, &v) > 0) {
                bool ok = false;
                for (const char *const *mm = methods; *mm && !ok; mm++)
                        if (strcasecmp(method, *mm) == 0) {
                                ok = true;
                                if (free_and_strdup(&cfg->request_method, *mm) < 0)
                                        note(c, -ENOMEM);
                        }
                if (!ok) {
                        _cleanup_(freep) char *p = okg_path_key(rp, "method");
                        okg_errors_add(c->e, c->file, v, p,
                                       "invalid method %s (expected GET, POST, PUT, PATCH or "
                                       "DELETE)",
                                       okg_node_describe(v, what, sizeof(what)));
                }
        }

        opt_uint(c, sec, rp, "timeoutSeconds", 1, 3600, &cfg->request_timeout_sec);
}

static void parse_storage(Ctx *c, const OkgNode *m, const char *path, HotUpdateConfig *cfg) {
        static const char *const keys[] = { "type", "inKube", NULL };
        static const char *const inkube_keys[] = { "annotationKey", NULL };
        _cleanup_(freep) char *sp = NULL, *ip = NULL, *type = NULL;
        const OkgNode *sec = opt_section(c, m, path, "storageConfig", keys, &sp), *v = NULL;
        char what[80];

        if (!sec)
                return;

        if (opt_string(c, sec, sp, "type", false, &type, &v) > 0 &&
            strcasecmp(type, "InKube") != 0) {
                _cleanup_(freep) char *p = okg_path_key(sp, "type");
                okg_errors_add(c->e, c->file, v, p, "invalid value %s (expected InKube)",
                               okg_node_describe(v, what, sizeof(what)));
        }

        const OkgNode *ik = opt_section(c, sec, sp, "inKube", inkube_keys, &ip);
        if (!ik)
                return;
        if (opt_string(c, ik, ip, "annotationKey", false, &cfg->annotation_key, &v) > 0) {
                const char *why = kube_qualified_name_check(cfg->annotation_key);
                if (why) {
                        _cleanup_(freep) char *p = okg_path_key(ip, "annotationKey");
                        okg_errors_add(c->e, c->file, v, p, "invalid annotation key %s: %s",
                                       okg_node_describe(v, what, sizeof(what)), why);
                }
        }
}

static void parse_check(Ctx *c, const OkgNode *m, const char *path, HotUpdateConfig *cfg) {
        static const char *const keys[] = { "url", "timeoutSeconds", "initialDelayMilliseconds",
                                            NULL };
        _cleanup_(freep) char *cp = NULL;
        const OkgNode *sec = opt_section(c, m, path, "postReloadCheck", keys, &cp), *v = NULL;

        if (!sec)
                return;

        int r = opt_string(c, sec, cp, "url", false, &cfg->check_url, &v);
        if (r > 0) {
                _cleanup_(freep) char *p = okg_path_key(cp, "url");
                (void) okg_config_url_check(c->e, c->file, v, p, cfg->check_url);
        } else if (r == 0)
                missing(c, sec, cp, "url");

        opt_uint(c, sec, cp, "timeoutSeconds", 1, 3600, &cfg->check_timeout_sec);
        opt_uint(c, sec, cp, "initialDelayMilliseconds", 0, 600000, &cfg->check_delay_msec);
}

HotUpdateConfig *hotupdate_config_free(HotUpdateConfig *c) {
        if (!c)
                return NULL;
        free(c->process_name);
        free(c->signal_name);
        free(c->request_address);
        free(c->request_path);
        free(c->request_method);
        free(c->annotation_key);
        free(c->bind_address);
        free(c->download_dir);
        free(c->ca_file);
        free(c->auth_token_file);
        free(c->check_url);
        hotupdate_policy_done(&c->policy);
        free(c);
        return NULL;
}

static const char *const section_keys[] = {
        "loadPatchType",
        "signal",
        "request",
        "storageConfig",
        "bindAddress",
        "port",
        "downloadDir",
        "maxFileSizeBytes",
        "connectTimeoutSeconds",
        "downloadTimeoutSeconds",
        "caFile",
        "allowInsecureRedirects",
        "authTokenFile",
        "allowedDestinations",
        "deniedDestinations",
        "allowedSources",
        "allowedFileNames",
        "postReloadCheck",
        "recoveryWaitSeconds",
        "clientTimeoutSeconds",
        NULL,
};

int hotupdate_config_parse(const OkgNode *node, const char *file, const char *path,
                           OkgErrors *errors, HotUpdateConfig **ret) {
        _cleanup_(hotupdate_config_freep) HotUpdateConfig *cfg = NULL;
        OkgErrors local = {};
        Ctx c = { .file = file, .e = errors ?: &local };
        size_t n_before = c.e->n;
        const OkgNode *v = NULL;
        OkgNode empty = { .type = OKG_NODE_MAPPING };
        char what[80];
        int r;

        cfg = calloc(1, sizeof(HotUpdateConfig));
        if (!cfg)
                return -ENOMEM;
        *cfg = (HotUpdateConfig) {
                .load_patch_type = LOAD_PATCH_SIGNAL,
                .signal_number = SIGHUP,
                .settle_msec = 2000,
                .port = 5000,
                .max_file_size = UINT64_C(64) * 1024 * 1024,
                .connect_timeout_sec = 10,
                .download_timeout_sec = 300,
                .check_timeout_sec = 10,
                .check_delay_msec = 500,
                .request_timeout_sec = 10,
                .client_timeout_sec = 10,
                .game_wait_sec = 60,
        };
        if (free_and_strdup(&cfg->signal_name, "SIGHUP") < 0 ||
            free_and_strdup(&cfg->request_address, "127.0.0.1") < 0 ||
            free_and_strdup(&cfg->request_path, "/reload") < 0 ||
            free_and_strdup(&cfg->request_method, "POST") < 0 ||
            free_and_strdup(&cfg->annotation_key, DEFAULT_ANNOTATION_KEY) < 0 ||
            free_and_strdup(&cfg->bind_address, "0.0.0.0") < 0 ||
            free_and_strdup(&cfg->download_dir, "/app/downloads") < 0)
                return -ENOMEM;

        if (okg_node_is_null(node))
                node = &empty;
        if (node->type != OKG_NODE_MAPPING) {
                okg_errors_add(c.e, file, node, path, "expected a mapping, got %s",
                               okg_node_describe(node, what, sizeof(what)));
                okg_errors_done(&local);
                return -EINVAL;
        }
        note(&c, okg_node_check_keys(node, file, path, section_keys, c.e));

        /* loadPatchType decides which of signal/request is required: read it first. */
        _cleanup_(freep) char *lpt = NULL;
        if (opt_string(&c, node, path, "loadPatchType", false, &lpt, &v) > 0) {
                if (strcasecmp(lpt, "signal") == 0)
                        cfg->load_patch_type = LOAD_PATCH_SIGNAL;
                else if (strcasecmp(lpt, "request") == 0)
                        cfg->load_patch_type = LOAD_PATCH_REQUEST;
                else {
                        _cleanup_(freep) char *p = okg_path_key(path, "loadPatchType");
                        okg_errors_add(c.e, file, v, p,
                                       "invalid value %s (expected signal or request)",
                                       okg_node_describe(v, what, sizeof(what)));
                        /* Unknown mode: do not also complain about what it would require. */
                        cfg->load_patch_type = (LoadPatchType) -1;
                }
        }

        parse_signal(&c, node, path, cfg);
        parse_request(&c, node, path, cfg);
        parse_storage(&c, node, path, cfg);

        if (opt_string(&c, node, path, "bindAddress", false, &cfg->bind_address, &v) > 0)
                check_ip(&c, v, path, "bindAddress", cfg->bind_address);

        unsigned port;
        if (opt_uint(&c, node, path, "port", 1, 65535, &port) > 0)
                cfg->port = (uint16_t) port;

        if (opt_string(&c, node, path, "downloadDir", false, &cfg->download_dir, &v) > 0) {
                cfg->download_dir_set = true;
                check_absolute(&c, v, path, "downloadDir", cfg->download_dir);
        }

        const OkgNode *mfs = get_opt(node, "maxFileSizeBytes");
        if (mfs) {
                _cleanup_(freep) char *p = okg_path_key(path, "maxFileSizeBytes");
                long long x;
                if (!p)
                        note(&c, -ENOMEM);
                else if (note(&c, okg_node_get_int(mfs, file, p, 1, 1LL << 40, c.e, &x)) >= 0)
                        cfg->max_file_size = (uint64_t) x;
        }

        opt_uint(&c, node, path, "connectTimeoutSeconds", 1, 3600, &cfg->connect_timeout_sec);
        opt_uint(&c, node, path, "downloadTimeoutSeconds", 1, 86400, &cfg->download_timeout_sec);

        if (opt_string(&c, node, path, "caFile", false, &cfg->ca_file, &v) > 0)
                check_absolute(&c, v, path, "caFile", cfg->ca_file);
        const OkgNode *air = get_opt(node, "allowInsecureRedirects");
        if (air) {
                _cleanup_(freep) char *p = okg_path_key(path, "allowInsecureRedirects");
                if (!p)
                        note(&c, -ENOMEM);
                else
                        note(&c, okg_node_get_bool(air, file, p, c.e,
                                                   &cfg->allow_insecure_redirects));
        }
        if (opt_string(&c, node, path, "authTokenFile", false, &cfg->auth_token_file, &v) > 0)
                check_absolute(&c, v, path, "authTokenFile", cfg->auth_token_file);

        note(&c, hotupdate_policy_parse(node, file, path, c.e, &cfg->policy));
        hotupdate_policy_add_own_port(&cfg->policy, cfg->port);
        parse_check(&c, node, path, cfg);

        opt_uint(&c, node, path, "recoveryWaitSeconds", 0, 86400, &cfg->game_wait_sec);
        opt_uint(&c, node, path, "clientTimeoutSeconds", 1, 3600, &cfg->client_timeout_sec);

        r = c.oom;
        if (r == 0 && c.e->n > n_before)
                r = -EINVAL;
        okg_errors_done(&local);
        if (r < 0)
                return r;

        if (ret)
                *ret = TAKE_PTR(cfg);
        return 0;
}

int hotupdate_config_validate(const OkgNode *node, const char *file, const char *path,
                              OkgErrors *errors) {
        return hotupdate_config_parse(node, file, path, errors, NULL);
}
