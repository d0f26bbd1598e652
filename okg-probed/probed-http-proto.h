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

/* The Transfer-Encoding fields of one answer, read as Go's net/http (kubelet's client) reads
 * them: an HTTP/1.1 answer may have one such field and it must be exactly "chunked" (any case,
 * surrounding blanks aside); anything else ("gzip, chunked", "identity", two fields) fails the
 * exchange instead of handing over a body still encoded. An HTTP/1.0 answer's field is not
 * looked at (Go ignores it). Values may come in pieces (libhttp-parser) or whole (curl). */
#define HTTP_TE_SHOWN_MAX 160
typedef struct HttpTransferEncoding {
        unsigned fields;
        bool chunked;               /* the last field read is "chunked" */
        char cur[HTTP_TE_SHOWN_MAX];  /* the field being read (its start, when long) */
        size_t cur_len;             /* ...all of it, leading blanks left out */
        char shown[HTTP_TE_SHOWN_MAX];  /* the values, each quoted as Go's %q does, space-separated */
        size_t shown_len;
} HttpTransferEncoding;

void http_te_reset(HttpTransferEncoding *t);
/* A piece of a Transfer-Encoding field's value. */
void http_te_value(HttpTransferEncoding *t, const char *s, size_t len);
/* The end of that field's value. */
void http_te_field_end(HttpTransferEncoding *t);
/* After the answer's headers: NULL when Go takes its transfer coding, else Go's error text in buf
 * (`unsupported transfer encoding: "gzip, chunked"`, `too many transfer encodings: ["a" "b"]`). */
const char *http_te_refusal(const HttpTransferEncoding *t, int http_major, int http_minor,
                            char *buf, size_t size);
/* A header line as curl's CURLOPT_HEADERFUNCTION gets it, fed to t: a status line starts a new
 * answer (*ret_major, *ret_minor: its version), a Transfer-Encoding line adds its value.
 * Returns 1 at the blank line that ends the headers, else 0. */
int http_te_header_line(HttpTransferEncoding *t, const char *line, size_t len, int *ret_major,
                        int *ret_minor);

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
        bool upgraded;              /* a 101: the connection is the server's other protocol */
        bool ambiguous;             /* chunked and a Content-Length: not kept */
        size_t received;            /* bytes fed, interim answers included */
        size_t body_received;       /* bytes of the final answer's body */
        char first[5];              /* the first bytes fed: "HTTP/" for an HTTP answer */
        size_t left_over;           /* bytes fed after the end of the final answer */

        char *location;             /* of the final answer, raw */
        size_t location_len;
        char name[24];              /* the header name being read, while it is short */
        size_t name_len;
        bool in_value, in_location, in_te;
        HttpTransferEncoding te;    /* of the answer being read */
        char te_error[HTTP_TE_SHOWN_MAX + 64];  /* why its transfer coding is refused */
        bool cl_again;              /* a second Content-Length is being read */
        uint64_t cl_first;          /* ...and the first one's value */
} HttpResponse;

void http_response_init(HttpResponse *r, bool head, HttpBodyFn body_fn, void *userdata);
void http_response_done(HttpResponse *r);

/* Feeds what the connection gave. 0: more is needed; 1: the final answer is complete;
 * -EBADMSG not HTTP; -E2BIG headers over the parser's limit; -ENOBUFS body_fn stopped;
 * -EPROTONOSUPPORT a transfer coding Go refuses (why: te_error); -ENOMEM. */
int http_response_feed(HttpResponse *r, const char *data, size_t len);
/* The peer closed: 1 when that completed the answer (a body read until the close), else
 * -EPIPE (nothing at all, or an answer broken off) or -EBADMSG. */
int http_response_eof(HttpResponse *r);

/* What is left of a body whose length the headers gave, as curl counts it (its "N bytes
 * remaining" texts); -1 when the length is not known (chunked, until the close, no headers
 * yet). */
int64_t http_response_body_left(const HttpResponse *r);

/* The CURLcode curl reports for the outcome of feed/eof (ret < 0), or CURLE_OK. */
int http_response_curl_code(const HttpResponse *r, int ret);

/* curl_easy_strerror()'s text for the codes the own client reports, without loading libcurl;
 * NULL for another code. */
const char *http_curl_strerror(int code);
