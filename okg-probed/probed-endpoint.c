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

/* Points the handle at url with the endpoint's method and body, or (same_method false, after a
 * 301/302/303) a plain GET without a body, and the endpoint's timeout less what the probe
 * has used so far. The handle keeps its options across probes, so every option a redirect
 * may change is set here each time. */
static int endpoint_set_request(Endpoint *e, const char *url, bool same_method) {
        const ProbeEndpoint *c = e->config;
        CURL *easy = e->easy;
        uint64_t timeout_ms = (uint64_t) c->timeout_sec * 1000, used_ms = 0, now = 0;
        bool ok;

        if (e->redirects > 0) {
                (void) sd_event_now(e->manager->event, CLOCK_MONOTONIC, &now);
                used_ms = now > e->started_usec ? (now - e->started_usec) / 1000 : 0;
                if (used_ms >= timeout_ms)
                        return -ETIMEDOUT;
                timeout_ms -= used_ms;
        }
        ok = curl_easy_setopt(easy, CURLOPT_URL, url) == CURLE_OK &&
             curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long) timeout_ms) == CURLE_OK &&
             curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, (long) timeout_ms) == CURLE_OK &&
             curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, NULL) == CURLE_OK &&
             curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L) == CURLE_OK;
        if (!ok || !same_method)
                return ok ? 0 : -EIO;

        if (streq(c->method, "HEAD"))
                ok = curl_easy_setopt(easy, CURLOPT_NOBODY, 1L) == CURLE_OK;
        else if (streq(c->method, "POST") || c->body) {
                /* The config outlives the handle, so curl may point at its string. */
                const char *b = c->body ?: "";
                ok = curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE, (long) strlen(b)) == CURLE_OK &&
                     curl_easy_setopt(easy, CURLOPT_POSTFIELDS, b) == CURLE_OK;
                if (ok && !streq(c->method, "POST"))
                        ok = curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, c->method) == CURLE_OK;
        } else if (!streq(c->method, "GET"))
                ok = curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, c->method) == CURLE_OK;
        return ok ? 0 : -EIO;
}

static void endpoint_drop_curl(Endpoint *e) {
        if (e->easy) {
                curl_glue_remove(e->manager->glue, e->easy);
                curl_easy_cleanup(e->easy);
                e->easy = NULL;
        }
        curl_slist_free_all(e->headers);
        e->headers = NULL;
}

static int endpoint_setup_curl(Endpoint *e) {
        const ProbeEndpoint *c = e->config;
        CURL *easy;

        easy = curl_easy_init();
        if (!easy)
                return -ENOMEM;
        e->easy = easy;

        for (size_t i = 0; i < c->n_headers; i++) {
                _cleanup_(freep) char *h = NULL;
                struct curl_slist *l;

                /* "Name;" is how curl sends a header with an empty value. */
                if (isempty(c->headers[i].value)
                            ? asprintf(&h, "%s;", c->headers[i].key) < 0
                            : asprintf(&h, "%s: %s", c->headers[i].key, c->headers[i].value) < 0)
                        return -ENOMEM;
                l = curl_slist_append(e->headers, h);
                if (!l)
                        return -ENOMEM;
                e->headers = l;
        }
        if (c->body && !streq(c->method, "HEAD")) {
                /* No 100-continue round trip for a probe. */
                struct curl_slist *l = curl_slist_append(e->headers, "Expect:");
                if (!l)
                        return -ENOMEM;
                e->headers = l;
        }

        bool ok = curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK &&
                  curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
                  /* Probes go to the game directly, never through a proxy (as kubelet's). */
                  curl_easy_setopt(easy, CURLOPT_NOPROXY, "*") == CURLE_OK &&
                  curl_easy_setopt(easy, CURLOPT_USERAGENT, "okg-probed/" OKG_VERSION) == CURLE_OK &&
                  /* kubelet does not verify a probe's certificate either: the game's is often
                   * self-signed, and the probe carries no secret of ours. */
                  curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 0L) == CURLE_OK &&
                  curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 0L) == CURLE_OK &&
                  /* Redirects are followed by on_done(), like kubelet: same host only. */
                  curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L) == CURLE_OK &&
                  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_body) == CURLE_OK &&
                  curl_easy_setopt(easy, CURLOPT_WRITEDATA, e) == CURLE_OK &&
                  curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, e->curl_error) == CURLE_OK &&
                  curl_easy_setopt(easy, CURLOPT_HTTPHEADER, e->headers) == CURLE_OK;
        if (!ok)
                return -EIO;

        return endpoint_set_request(e, c->url, true);
}

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
        /* The curl handle is made by the first probe (probe_start()): until then okg-probed
         * does not load libcurl, which with its thirty libraries is most of its memory
         * (docs/footprint.md). */

        *ret = TAKE_PTR(e);
        return 0;
}

Endpoint *endpoint_free(Endpoint *e) {
        if (!e)
                return NULL;
        endpoint_drop_curl(e);
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
static void on_done(CurlGlue *g, CURL *easy, CURLcode result, void *userdata);

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
static int follow_redirect(Endpoint *e, long status, char *err, size_t err_size) {
        const ProbeEndpoint *c = e->config;
        _cleanup_(freep) char *next = NULL;
        char *location = NULL;   /* owned by curl */
        bool same_method;
        int r;

        (void) curl_easy_getinfo(e->easy, CURLINFO_REDIRECT_URL, &location);
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
        r = endpoint_set_request(e, e->hop_url, same_method);
        if (r == -ETIMEDOUT) {
                snprintf(err, err_size, "no answer within %us", c->timeout_sec);
                return r;
        }
        if (r >= 0) {
                e->body_len = 0;
                e->truncated = false;
                e->curl_error[0] = 0;
                r = curl_glue_add(e->manager->glue, e->easy, on_done, e);
        }
        if (r < 0) {
                snprintf(err, err_size, "cannot follow the redirect: %s", strerror(-r));
                return r;
        }
        log_debug("Probe of %s: HTTP status %ld, following the redirect to %s", c->url, status,
                  e->hop_url);
        return 1;
}

static void on_done(CurlGlue *g, CURL *easy, CURLcode result, void *userdata) {
        Endpoint *e = userdata;
        Manager *m = e->manager;
        const ProbeEndpoint *c = e->config;
        char err[512] = "";
        _cleanup_(freep) char *state = NULL;
        ProbeOutcome o = PROBE_OUTCOME_SUCCESS;
        long status = 0;
        uint64_t now = 0;
        int redirect_r = 0;
        bool answered, changed, was_failing = e->tracker.failing;

        (void) curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
        answered = result == CURLE_OK || (result == CURLE_WRITE_ERROR && e->truncated);
        if (answered && probe_status_is_redirect(status)) {
                /* A redirect's page is never a state: follow it, or the probe fails. */
                redirect_r = follow_redirect(e, status, err, sizeof err);
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
                long os_errno = 0;
                (void) curl_easy_getinfo(easy, CURLINFO_OS_ERRNO, &os_errno);
                if (result == CURLE_OPERATION_TIMEDOUT) {
                        o = PROBE_OUTCOME_TIMEOUT;
                        snprintf(err, sizeof err, "no answer within %us", c->timeout_sec);
                } else if (result == CURLE_COULDNT_RESOLVE_HOST) {
                        o = PROBE_OUTCOME_CONNECT_ERROR;
                        snprintf(err, sizeof err, "%s",
                                 e->curl_error[0] ? e->curl_error : curl_easy_strerror(result));
                } else {
                        o = result == CURLE_COULDNT_CONNECT ? PROBE_OUTCOME_CONNECT_ERROR
                                                            : PROBE_OUTCOME_HTTP_ERROR;
                        if (os_errno > 0)
                                snprintf(err, sizeof err, "%s: %s", curl_easy_strerror(result),
                                         strerror((int) os_errno));
                        else
                                snprintf(err, sizeof err, "%s", curl_easy_strerror(result));
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
        e->curl_error[0] = 0;
        (void) sd_event_now(m->event, CLOCK_MONOTONIC, &e->started_usec);
        e->redirects = 0;
        if (!e->easy) {
                /* The first probe: libcurl is loaded here (once per process). A handle half
                 * made goes, so that the next probe starts again from nothing. */
                r = endpoint_setup_curl(e);
                if (r < 0) {
                        endpoint_drop_curl(e);
                        log_warning_errno(r, "Cannot start a probe of %s, trying again later: %m",
                                          e->config->url);
                        schedule_next(e);
                        return r;
                }
                /* Loading may have taken a while (on a busy node, a good part of a second):
                 * the probe, its timeout and the next probe's time count from now. */
                e->started_usec = okg_now_usec();
        } else if (e->hop_url) {
                /* The last probe was redirected: start again at the configured URL. hop_url
                 * goes only once the handle no longer points there, so a failure here is
                 * retried by the next probe. */
                r = endpoint_set_request(e, e->config->url, true);
                if (r < 0) {
                        log_warning_errno(r, "Cannot start a probe of %s, trying again later: %m",
                                          e->config->url);
                        schedule_next(e);
                        return r;
                }
                e->hop_url = mfree(e->hop_url);
        }

        r = curl_glue_add(m->glue, e->easy, on_done, e);
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
