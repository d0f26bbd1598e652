/* okg-storaged: the only process of the suite that will hold Kubernetes credentials. This build
 * joins the private bus as io.kruise.game.Storage1 and reports readiness; the storage backends
 * are not part of this build yet and the daemon says so at start. */
#include <stdlib.h>
#include <systemd/sd-daemon.h>

#include "log.h"
#include "okg-bus.h"
#include "okg-daemon.h"

#define BUS_NAME "io.kruise.game.Storage1"

int main(int argc, char **argv) {
        _cleanup_(sd_event_unrefp) sd_event *event = NULL;
        _cleanup_(okg_bus_freep) OkgBus *bus = NULL;
        OkgDaemonArgs args;
        int r;

        r = okg_daemon_parse_args(argc, argv, "okg-storaged", "Storage daemon of okg-sidecar.", &args);
        if (r <= 0)
                return r < 0 ? 2 : 0;

        r = okg_daemon_event_new(&event);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the event loop: %m"), 1;
        r = okg_bus_new(event, NULL, BUS_NAME, NULL, NULL, NULL, &bus);
        if (r < 0)
                return log_error_errno(r, "Failed to join the private bus as %s: %m", BUS_NAME), 1;
        log_notice("Storage backends are not part of this build; only the bus name is served.");
        (void) sd_notify(false, "READY=1\nSTATUS=Bus name only (storage backends not in this build)");
        r = sd_event_loop(event);
        if (r < 0)
                return log_error_errno(r, "Event loop failed: %m"), 1;
        return 0;
}
