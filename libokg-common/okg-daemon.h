/* What every daemon of the suite does the same way: the entry (run() and its exit codes), command
 * line, logging, the event loop with SIGTERM/SIGINT handling and the watchdog, sd_notify, and for
 * a plugin the reading of its config section. */
#pragma once

#include <systemd/sd-event.h>

#include "okg-yaml.h"

/* The exit status of every program of the suite: the values are documented (docs/sidecard.md,
 * docs/probe.md, docs/okgctl.md) and the service units rely on them (no restart after 2 or 3),
 * so they never change. */
typedef enum OkgExitCode {
        OKG_EXIT_SUCCESS = 0,   /* stopped on SIGTERM/SIGINT; --help, --version; config valid */
        OKG_EXIT_FAILURE = 1,   /* could not start or run */
        OKG_EXIT_USAGE = 2,     /* invalid command line */
        OKG_EXIT_CONFIG = 3,    /* invalid config; every problem is printed */
        OKG_EXIT_KILLED = 4,    /* okg-sidecard stopped, but had to SIGKILL a daemon */
        _OKG_EXIT_MAX,
} OkgExitCode;

/* A program's entry, like systemd's DEFINE_MAIN_FUNCTION: run() returns a negative errno for a
 * failure it has already logged (exit OKG_EXIT_FAILURE), or an OkgExitCode. */
typedef int (*OkgRunFunc)(int argc, char **argv);
/* The exit status for run()'s result; a value that is no OkgExitCode is a failure. */
OkgExitCode okg_exit_code_from_result(int r);
int okg_main(OkgRunFunc run, int argc, char **argv);
#define OKG_DEFINE_MAIN_FUNCTION(run)                                                             \
        int main(int argc, char **argv) {                                                         \
                return okg_main(run, argc, argv);                                                 \
        }

/* Runs the loop until sd_event_exit(): returns the code given to it (an OkgExitCode), or the
 * loop's negative errno, logged. */
int okg_daemon_loop(sd_event *e);

typedef struct OkgDaemonArgs {
        const char *config;    /* --config FILE, default $OKG_CONFIG, else /opt/sidecar/config.yaml */
        const char *plugin;    /* --plugin NAME, default $OKG_PLUGIN_NAME */
} OkgDaemonArgs;

/* Returns 1 to go on, 0 when --help/--version was handled (OKG_EXIT_SUCCESS), negative on a
 * usage error (already printed; OKG_EXIT_USAGE). */
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

/* Logs every collected config error at error level and empties the list. */
void okg_daemon_log_errors(OkgErrors *errors);

/* A plugin's section reader: a typed one (probe_config_parse(), ...) behind one signature,
 * ret_config being its own `Config **`, converted from void * by the call in the adapter
 * OKG_SECTION_PARSER defines. */
typedef int (*OkgSectionParseFunc)(const OkgNode *section, const char *file, const char *path,
                                   OkgErrors *errors, void *ret_config);
#define OKG_SECTION_PARSER(name, parse)                                                           \
        static int name(const OkgNode *section, const char *file, const char *path,              \
                        OkgErrors *errors, void *ret_config) {                                    \
                return parse(section, file, path, errors, ret_config);                            \
        }

/* What a plugin daemon's run() gets from okg_daemon_plugin_begin(). */
typedef struct OkgPluginContext {
        OkgDaemonArgs args;
        OkgNode *root;          /* the whole config file (suite-wide keys such as healthPort) */
        sd_event *event;        /* okg_daemon_event_new()'s loop */
} OkgPluginContext;
void okg_plugin_context_done(OkgPluginContext *c);

/* A plugin daemon's start, the same for every plugin: the command line, the event loop, then the
 * section of the plugin named --plugin (default_name when unset) read by parse. Returns 0 with
 * *ret_config (a T **) set when the daemon is to go on. Otherwise *ret_config stays NULL and the
 * return value is run()'s: OKG_EXIT_SUCCESS (--help, --version), OKG_EXIT_USAGE, OKG_EXIT_CONFIG
 * (every problem logged) or a negative errno (logged). */
int okg_daemon_plugin_begin(int argc, char **argv, const char *ident, const char *summary,
                            const char *default_name, OkgSectionParseFunc parse,
                            OkgPluginContext *c, void *ret_config);
