/* okg-storaged: the only process of the suite with Kubernetes credentials. It journals what the
 * plugins hand it and makes the API server (or the local store) hold exactly that. */
#include <stdlib.h>

#include "log.h"
#include "okg-daemon.h"
#include "storaged-manager.h"

int main(int argc, char **argv) {
        _cleanup_(manager_freep) Manager *m = NULL;
        OkgDaemonArgs args;
        int r;

        r = okg_daemon_parse_args(argc, argv, "okg-storaged",
                                  "Storage daemon of okg-sidecar: pod metadata, GameServer opsState "
                                  "and result records, in Kubernetes or the local store.",
                                  &args);
        if (r <= 0)
                return r < 0 ? 2 : 0;

        r = manager_new(args.config, &m);
        if (r == -EINVAL)
                return 3;
        if (r < 0)
                return log_error_errno(r, "Failed to set up: %m"), 1;
        r = manager_start(m);
        if (r < 0)
                return 1;
        r = sd_event_loop(m->event);
        if (r < 0)
                return log_error_errno(r, "Event loop failed: %m"), 1;
        return 0;
}
