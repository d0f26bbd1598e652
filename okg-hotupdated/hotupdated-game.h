/* The game process: finding it by title, deciding which matches to signal and whether a signal
 * is safe to send, and sending it. The parsers and the selection are pure (unit tested on text);
 * game_find()/game_signal()/game_alive() read /proc and call kill(2). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct GameSigMasks {
        uint64_t blocked, ignored, caught;    /* SigBlk, SigIgn, SigCgt of /proc/PID/status */
} GameSigMasks;

typedef struct GameProc {
        pid_t pid;
        pid_t ppid;
        char state;                 /* R, S, D, Z, ... */
        uint64_t start_ticks;       /* since boot, in clock ticks (field 22 of /proc/PID/stat) */
        GameSigMasks masks;
} GameProc;

typedef enum GameDisposition {
        GAME_SIGNAL_CAUGHT,         /* a handler: the game reloads */
        GAME_SIGNAL_BLOCKED,        /* blocked, e.g. read through signalfd: the game reloads */
        GAME_SIGNAL_IGNORED,        /* sending it does nothing */
        GAME_SIGNAL_DEFAULT,        /* the default action, for SIGHUP: the game dies */
} GameDisposition;

/* /proc/PID/stat: ppid, state and start time. The command name may contain spaces and ')'. */
int game_parse_stat(const char *text, GameProc *ret);
/* The three masks from /proc/PID/status. */
int game_parse_signal_masks(const char *text, GameSigMasks *ret);
GameDisposition game_signal_disposition(const GameSigMasks *m, int sig);
/* Several processes with the title: keep those whose parent is not itself a match (a master
 * that forked workers under the same title is signalled, its workers are not). In place,
 * order kept; returns the new count. */
size_t game_select_topmost(GameProc *procs, size_t n);

/* Scans proc_root (NULL: /proc) for the title, skipping the suite (exclude_tree, see okg-proc.h),
 * and returns the selected processes with their stat and masks. 0 matches is not an error. */
int game_find(const char *proc_root, const char *title, pid_t exclude_tree, GameProc **ret,
              size_t *ret_n);
/* Still the same process (same start time) and not a zombie. */
bool game_alive(const char *proc_root, const GameProc *p);
/* CLOCK_BOOTTIME in clock ticks: compared with GameProc.start_ticks. */
uint64_t game_boot_ticks_now(void);
