/* The hot_update plugin's `config` section: keys, defaults and checks. No I/O: paths and URLs
 * are checked for form only; whether they exist is the daemon's business at run time. */
#define _GNU_SOURCE 1

#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hotupdated-config.h"
#include "macro.h"
#include "okg-config.h"
#include "okg-kube-names.h"
#include "okg-signal.h"

#define DEFAULT_ANNOTATION_KEY "sidecar.vke.volcengine.com/hot-update-result"

#define HU(field) offsetof(HotUpdateConfig, field)

static int read_load_patch_type(OkgConfigCtx *c, const OkgNode *v, const char *key_path,
                                const OkgConfigItem *item, void *base) {
        int r = okg_config_read_choice(c, v, key_path, item, base);
        /* Unknown mode: do not also complain about what it would require. */
        if (r == -EINVAL && v->type == OKG_NODE_SCALAR && !isempty(v->scalar))
                ((HotUpdateConfig *) base)->load_patch_type = (LoadPatchType) -1;
        return r;
}

static int read_signal_name(OkgConfigCtx *c, const OkgNode *v, const char *key_path,
                            const OkgConfigItem *item, void *base) {
        HotUpdateConfig *cfg = base;
        _cleanup_(freep) char *name = NULL;
        char buf[32], what[80];
        int sig, r;

        r = okg_config_get_string(c, v, key_path, false, &name);
        if (r < 0)
                return r;
        sig = okg_signal_from_string(name);
        if (sig < 0 || !okg_signal_format(sig, buf, sizeof(buf))) {
                okg_errors_add(c->e, c->file, v, key_path,
                               "unknown signal %s (expected a name such as SIGHUP, SIGUSR1 or "
                               "SIGUSR2)",
                               okg_node_describe(v, what, sizeof(what)));
                return -EINVAL;
        }
        cfg->signal_number = sig;
        return free_and_strdup(&cfg->signal_name, buf);
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
        if (okg_config_is_ip_address(s))
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

static int read_request_address(OkgConfigCtx *c, const OkgNode *v, const char *key_path,
                                const OkgConfigItem *item, void *base) {
        const char *s;
        char what[80];
        int r;

        r = okg_config_read_string(c, v, key_path, item, base);
        if (r < 0)
                return r;
        s = ((HotUpdateConfig *) base)->request_address;
        if (strchr(s, '@')) {
                /* Refused like credentials in every URL of the config, and not echoed. */
                okg_errors_add(c->e, c->file, v, key_path, "invalid address: must not contain "
                               "credentials (user:password@)");
                return -EINVAL;
        }
        if (!host_valid(s)) {
                okg_errors_add(c->e, c->file, v, key_path,
                               "invalid address %s (expected a host name or numeric address)",
                               okg_node_describe(v, what, sizeof(what)));
                return -EINVAL;
        }
        return 0;
}

/* storageConfig.type: InKube is the only kind, so nothing to store. */
static int read_storage_type(OkgConfigCtx *c, const OkgNode *v, const char *key_path,
                             const OkgConfigItem *item, void *base) {
        int r = okg_config_choice_index(c, v, key_path, item);
        return r < 0 ? r : 0;
}

static int read_download_dir(OkgConfigCtx *c, const OkgNode *v, const char *key_path,
                             const OkgConfigItem *item, void *base) {
        int r = okg_config_read_absolute_path(c, v, key_path, item, base);
        if (r >= 0)
                ((HotUpdateConfig *) base)->download_dir_set = true;
        return r;
}

static const OkgConfigCheck bind_address_check = {
        .noun = "address",
        .expected = "a numeric IPv4 or IPv6 address",
        .valid = okg_config_is_ip_address,
};
static const OkgConfigCheck request_path_check = {
        .noun = "path",
        .expected = "an absolute URL path such as /reload",
        .valid = path_valid,
};

static const OkgConfigChoice load_patch_choice = {
        .names = (const char *const[]) { "signal", "request", NULL },
};
static const OkgConfigChoice request_method_choice = {
        .noun = "method",
        .names = (const char *const[]) { "GET", "POST", "PUT", "PATCH", "DELETE", NULL },
};
static const OkgConfigChoice storage_type_choice = {
        .names = (const char *const[]) { "InKube", NULL },
};

#define NONEMPTY .flags = OKG_CONFIG_NONEMPTY

static const OkgConfigItem signal_items[] = {
        { "processName", NULL, okg_config_read_string, HU(process_name), NONEMPTY },
        { "signalName", NULL, read_signal_name, 0, NONEMPTY },
        { "settleMilliseconds", NULL, okg_config_read_uint, HU(settle_msec), 0, 60000 },
        {}
};

static const OkgConfigItem request_items[] = {
        { "address", NULL, read_request_address, HU(request_address), NONEMPTY },
        { "port", NULL, okg_config_read_uint16, HU(request_port), 1, 65535 },
        { "path", NULL, okg_config_read_checked, HU(request_path), NONEMPTY,
          .data = &request_path_check },
        { "method", NULL, okg_config_read_choice_name, HU(request_method), NONEMPTY,
          .data = &request_method_choice },
        { "timeoutSeconds", NULL, okg_config_read_uint, HU(request_timeout_sec), 1, 3600 },
        {}
};

static const OkgConfigItem in_kube_items[] = {
        { "annotationKey", NULL, okg_config_read_checked, HU(annotation_key), NONEMPTY,
          .data = &okg_config_annotation_key_check },
        {}
};

static const OkgConfigItem storage_items[] = {
        { "type", NULL, read_storage_type, 0, NONEMPTY, .data = &storage_type_choice },
        { "inKube", NULL, okg_config_read_section, .data = in_kube_items },
        {}
};

static const OkgConfigItem check_items[] = {
        { "url", NULL, okg_config_read_url, HU(check_url), NONEMPTY },
        { "timeoutSeconds", NULL, okg_config_read_uint, HU(check_timeout_sec), 1, 3600 },
        { "initialDelayMilliseconds", NULL, okg_config_read_uint, HU(check_delay_msec), 0,
          600000 },
        {}
};

/* loadPatchType first: it decides which of signal/request is required. The destination and
 * source lists are read by hotupdate_policy_parse(). */
static const OkgConfigItem section_items[] = {
        { "loadPatchType", NULL, read_load_patch_type, HU(load_patch_type), NONEMPTY,
          .data = &load_patch_choice },
        { "signal", NULL, okg_config_read_section, .data = signal_items },
        { "request", NULL, okg_config_read_section, .data = request_items },
        { "storageConfig", NULL, okg_config_read_section, .data = storage_items },
        { "bindAddress", NULL, okg_config_read_checked, HU(bind_address), NONEMPTY,
          .data = &bind_address_check },
        { "port", NULL, okg_config_read_uint16, HU(port), 1, 65535 },
        { "downloadDir", NULL, read_download_dir, HU(download_dir), NONEMPTY },
        { "maxFileSizeBytes", NULL, okg_config_read_uint64, HU(max_file_size), 1, 1LL << 40 },
        { "connectTimeoutSeconds", NULL, okg_config_read_uint, HU(connect_timeout_sec), 1, 3600 },
        { "downloadTimeoutSeconds", NULL, okg_config_read_uint, HU(download_timeout_sec), 1,
          86400 },
        { "caFile", NULL, okg_config_read_absolute_path, HU(ca_file), NONEMPTY },
        { "allowInsecureRedirects", NULL, okg_config_read_bool, HU(allow_insecure_redirects) },
        { "authTokenFile", NULL, okg_config_read_absolute_path, HU(auth_token_file), NONEMPTY },
        { "allowedDestinations" },
        { "deniedDestinations" },
        { "allowedSources" },
        { "allowedFileNames" },
        { "postReloadCheck", NULL, okg_config_read_section, .data = check_items },
        { "recoveryWaitSeconds", NULL, okg_config_read_uint, HU(game_wait_sec), 0, 86400 },
        { "clientTimeoutSeconds", NULL, okg_config_read_uint, HU(client_timeout_sec), 1, 3600 },
        {}
};

/* A key the mode requires in sub-section `section` of m: missing when the section is absent
 * (placed at m) or is a mapping without it (placed at the section). */
static void require(OkgConfigCtx *c, const OkgNode *m, const char *path, const char *section,
                    const char *key) {
        const OkgNode *sec = okg_config_get_opt(m, section);
        _cleanup_(freep) char *sp = NULL;

        if (sec && (sec->type != OKG_NODE_MAPPING || okg_config_get_opt(sec, key)))
                return;
        sp = okg_config_path(c, path, section);
        if (sp)
                okg_config_missing(c, sec ?: m, sp, key);
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

int hotupdate_config_parse(const OkgNode *node, const char *file, const char *path,
                           OkgErrors *errors, HotUpdateConfig **ret) {
        _cleanup_(hotupdate_config_freep) HotUpdateConfig *cfg = NULL;
        _cleanup_(okg_config_ctx_done) OkgConfigCtx c = {};
        OkgNode empty = { .type = OKG_NODE_MAPPING };
        const OkgNode *check;
        int r;

        okg_config_ctx_init(&c, file, errors);
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
        if (okg_config_read_items(&c, node, path, section_items, cfg) < 0)
                return okg_config_ctx_finish(&c);

        if (cfg->load_patch_type == LOAD_PATCH_SIGNAL)
                require(&c, node, path, "signal", "processName");
        else if (cfg->load_patch_type == LOAD_PATCH_REQUEST)
                require(&c, node, path, "request", "port");
        check = okg_config_get_opt(node, "postReloadCheck");
        if (check && check->type == OKG_NODE_MAPPING)
                require(&c, node, path, "postReloadCheck", "url");

        okg_config_note(&c, hotupdate_policy_parse(node, file, path, c.e, &cfg->policy));
        hotupdate_policy_add_own_port(&cfg->policy, cfg->port);

        r = okg_config_ctx_finish(&c);
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
