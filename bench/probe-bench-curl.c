/* The baseline for bench/probe-bench.py: the least a program can do to make the same HTTP probes
 * as okg-probed, with libcurl's easy interface in a loop. Prints the CPU time it used.
 *
 *   probe-bench-curl URL COUNT [fresh|reuse] [RATE]
 *
 * fresh: a new connection per request (FORBID_REUSE), reuse: keep-alive on one connection.
 * RATE: requests per second, paced with sleeps like probes on a timer (default: back to back). */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static char body[10240];
static size_t body_len;

static size_t on_body(char *data, size_t size, size_t nmemb,
                      void *userdata __attribute__((unused))) {
        size_t n = size * nmemb, room = sizeof body - body_len;
        if (n > room)
                n = room;
        memcpy(body + body_len, data, n);
        body_len += n;
        return size * nmemb;
}

static double cpu_seconds(void) {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        return (double) ru.ru_utime.tv_sec + (double) ru.ru_utime.tv_usec / 1e6 +
               (double) ru.ru_stime.tv_sec + (double) ru.ru_stime.tv_usec / 1e6;
}

int main(int argc, char **argv) {
        long count, ok = 0;
        double rate;
        int fresh;
        CURL *c;

        if (argc < 3) {
                fprintf(stderr, "usage: %s URL COUNT [fresh|reuse]\n", argv[0]);
                return 2;
        }
        count = strtol(argv[2], NULL, 10);
        fresh = argc > 3 && strcmp(argv[3], "fresh") == 0;
        rate = argc > 4 ? strtod(argv[4], NULL) : 0;

        curl_global_init(CURL_GLOBAL_DEFAULT);
        c = curl_easy_init();
        if (!c)
                return 1;
        curl_easy_setopt(c, CURLOPT_URL, argv[1]);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 1000L);
        curl_easy_setopt(c, CURLOPT_USERAGENT, "okg-probed/bench");
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
        if (fresh)
                curl_easy_setopt(c, CURLOPT_FORBID_REUSE, 1L);

        double start = cpu_seconds();
        for (long i = 0; i < count; i++) {
                long status = 0;
                if (rate > 0) {
                        struct timespec ts = { 0, (long) (1e9 / rate) };
                        nanosleep(&ts, NULL);
                }
                body_len = 0;
                if (curl_easy_perform(c) == CURLE_OK &&
                    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK &&
                    status >= 200 && status <= 399)
                        ok++;
        }
        double used = cpu_seconds() - start;

        curl_easy_cleanup(c);
        curl_global_cleanup();
        printf("%ld %ld %.6f\n", count, ok, used);
        return ok == count ? 0 : 1;
}
