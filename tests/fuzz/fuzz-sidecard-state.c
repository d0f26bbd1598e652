/* libFuzzer target: okg-sidecard's decisions driven by fuzzed event sequences. The first bytes
 * make a suite (bus, storage and up to four plugins with their boot orders, file positions and
 * restart policies), each following pair of bytes is one event (a start-sequence step, READY=1,
 * an exit with a status or signal, StopPlugin, StartPlugin, RestartPlugin, RemovePlugin, a start
 * timeout, a stop step, a notify line) on one unit. After every event the answers must agree with
 * docs/sidecard.md: the order holds, the start sequence launches only what has no process and
 * was not stopped, exits follow the restart policy, back-off delays stay between the first delay
 * and the cap and grow with the failure count, and /readyz never says ready while a unit that
 * was not stopped on purpose is not. */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/wait.h>

#include "fuzz.h"
#include "macro.h"
#include "sidecard-state.h"

#define INITIAL 100000ULL
#define CAP 30000000ULL
#define MAX_UNITS 6

static bool stop_pending(const Unit *u) {
        return u->state == UNIT_STOPPING && u->pid == 1;
}

static void check_order(Unit *const *v, size_t n) {
        for (size_t i = 1; i < n; i++) {
                FUZZ_ASSERT(sidecard_unit_compare(v[i - 1], v[i]) < 0);
                FUZZ_ASSERT(sidecard_unit_compare(v[i], v[i - 1]) > 0);
        }
}

static void check_answers(Unit *const *v, size_t n) {
        bool all_ready = true;

        for (size_t i = 0; i < n; i++)
                if (!v[i]->stop_requested && !v[i]->ready)
                        all_ready = false;
        FUZZ_ASSERT(sidecard_is_ready(MANAGER_RUNNING, v, n) == all_ready);
        FUZZ_ASSERT(!sidecard_is_ready(MANAGER_STARTING, v, n));
        FUZZ_ASSERT(!sidecard_is_healthy(MANAGER_STOPPING, v, n));
        /* The bus without a process (and not stopped, and started) is always a fault. */
        if (v[0]->pid <= 0 && !v[0]->stop_requested && v[0]->startup_done &&
            v[0]->state != UNIT_WAITING)
                FUZZ_ASSERT(!sidecard_is_healthy(MANAGER_RUNNING, v, n));
}

static void on_exit_event(Unit *u, uint8_t arg, bool suite_stopping) {
        int code = arg & 1 ? CLD_KILLED : CLD_EXITED;
        int status = code == CLD_KILLED ? (arg >> 1) % 31 + 1 : (arg >> 1) % 4;
        bool stable = arg & 0x80, clean;
        unsigned failures;
        UnitExitAction a;

        if (u->pid <= 0)
                return;
        u->watchdog_fired = arg & 0x40;
        FUZZ_ASSERT(unit_record_exit(u, code, status) == 0);
        FUZZ_ASSERT(u->pid == 0 && !u->ready && u->last_exit_text);
        clean = unit_exit_is_clean(code, status, u->watchdog_fired);
        failures = u->failures;
        a = unit_exit_decide(u, suite_stopping ? MANAGER_STOPPING : MANAGER_RUNNING, clean, stable);
        FUZZ_ASSERT((a == UNIT_EXIT_FORGET) == u->remove_requested);
        switch (a) {
        case UNIT_EXIT_FORGET:
                u->remove_requested = false; /* kept by the fuzzer, as a fresh unit */
                break;
        case UNIT_EXIT_SUITE_STOPPING:
        case UNIT_EXIT_STOPPED:
                FUZZ_ASSERT(u->state == UNIT_INACTIVE);
                break;
        case UNIT_EXIT_RESPAWN:
                FUZZ_ASSERT(u->failures == 0 && !u->stop_requested && !u->restart_requested);
                unit_mark_spawned(u, 1000, 1);
                break;
        case UNIT_EXIT_RESTART: {
                uint64_t d, before = u->next_restart_delay_usec;

                FUZZ_ASSERT(unit_restart_wanted(u->kind, u->restart_policy, clean));
                FUZZ_ASSERT(u->failures == (stable ? 0 : failures));
                d = unit_backoff_step(u, INITIAL, CAP);
                FUZZ_ASSERT(d >= INITIAL && d <= CAP && u->state == UNIT_BACKOFF);
                if (!stable && failures > 0)
                        FUZZ_ASSERT(d >= before);
                if (u->failures == 1)
                        FUZZ_ASSERT(d == INITIAL);
                break;
        }
        case UNIT_EXIT_INACTIVE:
                FUZZ_ASSERT(clean && u->state == UNIT_INACTIVE && u->kind == UNIT_PLUGIN);
                FUZZ_ASSERT(u->restart_policy != RESTART_ALWAYS);
                break;
        case UNIT_EXIT_FAILED:
                FUZZ_ASSERT(!clean && u->state == UNIT_FAILED && u->kind == UNIT_PLUGIN);
                FUZZ_ASSERT(u->restart_policy == RESTART_NEVER);
                break;
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        Unit units[MAX_UNITS] = {}, *v[MAX_UNITS];
        size_t n = 2, next = 0, p = 0;
        StartOrder order;
        bool game_up = false;

        if (size < 2)
                return 0;
        order = data[p] & 1 ? START_ORDER_AFTER : START_ORDER_BEFORE;
        n += (data[p++] >> 1) % (MAX_UNITS - 1);
        for (size_t i = 0; i < n; i++) {
                Unit *u = &units[n - 1 - i]; /* reversed, so the sort has work to do */
                uint8_t b = p < size ? data[p++] : 0;

                u->kind = i == 0 ? UNIT_BUS : i == 1 ? UNIT_STORAGE : UNIT_PLUGIN;
                u->boot_order = u->kind == UNIT_PLUGIN ? b % 4 : 0;
                u->index = i;
                u->restart_policy = (RestartPolicy) ((b >> 2) % _RESTART_POLICY_MAX);
                u->last_exit_code = -1;
                v[n - 1 - i] = u;
        }
        sidecard_sort_units(v, n);
        check_order(v, n);
        FUZZ_ASSERT(v[0]->kind == UNIT_BUS && v[1]->kind == UNIT_STORAGE);

        while (p + 1 < size) {
                uint8_t op = data[p], arg = data[p + 1];
                Unit *u = v[(op >> 4) % n], *t;
                StartupStep s;
                bool waiting;
                const char *val;

                p += 2;
                switch (op & 0x0f) {
                case 0:
                        s = sidecard_startup_step(v, n, &next, order, game_up, &t);
                        FUZZ_ASSERT(next <= n);
                        if (s == STARTUP_DONE)
                                FUZZ_ASSERT(next == n && !t);
                        else if (s == STARTUP_LAUNCH) {
                                FUZZ_ASSERT(t->startup_done && t->pid <= 0 && !t->stop_requested);
                                if (arg & 1)
                                        unit_mark_spawned(t, 1000 + (pid_t) next, 1);
                                else {
                                        t->state = UNIT_FAILED;
                                        next++;
                                }
                        } else if (s == STARTUP_WAIT)
                                FUZZ_ASSERT(!sidecard_unit_startup_settled(t));
                        else
                                FUZZ_ASSERT(t->kind == UNIT_PLUGIN && order == START_ORDER_AFTER &&
                                            !game_up && !t->startup_done);
                        break;
                case 1:
                        if (u->pid > 0)
                                (void) unit_mark_ready(u, 2 + arg);
                        break;
                case 2:
                        on_exit_event(u, arg, false);
                        break;
                case 3:
                        unit_request_stop(u);
                        if (u->pid <= 0)
                                u->state = UNIT_INACTIVE;
                        else
                                u->state = UNIT_STOPPING;
                        break;
                case 4:
                        if (u->pid <= 0) {
                                unit_request_start(u);
                                unit_mark_spawned(u, 1, 1);
                        }
                        break;
                case 5:
                        if (u->pid > 0) {
                                unit_request_stop(u);
                                u->restart_requested = true;
                        }
                        break;
                case 6:
                        if (u->kind == UNIT_PLUGIN && u->pid > 0) {
                                u->remove_requested = true;
                                unit_request_stop(u);
                        }
                        break;
                case 7:
                        if (unit_start_timeout_fired(u))
                                FUZZ_ASSERT(u->pid > 0 && !u->ready && u->start_timed_out);
                        break;
                case 8:
                        game_up = true;
                        break;
                case 9:
                        t = sidecard_stop_next(v, n, stop_pending, &waiting);
                        if (t) {
                                FUZZ_ASSERT(t->pid > 0 && !waiting);
                                t->state = UNIT_STOPPING;
                                on_exit_event(t, arg, true);
                        }
                        break;
                case 10: {
                        char line[4] = { (char) arg, (char) (op >> 4), 0, 0 };
                        NotifyKind k = sidecard_notify_parse_line(line, &val);
                        FUZZ_ASSERT((k == NOTIFY_STATUS) == (val != NULL));
                        FUZZ_ASSERT(k == NOTIFY_UNKNOWN); /* no known line has two bytes */
                        break;
                }
                default:
                        FUZZ_ASSERT(unit_reload_needs_restart(u, false) == false);
                        break;
                }
                check_answers(v, n);
        }
        for (size_t i = 0; i < n; i++) {
                free(units[i].last_exit_text);
                free(units[i].status_text);
        }
        return 0;
}
