/* okg-storaged: the only process of the suite with Kubernetes credentials. It journals what the
 * plugins hand it and makes the API server (or the local store) hold exactly that. */
#include <stdlib.h>

#include "log.h"
#include "okg-config.h"
#include "okg-daemon.h"
#include "storaged-manager.h"

static int run(int argc, char **argv) {
        _cleanup_(manager_freep) Manager *m = NULL;
        _cleanup_(sidecar_config_freep) SidecarConfig *config = NULL;
        OkgErrors errors = {};
        OkgDaemonArgs args;
        int r;

        r = okg_daemon_parse_args(argc, argv, "okg-storaged",
                                  "Storage daemon of okg-sidecar: pod metadata, GameServer opsState "
                                  "and result records, in Kubernetes or the local store.",
                                  &args);
        if (r <= 0)
                return r < 0 ? OKG_EXIT_USAGE : OKG_EXIT_SUCCESS;

        r = sidecar_config_load(args.config, NULL, 0, &config, &errors);
        okg_daemon_log_errors(&errors);
        if (r < 0)
                return OKG_EXIT_CONFIG;

        r = manager_new(TAKE_PTR(config), &m);
        if (r < 0)
                return log_error_errno(r, "Failed to set up: %m");
        r = manager_start(m);
        if (r < 0)
                return r;
        return okg_daemon_loop(m->event);
}

OKG_DEFINE_MAIN_FUNCTION(run);
