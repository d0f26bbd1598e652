/* The private-bus connection with reconnect; see okg-bus.h. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "log.h"
#include "macro.h"
#include "okg-bus-api.h"
#include "okg-bus.h"
#include "okg-event.h"
#include "okg-util.h"

#define RECONNECT_FIRST_USEC (50 * USEC_PER_MSEC)
#define RECONNECT_MAX_USEC (2 * USEC_PER_SEC)

struct OkgBus {
        sd_event *event;
        sd_bus *bus;
        char *address;
        char *name;
        OkgBusSetupFunc setup;
        OkgBusConnectedFunc connected;
        void *userdata;
        sd_event_source *reconnect_timer;
        unsigned attempts;
        unsigned reconnects;
};

static int property_get_log_level(sd_bus *bus, const char *path, const char *interface,
                                  const char *property, sd_bus_message *reply, void *userdata,
                                  sd_bus_error *error) {
        return sd_bus_message_append(reply, "s", log_level_to_string(log_get_max_level()));
}

static int property_set_log_level(sd_bus *bus, const char *path, const char *interface,
                                  const char *property, sd_bus_message *value, void *userdata,
                                  sd_bus_error *error) {
        const char *t;
        int r, level;

        r = sd_bus_message_read(value, "s", &t);
        if (r < 0)
                return r;
        level = log_level_from_string(t);
        if (level < 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Invalid log level '%s' (use emerg..debug)", t);
        log_info("Log level set to %s.", log_level_to_string(level));
        log_set_max_level(level);
        return 0;
}

static int property_get_log_target(sd_bus *bus, const char *path, const char *interface,
                                   const char *property, sd_bus_message *reply, void *userdata,
                                   sd_bus_error *error) {
        return sd_bus_message_append(reply, "s", log_target_to_string(log_get_target()));
}

static int property_set_log_target(sd_bus *bus, const char *path, const char *interface,
                                   const char *property, sd_bus_message *value, void *userdata,
                                   sd_bus_error *error) {
        const char *t;
        LogTarget target;
        int r;

        r = sd_bus_message_read(value, "s", &t);
        if (r < 0)
                return r;
        target = log_target_from_string(t);
        if (target < 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Invalid log target '%s' (use console, kmsg or null)", t);
        log_set_target(target);
        return 0;
}

static int property_get_ident(sd_bus *bus, const char *path, const char *interface,
                              const char *property, sd_bus_message *reply, void *userdata,
                              sd_bus_error *error) {
        return sd_bus_message_append(reply, "s", log_get_ident());
}

const sd_bus_vtable okg_log_control_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_WRITABLE_PROPERTY("LogLevel", "s", property_get_log_level, property_set_log_level, 0, 0),
        SD_BUS_WRITABLE_PROPERTY("LogTarget", "s", property_get_log_target, property_set_log_target, 0, 0),
        SD_BUS_PROPERTY("SyslogIdentifier", "s", property_get_ident, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_VTABLE_END,
};

static void bus_drop(OkgBus *b) {
        if (!b->bus)
                return;
        sd_bus_detach_event(b->bus);
        sd_bus_flush_close_unref(b->bus);
        b->bus = NULL;
}

static int on_disconnected(sd_bus_message *m, void *userdata, sd_bus_error *error);

static int bus_connect(OkgBus *b) {
        _cleanup_(sd_bus_unrefp) sd_bus *bus = NULL;
        int r;

        r = sd_bus_new(&bus);
        if (r < 0)
                return r;
        r = sd_bus_set_address(bus, b->address);
        if (r < 0)
                return r;
        r = sd_bus_set_bus_client(bus, true);
        if (r < 0)
                return r;
        /* We reconnect ourselves; sd-bus must not end the event loop when the bus goes away. */
        r = sd_bus_set_exit_on_disconnect(bus, false);
        if (r < 0)
                return r;
        r = sd_bus_start(bus);
        if (r < 0)
                return r;
        r = sd_bus_attach_event(bus, b->event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0)
                return r;
        r = sd_bus_match_signal(bus, NULL, "org.freedesktop.DBus.Local",
                                "/org/freedesktop/DBus/Local", "org.freedesktop.DBus.Local",
                                "Disconnected", on_disconnected, b);
        if (r < 0)
                return r;
        r = sd_bus_add_object_vtable(bus, NULL, OKG_LOG_CONTROL_PATH, OKG_LOG_CONTROL_IFACE,
                                     okg_log_control_vtable, b);
        if (r < 0)
                return r;
        if (b->setup) {
                r = b->setup(bus, b->userdata);
                if (r < 0)
                        return r;
        }
        if (b->name) {
                r = sd_bus_request_name(bus, b->name, 0);
                if (r < 0)
                        return r;
        }
        b->bus = TAKE_PTR(bus);
        return 0;
}

static int schedule_reconnect(OkgBus *b);

static int on_reconnect_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        OkgBus *b = userdata;
        int r;

        bus_drop(b);
        r = bus_connect(b);
        if (r < 0) {
                log_debug_errno(r, "Reconnecting to the private bus failed, will retry: %m");
                return schedule_reconnect(b);
        }
        b->attempts = 0;
        b->reconnects++;
        log_info("Reconnected to the private bus%s%s.", b->name ? " as " : "", strempty(b->name));
        if (b->connected)
                b->connected(b, true, b->userdata);
        return 0;
}

static int schedule_reconnect(OkgBus *b) {
        uint64_t delay;
        int r;

        b->attempts++;
        delay = okg_backoff_usec(b->attempts, RECONNECT_FIRST_USEC, RECONNECT_MAX_USEC);
        r = okg_timer_arm(b->event, &b->reconnect_timer, delay, 0, on_reconnect_timer, b, NULL);
        if (r < 0)
                return log_error_errno(r, "Failed to arm the bus reconnect timer: %m");
        return 0;
}

static int on_disconnected(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        OkgBus *b = userdata;

        log_warning("Lost the private bus connection; reconnecting.");
        /* The connection is dropped from the timer, not from inside its own dispatch. */
        b->attempts = 0;
        return schedule_reconnect(b);
}

int okg_bus_new(sd_event *e, const char *address, const char *name, OkgBusSetupFunc setup,
                OkgBusConnectedFunc connected, void *userdata, OkgBus **ret) {
        _cleanup_(okg_bus_freep) OkgBus *b = NULL;
        int r;

        if (!address)
                address = getenv("OKG_BUS_ADDRESS");
        if (isempty(address))
                return log_debug_errno(ENXIO, "OKG_BUS_ADDRESS is not set.");
        r = okg_bus_error_map_register();
        if (r < 0)
                return r;

        b = calloc(1, sizeof *b);
        if (!b)
                return -ENOMEM;
        b->event = sd_event_ref(e);
        b->address = strdup(address);
        b->name = name ? strdup(name) : NULL;
        if (!b->address || (name && !b->name))
                return -ENOMEM;
        b->setup = setup;
        b->connected = connected;
        b->userdata = userdata;

        r = bus_connect(b);
        if (r < 0)
                return r;
        if (connected)
                connected(b, false, userdata);
        *ret = TAKE_PTR(b);
        return 0;
}

OkgBus *okg_bus_free(OkgBus *b) {
        if (!b)
                return NULL;
        sd_event_source_disable_unref(b->reconnect_timer);
        bus_drop(b);
        sd_event_unref(b->event);
        free(b->address);
        free(b->name);
        free(b);
        return NULL;
}

sd_bus *okg_bus_get(OkgBus *b) {
        return b ? b->bus : NULL;
}

unsigned okg_bus_reconnects(const OkgBus *b) {
        return b->reconnects;
}

int okg_bus_emit_all_changed(OkgBus *b, const char *path, const char *iface) {
        if (!b || !b->bus || !sd_bus_is_open(b->bus))
                return 0;
        return sd_bus_emit_properties_changed_strv(b->bus, path, iface, NULL);
}

int okg_bus_property_get_string(sd_bus *bus, const char *path, const char *interface,
                                const char *property, sd_bus_message *reply, void *userdata,
                                sd_bus_error *error) {
        return sd_bus_message_append(reply, "s", strempty(*(char **) userdata));
}

int okg_bus_property_get_bool(sd_bus *bus, const char *path, const char *interface,
                              const char *property, sd_bus_message *reply, void *userdata,
                              sd_bus_error *error) {
        /* sd-bus's own "b" reads an int: a C bool is one byte. */
        return sd_bus_message_append(reply, "b", (int) *(bool *) userdata);
}

int okg_bus_property_get_size(sd_bus *bus, const char *path, const char *interface,
                              const char *property, sd_bus_message *reply, void *userdata,
                              sd_bus_error *error) {
        size_t v = *(size_t *) userdata;
        return sd_bus_message_append(reply, "u", v > UINT32_MAX ? UINT32_MAX : (uint32_t) v);
}
