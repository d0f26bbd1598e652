/* A daemon's connection to the suite's private bus: connects to $OKG_BUS_ADDRESS, publishes
 * org.freedesktop.LogControl1 and the daemon's objects, takes its well-known name, and when the
 * bus goes away (dbus-daemon restarted by okg-sidecard) reconnects with back-off and publishes
 * everything again. */
#pragma once

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

typedef struct OkgBus OkgBus;

/* Adds the daemon's vtables/matches on a fresh connection. Called on every (re)connect. */
typedef int (*OkgBusSetupFunc)(sd_bus *bus, void *userdata);
/* Called after each successful (re)connect, once the name is owned. */
typedef void (*OkgBusConnectedFunc)(OkgBus *b, bool reconnect, void *userdata);

/* Connects once, synchronously (startup only); on failure returns the error and nothing is
 * left behind. address NULL means $OKG_BUS_ADDRESS. name may be NULL (no well-known name). */
int okg_bus_new(sd_event *e, const char *address, const char *name, OkgBusSetupFunc setup,
                OkgBusConnectedFunc connected, void *userdata, OkgBus **ret);
OkgBus *okg_bus_free(OkgBus *b);
static inline void okg_bus_freep(OkgBus **b) {
        okg_bus_free(*b);
}
/* The current connection, NULL while reconnecting. */
sd_bus *okg_bus_get(OkgBus *b);
unsigned okg_bus_reconnects(const OkgBus *b);

/* Emits PropertiesChanged for every EMITS_CHANGE property of iface at path (no-op while
 * disconnected). */
int okg_bus_emit_all_changed(OkgBus *b, const char *path, const char *iface);

/* Property getters for a field of the object at the property's offset, as in
 *   SD_BUS_PROPERTY("LastError", "s", okg_bus_property_get_string, offsetof(T, last_error), 0)
 * (sd-bus passes the object's userdata plus the offset). sd-bus reads fixed-size D-Bus types at
 * an offset by itself (getter NULL: uint64_t as "t", uint32_t as "u"); these cover the C types
 * it does not. */
/* char *, "s": NULL reads as "". */
int okg_bus_property_get_string(sd_bus *bus, const char *path, const char *interface,
                                const char *property, sd_bus_message *reply, void *userdata,
                                sd_bus_error *error);
/* bool, "b". */
int okg_bus_property_get_bool(sd_bus *bus, const char *path, const char *interface,
                              const char *property, sd_bus_message *reply, void *userdata,
                              sd_bus_error *error);
/* size_t, "u" (a count; UINT32_MAX when larger). */
int okg_bus_property_get_size(sd_bus *bus, const char *path, const char *interface,
                              const char *property, sd_bus_message *reply, void *userdata,
                              sd_bus_error *error);

/* The org.freedesktop.LogControl1 vtable at /org/freedesktop/LogControl1 (added by okg_bus on
 * every connection; exported for tests). */
extern const sd_bus_vtable okg_log_control_vtable[];
