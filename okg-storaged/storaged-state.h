/* What okg-storaged wants the API server to hold, per object and field, next to what the API
 * server last acknowledged. Pure data and JSON building, no I/O: the write discipline
 * (coalescing, one request in flight, nothing sent when nothing differs) is decided here. */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum ObjectKind {
        OBJECT_POD,
        OBJECT_GAMESERVER,
        OBJECT_RECORDS,          /* the result ConfigMap, one data key per pod */
        _OBJECT_KIND_MAX,
        _OBJECT_KIND_INVALID = -EINVAL,
} ObjectKind;

typedef enum FieldKind {
        FIELD_LABEL,
        FIELD_ANNOTATION,
        FIELD_OPS_STATE,         /* spec.opsState, key "" */
        FIELD_DATA,              /* data.<key> */
        _FIELD_KIND_MAX,
        _FIELD_KIND_INVALID = -EINVAL,
} FieldKind;

typedef struct Field {
        FieldKind kind;
        char *key;
        char *desired;           /* what we want */
        uint64_t desired_seq;    /* the write that asked for it */
        char *acked;             /* what the API server last acknowledged, NULL if unknown */
        char *inflight;          /* the value in the request being sent, NULL if none */
        uint64_t inflight_seq;
} Field;

typedef struct Object {
        ObjectKind kind;
        Field *fields;
        size_t n_fields;
        bool inflight;
        uint64_t acked_seq;      /* every write up to here is acknowledged for this object */
} Object;

const char *object_kind_to_string(ObjectKind k);
ObjectKind object_kind_from_string(const char *s);
const char *field_kind_to_string(FieldKind k);
FieldKind field_kind_from_string(const char *s);

void object_done(Object *o);
Field *object_find(Object *o, FieldKind kind, const char *key);
/* Records the wish; a later wish for the same field replaces an earlier one (last value wins). */
int object_set_desired(Object *o, FieldKind kind, const char *key, const char *value, uint64_t seq);
/* Records what the API server holds (journal replay and acknowledgements). */
int object_set_acked(Object *o, FieldKind kind, const char *key, const char *value);

/* Fields whose desired value differs from the acknowledged one. */
size_t object_pending(const Object *o);
bool object_needs_write(const Object *o);

/* Builds the JSON merge patch of every field that differs, marks those values in flight and
 * returns the highest write sequence it covers. -ENODATA when nothing differs, -EBUSY when a
 * request is already in flight. */
int object_begin_patch(Object *o, json_object **ret_patch, uint64_t *ret_seq);
/* The request succeeded: the in-flight values are now acknowledged. Returns the number of
 * fields acknowledged. */
size_t object_patch_succeeded(Object *o);
/* The request failed: nothing changes but the in-flight mark. */
void object_patch_failed(Object *o);
/* The fields of the in-flight request as {"kind":..., "key":..., "value":...} entries, for the
 * journal's acknowledgement line. */
json_object *object_inflight_fields(const Object *o);

/* The body of a ConfigMap that does not exist yet, holding the in-flight data. */
json_object *records_configmap_new(const char *name, const char *namespace, json_object *patch);

/* Whether a record (a parsed JSON object) stored under key belongs to a GameServerSet: its
 * "gameServerSet" equals gss, or it has none and key is "<gss>-<digits>". */
bool record_belongs(const char *key, json_object *record, const char *gss);

/* Highest `field` among the records of a ConfigMap's data that belong to a GameServerSet:
 * each record is a JSON object; it belongs when its "gameServerSet" equals gss, or when it has
 * none and the data key is "<gss>-<digits>" (how OKG names its pods). Compared as strings.
 * Returns 1 and the key/record when found, 0 when none. */
int records_find_newest(json_object *data, const char *gss, const char *field,
                        const char **ret_key, const char **ret_record);

/* The GameServerSet a pod belongs to when it carries no game.kruise.io/owner-gss label: its
 * name without the trailing "-<digits>". NULL when the name has no such suffix. */
char *gss_from_pod_name(const char *pod);

/* RFC 7386 JSON merge patch: applies patch to *target (creating it when NULL). null members
 * remove keys. Pure; takes no reference to patch. */
int json_merge_patch(json_object **target, json_object *patch);

/* Checks of what plugins hand over, each NULL when fine or a phrase saying why. Pure. */
const char *storage_check_label(const char *key, const char *value);
const char *storage_check_annotation(const char *key, const char *value);
const char *storage_check_record(const char *json);
const char *storage_check_event(const char *type, const char *reason, const char *message);
