/* io.kruise.game.Sidecar1 on the private bus: the manager object and one object per unit. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "macro.h"
#include "okg-build-config.h"
#include "okg-bus-api.h"
#include "sidecard-manager.h"

static int error_stopping(sd_bus_error *error) {
        return sd_bus_error_set(error, OKG_SIDECAR_ERROR_SHUTTING_DOWN, "okg-sidecard is stopping");
}

/* ---- unit properties ---- */

#define UNIT_GETTER(fname, sig, expr)                                                             \
        static int fname(sd_bus *bus, const char *path, const char *interface,                   \
                         const char *property, sd_bus_message *reply, void *userdata,            \
                         sd_bus_error *error) {                                                   \
                const Unit *u = userdata;                                                         \
                return sd_bus_message_append(reply, sig, expr);                                   \
        }

UNIT_GETTER(get_name, "s", u->name)
UNIT_GETTER(get_kind, "s", unit_kind_to_string(u->kind))
UNIT_GETTER(get_state, "s", unit_state_to_string(u->state))
UNIT_GETTER(get_pid, "u", (uint32_t) (u->pid > 0 ? u->pid : 0))
UNIT_GETTER(get_ready, "b", (int) u->ready)
UNIT_GETTER(get_restarts, "u", (uint32_t) u->restarts)
UNIT_GETTER(get_boot_order, "i", (int32_t) u->boot_order)
UNIT_GETTER(get_restart_policy, "s",
            restart_policy_to_string(u->kind == UNIT_PLUGIN ? u->restart_policy : RESTART_ALWAYS))
UNIT_GETTER(get_exit_code, "i", (int32_t) u->last_exit_code)
UNIT_GETTER(get_exit_signal, "s", u->last_exit_signal > 0 ? strempty(sigabbrev_np(u->last_exit_signal)) : "")
UNIT_GETTER(get_exit_status, "s", strempty(u->last_exit_text))
UNIT_GETTER(get_status_text, "s", strempty(u->status_text))
UNIT_GETTER(get_start_timed_out, "b", (int) u->start_timed_out)
UNIT_GETTER(get_restart_delay, "t", (uint64_t) (u->state == UNIT_BACKOFF ? u->next_restart_delay_usec : 0))
UNIT_GETTER(get_failures, "u", (uint32_t) u->failures)
UNIT_GETTER(get_transient, "b", (int) u->transient)
UNIT_GETTER(get_bus_name, "s", u->kind == UNIT_PLUGIN ? u->type->bus_name
                               : u->kind == UNIT_STORAGE ? OKG_STORAGE_NAME : "org.freedesktop.DBus")

static int unit_reply_errno(sd_bus_message *m, Unit *u, int r, sd_bus_error *error) {
        if (r == -ESHUTDOWN)
                return error_stopping(error);
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "Operation on %s failed: %m", u->name);
        return sd_bus_reply_method_return(m, NULL);
}

static int unit_check_plugin(Unit *u, sd_bus_error *error) {
        if (u->manager->state == MANAGER_STOPPING)
                return error_stopping(error);
        if (u->kind != UNIT_PLUGIN)
                return sd_bus_error_setf(error, OKG_SIDECAR_ERROR_NOT_A_PLUGIN,
                                         "%s is part of the suite's infrastructure; only Restart "
                                         "is allowed", u->name);
        return 0;
}

static int method_unit_start(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Unit *u = userdata;
        int r = unit_check_plugin(u, error);
        if (r < 0)
                return r;
        r = unit_start(u);
        if (r == -EALREADY)
                r = 0;
        return unit_reply_errno(m, u, r, error);
}

static int method_unit_stop(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Unit *u = userdata;
        int r = unit_check_plugin(u, error);
        if (r < 0)
                return r;
        return unit_reply_errno(m, u, unit_stop(u), error);
}

static int method_unit_restart(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Unit *u = userdata;
        if (u->manager->state == MANAGER_STOPPING)
                return error_stopping(error);
        if (u->kind == UNIT_BUS)
                return sd_bus_error_set(error, OKG_SIDECAR_ERROR_NOT_A_PLUGIN,
                                        "the bus cannot be restarted over itself");
        return unit_reply_errno(m, u, unit_restart(u), error);
}

#define EMITS SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE
static const sd_bus_vtable unit_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Name", "s", get_name, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Kind", "s", get_kind, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("BusName", "s", get_bus_name, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("State", "s", get_state, 0, EMITS),
        SD_BUS_PROPERTY("MainPID", "u", get_pid, 0, EMITS),
        SD_BUS_PROPERTY("Ready", "b", get_ready, 0, EMITS),
        SD_BUS_PROPERTY("Restarts", "u", get_restarts, 0, EMITS),
        SD_BUS_PROPERTY("BootOrder", "i", get_boot_order, 0, EMITS),
        SD_BUS_PROPERTY("RestartPolicy", "s", get_restart_policy, 0, EMITS),
        SD_BUS_PROPERTY("LastExitCode", "i", get_exit_code, 0, EMITS),
        SD_BUS_PROPERTY("LastExitSignal", "s", get_exit_signal, 0, EMITS),
        SD_BUS_PROPERTY("LastExitStatus", "s", get_exit_status, 0, EMITS),
        SD_BUS_PROPERTY("StatusText", "s", get_status_text, 0, EMITS),
        SD_BUS_PROPERTY("StartTimedOut", "b", get_start_timed_out, 0, EMITS),
        SD_BUS_PROPERTY("RestartDelayUSec", "t", get_restart_delay, 0, EMITS),
        SD_BUS_PROPERTY("ConsecutiveFailures", "u", get_failures, 0, EMITS),
        SD_BUS_PROPERTY("Transient", "b", get_transient, 0, EMITS),
        SD_BUS_METHOD("Start", "", "", method_unit_start, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("Stop", "", "", method_unit_stop, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("Restart", "", "", method_unit_restart, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

static int unit_find(sd_bus *bus, const char *path, const char *interface, void *userdata,
                     void **found, sd_bus_error *error) {
        Unit *u = manager_find_unit_by_path(userdata, path);
        if (!u)
                return 0;
        *found = u;
        return 1;
}

static int unit_enumerate(sd_bus *bus, const char *prefix, void *userdata, char ***nodes,
                          sd_bus_error *error) {
        Manager *m = userdata;
        char **l = calloc(m->n_units + 1, sizeof(char *));

        if (!l)
                return -ENOMEM;
        for (size_t i = 0; i < m->n_units; i++) {
                l[i] = strdup(m->units[i]->object_path);
                if (!l[i]) {
                        strv_free(l);
                        return -ENOMEM;
                }
        }
        *nodes = l;
        return 0;
}

/* ---- manager ---- */

#define MANAGER_GETTER(fname, sig, expr)                                                          \
        static int fname(sd_bus *bus, const char *path, const char *interface,                   \
                         const char *property, sd_bus_message *reply, void *userdata,            \
                         sd_bus_error *error) {                                                   \
                Manager *m = userdata;                                                            \
                return sd_bus_message_append(reply, sig, expr);                                   \
        }

MANAGER_GETTER(get_mstate, "s", manager_state_to_string(m->state))
MANAGER_GETTER(get_mready, "b", (int) manager_is_ready(m))
MANAGER_GETTER(get_healthy, "b", (int) manager_is_healthy(m))
MANAGER_GETTER(get_start_order, "s", start_order_to_string(m->config->start_order))
MANAGER_GETTER(get_mrestart_policy, "s", restart_policy_to_string(m->config->restart_policy))
MANAGER_GETTER(get_config_file, "s", m->config_path)
MANAGER_GETTER(get_runtime_dir, "s", m->runtime_dir)
MANAGER_GETTER(get_state_dir, "s", m->state_dir)
MANAGER_GETTER(get_bus_address, "s", m->bus_address)
MANAGER_GETTER(get_waiting, "b", (int) (m->state == MANAGER_WAITING_FOR_GAME))
MANAGER_GETTER(get_gate_timed_out, "b", (int) m->gate_timed_out)
MANAGER_GETTER(get_health_port, "q", (uint16_t) m->config->health_port)

static int get_version(sd_bus *bus, const char *path, const char *interface,
                       const char *property, sd_bus_message *reply, void *userdata,
                       sd_bus_error *error) {
        return sd_bus_message_append(reply, "s", OKG_VERSION);
}

static Unit *lookup_plugin(Manager *m, const char *name, sd_bus_error *error) {
        Unit *u = manager_find_unit(m, name);
        if (!u) {
                sd_bus_error_setf(error, OKG_SIDECAR_ERROR_NO_SUCH_PLUGIN, "No plugin named '%s'", name);
                return NULL;
        }
        return u;
}

static int append_unit_struct(sd_bus_message *reply, Unit *u) {
        return sd_bus_message_append(reply, "(sssubiuo)", u->name, unit_kind_to_string(u->kind),
                                     unit_state_to_string(u->state),
                                     (uint32_t) (u->pid > 0 ? u->pid : 0), (int) u->ready,
                                     (int32_t) u->boot_order, (uint32_t) u->restarts,
                                     u->object_path);
}

static int list_units(sd_bus_message *m, Manager *mgr, bool plugins_only) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        r = sd_bus_message_new_method_return(m, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "(sssubiuo)");
        if (r < 0)
                return r;
        for (size_t i = 0; i < mgr->n_units; i++) {
                if (plugins_only && mgr->units[i]->kind != UNIT_PLUGIN)
                        continue;
                r = append_unit_struct(reply, mgr->units[i]);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int method_list_plugins(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return list_units(m, userdata, true);
}

static int method_list_units(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return list_units(m, userdata, false);
}

static int method_get_unit(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        const char *name;
        Unit *u;
        int r;

        r = sd_bus_message_read(m, "s", &name);
        if (r < 0)
                return r;
        u = lookup_plugin(userdata, name, error);
        if (!u)
                return -ENOENT;
        return sd_bus_reply_method_return(m, "o", u->object_path);
}

static int method_plugin_status(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *name;
        Unit *u;
        int r;

        r = sd_bus_message_read(m, "s", &name);
        if (r < 0)
                return r;
        u = lookup_plugin(userdata, name, error);
        if (!u)
                return -ENOENT;
        r = sd_bus_message_new_method_return(m, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_append(
                reply, "a{sv}", 11,
                "Name", "s", u->name,
                "Kind", "s", unit_kind_to_string(u->kind),
                "State", "s", unit_state_to_string(u->state),
                "MainPID", "u", (uint32_t) (u->pid > 0 ? u->pid : 0),
                "Ready", "b", (int) u->ready,
                "Restarts", "u", (uint32_t) u->restarts,
                "BootOrder", "i", (int32_t) u->boot_order,
                "RestartPolicy", "s", restart_policy_to_string(u->kind == UNIT_PLUGIN ? u->restart_policy : RESTART_ALWAYS),
                "LastExitCode", "i", (int32_t) u->last_exit_code,
                "LastExitStatus", "s", strempty(u->last_exit_text),
                "StatusText", "s", strempty(u->status_text));
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

typedef int (*UnitOp)(Unit *u);

static int plugin_op(sd_bus_message *m, Manager *mgr, UnitOp op, bool allow_infra,
                     sd_bus_error *error) {
        const char *name;
        Unit *u;
        int r;

        r = sd_bus_message_read(m, "s", &name);
        if (r < 0)
                return r;
        u = lookup_plugin(mgr, name, error);
        if (!u)
                return -ENOENT;
        if (allow_infra && u->kind == UNIT_STORAGE) {
                if (mgr->state == MANAGER_STOPPING)
                        return error_stopping(error);
        } else {
                r = unit_check_plugin(u, error);
                if (r < 0)
                        return r;
        }
        r = op(u);
        if (r == -EALREADY)
                r = 0;
        return unit_reply_errno(m, u, r, error);
}

static int method_start_plugin(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return plugin_op(m, userdata, unit_start, false, error);
}

static int method_stop_plugin(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return plugin_op(m, userdata, unit_stop, false, error);
}

static int method_restart_plugin(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return plugin_op(m, userdata, unit_restart, true, error);
}

static int method_add_plugin(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        _cleanup_(freep) char *message = NULL;
        const char *name, *config;
        int32_t boot_order;
        Unit *u;
        int r;

        r = sd_bus_message_read(m, "sis", &name, &boot_order, &config);
        if (r < 0)
                return r;
        r = manager_add_plugin(userdata, name, boot_order, config, &message);
        if (r == -ESHUTDOWN)
                return error_stopping(error);
        if (r == -EEXIST)
                return sd_bus_error_set(error, OKG_SIDECAR_ERROR_PLUGIN_EXISTS,
                                        message ?: "plugin already present");
        if (r == -EINVAL)
                return sd_bus_error_set(error, OKG_SIDECAR_ERROR_INVALID_CONFIG,
                                        message ?: "invalid plugin config");
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "Cannot add plugin %s: %m", name);
        u = manager_find_unit(userdata, name);
        return sd_bus_reply_method_return(m, "o", u ? u->object_path : OKG_SIDECAR_PATH);
}

static int method_remove_plugin(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        const char *name;
        Unit *u;
        int r;

        r = sd_bus_message_read(m, "s", &name);
        if (r < 0)
                return r;
        u = lookup_plugin(userdata, name, error);
        if (!u)
                return -ENOENT;
        r = unit_check_plugin(u, error);
        if (r < 0)
                return r;
        return unit_reply_errno(m, u, manager_remove_plugin(userdata, u), error);
}

static int method_reload(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        _cleanup_(freep) char *message = NULL;
        int r;

        r = manager_reload(userdata, &message);
        if (r == -ESHUTDOWN)
                return error_stopping(error);
        if (r == -EINVAL)
                return sd_bus_error_set(error, OKG_SIDECAR_ERROR_INVALID_CONFIG,
                                        message ?: "invalid config");
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "Reload failed: %s", message ?: "");
        return sd_bus_reply_method_return(m, "b", r > 0);
}

static int method_get_version(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return sd_bus_reply_method_return(m, "s", OKG_VERSION);
}

static const sd_bus_vtable manager_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Version", "s", get_version, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("State", "s", get_mstate, 0, EMITS),
        SD_BUS_PROPERTY("Ready", "b", get_mready, 0, EMITS),
        SD_BUS_PROPERTY("Healthy", "b", get_healthy, 0, EMITS),
        SD_BUS_PROPERTY("WaitingForGame", "b", get_waiting, 0, EMITS),
        SD_BUS_PROPERTY("GameWaitTimedOut", "b", get_gate_timed_out, 0, EMITS),
        SD_BUS_PROPERTY("StartOrder", "s", get_start_order, 0, EMITS),
        SD_BUS_PROPERTY("RestartPolicy", "s", get_mrestart_policy, 0, EMITS),
        SD_BUS_PROPERTY("HealthPort", "q", get_health_port, 0, EMITS),
        SD_BUS_PROPERTY("ConfigFile", "s", get_config_file, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("RuntimeDirectory", "s", get_runtime_dir, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("StateDirectory", "s", get_state_dir, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("BusAddress", "s", get_bus_address, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_METHOD_WITH_ARGS("ListPlugins", SD_BUS_NO_ARGS,
                                SD_BUS_RESULT("a(sssubiuo)", plugins), method_list_plugins,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListUnits", SD_BUS_NO_ARGS, SD_BUS_RESULT("a(sssubiuo)", units),
                                method_list_units, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetUnit", SD_BUS_ARGS("s", name), SD_BUS_RESULT("o", path),
                                method_get_unit, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("PluginStatus", SD_BUS_ARGS("s", name),
                                SD_BUS_RESULT("a{sv}", status), method_plugin_status,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("StartPlugin", SD_BUS_ARGS("s", name), SD_BUS_NO_RESULT,
                                method_start_plugin, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("StopPlugin", SD_BUS_ARGS("s", name), SD_BUS_NO_RESULT,
                                method_stop_plugin, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("RestartPlugin", SD_BUS_ARGS("s", name), SD_BUS_NO_RESULT,
                                method_restart_plugin, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("AddPlugin", SD_BUS_ARGS("s", name, "i", boot_order, "s", config),
                                SD_BUS_RESULT("o", path), method_add_plugin,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("RemovePlugin", SD_BUS_ARGS("s", name), SD_BUS_NO_RESULT,
                                method_remove_plugin, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ReloadConfig", SD_BUS_NO_ARGS, SD_BUS_RESULT("b", changed),
                                method_reload, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetVersion", SD_BUS_NO_ARGS, SD_BUS_RESULT("s", version),
                                method_get_version, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

int sidecard_bus_setup(sd_bus *bus, void *userdata) {
        Manager *m = userdata;
        int r;

        r = sd_bus_add_object_vtable(bus, NULL, OKG_SIDECAR_PATH, OKG_SIDECAR_IFACE, manager_vtable, m);
        if (r < 0)
                return r;
        r = sd_bus_add_fallback_vtable(bus, NULL, OKG_SIDECAR_UNIT_PATH_PREFIX, OKG_SIDECAR_UNIT_IFACE,
                                       unit_vtable, unit_find, m);
        if (r < 0)
                return r;
        r = sd_bus_add_node_enumerator(bus, NULL, OKG_SIDECAR_UNIT_PATH_PREFIX, unit_enumerate, m);
        if (r < 0)
                return r;
        return sd_bus_add_object_manager(bus, NULL, OKG_SIDECAR_PATH);
}

void sidecard_bus_unit_added(Manager *m, Unit *u) {
        sd_bus *bus = okg_bus_get(m->bus);
        if (bus)
                (void) sd_bus_emit_object_added(bus, u->object_path);
}

void sidecard_bus_unit_removed(Manager *m, Unit *u) {
        sd_bus *bus = okg_bus_get(m->bus);
        if (bus)
                (void) sd_bus_emit_object_removed(bus, u->object_path);
}

void sidecard_bus_manager_changed(Manager *m) {
        okg_bus_emit_all_changed(m->bus, OKG_SIDECAR_PATH, OKG_SIDECAR_IFACE);
}
