/* Applies the destination policy (hotupdated-policy.h) to a libcurl transfer, on the address
 * actually connected to: CURLOPT_OPENSOCKETFUNCTION refuses a socket for a refused address
 * (after name resolution, whatever the URL's spelling), CURLOPT_PREREQFUNCTION checks the
 * connected address and port again before every request is sent, so a redirect or a reused
 * connection cannot slip past. Proxies are switched off on the handle: the address checked
 * must be the server's. */
#pragma once

#include <curl/curl.h>
#include <stdbool.h>

#include "hotupdated-policy.h"

typedef struct Guard {
        const HotUpdatePolicy *policy;
        DestinationKind kind;
        CURL *easy;
        bool refused;                    /* the policy stopped this transfer */
        char reason[HOTUPDATE_POLICY_REASON_MAX];
} Guard;

/* Did the policy end the transfer that ended with result? (A refused address of several, with
 * another one connected, did not.) */
bool guard_stopped(const Guard *g, CURLcode result);

/* Sets the callbacks on easy and resets g. -EIO when libcurl does not take an option. */
int guard_attach(Guard *g, CURL *easy, const HotUpdatePolicy *policy, DestinationKind kind);
