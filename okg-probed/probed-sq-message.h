/* The service_quality plugin's failure messages: what Kruise's node daemon writes when an
 * httpGet or tcpSocket probe fails (Go's net and net/http error texts, through kubelet's
 * probers), built from the facts our curl transfer or connect gave. Pure logic, no I/O. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/* The facts of one failed dial or HTTP exchange. Strings may be NULL when not known. */
typedef struct SqNetFacts {
        int curl_code;          /* the transfer's CURLcode; 0 for our own connect() */
        int os_errno;           /* the socket error (CURLINFO_OS_ERRNO), 0 if none */
        bool timed_out;         /* the probe's timeout ended it */
        bool connected;         /* a TCP connection was made, or a kept-alive one taken */
        bool got_headers;       /* the response's status line and headers arrived */
        const char *url;        /* httpGet: the URL requested; NULL for tcpSocket */
        const char *host;       /* the host as the probe names it (for a lookup error) */
        const char *remote;     /* "IP:PORT" dialled ("[IP]:PORT" for IPv6) */
        const char *local;      /* "IP:PORT" of our end of the connection */
        const char *nameserver; /* "IP:53" of the resolver asked (Go's pure resolver says it) */
        const char *tls_error;  /* curl's error text for a TLS failure (or the client's text
                                 * for a refused transfer coding) */
} SqNetFacts;

/* Whether a curl transfer that ended with curl_code talked over a connection: one it made
 * (its connect time is set) or one kept alive from an earlier transfer (curl made no socket for
 * it, yet it has the peer's address; its connect time is 0 then). A failed lookup or connect,
 * or a deadline before any socket or address, had none. */
bool sq_transfer_connected(int curl_code, int64_t connect_us, bool opened_socket,
                           const char *primary_ip);

/* Go's text for a socket errno (syscall.Errno.Error()): lower case, as Go's table has it. */
const char *sq_go_errno_text(int error, char *buf, unsigned size);

/* The message for a failed httpGet: "Get \"URL\": ..." as Go's http.Client says it.
 * Returns 1 and *ret_message, 0 when Kruise writes no result for this failure (a body that
 * broke off after the headers: kubelet's prober returns an error, Kruise drops the probe
 * round), -ENOMEM. */
int sq_http_failure_message(const SqNetFacts *f, char **ret_message);

/* The message for a failed tcpSocket: "dial tcp ...". 1 and *ret_message, or -ENOMEM. */
int sq_tcp_failure_message(const SqNetFacts *f, char **ret_message);

/* The resolver Go's pure resolver asks first, from resolv.conf text: "IP:53", "[IP6]:53";
 * Go's default "127.0.0.1:53" when there is none. NULL only when out of memory. */
char *sq_resolv_nameserver(const char *resolv_conf);

/* An address as Go prints it: "IP:PORT", "[IP6]:PORT". NULL when out of memory. */
char *sq_host_port(const char *ip, long port);

/* The host of an absolute URL as Go's URL.Hostname() gives it (no port, no brackets), into
 * buf. Returns buf, or NULL when url has none or it does not fit. */
char *sq_url_hostname(const char *url, char *buf, unsigned size);

/* The port of an absolute URL: its own, else the scheme's (80, 443). 0 when none. */
long sq_url_port(const char *url);
