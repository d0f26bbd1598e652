/* libFuzzer target: okg-storaged's kubeconfig reader and its base64 decoder. A kubeconfig is
 * read from a file the pod's owner mounts; a bad one must be refused with a reason. The decoder
 * is also checked against an encoder: decode(encode(x)) == x. */
#include <errno.h>

#include "fuzz.h"
#include "storaged-kube.h"

static char *encode(const uint8_t *in, size_t len) {
        static const char alphabet[] =
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        char *out = malloc((len + 2) / 3 * 4 + 1), *o = out;

        if (!out)
                return NULL;
        for (size_t i = 0; i < len; i += 3) {
                uint32_t v = (uint32_t) in[i] << 16;
                if (i + 1 < len)
                        v |= (uint32_t) in[i + 1] << 8;
                if (i + 2 < len)
                        v |= in[i + 2];
                *o++ = alphabet[v >> 18 & 63];
                *o++ = alphabet[v >> 12 & 63];
                *o++ = i + 1 < len ? alphabet[v >> 6 & 63] : '=';
                *o++ = i + 2 < len ? alphabet[v & 63] : '=';
        }
        *o = 0;
        return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        KubeConfig *c = NULL;
        char *error = NULL, *out = NULL, *text;
        size_t out_len = 0;
        int r;

        r = kubeconfig_parse((const char *) data, size, "/etc/kube", &c, &error);
        if (r >= 0) {
                FUZZ_ASSERT(c && c->server && c->namespace);
                FUZZ_ASSERT(strncmp(c->server, "https://", 8) == 0);
                FUZZ_ASSERT(c->token || c->token_file);
                FUZZ_ASSERT(!c->ca_file || c->ca_file[0] == '/');
                FUZZ_ASSERT(!c->token_file || c->token_file[0] == '/');
                kube_config_free(c);
        } else if (r == -EINVAL)
                FUZZ_ASSERT(error && error[0]);
        free(error);

        /* The raw input as base64 text. */
        if (okg_base64_decode((const char *) data, size, &out, &out_len) >= 0) {
                FUZZ_ASSERT(out_len <= size / 4 * 3 + 3);
                FUZZ_ASSERT(out[out_len] == 0);
                free(out);
        }

        /* The round trip. */
        text = encode(data, size);
        if (text) {
                r = okg_base64_decode(text, strlen(text), &out, &out_len);
                FUZZ_ASSERT(r == 0 || r == -ENOMEM);
                if (r == 0) {
                        FUZZ_ASSERT(out_len == size);
                        FUZZ_ASSERT(size == 0 || memcmp(out, data, size) == 0);
                        free(out);
                }
                free(text);
        }
        return 0;
}
