/* series_int — the series module's private structures, shared by series.c
 * (ids, head, flush, retention) and series_query.c. Never included from
 * another folder. */
#ifndef CB_SERIES_INT_H
#define CB_SERIES_INT_H

#include "series/codec.h"
#include "series/series.h"

#include <pthread.h>

#define SERIES_NO_PENDING UINT32_MAX
#define SERIES_ROLL_PARTS (SERIES_WINDOW_MS / SERIES_ROLLUP_MS)         /* hours a chunk spans, at most */
#define SERIES_ROLL_MINUTES (SERIES_WINDOW_MS / SERIES_ROLLUP_1M_MS)    /* minutes a chunk spans, at most */

/* One 1 h bucket, or the part of it that one chunk holds. */
struct rollup {
    int64_t bucket;
    uint64_t count;
    double sum, min, max, last;
};

/* A closed chunk waiting for series_flush. Owns blob. */
struct pending {
    uint32_t sid, next; /* next pending chunk of the same series, or SERIES_NO_PENDING */
    struct codec_stats st;
    uint8_t *blob;
    uint32_t len;
    uint8_t *rolls;  /* the encoded roll column; owned */
    uint32_t rolls_len;
    uint32_t nroll;
    struct rollup roll[SERIES_ROLL_PARTS]; /* a chunk lies in one window */
};

struct head {
    uint32_t entity;
    uint16_t attr;
    uint32_t pend_first, pend_last; /* this series' pending chunks, oldest first */
    uint32_t batch_first;           /* its chunks in the batch being flushed (older), or NONE */
    int64_t sealed;                 /* t_max of the last closed chunk; INT64_MIN = none */
    int64_t raw_cut;                /* retention emptied raw blobs before this; INT64_MIN = not yet (mutex) */
    uint8_t dirty;                  /* the open chunk changed since its snapshot */
    uint8_t snap;                   /* open_chunk holds a row of this series */
    codec_appender app;             /* the open chunk */
};

/* A query connection's prepared statements, kept between queries (parsing
 * them cost more than a small query). Used by one query at a time (busy). */
#define SERIES_STMT_CACHE 4
struct series_stmts {
    sqlite3 *conn; /* NULL: a free slot */
    int busy, temp;  /* temp: not in the cache, finalized after the query */
    sqlite3_stmt *chunks, *rollups, *begin, *probe, *commit;
};

/* What one flush stores, sealed by series_flush on the writer thread and
 * written by the flusher thread in one transaction. Immutable while in flight;
 * queries see its chunks until the commit drops them. */
struct snapshot {
    uint32_t sid;
    uint32_t len;  /* 0: delete the series' open_chunk row */
    uint8_t *blob; /* owned */
};
struct batch {
    int inflight;             /* sealed, not committed yet */
    int go;                   /* the writer is past its checkpoint: the flusher may write */
    uint64_t lsn;             /* every record up to it is in the batch or stored */
    uint32_t ids_from, ids_to; /* series ids to insert */
    struct series_key { uint32_t entity; uint16_t attr; } *keys; /* theirs, ids_to - ids_from; owned */
    struct pending *pend;     /* owned, npend of them */
    uint32_t npend;
    struct snapshot *snap;    /* owned, nsnap of them */
    uint32_t nsnap;
};

struct series {
    pthread_mutex_t lock;
    pthread_cond_t cond;      /* a batch handed over, or committed; with lock */
    pthread_t flusher;
    int flusher_running, stopping;
    db *fdb;                  /* the flusher's connection */
    struct batch batch;       /* guarded by lock */
    int flush_rc;             /* the flusher's last failure (0: none), reported once */
    cb_error flush_err;
    series_keep_fn keep;      /* retention rules for the flusher (NULL: none); set once at start */
    void *keep_arg;
    struct series_stmts stmts[SERIES_STMT_CACHE]; /* guarded by lock */
    db *qdb;                  /* a second query connection, for big aggregates; opened at first use */
    int qdb_busy;             /* an aggregate is using qdb; guarded by lock */
    struct head *heads; /* by id; n used, cap allocated */
    uint32_t n, cap, persisted; /* ids >= persisted are not in table series yet */
    uint32_t *slots;    /* hash of ids: id + 1, 0 = empty; mask + 1 slots */
    uint32_t mask;
    struct pending *pend;
    uint32_t npend, cappend;
    uint64_t replay_lsn;      /* replay the WAL from here for the series; >= 1 */
    uint32_t retention_cursor;
    int64_t tmp_t[SERIES_CHUNK_MAX + 1]; /* writer thread scratch for one chunk */
    double tmp_v[SERIES_CHUNK_MAX + 1];
    uint64_t appended, merged, dropped, flushed_chunks, split_aggregates;
};

int64_t series__floor(int64_t t, int64_t unit);

void series__stmts_free(struct series_stmts *st); /* finalizes; the slot is free again */

/* Opens a second connection (*out, the caller's) to d's database file. */
int series__open_peer(db *d, db **out, cb_error *err);

/* Accumulates chunk points (ascending) into rollup parts of unit ms (1 h or
 * 1 min); returns how many. decimals: codec_decimals of the chunk; when >= 0
 * each sum is the exact integer sum of the m's divided once (correctly
 * rounded, and cheap to store). */
uint32_t series__rollups(const int64_t *t, const double *v, size_t n, int decimals, int64_t unit,
                         struct rollup *out, uint32_t max);

/* The roll column of a chunk (format in series.c): its hour parts, and its
 * minute parts when the chunk is dense enough for them to be cheaper to read
 * than its points (SERIES_MINUTES_DENSITY points a minute on average).
 * SERIES_ROLL_MAX bytes at most. build fills hours[0..*nhours) and out and
 * returns the length; decode fills hours and, when minutes is not NULL,
 * minutes[0..*nminutes) (0: the chunk has none: its points are their own
 * minute rollups), or returns CB_ECORRUPT. */
#define SERIES_MINUTES_DENSITY 4
#define SERIES_ROLL_MAX (3 + (SERIES_ROLL_PARTS + SERIES_ROLL_MINUTES) * 64)
size_t series__roll_build(const int64_t *t, const double *v, size_t n, int decimals, struct rollup *hours,
                          uint32_t *nhours, uint8_t *out);
int series__roll_decode(const uint8_t *p, size_t len, int64_t t_min, struct rollup *hours, uint32_t *nhours,
                        struct rollup *minutes, uint32_t *nminutes);

#endif
