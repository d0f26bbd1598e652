/* okg-probed's own HTTP/1.1 client, the pure part (probed-http-proto.h). */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <limits.h>
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

/* ---- Transfer-Encoding, as Go reads it ---- */

void http_te_reset(HttpTransferEncoding *t) {
        *t = (HttpTransferEncoding) {};
}

void http_te_value(HttpTransferEncoding *t, const char *s, size_t len) {
        for (size_t i = 0; i < len; i++) {
                /* Go's header reader drops the blanks around a value. */
                if (t->cur_len == 0 && (s[i] == ' ' || s[i] == '\t'))
                        continue;
                if (t->cur_len < sizeof t->cur)
                        t->cur[t->cur_len] = s[i];
                t->cur_len++;
        }
}

static void te_show(HttpTransferEncoding *t, const char *s, size_t len) {
        size_t room = sizeof t->shown - 1 - t->shown_len;

        if (len > room)
                len = room;
        memcpy(t->shown + t->shown_len, s, len);
        t->shown_len += len;
        t->shown[t->shown_len] = 0;
}

void http_te_field_end(HttpTransferEncoding *t) {
        size_t n = t->cur_len < sizeof t->cur ? t->cur_len : sizeof t->cur;
        bool long_value = t->cur_len > sizeof t->cur;   /* only its start was kept */
        bool cut = false;                                /* the text shows only a start */

        while (!long_value && n > 0 && (t->cur[n - 1] == ' ' || t->cur[n - 1] == '\t'))
                n--;
        t->chunked = !long_value && n == 7 && strncasecmp(t->cur, "chunked", 7) == 0;
        /* Quoted as Go's %q: \" and \\ escaped, a tab as \t, other control bytes and bytes
         * over 0x7e as \xNN (Go keeps valid UTF-8 as it is; a state text keeps to ASCII). */
        te_show(t, t->fields > 0 ? " \"" : "\"", t->fields > 0 ? 2 : 1);
        for (size_t i = 0; i < n && !cut; i++) {
                unsigned char c = (unsigned char) t->cur[i];
                char e[5];
                if (c == '"' || c == '\\')
                        snprintf(e, sizeof e, "\\%c", c);
                else if (c == '\t')
                        snprintf(e, sizeof e, "\\t");
                else if (c < 0x20 || c > 0x7e)
                        snprintf(e, sizeof e, "\\x%02x", c);
                else
                        snprintf(e, sizeof e, "%c", c);
                /* Room is kept for the closing `..."`. */
                if (t->shown_len + strlen(e) + 4 >= sizeof t->shown)
                        cut = true;
                else
                        te_show(t, e, strlen(e));
        }
        cut = cut || long_value;
        te_show(t, cut ? "...\"" : "\"", cut ? 4 : 1);
        t->fields++;
        t->cur_len = 0;
}

const char *http_te_refusal(const HttpTransferEncoding *t, int http_major, int http_minor,
                            char *buf, size_t size) {
        if (t->fields == 0 || http_major < 1 || (http_major == 1 && http_minor < 1))
                return NULL;
        if (t->fields > 1)
                snprintf(buf, size, "too many transfer encodings: [%s]", t->shown);
        else if (!t->chunked)
                snprintf(buf, size, "unsupported transfer encoding: %s", t->shown);
        else
                return NULL;
        return buf;
}

int http_te_header_line(HttpTransferEncoding *t, const char *line, size_t len, int *ret_major,
                        int *ret_minor) {
        static const char name[] = "Transfer-Encoding:";
        size_t n = sizeof name - 1;

        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
                len--;
        if (len == 0)
                return 1;
        if (len >= 5 && strncmp(line, "HTTP/", 5) == 0) {
                /* A new answer (curl passes on interim ones too): "HTTP/1.1 200", "HTTP/2 200". */
                int major = 0, minor = 0;
                http_te_reset(t);
                if (len > 5 && line[5] >= '0' && line[5] <= '9')
                        major = line[5] - '0';
                if (len > 7 && line[6] == '.' && line[7] >= '0' && line[7] <= '9')
                        minor = line[7] - '0';
                *ret_major = major;
                *ret_minor = minor;
                return 0;
        }
        if (len >= n && strncasecmp(line, name, n) == 0) {
                http_te_value(t, line + n, len - n);
                http_te_field_end(t);
        }
        return 0;
}

static int on_message_begin(http_parser *p) {
        HttpResponse *r = of(p);

        /* A new answer (after an interim 1xx one): only the final one counts. */
        r->status = 0;
        r->location = mfree(r->location);
        r->location_len = 0;
        r->name_len = 0;
        r->in_value = r->in_location = r->in_te = r->cl_again = false;
        http_te_reset(&r->te);
        return 0;
}

static int on_status(http_parser *p, const char *at, size_t len) {
        of(p)->status = p->status_code;
        return 0;
}

/* A second Content-Length whose value is read: the same as the first is fine (RFC 9110 8.6;
 * curl and Go take it), another is an answer that cannot be framed (Go refuses it too). */
static int content_length_again_done(http_parser *p) {
        HttpResponse *r = of(p);

        if (!r->cl_again)
                return 0;
        r->cl_again = false;
        return p->content_length == r->cl_first ? 0 : -1;
}

static bool name_is(const HttpResponse *r, const char *name) {
        size_t n = strlen(name);
        return r->name_len == n && strncasecmp(r->name, name, n) == 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len) {
        HttpResponse *r = of(p);

        if (r->in_value) {
                if (content_length_again_done(p) < 0)
                        return -1;
                if (r->in_te)
                        http_te_field_end(&r->te);
                r->in_value = r->in_location = r->in_te = false;
                r->name_len = 0;
        }
        if (r->cl_again) {
                /* The name went on past "Content-Length" (this is called per piece of it):
                 * another header, so the first length stands again. */
                r->cl_again = false;
                p->flags |= F_CONTENTLENGTH;
                p->content_length = r->cl_first;
        }
        if (r->name_len + len < sizeof r->name)
                memcpy(r->name + r->name_len, at, len);
        r->name_len += len;
        if ((p->flags & F_CONTENTLENGTH) && name_is(r, "Content-Length")) {
                /* libhttp-parser refuses any second Content-Length: let it read this one
                 * as the first, and compare the two once it is read. */
                r->cl_again = true;
                r->cl_first = p->content_length;
                p->flags &= (uint8_t) ~F_CONTENTLENGTH;
        }
        return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len) {
        HttpResponse *r = of(p);
        char *l;

        if (!r->in_value) {
                r->in_value = true;
                r->in_location = r->name_len == 8 && strncasecmp(r->name, "Location", 8) == 0;
                r->in_te = name_is(r, "Transfer-Encoding");
                if (r->in_location) {
                        /* A second Location replaces the first, as curl takes the last. */
                        r->location = mfree(r->location);
                        r->location_len = 0;
                }
        }
        if (r->in_te)
                http_te_value(&r->te, at, len);
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

        if (content_length_again_done(p) < 0)
                return -1;
        if (r->in_te)
                http_te_field_end(&r->te);
        r->in_value = r->in_location = r->in_te = false;
        r->status = p->status_code;
        /* Go refuses the answer before it looks at its status or body: no body still encoded
         * reaches the probe, and kubelet has no answer at all. */
        if (http_te_refusal(&r->te, p->http_major, p->http_minor, r->te_error,
                            sizeof r->te_error)) {
                r->status = 0;
                return -1;
        }
        /* "chunked" with a tab after it: Go's header reader drops the tab, libhttp-parser takes
         * the value for another coding (and would read the body until the close). */
        if (r->te.fields == 1 && r->te.chunked)
                p->flags |= F_CHUNKED;
        /* A status under 100 is no HTTP status (curl calls it a weird reply). */
        if (p->status_code < 100) {
                r->status = 0;
                return -1;
        }
        /* 1: no body follows, whatever Content-Length says: the answer to a HEAD, and 1xx,
         * 204 and 304 (RFC 9112 6.3; a 304 often names the length of the page it stands
         * for, which curl and Go do not wait for either). */
        if (interim(p))
                return 1;
        r->headers_done = true;
        if (p->upgrade)
                /* 101: the connection now speaks another protocol, and it is not read further. */
                r->upgraded = true;
        if (p->flags & F_CHUNKED && p->flags & F_CONTENTLENGTH)
                /* Both: the chunks count, as curl and Go read it, and the connection is not
                 * trusted with another request (RFC 9112 6.3). */
                r->ambiguous = true;
        return r->head || p->status_code == 204 || p->status_code == 304 ? 1 : 0;
}

static int on_body(http_parser *p, const char *at, size_t len) {
        HttpResponse *r = of(p);

        r->body_received += len;
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
        r->keep_alive = http_should_keep_alive(p) && !r->upgraded && !r->ambiguous;
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
        r->parser.allow_chunked_length = 1;
}

void http_response_done(HttpResponse *r) {
        r->location = mfree(r->location);
}

static int parse_error(HttpResponse *r) {
        enum http_errno e = HTTP_PARSER_ERRNO(&r->parser);

        if (r->body_stopped)
                return -ENOBUFS;
        /* libhttp-parser refuses a Content-Length beside a coding other than chunked while
         * it reads the headers; Go refuses the coding first. */
        if (e == HPE_UNEXPECTED_CONTENT_LENGTH && !r->te_error[0] && (r->in_te || r->te.fields)) {
                if (r->in_te)
                        http_te_field_end(&r->te);
                r->in_te = false;
                (void) http_te_refusal(&r->te, r->parser.http_major, r->parser.http_minor,
                                       r->te_error, sizeof r->te_error);
        }
        if (r->te_error[0]) {
                r->status = 0;      /* no answer, as Go has none */
                return -EPROTONOSUPPORT;
        }
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
        for (size_t i = 0; r->received + i < sizeof r->first && i < len; i++)
                r->first[r->received + i] = data[i];
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

int64_t http_response_body_left(const HttpResponse *r) {
        if (!r->headers_done || (r->parser.flags & F_CHUNKED) ||
            !(r->parser.flags & F_CONTENTLENGTH) || r->parser.content_length == ULLONG_MAX ||
            r->parser.content_length > INT64_MAX)
                return -1;
        return (int64_t) r->parser.content_length;
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
        case -EPROTONOSUPPORT:
                /* curl's code for a coding it cannot decode; te_error says which. */
                return CURLE_BAD_CONTENT_ENCODING;
        case -EPIPE:
                /* Closed: before any byte, "Empty reply from server"; within the body, a
                 * partial transfer; within the headers, a failed read. */
                return r->received == 0 ? CURLE_GOT_NOTHING
                       : r->headers_done ? CURLE_PARTIAL_FILE
                                         : CURLE_RECV_ERROR;
        default:
                /* An answer that does not even start as HTTP (an SSH banner, an HTTP/2-only
                 * server's frames) is what curl takes for HTTP/0.9, which it refuses. */
                if (strncmp(r->first, "HTTP/", r->received < sizeof r->first ? r->received : sizeof r->first) != 0)
                        return CURLE_UNSUPPORTED_PROTOCOL;
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
        case CURLE_UNSUPPORTED_PROTOCOL:
                return "Unsupported protocol";
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
        case CURLE_BAD_CONTENT_ENCODING:
                return "Unrecognized or bad HTTP Content or Transfer-Encoding";
        default:
                return NULL;
        }
}
