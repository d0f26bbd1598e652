/* okg-storaged's pure decisions around the journal and the API server, without I/O: the
 * journal's entries (built and applied), where each object lives on the API server, the
 * Events it posts and how a refused field is named. The daemon's files do the I/O
 * (storaged-persist.c, -writer.c, -events.c); tests/unit/test-storaged.c covers these. */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

#include "storaged-state.h"

/* Where an object lives: the pod, its GameServer (named as the pod), its status subresource,
 * and the result ConfigMap (or, with collection, the ConfigMaps of its namespace, for a
 * POST). */
typedef struct ObjectPlace {
        const char *namespace, *pod;
        const char *records_namespace, *records_name;
} ObjectPlace;

int object_api_path(const ObjectPlace *p, ObjectKind kind, bool collection, char **ret);
const char *object_place_namespace(const ObjectPlace *p, ObjectKind kind);
const char *object_place_name(const ObjectPlace *p, ObjectKind kind);

/* {"kind":..., "key":..., "value":...}: one field of a "set" or "ack" list. */
json_object *entry_field(FieldKind kind, const char *key, const char *value);
/* Applies a "set" (acked false, the write seq) or "ack" list to an object. Returns how many
 * set values repeat what the API server acknowledged, or -EBADMSG for a list that is not one. */
int entry_apply_fields(Object *o, json_object *list, bool acked, uint64_t seq);
/* {"seq":seq, "object":kind, "set":fields}: an accepted write. Takes fields. */
json_object *entry_set(ObjectKind kind, uint64_t seq, json_object *fields);
/* {"object":kind, "namespace":..., "name":..., "uid":..., "ack":fields}: an acknowledgement
 * names the object it was made against. Takes fields. */
json_object *entry_ack(ObjectKind kind, const char *namespace, const char *name, const char *uid,
                       json_object *fields);

/* <pod>.<realtime ns><seq> in hex, like client-go's recorder's <name>.<ns>; the pod part is
 * cut so the name stays a valid object name. */
char *event_object_name(const char *pod, uint64_t realtime_nsec, uint64_t seq);
/* The Event to POST for a journaled event (type, reason, message, time, name) on the pod
 * (uid may be NULL). */
json_object *event_object_new(json_object *ev, const char *namespace, const char *pod,
                              const char *pod_uid);

/* How a refused field is named in messages: `label "KEY"`, `annotation "KEY"`, `opsState`. */
char *field_describe(const Field *f);
