/* The pod as okg-storaged last saw it, kept fresh by one watch on it (re-opened when it ends,
 * with long timeouts, so a steady state costs a few requests an hour), and the pod conditions
 * okg-storaged wrote (Storage1.SetPodConditions) re-asserted when someone else removed them:
 * some virtual-kubelet providers replace the whole pod status. Re-asserts are bounded (see
 * reassert_due()), so a writer that keeps wiping them does not start a storm. The pod is
 * read (GET) at start for its uid (for Events) and its GameServerSet, and again after the
 * watch said 410 Gone. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "macro.h"
#include "okg-event.h"
#include "okg-util.h"
#include "storaged-manager.h"

#define OWNER_GSS_LABEL "game.kruise.io/owner-gss"

/* The watch's timeoutSeconds, +-20 %: about three requests an hour while nothing changes.
 * $OKG_STORAGED_WATCH_TIMEOUT_SEC overrides it (for tests). */
#define WATCH_TIMEOUT_SEC 1200
/* After a refusal (403: no "watch" on pods in the Role), try again this much later. */
#define WATCH_REFUSED_RETRY_USEC (300 * USEC_PER_SEC)

static const char *pod_rv_of(json_object *pod) {
        json_object *meta, *rv;

        if (!json_object_object_get_ex(pod, "metadata", &meta) ||
            !json_object_object_get_ex(meta, "resourceVersion", &rv) ||
            !json_object_is_type(rv, json_type_string))
                return NULL;
        return json_object_get_string(rv);
}

json_object *manager_pod(Manager *m) {
        if (m->local)
                return local_store_get(m->local, OBJECT_POD, m->namespace, m->pod);
        return m->pod_object;
}

const char *manager_pod_resource_version(Manager *m) {
        if (m->local)
                return strempty(pod_rv_of(manager_pod(m)));
        return strempty(m->pod_rv);
}

void podwatch_seen(Manager *m, json_object *pod) {
        ObjectSlot *s = &m->objects[OBJECT_POD_STATUS];
        const char *rv = pod_rv_of(pod);
        bool newer = resource_version_newer(rv, m->pod_rv);
        size_t dropped, yielded;

        if (!newer && m->pod_rv && !streq_ptr(rv, m->pod_rv))
                return; /* older than what we know: an answer that crossed a watch event */
        if (newer) {
                json_object_put(m->pod_object);
                m->pod_object = json_object_get(pod);
                (void) free_and_strdup(&m->pod_rv, rv);
                if (resource_version_newer(rv, m->watch_rv))
                        (void) free_and_strdup(&m->watch_rv, rv);
        }
        yielded = object_yielded(&s->object);
        dropped = object_check(&s->object, pod);
        if (object_yielded(&s->object) > yielded) {
                log_warning("%zu pod condition(s) okg-storaged wrote now hold a value it never wrote "
                            "on pod %s/%s: another writer (kruise-daemon?) serves them; leaving them "
                            "alone until they are written again.",
                            object_yielded(&s->object) - yielded, m->namespace, m->pod);
                storaged_bus_changed(m);
        }
        if (dropped > 0) {
                log_warning("%zu pod condition(s) okg-storaged wrote are no longer on pod %s/%s "
                            "(its status was replaced); writing them again.", dropped, m->namespace,
                            m->pod);
                m->reassert_wanted = true;
        }
        if (newer || dropped > 0)
                storaged_bus_changed(m);
        if (object_needs_write(&s->object))
                manager_object_dispatch(s); /* a recreated pod gets them again too */
}

static int on_reassert_timer(sd_event_source *src, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        manager_object_dispatch(&m->objects[OBJECT_POD_STATUS]);
        return 0;
}

bool podwatch_may_send(Manager *m) {
        uint64_t now = okg_now_usec(), due;

        if (!m->reassert_wanted)
                return true;
        due = reassert_due(&m->reassert, now);
        if (due > now) {
                log_debug("Re-asserting the pod conditions in %llu ms.",
                          (unsigned long long) ((due - now) / USEC_PER_MSEC));
                if (okg_timer_arm(m->event, &m->reassert_timer, due - now, 0, on_reassert_timer, m, NULL) < 0)
                        log_error("Cannot arm the re-assert timer.");
                return false;
        }
        reassert_sent(&m->reassert, now);
        m->reassert_wanted = false;
        return true;
}

void podwatch_written(Manager *m) {
        if (!m->reassert_wanted)
                return;
        reassert_sent(&m->reassert, okg_now_usec());
        m->reassert_wanted = false;
        (void) okg_timer_disarm(m->reassert_timer);
}

static void watch_line(KubeClient *k, const char *line, size_t len, void *userdata) {
        Manager *m = userdata;
        json_object *ev = json_tokener_parse(line), *type, *obj, *code;
        const char *t;

        if (!ev || !json_object_object_get_ex(ev, "type", &type) ||
            !json_object_object_get_ex(ev, "object", &obj)) {
                log_debug("Ignoring a line of the pod watch that is not an event.");
                json_object_put(ev);
                return;
        }
        m->watch_events++;
        t = json_object_get_string(type);
        if (streq(t, "ADDED") || streq(t, "MODIFIED"))
                podwatch_seen(m, obj);
        else if (streq(t, "BOOKMARK")) {
                const char *rv = pod_rv_of(obj);
                if (rv)
                        (void) free_and_strdup(&m->watch_rv, rv);
        } else if (streq(t, "DELETED")) {
                /* The watch (by name) goes on and shows a pod created again under the name;
                 * its new uid makes the conditions go out again. */
                log_warning("Pod %s/%s was deleted; its conditions are written again when it is "
                            "back.", m->namespace, m->pod);
                (void) object_forget_acked(&m->objects[OBJECT_POD_STATUS].object);
        } else if (streq(t, "ERROR")) {
                /* 410 Gone: the resourceVersion is too old to resume from. */
                if (json_object_object_get_ex(obj, "code", &code) && json_object_get_int(code) == 410)
                        log_info("The pod watch expired; reading the pod again.");
                else
                        log_warning("The pod watch reported an error: %s",
                                    json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN));
                m->watch_gone = true;
        }
        json_object_put(ev);
}

static int on_watch_timer(sd_event_source *src, uint64_t usec, void *userdata) {
        podwatch_start(userdata);
        return 0;
}

static void on_watch_done(KubeClient *k, const KubeResponse *r, void *userdata) {
        Manager *m = userdata;
        KubeOutcome outcome = kube_classify(r->curl, r->status);
        uint64_t delay;

        m->watch_running = false;
        switch (watch_end_decide(m->watch_gone, r->status, outcome, m->watch_events,
                                 m->watch_started_usec, m->watch_timeout_usec, okg_now_usec())) {
        case WATCH_END_READ_AGAIN:
                m->watch_gone = false;
                manager_pod_refetch(m);
                return;
        case WATCH_END_REOPEN:
                m->watch_attempts = 0;
                podwatch_start(m);
                return;
        case WATCH_END_REFUSED:
                log_warning("The API server refused to watch pod %s/%s (HTTP %ld): %s; conditions "
                            "removed by someone else are not noticed (does the Role allow "
                            "\"watch\" on pods?). Trying again in %llu s.", m->namespace, m->pod,
                            r->status, strempty(r->message),
                            (unsigned long long) (WATCH_REFUSED_RETRY_USEC / USEC_PER_SEC));
                manager_set_last_error(m, r->message);
                delay = WATCH_REFUSED_RETRY_USEC;
                break;
        case WATCH_END_BACKOFF:
        default:
                log_debug("The pod watch ended (%s); opening it again.", strempty(r->message));
                delay = manager_backoff(m, ++m->watch_attempts, r->retry_after_usec);
                break;
        }
        if (okg_timer_arm(m->event, &m->watch_timer, delay, 0, on_watch_timer, m, NULL) < 0)
                log_error("Cannot arm the pod watch timer.");
}

uint64_t podwatch_timeout_sec(void) {
        const char *e = getenv("OKG_STORAGED_WATCH_TIMEOUT_SEC");
        char *end;
        unsigned long v;

        if (isempty(e))
                return WATCH_TIMEOUT_SEC;
        errno = 0;
        v = strtoul(e, &end, 10);
        if (errno != 0 || *end || v < 1 || v > 86400)
                return WATCH_TIMEOUT_SEC;
        return v;
}

void podwatch_start(Manager *m) {
        _cleanup_(freep) char *path = NULL;
        unsigned timeout;
        int r;

        if (!m->kube || m->watch_running || !m->watch_rv || m->draining)
                return;
        timeout = (unsigned) (manager_jitter(m, podwatch_timeout_sec() * USEC_PER_SEC) / USEC_PER_SEC);
        if (timeout < 1)
                timeout = 1;
        if (asprintf(&path, "/api/v1/namespaces/%s/pods?watch=1&fieldSelector=metadata.name%%3D%s"
                     "&resourceVersion=%s&allowWatchBookmarks=true&timeoutSeconds=%u",
                     m->namespace, m->pod, m->watch_rv, timeout) < 0)
                return;
        r = kube_watch(m->kube, path, (uint64_t) (timeout + 60) * USEC_PER_SEC, watch_line,
                       on_watch_done, m);
        if (r < 0) {
                log_warning_errno(r, "Cannot open the pod watch: %m");
                (void) okg_timer_arm(m->event, &m->watch_timer,
                                     manager_backoff(m, ++m->watch_attempts, 0), 0, on_watch_timer, m,
                                     NULL);
                return;
        }
        m->watch_running = true;
        m->watch_events = 0;
        m->watch_started_usec = okg_now_usec();
        m->watch_timeout_usec = (uint64_t) timeout * USEC_PER_SEC;
}

void podwatch_done(Manager *m) {
        json_object_put(m->pod_object);
        m->pod_object = NULL;
        m->pod_rv = mfree(m->pod_rv);
        m->watch_rv = mfree(m->watch_rv);
        m->watch_timer = sd_event_source_disable_unref(m->watch_timer);
        m->reassert_timer = sd_event_source_disable_unref(m->reassert_timer);
}

/* ---- reading the pod: its GameServerSet and uid ---- */

void manager_pod_learned(Manager *m, json_object *pod) {
        json_object *meta, *labels, *v;

        if (json_object_object_get_ex(pod, "metadata", &meta)) {
                if (json_object_object_get_ex(meta, "uid", &v))
                        (void) free_and_strdup(&m->pod_uid, json_object_get_string(v));
                if (json_object_object_get_ex(meta, "labels", &labels) &&
                    json_object_object_get_ex(labels, OWNER_GSS_LABEL, &v)) {
                        if (!streq_ptr(m->gss, json_object_get_string(v)))
                                log_info("Pod %s belongs to GameServerSet %s.", m->pod,
                                         json_object_get_string(v));
                        (void) free_and_strdup(&m->gss, json_object_get_string(v));
                        m->pod_has_gss_label = true;
                }
        }
        m->pod_known = true;
        storaged_bus_changed(m);
}

static int on_pod_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        manager_pod_fetch(userdata);
        return 0;
}

static void on_pod_answer(KubeClient *k, const KubeResponse *r, void *userdata) {
        Manager *m = userdata;
        json_object *pod;

        m->pod_fetch_inflight = false;
        if (kube_classify(r->curl, r->status) == KUBE_OK) {
                pod = json_tokener_parse(r->body);
                if (pod) {
                        m->pod_attempts = 0;
                        manager_pod_learned(m, pod);
                        podwatch_seen(m, pod);
                        json_object_put(pod);
                        podwatch_start(m);
                        return;
                }
        }
        log_warning("Cannot read pod %s/%s yet: %s", m->namespace, m->pod, strempty(r->message));
        manager_set_last_error(m, r->message);
        m->pod_attempts++;
        (void) okg_timer_arm(m->event, &m->pod_timer,
                             manager_backoff(m, m->pod_attempts, r->retry_after_usec), 0,
                             on_pod_retry, m, NULL);
}

void manager_pod_fetch(Manager *m) {
        _cleanup_(freep) char *path = NULL;

        if (m->pod_known || m->pod_fetch_inflight || !m->kube)
                return;
        if (manager_object_path(m, OBJECT_POD, false, &path) < 0)
                return;
        if (kube_request(m->kube, "GET", path, NULL, NULL, on_pod_answer, m) >= 0)
                m->pod_fetch_inflight = true;
}

void manager_pod_refetch(Manager *m) {
        /* A pod that came back is a new object: what was known of the old one goes. */
        m->pod_rv = mfree(m->pod_rv);
        m->watch_rv = mfree(m->watch_rv);
        m->pod_known = false;
        manager_pod_fetch(m);
}
