/* okg-hotupdated's download pieces: which Content-Encoding / Transfer-Encoding values can be
 * decoded (so coded bytes are never installed under the plain name), and reading header lines
 * as libcurl passes them. Strings in, values out: no I/O. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

int main(void) {
        test_coding_check();
        test_codings_format();
        test_header_value();
        printf("ok\n");
        return 0;
}
