/* libFuzzer target: the service_quality plugin's reader of the kruise.io/podprobe annotation
 * (any pod author can write it). Properties: a refused input says why in one line and leaves
 * nothing behind; an accepted one has every required field, one handler with its target, and
 * condition types that differ; it reads the same when parsed twice. */
#include <errno.h>

#include "fuzz.h"
#include "probed-sq.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        SqProbes p = {}, q = {};
        char err[256] = "";
        int r;

        r = sq_probes_parse((const char *) data, size, &p, err, sizeof err);
        if (r < 0) {
                FUZZ_ASSERT(p.n == 0 && p.v == NULL);
                if (r != -ENOMEM)
                        FUZZ_ASSERT(err[0] && !strchr(err, '\n'));
                return 0;
        }
        for (size_t i = 0; i < p.n; i++) {
                const SqProbe *x = &p.v[i];
                FUZZ_ASSERT(x->name && *x->name && x->container && *x->container);
                FUZZ_ASSERT(x->condition_type && *x->condition_type);
                if (x->handler == SQ_HANDLER_EXEC)
                        FUZZ_ASSERT(x->command && x->command[0]);
                else
                        FUZZ_ASSERT((x->port >= 1 && x->port <= 65535) != (x->port_name != NULL));
                for (size_t j = 0; j < i; j++)
                        FUZZ_ASSERT(strcmp(p.v[j].condition_type, x->condition_type) != 0);
        }
        FUZZ_ASSERT(sq_probes_parse((const char *) data, size, &q, err, sizeof err) == 0);
        FUZZ_ASSERT(sq_probes_equal(&p, &q));
        sq_probes_done(&q);
        sq_probes_done(&p);
        return 0;
}
