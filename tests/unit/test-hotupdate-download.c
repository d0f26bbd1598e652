/* okg-hotupdated's download pieces: which Content-Encoding / Transfer-Encoding values can be
 * decoded (so coded bytes are never installed under the plain name), and reading header lines
 * as libcurl passes them. Strings in, values out: no I/O. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>
#include <zstd.h>

#include "hotupdated-download.h"
#include "macro.h"
#include "okg-test.h"

#define ALL (DOWNLOAD_CODING_GZIP | DOWNLOAD_CODING_DEFLATE | DOWNLOAD_CODING_BR | \
             DOWNLOAD_CODING_ZSTD)

static void test_coding_check(void) {
        char bad[16];

        /* Decodable, alone, stacked, any case, with blanks and empty list elements. */
        ASSERT_EQ(download_coding_check("gzip", ALL, false, bad, sizeof bad), 0);
        ASSERT_EQ(download_coding_check("X-GZIP", ALL, false, bad, sizeof bad), 0);
        ASSERT_EQ(download_coding_check(" deflate ,br,, zstd\t", ALL, false, bad, sizeof bad), 0);
        ASSERT_EQ(download_coding_check("identity", 0, false, bad, sizeof bad), 0);
        ASSERT_EQ(download_coding_check("", 0, false, bad, sizeof bad), 0);
        ASSERT_EQ(download_coding_check(" , ", 0, false, bad, sizeof bad), 0);

        /* Unknown codings, and known ones this libcurl was built without. */
        ASSERT_EQ(download_coding_check("x-foo", ALL, false, bad, sizeof bad), 1);
        ASSERT_STREQ(bad, "x-foo");
        ASSERT_EQ(download_coding_check("gzip, compress", ALL, false, bad, sizeof bad), 1);
        ASSERT_STREQ(bad, "compress");
        ASSERT_EQ(download_coding_check("br", DOWNLOAD_CODING_GZIP, false, bad, sizeof bad), 1);
        ASSERT_STREQ(bad, "br");
        ASSERT_EQ(download_coding_check("gzip;q=1", ALL, false, bad, sizeof bad), 1);
        ASSERT_STREQ(bad, "gzip;q=1");
        /* "chunked" is a transfer coding only. */
        ASSERT_EQ(download_coding_check("chunked", ALL, false, bad, sizeof bad), 1);
        ASSERT_EQ(download_coding_check("gzip, chunked", ALL, true, bad, sizeof bad), 0);
        ASSERT_EQ(download_coding_check("x-foo, chunked", ALL, true, bad, sizeof bad), 1);
        ASSERT_STREQ(bad, "x-foo");

        /* The name is shown: non-printable bytes are replaced, and it is cut to fit. */
        ASSERT_EQ(download_coding_check("a\x01" "b", ALL, false, bad, sizeof bad), 1);
        ASSERT_STREQ(bad, "a?b");
        ASSERT_EQ(download_coding_check("abcdefghijklmnopqrstuvwxyz", ALL, false, bad, sizeof bad),
                  1);
        ASSERT_STREQ(bad, "abcdefghijklmno");
}

static void test_codings_format(void) {
        char buf[64];

        download_codings_format(ALL, buf, sizeof buf);
        ASSERT_STREQ(buf, "gzip, deflate, br, zstd");
        download_codings_format(DOWNLOAD_CODING_GZIP | DOWNLOAD_CODING_DEFLATE, buf, sizeof buf);
        ASSERT_STREQ(buf, "gzip, deflate");
        download_codings_format(0, buf, sizeof buf);
        ASSERT_STREQ(buf, "none");
        download_codings_format(ALL, buf, 8);
        ASSERT_STREQ(buf, "gzip");
}

static void test_header_value(void) {
        static const struct {
                const char *line;
                size_t len;             /* 0: strlen(line) */
                const char *name;
                const char *value;      /* NULL: not this header */
        } cases[] = {
                { "Content-Encoding:  gzip, br \r\n", 0, "content-encoding", "gzip, br" },
                { "location:/x\r\n", 0, "Location", "/x" },
                { "Location: \r\n", 0, "Location", "" },
                /* Another header, a longer name with the same start, a status line, the end
                 * of the headers, and a line cut short. */
                { "Content-Type: text/plain\r\n", 0, "Content-Encoding", NULL },
                { "Content-Encodings: gzip\r\n", 0, "Content-Encoding", NULL },
                { "HTTP/1.1 302 Found\r\n", 0, "Location", NULL },
                { "\r\n", 0, "Location", NULL },
                { "Location: /x", 8, "Location", NULL },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                const char *l = cases[i].line;
                char *v = NULL;

                ASSERT_EQ(download_header_value(l, cases[i].len ?: strlen(l), cases[i].name, &v),
                          cases[i].value ? 1 : 0);
                if (cases[i].value)
                        ASSERT_STREQ(v, cases[i].value);
                else
                        ASSERT_TRUE(!v);
                free(v);
        }
}

/* ---- decoders ---- */

typedef struct Buf {
        unsigned char *p;
        size_t len, cap;
        int fail_after;         /* > 0: the sink fails (-EFBIG) once it holds more bytes */
} Buf;

static void buf_put(Buf *b, const void *p, size_t n) {
        if (n == 0)
                return; /* b->p may still be NULL: memcpy() wants a pointer even for 0 bytes */
        if (b->len + n > b->cap) {
                b->cap = (b->len + n) * 2;
                b->p = realloc(b->p, b->cap);
                ASSERT_TRUE(b->p);
        }
        memcpy(b->p + b->len, p, n);
        b->len += n;
}

static int sink(const void *data, size_t len, void *userdata) {
        Buf *b = userdata;

        buf_put(b, data, len);
        if (b->fail_after > 0 && b->len > (size_t) b->fail_after)
                return -EFBIG;
        return 0;
}

/* windowBits: 16 + 15 gzip, 15 zlib, -15 raw deflate. */
static Buf zlib_encode(const unsigned char *p, size_t n, int window_bits) {
        Buf b = {};
        z_stream z = {};

        b.cap = compressBound(n) + 64;
        b.p = malloc(b.cap);
        ASSERT_TRUE(b.p);
        ASSERT_EQ(deflateInit2(&z, 6, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY), Z_OK);
        z.next_in = (unsigned char *) p;
        z.avail_in = (uInt) n;
        z.next_out = b.p;
        z.avail_out = (uInt) b.cap;
        ASSERT_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
        b.len = z.total_out;
        deflateEnd(&z);
        return b;
}

static Buf zstd_encode(const unsigned char *p, size_t n) {
        Buf b = {};

        b.cap = ZSTD_compressBound(n);
        b.p = malloc(b.cap);
        ASSERT_TRUE(b.p);
        b.len = ZSTD_compress(b.p, b.cap, p, n, 3);
        ASSERT_TRUE(!ZSTD_isError(b.len));
        return b;
}

/* A brotli stream of one uncompressed meta-block (RFC 7932 9.2), n <= 65536. */
static Buf brotli_stored(const unsigned char *p, size_t n) {
        Buf b = {};
        uint32_t h = (uint32_t) (n - 1) << 4 | 1u << 20;
        unsigned char hdr[3] = { h & 0xff, (h >> 8) & 0xff, (h >> 16) & 0xff }, last = 0x03;

        buf_put(&b, hdr, 3);
        buf_put(&b, p, n);
        buf_put(&b, &last, 1);
        return b;
}

/* Decodes coded in pieces of step bytes: the feed result (first error) or the finish one. */
static int decode(const char *content, const Buf *coded, size_t len, size_t step, Buf *out) {
        DownloadDecoder *d = NULL;
        int r;

        ASSERT_EQ(download_decoder_new(content, NULL, &d), 0);
        r = 0;
        for (size_t i = 0; i < len && r >= 0; i += step)
                r = download_decoder_feed(d, coded->p + i, step < len - i ? step : len - i, sink, out);
        if (r >= 0)
                r = download_decoder_finish(d);
        download_decoder_free(d);
        return r;
}

static void expect_decoded(const char *content, const Buf *coded, const unsigned char *plain,
                           size_t n) {
        static const size_t steps[] = { 1, 7, 4096, SIZE_MAX / 2 };

        for (size_t s = 0; s < ELEMENTSOF(steps); s++) {
                Buf out = {};
                ASSERT_EQ(decode(content, coded, coded->len, steps[s], &out), 0);
                ASSERT_EQ(out.len, n);
                ASSERT_TRUE(memcmp(out.p, plain, n) == 0);
                free(out.p);
        }
}

/* Every cut of the stream short of its end is refused, whole or byte by byte. */
static void expect_cut_refused(const char *content, const Buf *coded, size_t stride) {
        for (size_t len = 0; len < coded->len; len += stride) {
                Buf out = {};
                int r = decode(content, coded, len, len % 2 ? 1 : SIZE_MAX / 2, &out);
                ASSERT_TRUE(r == -EPIPE || r == -EBADMSG);
                free(out.p);
        }
        /* The last byte alone, whatever the stride. */
        Buf out = {};
        ASSERT_EQ(decode(content, coded, coded->len - 1, 3, &out), -EPIPE);
        free(out.p);
}

static void expect_trailing_refused(const char *content, const Buf *coded, const char *extra) {
        Buf b = {}, out = {};

        buf_put(&b, coded->p, coded->len);
        buf_put(&b, extra, strlen(extra));
        ASSERT_EQ(decode(content, &b, b.len, SIZE_MAX / 2, &out), -EBADMSG);
        free(out.p);
        out = (Buf) {};
        ASSERT_EQ(decode(content, &b, b.len, 1, &out), -EBADMSG);
        free(out.p);
        free(b.p);
}

static void test_decoders(void) {
        unsigned char plain[50000];
        Buf gz, zl, raw, zs, br, stacked, two = {};
        DownloadDecoder *d = NULL;

        for (size_t i = 0; i < sizeof plain; i++)
                plain[i] = (unsigned char) ("hot update "[i % 11] + (i / 977) % 5);
        gz = zlib_encode(plain, sizeof plain, 16 + 15);
        zl = zlib_encode(plain, sizeof plain, 15);
        raw = zlib_encode(plain, sizeof plain, -15);
        zs = zstd_encode(plain, sizeof plain);
        br = brotli_stored(plain, sizeof plain);
        stacked = brotli_stored(gz.p, gz.len);  /* "gzip, br": gzip first, br over it */

        expect_decoded("gzip", &gz, plain, sizeof plain);
        expect_decoded("x-gzip", &gz, plain, sizeof plain);
        expect_decoded("deflate", &zl, plain, sizeof plain);
        expect_decoded("deflate", &raw, plain, sizeof plain);
        expect_decoded("zstd", &zs, plain, sizeof plain);
        expect_decoded("br", &br, plain, sizeof plain);
        expect_decoded("gzip, br", &stacked, plain, sizeof plain);
        expect_decoded(" identity, GZIP ", &gz, plain, sizeof plain);

        expect_cut_refused("gzip", &gz, 13);
        expect_cut_refused("deflate", &zl, 13);
        expect_cut_refused("deflate", &raw, 13);
        expect_cut_refused("zstd", &zs, 13);
        expect_cut_refused("br", &br, 997);
        expect_cut_refused("gzip, br", &stacked, 997);

        expect_trailing_refused("gzip", &gz, "garbage");
        expect_trailing_refused("deflate", &zl, "x");
        expect_trailing_refused("deflate", &raw, "x");
        expect_trailing_refused("zstd", &zs, "x");
        expect_trailing_refused("br", &br, "x");

        /* Several gzip members, and several zstd frames, are one stream each. */
        buf_put(&two, gz.p, gz.len);
        buf_put(&two, gz.p, gz.len);
        Buf out = {};
        ASSERT_EQ(decode("gzip", &two, two.len, 5000, &out), 0);
        ASSERT_EQ(out.len, 2 * sizeof plain);
        free(out.p);
        two.len = 0;
        buf_put(&two, zs.p, zs.len);
        buf_put(&two, zs.p, zs.len);
        out = (Buf) {};
        ASSERT_EQ(decode("zstd", &two, two.len, 5000, &out), 0);
        ASSERT_EQ(out.len, 2 * sizeof plain);
        free(out.p);
        out = (Buf) {};

        /* Not a stream of the coding at all; the failing coding is named. */
        ASSERT_EQ(download_decoder_new("gzip", NULL, &d), 0);
        ASSERT_EQ(download_decoder_feed(d, "not gzip", 8, sink, &out), -EBADMSG);
        ASSERT_STREQ(download_decoder_failed_coding(d), "gzip");
        d = download_decoder_free(d);
        free(out.p);
        out = (Buf) {};
        ASSERT_EQ(download_decoder_new("gzip, br", NULL, &d), 0);
        ASSERT_EQ(download_decoder_feed(d, stacked.p, stacked.len - 1, sink, &out), 0);
        ASSERT_STREQ(download_decoder_failed_coding(d), "");
        ASSERT_EQ(download_decoder_finish(d), -EPIPE);
        ASSERT_STREQ(download_decoder_failed_coding(d), "br");
        d = download_decoder_free(d);
        free(out.p);

        /* The sink's error stops decoding (maxFileSizeBytes on decoded bytes). */
        out = (Buf) { .fail_after = 1000 };
        ASSERT_EQ(decode("gzip", &gz, gz.len, SIZE_MAX / 2, &out), -EFBIG);
        ASSERT_TRUE(out.len <= 1000 + 16384);
        free(out.p);

        /* No coding: bytes pass through; an empty body of a coding is a stream cut short. */
        out = (Buf) {};
        ASSERT_EQ(download_decoder_new(NULL, "chunked", &d), 0);
        ASSERT_EQ(download_decoder_feed(d, "abc", 3, sink, &out), 0);
        ASSERT_EQ(download_decoder_finish(d), 0);
        ASSERT_EQ(out.len, 3u);
        d = download_decoder_free(d);
        free(out.p);
        out = (Buf) {};
        ASSERT_EQ(decode("deflate", &zl, 0, 1, &out), -EPIPE);
        ASSERT_EQ(decode("deflate", &zl, 1, 1, &out), -EPIPE);
        free(out.p);
        out = (Buf) {};

        /* Transfer codings are undone before content codings. */
        ASSERT_EQ(download_decoder_new("gzip", "br, chunked", &d), 0);
        ASSERT_EQ(download_decoder_feed(d, stacked.p, stacked.len, sink, &out), 0);
        ASSERT_EQ(download_decoder_finish(d), 0);
        ASSERT_EQ(out.len, sizeof plain);
        d = download_decoder_free(d);
        free(out.p);

        ASSERT_EQ(download_decoder_new("compress", NULL, &d), -EOPNOTSUPP);
        ASSERT_EQ(download_decoder_new("gzip;q=1", NULL, &d), -EOPNOTSUPP);
        ASSERT_EQ(download_decoder_new("gzip, gzip, gzip", "gzip, gzip", &d), -E2BIG);

        free(gz.p);
        free(zl.p);
        free(raw.p);
        free(zs.p);
        free(br.p);
        free(stacked.p);
        free(two.p);
}

int main(void) {
        test_decoders();
        test_coding_check();
        test_codings_format();
        test_header_value();
        printf("ok\n");
        return 0;
}
