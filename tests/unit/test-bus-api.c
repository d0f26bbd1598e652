/* The bus API header: the wire names as docs/bus-api.md spells them, and our error names mapping
 * to errnos once registered. */
#include <errno.h>
#include <systemd/sd-bus.h>

#include "okg-bus-api.h"
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

int main(void) {
        test_wire_names();
        test_error_map();
        return 0;
}
