/* okg-hotupdated: the hot_update plugin. Serves POST /hot-update, downloads the file into the
 * folder shared with the game, reloads the game, records the outcome through okg-storaged, and
 * at start restores the recorded version. The work is in hotupdated-manager.c. */
#include <stdlib.h>

#include "hotupdated-config.h"
#include "hotupdated-manager.h"
#include "log.h"
#include "okg-daemon.h"

int main(int argc, char **argv) {
        _cleanup_(sd_event_unrefp) sd_event *event = NULL;
        _cleanup_(manager_freep) Manager *m = NULL;
        _cleanup_(okg_node_freep) OkgNode *root = NULL;
        _cleanup_(freep) char *path = NULL;
        const OkgNode *section = NULL;
        OkgErrors errors = {};
        HotUpdateConfig *config = NULL;
        OkgDaemonArgs args;
        int r;

        r = okg_daemon_parse_args(argc, argv, "okg-hotupdated", "Hot update plugin of okg-sidecar.", &args);
        if (r <= 0)
                return r < 0 ? 2 : 0;

        r = okg_daemon_load_section(&args, "hot_update", &root, &section, &path);
        if (r >= 0)
                r = hotupdate_config_parse(section, args.config, path, &errors, &config);
        okg_daemon_log_errors(&errors);
        if (r < 0)
                return 3;

        /* okg-sidecard's health port is the suite's own too: no download may reach it. */
        const OkgNode *hp = okg_node_get(root, "healthPort");
        long long health_port = 5001;
        if (!okg_node_is_null(hp))
                (void) okg_node_get_int(hp, args.config, "healthPort", 1, 65535, NULL, &health_port);
        hotupdate_policy_add_own_port(&config->policy, (uint16_t) health_port);
        if (hotupdate_policy_is_open(&config->policy, config->auth_token_file, config->bind_address))
                log_warning("/hot-update on %s:%u has neither authTokenFile nor allowedSources: "
                            "anyone who reaches the port can have any URL downloaded into %s. "
                            "See \"Security\" in docs/hot-update.md.",
                            config->bind_address, (unsigned) config->port, config->download_dir);

        r = okg_daemon_event_new(&event);
        if (r < 0) {
                hotupdate_config_free(config);
                log_error_errno(r, "Failed to set up the event loop: %m");
                return 1;
        }
        r = manager_new(event, config, &m);
        if (r < 0) {
                hotupdate_config_free(config);
                log_oom();
                return 1;
        }
        r = manager_start(m);
        if (r < 0)
                return 1;
        r = sd_event_loop(event);
        if (r < 0) {
                log_error_errno(r, "Event loop failed: %m");
                return 1;
        }
        return 0;
}
