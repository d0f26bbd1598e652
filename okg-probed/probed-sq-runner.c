/* The service_quality plugin's probes: one runner per probe of the annotation, its timer and
 * the probe in flight on the one event loop (httpGet a curl transfer, tcpSocket a non-blocking
 * connect, exec a child chrooted into the container's file system), Kruise's thresholds
 * (docs/service-quality.md). */
#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"
#include "okg-util.h"
#include "probed-sq-manager.h"
#include "probed-sq-message.h"

#define EXEC_OUTPUT_MAX (8 * 1024)
/* A period is a period (Kruise's ticker): not sd-event's default 250 ms of slack. */
#define PROBE_TIMER_ACCURACY_USEC (10 * USEC_PER_MSEC)
#define NOT_SHARED_MESSAGE                                                                   \
        "exec probe not run: the pod does not share its process namespace "                 \
        "(spec.shareProcessNamespace), so the sidecar cannot reach container %s"

#ifndef MIN
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#endif

static int safe_close(int fd) {
        if (fd >= 0)
                close(fd);
        return -1;
}

static void closedirp(DIR **d) {
        if (*d)
                closedir(*d);
}

static void exec_maybe_done(SqRunner *r);

static uint64_t now_realtime(SqManager *m) {
        uint64_t t = 0;
        (void) sd_event_now(m->event, CLOCK_REALTIME, &t);
        return t;
}

static uint64_t now_monotonic(SqManager *m) {
        uint64_t t = 0;
        (void) sd_event_now(m->event, CLOCK_MONOTONIC, &t);
        return t;
}

/* ---- one probe in flight ---- */

static void runner_stop_probe(SqRunner *r) {
        if (r->easy)
                curl_glue_remove(r->manager->glue, r->easy);
        probe_http_cancel(r->http);
        r->io = sd_event_source_disable_unref(r->io);
        r->deadline = sd_event_source_disable_unref(r->deadline);
        if (r->fd >= 0)
                close(r->fd);
        r->fd = -1;
        r->out_io = sd_event_source_disable_unref(r->out_io);
        r->err_io = sd_event_source_disable_unref(r->err_io);
        if (r->out_fd >= 0)
                close(r->out_fd);
        if (r->err_fd >= 0)
                close(r->err_fd);
        r->out_fd = r->err_fd = -1;
        if (r->pgid > 0)
                (void) kill(-r->pgid, SIGKILL);
        if (r->pid > 0)
                (void) kill(r->pid, SIGKILL);
        r->pgid = 0;
        /* The child source reaps it (or, when freed, sd-event leaves a zombie to init; we
         * kill before that, so it is gone with us). */
        r->child = sd_event_source_disable_unref(r->child);
        if (r->pid > 0)
                (void) waitpid(r->pid, NULL, 0);
        r->pid = 0;
        r->probing = false;
}

SqRunner *sq_runner_free(SqRunner *r) {
        if (!r)
                return NULL;
        runner_stop_probe(r);
        sd_event_source_disable_unref(r->timer);
        if (r->easy)
                curl_easy_cleanup(r->easy);
        probe_http_free(r->http);
        strv_free(r->headers);
        free(r->body);
        free(r->out);
        free(r->err);
        free(r->path);
        free(r->target);
        free(r->url);
        free(r->container_id);
        sq_tracker_done(&r->tracker);
        free(r->last_message);
        free(r->last_error);
        free(r);
        return NULL;
}

const SqContainer *sq_runner_container(SqRunner *r) {
        return r->manager->have_pod ? sq_pod_container(&r->manager->pod, r->probe->container) : NULL;
}

/* One probe ended. success < 0: it gave no result (Kruise keeps the last one), error says why. */
static void runner_finish(SqRunner *r, int success, const char *message, const char *error) {
        SqManager *m = r->manager;
        uint64_t elapsed = now_monotonic(m) - r->started_usec, period;
        int k;

        r->probing = false;
        r->n_probes++;
        r->last_probe_realtime = now_realtime(m);
        (void) free_and_strdup(&r->last_error, error);
        if (success < 0) {
                r->n_failures++;
                log_debug("Probe %s: no result: %s", r->probe->name, strempty(error));
        } else {
                if (!success)
                        r->n_failures++;
                r->last_success = success;
                (void) free_and_strdup(&r->last_message, strempty(message));
                k = sq_tracker_feed(&r->tracker, r->probe, success, strempty(message));
                if (k < 0)
                        log_error_errno(k, "Probe %s: %m", r->probe->name);
                else if (k > 0) {
                        log_info("Probe %s (%s): %s \"%s\".", r->probe->name,
                                 r->probe->condition_type, r->tracker.status ? "True" : "False",
                                 r->tracker.message);
                        sq_manager_schedule_sync(m);
                }
        }
        sq_bus_emit_runner_changed(r);
        period = (uint64_t) sq_probe_period(r->probe) * USEC_PER_SEC;
        sq_runner_schedule(r, elapsed >= period ? 0 : period - elapsed);
}

/* The result as Kruise sets it without thresholds (a container that does not run). */
static void runner_force(SqRunner *r, const char *message) {
        if (r->tracker.has_result && !r->tracker.status && streq_ptr(r->tracker.message, message))
                return;
        sq_tracker_reset(&r->tracker);
        r->tracker.has_result = true;
        r->tracker.status = false;
        r->tracker.message = strdup(message);
        if (!r->tracker.message)
                r->tracker.has_result = false;
        sq_manager_schedule_sync(r->manager);
        sq_bus_emit_runner_changed(r);
}

/* curl made a socket for the transfer in flight: it did not take a kept-alive connection. */
static int on_curl_socket(void *userdata, curl_socket_t fd, curlsocktype purpose) {
        SqRunner *r = userdata;

        (void) fd;
        (void) purpose;
        r->opened_socket = true;
        return CURL_SOCKOPT_OK;
}

/* The curl options every probe through curl shares: its protocols, no signals, no proxy. */
static bool runner_curl_init(SqRunner *r, const char *protocols) {
        r->easy = curl_easy_init();
        return r->easy &&
               curl_easy_setopt(r->easy, CURLOPT_PROTOCOLS_STR, protocols) == CURLE_OK &&
               curl_easy_setopt(r->easy, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
               curl_easy_setopt(r->easy, CURLOPT_NOPROXY, "*") == CURLE_OK &&
               curl_easy_setopt(r->easy, CURLOPT_SOCKOPTFUNCTION, on_curl_socket) == CURLE_OK &&
               curl_easy_setopt(r->easy, CURLOPT_SOCKOPTDATA, r) == CURLE_OK &&
               curl_easy_setopt(r->easy, CURLOPT_ERRORBUFFER, r->curl_error) == CURLE_OK;
}

/* Starts the runner's curl transfer to url within what is left of the probe's timeout (one
 * deadline for the whole probe, redirects included, as http.Client's Timeout). */
static int runner_curl_start(SqRunner *r, const char *url, CurlDoneCallback done) {
        uint64_t total = (uint64_t) sq_probe_timeout(r->probe) * USEC_PER_SEC,
                 spent = now_monotonic(r->manager) - r->started_usec;
        long timeout_ms = spent >= total ? 1 : (long) ((total - spent) / 1000) ?: 1;

        r->curl_error[0] = 0;
        r->opened_socket = false;
        if (curl_easy_setopt(r->easy, CURLOPT_URL, url) != CURLE_OK ||
            curl_easy_setopt(r->easy, CURLOPT_TIMEOUT_MS, timeout_ms) != CURLE_OK ||
            curl_easy_setopt(r->easy, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms) != CURLE_OK)
                return -EIO;
        return curl_glue_add(r->manager->glue, r->easy, done, r);
}

/* httpGet */

static size_t on_body(char *data, size_t size, size_t nmemb, void *userdata) {
        SqRunner *r = userdata;
        size_t n = size * nmemb, room = SQ_BODY_MAX - r->body_len;

        if (n > room) {
                /* kubelet reads at most 10 KiB of a probe's body and uses what it read. */
                memcpy(r->body + r->body_len, data, room);
                r->body_len += room;
                return room;
        }
        memcpy(r->body + r->body_len, data, n);
        r->body_len += n;
        return n;
}

static void on_http_done(ProbeHttp *h, const ProbeHttpResult *res, void *userdata);

/* Sends the httpGet request to r->url within what is left of the probe's timeout (one deadline
 * for the whole probe, redirects included, as http.Client's Timeout). */
static int runner_http_send(SqRunner *r) {
        uint64_t total = (uint64_t) sq_probe_timeout(r->probe) * USEC_PER_SEC,
                 spent = now_monotonic(r->manager) - r->started_usec;

        return probe_http_start(r->http, &(ProbeHttpRequest) {
                .method = "GET",
                .url = r->url,
                .headers = r->headers,
                .timeout_usec = spent + USEC_PER_MSEC >= total ? USEC_PER_MSEC : total - spent,
        });
}

/* The resolver Go's pure resolver (Kruise's daemon is built without cgo) would name in a
 * lookup error: ours, the pod's, which may differ from the node's (docs/service-quality.md). */
static char *resolver_name(void) {
        _cleanup_(freep) char *text = NULL;

        (void) okg_read_file("/etc/resolv.conf", 64 * 1024, &text, NULL);
        return sq_resolv_nameserver(text ?: "");
}

/* The facts of a failed transfer, for sq_*_failure_message(): strings point into the
 * returned allocations, or are NULL. */
static void curl_facts(const ProbeHttpResult *res, const char *url, SqNetFacts *f,
                       char **ret_remote, char **ret_local, char **ret_ns) {
        const char *ip = res->primary_ip, *lip = res->local_ip;
        long port = res->primary_port, lport = res->local_port;
        CURLcode result = res->code;

        f->curl_code = result;
        f->os_errno = (int) res->os_errno;
        f->timed_out = result == CURLE_OPERATION_TIMEDOUT;
        /* A transfer on a kept-alive connection made none: its connect time is 0. */
        f->connected = sq_transfer_connected(result, res->connect_us, res->opened_socket, ip);
        /* curl does not say where a failed connect went: the URL's host and port then, which
         * is Go's text for an IP (for a name Go shows the address it resolved to). */
        if (port <= 0)
                port = sq_url_port(url);
        if (isempty(ip) && result != CURLE_COULDNT_RESOLVE_HOST)
                ip = f->host;
        *ret_remote = !isempty(ip) && port > 0 ? sq_host_port(ip, port) : NULL;
        *ret_local = !isempty(lip) && lport > 0 ? sq_host_port(lip, lport) : NULL;
        *ret_ns = result == CURLE_COULDNT_RESOLVE_HOST || (f->timed_out && !*ret_remote) ?
                resolver_name() : NULL;
        f->remote = *ret_remote;
        f->local = *ret_local;
        f->nameserver = *ret_ns;
}

/* kubelet's client follows a redirect to the same host name, at most 10: returns 1 when the
 * next request is on its way (or *ret_stop says why not), 0 when this response is the result. */
static int http_follow(SqRunner *r, const ProbeHttpResult *res, char **ret_stop) {
        const char *next = res->redirect_url;
        char h1[256], h2[256];

        if (!http_status_is_redirect(res->status) || isempty(next))
                return 0;
        if (!sq_url_hostname(next, h1, sizeof h1) || !sq_url_hostname(r->url, h2, sizeof h2) ||
            !streq(h1, h2))
                return 0;
        /* Go's client stops when 10 requests were made (9 redirects followed): the 10th
         * redirect is the error. */
        if (r->n_redirects + 1 >= 10) {
                *ret_stop = sq_strf("Get \"%s\": stopped after 10 redirects", next);
                return *ret_stop ? 1 : -ENOMEM;
        }
        r->n_redirects++;
        if (free_and_strdup(&r->url, next) < 0)
                return -ENOMEM;
        r->body_len = 0;
        if (runner_http_send(r) < 0)
                return -EIO;
        return 1;
}

static void on_http_done(ProbeHttp *h, const ProbeHttpResult *res, void *userdata) {
        SqRunner *r = userdata;
        _cleanup_(freep) char *msg = NULL, *remote = NULL, *local = NULL, *ns = NULL;
        char host[256];
        SqNetFacts f = {};
        CURLcode result = res->code;
        long status = res->status;
        bool ok = false;
        int k;

        if (result == CURLE_OK || (result == CURLE_WRITE_ERROR && r->body_len == SQ_BODY_MAX)) {
                k = http_follow(r, res, &msg);
                if (k < 0) {
                        runner_finish(r, -1, NULL, "cannot follow the redirect");
                        return;
                }
                if (k > 0 && !msg)
                        return;
                if (msg) {
                        runner_finish(r, false, msg, NULL);
                        return;
                }
                msg = sq_http_message(status, r->body, r->body_len, &ok);
                if (!msg)
                        runner_finish(r, -1, NULL, "out of memory");
                else
                        runner_finish(r, ok, msg, NULL);
                return;
        }
        /* The message Go's HTTP client gives for the same failure, as Kruise writes it. */
        f.host = sq_url_hostname(r->url, host, sizeof host);
        curl_facts(res, r->url, &f, &remote, &local, &ns);
        f.got_headers = status > 0;
        f.url = r->url;
        f.tls_error = !isempty(res->error) ? res->error : NULL;
        k = sq_http_failure_message(&f, &msg);
        if (k < 0)
                runner_finish(r, -1, NULL, "out of memory");
        else if (k == 0)
                /* kubelet's prober errs on a body that broke off: Kruise keeps its result. */
                runner_finish(r, -1, NULL, !isempty(res->error) ? res->error :
                              probe_http_strerror(result));
        else {
                _cleanup_(freep) char *text = sq_message_make(msg, strlen(msg));
                if (!text)
                        runner_finish(r, -1, NULL, "out of memory");
                else
                        runner_finish(r, false, text, NULL);
        }
}

/* The httpGet request's headers in curl's syntax (probed-http.h), made once per runner. */
static int runner_make_headers(SqRunner *r) {
        const SqProbe *p = r->probe;
        _cleanup_(strv_freep) char **l = NULL;
        bool have_ua = false, have_accept = false;
        size_t n = 0;

        l = calloc(p->n_headers + 3, sizeof(char *));
        if (!l)
                return -ENOMEM;
        for (size_t i = 0; i < p->n_headers; i++) {
                if (strcasecmp(p->headers[i].name, "User-Agent") == 0)
                        have_ua = true;
                if (strcasecmp(p->headers[i].name, "Accept") == 0)
                        have_accept = true;
                /* "Name;" is how curl sends a header with an empty value; "Name:" sends none,
                 * as Go does for an empty Accept (kubelet removes it) and User-Agent. */
                bool drop = isempty(p->headers[i].value) &&
                            (strcasecmp(p->headers[i].name, "Accept") == 0 ||
                             strcasecmp(p->headers[i].name, "User-Agent") == 0);
                if (asprintf(&l[n], drop                           ? "%s:%s"
                                    : isempty(p->headers[i].value) ? "%s;%s"
                                                                   : "%s: %s",
                             p->headers[i].name, p->headers[i].value) < 0) {
                        l[n] = NULL;
                        return -ENOMEM;
                }
                n++;
        }
        /* kubelet's (and Kruise's) defaults: User-Agent kube-probe, Accept any. */
        if (!have_ua && !(l[n++] = strdup("User-Agent: kube-probe")))
                return -ENOMEM;
        if (!have_accept && !(l[n++] = strdup("Accept: */*")))
                return -ENOMEM;
        r->headers = TAKE_PTR(l);
        return 0;
}

static int runner_start_http(SqRunner *r, const SqContainer *c) {
        const SqProbe *p = r->probe;
        char errbuf[160] = "";
        _cleanup_(freep) char *url = NULL;
        int k;

        k = sq_probe_url(p, &r->manager->pod, c, &url, errbuf, sizeof errbuf);
        if (k < 0) {
                runner_finish(r, -1, NULL, k == -ENOMEM ? "out of memory" : errbuf);
                return 0;
        }
        free(r->target);
        r->target = TAKE_PTR(url);

        if (!r->http) {
                if (!r->body && !(r->body = malloc(SQ_BODY_MAX)))
                        return -ENOMEM;
                if (!r->headers && (k = runner_make_headers(r)) < 0)
                        return k;
                /* https and host names go through curl, plain http to an address through
                 * okg-probed's own client (probed-http.h). */
                k = probe_http_new(r->manager->event, r->manager->glue, on_body, on_http_done, r,
                                   &r->http);
                if (k < 0)
                        return k;
        }
        r->body_len = 0;
        r->n_redirects = 0;
        if (free_and_strdup(&r->url, r->target) < 0)
                return -ENOMEM;
        return runner_http_send(r);
}

/* tcpSocket */

/* The end of a tcpSocket probe that dialled addr: success gives an empty message, else Go's
 * dial error text, "dial tcp ADDR: connect: connection refused". */
static void tcp_finish(SqRunner *r, const char *addr, int error, bool timed_out) {
        _cleanup_(freep) char *msg = NULL;

        if (error == 0 && !timed_out) {
                runner_finish(r, true, "", NULL);
                return;
        }
        if (sq_tcp_failure_message(&(SqNetFacts) { .os_errno = error, .timed_out = timed_out,
                                                   .remote = addr }, &msg) < 0)
                runner_finish(r, -1, NULL, "out of memory");
        else
                runner_finish(r, false, msg, NULL);
}

static void tcp_done(SqRunner *r, int error, bool timed_out) {
        r->io = sd_event_source_disable_unref(r->io);
        r->deadline = sd_event_source_disable_unref(r->deadline);
        if (r->fd >= 0)
                close(r->fd);
        r->fd = -1;
        tcp_finish(r, r->target, error, timed_out);
}

/* tcpSocket to a host name, as kubelet dials one: curl resolves it (its resolver does not block
 * the loop) and connects, nothing more. */
static void on_tcp_name_done(CurlGlue *g, CURL *easy, CURLcode result, void *userdata) {
        SqRunner *r = userdata;
        _cleanup_(freep) char *remote = NULL, *local = NULL, *ns = NULL, *msg = NULL, *text = NULL;
        SqNetFacts f = {};
        ProbeHttpResult res = {};

        if (result == CURLE_OK) {
                tcp_finish(r, r->target, 0, false);
                return;
        }
        _cleanup_(freep) char *url = sq_strf("http://%s/", r->target);
        f.host = r->probe->host;
        probe_http_result_from_curl(easy, result, r->opened_socket, &res);
        curl_facts(&res, url ?: "", &f, &remote, &local, &ns);
        f.tls_error = r->curl_error[0] ? r->curl_error : curl_easy_strerror(result);
        if (sq_tcp_failure_message(&f, &msg) < 0 || !(text = sq_message_make(msg, strlen(msg))))
                runner_finish(r, -1, NULL, "out of memory");
        else
                runner_finish(r, false, text, NULL);
}

static int runner_start_tcp_name(SqRunner *r, const char *host, int port) {
        _cleanup_(freep) char *url = sq_strf("http://%s:%d/", host, port);

        if (!url)
                return -ENOMEM;
        if (!r->easy) {
                if (!runner_curl_init(r, "http"))
                        return r->easy ? -EIO : -ENOMEM;
                /* Connect only, and close the connection at once: a probe keeps nothing open. */
                if (curl_easy_setopt(r->easy, CURLOPT_CONNECT_ONLY, 1L) != CURLE_OK ||
                    curl_easy_setopt(r->easy, CURLOPT_FRESH_CONNECT, 1L) != CURLE_OK ||
                    curl_easy_setopt(r->easy, CURLOPT_FORBID_REUSE, 1L) != CURLE_OK)
                        return -EIO;
        }
        return runner_curl_start(r, url, on_tcp_name_done);
}

static int on_tcp_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        SqRunner *r = userdata;
        int error = 0;
        socklen_t len = sizeof error;

        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len) < 0)
                error = errno;
        tcp_done(r, error, false);
        return 0;
}

static int on_probe_deadline(sd_event_source *s, uint64_t usec, void *userdata) {
        SqRunner *r = userdata;

        if (r->fd >= 0) {
                tcp_done(r, 0, true);
                return 0;
        }
        if (r->pid > 0 || r->out_fd >= 0 || r->err_fd >= 0) {
                /* Kruise: an exec that times out is an error, not a result. What the command
                 * left behind in its process group goes with it; a pipe something else still
                 * holds open is closed here. */
                r->timed_out = true;
                if (r->pgid > 0)
                        (void) kill(-r->pgid, SIGKILL);
                if (r->pid > 0) {
                        (void) kill(r->pid, SIGKILL);
                        return 0;      /* on_exec_exit() ends it */
                }
                r->out_io = sd_event_source_disable_unref(r->out_io);
                r->err_io = sd_event_source_disable_unref(r->err_io);
                r->out_fd = safe_close(r->out_fd);
                r->err_fd = safe_close(r->err_fd);
                exec_maybe_done(r);
        }
        return 0;
}

static int runner_start_tcp(SqRunner *r, const SqContainer *c) {
        const char *host = sq_probe_host(r->probe, &r->manager->pod);
        struct sockaddr_storage sa = {};
        socklen_t salen;
        char errbuf[160] = "";
        int port, k;

        k = sq_probe_resolve_port(r->probe, c, &port, errbuf, sizeof errbuf);
        if (k < 0) {
                runner_finish(r, -1, NULL, errbuf);
                return 0;
        }
        free(r->target);
        if (asprintf(&r->target, strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port) < 0) {
                r->target = NULL;
                return -ENOMEM;
        }
        if (inet_pton(AF_INET, host, &((struct sockaddr_in *) &sa)->sin_addr) == 1) {
                ((struct sockaddr_in *) &sa)->sin_family = AF_INET;
                ((struct sockaddr_in *) &sa)->sin_port = htons((uint16_t) port);
                salen = sizeof(struct sockaddr_in);
        } else if (inet_pton(AF_INET6, host, &((struct sockaddr_in6 *) &sa)->sin6_addr) == 1) {
                ((struct sockaddr_in6 *) &sa)->sin6_family = AF_INET6;
                ((struct sockaddr_in6 *) &sa)->sin6_port = htons((uint16_t) port);
                salen = sizeof(struct sockaddr_in6);
        } else
                return runner_start_tcp_name(r, host, port);
        r->fd = socket(sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (r->fd < 0)
                return -errno;
        if (connect(r->fd, (struct sockaddr *) &sa, salen) == 0) {
                tcp_done(r, 0, false);
                return 0;
        }
        if (errno != EINPROGRESS) {
                tcp_done(r, errno, false);
                return 0;
        }
        k = sd_event_add_io(r->manager->event, &r->io, r->fd, EPOLLOUT, on_tcp_io, r);
        if (k >= 0)
                k = sd_event_add_time_relative(r->manager->event, &r->deadline, CLOCK_MONOTONIC,
                                               (uint64_t) sq_probe_timeout(r->probe) * USEC_PER_SEC,
                                               0, on_probe_deadline, r);
        return k;
}

/* exec */

/* The first process whose cgroup names the container: its file system is the container's. */
static pid_t find_container_pid(const char *id) {
        _cleanup_(closedirp) DIR *d = opendir("/proc");
        pid_t best = 0;
        struct dirent *de;

        if (!d)
                return 0;
        while ((de = readdir(d))) {
                _cleanup_(freep) char *path = NULL, *text = NULL;
                char *end;
                long pid = strtol(de->d_name, &end, 10);

                if (*end || pid <= 0 || pid == getpid())
                        continue;
                if (asprintf(&path, "/proc/%ld/cgroup", pid) < 0)
                        return 0;
                if (okg_read_file(path, 64 * 1024, &text, NULL) < 0)
                        continue;
                if (sq_cgroup_has_container(text, id) > 0 && (best == 0 || pid < best))
                        best = (pid_t) pid;
        }
        return best;
}

static void exec_maybe_done(SqRunner *r) {
        _cleanup_(freep) char *msg = NULL;

        if (r->pid > 0 || r->out_fd >= 0 || r->err_fd >= 0)
                return;
        r->deadline = sd_event_source_disable_unref(r->deadline);
        r->pgid = 0;
        if (r->timed_out) {
                char e[96];
                (void) snprintf(e, sizeof e, "command timed out after %us",
                                sq_probe_timeout(r->probe));
                runner_finish(r, -1, NULL, e);
                return;
        }
        /* Kruise (CRI ExecSync): stdout when the command exits 0, stderr otherwise. */
        if (r->last_exit == 0)
                msg = sq_message_make(r->out ?: "", r->out_len);
        else
                msg = sq_message_make(r->err ?: "", r->err_len);
        if (!msg)
                runner_finish(r, -1, NULL, "out of memory");
        else
                runner_finish(r, r->last_exit == 0, msg, NULL);
}

static int on_exec_output(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        SqRunner *r = userdata;
        bool is_out = fd == r->out_fd;
        char **buf = is_out ? &r->out : &r->err;
        size_t *len = is_out ? &r->out_len : &r->err_len;
        char tmp[4096];
        ssize_t n;

        n = read(fd, tmp, sizeof tmp);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return 0;
        if (n <= 0) {
                if (is_out) {
                        r->out_io = sd_event_source_disable_unref(r->out_io);
                        r->out_fd = safe_close(r->out_fd);
                } else {
                        r->err_io = sd_event_source_disable_unref(r->err_io);
                        r->err_fd = safe_close(r->err_fd);
                }
                exec_maybe_done(r);
                return 0;
        }
        /* Enough to tell whether the message is longer than 1024 characters; the rest is
         * read and dropped so the command never blocks on a full pipe. */
        if (*len < EXEC_OUTPUT_MAX) {
                size_t take = MIN((size_t) n, EXEC_OUTPUT_MAX - *len);
                if (!*buf && !(*buf = malloc(EXEC_OUTPUT_MAX + 1)))
                        return 0;
                memcpy(*buf + *len, tmp, take);
                *len += take;
        }
        return 0;
}

static int on_exec_exit(sd_event_source *s, const siginfo_t *si, void *userdata) {
        SqRunner *r = userdata;

        r->last_exit = si->si_code == CLD_EXITED ? si->si_status : 128 + si->si_status;
        r->child = sd_event_source_disable_unref(r->child);
        r->pid = 0;
        exec_maybe_done(r);
        return 0;
}

/* Reads /proc/PID/environ as a NULL-terminated list, and the process's uid and gid. */
static int read_process(pid_t pid, char ***ret_env, uid_t *ret_uid, gid_t *ret_gid) {
        _cleanup_(freep) char *path = NULL, *text = NULL, *status = NULL;
        _cleanup_(strv_freep) char **env = NULL;
        size_t len = 0, n = 0;
        const char *u, *g;
        int k;

        if (asprintf(&path, "/proc/%d/environ", (int) pid) < 0)
                return -ENOMEM;
        k = okg_read_file(path, 1024 * 1024, &text, &len);
        if (k < 0)
                return k;
        env = calloc(len / 2 + 2, sizeof(char *));
        if (!env)
                return -ENOMEM;
        for (size_t i = 0; i < len;) {
                size_t l = strnlen(text + i, len - i);
                if (l > 0 && !(env[n++] = strndup(text + i, l)))
                        return -ENOMEM;
                i += l + 1;
        }
        free(path);
        if (asprintf(&path, "/proc/%d/status", (int) pid) < 0)
                return -ENOMEM;
        k = okg_read_file(path, 64 * 1024, &status, NULL);
        if (k < 0)
                return k;
        u = strstr(status, "\nUid:");
        g = strstr(status, "\nGid:");
        if (!u || !g)
                return -EIO;
        /* The effective IDs: the second field. */
        if (sscanf(u + 5, "%*u %u", ret_uid) != 1 || sscanf(g + 5, "%*u %u", ret_gid) != 1)
                return -EIO;
        *ret_env = TAKE_PTR(env);
        return 0;
}

static int runner_start_exec(SqRunner *r, const SqContainer *c) {
        SqManager *m = r->manager;
        _cleanup_(strv_freep) char **env = NULL;
        _cleanup_(freep) char *root = NULL, *cwd_link = NULL;
        char cwd[4096] = "/", errbuf[256];
        int out[2] = { -1, -1 }, err[2] = { -1, -1 }, k;
        uid_t uid;
        gid_t gid;
        ssize_t n;
        pid_t target, pid;

        free(r->target);
        r->target = strdup(r->probe->command[0]);
        if (!m->pod.share_process_namespace) {
                (void) snprintf(errbuf, sizeof errbuf, NOT_SHARED_MESSAGE, r->probe->container);
                runner_finish(r, false, errbuf, NULL);
                return 0;
        }
        target = isempty(c->id) ? 0 : find_container_pid(c->id);
        if (target <= 0) {
                (void) snprintf(errbuf, sizeof errbuf,
                                "exec probe not run: no process of container %s (ID %s) is "
                                "visible to the sidecar", r->probe->container, strempty(c->id));
                runner_finish(r, false, errbuf, NULL);
                return 0;
        }
        k = read_process(target, &env, &uid, &gid);
        if (k >= 0 && (asprintf(&root, "/proc/%d/root", (int) target) < 0 ||
                       asprintf(&cwd_link, "/proc/%d/cwd", (int) target) < 0))
                k = -ENOMEM;
        if (k < 0) {
                (void) snprintf(errbuf, sizeof errbuf,
                                "exec probe not run: cannot read process %d of container %s: %s "
                                "(the sidecar needs CAP_SYS_PTRACE or the same user)",
                                (int) target, r->probe->container, strerror(-k));
                runner_finish(r, false, errbuf, NULL);
                return 0;
        }
        n = readlink(cwd_link, cwd, sizeof cwd - 1);
        cwd[n > 0 ? n : 1] = 0;

        /* Only our read ends are non-blocking: the command's stdout and stderr are ordinary
         * blocking pipes, or a command that writes more than a pipe holds would see EAGAIN. */
        if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0 ||
            fcntl(out[0], F_SETFL, O_NONBLOCK) < 0 || fcntl(err[0], F_SETFL, O_NONBLOCK) < 0) {
                k = -errno;
                safe_close(out[0]);
                safe_close(out[1]);
                safe_close(err[0]);
                safe_close(err[1]);
                return k;
        }
        pid = fork();
        if (pid < 0) {
                k = -errno;
                safe_close(out[0]);
                safe_close(out[1]);
                safe_close(err[0]);
                safe_close(err[1]);
                return k;
        }
        if (pid == 0) {
                sigset_t all;
                const char *why = "chroot";

                (void) setpgid(0, 0);
                (void) sigemptyset(&all);
                (void) sigprocmask(SIG_SETMASK, &all, NULL);
                for (int sig = 1; sig < _NSIG; sig++)
                        (void) signal(sig, SIG_DFL);
                if (dup2(out[1], 1) < 0 || dup2(err[1], 2) < 0)
                        _exit(126);
                if (chroot(root) < 0 || (why = "chdir", chdir(cwd) < 0 && chdir("/") < 0))
                        goto fail;
                why = "setgid";
                if (getegid() != gid && (setgroups(0, NULL) < 0 || setgid(gid) < 0))
                        goto fail;
                why = "setuid";
                if (geteuid() != uid && setuid(uid) < 0)
                        goto fail;
                execvpe(r->probe->command[0], r->probe->command, env);
                why = r->probe->command[0];
        fail:
                /* Like a runtime's exec failure: stderr says why, the status is not 0. */
                dprintf(2, "%s: %s", why, strerror(errno));
                _exit(127);
        }
        safe_close(out[1]);
        safe_close(err[1]);
        r->pid = r->pgid = pid;
        r->out_fd = out[0];
        r->err_fd = err[0];
        r->out_len = r->err_len = 0;
        r->timed_out = false;
        r->last_exit = -1;
        k = sd_event_add_child(m->event, &r->child, pid, WEXITED, on_exec_exit, r);
        if (k >= 0)
                k = sd_event_add_io(m->event, &r->out_io, r->out_fd, EPOLLIN, on_exec_output, r);
        if (k >= 0)
                k = sd_event_add_io(m->event, &r->err_io, r->err_fd, EPOLLIN, on_exec_output, r);
        if (k >= 0)
                k = sd_event_add_time_relative(m->event, &r->deadline, CLOCK_MONOTONIC,
                                               (uint64_t) sq_probe_timeout(r->probe) * USEC_PER_SEC,
                                               0, on_probe_deadline, r);
        return k;
}

/* ---- scheduling ---- */

int sq_runner_probe(SqRunner *r) {
        SqManager *m = r->manager;
        const SqContainer *c = sq_runner_container(r);
        SqContainer assumed;
        uint64_t wait;
        int k;

        if (r->probing)
                return 0;
        if (!m->have_pod || !m->pod.has_statuses) {
                /* No kubelet reports containers (a local run, or a pod okg-storaged cannot
                 * read): the container is taken to run since the plugin started. */
                assumed = (SqContainer) {
                        .name = (char *) r->probe->container,
                        .running = true,
                        .started_usec = m->start_realtime,
                        .ports = c ? c->ports : NULL,
                        .n_ports = c ? c->n_ports : 0,
                };
                c = &assumed;
        }
        if (!c) {
                /* Kruise: no such container: no result (the status stays Unknown). The bus
                 * says why, once. */
                _cleanup_(freep) char *why = sq_pod_missing_container(&m->pod, r->probe->container);
                if (why && !streq_ptr(r->last_error, why)) {
                        log_warning("Probe %s: %s.", r->probe->name, why);
                        (void) free_and_strdup(&r->last_error, why);
                        sq_bus_emit_runner_changed(r);
                }
                sq_runner_schedule(r, (uint64_t) sq_probe_period(r->probe) * USEC_PER_SEC);
                return 0;
        }
        if (!streq_ptr(c->id, r->container_id)) {
                /* A new container: Kruise starts its results over. */
                sq_tracker_reset(&r->tracker);
                (void) free_and_strdup(&r->container_id, c->id);
        }
        if (!c->running && c->id) {
                char msg[300];
                (void) snprintf(msg, sizeof msg, "Container(%s) is Non-running", r->probe->container);
                runner_force(r, msg);
        }
        if (!sq_probe_due(r->probe, c, now_realtime(m), &wait)) {
                sq_runner_schedule(r, wait > 0 ? wait : (uint64_t) sq_probe_period(r->probe) * USEC_PER_SEC);
                return 0;
        }

        r->probing = true;
        r->started_usec = now_monotonic(m);
        switch (r->probe->handler) {
        case SQ_HANDLER_HTTP:
                k = runner_start_http(r, c);
                break;
        case SQ_HANDLER_TCP:
                k = runner_start_tcp(r, c);
                break;
        case SQ_HANDLER_EXEC:
                k = runner_start_exec(r, c);
                break;
        default:
                k = -EOPNOTSUPP;
        }
        if (k < 0) {
                runner_stop_probe(r);
                log_warning_errno(k, "Probe %s: cannot start: %m", r->probe->name);
                runner_finish(r, -1, NULL, strerror(-k));
        }
        return 1;
}

static int on_runner_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        (void) sq_runner_probe(userdata);
        return 0;
}

void sq_runner_schedule(SqRunner *r, uint64_t delay_usec) {
        int k;

        if (!r->timer) {
                k = sd_event_add_time_relative(r->manager->event, &r->timer, CLOCK_MONOTONIC,
                                               delay_usec, PROBE_TIMER_ACCURACY_USEC,
                                               on_runner_timer, r);
                if (k < 0)
                        log_error_errno(k, "Probe %s: cannot arm its timer: %m", r->probe->name);
                return;
        }
        k = sd_event_source_set_time_relative(r->timer, delay_usec);
        if (k >= 0)
                k = sd_event_source_set_enabled(r->timer, SD_EVENT_ONESHOT);
        if (k < 0)
                log_error_errno(k, "Probe %s: cannot arm its timer: %m", r->probe->name);
}

int sq_runner_new(SqManager *m, size_t index, SqRunner **ret) {
        SqRunner *r = calloc(1, sizeof *r);

        if (!r)
                return -ENOMEM;
        r->manager = m;
        r->index = index;
        r->probe = &m->probes.v[index];
        r->fd = r->out_fd = r->err_fd = -1;
        r->tracker.last = -1;
        r->sent = sq_sent_book_get(&m->sent, r->probe->condition_type);
        if (!r->sent || asprintf(&r->path, SQ_BUS_PROBE_PREFIX "/%zu", index) < 0) {
                r->path = NULL;
                sq_runner_free(r);
                return -ENOMEM;
        }
        *ret = r;
        return 0;
}

unsigned sq_manager_probe_now(SqManager *m) {
        unsigned n = 0;
        for (size_t i = 0; i < m->n_runners; i++)
                if (sq_runner_probe(m->runners[i]) > 0)
                        n++;
        return n;
}

