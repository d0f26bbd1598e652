/* okg-storaged's view of Kubernetes answers; the client itself is libokg-common's okg-kube.h. */
#pragma once

#include "okg-kube.h"

/* Classification of an answer for the write discipline. Pure. */
typedef enum KubeOutcome {
        KUBE_OK,            /* 2xx */
        KUBE_RETRY,         /* network error, 429, 5xx, 401 (token may rotate), 409 */
        KUBE_NOT_FOUND,     /* 404 */
        KUBE_FATAL,         /* any other 4xx: reported, not retried */
} KubeOutcome;
KubeOutcome kube_classify(CURLcode curl, long status);

/* What to do when a watch (of the pod, of a PodProbeMarker) has ended. Pure. */
typedef enum WatchEnd {
        WATCH_END_READ_AGAIN,  /* the object went away or the watch got 410 Gone: list/get anew */
        WATCH_END_REOPEN,      /* a sound end: open the watch again now */
        WATCH_END_REFUSED,     /* refused (KUBE_FATAL): try again after the long "refused" delay */
        WATCH_END_BACKOFF,     /* anything else: try again after the usual backoff */
} WatchEnd;
/* gone: the object was deleted during the watch; status/outcome: the watch's answer and its
 * kube_classify(); events: how many it delivered; started_usec/timeout_usec: when it was opened
 * and the timeout it asked for; now_usec: the same clock. A watch that ended OK without an event
 * long before its timeout (less than half of it) is suspect, as from a proxy that closes it at
 * once, and is not reopened at once so that it cannot turn into a loop. */
WatchEnd watch_end_decide(bool gone, long status, KubeOutcome outcome, uint64_t events,
                          uint64_t started_usec, uint64_t timeout_usec, uint64_t now_usec);
