/* The PodProbeMarkers the pod names (its kruise.io/podprobemarker-list annotation), followed for
 * the service_quality plugin (Storage1.GetPodProbeMarkers, PodProbeMarkersVersion): so an edit
 * of a GameServerSet's serviceQualities, which OKG turns into an edit of its PodProbeMarker,
 * reaches a running pod. Each marker is read once (a list by name, which also gives a
 * resourceVersion to watch from when it does not exist) and then followed by one watch,
 * re-opened when it ends (long timeouts: a few requests an hour each), read again after 410
 * Gone. Nothing is followed until the first GetPodProbeMarkers, so a suite without the plugin
 * pays nothing. With the local store the markers are files <state-dir>/podprobemarkers/NAME.json,
 * followed with inotify. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>

#include "log.h"
#include "macro.h"
#include "okg-bus-api.h"
#include "okg-event.h"
#include "okg-json.h"
#include "okg-kube-names.h"
#include "okg-list.h"
#include "okg-util.h"
#include "storaged-manager.h"

#define PPM_LIST_ANNOTATION "kruise.io/podprobemarker-list"
#define PPM_API "/apis/apps.kruise.io/v1alpha1/namespaces"
/* After a refusal (403: no get/list/watch of podprobemarkers; 404: the CRD is not installed). */
#define PPM_REFUSED_RETRY_USEC (300 * USEC_PER_SEC)
/* A pod naming more markers than this is not followed beyond them. */
#define PPM_MAX 16
#define PPM_FILE_MAX (1024 * 1024)

typedef enum PpmState {
        PPM_PENDING,       /* not read yet */
        PPM_FOUND,
        PPM_NOT_FOUND,
        PPM_ERROR,
} PpmState;

static const char *const ppm_state_names[] = {
        [PPM_PENDING] = "pending",
        [PPM_FOUND] = "found",
        [PPM_NOT_FOUND] = "notfound",
        [PPM_ERROR] = "error",
};

typedef struct Ppm Ppm;
struct Ppm {
        PpmWatch *owner;
        LIST_FIELDS(Ppm, ppms);
        char *name;
        bool wanted;             /* the pod names it */
        PpmState state;
        char *json;              /* PPM_FOUND: the object */
        char *message;           /* otherwise: why */
        char *rv;                /* where the watch resumes */
        bool inflight;           /* a list or a watch is under way */
        bool watching;           /* ... and it is the watch */
        bool gone;               /* the watch said 410 Gone: list again */
        unsigned attempts, events;
        uint64_t started_usec, timeout_usec;
        sd_event_source *timer;
};

struct PpmWatch {
        Manager *manager;
        Ppm *head;
        uint64_t version;        /* PodProbeMarkersVersion: changes with any marker */
        char *dir;               /* the local store's markers */
        sd_event_source *inotify;
};

static void ppm_start(Ppm *p);

static Ppm *ppm_free(Ppm *p) {
        if (!p)
                return NULL;
        sd_event_source_disable_unref(p->timer);
        free(p->name);
        free(p->json);
        free(p->message);
        free(p->rv);
        free(p);
        return NULL;
}

PpmWatch *ppmwatch_free(PpmWatch *w) {
        if (!w)
                return NULL;
        /* The Kubernetes client (and so every request in flight) is gone before this. */
        while (w->head) {
                Ppm *p = w->head;
                LIST_REMOVE(ppms, w->head, p);
                ppm_free(p);
        }
        sd_event_source_disable_unref(w->inotify);
        free(w->dir);
        free(w);
        return NULL;
}

uint64_t ppmwatch_version(Manager *m) {
        return m->ppmwatch ? m->ppmwatch->version : 0;
}

static void ppm_changed(PpmWatch *w) {
        w->version++;
        storaged_bus_changed(w->manager);
}

/* Sets what is known of a marker; announces it when it differs. */
static void ppm_set(Ppm *p, PpmState state, const char *json, const char *message) {
        if (p->state == state && streq_ptr(p->json, json) && streq_ptr(p->message, message))
                return;
        if (p->state != state)
                log_info("PodProbeMarker %s: %s%s%s", p->name, ppm_state_names[state],
                         message ? ": " : "", strempty(message));
        p->state = state;
        (void) free_and_strdup(&p->json, json);
        (void) free_and_strdup(&p->message, message);
        if (p->wanted)
                ppm_changed(p->owner);
}

static const char *meta_str(json_object *o, const char *key) {
        json_object *meta, *v;

        if (!json_object_object_get_ex(o, "metadata", &meta) ||
            !json_object_object_get_ex(meta, key, &v) || !json_object_is_type(v, json_type_string))
                return NULL;
        return json_object_get_string(v);
}

static void ppm_found(Ppm *p, json_object *obj) {
        ppm_set(p, PPM_FOUND,
                json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE),
                NULL);
}

/* ---- the local store: a file per marker ---- */

static void local_read(Ppm *p) {
        PpmWatch *w = p->owner;
        _cleanup_(freep) char *path = NULL, *text = NULL, *why = NULL;
        _cleanup_(json_object_putp) json_object *obj = NULL;
        int r;

        if (asprintf(&path, "%s/%s.json", w->dir, p->name) < 0)
                return;
        r = okg_read_file(path, PPM_FILE_MAX, &text, NULL);
        if (r == -ENOENT) {
                if (asprintf(&why, "no file %s", path) >= 0)
                        ppm_set(p, PPM_NOT_FOUND, NULL, why);
                return;
        }
        if (r >= 0)
                obj = json_tokener_parse(text);
        if (r < 0 || !json_object_is_type(obj, json_type_object)) {
                if (asprintf(&why, "%s: %s", path, r < 0 ? okg_file_strerror(r) : "not a JSON object") >= 0)
                        ppm_set(p, PPM_ERROR, NULL, why);
                return;
        }
        ppm_found(p, obj);
}

static int on_local_change(sd_event_source *s, const struct inotify_event *ev, void *userdata) {
        PpmWatch *w = userdata;
        Ppm *p;

        LIST_FOREACH(ppms, p, w->head)
                if (p->wanted)
                        local_read(p);
        return 0;
}

static int local_setup(PpmWatch *w) {
        Manager *m = w->manager;
        int r;

        if (w->dir)
                return 0;
        if (asprintf(&w->dir, "%s/podprobemarkers", m->state_dir) < 0) {
                w->dir = NULL;
                return -ENOMEM;
        }
        r = okg_mkdir_p(w->dir, 0755);
        if (r < 0)
                return log_warning_errno(r, "Cannot create %s: %m", w->dir);
        r = sd_event_add_inotify(m->event, &w->inotify, w->dir,
                                 IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_CREATE |
                                 IN_ONLYDIR,
                                 on_local_change, w);
        if (r < 0)
                /* Still read on every GetPodProbeMarkers, only later. */
                log_warning_errno(r, "Cannot watch %s for changes: %m", w->dir);
        return 0;
}

/* ---- Kubernetes: a list by name, then a watch ---- */

/* A request ended with nobody wanting the marker any more: it goes. */
static bool ppm_reap(Ppm *p) {
        if (p->wanted)
                return false;
        LIST_REMOVE(ppms, p->owner->head, p);
        ppm_free(p);
        return true;
}

static int on_ppm_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        ppm_start(userdata);
        return 0;
}

static void ppm_retry(Ppm *p, uint64_t delay) {
        if (okg_timer_arm(p->owner->manager->event, &p->timer, delay, 0, on_ppm_timer, p, NULL) < 0)
                log_error("Cannot arm the PodProbeMarker %s timer.", p->name);
}

static void watch_line(KubeClient *k, const char *line, size_t len, void *userdata) {
        Ppm *p = userdata;
        _cleanup_(json_object_putp) json_object *ev = json_tokener_parse(line);
        json_object *type, *obj, *code;
        const char *t, *rv;

        if (!ev || !json_object_object_get_ex(ev, "type", &type) ||
            !json_object_object_get_ex(ev, "object", &obj))
                return;
        p->events++;
        t = json_object_get_string(type);
        rv = meta_str(obj, "resourceVersion");
        if (streq(t, "ERROR")) {
                if (json_object_object_get_ex(obj, "code", &code) && json_object_get_int(code) == 410)
                        log_info("The watch of PodProbeMarker %s expired; reading it again.", p->name);
                else
                        log_warning("The watch of PodProbeMarker %s reported an error: %s", p->name,
                                    json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN));
                p->gone = true;
                return;
        }
        if (rv)
                (void) free_and_strdup(&p->rv, rv);
        if (!p->wanted)
                return;
        if (streq(t, "ADDED") || streq(t, "MODIFIED"))
                ppm_found(p, obj);
        else if (streq(t, "DELETED")) {
                _cleanup_(freep) char *why = NULL;
                if (asprintf(&why, "PodProbeMarker %s/%s was deleted", p->owner->manager->namespace,
                             p->name) >= 0)
                        ppm_set(p, PPM_NOT_FOUND, NULL, why);
        }
}

static void on_watch_done(KubeClient *k, const KubeResponse *r, void *userdata) {
        Ppm *p = userdata;
        Manager *m = p->owner->manager;
        KubeOutcome outcome = kube_classify(r->curl, r->status);

        p->inflight = p->watching = false;
        if (ppm_reap(p))
                return;
        switch (watch_end_decide(p->gone, r->status, outcome, p->events, p->started_usec,
                                 p->timeout_usec, okg_now_usec())) {
        case WATCH_END_READ_AGAIN:
                p->gone = false;
                p->rv = mfree(p->rv);
                ppm_start(p);
                return;
        case WATCH_END_REOPEN:
                p->attempts = 0;
                ppm_start(p);
                return;
        case WATCH_END_REFUSED:
                /* What was read stays: the marker is only not followed until then. */
                log_warning("The API server refused to watch PodProbeMarker %s (HTTP %ld): %s; "
                            "its changes are not noticed (does the Role allow \"watch\" on "
                            "podprobemarkers?). Trying again in %llu s.", p->name, r->status,
                            strempty(r->message),
                            (unsigned long long) (PPM_REFUSED_RETRY_USEC / USEC_PER_SEC));
                manager_set_last_error(m, r->message);
                p->rv = mfree(p->rv);
                ppm_retry(p, PPM_REFUSED_RETRY_USEC);
                return;
        case WATCH_END_BACKOFF:
                ppm_retry(p, manager_backoff(m, ++p->attempts, r->retry_after_usec));
                return;
        }
}

static void ppm_watch(Ppm *p) {
        Manager *m = p->owner->manager;
        _cleanup_(freep) char *path = NULL;
        unsigned timeout;
        int r;

        timeout = (unsigned) (manager_jitter(m, podwatch_timeout_sec() * USEC_PER_SEC) / USEC_PER_SEC);
        if (timeout < 1)
                timeout = 1;
        if (asprintf(&path, PPM_API "/%s/podprobemarkers?watch=1&fieldSelector=metadata.name%%3D%s"
                     "&resourceVersion=%s&allowWatchBookmarks=true&timeoutSeconds=%u",
                     m->namespace, p->name, p->rv, timeout) < 0)
                return;
        r = kube_watch(m->kube, path, (uint64_t) (timeout + 60) * USEC_PER_SEC, watch_line,
                       on_watch_done, p);
        if (r < 0) {
                log_warning_errno(r, "Cannot open the watch of PodProbeMarker %s: %m", p->name);
                ppm_retry(p, manager_backoff(m, ++p->attempts, 0));
                return;
        }
        p->inflight = p->watching = true;
        p->events = 0;
        p->started_usec = okg_now_usec();
        p->timeout_usec = (uint64_t) timeout * USEC_PER_SEC;
}

static void on_list_done(KubeClient *k, const KubeResponse *r, void *userdata) {
        Ppm *p = userdata;
        Manager *m = p->owner->manager;
        KubeOutcome outcome = kube_classify(r->curl, r->status);
        _cleanup_(json_object_putp) json_object *list = NULL;
        json_object *items;
        const char *rv;

        p->inflight = false;
        if (ppm_reap(p))
                return;
        if (outcome == KUBE_OK)
                list = json_tokener_parse(r->body);
        rv = meta_str(list, "resourceVersion");
        if (list && rv && json_object_object_get_ex(list, "items", &items) &&
            json_object_is_type(items, json_type_array)) {
                p->attempts = 0;
                (void) free_and_strdup(&p->rv, rv);
                if (json_object_array_length(items) > 0)
                        ppm_found(p, json_object_array_get_idx(items, 0));
                else {
                        _cleanup_(freep) char *why = NULL;
                        if (asprintf(&why, "PodProbeMarker %s/%s does not exist", m->namespace,
                                     p->name) >= 0)
                                ppm_set(p, PPM_NOT_FOUND, NULL, why);
                }
                ppm_watch(p);
                return;
        }
        if (outcome == KUBE_OK)
                log_warning("The list of PodProbeMarker %s is not one.", p->name);
        else
                log_warning("Cannot read PodProbeMarker %s: %s", p->name, strempty(r->message));
        /* A refusal (403, a CRD that is not installed) is said and tried again much later; a
         * marker read before keeps its value through a passing failure. */
        if (outcome == KUBE_FATAL || outcome == KUBE_NOT_FOUND) {
                ppm_set(p, PPM_ERROR, NULL, r->message ?: "refused");
                ppm_retry(p, PPM_REFUSED_RETRY_USEC);
                return;
        }
        if (p->state != PPM_FOUND)
                ppm_set(p, PPM_ERROR, NULL, r->message ?: "no answer");
        ppm_retry(p, manager_backoff(m, ++p->attempts, r->retry_after_usec));
}

static void ppm_start(Ppm *p) {
        Manager *m = p->owner->manager;
        _cleanup_(freep) char *path = NULL;
        int r;

        if (!p->wanted || p->inflight)
                return;
        if (!m->kube) {
                local_read(p);
                return;
        }
        if (p->rv) {
                ppm_watch(p);
                return;
        }
        if (asprintf(&path, PPM_API "/%s/podprobemarkers?fieldSelector=metadata.name%%3D%s",
                     m->namespace, p->name) < 0)
                return;
        r = kube_request(m->kube, "GET", path, NULL, NULL, on_list_done, p);
        if (r < 0) {
                log_warning_errno(r, "Cannot read PodProbeMarker %s: %m", p->name);
                ppm_retry(p, manager_backoff(m, ++p->attempts, 0));
                return;
        }
        p->inflight = true;
}

/* ---- which markers ---- */

static bool follows_kube(PpmWatch *w) {
        return w->manager->kube;
}

static Ppm *ppm_find(PpmWatch *w, const char *name) {
        Ppm *p;
        LIST_FOREACH(ppms, p, w->head)
                if (streq(p->name, name))
                        return p;
        return NULL;
}

/* Follows the markers named by value (Kruise's webhook writes "a,b": sorted, comma-separated),
 * and no others. Returns the names in order (a strv). */
static int ppm_follow(PpmWatch *w, const char *value, char ***ret) {
        _cleanup_(strv_freep) char **names = NULL;
        size_t n = 0;
        Ppm *p, *next;

        names = calloc(PPM_MAX + 1, sizeof(char *));
        if (!names)
                return -ENOMEM;
        for (const char *s = strempty(value); *s && n < PPM_MAX;) {
                size_t len = strcspn(s, ",");
                _cleanup_(freep) char *name = strndup(s, len);
                bool dup = false;

                if (!name)
                        return -ENOMEM;
                s += len + (s[len] == ',');
                /* "a, b" written by hand: the blanks are no part of a name. */
                for (char *e = name + strlen(name); e > name && (e[-1] == ' ' || e[-1] == '\t');)
                        *--e = 0;
                memmove(name, name + strspn(name, " \t"), strlen(name + strspn(name, " \t")) + 1);
                for (size_t i = 0; i < n; i++)
                        dup = dup || streq(names[i], name);
                if (isempty(name) || dup)
                        continue;
                names[n++] = TAKE_PTR(name);
        }
        LIST_FOREACH(ppms, p, w->head)
                p->wanted = false;
        for (size_t i = 0; i < n; i++) {
                const char *why = kube_dns_subdomain_check(names[i]);

                bool fresh = false;

                p = ppm_find(w, names[i]);
                if (!p) {
                        fresh = true;
                        p = calloc(1, sizeof *p);
                        if (!p || !(p->name = strdup(names[i]))) {
                                free(p);
                                return -ENOMEM;
                        }
                        p->owner = w;
                        LIST_PREPEND(ppms, w->head, p);
                        if (why) {
                                _cleanup_(freep) char *msg = NULL;
                                if (asprintf(&msg, "not a PodProbeMarker name: %s", why) >= 0)
                                        ppm_set(p, PPM_ERROR, NULL, msg);
                        }
                        ppm_changed(w);
                }
                p->wanted = true;
                /* An existing one is followed already (or waits for its retry: asking again
                 * must not hurry a refused read); the local store is only a file to read. */
                if (!why && (fresh || !follows_kube(w)))
                        ppm_start(p);
        }
        /* Markers the pod no longer names go now, or when their request ends. */
        for (p = w->head; p; p = next) {
                next = p->ppms_next;
                if (p->wanted)
                        continue;
                ppm_changed(w);
                p->timer = sd_event_source_disable_unref(p->timer);
                if (!p->inflight) {
                        LIST_REMOVE(ppms, w->head, p);
                        ppm_free(p);
                }
        }
        *ret = TAKE_PTR(names);
        return 0;
}

/* Storage1.GetPodProbeMarkers: a(sss), per marker the pod names, in its order: name, state
 * ("found", "notfound", "error", "pending") and the object's JSON (found) or why. */
int ppmwatch_reply(Manager *m, sd_bus_message *call) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(strv_freep) char **names = NULL;
        json_object *pod = manager_pod(m), *meta, *ann, *v;
        const char *value = NULL;
        PpmWatch *w;
        int r;

        if (!pod)
                return sd_bus_reply_method_errorf(call, OKG_STORAGE_ERROR_NOT_KNOWN,
                                                  "the pod has not been read yet (or the local "
                                                  "store holds no pod)");
        if (!m->ppmwatch) {
                m->ppmwatch = calloc(1, sizeof(PpmWatch));
                if (!m->ppmwatch)
                        return -ENOMEM;
                m->ppmwatch->manager = m;
        }
        w = m->ppmwatch;
        if (!m->kube) {
                r = local_setup(w);
                if (r < 0)
                        return r;
        }
        if (json_object_object_get_ex(pod, "metadata", &meta) &&
            json_object_object_get_ex(meta, "annotations", &ann) &&
            json_object_object_get_ex(ann, PPM_LIST_ANNOTATION, &v) &&
            json_object_is_type(v, json_type_string))
                value = json_object_get_string(v);
        r = ppm_follow(w, value, &names);
        if (r < 0)
                return r;

        r = sd_bus_message_new_method_return(call, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "(sss)");
        for (size_t i = 0; r >= 0 && names[i]; i++) {
                Ppm *p = ppm_find(w, names[i]);
                r = sd_bus_message_append(reply, "(sss)", p->name, ppm_state_names[p->state],
                                          p->state == PPM_FOUND ? p->json
                                          : p->state == PPM_PENDING ? "not read yet"
                                                                    : strempty(p->message));
        }
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}
