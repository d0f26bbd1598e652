/* libcurl's multi interface driven by sd-event (the shape of systemd importd's CurlGlue): each
 * curl socket is an IO source, curl's single timer one relative timer; see okg-curl.h.
 *
 * The glue must not be freed from a done callback. A done callback may add or remove other
 * transfers, re-add or clean up its own easy handle. curl's own callbacks (write, header,
 * progress) run inside curl_multi_socket_action() and must not add or remove transfers: curl
 * refuses such recursive calls. To abort from a write callback, return a short count; the
 * error then arrives through the done callback. */
#include <fcntl.h>
#include <stdint.h>
#include <sys/epoll.h>

#include "log.h"
#include "macro.h"
#include "okg-curl.h"
#include "okg-event.h"
#include "okg-list.h"

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

        /* Idempotent and reference counted by libcurl since 7.84; we never clean up globally
         * because other users in the process may still need it. */
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
                return -EIO;

        g = calloc(1, sizeof *g);
        if (!g)
                return -ENOMEM;
        g->event = sd_event_ref(e);

        g->multi = curl_multi_init();
        if (!g->multi) {
                curl_glue_free(g);
                return -ENOMEM;
        }

        if (curl_multi_setopt(g->multi, CURLMOPT_SOCKETFUNCTION, glue_socket_cb) != CURLM_OK ||
            curl_multi_setopt(g->multi, CURLMOPT_SOCKETDATA, g) != CURLM_OK ||
            curl_multi_setopt(g->multi, CURLMOPT_TIMERFUNCTION, glue_timer_cb) != CURLM_OK ||
            curl_multi_setopt(g->multi, CURLMOPT_TIMERDATA, g) != CURLM_OK) {
                curl_glue_free(g);
                return -EIO;
        }

        *ret = g;
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

        if (!g || !easy)
                return -EINVAL;
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
