/* Signal name lookups for the hot_update plugin's signal.signalName. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "macro.h"
#include "okg-signal.h"
#include "okg-string-table.h"

/* By number; holes are numbers without a name (the real-time range is RTMIN+n/RTMAX-n). */
static const char *const okg_signal_table[] = {
#define N(x) [SIG##x] = "SIG" #x
        N(HUP), N(INT), N(QUIT), N(ILL), N(TRAP), N(ABRT), N(BUS), N(FPE), N(KILL),
        N(USR1), N(SEGV), N(USR2), N(PIPE), N(ALRM), N(TERM),
#ifdef SIGSTKFLT
        N(STKFLT),
#endif
        N(CHLD), N(CONT), N(STOP), N(TSTP), N(TTIN), N(TTOU), N(URG), N(XCPU),
        N(XFSZ), N(VTALRM), N(PROF), N(WINCH), N(IO),
#ifdef SIGPWR
        N(PWR),
#endif
        N(SYS),
#undef N
};

static int parse_small_uint(const char *s) {
        int v = 0;

        if (!*s)
                return -EINVAL;
        for (; *s; s++) {
                if (*s < '0' || *s > '9' || v > 1000)
                        return -EINVAL;
                v = v * 10 + (*s - '0');
        }
        return v;
}

int okg_signal_from_string(const char *s) {
        if (isempty(s))
                return -EINVAL;
        if (strncasecmp(s, "SIG", 3) == 0)
                s += 3;

        /* Longer than every name: no match, and no truncated copy that could match one. */
        char full[16];
        if (strlen(s) < sizeof full - 3) {
                (void) snprintf(full, sizeof full, "SIG%s", s);
                ssize_t sig = okg_string_table_lookup(okg_signal_table, ELEMENTSOF(okg_signal_table),
                                                      full, true);
                if (sig > 0)
                        return (int) sig;
        }

        if (strncasecmp(s, "RTMIN", 5) == 0) {
                int off = 0;
                if (s[5] == '+')
                        off = parse_small_uint(s + 6);
                else if (s[5] != 0)
                        return -EINVAL;
                if (off < 0 || SIGRTMIN + off > SIGRTMAX)
                        return -EINVAL;
                return SIGRTMIN + off;
        }
        if (strncasecmp(s, "RTMAX", 5) == 0) {
                int off = 0;
                if (s[5] == '-')
                        off = parse_small_uint(s + 6);
                else if (s[5] != 0)
                        return -EINVAL;
                if (off < 0 || SIGRTMAX - off < SIGRTMIN)
                        return -EINVAL;
                return SIGRTMAX - off;
        }
        return -EINVAL;
}

DEFINE_STRING_TABLE_LOOKUP_TO_STRING(okg_signal, int);

const char *okg_signal_format(int sig, char *buf, unsigned size) {
        const char *name = okg_signal_to_string(sig);
        int r;

        if (!buf || size == 0)
                return NULL;
        if (name)
                r = snprintf(buf, size, "%s", name);
        else if (sig >= SIGRTMIN && sig <= SIGRTMAX)
                r = sig == SIGRTMIN ? snprintf(buf, size, "SIGRTMIN")
                                    : snprintf(buf, size, "SIGRTMIN+%d", sig - SIGRTMIN);
        else
                return NULL;
        if (r < 0 || (unsigned) r >= size)
                return NULL;
        return buf;
}
