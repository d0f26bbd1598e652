/* The sidecar's config file (the proposal's ConfigMap `config.yaml`). Lowercase keys from the
 * proposal and camelCase keys from its English docs are both accepted. Each plugin's `config`
 * section is validated by that plugin's own parser, passed in as a PluginType table.
 *
 * Below it, the one config layer every section reader is built on: a parse context (OkgConfigCtx)
 * that collects errors and remembers ENOMEM, the optional-key helpers, and okg_config_read_items()
 * that reads a mapping from a table of OkgConfigItem {key, other spelling, reader, offset,
 * bounds, data}, as systemd reads unit files from its ConfigPerfItem tables.
 *
 * Adding a config section (e.g. a new plugin kind `service_quality`); okg-probed/probed-config.c
 * and okg-hotupdated/hotupdated-config.c are worked examples:
 *   1. A struct for its settings, e.g. `ServiceQualityConfig`, and, in a `<name>-config.c` built
 *      as its own static library (no I/O), a parse function that fills the defaults and then
 *      reads the section from a table:
 *
 *        static const OkgConfigItem items[] = {
 *                { "probeIntervalSeconds", NULL, okg_config_read_uint,
 *                  offsetof(ServiceQualityConfig, interval_sec), .min = 1, .max = 86400 },
 *                { "url", NULL, okg_config_read_url, offsetof(ServiceQualityConfig, url) },
 *                { "thresholds", NULL, okg_config_read_section, .data = threshold_items },
 *                {}
 *        };
 *        _cleanup_(okg_config_ctx_done) OkgConfigCtx c = {};
 *        okg_config_ctx_init(&c, file, errors);
 *        if (okg_config_read_items(&c, node ?: &empty, path, items, cfg) >= 0)
 *                ... cross-checks between keys (okg_config_missing() for required keys) ...
 *        r = okg_config_ctx_finish(&c);   // ENOMEM, else -EINVAL when errors were added
 *
 *      Every key the table names (both spellings) is a known key; any other key is reported as
 *      unknown with a suggestion. A reader gets the value only when the key is present and not
 *      null, and the key path as it names it in messages ("plugins[2].config.url"). The generic
 *      readers are declared below (strings, integers in bounds, bools, URLs, paths, names from
 *      a fixed set, sub-sections); a key that needs its own check gets its own OkgConfigReader,
 *      which may call them. `.reader = NULL` declares a key the section reads itself.
 *      The validator of step 2 is that parse function with ret == NULL.
 *   2. A PluginType entry {name, binary, bus name, validate} in the one plugin registry,
 *      okg-sidecard/sidecard-plugins.c, and the section's library in the dependencies of
 *      libsidecard_plugins (okg-sidecard/meson.build). okg-sidecard, the config unit test and
 *      the config fuzzer link that registry, so the new kind is known to all three at once.
 *   3. Good and bad examples in tests/config-good and tests/config-bad (with the exact messages
 *      in the .expected file), and the keys in docs/config.md. */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
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

/* One parse run of a section: where errors go (the caller's list, else a local one) and whether
 * memory ran out. Initialise with okg_config_ctx_init(), end with okg_config_ctx_finish(). */
typedef struct OkgConfigCtx {
        const char *file;
        OkgErrors *e;
        int oom;                /* -ENOMEM once an allocation failed */
        size_t n_before;        /* e->n when the run started */
        OkgErrors local;        /* used when the caller passed no list */
} OkgConfigCtx;

void okg_config_ctx_init(OkgConfigCtx *c, const char *file, OkgErrors *errors);
/* The epilogue of every parse: -ENOMEM when an allocation failed, else -EINVAL when this run
 * added errors, else 0. Sorts this run's errors into file order. */
int okg_config_ctx_finish(OkgConfigCtx *c);
void okg_config_ctx_done(OkgConfigCtx *c);   /* frees the local list; for _cleanup_ */

/* Records -ENOMEM in c and passes r through. */
int okg_config_note(OkgConfigCtx *c, int r);
/* A key's value, with an unquoted null counting as absent: `timeout:` with nothing after it
 * means "use the default", as in Kubernetes objects. */
OkgNode *okg_config_get_opt(const OkgNode *m, const char *key);
/* okg_path_key() that records ENOMEM. */
char *okg_config_path(OkgConfigCtx *c, const char *path, const char *key);
/* "required key is missing" at `at`, named path.key. */
void okg_config_missing(OkgConfigCtx *c, const OkgNode *at, const char *path, const char *key);
/* Adds "expected a mapping, got X" (named path) and returns false unless m is a mapping; then
 * checks its keys against keys[] (NULL: any key). */
bool okg_config_check_mapping(OkgConfigCtx *c, const OkgNode *m, const char *path,
                              const char *const *keys);

/* A string value v (present) into *ret, "" refused unless allow_empty. */
int okg_config_get_string(OkgConfigCtx *c, const OkgNode *v, const char *key_path,
                          bool allow_empty, char **ret);

/* inet_pton() accepts s as IPv4 or IPv6. */
bool okg_config_is_ip_address(const char *s);

/* The table-driven reader. */
typedef struct OkgConfigItem OkgConfigItem;

/* data of okg_config_read_checked: a string valid() accepts, else
 * "invalid NOUN X (expected EXPECTED)"; or one why() has no complaint about (NULL), else
 * "invalid NOUN X: WHY", followed by " (expected EXPECTED)" when expected is set. */
typedef struct OkgConfigCheck {
        const char *noun;
        const char *expected;
        bool (*valid)(const char *s);
        const char *(*why)(const char *s);
} OkgConfigCheck;

/* Kubernetes label and annotation keys (kube_qualified_name_check()). */
extern const OkgConfigCheck okg_config_label_key_check;
extern const OkgConfigCheck okg_config_annotation_key_check;

/* Reads the value v (present, not null) of item into the struct at base; key_path names the key
 * as spelled in the file. Returns >= 0 when stored, negative after adding an error. */
typedef int (*OkgConfigReader)(OkgConfigCtx *c, const OkgNode *v, const char *key_path,
                               const OkgConfigItem *item, void *base);

enum {
        OKG_CONFIG_NONEMPTY = 1 << 0,   /* string readers: refuse "" */
        OKG_CONFIG_AS_STRING = 1 << 1,  /* choice: read as a string first (its messages) */
};

/* data of the choice readers: the accepted names (NULL-terminated, compared without case) and
 * the noun of the message "invalid NOUN X (expected A, B or C)", "value" when NULL. */
typedef struct OkgConfigChoice {
        const char *noun;
        const char *const *names;
} OkgConfigChoice;

struct OkgConfigItem {
        const char *key;                /* the spelling the docs use first */
        const char *alt;                /* the other accepted spelling, or NULL */
        OkgConfigReader reader;         /* NULL: a known key the section reads itself */
        size_t offset;                  /* of the field in the section's struct */
        long long min, max;             /* integer readers: the accepted range */
        unsigned flags;                 /* OKG_CONFIG_* */
        const void *data;               /* reader's own: names of a choice, a sub-table, ... */
};

/* Checks that m is a mapping whose keys are all in the table (else "expected a mapping" and
 * returns -EINVAL), then calls each item's reader, in table order, for the keys present and not
 * null. Both spellings of one key given is an error. Errors from readers stay in c; returns 0. */
int okg_config_read_items(OkgConfigCtx *c, const OkgNode *m, const char *path,
                          const OkgConfigItem *items, void *base);
/* The node of item's key in m (either spelling, null counting as absent) and, in *ret_key, the
 * spelling found (the first one when neither is there). */
const OkgNode *okg_config_item_node(const OkgNode *m, const OkgConfigItem *item,
                                    const char **ret_key);

/* Readers. string: char *, "" allowed unless OKG_CONFIG_NONEMPTY. uint: unsigned in [min, max].
 * uint16, uint64: the same into those types. bool: bool. url: char *, checked as
 * okg_config_url_check() does. absolute_path: char *, must start with "/". checked: char *,
 * accepted by data's check (an OkgConfigCheck, e.g. okg_config_is_ip_address).
 * choice: int, the index of the value among data's names (an OkgConfigChoice); a non-scalar
 * is "expected A, B or C, got X", unless OKG_CONFIG_AS_STRING or OKG_CONFIG_NONEMPTY give it the
 * string reader's messages. choice_name: char *, the name as the table spells it. section: data
 * is the sub-table, read into the same base. */
int okg_config_read_string(OkgConfigCtx *c, const OkgNode *v, const char *key_path,
                           const OkgConfigItem *item, void *base);
int okg_config_read_uint(OkgConfigCtx *c, const OkgNode *v, const char *key_path,
                         const OkgConfigItem *item, void *base);
int okg_config_read_uint16(OkgConfigCtx *c, const OkgNode *v, const char *key_path,
                           const OkgConfigItem *item, void *base);
int okg_config_read_uint64(OkgConfigCtx *c, const OkgNode *v, const char *key_path,
                           const OkgConfigItem *item, void *base);
int okg_config_read_bool(OkgConfigCtx *c, const OkgNode *v, const char *key_path,
                         const OkgConfigItem *item, void *base);
int okg_config_read_url(OkgConfigCtx *c, const OkgNode *v, const char *key_path,
                        const OkgConfigItem *item, void *base);
int okg_config_read_absolute_path(OkgConfigCtx *c, const OkgNode *v, const char *key_path,
                                  const OkgConfigItem *item, void *base);
int okg_config_read_checked(OkgConfigCtx *c, const OkgNode *v, const char *key_path,
                            const OkgConfigItem *item, void *base);
/* What okg_config_read_choice() stores: the index of v among the item's names, or negative
 * after adding an error. */
int okg_config_choice_index(OkgConfigCtx *c, const OkgNode *v, const char *key_path,
                            const OkgConfigItem *item);
int okg_config_read_choice(OkgConfigCtx *c, const OkgNode *v, const char *key_path,
                           const OkgConfigItem *item, void *base);
int okg_config_read_choice_name(OkgConfigCtx *c, const OkgNode *v, const char *key_path,
                                const OkgConfigItem *item, void *base);
int okg_config_read_section(OkgConfigCtx *c, const OkgNode *v, const char *key_path,
                            const OkgConfigItem *item, void *base);
