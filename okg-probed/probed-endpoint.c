/* One endpoint's probes: an sd-event timer starts each one, curl multi (on the same loop) runs
 * it with the endpoint's own timeout, and the result goes through the thresholds. Endpoints
 * never wait for each other: each has its own timer and its own transfer. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "macro.h"
#include "okg-build-config.h"
#include "okg-event.h"
#include "okg-util.h"
#include "probed-bus.h"
#include "probed-endpoint.h"
#include "probed-manager.h"

static size_t on_body(char *data, size_t size, size_t nmemb, void *userdata) {
        Endpoint *e = userdata;
        size_t n = size * nmemb, room = sizeof(e->body) - e->body_len;

        if (n > room) {
                /* Past the cap: keep what fits and stop reading, as kubelet does. The short
                 * count ends the transfer with CURLE_WRITE_ERROR, which on_done() expects. */
                memcpy(e->body + e->body_len, data, room);
                e->body_len += room;
                e->truncated = true;
                return room;
        }
        memcpy(e->body + e->body_len, data, n);
        e->body_len += n;
        return n;
}

/* Sends the probe to url with the endpoint's method and body, or (same_method false, after a
 * 301/302/303) a plain GET without a body, within the endpoint's timeout less what the probe
 * has used so far. */
static int endpoint_send(Endpoint *e, const char *url, bool same_method) {
        const ProbeEndpoint *c = e->config;
        uint64_t timeout = (uint64_t) c->timeout_sec * USEC_PER_SEC, used = 0, now = 0;
        const char *method = same_method ? c->method : "GET", *body = NULL;

        if (e->redirects > 0) {
                (void) sd_event_now(e->manager->event, CLOCK_MONOTONIC, &now);
                used = now > e->started_usec ? now - e->started_usec : 0;
                if (used / 1000 >= timeout / 1000)
                        return -ETIMEDOUT;
                timeout -= used;
        }
        /* A POST (or another method with a body) sends its body, "" when it has none. */
        if (same_method && !streq(c->method, "HEAD") && (streq(c->method, "POST") || c->body))
                body = c->body ?: "";
        return probe_http_start(e->http, &(ProbeHttpRequest) {
                .method = method,
                .url = url,
                .headers = e->headers,
                .body = body,
                .user_agent = "okg-probed/" OKG_VERSION,
                .timeout_usec = timeout,
        });
}

/* The request's extra headers in curl's syntax, made once. */
static int endpoint_make_headers(Endpoint *e) {
        const ProbeEndpoint *c = e->config;
        _cleanup_(strv_freep) char **l = NULL;
        size_t n = 0;

        l = calloc(c->n_headers + 2, sizeof(char *));
        if (!l)
                return -ENOMEM;
        for (size_t i = 0; i < c->n_headers; i++) {
                /* "Name;" is how curl sends a header with an empty value. */
                if (isempty(c->headers[i].value)
                            ? asprintf(&l[n], "%s;", c->headers[i].key) < 0
                            : asprintf(&l[n], "%s: %s", c->headers[i].key, c->headers[i].value) < 0) {
                        l[n] = NULL;
                        return -ENOMEM;
                }
                n++;
        }
        /* No 100-continue round trip for a probe. */
        if (c->body && !streq(c->method, "HEAD") && !(l[n++] = strdup("Expect:")))
                return -ENOMEM;
        e->headers = TAKE_PTR(l);
        return 0;
}

static void on_done(ProbeHttp *h, const ProbeHttpResult *res, void *userdata);

int endpoint_new(Manager *m, size_t index, const ProbeEndpoint *config, Endpoint **ret) {
        _cleanup_(endpoint_freep) Endpoint *e = NULL;
        int r;

        e = calloc(1, sizeof *e);
        if (!e)
                return -ENOMEM;
        e->manager = m;
        e->index = index;
        e->config = config;
        e->last_outcome = PROBE_OUTCOME_NONE;

        if (asprintf(&e->path, OKG_PROBE_ENDPOINT_PATH_PREFIX "/%zu", index) < 0) {
                e->path = NULL;
                return -ENOMEM;
        }
        r = probe_tracker_init(&e->tracker, config->success_threshold, config->failure_threshold,
                               config->failure_state);
        if (r < 0)
                return r;
        r = endpoint_make_headers(e);
        if (r < 0)
                return r;
        /* libcurl is loaded only by a first probe that needs it (https, a host name): plain
         * http to an address goes through okg-probed's own client (docs/footprint.md). */
        r = probe_http_new(m->event, m->glue, on_body, on_done, e, &e->http);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(e);
        return 0;
}

Endpoint *endpoint_free(Endpoint *e) {
        if (!e)
                return NULL;
        probe_http_free(e->http);
        strv_free(e->headers);
        sd_event_source_disable_unref(e->timer);
        probe_tracker_done(&e->tracker);
        free(e->last_state);
        free(e->last_error);
        free(e->hop_url);
        free(e->path);
        free(e);
        return NULL;
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata);

static int arm_timer(Endpoint *e, uint64_t when) {
        Manager *m = e->manager;

        return okg_timer_arm_at(m->event, &e->timer, when,
                                probe_timer_accuracy(m->config->interval_sec * USEC_PER_SEC),
                                on_timer, e, "probe-timer");
}

static void schedule_next(Endpoint *e) {
        Manager *m = e->manager;
        uint64_t now = 0, when;
        int r;

        when = e->started_usec +
               probe_next_delay(m->config->interval_sec * USEC_PER_SEC, manager_random(m));
        /* A probe that took longer than the interval is followed at once, like kubelet's
         * ticker does, but never overlapped by the next one. */
        (void) sd_event_now(m->event, CLOCK_MONOTONIC, &now);
        if (when < now)
                when = now;
        r = arm_timer(e, when);
        if (r < 0) {
                /* An endpoint that silently stops probing would freeze its state: better exit
                 * and be restarted by okg-sidecard. */
                log_error_errno(r, "Failed to schedule the next probe of %s: %m", e->config->url);
                (void) sd_event_exit(m->event, r);
        }
}

/* Records the outcome on the bus-visible fields; returns whether one of the properties that
 * announce their changes changed. */
static bool record(Endpoint *e, ProbeOutcome o, long status, const char *error) {
        bool changed = e->last_outcome != o || e->last_status != status ||
                       !streq_ptr(e->last_error, error);

        /* Log what changes, not every probe: a game that is down for an hour logs once. */
        if (probe_outcome_is_failure(o) && !streq_ptr(e->last_error, error))
                log_warning("Probe of %s failed (%s): %s", e->config->url,
                            probe_outcome_to_string(o), error);
        else if (!probe_outcome_is_failure(o) && probe_outcome_is_failure(e->last_outcome))
                log_info("Probe of %s succeeds again.", e->config->url);

        e->last_outcome = o;
        e->last_status = status;
        if (!streq_ptr(e->last_error, error))
                (void) free_and_strdup(&e->last_error, error);
        return changed;
}

static void feed_tracker(Endpoint *e, bool success, const char *state) {
        _cleanup_(freep) char *old = NULL;
        bool was_failing = e->tracker.failing;
        int r;

        r = success ? probe_tracker_success(&e->tracker, state, &old)
                    : probe_tracker_failure(&e->tracker, &old);
        if (r < 0) {
                log_oom();
                return;
        }
        if (!was_failing && e->tracker.failing)
                log_warning("Endpoint %zu (%s) failed %u times in a row%s%s%s.", e->index,
                            e->config->url, e->tracker.failures,
                            e->tracker.failure_state ? ": applying failure state \"" : "",
                            strempty(e->tracker.failure_state),
                            e->tracker.failure_state ? "\"" : ", its state is kept");
        if (r > 0) {
                e->n_state_changes++;
                manager_endpoint_state_changed(e->manager, e, old, e->tracker.state);
        }
}

/* After a 3xx answer: 1 when the probe was sent on to the redirect's target (same host, within
 * the limit and the endpoint's timeout), else a negative errno with the reason in err. */
static int follow_redirect(Endpoint *e, long status, const char *location, char *err,
                           size_t err_size) {
        const ProbeEndpoint *c = e->config;
        _cleanup_(freep) char *next = NULL;
        bool same_method;
        int r;

        r = probe_redirect_next(e->hop_url ?: c->url, status, location, e->redirects, &next, err,
                                err_size);
        if (r < 0)
                return r;

        /* Once a 301/302/303 has turned the request into a GET, it stays one. */
        same_method = (!e->hop_url || e->same_method) &&
                      probe_redirect_keeps_method(status, c->method);
        free(e->hop_url);
        e->hop_url = TAKE_PTR(next);
        e->redirects++;
        e->same_method = same_method;
        e->body_len = 0;
        e->truncated = false;
        r = endpoint_send(e, e->hop_url, same_method);
        if (r == -ETIMEDOUT) {
                snprintf(err, err_size, "no answer within %us", c->timeout_sec);
                return r;
        }
        if (r < 0) {
                snprintf(err, err_size, "cannot follow the redirect: %s", strerror(-r));
                return r;
        }
        log_debug("Probe of %s: HTTP status %ld, following the redirect to %s", c->url, status,
                  e->hop_url);
        return 1;
}

static void on_done(ProbeHttp *h, const ProbeHttpResult *res, void *userdata) {
        Endpoint *e = userdata;
        CURLcode result = res->code;
        Manager *m = e->manager;
        const ProbeEndpoint *c = e->config;
        char err[512] = "";
        _cleanup_(freep) char *state = NULL;
        ProbeOutcome o = PROBE_OUTCOME_SUCCESS;
        long status = res->status;
        uint64_t now = 0;
        int redirect_r = 0;
        bool answered, changed, was_failing = e->tracker.failing;

        answered = result == CURLE_OK || (result == CURLE_WRITE_ERROR && e->truncated);
        if (answered && probe_status_is_redirect(status)) {
                /* A redirect's page is never a state: follow it, or the probe fails. */
                redirect_r = follow_redirect(e, status, res->redirect_url, err, sizeof err);
                if (redirect_r > 0)
                        return;   /* the same probe goes on at the new URL */
        }

        e->probing = false;
        (void) sd_event_now(m->event, CLOCK_MONOTONIC, &now);
        e->last_duration_usec = now > e->started_usec ? now - e->started_usec : 0;
        e->last_probe_realtime = 0;
        (void) sd_event_now(m->event, CLOCK_REALTIME, &e->last_probe_realtime);
        e->n_probes++;

        if (answered && probe_status_is_redirect(status)) {
                if (redirect_r == -ENOMEM) {
                        log_oom();
                        snprintf(err, sizeof err, "out of memory");
                }
                o = redirect_r == -ETIMEDOUT ? PROBE_OUTCOME_TIMEOUT
                    : redirect_r == -EREMOTE || redirect_r == -ENOENT ||
                                    redirect_r == -EPROTONOSUPPORT
                            ? PROBE_OUTCOME_BAD_STATUS
                            : PROBE_OUTCOME_HTTP_ERROR;
        } else if (answered) {
                if (!probe_status_ok(status, c->expected_status)) {
                        o = PROBE_OUTCOME_BAD_STATUS;
                        if (c->expected_status > 0)
                                snprintf(err, sizeof err, "HTTP status %ld, expected %d", status,
                                         c->expected_status);
                        else
                                snprintf(err, sizeof err, "HTTP status %ld, expected 200-399",
                                         status);
                } else {
                        int r = probe_body_state(e->body, e->body_len, c->json_path, &state, err,
                                                 sizeof err);
                        if (r == -ENOMEM) {
                                log_oom();
                                o = PROBE_OUTCOME_HTTP_ERROR;
                                snprintf(err, sizeof err, "out of memory");
                        } else if (r < 0)
                                o = PROBE_OUTCOME_BAD_BODY;
                }
        } else {
                /* The reason must be the same text each time the same thing goes wrong: it is
                 * compared to decide what to log and announce, so no timings from curl's
                 * error buffer (which says "after 1001 ms"). */
                long os_errno = res->os_errno;
                if (result == CURLE_OPERATION_TIMEDOUT) {
                        o = PROBE_OUTCOME_TIMEOUT;
                        snprintf(err, sizeof err, "no answer within %us", c->timeout_sec);
                } else if (result == CURLE_COULDNT_RESOLVE_HOST) {
                        o = PROBE_OUTCOME_CONNECT_ERROR;
                        snprintf(err, sizeof err, "%s",
                                 !isempty(res->error) ? res->error : probe_http_strerror(result));
                } else {
                        o = result == CURLE_COULDNT_CONNECT ? PROBE_OUTCOME_CONNECT_ERROR
                                                            : PROBE_OUTCOME_HTTP_ERROR;
                        if (result == CURLE_BAD_CONTENT_ENCODING && !isempty(res->error))
                                /* Which transfer coding (no timings in that text). */
                                snprintf(err, sizeof err, "%s: %s", probe_http_strerror(result),
                                         res->error);
                        else if (os_errno > 0)
                                snprintf(err, sizeof err, "%s: %s", probe_http_strerror(result),
                                         strerror((int) os_errno));
                        else
                                snprintf(err, sizeof err, "%s", probe_http_strerror(result));
                }
        }

        if (probe_outcome_is_failure(o))
                e->n_failures++;
        changed = record(e, o, status, probe_outcome_is_failure(o) ? err : NULL);

        if (o == PROBE_OUTCOME_SUCCESS && !streq_ptr(e->last_state, state)) {
                free(e->last_state);
                e->last_state = TAKE_PTR(state);
                changed = true;
        }

        uint64_t changes_before = e->n_state_changes;
        feed_tracker(e, o == PROBE_OUTCOME_SUCCESS, e->last_state);
        if (changes_before != e->n_state_changes || was_failing != e->tracker.failing)
                changed = true;

        if (changed)
                probe_bus_emit_endpoint_changed(e);
        log_debug("Probe of %s: %s in %" PRIu64 " us (status %ld)", c->url,
                  probe_outcome_to_string(o), e->last_duration_usec, status);

        schedule_next(e);
}

static int probe_start(Endpoint *e) {
        Manager *m = e->manager;
        int r;

        e->body_len = 0;
        e->truncated = false;
        (void) sd_event_now(m->event, CLOCK_MONOTONIC, &e->started_usec);
        e->redirects = 0;
        /* A redirected last probe starts again at the configured URL. */
        e->hop_url = mfree(e->hop_url);
        if (!okg_curl_loaded() && !probe_http_direct(e->config->url)) {
                /* The first probe through curl loads it: that may take a while on a busy
                 * node, so the probe, its timeout and the next one count from after that. */
                (void) okg_curl_load();
                e->started_usec = okg_now_usec();
        }
        r = endpoint_send(e, e->config->url, true);
        if (r < 0) {
                log_warning_errno(r, "Cannot start a probe of %s, trying again later: %m",
                                  e->config->url);
                schedule_next(e);
                return r;
        }
        e->probing = true;
        return 0;
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Endpoint *e = userdata;

        if (!e->probing)
                (void) probe_start(e);
        return 0;
}

int endpoint_start(Endpoint *e, uint64_t delay_usec) {
        uint64_t now = 0;
        int r;

        r = sd_event_now(e->manager->event, CLOCK_MONOTONIC, &now);
        if (r < 0)
                return r;
        return arm_timer(e, now + delay_usec);
}

int endpoint_probe_now(Endpoint *e) {
        int r;

        if (e->probing)
                return 0;
        (void) okg_timer_disarm(e->timer);
        r = probe_start(e);
        return r < 0 ? r : 1;
}
