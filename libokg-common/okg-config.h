/* The sidecar's config file (the proposal's ConfigMap `config.yaml`). Lowercase keys from the
 * proposal and camelCase keys from its English docs are both accepted. Each plugin's `config`
 * section is validated by that plugin's own parser, passed in as a PluginType table. */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#include "okg-yaml.h"

typedef enum RestartPolicy {
        RESTART_ALWAYS,
        RESTART_ON_FAILURE,
        RESTART_NEVER,
        _RESTART_POLICY_MAX,
        _RESTART_POLICY_INVALID = -EINVAL,
} RestartPolicy;

typedef enum StartOrder {
        START_ORDER_BEFORE,
        START_ORDER_AFTER,
        _START_ORDER_MAX,
        _START_ORDER_INVALID = -EINVAL,
} StartOrder;

const char *restart_policy_to_string(RestartPolicy p);
RestartPolicy restart_policy_from_string(const char *s); /* case-insensitive */
const char *start_order_to_string(StartOrder o);
StartOrder start_order_from_string(const char *s);      /* case-insensitive */

/* What the loader knows about a plugin kind. validate() checks one plugin's `config` node
 * (which may be NULL when the key is absent), adds errors with positions and key paths
 * prefixed by `path` (e.g. "plugins[1].config"), and returns 0 or -EINVAL. */
typedef struct PluginType {
        const char *name;        /* "hot_update", "http_probe" */
        const char *binary;      /* "okg-hotupdated" */
        const char *bus_name;    /* "io.kruise.game.HotUpdate1" */
        int (*validate)(const OkgNode *config, const char *file, const char *path, OkgErrors *e);
} PluginType;

typedef enum StorageBackend {
        STORAGE_BACKEND_AUTO,           /* in-cluster, else $KUBECONFIG, else local */
        STORAGE_BACKEND_KUBERNETES,
        STORAGE_BACKEND_LOCAL,
        _STORAGE_BACKEND_MAX,
        _STORAGE_BACKEND_INVALID = -EINVAL,
} StorageBackend;

const char *storage_backend_to_string(StorageBackend b);
StorageBackend storage_backend_from_string(const char *s);

typedef struct PluginSpec {
        char *name;
        const PluginType *type;
        int boot_order;
        size_t index;                   /* position in the file, for tie-breaking */
        RestartPolicy restart_policy;   /* per-plugin override, else the top-level one */
        char *config_canonical;         /* okg_node_canonical() of `config`, "" when absent */
} PluginSpec;

typedef struct SidecarConfig {
        char *path;
        PluginSpec *plugins;
        size_t n_plugins;
        RestartPolicy restart_policy;   /* default Always */
        StartOrder start_order;         /* default Before */
        char *cpu, *memory;             /* resources.CPU / resources.Memory, NULL when unset */
        char *health_address;           /* default "0.0.0.0" */
        uint16_t health_port;           /* default 5001 */
        /* sidecarstartorder After: what "the game is up" means */
        char *game_process_name;        /* gameReady.processName, falls back to hot_update's */
        char *game_url;                 /* gameReady.url */
        unsigned game_timeout_sec;      /* gameReady.timeoutSeconds, default 120 */
        /* supervision tunables */
        unsigned start_timeout_sec;     /* default 30 */
        unsigned stop_timeout_sec;      /* default 10 */
        unsigned watchdog_sec;          /* default 30, 0 disables */
        /* restartBackoff: first delay, cap, and how long a run must last to start over */
        unsigned restart_initial_msec;  /* initialMilliseconds, default 100 */
        unsigned restart_max_sec;       /* maxSeconds, default 30 */
        unsigned restart_reset_sec;     /* resetAfterSeconds, default 60 */
        /* storage: okg-storaged's settings */
        StorageBackend storage_backend; /* storage.backend, default auto */
        char *result_configmap;         /* storage.resultConfigMap, default "sidecar-result" */
        char *result_namespace;         /* storage.resultNamespace, NULL = the pod's namespace */
        bool events;                    /* storage.events, default true */
        unsigned drain_timeout_sec;     /* storage.drainTimeoutSeconds, default 5 */
        unsigned record_prune_after_sec;/* storage.recordPruneAfterSeconds, default 600, 0: never */
} SidecarConfig;

/* Parses and validates the whole file, plugin sections included. On failure returns -EINVAL
 * (or the error from reading the file) with all problems found in `errors`. With types NULL,
 * plugin names and sections are not checked (for a daemon that reads only its own settings). */
int sidecar_config_load(const char *path, const PluginType *types, size_t n_types,
                        SidecarConfig **ret, OkgErrors *errors);
int sidecar_config_parse(const OkgNode *root, const char *file, const PluginType *types,
                         size_t n_types, SidecarConfig **ret, OkgErrors *errors);
SidecarConfig *sidecar_config_free(SidecarConfig *c);
static inline void sidecar_config_freep(SidecarConfig **c) {
        sidecar_config_free(*c);
}
const PluginSpec *sidecar_config_find_plugin(const SidecarConfig *c, const char *name);

/* The one check of every URL-valued config key (gameReady.url, a probe endpoint's url,
 * postReloadCheck.url, ...): okg_http_url_check(), and on refusal an error at v under key,
 * `invalid URL "...": why`, the URL shown without its credentials. Returns whether url is
 * valid. */
bool okg_config_url_check(OkgErrors *e, const char *file, const OkgNode *v, const char *key,
                          const char *url);

/* For a plugin daemon: finds the plugin entry named `name` in the file and returns its
 * `config` node (NULL when the entry has no config) and the key path used in messages.
 * -ENOENT (with an error message) when there is no such plugin. */
int sidecar_config_find_section(const OkgNode *root, const char *file, const char *name,
                                const OkgNode **ret_config, char **ret_path, OkgErrors *errors);
