/* Path helpers: relative paths made absolute the way okg-sidecard hands them to its daemons. */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "okg-test.h"
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

int main(void) {
        test_join();
        test_refused();
        test_cwd();
        printf("OK\n");
        return 0;
}
