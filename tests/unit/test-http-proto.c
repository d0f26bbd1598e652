/* okg-probed's own HTTP client, the pure part: which URLs it takes, the request text it sends
 * (curl's headers for the same options), Location resolved as curl's redirect URL, and answers
 * read through libhttp-parser in pieces of every size. */
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "okg-test.h"
#include "probed-http-proto.h"

static bool direct(const char *url) {
        HttpUrl u;
        return http_url_parse(url, &u) >= 0 && http_url_direct(&u);
}

static void test_url(void) {
        HttpUrl u;

        ASSERT_EQ(http_url_parse("http://127.0.0.1:8080/state?x=1#frag", &u), 0);
        ASSERT_STREQ(u.host, "127.0.0.1");
        ASSERT_EQ(u.port, 8080);
        ASSERT_EQ(u.path_len, strlen("/state?x=1"));
        ASSERT_TRUE(strncmp(u.path, "/state?x=1", u.path_len) == 0);
        ASSERT_EQ(http_url_parse("http://[::1]/", &u), 0);
        ASSERT_STREQ(u.host, "::1");
        ASSERT_TRUE(u.ipv6);
        ASSERT_EQ(u.port, 80);
        ASSERT_EQ(http_url_parse("HTTPS://example.org", &u), 0);
        ASSERT_EQ(u.port, 443);
        ASSERT_EQ(u.path_len, 0);

        ASSERT_EQ(http_url_parse("http://user@127.0.0.1/", &u), -EINVAL);
        ASSERT_EQ(http_url_parse("http://127.0.0.1:0/", &u), -EINVAL);
        ASSERT_EQ(http_url_parse("http://127.0.0.1:65536/", &u), -EINVAL);
        ASSERT_EQ(http_url_parse("http://127.0.0.1:8x/", &u), -EINVAL);
        ASSERT_EQ(http_url_parse("http:///x", &u), -EINVAL);
        ASSERT_EQ(http_url_parse("http://[::1/", &u), -EINVAL);
        ASSERT_EQ(http_url_parse("ftp://127.0.0.1/", &u), -EINVAL);
        ASSERT_EQ(http_url_parse("http://127.0.0.1/a b", &u), -EINVAL);

        ASSERT_TRUE(direct("http://127.0.0.1:1/x"));
        ASSERT_TRUE(direct("http://[::1]:1/x"));
        ASSERT_TRUE(direct("http://localhost:1/x"));
        ASSERT_TRUE(direct("http://LocalHost/x"));
        ASSERT_TRUE(!direct("https://127.0.0.1/x"));
        ASSERT_TRUE(!direct("http://game.example/x"));
        ASSERT_TRUE(!direct("http://127.1/x"));          /* curl's business */
        ASSERT_TRUE(!direct("http://[fe80::1%25eth0]/x"));
}

static char *request(const char *method, const char *url, char *const *headers, const char *ua,
                     const char *body) {
        HttpUrl u;
        char *text = NULL;
        size_t len = 0;

        ASSERT_EQ(http_url_parse(url, &u), 0);
        ASSERT_EQ(http_request_text(method, &u, headers, ua, body, &text, &len), 0);
        ASSERT_EQ(len, strlen(text));
        return text;
}

#define ASSERT_REQ(expr, expected)                                                          \
        do {                                                                                \
                char *_t = (expr);                                                          \
                ASSERT_STREQ(_t, expected);                                                 \
                free(_t);                                                                   \
        } while (0)

static void test_request(void) {
        char *none[] = { NULL };
        char *sq[] = { "X-A: 1", "X-Empty;", "Accept:", "User-Agent: kube-probe", NULL };
        char *host[] = { "Host: game", "Content-Type: application/json", "Expect:", NULL };

        ASSERT_REQ(request("GET", "http://127.0.0.1:8080/state", none, "okg-probed/1", NULL),
                   "GET /state HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: okg-probed/1\r\n"
                   "Accept: */*\r\n\r\n");
        /* Default port left out; no path: "/"; a query alone after "/". */
        ASSERT_REQ(request("HEAD", "http://[::1]:80?q", NULL, NULL, NULL),
                   "HEAD /?q HTTP/1.1\r\nHost: [::1]\r\nAccept: */*\r\n\r\n");
        ASSERT_REQ(request("GET", "http://localhost:81/", sq, NULL, NULL),
                   "GET / HTTP/1.1\r\nHost: localhost:81\r\nX-A: 1\r\nX-Empty:\r\n"
                   "User-Agent: kube-probe\r\n\r\n");
        ASSERT_REQ(request("PUT", "http://127.0.0.1:81/p", host, "ua", "{}"),
                   "PUT /p HTTP/1.1\r\nUser-Agent: ua\r\nAccept: */*\r\nHost: game\r\n"
                   "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}");
        ASSERT_REQ(request("POST", "http://127.0.0.1:81/p", NULL, NULL, ""),
                   "POST /p HTTP/1.1\r\nHost: 127.0.0.1:81\r\nAccept: */*\r\nContent-Length: 0\r\n"
                   "Content-Type: application/x-www-form-urlencoded\r\n\r\n");

        /* A line break in a header would smuggle a second one: refused. */
        char *bad[] = { "X-A: 1\r\nX-B: 2", NULL };
        HttpUrl u;
        char *text = NULL;
        size_t len;
        ASSERT_EQ(http_url_parse("http://127.0.0.1/", &u), 0);
        ASSERT_EQ(http_request_text("GET", &u, bad, NULL, NULL, &text, &len), -EINVAL);
        ASSERT_TRUE(!text);
}

static void check_location(const char *base, const char *loc, const char *expected) {
        char *s = NULL;
        ASSERT_EQ(http_location_resolve(base, loc, &s), 0);
        ASSERT_STREQ(s, expected);
        free(s);
}

static void test_location(void) {
        const char *b = "http://127.0.0.1:81/a/b/c?q=1";

        check_location(b, "http://other:82/x", "http://other:82/x");
        check_location(b, "//other/x", "http://other/x");
        check_location(b, "/x/y", "http://127.0.0.1:81/x/y");
        check_location(b, "d", "http://127.0.0.1:81/a/b/d");
        check_location(b, "../d?z", "http://127.0.0.1:81/a/d?z");
        check_location(b, "../../../../d", "http://127.0.0.1:81/d");
        check_location(b, "./", "http://127.0.0.1:81/a/b/");
        check_location(b, "?r=2", "http://127.0.0.1:81/a/b/c?r=2");
        check_location(b, "/x/./y/../z/..", "http://127.0.0.1:81/x/");
        check_location("http://127.0.0.1:81", "d", "http://127.0.0.1:81/d");
        check_location("http://[::1]:81/a", "/b", "http://[::1]:81/b");
        char *s = NULL;
        ASSERT_EQ(http_location_resolve("nothing", "/x", &s), -EINVAL);
}

typedef struct Body {
        char data[64];
        size_t len;
        size_t cap;
} Body;

static size_t take(char *data, size_t size, size_t nmemb, void *userdata) {
        Body *b = userdata;
        size_t n = size * nmemb, room = b->cap - b->len;

        if (n > room)
                n = room;
        memcpy(b->data + b->len, data, n);
        b->len += n;
        return n;
}

/* Feeds text in pieces of step bytes; returns the last feed's (or eof's) result. */
static int feed(HttpResponse *r, const char *text, size_t step, bool eof) {
        size_t len = strlen(text);
        int k = 0;

        for (size_t i = 0; i < len && k == 0; i += step)
                k = http_response_feed(r, text + i, i + step > len ? len - i : step);
        if (k == 0 && eof)
                k = http_response_eof(r);
        return k;
}

static void test_response(void) {
        for (size_t step = 1; step <= 64; step = step * 2 + 1) {
                HttpResponse r;
                Body b = { .cap = sizeof b.data };

                /* Content-Length, kept alive */
                http_response_init(&r, false, take, &b);
                ASSERT_EQ(feed(&r, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", step, false), 1);
                ASSERT_EQ(r.status, 200);
                ASSERT_TRUE(r.keep_alive);
                ASSERT_EQ(b.len, 5);
                ASSERT_TRUE(memcmp(b.data, "hello", 5) == 0);
                http_response_done(&r);

                /* 100 Continue first, chunked, Location of a redirect */
                b.len = 0;
                http_response_init(&r, false, take, &b);
                ASSERT_EQ(feed(&r, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 302 Found\r\n"
                                   "Location: /x\r\nTransfer-Encoding: chunked\r\n\r\n"
                                   "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n", step, false), 1);
                ASSERT_EQ(r.status, 302);
                ASSERT_STREQ(r.location, "/x");
                ASSERT_EQ(b.len, 5);
                ASSERT_TRUE(r.keep_alive);
                http_response_done(&r);

                /* HTTP/1.0, body until the close */
                b.len = 0;
                http_response_init(&r, false, take, &b);
                ASSERT_EQ(feed(&r, "HTTP/1.0 200 OK\r\n\r\nabc", step, true), 1);
                ASSERT_TRUE(!r.keep_alive);
                ASSERT_EQ(b.len, 3);
                http_response_done(&r);

                /* Connection: close */
                b.len = 0;
                http_response_init(&r, false, take, &b);
                ASSERT_EQ(feed(&r, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
                               step, false), 1);
                ASSERT_TRUE(!r.keep_alive);
                http_response_done(&r);

                /* HEAD: the Content-Length announces no body here */
                http_response_init(&r, true, take, &b);
                ASSERT_EQ(feed(&r, "HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n", step, false), 1);
                ASSERT_TRUE(r.keep_alive);
                http_response_done(&r);

                /* More than the caller takes: stopped, CURLE_WRITE_ERROR */
                b.len = 0;
                b.cap = 4;
                http_response_init(&r, false, take, &b);
                int k = feed(&r, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789", step, false);
                ASSERT_EQ(k, -ENOBUFS);
                ASSERT_EQ(http_response_curl_code(&r, k), CURLE_WRITE_ERROR);
                ASSERT_EQ(b.len, 4);
                b.cap = sizeof b.data;
                http_response_done(&r);

                /* Closed before anything, within the headers, within the body */
                http_response_init(&r, false, take, &b);
                k = http_response_eof(&r);
                ASSERT_EQ(http_response_curl_code(&r, k), CURLE_GOT_NOTHING);
                http_response_done(&r);
                http_response_init(&r, false, take, &b);
                k = feed(&r, "HTTP/1.1 200 OK\r\nContent-", step, true);
                ASSERT_TRUE(k < 0);
                ASSERT_EQ(r.status, 200);
                http_response_done(&r);
                http_response_init(&r, false, take, &b);
                k = feed(&r, "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc", step, true);
                ASSERT_EQ(http_response_curl_code(&r, k), CURLE_PARTIAL_FILE);
                http_response_done(&r);

                /* Not HTTP */
                http_response_init(&r, false, take, &b);
                k = feed(&r, "SSH-2.0-OpenSSH\r\n", step, true);
                ASSERT_EQ(http_response_curl_code(&r, k), CURLE_UNSUPPORTED_PROTOCOL);
                http_response_done(&r);
                /* an HTTP/2-only server's SETTINGS frame, cut short: the same */
                http_response_init(&r, false, take, &b);
                ASSERT_EQ(http_response_feed(&r, "\0\0\x12\x04", 4), -EBADMSG);
                ASSERT_EQ(http_response_curl_code(&r, -EBADMSG), CURLE_UNSUPPORTED_PROTOCOL);
                http_response_done(&r);
                /* HTTP, but broken: a weird reply */
                http_response_init(&r, false, take, &b);
                k = feed(&r, "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", step, true);
                ASSERT_EQ(http_response_curl_code(&r, k), CURLE_WEIRD_SERVER_REPLY);
                http_response_done(&r);

                /* Bytes after the answer: it counts, the connection is not reused */
                http_response_init(&r, false, take, &b);
                ASSERT_EQ(feed(&r, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", step, false), 1);
                ASSERT_EQ(r.left_over, 0);
                ASSERT_EQ(http_response_feed(&r, "HTTP/1.1", 8), 1);
                ASSERT_EQ(r.left_over, 8);
                http_response_done(&r);
                http_response_init(&r, false, take, &b);
                ASSERT_EQ(http_response_feed(&r, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP", 42), 1);
                ASSERT_EQ(r.left_over, 4);
                http_response_done(&r);
        }

        /* Headers over the parser's limit: an error, not a crash. */
        HttpResponse r;
        size_t n = 200 * 1024;
        char *big = malloc(n + 64);
        ASSERT_TRUE(big);
        strcpy(big, "HTTP/1.1 200 OK\r\nX-Big: ");
        memset(big + strlen(big), 'a', n);
        big[n] = 0;
        http_response_init(&r, false, NULL, NULL);
        int k = http_response_feed(&r, big, strlen(big));
        ASSERT_EQ(k, -E2BIG);
        ASSERT_EQ(http_response_curl_code(&r, k), CURLE_RECV_ERROR);
        http_response_done(&r);
        free(big);

        ASSERT_STREQ(http_curl_strerror(CURLE_COULDNT_CONNECT), "Couldn't connect to server");
        ASSERT_TRUE(!http_curl_strerror(CURLE_SSL_CONNECT_ERROR));
}

/* Answers that carry no body whatever their headers say (RFC 9112 6.3: 1xx, 204, 304), an
 * upgrade that ends HTTP on the connection, and a chunked answer that also names a length. */
static void test_response_framing(void) {
        for (size_t step = 1; step <= 64; step = step * 2 + 1) {
                HttpResponse r;
                Body b = { .cap = sizeof b.data };

                /* 304 with the Content-Length of the page it stands for: complete at once */
                http_response_init(&r, false, take, &b);
                ASSERT_EQ(feed(&r, "HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n", step, false), 1);
                ASSERT_EQ(r.status, 304);
                ASSERT_TRUE(r.keep_alive);
                ASSERT_EQ(b.len, 0);
                ASSERT_EQ(r.left_over, 0);
                http_response_done(&r);

                /* 204 likewise, on a GET */
                http_response_init(&r, false, take, &b);
                ASSERT_EQ(feed(&r, "HTTP/1.1 204 No Content\r\nContent-Length: 3\r\n\r\n", step, false), 1);
                ASSERT_EQ(r.status, 204);
                ASSERT_TRUE(r.keep_alive);
                http_response_done(&r);

                /* 100 Continue with a Content-Length, then the answer */
                b.len = 0;
                http_response_init(&r, false, take, &b);
                ASSERT_EQ(feed(&r, "HTTP/1.1 100 Continue\r\nContent-Length: 4\r\n\r\n"
                                   "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", step, false), 1);
                ASSERT_EQ(r.status, 200);
                ASSERT_EQ(b.len, 2);
                http_response_done(&r);

                /* 101: the connection speaks another protocol now, never reused */
                http_response_init(&r, false, take, &b);
                ASSERT_EQ(feed(&r, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                                   "Connection: Upgrade\r\n\r\n", step, false), 1);
                ASSERT_EQ(r.status, 101);
                ASSERT_TRUE(!r.keep_alive);
                http_response_done(&r);

                /* a body broken off: what is left of it, as curl says it */
                b.len = 0;
                http_response_init(&r, false, take, &b);
                ASSERT_EQ(feed(&r, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", step, true), -EPIPE);
                ASSERT_EQ(http_response_body_left(&r), 7);
                ASSERT_EQ(r.body_received, 3);
                http_response_done(&r);
                http_response_init(&r, false, take, &b);
                ASSERT_EQ(feed(&r, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", step, true), -EPIPE);
                ASSERT_EQ(http_response_body_left(&r), -1);
                http_response_done(&r);

                /* the same Content-Length twice: one length (curl and Go take it) */
                b.len = 0;
                http_response_init(&r, false, take, &b);
                ASSERT_EQ(feed(&r, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\ncontent-length:  2\r\n\r\nokHTTP",
                               step, false), 1);
                ASSERT_EQ(b.len, 2);
                http_response_done(&r);

                /* two different ones cannot be framed; a longer name is another header */
                http_response_init(&r, false, take, &b);
                ASSERT_EQ(feed(&r, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nokk",
                               step, false), -EBADMSG);
                http_response_done(&r);
                b.len = 0;
                http_response_init(&r, false, take, &b);
                ASSERT_EQ(feed(&r, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Lengths: 3\r\n\r\nok",
                               step, false), 1);
                ASSERT_EQ(b.len, 2);
                http_response_done(&r);

                /* chunked wins over a Content-Length (as curl and Go read it) */
                b.len = 0;
                http_response_init(&r, false, take, &b);
                ASSERT_EQ(feed(&r, "HTTP/1.1 200 OK\r\nContent-Length: 9\r\nTransfer-Encoding: chunked\r\n\r\n"
                                   "2\r\nok\r\n0\r\n\r\n", step, false), 1);
                ASSERT_EQ(b.len, 2);
                ASSERT_TRUE(!r.keep_alive);
                http_response_done(&r);
        }
}

/* Transfer codings other than chunked: the answer fails as Go's net/http fails it, before
 * any byte of a body still encoded reaches the probe. */
static void test_transfer_encoding(void) {
        static const struct {
                const char *headers;   /* after the status line */
                const char *error;     /* NULL: taken */
        } cases[] = {
                { "Transfer-Encoding: gzip, chunked\r\n", "unsupported transfer encoding: \"gzip, chunked\"" },
                { "Transfer-Encoding: gzip\r\n", "unsupported transfer encoding: \"gzip\"" },
                { "Transfer-Encoding: identity\r\nContent-Length: 2\r\n", "unsupported transfer encoding: \"identity\"" },
                { "Content-Length: 2\r\nTransfer-Encoding: gzip\r\n", "unsupported transfer encoding: \"gzip\"" },
                { "Transfer-Encoding: chunked, chunked\r\n", "unsupported transfer encoding: \"chunked, chunked\"" },
                { "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n",
                  "too many transfer encodings: [\"gzip\" \"chunked\"]" },
                { "transfer-encoding: chunked\r\nTRANSFER-ENCODING: chunked\r\n",
                  "too many transfer encodings: [\"chunked\" \"chunked\"]" },
                { "Transfer-Encoding: x\"y\\z\tw\r\n", "unsupported transfer encoding: \"x\\\"y\\\\z\\tw\"" },
                { "Transfer-Encoding: \r\n", "unsupported transfer encoding: \"\"" },
                /* Taken: exactly chunked, any case, blanks around it. */
                { "Transfer-Encoding: chunked\r\n", NULL },
                { "Transfer-Encoding:   ChUnKeD\r\n", NULL },
                { "Transfer-Encoding: chunked \t\r\n", NULL },
                { "Transfer-Encodings: gzip\r\nTransfer-Encoding: chunked\r\n", NULL },
        };
        static const char *chunks = "\r\n2\r\nok\r\n0\r\n\r\n";

        for (size_t step = 1; step <= 64; step = step * 2 + 1)
                for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                        _cleanup_(freep) char *text = NULL;
                        HttpResponse r;
                        Body b = { .cap = sizeof b.data };

                        ASSERT_TRUE(asprintf(&text, "HTTP/1.1 200 OK\r\n%s%s", cases[i].headers,
                                             chunks) > 0);
                        http_response_init(&r, false, take, &b);
                        if (cases[i].error) {
                                int k = feed(&r, text, step, false);
                                ASSERT_EQ(k, -EPROTONOSUPPORT);
                                ASSERT_STREQ(r.te_error, cases[i].error);
                                ASSERT_EQ(http_response_curl_code(&r, k), CURLE_BAD_CONTENT_ENCODING);
                                ASSERT_EQ(b.len, 0);
                                ASSERT_EQ(r.status, 0);
                                ASSERT_TRUE(!r.headers_done && !r.keep_alive);
                        } else {
                                ASSERT_EQ(feed(&r, text, step, false), 1);
                                ASSERT_EQ(b.len, 2);
                                ASSERT_TRUE(memcmp(b.data, "ok", 2) == 0);
                        }
                        http_response_done(&r);

                        /* The same headers as curl's header callback gets them, line by line. */
                        HttpTransferEncoding t = {};
                        char buf[256];
                        int major = -1, minor = -1, end = 0;
                        for (const char *l = text; *l && end == 0;) {
                                size_t n = strcspn(l, "\n") + 1;
                                end = http_te_header_line(&t, l, n, &major, &minor);
                                l += n;
                        }
                        ASSERT_EQ(end, 1);
                        ASSERT_EQ(major, 1);
                        ASSERT_EQ(minor, 1);
                        const char *why = http_te_refusal(&t, major, minor, buf, sizeof buf);
                        if (cases[i].error)
                                ASSERT_STREQ(why, cases[i].error);
                        else
                                ASSERT_TRUE(!why);
                }

        /* An interim answer's coding does not count, the final answer's does. */
        HttpResponse r;
        Body b = { .cap = sizeof b.data };
        http_response_init(&r, false, take, &b);
        ASSERT_EQ(feed(&r, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n"
                           "Transfer-Encoding: gzip, chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", 7, false),
                  -EPROTONOSUPPORT);
        ASSERT_EQ(b.len, 0);
        http_response_done(&r);

        /* HTTP/1.0: Go ignores Transfer-Encoding there; not refused. */
        HttpTransferEncoding t = {};
        char buf[128];
        int major = 0, minor = 0;
        ASSERT_EQ(http_te_header_line(&t, "HTTP/1.0 200 OK\r\n", 17, &major, &minor), 0);
        ASSERT_EQ(http_te_header_line(&t, "Transfer-Encoding: gzip\r\n", 25, &major, &minor), 0);
        ASSERT_EQ(http_te_header_line(&t, "\r\n", 2, &major, &minor), 1);
        ASSERT_TRUE(major == 1 && minor == 0);
        ASSERT_TRUE(!http_te_refusal(&t, major, minor, buf, sizeof buf));
        /* A new status line (curl passes interim answers on) starts again. */
        ASSERT_EQ(http_te_header_line(&t, "HTTP/1.1 200 OK\r\n", 17, &major, &minor), 0);
        ASSERT_EQ(t.fields, 0u);
        /* A long value is cut in the text, and is not chunked. */
        char line[400];
        snprintf(line, sizeof line, "Transfer-Encoding: chunked%0300d\r\n", 0);
        ASSERT_EQ(http_te_header_line(&t, line, strlen(line), &major, &minor), 0);
        char big[HTTP_TE_SHOWN_MAX + 64];
        const char *why = http_te_refusal(&t, 1, 1, big, sizeof big);
        ASSERT_TRUE(why && strncmp(why, "unsupported transfer encoding: \"chunked000", 42) == 0);
        ASSERT_TRUE(strlen(why) < sizeof big - 1 && strcmp(why + strlen(why) - 4, "...\"") == 0);
        ASSERT_STREQ(http_curl_strerror(CURLE_BAD_CONTENT_ENCODING),
                     "Unrecognized or bad HTTP Content or Transfer-Encoding");
}

int main(void) {
        test_transfer_encoding();
        test_response_framing();
        test_url();
        test_request();
        test_location();
        test_response();
        return 0;
}
