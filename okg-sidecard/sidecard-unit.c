/* One supervised process: spawning, readiness, watchdog, exit handling, restart with back-off,
 * and stopping. What each event leads to is decided in sidecard-state.c. */
#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"
#include "okg-event.h"
#include "okg-util.h"
#include "sidecard-manager.h"

extern char **environ;

static void unit_log_state(Unit *u, UnitState old) {
        if (u->state != old)
                log_debug("%s: %s -> %s", u->name, unit_state_to_string(old),
                          unit_state_to_string(u->state));
}

static void unit_set_state(Unit *u, UnitState s) {
        UnitState old = u->state;
        u->state = s;
        unit_log_state(u, old);
}

/* The environment for a child: ours minus anything describing our own supervisor, plus the
 * suite's. Built before the clone so the child only makes system calls. */
static char **unit_build_env(Unit *u) {
        static const char *const drop[] = {
                "NOTIFY_SOCKET=", "WATCHDOG_USEC=", "WATCHDOG_PID=", "LISTEN_FDS=", "LISTEN_PID=",
                "LISTEN_FDNAMES=", "OKG_BUS_ADDRESS=", "OKG_CONFIG=", "OKG_PLUGIN_NAME=",
                "OKG_RUNTIME_DIR=", "OKG_STATE_DIR=", "OKG_SIDECARD_PID=",
        };
        Manager *m = u->manager;
        size_t n = 0, k = 0;
        char **env;

        for (char **e = environ; *e; e++)
                n++;
        env = calloc(n + 10, sizeof(char *));
        if (!env)
                return NULL;
        for (char **e = environ; *e; e++) {
                bool skip = false;
                for (size_t i = 0; i < ELEMENTSOF(drop); i++)
                        if (startswith(*e, drop[i]))
                                skip = true;
                if (skip)
                        continue;
                env[k] = strdup(*e);
                if (!env[k])
                        goto oom;
                k++;
        }
#define ADD(...)                                              \
        do {                                                  \
                if (asprintf(&env[k], __VA_ARGS__) < 0) {     \
                        env[k] = NULL;                        \
                        goto oom;                             \
                }                                             \
                k++;                                          \
        } while (0)
        ADD("NOTIFY_SOCKET=%s", m->notify_socket_path);
        ADD("OKG_RUNTIME_DIR=%s", m->runtime_dir);
        ADD("OKG_STATE_DIR=%s", m->state_dir);
        ADD("OKG_SIDECARD_PID=%i", (int) getpid());
        if (u->kind != UNIT_BUS) {
                ADD("OKG_BUS_ADDRESS=%s", m->bus_address);
                ADD("OKG_CONFIG=%s", u->config_file ?: m->accepted_config_path);
                if (m->config->watchdog_sec > 0)
                        ADD("WATCHDOG_USEC=%llu",
                            (unsigned long long) m->config->watchdog_sec * USEC_PER_SEC);
        }
        if (u->kind == UNIT_PLUGIN)
                ADD("OKG_PLUGIN_NAME=%s", u->name);
#undef ADD
        env[k] = NULL;
        return env;
oom:
        strv_free(env);
        return NULL;
}

static int unit_build_argv(Unit *u, char ***ret) {
        Manager *m = u->manager;
        _cleanup_(freep) char *exe = NULL;
        char **argv = calloc(8, sizeof(char *));
        int r = 0;

        if (!argv)
                return -ENOMEM;
        switch (u->kind) {
        case UNIT_BUS: {
                const char *dbus = getenv("OKG_DBUS_DAEMON") ?: "/usr/bin/dbus-daemon";
                argv[0] = strdup(dbus);
                argv[1] = strdup("--nofork");
                argv[2] = strdup("--nopidfile");
                argv[3] = strdup("--nosyslog");
                if (asprintf(&argv[4], "--config-file=%s", m->bus_config_file) < 0)
                        argv[4] = NULL;
                if (asprintf(&argv[5], "--address=unix:path=%s", m->bus_socket) < 0)
                        argv[5] = NULL;
                argv[6] = strdup("--print-address=3");
                break;
        }
        case UNIT_STORAGE:
        case UNIT_PLUGIN:
                r = okg_find_executable(u->kind == UNIT_STORAGE ? "okg-storaged" : u->type->binary,
                                        &exe);
                if (r < 0) {
                        strv_free(argv);
                        return r;
                }
                argv[0] = TAKE_PTR(exe);
                argv[1] = strdup("--config");
                argv[2] = strdup(u->config_file ?: m->accepted_config_path);
                if (u->kind == UNIT_PLUGIN) {
                        argv[3] = strdup("--plugin");
                        argv[4] = strdup(u->name);
                }
                break;
        default:
                strv_free(argv);
                return -EINVAL;
        }
        for (size_t i = 0; i < (u->kind == UNIT_BUS ? 7u : u->kind == UNIT_PLUGIN ? 5u : 3u); i++)
                if (!argv[i]) {
                        strv_free(argv);
                        return -ENOMEM;
                }
        *ret = argv;
        return 0;
}

static int on_start_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        Unit *u = userdata;

        if (!unit_start_timeout_fired(u))
                return 0;
        log_warning("%s did not report READY=1 within %u s; starting the next daemon anyway.",
                    u->name, u->manager->config->start_timeout_sec);
        unit_changed(u);
        manager_startup_continue(u->manager);
        return 0;
}

static int on_watchdog_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        Unit *u = userdata;
        unsigned pings = u->watchdog_pings;

        /* A ping that is waiting in the notify socket counts (it re-arms the timer). */
        manager_drain_notify(u->manager);
        if (u->pid <= 0 || u->watchdog_pings != pings)
                return 0;
        log_error("%s (PID %i) missed its watchdog (%u s); killing it.", u->name, (int) u->pid,
                  u->manager->config->watchdog_sec);
        u->watchdog_fired = true;
        (void) kill(u->pid, SIGKILL);
        return 0;
}

static int arm_timer(Unit *u, sd_event_source **s, uint64_t usec_relative,
                     sd_event_time_handler_t cb) {
        return okg_timer_arm(u->manager->event, s, usec_relative, 0, cb, u, NULL);
}

int unit_watchdog_ping(Unit *u) {
        if (!unit_watchdog_wanted(u, u->manager->config->watchdog_sec))
                return 0;
        u->watchdog_pings++;
        return arm_timer(u, &u->watchdog_timer,
                         (uint64_t) u->manager->config->watchdog_sec * USEC_PER_SEC,
                         on_watchdog_timeout);
}

static int on_bus_address(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Unit *u = userdata;
        char buf[512];
        ssize_t n;

        n = read(fd, buf, sizeof buf - 1);
        if (n > 0) {
                buf[n] = 0;
                if (!strchr(buf, '\n'))
                        return 0;
                buf[strcspn(buf, "\n")] = 0;
                log_debug("dbus-daemon listens on %s", buf);
                unit_notify_ready(u);
        }
        /* Done with the pipe either way: EOF means dbus-daemon is exiting. */
        u->address_source = sd_event_source_disable_unref(u->address_source);
        if (u->print_address_fd >= 0)
                close(u->print_address_fd);
        u->print_address_fd = -EBADF;
        return 0;
}

void unit_notify_ready(Unit *u) {
        UnitState old = u->state;

        if (!unit_mark_ready(u, okg_now_usec()))
                return;
        (void) okg_timer_disarm(u->start_timer);
        unit_log_state(u, old);
        log_info("%s is ready (PID %i).", u->name, (int) u->pid);
        unit_changed(u);
        if (u->kind == UNIT_BUS)
                manager_bus_started(u->manager);
        manager_startup_continue(u->manager);
}

/* What the child needs, all prepared before the clone: it shares our memory until its execve(),
 * so it allocates nothing and calls only system calls. */
typedef struct SpawnArgs {
        char **argv, **env;
        pid_t parent;
        int address_fd; /* dbus-daemon's --print-address end, or -EBADF */
        int exec_errno; /* set by the child when execve() failed: our memory is its memory */
} SpawnArgs;

#define SPAWN_STACK_SIZE (64U * 1024U)

static int spawn_child(void *userdata) {
        SpawnArgs *a = userdata;
        sigset_t none;

        sigemptyset(&none);
        (void) sigprocmask(SIG_SETMASK, &none, NULL);
        (void) signal(SIGPIPE, SIG_DFL);
        /* If okg-sidecard dies without stopping us, do not linger. */
        (void) prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != a->parent)
                _exit(1);
        /* Our own session: a Ctrl-C or a signal to okg-sidecard's process group must reach
         * okg-sidecard alone, which then stops everything in order. */
        (void) setsid();
        if (a->address_fd >= 0) {
                if (dup2(a->address_fd, 3) < 0)
                        _exit(126);
                (void) close_range(4, ~0U, 0);
        } else
                (void) close_range(3, ~0U, 0);
        execve(a->argv[0], a->argv, a->env);
        a->exec_errno = errno;
        _exit(127);
}

static int unit_spawn(Unit *u) {
        Manager *m = u->manager;
        _cleanup_(strv_freep) char **argv = NULL, **env = NULL;
        _cleanup_(freep) void *stack = NULL;
        SpawnArgs a = {};
        int pipefd[2] = { -EBADF, -EBADF };
        pid_t parent = getpid(), pid;
        UnitState old;
        int r;

        r = unit_build_argv(u, &argv);
        if (r < 0)
                return log_error_errno(r, "Cannot find the executable for %s: %m", u->name);
        env = unit_build_env(u);
        if (!env)
                return log_oom();
        if (u->kind == UNIT_BUS) {
                (void) unlink(m->bus_socket);
                if (pipe2(pipefd, O_CLOEXEC) < 0)
                        return log_error_errno(errno, "Failed to create a pipe: %m");
        }

        /* CLONE_VM | CLONE_VFORK, as posix_spawn() does (which cannot set PR_SET_PDEATHSIG):
         * no copy of our page tables, and none of the copy-on-write faults a fork() costs
         * both processes afterwards; we wait (microseconds) until the child has exec'd. */
        stack = malloc(SPAWN_STACK_SIZE);
        if (stack) {
                a = (SpawnArgs) {
                        .argv = argv, .env = env, .parent = parent, .address_fd = pipefd[1],
                };
                pid = clone(spawn_child, (uint8_t *) stack + SPAWN_STACK_SIZE,
                            CLONE_VM | CLONE_VFORK | SIGCHLD, &a);
        } else {
                pid = -1;
                errno = ENOMEM;
        }
        if (pid < 0) {
                r = log_error_errno(errno, "Failed to start a process for %s: %m", u->name);
                if (pipefd[0] >= 0) {
                        close(pipefd[0]);
                        close(pipefd[1]);
                }
                return r;
        }

        /* CLONE_VFORK: the child has exec'd or exited by now. An execve() that failed (a
         * missing program, not executable, not a program) makes the child exit with 127; its
         * reason becomes the exit's description (unit_process_exited()). */
        free(u->exec_failure);
        u->exec_failure = NULL;
        if (a.exec_errno > 0 &&
            asprintf(&u->exec_failure, "cannot execute %s: %s", argv[0], strerror(a.exec_errno)) < 0)
                u->exec_failure = NULL;

        old = u->state;
        unit_mark_spawned(u, pid, okg_now_usec());
        unit_log_state(u, old);
        log_info("Started %s (PID %i): %s", u->name, (int) pid, argv[0]);

        if (u->kind == UNIT_BUS) {
                close(pipefd[1]);
                u->print_address_fd = pipefd[0];
                r = sd_event_add_io(m->event, &u->address_source, pipefd[0], EPOLLIN,
                                    on_bus_address, u);
                if (r < 0)
                        log_warning_errno(r, "Cannot watch dbus-daemon's address pipe: %m");
        }
        r = arm_timer(u, &u->start_timer, (uint64_t) m->config->start_timeout_sec * USEC_PER_SEC,
                      on_start_timeout);
        if (r < 0)
                log_warning_errno(r, "Cannot arm the start timer of %s: %m", u->name);
        r = unit_watchdog_ping(u);
        if (r < 0)
                log_warning_errno(r, "Cannot arm the watchdog of %s: %m", u->name);
        unit_changed(u);
        return 0;
}

static int on_restart_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Unit *u = userdata;

        if (u->state != UNIT_BACKOFF)
                return 0;
        u->restarts++;
        if (unit_spawn(u) < 0) {
                unit_schedule_restart(u);
                unit_changed(u);
        }
        return 0;
}

void unit_schedule_restart(Unit *u) {
        Manager *m = u->manager;
        UnitState old = u->state;
        int r;

        (void) unit_backoff_step(u, (uint64_t) m->config->restart_initial_msec * USEC_PER_MSEC,
                                 (uint64_t) m->config->restart_max_sec * USEC_PER_SEC);
        unit_log_state(u, old);
        log_info("Restarting %s in %llu ms (attempt %u).", u->name,
                 (unsigned long long) (u->next_restart_delay_usec / USEC_PER_MSEC), u->failures);
        r = arm_timer(u, &u->restart_timer, u->next_restart_delay_usec, on_restart_timer);
        if (r < 0) {
                log_error_errno(r, "Cannot schedule the restart of %s: %m", u->name);
                unit_set_state(u, UNIT_FAILED);
        }
}

void unit_process_exited(Unit *u, const siginfo_t *si) {
        Manager *m = u->manager;
        UnitState old = u->state;
        bool clean, stable;

        (void) okg_timer_disarm(u->start_timer);
        (void) okg_timer_disarm(u->watchdog_timer);
        (void) okg_timer_disarm(u->stop_timer);
        u->address_source = sd_event_source_disable_unref(u->address_source);
        if (u->print_address_fd >= 0)
                close(u->print_address_fd);
        u->print_address_fd = -EBADF;

        (void) unit_record_exit(u, si->si_code, si->si_status);
        if (u->exec_failure && si->si_code == CLD_EXITED && si->si_status == 127) {
                free(u->last_exit_text);
                u->last_exit_text = TAKE_PTR(u->exec_failure);
        }
        clean = unit_exit_is_clean(si->si_code, si->si_status, u->watchdog_fired);
        stable = unit_run_was_stable(u, okg_now_usec(),
                                     (uint64_t) m->config->restart_reset_sec * USEC_PER_SEC);

        if (u->state == UNIT_STOPPING || m->state == MANAGER_STOPPING)
                log_info("%s (PID %i) stopped: %s.", u->name, (int) si->si_pid,
                         strempty(u->last_exit_text));
        else
                log_full(clean ? LOG_INFO : LOG_WARNING, "%s (PID %i) %s.", u->name,
                         (int) si->si_pid, strempty(u->last_exit_text));

        switch (unit_exit_decide(u, m->state, clean, stable)) {
        case UNIT_EXIT_FORGET:
                manager_forget_unit(m, u);
                return;
        case UNIT_EXIT_SUITE_STOPPING:
                unit_log_state(u, old);
                unit_changed(u);
                manager_stop_continue(m);
                return;
        case UNIT_EXIT_STOPPED:
                unit_log_state(u, old);
                unit_changed(u);
                return;
        case UNIT_EXIT_RESPAWN:
                unit_log_state(u, old);
                if (unit_spawn(u) < 0)
                        unit_set_state(u, UNIT_FAILED);
                unit_changed(u);
                return;
        case UNIT_EXIT_RESTART:
                unit_schedule_restart(u);
                break;
        case UNIT_EXIT_INACTIVE:
        case UNIT_EXIT_FAILED:
                unit_log_state(u, old);
                break;
        }
        unit_changed(u);
        manager_startup_continue(m);
}

static int on_stop_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        Unit *u = userdata;

        if (u->pid <= 0)
                return 0;
        log_warning("%s (PID %i) did not stop in time; killing it.", u->name, (int) u->pid);
        u->manager->kill_needed = true;
        (void) kill(u->pid, SIGKILL);
        return 0;
}

/* Sends SIGTERM and arms SIGKILL at the deadline (absolute, CLOCK_MONOTONIC). */
void unit_terminate(Unit *u, uint64_t deadline_usec) {
        int r;

        if (u->pid <= 0)
                return;
        unit_set_state(u, UNIT_STOPPING);
        (void) kill(u->pid, SIGTERM);
        r = okg_timer_arm_at(u->manager->event, &u->stop_timer, deadline_usec, 0, on_stop_timeout,
                             u, NULL);
        if (r < 0) {
                log_warning_errno(r, "Cannot arm the stop deadline of %s, killing it: %m", u->name);
                (void) kill(u->pid, SIGKILL);
        }
        unit_changed(u);
}

int unit_start(Unit *u) {
        if (u->pid > 0)
                return -EALREADY;
        (void) okg_timer_disarm(u->restart_timer);
        unit_request_start(u);
        return unit_spawn(u);
}

int unit_stop(Unit *u) {
        unit_request_stop(u);
        (void) okg_timer_disarm(u->restart_timer);
        if (u->pid > 0) {
                uint64_t now;
                (void) sd_event_now(u->manager->event, CLOCK_MONOTONIC, &now);
                unit_terminate(u, now + (uint64_t) u->manager->config->stop_timeout_sec * USEC_PER_SEC);
                return 0;
        }
        unit_set_state(u, UNIT_INACTIVE);
        unit_changed(u);
        return 0;
}

int unit_restart(Unit *u) {
        if (u->pid <= 0)
                return unit_start(u);
        unit_stop(u);
        u->restart_requested = true;
        return 0;
}

/* Used at startup and by the start-order gate. */
int unit_launch(Unit *u) {
        return unit_spawn(u);
}

Unit *unit_free(Unit *u) {
        if (!u)
                return NULL;
        sd_event_source_disable_unref(u->address_source);
        sd_event_source_disable_unref(u->start_timer);
        sd_event_source_disable_unref(u->watchdog_timer);
        sd_event_source_disable_unref(u->restart_timer);
        sd_event_source_disable_unref(u->stop_timer);
        if (u->print_address_fd >= 0)
                close(u->print_address_fd);
        free(u->name);
        free(u->object_path);
        free(u->config_file);
        free(u->config_canonical);
        free(u->last_exit_text);
        free(u->exec_failure);
        free(u->status_text);
        free(u);
        return NULL;
}
