/* okg-sidecard's decisions: start order and sequence, exits and the restart policy, back-off,
 * stop order, health and readiness, notify lines. Pure: see sidecard-state.h. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>

#include "macro.h"
#include "okg-string-table.h"
#include "okg-util.h"
#include "sidecard-state.h"

static const char *const unit_state_table[_UNIT_STATE_MAX] = {
        [UNIT_INACTIVE] = "inactive", [UNIT_WAITING] = "waiting",   [UNIT_STARTING] = "starting",
        [UNIT_RUNNING] = "running",   [UNIT_STOPPING] = "stopping", [UNIT_BACKOFF] = "backoff",
        [UNIT_FAILED] = "failed",
};

DEFINE_STRING_TABLE_LOOKUP_TO_STRING(unit_state, UnitState);

static const char *const unit_kind_table[_UNIT_KIND_MAX] = {
        [UNIT_BUS] = "bus",
        [UNIT_STORAGE] = "storage",
        [UNIT_PLUGIN] = "plugin",
};

DEFINE_STRING_TABLE_LOOKUP_TO_STRING(unit_kind, UnitKind);

static const char *const manager_state_table[_MANAGER_STATE_MAX] = {
        [MANAGER_STARTING] = "starting",
        [MANAGER_WAITING_FOR_GAME] = "waiting-for-game",
        [MANAGER_RUNNING] = "running",
        [MANAGER_STOPPING] = "stopping",
};

DEFINE_STRING_TABLE_LOOKUP_TO_STRING(manager_state, ManagerState);

/* ---- start order and the start sequence ---- */

int sidecard_unit_compare(const Unit *a, const Unit *b) {
        if (a->kind != b->kind)
                return a->kind < b->kind ? -1 : 1;
        if (a->boot_order != b->boot_order)
                return a->boot_order < b->boot_order ? -1 : 1;
        if (a->index != b->index)
                return a->index < b->index ? -1 : 1;
        return 0;
}

static int unit_compare_qsort(const void *a, const void *b) {
        return sidecard_unit_compare(*(Unit *const *) a, *(Unit *const *) b);
}

void sidecard_sort_units(Unit **units, size_t n) {
        if (n > 1)
                qsort(units, n, sizeof(Unit *), unit_compare_qsort);
}

bool sidecard_unit_startup_settled(const Unit *u) {
        return u->ready || u->start_timed_out || u->stop_requested || u->state == UNIT_FAILED ||
               (u->state == UNIT_INACTIVE && u->startup_done);
}

StartupStep sidecard_startup_step(Unit *const *units, size_t n, size_t *next, StartOrder order,
                                  bool game_up, Unit **ret_unit) {
        for (; *next < n; (*next)++) {
                Unit *u = units[*next];

                *ret_unit = u;
                if (!u->startup_done) {
                        if (u->kind == UNIT_PLUGIN && order == START_ORDER_AFTER && !game_up)
                                return STARTUP_GATE;
                        u->startup_done = true;
                        /* Already running (started over the bus) or stopped on purpose: not
                         * launched, but waited for like the others. */
                        if (!u->stop_requested && u->pid <= 0)
                                return STARTUP_LAUNCH;
                }
                if (!sidecard_unit_startup_settled(u))
                        return STARTUP_WAIT;
        }
        *ret_unit = NULL;
        return STARTUP_DONE;
}

bool unit_hold(Unit *u) {
        if (u->state != UNIT_INACTIVE || u->stop_requested)
                return false;
        u->state = UNIT_WAITING;
        return true;
}

bool sidecard_game_answer_up(long status) {
        return status >= 200 && status < 400;
}

bool unit_start_timeout_fired(Unit *u) {
        if (u->ready || u->pid <= 0)
                return false;
        u->start_timed_out = true;
        return true;
}

bool unit_watchdog_wanted(const Unit *u, unsigned watchdog_sec) {
        return u->kind != UNIT_BUS && watchdog_sec > 0 && u->pid > 0;
}

void unit_mark_spawned(Unit *u, pid_t pid, uint64_t now) {
        u->pid = pid;
        u->ready = false;
        u->start_timed_out = false;
        u->watchdog_fired = false;
        u->started_usec = now;
        u->status_text = mfree(u->status_text);
        u->state = UNIT_STARTING;
}

bool unit_mark_ready(Unit *u, uint64_t now) {
        if (u->ready)
                return false;
        u->ready = true;
        u->ready_usec = now;
        if (u->state == UNIT_STARTING)
                u->state = UNIT_RUNNING;
        return true;
}

/* ---- requests ---- */

void unit_request_start(Unit *u) {
        u->stop_requested = false;
        u->restart_requested = false;
        u->failures = 0;
}

void unit_request_stop(Unit *u) {
        u->stop_requested = true;
        u->restart_requested = false;
}

/* ---- exits, restart policy, back-off ---- */

bool unit_exit_is_clean(int code, int status, bool watchdog_fired) {
        return code == CLD_EXITED && status == 0 && !watchdog_fired;
}

bool unit_run_was_stable(const Unit *u, uint64_t now, uint64_t reset_usec) {
        return u->ready_usec > 0 && u->ready_usec >= u->started_usec && now >= u->started_usec &&
               now - u->started_usec >= reset_usec;
}

bool unit_restart_wanted(UnitKind kind, RestartPolicy policy, bool clean) {
        if (kind != UNIT_PLUGIN)
                return true; /* the suite's infrastructure */
        return policy == RESTART_ALWAYS || (policy == RESTART_ON_FAILURE && !clean);
}

char *unit_describe_exit(int code, int status, bool watchdog_fired) {
        const char *sig;
        char *t = NULL;
        int r;

        if (code == CLD_EXITED)
                r = asprintf(&t, "exited with status %i", status);
        else {
                sig = sigabbrev_np(status);
                r = asprintf(&t, "killed by SIG%s%s%s", sig ?: "?",
                             code == CLD_DUMPED ? " (core dumped)" : "",
                             watchdog_fired ? " (watchdog)" : "");
        }
        /* The contents of t are undefined when asprintf fails. */
        return r < 0 ? NULL : t;
}

int unit_record_exit(Unit *u, int code, int status) {
        u->pid = 0;
        u->ready = false;
        u->last_exit_code = code == CLD_EXITED ? status : -1;
        u->last_exit_signal = code == CLD_EXITED ? 0 : status;
        free(u->last_exit_text);
        u->last_exit_text = unit_describe_exit(code, status, u->watchdog_fired);
        return u->last_exit_text ? 0 : -ENOMEM;
}

UnitExitAction unit_exit_decide(Unit *u, ManagerState ms, bool clean, bool stable) {
        if (u->remove_requested)
                return UNIT_EXIT_FORGET;
        if (ms == MANAGER_STOPPING) {
                u->state = UNIT_INACTIVE;
                return UNIT_EXIT_SUITE_STOPPING;
        }
        if (u->stop_requested) {
                u->state = UNIT_INACTIVE;
                if (!u->restart_requested)
                        return UNIT_EXIT_STOPPED;
                u->restart_requested = false;
                u->stop_requested = false;
                u->failures = 0;
                return UNIT_EXIT_RESPAWN;
        }
        if (stable)
                u->failures = 0;
        if (unit_restart_wanted(u->kind, u->restart_policy, clean))
                return UNIT_EXIT_RESTART;
        u->state = clean ? UNIT_INACTIVE : UNIT_FAILED;
        return clean ? UNIT_EXIT_INACTIVE : UNIT_EXIT_FAILED;
}

uint64_t unit_backoff_step(Unit *u, uint64_t initial_usec, uint64_t max_usec) {
        if (u->failures < UINT_MAX)
                u->failures++;
        u->next_restart_delay_usec = okg_backoff_usec(u->failures, initial_usec, max_usec);
        u->state = UNIT_BACKOFF;
        return u->next_restart_delay_usec;
}

/* ---- reload and stop ---- */

bool unit_reload_removed(const Unit *u, const SidecarConfig *c) {
        return u->kind == UNIT_PLUGIN && !u->transient && !sidecar_config_find_plugin(c, u->name);
}

bool unit_reload_changed(const Unit *u, const PluginSpec *p) {
        return u->transient || !streq_ptr(u->config_canonical, p->config_canonical);
}

bool unit_reload_needs_restart(const Unit *u, bool changed) {
        return changed && (u->pid > 0 || u->state == UNIT_BACKOFF || u->state == UNIT_FAILED);
}

Unit *sidecard_stop_next(Unit *const *units, size_t n, bool (*stopping)(const Unit *u),
                         bool *ret_waiting) {
        for (size_t i = n; i > 0; i--) {
                Unit *u = units[i - 1];

                if (u->pid <= 0)
                        continue;
                if (u->state == UNIT_STOPPING && stopping(u)) {
                        *ret_waiting = true;
                        return NULL;
                }
                *ret_waiting = false;
                return u;
        }
        *ret_waiting = false;
        return NULL;
}

int sidecard_transient_config_text(const char *name, const char *config_yaml, char **ret_text,
                                   size_t *ret_len) {
        _cleanup_(fclosep) FILE *f = NULL;
        char *buf = NULL;
        size_t len = 0;
        bool failed;

        f = open_memstream(&buf, &len);
        if (!f)
                return -ENOMEM;
        fprintf(f, "# Written by okg-sidecard for a plugin added at run time (AddPlugin).\n"
                   "plugins:\n  - name: %s\n",
                name);
        if (!isempty(config_yaml)) {
                const char *p = config_yaml;
                fputs("    config:\n", f);
                while (*p) {
                        size_t l = strcspn(p, "\n");
                        fprintf(f, "      %.*s\n", (int) l, p);
                        p += l;
                        if (*p == '\n')
                                p++;
                }
        }
        failed = ferror(f);
        /* buf and len are valid after fclose(). */
        if (fclose(TAKE_PTR(f)) != 0 || failed) {
                free(buf);
                return -ENOMEM;
        }
        *ret_text = buf;
        *ret_len = len;
        return 0;
}

/* ---- health ---- */

bool sidecard_is_healthy(ManagerState ms, Unit *const *units, size_t n) {
        if (ms == MANAGER_STOPPING)
                return false;
        for (size_t i = 0; i < n; i++) {
                const Unit *u = units[i];
                bool needed = u->kind != UNIT_PLUGIN || u->restart_policy == RESTART_ALWAYS;

                if (!needed || u->stop_requested || !u->startup_done || u->state == UNIT_WAITING)
                        continue;
                if (u->pid <= 0)
                        return false;
        }
        return true;
}

bool sidecard_is_ready(ManagerState ms, Unit *const *units, size_t n) {
        if (ms != MANAGER_RUNNING)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!units[i]->stop_requested && !units[i]->ready)
                        return false;
        return true;
}

json_object *sidecard_health_json(ManagerState ms, bool game_wait_timed_out, Unit *const *units,
                                  size_t n, bool ok) {
        json_object *o = json_object_new_object(), *list = json_object_new_array();

        json_object_object_add(o, "status", json_object_new_string(ok ? "ok" : "unavailable"));
        json_object_object_add(o, "state", json_object_new_string(manager_state_to_string(ms)));
        json_object_object_add(o, "waitingForGame",
                               json_object_new_boolean(ms == MANAGER_WAITING_FOR_GAME));
        if (game_wait_timed_out)
                json_object_object_add(o, "gameWaitTimedOut", json_object_new_boolean(true));
        for (size_t i = 0; i < n; i++) {
                const Unit *u = units[i];
                json_object *j = json_object_new_object();

                json_object_object_add(j, "name", json_object_new_string(u->name));
                json_object_object_add(j, "kind", json_object_new_string(unit_kind_to_string(u->kind)));
                json_object_object_add(j, "state", json_object_new_string(unit_state_to_string(u->state)));
                json_object_object_add(j, "ready", json_object_new_boolean(u->ready));
                json_object_object_add(j, "pid", json_object_new_int(u->pid > 0 ? u->pid : 0));
                json_object_object_add(j, "restarts", json_object_new_int((int) u->restarts));
                if (u->last_exit_text)
                        json_object_object_add(j, "lastExit", json_object_new_string(u->last_exit_text));
                json_object_array_add(list, j);
        }
        json_object_object_add(o, "units", list);
        return o;
}

/* ---- the notify socket ---- */

NotifyKind sidecard_notify_parse_line(const char *line, const char **ret_value) {
        const char *v;

        *ret_value = NULL;
        if (streq(line, "READY=1"))
                return NOTIFY_READY;
        if (streq(line, "WATCHDOG=1"))
                return NOTIFY_WATCHDOG;
        if (streq(line, "WATCHDOG=trigger"))
                return NOTIFY_WATCHDOG_TRIGGER;
        if (streq(line, "STOPPING=1"))
                return NOTIFY_STOPPING;
        if ((v = startswith(line, "STATUS="))) {
                *ret_value = v;
                return NOTIFY_STATUS;
        }
        return NOTIFY_UNKNOWN;
}
