/* The download folder: a download goes to an unnamed temp file (O_TMPFILE, or a ".okg-tmp-*"
 * file where the file system has none), is fsync'ed, and replaces the target in one step (a
 * rename, or an exchange when there is a target), so the game never sees half a file or none.
 * The file it replaces stays as ".okg-prev-<name>" for rollback; no step needs a hard link to
 * it, so its owner does not matter. Our own names start with ".okg-", which no accepted target name can. */
#pragma once

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "hotupdated-sha256.h"

typedef struct TmpFile {
        int fd;                 /* -EBADF when none */
        char *name;             /* in the folder; NULL for an O_TMPFILE */
        uint64_t size;
} TmpFile;

#define TMP_FILE_NULL ((TmpFile) { .fd = -EBADF })

/* What identifies a file we installed, so that "is it still ours?" needs no hashing. */
typedef struct FileId {
        dev_t dev;
        ino_t ino;
        off_t size;
        int64_t mtime_nsec;
} FileId;

/* Creates the folder when missing, returns an O_PATH-less directory fd. *ret_created (may be
 * NULL) is the topmost folder this call created, e.g. "/app" for "/app/downloads" when neither
 * existed, or NULL when the folder was there. */
int files_open_dir(const char *path, int *ret_fd, char **ret_created);
/* Removes temp files a killed daemon left behind. Returns how many. */
int files_remove_stale(int dfd);

int files_tmp_open(int dfd, TmpFile *ret);
int files_tmp_write(TmpFile *t, const void *data, size_t len);
/* Closes and unlinks; safe on TMP_FILE_NULL. */
void files_tmp_discard(int dfd, TmpFile *t);

/* fsync, then puts the temp file in place of name (the old one becomes the previous copy).
 * *ret_had_previous says whether there was a file to keep. The temp file is consumed on
 * success. On failure ret_failed is the name in the folder that failed (name, or
 * ".okg-prev-<name>"), "" when it was the temp file or the folder itself. */
#define FILES_NAME_MAX (NAME_MAX + 16)
int files_install(int dfd, TmpFile *t, const char *name, bool *ret_had_previous,
                  char *ret_failed, size_t failed_size);
/* Undoes files_install(): the previous copy goes back, or name is removed when there was none. */
int files_restore(int dfd, const char *name, bool had_previous);

/* -ENOENT when missing; refuses what is not a regular file (-EISDIR, -ELOOP...). */
int files_id(int dfd, const char *name, FileId *ret);
bool files_id_equal(const FileId *a, const FileId *b);
/* SHA-256 of the file, read in one go: startup only (recovery). */
int files_hash(int dfd, const char *name, char ret[SHA256_HEX_SIZE], FileId *ret_id);
