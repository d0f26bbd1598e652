/* Kubernetes API access; see okg-kube.h. */
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"
#include "okg-build-config.h"
#include "okg-event.h"
#include "okg-kube.h"
#include "okg-list.h"
#include "okg-util.h"
#include "okg-yaml.h"

#define RESPONSE_MAX (4U * 1024U * 1024U)
#define FILE_MAX (1024U * 1024U)

KubeConfig *kube_config_free(KubeConfig *c) {
        if (!c)
                return NULL;
        free(c->server);
        free(c->ca_file);
        free(c->ca_data);
        free(c->token);
        free(c->token_file);
        free(c->namespace);
        free(c->source);
        free(c);
        return NULL;
}

/* ---- base64 ---- */

static int b64_value(char c) {
        if (c >= 'A' && c <= 'Z')
                return c - 'A';
        if (c >= 'a' && c <= 'z')
                return c - 'a' + 26;
        if (c >= '0' && c <= '9')
                return c - '0' + 52;
        if (c == '+')
                return 62;
        if (c == '/')
                return 63;
        return -1;
}

int okg_base64_decode(const char *in, size_t len, char **ret, size_t *ret_len) {
        _cleanup_(freep) char *out = malloc(len / 4 * 3 + 4);
        uint32_t acc = 0;
        size_t n = 0, o = 0, pad = 0;

        if (!out)
                return -ENOMEM;
        for (size_t i = 0; i < len; i++) {
                char c = in[i];
                int v;

                if (isspace((unsigned char) c))
                        continue;
                if (c == '=') {
                        pad++;
                        continue;
                }
                if (pad > 0)
                        return -EINVAL; /* data after padding */
                v = b64_value(c);
                if (v < 0)
                        return -EINVAL;
                acc = acc << 6 | (uint32_t) v;
                if (++n % 4 == 0) {
                        out[o++] = (char) (acc >> 16);
                        out[o++] = (char) (acc >> 8);
                        out[o++] = (char) acc;
                        acc = 0;
                }
        }
        switch (n % 4) {
        case 0:
                break;
        case 2:
                out[o++] = (char) (acc >> 4);
                break;
        case 3:
                out[o++] = (char) (acc >> 10);
                out[o++] = (char) (acc >> 2);
                break;
        default:
                return -EINVAL;
        }
        if (pad > 2)
                return -EINVAL;
        out[o] = 0;
        *ret = TAKE_PTR(out);
        if (ret_len)
                *ret_len = o;
        return 0;
}

/* ---- kubeconfig ---- */

_printf_(2, 3) static int fail(char **ret_error, const char *fmt, ...) {
        va_list ap;

        if (ret_error) {
                va_start(ap, fmt);
                if (vasprintf(ret_error, fmt, ap) < 0)
                        *ret_error = NULL;
                va_end(ap);
        }
        return -EINVAL;
}

static const char *scalar(const OkgNode *m, const char *key) {
        const OkgNode *n = okg_node_get(m, key);
        return n && n->type == OKG_NODE_SCALAR && !okg_node_is_null(n) ? n->scalar : NULL;
}

static char *resolve(const char *dir, const char *path) {
        char *p = NULL;
        if (path[0] == '/' || !dir)
                return strdup(path);
        return asprintf(&p, "%s/%s", dir, path) < 0 ? NULL : p;
}

/* One file of a kubeconfig list, parsed. */
typedef struct KubeconfigRoot {
        OkgNode *root;          /* NULL for an empty file */
        const char *path, *dir;
} KubeconfigRoot;

static void kubeconfig_roots_free(KubeconfigRoot *v, size_t n) {
        for (size_t i = 0; v && i < n; i++)
                okg_node_free(v[i].root);
        free(v);
}

/* "" for a lone text without a path, else " in PATH" or " in PATH, PATH, ...": where a name
 * was looked for, for messages. */
static char *where(const KubeconfigRoot *v, size_t n) {
        char *s = NULL;
        size_t len = 0;
        FILE *f;

        if (n == 0 || (n == 1 && !v[0].path))
                return strdup("");
        f = open_memstream(&s, &len);
        if (!f)
                return NULL;
        fputs(" in ", f);
        for (size_t i = 0; i < n; i++)
                fprintf(f, "%s%s", i > 0 ? ", " : "", strempty(v[i].path));
        if (fclose(f) != 0) {
                free(s);
                return NULL;
        }
        return s;
}

/* kubectl's merge: the first file that has an entry of that name in `list` gives it (its
 * `inner` mapping, or NULL when that entry has none), with the file it came from. */
static const OkgNode *merged_named(const KubeconfigRoot *v, size_t n, const char *list,
                                   const char *name, const char *inner, size_t *ret_file) {
        for (size_t i = 0; name && i < n; i++) {
                const OkgNode *seq = v[i].root ? okg_node_get(v[i].root, list) : NULL;

                if (!seq || seq->type != OKG_NODE_SEQUENCE)
                        continue;
                for (size_t j = 0; j < seq->n; j++) {
                        const char *e = scalar(seq->values[j], "name");
                        if (e && streq(e, name)) {
                                const OkgNode *m = okg_node_get(seq->values[j], inner);
                                *ret_file = i;
                                return m && m->type == OKG_NODE_MAPPING ? m : NULL;
                        }
                }
        }
        return NULL;
}

/* A context's cluster and user turned into a KubeConfig; relative paths resolve against the
 * directory of the file that gave each entry. */
static int kube_config_build(const OkgNode *ctx, const OkgNode *cluster, const char *cluster_dir,
                             const OkgNode *user, const char *user_dir, KubeConfig **ret,
                             char **ret_error) {
        _cleanup_(kube_config_freep) KubeConfig *c = NULL;
        const char *v;
        int r;

        c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;

        v = scalar(cluster, "server");
        if (!v || !startswith(v, "https://"))
                return fail(ret_error, "the cluster's server must be an https:// URL (got %s)",
                            v ? v : "nothing");
        c->server = strdup(v);
        if (!c->server)
                return -ENOMEM;
        while (strlen(c->server) > 8 && c->server[strlen(c->server) - 1] == '/')
                c->server[strlen(c->server) - 1] = 0;

        v = scalar(cluster, "insecure-skip-tls-verify");
        if (v && streq(v, "true"))
                return fail(ret_error, "insecure-skip-tls-verify is refused: TLS is always verified");
        v = scalar(cluster, "certificate-authority-data");
        if (v) {
                r = okg_base64_decode(v, strlen(v), &c->ca_data, NULL);
                if (r < 0)
                        return fail(ret_error, "certificate-authority-data is not valid base64");
        } else if ((v = scalar(cluster, "certificate-authority"))) {
                struct stat st;
                c->ca_file = resolve(cluster_dir, v);
                if (!c->ca_file)
                        return -ENOMEM;
                /* Said at once rather than at each request (which reads it again, refusing
                 * anything but a regular file then too); stat() opens nothing. */
                if (stat(c->ca_file, &st) == 0 && !S_ISREG(st.st_mode))
                        return fail(ret_error, "certificate-authority %s is not a regular file",
                                    c->ca_file);
        }
        /* Without either, the system's CA bundle verifies the server. */

        if (scalar(user, "client-certificate") || scalar(user, "client-certificate-data") ||
            okg_node_get(user, "exec") || okg_node_get(user, "auth-provider"))
                if (!scalar(user, "token") && !scalar(user, "tokenFile"))
                        return fail(ret_error, "the user must authenticate with token or tokenFile "
                                               "(client certificates and exec plugins are not supported)");
        if ((v = scalar(user, "token"))) {
                c->token = strdup(v);
                if (!c->token)
                        return -ENOMEM;
        } else if ((v = scalar(user, "tokenFile"))) {
                c->token_file = resolve(user_dir, v);
                if (!c->token_file)
                        return -ENOMEM;
        } else
                return fail(ret_error, "the user has neither token nor tokenFile");

        v = scalar(ctx, "namespace");
        c->namespace = strdup(v ?: "default");
        if (!c->namespace)
                return -ENOMEM;
        *ret = TAKE_PTR(c);
        return 0;
}

/* The merged view of parsed files: the context (named, or the first current-context), its
 * cluster and its user, each from the first file that names it. */
static int kubeconfig_resolve(const KubeconfigRoot *v, size_t n, const char *context,
                              KubeConfig **ret, char **ret_error) {
        _cleanup_(freep) char *in = where(v, n);
        const OkgNode *ctx, *cluster, *user;
        const char *current = context;
        size_t ctx_file = 0, cluster_file = 0, user_file = 0;

        if (!in)
                return -ENOMEM;
        for (size_t i = 0; !current && i < n; i++)
                if (v[i].root && !isempty(scalar(v[i].root, "current-context")))
                        current = scalar(v[i].root, "current-context");
        if (!current)
                return fail(ret_error, "no current-context%s", in);
        ctx = merged_named(v, n, "contexts", current, "context", &ctx_file);
        if (!ctx)
                return fail(ret_error, "%s \"%s\" is not among the contexts%s",
                            context ? "context" : "current-context", current, in);
        cluster = merged_named(v, n, "clusters", scalar(ctx, "cluster"), "cluster", &cluster_file);
        if (!cluster)
                return fail(ret_error, "the cluster of context \"%s\" is not defined%s", current, in);
        user = merged_named(v, n, "users", scalar(ctx, "user"), "user", &user_file);
        if (!user)
                return fail(ret_error, "the user of context \"%s\" is not defined%s", current, in);
        return kube_config_build(ctx, cluster, v[cluster_file].dir, user, v[user_file].dir, ret,
                                 ret_error);
}

/* Parses one file of the list into *ret (NULL root for an empty file); errors name the file
 * when it has a path. */
static int kubeconfig_root_parse(const KubeconfigFile *file, KubeconfigRoot *ret,
                                 char **ret_error) {
        _cleanup_(okg_node_freep) OkgNode *root = NULL;
        OkgErrors errors = {};
        const char *prefix = file->path ?: "", *sep = file->path ? ": " : "";
        int r;

        *ret = (KubeconfigRoot) { .path = file->path, .dir = file->dir };
        r = okg_yaml_parse_string(file->text, file->len, file->path ?: "kubeconfig", &root, &errors);
        if (r < 0) {
                _cleanup_(freep) char *line =
                        errors.n > 0 ? okg_error_format(&errors.items[0]) : NULL;
                /* The YAML error already starts with the file's name. */
                if (line)
                        r = fail(ret_error, "%s", line);
                else
                        r = fail(ret_error, "%s%sinvalid YAML", prefix, sep);
                okg_errors_done(&errors);
                return r;
        }
        okg_errors_done(&errors);
        if (!root || (root->type == OKG_NODE_SCALAR && okg_node_is_null(root)))
                return 0; /* an empty file sets nothing, as for kubectl */
        if (root->type != OKG_NODE_MAPPING)
                return fail(ret_error, "%s%sa kubeconfig is a mapping", prefix, sep);
        ret->root = TAKE_PTR(root);
        return 0;
}

int kubeconfig_parse_merged(const KubeconfigFile *files, size_t n, const char *context,
                            KubeConfig **ret, char **ret_error) {
        KubeconfigRoot *v = calloc(n ?: 1, sizeof *v);
        int r = 0;

        if (!v)
                return -ENOMEM;
        for (size_t i = 0; r >= 0 && i < n; i++)
                r = kubeconfig_root_parse(&files[i], &v[i], ret_error);
        if (r >= 0)
                r = kubeconfig_resolve(v, n, context, ret, ret_error);
        kubeconfig_roots_free(v, n);
        return r;
}

int kubeconfig_parse(const char *text, size_t len, const char *dir, KubeConfig **ret,
                     char **ret_error) {
        return kubeconfig_parse_context(text, len, dir, NULL, ret, ret_error);
}

int kubeconfig_parse_context(const char *text, size_t len, const char *dir, const char *context,
                             KubeConfig **ret, char **ret_error) {
        const KubeconfigFile f = { .path = NULL, .dir = dir, .text = text, .len = len };
        return kubeconfig_parse_merged(&f, 1, context, ret, ret_error);
}

/* The directory of path ("." when it has none). */
static char *dir_of(const char *path) {
        char *dir = strdup(path), *slash;

        if (!dir)
                return NULL;
        slash = strrchr(dir, '/');
        if (slash == dir)
                slash[1] = 0;
        else if (slash)
                *slash = 0;
        else
                strcpy(dir, ".");
        return dir;
}

int kube_config_from_files(const char *list, const char *context, KubeConfig **ret,
                           char **ret_error) {
        _cleanup_(freep) KubeconfigFile *files = NULL;
        _cleanup_(freep) char *copy = NULL, *source = NULL;
        size_t n = 0, source_len = 0;
        KubeConfig *c = NULL;
        FILE *src;
        char *save = NULL;
        int r = 0;

        copy = strdup(strempty(list));
        files = calloc(strlen(strempty(list)) / 2 + 1, sizeof *files);
        if (!copy || !files)
                return -ENOMEM;
        src = open_memstream(&source, &source_len);
        if (!src)
                return -ENOMEM;
        for (char *p = strtok_r(copy, ":", &save); p; p = strtok_r(NULL, ":", &save)) {
                KubeconfigFile *f = &files[n];
                char *text = NULL;
                bool seen = false;

                /* kubectl reads a file named twice once. */
                for (size_t i = 0; i < n; i++)
                        seen = seen || streq(files[i].path, p);
                if (seen)
                        continue;
                r = okg_read_file(p, FILE_MAX, &text, &f->len);
                if (r == -ENOENT) {
                        r = 0;
                        continue; /* kubectl skips files of the list that do not exist */
                }
                if (r < 0) {
                        (void) fail(ret_error, "cannot read %s: %s", p, strerror(-r));
                        break;
                }
                f->path = p;
                f->text = text;
                f->dir = dir_of(p);
                n++;
                if (!f->dir) {
                        r = -ENOMEM;
                        break;
                }
                fprintf(src, "%s%s", n > 1 ? ":" : "", p);
        }
        if (fclose(src) != 0 && r >= 0)
                r = -ENOMEM;
        if (r >= 0 && n == 0)
                r = (fail(ret_error, "none of the files exists (%s)", strempty(list)), -ENOENT);
        if (r >= 0)
                r = kubeconfig_parse_merged(files, n, context, &c, ret_error);
        for (size_t i = 0; i < n; i++) {
                free((char *) files[i].text);
                free((char *) files[i].dir);
        }
        if (r < 0)
                return r;
        assert(c); /* for the analyzer: kubeconfig_parse_merged() sets it on success */
        c->source = TAKE_PTR(source);
        *ret = c;
        return 0;
}

int kube_config_from_kubeconfig(KubeConfig **ret, char **ret_error) {
        const char *e = getenv("KUBECONFIG");

        if (isempty(e))
                return -ENOENT;
        return kube_config_from_files(e, NULL, ret, ret_error);
}

int kube_config_from_file(const char *path, const char *context, KubeConfig **ret,
                          char **ret_error) {
        _cleanup_(freep) char *text = NULL, *dir = NULL;
        KubeConfig *c = NULL;
        KubeconfigFile f = { .path = path };
        int r;

        r = okg_read_file(path, FILE_MAX, &text, &f.len);
        if (r < 0)
                return fail(ret_error, "cannot read %s: %s", path, strerror(-r)), r;
        dir = dir_of(path);
        if (!dir)
                return -ENOMEM;
        f.text = text;
        f.dir = dir;
        r = kubeconfig_parse_merged(&f, 1, context, &c, ret_error);
        if (r < 0)
                return r;
        assert(c); /* for the analyzer: fail() always returns -EINVAL */
        c->source = strdup(path);
        if (!c->source) {
                kube_config_free(c);
                return -ENOMEM;
        }
        *ret = c;
        return 0;
}

int kube_config_in_cluster(const char *sa_dir, KubeConfig **ret, char **ret_error) {
        _cleanup_(kube_config_freep) KubeConfig *c = NULL;
        const char *host = getenv("KUBERNETES_SERVICE_HOST"), *port = getenv("KUBERNETES_SERVICE_PORT");
        _cleanup_(freep) char *ns_path = NULL, *ns = NULL;
        int r;

        if (isempty(host) || isempty(port))
                return -ENOENT;
        c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;
        if (asprintf(&c->server, strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s", host, port) < 0 ||
            asprintf(&c->ca_file, "%s/ca.crt", sa_dir) < 0 ||
            asprintf(&c->token_file, "%s/token", sa_dir) < 0 ||
            asprintf(&ns_path, "%s/namespace", sa_dir) < 0)
                return -ENOMEM;
        if (access(c->token_file, R_OK) < 0)
                return fail(ret_error, "in a cluster (KUBERNETES_SERVICE_HOST is set) but %s "
                                       "cannot be read: %m", c->token_file);
        r = okg_read_file(ns_path, 4096, &ns, NULL);
        if (r >= 0) {
                ns[strcspn(ns, " \t\r\n")] = 0;
                c->namespace = TAKE_PTR(ns);
        } else
                c->namespace = strdup("default");
        c->source = strdup("in-cluster");
        if (!c->namespace || !c->source)
                return -ENOMEM;
        *ret = TAKE_PTR(c);
        return 0;
}

char *kube_transport_message(CURLcode result, const char *detail) {
        const char *generic = curl_easy_strerror(result);
        const char *hint = "";
        char *m;

        if (isempty(detail) || streq(detail, generic))
                return strdup(generic);
        if (strstr(detail, "has expired") || strstr(detail, "not yet valid"))
                hint = "; check the clocks of this node and of the API server";
        if (asprintf(&m, "%s: %s%s", generic, detail, hint) < 0)
                return NULL;
        return m;
}

char *kube_not_served_message(const char *url) {
        const char *what = strstr(url, "/apis/game.kruise.io/") ?
                "; is the GameServer CRD (OpenKruiseGame) installed?" : "";
        char *m;

        if (asprintf(&m, "The API server does not serve this resource type (404 page not found, "
                     "not a Status): %s%s", url, what) < 0)
                return NULL;
        return m;
}

char *kube_status_message(const char *body, size_t len) {
        json_object *o, *kind, *msg;
        char *m = NULL;

        if (!body || len == 0)
                return NULL;
        o = json_tokener_parse(body);
        if (o && json_object_object_get_ex(o, "kind", &kind) &&
            streq_ptr(json_object_get_string(kind), "Status") &&
            json_object_object_get_ex(o, "message", &msg))
                m = strdup(json_object_get_string(msg));
        json_object_put(o);
        return m;
}

/* ---- client ---- */

typedef struct KubeRequest KubeRequest;

struct KubeClient {
        sd_event *event;
        CurlGlue *curl;           /* the connection pool new requests use; NULL: make one */
        CurlGlue **retired;       /* pools whose connection failed, freed once idle */
        size_t n_retired;
        sd_event_source *reaper;
        uint64_t pools_retired;
        KubeConfig *config;
        char *token;              /* current token (from config or the file) */
        struct stat token_stat;   /* of the file when it was read */
        uint64_t requests;
        KubeRequest *requests_head;
        char *user_agent;
};

struct KubeRequest {
        KubeClient *client;
        LIST_FIELDS(KubeRequest, requests);
        CurlGlue *glue;           /* the pool the transfer runs in */
        CURL *easy;
        struct curl_slist *headers;
        char *method, *url, *content_type, *body;
        char **extra_headers;     /* NULL-terminated "Name: value" lines, or NULL */
        uint64_t timeout_usec;
        char *response;
        size_t response_len;
        char errbuf[CURL_ERROR_SIZE]; /* curl's detail: the TLS verification reason, ... */
        bool retried;
        CURLcode unsent;          /* why it could not be sent, told from unsent_source */
        sd_event_source *unsent_source;
        KubeDoneFunc cb;
        KubeLineFunc line_cb;     /* a watch: each line of a 2xx body as it arrives */
        void *userdata;
};

static int client_load_token(KubeClient *k, bool force) {
        _cleanup_(freep) char *t = NULL;
        struct stat st;
        int r;

        if (!k->config->token_file)
                return 0;
        if (stat(k->config->token_file, &st) < 0)
                return -errno;
        if (!force && k->token && st.st_ino == k->token_stat.st_ino &&
            st.st_size == k->token_stat.st_size &&
            st.st_mtim.tv_sec == k->token_stat.st_mtim.tv_sec &&
            st.st_mtim.tv_nsec == k->token_stat.st_mtim.tv_nsec)
                return 0;
        r = okg_read_file(k->config->token_file, FILE_MAX, &t, NULL);
        if (r < 0)
                return r;
        t[strcspn(t, " \t\r\n")] = 0;
        if (!streq_ptr(t, k->token))
                log_info("Using the token in %s%s.", k->config->token_file, k->token ? " (changed)" : "");
        free(k->token);
        k->token = TAKE_PTR(t);
        k->token_stat = st;
        return 0;
}

static char **strv_copy(char *const *l) {
        size_t n = 0;
        char **c;

        while (l[n])
                n++;
        c = calloc(n + 1, sizeof(char *));
        if (!c)
                return NULL;
        for (size_t i = 0; i < n; i++)
                if (!(c[i] = strdup(l[i]))) {
                        strv_free(c);
                        return NULL;
                }
        return c;
}

static KubeRequest *request_free(KubeRequest *q) {
        if (!q)
                return NULL;
        if (q->easy) {
                curl_glue_remove(q->glue, q->easy);
                curl_easy_cleanup(q->easy);
        }
        sd_event_source_disable_unref(q->unsent_source);
        if (LIST_LINKED(requests, q->client->requests_head, q))
                LIST_REMOVE(requests, q->client->requests_head, q);
        curl_slist_free_all(q->headers);
        free(q->method);
        free(q->url);
        free(q->content_type);
        free(q->body);
        free(q->response);
        strv_free(q->extra_headers);
        free(q);
        return NULL;
}

/* A watch's body is one JSON object per line: each complete line goes to the callback as it
 * arrives (only for a 2xx answer; an error's body is kept whole for its Status message). */
static void stream_lines(KubeRequest *q) {
        long status = 0;
        char *nl;

        if (curl_easy_getinfo(q->easy, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK ||
            status < 200 || status >= 300)
                return;
        while ((nl = memchr(q->response, '\n', q->response_len))) {
                size_t len = (size_t) (nl - q->response);
                *nl = 0;
                if (len > 0)
                        q->line_cb(q->client, q->response, len, q->userdata);
                memmove(q->response, nl + 1, q->response_len - len - 1);
                q->response_len -= len + 1;
                q->response[q->response_len] = 0;
        }
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata) {
        KubeRequest *q = userdata;
        size_t n = size * nmemb;
        char *t;

        if (q->response_len + n > RESPONSE_MAX)
                return 0; /* aborts the transfer: nothing we ask for is that large (nor a line) */
        t = realloc(q->response, q->response_len + n + 1);
        if (!t)
                return 0;
        q->response = t;
        memcpy(q->response + q->response_len, ptr, n);
        q->response_len += n;
        q->response[q->response_len] = 0;
        if (q->line_cb)
                stream_lines(q);
        return n;
}

static int request_send(KubeRequest *q);

static bool is_status(const KubeRequest *q) {
        _cleanup_(freep) char *m = kube_status_message(q->response, q->response_len);
        return m != NULL;
}

/* Frees the retired pools nothing runs in any more. A deferred event: a pool must not be
 * freed from inside one of its own done callbacks. */
static int on_reap(sd_event_source *s, void *userdata) {
        KubeClient *k = userdata;
        size_t j = 0;

        for (size_t i = 0; i < k->n_retired; i++) {
                if (curl_glue_running(k->retired[i]) == 0)
                        curl_glue_free(k->retired[i]);
                else
                        k->retired[j++] = k->retired[i];
        }
        k->n_retired = j;
        return 0;
}

static void schedule_reap(KubeClient *k) {
        int r = okg_defer_arm(k->event, &k->reaper, on_reap, k, NULL);

        if (r < 0)
                log_debug_errno(r, "Cannot schedule freeing retired connections: %m");
}

/* A request failed without an HTTP answer: the connection it ran on (HTTP/2 multiplexes every
 * request onto one) may be half dead, open but carrying no bytes, and curl would keep handing
 * it to the next request. Retire the whole pool so the next request opens a new connection;
 * requests still running in the old pool finish or time out there. */
static void client_retire_pool(KubeClient *k, CurlGlue *g, CURLcode why) {
        CurlGlue **t;

        if (!g || g != k->curl)
                return; /* retired already */
        t = realloc(k->retired, (k->n_retired + 1) * sizeof(CurlGlue *));
        if (!t) {
                log_warning("Out of memory; keeping a connection that failed (%s).", curl_easy_strerror(why));
                return;
        }
        k->retired = t;
        k->retired[k->n_retired++] = g;
        k->curl = NULL;
        k->pools_retired++;
        /* Worth a line when a connection was there to retire, not for each retry of an
         * outage that refuses connections. */
        log_full(why == CURLE_COULDNT_CONNECT || why == CURLE_COULDNT_RESOLVE_HOST ? LOG_DEBUG : LOG_INFO,
                 "A request to the API server failed (%s); the next one opens a new connection.",
                 curl_easy_strerror(why));
        schedule_reap(k);
}

static void on_done(CurlGlue *g, CURL *easy, CURLcode result, void *userdata) {
        KubeRequest *q = userdata;
        KubeClient *k = q->client;
        _cleanup_(freep) char *message = NULL;
        KubeResponse r = { .curl = result };
        curl_off_t retry_after = 0;

        if (result == CURLE_OK)
                (void) curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &r.status);
        if (result == CURLE_OK && curl_easy_getinfo(easy, CURLINFO_RETRY_AFTER, &retry_after) == CURLE_OK &&
            retry_after > 0)
                r.retry_after_usec = (uint64_t) retry_after * USEC_PER_SEC;

        if (r.status == 401 && !q->retried && k->config->token_file && is_status(q)) {
                /* Bound tokens rotate: read the file again and give the request one more go.
                 * Only for the API server's own refusal (a Status): a 401 from behind the pod
                 * proxy is the pod's answer, and sending the request again would not change it. */
                q->retried = true;
                (void) client_load_token(k, true);
                curl_easy_cleanup(q->easy);
                q->easy = NULL;
                q->response_len = 0;
                if (request_send(q) >= 0)
                        return;
        }

        if (result != CURLE_OK && easy)
                client_retire_pool(k, q->glue, result);
        if (q->glue != k->curl)
                schedule_reap(k);

        if (result != CURLE_OK)
                message = kube_transport_message(result, q->errbuf);
        else if (!(r.status >= 200 && r.status < 300)) {
                message = kube_status_message(q->response, q->response_len);
                if (!message && r.status == 404)
                        /* "404 page not found": no such resource type, not a missing object. */
                        message = kube_not_served_message(q->url);
                if (!message && asprintf(&message, "HTTP %ld from the API server", r.status) < 0)
                        message = NULL;
        }
        r.message = message;
        r.body = q->response ?: "";
        r.body_len = q->response_len;
        curl_easy_cleanup(q->easy);
        q->easy = NULL;
        q->cb(k, &r, q->userdata);
        request_free(q);
}

/* A request that could not be sent ends as a failed transfer would, through its callback (on a
 * later loop iteration: the caller is still setting up), so that every caller retries it as it
 * retries an unreachable API server. */
static int on_unsent(sd_event_source *s, void *userdata) {
        KubeRequest *q = userdata;

        on_done(NULL, NULL, q->unsent, q);
        return 0;
}

static int request_unsent(KubeRequest *q, CURLcode why) {
        q->unsent = why;
        return okg_defer_arm(q->client->event, &q->unsent_source, on_unsent, q, NULL);
}

static int request_send(KubeRequest *q) {
        KubeClient *k = q->client;
        _cleanup_(freep) char *auth = NULL, *ca = NULL;
        size_t ca_len = 0;
        CURL *c;
        int r;

        /* The certificate authority is read by us for each request, not handed to OpenSSL by
         * path: its blocking fopen() would hang on a FIFO put there, and a CA rotated on disk
         * is used from the next request on (a changed CA does not match the old connection's,
         * so that one is not reused for it). */
        if (k->config->ca_file) {
                r = okg_read_ca_file(k->config->ca_file, FILE_MAX, &ca, &ca_len);
                if (r < 0) {
                        snprintf(q->errbuf, sizeof q->errbuf, "cannot read the certificate authority %s: %s",
                                 k->config->ca_file, okg_file_strerror(r));
                        log_warning("Not sending a request to the API server: %s.", q->errbuf);
                        return request_unsent(q, CURLE_SSL_CACERT_BADFILE);
                }
        }

        r = client_load_token(k, false);
        if (r < 0)
                log_warning_errno(r, "Cannot read the token file %s: %m", k->config->token_file);

        if (!k->curl) {
                r = curl_glue_new(k->event, &k->curl);
                if (r < 0)
                        return r;
        }
        c = curl_easy_init();
        if (!c)
                return -ENOMEM;
        curl_slist_free_all(q->headers);
        q->headers = NULL;
        if (k->token && asprintf(&auth, "Authorization: Bearer %s", k->token) >= 0)
                q->headers = curl_slist_append(q->headers, auth);
        q->headers = curl_slist_append(q->headers, "Accept: application/json");
        for (char **h = q->extra_headers; h && *h; h++)
                q->headers = curl_slist_append(q->headers, *h);
        if (q->content_type) {
                _cleanup_(freep) char *ct = NULL;
                if (asprintf(&ct, "Content-Type: %s", q->content_type) >= 0)
                        q->headers = curl_slist_append(q->headers, ct);
        }
        (void) curl_easy_setopt(c, CURLOPT_URL, q->url);
        (void) curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, q->method);
        (void) curl_easy_setopt(c, CURLOPT_HTTPHEADER, q->headers);
        (void) curl_easy_setopt(c, CURLOPT_USERAGENT, k->user_agent ?: "okg-storaged/" OKG_VERSION);
        (void) curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        (void) curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
        (void) curl_easy_setopt(c, CURLOPT_TIMEOUT_MS,
                                (long) ((q->timeout_usec ?: 30 * USEC_PER_SEC) / USEC_PER_MSEC));
        (void) curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
        (void) curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
        (void) curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
        (void) curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
        /* Requests made while the first connection is still being set up wait for it and
         * share it (HTTP/2), instead of each opening its own: a start issues several at once. */
        (void) curl_easy_setopt(c, CURLOPT_PIPEWAIT, 1L);
        /* Idle connections: TCP keep-alive notices a peer or NAT entry that is gone, and a
         * connection idle for longer than client-go's HTTP/2 read-idle timeout is not trusted
         * with a write but replaced (libcurl 7.88 has no HTTP/2 PING that waits for the
         * answer on the multi interface). */
        (void) curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
        (void) curl_easy_setopt(c, CURLOPT_TCP_KEEPIDLE, (long) KUBE_KEEPALIVE_IDLE_SEC);
        (void) curl_easy_setopt(c, CURLOPT_TCP_KEEPINTVL, (long) KUBE_KEEPALIVE_INTERVAL_SEC);
        (void) curl_easy_setopt(c, CURLOPT_MAXAGE_CONN, (long) KUBE_IDLE_REUSE_SEC);
        if (ca || k->config->ca_data) {
                struct curl_blob blob = {
                        .data = ca ?: k->config->ca_data,
                        .len = ca ? ca_len : strlen(k->config->ca_data),
                        .flags = CURL_BLOB_COPY,
                };
                (void) curl_easy_setopt(c, CURLOPT_CAINFO_BLOB, &blob);
        }
        q->errbuf[0] = 0;
        (void) curl_easy_setopt(c, CURLOPT_ERRORBUFFER, q->errbuf);
        (void) curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
        (void) curl_easy_setopt(c, CURLOPT_WRITEDATA, q);
        if (q->body) {
                (void) curl_easy_setopt(c, CURLOPT_POSTFIELDS, q->body);
                (void) curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long) strlen(q->body));
        }
        q->easy = c;
        q->glue = k->curl;
        r = curl_glue_add(k->curl, c, on_done, q);
        if (r < 0) {
                curl_easy_cleanup(c);
                q->easy = NULL;
                return r;
        }
        k->requests++;
        return 0;
}

int kube_request(KubeClient *k, const char *method, const char *path, const char *content_type,
                 const char *body, KubeDoneFunc cb, void *userdata) {
        return kube_request_full(k, method, path, content_type, body, NULL, 0, cb, userdata);
}

int kube_request_full(KubeClient *k, const char *method, const char *path,
                      const char *content_type, const char *body, char *const *headers,
                      uint64_t timeout_usec, KubeDoneFunc cb, void *userdata) {
        KubeRequest *q = calloc(1, sizeof *q);
        int r;

        if (!q)
                return -ENOMEM;
        q->client = k;
        q->timeout_usec = timeout_usec;
        if (headers) {
                q->extra_headers = strv_copy(headers);
                if (!q->extra_headers) {
                        free(q);
                        return -ENOMEM;
                }
        }
        q->cb = cb;
        q->userdata = userdata;
        q->method = strdup(method);
        q->content_type = content_type ? strdup(content_type) : NULL;
        q->body = body ? strdup(body) : NULL;
        if (!q->method || (content_type && !q->content_type) || (body && !q->body) ||
            asprintf(&q->url, "%s%s", k->config->server, path) < 0) {
                q->url = NULL;
                request_free(q);
                return -ENOMEM;
        }
        LIST_PREPEND(requests, k->requests_head, q);
        r = request_send(q);
        if (r < 0) {
                request_free(q);
                return r;
        }
        return 0;
}

int kube_watch(KubeClient *k, const char *path, uint64_t timeout_usec, KubeLineFunc line_cb,
               KubeDoneFunc cb, void *userdata) {
        KubeRequest *q;
        int r;

        r = kube_request_full(k, "GET", path, NULL, NULL, NULL, timeout_usec, cb, userdata);
        if (r < 0)
                return r;
        q = k->requests_head; /* the one just added */
        q->line_cb = line_cb;
        return 0;
}

int kube_client_new(sd_event *e, KubeConfig *config, KubeClientFlags flags, KubeClient **ret) {
        _cleanup_(kube_client_freep) KubeClient *k = calloc(1, sizeof(KubeClient));
        int r;

        if (!k)
                return -ENOMEM;
        k->event = sd_event_ref(e);
        r = curl_glue_new(e, &k->curl);
        if (r < 0)
                return r;
        if (config->token) {
                k->token = strdup(config->token);
                if (!k->token)
                        return -ENOMEM;
        }
        k->config = config;
        r = client_load_token(k, true);
        if (r < 0) {
                if (!(flags & KUBE_CLIENT_WAIT_FOR_TOKEN)) {
                        k->config = NULL; /* still the caller's on failure */
                        return r;
                }
                log_warning_errno(r, "Cannot read the token file %s yet: %m", config->token_file);
        }
        *ret = TAKE_PTR(k);
        return 0;
}

KubeClient *kube_client_free(KubeClient *k) {
        if (!k)
                return NULL;
        while (k->requests_head)
                request_free(k->requests_head);
        curl_glue_free(k->curl);
        for (size_t i = 0; i < k->n_retired; i++)
                curl_glue_free(k->retired[i]);
        free(k->retired);
        sd_event_source_disable_unref(k->reaper);
        kube_config_free(k->config);
        sd_event_unref(k->event);
        free(k->token);
        free(k->user_agent);
        free(k);
        return NULL;
}

const KubeConfig *kube_client_config(const KubeClient *k) {
        return k->config;
}

uint64_t kube_client_requests(const KubeClient *k) {
        return k->requests;
}

int kube_client_set_user_agent(KubeClient *k, const char *user_agent) {
        char *u = strdup(user_agent);

        if (!u)
                return -ENOMEM;
        free(k->user_agent);
        k->user_agent = u;
        return 0;
}

CurlGlue *kube_client_curl(KubeClient *k) {
        return k->curl;
}

uint64_t kube_client_pools_retired(const KubeClient *k) {
        return k->pools_retired;
}
