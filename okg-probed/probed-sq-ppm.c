/* The probes of the PodProbeMarkers a pod names, turned into the kruise.io/podprobe annotation's
 * shape as Kruise's pod webhook builds it, so a marker's edit reaches a running pod through the
 * same parser and the same list change as an edited annotation (docs/service-quality.md). Pure:
 * the markers come as okg-storaged's text. */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "okg-json.h"
#include "probed-sq.h"

void sq_ppms_free(SqPpm *v, size_t n) {
        for (size_t i = 0; v && i < n; i++) {
                free(v[i].name);
                free(v[i].state);
                free(v[i].text);
        }
        free(v);
}

static json_object *field(json_object *o, const char *key) {
        json_object *v;
        return json_object_is_type(o, json_type_object) && json_object_object_get_ex(o, key, &v) ? v : NULL;
}

static const char *str_field(json_object *o, const char *key) {
        json_object *v = field(o, key);
        return json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

static const char *pod_label(const SqPod *pod, const char *key) {
        for (size_t i = 0; i < pod->n_labels; i++)
                if (streq(pod->labels[i].key, key))
                        return pod->labels[i].value;
        return NULL;
}

static bool values_have(json_object *values, const char *s) {
        for (size_t i = 0; i < json_object_array_length(values); i++) {
                json_object *v = json_object_array_get_idx(values, i);
                if (json_object_is_type(v, json_type_string) && streq(json_object_get_string(v), s))
                        return true;
        }
        return false;
}

/* metav1.LabelSelector against the pod's labels: matchLabels and matchExpressions (In, NotIn,
 * Exists, DoesNotExist) all hold. As Kruise reads it, an empty selector selects nothing, and so
 * does one that is not valid (an unknown operator, In without values, Exists with values). */
static bool selector_selects(json_object *sel, const SqPod *pod) {
        json_object *labels = field(sel, "matchLabels"), *exprs = field(sel, "matchExpressions");
        size_t n_terms = 0;

        if (labels && !json_object_is_type(labels, json_type_object))
                return false;
        if (exprs && !json_object_is_type(exprs, json_type_array))
                return false;
        if (labels) {
                json_object_object_foreach(labels, k, v) {
                        const char *have = pod_label(pod, k);
                        if (!json_object_is_type(v, json_type_string) || !have ||
                            !streq(have, json_object_get_string(v)))
                                return false;
                        n_terms++;
                }
        }
        for (size_t i = 0; exprs && i < json_object_array_length(exprs); i++) {
                json_object *e = json_object_array_get_idx(exprs, i), *values = field(e, "values");
                const char *key = str_field(e, "key"), *op = str_field(e, "operator"), *have;
                size_t nv;

                if (!key || !op || (values && !json_object_is_type(values, json_type_array)))
                        return false;
                nv = values ? json_object_array_length(values) : 0;
                have = pod_label(pod, key);
                if (streq(op, "In") || streq(op, "NotIn")) {
                        if (nv == 0)
                                return false;
                        if (streq(op, "In") != (have && values_have(values, have)))
                                return false;
                } else if (streq(op, "Exists") || streq(op, "DoesNotExist")) {
                        if (nv > 0 || streq(op, "Exists") != !!have)
                                return false;
                } else
                        return false;
                n_terms++;
        }
        return n_terms > 0;
}

static int note_add(char **note, const char *sep, const char *s) {
        char *t = sq_strf("%s%s%s", strempty(*note), *note ? sep : "", s);
        if (!t)
                return -ENOMEM;
        free(*note);
        *note = t;
        return 0;
}

/* Appends s (taken) to the NULL-ended list *l of *n entries. */
static int origins_add(char ***l, size_t *n, char *s) {
        char **t;

        if (!s)
                return -ENOMEM;
        t = reallocarray(*l, *n + 2, sizeof(char *));
        if (!t) {
                free(s);
                return -ENOMEM;
        }
        t[(*n)++] = s;
        t[*n] = NULL;
        *l = t;
        return 0;
}

int sq_ppm_probes(const SqPpm *v, size_t n, const SqPod *pod, char **ret_text, char **ret_note,
                  char ***ret_origins) {
        _cleanup_(json_object_putp) json_object *out = NULL, *seen_types = NULL, *seen_keys = NULL;
        _cleanup_(freep) char *selected = NULL, *unselected = NULL, *text = NULL, *note = NULL;
        _cleanup_(strv_freep) char **origins = NULL;
        size_t n_origins = 0;

        if (n == 0) {
                note = strdup("the pod names no PodProbeMarker");
                goto refuse;
        }
        for (size_t i = 0; i < n; i++)
                if (!streq_ptr(v[i].state, "found")) {
                        const char *st = strempty(v[i].state);
                        note = sq_strf("PodProbeMarker %s %s: %s", v[i].name,
                                       streq(st, "notfound") ? "is missing"
                                       : streq(st, "pending") ? "is not read yet"
                                                              : "cannot be read",
                                       strempty(v[i].text));
                        goto refuse;
                }

        out = json_object_new_array();
        seen_types = json_object_new_object();
        seen_keys = json_object_new_object();
        if (!out || !seen_types || !seen_keys)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                _cleanup_(json_object_putp) json_object *obj = NULL;
                json_object *spec, *probes;
                char err[256] = "";
                int k;

                /* As strict as the annotation: Kruise's client would not read the rest. */
                k = sq_json_parse_strict(strempty(v[i].text), strlen(strempty(v[i].text)),
                                         "JSON object", &obj, err, sizeof err);
                if (k == -ENOMEM)
                        return k;
                spec = field(obj, "spec");
                probes = field(spec, "probes");
                if (k < 0 || !json_object_is_type(obj, json_type_object) ||
                    (spec && !json_object_is_type(spec, json_type_object)) ||
                    (probes && !json_object_is_type(probes, json_type_array))) {
                        note = sq_strf("PodProbeMarker %s: not a PodProbeMarker object%s%s",
                                       v[i].name, *err ? ": " : "", err);
                        if (!note)
                                return -ENOMEM;
                        *ret_note = TAKE_PTR(note);
                        return -EINVAL;
                }
                if (!selector_selects(field(spec, "selector"), pod)) {
                        if (note_add(&unselected, ", ", v[i].name) < 0)
                                return -ENOMEM;
                        continue;
                }
                if (note_add(&selected, ", ", v[i].name) < 0)
                        return -ENOMEM;
                for (size_t j = 0; probes && j < json_object_array_length(probes); j++) {
                        json_object *p = json_object_array_get_idx(probes, j), *e;
                        const char *name = str_field(p, "name"), *cname = str_field(p, "containerName"),
                                   *type = str_field(p, "podConditionType");
                        _cleanup_(freep) char *key = NULL;

                        /* The webhook's rules; a pod whose spec lists no container (a local
                         * store's entry) is taken to have them all. */
                        if (isempty(type) || json_object_object_get_ex(seen_types, type, NULL) ||
                            (pod->n_containers > 0 && (!cname || !sq_pod_container(pod, cname))))
                                continue;
                        key = sq_strf("%s/%s", strempty(cname), strempty(name));
                        if (!key)
                                return -ENOMEM;
                        if (json_object_object_get_ex(seen_keys, key, NULL))
                                continue;
                        json_object_object_add(seen_types, type, NULL);
                        json_object_object_add(seen_keys, key, NULL);
                        if (ret_origins &&
                            origins_add(&origins, &n_origins,
                                        sq_strf("PodProbeMarker %s: probes[%zu]", v[i].name, j)) < 0)
                                return -ENOMEM;
                        /* Only the fields the annotation carries; what is missing stays missing,
                         * for the annotation's parser to refuse with its reason. */
                        e = json_object_new_object();
                        if (!e || json_object_array_add(out, e) < 0) {
                                json_object_put(e);
                                return -ENOMEM;
                        }
                        static const char *const keep[] = { "name", "containerName", "probe",
                                                            "podConditionType" };
                        for (size_t f = 0; f < ELEMENTSOF(keep); f++) {
                                json_object *x = field(p, keep[f]);
                                if (x)
                                        json_object_object_add(e, keep[f], json_object_get(x));
                        }
                }
        }
        text = strdup(json_object_to_json_string_ext(out, JSON_C_TO_STRING_PLAIN |
                                                                  JSON_C_TO_STRING_NOSLASHESCAPE));
        if (selected)
                note = sq_strf("PodProbeMarker %s%s%s%s", selected, unselected ? " (" : "",
                               strempty(unselected), unselected ? " no longer selects the pod)" : "");
        else
                note = sq_strf("PodProbeMarker %s no longer selects the pod: no probes", strempty(unselected));
        if (!text || !note)
                return -ENOMEM;
        if (ret_origins && !origins && !(origins = calloc(1, sizeof(char *))))
                return -ENOMEM;
        *ret_text = TAKE_PTR(text);
        *ret_note = TAKE_PTR(note);
        if (ret_origins)
                *ret_origins = TAKE_PTR(origins);
        return 0;

refuse:
        if (!note)
                return -ENOMEM;
        *ret_note = TAKE_PTR(note);
        return -ENOENT;
}

/* The parser's complaint about entry [N] of a list the markers gave, said of the marker's
 * probe it came from ("PodProbeMarker game: probes[2].probe: ..."); other complaints as they
 * are. */
void sq_ppm_error_origin(char *err, size_t size, char *const *origins) {
        char rest[256];
        size_t n = 0;
        unsigned long idx;
        char *end;

        if (!origins || err[0] != '[')
                return;
        idx = strtoul(err + 1, &end, 10);
        if (end == err + 1 || *end != ']')
                return;
        while (origins[n])
                n++;
        if (idx >= n)
                return;
        (void) snprintf(rest, sizeof rest, "%s", end + 1);
        (void) snprintf(err, size, "%s%s", origins[idx], rest);
}
