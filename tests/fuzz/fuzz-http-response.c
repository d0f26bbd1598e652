/* libFuzzer target: okg-probed's own HTTP client reading an answer (libhttp-parser through
 * probed-http-proto.c). Input: "CUT\nANSWER"; the first byte of the input says whether the
 * request was a HEAD and how small the body cap is; the answer is fed in pieces whose sizes
 * follow from CUT, then the close. Properties: no crash or leak; the body given to the caller
 * never exceeds its cap; a complete answer has a status of 100-999 that is not interim; a
 * Location, when kept, is NUL-terminated at its length; a failure maps to a curl error code;
 * a transfer coding refused (as Go refuses it) gave no byte of a body and says why; and a
 * redirect's Location resolves against the request URL. */
#include <curl/curl.h>
#include <errno.h>

#include "fuzz.h"
#include "probed-http-proto.h"

typedef struct Sink {
        size_t len, cap;
} Sink;

static size_t take(char *data, size_t size, size_t nmemb, void *userdata) {
        Sink *s = userdata;
        size_t n = size * nmemb, room = s->cap - s->len;

        FUZZ_ASSERT(data || n == 0);
        if (n > room)
                n = room;
        s->len += n;
        return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const uint8_t *answer = data;
        size_t answer_len = size, off = 0, step;
        char *cut = fuzz_split(data, size, '\n', &answer, &answer_len);
        uint8_t flags = size > 0 ? data[0] : 0;
        Sink sink = { .cap = (flags & 0x0e) ? (size_t) (flags & 0x0e) * 100 : 10 * 1024 };
        HttpResponse r;
        int k = 0;

        step = cut && cut[0] ? (size_t) (unsigned char) cut[0] % 17 + 1 : answer_len ?: 1;
        http_response_init(&r, flags & 1, take, &sink);
        while (off < answer_len && k == 0) {
                size_t n = answer_len - off < step ? answer_len - off : step;
                k = http_response_feed(&r, (const char *) answer + off, n);
                off += n;
        }
        if (k == 0)
                k = http_response_eof(&r);
        FUZZ_ASSERT(sink.len <= sink.cap);
        if (k > 0) {
                FUZZ_ASSERT(r.complete);
                FUZZ_ASSERT(r.status >= 100 && r.status <= 999);
                FUZZ_ASSERT(r.status >= 200 || r.status == 101);
        } else {
                int code = http_response_curl_code(&r, k);
                FUZZ_ASSERT(code != CURLE_OK);
                FUZZ_ASSERT(http_curl_strerror(code));
        }
        if (k == -EPROTONOSUPPORT) {
                FUZZ_ASSERT(sink.len == 0 && r.status == 0 && !r.headers_done);
                FUZZ_ASSERT(strncmp(r.te_error, "unsupported transfer encoding: \"", 32) == 0 ||
                            strncmp(r.te_error, "too many transfer encodings: [\"", 31) == 0);
                FUZZ_ASSERT(strlen(r.te_error) < sizeof r.te_error - 1);
        }
        if (r.location) {
                char *s = NULL;
                FUZZ_ASSERT(strlen(r.location) == r.location_len);
                FUZZ_ASSERT(r.location_len <= HTTP_LOCATION_MAX);
                k = http_location_resolve("http://127.0.0.1:8080/a/b?q", r.location, &s);
                FUZZ_ASSERT(k == 0 || k == -ENOMEM);
                FUZZ_ASSERT(!s || strncmp(s, "http://127.0.0.1:8080/", 22) == 0 || strchr(s, ':'));
                free(s);
        }
        http_response_done(&r);
        free(cut);
        return 0;
}
