/* okg-hotupdated's security policy (hotupdated-policy.c): network parsing and matching, the
 * default denials, allowed/denied destinations, the suite's own ports, source prefixes, file
 * name globs and the config keys. Strings in, verdicts out: no I/O. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "hotupdated-config.h"
#include "hotupdated-policy.h"
#include "macro.h"
#include "okg-test.h"

static char why[HOTUPDATE_POLICY_REASON_MAX];

/* The verdict for a textual address: NULL allowed, else the reason. */
static const char *dest(const HotUpdatePolicy *p, DestinationKind kind, const char *ip,
                        uint16_t port, bool local) {
        uint8_t a[16];
        int family = strchr(ip, ':') ? AF_INET6 : AF_INET;

        ASSERT_EQ(inet_pton(family, ip, a), 1);
        return hotupdate_policy_check_destination(p, kind, family, a, port, local, why,
                                                  sizeof why);
}

static void test_prefix_parse(void) {
        NetPrefix n;
        uint8_t a[16];

        ASSERT_TRUE(!net_prefix_parse("10.0.0.0/8", &n));
        ASSERT_EQ(n.family, AF_INET);
        ASSERT_EQ(n.prefix, 8);
        ASSERT_TRUE(!net_prefix_parse("192.0.2.7", &n));
        ASSERT_EQ(n.prefix, 32);
        ASSERT_TRUE(!net_prefix_parse("fe80::/10", &n));
        ASSERT_EQ(n.family, AF_INET6);
        ASSERT_TRUE(!net_prefix_parse("0.0.0.0/0", &n));
        /* An IPv4-mapped network is the IPv4 network. */
        ASSERT_TRUE(!net_prefix_parse("::ffff:169.254.0.0/112", &n));
        ASSERT_EQ(n.family, AF_INET);
        ASSERT_EQ(n.prefix, 16);

        const char *bad[] = { "", "10.0.0.0/", "10.0.0.0/33", "fe80::/129", "10.0.0.1/8",
                              "10.0.0.0/8x", "10.0.0.0/-1", "cdn.example.com", "10.0.0.0/0008",
                              "10.0.0.0/8/8", "2852039166", "1.2.3", "fe80::1%eth0", NULL };
        for (const char **s = bad; *s; s++) {
                if (!net_prefix_parse(*s, &n)) {
                        fprintf(stderr, "accepted %s\n", *s);
                        ASSERT_TRUE(false);
                }
        }

        ASSERT_TRUE(!net_prefix_parse("169.254.0.0/16", &n));
        inet_pton(AF_INET, "169.254.169.254", a);
        ASSERT_TRUE(net_prefix_contains(&n, AF_INET, a));
        inet_pton(AF_INET, "169.255.0.1", a);
        ASSERT_TRUE(!net_prefix_contains(&n, AF_INET, a));
        /* ::ffff:169.254.169.254 is the same address over IPv6. */
        inet_pton(AF_INET6, "::ffff:169.254.169.254", a);
        ASSERT_TRUE(net_prefix_contains(&n, AF_INET6, a));
        inet_pton(AF_INET6, "::169.254.169.254", a);
        ASSERT_TRUE(!net_prefix_contains(&n, AF_INET6, a));
        ASSERT_TRUE(net_prefix_parse("10.1.3.0/23", &n));
        ASSERT_TRUE(!net_prefix_parse("10.1.2.0/24", &n));
        inet_pton(AF_INET, "10.1.2.255", a);
        ASSERT_TRUE(net_prefix_contains(&n, AF_INET, a));
        inet_pton(AF_INET, "10.1.3.0", a);
        ASSERT_TRUE(!net_prefix_contains(&n, AF_INET, a));
}

static void test_defaults(void) {
        HotUpdatePolicy p = {};

        hotupdate_policy_add_own_port(&p, 5000);
        hotupdate_policy_add_own_port(&p, 5001);
        hotupdate_policy_add_own_port(&p, 5000);
        ASSERT_EQ(p.n_own_ports, 2);

        const char *refused[] = { "169.254.169.254", "169.254.0.1", "0.0.0.0", "0.1.2.3", "::",
                                  "fe80::1", "febf::1", "::ffff:169.254.169.254", "fd00:ec2::254",
                                  "100.100.100.200", "64:ff9b::169.254.169.254", NULL };
        for (const char **s = refused; *s; s++) {
                if (!dest(&p, DESTINATION_DOWNLOAD, *s, 80, false)) {
                        fprintf(stderr, "allowed %s\n", *s);
                        ASSERT_TRUE(false);
                }
                ASSERT_TRUE(dest(&p, DESTINATION_GAME, *s, 80, false));
        }
        ASSERT_TRUE(strstr(dest(&p, DESTINATION_DOWNLOAD, "169.254.169.254", 80, false),
                           "169.254.0.0/16"));

        const char *allowed[] = { "127.0.0.1", "10.0.0.1", "192.0.2.1", "::1", "2001:db8::1",
                                  "fec0::1", "100.100.100.201", "169.253.255.255", NULL };
        for (const char **s = allowed; *s; s++)
                if (dest(&p, DESTINATION_DOWNLOAD, *s, 443, false)) {
                        fprintf(stderr, "refused %s: %s\n", *s, why);
                        ASSERT_TRUE(false);
                }

        /* Own ports: only on this host's addresses. */
        ASSERT_TRUE(strstr(dest(&p, DESTINATION_DOWNLOAD, "127.0.0.1", 5000, true), "own"));
        ASSERT_TRUE(dest(&p, DESTINATION_GAME, "127.0.0.1", 5001, true));
        ASSERT_TRUE(!dest(&p, DESTINATION_DOWNLOAD, "127.0.0.1", 5002, true));
        ASSERT_TRUE(!dest(&p, DESTINATION_DOWNLOAD, "192.0.2.1", 5000, false));
        hotupdate_policy_done(&p);
}

static void test_lists(void) {
        HotUpdatePolicy p = {};
        NetPrefix allowed[2], denied[1];

        ASSERT_TRUE(!net_prefix_parse("10.77.0.0/16", &allowed[0]));
        ASSERT_TRUE(!net_prefix_parse("169.254.169.254", &allowed[1]));
        ASSERT_TRUE(!net_prefix_parse("10.77.9.0/24", &denied[0]));
        p.allowed = allowed;
        p.n_allowed = 2;
        p.denied = denied;
        p.n_denied = 1;
        hotupdate_policy_add_own_port(&p, 5000);

        /* Downloads are locked to the allowed networks; an explicit allow beats the default. */
        ASSERT_TRUE(!dest(&p, DESTINATION_DOWNLOAD, "10.77.1.1", 443, false));
        ASSERT_TRUE(!dest(&p, DESTINATION_DOWNLOAD, "169.254.169.254", 80, false));
        ASSERT_TRUE(dest(&p, DESTINATION_DOWNLOAD, "169.254.169.253", 80, false));
        ASSERT_TRUE(strstr(dest(&p, DESTINATION_DOWNLOAD, "192.0.2.1", 80, false),
                           "not in allowedDestinations"));
        /* Denied beats allowed. */
        ASSERT_TRUE(strstr(dest(&p, DESTINATION_DOWNLOAD, "10.77.9.9", 443, false),
                           "deniedDestinations"));
        /* The game's reload and check are not locked, but still get denials and defaults. */
        ASSERT_TRUE(!dest(&p, DESTINATION_GAME, "127.0.0.1", 8080, true));
        ASSERT_TRUE(dest(&p, DESTINATION_GAME, "10.77.9.1", 80, false));
        ASSERT_TRUE(dest(&p, DESTINATION_GAME, "169.254.1.1", 80, false));
        /* The suite's own ports stay refused even inside an allowed network. */
        ASSERT_TRUE(!net_prefix_parse("127.0.0.0/8", &allowed[0]));
        ASSERT_TRUE(dest(&p, DESTINATION_DOWNLOAD, "127.0.0.1", 5000, true));
}

static void test_sources(void) {
        char *sources[] = { (char *) "https://cdn.example.com/game/",
                            (char *) "http://10.0.0.1:8080/v", NULL };
        HotUpdatePolicy p = { .sources = sources, .n_sources = 2 };

        const char *ok[] = { "https://cdn.example.com/game/a.json",
                             "https://CDN.example.com/game/a.json",
                             "https://cdn.example.com:443/game/x?y=1",
                             "HTTPS://cdn.example.com/game/sub/dir/a",
                             "https://cdn.example.com/game/",
                             "http://10.0.0.1:8080/v", "http://10.0.0.1:8080/v/x",
                             "https://cdn.example.com/other/../game/a",
                             /* Parameters elsewhere, and names that start with dots. */
                             "https://cdn.example.com/game/a;v=1", "https://cdn.example.com/game/...;",
                             "https://cdn.example.com/game/.hidden", "https://cdn.example.com/game/a..;",
                             NULL };
        for (const char **s = ok; *s; s++)
                if (hotupdate_policy_check_source(&p, *s, why, sizeof why)) {
                        fprintf(stderr, "refused %s: %s\n", *s, why);
                        ASSERT_TRUE(false);
                }
        const char *refused[] = { "https://cdn.example.com/gamex/a",
                                  "https://cdn.example.com/game",
                                  "http://cdn.example.com/game/a",
                                  "https://cdn.example.com:8443/game/a",
                                  "https://cdn.example.com.evil.test/game/a",
                                  "https://evil.test/game/a",
                                  "https://cdn.example.com/game/../admin",
                                  "https://cdn.example.com/game/%2e%2e/admin",
                                  "https://cdn.example.com/game/%2E%2E%2Fadmin",
                                  "https://cdn.example.com/game/..%5cadmin",
                                  /* Dot segments with path parameters: ".." to Tomcat. */
                                  "https://cdn.example.com/game/..;/admin",
                                  "https://cdn.example.com/game/..;x=1/admin",
                                  "https://cdn.example.com/game/.;/a",
                                  "https://cdn.example.com/game/a/..%3B/admin",
                                  "https://cdn.example.com/game/..;",
                                  "http://10.0.0.1/v/x", "http://10.0.0.1:8080/vx",
                                  "ftp://cdn.example.com/game/a", "not a url", NULL };
        for (const char **s = refused; *s; s++)
                if (!hotupdate_policy_check_source(&p, *s, why, sizeof why)) {
                        fprintf(stderr, "allowed %s\n", *s);
                        ASSERT_TRUE(false);
                }
        ASSERT_TRUE(hotupdate_policy_check_source(&p, NULL, why, sizeof why));

        /* User info in any form, on an allowed prefix (a redirect can add it), with or without
         * a list; the reason never shows it. An '@' in the path or query is no user info. */
        HotUpdatePolicy none = {};
        const char *creds[] = { "https://user@cdn.example.com/game/x",
                                "https://user:secret@cdn.example.com/game/x",
                                "https://:secret@cdn.example.com/game/x",
                                "https://@cdn.example.com/game/x",
                                "https://:@cdn.example.com/game/x",
                                "https://us%40er:se%40cret@cdn.example.com/game/x",
                                "HTTP://user:secret@10.0.0.1:8080/v/x", NULL };
        for (const char **s = creds; *s; s++) {
                ASSERT_STREQ(hotupdate_policy_check_source(&p, *s, why, sizeof why),
                             "the URL carries credentials (user:password@), which are never sent");
                ASSERT_STREQ(hotupdate_policy_check_source(&none, *s, why, sizeof why),
                             "the URL carries credentials (user:password@), which are never sent");
        }
        ASSERT_TRUE(!hotupdate_policy_check_source(&p, "https://cdn.example.com/game/a@b?c=d@e",
                                                   why, sizeof why));
        ASSERT_TRUE(!hotupdate_policy_check_source(&none, "https://cdn.example.com/x@y", why,
                                                   sizeof why));
        ASSERT_TRUE(!hotupdate_policy_check_source(&none, "https://anything/", why, sizeof why));
}

static void test_file_names(void) {
        char *globs[] = { (char *) "*.json", (char *) "config-v[0-9]", NULL };
        HotUpdatePolicy p = { .file_globs = globs, .n_file_globs = 2 };

        ASSERT_TRUE(!hotupdate_policy_check_file_name(&p, "game.json", why, sizeof why));
        ASSERT_TRUE(!hotupdate_policy_check_file_name(&p, "config-v7", why, sizeof why));
        ASSERT_TRUE(hotupdate_policy_check_file_name(&p, "creds.txt", why, sizeof why));
        ASSERT_TRUE(strstr(why, "allowedFileNames"));
        /* A leading dot is not matched by '*'. */
        ASSERT_TRUE(hotupdate_policy_check_file_name(&p, ".json", why, sizeof why));
        ASSERT_TRUE(hotupdate_policy_check_file_name(&p, "config-v10", why, sizeof why));
        ASSERT_TRUE(hotupdate_policy_check_file_name(&p, NULL, why, sizeof why));
        HotUpdatePolicy none = {};
        ASSERT_TRUE(!hotupdate_policy_check_file_name(&none, "anything", why, sizeof why));
}

static HotUpdateConfig *parse(const char *text, OkgErrors *e) {
        _cleanup_(okg_node_freep) OkgNode *n = NULL;
        HotUpdateConfig *c = NULL;

        ASSERT_EQ(okg_yaml_parse_string(text, strlen(text), "s.yaml", &n, e), 0);
        (void) hotupdate_config_parse(n, "s.yaml", "c", e, &c);
        return c;
}

static void test_config(void) {
        OkgErrors e = {};
        HotUpdateConfig *c;
        bool on[_PROTECTION_MAX];

        c = parse("signal: {processName: game}\n"
                  "allowedDestinations: [10.0.0.0/8, '169.254.169.254']\n"
                  "deniedDestinations: ['fd00::/8']\n"
                  "allowedSources: ['https://cdn.example.com/game/']\n"
                  "allowedFileNames: ['*.json']\n",
                  &e);
        ASSERT_TRUE(c);
        ASSERT_EQ(e.n, 0);
        ASSERT_EQ(c->policy.n_allowed, 2);
        ASSERT_EQ(c->policy.n_denied, 1);
        ASSERT_STREQ(c->policy.sources[0], "https://cdn.example.com/game/");
        ASSERT_STREQ(c->policy.file_globs[0], "*.json");
        ASSERT_EQ(c->policy.n_own_ports, 1);
        ASSERT_EQ(c->policy.own_ports[0], 5000);
        hotupdate_policy_protections(&c->policy, false, c->bind_address, on);
        ASSERT_TRUE(on[PROTECTION_ALLOWED_SOURCES] && on[PROTECTION_ALLOWED_FILE_NAMES]);
        ASSERT_TRUE(!on[PROTECTION_AUTH_TOKEN] && !on[PROTECTION_LOOPBACK_ONLY]);
        ASSERT_TRUE(!hotupdate_policy_is_open(&c->policy, false, "0.0.0.0"));
        hotupdate_config_free(c);

        /* The proposal's config: open; a token, a loopback address or sources close it. */
        c = parse("signal: {processName: game}\n", &e);
        ASSERT_TRUE(c);
        ASSERT_TRUE(hotupdate_policy_is_open(&c->policy, false, "0.0.0.0"));
        ASSERT_TRUE(hotupdate_policy_is_open(&c->policy, false, "::"));
        ASSERT_TRUE(!hotupdate_policy_is_open(&c->policy, true, "0.0.0.0"));
        ASSERT_TRUE(!hotupdate_policy_is_open(&c->policy, false, "127.0.0.1"));
        ASSERT_TRUE(!hotupdate_policy_is_open(&c->policy, false, "::1"));
        ASSERT_TRUE(!hotupdate_policy_is_open(&c->policy, false, "::ffff:127.0.0.1"));
        hotupdate_config_free(c);

        /* Every bad entry is reported, at its line, and nothing is returned. */
        c = parse("signal: {processName: game}\n"
                  "allowedDestinations: [10.0.0.1/8, cdn.example.com]\n"
                  "deniedDestinations: 10.0.0.0/8\n"
                  "allowedSources: ['https://cdn.example.com', 'cdn.example.com/x', '']\n"
                  "allowedFileNames: ['a/b', [x]]\n",
                  &e);
        ASSERT_TRUE(!c);
        ASSERT_EQ(e.n, 7);
        char *line = okg_error_format(&e.items[0]);
        ASSERT_TRUE(line && strstr(line, "s.yaml:2:") && strstr(line, "c.allowedDestinations[0]"));
        free(line);
        okg_errors_done(&e);
}

int main(void) {
        test_prefix_parse();
        test_defaults();
        test_lists();
        test_sources();
        test_file_names();
        test_config();
        printf("ok\n");
        return 0;
}
