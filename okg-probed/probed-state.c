/* Thresholds, policies, precedence and the edge trigger; see probed-state.h. No I/O. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "okg-kube-names.h"
#include "probed-state.h"

#define JITTER_MAX_USEC (500 * USEC_PER_MSEC)

uint64_t probe_next_delay(uint64_t interval_usec, uint32_t rnd) {
        uint64_t j = interval_usec / 20;

        if (j > JITTER_MAX_USEC)
                j = JITTER_MAX_USEC;
        /* The timer fires up to its accuracy (j/2) late: stay within the interval. */
        return interval_usec - j + (j / 2 > 0 ? rnd % (j / 2 + 1) : 0);
}

uint64_t probe_timer_accuracy(uint64_t interval_usec) {
        uint64_t j = interval_usec / 20;

        if (j > JITTER_MAX_USEC)
                j = JITTER_MAX_USEC;
        return j / 2 ?: 1;
}

int probe_tracker_init(ProbeTracker *t, unsigned success_threshold, unsigned failure_threshold,
                       const char *failure_state) {
        *t = (ProbeTracker) {
                .success_threshold = success_threshold ?: 1,
                .failure_threshold = failure_threshold ?: 1,
        };
        if (failure_state) {
                t->failure_state = strdup(failure_state);
                if (!t->failure_state)
                        return -ENOMEM;
        }
        return 0;
}

void probe_tracker_done(ProbeTracker *t) {
        free(t->failure_state);
        free(t->state);
        free(t->streak_state);
        *t = (ProbeTracker) {};
}

/* Makes s the applied state. 1 when that is a change. */
static int tracker_apply(ProbeTracker *t, const char *s, char **ret_old) {
        char *copy;

        if (streq_ptr(t->state, s))
                return 0;
        copy = strdup(s);
        if (!copy)
                return -ENOMEM;
        if (ret_old)
                *ret_old = t->state;
        else
                free(t->state);
        t->state = copy;
        return 1;
}

int probe_tracker_success(ProbeTracker *t, const char *state, char **ret_old) {
        t->failures = 0;
        if (streq_ptr(t->streak_state, state)) {
                if (t->successes < UINT_MAX)
                        t->successes++;
        } else {
                if (free_and_strdup(&t->streak_state, state) < 0)
                        return -ENOMEM;
                t->successes = 1;
        }
        if (t->successes < t->success_threshold)
                return 0;
        t->failing = false;
        return tracker_apply(t, state, ret_old);
}

int probe_tracker_failure(ProbeTracker *t, char **ret_old) {
        t->successes = 0;
        t->streak_state = mfree(t->streak_state);
        if (t->failures < UINT_MAX)
                t->failures++;
        if (t->failures < t->failure_threshold)
                return 0;
        t->failing = true;
        if (!t->failure_state)
                return 0;
        return tracker_apply(t, t->failure_state, ret_old);
}

const MarkerPolicy *probe_policy_find(const ProbeEndpoint *ep, const char *state) {
        if (!state)
                return NULL;
        for (size_t i = 0; i < ep->n_policies; i++)
                if (streq_ptr(ep->policies[i].state, state))
                        return &ep->policies[i];
        return NULL;
}

void probe_fields_done(ProbeFields *f) {
        for (size_t i = 0; i < f->n; i++) {
                free(f->v[i].key);
                free(f->v[i].value);
        }
        free(f->v);
        *f = (ProbeFields) {};
}

static ProbeField *fields_find(const ProbeFields *f, ProbeTarget target, const char *key) {
        for (size_t i = 0; i < f->n; i++)
                if (f->v[i].target == target && streq(f->v[i].key, key))
                        return &f->v[i];
        return NULL;
}

const ProbeField *probe_fields_get(const ProbeFields *f, ProbeTarget target, const char *key) {
        return fields_find(f, target, key ?: "");
}

int probe_fields_set(ProbeFields *f, ProbeTarget target, const char *key, const char *value,
                     size_t source) {
        ProbeField *e;

        key = key ?: "";
        e = fields_find(f, target, key);
        if (e) {
                if (free_and_strdup(&e->value, value) < 0)
                        return -ENOMEM;
                e->source = source;
                return 0;
        }

        ProbeField *v = realloc(f->v, (f->n + 1) * sizeof(ProbeField));
        if (!v)
                return -ENOMEM;
        f->v = v;
        e = &f->v[f->n];
        *e = (ProbeField) { .target = target, .source = source };
        e->key = strdup(key);
        e->value = strdup(value);
        if (!e->key || !e->value) {
                free(e->key);
                free(e->value);
                return -ENOMEM;
        }
        f->n++;
        return 0;
}

/* First one wins: a field already decided by an earlier endpoint is left alone. */
static int claim(ProbeFields *f, ProbeTarget target, const char *key, const char *value,
                 size_t source) {
        if (fields_find(f, target, key))
                return 0;
        return probe_fields_set(f, target, key, value, source);
}

int probe_desired_compute(const ProbeConfig *c, char *const *states, ProbeFields *ret) {
        ProbeFields f = {};
        int r = 0;

        for (size_t i = 0; i < c->n_endpoints && r >= 0; i++) {
                const ProbeEndpoint *ep = &c->endpoints[i];
                const char *s = states[i];
                const MarkerPolicy *p;

                if (!s || ep->storage_type != PROBE_STORAGE_IN_KUBE)
                        continue;

                if (ep->annotation_key)
                        r = claim(&f, PROBE_TARGET_POD_ANNOTATION, ep->annotation_key, s, i);
                if (r >= 0 && ep->label_key && !kube_label_value_check(s))
                        r = claim(&f, PROBE_TARGET_POD_LABEL, ep->label_key, s, i);

                p = probe_policy_find(ep, s);
                if (!p)
                        continue;
                if (r >= 0 && p->ops_state)
                        r = claim(&f, PROBE_TARGET_OPS_STATE, "", p->ops_state, i);
                for (size_t j = 0; r >= 0 && j < p->n_labels; j++)
                        r = claim(&f, PROBE_TARGET_GS_LABEL, p->labels[j].key, p->labels[j].value,
                                  i);
                for (size_t j = 0; r >= 0 && j < p->n_annotations; j++)
                        r = claim(&f, PROBE_TARGET_GS_ANNOTATION, p->annotations[j].key,
                                  p->annotations[j].value, i);
        }
        if (r < 0) {
                probe_fields_done(&f);
                return r;
        }
        *ret = f;
        return 0;
}

int probe_fields_diff(const ProbeFields *want, const ProbeFields *sent, ProbeFields *ret) {
        ProbeFields d = {};

        for (size_t i = 0; i < want->n; i++) {
                const ProbeField *w = &want->v[i];
                const ProbeField *s = fields_find(sent, w->target, w->key);
                int r;

                if (s && streq(s->value, w->value))
                        continue;
                r = probe_fields_set(&d, w->target, w->key, w->value, w->source);
                if (r < 0) {
                        probe_fields_done(&d);
                        return r;
                }
        }
        *ret = d;
        return 0;
}

int probe_fields_merge(ProbeFields *sent, const ProbeFields *changes) {
        for (size_t i = 0; i < changes->n; i++) {
                const ProbeField *c = &changes->v[i];
                int r = probe_fields_set(sent, c->target, c->key, c->value, c->source);
                if (r < 0)
                        return r;
        }
        return 0;
}
