/* Temp files, install and restore in the download folder; see hotupdated-files.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hotupdated-files.h"
#include "log.h"
#include "macro.h"
#include "okg-util.h"

#define PREFIX_TMP ".okg-tmp-"
#define PREFIX_NEW ".okg-new-"
#define PREFIX_PREV ".okg-prev-"

/* The topmost missing folder on the way to path (path itself when only it is missing), or
 * NULL in *ret when path exists. */
static int topmost_missing(const char *path, char **ret) {
        _cleanup_(freep) char *p = NULL;
        struct stat st;

        *ret = NULL;
        if (stat(path, &st) >= 0 || errno != ENOENT)
                return 0;
        p = strdup(path);
        if (!p)
                return -ENOMEM;
        for (;;) {
                char *slash = strrchr(p, '/');

                if (!slash || slash == p)
                        break;
                *slash = 0;
                if (stat(p, &st) >= 0 || errno != ENOENT) {
                        *slash = '/';
                        break;
                }
        }
        *ret = TAKE_PTR(p);
        return 0;
}

int files_open_dir(const char *path, int *ret_fd, char **ret_created) {
        _cleanup_(freep) char *created = NULL;
        int fd, r;

        if (ret_created) {
                r = topmost_missing(path, &created);
                if (r < 0)
                        return r;
        }
        r = okg_mkdir_p(path, 0755);
        if (r < 0)
                return r;
        fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        *ret_fd = fd;
        if (ret_created)
                *ret_created = TAKE_PTR(created);
        return 0;
}

int files_remove_stale(int dfd) {
        DIR *d;
        struct dirent *de;
        int fd, n = 0;

        fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        d = fdopendir(fd);
        if (!d) {
                int r = -errno;
                close(fd);
                return r;
        }
        while ((de = readdir(d)))
                if ((startswith(de->d_name, PREFIX_TMP) || startswith(de->d_name, PREFIX_NEW)) &&
                    unlinkat(dfd, de->d_name, 0) >= 0)
                        n++;
        closedir(d);
        return n;
}

static int random_name(const char *prefix, char *buf, size_t size) {
        uint64_t v;

        if (getrandom(&v, sizeof v, GRND_NONBLOCK) != (ssize_t) sizeof v)
                v = (uint64_t) getpid() << 32 ^ okg_now_usec();
        snprintf(buf, size, "%s%016llx", prefix, (unsigned long long) v);
        return 0;
}

int files_tmp_open(int dfd, TmpFile *ret) {
        char name[64];
        int fd;

        /* Unnamed: nothing to clean up if we are killed mid-download. */
        fd = openat(dfd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0644);
        if (fd >= 0) {
                *ret = (TmpFile) { .fd = fd };
                return 0;
        }
        if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
                return -errno;

        for (unsigned attempt = 0; attempt < 16; attempt++) {
                random_name(PREFIX_TMP, name, sizeof name);
                fd = openat(dfd, name, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC | O_NOFOLLOW, 0644);
                if (fd >= 0) {
                        char *n = strdup(name);
                        if (!n) {
                                (void) unlinkat(dfd, name, 0);
                                close(fd);
                                return -ENOMEM;
                        }
                        *ret = (TmpFile) { .fd = fd, .name = n };
                        return 0;
                }
                if (errno != EEXIST)
                        return -errno;
        }
        return -EEXIST;
}

int files_tmp_write(TmpFile *t, const void *data, size_t len) {
        const char *p = data;

        while (len > 0) {
                ssize_t n = write(t->fd, p, len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += n;
                len -= (size_t) n;
                t->size += (uint64_t) n;
        }
        return 0;
}

void files_tmp_discard(int dfd, TmpFile *t) {
        if (!t)
                return;
        if (t->fd >= 0)
                close(t->fd);
        if (t->name)
                (void) unlinkat(dfd, t->name, 0);
        free(t->name);
        *t = TMP_FILE_NULL;
}

static int prev_name(const char *name, char *buf, size_t size) {
        if ((size_t) snprintf(buf, size, "%s%s", PREFIX_PREV, name) >= size)
                return -ENAMETOOLONG;
        return 0;
}

/* Gives the temp file a name in the folder (O_TMPFILE has none yet). */
static int tmp_materialize(int dfd, TmpFile *t) {
        char name[64], proc[64];

        if (t->name)
                return 0;
        snprintf(proc, sizeof proc, "/proc/self/fd/%d", t->fd);
        for (unsigned attempt = 0; attempt < 16; attempt++) {
                random_name(PREFIX_NEW, name, sizeof name);
                if (linkat(AT_FDCWD, proc, dfd, name, AT_SYMLINK_FOLLOW) >= 0) {
                        t->name = strdup(name);
                        if (!t->name) {
                                (void) unlinkat(dfd, name, 0);
                                return -ENOMEM;
                        }
                        return 0;
                }
                if (errno != EEXIST)
                        return -errno;
        }
        return -EEXIST;
}

/* Hard-links name as prev, replacing prev in one step. */
static int keep_by_link(int dfd, const char *name, const char *prev) {
        char keep[64];
        int r;

        random_name(PREFIX_NEW, keep, sizeof keep);
        if (linkat(dfd, name, dfd, keep, 0) < 0)
                return -errno;
        if (renameat(dfd, keep, dfd, prev) < 0) {
                r = -errno;
                (void) unlinkat(dfd, keep, 0);
                return r;
        }
        return 0;
}

/* Puts the temp file (named by now) in place of name, which exists; the file that was in place
 * becomes prev. -ENOENT when name went away meanwhile. On failure nothing changed, and the temp
 * file is still the caller's (t->name is cleared in the one case where it names the old file).
 * *ret_failed is set to prev when that name is the one that failed. */
static int replace_keeping_previous(int dfd, TmpFile *t, const char *name, const char *prev,
                                    const char **ret_failed) {
        int r;

        /* No hard link to the file in place: with fs.protected_hardlinks the kernel refuses
         * one to another user's file (an init container's, say), where renames in a folder the
         * sidecar may write work. */
        if (renameat2(dfd, t->name, dfd, name, RENAME_EXCHANGE) < 0) {
                if (errno != EINVAL)
                        return -errno;
                /* A file system without the exchange: a second name for the file in place,
                 * where the kernel allows one. */
                r = keep_by_link(dfd, name, prev);
                if (r < 0) {
                        *ret_failed = prev;
                        return r;
                }
                return renameat(dfd, t->name, dfd, name) < 0 ? -errno : 0;
        }
        /* The file that was in place now has the temp file's name. */
        if (renameat(dfd, t->name, dfd, prev) >= 0)
                return 0;
        r = -errno;
        *ret_failed = prev;
        if (renameat2(dfd, t->name, dfd, name, RENAME_EXCHANGE) < 0) {
                log_error_errno(r, "Cannot keep the previous %s as %s; it is left as %s.", name,
                                prev, t->name);
                free(t->name);
                t->name = NULL;
        }
        return r;
}

/* The file in place is complete under one name or another at every step, and the game never
 * finds the name missing. *ret_failed: the name in the folder that failed (name or prev), NULL
 * for the temp file or the folder itself. */
static int files_install_steps(int dfd, TmpFile *t, const char *name, char *prev,
                               size_t prev_size, bool *ret_had_previous,
                               const char **ret_failed) {
        bool had_previous = false;
        struct stat st;
        int r;

        if (prev_name(name, prev, prev_size) < 0)
                return -ENAMETOOLONG;
        *ret_failed = NULL;
        if (fchmod(t->fd, 0644) < 0 || fsync(t->fd) < 0)
                return -errno;
        *ret_failed = name;

        if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) >= 0) {
                if (S_ISDIR(st.st_mode))
                        return -EISDIR;
                had_previous = true;
        } else if (errno != ENOENT)
                return -errno;

        *ret_failed = NULL;
        r = tmp_materialize(dfd, t);
        if (r < 0)
                return r;
        *ret_failed = name;

        if (had_previous) {
                r = replace_keeping_previous(dfd, t, name, prev, ret_failed);
                if (r == -ENOENT)
                        had_previous = false;
        }
        if (!had_previous) {
                r = 0;
                *ret_failed = name;
                if (unlinkat(dfd, prev, 0) < 0 && errno != ENOENT) {
                        r = -errno;
                        *ret_failed = prev;
                } else if (renameat(dfd, t->name, dfd, name) < 0)
                        r = -errno;
        }
        if (r < 0) {
                files_tmp_discard(dfd, t);
                return r;
        }
        free(t->name);
        t->name = NULL;
        close(t->fd);
        t->fd = -EBADF;
        (void) fsync(dfd);
        *ret_had_previous = had_previous;
        return 0;
}

int files_install(int dfd, TmpFile *t, const char *name, bool *ret_had_previous,
                  char *ret_failed, size_t failed_size) {
        char prev[NAME_MAX + 16];
        const char *failed = name;
        bool had_previous = false;
        int r;

        r = files_install_steps(dfd, t, name, prev, sizeof prev, &had_previous, &failed);
        if (r < 0) {
                snprintf(ret_failed, failed_size, "%s", strempty(failed));
                return r;
        }
        *ret_had_previous = had_previous;
        return 0;
}

int files_restore(int dfd, const char *name, bool had_previous) {
        char prev[NAME_MAX + 16];

        if (prev_name(name, prev, sizeof prev) < 0)
                return -ENAMETOOLONG;
        if (had_previous) {
                if (renameat(dfd, prev, dfd, name) < 0)
                        return -errno;
        } else if (unlinkat(dfd, name, 0) < 0 && errno != ENOENT)
                return -errno;
        (void) fsync(dfd);
        return 0;
}

static void id_from_stat(const struct stat *st, FileId *ret) {
        *ret = (FileId) {
                .dev = st->st_dev,
                .ino = st->st_ino,
                .size = st->st_size,
                .mtime_nsec = (int64_t) st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec,
        };
}

int files_id(int dfd, const char *name, FileId *ret) {
        struct stat st;

        if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return -errno;
        if (S_ISDIR(st.st_mode))
                return -EISDIR;
        if (!S_ISREG(st.st_mode))
                return -ELOOP;
        id_from_stat(&st, ret);
        return 0;
}

bool files_id_equal(const FileId *a, const FileId *b) {
        return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
               a->mtime_nsec == b->mtime_nsec;
}

int files_hash(int dfd, const char *name, char ret[SHA256_HEX_SIZE], FileId *ret_id) {
        _cleanup_(closep) int fd = -EBADF;
        char buf[64 * 1024];
        struct stat st;
        Sha256 s;

        /* O_NONBLOCK: a FIFO dropped into the folder is refused below, not waited on. */
        fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EBADFD;
        sha256_init(&s);
        for (;;) {
                ssize_t n = read(fd, buf, sizeof buf);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        break;
                sha256_update(&s, buf, (size_t) n);
        }
        sha256_final_hex(&s, ret);
        if (ret_id)
                id_from_stat(&st, ret_id);
        return 0;
}
