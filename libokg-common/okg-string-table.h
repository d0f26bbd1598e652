/* Enum <-> name tables. A table is a `static const char *const NAME_table[]` indexed by the enum
 * (designated initializers; holes are NULL). The macros define NAME_to_string(), which gives
 * the table entry or NULL for a value outside the table, and NAME_from_string(), which gives the
 * index of the entry equal to S or -EINVAL (also for S == NULL): enums that use it declare
 * `_X_INVALID = -EINVAL`. Special cases (aliases, numbers) belong in a wrapper around the
 * generated functions. */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "macro.h"

/* The index of S in TABLE[0..N) (NULL entries skipped), compared exactly or ignoring ASCII
 * case; -EINVAL when absent or S is NULL. Pure. */
ssize_t okg_string_table_lookup(const char *const *table, size_t n, const char *s,
                                bool ignore_case);

/* The entry for I, or NULL when I is outside TABLE[0..N). Pure. */
static inline const char *okg_string_table_get(const char *const *table, size_t n, intmax_t i) {
        if (i < 0 || (uintmax_t) i >= n)
                return NULL;
        return table[i];
}

#define _DEFINE_STRING_TABLE_TO_STRING(name, type, scope)                                  \
        scope const char *name##_to_string(type i) {                                       \
                return okg_string_table_get(name##_table, ELEMENTSOF(name##_table),         \
                                            (intmax_t) i);                                  \
        }

#define _DEFINE_STRING_TABLE_FROM_STRING(name, type, scope, ignore_case)                   \
        scope type name##_from_string(const char *s) {                                     \
                return (type) okg_string_table_lookup(name##_table, ELEMENTSOF(name##_table), \
                                                      s, ignore_case);                      \
        }

/* Public NAME_to_string(type) and NAME_from_string(const char *) over NAME_table. */
#define DEFINE_STRING_TABLE_LOOKUP(name, type)                                             \
        _DEFINE_STRING_TABLE_TO_STRING(name, type, )                                       \
        _DEFINE_STRING_TABLE_FROM_STRING(name, type, , false)
/* The same, matching names without regard to ASCII case. */
#define DEFINE_STRING_TABLE_LOOKUP_CASE(name, type)                                        \
        _DEFINE_STRING_TABLE_TO_STRING(name, type, )                                       \
        _DEFINE_STRING_TABLE_FROM_STRING(name, type, , true)
/* Only one direction. */
#define DEFINE_STRING_TABLE_LOOKUP_TO_STRING(name, type) _DEFINE_STRING_TABLE_TO_STRING(name, type, )
#define DEFINE_STRING_TABLE_LOOKUP_FROM_STRING(name, type)                                 \
        _DEFINE_STRING_TABLE_FROM_STRING(name, type, , false)
/* File-local (static) versions, for tables a single source file uses. */
#define DEFINE_PRIVATE_STRING_TABLE_LOOKUP(name, type)                                     \
        _DEFINE_STRING_TABLE_TO_STRING(name, type, static)                                 \
        _DEFINE_STRING_TABLE_FROM_STRING(name, type, static, false)
#define DEFINE_PRIVATE_STRING_TABLE_LOOKUP_TO_STRING(name, type)                           \
        _DEFINE_STRING_TABLE_TO_STRING(name, type, static)
#define DEFINE_PRIVATE_STRING_TABLE_LOOKUP_FROM_STRING(name, type)                         \
        _DEFINE_STRING_TABLE_FROM_STRING(name, type, static, false)
