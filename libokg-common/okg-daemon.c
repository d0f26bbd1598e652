/* Shared daemon start-up; see okg-daemon.h. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#include "log.h"
#include "macro.h"
#include "okg-build-config.h"
#include "okg-config.h"
#include "okg-daemon.h"
#include "okg-util.h"

int okg_daemon_absolute_env(void) {
        static const char *const vars[] = { "NOTIFY_SOCKET", "OKG_STATE_DIR" };

        for (size_t i = 0; i < ELEMENTSOF(vars); i++) {
                _cleanup_(freep) char *abs = NULL;
                const char *v = getenv(vars[i]);
                int r;

                if (isempty(v) || v[0] == '/' || v[0] == '@' || startswith(v, "vsock:"))
                        continue;
                r = okg_path_make_absolute(v, &abs);
                if (r < 0)
                        return r;
                log_debug("%s=%s is relative; using %s.", vars[i], v, abs);
                if (setenv(vars[i], abs, 1) < 0)
                        return -errno;
        }
        return 0;
}

int okg_daemon_parse_args(int argc, char **argv, const char *ident, const char *summary,
                          OkgDaemonArgs *ret) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'V' },
                { "config", required_argument, NULL, 'c' },
                { "plugin", required_argument, NULL, 'p' },
                {},
        };
        OkgDaemonArgs a = {
                .config = getenv("OKG_CONFIG"),
                .plugin = getenv("OKG_PLUGIN_NAME"),
        };
        int c;

        log_setup(ident);
        optind = 0;
        while ((c = getopt_long(argc, argv, "hVc:p:", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        printf("%s [--config FILE] [--plugin NAME]\n\n%s\n"
                               "Started by okg-sidecard, which passes the bus address and the\n"
                               "notify socket in the environment.\n",
                               ident, summary);
                        return 0;
                case 'V':
                        printf("%s %s\n", ident, OKG_VERSION);
                        return 0;
                case 'c':
                        a.config = optarg;
                        break;
                case 'p':
                        a.plugin = optarg;
                        break;
                default:
                        return -EINVAL;
                }
        if (optind < argc) {
                fprintf(stderr, "%s: unexpected argument '%s'\n", ident, argv[optind]);
                return -EINVAL;
        }
        if (!a.config)
                a.config = "/opt/sidecar/config.yaml";
        c = okg_daemon_absolute_env();
        if (c < 0) {
                fprintf(stderr, "%s: cannot make the paths in the environment absolute: %s\n",
                        ident, strerror(-c));
                return c;
        }
        *ret = a;
        return 1;
}

static int on_exit_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        log_info("Received %s, stopping.", strsignal((int) si->ssi_signo));
        (void) sd_notify(false, "STOPPING=1");
        return sd_event_exit(sd_event_source_get_event(s), 0);
}

int okg_daemon_event_new(sd_event **ret) {
        return okg_daemon_event_new_full(ret, NULL, NULL);
}

int okg_daemon_event_new_full(sd_event **ret, sd_event_signal_handler_t on_stop, void *userdata) {
        sd_event *e = NULL;
        sigset_t mask;
        int r;

        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return -errno;
        /* Peers that hang up must give EPIPE, not kill us. */
        (void) signal(SIGPIPE, SIG_IGN);

        r = sd_event_default(&e);
        if (r < 0)
                return r;
        if (!on_stop)
                on_stop = on_exit_signal;
        r = sd_event_add_signal(e, NULL, SIGTERM, on_stop, userdata);
        if (r >= 0)
                r = sd_event_add_signal(e, NULL, SIGINT, on_stop, userdata);
        if (r >= 0)
                r = sd_event_set_watchdog(e, true);
        if (r < 0) {
                sd_event_unref(e);
                return r;
        }
        *ret = e;
        return 0;
}

void okg_daemon_log_errors(OkgErrors *errors) {
        for (size_t i = 0; i < errors->n; i++)
                log_error("%s", errors->v[i]);
        okg_errors_done(errors);
}

void okg_plugin_context_done(OkgPluginContext *c) {
        c->root = okg_node_free(c->root);
        c->event = sd_event_unref(c->event);
}

int okg_daemon_plugin_begin(int argc, char **argv, const char *ident, const char *summary,
                            const char *default_name, OkgSectionParseFunc parse,
                            OkgPluginContext *c, void *ret_config) {
        _cleanup_(freep) char *path = NULL;
        const OkgNode *section = NULL;
        OkgErrors errors = {};
        int r;

        r = okg_daemon_parse_args(argc, argv, ident, summary, &c->args);
        if (r <= 0)
                return r < 0 ? OKG_EXIT_USAGE : OKG_EXIT_SUCCESS;
        r = okg_daemon_event_new(&c->event);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the event loop: %m");

        r = okg_yaml_parse_file(c->args.config, &c->root, &errors);
        if (r >= 0)
                r = sidecar_config_find_section(c->root, c->args.config,
                                                c->args.plugin ?: default_name, &section, &path,
                                                &errors);
        if (r >= 0)
                r = parse(section, c->args.config, path, &errors, ret_config);
        okg_daemon_log_errors(&errors);
        return r < 0 ? OKG_EXIT_CONFIG : 0;
}

OkgExitCode okg_exit_code_from_result(int r) {
        if (r < 0 || r >= _OKG_EXIT_MAX)
                return OKG_EXIT_FAILURE;
        return (OkgExitCode) r;
}

int okg_main(OkgRunFunc run, int argc, char **argv) {
        int r = run(argc, argv);
        OkgExitCode code = okg_exit_code_from_result(r);

        if (r < 0)
                log_debug_errno(r, "Exiting with status %d: %m", (int) code);
        else if ((int) code != r)
                log_error("Exiting with status %d: run() returned %d, which is no exit code.",
                          (int) code, r);
        else
                log_debug("Exiting with status %d.", (int) code);
        return (int) code;
}

int okg_daemon_loop(sd_event *e) {
        int r = sd_event_loop(e);

        if (r < 0)
                return log_error_errno(r, "Event loop failed: %m");
        return r;
}
