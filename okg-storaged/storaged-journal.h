/* The write journal: one JSON object per line in <state-dir>/storaged.journal. A write is
 * appended and fsync'ed before okg-storaged answers the bus call, so an accepted write
 * survives a crash; acknowledgements are appended too, and the file is compacted into a
 * snapshot of the current state when it grows. */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>

#include <stdint.h>

/* Compaction: after this many entries, or when the file is larger than this floor and twice
 * its size after the last compaction, whatever was acknowledged. */
#define JOURNAL_COMPACT_ENTRIES 1000
#define JOURNAL_COMPACT_MIN_BYTES (1024U * 1024U)

typedef struct Journal Journal;

/* What could not be read back at open. */
typedef struct JournalDamage {
        size_t lines;            /* lines that were not entries (or too long), skipped */
        uint64_t bytes;          /* their size */
        uint64_t torn_bytes;     /* a torn last line (a crash during an append) */
        bool unreadable;         /* the file could not be read to its end: moved aside */
} JournalDamage;
typedef int (*JournalReplayFunc)(json_object *entry, void *userdata);

/* Opens (creating) the journal in dir and calls replay for each complete entry in order,
 * reading it line by line whatever its size. A torn last line (a crash in the middle of an
 * append) is ignored; any other line that is not a JSON object, that replay rejects (other
 * than -ENOMEM), or that is longer than any entry can be, is skipped and counted in
 * journal_damage(). A file that cannot be read to its end is renamed to
 * storaged.journal.unreadable and what was read is kept. */
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
uint64_t journal_bytes(const Journal *j);
const JournalDamage *journal_damage(const Journal *j);
/* What the damage means for the operator, naming the file (path): "journal damaged: N
 * entries (B bytes) could not be read; the writes they held are lost (PATH)". NULL when
 * nothing was damaged (or out of memory). Pure. */
char *journal_damage_describe(const JournalDamage *d, const char *path);
/* Whether the journal should be rewritten as a snapshot now. Pure. */
bool journal_compaction_due(uint64_t bytes, uint64_t snapshot_bytes, size_t entries);
bool journal_wants_compaction(const Journal *j);
const char *journal_path(const Journal *j);
