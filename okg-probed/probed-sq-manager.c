/* The service_quality plugin: runs the probes of the pod's kruise.io/podprobe annotation with
 * Kruise's semantics and hands the resulting pod conditions to okg-storaged, only when a status
 * or message changed (docs/service-quality.md). Probes run on the one event loop: httpGet is a
 * curl transfer, tcpSocket a non-blocking connect, exec a child process with pipes. */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#include "log.h"
#include "macro.h"
#include "okg-util.h"
#include "okg-daemon.h"
#include "probed-sq-manager.h"

#define REFRESH_USEC (10 * USEC_PER_SEC)
#define POD_WAIT_WARN_USEC (60 * USEC_PER_SEC)

/* ---- the probes and where they come from ---- */

static void manager_drop_runners(SqManager *m) {
        for (size_t i = 0; i < m->n_runners; i++)
                sq_runner_free(m->runners[i]);
        free(m->runners);
        m->runners = NULL;
        m->n_runners = 0;
}

static void set_source(SqManager *m, const char *source, const char *reason) {
        if (streq_ptr(m->source, source) && streq_ptr(m->source_reason, reason))
                return;
        log_info("Probes from %s: %s", source, reason);
        (void) free_and_strdup(&m->source, source);
        (void) free_and_strdup(&m->source_reason, reason);
        sq_bus_emit_manager_changed(m);
}

/* Runs the probes of text (NULL: none). A refused text changes nothing but says why, naming
 * the marker's probe when origins (from sq_ppm_probes()) says where each entry came from. */
static int manager_use_probes(SqManager *m, const char *text, char *const *origins) {
        _cleanup_(sq_probes_done) SqProbes probes = {};
        char err[256] = "";
        int k;

        if (text) {
                k = sq_probes_parse(text, strlen(text), &probes, err, sizeof err);
                if (k == -ENOMEM)
                        return k;
                if (k < 0) {
                        sq_ppm_error_origin(err, sizeof err, origins);
                        if (!streq_ptr(m->probes_error, err))
                                log_error("The probes in %s are refused: %s", m->source, err);
                        (void) free_and_strdup(&m->probes_error, err);
                        sq_bus_emit_manager_changed(m);
                        return 0;
                }
        }
        if (m->probes_error) {
                m->probes_error = mfree(m->probes_error);
                sq_bus_emit_manager_changed(m);
        }
        if (sq_probes_equal(&probes, &m->probes) && m->n_runners == m->probes.n)
                return 0;

        /* The new runners find what was handed on for their condition types in m->sent: the
         * plugin's own earlier values on the pod are no other writer's. */
        manager_drop_runners(m);
        m->other_writer_strikes = 0;
        sq_probes_done(&m->probes);
        m->probes = probes;
        probes = (SqProbes) {};
        m->runners = calloc(m->probes.n ?: 1, sizeof(SqRunner *));
        if (!m->runners)
                return -ENOMEM;
        for (size_t i = 0; i < m->probes.n; i++) {
                k = sq_runner_new(m, i, &m->runners[i]);
                if (k < 0)
                        return k;
                m->n_runners++;
                log_info("Probe %s: %s of container %s sets condition %s.", m->probes.v[i].name,
                         m->probes.v[i].handler == SQ_HANDLER_HTTP  ? "httpGet"
                         : m->probes.v[i].handler == SQ_HANDLER_TCP ? "tcpSocket"
                                                                    : "exec",
                         m->probes.v[i].container, m->probes.v[i].condition_type);
                sq_runner_schedule(m->runners[i], 0);
        }
        /* One idle connection kept per probe: paced probes reuse theirs (docs/footprint.md). */
        (void) curl_glue_set_max_connections(m->glue, (unsigned) m->probes.n);
        (void) sd_notifyf(false, "STATUS=Running %zu probe(s) from %s", m->n_runners, m->source);
        sq_bus_emit_manager_changed(m);
        return 0;
}

static bool wants_ppms(const SqManager *m) {
        return m->config->enabled &&
               (m->config->source == SQ_SOURCE_AUTO || m->config->source == SQ_SOURCE_PODPROBEMARKER);
}

/* The PodProbeMarkers' probes, when the pod names markers: 1 with *ret_text when they can be
 * used, 0 with *ret_why when not (or not yet: *ret_pending), -ENOMEM. */
static int ppm_text(SqManager *m, char **ret_text, char **ret_why, char ***ret_origins,
                    bool *ret_pending) {
        int k;

        *ret_pending = false;
        if (!m->have_ppms) {
                *ret_pending = true;
                *ret_why = strdup("waiting for the PodProbeMarkers from okg-storaged");
                return *ret_why ? 0 : -ENOMEM;
        }
        k = sq_ppm_probes(m->ppms, m->n_ppms, &m->pod, ret_text, ret_why, ret_origins);
        if (k == -ENOMEM)
                return k;
        return k >= 0 ? 1 : 0;
}

/* Decides the source by the config and what exists, and runs its probes. */
void sq_manager_choose_source(SqManager *m) {
        _cleanup_(freep) char *text = NULL, *reason = NULL, *ppm_why = NULL, *ppm_note = NULL;
        _cleanup_(strv_freep) char **origins = NULL;
        const SqConfig *c = m->config;
        const char *fallback = "";
        bool pending = false;
        int k = -ENOENT;

        if (!c->enabled) {
                set_source(m, "disabled", "enabled: false in the config");
                if (!streq_ptr(m->writer, "disabled")) {
                        (void) free_and_strdup(&m->writer, "disabled");
                        (void) free_and_strdup(&m->writer_reason,
                                               "enabled: false in the config: the plugin writes "
                                               "no conditions");
                        sq_bus_emit_manager_changed(m);
                }
                (void) manager_use_probes(m, NULL, NULL);
                return;
        }
        if (c->source == SQ_SOURCE_PODPROBEMARKER ||
            (c->source == SQ_SOURCE_AUTO && m->have_pod && !isempty(m->pod.ppm_list))) {
                if (!m->have_pod) {
                        set_source(m, "none", "waiting for the pod from okg-storaged");
                        return;
                }
                if (isempty(m->pod.ppm_list)) {
                        set_source(m, "none", "source podprobemarker: the pod has no "
                                              SQ_PPM_LIST_ANNOTATION " annotation");
                        (void) manager_use_probes(m, NULL, NULL);
                        return;
                }
                k = ppm_text(m, &text, &ppm_why, &origins, &pending);
                if (k < 0) {
                        log_error_errno(k, "Failed to read the PodProbeMarkers: %m");
                        return;
                }
                if (k > 0) {
                        reason = sq_strf("source %s: %s, named by the pod's " SQ_PPM_LIST_ANNOTATION
                                         " annotation, followed through okg-storaged",
                                         sq_source_to_string(c->source), strempty(ppm_why));
                        set_source(m, "podprobemarker", strempty(reason));
                        k = manager_use_probes(m, text, origins);
                        if (k < 0)
                                log_error_errno(k, "Failed to set up the probes: %m");
                        return;
                }
                if (pending && (c->source == SQ_SOURCE_PODPROBEMARKER || !m->source ||
                                streq(m->source, "none"))) {
                        set_source(m, "none", strempty(ppm_why));
                        return;
                }
                if (pending)
                        return;  /* what runs goes on until the answer comes */
                if (c->source == SQ_SOURCE_PODPROBEMARKER) {
                        reason = sq_strf("source podprobemarker: %s", strempty(ppm_why));
                        set_source(m, "none", strempty(reason));
                        (void) manager_use_probes(m, NULL, NULL);
                        return;
                }
                /* source auto: the annotation (or its file) as Kruise wrote it at creation. */
                ppm_note = sq_strf("%s; ", strempty(ppm_why));
                fallback = strempty(ppm_note);
        }
        k = -ENOENT;
        if (c->source != SQ_SOURCE_ANNOTATION) {
                k = okg_read_file(c->file, 1024 * 1024, &text, NULL);
                /* An empty file (only white space) holds no probe list: not a refused one. */
                if (k >= 0 && strempty(text)[strspn(strempty(text), " \t\r\n")] == 0) {
                        text = mfree(text);
                        k = -ENODATA;
                }
        }
        if (k >= 0) {
                if (c->source == SQ_SOURCE_FILE)
                        reason = sq_strf("source file: the downward-API file %s", c->file);
                else if (*fallback)
                        reason = sq_strf("source auto, %sthe downward-API file %s", fallback, c->file);
                else
                        reason = sq_strf("source auto, found: the downward-API file %s", c->file);
                set_source(m, "file", strempty(reason));
        } else if (c->source == SQ_SOURCE_FILE) {
                reason = k == -ENODATA ? sq_strf("source file: %s is empty", c->file)
                                       : sq_strf("source file: cannot read %s: %s", c->file,
                                                 okg_file_strerror(k));
                set_source(m, "none", strempty(reason));
        } else if (!m->have_pod) {
                set_source(m, "none", "waiting for the pod from okg-storaged");
                return;
        } else if (!m->pod.annotation) {
                reason = sq_strf("%s%sthe pod has no " SQ_ANNOTATION " annotation",
                                 c->source == SQ_SOURCE_AUTO ? "source auto, " : "",
                                 c->source == SQ_SOURCE_AUTO ? (*fallback ? fallback : "no file and ") : "");
                set_source(m, "none", strempty(reason));
        } else if (m->pod.annotation[strspn(m->pod.annotation, " \t\r\n")] == 0) {
                /* Like an empty file (which is what the downward API makes of it): no probe
                 * list, not a refused one. */
                reason = sq_strf("%s%sthe pod's " SQ_ANNOTATION " annotation is empty",
                                 c->source == SQ_SOURCE_AUTO ? "source auto, " : "source annotation: ",
                                 c->source == SQ_SOURCE_AUTO ? (*fallback ? fallback : "no file and ") : "");
                set_source(m, "none", strempty(reason));
        } else {
                reason = sq_strf("%s%sthe pod's " SQ_ANNOTATION " annotation",
                                 c->source == SQ_SOURCE_AUTO ? "source auto, " : "source annotation: ",
                                 c->source == SQ_SOURCE_AUTO ? (*fallback ? fallback : "no file: ") : "");
                set_source(m, "annotation", strempty(reason));
                text = strdup(m->pod.annotation);
                if (!text)
                        return;
        }
        k = manager_use_probes(m, text, NULL);
        if (k < 0)
                log_error_errno(k, "Failed to set up the probes: %m");
}

/* ---- the conditions ---- */

/* Another writer (kruise-daemon, on a node it serves) sets the same conditions: a condition of
 * ours holds a value this plugin did not hand on (judged against what okg-storaged
 * acknowledged, so a lagging write path is never taken for one), twice in a row. Then the
 * plugin stops writing, so the two never fight (docs/service-quality.md). */
static void manager_check_other_writer(SqManager *m, unsigned *strikes) {
        for (size_t i = 0; i < m->n_runners; i++) {
                SqRunner *r = m->runners[i];
                const SqCondition *c;
                _cleanup_(freep) char *reason = NULL;

                c = sq_pod_condition(&m->pod, r->probe->condition_type);
                if (!c || sq_history_judge(r->sent, c->status, c->message) != SQ_VERDICT_OTHER)
                        continue;
                if (++*strikes < 2)
                        return;
                reason = sq_strf(
                                "condition %s holds status \"%s\" message \"%.200s\", which this "
                                "plugin did not write: another writer (kruise-daemon) serves "
                                "this pod, so the plugin stopped writing conditions",
                                c->type, c->status, c->message);
                log_warning("%s", strempty(reason));
                (void) free_and_strdup(&m->writer, "kruise-daemon");
                (void) free_and_strdup(&m->writer_reason, strempty(reason));
                sq_bus_emit_manager_changed(m);
                return;
        }
        *strikes = 0;
}

/* Storage1's Acknowledged(object, seq): the conditions handed on up to seq reached the pod. */
int sq_manager_on_acknowledged(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        SqManager *m = userdata;
        const char *object;
        uint64_t seq;

        if (sd_bus_message_read(msg, "st", &object, &seq) < 0 || !streq(object, "podstatus"))
                return 0;
        for (size_t i = 0; i < m->sent.n; i++)
                if (sq_history_acknowledged(&m->sent.v[i]->history, seq) < 0) {
                        (void) log_oom();
                        break;
                }
        return 0;
}

static void on_storage_done(int error, const char *message, uint64_t seq, void *userdata) {
        SqManager *m = userdata;

        if (error == -ECANCELED)
                return;
        /* The storage client finishes its calls in the order they were made. */
        m->calls_done++;
        if (error >= 0)
                for (size_t i = 0; i < m->sent.n; i++)
                        sq_history_accepted(&m->sent.v[i]->history, m->calls_done, seq);
        if (error < 0) {
                m->storage_errors++;
                (void) free_and_strdup(&m->last_storage_error,
                                       message ?: "okg-storaged refused the write");
                log_warning_errno(error, "okg-storaged refused the conditions: %s",
                                  message ?: "(no message)");
                sq_bus_emit_manager_changed(m);
                return;
        }
        log_debug("okg-storaged accepted the conditions as write #%llu.", (unsigned long long) seq);
}

static int manager_sync(SqManager *m) {
        _cleanup_(freep) OkgPodCondition *v = NULL;
        _cleanup_(freep) SqRunner **changed = NULL;
        size_t n = 0;
        int k;

        if (!streq_ptr(m->writer, "okg-probed") || !m->storage)
                return 0;
        v = calloc(m->n_runners ?: 1, sizeof *v);
        changed = calloc(m->n_runners ?: 1, sizeof(SqRunner *));
        if (!v || !changed)
                return -ENOMEM;
        for (size_t i = 0; i < m->n_runners; i++) {
                SqRunner *r = m->runners[i];
                const SqTracker *t = &r->tracker;
                if (!t->has_result ||
                    (r->sent->n > 0 && r->sent->status[0] == t->status &&
                     streq_ptr(r->sent->message[0], t->message)))
                        continue;
                v[n] = (OkgPodCondition) { r->probe->condition_type, t->status ? "True" : "False",
                                           strempty(t->message) };
                changed[n++] = r;
        }
        if (n == 0)
                return 0;
        k = okg_storage_set_pod_conditions(m->storage, v, n, on_storage_done, m);
        if (k < 0)
                return k;
        m->condition_writes++;
        m->calls++;
        for (size_t i = 0; i < n; i++) {
                SqRunner *r = changed[i];
                if (sq_history_handed(r->sent, r->tracker.status, r->tracker.message, m->calls) < 0)
                        return -ENOMEM;
                r->n_writes++;
                log_info("Setting pod condition %s to %s (\"%.200s\").", r->probe->condition_type,
                         r->sent->status[0] ? "True" : "False", r->sent->message[0]);
                sq_bus_emit_runner_changed(r);
        }
        sq_bus_emit_manager_changed(m);
        return 0;
}

static int on_sync(sd_event_source *s, void *userdata) {
        int k = manager_sync(userdata);
        if (k < 0)
                log_error_errno(k, "Failed to hand the conditions to okg-storaged: %m");
        return 0;
}

void sq_manager_schedule_sync(SqManager *m) {
        int k;

        /* Several probes may change in one loop iteration: one write for all of them. */
        if (!m->sync_event) {
                k = sd_event_add_defer(m->event, &m->sync_event, on_sync, m);
                if (k < 0) {
                        log_error_errno(k, "Failed to schedule the conditions' write: %m");
                        return;
                }
        }
        k = sd_event_source_set_enabled(m->sync_event, SD_EVENT_ONESHOT);
        if (k < 0)
                log_error_errno(k, "Failed to schedule the conditions' write: %m");
}

/* ---- the pod and its PodProbeMarkers ---- */

static void manager_set_ppms(SqManager *m, SqPpm *v, size_t n) {
        sq_ppms_free(m->ppms, m->n_ppms);
        m->ppms = v;
        m->n_ppms = n;
        m->have_ppms = true;
        sq_bus_emit_manager_changed(m);
}

/* A failed call is one marker that cannot be read, so the reason says it like the others. */
static void manager_ppms_failed(SqManager *m, const char *why) {
        SqPpm *v = calloc(1, sizeof(SqPpm));

        if (v && (!(v[0].name = strdup(strempty(m->pod.ppm_list))) || !(v[0].state = strdup("error")) ||
                  !(v[0].text = sq_strf("GetPodProbeMarkers failed: %s", why)))) {
                sq_ppms_free(v, 1);
                v = NULL;
        }
        if (!v)
                return;
        manager_set_ppms(m, v, 1);
}

static int on_get_ppms(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        SqManager *m = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(reply);
        const char *name, *state, *text;
        SqPpm *v = NULL;
        size_t n = 0;
        int k;

        m->get_ppms_slot = sd_bus_slot_unref(m->get_ppms_slot);
        if (e) {
                log_debug("GetPodProbeMarkers failed: %s", strempty(e->message));
                manager_ppms_failed(m, strempty(e->message));
                sq_manager_choose_source(m);
                return 0;
        }
        k = sd_bus_message_enter_container(reply, 'a', "(sss)");
        while (k >= 0 && (k = sd_bus_message_read(reply, "(sss)", &name, &state, &text)) > 0) {
                SqPpm *t = reallocarray(v, n + 1, sizeof(SqPpm));
                if (!t) {
                        k = -ENOMEM;
                        break;
                }
                v = t;
                v[n] = (SqPpm) { strdup(name), strdup(state), strdup(text) };
                n++;
                if (!v[n - 1].name || !v[n - 1].state || !v[n - 1].text)
                        k = -ENOMEM;
        }
        if (k < 0) {
                sq_ppms_free(v, n);
                manager_ppms_failed(m, "bad reply");
        } else
                manager_set_ppms(m, v, n);
        sq_manager_choose_source(m);
        return 0;
}

/* Asks okg-storaged for the markers the pod names (a bus call: it answers from what it
 * follows, no request to the API server). 1 when a call went out. */
static int manager_refresh_ppms(SqManager *m) {
        sd_bus *bus = m->bus ? okg_bus_get(m->bus) : NULL;
        int k;

        if (!wants_ppms(m) || !m->have_pod || isempty(m->pod.ppm_list))
                return 0;
        if (!streq_ptr(m->ppm_list, m->pod.ppm_list)) {
                /* Another list: what was known is of other markers. */
                sq_ppms_free(m->ppms, m->n_ppms);
                m->ppms = NULL;
                m->n_ppms = 0;
                m->have_ppms = false;
                (void) free_and_strdup(&m->ppm_list, m->pod.ppm_list);
        }
        if (m->get_ppms_slot)
                return 1;
        if (!bus)
                return 0;
        k = sd_bus_call_method_async(bus, &m->get_ppms_slot, OKG_STORAGE_NAME, OKG_STORAGE_PATH,
                                     OKG_STORAGE_IFACE, "GetPodProbeMarkers", on_get_ppms, m, NULL);
        if (k < 0) {
                log_debug_errno(k, "Cannot ask okg-storaged for the PodProbeMarkers: %m");
                return 0;
        }
        return 1;
}

/* At every start okg-storaged has not read the pod yet (or is not on the bus yet): an expected
 * wait, said once at info level; a warning only when it lasts POD_WAIT_WARN_USEC, or for any
 * other error. */
static void manager_log_pod_error(SqManager *m, const sd_bus_error *e, const char *why) {
        bool wait = e && (sd_bus_error_has_name(e, OKG_STORAGE_ERROR_NOT_KNOWN) ||
                          sd_bus_error_has_name(e, SD_BUS_ERROR_SERVICE_UNKNOWN) ||
                          sd_bus_error_has_name(e, SD_BUS_ERROR_NAME_HAS_NO_OWNER));
        uint64_t now = 0;

        (void) sd_event_now(m->event, CLOCK_MONOTONIC, &now);
        if (!streq_ptr(m->pod_error, why)) {
                m->pod_error_since = now;
                m->pod_error_warned = !wait;
                if (wait)
                        log_info("Waiting for okg-storaged to read the pod (%s).", strempty(why));
                else
                        log_warning("Cannot read the pod from okg-storaged: %s", strempty(why));
        } else if (!m->pod_error_warned && now >= m->pod_error_since + POD_WAIT_WARN_USEC) {
                m->pod_error_warned = true;
                log_warning("Cannot read the pod from okg-storaged for %llu s now: %s",
                            (unsigned long long) ((now - m->pod_error_since) / USEC_PER_SEC),
                            strempty(why));
        }
}

static int on_get_pod(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        SqManager *m = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(reply);
        _cleanup_(sq_pod_done) SqPod pod = {};
        const char *json = NULL;
        int k;

        m->get_pod_slot = sd_bus_slot_unref(m->get_pod_slot);
        if (e || sd_bus_message_read(reply, "s", &json) < 0) {
                _cleanup_(freep) char *why = NULL;
                why = sq_strf("GetPod failed: %s", e ? strempty(e->message) : "bad reply");
                manager_log_pod_error(m, e, why);
                (void) free_and_strdup(&m->pod_error, why);
                sq_manager_choose_source(m);
                return 0;
        }
        k = sq_pod_parse(json, strlen(json), &pod);
        if (k < 0) {
                (void) free_and_strdup(&m->pod_error, "GetPod returned no pod object");
                sq_manager_choose_source(m);
                return 0;
        }
        m->pod_error = mfree(m->pod_error);

        /* A container that (re)started gets its first probe at its own time, not a period late. */
        for (size_t i = 0; i < m->n_runners; i++) {
                SqRunner *r = m->runners[i];
                const SqContainer *old = sq_runner_container(r),
                                  *new = sq_pod_container(&pod, r->probe->container);
                if (!r->probing && new &&
                    (!old || old->started_usec != new->started_usec || old->running != new->running))
                        sq_runner_schedule(r, 0);
        }
        sq_pod_done(&m->pod);
        m->pod = pod;
        pod = (SqPod) {};
        m->have_pod = true;

        /* With markers to ask for, the source is chosen when their answer comes (unless an
         * earlier one is known: then now too, and again then). */
        if (manager_refresh_ppms(m) == 0 || m->have_ppms)
                sq_manager_choose_source(m);
        if (streq_ptr(m->writer, "okg-probed"))
                manager_check_other_writer(m, &m->other_writer_strikes);
        return 0;
}

void sq_manager_refresh(SqManager *m) {
        sd_bus *bus = m->bus ? okg_bus_get(m->bus) : NULL;
        int k;

        if (!bus || m->get_pod_slot) {
                sq_manager_choose_source(m);
                return;
        }
        k = sd_bus_call_method_async(bus, &m->get_pod_slot, OKG_STORAGE_NAME, OKG_STORAGE_PATH,
                                     OKG_STORAGE_IFACE, "GetPod", on_get_pod, m, NULL);
        if (k < 0)
                log_debug_errno(k, "Cannot ask okg-storaged for the pod: %m");
}

static int on_refresh(sd_event_source *s, uint64_t usec, void *userdata) {
        SqManager *m = userdata;

        /* A safety net for a missed PropertiesChanged and the downward-API file: bus-local,
         * never a request to the API server. */
        sq_manager_refresh(m);
        (void) sd_event_source_set_time_relative(s, REFRESH_USEC);
        (void) sd_event_source_set_enabled(s, SD_EVENT_ON);
        return 0;
}

/* ---- life cycle ---- */

int sq_manager_new(sd_event *event, SqConfig *config, SqManager **ret) {
        _cleanup_(sq_manager_freep) SqManager *m = NULL;
        int k;

        m = calloc(1, sizeof *m);
        if (!m) {
                sq_config_free(config);
                return -ENOMEM;
        }
        m->event = sd_event_ref(event);
        m->config = config;
        m->writer = strdup("okg-probed");
        m->writer_reason = strdup("no other writer of these conditions seen");
        if (!m->writer || !m->writer_reason)
                return -ENOMEM;
        k = curl_glue_new(event, &m->glue);
        if (k < 0)
                return k;
        *ret = TAKE_PTR(m);
        return 0;
}

SqManager *sq_manager_free(SqManager *m) {
        if (!m)
                return NULL;
        okg_storage_client_free(m->storage);
        m->storage = NULL;
        sd_bus_slot_unref(m->get_pod_slot);
        sd_bus_slot_unref(m->get_ppms_slot);
        okg_bus_free(m->bus);
        m->bus = NULL;
        sd_event_source_disable_unref(m->sync_event);
        sd_event_source_disable_unref(m->refresh_timer);
        manager_drop_runners(m);
        sq_probes_done(&m->probes);
        sq_sent_book_done(&m->sent);
        sq_pod_done(&m->pod);
        sq_ppms_free(m->ppms, m->n_ppms);
        free(m->ppm_list);
        curl_glue_free(m->glue);
        free(m->pod_error);
        free(m->source);
        free(m->source_reason);
        free(m->probes_error);
        free(m->writer);
        free(m->writer_reason);
        free(m->last_storage_error);
        sq_config_free(m->config);
        sd_event_unref(m->event);
        free(m);
        return NULL;
}

int sq_manager_start(SqManager *m, const char *bus_address) {
        int k;

        k = okg_bus_new(m->event, bus_address, SQ_BUS_NAME, sq_bus_setup, sq_bus_connected, m,
                        &m->bus);
        if (k < 0)
                return log_error_errno(k, "Failed to join the private bus as %s: %m", SQ_BUS_NAME);
        k = okg_storage_client_new(m->event, m->bus, &m->storage);
        if (k < 0)
                return log_error_errno(k, "Failed to set up the storage client: %m");
        k = sd_event_add_time_relative(m->event, &m->refresh_timer, CLOCK_MONOTONIC, REFRESH_USEC,
                                       USEC_PER_SEC, on_refresh, m);
        if (k < 0)
                return log_error_errno(k, "Failed to arm the refresh timer: %m");
        (void) sd_event_now(m->event, CLOCK_REALTIME, &m->start_realtime);
        if (!m->config->enabled)
                log_notice("service_quality is disabled (enabled: false); no probes run.");
        sq_manager_refresh(m);
        return 0;
}
