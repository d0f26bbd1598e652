/* Which records of the result ConfigMap belong to pods that are gone (see storaged-prune.h). */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "okg-json.h"
#include "okg-util.h"
#include "storaged-prune.h"
#include "storaged-state.h"

#define PRUNE_INTERVAL_MIN_USEC (1 * USEC_PER_SEC)
#define PRUNE_INTERVAL_MAX_USEC (300 * USEC_PER_SEC)

void prune_state_done(PruneState *s) {
        for (size_t i = 0; i < s->n; i++)
                free(s->v[i].key);
        free(s->v);
        *s = (PruneState) {};
}

static PruneMissing *state_find(PruneState *s, const char *key) {
        for (size_t i = 0; i < s->n; i++)
                if (streq(s->v[i].key, key))
                        return &s->v[i];
        return NULL;
}

void prune_state_forget(PruneState *s, const char *key) {
        PruneMissing *e = state_find(s, key);
        if (!e)
                return;
        free(e->key);
        *e = s->v[--s->n];
}

int prune_pod_names(const char *body, size_t len, json_object **ret_names, const char **ret_why) {
        _cleanup_(json_object_putp) json_object *list = NULL, *names = NULL;
        json_tokener *tok;
        json_object *items, *meta, *v;
        size_t n;

        *ret_why = NULL;
        tok = json_tokener_new();
        if (!tok)
                return -ENOMEM;
        list = json_tokener_parse_ex(tok, body ?: "", (int) len);
        if (json_tokener_get_error(tok) != json_tokener_success) {
                json_object_put(list);
                list = NULL;
        }
        json_tokener_free(tok);
        if (!list || !json_object_is_type(list, json_type_object)) {
                *ret_why = "the answer is not a JSON object";
                return -EBADMSG;
        }
        if (!json_object_object_get_ex(list, "kind", &v) || !streq_ptr(json_object_get_string(v), "PodList")) {
                *ret_why = "the answer is not a PodList";
                return -EBADMSG;
        }
        if (json_object_object_get_ex(list, "metadata", &meta) &&
            json_object_object_get_ex(meta, "continue", &v) && !isempty(json_object_get_string(v))) {
                *ret_why = "the answer is only part of the list (it has a continue token)";
                return -EBADMSG;
        }
        /* An empty list may come without items (omitempty in some encoders): that is a list of
         * no pods; but items of another type is not a list. */
        if (!json_object_object_get_ex(list, "items", &items) || json_object_is_type(items, json_type_null))
                items = NULL;
        else if (!json_object_is_type(items, json_type_array)) {
                *ret_why = "the PodList's items is not an array";
                return -EBADMSG;
        }
        names = json_object_new_object();
        if (!names)
                return -ENOMEM;
        n = items ? json_object_array_length(items) : 0;
        for (size_t i = 0; i < n; i++) {
                json_object *item = json_object_array_get_idx(items, i), *name;
                if (!json_object_object_get_ex(item, "metadata", &meta) ||
                    !json_object_object_get_ex(meta, "name", &name) ||
                    !json_object_is_type(name, json_type_string) || isempty(json_object_get_string(name))) {
                        *ret_why = "a pod of the list has no name";
                        return -EBADMSG;
                }
                json_object_object_add(names, json_object_get_string(name), json_object_new_boolean(1));
        }
        *ret_names = TAKE_PTR(names);
        return 0;
}

bool prune_is_candidate(const PruneScope *scope, const char *key, json_object *value) {
        json_object *rec, *ns;
        bool r;

        if (streq_ptr(key, scope->own) || !json_object_is_type(value, json_type_string))
                return false;
        rec = json_tokener_parse(json_object_get_string(value));
        r = record_belongs(key, rec, scope->gss);
        if (r && json_object_object_get_ex(rec, "namespace", &ns))
                r = json_object_is_type(ns, json_type_string) &&
                    streq_ptr(json_object_get_string(ns), scope->namespace);
        else if (r)
                r = scope->records_here;
        json_object_put(rec);
        return r;
}

bool prune_has_candidates(json_object *data, const PruneScope *scope) {
        if (!data || !json_object_is_type(data, json_type_object))
                return false;
        json_object_object_foreach(data, key, val)
                if (prune_is_candidate(scope, key, val))
                        return true;
        return false;
}

int prune_decide(PruneState *s, json_object *data, json_object *live, const PruneScope *scope,
                 uint64_t now, uint64_t grace, char ***ret_due) {
        _cleanup_(strv_freep) char **due = NULL;
        size_t n_due = 0;

        *ret_due = NULL;
        if (data && !json_object_is_type(data, json_type_object))
                data = NULL;
        /* Forget what is no longer missing: the pod is back, or its record is gone. */
        for (size_t i = 0; i < s->n;) {
                json_object *val;
                const char *key = s->v[i].key;
                if (json_object_object_get_ex(live, key, NULL) || !data ||
                    !json_object_object_get_ex(data, key, &val) || !prune_is_candidate(scope, key, val))
                        prune_state_forget(s, key);
                else
                        i++;
        }
        if (!data)
                return 0;
        json_object_object_foreach(data, key, val) {
                PruneMissing *e;

                if (json_object_object_get_ex(live, key, NULL) || !prune_is_candidate(scope, key, val))
                        continue;
                e = state_find(s, key);
                if (!e) {
                        PruneMissing *t = realloc(s->v, (s->n + 1) * sizeof *t);
                        char *copy = strdup(key);
                        if (!t || !copy) {
                                free(copy);
                                if (t)
                                        s->v = t;
                                return -ENOMEM;
                        }
                        s->v = t;
                        e = &s->v[s->n++];
                        *e = (PruneMissing) { .key = copy, .since = now };
                }
                if (now < e->since || now - e->since < grace)
                        continue;
                char **t = realloc(due, (n_due + 2) * sizeof *t);
                if (!t)
                        return -ENOMEM;
                due = t;
                due[n_due] = strdup(key);
                due[n_due + 1] = NULL;
                if (!due[n_due])
                        return -ENOMEM;
                n_due++;
        }
        *ret_due = TAKE_PTR(due);
        return (int) n_due;
}

json_object *prune_patch(const char *resource_version, char *const *keys) {
        _cleanup_(json_object_putp) json_object *patch = NULL;
        json_object *meta, *data;

        if (isempty(resource_version))
                return NULL;
        patch = json_object_new_object();
        meta = json_object_new_object();
        data = json_object_new_object();
        if (!patch || !meta || !data) {
                json_object_put(meta);
                json_object_put(data);
                return NULL;
        }
        json_object_object_add(meta, "resourceVersion", json_object_new_string(resource_version));
        json_object_object_add(patch, "metadata", meta);
        for (char *const *k = keys; k && *k; k++)
                json_object_object_add(data, *k, NULL);
        json_object_object_add(patch, "data", data);
        return TAKE_PTR(patch);
}

uint64_t prune_interval_usec(uint64_t grace_usec) {
        uint64_t d = grace_usec / 2;
        if (d < PRUNE_INTERVAL_MIN_USEC)
                return PRUNE_INTERVAL_MIN_USEC;
        return d > PRUNE_INTERVAL_MAX_USEC ? PRUNE_INTERVAL_MAX_USEC : d;
}
