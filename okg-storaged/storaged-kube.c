/* okg-storaged's classification of Kubernetes answers; see storaged-kube.h. */
#include "storaged-kube.h"

/* ---- classification ---- */

KubeOutcome kube_classify(CURLcode curl, long status) {
        if (curl != CURLE_OK || status == 0)
                return KUBE_RETRY;
        if (status >= 200 && status < 300)
                return KUBE_OK;
        if (status == 404)
                return KUBE_NOT_FOUND;
        if (status == 401 || status == 409 || status == 429 || status >= 500)
                return KUBE_RETRY;
        return KUBE_FATAL;
}

/* ---- the end of a watch ---- */

WatchEnd watch_end_decide(bool gone, long status, KubeOutcome outcome, uint64_t events,
                          uint64_t started_usec, uint64_t timeout_usec, uint64_t now_usec) {
        if (gone || status == 410)
                return WATCH_END_READ_AGAIN;
        if (outcome == KUBE_OK &&
            (events > 0 || (now_usec >= started_usec && now_usec - started_usec >= timeout_usec / 2)))
                return WATCH_END_REOPEN;
        if (outcome == KUBE_FATAL)
                return WATCH_END_REFUSED;
        return WATCH_END_BACKOFF;
}
