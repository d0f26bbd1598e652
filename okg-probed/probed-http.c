/* One probe's HTTP transfers (probed-http.h): the own client's socket on sd-event, or a curl
 * easy handle on the daemon's CurlGlue. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"
#include "okg-event.h"
#include "probed-http.h"

#define READ_CHUNK (16 * 1024)

struct ProbeHttp {
        sd_event *event;
        CurlGlue *glue;
        HttpBodyFn body_fn;
        ProbeHttpDone done;
        void *userdata;

        /* The own client. fd is the connection, kept alive between transfers when keep is
         * set; peer is where it goes. */
        int fd;
        bool keep;
        struct sockaddr_storage peer;
        socklen_t peer_len;
        sd_event_source *io, *timer;
        bool running;

        /* The transfer in flight. */
        char *url;
        char *request;
        size_t request_len, sent;
        HttpResponse response;
        struct sockaddr_storage addrs[2];
        socklen_t addr_lens[2];
        unsigned n_addrs, addr;
        int first_error;            /* the connect error of addrs[0], when there are two */
        bool connecting, reused, retried, head;
        uint64_t started_usec, deadline_usec;
        CURLcode pending;           /* a failure found while starting, reported from the loop */
        ProbeHttpResult result;
        char *redirect_url;

        /* curl, for what the own client does not take. */
        CURL *easy;
        struct curl_slist *slist;
        char *const *slist_of;      /* the headers slist was made from */
        bool curl_opened_socket;
        char curl_error[CURL_ERROR_SIZE];
        /* The answer's Transfer-Encoding, checked as the own client checks it: libcurl would
         * hand over a body in a coding other than chunked still encoded. */
        HttpTransferEncoding curl_te;
        int curl_http_major, curl_http_minor;
        char curl_te_error[sizeof ((HttpResponse *) NULL)->te_error];
        char error[CURL_ERROR_SIZE];
};

const char *probe_http_strerror(CURLcode code) {
        return http_curl_strerror(code) ?: curl_easy_strerror(code);
}

int probe_http_new(sd_event *e, CurlGlue *glue, HttpBodyFn body_fn, ProbeHttpDone done,
                   void *userdata, ProbeHttp **ret) {
        ProbeHttp *h = calloc(1, sizeof *h);

        if (!h)
                return -ENOMEM;
        h->event = sd_event_ref(e);
        h->glue = glue;
        h->body_fn = body_fn;
        h->done = done;
        h->userdata = userdata;
        h->fd = -1;
        *ret = h;
        return 0;
}

static void close_connection(ProbeHttp *h) {
        h->io = sd_event_source_disable_unref(h->io);
        if (h->fd >= 0)
                close(h->fd);
        h->fd = -1;
        h->keep = false;
}

static void own_stop(ProbeHttp *h) {
        (void) okg_timer_disarm(h->timer);
        h->running = false;
        h->request = mfree(h->request);
        http_response_done(&h->response);
}

void probe_http_cancel(ProbeHttp *h) {
        if (!h)
                return;
        if (h->easy)
                curl_glue_remove(h->glue, h->easy);
        if (h->running) {
                close_connection(h);
                own_stop(h);
        }
}

ProbeHttp *probe_http_free(ProbeHttp *h) {
        if (!h)
                return NULL;
        probe_http_cancel(h);
        close_connection(h);
        h->timer = sd_event_source_disable_unref(h->timer);
        if (h->easy)
                curl_easy_cleanup(h->easy);
        if (h->slist)
                curl_slist_free_all(h->slist);
        free(h->url);
        free(h->redirect_url);
        sd_event_unref(h->event);
        free(h);
        return NULL;
}

/* ---- curl ---- */

void probe_http_result_from_curl(CURL *easy, CURLcode code, bool opened_socket,
                                 ProbeHttpResult *ret) {
        const char *ip = NULL, *lip = NULL;
        curl_off_t connect_us = 0;

        ret->code = code;
        ret->curl = true;
        ret->opened_socket = opened_socket;
        (void) curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &ret->status);
        ret->headers_done = ret->status > 0;
        (void) curl_easy_getinfo(easy, CURLINFO_PRIMARY_IP, &ip);
        (void) curl_easy_getinfo(easy, CURLINFO_PRIMARY_PORT, &ret->primary_port);
        (void) curl_easy_getinfo(easy, CURLINFO_LOCAL_IP, &lip);
        (void) curl_easy_getinfo(easy, CURLINFO_LOCAL_PORT, &ret->local_port);
        (void) curl_easy_getinfo(easy, CURLINFO_OS_ERRNO, &ret->os_errno);
        (void) curl_easy_getinfo(easy, CURLINFO_CONNECT_TIME_T, &connect_us);
        ret->connect_us = (int64_t) connect_us;
        snprintf(ret->primary_ip, sizeof ret->primary_ip, "%s", strempty(ip));
        snprintf(ret->local_ip, sizeof ret->local_ip, "%s", strempty(lip));
}

static void on_curl_done(CurlGlue *g, CURL *easy, CURLcode code, void *userdata) {
        ProbeHttp *h = userdata;
        ProbeHttpResult res = { .error = h->curl_error };
        char *location = NULL;   /* owned by curl */

        probe_http_result_from_curl(easy, code, h->curl_opened_socket, &res);
        if (h->curl_te_error[0]) {
                /* As the own client: no answer, and which coding it was. */
                res.code = CURLE_BAD_CONTENT_ENCODING;
                res.status = 0;
                res.headers_done = false;
                res.error = h->curl_te_error;
                h->done(h, &res, h->userdata);
                return;
        }
        if (curl_easy_getinfo(easy, CURLINFO_REDIRECT_URL, &location) == CURLE_OK &&
            !isempty(location) && free_and_strdup(&h->redirect_url, location) >= 0)
                res.redirect_url = h->redirect_url;
        h->done(h, &res, h->userdata);
}

static int on_curl_socket(void *userdata, curl_socket_t fd, curlsocktype purpose) {
        ProbeHttp *h = userdata;

        h->curl_opened_socket = true;
        return CURL_SOCKOPT_OK;
}

static size_t on_curl_header(char *line, size_t size, size_t nmemb, void *userdata) {
        ProbeHttp *h = userdata;
        size_t n = size * nmemb;

        if (http_te_header_line(&h->curl_te, line, n, &h->curl_http_major,
                                &h->curl_http_minor) > 0 &&
            http_te_refusal(&h->curl_te, h->curl_http_major, h->curl_http_minor,
                            h->curl_te_error, sizeof h->curl_te_error))
                return 0;       /* ends the transfer before any byte of the body */
        return n;
}

static int curl_setup(ProbeHttp *h) {
        CURL *easy = curl_easy_init();

        if (!easy)
                return -ENOMEM;
        h->easy = easy;
        bool ok = curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK &&
                  curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
                  /* Probes go to the game directly, never through a proxy (as kubelet's). */
                  curl_easy_setopt(easy, CURLOPT_NOPROXY, "*") == CURLE_OK &&
                  /* kubelet does not verify a probe's certificate either: the game's is often
                   * self-signed, and the probe carries no secret of ours. */
                  curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 0L) == CURLE_OK &&
                  curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 0L) == CURLE_OK &&
                  /* Redirects are the caller's, like kubelet's: same host only. */
                  curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L) == CURLE_OK &&
                  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, h->body_fn) == CURLE_OK &&
                  curl_easy_setopt(easy, CURLOPT_WRITEDATA, h->userdata) == CURLE_OK &&
                  curl_easy_setopt(easy, CURLOPT_SOCKOPTFUNCTION, on_curl_socket) == CURLE_OK &&
                  curl_easy_setopt(easy, CURLOPT_SOCKOPTDATA, h) == CURLE_OK &&
                  curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, on_curl_header) == CURLE_OK &&
                  curl_easy_setopt(easy, CURLOPT_HEADERDATA, h) == CURLE_OK &&
                  curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, h->curl_error) == CURLE_OK;
        return ok ? 0 : -EIO;
}

static int curl_start(ProbeHttp *h, const ProbeHttpRequest *req) {
        long timeout_ms = (long) (req->timeout_usec / 1000) ?: 1;
        CURL *easy;
        bool ok;
        int r;

        if (!h->easy) {
                /* libcurl is loaded here, by the first transfer that needs it. */
                r = curl_setup(h);
                if (r < 0) {
                        if (h->easy)
                                curl_easy_cleanup(h->easy);
                        h->easy = NULL;
                        return r;
                }
        }
        easy = h->easy;
        if (h->slist_of != req->headers || (!h->slist && req->headers)) {
                struct curl_slist *l = NULL;
                for (char *const *p = req->headers; p && *p; p++) {
                        struct curl_slist *n = curl_slist_append(l, *p);
                        if (!n) {
                                if (l)
                                        curl_slist_free_all(l);
                                return -ENOMEM;
                        }
                        l = n;
                }
                if (curl_easy_setopt(easy, CURLOPT_HTTPHEADER, l) != CURLE_OK) {
                        if (l)
                                curl_slist_free_all(l);
                        return -EIO;
                }
                if (h->slist)
                        curl_slist_free_all(h->slist);
                h->slist = l;
                h->slist_of = req->headers;
        }
        h->curl_error[0] = 0;
        h->curl_te_error[0] = 0;
        http_te_reset(&h->curl_te);
        h->curl_opened_socket = false;
        ok = curl_easy_setopt(easy, CURLOPT_URL, req->url) == CURLE_OK &&
             curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, timeout_ms) == CURLE_OK &&
             curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms) == CURLE_OK &&
             curl_easy_setopt(easy, CURLOPT_USERAGENT, req->user_agent) == CURLE_OK &&
             curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, NULL) == CURLE_OK &&
             curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L) == CURLE_OK;
        if (ok && streq(req->method, "HEAD"))
                ok = curl_easy_setopt(easy, CURLOPT_NOBODY, 1L) == CURLE_OK;
        else if (ok && req->body) {
                /* The caller keeps the body until the transfer ends. */
                ok = curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE, (long) strlen(req->body)) == CURLE_OK &&
                     curl_easy_setopt(easy, CURLOPT_POSTFIELDS, req->body) == CURLE_OK;
                if (ok && !streq(req->method, "POST"))
                        ok = curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, req->method) == CURLE_OK;
        } else if (ok && !streq(req->method, "GET"))
                ok = curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, req->method) == CURLE_OK;
        if (!ok)
                return -EIO;
        return curl_glue_add(h->glue, easy, on_curl_done, h);
}

/* ---- the own client ---- */

static uint64_t now_usec(ProbeHttp *h) {
        uint64_t t = 0;
        (void) sd_event_now(h->event, CLOCK_MONOTONIC, &t);
        return t;
}

static void addr_text(const struct sockaddr_storage *sa, char *buf, size_t size, long *port) {
        /* Copied out of the storage, not read through a cast of it. */
        if (sa->ss_family == AF_INET6) {
                struct sockaddr_in6 s6;
                memcpy(&s6, sa, sizeof s6);
                (void) inet_ntop(AF_INET6, &s6.sin6_addr, buf, size);
                *port = ntohs(s6.sin6_port);
        } else {
                struct sockaddr_in s4;
                memcpy(&s4, sa, sizeof s4);
                (void) inet_ntop(AF_INET, &s4.sin_addr, buf, size);
                *port = ntohs(s4.sin_port);
        }
}

/* Ends the transfer with code (the connection is kept only after a whole answer that allows
 * it) and calls back. */
static void own_finish(ProbeHttp *h, CURLcode code, int os_errno) {
        ProbeHttpResult res = h->result;
        HttpResponse *resp = &h->response;

        res.code = code;
        res.os_errno = os_errno;
        res.status = resp->status;
        res.headers_done = resp->headers_done;
        res.error = h->error;
        /* curl reports the Location of any 3xx answer as its redirect URL. */
        if (resp->headers_done && resp->status >= 300 && resp->status < 400 && resp->location) {
                h->redirect_url = mfree(h->redirect_url);
                if (http_location_resolve(h->url, resp->location, &h->redirect_url) >= 0)
                        res.redirect_url = h->redirect_url;
        }
        if (code == CURLE_OK && resp->keep_alive && resp->left_over == 0)
                /* The IO source stays, waiting for input: while the connection is idle that can
                 * only be the server closing it (or sending what nobody asked for), and on_io
                 * drops it then. Keeping it saves two epoll_ctl() calls per probe. */
                h->keep = true;
        else
                close_connection(h);
        own_stop(h);
        h->done(h, &res, h->userdata);
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        ProbeHttp *h = userdata;
        uint64_t ms = (now_usec(h) - h->started_usec) / 1000;

        if (h->pending != CURLE_OK) {
                own_finish(h, h->pending, (int) h->result.os_errno);
                return 0;
        }
        if (h->connecting)
                snprintf(h->error, sizeof h->error, "Connection timed out after %llu milliseconds",
                         (unsigned long long) ms);
        else if (http_response_body_left(&h->response) >= 0)
                /* curl counts the body's bytes, out of its length when known. */
                snprintf(h->error, sizeof h->error,
                         "Operation timed out after %llu milliseconds with %zu out of %llu bytes received",
                         (unsigned long long) ms, h->response.body_received,
                         (unsigned long long) (h->response.body_received +
                                               (uint64_t) http_response_body_left(&h->response)));
        else
                snprintf(h->error, sizeof h->error,
                         "Operation timed out after %llu milliseconds with %zu bytes received",
                         (unsigned long long) ms, h->response.body_received);
        own_finish(h, CURLE_OPERATION_TIMEDOUT, 0);
        return 0;
}

static int own_connect(ProbeHttp *h);

/* A kept-alive connection failed before any byte of the answer: the server closed it while
 * idle. Once per transfer, like curl, the request goes again on a new connection. */
static bool retry_fresh(ProbeHttp *h) {
        if (!h->reused || h->retried || h->response.received > 0)
                return false;
        h->retried = true;
        h->reused = false;
        close_connection(h);
        h->addr = 0;
        h->sent = 0;
        http_response_done(&h->response);
        http_response_init(&h->response, h->head, h->body_fn, h->userdata);
        int r = own_connect(h);
        if (r < 0) {
                own_finish(h, CURLE_OUT_OF_MEMORY, 0);
                return true;
        }
        return true;
}

static void own_connected(ProbeHttp *h) {
        struct sockaddr_storage local = {};
        socklen_t len = sizeof local;

        h->connecting = false;
        h->result.connect_us = (int64_t) (now_usec(h) - h->started_usec) ?: 1;
        h->result.opened_socket = true;
        memcpy(&h->peer, &h->addrs[h->addr], h->addr_lens[h->addr]);
        h->peer_len = h->addr_lens[h->addr];
        if (getsockname(h->fd, (struct sockaddr *) &local, &len) >= 0)
                addr_text(&local, h->result.local_ip, sizeof h->result.local_ip,
                          &h->result.local_port);
        (void) sd_event_source_set_io_events(h->io, EPOLLIN | EPOLLOUT);
}

static void on_connect_failed(ProbeHttp *h, int error) {
        if (h->addr == 0)
                h->first_error = error;
        if (h->addr + 1 < h->n_addrs) {
                /* localhost: ::1 after 127.0.0.1. */
                close_connection(h);
                h->addr++;
                if (own_connect(h) < 0)
                        own_finish(h, CURLE_OUT_OF_MEMORY, 0);
                return;
        }
        if (h->addr > 0) {
                /* Both failed: Go's dialer reports its primary's error, the first address's
                 * (kubelet: "dial tcp 127.0.0.1:8080: connect: connection refused"). */
                addr_text(&h->addrs[0], h->result.primary_ip, sizeof h->result.primary_ip,
                          &h->result.primary_port);
                error = h->first_error;
        }
        snprintf(h->error, sizeof h->error, "Failed to connect to %s port %ld after %llu ms: %s",
                 h->result.primary_ip, h->result.primary_port,
                 (unsigned long long) ((now_usec(h) - h->started_usec) / 1000),
                 http_curl_strerror(CURLE_COULDNT_CONNECT));
        close_connection(h);
        own_finish(h, CURLE_COULDNT_CONNECT, error);
}

static void do_send(ProbeHttp *h) {
        while (h->sent < h->request_len) {
                ssize_t n = send(h->fd, h->request + h->sent, h->request_len - h->sent,
                                 MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n < 0) {
                        if (errno == EAGAIN || errno == EINTR) {
                                (void) sd_event_source_set_io_events(h->io, EPOLLIN | EPOLLOUT);
                                return;
                        }
                        int e = errno;
                        if (retry_fresh(h))
                                return;
                        snprintf(h->error, sizeof h->error, "Send failure: %s", strerror(e));
                        own_finish(h, CURLE_SEND_ERROR, e);
                        return;
                }
                h->sent += (size_t) n;
        }
        (void) sd_event_source_set_io_events(h->io, EPOLLIN);
}

static void do_read(ProbeHttp *h) {
        char buf[READ_CHUNK];

        for (;;) {
                ssize_t n = recv(h->fd, buf, sizeof buf, MSG_DONTWAIT);
                int r;

                if (n < 0) {
                        if (errno == EAGAIN || errno == EINTR)
                                return;
                        int e = errno;
                        if (retry_fresh(h))
                                return;
                        snprintf(h->error, sizeof h->error, "Recv failure: %s", strerror(e));
                        own_finish(h, CURLE_RECV_ERROR, e);
                        return;
                }
                if (n == 0) {
                        if (retry_fresh(h))
                                return;
                        r = http_response_eof(&h->response);
                } else
                        r = http_response_feed(&h->response, buf, (size_t) n);
                if (r == 0)
                        continue;
                if (r > 0) {
                        own_finish(h, CURLE_OK, 0);
                        return;
                }
                CURLcode code = http_response_curl_code(&h->response, r);
                if (r == -E2BIG)
                        snprintf(h->error, sizeof h->error, "Too large response headers");
                else if (code == CURLE_GOT_NOTHING)
                        snprintf(h->error, sizeof h->error, "Empty reply from server");
                else if (code == CURLE_PARTIAL_FILE && http_response_body_left(&h->response) >= 0)
                        snprintf(h->error, sizeof h->error, "transfer closed with %lld bytes remaining to read",
                                 (long long) http_response_body_left(&h->response));
                else if (code == CURLE_PARTIAL_FILE)
                        snprintf(h->error, sizeof h->error, "transfer closed with outstanding read data remaining");
                else if (code == CURLE_UNSUPPORTED_PROTOCOL)
                        snprintf(h->error, sizeof h->error, "Received HTTP/0.9 when not allowed");
                else if (code == CURLE_WEIRD_SERVER_REPLY)
                        snprintf(h->error, sizeof h->error, "Unsupported HTTP/1 subversion in response");
                else if (code == CURLE_WRITE_ERROR)
                        snprintf(h->error, sizeof h->error, "Failure writing output to destination");
                else if (code == CURLE_RECV_ERROR)
                        snprintf(h->error, sizeof h->error, "Connection died: server closed the connection");
                else if (code == CURLE_BAD_CONTENT_ENCODING)
                        snprintf(h->error, sizeof h->error, "%s", h->response.te_error);
                own_finish(h, code, 0);
                return;
        }
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        ProbeHttp *h = userdata;

        if (!h->running) {
                /* An idle kept connection: closed by the server, or bytes nobody asked for. */
                close_connection(h);
                return 0;
        }
        if (h->connecting) {
                int error = 0;
                socklen_t len = sizeof error;
                if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len) < 0)
                        error = errno;
                if (error != 0) {
                        on_connect_failed(h, error);
                        return 0;
                }
                own_connected(h);
        }
        if ((revents & (EPOLLOUT | EPOLLERR | EPOLLHUP)) && h->sent < h->request_len) {
                do_send(h);
                /* Finished, or the send failed on a kept connection and the request went again
                 * on a new one: this event was about the old socket. */
                if (!h->running || h->fd != fd)
                        return 0;
        }
        if (revents & (EPOLLIN | EPOLLERR | EPOLLHUP))
                do_read(h);
        return 0;
}

/* Connects to addrs[addr]; failures are reported through the loop. 0, or -ENOMEM and the
 * like when nothing could be set up. */
static int own_connect(ProbeHttp *h) {
        const struct sockaddr_storage *sa = &h->addrs[h->addr];
        int r;

        addr_text(sa, h->result.primary_ip, sizeof h->result.primary_ip, &h->result.primary_port);
        h->result.local_ip[0] = 0;
        h->result.local_port = 0;
        h->fd = socket(sa->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
        if (h->fd < 0) {
                h->pending = CURLE_COULDNT_CONNECT;
                h->result.os_errno = errno;
                return okg_timer_arm(h->event, &h->timer, 0, 1, on_timer, h, "probe-http");
        }
        /* As curl's CURLOPT_SOCKOPTFUNCTION: a socket was made for this transfer. */
        h->result.opened_socket = true;
        (void) setsockopt(h->fd, IPPROTO_TCP, TCP_NODELAY, &(int) { 1 }, sizeof(int));
        h->connecting = true;
        r = sd_event_add_io(h->event, &h->io, h->fd, EPOLLOUT, on_io, h);
        if (r < 0)
                return r;
        if (connect(h->fd, (const struct sockaddr *) sa, h->addr_lens[h->addr]) < 0 &&
            errno != EINPROGRESS) {
                /* Refused at once (loopback): said from the loop, as any other failure. */
                int e = errno;
                if (h->addr + 1 < h->n_addrs) {
                        close_connection(h);
                        h->addr++;
                        return own_connect(h);
                }
                (void) sd_event_source_set_enabled(h->io, SD_EVENT_OFF);
                h->pending = CURLE_COULDNT_CONNECT;
                h->result.os_errno = e;
                snprintf(h->error, sizeof h->error, "Failed to connect to %s port %ld after 0 ms: %s",
                         h->result.primary_ip, h->result.primary_port,
                         http_curl_strerror(CURLE_COULDNT_CONNECT));
                return okg_timer_arm(h->event, &h->timer, 0, 1, on_timer, h, "probe-http");
        }
        return 0;
}

static void set_addr(ProbeHttp *h, int family, const char *ip, uint16_t port) {
        struct sockaddr_storage *sa = &h->addrs[h->n_addrs];

        *sa = (struct sockaddr_storage) {};
        if (family == AF_INET6) {
                struct sockaddr_in6 *s6 = (struct sockaddr_in6 *) sa;
                s6->sin6_family = AF_INET6;
                s6->sin6_port = htons(port);
                (void) inet_pton(AF_INET6, ip, &s6->sin6_addr);
                h->addr_lens[h->n_addrs++] = sizeof *s6;
        } else {
                struct sockaddr_in *s4 = (struct sockaddr_in *) sa;
                s4->sin_family = AF_INET;
                s4->sin_port = htons(port);
                (void) inet_pton(AF_INET, ip, &s4->sin_addr);
                h->addr_lens[h->n_addrs++] = sizeof *s4;
        }
}

/* Whether the kept connection still looks usable: nothing to read on it (a close or stray
 * bytes mean the server is done with it). */
static bool kept_alive(ProbeHttp *h) {
        char c;

        if (h->fd < 0 || !h->keep)
                return false;
        ssize_t n = recv(h->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
        return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

static int own_start(ProbeHttp *h, const HttpUrl *u, const ProbeHttpRequest *req) {
        int r;

        r = http_request_text(req->method, u, req->headers, req->user_agent, req->body,
                              &h->request, &h->request_len);
        if (r < 0)
                return r;
        if (free_and_strdup(&h->url, req->url) < 0) {
                h->request = mfree(h->request);
                return -ENOMEM;
        }
        h->sent = 0;
        h->head = streq(req->method, "HEAD");
        http_response_init(&h->response, h->head, h->body_fn, h->userdata);
        h->result = (ProbeHttpResult) {};
        h->error[0] = 0;
        h->pending = CURLE_OK;
        h->retried = h->reused = h->connecting = false;
        h->started_usec = now_usec(h);
        h->n_addrs = h->addr = 0;
        if (!u->ipv6 && strcasecmp(u->host, "localhost") == 0) {
                set_addr(h, AF_INET, "127.0.0.1", u->port);
                set_addr(h, AF_INET6, "::1", u->port);
        } else
                set_addr(h, u->ipv6 ? AF_INET6 : AF_INET, u->host, u->port);

        r = okg_timer_arm_at(h->event, &h->timer, h->started_usec + req->timeout_usec,
                             USEC_PER_MSEC, on_timer, h, "probe-http");
        if (r < 0)
                goto fail;
        h->running = true;

        for (unsigned i = 0; i < h->n_addrs; i++)
                if (kept_alive(h) && h->peer_len == h->addr_lens[i] &&
                    memcmp(&h->peer, &h->addrs[i], h->peer_len) == 0) {
                        struct sockaddr_storage local = {};
                        socklen_t len = sizeof local;

                        h->addr = i;
                        h->reused = true;
                        addr_text(&h->peer, h->result.primary_ip, sizeof h->result.primary_ip,
                                  &h->result.primary_port);
                        if (getsockname(h->fd, (struct sockaddr *) &local, &len) >= 0)
                                addr_text(&local, h->result.local_ip, sizeof h->result.local_ip,
                                          &h->result.local_port);
                        /* The request goes out at once: a kept connection's send buffer is
                         * empty. Whatever send() says otherwise is left to on_io, from the
                         * loop, so the caller never gets its callback from inside this call. */
                        ssize_t n = send(h->fd, h->request, h->request_len,
                                         MSG_NOSIGNAL | MSG_DONTWAIT);
                        if (n > 0)
                                h->sent = (size_t) n;
                        uint32_t events = h->sent < h->request_len ? EPOLLIN | EPOLLOUT : EPOLLIN;
                        if (h->io)
                                r = sd_event_source_set_io_events(h->io, events);
                        else
                                r = sd_event_add_io(h->event, &h->io, h->fd, events, on_io, h);
                        if (r < 0)
                                goto fail;
                        return 0;
                }
        close_connection(h);
        r = own_connect(h);
        if (r < 0)
                goto fail;
        return 0;
fail:
        close_connection(h);
        own_stop(h);
        return r;
}

bool probe_http_direct(const char *url) {
        HttpUrl u;

        return http_url_parse(url, &u) >= 0 && http_url_direct(&u);
}

int probe_http_start(ProbeHttp *h, const ProbeHttpRequest *req) {
        HttpUrl u;

        if (http_url_parse(req->url, &u) >= 0 && http_url_direct(&u))
                return own_start(h, &u, req);
        return curl_start(h, req);
}
