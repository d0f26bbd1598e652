/* okgctl fleet: the pure part. Which pods, in which order, how many at once, when to stop,
 * and what a pod's annotation says. No I/O here: fleet.c drives it from the event loop, the
 * unit tests call it directly. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum FleetPhase {
        FLEET_PENDING,     /* to be updated, not started */
        FLEET_AT_VERSION,  /* its annotation says the version is in place: nothing to send */
        FLEET_IN_FLIGHT,
        FLEET_DONE,        /* the version is in place (Succeeded or Unchanged) */
        FLEET_FAILED,
} FleetPhase;

/* The pod's result annotation (the outcome JSON okg-hotupdated records). */
typedef struct FleetAnnotation {
        char *version;          /* the version the last outcome was about */
        char *current_version;  /* the version in place after it, NULL when none */
        char *state;            /* Succeeded, Unchanged, ReloadFailed, ... */
        char *message;
        char *at;               /* RFC 3339 with milliseconds: comparable as strings */
        bool success;
        bool present;
        bool unreadable;        /* there is one, but it is not an outcome object */
} FleetAnnotation;

typedef struct FleetPod {
        char *name;
        char *ip;                 /* status.podIP, NULL when it has none */
        char *ops_state;          /* its GameServer's spec.opsState, NULL without a GameServer */
        int64_t update_priority;  /* its GameServer's spec.updatePriority (0 when unset) */
        bool has_gameserver;
        FleetAnnotation ann;

        /* This run. */
        FleetPhase phase;
        bool canary;
        char *from_version;       /* in place before this run (from the annotation) */
        char *to_version;         /* in place after (from the annotation or the answer) */
        char *state;              /* outcome of this run, NULL when not started */
        char *message;
} FleetPod;

void fleet_annotation_done(FleetAnnotation *a);
/* Parses the annotation value; -EBADMSG (with *a cleared) when it is not an outcome object. */
int fleet_annotation_parse(const char *json, FleetAnnotation *a);

void fleet_pod_done(FleetPod *p);
void fleet_pods_free(FleetPod *pods, size_t n);
int fleet_pod_set_outcome(FleetPod *p, const char *state, const char *message,
                          const char *to_version);

/* "N" (1 or more) or "P%" (1-100, of total, rounded up, at least 1). -EINVAL otherwise. */
int fleet_parse_limit(const char *s, size_t total, unsigned *ret);
/* A count of 0 or more. */
int fleet_parse_count(const char *s, unsigned *ret);

/* Sorts pods for the rollout. order: NULL or "priority": spec.updatePriority higher first,
 * then pods whose opsState is not Allocated before Allocated ones, then by name (natural:
 * game-2 before game-10); "name": by name only; otherwise a comma-separated list of pod names
 * that go first in that order, the others after them in priority order. An unknown or
 * repeated name is an error (-EINVAL, reason in *ret_error). */
int fleet_order(FleetPod *pods, size_t n, const char *order, char **ret_error);

typedef struct FleetPlan {
        FleetPod *pods;           /* in rollout order; not owned */
        size_t n;
        const char *version;
        unsigned canary, max_in_flight, max_failures; /* max_failures 0: no limit */
        unsigned in_flight, failures, done, at_version, canaries_left;
        const char *stop_reason;  /* set once the rollout stopped starting pods */
} FleetPlan;

/* Marks the pods already at version (skipped) and the first `canary` of the others. */
void fleet_plan_init(FleetPlan *plan, FleetPod *pods, size_t n, const char *version,
                     unsigned canary, unsigned max_in_flight, unsigned max_failures);
/* The next pod to start now, or NULL (wait for answers, or nothing left, or stopped). It is
 * marked in flight. Canaries go first; no other pod starts before every canary succeeded. */
FleetPod *fleet_plan_next(FleetPlan *plan);
/* A pod's update ended; ok: the version is in place. */
void fleet_plan_finish(FleetPlan *plan, FleetPod *pod, bool ok);
/* Nothing in flight and nothing more will start. */
bool fleet_plan_finished(const FleetPlan *plan);
/* Pods not started (yet). */
size_t fleet_plan_left(const FleetPlan *plan);
/* Every pod is at the version. */
bool fleet_plan_complete(const FleetPlan *plan);

/* Whether an answer or annotation state means "the version asked for is in place". */
bool fleet_state_ok(const char *state);
/* Whether okg-hotupdated records an outcome with this state in the pod annotation (refusals
 * before an update starts, such as Busy or Invalid, are not recorded). */
bool fleet_state_recorded(const char *state);

/* "v2: 48, v1: 2, none: 1, failed: 1": pods per version in place (most first, then by name),
 * and how many last outcomes failed. */
char *fleet_version_summary(const FleetPod *pods, size_t n);

/* Natural order of names: digit runs compare as numbers. */
int fleet_name_cmp(const char *a, const char *b);

/* The command's name in its messages, as the user typed it: argv[0]'s last component, or for
 * a kubectl plugin (kubectl runs kubectl-okg for `kubectl okg`) the words kubectl takes for it:
 * "kubectl-okg" is "kubectl okg" ('-' separates words, '_' stands for '-'). "okgctl" when argv[0]
 * is missing or empty. Written into buf (cut to size); returns buf. */
const char *okgctl_program_name(const char *argv0, char *buf, size_t size);
