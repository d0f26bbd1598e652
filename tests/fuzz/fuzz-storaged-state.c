/* libFuzzer target: okg-storaged's pure JSON logic on fuzzed documents: the RFC 7386 merge patch
 * it applies to its view of an object, the search for the newest record of a GameServerSet in
 * the result ConfigMap (written by every pod of the fleet, so untrusted), and pruning: the
 * PATCH-JSON read as a pod list, the TARGET-JSON as the ConfigMap's data, FIELD as the own pod;
 * and pod conditions merged into TARGET-JSON as a pod (type GSS, message FIELD).
 * Input: "GSS\nFIELD\nTARGET-JSON\n%%\nPATCH-JSON"; missing parts are empty. */
#define _GNU_SOURCE 1
#include <errno.h>
#include <json-c/json.h>
#include <stdbool.h>

#include "fuzz.h"
#include "storaged-prune.h"
#include "storaged-state.h"

#define SEPARATOR "\n%%\n"

static char *take_line(const uint8_t **data, size_t *size) {
        const uint8_t *nl = memchr(*data, '\n', *size);
        size_t n = nl ? (size_t) (nl - *data) : *size;
        char *line = strndup((const char *) *data, n);

        *data += nl ? n + 1 : n;
        *size -= nl ? n + 1 : n;
        return line;
}

static json_object *parse(const char *s, size_t n) {
        char *copy = strndup(s, n);
        json_object *o = copy ? json_tokener_parse(copy) : NULL;
        free(copy);
        return o;
}

/* Equal as text: json_object_equal() says NaN != NaN, and merging keeps the order of keys. */
static bool same(json_object *a, json_object *b) {
        char *t = strdup(json_object_to_json_string_ext(a, JSON_C_TO_STRING_PLAIN));
        bool eq = t && strcmp(t, json_object_to_json_string_ext(b, JSON_C_TO_STRING_PLAIN)) == 0;

        free(t);
        return eq || !t;
}

static void check_newest(json_object *data, const char *gss, const char *field) {
        const char *key = NULL, *record = NULL;
        json_object *v;
        int r;

        r = records_find_newest(data, gss, field, &key, &record);
        FUZZ_ASSERT(r == 0 || r == 1);
        if (r == 1) {
                FUZZ_ASSERT(key && record);
                FUZZ_ASSERT(json_object_object_get_ex(data, key, &v));
                FUZZ_ASSERT(json_object_is_type(v, json_type_string));
                FUZZ_ASSERT(record == json_object_get_string(v));
        }
}

/* Whatever the documents, a due record is in data, a candidate, not the own pod's, and not of
 * a pod in the list; and nothing is due before the grace period has passed. */
static void check_prune(json_object *data, const char *list, size_t len, const char *gss,
                        const char *own) {
        const PruneScope scope = { .gss = gss, .own = own, .namespace = "ns", .records_here = true };
        PruneState st = {};
        json_object *live = NULL, *v;
        const char *why = NULL;
        char **due = NULL;
        int n;

        if (prune_pod_names(list, len, &live, &why) < 0) {
                FUZZ_ASSERT(why && !live);
                live = json_object_new_object();
        }
        n = prune_decide(&st, data, live, &scope, 1000, 50, &due);
        FUZZ_ASSERT(n == 0 || n == -ENOMEM);
        strv_free(due);
        due = NULL;
        n = prune_decide(&st, data, live, &scope, 1050, 50, &due);
        for (char **k = due; n > 0 && k && *k; k++) {
                FUZZ_ASSERT(!streq(*k, own));
                FUZZ_ASSERT(!json_object_object_get_ex(live, *k, NULL));
                FUZZ_ASSERT(json_object_object_get_ex(data, *k, &v));
                FUZZ_ASSERT(prune_is_candidate(&scope, *k, v));
        }
        if (n > 0) {
                json_object *p = prune_patch("1", due);
                FUZZ_ASSERT(p);
                json_object_put(p);
        }
        strv_free(due);
        prune_state_done(&st);
        json_object_put(live);
}

/* Pod conditions, with TARGET-JSON as the pod (the API server's or a hand-edited local store's),
 * GSS as the condition type and FIELD as the message: merged into any pod, the pod holds the
 * condition, other conditions stay, and merging it again changes nothing. */
static void check_conditions(json_object *pod, const char *type, const char *message) {
        json_object *copy = NULL, *patch, *list, *c;
        char *value;
        size_t before = 0, after = 0;

        if (!pod || !json_object_is_type(pod, json_type_object) ||
            storage_check_condition(type, "True", message))
                return;
        value = pod_condition_value(NULL, pod, type, "True", message, "2026-12-06T00:00:00Z");
        FUZZ_ASSERT(value);
        if (json_object_deep_copy(pod, &copy, NULL) < 0) {
                free(value);
                return;
        }
        if (json_object_object_get_ex(copy, "status", &c) && json_object_object_get_ex(c, "conditions", &list) &&
            json_object_is_type(list, json_type_array))
                before = json_object_array_length(list);
        patch = json_tokener_parse("{\"status\":{\"conditions\":[]}}");
        json_object_object_get_ex(json_object_object_get(patch, "status"), "conditions", &list);
        c = json_tokener_parse(value);
        json_object_object_add(c, "type", json_object_new_string(type));
        json_object_array_add(list, c);
        FUZZ_ASSERT(pod_conditions_merge(copy, patch) == 0);
        FUZZ_ASSERT(server_field_holds(copy, FIELD_CONDITION, type, value));
        list = json_object_object_get(json_object_object_get(copy, "status"), "conditions");
        after = json_object_array_length(list);
        FUZZ_ASSERT(after == before || after == before + 1);
        FUZZ_ASSERT(pod_conditions_merge(copy, patch) == 0);
        FUZZ_ASSERT(json_object_array_length(list) == after);
        FUZZ_ASSERT(pod_condition_value(value, copy, type, "True", message, "2026-12-07T00:00:00Z") == NULL);
        json_object_put(patch);
        json_object_put(copy);
        free(value);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *gss = take_line(&data, &size), *field = take_line(&data, &size), *pod;
        const char *text = (const char *) data, *sep = memmem(text, size, SEPARATOR, strlen(SEPARATOR));
        size_t target_len = sep ? (size_t) (sep - text) : size;
        json_object *target = parse(text, target_len), *patch = NULL, *again = NULL;
        char *before = NULL;
        int r;

        if (!gss || !field)
                goto out;
        if (sep)
                patch = parse(sep + strlen(SEPARATOR), size - target_len - strlen(SEPARATOR));

        check_newest(target, gss, field);
        check_conditions(target, gss, field);
        if (sep)
                check_prune(target, sep + strlen(SEPARATOR), size - target_len - strlen(SEPARATOR), gss,
                            field);
        pod = gss_from_pod_name(gss);
        if (pod) {
                size_t n = strlen(pod);
                FUZZ_ASSERT(n > 0 && strncmp(gss, pod, n) == 0 && gss[n] == '-' && gss[n + 1]);
                free(pod);
        }
        before = strndup(text, target_len);
        if (!before)
                goto out;
        (void) storage_check_record(before);
        free(before);

        /* merge(T, P) leaves P as it was, and merging P again changes nothing (idempotence). */
        before = strdup(json_object_to_json_string_ext(patch, JSON_C_TO_STRING_PLAIN));
        if (!before)
                goto out;
        r = json_merge_patch(&target, patch);
        if (r < 0)
                goto out;
        FUZZ_ASSERT(strcmp(before, json_object_to_json_string_ext(patch, JSON_C_TO_STRING_PLAIN)) == 0);
        if (!json_object_is_type(patch, json_type_object))
                FUZZ_ASSERT(same(target, patch));
        if (target && json_object_deep_copy(target, &again, NULL) >= 0 &&
            json_merge_patch(&again, patch) >= 0)
                FUZZ_ASSERT(same(target, again));
        check_newest(target, gss, field);
out:
        json_object_put(again);
        json_object_put(target);
        json_object_put(patch);
        free(before);
        free(gss);
        free(field);
        return 0;
}
