/* Turning one HTTP answer into a probe result: the status check, the body read as a state
 * (trimmed, capped like kubelet's), optionally a field of a JSON body. Pure: no I/O. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* kubelet reads at most 10 KiB of a probe's body; so do we. */
#define PROBE_BODY_MAX ((size_t) 10240)

typedef enum ProbeOutcome {
        PROBE_OUTCOME_NONE,            /* not probed yet */
        PROBE_OUTCOME_SUCCESS,
        PROBE_OUTCOME_TIMEOUT,         /* no complete answer within the endpoint's timeout */
        PROBE_OUTCOME_CONNECT_ERROR,   /* name not resolved, connection refused or reset */
        PROBE_OUTCOME_HTTP_ERROR,      /* any other transport or protocol error */
        PROBE_OUTCOME_BAD_STATUS,      /* an answer with a status that does not count as success */
        PROBE_OUTCOME_BAD_BODY,        /* a good status, but no state could be read from the body */
        _PROBE_OUTCOME_MAX,
} ProbeOutcome;

/* "none", "success", "timeout", "connect-error", "http-error", "bad-status", "bad-body". */
const char *probe_outcome_to_string(ProbeOutcome o);

static inline bool probe_outcome_is_failure(ProbeOutcome o) {
        return o > PROBE_OUTCOME_SUCCESS;
}

/* expected > 0: exactly that status; else 200-399, as kubelet counts success. */
bool probe_status_ok(long status, int expected);

/* kubelet follows at most 10 redirects of a probe; so do we. */
#define PROBE_MAX_REDIRECTS 10u

static inline bool probe_status_is_redirect(long status) {
        return status >= 300 && status <= 399;
}

/* Where a probe of from_url goes after a 3xx answer whose Location curl resolved to location
 * (NULL when the answer had none), after `redirects` redirects already followed. Like kubelet:
 * only to the same host name (the port and http/https may change), at most PROBE_MAX_REDIRECTS.
 * Unlike kubelet, a redirect that is not followed is a failed probe, never a success: its page
 * is not a state. Returns 0 and the URL to request next, or a negative errno with a one-line
 * reason in err (which never shows credentials, query or fragment of location):
 *   -ENOENT     no Location
 *   -EREMOTE    another host
 *   -EPROTONOSUPPORT  a scheme other than http or https, credentials (user:password@), or a
 *               URL curl cannot parse
 *   -EMLINK     more than PROBE_MAX_REDIRECTS
 *   -ENOMEM */
int probe_redirect_next(const char *from_url, long status, const char *location,
                        unsigned redirects, char **ret_next, char *err, size_t err_size);

/* Whether the request after a redirect keeps its method and body: 307 and 308 keep them; after
 * 301, 302 and 303 anything but GET and HEAD becomes a GET without a body (what HTTP clients,
 * kubelet's too, do). */
bool probe_redirect_keeps_method(long status, const char *method);

/* The body without leading and trailing whitespace (space, tab, CR, LF, VT, FF): a pointer
 * into body and the length. */
const char *probe_body_trim(const char *body, size_t len, size_t *ret_len);

/* Whether s[0..len) is valid UTF-8 without NUL bytes: what a state must be to travel over the
 * bus and into Kubernetes objects. */
bool probe_utf8_valid(const char *s, size_t len);

/* The state the body carries. Without json_path, the trimmed body; with json_path, the value
 * at that dotted path of a JSON body (a segment of digits indexes an array): a string as is,
 * a number or boolean as its JSON text. Returns 0 and a new string, or a negative errno with a
 * one-line reason in err:
 *   -EBADMSG  not JSON, not UTF-8, contains NUL, or the state contains a control character
 *             (C0, DEL, C1, a line or paragraph separator, a bidirectional control or an
 *             invisible format character, see okg_find_control(): a state is one line of
 *             printable text)
 *   -ENOENT   the path names nothing in the document
 *   -EMEDIUMTYPE the value at the path is null, an object or an array
 *   -ENOMEM */
int probe_body_state(const char *body, size_t len, const char *json_path, char **ret_state,
                     char *err, size_t err_size);
