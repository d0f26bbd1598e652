/* The errnos behind the suite's bus error names; see okg-bus-api.h. */
#include <errno.h>

#include "okg-bus-api.h"

const sd_bus_error_map okg_bus_error_map[] = {
        SD_BUS_ERROR_MAP(OKG_SIDECAR_ERROR_NO_SUCH_PLUGIN, ENOENT),
        SD_BUS_ERROR_MAP(OKG_SIDECAR_ERROR_NOT_A_PLUGIN, EPERM),
        SD_BUS_ERROR_MAP(OKG_SIDECAR_ERROR_INVALID_CONFIG, EINVAL),
        SD_BUS_ERROR_MAP(OKG_SIDECAR_ERROR_PLUGIN_EXISTS, EEXIST),
        SD_BUS_ERROR_MAP(OKG_SIDECAR_ERROR_SHUTTING_DOWN, ESHUTDOWN),
        SD_BUS_ERROR_MAP(OKG_SIDECAR_ERROR_FAILED, EIO),
        SD_BUS_ERROR_MAP(OKG_STORAGE_ERROR_INVALID_ARGUMENT, EINVAL),
        SD_BUS_ERROR_MAP(OKG_STORAGE_ERROR_BUSY, EBUSY),
        SD_BUS_ERROR_MAP(OKG_STORAGE_ERROR_NOT_KNOWN, ENODATA),
        SD_BUS_ERROR_MAP(OKG_HOTUPDATE_ERROR_INVALID_ARGUMENT, EINVAL),
        SD_BUS_ERROR_MAP_END,
};

int okg_bus_error_map_register(void) {
        int r = sd_bus_error_add_map(okg_bus_error_map);

        return r < 0 ? r : 0;
}
