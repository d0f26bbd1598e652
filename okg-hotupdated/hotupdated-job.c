/* One HTTP transfer of an update: the download, the reload request, the post-reload check; see
 * hotupdated-job.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hotupdated-decide.h"
#include "hotupdated-job.h"
#include "macro.h"
#include "okg-build-config.h"
#include "okg-util.h"

#define MAX_REDIRECTS 5L
#define CA_FILE_MAX (4U * 1024U * 1024U)

#define EASY_SET(e, opt, val)                                             \
        do {                                                              \
                if (curl_easy_setopt((e), (opt), (val)) != CURLE_OK)      \
                        return -EIO;                                      \
        } while (0)

void job_init(Job *j, CurlGlue *glue, const HotUpdateConfig *config, unsigned codings) {
        *j = (Job) {
                .glue = glue,
                .config = config,
                .codings = codings,
        };
}

void job_stop(Job *j) {
        if (j->easy) {
                curl_glue_remove(j->glue, j->easy);
                curl_easy_cleanup(j->easy);
                j->easy = NULL;
        }
        if (j->headers) {
                curl_slist_free_all(j->headers);
                j->headers = NULL;
        }
        j->post_body = mfree(j->post_body);
        j->content_encoding = mfree(j->content_encoding);
        j->transfer_encoding = mfree(j->transfer_encoding);
        j->decoder = download_decoder_free(j->decoder);
        j->done = NULL;
}

static size_t discard_data(char *ptr, size_t size, size_t nmemb, void *userdata) {
        return size * nmemb;
}

int job_setup(Job *j, const char *url, bool follow, uint64_t connect_ms, uint64_t total_ms) {
        const HotUpdateConfig *c = j->config;
        _cleanup_(freep) char *ca = NULL;
        size_t ca_len = 0;
        CURL *e;
        int r;

        job_stop(j);
        j->errbuf[0] = 0;
        /* caFile is read by us for each transfer that may use TLS, not handed to OpenSSL by
         * path: its blocking fopen() would hang the daemon on a FIFO put there, and a CA
         * rotated on disk is used from the next transfer on. */
        if (c->ca_file && (follow || strncasecmp(url, "https:", 6) == 0)) {
                r = okg_read_ca_file(c->ca_file, CA_FILE_MAX, &ca, &ca_len);
                if (r < 0) {
                        snprintf(j->errbuf, sizeof j->errbuf, "cannot read caFile %s: %s", c->ca_file,
                                 okg_file_strerror(r));
                        return r;
                }
        }
        e = j->easy = curl_easy_init();
        if (!e)
                return -ENOMEM;
        EASY_SET(e, CURLOPT_URL, url);
        EASY_SET(e, CURLOPT_NOSIGNAL, 1L);
        EASY_SET(e, CURLOPT_PROTOCOLS_STR, "http,https");
        EASY_SET(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
        EASY_SET(e, CURLOPT_FOLLOWLOCATION, follow ? 1L : 0L);
        EASY_SET(e, CURLOPT_MAXREDIRS, MAX_REDIRECTS);
        EASY_SET(e, CURLOPT_CONNECTTIMEOUT_MS, (long) connect_ms);
        EASY_SET(e, CURLOPT_TIMEOUT_MS, (long) total_ms);
        EASY_SET(e, CURLOPT_USERAGENT, "okg-hotupdated/" OKG_VERSION);
        EASY_SET(e, CURLOPT_ERRORBUFFER, j->errbuf);
        EASY_SET(e, CURLOPT_WRITEFUNCTION, discard_data);
        if (ca) {
                struct curl_blob blob = {
                        .data = ca,
                        .len = ca_len,
                        .flags = CURL_BLOB_COPY,
                };
                EASY_SET(e, CURLOPT_CAINFO_BLOB, &blob);
        }
        return 0;
}

const char *job_setup_reason(Job *j, int r) {
        return j->errbuf[0] ? j->errbuf : strerror(r < 0 ? -r : r);
}

int job_set_json_body(Job *j, const char *body) {
        j->post_body = strdup(body);
        if (!j->post_body)
                return -ENOMEM;
        j->headers = curl_slist_append(NULL, "Content-Type: application/json");
        if (!j->headers)
                return -ENOMEM;
        EASY_SET(j->easy, CURLOPT_HTTPHEADER, j->headers);
        EASY_SET(j->easy, CURLOPT_POSTFIELDS, j->post_body);
        EASY_SET(j->easy, CURLOPT_POSTFIELDSIZE, (long) strlen(j->post_body));
        return 0;
}

int job_set_method(Job *j, const char *method) {
        if (streq(method, "GET"))
                EASY_SET(j->easy, CURLOPT_HTTPGET, 1L);
        else if (!streq(method, "POST"))
                EASY_SET(j->easy, CURLOPT_CUSTOMREQUEST, method);
        return 0;
}

long job_response_code(Job *j) {
        long code = 0;

        if (j->easy)
                (void) curl_easy_getinfo(j->easy, CURLINFO_RESPONSE_CODE, &code);
        return code;
}

const char *job_reason(Job *j, CURLcode result) {
        if (guard_stopped(&j->guard, result))
                return j->guard.reason;
        return j->errbuf[0] ? j->errbuf : curl_easy_strerror(result);
}

static void on_glue_done(CurlGlue *g, CURL *easy, CURLcode result, void *userdata) {
        Job *j = userdata;
        curl_off_t usec = 0, bytes = 0;

        j->usec = j->bytes = 0;
        if (curl_easy_getinfo(easy, CURLINFO_TOTAL_TIME_T, &usec) == CURLE_OK && usec > 0)
                j->usec = (uint64_t) usec;
        if (curl_easy_getinfo(easy, CURLINFO_SIZE_DOWNLOAD_T, &bytes) == CURLE_OK && bytes > 0)
                j->bytes = (uint64_t) bytes;
        if (j->done)
                j->done(j, result, j->userdata);
}

int job_start(Job *j, DestinationKind kind, JobDone done, void *userdata) {
        int r = guard_attach(&j->guard, j->easy, &j->config->policy, kind);
        if (r >= 0)
                r = curl_glue_add(j->glue, j->easy, on_glue_done, j);
        if (r < 0)
                return r;
        j->done = done;
        j->userdata = userdata;
        return 0;
}

/* ---- download ---- */

/* Decoded bytes: the file. maxFileSizeBytes counts these (a small coded body may expand to
 * much more). */
static int download_sink(const void *data, size_t n, void *userdata) {
        Job *j = userdata;
        int r;

        /* Servers without Content-Length (or one that lies) are cut here. */
        if (j->tmp->size + n > j->config->max_file_size) {
                j->too_large = true;
                return -EFBIG;
        }
        r = files_tmp_write(j->tmp, data, n);
        if (r < 0) {
                j->write_error = r;
                return r;
        }
        sha256_update(&j->hash, data, n);
        return 0;
}

static int download_decoder_setup(Job *j) {
        if (j->decoder)
                return 0;
        return download_decoder_new(j->content_encoding, j->transfer_encoding, &j->decoder);
}

static size_t on_download_data(char *ptr, size_t size, size_t nmemb, void *userdata) {
        Job *j = userdata;
        size_t n = size * nmemb;
        long code = job_response_code(j);
        int r;

        /* Only the body of a 2xx answer is the file; an error page is not written anywhere. */
        if (code < 200 || code > 299) {
                j->bad_status = code;
                return 0;
        }
        r = download_decoder_setup(j);
        if (r >= 0)
                r = download_decoder_feed(j->decoder, ptr, n, download_sink, j);
        if (r == -EBADMSG)
                snprintf(j->refused, sizeof j->refused,
                         "the %s stream the server sent is not valid (corrupt, or followed by "
                         "more bytes); nothing was installed",
                         download_decoder_failed_coding(j->decoder));
        else if (r < 0 && !j->too_large && j->write_error == 0)
                j->write_error = r;
        return r < 0 ? 0 : n;
}

/* Where a redirect goes, resolved against the URL that answered it: 1 when it stays on https, 0
 * when not (*ret_target says where, scheme://host), -ENOMEM. One libcurl cannot parse counts
 * as staying: libcurl refuses it anyway (CURLOPT_REDIR_PROTOCOLS_STR). */
static int redirect_stays_https(Job *j, const char *location, char **ret_target) {
        CURLU *h = curl_url();
        char *base = NULL, *scheme = NULL, *host = NULL;
        int r = 1;

        if (!h)
                return -ENOMEM;
        if (curl_easy_getinfo(j->easy, CURLINFO_EFFECTIVE_URL, &base) == CURLE_OK && base)
                (void) curl_url_set(h, CURLUPART_URL, base, 0);
        if (curl_url_set(h, CURLUPART_URL, location, CURLU_NON_SUPPORT_SCHEME) == CURLUE_OK &&
            curl_url_get(h, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
            strcasecmp(scheme, "https") != 0) {
                (void) curl_url_get(h, CURLUPART_HOST, &host, 0);
                if (asprintf(ret_target, "%s://%s", scheme, strempty(host)) < 0)
                        r = -ENOMEM;
                else
                        r = 0;
        }
        curl_free(scheme);
        curl_free(host);
        curl_url_cleanup(h);
        return r;
}

/* Every header line of every response, redirects included. Refuses, before any byte of a body
 * is taken: a redirect that leaves https (unless allowInsecureRedirects), and a content or
 * transfer coding we cannot decode. The codings of a 2xx answer are kept for its decoder. */
static size_t on_download_header(char *line, size_t size, size_t nmemb, void *userdata) {
        Job *j = userdata;
        size_t n = size * nmemb;
        _cleanup_(freep) char *v = NULL, *target = NULL;
        char bad[64], known[64];
        bool transfer = false;
        long code = job_response_code(j);
        int r;

        if (code >= 300 && code <= 399) {
                if (!j->https_only)
                        return n;
                r = download_header_value(line, n, "Location", &v);
                if (r > 0)
                        r = redirect_stays_https(j, v, &target);
                if (r < 0) {
                        j->write_error = r;
                        return 0;
                }
                if (r == 0 && target) {
                        snprintf(j->refused, sizeof j->refused,
                                 "refused a redirect from https to %s: the file would be fetched "
                                 "without TLS (allowInsecureRedirects: true allows it)",
                                 target);
                        return 0;
                }
                return n;
        }
        if (code < 200 || code > 299)
                return n;
        if (n >= 5 && strncmp(line, "HTTP/", 5) == 0) {
                /* A new response (after a 1xx): its codings only. */
                j->content_encoding = mfree(j->content_encoding);
                j->transfer_encoding = mfree(j->transfer_encoding);
                return n;
        }
        r = download_header_value(line, n, "Content-Encoding", &v);
        if (r == 0) {
                transfer = true;
                r = download_header_value(line, n, "Transfer-Encoding", &v);
        }
        if (r < 0) {
                j->write_error = r;
                return 0;
        }
        if (r == 0)
                return n;
        if (download_coding_check(v, j->codings, transfer, bad, sizeof bad) > 0) {
                download_codings_format(j->codings, known, sizeof known);
                snprintf(j->refused, sizeof j->refused,
                         "the server sent %s: %s, a coding okg-hotupdated cannot decode (it "
                         "decodes %s); nothing was installed",
                         transfer ? "Transfer-Encoding" : "Content-Encoding", bad, known);
                return 0;
        }
        /* The header may come in several lines: their lists add up. */
        char **list = transfer ? &j->transfer_encoding : &j->content_encoding;
        if (*list) {
                char *joined;
                if (asprintf(&joined, "%s, %s", *list, v) < 0) {
                        j->write_error = -ENOMEM;
                        return 0;
                }
                free(*list);
                *list = joined;
        } else
                *list = TAKE_PTR(v);
        return n;
}

int job_download_start(Job *j, const char *url, TmpFile *tmp, JobDone done, void *userdata) {
        const HotUpdateConfig *c = j->config;
        int r;

        j->tmp = tmp;
        sha256_init(&j->hash);
        j->sha256[0] = 0;
        j->bad_status = 0;
        j->too_large = false;
        j->write_error = 0;
        j->refused[0] = 0;
        j->https_only = !c->allow_insecure_redirects && strncasecmp(url, "https:", 6) == 0;

        r = job_setup(j, url, true, (uint64_t) c->connect_timeout_sec * 1000,
                      (uint64_t) c->download_timeout_sec * 1000);
        if (r < 0)
                return r;
        EASY_SET(j->easy, CURLOPT_WRITEFUNCTION, on_download_data);
        EASY_SET(j->easy, CURLOPT_WRITEDATA, j);
        EASY_SET(j->easy, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t) c->max_file_size);
        /* Every coding we decode is asked for and decoded by us (download_decoder_*), not by
         * libcurl, whose decoders take a stream cut short for a whole one: the file, its size
         * limit and its checksum are the decoded content. */
        EASY_SET(j->easy, CURLOPT_ACCEPT_ENCODING, "gzip, deflate, br, zstd");
        EASY_SET(j->easy, CURLOPT_HTTP_CONTENT_DECODING, 0L);
        EASY_SET(j->easy, CURLOPT_HEADERFUNCTION, on_download_header);
        EASY_SET(j->easy, CURLOPT_HEADERDATA, j);
        if (j->https_only)
                EASY_SET(j->easy, CURLOPT_REDIR_PROTOCOLS_STR, "https");
        return job_start(j, DESTINATION_DOWNLOAD, done, userdata);
}

static DownloadEndCause end_cause(CURLcode result) {
        switch (result) {
        case CURLE_OK:
                return DOWNLOAD_END_OK;
        case CURLE_OPERATION_TIMEDOUT:
                return DOWNLOAD_END_TIMED_OUT;
        case CURLE_FILESIZE_EXCEEDED:
                return DOWNLOAD_END_FILESIZE_EXCEEDED;
        case CURLE_UNSUPPORTED_PROTOCOL:
                return DOWNLOAD_END_UNSUPPORTED_PROTOCOL;
        default:
                return DOWNLOAD_END_ERROR;
        }
}

int job_download_end(Job *j, CURLcode result, HotUpdateOutcome *ret, char *msg, size_t size) {
        const HotUpdateConfig *c = j->config;
        DownloadEnd e = {
                .cause = end_cause(result),
                .transfer_error = job_reason(j, result),
                .guard_stopped = guard_stopped(&j->guard, result),
                .guard_reason = j->guard.reason,
                .refused = j->refused,
                .too_large = j->too_large,
                .write_error = j->write_error,
                .bad_status = j->bad_status,
                .response_code = job_response_code(j),
                .https_only = j->https_only,
                .download_dir = c->download_dir,
                .max_file_size = c->max_file_size,
                .connect_timeout_sec = c->connect_timeout_sec,
                .download_timeout_sec = c->download_timeout_sec,
        };

        if (result == CURLE_OK) {
                /* The body is all here: every coded stream must have ended with it. */
                e.decoder_error = download_decoder_setup(j);
                if (e.decoder_error >= 0)
                        e.decoder_error = download_decoder_finish(j->decoder);
                e.failed_coding = j->decoder ? download_decoder_failed_coding(j->decoder) : "";
        }
        if (download_end_outcome(&e, ret, msg, size) > 0)
                return 1;
        job_stop(j);
        sha256_final_hex(&j->hash, j->sha256);
        return 0;
}
