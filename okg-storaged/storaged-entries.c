/* The journal's entries, the objects' places on the API server, Events and refused fields'
 * names; see storaged-entries.h. Pure. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "okg-util.h"
#include "storaged-entries.h"

/* ---- where the objects live ---- */

int object_api_path(const ObjectPlace *p, ObjectKind kind, bool collection, char **ret) {
        int r;

        switch (kind) {
        case OBJECT_POD:
                r = asprintf(ret, "/api/v1/namespaces/%s/pods/%s", p->namespace, p->pod);
                break;
        case OBJECT_GAMESERVER:
                r = asprintf(ret, "/apis/game.kruise.io/v1alpha1/namespaces/%s/gameservers/%s",
                             p->namespace, p->pod);
                break;
        case OBJECT_POD_STATUS:
                /* Written through the status subresource (RBAC: patch on pods/status). */
                r = asprintf(ret, "/api/v1/namespaces/%s/pods/%s/status", p->namespace, p->pod);
                break;
        case OBJECT_RECORDS:
        default:
                r = collection ? asprintf(ret, "/api/v1/namespaces/%s/configmaps", p->records_namespace)
                               : asprintf(ret, "/api/v1/namespaces/%s/configmaps/%s",
                                          p->records_namespace, p->records_name);
                break;
        }
        return r < 0 ? -ENOMEM : 0;
}

const char *object_place_namespace(const ObjectPlace *p, ObjectKind kind) {
        return kind == OBJECT_RECORDS ? p->records_namespace : p->namespace;
}

const char *object_place_name(const ObjectPlace *p, ObjectKind kind) {
        return kind == OBJECT_RECORDS ? p->records_name : p->pod;
}

/* ---- journal entries ---- */

json_object *entry_field(FieldKind kind, const char *key, const char *value) {
        json_object *e = json_object_new_object();
        json_object_object_add(e, "kind", json_object_new_string(field_kind_to_string(kind)));
        json_object_object_add(e, "key", json_object_new_string(key));
        json_object_object_add(e, "value", json_object_new_string(value));
        return e;
}

int entry_apply_fields(Object *o, json_object *list, bool acked, uint64_t seq) {
        _cleanup_(freep) FieldValue *v = NULL;
        size_t n;

        if (!json_object_is_type(list, json_type_array))
                return -EBADMSG;
        n = json_object_array_length(list);
        v = calloc(n ?: 1, sizeof(FieldValue));
        if (!v)
                return -ENOMEM;
        /* Every field is checked before any is applied: an entry is applied whole or not at
         * all, never in part. */
        for (size_t i = 0; i < n; i++) {
                json_object *e = json_object_array_get_idx(list, i), *k, *key, *val;

                if (!json_object_object_get_ex(e, "kind", &k) || !json_object_object_get_ex(e, "key", &key) ||
                    !json_object_object_get_ex(e, "value", &val) || !json_object_is_type(key, json_type_string) ||
                    !json_object_is_type(val, json_type_string))
                        return -EBADMSG;
                v[i].kind = field_kind_from_string(json_object_get_string(k));
                if (v[i].kind < 0)
                        return -EBADMSG;
                v[i].key = json_object_get_string(key);
                v[i].value = json_object_get_string(val);
        }
        return object_apply(o, v, n, acked, seq);
}

json_object *entry_set(ObjectKind kind, uint64_t seq, json_object *fields) {
        json_object *e = json_object_new_object();

        json_object_object_add(e, "seq", json_object_new_int64((int64_t) seq));
        json_object_object_add(e, "object", json_object_new_string(object_kind_to_string(kind)));
        json_object_object_add(e, "set", fields);
        return e;
}

json_object *entry_ack(ObjectKind kind, const char *namespace, const char *name, const char *uid,
                       json_object *fields) {
        json_object *e = json_object_new_object();

        json_object_object_add(e, "object", json_object_new_string(object_kind_to_string(kind)));
        json_object_object_add(e, "namespace", json_object_new_string(namespace));
        json_object_object_add(e, "name", json_object_new_string(name));
        if (uid)
                json_object_object_add(e, "uid", json_object_new_string(uid));
        json_object_object_add(e, "ack", fields);
        return e;
}

/* ---- events ---- */

char *event_object_name(const char *pod, uint64_t realtime_nsec, uint64_t seq) {
        char *name;

        if (asprintf(&name, "%.*s.%llx%llx", 200, pod, (unsigned long long) realtime_nsec,
                     (unsigned long long) seq) < 0)
                return NULL;
        return name;
}

json_object *event_object_new(json_object *ev, const char *namespace, const char *pod,
                              const char *pod_uid) {
        json_object *o = json_object_new_object(), *meta = json_object_new_object(),
                    *inv = json_object_new_object(), *src = json_object_new_object(), *name;
        _cleanup_(freep) char *prefix = NULL;

        if (asprintf(&prefix, "%s.", pod) < 0)
                prefix = NULL;
        json_object_object_add(o, "apiVersion", json_object_new_string("v1"));
        json_object_object_add(o, "kind", json_object_new_string("Event"));
        if (json_object_object_get_ex(ev, "name", &name))
                json_object_object_add(meta, "name", json_object_get(name));
        else    /* accepted by an okg-storaged that did not name its events */
                json_object_object_add(meta, "generateName", json_object_new_string(prefix ?: "okg-sidecar."));
        json_object_object_add(meta, "namespace", json_object_new_string(namespace));
        json_object_object_add(o, "metadata", meta);
        json_object_object_add(inv, "apiVersion", json_object_new_string("v1"));
        json_object_object_add(inv, "kind", json_object_new_string("Pod"));
        json_object_object_add(inv, "name", json_object_new_string(pod));
        json_object_object_add(inv, "namespace", json_object_new_string(namespace));
        if (pod_uid)
                json_object_object_add(inv, "uid", json_object_new_string(pod_uid));
        json_object_object_add(o, "involvedObject", inv);
        json_object_object_add(src, "component", json_object_new_string("okg-sidecar"));
        json_object_object_add(o, "source", src);
        json_object_object_add(o, "reportingComponent", json_object_new_string("okg-sidecar"));
        json_object_object_add(o, "reportingInstance", json_object_new_string(pod));
        json_object_object_add(o, "count", json_object_new_int(1));
        json_object_object_foreach(ev, key, val) {
                if (streq(key, "time")) {
                        json_object_object_add(o, "firstTimestamp", json_object_get(val));
                        json_object_object_add(o, "lastTimestamp", json_object_get(val));
                } else if (streq(key, "name"))
                        continue;
                else
                        json_object_object_add(o, key, json_object_get(val));
        }
        return o;
}

/* ---- refusals ---- */

char *field_describe(const Field *f) {
        char *what;
        bool ops = f->kind == FIELD_OPS_STATE;

        if (asprintf(&what, "%s%s%s%s", field_kind_to_string(f->kind), ops ? "" : " \"",
                     ops ? "" : f->key, ops ? "" : "\"") < 0)
                return NULL;
        return what;
}
