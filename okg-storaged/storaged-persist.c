/* okg-storaged's journal as the daemon uses it: accepting a write or an event (journaled and
 * fsync'ed before the bus call returns), replaying the journal at start, and compacting it into
 * a snapshot of the current state. The entries themselves are storaged-entries.c. */
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "log.h"
#include "macro.h"
#include "okg-util.h"
#include "storaged-manager.h"

/* Acknowledgements of another object (a state folder that belonged to another pod, or a
 * changed result ConfigMap) are not ours; a uid other than the one known drops the earlier
 * ones (the object was recreated). */
static bool replay_ack_identity(Manager *m, Object *o, json_object *entry) {
        json_object *ns, *name, *uid;

        if (json_object_object_get_ex(entry, "namespace", &ns) &&
            !streq_ptr(json_object_get_string(ns), manager_object_ns(m, o->kind)))
                return false;
        if (json_object_object_get_ex(entry, "name", &name) &&
            !streq_ptr(json_object_get_string(name), manager_object_name(m, o->kind)))
                return false;
        if (json_object_object_get_ex(entry, "uid", &uid)) {
                const char *u = json_object_get_string(uid);
                if (o->uid && !streq(o->uid, u))
                        (void) object_forget_acked(o);
                (void) free_and_strdup(&o->uid, u);
        }
        return true;
}

int persist_replay_entry(json_object *entry, void *userdata) {
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
                return events_enqueue(m, seq, v);
        if (json_object_object_get_ex(entry, "eventDone", &v)) {
                uint64_t done = (uint64_t) json_object_get_int64(v);
                /* Events are sent in order, so the done one is the oldest still queued. */
                if (m->events_head && m->events_head->seq == done)
                        events_drop_head(m);
                return 0;
        }
        if (!json_object_object_get_ex(entry, "object", &obj))
                return 0;
        kind = object_kind_from_string(json_object_get_string(obj));
        if (kind < 0)
                return 0;
        if (json_object_object_get_ex(entry, "set", &list)) {
                int r = entry_apply_fields(&m->objects[kind].object, list, false, seq);
                return r < 0 ? r : 0;
        }
        if (json_object_object_get_ex(entry, "ack", &list)) {
                if (!replay_ack_identity(m, &m->objects[kind].object, entry)) {
                        log_info("Ignoring acknowledgements in the journal made for another %s "
                                 "than %s/%s.", object_kind_to_string(kind), manager_object_ns(m, kind),
                                 manager_object_name(m, kind));
                        return 0;
                }
                return entry_apply_fields(&m->objects[kind].object, list, true, 0);
        }
        return 0;
}

json_object *persist_ack_entry(Manager *m, const Object *o, json_object *fields) {
        return entry_ack(o->kind, manager_object_ns(m, o->kind), manager_object_name(m, o->kind),
                         o->uid, fields);
}

/* Rewrites the journal as the current state: what is wanted, what is acknowledged, and the
 * events not sent yet. */
int persist_compact(Manager *m) {
        json_object **entries = NULL;
        size_t n = 0, cap = 8;
        int r = 0;

        entries = calloc(cap, sizeof(json_object *));
        if (!entries)
                return -ENOMEM;
#define PUSH(e)                                                                         \
        do {                                                                            \
                json_object *_e = (e);                                                  \
                if (n == cap) {                                                         \
                        json_object **t = realloc(entries, 2 * cap * sizeof(*entries)); /* NOLINT(bugprone-sizeof-expression) */ \
                        if (!t) {                                                       \
                                json_object_put(_e);                                    \
                                r = -ENOMEM;                                            \
                                goto finish;                                            \
                        }                                                               \
                        entries = t;                                                    \
                        cap *= 2;                                                       \
                }                                                                       \
                entries[n++] = _e;                                                      \
        } while (0)

        {
                json_object *e = json_object_new_object();
                json_object_object_add(e, "nextSeq", json_object_new_int64((int64_t) m->next_seq));
                PUSH(e);
        }
        for (size_t k = 0; k < _OBJECT_KIND_MAX; k++) {
                Object *o = &m->objects[k].object;
                json_object *acks = json_object_new_array();

                for (size_t i = 0; i < o->n_fields; i++)
                        if (o->fields[i].acked)
                                json_object_array_add(acks, entry_field(o->fields[i].kind, o->fields[i].key,
                                                                        o->fields[i].acked));
                if (json_object_array_length(acks) > 0)
                        PUSH(persist_ack_entry(m, o, acks));
                else
                        json_object_put(acks);
                /* One entry per write, as it was accepted (its fields that no later write
                 * replaced): a write of labels and annotations stays one line, applied whole or
                 * not at all, whatever happens to the file. */
                for (size_t i = 0; i < o->n_fields; i++) {
                        Field *f = &o->fields[i];
                        bool first = true;
                        json_object *l;

                        if (!f->desired)
                                continue;
                        for (size_t j = 0; j < i && first; j++)
                                if (o->fields[j].desired && o->fields[j].desired_seq == f->desired_seq)
                                        first = false;
                        if (!first)
                                continue; /* in the entry of an earlier field */
                        l = json_object_new_array();
                        for (size_t j = i; j < o->n_fields; j++)
                                if (o->fields[j].desired && o->fields[j].desired_seq == f->desired_seq)
                                        json_object_array_add(l, entry_field(o->fields[j].kind, o->fields[j].key,
                                                                             o->fields[j].desired));
                        PUSH(entry_set(k, f->desired_seq, l));
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
void persist_maybe_compact(Manager *m) {
        int r;
        if (!journal_wants_compaction(m->journal))
                return;
        r = persist_compact(m);
        if (r < 0)
                log_warning_errno(r, "Cannot compact the journal (it keeps growing): %m");
}

/* ---- accepting writes ---- */

int manager_write(Manager *m, ObjectKind kind, json_object *fields, uint64_t *ret_seq) {
        json_object *entry;
        uint64_t seq = m->next_seq;
        int r;

        entry = entry_set(kind, seq, json_object_get(fields));
        r = journal_append(m->journal, entry, true);
        json_object_put(entry);
        if (r < 0)
                return log_error_errno(r, "Cannot journal a write (refusing it): %m");
        m->next_seq++;
        r = entry_apply_fields(&m->objects[kind].object, fields, false, seq);
        if (r < 0)
                return r;
        persist_maybe_compact(m);
        if (kind == OBJECT_POD_STATUS)
                podwatch_written(m);
        if (r > 0 && m->kube && !(kind == OBJECT_POD_STATUS && m->watch_running))
                /* Handed on again: the object may no longer hold what it acknowledged (the pod
                 * watch shows that for its status). */
                writer_want_verify(&m->objects[kind]);
        *ret_seq = seq;
        manager_dispatch(m);
        storaged_bus_changed(m);
        return 0;
}

int manager_post_event(Manager *m, const char *type, const char *reason, const char *message,
                       uint64_t *ret_seq) {
        json_object *entry, *event;
        uint64_t seq = m->next_seq;
        struct timespec ts;
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
                (void) clock_gettime(CLOCK_REALTIME, &ts);
                _cleanup_(freep) char *name = event_object_name(
                        m->pod, (uint64_t) ts.tv_sec * 1000000000ULL + (uint64_t) ts.tv_nsec, seq);
                if (name)
                        json_object_object_add(event, "name", json_object_new_string(name));
        }
        entry = json_object_new_object();
        json_object_object_add(entry, "seq", json_object_new_int64((int64_t) seq));
        json_object_object_add(entry, "event", json_object_get(event));
        r = journal_append(m->journal, entry, true);
        json_object_put(entry);
        if (r >= 0)
                r = events_enqueue(m, seq, event);
        json_object_put(event);
        if (r < 0)
                return log_error_errno(r, "Cannot journal an event (refusing it): %m");
        m->next_seq++;
        *ret_seq = seq;
        persist_maybe_compact(m);
        manager_dispatch(m);
        storaged_bus_changed(m);
        return 0;
}
