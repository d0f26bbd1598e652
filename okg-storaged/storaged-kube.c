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
