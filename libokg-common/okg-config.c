/* The sidecar's config.yaml: top-level keys, the plugin list, and the cross-checks between them.
 * Each plugin's own `config` section is checked by its PluginType's validator. */
#define _GNU_SOURCE 1

#include <arpa/inet.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "macro.h"
#include "okg-config.h"
#include "okg-kube-names.h"

static const char *const restart_policy_table[_RESTART_POLICY_MAX] = {
        [RESTART_ALWAYS] = "Always",
        [RESTART_ON_FAILURE] = "OnFailure",
        [RESTART_NEVER] = "Never",
};

static const char *const start_order_table[_START_ORDER_MAX] = {
        [START_ORDER_BEFORE] = "Before",
        [START_ORDER_AFTER] = "After",
};

static const char *const storage_backend_table[_STORAGE_BACKEND_MAX] = {
        [STORAGE_BACKEND_AUTO] = "auto",
        [STORAGE_BACKEND_KUBERNETES] = "kubernetes",
        [STORAGE_BACKEND_LOCAL] = "local",
};

const char *storage_backend_to_string(StorageBackend b) {
        if (b < 0 || b >= _STORAGE_BACKEND_MAX)
                return NULL;
        return storage_backend_table[b];
}

StorageBackend storage_backend_from_string(const char *s) {
        if (!s)
                return _STORAGE_BACKEND_INVALID;
        for (int i = 0; i < _STORAGE_BACKEND_MAX; i++)
                if (strcasecmp(s, storage_backend_table[i]) == 0)
                        return (StorageBackend) i;
        return _STORAGE_BACKEND_INVALID;
}

const char *restart_policy_to_string(RestartPolicy p) {
        if (p < 0 || p >= _RESTART_POLICY_MAX)
                return NULL;
        return restart_policy_table[p];
}

RestartPolicy restart_policy_from_string(const char *s) {
        if (!s)
                return _RESTART_POLICY_INVALID;
        for (int i = 0; i < _RESTART_POLICY_MAX; i++)
                if (strcasecmp(s, restart_policy_table[i]) == 0)
                        return (RestartPolicy) i;
        return _RESTART_POLICY_INVALID;
}

const char *start_order_to_string(StartOrder o) {
        if (o < 0 || o >= _START_ORDER_MAX)
                return NULL;
        return start_order_table[o];
}

StartOrder start_order_from_string(const char *s) {
        if (!s)
                return _START_ORDER_INVALID;
        for (int i = 0; i < _START_ORDER_MAX; i++)
                if (strcasecmp(s, start_order_table[i]) == 0)
                        return (StartOrder) i;
        return _START_ORDER_INVALID;
}

SidecarConfig *sidecar_config_free(SidecarConfig *c) {
        if (!c)
                return NULL;
        for (size_t i = 0; i < c->n_plugins; i++) {
                free(c->plugins[i].name);
                free(c->plugins[i].config_canonical);
        }
        free(c->plugins);
        free(c->path);
        free(c->cpu);
        free(c->memory);
        free(c->health_address);
        free(c->game_process_name);
        free(c->game_url);
        free(c->result_configmap);
        free(c->result_namespace);
        free(c);
        return NULL;
}

const PluginSpec *sidecar_config_find_plugin(const SidecarConfig *c, const char *name) {
        if (!c || !name)
                return NULL;
        for (size_t i = 0; i < c->n_plugins; i++)
                if (streq(c->plugins[i].name, name))
                        return &c->plugins[i];
        return NULL;
}

/* Shared state of one parse run: where messages go and whether we ran out of memory. */
typedef struct Ctx {
        const char *file;
        OkgErrors *e;
        int oom;
} Ctx;

/* A key's value, with an unquoted null counting as absent: `timeout:` with nothing after it
 * means "use the default", as in Kubernetes objects. */
static OkgNode *get_opt(const OkgNode *m, const char *key) {
        OkgNode *v = okg_node_get(m, key);
        return okg_node_is_null(v) ? NULL : v;
}

/* Like get_opt() for keys with two accepted spellings; *ret_key names the one used (or the
 * first spelling when neither is present). Returns -EINVAL when both are given. */
static int get_either_opt(Ctx *c, const OkgNode *m, const char *path, const char *a,
                          const char *b, OkgNode **ret, const char **ret_key) {
        OkgNode *v = NULL;
        const char *k = NULL;
        int r;

        r = okg_node_get_either(m, a, b, c->file, path, c->e, &v, &k);
        if (r < 0)
                return r;
        *ret = okg_node_is_null(v) ? NULL : v;
        *ret_key = k ?: a;
        return 0;
}

static int read_string(Ctx *c, const OkgNode *n, const char *path, const char *key,
                       char **ret) {
        _cleanup_(freep) char *p = okg_path_key(path, key);
        if (!p)
                return -ENOMEM;
        return okg_node_get_string(n, c->file, p, c->e, ret);
}

static int read_uint(Ctx *c, const OkgNode *n, const char *path, const char *key,
                     long long min, long long max, unsigned *ret) {
        _cleanup_(freep) char *p = okg_path_key(path, key);
        long long v;
        int r;

        if (!p)
                return -ENOMEM;
        r = okg_node_get_int(n, c->file, p, min, max, c->e, &v);
        if (r < 0)
                return r;
        *ret = (unsigned) v;
        return 0;
}

/* A case-insensitive choice among fixed names. */
static int read_restart_policy(Ctx *c, const OkgNode *n, const char *path, const char *key,
                               RestartPolicy *ret) {
        _cleanup_(freep) char *p = okg_path_key(path, key);
        char what[80];

        if (!p)
                return -ENOMEM;
        if (n->type != OKG_NODE_SCALAR) {
                okg_errors_add(c->e, c->file, n, p,
                               "expected Always, OnFailure or Never, got %s",
                               okg_node_describe(n, what, sizeof(what)));
                return -EINVAL;
        }
        RestartPolicy rp = restart_policy_from_string(n->scalar);
        if (rp < 0) {
                okg_errors_add(c->e, c->file, n, p,
                               "invalid value %s (expected Always, OnFailure or Never)",
                               okg_node_describe(n, what, sizeof(what)));
                return -EINVAL;
        }
        *ret = rp;
        return 0;
}

static const char *const top_keys[] = {
        "plugins",
        "restartpolicy",
        "restartPolicy",
        "resources",
        "sidecarstartorder",
        "sidecarStartOrder",
        "healthPort",
        "healthAddress",
        "gameReady",
        "startTimeoutSeconds",
        "stopTimeoutSeconds",
        "watchdogSeconds",
        "restartBackoff",
        "storage",
        NULL,
};

static const char *const plugin_keys[] = {
        "name", "config", "bootorder", "bootOrder", "restartpolicy", "restartPolicy", NULL,
};

static int note(Ctx *c, int r) {
        if (r == -ENOMEM)
                c->oom = r;
        return r;
}

static void parse_resources(Ctx *c, const OkgNode *m, SidecarConfig *cfg) {
        static const char *const keys[] = { "CPU", "cpu", "Memory", "memory", NULL };
        static const struct {
                const char *a, *b;
                size_t offset;
        } fields[] = {
                { "CPU", "cpu", offsetof(SidecarConfig, cpu) },
                { "Memory", "memory", offsetof(SidecarConfig, memory) },
        };
        char what[80];

        if (m->type != OKG_NODE_MAPPING) {
                okg_errors_add(c->e, c->file, m, "resources", "expected a mapping, got %s",
                               okg_node_describe(m, what, sizeof(what)));
                return;
        }
        note(c, okg_node_check_keys(m, c->file, "resources", keys, c->e));

        for (size_t i = 0; i < ELEMENTSOF(fields); i++) {
                OkgNode *v;
                const char *k;
                _cleanup_(freep) char *s = NULL;

                if (get_either_opt(c, m, "resources", fields[i].a, fields[i].b, &v, &k) < 0 || !v)
                        continue;
                _cleanup_(freep) char *p = okg_path_key("resources", k);
                if (!p) {
                        c->oom = -ENOMEM;
                        return;
                }
                if (note(c, okg_node_get_string(v, c->file, p, c->e, &s)) < 0)
                        continue;
                const char *why = kube_quantity_check(s);
                if (why) {
                        okg_errors_add(c->e, c->file, v, p,
                                       "invalid quantity %s: %s (expected e.g. 100m, 0.5, "
                                       "128Mi or 1G)",
                                       okg_node_describe(v, what, sizeof(what)), why);
                        continue;
                }
                char **field = (char **) ((char *) cfg + fields[i].offset);
                free(*field);
                *field = TAKE_PTR(s);
        }
}

static void parse_restart_backoff(Ctx *c, const OkgNode *m, SidecarConfig *cfg) {
        static const char *const keys[] = { "initialMilliseconds", "maxSeconds",
                                            "resetAfterSeconds", NULL };
        char what[80];
        OkgNode *v;

        if (m->type != OKG_NODE_MAPPING) {
                okg_errors_add(c->e, c->file, m, "restartBackoff", "expected a mapping, got %s",
                               okg_node_describe(m, what, sizeof(what)));
                return;
        }
        note(c, okg_node_check_keys(m, c->file, "restartBackoff", keys, c->e));
        v = get_opt(m, "initialMilliseconds");
        if (v)
                note(c, read_uint(c, v, "restartBackoff", "initialMilliseconds", 1, 60000,
                                  &cfg->restart_initial_msec));
        v = get_opt(m, "maxSeconds");
        if (v)
                note(c, read_uint(c, v, "restartBackoff", "maxSeconds", 1, 3600,
                                  &cfg->restart_max_sec));
        v = get_opt(m, "resetAfterSeconds");
        if (v)
                note(c, read_uint(c, v, "restartBackoff", "resetAfterSeconds", 1, 86400,
                                  &cfg->restart_reset_sec));
        if ((uint64_t) cfg->restart_initial_msec > (uint64_t) cfg->restart_max_sec * 1000)
                okg_errors_add(c->e, c->file, m, "restartBackoff",
                               "initialMilliseconds (%u) is above maxSeconds (%u s)",
                               cfg->restart_initial_msec, cfg->restart_max_sec);
}

static void parse_storage(Ctx *c, const OkgNode *m, SidecarConfig *cfg) {
        static const char *const keys[] = { "backend", "resultConfigMap", "resultNamespace",
                                            "events", "drainTimeoutSeconds",
                                            "recordPruneAfterSeconds", NULL };
        char what[80];
        OkgNode *v;

        if (m->type != OKG_NODE_MAPPING) {
                okg_errors_add(c->e, c->file, m, "storage", "expected a mapping, got %s",
                               okg_node_describe(m, what, sizeof(what)));
                return;
        }
        note(c, okg_node_check_keys(m, c->file, "storage", keys, c->e));

        v = get_opt(m, "backend");
        if (v) {
                _cleanup_(freep) char *s = NULL;
                if (note(c, read_string(c, v, "storage", "backend", &s)) >= 0) {
                        StorageBackend b = storage_backend_from_string(s);
                        if (b < 0)
                                okg_errors_add(c->e, c->file, v, "storage.backend",
                                               "invalid value %s (expected auto, kubernetes or local)",
                                               okg_node_describe(v, what, sizeof(what)));
                        else
                                cfg->storage_backend = b;
                }
        }
        for (size_t i = 0; i < 2; i++) {
                const char *key = i == 0 ? "resultConfigMap" : "resultNamespace";
                char **dest = i == 0 ? &cfg->result_configmap : &cfg->result_namespace;
                _cleanup_(freep) char *s = NULL, *p = okg_path_key("storage", key);
                const char *why;

                v = get_opt(m, key);
                if (!v)
                        continue;
                if (note(c, read_string(c, v, "storage", key, &s)) < 0)
                        continue;
                why = kube_dns_subdomain_check(s);
                if (why)
                        okg_errors_add(c->e, c->file, v, p ?: key, "invalid name %s: %s",
                                       okg_node_describe(v, what, sizeof(what)), why);
                else {
                        free(*dest);
                        *dest = TAKE_PTR(s);
                }
        }
        v = get_opt(m, "events");
        if (v)
                note(c, okg_node_get_bool(v, c->file, "storage.events", c->e, &cfg->events));
        v = get_opt(m, "drainTimeoutSeconds");
        if (v)
                note(c, read_uint(c, v, "storage", "drainTimeoutSeconds", 1, 3600,
                                  &cfg->drain_timeout_sec));
        v = get_opt(m, "recordPruneAfterSeconds");
        if (v)
                note(c, read_uint(c, v, "storage", "recordPruneAfterSeconds", 0, 2592000,
                                  &cfg->record_prune_after_sec));
}

static void parse_game_ready(Ctx *c, const OkgNode *m, SidecarConfig *cfg) {
        static const char *const keys[] = { "processName", "url", "timeoutSeconds", NULL };
        char what[80];
        OkgNode *v;

        if (m->type != OKG_NODE_MAPPING) {
                okg_errors_add(c->e, c->file, m, "gameReady", "expected a mapping, got %s",
                               okg_node_describe(m, what, sizeof(what)));
                return;
        }
        note(c, okg_node_check_keys(m, c->file, "gameReady", keys, c->e));

        v = get_opt(m, "processName");
        if (v) {
                _cleanup_(freep) char *s = NULL;
                if (note(c, read_string(c, v, "gameReady", "processName", &s)) >= 0) {
                        if (isempty(s))
                                okg_errors_add(c->e, c->file, v, "gameReady.processName",
                                               "must not be empty");
                        else {
                                free(cfg->game_process_name);
                                cfg->game_process_name = TAKE_PTR(s);
                        }
                }
        }

        v = get_opt(m, "url");
        if (v) {
                _cleanup_(freep) char *s = NULL;
                if (note(c, read_string(c, v, "gameReady", "url", &s)) >= 0) {
                        if (okg_config_url_check(c->e, c->file, v, "gameReady.url", s)) {
                                free(cfg->game_url);
                                cfg->game_url = TAKE_PTR(s);
                        }
                }
        }

        v = get_opt(m, "timeoutSeconds");
        if (v)
                note(c, read_uint(c, v, "gameReady", "timeoutSeconds", 1, 86400,
                                  &cfg->game_timeout_sec));
}

static const PluginType *find_type(const PluginType *types, size_t n_types, const char *name) {
        for (size_t i = 0; i < n_types; i++)
                if (types[i].name && streq(types[i].name, name))
                        return &types[i];
        return NULL;
}

static char *known_type_names(const PluginType *types, size_t n_types) {
        char *s = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&s, &size);

        if (!f)
                return NULL;
        for (size_t i = 0; i < n_types; i++)
                fprintf(f, "%s%s", i > 0 ? ", " : "", types[i].name);
        if (n_types == 0)
                fputs("none", f);
        if (fclose(f) != 0) {
                free(s);
                return NULL;
        }
        return s;
}

/* With no type table, plugin names and sections are left unchecked: a daemon that only reads
 * its own settings (okg-storaged) need not know the plugins. */
static const PluginType unchecked_plugin_type = { .name = "*" };

static void parse_plugin(Ctx *c, const OkgNode *m, size_t index, const PluginType *types,
                         size_t n_types, SidecarConfig *cfg, const OkgNode **name_nodes) {
        _cleanup_(freep) char *path = okg_path_index("plugins", index);
        _cleanup_(freep) char *name = NULL;
        const PluginType *type = NULL;
        PluginSpec *spec = &cfg->plugins[cfg->n_plugins];
        OkgNode *v;
        const char *k;
        char what[80];

        if (!path) {
                c->oom = -ENOMEM;
                return;
        }
        if (m->type != OKG_NODE_MAPPING) {
                okg_errors_add(c->e, c->file, m, path,
                               "expected a mapping with a plugin's name and config, got %s",
                               okg_node_describe(m, what, sizeof(what)));
                return;
        }
        note(c, okg_node_check_keys(m, c->file, path, plugin_keys, c->e));

        *spec = (PluginSpec) {
                .index = index,
                .restart_policy = cfg->restart_policy,
        };

        /* name */
        v = okg_node_get(m, "name");
        _cleanup_(freep) char *name_path = okg_path_key(path, "name");
        if (!name_path) {
                c->oom = -ENOMEM;
                return;
        }
        if (!v)
                okg_errors_add(c->e, c->file, m, name_path, "required key is missing");
        else if (note(c, okg_node_get_string(v, c->file, name_path, c->e, &name)) >= 0) {
                type = types ? find_type(types, n_types, name) : &unchecked_plugin_type;
                if (!type) {
                        _cleanup_(freep) char *known = known_type_names(types, n_types);
                        okg_errors_add(c->e, c->file, v, name_path,
                                       "unknown plugin %s (known: %s)",
                                       okg_node_describe(v, what, sizeof(what)),
                                       strempty(known));
                } else {
                        for (size_t i = 0; i < index; i++)
                                if (name_nodes[i] && streq(name_nodes[i]->scalar, name)) {
                                        okg_errors_add(c->e, c->file, v, name_path,
                                                       "duplicate plugin %s (also plugins[%zu])",
                                                       okg_node_describe(v, what, sizeof(what)),
                                                       i);
                                        type = NULL;
                                        break;
                                }
                        if (type)
                                name_nodes[index] = v;
                }
        }

        /* bootorder */
        if (get_either_opt(c, m, path, "bootorder", "bootOrder", &v, &k) >= 0 && v) {
                unsigned bo;
                if (note(c, read_uint(c, v, path, k, 0, 1000, &bo)) >= 0)
                        spec->boot_order = (int) bo;
        }

        /* restartpolicy */
        if (get_either_opt(c, m, path, "restartpolicy", "restartPolicy", &v, &k) >= 0 && v)
                note(c, read_restart_policy(c, v, path, k, &spec->restart_policy));

        /* config: validated by the plugin; an absent section is validated as an empty mapping
         * placed at the plugin entry, so "required" messages still carry a position. */
        const OkgNode *config = get_opt(m, "config");
        OkgNode empty = { .type = OKG_NODE_MAPPING, .line = m->line, .column = m->column };
        if (type) {
                _cleanup_(freep) char *config_path = okg_path_key(path, "config");
                if (!config_path) {
                        c->oom = -ENOMEM;
                        return;
                }
                if (type->validate)
                        note(c, type->validate(config ?: &empty, c->file, config_path, c->e));
        }

        if (!type)
                return;

        spec->config_canonical = config ? okg_node_canonical(config) : strdup("");
        if (!spec->config_canonical) {
                c->oom = -ENOMEM;
                return;
        }
        spec->name = TAKE_PTR(name);
        spec->type = type;
        cfg->n_plugins++;
}

static void parse_plugins(Ctx *c, const OkgNode *root, const OkgNode *seq,
                          const PluginType *types, size_t n_types, SidecarConfig *cfg) {
        _cleanup_(freep) const OkgNode **name_nodes = NULL;
        char what[80];

        if (!seq) {
                okg_errors_add(c->e, c->file, root, "plugins", "required key is missing");
                return;
        }
        if (seq->type != OKG_NODE_SEQUENCE) {
                okg_errors_add(c->e, c->file, seq, "plugins",
                               "expected a sequence of plugins, got %s",
                               okg_node_describe(seq, what, sizeof(what)));
                return;
        }
        if (seq->n == 0)
                return;

        cfg->plugins = calloc(seq->n, sizeof(PluginSpec));
        name_nodes = calloc(seq->n, sizeof(OkgNode *));
        if (!cfg->plugins || !name_nodes) {
                c->oom = -ENOMEM;
                return;
        }
        for (size_t i = 0; i < seq->n && !c->oom; i++)
                parse_plugin(c, seq->values[i], i, types, n_types, cfg, name_nodes);
}

/* signal.processName of a hot_update section: the process the hot-update plugin signals is the
 * game, so it also tells when the game is up. Read from the tree, not from the plugin's parsed
 * config, because the loader only knows plugins through PluginType. */
static const char *hot_update_process_name(const OkgNode *root) {
        const OkgNode *plugins = okg_node_get(root, "plugins");

        if (!plugins || plugins->type != OKG_NODE_SEQUENCE)
                return NULL;
        for (size_t i = 0; i < plugins->n; i++) {
                const OkgNode *name = okg_node_get(plugins->values[i], "name");
                if (!name || name->type != OKG_NODE_SCALAR || !streq(name->scalar, "hot_update"))
                        continue;
                /* Only in signal mode (the default) does the plugin know the game's process. */
                const OkgNode *config = okg_node_get(plugins->values[i], "config");
                const OkgNode *lpt = okg_node_get(config, "loadPatchType");
                if (!okg_node_is_null(lpt) &&
                    (lpt->type != OKG_NODE_SCALAR || strcasecmp(lpt->scalar, "signal") != 0))
                        continue;
                const OkgNode *pn = okg_node_get(okg_node_get(config, "signal"), "processName");
                if (pn && pn->type == OKG_NODE_SCALAR && !okg_node_is_null(pn) &&
                    !isempty(pn->scalar))
                        return pn->scalar;
        }
        return NULL;
}

int sidecar_config_parse(const OkgNode *root, const char *file, const PluginType *types,
                         size_t n_types, SidecarConfig **ret, OkgErrors *errors) {
        _cleanup_(sidecar_config_freep) SidecarConfig *cfg = NULL;
        OkgErrors local = {};
        Ctx c = { .file = file, .e = errors ?: &local };
        size_t n_before = c.e->n;
        const OkgNode *order_node = NULL;
        const char *order_key = "sidecarstartorder";
        char what[80];
        OkgNode *v;
        const char *k;
        int r;

        if (!root)
                return -EINVAL;

        cfg = calloc(1, sizeof(SidecarConfig));
        if (!cfg)
                return -ENOMEM;
        *cfg = (SidecarConfig) {
                .restart_policy = RESTART_ALWAYS,
                .start_order = START_ORDER_BEFORE,
                .health_port = 5001,
                .game_timeout_sec = 120,
                .start_timeout_sec = 30,
                .stop_timeout_sec = 10,
                .watchdog_sec = 30,
                .restart_initial_msec = 100,
                .restart_max_sec = 30,
                .restart_reset_sec = 60,
                .storage_backend = STORAGE_BACKEND_AUTO,
                .events = true,
                .drain_timeout_sec = 5,
                .record_prune_after_sec = 600,
        };
        cfg->health_address = strdup("0.0.0.0");
        cfg->result_configmap = strdup("sidecar-result");
        if (file)
                cfg->path = strdup(file);
        if (!cfg->health_address || !cfg->result_configmap || (file && !cfg->path))
                return -ENOMEM;

        if (root->type != OKG_NODE_MAPPING) {
                okg_errors_add(c.e, file, root, NULL,
                               "the top level must be a mapping of settings, got %s",
                               okg_node_describe(root, what, sizeof(what)));
                okg_errors_done(&local);
                return -EINVAL;
        }

        note(&c, okg_node_check_keys(root, file, NULL, top_keys, c.e));

        /* restartpolicy first: plugins inherit it. */
        if (get_either_opt(&c, root, NULL, "restartpolicy", "restartPolicy", &v, &k) >= 0 && v)
                note(&c, read_restart_policy(&c, v, NULL, k, &cfg->restart_policy));

        parse_plugins(&c, root, okg_node_get(root, "plugins"), types, n_types, cfg);

        v = get_opt(root, "resources");
        if (v)
                parse_resources(&c, v, cfg);

        if (get_either_opt(&c, root, NULL, "sidecarstartorder", "sidecarStartOrder", &v, &k) >= 0 &&
            v) {
                order_key = k;
                if (v->type != OKG_NODE_SCALAR)
                        okg_errors_add(c.e, file, v, k, "expected Before or After, got %s",
                                       okg_node_describe(v, what, sizeof(what)));
                else {
                        StartOrder o = start_order_from_string(v->scalar);
                        if (o < 0)
                                okg_errors_add(c.e, file, v, k,
                                               "invalid value %s (expected Before or After)",
                                               okg_node_describe(v, what, sizeof(what)));
                        else {
                                cfg->start_order = o;
                                order_node = v;
                        }
                }
        }

        v = get_opt(root, "healthPort");
        if (v) {
                unsigned port;
                if (note(&c, read_uint(&c, v, NULL, "healthPort", 1, 65535, &port)) >= 0)
                        cfg->health_port = (uint16_t) port;
        }

        v = get_opt(root, "healthAddress");
        if (v) {
                _cleanup_(freep) char *s = NULL;
                if (note(&c, okg_node_get_string(v, file, "healthAddress", c.e, &s)) >= 0) {
                        unsigned char buf[sizeof(struct in6_addr)];
                        if (inet_pton(AF_INET, s, buf) != 1 && inet_pton(AF_INET6, s, buf) != 1)
                                okg_errors_add(c.e, file, v, "healthAddress",
                                               "invalid address %s (expected a numeric IPv4 or "
                                               "IPv6 address such as 0.0.0.0 or ::)",
                                               okg_node_describe(v, what, sizeof(what)));
                        else {
                                free(cfg->health_address);
                                cfg->health_address = TAKE_PTR(s);
                        }
                }
        }

        v = get_opt(root, "gameReady");
        if (v)
                parse_game_ready(&c, v, cfg);

        v = get_opt(root, "startTimeoutSeconds");
        if (v)
                note(&c, read_uint(&c, v, NULL, "startTimeoutSeconds", 1, 3600,
                                   &cfg->start_timeout_sec));
        v = get_opt(root, "stopTimeoutSeconds");
        if (v)
                note(&c, read_uint(&c, v, NULL, "stopTimeoutSeconds", 1, 3600,
                                   &cfg->stop_timeout_sec));
        v = get_opt(root, "watchdogSeconds");
        if (v)
                note(&c, read_uint(&c, v, NULL, "watchdogSeconds", 0, 3600, &cfg->watchdog_sec));

        v = get_opt(root, "restartBackoff");
        if (v)
                parse_restart_backoff(&c, v, cfg);
        v = get_opt(root, "storage");
        if (v)
                parse_storage(&c, v, cfg);

        if (!cfg->game_process_name) {
                const char *pn = hot_update_process_name(root);
                if (pn) {
                        cfg->game_process_name = strdup(pn);
                        if (!cfg->game_process_name)
                                c.oom = -ENOMEM;
                }
        }

        /* Only when nothing was given: a bad gameReady.url already has its own message. */
        const OkgNode *gr = get_opt(root, "gameReady");
        bool game_given = get_opt(gr, "processName") || get_opt(gr, "url");
        if (order_node && cfg->start_order == START_ORDER_AFTER && !cfg->game_process_name &&
            !cfg->game_url && !game_given)
                okg_errors_add(c.e, file, order_node, order_key,
                               "After needs gameReady.processName or gameReady.url (or a "
                               "hot_update plugin's signal.processName) to tell when the game "
                               "is up");

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

int sidecar_config_load(const char *path, const PluginType *types, size_t n_types,
                        SidecarConfig **ret, OkgErrors *errors) {
        _cleanup_(okg_node_freep) OkgNode *root = NULL;
        int r;

        r = okg_yaml_parse_file(path, &root, errors);
        if (r < 0)
                return r;
        return sidecar_config_parse(root, path, types, n_types, ret, errors);
}

int sidecar_config_find_section(const OkgNode *root, const char *file, const char *name,
                                const OkgNode **ret_config, char **ret_path, OkgErrors *errors) {
        const OkgNode *plugins = okg_node_get(root, "plugins");

        if (!name)
                return -EINVAL;

        if (plugins && plugins->type == OKG_NODE_SEQUENCE)
                for (size_t i = 0; i < plugins->n; i++) {
                        const OkgNode *n = okg_node_get(plugins->values[i], "name");
                        if (!n || n->type != OKG_NODE_SCALAR || !streq(n->scalar, name))
                                continue;

                        if (ret_path) {
                                _cleanup_(freep) char *p = okg_path_index("plugins", i);
                                char *q = p ? okg_path_key(p, "config") : NULL;
                                if (!q)
                                        return -ENOMEM;
                                *ret_path = q;
                        }
                        if (ret_config) {
                                const OkgNode *cfg = okg_node_get(plugins->values[i], "config");
                                *ret_config = okg_node_is_null(cfg) ? NULL : cfg;
                        }
                        return 0;
                }

        /* The line already starts with the file name: "FILE: no plugin named ..." */
        okg_errors_add(errors, file, NULL, NULL, "no plugin named \"%s\"", name);
        return -ENOENT;
}

bool okg_config_url_check(OkgErrors *e, const char *file, const OkgNode *v, const char *key,
                          const char *url) {
        const char *why = okg_http_url_check(url);
        char redacted[512], what[560];

        if (!why)
                return true;
        okg_url_redact(url, redacted, sizeof redacted);
        okg_errors_add(e, file, v, key, "invalid URL %s: %s",
                       okg_quote(redacted, what, sizeof what), why);
        return false;
}
