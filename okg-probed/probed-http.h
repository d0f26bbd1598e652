/* One probe's HTTP transfers, on the daemon's sd-event loop. A plain http:// URL to an IP
 * literal or localhost goes through okg-probed's own HTTP/1.1 client (probed-http-proto.h,
 * libhttp-parser); anything else (https, a host name to look up) through libcurl, loaded at
 * the first such transfer. Either way the caller gets the facts curl reports (its CURLcode,
 * response code, redirect URL, addresses, errno, connect time), so the probes' rules and
 * messages do not depend on which one ran. Each ProbeHttp keeps its one connection alive
 * between transfers when the server does. */
#pragma once

#include <arpa/inet.h>
#include <curl/curl.h>
#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "okg-curl.h"
#include "probed-http-proto.h"

typedef struct ProbeHttp ProbeHttp;

typedef struct ProbeHttpRequest {
        const char *method;             /* "GET", "HEAD", "POST", ... */
        const char *url;
        char *const *headers;           /* curl's CURLOPT_HTTPHEADER syntax; kept by the caller
                                         * until the transfer ends (NULL-terminated, or NULL) */
        const char *body;               /* NULL: none */
        const char *user_agent;         /* NULL: no User-Agent unless headers has one */
        uint64_t timeout_usec;          /* connect and whole transfer */
} ProbeHttpRequest;

/* What curl_easy_getinfo() gives after a transfer, and what ended it. */
typedef struct ProbeHttpResult {
        CURLcode code;
        long status;                    /* 0 when no answer's status line arrived */
        const char *redirect_url;       /* a 3xx answer's Location, absolute; or NULL */
        char primary_ip[INET6_ADDRSTRLEN];
        long primary_port;
        char local_ip[INET6_ADDRSTRLEN];
        long local_port;
        long os_errno;
        int64_t connect_us;             /* 0 on a kept-alive connection */
        bool opened_socket;             /* a new connection was made for it */
        bool curl;                      /* libcurl ran it */
        const char *error;              /* curl's error buffer text, "" when none */
} ProbeHttpResult;

/* Called once per transfer. h may start the next transfer from here; res is valid until
 * then. */
typedef void (*ProbeHttpDone)(ProbeHttp *h, const ProbeHttpResult *res, void *userdata);

int probe_http_new(sd_event *e, CurlGlue *glue, HttpBodyFn body_fn, ProbeHttpDone done,
                   void *userdata, ProbeHttp **ret);
ProbeHttp *probe_http_free(ProbeHttp *h);
static inline void probe_http_freep(ProbeHttp **h) {
        probe_http_free(*h);
}
/* Starts a transfer (none may be running). Negative errno when it cannot start (libcurl
 * missing for a URL that needs it, a request that cannot be written, no memory); the done
 * callback is not called then. */
int probe_http_start(ProbeHttp *h, const ProbeHttpRequest *req);
/* Stops the transfer in flight without calling back. */
void probe_http_cancel(ProbeHttp *h);

/* Whether a transfer to url goes through the own client (no libcurl). */
bool probe_http_direct(const char *url);

/* curl_easy_strerror() without loading libcurl for the codes the own client gives. */
const char *probe_http_strerror(CURLcode code);

/* The facts of a curl transfer that ended with code (for a caller's own curl handle). */
void probe_http_result_from_curl(CURL *easy, CURLcode code, bool opened_socket,
                                 ProbeHttpResult *ret);
