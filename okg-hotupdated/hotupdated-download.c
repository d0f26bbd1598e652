/* Content codings, response header lines and our decoders; see hotupdated-download.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <brotli/decode.h>
#include <zlib.h>
#include <zstd.h>

#include "hotupdated-download.h"
#include "macro.h"

static const struct {
        const char *name;
        unsigned bit;
} codings[] = {
        { "gzip", DOWNLOAD_CODING_GZIP },
        { "x-gzip", DOWNLOAD_CODING_GZIP },
        { "deflate", DOWNLOAD_CODING_DEFLATE },
        { "br", DOWNLOAD_CODING_BR },
        { "zstd", DOWNLOAD_CODING_ZSTD },
};

static bool is_blank(char c) {
        return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool token_known(const char *s, size_t n, unsigned supported, bool transfer) {
        if (n == strlen("identity") && strncasecmp(s, "identity", n) == 0)
                return true;
        if (transfer && n == strlen("chunked") && strncasecmp(s, "chunked", n) == 0)
                return true;
        for (size_t i = 0; i < ELEMENTSOF(codings); i++)
                if ((supported & codings[i].bit) && n == strlen(codings[i].name) &&
                    strncasecmp(s, codings[i].name, n) == 0)
                        return true;
        return false;
}

/* The next element of a comma-separated list at *p, without blanks around it (NULL at the
 * end); *p moves past it. Coding parameters (";q=...") are not allowed in a response; they are
 * kept, so that such a token is refused rather than half understood. */
static const char *next_token(const char **p, size_t *ret_n) {
        const char *s = *p;
        size_t n;

        while (is_blank(*s) || *s == ',')
                s++;
        if (!*s)
                return NULL;
        n = strcspn(s, ",");
        *p = s + n;
        while (n > 0 && is_blank(s[n - 1]))
                n--;
        *ret_n = n;
        return s;
}

int download_coding_check(const char *value, unsigned supported, bool transfer, char *bad,
                          size_t bad_size) {
        const char *p = value, *s;
        size_t n;

        while ((s = next_token(&p, &n))) {
                if (!token_known(s, n, supported, transfer)) {
                        size_t k = 0;
                        for (; k < n && k + 1 < bad_size; k++)
                                bad[k] = s[k] > ' ' && s[k] < 0x7f ? s[k] : '?';
                        if (bad_size > 0)
                                bad[k] = 0;
                        return 1;
                }
        }
        return 0;
}

void download_codings_format(unsigned supported, char *buf, size_t size) {
        size_t len = 0;

        if (size == 0)
                return;
        buf[0] = 0;
        for (size_t i = 0; i < ELEMENTSOF(codings); i++) {
                if (!(supported & codings[i].bit) || startswith(codings[i].name, "x-"))
                        continue;
                int w = snprintf(buf + len, size - len, "%s%s", len ? ", " : "", codings[i].name);
                if (w < 0 || (size_t) w >= size - len) {
                        buf[len] = 0;   /* whole names only */
                        break;
                }
                len += (size_t) w;
        }
        if (len == 0)
                snprintf(buf, size, "none");
}

int download_header_value(const char *line, size_t len, const char *name, char **ret) {
        size_t n = strlen(name), a, b;
        char *v;

        if (len <= n || strncasecmp(line, name, n) != 0 || line[n] != ':')
                return 0;
        a = n + 1;
        b = len;
        while (a < b && is_blank(line[a]))
                a++;
        while (b > a && is_blank(line[b - 1]))
                b--;
        v = strndup(line + a, b - a);
        if (!v)
                return -ENOMEM;
        *ret = v;
        return 1;
}

/* ---- decoding ---- */

#define OUT_SIZE 16384

typedef struct Layer {
        unsigned coding;
        const char *name;
        bool ended;                     /* the stream (gzip: its last member) is complete */
        bool z_ready;
        z_stream z;
        unsigned char first;            /* deflate: a lone first byte, until the second comes */
        bool have_first;
        BrotliDecoderState *br;
        ZSTD_DStream *zs;
} Layer;

struct DownloadDecoder {
        Layer layers[DOWNLOAD_CODINGS_MAX];
        size_t n;
        int failed;                     /* the layer that failed, -1 */
        unsigned char out[DOWNLOAD_CODINGS_MAX][OUT_SIZE];
};

unsigned download_decoder_codings(void) {
        return DOWNLOAD_CODING_GZIP | DOWNLOAD_CODING_DEFLATE | DOWNLOAD_CODING_BR |
               DOWNLOAD_CODING_ZSTD;
}

static unsigned coding_of(const char *s, size_t n, const char **ret_name) {
        for (size_t i = 0; i < ELEMENTSOF(codings); i++)
                if (n == strlen(codings[i].name) && strncasecmp(s, codings[i].name, n) == 0) {
                        *ret_name = codings[i].name;
                        return codings[i].bit;
                }
        return 0;
}

/* Appends the codings of value, in order, to names/bits; identity and chunked need nothing. */
static int codings_list(const char *value, unsigned *bits, const char **names, size_t *n) {
        const char *p = value ?: "", *s;
        size_t k;

        while ((s = next_token(&p, &k))) {
                const char *name = NULL;
                unsigned b;

                if ((k == strlen("identity") && strncasecmp(s, "identity", k) == 0) ||
                    (k == strlen("chunked") && strncasecmp(s, "chunked", k) == 0))
                        continue;
                b = coding_of(s, k, &name);
                if (b == 0)
                        return -EOPNOTSUPP;
                if (*n >= DOWNLOAD_CODINGS_MAX)
                        return -E2BIG;
                bits[*n] = b;
                names[*n] = name;
                (*n)++;
        }
        return 0;
}

DownloadDecoder *download_decoder_free(DownloadDecoder *d) {
        if (!d)
                return NULL;
        for (size_t i = 0; i < d->n; i++) {
                Layer *l = &d->layers[i];
                if (l->z_ready)
                        (void) inflateEnd(&l->z);
                if (l->br)
                        BrotliDecoderDestroyInstance(l->br);
                if (l->zs)
                        (void) ZSTD_freeDStream(l->zs);
        }
        free(d);
        return NULL;
}

int download_decoder_new(const char *content, const char *transfer, DownloadDecoder **ret) {
        unsigned bits[DOWNLOAD_CODINGS_MAX];
        const char *names[DOWNLOAD_CODINGS_MAX];
        size_t n = 0;
        DownloadDecoder *d;
        int r;

        r = codings_list(content, bits, names, &n);
        if (r >= 0)
                r = codings_list(transfer, bits, names, &n);
        if (r < 0)
                return r;
        d = calloc(1, sizeof *d);
        if (!d)
                return -ENOMEM;
        d->failed = -1;
        /* The coding applied last is undone first. */
        for (size_t i = 0; i < n; i++) {
                Layer *l = &d->layers[i];

                d->n = i + 1;
                l->coding = bits[n - 1 - i];
                l->name = names[n - 1 - i];
                if (l->coding == DOWNLOAD_CODING_GZIP) {
                        if (inflateInit2(&l->z, 16 + MAX_WBITS) != Z_OK) {
                                download_decoder_free(d);
                                return -ENOMEM;
                        }
                        l->z_ready = true;
                } else if (l->coding == DOWNLOAD_CODING_BR) {
                        l->br = BrotliDecoderCreateInstance(NULL, NULL, NULL);
                        if (!l->br) {
                                download_decoder_free(d);
                                return -ENOMEM;
                        }
                } else if (l->coding == DOWNLOAD_CODING_ZSTD) {
                        l->zs = ZSTD_createDStream();
                        if (!l->zs || ZSTD_isError(ZSTD_initDStream(l->zs))) {
                                download_decoder_free(d);
                                return -ENOMEM;
                        }
                }
                /* deflate: set up at its first two bytes (zlib-wrapped, or raw as some servers
                 * send it). */
        }
        *ret = d;
        return 0;
}

const char *download_decoder_failed_coding(const DownloadDecoder *d) {
        return d->failed >= 0 ? d->layers[d->failed].name : "";
}

static int layer_feed(DownloadDecoder *d, size_t i, const unsigned char *in, size_t len,
                      DownloadSink sink, void *userdata);

static int layer_fail(DownloadDecoder *d, size_t i, int r) {
        if (d->failed < 0)
                d->failed = (int) i;
        return r;
}

/* RFC 1950: CM 8, a window up to 32 KiB, and the check bits. */
static bool zlib_header(unsigned char a, unsigned char b) {
        return (a & 0x0f) == 8 && (a >> 4) <= 7 && ((unsigned) a << 8 | b) % 31 == 0;
}

static int zlib_feed(DownloadDecoder *d, size_t i, const unsigned char *in, size_t len,
                     DownloadSink sink, void *userdata) {
        Layer *l = &d->layers[i];
        unsigned char *out = d->out[i];

        if (!l->z_ready) {
                unsigned char b;

                if (!l->have_first) {
                        l->first = in[0];
                        l->have_first = true;
                        in++;
                        len--;
                        if (len == 0)
                                return 0;
                }
                if (inflateInit2(&l->z, zlib_header(l->first, in[0]) ? MAX_WBITS : -MAX_WBITS) !=
                    Z_OK)
                        return layer_fail(d, i, -ENOMEM);
                l->z_ready = true;
                b = l->first;
                int r = zlib_feed(d, i, &b, 1, sink, userdata);
                if (r < 0)
                        return r;
        }

        l->z.next_in = (unsigned char *) in;
        l->z.avail_in = (uInt) len;
        for (;;) {
                size_t produced;
                int z, r;

                if (l->ended && l->z.avail_in > 0) {
                        /* gzip may hold several members (RFC 1952); anything else after the
                         * end is not part of the stream. */
                        if (l->coding != DOWNLOAD_CODING_GZIP || inflateReset(&l->z) != Z_OK)
                                return layer_fail(d, i, -EBADMSG);
                        l->ended = false;
                }
                l->z.next_out = out;
                l->z.avail_out = OUT_SIZE;
                z = inflate(&l->z, Z_NO_FLUSH);
                if (z == Z_MEM_ERROR)
                        return layer_fail(d, i, -ENOMEM);
                if (z != Z_OK && z != Z_STREAM_END && z != Z_BUF_ERROR)
                        return layer_fail(d, i, -EBADMSG);
                produced = OUT_SIZE - l->z.avail_out;
                r = layer_feed(d, i + 1, out, produced, sink, userdata);
                if (r < 0)
                        return r;
                if (z == Z_STREAM_END)
                        l->ended = true;
                if (l->z.avail_in == 0 && produced < OUT_SIZE)
                        return 0;
                if (z == Z_BUF_ERROR && produced == 0)
                        return layer_fail(d, i, -EBADMSG);
        }
}

static int brotli_feed(DownloadDecoder *d, size_t i, const unsigned char *in, size_t len,
                       DownloadSink sink, void *userdata) {
        Layer *l = &d->layers[i];

        for (;;) {
                size_t avail_out = OUT_SIZE;
                unsigned char *next_out = d->out[i];
                BrotliDecoderResult b;
                int r;

                if (l->ended)
                        return layer_fail(d, i, -EBADMSG);
                b = BrotliDecoderDecompressStream(l->br, &len, &in, &avail_out, &next_out, NULL);
                if (b == BROTLI_DECODER_RESULT_ERROR)
                        return layer_fail(d, i, -EBADMSG);
                r = layer_feed(d, i + 1, d->out[i], OUT_SIZE - avail_out, sink, userdata);
                if (r < 0)
                        return r;
                if (b == BROTLI_DECODER_RESULT_SUCCESS) {
                        l->ended = true;
                        if (len > 0)
                                return layer_fail(d, i, -EBADMSG);
                        return 0;
                }
                if (b == BROTLI_DECODER_RESULT_NEEDS_MORE_INPUT)
                        return 0;
        }
}

static int zstd_feed(DownloadDecoder *d, size_t i, const unsigned char *in, size_t len,
                     DownloadSink sink, void *userdata) {
        Layer *l = &d->layers[i];
        ZSTD_inBuffer ib = { in, len, 0 };

        for (;;) {
                ZSTD_outBuffer ob = { d->out[i], OUT_SIZE, 0 };
                size_t z = ZSTD_decompressStream(l->zs, &ob, &ib);
                int r;

                if (ZSTD_isError(z))
                        return layer_fail(d, i, -EBADMSG);
                r = layer_feed(d, i + 1, d->out[i], ob.pos, sink, userdata);
                if (r < 0)
                        return r;
                /* 0: a frame ended and is flushed; more bytes start another frame. */
                l->ended = z == 0;
                if (ib.pos == ib.size && ob.pos < ob.size)
                        return 0;
        }
}

static int layer_feed(DownloadDecoder *d, size_t i, const unsigned char *in, size_t len,
                      DownloadSink sink, void *userdata) {
        if (len == 0)
                return 0;
        if (i == d->n)
                return sink(in, len, userdata);
        switch (d->layers[i].coding) {
        case DOWNLOAD_CODING_GZIP:
        case DOWNLOAD_CODING_DEFLATE:
                return zlib_feed(d, i, in, len, sink, userdata);
        case DOWNLOAD_CODING_BR:
                return brotli_feed(d, i, in, len, sink, userdata);
        default:
                return zstd_feed(d, i, in, len, sink, userdata);
        }
}

int download_decoder_feed(DownloadDecoder *d, const void *data, size_t len, DownloadSink sink,
                          void *userdata) {
        if (d->failed >= 0)
                return -EBADMSG;
        return layer_feed(d, 0, data, len, sink, userdata);
}

int download_decoder_finish(DownloadDecoder *d) {
        for (size_t i = 0; i < d->n; i++)
                if (!d->layers[i].ended)
                        return layer_fail(d, i, -EPIPE);
        return 0;
}
