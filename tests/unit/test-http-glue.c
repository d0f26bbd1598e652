/* The event-loop glue end to end: one sd-event loop runs an OkgHttpServer (MHD, external epoll)
 * and CurlGlue clients against it over loopback. Everything runs concurrently; the loop ends
 * when the last check completes, or a safety timer fails the test. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "okg-curl.h"
#include "okg-http-server.h"
#include "okg-test.h"

#define SAFETY_TIMEOUT_USEC (30ULL * 1000000ULL)
#define N_HELLO 8

typedef struct Req {
        const char *what;
        CURL *easy;
        unsigned done;
        CURLcode result;
        long status;
        char content_type[128];
        bool no_store;
        char body[16384];
        size_t len;
        void (*then)(struct Req *r);
} Req;

static sd_event *event;
static CurlGlue *glue;
static OkgHttpServer *server;
static unsigned pending;

/* Server side state for the routes that park a connection. */
static struct MHD_Connection *suspended_conn;
static bool suspend_resumed;
static unsigned suspend_handler_calls;
static struct MHD_Connection *hang_conn;
static Req hang_req;

static char post_buf[8192];
static size_t post_len;
static char post_body[5000];

static int first_call_marker;

static void finish_one(void) {
        ASSERT_TRUE(pending > 0);
        if (--pending == 0)
                ASSERT_TRUE(sd_event_exit(event, 0) >= 0);
}

static int on_safety_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        fprintf(stderr, "safety timeout: %u checks still pending\n", pending);
        return sd_event_exit(event, -ETIMEDOUT);
}

/* ---- server ---- */

static int on_resume_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        ASSERT_TRUE(suspended_conn);
        suspend_resumed = true;
        MHD_resume_connection(suspended_conn);
        okg_http_server_kick(server);
        return 0;
}

static int on_remove_hanging(sd_event_source *s, void *userdata) {
        unsigned before = curl_glue_running(glue);

        curl_glue_remove(glue, hang_req.easy);
        ASSERT_EQ(curl_glue_running(glue), before - 1);
        /* Removing twice, or a handle that is not running, is harmless. */
        curl_glue_remove(glue, hang_req.easy);
        ASSERT_EQ(curl_glue_running(glue), before - 1);
        curl_easy_cleanup(hang_req.easy);
        hang_req.easy = NULL;
        finish_one();
        return 0;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
                               const char *method, const char *version, const char *upload_data,
                               size_t *upload_data_size, void **req_cls) {
        const char *n;

        ASSERT_TRUE(cls == &first_call_marker);

        /* The first call only announces the headers. */
        if (!*req_cls) {
                *req_cls = &first_call_marker;
                return MHD_YES;
        }

        if (strcmp(method, "POST") == 0 && strcmp(url, "/echo") == 0) {
                if (*upload_data_size > 0) {
                        ASSERT_TRUE(post_len + *upload_data_size <= sizeof post_buf);
                        memcpy(post_buf + post_len, upload_data, *upload_data_size);
                        post_len += *upload_data_size;
                        *upload_data_size = 0;
                        return MHD_YES;
                }
                return okg_http_respond(c, 201, "application/octet-stream", post_buf, post_len);
        }

        if (strcmp(method, "GET") != 0)
                return okg_http_respond_error(c, 405, "method not allowed");

        n = strncmp(url, "/hello/", 7) == 0 ? url + 7 : NULL;
        if (n) {
                char body[64];
                int k = snprintf(body, sizeof body, "hello %s", n);
                return okg_http_respond(c, 200, "text/plain", body, (size_t) k);
        }

        if (strcmp(url, "/json") == 0) {
                json_object *o = json_object_new_object();
                enum MHD_Result m;

                json_object_object_add(o, "answer", json_object_new_int(42));
                json_object_object_add(o, "path", json_object_new_string("/a/b"));
                m = okg_http_respond_json(c, 200, o);
                json_object_put(o);
                return m;
        }

        if (strcmp(url, "/suspend") == 0) {
                suspend_handler_calls++;
                if (!suspended_conn) {
                        suspended_conn = c;
                        MHD_suspend_connection(c);
                        ASSERT_TRUE(sd_event_add_time_relative(event, NULL, CLOCK_MONOTONIC,
                                                               100 * 1000, 0, on_resume_timer,
                                                               NULL) >= 0);
                        return MHD_YES;
                }
                ASSERT_TRUE(suspend_resumed);
                ASSERT_TRUE(c == suspended_conn);
                return okg_http_respond(c, 200, "text/plain", "resumed", 7);
        }

        if (strcmp(url, "/hang") == 0) {
                /* Parked for good: the client gives up, and free() must still cope. */
                ASSERT_TRUE(!hang_conn);
                hang_conn = c;
                MHD_suspend_connection(c);
                ASSERT_TRUE(sd_event_add_defer(event, NULL, on_remove_hanging, NULL) >= 0);
                return MHD_YES;
        }

        return okg_http_respond_error(c, 404, "no \"such\" path");
}

/* ---- client ---- */

static size_t on_body(char *data, size_t size, size_t nmemb, void *userdata) {
        Req *r = userdata;
        size_t n = size * nmemb;

        ASSERT_TRUE(r->len + n < sizeof r->body);
        memcpy(r->body + r->len, data, n);
        r->len += n;
        r->body[r->len] = 0;
        return n;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *userdata) {
        Req *r = userdata;
        size_t n = size * nmemb;

        if (n >= 23 && strncasecmp(data, "Cache-Control: no-store", 23) == 0)
                r->no_store = true;
        return n;
}

static void on_done(CurlGlue *g, CURL *easy, CURLcode result, void *userdata) {
        Req *r = userdata;
        char *ct = NULL;

        ASSERT_TRUE(g == glue);
        ASSERT_TRUE(easy == r->easy);
        r->done++;
        r->result = result;
        ASSERT_EQ(curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &r->status), CURLE_OK);
        if (curl_easy_getinfo(easy, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct)
                snprintf(r->content_type, sizeof r->content_type, "%s", ct);

        /* The handle is ours again: freeing it from here must be fine. */
        curl_easy_cleanup(easy);
        r->easy = NULL;

        if (r->then)
                r->then(r);
        finish_one();
}

static void on_hang_done(CurlGlue *g, CURL *easy, CURLcode result, void *userdata) {
        fprintf(stderr, "callback of a removed transfer was called (result %d)\n", result);
        exit(1);
}

static void prepare(Req *r, const char *what, const char *url) {
        r->what = what;
        r->easy = curl_easy_init();
        ASSERT_TRUE(r->easy);
        ASSERT_EQ(curl_easy_setopt(r->easy, CURLOPT_URL, url), CURLE_OK);
        ASSERT_EQ(curl_easy_setopt(r->easy, CURLOPT_NOPROXY, "*"), CURLE_OK);
        ASSERT_EQ(curl_easy_setopt(r->easy, CURLOPT_NOSIGNAL, 1L), CURLE_OK);
        ASSERT_EQ(curl_easy_setopt(r->easy, CURLOPT_WRITEFUNCTION, on_body), CURLE_OK);
        ASSERT_EQ(curl_easy_setopt(r->easy, CURLOPT_WRITEDATA, r), CURLE_OK);
        ASSERT_EQ(curl_easy_setopt(r->easy, CURLOPT_HEADERFUNCTION, on_header), CURLE_OK);
        ASSERT_EQ(curl_easy_setopt(r->easy, CURLOPT_HEADERDATA, r), CURLE_OK);
}

static void launch(Req *r, CurlDoneCallback cb) {
        unsigned before = curl_glue_running(glue);

        ASSERT_EQ(curl_glue_add(glue, r->easy, cb, r), 0);
        /* Adding again while running is refused. */
        ASSERT_EQ(curl_glue_add(glue, r->easy, cb, r), -EBUSY);
        ASSERT_EQ(curl_glue_running(glue), before + 1);
        pending++;
}

static void start(Req *r, const char *what, const char *url, CurlDoneCallback cb) {
        prepare(r, what, url);
        launch(r, cb);
}

static char base_url[64];
static Req chained;

/* A done callback may start another transfer. */
static void start_chained(Req *r) {
        char url[128];

        snprintf(url, sizeof url, "%s/hello/chained", base_url);
        start(&chained, "chained", url, on_done);
}

/* ---- slow client ---- */

static int slow_fd = -EBADF;
static bool slow_closed;
static uint64_t slow_start, slow_elapsed;

static int on_slow_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        char buf[256];
        ssize_t k;
        uint64_t now;

        k = read(fd, buf, sizeof buf);
        /* The server sends nothing: the only outcome is EOF or a reset. */
        ASSERT_TRUE(k == 0 || (k < 0 && errno == ECONNRESET));
        slow_closed = true;
        ASSERT_TRUE(sd_event_now(event, CLOCK_MONOTONIC, &now) >= 0);
        slow_elapsed = now - slow_start;
        sd_event_source_disable_unref(s);
        finish_one();
        return 0;
}

static void start_slow_client(uint16_t port) {
        struct sockaddr_in sa = {
                .sin_family = AF_INET,
                .sin_port = htons(port),
                .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
        };
        sd_event_source *s;

        slow_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ASSERT_TRUE(slow_fd >= 0);
        ASSERT_EQ(connect(slow_fd, (struct sockaddr *) &sa, sizeof sa), 0);
        ASSERT_TRUE(sd_event_now(event, CLOCK_MONOTONIC, &slow_start) >= 0);
        ASSERT_TRUE(sd_event_add_io(event, &s, slow_fd, EPOLLIN | EPOLLRDHUP, on_slow_io, NULL) >=
                    0);
        pending++;
}

/* A port that refuses connections: bound, never listening. */
static int closed_port_fd(uint16_t *ret_port) {
        struct sockaddr_in sa = {
                .sin_family = AF_INET,
                .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
        };
        socklen_t len = sizeof sa;
        int fd;

        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ASSERT_TRUE(fd >= 0);
        ASSERT_EQ(bind(fd, (struct sockaddr *) &sa, sizeof sa), 0);
        ASSERT_EQ(getsockname(fd, (struct sockaddr *) &sa, &len), 0);
        *ret_port = ntohs(sa.sin_port);
        return fd;
}

static bool ipv6_usable(void) {
        struct sockaddr_in6 sa = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
        int fd, r;

        fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
                printf("NOTICE: skipping the IPv6 case, socket(AF_INET6): %s\n", strerror(errno));
                return false;
        }
        r = bind(fd, (struct sockaddr *) &sa, sizeof sa);
        if (r < 0 && errno == EADDRNOTAVAIL) {
                printf("NOTICE: skipping the IPv6 case, ::1 is not configured\n");
                close(fd);
                return false;
        }
        close(fd);
        return true;
}

static void test_setup_errors(void) {
        OkgHttpServer *s = NULL;

        ASSERT_EQ(okg_http_server_new(event, "localhost", 0, NULL, handler, &first_call_marker,
                                      &s),
                  -EINVAL);
        ASSERT_EQ(okg_http_server_new(event, "127.0.0.1:80", 0, NULL, handler,
                                      &first_call_marker, &s),
                  -EINVAL);
        ASSERT_EQ(okg_http_server_new(event, "", 0, NULL, handler, &first_call_marker, &s),
                  -EINVAL);
        ASSERT_TRUE(!s);
        /* The port is taken by the main test server. */
        ASSERT_EQ(okg_http_server_new(event, "127.0.0.1", okg_http_server_port(server), NULL,
                                      handler, &first_call_marker, &s),
                  -EADDRINUSE);
        ASSERT_TRUE(!s);
        ASSERT_TRUE(okg_http_server_free(NULL) == NULL);
        ASSERT_TRUE(curl_glue_free(NULL) == NULL);
}

int main(void) {
        OkgHttpServerOptions opts = {
                .connection_timeout_sec = 1,
                .per_ip_limit = 32,
        };
        OkgHttpServer *server6 = NULL, *server_dual = NULL;
        Req hello[N_HELLO] = {}, json = {}, error = {}, suspend = {}, post = {}, v6 = {},
            refused = {}, dual = {};
        char url[128];
        uint16_t refused_port;
        int refused_fd, r;
        bool have_v6;

        ASSERT_TRUE(sd_event_default(&event) >= 0);
        ASSERT_TRUE(sd_event_add_time_relative(event, NULL, CLOCK_MONOTONIC, SAFETY_TIMEOUT_USEC,
                                               0, on_safety_timeout, NULL) >= 0);

        ASSERT_EQ(okg_http_server_new(event, "127.0.0.1", 0, &opts, handler, &first_call_marker,
                                      &server),
                  0);
        ASSERT_TRUE(okg_http_server_port(server) != 0);
        ASSERT_EQ(curl_glue_new(event, &glue), 0);
        ASSERT_EQ(curl_glue_running(glue), 0);

        test_setup_errors();

        snprintf(base_url, sizeof base_url, "http://127.0.0.1:%u", okg_http_server_port(server));

        for (unsigned i = 0; i < N_HELLO; i++) {
                snprintf(url, sizeof url, "%s/hello/%u", base_url, i);
                start(&hello[i], "hello", url, on_done);
        }

        snprintf(url, sizeof url, "%s/json", base_url);
        start(&json, "json", url, on_done);
        json.then = start_chained;

        snprintf(url, sizeof url, "%s/nope", base_url);
        start(&error, "error", url, on_done);

        snprintf(url, sizeof url, "%s/suspend", base_url);
        start(&suspend, "suspend", url, on_done);

        snprintf(url, sizeof url, "%s/echo", base_url);
        for (size_t i = 0; i < sizeof post_body; i++)
                post_body[i] = (char) ('a' + i % 26);
        prepare(&post, "post", url);
        ASSERT_EQ(curl_easy_setopt(post.easy, CURLOPT_POSTFIELDSIZE, (long) sizeof post_body),
                  CURLE_OK);
        ASSERT_EQ(curl_easy_setopt(post.easy, CURLOPT_POSTFIELDS, post_body), CURLE_OK);
        launch(&post, on_done);

        snprintf(url, sizeof url, "%s/hang", base_url);
        start(&hang_req, "hang", url, on_hang_done);

        refused_fd = closed_port_fd(&refused_port);
        snprintf(url, sizeof url, "http://127.0.0.1:%u/", refused_port);
        start(&refused, "refused", url, on_done);

        have_v6 = ipv6_usable();
        if (have_v6) {
                ASSERT_EQ(okg_http_server_new(event, "::1", 0, NULL, handler, &first_call_marker,
                                              &server6),
                          0);
                snprintf(url, sizeof url, "http://[::1]:%u/hello/v6",
                         okg_http_server_port(server6));
                start(&v6, "v6", url, on_done);

                /* "::" listens on IPv4 too. */
                ASSERT_EQ(okg_http_server_new(event, "::", 0, NULL, handler, &first_call_marker,
                                              &server_dual),
                          0);
                snprintf(url, sizeof url, "http://127.0.0.1:%u/hello/dual",
                         okg_http_server_port(server_dual));
                start(&dual, "dual", url, on_done);
        }

        start_slow_client(okg_http_server_port(server));

        r = sd_event_loop(event);
        ASSERT_EQ(r, 0);
        ASSERT_EQ(pending, 0);
        ASSERT_EQ(curl_glue_running(glue), 0);

        for (unsigned i = 0; i < N_HELLO; i++) {
                char expected[32];

                snprintf(expected, sizeof expected, "hello %u", i);
                ASSERT_EQ(hello[i].done, 1);
                ASSERT_EQ(hello[i].result, CURLE_OK);
                ASSERT_EQ(hello[i].status, 200);
                ASSERT_STREQ(hello[i].body, expected);
                ASSERT_STREQ(hello[i].content_type, "text/plain");
                ASSERT_TRUE(hello[i].no_store);
        }

        ASSERT_EQ(json.done, 1);
        ASSERT_EQ(json.result, CURLE_OK);
        ASSERT_EQ(json.status, 200);
        ASSERT_STREQ(json.content_type, "application/json");
        ASSERT_STREQ(json.body, "{\"answer\":42,\"path\":\"/a/b\"}\n");
        ASSERT_TRUE(json.no_store);

        ASSERT_EQ(chained.done, 1);
        ASSERT_EQ(chained.status, 200);
        ASSERT_STREQ(chained.body, "hello chained");

        ASSERT_EQ(error.done, 1);
        ASSERT_EQ(error.result, CURLE_OK);
        ASSERT_EQ(error.status, 404);
        ASSERT_STREQ(error.content_type, "application/json");
        ASSERT_STREQ(error.body, "{\"error\":\"no \\\"such\\\" path\"}\n");
        ASSERT_TRUE(error.no_store);

        ASSERT_EQ(suspend.done, 1);
        ASSERT_EQ(suspend.result, CURLE_OK);
        ASSERT_EQ(suspend.status, 200);
        ASSERT_STREQ(suspend.body, "resumed");
        ASSERT_TRUE(suspend_resumed);
        ASSERT_EQ(suspend_handler_calls, 2);

        ASSERT_EQ(post.done, 1);
        ASSERT_EQ(post.result, CURLE_OK);
        ASSERT_EQ(post.status, 201);
        ASSERT_EQ(post.len, sizeof post_body);
        ASSERT_TRUE(memcmp(post.body, post_body, sizeof post_body) == 0);

        ASSERT_EQ(refused.done, 1);
        ASSERT_EQ(refused.result, CURLE_COULDNT_CONNECT);
        ASSERT_EQ(refused.status, 0);

        ASSERT_TRUE(hang_conn);
        ASSERT_TRUE(!hang_req.easy);

        if (have_v6) {
                ASSERT_EQ(v6.done, 1);
                ASSERT_EQ(v6.result, CURLE_OK);
                ASSERT_STREQ(v6.body, "hello v6");
                ASSERT_EQ(dual.done, 1);
                ASSERT_EQ(dual.result, CURLE_OK);
                ASSERT_STREQ(dual.body, "hello dual");
        }

        /* Dropped by the 1 s connection timeout, not by anything earlier. */
        ASSERT_TRUE(slow_closed);
        ASSERT_TRUE(slow_elapsed >= 500 * 1000);

        /* The hanging connection is still suspended: free() must resume and close it. */
        glue = curl_glue_free(glue);
        server = okg_http_server_free(server);
        server6 = okg_http_server_free(server6);
        server_dual = okg_http_server_free(server_dual);
        close(slow_fd);
        close(refused_fd);
        event = sd_event_unref(event);

        printf("OK\n");
        return 0;
}
