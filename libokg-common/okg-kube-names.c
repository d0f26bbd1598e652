/* Kubernetes, Prometheus and URL syntax checks; the rules are Kubernetes' own validation
 * (apimachinery's IsQualifiedName, IsValidLabelValue, resource.ParseQuantity). */
#include <stddef.h>
#include <string.h>

#include "macro.h"
#include "okg-kube-names.h"

static bool is_alnum(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool is_digit(char c) {
        return c >= '0' && c <= '9';
}

/* [A-Za-z0-9._-], alnum at both ends; length in [min_len, 63]. */
static const char *name_part_check(const char *s, size_t len, bool allow_empty) {
        if (len == 0)
                return allow_empty ? NULL : "the name part must not be empty";
        if (len > 63)
                return "must be no more than 63 characters";
        if (!is_alnum(s[0]) || !is_alnum(s[len - 1]))
                return "must start and end with a letter or digit";
        for (size_t i = 0; i < len; i++)
                if (!is_alnum(s[i]) && !strchr("._-", s[i]))
                        return "may contain only letters, digits, '-', '_' and '.'";
        return NULL;
}

/* The same checks serve a name and the prefix of a qualified name; the phrase says which. */
#define SUBDOMAIN_PHRASE(prefix, rest) ((prefix) ? "the prefix " rest : rest) /* NOLINT(bugprone-macro-parentheses): rest is a literal to paste */

static const char *dns_subdomain_check_len(const char *s, size_t len, bool prefix) {
        if (len == 0)
                return SUBDOMAIN_PHRASE(prefix, "must not be empty");
        if (len > 253)
                return SUBDOMAIN_PHRASE(prefix, "must be no more than 253 characters");

        size_t start = 0;
        for (size_t i = 0; i <= len; i++) {
                if (i < len && s[i] != '.')
                        continue;
                /* label s[start, i) */
                if (i == start)
                        return SUBDOMAIN_PHRASE(prefix, "must be a lowercase DNS subdomain (empty label)");
                if (i - start > 63)
                        return SUBDOMAIN_PHRASE(prefix, "must be a lowercase DNS subdomain (label longer than 63 characters)");
                for (size_t j = start; j < i; j++) {
                        char c = s[j];
                        if (!((c >= 'a' && c <= 'z') || is_digit(c) || c == '-'))
                                return SUBDOMAIN_PHRASE(prefix, "must be a lowercase DNS subdomain (only a-z, 0-9, '-' and '.')");
                }
                if (s[start] == '-' || s[i - 1] == '-')
                        return SUBDOMAIN_PHRASE(prefix, "must be a lowercase DNS subdomain (labels start and end with a letter or digit)");
                start = i + 1;
        }
        return NULL;
}

const char *kube_dns_subdomain_check(const char *s) {
        if (!s)
                return "must not be empty";
        return dns_subdomain_check_len(s, strlen(s), false);
}

const char *kube_qualified_name_check(const char *s) {
        if (isempty(s))
                return "must not be empty";

        const char *slash = strchr(s, '/');
        if (slash) {
                if (strchr(slash + 1, '/'))
                        return "must contain at most one '/'";
                const char *r = dns_subdomain_check_len(s, (size_t) (slash - s), true);
                if (r)
                        return r;
                s = slash + 1;
        }
        return name_part_check(s, strlen(s), false);
}

const char *kube_label_value_check(const char *s) {
        if (!s)
                return NULL;
        return name_part_check(s, strlen(s), true);
}

const char *kube_quantity_check(const char *s) {
        const char *p = s;
        size_t digits = 0;

        if (isempty(s))
                return "must not be empty";
        if (*p == '-')
                return "must not be negative";
        if (*p == '+')
                p++;

        /* <digits> | <digits>.<digits> | <digits>. | .<digits> */
        while (is_digit(*p)) {
                p++;
                digits++;
        }
        if (*p == '.') {
                p++;
                while (is_digit(*p)) {
                        p++;
                        digits++;
                }
        }
        if (digits == 0)
                return "must start with a number";

        if (*p == 0)
                return NULL;

        /* Suffix: binary SI, decimal SI, or a decimal exponent. */
        static const char *const suffixes[] = {
                "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "n", "u", "m", "k", "M", "G", "T", "P", "E",
        };
        for (size_t i = 0; i < ELEMENTSOF(suffixes); i++)
                if (streq(p, suffixes[i]))
                        return NULL;

        if (*p == 'e' || *p == 'E') {
                p++;
                if (*p == '+' || *p == '-')
                        p++;
                if (!is_digit(*p))
                        return "has an invalid exponent";
                while (is_digit(*p))
                        p++;
                if (*p == 0)
                        return NULL;
        }
        return "has an unknown suffix";
}

bool prometheus_metric_name_valid(const char *s) {
        if (isempty(s))
                return false;
        for (const char *p = s; *p; p++) {
                char c = *p;
                bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                          c == ':' || (p > s && is_digit(c));
                if (!ok)
                        return false;
        }
        return true;
}

bool okg_http_token_valid(const char *s) {
        if (isempty(s))
                return false;
        for (const char *p = s; *p; p++)
                if (!is_alnum(*p) && !strchr("!#$%&'*+-.^_`|~", *p))
                        return false;
        return true;
}

static bool ascii_prefix_ci(const char *s, const char *prefix, const char **ret_rest) {
        size_t l = strlen(prefix);
        for (size_t i = 0; i < l; i++) {
                char c = s[i];
                if (c >= 'A' && c <= 'Z')
                        c = (char) (c - 'A' + 'a');
                if (c != prefix[i])
                        return false;
        }
        *ret_rest = s + l;
        return true;
}

void okg_url_redact(const char *s, char *buf, size_t size) {
        const char *scheme_end, *at = NULL;
        size_t alen;

        if (size == 0)
                return;
        scheme_end = s ? strstr(s, "://") : NULL;
        if (scheme_end) {
                const char *auth = scheme_end + 3;
                alen = strcspn(auth, "/?#");
                for (const char *p = auth; p < auth + alen; p++)
                        if (*p == '@')
                                at = p;
        }
        if (!at) {
                snprintf(buf, size, "%s", strempty(s));
                return;
        }
        snprintf(buf, size, "%.*s***%s", (int) (scheme_end + 3 - s), s, at);
}

const char *okg_http_url_check(const char *s) {
        const char *rest;

        if (isempty(s))
                return "must not be empty";
        for (const char *p = s; *p; p++)
                if ((unsigned char) *p <= ' ' || *p == 0x7f)
                        return "must not contain spaces or control characters";

        if (!ascii_prefix_ci(s, "http://", &rest) && !ascii_prefix_ci(s, "https://", &rest))
                return "must start with http:// or https://";

        /* authority = [userinfo@]host[:port], up to the first '/', '?' or '#' */
        size_t alen = strcspn(rest, "/?#");
        /* A user name or password in a config URL would show wherever the URL does: the log,
         * /metrics (on all addresses), the bus, okgctl. Hot-update URLs refuse them too. */
        if (memchr(rest, '@', alen))
                return "must not contain credentials (user:password@)";
        const char *host = rest, *end = rest + alen, *port = NULL;

        if (*host == '[') {
                const char *close = memchr(host, ']', alen);
                if (!close)
                        return "has an unterminated IPv6 address";
                if (close == host + 1)
                        return "has no host";
                if (close + 1 < end) {
                        if (close[1] != ':')
                                return "has garbage after the IPv6 address";
                        port = close + 2;
                }
        } else {
                const char *colon = memchr(host, ':', alen);
                if (colon)
                        port = colon + 1;
                if ((colon ?: end) == host)
                        return "has no host";
        }

        if (port) {
                unsigned long v = 0;
                if (port == end)
                        return "has an empty port";
                for (const char *p = port; p < end; p++) {
                        if (!is_digit(*p))
                                return "has a port that is not a number";
                        v = v * 10 + (unsigned long) (*p - '0');
                        if (v > 65535)
                                return "has a port outside 1-65535";
                }
                if (v == 0)
                        return "has a port outside 1-65535";
        }
        return NULL;
}
