/* wal — the write-ahead log of the ingest path (DESIGN §4): a write is
 * acknowledged only once its record is in the log, and after a crash the log
 * is replayed into state and series.
 *
 * On disk: a directory of segment files `wal-<first lsn, 16 hex>.log`, each a
 * plain run of records {u32 payload length, u32 crc32c, u64 lsn, payload}, all
 * little-endian; the CRC covers the lsn and the payload, so a record found at
 * the wrong place fails too. LSNs start at 1 and are consecutive across
 * segments and restarts. A segment rotates when the next commit would take it
 * past segment_bytes (one commit never spans two segments).
 *
 * Threads: a wal is used by one thread at a time (the ingest writer thread,
 * DESIGN §3); its own reaper thread only deletes dropped files. Others hand it work: the flusher reports its
 * durable lsn and the writer calls wal_checkpoint.
 *
 * Cost: wal_append copies the record into memory, O(len), no syscall;
 * wal_commit is one write(2) for everything appended since the last commit,
 * plus one fdatasync under WAL_FSYNC_ALWAYS (a rotation adds a file create,
 * a sync of the full segment and of the directory, the syncs not under OFF);
 * wal_open reads and checks every segment once (O(log size)); wal_replay
 * reads them again. */
#ifndef CB_WAL_H
#define CB_WAL_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define WAL_MAX_PAYLOAD (16u << 20)               /* larger appends are refused */
#define WAL_DEFAULT_SEGMENT_BYTES (64ull << 20)
#define WAL_SEGMENT_NAME_MAX 64                    /* room for any name this module makes */

typedef struct wal wal;

enum wal_fsync {
    WAL_FSYNC_ALWAYS,   /* fdatasync in every commit before it returns */
    WAL_FSYNC_EVERYSEC, /* fdatasync from wal_sync_if_due, at most once a second */
    WAL_FSYNC_OFF,      /* never; the kernel writes back when it likes */
};

struct wal_options {
    enum wal_fsync fsync;   /* a zeroed struct means ALWAYS */
    uint64_t segment_bytes; /* 0 means WAL_DEFAULT_SEGMENT_BYTES */
};

/* Why reading the log stopped before its end. */
enum wal_stop {
    WAL_STOP_NONE,          /* it did not: the log was intact */
    WAL_STOP_SHORT_HEADER,  /* the segment ends inside a record header */
    WAL_STOP_SHORT_PAYLOAD, /* the segment ends inside a payload */
    WAL_STOP_BAD_LENGTH,    /* a header claims more than WAL_MAX_PAYLOAD */
    WAL_STOP_BAD_CRC,       /* the checksum does not match */
    WAL_STOP_BAD_LSN,       /* intact record, but not the next lsn (or a segment is missing) */
};

struct wal_replay_stats {
    uint64_t records;                       /* records passed to the callback */
    uint64_t first_lsn, last_lsn;           /* of those records; 0 when none */
    enum wal_stop stop;                     /* where the readable log ended early, if it did */
    char stop_segment[WAL_SEGMENT_NAME_MAX]; /* file name of the segment it stopped in */
    uint64_t stop_offset;                   /* byte offset of the first bad record in it */
    uint64_t cut_bytes;                     /* bytes cut from that segment's end */
    uint64_t set_aside;                     /* later segments renamed to *.corrupt */
};

struct wal_stats {
    uint64_t next_lsn;
    uint64_t records_written;  /* committed since open */
    uint64_t bytes_written;    /* headers and payloads, committed since open */
    uint64_t commits;          /* commits that wrote something */
    uint64_t writes;           /* write(2) calls */
    uint64_t fsyncs;           /* fdatasync calls on segments */
    uint64_t write_errors;     /* commits refused with CB_ESTORAGE_FULL or CB_EIO */
    uint64_t segments;         /* segment files in the directory now */
    uint64_t segments_deleted; /* by wal_checkpoint since open */
    uint64_t buffered_bytes;   /* appended, not yet committed */
};

/* Opens the log in dir (creating dir, one level, if needed), checks every
 * record and finds the end. If a record is torn or corrupt, the log ends just
 * before it: its segment is cut there and any later segments are renamed to
 * `<name>.corrupt`. The cut bytes are first copied to
 * `<name>.cut-<offset>.corrupt`, unless they are a short record at the end of
 * the last segment, which is what an unfinished write leaves; nothing else is
 * ever deleted. What was found is reported by wal_replay.
 * opt may be NULL (EVERYSEC, 64 MiB segments). *out is owned by the caller
 * and freed with wal_close. Errors: CB_ECONFIG, CB_EIO, CB_ESTORAGE_FULL, CB_ENOMEM. */
int wal_open(const char *dir, const struct wal_options *opt, wal **out, cb_error *err);

/* Calls fn(arg, lsn, payload, len) for every committed record with
 * lsn >= from_lsn, in order (from_lsn 0: from the oldest kept). payload is
 * valid only during the call. A non-zero return from fn ends the replay and is
 * returned as is. st (may be NULL) gets the counts and what wal_open found.
 * CB_ECORRUPT when from_lsn is older than the oldest record still kept (they
 * were checkpointed away), or when a record wal_open checked has changed
 * since. Reads the disk only: records appended but not committed are not seen. */
int wal_replay(wal *w, uint64_t from_lsn,
               int (*fn)(void *arg, uint64_t lsn, const void *payload, size_t len), void *arg,
               struct wal_replay_stats *st, cb_error *err);

/* Buffers one record and sets *lsn_out (may be NULL) to its lsn. The record
 * is durable only once wal_commit returns 0. CB_EINVALID_FIELD when
 * len > WAL_MAX_PAYLOAD, CB_ENOMEM. */
int wal_append(wal *w, const void *payload, size_t len, uint64_t *lsn_out, cb_error *err);

/* Writes every buffered record with one write(2) (group commit) and, under
 * ALWAYS, fdatasyncs; acknowledge clients only after it returns 0. On failure
 * the segment is cut back to where it was, the buffered records are dropped
 * and their lsns will be handed out again; CB_ESTORAGE_FULL (ENOSPC, EDQUOT,
 * EFBIG) or CB_EIO, with the errno text. A later commit works once the cause
 * is gone. */
int wal_commit(wal *w, cb_error *err);

/* Drops the records appended since the last commit (say, when one record of
 * a batch is refused and the whole batch must fail); their lsns will be
 * handed out again. No syscall. */
void wal_rollback(wal *w);

/* EVERYSEC: fdatasyncs when something was written since the last sync and
 * at least 1000 ms passed (now_ms from any monotonic clock). No-op otherwise. */
int wal_sync_if_due(wal *w, int64_t now_ms, cb_error *err);

/* Everything up to durable_lsn is now stored elsewhere: drops the oldest
 * segments holding only such records (renamed at once to wal-*.drop, which
 * no replay reads; a reaper thread of the wal deletes the files, as that is
 * slow; wal_close waits for it, wal_open deletes what a crash left). Never
 * drops the current segment. */
int wal_checkpoint(wal *w, uint64_t durable_lsn, cb_error *err);

uint64_t wal_next_lsn(const wal *w); /* the lsn the next append gets */
void wal_get_stats(const wal *w, struct wal_stats *out);
const char *wal_stop_name(enum wal_stop stop); /* "bad_crc", ... for logs */

/* Syncs (unless OFF) and frees w. Records appended but not committed are
 * dropped: they were never acknowledged. NULL-safe. */
void wal_close(wal *w);

#endif
