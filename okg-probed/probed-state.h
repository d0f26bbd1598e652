/* From probe results to what okg-storaged is asked to write: the per-endpoint threshold state
 * machine (kubelet semantics), markerPolices matching, precedence between endpoints, and the
 * edge trigger (only fields whose value changed are handed on). Pure: no I/O. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "probed-config.h"

/* Per-endpoint thresholds. A success streak counts successes in a row that returned the same
 * state; successThreshold of them apply that state. failureThreshold failures in a row make
 * the endpoint failing, and apply failureState when one is configured (else the applied
 * state stays). Any success ends a failure streak and any failure a success streak. */
typedef struct ProbeTracker {
        unsigned success_threshold;
        unsigned failure_threshold;
        char *failure_state;          /* owned copy, NULL when none */
        char *state;                  /* the applied state, NULL until one is applied */
        char *streak_state;           /* the state of the current success streak */
        unsigned successes;           /* consecutive successes with streak_state */
        unsigned failures;            /* consecutive failures */
        bool failing;                 /* failureThreshold reached, no state applied since */
} ProbeTracker;

int probe_tracker_init(ProbeTracker *t, unsigned success_threshold, unsigned failure_threshold,
                       const char *failure_state);
void probe_tracker_done(ProbeTracker *t);
/* Feed one result. Return 1 when the applied state changed (the previous one, possibly NULL,
 * is handed over in *ret_old when ret_old is not NULL; free it), 0 when it did not, -ENOMEM. */
int probe_tracker_success(ProbeTracker *t, const char *state, char **ret_old);
int probe_tracker_failure(ProbeTracker *t, char **ret_old);

/* The policy whose state equals state exactly, NULL when none. */
const MarkerPolicy *probe_policy_find(const ProbeEndpoint *ep, const char *state);

/* One field okg-storaged writes. */
typedef enum ProbeTarget {
        PROBE_TARGET_OPS_STATE,          /* GameServer spec.opsState (key "") */
        PROBE_TARGET_GS_LABEL,
        PROBE_TARGET_GS_ANNOTATION,
        PROBE_TARGET_POD_LABEL,
        PROBE_TARGET_POD_ANNOTATION,
        _PROBE_TARGET_MAX,
} ProbeTarget;

typedef struct ProbeField {
        ProbeTarget target;
        char *key;
        char *value;
        size_t source;                   /* the endpoint index that decided it */
} ProbeField;

typedef struct ProbeFields {
        ProbeField *v;
        size_t n;
} ProbeFields;

void probe_fields_done(ProbeFields *f);
const ProbeField *probe_fields_get(const ProbeFields *f, ProbeTarget target, const char *key);
/* Sets target/key (NULL means "") to value, adding the entry when it is new. */
int probe_fields_set(ProbeFields *f, ProbeTarget target, const char *key, const char *value,
                     size_t source);

/* What the plugin wants written, given every endpoint's applied state (states[i] NULL: none).
 * Precedence: endpoints in file order, the first one that decides a field wins it. An
 * endpoint decides opsState, labels and annotations through the policy matching its state,
 * and its annotationKey/labelKey with the raw state; HTTPMetric endpoints and states no policy
 * matches decide nothing on the GameServer. A state that is not a valid label value is not
 * written to labelKey. */
int probe_desired_compute(const ProbeConfig *c, char *const *states, ProbeFields *ret);

/* The fields of want whose value differs from (or is missing in) sent: the edge trigger. */
int probe_fields_diff(const ProbeFields *want, const ProbeFields *sent, ProbeFields *ret);
/* Records every field of changes in sent. */
int probe_fields_merge(ProbeFields *sent, const ProbeFields *changes);

/* The delay from the start of one probe to the start of the next: between 95% and 100% of
 * the interval (at most 500 ms short), so a change is seen within one interval and endpoints
 * and pods drift apart. rnd is a uniform random number. Pure. */
uint64_t probe_next_delay(uint64_t interval_usec, uint32_t rnd);
/* The timer accuracy that goes with it (lets the kernel batch wake-ups). Pure. */
uint64_t probe_timer_accuracy(uint64_t interval_usec);
