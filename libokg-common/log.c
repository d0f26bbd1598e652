/* Logging to stderr with syslog priorities; see log.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "okg-string-table.h"

static int max_level = LOG_INFO;
static LogTarget target = LOG_TARGET_CONSOLE;
static char ident[64] = "okg";
static bool cli;

static const char *const log_level_table[] = {
        [LOG_EMERG] = "emerg",   [LOG_ALERT] = "alert", [LOG_CRIT] = "crit",
        [LOG_ERR] = "err",       [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice",
        [LOG_INFO] = "info",     [LOG_DEBUG] = "debug",
};

static const char *const log_target_table[_LOG_TARGET_MAX] = {
        [LOG_TARGET_CONSOLE] = "console",
        [LOG_TARGET_KMSG] = "kmsg",
        [LOG_TARGET_NULL] = "null",
};

DEFINE_STRING_TABLE_LOOKUP_TO_STRING(log_level, int);
DEFINE_STRING_TABLE_LOOKUP_TO_STRING(log_target, LogTarget);

int log_level_from_string(const char *s) {
        ssize_t i = okg_string_table_lookup(log_level_table, ELEMENTSOF(log_level_table), s, false);

        if (i >= 0 || !s)
                return (int) i;
        if (streq(s, "error"))
                return LOG_ERR;
        if (s[0] >= '0' && s[0] <= '7' && s[1] == 0)
                return s[0] - '0';
        return -EINVAL;
}

LogTarget log_target_from_string(const char *s) {
        ssize_t i = okg_string_table_lookup(log_target_table, ELEMENTSOF(log_target_table), s, false);

        if (i >= 0 || !s)
                return (LogTarget) i;
        /* systemd's other targets all end up on our stderr; accept them so scripts written
         * for systemd daemons keep working. */
        if (streq(s, "auto") || streq(s, "journal") || streq(s, "journal-or-kmsg") ||
            streq(s, "syslog") || streq(s, "syslog-or-kmsg"))
                return LOG_TARGET_KMSG;
        return _LOG_TARGET_INVALID;
}

void log_setup(const char *id) {
        const char *e;

        if (id)
                snprintf(ident, sizeof ident, "%s", id);
        e = getenv("SYSTEMD_LOG_LEVEL");
        if (e && log_level_from_string(e) >= 0)
                max_level = log_level_from_string(e);
        e = getenv("SYSTEMD_LOG_TARGET");
        if (e && log_target_from_string(e) >= 0)
                target = log_target_from_string(e);
}

void log_setup_cli(const char *id) {
        const char *e = getenv("SYSTEMD_LOG_LEVEL");

        if (!cli && !(e && log_level_from_string(e) >= 0))
                max_level = LOG_NOTICE;
        cli = true;
        log_setup(id);
}

int log_get_max_level(void) { return max_level; }
void log_set_max_level(int level) { max_level = level; }
LogTarget log_get_target(void) { return target; }
void log_set_target(LogTarget t) { target = t; }
const char *log_get_ident(void) { return ident; }

/* The length of the well-formed UTF-8 sequence at p (2 to 4 bytes) and its code point, or 0 when
 * p starts no such sequence (ASCII, a stray or cut byte, overlong, surrogate, beyond U+10FFFF). */
static size_t utf8_decode(const unsigned char *p, size_t left, uint32_t *ret_cp) {
        static const uint32_t min_cp[5] = { 0, 0, 0x80, 0x800, 0x10000 };
        size_t n;
        uint32_t cp;

        if (p[0] >= 0xc2 && p[0] <= 0xdf)
                n = 2, cp = p[0] & 0x1f;
        else if (p[0] >= 0xe0 && p[0] <= 0xef)
                n = 3, cp = p[0] & 0x0f;
        else if (p[0] >= 0xf0 && p[0] <= 0xf4)
                n = 4, cp = p[0] & 0x07;
        else
                return 0;
        if (left < n)
                return 0;
        for (size_t i = 1; i < n; i++) {
                if ((p[i] & 0xc0) != 0x80)
                        return 0;
                cp = (cp << 6) | (p[i] & 0x3f);
        }
        if (cp < min_cp[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
                return 0;
        *ret_cp = cp;
        return n;
}

static bool is_bidi_control(uint32_t cp) {
        return cp == 0x061c || cp == 0x200e || cp == 0x200f || (cp >= 0x202a && cp <= 0x202e) ||
               (cp >= 0x2066 && cp <= 0x2069);
}

/* Format characters that show nothing yet change what text says or how it reads: a "Ready"
 * with one of them inside looks like "Ready" and is not. */
static bool is_invisible_format(uint32_t cp) {
        return cp == 0x00ad ||                    /* soft hyphen */
               cp == 0x180e ||                    /* Mongolian vowel separator */
               (cp >= 0x200b && cp <= 0x200d) ||  /* zero width space, non-joiner, joiner */
               (cp >= 0x2060 && cp <= 0x206f) ||  /* word joiner, invisible operators, deprecated */
               cp == 0xfeff ||                    /* zero width no-break space (BOM) */
               (cp >= 0xfff9 && cp <= 0xfffb) ||  /* interlinear annotation */
               (cp >= 0xe0000 && cp <= 0xe007f);  /* tags */
}

static bool is_unsafe(uint32_t cp) {
        return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp == 0x2028 || cp == 0x2029 ||
               is_bidi_control(cp) || is_invisible_format(cp);
}

static size_t control_len(const unsigned char *p, size_t left, uint32_t *ret_cp) {
        uint32_t cp;
        size_t n;

        if (p[0] < 0x80) {
                cp = p[0];
                n = 1;
        } else
                n = utf8_decode(p, left, &cp);
        if (n == 0 || !is_unsafe(cp))
                return 0;
        *ret_cp = cp;
        return n;
}

const char *okg_control_kind(uint32_t cp) {
        if (cp == 0x2028)
                return "line separator";
        if (cp == 0x2029)
                return "paragraph separator";
        if (is_bidi_control(cp))
                return "bidirectional control";
        if (is_invisible_format(cp))
                return "invisible format character";
        return "control character";
}

ptrdiff_t okg_find_control(const char *s, size_t len, uint32_t *ret_cp) {
        const unsigned char *p = (const unsigned char *) s;

        for (size_t i = 0; i < len; i++) {
                uint32_t cp;
                if (control_len(p + i, len - i, &cp) > 0) {
                        if (ret_cp)
                                *ret_cp = cp;
                        return (ptrdiff_t) i;
                }
        }
        return -1;
}

char *okg_escape_controls(const char *s, char *buf, size_t size) {
        const unsigned char *p = (const unsigned char *) (s ?: "");
        size_t left = strlen((const char *) p), o = 0;

        if (size == 0)
                return buf;
        while (left > 0) {
                char esc[12];
                uint32_t cp;
                size_t n = control_len(p, left, &cp), w;

                if (n == 0) {
                        esc[0] = (char) *p;
                        esc[1] = 0;
                        n = 1;
                } else if (cp == '\n' || cp == '\r' || cp == '\t')
                        snprintf(esc, sizeof esc, "\\%c", cp == '\n' ? 'n' : cp == '\r' ? 'r' : 't');
                else
                        snprintf(esc, sizeof esc,
                                 n == 1 ? "\\x%02x" : cp <= 0xffff ? "\\u%04x" : "\\U%08x",
                                 (unsigned) cp);
                w = strlen(esc);
                if (o + w >= size)
                        break;
                memcpy(buf + o, esc, w);
                o += w;
                p += n;
                left -= n;
        }
        buf[o] = 0;
        return buf;
}

int log_internal(int level, int error, const char *file, int line, const char *func,
                 const char *format, ...) {
        char buf[2048], text[4096];
        va_list ap;
        int saved = errno;

        error = error < 0 ? -error : error;
        if (level > max_level || target == LOG_TARGET_NULL)
                return -error;

        /* glibc expands %m from errno, which we point at the error being logged. */
        errno = error;
        va_start(ap, format);
        vsnprintf(buf, sizeof buf, format, ap);
        va_end(ap);
        /* One entry, one line: a value from the network must not forge another entry or drive
         * the terminal. */
        okg_escape_controls(buf, text, sizeof text);

        if (cli && max_level >= LOG_DEBUG)
                fprintf(stderr, "%s: %s (%s:%i %s)\n", ident, text, file, line, func);
        else if (cli)
                fprintf(stderr, "%s: %s\n", ident, text);
        else if (target == LOG_TARGET_KMSG)
                fprintf(stderr, "<%i>%s[%i]: %s\n", level, ident, (int) getpid(), text);
        else if (max_level >= LOG_DEBUG)
                fprintf(stderr, "%s[%i]: %s (%s:%i %s)\n", ident, (int) getpid(), text, file,
                        line, func);
        else
                fprintf(stderr, "%s[%i]: %s\n", ident, (int) getpid(), text);

        errno = saved;
        return -error;
}

size_t okg_utf8_decode(const unsigned char *p, size_t left, uint32_t *ret_cp) {
        return left > 0 ? utf8_decode(p, left, ret_cp) : 0;
}
