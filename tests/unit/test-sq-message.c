/* The service_quality plugin's failure messages: each kind of failed httpGet and tcpSocket,
 * as the facts curl or connect() give, against the text Go's client gives Kruise (seen with a
 * Go program dialling as kubelet's probers do; docs/service-quality.md, "Messages"). */
#include <curl/curl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "okg-test.h"
#include "probed-sq-message.h"

static char *http(SqNetFacts f) {
        char *m = NULL;
        f.url = f.url ?: "http://127.0.0.1:81/x";
        ASSERT_EQ(sq_http_failure_message(&f, &m), 1);
        return m;
}

static char *tcp(SqNetFacts f) {
        char *m = NULL;
        ASSERT_EQ(sq_tcp_failure_message(&f, &m), 1);
        return m;
}

#define ASSERT_MSG(expr, expected)                                                          \
        do {                                                                                \
                char *_m = (expr);                                                          \
                ASSERT_STREQ(_m, expected);                                                 \
                free(_m);                                                                   \
        } while (0)

static void test_http(void) {
        char *m = NULL;

        /* Connection refused, by IP and by a name curl resolved. */
        ASSERT_MSG(http((SqNetFacts) { .curl_code = CURLE_COULDNT_CONNECT, .os_errno = ECONNREFUSED,
                                       .remote = "127.0.0.1:81" }),
                   "Get \"http://127.0.0.1:81/x\": dial tcp 127.0.0.1:81: connect: connection refused");
        ASSERT_MSG(http((SqNetFacts) { .curl_code = CURLE_COULDNT_CONNECT, .os_errno = ECONNREFUSED,
                                       .url = "http://[::1]:81/", .remote = "[::1]:81" }),
                   "Get \"http://[::1]:81/\": dial tcp [::1]:81: connect: connection refused");
        /* No route, unreachable network. */
        ASSERT_MSG(http((SqNetFacts) { .curl_code = CURLE_COULDNT_CONNECT, .os_errno = EHOSTUNREACH,
                                       .remote = "10.0.0.1:81", .url = "http://10.0.0.1:81/" }),
                   "Get \"http://10.0.0.1:81/\": dial tcp 10.0.0.1:81: connect: no route to host");
        ASSERT_MSG(http((SqNetFacts) { .curl_code = CURLE_COULDNT_CONNECT, .os_errno = ENETUNREACH,
                                       .remote = "10.0.0.1:81", .url = "http://10.0.0.1:81/" }),
                   "Get \"http://10.0.0.1:81/\": dial tcp 10.0.0.1:81: connect: network is unreachable");
        /* The deadline during the connect, and once connected with no answer. */
        ASSERT_MSG(http((SqNetFacts) { .curl_code = CURLE_OPERATION_TIMEDOUT, .timed_out = true,
                                       .remote = "127.0.0.1:81" }),
                   "Get \"http://127.0.0.1:81/x\": dial tcp 127.0.0.1:81: i/o timeout "
                   "(Client.Timeout exceeded while awaiting headers)");
        ASSERT_MSG(http((SqNetFacts) { .curl_code = CURLE_OPERATION_TIMEDOUT, .timed_out = true,
                                       .connected = true, .remote = "127.0.0.1:81" }),
                   "Get \"http://127.0.0.1:81/x\": context deadline exceeded "
                   "(Client.Timeout exceeded while awaiting headers)");
        /* Closed with no answer; reset by the peer. */
        ASSERT_MSG(http((SqNetFacts) { .curl_code = CURLE_GOT_NOTHING, .connected = true }),
                   "Get \"http://127.0.0.1:81/x\": EOF");
        ASSERT_MSG(http((SqNetFacts) { .curl_code = CURLE_RECV_ERROR, .os_errno = ECONNRESET,
                                       .connected = true, .remote = "127.0.0.1:81",
                                       .local = "127.0.0.1:40000" }),
                   "Get \"http://127.0.0.1:81/x\": read tcp 127.0.0.1:40000->127.0.0.1:81: "
                   "read: connection reset by peer");
        /* A name that does not resolve: Go's pure resolver names its server. */
        ASSERT_MSG(http((SqNetFacts) { .curl_code = CURLE_COULDNT_RESOLVE_HOST, .host = "nosuch.invalid",
                                       .url = "http://nosuch.invalid:81/x",
                                       .nameserver = "10.96.0.10:53" }),
                   "Get \"http://nosuch.invalid:81/x\": dial tcp: lookup nosuch.invalid on "
                   "10.96.0.10:53: no such host");
        /* TLS: a plain HTTP server, a server that closes, one that refuses the handshake. */
        ASSERT_MSG(http((SqNetFacts) { .curl_code = CURLE_SSL_CONNECT_ERROR, .connected = true,
                                       .url = "https://127.0.0.1:81/",
                                       .tls_error = "error:0A00010B:SSL routines::wrong version number" }),
                   "Get \"https://127.0.0.1:81/\": http: server gave HTTP response to HTTPS client");
        ASSERT_MSG(http((SqNetFacts) { .curl_code = CURLE_SSL_CONNECT_ERROR, .connected = true,
                                       .url = "https://127.0.0.1:81/",
                                       .tls_error = "OpenSSL SSL_connect: SSL_ERROR_SYSCALL" }),
                   "Get \"https://127.0.0.1:81/\": EOF");
        ASSERT_MSG(http((SqNetFacts) { .curl_code = CURLE_SSL_CONNECT_ERROR, .connected = true,
                                       .url = "https://127.0.0.1:81/",
                                       .tls_error = "error:0A000410:SSL routines::sslv3 alert handshake failure" }),
                   "Get \"https://127.0.0.1:81/\": remote error: tls: handshake failure");

        /* A transfer coding other than chunked: Go's transport refuses the answer (over http
         * and https alike); the client's text names the coding. */
        ASSERT_MSG(http((SqNetFacts) { .curl_code = CURLE_BAD_CONTENT_ENCODING, .connected = true,
                                       .tls_error = "unsupported transfer encoding: \"gzip, chunked\"" }),
                   "Get \"http://127.0.0.1:81/x\": net/http: HTTP/1.x transport connection broken: "
                   "unsupported transfer encoding: \"gzip, chunked\"");
        ASSERT_MSG(http((SqNetFacts) { .curl_code = CURLE_BAD_CONTENT_ENCODING, .connected = true,
                                       .url = "https://127.0.0.1:81/",
                                       .tls_error = "too many transfer encodings: [\"gzip\" \"chunked\"]" }),
                   "Get \"https://127.0.0.1:81/\": net/http: HTTP/1.x transport connection broken: "
                   "too many transfer encodings: [\"gzip\" \"chunked\"]");

        /* Headers arrived, then the body broke off (a reset, the deadline): kubelet's prober
         * gives an error, not a result, and Kruise writes nothing for that round. */
        ASSERT_EQ(sq_http_failure_message(&(SqNetFacts) { .curl_code = CURLE_RECV_ERROR,
                                                          .os_errno = ECONNRESET, .connected = true,
                                                          .got_headers = true, .url = "http://a/" },
                                          &m), 0);
        ASSERT_TRUE(!m);
        ASSERT_EQ(sq_http_failure_message(&(SqNetFacts) { .curl_code = CURLE_OPERATION_TIMEDOUT,
                                                          .timed_out = true, .connected = true,
                                                          .got_headers = true, .url = "http://a/" },
                                          &m), 0);
        ASSERT_TRUE(!m);
}

static void test_tcp(void) {
        ASSERT_MSG(tcp((SqNetFacts) { .os_errno = ECONNREFUSED, .remote = "127.0.0.1:81" }),
                   "dial tcp 127.0.0.1:81: connect: connection refused");
        ASSERT_MSG(tcp((SqNetFacts) { .os_errno = EHOSTUNREACH, .remote = "[fd00::1]:81" }),
                   "dial tcp [fd00::1]:81: connect: no route to host");
        ASSERT_MSG(tcp((SqNetFacts) { .timed_out = true, .remote = "127.0.0.1:81" }),
                   "dial tcp 127.0.0.1:81: i/o timeout");
        ASSERT_MSG(tcp((SqNetFacts) { .curl_code = CURLE_COULDNT_CONNECT, .os_errno = ECONNREFUSED,
                                      .host = "localhost", .remote = "127.0.0.1:81" }),
                   "dial tcp 127.0.0.1:81: connect: connection refused");
        ASSERT_MSG(tcp((SqNetFacts) { .curl_code = CURLE_COULDNT_RESOLVE_HOST, .host = "game.invalid",
                                      .nameserver = "[fd00::53]:53" }),
                   "dial tcp: lookup game.invalid on [fd00::53]:53: no such host");
        ASSERT_MSG(tcp((SqNetFacts) { .curl_code = CURLE_OPERATION_TIMEDOUT, .timed_out = true,
                                      .host = "slow.example", .nameserver = "10.96.0.10:53" }),
                   "dial tcp: lookup slow.example on 10.96.0.10:53: i/o timeout");
        ASSERT_MSG(tcp((SqNetFacts) { .curl_code = CURLE_OPERATION_TIMEDOUT, .timed_out = true,
                                      .host = "game", .remote = "10.1.2.3:81" }),
                   "dial tcp 10.1.2.3:81: i/o timeout");
}

static void test_errno_text(void) {
        char buf[64];
        ASSERT_STREQ(sq_go_errno_text(ECONNRESET, buf, sizeof buf), "connection reset by peer");
        /* Not in our table: the C library's text, lower case first. */
        ASSERT_STREQ(sq_go_errno_text(ENOBUFS, buf, sizeof buf), "no buffer space available");
}

static void test_resolv(void) {
        ASSERT_MSG(sq_resolv_nameserver("# generated\nsearch svc.cluster.local\nnameserver 10.96.0.10\n"
                                        "nameserver 10.96.0.11\n"),
                   "10.96.0.10:53");
        ASSERT_MSG(sq_resolv_nameserver("nameserver fd00::53"), "[fd00::53]:53");
        /* None: Go's default. A comment is not a server. */
        ASSERT_MSG(sq_resolv_nameserver("#nameserver 1.1.1.1\noptions ndots:5\n"), "127.0.0.1:53");
        ASSERT_MSG(sq_resolv_nameserver(""), "127.0.0.1:53");
}

static void test_hostname(void) {
        char b[64];
        ASSERT_STREQ(sq_url_hostname("http://127.0.0.1:81/x", b, sizeof b), "127.0.0.1");
        ASSERT_STREQ(sq_url_hostname("https://u:p@Game.example/x?y", b, sizeof b), "Game.example");
        ASSERT_STREQ(sq_url_hostname("http://[::1]:81/", b, sizeof b), "::1");
        ASSERT_TRUE(!sq_url_hostname("/relative", b, sizeof b));
        ASSERT_TRUE(!sq_url_hostname("http:///x", b, sizeof b));
        ASSERT_EQ(sq_url_port("http://127.0.0.1:81/x"), 81);
        ASSERT_EQ(sq_url_port("http://[::1]:82/"), 82);
        ASSERT_EQ(sq_url_port("http://[::1]/"), 80);
        ASSERT_EQ(sq_url_port("https://game/x:1"), 443);
}

/* Connected or not, when curl may take a connection an earlier probe left open (its connect
 * time is 0 then): the deadline on a kept-alive connection is the exchange's, never the dial's. */
static void test_transfer_connected(void) {
        /* A connection made for this transfer. */
        ASSERT_TRUE(sq_transfer_connected(CURLE_OPERATION_TIMEDOUT, 250, true, "127.0.0.1"));
        /* A kept-alive one: no socket made, the peer's address known. */
        ASSERT_TRUE(sq_transfer_connected(CURLE_OPERATION_TIMEDOUT, 0, false, "127.0.0.1"));
        ASSERT_TRUE(sq_transfer_connected(CURLE_RECV_ERROR, 0, false, "::1"));
        ASSERT_TRUE(sq_transfer_connected(CURLE_GOT_NOTHING, 0, false, "127.0.0.1"));
        /* A socket made whose connect did not finish in time. */
        ASSERT_TRUE(!sq_transfer_connected(CURLE_OPERATION_TIMEDOUT, 0, true, "127.0.0.1"));
        /* The deadline during the lookup: no socket, no address. */
        ASSERT_TRUE(!sq_transfer_connected(CURLE_OPERATION_TIMEDOUT, 0, false, NULL));
        ASSERT_TRUE(!sq_transfer_connected(CURLE_OPERATION_TIMEDOUT, 0, false, ""));
        /* Refused and no such host never talked to anyone. */
        ASSERT_TRUE(!sq_transfer_connected(CURLE_COULDNT_CONNECT, 0, true, "127.0.0.1"));
        ASSERT_TRUE(!sq_transfer_connected(CURLE_COULDNT_RESOLVE_HOST, 0, false, NULL));

        /* The message for the kept-alive connection's deadline: the exchange's. */
        ASSERT_MSG(http((SqNetFacts) { .curl_code = CURLE_OPERATION_TIMEDOUT, .timed_out = true,
                                       .connected = sq_transfer_connected(
                                               CURLE_OPERATION_TIMEDOUT, 0, false, "127.0.0.1"),
                                       .remote = "127.0.0.1:81" }),
                   "Get \"http://127.0.0.1:81/x\": context deadline exceeded "
                   "(Client.Timeout exceeded while awaiting headers)");
}

int main(void) {
        test_transfer_connected();
        test_hostname();
        test_http();
        test_tcp();
        test_errno_text();
        test_resolv();
        return 0;
}
