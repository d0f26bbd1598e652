/* The config loader end to end on fixture files: every file in config-bad/ must fail with
 * exactly the lines in its .expected sibling, the proposal's configs in config-good/ must load
 * with the documented values and defaults. Also the small validators underneath.
 * Run with the tests/ directory as the working directory or as argv[1]. */
#define _GNU_SOURCE 1

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hotupdated-config.h"
#include "macro.h"
#include "okg-config.h"
#include "okg-kube-names.h"
#include "okg-signal.h"
#include "okg-test.h"
#include "probed-config.h"
#include "sidecard-plugins.h"

static int compare_strings(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

/* The lines of a small text file, without their newlines. */
static size_t read_lines(const char *path, char ***ret) {
        _cleanup_(fclosep) FILE *f = fopen(path, "re");
        char **v = NULL, *line = NULL;
        size_t n = 0, size = 0;
        ssize_t k;

        if (!f) {
                fprintf(stderr, "cannot open %s: %m\n", path);
                exit(1);
        }
        while ((k = getline(&line, &size, f)) >= 0) {
                if (k > 0 && line[k - 1] == '\n')
                        line[k - 1] = 0;
                char **grown = realloc(v, (n + 2) * sizeof(char *));
                ASSERT_TRUE(grown);
                v = grown;
                v[n] = strdup(line);
                ASSERT_TRUE(v[n]);
                v[++n] = NULL;
        }
        free(line);
        *ret = v;
        return n;
}

static void dump(const char *title, char *const *v, size_t n) {
        fprintf(stderr, "  %s (%zu):\n", title, n);
        for (size_t i = 0; i < n; i++)
                fprintf(stderr, "    %s\n", v[i]);
}

static void test_bad_configs(void) {
        DIR *d = opendir("config-bad");
        char **names = NULL;
        size_t n_names = 0;
        struct dirent *de;

        ASSERT_TRUE(d);
        while ((de = readdir(d))) {
                size_t l = strlen(de->d_name);
                if (l < 6 || !streq(de->d_name + l - 5, ".yaml"))
                        continue;
                char **grown = realloc(names, (n_names + 1) * sizeof(char *));
                ASSERT_TRUE(grown);
                names = grown;
                names[n_names] = strdup(de->d_name);
                ASSERT_TRUE(names[n_names]);
                n_names++;
        }
        closedir(d);
        if (n_names > 0)
                qsort(names, n_names, sizeof(char *), compare_strings);

        /* Catches a lost or emptied fixture directory: there are 44 cases. */
        ASSERT_TRUE(n_names >= 44);

        ASSERT_EQ(chdir("config-bad"), 0);
        for (size_t i = 0; i < n_names; i++) {
                _cleanup_(freep) char *expected_path = NULL;
                _cleanup_(strv_freep) char **expected = NULL;
                _cleanup_(sidecar_config_freep) SidecarConfig *c = NULL;
                OkgErrors e = {};
                size_t n_expected;
                int r;

                ASSERT_TRUE(asprintf(&expected_path, "%.*s.expected",
                                     (int) (strlen(names[i]) - 5), names[i]) > 0);
                n_expected = read_lines(expected_path, &expected);
                ASSERT_TRUE(n_expected > 0);

                r = sidecar_config_load(names[i], plugin_types, n_plugin_types, &c, &e);
                bool same = r == -EINVAL && !c && e.n == n_expected;
                for (size_t j = 0; same && j < n_expected; j++) {
                        _cleanup_(freep) char *line = okg_error_format(&e.items[j]);
                        same = line && streq(line, expected[j]);
                }
                if (!same) {
                        fprintf(stderr, "%s: r=%d, output differs\n", names[i], r);
                        dump("expected", expected, n_expected);
                        fprintf(stderr, "  got (%zu):\n", e.n);
                        okg_errors_print(&e, stderr);
                        exit(1);
                }
                okg_errors_done(&e);
                free(names[i]);
        }
        free(names);
        ASSERT_EQ(chdir(".."), 0);
        printf("%zu malformed configs rejected with the expected messages\n", n_names);
}

static SidecarConfig *load_good(const char *name, OkgNode **ret_root) {
        _cleanup_(freep) char *path = NULL;
        SidecarConfig *c = NULL;
        OkgErrors e = {};
        int r;

        ASSERT_TRUE(asprintf(&path, "config-good/%s", name) > 0);
        r = sidecar_config_load(path, plugin_types, n_plugin_types, &c, &e);
        if (r < 0 || e.n > 0) {
                fprintf(stderr, "%s: r=%d\n", path, r);
                okg_errors_print(&e, stderr);
                exit(1);
        }
        ASSERT_TRUE(c);
        ASSERT_STREQ(c->path, path);
        if (ret_root) {
                ASSERT_EQ(okg_yaml_parse_file(path, ret_root, &e), 0);
                ASSERT_EQ(e.n, 0);
        }
        return c;
}

/* Runs a plugin section through its own parser, the way the plugin daemon does. */
static HotUpdateConfig *hot_update_section(const OkgNode *root, const char *expected_path) {
        const OkgNode *section = NULL;
        _cleanup_(freep) char *path = NULL;
        HotUpdateConfig *h = NULL;
        OkgErrors e = {};

        ASSERT_EQ(sidecar_config_find_section(root, "x.yaml", "hot_update", &section, &path, &e),
                  0);
        ASSERT_STREQ(path, expected_path);
        ASSERT_EQ(hotupdate_config_parse(section, "x.yaml", path, &e, &h), 0);
        ASSERT_EQ(e.n, 0);
        return h;
}

static ProbeConfig *probe_section(const OkgNode *root, const char *expected_path) {
        const OkgNode *section = NULL;
        _cleanup_(freep) char *path = NULL;
        ProbeConfig *p = NULL;
        OkgErrors e = {};

        ASSERT_EQ(sidecar_config_find_section(root, "x.yaml", "http_probe", &section, &path, &e),
                  0);
        ASSERT_STREQ(path, expected_path);
        ASSERT_EQ(probe_config_parse(section, "x.yaml", path, &e, &p), 0);
        ASSERT_EQ(e.n, 0);
        return p;
}

static void assert_sidecar_defaults_of_proposal(const SidecarConfig *c) {
        ASSERT_EQ(c->restart_policy, RESTART_ALWAYS);
        ASSERT_EQ(c->start_order, START_ORDER_BEFORE);
        ASSERT_STREQ(c->cpu, "100m");
        ASSERT_STREQ(c->memory, "128Mi");
        ASSERT_STREQ(c->health_address, "0.0.0.0");
        ASSERT_EQ(c->health_port, 5001);
        ASSERT_TRUE(!c->game_url);
        ASSERT_EQ(c->game_timeout_sec, 120);
        ASSERT_EQ(c->start_timeout_sec, 30);
        ASSERT_EQ(c->stop_timeout_sec, 10);
        ASSERT_EQ(c->watchdog_sec, 30);
}

static void assert_proposal_hot_update(const HotUpdateConfig *h) {
        ASSERT_EQ(h->load_patch_type, LOAD_PATCH_SIGNAL);
        ASSERT_STREQ(h->process_name, "nginx: master process nginx");
        ASSERT_STREQ(h->signal_name, "SIGHUP");
        ASSERT_EQ(h->signal_number, SIGHUP);
        ASSERT_STREQ(h->annotation_key, "sidecar.vke.volcengine.com/hot-update-result");
        /* defaults */
        ASSERT_STREQ(h->request_address, "127.0.0.1");
        ASSERT_EQ(h->request_port, 0);
        ASSERT_STREQ(h->request_path, "/reload");
        ASSERT_STREQ(h->request_method, "POST");
        ASSERT_STREQ(h->bind_address, "0.0.0.0");
        ASSERT_EQ(h->port, 5000);
        ASSERT_STREQ(h->download_dir, "/app/downloads");
        ASSERT_EQ(h->max_file_size, 64 * 1024 * 1024);
        ASSERT_EQ(h->connect_timeout_sec, 10);
        ASSERT_EQ(h->download_timeout_sec, 300);
        ASSERT_TRUE(!h->ca_file);
        ASSERT_TRUE(!h->auth_token_file);
        ASSERT_TRUE(!h->check_url);
        ASSERT_EQ(h->check_timeout_sec, 10);
        ASSERT_EQ(h->game_wait_sec, 60);
        ASSERT_EQ(h->request_timeout_sec, 10);
        ASSERT_EQ(h->check_delay_msec, 500);
        ASSERT_EQ(h->client_timeout_sec, 10);
        ASSERT_EQ(h->settle_msec, 2000);
        ASSERT_TRUE(!h->allow_insecure_redirects);
        ASSERT_TRUE(!h->download_dir_set);
}

static void assert_proposal_endpoint(const ProbeEndpoint *ep) {
        static const char *const states[] = { "WaitToBeDeleted", "Allocated", "None" };

        ASSERT_STREQ(ep->url, "http://localhost:8080");
        ASSERT_STREQ(ep->method, "GET");
        ASSERT_EQ(ep->expected_status, 200);
        ASSERT_EQ(ep->timeout_sec, 30);
        ASSERT_EQ(ep->storage_type, PROBE_STORAGE_IN_KUBE);
        ASSERT_EQ(ep->n_policies, 3);
        for (size_t i = 0; i < 3; i++) {
                ASSERT_STREQ(ep->policies[i].state, states[i]);
                ASSERT_STREQ(ep->policies[i].ops_state, states[i]);
                ASSERT_EQ(ep->policies[i].n_labels, 0);
                ASSERT_EQ(ep->policies[i].n_annotations, 0);
        }
        /* defaults */
        ASSERT_EQ(ep->n_headers, 0);
        ASSERT_TRUE(!ep->body);
        ASSERT_TRUE(!ep->json_path);
        ASSERT_EQ(ep->success_threshold, 1);
        ASSERT_EQ(ep->failure_threshold, 3);
        ASSERT_TRUE(!ep->failure_state);
        ASSERT_TRUE(!ep->annotation_key);
        ASSERT_TRUE(!ep->label_key);
        ASSERT_TRUE(!ep->metric_name);
}

static void test_proposal_hot_update(void) {
        _cleanup_(okg_node_freep) OkgNode *root = NULL;
        _cleanup_(sidecar_config_freep) SidecarConfig *c = load_good("hot-update.yaml", &root);

        ASSERT_EQ(c->n_plugins, 1);
        ASSERT_STREQ(c->plugins[0].name, "hot_update");
        ASSERT_STREQ(c->plugins[0].type->binary, "okg-hotupdated");
        ASSERT_EQ(c->plugins[0].boot_order, 0);
        ASSERT_EQ(c->plugins[0].index, 0);
        ASSERT_EQ(c->plugins[0].restart_policy, RESTART_ALWAYS);
        assert_sidecar_defaults_of_proposal(c);
        /* No gameReady: the process hot_update signals is the game. */
        ASSERT_STREQ(c->game_process_name, "nginx: master process nginx");
        ASSERT_TRUE(sidecar_config_find_plugin(c, "hot_update") == &c->plugins[0]);
        ASSERT_TRUE(!sidecar_config_find_plugin(c, "http_probe"));

        HotUpdateConfig *h = hot_update_section(root, "plugins[0].config");
        assert_proposal_hot_update(h);
        hotupdate_config_free(h);

        /* A plugin that is not in the file. */
        OkgErrors e = {};
        const OkgNode *section = NULL;
        char *path = NULL;
        ASSERT_EQ(sidecar_config_find_section(root, "x.yaml", "http_probe", &section, &path, &e),
                  -ENOENT);
        ASSERT_TRUE(!path);
        ASSERT_EQ(e.n, 1);
        ASSERT_ERROR_LINE(e, 0, "x.yaml: no plugin named \"http_probe\"");
        okg_errors_done(&e);
}

static void test_proposal_http_probe(void) {
        _cleanup_(okg_node_freep) OkgNode *root = NULL;
        _cleanup_(sidecar_config_freep) SidecarConfig *c = load_good("http-probe.yaml", &root);

        ASSERT_EQ(c->n_plugins, 1);
        ASSERT_STREQ(c->plugins[0].name, "http_probe");
        ASSERT_STREQ(c->plugins[0].type->bus_name, "io.kruise.game.Probe1");
        ASSERT_EQ(c->plugins[0].boot_order, 1);
        ASSERT_EQ(c->plugins[0].restart_policy, RESTART_ALWAYS);
        assert_sidecar_defaults_of_proposal(c);
        ASSERT_TRUE(!c->game_process_name);

        ProbeConfig *p = probe_section(root, "plugins[0].config");
        ASSERT_EQ(p->start_delay_sec, 10);
        ASSERT_EQ(p->interval_sec, 5);
        ASSERT_EQ(p->n_endpoints, 1);
        assert_proposal_endpoint(&p->endpoints[0]);
        probe_config_free(p);
}

static void test_proposal_demo(void) {
        _cleanup_(okg_node_freep) OkgNode *root = NULL;
        _cleanup_(sidecar_config_freep) SidecarConfig *c = load_good("demo.yaml", &root);
        _cleanup_(sidecar_config_freep) SidecarConfig *hu = load_good("hot-update.yaml", NULL);
        _cleanup_(sidecar_config_freep) SidecarConfig *pr = load_good("http-probe.yaml", NULL);

        /* File order is kept; boot order says hot_update starts first. */
        ASSERT_EQ(c->n_plugins, 2);
        ASSERT_STREQ(c->plugins[0].name, "http_probe");
        ASSERT_EQ(c->plugins[0].boot_order, 1);
        ASSERT_EQ(c->plugins[0].index, 0);
        ASSERT_STREQ(c->plugins[1].name, "hot_update");
        ASSERT_EQ(c->plugins[1].boot_order, 0);
        ASSERT_EQ(c->plugins[1].index, 1);
        assert_sidecar_defaults_of_proposal(c);
        ASSERT_STREQ(c->game_process_name, "nginx: master process nginx");

        /* Same hot_update section text (comments aside) as the hot-update example; the probe
         * sections differ in their delays. */
        ASSERT_STREQ(c->plugins[1].config_canonical, hu->plugins[0].config_canonical);
        ASSERT_TRUE(!streq(c->plugins[0].config_canonical, pr->plugins[0].config_canonical));
        ASSERT_STREQ(c->plugins[1].config_canonical,
                     "{\"loadPatchType\":\"signal\",\"signal\":{\"processName\":\"nginx: master "
                     "process nginx\",\"signalName\":\"SIGHUP\"},\"storageConfig\":{\"inKube\":"
                     "{\"annotationKey\":\"sidecar.vke.volcengine.com/hot-update-result\"},"
                     "\"type\":\"InKube\"}}");

        HotUpdateConfig *h = hot_update_section(root, "plugins[1].config");
        assert_proposal_hot_update(h);
        hotupdate_config_free(h);

        ProbeConfig *p = probe_section(root, "plugins[0].config");
        ASSERT_EQ(p->start_delay_sec, 60);
        ASSERT_EQ(p->interval_sec, 10); /* default */
        ASSERT_EQ(p->n_endpoints, 1);
        assert_proposal_endpoint(&p->endpoints[0]);
        probe_config_free(p);
}

static void test_camel_case(void) {
        _cleanup_(okg_node_freep) OkgNode *root = NULL;
        _cleanup_(sidecar_config_freep) SidecarConfig *c = load_good("camel-case.yaml", &root);

        ASSERT_EQ(c->restart_policy, RESTART_ON_FAILURE);
        ASSERT_EQ(c->start_order, START_ORDER_AFTER);
        ASSERT_STREQ(c->cpu, "0.5");
        ASSERT_STREQ(c->memory, "1G");
        ASSERT_EQ(c->health_port, 5101);
        ASSERT_STREQ(c->health_address, "127.0.0.1");
        /* loadPatchType request: the signal section does not name the game. */
        ASSERT_TRUE(!c->game_process_name);
        ASSERT_STREQ(c->game_url, "http://localhost:8080/healthz");
        ASSERT_EQ(c->game_timeout_sec, 300);
        ASSERT_EQ(c->start_timeout_sec, 60);
        ASSERT_EQ(c->stop_timeout_sec, 20);
        ASSERT_EQ(c->watchdog_sec, 0);

        ASSERT_EQ(c->n_plugins, 2);
        ASSERT_STREQ(c->plugins[0].name, "hot_update");
        ASSERT_EQ(c->plugins[0].boot_order, 2);
        ASSERT_EQ(c->plugins[0].restart_policy, RESTART_NEVER); /* per-plugin override */
        ASSERT_STREQ(c->plugins[1].name, "http_probe");
        ASSERT_EQ(c->plugins[1].boot_order, 1);
        ASSERT_EQ(c->plugins[1].restart_policy, RESTART_ON_FAILURE); /* inherited */

        HotUpdateConfig *h = hot_update_section(root, "plugins[0].config");
        ASSERT_EQ(h->load_patch_type, LOAD_PATCH_REQUEST);
        ASSERT_STREQ(h->request_address, "game.local");
        ASSERT_EQ(h->request_port, 8081);
        ASSERT_STREQ(h->request_path, "/admin/reload");
        ASSERT_STREQ(h->request_method, "PUT");
        ASSERT_STREQ(h->process_name, "game-server");
        ASSERT_STREQ(h->signal_name, "SIGUSR1");
        ASSERT_EQ(h->signal_number, SIGUSR1);
        ASSERT_STREQ(h->annotation_key, "sidecar.vke.volcengine.com/hot-update-result");
        ASSERT_STREQ(h->bind_address, "::");
        ASSERT_EQ(h->port, 5500);
        ASSERT_STREQ(h->download_dir, "/data/patches");
        ASSERT_TRUE(h->download_dir_set);
        ASSERT_EQ(h->max_file_size, 1048576);
        ASSERT_EQ(h->connect_timeout_sec, 5);
        ASSERT_EQ(h->download_timeout_sec, 60);
        ASSERT_STREQ(h->ca_file, "/etc/ssl/ca.pem");
        ASSERT_STREQ(h->auth_token_file, "/var/run/secrets/hot-update-token");
        ASSERT_STREQ(h->check_url, "https://127.0.0.1:8080/healthz");
        ASSERT_EQ(h->check_timeout_sec, 3);
        ASSERT_EQ(h->game_wait_sec, 0);
        ASSERT_EQ(h->request_timeout_sec, 4);
        ASSERT_EQ(h->check_delay_msec, 0);
        ASSERT_EQ(h->client_timeout_sec, 30);
        hotupdate_config_free(h);

        ProbeConfig *p = probe_section(root, "plugins[1].config");
        ASSERT_EQ(p->start_delay_sec, 0);
        ASSERT_EQ(p->interval_sec, 2);
        ASSERT_EQ(p->n_endpoints, 2);

        const ProbeEndpoint *ep = &p->endpoints[0];
        ASSERT_STREQ(ep->url, "HTTP://[::1]:8080/state?verbose=1");
        ASSERT_STREQ(ep->method, "POST");
        ASSERT_EQ(ep->n_headers, 2);
        ASSERT_STREQ(ep->headers[0].key, "Content-Type");
        ASSERT_STREQ(ep->headers[0].value, "application/json");
        ASSERT_STREQ(ep->headers[1].key, "X-Token");
        ASSERT_STREQ(ep->headers[1].value, "abc");
        ASSERT_STREQ(ep->body, "{\"probe\": true}");
        ASSERT_STREQ(ep->json_path, "status.state");
        ASSERT_EQ(ep->success_threshold, 2);
        ASSERT_EQ(ep->failure_threshold, 5);
        ASSERT_STREQ(ep->failure_state, "Unhealthy");
        ASSERT_EQ(ep->timeout_sec, 1); /* `timeout:` with no value keeps the default */
        ASSERT_EQ(ep->expected_status, 0);
        ASSERT_EQ(ep->storage_type, PROBE_STORAGE_IN_KUBE);
        ASSERT_STREQ(ep->annotation_key, "game.example.com/state");
        ASSERT_STREQ(ep->label_key, "game.example.com/state");
        ASSERT_EQ(ep->n_policies, 2); /* spelled markerPolicies */
        ASSERT_STREQ(ep->policies[0].state, "Idle");
        ASSERT_STREQ(ep->policies[0].ops_state, "None");
        ASSERT_EQ(ep->policies[0].n_labels, 2);
        ASSERT_STREQ(ep->policies[0].labels[0].key, "game.example.com/phase");
        ASSERT_STREQ(ep->policies[0].labels[0].value, "idle");
        ASSERT_STREQ(ep->policies[0].labels[1].key, "tier");
        ASSERT_STREQ(ep->policies[0].labels[1].value, "");
        ASSERT_EQ(ep->policies[0].n_annotations, 1);
        ASSERT_STREQ(ep->policies[0].annotations[0].value, "idle since start, ok to scale down");
        ASSERT_STREQ(ep->policies[1].state, "Unhealthy");
        ASSERT_STREQ(ep->policies[1].ops_state, "Maintaining");

        ep = &p->endpoints[1];
        ASSERT_EQ(ep->storage_type, PROBE_STORAGE_HTTP_METRIC);
        ASSERT_STREQ(ep->metric_name, "game_players:current");
        ASSERT_STREQ(ep->method, "GET");
        ASSERT_EQ(ep->n_policies, 0);
        probe_config_free(p);
}

static void test_missing_file(void) {
        _cleanup_(sidecar_config_freep) SidecarConfig *c = NULL;
        OkgErrors e = {};

        ASSERT_EQ(sidecar_config_load("config-good/does-not-exist.yaml",
                                      plugin_types, n_plugin_types, &c, &e),
                  -ENOENT);
        ASSERT_TRUE(!c);
        ASSERT_EQ(e.n, 1);
        ASSERT_ERROR_LINE(e, 0, "config-good/does-not-exist.yaml: cannot read: No such file or "
                             "directory");
        okg_errors_done(&e);
}

/* A config node handed straight to a plugin validator, as okg-hotupdated does with its own
 * section; NULL means the entry has no `config`. */
static void test_plugin_parsers_direct(void) {
        OkgErrors e = {};
        ProbeConfig *p = NULL;
        HotUpdateConfig *h = NULL;

        ASSERT_EQ(probe_config_parse(NULL, "f.yaml", "plugins[0].config", &e, &p), -EINVAL);
        ASSERT_TRUE(!p);
        ASSERT_EQ(e.n, 1);
        ASSERT_ERROR_LINE(e, 0, "f.yaml: plugins[0].config.endpoints: required key is missing");
        okg_errors_done(&e);

        ASSERT_EQ(hotupdate_config_parse(NULL, "f.yaml", "plugins[1].config", &e, &h), -EINVAL);
        ASSERT_TRUE(!h);
        ASSERT_EQ(e.n, 1);
        ASSERT_ERROR_LINE(e, 0,
                "f.yaml: plugins[1].config.signal.processName: required key is missing");
        okg_errors_done(&e);

        /* errors may be NULL: the verdict is still right. */
        _cleanup_(okg_node_freep) OkgNode *n = NULL;
        const char *text = "signal: {processName: game, signalName: SIGRTMIN+3}\n";
        ASSERT_EQ(okg_yaml_parse_string(text, strlen(text), "s", &n, NULL), 0);
        ASSERT_EQ(hotupdate_config_parse(n, "s", "c", NULL, &h), 0);
        ASSERT_STREQ(h->signal_name, "SIGRTMIN+3");
        ASSERT_EQ(h->signal_number, SIGRTMIN + 3);
        h = hotupdate_config_free(h);
        ASSERT_TRUE(!h);
        ASSERT_EQ(hotupdate_config_validate(n, "s", "c", NULL), 0);

        /* The settle window and the redirect switch. */
        _cleanup_(okg_node_freep) OkgNode *n2 = NULL;
        text = "signal: {processName: game, settleMilliseconds: 0}\nallowInsecureRedirects: true\n";
        ASSERT_EQ(okg_yaml_parse_string(text, strlen(text), "s", &n2, NULL), 0);
        ASSERT_EQ(hotupdate_config_parse(n2, "s", "c", NULL, &h), 0);
        ASSERT_EQ(h->settle_msec, 0);
        ASSERT_TRUE(h->allow_insecure_redirects);
        h = hotupdate_config_free(h);
        ASSERT_EQ(probe_config_validate(n, "s", "c", NULL), -EINVAL);
        ASSERT_TRUE(!probe_config_free(NULL));
        ASSERT_TRUE(!hotupdate_config_free(NULL));
        ASSERT_TRUE(!sidecar_config_free(NULL));
}

static void test_enums(void) {
        ASSERT_EQ(restart_policy_from_string("Always"), RESTART_ALWAYS);
        ASSERT_EQ(restart_policy_from_string("onfailure"), RESTART_ON_FAILURE);
        ASSERT_EQ(restart_policy_from_string("NEVER"), RESTART_NEVER);
        ASSERT_EQ(restart_policy_from_string("On-Failure"), _RESTART_POLICY_INVALID);
        ASSERT_EQ(restart_policy_from_string(NULL), _RESTART_POLICY_INVALID);
        ASSERT_STREQ(restart_policy_to_string(RESTART_ON_FAILURE), "OnFailure");
        ASSERT_TRUE(!restart_policy_to_string(_RESTART_POLICY_MAX));
        ASSERT_TRUE(!restart_policy_to_string(_RESTART_POLICY_INVALID));

        ASSERT_EQ(start_order_from_string("before"), START_ORDER_BEFORE);
        ASSERT_EQ(start_order_from_string("AFTER"), START_ORDER_AFTER);
        ASSERT_EQ(start_order_from_string("During"), _START_ORDER_INVALID);
        ASSERT_STREQ(start_order_to_string(START_ORDER_AFTER), "After");
        ASSERT_TRUE(!start_order_to_string(_START_ORDER_MAX));
}

static void test_signals(void) {
        char buf[32];

        ASSERT_EQ(okg_signal_from_string("SIGHUP"), SIGHUP);
        ASSERT_EQ(okg_signal_from_string("hup"), SIGHUP);
        ASSERT_EQ(okg_signal_from_string("SigUsr2"), SIGUSR2);
        ASSERT_EQ(okg_signal_from_string("WINCH"), SIGWINCH);
        ASSERT_EQ(okg_signal_from_string("SIGRTMIN"), SIGRTMIN);
        ASSERT_EQ(okg_signal_from_string("rtmin+2"), SIGRTMIN + 2);
        ASSERT_EQ(okg_signal_from_string("SIGRTMAX-1"), SIGRTMAX - 1);
        ASSERT_EQ(okg_signal_from_string("SIGRTMIN+999"), -EINVAL);
        ASSERT_EQ(okg_signal_from_string("SIGRTMIN+"), -EINVAL);
        ASSERT_EQ(okg_signal_from_string("1"), -EINVAL);
        ASSERT_EQ(okg_signal_from_string("SIG"), -EINVAL);
        ASSERT_EQ(okg_signal_from_string(""), -EINVAL);
        ASSERT_EQ(okg_signal_from_string(NULL), -EINVAL);
        ASSERT_EQ(okg_signal_from_string("SIGSIGHUP"), -EINVAL);
        ASSERT_STREQ(okg_signal_to_string(SIGTERM), "SIGTERM");
        ASSERT_TRUE(!okg_signal_to_string(0));
        ASSERT_TRUE(!okg_signal_to_string(SIGRTMIN));
        ASSERT_STREQ(okg_signal_format(SIGQUIT, buf, sizeof(buf)), "SIGQUIT");
        ASSERT_STREQ(okg_signal_format(SIGRTMIN, buf, sizeof(buf)), "SIGRTMIN");
        ASSERT_STREQ(okg_signal_format(SIGRTMIN + 4, buf, sizeof(buf)), "SIGRTMIN+4");
        ASSERT_TRUE(!okg_signal_format(SIGRTMAX + 1, buf, sizeof(buf)));
        ASSERT_TRUE(!okg_signal_format(SIGHUP, buf, 3));
}

static void test_kube_names(void) {
        ASSERT_TRUE(!kube_qualified_name_check("sidecar.vke.volcengine.com/hot-update-result"));
        ASSERT_TRUE(!kube_qualified_name_check("app"));
        ASSERT_TRUE(!kube_qualified_name_check("A.b_c-D"));
        ASSERT_TRUE(!kube_qualified_name_check("x/y"));
        ASSERT_TRUE(kube_qualified_name_check(""));
        ASSERT_TRUE(kube_qualified_name_check("/name"));
        ASSERT_TRUE(kube_qualified_name_check("prefix/"));
        ASSERT_TRUE(kube_qualified_name_check("a/b/c"));
        ASSERT_TRUE(kube_qualified_name_check("Example.com/x"));
        ASSERT_TRUE(kube_qualified_name_check("-example.com/x"));
        ASSERT_TRUE(kube_qualified_name_check("example..com/x"));
        ASSERT_TRUE(kube_qualified_name_check("x_"));
        ASSERT_TRUE(kube_qualified_name_check("has space"));
        /* 63 is the limit for the name part */
        ASSERT_TRUE(!kube_qualified_name_check(
                "a23456789012345678901234567890123456789012345678901234567890123"));
        ASSERT_STREQ(kube_qualified_name_check(
                             "a234567890123456789012345678901234567890123456789012345678901234"),
                     "must be no more than 63 characters");

        ASSERT_TRUE(!kube_label_value_check(""));
        ASSERT_TRUE(!kube_label_value_check(NULL));
        ASSERT_TRUE(!kube_label_value_check("v1.2_x-y"));
        ASSERT_TRUE(kube_label_value_check("a/b"));
        ASSERT_TRUE(kube_label_value_check("-x"));
        ASSERT_TRUE(kube_label_value_check("x."));

        ASSERT_TRUE(!kube_dns_subdomain_check("a-b.c0"));
        ASSERT_TRUE(kube_dns_subdomain_check("a_b"));
        ASSERT_TRUE(kube_dns_subdomain_check("a."));

        static const char *const good_q[] = { "100m", "0.5", "128Mi", "1G", "1", "1e3", "2E-2",
                                              ".5", "5.", "+1Ki", "250u", "3n", "1Ei" };
        static const char *const bad_q[] = { "", "m", "-1", "1.5.5", "1mi", "1Kib", "1e",
                                             "1e+", "1 G", "one", "0x10", "1.2.3Gi" };
        for (size_t i = 0; i < ELEMENTSOF(good_q); i++)
                if (kube_quantity_check(good_q[i])) {
                        fprintf(stderr, "quantity %s refused\n", good_q[i]);
                        exit(1);
                }
        for (size_t i = 0; i < ELEMENTSOF(bad_q); i++)
                if (!kube_quantity_check(bad_q[i])) {
                        fprintf(stderr, "quantity %s accepted\n", bad_q[i]);
                        exit(1);
                }

        ASSERT_TRUE(prometheus_metric_name_valid("game_players:current"));
        ASSERT_TRUE(prometheus_metric_name_valid("_x9"));
        ASSERT_TRUE(!prometheus_metric_name_valid("9x"));
        ASSERT_TRUE(!prometheus_metric_name_valid("a-b"));
        ASSERT_TRUE(!prometheus_metric_name_valid(""));

        ASSERT_TRUE(!okg_http_url_check("http://localhost:8080"));
        ASSERT_TRUE(!okg_http_url_check("https://example.com/x?y#z"));
        ASSERT_TRUE(!okg_http_url_check("http://h/a@b?c=@#@"));   /* '@' past the authority */
        /* Credentials in any form: they would show in logs, /metrics, the bus and okgctl. */
        ASSERT_STREQ(okg_http_url_check("https://user@example.com/x"),
                     "must not contain credentials (user:password@)");
        ASSERT_STREQ(okg_http_url_check("http://user:secret@127.0.0.1:8080/state"),
                     "must not contain credentials (user:password@)");
        ASSERT_STREQ(okg_http_url_check("http://:secret@[::1]/"),
                     "must not contain credentials (user:password@)");
        ASSERT_STREQ(okg_http_url_check("http://@h/"),
                     "must not contain credentials (user:password@)");
        {
                char buf[64];
                okg_url_redact("http://user:secret@127.0.0.1:8080/s@x", buf, sizeof buf);
                ASSERT_STREQ(buf, "http://***@127.0.0.1:8080/s@x");
                okg_url_redact("HTTPS://a:b@c@host/", buf, sizeof buf);
                ASSERT_STREQ(buf, "HTTPS://***@host/");
                okg_url_redact("http://host/a@b", buf, sizeof buf);
                ASSERT_STREQ(buf, "http://host/a@b");
                okg_url_redact("no scheme u:p@h", buf, sizeof buf);
                ASSERT_STREQ(buf, "no scheme u:p@h");
        }
        ASSERT_TRUE(!okg_http_url_check("HTTP://[::1]:65535/"));
        ASSERT_TRUE(!okg_http_url_check("http://10.0.0.1"));
        ASSERT_STREQ(okg_http_url_check("ftp://x"), "must start with http:// or https://");
        ASSERT_STREQ(okg_http_url_check("localhost:8080"), "must start with http:// or https://");
        ASSERT_STREQ(okg_http_url_check("http://"), "has no host");
        ASSERT_STREQ(okg_http_url_check("http://:80/"), "has no host");
        ASSERT_STREQ(okg_http_url_check("http://x:0"), "has a port outside 1-65535");
        ASSERT_STREQ(okg_http_url_check("http://x:65536"), "has a port outside 1-65535");
        ASSERT_STREQ(okg_http_url_check("http://x:8o"), "has a port that is not a number");
        ASSERT_STREQ(okg_http_url_check("http://x:/"), "has an empty port");
        ASSERT_STREQ(okg_http_url_check("http://[::1"), "has an unterminated IPv6 address");
        ASSERT_STREQ(okg_http_url_check("http://a b"),
                     "must not contain spaces or control characters");
        ASSERT_TRUE(okg_http_url_check(""));

        ASSERT_TRUE(okg_http_token_valid("X-Request-Id"));
        ASSERT_TRUE(!okg_http_token_valid("X Request"));
        ASSERT_TRUE(!okg_http_token_valid("X:"));
        ASSERT_TRUE(!okg_http_token_valid(""));
}

/* OkgErrors keeps each error in parts and sorts on them: by line and column, errors without a
 * position first, equal positions in the order found; a line is formatted when printed. */
static void test_errors_structured(void) {
        OkgErrors e = {};

        /* A file name with ":1:1" in it: the position is a field, not read back from text. */
        okg_errors_add_at(&e, "a:1:1.yaml", 9, 2, "k.x", "late %d", 1);
        okg_errors_add_at(&e, "a:1:1.yaml", 0, 0, NULL, "no position");
        okg_errors_add_at(&e, "a:1:1.yaml", 3, 7, "k", "early");
        okg_errors_add_at(&e, "a:1:1.yaml", 3, 7, "", "early, second");
        okg_errors_add_at(&e, NULL, 1, 1, "z", "first of the tail");
        okg_errors_add_at(&e, NULL, 0, 0, "y", "tail without position");
        okg_errors_sort(&e, 0);

        ASSERT_ERROR_LINES(e, "a:1:1.yaml: no position",
                           "<input>: y: tail without position",
                           "<input>:1:1: z: first of the tail",
                           "a:1:1.yaml:3:7: k: early",
                           "a:1:1.yaml:3:7: early, second",
                           "a:1:1.yaml:9:2: k.x: late 1");
        ASSERT_STREQ(e.items[5].file, "a:1:1.yaml");
        ASSERT_EQ(e.items[5].line, 9);
        ASSERT_EQ(e.items[5].column, 2);
        ASSERT_STREQ(e.items[5].key, "k.x");
        ASSERT_STREQ(e.items[5].message, "late 1");
        ASSERT_TRUE(!e.items[4].key);
        ASSERT_TRUE(!e.items[2].file);
        {
                _cleanup_(freep) char *joined = okg_errors_join(&e, "\n");
                ASSERT_STREQ(joined, "a:1:1.yaml: no position\n"
                                     "<input>: y: tail without position\n"
                                     "<input>:1:1: z: first of the tail\n"
                                     "a:1:1.yaml:3:7: k: early\n"
                                     "a:1:1.yaml:3:7: early, second\n"
                                     "a:1:1.yaml:9:2: k.x: late 1");
        }

        /* Only the errors from `from` on move. */
        okg_errors_add_at(&e, "b", 2, 1, NULL, "b2");
        okg_errors_add_at(&e, "b", 1, 1, NULL, "b1");
        okg_errors_sort(&e, 6);
        ASSERT_ERROR_LINE(e, 5, "a:1:1.yaml:9:2: k.x: late 1");
        ASSERT_ERROR_LINE(e, 6, "b:1:1: b1");
        ASSERT_ERROR_LINE(e, 7, "b:2:1: b2");
        okg_errors_done(&e);
        ASSERT_TRUE(!e.items && e.n == 0);
        {
                /* Nothing to join: an empty message, not NULL (which means ENOMEM). */
                _cleanup_(freep) char *joined = okg_errors_join(&e, "\n");
                ASSERT_STREQ(joined, "");
        }
}

/* The table reader on a section of its own, as a new plugin kind would declare one. */
typedef struct Demo {
        char *name;
        unsigned count;
        uint16_t port;
        bool on;
        int mode;
        char *method;
        unsigned depth;
} Demo;

static const OkgConfigChoice demo_modes = {
        .names = (const char *const[]) { "Fast", "Slow", NULL },
};
static const OkgConfigChoice demo_methods = {
        .noun = "method",
        .names = (const char *const[]) { "GET", "POST", NULL },
};
static const OkgConfigItem demo_inner[] = {
        { "depth", NULL, okg_config_read_uint, offsetof(Demo, depth), 0, 9 },
        {}
};
static const OkgConfigItem demo_items[] = {
        { "name", NULL, okg_config_read_string, offsetof(Demo, name),
          .flags = OKG_CONFIG_NONEMPTY },
        { "count", "Count", okg_config_read_uint, offsetof(Demo, count), 1, 10 },
        { "port", NULL, okg_config_read_uint16, offsetof(Demo, port), 1, 65535 },
        { "on", NULL, okg_config_read_bool, offsetof(Demo, on) },
        { "mode", NULL, okg_config_read_choice, offsetof(Demo, mode), .data = &demo_modes },
        { "method", NULL, okg_config_read_choice_name, offsetof(Demo, method),
          .flags = OKG_CONFIG_NONEMPTY, .data = &demo_methods },
        { "inner", NULL, okg_config_read_section, .data = demo_inner },
        { "other" },
        {}
};

static int read_demo(const char *text, Demo *d, OkgErrors *e) {
        _cleanup_(okg_node_freep) OkgNode *n = NULL;
        _cleanup_(okg_config_ctx_done) OkgConfigCtx c = {};

        ASSERT_EQ(okg_yaml_parse_string(text, strlen(text), "t.yaml", &n, e), 0);
        okg_config_ctx_init(&c, "t.yaml", e);
        (void) okg_config_read_items(&c, n, "s", demo_items, d);
        return okg_config_ctx_finish(&c);
}

static void test_config_items(void) {
        Demo d = { .count = 5, .port = 80, .mode = 0 };
        OkgErrors e = {};

        ASSERT_EQ(read_demo("name: x\nCount: 3\nport: 8080\non: true\nmode: slow\n"
                            "method: post\ninner: {depth: 4}\nother: [1]\n", &d, &e), 0);
        ASSERT_EQ(e.n, 0);
        ASSERT_STREQ(d.name, "x");
        ASSERT_EQ(d.count, 3);
        ASSERT_EQ(d.port, 8080);
        ASSERT_TRUE(d.on);
        ASSERT_EQ(d.mode, 1);
        ASSERT_STREQ(d.method, "POST");
        ASSERT_EQ(d.depth, 4);

        /* Null is absent: the values stay. */
        ASSERT_EQ(read_demo("name:\ncount: ~\ninner:\n", &d, &e), 0);
        ASSERT_STREQ(d.name, "x");
        ASSERT_EQ(d.count, 3);

        ASSERT_EQ(read_demo("name: \"\"\ncount: 1\nCount: 2\nport: 0\nmode: [a]\n"
                            "method: PUT\ninner: {depth: 10, dept: 1}\nnme: y\n", &d, &e),
                  -EINVAL);
        static const char *const expected[] = {
                "t.yaml:1:7: s.name: must not be empty",
                "t.yaml:3:1: s: both \"count\" and \"Count\" given",
                "t.yaml:4:7: s.port: must be between 1 and 65535, got 0",
                "t.yaml:5:7: s.mode: expected Fast or Slow, got a sequence",
                "t.yaml:6:9: s.method: invalid method \"PUT\" (expected GET or POST)",
                "t.yaml:7:16: s.inner.depth: must be between 0 and 9, got 10",
                "t.yaml:7:20: s.inner: unknown key \"dept\" (did you mean \"depth\"?)",
                "t.yaml:8:1: s: unknown key \"nme\" (did you mean \"name\"?)",
        };
        ASSERT_EQ(e.n, ELEMENTSOF(expected));
        for (size_t i = 0; i < e.n; i++)
                ASSERT_ERROR_LINE(e, i, expected[i]);
        /* Bad values change nothing. */
        ASSERT_EQ(d.port, 8080);
        ASSERT_EQ(d.mode, 1);
        ASSERT_STREQ(d.method, "POST");
        ASSERT_EQ(d.depth, 4);
        okg_errors_done(&e);

        /* Not a mapping. */
        ASSERT_EQ(read_demo("- a\n", &d, &e), -EINVAL);
        ASSERT_EQ(e.n, 1);
        ASSERT_ERROR_LINE(e, 0, "t.yaml:1:1: s: expected a mapping, got a sequence");
        okg_errors_done(&e);
        free(d.name);
        free(d.method);
}

int main(int argc, char **argv) {
        if (argc > 1 && chdir(argv[1]) < 0) {
                fprintf(stderr, "cannot chdir to %s: %m\n", argv[1]);
                return 1;
        }

        test_errors_structured();
        test_config_items();
        test_enums();
        test_signals();
        test_kube_names();
        test_missing_file();
        test_plugin_parsers_direct();
        test_proposal_hot_update();
        test_proposal_http_probe();
        test_proposal_demo();
        test_camel_case();
        test_bad_configs();
        return 0;
}
