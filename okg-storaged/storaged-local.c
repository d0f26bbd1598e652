/* The local store; see storaged-local.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "okg-util.h"
#include "storaged-local.h"

#define LOCAL_STORE_MAX (64U * 1024U * 1024U)
#define EVENTS_KEPT 100

struct LocalStore {
        char *path;
        json_object *doc;
};

static const char *collection(ObjectKind kind) {
        switch (kind) {
        case OBJECT_POD:
        case OBJECT_POD_STATUS:
                return "pods";
        case OBJECT_GAMESERVER:
                return "gameservers";
        case OBJECT_RECORDS:
        default:
                return "configmaps";
        }
}

int local_store_open(const char *path, LocalStore **ret) {
        _cleanup_(local_store_freep) LocalStore *s = calloc(1, sizeof(LocalStore));
        _cleanup_(freep) char *text = NULL;
        int r;

        if (!s)
                return -ENOMEM;
        s->path = strdup(path);
        if (!s->path)
                return -ENOMEM;
        r = okg_read_file(path, LOCAL_STORE_MAX, &text, NULL);
        if (r < 0 && r != -ENOENT)
                return r;
        if (text) {
                s->doc = json_tokener_parse(text);
                if (!s->doc || !json_object_is_type(s->doc, json_type_object))
                        return -EBADMSG;
        } else
                s->doc = json_object_new_object();
        if (!s->doc)
                return -ENOMEM;
        *ret = TAKE_PTR(s);
        return 0;
}

LocalStore *local_store_free(LocalStore *s) {
        if (!s)
                return NULL;
        json_object_put(s->doc);
        free(s->path);
        free(s);
        return NULL;
}

const char *local_store_path(const LocalStore *s) {
        return s->path;
}

static int save(LocalStore *s) {
        const char *text = json_object_to_json_string_ext(
                s->doc, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE);
        _cleanup_(freep) char *buf = NULL;
        int n = asprintf(&buf, "%s\n", text);

        if (n < 0)
                return -ENOMEM;
        return okg_write_file_atomic(s->path, buf, (size_t) n, 0644);
}

static json_object *child(json_object *parent, const char *key) {
        json_object *c;
        if (json_object_object_get_ex(parent, key, &c))
                return c;
        c = json_object_new_object();
        json_object_object_add(parent, key, c);
        return c;
}

/* Every change of the pod gets a new metadata.resourceVersion, as in Kubernetes, so the
 * PodResourceVersion property works the same with the local store. */
static int bump_resource_version(json_object *obj) {
        json_object *meta = child(obj, "metadata"), *rv;
        unsigned long long n = 0;
        char buf[32];

        if (json_object_object_get_ex(meta, "resourceVersion", &rv))
                n = strtoull(json_object_get_string(rv), NULL, 10);
        (void) snprintf(buf, sizeof buf, "%llu", n + 1);
        rv = json_object_new_string(buf);
        if (!rv)
                return -ENOMEM;
        json_object_object_add(meta, "resourceVersion", rv);
        return 0;
}

int local_store_patch(LocalStore *s, ObjectKind kind, const char *ns, const char *name,
                      json_object *patch) {
        _cleanup_(freep) char *id = NULL;
        json_object *coll = child(s->doc, collection(kind)), *obj = NULL, *meta;
        int r;

        if (asprintf(&id, "%s/%s", ns, name) < 0)
                return -ENOMEM;
        if (json_object_object_get_ex(coll, id, &obj))
                obj = json_object_get(obj);
        else {
                obj = json_object_new_object();
                meta = child(obj, "metadata");
                json_object_object_add(meta, "name", json_object_new_string(name));
                json_object_object_add(meta, "namespace", json_object_new_string(ns));
        }
        if (kind == OBJECT_POD_STATUS)
                /* Conditions merge by type, as the API server's strategic merge patch does. */
                r = pod_conditions_merge(obj, patch);
        else
                r = json_merge_patch(&obj, patch);
        if (r >= 0 && (kind == OBJECT_POD || kind == OBJECT_POD_STATUS))
                r = bump_resource_version(obj);
        if (r < 0) {
                json_object_put(obj);
                return r;
        }
        json_object_object_add(coll, id, obj);
        return save(s);
}

json_object *local_store_get(LocalStore *s, ObjectKind kind, const char *ns, const char *name) {
        _cleanup_(freep) char *id = NULL;
        json_object *coll, *obj;

        if (asprintf(&id, "%s/%s", ns, name) < 0)
                return NULL;
        if (!json_object_object_get_ex(s->doc, collection(kind), &coll) ||
            !json_object_object_get_ex(coll, id, &obj))
                return NULL;
        return obj;
}

int local_store_add_event(LocalStore *s, json_object *event) {
        json_object *events;

        if (!json_object_object_get_ex(s->doc, "events", &events)) {
                events = json_object_new_array();
                json_object_object_add(s->doc, "events", events);
        }
        json_object_array_add(events, json_object_get(event));
        if (json_object_array_length(events) > EVENTS_KEPT)
                json_object_array_del_idx(events, 0, json_object_array_length(events) - EVENTS_KEPT);
        return save(s);
}
