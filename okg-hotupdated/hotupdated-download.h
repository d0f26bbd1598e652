/* Pure pieces of the download: which content codings can be decoded, reading the response
 * header lines libcurl hands over, and decoding the body (zlib, libbrotli, libzstd). No I/O. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* Content codings, as bits of a set. "identity" needs no decoder and is always accepted. */
enum {
        DOWNLOAD_CODING_GZIP = 1 << 0,          /* gzip, x-gzip */
        DOWNLOAD_CODING_DEFLATE = 1 << 1,
        DOWNLOAD_CODING_BR = 1 << 2,
        DOWNLOAD_CODING_ZSTD = 1 << 3,
};

/* value: a Content-Encoding (or Transfer-Encoding, with "chunked" allowed too) header value, a
 * comma-separated list of codings. Returns 0 when every coding is in supported (empty list
 * elements are skipped), 1 when one is not: its name, printable ASCII only and cut to fit, is
 * copied to bad. */
int download_coding_check(const char *value, unsigned supported, bool transfer, char *bad,
                          size_t bad_size);
/* The names of the codings in supported, "gzip, deflate, br" ("none" for an empty set). */
void download_codings_format(unsigned supported, char *buf, size_t size);

/* line: one header line as libcurl passes it ("Name: value\r\n", not NUL-terminated). When its
 * name is name (any case), *ret is the value without surrounding blanks (newly allocated) and 1
 * is returned; 0 when the line is another header (or a status line), -ENOMEM. */
int download_header_value(const char *line, size_t len, const char *name, char **ret);

/* Decoding a response body ourselves (libcurl's decoders do not say when a stream stops short).
 * The decoder undoes the codings of the Content-Encoding and Transfer-Encoding values (chunked
 * and identity excepted) in reverse order of their listing, content codings first listed.
 * Every stream must end exactly where the body ends: a stream cut short (a gzip member without
 * its trailer too) or followed by more bytes is refused. */
typedef struct DownloadDecoder DownloadDecoder;

/* Called with decoded bytes; a negative return stops decoding and is passed on. */
typedef int (*DownloadSink)(const void *data, size_t len, void *userdata);

/* content, transfer: the header values, either NULL. -EOPNOTSUPP when a coding is not one of
 * DOWNLOAD_CODING_* (check with download_coding_check() first for a message), -E2BIG when more
 * than DOWNLOAD_CODINGS_MAX are stacked, -ENOMEM. */
#define DOWNLOAD_CODINGS_MAX 4
int download_decoder_new(const char *content, const char *transfer, DownloadDecoder **ret);
DownloadDecoder *download_decoder_free(DownloadDecoder *d);
/* -EBADMSG: the bytes are not a stream of the coding, or follow its end; else the sink's error
 * or -ENOMEM. */
int download_decoder_feed(DownloadDecoder *d, const void *data, size_t len, DownloadSink sink,
                          void *userdata);
/* At the end of the body: 0 when every stream ended, -EPIPE when one stopped short. */
int download_decoder_finish(DownloadDecoder *d);
/* The name of the coding whose stream failed, for messages ("gzip"); "" when none failed. */
const char *download_decoder_failed_coding(const DownloadDecoder *d);
/* The set of codings this build decodes. */
unsigned download_decoder_codings(void);
