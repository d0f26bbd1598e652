/* okgctl fleet's pure logic; see fleet-logic.h. */
#include <ctype.h>
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fleet-logic.h"
#include "macro.h"

void fleet_annotation_done(FleetAnnotation *a) {
        free(a->version);
        free(a->current_version);
        free(a->state);
        free(a->message);
        free(a->at);
        *a = (FleetAnnotation) {};
}

static int dup_member(json_object *o, const char *key, char **ret) {
        json_object *v;

        *ret = NULL;
        if (!json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null))
                return 0;
        if (!json_object_is_type(v, json_type_string))
                return -EBADMSG;
        *ret = strdup(json_object_get_string(v));
        return *ret ? 0 : -ENOMEM;
}

int fleet_annotation_parse(const char *json, FleetAnnotation *a) {
        json_object *o, *v;
        int r = 0;

        *a = (FleetAnnotation) {};
        if (!json)
                return -EBADMSG;
        o = json_tokener_parse(json);
        if (!o || !json_object_is_type(o, json_type_object)) {
                json_object_put(o);
                return -EBADMSG;
        }
        if (r >= 0)
                r = dup_member(o, "version", &a->version);
        if (r >= 0)
                r = dup_member(o, "currentVersion", &a->current_version);
        if (r >= 0)
                r = dup_member(o, "state", &a->state);
        if (r >= 0)
                r = dup_member(o, "message", &a->message);
        if (r >= 0)
                r = dup_member(o, "at", &a->at);
        if (r >= 0 && json_object_object_get_ex(o, "success", &v)) {
                if (json_object_is_type(v, json_type_boolean))
                        a->success = json_object_get_boolean(v);
                else
                        r = -EBADMSG;
        }
        json_object_put(o);
        if (r >= 0 && !a->state)
                r = -EBADMSG;
        if (r < 0) {
                fleet_annotation_done(a);
                return r;
        }
        a->present = true;
        return 0;
}

void fleet_pod_done(FleetPod *p) {
        free(p->name);
        free(p->ip);
        free(p->ops_state);
        fleet_annotation_done(&p->ann);
        free(p->from_version);
        free(p->to_version);
        free(p->state);
        free(p->message);
        *p = (FleetPod) {};
}

void fleet_pods_free(FleetPod *pods, size_t n) {
        for (size_t i = 0; i < n; i++)
                fleet_pod_done(&pods[i]);
        free(pods);
}

static int replace_str(char **dst, const char *src) {
        char *c = NULL;

        if (src && !(c = strdup(src)))
                return -ENOMEM;
        free(*dst);
        *dst = c;
        return 0;
}

int fleet_pod_set_outcome(FleetPod *p, const char *state, const char *message,
                          const char *to_version) {
        if (replace_str(&p->state, state) < 0 || replace_str(&p->message, message) < 0 ||
            replace_str(&p->to_version, to_version) < 0)
                return -ENOMEM;
        return 0;
}

static int parse_uint(const char *s, size_t len, unsigned long *ret) {
        unsigned long v = 0;

        if (len == 0 || len > 9)
                return -EINVAL;
        for (size_t i = 0; i < len; i++) {
                if (!isdigit((unsigned char) s[i]))
                        return -EINVAL;
                v = v * 10 + (unsigned long) (s[i] - '0');
        }
        *ret = v;
        return 0;
}

int fleet_parse_count(const char *s, unsigned *ret) {
        unsigned long v;

        if (!s || parse_uint(s, strlen(s), &v) < 0)
                return -EINVAL;
        *ret = (unsigned) v;
        return 0;
}

int fleet_parse_limit(const char *s, size_t total, unsigned *ret) {
        size_t len = s ? strlen(s) : 0;
        unsigned long v;

        if (len > 0 && s[len - 1] == '%') {
                if (parse_uint(s, len - 1, &v) < 0 || v < 1 || v > 100)
                        return -EINVAL;
                v = (v * total + 99) / 100;
                *ret = v < 1 ? 1 : (unsigned) v;
                return 0;
        }
        if (parse_uint(s, len, &v) < 0 || v < 1)
                return -EINVAL;
        *ret = (unsigned) v;
        return 0;
}

int fleet_name_cmp(const char *a, const char *b) {
        while (*a && *b) {
                if (isdigit((unsigned char) *a) && isdigit((unsigned char) *b)) {
                        const char *ea = a, *eb = b;
                        size_t la, lb;
                        int c;

                        while (*a == '0' && isdigit((unsigned char) a[1]))
                                a++;
                        while (*b == '0' && isdigit((unsigned char) b[1]))
                                b++;
                        for (ea = a; isdigit((unsigned char) *ea); ea++)
                                ;
                        for (eb = b; isdigit((unsigned char) *eb); eb++)
                                ;
                        la = (size_t) (ea - a);
                        lb = (size_t) (eb - b);
                        if (la != lb)
                                return la < lb ? -1 : 1;
                        c = strncmp(a, b, la);
                        if (c != 0)
                                return c;
                        a = ea;
                        b = eb;
                        continue;
                }
                if (*a != *b)
                        return (unsigned char) *a < (unsigned char) *b ? -1 : 1;
                a++;
                b++;
        }
        return *a ? 1 : *b ? -1 : 0;
}

static bool allocated(const FleetPod *p) {
        return p->ops_state && streq(p->ops_state, "Allocated");
}

static int cmp_priority(const void *x, const void *y) {
        const FleetPod *a = x, *b = y;

        if (a->update_priority != b->update_priority)
                return a->update_priority > b->update_priority ? -1 : 1;
        if (allocated(a) != allocated(b))
                return allocated(a) ? 1 : -1;
        return fleet_name_cmp(a->name, b->name);
}

static int cmp_name(const void *x, const void *y) {
        const FleetPod *a = x, *b = y;
        return fleet_name_cmp(a->name, b->name);
}

static int order_fail(char **ret_error, const char *name, const char *why) {
        if (ret_error && asprintf(ret_error, "--order names \"%s\", %s", name, why) < 0)
                *ret_error = NULL;
        return -EINVAL;
}

int fleet_order(FleetPod *pods, size_t n, const char *order, char **ret_error) {
        _cleanup_(freep) char *copy = NULL;
        size_t placed = 0;
        char *save = NULL;

        if (!order || streq(order, "priority")) {
                qsort(pods, n, sizeof *pods, cmp_priority);
                return 0;
        }
        if (streq(order, "name")) {
                qsort(pods, n, sizeof *pods, cmp_name);
                return 0;
        }
        /* Explicit names first, in the given order; the rest by priority. */
        copy = strdup(order);
        if (!copy)
                return -ENOMEM;
        for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                size_t i;

                while (*t == ' ')
                        t++;
                if (!*t)
                        continue;
                for (i = 0; i < n; i++)
                        if (streq(pods[i].name, t))
                                break;
                if (i == n)
                        return order_fail(ret_error, t, "which is not a pod of the set");
                if (i < placed)
                        return order_fail(ret_error, t, "twice");
                if (i != placed) {
                        FleetPod tmp = pods[placed];
                        pods[placed] = pods[i];
                        pods[i] = tmp;
                }
                placed++;
        }
        if (placed == 0)
                return order_fail(ret_error, order, "no pod (priority, name, or pod names separated by commas)");
        qsort(pods + placed, n - placed, sizeof *pods, cmp_priority);
        return 0;
}

bool fleet_state_ok(const char *state) {
        return state && (streq(state, "Succeeded") || streq(state, "Unchanged"));
}

bool fleet_state_recorded(const char *state) {
        static const char *const refused[] = {
                "Invalid", "Unauthorized", "NotFound", "MethodNotAllowed", "Busy",
                "RequestTooLarge", "UnsupportedMediaType", "VersionConflict", "ShuttingDown",
        };

        if (!state)
                return false;
        for (size_t i = 0; i < ELEMENTSOF(refused); i++)
                if (streq(state, refused[i]))
                        return false;
        return true;
}

void fleet_plan_init(FleetPlan *plan, FleetPod *pods, size_t n, const char *version,
                     unsigned canary, unsigned max_in_flight, unsigned max_failures) {
        unsigned canaries = 0;

        *plan = (FleetPlan) {
                .pods = pods,
                .n = n,
                .version = version,
                .canary = canary,
                .max_in_flight = max_in_flight ?: 1,
                .max_failures = max_failures,
        };
        for (size_t i = 0; i < n; i++) {
                FleetPod *p = &pods[i];

                p->phase = FLEET_PENDING;
                p->canary = false;
                if (p->ann.present && p->ann.current_version && streq(p->ann.current_version, version)) {
                        p->phase = FLEET_AT_VERSION;
                        plan->at_version++;
                        continue;
                }
                if (canaries < canary) {
                        p->canary = true;
                        canaries++;
                }
        }
        plan->canaries_left = canaries;
}

FleetPod *fleet_plan_next(FleetPlan *plan) {
        if (plan->stop_reason || plan->in_flight >= plan->max_in_flight)
                return NULL;
        for (size_t i = 0; i < plan->n; i++) {
                FleetPod *p = &plan->pods[i];

                if (p->phase != FLEET_PENDING)
                        continue;
                if (!p->canary && plan->canaries_left > 0)
                        return NULL; /* the canaries have to succeed first */
                p->phase = FLEET_IN_FLIGHT;
                plan->in_flight++;
                return p;
        }
        return NULL;
}

void fleet_plan_finish(FleetPlan *plan, FleetPod *pod, bool ok) {
        if (pod->phase != FLEET_IN_FLIGHT)
                return;
        plan->in_flight--;
        if (pod->canary)
                plan->canaries_left--;
        if (ok) {
                pod->phase = FLEET_DONE;
                plan->done++;
                return;
        }
        pod->phase = FLEET_FAILED;
        plan->failures++;
        if (!plan->stop_reason && pod->canary)
                plan->stop_reason = "a canary failed";
        else if (!plan->stop_reason && plan->max_failures > 0 && plan->failures >= plan->max_failures)
                plan->stop_reason = "--max-failures reached";
}

size_t fleet_plan_left(const FleetPlan *plan) {
        size_t left = 0;

        for (size_t i = 0; i < plan->n; i++)
                if (plan->pods[i].phase == FLEET_PENDING)
                        left++;
        return left;
}

bool fleet_plan_finished(const FleetPlan *plan) {
        return plan->in_flight == 0 && (plan->stop_reason || fleet_plan_left(plan) == 0);
}

bool fleet_plan_complete(const FleetPlan *plan) {
        for (size_t i = 0; i < plan->n; i++)
                if (plan->pods[i].phase != FLEET_DONE && plan->pods[i].phase != FLEET_AT_VERSION)
                        return false;
        return true;
}

typedef struct Tally {
        const char *version;
        size_t count;
} Tally;

static int cmp_tally(const void *x, const void *y) {
        const Tally *a = x, *b = y;

        if (a->count != b->count)
                return a->count > b->count ? -1 : 1;
        return fleet_name_cmp(a->version, b->version);
}

char *fleet_version_summary(const FleetPod *pods, size_t n) {
        _cleanup_(freep) Tally *t = calloc(n + 1, sizeof *t);
        size_t nt = 0, failed = 0;
        char *out = NULL;
        size_t len = 0;
        FILE *f;

        if (!t)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                const char *v = pods[i].ann.current_version ?: pods[i].ann.unreadable ? "unreadable" : "none";
                size_t j;

                if (pods[i].ann.present && !pods[i].ann.success)
                        failed++;
                for (j = 0; j < nt; j++)
                        if (streq(t[j].version, v))
                                break;
                if (j == nt)
                        t[nt++] = (Tally) { .version = v };
                t[j].count++;
        }
        qsort(t, nt, sizeof *t, cmp_tally);
        f = open_memstream(&out, &len);
        if (!f)
                return NULL;
        for (size_t j = 0; j < nt; j++)
                fprintf(f, "%s%s: %zu", j > 0 ? ", " : "", t[j].version, t[j].count);
        if (failed > 0)
                fprintf(f, "%sfailed: %zu", nt > 0 ? ", " : "", failed);
        if (nt == 0 && failed == 0)
                fputs("no pods", f);
        if (fclose(f) != 0) {
                free(out);
                return NULL;
        }
        return out;
}

const char *okgctl_program_name(const char *argv0, char *buf, size_t size) {
        const char *base = argv0 ? strrchr(argv0, '/') : NULL;
        size_t k = 0;

        base = base ? base + 1 : argv0;
        if (isempty(base))
                base = "okgctl";
        if (size == 0)
                return buf;
        if (startswith(base, "kubectl-") && base[strlen("kubectl-")]) {
                for (const char *c = base; *c && k + 1 < size; c++)
                        buf[k++] = *c == '-' ? ' ' : *c == '_' ? '-' : *c;
                buf[k] = '\0';
        } else
                (void) snprintf(buf, size, "%s", base);
        return buf;
}
