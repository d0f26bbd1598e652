/* Reading records (Storage1.GetRecord, GetFleetRecord): this pod's own wish answers at once;
 * otherwise the result ConfigMap is read (or the local store), and the fleet's newest record
 * of the pod's GameServerSet chosen (records_find_newest()). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "macro.h"
#include "okg-bus-api.h"
#include "okg-util.h"
#include "storaged-manager.h"

typedef struct RecordRead {
        Manager *manager;
        sd_bus_message *call;
        char *field;
} RecordRead;

static void record_read_free(RecordRead *rr) {
        sd_bus_message_unref(rr->call);
        free(rr->field);
        free(rr);
}

/* Our own record as we want it, which is newer than anything the API server may still hold. */
static const char *own_record(Manager *m) {
        Field *f = object_find(&m->objects[OBJECT_RECORDS].object, FIELD_DATA, m->pod);
        return f ? f->desired : NULL;
}

static int reply_from_data(Manager *m, sd_bus_message *call, const char *field, json_object *data) {
        const char *own = own_record(m);
        json_object *d, *v;

        if (!field) {
                if (own)
                        return sd_bus_reply_method_return(call, "ss", own, m->pod);
                if (data && json_object_object_get_ex(data, m->pod, &v) &&
                    json_object_is_type(v, json_type_string))
                        return sd_bus_reply_method_return(call, "ss", json_object_get_string(v), m->pod);
                return sd_bus_reply_method_return(call, "ss", "", "");
        }
        /* The fleet: our own wish counts as ours, over what the server holds for us. */
        d = json_object_new_object();
        if (data && json_object_is_type(data, json_type_object)) {
                json_object_object_foreach(data, k, val)
                        json_object_object_add(d, k, json_object_get(val));
        }
        if (own)
                json_object_object_add(d, m->pod, json_object_new_string(own));

        const char *key = NULL, *record = NULL;
        int r;
        if (records_find_newest(d, m->gss, field, &key, &record) > 0)
                r = sd_bus_reply_method_return(call, "ss", record, key);
        else
                r = sd_bus_reply_method_return(call, "ss", "", "");
        json_object_put(d);
        return r;
}

static void on_record_answer(KubeClient *k, const KubeResponse *r, void *userdata) {
        RecordRead *rr = userdata;
        Manager *m = rr->manager;
        KubeOutcome outcome = kube_classify(r->curl, r->status);
        json_object *cm = NULL, *data = NULL;

        if (outcome == KUBE_OK) {
                cm = json_tokener_parse(r->body);
                if (cm)
                        (void) json_object_object_get_ex(cm, "data", &data);
                (void) reply_from_data(m, rr->call, rr->field, data);
        } else if (outcome == KUBE_NOT_FOUND)
                (void) reply_from_data(m, rr->call, rr->field, NULL);
        else
                (void) sd_bus_reply_method_errorf(rr->call, OKG_STORAGE_ERROR_BUSY,
                                                  "Cannot read the result ConfigMap now: %s",
                                                  strempty(r->message));
        json_object_put(cm);
        record_read_free(rr);
}

int manager_get_record(Manager *m, sd_bus_message *call, const char *fleet_field) {
        _cleanup_(freep) char *path = NULL;
        RecordRead *rr;
        int r;

        if (!fleet_field && own_record(m))
                return reply_from_data(m, call, NULL, NULL);
        if (!m->kube) {
                json_object *cm = local_store_get(m->local, OBJECT_RECORDS, m->records_namespace,
                                                  m->records_name), *data = NULL;
                if (cm)
                        (void) json_object_object_get_ex(cm, "data", &data);
                return reply_from_data(m, call, fleet_field, data);
        }
        rr = calloc(1, sizeof *rr);
        if (!rr)
                return -ENOMEM;
        rr->manager = m;
        rr->call = sd_bus_message_ref(call);
        rr->field = fleet_field ? strdup(fleet_field) : NULL;
        r = manager_object_path(m, OBJECT_RECORDS, false, &path);
        if (r >= 0 && (!fleet_field || rr->field))
                r = kube_request(m->kube, "GET", path, NULL, NULL, on_record_answer, rr);
        else if (r >= 0)
                r = -ENOMEM;
        if (r < 0) {
                record_read_free(rr);
                return r;
        }
        return 1;
}
