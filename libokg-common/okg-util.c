/* I/O and maths helpers; see okg-util.h. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "okg-build-config.h"
#include "macro.h"
#include "okg-util.h"

static bool is_executable(const char *p) {
        struct stat st;
        return stat(p, &st) >= 0 && S_ISREG(st.st_mode) && access(p, X_OK) >= 0;
}

static int exe_dir(char **ret) {
        char buf[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
        char *slash;

        if (n < 0)
                return -errno;
        buf[n] = 0;
        slash = strrchr(buf, '/');
        if (!slash)
                return -EINVAL;
        *slash = 0;
        *ret = strdup(buf);
        return *ret ? 0 : -ENOMEM;
}

_printf_(2, 3) static int try_path(char **ret, const char *fmt, ...) {
        char *p = NULL;
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = vasprintf(&p, fmt, ap);
        va_end(ap);
        if (r < 0)
                return -ENOMEM;
        if (is_executable(p)) {
                *ret = p;
                return 1;
        }
        free(p);
        return 0;
}

int okg_find_executable(const char *name, char **ret) {
        _cleanup_(freep) char *dir = NULL;
        const char *e = getenv("OKG_LIBEXECDIR");
        int r;

        /* $OKG_LIBEXECDIR is the one place to look: its path is used as it is, so a program
         * missing there or not executable is told by execve() with its reason. */
        if (!isempty(e))
                return asprintf(ret, "%s/%s", e, name) < 0 ? -ENOMEM : 0;

        if (exe_dir(&dir) >= 0) {
                r = try_path(ret, "%s/%s", dir, name);
                if (r != 0)
                        return r < 0 ? r : 0;
                /* Running from the meson build tree: each daemon sits in its own folder. */
                r = try_path(ret, "%s/../%s/%s", dir, name, name);
                if (r != 0)
                        return r < 0 ? r : 0;
        }
        r = try_path(ret, "%s/%s", OKG_INSTALL_LIBEXECDIR, name);
        if (r != 0)
                return r < 0 ? r : 0;
        return -ENOENT;
}

int okg_find_data_file(const char *envvar, const char *subdir, const char *name, char **ret) {
        const char *e = envvar ? getenv(envvar) : NULL;
        char *p = NULL;

        if (!isempty(e)) {
                p = strdup(e);
                if (!p)
                        return -ENOMEM;
                *ret = p;
                return access(p, R_OK) >= 0 ? 0 : -errno;
        }
        if (asprintf(&p, "%s/%s/%s", OKG_BUILD_ROOT, subdir, name) < 0)
                return -ENOMEM;
        if (access(p, R_OK) >= 0) {
                *ret = p;
                return 0;
        }
        free(p);
        if (asprintf(&p, "%s/%s", OKG_INSTALL_DATADIR, name) < 0)
                return -ENOMEM;
        if (access(p, R_OK) >= 0) {
                *ret = p;
                return 0;
        }
        free(p);
        return -ENOENT;
}

int okg_mkdir_p(const char *path, mode_t mode) {
        _cleanup_(freep) char *p = strdup(path);
        if (!p)
                return -ENOMEM;
        for (char *s = p + 1; *s; s++) {
                if (*s != '/')
                        continue;
                *s = 0;
                if (mkdir(p, mode) < 0 && errno != EEXIST)
                        return -errno;
                *s = '/';
        }
        if (mkdir(p, mode) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}

int okg_path_join_absolute(const char *base, const char *path, char **ret) {
        size_t blen;
        char *p;

        if (isempty(path) || isempty(base) || base[0] != '/')
                return -EINVAL;
        if (path[0] == '/') {
                p = strdup(path);
        } else {
                while (path[0] == '.' && path[1] == '/') {
                        path += 2;
                        while (*path == '/')
                                path++;
                }
                if (streq(path, "."))
                        path = "";
                blen = strlen(base);
                while (blen > 1 && base[blen - 1] == '/')
                        blen--;
                if (isempty(path))
                        p = strndup(base, blen);
                else if (asprintf(&p, "%.*s%s%s", (int) blen, base, blen == 1 ? "" : "/", path) < 0)
                        p = NULL;
        }
        if (!p)
                return -ENOMEM;
        *ret = p;
        return 0;
}

int okg_path_make_absolute(const char *path, char **ret) {
        _cleanup_(freep) char *cwd = NULL;

        if (isempty(path))
                return -EINVAL;
        if (path[0] == '/')
                return okg_path_join_absolute("/", path, ret);
        cwd = getcwd(NULL, 0);
        if (!cwd)
                return -errno;
        return okg_path_join_absolute(cwd, path, ret);
}

bool okg_http_header_value_valid(const char *s) {
        for (; *s; s++) {
                unsigned char c = (unsigned char) *s;
                if ((c < 0x20 && c != '\t') || c == 0x7f)
                        return false;
        }
        return true;
}

bool okg_bus_is_address(const char *s) {
        size_t n = 0;

        if (!s)
                return false;
        while ((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= 'A' && s[n] <= 'Z') ||
               (s[n] >= '0' && s[n] <= '9') || s[n] == '-')
                n++;
        return n > 0 && s[n] == ':' && strchr(s + n, '=');
}

int okg_bus_address_from_socket(const char *socket, char **ret) {
        static const char prefix[] = "unix:path=";
        const char *hex = "0123456789abcdef";
        char *p, *q;

        if (isempty(socket))
                return -EINVAL;
        p = malloc(sizeof(prefix) + strlen(socket) * 3);
        if (!p)
                return -ENOMEM;
        q = stpcpy(p, prefix);
        for (const unsigned char *c = (const unsigned char *) socket; *c; c++)
                if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
                    strchr("-_/.\\*", *c))
                        *q++ = (char) *c;
                else {
                        *q++ = '%';
                        *q++ = hex[*c >> 4];
                        *q++ = hex[*c & 15];
                }
        *q = '\0';
        *ret = p;
        return 0;
}

int okg_read_file(const char *path, size_t max, char **ret, size_t *ret_len) {
        _cleanup_(closep) int fd = -EBADF;
        _cleanup_(freep) char *buf = NULL;
        size_t len = 0, cap = 0;
        struct stat st;

        /* O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer for ever,
         * and a device is nothing to parse. Only regular files are read. */
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (S_ISDIR(st.st_mode))
                return -EISDIR;
        if (!S_ISREG(st.st_mode))
                return -EBADFD;
        for (;;) {
                ssize_t n;
                if (cap - len < 4096) {
                        size_t ncap = cap ? cap * 2 : 8192;
                        char *t;
                        if (ncap > max + 4096)
                                ncap = max + 4096;
                        if (ncap <= len + 1)
                                return -EFBIG;
                        t = realloc(buf, ncap);
                        if (!t)
                                return -ENOMEM;
                        buf = t;
                        cap = ncap;
                }
                n = read(fd, buf + len, cap - len - 1);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        break;
                len += (size_t) n;
                if (len > max)
                        return -EFBIG;
        }
        if (!buf) {
                buf = strdup("");
                if (!buf)
                        return -ENOMEM;
        }
        buf[len] = 0;
        *ret = TAKE_PTR(buf);
        if (ret_len)
                *ret_len = len;
        return 0;
}

const char *okg_file_strerror(int r) {
        if (r == -EBADFD)
                return "not a regular file";
        if (r == -EBADMSG)
                return "no PEM certificate in it";
        return strerror(r < 0 ? -r : r);
}

bool okg_pem_has_certificate(const char *text, size_t len) {
        static const char begin[] = "-----BEGIN ", end[] = "CERTIFICATE-----";
        const char *p = text, *stop = text + len;

        while (p < stop) {
                const char *b = memmem(p, (size_t) (stop - p), begin, sizeof begin - 1);
                const char *eol, *label;
                if (!b)
                        return false;
                label = b + sizeof begin - 1;
                eol = memchr(label, '\n', (size_t) (stop - label)) ?: stop;
                while (eol > label && (eol[-1] == '\r' || eol[-1] == ' ' || eol[-1] == '\t'))
                        eol--;
                if ((size_t) (eol - label) >= sizeof end - 1 &&
                    memcmp(eol - (sizeof end - 1), end, sizeof end - 1) == 0)
                        return true;
                p = label;
        }
        return false;
}

int okg_read_ca_file(const char *path, size_t max, char **ret, size_t *ret_len) {
        _cleanup_(freep) char *text = NULL;
        size_t len = 0;
        int r;

        r = okg_read_file(path, max, &text, &len);
        if (r < 0)
                return r;
        if (!okg_pem_has_certificate(text, len))
                return -EBADMSG;
        *ret = TAKE_PTR(text);
        if (ret_len)
                *ret_len = len;
        return 0;
}

static int write_file_replace(const char *path, const void *data, size_t len, mode_t mode,
                              bool durable) {
        _cleanup_(freep) char *tmp = NULL, *dir = NULL;
        _cleanup_(closep) int fd = -EBADF, dfd = -EBADF;
        const char *slash;
        size_t done = 0;
        int r;

        if (asprintf(&tmp, "%s.tmp-XXXXXX", path) < 0)
                return -ENOMEM;
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return -errno;
        while (done < len) {
                ssize_t n = write(fd, (const char *) data + done, len - done);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        r = -errno;
                        goto fail;
                }
                done += (size_t) n;
        }
        if (fchmod(fd, mode) < 0 || (durable && fsync(fd) < 0)) {
                r = -errno;
                goto fail;
        }
        if (rename(tmp, path) < 0) {
                r = -errno;
                goto fail;
        }
        if (!durable)
                return 0;
        slash = strrchr(path, '/');
        dir = slash ? strndup(path, slash == path ? 1 : (size_t) (slash - path)) : strdup(".");
        if (!dir)
                return -ENOMEM;
        dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0)
                (void) fsync(dfd);
        return 0;
fail:
        (void) unlink(tmp);
        return r;
}

int okg_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode) {
        return write_file_replace(path, data, len, mode, true);
}

int okg_write_file_replace(const char *path, const void *data, size_t len, mode_t mode) {
        return write_file_replace(path, data, len, mode, false);
}

uint64_t okg_backoff_usec(unsigned attempt, uint64_t first, uint64_t cap) {
        uint64_t d = first;
        if (attempt == 0)
                return 0;
        for (unsigned i = 1; i < attempt; i++) {
                if (d >= cap / 2) {
                        d = cap;
                        break;
                }
                d *= 2;
        }
        return d < cap ? d : cap;
}

uint64_t okg_now_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000;
}
