/* The shared entry of every program: the exit codes keep their documented values and run()'s
 * result maps to them. */
#include <errno.h>

#include "okg-daemon.h"
#include "okg-test.h"

static void test_exit_codes(void) {
        /* docs/sidecard.md, docs/probe.md, docs/okgctl.md and the units' RestartPreventExitStatus. */
        ASSERT_EQ(OKG_EXIT_SUCCESS, 0);
        ASSERT_EQ(OKG_EXIT_FAILURE, 1);
        ASSERT_EQ(OKG_EXIT_USAGE, 2);
        ASSERT_EQ(OKG_EXIT_CONFIG, 3);
        ASSERT_EQ(OKG_EXIT_KILLED, 4);

        ASSERT_EQ(okg_exit_code_from_result(0), OKG_EXIT_SUCCESS);
        ASSERT_EQ(okg_exit_code_from_result(OKG_EXIT_CONFIG), OKG_EXIT_CONFIG);
        ASSERT_EQ(okg_exit_code_from_result(OKG_EXIT_KILLED), OKG_EXIT_KILLED);
        /* An errno is a failure, whichever it is: -EINVAL no longer means "config". */
        ASSERT_EQ(okg_exit_code_from_result(-EINVAL), OKG_EXIT_FAILURE);
        ASSERT_EQ(okg_exit_code_from_result(-ENOMEM), OKG_EXIT_FAILURE);
        ASSERT_EQ(okg_exit_code_from_result(_OKG_EXIT_MAX), OKG_EXIT_FAILURE);
        ASSERT_EQ(okg_exit_code_from_result(255), OKG_EXIT_FAILURE);
}

static int run_config_refused(int argc, char **argv) {
        return OKG_EXIT_CONFIG;
}

static int run_failed(int argc, char **argv) {
        return -EADDRINUSE;
}

static void test_main(void) {
        char *argv[] = { (char *) "test", NULL };

        ASSERT_EQ(okg_main(run_config_refused, 1, argv), 3);
        ASSERT_EQ(okg_main(run_failed, 1, argv), 1);
}

int main(void) {
        test_exit_codes();
        test_main();
        return 0;
}
