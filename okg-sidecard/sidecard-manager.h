/* okg-sidecard's manager: everything the event loop owns, and the I/O side of the units it
 * supervises (dbus-daemon, okg-storaged, the plugins). The Unit itself and the decisions about
 * it are in sidecard-state.h. */
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
#include "sidecard-plugins.h"
#include "sidecard-state.h"

typedef struct Scrape Scrape;

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
        int health_fd; /* bound and listening, until the server takes it over */
        char *health_serving; /* "ADDRESS:PORT" the server answers on, for the log */
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
void manager_drain_notify(Manager *m);
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
/* Binds the health port (m->health_fd) without loading libmicrohttpd, so a taken port fails the
 * start before anything is spawned; serve then loads it and serves on that socket. */
int sidecard_health_listen(Manager *m);
int sidecard_health_serve(Manager *m);
/* Both, at once (a reload that moves the health address). */
int sidecard_health_start(Manager *m);
void sidecard_health_stop(Manager *m);
