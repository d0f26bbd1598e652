/* libFuzzer target: the service_quality plugin's reader of the pod object okg-storaged hands
 * out (Storage1.GetPod), and RFC 3339 times. Properties: no crash or leak on any input; an
 * accepted pod names each container once and each of its ports; a time it accepts prints back
 * to the same instant. */
#include <time.h>

#include "fuzz.h"
#include "probed-sq.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *text = strndup((const char *) data, size);
        SqPod pod = {};
        uint64_t t;

        if (!text)
                return 0;
        if (sq_pod_parse((const char *) data, size, &pod) >= 0) {
                for (size_t i = 0; i < pod.n_containers; i++) {
                        FUZZ_ASSERT(pod.containers[i].name);
                        FUZZ_ASSERT(sq_pod_container(&pod, pod.containers[i].name) ==
                                    &pod.containers[i]);
                        for (size_t j = 0; j < pod.containers[i].n_ports; j++)
                                FUZZ_ASSERT(pod.containers[i].ports[j].name);
                }
                for (size_t i = 0; i < pod.n_conditions; i++)
                        FUZZ_ASSERT(pod.conditions[i].type && pod.conditions[i].status &&
                                    pod.conditions[i].message);
                sq_pod_done(&pod);
        }
        if (sq_parse_time(text, &t) >= 0) {
                time_t s = (time_t) (t / 1000000);
                struct tm tm;
                char buf[64];
                uint64_t back;
                FUZZ_ASSERT(gmtime_r(&s, &tm));
                FUZZ_ASSERT(strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm) > 0);
                FUZZ_ASSERT(sq_parse_time(buf, &back) == 0 && back == t / 1000000 * 1000000);
        }
        free(text);
        return 0;
}
