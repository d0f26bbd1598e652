/* okg-probed: the http_probe plugin, and the service_quality plugin when started as it. Probes the game's endpoints and maps their answers through
 * markerPolices to the GameServer's opsState via okg-storaged (docs/probe.md). */
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#include "log.h"
#include "okg-daemon.h"
#include "probed-config.h"
#include "probed-manager.h"
#include "probed-sq-manager.h"

OKG_SECTION_PARSER(parse_section, probe_config_parse);

/* The plugin name okg-sidecard starts us as: --plugin NAME, else $OKG_PLUGIN_NAME. */
static const char *plugin_name(int argc, char **argv) {
        for (int i = 1; i < argc; i++) {
                if (streq(argv[i], "--plugin") && i + 1 < argc)
                        return argv[i + 1];
                if (strncmp(argv[i], "--plugin=", 9) == 0)
                        return argv[i] + 9;
        }
        return getenv("OKG_PLUGIN_NAME");
}

static int run(int argc, char **argv) {
        _cleanup_(okg_plugin_context_done) OkgPluginContext c = {};
        _cleanup_(probe_config_freep) ProbeConfig *config = NULL;
        _cleanup_(manager_freep) Manager *m = NULL;
        int r;

        /* The same daemon runs the service_quality plugin (docs/service-quality.md). */
        if (streq_ptr(plugin_name(argc, argv), "service_quality"))
                return sq_run(argc, argv);

        r = okg_daemon_plugin_begin(argc, argv, "okg-probed", "HTTP probe plugin of okg-sidecar.",
                                    "http_probe", parse_section, &c, &config);
        if (!config)
                return r;
        r = manager_new(c.event, TAKE_PTR(config), &m);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the probes: %m");
        r = manager_start(m, NULL);
        if (r < 0)
                return r;

        (void) sd_notifyf(false, "READY=1\nSTATUS=Probing %zu endpoint(s)", m->n_endpoints);
        return okg_daemon_loop(c.event);
}

OKG_DEFINE_MAIN_FUNCTION(run);
