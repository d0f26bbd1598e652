/* The bus API header: the wire names as docs/bus-api.md spells them, and our error names mapping
 * to errnos once registered; the shared offset-based property getters as a client reads them. */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#include "okg-bus-api.h"
#include "okg-bus.h"
#include "okg-test.h"

static void test_wire_names(void) {
        /* docs/bus-api.md is the contract: the names as clients spell them. */
        ASSERT_STREQ(OKG_SIDECAR_NAME, "io.kruise.game.Sidecar1");
        ASSERT_STREQ(OKG_SIDECAR_PATH, "/io/kruise/game/Sidecar1");
        ASSERT_STREQ(OKG_SIDECAR_UNIT_IFACE, "io.kruise.game.Sidecar1.Unit");
        ASSERT_STREQ(OKG_SIDECAR_UNIT_PATH_PREFIX, "/io/kruise/game/Sidecar1/unit");
        ASSERT_STREQ(OKG_SIDECAR_ERROR_PLUGIN_EXISTS, "io.kruise.game.Sidecar1.Error.PluginExists");
        ASSERT_STREQ(OKG_STORAGE_NAME, "io.kruise.game.Storage1");
        ASSERT_STREQ(OKG_STORAGE_PATH, "/io/kruise/game/Storage1");
        ASSERT_STREQ(OKG_STORAGE_ERROR_BUSY, "io.kruise.game.Storage1.Error.Busy");
        ASSERT_STREQ(OKG_STORAGE_ERROR_INVALID_ARGUMENT, "io.kruise.game.Storage1.Error.InvalidArgument");
        ASSERT_STREQ(OKG_HOTUPDATE_NAME, "io.kruise.game.HotUpdate1");
        ASSERT_STREQ(OKG_HOTUPDATE_PATH, "/io/kruise/game/HotUpdate1");
        ASSERT_STREQ(OKG_HOTUPDATE_ERROR("Busy"), "io.kruise.game.HotUpdate1.Error.Busy");
        ASSERT_STREQ(OKG_PROBE_NAME, "io.kruise.game.Probe1");
        ASSERT_STREQ(OKG_PROBE_ENDPOINT_IFACE, "io.kruise.game.Probe1.Endpoint");
        ASSERT_STREQ(OKG_PROBE_ENDPOINT_PATH_PREFIX, "/io/kruise/game/Probe1/endpoint");
        ASSERT_STREQ(OKG_STORAGE_ERROR_NOT_KNOWN, "io.kruise.game.Storage1.Error.NotKnown");
        ASSERT_STREQ(OKG_SERVICE_QUALITY_NAME, "io.kruise.game.ServiceQuality1");
        ASSERT_STREQ(OKG_SERVICE_QUALITY_PATH, "/io/kruise/game/ServiceQuality1");
        ASSERT_STREQ(OKG_SERVICE_QUALITY_PROBE_IFACE, "io.kruise.game.ServiceQuality1.Probe");
        ASSERT_STREQ(OKG_SERVICE_QUALITY_PROBE_PATH_PREFIX, "/io/kruise/game/ServiceQuality1/probe");
        ASSERT_STREQ(OKG_LOG_CONTROL_IFACE, "org.freedesktop.LogControl1");
}

static int errno_of(const char *name) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        int r;

        (void) sd_bus_error_set(&e, name, "test");
        r = sd_bus_error_get_errno(&e);
        sd_bus_error_free(&e);
        return r;
}

static void test_error_map(void) {
        /* libsystemd alone does not know our names. */
        ASSERT_EQ(errno_of(OKG_STORAGE_ERROR_BUSY), EIO);

        ASSERT_EQ(okg_bus_error_map_register(), 0);
        ASSERT_EQ(okg_bus_error_map_register(), 0);     /* once is enough; again is harmless */

        ASSERT_EQ(errno_of(OKG_STORAGE_ERROR_BUSY), EBUSY);
        ASSERT_EQ(errno_of(OKG_STORAGE_ERROR_INVALID_ARGUMENT), EINVAL);
        ASSERT_EQ(errno_of(OKG_SIDECAR_ERROR_NO_SUCH_PLUGIN), ENOENT);
        ASSERT_EQ(errno_of(OKG_SIDECAR_ERROR_PLUGIN_EXISTS), EEXIST);
        ASSERT_EQ(errno_of(OKG_SIDECAR_ERROR_SHUTTING_DOWN), ESHUTDOWN);
        ASSERT_EQ(errno_of(OKG_HOTUPDATE_ERROR_INVALID_ARGUMENT), EINVAL);
        /* A name of ours without an entry stays the generic EIO. */
        ASSERT_EQ(errno_of(OKG_HOTUPDATE_ERROR("DownloadFailed")), EIO);
        /* What sd_bus_error_set() returns for a handler follows the map too. */
        {
                sd_bus_error e = SD_BUS_ERROR_NULL;
                ASSERT_EQ(sd_bus_error_set(&e, OKG_STORAGE_ERROR_BUSY, "later"), -EBUSY);
                sd_bus_error_free(&e);
        }
}

/* Fields of every C type the shared getters read, with neighbours that would show through a
 * getter reading the wrong width (a bool read as an int, a size_t as its low half). */
typedef struct Thing {
        char *name;
        char *none;
        bool off;
        bool on, pad1, pad2;
        size_t count;
        size_t huge;
        uint64_t counter;
} Thing;

static const sd_bus_vtable thing_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Name", "s", okg_bus_property_get_string, offsetof(Thing, name), 0),
        SD_BUS_PROPERTY("None", "s", okg_bus_property_get_string, offsetof(Thing, none), 0),
        SD_BUS_PROPERTY("Off", "b", okg_bus_property_get_bool, offsetof(Thing, off), 0),
        SD_BUS_PROPERTY("On", "b", okg_bus_property_get_bool, offsetof(Thing, on), 0),
        SD_BUS_PROPERTY("Count", "u", okg_bus_property_get_size, offsetof(Thing, count), 0),
        SD_BUS_PROPERTY("Huge", "u", okg_bus_property_get_size, offsetof(Thing, huge), 0),
        SD_BUS_PROPERTY("Counter", "t", NULL, offsetof(Thing, counter), 0),
        SD_BUS_VTABLE_END,
};

/* Serves one Thing on a peer-to-peer connection until the client hangs up; never returns. */
__attribute__((noreturn)) static void serve_thing(int fd) {
        Thing t = { .name = (char *) "game-1", .none = NULL, .off = false, .on = true,
                    .pad1 = true, .pad2 = true, .count = 7, .huge = (size_t) 1 << 40,
                    .counter = UINT64_C(1) << 40 };
        sd_bus *bus = NULL;
        sd_id128_t id;
        int r;

        r = sd_id128_randomize(&id);
        if (r >= 0)
                r = sd_bus_new(&bus);
        if (r >= 0)
                r = sd_bus_set_fd(bus, fd, fd);
        if (r >= 0)
                r = sd_bus_set_server(bus, true, id);
        if (r >= 0)
                r = sd_bus_set_anonymous(bus, true);
        if (r >= 0)
                r = sd_bus_add_object_vtable(bus, NULL, "/thing", "test.Thing", thing_vtable, &t);
        if (r >= 0)
                r = sd_bus_start(bus);
        while (r >= 0) {
                r = sd_bus_process(bus, NULL);
                if (r == 0)
                        r = sd_bus_wait(bus, UINT64_MAX);
        }
        sd_bus_flush_close_unref(bus);
        _exit(r == -ECONNRESET || r == -ENOTCONN ? 0 : 1);
}

static void test_property_getters(void) {
        sd_bus *bus = NULL;
        char *s = NULL;
        int fds[2], b = -1, status;
        uint32_t u = 0;
        uint64_t t = 0;
        pid_t pid;

        ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
        pid = fork();
        ASSERT_TRUE(pid >= 0);
        if (pid == 0) {
                close(fds[0]);
                serve_thing(fds[1]);
        }
        close(fds[1]);
        ASSERT_EQ(sd_bus_new(&bus), 0);
        ASSERT_EQ(sd_bus_set_fd(bus, fds[0], fds[0]), 0);
        ASSERT_EQ(sd_bus_set_anonymous(bus, true), 0);
        ASSERT_TRUE(sd_bus_start(bus) >= 0);

        ASSERT_EQ(sd_bus_get_property_string(bus, NULL, "/thing", "test.Thing", "Name", NULL, &s), 0);
        ASSERT_STREQ(s, "game-1");
        free(s);
        /* NULL is the empty string, not an error. */
        ASSERT_EQ(sd_bus_get_property_string(bus, NULL, "/thing", "test.Thing", "None", NULL, &s), 0);
        ASSERT_STREQ(s, "");
        free(s);
        ASSERT_EQ(sd_bus_get_property_trivial(bus, NULL, "/thing", "test.Thing", "Off", NULL, 'b', &b), 0);
        ASSERT_EQ(b, 0);
        ASSERT_EQ(sd_bus_get_property_trivial(bus, NULL, "/thing", "test.Thing", "On", NULL, 'b', &b), 0);
        ASSERT_EQ(b, 1);
        ASSERT_EQ(sd_bus_get_property_trivial(bus, NULL, "/thing", "test.Thing", "Count", NULL, 'u', &u), 0);
        ASSERT_EQ(u, 7);
        /* A count beyond "u" saturates rather than showing its low half (0 here). */
        ASSERT_EQ(sd_bus_get_property_trivial(bus, NULL, "/thing", "test.Thing", "Huge", NULL, 'u', &u), 0);
        ASSERT_EQ(u, UINT32_MAX);
        ASSERT_EQ(sd_bus_get_property_trivial(bus, NULL, "/thing", "test.Thing", "Counter", NULL, 't', &t), 0);
        ASSERT_TRUE(t == UINT64_C(1) << 40);

        sd_bus_flush_close_unref(bus);
        ASSERT_EQ(waitpid(pid, &status, 0), pid);
        ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

int main(void) {
        test_wire_names();
        test_error_map();
        test_property_getters();
        return 0;
}
