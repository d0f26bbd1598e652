/* Enum <-> name table lookups (see okg-string-table.h). */
#include <strings.h>

#include "okg-string-table.h"

ssize_t okg_string_table_lookup(const char *const *table, size_t n, const char *s,
                                bool ignore_case) {
        if (!s)
                return -EINVAL;
        for (size_t i = 0; i < n; i++) {
                if (!table[i])
                        continue;
                if (ignore_case ? strcasecmp(table[i], s) == 0 : streq(table[i], s))
                        return (ssize_t) i;
        }
        return -EINVAL;
}
