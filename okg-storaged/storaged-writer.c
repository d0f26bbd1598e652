/* Writing the objects (the pod, its GameServer, its status, the result ConfigMap): one request
 * in flight per object, a write only when something differs from what the API server
 * acknowledged, capped back-off with jitter on transient errors, refusals tried again a few
 * times and then reported, and read-backs (a GET) that check the acknowledgements against the
 * object. With the local store the same fields are applied to the file. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "macro.h"
#include "okg-event.h"
#include "okg-util.h"
#include "storaged-manager.h"

/* A write that repeats an acknowledged value makes okg-storaged read the object back, at most
 * this often per object: the object may have been recreated or changed by someone else. */
#define VERIFY_INTERVAL_USEC (30 * USEC_PER_SEC)

static void object_succeeded(ObjectSlot *s, uint64_t seq) {
        Manager *m = s->manager;
        json_object *entry = persist_ack_entry(m, &s->object, object_inflight_fields(&s->object));
        int r;

        /* Not synced: losing an acknowledgement in a crash only costs one repeated write. */
        r = journal_append(m->journal, entry, false);
        json_object_put(entry);
        if (r < 0)
                log_warning_errno(r, "Cannot journal an acknowledgement: %m");
        object_patch_succeeded(&s->object);
        s->attempts = 0;
        s->refusals = 0;
        s->creating = false;
        m->acked_writes++;
        log_debug("%s acknowledged up to write %llu.", object_kind_to_string(s->object.kind),
                  (unsigned long long) seq);
        storaged_bus_acknowledged(m, s->object.kind, seq);
        storaged_bus_changed(m);
        persist_maybe_compact(m);
}

static int on_object_retry(sd_event_source *src, uint64_t usec, void *userdata) {
        manager_object_dispatch(userdata);
        return 0;
}

static void object_retry_later(ObjectSlot *s, uint64_t retry_after) {
        Manager *m = s->manager;
        uint64_t delay;

        s->attempts++;
        m->retries++;
        delay = manager_backoff(m, s->attempts, retry_after);
        log_debug("Retrying the %s write in %llu ms.", object_kind_to_string(s->object.kind),
                  (unsigned long long) (delay / USEC_PER_MSEC));
        if (okg_timer_arm(m->event, &s->retry_timer, delay, 0, on_object_retry, s, NULL) < 0)
                log_error("Cannot arm a retry timer; the write waits for the next one.");
}

/* An answer holding the object (a PATCH's or a GET's): what it shows is checked against the
 * acknowledgements, which are dropped where the object was recreated or changed by someone
 * else, so those fields are written again. */
static void object_learned(ObjectSlot *s, const KubeResponse *r) {
        Manager *m = s->manager;
        ObjectKind kind = s->object.kind;
        json_object *obj = r->body_len > 0 ? json_tokener_parse(r->body) : NULL;
        _cleanup_(freep) char *old_uid = NULL;
        size_t dropped;

        if (!obj)
                return;
        if (kind == OBJECT_POD || kind == OBJECT_POD_STATUS) {
                /* The pod as it is now; its conditions are checked there, re-asserts bounded. */
                podwatch_seen(m, obj);
                if (kind == OBJECT_POD_STATUS) {
                        json_object_put(obj);
                        s->verified_usec = okg_now_usec();
                        return;
                }
        }
        if (s->object.uid)
                old_uid = strdup(s->object.uid);
        dropped = object_check(&s->object, obj);
        json_object_put(obj);
        s->verified_usec = okg_now_usec();
        if (old_uid && !streq_ptr(old_uid, s->object.uid))
                log_warning("The %s %s/%s was recreated (uid %s, was %s); writing its fields again.",
                            object_kind_to_string(kind), manager_object_ns(m, kind),
                            manager_object_name(m, kind), s->object.uid, old_uid);
        else if (dropped > 0)
                log_warning("%zu field(s) of the %s %s/%s no longer hold what was acknowledged "
                            "(someone else changed them); writing them again.", dropped,
                            object_kind_to_string(kind), manager_object_ns(m, kind),
                            manager_object_name(m, kind));
        if (dropped > 0)
                storaged_bus_changed(m);
}

/* ---- read-backs ---- */

static void verify_send(ObjectSlot *s);

static int on_verify_timer(sd_event_source *src, uint64_t usec, void *userdata) {
        verify_send(userdata);
        return 0;
}

static void on_verify_answer(KubeClient *k, const KubeResponse *r, void *userdata) {
        ObjectSlot *s = userdata;
        Manager *m = s->manager;
        KubeOutcome outcome = kube_classify(r->curl, r->status);

        s->verify_inflight = false;
        if (outcome == KUBE_OK) {
                s->verify_attempts = 0;
                object_learned(s, r);
                manager_object_dispatch(s);
                return;
        }
        if (outcome == KUBE_NOT_FOUND) {
                /* Gone: what it acknowledged is gone with it; the writes wait for it (or, for the
                 * result ConfigMap, create it). */
                s->verify_attempts = 0;
                s->verified_usec = okg_now_usec();
                if (object_forget_acked(&s->object) > 0) {
                        log_warning("The %s %s/%s does not exist any more; its fields are written "
                                    "again when it does.", object_kind_to_string(s->object.kind),
                                    manager_object_ns(m, s->object.kind),
                                    manager_object_name(m, s->object.kind));
                        storaged_bus_changed(m);
                }
                manager_object_dispatch(s);
                return;
        }
        log_debug("Cannot read the %s back yet: %s", object_kind_to_string(s->object.kind),
                  strempty(r->message));
        s->verify_wanted = true;
        s->verify_attempts++;
        (void) okg_timer_arm(m->event, &s->verify_timer,
                             manager_backoff(m, s->verify_attempts, r->retry_after_usec), 0,
                             on_verify_timer, s, NULL);
}

static void verify_send(ObjectSlot *s) {
        Manager *m = s->manager;
        _cleanup_(freep) char *path = NULL;

        if (!s->verify_wanted || s->verify_inflight || !m->kube)
                return;
        /* The pod's status is read with the pod. */
        if (manager_object_path(m, s->object.kind == OBJECT_POD_STATUS ? OBJECT_POD : s->object.kind,
                                false, &path) < 0)
                return;
        if (kube_request(m->kube, "GET", path, NULL, NULL, on_verify_answer, s) < 0) {
                (void) okg_timer_arm(m->event, &s->verify_timer, MANAGER_RETRY_MAX_USEC, 0,
                                     on_verify_timer, s, NULL);
                return;
        }
        s->verify_wanted = false;
        s->verify_inflight = true;
}

/* A read-back of the object, now or when VERIFY_INTERVAL has passed since the last answer that
 * showed it: repeated writes of the same value cost at most one GET per interval. */
void writer_want_verify(ObjectSlot *s) {
        Manager *m = s->manager;
        uint64_t now = okg_now_usec(), due = s->verified_usec + VERIFY_INTERVAL_USEC;

        s->verify_wanted = true;
        if (s->verify_inflight || okg_timer_armed(s->verify_timer))
                return;
        if (s->verified_usec == 0 || now >= due)
                verify_send(s);
        else
                (void) okg_timer_arm(m->event, &s->verify_timer, due - now, 0, on_verify_timer,
                                     s, NULL);
}

/* ---- answers to writes ---- */

static void object_refused(ObjectSlot *s, const KubeResponse *r) {
        Manager *m = s->manager;
        ObjectKind kind = s->object.kind;
        bool give_up = s->refusals + 1 >= MANAGER_REFUSALS_BEFORE_GIVING_UP;
        _cleanup_(freep) char *what = NULL;
        Field *f = NULL;
        size_t n;

        n = object_patch_refused(&s->object, give_up, &f);
        if (n > 1) {
                /* One refused field must not hold the others hostage: send them apart. */
                log_warning("The API server refused a write of %zu fields of the %s (HTTP %ld): %s; "
                            "sending them one at a time to find the refused one.",
                            n, object_kind_to_string(kind), r->status, strempty(r->message));
                manager_set_last_error(m, r->message);
                manager_object_dispatch(s);
                return;
        }
        if (f)
                what = field_describe(f);
        if (!give_up) {
                s->refusals++;
                manager_set_last_error(m, r->message);
                log_warning("The API server refused the %s write%s%s (HTTP %ld): %s; trying again "
                            "(%u of %u) in case it is still starting.",
                            object_kind_to_string(kind), what ? " of " : "", strempty(what), r->status,
                            strempty(r->message), s->refusals, MANAGER_REFUSALS_BEFORE_GIVING_UP - 1);
                object_retry_later(s, r->retry_after_usec);
                return;
        }
        _cleanup_(freep) char *message = NULL;
        if (asprintf(&message, "%s%s%s", strempty(what), what ? ": " : "", strempty(r->message)) < 0)
                message = NULL;
        s->refusals = 0;
        m->failures++;
        manager_set_last_error(m, message ?: r->message);
        log_error("The API server refused the %s write (HTTP %ld): %s; not retrying it until "
                  "it is written again.", object_kind_to_string(kind), r->status,
                  message ?: strempty(r->message));
        storaged_bus_write_failed(m, kind, f ? f->desired_seq : s->inflight_seq, message ?: r->message);
        manager_check_drained(m);
        /* The other fields of the object go on. */
        manager_object_dispatch(s);
}

static void on_object_answer(KubeClient *k, const KubeResponse *r, void *userdata) {
        ObjectSlot *s = userdata;
        Manager *m = s->manager;
        ObjectKind kind = s->object.kind;
        KubeOutcome outcome = kube_classify(r->curl, r->status);

        if (outcome == KUBE_OK) {
                object_learned(s, r);
                object_succeeded(s, s->inflight_seq);
                manager_check_drained(m);
                manager_object_dispatch(s);
                return;
        }
        if (outcome == KUBE_FATAL && !(kind == OBJECT_RECORDS && s->creating && r->status == 409)) {
                object_refused(s, r);
                return;
        }
        object_patch_failed(&s->object);

        if (kind == OBJECT_RECORDS && !s->creating && outcome == KUBE_NOT_FOUND) {
                log_info("ConfigMap %s/%s does not exist; creating it.", m->records_namespace,
                         m->records_name);
                s->creating = true;
                manager_object_dispatch(s);
                return;
        }
        if (kind == OBJECT_RECORDS && s->creating && r->status == 409) {
                /* Another pod created it first: patch our key into it. */
                s->creating = false;
                manager_object_dispatch(s);
                return;
        }
        manager_set_last_error(m, r->message);
        log_warning("The %s write did not go through (%s); will retry.", object_kind_to_string(kind),
                    strempty(r->message));
        object_retry_later(s, r->retry_after_usec);
}

static void local_apply(ObjectSlot *s) {
        Manager *m = s->manager;
        json_object *patch = NULL;
        uint64_t seq;
        int r;

        r = object_begin_patch(&s->object, &patch, &seq);
        if (r < 0)
                return;
        r = local_store_patch(m->local, s->object.kind, manager_object_ns(m, s->object.kind),
                              manager_object_name(m, s->object.kind), patch);
        json_object_put(patch);
        if (r < 0) {
                object_patch_failed(&s->object);
                log_error_errno(r, "Cannot write the local store %s: %m", local_store_path(m->local));
                manager_set_last_error(m, "cannot write the local store");
                object_retry_later(s, 0);
                return;
        }
        object_succeeded(s, seq);
}

void manager_object_dispatch(ObjectSlot *s) {
        Manager *m = s->manager;
        _cleanup_(freep) char *path = NULL;
        json_object *patch = NULL, *body = NULL;
        const char *text;
        uint64_t seq;
        int r;

        if (s->object.inflight || okg_timer_armed(s->retry_timer) ||
            !object_needs_write(&s->object))
                return;
        if (s->object.kind == OBJECT_POD_STATUS && !podwatch_may_send(m))
                return;
        if (!m->kube) {
                local_apply(s);
                manager_check_drained(m);
                return;
        }
        r = object_begin_patch(&s->object, &patch, &seq);
        if (r < 0)
                return;
        s->inflight_seq = seq;
        r = manager_object_path(m, s->object.kind, s->creating, &path);
        if (r >= 0 && s->creating)
                body = records_configmap_new(m->records_name, m->records_namespace, patch);
        text = json_object_to_json_string_ext(body ?: patch, JSON_C_TO_STRING_PLAIN);
        if (r >= 0)
                r = kube_request(m->kube, s->creating ? "POST" : "PATCH", path,
                                 s->creating ? "application/json"
                                 : s->object.kind == OBJECT_POD_STATUS
                                         /* conditions merge by type: other writers' stay */
                                         ? "application/strategic-merge-patch+json"
                                         : "application/merge-patch+json",
                                 text, on_object_answer, s);
        json_object_put(patch);
        json_object_put(body);
        if (r < 0) {
                object_patch_failed(&s->object);
                log_warning_errno(r, "Cannot send the %s write: %m", object_kind_to_string(s->object.kind));
                object_retry_later(s, 0);
                return;
        }
        storaged_bus_changed(m);
}

void manager_records_freed(Manager *m) {
        ObjectSlot *s = &m->objects[OBJECT_RECORDS];

        if (object_clear_refused(&s->object) == 0)
                return;
        log_info("Trying the refused record write again now that records were removed.");
        manager_object_dispatch(s);
}
