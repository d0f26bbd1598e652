/* libFuzzer target: okg-probed turning an answer's body into a state, with and without a
 * jsonPath. Input: "JSONPATH\nBODY"; no newline: the whole input is a body read without a
 * jsonPath. A state it returns travels over the bus into Kubernetes objects, so it must be
 * valid UTF-8 without NUL or other control characters (it is also logged and shown in tables);
 * without a jsonPath it is exactly the trimmed body. */
#include <errno.h>

#include "fuzz.h"
#include "log.h"
#include "probed-result.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const uint8_t *body = data;
        size_t body_len = size, trimmed_len;
        char *path = fuzz_split(data, size, '\n', &body, &body_len);
        char *state = NULL, err[256];
        const char *trimmed;
        int r;

        if (body_len > PROBE_BODY_MAX)
                body_len = PROBE_BODY_MAX;       /* the endpoint stops reading there */

        trimmed = probe_body_trim((const char *) body, body_len, &trimmed_len);
        FUZZ_ASSERT(trimmed >= (const char *) body &&
                    trimmed + trimmed_len <= (const char *) body + body_len);

        r = probe_body_state((const char *) body, body_len, path, &state, err, sizeof err);
        if (r >= 0) {
                FUZZ_ASSERT(state);
                FUZZ_ASSERT(probe_utf8_valid(state, strlen(state)));
                FUZZ_ASSERT(okg_find_control(state, strlen(state), NULL) < 0);
                if (!path)
                        FUZZ_ASSERT(strlen(state) == trimmed_len &&
                                    memcmp(state, trimmed, trimmed_len) == 0);
                free(state);
        } else if (r != -ENOMEM)
                FUZZ_ASSERT(err[0] && !strchr(err, '\n'));
        free(path);
        return 0;
}
