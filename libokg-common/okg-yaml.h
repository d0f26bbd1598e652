/* A YAML document as a small tree that remembers where every node came from, so that config
 * errors can name file, line and column. Anchors/aliases and multi-document streams are
 * refused: a ConfigMap needs neither and they make error positions ambiguous. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

typedef enum OkgNodeType {
        OKG_NODE_SCALAR,
        OKG_NODE_MAPPING,
        OKG_NODE_SEQUENCE,
} OkgNodeType;

typedef struct OkgNode OkgNode;
struct OkgNode {
        OkgNodeType type;
        unsigned line, column;    /* 1-based position of the node's first character */
        char *scalar;             /* OKG_NODE_SCALAR: the value, never NULL */
        bool plain;               /* OKG_NODE_SCALAR: unquoted (so "null"/"~"/"" mean null) */
        /* OKG_NODE_MAPPING: keys[i] (always scalars) -> values[i].
         * OKG_NODE_SEQUENCE: values[i]; keys is NULL. */
        OkgNode **keys;
        OkgNode **values;
        size_t n;
};

/* One config problem, kept in parts so that it can be sorted by position and printed as
 * "FILE:LINE:COL: KEY: message" ("FILE: KEY: message" without a position, the "KEY: " part left
 * out without a key). */
typedef struct OkgError {
        char *file;               /* NULL prints as "<input>" */
        unsigned line, column;    /* line 0: no position */
        char *key;                /* key path, NULL when none applies */
        char *message;
} OkgError;

/* Error list. items[] is what was found; v[i] is items[i] as printed, kept in step with it for
 * the callers that log or print the lines. */
typedef struct OkgErrors {
        OkgError *items;
        char **v;
        size_t n;
} OkgErrors;

void okg_errors_done(OkgErrors *e);
/* key may be NULL or "" when no key applies (e.g. a YAML syntax error): the "KEY: " part is
 * left out. at may be NULL, and line may be 0, when no position applies (e.g. the file cannot
 * be read): then the line is "FILE: KEY: message". */
void okg_errors_add(OkgErrors *e, const char *file, const OkgNode *at, const char *key,
                    const char *format, ...) __attribute__((format(printf, 5, 6)));
void okg_errors_add_at(OkgErrors *e, const char *file, unsigned line, unsigned column,
                       const char *key, const char *format, ...)
        __attribute__((format(printf, 6, 7)));
/* The printed line of one error; NULL on ENOMEM. */
char *okg_error_format(const OkgError *err);
/* Sorts the errors from index `from` on into file order (line, then column; errors without a
 * position first), keeping the order of equal positions. Section parsers produce errors
 * section by section; readers want them as they read the file. */
void okg_errors_sort(OkgErrors *e, size_t from);

/* Parses; on YAML errors adds one message and returns -EINVAL. An empty document yields an
 * empty mapping. -ENOENT etc. from opening the file are returned and also added as a message. */
int okg_yaml_parse_file(const char *path, OkgNode **ret, OkgErrors *errors);
int okg_yaml_parse_string(const char *text, size_t len, const char *name, OkgNode **ret,
                          OkgErrors *errors);

OkgNode *okg_node_free(OkgNode *n);
static inline void okg_node_freep(OkgNode **n) {
        okg_node_free(*n);
}

/* Mapping lookup by exact key; NULL when absent or when m is not a mapping. With duplicate keys
 * the first one wins (okg_node_check_keys() reports the duplicates). */
OkgNode *okg_node_get(const OkgNode *m, const char *key);
/* The key node of the pair whose value is v (for positions), or NULL. */
OkgNode *okg_node_key_of(const OkgNode *m, const OkgNode *v);
/* True for NULL and for an unquoted "", "~", "null", "Null" or "NULL" scalar. */
bool okg_node_is_null(const OkgNode *n);
/* "a mapping", "a sequence", "null" or the quoted scalar text: for "expected X, got Y". */
const char *okg_node_describe(const OkgNode *n, char *buf, size_t size);
/* A string quoted and escaped as okg_node_describe() shows a scalar. */
const char *okg_quote(const char *s, char *buf, size_t size);

/* Key paths for messages: okg_path_key("plugins[0]", "name") is "plugins[0].name" (just "name"
 * when path is empty or NULL), okg_path_index("plugins", 1) is "plugins[1]". NULL on ENOMEM. */
char *okg_path_key(const char *path, const char *key);
char *okg_path_index(const char *path, size_t i);

/* For keys accepted in two spellings ("bootorder" and "bootOrder"): returns 1 and the value and
 * the spelling found, 0 (and NULLs) when neither is present, or -EINVAL after adding
 * `both "a" and "b" given` (placed at the second key, named by `path`). */
int okg_node_get_either(const OkgNode *m, const char *a, const char *b, const char *file,
                        const char *path, OkgErrors *e, OkgNode **ret_value,
                        const char **ret_key);

/* A canonical one-line text of a subtree (keys in document order, no positions), used to tell
 * whether a plugin's section changed between two versions of the config. It is JSON: unquoted
 * nulls become null, every other scalar a string. NULL on ENOMEM. */
char *okg_node_canonical(const OkgNode *n);

/* Typed scalar readers. Each adds an error naming file/position/key and returns -EINVAL when the
 * node is not of the expected form; on success stores the value. n == NULL (key absent) returns
 * -ENOENT without adding an error. Strings must be scalars and not null; integers and bools must
 * be unquoted; integers outside [min, max] are refused with the range in the message. */
int okg_node_get_string(const OkgNode *n, const char *file, const char *key, OkgErrors *e,
                        char **ret);
int okg_node_get_int(const OkgNode *n, const char *file, const char *key, long long min,
                     long long max, OkgErrors *e, long long *ret);
int okg_node_get_bool(const OkgNode *n, const char *file, const char *key, OkgErrors *e,
                      bool *ret);

/* Walks a mapping and adds "unknown key" errors for keys that are not in allowed[] (NULL
 * terminated; allowed == NULL accepts every key); also reports duplicate keys. Errors are
 * placed at the offending key and named by `path`, the mapping's own key path. Returns the
 * number of errors added, or -ENOMEM. */
int okg_node_check_keys(const OkgNode *m, const char *file, const char *path,
                        const char *const *allowed, OkgErrors *e);
