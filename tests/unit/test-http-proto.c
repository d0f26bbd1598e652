/* okg-probed's own HTTP client, the pure part: which URLs it takes, the request text it sends
 * (curl's headers for the same options), Location resolved as curl's redirect URL, and answers
 * read through libhttp-parser in pieces of every size. */
#include <curl/curl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

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

int main(void) {
        test_url();
        test_request();
        test_location();
        test_response();
        return 0;
}
