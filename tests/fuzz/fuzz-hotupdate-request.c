/* libFuzzer target: okg-hotupdated's request parser, fed as POST /hot-update feeds it.
 * Input: "CONTENT-TYPE\nBODY" (no newline: the whole input is a form body without a
 * Content-Type). A request the parser accepts must satisfy every check a download and a file
 * write rely on. */
#include <errno.h>

#include "fuzz.h"
#include "hotupdated-request.h"

static void check_accepted(const HotUpdateParams *p) {
        HotUpdateParams copy = {};

        FUZZ_ASSERT(hotupdate_version_is_valid(p->version));
        FUZZ_ASSERT(p->url && !hotupdate_url_check(p->url));
        FUZZ_ASSERT(p->file_name && !hotupdate_file_name_check(p->file_name));
        FUZZ_ASSERT(!strchr(p->file_name, '/') && strcmp(p->file_name, "..") != 0);
        if (p->sha256) {
                FUZZ_ASSERT(hotupdate_sha256_is_valid(p->sha256));
                for (const char *c = p->sha256; *c; c++)
                        FUZZ_ASSERT((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f'));
        }
        if (hotupdate_params_copy(p, &copy) >= 0) {
                FUZZ_ASSERT(strcmp(copy.version, p->version) == 0 && strcmp(copy.url, p->url) == 0);
                hotupdate_params_done(&copy);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        HotUpdateParams p = {};
        char err[HOTUPDATE_ERR_MAX] = "";
        const uint8_t *body = data;
        size_t body_len = size;
        char *content_type = fuzz_split(data, size, '\n', &body, &body_len);
        HotUpdateBodyKind kind = hotupdate_body_kind(content_type);
        char *decoded = NULL;
        size_t decoded_len;
        int r;

        if (body_len > HOTUPDATE_MAX_BODY)
                goto out;        /* refused with 413 before parsing */

        if (kind == BODY_JSON)
                r = hotupdate_parse_json((const char *) body, body_len, &p, err, sizeof err);
        else if (kind == BODY_FORM)
                r = hotupdate_parse_form((const char *) body, body_len, &p, err, sizeof err);
        else
                goto out;        /* refused with 415 */
        if (r >= 0)
                r = hotupdate_params_finish(&p, err, sizeof err);
        if (r >= 0)
                check_accepted(&p);
        else if (r == -EINVAL)
                FUZZ_ASSERT(err[0] && strlen(err) < sizeof err && !strchr(err, '\n'));

        /* The decoder alone, both ways of reading '+'. */
        for (int plus = 0; plus < 2; plus++)
                if (hotupdate_percent_decode((const char *) body, body_len, plus, &decoded,
                                             &decoded_len) >= 0) {
                        FUZZ_ASSERT(decoded_len <= body_len && decoded[decoded_len] == 0);
                        free(decoded);
                }
out:
        hotupdate_params_done(&p);
        free(content_type);
        return 0;
}
