/* okg-probed: the http_probe plugin, and the service_quality plugin when started as it. Probes the game's endpoints and maps their answers through
 * markerPolices to the GameServer's opsState via okg-storaged (docs/probe.md). */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#include "log.h"
#include "okg-daemon.h"
#include "probed-config.h"
#include "probed-manager.h"
#include "probed-sq-manager.h"

/* One kind of plugin this daemon runs: its config section and its context's life cycle. The
 * context's constructor takes the config, also when it fails. */
typedef struct PluginKind {
        const char *name;
        OkgSectionParseFunc parse;
        int (*new)(sd_event *e, void *config, void **ret);
        int (*start)(void *context);
        void (*free)(void *context);
        void (*ready)(void *context);     /* tells okg-sidecard READY=1 and what it does */
        bool reaps_children;              /* runs exec probes: sd-event reaps them via SIGCHLD */
} PluginKind;

/* The typed functions of a kind behind PluginKind's untyped ones. */
#define PLUGIN_KIND_GLUE(kind, Context, parse_fn, new_fn, start_fn, free_fn)                    \
        OKG_SECTION_PARSER(kind##_parse, parse_fn)                                                \
        static int kind##_new(sd_event *e, void *config, void **ret) {                            \
                Context *m = NULL; /* NOLINT(bugprone-macro-parentheses): a type */      \
                int r = new_fn(e, config, &m);                                                    \
                if (r >= 0)                                                                       \
                        *ret = m;                                                                 \
                return r;                                                                         \
        }                                                                                         \
        static int kind##_start(void *m) {                                                        \
                return start_fn(m, NULL);                                                         \
        }                                                                                         \
        static void kind##_free(void *m) {                                                        \
                free_fn(m);                                                                       \
        }

PLUGIN_KIND_GLUE(probe, Manager, probe_config_parse, manager_new, manager_start, manager_free)
PLUGIN_KIND_GLUE(sq, SqManager, sq_config_parse, sq_manager_new, sq_manager_start, sq_manager_free)

static void probe_ready(void *context) {
        Manager *m = context;
        (void) sd_notifyf(false, "READY=1\nSTATUS=Probing %zu endpoint(s)", m->n_endpoints);
}

static void sq_ready(void *context) {
        (void) sd_notify(false, "READY=1\nSTATUS=Waiting for the pod");
}

/* The first is the default. service_quality: docs/service-quality.md. */
static const PluginKind plugin_kinds[] = {
        { "http_probe", probe_parse, probe_new, probe_start, probe_free, probe_ready, false },
        { "service_quality", sq_parse, sq_new, sq_start, sq_free, sq_ready, true },
};

/* The plugin name okg-sidecard starts us as: --plugin NAME, else $OKG_PLUGIN_NAME. */
static const char *plugin_name(int argc, char **argv) {
        for (int i = 1; i < argc; i++) {
                if (streq(argv[i], "--plugin") && i + 1 < argc)
                        return argv[i + 1];
                if (strncmp(argv[i], "--plugin=", 9) == 0)
                        return argv[i] + 9;
        }
        return getenv("OKG_PLUGIN_NAME");
}

static const PluginKind *plugin_kind(const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(plugin_kinds); i++)
                if (streq_ptr(name, plugin_kinds[i].name))
                        return &plugin_kinds[i];
        return &plugin_kinds[0];
}

static int run(int argc, char **argv) {
        _cleanup_(okg_plugin_context_done) OkgPluginContext c = {};
        const PluginKind *k = plugin_kind(plugin_name(argc, argv));
        void *config = NULL, *m = NULL;
        int r;

        r = okg_daemon_plugin_begin(argc, argv, "okg-probed",
                                    "HTTP probe and service_quality plugin of okg-sidecar.",
                                    k->name, k->parse, &c, &config);
        if (!config)
                return r;
        if (k->reaps_children) {
                sigset_t mask;
                (void) sigemptyset(&mask);
                (void) sigaddset(&mask, SIGCHLD);
                (void) sigprocmask(SIG_BLOCK, &mask, NULL);
        }
        r = k->new(c.event, TAKE_PTR(config), &m);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the %s plugin: %m", k->name);
        r = k->start(m);
        if (r >= 0) {
                k->ready(m);
                r = okg_daemon_loop(c.event);
        }
        k->free(m);
        return r;
}

OKG_DEFINE_MAIN_FUNCTION(run);
