/* okg-storaged's state: the backend (Kubernetes or the local store), the journal, the desired
 * state per object, and the requests in flight. */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "okg-bus.h"
#include "okg-config.h"
#include "okg-list.h"
#include "storaged-entries.h"
#include "storaged-journal.h"
#include "storaged-kube.h"
#include "storaged-local.h"
#include "storaged-prune.h"
#include "storaged-state.h"

typedef struct Manager Manager;
typedef struct PpmWatch PpmWatch;

/* The back-off of every retry: 200 ms doubling to this, +-20 %. */
#define MANAGER_RETRY_MAX_USEC (30 * USEC_PER_SEC)
/* A refusal (403, 422, ...) is tried again this many times before it is reported and left
 * alone: right after an API server restart its authorizer denies until its caches are
 * filled, and a write refused for that must not be lost. */
#define MANAGER_REFUSALS_BEFORE_GIVING_UP 6

typedef struct ObjectSlot {
        Manager *manager;
        Object object;
        sd_event_source *retry_timer;
        unsigned attempts;
        unsigned refusals;        /* consecutive 4xx refusals */
        uint64_t inflight_seq;    /* the highest write the request in flight carries */
        bool creating;            /* the result ConfigMap did not exist: POST it */
        /* Checking the acknowledgements against the object (a GET): wanted when a write
         * repeats an acknowledged value or after a start, at most every VERIFY_INTERVAL. */
        bool verify_wanted;
        bool verify_inflight;
        uint64_t verified_usec;   /* CLOCK_MONOTONIC of the last answer that showed the object */
        unsigned verify_attempts;
        sd_event_source *verify_timer;
} ObjectSlot;

typedef struct PendingEvent PendingEvent;
struct PendingEvent {
        LIST_FIELDS(PendingEvent, events);
        uint64_t seq;
        json_object *event;       /* type, reason, message, time */
};

struct Manager {
        sd_event *event;
        OkgBus *bus;
        SidecarConfig *config;
        char *state_dir;

        char *pod, *namespace, *gss, *pod_uid;
        char *records_namespace, *records_name;

        KubeClient *kube;         /* NULL with the local store */
        LocalStore *local;
        Journal *journal;
        uint64_t next_seq;

        ObjectSlot objects[_OBJECT_KIND_MAX];
        PendingEvent *events_head, *events_tail;
        bool event_inflight;
        sd_event_source *event_timer;
        unsigned event_attempts;
        unsigned event_refusals;
        sd_event_source *dispatch_source;

        bool pod_known;
        bool pod_fetch_inflight;
        sd_event_source *pod_timer;
        unsigned pod_attempts;

        bool pod_has_gss_label;   /* its GameServerSet is from the label, not the name */

        /* Pruning records of pods that are gone (storaged-pruner.c). */
        PruneState prune;
        sd_event_source *prune_timer;
        bool prune_running;       /* a round's requests are under way */
        json_object *prune_data;  /* the ConfigMap's data as this round read it */
        char *prune_rv;           /* and its resourceVersion: the removal's precondition */
        char **prune_due;         /* missing from the set's pods for the grace period */
        char **prune_gone;        /* of those, not in the namespace either: to remove */
        size_t n_prune_gone;
        uint64_t records_pruned;

        /* The pod as last seen, kept fresh by one watch (storaged-podwatch.c): GetPod,
         * PodResourceVersion, and re-asserting conditions someone else removed. */
        json_object *pod_object;
        char *pod_rv;
        char *watch_rv;           /* where the watch resumes (bookmarks included) */
        bool watch_running;
        bool watch_gone;          /* the watch said 410 Gone: read the pod again */
        unsigned watch_attempts;
        unsigned watch_events;
        uint64_t watch_started_usec;
        uint64_t watch_timeout_usec;
        sd_event_source *watch_timer;
        Reassert reassert;
        bool reassert_wanted;
        sd_event_source *reassert_timer;

        /* The PodProbeMarkers the pod names, once a plugin asked (storaged-ppmwatch.c). */
        PpmWatch *ppmwatch;

        uint64_t acked_writes, retries, failures;
        char *last_error;
        char *journal_damage;     /* what the journal lost at start (JournalDamage), or NULL */

        bool draining;
        sd_event_source *drain_timer;
        unsigned rand_state;
};

/* Takes config, also when it fails. */
int manager_new(SidecarConfig *config, Manager **ret);
Manager *manager_free(Manager *m);
static inline void manager_freep(Manager **m) {
        manager_free(*m);
}
int manager_start(Manager *m);

const char *manager_backend(const Manager *m);
size_t manager_pending(const Manager *m);

/* Accepting writes from the bus: journaled (fsync) before returning the sequence number. */
int manager_write(Manager *m, ObjectKind kind, json_object *fields, uint64_t *ret_seq);
int manager_post_event(Manager *m, const char *type, const char *reason, const char *message,
                       uint64_t *ret_seq);
/* Answers a GetRecord/GetFleetRecord call, now or when the API server answered. */
int manager_get_record(Manager *m, sd_bus_message *call, const char *fleet_field);

uint64_t manager_jitter(Manager *m, uint64_t usec);
/* Records were removed from the result ConfigMap: a record write refused before (a full
 * ConfigMap) is tried again. */
void manager_records_freed(Manager *m);

/* For the daemon's own files. */
void manager_set_last_error(Manager *m, const char *message);
uint64_t manager_backoff(Manager *m, unsigned attempt, uint64_t retry_after);
/* Sends what every object and the events have pending, from a deferred event: bus calls
 * handled in one loop iteration end up in one request per object. */
void manager_dispatch(Manager *m);
/* While draining: exits once nothing is left to send. */
void manager_check_drained(Manager *m);
/* Where an object lives on the API server (storaged-entries.h). */
int manager_object_path(Manager *m, ObjectKind kind, bool collection, char **ret);
const char *manager_object_ns(Manager *m, ObjectKind kind);
const char *manager_object_name(Manager *m, ObjectKind kind);

/* storaged-persist.c: the journal as the daemon uses it. */
int persist_replay_entry(json_object *entry, void *userdata);
/* Rewrites the journal as a snapshot of the current state. */
int persist_compact(Manager *m);
/* persist_compact() when the journal grew enough (journal_wants_compaction()). */
void persist_maybe_compact(Manager *m);
/* The journal line acknowledging fields (taken) of the object. */
json_object *persist_ack_entry(Manager *m, const Object *o, json_object *fields);

/* storaged-writer.c: the objects' writes. */
/* Sends what the object has pending, unless a request or a back-off is under way. */
void manager_object_dispatch(ObjectSlot *s);
/* Reads the object back (GET), now or once VERIFY_INTERVAL has passed since the last answer
 * that showed it. */
void writer_want_verify(ObjectSlot *s);

/* storaged-events.c */
int events_enqueue(Manager *m, uint64_t seq, json_object *event);
void events_drop_head(Manager *m);
/* Posts the oldest event, unless one is in flight or a back-off is under way. */
void events_dispatch(Manager *m);

/* storaged-podwatch.c: the pod as last seen. */
/* Reads the pod (GET) unless known or under way, then follows it with a watch. */
void manager_pod_fetch(Manager *m);
/* Reads the pod (GET) again, then follows it with a watch. */
void manager_pod_refetch(Manager *m);
/* Its uid and GameServerSet label, from a pod object. */
void manager_pod_learned(Manager *m, json_object *pod);
/* A pod object from the API server (a GET, a PATCH's answer, a watch event) or the local store:
 * kept when newer than the one known; our conditions are checked against it. */
void podwatch_seen(Manager *m, json_object *pod);
void podwatch_start(Manager *m);
/* A watch's timeoutSeconds before jitter: about 20 minutes, or $OKG_STORAGED_WATCH_TIMEOUT_SEC
 * (for tests). The PodProbeMarkers' watches use it too. */
uint64_t podwatch_timeout_sec(void);
void podwatch_done(Manager *m);
/* Whether the pod's status write may go out now: a re-assert waits for its turn (and arms a
 * timer for it); a write of the plugin goes at once. */
bool podwatch_may_send(Manager *m);
/* A plugin wrote conditions: the write carries any re-assert along. */
void podwatch_written(Manager *m);
/* The pod as JSON, or NULL when not known yet (borrowed), and its resourceVersion ("" when
 * not known). */
json_object *manager_pod(Manager *m);
const char *manager_pod_resource_version(Manager *m);

/* storaged-ppmwatch.c: the PodProbeMarkers the pod names (kruise.io/podprobemarker-list),
 * followed from the first GetPodProbeMarkers on. Freed after the Kubernetes client. */
PpmWatch *ppmwatch_free(PpmWatch *w);
/* Answers Storage1.GetPodProbeMarkers. */
int ppmwatch_reply(Manager *m, sd_bus_message *call);
/* Storage1.PodProbeMarkersVersion: changes whenever what GetPodProbeMarkers says does. */
uint64_t ppmwatch_version(Manager *m);

/* storaged-pruner.c: a round every prune_interval_usec() with the Kubernetes backend. */
void pruner_start(Manager *m);
void pruner_done(Manager *m);

/* storaged-bus.c */
int storaged_bus_setup(sd_bus *bus, void *userdata);
void storaged_bus_acknowledged(Manager *m, ObjectKind kind, uint64_t seq);
void storaged_bus_write_failed(Manager *m, ObjectKind kind, uint64_t seq, const char *message);
void storaged_bus_changed(Manager *m);
