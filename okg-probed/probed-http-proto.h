/* okg-probed's own HTTP/1.1 client, its pure part: which URLs it takes (plain http:// to an IP
 * literal or localhost, no DNS), the request text (the headers curl would send for the same
 * options), a redirect's Location resolved as CURLINFO_REDIRECT_URL gives it, and the answer
 * read through Debian's libhttp-parser. No I/O: probed-http.c drives it on sd-event. */
#pragma once

#include <http_parser.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP_HOST_MAX 256
/* A Location longer than this is not followed (curl's own limit is larger; none of ours). */
#define HTTP_LOCATION_MAX (8 * 1024)

typedef struct HttpUrl {
        bool https;
        char host[HTTP_HOST_MAX];   /* as written, without an IPv6 literal's brackets */
        bool ipv6;                  /* the host was bracketed */
        uint16_t port;              /* the URL's, else the scheme's */
        bool explicit_port;
        const char *path;           /* into the URL: path and query, no fragment; may be "" */
        size_t path_len;
} HttpUrl;

/* Splits an absolute http:// or https:// URL. -EINVAL for anything else (user info, an empty
 * host, a bad port...): such a URL is left to curl, which says what is wrong with it. */
int http_url_parse(const char *url, HttpUrl *ret);

/* Whether the own client takes this URL: plain http, and a host that needs no lookup (an IPv4
 * or IPv6 literal, or localhost, tried as 127.0.0.1 then ::1). */
bool http_url_direct(const HttpUrl *u);

/* The request as curl sends it for the same options: request line, Host, User-Agent (when
 * user_agent is set), Accept: * / *, the extra headers, then for a body Content-Length and
 * curl's default Content-Type. headers are in curl's CURLOPT_HTTPHEADER syntax: "Name: value"
 * is sent (and replaces a header of that name curl would add), "Name;" sends the header with
 * an empty value, "Name:" sends nothing and removes curl's own. body NULL: none. */
int http_request_text(const char *method, const HttpUrl *u, char *const *headers,
                      const char *user_agent, const char *body, char **ret, size_t *ret_len);

/* location resolved against base (RFC 3986, dot segments removed), as curl's redirect URL.
 * -ENOMEM, -EINVAL when base is no URL. */
int http_location_resolve(const char *base, const char *location, char **ret);

/* Whether the answer with this status carries a Location curl would report. */
static inline bool http_status_is_redirect(long status) {
        return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

/* The body as curl's CURLOPT_WRITEFUNCTION gets it: returns what it took; less ends the
 * transfer (CURLE_WRITE_ERROR). */
typedef size_t (*HttpBodyFn)(char *data, size_t size, size_t nmemb, void *userdata);

typedef struct HttpResponse {
        http_parser parser;
        bool head;                  /* the answer to a HEAD: no body */
        HttpBodyFn body_fn;
        void *userdata;

        long status;                /* of the final answer, once its status line arrived */
        bool headers_done;          /* of the final answer */
        bool complete;              /* the final answer was read whole */
        bool keep_alive;            /* ...and the connection may carry the next request */
        bool body_stopped;          /* body_fn took less than it was given */
        bool header_overflow;
        size_t received;            /* bytes fed, interim answers included */
        size_t left_over;           /* bytes fed after the end of the final answer */

        char *location;             /* of the final answer, raw */
        size_t location_len;
        char name[16];              /* the header name being read, while it is short */
        size_t name_len;
        bool in_value, in_location;
} HttpResponse;

void http_response_init(HttpResponse *r, bool head, HttpBodyFn body_fn, void *userdata);
void http_response_done(HttpResponse *r);

/* Feeds what the connection gave. 0: more is needed; 1: the final answer is complete;
 * -EBADMSG not HTTP; -E2BIG headers over the parser's limit; -ENOBUFS body_fn stopped;
 * -ENOMEM. */
int http_response_feed(HttpResponse *r, const char *data, size_t len);
/* The peer closed: 1 when that completed the answer (a body read until the close), else
 * -EPIPE (nothing at all, or an answer broken off) or -EBADMSG. */
int http_response_eof(HttpResponse *r);

/* The CURLcode curl reports for the outcome of feed/eof (ret < 0), or CURLE_OK. */
int http_response_curl_code(const HttpResponse *r, int ret);

/* curl_easy_strerror()'s text for the codes the own client reports, without loading libcurl;
 * NULL for another code. */
const char *http_curl_strerror(int code);
