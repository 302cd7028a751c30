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

const char *series_plan_name(enum series_plan plan)
{
    return plan == SERIES_PLAN_ROLLUP ? "rollup_1h" : plan == SERIES_PLAN_ROLLUP_1M ? "rollup_1m"
         : plan == SERIES_PLAN_RAW    ? "raw"
                                      : "auto";
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
static int copy_list(const struct pending *list, uint32_t first, struct head_copy *c)
{
    for (uint32_t i = first; i != SERIES_NO_PENDING; i = list[i].next) {
        struct pending *p = &c->pend[c->npend++];
        *p = list[i];
        p->rolls = NULL; /* queries use the parts (roll), not the encoded column */
        if (!(p->blob = dup_bytes(list[i].blob, p->len)))
            return CB_ENOMEM;
    }
    return 0;
}

/* Mutex held. The series' closed chunks not in SQLite yet, oldest first (the
 * batch in flight, then the pending ones), and its open chunk. */
static int copy_head(const series *s, uint32_t sid, struct head_copy *c)
{
    const struct head *h = &s->heads[sid];
    if (codec_appender_stats(&h->app)->n > 0) {
        const uint8_t *b = codec_appender_blob(&h->app, &c->open_len);
        if (!(c->open = dup_bytes(b, c->open_len)))
            return CB_ENOMEM;
    }
    uint32_t n = 0;
    for (uint32_t i = h->batch_first; i != SERIES_NO_PENDING; i = s->batch.pend[i].next)
        n++;
    for (uint32_t i = h->pend_first; i != SERIES_NO_PENDING; i = s->pend[i].next)
        n++;
    if (n == 0)
        return 0;
    if (!(c->pend = calloc(n, sizeof *c->pend)))
        return CB_ENOMEM;
    int rc = copy_list(s->batch.pend, h->batch_first, c);
    return rc == 0 ? copy_list(s->pend, h->pend_first, c) : rc;
}

/* ---- the statement cache ---- */

void series__stmts_free(struct series_stmts *st)
{
    sqlite3_finalize(st->chunks);
    sqlite3_finalize(st->rollups);
    sqlite3_finalize(st->begin);
    sqlite3_finalize(st->probe);
    sqlite3_finalize(st->commit);
    memset(st, 0, sizeof *st);
}

static int stmts_prepare(struct series_stmts *st, sqlite3 *c)
{
    int rc = sqlite3_prepare_v3(c, "SELECT blob FROM chunk WHERE series = ?1 AND t_min > ?4 AND t_min <= ?3 "
                                "AND t_max >= ?2 ORDER BY t_min", -1, SQLITE_PREPARE_PERSISTENT, &st->chunks, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v3(c, "SELECT t_min, roll, blob FROM chunk WHERE series = ?1 AND t_min > ?4 AND t_min <= ?3 "
                                "AND t_max >= ?2 ORDER BY t_min", -1, SQLITE_PREPARE_PERSISTENT, &st->rollups, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v3(c, "BEGIN", -1, SQLITE_PREPARE_PERSISTENT, &st->begin, NULL);
    if (rc == SQLITE_OK) /* the read snapshot starts at the first read */
        rc = sqlite3_prepare_v3(c, "SELECT 1 FROM series LIMIT 1", -1, SQLITE_PREPARE_PERSISTENT, &st->probe, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v3(c, "COMMIT", -1, SQLITE_PREPARE_PERSISTENT, &st->commit, NULL);
    return rc;
}

/* The statements of d's connection for one query: a cached set when one is
 * free, else a new one (cached when a slot is free). stmts_put gives it back. */
static int stmts_get(series *s, db *d, struct series_stmts **out, cb_error *err)
{
    sqlite3 *c = db_sqlite(d);
    struct series_stmts *st = NULL;
    pthread_mutex_lock(&s->lock);
    for (int i = 0; !st && i < SERIES_STMT_CACHE; i++)
        if (s->stmts[i].conn == c && !s->stmts[i].busy)
            st = &s->stmts[i];
    for (int i = 0; !st && i < SERIES_STMT_CACHE; i++)
        if (!s->stmts[i].conn) {
            st = &s->stmts[i];
            st->conn = c;
        }
    if (st)
        st->busy = 1;
    pthread_mutex_unlock(&s->lock);
    if (!st && (st = calloc(1, sizeof *st)) != NULL) {
        st->conn = c;
        st->busy = st->temp = 1;
    }
    if (!st)
        return cb_error_set(err, CB_ENOMEM, NULL, NULL);
    int rc = st->chunks ? SQLITE_OK : stmts_prepare(st, c);
    if (rc != SQLITE_OK) {
        int out_rc = db_error(d, rc, "preparing a series query", err);
        pthread_mutex_lock(&s->lock);
        int temp = st->temp;
        series__stmts_free(st);
        pthread_mutex_unlock(&s->lock);
        if (temp)
            free(st);
        return out_rc;
    }
    *out = st;
    return 0;
}

static void stmts_put(series *s, struct series_stmts *st)
{
    if (!st)
        return;
    sqlite3_reset(st->chunks);
    sqlite3_reset(st->rollups);
    if (st->temp) {
        series__stmts_free(st);
        free(st);
        return;
    }
    pthread_mutex_lock(&s->lock);
    st->busy = 0;
    pthread_mutex_unlock(&s->lock);
}

static int step_once(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static void end_read(db *d, struct series_stmts *st)
{
    if (!sqlite3_get_autocommit(db_sqlite(d)) && step_once(st->commit) != SQLITE_OK)
        sqlite3_exec(db_sqlite(d), "ROLLBACK", NULL, NULL, NULL);
}

static int begin_read(db *d, struct series_stmts *st, cb_error *err)
{
    int src = step_once(st->begin);
    if (src == SQLITE_OK)
        src = step_once(st->probe);
    return src == SQLITE_OK ? 0 : db_error(d, src, "starting a series query", err);
}

/* Starts the read transaction on d (and on d2 with st2, unless NULL) and
 * copies the heads of ids[0..n), under the mutex. The flusher commits under
 * it too, so both connections read the same store, the one the heads go
 * with. *out is the caller's (copy_free), the transactions too (end_read). */
static int begin_snapshot(series *s, db *d, struct series_stmts *st, db *d2, struct series_stmts *st2,
                          const uint32_t *ids, size_t n, struct head_copy **out, cb_error *err)
{
    struct head_copy *c = calloc(n ? n : 1, sizeof *c);
    if (!c)
        return cb_error_set(err, CB_ENOMEM, NULL, NULL);
    int rc = 0;
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; rc == 0 && i < n; i++)
        if (ids[i] >= s->n)
            rc = cb_error_set(err, CB_ENOT_FOUND, "series", "no series %u", ids[i]);
    if (rc == 0)
        rc = begin_read(d, st, err);
    if (rc == 0 && st2)
        rc = begin_read(d2, st2, err);
    for (size_t i = 0; rc == 0 && i < n; i++)
        if (copy_head(s, ids[i], &c[i]) != 0)
            rc = cb_error_set(err, CB_ENOMEM, NULL, "out of memory copying the head");
    pthread_mutex_unlock(&s->lock);
    if (rc != 0) {
        end_read(d, st);
        if (st2)
            end_read(d2, st2);
        copy_free(c, n);
        return rc;
    }
    *out = c;
    return 0;
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
    struct rollup hours[SERIES_ROLL_PARTS], minutes[SERIES_ROLL_MINUTES];
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

/* Points t[i..n) (ascending, from >= lo) into the buckets: the bucket moves
 * forward with the points instead of a division per point. */
static void accumulate(struct scan *sc, size_t i, size_t n)
{
    if (i >= n || sc->t[i] > sc->hi)
        return;
    size_t k = bucket_of(sc, sc->t[i]);
    __int128 end = (__int128)sc->from + (__int128)(k + 1) * sc->step - 1; /* the bucket's last ms */
    struct acc *a = &sc->acc[k];
    for (; i < n && sc->t[i] <= sc->hi; i++) {
        int64_t t = sc->t[i];
        double v = sc->v[i];
        if (t > end) {
            k = bucket_of(sc, t);
            end = (__int128)sc->from + (__int128)(k + 1) * sc->step - 1;
            a = &sc->acc[k];
        }
        if (a->count == 0) {
            a->min = a->max = v;
        } else {
            a->min = v < a->min ? v : a->min;
            a->max = v > a->max ? v : a->max;
        }
        a->count++;
        a->sum += v;
        a->last = v;
    }
}

static int emit_blob(struct scan *sc, const uint8_t *blob, size_t len)
{
    size_t n, i = 0;
    cb_error e;
    if (len == 0)
        return 0; /* raw points past their retention; the row stays for its rollups */
    int rc = codec_decode(blob, len, sc->t, sc->v, SERIES_CHUNK_MAX + 1, &n, &e);
    if (rc != 0)
        return cb_error_set(sc->err, CB_ECORRUPT, "chunk", "a stored chunk does not decode: %s", e.message);
    while (i < n && sc->t[i] < sc->lo)
        i++;
    if (sc->acc) {
        accumulate(sc, i, n);
        return 0;
    }
    for (; rc == 0 && i < n && sc->t[i] <= sc->hi; i++)
        rc = emit_point(sc, sc->t[i], sc->v[i]);
    return rc;
}

static int64_t sat_sub(int64_t a, int64_t b)
{
    return a < INT64_MIN + b ? INT64_MIN : a - b;
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

static void emit_rollups(struct scan *sc, const struct rollup *r, uint32_t n)
{
    for (uint32_t j = 0; j < n; j++)
        if (r[j].bucket >= sc->lo && r[j].bucket <= sc->hi)
            acc_rollup(&sc->acc[bucket_of(sc, r[j].bucket)], r[j].count, r[j].sum, r[j].min, r[j].max, r[j].last);
}

/* Hourly plan: each row's hour parts. Minute plan: its minute parts, or its
 * points where it has none (then each point is its own minute rollup). */
static int scan_stored_rollups(struct scan *sc, db *d, uint32_t sid, enum series_plan plan)
{
    sqlite3_stmt *st = sc->rollups;
    sqlite3_bind_int64(st, 1, sid);
    sqlite3_bind_int64(st, 2, sc->lo);
    sqlite3_bind_int64(st, 3, sc->hi);
    sqlite3_bind_int64(st, 4, sat_sub(sc->lo, SERIES_WINDOW_MS));
    int minute = plan == SERIES_PLAN_ROLLUP_1M, src, rc = 0;
    while (rc == 0 && (src = sqlite3_step(st)) == SQLITE_ROW) {
        uint32_t nh, nm;
        if (series__roll_decode(sqlite3_column_blob(st, 1), (size_t)sqlite3_column_bytes(st, 1),
                                sqlite3_column_int64(st, 0), sc->hours, &nh, minute ? sc->minutes : NULL, &nm) != 0)
            rc = cb_error_set(sc->err, CB_ECORRUPT, "chunk", "the rollups of a stored chunk of series %u do not decode",
                              sid);
        else if (!minute)
            emit_rollups(sc, sc->hours, nh);
        else if (nm)
            emit_rollups(sc, sc->minutes, nm);
        else
            rc = emit_blob(sc, sqlite3_column_blob(st, 2), (size_t)sqlite3_column_bytes(st, 2));
    }
    if (rc == 0 && src != SQLITE_DONE)
        rc = db_error(d, src, "reading rollups", sc->err);
    sqlite3_reset(st);
    return rc;
}

/* The head's pending chunks: their hour parts for the hourly plan, else their
 * points (exact at any resolution); then the open chunk's points. */
static int scan_series(struct scan *sc, db *d, uint32_t sid, const struct head_copy *c, enum series_plan plan)
{
    int rc = plan == SERIES_PLAN_RAW ? scan_stored_chunks(sc, d, sid) : scan_stored_rollups(sc, d, sid, plan);
    for (uint32_t i = 0; rc == 0 && i < c->npend; i++) {
        const struct pending *p = &c->pend[i];
        if (plan == SERIES_PLAN_ROLLUP)
            emit_rollups(sc, p->roll, p->nroll);
        else if (p->st.t_max >= sc->lo && p->st.t_min <= sc->hi)
            rc = emit_blob(sc, p->blob, p->len);
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
        if (r->plan == SERIES_PLAN_ROLLUP || r->plan == SERIES_PLAN_ROLLUP_1M)
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
    int hours = step % SERIES_ROLLUP_MS == 0 && series__floor(r->from, SERIES_ROLLUP_MS) == r->from;
    int minutes = step % SERIES_ROLLUP_1M_MS == 0 && series__floor(r->from, SERIES_ROLLUP_1M_MS) == r->from;
    if (r->plan == SERIES_PLAN_ROLLUP && !hours)
        return cb_error_set(err, CB_EINVALID_FIELD, "step", "rollups need from and step in whole hours");
    if (r->plan == SERIES_PLAN_ROLLUP_1M && !minutes)
        return cb_error_set(err, CB_EINVALID_FIELD, "step", "minute rollups need from and step in whole minutes");
    if (r->plan == SERIES_PLAN_AUTO) /* the coarsest resolution that answers exactly */
        p->plan = hours ? SERIES_PLAN_ROLLUP : minutes ? SERIES_PLAN_ROLLUP_1M : SERIES_PLAN_RAW;
    else
        p->plan = r->plan;
    return 0;
}

static void prepare_scan(struct scan *sc, const struct series_stmts *st, const struct plan *p, cb_error *err)
{
    memset(sc, 0, offsetof(struct scan, t));
    sc->lo = p->lo;
    sc->hi = p->hi;
    sc->from = p->lo;
    sc->step = p->step;
    sc->err = err;
    sc->chunks = st->chunks;
    sc->rollups = st->rollups;
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
    struct series_stmts *st;
    if ((rc = stmts_get(s, d, &st, err)) != 0)
        return rc;
    struct scan *sc = malloc(sizeof *sc);
    if (!sc) {
        stmts_put(s, st);
        return cb_error_set(err, CB_ENOMEM, NULL, NULL);
    }
    prepare_scan(sc, st, &p, err);
    sc->out = out;
    if (p.nbuckets && !(sc->acc = calloc(p.nbuckets, sizeof *sc->acc)))
        rc = cb_error_set(err, CB_ENOMEM, NULL, NULL);
    if (rc == 0)
        rc = begin_snapshot(s, d, st, NULL, NULL, &id, 1, &c, err);
    if (rc == 0) {
        rc = scan_series(sc, d, id, c, p.plan);
        end_read(d, st);
    }
    if (rc == 0 && p.nbuckets)
        rc = buckets_to_points(sc, &p, r->agg);
    out->plan = p.plan;
    copy_free(c, 1);
    free(sc->acc);
    free(sc);
    stmts_put(s, st);
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

/* An aggregate over at least this many series (and at most this many
 * cells) scans half of them on a second thread with its own connection: the
 * scan is CPU-bound decoding, so two cores take about half the time. */
#define PARALLEL_MIN_SERIES 1024
#define PARALLEL_MAX_CELLS 65536

/* One thread's share of an aggregate: ids[from..to) into acc. */
struct part {
    db *d;
    struct series_stmts *st;
    struct scan *sc;
    struct acc *acc; /* ngroups x nbuckets */
    const uint32_t *ids, *groups;
    const struct head_copy *c;
    size_t from, to, nbuckets;
    enum series_plan plan;
    int rc;
    cb_error err;
};

static void *scan_part(void *arg)
{
    struct part *p = arg;
    p->rc = 0;
    for (size_t i = p->from; p->rc == 0 && i < p->to; i++) {
        p->sc->acc = p->acc + (size_t)p->groups[i] * p->nbuckets;
        p->rc = scan_series(p->sc, p->d, p->ids[i], &p->c[i], p->plan);
    }
    return NULL;
}

/* The second connection with its statements, scan and accumulators, when
 * the aggregate is big enough and no other aggregate has them; else 0 and
 * the caller scans alone. */
static int part_take(series *s, db *d, const struct plan *pl, size_t cells, struct part *p)
{
    int mine = 0;
    pthread_mutex_lock(&s->lock);
    if (!s->qdb_busy)
        mine = s->qdb_busy = 1;
    pthread_mutex_unlock(&s->lock);
    if (!mine)
        return 0;
    memset(p, 0, sizeof *p);
    if (!s->qdb && series__open_peer(d, &s->qdb, &p->err) != 0)
        s->qdb = NULL;
    if (s->qdb && stmts_get(s, s->qdb, &p->st, &p->err) == 0) {
        p->d = s->qdb;
        p->sc = malloc(sizeof *p->sc);
        p->acc = calloc(cells, sizeof *p->acc);
        if (p->sc && p->acc) {
            prepare_scan(p->sc, p->st, pl, &p->err);
            return 1;
        }
        free(p->sc);
        free(p->acc);
        stmts_put(s, p->st);
    }
    pthread_mutex_lock(&s->lock);
    s->qdb_busy = 0;
    pthread_mutex_unlock(&s->lock);
    return 0;
}

static void part_give_back(series *s, struct part *p)
{
    free(p->sc);
    free(p->acc);
    stmts_put(s, p->st);
    pthread_mutex_lock(&s->lock);
    s->qdb_busy = 0;
    s->split_aggregates++;
    pthread_mutex_unlock(&s->lock);
}

static void acc_merge(struct acc *into, const struct acc *from, size_t n)
{
    for (size_t k = 0; k < n; k++)
        if (from[k].count)
            acc_rollup(&into[k], from[k].count, from[k].sum, from[k].min, from[k].max, from[k].last);
}

/* ids[0..n) into all, on two threads when helper is set up (part_take):
 * this thread the first half, the helper the second into its own
 * accumulators, which the caller merges. */
static int scan_all(series *s, db *d, struct series_stmts *st, struct scan *sc, struct acc *all, const uint32_t *ids,
                    const uint32_t *groups, size_t n, const struct plan *pl, struct part *helper, cb_error *err)
{
    struct head_copy *c = NULL;
    int rc = begin_snapshot(s, d, st, helper ? helper->d : NULL, helper ? helper->st : NULL, ids, n, &c, err);
    if (rc != 0)
        return rc;
    struct part mine = {d, st, sc, all, ids, groups, c, 0, n, pl->nbuckets, pl->plan, 0, {0}};
    pthread_t thread;
    int two = 0;
    if (helper) {
        *helper = (struct part){helper->d, helper->st, helper->sc, helper->acc, ids, groups, c, n / 2, n,
                                pl->nbuckets, pl->plan, 0, {0}};
        helper->sc->err = &helper->err;
        two = pthread_create(&thread, NULL, scan_part, helper) == 0;
        if (two)
            mine.to = n / 2;
    }
    scan_part(&mine); /* sc->err is err */
    rc = mine.rc;
    if (two) {
        pthread_join(thread, NULL);
        if (rc == 0 && helper->rc != 0) {
            rc = helper->rc;
            *err = helper->err;
        }
    }
    if (helper)
        end_read(helper->d, helper->st);
    end_read(d, st);
    copy_free(c, n);
    return rc;
}

int series_aggregate(series *s, db *d, const uint32_t *ids, const uint32_t *groups, size_t n, size_t ngroups,
                     const struct series_range *r, struct series_grid *out, cb_error *err)
{
    struct plan p;
    memset(out, 0, sizeof *out);
    int rc = check_aggregate(groups, n, ngroups, r, err);
    if (rc == 0)
        rc = make_plan(r, 1, &p, err);
    if (rc == 0 && ngroups > SERIES_MAX_CELLS / p.nbuckets)
        rc = cb_error_set(err, CB_EINVALID_FIELD, "step", "%zu groups x %zu buckets is over %d", ngroups,
                          p.nbuckets, SERIES_MAX_CELLS);
    if (rc != 0)
        return rc;
    size_t cells = ngroups * p.nbuckets;
    struct series_stmts *st;
    if ((rc = stmts_get(s, d, &st, err)) != 0)
        return rc;
    struct scan *sc = malloc(sizeof *sc);
    struct acc *all = calloc(cells, sizeof *all);
    out->v = malloc(cells * sizeof *out->v);
    if (!sc || !all || !out->v) {
        free(sc);
        free(all);
        series_grid_free(out);
        stmts_put(s, st);
        return cb_error_set(err, CB_ENOMEM, NULL, NULL);
    }
    prepare_scan(sc, st, &p, err);
    struct part helper;
    int two = n >= PARALLEL_MIN_SERIES && cells <= PARALLEL_MAX_CELLS && part_take(s, d, &p, cells, &helper);
    rc = scan_all(s, d, st, sc, all, ids, groups, n, &p, two ? &helper : NULL, err);
    if (two) {
        if (rc == 0)
            acc_merge(all, helper.acc, cells);
        part_give_back(s, &helper);
    }
    for (size_t k = 0; rc == 0 && k < cells; k++)
        out->v[k] = all[k].count ? acc_value(&all[k], r->agg) : r->agg == SERIES_AGG_COUNT ? 0.0 : NAN;
    *out = (struct series_grid){ngroups, p.nbuckets, p.lo, p.step, out->v, p.plan};
    free(sc);
    free(all);
    stmts_put(s, st);
    if (rc != 0)
        series_grid_free(out);
    return rc;
}
