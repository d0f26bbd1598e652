/* okgctl fleet's pure logic: order, limits, canary, failures, resume, annotations. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fleet-logic.h"
#include "okg-kube.h"
#include "okg-test.h"

static FleetPod *pods_new(size_t n) {
        FleetPod *p = calloc(n, sizeof *p);
        ASSERT_TRUE(p);
        for (size_t i = 0; i < n; i++) {
                char name[32];
                snprintf(name, sizeof name, "game-%zu", i);
                p[i].name = strdup(name);
        }
        return p;
}

static void set_ann(FleetPod *p, const char *json) {
        fleet_annotation_done(&p->ann);
        ASSERT_EQ(fleet_annotation_parse(json, &p->ann), 0);
}

static void test_limits(void) {
        unsigned v;

        ASSERT_EQ(fleet_parse_limit("5", 100, &v), 0);
        ASSERT_EQ(v, 5);
        ASSERT_EQ(fleet_parse_limit("20%", 51, &v), 0);
        ASSERT_EQ(v, 11); /* rounded up */
        ASSERT_EQ(fleet_parse_limit("1%", 3, &v), 0);
        ASSERT_EQ(v, 1);
        ASSERT_EQ(fleet_parse_limit("100%", 7, &v), 0);
        ASSERT_EQ(v, 7);
        ASSERT_EQ(fleet_parse_limit("0", 10, &v), -EINVAL);
        ASSERT_EQ(fleet_parse_limit("0%", 10, &v), -EINVAL);
        ASSERT_EQ(fleet_parse_limit("101%", 10, &v), -EINVAL);
        ASSERT_EQ(fleet_parse_limit("-1", 10, &v), -EINVAL);
        ASSERT_EQ(fleet_parse_limit("5x", 10, &v), -EINVAL);
        ASSERT_EQ(fleet_parse_limit("%", 10, &v), -EINVAL);
        ASSERT_EQ(fleet_parse_limit("", 10, &v), -EINVAL);
        ASSERT_EQ(fleet_parse_limit("99999999999", 10, &v), -EINVAL);
        ASSERT_EQ(fleet_parse_count("0", &v), 0);
        ASSERT_EQ(v, 0);
        ASSERT_EQ(fleet_parse_count("3", &v), 0);
        ASSERT_EQ(v, 3);
        ASSERT_EQ(fleet_parse_count("three", &v), -EINVAL);
}

static void test_names(void) {
        ASSERT_TRUE(fleet_name_cmp("game-2", "game-10") < 0);
        ASSERT_TRUE(fleet_name_cmp("game-10", "game-2") > 0);
        ASSERT_TRUE(fleet_name_cmp("game-02", "game-2") == 0);
        ASSERT_TRUE(fleet_name_cmp("a", "b") < 0);
        ASSERT_TRUE(fleet_name_cmp("game", "game-1") < 0);
}

static void test_program_name(void) {
        char buf[64];

        ASSERT_STREQ(okgctl_program_name("/usr/bin/okgctl", buf, sizeof buf), "okgctl");
        ASSERT_STREQ(okgctl_program_name("okgctl", buf, sizeof buf), "okgctl");
        ASSERT_STREQ(okgctl_program_name("/usr/local/bin/kubectl-okg", buf, sizeof buf),
                     "kubectl okg");
        ASSERT_STREQ(okgctl_program_name("kubectl-okg", buf, sizeof buf), "kubectl okg");
        ASSERT_STREQ(okgctl_program_name("./kubectl-okg_x-y", buf, sizeof buf), "kubectl okg-x y");
        ASSERT_STREQ(okgctl_program_name("./build/okgctl-dev", buf, sizeof buf), "okgctl-dev");
        ASSERT_STREQ(okgctl_program_name("kubectl-", buf, sizeof buf), "kubectl-");
        ASSERT_STREQ(okgctl_program_name(NULL, buf, sizeof buf), "okgctl");
        ASSERT_STREQ(okgctl_program_name("", buf, sizeof buf), "okgctl");
        ASSERT_STREQ(okgctl_program_name("/usr/bin/", buf, sizeof buf), "okgctl");
        ASSERT_STREQ(okgctl_program_name("kubectl-okg", buf, 8), "kubectl");
}

static void test_order(void) {
        FleetPod *p = pods_new(4);
        char *err = NULL;

        /* game-0 Allocated prio 0, game-1 None prio 0, game-2 Allocated prio 5, game-3 no GS */
        p[0].ops_state = strdup("Allocated");
        p[1].ops_state = strdup("None");
        p[2].ops_state = strdup("Allocated");
        p[2].update_priority = 5;
        ASSERT_EQ(fleet_order(p, 4, NULL, &err), 0);
        ASSERT_STREQ(p[0].name, "game-2"); /* highest priority, even Allocated */
        ASSERT_STREQ(p[1].name, "game-1"); /* then not Allocated */
        ASSERT_STREQ(p[2].name, "game-3");
        ASSERT_STREQ(p[3].name, "game-0");

        ASSERT_EQ(fleet_order(p, 4, "name", &err), 0);
        ASSERT_STREQ(p[0].name, "game-0");
        ASSERT_STREQ(p[3].name, "game-3");

        ASSERT_EQ(fleet_order(p, 4, "game-3, game-0", &err), 0);
        ASSERT_STREQ(p[0].name, "game-3");
        ASSERT_STREQ(p[1].name, "game-0");
        ASSERT_STREQ(p[2].name, "game-2");
        ASSERT_STREQ(p[3].name, "game-1");

        ASSERT_EQ(fleet_order(p, 4, "game-3,game-9", &err), -EINVAL);
        ASSERT_TRUE(err && strstr(err, "game-9"));
        free(err);
        err = NULL;
        ASSERT_EQ(fleet_order(p, 4, "game-1,game-1", &err), -EINVAL);
        ASSERT_TRUE(err && strstr(err, "twice"));
        free(err);
        err = NULL;
        ASSERT_EQ(fleet_order(p, 4, ",", &err), -EINVAL);
        free(err);
        fleet_pods_free(p, 4);
}

static void test_annotation(void) {
        FleetAnnotation a;

        ASSERT_EQ(fleet_annotation_parse(
                          "{\"version\":\"v3\",\"state\":\"RolledBack\",\"success\":false,"
                          "\"message\":\"check failed\",\"at\":\"2026-11-27T05:30:00.456Z\","
                          "\"currentVersion\":\"v2\",\"url\":\"http://x/y\"}", &a), 0);
        ASSERT_STREQ(a.version, "v3");
        ASSERT_STREQ(a.current_version, "v2");
        ASSERT_STREQ(a.state, "RolledBack");
        ASSERT_TRUE(!a.success && a.present);
        fleet_annotation_done(&a);
        ASSERT_EQ(fleet_annotation_parse("{\"state\":\"Succeeded\",\"currentVersion\":null}", &a), 0);
        ASSERT_TRUE(a.current_version == NULL);
        fleet_annotation_done(&a);
        ASSERT_EQ(fleet_annotation_parse("not json", &a), -EBADMSG);
        ASSERT_TRUE(!a.present);
        ASSERT_EQ(fleet_annotation_parse("[1]", &a), -EBADMSG);
        ASSERT_EQ(fleet_annotation_parse("{\"version\":\"v2\"}", &a), -EBADMSG);       /* no state */
        ASSERT_EQ(fleet_annotation_parse("{\"state\":\"x\",\"success\":\"yes\"}", &a), -EBADMSG);
        ASSERT_EQ(fleet_annotation_parse("{\"state\":7}", &a), -EBADMSG);
        ASSERT_EQ(fleet_annotation_parse(NULL, &a), -EBADMSG);
}

static void test_states(void) {
        ASSERT_TRUE(fleet_state_ok("Succeeded") && fleet_state_ok("Unchanged"));
        ASSERT_TRUE(!fleet_state_ok("ReloadFailed") && !fleet_state_ok(NULL));
        ASSERT_TRUE(fleet_state_recorded("Succeeded") && fleet_state_recorded("RolledBack"));
        ASSERT_TRUE(!fleet_state_recorded("Busy") && !fleet_state_recorded("Invalid"));
        ASSERT_TRUE(!fleet_state_recorded("VersionConflict") && !fleet_state_recorded(NULL));
}

static void test_in_flight_limit(void) {
        FleetPod *p = pods_new(5);
        FleetPlan plan;
        FleetPod *a, *b, *c;

        fleet_plan_init(&plan, p, 5, "v2", 0, 2, 0);
        a = fleet_plan_next(&plan);
        b = fleet_plan_next(&plan);
        ASSERT_TRUE(a && b && a != b);
        ASSERT_TRUE(fleet_plan_next(&plan) == NULL); /* 2 in flight */
        fleet_plan_finish(&plan, a, true);
        c = fleet_plan_next(&plan);
        ASSERT_TRUE(c && c != a && c != b);
        ASSERT_TRUE(fleet_plan_next(&plan) == NULL);
        fleet_plan_finish(&plan, b, false);          /* no failure limit: keeps going */
        fleet_plan_finish(&plan, c, true);
        while ((a = fleet_plan_next(&plan)))
                fleet_plan_finish(&plan, a, true);
        ASSERT_TRUE(fleet_plan_finished(&plan));
        ASSERT_TRUE(!fleet_plan_complete(&plan));
        ASSERT_EQ(plan.done, 4);
        ASSERT_EQ(plan.failures, 1);
        fleet_pods_free(p, 5);
}

static void test_canary(void) {
        FleetPod *p = pods_new(5);
        FleetPlan plan;
        FleetPod *a, *b;

        /* Canaries 2 with 10 in flight: only the 2 canaries start. */
        fleet_plan_init(&plan, p, 5, "v2", 2, 10, 0);
        a = fleet_plan_next(&plan);
        b = fleet_plan_next(&plan);
        ASSERT_TRUE(a && b && a->canary && b->canary);
        ASSERT_TRUE(fleet_plan_next(&plan) == NULL);
        fleet_plan_finish(&plan, a, true);
        ASSERT_TRUE(fleet_plan_next(&plan) == NULL); /* b still running */
        fleet_plan_finish(&plan, b, false);           /* a canary failed: stop */
        ASSERT_TRUE(plan.stop_reason != NULL);
        ASSERT_TRUE(fleet_plan_next(&plan) == NULL);
        ASSERT_TRUE(fleet_plan_finished(&plan));
        ASSERT_EQ(fleet_plan_left(&plan), 3);
        for (size_t i = 2; i < 5; i++)
                ASSERT_EQ(p[i].phase, FLEET_PENDING);   /* untouched */

        /* Canaries that succeed open the gate. */
        fleet_plan_init(&plan, p, 5, "v2", 1, 3, 0);
        a = fleet_plan_next(&plan);
        ASSERT_TRUE(a && a->canary && fleet_plan_next(&plan) == NULL);
        fleet_plan_finish(&plan, a, true);
        ASSERT_TRUE(fleet_plan_next(&plan) && fleet_plan_next(&plan) && fleet_plan_next(&plan));
        ASSERT_TRUE(fleet_plan_next(&plan) == NULL);
        fleet_pods_free(p, 5);
}

static void test_max_failures(void) {
        FleetPod *p = pods_new(6);
        FleetPlan plan;
        FleetPod *a, *b, *c;

        fleet_plan_init(&plan, p, 6, "v2", 0, 3, 2);
        a = fleet_plan_next(&plan);
        b = fleet_plan_next(&plan);
        c = fleet_plan_next(&plan);
        fleet_plan_finish(&plan, a, false);
        ASSERT_TRUE(plan.stop_reason == NULL);
        a = fleet_plan_next(&plan);
        ASSERT_TRUE(a);
        fleet_plan_finish(&plan, b, false);
        ASSERT_TRUE(plan.stop_reason != NULL);
        ASSERT_TRUE(fleet_plan_next(&plan) == NULL);
        ASSERT_TRUE(!fleet_plan_finished(&plan));    /* two still in flight finish */
        fleet_plan_finish(&plan, c, true);
        fleet_plan_finish(&plan, a, true);
        ASSERT_TRUE(fleet_plan_finished(&plan));
        ASSERT_EQ(fleet_plan_left(&plan), 2);
        fleet_pods_free(p, 6);
}

static void test_resume(void) {
        FleetPod *p = pods_new(4);
        FleetPlan plan;
        FleetPod *a;
        char *s;

        set_ann(&p[0], "{\"version\":\"v2\",\"state\":\"Succeeded\",\"success\":true,\"currentVersion\":\"v2\"}");
        set_ann(&p[1], "{\"version\":\"v2\",\"state\":\"ReloadFailed\",\"success\":false,\"currentVersion\":\"v1\"}");
        set_ann(&p[2], "{\"version\":\"v1\",\"state\":\"Succeeded\",\"success\":true,\"currentVersion\":\"v1\"}");
        fleet_plan_init(&plan, p, 4, "v2", 1, 5, 0);
        ASSERT_EQ(p[0].phase, FLEET_AT_VERSION);
        ASSERT_EQ(plan.at_version, 1);
        a = fleet_plan_next(&plan);
        ASSERT_TRUE(a == &p[1] && a->canary);        /* the canary is the first pod to update */
        fleet_plan_finish(&plan, a, true);
        while ((a = fleet_plan_next(&plan)))
                fleet_plan_finish(&plan, a, true);
        ASSERT_TRUE(fleet_plan_complete(&plan));

        s = fleet_version_summary(p, 4);
        ASSERT_STREQ(s, "v1: 2, none: 1, v2: 1, failed: 1");
        free(s);

        /* Everything at the version: nothing to start, complete at once. */
        for (size_t i = 0; i < 4; i++)
                set_ann(&p[i], "{\"version\":\"v2\",\"state\":\"Unchanged\",\"success\":true,\"currentVersion\":\"v2\"}");
        fleet_plan_init(&plan, p, 4, "v2", 2, 5, 1);
        ASSERT_TRUE(fleet_plan_next(&plan) == NULL);
        ASSERT_TRUE(fleet_plan_finished(&plan) && fleet_plan_complete(&plan));
        s = fleet_version_summary(p, 4);
        ASSERT_STREQ(s, "v2: 4");
        free(s);
        s = fleet_version_summary(p, 0);
        ASSERT_STREQ(s, "no pods");
        free(s);
        /* An annotation that is not an outcome object (fleet.c marks it) is not "none". */
        fleet_annotation_done(&p[3].ann);
        p[3].ann = (FleetAnnotation) { .unreadable = true };
        s = fleet_version_summary(p, 4);
        ASSERT_STREQ(s, "v2: 3, unreadable: 1");
        free(s);
        fleet_pods_free(p, 4);
}

/* KUBECONFIG=a:b as kubectl reads it: the first file to name a context, cluster or user gives
 * it, current-context comes from the first file that sets one, relative paths resolve against
 * the file that holds them, and a bad file is an error naming it. */
static void test_kubeconfig_merge(void) {
        static const char a[] =
                "kind: Config\ncurrent-context: play\n"
                "contexts:\n- name: play\n  context: {cluster: k, user: u, namespace: games}\n"
                "clusters:\n- name: k\n  cluster: {server: \"https://first:6443\", certificate-authority: ca.crt}\n";
        static const char b[] =
                "current-context: other\n"
                "contexts:\n- name: play\n  context: {cluster: x, user: x}\n"
                "- name: other\n  context: {cluster: k2, user: u}\n"
                "clusters:\n- name: k\n  cluster: {server: \"https://second:6443\"}\n"
                "- name: k2\n  cluster: {server: \"https://k2:6443\", certificate-authority: ../k2.crt}\n"
                "users:\n- name: u\n  user: {tokenFile: token}\n";
        static const char no_current[] = "kind: Config\ncurrent-context: \"\"\n";
        KubeconfigFile v[3] = {
                { "/a/config", "/a", a, sizeof a - 1 },
                { "/b/config", "/b", b, sizeof b - 1 },
        };
        KubeConfig *c = NULL;
        char *err = NULL;

        /* The context and cluster of a, the user only b has (its tokenFile against /b). */
        ASSERT_EQ(kubeconfig_parse_merged(v, 2, NULL, &c, &err), 0);
        ASSERT_STREQ(c->server, "https://first:6443");
        ASSERT_STREQ(c->ca_file, "/a/ca.crt");
        ASSERT_STREQ(c->token_file, "/b/token");
        ASSERT_STREQ(c->namespace, "games");
        kube_config_free(c);
        /* --context picks b's context; its cluster is b's own. */
        ASSERT_EQ(kubeconfig_parse_merged(v, 2, "other", &c, &err), 0);
        ASSERT_STREQ(c->server, "https://k2:6443");
        ASSERT_STREQ(c->ca_file, "/b/../k2.crt");
        kube_config_free(c);
        /* b first: its current-context and its "play" win. */
        v[2] = v[0];
        ASSERT_EQ(kubeconfig_parse_merged(v + 1, 2, NULL, &c, &err), 0);
        ASSERT_STREQ(c->server, "https://k2:6443");
        kube_config_free(c);
        ASSERT_EQ(kubeconfig_parse_merged(v + 1, 2, "play", &c, &err), -EINVAL);
        ASSERT_STREQ(err, "the cluster of context \"play\" is not defined in /b/config, /a/config");
        free(err);
        err = NULL;
        /* An empty current-context and an empty file set nothing: the next file's counts. */
        v[0] = (KubeconfigFile) { "/e/config", "/e", no_current, sizeof no_current - 1 };
        v[2] = (KubeconfigFile) { "/e/empty", "/e", "", 0 };
        ASSERT_EQ(kubeconfig_parse_merged(v, 3, NULL, &c, &err), 0);
        ASSERT_STREQ(c->server, "https://k2:6443");
        kube_config_free(c);
        ASSERT_EQ(kubeconfig_parse_merged(v, 1, NULL, &c, &err), -EINVAL);
        ASSERT_STREQ(err, "no current-context in /e/config");
        free(err);
        err = NULL;

        /* A bad file is an error naming it, even after a file that has all that is needed. */
        v[0] = (KubeconfigFile) { "/a/config", "/a", a, sizeof a - 1 };
        v[1] = (KubeconfigFile) { "/b/config", "/b", b, sizeof b - 1 };
        v[2] = (KubeconfigFile) { "/c/config", "/c", "- a list\n", 9 };
        ASSERT_EQ(kubeconfig_parse_merged(v, 3, NULL, &c, &err), -EINVAL);
        ASSERT_STREQ(err, "/c/config: a kubeconfig is a mapping");
        free(err);
        err = NULL;
        v[2] = (KubeconfigFile) { "/c/config", "/c", "clusters: [\n", 12 };
        ASSERT_EQ(kubeconfig_parse_merged(v, 3, NULL, &c, &err), -EINVAL);
        ASSERT_TRUE(strncmp(err, "/c/config:", 10) == 0);
        free(err);
}

int main(void) {
        test_limits();
        test_names();
        test_program_name();
        test_order();
        test_annotation();
        test_states();
        test_in_flight_limit();
        test_canary();
        test_max_failures();
        test_resume();
        test_kubeconfig_merge();
        return 0;
}
