/* okg-sidecard: the launcher and supervisor of the okg-sidecar suite. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "macro.h"
#include "okg-build-config.h"
#include "okg-daemon.h"
#include "okg-util.h"
#include "sidecard-manager.h"

static int check_config(const char *path) {
        _cleanup_(sidecar_config_freep) SidecarConfig *c = NULL;
        OkgErrors errors = {};
        int r;

        r = sidecar_config_load(path, plugin_types, n_plugin_types, &c, &errors);
        for (size_t i = 0; i < errors.n; i++)
                fprintf(stderr, "%s\n", errors.v[i]);
        okg_errors_done(&errors);
        if (r < 0)
                return OKG_EXIT_CONFIG;
        printf("%s: valid (%zu plugin(s), restartpolicy %s, sidecarstartorder %s, healthPort %u)\n",
               path, c->n_plugins, restart_policy_to_string(c->restart_policy),
               start_order_to_string(c->start_order), c->health_port);
        return OKG_EXIT_SUCCESS;
}

/* Every path handed on to the daemons (NOTIFY_SOCKET, the bus address, the config snapshot,
 * OKG_STATE_DIR) is derived from these, so they are made absolute once, here: sd_notify()
 * ignores a relative NOTIFY_SOCKET, which would lose every READY=1 and watchdog ping. */
static int make_absolute(const char *option, const char *path, char **ret) {
        int r;

        if (isempty(path)) {
                fprintf(stderr, "okg-sidecard: %s: the path is empty\n", option);
                return -EINVAL;
        }
        r = okg_path_make_absolute(path, ret);
        if (r < 0)
                fprintf(stderr, "okg-sidecard: %s %s: cannot make the path absolute: %s\n", option,
                        path, strerror(-r));
        return r;
}

static void help(void) {
        printf("okg-sidecard [OPTIONS]\n\n"
               "Starts the okg-sidecar suite: a private dbus-daemon, okg-storaged and the plugins\n"
               "of the config in boot order, supervises them and serves /healthz and /readyz.\n\n"
               "  -c --config FILE        config file (default /opt/sidecar/config.yaml)\n"
               "     --runtime-dir DIR    sockets (default /run/okg-sidecar)\n"
               "     --state-dir DIR      persistent state (default /var/lib/okg-sidecar)\n"
               "     --check-config FILE  validate FILE, print every problem, exit 0 or 3\n"
               "  -h --help               this text\n"
               "     --version            print the version\n");
}

static int run(int argc, char **argv) {
        enum { ARG_RUNTIME_DIR = 0x100, ARG_STATE_DIR, ARG_CHECK, ARG_VERSION };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                { "config", required_argument, NULL, 'c' },
                { "runtime-dir", required_argument, NULL, ARG_RUNTIME_DIR },
                { "state-dir", required_argument, NULL, ARG_STATE_DIR },
                { "check-config", required_argument, NULL, ARG_CHECK },
                {},
        };
        _cleanup_(manager_freep) Manager *m = NULL;
        _cleanup_(freep) char *config_abs = NULL, *runtime_abs = NULL, *state_abs = NULL;
        const char *config = "/opt/sidecar/config.yaml", *runtime_dir = "/run/okg-sidecar",
                   *state_dir = "/var/lib/okg-sidecar";
        int c, r;

        log_setup("okg-sidecard");
        while ((c = getopt_long(argc, argv, "hc:", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return OKG_EXIT_SUCCESS;
                case ARG_VERSION:
                        printf("okg-sidecard %s\n", OKG_VERSION);
                        return OKG_EXIT_SUCCESS;
                case 'c':
                        config = optarg;
                        break;
                case ARG_RUNTIME_DIR:
                        runtime_dir = optarg;
                        break;
                case ARG_STATE_DIR:
                        state_dir = optarg;
                        break;
                case ARG_CHECK:
                        return check_config(optarg);
                default:
                        return OKG_EXIT_USAGE;
                }
        if (optind < argc) {
                fprintf(stderr, "okg-sidecard: unexpected argument '%s'\n", argv[optind]);
                return OKG_EXIT_USAGE;
        }

        if (make_absolute("--config", config, &config_abs) < 0 ||
            make_absolute("--runtime-dir", runtime_dir, &runtime_abs) < 0 ||
            make_absolute("--state-dir", state_dir, &state_abs) < 0)
                return OKG_EXIT_USAGE;
        /* Our own supervisor's socket, for our READY=1. */
        r = okg_daemon_absolute_env();
        if (r < 0)
                return log_error_errno(r, "Cannot make the paths in the environment absolute: %m");

        r = manager_new(config_abs, runtime_abs, state_abs, &m);
        if (r < 0)
                return log_error_errno(r, "Failed to set up: %m");
        r = manager_load_config(m);
        if (r < 0)
                return OKG_EXIT_CONFIG;
        r = manager_start(m);
        if (r < 0)
                return log_error_errno(r, "Failed to start: %m");
        /* OKG_EXIT_SUCCESS, or OKG_EXIT_KILLED when the stop had to SIGKILL a daemon. */
        return okg_daemon_loop(m->event);
}

OKG_DEFINE_MAIN_FUNCTION(run);
