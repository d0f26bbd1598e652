/* okg-dlopen: a missing library or symbol is one clear error, remembered; libcurl is loaded by
 * the first call that needs it, not by setting up the curl glue. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "okg-curl.h"
#include "okg-dlopen.h"
#include "okg-test.h"

static void test_missing_library(void) {
        void *handle = NULL, *p = NULL;
        int error = 0;
        const OkgDlSym syms[] = { { "anything", &p } };

        ASSERT_EQ(okg_dlopen_many(&handle, &error, "libokg-no-such-library.so.0", "a test",
                                  syms, 1), -EOPNOTSUPP);
        ASSERT_TRUE(!handle);
        ASSERT_TRUE(!p);
        /* Remembered: no second attempt. */
        ASSERT_EQ(error, -EOPNOTSUPP);
        ASSERT_EQ(okg_dlopen_many(&handle, &error, "libokg-no-such-library.so.0", "a test",
                                  syms, 1), -EOPNOTSUPP);
}

static void test_missing_symbol(void) {
        void *handle = NULL, *a = NULL, *b = NULL;
        int error = 0;
        /* libc.so.6 is always there; the second name is not in it. */
        const OkgDlSym syms[] = { { "strlen", &a }, { "okg_no_such_symbol", &b } };

        ASSERT_EQ(okg_dlopen_many(&handle, &error, "libc.so.6", "a test", syms, 2), -EOPNOTSUPP);
        ASSERT_TRUE(!handle);
        ASSERT_TRUE(!a);  /* nothing half-resolved */
        ASSERT_TRUE(!b);
}

static void test_present(void) {
        void *handle = NULL, *a = NULL;
        int error = 0;
        const OkgDlSym syms[] = { { "strlen", &a } };

        ASSERT_EQ(okg_dlopen_many(&handle, &error, "libc.so.6", "a test", syms, 1), 0);
        ASSERT_TRUE(handle);
        ASSERT_TRUE(a);
        ASSERT_EQ(((size_t (*)(const char *)) a)("four"), 4u);
        /* Loaded once. */
        ASSERT_EQ(okg_dlopen_many(&handle, &error, "libc.so.6", "a test", syms, 1), 0);
}

static void test_curl_on_first_use(void) {
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        CurlGlue *g = NULL;

        ASSERT_EQ(sd_event_new(&e), 0);
        /* Nothing before: a process that never makes a request never maps libcurl. */
        ASSERT_TRUE(!okg_curl_loaded());
        ASSERT_EQ(curl_glue_new(e, &g), 0);
        ASSERT_EQ(curl_glue_set_max_connections(g, 7), 0);
        curl_glue_remove(g, NULL);
        curl_slist_free_all(NULL);
        curl_easy_cleanup(NULL);
        ASSERT_TRUE(!okg_curl_loaded());

        /* The first handle loads it. */
        CURL *c = curl_easy_init();
        ASSERT_TRUE(c);
        ASSERT_TRUE(okg_curl_loaded());
        ASSERT_EQ(curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5L), CURLE_OK);
        ASSERT_EQ(curl_easy_setopt(c, CURLOPT_URL, "http://127.0.0.1:1/"), CURLE_OK);
        long port = -1;
        ASSERT_EQ(curl_easy_getinfo(c, CURLINFO_PRIMARY_PORT, &port), CURLE_OK);
        ASSERT_STREQ(curl_easy_strerror(CURLE_OK), "No error");
        curl_easy_cleanup(c);
        curl_glue_free(g);
}

int main(void) {
        log_set_max_level(LOG_CRIT);
        test_missing_library();
        test_missing_symbol();
        test_present();
        test_curl_on_first_use();
        printf("OK\n");
        return 0;
}
