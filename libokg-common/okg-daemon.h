/* What every daemon of the suite does the same way at start: command line, logging, the event
 * loop with SIGTERM/SIGINT handling and the watchdog, and sd_notify. */
#pragma once

#include <systemd/sd-event.h>

typedef struct OkgDaemonArgs {
        const char *config;    /* --config FILE, default $OKG_CONFIG, else /opt/sidecar/config.yaml */
        const char *plugin;    /* --plugin NAME, default $OKG_PLUGIN_NAME */
} OkgDaemonArgs;

/* Returns 1 to go on, 0 when --help/--version was handled (exit 0), negative on a usage error
 * (already printed; exit 2). */
int okg_daemon_parse_args(int argc, char **argv, const char *ident, const char *summary,
                          OkgDaemonArgs *ret);

/* Makes the paths the suite passes in the environment absolute against the working directory:
 * NOTIFY_SOCKET (sd_notify() ignores a relative one, so READY=1 and the watchdog pings would be
 * lost without a word) and OKG_STATE_DIR. Abstract ("@...") and vsock: notify addresses are
 * left alone. Called by okg_daemon_parse_args(); okg-sidecard calls it for itself. */
int okg_daemon_absolute_env(void);

/* The default event loop with SIGTERM/SIGINT ending it (sends STOPPING=1) and the watchdog
 * enabled when the supervisor asked for one. */
int okg_daemon_event_new(sd_event **ret);
/* The same, with on_stop called for SIGTERM/SIGINT instead (a daemon that drains first). */
int okg_daemon_event_new_full(sd_event **ret, sd_event_signal_handler_t on_stop, void *userdata);

#include "okg-yaml.h"

/* Logs every collected config error at error level and empties the list. */
void okg_daemon_log_errors(OkgErrors *errors);

/* For a plugin daemon: parses the config file and finds the section of the plugin named
 * args->plugin (default_name when unset). Errors are logged. */
int okg_daemon_load_section(const OkgDaemonArgs *args, const char *default_name,
                            OkgNode **ret_root, const OkgNode **ret_section, char **ret_path);
