/* Path helpers: relative paths made absolute the way okg-sidecard hands them to its daemons. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "okg-test.h"
#include "macro.h"
#include "okg-util.h"

static void check_join(const char *base, const char *path, const char *want) {
        char *got = NULL;

        ASSERT_EQ(okg_path_join_absolute(base, path, &got), 0);
        ASSERT_STREQ(got, want);
        free(got);
}

static void test_join(void) {
        check_join("/w", "run", "/w/run");
        check_join("/w/", "run", "/w/run");
        check_join("/w//", "run/notify", "/w/run/notify");
        check_join("/w", "./run", "/w/run");
        check_join("/w", ".//./run", "/w/run");
        check_join("/w", ".", "/w");
        check_join("/w", "./", "/w");
        check_join("/", "run", "/run");
        check_join("/", ".", "/");
        /* Absolute paths are kept as they are, symlinks and all. */
        check_join("/w", "/etc/..data/config.yaml", "/etc/..data/config.yaml");
        /* ".." is not folded: W/../x is what the user meant when W is a symlink. */
        check_join("/w", "../x", "/w/../x");
        check_join("/w", ".hidden", "/w/.hidden");
}

static void test_refused(void) {
        char *got = NULL;

        ASSERT_EQ(okg_path_join_absolute("/w", "", &got), -EINVAL);
        ASSERT_EQ(okg_path_join_absolute("/w", NULL, &got), -EINVAL);
        ASSERT_EQ(okg_path_join_absolute("w", "run", &got), -EINVAL);
        ASSERT_EQ(okg_path_join_absolute("", "run", &got), -EINVAL);
        ASSERT_EQ(okg_path_make_absolute("", &got), -EINVAL);
        ASSERT_TRUE(got == NULL);
}

static void test_cwd(void) {
        char *got = NULL;

        ASSERT_EQ(chdir("/tmp"), 0);
        ASSERT_EQ(okg_path_make_absolute("state", &got), 0);
        ASSERT_STREQ(got, "/tmp/state");
        free(got);
        ASSERT_EQ(okg_path_make_absolute("/var/lib/x", &got), 0);
        ASSERT_STREQ(got, "/var/lib/x");
        free(got);
}

static void check_bus(const char *socket, const char *want) {
        char *got = NULL;

        ASSERT_EQ(okg_bus_address_from_socket(socket, &got), 0);
        ASSERT_STREQ(got, want);
        free(got);
}

/* okgctl --address: what is an address and what is a path. */
static void test_bus_address(void) {
        char *got = NULL;

        ASSERT_TRUE(okg_bus_is_address("unix:path=/run/okg-sidecar/bus"));
        ASSERT_TRUE(okg_bus_is_address("tcp:host=127.0.0.1,port=4000"));
        ASSERT_TRUE(okg_bus_is_address("x-machine-unix:machine=m"));
        ASSERT_TRUE(okg_bus_is_address("unix:abstract=x;unix:path=/b"));
        /* The README's example and its relatives are paths. */
        ASSERT_TRUE(!okg_bus_is_address("build-run/demo/run"));
        ASSERT_TRUE(!okg_bus_is_address("run"));
        ASSERT_TRUE(!okg_bus_is_address("./run"));
        ASSERT_TRUE(!okg_bus_is_address("run/bus"));
        ASSERT_TRUE(!okg_bus_is_address("/run/okg-sidecar"));
        ASSERT_TRUE(!okg_bus_is_address("a=b/run"));
        ASSERT_TRUE(!okg_bus_is_address("dir:x"));
        ASSERT_TRUE(!okg_bus_is_address(":path=/x"));
        ASSERT_TRUE(!okg_bus_is_address("./unix:path=x"));
        ASSERT_TRUE(!okg_bus_is_address(""));

        check_bus("/run/okg-sidecar/bus", "unix:path=/run/okg-sidecar/bus");
        check_bus("/w/build-run/demo/run/bus", "unix:path=/w/build-run/demo/run/bus");
        /* Bytes with a meaning in addresses (',' ';' '=' '%') and others are escaped. */
        check_bus("/a b/c,d;e=f%g", "unix:path=/a%20b/c%2cd%3be%3df%25g");
        check_bus("/x_y-z.*\\", "unix:path=/x_y-z.*\\");
        check_bus("/\xc3\xa9", "unix:path=/%c3%a9");
        /* Relative stays relative (the current directory's, for sd-bus), escaped alike. */
        check_bus("run/bus", "unix:path=run/bus");
        check_bus("../a b/bus", "unix:path=../a%20b/bus");
        ASSERT_EQ(okg_bus_address_from_socket("", &got), -EINVAL);
        ASSERT_TRUE(got == NULL);
}

/* A header value as Go's net/http would send it: no control character but a tab. */
static void test_header_value(void) {
        ASSERT_TRUE(okg_http_header_value_valid(""));
        ASSERT_TRUE(okg_http_header_value_valid("text/plain; q=0.9"));
        ASSERT_TRUE(okg_http_header_value_valid("a\tb"));
        ASSERT_TRUE(okg_http_header_value_valid("caf\xc3\xa9")); /* bytes over 0x7f pass, as in Go */
        ASSERT_TRUE(!okg_http_header_value_valid("a\r\nInjected: yes"));
        ASSERT_TRUE(!okg_http_header_value_valid("a\nb"));
        ASSERT_TRUE(!okg_http_header_value_valid("\x01"));
        ASSERT_TRUE(!okg_http_header_value_valid("x\x1f"));
        ASSERT_TRUE(!okg_http_header_value_valid("x\x7f"));
}

/* Only regular files are read: a FIFO without a writer must not block, a device is refused. */
static void test_read_file_kinds(void) {
        char dir[] = "/tmp/okg-test-util-XXXXXX", fifo[64], reg[64];
        char *text = NULL;
        size_t len = 0;
        FILE *f;

        ASSERT_TRUE(mkdtemp(dir) != NULL);
        snprintf(fifo, sizeof fifo, "%s/fifo", dir);
        snprintf(reg, sizeof reg, "%s/reg", dir);
        ASSERT_EQ(mkfifo(fifo, 0600), 0);
        ASSERT_EQ(okg_read_file(fifo, 4096, &text, NULL), -EBADFD);
        ASSERT_TRUE(text == NULL);
        ASSERT_STREQ(okg_file_strerror(-EBADFD), "not a regular file");
        ASSERT_EQ(okg_read_file("/dev/zero", 4096, &text, NULL), -EBADFD);
        ASSERT_EQ(okg_read_file("/dev/null", 4096, &text, NULL), -EBADFD);
        ASSERT_EQ(okg_read_file(dir, 4096, &text, NULL), -EISDIR);
        ASSERT_TRUE(text == NULL);

        f = fopen(reg, "we");
        ASSERT_TRUE(f != NULL);
        fputs("hello", f);
        fclose(f);
        ASSERT_EQ(okg_read_file(reg, 4096, &text, &len), 0);
        ASSERT_STREQ(text, "hello");
        ASSERT_EQ(len, 5u);
        free(text);
        text = NULL;
        ASSERT_EQ(okg_read_file(reg, 3, &text, NULL), -EFBIG);

        ASSERT_EQ(unlink(fifo), 0);
        ASSERT_EQ(unlink(reg), 0);
        ASSERT_EQ(rmdir(dir), 0);
}

/* What a CA file handed to curl must hold: a PEM certificate line, whatever is around it. */
static void test_pem_has_certificate(void) {
        static const char *const yes[] = {
                "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
                "# a comment\r\n-----BEGIN TRUSTED CERTIFICATE-----\r\nMIIB\r\n",
                "-----BEGIN PRIVATE KEY-----\nx\n-----BEGIN X509 CERTIFICATE-----",
        };
        static const char *const no[] = {
                "", "not a certificate\n", "-----BEGIN PRIVATE KEY-----\nMIIB\n",
                "-----BEGIN CERTIFICATE REQUEST-----\n", "CERTIFICATE-----\n-----BEGIN ",
        };

        for (size_t i = 0; i < ELEMENTSOF(yes); i++)
                ASSERT_TRUE(okg_pem_has_certificate(yes[i], strlen(yes[i])));
        for (size_t i = 0; i < ELEMENTSOF(no); i++)
                ASSERT_TRUE(!okg_pem_has_certificate(no[i], strlen(no[i])));
        ASSERT_TRUE(!okg_pem_has_certificate(NULL, 0));
        ASSERT_STREQ(okg_file_strerror(-EBADMSG), "no PEM certificate in it");
}

int main(void) {
        test_join();
        test_refused();
        test_cwd();
        test_bus_address();
        test_header_value();
        test_read_file_kinds();
        test_pem_has_certificate();
        printf("OK\n");
        return 0;
}
