/* libFuzzer target: okg-probed turning an answer's body into a state, with and without a
 * jsonPath. Input: "JSONPATH\nBODY"; no newline: the whole input is a body read without a
 * jsonPath. A state it returns travels over the bus into Kubernetes objects, so it must be
 * valid UTF-8 without NUL or other control characters (it is also logged and shown in tables),
 * and without the invisible characters that make text read otherwise than it is (line and
 * paragraph separators, bidi controls, zero-width and format characters); without a jsonPath it
 * is exactly the trimmed body. */
#include <errno.h>

#include "fuzz.h"
#include "log.h"
#include "probed-result.h"

/* What no state may hold, written out here apart from okg_find_control(), so that the property
 * does not check the code against itself. */
static bool forbidden(uint32_t cp) {
        return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) ||              /* C0, DEL, C1 */
               cp == 0x2028 || cp == 0x2029 ||                          /* line, paragraph */
               cp == 0x061c || cp == 0x200e || cp == 0x200f ||          /* bidi marks */
               (cp >= 0x202a && cp <= 0x202e) ||                        /* embeddings, overrides */
               (cp >= 0x2066 && cp <= 0x2069) ||                        /* isolates */
               (cp >= 0x200b && cp <= 0x200d) ||                        /* zero width */
               (cp >= 0x2060 && cp <= 0x2064) || cp == 0xfeff;          /* joiners, BOM */
}

/* s is valid UTF-8 (checked before): decode it and look at every code point. */
static bool has_forbidden(const char *s) {
        const unsigned char *p = (const unsigned char *) s;

        while (*p) {
                uint32_t cp;
                size_t n = *p < 0x80 ? 1 : *p < 0xe0 ? 2 : *p < 0xf0 ? 3 : 4;

                cp = n == 1 ? *p : n == 2 ? (*p & 0x1fu) : n == 3 ? (*p & 0x0fu) : (*p & 0x07u);
                for (size_t i = 1; i < n; i++)
                        cp = (cp << 6) | (p[i] & 0x3fu);
                if (forbidden(cp))
                        return true;
                p += n;
        }
        return false;
}

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
                FUZZ_ASSERT(!has_forbidden(state));
                if (!path)
                        FUZZ_ASSERT(strlen(state) == trimmed_len &&
                                    memcmp(state, trimmed, trimmed_len) == 0);
                free(state);
        } else if (r != -ENOMEM)
                FUZZ_ASSERT(err[0] && !strchr(err, '\n'));
        free(path);
        return 0;
}
