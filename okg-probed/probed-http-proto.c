/* okg-probed's own HTTP/1.1 client, the pure part (probed-http-proto.h). */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "macro.h"
#include "probed-http-proto.h"

int http_url_parse(const char *url, HttpUrl *ret) {
        HttpUrl u = {};
        const char *p, *end, *host, *host_end;
        size_t n;

        if (strncasecmp(url, "http://", 7) == 0)
                p = url + 7;
        else if (strncasecmp(url, "https://", 8) == 0) {
                u.https = true;
                p = url + 8;
        } else
                return -EINVAL;
        end = p + strcspn(p, "/?#");
        if (memchr(p, '@', end - p))
                return -EINVAL;
        if (*p == '[') {
                host = p + 1;
                host_end = memchr(host, ']', end - host);
                if (!host_end)
                        return -EINVAL;
                p = host_end + 1;
                u.ipv6 = true;
        } else {
                host = p;
                host_end = memchr(p, ':', end - p) ?: end;
                p = host_end;
        }
        n = host_end - host;
        if (n == 0 || n >= sizeof u.host)
                return -EINVAL;
        memcpy(u.host, host, n);
        u.port = u.https ? 443 : 80;
        if (p < end) {
                unsigned long port = 0;
                if (*p != ':')
                        return -EINVAL;
                p++;
                if (p == end || end - p > 5)
                        return -EINVAL;
                for (; p < end; p++) {
                        if (*p < '0' || *p > '9')
                                return -EINVAL;
                        port = port * 10 + (unsigned long) (*p - '0');
                }
                if (port == 0 || port > 65535)
                        return -EINVAL;
                u.port = (uint16_t) port;
                u.explicit_port = true;
        }
        u.path = end;
        u.path_len = strcspn(end, "#");
        /* Control characters and spaces would break the request line: curl's business. */
        for (size_t i = 0; i < u.path_len; i++)
                if ((unsigned char) u.path[i] <= ' ' || u.path[i] == 0x7f)
                        return -EINVAL;
        *ret = u;
        return 0;
}

bool http_url_direct(const HttpUrl *u) {
        unsigned char buf[sizeof(struct in6_addr)];

        if (u->https)
                return false;
        if (u->ipv6)
                return inet_pton(AF_INET6, u->host, buf) == 1;
        return inet_pton(AF_INET, u->host, buf) == 1 || strcasecmp(u->host, "localhost") == 0;
}

/* A header line in curl's syntax: its name's length, and what to send (NULL: nothing). */
static size_t header_name(const char *h, const char **ret_send, bool *ret_empty) {
        size_t n = strcspn(h, ":;");
        const char *v;

        *ret_empty = false;
        if (h[n] == ';') {
                /* "Name;" only (curl ignores "Name;value"): sent with an empty value. */
                for (v = h + n + 1; *v == ' ' || *v == '\t'; v++)
                        ;
                *ret_send = *v ? NULL : h;
                *ret_empty = !*v;
                return n;
        }
        if (h[n] != ':') {
                *ret_send = NULL;
                return n;
        }
        for (v = h + n + 1; *v == ' ' || *v == '\t'; v++)
                ;
        *ret_send = *v ? h : NULL;      /* "Name:" removes, sends nothing */
        return n;
}

static bool has_header(char *const *headers, const char *name) {
        size_t len = strlen(name);

        for (char *const *h = headers; h && *h; h++) {
                const char *send;
                bool empty;
                size_t n = header_name(*h, &send, &empty);
                if (n == len && strncasecmp(*h, name, len) == 0)
                        return true;
        }
        return false;
}

int http_request_text(const char *method, const HttpUrl *u, char *const *headers,
                      const char *user_agent, const char *body, char **ret, size_t *ret_len) {
        _cleanup_(freep) char *text = NULL;
        size_t len = 0;
        FILE *f;
        bool ok;

        f = open_memstream(&text, &len);
        if (!f)
                return -ENOMEM;
        fprintf(f, "%s %s%.*s HTTP/1.1\r\n", method,
                u->path_len == 0 || u->path[0] != '/' ? "/" : "", (int) u->path_len, u->path);
        if (!has_header(headers, "Host")) {
                /* curl names the port only when it is not the scheme's. */
                fprintf(f, "Host: %s%s%s", u->ipv6 ? "[" : "", u->host, u->ipv6 ? "]" : "");
                if (u->port != (u->https ? 443 : 80))
                        fprintf(f, ":%u", u->port);
                fputs("\r\n", f);
        }
        if (user_agent && !has_header(headers, "User-Agent"))
                fprintf(f, "User-Agent: %s\r\n", user_agent);
        if (!has_header(headers, "Accept"))
                fputs("Accept: */*\r\n", f);
        for (char *const *h = headers; h && *h; h++) {
                const char *send;
                bool empty;
                size_t n = header_name(*h, &send, &empty);
                if (!send)
                        continue;
                /* curl sends a Content-Length of its own for a body. */
                if (body && n == 14 && strncasecmp(*h, "Content-Length", 14) == 0)
                        continue;
                if (empty)
                        fprintf(f, "%.*s:\r\n", (int) n, *h);
                else
                        fprintf(f, "%s\r\n", send);
        }
        if (body) {
                fprintf(f, "Content-Length: %zu\r\n", strlen(body));
                if (!has_header(headers, "Content-Type"))
                        fputs("Content-Type: application/x-www-form-urlencoded\r\n", f);
        }
        fputs("\r\n", f);
        if (body)
                fputs(body, f);
        ok = !ferror(f);
        if (fclose(f) != 0 || !ok)
                return -ENOMEM;
        /* A header with a line break would be a second header: refuse the request. */
        for (char *const *h = headers; h && *h; h++)
                if (strpbrk(*h, "\r\n"))
                        return -EINVAL;
        if (strpbrk(method, " \r\n") || (user_agent && strpbrk(user_agent, "\r\n")))
                return -EINVAL;
        *ret_len = len;
        *ret = TAKE_PTR(text);
        return 0;
}

/* RFC 3986 5.2.4, in place: "/a/b/../c/./d" -> "/a/c/d". The output never overtakes the
 * input. */
static void remove_dot_segments(char *path) {
        char *in = path, *out = path;
        bool pop;

        while (*in) {
                pop = false;
                if (startswith(in, "../"))
                        in += 3;
                else if (startswith(in, "./") || startswith(in, "/./"))
                        in += 2;
                else if (streq(in, "/."))
                        in[1] = 0;
                else if (startswith(in, "/../")) {
                        in += 3;
                        pop = true;
                } else if (streq(in, "/..")) {
                        in += 2;
                        *in = '/';
                        pop = true;
                } else if (streq(in, ".") || streq(in, ".."))
                        in += strlen(in);
                else {
                        do
                                *out++ = *in++;
                        while (*in && *in != '/');
                }
                if (pop)
                        while (out > path && *--out != '/')
                                ;
        }
        *out = 0;
}

int http_location_resolve(const char *base, const char *location, char **ret) {
        _cleanup_(freep) char *path = NULL;
        const char *scheme_end, *auth_end, *base_path_end, *q;
        char *s;
        int n;

        scheme_end = strstr(base, "://");
        if (!scheme_end)
                return -EINVAL;
        /* Absolute: a scheme of letters, digits, "+-." before ':'. */
        q = location + strspn(location, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                        "0123456789+-.");
        if (q > location && *q == ':' && ((location[0] | 0x20) >= 'a' && (location[0] | 0x20) <= 'z')) {
                s = strdup(location);
                if (!s)
                        return -ENOMEM;
                *ret = s;
                return 0;
        }
        if (startswith(location, "//")) {
                n = asprintf(&s, "%.*s:%s", (int) (scheme_end - base), base, location);
                if (n < 0)
                        return -ENOMEM;
                *ret = s;
                return 0;
        }
        auth_end = scheme_end + 3 + strcspn(scheme_end + 3, "/?#");
        base_path_end = auth_end + strcspn(auth_end, "?#");
        if (isempty(location) || location[0] == '#')
                n = asprintf(&path, "%.*s%s", (int) (base_path_end - auth_end) + (int) strcspn(base_path_end, "#"),
                             auth_end, location);
        else if (location[0] == '?')
                n = asprintf(&path, "%.*s%s", (int) (base_path_end - auth_end), auth_end, location);
        else if (location[0] == '/')
                n = asprintf(&path, "%s", location);
        else {
                /* Relative to the base path's directory. */
                const char *slash = base_path_end;
                while (slash > auth_end && slash[-1] != '/')
                        slash--;
                n = slash > auth_end ? asprintf(&path, "%.*s%s", (int) (slash - auth_end), auth_end, location)
                                     : asprintf(&path, "/%s", location);
        }
        if (n < 0) {
                path = NULL;
                return -ENOMEM;
        }
        if (path[0] == '/') {
                /* Dot segments go from the path only, not the query. */
                size_t plen = strcspn(path, "?#");
                _cleanup_(freep) char *rest = strdup(path + plen);
                if (!rest)
                        return -ENOMEM;
                path[plen] = 0;
                remove_dot_segments(path);
                n = asprintf(&s, "%.*s%s%s%s", (int) (auth_end - base), base,
                             path[0] == '/' ? "" : "/", path, rest);
        } else
                n = asprintf(&s, "%.*s%s", (int) (auth_end - base), base, path);
        if (n < 0)
                return -ENOMEM;
        *ret = s;
        return 0;
}

/* ---- the answer ---- */

static HttpResponse *of(http_parser *p) {
        return p->data;
}

static int on_message_begin(http_parser *p) {
        HttpResponse *r = of(p);

        /* A new answer (after an interim 1xx one): only the final one counts. */
        r->status = 0;
        r->location = mfree(r->location);
        r->location_len = 0;
        r->name_len = 0;
        r->in_value = r->in_location = false;
        return 0;
}

static int on_status(http_parser *p, const char *at, size_t len) {
        of(p)->status = p->status_code;
        return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len) {
        HttpResponse *r = of(p);

        if (r->in_value) {
                r->in_value = r->in_location = false;
                r->name_len = 0;
        }
        if (r->name_len + len < sizeof r->name)
                memcpy(r->name + r->name_len, at, len);
        r->name_len += len;
        return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len) {
        HttpResponse *r = of(p);
        char *l;

        if (!r->in_value) {
                r->in_value = true;
                r->in_location = r->name_len == 8 && strncasecmp(r->name, "Location", 8) == 0;
                if (r->in_location) {
                        /* A second Location replaces the first, as curl takes the last. */
                        r->location = mfree(r->location);
                        r->location_len = 0;
                }
        }
        if (!r->in_location || len == 0)
                return 0;
        /* A NUL would cut the URL short: such an answer is malformed. */
        if (memchr(at, 0, len))
                return -1;
        if (r->location_len + len > HTTP_LOCATION_MAX)
                return -1;
        l = realloc(r->location, r->location_len + len + 1);
        if (!l)
                return -1;
        memcpy(l + r->location_len, at, len);
        r->location_len += len;
        l[r->location_len] = 0;
        r->location = l;
        return 0;
}

static bool interim(const http_parser *p) {
        return p->status_code >= 100 && p->status_code < 200 && p->status_code != 101;
}

static int on_headers_complete(http_parser *p) {
        HttpResponse *r = of(p);

        r->status = p->status_code;
        /* A status under 100 is no HTTP status (curl calls it a weird reply). */
        if (p->status_code < 100) {
                r->status = 0;
                return -1;
        }
        if (interim(p))
                return 0;
        r->headers_done = true;
        /* 1: no body follows (the answer to a HEAD). */
        return r->head ? 1 : 0;
}

static int on_body(http_parser *p, const char *at, size_t len) {
        HttpResponse *r = of(p);

        if (!r->body_fn)
                return 0;
        if (r->body_fn((char *) at, 1, len, r->userdata) != len) {
                r->body_stopped = true;
                return -1;
        }
        return 0;
}

static int on_message_complete(http_parser *p) {
        HttpResponse *r = of(p);

        if (interim(p))
                return 0;
        r->complete = true;
        r->keep_alive = http_should_keep_alive(p);
        /* What follows is not ours to read: the next request's answer, or garbage. */
        http_parser_pause(p, 1);
        return 0;
}

static const http_parser_settings settings = {
        .on_message_begin = on_message_begin,
        .on_status = on_status,
        .on_header_field = on_header_field,
        .on_header_value = on_header_value,
        .on_headers_complete = on_headers_complete,
        .on_body = on_body,
        .on_message_complete = on_message_complete,
};

void http_response_init(HttpResponse *r, bool head, HttpBodyFn body_fn, void *userdata) {
        *r = (HttpResponse) { .head = head, .body_fn = body_fn, .userdata = userdata };
        http_parser_init(&r->parser, HTTP_RESPONSE);
        r->parser.data = r;
}

void http_response_done(HttpResponse *r) {
        r->location = mfree(r->location);
}

static int parse_error(HttpResponse *r) {
        enum http_errno e = HTTP_PARSER_ERRNO(&r->parser);

        if (r->body_stopped)
                return -ENOBUFS;
        if (e == HPE_HEADER_OVERFLOW) {
                r->header_overflow = true;
                return -E2BIG;
        }
        if (e == HPE_CB_header_value && r->in_location)
                return r->location_len + 1 > HTTP_LOCATION_MAX ? -E2BIG : -ENOMEM;
        return -EBADMSG;
}

int http_response_feed(HttpResponse *r, const char *data, size_t len) {
        size_t n;

        if (r->complete) {
                r->left_over += len;
                return 1;
        }
        if (HTTP_PARSER_ERRNO(&r->parser) != HPE_OK)
                return parse_error(r);
        r->received += len;
        n = http_parser_execute(&r->parser, &settings, data, len);
        if (r->complete) {
                r->left_over += len - n;
                return 1;
        }
        if (HTTP_PARSER_ERRNO(&r->parser) != HPE_OK || n != len)
                return parse_error(r);
        return 0;
}

int http_response_eof(HttpResponse *r) {
        if (r->complete)
                return 1;
        if (r->received == 0)
                return -EPIPE;
        if (HTTP_PARSER_ERRNO(&r->parser) != HPE_OK)
                return parse_error(r);
        (void) http_parser_execute(&r->parser, &settings, NULL, 0);
        if (r->complete) {
                r->keep_alive = false;
                return 1;
        }
        if (HTTP_PARSER_ERRNO(&r->parser) != HPE_OK && !r->headers_done)
                return parse_error(r);
        return -EPIPE;
}

int http_response_curl_code(const HttpResponse *r, int ret) {
        if (ret >= 0)
                return CURLE_OK;
        switch (ret) {
        case -ENOBUFS:
                return CURLE_WRITE_ERROR;
        case -ENOMEM:
                return CURLE_OUT_OF_MEMORY;
        case -E2BIG:
                return CURLE_RECV_ERROR;
        case -EPIPE:
                /* Closed: before any byte, "Empty reply from server"; within the body, a
                 * partial transfer; within the headers, a failed read. */
                return r->received == 0 ? CURLE_GOT_NOTHING
                       : r->headers_done ? CURLE_PARTIAL_FILE
                                         : CURLE_RECV_ERROR;
        default:
                return CURLE_WEIRD_SERVER_REPLY;
        }
}

const char *http_curl_strerror(int code) {
        /* The texts of Debian's libcurl 7.88 for these codes. */
        switch (code) {
        case CURLE_OK:
                return "No error";
        case CURLE_URL_MALFORMAT:
                return "URL using bad/illegal format or missing URL";
        case CURLE_COULDNT_CONNECT:
                return "Couldn't connect to server";
        case CURLE_WEIRD_SERVER_REPLY:
                return "Weird server reply";
        case CURLE_PARTIAL_FILE:
                return "Transferred a partial file";
        case CURLE_WRITE_ERROR:
                return "Failed writing received data to disk/application";
        case CURLE_OUT_OF_MEMORY:
                return "Out of memory";
        case CURLE_OPERATION_TIMEDOUT:
                return "Timeout was reached";
        case CURLE_GOT_NOTHING:
                return "Server returned nothing (no headers, no data)";
        case CURLE_SEND_ERROR:
                return "Failed sending data to the peer";
        case CURLE_RECV_ERROR:
                return "Failure when receiving data from the peer";
        default:
                return NULL;
        }
}
