/* okg-probed: the http_probe plugin, and the service_quality plugin when started as it. Probes the game's endpoints and maps their answers through
 * markerPolices to the GameServer's opsState via okg-storaged (docs/probe.md). */
#include <stdlib.h>
#include <systemd/sd-daemon.h>

#include "log.h"
#include "okg-daemon.h"
#include "probed-config.h"
#include "probed-manager.h"
#include "probed-sq-manager.h"
#include "macro.h"

static int run(int argc, char **argv) {
        _cleanup_(sd_event_unrefp) sd_event *event = NULL;
        _cleanup_(okg_node_freep) OkgNode *root = NULL;
        _cleanup_(manager_freep) Manager *m = NULL;
        _cleanup_(freep) char *path = NULL;
        const OkgNode *section = NULL;
        OkgErrors errors = {};
        ProbeConfig *config = NULL;
        OkgDaemonArgs args;
        int r;

        r = okg_daemon_parse_args(argc, argv, "okg-probed", "HTTP probe plugin of okg-sidecar.",
                                  &args);
        if (r <= 0)
                return r < 0 ? 2 : 0;

        /* The same daemon runs the service_quality plugin (docs/service-quality.md). */
        if (args.plugin && streq(args.plugin, "service_quality"))
                return sq_run(&args);

        r = okg_daemon_load_section(&args, "http_probe", &root, &section, &path);
        if (r >= 0)
                r = probe_config_parse(section, args.config, path, &errors, &config);
        okg_daemon_log_errors(&errors);
        if (r < 0)
                return 3;

        r = okg_daemon_event_new(&event);
        if (r < 0) {
                probe_config_free(config);
                log_error_errno(r, "Failed to set up the event loop: %m");
                return 1;
        }
        r = manager_new(event, config, &m);
        if (r < 0) {
                log_error_errno(r, "Failed to set up the probes: %m");
                return 1;
        }
        r = manager_start(m, NULL);
        if (r < 0)
                return 1;

        (void) sd_notifyf(false, "READY=1\nSTATUS=Probing %zu endpoint(s)", m->n_endpoints);
        r = sd_event_loop(event);
        if (r < 0) {
                log_error_errno(r, "Event loop failed: %m");
                return 1;
        }
        return 0;
}

int main(int argc, char **argv) {
        return run(argc, argv);
}
