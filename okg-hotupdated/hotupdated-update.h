/* One update, a request's (hotupdated-pipeline.c) or the recovery's at start
 * (hotupdated-recovery.c), and the steps both take: the download job, the game lookup and
 * signal, the reload request, and the end: finish -> record through okg-storaged -> answer the
 * waiters. Where the two origins differ in these steps, update_origin_info() says how. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "hotupdated-decide.h"
#include "hotupdated-files.h"
#include "hotupdated-game.h"
#include "hotupdated-job.h"
#include "hotupdated-manager.h"
#include "macro.h"

#define MSG_MAX JOB_MSG_MAX

struct Update {
        Manager *m;
        UpdateOrigin origin;
        HotUpdateParams p;
        Waiter *waiters;
        sd_event_source *defer;
        sd_event_source *timer;

        Job job;                        /* the transfer in progress, if any */
        void (*downloaded)(Update *u);  /* the owner's next step once the file is here */
        TmpFile tmp;                    /* the download */
        char sha256[SHA256_HEX_SIZE];   /* of the download, once complete */
        uint64_t size;

        /* install and reload */
        bool had_previous;
        uint64_t installed_ticks;
        GameProc *procs;
        size_t n_procs;
        size_t n_signalled;
        uint64_t signalled_at;          /* CLOCK_MONOTONIC usec: start of the settle window */
        bool game_exited;               /* a signalled process is gone: do not signal anew */
        uint64_t deadline;              /* CLOCK_MONOTONIC usec: check or game wait */
        char last_check[MSG_MAX];
        bool check_answered;            /* an attempt got an HTTP answer (kept in last_check) */
        bool rolling_back;
        char rollback_reason[MSG_MAX];

        /* a request already decided at submit time (Unchanged) */
        bool has_immediate;
        HotUpdateOutcome immediate;

        /* recovery */
        HotUpdateVersion applied;       /* the version being restored */
        bool from_fleet;

        HotUpdateResult result;
        bool finished;
        uint64_t record_ticket;
};

Update *update_new(Manager *m, UpdateOrigin origin);
/* Ends what it does; the waiters must be gone. */
Update *update_free(Update *u);
void waiter_link(Update *u, Waiter *w);

/* Sets the outcome, keeps it in the history, records it when the outcome is recorded, and
 * then (update_complete()) answers the waiters. */
void update_finish(Update *u, HotUpdateOutcome o, const char *fmt, ...) _printf_(3, 4);
/* update_finish() with a failure as this update's origin reports it (the recovery reports
 * RecoveryFailed; name_it: its message then starts with the failure, "ChecksumMismatch: "). */
void update_fail(Update *u, HotUpdateOutcome o, bool name_it, const char *fmt, ...)
        _printf_(4, 5);
/* Over and recorded (or the wait for okg-storaged ended): answers everyone and frees u. */
void update_complete(Update *u, bool recorded);

/* (Re-)arms u's one timer. */
int update_arm_timer(Update *u, uint64_t usec, sd_event_time_handler_t cb);

/* allowedSources and allowedFileNames, for a request and for a recorded version alike (a
 * record may predate the list). True when refused, and the update is finished. */
bool update_refused_by_policy(Update *u);

/* Downloads u->p.url into a temp file of the download folder; downloaded is called once the
 * file is complete and its checksum matches (u->sha256, u->size set). Every failure finishes
 * u. */
void update_start_download(Update *u, void (*downloaded)(Update *u));

/* Finds the processes to signal and checks each one handles the signal (the default action of
 * SIGHUP would end the game). Returns 0 when there is at least one and all are safe, else 1
 * with the outcome and reason, or a negative errno. */
int update_game_lookup(Update *u, HotUpdateOutcome *ret_outcome, char *msg, size_t size);
/* kill(2) to every selected process. On failure the reason is in msg, and the processes
 * signalled before the failing one are the first u->n_signalled. */
int update_signal_procs(Update *u, char *msg, size_t size);
const char *update_signal_name(Update *u);

/* The game's reload request (loadPatchType request), reporting to done. */
int update_reload_request_start(Update *u, JobDone done);
/* "reload request failed: why" / "... answered HTTP N" into reason; true when 2xx. The
 * transfer is stopped. */
bool update_reload_answer(Update *u, CURLcode result, char *reason, size_t size);

/* Installs the download under u->p.file_name (the replaced file kept); on failure the message
 * names the path that failed. */
int update_install(Update *u, char *msg, size_t size);
