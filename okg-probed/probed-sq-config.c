/* The service_quality plugin's `config` section: whether it runs, and where the probes come
 * from. Everything has a default, so an empty (or absent) section is a working config. */
#define _GNU_SOURCE 1

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "macro.h"
#include "probed-sq-config.h"

static const char *const section_keys[] = { "enabled", "source", "file", NULL };

const char *sq_source_to_string(SqSource s) {
        return s == SQ_SOURCE_ANNOTATION ? "annotation" : s == SQ_SOURCE_FILE ? "file" : "auto";
}

SqConfig *sq_config_free(SqConfig *c) {
        if (!c)
                return NULL;
        free(c->file);
        free(c);
        return NULL;
}

static OkgNode *get_opt(const OkgNode *m, const char *key) {
        OkgNode *v = okg_node_get(m, key);
        return okg_node_is_null(v) ? NULL : v;
}

int sq_config_parse(const OkgNode *node, const char *file, const char *path, OkgErrors *errors,
                    SqConfig **ret) {
        _cleanup_(sq_config_freep) SqConfig *cfg = NULL;
        OkgErrors local = {};
        OkgErrors *e = errors ?: &local;
        size_t n_before = e->n;
        OkgNode empty = { .type = OKG_NODE_MAPPING };
        const OkgNode *v;
        char what[80];
        int r = 0;

        cfg = calloc(1, sizeof *cfg);
        if (!cfg)
                return -ENOMEM;
        cfg->enabled = true;
        cfg->source = SQ_SOURCE_AUTO;

        if (okg_node_is_null(node))
                node = &empty;
        if (node->type != OKG_NODE_MAPPING) {
                okg_errors_add(e, file, node, path, "expected a mapping, got %s",
                               okg_node_describe(node, what, sizeof what));
                okg_errors_done(&local);
                return -EINVAL;
        }
        r = okg_node_check_keys(node, file, path, section_keys, e);
        if (r == -ENOMEM)
                goto out;
        r = 0;

        v = get_opt(node, "enabled");
        if (v) {
                _cleanup_(freep) char *p = okg_path_key(path, "enabled");
                if (!p) {
                        r = -ENOMEM;
                        goto out;
                }
                (void) okg_node_get_bool(v, file, p, e, &cfg->enabled);
        }

        v = get_opt(node, "source");
        if (v) {
                _cleanup_(freep) char *p = okg_path_key(path, "source"), *s = NULL;
                if (!p) {
                        r = -ENOMEM;
                        goto out;
                }
                if (okg_node_get_string(v, file, p, e, &s) >= 0) {
                        if (strcasecmp(s, "auto") == 0)
                                cfg->source = SQ_SOURCE_AUTO;
                        else if (strcasecmp(s, "annotation") == 0)
                                cfg->source = SQ_SOURCE_ANNOTATION;
                        else if (strcasecmp(s, "file") == 0)
                                cfg->source = SQ_SOURCE_FILE;
                        else
                                okg_errors_add(e, file, v, p,
                                               "must be auto, annotation or file, got \"%s\"", s);
                }
        }

        v = get_opt(node, "file");
        if (v) {
                _cleanup_(freep) char *p = okg_path_key(path, "file"), *s = NULL;
                if (!p) {
                        r = -ENOMEM;
                        goto out;
                }
                if (okg_node_get_string(v, file, p, e, &s) >= 0) {
                        if (s[0] != '/')
                                okg_errors_add(e, file, v, p, "must be an absolute path, got \"%s\"",
                                               s);
                        else
                                cfg->file = TAKE_PTR(s);
                }
        }
        if (!cfg->file) {
                cfg->file = strdup(SQ_DEFAULT_FILE);
                if (!cfg->file)
                        r = -ENOMEM;
        }

out:
        if (r == 0 && e->n > n_before)
                r = -EINVAL;
        okg_errors_sort(e, n_before);
        okg_errors_done(&local);
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
