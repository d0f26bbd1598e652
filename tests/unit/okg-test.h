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

/* The printed line (okg_error_format()) of error i of the OkgErrors list e is expected: errors
 * are kept in parts and formatted only when printed. */
#define ASSERT_ERROR_LINE(e, i, expected)                                                   \
        do {                                                                                \
                size_t _i = (i);                                                            \
                char *_l = _i < (e).n ? okg_error_format(&(e).items[_i]) : NULL;            \
                const char *_x = (expected);                                                \
                if (!_l || strcmp(_l, _x) != 0) {                                           \
                        fprintf(stderr, "%s:%d: error %zu of %s is \"%s\", expected \"%s\"\n", \
                                __FILE__, __LINE__, _i, #e, _l ? _l : "(none)", _x);        \
                        exit(1);                                                            \
                }                                                                           \
                free(_l);                                                                   \
        } while (0)

/* The list e holds exactly the errors printed as the given lines, in that order. */
#define ASSERT_ERROR_LINES(e, ...)                                                          \
        do {                                                                                \
                static const char *const _want[] = { __VA_ARGS__ };                         \
                ASSERT_EQ((e).n, sizeof _want / sizeof _want[0]);                           \
                for (size_t _k = 0; _k < sizeof _want / sizeof _want[0]; _k++)              \
                        ASSERT_ERROR_LINE(e, _k, _want[_k]);                                \
        } while (0)
