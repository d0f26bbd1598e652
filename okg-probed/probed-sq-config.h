/* The service_quality plugin's `config` section (docs/config.md): parsed without I/O. */
#pragma once

#include <stdbool.h>

#include "okg-yaml.h"

typedef enum SqSource {
        SQ_SOURCE_AUTO,              /* the PodProbeMarkers, else the file, else the annotation */
        SQ_SOURCE_ANNOTATION,        /* the pod's kruise.io/podprobe annotation via okg-storaged */
        SQ_SOURCE_FILE,              /* a downward-API file holding that annotation's value */
        SQ_SOURCE_PODPROBEMARKER,    /* the PodProbeMarkers the pod names, followed by okg-storaged */
} SqSource;

typedef struct SqConfig {
        bool enabled;                /* enabled, default true */
        SqSource source;             /* source, default auto */
        char *file;                  /* file: the downward-API file (source file, or auto) */
} SqConfig;

#define SQ_DEFAULT_FILE "/etc/podinfo/podprobe"

int sq_config_parse(const OkgNode *node, const char *file, const char *path, OkgErrors *errors,
                    SqConfig **ret);
SqConfig *sq_config_free(SqConfig *c);
static inline void sq_config_freep(SqConfig **c) {
        sq_config_free(*c);
}
int sq_config_validate(const OkgNode *node, const char *file, const char *path,
                       OkgErrors *errors);
const char *sq_source_to_string(SqSource s);
