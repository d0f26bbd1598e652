/* libmicrohttpd loaded with dlopen() (okg-dlopen.h), like libcurl in okg-curl.c, for
 * okg-sidecard only: it compiles this file in (libokg-common/meson.build), so the linker drops
 * the library from its dependencies, and these definitions of the part of the API we call
 * forward to the library once loaded. With Debian's build it brings GnuTLS and ten more
 * libraries (p11-kit, nettle, hogweed, gmp, tasn1, idn2, unistring, ffi...), whose mapping and
 * relocation cost a process about 12 ms of CPU at exec on a small VM. okg-sidecard spawns
 * dbus-daemon first and loads it while dbus-daemon starts (okg-sidecard/sidecard-manager.c),
 * instead of before its own main() and so before anything else of the suite can start. The
 * other binaries link it (okg-hotupdated serves before its READY=1: nothing to overlap).
 *
 * MHD_start_daemon() and MHD_create_response_from_buffer() load it and return NULL, after one
 * logged error, when it is not installed; every other entry point takes a daemon, connection or
 * response, which only exists once it is loaded. */
#include <errno.h>
#include <stdarg.h>

#include "macro.h"
#include "okg-dlopen.h"
#include "okg-http-server.h"

static void *mhd_dl = NULL;
static int mhd_dl_error = 0;

static __typeof__(MHD_start_daemon_va) *sym_MHD_start_daemon_va;
static __typeof__(MHD_stop_daemon) *sym_MHD_stop_daemon;
static __typeof__(MHD_run) *sym_MHD_run;
static __typeof__(MHD_get_timeout) *sym_MHD_get_timeout;
static __typeof__(MHD_get_daemon_info) *sym_MHD_get_daemon_info;
static __typeof__(MHD_get_connection_info) *sym_MHD_get_connection_info;
static __typeof__(MHD_get_connection_values_n) *sym_MHD_get_connection_values_n;
static __typeof__(MHD_lookup_connection_value) *sym_MHD_lookup_connection_value;
static __typeof__(MHD_create_response_from_buffer) *sym_MHD_create_response_from_buffer;
static __typeof__(MHD_add_response_header) *sym_MHD_add_response_header;
static __typeof__(MHD_destroy_response) *sym_MHD_destroy_response;
static __typeof__(MHD_queue_response) *sym_MHD_queue_response;
static __typeof__(MHD_suspend_connection) *sym_MHD_suspend_connection;
static __typeof__(MHD_resume_connection) *sym_MHD_resume_connection;

int okg_mhd_load(void) {
        static const OkgDlSym syms[] = {
                OKG_DL_SYM(sym_MHD_start_daemon_va, MHD_start_daemon_va),
                OKG_DL_SYM(sym_MHD_stop_daemon, MHD_stop_daemon),
                OKG_DL_SYM(sym_MHD_run, MHD_run),
                OKG_DL_SYM(sym_MHD_get_timeout, MHD_get_timeout),
                OKG_DL_SYM(sym_MHD_get_daemon_info, MHD_get_daemon_info),
                OKG_DL_SYM(sym_MHD_get_connection_info, MHD_get_connection_info),
                OKG_DL_SYM(sym_MHD_get_connection_values_n, MHD_get_connection_values_n),
                OKG_DL_SYM(sym_MHD_lookup_connection_value, MHD_lookup_connection_value),
                OKG_DL_SYM(sym_MHD_create_response_from_buffer, MHD_create_response_from_buffer),
                OKG_DL_SYM(sym_MHD_add_response_header, MHD_add_response_header),
                OKG_DL_SYM(sym_MHD_destroy_response, MHD_destroy_response),
                OKG_DL_SYM(sym_MHD_queue_response, MHD_queue_response),
                OKG_DL_SYM(sym_MHD_suspend_connection, MHD_suspend_connection),
                OKG_DL_SYM(sym_MHD_resume_connection, MHD_resume_connection),
        };

        return okg_dlopen_many(&mhd_dl, &mhd_dl_error, OKG_LIBMICROHTTPD_SONAME,
                               "serving HTTP (Debian package libmicrohttpd12)", syms,
                               ELEMENTSOF(syms));
}

bool okg_mhd_loaded(void) {
        return mhd_dl;
}

struct MHD_Daemon *(MHD_start_daemon)(unsigned int flags, uint16_t port,
                                      MHD_AcceptPolicyCallback apc, void *apc_cls,
                                      MHD_AccessHandlerCallback dh, void *dh_cls, ...) {
        struct MHD_Daemon *d;
        va_list ap;

        if (okg_mhd_load() < 0) {
                errno = EOPNOTSUPP;
                return NULL;
        }
        va_start(ap, dh_cls);
        d = sym_MHD_start_daemon_va(flags, port, apc, apc_cls, dh, dh_cls, ap);
        va_end(ap);
        return d;
}

void (MHD_stop_daemon)(struct MHD_Daemon *daemon) {
        sym_MHD_stop_daemon(daemon);
}

enum MHD_Result (MHD_run)(struct MHD_Daemon *daemon) {
        return sym_MHD_run(daemon);
}

enum MHD_Result (MHD_get_timeout)(struct MHD_Daemon *daemon, MHD_UNSIGNED_LONG_LONG *timeout) {
        return sym_MHD_get_timeout(daemon, timeout);
}

/* No information type of libmicrohttpd 0.9 reads the variadic arguments. */
const union MHD_DaemonInfo *(MHD_get_daemon_info)(struct MHD_Daemon *daemon,
                                                  enum MHD_DaemonInfoType info_type, ...) {
        return sym_MHD_get_daemon_info(daemon, info_type);
}

const union MHD_ConnectionInfo *(MHD_get_connection_info)(struct MHD_Connection *connection,
                                                          enum MHD_ConnectionInfoType info_type,
                                                          ...) {
        return sym_MHD_get_connection_info(connection, info_type);
}

int (MHD_get_connection_values_n)(struct MHD_Connection *connection, enum MHD_ValueKind kind,
                                  MHD_KeyValueIteratorN iterator, void *iterator_cls) {
        return sym_MHD_get_connection_values_n(connection, kind, iterator, iterator_cls);
}

const char *(MHD_lookup_connection_value)(struct MHD_Connection *connection,
                                          enum MHD_ValueKind kind, const char *key) {
        return sym_MHD_lookup_connection_value(connection, kind, key);
}

struct MHD_Response *(MHD_create_response_from_buffer)(size_t size, void *buffer,
                                                       enum MHD_ResponseMemoryMode mode) {
        return okg_mhd_load() < 0 ? NULL : sym_MHD_create_response_from_buffer(size, buffer, mode);
}

enum MHD_Result (MHD_add_response_header)(struct MHD_Response *response, const char *header,
                                          const char *content) {
        return sym_MHD_add_response_header(response, header, content);
}

void (MHD_destroy_response)(struct MHD_Response *response) {
        sym_MHD_destroy_response(response);
}

enum MHD_Result (MHD_queue_response)(struct MHD_Connection *connection, unsigned int status_code,
                                     struct MHD_Response *response) {
        return sym_MHD_queue_response(connection, status_code, response);
}

void (MHD_suspend_connection)(struct MHD_Connection *connection) {
        sym_MHD_suspend_connection(connection);
}

void (MHD_resume_connection)(struct MHD_Connection *connection) {
        sym_MHD_resume_connection(connection);
}
