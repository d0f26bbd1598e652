/* libFuzzer target: the config loader as okg-sidecard --check-config runs it (YAML tree, the
 * top-level keys, each plugin's section through its own validator), then each daemon's own
 * parse of its section. Any input must give either a config or error lines, never a crash. */
#include <errno.h>
#include <json-c/json.h>
#include <stdbool.h>

#include "fuzz.h"
#include "okg-config.h"
#include "okg-yaml.h"
#include "sidecard-plugins.h"

#define CANONICAL_DEPTH 256

/* What okg-hotupdated and okg-probed do at start: find their own section and parse it (the
 * validator is that parse). When okg-sidecard accepted the file (loaded), a daemon must accept
 * its section too, or --check-config would pass a config that the daemon then refuses. Every
 * kind in the registry okg-sidecard links is fuzzed, a new one included. */
static void parse_sections(const OkgNode *root, bool loaded) {
        for (size_t i = 0; i < n_plugin_types; i++) {
                OkgErrors errors = {};
                const OkgNode *section = NULL;
                char *path = NULL;

                if (sidecar_config_find_section(root, "fuzz.yaml", plugin_types[i].name, &section,
                                                &path, &errors) >= 0) {
                        if (plugin_types[i].validate(section, "fuzz.yaml", path, &errors) < 0)
                                FUZZ_ASSERT(!loaded);
                        free(path);
                }
                okg_errors_done(&errors);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        OkgErrors errors = {};
        OkgNode *root = NULL;
        SidecarConfig *config = NULL;
        bool loaded = false;
        char *canonical;
        int r;

        r = okg_yaml_parse_string((const char *) data, size, "fuzz.yaml", &root, &errors);
        if (r < 0) {
                /* A refusal always says why. */
                FUZZ_ASSERT(r != -EINVAL || errors.n > 0);
                okg_errors_done(&errors);
                return 0;
        }

        /* okg-yaml.h: the canonical text "is JSON". */
        canonical = okg_node_canonical(root);
        if (canonical) {
                json_tokener *tok = json_tokener_new_ex(CANONICAL_DEPTH);
                if (tok) {
                        json_object *o = json_tokener_parse_ex(tok, canonical, (int) strlen(canonical) + 1);
                        enum json_tokener_error je = json_tokener_get_error(tok);
                        if (je != json_tokener_error_depth) {
                                if (je != json_tokener_success)
                                        fprintf(stderr, "canonical text: %s\n", canonical);
                                FUZZ_ASSERT(je == json_tokener_success && o);
                        }
                        json_object_put(o);
                        json_tokener_free(tok);
                }
                free(canonical);
        }

        r = sidecar_config_parse(root, "fuzz.yaml", plugin_types, n_plugin_types, &config,
                                 &errors);
        if (r >= 0) {
                /* A config that loads carries no error lines and names a type per plugin. */
                FUZZ_ASSERT(errors.n == 0);
                for (size_t i = 0; i < config->n_plugins; i++)
                        FUZZ_ASSERT(config->plugins[i].type && config->plugins[i].config_canonical);
                sidecar_config_free(config);
                loaded = true;
        } else
                FUZZ_ASSERT(r != -EINVAL || errors.n > 0);
        okg_errors_done(&errors);

        parse_sections(root, loaded);
        okg_node_free(root);
        return 0;
}
