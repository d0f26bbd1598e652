/* okg-storaged's manager: journal replay, the write discipline per object (one request in
 * flight, a write only when something differs from what the API server acknowledged, capped
 * back-off with jitter on transient errors), events, record reads, and draining on SIGTERM. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"
#include "okg-bus-api.h"
#include "okg-util.h"
#include "okg-daemon.h"
#include "okg-event.h"
#include "storaged-manager.h"

#define SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"
#define RETRY_FIRST_USEC (200 * USEC_PER_MSEC)
#define RETRY_MAX_USEC (30 * USEC_PER_SEC)
#define OWNER_GSS_LABEL "game.kruise.io/owner-gss"
/* A refusal (403, 422, ...) is tried again this many times before it is reported and left
 * alone: right after an API server restart its authorizer denies until its caches are
 * filled, and a write refused for that must not be lost. */
#define REFUSALS_BEFORE_GIVING_UP 6
/* A write that repeats an acknowledged value makes okg-storaged read the object back, at most
 * this often per object: the object may have been recreated or changed by someone else. */
#define VERIFY_INTERVAL_USEC (30 * USEC_PER_SEC)

static void manager_dispatch(Manager *m);
static void object_dispatch(ObjectSlot *s);
static void events_dispatch(Manager *m);
static void check_drained(Manager *m);
static void object_want_verify(ObjectSlot *s);

const char *manager_backend(const Manager *m) {
        return m->kube ? "kubernetes" : "local";
}

size_t manager_pending(const Manager *m) {
        size_t n = 0;
        /* Refused fields count too: they are not on the API server. */
        for (size_t i = 0; i < _OBJECT_KIND_MAX; i++)
                n += object_pending(&m->objects[i].object) + object_pending_refused(&m->objects[i].object);
        return n + LIST_LENGTH(events, m->events_head);
}

static void set_last_error(Manager *m, const char *message) {
        if (streq_ptr(m->last_error, message))
                return;
        (void) free_and_strdup(&m->last_error, message);
        storaged_bus_changed(m);
}

void manager_set_last_error(Manager *m, const char *message) {
        set_last_error(m, message);
}

/* ---- paths of the objects ---- */

static int object_path(Manager *m, ObjectKind kind, bool collection, char **ret) {
        int r;
        switch (kind) {
        case OBJECT_POD:
                r = asprintf(ret, "/api/v1/namespaces/%s/pods/%s", m->namespace, m->pod);
                break;
        case OBJECT_GAMESERVER:
                r = asprintf(ret, "/apis/game.kruise.io/v1alpha1/namespaces/%s/gameservers/%s",
                             m->namespace, m->pod);
                break;
        case OBJECT_POD_STATUS:
                /* Written through the status subresource (RBAC: patch on pods/status). */
                r = asprintf(ret, "/api/v1/namespaces/%s/pods/%s/status", m->namespace, m->pod);
                break;
        case OBJECT_RECORDS:
        default:
                r = collection ? asprintf(ret, "/api/v1/namespaces/%s/configmaps", m->records_namespace)
                               : asprintf(ret, "/api/v1/namespaces/%s/configmaps/%s",
                                          m->records_namespace, m->records_name);
                break;
        }
        return r < 0 ? -ENOMEM : 0;
}

static const char *object_ns(Manager *m, ObjectKind kind) {
        return kind == OBJECT_RECORDS ? m->records_namespace : m->namespace;
}

static const char *object_name(Manager *m, ObjectKind kind) {
        return kind == OBJECT_RECORDS ? m->records_name : m->pod;
}

/* ---- back-off ---- */

/* +-20 %: many sidecars that lost the API server together must not return in step. */
uint64_t manager_jitter(Manager *m, uint64_t d) {
        return d * 4 / 5 + (uint64_t) rand_r(&m->rand_state) % (d * 2 / 5 + 1);
}

static uint64_t jittered_backoff(Manager *m, unsigned attempt, uint64_t retry_after) {
        uint64_t d = manager_jitter(m, okg_backoff_usec(attempt, RETRY_FIRST_USEC, RETRY_MAX_USEC));
        return d > retry_after ? d : retry_after;
}

uint64_t manager_backoff(Manager *m, unsigned attempt, uint64_t retry_after) {
        return jittered_backoff(m, attempt, retry_after);
}

/* ---- journal ---- */

static json_object *field_entry(FieldKind kind, const char *key, const char *value) {
        json_object *e = json_object_new_object();
        json_object_object_add(e, "kind", json_object_new_string(field_kind_to_string(kind)));
        json_object_object_add(e, "key", json_object_new_string(key));
        json_object_object_add(e, "value", json_object_new_string(value));
        return e;
}

/* Applies a "set" or "ack" list to an object. Returns how many set values repeat what the
 * API server acknowledged. */
static int apply_fields(Object *o, json_object *list, bool acked, uint64_t seq) {
        size_t n = json_object_array_length(list);
        int repeats = 0;

        for (size_t i = 0; i < n; i++) {
                json_object *e = json_object_array_get_idx(list, i), *k, *key, *v;
                FieldKind kind;
                int r;

                if (!json_object_object_get_ex(e, "kind", &k) || !json_object_object_get_ex(e, "key", &key) ||
                    !json_object_object_get_ex(e, "value", &v))
                        return -EBADMSG;
                kind = field_kind_from_string(json_object_get_string(k));
                if (kind < 0)
                        return -EBADMSG;
                r = acked ? object_set_acked(o, kind, json_object_get_string(key), json_object_get_string(v))
                          : object_set_desired(o, kind, json_object_get_string(key),
                                               json_object_get_string(v), seq);
                if (r < 0)
                        return r;
                repeats += r;
        }
        return repeats;
}

static int event_enqueue(Manager *m, uint64_t seq, json_object *event) {
        PendingEvent *e = calloc(1, sizeof *e);
        if (!e)
                return -ENOMEM;
        e->seq = seq;
        e->event = json_object_get(event);
        LIST_QUEUE_APPEND(events, m->events_head, m->events_tail, e);
        return 0;
}

static void event_drop_head(Manager *m) {
        PendingEvent *e = LIST_QUEUE_POP(events, m->events_head, m->events_tail);
        if (!e)
                return;
        json_object_put(e->event);
        free(e);
}

/* An acknowledgement line names the object it was made against. */
static json_object *ack_entry(Manager *m, const Object *o, json_object *fields) {
        json_object *e = json_object_new_object();

        json_object_object_add(e, "object", json_object_new_string(object_kind_to_string(o->kind)));
        json_object_object_add(e, "namespace", json_object_new_string(object_ns(m, o->kind)));
        json_object_object_add(e, "name", json_object_new_string(object_name(m, o->kind)));
        if (o->uid)
                json_object_object_add(e, "uid", json_object_new_string(o->uid));
        json_object_object_add(e, "ack", fields);
        return e;
}

/* Acknowledgements of another object (a state folder that belonged to another pod, or a
 * changed result ConfigMap) are not ours; a uid other than the one known drops the earlier
 * ones (the object was recreated). */
static bool replay_ack_identity(Manager *m, Object *o, json_object *entry) {
        json_object *ns, *name, *uid;

        if (json_object_object_get_ex(entry, "namespace", &ns) &&
            !streq_ptr(json_object_get_string(ns), object_ns(m, o->kind)))
                return false;
        if (json_object_object_get_ex(entry, "name", &name) &&
            !streq_ptr(json_object_get_string(name), object_name(m, o->kind)))
                return false;
        if (json_object_object_get_ex(entry, "uid", &uid)) {
                const char *u = json_object_get_string(uid);
                if (o->uid && !streq(o->uid, u))
                        (void) object_forget_acked(o);
                (void) free_and_strdup(&o->uid, u);
        }
        return true;
}

static int replay_entry(json_object *entry, void *userdata) {
        Manager *m = userdata;
        json_object *v, *obj, *list;
        uint64_t seq = 0;
        ObjectKind kind;

        if (json_object_object_get_ex(entry, "nextSeq", &v)) {
                uint64_t n = (uint64_t) json_object_get_int64(v);
                if (n > m->next_seq)
                        m->next_seq = n;
                return 0;
        }
        if (json_object_object_get_ex(entry, "seq", &v)) {
                seq = (uint64_t) json_object_get_int64(v);
                if (seq >= m->next_seq)
                        m->next_seq = seq + 1;
        }
        if (json_object_object_get_ex(entry, "event", &v))
                return event_enqueue(m, seq, v);
        if (json_object_object_get_ex(entry, "eventDone", &v)) {
                uint64_t done = (uint64_t) json_object_get_int64(v);
                /* Events are sent in order, so the done one is the oldest still queued. */
                if (m->events_head && m->events_head->seq == done)
                        event_drop_head(m);
                return 0;
        }
        if (!json_object_object_get_ex(entry, "object", &obj))
                return 0;
        kind = object_kind_from_string(json_object_get_string(obj));
        if (kind < 0)
                return 0;
        if (json_object_object_get_ex(entry, "set", &list)) {
                int r = apply_fields(&m->objects[kind].object, list, false, seq);
                return r < 0 ? r : 0;
        }
        if (json_object_object_get_ex(entry, "ack", &list)) {
                if (!replay_ack_identity(m, &m->objects[kind].object, entry)) {
                        log_info("Ignoring acknowledgements in the journal made for another %s "
                                 "than %s/%s.", object_kind_to_string(kind), object_ns(m, kind),
                                 object_name(m, kind));
                        return 0;
                }
                return apply_fields(&m->objects[kind].object, list, true, 0);
        }
        return 0;
}

/* Rewrites the journal as the current state: what is wanted, what is acknowledged, and the
 * events not sent yet. */
static int journal_compact(Manager *m) {
        json_object **entries = NULL;
        size_t n = 0, cap = 8;
        int r = 0;

        entries = calloc(cap, sizeof(json_object *));
        if (!entries)
                return -ENOMEM;
#define PUSH(e)                                                                         \
        do {                                                                            \
                if (n == cap) {                                                         \
                        json_object **t = realloc(entries, 2 * cap * sizeof(*entries)); /* NOLINT(bugprone-sizeof-expression) */ \
                        if (!t) {                                                       \
                                r = -ENOMEM;                                            \
                                goto finish;                                            \
                        }                                                               \
                        entries = t;                                                    \
                        cap *= 2;                                                       \
                }                                                                       \
                entries[n++] = (e);                                                     \
        } while (0)

        {
                json_object *e = json_object_new_object();
                json_object_object_add(e, "nextSeq", json_object_new_int64((int64_t) m->next_seq));
                PUSH(e);
        }
        for (size_t k = 0; k < _OBJECT_KIND_MAX; k++) {
                Object *o = &m->objects[k].object;
                for (size_t i = 0; i < o->n_fields; i++) {
                        Field *f = &o->fields[i];
                        if (f->acked) {
                                json_object *l = json_object_new_array();
                                json_object_array_add(l, field_entry(f->kind, f->key, f->acked));
                                PUSH(ack_entry(m, o, l));
                        }
                        if (f->desired) {
                                json_object *e = json_object_new_object(), *l = json_object_new_array();
                                json_object_array_add(l, field_entry(f->kind, f->key, f->desired));
                                json_object_object_add(e, "seq", json_object_new_int64((int64_t) f->desired_seq));
                                json_object_object_add(e, "object", json_object_new_string(object_kind_to_string(k)));
                                json_object_object_add(e, "set", l);
                                PUSH(e);
                        }
                }
        }
        PendingEvent *pe;
        LIST_FOREACH(events, pe, m->events_head) {
                json_object *e = json_object_new_object();
                json_object_object_add(e, "seq", json_object_new_int64((int64_t) pe->seq));
                json_object_object_add(e, "event", json_object_get(pe->event));
                PUSH(e);
        }
#undef PUSH
        r = journal_rewrite(m->journal, entries, n);
finish:
        for (size_t i = 0; i < n; i++)
                json_object_put(entries[i]);
        free(entries);
        return r;
}

/* After writes and acknowledgements alike: the journal's size follows what is pending, not
 * how long the API server has been away. */
static void maybe_compact(Manager *m) {
        int r;
        if (!journal_wants_compaction(m->journal))
                return;
        r = journal_compact(m);
        if (r < 0)
                log_warning_errno(r, "Cannot compact the journal (it keeps growing): %m");
}

/* ---- accepting writes ---- */

int manager_write(Manager *m, ObjectKind kind, json_object *fields, uint64_t *ret_seq) {
        json_object *entry;
        uint64_t seq = m->next_seq;
        int r;

        entry = json_object_new_object();
        json_object_object_add(entry, "seq", json_object_new_int64((int64_t) seq));
        json_object_object_add(entry, "object", json_object_new_string(object_kind_to_string(kind)));
        json_object_object_add(entry, "set", json_object_get(fields));
        r = journal_append(m->journal, entry, true);
        json_object_put(entry);
        if (r < 0)
                return log_error_errno(r, "Cannot journal a write (refusing it): %m");
        m->next_seq++;
        r = apply_fields(&m->objects[kind].object, fields, false, seq);
        if (r < 0)
                return r;
        maybe_compact(m);
        if (kind == OBJECT_POD_STATUS)
                podwatch_written(m);
        if (r > 0 && m->kube && !(kind == OBJECT_POD_STATUS && m->watch_running))
                /* Handed on again: the object may no longer hold what it acknowledged (the pod
                 * watch shows that for its status). */
                object_want_verify(&m->objects[kind]);
        *ret_seq = seq;
        manager_dispatch(m);
        storaged_bus_changed(m);
        return 0;
}

/* <pod>.<realtime ns><seq>, in hex like client-go's recorder's <name>.<ns>; the pod part is
 * cut so the name stays a valid object name. */
static char *event_name(const char *pod, uint64_t seq) {
        struct timespec ts;
        char *name;

        (void) clock_gettime(CLOCK_REALTIME, &ts);
        if (asprintf(&name, "%.*s.%llx%llx", 200, pod,
                     (unsigned long long) ts.tv_sec * 1000000000ULL + (unsigned long long) ts.tv_nsec,
                     (unsigned long long) seq) < 0)
                return NULL;
        return name;
}

int manager_post_event(Manager *m, const char *type, const char *reason, const char *message,
                       uint64_t *ret_seq) {
        json_object *entry, *event;
        uint64_t seq = m->next_seq;
        char when[64];
        time_t now = time(NULL);
        struct tm tm;
        int r;

        if (!m->config->events) {
                /* Events are off: accepted so plugins need not know, and dropped. */
                *ret_seq = m->next_seq++;
                return 0;
        }
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));
        event = json_object_new_object();
        json_object_object_add(event, "type", json_object_new_string(type));
        json_object_object_add(event, "reason", json_object_new_string(reason));
        json_object_object_add(event, "message", json_object_new_string(message));
        json_object_object_add(event, "time", json_object_new_string(when));
        {
                /* A name fixed when the event is accepted (journaled with it): a retry after a
                 * lost answer finds it created (409) instead of making a second Event. */
                _cleanup_(freep) char *name = event_name(m->pod, seq);
                if (name)
                        json_object_object_add(event, "name", json_object_new_string(name));
        }
        entry = json_object_new_object();
        json_object_object_add(entry, "seq", json_object_new_int64((int64_t) seq));
        json_object_object_add(entry, "event", json_object_get(event));
        r = journal_append(m->journal, entry, true);
        json_object_put(entry);
        if (r >= 0)
                r = event_enqueue(m, seq, event);
        json_object_put(event);
        if (r < 0)
                return log_error_errno(r, "Cannot journal an event (refusing it): %m");
        m->next_seq++;
        *ret_seq = seq;
        maybe_compact(m);
        manager_dispatch(m);
        storaged_bus_changed(m);
        return 0;
}

/* ---- writing objects ---- */

static void object_succeeded(ObjectSlot *s, uint64_t seq) {
        Manager *m = s->manager;
        json_object *entry = ack_entry(m, &s->object, object_inflight_fields(&s->object));
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
        maybe_compact(m);
}

static int on_object_retry(sd_event_source *src, uint64_t usec, void *userdata) {
        object_dispatch(userdata);
        return 0;
}

static void object_retry_later(ObjectSlot *s, uint64_t retry_after) {
        Manager *m = s->manager;
        uint64_t delay;

        s->attempts++;
        m->retries++;
        delay = jittered_backoff(m, s->attempts, retry_after);
        log_debug("Retrying the %s write in %llu ms.", object_kind_to_string(s->object.kind),
                  (unsigned long long) (delay / USEC_PER_MSEC));
        if (okg_timer_arm(m->event, &s->retry_timer, delay, 0, on_object_retry, s, NULL) < 0)
                log_error("Cannot arm a retry timer; the write waits for the next one.");
}

static uint64_t now_usec(void) {
        struct timespec ts;
        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000;
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
                        s->verified_usec = now_usec();
                        return;
                }
        }
        if (s->object.uid)
                old_uid = strdup(s->object.uid);
        dropped = object_check(&s->object, obj);
        json_object_put(obj);
        s->verified_usec = now_usec();
        if (old_uid && !streq_ptr(old_uid, s->object.uid))
                log_warning("The %s %s/%s was recreated (uid %s, was %s); writing its fields again.",
                            object_kind_to_string(kind), object_ns(m, kind), object_name(m, kind),
                            s->object.uid, old_uid);
        else if (dropped > 0)
                log_warning("%zu field(s) of the %s %s/%s no longer hold what was acknowledged "
                            "(someone else changed them); writing them again.",
                            dropped, object_kind_to_string(kind), object_ns(m, kind), object_name(m, kind));
        if (dropped > 0)
                storaged_bus_changed(m);
}

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
                object_dispatch(s);
                return;
        }
        if (outcome == KUBE_NOT_FOUND) {
                /* Gone: what it acknowledged is gone with it; the writes wait for it (or, for the
                 * result ConfigMap, create it). */
                s->verify_attempts = 0;
                s->verified_usec = now_usec();
                if (object_forget_acked(&s->object) > 0) {
                        log_warning("The %s %s/%s does not exist any more; its fields are written "
                                    "again when it does.", object_kind_to_string(s->object.kind),
                                    object_ns(m, s->object.kind), object_name(m, s->object.kind));
                        storaged_bus_changed(m);
                }
                object_dispatch(s);
                return;
        }
        log_debug("Cannot read the %s back yet: %s", object_kind_to_string(s->object.kind),
                  strempty(r->message));
        s->verify_wanted = true;
        s->verify_attempts++;
        (void) okg_timer_arm(m->event, &s->verify_timer,
                             jittered_backoff(m, s->verify_attempts, r->retry_after_usec), 0,
                             on_verify_timer, s, NULL);
}

static void verify_send(ObjectSlot *s) {
        Manager *m = s->manager;
        _cleanup_(freep) char *path = NULL;

        if (!s->verify_wanted || s->verify_inflight || !m->kube)
                return;
        /* The pod's status is read with the pod. */
        if (object_path(m, s->object.kind == OBJECT_POD_STATUS ? OBJECT_POD : s->object.kind, false, &path) < 0)
                return;
        if (kube_request(m->kube, "GET", path, NULL, NULL, on_verify_answer, s) < 0) {
                (void) okg_timer_arm(m->event, &s->verify_timer, RETRY_MAX_USEC, 0,
                                     on_verify_timer, s, NULL);
                return;
        }
        s->verify_wanted = false;
        s->verify_inflight = true;
}

/* A read-back of the object, now or when VERIFY_INTERVAL has passed since the last answer that
 * showed it: repeated writes of the same value cost at most one GET per interval. */
static void object_want_verify(ObjectSlot *s) {
        Manager *m = s->manager;
        uint64_t now = now_usec(), due = s->verified_usec + VERIFY_INTERVAL_USEC;

        s->verify_wanted = true;
        if (s->verify_inflight || okg_timer_armed(s->verify_timer))
                return;
        if (s->verified_usec == 0 || now >= due)
                verify_send(s);
        else
                (void) okg_timer_arm(m->event, &s->verify_timer, due - now, 0, on_verify_timer,
                                     s, NULL);
}

static void object_refused(ObjectSlot *s, const KubeResponse *r) {
        Manager *m = s->manager;
        ObjectKind kind = s->object.kind;
        bool give_up = s->refusals + 1 >= REFUSALS_BEFORE_GIVING_UP;
        _cleanup_(freep) char *what = NULL;
        Field *f = NULL;
        size_t n;

        n = object_patch_refused(&s->object, give_up, &f);
        if (n > 1) {
                /* One refused field must not hold the others hostage: send them apart. */
                log_warning("The API server refused a write of %zu fields of the %s (HTTP %ld): %s; "
                            "sending them one at a time to find the refused one.",
                            n, object_kind_to_string(kind), r->status, strempty(r->message));
                set_last_error(m, r->message);
                object_dispatch(s);
                return;
        }
        if (f && asprintf(&what, "%s %s%s%s", field_kind_to_string(f->kind), f->kind == FIELD_OPS_STATE ? "" : "\"",
                          f->kind == FIELD_OPS_STATE ? "" : f->key, f->kind == FIELD_OPS_STATE ? "" : "\"") < 0)
                what = NULL;
        if (!give_up) {
                s->refusals++;
                set_last_error(m, r->message);
                log_warning("The API server refused the %s write%s%s (HTTP %ld): %s; trying again "
                            "(%u of %u) in case it is still starting.",
                            object_kind_to_string(kind), what ? " of " : "", strempty(what), r->status,
                            strempty(r->message), s->refusals, REFUSALS_BEFORE_GIVING_UP - 1);
                object_retry_later(s, r->retry_after_usec);
                return;
        }
        _cleanup_(freep) char *message = NULL;
        if (asprintf(&message, "%s%s%s", strempty(what), what ? ": " : "", strempty(r->message)) < 0)
                message = NULL;
        s->refusals = 0;
        m->failures++;
        set_last_error(m, message ?: r->message);
        log_error("The API server refused the %s write (HTTP %ld): %s; not retrying it until "
                  "it is written again.", object_kind_to_string(kind), r->status,
                  message ?: strempty(r->message));
        storaged_bus_write_failed(m, kind, f ? f->desired_seq : s->inflight_seq, message ?: r->message);
        check_drained(m);
        /* The other fields of the object go on. */
        object_dispatch(s);
}

static void on_object_answer(KubeClient *k, const KubeResponse *r, void *userdata) {
        ObjectSlot *s = userdata;
        Manager *m = s->manager;
        ObjectKind kind = s->object.kind;
        KubeOutcome outcome = kube_classify(r->curl, r->status);

        if (outcome == KUBE_OK) {
                object_learned(s, r);
                object_succeeded(s, s->inflight_seq);
                check_drained(m);
                object_dispatch(s);
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
                object_dispatch(s);
                return;
        }
        if (kind == OBJECT_RECORDS && s->creating && r->status == 409) {
                /* Another pod created it first: patch our key into it. */
                s->creating = false;
                object_dispatch(s);
                return;
        }
        set_last_error(m, r->message);
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
        r = local_store_patch(m->local, s->object.kind, object_ns(m, s->object.kind),
                              object_name(m, s->object.kind), patch);
        json_object_put(patch);
        if (r < 0) {
                object_patch_failed(&s->object);
                log_error_errno(r, "Cannot write the local store %s: %m", local_store_path(m->local));
                set_last_error(m, "cannot write the local store");
                object_retry_later(s, 0);
                return;
        }
        object_succeeded(s, seq);
}

static void object_dispatch(ObjectSlot *s) {
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
                check_drained(m);
                return;
        }
        r = object_begin_patch(&s->object, &patch, &seq);
        if (r < 0)
                return;
        s->inflight_seq = seq;
        r = object_path(m, s->object.kind, s->creating, &path);
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

void manager_object_dispatch(ObjectSlot *s) {
        object_dispatch(s);
}

void manager_records_freed(Manager *m) {
        ObjectSlot *s = &m->objects[OBJECT_RECORDS];

        if (object_clear_refused(&s->object) == 0)
                return;
        log_info("Trying the refused record write again now that records were removed.");
        object_dispatch(s);
}

/* ---- events ---- */

static int on_event_retry(sd_event_source *src, uint64_t usec, void *userdata) {
        events_dispatch(userdata);
        return 0;
}

static void event_done(Manager *m) {
        json_object *entry = json_object_new_object();

        json_object_object_add(entry, "eventDone", json_object_new_int64((int64_t) m->events_head->seq));
        (void) journal_append(m->journal, entry, false);
        json_object_put(entry);
        event_drop_head(m);
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
                   (outcome != KUBE_OK && ++m->event_refusals < REFUSALS_BEFORE_GIVING_UP)) {
                set_last_error(m, r->message);
                m->retries++;
                m->event_attempts++;
                if (okg_timer_arm(m->event, &m->event_timer,
                                  jittered_backoff(m, m->event_attempts, r->retry_after_usec), 0,
                                  on_event_retry, m, NULL) < 0)
                        log_error("Cannot arm the event retry timer.");
                return;
        } else {
                m->event_refusals = 0;
                m->failures++;
                set_last_error(m, r->message);
                log_error("The API server refused an event (HTTP %ld): %s; dropping it.", r->status,
                          strempty(r->message));
                storaged_bus_write_failed(m, _OBJECT_KIND_MAX, seq, r->message);
                event_done(m);
        }
        check_drained(m);
        events_dispatch(m);
}

static json_object *event_body(Manager *m, json_object *ev) {
        json_object *o = json_object_new_object(), *meta = json_object_new_object(),
                    *inv = json_object_new_object(), *src = json_object_new_object(), *name;
        _cleanup_(freep) char *prefix = NULL;

        if (asprintf(&prefix, "%s.", m->pod) < 0)
                prefix = NULL;
        json_object_object_add(o, "apiVersion", json_object_new_string("v1"));
        json_object_object_add(o, "kind", json_object_new_string("Event"));
        if (json_object_object_get_ex(ev, "name", &name))
                json_object_object_add(meta, "name", json_object_get(name));
        else    /* accepted by an okg-storaged that did not name its events */
                json_object_object_add(meta, "generateName", json_object_new_string(prefix ?: "okg-sidecar."));
        json_object_object_add(meta, "namespace", json_object_new_string(m->namespace));
        json_object_object_add(o, "metadata", meta);
        json_object_object_add(inv, "apiVersion", json_object_new_string("v1"));
        json_object_object_add(inv, "kind", json_object_new_string("Pod"));
        json_object_object_add(inv, "name", json_object_new_string(m->pod));
        json_object_object_add(inv, "namespace", json_object_new_string(m->namespace));
        if (m->pod_uid)
                json_object_object_add(inv, "uid", json_object_new_string(m->pod_uid));
        json_object_object_add(o, "involvedObject", inv);
        json_object_object_add(src, "component", json_object_new_string("okg-sidecar"));
        json_object_object_add(o, "source", src);
        json_object_object_add(o, "reportingComponent", json_object_new_string("okg-sidecar"));
        json_object_object_add(o, "reportingInstance", json_object_new_string(m->pod));
        json_object_object_add(o, "count", json_object_new_int(1));
        json_object_object_foreach(ev, key, val) {
                if (streq(key, "time")) {
                        json_object_object_add(o, "firstTimestamp", json_object_get(val));
                        json_object_object_add(o, "lastTimestamp", json_object_get(val));
                } else if (streq(key, "name"))
                        continue;
                else
                        json_object_object_add(o, key, json_object_get(val));
        }
        return o;
}

static void events_dispatch(Manager *m) {
        _cleanup_(freep) char *path = NULL;
        json_object *body;
        int r;

        if (!m->events_head || m->event_inflight || okg_timer_armed(m->event_timer))
                return;
        body = event_body(m, m->events_head->event);
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
                                     jittered_backoff(m, m->event_attempts, 0), 0, on_event_retry,
                                     m, NULL);
                return;
        }
        m->event_inflight = true;
}

static int on_dispatch(sd_event_source *s, void *userdata) {
        Manager *m = userdata;

        for (size_t i = 0; i < _OBJECT_KIND_MAX; i++)
                object_dispatch(&m->objects[i]);
        events_dispatch(m);
        check_drained(m);
        return 0;
}

/* Writes go out from a deferred event: several bus calls handled in one loop iteration end up
 * in one request per object. */
static void manager_dispatch(Manager *m) {
        int r;

        r = okg_defer_arm(m->event, &m->dispatch_source, on_dispatch, m, NULL);
        if (r < 0 && !m->dispatch_source) {
                log_warning_errno(r, "Cannot defer the dispatch, sending now: %m");
                (void) on_dispatch(NULL, m);
        }
}

/* ---- the pod: its GameServerSet and uid ---- */

static void pod_learned(Manager *m, json_object *pod) {
        json_object *meta, *labels, *v;

        if (json_object_object_get_ex(pod, "metadata", &meta)) {
                if (json_object_object_get_ex(meta, "uid", &v))
                        (void) free_and_strdup(&m->pod_uid, json_object_get_string(v));
                if (json_object_object_get_ex(meta, "labels", &labels) &&
                    json_object_object_get_ex(labels, OWNER_GSS_LABEL, &v)) {
                        if (!streq_ptr(m->gss, json_object_get_string(v)))
                                log_info("Pod %s belongs to GameServerSet %s.", m->pod,
                                         json_object_get_string(v));
                        (void) free_and_strdup(&m->gss, json_object_get_string(v));
                        m->pod_has_gss_label = true;
                }
        }
        m->pod_known = true;
        storaged_bus_changed(m);
}

static void pod_fetch(Manager *m);

static int on_pod_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        pod_fetch(userdata);
        return 0;
}

static void on_pod_answer(KubeClient *k, const KubeResponse *r, void *userdata) {
        Manager *m = userdata;
        json_object *pod;

        m->pod_fetch_inflight = false;
        if (kube_classify(r->curl, r->status) == KUBE_OK) {
                pod = json_tokener_parse(r->body);
                if (pod) {
                        m->pod_attempts = 0;
                        pod_learned(m, pod);
                        podwatch_seen(m, pod);
                        json_object_put(pod);
                        podwatch_start(m);
                        return;
                }
        }
        log_warning("Cannot read pod %s/%s yet: %s", m->namespace, m->pod, strempty(r->message));
        set_last_error(m, r->message);
        m->pod_attempts++;
        (void) okg_timer_arm(m->event, &m->pod_timer,
                             jittered_backoff(m, m->pod_attempts, r->retry_after_usec), 0,
                             on_pod_retry, m, NULL);
}

static void pod_fetch(Manager *m) {
        _cleanup_(freep) char *path = NULL;

        if (m->pod_known || m->pod_fetch_inflight || !m->kube)
                return;
        if (object_path(m, OBJECT_POD, false, &path) < 0)
                return;
        if (kube_request(m->kube, "GET", path, NULL, NULL, on_pod_answer, m) >= 0)
                m->pod_fetch_inflight = true;
}

void manager_pod_refetch(Manager *m) {
        /* A pod that came back is a new object: what was known of the old one goes. */
        m->pod_rv = mfree(m->pod_rv);
        m->watch_rv = mfree(m->watch_rv);
        m->pod_known = false;
        pod_fetch(m);
}

/* ---- reads ---- */

typedef struct RecordRead {
        Manager *manager;
        sd_bus_message *call;
        char *field;
} RecordRead;

static void record_read_free(RecordRead *rr) {
        sd_bus_message_unref(rr->call);
        free(rr->field);
        free(rr);
}

/* Our own record as we want it, which is newer than anything the API server may still hold. */
static const char *own_record(Manager *m) {
        Field *f = object_find(&m->objects[OBJECT_RECORDS].object, FIELD_DATA, m->pod);
        return f ? f->desired : NULL;
}

static const char *gss_name(Manager *m) {
        return m->gss;
}

static int reply_from_data(Manager *m, sd_bus_message *call, const char *field, json_object *data) {
        const char *own = own_record(m);
        json_object *d, *v;

        if (!field) {
                if (own)
                        return sd_bus_reply_method_return(call, "ss", own, m->pod);
                if (data && json_object_object_get_ex(data, m->pod, &v) &&
                    json_object_is_type(v, json_type_string))
                        return sd_bus_reply_method_return(call, "ss", json_object_get_string(v), m->pod);
                return sd_bus_reply_method_return(call, "ss", "", "");
        }
        /* The fleet: our own wish counts as ours, over what the server holds for us. */
        d = json_object_new_object();
        if (data && json_object_is_type(data, json_type_object)) {
                json_object_object_foreach(data, k, val)
                        json_object_object_add(d, k, json_object_get(val));
        }
        if (own)
                json_object_object_add(d, m->pod, json_object_new_string(own));

        const char *key = NULL, *record = NULL;
        int r;
        if (records_find_newest(d, gss_name(m), field, &key, &record) > 0)
                r = sd_bus_reply_method_return(call, "ss", record, key);
        else
                r = sd_bus_reply_method_return(call, "ss", "", "");
        json_object_put(d);
        return r;
}

static void on_record_answer(KubeClient *k, const KubeResponse *r, void *userdata) {
        RecordRead *rr = userdata;
        Manager *m = rr->manager;
        KubeOutcome outcome = kube_classify(r->curl, r->status);
        json_object *cm = NULL, *data = NULL;

        if (outcome == KUBE_OK) {
                cm = json_tokener_parse(r->body);
                if (cm)
                        (void) json_object_object_get_ex(cm, "data", &data);
                (void) reply_from_data(m, rr->call, rr->field, data);
        } else if (outcome == KUBE_NOT_FOUND)
                (void) reply_from_data(m, rr->call, rr->field, NULL);
        else
                (void) sd_bus_reply_method_errorf(rr->call, OKG_STORAGE_ERROR_BUSY,
                                                  "Cannot read the result ConfigMap now: %s",
                                                  strempty(r->message));
        json_object_put(cm);
        record_read_free(rr);
}

int manager_get_record(Manager *m, sd_bus_message *call, const char *fleet_field) {
        _cleanup_(freep) char *path = NULL;
        RecordRead *rr;
        int r;

        if (!fleet_field && own_record(m))
                return reply_from_data(m, call, NULL, NULL);
        if (!m->kube) {
                json_object *cm = local_store_get(m->local, OBJECT_RECORDS, m->records_namespace,
                                                  m->records_name), *data = NULL;
                if (cm)
                        (void) json_object_object_get_ex(cm, "data", &data);
                return reply_from_data(m, call, fleet_field, data);
        }
        rr = calloc(1, sizeof *rr);
        if (!rr)
                return -ENOMEM;
        rr->manager = m;
        rr->call = sd_bus_message_ref(call);
        rr->field = fleet_field ? strdup(fleet_field) : NULL;
        r = object_path(m, OBJECT_RECORDS, false, &path);
        if (r >= 0 && (!fleet_field || rr->field))
                r = kube_request(m->kube, "GET", path, NULL, NULL, on_record_answer, rr);
        else if (r >= 0)
                r = -ENOMEM;
        if (r < 0) {
                record_read_free(rr);
                return r;
        }
        return 1;
}

/* ---- draining ---- */

static void check_drained(Manager *m) {
        if (!m->draining)
                return;
        for (size_t i = 0; i < _OBJECT_KIND_MAX; i++) {
                if (object_needs_write(&m->objects[i].object))
                        return;
        }
        if (m->events_head)
                return;
        log_info("Nothing left to send; exiting.");
        (void) sd_event_exit(m->event, 0);
}

static int on_drain_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;

        log_warning("%zu write(s) not acknowledged after %u s; they stay in the journal and are "
                    "applied at the next start.",
                    manager_pending(m), m->config->drain_timeout_sec);
        return sd_event_exit(m->event, 0);
}

static int on_stop(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Manager *m = userdata;

        if (m->draining) {
                log_info("Second stop signal; exiting now.");
                return sd_event_exit(m->event, 0);
        }
        log_info("Received SIG%s; draining pending writes (at most %u s).",
                 sigabbrev_np((int) si->ssi_signo), m->config->drain_timeout_sec);
        (void) sd_notify(false, "STOPPING=1");
        m->draining = true;
        storaged_bus_changed(m);
        (void) okg_timer_arm(m->event, &m->drain_timer,
                             (uint64_t) m->config->drain_timeout_sec * USEC_PER_SEC, 0,
                             on_drain_timeout, m, NULL);
        check_drained(m);
        return 0;
}

/* ---- lifetime ---- */

static int choose_backend(Manager *m) {
        _cleanup_(freep) char *error = NULL, *path = NULL;
        KubeConfig *kc = NULL;
        StorageBackend want = m->config->storage_backend;
        int r = -ENOENT;

        if (want != STORAGE_BACKEND_LOCAL) {
                r = kube_config_in_cluster(getenv("OKG_SERVICEACCOUNT_DIR") ?: SA_DIR, &kc, &error);
                if (r == -ENOENT) {
                        free(error);
                        error = NULL;
                        r = kube_config_from_kubeconfig(&kc, &error);
                }
                if (r < 0 && r != -ENOENT)
                        return log_error_errno(r, "Kubernetes credentials are not usable: %s",
                                               strempty(error));
                if (r == -ENOENT && want == STORAGE_BACKEND_KUBERNETES)
                        return log_error_errno(r, "storage.backend is kubernetes, but neither the "
                                                  "in-cluster service account nor $KUBECONFIG is there.");
        }
        if (r >= 0) {
                r = kube_client_new(m->event, kc, KUBE_CLIENT_WAIT_FOR_TOKEN, &m->kube);
                if (r < 0) {
                        kube_config_free(kc);
                        return log_error_errno(r, "Cannot set up the Kubernetes client: %m");
                }
                if (!m->namespace)
                        m->namespace = strdup(kc->namespace);
                log_info("Storing in Kubernetes at %s (credentials: %s).", kc->server, kc->source);
                return 0;
        }
        if (asprintf(&path, "%s/local-store.json", m->state_dir) < 0)
                return -ENOMEM;
        r = local_store_open(path, &m->local);
        if (r < 0)
                return log_error_errno(r, "Cannot open the local store %s: %m", path);
        log_info("No cluster: storing in the local store %s.", path);
        return 0;
}

int manager_new(SidecarConfig *config, Manager **ret) {
        _cleanup_(manager_freep) Manager *m = NULL;
        const char *e;
        char host[256];

        m = calloc(1, sizeof *m);
        if (!m) {
                sidecar_config_free(config);
                return -ENOMEM;
        }
        m->config = config;
        m->next_seq = 1;
        m->rand_state = (unsigned) getpid() ^ (unsigned) time(NULL);
        for (size_t i = 0; i < _OBJECT_KIND_MAX; i++) {
                m->objects[i].manager = m;
                m->objects[i].object.kind = (ObjectKind) i;
        }

        e = getenv("OKG_STATE_DIR");
        m->state_dir = strdup(e ?: "/var/lib/okg-sidecar");
        e = getenv("POD_NAME");
        if (isempty(e)) {
                if (gethostname(host, sizeof host) < 0)
                        strcpy(host, "okg-sidecar-0");
                host[sizeof host - 1] = 0;
                e = host;
        }
        m->pod = strdup(e);
        e = getenv("POD_NAMESPACE");
        m->namespace = isempty(e) ? NULL : strdup(e);
        if (!m->state_dir || !m->pod)
                return -ENOMEM;
        *ret = TAKE_PTR(m);
        return 0;
}

int manager_start(Manager *m) {
        int r;

        r = okg_mkdir_p(m->state_dir, 0755);
        if (r < 0)
                return log_error_errno(r, "Cannot create the state directory %s: %m", m->state_dir);
        r = okg_daemon_event_new_full(&m->event, on_stop, m);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the event loop: %m");
        r = choose_backend(m);
        if (r < 0)
                return r;
        if (!m->namespace && !(m->namespace = strdup("default")))
                return -ENOMEM;
        m->records_name = strdup(m->config->result_configmap);
        m->records_namespace = strdup(m->config->result_namespace ?: m->namespace);
        if (!m->records_name || !m->records_namespace)
                return -ENOMEM;
        if (!m->gss)
                m->gss = gss_from_pod_name(m->pod);

        r = journal_open(m->state_dir, replay_entry, m, &m->journal);
        if (r < 0)
                return log_error_errno(r, "Cannot open the journal in %s: %m", m->state_dir);
        const JournalDamage *d = journal_damage(m->journal);
        if (d->lines > 0 || d->unreadable) {
                _cleanup_(freep) char *what = NULL;
                if (asprintf(&what, "journal damaged: %zu entr%s (%" PRIu64 " bytes) could not be read%s; "
                             "the writes they held are lost", d->lines, d->lines == 1 ? "y" : "ies",
                             d->bytes, d->unreadable ? ", and the file could not be read to its end" : "") >= 0) {
                        log_error("The %s; the rest was replayed.", what);
                        set_last_error(m, what);
                }
        }
        r = journal_compact(m);
        if (r < 0)
                log_warning_errno(r, "Cannot compact the journal: %m");
        if (manager_pending(m) > 0)
                log_info("%zu write(s) from before the restart are pending.", manager_pending(m));

        if (m->local) {
                json_object *pod = local_store_get(m->local, OBJECT_POD, m->namespace, m->pod);
                if (pod)
                        pod_learned(m, pod);
        }

        r = okg_bus_new(m->event, NULL, OKG_STORAGE_NAME, storaged_bus_setup, NULL, m, &m->bus);
        if (r < 0)
                return log_error_errno(r, "Failed to join the private bus as io.kruise.game.Storage1: %m");

        log_info("Pod %s/%s, records in ConfigMap %s/%s, backend %s.", m->namespace, m->pod,
                 m->records_namespace, m->records_name, manager_backend(m));
        (void) sd_notify(false, "READY=1\nSTATUS=Storing");
        pod_fetch(m);
        /* What the journal says was acknowledged is read back once: the objects may have been
         * recreated or changed while okg-storaged was not running. */
        for (size_t i = 0; m->kube && i < _OBJECT_KIND_MAX; i++)
                /* The pod's status is checked by the pod read just started. */
                if (i != OBJECT_POD_STATUS && object_has_acked(&m->objects[i].object))
                        object_want_verify(&m->objects[i]);
        manager_dispatch(m);
        pruner_start(m);
        return 0;
}

Manager *manager_free(Manager *m) {
        if (!m)
                return NULL;
        okg_bus_free(m->bus);
        pruner_done(m);
        kube_client_free(m->kube);
        local_store_free(m->local);
        journal_free(m->journal);
        for (size_t i = 0; i < _OBJECT_KIND_MAX; i++) {
                object_done(&m->objects[i].object);
                sd_event_source_disable_unref(m->objects[i].retry_timer);
                sd_event_source_disable_unref(m->objects[i].verify_timer);
        }
        while (m->events_head)
                event_drop_head(m);
        sd_event_source_disable_unref(m->event_timer);
        sd_event_source_disable_unref(m->dispatch_source);
        sd_event_source_disable_unref(m->pod_timer);
        podwatch_done(m);
        ppmwatch_free(m->ppmwatch);
        sd_event_source_disable_unref(m->drain_timer);
        sd_event_unref(m->event);
        sidecar_config_free(m->config);
        free(m->state_dir);
        free(m->pod);
        free(m->namespace);
        free(m->gss);
        free(m->pod_uid);
        free(m->records_namespace);
        free(m->records_name);
        free(m->last_error);
        free(m);
        return NULL;
}
