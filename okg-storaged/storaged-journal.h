/* The write journal: one JSON object per line in <state-dir>/storaged.journal. A write is
 * appended and fsync'ed before okg-storaged answers the bus call, so an accepted write
 * survives a crash; acknowledgements are appended too, and the file is compacted into a
 * snapshot of the current state when it grows. */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct Journal Journal;
typedef int (*JournalReplayFunc)(json_object *entry, void *userdata);

/* Opens (creating) the journal in dir and calls replay for each complete entry in order. A
 * torn last line (a crash in the middle of an append) is ignored; any other line that is not
 * a JSON object is skipped with a debug message. */
int journal_open(const char *dir, JournalReplayFunc replay, void *userdata, Journal **ret);
Journal *journal_free(Journal *j);
static inline void journal_freep(Journal **j) {
        journal_free(*j);
}
/* Appends one entry; with sync, returns only once it is on disk. */
int journal_append(Journal *j, json_object *entry, bool sync);
/* Replaces the journal by these entries (temp file, fsync, rename), then appends to it. */
int journal_rewrite(Journal *j, json_object *const *entries, size_t n);
size_t journal_entries(const Journal *j);
const char *journal_path(const Journal *j);
