/* The curl glue's connection cache sized to the servers it talks to in turn (as okg-probed
 * does for its endpoints): requests made one at a time, round after round, to N keep-alive
 * servers reuse their connections. curl's default cache follows the transfers running at once
 * (here one), so it would close connections that the next round needs. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "okg-curl.h"
#include "okg-http-server.h"
#include "okg-test.h"

#define N_SERVERS 6
#define ROUNDS 3
#define SAFETY_TIMEOUT_USEC (30ULL * 1000000ULL)

static sd_event *event;
static CurlGlue *glue;
static CURL *easy[N_SERVERS];
static unsigned step;
static long new_connections[ROUNDS];
static int marker;

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
                               const char *method, const char *version, const char *upload_data,
                               size_t *upload_data_size, void **req_cls) {
        if (!*req_cls) {
                *req_cls = &marker;
                return MHD_YES;
        }
        return okg_http_respond(c, 200, "text/plain", "ok\n", 3);
}

static void on_done(CurlGlue *g, CURL *e, CURLcode result, void *userdata) {
        long n = -1;

        ASSERT_EQ(result, CURLE_OK);
        ASSERT_EQ(curl_easy_getinfo(e, CURLINFO_NUM_CONNECTS, &n), CURLE_OK);
        new_connections[step / N_SERVERS] += n;
        if (++step == N_SERVERS * ROUNDS) {
                ASSERT_TRUE(sd_event_exit(event, 0) >= 0);
                return;
        }
        /* The next server, one request at a time: like paced probes. */
        ASSERT_EQ(curl_glue_add(glue, easy[step % N_SERVERS], on_done, NULL), 0);
}

static int on_safety_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        fprintf(stderr, "safety timeout at request %u\n", step);
        return sd_event_exit(event, -ETIMEDOUT);
}

static size_t discard(char *data, size_t size, size_t nmemb, void *userdata) {
        return size * nmemb;
}

/* Runs ROUNDS rounds over N_SERVERS fresh servers on a fresh loop; new_connections[] per
 * round. max 0: curl's default cache. */
static void run_rounds(unsigned max) {
        OkgHttpServerOptions opts = { .connection_timeout_sec = 60 };
        OkgHttpServer *servers[N_SERVERS] = {};
        char url[64];

        ASSERT_TRUE(sd_event_new(&event) >= 0);
        ASSERT_TRUE(sd_event_add_time_relative(event, NULL, CLOCK_MONOTONIC, SAFETY_TIMEOUT_USEC,
                                               0, on_safety_timeout, NULL) >= 0);
        ASSERT_EQ(curl_glue_new(event, &glue), 0);
        if (max > 0)
                ASSERT_EQ(curl_glue_set_max_connections(glue, max), 0);
        for (unsigned i = 0; i < N_SERVERS; i++) {
                ASSERT_EQ(okg_http_server_new(event, "127.0.0.1", 0, &opts, handler, &marker,
                                              &servers[i]),
                          0);
                easy[i] = curl_easy_init();
                ASSERT_TRUE(easy[i]);
                snprintf(url, sizeof url, "http://127.0.0.1:%u/",
                         okg_http_server_port(servers[i]));
                ASSERT_EQ(curl_easy_setopt(easy[i], CURLOPT_URL, url), CURLE_OK);
                ASSERT_EQ(curl_easy_setopt(easy[i], CURLOPT_NOPROXY, "*"), CURLE_OK);
                ASSERT_EQ(curl_easy_setopt(easy[i], CURLOPT_WRITEFUNCTION, discard), CURLE_OK);
        }
        step = 0;
        memset(new_connections, 0, sizeof new_connections);
        ASSERT_EQ(curl_glue_add(glue, easy[0], on_done, NULL), 0);
        ASSERT_EQ(sd_event_loop(event), 0);

        glue = curl_glue_free(glue);
        for (unsigned i = 0; i < N_SERVERS; i++) {
                curl_easy_cleanup(easy[i]);
                okg_http_server_free(servers[i]);
        }
        event = sd_event_unref(event);
}

int main(void) {
        /* Sized to the servers: the first round connects to each, the others reuse. */
        run_rounds(N_SERVERS);
        ASSERT_EQ(new_connections[0], (long) N_SERVERS);
        for (unsigned r = 1; r < ROUNDS; r++)
                ASSERT_EQ(new_connections[r], 0);

        /* For comparison only (curl's own policy, not asserted): the default cache. */
        run_rounds(0);
        printf("default cache: %ld new connections in round 2 of %u requests\n",
               new_connections[1], (unsigned) N_SERVERS);

        printf("OK\n");
        return 0;
}
