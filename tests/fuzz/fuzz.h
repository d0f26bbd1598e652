/* Shared by the libFuzzer targets: the entry point's prototype and an assertion that says
 * what broke before it aborts (libFuzzer then saves the input as a crash). */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_ASSERT(expr)                                                                   \
        do {                                                                                \
                if (!(expr)) {                                                              \
                        fprintf(stderr, "%s:%d: property violated: %s\n", __FILE__, __LINE__, \
                                #expr);                                                     \
                        abort();                                                            \
                }                                                                           \
        } while (0)

/* Splits data at the first occurrence of sep: the part before is returned as a new
 * NUL-terminated string (NULL when sep is absent); rest and rest_size describe the part after. */
static inline char *fuzz_split(const uint8_t *data, size_t size, char sep, const uint8_t **rest,
                               size_t *rest_size) {
        const uint8_t *p = memchr(data, sep, size);
        char *head;

        if (!p)
                return NULL;
        head = strndup((const char *) data, (size_t) (p - data));
        *rest = p + 1;
        *rest_size = size - (size_t) (p - data) - 1;
        return head;
}
