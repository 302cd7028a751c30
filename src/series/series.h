/* series — the time-series engine's store and query core (DESIGN §5): dense
 * series ids, the in-memory head (one open codec chunk per series), closed
 * chunks and 1-hour rollups in SQLite, raw / downsampled / grouped queries and
 * retention. The writer thread drives it: series_append from the apply path,
 * series_flush from the checkpoint, whose batch a flusher thread stores;
 * queries run on HTTP threads with their own db connection and see the head.
 *
 * Data structures and cost per operation:
 *   ids     (entity u32, attr u16) -> dense u32 id, assigned on first sight,
 *           stored in table series at the next flush. Open-addressing hash of
 *           ids (4 bytes a slot, load <= 1/2): lookup O(1).
 *   head    an array indexed by id of struct head (~130 bytes: the codec
 *           appender, the series' sealed time, its pending and in-flight
 *           chunk lists, snapshot flags) + the appender's buffer (~230 bytes
 *           at 120 one-decimal points): ~360 bytes a series, 36 MB for 100,000.
 *           An idle series (chunk closed by series_flush) frees its buffer.
 *   chunks  a chunk holds the points of one series inside one aligned
 *           SERIES_WINDOW_MS window (so it spans less than the window); it
 *           closes at SERIES_CHUNK_POINTS points, when a point of a later
 *           window arrives, or at a flush once its window ended
 *           SERIES_IDLE_CLOSE_MS ago and no point arrived since the
 *           previous flush (a backfill keeps its chunks whole). Closed
 *           chunks wait in a pending list (blob copy + stats + rollups)
 *           for the next flush's batch.
 *   rollups computed from each closed chunk's final points (so late points
 *           inside the chunk are exact) and stored in the chunk's own row
 *           (column roll, ~12 bytes a part): its 1 h parts (count, sum, min,
 *           max, last), and its 1 min parts when it averages at least
 *           SERIES_MINUTES_DENSITY points a minute. A sparser chunk's points
 *           are their own minute rollups: storing them again would cost more
 *           than the points (~0.75 byte each) and read no faster. A query
 *           picks the coarsest exact resolution (enum series_plan); rollups
 *           always equal the aggregate of the stored raw points.
 *   open    the open chunks are snapshotted (table open_chunk, one row per
 *           series whose open chunk changed) at every flush.
 *
 * Points, late points and duplicates (deterministic, so a WAL replay rebuilds
 * the same head):
 *   - NaN is not a reading: dropped (counted in dropped).
 *   - t > the open chunk's last t: appended, O(1) amortised.
 *   - t <= the series' sealed time (t_max of its last closed chunk, flushed or
 *     pending; loaded from SQLite at open): dropped and counted. This makes a
 *     replay idempotent: points already in closed chunks are not added twice.
 *   - otherwise a late point inside the open chunk's window: merged into the
 *     open chunk at once (decode, insert in time order, re-encode: O(points in
 *     the chunk), ~2 us); an exact duplicate timestamp replaces the value (last
 *     write wins). A late point of an earlier window, or one that would grow
 *     the chunk past SERIES_CHUNK_MAX points, is dropped and counted.
 *   So the late window of a series is "since its last closed chunk, within the
 *   open chunk's window": at least the span of the open chunk.
 *
 * Durability (with DESIGN §4): the head lives in memory; every flush stores
 * the closed chunks and a snapshot of each changed open chunk, so after a
 * crash the head is loaded from SQLite and only the WAL since the last stored
 * flush is replayed through series_append (series_replay_lsn). Replays are
 * idempotent: series_append drops t <= sealed, and a point already in an open
 * chunk is a duplicate that replaces itself.
 *
 * Threads: one mutex guards the ids, the head, the pending list and the batch
 * in flight. The writer thread is the only mutator of the head (append, seal,
 * retention) and takes it for each change; the flusher thread (series_flush)
 * writes a sealed batch to SQLite without it and takes it to commit and drop
 * the batch in one step; a query takes it only to start its read transaction
 * and copy the head data it needs (blob bytes, no decoding), then reads
 * SQLite and decodes without it — so a query sees each point exactly once. */
#ifndef CB_SERIES_H
#define CB_SERIES_H

#include "core/err.h"
#include "store/db.h"

#include <stddef.h>
#include <stdint.h>

#define SERIES_CHUNK_POINTS 120                /* a chunk closes when this full */
#define SERIES_CHUNK_MAX 1024                  /* late merges stop here */
#define SERIES_WINDOW_MS (2 * 3600 * 1000LL)   /* chunks never cross its aligned boundary */
#define SERIES_IDLE_CLOSE_MS (5 * 60 * 1000LL) /* flush closes chunks this long after their window */
#define SERIES_ROLLUP_MS (3600 * 1000LL)       /* the hourly rollup resolution */
#define SERIES_ROLLUP_1M_MS (60 * 1000LL)      /* the minute rollup resolution */
#define SERIES_MAX_POINTS 10000                /* points or buckets per series in a response */
#define SERIES_MAX_CELLS 1000000               /* groups x buckets in one aggregate */
#define SERIES_RETENTION_ROWS 10000            /* rows deleted per series_retention call, at most */
#define SERIES_RETENTION_SERIES 5000           /* series visited per call, at most */
#define SERIES_MIN_RAW_RETENTION_MS (24 * 3600 * 1000LL)

/* The tables, for the lead to add as migrations (the module never creates
 * them): format 1 (series_schema_sql), then format 2 (series_schema_v2_sql).
 * STRICT, WITHOUT ROWID where rows are small. Times are ms since the epoch.
 *   series     (id, entity, attr): the dense ids; never reused.
 *   chunk      one row per closed chunk: t_min, t_max, n; blob as in codec.h
 *              (empty once raw retention ended); roll, its rollup parts
 *              (series.c). Key (series, t_min): chunks of a series never
 *              overlap and span < SERIES_WINDOW_MS, which bounds range scans.
 *   open_chunk (series, blob): the open chunks as of the last flush.
 *   meta       (existing table) key 'series_replay_lsn'.
 * Format 1's rollup_1h is dropped by the first series_open after migration
 * 7, in the transaction that fills the roll of format-1 chunks from their
 * points and keeps each hour whose chunks retention had deleted as a chunk
 * row at the hour with an empty blob and that hour's rollup. */
extern const char series_schema_sql[];
extern const char series_schema_v2_sql[]; /* format 2: rollups in the chunk rows, open chunks snapshotted */

typedef struct series series;

/* Loads the ids, each series' sealed time (one index seek per series), the
 * open chunks' snapshots and the replay lsn, and starts the flusher thread
 * with its own connection to d's database file. d is used only during the
 * call. *out is the caller's: series_close. */
int series_open(db *d, series **out, cb_error *err);
/* NULL-safe. Lets the flusher finish the batch in flight (one attempt), stops
 * it, and drops whatever was not stored (the WAL still holds it). */
void series_close(series *s);

/* Id of (entity, attr). create = 0: CB_ENOT_FOUND when unknown. create = 1
 * (writer thread only): assigns the next id, stored at the next flush.
 * O(1); CB_ENOMEM. Any thread. */
int series_id(series *s, uint32_t entity, uint16_t attr, int create, uint32_t *id, cb_error *err);

/* What series_append did with a point (all >= 0; errors are < 0). */
enum series_append_result { SERIES_APPENDED, SERIES_MERGED, SERIES_DROPPED };

/* Writer thread. Adds one numeric reading that came in WAL record lsn;
 * behaviour as above. O(1) amortised, O(chunk) for a late point. Returns a
 * series_append_result or CB_ENOMEM (the point is not stored). */
int series_append(series *s, uint32_t entity, uint16_t attr, int64_t t_ms, double v);

/* One reading for series_append_many. */
struct series_point {
    uint32_t entity;
    uint16_t attr;
    int64_t t_ms;
    double v;
};
/* Writer thread. series_append for each of pts[0..n), in order, under one
 * hold of the mutex (a batch of the WAL at once). Returns 0, or CB_ENOMEM
 * when a point could not be stored (the others are). */
int series_append_many(series *s, const struct series_point *pts, size_t n);

/* Writer thread, every checkpoint, with the lsn of the last record applied:
 * closes the chunks whose window ended SERIES_IDLE_CLOSE_MS before now_ms and
 * that took no point since the previous seal, and seals a batch — every
 * pending chunk, a copy of every open chunk changed since its last snapshot,
 * the new ids, lsn — for the flusher thread, which
 * stores it in one transaction on its own connection (open_chunk holds the
 * snapshots), while ingest goes on. Cost on the writer: O(series) memory
 * work under the mutex, no I/O. When the previous batch is still in flight it
 * seals nothing (the next checkpoint will). Returns 0, CB_ENOMEM, or a failure
 * of the flusher since the last call (it keeps retrying that batch). */
int series_flush(series *s, uint64_t lsn, int64_t now_ms, cb_error *err);

/* Waits until the batch in flight, if any, is stored; returns its failure.
 * For tests and tools; the server never waits. */
int series_sync(series *s, cb_error *err);

/* The WAL must be kept, and replayed, from this lsn for the series head to be
 * rebuilt after a crash: one past the lsn of the last stored batch (1 before
 * any). Loaded at open from meta. So the lead trims the WAL only below
 * min(checkpoint lsn + 1, this) and replays from there, giving the series
 * every record and the state only those after the checkpoint lsn. Since the
 * open chunks are snapshotted, this trails the checkpoint by one flush. */
uint64_t series_replay_lsn(series *s);

/* ---- queries (any thread, with that thread's own db connection) ----
 * A query connection's prepared statements are cached in the series (a few
 * connections' worth), so it must stay open until series_close. */

enum series_agg { SERIES_AGG_AVG, SERIES_AGG_MIN, SERIES_AGG_MAX, SERIES_AGG_SUM, SERIES_AGG_COUNT,
                  SERIES_AGG_LAST };
int series_agg_parse(const char *name, enum series_agg *out); /* "avg".. ; CB_EINVALID_FIELD "agg" */
const char *series_agg_name(enum series_agg agg);

/* How a query was answered: AUTO (input only) picks the coarsest resolution
 * that answers exactly: ROLLUP (hourly) when step and from are multiples of an
 * hour, else ROLLUP_1M when they are multiples of a minute (each chunk's
 * minute parts where it has them, its points where they are their own minute
 * rollups), else RAW. A plan may be forced (tests, checks). */
enum series_plan { SERIES_PLAN_AUTO, SERIES_PLAN_RAW, SERIES_PLAN_ROLLUP, SERIES_PLAN_ROLLUP_1M };
const char *series_plan_name(enum series_plan plan); /* "raw", "rollup_1h", "rollup_1m" as in the API */

/* step = 0: the raw points with from <= t <= to (at most SERIES_MAX_POINTS,
 * else CB_ETOO_LARGE). step > 0: buckets [from + k step, from + (k+1) step)
 * for k = 0 .. ceil((to - from + 1) / step) - 1 — whole buckets, so the last
 * one may reach past to; at most SERIES_MAX_POINTS buckets, else
 * CB_EINVALID_FIELD on "step". */
struct series_range {
    int64_t from, to, step;
    enum series_agg agg;
    enum series_plan plan;
};

/* Points or non-empty buckets (t = bucket start), in time order. Arrays are
 * owned by the struct: series_points_free. */
struct series_points {
    size_t n;
    int64_t *t;
    double *v;
    enum series_plan plan; /* the one used */
};
void series_points_free(struct series_points *p);

/* One series. Cost: one index range scan over the chunk rows overlapping the
 * range (~1 per 2 hours at one reading a minute) plus the head's closed and
 * open chunks; RAW decodes the points (~20 ns each), ROLLUP only the hour
 * parts, ROLLUP_1M the minute parts or the points. The prepared statements are
 * cached per connection. Errors: CB_ENOT_FOUND (unknown id), CB_EINVALID_FIELD
 * (from > to, bad step, field named), CB_ETOO_LARGE, CB_ECORRUPT, CB_EIO. */
int series_query(series *s, db *d, uint32_t id, const struct series_range *r, struct series_points *out,
                 cb_error *err);

/* A grid: v[g * nbuckets + k] is the aggregate over every reading of every
 * series of group g in bucket k (NaN when there is none; 0 for count).
 * Owned by the struct: series_grid_free. */
struct series_grid {
    size_t ngroups, nbuckets;
    int64_t from, step;
    double *v;
    enum series_plan plan;
};
void series_grid_free(struct series_grid *g);

/* Many series at once: ids[i] belongs to group groups[i] < ngroups (the
 * caller maps entities to districts, grid cells or types). step = 0 means one
 * bucket over [from, to]. agg last is refused (CB_EINVALID_FIELD): "the last
 * reading" across series has no single meaning. Unknown ids are refused.
 * Cost: the single-series cost times n; the head is copied for all n series
 * under the mutex (a memcpy each). From 1,024 series (and up to 65,536
 * cells) the scan is split: the second half runs on a thread of its own with
 * the series' second connection (opened at first use, one aggregate at a
 * time; a concurrent one scans alone), begun under the same mutex hold so
 * both read one snapshot. Sums then add in another order: the same to
 * ~1e-12 relative, not bit for bit, as a single scan. */
int series_aggregate(series *s, db *d, const uint32_t *ids, const uint32_t *groups, size_t n, size_t ngroups,
                     const struct series_range *r, struct series_grid *out, cb_error *err);

/* ---- retention (the flusher thread; or one caller at a time, e.g. tests) ---- */

/* How long a series' data is kept, in ms; 0 = forever. raw_ms >= 1 day
 * (SERIES_MIN_RAW_RETENTION_MS: the WAL replay window must stay within it). */
struct series_keep {
    int64_t raw_ms, rollup_ms;
};

/* The caller's rules (per attribute name, per entity type, ...): fills *keep
 * for one series. Called without the mutex. */
typedef void (*series_keep_fn)(void *arg, uint32_t entity, uint16_t attr, struct series_keep *keep);

/* The flusher thread's retention rules: after each batch it stores, it runs
 * one series_retention step on its own connection and logs event=retention,
 * so deleting old history never holds up ingest. Call once, before ingest. */
void series_set_retention(series *s, series_keep_fn keep, void *arg);

/* One bounded step of retention: continues a round-robin walk over the series
 * where the last call stopped and, in one transaction, empties the points of
 * chunks with t_max < now - raw_ms (their row stays for its rollups) and
 * deletes the rows whose points and hours have both expired (t_max before
 * now - raw_ms and before the hour of now - rollup_ms; rollup_ms = 0: never);
 * stops after SERIES_RETENTION_ROWS rows or SERIES_RETENTION_SERIES series.
 * Each series remembers how far it was emptied, so a pass reads only new rows.
 * *deleted gets the rows emptied or deleted; *wrapped is set when the walk went
 * past the last series (a full pass is done). Call it every few seconds from
 * the writer. */
int series_retention(series *s, db *d, int64_t now_ms, series_keep_fn keep, void *arg, uint64_t *deleted,
                     int *wrapped, cb_error *err);

/* ---- metrics ---- */

struct series_stats {
    uint32_t series;                         /* ids known */
    uint64_t appended, merged, dropped;      /* series_append results */
    uint64_t open_points, pending_chunks;    /* in the head now (pending: closed, not stored yet) */
    uint64_t flushed_chunks;                 /* total */
    uint64_t split_aggregates;               /* series_aggregate calls scanned on two threads */
    size_t head_bytes;                       /* memory held by the head, ids and pending */
};
void series_get_stats(series *s, struct series_stats *out); /* any thread */

#endif
