/* The one registry of plugin kinds: what okg-sidecard starts, and what its config loader, the
 * unit tests and the config fuzzer check each plugin's `config` section with. A new kind is one
 * entry in sidecard-plugins.c (see "Adding a config section" in okg-config.h). */
#pragma once

#include <stddef.h>

#include "okg-config.h"

extern const PluginType plugin_types[];
extern const size_t n_plugin_types;
