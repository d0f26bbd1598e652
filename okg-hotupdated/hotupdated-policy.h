/* What a hot update may reach and replace: the destination policy (checked on the address
 * actually connected to, see hotupdated-guard.c), the source URL prefixes and the fileName
 * globs. Pure: parsing and matching only, so the config loader, the unit tests and the fuzzer
 * share it. docs/hot-update.md, "Security", says what each part stops. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "okg-yaml.h"

#define HOTUPDATE_POLICY_REASON_MAX 256U
#define HOTUPDATE_POLICY_MAX_OWN_PORTS 4U

/* A network: AF_INET or AF_INET6, the address in network order, the prefix length. IPv4 is
 * kept as 4 bytes; IPv4-mapped IPv6 addresses are turned into IPv4 before matching. */
typedef struct NetPrefix {
        int family;
        uint8_t addr[16];
        unsigned prefix;
} NetPrefix;

typedef enum DestinationKind {
        DESTINATION_DOWNLOAD,    /* the URL a client asked for, and every redirect */
        DESTINATION_GAME,        /* the reload request and postReloadCheck (operator's config) */
} DestinationKind;

typedef struct HotUpdatePolicy {
        NetPrefix *allowed;              /* allowedDestinations */
        size_t n_allowed;
        NetPrefix *denied;               /* deniedDestinations */
        size_t n_denied;
        char **sources;                  /* allowedSources: URL prefixes; NULL: any */
        size_t n_sources;
        char **file_globs;               /* allowedFileNames: fnmatch(3) globs; NULL: any */
        size_t n_file_globs;
        uint16_t own_ports[HOTUPDATE_POLICY_MAX_OWN_PORTS];   /* the suite's own ports */
        size_t n_own_ports;
} HotUpdatePolicy;

void hotupdate_policy_done(HotUpdatePolicy *p);
/* Adds a port of the suite (hotupdated's own, okg-sidecard's health port) once. */
void hotupdate_policy_add_own_port(HotUpdatePolicy *p, uint16_t port);

/* "10.0.0.0/8", "fe80::/10", or an address alone (a /32 or /128). Host bits must be zero.
 * NULL on success, else why not (static text). */
const char *net_prefix_parse(const char *s, NetPrefix *ret);
bool net_prefix_contains(const NetPrefix *p, int family, const uint8_t *addr);

/* The networks refused unless allowedDestinations names them: link-local, unspecified, and
 * the cloud metadata addresses outside link-local. */
extern const char *const hotupdate_default_denied[];

/* May a connection to family/addr (network order; 4 or 16 bytes) port go ahead? is_local:
 * the address is this host's own (loopback or an interface address), where the suite's own
 * ports are. NULL when allowed, else the reason in buf. */
const char *hotupdate_policy_check_destination(const HotUpdatePolicy *p, DestinationKind kind,
                                               int family, const uint8_t *addr, uint16_t port,
                                               bool is_local, char *buf, size_t size);
/* NULL when url starts with one of allowedSources (or there is no list) and carries no
 * credentials (user:password@, even empty ones; refused with or without a list), else why not. */
const char *hotupdate_policy_check_source(const HotUpdatePolicy *p, const char *url, char *buf,
                                          size_t size);
/* NULL when name matches one of allowedFileNames (or there is no list), else why not. */
const char *hotupdate_policy_check_file_name(const HotUpdatePolicy *p, const char *name,
                                             char *buf, size_t size);

/* Reads allowedDestinations, deniedDestinations, allowedSources and allowedFileNames from the
 * hot_update config mapping m (path is its key path) into p. Errors are added to e with
 * file:line:key; returns -ENOMEM only, the caller counts errors. */
int hotupdate_policy_parse(const OkgNode *m, const char *file, const char *path, OkgErrors *e,
                           HotUpdatePolicy *p);

/* Which protections are on, for status, the bus and /metrics: names in the order of
 * hotupdate_protection_names, on[i] for each. */
typedef enum HotUpdateProtection {
        PROTECTION_AUTH_TOKEN,            /* authTokenFile */
        PROTECTION_LOOPBACK_ONLY,         /* bindAddress is a loopback address */
        PROTECTION_DESTINATION_DEFAULTS,  /* always: link-local, unspecified, own ports */
        PROTECTION_ALLOWED_DESTINATIONS,
        PROTECTION_DENIED_DESTINATIONS,
        PROTECTION_ALLOWED_SOURCES,
        PROTECTION_ALLOWED_FILE_NAMES,
        _PROTECTION_MAX,
} HotUpdateProtection;

extern const char *const hotupdate_protection_names[_PROTECTION_MAX];
void hotupdate_policy_protections(const HotUpdatePolicy *p, bool have_token,
                                  const char *bind_address, bool on[_PROTECTION_MAX]);
/* Anyone who reaches the port can ask for any URL: it listens beyond loopback with neither a
 * token nor allowedSources. The daemon warns at start. */
bool hotupdate_policy_is_open(const HotUpdatePolicy *p, bool have_token, const char *bind_address);
