/* The plugin kinds okg-sidecard knows: config name, daemon, bus name and config validator. */
#include "hotupdated-config.h"
#include "okg-bus-api.h"
#include "probed-config.h"
#include "probed-sq-config.h"
#include "sidecard-plugins.h"

const PluginType plugin_types[] = {
        {
                .name = "hot_update",
                .binary = "okg-hotupdated",
                .bus_name = OKG_HOTUPDATE_NAME,
                .validate = hotupdate_config_validate,
        },
        {
                .name = "http_probe",
                .binary = "okg-probed",
                .bus_name = OKG_PROBE_NAME,
                .validate = probe_config_validate,
        },
        {
                /* The same daemon, started with --plugin service_quality. */
                .name = "service_quality",
                .binary = "okg-probed",
                .bus_name = "io.kruise.game.ServiceQuality1",
                .validate = sq_config_validate,
        },
};

const size_t n_plugin_types = sizeof plugin_types / sizeof plugin_types[0];
