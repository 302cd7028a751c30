/* test_series — the series engine through its public API on a real SQLite
 * file in a temp dir (schema from the migrations): ids, chunk closing,
 * late points and duplicates, flush/query round trips against an in-memory
 * reference, rollups == raw, grouped aggregates, restart, retention, a
 * concurrent reader, and size/speed figures (printed, not asserted).
 * CB_SERIES_BENCH=1 adds the 100,000-series day for the report. */
#include "core/clock.h"
#include "core/log.h"
#include "series/series.h"
#include "test.h"

#include <ftw.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <unistd.h>

#define MIN_MS 60000LL
#define HOUR_MS 3600000LL
#define T0 1795003200000LL /* 2026-11-18T08:00Z, a chunk window boundary (2 h) */

/* ---- fixture ---- */

struct fx {
    char dir[64];
    db *w, *r; /* the writer's and a reader's connection */
    series *s;
};

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static int fx_open_series(struct fx *f)
{
    cb_error e;
    int rc = series_open(f->w, &f->s, &e);
    if (rc != 0)
        fprintf(stderr, "series_open: %s\n", e.message);
    return rc;
}

static int fx_open(struct fx *f)
{
    cb_error e;
    snprintf(f->dir, sizeof f->dir, "/tmp/cb-series-XXXXXX");
    log_set_level(LOG_WARN);
    if (!mkdtemp(f->dir) || db_open(f->dir, &f->w, &e) != 0 || db_open(f->dir, &f->r, &e) != 0)
        return -1;
    return fx_open_series(f);
}

static void fx_close(struct fx *f)
{
    series_close(f->s);
    db_close(f->r);
    db_close(f->w);
    nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* A checkpoint as the writer makes it (series_flush with the next lsn), then
 * a wait for the flusher, so the test can look at the tables. */
static uint64_t flush_lsn;
static int flush(struct fx *f, int64_t now)
{
    cb_error e;
    int rc = series_flush(f->s, ++flush_lsn, now, &e);
    if (rc == 0)
        rc = series_sync(f->s, &e);
    if (rc != 0)
        fprintf(stderr, "flush: %s\n", e.message);
    return rc;
}

static uint32_t sid_of(struct fx *f, uint32_t entity, uint16_t attr)
{
    uint32_t id = UINT32_MAX;
    series_id(f->s, entity, attr, 0, &id, NULL);
    return id;
}

/* Two flushes at now: the first takes the points fed since the last one, the
 * second finds those chunks idle and closes the ones whose window ended. */
static int flush_idle(struct fx *f, int64_t now)
{
    int rc = flush(f, now);
    return rc == 0 ? flush(f, now) : rc;
}

static int64_t count_rows(db *d, const char *sql)
{
    sqlite3_stmt *st;
    int64_t n = -1;
    if (sqlite3_prepare_v2(db_sqlite(d), sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

static int query_raw(struct fx *f, uint32_t id, int64_t from, int64_t to, struct series_points *p)
{
    struct series_range r = {from, to, 0, SERIES_AGG_AVG, SERIES_PLAN_AUTO};
    cb_error e;
    int rc = series_query(f->s, f->r, id, &r, p, &e);
    if (rc != 0)
        fprintf(stderr, "query: %s\n", e.message);
    return rc;
}

/* Hour buckets of series id from the day before T0 over 30 days, by the
 * rollups (the stored chunks' roll, the head's parts and open chunk): the
 * number of buckets, and *total the sum of their values. */
static size_t query_hours(struct fx *f, uint32_t id, enum series_agg agg, double *total)
{
    struct series_range r = {T0 - 24 * HOUR_MS, T0 + 29 * 24 * HOUR_MS, HOUR_MS, agg, SERIES_PLAN_ROLLUP};
    struct series_points p;
    cb_error e;
    *total = 0;
    if (series_query(f->s, f->r, id, &r, &p, &e) != 0) {
        fprintf(stderr, "query: %s\n", e.message);
        return 0;
    }
    for (size_t i = 0; i < p.n; i++)
        *total += p.v[i];
    size_t n = p.n;
    series_points_free(&p);
    return n;
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}
static int64_t rnd_in(int64_t lo, int64_t hi) /* inclusive */
{
    return lo + (int64_t)(rnd() % (uint64_t)(hi - lo + 1));
}

/* ---- the reference: each series' accepted points, sorted ---- */

struct ref {
    size_t n, cap;
    int64_t *t;
    double *v;
};

static void ref_put(struct ref *r, int64_t t, double v)
{
    size_t i = r->n;
    while (i > 0 && r->t[i - 1] > t)
        i--;
    if (i > 0 && r->t[i - 1] == t) {
        r->v[i - 1] = v;
        return;
    }
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 64;
        r->t = realloc(r->t, r->cap * sizeof *r->t);
        r->v = realloc(r->v, r->cap * sizeof *r->v);
    }
    memmove(&r->t[i + 1], &r->t[i], (r->n - i) * sizeof *r->t);
    memmove(&r->v[i + 1], &r->v[i], (r->n - i) * sizeof *r->v);
    r->t[i] = t;
    r->v[i] = v;
    r->n++;
}

static void ref_free(struct ref *r, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(r[i].t), free(r[i].v);
}

struct racc {
    uint64_t count;
    double sum, min, max, last;
};

static void racc_add(struct racc *a, double v)
{
    if (a->count == 0 || v < a->min)
        a->min = v;
    if (a->count == 0 || v > a->max)
        a->max = v;
    a->count++;
    a->sum += v;
    a->last = v;
}

static double racc_value(const struct racc *a, enum series_agg agg)
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

static int close_enough(double a, double b)
{
    if (a == b || (isnan(a) && isnan(b)))
        return 1;
    return fabs(a - b) <= 1e-9 * fmax(1.0, fmax(fabs(a), fabs(b)));
}

/* Checks one query of series id against its reference; returns failures. */
static int check_query(struct fx *f, uint32_t id, const struct ref *ref, const struct series_range *r)
{
    struct series_points p;
    cb_error e;
    int rc = series_query(f->s, f->r, id, r, &p, &e), bad = 0;
    if (rc != 0) {
        fprintf(stderr, "  query failed: %s\n", e.message);
        return 1;
    }
    if (r->step == 0) {
        size_t k = 0;
        for (size_t i = 0; i < ref->n; i++) {
            if (ref->t[i] < r->from || ref->t[i] > r->to)
                continue;
            if (k >= p.n || p.t[k] != ref->t[i] || memcmp(&p.v[k], &ref->v[i], sizeof(double)))
                bad++;
            k++;
        }
        bad += k != p.n;
    } else {
        size_t nb = (size_t)((r->to - r->from) / r->step + 1), k = 0;
        struct racc *a = calloc(nb, sizeof *a);
        for (size_t i = 0; i < ref->n; i++)
            if (ref->t[i] >= r->from && (uint64_t)(ref->t[i] - r->from) / (uint64_t)r->step < nb)
                racc_add(&a[(ref->t[i] - r->from) / r->step], ref->v[i]);
        for (size_t b = 0; b < nb; b++) {
            if (a[b].count == 0)
                continue;
            if (k >= p.n || p.t[k] != r->from + (int64_t)b * r->step ||
                !close_enough(p.v[k], racc_value(&a[b], r->agg)))
                bad++;
            k++;
        }
        bad += k != p.n;
        free(a);
    }
    if (bad)
        fprintf(stderr, "  series %u [%lld, %lld] step %lld agg %s plan %d: %d differences (%zu points)\n", id,
                (long long)r->from, (long long)r->to, (long long)r->step, series_agg_name(r->agg), p.plan, bad,
                p.n);
    series_points_free(&p);
    return bad;
}

/* Appends a random stream to nseries series: 30-90 s cadence with jitter,
 * 5 % late points within the last few minutes, 2 % exact duplicates; the
 * reference records what series_append accepted. Flushes now and then. */
static void random_load(struct fx *f, struct ref *ref, int nseries, int npoints, int64_t *now)
{
    int64_t *last = calloc((size_t)nseries, sizeof *last);
    for (int s = 0; s < nseries; s++)
        last[s] = T0 + rnd_in(0, 600000);
    for (int i = 0; i < npoints * nseries; i++) {
        int s = (int)(rnd() % (uint64_t)nseries);
        int64_t t;
        uint64_t kind = rnd() % 100;
        if (kind < 5)
            t = last[s] - rnd_in(0, 300000);
        else if (kind < 7)
            t = last[s];
        else
            t = last[s] += rnd_in(30000, 90000);
        double v = (double)(int64_t)rnd_in(-5000, 5000) / 10.0;
        int rc = series_append(f->s, (uint32_t)s + 1, 7, t, v);
        CHECK(rc >= 0);
        if (rc == SERIES_APPENDED || rc == SERIES_MERGED)
            ref_put(&ref[s], t, v);
        if (*now < t)
            *now = t;
        if (rnd() % 4000 == 0)
            CHECK_INT(flush(f, *now), 0);
    }
    free(last);
}

static void random_queries(struct fx *f, const struct ref *ref, int nseries, int nqueries, int rollup_steps)
{
    int bad = 0;
    for (int q = 0; q < nqueries; q++) {
        int s = (int)(rnd() % (uint64_t)nseries);
        if (ref[s].n == 0)
            continue;
        int64_t a = ref[s].t[0] - 600000, b = ref[s].t[ref[s].n - 1] + 600000;
        struct series_range r = {rnd_in(a, b), 0, 0, (enum series_agg)(rnd() % 6), SERIES_PLAN_AUTO};
        r.to = rnd_in(r.from, b + 1);
        if (rollup_steps == 1) {
            r.from = (r.from / HOUR_MS) * HOUR_MS;
            r.step = HOUR_MS * rnd_in(1, 6);
        } else if (rollup_steps == 2) {
            r.from = (r.from / MIN_MS) * MIN_MS;
            r.step = MIN_MS * rnd_in(1, 30);
        } else if (q % 3 == 1) {
            r.step = rnd_in(1000, 7200000);
        } else if (q % 3 == 2) {
            r.step = MIN_MS * rnd_in(1, 30);
        }
        if (r.step == 0 && r.to - r.from > 100 * HOUR_MS)
            r.to = r.from + 100 * HOUR_MS;
        if (r.step && (r.to - r.from) / r.step >= SERIES_MAX_POINTS)
            r.step = (r.to - r.from) / 1000 + 1;
        bad += check_query(f, sid_of(f, (uint32_t)s + 1, 7), &ref[s], &r);
    }
    CHECK_INT(bad, 0);
}

/* ---- tests ---- */

TEST(test_ids)
{
    struct fx f;
    CHECK_INT(fx_open(&f), 0);
    uint32_t a, b, c;
    cb_error e;
    CHECK_INT(series_id(f.s, 10, 1, 1, &a, &e), 0);
    CHECK_INT(series_id(f.s, 10, 2, 1, &b, &e), 0);
    CHECK_INT(series_id(f.s, 10, 1, 1, &c, &e), 0);
    CHECK_INT(a, 0);
    CHECK_INT(b, 1);
    CHECK_INT(c, 0);
    CHECK_INT(series_id(f.s, 11, 1, 0, &c, &e), CB_ENOT_FOUND);
    for (uint32_t i = 0; i < 5000; i++) /* grows the hash a few times */
        CHECK_INT(series_id(f.s, 100 + i, (uint16_t)(i % 7), 1, &c, &e), 0);
    CHECK_INT(c, 5001);
    CHECK_INT(flush(&f, T0), 0);
    CHECK_INT(count_rows(f.w, "SELECT count(*) FROM series"), 5002);
    series_close(f.s);
    CHECK_INT(fx_open_series(&f), 0);
    CHECK_INT(series_id(f.s, 100 + 4999, 4999 % 7, 0, &c, &e), 0);
    CHECK_INT(c, 5001);
    CHECK_INT(series_id(f.s, 10, 2, 0, &c, &e), 0);
    CHECK_INT(c, 1);
    CHECK_INT(series_id(f.s, 12, 2, 1, &c, &e), 0);
    CHECK_INT(c, 5002);
    fx_close(&f);
}

TEST(test_close_at_points)
{
    struct fx f;
    CHECK_INT(fx_open(&f), 0);
    for (int i = 0; i < 250; i++) /* 1 s apart: one window */
        CHECK_INT(series_append(f.s, 1, 1, T0 + i * 1000, i * 0.5), SERIES_APPENDED);
    struct series_stats st;
    series_get_stats(f.s, &st);
    CHECK_INT(st.pending_chunks, 2);
    CHECK_INT(st.open_points, 10);
    CHECK_INT(flush(&f, T0 + 250000), 0);
    CHECK_INT(count_rows(f.w, "SELECT count(*) FROM chunk WHERE n = 120"), 2);
    CHECK_INT(count_rows(f.w, "SELECT t_max FROM chunk ORDER BY t_min LIMIT 1"), T0 + 119000);
    CHECK_INT(count_rows(f.w, "SELECT count(*) FROM chunk WHERE roll IS NOT NULL"), 2);
    double total;
    CHECK_INT(query_hours(&f, 0, SERIES_AGG_COUNT, &total), 1);
    CHECK(total == 250);
    struct series_points p;
    CHECK_INT(query_raw(&f, 0, T0, T0 + HOUR_MS, &p), 0);
    CHECK_INT(p.n, 250);
    CHECK_INT(p.t[249], T0 + 249000);
    CHECK(p.v[249] == 124.5);
    series_points_free(&p);
    fx_close(&f);
}

TEST(test_close_at_boundary)
{
    struct fx f;
    CHECK_INT(fx_open(&f), 0);
    int64_t w = T0 - T0 % (2 * HOUR_MS) + 2 * HOUR_MS; /* a window boundary */
    CHECK_INT(series_append(f.s, 1, 1, w - 2000, 1), SERIES_APPENDED);
    CHECK_INT(series_append(f.s, 1, 1, w - 1, 2), SERIES_APPENDED);
    CHECK_INT(series_append(f.s, 1, 1, w, 3), SERIES_APPENDED);
    struct series_stats st;
    series_get_stats(f.s, &st);
    CHECK_INT(st.pending_chunks, 1);
    CHECK_INT(st.open_points, 1);
    /* the open chunk's window is [w, w + 2h): w - 1 is sealed now */
    CHECK_INT(series_append(f.s, 1, 1, w - 1, 9), SERIES_DROPPED);
    CHECK_INT(flush(&f, w), 0);
    CHECK_INT(count_rows(f.w, "SELECT count(*) FROM chunk"), 1);
    /* rollups split at the hour inside the chunk: the stored one's hour, the open one's */
    double total;
    CHECK_INT(query_hours(&f, 0, SERIES_AGG_COUNT, &total), 2);
    CHECK(total == 3);
    fx_close(&f);
}

TEST(test_late_and_duplicates)
{
    struct fx f;
    CHECK_INT(fx_open(&f), 0);
    int64_t t = T0 + 600000;
    CHECK_INT(series_append(f.s, 1, 1, t, 1.0), SERIES_APPENDED);
    CHECK_INT(series_append(f.s, 1, 1, t + 60000, 2.0), SERIES_APPENDED);
    CHECK_INT(series_append(f.s, 1, 1, t + 120000, 3.0), SERIES_APPENDED);
    CHECK_INT(series_append(f.s, 1, 1, t + 30000, 1.5), SERIES_MERGED);   /* late, in the chunk */
    CHECK_INT(series_append(f.s, 1, 1, t - 60000, 0.5), SERIES_MERGED);   /* before t_min, same window */
    CHECK_INT(series_append(f.s, 1, 1, t + 60000, 2.25), SERIES_MERGED);  /* duplicate: last write wins */
    CHECK_INT(series_append(f.s, 1, 1, t + 120000, 3.25), SERIES_MERGED); /* duplicate of the last */
    CHECK_INT(series_append(f.s, 1, 1, T0 - 1, 9.0), SERIES_DROPPED);     /* earlier window */
    CHECK_INT(series_append(f.s, 1, 1, t + 180000, NAN), SERIES_DROPPED);
    struct series_points p;
    CHECK_INT(query_raw(&f, 0, 0, INT64_MAX, &p), 0);
    int64_t et[] = {t - 60000, t, t + 30000, t + 60000, t + 120000};
    double ev[] = {0.5, 1.0, 1.5, 2.25, 3.25};
    CHECK_INT(p.n, 5);
    for (size_t i = 0; i < 5 && i < p.n; i++) {
        CHECK_INT(p.t[i], et[i]);
        CHECK(p.v[i] == ev[i]);
    }
    series_points_free(&p);
    CHECK_INT(flush_idle(&f, t + 120000 + 2 * HOUR_MS + SERIES_IDLE_CLOSE_MS), 0); /* closes it */
    CHECK_INT(series_append(f.s, 1, 1, t + 90000, 7.0), SERIES_DROPPED);   /* sealed now */
    CHECK_INT(series_append(f.s, 1, 1, t + 120000, 7.0), SERIES_DROPPED);
    CHECK_INT(series_append(f.s, 1, 1, t + 120001, 7.0), SERIES_APPENDED);
    double total; /* the stored chunk's hour and the open chunk's (7.0) */
    CHECK_INT(query_hours(&f, 0, SERIES_AGG_COUNT, &total), 1);
    CHECK(total == 6);
    CHECK_INT(query_hours(&f, 0, SERIES_AGG_SUM, &total), 1);
    CHECK(total == 0.5 + 1.0 + 1.5 + 2.25 + 3.25 + 7.0);
    struct series_stats st;
    series_get_stats(f.s, &st);
    CHECK_INT(st.appended, 4);
    CHECK_INT(st.merged, 4);
    CHECK_INT(st.dropped, 4);
    series_close(f.s); /* 7.0 came after the last flush: the WAL would bring it back, not the snapshot */
    CHECK_INT(fx_open_series(&f), 0);
    CHECK_INT(query_hours(&f, 0, SERIES_AGG_LAST, &total), 1);
    CHECK(total == 3.25);
    fx_close(&f);
}

/* series_append_many is series_append under one lock: the same points (late,
 * duplicate, NaN, an earlier window) give the same series and counts. */
TEST(test_append_many_same_as_one)
{
    struct fx f;
    CHECK_INT(fx_open(&f), 0);
    enum { N = 400 };
    struct series_point pts[N];
    uint64_t r = 0x2545F4914F6CDD1DULL;
    for (int i = 0; i < N; i++) {
        r ^= r << 13, r ^= r >> 7, r ^= r << 17;
        int64_t t = T0 + 600000 + (int64_t)i * 15000 - (int64_t)(r % 5 == 0 ? (r >> 8) % 400000 : 0);
        double v = r % 97 == 0 ? NAN : (double)(r >> 20 & 0xffff) / 10;
        pts[i] = (struct series_point){2, 1, t, v};
        series_append(f.s, 1, 1, t, v);
    }
    struct series_stats one;
    series_get_stats(f.s, &one);
    CHECK_INT(series_append_many(f.s, pts, N), 0);
    struct series_stats both;
    series_get_stats(f.s, &both);
    CHECK_INT(both.appended, 2 * one.appended);
    CHECK_INT(both.merged, 2 * one.merged);
    CHECK_INT(both.dropped, 2 * one.dropped);
    CHECK(one.merged > 0 && one.dropped > 0);
    struct series_points a, b;
    CHECK_INT(query_raw(&f, 0, 0, INT64_MAX, &a), 0);
    CHECK_INT(query_raw(&f, 1, 0, INT64_MAX, &b), 0);
    CHECK_INT(a.n, b.n);
    for (size_t i = 0; i < a.n && i < b.n; i++)
        CHECK(a.t[i] == b.t[i] && a.v[i] == b.v[i]);
    series_points_free(&a);
    series_points_free(&b);
    fx_close(&f);
}

TEST(test_round_trip_random)
{
    struct fx f;
    CHECK_INT(fx_open(&f), 0);
    enum { NS = 16 };
    struct ref ref[NS];
    memset(ref, 0, sizeof ref);
    int64_t now = T0;
    random_load(&f, ref, NS, 600, &now);
    random_queries(&f, ref, NS, 300, 0); /* head, pending and stored mixed */
    CHECK_INT(flush(&f, now), 0);
    random_queries(&f, ref, NS, 300, 0);
    CHECK_INT(flush(&f, now + 3 * HOUR_MS), 0); /* everything closed and stored */
    struct series_stats st;
    series_get_stats(f.s, &st);
    CHECK_INT(st.open_points, 0);
    random_queries(&f, ref, NS, 300, 0);
    ref_free(ref, NS);
    fx_close(&f);
}

TEST(test_rollups_equal_raw)
{
    struct fx f;
    CHECK_INT(fx_open(&f), 0);
    enum { NS = 8 };
    struct ref ref[NS];
    memset(ref, 0, sizeof ref);
    int64_t now = T0;
    random_load(&f, ref, NS, 800, &now);
    random_queries(&f, ref, NS, 200, 1); /* rollup plan vs the reference, with a head */
    CHECK_INT(flush(&f, now), 0);
    int bad = 0;
    for (int q = 0; q < 300; q++) {
        uint32_t id = (uint32_t)(rnd() % NS);
        struct series_range r = {T0 + HOUR_MS * rnd_in(-2, 20), 0, HOUR_MS * rnd_in(1, 5),
                                 (enum series_agg)(q % 6), SERIES_PLAN_AUTO};
        r.to = r.from + rnd_in(0, 30 * HOUR_MS);
        struct series_points a, b;
        cb_error e;
        CHECK_INT(series_query(f.s, f.r, id, &r, &a, &e), 0);
        r.plan = SERIES_PLAN_RAW;
        CHECK_INT(series_query(f.s, f.r, id, &r, &b, &e), 0);
        CHECK_INT(a.plan, SERIES_PLAN_ROLLUP);
        CHECK_INT(b.plan, SERIES_PLAN_RAW);
        int same = a.n == b.n;
        for (size_t i = 0; same && i < a.n; i++)
            same = a.t[i] == b.t[i] && close_enough(a.v[i], b.v[i]);
        bad += !same;
        series_points_free(&a);
        series_points_free(&b);
    }
    CHECK_INT(bad, 0);
    random_queries(&f, ref, NS, 200, 1);
    random_queries(&f, ref, NS, 200, 2); /* minute-aligned: the minute plan */
    ref_free(ref, NS);
    fx_close(&f);
}

/* Series 0 reads every 5 s (12 a minute: its chunks keep minute parts),
 * series 1 every minute (none: its points are their own minute rollups).
 * Minute-aligned steps use the minute plan and equal the reference and the
 * raw plan, with the head and after a flush and a restart. */
TEST(test_minute_rollups)
{
    struct fx f;
    CHECK_INT(fx_open(&f), 0);
    struct ref ref[2];
    memset(ref, 0, sizeof ref);
    for (int64_t t = T0 + 2500; t < T0 + 3 * HOUR_MS; t += 5000) {
        double v = (double)(t / 5000 % 37 - 15) / 10;
        CHECK_INT(series_append(f.s, 1, 2, t, v), SERIES_APPENDED);
        ref_put(&ref[0], t, v);
        if (t % MIN_MS == 2500) {
            CHECK_INT(series_append(f.s, 2, 2, t, v * 2), SERIES_APPENDED);
            ref_put(&ref[1], t, v * 2);
        }
    }
    CHECK_INT(series_append(f.s, 1, 2, T0 + 3 * HOUR_MS - 61000, 99.5), SERIES_MERGED); /* late, in the open chunk */
    ref_put(&ref[0], T0 + 3 * HOUR_MS - 61000, 99.5);
    for (int round = 0; round < 3; round++) {
        if (round == 1)
            CHECK_INT(flush(&f, T0 + 5 * HOUR_MS), 0); /* every chunk stored */
        if (round == 2) {
            series_close(f.s);
            CHECK_INT(fx_open_series(&f), 0);
        }
        for (uint32_t id = 0; id < 2; id++)
            for (int agg = 0; agg < 6; agg++) {
                struct series_range r = {T0 + 7 * MIN_MS, T0 + 170 * MIN_MS + 1234, 5 * MIN_MS, (enum series_agg)agg,
                                         SERIES_PLAN_AUTO};
                struct series_points p;
                cb_error e;
                CHECK_INT(series_query(f.s, f.r, id, &r, &p, &e), 0);
                CHECK_INT(p.plan, SERIES_PLAN_ROLLUP_1M);
                series_points_free(&p);
                CHECK_INT(check_query(&f, id, &ref[id], &r), 0);
                r.plan = SERIES_PLAN_RAW;
                CHECK_INT(check_query(&f, id, &ref[id], &r), 0);
                r.step = HOUR_MS; /* from is not a whole hour: still minutes */
                r.plan = SERIES_PLAN_AUTO;
                CHECK_INT(check_query(&f, id, &ref[id], &r), 0);
            }
    }
    /* dense chunks carry minute parts (~12 bytes each), sparse ones only their hours */
    CHECK(count_rows(f.w, "SELECT min(length(roll)) FROM chunk WHERE series = 0") > 80);
    CHECK(count_rows(f.w, "SELECT max(length(roll)) FROM chunk WHERE series = 1") < 40);
    struct series_range bad = {T0 + 1000, T0 + HOUR_MS, MIN_MS, SERIES_AGG_AVG, SERIES_PLAN_ROLLUP_1M};
    struct series_points p;
    cb_error e;
    CHECK_INT(series_query(f.s, f.r, 0, &bad, &p, &e), CB_EINVALID_FIELD);
    ref_free(ref, 2);
    fx_close(&f);
}

/* ns series of npoints random points in ng groups, queried `queries` times
 * (a flush halfway) against the test's own sums: the answers must match. */
static int aggregate_against_ref(struct fx *f, struct ref *ref, int ns, int npoints, int ng, int queries)
{
    int64_t now = T0;
    random_load(f, ref, ns, npoints, &now);
    uint32_t *ids = malloc((size_t)ns * sizeof *ids), *groups = malloc((size_t)ns * sizeof *groups);
    for (int s = 0; s < ns; s++) {
        ids[s] = sid_of(f, (uint32_t)s + 1, 7);
        groups[s] = (uint32_t)s % (uint32_t)ng;
    }
    int bad = 0;
    for (int q = 0; q < queries; q++) {
        if (q == queries / 2)
            CHECK_INT(flush(f, now), 0);
        struct series_range r = {T0 + rnd_in(-HOUR_MS, 5 * HOUR_MS), 0, 0, (enum series_agg)(q % 5),
                                 SERIES_PLAN_AUTO};
        if (q % 3 == 0)
            r.from = (r.from / HOUR_MS) * HOUR_MS, r.step = HOUR_MS;
        else if (q % 3 == 1)
            r.step = 5 * MIN_MS;
        r.to = r.from + rnd_in(0, 12 * HOUR_MS);
        int64_t step = r.step ? r.step : r.to - r.from + 1;
        size_t nb = (size_t)((r.to - r.from) / step + 1);
        struct series_grid g;
        cb_error e;
        CHECK_INT(series_aggregate(f->s, f->r, ids, groups, (size_t)ns, (size_t)ng, &r, &g, &e), 0);
        CHECK_INT(g.nbuckets, nb);
        struct racc *a = calloc((size_t)ng * nb, sizeof *a);
        for (int s = 0; s < ns; s++)
            for (size_t i = 0; i < ref[s].n; i++) {
                int64_t t = ref[s].t[i];
                if (t >= r.from && (size_t)((t - r.from) / step) < nb)
                    racc_add(&a[groups[s] * nb + (size_t)((t - r.from) / step)], ref[s].v[i]);
            }
        for (size_t k = 0; k < (size_t)ng * nb && g.v; k++) {
            double want = a[k].count ? racc_value(&a[k], r.agg) : r.agg == SERIES_AGG_COUNT ? 0.0 : NAN;
            bad += !close_enough(g.v[k], want);
        }
        free(a);
        series_grid_free(&g);
    }
    free(ids);
    free(groups);
    return bad;
}

/* Over 1,024 series an aggregate is split between two threads (two
 * connections, one snapshot): the same answers, and the split counted. */
TEST(test_aggregate_split)
{
    struct fx f;
    CHECK_INT(fx_open(&f), 0);
    enum { NS = 1500 };
    struct ref *ref = calloc(NS, sizeof *ref);
    CHECK_INT(aggregate_against_ref(&f, ref, NS, 30, 4, 12), 0);
    struct series_stats st;
    series_get_stats(f.s, &st);
    CHECK_INT(st.split_aggregates, 12);
    ref_free(ref, NS);
    free(ref);
    fx_close(&f);
}

TEST(test_aggregate)
{
    struct fx f;
    CHECK_INT(fx_open(&f), 0);
    enum { NS = 12, NG = 3 };
    struct ref ref[NS];
    memset(ref, 0, sizeof ref);
    CHECK_INT(aggregate_against_ref(&f, ref, NS, 300, NG, 60), 0);
    struct series_stats st;
    series_get_stats(f.s, &st);
    CHECK_INT(st.split_aggregates, 0); /* too few series to split */
    uint32_t ids[NS], groups[NS];
    for (int s = 0; s < NS; s++) {
        ids[s] = sid_of(&f, (uint32_t)s + 1, 7);
        groups[s] = (uint32_t)s % NG;
    }
    struct series_range last = {T0, T0 + HOUR_MS, HOUR_MS, SERIES_AGG_LAST, SERIES_PLAN_AUTO};
    struct series_grid g;
    cb_error e;
    CHECK_INT(series_aggregate(f.s, f.r, ids, groups, NS, NG, &last, &g, &e), CB_EINVALID_FIELD);
    CHECK_STR(e.field, "agg");
    groups[0] = NG;
    last.agg = SERIES_AGG_SUM;
    CHECK_INT(series_aggregate(f.s, f.r, ids, groups, NS, NG, &last, &g, &e), CB_EINVALID_FIELD);
    groups[0] = 0;
    ids[0] = 99999;
    CHECK_INT(series_aggregate(f.s, f.r, ids, groups, NS, NG, &last, &g, &e), CB_ENOT_FOUND);
    ref_free(ref, NS);
    fx_close(&f);
}

TEST(test_errors)
{
    struct fx f;
    CHECK_INT(fx_open(&f), 0);
    for (int i = 0; i < 12000; i++)
        series_append(f.s, 1, 1, T0 + i * 1000LL, i);
    struct series_points p;
    cb_error e;
    struct series_range r = {T0 + 10, T0, 0, SERIES_AGG_AVG, SERIES_PLAN_AUTO};
    CHECK_INT(series_query(f.s, f.r, 0, &r, &p, &e), CB_EINVALID_FIELD);
    CHECK_STR(e.field, "from");
    r = (struct series_range){T0, T0 + 30 * 24 * HOUR_MS, 60000, SERIES_AGG_AVG, SERIES_PLAN_AUTO};
    CHECK_INT(series_query(f.s, f.r, 0, &r, &p, &e), CB_EINVALID_FIELD);
    CHECK_STR(e.field, "step");
    r.step = -5;
    CHECK_INT(series_query(f.s, f.r, 0, &r, &p, &e), CB_EINVALID_FIELD);
    r.step = HOUR_MS;
    CHECK_INT(series_query(f.s, f.r, 7, &r, &p, &e), CB_ENOT_FOUND);
    r.step = 0;
    CHECK_INT(series_query(f.s, f.r, 0, &r, &p, &e), CB_ETOO_LARGE); /* 12,000 raw points */
    CHECK(p.n == 0 && p.t == NULL);
    r = (struct series_range){T0 + 1, T0 + HOUR_MS, HOUR_MS, SERIES_AGG_AVG, SERIES_PLAN_ROLLUP};
    CHECK_INT(series_query(f.s, f.r, 0, &r, &p, &e), CB_EINVALID_FIELD);
    enum series_agg a;
    CHECK_INT(series_agg_parse("count", &a), 0);
    CHECK_INT(a, SERIES_AGG_COUNT);
    CHECK_INT(series_agg_parse("median", &a), CB_EINVALID_FIELD);
    r = (struct series_range){INT64_MIN, INT64_MAX, INT64_MAX, SERIES_AGG_COUNT, SERIES_PLAN_AUTO};
    CHECK_INT(series_query(f.s, f.r, 0, &r, &p, &e), 0); /* extreme ranges do not overflow */
    CHECK_INT(p.n, 1);
    CHECK(p.n == 1 && p.v[0] == 12000);
    series_points_free(&p);
    fx_close(&f);
}

TEST(test_restart)
{
    struct fx f;
    CHECK_INT(fx_open(&f), 0);
    /* lsn i carries point i of series (1, 1) at one a minute */
    CHECK_INT(series_replay_lsn(f.s), 1); /* nothing stored yet: the whole WAL */
    for (int i = 0; i < 300; i++)
        series_append(f.s, 1, 1, T0 + i * MIN_MS, i);
    CHECK_INT(flush(&f, T0 + 300 * MIN_MS), 0);
    uint64_t replay = flush_lsn + 1; /* points 240.. are open, and snapshotted */
    CHECK_INT(series_replay_lsn(f.s), replay);
    CHECK_INT(count_rows(f.w, "SELECT count(*) FROM open_chunk"), 1);
    series_close(f.s);      /* "crash": the head is gone */
    CHECK_INT(fx_open_series(&f), 0);
    CHECK_INT(series_replay_lsn(f.s), replay);
    struct series_points p;
    CHECK_INT(query_raw(&f, 0, 0, INT64_MAX, &p), 0);
    CHECK_INT(p.n, 300); /* the open chunk is back without any replay */
    series_points_free(&p);
    struct series_stats st;
    series_get_stats(f.s, &st);
    CHECK_INT(st.open_points, 60);
    /* the lead replays from an older checkpoint: overlapping points */
    int dropped = 0;
    for (int i = 200; i < 360; i++)
        dropped += series_append(f.s, 1, 1, T0 + i * MIN_MS, i) == SERIES_DROPPED;
    CHECK_INT(dropped, 40); /* sealed; 240..299 are duplicates of the open chunk: merged, same values */
    CHECK_INT(flush_idle(&f, T0 + 360 * MIN_MS + 3 * HOUR_MS), 0);
    CHECK_INT(query_raw(&f, 0, 0, INT64_MAX, &p), 0);
    CHECK_INT(p.n, 360);
    for (size_t i = 0; i < p.n; i++)
        if (p.t[i] != T0 + (int64_t)i * MIN_MS || p.v[i] != (double)i) {
            CHECK(0);
            break;
        }
    series_points_free(&p);
    CHECK_INT(count_rows(f.w, "SELECT sum(n) FROM chunk"), 360);
    double total;
    CHECK_INT(query_hours(&f, 0, SERIES_AGG_COUNT, &total), 6);
    CHECK(total == 360);
    CHECK_INT(count_rows(f.w, "SELECT count(*) FROM open_chunk"), 0);
    CHECK_INT(series_replay_lsn(f.s), flush_lsn + 1);
    fx_close(&f);
}

/* A store written by format 1 (replay lsn "0": nothing open) whose WAL was
 * trimmed to the state's checkpoint: replay starts right after that. */
TEST(test_replay_lsn_of_a_format_1_store)
{
    struct fx f;
    CHECK_INT(fx_open(&f), 0);
    series_close(f.s);
    f.s = NULL;
    cb_error e;
    CHECK_INT(db_exec(f.w, "INSERT OR REPLACE INTO meta (key, value) VALUES ('series_replay_lsn', '0'), "
                           "('checkpoint_lsn', '4080')", &e), 0);
    CHECK_INT(fx_open_series(&f), 0);
    CHECK_INT(series_replay_lsn(f.s), 4081);
    CHECK_INT(series_append(f.s, 1, 1, T0, 1.0), SERIES_APPENDED);
    CHECK_INT(series_flush(f.s, 5000, T0 + 60000, &e), 0);
    CHECK_INT(series_sync(f.s, &e), 0);
    CHECK_INT(series_replay_lsn(f.s), 5001); /* the batch sealed at 5000 is stored */
    fx_close(&f);
}

/* A format-1 store after migration 7: chunk rows without roll, and rollup_1h
 * rows for hours whose chunks retention deleted (hours 0 and 1 wholly, hour 2
 * in part). The first open keeps those hours' rollups exactly and drops
 * rollup_1h; raw queries find no points there; a second open has nothing to
 * do. */
static const enum series_agg hour_aggs[] = {SERIES_AGG_COUNT, SERIES_AGG_SUM, SERIES_AGG_MIN, SERIES_AGG_MAX,
                                            SERIES_AGG_LAST};
#define UPGRADE_HOURS 6

static int hours_of(struct fx *f, uint32_t id, double v[][UPGRADE_HOURS])
{
    for (size_t a = 0; a < sizeof hour_aggs / sizeof hour_aggs[0]; a++) {
        struct series_range r = {T0, T0 + UPGRADE_HOURS * HOUR_MS - 1, HOUR_MS, hour_aggs[a], SERIES_PLAN_AUTO};
        struct series_points p;
        cb_error e;
        if (series_query(f->s, f->r, id, &r, &p, &e) != 0) {
            fprintf(stderr, "query: %s\n", e.message);
            return -1;
        }
        int ok = p.n == UPGRADE_HOURS && p.plan == SERIES_PLAN_ROLLUP;
        for (size_t i = 0; ok && i < p.n; i++)
            v[a][i] = p.v[i];
        series_points_free(&p);
        if (!ok)
            return -1;
    }
    return 0;
}

TEST(test_upgrade_keeps_format_1_rollups)
{
    struct fx f;
    CHECK_INT(fx_open(&f), 0);
    /* one point every 7 s for 6 hours: 120-point chunks of 14 min, not on hour boundaries */
    for (int64_t t = T0; t < T0 + UPGRADE_HOURS * HOUR_MS; t += 7000)
        series_append(f.s, 1, 1, t, 20.0 + (double)(t / 7000 % 37) * 0.1);
    CHECK_INT(flush_idle(&f, T0 + 9 * HOUR_MS), 0);
    uint32_t id = sid_of(&f, 1, 1);
    double want[5][UPGRADE_HOURS], got[5][UPGRADE_HOURS];
    CHECK_INT(hours_of(&f, id, want), 0);
    series_close(f.s);
    f.s = NULL;

    /* back to format 1 as migration 7 leaves it, retention having run */
    cb_error e;
    CHECK_INT(db_exec(f.w, "UPDATE chunk SET roll = NULL;"
                           "CREATE TABLE rollup_1h (series INTEGER NOT NULL, bucket INTEGER NOT NULL,"
                           "  count INTEGER NOT NULL, sum REAL, min REAL, max REAL, last REAL,"
                           "  PRIMARY KEY (series, bucket)) STRICT, WITHOUT ROWID;", &e), 0);
    sqlite3_stmt *ins;
    CHECK_INT(sqlite3_prepare_v2(db_sqlite(f.w), "INSERT INTO rollup_1h VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)", -1,
                                 &ins, NULL), SQLITE_OK);
    for (int h = 0; h < UPGRADE_HOURS; h++) {
        sqlite3_bind_int64(ins, 1, id);
        sqlite3_bind_int64(ins, 2, T0 + h * HOUR_MS);
        sqlite3_bind_int64(ins, 3, (sqlite3_int64)want[0][h]);
        for (int a = 1; a < 5; a++)
            sqlite3_bind_double(ins, 3 + a, want[a][h]);
        CHECK_INT(sqlite3_step(ins), SQLITE_DONE);
        sqlite3_reset(ins);
    }
    sqlite3_finalize(ins);
    char sql[160];
    snprintf(sql, sizeof sql, "DELETE FROM chunk WHERE t_max < %lld", (long long)(T0 + 5 * HOUR_MS / 2));
    CHECK_INT(db_exec(f.w, sql, &e), 0);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM chunk WHERE t_min < %lld", (long long)(T0 + 2 * HOUR_MS));
    CHECK_INT(count_rows(f.w, sql), 0);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM chunk WHERE t_min < %lld", (long long)(T0 + 3 * HOUR_MS));
    CHECK(count_rows(f.w, sql) > 0); /* hour 2 is partly in chunks still */

    CHECK_INT(fx_open_series(&f), 0);
    CHECK_INT(count_rows(f.w, "SELECT count(*) FROM sqlite_master WHERE name = 'rollup_1h'"), 0);
    CHECK_INT(count_rows(f.w, "SELECT count(*) FROM chunk WHERE roll IS NULL"), 0);
    CHECK_INT(count_rows(f.w, "SELECT count(*) FROM chunk WHERE length(blob) = 0"), 3);
    CHECK_INT(hours_of(&f, id, got), 0);
    for (int a = 0; a < 5; a++)
        for (int h = 0; h < UPGRADE_HOURS; h++)
            if (got[a][h] != want[a][h]) {
                fprintf(stderr, "  %s of hour %d: %.17g, want %.17g\n", series_agg_name(hour_aggs[a]), h,
                        got[a][h], want[a][h]);
                CHECK(got[a][h] == want[a][h]);
            }
    struct series_points p;
    CHECK_INT(query_raw(&f, id, T0, T0 + 2 * HOUR_MS - 1, &p), 0);
    CHECK_INT(p.n, 0);
    series_points_free(&p);
    CHECK_INT(query_raw(&f, id, T0 + 2 * HOUR_MS, T0 + 3 * HOUR_MS - 1, &p), 0);
    CHECK(p.n > 0 && p.n < (size_t)want[0][2]);
    series_points_free(&p);

    /* a second open: nothing left to upgrade, the same answers */
    int64_t rows = count_rows(f.w, "SELECT count(*) FROM chunk");
    series_close(f.s);
    CHECK_INT(fx_open_series(&f), 0);
    CHECK_INT(count_rows(f.w, "SELECT count(*) FROM chunk"), rows);
    CHECK_INT(hours_of(&f, id, got), 0);
    for (int a = 0; a < 5; a++)
        for (int h = 0; h < UPGRADE_HOURS; h++)
            CHECK(got[a][h] == want[a][h]);
    fx_close(&f);
}

TEST(test_idle_close)
{
    struct fx f;
    CHECK_INT(fx_open(&f), 0);
    series_append(f.s, 1, 1, T0, 1);
    series_append(f.s, 2, 1, T0 + 3 * HOUR_MS, 2);
    int64_t end = T0 - T0 % (2 * HOUR_MS) + 2 * HOUR_MS;
    CHECK_INT(flush(&f, end + SERIES_IDLE_CLOSE_MS - 1), 0);
    CHECK_INT(count_rows(f.w, "SELECT count(*) FROM chunk"), 0);
    CHECK_INT(count_rows(f.w, "SELECT count(*) FROM open_chunk"), 2);
    CHECK_INT(flush(&f, end + SERIES_IDLE_CLOSE_MS), 0);
    CHECK_INT(count_rows(f.w, "SELECT count(*) FROM chunk"), 1);
    CHECK_INT(count_rows(f.w, "SELECT count(*) FROM open_chunk"), 1); /* the closed one's snapshot is gone */
    struct series_stats st;
    series_get_stats(f.s, &st);
    CHECK_INT(st.open_points, 1);
    CHECK_INT(st.flushed_chunks, 1);
    fx_close(&f);
}

/* A backfill: points of a window long past arrive between flushes. The chunk
 * stays open while it is fed, so it closes whole (full, or at its window's
 * end), and closes at the first flush that finds it idle. */
TEST(test_a_fed_chunk_stays_open_past_its_window)
{
    struct fx f;
    CHECK_INT(fx_open(&f), 0);
    int64_t start = T0 - T0 % (2 * HOUR_MS), now = start + 30 * 24 * HOUR_MS;
    for (int i = 0; i < 100; i++) {
        CHECK_INT(series_append(f.s, 1, 1, start + i * 60000, i), SERIES_APPENDED);
        if (i % 10 == 9)
            CHECK_INT(flush(&f, now), 0);
    }
    CHECK_INT(count_rows(f.w, "SELECT count(*) FROM chunk"), 0);
    CHECK_INT(flush(&f, now), 0);
    CHECK_INT(count_rows(f.w, "SELECT count(*) FROM chunk"), 1);
    CHECK_INT(count_rows(f.w, "SELECT n FROM chunk"), 100);
    CHECK_INT(count_rows(f.w, "SELECT count(*) FROM open_chunk"), 0);
    fx_close(&f);
}

static void keep_rule(void *arg, uint32_t entity, uint16_t attr, struct series_keep *k)
{
    (void)arg, (void)attr;
    if (entity % 2) { /* odd entities: 2 days raw, 10 days rollups; even: forever */
        k->raw_ms = 48 * HOUR_MS;
        k->rollup_ms = 240 * HOUR_MS;
    }
}

static void keep_bad(void *arg, uint32_t entity, uint16_t attr, struct series_keep *k)
{
    (void)arg, (void)entity, (void)attr;
    k->raw_ms = HOUR_MS;
}

TEST(test_retention)
{
    struct fx f;
    CHECK_INT(fx_open(&f), 0);
    /* 4 series, one point every 10 min for 12 days: 24 chunks/day each */
    for (int64_t t = T0; t < T0 + 12 * 24 * HOUR_MS; t += 10 * MIN_MS)
        for (uint32_t e = 1; e <= 4; e++)
            series_append(f.s, e, 1, t, (double)(t / MIN_MS % 97));
    int64_t now = T0 + 12 * 24 * HOUR_MS;
    CHECK_INT(flush_idle(&f, now + 3 * HOUR_MS), 0);
    int64_t chunks = count_rows(f.w, "SELECT count(*) FROM chunk");
    CHECK_INT(chunks, 4 * 12 * 12);
    uint64_t deleted, total = 0;
    int wrapped = 0, calls = 0;
    cb_error e;
    while (!wrapped && calls < 100) {
        CHECK_INT(series_retention(f.s, f.w, now, keep_rule, NULL, &deleted, &wrapped, &e), 0);
        CHECK(deleted <= SERIES_RETENTION_ROWS);
        total += deleted;
        calls++;
    }
    /* odd entities keep raw since now - 2 days (chunks end inside it) and the rows of 10 days,
     * with their raw points emptied, for the rollups */
    CHECK_INT(count_rows(f.w, "SELECT count(*) FROM chunk WHERE series IN (0, 2) AND length(blob) > 0"), 2 * 2 * 12);
    CHECK_INT(count_rows(f.w, "SELECT count(*) FROM chunk WHERE series IN (0, 2)"), 2 * 10 * 12);
    CHECK_INT(count_rows(f.w, "SELECT count(*) FROM chunk WHERE series IN (1, 3) AND length(blob) > 0"), 2 * 12 * 12);
    CHECK_INT((int64_t)total, chunks - count_rows(f.w, "SELECT count(*) FROM chunk") + 2 * 8 * 12);
    CHECK_INT(count_rows(f.w, "SELECT min(t_max) FROM chunk WHERE series = 0 AND length(blob) > 0") >=
                  now - 48 * HOUR_MS, 1);
    /* a second pass finds nothing more to do */
    wrapped = 0;
    while (!wrapped) {
        CHECK_INT(series_retention(f.s, f.w, now, keep_rule, NULL, &deleted, &wrapped, &e), 0);
        CHECK_INT(deleted, 0);
    }
    CHECK_INT(series_retention(f.s, f.w, now, keep_bad, NULL, &deleted, &wrapped, &e), CB_EINVALID_FIELD);
    /* a query over the deleted part of the raw range falls to rollups still there */
    struct series_range r = {T0 + 5 * 24 * HOUR_MS, T0 + 6 * 24 * HOUR_MS - 1, HOUR_MS, SERIES_AGG_COUNT,
                             SERIES_PLAN_AUTO};
    struct series_points p;
    CHECK_INT(series_query(f.s, f.r, 0, &r, &p, &e), 0);
    CHECK_INT(p.n, 24);
    CHECK(p.n == 24 && p.v[0] == 6);
    series_points_free(&p);
    fx_close(&f);
}

/* Under valgrind (scripts/run-unit.sh sets VALGRIND=1) the heavy tests run
 * smaller: valgrind runs one thread at a time, ~50x slower. */
static int under_valgrind(void)
{
    const char *p = getenv("LD_PRELOAD");
    return getenv("VALGRIND") || (p && strstr(p, "valgrind"));
}

/* A reader sums counts over everything while the writer appends and flushes:
 * each answer lies between what was appended before it and what had begun to
 * be appended when it ended (a point is visible from inside series_append on,
 * before the writer can say it is done). */
struct race {
    struct fx *f;
    atomic_int done;
    atomic_llong appended, begun;
    int bad, queries;
};

static void *reader(void *arg)
{
    struct race *r = arg;
    while (!atomic_load(&r->done)) {
        long long before = atomic_load(&r->appended);
        struct series_range q = {0, INT64_MAX / 2, INT64_MAX / 4, SERIES_AGG_COUNT, SERIES_PLAN_RAW};
        struct series_points p;
        if (series_query(r->f->s, r->f->r, 0, &q, &p, NULL) != 0) {
            r->bad++;
            continue;
        }
        double n = p.n ? p.v[0] : 0;
        long long after = atomic_load(&r->begun);
        if (n < (double)before || n > (double)after)
            r->bad++;
        r->queries++;
        series_points_free(&p);
    }
    return NULL;
}

TEST(test_concurrent_reader)
{
    struct fx f;
    CHECK_INT(fx_open(&f), 0);
    series_append(f.s, 1, 1, T0, 0);
    struct race r = {&f, 0, 1, 1, 0, 0};
    pthread_t th;
    pthread_create(&th, NULL, reader, &r);
    int points = under_valgrind() ? 1000 : 6000;
    for (int i = 1; i < points; i++) {
        atomic_store(&r.begun, i + 1);
        series_append(f.s, 1, 1, T0 + i * 20000LL, i);
        atomic_store(&r.appended, i + 1);
        if (i % 250 == 0) {
            CHECK_INT(flush(&f, T0 + i * 20000LL), 0);
            usleep(2000); /* let the reader run on a small machine */
        }
    }
    atomic_store(&r.done, 1);
    pthread_join(th, NULL);
    CHECK_INT(r.bad, 0);
    printf("  concurrent reader: %d queries\n", r.queries);
    fx_close(&f);
}

static int64_t dir_bytes(const char *dir)
{
    char path[128];
    int64_t total = 0;
    const char *names[] = {"citybrain.db", "citybrain.db-wal"};
    for (int i = 0; i < 2; i++) {
        struct stat sb;
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (stat(path, &sb) == 0)
            total += sb.st_size;
    }
    return total;
}

/* Realistic noise: a slow daily swing plus a 1-decimal random walk. */
static double sensor(uint32_t s, int64_t i, double *walk)
{
    *walk += (double)((int64_t)(rnd() % 7) - 3) / 10.0;
    return round((20.0 + 5.0 * sin((double)i / 229.0 + s) + *walk) * 10.0) / 10.0;
}

/* Loads nseries x npoints at one a minute, flushing every `every` minutes. */
static void load_city(struct fx *f, uint32_t nseries, int npoints, int every, double *append_s, double *flush_s,
                      double *flush_max_s)
{
    double *walk = calloc(nseries, sizeof *walk);
    *append_s = *flush_s = *flush_max_s = 0;
    for (int i = 0; i < npoints; i++) {
        double t0 = clock_mono_s();
        for (uint32_t s = 0; s < nseries; s++)
            series_append(f->s, s + 1, 3, T0 + i * MIN_MS + (int64_t)(s % 60) * 1000, sensor(s, i, &walk[s]));
        double t1 = clock_mono_s();
        *append_s += t1 - t0;
        if ((i + 1) % every == 0 || i + 1 == npoints) {
            CHECK_INT(flush(f, T0 + (i + 1) * MIN_MS + (i + 1 == npoints ? 3 * HOUR_MS : 0)), 0);
            double d = clock_mono_s() - t1;
            *flush_s += d;
            *flush_max_s = d > *flush_max_s ? d : *flush_max_s;
        }
    }
    free(walk);
}

TEST(test_scale)
{
    struct fx f;
    CHECK_INT(fx_open(&f), 0);
    uint32_t ns = under_valgrind() ? 1000 : 10000;
    double app, fl, flmax;
    load_city(&f, ns, 200, 200, &app, &fl, &flmax);
    /* the head after 200 points: reopen and fill 100 points to measure it mid-chunk */
    series_close(f.s);
    CHECK_INT(fx_open_series(&f), 0);
    double *walk = calloc(ns, sizeof *walk);
    for (int i = 0; i < 100; i++)
        for (uint32_t s = 0; s < ns; s++)
            series_append(f.s, s + 1, 3, T0 + (360 + i) * MIN_MS, sensor(s, i, &walk[s]));
    free(walk);
    struct series_stats st;
    series_get_stats(f.s, &st);
    db_exec(f.w, "PRAGMA wal_checkpoint(TRUNCATE)", NULL); /* the data, not SQLite's reusable WAL */
    int64_t bytes = dir_bytes(f.dir);
    printf("  scale: %u series x 200 points: append %.0f ns/point, flush %.2f s; head with 100 open points "
           "a series: %.0f bytes/series; disk %.2f bytes/point\n",
           ns, app * 1e9 / (ns * 200.0), fl, (double)st.head_bytes / ns, (double)bytes / (ns * 200.0));
    CHECK(st.open_points == (uint64_t)ns * 100);
    fx_close(&f);
}

static double time_query(struct fx *f, uint32_t nseries, const struct series_range *r, int reps, size_t *points)
{
    double t0 = clock_mono_s();
    for (int i = 0; i < reps; i++) {
        struct series_points p;
        cb_error e;
        if (series_query(f->s, f->r, (uint32_t)(rnd() % nseries), r, &p, &e) != 0)
            fprintf(stderr, "query: %s\n", e.message);
        *points = p.n;
        series_points_free(&p);
    }
    return (clock_mono_s() - t0) / reps;
}

/* CB_SERIES_BENCH=1: the figures for the report (minutes of run time). */
TEST(test_bench_city_day)
{
    if (!getenv("CB_SERIES_BENCH"))
        return;
    struct fx f;
    CHECK_INT(fx_open(&f), 0);
    uint32_t ns = 100000;
    double app, fl, flmax;
    load_city(&f, ns, 1440, 60, &app, &fl, &flmax);
    db_exec(f.w, "PRAGMA wal_checkpoint(TRUNCATE)", NULL);
    int64_t bytes = dir_bytes(f.dir);
    int64_t blob = count_rows(f.w, "SELECT sum(length(blob)) FROM chunk");
    printf("  city day: %u series x 1440: append %.0f ns/point; flush every hour %.3f s avg, %.3f s max; "
           "disk %.3f bytes/reading (blobs alone %.3f); chunks %lld\n",
           ns, app * 1e9 / (ns * 1440.0), fl / 24, flmax, (double)bytes / (ns * 1440.0),
           (double)blob / (ns * 1440.0), (long long)count_rows(f.w, "SELECT count(*) FROM chunk"));
    size_t n;
    struct series_range r24 = {T0, T0 + 24 * HOUR_MS - 1, 0, SERIES_AGG_AVG, SERIES_PLAN_AUTO};
    double q = time_query(&f, ns, &r24, 2000, &n);
    printf("  raw 24 h of one series: %.1f us (%zu points)\n", q * 1e6, n);
    struct series_range r5 = {T0, T0 + 24 * HOUR_MS - 1, 5 * MIN_MS, SERIES_AGG_AVG, SERIES_PLAN_AUTO};
    uint32_t *ids = malloc(10000 * sizeof *ids), *groups = calloc(10000, sizeof *groups);
    for (uint32_t i = 0; i < 10000; i++)
        ids[i] = i * 10;
    struct series_grid g;
    double t0 = clock_mono_s();
    CHECK_INT(series_aggregate(f.s, f.r, ids, groups, 10000, 1, &r5, &g, NULL), 0);
    printf("  aggregate of 10,000 series over 24 h at 5 min: %.3f s\n", clock_mono_s() - t0);
    series_grid_free(&g);
    free(ids);
    free(groups);
    fx_close(&f);

    /* 30 days of 200 series for the month query */
    CHECK_INT(fx_open(&f), 0);
    load_city(&f, 200, 30 * 1440, 60, &app, &fl, &flmax);
    struct series_range m = {T0, T0 + 30 * 24 * HOUR_MS - 1, HOUR_MS, SERIES_AGG_AVG, SERIES_PLAN_AUTO};
    q = time_query(&f, 200, &m, 2000, &n);
    printf("  30 days at 1 h of one series (rollups): %.1f us (%zu buckets)\n", q * 1e6, n);
    m.plan = SERIES_PLAN_RAW;
    q = time_query(&f, 200, &m, 200, &n);
    printf("  the same from raw: %.1f us\n", q * 1e6);
    fx_close(&f);
}

TEST_MAIN(test_ids, test_close_at_points, test_close_at_boundary, test_late_and_duplicates, test_append_many_same_as_one,
          test_round_trip_random,
          test_rollups_equal_raw, test_minute_rollups, test_aggregate, test_aggregate_split, test_errors, test_restart,
          test_replay_lsn_of_a_format_1_store, test_upgrade_keeps_format_1_rollups, test_idle_close,
          test_a_fed_chunk_stays_open_past_its_window, test_retention,
          test_concurrent_reader, test_scale,
          test_bench_city_day)
