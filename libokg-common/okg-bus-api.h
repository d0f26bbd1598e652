/* The suite's bus API in one place: the well-known names, object paths, interfaces and error
 * names that docs/bus-api.md documents (it is the contract; tests/component/test_bus.py checks
 * the wire names), and the map from our error names to errnos. */
#pragma once

#include <systemd/sd-bus.h>

#define OKG_BUS_NAME_PREFIX "io.kruise.game."
#define OKG_BUS_PATH_PREFIX "/io/kruise/game/"

/* okg-sidecard */
#define OKG_SIDECAR_NAME OKG_BUS_NAME_PREFIX "Sidecar1"
#define OKG_SIDECAR_PATH OKG_BUS_PATH_PREFIX "Sidecar1"
#define OKG_SIDECAR_IFACE OKG_SIDECAR_NAME
#define OKG_SIDECAR_UNIT_PATH_PREFIX OKG_SIDECAR_PATH "/unit"
#define OKG_SIDECAR_UNIT_IFACE OKG_SIDECAR_NAME ".Unit"
#define OKG_SIDECAR_ERROR(x) OKG_SIDECAR_NAME ".Error." x
#define OKG_SIDECAR_ERROR_NO_SUCH_PLUGIN OKG_SIDECAR_ERROR("NoSuchPlugin")
#define OKG_SIDECAR_ERROR_NOT_A_PLUGIN OKG_SIDECAR_ERROR("NotAPlugin")
#define OKG_SIDECAR_ERROR_INVALID_CONFIG OKG_SIDECAR_ERROR("InvalidConfig")
#define OKG_SIDECAR_ERROR_PLUGIN_EXISTS OKG_SIDECAR_ERROR("PluginExists")
#define OKG_SIDECAR_ERROR_SHUTTING_DOWN OKG_SIDECAR_ERROR("ShuttingDown")
#define OKG_SIDECAR_ERROR_FAILED OKG_SIDECAR_ERROR("Failed")

/* okg-storaged */
#define OKG_STORAGE_NAME OKG_BUS_NAME_PREFIX "Storage1"
#define OKG_STORAGE_PATH OKG_BUS_PATH_PREFIX "Storage1"
#define OKG_STORAGE_IFACE OKG_STORAGE_NAME
#define OKG_STORAGE_ERROR(x) OKG_STORAGE_NAME ".Error." x
#define OKG_STORAGE_ERROR_INVALID_ARGUMENT OKG_STORAGE_ERROR("InvalidArgument")
/* okg-storaged cannot answer now (the API server is unreachable): try again later. */
#define OKG_STORAGE_ERROR_BUSY OKG_STORAGE_ERROR("Busy")
/* GetPod: the pod has not been read yet (or the local store holds none). */
#define OKG_STORAGE_ERROR_NOT_KNOWN OKG_STORAGE_ERROR("NotKnown")

/* okg-hotupdated; its error names come from the outcome table (hotupdated-status.c). */
#define OKG_HOTUPDATE_NAME OKG_BUS_NAME_PREFIX "HotUpdate1"
#define OKG_HOTUPDATE_PATH OKG_BUS_PATH_PREFIX "HotUpdate1"
#define OKG_HOTUPDATE_IFACE OKG_HOTUPDATE_NAME
#define OKG_HOTUPDATE_ERROR(x) OKG_HOTUPDATE_NAME ".Error." x
#define OKG_HOTUPDATE_ERROR_INVALID_ARGUMENT OKG_HOTUPDATE_ERROR("InvalidArgument")

/* okg-probed */
#define OKG_PROBE_NAME OKG_BUS_NAME_PREFIX "Probe1"
#define OKG_PROBE_PATH OKG_BUS_PATH_PREFIX "Probe1"
#define OKG_PROBE_IFACE OKG_PROBE_NAME
#define OKG_PROBE_ENDPOINT_PATH_PREFIX OKG_PROBE_PATH "/endpoint"
#define OKG_PROBE_ENDPOINT_IFACE OKG_PROBE_NAME ".Endpoint"

/* okg-probed as the service_quality plugin */
#define OKG_SERVICE_QUALITY_NAME OKG_BUS_NAME_PREFIX "ServiceQuality1"
#define OKG_SERVICE_QUALITY_PATH OKG_BUS_PATH_PREFIX "ServiceQuality1"
#define OKG_SERVICE_QUALITY_IFACE OKG_SERVICE_QUALITY_NAME
#define OKG_SERVICE_QUALITY_PROBE_PATH_PREFIX OKG_SERVICE_QUALITY_PATH "/probe"
#define OKG_SERVICE_QUALITY_PROBE_IFACE OKG_SERVICE_QUALITY_NAME ".Probe"

/* Every daemon's log level (systemd's interface, same names). */
#define OKG_LOG_CONTROL_PATH "/org/freedesktop/LogControl1"
#define OKG_LOG_CONTROL_IFACE "org.freedesktop.LogControl1"

/* Our error names with the errno each stands for: sd_bus_error_get_errno() on a reply (and the
 * return value of sd_bus_error_set() with one of these names) gives it instead of EIO. */
extern const sd_bus_error_map okg_bus_error_map[];

/* Registers okg_bus_error_map with libsystemd; idempotent, called by okg_bus_new() and okgctl
 * before their first call. Returns 0 or a negative errno. */
int okg_bus_error_map_register(void);
