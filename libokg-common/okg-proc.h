/* Finding a game process by its title, the way `ps` shows it: /proc/PID/cmdline with the NUL
 * separators turned into spaces. A title matches when it equals `name`, or starts with `name`
 * followed by a space (so "nginx: master process nginx" matches "nginx: master process nginx
 * -g daemon off;"). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Pure matching on a raw cmdline buffer (NUL separated, as read from /proc). */
bool proc_cmdline_matches(const char *cmdline, size_t len, const char *name);

/* Scans proc_root ("/proc" in production, a fake tree in tests). Skips our own process and
 * every descendant of `exclude_tree` (the suite's okg-sidecard; 0 = none). Returns the number
 * of matches found (>= 0) and, when ret_pids is non-NULL, the matching PIDs in ascending
 * order (the caller frees). */
int proc_find_by_title(const char *proc_root, const char *name, pid_t exclude_tree,
                       pid_t **ret_pids);
