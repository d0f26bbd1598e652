/* okg-sidecard's state: the units it supervises (dbus-daemon, okg-storaged, the plugins) and
 * everything the event loop owns. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <signal.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "okg-bus.h"
#include "okg-config.h"
#include "okg-curl.h"
#include "okg-http-server.h"

typedef enum UnitKind {
        UNIT_BUS,
        UNIT_STORAGE,
        UNIT_PLUGIN,
} UnitKind;

typedef enum UnitState {
        UNIT_INACTIVE,    /* not started yet, or stopped on request */
        UNIT_WAITING,     /* held back (start order, or sidecarstartorder After) */
        UNIT_STARTING,    /* process running, READY=1 not received */
        UNIT_RUNNING,     /* READY=1 received */
        UNIT_STOPPING,    /* SIGTERM sent */
        UNIT_BACKOFF,     /* exited, restart scheduled */
        UNIT_FAILED,      /* exited, restart policy says no */
        _UNIT_STATE_MAX,
} UnitState;

typedef struct Manager Manager;
typedef struct Unit Unit;
typedef struct Scrape Scrape;

struct Unit {
        Manager *manager;
        UnitKind kind;
        char *name;                     /* "bus", "storage" or the plugin name */
        char *object_path;
        const PluginType *type;         /* plugins only */
        char *config_file;              /* the file the plugin reads its section from */
        char *config_canonical;         /* to tell whether a reload changed it */
        bool transient;                 /* added over the bus, not in the config file */
        int boot_order;
        size_t index;
        RestartPolicy restart_policy;

        UnitState state;
        pid_t pid;
        bool ready;
        bool start_timed_out;
        bool stop_requested;            /* stopped on purpose: do not restart */
        bool restart_requested;         /* restart once the current process exited */
        bool remove_requested;          /* forget the unit once it exited */
        bool watchdog_fired;
        bool startup_done;              /* the start sequence has dealt with this unit */
        unsigned restarts;              /* automatic restarts so far */
        unsigned failures;              /* consecutive failures, drives the back-off */
        int last_exit_code;             /* exit status, or -1 */
        int last_exit_signal;           /* terminating signal, or 0 */
        char *last_exit_text;           /* "exited 0", "killed by SIGKILL (watchdog)", ... */
        char *status_text;              /* last STATUS= sent by the daemon */
        uint64_t started_usec, ready_usec, next_restart_delay_usec;

        int print_address_fd;           /* bus only: dbus-daemon --print-address pipe */

        sd_event_source *address_source;
        sd_event_source *start_timer;
        sd_event_source *watchdog_timer;
        sd_event_source *restart_timer;
        sd_event_source *stop_timer;
};

typedef enum ManagerState {
        MANAGER_STARTING,
        MANAGER_WAITING_FOR_GAME,
        MANAGER_RUNNING,
        MANAGER_STOPPING,
        _MANAGER_STATE_MAX,
} ManagerState;

struct Manager {
        sd_event *event;
        SidecarConfig *config;
        char *config_path;
        char *config_text;              /* raw text of the applied config, to skip no-op reloads */
        char *accepted_config_path;     /* <runtime-dir>/accepted-config.yaml: config_text, which
                                         * every daemon is started on, never the live file */
        bool accepted_config_written;
        char *runtime_dir;
        char *state_dir;
        char *bus_socket;
        char *bus_address;
        char *notify_socket_path;
        char *bus_config_file;

        Unit **units;                   /* start order: bus, storage, then plugins */
        size_t n_units;

        ManagerState state;
        size_t startup_next;            /* index in units[] of the next unit to start */
        bool kill_needed;               /* a unit had to be SIGKILLed at the stop deadline */
        uint64_t stop_deadline_usec;

        OkgBus *bus;
        OkgHttpServer *health;
        Scrape *scrapes;                /* /metrics requests waiting for the daemons */
        CurlGlue *curl;

        int notify_fd;
        sd_event_source *notify_source;
        sd_event_source *inotify_source;
        sd_event_source *reload_timer;

        /* sidecarstartorder After */
        sd_event_source *gate_timer;
        uint64_t gate_deadline_usec;
        CURL *gate_probe;
        bool game_up;
        bool gate_timed_out;

        int exit_code;
};

extern const PluginType plugin_types[];
extern const size_t n_plugin_types;

const char *unit_state_to_string(UnitState s);
const char *unit_kind_to_string(UnitKind k);
const char *manager_state_to_string(ManagerState s);

int manager_new(const char *config_path, const char *runtime_dir, const char *state_dir,
                Manager **ret);
/* Reads and parses the config file. Every failure is logged and means the config is refused
 * (OKG_EXIT_CONFIG); nothing was started. Before manager_start(), which adds the plugins' units. */
int manager_load_config(Manager *m);
Manager *manager_free(Manager *m);
static inline void manager_freep(Manager **m) {
        manager_free(*m);
}
int manager_start(Manager *m);
void manager_begin_stop(Manager *m);

Unit *manager_find_unit(Manager *m, const char *name);
Unit *manager_find_unit_by_path(Manager *m, const char *path);
bool manager_is_healthy(Manager *m);
bool manager_is_ready(Manager *m);

/* Bus-driven operations; errors are negative errno with a message in *ret_message. */
int manager_reload(Manager *m, char **ret_message);
int manager_add_plugin(Manager *m, const char *name, int boot_order, const char *config_yaml,
                       char **ret_message);
int manager_remove_plugin(Manager *m, Unit *u);

/* sidecard-manager.c, called by units */
void manager_startup_continue(Manager *m);
void manager_stop_continue(Manager *m);
void manager_bus_started(Manager *m);
void manager_forget_unit(Manager *m, Unit *u);
void unit_changed(Unit *u);

/* sidecard-unit.c */
int unit_launch(Unit *u);
int unit_start(Unit *u);
int unit_stop(Unit *u);
int unit_restart(Unit *u);
void unit_terminate(Unit *u, uint64_t deadline_usec);
void unit_notify_ready(Unit *u);
int unit_watchdog_ping(Unit *u);
void unit_schedule_restart(Unit *u);
void unit_process_exited(Unit *u, const siginfo_t *si);
Unit *unit_free(Unit *u);

/* sidecard-bus.c */
int sidecard_bus_setup(sd_bus *bus, void *userdata);
void sidecard_bus_unit_added(Manager *m, Unit *u);
void sidecard_bus_unit_removed(Manager *m, Unit *u);
void sidecard_bus_manager_changed(Manager *m);

/* sidecard-health.c */
int sidecard_health_start(Manager *m);
void sidecard_health_stop(Manager *m);
