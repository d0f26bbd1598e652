/* The hot_update plugin's `config` section: parsed and validated without I/O so that
 * okg-sidecard --check-config, the daemon and the unit tests share one parser. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "hotupdated-policy.h"
#include "okg-yaml.h"

typedef enum LoadPatchType {
        LOAD_PATCH_SIGNAL,
        LOAD_PATCH_REQUEST,
} LoadPatchType;

typedef struct HotUpdateConfig {
        LoadPatchType load_patch_type;       /* loadPatchType, default signal */
        char *process_name;                  /* signal.processName (required for signal) */
        char *signal_name;                   /* signal.signalName, default "SIGHUP" */
        int signal_number;
        unsigned settle_msec;                /* signal.settleMilliseconds, default 2000 */
        char *request_address;               /* request.address, default "127.0.0.1" */
        uint16_t request_port;               /* request.port (required for request) */
        char *request_path;                  /* request.path, default "/reload" */
        char *request_method;                /* request.method, default "POST" */
        unsigned request_timeout_sec;        /* request.timeoutSeconds, default 10 */
        char *annotation_key;                /* storageConfig.inKube.annotationKey */
        char *bind_address;                  /* bindAddress, default "0.0.0.0" */
        uint16_t port;                       /* port, default 5000 */
        char *download_dir;                  /* downloadDir, default "/app/downloads" */
        bool download_dir_set;               /* downloadDir was given (not the default) */
        uint64_t max_file_size;              /* maxFileSizeBytes, default 64 MiB */
        unsigned connect_timeout_sec;        /* connectTimeoutSeconds, default 10 */
        unsigned download_timeout_sec;       /* downloadTimeoutSeconds, default 300 */
        char *ca_file;                       /* caFile, default: system bundle */
        bool allow_insecure_redirects;       /* allowInsecureRedirects: https -> http, false */
        char *auth_token_file;               /* authTokenFile, default: no auth */
        char *check_url;                     /* postReloadCheck.url */
        unsigned check_timeout_sec;          /* postReloadCheck.timeoutSeconds, default 10 */
        unsigned check_delay_msec;           /* postReloadCheck.initialDelayMilliseconds, 500 */
        unsigned client_timeout_sec;         /* clientTimeoutSeconds, default 10 */
        unsigned game_wait_sec;              /* recoveryWaitSeconds, default 60 */
        HotUpdatePolicy policy;              /* allowed/deniedDestinations, allowedSources,
                                              * allowedFileNames; see hotupdated-policy.h */
} HotUpdateConfig;

/* path is the key path of the section for messages, e.g. "plugins[1].config". node may be
 * NULL (section absent). Returns 0 and a config, or -EINVAL with errors added. */
int hotupdate_config_parse(const OkgNode *node, const char *file, const char *path,
                           OkgErrors *errors, HotUpdateConfig **ret);
HotUpdateConfig *hotupdate_config_free(HotUpdateConfig *c);
static inline void hotupdate_config_freep(HotUpdateConfig **c) {
        hotupdate_config_free(*c);
}
/* PluginType.validate for "hot_update". */
int hotupdate_config_validate(const OkgNode *node, const char *file, const char *path,
                              OkgErrors *errors);
