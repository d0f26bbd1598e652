/* Pruning the result ConfigMap, the requests: every round reads the ConfigMap, lists the pods
 * of the GameServerSet, and removes the records of pods that have been missing for
 * storage.recordPruneAfterSeconds and are not in a list of all the namespace's pods either,
 * on condition that the ConfigMap did not change since it was read. Any answer it cannot trust (a refused, failed or partial list) ends the round without
 * removing anything. The decisions are in storaged-prune.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "macro.h"
#include "okg-event.h"
#include "okg-json.h"
#include "okg-util.h"
#include "storaged-manager.h"

#define OWNER_GSS_SELECTOR "game.kruise.io%%2Fowner-gss%%3D"
#define LOG_NAMES_MAX 10

static int on_prune_timer(sd_event_source *s, uint64_t usec, void *userdata);

static PruneScope scope(Manager *m) {
        return (PruneScope) {
                .gss = m->gss,
                .own = m->pod,
                .namespace = m->namespace,
                .records_here = streq_ptr(m->records_namespace, m->namespace),
        };
}

static uint64_t grace_usec(Manager *m) {
        return (uint64_t) m->config->record_prune_after_sec * USEC_PER_SEC;
}

/* Forgets what this round read and decided. */
static void round_clear(Manager *m) {
        json_object_put(m->prune_data);
        m->prune_data = NULL;
        m->prune_rv = mfree(m->prune_rv);
        strv_free(m->prune_due);
        m->prune_due = NULL;
        strv_free(m->prune_gone);
        m->prune_gone = NULL;
        m->n_prune_gone = 0;
        m->prune_running = false;
}

static void round_end(Manager *m) {
        round_clear(m);
        if (okg_timer_arm(m->event, &m->prune_timer,
                          manager_jitter(m, prune_interval_usec(grace_usec(m))), 0, on_prune_timer,
                          m, NULL) < 0)
                log_warning("Cannot arm the record pruning timer; records are no longer pruned.");
}

static void not_pruning(Manager *m, const char *what, const KubeResponse *r) {
        if (r->status > 0)
                log_warning("Not pruning records this round: %s (HTTP %ld): %s", what, r->status,
                            strempty(r->message));
        else
                log_warning("Not pruning records this round: %s: %s", what, strempty(r->message));
        round_end(m);
}

static void on_patch_answer(KubeClient *k, const KubeResponse *r, void *userdata) {
        Manager *m = userdata;
        _cleanup_(freep) char *list = NULL;
        size_t len = 0;

        if (r->status == 409) {
                /* The ConfigMap changed since it was read (a pod wrote its record, or another
                 * pod of the set removed these first). Nothing was removed; the next round
                 * reads it again. */
                log_info("The result ConfigMap changed while pruning (HTTP %ld: %s); reading it "
                         "again next round.", r->status, strempty(r->message));
                round_end(m);
                return;
        }
        if (kube_classify(r->curl, r->status) != KUBE_OK) {
                not_pruning(m, "removing the records was refused", r);
                return;
        }
        for (size_t i = 0; i < m->n_prune_gone; i++) {
                if (i < LOG_NAMES_MAX)
                        len += strlen(m->prune_gone[i]) + 2;
                prune_state_forget(&m->prune, m->prune_gone[i]);
        }
        /* The first few names: a scale-in of hundreds would make one huge log line. */
        list = calloc(1, len + 32);
        for (size_t i = 0; list && i < m->n_prune_gone && i < LOG_NAMES_MAX; i++) {
                if (i > 0)
                        strcat(list, ", ");
                strcat(list, m->prune_gone[i]);
        }
        if (list && m->n_prune_gone > LOG_NAMES_MAX)
                sprintf(list + strlen(list), " and %zu more", m->n_prune_gone - LOG_NAMES_MAX);
        m->records_pruned += m->n_prune_gone;
        log_info("Removed the record(s) of %zu pod(s) gone for at least %u s from ConfigMap %s/%s: %s.",
                 m->n_prune_gone, m->config->record_prune_after_sec, m->records_namespace,
                 m->records_name, strempty(list));
        round_end(m);
        manager_records_freed(m);
}

static void round_remove(Manager *m) {
        _cleanup_(freep) char *path = NULL;
        json_object *patch;
        int r;

        if (m->n_prune_gone == 0) {
                round_end(m);
                return;
        }
        patch = prune_patch(m->prune_rv, m->prune_gone);
        if (!patch || asprintf(&path, "/api/v1/namespaces/%s/configmaps/%s", m->records_namespace,
                               m->records_name) < 0) {
                json_object_put(patch);
                path = NULL;
                log_warning("Not pruning records this round: out of memory.");
                round_end(m);
                return;
        }
        r = kube_request(m->kube, "PATCH", path, "application/merge-patch+json",
                         json_object_to_json_string_ext(patch, JSON_C_TO_STRING_PLAIN), on_patch_answer, m);
        json_object_put(patch);
        if (r < 0) {
                log_warning_errno(r, "Not pruning records this round: cannot send the patch: %m");
                round_end(m);
        }
}

/* Keeps, of the due records, those whose pods are not in `every` (all pods of the namespace). */
static int round_keep_gone(Manager *m, json_object *every) {
        size_t n = 0;

        for (char **k = m->prune_due; k && *k; k++)
                n++;
        m->prune_gone = calloc(n + 1, sizeof(char *));
        if (!m->prune_gone)
                return -ENOMEM;
        for (char **k = m->prune_due; k && *k; k++) {
                if (json_object_object_get_ex(every, *k, NULL)) {
                        /* It exists, only without the GameServerSet label: never prune it. */
                        log_debug("Pod %s exists; keeping its record.", *k);
                        prune_state_forget(&m->prune, *k);
                        continue;
                }
                m->prune_gone[m->n_prune_gone] = strdup(*k);
                if (!m->prune_gone[m->n_prune_gone])
                        return -ENOMEM;
                m->n_prune_gone++;
        }
        return 0;
}

/* A complete pod list's names, or NULL after ending the round with the reason logged. */
static json_object *round_pod_names(Manager *m, const KubeResponse *r, const char *what) {
        json_object *names = NULL;
        const char *why = NULL;

        if (kube_classify(r->curl, r->status) != KUBE_OK) {
                not_pruning(m, what, r);
                return NULL;
        }
        if (prune_pod_names(r->body, r->body_len, &names, &why) < 0) {
                log_warning("Not pruning records this round: %s: the answer is not usable: %s.", what,
                            strempty(why));
                round_end(m);
                return NULL;
        }
        return names;
}

static void round_remove_gone(Manager *m, json_object *every) {
        if (round_keep_gone(m, every) < 0) {
                log_warning("Not pruning records this round: out of memory.");
                round_end(m);
                return;
        }
        round_remove(m);
}

static void on_namespace_list_answer(KubeClient *k, const KubeResponse *r, void *userdata) {
        Manager *m = userdata;
        _cleanup_(json_object_putp) json_object *every =
                round_pod_names(m, r, "cannot list the pods of the namespace");

        if (every)
                round_remove_gone(m, every);
}

static int list_pods(Manager *m, bool by_label, KubeDoneFunc cb) {
        _cleanup_(freep) char *path = NULL;
        int r;

        r = by_label ? asprintf(&path, "/api/v1/namespaces/%s/pods?labelSelector=" OWNER_GSS_SELECTOR "%s",
                                m->namespace, m->gss)
                     : asprintf(&path, "/api/v1/namespaces/%s/pods", m->namespace);
        if (r < 0) {
                path = NULL;
                return -ENOMEM;
        }
        return kube_request(m->kube, "GET", path, NULL, NULL, cb, m);
}

static void on_list_answer(KubeClient *k, const KubeResponse *r, void *userdata) {
        Manager *m = userdata;
        _cleanup_(json_object_putp) json_object *live = round_pod_names(m, r, "cannot list the pods");
        PruneScope sc = scope(m);
        int n;

        if (!live)
                return;
        n = prune_decide(&m->prune, m->prune_data, live, &sc, okg_now_usec(), grace_usec(m), &m->prune_due);
        if (n <= 0) {
                if (n < 0)
                        log_warning_errno(n, "Not pruning records this round: %m");
                round_end(m);
                return;
        }
        if (!m->pod_has_gss_label) {
                /* That list was the whole namespace already. */
                round_remove_gone(m, live);
                return;
        }
        /* A pod of the set without the label is not in that list: before anything is removed,
         * the whole namespace is listed once (one list, not a GET per record). */
        n = list_pods(m, false, on_namespace_list_answer);
        if (n < 0) {
                log_warning_errno(n, "Not pruning records this round: cannot list the pods: %m");
                round_end(m);
        }
}

static void on_configmap_answer(KubeClient *k, const KubeResponse *r, void *userdata) {
        Manager *m = userdata;
        _cleanup_(json_object_putp) json_object *cm = NULL;
        json_object *data = NULL, *meta, *rv;
        PruneScope sc = scope(m);
        int q;

        if (kube_classify(r->curl, r->status) == KUBE_NOT_FOUND) {
                round_end(m);
                return;
        }
        if (kube_classify(r->curl, r->status) != KUBE_OK) {
                not_pruning(m, "cannot read the result ConfigMap", r);
                return;
        }
        cm = json_tokener_parse(r->body);
        if (cm)
                (void) json_object_object_get_ex(cm, "data", &data);
        if (cm && json_object_object_get_ex(cm, "metadata", &meta) &&
            json_object_object_get_ex(meta, "resourceVersion", &rv))
                (void) free_and_strdup(&m->prune_rv, json_object_get_string(rv));
        if (isempty(m->prune_rv)) {
                log_warning("Not pruning records this round: the result ConfigMap as read has no "
                            "resourceVersion.");
                round_end(m);
                return;
        }
        if (!prune_has_candidates(data, &sc)) {
                /* No record of the set but our own: nothing to list. */
                prune_state_done(&m->prune);
                round_end(m);
                return;
        }
        m->prune_data = json_object_get(data);
        /* The set's pods by their label; when our own pod has no label to select by, the whole
         * namespace. */
        q = list_pods(m, m->pod_has_gss_label, on_list_answer);
        if (q < 0) {
                log_warning_errno(q, "Not pruning records this round: cannot list the pods: %m");
                round_end(m);
        }
}

static int on_prune_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        _cleanup_(freep) char *path = NULL;
        int r;

        if (m->prune_running || m->draining)
                return 0;
        /* Wait until the pod (its GameServerSet label) is known. */
        if (!m->pod_known || isempty(m->gss)) {
                round_end(m);
                return 0;
        }
        if (asprintf(&path, "/api/v1/namespaces/%s/configmaps/%s", m->records_namespace,
                     m->records_name) < 0) {
                path = NULL;
                round_end(m);
                return log_oom();
        }
        m->prune_running = true;
        r = kube_request(m->kube, "GET", path, NULL, NULL, on_configmap_answer, m);
        if (r < 0) {
                log_warning_errno(r, "Not pruning records this round: cannot read the result ConfigMap: %m");
                round_end(m);
        }
        return 0;
}

void pruner_start(Manager *m) {
        if (!m->kube || m->config->record_prune_after_sec == 0)
                return;
        log_debug("Pruning records of pods gone for %u s, a round every %llu s.",
                  m->config->record_prune_after_sec,
                  (unsigned long long) (prune_interval_usec(grace_usec(m)) / USEC_PER_SEC));
        round_end(m);
}

void pruner_done(Manager *m) {
        m->prune_timer = sd_event_source_disable_unref(m->prune_timer);
        round_clear(m);
        prune_state_done(&m->prune);
}
