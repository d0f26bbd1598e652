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
#include "okg-string-table.h"

static const char *const restart_policy_table[_RESTART_POLICY_MAX + 1] = {
        [RESTART_ALWAYS] = "Always",
        [RESTART_ON_FAILURE] = "OnFailure",
        [RESTART_NEVER] = "Never",
};

static const char *const start_order_table[_START_ORDER_MAX + 1] = {
        [START_ORDER_BEFORE] = "Before",
        [START_ORDER_AFTER] = "After",
};

static const char *const storage_backend_table[_STORAGE_BACKEND_MAX + 1] = {
        [STORAGE_BACKEND_AUTO] = "auto",
        [STORAGE_BACKEND_KUBERNETES] = "kubernetes",
        [STORAGE_BACKEND_LOCAL] = "local",
};

/* The tables end in NULL (sized _MAX + 1) so that they also serve as OkgConfigChoice names. */
DEFINE_STRING_TABLE_LOOKUP_CASE(storage_backend, StorageBackend)
DEFINE_STRING_TABLE_LOOKUP_CASE(restart_policy, RestartPolicy)
DEFINE_STRING_TABLE_LOOKUP_CASE(start_order, StartOrder)

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

/* The config layer: context, optional keys, the table reader and its readers. */

void okg_config_ctx_init(OkgConfigCtx *c, const char *file, OkgErrors *errors) {
        *c = (OkgConfigCtx) { .file = file };
        c->e = errors ?: &c->local;
        c->n_before = c->e->n;
}

int okg_config_ctx_finish(OkgConfigCtx *c) {
        int r = c->oom;

        if (r == 0 && c->e->n > c->n_before)
                r = -EINVAL;
        okg_errors_sort(c->e, c->n_before);
        return r;
}

void okg_config_ctx_done(OkgConfigCtx *c) {
        okg_errors_done(&c->local);
}

int okg_config_note(OkgConfigCtx *c, int r) {
        if (r == -ENOMEM)
                c->oom = r;
        return r;
}

OkgNode *okg_config_get_opt(const OkgNode *m, const char *key) {
        OkgNode *v = okg_node_get(m, key);
        return okg_node_is_null(v) ? NULL : v;
}

char *okg_config_path(OkgConfigCtx *c, const char *path, const char *key) {
        char *p = okg_path_key(path, key);
        if (!p)
                okg_config_note(c, -ENOMEM);
        return p;
}

void okg_config_missing(OkgConfigCtx *c, const OkgNode *at, const char *path, const char *key) {
        _cleanup_(freep) char *p = okg_config_path(c, path, key);
        if (p)
                okg_errors_add(c->e, c->file, at, p, "required key is missing");
}

bool okg_config_check_mapping(OkgConfigCtx *c, const OkgNode *m, const char *path,
                              const char *const *keys) {
        char what[80];

        if (m->type != OKG_NODE_MAPPING) {
                okg_errors_add(c->e, c->file, m, path, "expected a mapping, got %s",
                               okg_node_describe(m, what, sizeof(what)));
                return false;
        }
        okg_config_note(c, okg_node_check_keys(m, c->file, path, keys, c->e));
        return true;
}

int okg_config_get_string(OkgConfigCtx *c, const OkgNode *v, const char *key_path, bool allow_empty,
                      char **ret) {
        _cleanup_(freep) char *s = NULL;
        int r;

        r = okg_config_note(c, okg_node_get_string(v, c->file, key_path, c->e, &s));
        if (r < 0)
                return r;
        if (!allow_empty && isempty(s)) {
                okg_errors_add(c->e, c->file, v, key_path, "must not be empty");
                return -EINVAL;
        }
        *ret = TAKE_PTR(s);
        return 0;
}

const OkgNode *okg_config_item_node(const OkgNode *m, const OkgConfigItem *item,
                                    const char **ret_key) {
        const OkgNode *v = okg_config_get_opt(m, item->key);
        const char *k = item->key;

        if (!v && item->alt) {
                v = okg_config_get_opt(m, item->alt);
                k = item->alt;
        }
        if (ret_key)
                *ret_key = k;
        return v;
}

int okg_config_read_items(OkgConfigCtx *c, const OkgNode *m, const char *path,
                          const OkgConfigItem *items, void *base) {
        _cleanup_(freep) const char **keys = NULL;
        size_t n = 0, k = 0;

        for (const OkgConfigItem *i = items; i->key; i++)
                n++;
        keys = calloc(2 * n + 1, sizeof(char *));
        if (!keys)
                return okg_config_note(c, -ENOMEM);
        for (const OkgConfigItem *i = items; i->key; i++) {
                keys[k++] = i->key;
                if (i->alt)
                        keys[k++] = i->alt;
        }
        if (!okg_config_check_mapping(c, m, path, keys))
                return -EINVAL;

        for (const OkgConfigItem *i = items; i->key && !c->oom; i++) {
                OkgNode *v = NULL;
                const char *spelling = i->key;

                if (!i->reader)
                        continue;
                if (i->alt) {
                        if (okg_node_get_either(m, i->key, i->alt, c->file, path, c->e, &v,
                                                &spelling) < 0)
                                continue;
                        spelling = spelling ?: i->key;
                } else
                        v = okg_node_get(m, i->key);
                if (okg_node_is_null(v))
                        continue;

                _cleanup_(freep) char *p = okg_config_path(c, path, spelling);
                if (!p)
                        break;
                okg_config_note(c, i->reader(c, v, p, i, base));
        }
        return 0;
}

#define FIELD(type, base, item) ((type *) ((char *) (base) + (item)->offset))

int okg_config_read_string(OkgConfigCtx *c, const OkgNode *v, const char *key_path,
                           const OkgConfigItem *item, void *base) {
        char **field = FIELD(char *, base, item);
        char *s;
        int r;

        r = okg_config_get_string(c, v, key_path, !(item->flags & OKG_CONFIG_NONEMPTY),
                                  &s);
        if (r < 0)
                return r;
        free(*field);
        *field = s;
        return 0;
}

/* The integer readers differ only in the field's type; the bounds come from the item. */
#define DEFINE_INT_READER(name, type)                                                           \
        int name(OkgConfigCtx *c, const OkgNode *v, const char *key_path,                       \
                 const OkgConfigItem *item, void *base) {                                       \
                long long x;                                                                    \
                int r = okg_node_get_int(v, c->file, key_path, item->min, item->max, c->e, &x); \
                if (r >= 0)                                                                     \
                        *FIELD(type, base, item) = (type) x;                                    \
                return r;                                                                       \
        }

DEFINE_INT_READER(okg_config_read_uint, unsigned)
DEFINE_INT_READER(okg_config_read_uint16, uint16_t)
DEFINE_INT_READER(okg_config_read_uint64, uint64_t)

int okg_config_read_bool(OkgConfigCtx *c, const OkgNode *v, const char *key_path,
                         const OkgConfigItem *item, void *base) {
        return okg_node_get_bool(v, c->file, key_path, c->e, FIELD(bool, base, item));
}

int okg_config_read_url(OkgConfigCtx *c, const OkgNode *v, const char *key_path,
                        const OkgConfigItem *item, void *base) {
        int r = okg_config_read_string(c, v, key_path, item, base);
        if (r < 0)
                return r;
        return okg_config_url_check(c->e, c->file, v, key_path, *FIELD(char *, base, item))
                       ? 0
                       : -EINVAL;
}

int okg_config_read_absolute_path(OkgConfigCtx *c, const OkgNode *v, const char *key_path,
                                  const OkgConfigItem *item, void *base) {
        char what[80];
        int r = okg_config_read_string(c, v, key_path, item, base);
        if (r < 0)
                return r;
        if ((*FIELD(char *, base, item))[0] == '/')
                return 0;
        okg_errors_add(c->e, c->file, v, key_path, "must be an absolute path, got %s",
                       okg_node_describe(v, what, sizeof(what)));
        return -EINVAL;
}

bool okg_config_is_ip_address(const char *s) {
        unsigned char buf[sizeof(struct in6_addr)];
        return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

int okg_config_read_checked(OkgConfigCtx *c, const OkgNode *v, const char *key_path,
                            const OkgConfigItem *item, void *base) {
        const OkgConfigCheck *check = item->data;
        const char *s, *why;
        char what[80];
        int r = okg_config_read_string(c, v, key_path, item, base);
        if (r < 0)
                return r;
        s = *FIELD(char *, base, item);
        okg_node_describe(v, what, sizeof(what));
        if (check->valid) {
                if (check->valid(s))
                        return 0;
                okg_errors_add(c->e, c->file, v, key_path, "invalid %s %s (expected %s)",
                               check->noun, what, check->expected);
                return -EINVAL;
        }
        why = check->why(s);
        if (!why)
                return 0;
        okg_errors_add(c->e, c->file, v, key_path, "invalid %s %s: %s%s%s%s", check->noun, what,
                       why, check->expected ? " (expected " : "", strempty(check->expected),
                       check->expected ? ")" : "");
        return -EINVAL;
}

const OkgConfigCheck okg_config_label_key_check = {
        .noun = "label key",
        .why = kube_qualified_name_check,
};

const OkgConfigCheck okg_config_annotation_key_check = {
        .noun = "annotation key",
        .why = kube_qualified_name_check,
};

/* "A, B or C" */
static void choice_list(const OkgConfigChoice *ch, char *buf, size_t size) {
        size_t n = 0, l = 0;

        buf[0] = 0;
        while (ch->names[n])
                n++;
        for (size_t i = 0; i < n && l < size; i++) {
                int k = snprintf(buf + l, size - l, "%s%s",
                                 i == 0 ? "" : i + 1 == n ? " or " : ", ", ch->names[i]);
                if (k < 0)
                        break;
                l += (size_t) k;
        }
}

int okg_config_choice_index(OkgConfigCtx *c, const OkgNode *v, const char *key_path,
                       const OkgConfigItem *item) {
        const OkgConfigChoice *ch = item->data;
        _cleanup_(freep) char *s = NULL;
        char what[80], list[200];
        int r;

        choice_list(ch, list, sizeof list);
        if (item->flags & (OKG_CONFIG_AS_STRING | OKG_CONFIG_NONEMPTY)) {
                r = okg_config_get_string(c, v, key_path, !(item->flags & OKG_CONFIG_NONEMPTY),
                                  &s);
                if (r < 0)
                        return r;
        } else if (v->type != OKG_NODE_SCALAR) {
                okg_errors_add(c->e, c->file, v, key_path, "expected %s, got %s", list,
                               okg_node_describe(v, what, sizeof(what)));
                return -EINVAL;
        }

        for (int i = 0; ch->names[i]; i++)
                if (strcasecmp(s ?: v->scalar, ch->names[i]) == 0)
                        return i;
        okg_errors_add(c->e, c->file, v, key_path, "invalid %s %s (expected %s)",
                       ch->noun ?: "value", okg_node_describe(v, what, sizeof(what)), list);
        return -EINVAL;
}

int okg_config_read_choice(OkgConfigCtx *c, const OkgNode *v, const char *key_path,
                           const OkgConfigItem *item, void *base) {
        int r = okg_config_choice_index(c, v, key_path, item);
        if (r >= 0)
                *FIELD(int, base, item) = r;
        return r;
}

int okg_config_read_choice_name(OkgConfigCtx *c, const OkgNode *v, const char *key_path,
                                const OkgConfigItem *item, void *base) {
        const OkgConfigChoice *ch = item->data;
        int r = okg_config_choice_index(c, v, key_path, item);
        if (r < 0)
                return r;
        return free_and_strdup(FIELD(char *, base, item), ch->names[r]);
}

int okg_config_read_section(OkgConfigCtx *c, const OkgNode *v, const char *key_path,
                            const OkgConfigItem *item, void *base) {
        return okg_config_read_items(c, v, key_path, item->data, base);
}

/* The sidecar's own sections. */

static const OkgConfigChoice restart_policy_choice = { .names = restart_policy_table };
static const OkgConfigChoice start_order_choice = { .names = start_order_table };
static const OkgConfigChoice storage_backend_choice = { .names = storage_backend_table };

static const OkgConfigCheck quantity_check = {
        .noun = "quantity",
        .expected = "e.g. 100m, 0.5, 128Mi or 1G",
        .why = kube_quantity_check,
};

static const OkgConfigCheck object_name_check = {
        .noun = "name",
        .why = kube_dns_subdomain_check,
};

static const OkgConfigCheck health_address_check = {
        .noun = "address",
        .expected = "a numeric IPv4 or IPv6 address such as 0.0.0.0 or ::",
        .valid = okg_config_is_ip_address,
};

#define SC(field) offsetof(SidecarConfig, field)

static const OkgConfigItem resources_items[] = {
        { "CPU", "cpu", okg_config_read_checked, SC(cpu), .data = &quantity_check },
        { "Memory", "memory", okg_config_read_checked, SC(memory), .data = &quantity_check },
        {}
};

static const OkgConfigItem game_ready_items[] = {
        { "processName", NULL, okg_config_read_string, SC(game_process_name),
          .flags = OKG_CONFIG_NONEMPTY },
        { "url", NULL, okg_config_read_url, SC(game_url) },
        { "timeoutSeconds", NULL, okg_config_read_uint, SC(game_timeout_sec), 1, 86400 },
        {}
};

static const OkgConfigItem restart_backoff_items[] = {
        { "initialMilliseconds", NULL, okg_config_read_uint, SC(restart_initial_msec), 1, 60000 },
        { "maxSeconds", NULL, okg_config_read_uint, SC(restart_max_sec), 1, 3600 },
        { "resetAfterSeconds", NULL, okg_config_read_uint, SC(restart_reset_sec), 1, 86400 },
        {}
};

static const OkgConfigItem storage_items[] = {
        { "backend", NULL, okg_config_read_choice, SC(storage_backend),
          .flags = OKG_CONFIG_AS_STRING, .data = &storage_backend_choice },
        { "resultConfigMap", NULL, okg_config_read_checked, SC(result_configmap),
          .data = &object_name_check },
        { "resultNamespace", NULL, okg_config_read_checked, SC(result_namespace),
          .data = &object_name_check },
        { "events", NULL, okg_config_read_bool, SC(events) },
        { "drainTimeoutSeconds", NULL, okg_config_read_uint, SC(drain_timeout_sec), 1, 3600 },
        { "recordPruneAfterSeconds", NULL, okg_config_read_uint, SC(record_prune_after_sec), 0,
          2592000 },
        {}
};

/* The top level. restartpolicy comes before the plugins, which inherit it; `plugins` is read by
 * parse_plugins(). */
static const OkgConfigItem top_items[] = {
        { "plugins" },
        { "restartpolicy", "restartPolicy", okg_config_read_choice, SC(restart_policy),
          .data = &restart_policy_choice },
        { "resources", NULL, okg_config_read_section, .data = resources_items },
        { "sidecarstartorder", "sidecarStartOrder", okg_config_read_choice, SC(start_order),
          .data = &start_order_choice },
        { "healthPort", NULL, okg_config_read_uint16, SC(health_port), 1, 65535 },
        { "healthAddress", NULL, okg_config_read_checked, SC(health_address),
          .data = &health_address_check },
        { "gameReady", NULL, okg_config_read_section, .data = game_ready_items },
        { "startTimeoutSeconds", NULL, okg_config_read_uint, SC(start_timeout_sec), 1, 3600 },
        { "stopTimeoutSeconds", NULL, okg_config_read_uint, SC(stop_timeout_sec), 1, 3600 },
        { "watchdogSeconds", NULL, okg_config_read_uint, SC(watchdog_sec), 0, 3600 },
        { "restartBackoff", NULL, okg_config_read_section, .data = restart_backoff_items },
        { "storage", NULL, okg_config_read_section, .data = storage_items },
        {}
};

#define PS(field) offsetof(PluginSpec, field)

/* One entry of `plugins`; name and config are read by parse_plugin(). */
static const OkgConfigItem plugin_items[] = {
        { "name" },
        { "config" },
        { "bootorder", "bootOrder", okg_config_read_uint, PS(boot_order), 0, 1000 },
        { "restartpolicy", "restartPolicy", okg_config_read_choice, PS(restart_policy),
          .data = &restart_policy_choice },
        {}
};

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

static void parse_plugin(OkgConfigCtx *c, const OkgNode *m, size_t index,
                         const PluginType *types, size_t n_types, SidecarConfig *cfg,
                         const OkgNode **name_nodes) {
        _cleanup_(freep) char *path = okg_path_index("plugins", index);
        _cleanup_(freep) char *name = NULL, *name_path = NULL, *config_path = NULL;
        const PluginType *type = NULL;
        PluginSpec *spec = &cfg->plugins[cfg->n_plugins];
        const OkgNode *v;
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

        *spec = (PluginSpec) {
                .index = index,
                .restart_policy = cfg->restart_policy,
        };
        (void) okg_config_read_items(c, m, path, plugin_items, spec);

        name_path = okg_config_path(c, path, "name");
        config_path = okg_config_path(c, path, "config");
        if (!name_path || !config_path)
                return;
        v = okg_node_get(m, "name");
        if (!v)
                okg_errors_add(c->e, c->file, m, name_path, "required key is missing");
        else if (okg_config_note(c, okg_node_get_string(v, c->file, name_path, c->e, &name)) >= 0) {
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
        if (!type)
                return;

        /* config: validated by the plugin; an absent section is validated as an empty mapping
         * placed at the plugin entry, so "required" messages still carry a position. */
        const OkgNode *config = okg_config_get_opt(m, "config");
        OkgNode empty = { .type = OKG_NODE_MAPPING, .line = m->line, .column = m->column };
        if (type->validate)
                okg_config_note(c, type->validate(config ?: &empty, c->file, config_path, c->e));

        spec->config_canonical = config ? okg_node_canonical(config) : strdup("");
        if (!spec->config_canonical) {
                c->oom = -ENOMEM;
                return;
        }
        spec->name = TAKE_PTR(name);
        spec->type = type;
        cfg->n_plugins++;
}

static void parse_plugins(OkgConfigCtx *c, const OkgNode *root, const PluginType *types,
                          size_t n_types, SidecarConfig *cfg) {
        _cleanup_(freep) const OkgNode **name_nodes = NULL;
        const OkgNode *seq = okg_node_get(root, "plugins");
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

/* The cross-checks between sections, once each is read. */
static void check_sidecar_config(OkgConfigCtx *c, const OkgNode *root, SidecarConfig *cfg) {
        const OkgNode *backoff = okg_config_get_opt(root, "restartBackoff");
        if (backoff && backoff->type == OKG_NODE_MAPPING &&
            (uint64_t) cfg->restart_initial_msec > (uint64_t) cfg->restart_max_sec * 1000)
                okg_errors_add(c->e, c->file, backoff, "restartBackoff",
                               "initialMilliseconds (%u) is above maxSeconds (%u s)",
                               cfg->restart_initial_msec, cfg->restart_max_sec);

        if (!cfg->game_process_name) {
                const char *pn = hot_update_process_name(root);
                if (pn) {
                        cfg->game_process_name = strdup(pn);
                        if (!cfg->game_process_name)
                                c->oom = -ENOMEM;
                }
        }

        /* Only when nothing was given: a bad gameReady.url already has its own message. */
        const OkgNode *gr = okg_config_get_opt(root, "gameReady");
        bool game_given = okg_config_get_opt(gr, "processName") || okg_config_get_opt(gr, "url");
        const char *order_key;
        const OkgNode *order_node = okg_config_item_node(root, &top_items[3], &order_key);
        if (cfg->start_order == START_ORDER_AFTER && !cfg->game_process_name && !cfg->game_url &&
            !game_given)
                okg_errors_add(c->e, c->file, order_node, order_key,
                               "After needs gameReady.processName or gameReady.url (or a "
                               "hot_update plugin's signal.processName) to tell when the game "
                               "is up");
}

int sidecar_config_parse(const OkgNode *root, const char *file, const PluginType *types,
                         size_t n_types, SidecarConfig **ret, OkgErrors *errors) {
        _cleanup_(sidecar_config_freep) SidecarConfig *cfg = NULL;
        _cleanup_(okg_config_ctx_done) OkgConfigCtx c = {};
        char what[80];
        int r;

        okg_config_ctx_init(&c, file, errors);
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
                return -EINVAL;
        }

        (void) okg_config_read_items(&c, root, NULL, top_items, cfg);
        parse_plugins(&c, root, types, n_types, cfg);
        check_sidecar_config(&c, root, cfg);

        r = okg_config_ctx_finish(&c);
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
