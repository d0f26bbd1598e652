/* The game process; see hotupdated-game.h. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hotupdated-game.h"
#include "log.h"
#include "macro.h"
#include "okg-proc.h"
#include "okg-util.h"

int game_parse_stat(const char *text, GameProc *ret) {
        const char *p;
        GameProc g = {};
        long long ppid;
        unsigned long long start = 0;
        char *end;

        if (!text)
                return -EINVAL;
        /* "PID (comm) S PPID ...": comm may hold anything, so go from the last ')'. */
        p = strrchr(text, ')');
        if (!p || p[1] != ' ' || !p[2] || p[3] != ' ')
                return -EBADMSG;
        g.state = p[2];
        p += 4;
        errno = 0;
        ppid = strtoll(p, &end, 10);
        if (errno != 0 || end == p || ppid < 0 || ppid > INT_MAX)
                return -EBADMSG;
        g.ppid = (pid_t) ppid;
        p = end;
        /* Fields 5..21 are skipped; field 22 is the start time. */
        for (unsigned field = 5; field <= 22; field++) {
                while (*p == ' ')
                        p++;
                if (!*p)
                        return -EBADMSG;
                if (field == 22) {
                        errno = 0;
                        start = strtoull(p, &end, 10);
                        if (errno != 0 || end == p)
                                return -EBADMSG;
                        break;
                }
                while (*p && *p != ' ')
                        p++;
        }
        g.start_ticks = start;
        g.pid = ret->pid;
        *ret = g;
        return 0;
}

static int parse_mask(const char *line, const char *key, uint64_t *ret) {
        const char *v = startswith(line, key);
        char *end;

        if (!v)
                return 0;
        while (*v == ' ' || *v == '\t')
                v++;
        errno = 0;
        *ret = strtoull(v, &end, 16);
        if (errno != 0 || end == v)
                return -EBADMSG;
        return 1;
}

int game_parse_signal_masks(const char *text, GameSigMasks *ret) {
        GameSigMasks m = {};
        unsigned found = 0;
        const char *line = text;

        if (!text)
                return -EINVAL;
        while (line && *line) {
                char buf[128];
                const char *nl = strchr(line, '\n');
                size_t n = nl ? (size_t) (nl - line) : strlen(line);
                int r;

                static const char *const keys[3] = { "SigBlk:", "SigIgn:", "SigCgt:" };
                uint64_t *fields[3] = { &m.blocked, &m.ignored, &m.caught };

                if (n < sizeof buf) {
                        memcpy(buf, line, n);
                        buf[n] = 0;
                        for (unsigned i = 0; i < 3; i++) {
                                r = parse_mask(buf, keys[i], fields[i]);
                                if (r < 0)
                                        return r;
                                if (r > 0)
                                        found |= 1U << i;
                        }
                }
                line = nl ? nl + 1 : NULL;
        }
        if (found != 7)
                return -EBADMSG;
        *ret = m;
        return 0;
}

GameDisposition game_signal_disposition(const GameSigMasks *m, int sig) {
        uint64_t bit;

        if (sig < 1 || sig > 64)
                return GAME_SIGNAL_DEFAULT;
        bit = UINT64_C(1) << (sig - 1);
        if (m->caught & bit)
                return GAME_SIGNAL_CAUGHT;
        if (m->blocked & bit)
                return GAME_SIGNAL_BLOCKED;
        if (m->ignored & bit)
                return GAME_SIGNAL_IGNORED;
        return GAME_SIGNAL_DEFAULT;
}

size_t game_select_topmost(GameProc *procs, size_t n) {
        size_t k = 0;

        /* Decide on the full list first, then compact: a kept entry must not hide one that is
         * checked later. */
        bool *keep = calloc(n ? n : 1, sizeof(bool));
        if (!keep)
                return n;
        for (size_t i = 0; i < n; i++) {
                keep[i] = true;
                for (size_t j = 0; j < n; j++)
                        if (j != i && procs[j].pid == procs[i].ppid) {
                                keep[i] = false;
                                break;
                        }
        }
        for (size_t i = 0; i < n; i++)
                if (keep[i])
                        procs[k++] = procs[i];
        free(keep);
        return k;
}

static int read_proc_file(const char *proc_root, pid_t pid, const char *what, char **ret) {
        char path[PATH_MAX];

        snprintf(path, sizeof path, "%s/%d/%s", proc_root ?: "/proc", (int) pid, what);
        return okg_read_file(path, 64 * 1024, ret, NULL);
}

static int read_proc(const char *proc_root, pid_t pid, GameProc *ret) {
        _cleanup_(freep) char *stat = NULL, *status = NULL;
        GameProc g = { .pid = pid };
        int r;

        r = read_proc_file(proc_root, pid, "stat", &stat);
        if (r < 0)
                return r;
        r = game_parse_stat(stat, &g);
        if (r < 0)
                return r;
        r = read_proc_file(proc_root, pid, "status", &status);
        if (r < 0)
                return r;
        r = game_parse_signal_masks(status, &g.masks);
        if (r < 0)
                return r;
        *ret = g;
        return 0;
}

int game_find(const char *proc_root, const char *title, pid_t exclude_tree, GameProc **ret,
              size_t *ret_n) {
        _cleanup_(freep) pid_t *pids = NULL;
        _cleanup_(freep) GameProc *procs = NULL;
        size_t n = 0;
        int k;

        k = proc_find_by_title(proc_root, title, exclude_tree, &pids);
        if (k < 0)
                return k;
        procs = calloc(k > 0 ? (size_t) k : 1, sizeof *procs);
        if (!procs)
                return -ENOMEM;
        for (int i = 0; i < k; i++) {
                int r = read_proc(proc_root, pids[i], &procs[n]);
                if (r == -ENOMEM)
                        return r;
                if (r < 0) {
                        /* Gone since the scan. */
                        log_debug_errno(r, "Skipping PID %d: %m", (int) pids[i]);
                        continue;
                }
                if (procs[n].state == 'Z' || procs[n].state == 'X')
                        continue;
                n++;
        }
        n = game_select_topmost(procs, n);
        *ret = TAKE_PTR(procs);
        *ret_n = n;
        return 0;
}

bool game_alive(const char *proc_root, const GameProc *p) {
        GameProc now;

        if (read_proc(proc_root, p->pid, &now) < 0)
                return false;
        return now.start_ticks == p->start_ticks && now.state != 'Z' && now.state != 'X';
}

uint64_t game_boot_ticks_now(void) {
        struct timespec ts;
        long hz = sysconf(_SC_CLK_TCK);

        if (hz <= 0)
                hz = 100;
        clock_gettime(CLOCK_BOOTTIME, &ts);
        return (uint64_t) ts.tv_sec * (uint64_t) hz +
               (uint64_t) ts.tv_nsec / (1000000000ULL / (uint64_t) hz);
}
