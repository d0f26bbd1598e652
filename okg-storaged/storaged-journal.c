/* The append-only write journal; see storaged-journal.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"
#include "okg-util.h"
#include "storaged-journal.h"

#define JOURNAL_MAX_BYTES (64U * 1024U * 1024U)

struct Journal {
        char *path;
        char *dir;
        int fd;
        size_t entries;
};

static int open_append(Journal *j) {
        if (j->fd >= 0)
                close(j->fd);
        j->fd = open(j->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
        return j->fd < 0 ? -errno : 0;
}

static void fsync_dir(const char *dir) {
        int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd >= 0) {
                (void) fsync(fd);
                close(fd);
        }
}

int journal_open(const char *dir, JournalReplayFunc replay, void *userdata, Journal **ret) {
        _cleanup_(journal_freep) Journal *j = NULL;
        _cleanup_(freep) char *text = NULL;
        size_t len = 0;
        int r;

        j = calloc(1, sizeof *j);
        if (!j)
                return -ENOMEM;
        j->fd = -EBADF;
        j->dir = strdup(dir);
        if (!j->dir || asprintf(&j->path, "%s/storaged.journal", dir) < 0)
                return -ENOMEM;

        r = okg_read_file(j->path, JOURNAL_MAX_BYTES, &text, &len);
        if (r < 0 && r != -ENOENT)
                return r;
        if (text) {
                char *p = text, *end = text + len;
                while (p < end) {
                        char *nl = memchr(p, '\n', (size_t) (end - p));
                        json_object *e;

                        if (!nl) {
                                log_warning("Ignoring a torn last journal entry (%zu bytes).",
                                            (size_t) (end - p));
                                break;
                        }
                        *nl = 0;
                        e = json_tokener_parse(p);
                        if (e && json_object_is_type(e, json_type_object)) {
                                r = replay ? replay(e, userdata) : 0;
                                json_object_put(e);
                                if (r < 0)
                                        return r;
                                j->entries++;
                        } else {
                                json_object_put(e);
                                log_debug("Skipping a journal line that is not a JSON object.");
                        }
                        p = nl + 1;
                }
        }
        r = open_append(j);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(j);
        return 0;
}

Journal *journal_free(Journal *j) {
        if (!j)
                return NULL;
        if (j->fd >= 0)
                close(j->fd);
        free(j->path);
        free(j->dir);
        free(j);
        return NULL;
}

static int write_all(int fd, const char *s, size_t len) {
        while (len > 0) {
                ssize_t n = write(fd, s, len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                s += n;
                len -= (size_t) n;
        }
        return 0;
}

static int write_entry(int fd, json_object *entry) {
        _cleanup_(freep) char *line = NULL;
        int n = asprintf(&line, "%s\n",
                         json_object_to_json_string_ext(entry, JSON_C_TO_STRING_PLAIN |
                                                                       JSON_C_TO_STRING_NOSLASHESCAPE));
        if (n < 0)
                return -ENOMEM;
        /* One write(2) per line so a crash leaves at most one torn line at the end. */
        return write_all(fd, line, (size_t) n);
}

int journal_append(Journal *j, json_object *entry, bool sync) {
        int r;

        if (j->fd < 0)
                return -EBADF;
        r = write_entry(j->fd, entry);
        if (r < 0)
                return r;
        if (sync && fdatasync(j->fd) < 0)
                return -errno;
        j->entries++;
        return 0;
}

int journal_rewrite(Journal *j, json_object *const *entries, size_t n) {
        _cleanup_(freep) char *tmp = NULL;
        int fd, r = 0;

        if (asprintf(&tmp, "%s.new", j->path) < 0)
                return -ENOMEM;
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0)
                return -errno;
        for (size_t i = 0; i < n && r >= 0; i++)
                r = write_entry(fd, entries[i]);
        if (r >= 0 && fsync(fd) < 0)
                r = -errno;
        close(fd);
        if (r >= 0 && rename(tmp, j->path) < 0)
                r = -errno;
        if (r < 0) {
                (void) unlink(tmp);
                return r;
        }
        fsync_dir(j->dir);
        j->entries = n;
        return open_append(j);
}

size_t journal_entries(const Journal *j) {
        return j->entries;
}

const char *journal_path(const Journal *j) {
        return j->path;
}
