/* okgctl fleet (also `kubectl okg fleet`): hot-update and status of a GameServerSet through
 * the Kubernetes API. argv[0] is "fleet". Returns the exit status. */
#pragma once

#include <stdbool.h>

int fleet_main(int argc, char **argv, bool json);
