/* Latency of a storage write: SetGameServer on the bus until okg-storaged's Acknowledged
 * signal (the API server has it), against a raw libcurl PATCH of the same object on the same
 * server, in the same run. Prints figures; asserts nothing.
 *   storage-ack-bench BUS_ADDRESS SERVER CA_FILE TOKEN GAMESERVER_PATH N */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-bus.h>
#include <time.h>

#include "okg-bus-api.h"

static double now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec * 1000.0 + (double) ts.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;
        return x < y ? -1 : x > y;
}

static double pct(double *v, int n, double p) {
        int i = (int) (p * (n - 1) + 0.5);
        return v[i];
}

struct ack {
        uint64_t want;
        int done;
};

static int on_ack(sd_bus_message *m, void *userdata, sd_bus_error *e) {
        struct ack *a = userdata;
        const char *object;
        uint64_t seq;
        if (sd_bus_message_read(m, "st", &object, &seq) >= 0 && strcmp(object, "gameserver") == 0 &&
            seq >= a->want)
                a->done = 1;
        return 0;
}

static size_t discard(char *p, size_t s, size_t n, void *u) {
        return s * n;
}

int main(int argc, char **argv) {
        sd_bus *bus = NULL;
        struct ack a = {};
        double *bus_ms, *curl_ms;
        int n, r;

        if (argc != 7) {
                fprintf(stderr, "usage: %s BUS SERVER CA TOKEN PATH N\n", argv[0]);
                return 2;
        }
        n = atoi(argv[6]);
        bus_ms = calloc((size_t) n, sizeof(double));
        curl_ms = calloc((size_t) n, sizeof(double));
        if (sd_bus_new(&bus) < 0 || sd_bus_set_address(bus, argv[1]) < 0 ||
            sd_bus_set_bus_client(bus, 1) < 0 || sd_bus_start(bus) < 0)
                return 1;
        r = sd_bus_match_signal(bus, NULL, OKG_STORAGE_NAME, OKG_STORAGE_PATH, OKG_STORAGE_IFACE,
                                "Acknowledged", on_ack, &a);
        if (r < 0)
                return 1;

        for (int i = 0; i < n; i++) {
                sd_bus_message *reply = NULL;
                sd_bus_error error = SD_BUS_ERROR_NULL;
                char state[32];
                double t0 = now_ms();

                snprintf(state, sizeof state, "bench-%d", i);
                r = sd_bus_call_method(bus, OKG_STORAGE_NAME, OKG_STORAGE_PATH, OKG_STORAGE_IFACE,
                                       "SetGameServer", &error, &reply,
                                       "sa{ss}a{ss}", state, 0, 0);
                if (r < 0) {
                        fprintf(stderr, "SetGameServer: %s\n", error.message);
                        return 1;
                }
                sd_bus_message_read(reply, "t", &a.want);
                sd_bus_message_unref(reply);
                a.done = 0;
                while (!a.done) {
                        r = sd_bus_process(bus, NULL);
                        if (r < 0)
                                return 1;
                        if (r == 0)
                                sd_bus_wait(bus, 1000000);
                }
                bus_ms[i] = now_ms() - t0;
        }

        curl_global_init(CURL_GLOBAL_DEFAULT);
        CURL *c = curl_easy_init();
        char url[1024], auth[4096], body[128];
        struct curl_slist *h = NULL;
        snprintf(url, sizeof url, "%s%s", argv[2], argv[5]);
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", argv[4]);
        h = curl_slist_append(h, auth);
        h = curl_slist_append(h, "Content-Type: application/merge-patch+json");
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "PATCH");
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(c, CURLOPT_CAINFO, argv[3]);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
        for (int i = 0; i < n; i++) {
                long code = 0;
                double t0 = now_ms();
                snprintf(body, sizeof body, "{\"spec\":{\"opsState\":\"raw-%d\"}}", i);
                curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
                if (curl_easy_perform(c) != CURLE_OK)
                        return 1;
                curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
                if (code != 200)
                        return 1;
                curl_ms[i] = now_ms() - t0;
        }
        qsort(bus_ms, (size_t) n, sizeof(double), cmp);
        qsort(curl_ms, (size_t) n, sizeof(double), cmp);
        printf("%-48s %8s %8s\n", "storage write, ms", "p50", "p99");
        printf("%-48s %8.2f %8.2f\n", "bus SetGameServer -> Acknowledged", pct(bus_ms, n, .5), pct(bus_ms, n, .99));
        printf("%-48s %8.2f %8.2f\n", "raw libcurl PATCH (same object, reused conn.)", pct(curl_ms, n, .5), pct(curl_ms, n, .99));
        printf("%-48s %8.2f %8.2f\n", "ratio", pct(bus_ms, n, .5) / pct(curl_ms, n, .5),
               pct(bus_ms, n, .99) / pct(curl_ms, n, .99));
        curl_slist_free_all(h);
        curl_easy_cleanup(c);
        sd_bus_flush_close_unref(bus);
        free(bus_ms);
        free(curl_ms);
        return 0;
}
