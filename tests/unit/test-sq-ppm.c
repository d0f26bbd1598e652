/* The PodProbeMarkers' probes in the kruise.io/podprobe annotation's shape (sq_ppm_probes()):
 * Kruise's webhook's rules, label selectors, and markers that cannot be used. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "okg-test.h"
#include "probed-sq.h"

static const char POD[] =
        "{\"metadata\":{\"labels\":{\"game.kruise.io/owner-gss\":\"game\",\"tier\":\"a\"},"
        "\"annotations\":{\"kruise.io/podprobemarker-list\":\"game,other\"}},"
        "\"spec\":{\"containers\":[{\"name\":\"game\"},{\"name\":\"sidecar\"}],"
        "\"initContainers\":[{\"name\":\"init\"},{\"name\":\"helper\",\"restartPolicy\":\"Always\"}]}}";

#define PROBE(name, container, type)                                                          \
        "{\"name\":\"" name "\",\"containerName\":\"" container "\",\"podConditionType\":\"" type \
        "\",\"probe\":{\"tcpSocket\":{\"port\":80},\"periodSeconds\":3},"                     \
        "\"markerPolicy\":[{\"state\":\"Succeeded\",\"labels\":{\"a\":\"b\"}}]}"

static char *marker(const char *selector, const char *probes) {
        return sq_strf("{\"apiVersion\":\"apps.kruise.io/v1alpha1\",\"kind\":\"PodProbeMarker\","
                       "\"metadata\":{\"name\":\"game\"},\"spec\":{\"selector\":%s,\"probes\":[%s]}}",
                       selector, probes);
}

/* Runs sq_ppm_probes() over markers given as (state, text) pairs; returns its result. */
static int run(SqPod *pod, size_t n, const char *const *st, char **text, char **note) {
        SqPpm *v = calloc(n > 0 ? n : 1, sizeof(SqPpm)); /* calloc(0) may give NULL */
        int r;

        ASSERT_TRUE(v);
        for (size_t i = 0; i < n; i++) {
                v[i].name = sq_strf("m%zu", i);
                v[i].state = strdup(st[2 * i]);
                v[i].text = strdup(st[2 * i + 1]);
        }
        *text = *note = NULL;
        r = sq_ppm_probes(v, n, pod, text, note, NULL);
        sq_ppms_free(v, n);
        return r;
}

static void test_webhook_rules(SqPod *pod) {
        char *m0 = marker("{\"matchLabels\":{\"game.kruise.io/owner-gss\":\"game\"}}",
                          PROBE("idle", "game", "game.kruise.io/idle") ","
                          PROBE("nocond", "game", "") ","                      /* markerPolicy only */
                          PROBE("ghost", "nosuch", "game.kruise.io/ghost") "," /* no such container */
                          PROBE("init", "init", "game.kruise.io/init") ","     /* not restartable */
                          PROBE("helper", "helper", "game.kruise.io/helper") ","
                          PROBE("again", "game", "game.kruise.io/idle"));      /* same type */
        char *m1 = marker("{\"matchExpressions\":[{\"key\":\"tier\",\"operator\":\"In\",\"values\":[\"a\",\"b\"]}]}",
                          PROBE("idle", "game", "game.kruise.io/other") ","    /* same container/name */
                          PROBE("busy", "sidecar", "game.kruise.io/busy"));
        const char *st[] = { "found", m0, "found", m1 };
        char *text, *note;
        SqProbes probes = {};
        char err[256];

        ASSERT_EQ(run(pod, 2, st, &text, &note), 0);
        ASSERT_STREQ(note, "PodProbeMarker m0, m1");
        /* The annotation's shape: no markerPolicy, the probe as given; and its parser takes it. */
        ASSERT_TRUE(!strstr(text, "markerPolicy"));
        ASSERT_EQ(sq_probes_parse(text, strlen(text), &probes, err, sizeof err), 0);
        ASSERT_EQ(probes.n, 3);
        ASSERT_STREQ(probes.v[0].condition_type, "game.kruise.io/idle");
        ASSERT_STREQ(probes.v[1].condition_type, "game.kruise.io/helper");
        ASSERT_STREQ(probes.v[2].condition_type, "game.kruise.io/busy");
        ASSERT_EQ(probes.v[0].period, 3);
        ASSERT_TRUE(strstr(text, "{\"name\":\"idle\",\"containerName\":\"game\",\"probe\":"));
        sq_probes_done(&probes);
        free(text);
        free(note);
        free(m0);
        free(m1);
}

static void test_selectors(SqPod *pod) {
        static const struct {
                const char *selector;
                bool selects;
        } cases[] = {
                { "{\"matchLabels\":{\"tier\":\"a\"}}", true },
                { "{\"matchLabels\":{\"tier\":\"b\"}}", false },
                { "{\"matchLabels\":{\"tier\":\"a\",\"x\":\"y\"}}", false },
                { "{}", false },                              /* empty: nothing, as in Kruise */
                { "null", false },
                { "{\"matchExpressions\":[{\"key\":\"tier\",\"operator\":\"NotIn\",\"values\":[\"b\"]}]}", true },
                { "{\"matchExpressions\":[{\"key\":\"none\",\"operator\":\"NotIn\",\"values\":[\"b\"]}]}", true },
                { "{\"matchExpressions\":[{\"key\":\"tier\",\"operator\":\"NotIn\",\"values\":[\"a\"]}]}", false },
                { "{\"matchExpressions\":[{\"key\":\"tier\",\"operator\":\"Exists\"}]}", true },
                { "{\"matchExpressions\":[{\"key\":\"tier\",\"operator\":\"DoesNotExist\"}]}", false },
                { "{\"matchExpressions\":[{\"key\":\"none\",\"operator\":\"DoesNotExist\"}]}", true },
                { "{\"matchExpressions\":[{\"key\":\"tier\",\"operator\":\"In\",\"values\":[]}]}", false },
                { "{\"matchExpressions\":[{\"key\":\"tier\",\"operator\":\"Exists\",\"values\":[\"a\"]}]}", false },
                { "{\"matchExpressions\":[{\"key\":\"tier\",\"operator\":\"Gt\",\"values\":[\"1\"]}]}", false },
                { "{\"matchLabels\":{\"tier\":\"a\"},\"matchExpressions\":[{\"key\":\"x\",\"operator\":\"Exists\"}]}", false },
        };

        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                char *m = marker(cases[i].selector, PROBE("idle", "game", "game.kruise.io/idle"));
                const char *st[] = { "found", m };
                char *text, *note;

                ASSERT_EQ(run(pod, 1, st, &text, &note), 0);
                if (cases[i].selects) {
                        ASSERT_STREQ(note, "PodProbeMarker m0");
                        ASSERT_TRUE(strstr(text, "game.kruise.io/idle"));
                } else {
                        ASSERT_STREQ(note, "PodProbeMarker m0 no longer selects the pod: no probes");
                        ASSERT_STREQ(text, "[]");
                }
                free(text);
                free(note);
                free(m);
        }
}

static void test_unusable(SqPod *pod) {
        char *m = marker("{\"matchLabels\":{\"tier\":\"a\"}}", PROBE("idle", "game", "game.kruise.io/idle"));
        char *text, *note;

        {
                const char *st[] = { "found", m, "notfound", "PodProbeMarker ns/m1 was deleted" };
                ASSERT_EQ(run(pod, 2, st, &text, &note), -ENOENT);
                ASSERT_STREQ(note, "PodProbeMarker m1 is missing: PodProbeMarker ns/m1 was deleted");
                ASSERT_TRUE(!text);
                free(note);
        }
        {
                const char *st[] = { "error", "podprobemarkers.apps.kruise.io \"m0\" is forbidden" };
                ASSERT_EQ(run(pod, 1, st, &text, &note), -ENOENT);
                ASSERT_STREQ(note, "PodProbeMarker m0 cannot be read: podprobemarkers.apps.kruise.io \"m0\" is forbidden");
                free(note);
        }
        {
                const char *st[] = { "pending", "not read yet" };
                ASSERT_EQ(run(pod, 1, st, &text, &note), -ENOENT);
                ASSERT_STREQ(note, "PodProbeMarker m0 is not read yet: not read yet");
                free(note);
        }
        {
                const char *st[] = { "found", m, "found", "[1,2]" };
                ASSERT_EQ(run(pod, 2, st, &text, &note), -EINVAL);
                ASSERT_STREQ(note, "PodProbeMarker m1: not a PodProbeMarker object");
                free(note);
        }
        {
                const char *st[] = { "found", "{\"spec\":{\"probes\":{}}}" };
                ASSERT_EQ(run(pod, 1, st, &text, &note), -EINVAL);
                free(note);
        }
        ASSERT_EQ(run(pod, 0, NULL, &text, &note), -ENOENT);
        ASSERT_STREQ(note, "the pod names no PodProbeMarker");
        free(note);
        free(m);
}

/* A marker is read as strictly as the annotation (Kruise's client would not read the rest), a
 * spec that is not an object is no PodProbeMarker, and the annotation parser's complaint about
 * a probe names the marker and its probe. */
static void test_strict_and_origins(SqPod *pod) {
        char *m = marker("{\"matchLabels\":{\"tier\":\"a\"}}", PROBE("idle", "game", "game.kruise.io/idle"));
        char *trailing = sq_strf("%sxyz", m);
        char *text, *note;

        ASSERT_TRUE(m && trailing);
        {
                const char *st[] = { "found", trailing };
                ASSERT_EQ(run(pod, 1, st, &text, &note), -EINVAL);
                ASSERT_TRUE(strncmp(note, "PodProbeMarker m0: not a PodProbeMarker object: trailing "
                                    "data after the JSON object (offset ", 92) == 0);
                free(note);
        }
        {
                const char *st[] = { "found", "{\"spec\":{},}" };
                ASSERT_EQ(run(pod, 1, st, &text, &note), -EINVAL);
                ASSERT_TRUE(strncmp(note, "PodProbeMarker m0: not a PodProbeMarker object: not JSON: ", 58) == 0);
                free(note);
        }
        {
                const char *st[] = { "found", "/* c */{\"spec\":{}}" };
                ASSERT_EQ(run(pod, 1, st, &text, &note), -EINVAL);
                free(note);
        }
        {
                const char *st[] = { "found", "{\"spec\":5}" };
                ASSERT_EQ(run(pod, 1, st, &text, &note), -EINVAL);
                ASSERT_STREQ(note, "PodProbeMarker m0: not a PodProbeMarker object");
                free(note);
        }
        {
                const char *st[] = { "found", "{\"spec\":\"x\"}" };
                ASSERT_EQ(run(pod, 1, st, &text, &note), -EINVAL);
                free(note);
        }

        /* The second marker's first probe has no handler: the complaint names it, not the
         * merged list's [1]. */
        char *bad = marker("{\"matchLabels\":{\"tier\":\"a\"}}",
                           "{\"name\":\"b\",\"containerName\":\"game\",\"podConditionType\":"
                           "\"game.kruise.io/b\",\"probe\":{\"periodSeconds\":3}}");
        SqPpm v[2] = {
                { .name = (char *) "a", .state = (char *) "found", .text = m },
                { .name = (char *) "b", .state = (char *) "found", .text = bad },
        };
        char **origins = NULL, err[256] = "";
        SqProbes probes = {};

        ASSERT_TRUE(bad);
        ASSERT_EQ(sq_ppm_probes(v, 2, pod, &text, &note, &origins), 0);
        ASSERT_TRUE(origins);
        ASSERT_STREQ(origins[0], "PodProbeMarker a: probes[0]");
        ASSERT_STREQ(origins[1], "PodProbeMarker b: probes[0]");
        ASSERT_TRUE(!origins[2]);
        ASSERT_EQ(sq_probes_parse(text, strlen(text), &probes, err, sizeof err), -EINVAL);
        ASSERT_STREQ(err, "[1].probe: no exec, httpGet or tcpSocket");
        sq_ppm_error_origin(err, sizeof err, origins);
        ASSERT_STREQ(err, "PodProbeMarker b: probes[0].probe: no exec, httpGet or tcpSocket");
        /* Not about an entry, or one it does not know: as it was. */
        (void) snprintf(err, sizeof err, "must be a JSON array");
        sq_ppm_error_origin(err, sizeof err, origins);
        ASSERT_STREQ(err, "must be a JSON array");
        (void) snprintf(err, sizeof err, "[7].name: missing");
        sq_ppm_error_origin(err, sizeof err, origins);
        ASSERT_STREQ(err, "[7].name: missing");
        strv_free(origins);
        free(text);
        free(note);
        free(bad);
        free(trailing);
        free(m);
}

/* A pod whose spec lists no container (a local store's entry) takes every container. */
static void test_pod_without_containers(void) {
        const char json[] = "{\"metadata\":{\"labels\":{\"tier\":\"a\"}}}";
        char *m = marker("{\"matchLabels\":{\"tier\":\"a\"}}", PROBE("idle", "anything", "game.kruise.io/idle"));
        const char *st[] = { "found", m };
        SqPod pod = {};
        char *text, *note;

        ASSERT_EQ(sq_pod_parse(json, strlen(json), &pod), 0);
        ASSERT_TRUE(!pod.ppm_list);
        ASSERT_EQ(run(&pod, 1, st, &text, &note), 0);
        ASSERT_TRUE(strstr(text, "\"containerName\":\"anything\""));
        free(text);
        free(note);
        free(m);
        sq_pod_done(&pod);
}

int main(void) {
        SqPod pod = {};

        ASSERT_EQ(sq_pod_parse(POD, strlen(POD), &pod), 0);
        ASSERT_STREQ(pod.ppm_list, "game,other");
        ASSERT_EQ(pod.n_labels, 2);
        test_webhook_rules(&pod);
        test_selectors(&pod);
        test_unusable(&pod);
        test_strict_and_origins(&pod);
        test_pod_without_containers();
        sq_pod_done(&pod);
        return 0;
}
