/* The service_quality plugin's pure logic: the kruise.io/podprobe annotation as Kruise writes
 * it, the pod facts, where a probe goes, Kruise's thresholds and its result message. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "okg-test.h"
#include "probed-sq-config.h"
#include "probed-sq.h"

/* Written as Kruise's webhook writes it (Go's json.Marshal of []PodContainerProbe) for OKG's
 * PodProbeMarker of a GameServerSet with three serviceQualities. */
static const char annotation[] =
        "[{\"name\":\"idle\",\"containerName\":\"game\",\"probe\":{\"httpGet\":{\"path\":\"/idle\","
        "\"port\":8080,\"scheme\":\"HTTP\",\"httpHeaders\":[{\"name\":\"X-Probe\",\"value\":\"1\"}]},"
        "\"initialDelaySeconds\":10,\"timeoutSeconds\":5,\"periodSeconds\":3,\"successThreshold\":1,"
        "\"failureThreshold\":3},\"podConditionType\":\"game.kruise.io/idle\"},"
        "{\"name\":\"port\",\"containerName\":\"game\",\"probe\":{\"tcpSocket\":{\"port\":\"http\"},"
        "\"initialDelaySeconds\":10,\"timeoutSeconds\":5,\"periodSeconds\":3,\"successThreshold\":1,"
        "\"failureThreshold\":3},\"podConditionType\":\"game.kruise.io/port\"},"
        "{\"name\":\"healthy\",\"containerName\":\"game\",\"probe\":{\"exec\":{\"command\":[\"bash\","
        "\"/data/probe.sh\"]}},\"podConditionType\":\"game.kruise.io/healthy\"}]";

static const char pod[] =
        "{\"metadata\":{\"name\":\"gs-0\",\"annotations\":{\"kruise.io/podprobe\":\"[]\"}},"
        "\"spec\":{\"nodeName\":\"vk-1\",\"shareProcessNamespace\":true,\"containers\":[{\"name\":"
        "\"game\",\"ports\":[{\"name\":\"http\",\"containerPort\":8080},{\"containerPort\":9}]},"
        "{\"name\":\"sidecar\"}]},\"status\":{\"podIP\":\"198.18.0.2\",\"conditions\":[{\"type\":"
        "\"Ready\",\"status\":\"True\"},{\"type\":\"game.kruise.io/idle\",\"status\":\"False\","
        "\"message\":\"busy\"}],\"containerStatuses\":[{\"name\":\"game\",\"containerID\":"
        "\"containerd://abc123\",\"state\":{\"running\":{\"startedAt\":\"2026-12-06T17:00:00Z\"}}},"
        "{\"name\":\"sidecar\",\"state\":{\"waiting\":{}}}]}}";

static void test_parse(void) {
        SqProbes p = {};
        char err[256] = "";

        ASSERT_EQ(sq_probes_parse(annotation, strlen(annotation), &p, err, sizeof err), 0);
        ASSERT_EQ(p.n, 3);
        ASSERT_STREQ(p.v[0].name, "idle");
        ASSERT_STREQ(p.v[0].container, "game");
        ASSERT_STREQ(p.v[0].condition_type, "game.kruise.io/idle");
        ASSERT_EQ(p.v[0].handler, SQ_HANDLER_HTTP);
        ASSERT_STREQ(p.v[0].scheme, "http");
        ASSERT_STREQ(p.v[0].path, "/idle");
        ASSERT_EQ(p.v[0].port, 8080);
        ASSERT_EQ(p.v[0].n_headers, 1);
        ASSERT_STREQ(p.v[0].headers[0].name, "X-Probe");
        ASSERT_EQ(p.v[0].initial_delay, 10);
        ASSERT_EQ(p.v[0].timeout, 5);
        ASSERT_EQ(p.v[0].period, 3);
        ASSERT_EQ(p.v[0].failure_threshold, 3);
        ASSERT_EQ(p.v[1].handler, SQ_HANDLER_TCP);
        ASSERT_STREQ(p.v[1].port_name, "http");
        ASSERT_EQ(p.v[2].handler, SQ_HANDLER_EXEC);
        ASSERT_STREQ(p.v[2].command[0], "bash");
        ASSERT_STREQ(p.v[2].command[1], "/data/probe.sh");
        ASSERT_TRUE(p.v[2].command[2] == NULL);
        /* Kruise's daemon: absent means 1 (second, in a row). */
        ASSERT_EQ(sq_probe_timeout(&p.v[2]), 1);
        ASSERT_EQ(sq_probe_period(&p.v[2]), 1);
        ASSERT_EQ(sq_probe_initial_delay(&p.v[2]), 1);

        SqProbes q = {};
        ASSERT_EQ(sq_probes_parse(annotation, strlen(annotation), &q, err, sizeof err), 0);
        ASSERT_TRUE(sq_probes_equal(&p, &q));
        free(q.v[1].port_name);
        q.v[1].port_name = strdup("other");
        ASSERT_TRUE(!sq_probes_equal(&p, &q));
        sq_probes_done(&q);
        sq_probes_done(&p);

        ASSERT_EQ(sq_probes_parse("[]", 2, &p, err, sizeof err), 0);
        ASSERT_EQ(p.n, 0);
        sq_probes_done(&p);
}

/* text is refused with a reason that holds msg (exact: that is msg). */
static void expect_refused(const char *text, const char *msg, bool exact) {
        SqProbes p = {};
        char err[256] = "";
        int r = sq_probes_parse(text, strlen(text), &p, err, sizeof err);
        if (r >= 0 || !(exact ? streq(err, msg) : !!strstr(err, msg))) {
                fprintf(stderr, "input %s: r=%d err \"%s\", expected \"%s\"\n", text, r, err, msg);
                exit(1);
        }
        ASSERT_EQ(p.n, 0);
}

static void expect_bad(const char *text, const char *msg) {
        expect_refused(text, msg, false);
}

static void expect_exact(const char *text, const char *msg) {
        expect_refused(text, msg, true);
}

/* What Kruise accepts: null (no probes), white space around the array, a host name for
 * tcpSocket, a path with a space (escaped when sent). */
static void test_parse_lenient(void) {
        const char *ok[] = {
                "null", " null\n", "[]\n",
                "[{\"name\":\"a\",\"containerName\":\"c\",\"podConditionType\":\"t\",\"probe\":"
                "{\"tcpSocket\":{\"port\":80,\"host\":\"localhost\"}}}]",
                "[{\"name\":\"a\",\"containerName\":\"c\",\"podConditionType\":\"t\",\"probe\":"
                "{\"tcpSocket\":{\"port\":80,\"host\":\"::1\"}}}]",
                "[{\"name\":\"a\",\"containerName\":\"c\",\"podConditionType\":\"t\",\"probe\":"
                "{\"httpGet\":{\"port\":80,\"path\":\"/my state\"}}}]",
        };
        char *e;

        for (size_t i = 0; i < ELEMENTSOF(ok); i++) {
                SqProbes p = {};
                char err[256] = "";
                if (sq_probes_parse(ok[i], strlen(ok[i]), &p, err, sizeof err) < 0) {
                        fprintf(stderr, "input %s refused: %s\n", ok[i], err);
                        exit(1);
                }
                ASSERT_EQ(p.n, i < 3 ? 0u : 1u);
                sq_probes_done(&p);
        }

        e = sq_url_path_escape("/my state?x=a b");
        ASSERT_STREQ(e, "/my%20state?x=a%20b");
        free(e);
        e = sq_url_path_escape("/a%20b/100%/\"<>\\^`{|}\t\r\n\xc3\xa9");
        ASSERT_STREQ(e, "/a%20b/100%25/%22%3C%3E%5C%5E%60%7B%7C%7D%09%0D%0A%C3%A9");
        free(e);
        e = sq_url_path_escape("/plain/path;x=1&y=2");
        ASSERT_STREQ(e, "/plain/path;x=1&y=2");
        free(e);
}

/* The values handed on belong to the condition type: a new runner for the same type (a new
 * probe list) finds them. */
static void test_sent_book(void) {
        SqSentBook b = {};
        SqHistory *idle = sq_sent_book_get(&b, "game.kruise.io/idle");

        ASSERT_TRUE(idle != NULL);
        ASSERT_EQ(sq_history_push(idle, true, "None"), 0);
        for (int i = 0; i < 20; i++) {
                char t[32];
                snprintf(t, sizeof t, "game.kruise.io/t%d", i);
                ASSERT_TRUE(sq_sent_book_get(&b, t) != NULL);
        }
        ASSERT_TRUE(sq_sent_book_get(&b, "game.kruise.io/idle") == idle);
        ASSERT_TRUE(sq_history_has(sq_sent_book_get(&b, "game.kruise.io/idle"), "True", "None"));
        ASSERT_EQ(sq_sent_book_get(&b, "game.kruise.io/t3")->n, 0);
        ASSERT_EQ(b.n, 21);
        sq_sent_book_done(&b);
        ASSERT_EQ(b.n, 0);
}

/* A refusal quotes what it refuses on one line: a line break in the input is shown escaped
 * (found by fuzz-sq-annotation). */
static void expect_one_line(const char *text) {
        SqProbes p = {};
        char err[256] = "";
        ASSERT_TRUE(sq_probes_parse(text, strlen(text), &p, err, sizeof err) < 0);
        ASSERT_TRUE(err[0] && !strchr(err, '\n') && !strchr(err, '\r'));
}

static void test_parse_bad(void) {
        expect_one_line("[{\"name\":\"a\",\"containerName\":\"c\",\"podConditionType\":"
                        "\"game.kruise.io\\n%%\\no\",\"probe\":{\"tcpSocket\":{\"port\":80}}}]");
        expect_one_line("[{\"name\":\"a\",\"containerName\":\"c\",\"podConditionType\":\"t\\r\","
                        "\"probe\":{\"tcpSocket\":{\"port\":80}}},{\"name\":\"b\",\"containerName\":"
                        "\"c\",\"podConditionType\":\"t\\r\",\"probe\":{\"tcpSocket\":{\"port\":81}}}]");
        /* One clear reason each, never the tokener's state ("continue", "success"). */
        expect_exact("", "empty (white space only): not a JSON array");
        expect_exact(" \n", "empty (white space only): not a JSON array");
        expect_exact("[", "not JSON: the text ends before the JSON array does");
        expect_exact("[{\"name\":\"x\",", "not JSON: the text ends before the JSON array does");
        expect_exact("[] x", "trailing data after the JSON array (offset 3)");
        expect_exact("[]\n[]", "trailing data after the JSON array (offset 3)");
        expect_bad("[}", "not JSON: ");
        expect_bad("tru", "not JSON: ");
        expect_exact("1", "must be a JSON array");
        /* Only a name or an IP address is a tcpSocket host. */
        expect_bad("[{\"name\":\"a\",\"containerName\":\"c\",\"podConditionType\":\"t\",\"probe\":"
                   "{\"tcpSocket\":{\"port\":80,\"host\":\"a/b\"}}}]",
                   "[0].probe.tcpSocket.host: not a host name or IP");
        expect_bad("[{\"name\":\"a\",\"containerName\":\"c\",\"podConditionType\":\"t\",\"probe\":"
                   "{\"tcpSocket\":{\"port\":80,\"host\":\"a:b\"}}}]",
                   "[0].probe.tcpSocket.host: not a host name or IP");
        expect_bad("{}", "must be a JSON array");
        expect_bad("[1]", "[0]: must be an object");
        expect_bad("[{\"containerName\":\"c\",\"podConditionType\":\"t\",\"probe\":{}}]",
                   "[0]: \"name\" is missing");
        expect_bad("[{\"name\":\"a\",\"containerName\":\"c\",\"podConditionType\":\"t\",\"probe\":{}}]",
                   "[0].probe: no exec, httpGet or tcpSocket");
        expect_bad("[{\"name\":\"a\",\"containerName\":\"c\",\"podConditionType\":\"t\",\"probe\":"
                   "{\"tcpSocket\":{\"port\":0}}}]",
                   "[0].probe.tcpSocket.port: must be between 1 and 65535");
        expect_bad("[{\"name\":\"a\",\"containerName\":\"c\",\"podConditionType\":\"t\",\"probe\":"
                   "{\"tcpSocket\":{\"port\":80},\"periodSeconds\":-1}}]",
                   "[0].probe.periodSeconds: must be between 0");
        expect_bad("[{\"name\":\"a\",\"containerName\":\"c\",\"podConditionType\":\"t\",\"probe\":"
                   "{\"tcpSocket\":{\"port\":80},\"exec\":{\"command\":[\"x\"]}}}]",
                   "more than one handler");
        expect_bad("[{\"name\":\"a\",\"containerName\":\"c\",\"podConditionType\":\"t\",\"probe\":"
                   "{\"exec\":{\"command\":[]}}}]",
                   "[0].probe.exec.command: must be a non-empty array");
        expect_bad("[{\"name\":\"a\",\"containerName\":\"c\",\"podConditionType\":\"t\",\"probe\":"
                   "{\"grpc\":{\"port\":80}}}]",
                   "gRPC probes are not supported");
        expect_bad("[{\"name\":\"a\",\"containerName\":\"c\",\"podConditionType\":\"t\",\"probe\":"
                   "{\"httpGet\":{\"port\":80,\"scheme\":\"FTP\"}}}]",
                   "[0].probe.httpGet.scheme: must be HTTP or HTTPS");
        expect_bad("[{\"name\":\"a\",\"containerName\":\"c\",\"podConditionType\":\"t\",\"probe\":"
                   "{\"httpGet\":{\"port\":80,\"httpHeaders\":[{\"name\":\"A\",\"value\":\"x\\r\\ny\"}]}}}]",
                   "not a valid header");
        /* Go refuses to send any control character but a tab, so kubelet could not either. */
        expect_bad("[{\"name\":\"a\",\"containerName\":\"c\",\"podConditionType\":\"t\",\"probe\":"
                   "{\"httpGet\":{\"port\":80,\"httpHeaders\":[{\"name\":\"A\",\"value\":\"x\\u0001y\"}]}}}]",
                   "not a valid header");
        expect_bad("[{\"name\":\"a\",\"containerName\":\"c\",\"podConditionType\":\"t\",\"probe\":"
                   "{\"tcpSocket\":{\"port\":80}}},{\"name\":\"b\",\"containerName\":\"c\","
                   "\"podConditionType\":\"t\",\"probe\":{\"tcpSocket\":{\"port\":81}}}]",
                   "[1].podConditionType: \"t\" is also the type of [0]");
        expect_bad("[{\"name\":\"a\",\"containerName\":\"c\",\"podConditionType\":\"Ready\","
                   "\"probe\":{\"tcpSocket\":{\"port\":80}}}]", "is kubelet's own");
        expect_bad("[{\"name\":\"a\",\"containerName\":\"c\",\"podConditionType\":\"game/bad type\","
                   "\"probe\":{\"tcpSocket\":{\"port\":80}}}]", "is not a qualified name");
}

static void test_pod(void) {
        SqPod p = {};
        SqProbes probes = {};
        char err[256] = "", *url = NULL;
        const SqContainer *c;
        int port = 0;

        ASSERT_EQ(sq_pod_parse(pod, strlen(pod), &p), 0);
        ASSERT_STREQ(p.annotation, "[]");
        ASSERT_STREQ(p.pod_ip, "198.18.0.2");
        ASSERT_STREQ(p.node_name, "vk-1");
        ASSERT_TRUE(p.share_process_namespace);
        ASSERT_TRUE(p.has_statuses);
        c = sq_pod_container(&p, "game");
        ASSERT_TRUE(c);
        ASSERT_STREQ(c->id, "abc123");
        ASSERT_TRUE(c->running);
        ASSERT_EQ(c->started_usec, 1796576400ULL * 1000000);
        ASSERT_EQ(c->n_ports, 1);
        ASSERT_TRUE(!sq_pod_container(&p, "sidecar")->running);
        ASSERT_STREQ(sq_pod_condition(&p, "game.kruise.io/idle")->message, "busy");
        ASSERT_TRUE(!sq_pod_condition(&p, "game.kruise.io/port"));

        ASSERT_EQ(sq_probes_parse(annotation, strlen(annotation), &probes, err, sizeof err), 0);
        ASSERT_EQ(sq_probe_url(&probes.v[0], &p, c, &url, err, sizeof err), 0);
        ASSERT_STREQ(url, "http://198.18.0.2:8080/idle");
        free(url);
        ASSERT_EQ(sq_probe_resolve_port(&probes.v[1], c, &port, err, sizeof err), 0);
        ASSERT_EQ(port, 8080);
        /* A name the container does not have. */
        free(probes.v[1].port_name);
        probes.v[1].port_name = strdup("metrics");
        ASSERT_EQ(sq_probe_resolve_port(&probes.v[1], c, &port, err, sizeof err), -ENOENT);
        ASSERT_TRUE(strstr(err, "\"metrics\" is not a port of container game"));
        /* No pod IP yet: loopback; IPv6 in brackets. */
        ASSERT_STREQ(sq_probe_host(&probes.v[0], NULL), "127.0.0.1");
        free(p.pod_ip);
        p.pod_ip = strdup("fd00::2");
        ASSERT_EQ(sq_probe_url(&probes.v[0], &p, c, &url, err, sizeof err), 0);
        ASSERT_STREQ(url, "http://[fd00::2]:8080/idle");
        free(url);

        /* Initial delay counts from the container's start. */
        uint64_t wait;
        ASSERT_TRUE(!sq_probe_due(&probes.v[0], c, c->started_usec + 9000000, &wait));
        ASSERT_EQ(wait, 1000000);
        ASSERT_TRUE(sq_probe_due(&probes.v[0], c, c->started_usec + 10000000, &wait));
        sq_probes_done(&probes);
        sq_pod_done(&p);

        ASSERT_EQ(sq_pod_parse("[]", 2, &p), -EINVAL);
        ASSERT_EQ(sq_pod_parse("{", 1, &p), -EINVAL);
}

static void test_time(void) {
        uint64_t t = 0;
        ASSERT_EQ(sq_parse_time("1970-01-01T00:00:01Z", &t), 0);
        ASSERT_EQ(t, 1000000);
        ASSERT_EQ(sq_parse_time("1970-01-01T01:00:01.5+01:00", &t), 0);
        ASSERT_EQ(t, 1500000);
        ASSERT_EQ(sq_parse_time("1970-01-01T00:00:01", &t), -EINVAL);
        ASSERT_EQ(sq_parse_time("yesterday", &t), -EINVAL);
}

static void test_messages(void) {
        char big[2000], *m;
        static const char e_acute[2] = "\xc3\xa9"; /* U+00E9 in UTF-8, without a terminator */
        bool ok;

        m = sq_http_message(200, "idle", 4, &ok);
        ASSERT_TRUE(ok);
        ASSERT_STREQ(m, "idle");
        free(m);
        /* A redirect kubelet stops at (another host): success with its warning. */
        m = sq_http_message(302, "", 0, &ok);
        ASSERT_TRUE(ok);
        ASSERT_STREQ(m, "Probe terminated redirects, Response body: ");
        free(m);
        m = sq_http_message(301, "moved", 5, &ok);
        ASSERT_TRUE(ok);
        ASSERT_STREQ(m, "Probe terminated redirects, Response body: moved");
        free(m);
        m = sq_http_message(503, "down", 4, &ok);
        ASSERT_TRUE(!ok);
        ASSERT_STREQ(m, "HTTP probe failed with statuscode: 503");
        free(m);

        /* Longer than 1024 characters: cut to 1024 bytes; 1024 exactly stays. */
        memset(big, 'a', sizeof big);
        m = sq_message_make(big, sizeof big);
        ASSERT_EQ(strlen(m), 1024);
        free(m);
        m = sq_message_make(big, 1024);
        ASSERT_EQ(strlen(m), 1024);
        free(m);
        /* 600 two-byte characters are 1200 bytes but fewer than 1024 characters: Kruise keeps
         * them whole, okg-storaged takes 1024 bytes at most: cut at a character's end. */
        for (size_t i = 0; i < 600; i++)
                memcpy(big + 2 * i, e_acute, sizeof e_acute);
        m = sq_message_make(big, 1200);
        ASSERT_EQ(strlen(m), 1024);
        free(m);
        big[0] = 'x';
        for (size_t i = 0; i < 600; i++)
                memcpy(big + 1 + 2 * i, e_acute, sizeof e_acute);
        m = sq_message_make(big, 1201);
        ASSERT_EQ(strlen(m), 1023);
        free(m);
        /* Invalid UTF-8 and control characters, NUL too, become U+FFFD; newlines stay. */
        m = sq_message_make("a\xff" "b\0c\x1b\n", 7);
        ASSERT_STREQ(m, "a\xef\xbf\xbd" "b\xef\xbf\xbd" "c\xef\xbf\xbd\n");
        free(m);
}

static void test_tracker(void) {
        SqProbe p = { .success_threshold = 2, .failure_threshold = 3 };
        SqTracker t = { .last = -1 };

        ASSERT_EQ(sq_tracker_feed(&t, &p, true, "idle"), 0);
        ASSERT_EQ(sq_tracker_feed(&t, &p, true, "idle"), 1);
        ASSERT_TRUE(t.status);
        ASSERT_STREQ(t.message, "idle");
        ASSERT_EQ(sq_tracker_feed(&t, &p, true, "idle"), 0);
        /* Within the run, a new message counts at once. */
        ASSERT_EQ(sq_tracker_feed(&t, &p, true, "busy"), 1);
        ASSERT_STREQ(t.message, "busy");
        ASSERT_EQ(sq_tracker_feed(&t, &p, false, "x"), 0);
        ASSERT_EQ(sq_tracker_feed(&t, &p, false, "x"), 0);
        ASSERT_EQ(sq_tracker_feed(&t, &p, true, "busy"), 0);   /* a success breaks the run */
        ASSERT_EQ(sq_tracker_feed(&t, &p, false, "x"), 0);
        ASSERT_EQ(sq_tracker_feed(&t, &p, false, "x"), 0);
        ASSERT_EQ(sq_tracker_feed(&t, &p, false, "x"), 1);
        ASSERT_TRUE(!t.status);
        ASSERT_STREQ(t.message, "x");
        sq_tracker_done(&t);

        /* Thresholds of 0 count as 1. */
        SqProbe z = {};
        ASSERT_EQ(sq_tracker_feed(&t, &z, false, ""), 1);
        sq_tracker_done(&t);
}

static void test_history(void) {
        SqHistory h = {};
        char m[8];

        ASSERT_TRUE(!sq_history_has(&h, "True", ""));
        for (int i = 0; i < 6; i++) {
                snprintf(m, sizeof m, "m%d", i);
                ASSERT_EQ(sq_history_push(&h, i % 2, m), 0);
        }
        /* The last four values, newest first; older ones are forgotten. */
        ASSERT_EQ(h.n, SQ_HISTORY);
        ASSERT_STREQ(h.message[0], "m5");
        ASSERT_TRUE(h.status[0]);
        ASSERT_TRUE(sq_history_has(&h, "False", "m2"));
        ASSERT_TRUE(!sq_history_has(&h, "True", "m2"));     /* the status counts too */
        ASSERT_TRUE(!sq_history_has(&h, "True", "m1"));
        ASSERT_TRUE(!sq_history_has(&h, "False", "m0"));
        sq_history_done(&h);
        ASSERT_EQ(h.n, 0);
}

static void test_cgroup(void) {
        ASSERT_EQ(sq_cgroup_has_container("0::/kubepods/besteffort/pod1/cri-containerd-abc123.scope\n",
                                          "abc123"), 1);
        ASSERT_EQ(sq_cgroup_has_container("0::/kubepods/pod1/abc123\n", "abc123"), 1);
        ASSERT_EQ(sq_cgroup_has_container("12:pids:/docker/abc1234\n0::/\n", "abc123"), 0);
        ASSERT_EQ(sq_cgroup_has_container("0::/x/abc123.scope/y\n", "abc12"), 0);
        ASSERT_EQ(sq_cgroup_has_container("0::/\n", ""), 0);
}

static void test_config(void) {
        SqConfig *c = NULL;
        OkgNode *root = NULL;
        OkgErrors e = {};
        const char *y = "source: file\nfile: /etc/podinfo/probes\nenabled: false\n";

        ASSERT_EQ(okg_yaml_parse_string(y, strlen(y), "t.yaml", &root, &e), 0);
        ASSERT_EQ(sq_config_parse(root, "t.yaml", "config", &e, &c), 0);
        ASSERT_EQ(c->source, SQ_SOURCE_FILE);
        ASSERT_STREQ(c->file, "/etc/podinfo/probes");
        ASSERT_TRUE(!c->enabled);
        sq_config_free(c);
        okg_node_free(root);

        ASSERT_EQ(sq_config_parse(NULL, "t.yaml", "config", &e, &c), 0);
        ASSERT_EQ(c->source, SQ_SOURCE_AUTO);
        ASSERT_TRUE(c->enabled);
        ASSERT_STREQ(c->file, SQ_DEFAULT_FILE);
        sq_config_free(c);

        y = "source: kubelet\nfile: relative\n";
        ASSERT_EQ(okg_yaml_parse_string(y, strlen(y), "t.yaml", &root, &e), 0);
        ASSERT_EQ(sq_config_parse(root, "t.yaml", "config", &e, &c), -EINVAL);
        ASSERT_EQ(e.n, 2);
        okg_errors_done(&e);
        okg_node_free(root);
}


/* A redirect kubelet does not follow is a success with its warning text. */
static void test_redirects(void) {
        char *m;
        bool ok;

        m = sq_http_message(302, "<html>302 Found</html>", 22, &ok);
        ASSERT_TRUE(ok);
        ASSERT_STREQ(m, "Probe terminated redirects, Response body: <html>302 Found</html>");
        free(m);
        m = sq_http_message(399, "x", 1, &ok);
        ASSERT_TRUE(ok);
        free(m);
        m = sq_http_message(400, "x", 1, &ok);
        ASSERT_TRUE(!ok);
        free(m);
}

/* The probe list is JSON as Go reads it: json-c's leniencies are refused. */
static void test_parse_strict(void) {
        const char *bad[] = {
                "/* c */[]", "[] // c", "['a']", "[{\"name\":\"a\",}]", "[1,]",
                "[{\"name\":\"a\"}",
        };
        SqProbes p = {};
        char err[256];

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                err[0] = 0;
                if (sq_probes_parse(bad[i], strlen(bad[i]), &p, err, sizeof err) != -EINVAL) {
                        fprintf(stderr, "input %s accepted\n", bad[i]);
                        exit(1);
                }
                ASSERT_TRUE(strncmp(err, "not JSON", 8) == 0 || strncmp(err, "trailing", 8) == 0);
        }
        ASSERT_EQ(sq_probes_parse(" \n", 2, &p, err, sizeof err), -EINVAL);
        ASSERT_STREQ(err, "empty (white space only): not a JSON array");
}

static void test_missing_container(void) {
        SqPod x = {};
        char *m;

        ASSERT_EQ(sq_pod_parse(pod, strlen(pod), &x), 0);
        m = sq_pod_missing_container(&x, "gmae");
        ASSERT_STREQ(m, "container gmae is not in the pod (containers: game, sidecar)");
        free(m);
        sq_pod_done(&x);
        m = sq_pod_missing_container(&x, "game");
        ASSERT_STREQ(m, "container game is not in the pod (containers: none)");
        free(m);
}

/* FA: a write path that lags (okg-storaged stopped, an API server outage) while the message
 * changes every period: the pod holds the last acknowledged value however many values were
 * handed on since; none of them is another writer's. */
static void test_writer_lag(void) {
        _cleanup_(sq_history_done) SqHistory h = {};
        char msg[32];

        ASSERT_EQ(sq_history_handed(&h, true, "players 1", 1), 0);
        /* Nothing acknowledged yet: the pod may hold an earlier run's value. */
        ASSERT_EQ(sq_history_judge(&h, "True", "players 0"), SQ_VERDICT_UNKNOWN);
        sq_history_accepted(&h, 1, 7);
        ASSERT_EQ(sq_history_acknowledged(&h, 7), 0);
        ASSERT_EQ(h.n_pending, 0);
        /* 20 values on their way, none acknowledged (some not even accepted). */
        for (unsigned i = 2; i <= 21; i++) {
                snprintf(msg, sizeof msg, "players %u", i);
                ASSERT_EQ(sq_history_handed(&h, true, msg, i), 0);
                if (i <= 10)
                        sq_history_accepted(&h, i, 6 + i);
        }
        ASSERT_EQ(sq_history_judge(&h, "True", "players 1"), SQ_VERDICT_OWN);
        ASSERT_EQ(sq_history_judge(&h, "True", "players 5"), SQ_VERDICT_OWN);
        ASSERT_EQ(sq_history_judge(&h, "True", "players 21"), SQ_VERDICT_OWN);
        ASSERT_EQ(sq_history_judge(&h, "False", "players 1"), SQ_VERDICT_OTHER);
        ASSERT_EQ(sq_history_judge(&h, "True", "from kruise-daemon"), SQ_VERDICT_OTHER);
        /* A retried write (players 3, seq 9) gets through, then the rest coalesced. */
        ASSERT_EQ(sq_history_acknowledged(&h, 9), 0);
        ASSERT_EQ(h.n_pending, 18);
        ASSERT_EQ(sq_history_judge(&h, "True", "players 3"), SQ_VERDICT_OWN);
        ASSERT_EQ(sq_history_judge(&h, "True", "players 1"), SQ_VERDICT_OWN);
        for (unsigned i = 11; i <= 21; i++)
                sq_history_accepted(&h, i, 6 + i);
        ASSERT_EQ(sq_history_acknowledged(&h, 27), 0);
        ASSERT_EQ(h.n_pending, 0);
        /* The values the pod held stay the plugin's (a stale copy, a late watch event)... */
        ASSERT_EQ(sq_history_judge(&h, "True", "players 21"), SQ_VERDICT_OWN);
        ASSERT_EQ(sq_history_judge(&h, "True", "players 3"), SQ_VERDICT_OWN);
        ASSERT_EQ(sq_history_judge(&h, "True", "players 1"), SQ_VERDICT_OWN);
        /* ... another writer's value is still one. */
        ASSERT_EQ(sq_history_judge(&h, "True", "players 99"), SQ_VERDICT_OTHER);
        /* An acknowledgement of an earlier write (another condition's) changes nothing. */
        ASSERT_EQ(sq_history_handed(&h, false, "down", 22), 0);
        sq_history_accepted(&h, 22, 30);
        ASSERT_EQ(sq_history_acknowledged(&h, 29), 0);
        ASSERT_EQ(h.n_pending, 1);
        ASSERT_EQ(sq_history_acknowledged(&h, 30), 0);
        ASSERT_EQ(h.n_pending, 0);
        ASSERT_STREQ(h.acked_message[0], "down");
}

/* More values than are kept while nothing is acknowledged (a long outage, a burst): the oldest
 * are forgotten, so nothing is judged until what is kept is acknowledged; a storaged that lost
 * its sequence numbers (a new state folder) acknowledges in call order all the same. */
static void test_writer_burst_and_replay(void) {
        _cleanup_(sq_history_done) SqHistory h = {};
        char msg[32];

        ASSERT_EQ(sq_history_handed(&h, true, "a", 1), 0);
        sq_history_accepted(&h, 1, 100);
        ASSERT_EQ(sq_history_acknowledged(&h, 100), 0);
        for (unsigned i = 0; i < SQ_PENDING_MAX + 10; i++) {
                snprintf(msg, sizeof msg, "burst %u", i);
                ASSERT_EQ(sq_history_handed(&h, true, msg, 2 + i), 0);
        }
        ASSERT_EQ(h.n_pending, SQ_PENDING_MAX);
        ASSERT_TRUE(h.pending_lost);
        ASSERT_EQ(sq_history_judge(&h, "True", "burst 0"), SQ_VERDICT_UNKNOWN);
        ASSERT_EQ(sq_history_judge(&h, "True", "a"), SQ_VERDICT_OWN);
        /* okg-storaged restarted with a fresh state folder: its numbers start over. */
        sq_history_accepted(&h, 2 + SQ_PENDING_MAX + 9, 3);
        ASSERT_EQ(sq_history_acknowledged(&h, 3), 0);
        ASSERT_EQ(h.n_pending, 0);
        ASSERT_TRUE(!h.pending_lost);
        snprintf(msg, sizeof msg, "burst %d", SQ_PENDING_MAX + 9);
        ASSERT_STREQ(h.acked_message[0], msg);
        ASSERT_EQ(sq_history_judge(&h, "True", "burst 0"), SQ_VERDICT_OTHER);
        ASSERT_EQ(sq_history_judge(&h, "True", msg), SQ_VERDICT_OWN);
        /* No acknowledgement for values never accepted. */
        ASSERT_EQ(sq_history_handed(&h, true, "b", 200), 0);
        ASSERT_EQ(sq_history_acknowledged(&h, 1000), 0);
        ASSERT_EQ(h.n_pending, 1);
}

int main(void) {
        test_parse();
        test_parse_bad();
        test_parse_lenient();
        test_sent_book();
        test_pod();
        test_time();
        test_messages();
        test_tracker();
        test_history();
        test_cgroup();
        test_config();
        test_redirects();
        test_parse_strict();
        test_missing_container();
        test_writer_lag();
        test_writer_burst_and_replay();
        return 0;
}
