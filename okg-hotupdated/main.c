/* okg-hotupdated: the hot_update plugin. Serves POST /hot-update, downloads the file into the
 * folder shared with the game, reloads the game, records the outcome through okg-storaged, and
 * at start restores the recorded version. The work is in hotupdated-manager.c. */
#include <stdlib.h>

#include "hotupdated-config.h"
#include "hotupdated-manager.h"
#include "log.h"
#include "okg-daemon.h"

OKG_SECTION_PARSER(parse_section, hotupdate_config_parse);

static int run(int argc, char **argv) {
        _cleanup_(okg_plugin_context_done) OkgPluginContext c = {};
        _cleanup_(hotupdate_config_freep) HotUpdateConfig *config = NULL;
        _cleanup_(manager_freep) Manager *m = NULL;
        int r;

        r = okg_daemon_plugin_begin(argc, argv, "okg-hotupdated", "Hot update plugin of okg-sidecar.",
                                    "hot_update", parse_section, &c, &config);
        if (!config)
                return r;

        /* okg-sidecard's health port is the suite's own too: no download may reach it. */
        const OkgNode *hp = okg_node_get(c.root, "healthPort");
        long long health_port = 5001;
        if (!okg_node_is_null(hp))
                (void) okg_node_get_int(hp, c.args.config, "healthPort", 1, 65535, NULL, &health_port);
        hotupdate_policy_add_own_port(&config->policy, (uint16_t) health_port);
        if (hotupdate_policy_is_open(&config->policy, config->auth_token_file, config->bind_address))
                log_warning("/hot-update on %s:%u has neither authTokenFile nor allowedSources: "
                            "anyone who reaches the port can have any URL downloaded into %s. "
                            "See \"Security\" in docs/hot-update.md.",
                            config->bind_address, (unsigned) config->port, config->download_dir);

        /* manager_new() owns the config from here on, whether it succeeds or not. */
        r = manager_new(c.event, TAKE_PTR(config), &m);
        if (r < 0)
                return log_error_errno(r, "Failed to set up: %m");
        r = manager_start(m);
        if (r < 0)
                return r;
        return okg_daemon_loop(c.event);
}

OKG_DEFINE_MAIN_FUNCTION(run);
