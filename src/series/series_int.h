/* series_int — the series module's private structures, shared by series.c
 * (ids, head, flush, retention) and series_query.c. Never included from
 * another folder. */
#ifndef CB_SERIES_INT_H
#define CB_SERIES_INT_H

#include "series/codec.h"
#include "series/series.h"

#include <pthread.h>

#define SERIES_NO_PENDING UINT32_MAX

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
    uint32_t nroll;
    struct rollup roll[SERIES_WINDOW_MS / SERIES_ROLLUP_MS]; /* a chunk lies in one window */
};

struct head {
    uint32_t entity;
    uint16_t attr;
    uint32_t pend_first, pend_last; /* this series' pending chunks, oldest first */
    int64_t sealed;                 /* t_max of the last closed chunk; INT64_MIN = none */
    uint64_t first_lsn;             /* lsn of the oldest open point; 0 when empty */
    codec_appender app;             /* the open chunk */
};

struct series {
    pthread_mutex_t lock;
    struct head *heads; /* by id; n used, cap allocated */
    uint32_t n, cap, persisted; /* ids >= persisted are not in table series yet */
    uint32_t *slots;    /* hash of ids: id + 1, 0 = empty; mask + 1 slots */
    uint32_t mask;
    struct pending *pend;
    uint32_t npend, cappend;
    uint64_t replay_lsn;
    uint32_t retention_cursor;
    int64_t tmp_t[SERIES_CHUNK_MAX + 1]; /* writer thread scratch for one chunk */
    double tmp_v[SERIES_CHUNK_MAX + 1];
    uint64_t appended, merged, dropped, flushed_chunks;
};

int64_t series__floor(int64_t t, int64_t unit);

/* Accumulates chunk points (ascending) into rollup parts; returns how many. */
uint32_t series__rollups(const int64_t *t, const double *v, size_t n, struct rollup *out, uint32_t max);

#endif
