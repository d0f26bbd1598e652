/* libcurl's multi interface driven by sd-event (the shape of systemd importd's CurlGlue): each
 * curl socket is an IO source, curl's single timer one relative timer; see okg-curl.h.
 *
 * The glue must not be freed from a done callback. A done callback may add or remove other
 * transfers, re-add or clean up its own easy handle. curl's own callbacks (write, header,
 * progress) run inside curl_multi_socket_action() and must not add or remove transfers: curl
 * refuses such recursive calls. To abort from a write callback, return a short count; the
 * error then arrives through the done callback. */
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <sys/epoll.h>

#include "log.h"
#include "macro.h"
#include "okg-curl.h"
#include "okg-dlopen.h"
#include "okg-event.h"
#include "okg-list.h"

/* libcurl is loaded on first use (okg-dlopen.h): our binaries do not link it, this file defines
 * the part of its API they call, each forwarding to the loaded library. Debian's libcurl brings
 * some thirty libraries (OpenSSL, Kerberos, LDAP, RTMP, SSH...) whose relocations cost every
 * process about 1 MiB of private dirty memory; okg-sidecard needs libcurl only for the
 * gameReady.url gate, okg-storaged only for the Kubernetes backend, okg-hotupdated only when a
 * download starts. Entry points that create something (an easy, multi or URL handle, a list)
 * load the library and return NULL when it cannot be loaded (after one clear error in the log);
 * the others take such a handle, so the library is loaded when they run. */
static void *curl_dl = NULL;
static int curl_dl_error = 0;

static __typeof__(curl_global_init) *sym_curl_global_init;
static __typeof__(curl_global_cleanup) *sym_curl_global_cleanup;
static __typeof__(curl_easy_init) *sym_curl_easy_init;
static __typeof__(curl_easy_setopt) *sym_curl_easy_setopt;
static __typeof__(curl_easy_getinfo) *sym_curl_easy_getinfo;
static __typeof__(curl_easy_perform) *sym_curl_easy_perform;
static __typeof__(curl_easy_cleanup) *sym_curl_easy_cleanup;
static __typeof__(curl_easy_strerror) *sym_curl_easy_strerror;
static __typeof__(curl_easy_escape) *sym_curl_easy_escape;
static __typeof__(curl_free) *sym_curl_free;
static __typeof__(curl_slist_append) *sym_curl_slist_append;
static __typeof__(curl_slist_free_all) *sym_curl_slist_free_all;
static __typeof__(curl_url) *sym_curl_url;
static __typeof__(curl_url_cleanup) *sym_curl_url_cleanup;
static __typeof__(curl_url_get) *sym_curl_url_get;
static __typeof__(curl_url_set) *sym_curl_url_set;
static __typeof__(curl_multi_init) *sym_curl_multi_init;
static __typeof__(curl_multi_setopt) *sym_curl_multi_setopt;
static __typeof__(curl_multi_add_handle) *sym_curl_multi_add_handle;
static __typeof__(curl_multi_remove_handle) *sym_curl_multi_remove_handle;
static __typeof__(curl_multi_socket_action) *sym_curl_multi_socket_action;
static __typeof__(curl_multi_assign) *sym_curl_multi_assign;
static __typeof__(curl_multi_info_read) *sym_curl_multi_info_read;
static __typeof__(curl_multi_cleanup) *sym_curl_multi_cleanup;
static __typeof__(curl_multi_strerror) *sym_curl_multi_strerror;

int okg_curl_load(void) {
        static const OkgDlSym syms[] = {
                OKG_DL_SYM(sym_curl_global_init, curl_global_init),
                OKG_DL_SYM(sym_curl_global_cleanup, curl_global_cleanup),
                OKG_DL_SYM(sym_curl_easy_init, curl_easy_init),
                OKG_DL_SYM(sym_curl_easy_setopt, curl_easy_setopt),
                OKG_DL_SYM(sym_curl_easy_getinfo, curl_easy_getinfo),
                OKG_DL_SYM(sym_curl_easy_perform, curl_easy_perform),
                OKG_DL_SYM(sym_curl_easy_cleanup, curl_easy_cleanup),
                OKG_DL_SYM(sym_curl_easy_strerror, curl_easy_strerror),
                OKG_DL_SYM(sym_curl_easy_escape, curl_easy_escape),
                OKG_DL_SYM(sym_curl_free, curl_free),
                OKG_DL_SYM(sym_curl_slist_append, curl_slist_append),
                OKG_DL_SYM(sym_curl_slist_free_all, curl_slist_free_all),
                OKG_DL_SYM(sym_curl_url, curl_url),
                OKG_DL_SYM(sym_curl_url_cleanup, curl_url_cleanup),
                OKG_DL_SYM(sym_curl_url_get, curl_url_get),
                OKG_DL_SYM(sym_curl_url_set, curl_url_set),
                OKG_DL_SYM(sym_curl_multi_init, curl_multi_init),
                OKG_DL_SYM(sym_curl_multi_setopt, curl_multi_setopt),
                OKG_DL_SYM(sym_curl_multi_add_handle, curl_multi_add_handle),
                OKG_DL_SYM(sym_curl_multi_remove_handle, curl_multi_remove_handle),
                OKG_DL_SYM(sym_curl_multi_socket_action, curl_multi_socket_action),
                OKG_DL_SYM(sym_curl_multi_assign, curl_multi_assign),
                OKG_DL_SYM(sym_curl_multi_info_read, curl_multi_info_read),
                OKG_DL_SYM(sym_curl_multi_cleanup, curl_multi_cleanup),
                OKG_DL_SYM(sym_curl_multi_strerror, curl_multi_strerror),
        };

        return okg_dlopen_many(&curl_dl, &curl_dl_error, OKG_LIBCURL_SONAME,
                               "HTTP requests (Debian package libcurl4)",
                               syms, ELEMENTSOF(syms));
}

bool okg_curl_loaded(void) {
        return curl_dl;
}

/* The names in parentheses: curl.h may define some of them as type-checking macros. */
CURLcode (curl_global_init)(long flags) {
        return okg_curl_load() < 0 ? CURLE_FAILED_INIT : sym_curl_global_init(flags);
}

void (curl_global_cleanup)(void) {
        if (curl_dl)
                sym_curl_global_cleanup();
}

CURL *(curl_easy_init)(void) {
        return okg_curl_load() < 0 ? NULL : sym_curl_easy_init();
}

/* The variadic ones forward the one argument with the type curl reads for it, which the option
 * number says (CURLOPTTYPE_* and CURLINFO_* ranges; every CURLINFO argument is a pointer). */
CURLcode (curl_easy_setopt)(CURL *curl, CURLoption option, ...) {
        va_list ap;
        CURLcode c;

        if (!curl_dl)
                return CURLE_FAILED_INIT;
        va_start(ap, option);
        if (option < CURLOPTTYPE_OBJECTPOINT)
                c = sym_curl_easy_setopt(curl, option, va_arg(ap, long));
        else if (option < CURLOPTTYPE_FUNCTIONPOINT)
                c = sym_curl_easy_setopt(curl, option, va_arg(ap, void *));
        else if (option < CURLOPTTYPE_OFF_T)
                c = sym_curl_easy_setopt(curl, option, va_arg(ap, void (*)(void)));
        else if (option < CURLOPTTYPE_BLOB)
                c = sym_curl_easy_setopt(curl, option, va_arg(ap, curl_off_t));
        else
                c = sym_curl_easy_setopt(curl, option, va_arg(ap, void *));
        va_end(ap);
        return c;
}

CURLcode (curl_easy_getinfo)(CURL *curl, CURLINFO info, ...) {
        va_list ap;
        CURLcode c;

        if (!curl_dl)
                return CURLE_FAILED_INIT;
        va_start(ap, info);
        c = sym_curl_easy_getinfo(curl, info, va_arg(ap, void *));
        va_end(ap);
        return c;
}

CURLcode (curl_easy_perform)(CURL *curl) {
        return curl_dl ? sym_curl_easy_perform(curl) : CURLE_FAILED_INIT;
}

void (curl_easy_cleanup)(CURL *curl) {
        if (curl_dl)
                sym_curl_easy_cleanup(curl);
}

const char *(curl_easy_strerror)(CURLcode code) {
        return okg_curl_load() < 0 ? "libcurl is not available" : sym_curl_easy_strerror(code);
}

char *(curl_easy_escape)(CURL *curl, const char *string, int length) {
        return okg_curl_load() < 0 ? NULL : sym_curl_easy_escape(curl, string, length);
}

void (curl_free)(void *p) {
        if (curl_dl)
                sym_curl_free(p);
}

struct curl_slist *(curl_slist_append)(struct curl_slist *list, const char *data) {
        return okg_curl_load() < 0 ? NULL : sym_curl_slist_append(list, data);
}

void (curl_slist_free_all)(struct curl_slist *list) {
        if (curl_dl)
                sym_curl_slist_free_all(list);
}

CURLU *(curl_url)(void) {
        return okg_curl_load() < 0 ? NULL : sym_curl_url();
}

void (curl_url_cleanup)(CURLU *handle) {
        if (curl_dl)
                sym_curl_url_cleanup(handle);
}

CURLUcode (curl_url_get)(CURLU *handle, CURLUPart what, char **part, unsigned int flags) {
        return curl_dl ? sym_curl_url_get(handle, what, part, flags) : CURLUE_BAD_HANDLE;
}

CURLUcode (curl_url_set)(CURLU *handle, CURLUPart what, const char *part, unsigned int flags) {
        return curl_dl ? sym_curl_url_set(handle, what, part, flags) : CURLUE_BAD_HANDLE;
}

CURLM *(curl_multi_init)(void) {
        return okg_curl_load() < 0 ? NULL : sym_curl_multi_init();
}

CURLMcode (curl_multi_setopt)(CURLM *multi, CURLMoption option, ...) {
        va_list ap;
        CURLMcode c;

        if (!curl_dl)
                return CURLM_BAD_HANDLE;
        va_start(ap, option);
        if (option < CURLOPTTYPE_OBJECTPOINT)
                c = sym_curl_multi_setopt(multi, option, va_arg(ap, long));
        else if (option < CURLOPTTYPE_FUNCTIONPOINT)
                c = sym_curl_multi_setopt(multi, option, va_arg(ap, void *));
        else if (option < CURLOPTTYPE_OFF_T)
                c = sym_curl_multi_setopt(multi, option, va_arg(ap, void (*)(void)));
        else
                c = sym_curl_multi_setopt(multi, option, va_arg(ap, curl_off_t));
        va_end(ap);
        return c;
}

CURLMcode (curl_multi_add_handle)(CURLM *multi, CURL *curl) {
        return curl_dl ? sym_curl_multi_add_handle(multi, curl) : CURLM_BAD_HANDLE;
}

CURLMcode (curl_multi_remove_handle)(CURLM *multi, CURL *curl) {
        return curl_dl ? sym_curl_multi_remove_handle(multi, curl) : CURLM_BAD_HANDLE;
}

CURLMcode (curl_multi_socket_action)(CURLM *multi, curl_socket_t s, int ev_bitmask,
                                     int *running_handles) {
        return curl_dl ? sym_curl_multi_socket_action(multi, s, ev_bitmask, running_handles)
                       : CURLM_BAD_HANDLE;
}

CURLMcode (curl_multi_assign)(CURLM *multi, curl_socket_t s, void *p) {
        return curl_dl ? sym_curl_multi_assign(multi, s, p) : CURLM_BAD_HANDLE;
}

CURLMsg *(curl_multi_info_read)(CURLM *multi, int *msgs_in_queue) {
        return curl_dl ? sym_curl_multi_info_read(multi, msgs_in_queue) : NULL;
}

CURLMcode (curl_multi_cleanup)(CURLM *multi) {
        return curl_dl ? sym_curl_multi_cleanup(multi) : CURLM_BAD_HANDLE;
}

const char *(curl_multi_strerror)(CURLMcode code) {
        return okg_curl_load() < 0 ? "libcurl is not available" : sym_curl_multi_strerror(code);
}

/* Per-transfer state, reachable from the easy handle through CURLOPT_PRIVATE. */
typedef struct Transfer {
        CurlGlue *glue;
        CURL *easy;
        CurlDoneCallback callback;
        void *userdata;
        LIST_FIELDS(struct Transfer, transfers);
} Transfer;

/* One per socket curl asked us to watch; attached to the socket with curl_multi_assign(). */
typedef struct SocketWatch {
        CurlGlue *glue;
        curl_socket_t fd;          /* curl's socket number, passed back to curl */
        sd_event_source *source;   /* watches a duplicate, see glue_socket_cb() */
        LIST_FIELDS(struct SocketWatch, watches);
} SocketWatch;

struct CurlGlue {
        sd_event *event;
        CURLM *multi;
        sd_event_source *timer;
        Transfer *transfers;
        SocketWatch *watches;
        unsigned n_transfers;
        long max_connections;      /* CURLMOPT_MAXCONNECTS, 0: curl's default */
};

static void transfer_unlink(CurlGlue *g, Transfer *t) {
        LIST_REMOVE(transfers, g->transfers, t);
        g->n_transfers--;
}

static Transfer *transfer_of(CURL *easy) {
        char *p = NULL;

        if (curl_easy_getinfo(easy, CURLINFO_PRIVATE, &p) != CURLE_OK)
                return NULL;
        return (Transfer *) p;
}

/* Takes the transfer out of the multi handle and drops our state; the easy handle is the
 * caller's again afterwards. */
static void transfer_detach(CurlGlue *g, Transfer *t) {
        CURLMcode mc;

        mc = curl_multi_remove_handle(g->multi, t->easy);
        if (mc != CURLM_OK)
                log_debug("Failed to remove curl handle: %s", curl_multi_strerror(mc));
        (void) curl_easy_setopt(t->easy, CURLOPT_PRIVATE, NULL);
        transfer_unlink(g, t);
        free(t);
}

static void watch_free(CurlGlue *g, SocketWatch *w) {
        LIST_REMOVE(watches, g->watches, w);
        sd_event_source_disable_unref(w->source);
        free(w);
}

/* Hands every finished transfer to its callback. The handle is removed first, so the
 * callback owns it and may free it or add it again. */
static void glue_check_finished(CurlGlue *g) {
        CURLMsg *msg;
        int left;

        while ((msg = curl_multi_info_read(g->multi, &left))) {
                CurlDoneCallback callback;
                CURLcode result;
                void *userdata;
                Transfer *t;
                CURL *easy;

                if (msg->msg != CURLMSG_DONE)
                        continue;

                /* msg is invalid once the handle is removed: copy what we need. */
                easy = msg->easy_handle;
                result = msg->data.result;

                t = transfer_of(easy);
                if (!t || t->glue != g)
                        continue;

                callback = t->callback;
                userdata = t->userdata;
                transfer_detach(g, t);

                if (callback)
                        callback(g, easy, result, userdata);
        }
}

static int glue_on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        SocketWatch *w = userdata;
        CurlGlue *g = w->glue;
        int action = 0, running;
        CURLMcode mc;

        if (revents & EPOLLIN)
                action |= CURL_CSELECT_IN;
        if (revents & EPOLLOUT)
                action |= CURL_CSELECT_OUT;
        if (revents & (EPOLLERR | EPOLLHUP))
                action |= CURL_CSELECT_ERR;

        /* w may be freed by the socket callback during this call; do not touch it after. */
        mc = curl_multi_socket_action(g->multi, w->fd, action, &running);
        if (mc != CURLM_OK)
                log_debug("curl_multi_socket_action() failed: %s", curl_multi_strerror(mc));

        glue_check_finished(g);
        return 0;
}

static int glue_on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        CurlGlue *g = userdata;
        CURLMcode mc;
        int running;

        mc = curl_multi_socket_action(g->multi, CURL_SOCKET_TIMEOUT, 0, &running);
        if (mc != CURLM_OK)
                log_debug("curl_multi_socket_action() failed: %s", curl_multi_strerror(mc));

        glue_check_finished(g);
        return 0;
}

static int glue_socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp) {
        CurlGlue *g = userp;
        SocketWatch *w = socketp;
        uint32_t events = 0;
        int r;

        if (what == CURL_POLL_REMOVE) {
                if (w)
                        watch_free(g, w);
                return 0;
        }

        if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
                events |= EPOLLIN;
        if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
                events |= EPOLLOUT;

        if (w) {
                r = sd_event_source_set_io_events(w->source, events);
                if (r >= 0)
                        r = sd_event_source_set_enabled(w->source, SD_EVENT_ON);
                if (r < 0) {
                        log_debug_errno(r, "Failed to update curl socket watch: %m");
                        return -1;
                }
                return 0;
        }

        w = calloc(1, sizeof *w);
        if (!w)
                return -1;
        w->glue = g;
        w->fd = fd;

        /* Watch a duplicate: curl may close its socket before telling us to stop watching it,
         * and a closed fd can no longer be removed from epoll. Ours stays valid until then. */
        _cleanup_(closep) int copy = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (copy < 0) {
                log_debug_errno(errno, "Failed to duplicate curl socket: %m");
                free(w);
                return -1;
        }
        r = sd_event_add_io(g->event, &w->source, copy, events, glue_on_io, w);
        if (r < 0) {
                log_debug_errno(r, "Failed to watch curl socket: %m");
                free(w);
                return -1;
        }
        (void) sd_event_source_set_io_fd_own(w->source, true);
        TAKE_FD(copy);
        (void) sd_event_source_set_description(w->source, "curl-io");

        if (curl_multi_assign(g->multi, fd, w) != CURLM_OK) {
                sd_event_source_disable_unref(w->source);
                free(w);
                return -1;
        }

        LIST_PREPEND(watches, g->watches, w);
        return 0;
}

/* curl asks for one timer: -1 stops it, 0 means "call me as soon as possible" (never from
 * inside this callback), otherwise milliseconds from now. */
static int glue_timer_cb(CURLM *multi, long timeout_ms, void *userp) {
        CurlGlue *g = userp;
        int r;

        if (timeout_ms < 0)
                return okg_timer_disarm(g->timer) < 0 ? -1 : 0;

        r = okg_timer_arm(g->event, &g->timer, (uint64_t) timeout_ms * USEC_PER_MSEC,
                          USEC_PER_MSEC, glue_on_timer, g, "curl-timer");
        if (r < 0) {
                log_debug_errno(r, "Failed to arm curl timer: %m");
                return -1;
        }
        return 0;
}

int curl_glue_new(sd_event *e, CurlGlue **ret) {
        CurlGlue *g;

        if (!e || !ret)
                return -EINVAL;

        /* libcurl itself is loaded and set up by the first transfer: glue_multi(). */
        g = calloc(1, sizeof *g);
        if (!g)
                return -ENOMEM;
        g->event = sd_event_ref(e);
        *ret = g;
        return 0;
}

/* The multi handle, made on first use. */
static int glue_multi(CurlGlue *g) {
        if (g->multi)
                return 0;

        /* Idempotent and reference counted by libcurl since 7.84; we never clean up globally
         * because other users in the process may still need it. */
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
                return okg_curl_load() < 0 ? -EOPNOTSUPP : -EIO;

        g->multi = curl_multi_init();
        if (!g->multi)
                return -ENOMEM;

        if (curl_multi_setopt(g->multi, CURLMOPT_SOCKETFUNCTION, glue_socket_cb) != CURLM_OK ||
            curl_multi_setopt(g->multi, CURLMOPT_SOCKETDATA, g) != CURLM_OK ||
            curl_multi_setopt(g->multi, CURLMOPT_TIMERFUNCTION, glue_timer_cb) != CURLM_OK ||
            curl_multi_setopt(g->multi, CURLMOPT_TIMERDATA, g) != CURLM_OK ||
            (g->max_connections > 0 &&
             curl_multi_setopt(g->multi, CURLMOPT_MAXCONNECTS, g->max_connections) != CURLM_OK)) {
                curl_multi_cleanup(g->multi);
                g->multi = NULL;
                return -EIO;
        }
        return 0;
}

int curl_glue_set_max_connections(CurlGlue *g, unsigned n) {
        if (!g || (unsigned long) n > (unsigned long) INT_MAX)
                return -EINVAL;
        g->max_connections = (long) n;
        if (g->multi && n > 0 &&
            curl_multi_setopt(g->multi, CURLMOPT_MAXCONNECTS, g->max_connections) != CURLM_OK)
                return -EIO;
        return 0;
}

CurlGlue *curl_glue_free(CurlGlue *g) {
        if (!g)
                return NULL;

        if (g->multi) {
                while (g->transfers)
                        transfer_detach(g, g->transfers);

                /* Connections still cached are closed by the cleanup; we drop our watches
                 * ourselves below, so curl need not tell us. */
                (void) curl_multi_setopt(g->multi, CURLMOPT_SOCKETFUNCTION, NULL);
                (void) curl_multi_setopt(g->multi, CURLMOPT_TIMERFUNCTION, NULL);
                curl_multi_cleanup(g->multi);
        }

        while (g->watches)
                watch_free(g, g->watches);

        sd_event_source_disable_unref(g->timer);
        sd_event_unref(g->event);
        free(g);
        return NULL;
}

int curl_glue_add(CurlGlue *g, CURL *easy, CurlDoneCallback cb, void *userdata) {
        Transfer *t;
        CURLMcode mc;
        int r;

        if (!g || !easy)
                return -EINVAL;
        r = glue_multi(g);
        if (r < 0)
                return r;
        if (transfer_of(easy))
                return -EBUSY;

        t = calloc(1, sizeof *t);
        if (!t)
                return -ENOMEM;
        *t = (Transfer) {
                .glue = g,
                .easy = easy,
                .callback = cb,
                .userdata = userdata,
        };

        if (curl_easy_setopt(easy, CURLOPT_PRIVATE, t) != CURLE_OK) {
                free(t);
                return -EIO;
        }

        /* Link first: adding arms the timer, never runs the transfer synchronously. */
        LIST_PREPEND(transfers, g->transfers, t);
        g->n_transfers++;

        mc = curl_multi_add_handle(g->multi, easy);
        if (mc != CURLM_OK) {
                transfer_unlink(g, t);
                (void) curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
                free(t);
                log_debug("Failed to add curl handle: %s", curl_multi_strerror(mc));
                switch (mc) {
                case CURLM_OUT_OF_MEMORY:
                        return -ENOMEM;
                case CURLM_BAD_EASY_HANDLE:
                        return -EINVAL;
                case CURLM_ADDED_ALREADY:
                case CURLM_RECURSIVE_API_CALL:
                        return -EBUSY;
                default:
                        return -EIO;
                }
        }

        return 0;
}

void curl_glue_remove(CurlGlue *g, CURL *easy) {
        Transfer *t;

        if (!g || !easy)
                return;

        t = transfer_of(easy);
        if (!t || t->glue != g)
                return;

        transfer_detach(g, t);
}

unsigned curl_glue_running(const CurlGlue *g) {
        return g ? g->n_transfers : 0;
}
