/* Pure pieces of the download: which content codings can be decoded, and reading the response
 * header lines libcurl hands over. No I/O; the daemon asks libcurl what it was built with. */
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
