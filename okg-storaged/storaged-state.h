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
        OBJECT_POD_STATUS,       /* the pod's status subresource: status.conditions */
        _OBJECT_KIND_MAX,
        _OBJECT_KIND_INVALID = -EINVAL,
} ObjectKind;

typedef enum FieldKind {
        FIELD_LABEL,
        FIELD_ANNOTATION,
        FIELD_OPS_STATE,         /* spec.opsState, key "" */
        FIELD_DATA,              /* data.<key> */
        FIELD_CONDITION,         /* status.conditions[type=<key>], value a pod_condition_value() */
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
        bool refused;            /* the API server refused desired: not sent until written again */
        /* Conditions: the value acknowledged before the current one, and whether another writer
         * holds the condition now (a value we never wrote): left to it until written again. */
        char *acked_before;
        bool yielded;
} Field;

typedef struct Object {
        ObjectKind kind;
        Field *fields;
        size_t n_fields;
        bool inflight;
        uint64_t acked_seq;      /* every write up to here is acknowledged for this object */
        char *uid;               /* of the object the acknowledgements were made against */
        bool isolating;          /* a request of several fields was refused: one field at a time */
} Object;

const char *object_kind_to_string(ObjectKind k);
ObjectKind object_kind_from_string(const char *s);
const char *field_kind_to_string(FieldKind k);
FieldKind field_kind_from_string(const char *s);

void object_done(Object *o);
Field *object_find(Object *o, FieldKind kind, const char *key);
/* Records the wish; a later wish for the same field replaces an earlier one (last value wins).
 * Returns 1 when the value is the one the API server acknowledged (nothing to send, but the
 * caller may check the object still holds it), 0 otherwise. */
int object_set_desired(Object *o, FieldKind kind, const char *key, const char *value, uint64_t seq);
/* Records what the API server holds (journal replay and acknowledgements). */
int object_set_acked(Object *o, FieldKind kind, const char *key, const char *value);

/* One field of a write or an acknowledgement. */
typedef struct FieldValue {
        FieldKind kind;
        const char *key, *value;
} FieldValue;
/* Applies n fields at once, all or nothing (a write of labels and annotations is never applied
 * in part): as object_set_desired() with seq, or with acked as object_set_acked(). Returns how
 * many values repeat what the API server acknowledged, or -ENOMEM with the object unchanged. */
int object_apply(Object *o, const FieldValue *v, size_t n, bool acked, uint64_t seq);

/* Whether the object holds any acknowledged value. */
bool object_has_acked(const Object *o);
/* Forgets every acknowledgement (except of the values in flight): they are sent again. */
size_t object_forget_acked(Object *o);
/* The value of a field in an object as the API server returned it, NULL when it has none. */
const char *server_field_value(json_object *server, FieldKind kind, const char *key);
/* Whether the object the API server returned holds value in that field. For a condition: a
 * condition of that type with the value's status and message (the times are not compared). */
bool server_field_holds(json_object *server, FieldKind kind, const char *key, const char *value);
/* Checks the acknowledgements against an object the API server returned (a GET, or the answer
 * to a PATCH): a uid other than the known one (the object was deleted and created again) drops
 * every acknowledgement, and each acknowledged field whose value the object does not hold (set
 * by someone else) is dropped, so it is sent again. Fields in flight are left to the request.
 * A pod condition is sent again only when it is gone or holds the value acknowledged before
 * ours (a status replaced with a stale copy); holding a value we never wrote, it belongs to
 * another writer (kruise-daemon on a normal node): the field yields, not sent until written
 * again. Learns the uid. Returns the number of acknowledgements dropped to be sent again. */
size_t object_check(Object *o, json_object *server);

/* A refusal (a 4xx other than those retried) of the request in flight. With several fields in
 * it, the object sends its fields one at a time from now on until nothing is pending, so the
 * refused one is found and the others are delivered; returns the number of fields that were in
 * flight and *ret_field NULL. With one field: when give_up, that field is marked refused (not
 * sent until it is written again); *ret_field is it. The in-flight mark is cleared. */
size_t object_patch_refused(Object *o, bool give_up, Field **ret_field);
/* Condition fields left to another writer (see object_check()). */
size_t object_yielded(const Object *o);
/* Fields refused and not acknowledged: they wait for a new write. */
size_t object_pending_refused(const Object *o);
/* Forgets the refusals (something changed that may make them pass now). Returns how many. */
size_t object_clear_refused(Object *o);

/* Fields whose desired value differs from the acknowledged one and that were not refused. */
size_t object_pending(const Object *o);
bool object_needs_write(const Object *o);

/* Builds the JSON merge patch of every field that differs (only the first of them while
 * isolating; refused ones never), marks those values in flight and returns the highest write
 * sequence it covers. -ENODATA when nothing differs, -EBUSY when a
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

/* Pod conditions (Storage1.SetPodConditions). A field's value is the JSON text of
 * {"status","message","lastProbeTime","lastTransitionTime"}. */
const char *storage_check_condition(const char *type, const char *status, const char *message);
/* The value to want for a condition of `type` given the one wanted before (prev: a field value,
 * or NULL), a condition the pod holds (server_pod: the pod object, or NULL) when there is no
 * prev, and now (RFC 3339): NULL when status and message equal prev's (nothing changes, the
 * times included); else lastProbeTime is now and lastTransitionTime is now when the status
 * differs from the previous one, else the previous transition time. */
char *pod_condition_value(const char *prev, json_object *server_pod, const char *type,
                          const char *status, const char *message, const char *now);
/* The condition of `type` in a pod object's status.conditions, or NULL (borrowed). */
json_object *pod_condition_find(json_object *pod, const char *type);
/* Merges a patch's status.conditions into the pod by type, as the API server's strategic merge
 * does (conditions of other types stay; of the same type, the patch's members replace the
 * condition's). For the local store. */
int pod_conditions_merge(json_object *pod, json_object *patch);
/* Whether resourceVersion a is newer than b (numeric when both are numbers, else different;
 * b NULL: yes). */
bool resource_version_newer(const char *a, const char *b);

/* Re-asserting conditions someone else removed (a virtual-kubelet provider that replaces the
 * whole status): the first time at once, then, while removals keep coming, no sooner than
 * REASSERT_FIRST_USEC doubling up to REASSERT_MAX_USEC after the previous re-assert; a streak
 * ends after REASSERT_QUIET_USEC without a removal. Pure. */
#define REASSERT_FIRST_USEC (1ULL * 1000000ULL)
#define REASSERT_MAX_USEC (300ULL * 1000000ULL)
#define REASSERT_QUIET_USEC (600ULL * 1000000ULL)
typedef struct Reassert {
        unsigned streak;          /* re-asserts in this streak */
        uint64_t last_usec;       /* CLOCK_MONOTONIC of the last one (streak > 0) */
} Reassert;
/* When (CLOCK_MONOTONIC) the next re-assert may go out, given a removal seen at now. */
uint64_t reassert_due(const Reassert *r, uint64_t now);
/* A re-assert went out at now. */
void reassert_sent(Reassert *r, uint64_t now);
