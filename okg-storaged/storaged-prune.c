/* Which records of the result ConfigMap belong to pods that are gone (see storaged-prune.h). */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
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
        if (!json_object_object_get_ex(list, "kind", &v) || !streq(json_object_get_string(v), "PodList")) {
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

/* A record of gss stored under key, other than own's. */
static bool is_candidate(const char *key, json_object *val, const char *gss, const char *own) {
        json_object *rec;
        bool r;

        if (streq_ptr(key, own) || !json_object_is_type(val, json_type_string))
                return false;
        rec = json_tokener_parse(json_object_get_string(val));
        r = record_belongs(key, rec, gss);
        json_object_put(rec);
        return r;
}

bool prune_has_candidates(json_object *data, const char *gss, const char *own) {
        if (!data || !json_object_is_type(data, json_type_object))
                return false;
        json_object_object_foreach(data, key, val)
                if (is_candidate(key, val, gss, own))
                        return true;
        return false;
}

int prune_decide(PruneState *s, json_object *data, json_object *live, const char *gss,
                 const char *own, uint64_t now, uint64_t grace, char ***ret_due) {
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
                    !json_object_object_get_ex(data, key, &val) || !is_candidate(key, val, gss, own))
                        prune_state_forget(s, key);
                else
                        i++;
        }
        if (!data)
                return 0;
        json_object_object_foreach(data, key, val) {
                PruneMissing *e;

                if (json_object_object_get_ex(live, key, NULL) || !is_candidate(key, val, gss, own))
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

/* A JSON pointer to data.<key> (RFC 6901: "~" is "~0", "/" is "~1"). */
static char *data_pointer(const char *key) {
        size_t n = strlen("/data/") + 2 * strlen(key) + 1;
        char *p = malloc(n), *q;

        if (!p)
                return NULL;
        q = stpcpy(p, "/data/");
        for (; *key; key++) {
                if (*key == '~' || *key == '/') {
                        *q++ = '~';
                        *q++ = *key == '~' ? '0' : '1';
                } else
                        *q++ = *key;
        }
        *q = 0;
        return p;
}

json_object *prune_patch(json_object *data, char *const *keys) {
        _cleanup_(json_object_putp) json_object *ops = json_object_new_array();

        if (!ops)
                return NULL;
        for (char *const *k = keys; k && *k; k++) {
                _cleanup_(freep) char *ptr = data_pointer(*k);
                json_object *val, *test, *rm;

                if (!ptr || !data || !json_object_object_get_ex(data, *k, &val))
                        return NULL;
                test = json_object_new_object();
                json_object_object_add(test, "op", json_object_new_string("test"));
                json_object_object_add(test, "path", json_object_new_string(ptr));
                json_object_object_add(test, "value", json_object_get(val));
                json_object_array_add(ops, test);
                rm = json_object_new_object();
                json_object_object_add(rm, "op", json_object_new_string("remove"));
                json_object_object_add(rm, "path", json_object_new_string(ptr));
                json_object_array_add(ops, rm);
        }
        return TAKE_PTR(ops);
}

uint64_t prune_interval_usec(uint64_t grace_usec) {
        uint64_t d = grace_usec / 2;
        if (d < PRUNE_INTERVAL_MIN_USEC)
                return PRUNE_INTERVAL_MIN_USEC;
        return d > PRUNE_INTERVAL_MAX_USEC ? PRUNE_INTERVAL_MAX_USEC : d;
}
