/* libFuzzer target: okg-hotupdated decoding a download body (hotupdated-download.c). Input: one
 * byte choosing the codings, one byte the size of the pieces the body arrives in, then the body
 * as a server sends it. Whatever the bytes, decoding ends in success, -EBADMSG (not a stream of
 * the coding, or bytes after its end), -EPIPE (cut short) or the sink's -EFBIG, never past the
 * sink's error; without a coding the body passes through unchanged. */
#include <errno.h>

#include "fuzz.h"
#include "hotupdated-download.h"

#define CAP (1024 * 1024)      /* a small maxFileSizeBytes: bombs stop here */

static const char *const stacks[] = {
        "identity", "gzip", "deflate", "br", "zstd", "gzip, br", "zstd, gzip", "deflate, zstd",
};

typedef struct Out {
        size_t len;
        bool stopped;
        const uint8_t *expect;  /* no coding: the body itself */
} Out;

static int sink(const void *data, size_t len, void *userdata) {
        Out *o = userdata;

        FUZZ_ASSERT(!o->stopped && len > 0);
        if (o->expect)
                FUZZ_ASSERT(memcmp(o->expect + o->len, data, len) == 0);
        o->len += len;
        if (o->len > CAP) {
                o->stopped = true;
                return -EFBIG;
        }
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        DownloadDecoder *d = NULL;
        Out o = {};
        size_t step;
        const char *stack;
        int r = 0;

        if (size < 2)
                return 0;
        stack = stacks[data[0] % (sizeof stacks / sizeof stacks[0])];
        step = data[1] ? data[1] : size;
        data += 2;
        size -= 2;
        if (download_decoder_new(stack, NULL, &d) == -ENOMEM)
                return 0;
        FUZZ_ASSERT(d);
        if (strcmp(stack, "identity") == 0)
                o.expect = data;
        for (size_t i = 0; i < size && r >= 0; i += step)
                r = download_decoder_feed(d, data + i, step < size - i ? step : size - i, sink, &o);
        if (r >= 0)
                r = download_decoder_finish(d);
        FUZZ_ASSERT(r == 0 || r == -EBADMSG || r == -EPIPE || r == -EFBIG || r == -ENOMEM);
        FUZZ_ASSERT((r == -EFBIG) == o.stopped);
        FUZZ_ASSERT(o.len <= CAP + 16384);
        if (r == -EBADMSG || r == -EPIPE)
                FUZZ_ASSERT(download_decoder_failed_coding(d)[0]);
        if (o.expect && r == 0)
                FUZZ_ASSERT(o.len == size);
        download_decoder_free(d);
        return 0;
}
