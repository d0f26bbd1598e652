/* okg-probed's context: owns every handle, starts the endpoints, and turns their applied
 * states into writes to okg-storaged, edge-triggered (docs/probe.md). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"
#include "okg-event.h"
#include "okg-kube-names.h"
#include "probed-bus.h"
#include "probed-endpoint.h"
#include "probed-manager.h"

uint32_t manager_random(Manager *m) {
        /* xorshift64*: jitter needs spread, not secrecy. */
        uint64_t x = m->random_state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        m->random_state = x;
        return (uint32_t) ((x * UINT64_C(2685821657736338717)) >> 32);
}

int manager_new(sd_event *event, ProbeConfig *config, Manager **ret) {
        _cleanup_(manager_freep) Manager *m = NULL;
        int r;

        m = calloc(1, sizeof *m);
        if (!m) {
                probe_config_free(config);
                return -ENOMEM;
        }
        m->event = sd_event_ref(event);
        m->config = config;

        if (getrandom(&m->random_state, sizeof m->random_state, GRND_NONBLOCK) !=
            (ssize_t) sizeof m->random_state)
                m->random_state = (uint64_t) time(NULL) ^ ((uint64_t) getpid() << 32);
        m->random_state |= 1;

        r = curl_glue_new(event, &m->glue);
        if (r < 0)
                return r;
        /* One idle connection kept per endpoint: probes are paced, so curl's default cache
         * (sized by the transfers running at once) would close and reopen them. */
        r = curl_glue_set_max_connections(m->glue, config->n_endpoints);
        if (r < 0)
                return r;

        m->endpoints = calloc(config->n_endpoints ?: 1, sizeof(Endpoint *));
        if (!m->endpoints)
                return -ENOMEM;
        for (size_t i = 0; i < config->n_endpoints; i++) {
                r = endpoint_new(m, i, &config->endpoints[i], &m->endpoints[i]);
                if (r < 0)
                        return r;
                m->n_endpoints++;
        }

        *ret = TAKE_PTR(m);
        return 0;
}

Manager *manager_free(Manager *m) {
        if (!m)
                return NULL;
        /* The storage client cancels its queue through our callback: it goes while we are whole. */
        okg_storage_client_free(m->storage);
        m->storage = NULL;
        okg_bus_free(m->bus);
        m->bus = NULL;
        sd_event_source_disable_unref(m->sync_event);
        for (size_t i = 0; i < m->n_endpoints; i++)
                endpoint_free(m->endpoints[i]);
        free(m->endpoints);
        curl_glue_free(m->glue);
        probe_fields_done(&m->sent);
        free(m->ops_state);
        free(m->last_storage_error);
        probe_config_free(m->config);
        sd_event_unref(m->event);
        free(m);
        return NULL;
}

static void on_storage_done(int error, const char *message, uint64_t seq, void *userdata) {
        Manager *m = userdata;

        if (error == -ECANCELED)
                return;   /* we are shutting down */
        if (error < 0) {
                /* Refused as invalid: sending it again would not help. The next change of
                 * state is handed on as usual. */
                m->storage_errors++;
                (void) free_and_strdup(&m->last_storage_error,
                                       message ?: "okg-storaged refused the write");
                log_warning_errno(error, "okg-storaged refused a write: %s",
                                  message ?: "(no message)");
                probe_bus_emit_manager_changed(m);
                return;
        }
        log_debug("okg-storaged accepted write #%llu.", (unsigned long long) seq);
}

/* Builds the key/value arrays of one target out of the changed fields; borrowed strings. */
static size_t collect(const ProbeFields *f, ProbeTarget target, OkgStrPair *out) {
        size_t n = 0;
        for (size_t i = 0; i < f->n; i++)
                if (f->v[i].target == target)
                        out[n++] = (OkgStrPair) { f->v[i].key, f->v[i].value };
        return n;
}

static void log_changes(const ProbeFields *changes) {
        static const char *const what[_PROBE_TARGET_MAX] = {
                [PROBE_TARGET_OPS_STATE] = "GameServer opsState",
                [PROBE_TARGET_GS_LABEL] = "GameServer label",
                [PROBE_TARGET_GS_ANNOTATION] = "GameServer annotation",
                [PROBE_TARGET_POD_LABEL] = "pod label",
                [PROBE_TARGET_POD_ANNOTATION] = "pod annotation",
        };
        for (size_t i = 0; i < changes->n; i++) {
                const ProbeField *f = &changes->v[i];
                log_info("Setting %s%s%s to \"%s\" (endpoint %zu).", what[f->target],
                         *f->key ? " " : "", f->key, f->value, f->source);
        }
}

/* Hands okg-storaged the fields whose desired value changed since they were last handed on. */
static int manager_sync(Manager *m) {
        _cleanup_(probe_fields_done) ProbeFields want = {}, changes = {};
        _cleanup_(freep) char **states = NULL;
        _cleanup_(freep) OkgStrPair *labels = NULL, *annotations = NULL;
        const ProbeField *ops;
        size_t nl, na;
        bool any = false;
        int r;

        states = calloc(m->n_endpoints ?: 1, sizeof(char *));
        if (!states)
                return -ENOMEM;
        for (size_t i = 0; i < m->n_endpoints; i++)
                states[i] = m->endpoints[i]->tracker.state;

        r = probe_desired_compute(m->config, states, &want);
        if (r < 0)
                return r;
        r = probe_fields_diff(&want, &m->sent, &changes);
        if (r < 0)
                return r;
        if (changes.n == 0)
                return 0;

        labels = calloc(changes.n, sizeof(OkgStrPair));
        annotations = calloc(changes.n, sizeof(OkgStrPair));
        if (!labels || !annotations)
                return -ENOMEM;

        log_changes(&changes);

        ops = probe_fields_get(&changes, PROBE_TARGET_OPS_STATE, "");
        nl = collect(&changes, PROBE_TARGET_GS_LABEL, labels);
        na = collect(&changes, PROBE_TARGET_GS_ANNOTATION, annotations);
        if (ops || nl > 0 || na > 0) {
                r = okg_storage_set_gameserver(m->storage, ops ? ops->value : NULL, labels, nl,
                                               annotations, na, on_storage_done, m);
                if (r < 0)
                        return r;
                m->storage_writes++;
                any = true;
                if (ops && free_and_strdup(&m->ops_state, ops->value) < 0)
                        return -ENOMEM;
        }

        nl = collect(&changes, PROBE_TARGET_POD_LABEL, labels);
        na = collect(&changes, PROBE_TARGET_POD_ANNOTATION, annotations);
        if (nl > 0 || na > 0) {
                r = okg_storage_set_pod_metadata(m->storage, labels, nl, annotations, na,
                                                 on_storage_done, m);
                if (r < 0)
                        return r;
                m->storage_writes++;
                any = true;
        }

        r = probe_fields_merge(&m->sent, &changes);
        if (r < 0)
                return r;
        if (any)
                probe_bus_emit_manager_changed(m);
        if (m->ops_state)
                (void) sd_notifyf(false, "STATUS=Probing %zu endpoint(s); opsState %s",
                                  m->n_endpoints, m->ops_state);
        return 0;
}

static int on_sync(sd_event_source *s, void *userdata) {
        Manager *m = userdata;
        int r = manager_sync(m);
        if (r < 0)
                log_error_errno(r, "Failed to hand the new state to okg-storaged: %m");
        return 0;
}

void manager_endpoint_state_changed(Manager *m, Endpoint *e, const char *old_state,
                                    const char *new_state) {
        const ProbeEndpoint *c = e->config;
        int r;

        log_notice("Endpoint %zu (%s): state \"%s\" -> \"%s\".", e->index, c->url,
                   strempty(old_state), strempty(new_state));
        probe_bus_emit_state_changed(m, e, old_state, new_state);

        if (c->storage_type == PROBE_STORAGE_IN_KUBE) {
                if (c->n_policies > 0 && !probe_policy_find(c, new_state))
                        log_warning("State \"%s\" of %s matches no markerPolicy; the GameServer "
                                    "is left as it is.",
                                    strempty(new_state), c->url);
                if (c->label_key && new_state && kube_label_value_check(new_state))
                        log_warning("State \"%s\" of %s is not a valid label value (%s); pod "
                                    "label %s is not set.",
                                    new_state, c->url, kube_label_value_check(new_state),
                                    c->label_key);
        }

        /* Several endpoints may change in one loop iteration: write once after all of them. */
        r = okg_defer_arm(m->event, &m->sync_event, on_sync, m, "probe-sync");
        if (r < 0)
                log_error_errno(r, "Failed to schedule the storage update: %m");
}

unsigned manager_probe_now(Manager *m) {
        unsigned n = 0;
        for (size_t i = 0; i < m->n_endpoints; i++)
                if (endpoint_probe_now(m->endpoints[i]) > 0)
                        n++;
        return n;
}

int manager_start(Manager *m, const char *bus_address) {
        uint64_t delay = (uint64_t) m->config->start_delay_sec * USEC_PER_SEC;
        int r;

        r = okg_bus_new(m->event, bus_address, OKG_PROBE_NAME, probe_bus_setup, NULL, m, &m->bus);
        if (r < 0)
                return log_error_errno(r, "Failed to join the private bus as %s: %m",
                                       OKG_PROBE_NAME);
        r = okg_storage_client_new(m->event, m->bus, &m->storage);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the storage client: %m");

        for (size_t i = 0; i < m->n_endpoints; i++) {
                Endpoint *e = m->endpoints[i];
                if (e->config->timeout_sec > m->config->interval_sec)
                        log_notice("Endpoint %zu (%s): its timeout (%us) is longer than "
                                   "probeIntervalSeconds (%us); a hanging probe delays its next "
                                   "one.",
                                   i, e->config->url, e->config->timeout_sec,
                                   m->config->interval_sec);
                if (e->config->storage_type == PROBE_STORAGE_HTTP_METRIC &&
                    (e->config->n_policies > 0 || e->config->annotation_key || e->config->label_key))
                        log_notice("Endpoint %zu (%s) stores as HTTPMetric; its inKube settings "
                                   "are not used.",
                                   i, e->config->url);
                r = endpoint_start(e, delay);
                if (r < 0)
                        return log_error_errno(r, "Failed to schedule probes of %s: %m",
                                               e->config->url);
        }
        log_info("Probing %zu endpoint(s) every %us%s.", m->n_endpoints, m->config->interval_sec,
                 delay > 0 ? ", after the start delay" : "");
        return 0;
}
