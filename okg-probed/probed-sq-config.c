/* The service_quality plugin's `config` section: whether it runs, and where the probes come
 * from. Everything has a default, so an empty (or absent) section is a working config. */
#define _GNU_SOURCE 1

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <stddef.h>

#include "macro.h"
#include "okg-config.h"
#include "probed-sq-config.h"

static const char *const source_names[] = {
        [SQ_SOURCE_AUTO] = "auto",
        [SQ_SOURCE_ANNOTATION] = "annotation",
        [SQ_SOURCE_FILE] = "file",
        [SQ_SOURCE_PODPROBEMARKER] = "podprobemarker",
        NULL
};

const char *sq_source_to_string(SqSource s) {
        return s >= 0 && s < (SqSource) ELEMENTSOF(source_names) - 1 ? source_names[s] : "auto";
}

SqConfig *sq_config_free(SqConfig *c) {
        if (!c)
                return NULL;
        free(c->file);
        free(c);
        return NULL;
}

#define SQ(f) offsetof(SqConfig, f)
static const OkgConfigChoice source_choice = { .noun = "source", .names = source_names };
static const OkgConfigItem section_items[] = {
        { "enabled", NULL, okg_config_read_bool, SQ(enabled) },
        { "source", NULL, okg_config_read_choice, SQ(source), .flags = OKG_CONFIG_AS_STRING,
          .data = &source_choice },
        { "file", NULL, okg_config_read_absolute_path, SQ(file), .flags = OKG_CONFIG_NONEMPTY },
        {}
};

int sq_config_parse(const OkgNode *node, const char *file, const char *path, OkgErrors *errors,
                    SqConfig **ret) {
        _cleanup_(sq_config_freep) SqConfig *cfg = NULL;
        _cleanup_(okg_config_ctx_done) OkgConfigCtx c = {};
        OkgNode empty = { .type = OKG_NODE_MAPPING };
        int r;

        okg_config_ctx_init(&c, file, errors);
        cfg = calloc(1, sizeof *cfg);
        if (!cfg)
                return -ENOMEM;
        *cfg = (SqConfig) {
                .enabled = true,
                .source = SQ_SOURCE_AUTO,
        };

        if (okg_node_is_null(node))
                node = &empty;
        (void) okg_config_read_items(&c, node, path, section_items, cfg);
        if (!cfg->file)
                cfg->file = strdup(SQ_DEFAULT_FILE);
        if (!cfg->file)
                (void) okg_config_note(&c, -ENOMEM);

        r = okg_config_ctx_finish(&c);
        if (r < 0)
                return r;
        if (ret)
                *ret = TAKE_PTR(cfg);
        return 0;
}

int sq_config_validate(const OkgNode *node, const char *file, const char *path,
                       OkgErrors *errors) {
        return sq_config_parse(node, file, path, errors, NULL);
}
