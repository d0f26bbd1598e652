/* io.kruise.game.HotUpdate1: the state of okg-hotupdated as properties, an Update() method that
 * goes through the same path as POST /hot-update, and an UpdateFinished signal for every
 * outcome. See docs/bus-api.md. */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <systemd/sd-bus.h>

#include "hotupdated-manager.h"
#include "log.h"
#include "macro.h"
#include "okg-bus-api.h"
#include "okg-bus.h"
#include "okg-json.h"

typedef struct BusCall {
        Waiter waiter;          /* first: the Waiter pointer is the BusCall pointer */
        sd_bus_message *call;
} BusCall;

static const char *cur_field(Manager *m, size_t offset) {
        const HotUpdateVersion *v = manager_current(m);
        if (!manager_current_in_place(m))
                return "";
        return strempty(*(char *const *) ((const char *) v + offset));
}

static int property_get_current(sd_bus *bus, const char *path, const char *interface,
                                const char *property, sd_bus_message *reply, void *userdata,
                                sd_bus_error *error) {
        Manager *m = userdata;
        size_t off;

        if (streq(property, "CurrentVersion"))
                off = offsetof(HotUpdateVersion, version);
        else if (streq(property, "CurrentURL"))
                off = offsetof(HotUpdateVersion, url);
        else if (streq(property, "CurrentSHA256"))
                off = offsetof(HotUpdateVersion, sha256);
        else if (streq(property, "CurrentFileName"))
                off = offsetof(HotUpdateVersion, file_name);
        else
                off = offsetof(HotUpdateVersion, applied_at);
        return sd_bus_message_append(reply, "s", cur_field(m, off));
}

static int property_get_state(sd_bus *bus, const char *path, const char *interface,
                              const char *property, sd_bus_message *reply, void *userdata,
                              sd_bus_error *error) {
        return sd_bus_message_append(reply, "s", hotupdate_phase_to_string(manager_phase(userdata)));
}

static int property_get_last(sd_bus *bus, const char *path, const char *interface,
                             const char *property, sd_bus_message *reply, void *userdata,
                             sd_bus_error *error) {
        const HotUpdateResult *r = manager_last_result(userdata);

        if (!r->at)
                return sd_bus_message_append(reply, "(ssss)", "", "", "", "");
        return sd_bus_message_append(reply, "(ssss)", hotupdate_outcome_to_string(r->outcome),
                                     strempty(r->version), strempty(r->message), r->at);
}

static int property_get_config(sd_bus *bus, const char *path, const char *interface,
                               const char *property, sd_bus_message *reply, void *userdata,
                               sd_bus_error *error) {
        const HotUpdateConfig *c = manager_config(userdata);

        if (streq(property, "DownloadDirectory"))
                return sd_bus_message_append(reply, "s", c->download_dir);
        if (streq(property, "LoadPatchType"))
                return sd_bus_message_append(
                                reply, "s", c->load_patch_type == LOAD_PATCH_SIGNAL ? "signal" : "request");
        if (streq(property, "ProcessName"))
                return sd_bus_message_append(reply, "s", strempty(c->process_name));
        return sd_bus_message_append(reply, "s", strempty(c->signal_name));
}

static int property_get_port(sd_bus *bus, const char *path, const char *interface,
                             const char *property, sd_bus_message *reply, void *userdata,
                             sd_bus_error *error) {
        return sd_bus_message_append(reply, "q", manager_http_port(userdata));
}

static int property_get_total(sd_bus *bus, const char *path, const char *interface,
                              const char *property, sd_bus_message *reply, void *userdata,
                              sd_bus_error *error) {
        return sd_bus_message_append(reply, "t", manager_updates_total(userdata));
}

/* The names of the protections that are on, e.g. ["authToken", "allowedSources"]. */
static int property_get_protections(sd_bus *bus, const char *path, const char *interface,
                                    const char *property, sd_bus_message *reply, void *userdata,
                                    sd_bus_error *error) {
        bool on[_PROTECTION_MAX];
        int r;

        manager_protections(userdata, on);
        r = sd_bus_message_open_container(reply, 'a', "s");
        for (size_t i = 0; r >= 0 && i < _PROTECTION_MAX; i++)
                if (on[i])
                        r = sd_bus_message_append(reply, "s", hotupdate_protection_names[i]);
        return r < 0 ? r : sd_bus_message_close_container(reply);
}

static int reply_result(sd_bus_message *call, const HotUpdateResult *r) {
        const HotUpdateOutcomeInfo *info = hotupdate_outcome_info(r->outcome);

        if (!info->bus_error)
                return sd_bus_reply_method_return(call, "ss", info->state, strempty(r->message));
        return sd_bus_reply_method_errorf(call, info->bus_error, "%s: %s", info->state,
                                          strempty(r->message));
}

static void bus_call_done(Waiter *w, const HotUpdateResult *r, bool recorded) {
        BusCall *b = (BusCall *) w;
        int k;

        k = reply_result(b->call, r);
        if (k < 0)
                log_debug_errno(k, "Cannot answer an Update() call (caller or bus gone): %m");
        sd_bus_message_unref(b->call);
        free(b);
}

static int method_update(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        HotUpdateParams p = {};
        HotUpdateResult res = {};
        const char *version, *url, *sha, *file;
        char err[HOTUPDATE_ERR_MAX];
        BusCall *b = NULL;
        int r;

        r = sd_bus_message_read(msg, "ssss", &version, &url, &sha, &file);
        if (r < 0)
                return r;
        if (hotupdate_params_set(&p, "version", version, strlen(version), err, sizeof err) < 0 ||
            hotupdate_params_set(&p, "url", url, strlen(url), err, sizeof err) < 0 ||
            hotupdate_params_set(&p, "sha256", sha, strlen(sha), err, sizeof err) < 0 ||
            hotupdate_params_set(&p, "fileName", file, strlen(file), err, sizeof err) < 0 ||
            (r = hotupdate_params_finish(&p, err, sizeof err)) < 0) {
                hotupdate_params_done(&p);
                if (r == -ENOMEM)
                        return r;
                return sd_bus_error_setf(error, OKG_HOTUPDATE_ERROR_INVALID_ARGUMENT,
                                         "Invalid: %s", err);
        }

        b = calloc(1, sizeof *b);
        if (!b) {
                hotupdate_params_done(&p);
                return -ENOMEM;
        }
        b->waiter.done = bus_call_done;
        b->call = sd_bus_message_ref(msg);

        r = manager_submit(m, &p, &b->waiter, &res);
        hotupdate_params_done(&p);
        if (r != 0) {
                sd_bus_message_unref(b->call);
                free(b);
                if (r < 0)
                        return r;
                r = reply_result(msg, &res);
                hotupdate_result_done(&res);
                return r;
        }
        /* Answered when the update ends. */
        return 1;
}

static int method_get_status(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_(json_object_putp) json_object *o = manager_status_json(userdata);

        if (!o)
                return -ENOMEM;
        return sd_bus_reply_method_return(
                        msg, "s",
                        json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                                                  JSON_C_TO_STRING_NOSLASHESCAPE));
}

static int method_get_metrics(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_(freep) char *text = NULL;
        int r = manager_metrics_text(userdata, &text);
        if (r < 0)
                return r;
        return sd_bus_reply_method_return(msg, "s", text);
}

static const sd_bus_vtable hotupdate_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("CurrentVersion", "s", property_get_current, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("CurrentURL", "s", property_get_current, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("CurrentSHA256", "s", property_get_current, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("CurrentFileName", "s", property_get_current, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("AppliedAt", "s", property_get_current, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("State", "s", property_get_state, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("LastResult", "(ssss)", property_get_last, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("UpdatesTotal", "t", property_get_total, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Port", "q", property_get_port, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Protections", "as", property_get_protections, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("DownloadDirectory", "s", property_get_config, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("LoadPatchType", "s", property_get_config, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("ProcessName", "s", property_get_config, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("SignalName", "s", property_get_config, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_METHOD_WITH_ARGS("Update",
                                SD_BUS_ARGS("s", version, "s", url, "s", sha256, "s", fileName),
                                SD_BUS_RESULT("s", state, "s", message),
                                method_update, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetStatus", SD_BUS_NO_ARGS, SD_BUS_RESULT("s", status),
                                method_get_status, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetMetrics", SD_BUS_NO_ARGS, SD_BUS_RESULT("s", text),
                                method_get_metrics, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_SIGNAL_WITH_ARGS("UpdateFinished",
                                SD_BUS_ARGS("s", version, "s", state, "s", message, "s", currentVersion),
                                0),
        SD_BUS_VTABLE_END,
};

static int bus_setup(sd_bus *bus, void *userdata) {
        return sd_bus_add_object_vtable(bus, NULL, OKG_HOTUPDATE_PATH, OKG_HOTUPDATE_IFACE,
                                        hotupdate_vtable, userdata);
}

int hotupdate_bus_start(Manager *m, OkgBus **ret) {
        return okg_bus_new(manager_event(m), NULL, OKG_HOTUPDATE_NAME, bus_setup, NULL, m, ret);
}

void hotupdate_bus_emit_changed(Manager *m, OkgBus *bus) {
        if (bus)
                (void) okg_bus_emit_all_changed(bus, OKG_HOTUPDATE_PATH, OKG_HOTUPDATE_IFACE);
}

void hotupdate_bus_emit_finished(Manager *m, OkgBus *bus, const HotUpdateResult *r) {
        sd_bus *b = okg_bus_get(bus);

        if (!b)
                return;
        (void) sd_bus_emit_signal(b, OKG_HOTUPDATE_PATH, OKG_HOTUPDATE_IFACE, "UpdateFinished", "ssss",
                                  strempty(r->version), hotupdate_outcome_to_string(r->outcome),
                                  strempty(r->message), strempty(r->current_version));
}
