/* series — the time-series engine's store and query core (DESIGN §5): dense
 * series ids, the in-memory head (one open codec chunk per series), closed
 * chunks and 1-hour rollups in SQLite, raw / downsampled / grouped queries and
 * retention. The writer thread drives it: series_append from the apply path,
 * series_flush from the checkpoint; queries run on HTTP threads with their
 * own db connection and see the head too.
 *
 * Data structures and cost per operation:
 *   ids     (entity u32, attr u16) -> dense u32 id, assigned on first sight,
 *           stored in table series at the next flush. Open-addressing hash of
 *           ids (4 bytes a slot, load <= 1/2): lookup O(1).
 *   head    an array indexed by id of struct head (128 bytes: the codec
 *           appender, the series' sealed time, the WAL lsn of its oldest open
 *           point, its pending list) + the appender's buffer (~210 bytes at
 *           120 one-decimal points): ~340 bytes a series, 34 MB for 100,000.
 *           An idle series (chunk closed by series_flush) frees its buffer.
 *   chunks  a chunk holds the points of one series inside one aligned
 *           SERIES_WINDOW_MS window (so it spans less than the window); it
 *           closes at SERIES_CHUNK_POINTS points, when a point of a later
 *           window arrives, or at a flush once its window ended
 *           SERIES_IDLE_CLOSE_MS ago. Closed chunks wait in a pending list
 *           (blob copy + stats + the chunk's 1 h rollup deltas) for the flush.
 *   rollups 1 h buckets (count, sum, min, max, last) per series, computed from
 *           each closed chunk's final points (so late points inside the chunk
 *           are exact) and merged into rollup_1h by upsert at flush, in the
 *           same transaction as the chunk rows: rollups always equal the
 *           aggregate of the flushed raw points.
 *           There is no 1-minute rollup table: at the common 1 reading a
 *           minute a per-minute row (~45 bytes) costs 60x the compressed raw
 *           point (~0.75 byte) and is slower to read than decoding the raw
 *           chunk; since a response holds at most SERIES_MAX_POINTS buckets,
 *           minute steps span at most ~7 days and are answered from raw.
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
 * Durability (with DESIGN §4): the head lives in memory; after a crash it is
 * rebuilt by replaying the WAL through series_append. Open chunks hold points
 * of WAL records older than the checkpoint, so the WAL must be kept, and
 * replayed, from series_replay_lsn() — see that function. Flushed data is
 * never double counted: series_append drops t <= sealed.
 *
 * Threads: one mutex guards the ids, the head and the pending list. The
 * writer thread is the only mutator (append, flush, retention) and takes it
 * for each change; a query takes it only to start its read transaction and
 * copy the head data it needs (blob bytes, no decoding), then reads SQLite and
 * decodes without it. series_flush commits and drops the flushed pending
 * chunks under the mutex, so a query sees each point exactly once. */
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
#define SERIES_ROLLUP_MS (3600 * 1000LL)       /* the rollup resolution */
#define SERIES_MAX_POINTS 10000                /* points or buckets per series in a response */
#define SERIES_MAX_CELLS 1000000               /* groups x buckets in one aggregate */
#define SERIES_RETENTION_ROWS 10000            /* rows deleted per series_retention call, at most */
#define SERIES_RETENTION_SERIES 5000           /* series visited per call, at most */
#define SERIES_MIN_RAW_RETENTION_MS (24 * 3600 * 1000LL)

/* The tables, for the lead to add as a migration (the module never creates
 * them). STRICT, WITHOUT ROWID where rows are small. Times are ms since the
 * epoch. A NULL REAL reads as NaN (SQLite stores NaN as NULL: a sum of +inf
 * and -inf).
 *   series     (id, entity, attr): the dense ids; never reused.
 *   chunk      one row per closed chunk; blob as in codec.h; min, max, sum,
 *              n as codec_stats. Key (series, t_min): chunks of a series never
 *              overlap and span < SERIES_WINDOW_MS, which bounds range scans.
 *   rollup_1h  one row per series and hour (bucket = hour start).
 *   meta       (existing table) key 'series_replay_lsn'. */
extern const char series_schema_sql[];

typedef struct series series;

/* Loads the ids and each series' sealed time (one index seek per series) and
 * the replay lsn. d is used only during the call. *out is the caller's:
 * series_close. */
int series_open(db *d, series **out, cb_error *err);
void series_close(series *s); /* NULL-safe; drops unflushed data */

/* Id of (entity, attr). create = 0: CB_ENOT_FOUND when unknown. create = 1
 * (writer thread only): assigns the next id, stored at the next flush.
 * O(1); CB_ENOMEM. Any thread. */
int series_id(series *s, uint32_t entity, uint16_t attr, int create, uint32_t *id, cb_error *err);

/* What series_append did with a point (all >= 0; errors are < 0). */
enum series_append_result { SERIES_APPENDED, SERIES_MERGED, SERIES_DROPPED };

/* Writer thread. Adds one numeric reading that came in WAL record lsn;
 * behaviour as above. O(1) amortised, O(chunk) for a late point. Returns a
 * series_append_result or CB_ENOMEM (the point is not stored). */
int series_append(series *s, uint64_t lsn, uint32_t entity, uint16_t attr, int64_t t_ms, double v);

/* Writer thread, outside any transaction on d (it opens its own): closes the
 * chunks whose window ended SERIES_IDLE_CLOSE_MS before now_ms, then stores in
 * one transaction the new ids, every pending chunk, their rollup deltas and
 * the replay lsn. On error nothing is stored and the pending chunks stay for
 * the next call. Cost: O(series) to scan for idle chunks + one insert per
 * chunk and per rollup delta (~2 per chunk); ~1 chunk per series per 2 hours
 * at 1 reading a minute. */
int series_flush(series *s, db *d, int64_t now_ms, cb_error *err);

/* The WAL must be kept and replayed from this lsn for the head to be rebuilt:
 * the lsn of the oldest point in an open chunk as of the last series_flush
 * (0: none, the checkpoint's own lsn rules). Loaded at open from meta. So the
 * lead trims the WAL only below min(checkpoint lsn + 1, this) and replays from
 * there, giving the series every record and the state only those after the
 * checkpoint lsn. With 1 reading a minute this keeps about 2 hours of WAL. */
uint64_t series_replay_lsn(series *s);

/* ---- queries (any thread, with that thread's own db connection) ---- */

enum series_agg { SERIES_AGG_AVG, SERIES_AGG_MIN, SERIES_AGG_MAX, SERIES_AGG_SUM, SERIES_AGG_COUNT,
                  SERIES_AGG_LAST };
int series_agg_parse(const char *name, enum series_agg *out); /* "avg".. ; CB_EINVALID_FIELD "agg" */
const char *series_agg_name(enum series_agg agg);

/* How a query was answered: AUTO (input only) picks ROLLUP when step and from
 * are multiples of SERIES_ROLLUP_MS, else RAW; RAW may be forced (tests, checks). */
enum series_plan { SERIES_PLAN_AUTO, SERIES_PLAN_RAW, SERIES_PLAN_ROLLUP };

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

/* One series. Cost: RAW decodes the chunks overlapping the range (one index
 * range scan) plus the head's pending and open chunks; ROLLUP reads one row an
 * hour plus the head. Errors: CB_ENOT_FOUND (unknown id), CB_EINVALID_FIELD
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
 * under the mutex (a memcpy each). */
int series_aggregate(series *s, db *d, const uint32_t *ids, const uint32_t *groups, size_t n, size_t ngroups,
                     const struct series_range *r, struct series_grid *out, cb_error *err);

/* ---- retention (writer thread) ---- */

/* How long a series' data is kept, in ms; 0 = forever. raw_ms >= 1 day
 * (SERIES_MIN_RAW_RETENTION_MS: the WAL replay window must stay within it). */
struct series_keep {
    int64_t raw_ms, rollup_ms;
};

/* The caller's rules (per attribute name, per entity type, ...): fills *keep
 * for one series. Called without the mutex. */
typedef void (*series_keep_fn)(void *arg, uint32_t entity, uint16_t attr, struct series_keep *keep);

/* One bounded step of retention: continues a round-robin walk over the series
 * where the last call stopped, deletes chunk rows with t_max < now - raw_ms and
 * rollup rows whose hour ended by now - rollup_ms, in one transaction, and
 * stops after SERIES_RETENTION_ROWS rows or SERIES_RETENTION_SERIES series.
 * *deleted gets the rows deleted; *wrapped is set when the walk went past the
 * last series (a full pass is done). Call it every few seconds from the writer. */
int series_retention(series *s, db *d, int64_t now_ms, series_keep_fn keep, void *arg, uint64_t *deleted,
                     int *wrapped, cb_error *err);

/* ---- metrics ---- */

struct series_stats {
    uint32_t series;                         /* ids known */
    uint64_t appended, merged, dropped;      /* series_append results */
    uint64_t open_points, pending_chunks;    /* in the head now */
    uint64_t flushed_chunks;                 /* total */
    size_t head_bytes;                       /* memory held by the head, ids and pending */
};
void series_get_stats(series *s, struct series_stats *out); /* any thread */

#endif
