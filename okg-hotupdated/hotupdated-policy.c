/* The hot-update security policy: networks, URL prefixes, file-name globs. See
 * hotupdated-policy.h. No I/O. */
#define _GNU_SOURCE 1

#include <arpa/inet.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "hotupdated-policy.h"
#include "macro.h"
#include "okg-curl.h"

const char *const hotupdate_default_denied[] = {
        "169.254.0.0/16",       /* IPv4 link-local: the metadata service of most clouds */
        "fe80::/10",            /* IPv6 link-local */
        "0.0.0.0/8",            /* "this network": 0.0.0.0 connects to this host on Linux */
        "::/128",               /* unspecified */
        "fd00:ec2::254/128",    /* AWS instance metadata over IPv6 */
        "100.100.100.200/32",   /* Alibaba Cloud instance metadata */
        "64:ff9b::a9fe:0/112",  /* IPv4 link-local through a NAT64 gateway (RFC 6052 prefix) */
        NULL,
};

void hotupdate_policy_done(HotUpdatePolicy *p) {
        if (!p)
                return;
        free(p->allowed);
        free(p->denied);
        strv_free(p->sources);
        strv_free(p->file_globs);
        *p = (HotUpdatePolicy) {};
}

void hotupdate_policy_add_own_port(HotUpdatePolicy *p, uint16_t port) {
        if (port == 0)
                return;
        for (size_t i = 0; i < p->n_own_ports; i++)
                if (p->own_ports[i] == port)
                        return;
        if (p->n_own_ports < HOTUPDATE_POLICY_MAX_OWN_PORTS)
                p->own_ports[p->n_own_ports++] = port;
}

/* ---- networks ---- */

/* ::ffff:a.b.c.d is a.b.c.d: the kernel connects it over IPv4. */
static int unmap(int family, const uint8_t *addr, const uint8_t **ret) {
        static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

        if (family == AF_INET6 && memcmp(addr, mapped, sizeof mapped) == 0) {
                *ret = addr + 12;
                return AF_INET;
        }
        *ret = addr;
        return family;
}

const char *net_prefix_parse(const char *s, NetPrefix *ret) {
        char buf[INET6_ADDRSTRLEN + 8];
        const char *slash;
        NetPrefix p = {};
        unsigned max;

        if (!s || !*s)
                return "is empty";
        if (strlen(s) >= sizeof buf)
                return "is too long for an address/prefix";
        strcpy(buf, s);
        slash = strchr(s, '/');
        if (slash)
                buf[slash - s] = 0;

        if (inet_pton(AF_INET, buf, p.addr) == 1) {
                p.family = AF_INET;
                max = 32;
        } else if (inet_pton(AF_INET6, buf, p.addr) == 1) {
                p.family = AF_INET6;
                max = 128;
        } else
                return "is not a numeric IPv4 or IPv6 address (expected e.g. 10.0.0.0/8 or "
                       "fd00::/8)";

        p.prefix = max;
        if (slash) {
                const char *d = slash + 1;
                unsigned n = 0;

                if (!*d || strlen(d) > 3)
                        return "has an invalid prefix length";
                for (; *d; d++) {
                        if (*d < '0' || *d > '9')
                                return "has an invalid prefix length";
                        n = n * 10 + (unsigned) (*d - '0');
                }
                if (n > max)
                        return p.family == AF_INET ? "has a prefix length over 32"
                                                   : "has a prefix length over 128";
                p.prefix = n;
        }
        /* 10.0.0.1/8 is most likely a typo for a host or a network: make the operator say. */
        for (unsigned bit = p.prefix; bit < max; bit++)
                if (p.addr[bit / 8] & (0x80 >> (bit % 8)))
                        return "has bits set after the prefix length (write the network "
                               "address, e.g. 10.0.0.0/8)";

        /* An IPv4-mapped network is the IPv4 one. */
        const uint8_t *a;
        if (p.prefix >= 96 && unmap(p.family, p.addr, &a) == AF_INET) {
                memmove(p.addr, a, 4);
                memset(p.addr + 4, 0, 12);
                p.family = AF_INET;
                p.prefix -= 96;
        }
        *ret = p;
        return NULL;
}

bool net_prefix_contains(const NetPrefix *p, int family, const uint8_t *addr) {
        const uint8_t *a;
        unsigned full, rest;

        family = unmap(family, addr, &a);
        if (family != p->family)
                return false;
        full = p->prefix / 8;
        rest = p->prefix % 8;
        if (memcmp(p->addr, a, full) != 0)
                return false;
        if (rest == 0)
                return true;
        uint8_t mask = (uint8_t) (0xff << (8 - rest));
        return (p->addr[full] & mask) == (a[full] & mask);
}

static const NetPrefix *find_net(const NetPrefix *v, size_t n, int family, const uint8_t *addr) {
        for (size_t i = 0; i < n; i++)
                if (net_prefix_contains(&v[i], family, addr))
                        return &v[i];
        return NULL;
}

static void format_net(const NetPrefix *p, char *buf, size_t size) {
        char a[INET6_ADDRSTRLEN];

        if (!inet_ntop(p->family, p->addr, a, sizeof a))
                snprintf(a, sizeof a, "?");
        snprintf(buf, size, "%s/%u", a, p->prefix);
}

static const char *fail(char *buf, size_t size, const char *fmt, ...) _printf_(3, 4);
static const char *fail(char *buf, size_t size, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(buf, size, fmt, ap);
        va_end(ap);
        return buf;
}

const char *hotupdate_policy_check_destination(const HotUpdatePolicy *p, DestinationKind kind,
                                               int family, const uint8_t *addr, uint16_t port,
                                               bool is_local, char *buf, size_t size) {
        char shown[INET6_ADDRSTRLEN], net[INET6_ADDRSTRLEN + 8];
        const NetPrefix *hit;
        const uint8_t *a;
        int fam;

        fam = unmap(family, addr, &a);
        if ((fam != AF_INET && fam != AF_INET6) || !inet_ntop(fam, a, shown, sizeof shown))
                return fail(buf, size, "the address family %d is not IPv4 or IPv6", family);

        /* The operator's own denials first, and the suite itself: a request to this daemon's
         * port would call itself, one to the health port would reach the launcher. */
        hit = find_net(p->denied, p->n_denied, fam, a);
        if (hit) {
                format_net(hit, net, sizeof net);
                return fail(buf, size, "destination %s is in deniedDestinations (%s)", shown, net);
        }
        if (is_local)
                for (size_t i = 0; i < p->n_own_ports; i++)
                        if (p->own_ports[i] == port)
                                return fail(buf, size,
                                            "destination %s port %u is okg-sidecar's own",
                                            shown, (unsigned) port);

        if (find_net(p->allowed, p->n_allowed, fam, a))
                return NULL;

        for (const char *const *d = hotupdate_default_denied; *d; d++) {
                NetPrefix np;
                if (net_prefix_parse(*d, &np) == NULL && net_prefix_contains(&np, fam, a))
                        return fail(buf, size,
                                    "destination %s is in %s, refused by default (list it in "
                                    "allowedDestinations to allow it)",
                                    shown, *d);
        }
        /* With allowedDestinations set, downloads go there and nowhere else; the reload
         * request and postReloadCheck are the operator's own config and are not locked. */
        if (kind == DESTINATION_DOWNLOAD && p->n_allowed > 0)
                return fail(buf, size, "destination %s is not in allowedDestinations", shown);
        return NULL;
}

/* ---- sources ---- */

typedef struct UrlParts {
        char *scheme, *host, *port, *path;
        bool userinfo;
} UrlParts;

static void url_parts_done(UrlParts *u) {
        curl_free(u->scheme);
        curl_free(u->host);
        curl_free(u->port);
        curl_free(u->path);
        *u = (UrlParts) {};
}

/* The URL has a user name or a password, even an empty one ("@host", ":@host"). */
static bool url_has_userinfo(CURLU *u) {
        _cleanup_(curl_freep) char *user = NULL, *password = NULL;

        return (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK && user) ||
               (curl_url_get(u, CURLUPART_PASSWORD, &password, 0) == CURLUE_OK && password);
}

/* Scheme, host, port (the default one filled in) and path with dot segments removed, as the
 * request will use them. -EINVAL when it is not an absolute http(s) URL. */
static int url_parts(const char *url, UrlParts *ret) {
        _cleanup_(curl_url_cleanupp) CURLU *u = curl_url();
        UrlParts p = {};

        if (!u)
                return -ENOMEM;
        if (curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK ||
            curl_url_get(u, CURLUPART_SCHEME, &p.scheme, 0) != CURLUE_OK ||
            curl_url_get(u, CURLUPART_HOST, &p.host, 0) != CURLUE_OK ||
            curl_url_get(u, CURLUPART_PORT, &p.port, CURLU_DEFAULT_PORT) != CURLUE_OK ||
            curl_url_get(u, CURLUPART_PATH, &p.path, 0) != CURLUE_OK) {
                url_parts_done(&p);
                return -EINVAL;
        }
        if (strcasecmp(p.scheme, "http") != 0 && strcasecmp(p.scheme, "https") != 0) {
                url_parts_done(&p);
                return -EINVAL;
        }
        p.userinfo = url_has_userinfo(u);
        *ret = p;
        return 0;
}

/* Escapes a server may decode into "..", "/" or "\" after the prefix was matched. */
static bool path_has_escaped_separators(const char *path) {
        for (const char *s = path; *s; s++) {
                if (*s == '\\')
                        return true;
                if (s[0] == '%' && s[1] && s[2] &&
                    (strncasecmp(s, "%2e", 3) == 0 || strncasecmp(s, "%2f", 3) == 0 ||
                     strncasecmp(s, "%5c", 3) == 0))
                        return true;
        }
        return false;
}

/* A dot segment with path parameters ("..;", ".;x", "..%3b"): not a dot segment to a URL
 * parser, so it survives the resolution of "." and "..", but servers that strip parameters from
 * segments before they resolve them (Tomcat, Spring) take it for "." or "..". */
static bool path_has_dot_segment_parameters(const char *path) {
        for (const char *s = path; *s; s++) {
                const char *t;

                if (s != path && s[-1] != '/')
                        continue;
                t = s;
                if (*t == '.')
                        t++;
                else
                        continue;
                if (*t == '.')
                        t++;
                if (*t == ';' || strncasecmp(t, "%3b", 3) == 0)
                        return true;
        }
        return false;
}

static bool source_matches(const UrlParts *want, const UrlParts *got) {
        size_t n = strlen(want->path);

        if (strcasecmp(want->scheme, got->scheme) != 0 || strcasecmp(want->host, got->host) != 0 ||
            !streq(want->port, got->port))
                return false;
        /* "/game/" matches "/game/x"; "/game" matches "/game" and "/game/x", not "/gamex". */
        if (strncmp(want->path, got->path, n) != 0)
                return false;
        return n > 0 && (want->path[n - 1] == '/' || got->path[n] == 0 || got->path[n] == '/');
}

/* The checks an allowedSources entry gets; NULL when fine. */
static const char *source_entry_check(const char *s) {
        UrlParts p = {};
        const char *why = NULL;
        int r;

        if (strchr(s, '?') || strchr(s, '#'))
                return "must be a URL prefix without a query or fragment";
        if (strchr(s, '@'))
                return "must not contain credentials (user:password@)";
        r = url_parts(s, &p);
        if (r == -ENOMEM)
                return "cannot be parsed (out of memory)";
        if (r < 0)
                return "is not an absolute http or https URL (expected e.g. "
                       "https://cdn.example.com/game/)";
        if (isempty(p.host))
                why = "has no host";
        else if (path_has_escaped_separators(p.path))
                why = "must not contain %2e, %2f, %5c or a backslash";
        else if (path_has_dot_segment_parameters(p.path))
                why = "must not contain a path segment starting with \".;\" or \"..;\"";
        url_parts_done(&p);
        return why;
}

const char *hotupdate_policy_check_source(const HotUpdatePolicy *p, const char *url, char *buf,
                                          size_t size) {
        UrlParts got = {};
        bool ok = false;
        int r;

        /* Checked with or without a list: a redirect may add credentials the request could not
         * carry, and libcurl would send them (and they would show in the log). */
        if (url && strchr(url, '@')) {
                r = url_parts(url, &got);
                ok = r >= 0 && got.userinfo;
                url_parts_done(&got);
                if (r == -ENOMEM)
                        return fail(buf, size, "the URL cannot be parsed (out of memory)");
                if (ok)
                        return fail(buf, size, "the URL carries credentials (user:password@), "
                                               "which are never sent");
        }
        if (p->n_sources == 0)
                return NULL;
        if (!url || url_parts(url, &got) < 0)
                return fail(buf, size, "the URL is not in allowedSources (it cannot be parsed)");
        if (path_has_escaped_separators(got.path)) {
                url_parts_done(&got);
                return fail(buf, size, "the URL's path has %%2e, %%2f, %%5c or a backslash, "
                                       "which could leave an allowedSources prefix");
        }
        if (path_has_dot_segment_parameters(got.path)) {
                url_parts_done(&got);
                return fail(buf, size, "the URL's path has a segment starting with \".;\" or "
                                       "\"..;\" (a dot segment with parameters), which some "
                                       "servers take for \".\" or \"..\" and so could leave "
                                       "an allowedSources prefix");
        }
        for (size_t i = 0; i < p->n_sources && !ok; i++) {
                UrlParts want = {};
                if (url_parts(p->sources[i], &want) < 0)
                        continue;
                ok = source_matches(&want, &got);
                url_parts_done(&want);
        }
        url_parts_done(&got);
        if (ok)
                return NULL;
        return fail(buf, size, "the URL does not start with any of allowedSources");
}

/* ---- file names ---- */

const char *hotupdate_policy_check_file_name(const HotUpdatePolicy *p, const char *name,
                                             char *buf, size_t size) {
        if (p->n_file_globs == 0)
                return NULL;
        if (name)
                for (size_t i = 0; i < p->n_file_globs; i++)
                        if (fnmatch(p->file_globs[i], name, FNM_PERIOD) == 0)
                                return NULL;
        return fail(buf, size, "fileName %s does not match any of allowedFileNames",
                    strempty(name));
}

/* ---- config ---- */

typedef const char *(*EntryCheck)(const char *s);

static const char *net_entry(const char *s) {
        NetPrefix n;
        return net_prefix_parse(s, &n);
}

static const char *glob_entry(const char *s) {
        if (strchr(s, '/'))
                return "must be a file name pattern without '/'";
        return NULL;
}

/* A sequence of non-empty strings, each passing check; the good ones go to *ret
 * (NULL-terminated), their number to *n_ret. Bad ones are errors in e. */
static int read_list(const OkgNode *m, const char *file, const char *path, const char *key,
                     EntryCheck check, OkgErrors *e, char ***ret, size_t *n_ret) {
        OkgNode *v = okg_node_get(m, key);
        _cleanup_(strv_freep) char **l = NULL;
        _cleanup_(freep) char *p = NULL;
        char what[80];
        size_t n = 0;

        if (okg_node_is_null(v))
                return 0;
        p = okg_path_key(path, key);
        if (!p)
                return -ENOMEM;
        if (v->type != OKG_NODE_SEQUENCE) {
                okg_errors_add(e, file, v, p, "expected a sequence of strings, got %s",
                               okg_node_describe(v, what, sizeof what));
                return 0;
        }
        if (v->n == 0)
                return 0;
        l = calloc(v->n + 1, sizeof(char *));
        if (!l)
                return -ENOMEM;
        for (size_t i = 0; i < v->n; i++) {
                _cleanup_(freep) char *ip = okg_path_index(p, i), *s = NULL;
                const OkgNode *x = v->values[i];
                const char *why;
                int r;

                if (!ip)
                        return -ENOMEM;
                r = okg_node_get_string(x, file, ip, e, &s);
                if (r == -ENOMEM)
                        return r;
                if (r < 0)
                        continue;
                if (isempty(s)) {
                        okg_errors_add(e, file, x, ip, "must not be empty");
                        continue;
                }
                why = check(s);
                if (why) {
                        okg_errors_add(e, file, x, ip, "invalid entry %s: %s",
                                       okg_node_describe(x, what, sizeof what), why);
                        continue;
                }
                l[n++] = TAKE_PTR(s);
        }
        *ret = TAKE_PTR(l);
        *n_ret = n;
        return 0;
}

static int read_nets(const OkgNode *m, const char *file, const char *path, const char *key,
                     OkgErrors *e, NetPrefix **ret, size_t *n_ret) {
        _cleanup_(strv_freep) char **l = NULL;
        NetPrefix *v;
        size_t n = 0;
        int r;

        r = read_list(m, file, path, key, net_entry, e, &l, &n);
        if (r < 0 || n == 0)
                return r;
        v = calloc(n, sizeof(NetPrefix));
        if (!v)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                (void) net_prefix_parse(l[i], &v[i]);    /* checked by read_list */
        *ret = v;
        *n_ret = n;
        return 0;
}

int hotupdate_policy_parse(const OkgNode *m, const char *file, const char *path, OkgErrors *e,
                           HotUpdatePolicy *p) {
        int r;

        r = read_nets(m, file, path, "allowedDestinations", e, &p->allowed, &p->n_allowed);
        if (r >= 0)
                r = read_nets(m, file, path, "deniedDestinations", e, &p->denied, &p->n_denied);
        if (r >= 0)
                r = read_list(m, file, path, "allowedSources", source_entry_check, e, &p->sources,
                              &p->n_sources);
        if (r >= 0)
                r = read_list(m, file, path, "allowedFileNames", glob_entry, e, &p->file_globs,
                              &p->n_file_globs);
        return r;
}

const char *const hotupdate_protection_names[_PROTECTION_MAX] = {
        [PROTECTION_AUTH_TOKEN] = "authToken",
        [PROTECTION_LOOPBACK_ONLY] = "loopbackOnly",
        [PROTECTION_DESTINATION_DEFAULTS] = "defaultDeniedDestinations",
        [PROTECTION_ALLOWED_DESTINATIONS] = "allowedDestinations",
        [PROTECTION_DENIED_DESTINATIONS] = "deniedDestinations",
        [PROTECTION_ALLOWED_SOURCES] = "allowedSources",
        [PROTECTION_ALLOWED_FILE_NAMES] = "allowedFileNames",
};

static bool is_loopback(const char *address) {
        uint8_t a[16];

        if (!address)
                return false;
        if (inet_pton(AF_INET, address, a) == 1)
                return a[0] == 127;
        if (inet_pton(AF_INET6, address, a) == 1) {
                static const uint8_t loop6[16] = { [15] = 1 };
                const uint8_t *v4;
                if (unmap(AF_INET6, a, &v4) == AF_INET)
                        return v4[0] == 127;
                return memcmp(a, loop6, 16) == 0;
        }
        return false;
}

void hotupdate_policy_protections(const HotUpdatePolicy *p, bool have_token,
                                  const char *bind_address, bool on[_PROTECTION_MAX]) {
        on[PROTECTION_AUTH_TOKEN] = have_token;
        on[PROTECTION_LOOPBACK_ONLY] = is_loopback(bind_address);
        on[PROTECTION_DESTINATION_DEFAULTS] = true;
        on[PROTECTION_ALLOWED_DESTINATIONS] = p->n_allowed > 0;
        on[PROTECTION_DENIED_DESTINATIONS] = p->n_denied > 0;
        on[PROTECTION_ALLOWED_SOURCES] = p->n_sources > 0;
        on[PROTECTION_ALLOWED_FILE_NAMES] = p->n_file_globs > 0;
}

bool hotupdate_policy_is_open(const HotUpdatePolicy *p, bool have_token, const char *bind_address) {
        return !have_token && p->n_sources == 0 && !is_loopback(bind_address);
}
