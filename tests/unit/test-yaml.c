/* The YAML tree: positions, scalar styles, what is refused and how it is reported, the typed
 * readers, key checks and the canonical text. Strings only, no files. */
#define _GNU_SOURCE 1

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "okg-test.h"
#include "okg-yaml.h"

static char *mfree_str(char *s) {
        free(s);
        return NULL;
}

static OkgNode *parse_ok(const char *text) {
        OkgNode *n = NULL;
        OkgErrors e = {};

        int r = okg_yaml_parse_string(text, strlen(text), "t.yaml", &n, &e);
        if (r < 0 || e.n > 0) {
                fprintf(stderr, "parse failed (%d):\n", r);
                okg_errors_print(&e, stderr);
                exit(1);
        }
        ASSERT_TRUE(n);
        return n;
}

/* Parses text that must be refused with exactly one message. */
static void parse_bad(const char *text, const char *expected) {
        OkgNode *n = NULL;
        OkgErrors e = {};

        ASSERT_EQ(okg_yaml_parse_string(text, strlen(text), "t.yaml", &n, &e), -EINVAL);
        ASSERT_TRUE(!n);
        if (e.n != 1) {
                fprintf(stderr, "%zu messages for %s\n", e.n, text);
                exit(1);
        }
        ASSERT_ERROR_LINE(e, 0, expected);
        okg_errors_done(&e);
}

static void test_tree_and_positions(void) {
        _cleanup_(okg_node_freep) OkgNode *root = parse_ok("# comment\n"
                                                           "plugins:\n"
                                                           "  - name: hot_update\n"
                                                           "    bootorder: 0\n"
                                                           "    quoted: \"0\"\n"
                                                           "    empty:\n"
                                                           "    tilde: ~\n"
                                                           "    sq: ''\n"
                                                           "    tagged: !!str 5\n"
                                                           "flow: {a: [1, 2], b: x}\n");

        ASSERT_EQ(root->type, OKG_NODE_MAPPING);
        ASSERT_EQ(root->n, 2);
        ASSERT_EQ(root->line, 2);
        ASSERT_EQ(root->column, 1);

        const OkgNode *plugins = okg_node_get(root, "plugins");
        ASSERT_TRUE(plugins);
        ASSERT_EQ(plugins->type, OKG_NODE_SEQUENCE);
        ASSERT_TRUE(!plugins->keys);
        ASSERT_EQ(plugins->n, 1);
        ASSERT_EQ(plugins->line, 3);
        ASSERT_EQ(plugins->column, 3);
        ASSERT_TRUE(okg_node_key_of(root, plugins) == root->keys[0]);
        ASSERT_EQ(root->keys[0]->line, 2);
        ASSERT_EQ(root->keys[0]->column, 1);
        ASSERT_TRUE(!okg_node_key_of(root, root));
        ASSERT_TRUE(!okg_node_key_of(plugins, plugins->values[0]));

        const OkgNode *p = plugins->values[0];
        ASSERT_EQ(p->type, OKG_NODE_MAPPING);
        ASSERT_EQ(p->line, 3);
        ASSERT_EQ(p->column, 5);

        const OkgNode *name = okg_node_get(p, "name");
        ASSERT_STREQ(name->scalar, "hot_update");
        ASSERT_EQ(name->line, 3);
        ASSERT_EQ(name->column, 11);
        ASSERT_TRUE(name->plain);

        const OkgNode *bo = okg_node_get(p, "bootorder");
        ASSERT_STREQ(bo->scalar, "0");
        ASSERT_TRUE(bo->plain);
        ASSERT_TRUE(!okg_node_get(p, "quoted")->plain);
        ASSERT_TRUE(!okg_node_get(p, "tagged")->plain);
        ASSERT_STREQ(okg_node_get(p, "tagged")->scalar, "5");

        /* null: absent, empty, ~; but not a quoted empty string */
        ASSERT_TRUE(okg_node_is_null(NULL));
        ASSERT_TRUE(okg_node_is_null(okg_node_get(p, "empty")));
        ASSERT_STREQ(okg_node_get(p, "empty")->scalar, "");
        ASSERT_TRUE(okg_node_is_null(okg_node_get(p, "tilde")));
        ASSERT_TRUE(!okg_node_is_null(okg_node_get(p, "sq")));
        ASSERT_TRUE(!okg_node_is_null(bo));
        ASSERT_TRUE(!okg_node_is_null(p));

        ASSERT_TRUE(!okg_node_get(p, "missing"));
        ASSERT_TRUE(!okg_node_get(plugins, "name"));
        ASSERT_TRUE(!okg_node_get(NULL, "name"));

        const OkgNode *flow = okg_node_get(root, "flow");
        ASSERT_EQ(flow->line, 10);
        ASSERT_EQ(flow->column, 7);
        ASSERT_EQ(okg_node_get(flow, "a")->n, 2);
        ASSERT_EQ(okg_node_get(flow, "a")->values[1]->column, 15);
}

static void test_empty_documents(void) {
        static const char *const empties[] = { "", "# only a comment\n", "---\n", "~\n",
                                               "---\n...\n" };

        for (size_t i = 0; i < ELEMENTSOF(empties); i++) {
                _cleanup_(okg_node_freep) OkgNode *n = parse_ok(empties[i]);
                ASSERT_EQ(n->type, OKG_NODE_MAPPING);
                ASSERT_EQ(n->n, 0);
                ASSERT_TRUE(n->line >= 1);
        }

        /* A scalar document stays a scalar; the config loader complains about it. */
        _cleanup_(okg_node_freep) OkgNode *s = parse_ok("hello\n");
        ASSERT_EQ(s->type, OKG_NODE_SCALAR);
        ASSERT_STREQ(s->scalar, "hello");

        /* ret may be NULL: a syntax check only. */
        ASSERT_EQ(okg_yaml_parse_string("a: 1\n", 5, "t", NULL, NULL), 0);
        ASSERT_EQ(okg_yaml_parse_string("a: [\n", 5, "t", NULL, NULL), -EINVAL);
}

static void test_refused(void) {
        parse_bad("a: &x 1\nb: 2\n", "t.yaml:1:4: YAML anchors (&x) are not supported");
        parse_bad("a: 1\nb: *x\n", "t.yaml:2:4: YAML aliases (*x) are not supported");
        parse_bad("a: 1\n---\nb: 2\n",
                  "t.yaml:2:1: more than one YAML document; the config must be a single "
                  "document");
        parse_bad("? [a, b]\n: c\n", "t.yaml:1:3: invalid YAML: mapping keys must be scalars");
        parse_bad("a: \"x\\0y\"\n", "t.yaml:1:4: invalid YAML: NUL characters are not supported");
        parse_bad("a:\n\t- b\n",
                  "t.yaml:2:1: invalid YAML: found character that cannot start any token (a "
                  "tab; YAML indents with spaces only)");
        parse_bad("a: [1, 2\nb: 3\n",
                  "t.yaml:2:2: invalid YAML: did not find expected ',' or ']' (while parsing a "
                  "flow sequence at line 1, column 4)");
        parse_bad("a: b\n  c: d\n",
                  "t.yaml:2:4: invalid YAML: mapping values are not allowed in this context");
        parse_bad("a: 1\nb: \xff\n", "t.yaml:2:4: invalid YAML: invalid leading UTF-8 octet (#FF)");

        /* Nesting is bounded so the recursive walkers cannot run out of stack. */
        size_t depth = 200;
        char *deep = malloc(2 * depth + 1);
        ASSERT_TRUE(deep);
        memset(deep, '[', depth);
        memset(deep + depth, ']', depth);
        deep[2 * depth] = 0;
        parse_bad(deep, "t.yaml:1:129: invalid YAML: nesting deeper than 128 levels");
        free(deep);
}

static void test_errors_format(void) {
        _cleanup_(okg_node_freep) OkgNode *n = parse_ok("x: 1\n");
        OkgErrors e = {};

        okg_errors_add(&e, "f.yaml", n->values[0], "a.b[1].c", "bad %s", "thing");
        okg_errors_add(&e, "f.yaml", n->values[0], NULL, "no key");
        okg_errors_add(&e, "f.yaml", n->values[0], "", "empty key");
        okg_errors_add(&e, "f.yaml", NULL, "k", "no position");
        okg_errors_add(&e, "f.yaml", NULL, NULL, "cannot read: %s", "x");
        okg_errors_add_at(&e, "f.yaml", 7, 9, "k", "at %d", 1);
        okg_errors_add_at(&e, "f.yaml", 0, 9, NULL, "line 0");
        okg_errors_add(NULL, "f.yaml", NULL, NULL, "dropped");

        ASSERT_ERROR_LINES(e, "f.yaml:1:4: a.b[1].c: bad thing",
                           "f.yaml:1:4: no key",
                           "f.yaml:1:4: empty key",
                           "f.yaml: k: no position",
                           "f.yaml: cannot read: x",
                           "f.yaml:7:9: k: at 1",
                           "f.yaml: line 0");
        okg_errors_done(&e);
        ASSERT_EQ(e.n, 0);
        ASSERT_TRUE(!e.items);
        okg_errors_done(&e);
        okg_errors_done(NULL);
}

static void test_paths(void) {
        _cleanup_(freep) char *a = okg_path_key("plugins[1].config", "signal");
        _cleanup_(freep) char *b = okg_path_key(NULL, "plugins");
        _cleanup_(freep) char *c = okg_path_key("", "plugins");
        _cleanup_(freep) char *d = okg_path_index("plugins", 12);
        _cleanup_(freep) char *f = okg_path_index("", 0);

        ASSERT_STREQ(a, "plugins[1].config.signal");
        ASSERT_STREQ(b, "plugins");
        ASSERT_STREQ(c, "plugins");
        ASSERT_STREQ(d, "plugins[12]");
        ASSERT_STREQ(f, "[0]");
}

static void test_readers(void) {
        _cleanup_(okg_node_freep) OkgNode *m = parse_ok("s: hello world\n"
                                                        "q: '42'\n"
                                                        "i: 42\n"
                                                        "neg: -7\n"
                                                        "big: 99999999999999999999999\n"
                                                        "f: 1.5\n"
                                                        "hex: 0x10\n"
                                                        "map: {a: 1}\n"
                                                        "seq: [1]\n"
                                                        "nul:\n"
                                                        "t: true\n"
                                                        "no: no\n"
                                                        "long: " "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz\n");
        OkgErrors e = {};
        char *s = NULL;
        long long v = 0;
        bool b = false;

        ASSERT_EQ(okg_node_get_string(okg_node_get(m, "s"), "f", "s", &e, &s), 0);
        ASSERT_STREQ(s, "hello world");
        s = mfree_str(s);
        ASSERT_EQ(okg_node_get_string(okg_node_get(m, "i"), "f", "i", &e, &s), 0);
        ASSERT_STREQ(s, "42");
        s = mfree_str(s);
        ASSERT_EQ(okg_node_get_string(okg_node_get(m, "absent"), "f", "x", &e, &s), -ENOENT);
        ASSERT_EQ(e.n, 0);
        ASSERT_EQ(okg_node_get_string(okg_node_get(m, "map"), "f", "map", &e, &s), -EINVAL);
        ASSERT_EQ(okg_node_get_string(okg_node_get(m, "seq"), "f", "seq", &e, &s), -EINVAL);
        ASSERT_EQ(okg_node_get_string(okg_node_get(m, "nul"), "f", "nul", &e, &s), -EINVAL);
        ASSERT_TRUE(!s);

        ASSERT_EQ(okg_node_get_int(okg_node_get(m, "i"), "f", "i", 0, 100, &e, &v), 0);
        ASSERT_EQ(v, 42);
        ASSERT_EQ(okg_node_get_int(okg_node_get(m, "neg"), "f", "neg", LLONG_MIN, LLONG_MAX, &e,
                                   &v),
                  0);
        ASSERT_EQ(v, -7);
        v = 1234;
        ASSERT_EQ(okg_node_get_int(okg_node_get(m, "i"), "f", "i", 0, 41, &e, &v), -EINVAL);
        ASSERT_EQ(okg_node_get_int(okg_node_get(m, "neg"), "f", "neg", 0, LLONG_MAX, &e, &v),
                  -EINVAL);
        ASSERT_EQ(okg_node_get_int(okg_node_get(m, "neg"), "f", "neg", 1, LLONG_MAX, &e, &v),
                  -EINVAL);
        ASSERT_EQ(okg_node_get_int(okg_node_get(m, "big"), "f", "big", 0, 65535, &e, &v),
                  -EINVAL);
        ASSERT_EQ(okg_node_get_int(okg_node_get(m, "q"), "f", "q", 0, 100, &e, &v), -EINVAL);
        ASSERT_EQ(okg_node_get_int(okg_node_get(m, "f"), "f", "f", 0, 100, &e, &v), -EINVAL);
        ASSERT_EQ(okg_node_get_int(okg_node_get(m, "hex"), "f", "hex", 0, 100, &e, &v), -EINVAL);
        ASSERT_EQ(okg_node_get_int(okg_node_get(m, "map"), "f", "map", 0, 100, &e, &v), -EINVAL);
        ASSERT_EQ(okg_node_get_int(okg_node_get(m, "nul"), "f", "nul", 0, 100, &e, &v), -EINVAL);
        ASSERT_EQ(v, 1234); /* untouched on failure */

        ASSERT_EQ(okg_node_get_bool(okg_node_get(m, "t"), "f", "t", &e, &b), 0);
        ASSERT_TRUE(b);
        ASSERT_EQ(okg_node_get_bool(okg_node_get(m, "no"), "f", "no", &e, &b), -EINVAL);
        ASSERT_EQ(okg_node_get_bool(okg_node_get(m, "q"), "f", "q", &e, &b), -EINVAL);
        ASSERT_EQ(okg_node_get_string(okg_node_get(m, "long"), "f", "long", &e, &s), 0);
        s = mfree_str(s);
        ASSERT_EQ(okg_node_get_int(okg_node_get(m, "long"), "f", "long", 0, 1, &e, &v), -EINVAL);

        static const char *const expected[] = {
                "f:8:6: map: expected a string, got a mapping",
                "f:9:6: seq: expected a string, got a sequence",
                "f:10:5: nul: expected a string, got null",
                "f:3:4: i: must be between 0 and 41, got 42",
                "f:4:6: neg: must not be negative, got -7",
                "f:4:6: neg: must be at least 1, got -7",
                "f:5:6: big: must be between 0 and 65535, got 99999999999999999999999",
                "f:2:4: q: expected an integer, got the quoted string \"42\"",
                "f:6:4: f: expected an integer, got \"1.5\"",
                "f:7:6: hex: expected an integer, got \"0x10\"",
                "f:8:6: map: expected an integer, got a mapping",
                "f:10:5: nul: expected an integer, got null",
                "f:12:5: no: expected true or false, got \"no\"",
                "f:2:4: q: expected true or false, got \"42\"",
                ("f:13:7: long: expected an integer, got "
                 "\"abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcde...\""),
        };
        ASSERT_EQ(e.n, ELEMENTSOF(expected));
        for (size_t i = 0; i < e.n; i++)
                ASSERT_ERROR_LINE(e, i, expected[i]);
        okg_errors_done(&e);
}

static void test_describe(void) {
        _cleanup_(okg_node_freep) OkgNode *m = parse_ok("a: \"q\\\"uo\\\\te\\nnl\"\n");
        char buf[64];

        ASSERT_STREQ(okg_node_describe(okg_node_get(m, "a"), buf, sizeof(buf)),
                     "\"q\\\"uo\\\\te\\nnl\"");
        ASSERT_STREQ(okg_node_describe(NULL, buf, sizeof(buf)), "null");
        ASSERT_STREQ(okg_node_describe(m, buf, sizeof(buf)), "a mapping");
}

static void test_check_keys(void) {
        _cleanup_(okg_node_freep) OkgNode *m = parse_ok("name: x\n"
                                                        "bootordr: 1\n"
                                                        "config: {}\n"
                                                        "name: y\n"
                                                        "zzz: 1\n"
                                                        "Name: z\n"
                                                        "bootordr: 2\n");
        static const char *const allowed[] = { "name", "config", "bootorder", "bootOrder", NULL };
        OkgErrors e = {};

        ASSERT_EQ(okg_node_check_keys(m, "f", "plugins[0]", allowed, &e), 5);
        ASSERT_EQ(e.n, 5);
        ASSERT_ERROR_LINE(e, 0,
                "f:2:1: plugins[0]: unknown key \"bootordr\" (did you mean \"bootorder\"?)");
        ASSERT_ERROR_LINE(e, 1,
                "f:4:1: plugins[0]: duplicate key \"name\" (first given at line 1)");
        ASSERT_ERROR_LINE(e, 2, "f:5:1: plugins[0]: unknown key \"zzz\"");
        /* Case differs: unknown (keys are case-sensitive), with the right spelling offered. */
        ASSERT_ERROR_LINE(e, 3,
                "f:6:1: plugins[0]: unknown key \"Name\" (did you mean \"name\"?)");
        /* An unknown key given twice is reported as unknown, each time. */
        ASSERT_ERROR_LINE(e, 4,
                "f:7:1: plugins[0]: unknown key \"bootordr\" (did you mean \"bootorder\"?)");
        okg_errors_done(&e);

        /* Top level: no key path. allowed == NULL: only duplicates. */
        ASSERT_EQ(okg_node_check_keys(m, "f", NULL, NULL, &e), 2);
        ASSERT_ERROR_LINE(e, 0, "f:4:1: duplicate key \"name\" (first given at line 1)");
        ASSERT_ERROR_LINE(e, 1, "f:7:1: duplicate key \"bootordr\" (first given at line 2)");
        okg_errors_done(&e);

        ASSERT_EQ(okg_node_check_keys(okg_node_get(m, "config"), "f", "x", allowed, &e), 0);
        ASSERT_EQ(okg_node_check_keys(NULL, "f", "x", allowed, &e), 0);
        ASSERT_EQ(okg_node_check_keys(okg_node_get(m, "zzz"), "f", "x", allowed, &e), 0);
        ASSERT_EQ(e.n, 0);

        /* Many keys: the sort-based duplicate check finds the one duplicate. */
        size_t n = 5000, len = 0;
        char *big = malloc(n * 16 + 32);
        ASSERT_TRUE(big);
        for (size_t i = 0; i < n; i++)
                len += (size_t) sprintf(big + len, "k%zu: %zu\n", i, i);
        len += (size_t) sprintf(big + len, "k17: again\n");
        OkgNode *bm = NULL;
        ASSERT_EQ(okg_yaml_parse_string(big, len, "big", &bm, &e), 0);
        ASSERT_EQ(okg_node_check_keys(bm, "big", "m", NULL, &e), 1);
        ASSERT_ERROR_LINE(e, 0, "big:5001:1: m: duplicate key \"k17\" (first given at line 18)");
        okg_errors_done(&e);
        okg_node_free(bm);
        free(big);
}

static void test_get_either(void) {
        _cleanup_(okg_node_freep) OkgNode *m = parse_ok("bootOrder: 2\n"
                                                        "restartpolicy: Never\n"
                                                        "restartPolicy: Always\n");
        OkgErrors e = {};
        OkgNode *v = NULL;
        const char *k = NULL;

        ASSERT_EQ(okg_node_get_either(m, "bootorder", "bootOrder", "f", "p", &e, &v, &k), 1);
        ASSERT_STREQ(k, "bootOrder");
        ASSERT_STREQ(v->scalar, "2");
        ASSERT_EQ(okg_node_get_either(m, "x", "X", "f", "p", &e, &v, &k), 0);
        ASSERT_TRUE(!v);
        ASSERT_TRUE(!k);
        ASSERT_EQ(e.n, 0);
        ASSERT_EQ(okg_node_get_either(m, "restartPolicy", "restartpolicy", "f", "p", &e, &v, &k),
                  -EINVAL);
        ASSERT_EQ(e.n, 1);
        /* Placed at whichever comes second in the file. */
        ASSERT_ERROR_LINE(e, 0, "f:3:1: p: both \"restartPolicy\" and \"restartpolicy\" given");
        okg_errors_done(&e);
}

static void test_canonical(void) {
        _cleanup_(okg_node_freep) OkgNode *a = parse_ok("# one\n"
                                                        "b: 1\n"
                                                        "a: [x, \"y z\", {c: ~}]\n"
                                                        "e: ''\n"
                                                        "s: \"tab\\there \\\"q\\\" \\\\ \\u0001\"\n");
        _cleanup_(okg_node_freep) OkgNode *b = parse_ok("b:   1   # two\n"
                                                        "a:\n"
                                                        "  - x\n"
                                                        "  - 'y z'\n"
                                                        "  - c:\n"
                                                        "e: \"\"\n"
                                                        "s: \"tab\\there \\\"q\\\" \\\\ \\x01\"\n");
        _cleanup_(okg_node_freep) OkgNode *c = parse_ok("a: [x, \"y z\", {c: ~}]\n"
                                                        "b: 1\n");
        _cleanup_(freep) char *ca = okg_node_canonical(a);
        _cleanup_(freep) char *cb = okg_node_canonical(b);
        _cleanup_(freep) char *cc = okg_node_canonical(c);
        _cleanup_(freep) char *cn = okg_node_canonical(NULL);

        ASSERT_STREQ(ca, "{\"b\":\"1\",\"a\":[\"x\",\"y z\",{\"c\":null}],\"e\":\"\","
                         "\"s\":\"tab\\there \\\"q\\\" \\\\ \\u0001\"}");
        /* Layout, quoting style and comments do not matter... */
        ASSERT_STREQ(ca, cb);
        /* ...key order does: it is the document as written. */
        ASSERT_TRUE(!streq(ca, cc));
        ASSERT_STREQ(cn, "null");
}

int main(void) {
        test_tree_and_positions();
        test_empty_documents();
        test_refused();
        test_errors_format();
        test_paths();
        test_readers();
        test_describe();
        test_check_keys();
        test_get_either();
        test_canonical();
        return 0;
}
