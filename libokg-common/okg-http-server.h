/* libmicrohttpd driven by sd-event: MHD runs in external-epoll mode; its epoll fd is one IO
 * source on the daemon's loop and MHD_get_timeout() (relative) arms one timer. */
#pragma once

#include <microhttpd.h>
#include <stdbool.h>
#include <stdint.h>
#include <json-c/json.h>
#include <systemd/sd-event.h>

/* okg-sidecard loads libmicrohttpd with dlopen() (okg-mhd.c, which only it compiles in):
 * MHD_start_daemon() loads it there. */
#define OKG_LIBMICROHTTPD_SONAME "libmicrohttpd.so.12"
/* Loads it now: 0, or -EOPNOTSUPP (logged once) when it cannot be loaded. */
int okg_mhd_load(void);
/* Whether this process has loaded it (for tests and the footprint docs). */
bool okg_mhd_loaded(void);

typedef struct OkgHttpServer OkgHttpServer;

typedef struct OkgHttpServerOptions {
        unsigned connection_limit;        /* default 64 */
        unsigned per_ip_limit;            /* default 16 */
        /* default 10: a connection idle that long is closed (MHD), and one whose request head
         * (request line and headers) is not complete that long after the connection or the
         * previous request is shut down (our deadline: MHD's restarts with each byte). */
        unsigned connection_timeout_sec;
        size_t memory_limit;              /* per connection, default 32 KiB */
        /* Called once per request when it ends (response sent, client gone, or server freed),
         * with the handler's userdata as cls: the place to free what the handler keeps in
         * *con_cls. NULL: none. */
        MHD_RequestCompletedCallback request_completed;
} OkgHttpServerOptions;

/* address: numeric IPv4/IPv6 ("0.0.0.0", "127.0.0.1", "::"); port 0 picks a free port. */
int okg_http_server_new(sd_event *e, const char *address, uint16_t port,
                        const OkgHttpServerOptions *opts, MHD_AccessHandlerCallback handler,
                        void *userdata, OkgHttpServer **ret);
/* The two halves of okg_http_server_new(), for a caller that must know early that its port is
 * free but can start serving later: okg_http_listen() binds and listens (numeric address as
 * above; a negative errno such as -EADDRINUSE), without loading libmicrohttpd;
 * okg_http_server_new_listening() serves on that socket and takes it over, also on failure. */
int okg_http_listen(const char *address, uint16_t port, int *ret_fd);
int okg_http_server_new_listening(sd_event *e, int listen_fd, const OkgHttpServerOptions *opts,
                                  MHD_AccessHandlerCallback handler, void *userdata,
                                  OkgHttpServer **ret);
OkgHttpServer *okg_http_server_free(OkgHttpServer *s);
static inline void okg_http_server_freep(OkgHttpServer **s) {
        okg_http_server_free(*s);
}
uint16_t okg_http_server_port(const OkgHttpServer *s);
/* Call after MHD_resume_connection() so the timer is re-armed. */
void okg_http_server_kick(OkgHttpServer *s);

/* Queue a response; return value is for the access handler. */
enum MHD_Result okg_http_respond(struct MHD_Connection *c, unsigned status,
                                 const char *content_type, const char *body, size_t len);
enum MHD_Result okg_http_respond_json(struct MHD_Connection *c, unsigned status,
                                      json_object *body);
/* {"error": "<message>"} with the status. */
enum MHD_Result okg_http_respond_error(struct MHD_Connection *c, unsigned status,
                                       const char *message);
