/* Minimal assertions for the unit tests: a failed check prints where and what, and exits 1 so
 * meson reports the test as failed. */
#pragma once

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ASSERT_TRUE(expr)                                                                   \
        do {                                                                                \
                if (!(expr)) {                                                              \
                        fprintf(stderr, "%s:%d: assertion failed: %s\n", __FILE__,         \
                                __LINE__, #expr);                                           \
                        exit(1);                                                            \
                }                                                                           \
        } while (0)

#define ASSERT_EQ(a, b)                                                                     \
        do {                                                                                \
                long long _a = (long long) (a), _b = (long long) (b);                       \
                if (_a != _b) {                                                             \
                        fprintf(stderr, "%s:%d: %s == %lld, expected %s == %lld\n",          \
                                __FILE__, __LINE__, #a, _a, #b, _b);                        \
                        exit(1);                                                            \
                }                                                                           \
        } while (0)

#define ASSERT_STREQ(a, b)                                                                  \
        do {                                                                                \
                const char *_a = (a), *_b = (b);                                            \
                if (!_a || !_b || strcmp(_a, _b) != 0) {                                    \
                        fprintf(stderr, "%s:%d: %s is \"%s\", expected \"%s\"\n", __FILE__, \
                                __LINE__, #a, _a ? _a : "(null)", _b ? _b : "(null)");      \
                        exit(1);                                                            \
                }                                                                           \
        } while (0)
