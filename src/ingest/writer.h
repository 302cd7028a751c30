/* writer — the one thread that owns the WAL (DESIGN.md §3–4). The doors
 * (HTTP, MQTT) submit batches to a bounded queue; the writer takes everything
 * queued, appends it to the WAL, commits with one write (group commit), applies
 * each record to the state through a callback, and only then tells each
 * submitter it is done — so an acknowledged reading is in the log and visible
 * to queries. Every checkpoint_interval it asks the checkpoint callback to
 * store the state and then drops the WAL segments it no longer needs.
 *
 * Backpressure: the queue holds at most max_queued readings; a submit beyond
 * that is refused (CB_EUNAVAILABLE → HTTP 503, MQTT waits) so memory stays
 * bounded. */
#ifndef CB_WRITER_H
#define CB_WRITER_H

#include "core/err.h"
#include "ingest/batch.h"
#include "store/wal.h"

#include <stdint.h>

typedef struct writer writer;

/* Called on the writer thread after the batch is committed and applied
 * (rc 0) or refused (rc < 0, err says why: disk full, I/O error). */
typedef void (*writer_done_fn)(void *arg, int rc, const cb_error *err);

struct writer_options {
    wal *wal;                 /* borrowed; used only by the writer thread while it runs */
    uint64_t max_queued;      /* readings waiting at most */
    int checkpoint_interval_s;
    /* Applies one committed record (lsn) to the state. */
    int (*apply)(void *ctx, uint64_t lsn, const void *payload, size_t len);
    /* Stores the state as of lsn and sets *trim_lsn (preset to lsn) to how far
     * the WAL may go: lower when something still needs older records replayed
     * after a crash (the open chunks of the series head). */
    int (*checkpoint)(void *ctx, uint64_t lsn, uint64_t *trim_lsn, cb_error *err);
    void *ctx;
};

struct writer_stats {
    uint64_t batches, readings, commits, refused_full, failed;
    uint64_t queued_readings;  /* now */
    uint64_t checkpoints, last_checkpoint_lsn;
    double last_checkpoint_s;  /* how long the last checkpoint took */
};

int writer_start(const struct writer_options *opt, writer **out, cb_error *err);

/* Queues b; on 0 the writer owns b (it frees it) and will call done(arg, ...)
 * exactly once. CB_EUNAVAILABLE when the queue is full or the writer is
 * stopping: b stays the caller's. */
int writer_submit(writer *w, batch *b, writer_done_fn done, void *arg);
/* writer_submit that waits while the queue is full rather than refusing: for
 * the later parts of a request whose first part is already queued (see
 * ingest_parse_lp), which a 503 could no longer undo. CB_EUNAVAILABLE only
 * when the writer is stopping. Not for the HTTP thread: it blocks. */
int writer_submit_wait(writer *w, batch *b, writer_done_fn done, void *arg);

/* Commits and applies everything queued, checkpoints, joins the thread, frees. */
void writer_stop(writer *w); /* NULL-safe */
void writer_get_stats(writer *w, struct writer_stats *out);

#endif
