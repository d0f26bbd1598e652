/* The append-only write journal; see storaged-journal.h. */
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"
#include "okg-util.h"
#include "storaged-journal.h"

/* A line longer than this cannot be a write okg-storaged accepted (the bus checks bound them
 * far below): it is damage, skipped without holding it in memory. */
#define JOURNAL_LINE_MAX (16U * 1024U * 1024U)

struct Journal {
        char *path;
        char *dir;
        int fd;
        size_t entries;
        uint64_t bytes;           /* the file's size */
        uint64_t snapshot_bytes;  /* its size after the last rewrite */
        JournalDamage damage;
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

/* One complete line (without its newline, NUL-terminated) handed to replay. */
static int replay_line(Journal *j, char *line, size_t len, JournalReplayFunc replay, void *userdata) {
        json_object *e = json_tokener_parse(line);
        int r = 0;

        if (e && json_object_is_type(e, json_type_object)) {
                r = replay ? replay(e, userdata) : 0;
                if (r == -ENOMEM) {
                        json_object_put(e);
                        return r;
                }
        }
        if (!e || !json_object_is_type(e, json_type_object) || r < 0) {
                j->damage.lines++;
                j->damage.bytes += len + 1;
                log_debug("Skipping a journal line that is not a usable entry (%zu bytes).", len);
        } else
                j->entries++;
        json_object_put(e);
        return 0;
}

/* Reads the journal line by line, whatever its size; lines too long or not entries are
 * counted as damage and skipped. */
static int replay_fd(Journal *j, int fd, JournalReplayFunc replay, void *userdata) {
        _cleanup_(freep) char *line = NULL;
        size_t len = 0, cap = 0;
        bool skipping = false;  /* inside a line longer than JOURNAL_LINE_MAX */
        uint64_t skipped = 0;
        char buf[65536];
        int r;

        for (;;) {
                ssize_t n = read(fd, buf, sizeof buf);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        break;
                j->bytes += (uint64_t) n;
                for (char *p = buf, *end = buf + n; p < end;) {
                        char *nl = memchr(p, '\n', (size_t) (end - p));
                        size_t chunk = (size_t) ((nl ?: end) - p);

                        if (skipping)
                                skipped += chunk;
                        else if (len + chunk > JOURNAL_LINE_MAX) {
                                skipping = true;
                                skipped = len + chunk;
                                len = 0;
                        } else {
                                if (len + chunk + 1 > cap) {
                                        size_t want = cap * 2 > len + chunk + 1 ? cap * 2 : len + chunk + 1;
                                        char *t = realloc(line, want);
                                        if (!t)
                                                return -ENOMEM;
                                        line = t;
                                        cap = want;
                                }
                                memcpy(line + len, p, chunk);
                                len += chunk;
                        }
                        if (!nl)
                                break;
                        if (skipping) {
                                j->damage.lines++;
                                j->damage.bytes += skipped + 1;
                                skipping = false;
                        } else {
                                line[len] = 0;
                                r = replay_line(j, line, len, replay, userdata);
                                if (r < 0)
                                        return r;
                        }
                        len = 0;
                        p = nl + 1;
                }
        }
        if (skipping || len > 0) {
                /* A crash in the middle of an append: the write was never acknowledged. */
                j->damage.torn_bytes = skipping ? skipped : len;
                log_warning("Ignoring a torn last journal entry (%" PRIu64 " bytes).", j->damage.torn_bytes);
        }
        return 0;
}

int journal_open(const char *dir, JournalReplayFunc replay, void *userdata, Journal **ret) {
        _cleanup_(journal_freep) Journal *j = NULL;
        _cleanup_(closep) int fd = -EBADF;
        struct stat st;
        int r;

        j = calloc(1, sizeof *j);
        if (!j)
                return -ENOMEM;
        j->fd = -EBADF;
        j->dir = strdup(dir);
        if (!j->dir || asprintf(&j->path, "%s/storaged.journal", dir) < 0)
                return -ENOMEM;

        /* O_NONBLOCK and the type check: a FIFO put in its place must not hang the start. */
        fd = open(j->path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                r = errno == ENOENT ? 0 : -errno;
        else if (fstat(fd, &st) < 0)
                r = -errno;
        else if (!S_ISREG(st.st_mode))
                r = -EBADFD;
        else
                r = replay_fd(j, fd, replay, userdata);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                /* Unreadable (an I/O error, not a regular file...): put it aside and start with
                 * what was read so far rather than not at all. */
                _cleanup_(freep) char *aside = NULL;
                if (asprintf(&aside, "%s.unreadable", j->path) < 0)
                        return -ENOMEM;
                log_error_errno(r, "Cannot read the journal %s (%m); moving it to %s and going on "
                                "with what was read.", j->path, aside);
                if (rename(j->path, aside) < 0)
                        return log_error_errno(errno, "Cannot move %s aside: %m", j->path);
                j->damage.unreadable = true;
                j->bytes = 0;
        }
        r = open_append(j);
        if (r < 0)
                return r;
        j->snapshot_bytes = j->bytes;
        *ret = TAKE_PTR(j);
        return 0;
}

const JournalDamage *journal_damage(const Journal *j) {
        return &j->damage;
}

char *journal_damage_describe(const JournalDamage *d, const char *path) {
        _cleanup_(freep) char *aside = NULL;
        char *what;

        if (d->lines == 0 && !d->unreadable)
                return NULL;
        if (d->unreadable && asprintf(&aside, ", and the file could not be read to its end (kept as "
                                      "%s.unreadable)", path) < 0)
                return NULL;
        if (asprintf(&what, "journal damaged: %zu entr%s (%" PRIu64 " bytes) could not be read%s; "
                     "the writes they held are lost (%s)", d->lines, d->lines == 1 ? "y" : "ies",
                     d->bytes, strempty(aside), path) < 0)
                return NULL;
        return what;
}

bool journal_compaction_due(uint64_t bytes, uint64_t snapshot_bytes, size_t entries) {
        if (entries >= JOURNAL_COMPACT_ENTRIES)
                return true;
        /* Bounded by what is pending: at most twice the last snapshot, and a floor so a small
         * state is not rewritten on every write. */
        return bytes > JOURNAL_COMPACT_MIN_BYTES && bytes > 2 * snapshot_bytes;
}

bool journal_wants_compaction(const Journal *j) {
        return journal_compaction_due(j->bytes, j->snapshot_bytes, j->entries);
}

uint64_t journal_bytes(const Journal *j) {
        return j->bytes;
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
        int r = write_all(fd, line, (size_t) n);
        return r < 0 ? r : n;
}

int journal_append(Journal *j, json_object *entry, bool sync) {
        int r;

        if (j->fd < 0)
                return -EBADF;
        r = write_entry(j->fd, entry);
        if (r < 0)
                return r;
        j->bytes += (uint64_t) r;
        if (sync && fdatasync(j->fd) < 0)
                return -errno;
        j->entries++;
        return 0;
}

int journal_rewrite(Journal *j, json_object *const *entries, size_t n) {
        _cleanup_(freep) char *tmp = NULL;
        uint64_t bytes = 0;
        int fd, r = 0;

        if (asprintf(&tmp, "%s.new", j->path) < 0)
                return -ENOMEM;
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0)
                return -errno;
        for (size_t i = 0; i < n && r >= 0; i++) {
                r = write_entry(fd, entries[i]);
                if (r > 0)
                        bytes += (uint64_t) r;
        }
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
        j->bytes = j->snapshot_bytes = bytes;
        return open_append(j);
}

size_t journal_entries(const Journal *j) {
        return j->entries;
}

const char *journal_path(const Journal *j) {
        return j->path;
}
