/* The local store: the same objects okg-storaged keeps in Kubernetes, as one readable JSON file
 * (<state-dir>/local-store.json) rewritten atomically on every change. The embedded default when
 * there is no cluster. */
#pragma once

#include <json-c/json.h>

#include "storaged-state.h"

typedef struct LocalStore LocalStore;

int local_store_open(const char *path, LocalStore **ret);
LocalStore *local_store_free(LocalStore *s);
static inline void local_store_freep(LocalStore **s) {
        local_store_free(*s);
}
const char *local_store_path(const LocalStore *s);
/* Applies a merge patch to the object (created when missing) and saves the file. */
int local_store_patch(LocalStore *s, ObjectKind kind, const char *ns, const char *name,
                      json_object *patch);
/* The object, or NULL (borrowed). */
json_object *local_store_get(LocalStore *s, ObjectKind kind, const char *ns, const char *name);
/* Appends an event (the newest 100 are kept) and saves the file. */
int local_store_add_event(LocalStore *s, json_object *event);
