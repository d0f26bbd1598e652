/* okgctl fleet (also `kubectl okg fleet`): hot-update and status of a GameServerSet through
 * the Kubernetes API. argv[0] is "fleet"; prog is the command's name ("okgctl", "kubectl okg"),
 * its messages start with "PROG fleet:". Returns the exit status: OKG_EXIT_SUCCESS when every
 * pod is at the version (or the status was shown), OKG_EXIT_FAILURE when not, OKG_EXIT_USAGE
 * for an invalid command line (docs/fleet.md). */
#pragma once

#include <stdbool.h>

#include "okg-daemon.h"

OkgExitCode fleet_main(int argc, char **argv, bool json, const char *prog);
