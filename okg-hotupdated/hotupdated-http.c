/* The /hot-update HTTP service: libmicrohttpd on the daemon's loop (okg-http-server.h). A POST
 * that starts an update parks its connection (MHD_suspend_connection) until the outcome is
 * known; everything refused is answered at once, most of it before the body is read. The status
 * codes come from hotupdated-status.c; docs/hot-update.md has the table. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hotupdated-manager.h"
#include "hotupdated-sha256.h"
#include "log.h"
#include "macro.h"
#include "okg-http-server.h"
#include "okg-json.h"
#include "okg-util.h"

#define PATH "/hot-update"
#define TOKEN_MAX 4096
/* A body over the cap is read and thrown away up to this much (so the client gets its 413);
 * beyond, the connection is cut. */
#define DISCARD_MAX ((uint64_t) 1024 * 1024)

typedef struct HttpRequest {
        Waiter waiter;              /* first: the Waiter pointer is the HttpRequest pointer */
        Manager *m;
        struct MHD_Connection *connection;
        HotUpdateBodyKind kind;
        char *body;
        size_t len;
        uint64_t discarded;
        bool too_large;
        bool suspended;
        bool answered;
        unsigned status;
        char *response;
        uint64_t deadline;
} HttpRequest;

DEFINE_TRIVIAL_CLEANUP_FUNC(struct MHD_Response *, MHD_destroy_response);

static enum MHD_Result queue_text(struct MHD_Connection *c, unsigned status, const char *text,
                                  const char *header, const char *value) {
        _cleanup_(MHD_destroy_responsep) struct MHD_Response *resp = NULL;

        resp = MHD_create_response_from_buffer(strlen(text), (void *) text, MHD_RESPMEM_MUST_COPY);
        if (!resp)
                return MHD_NO;
        if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json") != MHD_YES ||
            MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store") != MHD_YES)
                return MHD_NO;
        if (header && MHD_add_response_header(resp, header, value) != MHD_YES)
                return MHD_NO;
        return MHD_queue_response(c, status, resp);
}

static char *result_text(const HotUpdateResult *r, bool recorded) {
        _cleanup_(json_object_putp) json_object *o = hotupdate_result_to_json(r);
        const char *s;
        char *t;

        if (!o)
                return NULL;
        if (json_object_object_add(o, "recorded", json_object_new_boolean(recorded)) < 0)
                return NULL;
        s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                                      JSON_C_TO_STRING_NOSLASHESCAPE);
        if (!s || asprintf(&t, "%s\n", s) < 0)
                return NULL;
        return t;
}

static enum MHD_Result respond_result(struct MHD_Connection *c, const HotUpdateResult *r,
                                      bool recorded) {
        _cleanup_(freep) char *text = result_text(r, recorded);
        unsigned status = hotupdate_outcome_http_status(r->outcome);

        if (!text)
                return MHD_NO;
        if (r->outcome == OUTCOME_UNAUTHORIZED)
                return queue_text(c, status, text, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                  "Bearer realm=\"okg-hotupdated\"");
        if (r->outcome == OUTCOME_METHOD_NOT_ALLOWED)
                return queue_text(c, status, text, MHD_HTTP_HEADER_ALLOW, "GET, HEAD, POST");
        return queue_text(c, status, text, NULL, NULL);
}

/* A refusal before the manager saw the request: not recorded anywhere but the log. */
static enum MHD_Result refuse(Manager *m, struct MHD_Connection *c, HotUpdateOutcome o,
                              const char *message, const HotUpdateParams *p) {
        HotUpdateResult r = {};
        enum MHD_Result ret;

        log_info("Refused a /hot-update request: %s: %s", hotupdate_outcome_to_string(o), message);
        if (manager_refusal(m, o, message, p, &r) < 0)
                return MHD_NO;
        ret = respond_result(c, &r, false);
        hotupdate_result_done(&r);
        return ret;
}

static enum MHD_Result respond_status(Manager *m, struct MHD_Connection *c) {
        _cleanup_(json_object_putp) json_object *o = manager_status_json(m);
        _cleanup_(freep) char *t = NULL;

        if (!o || asprintf(&t, "%s\n", json_object_to_json_string_ext(
                                                  o, JSON_C_TO_STRING_PLAIN |
                                                             JSON_C_TO_STRING_NOSLASHESCAPE)) < 0)
                return MHD_NO;
        return queue_text(c, 200, t, NULL, NULL);
}

/* 0: allowed; 1: unauthorized (reason in msg); negative: the token cannot be read. The token is
 * read on every request, so a rotated Secret takes effect without a restart. */
static int check_auth(Manager *m, struct MHD_Connection *c, const char **ret_reason) {
        const HotUpdateConfig *cfg = manager_config(m);
        _cleanup_(freep) char *token = NULL;
        const char *h;
        size_t len;
        int r;

        if (!cfg->auth_token_file)
                return 0;
        r = okg_read_file(cfg->auth_token_file, TOKEN_MAX, &token, &len);
        if (r < 0)
                return log_error_errno(r, "Cannot read authTokenFile %s: %m", cfg->auth_token_file);
        while (len > 0 && strchr(" \t\r\n", token[len - 1]))
                token[--len] = 0;
        if (len == 0 || memchr(token, 0, len)) {
                log_error("authTokenFile %s is empty or not text; refusing every request.",
                          cfg->auth_token_file);
                return -EBADMSG;
        }

        /* The API server's pod proxy consumes Authorization (it authenticates the caller with
         * it and drops it), so a request through the proxy carries the token in its own
         * header, which the proxy passes on. */
        h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Hot-Update-Token");
        if (!h) {
                h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
                if (!h) {
                        *ret_reason = "missing Authorization: Bearer <token> (or X-Hot-Update-Token)";
                        return 1;
                }
                if (strncasecmp(h, "Bearer ", 7) != 0) {
                        *ret_reason = "expected Authorization: Bearer <token>";
                        return 1;
                }
                h += 7;
        }
        while (*h == ' ')
                h++;
        if (!secret_equal(h, token)) {
                *ret_reason = "wrong bearer token";
                return 1;
        }
        return 0;
}

typedef struct ArgsCtx {
        HotUpdateParams *p;
        char err[HOTUPDATE_ERR_MAX];
        int r;
} ArgsCtx;

static enum MHD_Result on_query_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                    size_t key_size, const char *value, size_t value_size) {
        ArgsCtx *a = cls;

        if (!key || key_size != strlen(key)) {
                snprintf(a->err, sizeof a->err, "parameter name contains a NUL byte");
                a->r = -EINVAL;
                return MHD_NO;
        }
        a->r = hotupdate_params_set(a->p, key, value, value ? value_size : 0, a->err, sizeof a->err);
        return a->r < 0 ? MHD_NO : MHD_YES;
}

static void http_done(Waiter *w, const HotUpdateResult *r, bool recorded) {
        HttpRequest *req = (HttpRequest *) w;

        req->status = hotupdate_outcome_http_status(r->outcome);
        free(req->response);
        req->response = result_text(r, recorded);
        req->answered = true;
        if (req->suspended) {
                req->suspended = false;
                MHD_resume_connection(req->connection);
                okg_http_server_kick(manager_http(req->m));
        }
}

static enum MHD_Result handle_post_complete(Manager *m, HttpRequest *req) {
        struct MHD_Connection *c = req->connection;
        HotUpdateParams p = {};
        HotUpdateResult res = {};
        ArgsCtx a = { .p = &p };
        enum MHD_Result ret;
        int r;

        if (req->too_large) {
                char msg[128];
                snprintf(msg, sizeof msg, "request body is larger than %u bytes", HOTUPDATE_MAX_BODY);
                return refuse(m, c, OUTCOME_REQUEST_TOO_LARGE, msg, NULL);
        }

        (void) MHD_get_connection_values_n(c, MHD_GET_ARGUMENT_KIND, on_query_arg, &a);
        r = a.r;
        if (r >= 0 && req->len > 0) {
                if (req->kind == BODY_JSON)
                        r = hotupdate_parse_json(req->body, req->len, &p, a.err, sizeof a.err);
                else
                        r = hotupdate_parse_form(req->body, req->len, &p, a.err, sizeof a.err);
        }
        if (r >= 0)
                r = hotupdate_params_finish(&p, a.err, sizeof a.err);
        if (r < 0) {
                ret = r == -ENOMEM ? MHD_NO : refuse(m, c, OUTCOME_INVALID, a.err, &p);
                hotupdate_params_done(&p);
                return ret;
        }

        req->waiter.done = http_done;
        r = manager_submit(m, &p, &req->waiter, &res);
        hotupdate_params_done(&p);
        if (r < 0)
                return MHD_NO;
        if (r > 0) {
                log_info("Refused a /hot-update request: %s: %s",
                         hotupdate_outcome_to_string(res.outcome), strempty(res.message));
                ret = respond_result(c, &res, false);
                hotupdate_result_done(&res);
                return ret;
        }
        /* The answer comes when the update ends: http_done() resumes the connection and this
         * handler is called again. */
        req->suspended = true;
        MHD_suspend_connection(c);
        return MHD_YES;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
                               const char *method, const char *version, const char *upload_data,
                               size_t *upload_data_size, void **con_cls) {
        Manager *m = cls;
        HttpRequest *req = *con_cls;

        if (!req) {
                const HotUpdateConfig *cfg = manager_config(m);
                const char *reason = NULL, *ct, *cl;
                bool get, post;
                int r;

                if (!streq(url, PATH))
                        return refuse(m, c, OUTCOME_NOT_FOUND, "no such path; the API is /hot-update",
                                      NULL);
                get = streq(method, MHD_HTTP_METHOD_GET) || streq(method, MHD_HTTP_METHOD_HEAD);
                post = streq(method, MHD_HTTP_METHOD_POST);
                if (!get && !post)
                        return refuse(m, c, OUTCOME_METHOD_NOT_ALLOWED,
                                      "use POST to update, GET to read the state", NULL);

                r = check_auth(m, c, &reason);
                if (r < 0)
                        return refuse(m, c, OUTCOME_FAILED,
                                      "the token file (authTokenFile) cannot be read", NULL);
                if (r > 0)
                        return refuse(m, c, OUTCOME_UNAUTHORIZED, reason, NULL);
                if (get)
                        return respond_status(m, c);

                ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
                if (hotupdate_body_kind(ct) == BODY_UNSUPPORTED)
                        return refuse(m, c, OUTCOME_UNSUPPORTED_MEDIA_TYPE,
                                      "use application/x-www-form-urlencoded or application/json",
                                      NULL);
                cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
                if (cl && strtoull(cl, NULL, 10) > HOTUPDATE_MAX_BODY) {
                        char msg[128];
                        snprintf(msg, sizeof msg, "request body is larger than %u bytes",
                                 HOTUPDATE_MAX_BODY);
                        return refuse(m, c, OUTCOME_REQUEST_TOO_LARGE, msg, NULL);
                }

                req = calloc(1, sizeof *req);
                if (!req)
                        return MHD_NO;
                req->m = m;
                req->connection = c;
                req->kind = hotupdate_body_kind(ct);
                req->deadline = okg_now_usec() + (uint64_t) cfg->client_timeout_sec * USEC_PER_SEC;
                *con_cls = req;
                return MHD_YES;
        }

        if (req->answered)
                return queue_text(c, req->status, req->response ?: "{}\n", NULL, NULL);
        if (req->suspended)
                return MHD_YES;

        if (*upload_data_size > 0) {
                size_t n = *upload_data_size;

                /* A client that trickles its body keeps resetting MHD's idle timeout. */
                if (okg_now_usec() > req->deadline) {
                        log_info("Dropping a /hot-update client that did not send its body "
                                 "within clientTimeoutSeconds.");
                        return MHD_NO;
                }
                if (req->too_large || req->len + n > HOTUPDATE_MAX_BODY) {
                        req->too_large = true;
                        req->discarded += n;
                        if (req->discarded > DISCARD_MAX)
                                return MHD_NO;
                } else {
                        char *b = realloc(req->body, req->len + n + 1);
                        if (!b)
                                return MHD_NO;
                        memcpy(b + req->len, upload_data, n);
                        req->len += n;
                        b[req->len] = 0;
                        req->body = b;
                }
                *upload_data_size = 0;
                return MHD_YES;
        }

        return handle_post_complete(m, req);
}

static void request_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                              enum MHD_RequestTerminationCode toe) {
        HttpRequest *req = *con_cls;

        if (!req)
                return;
        /* Still waiting for an update (the server is going away): it goes on without us. */
        waiter_detach(&req->waiter);
        free(req->body);
        free(req->response);
        free(req);
        *con_cls = NULL;
}

int hotupdate_http_start(Manager *m, OkgHttpServer **ret) {
        const HotUpdateConfig *c = manager_config(m);
        OkgHttpServerOptions opts = {
                .connection_limit = 64,
                .per_ip_limit = 16,
                .connection_timeout_sec = c->client_timeout_sec,
                .request_completed = request_completed,
        };

        return okg_http_server_new(manager_event(m), c->bind_address, c->port, &opts, handler, m,
                                   ret);
}
