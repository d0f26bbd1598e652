/* YAML to a position-carrying node tree with libyaml's event API, plus the typed readers and key
 * checks every config validator builds on. */
#define _GNU_SOURCE 1

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <yaml.h>

#include "macro.h"
#include "okg-util.h"
#include "okg-yaml.h"

/* A ConfigMap holds at most 1 MiB; anything much larger is not a config file. */
#define YAML_FILE_MAX (4U * 1024U * 1024U)
/* Deeper than any sane config; keeps the recursive walkers' stack use bounded. */
#define YAML_DEPTH_MAX 128U

static bool str_in(const char *s, const char *const *set) {
        for (; *set; set++)
                if (streq(s, *set))
                        return true;
        return false;
}
#define STR_IN_SET(s, ...) str_in((s), (const char *const[]) { __VA_ARGS__, NULL })

static void yaml_parser_deletep(yaml_parser_t **p) {
        if (*p)
                yaml_parser_delete(*p);
}

static void error_done(OkgError *err) {
        free(err->file);
        free(err->key);
        free(err->message);
}

void okg_errors_done(OkgErrors *e) {
        if (!e)
                return;
        for (size_t i = 0; i < e->n; i++) {
                error_done(&e->items[i]);
                free(e->v[i]);
        }
        free(e->items);
        free(e->v);
        *e = (OkgErrors) {};
}

char *okg_error_format(const OkgError *err) {
        const char *file = err->file ?: "<input>", *sep = isempty(err->key) ? "" : ": ";
        char *s = NULL;
        int r;

        if (err->line > 0)
                r = asprintf(&s, "%s:%u:%u: %s%s%s", file, err->line, err->column,
                             strempty(err->key), sep, err->message);
        else
                r = asprintf(&s, "%s: %s%s%s", file, strempty(err->key), sep, err->message);
        return r < 0 ? NULL : s;
}

static void errors_addv(OkgErrors *e, const char *file, unsigned line, unsigned column,
                        const char *key, const char *format, va_list ap) _printf_(6, 0);
static void errors_addv(OkgErrors *e, const char *file, unsigned line, unsigned column,
                        const char *key, const char *format, va_list ap) {
        OkgError err = { .line = line, .column = column };
        _cleanup_(freep) char *text = NULL;

        if (!e)
                return;
        if (vasprintf(&err.message, format, ap) < 0) {
                err.message = NULL;
                return;
        }
        err.file = file ? strdup(file) : NULL;
        err.key = isempty(key) ? NULL : strdup(key);
        text = okg_error_format(&err);
        if ((file && !err.file) || (!isempty(key) && !err.key) || !text) {
                error_done(&err);
                return;
        }

        OkgError *items = realloc(e->items, (e->n + 1) * sizeof(OkgError));
        if (items)
                e->items = items;
        char **v = items ? realloc(e->v, (e->n + 1) * sizeof(char *)) : NULL;
        if (!v) {
                error_done(&err);
                return;
        }
        e->v = v;
        e->items[e->n] = err;
        e->v[e->n++] = TAKE_PTR(text);
}

void okg_errors_add(OkgErrors *e, const char *file, const OkgNode *at, const char *key,
                    const char *format, ...) {
        va_list ap;

        va_start(ap, format);
        errors_addv(e, file, at ? at->line : 0, at ? at->column : 0, key, format, ap);
        va_end(ap);
}

void okg_errors_add_at(OkgErrors *e, const char *file, unsigned line, unsigned column,
                       const char *key, const char *format, ...) {
        va_list ap;

        va_start(ap, format);
        errors_addv(e, file, line, column, key, format, ap);
        va_end(ap);
}

OkgNode *okg_node_free(OkgNode *n) {
        if (!n)
                return NULL;
        for (size_t i = 0; i < n->n; i++) {
                if (n->keys)
                        okg_node_free(n->keys[i]);
                if (n->values)
                        okg_node_free(n->values[i]);
        }
        free(n->keys);
        free(n->values);
        free(n->scalar);
        free(n);
        return NULL;
}

static OkgNode *node_new(OkgNodeType type, const yaml_mark_t *mark) {
        OkgNode *n = calloc(1, sizeof(OkgNode));
        if (!n)
                return NULL;
        n->type = type;
        n->line = (unsigned) mark->line + 1;
        n->column = (unsigned) mark->column + 1;
        return n;
}

/* One open mapping or sequence while the tree is being built. */
typedef struct Frame {
        OkgNode *node;
        OkgNode *pending_key;   /* mapping: key read, value not yet */
        size_t allocated;
} Frame;

typedef struct Builder {
        const char *name;
        OkgErrors *errors;
        Frame stack[YAML_DEPTH_MAX];
        size_t depth;
        OkgNode *root;
        unsigned n_documents;
} Builder;

static void builder_done(Builder *b) {
        for (size_t i = 0; i < b->depth; i++)
                okg_node_free(b->stack[i].pending_key);
        /* Every open node hangs off its parent already, except the root. */
        b->root = okg_node_free(b->root);
        b->depth = 0;
}

/* Hands a finished or newly opened node to its parent. Takes ownership of n in all cases. */
static int builder_attach(Builder *b, OkgNode *n) {
        if (b->depth == 0) {
                if (b->root) {
                        /* Cannot happen with one document per stream; be safe anyway. */
                        okg_node_free(n);
                        return -EINVAL;
                }
                b->root = n;
                return 0;
        }

        Frame *f = &b->stack[b->depth - 1];
        OkgNode *p = f->node;

        if (p->type == OKG_NODE_MAPPING && !f->pending_key) {
                if (n->type != OKG_NODE_SCALAR) {
                        okg_errors_add(b->errors, b->name, n, NULL,
                                       "invalid YAML: mapping keys must be scalars");
                        okg_node_free(n);
                        return -EINVAL;
                }
                f->pending_key = n;
                return 0;
        }

        if (p->n >= f->allocated) {
                size_t na = f->allocated ? f->allocated * 2 : 4;
                OkgNode **v = realloc(p->values, na * sizeof(OkgNode *));
                if (!v)
                        goto oom;
                p->values = v;
                if (p->type == OKG_NODE_MAPPING) {
                        OkgNode **k = realloc(p->keys, na * sizeof(OkgNode *));
                        if (!k)
                                goto oom;
                        p->keys = k;
                }
                f->allocated = na;
        }
        if (p->type == OKG_NODE_MAPPING)
                p->keys[p->n] = TAKE_PTR(f->pending_key);
        p->values[p->n++] = n;
        return 0;

oom:
        okg_node_free(n);
        return -ENOMEM;
}

static int builder_open(Builder *b, OkgNode *n) {
        OkgNode *ref = n;
        int r;

        if (b->depth >= YAML_DEPTH_MAX) {
                okg_errors_add(b->errors, b->name, n, NULL,
                               "invalid YAML: nesting deeper than %u levels", YAML_DEPTH_MAX);
                okg_node_free(n);
                return -EINVAL;
        }
        r = builder_attach(b, n);
        if (r < 0)
                return r;
        b->stack[b->depth++] = (Frame) { .node = ref };
        return 0;
}

static const char *anchor_of(const yaml_event_t *ev) {
        switch (ev->type) {
        case YAML_SCALAR_EVENT:
                return (const char *) ev->data.scalar.anchor;
        case YAML_MAPPING_START_EVENT:
                return (const char *) ev->data.mapping_start.anchor;
        case YAML_SEQUENCE_START_EVENT:
                return (const char *) ev->data.sequence_start.anchor;
        default:
                return NULL;
        }
}

static int builder_event(Builder *b, const yaml_event_t *ev) {
        OkgNode *n;

        if (anchor_of(ev)) {
                okg_errors_add_at(b->errors, b->name, (unsigned) ev->start_mark.line + 1,
                                  (unsigned) ev->start_mark.column + 1, NULL,
                                  "YAML anchors (&%s) are not supported",
                                  anchor_of(ev));
                return -EINVAL;
        }

        switch (ev->type) {
        case YAML_DOCUMENT_START_EVENT:
                if (++b->n_documents > 1) {
                        okg_errors_add_at(b->errors, b->name,
                                          (unsigned) ev->start_mark.line + 1,
                                          (unsigned) ev->start_mark.column + 1, NULL,
                                          "more than one YAML document; the config must be "
                                          "a single document");
                        return -EINVAL;
                }
                return 0;

        case YAML_ALIAS_EVENT:
                okg_errors_add_at(b->errors, b->name, (unsigned) ev->start_mark.line + 1,
                                  (unsigned) ev->start_mark.column + 1, NULL,
                                  "YAML aliases (*%s) are not supported",
                                  (const char *) ev->data.alias.anchor);
                return -EINVAL;

        case YAML_SCALAR_EVENT:
                n = node_new(OKG_NODE_SCALAR, &ev->start_mark);
                if (!n)
                        return -ENOMEM;
                if (memchr(ev->data.scalar.value, 0, ev->data.scalar.length)) {
                        okg_errors_add(b->errors, b->name, n, NULL,
                                       "invalid YAML: NUL characters are not supported");
                        okg_node_free(n);
                        return -EINVAL;
                }
                n->scalar = strndup((const char *) ev->data.scalar.value,
                                    ev->data.scalar.length);
                if (!n->scalar) {
                        okg_node_free(n);
                        return -ENOMEM;
                }
                /* "!!str 5" is as much a string as "5". */
                n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
                           !(ev->data.scalar.tag &&
                             streq((const char *) ev->data.scalar.tag, YAML_STR_TAG));
                return builder_attach(b, n);

        case YAML_MAPPING_START_EVENT:
        case YAML_SEQUENCE_START_EVENT:
                n = node_new(ev->type == YAML_MAPPING_START_EVENT ? OKG_NODE_MAPPING
                                                                  : OKG_NODE_SEQUENCE,
                             &ev->start_mark);
                if (!n)
                        return -ENOMEM;
                return builder_open(b, n);

        case YAML_MAPPING_END_EVENT:
        case YAML_SEQUENCE_END_EVENT:
                if (b->depth == 0)
                        return -EINVAL;
                b->depth--;
                return 0;

        default:
                return 0;
        }
}

/* libyaml's marks count characters; walk the text to tell whether the offending one is a tab,
 * the most common way to break YAML by hand. */
static bool char_at_is_tab(const char *text, size_t len, size_t line, size_t column) {
        size_t i = 0;

        for (size_t l = 0; l < line; l++) {
                const char *nl = memchr(text + i, '\n', len - i);
                if (!nl)
                        return false;
                i = (size_t) (nl - text) + 1;
        }
        for (size_t c = 0; c < column && i < len; i++)
                if (((unsigned char) text[i] & 0xC0) != 0x80)
                        c++;
        while (i < len && ((unsigned char) text[i] & 0xC0) == 0x80)
                i++;
        return i < len && text[i] == '\t';
}

static void report_parser_error(const yaml_parser_t *p, const char *text, size_t len,
                                const char *name, OkgErrors *errors) {
        size_t line = p->problem_mark.line, column = p->problem_mark.column;

        if (p->error == YAML_MEMORY_ERROR)
                return;

        if (p->error == YAML_READER_ERROR) {
                /* Reader errors carry a byte offset, not a mark. */
                line = column = 0;
                for (size_t i = 0; i < p->problem_offset && i < len; i++) {
                        if (text[i] == '\n') {
                                line++;
                                column = 0;
                        } else if (((unsigned char) text[i] & 0xC0) != 0x80)
                                column++;
                }
        }

        const char *problem = p->problem ?: "unknown error";
        bool tab = p->error == YAML_SCANNER_ERROR && !strstr(problem, "tab") &&
                   char_at_is_tab(text, len, line, column);
        char context[128] = "";

        /* libyaml's context says which construct was open, often far above the problem. */
        if (p->context && p->error != YAML_READER_ERROR &&
            (p->context_mark.line != line || p->context_mark.column != column))
                snprintf(context, sizeof(context), " (%s at line %zu, column %zu)", p->context,
                         p->context_mark.line + 1, p->context_mark.column + 1);

        if (p->error == YAML_READER_ERROR && p->problem_value >= 0)
                okg_errors_add_at(errors, name, (unsigned) line + 1, (unsigned) column + 1, NULL,
                                  "invalid YAML: %s (#%X)", problem,
                                  (unsigned) p->problem_value);
        else
                okg_errors_add_at(errors, name, (unsigned) line + 1, (unsigned) column + 1, NULL,
                                  "invalid YAML: %s%s%s", problem,
                                  tab ? " (a tab; YAML indents with spaces only)" : "",
                                  context);
}

int okg_yaml_parse_string(const char *text, size_t len, const char *name, OkgNode **ret,
                          OkgErrors *errors) {
        _cleanup_(yaml_parser_deletep) yaml_parser_t *parser = NULL;
        yaml_parser_t parser_storage;
        _cleanup_(freep) Builder *b = NULL;
        int r = 0;

        if (!text && len > 0)
                return -EINVAL;

        b = calloc(1, sizeof(Builder));
        if (!b)
                return -ENOMEM;
        b->name = name;
        b->errors = errors;

        if (!yaml_parser_initialize(&parser_storage))
                return -ENOMEM;
        parser = &parser_storage;
        yaml_parser_set_input_string(parser, (const unsigned char *) (text ?: ""), len);

        for (;;) {
                yaml_event_t ev;

                if (!yaml_parser_parse(parser, &ev)) {
                        if (parser->error == YAML_MEMORY_ERROR)
                                r = -ENOMEM;
                        else {
                                report_parser_error(parser, text ?: "", len, name, errors);
                                r = -EINVAL;
                        }
                        break;
                }

                r = builder_event(b, &ev);
                bool end = ev.type == YAML_STREAM_END_EVENT;
                yaml_event_delete(&ev);
                if (r < 0 || end)
                        break;
        }

        if (r < 0) {
                builder_done(b);
                return r;
        }

        /* An empty file, or a document that is only a null scalar: no settings at all. */
        if (!b->root || (b->root->type == OKG_NODE_SCALAR && okg_node_is_null(b->root))) {
                OkgNode *empty = calloc(1, sizeof(OkgNode));
                if (!empty) {
                        builder_done(b);
                        return -ENOMEM;
                }
                empty->type = OKG_NODE_MAPPING;
                empty->line = b->root ? b->root->line : 1;
                empty->column = b->root ? b->root->column : 1;
                okg_node_free(b->root);
                b->root = empty;
        }

        if (ret)
                *ret = TAKE_PTR(b->root);
        builder_done(b);
        return 0;
}

int okg_yaml_parse_file(const char *path, OkgNode **ret, OkgErrors *errors) {
        _cleanup_(freep) char *text = NULL;
        size_t len = 0;
        int r;

        if (!path)
                return -EINVAL;

        r = okg_read_file(path, YAML_FILE_MAX, &text, &len);
        if (r == -EFBIG) {
                okg_errors_add(errors, path, NULL, NULL, "cannot read: larger than %u bytes",
                               YAML_FILE_MAX);
                return r;
        }
        if (r < 0) {
                okg_errors_add(errors, path, NULL, NULL, "cannot read: %s", strerror(-r));
                return r;
        }

        return okg_yaml_parse_string(text, len, path, ret, errors);
}

OkgNode *okg_node_get(const OkgNode *m, const char *key) {
        if (!m || m->type != OKG_NODE_MAPPING || !key)
                return NULL;
        for (size_t i = 0; i < m->n; i++)
                if (streq(m->keys[i]->scalar, key))
                        return m->values[i];
        return NULL;
}

OkgNode *okg_node_key_of(const OkgNode *m, const OkgNode *v) {
        if (!m || m->type != OKG_NODE_MAPPING || !v)
                return NULL;
        for (size_t i = 0; i < m->n; i++)
                if (m->values[i] == v)
                        return m->keys[i];
        return NULL;
}

static OkgNode *node_get_key(const OkgNode *m, const char *key) {
        if (!m || m->type != OKG_NODE_MAPPING)
                return NULL;
        for (size_t i = 0; i < m->n; i++)
                if (streq(m->keys[i]->scalar, key))
                        return m->keys[i];
        return NULL;
}

bool okg_node_is_null(const OkgNode *n) {
        if (!n)
                return true;
        if (n->type != OKG_NODE_SCALAR || !n->plain)
                return false;
        return STR_IN_SET(n->scalar, "", "~", "null", "Null", "NULL");
}

/* Quotes text for a message, kept on one line and short whatever it holds. */
static const char *quote(const char *text, char *buf, size_t size) {
        size_t j = 0;

        if (size < 8)
                return "\"...\"";
        buf[j++] = '"';
        for (const char *s = text; *s; s++) {
                if (j + 6 >= size) {
                        buf[j++] = '.';
                        buf[j++] = '.';
                        buf[j++] = '.';
                        break;
                }
                unsigned char c = (unsigned char) *s;
                if (c == '\n') {
                        buf[j++] = '\\';
                        buf[j++] = 'n';
                } else if (c == '"' || c == '\\') {
                        buf[j++] = '\\';
                        buf[j++] = (char) c;
                } else if (c < 0x20 || c == 0x7f)
                        buf[j++] = '?';
                else
                        buf[j++] = (char) c;
        }
        buf[j++] = '"';
        buf[j] = 0;
        return buf;
}

const char *okg_quote(const char *s, char *buf, size_t size) {
        return quote(strempty(s), buf, size);
}

const char *okg_node_describe(const OkgNode *n, char *buf, size_t size) {
        if (!n || okg_node_is_null(n))
                return "null";
        if (n->type == OKG_NODE_MAPPING)
                return "a mapping";
        if (n->type == OKG_NODE_SEQUENCE)
                return "a sequence";
        return quote(n->scalar, buf, size);
}

char *okg_path_key(const char *path, const char *key) {
        char *s;

        if (isempty(path))
                return strdup(strempty(key));
        if (asprintf(&s, "%s.%s", path, strempty(key)) < 0)
                return NULL;
        return s;
}

char *okg_path_index(const char *path, size_t i) {
        char *s;

        if (asprintf(&s, "%s[%zu]", strempty(path), i) < 0)
                return NULL;
        return s;
}

int okg_node_get_either(const OkgNode *m, const char *a, const char *b, const char *file,
                        const char *path, OkgErrors *e, OkgNode **ret_value,
                        const char **ret_key) {
        OkgNode *ka = node_get_key(m, a), *kb = node_get_key(m, b);

        if (ka && kb) {
                const OkgNode *second = ka->line > kb->line ||
                                                        (ka->line == kb->line && ka->column > kb->column)
                                                ? ka
                                                : kb;
                okg_errors_add(e, file, second, path, "both \"%s\" and \"%s\" given", a, b);
                return -EINVAL;
        }
        if (!ka && !kb) {
                if (ret_value)
                        *ret_value = NULL;
                if (ret_key)
                        *ret_key = NULL;
                return 0;
        }
        if (ret_value)
                *ret_value = okg_node_get(m, ka ? a : b);
        if (ret_key)
                *ret_key = ka ? a : b;
        return 1;
}

/* Canonical text: JSON with keys in document order; plain null scalars become null, every
 * other scalar a JSON string, so `5` and "5" compare equal but `~` and "~" do not. */
typedef struct Buf {
        char *s;
        size_t n, allocated;
        bool oom;
} Buf;

static void buf_put(Buf *b, const char *s, size_t l) {
        if (b->oom)
                return;
        if (b->n + l + 1 > b->allocated) {
                size_t na = b->allocated ? b->allocated : 64;
                while (na < b->n + l + 1)
                        na *= 2;
                char *t = realloc(b->s, na);
                if (!t) {
                        b->oom = true;
                        return;
                }
                b->s = t;
                b->allocated = na;
        }
        memcpy(b->s + b->n, s, l);
        b->n += l;
        b->s[b->n] = 0;
}

static void buf_puts(Buf *b, const char *s) {
        buf_put(b, s, strlen(s));
}

static void buf_put_json_string(Buf *b, const char *s) {
        buf_put(b, "\"", 1);
        for (; *s; s++) {
                unsigned char c = (unsigned char) *s;
                char esc[8];

                switch (c) {
                case '"':
                        buf_puts(b, "\\\"");
                        break;
                case '\\':
                        buf_puts(b, "\\\\");
                        break;
                case '\n':
                        buf_puts(b, "\\n");
                        break;
                case '\r':
                        buf_puts(b, "\\r");
                        break;
                case '\t':
                        buf_puts(b, "\\t");
                        break;
                case '\b':
                        buf_puts(b, "\\b");
                        break;
                case '\f':
                        buf_puts(b, "\\f");
                        break;
                default:
                        if (c < 0x20 || c == 0x7f) {
                                snprintf(esc, sizeof(esc), "\\u%04x", c);
                                buf_puts(b, esc);
                        } else
                                buf_put(b, s, 1);
                }
        }
        buf_put(b, "\"", 1);
}

static void buf_put_node(Buf *b, const OkgNode *n) {
        if (okg_node_is_null(n)) {
                buf_puts(b, "null");
                return;
        }
        switch (n->type) {
        case OKG_NODE_SCALAR:
                buf_put_json_string(b, n->scalar);
                break;
        case OKG_NODE_MAPPING:
                buf_put(b, "{", 1);
                for (size_t i = 0; i < n->n; i++) {
                        if (i > 0)
                                buf_put(b, ",", 1);
                        buf_put_json_string(b, n->keys[i]->scalar);
                        buf_put(b, ":", 1);
                        buf_put_node(b, n->values[i]);
                }
                buf_put(b, "}", 1);
                break;
        case OKG_NODE_SEQUENCE:
                buf_put(b, "[", 1);
                for (size_t i = 0; i < n->n; i++) {
                        if (i > 0)
                                buf_put(b, ",", 1);
                        buf_put_node(b, n->values[i]);
                }
                buf_put(b, "]", 1);
                break;
        }
}

char *okg_node_canonical(const OkgNode *n) {
        Buf b = {};

        buf_put_node(&b, n);
        if (b.oom) {
                free(b.s);
                return NULL;
        }
        return b.s;
}

int okg_node_get_string(const OkgNode *n, const char *file, const char *key, OkgErrors *e,
                        char **ret) {
        char what[64];

        if (!n)
                return -ENOENT;
        if (n->type != OKG_NODE_SCALAR || okg_node_is_null(n)) {
                okg_errors_add(e, file, n, key, "expected a string, got %s",
                               okg_node_describe(n, what, sizeof(what)));
                return -EINVAL;
        }
        if (ret) {
                char *s = strdup(n->scalar);
                if (!s)
                        return -ENOMEM;
                *ret = s;
        }
        return 0;
}

static bool parse_decimal(const char *s, long long *ret) {
        const char *p = s;
        bool negative = false;
        unsigned long long v = 0;

        if (*p == '+' || *p == '-')
                negative = *p++ == '-';
        if (!*p)
                return false;
        for (; *p; p++) {
                if (*p < '0' || *p > '9')
                        return false;
                if (v > (ULLONG_MAX - 9) / 10)
                        return false;
                v = v * 10 + (unsigned) (*p - '0');
        }
        if (negative) {
                if (v > (unsigned long long) LLONG_MAX + 1)
                        return false;
                *ret = v == (unsigned long long) LLONG_MAX + 1 ? LLONG_MIN : -(long long) v;
        } else {
                if (v > (unsigned long long) LLONG_MAX)
                        return false;
                *ret = (long long) v;
        }
        return true;
}

static bool all_digits(const char *s) {
        if (*s == '+' || *s == '-')
                s++;
        if (!*s)
                return false;
        for (; *s; s++)
                if (*s < '0' || *s > '9')
                        return false;
        return true;
}

int okg_node_get_int(const OkgNode *n, const char *file, const char *key, long long min,
                     long long max, OkgErrors *e, long long *ret) {
        char what[64];
        long long v;

        if (!n)
                return -ENOENT;
        if (n->type != OKG_NODE_SCALAR || okg_node_is_null(n)) {
                okg_errors_add(e, file, n, key, "expected an integer, got %s",
                               okg_node_describe(n, what, sizeof(what)));
                return -EINVAL;
        }
        if (!n->plain) {
                okg_errors_add(e, file, n, key,
                               "expected an integer, got the quoted string %s",
                               okg_node_describe(n, what, sizeof(what)));
                return -EINVAL;
        }
        if (!parse_decimal(n->scalar, &v)) {
                if (all_digits(n->scalar))
                        /* Too many digits for any range we use. */
                        v = n->scalar[0] == '-' ? LLONG_MIN : LLONG_MAX;
                else {
                        okg_errors_add(e, file, n, key, "expected an integer, got %s",
                                       okg_node_describe(n, what, sizeof(what)));
                        return -EINVAL;
                }
        }
        if (v < min || v > max) {
                if (max == LLONG_MAX && min == 0)
                        okg_errors_add(e, file, n, key, "must not be negative, got %s",
                                       n->scalar);
                else if (max == LLONG_MAX)
                        okg_errors_add(e, file, n, key, "must be at least %lld, got %s", min,
                                       n->scalar);
                else
                        okg_errors_add(e, file, n, key, "must be between %lld and %lld, got %s",
                                       min, max, n->scalar);
                return -EINVAL;
        }
        if (ret)
                *ret = v;
        return 0;
}

int okg_node_get_bool(const OkgNode *n, const char *file, const char *key, OkgErrors *e,
                      bool *ret) {
        char what[64];
        bool v;

        if (!n)
                return -ENOENT;
        if (n->type == OKG_NODE_SCALAR && n->plain &&
            STR_IN_SET(n->scalar, "true", "True", "TRUE"))
                v = true;
        else if (n->type == OKG_NODE_SCALAR && n->plain &&
                 STR_IN_SET(n->scalar, "false", "False", "FALSE"))
                v = false;
        else {
                okg_errors_add(e, file, n, key, "expected true or false, got %s",
                               okg_node_describe(n, what, sizeof(what)));
                return -EINVAL;
        }
        if (ret)
                *ret = v;
        return 0;
}

/* Levenshtein distance, capped: only used to suggest a key for short key names. */
static size_t edit_distance(const char *a, const char *b) {
        size_t la = strlen(a), lb = strlen(b);
        size_t row[65];

        if (la > 64 || lb > 64)
                return SIZE_MAX;
        for (size_t j = 0; j <= lb; j++)
                row[j] = j;
        for (size_t i = 1; i <= la; i++) {
                size_t diag = row[0];
                row[0] = i;
                for (size_t j = 1; j <= lb; j++) {
                        size_t up = row[j];
                        size_t cost = strncasecmp(a + i - 1, b + j - 1, 1) == 0 ? 0 : 1;
                        size_t best = diag + cost;
                        if (row[j] + 1 < best)
                                best = row[j] + 1;
                        if (row[j - 1] + 1 < best)
                                best = row[j - 1] + 1;
                        row[j] = best;
                        diag = up;
                }
        }
        return row[lb];
}

static const char *suggest_key(const char *key, const char *const *allowed) {
        const char *best = NULL;
        size_t best_d = SIZE_MAX;

        for (const char *const *a = allowed; *a; a++) {
                size_t d = edit_distance(key, *a);
                if (d < best_d) {
                        best_d = d;
                        best = *a;
                }
        }
        /* Close enough to be a typo, not a different word. */
        if (best && best_d <= (strlen(key) >= 6 ? 2U : 1U))
                return best;
        return NULL;
}

typedef struct KeyRef {
        const char *key;
        size_t index;
} KeyRef;

static int keyref_compare(const void *x, const void *y) {
        const KeyRef *a = x, *b = y;
        int r = strcmp(a->key, b->key);
        if (r != 0)
                return r;
        return a->index < b->index ? -1 : a->index > b->index;
}

int okg_node_check_keys(const OkgNode *m, const char *file, const char *path,
                        const char *const *allowed, OkgErrors *e) {
        _cleanup_(freep) KeyRef *refs = NULL;
        _cleanup_(freep) size_t *first = NULL;
        int n_errors = 0;

        if (!m || m->type != OKG_NODE_MAPPING || m->n == 0)
                return 0;

        /* Sort instead of comparing pairs so huge mappings stay cheap. first[i] is the index of
         * the earlier occurrence of key i, or SIZE_MAX. */
        refs = calloc(m->n, sizeof(KeyRef));
        first = calloc(m->n, sizeof(size_t));
        if (!refs || !first)
                return -ENOMEM;
        for (size_t i = 0; i < m->n; i++) {
                refs[i] = (KeyRef) { .key = m->keys[i]->scalar, .index = i };
                first[i] = SIZE_MAX;
        }
        qsort(refs, m->n, sizeof(KeyRef), keyref_compare);
        for (size_t i = 1; i < m->n; i++) {
                size_t j = i;
                while (j > 0 && streq(refs[j - 1].key, refs[i].key))
                        j--;
                if (j < i)
                        first[refs[i].index] = refs[j].index;
        }

        for (size_t i = 0; i < m->n; i++) {
                const OkgNode *k = m->keys[i];
                bool known = !allowed;

                for (const char *const *a = allowed; !known && *a; a++)
                        known = streq(*a, k->scalar);

                if (!known) {
                        const char *s = suggest_key(k->scalar, allowed);
                        char what[80];

                        quote(k->scalar, what, sizeof(what));
                        if (s)
                                okg_errors_add(e, file, k, path,
                                               "unknown key %s (did you mean \"%s\"?)", what, s);
                        else
                                okg_errors_add(e, file, k, path, "unknown key %s", what);
                        n_errors++;
                } else if (first[i] != SIZE_MAX) {
                        const OkgNode *f = m->keys[first[i]];
                        char what[80];

                        okg_errors_add(e, file, k, path,
                                       "duplicate key %s (first given at line %u)",
                                       quote(k->scalar, what, sizeof(what)), f->line);
                        n_errors++;
                }
        }
        return n_errors;
}

void okg_errors_sort(OkgErrors *e, size_t from) {
        /* Insertion sort: stable, and the lists are short. v[] moves with items[]. */
        for (size_t i = from + 1; i < e->n; i++) {
                OkgError x = e->items[i];
                char *xv = e->v[i];
                size_t j = i;

                for (; j > from; j--) {
                        const OkgError *y = &e->items[j - 1];
                        if (y->line < x.line || (y->line == x.line && y->column <= x.column))
                                break;
                        e->items[j] = *y;
                        e->v[j] = e->v[j - 1];
                }
                e->items[j] = x;
                e->v[j] = xv;
        }
}
