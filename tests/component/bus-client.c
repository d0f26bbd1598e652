/* A small sd-bus client of io.kruise.game.Sidecar1 for the component tests: what a program
 * (rather than busctl) sees of the API, including PropertiesChanged signals.
 *   okg-test-bus-client ADDRESS list
 *   okg-test-bus-client ADDRESS status NAME
 *   okg-test-bus-client ADDRESS restart-and-watch NAME
 *   okg-test-bus-client ADDRESS call-error METHOD NAME     (prints the D-Bus error name) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-bus.h>

#define DEST "io.kruise.game.Sidecar1"
#define PATH "/io/kruise/game/Sidecar1"

static int list(sd_bus *bus) {
        sd_bus_error error = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = NULL;
        const char *name, *kind, *state, *path;
        uint32_t pid, restarts;
        int ready, boot, r;

        r = sd_bus_call_method(bus, DEST, PATH, DEST, "ListPlugins", &error, &reply, "");
        if (r < 0) {
                fprintf(stderr, "ListPlugins: %s\n", error.message);
                return 1;
        }
        r = sd_bus_message_enter_container(reply, 'a', "(sssubiuo)");
        while ((r = sd_bus_message_read(reply, "(sssubiuo)", &name, &kind, &state, &pid, &ready,
                                        &boot, &restarts, &path)) > 0)
                printf("%s %s %s %u %d %d %u %s\n", name, kind, state, pid, ready, boot, restarts, path);
        sd_bus_message_unref(reply);
        return r < 0 ? 1 : 0;
}

static int status(sd_bus *bus, const char *unit) {
        sd_bus_error error = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = NULL;
        int r;

        r = sd_bus_call_method(bus, DEST, PATH, DEST, "PluginStatus", &error, &reply, "s", unit);
        if (r < 0) {
                fprintf(stderr, "%s: %s\n", error.name, error.message);
                return 1;
        }
        sd_bus_message_enter_container(reply, 'a', "{sv}");
        while (sd_bus_message_enter_container(reply, 'e', "sv") > 0) {
                const char *key, *contents;
                char type;
                sd_bus_message_read(reply, "s", &key);
                sd_bus_message_peek_type(reply, &type, &contents);
                sd_bus_message_enter_container(reply, 'v', contents);
                if (contents[0] == 's') {
                        const char *v;
                        sd_bus_message_read(reply, "s", &v);
                        printf("%s=%s\n", key, v);
                } else if (contents[0] == 'b') {
                        int v;
                        sd_bus_message_read(reply, "b", &v);
                        printf("%s=%s\n", key, v ? "true" : "false");
                } else if (contents[0] == 'u') {
                        uint32_t v;
                        sd_bus_message_read(reply, "u", &v);
                        printf("%s=%u\n", key, v);
                } else if (contents[0] == 'i') {
                        int32_t v;
                        sd_bus_message_read(reply, "i", &v);
                        printf("%s=%d\n", key, v);
                } else
                        sd_bus_message_skip(reply, contents);
                sd_bus_message_exit_container(reply);
                sd_bus_message_exit_container(reply);
        }
        sd_bus_message_unref(reply);
        return 0;
}

struct watch {
        uint32_t old_pid, new_pid;
        int ready;
        int done;
        unsigned signals;
};

static int on_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        struct watch *w = userdata;
        const char *iface;

        w->signals++;
        if (sd_bus_message_read(m, "s", &iface) < 0)
                return 0;
        if (sd_bus_message_enter_container(m, 'a', "{sv}") < 0)
                return 0;
        while (sd_bus_message_enter_container(m, 'e', "sv") > 0) {
                const char *key, *contents;
                char type;
                sd_bus_message_read(m, "s", &key);
                sd_bus_message_peek_type(m, &type, &contents);
                if (strcmp(key, "MainPID") == 0) {
                        sd_bus_message_enter_container(m, 'v', "u");
                        sd_bus_message_read(m, "u", &w->new_pid);
                        sd_bus_message_exit_container(m);
                } else if (strcmp(key, "Ready") == 0) {
                        sd_bus_message_enter_container(m, 'v', "b");
                        sd_bus_message_read(m, "b", &w->ready);
                        sd_bus_message_exit_container(m);
                } else
                        sd_bus_message_skip(m, "v");
                sd_bus_message_exit_container(m);
        }
        if (w->ready && w->new_pid != 0 && w->new_pid != w->old_pid)
                w->done = 1;
        return 0;
}

static int restart_and_watch(sd_bus *bus, const char *unit) {
        sd_bus_error error = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = NULL;
        const char *path;
        struct watch w = {};
        int r;

        r = sd_bus_call_method(bus, DEST, PATH, DEST, "GetUnit", &error, &reply, "s", unit);
        if (r < 0) {
                fprintf(stderr, "GetUnit: %s\n", error.message);
                return 1;
        }
        sd_bus_message_read(reply, "o", &path);
        path = strdup(path);
        sd_bus_message_unref(reply);
        reply = NULL;
        r = sd_bus_get_property_trivial(bus, DEST, path, DEST ".Unit", "MainPID", &error, 'u', &w.old_pid);
        if (r < 0)
                return 1;
        r = sd_bus_match_signal(bus, NULL, DEST, path, "org.freedesktop.DBus.Properties",
                                "PropertiesChanged", on_changed, &w);
        if (r < 0)
                return 1;
        r = sd_bus_call_method(bus, DEST, PATH, DEST, "RestartPlugin", &error, NULL, "s", unit);
        if (r < 0) {
                fprintf(stderr, "RestartPlugin: %s\n", error.message);
                return 1;
        }
        for (int i = 0; i < 400 && !w.done; i++) {
                r = sd_bus_process(bus, NULL);
                if (r < 0)
                        return 1;
                if (r == 0)
                        sd_bus_wait(bus, 50000);
        }
        if (!w.done) {
                fprintf(stderr, "no PropertiesChanged with a new ready process (%u signals)\n", w.signals);
                return 1;
        }
        printf("old %u new %u signals %u\n", w.old_pid, w.new_pid, w.signals);
        free((char *) path);
        return 0;
}

static int call_error(sd_bus *bus, const char *method, const char *arg) {
        sd_bus_error error = SD_BUS_ERROR_NULL;
        int r = sd_bus_call_method(bus, DEST, PATH, DEST, method, &error, NULL, "s", arg);
        if (r >= 0) {
                printf("no error\n");
                return 1;
        }
        printf("%s: %s\n", error.name, error.message);
        return 0;
}

int main(int argc, char **argv) {
        sd_bus *bus = NULL;
        int r;

        if (argc < 3)
                return 2;
        if (sd_bus_new(&bus) < 0 || sd_bus_set_address(bus, argv[1]) < 0 ||
            sd_bus_set_bus_client(bus, 1) < 0 || (r = sd_bus_start(bus)) < 0) {
                fprintf(stderr, "cannot connect to %s\n", argv[1]);
                return 1;
        }
        if (strcmp(argv[2], "list") == 0)
                r = list(bus);
        else if (strcmp(argv[2], "status") == 0 && argc == 4)
                r = status(bus, argv[3]);
        else if (strcmp(argv[2], "restart-and-watch") == 0 && argc == 4)
                r = restart_and_watch(bus, argv[3]);
        else if (strcmp(argv[2], "call-error") == 0 && argc == 5)
                r = call_error(bus, argv[3], argv[4]);
        else
                r = 2;
        sd_bus_flush_close_unref(bus);
        return r;
}
