/* okgctl: the command-line client of the suite's private bus, like systemctl for okg-sidecar.
 * Human output by default, --json for scripts. */
#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-bus.h>

#include "fleet-logic.h"
#include "fleet.h"
#include "log.h"
#include "macro.h"
#include "okg-build-config.h"
#include "okg-bus-api.h"
#include "okg-daemon.h"
#include "okg-util.h"

/* Exit codes (OkgExitCode): 0 done, 1 the suite said no or is unreachable, 2 usage. */
static bool arg_json;
static const char *arg_address;
/* The command's name in its messages, as the user typed it: "okgctl", or "kubectl okg" when
 * run as the kubectl plugin (okgctl_program_name()). Set first thing in run(). */
static const char *prog = "okgctl";

static int fail_bus(const char *what, int r, const sd_bus_error *e) {
        fprintf(stderr, "%s: %s: %s\n", prog, what,
                e && sd_bus_error_is_set(e) ? e->message : strerror(-r));
        return OKG_EXIT_FAILURE;
}

static void print_json(json_object *o) {
        puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                                                       JSON_C_TO_STRING_NOSLASHESCAPE));
}

/* The longest path a unix socket address holds (sun_path, with its NUL). */
#define SOCKET_PATH_MAX (sizeof(((struct sockaddr_un *) NULL)->sun_path) - 1)

/* The D-Bus address for --address / $OKG_BUS_ADDRESS: an address as it is; anything else is a
 * path: a directory is a runtime directory and means its bus socket, anything else is the
 * socket itself. A relative path stays relative (sd-bus connects from the current directory),
 * so a deep current directory does not push it past the socket address's limit; a path that
 * is itself too long is named with the limit. */
static int resolve_address(const char *arg, char **ret) {
        _cleanup_(freep) char *socket = NULL;
        struct stat st;
        int r = 0;

        if (okg_bus_is_address(arg)) {
                *ret = strdup(arg);
                return *ret ? 0 : -ENOMEM;
        }
        if (isempty(arg))
                r = -EINVAL;
        else if (stat(arg, &st) < 0)
                r = -errno;
        else if (!S_ISDIR(st.st_mode))
                socket = strdup(arg);
        else if (asprintf(&socket, "%s%sbus", arg, arg[strlen(arg) - 1] == '/' ? "" : "/") < 0)
                socket = NULL;
        if (r >= 0 && !socket)
                r = -ENOMEM;
        if (r >= 0 && strlen(socket) > SOCKET_PATH_MAX) {
                fprintf(stderr, "%s: cannot connect to the suite's bus at %s: the socket path %s "
                                "is %zu bytes, more than the %zu a unix socket address holds\n"
                                "(pass a shorter path: a relative one from nearer the socket, or "
                                "a symbolic link to its directory)\n",
                        prog, arg, socket, strlen(socket), SOCKET_PATH_MAX);
                return -ENAMETOOLONG;
        }
        if (r >= 0)
                r = okg_bus_address_from_socket(socket, ret);
        if (r < 0)
                fprintf(stderr, "%s: cannot connect to the suite's bus at %s: %s\n"
                                "(--address takes a D-Bus address, a runtime directory or its bus "
                                "socket)\n", prog, arg, strerror(-r));
        return r;
}

static int connect_bus(sd_bus **ret) {
        _cleanup_(freep) char *addr = NULL;
        sd_bus *bus = NULL;
        const char *a = arg_address ?: getenv("OKG_BUS_ADDRESS");
        int r;

        if (isempty(a))
                a = "unix:path=/run/okg-sidecar/bus";
        r = resolve_address(a, &addr);
        if (r < 0)
                return r;
        a = addr;
        r = okg_bus_error_map_register();
        if (r >= 0)
                r = sd_bus_new(&bus);
        if (r >= 0)
                r = sd_bus_set_address(bus, a);
        if (r >= 0)
                r = sd_bus_set_bus_client(bus, true);
        if (r >= 0)
                r = sd_bus_start(bus);
        if (r == -E2BIG)
                /* What sd-bus says of a unix:path= that does not fit: "Argument list too long". */
                fprintf(stderr, "%s: cannot connect to the suite's bus at %s: its socket path is "
                                "more than the %zu bytes a unix socket address holds\n"
                                "(pass a shorter path: a relative one from nearer the socket, or "
                                "a symbolic link to its directory)\n", prog, a, SOCKET_PATH_MAX);
        else if (r < 0)
                fprintf(stderr, "%s: cannot connect to the suite's bus at %s: %s\n"
                                "(is okg-sidecard running? pass --address or set OKG_BUS_ADDRESS)\n",
                        prog, a, strerror(-r));
        if (r < 0) {
                sd_bus_unref(bus);
                return r;
        }
        *ret = bus;
        return 0;
}

/* ---- status, plugins ---- */

typedef struct UnitRow {
        const char *name, *kind, *state;
        uint32_t pid;
        int ready;
        int32_t boot;
        uint32_t restarts;
        const char *path;
} UnitRow;

static int list_units(sd_bus *bus, const char *method, json_object **ret) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        json_object *arr = json_object_new_array();
        UnitRow u;
        int r;

        r = sd_bus_call_method(bus, OKG_SIDECAR_NAME, OKG_SIDECAR_PATH, OKG_SIDECAR_IFACE, method,
                               &e, &reply, "");
        if (r < 0) {
                json_object_put(arr);
                fail_bus(method, r, &e);
                sd_bus_error_free(&e);
                return r;
        }
        r = sd_bus_message_enter_container(reply, 'a', "(sssubiuo)");
        while (r >= 0 && (r = sd_bus_message_read(reply, "(sssubiuo)", &u.name, &u.kind, &u.state,
                                                  &u.pid, &u.ready, &u.boot, &u.restarts, &u.path)) > 0) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *p = NULL;
                json_object *o = json_object_new_object();
                char *exit_status = NULL;

                json_object_object_add(o, "name", json_object_new_string(u.name));
                json_object_object_add(o, "kind", json_object_new_string(u.kind));
                json_object_object_add(o, "state", json_object_new_string(u.state));
                json_object_object_add(o, "pid", json_object_new_int64(u.pid));
                json_object_object_add(o, "ready", json_object_new_boolean(u.ready));
                json_object_object_add(o, "bootOrder", json_object_new_int(u.boot));
                json_object_object_add(o, "restarts", json_object_new_int64(u.restarts));
                if (sd_bus_get_property_string(bus, OKG_SIDECAR_NAME, u.path,
                                               OKG_SIDECAR_UNIT_IFACE, "LastExitStatus", NULL,
                                               &exit_status) >= 0) {
                        json_object_object_add(o, "lastExit", json_object_new_string(exit_status));
                        free(exit_status);
                }
                json_object_array_add(arr, o);
        }
        if (r < 0) {
                json_object_put(arr);
                return r;
        }
        *ret = arr;
        return 0;
}

static void print_units(json_object *arr) {
        printf("%-14s %-8s %-10s %8s %-5s %5s %8s  %s\n", "NAME", "KIND", "STATE", "PID", "READY",
               "BOOT", "RESTARTS", "LAST EXIT");
        for (size_t i = 0; i < json_object_array_length(arr); i++) {
                json_object *o = json_object_array_get_idx(arr, i), *v;
#define S(k) (json_object_object_get_ex(o, k, &v) ? json_object_get_string(v) : "")
#define I(k) (json_object_object_get_ex(o, k, &v) ? json_object_get_int64(v) : 0)
                printf("%-14s %-8s %-10s %8lld %-5s %5lld %8lld  %s\n", S("name"), S("kind"),
                       S("state"), (long long) I("pid"),
                       json_object_object_get_ex(o, "ready", &v) && json_object_get_boolean(v) ? "yes" : "no",
                       (long long) I("bootOrder"), (long long) I("restarts"), S("lastExit"));
#undef S
#undef I
        }
}

static int get_string_prop(sd_bus *bus, const char *dest, const char *path, const char *iface,
                           const char *prop, char **ret) {
        return sd_bus_get_property_string(bus, dest, path, iface, prop, NULL, ret);
}

static int get_bool_prop(sd_bus *bus, const char *dest, const char *path, const char *iface,
                         const char *prop) {
        int v = 0;
        int r = sd_bus_get_property_trivial(bus, dest, path, iface, prop, NULL, 'b', &v);
        return r < 0 ? r : v;
}

/* The hot-update endpoint's protections (its Protections property); NULL when okg-hotupdated
 * is not running. */
static char **hot_update_protections(sd_bus *bus) {
        char **l = NULL;

        if (sd_bus_get_property_strv(bus, OKG_HOTUPDATE_NAME, OKG_HOTUPDATE_PATH,
                                     OKG_HOTUPDATE_IFACE, "Protections", NULL, &l) < 0)
                return NULL;
        return l;
}

static bool strv_contains(char **l, const char *s) {
        for (char **i = l; i && *i; i++)
                if (streq(*i, s))
                        return true;
        return false;
}

static int cmd_status(sd_bus *bus, char **args) {
        _cleanup_(freep) char *version = NULL, *state = NULL, *order = NULL, *config = NULL;
        json_object *units = NULL;
        int r, ready, healthy;

        if (get_string_prop(bus, OKG_SIDECAR_NAME, OKG_SIDECAR_PATH, OKG_SIDECAR_IFACE, "Version",
                            &version) < 0 ||
            get_string_prop(bus, OKG_SIDECAR_NAME, OKG_SIDECAR_PATH, OKG_SIDECAR_IFACE, "State",
                            &state) < 0 ||
            get_string_prop(bus, OKG_SIDECAR_NAME, OKG_SIDECAR_PATH, OKG_SIDECAR_IFACE,
                            "StartOrder", &order) < 0 ||
            get_string_prop(bus, OKG_SIDECAR_NAME, OKG_SIDECAR_PATH, OKG_SIDECAR_IFACE,
                            "ConfigFile", &config) < 0) {
                fprintf(stderr, "%s: okg-sidecard does not answer on this bus\n", prog);
                return OKG_EXIT_FAILURE;
        }
        ready = get_bool_prop(bus, OKG_SIDECAR_NAME, OKG_SIDECAR_PATH, OKG_SIDECAR_IFACE, "Ready");
        healthy = get_bool_prop(bus, OKG_SIDECAR_NAME, OKG_SIDECAR_PATH, OKG_SIDECAR_IFACE,
                                "Healthy");
        r = list_units(bus, "ListUnits", &units);
        if (r < 0)
                return OKG_EXIT_FAILURE;
        _cleanup_(strv_freep) char **prot = hot_update_protections(bus);
        if (arg_json) {
                json_object *o = json_object_new_object();
                json_object_object_add(o, "version", json_object_new_string(version));
                json_object_object_add(o, "state", json_object_new_string(state));
                json_object_object_add(o, "ready", json_object_new_boolean(ready > 0));
                json_object_object_add(o, "healthy", json_object_new_boolean(healthy > 0));
                json_object_object_add(o, "startOrder", json_object_new_string(order));
                json_object_object_add(o, "config", json_object_new_string(config));
                json_object_object_add(o, "units", units);
                if (prot) {
                        json_object *a = json_object_new_array();
                        for (char **i = prot; *i; i++)
                                json_object_array_add(a, json_object_new_string(*i));
                        json_object_object_add(o, "hotUpdateProtections", a);
                }
                print_json(o);
                json_object_put(o);
                return OKG_EXIT_SUCCESS;
        }
        printf("okg-sidecar %s: %s, %s, %s\n", version, state, ready > 0 ? "ready" : "not ready",
               healthy > 0 ? "healthy" : "UNHEALTHY");
        printf("config %s, sidecarstartorder %s\n\n", config, order);
        print_units(units);
        json_object_put(units);
        if (prot) {
                printf("hot-update protections:");
                for (char **i = prot; *i; i++)
                        printf(" %s", *i);
                /* docs/hot-update.md, "Security": anyone who reaches the port can use it. */
                if (!strv_contains(prot, "authToken") && !strv_contains(prot, "loopbackOnly") &&
                    !strv_contains(prot, "allowedSources"))
                        printf("\nhot-update endpoint is OPEN: no authTokenFile, no allowedSources, "
                               "listening beyond loopback");
                printf("\n");
        }
        return OKG_EXIT_SUCCESS;
}

static int cmd_plugins(sd_bus *bus, char **args) {
        json_object *units = NULL;

        if (list_units(bus, "ListPlugins", &units) < 0)
                return OKG_EXIT_FAILURE;
        if (arg_json)
                print_json(units);
        else
                print_units(units);
        json_object_put(units);
        return OKG_EXIT_SUCCESS;
}

static int cmd_unit_op(sd_bus *bus, const char *method, const char *name) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        int r = sd_bus_call_method(bus, OKG_SIDECAR_NAME, OKG_SIDECAR_PATH, OKG_SIDECAR_IFACE,
                                   method, &e, NULL, "s", name);
        if (r < 0) {
                fail_bus(name, r, &e);
                sd_bus_error_free(&e);
                return OKG_EXIT_FAILURE;
        }
        if (arg_json)
                printf("{\"%s\": \"%s\", \"ok\": true}\n", method, name);
        return OKG_EXIT_SUCCESS;
}

static int cmd_start(sd_bus *bus, char **args) {
        return cmd_unit_op(bus, "StartPlugin", args[0]);
}
static int cmd_stop(sd_bus *bus, char **args) {
        return cmd_unit_op(bus, "StopPlugin", args[0]);
}
static int cmd_restart(sd_bus *bus, char **args) {
        return cmd_unit_op(bus, "RestartPlugin", args[0]);
}

static int cmd_reload(sd_bus *bus, char **args) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int changed = 0, r;

        r = sd_bus_call_method(bus, OKG_SIDECAR_NAME, OKG_SIDECAR_PATH, OKG_SIDECAR_IFACE,
                               "ReloadConfig", &e, &reply, "");
        if (r < 0) {
                fail_bus("reload refused", r, &e);
                sd_bus_error_free(&e);
                return OKG_EXIT_FAILURE;
        }
        (void) sd_bus_message_read(reply, "b", &changed);
        if (arg_json)
                printf("{\"changed\": %s}\n", changed ? "true" : "false");
        else
                printf("%s\n", changed ? "config reloaded" : "config unchanged");
        return OKG_EXIT_SUCCESS;
}

/* ---- storage ---- */

static int cmd_storage(sd_bus *bus, char **args) {
        static const char *const strings[] = { "Backend", "Server", "PodName", "Namespace",
                                               "GameServerSet", "ResultConfigMap", "LastError" };
        static const char *const counters[] = { "RequestsSent", "WritesAcknowledged", "Retries",
                                                "Failures" };
        json_object *o = json_object_new_object();
        uint32_t pending = 0;
        int r;

        for (size_t i = 0; i < ELEMENTSOF(strings); i++) {
                _cleanup_(freep) char *v = NULL;
                r = get_string_prop(bus, OKG_STORAGE_NAME, OKG_STORAGE_PATH, OKG_STORAGE_IFACE,
                                    strings[i], &v);
                if (r < 0) {
                        json_object_put(o);
                        fprintf(stderr, "%s: okg-storaged does not answer: %s\n", prog,
                                strerror(-r));
                        return OKG_EXIT_FAILURE;
                }
                json_object_object_add(o, strings[i], json_object_new_string(v));
        }
        (void) sd_bus_get_property_trivial(bus, OKG_STORAGE_NAME, OKG_STORAGE_PATH,
                                           OKG_STORAGE_IFACE, "Pending", NULL, 'u', &pending);
        json_object_object_add(o, "Pending", json_object_new_int64(pending));
        for (size_t i = 0; i < ELEMENTSOF(counters); i++) {
                uint64_t v = 0;
                (void) sd_bus_get_property_trivial(bus, OKG_STORAGE_NAME, OKG_STORAGE_PATH,
                                                   OKG_STORAGE_IFACE, counters[i], NULL, 't', &v);
                json_object_object_add(o, counters[i], json_object_new_int64((int64_t) v));
        }
        if (arg_json)
                print_json(o);
        else {
                json_object_object_foreach(o, k, v)
                        printf("%-20s %s\n", k, json_object_get_string(v));
        }
        json_object_put(o);
        return OKG_EXIT_SUCCESS;
}

/* ---- hot update ---- */

static int cmd_hot_update(sd_bus *bus, char **args) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *state = NULL, *message = NULL;
        int r;

        if (!args[0]) {
                /* No arguments: show the current version and the last result. */
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *st = NULL;
                const char *json = NULL;
                r = sd_bus_call_method(bus, OKG_HOTUPDATE_NAME, OKG_HOTUPDATE_PATH,
                                       OKG_HOTUPDATE_IFACE, "GetStatus", &e, &st, "");
                if (r < 0 || sd_bus_message_read(st, "s", &json) < 0) {
                        fail_bus("hot update status", r, &e);
                        sd_bus_error_free(&e);
                        return OKG_EXIT_FAILURE;
                }
                if (arg_json)
                        puts(json);
                else {
                        json_object *o = json_tokener_parse(json);
                        if (o) {
                                json_object_object_foreach(o, k, v)
                                        if (!json_object_is_type(v, json_type_array))
                                                printf("%-16s %s\n", k, json_object_get_string(v));
                                json_object_put(o);
                        } else
                                puts(json);
                }
                return OKG_EXIT_SUCCESS;
        }
        if (!args[1]) {
                fprintf(stderr, "%s: hot-update VERSION URL [SHA256 [FILENAME]]\n", prog);
                return OKG_EXIT_USAGE;
        }
        r = sd_bus_call_method(bus, OKG_HOTUPDATE_NAME, OKG_HOTUPDATE_PATH, OKG_HOTUPDATE_IFACE,
                               "Update", &e, &reply, "ssss", args[0], args[1], args[2] ?: "",
                               args[2] && args[3] ? args[3] : "");
        if (r < 0) {
                fail_bus("hot update", r, &e);
                sd_bus_error_free(&e);
                return OKG_EXIT_FAILURE;
        }
        r = sd_bus_message_read(reply, "ss", &state, &message);
        if (r < 0)
                return OKG_EXIT_FAILURE;
        if (arg_json)
                printf("{\"state\": \"%s\", \"message\": \"%s\"}\n", state, message);
        else
                printf("%s: %s\n", state, message);
        return streq(state, "Succeeded") || streq(state, "Unchanged") ? OKG_EXIT_SUCCESS
                                                                       : OKG_EXIT_FAILURE;
}

/* ---- probes ---- */

/* Cuts s to at most width bytes for a table column, at a character's end, marking the cut
 * with "...": the full text is in --json. */
static char *column_fit(char *s, size_t width) {
        size_t k;

        if (strlen(s) <= width || width < 4)
                return s;
        k = width - 3;
        while (k > 0 && ((unsigned char) s[k] & 0xc0) == 0x80)
                k--;
        memcpy(s + k, "...", 4);
        return s;
}

static int cmd_probes(sd_bus *bus, char **args) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(freep) char *ops = NULL;
        json_object *arr = json_object_new_array();
        const char *path, *url, *state, *result;
        uint32_t index;
        int failing, r;

        r = sd_bus_call_method(bus, OKG_PROBE_NAME, OKG_PROBE_PATH, OKG_PROBE_IFACE,
                               "ListEndpoints", &e, &reply, "");
        if (r < 0) {
                json_object_put(arr);
                fail_bus("probes", r, &e);
                sd_bus_error_free(&e);
                return OKG_EXIT_FAILURE;
        }
        (void) get_string_prop(bus, OKG_PROBE_NAME, OKG_PROBE_PATH, OKG_PROBE_IFACE, "OpsState",
                               &ops);
        r = sd_bus_message_enter_container(reply, 'a', "(uosssb)");
        while (r >= 0 && (r = sd_bus_message_read(reply, "(uosssb)", &index, &path, &url, &state,
                                                  &result, &failing)) > 0) {
                json_object *o = json_object_new_object();
                _cleanup_(freep) char *err = NULL;
                uint64_t probes = 0, failures = 0;

                (void) get_string_prop(bus, OKG_PROBE_NAME, path, OKG_PROBE_ENDPOINT_IFACE,
                                       "LastError", &err);
                (void) sd_bus_get_property_trivial(bus, OKG_PROBE_NAME, path,
                                                   OKG_PROBE_ENDPOINT_IFACE, "Probes", NULL, 't',
                                                   &probes);
                (void) sd_bus_get_property_trivial(bus, OKG_PROBE_NAME, path,
                                                   OKG_PROBE_ENDPOINT_IFACE, "Failures", NULL, 't',
                                                   &failures);
                json_object_object_add(o, "index", json_object_new_int64(index));
                json_object_object_add(o, "url", json_object_new_string(url));
                json_object_object_add(o, "state", json_object_new_string(state));
                json_object_object_add(o, "lastResult", json_object_new_string(result));
                json_object_object_add(o, "failing", json_object_new_boolean(failing));
                json_object_object_add(o, "probes", json_object_new_int64((int64_t) probes));
                json_object_object_add(o, "failures", json_object_new_int64((int64_t) failures));
                json_object_object_add(o, "lastError", json_object_new_string(strempty(err)));
                json_object_array_add(arr, o);
        }
        if (arg_json) {
                json_object *o = json_object_new_object();
                json_object_object_add(o, "opsState", json_object_new_string(strempty(ops)));
                json_object_object_add(o, "endpoints", arr);
                print_json(o);
                json_object_put(o);
                return r < 0 ? OKG_EXIT_FAILURE : OKG_EXIT_SUCCESS;
        }
        printf("opsState %s\n\n%-3s %-40s %-18s %-13s %-7s %8s %8s  %s\n", isempty(ops) ? "-" : ops,
               "#", "URL", "STATE", "RESULT", "FAILING", "PROBES", "FAILURES", "LAST ERROR");
        for (size_t i = 0; i < json_object_array_length(arr); i++) {
                json_object *o = json_object_array_get_idx(arr, i), *v;
                /* One endpoint, one line: what came from the network or a config shows its
                 * control characters escaped, never raw (--json escapes them as JSON does). */
                char url_s[512], state_s[512], err_s[1024];
#define S(k) (json_object_object_get_ex(o, k, &v) ? json_object_get_string(v) : "")
                okg_escape_controls(S("url"), url_s, sizeof url_s);
                okg_escape_controls(S("state"), state_s, sizeof state_s);
                okg_escape_controls(S("lastError"), err_s, sizeof err_s);
                /* Columns aligned: a long URL or state is cut here (the whole text is in
                 * --json); the last column is free to run on. */
                printf("%-3s %-40s %-18s %-13s %-7s %8s %8s  %s\n", S("index"),
                       column_fit(url_s, 40), isempty(state_s) ? "-" : column_fit(state_s, 18),
                       S("lastResult"),
                       json_object_object_get_ex(o, "failing", &v) && json_object_get_boolean(v) ? "yes" : "no",
                       S("probes"), S("failures"), err_s);
#undef S
        }
        json_object_put(arr);
        return r < 0 ? OKG_EXIT_FAILURE : OKG_EXIT_SUCCESS;
}

/* ---- service qualities ---- */


/* What okg-storaged says of marker name when it is not found: why (GetPodProbeMarkers' third
 * field; for a found marker that is the object, no reason). NULL when it has no word on it. */
static const char *marker_reason(sd_bus_message *storage_reply, const char *name) {
        const char *n, *state, *text;

        if (!storage_reply || sd_bus_message_rewind(storage_reply, true) < 0 ||
            sd_bus_message_enter_container(storage_reply, 'a', "(sss)") < 0)
                return NULL;
        while (sd_bus_message_read(storage_reply, "(sss)", &n, &state, &text) > 0)
                if (streq(n, name))
                        return streq(state, "found") ? NULL : text;
        return NULL;
}

/* The PodProbeMarkers the plugin follows, each with its state (the plugin's PodProbeMarkers
 * property) and why when it is not found (okg-storaged's GetPodProbeMarkers). okg-storaged is
 * asked only when the plugin follows markers: a first GetPodProbeMarkers starts following
 * them, which a look from okgctl must not do. A JSON array, empty when there are none. */
static json_object *service_quality_markers(sd_bus *bus) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *prop = NULL, *storage = NULL;
        json_object *arr = json_object_new_array();
        const char *name, *state;
        bool asked = false;
        int r;

        r = sd_bus_get_property(bus, OKG_SERVICE_QUALITY_NAME, OKG_SERVICE_QUALITY_PATH,
                                OKG_SERVICE_QUALITY_IFACE, "PodProbeMarkers", NULL, &prop, "a(ss)");
        if (r < 0 || sd_bus_message_enter_container(prop, 'a', "(ss)") < 0)
                return arr;
        while (sd_bus_message_read(prop, "(ss)", &name, &state) > 0) {
                json_object *o = json_object_new_object();
                const char *why;

                if (!asked && !streq(state, "found")) {
                        asked = true;
                        (void) sd_bus_call_method(bus, OKG_STORAGE_NAME, OKG_STORAGE_PATH,
                                                  OKG_STORAGE_IFACE, "GetPodProbeMarkers", NULL,
                                                  &storage, "");
                }
                why = streq(state, "found") ? NULL : marker_reason(storage, name);
                json_object_object_add(o, "name", json_object_new_string(name));
                json_object_object_add(o, "state", json_object_new_string(state));
                json_object_object_add(o, "reason", json_object_new_string(strempty(why)));
                json_object_array_add(arr, o);
        }
        return arr;
}

static int cmd_service_quality(sd_bus *bus, char **args) {
        static const char *const props[] = { "Source", "SourceReason", "Writer", "WriterReason",
                                             "ProbesError", "PodError" };
        static const char *const keys[] = { "source", "sourceReason", "writer", "writerReason",
                                            "probesError", "podError" };
        sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        json_object *top = json_object_new_object(), *arr = json_object_new_array(), *markers;
        const char *path, *name, *type, *status, *message, *error;
        int r;

        r = sd_bus_call_method(bus, OKG_SERVICE_QUALITY_NAME, OKG_SERVICE_QUALITY_PATH, OKG_SERVICE_QUALITY_IFACE, "ListProbes", &e, &reply, "");
        if (r < 0) {
                json_object_put(top);
                json_object_put(arr);
                fail_bus("service-quality", r, &e);
                sd_bus_error_free(&e);
                return OKG_EXIT_FAILURE;
        }
        for (size_t i = 0; i < ELEMENTSOF(props); i++) {
                _cleanup_(freep) char *v = NULL;
                (void) get_string_prop(bus, OKG_SERVICE_QUALITY_NAME, OKG_SERVICE_QUALITY_PATH,
                                      OKG_SERVICE_QUALITY_IFACE, props[i], &v);
                json_object_object_add(top, keys[i], json_object_new_string(strempty(v)));
        }
        r = sd_bus_message_enter_container(reply, 'a', "(osssss)");
        while (r >= 0 && (r = sd_bus_message_read(reply, "(osssss)", &path, &name, &type, &status,
                                                  &message, &error)) > 0) {
                json_object *o = json_object_new_object();
                json_object_object_add(o, "name", json_object_new_string(name));
                json_object_object_add(o, "conditionType", json_object_new_string(type));
                json_object_object_add(o, "status", json_object_new_string(status));
                json_object_object_add(o, "message", json_object_new_string(message));
                json_object_object_add(o, "lastError", json_object_new_string(error));
                json_object_array_add(arr, o);
        }
        json_object_object_add(top, "probes", arr);
        markers = service_quality_markers(bus);
        json_object_object_add(top, "podProbeMarkers", markers);
        if (arg_json) {
                print_json(top);
                json_object_put(top);
                return r < 0 ? OKG_EXIT_FAILURE : OKG_EXIT_SUCCESS;
        }
        {
                json_object *v;
                char a[1024], b[1024];
#define S(o, k) (json_object_object_get_ex(o, k, &v) ? json_object_get_string(v) : "")
                okg_escape_controls(S(top, "sourceReason"), a, sizeof a);
                okg_escape_controls(S(top, "writerReason"), b, sizeof b);
                printf("source %s (%s)\nwriter %s (%s)\n", S(top, "source"), a, S(top, "writer"), b);
                if (*S(top, "probesError")) {
                        okg_escape_controls(S(top, "probesError"), a, sizeof a);
                        printf("refused probes: %s\n", a);
                }
                if (json_object_array_length(markers) > 0)
                        printf("\n%-24s %-9s %s\n", "PODPROBEMARKER", "STATE", "REASON");
                for (size_t i = 0; i < json_object_array_length(markers); i++) {
                        json_object *o = json_object_array_get_idx(markers, i);
                        char n_s[256], st_s[64], r_s[1024];
                        okg_escape_controls(S(o, "name"), n_s, sizeof n_s);
                        okg_escape_controls(S(o, "state"), st_s, sizeof st_s);
                        okg_escape_controls(S(o, "reason"), r_s, sizeof r_s);
                        printf("%-24s %-9s %s\n", column_fit(n_s, 24), st_s,
                               isempty(r_s) ? "-" : r_s);
                }
                printf("\n%-16s %-32s %-8s %-30s %s\n", "PROBE", "CONDITION", "STATUS", "MESSAGE",
                       "LAST ERROR");
                for (size_t i = 0; i < json_object_array_length(arr); i++) {
                        json_object *o = json_object_array_get_idx(arr, i);
                        char n_s[256], t_s[256], m_s[256], e_s[512];
                        okg_escape_controls(S(o, "name"), n_s, sizeof n_s);
                        okg_escape_controls(S(o, "conditionType"), t_s, sizeof t_s);
                        okg_escape_controls(S(o, "message"), m_s, sizeof m_s);
                        okg_escape_controls(S(o, "lastError"), e_s, sizeof e_s);
                        /* One probe, one line, columns aligned: long texts are cut here;
                         * the last column is free to run on. */
                        printf("%-16s %-32s %-8s %-30s %s\n", column_fit(n_s, 16),
                               column_fit(t_s, 32), S(o, "status"), column_fit(m_s, 30), e_s);
                }
#undef S
        }
        json_object_put(top);
        return r < 0 ? OKG_EXIT_FAILURE : OKG_EXIT_SUCCESS;
}

/* ---- log level ---- */

static const char *daemon_bus_name(const char *d) {
        if (streq(d, "sidecard") || streq(d, "okg-sidecard") || streq(d, "sidecar"))
                return OKG_SIDECAR_NAME;
        if (streq(d, "storaged") || streq(d, "okg-storaged") || streq(d, "storage"))
                return OKG_STORAGE_NAME;
        if (streq(d, "hotupdated") || streq(d, "okg-hotupdated") || streq(d, "hot_update"))
                return OKG_HOTUPDATE_NAME;
        if (streq(d, "probed") || streq(d, "okg-probed") || streq(d, "http_probe"))
                return OKG_PROBE_NAME;
        if (streq(d, "service_quality") || streq(d, "service-quality"))
                return OKG_SERVICE_QUALITY_NAME;
        return NULL;
}

static int cmd_log_level(sd_bus *bus, char **args) {
        static const char *const all[] = { OKG_SIDECAR_NAME, OKG_STORAGE_NAME, OKG_HOTUPDATE_NAME,
                                           OKG_PROBE_NAME, OKG_SERVICE_QUALITY_NAME };
        const char *level = args[1] ? args[1] : args[0], *only = args[1] ? args[0] : NULL;
        int ret = 0;

        if (only && !daemon_bus_name(only)) {
                fprintf(stderr, "%s: unknown daemon '%s' (sidecard, storaged, hotupdated, probed, "
                        "service_quality)\n", prog, only);
                return OKG_EXIT_USAGE;
        }
        for (size_t i = 0; i < ELEMENTSOF(all); i++) {
                sd_bus_error e = SD_BUS_ERROR_NULL;
                int r;

                if (only && !streq(daemon_bus_name(only), all[i]))
                        continue;
                if (!level) {
                        _cleanup_(freep) char *v = NULL;
                        r = sd_bus_get_property_string(bus, all[i], OKG_LOG_CONTROL_PATH,
                                                       OKG_LOG_CONTROL_IFACE, "LogLevel", &e, &v);
                        if (r >= 0)
                                printf("%-28s %s\n", all[i], v);
                } else
                        r = sd_bus_set_property(bus, all[i], OKG_LOG_CONTROL_PATH,
                                                OKG_LOG_CONTROL_IFACE, "LogLevel", &e, "s", level);
                if (r < 0) {
                        /* A daemon that is not running is skipped when setting all of them. */
                        if (only || !sd_bus_error_has_name(&e, SD_BUS_ERROR_SERVICE_UNKNOWN)) {
                                fail_bus(all[i], r, &e);
                                ret = 1;
                        }
                }
                sd_bus_error_free(&e);
        }
        return ret;
}

static void help(void) {
        printf("%s [--address ADDRESS|RUNTIME-DIR] [--json] COMMAND\n\n"
               "  status                     the suite and every daemon\n"
               "  plugins                    the plugins\n"
               "  start|stop|restart NAME    a plugin (restart also takes 'storage')\n"
               "  reload                     re-read the config file\n"
               "  hot-update                 current version and last result\n"
               "  hot-update VERSION URL [SHA256 [FILENAME]]\n"
               "                             download, apply and signal the game\n"
               "  probes                     endpoints, states, results\n"
               "  service-quality            the pod's Kruise probes, conditions, which source\n"
               "                             won and who writes, and why\n"
               "  storage                    backend, pending writes, counters\n"
               "  log-level [DAEMON] [LEVEL] show or set (all daemons, or sidecard, storaged,\n"
               "                             hotupdated, probed)\n"
               "  fleet hot-update|status -n NS GSS ...\n"
               "                             a whole GameServerSet through the Kubernetes API\n"
               "                             (okgctl fleet --help; also `kubectl okg fleet`)\n\n"
               "The bus is --address, else $OKG_BUS_ADDRESS, else unix:path=/run/okg-sidecar/bus. Each\n"
               "takes a D-Bus address or a path: a runtime directory (its bus socket) or the socket.\n"
               "Exit status: 0 done, 1 the suite refused or is unreachable, 2 usage.\n", prog);
}

typedef struct Verb {
        const char *name;
        int min_args, max_args;
        int (*run)(sd_bus *bus, char **args);
} Verb;

static int run(int argc, char **argv) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },   { "version", no_argument, NULL, 'V' },
                { "json", no_argument, NULL, 'j' },   { "address", required_argument, NULL, 'a' },
                {},
        };
        static const Verb verbs[] = {
                { "status", 0, 0, cmd_status },       { "plugins", 0, 0, cmd_plugins },
                { "start", 1, 1, cmd_start },         { "stop", 1, 1, cmd_stop },
                { "restart", 1, 1, cmd_restart },     { "reload", 0, 0, cmd_reload },
                { "hot-update", 0, 4, cmd_hot_update }, { "probes", 0, 0, cmd_probes },
                { "service-quality", 0, 0, cmd_service_quality },
                { "storage", 0, 0, cmd_storage },     { "log-level", 0, 2, cmd_log_level },
        };
        sd_bus *bus = NULL;
        const Verb *verb = NULL;
        char *args[5] = {};
        static char name[64];
        int c, n, r;

        prog = okgctl_program_name(argc > 0 ? argv[0] : NULL, name, sizeof name);
        /* A command's messages, not a daemon's: "okgctl: ...", no PID. */
        log_setup_cli(prog);
        /* fleet talks to the Kubernetes API, not to a suite's bus: its own options follow. */
        for (int i = 1; i < argc; i++) {
                if (streq(argv[i], "--json") || streq(argv[i], "-j")) {
                        arg_json = true;
                        continue;
                }
                if (streq(argv[i], "--address") || streq(argv[i], "-a")) {
                        i++;
                        continue;
                }
                if (startswith(argv[i], "--address="))
                        continue;
                if (streq(argv[i], "fleet"))
                        return fleet_main(argc - i, argv + i, arg_json, prog);
                break;
        }
        /* getopt's own complaints name argv[0]: the same name as ours. */
        if (argc > 0)
                argv[0] = (char *) prog;

        while ((c = getopt_long(argc, argv, "hVja:", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return OKG_EXIT_SUCCESS;
                case 'V':
                        printf("%s %s\n", prog, OKG_VERSION);
                        return OKG_EXIT_SUCCESS;
                case 'j':
                        arg_json = true;
                        break;
                case 'a':
                        /* Not the default bus: "-a \"$DIR\"" with DIR unset must not drive
                         * another suite than the one meant. */
                        if (isempty(optarg)) {
                                fprintf(stderr, "%s: --address: the address is empty (give a D-Bus "
                                        "address, a runtime directory or its bus socket)\n", prog);
                                return OKG_EXIT_USAGE;
                        }
                        arg_address = optarg;
                        break;
                default:
                        return OKG_EXIT_USAGE;
                }
        if (optind >= argc) {
                verb = &verbs[0];
        } else {
                for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                        if (streq(argv[optind], verbs[i].name))
                                verb = &verbs[i];
                if (!verb) {
                        fprintf(stderr, "%s: unknown command '%s' (see %s --help)\n", prog,
                                argv[optind], prog);
                        return OKG_EXIT_USAGE;
                }
                optind++;
        }
        n = argc - optind;
        if (n < verb->min_args || n > verb->max_args) {
                char want[64];
                if (verb->max_args == 0)
                        (void) snprintf(want, sizeof want, "no arguments");
                else if (verb->min_args == verb->max_args)
                        (void) snprintf(want, sizeof want, "%d argument%s", verb->max_args,
                                        verb->max_args == 1 ? "" : "s");
                else if (verb->min_args == 0)
                        (void) snprintf(want, sizeof want, "at most %d argument%s",
                                        verb->max_args, verb->max_args == 1 ? "" : "s");
                else
                        (void) snprintf(want, sizeof want, "%d to %d arguments", verb->min_args,
                                        verb->max_args);
                fprintf(stderr, "%s: '%s' takes %s, got %d (see %s --help)\n", prog,
                        verb->name, want, n, prog);
                return OKG_EXIT_USAGE;
        }
        for (int i = 0; i < n; i++)
                args[i] = argv[optind + i];
        if (connect_bus(&bus) < 0)
                return OKG_EXIT_FAILURE;
        r = verb->run(bus, args);
        sd_bus_flush_close_unref(bus);
        return r;
}

OKG_DEFINE_MAIN_FUNCTION(run);
