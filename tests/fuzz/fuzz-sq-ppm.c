/* libFuzzer target: the PodProbeMarkers' probes in the kruise.io/podprobe annotation's shape
 * (sq_ppm_probes()). Input: the pod object, a NUL byte, then a marker object as okg-storaged
 * hands it out. Properties: no crash or leak on any input; a usable result is a JSON array and
 * says which markers select the pod; the annotation's parser, given it, never finds two probes
 * of one condition type. */
#include <errno.h>

#include "fuzz.h"
#include "probed-sq.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const uint8_t *rest;
        size_t rest_size;
        char *pod_text = fuzz_split(data, size, 0, &rest, &rest_size), *text = NULL, *note = NULL;
        SqPpm ppm = { (char *) "game", (char *) "found", NULL };
        SqPod pod = {};
        SqProbes probes = {};
        char err[256];
        int r;

        if (!pod_text)
                return 0;
        ppm.text = strndup((const char *) rest, rest_size);
        if (ppm.text && sq_pod_parse(pod_text, strlen(pod_text), &pod) >= 0) {
                r = sq_ppm_probes(&ppm, 1, &pod, &text, &note, NULL);
                FUZZ_ASSERT(r == 0 || r == -EINVAL || r == -ENOMEM);
                if (r == 0) {
                        FUZZ_ASSERT(text && text[0] == '[' && note);
                        if (sq_probes_parse(text, strlen(text), &probes, err, sizeof err) >= 0) {
                                for (size_t i = 0; i < probes.n; i++)
                                        for (size_t j = i + 1; j < probes.n; j++)
                                                FUZZ_ASSERT(strcmp(probes.v[i].condition_type,
                                                                   probes.v[j].condition_type) != 0);
                                sq_probes_done(&probes);
                        }
                } else if (r == -EINVAL)
                        FUZZ_ASSERT(note && !text);
                free(text);
                free(note);
                sq_pod_done(&pod);
        }
        free(ppm.text);
        free(pod_text);
        return 0;
}
