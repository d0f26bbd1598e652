/* libmicrohttpd in external-epoll mode on an sd-event loop: MHD's epoll fd is one IO source and
 * one relative timer follows MHD_get_timeout(); see okg-http-server.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "log.h"
#include "macro.h"
#include "okg-event.h"
#include "okg-http-server.h"
#include "okg-json.h"
#include "okg-list.h"
#include "okg-util.h"

#define DEFAULT_CONNECTION_LIMIT 64U
#define DEFAULT_PER_IP_LIMIT 16U
#define DEFAULT_CONNECTION_TIMEOUT_SEC 10U
#define DEFAULT_MEMORY_LIMIT ((size_t) 32U * 1024U)
#define MAX_TIMEOUT_MSEC (24ULL * 3600ULL * 1000ULL)

/* One per live MHD connection, so that free() can find and resume suspended ones (MHD forbids
 * MHD_stop_daemon() while a connection is still suspended), and so that a request head that
 * does not arrive in time is cut: MHD's own timeout is an idle one, which a client sending one
 * byte at a time keeps resetting. */
typedef struct TrackedConnection {
        struct MHD_Connection *connection;
        uint64_t head_deadline;         /* CLOCK_MONOTONIC µs; 0: the head is in (handler called) */
        bool cut;                       /* shut down for its late head; MHD closes it */
        LIST_FIELDS(struct TrackedConnection, connections);
} TrackedConnection;

struct OkgHttpServer {
        sd_event *event;
        struct MHD_Daemon *daemon;
        sd_event_source *io_source;
        sd_event_source *timer_source;
        TrackedConnection *connections;
        uint16_t port;
        uint64_t head_timeout_usec;
        MHD_AccessHandlerCallback handler;
        void *handler_userdata;
        MHD_RequestCompletedCallback completed;
};

DEFINE_TRIVIAL_CLEANUP_FUNC(struct MHD_Response *, MHD_destroy_response);

_printf_(2, 0) static void mhd_logger(void *cls, const char *fmt, va_list ap) {
        char buf[512];
        size_t n;

        if (log_get_max_level() < LOG_DEBUG)
                return;
        vsnprintf(buf, sizeof buf, fmt, ap);
        n = strlen(buf);
        while (n > 0 && buf[n - 1] == '\n')
                buf[--n] = 0;
        log_debug("libmicrohttpd: %s", buf);
}

static void notify_connection(void *cls, struct MHD_Connection *connection, void **socket_context,
                              enum MHD_ConnectionNotificationCode code) {
        OkgHttpServer *s = cls;
        TrackedConnection *t;

        if (code == MHD_CONNECTION_NOTIFY_STARTED) {
                t = calloc(1, sizeof *t);
                if (!t) {
                        /* Not fatal for the connection; it is merely not resumed at free(). */
                        *socket_context = NULL;
                        return;
                }
                t->connection = connection;
                t->head_deadline = okg_now_usec() + s->head_timeout_usec;
                LIST_PREPEND(connections, s->connections, t);
                *socket_context = t;
                return;
        }

        t = *socket_context;
        if (!t)
                return;
        LIST_REMOVE(connections, s->connections, t);
        free(t);
        *socket_context = NULL;
}

static TrackedConnection *tracked(struct MHD_Connection *c) {
        const union MHD_ConnectionInfo *info =
                MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

        return info ? info->socket_context : NULL;
}

/* MHD calls the access handler once a request's head is complete: its deadline is met. */
static enum MHD_Result access_handler(void *cls, struct MHD_Connection *c, const char *url,
                                      const char *method, const char *version,
                                      const char *upload_data, size_t *upload_data_size,
                                      void **con_cls) {
        OkgHttpServer *s = cls;
        TrackedConnection *t = tracked(c);

        if (t)
                t->head_deadline = 0;
        return s->handler(s->handler_userdata, c, url, method, version, upload_data,
                          upload_data_size, con_cls);
}

/* A request ended: the next one on a kept connection has its own deadline for its head. */
static void request_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                              enum MHD_RequestTerminationCode toe) {
        OkgHttpServer *s = cls;
        TrackedConnection *t = tracked(c);

        if (t)
                t->head_deadline = okg_now_usec() + s->head_timeout_usec;
        if (s->completed)
                s->completed(s->handler_userdata, c, con_cls, toe);
}

/* Shuts down the connections whose head is late (MHD sees the end and closes them on its next
 * run); returns the earliest deadline still ahead, 0 when none. */
static uint64_t cut_late_heads(OkgHttpServer *s) {
        uint64_t now = okg_now_usec(), next = 0;
        TrackedConnection *t;

        LIST_FOREACH(connections, t, s->connections) {
                if (t->head_deadline == 0 || t->cut)
                        continue;
                if (t->head_deadline > now) {
                        if (next == 0 || t->head_deadline < next)
                                next = t->head_deadline;
                        continue;
                }
                const union MHD_ConnectionInfo *info =
                        MHD_get_connection_info(t->connection, MHD_CONNECTION_INFO_CONNECTION_FD);
                if (!info)
                        continue;
                log_info("Closing a connection that did not send its request head within %" PRIu64
                         " s.", s->head_timeout_usec / USEC_PER_SEC);
                (void) shutdown(info->connect_fd, SHUT_RDWR);
                t->cut = true;
        }
        return next;
}

/* MHD_get_timeout() is relative (milliseconds from now); MHD_NO means nothing is pending. The
 * timer fires at that or at the earliest request-head deadline, whichever comes first. */
static int server_arm_timer(OkgHttpServer *s, uint64_t head_deadline) {
        MHD_UNSIGNED_LONG_LONG timeout_ms;
        uint64_t usec = UINT64_MAX, now;

        if (MHD_get_timeout(s->daemon, &timeout_ms) == MHD_YES) {
                /* MHD's timeouts are at most the connection timeout; the cap only guards the
                 * multiplication and sd-event's overflow check. */
                if (timeout_ms > MAX_TIMEOUT_MSEC)
                        timeout_ms = MAX_TIMEOUT_MSEC;
                usec = (uint64_t) timeout_ms * USEC_PER_MSEC;
        }
        if (head_deadline > 0) {
                now = okg_now_usec();
                uint64_t left = head_deadline > now ? head_deadline - now : 0;
                if (left < usec)
                        usec = left;
        }
        if (usec == UINT64_MAX)
                return okg_timer_disarm(s->timer_source);
        return okg_event_source_rearm(s->timer_source, usec);
}

static int server_run(OkgHttpServer *s) {
        int r;

        if (MHD_run(s->daemon) != MHD_YES)
                log_debug("MHD_run() failed, continuing.");

        /* Returning an error would make sd-event disable this source and silence the server
         * for good; a missed timer only delays connection timeouts until the next IO. */
        r = server_arm_timer(s, cut_late_heads(s));
        if (r < 0)
                log_debug_errno(r, "Failed to arm HTTP server timer, ignoring: %m");
        return 0;
}

static int on_io(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        return server_run(userdata);
}

static int on_timer(sd_event_source *source, uint64_t usec, void *userdata) {
        return server_run(userdata);
}

void okg_http_server_kick(OkgHttpServer *s) {
        if (!s)
                return;
        /* Fire on the next loop iteration rather than running MHD here: kick may be called
         * from within an access handler, and MHD_run() is not reentrant. */
        if (okg_event_source_rearm(s->timer_source, 0) < 0)
                log_debug("Failed to schedule HTTP server run.");
}

uint16_t okg_http_server_port(const OkgHttpServer *s) {
        return s ? s->port : 0;
}

OkgHttpServer *okg_http_server_free(OkgHttpServer *s) {
        if (!s)
                return NULL;

        /* Before MHD closes its epoll fd, which is still registered with the loop. */
        s->io_source = sd_event_source_disable_unref(s->io_source);
        s->timer_source = sd_event_source_disable_unref(s->timer_source);

        if (s->daemon) {
                /* Resumed connections are closed by MHD_stop_daemon() without calling the
                 * access handler again. */
                TrackedConnection *t;
                LIST_FOREACH(connections, t, s->connections) {
                        const union MHD_ConnectionInfo *info = MHD_get_connection_info(
                                        t->connection, MHD_CONNECTION_INFO_CONNECTION_SUSPENDED);
                        if (info && info->suspended == MHD_YES)
                                MHD_resume_connection(t->connection);
                }
                MHD_stop_daemon(s->daemon);
        }

        /* MHD reports closing for every connection it stops; anything left is defensive. */
        for (TrackedConnection *t; (t = LIST_POP(connections, s->connections));)
                free(t);

        sd_event_unref(s->event);
        free(s);
        return NULL;
}

typedef union SockAddrUnion {
        struct sockaddr sa;
        struct sockaddr_in in;
        struct sockaddr_in6 in6;
} SockAddrUnion;

static int parse_address(const char *address, uint16_t port, SockAddrUnion *ret,
                         socklen_t *ret_len) {
        SockAddrUnion sa = {};

        if (!address)
                return -EINVAL;

        if (inet_pton(AF_INET, address, &sa.in.sin_addr) == 1) {
                sa.in.sin_family = AF_INET;
                sa.in.sin_port = htons(port);
                *ret = sa;
                *ret_len = sizeof sa.in;
                return 0;
        }
        if (inet_pton(AF_INET6, address, &sa.in6.sin6_addr) == 1) {
                sa.in6.sin6_family = AF_INET6;
                sa.in6.sin6_port = htons(port);
                *ret = sa;
                *ret_len = sizeof sa.in6;
                return 0;
        }
        return -EINVAL;
}

int okg_http_listen(const char *address, uint16_t port, int *ret_fd) {
        _cleanup_(closep) int fd = -EBADF;
        SockAddrUnion sa;
        socklen_t len;
        int one = 1, r;

        r = parse_address(address, port, &sa, &len);
        if (r < 0)
                return r;
        fd = socket(sa.sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        (void) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (sa.sa.sa_family == AF_INET6) {
                /* "::" means every address, IPv4 included, as it does for most daemons. */
                int v6only = IN6_IS_ADDR_UNSPECIFIED(&sa.in6.sin6_addr) ? 0 : 1;
                (void) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only);
        }
        if (bind(fd, &sa.sa, len) < 0 || listen(fd, SOMAXCONN) < 0)
                return -errno;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

static uint16_t socket_port(int fd, int *ret_family) {
        SockAddrUnion sa = {};
        socklen_t len = sizeof sa;

        if (getsockname(fd, &sa.sa, &len) < 0)
                return 0;
        *ret_family = sa.sa.sa_family;
        if (sa.sa.sa_family == AF_INET)
                return ntohs(sa.in.sin_port);
        if (sa.sa.sa_family == AF_INET6)
                return ntohs(sa.in6.sin6_port);
        return 0;
}

int okg_http_server_new_listening(sd_event *e, int listen_fd, const OkgHttpServerOptions *opts,
                                  MHD_AccessHandlerCallback handler, void *userdata,
                                  OkgHttpServer **ret) {
        _cleanup_(okg_http_server_freep) OkgHttpServer *s = NULL;
        _cleanup_(closep) int lfd = listen_fd;
        const union MHD_DaemonInfo *info;
        unsigned connection_limit = DEFAULT_CONNECTION_LIMIT, per_ip_limit = DEFAULT_PER_IP_LIMIT,
                 timeout_sec = DEFAULT_CONNECTION_TIMEOUT_SEC;
        size_t memory_limit = DEFAULT_MEMORY_LIMIT;
        unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
        int family = AF_UNSPEC, fd, r;
        uint16_t port;

        if (!e || !handler || !ret || lfd < 0)
                return -EINVAL;
        port = socket_port(lfd, &family);
        if (port == 0)
                return -EINVAL;
        if (family == AF_INET6)
                flags |= MHD_USE_IPv6;

        /* Zero means "default" so callers can set only the fields they care about. */
        if (opts) {
                if (opts->connection_limit > 0)
                        connection_limit = opts->connection_limit;
                if (opts->per_ip_limit > 0)
                        per_ip_limit = opts->per_ip_limit;
                if (opts->connection_timeout_sec > 0)
                        timeout_sec = opts->connection_timeout_sec;
                if (opts->memory_limit > 0)
                        memory_limit = opts->memory_limit;
        }

        s = calloc(1, sizeof *s);
        if (!s)
                return -ENOMEM;
        s->event = sd_event_ref(e);
        s->head_timeout_usec = (uint64_t) timeout_sec * USEC_PER_SEC;
        s->handler = handler;
        s->handler_userdata = userdata;
        s->completed = opts ? opts->request_completed : NULL;

        errno = 0;
        s->daemon = MHD_start_daemon(
                        flags, port, NULL, NULL, access_handler, s,
                        /* First, so that MHD's messages about the other options reach it. */
                        MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, NULL,
                        MHD_OPTION_LISTEN_SOCKET, (MHD_socket) lfd,
                        MHD_OPTION_CONNECTION_LIMIT, (unsigned int) connection_limit,
                        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int) per_ip_limit,
                        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int) timeout_sec,
                        MHD_OPTION_CONNECTION_MEMORY_LIMIT, memory_limit,
                        MHD_OPTION_NOTIFY_CONNECTION, notify_connection, s,
                        MHD_OPTION_NOTIFY_COMPLETED, request_completed, s,
                        MHD_OPTION_END);
        if (!s->daemon) {
                r = errno > 0 ? -errno : -EIO;
                /* Whether MHD closed the socket on its way out depends on where it failed;
                 * nothing else opens files meanwhile, so a valid descriptor is still ours. */
                if (fcntl(lfd, F_GETFD) < 0)
                        lfd = -EBADF; // NOLINT(clang-analyzer-deadcode.DeadStores): closep reads it
                return log_debug_errno(r, "Failed to start the HTTP server on port %u: %m",
                                       (unsigned) port);
        }
        TAKE_FD(lfd); /* MHD closes it in MHD_stop_daemon() */
        s->port = port;

        info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_EPOLL_FD);
        if (!info)
                return -EIO;
        fd = info->epoll_fd;

        r = sd_event_add_io(e, &s->io_source, fd, EPOLLIN, on_io, s);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(s->io_source, "mhd-io");

        r = okg_timer_arm(e, &s->timer_source, 0, USEC_PER_MSEC, on_timer, s, "mhd-timer");
        if (r < 0)
                return r;

        r = server_arm_timer(s, 0);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(s);
        return 0;
}

int okg_http_server_new(sd_event *e, const char *address, uint16_t port,
                        const OkgHttpServerOptions *opts, MHD_AccessHandlerCallback handler,
                        void *userdata, OkgHttpServer **ret) {
        int fd = -EBADF, r;

        if (!e || !handler || !ret)
                return -EINVAL;
        r = okg_http_listen(address, port, &fd);
        if (r < 0)
                return log_debug_errno(r, "Failed to bind HTTP server to %s:%u: %m",
                                       strempty(address), (unsigned) port);
        return okg_http_server_new_listening(e, fd, opts, handler, userdata, ret);
}

enum MHD_Result okg_http_respond(struct MHD_Connection *c, unsigned status,
                                 const char *content_type, const char *body, size_t len) {
        _cleanup_(MHD_destroy_responsep) struct MHD_Response *response = NULL;

        if (!body && len > 0)
                return MHD_NO;

        response = MHD_create_response_from_buffer(len, (void *) (body ?: ""),
                                                   MHD_RESPMEM_MUST_COPY);
        if (!response)
                return MHD_NO;

        if (content_type &&
            MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, content_type) !=
                            MHD_YES)
                return MHD_NO;
        if (MHD_add_response_header(response, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store") !=
            MHD_YES)
                return MHD_NO;

        return MHD_queue_response(c, status, response);
}

enum MHD_Result okg_http_respond_json(struct MHD_Connection *c, unsigned status,
                                      json_object *body) {
        _cleanup_(freep) char *buf = NULL;
        const char *s;
        size_t len;

        /* No "\/" escaping: paths are common in our bodies and "/" is valid JSON as is. */
        s = json_object_to_json_string_length(
                        body, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
        if (!s)
                return MHD_NO;

        buf = malloc(len + 2);
        if (!buf)
                return MHD_NO;
        memcpy(buf, s, len);
        buf[len] = '\n';
        buf[len + 1] = 0;

        return okg_http_respond(c, status, "application/json", buf, len + 1);
}

enum MHD_Result okg_http_respond_error(struct MHD_Connection *c, unsigned status,
                                       const char *message) {
        _cleanup_(json_object_putp) json_object *o = NULL;
        json_object *m;

        o = json_object_new_object();
        if (!o)
                return MHD_NO;
        m = json_object_new_string(strempty(message));
        if (!m)
                return MHD_NO;
        if (json_object_object_add(o, "error", m) < 0) {
                json_object_put(m);
                return MHD_NO;
        }

        return okg_http_respond_json(c, status, o);
}
