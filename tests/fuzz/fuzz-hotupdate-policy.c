/* libFuzzer target: okg-hotupdated's security policy. Input: "NETWORK\nURL\nADDRESS" where
 * NETWORK goes to net_prefix_parse(), URL to the source check against a fixed allowedSources,
 * and the first 16 bytes of ADDRESS are an IPv6 address (the first 4 also read as IPv4) for the
 * destination check. Properties: a parsed network contains its own address; the default
 * denials hold whatever the spelling; an accepted source really is under its prefix. */
#define _GNU_SOURCE 1

#include <arpa/inet.h>
#include <strings.h>
#include <sys/socket.h>

#include "fuzz.h"
#include "hotupdated-policy.h"

static void check_network(const char *s) {
        NetPrefix n;

        if (net_prefix_parse(s, &n))
                return;
        FUZZ_ASSERT(n.family == AF_INET || n.family == AF_INET6);
        FUZZ_ASSERT(n.prefix <= (n.family == AF_INET ? 32U : 128U));
        FUZZ_ASSERT(net_prefix_contains(&n, n.family, n.addr));
}

static void check_address(const uint8_t *a, size_t len) {
        static const uint8_t mapped[12] = { [10] = 0xff, [11] = 0xff };
        char why[HOTUPDATE_POLICY_REASON_MAX];
        uint8_t v6[16] = {}, v4[4] = {};
        HotUpdatePolicy p = {};

        memcpy(v6, a, len < 16 ? len : 16);
        memcpy(v4, a, len < 4 ? len : 4);
        hotupdate_policy_add_own_port(&p, 5000);
        for (int kind = DESTINATION_DOWNLOAD; kind <= DESTINATION_GAME; kind++) {
                const char *r4 = hotupdate_policy_check_destination(&p, kind, AF_INET, v4, 80,
                                                                    false, why, sizeof why);
                const char *r6 = hotupdate_policy_check_destination(&p, kind, AF_INET6, v6, 80,
                                                                    false, why, sizeof why);
                /* Link-local and "this network" never pass without an explicit allow, nor
                 * their IPv4-mapped spellings. */
                if ((v4[0] == 169 && v4[1] == 254) || v4[0] == 0)
                        FUZZ_ASSERT(r4);
                if (memcmp(v6, mapped, 12) == 0 &&
                    ((v6[12] == 169 && v6[13] == 254) || v6[12] == 0))
                        FUZZ_ASSERT(r6);
                if (v6[0] == 0xfe && (v6[1] & 0xc0) == 0x80)
                        FUZZ_ASSERT(r6);
                FUZZ_ASSERT(hotupdate_policy_check_destination(&p, kind, AF_INET, v4, 5000,
                                                               true, why, sizeof why));
        }
}

static void check_source(const char *url) {
        char *sources[] = { (char *) "https://cdn.example.com/game/", NULL };
        HotUpdatePolicy p = { .sources = sources, .n_sources = 1 };
        char why[HOTUPDATE_POLICY_REASON_MAX];

        if (hotupdate_policy_check_source(&p, url, why, sizeof why))
                return;
        /* curl reads "https:/host" and "https:host" too, and so does the download. */
        FUZZ_ASSERT(strncasecmp(url, "https:", 6) == 0);
        FUZZ_ASSERT(strcasestr(url, "cdn.example.com"));
        /* No escaped dot in the path (the query may have anything), unless curl drops it with
         * a dot segment before the request is sent. */
        size_t path_end = strcspn(url, "?#");
        if (memmem(url, path_end, "/.", 2))
                return;
        /* The path starts after the authority ("https:", slashes, then up to the next '/'): a
         * user name before '@' is sent as a credential, not as a path. */
        size_t path_start = 6 + strspn(url + 6, "/");
        path_start += strcspn(url + path_start, "/?#");
        for (size_t i = path_start; i + 2 < path_end; i++)
                FUZZ_ASSERT(!(url[i] == '%' && url[i + 1] == '2' &&
                              (url[i + 2] == 'e' || url[i + 2] == 'E')));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const uint8_t *rest = data, *addr;
        size_t rest_len = size, addr_len;
        char *net = fuzz_split(data, size, '\n', &rest, &rest_len), *url = NULL;

        if (!net)
                return 0;
        check_network(net);
        url = fuzz_split(rest, rest_len, '\n', &addr, &addr_len);
        if (url) {
                check_source(url);
                check_address(addr, addr_len);
        }
        free(net);
        free(url);
        return 0;
}
