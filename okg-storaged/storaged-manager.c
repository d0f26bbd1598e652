/* okg-storaged's Manager: its lifetime (the backend chosen, the journal replayed, the bus
 * joined, freed in reverse), the state every part reads (Pending, LastError, the objects'
 * places, the back-off), the dispatch of what is pending, and draining on SIGTERM. Each
 * concern is its own file: storaged-persist.c (accepting writes, the journal), -writer.c (the
 * objects' writes and read-backs), -events.c, -records.c (record reads), -podwatch.c (the
 * pod), -pruner.c; the pure decisions are storaged-entries.c and storaged-state.c. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"
#include "okg-bus-api.h"
#include "okg-util.h"
#include "okg-daemon.h"
#include "okg-event.h"
#include "storaged-manager.h"

#define SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"
#define RETRY_FIRST_USEC (200 * USEC_PER_MSEC)

const char *manager_backend(const Manager *m) {
        return m->kube ? "kubernetes" : "local";
}

size_t manager_pending(const Manager *m) {
        size_t n = 0;
        /* Refused fields count too: they are not on the API server. */
        for (size_t i = 0; i < _OBJECT_KIND_MAX; i++)
                n += object_pending(&m->objects[i].object) + object_pending_refused(&m->objects[i].object);
        return n + LIST_LENGTH(events, m->events_head);
}

void manager_set_last_error(Manager *m, const char *message) {
        if (streq_ptr(m->last_error, message))
                return;
        (void) free_and_strdup(&m->last_error, message);
        storaged_bus_changed(m);
}

/* ---- paths of the objects ---- */

static ObjectPlace manager_place(const Manager *m) {
        return (ObjectPlace) {
                .namespace = m->namespace, .pod = m->pod,
                .records_namespace = m->records_namespace, .records_name = m->records_name,
        };
}

int manager_object_path(Manager *m, ObjectKind kind, bool collection, char **ret) {
        ObjectPlace p = manager_place(m);
        return object_api_path(&p, kind, collection, ret);
}

const char *manager_object_ns(Manager *m, ObjectKind kind) {
        ObjectPlace p = manager_place(m);
        return object_place_namespace(&p, kind);
}

const char *manager_object_name(Manager *m, ObjectKind kind) {
        ObjectPlace p = manager_place(m);
        return object_place_name(&p, kind);
}

/* ---- back-off ---- */

/* +-20 %: many sidecars that lost the API server together must not return in step. */
uint64_t manager_jitter(Manager *m, uint64_t d) {
        return d * 4 / 5 + (uint64_t) rand_r(&m->rand_state) % (d * 2 / 5 + 1);
}

uint64_t manager_backoff(Manager *m, unsigned attempt, uint64_t retry_after) {
        uint64_t d = manager_jitter(m, okg_backoff_usec(attempt, RETRY_FIRST_USEC, MANAGER_RETRY_MAX_USEC));
        return d > retry_after ? d : retry_after;
}

/* ---- sending what is pending ---- */

static int on_dispatch(sd_event_source *s, void *userdata) {
        Manager *m = userdata;

        for (size_t i = 0; i < _OBJECT_KIND_MAX; i++)
                manager_object_dispatch(&m->objects[i]);
        events_dispatch(m);
        manager_check_drained(m);
        return 0;
}

/* Writes go out from a deferred event: several bus calls handled in one loop iteration end up
 * in one request per object. */
void manager_dispatch(Manager *m) {
        int r;

        r = okg_defer_arm(m->event, &m->dispatch_source, on_dispatch, m, NULL);
        if (r < 0 && !m->dispatch_source) {
                log_warning_errno(r, "Cannot defer the dispatch, sending now: %m");
                (void) on_dispatch(NULL, m);
        }
}

/* ---- draining ---- */

void manager_check_drained(Manager *m) {
        if (!m->draining)
                return;
        for (size_t i = 0; i < _OBJECT_KIND_MAX; i++) {
                if (object_needs_write(&m->objects[i].object))
                        return;
        }
        if (m->events_head)
                return;
        log_info("Nothing left to send; exiting.");
        (void) sd_event_exit(m->event, 0);
}

static int on_drain_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;

        log_warning("%zu write(s) not acknowledged after %u s; they stay in the journal and are "
                    "applied at the next start.",
                    manager_pending(m), m->config->drain_timeout_sec);
        return sd_event_exit(m->event, 0);
}

static int on_stop(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Manager *m = userdata;

        if (m->draining) {
                log_info("Second stop signal; exiting now.");
                return sd_event_exit(m->event, 0);
        }
        log_info("Received SIG%s; draining pending writes (at most %u s).",
                 sigabbrev_np((int) si->ssi_signo), m->config->drain_timeout_sec);
        (void) sd_notify(false, "STOPPING=1");
        m->draining = true;
        storaged_bus_changed(m);
        (void) okg_timer_arm(m->event, &m->drain_timer,
                             (uint64_t) m->config->drain_timeout_sec * USEC_PER_SEC, 0,
                             on_drain_timeout, m, NULL);
        manager_check_drained(m);
        return 0;
}

/* ---- lifetime ---- */

static int choose_backend(Manager *m) {
        _cleanup_(freep) char *error = NULL, *path = NULL;
        KubeConfig *kc = NULL;
        StorageBackend want = m->config->storage_backend;
        int r = -ENOENT;

        if (want != STORAGE_BACKEND_LOCAL) {
                r = kube_config_in_cluster(getenv("OKG_SERVICEACCOUNT_DIR") ?: SA_DIR, &kc, &error);
                if (r == -ENOENT) {
                        free(error);
                        error = NULL;
                        r = kube_config_from_kubeconfig(&kc, &error);
                }
                if (r < 0 && r != -ENOENT)
                        return log_error_errno(r, "Kubernetes credentials are not usable: %s",
                                               strempty(error));
                if (r == -ENOENT && want == STORAGE_BACKEND_KUBERNETES)
                        return log_error_errno(r, "storage.backend is kubernetes, but neither the "
                                                  "in-cluster service account nor $KUBECONFIG is there.");
        }
        if (r >= 0) {
                r = kube_client_new(m->event, kc, KUBE_CLIENT_WAIT_FOR_TOKEN, &m->kube);
                if (r < 0) {
                        kube_config_free(kc);
                        return log_error_errno(r, "Cannot set up the Kubernetes client: %m");
                }
                if (!m->namespace)
                        m->namespace = strdup(kc->namespace);
                log_info("Storing in Kubernetes at %s (credentials: %s).", kc->server, kc->source);
                return 0;
        }
        if (asprintf(&path, "%s/local-store.json", m->state_dir) < 0)
                return -ENOMEM;
        r = local_store_open(path, &m->local);
        if (r < 0)
                return log_error_errno(r, "Cannot open the local store %s: %m", path);
        log_info("No cluster: storing in the local store %s.", path);
        return 0;
}

int manager_new(SidecarConfig *config, Manager **ret) {
        _cleanup_(manager_freep) Manager *m = NULL;
        const char *e;
        char host[256];

        m = calloc(1, sizeof *m);
        if (!m) {
                sidecar_config_free(config);
                return -ENOMEM;
        }
        m->config = config;
        m->next_seq = 1;
        m->rand_state = (unsigned) getpid() ^ (unsigned) time(NULL);
        for (size_t i = 0; i < _OBJECT_KIND_MAX; i++) {
                m->objects[i].manager = m;
                m->objects[i].object.kind = (ObjectKind) i;
        }

        e = getenv("OKG_STATE_DIR");
        m->state_dir = strdup(e ?: "/var/lib/okg-sidecar");
        e = getenv("POD_NAME");
        if (isempty(e)) {
                if (gethostname(host, sizeof host) < 0)
                        strcpy(host, "okg-sidecar-0");
                host[sizeof host - 1] = 0;
                e = host;
        }
        m->pod = strdup(e);
        e = getenv("POD_NAMESPACE");
        m->namespace = isempty(e) ? NULL : strdup(e);
        if (!m->state_dir || !m->pod)
                return -ENOMEM;
        *ret = TAKE_PTR(m);
        return 0;
}

int manager_start(Manager *m) {
        int r;

        r = okg_mkdir_p(m->state_dir, 0755);
        if (r < 0)
                return log_error_errno(r, "Cannot create the state directory %s: %m", m->state_dir);
        r = okg_daemon_event_new_full(&m->event, on_stop, m);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the event loop: %m");
        r = choose_backend(m);
        if (r < 0)
                return r;
        if (!m->namespace && !(m->namespace = strdup("default")))
                return -ENOMEM;
        m->records_name = strdup(m->config->result_configmap);
        m->records_namespace = strdup(m->config->result_namespace ?: m->namespace);
        if (!m->records_name || !m->records_namespace)
                return -ENOMEM;
        if (!m->gss)
                m->gss = gss_from_pod_name(m->pod);

        r = journal_open(m->state_dir, persist_replay_entry, m, &m->journal);
        if (r < 0)
                return log_error_errno(r, "Cannot open the journal in %s: %m", m->state_dir);
        /* Kept apart from LastError, which the next error of any kind replaces: the operator
         * must still see that writes were lost (JournalDamage, and a metric). */
        m->journal_damage = journal_damage_describe(journal_damage(m->journal), journal_path(m->journal));
        if (m->journal_damage) {
                log_error("The %s; the rest was replayed.", m->journal_damage);
                manager_set_last_error(m, m->journal_damage);
        }
        r = persist_compact(m);
        if (r < 0)
                log_warning_errno(r, "Cannot compact the journal: %m");
        if (manager_pending(m) > 0)
                log_info("%zu write(s) from before the restart are pending.", manager_pending(m));

        if (m->local) {
                json_object *pod = local_store_get(m->local, OBJECT_POD, m->namespace, m->pod);
                if (pod)
                        manager_pod_learned(m, pod);
        }

        r = okg_bus_new(m->event, NULL, OKG_STORAGE_NAME, storaged_bus_setup, NULL, m, &m->bus);
        if (r < 0)
                return log_error_errno(r, "Failed to join the private bus as io.kruise.game.Storage1: %m");

        log_info("Pod %s/%s, records in ConfigMap %s/%s, backend %s.", m->namespace, m->pod,
                 m->records_namespace, m->records_name, manager_backend(m));
        (void) sd_notify(false, "READY=1\nSTATUS=Storing");
        manager_pod_fetch(m);
        /* What the journal says was acknowledged is read back once: the objects may have been
         * recreated or changed while okg-storaged was not running. */
        for (size_t i = 0; m->kube && i < _OBJECT_KIND_MAX; i++)
                /* The pod's status is checked by the pod read just started. */
                if (i != OBJECT_POD_STATUS && object_has_acked(&m->objects[i].object))
                        writer_want_verify(&m->objects[i]);
        manager_dispatch(m);
        pruner_start(m);
        return 0;
}

Manager *manager_free(Manager *m) {
        if (!m)
                return NULL;
        okg_bus_free(m->bus);
        pruner_done(m);
        kube_client_free(m->kube);
        local_store_free(m->local);
        journal_free(m->journal);
        for (size_t i = 0; i < _OBJECT_KIND_MAX; i++) {
                object_done(&m->objects[i].object);
                sd_event_source_disable_unref(m->objects[i].retry_timer);
                sd_event_source_disable_unref(m->objects[i].verify_timer);
        }
        while (m->events_head)
                events_drop_head(m);
        sd_event_source_disable_unref(m->event_timer);
        sd_event_source_disable_unref(m->dispatch_source);
        sd_event_source_disable_unref(m->pod_timer);
        podwatch_done(m);
        ppmwatch_free(m->ppmwatch);
        sd_event_source_disable_unref(m->drain_timer);
        sd_event_unref(m->event);
        sidecar_config_free(m->config);
        free(m->state_dir);
        free(m->pod);
        free(m->namespace);
        free(m->gss);
        free(m->pod_uid);
        free(m->records_namespace);
        free(m->records_name);
        free(m->last_error);
        free(m->journal_damage);
        free(m);
        return NULL;
}
