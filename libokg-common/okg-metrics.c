/* Prometheus text format; see okg-metrics.h. */
#include <errno.h>
#include <stdlib.h>

#include "macro.h"
#include "okg-metrics.h"

int okg_metrics_begin(OkgMetrics *m) {
        *m = (OkgMetrics) {};
        m->f = open_memstream(&m->buf, &m->len);
        return m->f ? 0 : -ENOMEM;
}

static void help_escape(FILE *f, const char *s) {
        for (; *s; s++) {
                if (*s == '\\')
                        fputs("\\\\", f);
                else if (*s == '\n')
                        fputs("\\n", f);
                else
                        fputc(*s, f);
        }
}

void okg_metrics_escape(FILE *f, const char *s) {
        for (; s && *s; s++) {
                if (*s == '\\')
                        fputs("\\\\", f);
                else if (*s == '"')
                        fputs("\\\"", f);
                else if (*s == '\n')
                        fputs("\\n", f);
                else
                        fputc(*s, f);
        }
}

void okg_metrics_family(OkgMetrics *m, const char *name, const char *type, const char *help) {
        fprintf(m->f, "# HELP %s ", name);
        help_escape(m->f, help);
        fprintf(m->f, "\n# TYPE %s %s\n", name, type);
}

void okg_metrics_sample(OkgMetrics *m, const char *name, const char *const *labels, double value) {
        fputs(name, m->f);
        if (labels && labels[0]) {
                fputc('{', m->f);
                for (size_t i = 0; labels[i] && labels[i + 1]; i += 2) {
                        fprintf(m->f, "%s%s=\"", i ? "," : "", labels[i]);
                        okg_metrics_escape(m->f, labels[i + 1]);
                        fputc('"', m->f);
                }
                fputc('}', m->f);
        }
        if (__builtin_isnan(value))
                fputs(" NaN\n", m->f);
        else if (value == (double) (int64_t) value)
                fprintf(m->f, " %lld\n", (long long) value);
        else
                fprintf(m->f, " %.17g\n", value);
}

int okg_metrics_end(OkgMetrics *m, char **ret) {
        if (fclose(m->f) != 0) {
                free(m->buf);
                return -ENOMEM;
        }
        *ret = m->buf;
        *m = (OkgMetrics) {};
        return 0;
}
