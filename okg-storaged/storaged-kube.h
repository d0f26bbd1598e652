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
