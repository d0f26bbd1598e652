/* Desired and acknowledged state per field; see storaged-state.h. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "okg-kube-names.h"
#include "okg-string-table.h"
#include "storaged-state.h"

static const char *const object_kind_table[_OBJECT_KIND_MAX] = {
        [OBJECT_POD] = "pod",
        [OBJECT_GAMESERVER] = "gameserver",
        [OBJECT_RECORDS] = "records",
        [OBJECT_POD_STATUS] = "podstatus",
};

static const char *const field_kind_table[_FIELD_KIND_MAX] = {
        [FIELD_LABEL] = "label",
        [FIELD_ANNOTATION] = "annotation",
        [FIELD_OPS_STATE] = "opsState",
        [FIELD_DATA] = "data",
        [FIELD_CONDITION] = "condition",
};

DEFINE_STRING_TABLE_LOOKUP(object_kind, ObjectKind);
DEFINE_STRING_TABLE_LOOKUP(field_kind, FieldKind);

void object_done(Object *o) {
        for (size_t i = 0; i < o->n_fields; i++) {
                free(o->fields[i].key);
                free(o->fields[i].desired);
                free(o->fields[i].acked);
                free(o->fields[i].acked_before);
                free(o->fields[i].inflight);
        }
        free(o->fields);
        o->fields = NULL;
        o->n_fields = 0;
        o->inflight = false;
        o->uid = mfree(o->uid);
}

Field *object_find(Object *o, FieldKind kind, const char *key) {
        for (size_t i = 0; i < o->n_fields; i++)
                if (o->fields[i].kind == kind && streq(o->fields[i].key, key))
                        return &o->fields[i];
        return NULL;
}

static Field *object_get(Object *o, FieldKind kind, const char *key) {
        Field *f = object_find(o, kind, key), *t;

        if (f)
                return f;
        t = realloc(o->fields, (o->n_fields + 1) * sizeof(Field));
        if (!t)
                return NULL;
        o->fields = t;
        f = &o->fields[o->n_fields];
        *f = (Field) { .kind = kind, .key = strdup(key) };
        if (!f->key)
                return NULL;
        o->n_fields++;
        return f;
}

int object_set_desired(Object *o, FieldKind kind, const char *key, const char *value, uint64_t seq) {
        Field *f = object_get(o, kind, key);

        if (!f)
                return -ENOMEM;
        if (free_and_strdup(&f->desired, value) < 0)
                return -ENOMEM;
        if (seq > f->desired_seq)
                f->desired_seq = seq;
        if (seq > 0) {
                f->refused = false; /* written again: tried again */
                f->yielded = false;
        }
        return streq_ptr(f->acked, value) ? 1 : 0;
}

int object_set_acked(Object *o, FieldKind kind, const char *key, const char *value) {
        Field *f = object_get(o, kind, key);

        if (!f)
                return -ENOMEM;
        return free_and_strdup(&f->acked, value);
}

int object_apply(Object *o, const FieldValue *v, size_t n, bool acked, uint64_t seq) {
        _cleanup_(freep) size_t *at = NULL;
        _cleanup_(freep) char **copies = NULL;
        int repeats = 0;

        at = calloc(n ?: 1, sizeof(size_t));
        copies = calloc(n ?: 1, sizeof(char *));
        if (!at || !copies)
                return -ENOMEM;
        /* What can fail first: the fields made (an empty field is no wish) and the values
         * copied; then the values go in, which cannot fail. */
        for (size_t i = 0; i < n; i++) {
                Field *f = object_get(o, v[i].kind, v[i].key);
                copies[i] = f ? strdup(v[i].value) : NULL;
                if (!copies[i]) {
                        for (size_t k = 0; k < i; k++)
                                free(copies[k]);
                        return -ENOMEM;
                }
                at[i] = (size_t) (f - o->fields);
        }
        for (size_t i = 0; i < n; i++) {
                Field *f = &o->fields[at[i]];
                char **slot = acked ? &f->acked : &f->desired;

                free(*slot);
                *slot = copies[i];
                if (acked)
                        continue;
                if (seq > f->desired_seq)
                        f->desired_seq = seq;
                if (seq > 0) {
                        f->refused = false; /* written again: tried again */
                        f->yielded = false;
                }
                if (streq_ptr(f->acked, f->desired))
                        repeats++;
        }
        return repeats;
}

bool object_has_acked(const Object *o) {
        for (size_t i = 0; i < o->n_fields; i++)
                if (o->fields[i].acked)
                        return true;
        return false;
}

size_t object_forget_acked(Object *o) {
        size_t n = 0;
        for (size_t i = 0; i < o->n_fields; i++) {
                Field *f = &o->fields[i];
                if (f->acked && !f->inflight) {
                        f->acked = mfree(f->acked);
                        n++;
                }
        }
        return n;
}

const char *server_field_value(json_object *server, FieldKind kind, const char *key) {
        json_object *meta, *map, *v;

        switch (kind) {
        case FIELD_LABEL:
        case FIELD_ANNOTATION:
                if (!json_object_object_get_ex(server, "metadata", &meta) ||
                    !json_object_object_get_ex(meta, kind == FIELD_LABEL ? "labels" : "annotations", &map))
                        return NULL;
                break;
        case FIELD_OPS_STATE:
                if (!json_object_object_get_ex(server, "spec", &map))
                        return NULL;
                key = "opsState";
                break;
        case FIELD_DATA:
                if (!json_object_object_get_ex(server, "data", &map))
                        return NULL;
                break;
        default:
                return NULL;
        }
        if (!json_object_is_type(map, json_type_object) || !json_object_object_get_ex(map, key, &v) ||
            !json_object_is_type(v, json_type_string))
                return NULL;
        return json_object_get_string(v);
}

static const char *str_member(json_object *o, const char *key) {
        json_object *v;

        if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
                return NULL;
        return json_object_get_string(v);
}

json_object *pod_condition_find(json_object *pod, const char *type) {
        json_object *status, *list;

        if (!pod || !json_object_object_get_ex(pod, "status", &status) ||
            !json_object_object_get_ex(status, "conditions", &list) ||
            !json_object_is_type(list, json_type_array))
                return NULL;
        for (size_t i = 0; i < json_object_array_length(list); i++) {
                json_object *c = json_object_array_get_idx(list, i);
                if (streq_ptr(str_member(c, "type"), type))
                        return c;
        }
        return NULL;
}

bool server_field_holds(json_object *server, FieldKind kind, const char *key, const char *value) {
        json_object *want, *have;
        bool same;

        if (kind != FIELD_CONDITION)
                return streq_ptr(server_field_value(server, kind, key), value);
        have = pod_condition_find(server, key);
        if (!have || !value)
                return !have && !value;
        want = json_tokener_parse(value);
        /* An empty message is left out of the object the API server returns. */
        same = streq_ptr(str_member(want, "status"), str_member(have, "status")) &&
               streq(strempty(str_member(want, "message")), strempty(str_member(have, "message")));
        json_object_put(want);
        return same;
}

size_t object_check(Object *o, json_object *server) {
        json_object *meta, *uid;
        const char *u = NULL;
        size_t n = 0;

        if (json_object_object_get_ex(server, "metadata", &meta) &&
            json_object_object_get_ex(meta, "uid", &uid) && json_object_is_type(uid, json_type_string))
                u = json_object_get_string(uid);
        if (u && !streq_ptr(o->uid, u)) {
                if (o->uid)
                        n += object_forget_acked(o);
                (void) free_and_strdup(&o->uid, u);
        }
        for (size_t i = 0; i < o->n_fields; i++) {
                Field *f = &o->fields[i];
                if (!f->acked || f->inflight)
                        continue;
                if (server_field_holds(server, f->kind, f->key, f->acked))
                        continue;
                if (f->kind == FIELD_CONDITION && pod_condition_find(server, f->key) &&
                    !(f->acked_before && server_field_holds(server, f->kind, f->key, f->acked_before))) {
                        /* Another writer's value: do not fight it. */
                        f->yielded = true;
                        f->acked = mfree(f->acked);
                        continue;
                }
                f->acked = mfree(f->acked);
                n++;
        }
        return n;
}

static bool field_differs(const Field *f) {
        return f->desired && !f->refused && !f->yielded && !streq_ptr(f->desired, f->acked);
}

size_t object_patch_refused(Object *o, bool give_up, Field **ret_field) {
        Field *one = NULL;
        size_t n = 0;

        for (size_t i = 0; i < o->n_fields; i++)
                if (o->fields[i].inflight) {
                        one = &o->fields[i];
                        n++;
                }
        if (n > 1) {
                o->isolating = true;
                one = NULL;
        } else if (one && give_up)
                one->refused = true;
        object_patch_failed(o);
        if (ret_field)
                *ret_field = one;
        return n;
}

size_t object_yielded(const Object *o) {
        size_t n = 0;
        for (size_t i = 0; i < o->n_fields; i++)
                if (o->fields[i].yielded)
                        n++;
        return n;
}

size_t object_pending_refused(const Object *o) {
        size_t n = 0;
        for (size_t i = 0; i < o->n_fields; i++)
                if (o->fields[i].refused && !streq_ptr(o->fields[i].desired, o->fields[i].acked))
                        n++;
        return n;
}

size_t object_clear_refused(Object *o) {
        size_t n = 0;
        for (size_t i = 0; i < o->n_fields; i++)
                if (o->fields[i].refused) {
                        o->fields[i].refused = false;
                        n++;
                }
        return n;
}

size_t object_pending(const Object *o) {
        size_t n = 0;
        for (size_t i = 0; i < o->n_fields; i++)
                if (field_differs(&o->fields[i]))
                        n++;
        return n;
}

bool object_needs_write(const Object *o) {
        return object_pending(o) > 0;
}

static json_object *obj_child(json_object *parent, const char *key) {
        json_object *c;

        if (json_object_object_get_ex(parent, key, &c))
                return c;
        c = json_object_new_object();
        json_object_object_add(parent, key, c);
        return c;
}

/* {"status":{"conditions":[{"type":KEY, ...value...}]}}: a strategic merge patch merges the
 * list by type, so conditions of other types stay. */
static void condition_add(json_object *patch, const char *type, const char *value) {
        json_object *status = obj_child(patch, "status"), *list, *c, *v = json_tokener_parse(value);

        if (!json_object_object_get_ex(status, "conditions", &list)) {
                list = json_object_new_array();
                json_object_object_add(status, "conditions", list);
        }
        c = json_object_new_object();
        json_object_object_add(c, "type", json_object_new_string(type));
        if (v && json_object_is_type(v, json_type_object)) {
                json_object_object_foreach(v, k, val)
                        json_object_object_add(c, k, json_object_get(val));
        }
        json_object_put(v);
        json_object_array_add(list, c);
}

int object_begin_patch(Object *o, json_object **ret_patch, uint64_t *ret_seq) {
        json_object *patch;
        uint64_t seq = 0;

        if (o->inflight)
                return -EBUSY;
        if (!object_needs_write(o))
                return -ENODATA;

        patch = json_object_new_object();
        if (!patch)
                return -ENOMEM;
        for (size_t i = 0; i < o->n_fields; i++) {
                Field *f = &o->fields[i];
                json_object *where;

                if (!field_differs(f))
                        continue;
                switch (f->kind) {
                case FIELD_LABEL:
                        where = obj_child(obj_child(patch, "metadata"), "labels");
                        break;
                case FIELD_ANNOTATION:
                        where = obj_child(obj_child(patch, "metadata"), "annotations");
                        break;
                case FIELD_OPS_STATE:
                        where = obj_child(patch, "spec");
                        break;
                case FIELD_CONDITION:
                        where = NULL;
                        break;
                case FIELD_DATA:
                default:
                        where = obj_child(patch, "data");
                        break;
                }
                if (f->kind == FIELD_CONDITION)
                        condition_add(patch, f->key, f->desired);
                else
                        json_object_object_add(where, f->kind == FIELD_OPS_STATE ? "opsState" : f->key,
                                               json_object_new_string(f->desired));
                if (free_and_strdup(&f->inflight, f->desired) < 0) {
                        json_object_put(patch);
                        object_patch_failed(o);
                        return -ENOMEM;
                }
                f->inflight_seq = f->desired_seq;
                if (f->desired_seq > seq)
                        seq = f->desired_seq;
                if (o->isolating)
                        break;
        }
        o->inflight = true;
        *ret_patch = patch;
        if (ret_seq)
                *ret_seq = seq;
        return 0;
}

size_t object_patch_succeeded(Object *o) {
        size_t n = 0;
        uint64_t seq = 0;

        for (size_t i = 0; i < o->n_fields; i++) {
                Field *f = &o->fields[i];
                if (!f->inflight)
                        continue;
                if (f->acked && !streq(f->acked, f->inflight)) {
                        free(f->acked_before);
                        f->acked_before = TAKE_PTR(f->acked);
                }
                free(f->acked);
                f->acked = TAKE_PTR(f->inflight);
                if (f->inflight_seq > seq)
                        seq = f->inflight_seq;
                n++;
        }
        if (seq > o->acked_seq)
                o->acked_seq = seq;
        o->inflight = false;
        if (!object_needs_write(o))
                o->isolating = false;
        return n;
}

void object_patch_failed(Object *o) {
        for (size_t i = 0; i < o->n_fields; i++)
                o->fields[i].inflight = mfree(o->fields[i].inflight);
        o->inflight = false;
}

json_object *object_inflight_fields(const Object *o) {
        json_object *a = json_object_new_array();

        for (size_t i = 0; i < o->n_fields; i++) {
                const Field *f = &o->fields[i];
                json_object *e;

                if (!f->inflight)
                        continue;
                e = json_object_new_object();
                json_object_object_add(e, "kind", json_object_new_string(field_kind_to_string(f->kind)));
                json_object_object_add(e, "key", json_object_new_string(f->key));
                json_object_object_add(e, "value", json_object_new_string(f->inflight));
                json_object_array_add(a, e);
        }
        return a;
}

json_object *records_configmap_new(const char *name, const char *namespace, json_object *patch) {
        json_object *cm = json_object_new_object(), *meta = json_object_new_object(), *data;

        json_object_object_add(cm, "apiVersion", json_object_new_string("v1"));
        json_object_object_add(cm, "kind", json_object_new_string("ConfigMap"));
        json_object_object_add(meta, "name", json_object_new_string(name));
        json_object_object_add(meta, "namespace", json_object_new_string(namespace));
        json_object_object_add(cm, "metadata", meta);
        if (json_object_object_get_ex(patch, "data", &data))
                json_object_object_add(cm, "data", json_object_get(data));
        return cm;
}

static bool key_is_member(const char *key, const char *gss) {
        const char *rest = startswith(key, gss);
        if (!rest || *rest != '-' || !rest[1])
                return false;
        for (rest++; *rest; rest++)
                if (!isdigit((unsigned char) *rest))
                        return false;
        return true;
}

bool record_belongs(const char *key, json_object *record, const char *gss) {
        json_object *set;

        if (isempty(gss) || !record || !json_object_is_type(record, json_type_object))
                return false;
        if (json_object_object_get_ex(record, "gameServerSet", &set))
                return json_object_is_type(set, json_type_string) &&
                       streq(json_object_get_string(set), gss);
        return key_is_member(key, gss);
}

int records_find_newest(json_object *data, const char *gss, const char *field,
                        const char **ret_key, const char **ret_record) {
        const char *best_key = NULL, *best_record = NULL;
        _cleanup_(freep) char *best_value = NULL;

        if (!data || !json_object_is_type(data, json_type_object) || isempty(gss))
                return 0;
        json_object_object_foreach(data, key, val) {
                const char *text = json_object_get_string(val), *v;
                json_object *rec, *fv;

                if (!json_object_is_type(val, json_type_string))
                        continue;
                rec = json_tokener_parse(text);
                if (!rec || !json_object_is_type(rec, json_type_object)) {
                        json_object_put(rec);
                        continue;
                }
                if (record_belongs(key, rec, gss) && json_object_object_get_ex(rec, field, &fv) &&
                    json_object_is_type(fv, json_type_string)) {
                        v = json_object_get_string(fv);
                        if (!best_value || strcmp(v, best_value) > 0) {
                                char *copy = strdup(v);
                                if (copy) {
                                        best_key = key;
                                        best_record = text;
                                        free(best_value);
                                        best_value = copy;
                                }
                        }
                }
                json_object_put(rec);
        }
        if (!best_key)
                return 0;
        if (ret_key)
                *ret_key = best_key;
        if (ret_record)
                *ret_record = best_record;
        return 1;
}

char *gss_from_pod_name(const char *pod) {
        const char *dash;
        size_t len;

        if (isempty(pod))
                return NULL;
        dash = strrchr(pod, '-');
        if (!dash || dash == pod || !dash[1])
                return NULL;
        for (const char *p = dash + 1; *p; p++)
                if (!isdigit((unsigned char) *p))
                        return NULL;
        len = (size_t) (dash - pod);
        return strndup(pod, len);
}

static json_object *json_deep_copy(json_object *o) {
        json_object *copy = NULL;
        if (json_object_deep_copy(o, &copy, NULL) < 0)
                return NULL;
        return copy;
}

int json_merge_patch(json_object **target, json_object *patch) {
        if (!json_object_is_type(patch, json_type_object)) {
                json_object *copy = patch ? json_deep_copy(patch) : NULL;
                if (patch && !copy)
                        return -ENOMEM;
                json_object_put(*target);
                *target = copy;
                return 0;
        }
        if (!*target || !json_object_is_type(*target, json_type_object)) {
                json_object_put(*target);
                *target = json_object_new_object();
                if (!*target)
                        return -ENOMEM;
        }
        json_object_object_foreach(patch, key, value) {
                json_object *child = NULL;
                int r;

                if (!value) {
                        json_object_object_del(*target, key);
                        continue;
                }
                if (json_object_object_get_ex(*target, key, &child))
                        child = json_object_get(child);
                r = json_merge_patch(&child, value);
                if (r < 0) {
                        json_object_put(child);
                        return r;
                }
                json_object_object_add(*target, key, child);
        }
        return 0;
}

#define ANNOTATION_VALUE_MAX (64U * 1024U)
#define RECORD_MAX (64U * 1024U)

const char *storage_check_label(const char *key, const char *value) {
        const char *why = kube_qualified_name_check(key);
        if (why)
                return why;
        return kube_label_value_check(value);
}

const char *storage_check_annotation(const char *key, const char *value) {
        const char *why = kube_qualified_name_check(key);
        if (why)
                return why;
        if (strlen(value) > ANNOTATION_VALUE_MAX)
                return "the value is longer than 64 KiB";
        return NULL;
}

const char *storage_check_record(const char *json) {
        json_object *o;
        bool ok;

        if (strlen(json) > RECORD_MAX)
                return "a record is at most 64 KiB";
        o = json_tokener_parse(json);
        ok = o && json_object_is_type(o, json_type_object);
        json_object_put(o);
        return ok ? NULL : "a record must be a JSON object";
}

const char *storage_check_event(const char *type, const char *reason, const char *message) {
        if (!streq(type, "Normal") && !streq(type, "Warning"))
                return "the event type must be Normal or Warning";
        if (isempty(reason) || strlen(reason) > 128)
                return "the event reason must be 1 to 128 characters";
        for (const char *p = reason; *p; p++)
                if (!isalnum((unsigned char) *p))
                        return "the event reason must be letters and digits (CamelCase)";
        if (strlen(message) > 1024)
                return "the event message is at most 1024 characters";
        return NULL;
}

/* Kruise cuts a probe's message at 1024 bytes; the plugin hands on what Kruise would write. */
#define CONDITION_MESSAGE_MAX 1024U

const char *storage_check_condition(const char *type, const char *status, const char *message) {
        const char *why;

        if (isempty(type))
                return "the condition type is empty";
        why = kube_qualified_name_check(type);
        if (why)
                return why;
        /* kubelet's own: writing them would fight it. */
        if (streq(type, "Ready") || streq(type, "ContainersReady") || streq(type, "Initialized") ||
            streq(type, "PodScheduled"))
                return "the condition type is kubelet's own";
        if (!streq(status, "True") && !streq(status, "False") && !streq(status, "Unknown"))
                return "the status must be True, False or Unknown";
        if (strlen(message) > CONDITION_MESSAGE_MAX)
                return "the message is longer than 1024 bytes (Kruise cuts a probe's message there)";
        for (const unsigned char *p = (const unsigned char *) message; *p; p++)
                if ((*p < 0x20 && *p != '\n' && *p != '\r' && *p != '\t') || *p == 0x7f)
                        return "the message holds a control character other than tab, CR and LF";
        return NULL;
}

char *pod_condition_value(const char *prev, json_object *server_pod, const char *type,
                          const char *status, const char *message, const char *now) {
        json_object *p = prev ? json_tokener_parse(prev) : NULL, *before = p, *v;
        const char *transition = now;
        char *text;

        if (!before)
                before = pod_condition_find(server_pod, type);
        if (before) {
                bool same_status = streq_ptr(str_member(before, "status"), status);
                if (p && same_status && streq(strempty(str_member(before, "message")), message)) {
                        json_object_put(p);
                        return NULL;
                }
                if (same_status && str_member(before, "lastTransitionTime"))
                        transition = str_member(before, "lastTransitionTime");
        }
        v = json_object_new_object();
        json_object_object_add(v, "status", json_object_new_string(status));
        json_object_object_add(v, "message", json_object_new_string(message));
        json_object_object_add(v, "lastProbeTime", json_object_new_string(now));
        json_object_object_add(v, "lastTransitionTime", json_object_new_string(transition));
        text = strdup(json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(v);
        json_object_put(p);
        return text;
}

/* parent[key], made an empty object or array of that type when missing or of another type. */
static json_object *member_of_type(json_object *parent, const char *key, json_type type) {
        json_object *v;

        if (json_object_object_get_ex(parent, key, &v) && json_object_is_type(v, type))
                return v;
        v = type == json_type_array ? json_object_new_array() : json_object_new_object();
        if (v)
                json_object_object_add(parent, key, v);
        return v;
}

int pod_conditions_merge(json_object *pod, json_object *patch) {
        json_object *pstatus, *plist, *status, *list;

        if (!json_object_object_get_ex(patch, "status", &pstatus) ||
            !json_object_object_get_ex(pstatus, "conditions", &plist) ||
            !json_object_is_type(plist, json_type_array))
                return 0;
        /* A hand-edited local store may hold anything there. */
        status = member_of_type(pod, "status", json_type_object);
        list = status ? member_of_type(status, "conditions", json_type_array) : NULL;
        if (!list)
                return -ENOMEM;
        for (size_t i = 0; i < json_object_array_length(plist); i++) {
                json_object *want = json_object_array_get_idx(plist, i), *have;

                if (!json_object_is_type(want, json_type_object) || !str_member(want, "type"))
                        continue;
                have = pod_condition_find(pod, str_member(want, "type"));

                if (!have) {
                        have = json_object_new_object();
                        if (!have)
                                return -ENOMEM;
                        json_object_array_add(list, have);
                }
                json_object_object_foreach(want, k, val)
                        json_object_object_add(have, k, json_object_get(val));
        }
        return 0;
}

static bool parse_u64(const char *s, uint64_t *ret) {
        char *end;
        unsigned long long v;

        if (isempty(s) || !isdigit((unsigned char) *s))
                return false;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno != 0 || *end)
                return false;
        *ret = v;
        return true;
}

bool resource_version_newer(const char *a, const char *b) {
        uint64_t x, y;

        if (isempty(a))
                return false;
        if (!b)
                return true;
        if (parse_u64(a, &x) && parse_u64(b, &y))
                return x > y;
        return !streq(a, b);
}

uint64_t reassert_due(const Reassert *r, uint64_t now) {
        uint64_t d = REASSERT_FIRST_USEC;

        if (r->streak == 0 || now >= r->last_usec + REASSERT_QUIET_USEC)
                return now;
        for (unsigned i = 1; i < r->streak && d < REASSERT_MAX_USEC; i++)
                d *= 2;
        if (d > REASSERT_MAX_USEC)
                d = REASSERT_MAX_USEC;
        return r->last_usec + d > now ? r->last_usec + d : now;
}

void reassert_sent(Reassert *r, uint64_t now) {
        if (r->streak > 0 && now >= r->last_usec + REASSERT_QUIET_USEC)
                r->streak = 0;
        r->streak++;
        r->last_usec = now;
}
