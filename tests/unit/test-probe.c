/* okg-probed's pure logic: status check, body -> state (trim, cap, UTF-8, JSON path), the
 * threshold state machine, policy matching, precedence between endpoints, the edge trigger,
 * the probe schedule's jitter and the metrics text. */
#define _GNU_SOURCE 1

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"
#include "okg-test.h"
#include "probed-config.h"
#include "probed-metrics.h"
#include "probed-result.h"
#include "probed-state.h"

static void test_status(void) {
        ASSERT_TRUE(probe_status_ok(200, 0));
        ASSERT_TRUE(probe_status_ok(204, 0));
        ASSERT_TRUE(probe_status_ok(302, 0));
        ASSERT_TRUE(probe_status_ok(399, 0));
        ASSERT_TRUE(!probe_status_ok(199, 0));
        ASSERT_TRUE(!probe_status_ok(400, 0));
        ASSERT_TRUE(!probe_status_ok(503, 0));
        ASSERT_TRUE(!probe_status_ok(0, 0));
        /* expectedStatusCode is exact, also outside 200-399 */
        ASSERT_TRUE(probe_status_ok(200, 200));
        ASSERT_TRUE(!probe_status_ok(204, 200));
        ASSERT_TRUE(probe_status_ok(418, 418));
        ASSERT_TRUE(!probe_status_ok(200, 418));

        ASSERT_STREQ(probe_outcome_to_string(PROBE_OUTCOME_NONE), "none");
        ASSERT_STREQ(probe_outcome_to_string(PROBE_OUTCOME_SUCCESS), "success");
        ASSERT_STREQ(probe_outcome_to_string(PROBE_OUTCOME_TIMEOUT), "timeout");
        ASSERT_STREQ(probe_outcome_to_string(PROBE_OUTCOME_CONNECT_ERROR), "connect-error");
        ASSERT_STREQ(probe_outcome_to_string(PROBE_OUTCOME_HTTP_ERROR), "http-error");
        ASSERT_STREQ(probe_outcome_to_string(PROBE_OUTCOME_BAD_STATUS), "bad-status");
        ASSERT_STREQ(probe_outcome_to_string(PROBE_OUTCOME_BAD_BODY), "bad-body");
        ASSERT_TRUE(!probe_outcome_to_string(_PROBE_OUTCOME_MAX));
        ASSERT_TRUE(!probe_outcome_is_failure(PROBE_OUTCOME_NONE));
        ASSERT_TRUE(!probe_outcome_is_failure(PROBE_OUTCOME_SUCCESS));
        ASSERT_TRUE(probe_outcome_is_failure(PROBE_OUTCOME_TIMEOUT));
        ASSERT_TRUE(probe_outcome_is_failure(PROBE_OUTCOME_BAD_BODY));
}

/* The state a body gives, or NULL with err filled; r gets the return value. */
static char *state_of(const char *body, size_t len, const char *path, int *r, char *err,
                      size_t err_size) {
        char *s = NULL;
        *r = probe_body_state(body, len, path, &s, err, err_size);
        if (*r < 0)
                ASSERT_TRUE(!s);
        return s;
}

static void expect_state(const char *body, const char *path, const char *expected) {
        char err[256];
        int r;
        _cleanup_(freep) char *s = state_of(body, strlen(body), path, &r, err, sizeof err);
        if (r < 0)
                fprintf(stderr, "body %s path %s: %d %s\n", body, path ?: "-", r, err);
        ASSERT_EQ(r, 0);
        ASSERT_STREQ(s, expected);
}

static void expect_error(const char *body, size_t len, const char *path, int error,
                         const char *message) {
        char err[256];
        int r;
        _cleanup_(freep) char *s = state_of(body, len, path, &r, err, sizeof err);
        (void) s; /* only the error is checked here */
        ASSERT_EQ(r, error);
        ASSERT_STREQ(err, message);
}

static void test_body_state(void) {
        size_t n;
        const char *t;

        t = probe_body_trim(" \t\r\n Allocated \r\n\v\f", 19, &n);
        ASSERT_EQ(n, 9);
        ASSERT_TRUE(strncmp(t, "Allocated", 9) == 0);
        (void) probe_body_trim("   ", 3, &n);
        ASSERT_EQ(n, 0);
        (void) probe_body_trim("", 0, &n);
        ASSERT_EQ(n, 0);

        expect_state("None", NULL, "None");
        expect_state("  WaitToBeDeleted\n", NULL, "WaitToBeDeleted");
        expect_state("\r\n", NULL, "");
        expect_state("", NULL, "");
        /* Inner whitespace stays: only the ends are trimmed. */
        expect_state(" two words \n", NULL, "two words");
        expect_state("état", NULL, "état");
        {
                /* No body at all (HEAD) reads as the empty state. */
                char *s = NULL;
                ASSERT_EQ(probe_body_state(NULL, 0, NULL, &s, NULL, 0), 0);
                ASSERT_STREQ(s, "");
                free(s);
        }

        expect_error("Allo\0cated", 10, NULL, -EBADMSG, "the body contains a NUL byte");
        expect_error("Allo\xff", 5, NULL, -EBADMSG, "the body is not valid UTF-8");
        /* Control characters inside a state: CR/LF, an escape sequence, a tab, DEL, C1. The
         * offset is in the body as received. */
        expect_error("Allocated\r\nX: 1", 14, NULL, -EBADMSG,
                     "the body contains a control character (U+000D at offset 9); a state is one "
                     "line of printable text");
        expect_error("\n\x1b[2JNone", 9, NULL, -EBADMSG,
                     "the body contains a control character (U+001B at offset 1); a state is one "
                     "line of printable text");
        expect_error("a\tb", 3, NULL, -EBADMSG,
                     "the body contains a control character (U+0009 at offset 1); a state is one "
                     "line of printable text");
        expect_error("a\x7f", 2, NULL, -EBADMSG,
                     "the body contains a control character (U+007F at offset 1); a state is one "
                     "line of printable text");
        expect_error("a\xc2\x9b" "1m", 5, NULL, -EBADMSG,
                     "the body contains a control character (U+009B at offset 1); a state is one "
                     "line of printable text");
        expect_state("caf\xc3\xa9 \xc2\xa0x", NULL, "caf\xc3\xa9 \xc2\xa0x");   /* U+00A0 is no control */
        /* Invisible characters that change how a state reads (line separators, bidi controls,
         * zero-width and format characters) are refused the same way, named. */
        static const struct {
                const char *body, *path, *message;
        } invisible[] = {
                { "Allo\xe2\x80\xa8" "cated", NULL,
                  "the body contains a line separator (U+2028 at offset 4)" },
                { " \xe2\x80\xae" "detacollA", NULL,
                  "the body contains a bidirectional control (U+202E at offset 1)" },
                { "Ready\xe2\x80\xa9", NULL,
                  "the body contains a paragraph separator (U+2029 at offset 5)" },
                { "\xef\xbb\xbf" "None", NULL,
                  "the body contains an invisible format character (U+FEFF at offset 0)" },
                { "{\"s\":\"Re\\u200bady\"}", "s",
                  "field \"s\" of the JSON body contains an invisible format character (U+200B)" },
                { "{\"s\":\"a\\u2067b\"}", "s",
                  "field \"s\" of the JSON body contains a bidirectional control (U+2067)" },
        };
        for (size_t i = 0; i < ELEMENTSOF(invisible); i++) {
                char message[256];
                snprintf(message, sizeof message, "%s; a state is one line of printable text",
                         invisible[i].message);
                expect_error(invisible[i].body, strlen(invisible[i].body), invisible[i].path,
                             -EBADMSG, message);
        }
        expect_state("\xe2\x82\xac \xe2\x80\x94 \xf0\x9f\x8e\xae", NULL,
                     "\xe2\x82\xac \xe2\x80\x94 \xf0\x9f\x8e\xae");   /* euro, em dash, emoji */

        /* JSON */
        expect_state("{\"state\":\"Allocated\"}", "state", "Allocated");
        expect_state(" {\"status\": {\"state\": \"None\", \"players\": 0}}\n", "status.state",
                     "None");
        expect_state("{\"a\":{\"b\":{\"c\":\" x \"}}}", "a.b.c", " x ");
        expect_state("{\"servers\":[{\"s\":\"A\"},{\"s\":\"B\"}]}", "servers.1.s", "B");
        expect_state("{\"n\": 3}", "n", "3");
        expect_state("{\"ok\": true}", "ok", "true");
        expect_state("{\"ok\": false}", "ok", "false");
        expect_state("{\"x\": 1.5}", "x", "1.5");
        expect_state("{\"1\": \"numeric key\"}", "1", "numeric key");
        expect_state("{\"e\": \"\"}", "e", "");

        expect_error("Allocated", 9, "state", -EBADMSG,
                     "the body is not JSON: unexpected character at offset 0");
        expect_error("", 0, "state", -EBADMSG, "the body is empty, expected JSON");
        expect_error("{\"state\":", 9, "state", -EBADMSG,
                     "the body is not JSON: unexpected end of data at offset 9");
        expect_error("{\"a\":1} x", 9, "a", -EBADMSG,
                     "the body is not JSON: unexpected character at offset 8");
        expect_error("{\"state\":\"A\"}", 13, "status", -ENOENT,
                     "no field \"status\" in the JSON body");
        expect_error("{\"a\":{\"b\":1}}", 13, "a.c", -ENOENT, "no field \"a.c\" in the JSON body");
        expect_error("{\"a\":\"s\"}", 9, "a.b", -ENOENT, "no field \"a.b\" in the JSON body");
        expect_error("[1,2]", 5, "5", -ENOENT, "no field \"5\" in the JSON body");
        expect_error("[1,2]", 5, "x", -ENOENT, "no field \"x\" in the JSON body");
        expect_error("null", 4, "a", -ENOENT, "no field \"a\" in the JSON body");
        expect_error("{\"a\":null}", 10, "a", -EMEDIUMTYPE,
                     "field \"a\" of the JSON body is null, expected a string, number or boolean");
        expect_error("{\"a\":{}}", 8, "a", -EMEDIUMTYPE,
                     "field \"a\" of the JSON body is an object, expected a string, number or "
                     "boolean");
        expect_error("{\"a\":[]}", 8, "a", -EMEDIUMTYPE,
                     "field \"a\" of the JSON body is an array, expected a string, number or "
                     "boolean");
        expect_error("{\"a\":\"x\\u0000y\"}", 16, "a", -EBADMSG,
                     "field \"a\" of the JSON body contains a NUL character");
        expect_error("{\"a\":\"x\\r\\ny\"}", 14, "a", -EBADMSG,
                     "field \"a\" of the JSON body contains a control character (U+000D); a "
                     "state is one line of printable text");
        expect_error("{\"a\":\"\\u001b[2J\"}", 17, "a", -EBADMSG,
                     "field \"a\" of the JSON body contains a control character (U+001B); a "
                     "state is one line of printable text");

        /* A body cut at the cap in the middle of a JSON document is not JSON. */
        {
                char big[PROBE_BODY_MAX];
                memset(big, ' ', sizeof big);
                /* Bytes, not strings: no terminator is copied on purpose. */
                static const char head[8] = "{\"pad\":\"", tail[2] = "xx";
                memcpy(big, head, sizeof head);
                memcpy(big + sizeof big - sizeof tail, tail, sizeof tail);
                expect_error(big, sizeof big, "state", -EBADMSG,
                             "the body is not JSON: unexpected end of data at offset 10241");
        }
}

static void expect_redirect(const char *from, long status, const char *location,
                            unsigned redirects, const char *next) {
        char err[256];
        char *s = NULL;
        int r = probe_redirect_next(from, status, location, redirects, &s, err, sizeof err);
        if (r < 0)
                fprintf(stderr, "%s -> %s: %d %s\n", from, location ?: "-", r, err);
        ASSERT_EQ(r, 0);
        ASSERT_STREQ(s, next);
        free(s);
}

static void expect_no_redirect(const char *from, long status, const char *location,
                               unsigned redirects, int error, const char *message) {
        char err[256];
        char *s = NULL;
        ASSERT_EQ(probe_redirect_next(from, status, location, redirects, &s, err, sizeof err),
                  error);
        ASSERT_TRUE(!s);
        ASSERT_STREQ(err, message);
}

static void test_redirects(void) {
        /* Same host name: followed, also to another port or to https (as kubelet does). */
        expect_redirect("http://127.0.0.1:8080/state", 301, "http://127.0.0.1:8080/state/", 0,
                        "http://127.0.0.1:8080/state/");
        expect_redirect("http://game:8080/a", 302, "/b?x=1", 3, "http://game:8080/b?x=1");
        expect_redirect("http://game:8080/a/b", 307, "c", 0, "http://game:8080/a/c");
        expect_redirect("http://Game:8080/", 308, "https://game:8443/", 9, "https://game:8443/");
        expect_redirect("http://[::1]:8080/", 302, "http://[::1]:9090/x", 0, "http://[::1]:9090/x");

        expect_no_redirect("http://game/", 300, NULL, 0, -ENOENT,
                           "HTTP status 300: a redirect without a Location to follow");
        expect_no_redirect("http://game/", 304, "", 0, -ENOENT,
                           "HTTP status 304: a redirect without a Location to follow");
        expect_no_redirect("http://game/", 302, "/again", PROBE_MAX_REDIRECTS, -EMLINK,
                           "more than 10 redirects");
        /* Another host: not followed, and the message shows no credentials, query or
         * fragment of where it pointed. */
        expect_no_redirect("http://127.0.0.1:8080/state", 302,
                           "https://u:secret@login.example.com/sso?token=t0k#f", 0, -EREMOTE,
                           "HTTP status 302: a redirect to another host "
                           "(https://login.example.com/sso) is not followed");
        expect_no_redirect("http://127.0.0.1/", 301, "http://127.0.0.2/", 0, -EREMOTE,
                           "HTTP status 301: a redirect to another host (http://127.0.0.2/) is "
                           "not followed");
        expect_no_redirect("http://game/", 302, "http://u:p@game/state", 0, -EPROTONOSUPPORT,
                           "HTTP status 302: a redirect to a URL with credentials is not "
                           "followed");
        expect_no_redirect("http://game/", 302, "http://u@game/state", 0, -EPROTONOSUPPORT,
                           "HTTP status 302: a redirect to a URL with credentials is not "
                           "followed");
        expect_no_redirect("http://game/", 302, "ftp://game/state", 0, -EPROTONOSUPPORT,
                           "HTTP status 302: a redirect to a ftp URL, only http and https are "
                           "followed");

        ASSERT_TRUE(probe_redirect_keeps_method(301, "GET"));
        ASSERT_TRUE(probe_redirect_keeps_method(303, "HEAD"));
        ASSERT_TRUE(!probe_redirect_keeps_method(301, "POST"));
        ASSERT_TRUE(!probe_redirect_keeps_method(303, "PUT"));
        ASSERT_TRUE(probe_redirect_keeps_method(307, "POST"));
        ASSERT_TRUE(probe_redirect_keeps_method(308, "DELETE"));
        ASSERT_TRUE(probe_status_is_redirect(300) && probe_status_is_redirect(399));
        ASSERT_TRUE(!probe_status_is_redirect(200) && !probe_status_is_redirect(400));
}

/* Logs `state "STATE"` and checks the entry is the one line expected (its tail). */
static void expect_log_entry(const char *state, const char *expected_tail) {
        FILE *f = tmpfile();
        char line[256] = "";
        int saved = dup(STDERR_FILENO);

        ASSERT_TRUE(f && saved >= 0);
        fflush(stderr);
        ASSERT_TRUE(dup2(fileno(f), STDERR_FILENO) >= 0);
        log_set_target(LOG_TARGET_CONSOLE);
        log_set_max_level(LOG_INFO);
        log_info("state \"%s\"", state);
        fflush(stderr);
        ASSERT_TRUE(dup2(saved, STDERR_FILENO) >= 0);
        close(saved);
        rewind(f);
        ASSERT_TRUE(fgets(line, sizeof line, f));
        ASSERT_TRUE(strstr(line, expected_tail));
        ASSERT_TRUE(!fgets(line, sizeof line, f));   /* nothing on a second line */
        fclose(f);
}

static void test_escape(void) {
        char buf[64];
        uint32_t cp = 0;

        ASSERT_STREQ(okg_escape_controls("Allocated\r\nX: 1", buf, sizeof buf),
                     "Allocated\\r\\nX: 1");
        ASSERT_STREQ(okg_escape_controls("\x1b[2J\ta\x7f\xc2\x9b\xc3\xa9\\", buf, sizeof buf),
                     "\\x1b[2J\\ta\\x7f\\u009b\xc3\xa9\\");
        ASSERT_STREQ(okg_escape_controls(NULL, buf, sizeof buf), "");
        /* Truncation keeps whole escapes. */
        ASSERT_STREQ(okg_escape_controls("ab\ncd", buf, 4), "ab");
        ASSERT_STREQ(okg_escape_controls("ab\ncd", buf, 5), "ab\\n");

        /* Every log entry is one line, whatever its arguments carry. */
        expect_log_entry("Allocated\r\nokg-probed[1]: forged\x1b[2J",
                         "state \"Allocated\\r\\nokg-probed[1]: forged\\x1b[2J\"\n");

        ASSERT_EQ(okg_find_control("None", 4, &cp), -1);
        ASSERT_EQ(okg_find_control("No\x1bne", 5, &cp), 2);
        ASSERT_EQ(cp, 0x1b);
        ASSERT_EQ(okg_find_control("\xc2\xa0\xc2\x85", 4, &cp), 2);
        ASSERT_EQ(cp, 0x85);
}

/* Invisible characters that change how text reads: line and paragraph separators, bidi
 * controls, zero-width and other format characters. Found, named and escaped like C0/C1. */
static void test_invisible(void) {
        char buf[128];
        uint32_t cp = 0;

        /* The tryout's two states: U+2028 inside, U+202E first. */
        ASSERT_EQ(okg_find_control("Allo\xe2\x80\xa8" "cated", 12, &cp), 4);
        ASSERT_EQ(cp, 0x2028);
        ASSERT_EQ(okg_find_control("\xe2\x80\xae" "detacollA", 12, &cp), 0);
        ASSERT_EQ(cp, 0x202E);
        static const struct {
                const char *utf8;
                uint32_t cp;
        } found[] = {
                { "\xe2\x80\xa9", 0x2029 },      /* paragraph separator */
                { "\xe2\x80\x8e", 0x200E },      /* LRM */
                { "\xe2\x80\x8f", 0x200F },      /* RLM */
                { "\xe2\x80\xaa", 0x202A },      /* LRE */
                { "\xe2\x81\xa6", 0x2066 },      /* LRI */
                { "\xe2\x81\xa9", 0x2069 },      /* PDI */
                { "\xd8\x9c", 0x061C },           /* Arabic letter mark */
                { "\xe2\x80\x8b", 0x200B },      /* zero width space */
                { "\xe2\x80\x8d", 0x200D },      /* zero width joiner */
                { "\xe2\x81\xa0", 0x2060 },      /* word joiner */
                { "\xe2\x81\xa4", 0x2064 },      /* invisible plus */
                { "\xef\xbb\xbf", 0xFEFF },      /* BOM */
                { "\xc2\xad", 0x00AD },           /* soft hyphen */
                { "\xf3\xa0\x81\x81", 0xE0041 }, /* tag latin capital A */
        };
        for (size_t i = 0; i < ELEMENTSOF(found); i++) {
                char s[16];
                snprintf(s, sizeof s, "Ok%sX", found[i].utf8);
                cp = 0;
                ASSERT_EQ(okg_find_control(s, strlen(s), &cp), 2);
                ASSERT_EQ(cp, found[i].cp);
        }
        /* Visible neighbours, and sequences cut or malformed, are no such characters. */
        ASSERT_EQ(okg_find_control("\xe2\x80\x90\xe2\x80\xa7\xe2\x80\xaf\xe2\x81\xb0", 12, &cp),
                  -1);                                   /* hyphen, U+2027, U+202F, U+2070 */
        ASSERT_EQ(okg_find_control("\xc3\xa9\xe2\x82\xac\xf0\x9f\x8e\xae", 9, &cp), -1);
        ASSERT_EQ(okg_find_control("\xe2\x80", 2, &cp), -1);
        ASSERT_EQ(okg_find_control("\xe0\x80\xa8", 3, &cp), -1);   /* overlong, not U+0028 */
        ASSERT_EQ(okg_find_control("\xe2\x80\xa8", 2, &cp), -1);   /* len cuts it */

        ASSERT_STREQ(okg_control_kind(0x0d), "control character");
        ASSERT_STREQ(okg_control_kind(0x9b), "control character");
        ASSERT_STREQ(okg_control_kind(0x2028), "line separator");
        ASSERT_STREQ(okg_control_kind(0x2029), "paragraph separator");
        ASSERT_STREQ(okg_control_kind(0x202E), "bidirectional control");
        ASSERT_STREQ(okg_control_kind(0x2067), "bidirectional control");
        ASSERT_STREQ(okg_control_kind(0x200B), "invisible format character");
        ASSERT_STREQ(okg_control_kind(0xFEFF), "invisible format character");

        ASSERT_STREQ(okg_escape_controls("Allo\xe2\x80\xa8" "cated \xe2\x80\xae" "x\xef\xbb\xbf",
                                         buf, sizeof buf),
                     "Allo\\u2028cated \\u202ex\\ufeff");
        ASSERT_STREQ(okg_escape_controls("\xf3\xa0\x81\x81\xe2\x82\xac", buf, sizeof buf),
                     "\\U000e0041\xe2\x82\xac");
        /* Truncation keeps whole escapes. */
        ASSERT_STREQ(okg_escape_controls("ab\xe2\x80\xa8", buf, 8), "ab");
        ASSERT_STREQ(okg_escape_controls("ab\xe2\x80\xa8", buf, 9), "ab\\u2028");
        /* Malformed UTF-8 is passed on byte by byte, as before. */
        ASSERT_STREQ(okg_escape_controls("\xe2\x80", buf, sizeof buf), "\xe2\x80");

        /* And in a log entry, as the tryout's state change would have been logged. */
        expect_log_entry("Allo\xe2\x80\xa8" "cated\xe2\x81\xa6",
                         "state \"Allo\\u2028cated\\u2066\"\n");
}

static void test_utf8(void) {
        ASSERT_TRUE(probe_utf8_valid("", 0));
        ASSERT_TRUE(probe_utf8_valid("abc", 3));
        ASSERT_TRUE(probe_utf8_valid("\xc3\xa9", 2));               /* é */
        ASSERT_TRUE(probe_utf8_valid("\xe2\x82\xac", 3));           /* € */
        ASSERT_TRUE(probe_utf8_valid("\xf0\x9f\x8e\xae", 4));       /* 🎮 */
        ASSERT_TRUE(!probe_utf8_valid("\xc3", 1));                  /* cut */
        ASSERT_TRUE(!probe_utf8_valid("\xe2\x82", 2));
        ASSERT_TRUE(!probe_utf8_valid("\xc0\xaf", 2));              /* overlong */
        ASSERT_TRUE(!probe_utf8_valid("\xe0\x80\xaf", 3));          /* overlong */
        ASSERT_TRUE(!probe_utf8_valid("\xed\xa0\x80", 3));          /* surrogate */
        ASSERT_TRUE(!probe_utf8_valid("\xf4\x90\x80\x80", 4));      /* > U+10FFFF */
        ASSERT_TRUE(!probe_utf8_valid("\x80", 1));
        ASSERT_TRUE(!probe_utf8_valid("a\0b", 3));
}

/* ---- thresholds ---- */

typedef struct Step {
        const char *result;    /* a state for a success, NULL for a failure */
        int changed;           /* expected return */
        const char *state;     /* expected applied state afterwards (NULL: none) */
        bool failing;
} Step;

static void run_steps(unsigned st, unsigned ft, const char *failure_state, const Step *steps,
                      size_t n) {
        ProbeTracker t;

        ASSERT_EQ(probe_tracker_init(&t, st, ft, failure_state), 0);
        ASSERT_TRUE(!t.state);
        for (size_t i = 0; i < n; i++) {
                char *old = (char *) "untouched";
                const char *before = t.state ? strdupa(t.state) : NULL;
                int r = steps[i].result ? probe_tracker_success(&t, steps[i].result, &old)
                                        : probe_tracker_failure(&t, &old);
                if (r != steps[i].changed || !streq_ptr(t.state, steps[i].state) ||
                    t.failing != steps[i].failing) {
                        fprintf(stderr, "step %zu (%s): r=%d state=%s failing=%d\n", i,
                                steps[i].result ?: "failure", r, t.state ?: "(none)", t.failing);
                        exit(1);
                }
                if (r > 0) {
                        ASSERT_TRUE(streq_ptr(old, before));
                        free(old);
                } else
                        ASSERT_STREQ(old, "untouched");
        }
        probe_tracker_done(&t);
}

static void test_thresholds(void) {
        /* Defaults (1, 3) without a failure state: a state applies at once; failures change
         * nothing but the failing flag, which the next success clears. */
        static const Step defaults[] = {
                { "None", 1, "None", false },
                { "None", 0, "None", false },
                { "WaitToBeDeleted", 1, "WaitToBeDeleted", false },
                { NULL, 0, "WaitToBeDeleted", false },
                { NULL, 0, "WaitToBeDeleted", false },
                { NULL, 0, "WaitToBeDeleted", true },
                { NULL, 0, "WaitToBeDeleted", true },
                { "WaitToBeDeleted", 0, "WaitToBeDeleted", false },
                { "Allocated", 1, "Allocated", false },
        };
        run_steps(1, 3, NULL, defaults, ELEMENTSOF(defaults));

        /* successThreshold 3: a state needs three successes in a row that agree. */
        static const Step success3[] = {
                { "None", 0, NULL, false },
                { "None", 0, NULL, false },
                { "None", 1, "None", false },
                { "Allocated", 0, "None", false },
                { "Allocated", 0, "None", false },
                { "None", 0, "None", false },       /* flap: the streak starts over */
                { "Allocated", 0, "None", false },
                { "Allocated", 0, "None", false },
                { NULL, 0, "None", false },         /* a failure ends the streak too */
                { "Allocated", 0, "None", false },
                { "Allocated", 0, "None", false },
                { "Allocated", 1, "Allocated", false },
                { "Allocated", 0, "Allocated", false },
        };
        run_steps(3, 3, NULL, success3, ELEMENTSOF(success3));

        /* failureThreshold 2 with a failure state; recovery needs successThreshold (2). */
        static const Step failure2[] = {
                { NULL, 0, NULL, false },
                { NULL, 1, "Unhealthy", true },     /* even before any state */
                { NULL, 0, "Unhealthy", true },
                { "None", 0, "Unhealthy", true },
                { NULL, 0, "Unhealthy", true },     /* count reset; still failing */
                { NULL, 0, "Unhealthy", true },
                { "None", 0, "Unhealthy", true },
                { "None", 1, "None", false },
                { NULL, 0, "None", false },
                { "None", 0, "None", false },       /* the failure ended the streak: 1 of 2 */
                { NULL, 0, "None", false },
                { NULL, 1, "Unhealthy", true },
        };
        run_steps(2, 2, "Unhealthy", failure2, ELEMENTSOF(failure2));

        /* failureThreshold 1: the first failure applies the failure state. */
        static const Step failure1[] = {
                { "Allocated", 1, "Allocated", false },
                { NULL, 1, "Down", true },
                { "Down", 0, "Down", false },       /* the game itself says Down: same state */
                { "Allocated", 1, "Allocated", false },
        };
        run_steps(1, 1, "Down", failure1, ELEMENTSOF(failure1));

        /* Without ret_old the old state is freed by the tracker. */
        ProbeTracker t;
        ASSERT_EQ(probe_tracker_init(&t, 0, 0, NULL), 0);
        ASSERT_EQ(t.success_threshold, 1);
        ASSERT_EQ(t.failure_threshold, 1);
        ASSERT_EQ(probe_tracker_success(&t, "a", NULL), 1);
        ASSERT_EQ(probe_tracker_success(&t, "b", NULL), 1);
        ASSERT_EQ(probe_tracker_failure(&t, NULL), 0);
        ASSERT_EQ(t.failures, 1);
        ASSERT_TRUE(t.failing);
        ASSERT_STREQ(t.state, "b");
        probe_tracker_done(&t);
        probe_tracker_done(&t);   /* idempotent */
}

/* ---- policies, precedence, edge trigger ---- */

static KeyValue kv(const char *k, const char *v) {
        return (KeyValue) { (char *) k, (char *) v };
}

static void test_policies_and_precedence(void) {
        KeyValue l_idle[] = { kv("game.example.com/phase", "idle") };
        KeyValue l_busy[] = { kv("game.example.com/phase", "busy") };
        KeyValue a_busy[] = { kv("game.example.com/note", "players on it") };
        MarkerPolicy game[] = {
                { .state = (char *) "None", .ops_state = (char *) "None", .labels = l_idle,
                  .n_labels = 1 },
                { .state = (char *) "Allocated", .ops_state = (char *) "Allocated",
                  .labels = l_busy, .n_labels = 1, .annotations = a_busy, .n_annotations = 1 },
                { .state = (char *) "WaitToBeDeleted", .ops_state = (char *) "WaitToBeDeleted" },
                { .state = (char *) "LabelOnly", .labels = l_busy, .n_labels = 1 },
        };
        MarkerPolicy health[] = {
                { .state = (char *) "Unhealthy", .ops_state = (char *) "Maintaining",
                  .labels = l_idle, .n_labels = 1 },
                { .state = (char *) "ok" },
        };
        ProbeEndpoint eps[3] = {
                { .url = (char *) "http://127.0.0.1:8080/state", .storage_type = PROBE_STORAGE_IN_KUBE,
                  .annotation_key = (char *) "example.com/game-state", .label_key = (char *) "example.com/game-state",
                  .policies = game, .n_policies = ELEMENTSOF(game) },
                { .url = (char *) "http://127.0.0.1:8081/health", .storage_type = PROBE_STORAGE_IN_KUBE,
                  .annotation_key = (char *) "example.com/health", .policies = health,
                  .n_policies = ELEMENTSOF(health) },
                { .url = (char *) "http://127.0.0.1:8082/metric", .storage_type = PROBE_STORAGE_HTTP_METRIC,
                  .metric_name = (char *) "game_state", .annotation_key = (char *) "example.com/ignored",
                  .policies = game, .n_policies = ELEMENTSOF(game) },
        };
        ProbeConfig c = { .endpoints = eps, .n_endpoints = 3, .interval_sec = 10 };
        ProbeFields want = {}, sent = {}, changes = {};
        const ProbeField *f;

        /* matching is exact */
        ASSERT_TRUE(probe_policy_find(&eps[0], "Allocated") == &game[1]);
        ASSERT_TRUE(!probe_policy_find(&eps[0], "allocated"));
        ASSERT_TRUE(!probe_policy_find(&eps[0], "Allocated "));
        ASSERT_TRUE(!probe_policy_find(&eps[0], NULL));
        ASSERT_TRUE(!probe_policy_find(&eps[0], ""));

        /* Nobody has a state: nothing is wanted. */
        char *none[3] = { NULL, NULL, NULL };
        ASSERT_EQ(probe_desired_compute(&c, none, &want), 0);
        ASSERT_EQ(want.n, 0);
        probe_fields_done(&want);

        /* Only the second endpoint: it decides opsState and the label. The HTTPMetric one
         * decides nothing, though it has policies and an annotation key. */
        char *s1[3] = { NULL, (char *) "Unhealthy", (char *) "WaitToBeDeleted" };
        ASSERT_EQ(probe_desired_compute(&c, s1, &want), 0);
        ASSERT_EQ(want.n, 3);
        f = probe_fields_get(&want, PROBE_TARGET_OPS_STATE, "");
        ASSERT_STREQ(f->value, "Maintaining");
        ASSERT_EQ(f->source, 1);
        ASSERT_STREQ(probe_fields_get(&want, PROBE_TARGET_GS_LABEL, "game.example.com/phase")->value,
                     "idle");
        ASSERT_STREQ(probe_fields_get(&want, PROBE_TARGET_POD_ANNOTATION, "example.com/health")->value,
                     "Unhealthy");
        ASSERT_TRUE(!probe_fields_get(&want, PROBE_TARGET_POD_ANNOTATION, "example.com/ignored"));

        /* First send: everything is a change; then nothing is. */
        ASSERT_EQ(probe_fields_diff(&want, &sent, &changes), 0);
        ASSERT_EQ(changes.n, 3);
        ASSERT_EQ(probe_fields_merge(&sent, &changes), 0);
        probe_fields_done(&changes);
        ASSERT_EQ(probe_fields_diff(&want, &sent, &changes), 0);
        ASSERT_EQ(changes.n, 0);
        probe_fields_done(&changes);
        probe_fields_done(&want);

        /* Both have a state: the first endpoint wins every field it decides, the second
         * keeps what the first does not decide (its own annotation key). */
        char *s2[3] = { (char *) "Allocated", (char *) "Unhealthy", NULL };
        ASSERT_EQ(probe_desired_compute(&c, s2, &want), 0);
        f = probe_fields_get(&want, PROBE_TARGET_OPS_STATE, NULL);
        ASSERT_STREQ(f->value, "Allocated");
        ASSERT_EQ(f->source, 0);
        ASSERT_STREQ(probe_fields_get(&want, PROBE_TARGET_GS_LABEL, "game.example.com/phase")->value,
                     "busy");
        ASSERT_STREQ(probe_fields_get(&want, PROBE_TARGET_GS_ANNOTATION, "game.example.com/note")->value,
                     "players on it");
        ASSERT_STREQ(probe_fields_get(&want, PROBE_TARGET_POD_ANNOTATION, "example.com/game-state")->value,
                     "Allocated");
        ASSERT_STREQ(probe_fields_get(&want, PROBE_TARGET_POD_LABEL, "example.com/game-state")->value,
                     "Allocated");
        ASSERT_STREQ(probe_fields_get(&want, PROBE_TARGET_POD_ANNOTATION, "example.com/health")->value,
                     "Unhealthy");
        ASSERT_EQ(want.n, 6);

        /* The edge: only what differs from what was sent. */
        ASSERT_EQ(probe_fields_diff(&want, &sent, &changes), 0);
        ASSERT_EQ(changes.n, 5);
        ASSERT_TRUE(!probe_fields_get(&changes, PROBE_TARGET_POD_ANNOTATION, "example.com/health"));
        ASSERT_STREQ(probe_fields_get(&changes, PROBE_TARGET_OPS_STATE, "")->value, "Allocated");
        ASSERT_EQ(probe_fields_merge(&sent, &changes), 0);
        ASSERT_EQ(sent.n, 6);
        probe_fields_done(&changes);
        probe_fields_done(&want);

        /* A state no policy matches decides nothing on the GameServer: the second endpoint's
         * opsState takes over. The raw state still goes to the pod. A state that is not a
         * valid label value goes to the annotation only. */
        char *s3[3] = { (char *) "Unknown state!", (char *) "Unhealthy", NULL };
        ASSERT_EQ(probe_desired_compute(&c, s3, &want), 0);
        ASSERT_STREQ(probe_fields_get(&want, PROBE_TARGET_OPS_STATE, "")->value, "Maintaining");
        ASSERT_EQ(probe_fields_get(&want, PROBE_TARGET_OPS_STATE, "")->source, 1);
        ASSERT_STREQ(probe_fields_get(&want, PROBE_TARGET_POD_ANNOTATION, "example.com/game-state")->value,
                     "Unknown state!");
        ASSERT_TRUE(!probe_fields_get(&want, PROBE_TARGET_POD_LABEL, "example.com/game-state"));
        ASSERT_TRUE(!probe_fields_get(&want, PROBE_TARGET_GS_ANNOTATION, "game.example.com/note"));
        ASSERT_EQ(probe_fields_diff(&want, &sent, &changes), 0);
        /* opsState, the label (idle again) and the pod annotation; not the annotation that is
         * no longer wanted (nothing is removed) nor the pod label (invalid value). */
        ASSERT_EQ(changes.n, 3);
        probe_fields_done(&changes);
        probe_fields_done(&want);

        /* A policy without gameServerOpsState leaves opsState to later endpoints. */
        char *s4[3] = { (char *) "LabelOnly", (char *) "ok", NULL };
        ASSERT_EQ(probe_desired_compute(&c, s4, &want), 0);
        ASSERT_TRUE(!probe_fields_get(&want, PROBE_TARGET_OPS_STATE, ""));
        ASSERT_STREQ(probe_fields_get(&want, PROBE_TARGET_GS_LABEL, "game.example.com/phase")->value,
                     "busy");
        probe_fields_done(&want);

        /* Same state as sent: an empty diff, so nothing is handed to okg-storaged. */
        ASSERT_EQ(probe_desired_compute(&c, s2, &want), 0);
        ASSERT_EQ(probe_fields_diff(&want, &sent, &changes), 0);
        ASSERT_EQ(changes.n, 0);
        probe_fields_done(&changes);
        probe_fields_done(&want);

        /* probe_fields_set updates in place */
        ASSERT_EQ(probe_fields_set(&sent, PROBE_TARGET_OPS_STATE, NULL, "None", 1), 0);
        ASSERT_EQ(sent.n, 6);
        ASSERT_STREQ(probe_fields_get(&sent, PROBE_TARGET_OPS_STATE, "")->value, "None");
        ASSERT_EQ(probe_fields_get(&sent, PROBE_TARGET_OPS_STATE, "")->source, 1);
        /* targets are separate namespaces for keys */
        ASSERT_TRUE(probe_fields_get(&sent, PROBE_TARGET_POD_LABEL, "example.com/game-state") !=
                    probe_fields_get(&sent, PROBE_TARGET_POD_ANNOTATION, "example.com/game-state"));
        probe_fields_done(&sent);
        ASSERT_EQ(sent.n, 0);
}

/* The proposal's demo: None -> WaitToBeDeleted -> Allocated -> None, one write per change. */
static void test_proposal_sequence(void) {
        MarkerPolicy p[] = {
                { .state = (char *) "WaitToBeDeleted", .ops_state = (char *) "WaitToBeDeleted" },
                { .state = (char *) "Allocated", .ops_state = (char *) "Allocated" },
                { .state = (char *) "None", .ops_state = (char *) "None" },
        };
        ProbeEndpoint ep = { .url = (char *) "http://localhost:8080", .policies = p, .n_policies = 3,
                             .storage_type = PROBE_STORAGE_IN_KUBE };
        ProbeConfig c = { .endpoints = &ep, .n_endpoints = 1 };
        const char *seq[] = { "None", "None", "WaitToBeDeleted", "WaitToBeDeleted", "Allocated",
                              "Allocated", "Allocated", "None", "None" };
        const char *expected_writes[] = { "None", NULL, "WaitToBeDeleted", NULL, "Allocated",
                                          NULL, NULL, "None", NULL };
        ProbeFields sent = {};
        ProbeTracker t;
        unsigned writes = 0;

        ASSERT_EQ(probe_tracker_init(&t, 1, 3, NULL), 0);
        for (size_t i = 0; i < ELEMENTSOF(seq); i++) {
                ProbeFields want = {}, changes = {};
                ASSERT_TRUE(probe_tracker_success(&t, seq[i], NULL) >= 0);
                char *states[1] = { t.state };
                ASSERT_EQ(probe_desired_compute(&c, states, &want), 0);
                ASSERT_EQ(probe_fields_diff(&want, &sent, &changes), 0);
                if (expected_writes[i]) {
                        ASSERT_EQ(changes.n, 1);
                        ASSERT_STREQ(changes.v[0].value, expected_writes[i]);
                        writes++;
                } else
                        ASSERT_EQ(changes.n, 0);
                ASSERT_EQ(probe_fields_merge(&sent, &changes), 0);
                probe_fields_done(&want);
                probe_fields_done(&changes);
        }
        ASSERT_EQ(writes, 4);
        probe_fields_done(&sent);
        probe_tracker_done(&t);
}

static void test_schedule(void) {
        const uint64_t s = 1000000;
        /* 10 s: between 9.5 s and 9.75 s, plus up to 0.25 s of timer slack = at most 10 s. */
        ASSERT_EQ(probe_next_delay(10 * s, 0), 10 * s - s / 2);
        ASSERT_EQ(probe_next_delay(10 * s, s / 4), 10 * s - s / 4);
        ASSERT_EQ(probe_timer_accuracy(10 * s), s / 4);
        for (uint32_t rnd = 0; rnd < 5000000; rnd += 12345) {
                uint64_t d = probe_next_delay(10 * s, rnd);
                ASSERT_TRUE(d >= 10 * s - s / 2 && d + probe_timer_accuracy(10 * s) <= 10 * s);
                d = probe_next_delay(1 * s, rnd);
                ASSERT_TRUE(d >= s - s / 20 && d + probe_timer_accuracy(s) <= s);
                d = probe_next_delay(86400 * s, rnd);
                ASSERT_TRUE(d >= 86400 * s - s / 2 && d + probe_timer_accuracy(86400 * s) <= 86400 * s);
        }
        /* the accuracy is capped too */
        ASSERT_EQ(probe_timer_accuracy(3600 * s), s / 4);
        ASSERT_EQ(probe_timer_accuracy(1 * s), s / 40);
}

static void test_metrics(void) {
        ProbeEndpoint eps[3] = {
                { .url = (char *) "http://a/\"q\"\\", .storage_type = PROBE_STORAGE_IN_KUBE },
                { .url = (char *) "http://b/", .storage_type = PROBE_STORAGE_HTTP_METRIC,
                  .metric_name = (char *) "game_state" },
                { .url = (char *) "http://c/", .storage_type = PROBE_STORAGE_HTTP_METRIC,
                  .metric_name = (char *) "game_state" },
        };
        ProbeMetricsEndpoint m[3] = {
                { .config = &eps[0], .state = "None", .probes = 10, .failures = 2, .state_changes = 1 },
                { .config = &eps[1], .state = "two\nlines", .probes = 5, .failing = true },
                { .config = &eps[2], .state = NULL, .probes = 0 },
        };
        _cleanup_(freep) char *text = NULL, *esc = NULL;

        esc = probe_metrics_escape("a\"b\\c\nd");
        ASSERT_STREQ(esc, "a\\\"b\\\\c\\nd");

        ASSERT_EQ(probe_metrics_render(m, 3, &text), 0);
        static const char *const expected[] = {
                "# TYPE okg_sidecar_probe_probes_total counter\n",
                "okg_sidecar_probe_probes_total{endpoint=\"0\",url=\"http://a/\\\"q\\\"\\\\\"} 10\n",
                "okg_sidecar_probe_probes_total{endpoint=\"1\",url=\"http://b/\"} 5\n",
                "okg_sidecar_probe_probes_total{endpoint=\"2\",url=\"http://c/\"} 0\n",
                "okg_sidecar_probe_failures_total{endpoint=\"0\",url=\"http://a/\\\"q\\\"\\\\\"} 2\n",
                "okg_sidecar_probe_state_changes_total{endpoint=\"0\",url=\"http://a/\\\"q\\\"\\\\\"} 1\n",
                "okg_sidecar_probe_failing{endpoint=\"1\",url=\"http://b/\"} 1\n",
                "okg_sidecar_probe_state{endpoint=\"0\",url=\"http://a/\\\"q\\\"\\\\\",state=\"None\"} 1\n",
                "# TYPE game_state gauge\n",
                "game_state{endpoint=\"1\",url=\"http://b/\",state=\"two\\nlines\"} 1\n",
        };
        for (size_t i = 0; i < ELEMENTSOF(expected); i++)
                if (!strstr(text, expected[i])) {
                        fprintf(stderr, "missing: %s\nin:\n%s", expected[i], text);
                        exit(1);
                }
        /* one family for a shared name; no series for an endpoint without a state */
        const char *first = strstr(text, "# TYPE game_state gauge");
        ASSERT_TRUE(first && !strstr(first + 1, "# TYPE game_state gauge"));
        ASSERT_TRUE(!strstr(text, "game_state{endpoint=\"2\""));
        ASSERT_TRUE(!strstr(text, "okg_sidecar_probe_state{endpoint=\"2\""));

        free(text);
        text = NULL;
        ASSERT_EQ(probe_metrics_render(m, 0, &text), 0);
        ASSERT_TRUE(strstr(text, "# TYPE okg_sidecar_probe_state gauge\n"));
        ASSERT_TRUE(!strstr(text, "endpoint="));
}

int main(void) {
        test_status();
        test_body_state();
        test_redirects();
        test_escape();
        test_invisible();
        test_utf8();
        test_thresholds();
        test_policies_and_precedence();
        test_proposal_sequence();
        test_schedule();
        test_metrics();
        printf("probe logic: ok\n");
        return 0;
}
