/* Ordered, retried calls to io.kruise.game.Storage1; see okg-storage-client.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "macro.h"
#include "okg-bus-api.h"
#include "okg-event.h"
#include "okg-list.h"
#include "okg-storage-client.h"
#include "okg-util.h"

#define RETRY_FIRST_USEC (100 * USEC_PER_MSEC)
#define RETRY_MAX_USEC (2 * USEC_PER_SEC)

typedef enum CallKind {
        CALL_SET_POD_METADATA,
        CALL_SET_GAMESERVER,
        CALL_PUT_RECORD,
        CALL_POST_EVENT,
        CALL_GET_RECORD,
        CALL_GET_FLEET_RECORD,
        CALL_SET_POD_CONDITIONS,
} CallKind;

typedef struct Call Call;
struct Call {
        LIST_FIELDS(Call, calls);       /* on the write queue or the reads in flight */
        OkgStorageClient *client;
        sd_bus_slot *slot;              /* reads only */
        CallKind kind;
        char *s[3];                     /* string arguments, by kind */
        char **labels, **annotations;   /* key, value, key, value, ..., NULL */
        char **conditions;              /* type, status, message, ..., NULL */
        OkgStorageWriteDone write_cb;
        OkgStorageRecordDone record_cb;
        void *userdata;
};

struct OkgStorageClient {
        sd_event *event;
        OkgBus *bus;
        Call *head, *tail;              /* writes, in order */
        size_t n;
        Call *reads;                    /* reads in flight: not queued behind writes */
        sd_bus_slot *slot;              /* the call in flight */
        sd_event_source *retry_timer;
        unsigned attempts;
};

static Call *call_free(Call *c) {
        if (!c)
                return NULL;
        sd_bus_slot_unref(c->slot);
        for (size_t i = 0; i < ELEMENTSOF(c->s); i++)
                free(c->s[i]);
        strv_free(c->labels);
        strv_free(c->annotations);
        strv_free(c->conditions);
        free(c);
        return NULL;
}

static char **pairs_dup(const OkgStrPair *p, size_t n) {
        char **l = calloc(2 * n + 1, sizeof(char *));
        if (!l)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                l[2 * i] = strdup(p[i].key);
                l[2 * i + 1] = strdup(p[i].value);
                if (!l[2 * i] || !l[2 * i + 1]) {
                        strv_free(l);
                        return NULL;
                }
        }
        return l;
}

static int append_pairs(sd_bus_message *m, char **l) {
        int r = sd_bus_message_open_container(m, 'a', "{ss}");
        if (r < 0)
                return r;
        for (char **i = l; i && *i; i += 2) {
                r = sd_bus_message_append(m, "{ss}", i[0], i[1]);
                if (r < 0)
                        return r;
        }
        return sd_bus_message_close_container(m);
}

static void send_next(OkgStorageClient *c);

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        send_next(userdata);
        return 0;
}

static void schedule_retry(OkgStorageClient *c) {
        uint64_t delay;

        c->attempts++;
        delay = okg_backoff_usec(c->attempts, RETRY_FIRST_USEC, RETRY_MAX_USEC);
        if (okg_timer_arm(c->event, &c->retry_timer, delay, 0, on_retry, c, NULL) < 0)
                log_warning("Cannot arm the storage retry timer; calls stay queued.");
}

/* Errors that mean "okg-storaged did not get to decide": try again later. */
static bool error_is_transient(const sd_bus_error *e) {
        static const char *const transient[] = {
                SD_BUS_ERROR_SERVICE_UNKNOWN, SD_BUS_ERROR_NAME_HAS_NO_OWNER,
                SD_BUS_ERROR_NO_REPLY,        SD_BUS_ERROR_DISCONNECTED,
                SD_BUS_ERROR_TIMEOUT,         "org.freedesktop.DBus.Error.TimedOut",
                SD_BUS_ERROR_NO_MEMORY,       SD_BUS_ERROR_LIMITS_EXCEEDED,
        };
        if (sd_bus_error_has_name(e, OKG_STORAGE_ERROR_BUSY))
                return true;
        for (size_t i = 0; i < ELEMENTSOF(transient); i++)
                if (sd_bus_error_has_name(e, transient[i]))
                        return true;
        return false;
}

static void finish_head(OkgStorageClient *c, int error, const char *message, uint64_t seq,
                        const char *record, const char *pod) {
        Call *call = LIST_QUEUE_POP(calls, c->head, c->tail);

        c->n--;
        c->attempts = 0;
        if (call->write_cb)
                call->write_cb(error, message, seq, call->userdata);
        if (call->record_cb)
                call->record_cb(error, message, record, pod, call->userdata);
        call_free(call);
}

static int on_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        OkgStorageClient *c = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(m);
        Call *call = c->head;
        uint64_t seq = 0;
        const char *record = NULL, *pod = NULL;
        int r;

        c->slot = sd_bus_slot_unref(c->slot);
        if (!call)
                return 0;
        if (e) {
                if (error_is_transient(e)) {
                        log_debug("Storage call not taken (%s), retrying.", e->name);
                        schedule_retry(c);
                        return 0;
                }
                log_debug("okg-storaged refused a call: %s: %s", e->name, strempty(e->message));
                finish_head(c, -sd_bus_error_get_errno(e) ?: -EIO, e->message, 0, NULL, NULL);
                send_next(c);
                return 0;
        }
        r = sd_bus_message_read(m, "t", &seq);
        if (r < 0) {
                finish_head(c, r, "unexpected reply from okg-storaged", 0, NULL, NULL);
                send_next(c);
                return 0;
        }
        finish_head(c, 0, NULL, seq, isempty(record) ? NULL : record, isempty(pod) ? NULL : pod);
        send_next(c);
        return 0;
}

static int build_call(sd_bus *bus, Call *call, sd_bus_message **ret) {
        static const char *const methods[] = {
                [CALL_SET_POD_METADATA] = "SetPodMetadata", [CALL_SET_GAMESERVER] = "SetGameServer",
                [CALL_PUT_RECORD] = "PutRecord",            [CALL_POST_EVENT] = "PostEvent",
                [CALL_GET_RECORD] = "GetRecord",            [CALL_GET_FLEET_RECORD] = "GetFleetRecord",
                [CALL_SET_POD_CONDITIONS] = "SetPodConditions",
        };
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r;

        r = sd_bus_message_new_method_call(bus, &m, OKG_STORAGE_NAME, OKG_STORAGE_PATH,
                                           OKG_STORAGE_IFACE, methods[call->kind]);
        if (r < 0)
                return r;
        switch (call->kind) {
        case CALL_SET_POD_METADATA:
                r = append_pairs(m, call->labels);
                if (r >= 0)
                        r = append_pairs(m, call->annotations);
                break;
        case CALL_SET_GAMESERVER:
                r = sd_bus_message_append(m, "s", strempty(call->s[0]));
                if (r >= 0)
                        r = append_pairs(m, call->labels);
                if (r >= 0)
                        r = append_pairs(m, call->annotations);
                break;
        case CALL_PUT_RECORD:
                r = sd_bus_message_append(m, "s", call->s[0]);
                break;
        case CALL_POST_EVENT:
                r = sd_bus_message_append(m, "sss", call->s[0], call->s[1], call->s[2]);
                break;
        case CALL_GET_RECORD:
                break;
        case CALL_GET_FLEET_RECORD:
                r = sd_bus_message_append(m, "s", call->s[0]);
                break;
        case CALL_SET_POD_CONDITIONS:
                r = sd_bus_message_open_container(m, 'a', "(sss)");
                for (char **l = call->conditions; r >= 0 && l[0] && l[1] && l[2]; l += 3)
                        r = sd_bus_message_append(m, "(sss)", l[0], l[1], l[2]);
                if (r >= 0)
                        r = sd_bus_message_close_container(m);
                break;
        }
        if (r < 0)
                return r;
        *ret = TAKE_PTR(m);
        return 0;
}

static void send_next(OkgStorageClient *c) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        sd_bus *bus;
        int r;

        if (!c->head || c->slot)
                return;
        bus = okg_bus_get(c->bus);
        if (!bus) {
                schedule_retry(c);
                return;
        }
        r = build_call(bus, c->head, &m);
        if (r >= 0)
                r = sd_bus_call_async(bus, &c->slot, m, on_reply, c, 0);
        if (r < 0) {
                log_debug_errno(r, "Cannot send a storage call, retrying: %m");
                schedule_retry(c);
        }
}

static void read_finish(Call *call, int error, const char *message, const char *record,
                        const char *pod) {
        OkgStorageClient *c = call->client;

        if (LIST_LINKED(calls, c->reads, call))
                LIST_REMOVE(calls, c->reads, call);
        call->record_cb(error, message, record, pod, call->userdata);
        call_free(call);
}

static int on_read_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Call *call = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(m);
        const char *record = NULL, *pod = NULL;

        call->slot = sd_bus_slot_unref(call->slot);
        if (e)
                read_finish(call, -sd_bus_error_get_errno(e) ?: -EIO, e->message, NULL, NULL);
        else if (sd_bus_message_read(m, "ss", &record, &pod) < 0)
                read_finish(call, -EBADMSG, "unexpected reply from okg-storaged", NULL, NULL);
        else
                read_finish(call, 0, NULL, isempty(record) ? NULL : record, isempty(pod) ? NULL : pod);
        return 0;
}

/* Reads are answered now or fail now: a caller waiting for a record decides itself whether to
 * ask again, and a read never holds back the writes queued behind it. */
static int send_read(OkgStorageClient *c, Call *call) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        sd_bus *bus = okg_bus_get(c->bus);
        int r;

        call->client = c;
        if (!bus) {
                call_free(call);
                return -ENOTCONN;
        }
        r = build_call(bus, call, &m);
        if (r >= 0)
                r = sd_bus_call_async(bus, &call->slot, m, on_read_reply, call, 0);
        if (r < 0) {
                call_free(call);
                return r;
        }
        LIST_PREPEND(calls, c->reads, call);
        return 0;
}

static int enqueue(OkgStorageClient *c, Call *call) {
        LIST_QUEUE_APPEND(calls, c->head, c->tail, call);
        c->n++;
        send_next(c);
        return 0;
}

static Call *call_new(CallKind kind, OkgStorageWriteDone wcb, OkgStorageRecordDone rcb, void *ud) {
        Call *call = calloc(1, sizeof *call);
        if (!call)
                return NULL;
        call->kind = kind;
        call->write_cb = wcb;
        call->record_cb = rcb;
        call->userdata = ud;
        return call;
}

static int set_strings(Call *call, const char *a, const char *b, const char *c) {
        const char *in[3] = { a, b, c };
        for (size_t i = 0; i < 3; i++)
                if (in[i] && !(call->s[i] = strdup(in[i])))
                        return -ENOMEM;
        return 0;
}

static int enqueue_metadata(OkgStorageClient *c, CallKind kind, const char *ops_state,
                            const OkgStrPair *labels, size_t n_labels,
                            const OkgStrPair *annotations, size_t n_annotations,
                            OkgStorageWriteDone cb, void *userdata) {
        Call *call = call_new(kind, cb, NULL, userdata);

        if (!call)
                return -ENOMEM;
        call->labels = pairs_dup(labels, n_labels);
        call->annotations = pairs_dup(annotations, n_annotations);
        if (!call->labels || !call->annotations || set_strings(call, ops_state, NULL, NULL) < 0) {
                call_free(call);
                return -ENOMEM;
        }
        return enqueue(c, call);
}

int okg_storage_set_pod_metadata(OkgStorageClient *c, const OkgStrPair *labels, size_t n_labels,
                                 const OkgStrPair *annotations, size_t n_annotations,
                                 OkgStorageWriteDone cb, void *userdata) {
        return enqueue_metadata(c, CALL_SET_POD_METADATA, NULL, labels, n_labels, annotations,
                                n_annotations, cb, userdata);
}

int okg_storage_set_gameserver(OkgStorageClient *c, const char *ops_state, const OkgStrPair *labels,
                               size_t n_labels, const OkgStrPair *annotations,
                               size_t n_annotations, OkgStorageWriteDone cb, void *userdata) {
        return enqueue_metadata(c, CALL_SET_GAMESERVER, ops_state ?: "", labels, n_labels,
                                annotations, n_annotations, cb, userdata);
}

static int enqueue_strings(OkgStorageClient *c, CallKind kind, const char *a, const char *b,
                           const char *d, OkgStorageWriteDone wcb, OkgStorageRecordDone rcb,
                           void *userdata) {
        Call *call = call_new(kind, wcb, rcb, userdata);

        if (!call)
                return -ENOMEM;
        if (set_strings(call, a, b, d) < 0) {
                call_free(call);
                return -ENOMEM;
        }
        if (kind == CALL_GET_RECORD || kind == CALL_GET_FLEET_RECORD)
                return send_read(c, call);
        return enqueue(c, call);
}

int okg_storage_put_record(OkgStorageClient *c, const char *record_json, OkgStorageWriteDone cb,
                           void *userdata) {
        return enqueue_strings(c, CALL_PUT_RECORD, record_json, NULL, NULL, cb, NULL, userdata);
}

int okg_storage_post_event(OkgStorageClient *c, const char *type, const char *reason,
                           const char *message, OkgStorageWriteDone cb, void *userdata) {
        return enqueue_strings(c, CALL_POST_EVENT, type, reason, message, cb, NULL, userdata);
}

int okg_storage_set_pod_conditions(OkgStorageClient *c, const OkgPodCondition *conditions,
                                   size_t n, OkgStorageWriteDone cb, void *userdata) {
        Call *call = call_new(CALL_SET_POD_CONDITIONS, cb, NULL, userdata);

        if (!call)
                return -ENOMEM;
        call->conditions = calloc(n * 3 + 1, sizeof(char *));
        if (!call->conditions) {
                call_free(call);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++) {
                const char *in[3] = { conditions[i].type, conditions[i].status,
                                      conditions[i].message };
                for (size_t k = 0; k < 3; k++)
                        if (!(call->conditions[i * 3 + k] = strdup(strempty(in[k])))) {
                                call_free(call);
                                return -ENOMEM;
                        }
        }
        return enqueue(c, call);
}

int okg_storage_get_record(OkgStorageClient *c, const char *fleet_field, OkgStorageRecordDone cb,
                           void *userdata) {
        return enqueue_strings(c, fleet_field ? CALL_GET_FLEET_RECORD : CALL_GET_RECORD,
                               fleet_field, NULL, NULL, NULL, cb, userdata);
}

int okg_storage_client_new(sd_event *e, OkgBus *bus, OkgStorageClient **ret) {
        OkgStorageClient *c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;
        c->event = sd_event_ref(e);
        c->bus = bus;
        *ret = c;
        return 0;
}

OkgStorageClient *okg_storage_client_free(OkgStorageClient *c) {
        if (!c)
                return NULL;
        sd_bus_slot_unref(c->slot);
        c->slot = NULL;
        while (c->head)
                finish_head(c, -ECANCELED, NULL, 0, NULL, NULL);
        while (c->reads)
                read_finish(c->reads, -ECANCELED, NULL, NULL, NULL);
        sd_event_source_disable_unref(c->retry_timer);
        sd_event_unref(c->event);
        free(c);
        return NULL;
}

size_t okg_storage_client_pending(const OkgStorageClient *c) {
        return c->n;
}
