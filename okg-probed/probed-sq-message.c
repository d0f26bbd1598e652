/* Failure messages of httpGet and tcpSocket probes as Kruise's node daemon writes them: the
 * Go error texts of kubelet's probers (docs/service-quality.md, "Messages"). Pure logic. */
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "probed-http-proto.h"
#include "probed-sq.h"
#include "probed-sq-message.h"

/* Go's own texts for the errors a probe meets (its syscall table); the rest fall back to the
 * C library's text with Go's lower-case first letter, which is what Go's table holds. */
static const struct {
        int error;
        const char *text;
} go_errno[] = {
        { ECONNREFUSED, "connection refused" },
        { ECONNRESET, "connection reset by peer" },
        { EHOSTUNREACH, "no route to host" },
        { ENETUNREACH, "network is unreachable" },
        { ETIMEDOUT, "connection timed out" },
        { EADDRNOTAVAIL, "cannot assign requested address" },
        { EPIPE, "broken pipe" },
        { EACCES, "permission denied" },
        { EPERM, "operation not permitted" },
};

const char *sq_go_errno_text(int error, char *buf, unsigned size) {
        for (size_t i = 0; i < sizeof go_errno / sizeof go_errno[0]; i++)
                if (go_errno[i].error == error)
                        return go_errno[i].text;
        (void) snprintf(buf, size, "%s", strerror(error));
        if (size > 0)
                buf[0] = (char) tolower((unsigned char) buf[0]);
        return buf;
}

char *sq_host_port(const char *ip, long port) {
        return sq_strf(strchr(ip, ':') ? "[%s]:%ld" : "%s:%ld", ip, port);
}

/* Go's net.OpError for a dial: "dial tcp ADDR: connect: TEXT", or "i/o timeout" when the
 * deadline ended it; a host name that did not resolve: "dial tcp: lookup NAME on NS: ...". */
static char *dial_error(const SqNetFacts *f) {
        char buf[128];
        const char *ns_sep = f->nameserver ? " on " : "", *ns = f->nameserver ?: "";

        if (f->curl_code == CURLE_COULDNT_RESOLVE_HOST)
                return sq_strf("dial tcp: lookup %s%s%s: no such host", strempty(f->host), ns_sep, ns);
        if (f->timed_out && !f->remote)
                return sq_strf("dial tcp: lookup %s%s%s: i/o timeout", strempty(f->host), ns_sep, ns);
        if (f->timed_out)
                return sq_strf("dial tcp %s: i/o timeout", f->remote);
        return sq_strf("dial tcp %s: connect: %s", strempty(f->remote ?: f->host),
                       sq_go_errno_text(f->os_errno ?: ECONNREFUSED, buf, sizeof buf));
}

int sq_tcp_failure_message(const SqNetFacts *f, char **ret_message) {
        char *m;

        if (f->curl_code == 0 || f->curl_code == CURLE_COULDNT_RESOLVE_HOST || f->timed_out ||
            f->curl_code == CURLE_COULDNT_CONNECT)
                m = dial_error(f);
        else
                m = sq_strf("dial tcp %s: %s", strempty(f->remote ?: f->host),
                            strempty(f->tls_error));
        if (!m)
                return -ENOMEM;
        *ret_message = m;
        return 1;
}

/* Once connected, what Go's transport says about the exchange: the peer's reset as a read
 * (or write) on the connection, a close before any answer as EOF, TLS as crypto/tls says. */
static char *exchange_error(const SqNetFacts *f) {
        char buf[128];
        const char *tls = strempty(f->tls_error);

        switch (f->curl_code) {
        case CURLE_GOT_NOTHING:
                return strdup("EOF");
        case CURLE_RECV_ERROR:
        case CURLE_SEND_ERROR: {
                const char *op = f->curl_code == CURLE_RECV_ERROR ? "read" : "write";
                if (f->os_errno == 0)
                        return strdup("EOF");
                if (f->local && f->remote)
                        return sq_strf("%s tcp %s->%s: %s: %s", op, f->local, f->remote, op,
                                       sq_go_errno_text(f->os_errno, buf, sizeof buf));
                return sq_strf("%s: %s", op, sq_go_errno_text(f->os_errno, buf, sizeof buf));
        }
        case CURLE_SSL_CONNECT_ERROR:
                /* A plain HTTP answer to the TLS hello: OpenSSL sees a bad record version. */
                if (strstr(tls, "wrong version number") || strstr(tls, "packet length too long"))
                        return strdup("http: server gave HTTP response to HTTPS client");
                if (strstr(tls, "alert handshake failure"))
                        return strdup("remote error: tls: handshake failure");
                if (f->os_errno == ECONNRESET && f->local && f->remote)
                        return sq_strf("read tcp %s->%s: read: connection reset by peer",
                                       f->local, f->remote);
                return strdup("EOF");
        case CURLE_WEIRD_SERVER_REPLY:
        case CURLE_UNSUPPORTED_PROTOCOL:
                return strdup("net/http: HTTP/1.x transport connection broken: malformed HTTP response");
        case CURLE_BAD_CONTENT_ENCODING:
                /* A transfer coding Go refuses: its text is in tls_error (the client's error). */
                return sq_strf("net/http: HTTP/1.x transport connection broken: %s", tls);
        default:
                return strdup(*tls ? tls : http_curl_strerror(f->curl_code) ?: curl_easy_strerror((CURLcode) f->curl_code));
        }
}

bool sq_transfer_connected(int curl_code, int64_t connect_us, bool opened_socket,
                           const char *primary_ip) {
        if (curl_code == CURLE_COULDNT_RESOLVE_HOST || curl_code == CURLE_COULDNT_CONNECT)
                return false;
        if (connect_us > 0)
                return true;
        return !opened_socket && !isempty(primary_ip);
}

int sq_http_failure_message(const SqNetFacts *f, char **ret_message) {
        _cleanup_(freep) char *inner = NULL;
        char *m;

        /* kubelet read the headers, then the body failed: its prober returns an error and
         * Kruise writes nothing for that round. */
        if (f->got_headers)
                return 0;
        if (f->curl_code == CURLE_COULDNT_RESOLVE_HOST || f->curl_code == CURLE_COULDNT_CONNECT ||
            (f->timed_out && !f->connected))
                inner = dial_error(f);
        else if (f->timed_out)
                inner = strdup("context deadline exceeded");
        else
                inner = exchange_error(f);
        if (!inner)
                return -ENOMEM;
        /* The client's deadline names itself (http.Client's timeout, not the transport's). */
        m = sq_strf("Get \"%s\": %s%s", strempty(f->url), inner,
                    f->timed_out ? " (Client.Timeout exceeded while awaiting headers)" : "");
        if (!m)
                return -ENOMEM;
        *ret_message = m;
        return 1;
}

char *sq_resolv_nameserver(const char *text) {
        const char *p = text;

        while (p && *p) {
                const char *eol = strchrnul(p, '\n');
                char line[256], addr[64];
                size_t n = (size_t) (eol - p);

                if (n < sizeof line) {
                        memcpy(line, p, n);
                        line[n] = 0;
                        if (sscanf(line, " nameserver %63s", addr) == 1)
                                return sq_host_port(addr, 53);
                }
                p = *eol ? eol + 1 : eol;
        }
        return strdup("127.0.0.1:53");
}

char *sq_url_hostname(const char *url, char *buf, unsigned size) {
        const char *h = strstr(url, "://"), *end, *at;
        size_t n;

        if (!h)
                return NULL;
        h += 3;
        end = h + strcspn(h, "/?#");
        at = memchr(h, '@', (size_t) (end - h));
        if (at)
                h = at + 1;
        if (*h == '[') {
                h++;
                end = memchr(h, ']', (size_t) (end - h));
                if (!end)
                        return NULL;
        } else {
                const char *colon = memchr(h, ':', (size_t) (end - h));
                if (colon)
                        end = colon;
        }
        n = (size_t) (end - h);
        if (n == 0 || n >= size)
                return NULL;
        memcpy(buf, h, n);
        buf[n] = 0;
        return buf;
}

long sq_url_port(const char *url) {
        const char *h = strstr(url, "://"), *end, *p;

        if (!h)
                return 0;
        end = h + 3 + strcspn(h + 3, "/?#");
        p = memchr(h + 3, ']', (size_t) (end - h - 3)) ?: h + 3;
        p = memchr(p, ':', (size_t) (end - p));
        if (p && p + 1 < end)
                return strtol(p + 1, NULL, 10);
        return strncasecmp(url, "https:", 6) == 0 ? 443 : strncasecmp(url, "http:", 5) == 0 ? 80 : 0;
}
