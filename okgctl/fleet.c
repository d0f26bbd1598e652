/* okgctl fleet: the I/O. Lists a GameServerSet's pods and GameServers, then drives the plan
 * (fleet-logic.c) on an sd-event loop: each pod's POST /hot-update goes through the API
 * server's pod proxy (or straight to the pod IP with --direct), then the pod's result
 * annotation is read back as the truth. See docs/fleet.md. */
#include <getopt.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fleet-logic.h"
#include "fleet.h"
#include "hotupdated-request.h"
#include "log.h"
#include "macro.h"
#include "okg-build-config.h"
#include "okg-daemon.h"
#include "okg-event.h"
#include "okg-kube-names.h"
#include "okg-kube.h"
#include "okg-list.h"
#include "okg-string-table.h"
#include "okg-util.h"

#define DEFAULT_ANNOTATION "sidecar.vke.volcengine.com/hot-update-result"
#define OWNER_LABEL "game.kruise.io/owner-gss"
#define SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"
/* The annotation is written just after the answer: look again soon, then less often. */
#define POLL_FIRST_USEC (20 * USEC_PER_MSEC)
#define POLL_MAX_USEC (250 * USEC_PER_MSEC)
#define LIST_LIMIT 500
/* "okgctl fleet", or "kubectl okg fleet" as the kubectl plugin: the start of every message. */
static char fleet_prog[80] = "okgctl fleet";

/* A pod without status.podIP (Pending, not scheduled or not started yet) cannot be reached,
 * through the proxy (the API server refuses it as "address not allowed") or directly. */
#define NO_IP_MESSAGE "the pod has no IP yet (status.podIP is empty: not running?); nothing was sent"

typedef struct Flight Flight;

typedef struct Fleet {
        sd_event *event;
        KubeClient *kube;
        const char *namespace, *gss, *version, *url, *sha256, *file_name, *annotation_key;
        unsigned port;
        bool direct, json, tty;
        char *token;              /* okg-hotupdated's token (--token-file), or NULL */
        uint64_t timeout_usec, record_timeout_usec;
        FleetPod *pods;
        size_t n_pods;
        FleetPlan plan;
        Flight *flights;
        uint64_t started_usec;
        sd_event_source *progress_timer;
        bool interrupted;
        bool progress_shown;
} Fleet;

struct Flight {
        Fleet *fleet;
        FleetPod *pod;
        LIST_FIELDS(Flight, flights);
        /* --direct transfer */
        CURL *easy;
        struct curl_slist *headers;
        char *buf;
        size_t len;
        /* the pod's answer */
        bool answered;            /* okg-hotupdated's JSON arrived (any status) */
        char *state, *message, *at, *current_version;
        char *error;              /* no answer from the pod: why */
        uint64_t record_deadline;
        unsigned polls;
        sd_event_source *timer;
};

/* ---------------------------------------------------------------- small helpers */

static void flight_free(Flight *fl) {
        Fleet *f;

        if (!fl)
                return;
        f = fl->fleet;
        if (fl->easy) {
                curl_glue_remove(kube_client_curl(f->kube), fl->easy);
                curl_easy_cleanup(fl->easy);
        }
        curl_slist_free_all(fl->headers);
        sd_event_source_disable_unref(fl->timer);
        if (LIST_LINKED(flights, f->flights, fl))
                LIST_REMOVE(flights, f->flights, fl);
        free(fl->buf);
        free(fl->state);
        free(fl->message);
        free(fl->at);
        free(fl->current_version);
        free(fl->error);
        free(fl);
}

static const char *jstr(json_object *o, const char *key) {
        json_object *v;

        if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
                return NULL;
        return json_object_get_string(v);
}

static json_object *jget(json_object *o, const char *key) {
        json_object *v;
        return o && json_object_object_get_ex(o, key, &v) ? v : NULL;
}

static char *dup_or_null(const char *s) {
        return s ? strdup(s) : NULL;
}

/* ---------------------------------------------------------------- synchronous GETs (listing) */

typedef struct SyncAnswer {
        bool done;
        CURLcode curl;
        long status;
        char *body, *message;
} SyncAnswer;

static void sync_answer_done(SyncAnswer *a) {
        free(a->body);
        free(a->message);
        *a = (SyncAnswer) {};
}

static void on_sync(KubeClient *k, const KubeResponse *r, void *userdata) {
        SyncAnswer *a = userdata;

        a->done = true;
        a->curl = r->curl;
        a->status = r->status;
        a->body = strndup(r->body, r->body_len);
        a->message = dup_or_null(r->message);
}

static int kube_get_sync(Fleet *f, const char *path, SyncAnswer *a) {
        int r;

        *a = (SyncAnswer) {};
        r = kube_request(f->kube, "GET", path, NULL, NULL, on_sync, a);
        if (r < 0)
                return r;
        while (!a->done) {
                r = sd_event_run(f->event, UINT64_MAX);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* ---------------------------------------------------------------- the set */

static int parse_pod(json_object *item, const char *annotation_key, FleetPod *p) {
        json_object *md = jget(item, "metadata"), *st = jget(item, "status");
        const char *name = jstr(md, "name"), *ip = jstr(st, "podIP");
        const char *ann = jstr(jget(md, "annotations"), annotation_key);

        if (!name)
                return -EBADMSG;
        *p = (FleetPod) {};
        p->name = strdup(name);
        p->ip = dup_or_null(ip && *ip ? ip : NULL);
        if (!p->name || (ip && *ip && !p->ip))
                return -ENOMEM;
        if (ann && fleet_annotation_parse(ann, &p->ann) < 0) {
                /* Not sent to a pod as if absent without a word: shown as "unreadable". */
                p->ann.unreadable = true;
                fprintf(stderr, "%s: warning: pod %s: the annotation is not an outcome object\n",
                        fleet_prog, p->name);
        }
        return 0;
}

static char *list_path(Fleet *f, const char *base, const char *cont) {
        _cleanup_(freep) char *esc = NULL;
        char *p = NULL;

        if (cont) {
                esc = curl_easy_escape(NULL, cont, 0);
                if (!esc)
                        return NULL;
        }
        if (asprintf(&p, "%s?labelSelector=game.kruise.io%%2Fowner-gss%%3D%s&limit=%d%s%s", base,
                     f->gss, LIST_LIMIT, cont ? "&continue=" : "", cont ? esc : "") < 0)
                return NULL;
        return p;
}

/* Every item of a (paged) list; *ret is a json array the caller puts. */
static int list_all(Fleet *f, const char *base, const char *what, json_object **ret,
                    long *ret_status) {
        _cleanup_(freep) char *cont = NULL;
        json_object *all = json_object_new_array();

        if (!all)
                return -ENOMEM;
        for (;;) {
                _cleanup_(freep) char *path = list_path(f, base, cont);
                SyncAnswer a;
                json_object *o, *items;
                int r;

                if (!path) {
                        json_object_put(all);
                        return -ENOMEM;
                }
                r = kube_get_sync(f, path, &a);
                if (r < 0) {
                        json_object_put(all);
                        return r;
                }
                if (ret_status)
                        *ret_status = a.status;
                if (a.status != 200) {
                        if (!ret_status)
                                fprintf(stderr, "%s: cannot list %s: %s\n", fleet_prog, what,
                                        a.message ?: "no answer");
                        sync_answer_done(&a);
                        json_object_put(all);
                        return -EIO;
                }
                o = json_tokener_parse(a.body);
                sync_answer_done(&a);
                items = jget(o, "items");
                for (size_t i = 0; items && json_object_is_type(items, json_type_array) &&
                                   i < json_object_array_length(items); i++)
                        json_object_array_add(all, json_object_get(json_object_array_get_idx(items, i)));
                free(cont);
                cont = dup_or_null(jstr(jget(o, "metadata"), "continue"));
                json_object_put(o);
                if (!cont || !*cont)
                        break;
        }
        *ret = all;
        return 0;
}

static int load_set(Fleet *f) {
        _cleanup_(freep) char *pods_base = NULL, *gs_base = NULL;
        json_object *pods = NULL, *gss = NULL;
        long gs_status = 0;
        size_t n;
        int r;

        if (asprintf(&pods_base, "/api/v1/namespaces/%s/pods", f->namespace) < 0 ||
            asprintf(&gs_base, "/apis/game.kruise.io/v1alpha1/namespaces/%s/gameservers", f->namespace) < 0)
                return -ENOMEM;
        r = list_all(f, pods_base, "the pods", &pods, NULL);
        if (r < 0)
                return r;
        n = json_object_array_length(pods);
        f->pods = calloc(n + 1, sizeof(FleetPod));
        if (!f->pods) {
                json_object_put(pods);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++) {
                r = parse_pod(json_object_array_get_idx(pods, i), f->annotation_key, &f->pods[f->n_pods]);
                if (r == -ENOMEM) {
                        json_object_put(pods);
                        return r;
                }
                if (r >= 0)
                        f->n_pods++;
        }
        json_object_put(pods);

        r = list_all(f, gs_base, "the GameServers", &gss, &gs_status);
        if (r < 0) {
                /* Without GameServers the order is by name; say why. */
                fprintf(stderr, "%s: warning: cannot list GameServers (HTTP %ld): ordering by "
                                "name, opsState unknown\n", fleet_prog, gs_status);
                return 0;
        }
        for (size_t i = 0; i < json_object_array_length(gss); i++) {
                json_object *gs = json_object_array_get_idx(gss, i), *spec = jget(gs, "spec"), *prio;
                const char *name = jstr(jget(gs, "metadata"), "name");

                if (!name)
                        continue;
                for (size_t j = 0; j < f->n_pods; j++) {
                        FleetPod *p = &f->pods[j];
                        if (!streq_ptr(p->name, name))
                                continue;
                        p->has_gameserver = true;
                        free(p->ops_state);
                        p->ops_state = strdup(jstr(spec, "opsState") ?: "None");
                        prio = jget(spec, "updatePriority");
                        if (prio && json_object_is_type(prio, json_type_int))
                                p->update_priority = json_object_get_int64(prio);
                }
        }
        json_object_put(gss);
        return 0;
}

/* ---------------------------------------------------------------- output */

static void progress_clear(Fleet *f) {
        if (f->tty && f->progress_shown) {
                fputs("\r\033[K", stderr);
                f->progress_shown = false;
        }
}

static void progress_show(Fleet *f) {
        const FleetPlan *p = &f->plan;
        double elapsed = (double) (okg_now_usec() - f->started_usec) / 1e6;
        unsigned finished = p->done + p->failures;
        size_t left = fleet_plan_left(p);
        double rate = elapsed > 0 ? finished / elapsed : 0;

        if (!f->tty)
                return;
        fprintf(stderr, "\r\033[Kdone %u  failed %u  in flight %u  left %zu  %.1f pods/s", p->done,
                p->failures, p->in_flight, left, rate);
        if (rate > 0 && !p->stop_reason)
                fprintf(stderr, "  ETA %.0fs", (double) (left + p->in_flight) / rate);
        f->progress_shown = true;
        fflush(stderr);
}

static int on_progress_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Fleet *f = userdata;

        progress_show(f);
        /* A one-shot source is off once it fired: moving its time alone would not bring it
         * back, and the line would freeze until the next pod finished. */
        (void) okg_event_source_rearm(s, USEC_PER_SEC);
        return 0;
}

/* Phases without a word here are shown by the pod's own state. */
static const char *const fleet_phase_word_table[] = {
        [FLEET_PENDING] = "NotStarted",
        [FLEET_AT_VERSION] = "AtVersion",
        [FLEET_IN_FLIGHT] = "InFlight",
};
DEFINE_PRIVATE_STRING_TABLE_LOOKUP_TO_STRING(fleet_phase_word, FleetPhase);

static const char *phase_word(const FleetPod *p) {
        return fleet_phase_word_to_string(p->phase) ?: p->state ?: "?";
}

static json_object *pod_json(const Fleet *f, const FleetPod *p) {
        json_object *o = json_object_new_object();

        json_object_object_add(o, "pod", json_object_new_string(p->name));
        json_object_object_add(o, "opsState", p->ops_state ? json_object_new_string(p->ops_state) : NULL);
        json_object_object_add(o, "updatePriority", json_object_new_int64(p->update_priority));
        json_object_object_add(o, "canary", json_object_new_boolean(p->canary));
        json_object_object_add(o, "from", p->from_version ? json_object_new_string(p->from_version) : NULL);
        json_object_object_add(o, "to", p->to_version ? json_object_new_string(p->to_version) : NULL);
        json_object_object_add(o, "state", json_object_new_string(phase_word(p)));
        json_object_object_add(o, "atVersion", json_object_new_boolean(
                                                       p->phase == FLEET_DONE || p->phase == FLEET_AT_VERSION));
        json_object_object_add(o, "message", p->message ? json_object_new_string(p->message) : NULL);
        return o;
}

static void print_json(json_object *o) {
        puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                                                       JSON_C_TO_STRING_NOSLASHESCAPE));
}

/* Text output is one line per pod whatever a pod or its annotation says: control and invisible
 * characters are escaped (JSON output escapes them as JSON does). */
#define ESC_MAX 1024
static const char *esc_or_null(const char *s, char *buf, size_t size) {
        return s ? okg_escape_controls(s, buf, size) : NULL;
}
#define ESC(s) esc_or_null((s), (char[ESC_MAX]) {}, ESC_MAX)

static const char *ann_version(const FleetAnnotation *a, char *buf, size_t size) {
        return esc_or_null(a->current_version, buf, size) ?: a->unreadable ? "unreadable" : "none";
}
#define ANN_VERSION(a) ann_version((a), (char[ESC_MAX]) {}, ESC_MAX)

static void print_pod_line(Fleet *f, const FleetPod *p) {
        if (f->json)
                return;
        progress_clear(f);
        printf("%s: %s %s -> %s: %s\n", p->name, phase_word(p), ESC(p->from_version) ?: "none",
               ESC(p->to_version) ?: "none", ESC(p->message) ?: "");
        fflush(stdout);
        progress_show(f);
}

static void print_table(Fleet *f) {
        printf("\n%-32s %-16s %-12s %-12s %-14s %s\n", "POD", "OPSSTATE", "FROM", "TO", "STATE", "MESSAGE");
        for (size_t i = 0; i < f->n_pods; i++) {
                const FleetPod *p = &f->pods[i];
                printf("%-32s %-16s %-12s %-12s %-14s %s\n", p->name, ESC(p->ops_state) ?: "-",
                       ESC(p->from_version) ?: "none",
                       ESC(p->to_version) ?: (p->phase == FLEET_PENDING ? "-" : "none"), phase_word(p),
                       ESC(p->message) ?: "");
        }
}

/* ---------------------------------------------------------------- one pod */

static void fleet_pump(Fleet *f);

static void flight_end(Flight *fl, bool ok, const char *state, const char *message,
                       const char *to_version) {
        Fleet *f = fl->fleet;
        FleetPod *p = fl->pod;

        if (fleet_pod_set_outcome(p, state, message, to_version) < 0)
                (void) fleet_pod_set_outcome(p, state, "out of memory", NULL);
        fleet_plan_finish(&f->plan, p, ok);
        print_pod_line(f, p);
        flight_free(fl);
        fleet_pump(f);
}

static int flight_read_annotation(Flight *fl);

static int on_poll_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Flight *fl = userdata;
        int r = flight_read_annotation(fl);

        if (r < 0)
                flight_end(fl, false, "Failed", "cannot read the pod", NULL);
        return 0;
}

/* The pod as the API server has it now: does its annotation hold this update's outcome? */
static void on_pod(KubeClient *k, const KubeResponse *resp, void *userdata) {
        Flight *fl = userdata;
        Fleet *f = fl->fleet;
        _cleanup_(fleet_annotation_done) FleetAnnotation ann = {};
        _cleanup_(freep) char *msg = NULL;
        json_object *o = NULL;
        bool mine, no_ip = false;

        if (resp->status == 200) {
                o = json_tokener_parse(resp->body);
                (void) fleet_annotation_parse(jstr(jget(jget(o, "metadata"), "annotations"),
                                                   f->annotation_key), &ann);
                no_ip = isempty(jstr(jget(o, "status"), "podIP"));
                json_object_put(o);
        }

        if (!fl->answered) {
                /* No answer from the pod (proxy error, connection lost, the sidecar died):
                 * the annotation decides whether the version got in place anyway. */
                if (ann.present && streq_ptr(ann.current_version, f->version)) {
                        if (asprintf(&msg, "%s; the pod annotation says %s is in place (%s)",
                                     fl->error, f->version, ann.state) < 0)
                                msg = NULL;
                        flight_end(fl, true, ann.state, msg ?: fl->error, ann.current_version);
                } else {
                        /* Say why it could not answer when the pod says so. */
                        if (no_ip && asprintf(&msg, "%s; the pod has no IP now (status.podIP is "
                                                    "empty: not running?)", fl->error) < 0)
                                msg = NULL;
                        flight_end(fl, false, "Unreachable", msg ?: fl->error,
                                   ann.present ? ann.current_version : fl->pod->from_version);
                }
                return;
        }

        /* The annotation holds this outcome once its time is the answer's or later. */
        mine = ann.present && streq_ptr(ann.version, f->version) && ann.at && fl->at &&
               strcmp(ann.at, fl->at) >= 0;
        if (mine) {
                bool ok = fleet_state_ok(ann.state) && streq_ptr(ann.current_version, f->version);
                flight_end(fl, ok, ann.state, ann.message, ann.current_version);
                return;
        }
        if (okg_now_usec() < fl->record_deadline) {
                uint64_t wait = okg_backoff_usec(++fl->polls, POLL_FIRST_USEC, POLL_MAX_USEC);

                if (okg_timer_arm(f->event, &fl->timer, wait, 0, on_poll_timer, fl, NULL) >= 0)
                        return;
        }
        /* Not (yet) in the annotation: report the answer and say so. */
        if (asprintf(&msg, "%s (not in the pod annotation after %llus)", fl->message ?: "",
                     (unsigned long long) (f->record_timeout_usec / USEC_PER_SEC)) < 0)
                msg = NULL;
        flight_end(fl, fleet_state_ok(fl->state) && streq_ptr(fl->current_version, f->version),
                   fl->state, msg ?: fl->message, fl->current_version);
}

static int flight_read_annotation(Flight *fl) {
        Fleet *f = fl->fleet;
        _cleanup_(freep) char *path = NULL;

        if (asprintf(&path, "/api/v1/namespaces/%s/pods/%s", f->namespace, fl->pod->name) < 0)
                return -ENOMEM;
        return kube_request(f->kube, "GET", path, NULL, NULL, on_pod, fl);
}

/* An answer arrived (or the transfer failed): body is okg-hotupdated's JSON, or an API
 * server Status, or nothing. */
static void flight_answer(Flight *fl, CURLcode curl, long status, const char *body, size_t len,
                          const char *error) {
        Fleet *f = fl->fleet;
        json_object *o = len > 0 ? json_tokener_parse(body) : NULL;
        const char *state = jstr(o, "state");
        int r;

        if (curl == CURLE_OK && state && o && json_object_is_type(o, json_type_object) &&
            jget(o, "success")) {
                fl->answered = true;
                fl->state = strdup(state);
                fl->message = dup_or_null(jstr(o, "message"));
                fl->at = dup_or_null(jstr(o, "at"));
                fl->current_version = dup_or_null(jstr(o, "currentVersion"));
                json_object_put(o); /* state points into o: fl->state from here on */
                if (!fleet_state_recorded(fl->state)) {
                        /* Refused before anything happened: nothing to read back. */
                        _cleanup_(freep) char *to = dup_or_null(fl->pod->from_version);
                        flight_end(fl, false, fl->state, fl->message, to);
                        return;
                }
                fl->record_deadline = okg_now_usec() + f->record_timeout_usec;
        } else {
                _cleanup_(freep) char *m = kube_status_message(body, len);

                json_object_put(o);
                if (asprintf(&fl->error, "no answer from the pod: %s",
                             m ?: error ?: (curl != CURLE_OK ? curl_easy_strerror(curl) : "HTTP error")) < 0)
                        fl->error = NULL;
                if (!fl->error) {
                        flight_end(fl, false, "Failed", "out of memory", NULL);
                        return;
                }
                if (status > 0 && !m && curl == CURLE_OK) {
                        free(fl->error);
                        if (asprintf(&fl->error, "no answer from the pod: HTTP %ld", status) < 0)
                                fl->error = NULL;
                }
        }
        r = flight_read_annotation(fl);
        if (r < 0)
                flight_end(fl, false, "Failed", "cannot read the pod", NULL);
}

static void on_proxy_answer(KubeClient *k, const KubeResponse *resp, void *userdata) {
        flight_answer(userdata, resp->curl, resp->status, resp->body, resp->body_len, resp->message);
}

static size_t on_direct_body(char *ptr, size_t size, size_t nmemb, void *userdata) {
        Flight *fl = userdata;
        size_t n = size * nmemb;
        char *t;

        if (fl->len + n > 1024 * 1024)
                return 0;
        t = realloc(fl->buf, fl->len + n + 1);
        if (!t)
                return 0;
        fl->buf = t;
        memcpy(fl->buf + fl->len, ptr, n);
        fl->len += n;
        fl->buf[fl->len] = 0;
        return n;
}

static void on_direct_done(CurlGlue *g, CURL *easy, CURLcode result, void *userdata) {
        Flight *fl = userdata;
        long status = 0;

        if (result == CURLE_OK)
                (void) curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_cleanup(easy);
        fl->easy = NULL;
        flight_answer(fl, result, status, fl->buf ?: "", fl->len, curl_easy_strerror(result));
}

static char *request_body(const Fleet *f) {
        json_object *o = json_object_new_object();
        char *s;

        json_object_object_add(o, "version", json_object_new_string(f->version));
        json_object_object_add(o, "url", json_object_new_string(f->url));
        if (f->sha256)
                json_object_object_add(o, "sha256", json_object_new_string(f->sha256));
        if (f->file_name)
                json_object_object_add(o, "fileName", json_object_new_string(f->file_name));
        s = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(o);
        return s;
}

static int flight_send_direct(Flight *fl, const char *body) {
        Fleet *f = fl->fleet;
        _cleanup_(freep) char *url = NULL, *auth = NULL;
        CURL *c;
        int r;

        if (asprintf(&url, strchr(fl->pod->ip, ':') ? "http://[%s]:%u/hot-update" : "http://%s:%u/hot-update",
                     fl->pod->ip, f->port) < 0)
                return -ENOMEM;
        c = curl_easy_init();
        if (!c)
                return -ENOMEM;
        fl->headers = curl_slist_append(NULL, "Content-Type: application/json");
        if (f->token && asprintf(&auth, "Authorization: Bearer %s", f->token) >= 0)
                fl->headers = curl_slist_append(fl->headers, auth);
        (void) curl_easy_setopt(c, CURLOPT_URL, url);
        (void) curl_easy_setopt(c, CURLOPT_HTTPHEADER, fl->headers);
        (void) curl_easy_setopt(c, CURLOPT_COPYPOSTFIELDS, body);
        (void) curl_easy_setopt(c, CURLOPT_USERAGENT, "okgctl/" OKG_VERSION);
        (void) curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        (void) curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
        (void) curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long) (f->timeout_usec / USEC_PER_MSEC));
        (void) curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http");
        (void) curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
        (void) curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_direct_body);
        (void) curl_easy_setopt(c, CURLOPT_WRITEDATA, fl);
        fl->easy = c;
        r = curl_glue_add(kube_client_curl(f->kube), c, on_direct_done, fl);
        if (r < 0) {
                curl_easy_cleanup(c);
                fl->easy = NULL;
        }
        return r;
}

static int flight_send_proxy(Flight *fl, const char *body) {
        Fleet *f = fl->fleet;
        _cleanup_(freep) char *path = NULL, *tok = NULL;
        char *headers[2] = {};

        if (asprintf(&path, "/api/v1/namespaces/%s/pods/%s:%u/proxy/hot-update", f->namespace,
                     fl->pod->name, f->port) < 0)
                return -ENOMEM;
        /* The API server consumes Authorization; okg-hotupdated also takes this header. */
        if (f->token) {
                if (asprintf(&tok, "X-Hot-Update-Token: %s", f->token) < 0)
                        return -ENOMEM;
                headers[0] = tok;
        }
        return kube_request_full(f->kube, "POST", path, "application/json", body, headers,
                                 f->timeout_usec, on_proxy_answer, fl);
}

/* Sends the pod its request; a failure to send ends the flight. */
static void flight_send(Flight *fl) {
        Fleet *f = fl->fleet;
        _cleanup_(freep) char *body = request_body(f), *m = NULL;
        int r;

        if (!body) {
                flight_end(fl, false, "Failed", "out of memory", fl->pod->from_version);
                return;
        }
        r = f->direct ? flight_send_direct(fl, body) : flight_send_proxy(fl, body);
        if (r >= 0)
                return;
        if (asprintf(&m, "cannot send the request: %s", strerror(-r)) < 0)
                m = NULL;
        flight_end(fl, false, "Failed", m ?: "cannot send the request", fl->pod->from_version);
}

/* The pod had no IP when the set was listed: it may have one now. */
static void on_pod_ip(KubeClient *k, const KubeResponse *resp, void *userdata) {
        Flight *fl = userdata;
        json_object *o = resp->status == 200 ? json_tokener_parse(resp->body) : NULL;
        const char *ip = jstr(jget(o, "status"), "podIP");

        if (!isempty(ip)) {
                free(fl->pod->ip);
                fl->pod->ip = strdup(ip);
        }
        json_object_put(o);
        if (fl->pod->ip)
                flight_send(fl);
        else
                flight_end(fl, false, "Unreachable", NO_IP_MESSAGE, fl->pod->from_version);
}

static void flight_start(Fleet *f, FleetPod *p) {
        _cleanup_(freep) char *path = NULL;
        Flight *fl = calloc(1, sizeof *fl);

        free(p->from_version);
        p->from_version = dup_or_null(p->ann.current_version);
        if (!fl) {
                (void) fleet_pod_set_outcome(p, "Failed", "out of memory", NULL);
                fleet_plan_finish(&f->plan, p, false);
                return;
        }
        fl->fleet = f;
        fl->pod = p;
        LIST_PREPEND(flights, f->flights, fl);
        if (p->ip) {
                flight_send(fl);
                return;
        }
        if (asprintf(&path, "/api/v1/namespaces/%s/pods/%s", f->namespace, p->name) < 0 ||
            kube_request(f->kube, "GET", path, NULL, NULL, on_pod_ip, fl) < 0)
                flight_end(fl, false, "Unreachable", NO_IP_MESSAGE, p->from_version);
}

/* Starts whatever the plan allows; ends the loop when the rollout is over. */
static void fleet_pump(Fleet *f) {
        FleetPod *p;

        while ((p = fleet_plan_next(&f->plan)))
                flight_start(f, p);
        if (fleet_plan_finished(&f->plan))
                (void) sd_event_exit(f->event, 0);
        else
                progress_show(f);
}

static int on_interrupt(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Fleet *f = userdata;

        if (f->interrupted || f->plan.in_flight == 0)
                return sd_event_exit(f->event, 0);
        /* First Ctrl-C: start nothing new, let the pods in flight finish. */
        f->interrupted = true;
        f->plan.stop_reason = "interrupted";
        progress_clear(f);
        fprintf(stderr, "%s: interrupted: waiting for %u pod(s) in flight (again to quit)\n",
                fleet_prog, f->plan.in_flight);
        return 0;
}

/* ---------------------------------------------------------------- command line */

typedef struct Args {
        const char *kubeconfig, *context, *namespace, *gss;
        const char *version, *url, *sha256, *file_name, *token_file, *order, *annotation_key;
        const char *canary, *max_in_flight, *max_failures, *port, *timeout, *record_timeout;
        bool direct, dry_run, json;
} Args;

static void fleet_help(void) {
        printf("%s hot-update -n NS GSS --version V --url U [options]\n"
               "%s status -n NS GSS [--json]\n"
               "(also as the kubectl plugin: kubectl okg fleet ...)\n\n"
               "Kubernetes:\n"
               "  --kubeconfig PATH   else $KUBECONFIG, in-cluster, ~/.kube/config\n"
               "  --context NAME      a context of the kubeconfig\n"
               "  -n, --namespace NS  default: the context's namespace\n"
               "Update:\n"
               "  --version V --url U [--sha256 H] [--file-name F]\n"
               "  --port N            okg-hotupdated's port (5000)\n"
               "  --token-file PATH   okg-hotupdated's token (authTokenFile)\n"
               "  --direct            to the pod IPs, not through the API server's pod proxy\n"
               "  --order priority|name|POD,POD,...   default priority (OKG's update order)\n"
               "  --canary N          N pods first; stop if any fails (0)\n"
               "  --max-in-flight N|P%%   at most this many at once (1)\n"
               "  --max-failures N    stop starting pods after N failures (1; 0: never)\n"
               "  --timeout SECONDS   per pod (300); --record-timeout SECONDS (15)\n"
               "  --annotation-key K  the result annotation (" DEFAULT_ANNOTATION ")\n"
               "  --dry-run           show the plan, change nothing\n"
               "  --json              JSON output\n\n"
               "Exit status: 0 every pod is at the version, 1 not, 2 usage.\n", fleet_prog,
               fleet_prog);
}

_printf_(1, 2) static OkgExitCode usage_error(const char *fmt, ...) {
        va_list ap;

        fprintf(stderr, "%s: ", fleet_prog);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fprintf(stderr, " (see %s --help)\n", fleet_prog);
        return OKG_EXIT_USAGE;
}

static int parse_seconds(const char *s, uint64_t *ret) {
        unsigned v;

        if (fleet_parse_count(s, &v) < 0 || v == 0)
                return -EINVAL;
        *ret = (uint64_t) v * USEC_PER_SEC;
        return 0;
}

/* The rules okg-hotupdated applies to a request: a bad --version, --url, --sha256 or
 * --file-name is a usage error here rather than one refusal per pod. */
static OkgExitCode check_hot_update_params(const Args *a) {
        _cleanup_(hotupdate_params_done) HotUpdateParams p = {};
        char err[256] = "";
        int r;

        p.version = strdup(a->version);
        p.url = strdup(a->url);
        p.sha256 = a->sha256 ? strdup(a->sha256) : NULL;
        p.file_name = a->file_name ? strdup(a->file_name) : NULL;
        if (!p.version || !p.url || (a->sha256 && !p.sha256) || (a->file_name && !p.file_name))
                return (void) log_oom(), OKG_EXIT_FAILURE;
        r = hotupdate_params_finish(&p, err, sizeof err);
        if (r == -ENOMEM)
                return (void) log_oom(), OKG_EXIT_FAILURE;
        if (r < 0)
                return usage_error("%s", err);
        return OKG_EXIT_SUCCESS;
}

static int load_kubeconfig(const Args *a, KubeConfig **ret) {
        _cleanup_(freep) char *err = NULL, *home_cfg = NULL;
        const char *env = getenv("KUBECONFIG"), *home = getenv("HOME");
        int r;

        if (a->kubeconfig)
                r = kube_config_from_file(a->kubeconfig, a->context, ret, &err);
        else if (!isempty(env))
                r = kube_config_from_files(env, a->context, ret, &err);
        else if (!a->context && (r = kube_config_in_cluster(SA_DIR, ret, &err)) != -ENOENT) {
                /* in a pod */
        } else {
                if (asprintf(&home_cfg, "%s/.kube/config", home ?: "") < 0)
                        return -ENOMEM;
                r = kube_config_from_file(home_cfg, a->context, ret, &err);
        }
        if (r < 0)
                fprintf(stderr, "%s: no usable Kubernetes configuration: %s\n", fleet_prog,
                        err ?: strerror(-r));
        return r;
}

static int read_token(const char *path, char **ret) {
        _cleanup_(freep) char *t = NULL;
        size_t len;
        int r;

        r = okg_read_file(path, 64 * 1024, &t, &len);
        if (r < 0)
                return r;
        while (len > 0 && strchr(" \t\r\n", t[len - 1]))
                t[--len] = 0;
        if (len == 0 || strchr(t, '\n') || strchr(t, '\r'))
                return -EBADMSG;
        *ret = TAKE_PTR(t);
        return 0;
}

static void fleet_done(Fleet *f) {
        while (f->flights)
                flight_free(f->flights);
        sd_event_source_disable_unref(f->progress_timer);
        kube_client_free(f->kube);
        sd_event_unref(f->event);
        fleet_pods_free(f->pods, f->n_pods);
        free(f->token);
}

/* The label selector matched nothing (no such set or namespace): an error, not an empty fleet. */
static bool no_pods(const Fleet *f) {
        if (f->n_pods > 0)
                return false;
        fprintf(stderr, "%s: no pods with label %s=%s in namespace %s\n", fleet_prog, OWNER_LABEL,
                f->gss, f->namespace);
        return true;
}

static OkgExitCode cmd_status(Fleet *f) {
        _cleanup_(freep) char *summary = NULL;

        if (no_pods(f))
                return OKG_EXIT_FAILURE;
        fleet_order(f->pods, f->n_pods, "name", NULL);
        summary = fleet_version_summary(f->pods, f->n_pods);
        if (f->json) {
                json_object *o = json_object_new_object(), *arr = json_object_new_array();

                json_object_object_add(o, "namespace", json_object_new_string(f->namespace));
                json_object_object_add(o, "gameServerSet", json_object_new_string(f->gss));
                json_object_object_add(o, "summary", json_object_new_string(strempty(summary)));
                for (size_t i = 0; i < f->n_pods; i++) {
                        const FleetPod *p = &f->pods[i];
                        json_object *po = json_object_new_object();
#define S(v) ((v) ? json_object_new_string(v) : NULL)
                        json_object_object_add(po, "pod", json_object_new_string(p->name));
                        json_object_object_add(po, "podIP", S(p->ip));
                        json_object_object_add(po, "opsState", S(p->ops_state));
                        json_object_object_add(po, "updatePriority", json_object_new_int64(p->update_priority));
                        json_object_object_add(po, "version", S(p->ann.current_version));
                        json_object_object_add(po, "lastVersion", S(p->ann.version));
                        json_object_object_add(po, "state", S(p->ann.state));
                        json_object_object_add(po, "success", p->ann.present ? json_object_new_boolean(p->ann.success) : NULL);
                        json_object_object_add(po, "at", S(p->ann.at));
                        json_object_object_add(po, "message", S(p->ann.message));
#undef S
                        json_object_array_add(arr, po);
                }
                json_object_object_add(o, "pods", arr);
                print_json(o);
                json_object_put(o);
                return OKG_EXIT_SUCCESS;
        }
        printf("%-32s %-16s %-12s %-14s %-24s %s\n", "POD", "OPSSTATE", "VERSION", "STATE", "TIME", "MESSAGE");
        for (size_t i = 0; i < f->n_pods; i++) {
                const FleetPod *p = &f->pods[i];
                const char *state = p->ann.state;
                _cleanup_(freep) char *st = NULL;

                /* A failed update to another version leaves this one in place: show both. */
                if (p->ann.present && !streq_ptr(p->ann.version, p->ann.current_version) &&
                    asprintf(&st, "%s %s", strempty(p->ann.state), strempty(p->ann.version)) >= 0)
                        state = st;
                printf("%-32s %-16s %-12s %-14s %-24s %s\n", p->name, ESC(p->ops_state) ?: "-",
                       ANN_VERSION(&p->ann), ESC(state) ?: "-", ESC(p->ann.at) ?: "-",
                       ESC(p->ann.message) ?: "");
        }
        printf("\n%zu pods: %s\n", f->n_pods, ESC(strempty(summary)));
        return OKG_EXIT_SUCCESS;
}

static OkgExitCode cmd_dry_run(Fleet *f) {
        if (f->json) {
                json_object *o = json_object_new_object(), *arr = json_object_new_array();
                json_object_object_add(o, "dryRun", json_object_new_boolean(true));
                json_object_object_add(o, "version", json_object_new_string(f->version));
                json_object_object_add(o, "maxInFlight", json_object_new_int64(f->plan.max_in_flight));
                for (size_t i = 0; i < f->n_pods; i++) {
                        json_object *po = pod_json(f, &f->pods[i]);
                        json_object_object_add(po, "action", json_object_new_string(
                                                        f->pods[i].phase == FLEET_AT_VERSION ? "skip" :
                                                        f->pods[i].canary ? "canary" : "update"));
                        json_object_array_add(arr, po);
                }
                json_object_object_add(o, "pods", arr);
                print_json(o);
                json_object_put(o);
                return OKG_EXIT_SUCCESS;
        }
        printf("Plan for %s/%s to %s (%s, at most %u at once, canary %u, max failures %u):\n",
               f->namespace, f->gss, f->version, f->direct ? "direct to pod IPs" : "through the pod proxy",
               f->plan.max_in_flight, f->plan.canary, f->plan.max_failures);
        printf("%-4s %-32s %8s %-16s %-12s %s\n", "#", "POD", "PRIORITY", "OPSSTATE", "VERSION", "ACTION");
        for (size_t i = 0; i < f->n_pods; i++) {
                const FleetPod *p = &f->pods[i];
                printf("%-4zu %-32s %8lld %-16s %-12s %s\n", i + 1, p->name, (long long) p->update_priority,
                       ESC(p->ops_state) ?: "-", ANN_VERSION(&p->ann),
                       p->phase == FLEET_AT_VERSION ? "skip (at the version)" : p->canary ? "canary" : "update");
        }
        printf("\n%zu to update, %u already at %s. Nothing was changed (--dry-run).\n",
               fleet_plan_left(&f->plan), f->plan.at_version, f->version);
        return OKG_EXIT_SUCCESS;
}

static OkgExitCode cmd_hot_update(Fleet *f) {
        sigset_t mask;
        int r;

        if (no_pods(f))
                return OKG_EXIT_FAILURE;
        sigemptyset(&mask);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGTERM);
        (void) sigprocmask(SIG_BLOCK, &mask, NULL);
        (void) sd_event_add_signal(f->event, NULL, SIGINT, on_interrupt, f);
        (void) sd_event_add_signal(f->event, NULL, SIGTERM, on_interrupt, f);
        if (f->tty)
                (void) okg_timer_arm(f->event, &f->progress_timer, USEC_PER_SEC, 0,
                                     on_progress_timer, f, "progress");
        if (!f->json)
                printf("Updating %s/%s to %s: %zu pods, %u already at the version, %s\n", f->namespace,
                       f->gss, f->version, f->n_pods, f->plan.at_version,
                       f->direct ? "direct to pod IPs" : "through the pod proxy");
        for (size_t i = 0; i < f->n_pods; i++) {
                FleetPod *p = &f->pods[i];
                /* Every pod's version as read at planning time, so that pods never started
                 * (interrupted, stopped) still show it. */
                free(p->from_version);
                p->from_version = dup_or_null(p->ann.current_version);
                if (p->ann.current_version && !p->from_version)
                        return OKG_EXIT_FAILURE;
                if (p->phase != FLEET_AT_VERSION)
                        continue;
                if (fleet_pod_set_outcome(p, "AtVersion", "already at the version: nothing sent",
                                          p->ann.current_version) < 0)
                        return OKG_EXIT_FAILURE;
        }
        f->started_usec = okg_now_usec();
        fleet_pump(f);
        if (!fleet_plan_finished(&f->plan)) {
                r = sd_event_loop(f->event);
                if (r < 0) {
                        fprintf(stderr, "%s: event loop: %s\n", fleet_prog, strerror(-r));
                        return OKG_EXIT_FAILURE;
                }
        }
        progress_clear(f);
        if (f->json) {
                json_object *o = json_object_new_object(), *arr = json_object_new_array();
                json_object_object_add(o, "namespace", json_object_new_string(f->namespace));
                json_object_object_add(o, "gameServerSet", json_object_new_string(f->gss));
                json_object_object_add(o, "version", json_object_new_string(f->version));
                json_object_object_add(o, "complete", json_object_new_boolean(fleet_plan_complete(&f->plan)));
                json_object_object_add(o, "stopReason", f->plan.stop_reason ?
                                                json_object_new_string(f->plan.stop_reason) : NULL);
                json_object_object_add(o, "updated", json_object_new_int64(f->plan.done));
                json_object_object_add(o, "failed", json_object_new_int64(f->plan.failures));
                json_object_object_add(o, "atVersionBefore", json_object_new_int64(f->plan.at_version));
                json_object_object_add(o, "notStarted", json_object_new_int64((int64_t) fleet_plan_left(&f->plan)));
                for (size_t i = 0; i < f->n_pods; i++)
                        json_object_array_add(arr, pod_json(f, &f->pods[i]));
                json_object_object_add(o, "pods", arr);
                print_json(o);
                json_object_put(o);
        } else {
                print_table(f);
                printf("\n%u updated, %u already at %s, %u failed, %zu not started%s%s\n", f->plan.done,
                       f->plan.at_version, ESC(f->version), f->plan.failures, fleet_plan_left(&f->plan),
                       f->plan.stop_reason ? ": stopped, " : "", ESC(strempty(f->plan.stop_reason)));
        }
        return fleet_plan_complete(&f->plan) ? OKG_EXIT_SUCCESS : OKG_EXIT_FAILURE;
}

OkgExitCode fleet_main(int argc, char **argv, bool json, const char *prog) {
        enum {
                ARG_KUBECONFIG = 0x100, ARG_CONTEXT, ARG_VERSION, ARG_URL, ARG_SHA256, ARG_FILE_NAME,
                ARG_PORT, ARG_TOKEN_FILE, ARG_DIRECT, ARG_ORDER, ARG_CANARY, ARG_MAX_IN_FLIGHT,
                ARG_MAX_FAILURES, ARG_DRY_RUN, ARG_TIMEOUT, ARG_RECORD_TIMEOUT, ARG_ANNOTATION_KEY,
                ARG_JSON,
        };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "namespace", required_argument, NULL, 'n' },
                { "kubeconfig", required_argument, NULL, ARG_KUBECONFIG },
                { "context", required_argument, NULL, ARG_CONTEXT },
                { "version", required_argument, NULL, ARG_VERSION },
                { "url", required_argument, NULL, ARG_URL },
                { "sha256", required_argument, NULL, ARG_SHA256 },
                { "file-name", required_argument, NULL, ARG_FILE_NAME },
                { "port", required_argument, NULL, ARG_PORT },
                { "token-file", required_argument, NULL, ARG_TOKEN_FILE },
                { "direct", no_argument, NULL, ARG_DIRECT },
                { "order", required_argument, NULL, ARG_ORDER },
                { "canary", required_argument, NULL, ARG_CANARY },
                { "max-in-flight", required_argument, NULL, ARG_MAX_IN_FLIGHT },
                { "max-failures", required_argument, NULL, ARG_MAX_FAILURES },
                { "dry-run", no_argument, NULL, ARG_DRY_RUN },
                { "timeout", required_argument, NULL, ARG_TIMEOUT },
                { "record-timeout", required_argument, NULL, ARG_RECORD_TIMEOUT },
                { "annotation-key", required_argument, NULL, ARG_ANNOTATION_KEY },
                { "json", no_argument, NULL, ARG_JSON },
                {},
        };
        Args a = { .json = json };
        Fleet f = {};
        const char *verb;
        unsigned canary = 0, max_failures = 1, max_in_flight = 1, port = 5000;
        KubeConfig *cfg = NULL;
        _cleanup_(freep) char *order_error = NULL;
        OkgExitCode ret = OKG_EXIT_FAILURE;
        int c, r;

        /* What the Kubernetes client and the curl glue say reads like the rest of its output. */
        (void) snprintf(fleet_prog, sizeof fleet_prog, "%s fleet", prog);
        log_setup_cli(fleet_prog);
        if (argc < 2 || streq(argv[1], "--help") || streq(argv[1], "-h")) {
                fleet_help();
                return argc < 2 ? OKG_EXIT_USAGE : OKG_EXIT_SUCCESS;
        }
        verb = argv[1];
        if (!streq(verb, "hot-update") && !streq(verb, "status"))
                return usage_error("unknown command '%s' (hot-update, status)", verb);
        optind = 0;
        /* getopt's own complaints name the argv[0] it is given: the verb's place. */
        argv[1] = fleet_prog;
        while ((c = getopt_long(argc - 1, argv + 1, "hn:", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        fleet_help();
                        return OKG_EXIT_SUCCESS;
                case 'n': a.namespace = optarg; break;
                case ARG_KUBECONFIG: a.kubeconfig = optarg; break;
                case ARG_CONTEXT: a.context = optarg; break;
                case ARG_VERSION: a.version = optarg; break;
                case ARG_URL: a.url = optarg; break;
                case ARG_SHA256: a.sha256 = optarg; break;
                case ARG_FILE_NAME: a.file_name = optarg; break;
                case ARG_PORT: a.port = optarg; break;
                case ARG_TOKEN_FILE: a.token_file = optarg; break;
                case ARG_DIRECT: a.direct = true; break;
                case ARG_ORDER: a.order = optarg; break;
                case ARG_CANARY: a.canary = optarg; break;
                case ARG_MAX_IN_FLIGHT: a.max_in_flight = optarg; break;
                case ARG_MAX_FAILURES: a.max_failures = optarg; break;
                case ARG_DRY_RUN: a.dry_run = true; break;
                case ARG_TIMEOUT: a.timeout = optarg; break;
                case ARG_RECORD_TIMEOUT: a.record_timeout = optarg; break;
                case ARG_ANNOTATION_KEY: a.annotation_key = optarg; break;
                case ARG_JSON: a.json = true; break;
                default:
                        return OKG_EXIT_USAGE;
                }
        if (optind + 1 >= argc)
                return usage_error("%s needs the GameServerSet's name", verb);
        if (optind + 2 < argc)
                return usage_error("unexpected argument '%s'", argv[optind + 2]);
        a.gss = argv[optind + 1];

        /* Everything is checked before anything is sent. */
        if (kube_label_value_check(a.gss) || !*a.gss)
                return usage_error("'%s' is not a GameServerSet name", a.gss);
        if (a.namespace && kube_dns_subdomain_check(a.namespace))
                return usage_error("'%s' is not a namespace name", a.namespace);
        if (streq(verb, "hot-update")) {
                if (!a.version || !a.url)
                        return usage_error("%s needs --version and --url", verb);
                OkgExitCode code = check_hot_update_params(&a);
                if (code != OKG_EXIT_SUCCESS)
                        return code;
                if (a.port && (fleet_parse_count(a.port, &port) < 0 || port == 0 || port > 65535))
                        return usage_error("--port '%s' is not a port", a.port);
                if (a.canary && fleet_parse_count(a.canary, &canary) < 0)
                        return usage_error("--canary '%s' is not a count", a.canary);
                if (a.max_failures && fleet_parse_count(a.max_failures, &max_failures) < 0)
                        return usage_error("--max-failures '%s' is not a count", a.max_failures);
                if (a.max_in_flight && fleet_parse_limit(a.max_in_flight, 100, &max_in_flight) < 0)
                        return usage_error("--max-in-flight '%s' is not N or P%%", a.max_in_flight);
                f.timeout_usec = 300 * USEC_PER_SEC;
                f.record_timeout_usec = 15 * USEC_PER_SEC;
                if (a.timeout && parse_seconds(a.timeout, &f.timeout_usec) < 0)
                        return usage_error("--timeout '%s' is not a number of seconds", a.timeout);
                if (a.record_timeout && parse_seconds(a.record_timeout, &f.record_timeout_usec) < 0)
                        return usage_error("--record-timeout '%s' is not a number of seconds", a.record_timeout);
                if (a.token_file) {
                        r = read_token(a.token_file, &f.token);
                        if (r < 0) {
                                fprintf(stderr, "%s: cannot use --token-file %s: %s\n", fleet_prog,
                                        a.token_file, r == -EBADMSG ? "empty or more than one line"
                                                                    : strerror(-r));
                                return OKG_EXIT_USAGE;
                        }
                }
        }
        if (a.annotation_key && kube_qualified_name_check(a.annotation_key)) {
                free(f.token);
                return usage_error("--annotation-key '%s' is not an annotation key", a.annotation_key);
        }

        f.namespace = a.namespace;
        f.gss = a.gss;
        f.version = a.version;
        f.url = a.url;
        f.sha256 = a.sha256;
        f.file_name = a.file_name;
        f.annotation_key = a.annotation_key ?: DEFAULT_ANNOTATION;
        f.port = port;
        f.direct = a.direct;
        f.json = a.json;
        f.tty = isatty(STDERR_FILENO) && !getenv("OKG_NO_PROGRESS");

        r = load_kubeconfig(&a, &cfg);
        if (r < 0)
                goto finish;
        f.namespace = f.namespace ?: cfg->namespace;
        r = sd_event_new(&f.event);
        if (r >= 0)
                r = kube_client_new(f.event, cfg, 0, &f.kube);
        if (r < 0) {
                if (cfg->token_file && r != -ENOMEM)
                        fprintf(stderr, "%s: no usable Kubernetes configuration: "
                                "cannot read the token file %s: %s\n", fleet_prog, cfg->token_file,
                                strerror(-r));
                else
                        fprintf(stderr, "%s: %s\n", fleet_prog, strerror(-r));
                kube_config_free(cfg);
                goto finish;
        }
        (void) kube_client_set_user_agent(f.kube, "okgctl/" OKG_VERSION);
        if (!f.namespace)
                f.namespace = "default";

        if (load_set(&f) < 0)
                goto finish;
        if (streq(verb, "status")) {
                ret = cmd_status(&f);
                goto finish;
        }
        if (a.max_in_flight)
                (void) fleet_parse_limit(a.max_in_flight, f.n_pods, &max_in_flight);
        r = fleet_order(f.pods, f.n_pods, a.order, &order_error);
        if (r < 0) {
                fprintf(stderr, "%s: %s\n", fleet_prog, order_error ?: strerror(-r));
                ret = OKG_EXIT_USAGE;
                goto finish;
        }
        fleet_plan_init(&f.plan, f.pods, f.n_pods, f.version, canary, max_in_flight, max_failures);
        if (f.plan.canaries_left > 0 && canary > f.plan.canaries_left)
                fprintf(stderr, "%s: note: --canary %u is more than the %u pod(s) to update: "
                        "all of them are canaries\n", fleet_prog, canary, f.plan.canaries_left);
        ret = a.dry_run ? cmd_dry_run(&f) : cmd_hot_update(&f);
finish:
        fleet_done(&f);
        return ret;
}
