/* okg-hotupdated: the hot_update plugin. This build validates its config section, joins the private
 * bus as io.kruise.game.HotUpdate1 and reports readiness; the plugin's service itself is not part of
 * this build yet and the daemon says so at start. */
#include <stdlib.h>
#include <systemd/sd-daemon.h>

#include "hotupdated-config.h"
#include "log.h"
#include "okg-bus.h"
#include "okg-daemon.h"

#define BUS_NAME "io.kruise.game.HotUpdate1"

int main(int argc, char **argv) {
        _cleanup_(sd_event_unrefp) sd_event *event = NULL;
        _cleanup_(okg_bus_freep) OkgBus *bus = NULL;
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

        r = okg_daemon_event_new(&event);
        if (r < 0) {
                log_error_errno(r, "Failed to set up the event loop: %m");
                goto finish;
        }
        r = okg_bus_new(event, NULL, BUS_NAME, NULL, NULL, NULL, &bus);
        if (r < 0) {
                log_error_errno(r, "Failed to join the private bus as %s: %m", BUS_NAME);
                goto finish;
        }
        log_notice("The HTTP hot-update service (port %u) is not part of this build; only the "
                   "bus name is served.", config->port);
        (void) sd_notify(false, "READY=1\nSTATUS=Bus name only (hot-update service not in this build)");
        r = sd_event_loop(event);
        if (r < 0)
                log_error_errno(r, "Event loop failed: %m");
finish:
        hotupdate_config_free(config);
        return r < 0 ? 1 : 0;
}
