/* One HTTP transfer of an update on the manager's curl multi glue: the download (into an
 * unnamed temp file, decoded by us, hashed as it is written, refused early on a redirect off
 * https or a coding we cannot decode), the reload request and the post-reload check. The
 * destination policy guards every transfer. The owner embeds a Job and is called back once
 * when the transfer ends (like importd's PullJob); how a download ended is decided by
 * download_end_outcome() (hotupdated-decide.h). */
#pragma once

#include <curl/curl.h>
#include <stdbool.h>
#include <stdint.h>

#include "hotupdated-config.h"
#include "hotupdated-download.h"
#include "hotupdated-files.h"
#include "hotupdated-guard.h"
#include "hotupdated-sha256.h"
#include "hotupdated-status.h"
#include "okg-curl.h"

#define JOB_MSG_MAX 512

typedef struct Job Job;
/* The transfer ended with result; the handle is still there (job_response_code() works) until
 * job_stop(). */
typedef void (*JobDone)(Job *j, CURLcode result, void *userdata);

struct Job {
        CurlGlue *glue;
        const HotUpdateConfig *config;
        unsigned codings;               /* DOWNLOAD_CODING_* that we decode */

        CURL *easy;
        struct curl_slist *headers;
        char *post_body;
        char errbuf[CURL_ERROR_SIZE];
        Guard guard;                    /* the destination policy on this transfer */
        JobDone done;
        void *userdata;

        /* download */
        TmpFile *tmp;                   /* the owner's, written to */
        Sha256 hash;
        char sha256[SHA256_HEX_SIZE];   /* once complete */
        long bad_status;
        bool too_large;
        int write_error;
        bool https_only;                /* an https URL: redirects must stay on https */
        char refused[JOB_MSG_MAX];      /* a response the header callback refused, and why */
        char *content_encoding;         /* of the response being received (a 2xx) */
        char *transfer_encoding;
        DownloadDecoder *decoder;       /* set up at its first body byte */
        uint64_t usec, bytes;           /* time taken and bytes received, once it ended */
};

/* A Job that does nothing yet; job_stop() ends what it does. */
void job_init(Job *j, CurlGlue *glue, const HotUpdateConfig *config, unsigned codings);
void job_stop(Job *j);

/* A GET (follow: with redirects) of url; options may be added before job_start(). */
int job_setup(Job *j, const char *url, bool follow, uint64_t connect_ms, uint64_t total_ms);
/* Why job_setup() (or a job_*_start() that calls it) failed with r: caFile that cannot be read
 * and why, else r's text. */
const char *job_setup_reason(Job *j, int r);
/* The request body (JSON) and method of the reload request. */
int job_set_json_body(Job *j, const char *body);
int job_set_method(Job *j, const char *method);
int job_start(Job *j, DestinationKind kind, JobDone done, void *userdata);

long job_response_code(Job *j);
/* Why the transfer failed: the policy's reason, libcurl's message, or its code's text. */
const char *job_reason(Job *j, CURLcode result);

/* Downloads url into tmp (opened by the caller) under the config's limits. */
int job_download_start(Job *j, const char *url, TmpFile *tmp, JobDone done, void *userdata);
/* Once the download ended: 0 when the file is complete (j->sha256 is set, the transfer
 * stopped), else 1 with the outcome and why. */
int job_download_end(Job *j, CURLcode result, HotUpdateOutcome *ret, char *msg, size_t size);
