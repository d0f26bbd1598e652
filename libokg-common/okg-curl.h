/* libcurl multi driven by sd-event: curl's sockets become IO sources, its timer one relative
 * timer. Transfers finish through a callback; nothing blocks the loop. */
#pragma once

#include <curl/curl.h>
#include <stdbool.h>
#include <systemd/sd-event.h>

/* libcurl is loaded on first use, not linked (see okg-curl.c): the handle-creating calls
 * (curl_easy_init(), curl_multi_init(), curl_url(), curl_slist_append()...) load it and return
 * NULL, after one logged error, when it is not installed. */
#define OKG_LIBCURL_SONAME "libcurl.so.4"
/* Loads it now: 0, or -EOPNOTSUPP (logged once) when it cannot be loaded. */
int okg_curl_load(void);
/* Whether this process has loaded it (for tests and the footprint docs). */
bool okg_curl_loaded(void);

typedef struct CurlGlue CurlGlue;
/* Called once per transfer when it ends (result CURLE_OK or the error). The easy handle has
 * been removed from the multi handle already and belongs to the caller again. */
typedef void (*CurlDoneCallback)(CurlGlue *g, CURL *easy, CURLcode result, void *userdata);

/* Does not load libcurl: the first curl_glue_add() does (-EOPNOTSUPP when it is missing). */
int curl_glue_new(sd_event *e, CurlGlue **ret);
/* How many idle connections the glue keeps for reuse (CURLMOPT_MAXCONNECTS). curl's default
 * follows the transfers running at once, so paced requests to many keep-alive servers keep
 * reconnecting; a caller that talks to N servers in turn sets N. 0: curl's default. */
int curl_glue_set_max_connections(CurlGlue *g, unsigned n);
CurlGlue *curl_glue_free(CurlGlue *g);
static inline void curl_glue_freep(CurlGlue **g) {
        curl_glue_free(*g);
}
/* Starts a transfer. The easy handle stays owned by the caller; CURLOPT_PRIVATE is used by the
 * glue and must not be set by the caller. */
int curl_glue_add(CurlGlue *g, CURL *easy, CurlDoneCallback cb, void *userdata);
/* Cancels a running transfer without calling its callback. Safe on a finished handle. */
void curl_glue_remove(CurlGlue *g, CURL *easy);
unsigned curl_glue_running(const CurlGlue *g);

static inline void curl_easy_cleanupp(CURL **c) {
        if (*c)
                curl_easy_cleanup(*c);
}
static inline void curl_slist_free_allp(struct curl_slist **l) {
        if (*l)
                curl_slist_free_all(*l);
}
static inline void curl_url_cleanupp(CURLU **u) {
        if (*u)
                curl_url_cleanup(*u);
}
/* For strings curl hands out (curl_url_get()). */
static inline void curl_freep(char **p) {
        if (*p)
                curl_free(*p);
}
