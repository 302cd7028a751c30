/* series — ids, the head, flush and retention of the time-series engine; the
 * behaviour and costs are in series.h, queries in series_query.c. Everything
 * here that changes the head runs on the writer thread and holds the mutex
 * only while it changes memory, never while it waits for SQLite. */
#include "series_int.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char series_schema_sql[] =
    "CREATE TABLE series ("
    "  id INTEGER PRIMARY KEY, entity INTEGER NOT NULL, attr INTEGER NOT NULL,"
    "  UNIQUE (entity, attr)"
    ") STRICT;"
    "CREATE TABLE chunk ("
    "  series INTEGER NOT NULL, t_min INTEGER NOT NULL, t_max INTEGER NOT NULL,"
    "  n INTEGER NOT NULL, min REAL, max REAL, sum REAL, blob BLOB NOT NULL,"
    "  PRIMARY KEY (series, t_min)"
    ") STRICT, WITHOUT ROWID;"
    "CREATE TABLE rollup_1h ("
    "  series INTEGER NOT NULL, bucket INTEGER NOT NULL, count INTEGER NOT NULL,"
    "  sum REAL, min REAL, max REAL, last REAL,"
    "  PRIMARY KEY (series, bucket)"
    ") STRICT, WITHOUT ROWID;";

int64_t series__floor(int64_t t, int64_t unit)
{
    int64_t q = t / unit;
    if (t % unit < 0)
        q--;
    return q * unit;
}

uint32_t series__rollups(const int64_t *t, const double *v, size_t n, struct rollup *out, uint32_t max)
{
    uint32_t k = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t b = series__floor(t[i], SERIES_ROLLUP_MS);
        if (k == 0 || out[k - 1].bucket != b) {
            assert(k < max);
            out[k++] = (struct rollup){b, 0, 0.0, v[i], v[i], v[i]};
        }
        struct rollup *r = &out[k - 1];
        r->count++;
        r->sum += v[i];
        r->min = v[i] < r->min ? v[i] : r->min;
        r->max = v[i] > r->max ? v[i] : r->max;
        r->last = v[i];
    }
    return k;
}

/* ---- ids ---- */

static uint32_t hash_key(uint32_t entity, uint16_t attr, uint32_t mask)
{
    uint64_t k = ((uint64_t)entity << 16 | attr) * UINT64_C(0x9E3779B97F4A7C15);
    return (uint32_t)(k >> 32) & mask;
}

/* The slot holding (entity, attr), or the empty slot where it would go. */
static uint32_t hash_find(const series *s, uint32_t entity, uint16_t attr)
{
    uint32_t i = hash_key(entity, attr, s->mask);
    for (;;) {
        uint32_t id1 = s->slots[i];
        if (id1 == 0 || (s->heads[id1 - 1].entity == entity && s->heads[id1 - 1].attr == attr))
            return i;
        i = (i + 1) & s->mask;
    }
}

static int hash_grow(series *s)
{
    uint32_t cap = s->slots ? (s->mask + 1) * 2 : 1024;
    uint32_t *old = s->slots, oldcap = s->slots ? s->mask + 1 : 0;
    uint32_t *slots = calloc(cap, sizeof *slots);
    if (!slots)
        return CB_ENOMEM;
    s->slots = slots;
    s->mask = cap - 1;
    for (uint32_t i = 0; i < oldcap; i++)
        if (old[i])
            s->slots[hash_find(s, s->heads[old[i] - 1].entity, s->heads[old[i] - 1].attr)] = old[i];
    free(old);
    return 0;
}

/* Mutex held. Adds a head for (entity, attr) at slot. */
static int add_series(series *s, uint32_t entity, uint16_t attr, uint32_t *id)
{
    if (s->n == UINT32_MAX - 1)
        return CB_ENOMEM;
    if (s->n == s->cap) {
        uint32_t cap = s->cap ? s->cap * 2 : 256;
        struct head *h = realloc(s->heads, (size_t)cap * sizeof *h);
        if (!h)
            return CB_ENOMEM;
        s->heads = h;
        s->cap = cap;
    }
    if (!s->slots || (uint64_t)(s->n + 1) * 2 > (uint64_t)s->mask + 1) {
        int rc = hash_grow(s);
        if (rc != 0)
            return rc;
    }
    struct head *h = &s->heads[s->n];
    memset(h, 0, sizeof *h);
    h->entity = entity;
    h->attr = attr;
    h->pend_first = h->pend_last = SERIES_NO_PENDING;
    h->sealed = INT64_MIN;
    codec_appender_init(&h->app);
    s->slots[hash_find(s, entity, attr)] = s->n + 1;
    *id = s->n++;
    return 0;
}

int series_id(series *s, uint32_t entity, uint16_t attr, int create, uint32_t *id, cb_error *err)
{
    pthread_mutex_lock(&s->lock);
    int rc = 0;
    uint32_t slot = s->slots ? hash_find(s, entity, attr) : 0;
    if (s->slots && s->slots[slot])
        *id = s->slots[slot] - 1;
    else if (!create)
        rc = cb_error_set(err, CB_ENOT_FOUND, "series", "no series for entity %u attribute %u", entity, attr);
    else if ((rc = add_series(s, entity, attr, id)) != 0)
        cb_error_set(err, rc, NULL, "out of memory adding a series");
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/* ---- open / close ---- */

static int load(series *s, db *d, cb_error *err)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db_sqlite(d),
                                "SELECT id, entity, attr, (SELECT t_max FROM chunk WHERE series = s.id "
                                "ORDER BY t_min DESC LIMIT 1) FROM series s ORDER BY id", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return db_error(d, rc, "loading series", err);
    int out = 0;
    while (out == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        uint32_t id;
        if (sqlite3_column_int64(st, 0) != s->n)
            out = cb_error_set(err, CB_ECORRUPT, "series", "series ids are not dense at %lld",
                               (long long)sqlite3_column_int64(st, 0));
        else if ((out = add_series(s, (uint32_t)sqlite3_column_int64(st, 1), (uint16_t)sqlite3_column_int(st, 2),
                                   &id)) != 0)
            cb_error_set(err, out, NULL, "out of memory loading series");
        else if (sqlite3_column_type(st, 3) != SQLITE_NULL)
            s->heads[id].sealed = sqlite3_column_int64(st, 3);
    }
    sqlite3_finalize(st);
    if (out != 0)
        return out;
    if (rc != SQLITE_DONE)
        return db_error(d, rc, "loading series", err);
    s->persisted = s->n;
    rc = sqlite3_prepare_v2(db_sqlite(d), "SELECT value FROM meta WHERE key = 'series_replay_lsn'", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return db_error(d, rc, "loading series replay lsn", err);
    if (sqlite3_step(st) == SQLITE_ROW)
        s->replay_lsn = strtoull((const char *)sqlite3_column_text(st, 0), NULL, 10);
    sqlite3_finalize(st);
    return 0;
}

int series_open(db *d, series **out, cb_error *err)
{
    series *s = calloc(1, sizeof *s);
    if (!s)
        return cb_error_set(err, CB_ENOMEM, NULL, NULL);
    pthread_mutex_init(&s->lock, NULL);
    int rc = load(s, d, err);
    if (rc != 0) {
        series_close(s);
        return rc;
    }
    *out = s;
    return 0;
}

static void pending_clear(series *s)
{
    for (uint32_t i = 0; i < s->npend; i++)
        free(s->pend[i].blob);
    s->npend = 0;
    for (uint32_t i = 0; i < s->n; i++)
        s->heads[i].pend_first = s->heads[i].pend_last = SERIES_NO_PENDING;
}

void series_close(series *s)
{
    if (!s)
        return;
    pending_clear(s);
    for (uint32_t i = 0; i < s->n; i++)
        codec_appender_free(&s->heads[i].app);
    free(s->heads);
    free(s->slots);
    free(s->pend);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

/* ---- the head (writer thread, mutex held) ---- */

/* Moves the open chunk of series sid to the pending list; the head is empty
 * after, its sealed time the chunk's t_max. Unchanged on CB_ENOMEM. */
static int close_chunk(series *s, uint32_t sid)
{
    struct head *h = &s->heads[sid];
    size_t len, n;
    const uint8_t *blob = codec_appender_blob(&h->app, &len);
    if (s->npend == s->cappend) {
        uint32_t cap = s->cappend ? s->cappend * 2 : 1024;
        struct pending *p = realloc(s->pend, (size_t)cap * sizeof *p);
        if (!p)
            return CB_ENOMEM;
        s->pend = p;
        s->cappend = cap;
    }
    struct pending *p = &s->pend[s->npend];
    p->blob = malloc(len);
    if (!p->blob)
        return CB_ENOMEM;
    memcpy(p->blob, blob, len);
    p->len = (uint32_t)len;
    p->sid = sid;
    p->next = SERIES_NO_PENDING;
    p->st = *codec_appender_stats(&h->app);
    int rc = codec_decode(blob, len, s->tmp_t, s->tmp_v, SERIES_CHUNK_MAX + 1, &n, NULL);
    assert(rc == 0 && n == p->st.n); /* our own appender's blob */
    (void)rc;
    p->nroll = series__rollups(s->tmp_t, s->tmp_v, n, p->roll, sizeof p->roll / sizeof p->roll[0]);
    if (h->pend_last == SERIES_NO_PENDING)
        h->pend_first = s->npend;
    else
        s->pend[h->pend_last].next = s->npend;
    h->pend_last = s->npend++;
    h->sealed = p->st.t_max;
    h->first_lsn = 0;
    codec_appender_reset(&h->app);
    return 0;
}

/* Inserts (t, v) into the open chunk in time order, replacing a point at t. */
static int merge_late(series *s, struct head *h, int64_t t, double v)
{
    size_t len, n, i, j;
    const uint8_t *blob = codec_appender_blob(&h->app, &len);
    int rc = codec_decode(blob, len, s->tmp_t, s->tmp_v, SERIES_CHUNK_MAX + 1, &n, NULL);
    assert(rc == 0);
    for (i = 0; i < n && s->tmp_t[i] < t; i++)
        ;
    if (i == n || s->tmp_t[i] != t) {
        memmove(&s->tmp_t[i + 1], &s->tmp_t[i], (n - i) * sizeof s->tmp_t[0]);
        memmove(&s->tmp_v[i + 1], &s->tmp_v[i], (n - i) * sizeof s->tmp_v[0]);
        n++;
    }
    s->tmp_t[i] = t;
    s->tmp_v[i] = v;
    codec_appender fresh;
    codec_appender_init(&fresh);
    for (j = 0, rc = 0; rc == 0 && j < n; j++)
        rc = codec_append(&fresh, s->tmp_t[j], s->tmp_v[j], NULL);
    if (rc != 0) {
        codec_appender_free(&fresh);
        return rc;
    }
    codec_appender_free(&h->app);
    h->app = fresh;
    return 0;
}

static int append_locked(series *s, uint64_t lsn, uint32_t sid, int64_t t, double v)
{
    struct head *h = &s->heads[sid];
    const struct codec_stats *st = codec_appender_stats(&h->app);
    if (isnan(v) || t <= h->sealed)
        return SERIES_DROPPED;
    if (st->n > 0 && t <= st->t_max) {
        if (series__floor(t, SERIES_WINDOW_MS) != series__floor(st->t_min, SERIES_WINDOW_MS) ||
            st->n >= SERIES_CHUNK_MAX)
            return SERIES_DROPPED;
        int rc = merge_late(s, h, t, v);
        if (rc == 0 && lsn < h->first_lsn)
            h->first_lsn = lsn;
        return rc == 0 ? SERIES_MERGED : rc;
    }
    if (st->n > 0 && (st->n >= SERIES_CHUNK_POINTS ||
                      series__floor(t, SERIES_WINDOW_MS) != series__floor(st->t_min, SERIES_WINDOW_MS))) {
        int rc = close_chunk(s, sid);
        if (rc != 0)
            return rc;
    }
    int rc = codec_append(&h->app, t, v, NULL);
    if (rc != 0)
        return rc;
    if (h->first_lsn == 0 || lsn < h->first_lsn)
        h->first_lsn = lsn;
    return SERIES_APPENDED;
}

int series_append(series *s, uint64_t lsn, uint32_t entity, uint16_t attr, int64_t t_ms, double v)
{
    uint32_t sid;
    int rc = series_id(s, entity, attr, 1, &sid, NULL);
    if (rc != 0)
        return rc;
    pthread_mutex_lock(&s->lock);
    rc = append_locked(s, lsn, sid, t_ms, v);
    if (rc == SERIES_APPENDED)
        s->appended++;
    else if (rc == SERIES_MERGED)
        s->merged++;
    else if (rc == SERIES_DROPPED)
        s->dropped++;
    pthread_mutex_unlock(&s->lock);
    return rc;
}

uint64_t series_replay_lsn(series *s)
{
    pthread_mutex_lock(&s->lock);
    uint64_t lsn = s->replay_lsn;
    pthread_mutex_unlock(&s->lock);
    return lsn;
}

/* ---- flush (writer thread) ---- */

/* Closes the chunks whose window ended SERIES_IDLE_CLOSE_MS ago and frees
 * their buffers; returns the lsn of the oldest point left open (0: none). */
static int close_idle(series *s, int64_t now_ms, uint64_t *oldest)
{
    int rc = 0;
    *oldest = 0;
    pthread_mutex_lock(&s->lock);
    for (uint32_t i = 0; rc == 0 && i < s->n; i++) {
        struct head *h = &s->heads[i];
        const struct codec_stats *st = codec_appender_stats(&h->app);
        if (st->n == 0)
            continue;
        int64_t end = series__floor(st->t_min, SERIES_WINDOW_MS) + SERIES_WINDOW_MS;
        if (end <= INT64_MAX - SERIES_IDLE_CLOSE_MS && end + SERIES_IDLE_CLOSE_MS <= now_ms) {
            rc = close_chunk(s, i);
            if (rc == 0)
                codec_appender_free(&h->app);
        } else if (*oldest == 0 || h->first_lsn < *oldest) {
            *oldest = h->first_lsn;
        }
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

struct flush_stmts {
    sqlite3_stmt *series, *chunk, *rollup, *meta;
};

static int prepare_flush(db *d, struct flush_stmts *f)
{
    sqlite3 *c = db_sqlite(d);
    memset(f, 0, sizeof *f);
    int rc = sqlite3_prepare_v2(c, "INSERT INTO series (id, entity, attr) VALUES (?1, ?2, ?3)", -1, &f->series,
                                NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(c, "INSERT INTO chunk (series, t_min, t_max, n, min, max, sum, blob) "
                                "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)", -1, &f->chunk, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(c, "INSERT INTO rollup_1h (series, bucket, count, sum, min, max, last) "
                                "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (series, bucket) DO UPDATE SET "
                                "count = count + excluded.count, sum = sum + excluded.sum, "
                                "min = min(min, excluded.min), max = max(max, excluded.max), "
                                "last = excluded.last", -1, &f->rollup, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(c, "INSERT OR REPLACE INTO meta (key, value) VALUES ('series_replay_lsn', ?1)",
                                -1, &f->meta, NULL);
    return rc;
}

static void finalize_flush(struct flush_stmts *f)
{
    sqlite3_finalize(f->series);
    sqlite3_finalize(f->chunk);
    sqlite3_finalize(f->rollup);
    sqlite3_finalize(f->meta);
}

static int step_reset(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int store_chunk(struct flush_stmts *f, const struct pending *p)
{
    sqlite3_bind_int64(f->chunk, 1, p->sid);
    sqlite3_bind_int64(f->chunk, 2, p->st.t_min);
    sqlite3_bind_int64(f->chunk, 3, p->st.t_max);
    sqlite3_bind_int64(f->chunk, 4, p->st.n);
    sqlite3_bind_double(f->chunk, 5, p->st.min);
    sqlite3_bind_double(f->chunk, 6, p->st.max);
    sqlite3_bind_double(f->chunk, 7, p->st.sum);
    sqlite3_bind_blob(f->chunk, 8, p->blob, (int)p->len, SQLITE_STATIC);
    int rc = step_reset(f->chunk);
    for (uint32_t i = 0; rc == SQLITE_OK && i < p->nroll; i++) {
        const struct rollup *r = &p->roll[i];
        sqlite3_bind_int64(f->rollup, 1, p->sid);
        sqlite3_bind_int64(f->rollup, 2, r->bucket);
        sqlite3_bind_int64(f->rollup, 3, (sqlite3_int64)r->count);
        sqlite3_bind_double(f->rollup, 4, r->sum);
        sqlite3_bind_double(f->rollup, 5, r->min);
        sqlite3_bind_double(f->rollup, 6, r->max);
        sqlite3_bind_double(f->rollup, 7, r->last);
        rc = step_reset(f->rollup);
    }
    return rc;
}

/* Writer thread: the ids and pending chunks only change on this thread, so
 * they are read here without the mutex. */
static int store_pending(series *s, struct flush_stmts *f, uint64_t oldest)
{
    int rc = SQLITE_OK;
    for (uint32_t i = s->persisted; rc == SQLITE_OK && i < s->n; i++) {
        sqlite3_bind_int64(f->series, 1, i);
        sqlite3_bind_int64(f->series, 2, s->heads[i].entity);
        sqlite3_bind_int64(f->series, 3, s->heads[i].attr);
        rc = step_reset(f->series);
    }
    for (uint32_t i = 0; rc == SQLITE_OK && i < s->npend; i++)
        rc = store_chunk(f, &s->pend[i]);
    char lsn[24];
    snprintf(lsn, sizeof lsn, "%llu", (unsigned long long)oldest);
    sqlite3_bind_text(f->meta, 1, lsn, -1, SQLITE_TRANSIENT);
    return rc == SQLITE_OK ? step_reset(f->meta) : rc;
}

int series_flush(series *s, db *d, int64_t now_ms, cb_error *err)
{
    uint64_t oldest;
    if (!sqlite3_get_autocommit(db_sqlite(d)))
        return cb_error_set(err, CB_EINTERNAL, NULL, "series_flush inside a transaction");
    if (close_idle(s, now_ms, &oldest) != 0)
        return cb_error_set(err, CB_ENOMEM, NULL, "out of memory closing idle chunks");
    struct flush_stmts f;
    int rc = prepare_flush(d, &f);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db_sqlite(d), "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc == SQLITE_OK) {
        rc = store_pending(s, &f, oldest);
        /* Commit and drop what it stored in one step for the queries (series.h). */
        pthread_mutex_lock(&s->lock);
        if (rc == SQLITE_OK)
            rc = sqlite3_exec(db_sqlite(d), "COMMIT", NULL, NULL, NULL);
        if (rc == SQLITE_OK) {
            s->flushed_chunks += s->npend;
            pending_clear(s);
            s->persisted = s->n;
            s->replay_lsn = oldest;
        }
        pthread_mutex_unlock(&s->lock);
    }
    int out = rc == SQLITE_OK ? 0 : db_error(d, rc, "series flush", err);
    if (rc != SQLITE_OK && !sqlite3_get_autocommit(db_sqlite(d)))
        sqlite3_exec(db_sqlite(d), "ROLLBACK", NULL, NULL, NULL);
    finalize_flush(&f);
    return out;
}

/* ---- retention (writer thread) ---- */

static int delete_old(sqlite3_stmt *st, uint32_t sid, int64_t cut, uint64_t limit, uint64_t *deleted)
{
    sqlite3_bind_int64(st, 1, sid);
    sqlite3_bind_int64(st, 2, cut);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)limit);
    int rc = step_reset(st);
    if (rc == SQLITE_OK)
        *deleted += (uint64_t)sqlite3_changes(sqlite3_db_handle(st));
    return rc;
}

static int retention_walk(series *s, sqlite3_stmt *del_chunk, sqlite3_stmt *del_roll, int64_t now_ms,
                          series_keep_fn keep, void *arg, uint64_t *deleted, int *wrapped, cb_error *err)
{
    int rc = SQLITE_OK;
    for (uint32_t visited = 0; rc == SQLITE_OK && visited < SERIES_RETENTION_SERIES &&
                               *deleted < SERIES_RETENTION_ROWS; visited++) {
        if (s->retention_cursor >= s->n) {
            s->retention_cursor = 0;
            *wrapped = 1;
            break;
        }
        uint32_t sid = s->retention_cursor;
        struct series_keep k = {0, 0};
        keep(arg, s->heads[sid].entity, s->heads[sid].attr, &k);
        if (k.raw_ms && k.raw_ms < SERIES_MIN_RAW_RETENTION_MS)
            return cb_error_set(err, CB_EINVALID_FIELD, "raw_ms", "raw retention of %lld ms is under one day",
                                (long long)k.raw_ms);
        if (k.raw_ms)
            rc = delete_old(del_chunk, sid, now_ms - k.raw_ms, SERIES_RETENTION_ROWS - *deleted, deleted);
        if (rc == SQLITE_OK && k.rollup_ms && *deleted < SERIES_RETENTION_ROWS)
            rc = delete_old(del_roll, sid, now_ms - k.rollup_ms - SERIES_ROLLUP_MS,
                            SERIES_RETENTION_ROWS - *deleted, deleted);
        if (rc == SQLITE_OK && *deleted < SERIES_RETENTION_ROWS)
            s->retention_cursor++; /* else this series may hold more: come back to it */
    }
    return rc == SQLITE_OK ? 0 : rc;
}

int series_retention(series *s, db *d, int64_t now_ms, series_keep_fn keep, void *arg, uint64_t *deleted,
                     int *wrapped, cb_error *err)
{
    sqlite3 *c = db_sqlite(d);
    sqlite3_stmt *del_chunk = NULL, *del_roll = NULL;
    *deleted = 0;
    *wrapped = 0;
    /* t_min < cut bounds the index range: a chunk with t_max < cut starts before it. */
    int rc = sqlite3_prepare_v2(c, "DELETE FROM chunk WHERE series = ?1 AND t_min IN (SELECT t_min FROM chunk "
                                "WHERE series = ?1 AND t_min < ?2 AND t_max < ?2 ORDER BY t_min LIMIT ?3)",
                                -1, &del_chunk, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(c, "DELETE FROM rollup_1h WHERE series = ?1 AND bucket IN (SELECT bucket FROM "
                                "rollup_1h WHERE series = ?1 AND bucket <= ?2 ORDER BY bucket LIMIT ?3)",
                                -1, &del_roll, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(c, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    int out = 0;
    if (rc == SQLITE_OK) {
        rc = retention_walk(s, del_chunk, del_roll, now_ms, keep, arg, deleted, wrapped, err);
        if (rc < 0)
            out = rc; /* a bad rule: err is filled */
        else if (rc == SQLITE_OK)
            rc = sqlite3_exec(c, "COMMIT", NULL, NULL, NULL);
    }
    if (out == 0 && rc != SQLITE_OK)
        out = db_error(d, rc, "series retention", err);
    if (out != 0) {
        *deleted = 0;
        if (!sqlite3_get_autocommit(c))
            sqlite3_exec(c, "ROLLBACK", NULL, NULL, NULL);
    }
    sqlite3_finalize(del_chunk);
    sqlite3_finalize(del_roll);
    return out;
}

/* ---- metrics ---- */

void series_get_stats(series *s, struct series_stats *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&s->lock);
    out->series = s->n;
    out->appended = s->appended;
    out->merged = s->merged;
    out->dropped = s->dropped;
    out->pending_chunks = s->npend;
    out->flushed_chunks = s->flushed_chunks;
    out->head_bytes = sizeof *s + (size_t)s->cap * sizeof *s->heads + (s->slots ? (s->mask + 1) * 4u : 0) +
                      (size_t)s->cappend * sizeof *s->pend;
    for (uint32_t i = 0; i < s->n; i++) {
        out->open_points += codec_appender_stats(&s->heads[i].app)->n;
        out->head_bytes += codec_appender_mem(&s->heads[i].app) - sizeof(codec_appender);
    }
    for (uint32_t i = 0; i < s->npend; i++)
        out->head_bytes += s->pend[i].len;
    pthread_mutex_unlock(&s->lock);
}
