/* okg-sidecard's decisions, apart from the processes, timers and sockets that carry them out:
 * the start order and the start sequence, what a unit's exit leads to (restart policy, back-off
 * growth and reset), the start timeout, the order of the stop, and the /healthz and /readyz
 * answers. Pure: these functions read and update Unit fields and allocate at most; no I/O, no
 * clock (the caller passes "now"), no event loop. sidecard-unit.c and sidecard-manager.c call
 * them; tests/unit/test-sidecard.c drives them directly. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <json-c/json.h>
#include <systemd/sd-event.h>

#include "okg-config.h"

typedef enum UnitKind {
        UNIT_BUS,
        UNIT_STORAGE,
        UNIT_PLUGIN,
        _UNIT_KIND_MAX,
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

typedef enum ManagerState {
        MANAGER_STARTING,
        MANAGER_WAITING_FOR_GAME,
        MANAGER_RUNNING,
        MANAGER_STOPPING,
        _MANAGER_STATE_MAX,
} ManagerState;

typedef struct Manager Manager;
typedef struct Unit Unit;

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
        unsigned watchdog_pings;        /* WATCHDOG=1 seen (the timeout checks for a late one) */
        bool startup_done;              /* the start sequence has dealt with this unit */
        unsigned restarts;              /* automatic restarts so far */
        unsigned failures;              /* consecutive failures, drives the back-off */
        int last_exit_code;             /* exit status, or -1 */
        int last_exit_signal;           /* terminating signal, or 0 */
        char *last_exit_text;           /* "exited 0", "killed by SIGKILL (watchdog)", ... */
        char *status_text;              /* last STATUS= sent by the daemon */
        char *exec_failure;             /* "cannot execute PATH: why" when execve() failed */
        uint64_t started_usec, ready_usec, next_restart_delay_usec;

        int print_address_fd;           /* bus only: dbus-daemon --print-address pipe */

        sd_event_source *address_source;
        sd_event_source *start_timer;
        sd_event_source *watchdog_timer;
        sd_event_source *restart_timer;
        sd_event_source *stop_timer;
};

/* NULL for a value out of range. */
const char *unit_state_to_string(UnitState s);
const char *unit_kind_to_string(UnitKind k);
const char *manager_state_to_string(ManagerState s);

/* ---- start order and the start sequence ---- */

/* bus < storage < plugins by (bootorder, position in the file). The keys of two units of one
 * manager always differ, so sorting with it is stable. */
int sidecard_unit_compare(const Unit *a, const Unit *b);
void sidecard_sort_units(Unit **units, size_t n);

/* The start sequence has dealt with u and need not wait for it any more: ready, start timed
 * out, stopped on purpose, failed, or exited for good after it was launched. */
bool sidecard_unit_startup_settled(const Unit *u);

typedef enum StartupStep {
        STARTUP_DONE,     /* every unit is settled: the manager is running */
        STARTUP_WAIT,     /* *ret_unit was launched and is not settled yet */
        STARTUP_LAUNCH,   /* launch *ret_unit (marked startup_done already) */
        STARTUP_GATE,     /* sidecarstartorder After and the game is not up: hold the plugins */
} StartupStep;

/* One step of the start sequence over units[] (sorted), from *next on: skips settled units
 * (advancing *next), marks the next one startup_done, and says what to do with it. A unit that
 * cannot be launched is marked failed by the caller, which then advances *next itself. */
StartupStep sidecard_startup_step(Unit *const *units, size_t n, size_t *next, StartOrder order,
                                  bool game_up, Unit **ret_unit);

/* sidecarstartorder After: hold u (state waiting) until the game is up. True when u changed:
 * it had not started and was not stopped on purpose. */
bool unit_hold(Unit *u);
/* gameReady.url answered with this HTTP status (0: no answer): the game is up. */
bool sidecard_game_answer_up(long status);

/* The start timer of u ran out: true (and u is marked start_timed_out) when it still matters,
 * i.e. u runs and has not reported READY=1. */
bool unit_start_timeout_fired(Unit *u);

/* Whether u gets WATCHDOG_USEC and is watched: the suite's daemons, not dbus-daemon. */
bool unit_watchdog_wanted(const Unit *u, unsigned watchdog_sec);

/* A process was started for u at now: running, not ready, nothing timed out or fired yet. */
void unit_mark_spawned(Unit *u, pid_t pid, uint64_t now);
/* READY=1 (or dbus-daemon's address): false when u was ready already. */
bool unit_mark_ready(Unit *u, uint64_t now);

/* ---- requests ---- */

/* StartPlugin: a fresh start, the failure count and any pending stop forgotten. */
void unit_request_start(Unit *u);
/* StopPlugin: no restart, whatever the policy. */
void unit_request_stop(Unit *u);

/* ---- exits, restart policy, back-off ---- */

/* An exit that counts as a success: status 0, no signal, no watchdog kill. */
bool unit_exit_is_clean(int code, int status, bool watchdog_fired);
/* The run lasted reset_usec or longer (and reported READY=1): the back-off starts over. */
bool unit_run_was_stable(const Unit *u, uint64_t now, uint64_t reset_usec);
/* The restart policy: dbus-daemon and okg-storaged are always restarted. */
bool unit_restart_wanted(UnitKind kind, RestartPolicy policy, bool clean);

/* "exited with status N" or "killed by SIGNAME[ (core dumped)][ (watchdog)]"; NULL on OOM. */
char *unit_describe_exit(int code, int status, bool watchdog_fired);
/* Records that u's process ended (code and status are waitid()'s si_code and si_status): no
 * pid, not ready, the exit code/signal and its text. -ENOMEM leaves the text NULL, the rest recorded. */
int unit_record_exit(Unit *u, int code, int status);

typedef enum UnitExitAction {
        UNIT_EXIT_FORGET,         /* RemovePlugin: drop the unit */
        UNIT_EXIT_SUITE_STOPPING, /* the manager is stopping: go on with the stop */
        UNIT_EXIT_STOPPED,        /* stopped on purpose */
        UNIT_EXIT_RESPAWN,        /* stopped for RestartPlugin: start again now */
        UNIT_EXIT_RESTART,        /* the policy restarts it: schedule after the back-off */
        UNIT_EXIT_INACTIVE,       /* clean exit that the policy does not restart */
        UNIT_EXIT_FAILED,         /* failed exit that the policy does not restart */
} UnitExitAction;

/* What u's exit leads to, after unit_record_exit(). Updates u: the state (inactive or failed;
 * the back-off state is unit_backoff_step()'s), the request flags for a respawn, and the
 * failure count (0 for a respawn, and when the run was stable before a policy decision). */
UnitExitAction unit_exit_decide(Unit *u, ManagerState ms, bool clean, bool stable);

/* One more consecutive failure: the next delay (initial_usec, doubled per failure, capped at
 * max_usec) in u->next_restart_delay_usec and returned; u is in back-off. */
uint64_t unit_backoff_step(Unit *u, uint64_t initial_usec, uint64_t max_usec);

/* ---- reload and stop ---- */

/* A reload: the plugin u is no longer in the new config c (plugins added over the bus are not
 * in the file and stay). */
bool unit_reload_removed(const Unit *u, const SidecarConfig *c);
/* A reload: p, u's entry in the new config, changes what u runs with: its `config` section
 * differs, or the file takes over a plugin added over the bus. */
bool unit_reload_changed(const Unit *u, const PluginSpec *p);

/* A reload changed the plugin's config (or made a transient plugin a configured one): restart
 * it if it runs or is due to run again; one stopped or never started stays as it is. */
bool unit_reload_needs_restart(const Unit *u, bool changed);

/* The stop goes backwards through units[] one unit at a time. Returns the unit to terminate
 * next, or NULL: then *ret_waiting says whether a unit is still being stopped (wait for its
 * exit) or everything is down. stopping(u) tells whether u was sent SIGTERM and its stop
 * deadline has not passed. */
Unit *sidecard_stop_next(Unit *const *units, size_t n, bool (*stopping)(const Unit *u),
                         bool *ret_waiting);

/* The text of the config file a plugin added over the bus (AddPlugin) reads: a config with
 * just that plugin, its section config_yaml indented below `config:` (none when empty). */
int sidecard_transient_config_text(const char *name, const char *config_yaml, char **ret_text,
                                   size_t *ret_len);

/* ---- health ---- */

/* /healthz: every unit that must run (bus, storage, plugins with restartpolicy Always) and was
 * not stopped on purpose or held back by the start order has a process. */
bool sidecard_is_healthy(ManagerState ms, Unit *const *units, size_t n);
/* /readyz: the start sequence is complete and every unit not stopped on purpose is ready. */
bool sidecard_is_ready(ManagerState ms, Unit *const *units, size_t n);

/* The JSON body of /healthz and /readyz (ok: the answer is 200): the manager's state and, per
 * unit, name, kind, state, ready, pid, restarts and the last exit. */
json_object *sidecard_health_json(ManagerState ms, bool game_wait_timed_out, Unit *const *units,
                                  size_t n, bool ok);

/* ---- the notify socket ---- */

typedef enum NotifyKind {
        NOTIFY_UNKNOWN,           /* ignored */
        NOTIFY_READY,             /* READY=1 */
        NOTIFY_WATCHDOG,          /* WATCHDOG=1 */
        NOTIFY_WATCHDOG_TRIGGER,  /* WATCHDOG=trigger */
        NOTIFY_STOPPING,          /* STOPPING=1 */
        NOTIFY_STATUS,            /* STATUS=..., the text in *ret_value */
} NotifyKind;

/* One line of an sd_notify datagram. */
NotifyKind sidecard_notify_parse_line(const char *line, const char **ret_value);
