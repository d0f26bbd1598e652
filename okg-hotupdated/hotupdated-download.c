/* Content codings and response header lines; see hotupdated-download.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hotupdated-download.h"
#include "macro.h"

static const struct {
        const char *name;
        unsigned bit;
} codings[] = {
        { "gzip", DOWNLOAD_CODING_GZIP },
        { "x-gzip", DOWNLOAD_CODING_GZIP },
        { "deflate", DOWNLOAD_CODING_DEFLATE },
        { "br", DOWNLOAD_CODING_BR },
        { "zstd", DOWNLOAD_CODING_ZSTD },
};

static bool is_blank(char c) {
        return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool token_known(const char *s, size_t n, unsigned supported, bool transfer) {
        if (n == strlen("identity") && strncasecmp(s, "identity", n) == 0)
                return true;
        if (transfer && n == strlen("chunked") && strncasecmp(s, "chunked", n) == 0)
                return true;
        for (size_t i = 0; i < ELEMENTSOF(codings); i++)
                if ((supported & codings[i].bit) && n == strlen(codings[i].name) &&
                    strncasecmp(s, codings[i].name, n) == 0)
                        return true;
        return false;
}

int download_coding_check(const char *value, unsigned supported, bool transfer, char *bad,
                          size_t bad_size) {
        const char *s = value;

        while (*s) {
                size_t n;

                while (is_blank(*s) || *s == ',')
                        s++;
                if (!*s)
                        break;
                n = strcspn(s, ",");
                /* Coding parameters (";q=...") are not allowed in a response; keep them, so that
                 * such a token is refused rather than half understood. */
                while (n > 0 && is_blank(s[n - 1]))
                        n--;
                if (!token_known(s, n, supported, transfer)) {
                        size_t k = 0;
                        for (; k < n && k + 1 < bad_size; k++)
                                bad[k] = s[k] > ' ' && s[k] < 0x7f ? s[k] : '?';
                        if (bad_size > 0)
                                bad[k] = 0;
                        return 1;
                }
                s += n;
        }
        return 0;
}

void download_codings_format(unsigned supported, char *buf, size_t size) {
        size_t len = 0;

        if (size == 0)
                return;
        buf[0] = 0;
        for (size_t i = 0; i < ELEMENTSOF(codings); i++) {
                if (!(supported & codings[i].bit) || startswith(codings[i].name, "x-"))
                        continue;
                int w = snprintf(buf + len, size - len, "%s%s", len ? ", " : "", codings[i].name);
                if (w < 0 || (size_t) w >= size - len) {
                        buf[len] = 0;   /* whole names only */
                        break;
                }
                len += (size_t) w;
        }
        if (len == 0)
                snprintf(buf, size, "none");
}

int download_header_value(const char *line, size_t len, const char *name, char **ret) {
        size_t n = strlen(name), a, b;
        char *v;

        if (len <= n || strncasecmp(line, name, n) != 0 || line[n] != ':')
                return 0;
        a = n + 1;
        b = len;
        while (a < b && is_blank(line[a]))
                a++;
        while (b > a && is_blank(line[b - 1]))
                b--;
        v = strndup(line + a, b - a);
        if (!v)
                return -ENOMEM;
        *ret = v;
        return 1;
}
