/* Talking to the Kubernetes API server: where it is and how to authenticate (in-cluster
 * service account or a kubeconfig), and requests over curl multi on an sd-event loop.
 * TLS is always verified; a token file is re-read when it changes and after a 401, because
 * bound service-account tokens rotate. Used by okg-storaged and okgctl fleet. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <systemd/sd-event.h>

#include "okg-curl.h"

typedef struct KubeConfig {
        char *server;           /* https://host:port, no trailing slash */
        char *ca_file;          /* certificate-authority (absolute) */
        char *ca_data;          /* certificate-authority-data, decoded PEM */
        char *token;            /* a literal token */
        char *token_file;       /* a file holding the token (absolute) */
        char *namespace;        /* the context's namespace, or the service account's */
        char *source;           /* "in-cluster" or the kubeconfig path, for messages */
} KubeConfig;

KubeConfig *kube_config_free(KubeConfig *c);
static inline void kube_config_freep(KubeConfig **c) {
        kube_config_free(*c);
}

/* Parses a kubeconfig (pure: no file is read; relative paths are resolved against dir).
 * Errors: -EINVAL with a one-line reason in *ret_error. */
int kubeconfig_parse(const char *text, size_t len, const char *dir, KubeConfig **ret,
                     char **ret_error);
/* The same with the context named `context` instead of current-context (NULL: current). */
int kubeconfig_parse_context(const char *text, size_t len, const char *dir, const char *context,
                             KubeConfig **ret, char **ret_error);
/* One file of a kubeconfig list, for kubeconfig_parse_merged(). */
typedef struct KubeconfigFile {
        const char *path;       /* for messages; NULL for a lone text */
        const char *dir;        /* its relative paths resolve against this */
        const char *text;
        size_t len;
} KubeconfigFile;
/* kubectl's merge of a KUBECONFIG list (pure): current-context from the first file that sets
 * one (unless context is given), each context, cluster and user from the first file that has
 * one of that name. A file that is not YAML or not a mapping is an error naming it, whatever
 * the others hold; an empty file sets nothing. */
int kubeconfig_parse_merged(const KubeconfigFile *files, size_t n, const char *context,
                            KubeConfig **ret, char **ret_error);
/* A kubeconfig file read and parsed (context as above). */
int kube_config_from_file(const char *path, const char *context, KubeConfig **ret,
                          char **ret_error);
/* A ':'-separated list of kubeconfig files (as $KUBECONFIG) read and merged as kubectl does:
 * files that do not exist are skipped (-ENOENT when none does), one that cannot be read or
 * parsed is an error naming it. source is the list of files read. */
int kube_config_from_files(const char *list, const char *context, KubeConfig **ret,
                           char **ret_error);
/* $KUBECONFIG read and merged (kube_config_from_files()). -ENOENT when unset. */
int kube_config_from_kubeconfig(KubeConfig **ret, char **ret_error);
/* KUBERNETES_SERVICE_HOST/PORT and the service-account files under sa_dir
 * (/var/run/secrets/kubernetes.io/serviceaccount in a pod). -ENOENT when not in a cluster. */
int kube_config_in_cluster(const char *sa_dir, KubeConfig **ret, char **ret_error);

/* Decodes standard base64 (whitespace ignored). Pure. */
int okg_base64_decode(const char *in, size_t len, char **ret, size_t *ret_len);

typedef struct KubeClient KubeClient;

typedef struct KubeResponse {
        CURLcode curl;            /* CURLE_OK when an HTTP answer arrived */
        long status;              /* HTTP status, 0 without an answer */
        const char *body;
        size_t body_len;
        uint64_t retry_after_usec;/* from Retry-After, 0 when absent */
        const char *message;      /* the Status message, or curl's error, or a summary */
} KubeResponse;

typedef void (*KubeDoneFunc)(KubeClient *k, const KubeResponse *r, void *userdata);

typedef enum KubeClientFlags {
        /* A daemon may start before its (projected) token file appears: warn and send without a
         * token until it does. Without this flag an unreadable token file is an error (one-shot
         * clients such as okgctl must not carry on as system:anonymous). */
        KUBE_CLIENT_WAIT_FOR_TOKEN = 1 << 0,
} KubeClientFlags;

int kube_client_new(sd_event *e, KubeConfig *config, KubeClientFlags flags, KubeClient **ret);
KubeClient *kube_client_free(KubeClient *k);
static inline void kube_client_freep(KubeClient **k) {
        kube_client_free(*k);
}
const KubeConfig *kube_client_config(const KubeClient *k);
uint64_t kube_client_requests(const KubeClient *k);
/* How many times a failed request made the client drop its connections. */
uint64_t kube_client_pools_retired(const KubeClient *k);

/* Idle connections: TCP keep-alive probes after this many idle seconds, then every interval;
 * a connection idle for longer than KUBE_IDLE_REUSE_SEC is replaced rather than reused. */
#define KUBE_KEEPALIVE_IDLE_SEC 30
#define KUBE_KEEPALIVE_INTERVAL_SEC 10
#define KUBE_IDLE_REUSE_SEC 30
/* The User-Agent of later requests (default okg-storaged/VERSION). */
int kube_client_set_user_agent(KubeClient *k, const char *user_agent);
/* The client's curl glue, for other transfers on the same loop. */
CurlGlue *kube_client_curl(KubeClient *k);

/* Sends a request; the callback runs once with the answer. A 401 makes the client re-read
 * the token file and send the request once more before reporting it. path starts with "/". */
int kube_request(KubeClient *k, const char *method, const char *path, const char *content_type,
                 const char *body, KubeDoneFunc cb, void *userdata);
/* The same with extra header lines ("Name: value", NULL-terminated, or NULL) and a timeout for
 * the whole transfer (0: 30 s). */
int kube_request_full(KubeClient *k, const char *method, const char *path,
                      const char *content_type, const char *body, char *const *headers,
                      uint64_t timeout_usec, KubeDoneFunc cb, void *userdata);

/* A watch (GET ...?watch=1): line_cb gets each line of a 2xx body as it arrives (a watch
 * event's JSON, NUL-terminated), then cb runs once when the answer ends, as for
 * kube_request_full() (body: what is left after the last line, or an error's whole body). */
typedef void (*KubeLineFunc)(KubeClient *k, const char *line, size_t len, void *userdata);
int kube_watch(KubeClient *k, const char *path, uint64_t timeout_usec, KubeLineFunc line_cb,
               KubeDoneFunc cb, void *userdata);

/* A request's failure without an HTTP answer: curl's generic text and its detail (the error
 * buffer: why the certificate was not accepted, expired or not yet valid, unknown CA, name
 * mismatch), with a hint at the clocks for a certificate outside its validity. Pure. */
char *kube_transport_message(CURLcode result, const char *detail);
/* A 404 without a Status ("404 page not found"): the resource type is not served, e.g. a CRD
 * that is not installed. Names the URL. Pure. */
char *kube_not_served_message(const char *url);
/* The message of a Kubernetes Status body, or NULL. Pure. */
char *kube_status_message(const char *body, size_t len);
