/* libFuzzer target: okg-hotupdated's recovery record, read back from the result ConfigMap at
 * start (possibly written by another pod of the fleet). A record it accepts must survive
 * format -> parse -> format unchanged, and carry only values a request could carry. */
#include <errno.h>

#include "fuzz.h"
#include "hotupdated-record.h"
#include "hotupdated-request.h"

static void check_version(const HotUpdateVersion *v) {
        if (!hotupdate_version_is_set(v))
                return;
        FUZZ_ASSERT(hotupdate_version_is_valid(v->version));
        FUZZ_ASSERT(v->url && !hotupdate_url_check(v->url));
        FUZZ_ASSERT(hotupdate_sha256_is_valid(v->sha256));
        FUZZ_ASSERT(v->file_name && !hotupdate_file_name_check(v->file_name));
        FUZZ_ASSERT(hotupdate_time_is_valid(v->applied_at));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        HotUpdateRecord rec = {}, again = {};
        char err[HOTUPDATE_ERR_MAX] = "", *text = strndup((const char *) data, size);
        char *first = NULL, *second = NULL, *annotation = NULL;
        int r;

        if (!text)
                return 0;
        r = hotupdate_record_parse(text, &rec, err, sizeof err);
        if (r < 0) {
                FUZZ_ASSERT(r != -EBADMSG || err[0]);
                goto out;
        }
        check_version(&rec.current);
        check_version(&rec.previous);

        if (hotupdate_record_format(&rec, &first) < 0)
                goto out;
        r = hotupdate_record_parse(first, &again, err, sizeof err);
        if (r < 0)
                fprintf(stderr, "formatted record refused (%s): %s\n", err, first);
        FUZZ_ASSERT(r >= 0 || r == -ENOMEM);
        if (r < 0)
                goto out;
        if (hotupdate_record_format(&again, &second) < 0)
                goto out;
        if (strcmp(first, second) != 0)
                fprintf(stderr, "first:  %s\nsecond: %s\n", first, second);
        FUZZ_ASSERT(strcmp(first, second) == 0);

        if (rec.last.at)
                (void) hotupdate_annotation_format(&rec.last, &annotation);
out:
        hotupdate_record_done(&rec);
        hotupdate_record_done(&again);
        free(text);
        free(first);
        free(second);
        free(annotation);
        return 0;
}
