/* The service_quality plugin's pure logic (docs/service-quality.md): the kruise.io/podprobe
 * annotation as Kruise writes it, the facts of the pod it needs (pod IP, container ports, IDs
 * and start times), where a probe goes, Kruise's result rules (thresholds, the message) and
 * which conditions to hand to okg-storaged. No I/O. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"

#define SQ_ANNOTATION "kruise.io/podprobe"
/* The PodProbeMarkers whose probes Kruise's webhook put into SQ_ANNOTATION: "a,b". */
#define SQ_PPM_LIST_ANNOTATION "kruise.io/podprobemarker-list"
/* Kruise cuts a result message longer than this many characters to this many bytes. */
#define SQ_MESSAGE_MAX 1024
/* kubelet's (and so Kruise's) cap on an HTTP probe's body. */
#define SQ_BODY_MAX (10 * 1024)

typedef enum SqHandler {
        SQ_HANDLER_EXEC,
        SQ_HANDLER_HTTP,
        SQ_HANDLER_TCP,
} SqHandler;

typedef struct SqHeader {
        char *name, *value;
} SqHeader;

typedef struct SqProbe {
        char *name;                  /* name */
        char *container;             /* containerName */
        char *condition_type;        /* podConditionType */
        SqHandler handler;
        char **command;              /* exec.command, NULL-terminated */
        char *scheme;                /* httpGet.scheme: "http" or "https" (lowercase) */
        char *host;                  /* httpGet.host / tcpSocket.host, NULL when not given */
        char *path;                  /* httpGet.path, NULL when not given */
        int port;                    /* the numeric port, 0 when given by name */
        char *port_name;             /* the named port, NULL when numeric */
        SqHeader *headers;           /* httpGet.httpHeaders */
        size_t n_headers;
        /* As given; 0 when absent. sq_probe_*() apply Kruise's rules for 0. */
        unsigned initial_delay, timeout, period, success_threshold, failure_threshold;
} SqProbe;

typedef struct SqProbes {
        SqProbe *v;
        size_t n;
} SqProbes;

void sq_probes_done(SqProbes *p);
/* Reads text as one JSON value the way Go's json.Unmarshal does (no comments, single quotes,
 * trailing commas or trailing data): 0 with *ret (NULL for null), or -EINVAL with err saying
 * why in one line, what naming the value expected ("JSON array"); -ENOMEM. */
struct json_object;
int sq_json_parse_strict(const char *text, size_t len, const char *what, struct json_object **ret,
                         char *err, size_t err_size);
/* Parses the annotation's value (a JSON array; null, as Kruise reads it, is no probes). On error *ret is untouched, and err (when not
 * NULL) says where and why in one line, e.g. "[1].probe: no exec, httpGet or tcpSocket".
 * -EINVAL bad input, -ENOMEM. */
int sq_probes_parse(const char *text, size_t len, SqProbes *ret, char *err, size_t err_size);
/* 1 when both lists hold the same probes. */
bool sq_probes_equal(const SqProbes *a, const SqProbes *b);

/* Kruise's daemon: a value of 0 (absent) means 1 second / 1 in a row for every field. */
static inline unsigned sq_probe_timeout(const SqProbe *p) {
        return p->timeout ?: 1;
}
static inline unsigned sq_probe_period(const SqProbe *p) {
        return p->period ?: 1;
}
static inline unsigned sq_probe_initial_delay(const SqProbe *p) {
        return p->initial_delay ?: 1;
}

typedef struct SqPort {
        char *name;
        int number;
} SqPort;

typedef struct SqContainer {
        char *name;
        char *id;                    /* containerStatuses[].containerID without "runtime://" */
        bool running;                /* state.running present */
        uint64_t started_usec;       /* state.running.startedAt, CLOCK_REALTIME; 0 when unknown */
        SqPort *ports;               /* spec.containers[].ports with a name */
        size_t n_ports;
} SqContainer;

typedef struct SqCondition {
        char *type, *status, *message;
} SqCondition;

typedef struct SqLabel {
        char *key, *value;
} SqLabel;

typedef struct SqPod {
        char *annotation;            /* metadata.annotations["kruise.io/podprobe"], or NULL */
        char *ppm_list;              /* metadata.annotations["kruise.io/podprobemarker-list"] */
        SqLabel *labels;             /* metadata.labels */
        size_t n_labels;
        char *pod_ip;                /* status.podIP, or NULL */
        char *node_name;             /* spec.nodeName, or NULL */
        bool share_process_namespace;
        bool has_statuses;           /* status.containerStatuses is there (a kubelet reported) */
        SqContainer *containers;     /* spec.containers and restartable init containers */
        size_t n_containers;
        SqCondition *conditions;     /* status.conditions */
        size_t n_conditions;
} SqPod;

void sq_pod_done(SqPod *p);
/* Parses the pod object okg-storaged hands out (Storage1.GetPod). -EINVAL not a JSON object. */
int sq_pod_parse(const char *json, size_t len, SqPod *ret);
const SqContainer *sq_pod_container(const SqPod *p, const char *name);
const SqCondition *sq_pod_condition(const SqPod *p, const char *type);
/* Why a probe of container name does not run when the pod has no such container:
 * "container NAME is not in the pod (containers: a, b)". A new string, NULL when out of
 * memory. */
char *sq_pod_missing_container(const SqPod *p, const char *name);

/* RFC 3339 ("2026-12-06T17:25:13Z", fraction and offset allowed) to microseconds since the
 * epoch. -EINVAL. */
int sq_parse_time(const char *s, uint64_t *ret);

/* The port a probe dials: its number, or its name looked up in the container's ports (then, as
 * Kruise reads a name, its digits). -ENOENT (err says why) when there is none. */
int sq_probe_resolve_port(const SqProbe *p, const SqContainer *c, int *ret, char *err,
                          size_t err_size);
/* The host a probe dials: its own, else the pod IP, else loopback (a pod without an IP yet, or
 * a local run). Borrowed. */
const char *sq_probe_host(const SqProbe *p, const SqPod *pod);
/* A httpGet path as kubelet sends it: spaces, control and non-ASCII bytes and the characters a
 * URL cannot hold ("<>\^`{|} and a "%" that starts no escape) percent-encoded; "?" and what
 * follows stay as given. A new string, NULL when out of memory. */
char *sq_url_path_escape(const char *path);
/* httpGet: the URL (scheme://host:port/path, IPv6 in brackets, the path escaped). */
int sq_probe_url(const SqProbe *p, const SqPod *pod, const SqContainer *c, char **ret, char *err,
                 size_t err_size);

/* A result message as Kruise writes it: longer than SQ_MESSAGE_MAX characters it is cut to
 * SQ_MESSAGE_MAX bytes. Then, for okg-storaged: invalid UTF-8 and control characters other
 * than tab, CR and LF, NUL included, become U+FFFD (as Go's JSON encoder writes invalid UTF-8;
 * Kruise keeps the control characters, which a D-Bus string and okg-storaged cannot carry),
 * and the result never exceeds SQ_MESSAGE_MAX bytes (cut at a character's end; Kruise
 * would keep up to 1024 multi-byte characters). A new string. */
char *sq_message_make(const char *data, size_t len);
/* The message of an HTTP answer, as kubelet's prober gives it: the body for 200-299,
 * "Probe terminated redirects, Response body: BODY" for 300-399 (a redirect not followed: a
 * success with a warning in kubelet, a success in Kruise), else
 * "HTTP probe failed with statuscode: N". *ret_success says which. */
char *sq_http_message(long status, const char *body, size_t len, bool *ret_success);


/* Kruise's per-probe rule: a result counts once it came threshold times in a row (success or
 * failure); then (and on every later probe of the same run) it is the probe's result, with the
 * latest message. */
typedef struct SqTracker {
        int last;                    /* -1 none, 0 failed, 1 succeeded: the run's kind */
        unsigned run;
        bool has_result;
        bool status;                 /* the result: true = "True" */
        char *message;
} SqTracker;

void sq_tracker_done(SqTracker *t);
/* Feeds one probe result. 1 when the result (status or message) changed, 0 when not, -ENOMEM. */
int sq_tracker_feed(SqTracker *t, const SqProbe *p, bool success, const char *message);
/* Forgets the result (the container restarted or the probe changed). */
void sq_tracker_reset(SqTracker *t);

/* The values of one condition handed to okg-storaged, newest first: a pod read while writes are
 * on their way may show any of the last few, which is no sign of another writer. */
#define SQ_HISTORY 4
/* Values handed on and not yet acknowledged kept per condition; beyond, the oldest are
 * forgotten and the condition is not judged until okg-storaged acknowledges what is kept. */
#define SQ_PENDING_MAX 64

/* One value handed on: the plugin's call number (in the order of the calls, which the storage
 * client keeps) and okg-storaged's sequence number of the accepted write (0 until accepted). */
typedef struct SqValue {
        bool status;
        char *message;
        uint64_t call;
        uint64_t seq;
} SqValue;

typedef struct SqHistory {
        bool status[SQ_HISTORY];
        char *message[SQ_HISTORY];
        size_t n;

        /* What became of them (docs/service-quality.md, "kruise-daemon on the node"): the values
         * handed on since the last one okg-storaged acknowledged, oldest first, and the last
         * values acknowledged as the newest of their write, newest first. */
        SqValue *pending;
        size_t n_pending;
        bool pending_lost;               /* more than SQ_PENDING_MAX: the oldest forgotten */
        bool acked_status[SQ_HISTORY];
        char *acked_message[SQ_HISTORY];
        size_t n_acked;
} SqHistory;

void sq_history_done(SqHistory *h);
int sq_history_push(SqHistory *h, bool status, const char *message);
/* Whether status ("True"/"False") and message are one of the values in h. */
bool sq_history_has(const SqHistory *h, const char *status, const char *message);

/* The value was handed on in the plugin's call number call (counted from 1, in call order):
 * pushed as the newest (sq_history_push()) and pending until acknowledged. -ENOMEM. */
int sq_history_handed(SqHistory *h, bool status, const char *message, uint64_t call);
/* okg-storaged accepted call number call as its write seq. */
void sq_history_accepted(SqHistory *h, uint64_t call, uint64_t seq);
/* Acknowledged("podstatus", seq): every write up to seq is on the API server (or the local
 * store). The newest pending value of such a write is what the pod got; it and every value
 * handed on before it are no longer pending (the calls are handled in order). -ENOMEM. */
int sq_history_acknowledged(SqHistory *h, uint64_t seq);

typedef enum SqVerdict {
        SQ_VERDICT_OWN,          /* a value the plugin handed on and may still be on the pod */
        SQ_VERDICT_UNKNOWN,      /* cannot tell yet: nothing acknowledged, or pending forgotten */
        SQ_VERDICT_OTHER,        /* another writer's */
} SqVerdict;
/* Whose value the pod's condition (status "True"/"False"/..., message) is. While writes lag,
 * the pod holds the last acknowledged value or one on its way, so a value is the plugin's when
 * it is pending, one of the last SQ_HISTORY acknowledged or of the last SQ_HISTORY handed on;
 * it is another writer's only when none of these and something was acknowledged: a lag, an
 * outage or a replay of any length is never another writer. */
SqVerdict sq_history_judge(const SqHistory *h, const char *status, const char *message);

/* The histories of every condition type the plugin handed on, for as long as it runs: they
 * belong to the condition, not to the probe that set it, so a new probe list (new runners)
 * still knows the values the plugin wrote before and never takes them for another writer's. */
typedef struct SqSent {
        char *type;
        SqHistory history;
} SqSent;

typedef struct SqSentBook {
        SqSent **v;
        size_t n;
} SqSentBook;

void sq_sent_book_done(SqSentBook *b);
/* The history of type (empty when new). It keeps its address until sq_sent_book_done(). NULL
 * when out of memory. */
SqHistory *sq_sent_book_get(SqSentBook *b, const char *type);

/* Whether the first probe is due: the container runs and initialDelaySeconds have passed since
 * its start. Sets *ret_wait_usec to the time left (0 when due). Kruise's rule: a container with
 * no known start time is not probed. */
bool sq_probe_due(const SqProbe *p, const SqContainer *c, uint64_t now_usec, uint64_t *ret_wait_usec);

/* The container ID a /proc/PID/cgroup text names, when one of its paths ends in a component
 * holding id (containerd "cri-containerd-ID.scope", docker "docker-ID.scope", ".../ID").
 * 1 when it does, 0 when not. */
int sq_cgroup_has_container(const char *cgroup_text, const char *id);

/* A PodProbeMarker as okg-storaged follows it (Storage1.GetPodProbeMarkers). */
typedef struct SqPpm {
        char *name;
        char *state;                 /* "found", "notfound", "error", "pending" */
        char *text;                  /* found: the object's JSON; otherwise why */
} SqPpm;

void sq_ppms_free(SqPpm *v, size_t n);
/* The probe list the markers give the pod, in the kruise.io/podprobe annotation's shape, by
 * Kruise's webhook's rules: the markers in the given order, of each only when its
 * spec.selector selects the pod's labels (an empty or invalid selector selects nothing), the
 * probes of spec.probes that have a podConditionType and a container of the pod, the first of
 * each condition type and of each container/name; markerPolicy left out. 0 with *ret_text (a
 * JSON array) and *ret_note (which markers select the pod, for SourceReason) when every marker
 * is found; -ENOENT when one is not (or n is 0) and -EINVAL when one is not a PodProbeMarker
 * object, with *ret_note saying why; -ENOMEM. With ret_origins, *ret_origins (on 0; a NULL-ended
 * list) names where each entry of *ret_text came from ("PodProbeMarker game: probes[2]"), so
 * the annotation parser's complaint about an entry can name the marker's probe. */
int sq_ppm_probes(const SqPpm *v, size_t n, const SqPod *pod, char **ret_text, char **ret_note,
                  char ***ret_origins);

/* Rewrites sq_probes_parse()'s complaint about entry [N] of a list sq_ppm_probes() made to name
 * the marker's probe it came from, by its *ret_origins ("[1].probe: ..." becomes
 * "PodProbeMarker game: probes[2].probe: ..."); other complaints stay as they are. */
void sq_ppm_error_origin(char *err, size_t size, char *const *origins);

/* asprintf() that returns the new string, NULL when out of memory. */
_printf_(1, 2) char *sq_strf(const char *fmt, ...);
