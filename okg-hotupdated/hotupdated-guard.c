/* libcurl hooks for the destination policy; see hotupdated-guard.h. */
#define _GNU_SOURCE 1

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "hotupdated-guard.h"
#include "hotupdated-request.h"
#include "log.h"
#include "macro.h"

static bool own_port(const HotUpdatePolicy *p, uint16_t port) {
        for (size_t i = 0; i < p->n_own_ports; i++)
                if (p->own_ports[i] == port)
                        return true;
        return false;
}

/* Loopback, or an address of one of this host's interfaces (the pod's own IP). */
static bool address_is_local(int family, const uint8_t *addr) {
        static const uint8_t loop6[16] = { [15] = 1 };
        struct ifaddrs *list = NULL;
        bool found = false;

        if ((family == AF_INET && addr[0] == 127) ||
            (family == AF_INET6 && memcmp(addr, loop6, 16) == 0))
                return true;
        if (getifaddrs(&list) < 0)
                return true;   /* cannot tell: assume the worst */
        for (struct ifaddrs *i = list; i && !found; i = i->ifa_next) {
                if (!i->ifa_addr || i->ifa_addr->sa_family != family)
                        continue;
                if (family == AF_INET)
                        found = memcmp(&((struct sockaddr_in *) i->ifa_addr)->sin_addr, addr, 4) == 0;
                else
                        found = memcmp(&((struct sockaddr_in6 *) i->ifa_addr)->sin6_addr, addr, 16) == 0;
        }
        freeifaddrs(list);
        return found;
}

/* NULL when the connection may go ahead; else the reason is in g->reason. */
static const char *check(Guard *g, int family, const uint8_t *addr, uint16_t port) {
        bool local = own_port(g->policy, port) && address_is_local(family, addr);
        const char *why = hotupdate_policy_check_destination(g->policy, g->kind, family, addr,
                                                             port, local, g->reason,
                                                             sizeof g->reason);
        if (why) {
                g->refused = true;
                log_warning("Refused a connection: %s.", why);
        }
        return why;
}

static curl_socket_t on_open_socket(void *userdata, curlsocktype purpose,
                                    struct curl_sockaddr *a) {
        Guard *g = userdata;
        const uint8_t *addr;
        uint16_t port;

        if (purpose != CURLSOCKTYPE_IPCXN)
                goto refuse;
        if (a->family == AF_INET && a->addrlen >= sizeof(struct sockaddr_in)) {
                const struct sockaddr_in *in = (const struct sockaddr_in *) &a->addr;
                addr = (const uint8_t *) &in->sin_addr;
                port = ntohs(in->sin_port);
        } else if (a->family == AF_INET6 && a->addrlen >= sizeof(struct sockaddr_in6)) {
                const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *) &a->addr;
                addr = (const uint8_t *) &in6->sin6_addr;
                port = ntohs(in6->sin6_port);
        } else
                goto refuse;
        if (check(g, a->family, addr, port))
                return CURL_SOCKET_BAD;
        return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);

refuse:
        g->refused = true;
        snprintf(g->reason, sizeof g->reason, "not a TCP connection over IPv4 or IPv6");
        return CURL_SOCKET_BAD;
}

static int on_prereq(void *userdata, char *primary_ip, char *local_ip, int primary_port,
                     int local_port) {
        Guard *g = userdata;
        char ip[INET6_ADDRSTRLEN + 1], *pct;
        uint8_t addr[16];
        int family;

        snprintf(ip, sizeof ip, "%s", primary_ip ? primary_ip : "");
        pct = strchr(ip, '%');     /* fe80::1%eth0 */
        if (pct)
                *pct = 0;
        if (inet_pton(AF_INET, ip, addr) == 1)
                family = AF_INET;
        else if (inet_pton(AF_INET6, ip, addr) == 1)
                family = AF_INET6;
        else {
                g->refused = true;
                snprintf(g->reason, sizeof g->reason, "cannot tell the connected address (%s)",
                         ip);
                return CURL_PREREQFUNC_ABORT;
        }
        if (primary_port < 0 || primary_port > 65535 ||
            check(g, family, addr, (uint16_t) primary_port))
                return CURL_PREREQFUNC_ABORT;

        /* Every URL of a redirect chain must be one of allowedSources, not just the first, and
         * none may carry credentials (the request's own URL cannot). Checked here, connected but
         * before the request is sent: libcurl would send a redirect's user:password. */
        if (g->kind == DESTINATION_DOWNLOAD) {
                char *url = NULL, shown[HOTUPDATE_SHOWN_URL_MAX];
                if (curl_easy_getinfo(g->easy, CURLINFO_EFFECTIVE_URL, &url) != CURLE_OK ||
                    hotupdate_policy_check_source(g->policy, url, g->reason, sizeof g->reason)) {
                        if (!url)
                                snprintf(g->reason, sizeof g->reason, "cannot tell the URL");
                        g->refused = true;
                        log_warning("Refused a redirect to %s: %s.",
                                    hotupdate_url_shown(url, shown, sizeof shown) ?: "?",
                                    g->reason);
                        return CURL_PREREQFUNC_ABORT;
                }
        }
        return CURL_PREREQFUNC_OK;
}

bool guard_stopped(const Guard *g, CURLcode result) {
        return g->refused && (result == CURLE_COULDNT_CONNECT || result == CURLE_ABORTED_BY_CALLBACK);
}

int guard_attach(Guard *g, CURL *easy, const HotUpdatePolicy *policy, DestinationKind kind) {
        *g = (Guard) { .policy = policy, .kind = kind, .easy = easy };

        if (curl_easy_setopt(easy, CURLOPT_PROXY, "") != CURLE_OK ||
            curl_easy_setopt(easy, CURLOPT_OPENSOCKETFUNCTION, on_open_socket) != CURLE_OK ||
            curl_easy_setopt(easy, CURLOPT_OPENSOCKETDATA, g) != CURLE_OK ||
            curl_easy_setopt(easy, CURLOPT_PREREQFUNCTION, on_prereq) != CURLE_OK ||
            curl_easy_setopt(easy, CURLOPT_PREREQDATA, g) != CURLE_OK)
                return -EIO;
        return 0;
}
