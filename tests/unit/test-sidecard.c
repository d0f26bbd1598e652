/* okg-sidecard's pure logic: start order (bootorder, file position, bus and storage first), the
 * start sequence with start timeouts, failures and the sidecarstartorder gate, what an exit
 * leads to under each restartpolicy, back-off growth, cap and reset, the stop order, and the
 * /healthz and /readyz answers with stopped, failed, held and transient plugins. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>

#include "macro.h"
#include "okg-test.h"
#include "okg-util.h"
#include "sidecard-state.h"

#define MSEC 1000ULL
#define SEC 1000000ULL

/* A small suite: bus, storage and plugins, owned by the test. */
typedef struct Suite {
        Unit *v[8];
        size_t n;
} Suite;

static Unit *suite_add(Suite *s, UnitKind kind, const char *name, int boot_order, size_t index,
                       RestartPolicy policy) {
        Unit *u = calloc(1, sizeof *u);

        ASSERT_TRUE(u && s->n < ELEMENTSOF(s->v));
        u->kind = kind;
        u->name = strdup(name);
        ASSERT_TRUE(u->name);
        u->boot_order = boot_order;
        u->index = index;
        u->restart_policy = policy;
        u->last_exit_code = -1;
        s->v[s->n++] = u;
        return u;
}

static void suite_done(Suite *s) {
        for (size_t i = 0; i < s->n; i++) {
                free(s->v[i]->name);
                free(s->v[i]->last_exit_text);
                free(s->v[i]->status_text);
                free(s->v[i]);
        }
        s->n = 0;
}

static Unit *suite_find(Suite *s, const char *name) {
        for (size_t i = 0; i < s->n; i++)
                if (streq(s->v[i]->name, name))
                        return s->v[i];
        return NULL;
}

/* bus, storage, and three plugins given in file order c, a, b with boot orders 5, 1, 5. */
static void suite_standard(Suite *s, RestartPolicy policy) {
        suite_add(s, UNIT_PLUGIN, "c", 5, 0, policy);
        suite_add(s, UNIT_PLUGIN, "a", 1, 1, policy);
        suite_add(s, UNIT_STORAGE, "storage", 0, 0, RESTART_ALWAYS);
        suite_add(s, UNIT_PLUGIN, "b", 5, 2, policy);
        suite_add(s, UNIT_BUS, "bus", 0, 0, RESTART_ALWAYS);
        sidecard_sort_units(s->v, s->n);
}

static void test_strings(void) {
        ASSERT_STREQ(unit_state_to_string(UNIT_INACTIVE), "inactive");
        ASSERT_STREQ(unit_state_to_string(UNIT_WAITING), "waiting");
        ASSERT_STREQ(unit_state_to_string(UNIT_STARTING), "starting");
        ASSERT_STREQ(unit_state_to_string(UNIT_RUNNING), "running");
        ASSERT_STREQ(unit_state_to_string(UNIT_STOPPING), "stopping");
        ASSERT_STREQ(unit_state_to_string(UNIT_BACKOFF), "backoff");
        ASSERT_STREQ(unit_state_to_string(UNIT_FAILED), "failed");
        ASSERT_TRUE(!unit_state_to_string(_UNIT_STATE_MAX));
        ASSERT_TRUE(!unit_state_to_string((UnitState) -1));
        ASSERT_STREQ(unit_kind_to_string(UNIT_BUS), "bus");
        ASSERT_STREQ(unit_kind_to_string(UNIT_STORAGE), "storage");
        ASSERT_STREQ(unit_kind_to_string(UNIT_PLUGIN), "plugin");
        ASSERT_TRUE(!unit_kind_to_string(_UNIT_KIND_MAX));
        ASSERT_STREQ(manager_state_to_string(MANAGER_STARTING), "starting");
        ASSERT_STREQ(manager_state_to_string(MANAGER_WAITING_FOR_GAME), "waiting-for-game");
        ASSERT_STREQ(manager_state_to_string(MANAGER_RUNNING), "running");
        ASSERT_STREQ(manager_state_to_string(MANAGER_STOPPING), "stopping");
        ASSERT_TRUE(!manager_state_to_string(_MANAGER_STATE_MAX));
}

/* bus, storage, then ascending bootorder; equal boot orders keep the file's order. */
static void test_order(void) {
        static const char *const want[] = { "bus", "storage", "a", "c", "b" };
        Suite s = {};

        suite_standard(&s, RESTART_ALWAYS);
        ASSERT_EQ(s.n, ELEMENTSOF(want));
        for (size_t i = 0; i < s.n; i++)
                ASSERT_STREQ(s.v[i]->name, want[i]);
        /* Sorting again changes nothing. */
        sidecard_sort_units(s.v, s.n);
        for (size_t i = 0; i < s.n; i++)
                ASSERT_STREQ(s.v[i]->name, want[i]);
        ASSERT_TRUE(sidecard_unit_compare(s.v[0], s.v[1]) < 0);
        ASSERT_TRUE(sidecard_unit_compare(s.v[3], s.v[2]) > 0);
        ASSERT_EQ(sidecard_unit_compare(s.v[2], s.v[2]), 0);
        /* A plugin with bootorder 0 still comes after storage; a negative one too. */
        s.v[2]->boot_order = -3;
        sidecard_sort_units(s.v, s.n);
        ASSERT_STREQ(s.v[1]->name, "storage");
        ASSERT_STREQ(s.v[2]->name, "a");
        /* A transient plugin (index past the file's) sorts after file plugins of its order. */
        suite_add(&s, UNIT_PLUGIN, "t", 5, SIZE_MAX / 2 + 5, RESTART_ALWAYS);
        suite_add(&s, UNIT_PLUGIN, "early", 2, SIZE_MAX / 2 + 6, RESTART_ALWAYS);
        sidecard_sort_units(s.v, s.n);
        ASSERT_STREQ(s.v[3]->name, "early");
        ASSERT_STREQ(s.v[6]->name, "t");
        suite_done(&s);
}

/* Drive the start sequence: what it launches, what it waits for. */
static StartupStep step(Suite *s, size_t *next, StartOrder order, bool game_up, Unit **u) {
        return sidecard_startup_step(s->v, s->n, next, order, game_up, u);
}

static void launched(Unit *u, pid_t pid) {
        unit_mark_spawned(u, pid, 1000 * MSEC);
        ASSERT_EQ(u->state, UNIT_STARTING);
        ASSERT_TRUE(!u->ready);
}

/* The next step launches a unit; it starts and reports READY=1. */
static Unit *launch_ready(Suite *s, size_t *next, StartOrder order, pid_t pid) {
        Unit *u;

        ASSERT_EQ(step(s, next, order, false, &u), STARTUP_LAUNCH);
        launched(u, pid);
        ASSERT_TRUE(unit_mark_ready(u, 1));
        return u;
}

static void test_startup_sequence(void) {
        static const char *const want[] = { "bus", "storage", "a", "c", "b" };
        Suite s = {};
        size_t next = 0;
        Unit *u;

        suite_standard(&s, RESTART_ALWAYS);
        for (size_t i = 0; i < ELEMENTSOF(want); i++) {
                ASSERT_EQ(step(&s, &next, START_ORDER_BEFORE, false, &u), STARTUP_LAUNCH);
                ASSERT_STREQ(u->name, want[i]);
                ASSERT_TRUE(u->startup_done);
                launched(u, 100 + (pid_t) i);
                /* Nothing else starts before this one is ready. */
                ASSERT_EQ(step(&s, &next, START_ORDER_BEFORE, false, &u), STARTUP_WAIT);
                ASSERT_STREQ(u->name, want[i]);
                ASSERT_EQ(step(&s, &next, START_ORDER_BEFORE, false, &u), STARTUP_WAIT);
                ASSERT_TRUE(unit_mark_ready(u, 2000 * MSEC));
                ASSERT_EQ(u->state, UNIT_RUNNING);
                ASSERT_TRUE(!unit_mark_ready(u, 3000 * MSEC)); /* once */
                ASSERT_EQ(u->ready_usec, 2000 * MSEC);
        }
        ASSERT_EQ(step(&s, &next, START_ORDER_BEFORE, false, &u), STARTUP_DONE);
        ASSERT_TRUE(!u);
        ASSERT_EQ(next, s.n);
        suite_done(&s);
}

/* A start timeout, a unit that exits for good, one that cannot be launched and one stopped on
 * purpose do not hold up the rest. */
static void test_startup_not_held_up(void) {
        Suite s = {};
        size_t next = 0;
        Unit *u;

        suite_standard(&s, RESTART_NEVER);
        /* bus ready, storage times out */
        ASSERT_STREQ(launch_ready(&s, &next, START_ORDER_BEFORE, 10)->name, "bus");
        ASSERT_EQ(step(&s, &next, START_ORDER_BEFORE, false, &u), STARTUP_LAUNCH);
        ASSERT_STREQ(u->name, "storage");
        launched(u, 11);
        ASSERT_EQ(step(&s, &next, START_ORDER_BEFORE, false, &u), STARTUP_WAIT);
        ASSERT_TRUE(unit_start_timeout_fired(u));
        ASSERT_TRUE(u->start_timed_out);
        ASSERT_TRUE(!u->ready);
        /* "a" exits with status 1 before READY=1; Never: failed, and the sequence goes on. */
        ASSERT_EQ(step(&s, &next, START_ORDER_BEFORE, false, &u), STARTUP_LAUNCH);
        ASSERT_STREQ(u->name, "a");
        launched(u, 12);
        ASSERT_EQ(unit_record_exit(u, CLD_EXITED, 1), 0);
        ASSERT_EQ(unit_exit_decide(u, MANAGER_STARTING, false, false), UNIT_EXIT_FAILED);
        ASSERT_EQ(u->state, UNIT_FAILED);
        /* "c" is stopped on purpose before its turn: not launched, not waited for. */
        unit_request_stop(suite_find(&s, "c"));
        /* "b" cannot be launched: the caller marks it failed and moves on. */
        ASSERT_EQ(step(&s, &next, START_ORDER_BEFORE, false, &u), STARTUP_LAUNCH);
        ASSERT_STREQ(u->name, "b");
        ASSERT_EQ(next, 4u);
        ASSERT_TRUE(suite_find(&s, "c")->startup_done);
        ASSERT_EQ(suite_find(&s, "c")->pid, 0);
        u->state = UNIT_FAILED;
        next++;
        ASSERT_EQ(step(&s, &next, START_ORDER_BEFORE, false, &u), STARTUP_DONE);

        /* Ready: storage timed out and did not report READY=1; "a" failed; "b" failed. */
        ASSERT_TRUE(!sidecard_is_ready(MANAGER_RUNNING, s.v, s.n));
        unit_mark_ready(suite_find(&s, "storage"), 5);
        /* Failed plugins are not ready either: /readyz stays 503 until they are stopped. */
        ASSERT_TRUE(!sidecard_is_ready(MANAGER_RUNNING, s.v, s.n));
        unit_request_stop(suite_find(&s, "a"));
        unit_request_stop(suite_find(&s, "b"));
        ASSERT_TRUE(sidecard_is_ready(MANAGER_RUNNING, s.v, s.n));
        suite_done(&s);
}

/* A start timeout only matters for a running unit that is not ready yet. */
static void test_start_timeout(void) {
        Suite s = {};
        Unit *u = suite_add(&s, UNIT_PLUGIN, "p", 0, 0, RESTART_ALWAYS);

        ASSERT_TRUE(!unit_start_timeout_fired(u)); /* no process */
        ASSERT_TRUE(!u->start_timed_out);
        launched(u, 42);
        unit_mark_ready(u, 7);
        ASSERT_TRUE(!unit_start_timeout_fired(u)); /* ready in time */
        ASSERT_TRUE(!u->start_timed_out);
        launched(u, 43);
        ASSERT_TRUE(unit_start_timeout_fired(u));
        ASSERT_TRUE(u->start_timed_out);
        ASSERT_TRUE(sidecard_unit_startup_settled(u));
        /* A new process starts without the mark. */
        launched(u, 44);
        ASSERT_TRUE(!u->start_timed_out);
        ASSERT_TRUE(!sidecard_unit_startup_settled(u));
        suite_done(&s);
}

/* sidecarstartorder After: bus and storage start, plugins wait for the game. */
static void test_startup_gate(void) {
        Suite s = {};
        size_t next = 0;
        Unit *u;

        suite_standard(&s, RESTART_ALWAYS);
        ASSERT_EQ(launch_ready(&s, &next, START_ORDER_AFTER, 20)->kind, UNIT_BUS);
        ASSERT_EQ(launch_ready(&s, &next, START_ORDER_AFTER, 21)->kind, UNIT_STORAGE);
        ASSERT_EQ(step(&s, &next, START_ORDER_AFTER, false, &u), STARTUP_GATE);
        ASSERT_STREQ(u->name, "a");
        ASSERT_TRUE(!u->startup_done);
        /* Held plugins do not make /healthz fail; one stopped on purpose is not held. */
        unit_request_stop(suite_find(&s, "b"));
        for (size_t i = next; i < s.n; i++)
                ASSERT_EQ(unit_hold(s.v[i]), !streq(s.v[i]->name, "b"));
        ASSERT_EQ(suite_find(&s, "a")->state, UNIT_WAITING);
        ASSERT_EQ(suite_find(&s, "b")->state, UNIT_INACTIVE);
        ASSERT_TRUE(!unit_hold(suite_find(&s, "a"))); /* once */
        ASSERT_TRUE(!unit_hold(s.v[0]));              /* running */
        ASSERT_TRUE(sidecard_is_healthy(MANAGER_WAITING_FOR_GAME, s.v, s.n));
        ASSERT_TRUE(!sidecard_is_ready(MANAGER_WAITING_FOR_GAME, s.v, s.n));
        /* Asked again, still held. */
        ASSERT_EQ(step(&s, &next, START_ORDER_AFTER, false, &u), STARTUP_GATE);
        /* What counts as an answer from gameReady.url. */
        ASSERT_TRUE(sidecard_game_answer_up(200));
        ASSERT_TRUE(sidecard_game_answer_up(302));
        ASSERT_TRUE(sidecard_game_answer_up(399));
        ASSERT_TRUE(!sidecard_game_answer_up(0));
        ASSERT_TRUE(!sidecard_game_answer_up(199));
        ASSERT_TRUE(!sidecard_game_answer_up(404));
        ASSERT_TRUE(!sidecard_game_answer_up(503));
        /* The game is up (or the wait timed out): the plugins start in order. */
        ASSERT_EQ(step(&s, &next, START_ORDER_AFTER, true, &u), STARTUP_LAUNCH);
        ASSERT_STREQ(u->name, "a");
        /* Before: never held. */
        suite_done(&s);
        suite_standard(&s, RESTART_ALWAYS);
        next = 2;
        s.v[0]->ready = s.v[1]->ready = true;
        ASSERT_EQ(step(&s, &next, START_ORDER_BEFORE, false, &u), STARTUP_LAUNCH);
        ASSERT_STREQ(u->name, "a");
        suite_done(&s);
}

static void test_exit_text(void) {
        _cleanup_(freep) char *a = unit_describe_exit(CLD_EXITED, 3, false);
        _cleanup_(freep) char *b = unit_describe_exit(CLD_KILLED, SIGKILL, true);
        _cleanup_(freep) char *c = unit_describe_exit(CLD_DUMPED, SIGSEGV, false);
        _cleanup_(freep) char *d = unit_describe_exit(CLD_KILLED, SIGTERM, false);
        _cleanup_(freep) char *e = unit_describe_exit(CLD_EXITED, 0, false);

        ASSERT_STREQ(a, "exited with status 3");
        ASSERT_STREQ(b, "killed by SIGKILL (watchdog)");
        ASSERT_STREQ(c, "killed by SIGSEGV (core dumped)");
        ASSERT_STREQ(d, "killed by SIGTERM");
        ASSERT_STREQ(e, "exited with status 0");

        ASSERT_TRUE(unit_exit_is_clean(CLD_EXITED, 0, false));
        ASSERT_TRUE(!unit_exit_is_clean(CLD_EXITED, 0, true)); /* WATCHDOG=trigger, then exit 0 */
        ASSERT_TRUE(!unit_exit_is_clean(CLD_EXITED, 1, false));
        ASSERT_TRUE(!unit_exit_is_clean(CLD_KILLED, SIGTERM, false));
        ASSERT_TRUE(!unit_exit_is_clean(CLD_DUMPED, SIGABRT, false));
}

static void test_record_exit(void) {
        Suite s = {};
        Unit *u = suite_add(&s, UNIT_PLUGIN, "p", 0, 0, RESTART_ALWAYS);

        launched(u, 50);
        unit_mark_ready(u, 5);
        ASSERT_EQ(unit_record_exit(u, CLD_EXITED, 7), 0);
        ASSERT_EQ(u->pid, 0);
        ASSERT_TRUE(!u->ready);
        ASSERT_EQ(u->last_exit_code, 7);
        ASSERT_EQ(u->last_exit_signal, 0);
        ASSERT_STREQ(u->last_exit_text, "exited with status 7");
        launched(u, 51);
        u->watchdog_fired = true;
        ASSERT_EQ(unit_record_exit(u, CLD_KILLED, SIGKILL), 0);
        ASSERT_EQ(u->last_exit_code, -1);
        ASSERT_EQ(u->last_exit_signal, SIGKILL);
        ASSERT_STREQ(u->last_exit_text, "killed by SIGKILL (watchdog)");
        /* The next process starts with a clean slate. */
        launched(u, 52);
        ASSERT_TRUE(!u->watchdog_fired);
        suite_done(&s);
}

/* The restartpolicy table of docs/sidecard.md, for plugins; the bus and storage always. */
static void test_policy(void) {
        static const struct {
                RestartPolicy policy;
                bool clean;
                UnitExitAction plugin;
                UnitState state;
        } cases[] = {
                { RESTART_ALWAYS, true, UNIT_EXIT_RESTART, UNIT_RUNNING },
                { RESTART_ALWAYS, false, UNIT_EXIT_RESTART, UNIT_RUNNING },
                { RESTART_ON_FAILURE, true, UNIT_EXIT_INACTIVE, UNIT_INACTIVE },
                { RESTART_ON_FAILURE, false, UNIT_EXIT_RESTART, UNIT_RUNNING },
                { RESTART_NEVER, true, UNIT_EXIT_INACTIVE, UNIT_INACTIVE },
                { RESTART_NEVER, false, UNIT_EXIT_FAILED, UNIT_FAILED },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                Suite s = {};
                Unit *p = suite_add(&s, UNIT_PLUGIN, "p", 0, 0, cases[i].policy);
                Unit *st = suite_add(&s, UNIT_STORAGE, "storage", 0, 0, cases[i].policy);
                Unit *bus = suite_add(&s, UNIT_BUS, "bus", 0, 0, cases[i].policy);

                ASSERT_EQ(unit_restart_wanted(UNIT_PLUGIN, cases[i].policy, cases[i].clean),
                          cases[i].plugin == UNIT_EXIT_RESTART);
                ASSERT_TRUE(unit_restart_wanted(UNIT_BUS, cases[i].policy, cases[i].clean));
                ASSERT_TRUE(unit_restart_wanted(UNIT_STORAGE, cases[i].policy, cases[i].clean));
                for (size_t j = 0; j < s.n; j++)
                        s.v[j]->state = UNIT_RUNNING;
                ASSERT_EQ(unit_exit_decide(p, MANAGER_RUNNING, cases[i].clean, false), cases[i].plugin);
                /* A restart leaves the state to the back-off step. */
                ASSERT_EQ(p->state, cases[i].state);
                ASSERT_EQ(unit_exit_decide(st, MANAGER_RUNNING, cases[i].clean, false),
                          UNIT_EXIT_RESTART);
                ASSERT_EQ(unit_exit_decide(bus, MANAGER_RUNNING, cases[i].clean, false),
                          UNIT_EXIT_RESTART);
                suite_done(&s);
        }
}

/* Requests win over the policy: remove, the suite's stop, StopPlugin, RestartPlugin. */
static void test_exit_requests(void) {
        Suite s = {};
        Unit *u = suite_add(&s, UNIT_PLUGIN, "p", 0, 0, RESTART_ALWAYS);

        u->remove_requested = true;
        u->stop_requested = true;
        ASSERT_EQ(unit_exit_decide(u, MANAGER_STOPPING, false, false), UNIT_EXIT_FORGET);
        u->remove_requested = false;

        u->state = UNIT_STOPPING;
        ASSERT_EQ(unit_exit_decide(u, MANAGER_STOPPING, false, false), UNIT_EXIT_SUITE_STOPPING);
        ASSERT_EQ(u->state, UNIT_INACTIVE);

        /* StopPlugin: stays inactive under Always, even after a failure. */
        u->failures = 3;
        unit_request_stop(u);
        u->state = UNIT_STOPPING;
        ASSERT_EQ(unit_exit_decide(u, MANAGER_RUNNING, false, true), UNIT_EXIT_STOPPED);
        ASSERT_EQ(u->state, UNIT_INACTIVE);
        ASSERT_TRUE(u->stop_requested);
        ASSERT_EQ(u->failures, 3u);

        /* RestartPlugin: stop, then start at once with the failure count reset. */
        unit_request_stop(u);
        u->restart_requested = true;
        ASSERT_EQ(unit_exit_decide(u, MANAGER_RUNNING, false, false), UNIT_EXIT_RESPAWN);
        ASSERT_TRUE(!u->stop_requested);
        ASSERT_TRUE(!u->restart_requested);
        ASSERT_EQ(u->failures, 0u);

        /* StartPlugin forgets a stop and the failures. */
        u->failures = 4;
        unit_request_stop(u);
        unit_request_start(u);
        ASSERT_TRUE(!u->stop_requested);
        ASSERT_EQ(u->failures, 0u);
        ASSERT_EQ(unit_exit_decide(u, MANAGER_RUNNING, true, false), UNIT_EXIT_RESTART);
        suite_done(&s);
}

/* 100 ms, doubled per consecutive failure, capped at 30 s; a run of 60 s or more starts over. */
static void test_backoff(void) {
        static const uint64_t want[] = { 100 * MSEC, 200 * MSEC, 400 * MSEC, 800 * MSEC,
                                         1600 * MSEC, 3200 * MSEC, 6400 * MSEC, 12800 * MSEC,
                                         25600 * MSEC, 30 * SEC, 30 * SEC };
        const uint64_t initial = 100 * MSEC, cap = 30 * SEC, reset = 60 * SEC;
        Suite s = {};
        Unit *u = suite_add(&s, UNIT_PLUGIN, "p", 0, 0, RESTART_ALWAYS);
        uint64_t now = 1000 * SEC;

        for (size_t i = 0; i < ELEMENTSOF(want); i++) {
                /* A quick crash: started 1 s ago, never ready. */
                launched(u, 60);
                u->started_usec = now - 1 * SEC;
                ASSERT_EQ(unit_record_exit(u, CLD_EXITED, 1), 0);
                ASSERT_TRUE(!unit_run_was_stable(u, now, reset));
                ASSERT_EQ(unit_exit_decide(u, MANAGER_RUNNING, false, false), UNIT_EXIT_RESTART);
                ASSERT_EQ(unit_backoff_step(u, initial, cap), want[i]);
                ASSERT_EQ(u->next_restart_delay_usec, want[i]);
                ASSERT_EQ(u->state, UNIT_BACKOFF);
                ASSERT_EQ(u->failures, i + 1);
        }

        /* Ready, but ran 59 s: not stable, the delay keeps its cap. */
        launched(u, 61);
        u->started_usec = now - 59 * SEC;
        u->ready_usec = now - 58 * SEC;
        ASSERT_TRUE(!unit_run_was_stable(u, now, reset));
        /* 60 s and ready: stable, the next delay is the first one again. */
        u->started_usec = now - 60 * SEC;
        ASSERT_TRUE(unit_run_was_stable(u, now, reset));
        ASSERT_EQ(unit_record_exit(u, CLD_KILLED, SIGSEGV), 0);
        ASSERT_EQ(unit_exit_decide(u, MANAGER_RUNNING, false, true), UNIT_EXIT_RESTART);
        ASSERT_EQ(u->failures, 0u);
        ASSERT_EQ(unit_backoff_step(u, initial, cap), 100 * MSEC);
        ASSERT_EQ(unit_backoff_step(u, initial, cap), 200 * MSEC);

        /* Ran long but never reported READY=1: not stable. */
        launched(u, 62);
        u->started_usec = now - 600 * SEC;
        u->ready_usec = 0;
        ASSERT_TRUE(!unit_run_was_stable(u, now, reset));
        /* A ready mark from a previous run does not count. */
        u->ready_usec = now - 700 * SEC;
        ASSERT_TRUE(!unit_run_was_stable(u, now, reset));

        /* A stable run under Never that failed: failed, with the count reset. */
        u->restart_policy = RESTART_NEVER;
        u->failures = 5;
        ASSERT_EQ(unit_exit_decide(u, MANAGER_RUNNING, false, true), UNIT_EXIT_FAILED);
        ASSERT_EQ(u->failures, 0u);

        /* Other figures: 1 s doubling up to a cap that is no power of two of it. */
        u->failures = 0;
        ASSERT_EQ(unit_backoff_step(u, 1 * SEC, 5 * SEC), 1 * SEC);
        ASSERT_EQ(unit_backoff_step(u, 1 * SEC, 5 * SEC), 2 * SEC);
        ASSERT_EQ(unit_backoff_step(u, 1 * SEC, 5 * SEC), 4 * SEC);
        ASSERT_EQ(unit_backoff_step(u, 1 * SEC, 5 * SEC), 5 * SEC);
        /* Many failures: the count does not wrap, the delay stays capped. */
        u->failures = UINT_MAX - 1;
        ASSERT_EQ(unit_backoff_step(u, 1 * SEC, 5 * SEC), 5 * SEC);
        ASSERT_EQ(unit_backoff_step(u, 1 * SEC, 5 * SEC), 5 * SEC);
        ASSERT_EQ(u->failures, UINT_MAX);
        suite_done(&s);
}

/* /healthz: bus, storage and Always plugins need a process; stopped, held, not yet started and
 * OnFailure/Never plugins do not count. */
static void test_health(void) {
        Suite s = {};
        Unit *a, *b, *c;

        suite_standard(&s, RESTART_ALWAYS);
        a = suite_find(&s, "a");
        b = suite_find(&s, "b");
        c = suite_find(&s, "c");
        for (size_t i = 0; i < s.n; i++) {
                s.v[i]->startup_done = true;
                launched(s.v[i], 70 + (pid_t) i);
                unit_mark_ready(s.v[i], 1);
        }
        ASSERT_TRUE(sidecard_is_healthy(MANAGER_RUNNING, s.v, s.n));
        ASSERT_TRUE(sidecard_is_ready(MANAGER_RUNNING, s.v, s.n));
        /* The start sequence not complete: healthy, not ready. */
        ASSERT_TRUE(sidecard_is_healthy(MANAGER_STARTING, s.v, s.n));
        ASSERT_TRUE(!sidecard_is_ready(MANAGER_STARTING, s.v, s.n));
        /* Stopping: neither. */
        ASSERT_TRUE(!sidecard_is_healthy(MANAGER_STOPPING, s.v, s.n));
        ASSERT_TRUE(!sidecard_is_ready(MANAGER_STOPPING, s.v, s.n));

        /* An Always plugin in back-off: unhealthy and not ready. */
        unit_record_exit(a, CLD_EXITED, 1);
        unit_exit_decide(a, MANAGER_RUNNING, false, false);
        unit_backoff_step(a, 100 * MSEC, 30 * SEC);
        ASSERT_TRUE(!sidecard_is_healthy(MANAGER_RUNNING, s.v, s.n));
        ASSERT_TRUE(!sidecard_is_ready(MANAGER_RUNNING, s.v, s.n));
        /* Restarted but not ready yet: healthy, not ready. */
        launched(a, 80);
        ASSERT_TRUE(sidecard_is_healthy(MANAGER_RUNNING, s.v, s.n));
        ASSERT_TRUE(!sidecard_is_ready(MANAGER_RUNNING, s.v, s.n));
        unit_mark_ready(a, 2);
        ASSERT_TRUE(sidecard_is_ready(MANAGER_RUNNING, s.v, s.n));

        /* StopPlugin: neither health nor readiness counts it. */
        unit_request_stop(b);
        unit_record_exit(b, CLD_KILLED, SIGTERM);
        ASSERT_EQ(unit_exit_decide(b, MANAGER_RUNNING, false, false), UNIT_EXIT_STOPPED);
        ASSERT_TRUE(sidecard_is_healthy(MANAGER_RUNNING, s.v, s.n));
        ASSERT_TRUE(sidecard_is_ready(MANAGER_RUNNING, s.v, s.n));

        /* OnFailure plugin that exited 0: inactive, health does not need it; it is not ready. */
        c->restart_policy = RESTART_ON_FAILURE;
        unit_record_exit(c, CLD_EXITED, 0);
        ASSERT_EQ(unit_exit_decide(c, MANAGER_RUNNING, true, false), UNIT_EXIT_INACTIVE);
        ASSERT_TRUE(sidecard_is_healthy(MANAGER_RUNNING, s.v, s.n));
        ASSERT_TRUE(!sidecard_is_ready(MANAGER_RUNNING, s.v, s.n));
        /* Never plugin that failed: likewise. */
        c->restart_policy = RESTART_NEVER;
        launched(c, 81);
        unit_record_exit(c, CLD_EXITED, 2);
        ASSERT_EQ(unit_exit_decide(c, MANAGER_RUNNING, false, false), UNIT_EXIT_FAILED);
        ASSERT_EQ(c->state, UNIT_FAILED);
        ASSERT_TRUE(sidecard_is_healthy(MANAGER_RUNNING, s.v, s.n));
        ASSERT_TRUE(!sidecard_is_ready(MANAGER_RUNNING, s.v, s.n));
        /* The same plugin under Always would be a fault. */
        c->restart_policy = RESTART_ALWAYS;
        ASSERT_TRUE(!sidecard_is_healthy(MANAGER_RUNNING, s.v, s.n));

        /* The bus gone: unhealthy whatever the policy says. */
        c->restart_policy = RESTART_NEVER;
        s.v[0]->restart_policy = RESTART_NEVER;
        unit_record_exit(s.v[0], CLD_KILLED, SIGKILL);
        ASSERT_TRUE(!sidecard_is_healthy(MANAGER_RUNNING, s.v, s.n));
        suite_done(&s);
}

/* Transient plugins (AddPlugin) count like the others once launched; one added while held
 * (waiting) does not make /healthz fail. */
static void test_health_transient(void) {
        Suite s = {};
        Unit *t;

        suite_add(&s, UNIT_BUS, "bus", 0, 0, RESTART_ALWAYS);
        suite_add(&s, UNIT_STORAGE, "storage", 0, 0, RESTART_ALWAYS);
        for (size_t i = 0; i < s.n; i++) {
                s.v[i]->startup_done = true;
                launched(s.v[i], 90 + (pid_t) i);
                unit_mark_ready(s.v[i], 1);
        }
        t = suite_add(&s, UNIT_PLUGIN, "t", 3, SIZE_MAX / 2 + 3, RESTART_ALWAYS);
        t->transient = true;
        t->startup_done = true;
        t->state = UNIT_WAITING;
        ASSERT_TRUE(sidecard_is_healthy(MANAGER_WAITING_FOR_GAME, s.v, s.n));
        ASSERT_TRUE(!sidecard_is_ready(MANAGER_RUNNING, s.v, s.n));
        launched(t, 99);
        ASSERT_TRUE(sidecard_is_healthy(MANAGER_RUNNING, s.v, s.n));
        ASSERT_TRUE(!sidecard_is_ready(MANAGER_RUNNING, s.v, s.n));
        unit_mark_ready(t, 2);
        ASSERT_TRUE(sidecard_is_ready(MANAGER_RUNNING, s.v, s.n));
        unit_record_exit(t, CLD_EXITED, 1);
        ASSERT_TRUE(!sidecard_is_healthy(MANAGER_RUNNING, s.v, s.n));
        /* An empty suite (nothing configured yet) is trivially both while running. */
        ASSERT_TRUE(sidecard_is_healthy(MANAGER_RUNNING, NULL, 0));
        ASSERT_TRUE(sidecard_is_ready(MANAGER_RUNNING, NULL, 0));
        suite_done(&s);
}

/* The body of /healthz and /readyz. */
static void check_json(json_object *o, const char *want) {
        ASSERT_TRUE(o);
        ASSERT_STREQ(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN), want);
        json_object_put(o);
}

static void test_health_json(void) {
        Suite s = {};
        Unit *bus = suite_add(&s, UNIT_BUS, "bus", 0, 0, RESTART_ALWAYS);
        Unit *p = suite_add(&s, UNIT_PLUGIN, "hot_update", 0, 0, RESTART_ALWAYS);

        launched(bus, 8894);
        unit_mark_ready(bus, 1);
        launched(p, 8896);
        unit_record_exit(p, CLD_KILLED, SIGKILL);
        unit_exit_decide(p, MANAGER_RUNNING, false, false);
        unit_backoff_step(p, 1, 2);
        p->restarts = 1;
        check_json(sidecard_health_json(MANAGER_RUNNING, false, s.v, s.n, false),
                   "{\"status\":\"unavailable\",\"state\":\"running\",\"waitingForGame\":false,"
                   "\"units\":[{\"name\":\"bus\",\"kind\":\"bus\",\"state\":\"running\","
                   "\"ready\":true,\"pid\":8894,\"restarts\":0},"
                   "{\"name\":\"hot_update\",\"kind\":\"plugin\",\"state\":\"backoff\","
                   "\"ready\":false,\"pid\":0,\"restarts\":1,"
                   "\"lastExit\":\"killed by SIGKILL\"}]}");
        check_json(sidecard_health_json(MANAGER_WAITING_FOR_GAME, false, s.v, 1, true),
                   "{\"status\":\"ok\",\"state\":\"waiting-for-game\",\"waitingForGame\":true,"
                   "\"units\":[{\"name\":\"bus\",\"kind\":\"bus\",\"state\":\"running\","
                   "\"ready\":true,\"pid\":8894,\"restarts\":0}]}");
        check_json(sidecard_health_json(MANAGER_RUNNING, true, NULL, 0, true),
                   "{\"status\":\"ok\",\"state\":\"running\",\"waitingForGame\":false,"
                   "\"gameWaitTimedOut\":true,\"units\":[]}");
        suite_done(&s);
}

/* A reload restarts a plugin whose config changed if it runs, is in back-off or failed. */
static void test_reload_restart(void) {
        Suite s = {};
        Unit *u = suite_add(&s, UNIT_PLUGIN, "p", 0, 0, RESTART_ALWAYS);

        ASSERT_TRUE(!unit_reload_needs_restart(u, true)); /* inactive: starts on its own */
        launched(u, 5);
        ASSERT_TRUE(unit_reload_needs_restart(u, true));
        ASSERT_TRUE(!unit_reload_needs_restart(u, false));
        unit_record_exit(u, CLD_EXITED, 1);
        unit_backoff_step(u, 1, 2);
        ASSERT_TRUE(unit_reload_needs_restart(u, true));
        u->state = UNIT_FAILED;
        ASSERT_TRUE(unit_reload_needs_restart(u, true));
        u->state = UNIT_INACTIVE;
        ASSERT_TRUE(!unit_reload_needs_restart(u, true)); /* stopped on purpose */
        suite_done(&s);
}

/* A reload: which plugins left the file, which changed; plugins added over the bus stay until
 * the file names them, and then count as changed (they are restarted on the file's section). */
static void test_reload_diff(void) {
        PluginSpec specs[] = {
                { .name = (char *) "hot_update", .config_canonical = (char *) "{a: 1}" },
                { .name = (char *) "t", .config_canonical = (char *) "" },
        };
        SidecarConfig c = { .plugins = specs, .n_plugins = ELEMENTSOF(specs) };
        SidecarConfig empty = {};
        Suite s = {};
        Unit *hu = suite_add(&s, UNIT_PLUGIN, "hot_update", 0, 0, RESTART_ALWAYS);
        Unit *gone = suite_add(&s, UNIT_PLUGIN, "http_probe", 0, 1, RESTART_ALWAYS);
        Unit *t = suite_add(&s, UNIT_PLUGIN, "t", 0, SIZE_MAX / 2, RESTART_ALWAYS);
        Unit *tx = suite_add(&s, UNIT_PLUGIN, "tx", 0, SIZE_MAX / 2 + 1, RESTART_ALWAYS);
        Unit *st = suite_add(&s, UNIT_STORAGE, "storage", 0, 0, RESTART_ALWAYS);

        t->transient = tx->transient = true;
        ASSERT_TRUE(!unit_reload_removed(hu, &c));
        ASSERT_TRUE(unit_reload_removed(gone, &c));
        ASSERT_TRUE(!unit_reload_removed(t, &c));
        ASSERT_TRUE(!unit_reload_removed(tx, &c)); /* not in the file, and never was */
        ASSERT_TRUE(!unit_reload_removed(st, &c));  /* not a plugin */
        ASSERT_TRUE(unit_reload_removed(hu, &empty));
        ASSERT_TRUE(!unit_reload_removed(tx, &empty));

        hu->config_canonical = strdup("{a: 1}");
        ASSERT_TRUE(!unit_reload_changed(hu, &specs[0]));
        free(hu->config_canonical);
        hu->config_canonical = strdup("{a: 2}");
        ASSERT_TRUE(unit_reload_changed(hu, &specs[0]));
        free(hu->config_canonical);
        hu->config_canonical = NULL;
        ASSERT_TRUE(unit_reload_changed(hu, &specs[0]));
        /* Same text, but the file takes a transient plugin over. */
        t->config_canonical = strdup("");
        ASSERT_TRUE(unit_reload_changed(t, &specs[1]));
        t->transient = false;
        ASSERT_TRUE(!unit_reload_changed(t, &specs[1]));
        free(t->config_canonical);
        suite_done(&s);
}

/* The file a plugin added over the bus reads. */
static void test_transient_config(void) {
        char *text = NULL;
        size_t len = 0;

        ASSERT_EQ(sidecard_transient_config_text("http_probe", "probes:\n  - url: http://x/\n  "
                                                 "  period: 3\nextra: true", &text, &len), 0);
        ASSERT_STREQ(text, "# Written by okg-sidecard for a plugin added at run time (AddPlugin).\n"
                           "plugins:\n"
                           "  - name: http_probe\n"
                           "    config:\n"
                           "      probes:\n"
                           "        - url: http://x/\n"
                           "          period: 3\n"
                           "      extra: true\n");
        ASSERT_EQ(len, strlen(text));
        free(text);
        /* No section: no `config:` key at all. */
        ASSERT_EQ(sidecard_transient_config_text("hot_update", "", &text, &len), 0);
        ASSERT_STREQ(text, "# Written by okg-sidecard for a plugin added at run time (AddPlugin).\n"
                           "plugins:\n  - name: hot_update\n");
        free(text);
        ASSERT_EQ(sidecard_transient_config_text("hot_update", NULL, &text, &len), 0);
        ASSERT_TRUE(!strstr(text, "config:"));
        free(text);
        /* A trailing newline and empty lines inside are kept as lines, not doubled. */
        ASSERT_EQ(sidecard_transient_config_text("p", "a: 1\n\nb: 2\n", &text, &len), 0);
        ASSERT_TRUE(strstr(text, "    config:\n      a: 1\n      \n      b: 2\n"));
        ASSERT_TRUE(len >= 2 && text[len - 1] == '\n' && text[len - 2] == '2');
        free(text);
}

/* The stop: plugins from the highest boot order down, then storage, then the bus; one at a
 * time. */
static Unit *stop_pending_unit;
static bool stop_pending(const Unit *u) {
        return u == stop_pending_unit;
}

static void test_stop_order(void) {
        static const char *const want[] = { "b", "c", "a", "storage", "bus" };
        Suite s = {};
        bool waiting;
        Unit *u;

        suite_standard(&s, RESTART_ALWAYS);
        for (size_t i = 0; i < s.n; i++)
                launched(s.v[i], 30 + (pid_t) i);
        /* "c" already exited. */
        unit_record_exit(suite_find(&s, "c"), CLD_EXITED, 0);
        for (size_t i = 0; i < ELEMENTSOF(want); i++) {
                if (streq(want[i], "c"))
                        continue;
                u = sidecard_stop_next(s.v, s.n, stop_pending, &waiting);
                ASSERT_TRUE(u);
                ASSERT_STREQ(u->name, want[i]);
                ASSERT_TRUE(!waiting);
                /* SIGTERM sent: wait for it. */
                u->state = UNIT_STOPPING;
                stop_pending_unit = u;
                ASSERT_TRUE(!sidecard_stop_next(s.v, s.n, stop_pending, &waiting));
                ASSERT_TRUE(waiting);
                /* Its deadline passed (SIGKILL sent): it is picked again, for the kill. */
                stop_pending_unit = NULL;
                ASSERT_TRUE(sidecard_stop_next(s.v, s.n, stop_pending, &waiting) == u);
                unit_record_exit(u, CLD_KILLED, SIGTERM);
                ASSERT_EQ(unit_exit_decide(u, MANAGER_STOPPING, false, false),
                          UNIT_EXIT_SUITE_STOPPING);
        }
        ASSERT_TRUE(!sidecard_stop_next(s.v, s.n, stop_pending, &waiting));
        ASSERT_TRUE(!waiting);
        suite_done(&s);
}

static void test_notify(void) {
        const char *v;

        ASSERT_EQ(sidecard_notify_parse_line("READY=1", &v), NOTIFY_READY);
        ASSERT_TRUE(!v);
        ASSERT_EQ(sidecard_notify_parse_line("WATCHDOG=1", &v), NOTIFY_WATCHDOG);
        ASSERT_EQ(sidecard_notify_parse_line("WATCHDOG=trigger", &v), NOTIFY_WATCHDOG_TRIGGER);
        ASSERT_EQ(sidecard_notify_parse_line("STOPPING=1", &v), NOTIFY_STOPPING);
        ASSERT_EQ(sidecard_notify_parse_line("STATUS=Serving 3 pods", &v), NOTIFY_STATUS);
        ASSERT_STREQ(v, "Serving 3 pods");
        ASSERT_EQ(sidecard_notify_parse_line("STATUS=", &v), NOTIFY_STATUS);
        ASSERT_STREQ(v, "");
        /* Near misses are ignored. */
        ASSERT_EQ(sidecard_notify_parse_line("READY=0", &v), NOTIFY_UNKNOWN);
        ASSERT_EQ(sidecard_notify_parse_line("READY=1 ", &v), NOTIFY_UNKNOWN);
        ASSERT_EQ(sidecard_notify_parse_line("ready=1", &v), NOTIFY_UNKNOWN);
        ASSERT_EQ(sidecard_notify_parse_line("WATCHDOG=2", &v), NOTIFY_UNKNOWN);
        ASSERT_EQ(sidecard_notify_parse_line("MAINPID=4", &v), NOTIFY_UNKNOWN);
        ASSERT_EQ(sidecard_notify_parse_line("", &v), NOTIFY_UNKNOWN);
        ASSERT_TRUE(!v);
}

static void test_watchdog_wanted(void) {
        Suite s = {};
        Unit *bus = suite_add(&s, UNIT_BUS, "bus", 0, 0, RESTART_ALWAYS);
        Unit *p = suite_add(&s, UNIT_PLUGIN, "p", 0, 0, RESTART_ALWAYS);

        ASSERT_TRUE(!unit_watchdog_wanted(p, 30)); /* no process */
        launched(bus, 1);
        launched(p, 2);
        ASSERT_TRUE(!unit_watchdog_wanted(bus, 30));
        ASSERT_TRUE(unit_watchdog_wanted(p, 30));
        ASSERT_TRUE(!unit_watchdog_wanted(p, 0));
        suite_done(&s);
}

int main(void) {
        test_strings();
        test_order();
        test_startup_sequence();
        test_startup_not_held_up();
        test_start_timeout();
        test_startup_gate();
        test_exit_text();
        test_record_exit();
        test_policy();
        test_exit_requests();
        test_backoff();
        test_health();
        test_health_transient();
        test_health_json();
        test_reload_restart();
        test_reload_diff();
        test_transient_config();
        test_stop_order();
        test_notify();
        test_watchdog_wanted();
        printf("sidecard: all tests passed\n");
        return 0;
}
