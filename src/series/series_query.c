/* series_query — raw, downsampled and grouped queries over the chunks and
 * rollups in SQLite plus the head (series.h). A query starts its read
 * transaction and copies the head data of its series under the mutex, so the
 * two are one consistent view; then it reads and decodes without the mutex.
 * Sources are visited in time order (stored, pending, open), which is what
 * makes "last" right when rollup parts of one bucket are combined. */
#include "series_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const agg_names[] = {"avg", "min", "max", "sum", "count", "last"};

int series_agg_parse(const char *name, enum series_agg *out)
{
    for (size_t i = 0; name && i < sizeof agg_names / sizeof agg_names[0]; i++)
        if (!strcmp(name, agg_names[i])) {
            *out = (enum series_agg)i;
            return 0;
        }
    return CB_EINVALID_FIELD;
}

const char *series_agg_name(enum series_agg agg)
{
    return (unsigned)agg < sizeof agg_names / sizeof agg_names[0] ? agg_names[agg] : "?";
}

/* ---- accumulators ---- */

struct acc {
    uint64_t count;
    double sum, min, max, last;
};

static void acc_rollup(struct acc *a, uint64_t count, double sum, double min, double max, double last)
{
    if (a->count == 0) {
        a->min = min;
        a->max = max;
    } else {
        a->min = min < a->min ? min : a->min;
        a->max = max > a->max ? max : a->max;
    }
    a->count += count;
    a->sum += sum;
    a->last = last;
}

static double acc_value(const struct acc *a, enum series_agg agg)
{
    switch (agg) {
    case SERIES_AGG_AVG: return a->sum / (double)a->count;
    case SERIES_AGG_MIN: return a->min;
    case SERIES_AGG_MAX: return a->max;
    case SERIES_AGG_SUM: return a->sum;
    case SERIES_AGG_COUNT: return (double)a->count;
    case SERIES_AGG_LAST: return a->last;
    }
    return NAN;
}

/* ---- the head, copied ---- */

struct head_copy {
    uint8_t *open; /* the open chunk's blob; NULL when empty */
    size_t open_len;
    struct pending *pend; /* copies, blobs owned */
    uint32_t npend;
};

static void copy_free(struct head_copy *c, size_t n)
{
    for (size_t i = 0; c && i < n; i++) {
        free(c[i].open);
        for (uint32_t j = 0; j < c[i].npend; j++)
            free(c[i].pend[j].blob);
        free(c[i].pend);
    }
    free(c);
}

static uint8_t *dup_bytes(const uint8_t *p, size_t len)
{
    uint8_t *q = malloc(len ? len : 1);
    if (q)
        memcpy(q, p, len);
    return q;
}

/* Mutex held. */
static int copy_head(const series *s, uint32_t sid, struct head_copy *c)
{
    const struct head *h = &s->heads[sid];
    if (codec_appender_stats(&h->app)->n > 0) {
        const uint8_t *b = codec_appender_blob(&h->app, &c->open_len);
        if (!(c->open = dup_bytes(b, c->open_len)))
            return CB_ENOMEM;
    }
    uint32_t n = 0;
    for (uint32_t i = h->pend_first; i != SERIES_NO_PENDING; i = s->pend[i].next)
        n++;
    if (n == 0)
        return 0;
    if (!(c->pend = calloc(n, sizeof *c->pend)))
        return CB_ENOMEM;
    for (uint32_t i = h->pend_first; i != SERIES_NO_PENDING; i = s->pend[i].next) {
        struct pending *p = &c->pend[c->npend++];
        *p = s->pend[i];
        if (!(p->blob = dup_bytes(s->pend[i].blob, p->len)))
            return CB_ENOMEM;
    }
    return 0;
}

/* Starts the read transaction on d and copies the heads of ids[0..n), under
 * the mutex. *out is the caller's (copy_free), the transaction too (end_read). */
static int begin_snapshot(series *s, db *d, const uint32_t *ids, size_t n, struct head_copy **out,
                          cb_error *err)
{
    struct head_copy *c = calloc(n ? n : 1, sizeof *c);
    if (!c)
        return cb_error_set(err, CB_ENOMEM, NULL, NULL);
    int rc = 0;
    sqlite3_stmt *st = NULL;
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; rc == 0 && i < n; i++)
        if (ids[i] >= s->n)
            rc = cb_error_set(err, CB_ENOT_FOUND, "series", "no series %u", ids[i]);
    if (rc == 0) {
        int src = sqlite3_exec(db_sqlite(d), "BEGIN", NULL, NULL, NULL);
        if (src == SQLITE_OK) /* the snapshot starts at the first read */
            src = sqlite3_prepare_v2(db_sqlite(d), "SELECT 1 FROM series LIMIT 1", -1, &st, NULL);
        if (src == SQLITE_OK && ((src = sqlite3_step(st)) == SQLITE_ROW || src == SQLITE_DONE))
            src = SQLITE_OK;
        sqlite3_finalize(st);
        if (src != SQLITE_OK)
            rc = db_error(d, src, "starting a series query", err);
    }
    for (size_t i = 0; rc == 0 && i < n; i++)
        if (copy_head(s, ids[i], &c[i]) != 0)
            rc = cb_error_set(err, CB_ENOMEM, NULL, "out of memory copying the head");
    pthread_mutex_unlock(&s->lock);
    if (rc != 0) {
        if (!sqlite3_get_autocommit(db_sqlite(d)))
            sqlite3_exec(db_sqlite(d), "ROLLBACK", NULL, NULL, NULL);
        copy_free(c, n);
        return rc;
    }
    *out = c;
    return 0;
}

static void end_read(db *d)
{
    if (!sqlite3_get_autocommit(db_sqlite(d)))
        sqlite3_exec(db_sqlite(d), "COMMIT", NULL, NULL, NULL);
}

/* ---- scanning one series ---- */

/* Where the points of a scan go: raw points (acc == NULL) or buckets. */
struct scan {
    int64_t lo, hi;          /* data range, inclusive */
    int64_t from, step;      /* buckets */
    struct acc *acc;
    struct series_points *out;
    size_t cap;              /* of out's arrays */
    sqlite3_stmt *chunks, *rollups;
    int64_t t[SERIES_CHUNK_MAX + 1];
    double v[SERIES_CHUNK_MAX + 1];
    cb_error *err;
};

static size_t bucket_of(const struct scan *sc, int64_t t)
{
    return (size_t)(((uint64_t)t - (uint64_t)sc->from) / (uint64_t)sc->step);
}

static int emit_point(struct scan *sc, int64_t t, double v)
{
    if (sc->acc) {
        acc_rollup(&sc->acc[bucket_of(sc, t)], 1, v, v, v, v);
        return 0;
    }
    struct series_points *o = sc->out;
    if (o->n == SERIES_MAX_POINTS)
        return cb_error_set(sc->err, CB_ETOO_LARGE, "to", "more than %d points: narrow the range or give a step",
                            SERIES_MAX_POINTS);
    if (o->n == sc->cap) {
        size_t cap = sc->cap ? sc->cap * 2 : 256;
        int64_t *t2 = realloc(o->t, cap * sizeof *t2);
        if (t2)
            o->t = t2;
        double *v2 = realloc(o->v, cap * sizeof *v2);
        if (v2)
            o->v = v2;
        if (!t2 || !v2)
            return cb_error_set(sc->err, CB_ENOMEM, NULL, NULL);
        sc->cap = cap;
    }
    o->t[o->n] = t;
    o->v[o->n++] = v;
    return 0;
}

static int emit_blob(struct scan *sc, const uint8_t *blob, size_t len)
{
    size_t n;
    cb_error e;
    int rc = codec_decode(blob, len, sc->t, sc->v, SERIES_CHUNK_MAX + 1, &n, &e);
    if (rc != 0)
        return cb_error_set(sc->err, CB_ECORRUPT, "chunk", "a stored chunk does not decode: %s", e.message);
    for (size_t i = 0; rc == 0 && i < n; i++)
        if (sc->t[i] >= sc->lo && sc->t[i] <= sc->hi)
            rc = emit_point(sc, sc->t[i], sc->v[i]);
    return rc;
}

static int64_t sat_sub(int64_t a, int64_t b)
{
    return a < INT64_MIN + b ? INT64_MIN : a - b;
}

static double col_double(sqlite3_stmt *st, int col)
{
    return sqlite3_column_type(st, col) == SQLITE_NULL ? NAN : sqlite3_column_double(st, col);
}

static int scan_stored_chunks(struct scan *sc, db *d, uint32_t sid)
{
    sqlite3_stmt *st = sc->chunks;
    sqlite3_bind_int64(st, 1, sid);
    sqlite3_bind_int64(st, 2, sc->lo);
    sqlite3_bind_int64(st, 3, sc->hi);
    sqlite3_bind_int64(st, 4, sat_sub(sc->lo, SERIES_WINDOW_MS));
    int rc = 0, src;
    while (rc == 0 && (src = sqlite3_step(st)) == SQLITE_ROW)
        rc = emit_blob(sc, sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0));
    if (rc == 0 && src != SQLITE_DONE)
        rc = db_error(d, src, "reading chunks", sc->err);
    sqlite3_reset(st);
    return rc;
}

static int scan_stored_rollups(struct scan *sc, db *d, uint32_t sid)
{
    sqlite3_stmt *st = sc->rollups;
    sqlite3_bind_int64(st, 1, sid);
    sqlite3_bind_int64(st, 2, sc->lo);
    sqlite3_bind_int64(st, 3, sc->hi);
    int src;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t b = sqlite3_column_int64(st, 0);
        acc_rollup(&sc->acc[bucket_of(sc, b)], (uint64_t)sqlite3_column_int64(st, 1),
                   col_double(st, 2), col_double(st, 3), col_double(st, 4), col_double(st, 5));
    }
    sqlite3_reset(st);
    return src == SQLITE_DONE ? 0 : db_error(d, src, "reading rollups", sc->err);
}

static int scan_series(struct scan *sc, db *d, uint32_t sid, const struct head_copy *c, int rollup)
{
    int rc = rollup ? scan_stored_rollups(sc, d, sid) : scan_stored_chunks(sc, d, sid);
    for (uint32_t i = 0; rc == 0 && i < c->npend; i++) {
        const struct pending *p = &c->pend[i];
        if (!rollup && p->st.t_max >= sc->lo && p->st.t_min <= sc->hi)
            rc = emit_blob(sc, p->blob, p->len);
        for (uint32_t j = 0; rollup && j < p->nroll; j++) {
            const struct rollup *r = &p->roll[j];
            if (r->bucket >= sc->lo && r->bucket <= sc->hi)
                acc_rollup(&sc->acc[bucket_of(sc, r->bucket)], r->count, r->sum,
                           r->min, r->max, r->last);
        }
    }
    if (rc == 0 && c->open)
        rc = emit_blob(sc, c->open, c->open_len);
    return rc;
}

/* ---- planning ---- */

struct plan {
    int64_t lo, hi, step;
    size_t nbuckets;
    enum series_plan plan;
};

static int make_plan(const struct series_range *r, int whole_range_bucket, struct plan *p, cb_error *err)
{
    if (r->from > r->to)
        return cb_error_set(err, CB_EINVALID_FIELD, "from", "from is after to");
    if ((unsigned)r->agg > SERIES_AGG_LAST)
        return cb_error_set(err, CB_EINVALID_FIELD, "agg", "unknown aggregate");
    uint64_t span = (uint64_t)r->to - (uint64_t)r->from; /* to - from, exact */
    int64_t step = r->step;
    if (step < 0)
        return cb_error_set(err, CB_EINVALID_FIELD, "step", "step must be positive");
    if (step == 0 && whole_range_bucket) {
        if (span >= (uint64_t)INT64_MAX)
            return cb_error_set(err, CB_EINVALID_FIELD, "to", "the range is too long");
        step = (int64_t)span + 1;
    }
    *p = (struct plan){r->from, r->to, step, 0, SERIES_PLAN_RAW};
    if (step == 0) {
        if (r->plan == SERIES_PLAN_ROLLUP)
            return cb_error_set(err, CB_EINVALID_FIELD, "step", "rollups need a step");
        return 0;
    }
    uint64_t nb = span / (uint64_t)step + 1;
    if (nb > SERIES_MAX_POINTS)
        return cb_error_set(err, CB_EINVALID_FIELD, "step",
                            "step %lld ms gives %llu buckets over the range; at most %d", (long long)step,
                            (unsigned long long)nb, SERIES_MAX_POINTS);
    p->nbuckets = (size_t)nb;
    __int128 hi = (__int128)r->from + (__int128)nb * step - 1; /* whole buckets, past to */
    p->hi = hi > INT64_MAX ? INT64_MAX : (int64_t)hi;
    int aligned = step % SERIES_ROLLUP_MS == 0 && series__floor(r->from, SERIES_ROLLUP_MS) == r->from;
    if (r->plan == SERIES_PLAN_ROLLUP && !aligned)
        return cb_error_set(err, CB_EINVALID_FIELD, "step", "rollups need from and step in whole hours");
    if (r->plan != SERIES_PLAN_RAW && aligned)
        p->plan = SERIES_PLAN_ROLLUP;
    return 0;
}

static int prepare_scan(struct scan *sc, db *d, const struct plan *p, cb_error *err)
{
    memset(sc, 0, offsetof(struct scan, t));
    sc->lo = p->lo;
    sc->hi = p->hi;
    sc->from = p->lo;
    sc->step = p->step;
    sc->err = err;
    int rc = sqlite3_prepare_v2(db_sqlite(d),
                                "SELECT blob FROM chunk WHERE series = ?1 AND t_min > ?4 AND t_min <= ?3 "
                                "AND t_max >= ?2 ORDER BY t_min", -1, &sc->chunks, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(db_sqlite(d),
                                "SELECT bucket, count, sum, min, max, last FROM rollup_1h WHERE series = ?1 "
                                "AND bucket >= ?2 AND bucket <= ?3 ORDER BY bucket", -1, &sc->rollups, NULL);
    return rc == SQLITE_OK ? 0 : db_error(d, rc, "preparing a series query", err);
}

static void finish_scan(struct scan *sc)
{
    sqlite3_finalize(sc->chunks);
    sqlite3_finalize(sc->rollups);
    free(sc->acc);
}

/* ---- the two queries ---- */

void series_points_free(struct series_points *p)
{
    free(p->t);
    free(p->v);
    memset(p, 0, sizeof *p);
}

/* Moves the non-empty buckets to the points; frees the accumulators. */
static int buckets_to_points(struct scan *sc, const struct plan *p, enum series_agg agg)
{
    struct acc *acc = sc->acc;
    int rc = 0;
    sc->acc = NULL;
    for (size_t k = 0; rc == 0 && k < p->nbuckets; k++)
        if (acc[k].count)
            rc = emit_point(sc, p->lo + (int64_t)k * p->step, acc_value(&acc[k], agg));
    free(acc);
    return rc;
}

int series_query(series *s, db *d, uint32_t id, const struct series_range *r, struct series_points *out,
                 cb_error *err)
{
    struct plan p;
    struct head_copy *c = NULL;
    memset(out, 0, sizeof *out);
    int rc = make_plan(r, 0, &p, err);
    if (rc != 0)
        return rc;
    struct scan *sc = malloc(sizeof *sc);
    if (!sc)
        return cb_error_set(err, CB_ENOMEM, NULL, NULL);
    rc = prepare_scan(sc, d, &p, err);
    sc->out = out;
    if (rc == 0 && p.nbuckets && !(sc->acc = calloc(p.nbuckets, sizeof *sc->acc)))
        rc = cb_error_set(err, CB_ENOMEM, NULL, NULL);
    if (rc == 0)
        rc = begin_snapshot(s, d, &id, 1, &c, err);
    if (rc == 0) {
        rc = scan_series(sc, d, id, c, p.plan == SERIES_PLAN_ROLLUP);
        end_read(d);
    }
    if (rc == 0 && p.nbuckets)
        rc = buckets_to_points(sc, &p, r->agg);
    out->plan = p.plan;
    copy_free(c, 1);
    finish_scan(sc);
    free(sc);
    if (rc != 0)
        series_points_free(out);
    return rc;
}

void series_grid_free(struct series_grid *g)
{
    free(g->v);
    memset(g, 0, sizeof *g);
}

static int check_aggregate(const uint32_t *groups, size_t n, size_t ngroups, const struct series_range *r,
                           cb_error *err)
{
    if (r->agg == SERIES_AGG_LAST)
        return cb_error_set(err, CB_EINVALID_FIELD, "agg", "last is not defined across series");
    if (ngroups == 0)
        return cb_error_set(err, CB_EINVALID_FIELD, "group", "no groups");
    for (size_t i = 0; i < n; i++)
        if (groups[i] >= ngroups)
            return cb_error_set(err, CB_EINVALID_FIELD, "group", "series %zu is in group %u of %zu", i, groups[i],
                                ngroups);
    return 0;
}

int series_aggregate(series *s, db *d, const uint32_t *ids, const uint32_t *groups, size_t n, size_t ngroups,
                     const struct series_range *r, struct series_grid *out, cb_error *err)
{
    struct plan p;
    struct head_copy *c = NULL;
    memset(out, 0, sizeof *out);
    int rc = check_aggregate(groups, n, ngroups, r, err);
    if (rc == 0)
        rc = make_plan(r, 1, &p, err);
    if (rc == 0 && ngroups > SERIES_MAX_CELLS / p.nbuckets)
        rc = cb_error_set(err, CB_EINVALID_FIELD, "step", "%zu groups x %zu buckets is over %d", ngroups,
                          p.nbuckets, SERIES_MAX_CELLS);
    if (rc != 0)
        return rc;
    struct scan *sc = malloc(sizeof *sc);
    struct acc *all = calloc(ngroups * p.nbuckets, sizeof *all);
    out->v = malloc(ngroups * p.nbuckets * sizeof *out->v);
    if (!sc || !all || !out->v) {
        free(sc);
        free(all);
        series_grid_free(out);
        return cb_error_set(err, CB_ENOMEM, NULL, NULL);
    }
    rc = prepare_scan(sc, d, &p, err);
    if (rc == 0)
        rc = begin_snapshot(s, d, ids, n, &c, err);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        sc->acc = all + (size_t)groups[i] * p.nbuckets;
        rc = scan_series(sc, d, ids[i], &c[i], p.plan == SERIES_PLAN_ROLLUP);
    }
    if (c)
        end_read(d);
    sc->acc = NULL;
    for (size_t k = 0; rc == 0 && k < ngroups * p.nbuckets; k++)
        out->v[k] = all[k].count ? acc_value(&all[k], r->agg) : r->agg == SERIES_AGG_COUNT ? 0.0 : NAN;
    *out = (struct series_grid){ngroups, p.nbuckets, p.lo, p.step, out->v, p.plan};
    copy_free(c, n);
    finish_scan(sc);
    free(sc);
    free(all);
    if (rc != 0)
        series_grid_free(out);
    return rc;
}
