/* Events on the pod (Storage1.PostEvent): queued in the order accepted, posted one at a time,
 * retried like the object writes; an Event that already exists (409, a try whose answer was
 * lost) counts as posted. The Event's body is storaged-entries.c's. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "log.h"
#include "macro.h"
#include "okg-event.h"
#include "okg-util.h"
#include "storaged-manager.h"

int events_enqueue(Manager *m, uint64_t seq, json_object *event) {
        PendingEvent *e = calloc(1, sizeof *e);
        if (!e)
                return -ENOMEM;
        e->seq = seq;
        e->event = json_object_get(event);
        LIST_QUEUE_APPEND(events, m->events_head, m->events_tail, e);
        return 0;
}

void events_drop_head(Manager *m) {
        PendingEvent *e = LIST_QUEUE_POP(events, m->events_head, m->events_tail);
        if (!e)
                return;
        json_object_put(e->event);
        free(e);
}

static int on_event_retry(sd_event_source *src, uint64_t usec, void *userdata) {
        events_dispatch(userdata);
        return 0;
}

static void event_done(Manager *m) {
        json_object *entry = json_object_new_object();

        json_object_object_add(entry, "eventDone", json_object_new_int64((int64_t) m->events_head->seq));
        (void) journal_append(m->journal, entry, false);
        json_object_put(entry);
        events_drop_head(m);
        m->event_attempts = 0;
        m->event_refusals = 0;
        storaged_bus_changed(m);
}

static void on_event_answer(KubeClient *k, const KubeResponse *r, void *userdata) {
        Manager *m = userdata;
        KubeOutcome outcome = kube_classify(r->curl, r->status);
        uint64_t seq = m->events_head ? m->events_head->seq : 0;

        m->event_inflight = false;
        if (!m->events_head)
                return;
        if (outcome == KUBE_OK || r->status == 409) {
                /* 409 AlreadyExists: an earlier try was created, its answer lost. */
                if (r->status == 409)
                        log_info("Event %llu was created by an earlier try.", (unsigned long long) seq);
                m->acked_writes++;
                storaged_bus_acknowledged(m, _OBJECT_KIND_MAX, seq);
                event_done(m);
        } else if (outcome == KUBE_RETRY ||
                   (outcome != KUBE_OK && ++m->event_refusals < MANAGER_REFUSALS_BEFORE_GIVING_UP)) {
                manager_set_last_error(m, r->message);
                m->retries++;
                m->event_attempts++;
                if (okg_timer_arm(m->event, &m->event_timer,
                                  manager_backoff(m, m->event_attempts, r->retry_after_usec), 0,
                                  on_event_retry, m, NULL) < 0)
                        log_error("Cannot arm the event retry timer.");
                return;
        } else {
                m->event_refusals = 0;
                m->failures++;
                manager_set_last_error(m, r->message);
                log_error("The API server refused an event (HTTP %ld): %s; dropping it.", r->status,
                          strempty(r->message));
                storaged_bus_write_failed(m, _OBJECT_KIND_MAX, seq, r->message);
                event_done(m);
        }
        manager_check_drained(m);
        events_dispatch(m);
}

void events_dispatch(Manager *m) {
        _cleanup_(freep) char *path = NULL;
        json_object *body;
        int r;

        if (!m->events_head || m->event_inflight || okg_timer_armed(m->event_timer))
                return;
        body = event_object_new(m->events_head->event, m->namespace, m->pod, m->pod_uid);
        if (!m->kube) {
                r = local_store_add_event(m->local, body);
                json_object_put(body);
                if (r < 0) {
                        log_error_errno(r, "Cannot write the local store: %m");
                        return;
                }
                m->acked_writes++;
                storaged_bus_acknowledged(m, _OBJECT_KIND_MAX, m->events_head->seq);
                event_done(m);
                events_dispatch(m);
                return;
        }
        if (asprintf(&path, "/api/v1/namespaces/%s/events", m->namespace) < 0) {
                json_object_put(body);
                return;
        }
        r = kube_request(m->kube, "POST", path, "application/json",
                         json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN),
                         on_event_answer, m);
        json_object_put(body);
        if (r < 0) {
                log_warning_errno(r, "Cannot send an event: %m");
                m->event_attempts++;
                (void) okg_timer_arm(m->event, &m->event_timer,
                                     manager_backoff(m, m->event_attempts, 0), 0, on_event_retry,
                                     m, NULL);
                return;
        }
        m->event_inflight = true;
}
