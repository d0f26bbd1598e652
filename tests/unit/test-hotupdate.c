/* okg-hotupdated's pure logic: request parsing (form, query string, JSON), the checks on version,
 * URL, sha256 and file name, the outcome table, the record and annotation JSON, SHA-256, and the
 * /proc parsers and process selection. Strings in, values out: no I/O. */
#include <errno.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hotupdated-game.h"
#include "hotupdated-record.h"
#include "hotupdated-request.h"
#include "hotupdated-sha256.h"
#include "hotupdated-status.h"
#include "macro.h"
#include "okg-test.h"

static char err[HOTUPDATE_ERR_MAX];

/* ---- SHA-256 ---- */

static void test_sha256(void) {
        char hex[SHA256_HEX_SIZE];
        Sha256 s;

        sha256_hex("", 0, hex);
        ASSERT_STREQ(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        sha256_hex("abc", 3, hex);
        ASSERT_STREQ(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
        sha256_hex(two, strlen(two), hex);
        ASSERT_STREQ(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");

        /* A million 'a' fed in odd pieces: the incremental path equals the one-shot one. */
        static char block[1000];
        memset(block, 'a', sizeof block);
        sha256_init(&s);
        for (unsigned i = 0; i < 1000; i++) {
                sha256_update(&s, block, 1);
                sha256_update(&s, block, 63);
                sha256_update(&s, block, 936);
        }
        sha256_final_hex(&s, hex);
        ASSERT_STREQ(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");

        /* Lengths around the padding boundary. */
        static const char *const at55_56_64[] = {
                "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318",
                "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a",
                "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb",
        };
        unsigned lens[] = { 55, 56, 64 };
        for (unsigned i = 0; i < 3; i++) {
                sha256_hex(block, lens[i], hex);
                ASSERT_STREQ(hex, at55_56_64[i]);
        }

        ASSERT_TRUE(secret_equal("token-1", "token-1"));
        ASSERT_TRUE(!secret_equal("token-1", "token-2"));
        ASSERT_TRUE(!secret_equal("token-1", "token-1 "));
        ASSERT_TRUE(!secret_equal("", "x"));
        ASSERT_TRUE(!secret_equal(NULL, "x"));
}

/* ---- request parsing ---- */

static void test_body_kind(void) {
        ASSERT_EQ(hotupdate_body_kind(NULL), BODY_FORM);
        ASSERT_EQ(hotupdate_body_kind("application/x-www-form-urlencoded"), BODY_FORM);
        ASSERT_EQ(hotupdate_body_kind("Application/X-WWW-Form-Urlencoded; charset=utf-8"), BODY_FORM);
        ASSERT_EQ(hotupdate_body_kind("application/json"), BODY_JSON);
        ASSERT_EQ(hotupdate_body_kind("application/json;charset=UTF-8"), BODY_JSON);
        ASSERT_EQ(hotupdate_body_kind("multipart/form-data; boundary=x"), BODY_UNSUPPORTED);
        ASSERT_EQ(hotupdate_body_kind("text/plain"), BODY_UNSUPPORTED);
        ASSERT_EQ(hotupdate_body_kind("application/jsonx"), BODY_UNSUPPORTED);
}

static void test_percent_decode(void) {
        char *out;
        size_t n;

        ASSERT_EQ(hotupdate_percent_decode("a%20b+c", 7, true, &out, &n), 0);
        ASSERT_STREQ(out, "a b c");
        free(out);
        ASSERT_EQ(hotupdate_percent_decode("a+b", 3, false, &out, &n), 0);
        ASSERT_STREQ(out, "a+b");
        free(out);
        ASSERT_EQ(hotupdate_percent_decode("%2F%2f", 6, false, &out, &n), 0);
        ASSERT_STREQ(out, "//");
        free(out);
        ASSERT_EQ(hotupdate_percent_decode("x%00y", 5, false, &out, &n), 0);
        ASSERT_EQ(n, 3);
        free(out);
        ASSERT_EQ(hotupdate_percent_decode("%", 1, false, &out, &n), -EINVAL);
        ASSERT_EQ(hotupdate_percent_decode("%4", 2, false, &out, &n), -EINVAL);
        ASSERT_EQ(hotupdate_percent_decode("%zz", 3, false, &out, &n), -EINVAL);
        /* The length bounds the input: a '%' at the very end of the slice is incomplete. */
        ASSERT_EQ(hotupdate_percent_decode("ab%41", 3, false, &out, &n), -EINVAL);
}

static int form(const char *s, HotUpdateParams *p) {
        *p = (HotUpdateParams) {};
        err[0] = 0;
        return hotupdate_parse_form(s, strlen(s), p, err, sizeof err);
}

static void test_form(void) {
        HotUpdateParams p;

        /* The proposal's curl. */
        ASSERT_EQ(form("version=v1&url=https://xxx.com/2048/v2/index.html", &p), 0);
        ASSERT_STREQ(p.version, "v1");
        ASSERT_STREQ(p.url, "https://xxx.com/2048/v2/index.html");
        ASSERT_TRUE(!p.sha256 && !p.file_name);
        hotupdate_params_done(&p);

        ASSERT_EQ(form("url=http%3A%2F%2Fcdn%2Fa%20b&version=v%2B1&&fileName=x.conf&sha256=", &p), 0);
        ASSERT_STREQ(p.url, "http://cdn/a b");
        ASSERT_STREQ(p.version, "v+1");
        ASSERT_STREQ(p.file_name, "x.conf");
        ASSERT_TRUE(!p.sha256);            /* empty counts as not given */
        hotupdate_params_done(&p);

        ASSERT_EQ(form("version=1&version=2", &p), -EINVAL);
        ASSERT_STREQ(err, "parameter \"version\" given twice");
        hotupdate_params_done(&p);
        ASSERT_EQ(form("sha256=&sha256=", &p), -EINVAL);
        hotupdate_params_done(&p);
        ASSERT_EQ(form("verison=1", &p), -EINVAL);
        ASSERT_STREQ(err, "unknown parameter \"verison\" (expected version, url, sha256, fileName)");
        hotupdate_params_done(&p);
        ASSERT_EQ(form("=v1", &p), -EINVAL);
        ASSERT_STREQ(err, "parameter without a name");
        hotupdate_params_done(&p);
        ASSERT_EQ(form("version=%zz", &p), -EINVAL);
        ASSERT_STREQ(err, "malformed %-escape in parameter \"version\"");
        hotupdate_params_done(&p);
        ASSERT_EQ(form("version=a%00b", &p), -EINVAL);
        ASSERT_STREQ(err, "parameter \"version\" contains a NUL byte");
        hotupdate_params_done(&p);
        ASSERT_EQ(form("Version=1", &p), -EINVAL);    /* names are case-sensitive */
        hotupdate_params_done(&p);
        /* A name with no '=' is an empty value. */
        ASSERT_EQ(form("version", &p), 0);
        ASSERT_TRUE(!p.version);
        hotupdate_params_done(&p);
        /* Control bytes in an unknown name are not echoed. */
        ASSERT_EQ(form("a%0Ab=1", &p), -EINVAL);
        ASSERT_TRUE(!strchr(err, '\n'));
        hotupdate_params_done(&p);
}

static int json(const char *s, HotUpdateParams *p) {
        *p = (HotUpdateParams) {};
        err[0] = 0;
        return hotupdate_parse_json(s, strlen(s), p, err, sizeof err);
}

static void test_json(void) {
        HotUpdateParams p;

        ASSERT_EQ(json("{\"version\":\"v2\",\"url\":\"https://cdn/x.conf\",\"sha256\":null}", &p), 0);
        ASSERT_STREQ(p.version, "v2");
        ASSERT_STREQ(p.url, "https://cdn/x.conf");
        ASSERT_TRUE(!p.sha256);
        hotupdate_params_done(&p);
        ASSERT_EQ(json("  {\"fileName\": \"a.txt\"}\n", &p), 0);
        ASSERT_STREQ(p.file_name, "a.txt");
        hotupdate_params_done(&p);

        ASSERT_EQ(json("{\"version\":2}", &p), -EINVAL);
        ASSERT_STREQ(err, "parameter \"version\" must be a string");
        hotupdate_params_done(&p);
        ASSERT_EQ(json("[\"v1\"]", &p), -EINVAL);
        ASSERT_STREQ(err, "JSON body must be an object");
        hotupdate_params_done(&p);
        ASSERT_EQ(json("{\"version\":\"v1\"", &p), -EINVAL);
        hotupdate_params_done(&p);
        ASSERT_EQ(json("{\"version\":\"v1\"} x", &p), -EINVAL);
        ASSERT_TRUE(startswith(err, "invalid JSON body: "));
        hotupdate_params_done(&p);
        ASSERT_EQ(json("{\"version\":{\"a\":{\"b\":1}}}", &p), -EINVAL);
        hotupdate_params_done(&p);
        ASSERT_EQ(json("{\"extra\":\"1\"}", &p), -EINVAL);
        hotupdate_params_done(&p);
        ASSERT_EQ(json("{\"version\":\"a\\u0000b\"}", &p), -EINVAL);
        ASSERT_STREQ(err, "parameter \"version\" contains a NUL byte");
        hotupdate_params_done(&p);
        ASSERT_EQ(json("", &p), -EINVAL);
        hotupdate_params_done(&p);
        ASSERT_EQ(json("{'version':'v1'}", &p), -EINVAL);      /* strict JSON */
        hotupdate_params_done(&p);
}

static int finish(const char *formbody, HotUpdateParams *p) {
        int r = form(formbody, p);
        if (r < 0)
                return r;
        return hotupdate_params_finish(p, err, sizeof err);
}

static void test_finish(void) {
        HotUpdateParams p;

        ASSERT_EQ(finish("version=v1&url=https://xxx.com/2048/v2/index.html", &p), 0);
        ASSERT_STREQ(p.file_name, "index.html");
        hotupdate_params_done(&p);

        ASSERT_EQ(finish("version=1.2.3-rc.1%2Bb7&url=http://cdn:8080/a/game%2Dconf.yaml?sig=x#f"
                         "&sha256=BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD",
                         &p),
                  0);
        ASSERT_STREQ(p.file_name, "game-conf.yaml");
        ASSERT_STREQ(p.sha256, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        hotupdate_params_done(&p);

        ASSERT_EQ(finish("version=v1&url=https://cdn/dir/&fileName=main.cfg", &p), 0);
        ASSERT_STREQ(p.file_name, "main.cfg");
        hotupdate_params_done(&p);

        static const struct {
                const char *body, *reason;
        } bad[] = {
                { "url=http://a/b", "parameter \"version\" is missing" },
                { "version=v1", "parameter \"url\" is missing" },
                { "version=v%201&url=http://a/b", "invalid version: 1-128 characters from A-Z a-z 0-9 . _ - +" },
                { "version=v/1&url=http://a/b", "invalid version: 1-128 characters from A-Z a-z 0-9 . _ - +" },
                { "version=v1&url=ftp://a/b", "invalid url: must use http or https" },
                { "version=v1&url=file:///etc/passwd", "invalid url: must use http or https" },
                { "version=v1&url=cdn.example.com/x", "invalid url: is not a valid absolute URL" },
                { "version=v1&url=http://u:p@a/b", "invalid url: must not contain credentials (user:password@)" },
                { "version=v1&url=http://a/b%20c%0A", NULL },
                { "version=v1&url=http://a/b c", "invalid url: contains spaces, control or non-ASCII characters (percent-encode them)" },
                { "version=v1&url=http://a/", "the URL has no file name (its path ends in '/'); give fileName" },
                { "version=v1&url=http://a", "the URL has no file name (its path ends in '/'); give fileName" },
                { "version=v1&url=http://a/.htaccess", NULL },
                { "version=v1&url=http://a/%2E%2E", NULL },
                { "version=v1&url=http://a/x%252F..%252Fetc", NULL },
                { "version=v1&url=http://a/%252E%252E", NULL },
                { "version=v1&url=http://a/b&fileName=../x", "invalid fileName: must not start with '.' (no hidden files, no \".\" or \"..\")" },
                { "version=v1&url=http://a/b&fileName=a/b", "invalid fileName: must be a plain name without '/' or '\\'" },
                { "version=v1&url=http://a/b&fileName=.env", NULL },
                { "version=v1&url=http://a/b&fileName=-rf", "invalid fileName: must not start with '-'" },
                { "version=v1&url=http://a/b&fileName=a%20b", NULL },
                { "version=v1&url=http://a/b&sha256=abc", "invalid sha256: expected 64 hex digits" },
                { "version=v1&url=http://a/b&sha256=zz7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", "invalid sha256: expected 64 hex digits" },
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                if (finish(bad[i].body, &p) != -EINVAL) {
                        fprintf(stderr, "accepted: %s\n", bad[i].body);
                        exit(1);
                }
                if (bad[i].reason && !streq(err, bad[i].reason)) {
                        fprintf(stderr, "%s: reason \"%s\"\n", bad[i].body, err);
                        exit(1);
                }
                ASSERT_TRUE(err[0] && !strchr(err, '\n'));
                hotupdate_params_done(&p);
        }

        char longv[200];
        memset(longv, 'v', sizeof longv);
        longv[129] = 0;
        ASSERT_TRUE(!hotupdate_version_is_valid(longv));
        longv[128] = 0;
        ASSERT_TRUE(hotupdate_version_is_valid(longv));
        ASSERT_TRUE(!hotupdate_version_is_valid(""));

        char longname[300];
        memset(longname, 'n', sizeof longname);
        longname[256] = 0;
        ASSERT_STREQ(hotupdate_file_name_check(longname), "is longer than 255 characters");
        longname[255] = 0;
        ASSERT_TRUE(!hotupdate_file_name_check(longname));
        ASSERT_TRUE(!hotupdate_file_name_check("nginx.conf"));
        ASSERT_TRUE(!hotupdate_file_name_check("a_b-c+d~e@f=g,h.tar.gz"));
        ASSERT_TRUE(hotupdate_file_name_check("..") != NULL);
        ASSERT_TRUE(hotupdate_file_name_check("a\\b") != NULL);
        ASSERT_TRUE(hotupdate_file_name_check("caf\xc3\xa9") != NULL);

        char longurl[2100];
        memcpy(longurl, "http://a/", 9);
        memset(longurl + 9, 'x', sizeof longurl - 10);
        longurl[sizeof longurl - 1] = 0;
        ASSERT_STREQ(hotupdate_url_check(longurl), "is longer than 2048 characters");
        ASSERT_TRUE(!hotupdate_url_check("HTTPS://CDN.example.com:8443/a/b.txt?x=1"));
        ASSERT_TRUE(!hotupdate_url_check("http://[::1]:8080/a"));

        /* User info in every form is refused, and a refusal shows the URL masked, or not at
         * all when the mask cannot tell where the user info ends. */
        const char *creds[] = { "https://user@cdn.example.com/game/x",
                                "https://user:secret@cdn.example.com/game/x",
                                "https://:secret@cdn.example.com/game/x",
                                "https://@cdn.example.com/game/x", "https://:@cdn.example.com/x",
                                "https://us%40er@cdn.example.com/x", NULL };
        char shown[HOTUPDATE_SHOWN_URL_MAX];
        for (const char **s = creds; *s; s++) {
                ASSERT_STREQ(hotupdate_url_check(*s), "must not contain credentials (user:password@)");
                ASSERT_TRUE(hotupdate_url_shown(*s, shown, sizeof shown) == shown);
                ASSERT_TRUE(!strstr(shown, "user") && !strstr(shown, "secret") &&
                            !strstr(shown, "us%40er"));
                ASSERT_TRUE(strstr(shown, "://***@cdn.example.com/"));
        }
        /* Two '@': libcurl refuses the host; the whole authority is masked. */
        ASSERT_TRUE(hotupdate_url_check("https://user:secret@x@cdn.example.com/x"));
        ASSERT_STREQ(hotupdate_url_shown("https://user:secret@x@cdn.example.com/x", shown,
                                         sizeof shown),
                     "https://***@cdn.example.com/x");
        ASSERT_TRUE(!hotupdate_url_shown("user:secret@cdn.example.com/x", shown, sizeof shown));
        ASSERT_TRUE(!hotupdate_url_shown("http:\\\\user:secret@cdn.example.com/x", shown,
                                         sizeof shown));
        ASSERT_TRUE(!hotupdate_url_shown(NULL, shown, sizeof shown));
        /* An invalid one with an '@' that is not the mask's: not shown, wherever it is. */
        ASSERT_TRUE(!hotupdate_url_shown("ftp://cdn.example.com/a@b", shown, sizeof shown));
        ASSERT_STREQ(hotupdate_url_shown("ftp://cdn.example.com/a", shown, sizeof shown),
                     "ftp://cdn.example.com/a");
        ASSERT_STREQ(hotupdate_url_shown("http://h/a@b", shown, sizeof shown), "http://h/a@b");

        /* The bus and a copy see the same thing. */
        HotUpdateParams q = {}, c;
        ASSERT_EQ(hotupdate_params_set(&q, "version", "v9", 2, err, sizeof err), 0);
        ASSERT_EQ(hotupdate_params_set(&q, "url", "http://h/f", 10, err, sizeof err), 0);
        ASSERT_EQ(hotupdate_params_set(&q, "fileName", "", 0, err, sizeof err), 0);
        ASSERT_EQ(hotupdate_params_finish(&q, err, sizeof err), 0);
        ASSERT_EQ(hotupdate_params_copy(&q, &c), 0);
        ASSERT_STREQ(c.file_name, "f");
        ASSERT_EQ(hotupdate_params_set(&c, "url", "x", 1, err, sizeof err), -EINVAL);
        hotupdate_params_done(&q);
        hotupdate_params_done(&c);
}

/* ---- the outcome table ---- */

static void test_status_table(void) {
        ASSERT_EQ(hotupdate_outcome_http_status(OUTCOME_SUCCEEDED), 200);
        ASSERT_EQ(hotupdate_outcome_http_status(OUTCOME_UNCHANGED), 200);
        ASSERT_EQ(hotupdate_outcome_http_status(OUTCOME_INVALID), 400);
        ASSERT_EQ(hotupdate_outcome_http_status(OUTCOME_UNAUTHORIZED), 401);
        ASSERT_EQ(hotupdate_outcome_http_status(OUTCOME_FORBIDDEN), 403);
        ASSERT_TRUE(hotupdate_outcome_info(OUTCOME_FORBIDDEN)->recorded);
        ASSERT_STREQ(hotupdate_http_reason(403), "Forbidden");
        ASSERT_EQ(hotupdate_outcome_http_status(OUTCOME_NOT_FOUND), 404);
        ASSERT_EQ(hotupdate_outcome_http_status(OUTCOME_METHOD_NOT_ALLOWED), 405);
        ASSERT_EQ(hotupdate_outcome_http_status(OUTCOME_BUSY), 409);
        ASSERT_EQ(hotupdate_outcome_http_status(OUTCOME_REQUEST_TOO_LARGE), 413);
        ASSERT_EQ(hotupdate_outcome_http_status(OUTCOME_UNSUPPORTED_MEDIA_TYPE), 415);
        ASSERT_EQ(hotupdate_outcome_http_status(OUTCOME_VERSION_CONFLICT), 422);
        ASSERT_EQ(hotupdate_outcome_http_status(OUTCOME_DOWNLOAD_FAILED), 502);
        ASSERT_EQ(hotupdate_outcome_http_status(OUTCOME_FILE_TOO_LARGE), 502);
        ASSERT_EQ(hotupdate_outcome_http_status(OUTCOME_CHECKSUM_MISMATCH), 502);
        ASSERT_EQ(hotupdate_outcome_http_status(OUTCOME_DOWNLOAD_TIMED_OUT), 504);
        ASSERT_EQ(hotupdate_outcome_http_status(OUTCOME_GAME_NOT_RUNNING), 503);
        ASSERT_EQ(hotupdate_outcome_http_status(OUTCOME_RELOAD_FAILED), 500);
        ASSERT_EQ(hotupdate_outcome_http_status(OUTCOME_ROLLED_BACK), 500);
        ASSERT_EQ(hotupdate_outcome_http_status(OUTCOME_INSUFFICIENT_STORAGE), 507);

        for (int i = 0; i < _OUTCOME_MAX; i++) {
                const HotUpdateOutcomeInfo *info = hotupdate_outcome_info((HotUpdateOutcome) i);
                /* Every outcome has a unique state that maps back to it. */
                ASSERT_TRUE(info->state);
                ASSERT_EQ(hotupdate_outcome_from_string(info->state), i);
                /* Success and only success has no D-Bus error and a 2xx status. */
                ASSERT_EQ(info->success, info->bus_error == NULL);
                ASSERT_EQ(info->success, info->http_status / 100 == 2);
                if (info->bus_error)
                        ASSERT_TRUE(startswith(info->bus_error, "io.kruise.game.HotUpdate1.Error."));
                ASSERT_TRUE(!streq(hotupdate_http_reason(info->http_status), "Unknown"));
        }
        /* What a client can send without starting anything never reaches the pod. */
        ASSERT_TRUE(!hotupdate_outcome_info(OUTCOME_INVALID)->recorded);
        ASSERT_TRUE(!hotupdate_outcome_info(OUTCOME_UNAUTHORIZED)->recorded);
        ASSERT_TRUE(!hotupdate_outcome_info(OUTCOME_BUSY)->recorded);
        ASSERT_TRUE(!hotupdate_outcome_info(OUTCOME_VERSION_CONFLICT)->recorded);
        ASSERT_TRUE(hotupdate_outcome_info(OUTCOME_DOWNLOAD_FAILED)->recorded);
        ASSERT_TRUE(hotupdate_outcome_info(OUTCOME_ROLLED_BACK)->recorded);
        ASSERT_EQ(hotupdate_outcome_from_string("nope"), _OUTCOME_INVALID);
        ASSERT_EQ(hotupdate_outcome_from_string(NULL), _OUTCOME_INVALID);
        ASSERT_STREQ(hotupdate_outcome_to_string((HotUpdateOutcome) 999), "Failed");
        ASSERT_EQ(hotupdate_outcome_from_errno(-ENOSPC), OUTCOME_INSUFFICIENT_STORAGE);
        ASSERT_EQ(hotupdate_outcome_from_errno(EDQUOT), OUTCOME_INSUFFICIENT_STORAGE);
        ASSERT_EQ(hotupdate_outcome_from_errno(-EACCES), OUTCOME_FAILED);
        ASSERT_STREQ(hotupdate_phase_to_string(PHASE_WAITING_FOR_GAME), "waiting-for-game");
        ASSERT_TRUE(!hotupdate_phase_to_string(_PHASE_MAX));
}

/* ---- record and annotation ---- */

static void test_time(void) {
        char buf[HOTUPDATE_TIME_SIZE];

        ASSERT_EQ(hotupdate_format_time(0, buf), 0);
        ASSERT_STREQ(buf, "1970-01-01T00:00:00.000Z");
        /* Year 10000 would make the string longer. */
        ASSERT_EQ(hotupdate_format_time(253402300800ULL * 1000000ULL, buf), -ERANGE);
        ASSERT_EQ(hotupdate_format_time(1764220800ULL * 1000000ULL + 123456, buf), 0);
        ASSERT_STREQ(buf, "2025-11-27T05:20:00.123Z");
        ASSERT_TRUE(hotupdate_time_is_valid(buf));
        ASSERT_EQ(hotupdate_format_time(1764220800ULL * 1000000ULL + 9000, buf), 0);
        ASSERT_STREQ(buf, "2025-11-27T05:20:00.009Z");
        /* Fixed width: string order is time order. */
        char a[HOTUPDATE_TIME_SIZE], b[HOTUPDATE_TIME_SIZE];
        ASSERT_EQ(hotupdate_format_time(999999999ULL * 1000000ULL, a), 0);
        ASSERT_EQ(hotupdate_format_time(1000000000ULL * 1000000ULL, b), 0);
        ASSERT_TRUE(strlen(a) == strlen(b) && strcmp(a, b) < 0);
        ASSERT_TRUE(!hotupdate_time_is_valid("2025-11-27T05:20:00Z"));
        ASSERT_TRUE(!hotupdate_time_is_valid("2025-11-27 05:20:00.123Z"));
        ASSERT_TRUE(!hotupdate_time_is_valid(NULL));
}

#define SHA_A "1cc80f54c6f1f55dfcd0f0586a340758532af4213ad5e2983db0f02265021f5c"
#define SHA_B "fe078a58aa6571fb9cd8eda7fcfefa7c0f460944d29e191c46ec7caa27bc76b0"

static void test_record(void) {
        HotUpdateRecord rec = {
                .current = { "v2", "https://cdn/v2/index.html", SHA_B, "index.html",
                             "2025-11-27T05:20:01.000Z" },
                .previous = { "v1", "https://cdn/v1/index.html", SHA_A, "index.html",
                              "2025-11-27T05:20:00.000Z" },
                .last = { .version = "v3", .url = "https://cdn/v3/index.html", .sha256 = SHA_A,
                          .file_name = "index.html", .outcome = OUTCOME_ROLLED_BACK,
                          .message = "post-reload check failed", .at = "2025-11-27T05:21:00.000Z",
                          .current_version = "v2" },
        };
        HotUpdateRecord back = {};
        char *text = NULL, *ann = NULL;

        ASSERT_EQ(hotupdate_record_format(&rec, &text), 0);
        ASSERT_TRUE(strstr(text, "\"format\":1"));
        ASSERT_TRUE(strstr(text, "\"appliedAt\":\"2025-11-27T05:20:01.000Z\""));
        ASSERT_TRUE(strstr(text, "\"url\":\"https://cdn/v2/index.html\""));   /* no \/ */
        ASSERT_EQ(hotupdate_record_parse(text, &back, err, sizeof err), 0);
        ASSERT_STREQ(back.current.version, "v2");
        ASSERT_STREQ(back.current.sha256, SHA_B);
        ASSERT_STREQ(back.previous.version, "v1");
        ASSERT_EQ(back.last.outcome, OUTCOME_ROLLED_BACK);
        ASSERT_STREQ(back.last.current_version, "v2");
        ASSERT_STREQ(back.last.message, "post-reload check failed");
        hotupdate_record_done(&back);
        free(text);

        /* The annotation is the outcome; success says whether the version asked for is in. */
        ASSERT_EQ(hotupdate_annotation_format(&rec.last, &ann), 0);
        json_object *o = json_tokener_parse(ann), *v;
        ASSERT_TRUE(o);
        ASSERT_TRUE(json_object_object_get_ex(o, "success", &v) && !json_object_get_boolean(v));
        ASSERT_TRUE(json_object_object_get_ex(o, "state", &v));
        ASSERT_STREQ(json_object_get_string(v), "RolledBack");
        ASSERT_TRUE(json_object_object_get_ex(o, "currentVersion", &v));
        ASSERT_STREQ(json_object_get_string(v), "v2");
        json_object_put(o);
        free(ann);

        /* No version in place: no top-level version fields, currentVersion null. */
        HotUpdateRecord none = { .last = { .version = "v1", .outcome = OUTCOME_DOWNLOAD_FAILED,
                                           .message = "HTTP 404", .at = "2025-11-27T05:20:00.000Z" } };
        ASSERT_EQ(hotupdate_record_format(&none, &text), 0);
        ASSERT_TRUE(!strstr(text, "appliedAt"));
        ASSERT_TRUE(strstr(text, "\"currentVersion\":null"));
        ASSERT_EQ(hotupdate_record_parse(text, &back, err, sizeof err), 0);
        ASSERT_TRUE(!hotupdate_version_is_set(&back.current));
        ASSERT_EQ(back.last.outcome, OUTCOME_DOWNLOAD_FAILED);
        ASSERT_TRUE(!back.last.current_version);
        hotupdate_record_done(&back);
        free(text);

        /* okg-storaged adds pod and gameServerSet; those are fine. */
        ASSERT_EQ(hotupdate_record_parse("{\"version\":\"v1\",\"url\":\"http://a/b\",\"sha256\":\"" SHA_A
                                         "\",\"fileName\":\"b\",\"appliedAt\":\"2025-11-27T05:20:00.000Z\","
                                         "\"pod\":\"game-0\",\"gameServerSet\":\"game\"}",
                                         &back, err, sizeof err),
                  0);
        ASSERT_STREQ(back.current.file_name, "b");
        hotupdate_record_done(&back);

        /* A broken lastResult is history only. */
        ASSERT_EQ(hotupdate_record_parse("{\"lastResult\":{\"state\":\"Exploded\",\"at\":\"x\"}}",
                                         &back, err, sizeof err),
                  0);
        ASSERT_TRUE(!back.last.at);
        hotupdate_record_done(&back);

        /* Whatever leads to a file write is checked like a request: a record from another pod
         * cannot make us write outside the folder. */
        static const struct {
                const char *text, *reason;
        } bad[] = {
                { "", "empty record" },
                { "[1]", "record is not a JSON object" },
                { "not json", "record is not a JSON object" },
                { "{\"format\":2}", "unsupported record format (expected 1)" },
                { "{\"version\":\"v1\"}", "\"url\" is missing" },
                { "{\"version\":1}", "\"version\" is not a string" },
                { "{\"version\":\"v1\",\"url\":\"http://a/b\",\"sha256\":\"" SHA_A "\",\"fileName\":\"../../etc/passwd\",\"appliedAt\":\"2025-11-27T05:20:00.000Z\"}",
                  "invalid fileName: must not start with '.' (no hidden files, no \".\" or \"..\")" },
                { "{\"version\":\"v1\",\"url\":\"file:///etc\",\"sha256\":\"" SHA_A "\",\"fileName\":\"b\",\"appliedAt\":\"2025-11-27T05:20:00.000Z\"}",
                  "invalid url: must use http or https" },
                { "{\"version\":\"v1\",\"url\":\"http://a/b\",\"sha256\":\"x\",\"fileName\":\"b\",\"appliedAt\":\"2025-11-27T05:20:00.000Z\"}",
                  "invalid sha256" },
                { "{\"version\":\"v1\",\"url\":\"http://a/b\",\"sha256\":\"" SHA_A "\",\"fileName\":\"b\",\"appliedAt\":\"yesterday\"}",
                  "invalid appliedAt" },
                { "{\"previous\":{\"version\":\"v 1\",\"url\":\"http://a/b\",\"sha256\":\"" SHA_A "\",\"fileName\":\"b\",\"appliedAt\":\"2025-11-27T05:20:00.000Z\"}}",
                  "previous: invalid version" },
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                back = (HotUpdateRecord) {};
                if (hotupdate_record_parse(bad[i].text, &back, err, sizeof err) != -EBADMSG ||
                    !streq(err, bad[i].reason)) {
                        fprintf(stderr, "record %zu: \"%s\"\n", i, err);
                        exit(1);
                }
        }
}

/* ---- /proc parsing and selection ---- */

static void test_game_parsers(void) {
        GameProc g = { .pid = 42 };
        GameSigMasks m;

        ASSERT_EQ(game_parse_stat("42 (nginx: master) S 1 42 42 0 -1 4194624 100 0 0 0 0 0 0 0 20 0 1 0 "
                                  "123456 10000 100 18446744073709551615",
                                  &g),
                  0);
        ASSERT_EQ(g.pid, 42);
        ASSERT_EQ(g.ppid, 1);
        ASSERT_EQ(g.state, 'S');
        ASSERT_EQ(g.start_ticks, 123456);
        /* A command name with spaces and a ')' in it. */
        ASSERT_EQ(game_parse_stat("7 (a) b) (c) Z 3 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 99 0", &g), 0);
        ASSERT_EQ(g.ppid, 3);
        ASSERT_EQ(g.state, 'Z');
        ASSERT_EQ(g.start_ticks, 99);
        ASSERT_EQ(game_parse_stat("7 (x) S 1 2 3", &g), -EBADMSG);
        ASSERT_EQ(game_parse_stat("garbage", &g), -EBADMSG);

        const char *status = "Name:\tnginx\nState:\tS (sleeping)\nSigQ:\t0/63460\n"
                             "SigPnd:\t0000000000000000\nShdPnd:\t0000000000000000\n"
                             "SigBlk:\t0000000000000000\nSigIgn:\t0000000000001000\n"
                             "SigCgt:\t0000000018016a07\nCapInh:\t0000000000000000\n";
        ASSERT_EQ(game_parse_signal_masks(status, &m), 0);
        ASSERT_EQ(m.caught, 0x18016a07);
        ASSERT_EQ(m.ignored, 0x1000);
        ASSERT_EQ(game_signal_disposition(&m, SIGHUP), GAME_SIGNAL_CAUGHT);     /* bit 0 */
        ASSERT_EQ(game_signal_disposition(&m, SIGPIPE), GAME_SIGNAL_IGNORED);   /* bit 12 */
        ASSERT_EQ(game_signal_disposition(&m, SIGUSR1), GAME_SIGNAL_CAUGHT);    /* 0x200 */
        ASSERT_EQ(game_signal_disposition(&m, SIGTSTP), GAME_SIGNAL_DEFAULT);
        GameSigMasks blocked = { .blocked = 1 };
        ASSERT_EQ(game_signal_disposition(&blocked, SIGHUP), GAME_SIGNAL_BLOCKED);
        GameSigMasks none = {};
        ASSERT_EQ(game_signal_disposition(&none, SIGHUP), GAME_SIGNAL_DEFAULT);
        ASSERT_EQ(game_signal_disposition(&none, 0), GAME_SIGNAL_DEFAULT);
        ASSERT_EQ(game_parse_signal_masks("SigBlk:\t0\nSigIgn:\t0\n", &m), -EBADMSG);
        ASSERT_EQ(game_parse_signal_masks("SigBlk:\tzz\nSigIgn:\t0\nSigCgt:\t0\n", &m), -EBADMSG);

        /* Two masters, each with two workers under the same title, and an unrelated match
         * whose parent is not a match: the masters and the unrelated one are kept. */
        GameProc procs[] = {
                { .pid = 10, .ppid = 1 },  { .pid = 11, .ppid = 10 }, { .pid = 12, .ppid = 10 },
                { .pid = 20, .ppid = 1 },  { .pid = 21, .ppid = 20 }, { .pid = 30, .ppid = 99 },
                { .pid = 31, .ppid = 21 },
        };
        size_t n = game_select_topmost(procs, ELEMENTSOF(procs));
        ASSERT_EQ(n, 3);
        ASSERT_EQ(procs[0].pid, 10);
        ASSERT_EQ(procs[1].pid, 20);
        ASSERT_EQ(procs[2].pid, 30);
        ASSERT_EQ(game_select_topmost(procs, 0), 0);
}

int main(void) {
        test_sha256();
        test_body_kind();
        test_percent_decode();
        test_form();
        test_json();
        test_finish();
        test_status_table();
        test_time();
        test_record();
        test_game_parsers();
        printf("ok\n");
        return 0;
}
