/* io.kruise.game.Probe1: the manager object and one object per endpoint (docs/bus-api.md). */
#pragma once

#include <systemd/sd-bus.h>

#include "okg-bus-api.h"

typedef struct Manager Manager;
typedef struct Endpoint Endpoint;

/* OkgBusSetupFunc: adds the objects on every (re)connect; userdata is the Manager. */
int probe_bus_setup(sd_bus *bus, void *userdata);

void probe_bus_emit_endpoint_changed(Endpoint *e);
void probe_bus_emit_manager_changed(Manager *m);
void probe_bus_emit_state_changed(Manager *m, Endpoint *e, const char *old_state,
                                  const char *new_state);
