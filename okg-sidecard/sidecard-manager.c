/* okg-sidecard's manager: start sequence (bus, storage, plugins in boot order, each after the
 * previous one is ready), the sidecarstartorder gate, the notify socket, child reaping, config
 * reload with inotify, and the ordered stop. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "log.h"
#include "okg-build-config.h"
#include "okg-bus-api.h"
#include "macro.h"
#include "okg-daemon.h"
#include "okg-event.h"
#include "okg-proc.h"
#include "okg-util.h"
#include "sidecard-manager.h"

#define CONFIG_MAX_BYTES (1024 * 1024)
#define GATE_POLL_USEC (500 * USEC_PER_MSEC)
#define RELOAD_DEBOUNCE_USEC (100 * USEC_PER_MSEC)

static void manager_set_state(Manager *m, ManagerState s) {
        if (m->state == s)
                return;
        m->state = s;
        sidecard_bus_manager_changed(m);
}

void unit_changed(Unit *u) {
        okg_bus_emit_all_changed(u->manager->bus, u->object_path, OKG_SIDECAR_UNIT_IFACE);
        sidecard_bus_manager_changed(u->manager);
}

Unit *manager_find_unit(Manager *m, const char *name) {
        for (size_t i = 0; i < m->n_units; i++)
                if (streq(m->units[i]->name, name))
                        return m->units[i];
        return NULL;
}

Unit *manager_find_unit_by_path(Manager *m, const char *path) {
        for (size_t i = 0; i < m->n_units; i++)
                if (streq(m->units[i]->object_path, path))
                        return m->units[i];
        return NULL;
}

static Unit *manager_find_unit_by_pid(Manager *m, pid_t pid) {
        for (size_t i = 0; i < m->n_units; i++)
                if (m->units[i]->pid == pid)
                        return m->units[i];
        return NULL;
}

static Unit *manager_add_unit(Manager *m, UnitKind kind, const char *name) {
        Unit *u, **t;
        int r;

        t = realloc(m->units, (m->n_units + 1) * sizeof(Unit *));
        if (!t)
                return NULL;
        m->units = t;
        u = calloc(1, sizeof *u);
        if (!u)
                return NULL;
        u->manager = m;
        u->kind = kind;
        u->print_address_fd = -EBADF;
        u->last_exit_code = -1;
        u->restart_policy = RESTART_ALWAYS;
        u->name = strdup(name);
        r = sd_bus_path_encode(OKG_SIDECAR_UNIT_PATH_PREFIX, name, &u->object_path);
        if (!u->name || r < 0)
                return unit_free(u);
        m->units[m->n_units++] = u;
        return u;
}

static int unit_apply_spec(Unit *u, const PluginSpec *p) {
        u->type = p->type;
        u->boot_order = p->boot_order;
        u->index = p->index;
        u->restart_policy = p->restart_policy;
        return free_and_strdup(&u->config_canonical, p->config_canonical);
}

static Unit *manager_add_plugin_unit(Manager *m, const PluginSpec *p) {
        Unit *u = manager_add_unit(m, UNIT_PLUGIN, p->name);
        if (!u || unit_apply_spec(u, p) < 0)
                return NULL;
        return u;
}

void manager_forget_unit(Manager *m, Unit *u) {
        /* Announce first: the bus needs the object to still exist to list its interfaces. */
        sidecard_bus_unit_removed(m, u);
        for (size_t i = 0; i < m->n_units; i++) {
                if (m->units[i] != u)
                        continue;
                memmove(m->units + i, m->units + i + 1, (m->n_units - i - 1) * sizeof(Unit *));
                m->n_units--;
                if (i < m->startup_next)
                        m->startup_next--;
                break;
        }
        log_info("Removed plugin %s.", u->name);
        if (u->transient && u->config_file)
                (void) unlink(u->config_file);
        unit_free(u);
        sidecard_bus_manager_changed(m);
        manager_startup_continue(m);
}

/* ---- start sequence and the sidecarstartorder gate ---- */

static bool game_is_up(Manager *m) {
        const char *name = m->config->game_process_name;
        if (name && proc_find_by_title("/proc", name, getpid(), NULL) > 0)
                return true;
        return m->game_up;
}

static void gate_probe_done(CurlGlue *g, CURL *easy, CURLcode result, void *userdata) {
        Manager *m = userdata;
        long code = 0;

        if (result == CURLE_OK)
                (void) curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &code);
        if (sidecard_game_answer_up(code)) {
                log_info("Game answered at %s.", m->config->game_url);
                m->game_up = true;
        }
        curl_easy_cleanup(easy);
        m->gate_probe = NULL;
}

static size_t discard_body(char *ptr, size_t size, size_t nmemb, void *userdata) {
        return size * nmemb;
}

static void gate_probe_url(Manager *m) {
        CURL *c;

        if (!m->config->game_url || m->gate_probe)
                return;
        /* Created on first use: initialising the TLS stack costs megabytes of memory, which a
         * sidecar that never probes a URL should not pay. */
        if (!m->curl && curl_glue_new(m->event, &m->curl) < 0) {
                log_warning("Cannot set up the HTTP client to probe %s.", m->config->game_url);
                return;
        }
        c = curl_easy_init();
        if (!c)
                return;
        (void) curl_easy_setopt(c, CURLOPT_URL, m->config->game_url);
        (void) curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 1000L);
        (void) curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        (void) curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard_body);
        (void) curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
        if (curl_glue_add(m->curl, c, gate_probe_done, m) < 0) {
                curl_easy_cleanup(c);
                return;
        }
        m->gate_probe = c;
}

static void gate_finish(Manager *m) {
        m->gate_timer = sd_event_source_disable_unref(m->gate_timer);
        if (m->gate_probe) {
                curl_glue_remove(m->curl, m->gate_probe);
                curl_easy_cleanup(m->gate_probe);
                m->gate_probe = NULL;
        }
        m->game_up = true;
        manager_set_state(m, MANAGER_STARTING);
        manager_startup_continue(m);
}

static int on_gate_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;

        if (game_is_up(m)) {
                log_info("The game is up; starting the plugins.");
                gate_finish(m);
                return 0;
        }
        if (usec >= m->gate_deadline_usec) {
                log_warning("The game did not come up within %u s (sidecarstartorder: After); "
                            "starting the plugins anyway.",
                            m->config->game_timeout_sec);
                m->gate_timed_out = true;
                gate_finish(m);
                return 0;
        }
        gate_probe_url(m);
        return okg_event_source_rearm(s, GATE_POLL_USEC);
}

static void manager_enter_gate(Manager *m) {
        uint64_t now;
        int r;

        (void) sd_event_now(m->event, CLOCK_MONOTONIC, &now);
        m->gate_deadline_usec = now + (uint64_t) m->config->game_timeout_sec * USEC_PER_SEC;
        for (size_t i = m->startup_next; i < m->n_units; i++)
                if (unit_hold(m->units[i]))
                        unit_changed(m->units[i]);
        log_info("sidecarstartorder is After: holding the plugins until the game is up "
                 "(process '%s'%s%s, at most %u s).",
                 strempty(m->config->game_process_name), m->config->game_url ? ", url " : "",
                 strempty(m->config->game_url), m->config->game_timeout_sec);
        manager_set_state(m, MANAGER_WAITING_FOR_GAME);
        r = okg_timer_arm(m->event, &m->gate_timer, 0, 0, on_gate_timer, m, "game-gate");
        if (r < 0) {
                log_warning_errno(r, "Cannot arm the game gate, starting the plugins now: %m");
                gate_finish(m);
        }
}

void manager_startup_continue(Manager *m) {
        if (m->state != MANAGER_STARTING)
                return;

        for (;;) {
                Unit *u;

                switch (sidecard_startup_step(m->units, m->n_units, &m->startup_next,
                                              m->config->start_order, m->game_up, &u)) {
                case STARTUP_GATE:
                        manager_enter_gate(m);
                        return;
                case STARTUP_WAIT:
                        return;
                case STARTUP_LAUNCH:
                        if (unit_launch(u) < 0) {
                                u->state = UNIT_FAILED;
                                unit_changed(u);
                                m->startup_next++;
                        }
                        continue;
                case STARTUP_DONE:
                        break;
                }
                break;
        }

        log_info("Start sequence complete: %zu daemon(s) started.", m->n_units);
        manager_set_state(m, MANAGER_RUNNING);
        (void) sd_notify(false, "READY=1\nSTATUS=Running");
}

/* ---- notify socket ---- */

static void manager_handle_notify(Manager *m, Unit *u, char *buf) {
        char *saveptr = NULL;

        for (char *line = strtok_r(buf, "\n", &saveptr); line; line = strtok_r(NULL, "\n", &saveptr)) {
                const char *v;

                switch (sidecard_notify_parse_line(line, &v)) {
                case NOTIFY_READY:
                        unit_notify_ready(u);
                        break;
                case NOTIFY_WATCHDOG:
                        (void) unit_watchdog_ping(u);
                        break;
                case NOTIFY_WATCHDOG_TRIGGER:
                        log_warning("%s asked for its watchdog to fire.", u->name);
                        u->watchdog_fired = true;
                        (void) kill(u->pid, SIGKILL);
                        break;
                case NOTIFY_STOPPING:
                        if (u->state != UNIT_STOPPING) {
                                u->state = UNIT_STOPPING;
                                unit_changed(u);
                        }
                        break;
                case NOTIFY_STATUS:
                        if (free_and_strdup(&u->status_text, v) >= 0)
                                unit_changed(u);
                        break;
                case NOTIFY_UNKNOWN:
                        break;
                }
        }
}

/* Reads and handles one datagram: 1 when there was one, 0 when the socket is empty (or failed). */
static int notify_read_one(Manager *m, int fd) {
        char buf[4096];
        union {
                struct cmsghdr h;
                uint8_t buf[CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(sizeof(int) * 16)];
        } control = {};
        struct iovec iov = { .iov_base = buf, .iov_len = sizeof buf - 1 };
        struct msghdr msg = {
                .msg_iov = &iov,
                .msg_iovlen = 1,
                .msg_control = &control,
                .msg_controllen = sizeof control,
        };
        struct ucred *cred = NULL;
        ssize_t n;
        Unit *u;

        n = recvmsg(fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC | MSG_TRUNC);
        if (n < 0) {
                if (errno != EAGAIN && errno != EINTR)
                        log_warning_errno(errno, "Reading the notify socket failed: %m");
                return 0;
        }

        for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
                if (c->cmsg_level != SOL_SOCKET)
                        continue;
                if (c->cmsg_type == SCM_CREDENTIALS && c->cmsg_len == CMSG_LEN(sizeof(struct ucred)))
                        cred = (struct ucred *) CMSG_DATA(c);
                else if (c->cmsg_type == SCM_RIGHTS) {
                        /* We take no file descriptors; close what was sent. */
                        int *fds = (int *) CMSG_DATA(c);
                        size_t nfds = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                        for (size_t i = 0; i < nfds; i++)
                                close(fds[i]);
                }
        }
        if ((size_t) n >= sizeof buf - 1) {
                log_warning("Dropping an oversized notification.");
                return 1;
        }
        if (!cred || cred->pid <= 0)
                return 1;
        u = manager_find_unit_by_pid(m, cred->pid);
        if (!u) {
                log_debug("Ignoring a notification from PID %i, which is no main process.",
                          (int) cred->pid);
                return 1;
        }
        buf[n] = 0;
        manager_handle_notify(m, u, buf);
        return 1;
}

static int on_notify(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        (void) notify_read_one(userdata, fd);
        return 0;
}

/* Handles every notification already queued. A watchdog timeout calls this first: when
 * okg-sidecard itself was held up (a loaded node), a daemon's ping may be waiting in the socket
 * while its timer has expired, and the daemon is not hung. Bounded, against a flood. */
void manager_drain_notify(Manager *m) {
        for (unsigned i = 0; i < 1024 && m->notify_fd >= 0; i++)
                if (notify_read_one(m, m->notify_fd) <= 0)
                        break;
}

static int manager_setup_notify(Manager *m) {
        _cleanup_(closep) int fd = -EBADF;
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int one = 1, r;

        if (strlen(m->notify_socket_path) >= sizeof sa.sun_path)
                return log_error_errno(ENAMETOOLONG,
                                       "The runtime directory is too deep: its notify socket %s is "
                                       "%zu bytes, more than the %zu a unix socket address holds; "
                                       "use a shorter --runtime-dir.",
                                       m->notify_socket_path, strlen(m->notify_socket_path),
                                       sizeof sa.sun_path - 1);
        strcpy(sa.sun_path, m->notify_socket_path);

        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return log_error_errno(errno, "Failed to create the notify socket: %m");
        (void) unlink(m->notify_socket_path);
        if (bind(fd, (struct sockaddr *) &sa, sizeof sa) < 0)
                return log_error_errno(errno, "Failed to bind %s: %m", m->notify_socket_path);
        if (setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof one) < 0)
                return log_error_errno(errno, "Failed to enable SO_PASSCRED: %m");
        r = sd_event_add_io(m->event, &m->notify_source, fd, EPOLLIN, on_notify, m);
        if (r < 0)
                return log_error_errno(r, "Failed to watch the notify socket: %m");
        m->notify_fd = TAKE_FD(fd);
        return 0;
}

/* ---- children ---- */

static int on_sigchld(sd_event_source *s, const struct signalfd_siginfo *ssi, void *userdata) {
        Manager *m = userdata;

        /* Reap everything: as a container's PID 1 we also inherit orphans. */
        for (;;) {
                siginfo_t si = {};
                Unit *u;

                if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG) < 0) {
                        if (errno != ECHILD)
                                log_warning_errno(errno, "waitid() failed: %m");
                        break;
                }
                if (si.si_pid == 0)
                        break;
                u = manager_find_unit_by_pid(m, si.si_pid);
                if (u)
                        unit_process_exited(u, &si);
                else
                        log_debug("Reaped PID %i.", (int) si.si_pid);
        }
        return 0;
}

/* ---- stop ---- */

/* Waiting for u's exit: SIGTERM sent, and the SIGKILL at the deadline not fired yet. */
static bool unit_stop_pending(const Unit *u) {
        return okg_timer_armed(u->stop_timer);
}

void manager_stop_continue(Manager *m) {
        bool waiting;
        Unit *u;

        if (m->state != MANAGER_STOPPING)
                return;

        u = sidecard_stop_next(m->units, m->n_units, unit_stop_pending, &waiting);
        if (u) {
                if (u->kind == UNIT_BUS)
                        /* Leave the bus before it goes, so we do not try to reconnect. */
                        m->bus = okg_bus_free(m->bus);
                log_info("Stopping %s (PID %i).", u->name, (int) u->pid);
                unit_terminate(u, m->stop_deadline_usec);
                return;
        }
        if (waiting)
                return;

        log_info("All daemons stopped.");
        m->exit_code = m->kill_needed ? OKG_EXIT_KILLED : OKG_EXIT_SUCCESS;
        (void) sd_event_exit(m->event, m->exit_code);
}

void manager_begin_stop(Manager *m) {
        uint64_t now;

        if (m->state == MANAGER_STOPPING)
                return;
        (void) sd_notify(false, "STOPPING=1");
        manager_set_state(m, MANAGER_STOPPING);
        m->gate_timer = sd_event_source_disable_unref(m->gate_timer);
        (void) sd_event_now(m->event, CLOCK_MONOTONIC, &now);
        m->stop_deadline_usec = now + (uint64_t) m->config->stop_timeout_sec * USEC_PER_SEC;
        for (size_t i = 0; i < m->n_units; i++) {
                Unit *u = m->units[i];
                (void) okg_timer_disarm(u->restart_timer);
                if (u->pid <= 0 && u->state != UNIT_INACTIVE) {
                        u->state = UNIT_INACTIVE;
                        unit_changed(u);
                }
        }
        manager_stop_continue(m);
}

static int on_exit_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Manager *m = userdata;

        log_info("Received SIG%s; stopping the suite.", sigabbrev_np((int) si->ssi_signo));
        manager_begin_stop(m);
        return 0;
}

/* ---- config reload ---- */

/* Logs every problem (one line each) and, when asked, returns them as one message, one problem
 * per line (the InvalidConfig bus error); empties the list. */
static void join_errors(OkgErrors *errors, char **ret_message) {
        if (ret_message)
                *ret_message = okg_errors_join(errors, "\n");
        okg_daemon_log_errors(errors);
}

_printf_(2, 3) static void message_set(char **ret_message, const char *fmt, ...) {
        va_list ap;

        if (!ret_message)
                return;
        va_start(ap, fmt);
        if (vasprintf(ret_message, fmt, ap) < 0)
                *ret_message = NULL;
        va_end(ap);
}

/* The daemons read their sections from this copy of the config we validated, not from the live
 * file: a file we refused, or changed and not yet applied, must never reach a daemon that is
 * (re)started in the meantime by a crash, the watchdog, a back-off or RestartPlugin. Written
 * atomically, so a daemon starting during a reload reads the old or the new text, whole. */
static int manager_save_accepted_config(Manager *m, const char *text) {
        int r;

        r = okg_write_file_replace(m->accepted_config_path, text, strlen(text), 0644);
        if (r < 0)
                return r;
        m->accepted_config_written = true;
        return 0;
}

int manager_reload(Manager *m, char **ret_message) {
        _cleanup_(freep) char *text = NULL;
        _cleanup_(okg_node_freep) OkgNode *root = NULL;
        _cleanup_(sidecar_config_freep) SidecarConfig *c = NULL;
        OkgErrors errors = {};
        bool health_changed;
        size_t len;
        int r;

        if (m->state == MANAGER_STOPPING)
                return -ESHUTDOWN;
        r = okg_read_file(m->config_path, CONFIG_MAX_BYTES, &text, &len);
        if (r < 0) {
                log_error_errno(r, "Config reload refused: cannot read %s: %m; keeping the running config.",
                                m->config_path);
                message_set(ret_message, "cannot read %s", m->config_path);
                return r;
        }
        if (m->config_text && streq(m->config_text, text)) {
                log_debug("Config unchanged.");
                return 0;
        }
        r = okg_yaml_parse_string(text, len, m->config_path, &root, &errors);
        if (r >= 0)
                r = sidecar_config_parse(root, m->config_path, plugin_types, n_plugin_types, &c,
                                         &errors);
        if (r < 0) {
                log_error("Config reload refused; keeping the running config. Problems in %s:",
                          m->config_path);
                join_errors(&errors, ret_message);
                return -EINVAL;
        }
        okg_errors_done(&errors);

        r = manager_save_accepted_config(m, text);
        if (r < 0) {
                log_error_errno(r, "Config reload refused: cannot write %s: %m; keeping the running config.",
                                m->accepted_config_path);
                message_set(ret_message, "cannot write %s: %s", m->accepted_config_path, strerror(-r));
                return r;
        }

        /* Plugins that left the file. */
        for (size_t i = m->n_units; i > 0; i--) {
                Unit *u = m->units[i - 1];
                if (unit_reload_removed(u, c)) {
                        log_info("Plugin %s is no longer configured; stopping it.", u->name);
                        (void) manager_remove_plugin(m, u);
                }
        }
        /* New and changed plugins. */
        for (size_t i = 0; i < c->n_plugins; i++) {
                const PluginSpec *p = &c->plugins[i];
                Unit *u = manager_find_unit(m, p->name);
                bool changed;

                if (!u) {
                        u = manager_add_plugin_unit(m, p);
                        if (!u)
                                return log_oom();
                        sidecard_bus_unit_added(m, u);
                        log_info("Plugin %s was added to the config.", p->name);
                        if (m->state == MANAGER_RUNNING) {
                                u->startup_done = true;
                                (void) unit_launch(u);
                        }
                        continue;
                }
                changed = unit_reload_changed(u, p);
                if (u->transient) {
                        if (u->config_file)
                                (void) unlink(u->config_file);
                        u->config_file = mfree(u->config_file);
                        u->transient = false;
                }
                r = unit_apply_spec(u, p);
                if (r < 0)
                        return log_oom();
                if (unit_reload_needs_restart(u, changed)) {
                        log_info("The config of plugin %s changed; restarting it.", u->name);
                        (void) unit_restart(u);
                }
                unit_changed(u);
        }

        health_changed = c->health_port != m->config->health_port ||
                         !streq_ptr(c->health_address, m->config->health_address);
        sidecar_config_free(m->config);
        m->config = TAKE_PTR(c);
        free(m->config_text);
        m->config_text = TAKE_PTR(text);
        if (m->state == MANAGER_RUNNING)
                sidecard_sort_units(m->units, m->n_units);
        if (health_changed) {
                r = sidecard_health_start(m);
                /* The old server, if any, stays: the kubelet probes the pod spec's port. */
                if (r < 0 && m->health)
                        log_error("Cannot serve health on the new address; still serving /healthz "
                                  "and /readyz on %s until a config with a free address.",
                                  strempty(m->health_serving));
                else if (r < 0)
                        log_error_errno(r, "Cannot serve health on the new address; health is off: %m");
        }
        sidecard_bus_manager_changed(m);
        log_info("Config reloaded from %s.", m->config_path);
        return 1;
}

static int on_reload_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        (void) manager_reload(userdata, NULL);
        return 0;
}

static int on_config_dir_event(sd_event_source *s, const struct inotify_event *ev, void *userdata) {
        Manager *m = userdata;
        int r;

        /* A ConfigMap update swaps the ..data symlink; an editor writes or renames the file.
         * Either way: re-read after the burst of events settles; unchanged content is a no-op. */
        r = okg_timer_arm(m->event, &m->reload_timer, RELOAD_DEBOUNCE_USEC, 0, on_reload_timer, m,
                          "config-reload");
        if (r < 0)
                log_warning_errno(r, "Cannot schedule a reload: %m");
        return 0;
}

static int on_sighup(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        log_info("Received SIGHUP; reloading the config.");
        (void) manager_reload(userdata, NULL);
        return 0;
}

/* ---- plugins added and removed over the bus ---- */

int manager_remove_plugin(Manager *m, Unit *u) {
        if (u->kind != UNIT_PLUGIN)
                return -EPERM;
        if (u->pid > 0) {
                u->remove_requested = true;
                return unit_stop(u);
        }
        manager_forget_unit(m, u);
        return 0;
}

static const PluginType *find_plugin_type(const char *name) {
        for (size_t i = 0; i < n_plugin_types; i++)
                if (streq(plugin_types[i].name, name))
                        return &plugin_types[i];
        return NULL;
}

/* The plugin daemons read their section from a file, so a plugin added at run time gets a file
 * of its own in the runtime directory, holding a config with just that plugin. */
static int write_transient_config(Manager *m, const char *name, const char *config_yaml,
                                  char **ret_path) {
        _cleanup_(freep) char *dir = NULL, *path = NULL, *text = NULL;
        size_t len;
        int r;

        if (asprintf(&dir, "%s/plugins", m->runtime_dir) < 0 ||
            asprintf(&path, "%s/%s.yaml", dir, name) < 0)
                return -ENOMEM;
        r = okg_mkdir_p(dir, 0755);
        if (r < 0)
                return r;
        r = sidecard_transient_config_text(name, config_yaml, &text, &len);
        if (r < 0)
                return r;
        r = okg_write_file_replace(path, text, len, 0644);
        if (r < 0)
                return r;
        *ret_path = TAKE_PTR(path);
        return 0;
}

int manager_add_plugin(Manager *m, const char *name, int boot_order, const char *config_yaml,
                       char **ret_message) {
        _cleanup_(okg_node_freep) OkgNode *node = NULL;
        _cleanup_(sidecar_config_freep) SidecarConfig *c = NULL;
        _cleanup_(freep) char *path = NULL;
        const PluginType *type;
        OkgErrors errors = {};
        Unit *u;
        int r;

        if (m->state == MANAGER_STOPPING)
                return -ESHUTDOWN;
        type = find_plugin_type(name);
        if (!type) {
                message_set(ret_message, "unknown plugin \"%s\" (known: hot_update, http_probe)", name);
                return -EINVAL;
        }
        if (manager_find_unit(m, name)) {
                message_set(ret_message, "plugin \"%s\" is already present", name);
                return -EEXIST;
        }
        if (boot_order < 0 || boot_order > 1000) {
                message_set(ret_message, "%s", "bootorder must be between 0 and 1000");
                return -EINVAL;
        }
        /* Validate the section as given, so messages point into the caller's text. */
        r = okg_yaml_parse_string(config_yaml, strlen(config_yaml), "AddPlugin", &node, &errors);
        if (r >= 0)
                r = type->validate(okg_node_is_null(node) || (node->type == OKG_NODE_MAPPING && node->n == 0)
                                           ? NULL : node,
                                   "AddPlugin", "config", &errors);
        if (r < 0) {
                join_errors(&errors, ret_message);
                return -EINVAL;
        }
        r = write_transient_config(m, name, config_yaml, &path);
        if (r < 0) {
                message_set(ret_message, "%s", "cannot write the plugin's config file");
                return r;
        }
        r = sidecar_config_load(path, plugin_types, n_plugin_types, &c, &errors);
        if (r < 0) {
                join_errors(&errors, ret_message);
                (void) unlink(path);
                return -EINVAL;
        }
        okg_errors_done(&errors);

        u = manager_add_plugin_unit(m, &c->plugins[0]);
        if (!u)
                return -ENOMEM;
        u->transient = true;
        u->boot_order = boot_order;
        u->index = SIZE_MAX / 2 + m->n_units;
        u->config_file = TAKE_PTR(path);
        u->startup_done = true;
        if (m->state == MANAGER_RUNNING)
                sidecard_sort_units(m->units, m->n_units);
        sidecard_bus_unit_added(m, u);
        log_info("Plugin %s added over the bus.", name);
        if (m->state == MANAGER_RUNNING || m->state == MANAGER_STARTING)
                (void) unit_launch(u);
        else
                u->state = UNIT_WAITING;
        unit_changed(u);
        return 0;
}

/* ---- health ---- */

bool manager_is_healthy(Manager *m) {
        return sidecard_is_healthy(m->state, m->units, m->n_units);
}

bool manager_is_ready(Manager *m) {
        return sidecard_is_ready(m->state, m->units, m->n_units);
}

/* ---- lifetime ---- */

void manager_bus_started(Manager *m) {
        int r;

        if (m->bus)
                return; /* an existing connection reconnects by itself */
        r = okg_bus_new(m->event, m->bus_address, OKG_SIDECAR_NAME, sidecard_bus_setup,
                        NULL, m, &m->bus);
        if (r < 0)
                log_error_errno(r, "Cannot publish io.kruise.game.Sidecar1 on the private bus: %m");
}

int manager_new(const char *config_path, const char *runtime_dir, const char *state_dir,
                Manager **ret) {
        _cleanup_(manager_freep) Manager *m = NULL;
        int r;

        m = calloc(1, sizeof *m);
        if (!m)
                return -ENOMEM;
        m->notify_fd = -EBADF;
        m->health_fd = -EBADF;
        m->config_path = strdup(config_path);
        m->runtime_dir = strdup(runtime_dir);
        m->state_dir = strdup(state_dir);
        if (!m->config_path || !m->runtime_dir || !m->state_dir)
                return -ENOMEM;

        if (asprintf(&m->bus_socket, "%s/bus", runtime_dir) < 0 ||
            asprintf(&m->bus_address, "unix:path=%s/bus", runtime_dir) < 0 ||
            asprintf(&m->notify_socket_path, "%s/notify", runtime_dir) < 0 ||
            asprintf(&m->accepted_config_path, "%s/accepted-config.yaml", runtime_dir) < 0)
                return -ENOMEM;
        r = okg_find_data_file("OKG_BUS_CONFIG", "units", "okg-bus.conf", &m->bus_config_file);
        if (r < 0)
                return log_error_errno(r, "Cannot find the private bus config okg-bus.conf "
                                          "(set OKG_BUS_CONFIG): %m");

        if (!manager_add_unit(m, UNIT_BUS, "bus") || !manager_add_unit(m, UNIT_STORAGE, "storage"))
                return -ENOMEM;

        *ret = TAKE_PTR(m);
        return 0;
}

int manager_load_config(Manager *m) {
        _cleanup_(okg_node_freep) OkgNode *root = NULL;
        OkgErrors errors = {};
        size_t len;
        int r;

        r = okg_read_file(m->config_path, CONFIG_MAX_BYTES, &m->config_text, &len);
        if (r < 0)
                return log_error_errno(r, "%s: cannot read: %m", m->config_path);
        r = okg_yaml_parse_string(m->config_text, len, m->config_path, &root, &errors);
        if (r >= 0)
                r = sidecar_config_parse(root, m->config_path, plugin_types, n_plugin_types,
                                         &m->config, &errors);
        okg_daemon_log_errors(&errors);
        return r;
}

int manager_start(Manager *m) {
        _cleanup_(freep) char *dir = NULL;
        sigset_t mask;
        int r;

        for (size_t i = 0; i < m->config->n_plugins; i++)
                if (!manager_add_plugin_unit(m, &m->config->plugins[i]))
                        return log_oom();
        sidecard_sort_units(m->units, m->n_units);

        r = okg_mkdir_p(m->runtime_dir, 0755);
        if (r < 0)
                return log_error_errno(r, "Cannot create the runtime directory %s: %m", m->runtime_dir);
        r = okg_mkdir_p(m->state_dir, 0755);
        if (r < 0)
                return log_error_errno(r, "Cannot create the state directory %s: %m", m->state_dir);
        r = manager_save_accepted_config(m, m->config_text);
        if (r < 0)
                return log_error_errno(r, "Cannot write the accepted config %s: %m",
                                       m->accepted_config_path);

        sigemptyset(&mask);
        sigaddset(&mask, SIGCHLD);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return -errno;
        (void) signal(SIGPIPE, SIG_IGN);

        r = sd_event_default(&m->event);
        if (r < 0)
                return r;
        if ((r = sd_event_add_signal(m->event, NULL, SIGCHLD, on_sigchld, m)) < 0 ||
            (r = sd_event_add_signal(m->event, NULL, SIGTERM, on_exit_signal, m)) < 0 ||
            (r = sd_event_add_signal(m->event, NULL, SIGINT, on_exit_signal, m)) < 0 ||
            (r = sd_event_add_signal(m->event, NULL, SIGHUP, on_sighup, m)) < 0)
                return log_error_errno(r, "Failed to set up signal handling: %m");
        (void) sd_event_set_watchdog(m->event, true);

        r = manager_setup_notify(m);
        if (r < 0)
                return r;

        dir = strdup(m->config_path);
        if (!dir)
                return -ENOMEM;
        r = sd_event_add_inotify(m->event, &m->inotify_source, dirname(dir),
                                 IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE | IN_DELETE | IN_ATTRIB,
                                 on_config_dir_event, m);
        if (r < 0)
                log_warning_errno(r, "Cannot watch %s for config changes; reload with SIGHUP or "
                                     "the ReloadConfig bus method: %m", m->config_path);

        r = sidecard_health_listen(m);
        if (r < 0)
                return r;

        log_info("okg-sidecard %s starting: %zu plugin(s), sidecarstartorder %s, restartpolicy %s.",
                 OKG_VERSION, m->config->n_plugins, start_order_to_string(m->config->start_order),
                 restart_policy_to_string(m->config->restart_policy));
        manager_set_state(m, MANAGER_STARTING);
        manager_startup_continue(m);
        /* dbus-daemon is starting now: load libmicrohttpd (and its dozen libraries, ~12 ms of CPU)
         * meanwhile rather than before it. Connections to the health port wait in the backlog. */
        return sidecard_health_serve(m);
}

Manager *manager_free(Manager *m) {
        if (!m)
                return NULL;
        for (size_t i = 0; i < m->n_units; i++) {
                if (m->units[i]->pid > 0)
                        (void) kill(m->units[i]->pid, SIGKILL);
                unit_free(m->units[i]);
        }
        free(m->units);
        if (m->gate_probe) {
                curl_glue_remove(m->curl, m->gate_probe);
                curl_easy_cleanup(m->gate_probe);
        }
        sidecard_health_stop(m);
        if (m->health_fd >= 0)
                close(m->health_fd);
        okg_bus_free(m->bus);
        curl_glue_free(m->curl);
        sd_event_source_disable_unref(m->notify_source);
        sd_event_source_disable_unref(m->inotify_source);
        sd_event_source_disable_unref(m->reload_timer);
        sd_event_source_disable_unref(m->gate_timer);
        if (m->notify_fd >= 0)
                close(m->notify_fd);
        if (m->notify_socket_path)
                (void) unlink(m->notify_socket_path);
        if (m->accepted_config_written)
                (void) unlink(m->accepted_config_path);
        sd_event_unref(m->event);
        sidecar_config_free(m->config);
        free(m->config_path);
        free(m->config_text);
        free(m->runtime_dir);
        free(m->state_dir);
        free(m->bus_socket);
        free(m->bus_address);
        free(m->notify_socket_path);
        free(m->accepted_config_path);
        free(m->bus_config_file);
        free(m);
        return NULL;
}
