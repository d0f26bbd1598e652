/* Finding processes by their title (/proc/PID/cmdline as `ps` shows it); see okg-proc.h. */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>

#include "log.h"
#include "macro.h"
#include "okg-proc.h"

/* An upper bound against a broken or hostile proc tree; the kernel caps argv far below. */
#define CMDLINE_MAX ((size_t) 16U * 1024U * 1024U)
/* Process trees are shallow; a longer PPid chain means a loop in a fake tree. */
#define ANCESTRY_MAX 4096

bool proc_cmdline_matches(const char *cmdline, size_t len, const char *name) {
        size_t n;

        if (!cmdline || isempty(name))
                return false;

        /* Trailing NULs are not part of the title (and a kernel thread's cmdline is empty). */
        while (len > 0 && cmdline[len - 1] == 0)
                len--;

        n = strlen(name);
        if (len < n)
                return false;

        for (size_t i = 0; i < n; i++) {
                char c = cmdline[i] == 0 ? ' ' : cmdline[i];
                if (c != name[i])
                        return false;
        }

        return len == n || cmdline[n] == 0 || cmdline[n] == ' ';
}

static int parse_pid(const char *s, pid_t *ret) {
        unsigned long long v = 0;

        if (!s || !*s || *s == '0')
                return -EINVAL;
        for (const char *p = s; *p; p++) {
                if (*p < '0' || *p > '9')
                        return -EINVAL;
                v = v * 10 + (unsigned) (*p - '0');
                if (v > INT_MAX)
                        return -ERANGE;
        }
        *ret = (pid_t) v;
        return 0;
}

/* Reads all of /proc/PID/cmdline: it can exceed a page and is only returned in pieces. */
static int read_cmdline(int dir_fd, pid_t pid, char **ret, size_t *ret_len) {
        _cleanup_(closep) int fd = -EBADF;
        _cleanup_(freep) char *buf = NULL;
        size_t size = 4096, len = 0;
        char path[32];

        snprintf(path, sizeof path, "%d/cmdline", (int) pid);
        fd = openat(dir_fd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;

        buf = malloc(size);
        if (!buf)
                return -ENOMEM;

        for (;;) {
                ssize_t k;

                if (len == size) {
                        char *p;

                        if (size >= CMDLINE_MAX)
                                return -E2BIG;
                        p = realloc(buf, size * 2);
                        if (!p)
                                return -ENOMEM;
                        buf = p;
                        size *= 2;
                }

                k = read(fd, buf + len, size - len);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        break;
                len += (size_t) k;
        }

        *ret = TAKE_PTR(buf);
        *ret_len = len;
        return 0;
}

/* PPid from /proc/PID/status (present in real and fake trees alike). */
static int read_ppid(int dir_fd, pid_t pid, pid_t *ret) {
        _cleanup_(fclosep) FILE *f = NULL;
        char path[32], line[256];
        int fd;

        snprintf(path, sizeof path, "%d/status", (int) pid);
        fd = openat(dir_fd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        f = fdopen(fd, "re");
        if (!f) {
                int r = -errno;
                close(fd);
                return r;
        }

        while (fgets(line, sizeof line, f)) {
                const char *v = startswith(line, "PPid:");
                char *end;
                long p;

                if (!v)
                        continue;
                while (*v == ' ' || *v == '\t')
                        v++;
                errno = 0;
                p = strtol(v, &end, 10);
                if (errno != 0 || end == v || p < 0 || p > INT_MAX)
                        return -EBADMSG;
                *ret = (pid_t) p;
                return 0;
        }

        return -EBADMSG;
}

/* True when pid is `root` or below it. A process whose ancestry cannot be read (it or a parent
 * vanished) counts as outside: a reparented process is no longer in the tree anyway. */
static bool in_tree(int dir_fd, pid_t pid, pid_t root) {
        pid_t cur = pid;

        for (unsigned i = 0; i < ANCESTRY_MAX; i++) {
                pid_t parent = 0;

                if (cur == root)
                        return true;
                if (cur <= 1)
                        return false;
                if (read_ppid(dir_fd, cur, &parent) < 0)
                        return false;
                cur = parent;
        }
        return false;
}

static int cmp_pid(const void *a, const void *b) {
        pid_t x = *(const pid_t *) a, y = *(const pid_t *) b;
        return (x > y) - (x < y);
}

int proc_find_by_title(const char *proc_root, const char *name, pid_t exclude_tree,
                       pid_t **ret_pids) {
        _cleanup_(freep) pid_t *pids = NULL;
        DIR *d;
        size_t n = 0, allocated = 0;
        pid_t self = getpid();
        struct dirent *de;
        int dir_fd, r = 0;

        if (isempty(name))
                return -EINVAL;

        d = opendir(proc_root ?: "/proc");
        if (!d)
                return -errno;
        dir_fd = dirfd(d);

        for (;;) {
                _cleanup_(freep) char *cmdline = NULL;
                size_t len = 0;
                pid_t pid;
                int k;

                errno = 0;
                de = readdir(d);
                if (!de) {
                        if (errno != 0)
                                r = -errno;
                        break;
                }

                if (parse_pid(de->d_name, &pid) < 0)
                        continue;
                if (pid == self)
                        continue;

                /* Processes come and go during a scan; those we cannot read do not match. */
                k = read_cmdline(dir_fd, pid, &cmdline, &len);
                if (k == -ENOMEM) {
                        r = k;
                        break;
                }
                if (k < 0) {
                        log_debug_errno(k, "Skipping PID %d, cannot read its cmdline: %m",
                                        (int) pid);
                        continue;
                }

                if (!proc_cmdline_matches(cmdline, len, name))
                        continue;
                if (exclude_tree > 0 && in_tree(dir_fd, pid, exclude_tree))
                        continue;

                if (n == allocated) {
                        size_t m = allocated ? allocated * 2 : 8;
                        pid_t *p = realloc(pids, m * sizeof *p);
                        if (!p) {
                                r = -ENOMEM;
                                break;
                        }
                        pids = p;
                        allocated = m;
                }
                pids[n++] = pid;
        }

        closedir(d);
        if (r < 0)
                return r;

        if (n > INT_MAX)
                return -E2BIG;

        if (ret_pids) {
                if (n > 1)
                        qsort(pids, n, sizeof *pids, cmp_pid);
                *ret_pids = TAKE_PTR(pids);
        }
        return (int) n;
}
