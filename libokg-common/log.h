/* Logging with systemd semantics: syslog priorities, "<N>" prefixes when stderr is a journal or
 * a pipe read by a supervisor, SYSTEMD_LOG_LEVEL, and a run-time changeable level and target
 * (exposed on the bus through org.freedesktop.LogControl1). */
#pragma once

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <syslog.h>

#include "macro.h"

typedef enum LogTarget {
        LOG_TARGET_CONSOLE,   /* stderr, plain text "ident[pid]: message" */
        LOG_TARGET_KMSG,      /* stderr with a "<N>" priority prefix, as systemd reads it */
        LOG_TARGET_NULL,
        _LOG_TARGET_MAX,
        _LOG_TARGET_INVALID = -EINVAL,
} LogTarget;

void log_setup(const char *ident);          /* reads SYSTEMD_LOG_LEVEL / SYSTEMD_LOG_TARGET */
/* For a command-line tool (okgctl): messages read "ident: message" on stderr, without a PID or
 * a "<N>" prefix, whatever SYSTEMD_LOG_TARGET says (except null); notices and worse unless
 * SYSTEMD_LOG_LEVEL says otherwise. May be called again to change the ident. */
void log_setup_cli(const char *ident);
int log_get_max_level(void);
void log_set_max_level(int level);
LogTarget log_get_target(void);
void log_set_target(LogTarget t);
const char *log_get_ident(void);

const char *log_level_to_string(int level);
int log_level_from_string(const char *s);   /* name ("debug") or number; -EINVAL otherwise */
const char *log_target_to_string(LogTarget t);
LogTarget log_target_from_string(const char *s);

/* "Control characters" here are every character that may split a line, drive a terminal or
 * make text read otherwise than it is, while showing nothing of itself:
 *   - C0 (U+0000-U+001F), DEL and C1 (U+0080-U+009F);
 *   - the line and paragraph separators U+2028, U+2029;
 *   - bidirectional controls: U+061C, U+200E, U+200F, U+202A-U+202E, U+2066-U+2069;
 *   - invisible format characters: U+00AD, U+180E, U+200B-U+200D, U+2060-U+206F, U+FEFF,
 *     U+FFF9-U+FFFB and the tags U+E0000-U+E007F.
 * Characters beyond ASCII count only in well-formed UTF-8. A log entry is one line of what it
 * says, whatever the text it carries (a state, a header, a URL from the network):
 * log_internal() escapes them in every message. Pure functions. */

/* The offset of the first control character in s[0..len), or -1 when there is none; its code
 * point in *ret_cp. */
ptrdiff_t okg_find_control(const char *s, size_t len, uint32_t *ret_cp);

/* What a control character found by okg_find_control() is, for a message: "control character"
 * (C0, DEL, C1), "line separator", "paragraph separator", "bidirectional control" or
 * "invisible format character". */
const char *okg_control_kind(uint32_t cp);

/* s with each control character written as \n, \r, \t, \xNN (C0, DEL), \uNNNN or \UNNNNNNNN
 * (beyond ASCII), into buf (always NUL-terminated; truncated at a whole character or escape
 * when buf is too small). Returns buf. Backslashes are kept as they are: the result is for
 * reading, not for parsing back. */
char *okg_escape_controls(const char *s, char *buf, size_t size);

/* The length of the well-formed multi-byte UTF-8 sequence at p (2 to 4 bytes, at most left)
 * and its code point; 0 for ASCII and for anything that is not well-formed UTF-8. */
size_t okg_utf8_decode(const unsigned char *p, size_t left, uint32_t *ret_cp);

/* Returns -abs(error) (or 0 when error is 0) so callers can `return log_error_errno(r, ...)`.
 * "%m" in the format expands to strerror(error). */
int log_internal(int level, int error, const char *file, int line, const char *func,
                 const char *format, ...) _printf_(6, 7);

#define log_full_errno(level, error, ...) \
        log_internal((level), (error), __FILE__, __LINE__, __func__, __VA_ARGS__)
#define log_full(level, ...) (void) log_full_errno((level), 0, __VA_ARGS__)

#define log_debug(...) log_full(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_full(LOG_INFO, __VA_ARGS__)
#define log_notice(...) log_full(LOG_NOTICE, __VA_ARGS__)
#define log_warning(...) log_full(LOG_WARNING, __VA_ARGS__)
#define log_error(...) log_full(LOG_ERR, __VA_ARGS__)

#define log_debug_errno(e, ...) log_full_errno(LOG_DEBUG, (e), __VA_ARGS__)
#define log_info_errno(e, ...) log_full_errno(LOG_INFO, (e), __VA_ARGS__)
#define log_notice_errno(e, ...) log_full_errno(LOG_NOTICE, (e), __VA_ARGS__)
#define log_warning_errno(e, ...) log_full_errno(LOG_WARNING, (e), __VA_ARGS__)
#define log_error_errno(e, ...) log_full_errno(LOG_ERR, (e), __VA_ARGS__)
#define log_oom() log_error_errno(ENOMEM, "Out of memory.")
