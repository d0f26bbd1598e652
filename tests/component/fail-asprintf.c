/* Fault injection for the component tests (LD_PRELOAD): asprintf() fails with ENOMEM, as it
 * does when memory runs out, when its format contains $OKG_TEST_FAIL_ASPRINTF. Every other call
 * is glibc's. Lets a test reach a daemon's set-up failure paths without exhausting memory. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int __asprintf_chk(char **ret, int flag, const char *fmt, ...);

static int fail_or_vasprintf(char **ret, const char *fmt, va_list ap) {
        const char *fail = getenv("OKG_TEST_FAIL_ASPRINTF");

        if (fail && *fail && strstr(fmt, fail)) {
                errno = ENOMEM;
                return -1;
        }
        return vasprintf(ret, fmt, ap);
}

int asprintf(char **ret, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        int r = fail_or_vasprintf(ret, fmt, ap);
        va_end(ap);
        return r;
}

/* What asprintf() becomes with _FORTIFY_SOURCE, as the daemons are built. */
int __asprintf_chk(char **ret, int flag, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        int r = fail_or_vasprintf(ret, fmt, ap);
        va_end(ap);
        return r;
}
