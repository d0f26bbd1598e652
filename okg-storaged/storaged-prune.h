/* Pruning the result ConfigMap: which records belong to pods that are gone, decided from the
 * ConfigMap's data, the pods that exist, and since when each missing pod has been missing.
 * Pure: no I/O, time is passed in. The requests are in storaged-pruner.c. */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"

typedef struct PruneMissing {
        char *key;
        uint64_t since;           /* the first round (CLOCK_MONOTONIC usec) it was missing */
} PruneMissing;

typedef struct PruneState {
        PruneMissing *v;
        size_t n;
} PruneState;

void prune_state_done(PruneState *s);
/* The pod exists after all (or its record went): it starts over when it is missing again. */
void prune_state_forget(PruneState *s, const char *key);

/* The pod names of a PodList body (GET .../pods), as the keys of a new JSON object.
 * -EBADMSG, with a phrase in *ret_why, when it is not a complete list: not JSON, not a
 * PodList, no items, an item without a name, or a continue token (only part of the list). */
int prune_pod_names(const char *body, size_t len, json_object **ret_names, const char **ret_why);

/* Whose records a pod may prune: those of its GameServerSet, in its namespace, not its own. */
typedef struct PruneScope {
        const char *gss;
        const char *own;          /* the pod's name: its own record is never pruned */
        const char *namespace;    /* the pod's namespace, where the pods are listed */
        bool records_here;        /* the result ConfigMap is in that namespace too */
} PruneScope;

/* A record may be pruned when it belongs to the set (record_belongs()), is not the pod's own,
 * and its "namespace" is the pod's; a record without one (written before records named their
 * namespace) only when the ConfigMap is in the pod's namespace: a ConfigMap shared by several
 * namespaces may hold another namespace's pod under the same name. */
bool prune_is_candidate(const PruneScope *scope, const char *key, json_object *value);

/* One round. data: the ConfigMap's data (NULL: none). live: an object whose keys are the pods
 * that exist. A candidate whose pod is not live is missing: remembered with `now` the first
 * round it is, and due once it has been missing for at least grace. Keys whose pod is live
 * again, or whose record is gone, are forgotten. Returns the number of due keys and them in
 * *ret_due (NULL-terminated, NULL when none). */
int prune_decide(PruneState *s, json_object *data, json_object *live, const PruneScope *scope,
                 uint64_t now, uint64_t grace, char ***ret_due);

/* Whether data holds a candidate: without one there is nothing to prune and the pods need not
 * be listed. */
bool prune_has_candidates(json_object *data, const PruneScope *scope);

/* A JSON merge patch removing keys from data.*, with the ConfigMap's resourceVersion as read
 * as a precondition: if anything in it changed in between (a pod came back and wrote its
 * record, another pod removed some first) the API server refuses it (409) and nothing is
 * removed. (A JSON patch "test" of each value would not do: the API server compares the JSON
 * text, and its escaping differs from ours.) NULL without a resourceVersion. */
json_object *prune_patch(const char *resource_version, char *const *keys);

/* Time between rounds for a grace period: half of it, at least 1 s, at most 5 minutes. */
uint64_t prune_interval_usec(uint64_t grace_usec);
