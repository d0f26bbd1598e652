/* okg-storaged's logic without a bus or a network: the write discipline per object, JSON merge
 * patch, fleet record selection, record pruning, kubeconfig parsing, response classification
 * the journal and its entries. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "macro.h"
#include "okg-test.h"
#include "storaged-entries.h"
#include "storaged-journal.h"
#include "storaged-kube.h"
#include "storaged-prune.h"
#include "storaged-state.h"

static const char *patch_text(json_object *p) {
        return json_object_to_json_string_ext(p, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
}

static void test_write_discipline(void) {
        Object o = { .kind = OBJECT_GAMESERVER };
        json_object *patch = NULL;
        uint64_t seq = 0;

        /* Nothing wanted: nothing to send. */
        ASSERT_EQ(object_begin_patch(&o, &patch, &seq), -ENODATA);

        ASSERT_EQ(object_set_desired(&o, FIELD_OPS_STATE, "", "Allocated", 1), 0);
        ASSERT_EQ(object_set_desired(&o, FIELD_LABEL, "tier", "gold", 2), 0);
        ASSERT_EQ(object_set_desired(&o, FIELD_OPS_STATE, "", "None", 3), 0); /* coalesced */
        ASSERT_EQ(object_pending(&o), 2);
        ASSERT_EQ(object_begin_patch(&o, &patch, &seq), 0);
        ASSERT_EQ(seq, 3);
        ASSERT_STREQ(patch_text(patch), "{\"spec\":{\"opsState\":\"None\"},\"metadata\":{\"labels\":{\"tier\":\"gold\"}}}");
        json_object_put(patch);

        /* One request in flight per object. */
        ASSERT_EQ(object_begin_patch(&o, &patch, &seq), -EBUSY);
        /* A change while in flight is sent after. */
        ASSERT_EQ(object_set_desired(&o, FIELD_OPS_STATE, "", "Kill", 4), 0);
        ASSERT_EQ(object_patch_succeeded(&o), 2);
        ASSERT_EQ(o.acked_seq, 3);
        ASSERT_EQ(object_pending(&o), 1);
        ASSERT_EQ(object_begin_patch(&o, &patch, &seq), 0);
        ASSERT_STREQ(patch_text(patch), "{\"spec\":{\"opsState\":\"Kill\"}}");
        json_object_put(patch);

        /* A failure keeps it pending; the retry sends the same. */
        object_patch_failed(&o);
        ASSERT_EQ(object_pending(&o), 1);
        ASSERT_EQ(object_begin_patch(&o, &patch, &seq), 0);
        json_object_put(patch);
        ASSERT_EQ(object_patch_succeeded(&o), 1);

        /* Setting what the server already holds sends nothing: the steady state is free. */
        ASSERT_EQ(object_set_desired(&o, FIELD_OPS_STATE, "", "Kill", 5), 1); /* a repeat */
        ASSERT_EQ(object_begin_patch(&o, &patch, &seq), -ENODATA);
        object_done(&o);

        /* After a restart: what was acknowledged is known from the journal. */
        Object r = { .kind = OBJECT_POD };
        ASSERT_EQ(object_set_acked(&r, FIELD_ANNOTATION, "a/b", "1"), 0);
        ASSERT_EQ(object_set_desired(&r, FIELD_ANNOTATION, "a/b", "1", 9), 1);
        ASSERT_TRUE(!object_needs_write(&r));
        ASSERT_EQ(object_set_desired(&r, FIELD_ANNOTATION, "a/b", "2", 10), 0);
        ASSERT_EQ(object_begin_patch(&r, &patch, &seq), 0);
        ASSERT_STREQ(patch_text(patch), "{\"metadata\":{\"annotations\":{\"a/b\":\"2\"}}}");
        json_object_put(patch);
        json_object *inflight = object_inflight_fields(&r);
        ASSERT_STREQ(patch_text(inflight), "[{\"kind\":\"annotation\",\"key\":\"a/b\",\"value\":\"2\"}]");
        json_object_put(inflight);
        object_done(&r);

        /* The result ConfigMap, created when missing. */
        Object c = { .kind = OBJECT_RECORDS };
        ASSERT_EQ(object_set_desired(&c, FIELD_DATA, "gs-1", "{\"v\":1}", 1), 0);
        ASSERT_EQ(object_begin_patch(&c, &patch, &seq), 0);
        ASSERT_STREQ(patch_text(patch), "{\"data\":{\"gs-1\":\"{\\\"v\\\":1}\"}}");
        json_object *cm = records_configmap_new("sidecar-result", "ns", patch);
        ASSERT_STREQ(patch_text(cm), "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"sidecar-result\",\"namespace\":\"ns\"},\"data\":{\"gs-1\":\"{\\\"v\\\":1}\"}}");
        json_object_put(cm);
        json_object_put(patch);
        object_done(&c);
}

/* Acknowledgements are tied to the object's uid and checked against what the server returns. */
static void test_check_against_object(void) {
        Object o = { .kind = OBJECT_GAMESERVER };
        json_object *gs, *patch = NULL;
        uint64_t seq;

        ASSERT_EQ(object_set_desired(&o, FIELD_OPS_STATE, "", "Allocated", 1), 0);
        ASSERT_EQ(object_set_desired(&o, FIELD_LABEL, "tier", "gold", 2), 0);
        ASSERT_EQ(object_begin_patch(&o, &patch, &seq), 0);
        json_object_put(patch);
        gs = json_tokener_parse("{\"metadata\":{\"uid\":\"u1\",\"labels\":{\"tier\":\"gold\"}},"
                                "\"spec\":{\"opsState\":\"Allocated\"}}");
        /* The PATCH's answer: the uid is learned, the fields in flight are left to it. */
        ASSERT_EQ(object_check(&o, gs), 0);
        ASSERT_STREQ(o.uid, "u1");
        ASSERT_EQ(object_patch_succeeded(&o), 2);
        json_object_put(gs);

        /* The same object, unchanged: nothing to send. */
        gs = json_tokener_parse("{\"metadata\":{\"uid\":\"u1\",\"labels\":{\"tier\":\"gold\",\"x\":\"y\"}},"
                                "\"spec\":{\"opsState\":\"Allocated\"}}");
        ASSERT_EQ(object_check(&o, gs), 0);
        ASSERT_TRUE(!object_needs_write(&o));
        json_object_put(gs);

        /* Someone else set another opsState: only that field is written again. */
        gs = json_tokener_parse("{\"metadata\":{\"uid\":\"u1\",\"labels\":{\"tier\":\"gold\"}},"
                                "\"spec\":{\"opsState\":\"Maintaining\"}}");
        ASSERT_EQ(object_check(&o, gs), 1);
        ASSERT_EQ(object_begin_patch(&o, &patch, &seq), 0);
        ASSERT_STREQ(patch_text(patch), "{\"spec\":{\"opsState\":\"Allocated\"}}");
        json_object_put(patch);
        ASSERT_EQ(object_patch_succeeded(&o), 1);
        json_object_put(gs);

        /* Deleted and created again with the same values but a new uid: everything is
         * written again (the values may be a coincidence, a uid never is). */
        gs = json_tokener_parse("{\"metadata\":{\"uid\":\"u2\",\"labels\":{\"tier\":\"gold\"}},"
                                "\"spec\":{\"opsState\":\"Allocated\"}}");
        ASSERT_EQ(object_check(&o, gs), 2);
        ASSERT_STREQ(o.uid, "u2");
        ASSERT_EQ(object_pending(&o), 2);
        json_object_put(gs);

        /* A missing map or a value of another type is not the acknowledged value. */
        ASSERT_EQ(object_set_acked(&o, FIELD_LABEL, "tier", "gold"), 0);
        gs = json_tokener_parse("{\"metadata\":{\"uid\":\"u2\",\"labels\":{\"tier\":1}}}");
        ASSERT_EQ(object_check(&o, gs), 1);
        ASSERT_TRUE(server_field_value(gs, FIELD_OPS_STATE, "") == NULL);
        ASSERT_TRUE(server_field_value(gs, FIELD_DATA, "k") == NULL);
        json_object_put(gs);
        ASSERT_TRUE(!object_has_acked(&o));
        object_done(&o);
}

/* A refused field is found by sending the fields apart, and does not hold the others. */
static void test_refused_field_isolated(void) {
        Object o = { .kind = OBJECT_POD };
        json_object *patch = NULL;
        Field *f = NULL;
        uint64_t seq;

        ASSERT_EQ(object_set_desired(&o, FIELD_ANNOTATION, "big", "xxxx", 1), 0);
        ASSERT_EQ(object_set_desired(&o, FIELD_LABEL, "small", "1", 2), 0);
        ASSERT_EQ(object_begin_patch(&o, &patch, &seq), 0);
        json_object_put(patch);
        /* Two fields refused together: from now on one at a time. */
        ASSERT_EQ(object_patch_refused(&o, false, &f), 2);
        ASSERT_TRUE(f == NULL && o.isolating && !o.inflight);
        ASSERT_EQ(object_begin_patch(&o, &patch, &seq), 0);
        ASSERT_STREQ(patch_text(patch), "{\"metadata\":{\"annotations\":{\"big\":\"xxxx\"}}}");
        ASSERT_EQ(seq, 1);
        json_object_put(patch);
        /* Refused alone, not given up yet: the same field again. */
        ASSERT_EQ(object_patch_refused(&o, false, &f), 1);
        ASSERT_STREQ(f->key, "big");
        ASSERT_TRUE(!f->refused);
        ASSERT_EQ(object_begin_patch(&o, &patch, &seq), 0);
        json_object_put(patch);
        /* Given up: marked, no longer pending; the other field goes alone. */
        ASSERT_EQ(object_patch_refused(&o, true, &f), 1);
        ASSERT_TRUE(f->refused);
        ASSERT_EQ(object_pending(&o), 1);
        ASSERT_EQ(object_pending_refused(&o), 1);
        ASSERT_EQ(object_begin_patch(&o, &patch, &seq), 0);
        ASSERT_STREQ(patch_text(patch), "{\"metadata\":{\"labels\":{\"small\":\"1\"}}}");
        ASSERT_EQ(seq, 2);
        json_object_put(patch);
        ASSERT_EQ(object_patch_succeeded(&o), 1);
        ASSERT_TRUE(!o.isolating && !object_needs_write(&o));
        /* A new write to another field is not blocked by the old refusal. */
        ASSERT_EQ(object_set_desired(&o, FIELD_LABEL, "other", "2", 3), 0);
        ASSERT_EQ(object_begin_patch(&o, &patch, &seq), 0);
        ASSERT_STREQ(patch_text(patch), "{\"metadata\":{\"labels\":{\"other\":\"2\"}}}");
        json_object_put(patch);
        ASSERT_EQ(object_patch_succeeded(&o), 1);
        /* Writing the refused field again tries it again. */
        ASSERT_EQ(object_set_desired(&o, FIELD_ANNOTATION, "big", "x", 4), 0);
        ASSERT_EQ(object_pending(&o), 1);
        /* So does clearing the refusals (records removed from a full ConfigMap). */
        ASSERT_EQ(object_begin_patch(&o, &patch, &seq), 0);
        json_object_put(patch);
        ASSERT_EQ(object_patch_refused(&o, true, &f), 1);
        ASSERT_EQ(object_pending(&o), 0);
        ASSERT_EQ(object_clear_refused(&o), 1);
        ASSERT_EQ(object_pending(&o), 1);
        object_done(&o);
}

static void test_merge_patch(void) {
        json_object *t = json_tokener_parse("{\"a\":{\"b\":1,\"c\":2},\"d\":[1],\"e\":\"x\"}");
        json_object *p = json_tokener_parse("{\"a\":{\"b\":null,\"z\":3},\"d\":{\"k\":1},\"f\":\"new\"}");
        ASSERT_EQ(json_merge_patch(&t, p), 0);
        ASSERT_STREQ(patch_text(t), "{\"a\":{\"c\":2,\"z\":3},\"d\":{\"k\":1},\"e\":\"x\",\"f\":\"new\"}");
        json_object_put(t);
        json_object_put(p);
        t = NULL;
        p = json_tokener_parse("{\"x\":{\"y\":\"z\"}}");
        ASSERT_EQ(json_merge_patch(&t, p), 0);
        ASSERT_STREQ(patch_text(t), "{\"x\":{\"y\":\"z\"}}");
        json_object_put(t);
        json_object_put(p);
}

static void test_fleet(void) {
        json_object *d = json_tokener_parse(
                "{\"gs-0\":\"{\\\"appliedAt\\\":\\\"2026-01-02\\\",\\\"gameServerSet\\\":\\\"gs\\\"}\","
                " \"gs-1\":\"{\\\"appliedAt\\\":\\\"2026-01-03\\\"}\","
                " \"gs-x\":\"{\\\"appliedAt\\\":\\\"2027-01-01\\\"}\","
                " \"o-1\":\"{\\\"appliedAt\\\":\\\"2028-01-01\\\",\\\"gameServerSet\\\":\\\"o\\\"}\","
                " \"gs-2\":\"garbage\", \"gs-3\":\"{\\\"appliedAt\\\":5}\"}");
        const char *key = NULL, *rec = NULL;

        ASSERT_TRUE(d);
        ASSERT_EQ(records_find_newest(d, "gs", "appliedAt", &key, &rec), 1);
        ASSERT_STREQ(key, "gs-1");
        ASSERT_EQ(records_find_newest(d, "o", "appliedAt", &key, &rec), 1);
        ASSERT_STREQ(key, "o-1");
        ASSERT_EQ(records_find_newest(d, "none", "appliedAt", &key, &rec), 0);
        ASSERT_EQ(records_find_newest(d, "gs", "missing", &key, &rec), 0);
        json_object_put(d);

        char *g = gss_from_pod_name("minecraft-12");
        ASSERT_STREQ(g, "minecraft");
        free(g);
        g = gss_from_pod_name("a-b-c-0");
        ASSERT_STREQ(g, "a-b-c");
        free(g);
        ASSERT_TRUE(!gss_from_pod_name("nginx"));
        ASSERT_TRUE(!gss_from_pod_name("nginx-abc"));
        ASSERT_TRUE(!gss_from_pod_name("-1"));
}

static bool strv_has(char **l, const char *s) {
        for (; l && *l; l++)
                if (streq(*l, s))
                        return true;
        return false;
}

static int pod_names(const char *body, json_object **ret, const char **why) {
        return prune_pod_names(body, strlen(body), ret, why);
}

static void test_prune(void) {
        PruneState st = {};
        const char *why = NULL;
        json_object *live = NULL;
        char **due = NULL;
        /* gs-0 is us; gs-1 is alive; gs-2 and gs-3 are gone; gs-4 is gone but has no
         * gameServerSet (named like a member); o-1 is another set's; x-9 names gs as its set. */
        json_object *d = json_tokener_parse(
                "{\"gs-0\":\"{\\\"gameServerSet\\\":\\\"gs\\\"}\","
                " \"gs-1\":\"{\\\"gameServerSet\\\":\\\"gs\\\"}\","
                " \"gs-2\":\"{\\\"gameServerSet\\\":\\\"gs\\\"}\","
                " \"gs-3\":\"{\\\"gameServerSet\\\":\\\"gs\\\"}\","
                " \"gs-4\":\"{\\\"version\\\":\\\"v1\\\"}\","
                " \"o-1\":\"{\\\"gameServerSet\\\":\\\"o\\\"}\","
                " \"x-9\":\"{\\\"gameServerSet\\\":\\\"gs\\\"}\","
                " \"gs-5\":\"not json\"}");
        const char *list = "{\"kind\":\"PodList\",\"metadata\":{\"resourceVersion\":\"7\"},"
                           "\"items\":[{\"metadata\":{\"name\":\"gs-0\"}},{\"metadata\":{\"name\":\"gs-1\"}}]}";

        const PruneScope here = { .gss = "gs", .own = "gs-0", .namespace = "ns", .records_here = true },
                         other_set = { .gss = "none", .own = "gs-0", .namespace = "ns", .records_here = true };

        ASSERT_TRUE(d);
        ASSERT_TRUE(prune_has_candidates(d, &here));
        ASSERT_TRUE(!prune_has_candidates(d, &other_set));
        ASSERT_TRUE(!prune_has_candidates(NULL, &here));

        /* Lists that cannot be trusted are refused, with a reason. */
        ASSERT_EQ(pod_names("{\"kind\":\"PodList\",\"metadata\":{\"continue\":\"abc\"},\"items\":[]}", &live, &why), -EBADMSG);
        ASSERT_TRUE(strstr(why, "continue token"));
        ASSERT_EQ(pod_names("{\"kind\":\"Status\",\"code\":403}", &live, &why), -EBADMSG);
        /* A kind that is not a string (found by fuzz-storaged-state: null reached strcmp). */
        ASSERT_EQ(pod_names("{\"kind\":null,\"items\":[]}", &live, &why), -EBADMSG);
        ASSERT_EQ(pod_names("{\"kind\":7,\"items\":[]}", &live, &why), -EBADMSG);
        ASSERT_EQ(pod_names("{\"kind\":\"PodList\",\"items\":[{\"metadata\":{}}]}", &live, &why),
                  -EBADMSG);
        ASSERT_EQ(pod_names("{\"kind\":\"PodList\",\"items\":{}}", &live, &why), -EBADMSG);
        ASSERT_EQ(pod_names("{\"kind\":\"PodList\",\"items\":[", &live, &why), -EBADMSG);
        ASSERT_EQ(pod_names("", &live, &why), -EBADMSG);
        ASSERT_TRUE(!live);
        /* An empty list is a list of no pods. */
        ASSERT_EQ(pod_names("{\"kind\":\"PodList\",\"metadata\":{}}", &live, &why), 0);
        ASSERT_EQ(json_object_object_length(live), 0);
        json_object_put(live);
        ASSERT_EQ(pod_names(list, &live, &why), 0);
        ASSERT_EQ(json_object_object_length(live), 2);

        /* First seen missing at 100: nothing is due before the grace period has passed. */
        ASSERT_EQ(prune_decide(&st, d, live, &here, 100, 50, &due), 0);
        ASSERT_TRUE(!due);
        ASSERT_EQ(st.n, 4);             /* gs-2, gs-3, gs-4, x-9 */
        ASSERT_EQ(prune_decide(&st, d, live, &here, 149, 50, &due), 0);
        ASSERT_EQ(prune_decide(&st, d, live, &here, 150, 50, &due), 4);
        ASSERT_TRUE(strv_has(due, "gs-2") && strv_has(due, "gs-3") && strv_has(due, "gs-4") &&
                    strv_has(due, "x-9"));
        ASSERT_TRUE(!strv_has(due, "gs-0") && !strv_has(due, "gs-1") && !strv_has(due, "o-1") &&
                    !strv_has(due, "gs-5"));

        /* The patch removes the keys, on condition that nothing changed since the read. */
        json_object *p = prune_patch("4711", due);
        ASSERT_TRUE(p);
        ASSERT_STREQ(patch_text(p), "{\"metadata\":{\"resourceVersion\":\"4711\"},"
                                    "\"data\":{\"gs-2\":null,\"gs-3\":null,\"gs-4\":null,\"x-9\":null}}");
        json_object_put(p);
        ASSERT_TRUE(!prune_patch(NULL, due));
        ASSERT_TRUE(!prune_patch("", due));
        strv_free(due);

        /* gs-2 comes back (a pod recreated under its name): forgotten, and when it goes again
         * the grace period starts over. */
        json_object_object_add(live, "gs-2", json_object_new_boolean(1));
        ASSERT_EQ(prune_decide(&st, d, live, &here, 160, 50, &due), 3);
        ASSERT_TRUE(!strv_has(due, "gs-2"));
        strv_free(due);
        json_object_object_del(live, "gs-2");
        ASSERT_EQ(prune_decide(&st, d, live, &here, 170, 50, &due), 3);
        ASSERT_TRUE(!strv_has(due, "gs-2"));
        strv_free(due);
        ASSERT_EQ(prune_decide(&st, d, live, &here, 220, 50, &due), 4);
        strv_free(due);

        /* Records that went (another pod pruned them) are forgotten. */
        json_object_object_del(d, "gs-3");
        prune_state_forget(&st, "gs-4");
        ASSERT_EQ(prune_decide(&st, d, live, &here, 230, 50, &due), 2);  /* gs-2, x-9 */
        ASSERT_TRUE(strv_has(due, "gs-2") && strv_has(due, "x-9"));
        strv_free(due);
        ASSERT_EQ(st.n, 3);             /* gs-4 starts over */
        ASSERT_EQ(prune_decide(&st, NULL, live, &here, 240, 50, &due), 0);
        ASSERT_EQ(st.n, 0);

        /* A clock that went back never makes anything due. */
        ASSERT_EQ(prune_decide(&st, d, live, &here, 1000, 50, &due), 0);
        ASSERT_EQ(prune_decide(&st, d, live, &here, 10, 50, &due), 0);
        prune_state_done(&st);
        json_object_put(live);
        json_object_put(d);

        /* A ConfigMap shared by namespaces: only records naming our namespace are ours. */
        const PruneScope away = { .gss = "gs", .own = "gs-0", .namespace = "ns", .records_here = false };
        json_object *named = json_object_new_string("{\"gameServerSet\":\"gs\",\"namespace\":\"ns\"}"),
                    *elsewhere = json_object_new_string("{\"gameServerSet\":\"gs\",\"namespace\":\"b\"}"),
                    *unnamed = json_object_new_string("{\"gameServerSet\":\"gs\"}");
        ASSERT_TRUE(prune_is_candidate(&away, "gs-1", named));
        ASSERT_TRUE(!prune_is_candidate(&away, "gs-1", elsewhere));
        ASSERT_TRUE(!prune_is_candidate(&away, "gs-1", unnamed));
        ASSERT_TRUE(prune_is_candidate(&here, "gs-1", named));
        ASSERT_TRUE(!prune_is_candidate(&here, "gs-1", elsewhere));
        ASSERT_TRUE(prune_is_candidate(&here, "gs-1", unnamed));
        ASSERT_TRUE(!prune_is_candidate(&here, "gs-0", named));
        json_object_put(named);
        json_object_put(elsewhere);
        json_object_put(unnamed);

        ASSERT_EQ(prune_interval_usec(600 * USEC_PER_SEC), 300 * USEC_PER_SEC);
        ASSERT_EQ(prune_interval_usec(7200 * USEC_PER_SEC), 300 * USEC_PER_SEC);
        ASSERT_EQ(prune_interval_usec(1 * USEC_PER_SEC), USEC_PER_SEC);
        ASSERT_EQ(prune_interval_usec(4 * USEC_PER_SEC), 2 * USEC_PER_SEC);
}

static void test_checks(void) {
        ASSERT_TRUE(!storage_check_label("app", "demo"));
        ASSERT_TRUE(!storage_check_label("game.kruise.io/x", ""));
        ASSERT_TRUE(storage_check_label("bad key", "x"));
        ASSERT_TRUE(storage_check_label("app", "has space"));
        ASSERT_TRUE(!storage_check_annotation("a/b", "any text, even spaces"));
        ASSERT_TRUE(storage_check_annotation("/b", "x"));
        ASSERT_TRUE(!storage_check_record("{}"));
        ASSERT_TRUE(storage_check_record("[]"));
        ASSERT_TRUE(storage_check_record("{"));
        ASSERT_TRUE(!storage_check_event("Warning", "HotUpdateFailed", "x"));
        ASSERT_TRUE(storage_check_event("Error", "X", "x"));
        ASSERT_TRUE(storage_check_event("Normal", "", "x"));
}

static void test_kubeconfig(void) {
        static const char kc[] =
                "apiVersion: v1\nkind: Config\ncurrent-context: c2\n"
                "clusters:\n- name: k1\n  cluster:\n    server: https://10.0.0.1:6443/\n"
                "    certificate-authority-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==\n"
                "- name: k2\n  cluster:\n    server: https://127.0.0.1:6443\n    certificate-authority: ca.crt\n"
                "users:\n- name: u1\n  user:\n    token: abc\n- name: u2\n  user:\n    tokenFile: /run/token\n"
                "contexts:\n- name: c1\n  context: {cluster: k1, user: u1}\n"
                "- name: c2\n  context: {cluster: k2, user: u2, namespace: games}\n";
        KubeConfig *c = NULL;
        char *err = NULL;

        ASSERT_EQ(kubeconfig_parse(kc, strlen(kc), "/etc/kube", &c, &err), 0);
        ASSERT_STREQ(c->server, "https://127.0.0.1:6443");
        ASSERT_STREQ(c->ca_file, "/etc/kube/ca.crt");
        ASSERT_STREQ(c->token_file, "/run/token");
        ASSERT_STREQ(c->namespace, "games");
        kube_config_free(c);

        char *t = strdup(kc);
        strstr(t, "current-context: c2")[strlen("current-context: c")] = '1';
        ASSERT_EQ(kubeconfig_parse(t, strlen(t), "/etc/kube", &c, &err), 0);
        ASSERT_STREQ(c->server, "https://10.0.0.1:6443");
        ASSERT_STREQ(c->ca_data, "-----BEGIN CERTIFICATE-----\n");
        ASSERT_STREQ(c->token, "abc");
        ASSERT_STREQ(c->namespace, "default");
        kube_config_free(c);
        free(t);

        /* --context picks another context than current-context (okgctl fleet). */
        ASSERT_EQ(kubeconfig_parse_context(kc, strlen(kc), "/etc/kube", "c1", &c, &err), 0);
        ASSERT_STREQ(c->server, "https://10.0.0.1:6443");
        ASSERT_STREQ(c->token, "abc");
        kube_config_free(c);
        ASSERT_EQ(kubeconfig_parse_context(kc, strlen(kc), "/etc/kube", "c9", &c, &err), -EINVAL);
        ASSERT_STREQ(err, "context \"c9\" is not among the contexts");
        free(err);
        err = NULL;
        ASSERT_EQ(kubeconfig_parse_context("kind: Config\n", 13, "/", "c1", &c, &err), -EINVAL);
        ASSERT_STREQ(err, "context \"c1\" is not among the contexts");
        free(err);
        err = NULL;

        static const struct {
                const char *text, *error;
        } bad[] = {
                { "current-context: x\n", "current-context \"x\" is not among the contexts" },
                { "kind: Config\n", "no current-context" },
                { "current-context: c\ncontexts:\n- name: c\n  context: {cluster: k, user: u}\n",
                  "the cluster of context \"c\" is not defined" },
                { "current-context: c\ncontexts:\n- name: c\n  context: {cluster: k, user: u}\n"
                  "clusters:\n- name: k\n  cluster: {server: http://x}\nusers:\n- name: u\n  user: {token: t}\n",
                  "the cluster's server must be an https:// URL (got http://x)" },
                { "current-context: c\ncontexts:\n- name: c\n  context: {cluster: k, user: u}\n"
                  "clusters:\n- name: k\n  cluster: {server: https://x, insecure-skip-tls-verify: true}\n"
                  "users:\n- name: u\n  user: {token: t}\n",
                  "insecure-skip-tls-verify is refused: TLS is always verified" },
                { "current-context: c\ncontexts:\n- name: c\n  context: {cluster: k, user: u}\n"
                  "clusters:\n- name: k\n  cluster: {server: https://x}\n"
                  "users:\n- name: u\n  user: {client-certificate: /a.crt}\n",
                  "the user must authenticate with token or tokenFile (client certificates and exec plugins are not supported)" },
                { "current-context: c\ncontexts:\n- name: c\n  context: {cluster: k, user: u}\n"
                  "clusters:\n- name: k\n  cluster: {server: https://x, certificate-authority-data: \"!!\"}\n"
                  "users:\n- name: u\n  user: {token: t}\n",
                  "certificate-authority-data is not valid base64" },
                { "current-context: c\ncontexts:\n- name: c\n  context: {cluster: k, user: u}\n"
                  "clusters:\n- name: k\n  cluster: {server: https://x, certificate-authority: /dev/null}\n"
                  "users:\n- name: u\n  user: {token: t}\n",
                  "certificate-authority /dev/null is not a regular file" },
                { "[1, 2]\n", "a kubeconfig is a mapping" },
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                err = NULL;
                c = NULL;
                ASSERT_EQ(kubeconfig_parse(bad[i].text, strlen(bad[i].text), "/", &c, &err), -EINVAL);
                ASSERT_STREQ(err, bad[i].error);
                free(err);
        }

        char *out = NULL;
        size_t len = 0;
        ASSERT_EQ(okg_base64_decode("aGVsbG8=", 8, &out, &len), 0);
        ASSERT_STREQ(out, "hello");
        ASSERT_EQ(len, 5);
        free(out);
        ASSERT_EQ(okg_base64_decode("aGVsbA", 6, &out, &len), 0);
        ASSERT_STREQ(out, "hell");
        free(out);
        ASSERT_EQ(okg_base64_decode("a", 1, &out, &len), -EINVAL);
        ASSERT_EQ(okg_base64_decode("aGV=sbG8", 8, &out, &len), -EINVAL);
}

static void test_classify(void) {
        ASSERT_EQ(kube_classify(CURLE_OK, 200), KUBE_OK);
        ASSERT_EQ(kube_classify(CURLE_OK, 201), KUBE_OK);
        ASSERT_EQ(kube_classify(CURLE_COULDNT_CONNECT, 0), KUBE_RETRY);
        ASSERT_EQ(kube_classify(CURLE_OK, 429), KUBE_RETRY);
        ASSERT_EQ(kube_classify(CURLE_OK, 503), KUBE_RETRY);
        ASSERT_EQ(kube_classify(CURLE_OK, 409), KUBE_RETRY);
        ASSERT_EQ(kube_classify(CURLE_OK, 401), KUBE_RETRY);
        ASSERT_EQ(kube_classify(CURLE_OK, 404), KUBE_NOT_FOUND);
        ASSERT_EQ(kube_classify(CURLE_OK, 403), KUBE_FATAL);
        ASSERT_EQ(kube_classify(CURLE_OK, 422), KUBE_FATAL);
        static const char st[] = "{\"kind\":\"Status\",\"status\":\"Failure\",\"message\":\"pods \\\"x\\\" is forbidden\",\"code\":403}";
        char *m = kube_status_message(st, strlen(st));
        ASSERT_STREQ(m, "pods \"x\" is forbidden");
        free(m);
        ASSERT_TRUE(!kube_status_message("oops", 4));
        ASSERT_TRUE(!kube_status_message("404 page not found", 18));

        /* No HTTP answer: curl's reason is kept, with a hint at the clocks when it applies. */
        m = kube_transport_message(CURLE_PEER_FAILED_VERIFICATION,
                                   "SSL certificate problem: certificate is not yet valid");
        ASSERT_STREQ(m, "SSL peer certificate or SSH remote key was not OK: SSL certificate problem: "
                        "certificate is not yet valid; check the clocks of this node and of the API server");
        free(m);
        m = kube_transport_message(CURLE_PEER_FAILED_VERIFICATION,
                                   "SSL certificate problem: unable to get local issuer certificate");
        ASSERT_STREQ(m, "SSL peer certificate or SSH remote key was not OK: SSL certificate problem: "
                        "unable to get local issuer certificate");
        free(m);
        m = kube_transport_message(CURLE_OPERATION_TIMEDOUT, "");
        ASSERT_STREQ(m, "Timeout was reached");
        free(m);
        m = kube_not_served_message("https://h:6443/apis/game.kruise.io/v1alpha1/namespaces/n/gameservers/g");
        ASSERT_TRUE(strstr(m, "does not serve this resource type") && strstr(m, "/gameservers/g") &&
                    strstr(m, "GameServer CRD"));
        free(m);
}

static void test_watch_end(void) {
        const uint64_t S = 1000 * USEC_PER_SEC, T = 300 * USEC_PER_SEC;

        /* The object gone or 410 Gone: read again, whatever else is true. */
        ASSERT_EQ(watch_end_decide(true, 200, KUBE_OK, 5, S, T, S + T), WATCH_END_READ_AGAIN);
        ASSERT_EQ(watch_end_decide(true, 403, KUBE_FATAL, 0, S, T, S), WATCH_END_READ_AGAIN);
        ASSERT_EQ(watch_end_decide(false, 410, kube_classify(CURLE_OK, 410), 0, S, T, S),
                  WATCH_END_READ_AGAIN);
        ASSERT_EQ(watch_end_decide(false, 410, kube_classify(CURLE_OK, 410), 3, S, T, S + T),
                  WATCH_END_READ_AGAIN);

        /* Ended OK: reopened when it delivered events or lasted at least half its timeout. */
        ASSERT_EQ(watch_end_decide(false, 200, KUBE_OK, 1, S, T, S), WATCH_END_REOPEN);
        ASSERT_EQ(watch_end_decide(false, 200, KUBE_OK, 0, S, T, S + T / 2), WATCH_END_REOPEN);
        ASSERT_EQ(watch_end_decide(false, 200, KUBE_OK, 0, S, T, S + T), WATCH_END_REOPEN);
        ASSERT_EQ(watch_end_decide(false, 200, KUBE_OK, 0, S, T, S + T / 2 - 1), WATCH_END_BACKOFF);
        ASSERT_EQ(watch_end_decide(false, 200, KUBE_OK, 0, S, T, S), WATCH_END_BACKOFF);
        /* An odd timeout: half of it rounds down. */
        ASSERT_EQ(watch_end_decide(false, 200, KUBE_OK, 0, S, 3, S + 1), WATCH_END_REOPEN);
        ASSERT_EQ(watch_end_decide(false, 200, KUBE_OK, 0, S, 3, S), WATCH_END_BACKOFF);
        /* A clock seen going back never counts as a long watch. */
        ASSERT_EQ(watch_end_decide(false, 200, KUBE_OK, 0, S, T, S - T), WATCH_END_BACKOFF);

        /* Refused: the long delay, even after events or a long watch. */
        ASSERT_EQ(watch_end_decide(false, 403, KUBE_FATAL, 0, S, T, S), WATCH_END_REFUSED);
        ASSERT_EQ(watch_end_decide(false, 403, KUBE_FATAL, 4, S, T, S + T), WATCH_END_REFUSED);
        ASSERT_EQ(watch_end_decide(false, 422, kube_classify(CURLE_OK, 422), 0, S, T, S),
                  WATCH_END_REFUSED);

        /* Anything else backs off, events or not: 404, 5xx, 429, 401, no answer. */
        ASSERT_EQ(watch_end_decide(false, 404, kube_classify(CURLE_OK, 404), 2, S, T, S + T),
                  WATCH_END_BACKOFF);
        ASSERT_EQ(watch_end_decide(false, 503, kube_classify(CURLE_OK, 503), 2, S, T, S + T),
                  WATCH_END_BACKOFF);
        ASSERT_EQ(watch_end_decide(false, 429, kube_classify(CURLE_OK, 429), 0, S, T, S),
                  WATCH_END_BACKOFF);
        ASSERT_EQ(watch_end_decide(false, 401, kube_classify(CURLE_OK, 401), 0, S, T, S),
                  WATCH_END_BACKOFF);
        ASSERT_EQ(watch_end_decide(false, 0, kube_classify(CURLE_RECV_ERROR, 0), 7, S, T, S + T),
                  WATCH_END_BACKOFF);
}

static int count_replay(json_object *e, void *userdata) {
        if (json_object_object_get_ex(e, "reject", NULL))
                return -EBADMSG;
        (*(int *) userdata)++;
        return 0;
}

static void test_journal(void) {
        char dir[] = "/tmp/okg-test-journal-XXXXXX";
        char path[256];
        Journal *j = NULL;
        json_object *e;
        int n = 0;
        FILE *f;

        ASSERT_TRUE(mkdtemp(dir));
        ASSERT_EQ(journal_open(dir, count_replay, &n, &j), 0);
        ASSERT_EQ(n, 0);
        for (int i = 0; i < 3; i++) {
                e = json_object_new_object();
                json_object_object_add(e, "seq", json_object_new_int(i));
                ASSERT_EQ(journal_append(j, e, i == 0), 0);
                json_object_put(e);
        }
        journal_free(j);
        /* A crash in the middle of an append leaves a torn line: it is ignored. */
        snprintf(path, sizeof path, "%s/storaged.journal", dir);
        f = fopen(path, "a");
        fputs("[not an object]\n{\"seq\":", f);
        fclose(f);
        ASSERT_EQ(journal_open(dir, count_replay, &n, &j), 0);
        ASSERT_EQ(n, 3);
        e = json_tokener_parse("{\"nextSeq\":9}");
        ASSERT_EQ(journal_rewrite(j, &e, 1), 0);
        json_object_put(e);
        ASSERT_EQ(journal_entries(j), 1);
        journal_free(j);
        n = 0;
        ASSERT_EQ(journal_open(dir, count_replay, &n, &j), 0);
        ASSERT_EQ(n, 1);
        ASSERT_EQ(journal_damage(j)->lines, 0);
        journal_free(j);

        /* Damage in the middle and a line longer than any entry: skipped and counted, the
         * entries around them replayed, whatever the file's size. */
        f = fopen(path, "a");
        fputs("garbage\n{\"seq\":10}\n{\"reject\":1}\n", f);
        for (int i = 0; i < 17 * 1024; i++) {
                char kb[1024];
                memset(kb, 'x', sizeof kb);
                fwrite(kb, 1, sizeof kb, f);
        }
        fputs("\n{\"seq\":11}\n", f);
        fclose(f);
        n = 0;
        ASSERT_EQ(journal_open(dir, count_replay, &n, &j), 0);
        ASSERT_EQ(n, 3);                       /* nextSeq, 10, 11 */
        ASSERT_EQ(journal_damage(j)->lines, 3); /* garbage, the rejected entry, the long line */
        ASSERT_TRUE(journal_damage(j)->bytes > 17 * 1024 * 1024);
        ASSERT_TRUE(!journal_damage(j)->unreadable);
        ASSERT_TRUE(journal_bytes(j) > 17 * 1024 * 1024);
        journal_free(j);
        unlink(path);
        rmdir(dir);

        /* Compaction follows the size, not acknowledgements. */
        ASSERT_TRUE(!journal_compaction_due(1000, 500, 10));
        ASSERT_TRUE(!journal_compaction_due(JOURNAL_COMPACT_MIN_BYTES + 1, JOURNAL_COMPACT_MIN_BYTES, 10));
        ASSERT_TRUE(journal_compaction_due(3 * JOURNAL_COMPACT_MIN_BYTES, JOURNAL_COMPACT_MIN_BYTES, 10));
        ASSERT_TRUE(journal_compaction_due(100, 100, JOURNAL_COMPACT_ENTRIES));
}

static json_object *pod_with(const char *conditions_json) {
        _cleanup_(freep) char *text = NULL;
        ASSERT_TRUE(asprintf(&text, "{\"metadata\":{\"uid\":\"u1\",\"resourceVersion\":\"5\"},"
                             "\"status\":{\"conditions\":%s}}", conditions_json) > 0);
        json_object *o = json_tokener_parse(text);
        ASSERT_TRUE(o != NULL);
        return o;
}

/* Sends what the object has pending and acknowledges it; returns the fields acknowledged. */
static size_t send_and_ack(Object *o) {
        json_object *patch = NULL;
        uint64_t seq;

        ASSERT_EQ(object_begin_patch(o, &patch, &seq), 0);
        json_object_put(patch);
        return object_patch_succeeded(o);
}

/* object_check() against a pod holding these conditions. */
static size_t check_with(Object *o, const char *conditions_json) {
        json_object *pod = pod_with(conditions_json);
        size_t n = object_check(o, pod);

        json_object_put(pod);
        return n;
}

static void test_pod_conditions(void) {
        Object o = { .kind = OBJECT_POD_STATUS };
        json_object *patch = NULL, *pod, *v;
        uint64_t seq = 0;
        char *a, *b, *c;

        ASSERT_STREQ(object_kind_to_string(OBJECT_POD_STATUS), "podstatus");
        ASSERT_EQ(object_kind_from_string("podstatus"), OBJECT_POD_STATUS);
        ASSERT_EQ(field_kind_from_string("condition"), FIELD_CONDITION);

        /* The value carries the times; a repeat of status and message changes nothing. */
        a = pod_condition_value(NULL, NULL, "game.kruise.io/idle", "True", "idle", "2026-12-06T10:00:00Z");
        ASSERT_STREQ(a, "{\"status\":\"True\",\"message\":\"idle\",\"lastProbeTime\":\"2026-12-06T10:00:00Z\","
                        "\"lastTransitionTime\":\"2026-12-06T10:00:00Z\"}");
        ASSERT_TRUE(pod_condition_value(a, NULL, "game.kruise.io/idle", "True", "idle", "2026-12-06T10:00:09Z") == NULL);
        /* Same status, new message: probed now, the transition stays. */
        b = pod_condition_value(a, NULL, "game.kruise.io/idle", "True", "busy", "2026-12-06T10:00:03Z");
        ASSERT_TRUE(strstr(b, "\"lastProbeTime\":\"2026-12-06T10:00:03Z\"") != NULL);
        ASSERT_TRUE(strstr(b, "\"lastTransitionTime\":\"2026-12-06T10:00:00Z\"") != NULL);
        /* Another status: a transition. */
        c = pod_condition_value(b, NULL, "game.kruise.io/idle", "False", "busy", "2026-12-06T10:00:06Z");
        ASSERT_TRUE(strstr(c, "\"lastTransitionTime\":\"2026-12-06T10:00:06Z\"") != NULL);
        free(b);
        free(c);
        /* Nothing wanted before (a fresh state folder): the pod's own condition is the previous one. */
        pod = pod_with("[{\"type\":\"game.kruise.io/idle\",\"status\":\"True\",\"message\":\"x\","
                       "\"lastTransitionTime\":\"2026-12-01T00:00:00Z\"}]");
        b = pod_condition_value(NULL, pod, "game.kruise.io/idle", "True", "y", "2026-12-06T10:00:00Z");
        ASSERT_TRUE(strstr(b, "\"lastTransitionTime\":\"2026-12-01T00:00:00Z\"") != NULL);
        free(b);
        json_object_put(pod);

        /* The patch: a list merged by type. */
        ASSERT_EQ(object_set_desired(&o, FIELD_CONDITION, "game.kruise.io/idle", a, 1), 0);
        ASSERT_EQ(object_begin_patch(&o, &patch, &seq), 0);
        ASSERT_STREQ(patch_text(patch), "{\"status\":{\"conditions\":[{\"type\":\"game.kruise.io/idle\","
                                        "\"status\":\"True\",\"message\":\"idle\",\"lastProbeTime\":"
                                        "\"2026-12-06T10:00:00Z\",\"lastTransitionTime\":\"2026-12-06T10:00:00Z\"}]}}");
        ASSERT_EQ(object_patch_succeeded(&o), 1);

        /* The local store merges the same way: Ready stays, ours is added, then replaced. */
        pod = pod_with("[{\"type\":\"Ready\",\"status\":\"True\"}]");
        ASSERT_EQ(pod_conditions_merge(pod, patch), 0);
        ASSERT_TRUE(pod_condition_find(pod, "Ready") != NULL);
        v = pod_condition_find(pod, "game.kruise.io/idle");
        ASSERT_TRUE(v != NULL);
        ASSERT_EQ(object_check(&o, pod), 0);     /* it holds what was acknowledged */
        json_object_put(patch);

        /* A status replace that wiped ours: the acknowledgement goes, the field is sent again. */
        json_object_put(pod);
        ASSERT_EQ(check_with(&o, "[{\"type\":\"Ready\",\"status\":\"True\"}]"), 1);
        ASSERT_EQ(object_pending(&o), 1);
        /* Written again and acknowledged: "idle" becomes the value before. */
        ASSERT_EQ(send_and_ack(&o), 1);
        b = pod_condition_value(a, NULL, "game.kruise.io/idle", "False", "busy", "2026-12-06T10:00:09Z");
        ASSERT_EQ(object_set_desired(&o, FIELD_CONDITION, "game.kruise.io/idle", b, 2), 0);
        ASSERT_EQ(send_and_ack(&o), 1);
        /* A stale copy of the status (our value before) is replaced again... */
        ASSERT_EQ(check_with(&o, "[{\"type\":\"game.kruise.io/idle\",\"status\":\"True\",\"message\":\"idle\"}]"), 1);
        ASSERT_EQ(object_pending(&o), 1);
        ASSERT_EQ(send_and_ack(&o), 1);
        /* ...a value we never wrote is another writer's (kruise-daemon): not fought. */
        ASSERT_EQ(check_with(&o, "[{\"type\":\"game.kruise.io/idle\",\"status\":\"True\",\"message\":\"kruise\"}]"), 0);
        ASSERT_EQ(object_yielded(&o), 1);
        ASSERT_EQ(object_pending(&o), 0);
        ASSERT_EQ(object_begin_patch(&o, &patch, &seq), -ENODATA);
        /* Until the plugin writes it again. */
        ASSERT_EQ(object_set_desired(&o, FIELD_CONDITION, "game.kruise.io/idle", b, 3), 0);
        ASSERT_EQ(object_yielded(&o), 0);
        ASSERT_EQ(object_pending(&o), 1);
        free(b);

        /* Another message there: sent again too; an empty message is an absent one. */
        ASSERT_TRUE(server_field_holds(pod = pod_with("[{\"type\":\"t\",\"status\":\"True\"}]"),
                                       FIELD_CONDITION, "t", "{\"status\":\"True\",\"message\":\"\"}"));
        ASSERT_TRUE(!server_field_holds(pod, FIELD_CONDITION, "t", "{\"status\":\"True\",\"message\":\"m\"}"));
        ASSERT_TRUE(!server_field_holds(pod, FIELD_CONDITION, "t", "{\"status\":\"False\",\"message\":\"\"}"));
        json_object_put(pod);
        free(a);
        object_done(&o);

        /* A hand-edited local store: a status that is not an object, list items that are not. */
        {
                json_object *odd = json_tokener_parse("{\"status\":5}");
                json_object *p2 = json_tokener_parse("{\"status\":{\"conditions\":[7,{\"status\":\"True\"},"
                                                     "{\"type\":\"t\",\"status\":\"True\"}]}}");
                ASSERT_EQ(pod_conditions_merge(odd, p2), 0);
                ASSERT_TRUE(server_field_holds(odd, FIELD_CONDITION, "t", "{\"status\":\"True\",\"message\":\"\"}"));
                ASSERT_EQ(json_object_array_length(json_object_object_get(json_object_object_get(odd, "status"),
                                                                          "conditions")), 1);
                json_object_put(odd);
                json_object_put(p2);
        }

        /* Bad input. */
        ASSERT_TRUE(storage_check_condition("game.kruise.io/idle", "True", "a|b\n\tc\r") == NULL);
        ASSERT_TRUE(storage_check_condition("game.kruise.io/idle", "Unknown", "") == NULL);
        ASSERT_TRUE(storage_check_condition("", "True", "") != NULL);
        ASSERT_TRUE(storage_check_condition("game.kruise.io/idle", "true", "") != NULL);
        ASSERT_TRUE(storage_check_condition("game.kruise.io/idle", "", "") != NULL);
        ASSERT_TRUE(storage_check_condition("game.kruise.io/idle", "True", "a\x01") != NULL);
        ASSERT_TRUE(storage_check_condition("game.kruise.io/idle", "True", "a\x7f") != NULL);
        ASSERT_TRUE(storage_check_condition("Ready", "True", "") != NULL);
        ASSERT_TRUE(storage_check_condition("a b", "True", "") != NULL);
        {
                char big[1026];
                memset(big, 'x', sizeof big - 1);
                big[1025] = 0;
                ASSERT_TRUE(storage_check_condition("game.kruise.io/idle", "True", big) != NULL);
                big[1024] = 0;
                ASSERT_TRUE(storage_check_condition("game.kruise.io/idle", "True", big) == NULL);
        }

        /* resourceVersions: numeric where they are numbers. */
        ASSERT_TRUE(resource_version_newer("10", "9"));
        ASSERT_TRUE(!resource_version_newer("9", "10"));
        ASSERT_TRUE(!resource_version_newer("9", "9"));
        ASSERT_TRUE(resource_version_newer("9", NULL));
        ASSERT_TRUE(!resource_version_newer(NULL, "9"));
        ASSERT_TRUE(resource_version_newer("abc", "abd"));
}

static void test_reassert_bound(void) {
        const uint64_t S = 1000000ULL;
        Reassert r = {};
        uint64_t now = 100 * S;

        /* The first at once. */
        ASSERT_EQ(reassert_due(&r, now), now);
        reassert_sent(&r, now);
        /* Wiped again at once: 1 s, then 2, 4, ... after the previous re-assert. */
        ASSERT_EQ(reassert_due(&r, now), now + 1 * S);
        reassert_sent(&r, now + 1 * S);
        ASSERT_EQ(reassert_due(&r, now + 1 * S), now + 3 * S);
        reassert_sent(&r, now + 3 * S);
        ASSERT_EQ(reassert_due(&r, now + 3 * S), now + 7 * S);
        /* Capped at 5 minutes. */
        for (int i = 0; i < 20; i++)
                r.streak++;
        ASSERT_EQ(reassert_due(&r, now + 3 * S), now + 3 * S + REASSERT_MAX_USEC);
        /* Quiet for 10 minutes: a new streak, at once. */
        ASSERT_EQ(reassert_due(&r, now + 3 * S + REASSERT_QUIET_USEC), now + 3 * S + REASSERT_QUIET_USEC);
        reassert_sent(&r, now + 3 * S + REASSERT_QUIET_USEC);
        ASSERT_EQ(r.streak, 1);
        /* So wiping every second for an hour costs at most about 20 writes. */
        Reassert w = {};
        unsigned writes = 0;
        for (uint64_t t = 0; t < 3600 * S; t += S)
                if (reassert_due(&w, t) <= t) {
                        reassert_sent(&w, t);
                        writes++;
                }
        ASSERT_TRUE(writes <= 20);
}

/* The names the journal and the bus use for objects and fields, both ways. */
static void test_kind_names(void) {
        for (int k = 0; k < _OBJECT_KIND_MAX; k++)
                ASSERT_EQ(object_kind_from_string(object_kind_to_string((ObjectKind) k)), k);
        for (int k = 0; k < _FIELD_KIND_MAX; k++)
                ASSERT_EQ(field_kind_from_string(field_kind_to_string((FieldKind) k)), k);
        ASSERT_STREQ(object_kind_to_string(OBJECT_GAMESERVER), "gameserver");
        ASSERT_STREQ(field_kind_to_string(FIELD_OPS_STATE), "opsState");
        ASSERT_EQ(object_kind_from_string("records"), OBJECT_RECORDS);
        ASSERT_EQ(object_kind_from_string("Pod"), _OBJECT_KIND_INVALID);
        ASSERT_EQ(object_kind_from_string(NULL), _OBJECT_KIND_INVALID);
        ASSERT_EQ(field_kind_from_string("opsstate"), _FIELD_KIND_INVALID);
        ASSERT_EQ(field_kind_from_string(""), _FIELD_KIND_INVALID);
        ASSERT_TRUE(!object_kind_to_string(_OBJECT_KIND_MAX));
        ASSERT_TRUE(!object_kind_to_string(_OBJECT_KIND_INVALID));
        ASSERT_TRUE(!field_kind_to_string((FieldKind) 99));
}

/* The places of the objects, the journal's entries, Events and refused fields' names. */
static void test_entries(void) {
        ObjectPlace p = { .namespace = "ns", .pod = "game-0", .records_namespace = "rns",
                          .records_name = "sidecar-result" };
        static const char *const paths[] = {
                [OBJECT_POD] = "/api/v1/namespaces/ns/pods/game-0",
                [OBJECT_GAMESERVER] = "/apis/game.kruise.io/v1alpha1/namespaces/ns/gameservers/game-0",
                [OBJECT_RECORDS] = "/api/v1/namespaces/rns/configmaps/sidecar-result",
                [OBJECT_POD_STATUS] = "/api/v1/namespaces/ns/pods/game-0/status",
        };
        for (int k = 0; k < _OBJECT_KIND_MAX; k++) {
                _cleanup_(freep) char *path = NULL;
                ASSERT_EQ(object_api_path(&p, (ObjectKind) k, false, &path), 0);
                ASSERT_STREQ(path, paths[k]);
        }
        {
                _cleanup_(freep) char *path = NULL;
                ASSERT_EQ(object_api_path(&p, OBJECT_RECORDS, true, &path), 0);
                ASSERT_STREQ(path, "/api/v1/namespaces/rns/configmaps");
        }
        ASSERT_STREQ(object_place_namespace(&p, OBJECT_RECORDS), "rns");
        ASSERT_STREQ(object_place_name(&p, OBJECT_RECORDS), "sidecar-result");
        ASSERT_STREQ(object_place_namespace(&p, OBJECT_GAMESERVER), "ns");
        ASSERT_STREQ(object_place_name(&p, OBJECT_POD_STATUS), "game-0");

        /* A write and its acknowledgement, as journaled and replayed. */
        Object o = { .kind = OBJECT_POD };
        json_object *l = json_object_new_array();
        json_object_array_add(l, entry_field(FIELD_LABEL, "app", "x"));
        json_object_array_add(l, entry_field(FIELD_ANNOTATION, "a/b", "1"));
        json_object *set = entry_set(OBJECT_POD, 7, l);
        ASSERT_STREQ(patch_text(set), "{\"seq\":7,\"object\":\"pod\",\"set\":[{\"kind\":\"label\","
                     "\"key\":\"app\",\"value\":\"x\"},{\"kind\":\"annotation\",\"key\":\"a/b\","
                     "\"value\":\"1\"}]}");
        ASSERT_EQ(entry_apply_fields(&o, l, false, 7), 0);
        ASSERT_EQ(object_pending(&o), 2);
        json_object *ack = entry_ack(OBJECT_POD, "ns", "game-0", "u1", json_object_get(l));
        ASSERT_STREQ(patch_text(ack), "{\"object\":\"pod\",\"namespace\":\"ns\",\"name\":\"game-0\","
                     "\"uid\":\"u1\",\"ack\":[{\"kind\":\"label\",\"key\":\"app\",\"value\":\"x\"},"
                     "{\"kind\":\"annotation\",\"key\":\"a/b\",\"value\":\"1\"}]}");
        ASSERT_EQ(entry_apply_fields(&o, l, true, 0), 0);
        ASSERT_EQ(object_pending(&o), 0);
        /* The same values written again repeat what was acknowledged. */
        ASSERT_EQ(entry_apply_fields(&o, l, false, 8), 2);
        json_object_put(set);
        json_object_put(ack);
        object_done(&o);

        /* An entry is applied whole or not at all: a bad field anywhere in it (damage, a kind
         * this version does not know) leaves the object as it was. */
        Object half = { .kind = OBJECT_POD };
        static const char *const bad[] = {
                "[{\"kind\":\"label\",\"key\":\"app\",\"value\":\"x\"},{\"kind\":\"annot\",\"key\":\"a\",\"value\":\"1\"}]",
                "[{\"kind\":\"label\",\"key\":\"app\",\"value\":\"x\"},{\"kind\":\"annotation\",\"key\":\"a\"}]",
                "[{\"kind\":\"label\",\"key\":\"app\",\"value\":\"x\"},{\"kind\":\"annotation\",\"key\":\"a\",\"value\":null}]",
                "[{\"kind\":\"label\",\"key\":\"app\",\"value\":\"x\"},7]",
                "{\"kind\":\"label\",\"key\":\"app\",\"value\":\"x\"}",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                json_object *b = json_tokener_parse(bad[i]);
                ASSERT_TRUE(b != NULL);
                ASSERT_EQ(entry_apply_fields(&half, b, false, 9), -EBADMSG);
                ASSERT_EQ(entry_apply_fields(&half, b, true, 0), -EBADMSG);
                json_object_put(b);
        }
        ASSERT_EQ(object_pending(&half), 0);
        ASSERT_TRUE(!object_has_acked(&half));
        ASSERT_TRUE(!object_find(&half, FIELD_LABEL, "app") || !object_find(&half, FIELD_LABEL, "app")->desired);
        /* A journal of an earlier version holds one write as one entry per field (its
         * compaction split them): both replay. */
        json_object *l1 = json_tokener_parse("[{\"kind\":\"label\",\"key\":\"app\",\"value\":\"x\"}]");
        json_object *l2 = json_tokener_parse("[{\"kind\":\"annotation\",\"key\":\"a\",\"value\":\"1\"}]");
        ASSERT_EQ(entry_apply_fields(&half, l1, false, 4), 0);
        ASSERT_EQ(entry_apply_fields(&half, l2, false, 4), 0);
        ASSERT_EQ(object_pending(&half), 2);
        ASSERT_EQ(object_find(&half, FIELD_ANNOTATION, "a")->desired_seq, 4);
        json_object_put(l1);
        json_object_put(l2);
        object_done(&half);

        /* Events: the name fixed at acceptance, the body on the pod. */
        _cleanup_(freep) char *name = event_object_name("game-0", 0x10, 0x2);
        ASSERT_STREQ(name, "game-0.102");
        json_object *ev = json_tokener_parse("{\"type\":\"Normal\",\"reason\":\"HotUpdated\","
                                             "\"message\":\"v2\",\"time\":\"2026-01-01T00:00:00Z\","
                                             "\"name\":\"game-0.102\"}");
        json_object *body = event_object_new(ev, "ns", "game-0", "u1"), *v, *meta;
        ASSERT_TRUE(json_object_object_get_ex(body, "metadata", &meta));
        ASSERT_TRUE(json_object_object_get_ex(meta, "name", &v));
        ASSERT_STREQ(json_object_get_string(v), "game-0.102");
        ASSERT_TRUE(json_object_object_get_ex(body, "involvedObject", &v));
        ASSERT_STREQ(patch_text(v), "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"name\":\"game-0\","
                     "\"namespace\":\"ns\",\"uid\":\"u1\"}");
        ASSERT_TRUE(json_object_object_get_ex(body, "firstTimestamp", &v));
        ASSERT_STREQ(json_object_get_string(v), "2026-01-01T00:00:00Z");
        ASSERT_TRUE(!json_object_object_get_ex(body, "name", NULL));
        ASSERT_TRUE(!json_object_object_get_ex(body, "time", NULL));
        json_object_put(body);
        /* An event journaled without a name gets one generated. */
        json_object_object_del(ev, "name");
        body = event_object_new(ev, "ns", "game-0", NULL);
        ASSERT_TRUE(json_object_object_get_ex(body, "metadata", &meta));
        ASSERT_TRUE(json_object_object_get_ex(meta, "generateName", &v));
        ASSERT_STREQ(json_object_get_string(v), "game-0.");
        json_object_put(body);
        json_object_put(ev);

        Field f = { .kind = FIELD_ANNOTATION, .key = (char *) "a/b" };
        _cleanup_(freep) char *what = field_describe(&f);
        ASSERT_STREQ(what, "annotation \"a/b\"");
        /* opsState has no key: its name alone, no space before the ": why" that follows. */
        Field ops = { .kind = FIELD_OPS_STATE, .key = (char *) "" };
        _cleanup_(freep) char *ops_what = field_describe(&ops);
        ASSERT_STREQ(ops_what, "opsState");
}

int main(void) {
        test_kind_names();
        test_write_discipline();
        test_check_against_object();
        test_refused_field_isolated();
        test_merge_patch();
        test_fleet();
        test_prune();
        test_checks();
        test_kubeconfig();
        test_classify();
        test_watch_end();
        test_journal();
        test_pod_conditions();
        test_reassert_bound();
        test_entries();
        printf("storaged logic: all checks passed\n");
        return 0;
}
