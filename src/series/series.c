/* series — ids, the head, rollups, the flusher and retention of the
 * time-series engine; the behaviour and costs are in series.h, queries in
 * series_query.c. Everything here that changes the head runs on the writer
 * thread and holds the mutex only while it changes memory, never while it
 * waits for SQLite; the flusher thread holds it only for its COMMIT. */
#include "series_int.h"

#include "core/clock.h"
#include "core/log.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

/* Format 2: a chunk row carries its own hourly rollup parts (roll), so there
 * is no row per series and hour; the open chunks are snapshotted at every
 * flush (open_chunk), so the WAL is not kept for them. Format 1's rollup_1h
 * stays until series_open (upgrade_format_1) has filled roll of the rows
 * written before and carried over the hours whose raw chunks retention had
 * deleted; it drops the table in the same transaction. */
const char series_schema_v2_sql[] =
    "ALTER TABLE chunk ADD COLUMN roll BLOB;"
    "ALTER TABLE chunk DROP COLUMN min;"
    "ALTER TABLE chunk DROP COLUMN max;"
    "ALTER TABLE chunk DROP COLUMN sum;"
    "CREATE TABLE open_chunk (series INTEGER PRIMARY KEY, blob BLOB NOT NULL) STRICT;";

int64_t series__floor(int64_t t, int64_t unit)
{
    int64_t q = t / unit;
    if (t % unit < 0)
        q--;
    return q * unit;
}

static const double pow10_tab[] = {1.0, 10.0, 100.0, 1000.0, 10000.0};

uint32_t series__rollups(const int64_t *t, const double *v, size_t n, int decimals, int64_t unit,
                         struct rollup *out, uint32_t max)
{
    uint32_t k = 0;
    __int128 msum = 0; /* decimals >= 0: every v is m / 10^d with |m| <= 2^53 (codec.h) */
    int64_t end = 0; /* of the current bucket: a point inside it needs no division */
    for (size_t i = 0; i < n; i++) {
        int64_t b = k ? out[k - 1].bucket : 0;
        if (k == 0 || t[i] < b || t[i] >= end) {
            b = series__floor(t[i], unit);
            end = b > INT64_MAX - unit ? INT64_MAX : b + unit;
        }
        if (k == 0 || out[k - 1].bucket != b) {
            if (k && decimals >= 0)
                out[k - 1].sum = (double)msum / pow10_tab[decimals];
            assert(k < max);
            out[k++] = (struct rollup){b, 0, 0.0, v[i], v[i], v[i]};
            msum = 0;
        }
        struct rollup *r = &out[k - 1];
        r->count++;
        if (decimals >= 0)
            msum += (int64_t)nearbyint(v[i] * pow10_tab[decimals]);
        else
            r->sum += v[i];
        r->min = v[i] < r->min ? v[i] : r->min;
        r->max = v[i] > r->max ? v[i] : r->max;
        r->last = v[i];
    }
    if (k && decimals >= 0)
        out[k - 1].sum = (double)msum / pow10_tab[decimals];
    return k;
}

/* ---- the roll column: a chunk's rollup parts ----
 *   byte 0   version (1) << 4 | 8 if minute parts follow | d, the chunk's
 *            decimals (0 when it has none)
 *   byte 1   number of hour parts, 1..SERIES_ROLL_PARTS
 *   parts    each: varint units from the previous part's (the first: from
 *            the chunk's first hour / minute); varint count; a byte of flags,
 *            bit i for the i-th of min, max, last, sum: set = the value as 8
 *            bytes little-endian IEEE, clear = zigzag varint m with value =
 *            m / 10^d exactly (~2 bytes for sensor readings)
 *   then, with the minute flag: varint number of minute parts, the parts
 * About 12 bytes a part: 0.2 byte a reading at one a minute (2 hour parts a
 * chunk, no minute parts: each point is its own minute rollup). */
#define ROLL_VERSION 1
#define ROLL_MINUTES 8

static uint8_t *put_varint(uint8_t *p, uint64_t u)
{
    while (u >= 0x80) {
        *p++ = (uint8_t)(u | 0x80);
        u >>= 7;
    }
    *p++ = (uint8_t)u;
    return p;
}

static int get_varint(const uint8_t **p, const uint8_t *end, uint64_t *u)
{
    *u = 0;
    for (unsigned shift = 0; *p < end && shift < 64; shift += 7) {
        uint8_t b = *(*p)++;
        *u |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return 0;
    }
    return -1;
}

/* m with m / 10^d == v bit for bit, |m| <= 2^53; -1 when there is none. */
static int roll_decimal(double v, int d, int64_t *m)
{
    double x = v * pow10_tab[d];
    if (!(x >= -9007199254740992.0 && x <= 9007199254740992.0))
        return -1;
    *m = (int64_t)nearbyint(x);
    double back = (double)*m / pow10_tab[d];
    return memcmp(&back, &v, sizeof v) == 0 ? 0 : -1;
}

static uint8_t *put_parts(uint8_t *p, const struct rollup *r, uint32_t n, int decimals, int64_t first,
                          int64_t unit)
{
    int d = decimals < 0 ? 0 : decimals;
    int64_t prev = first;
    for (uint32_t i = 0; i < n; i++) {
        const double vals[4] = {r[i].min, r[i].max, r[i].last, r[i].sum};
        int64_t m[4];
        uint8_t flags = 0;
        for (int j = 0; j < 4; j++)
            if (decimals < 0 || roll_decimal(vals[j], d, &m[j]) != 0)
                flags |= (uint8_t)(1u << j);
        p = put_varint(p, (uint64_t)((r[i].bucket - prev) / unit));
        prev = r[i].bucket;
        p = put_varint(p, r[i].count);
        *p++ = flags;
        for (int j = 0; j < 4; j++) {
            if (flags >> j & 1) {
                memcpy(p, &vals[j], 8); /* little-endian hosts (asserted in codec.c's tests) */
                p += 8;
            } else {
                p = put_varint(p, ((uint64_t)m[j] << 1) ^ (uint64_t)(m[j] >> 63));
            }
        }
    }
    return p;
}

size_t series__roll_build(const int64_t *t, const double *v, size_t n, int decimals, struct rollup *hours,
                          uint32_t *nhours, uint8_t *out)
{
    struct rollup minutes[SERIES_ROLL_MINUTES];
    assert(n >= 1);
    *nhours = series__rollups(t, v, n, decimals, SERIES_ROLLUP_MS, hours, SERIES_ROLL_PARTS);
    uint32_t nmin = series__rollups(t, v, n, decimals, SERIES_ROLLUP_1M_MS, minutes, SERIES_ROLL_MINUTES);
    int with_minutes = n >= (size_t)SERIES_MINUTES_DENSITY * nmin;
    uint8_t *p = out;
    *p++ = (uint8_t)(ROLL_VERSION << 4 | (with_minutes ? ROLL_MINUTES : 0) | (decimals < 0 ? 0 : decimals));
    *p++ = (uint8_t)*nhours;
    p = put_parts(p, hours, *nhours, decimals, series__floor(t[0], SERIES_ROLLUP_MS), SERIES_ROLLUP_MS);
    if (with_minutes) {
        p = put_varint(p, nmin);
        p = put_parts(p, minutes, nmin, decimals, series__floor(t[0], SERIES_ROLLUP_1M_MS), SERIES_ROLLUP_1M_MS);
    }
    assert((size_t)(p - out) <= SERIES_ROLL_MAX);
    return (size_t)(p - out);
}

static int get_parts(const uint8_t **p, const uint8_t *end, int d, int64_t first, int64_t unit, uint32_t n,
                     uint32_t max_units, struct rollup *out)
{
    uint64_t at = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t delta, count;
        if (get_varint(p, end, &delta) || get_varint(p, end, &count) || count == 0 || delta >= max_units ||
            (at += delta) >= max_units || (i && delta == 0) || *p >= end) /* a part is never empty */
            return CB_ECORRUPT;
        uint8_t flags = *(*p)++;
        double vals[4];
        for (int j = 0; j < 4; j++) {
            uint64_t z;
            if (flags >> j & 1) {
                if (end - *p < 8)
                    return CB_ECORRUPT;
                memcpy(&vals[j], *p, 8);
                *p += 8;
            } else if (get_varint(p, end, &z)) {
                return CB_ECORRUPT;
            } else {
                vals[j] = (double)(int64_t)((z >> 1) ^ (0 - (z & 1))) / pow10_tab[d];
            }
        }
        if (out)
            out[i] = (struct rollup){first + (int64_t)at * unit, count, vals[3], vals[0], vals[1], vals[2]};
    }
    return 0;
}

int series__roll_decode(const uint8_t *p, size_t len, int64_t t_min, struct rollup *hours, uint32_t *nhours,
                        struct rollup *minutes, uint32_t *nminutes)
{
    const uint8_t *end = p + len;
    uint64_t nmin = 0;
    *nhours = 0;
    if (nminutes)
        *nminutes = 0;
    if (len < 2 || p[0] >> 4 != ROLL_VERSION || (p[0] & 7) > 4 || p[1] < 1 || p[1] > SERIES_ROLL_PARTS)
        return CB_ECORRUPT;
    int d = p[0] & 7, with_minutes = p[0] & ROLL_MINUTES;
    uint32_t nh = p[1];
    p += 2;
    if (get_parts(&p, end, d, series__floor(t_min, SERIES_ROLLUP_MS), SERIES_ROLLUP_MS, nh, SERIES_ROLL_PARTS,
                  hours) != 0)
        return CB_ECORRUPT;
    if (with_minutes && (get_varint(&p, end, &nmin) || nmin < 1 || nmin > SERIES_ROLL_MINUTES ||
                         get_parts(&p, end, d, series__floor(t_min, SERIES_ROLLUP_1M_MS), SERIES_ROLLUP_1M_MS,
                                   (uint32_t)nmin, SERIES_ROLL_MINUTES, minutes) != 0))
        return CB_ECORRUPT;
    if (p != end)
        return CB_ECORRUPT;
    *nhours = nh;
    if (nminutes)
        *nminutes = (uint32_t)nmin;
    return 0;
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
    h->pend_first = h->pend_last = h->batch_first = SERIES_NO_PENDING;
    h->sealed = INT64_MIN;
    h->raw_cut = INT64_MIN;
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
    /* Format 1 stored 0 for "nothing open": the series were then complete up to
     * the state's checkpoint, which the WAL may have been trimmed to. */
    static const char *const keys[] = {"series_replay_lsn", "checkpoint_lsn"};
    for (int k = 0; k < 2 && s->replay_lsn == 0; k++) {
        char sql[80];
        snprintf(sql, sizeof sql, "SELECT value FROM meta WHERE key = '%s'", keys[k]);
        rc = sqlite3_prepare_v2(db_sqlite(d), sql, -1, &st, NULL);
        if (rc != SQLITE_OK)
            return db_error(d, rc, "loading series replay lsn", err);
        if (sqlite3_step(st) == SQLITE_ROW)
            s->replay_lsn = strtoull((const char *)sqlite3_column_text(st, 0), NULL, 10) + (uint64_t)k;
        sqlite3_finalize(st);
    }
    if (s->replay_lsn == 0)
        s->replay_lsn = 1; /* a new store: the whole WAL */
    return 0;
}

/* The open chunks as of the last flush, back into the head. */
static int load_open(series *s, db *d, cb_error *err)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db_sqlite(d), "SELECT series, blob FROM open_chunk", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return db_error(d, rc, "loading open chunks", err);
    int out = 0;
    while (out == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        sqlite3_int64 sid = sqlite3_column_int64(st, 0);
        size_t n;
        cb_error e;
        if (sid < 0 || sid >= s->n) {
            out = cb_error_set(err, CB_ECORRUPT, "open_chunk", "open chunk of unknown series %lld", (long long)sid);
            break;
        }
        if (codec_decode(sqlite3_column_blob(st, 1), (size_t)sqlite3_column_bytes(st, 1), s->tmp_t, s->tmp_v,
                         SERIES_CHUNK_MAX + 1, &n, &e) != 0) {
            out = cb_error_set(err, CB_ECORRUPT, "open_chunk", "open chunk of series %lld: %s", (long long)sid,
                               e.message);
            break;
        }
        struct head *h = &s->heads[sid];
        for (size_t i = 0; out == 0 && i < n; i++)
            if (s->tmp_t[i] > h->sealed && codec_append(&h->app, s->tmp_t[i], s->tmp_v[i], NULL) != 0)
                out = cb_error_set(err, CB_ENOMEM, NULL, "out of memory loading open chunks");
        h->snap = 1;
    }
    sqlite3_finalize(st);
    if (out == 0 && rc != SQLITE_DONE)
        out = db_error(d, rc, "loading open chunks", err);
    return out;
}

/* ---- the upgrade from format 1 (once, at the first series_open) ---- */

static int step_reset(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* Rows written before format 2 have no roll: computed from their points. */
static int fill_rolls(series *s, db *d, cb_error *err)
{
    sqlite3 *c = db_sqlite(d);
    sqlite3_stmt *sel = NULL, *upd = NULL;
    int rc = sqlite3_prepare_v2(c, "SELECT series, t_min, blob FROM chunk WHERE roll IS NULL", -1, &sel, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(c, "UPDATE chunk SET roll = ?3 WHERE series = ?1 AND t_min = ?2", -1, &upd, NULL);
    int out = 0;
    while (rc == SQLITE_OK && out == 0 && (rc = sqlite3_step(sel)) == SQLITE_ROW) {
        const uint8_t *blob = sqlite3_column_blob(sel, 2);
        size_t len = (size_t)sqlite3_column_bytes(sel, 2), n;
        struct rollup parts[SERIES_ROLL_PARTS];
        uint32_t np;
        uint8_t roll[SERIES_ROLL_MAX];
        if (codec_decode(blob, len, s->tmp_t, s->tmp_v, SERIES_CHUNK_MAX + 1, &n, NULL) != 0) {
            out = cb_error_set(err, CB_ECORRUPT, "chunk", "a stored chunk of series %lld does not decode",
                               (long long)sqlite3_column_int64(sel, 0));
            break;
        }
        size_t rlen = series__roll_build(s->tmp_t, s->tmp_v, n, codec_decimals(blob, len), parts, &np, roll);
        sqlite3_bind_int64(upd, 1, sqlite3_column_int64(sel, 0));
        sqlite3_bind_int64(upd, 2, sqlite3_column_int64(sel, 1));
        sqlite3_bind_blob(upd, 3, roll, (int)rlen, SQLITE_STATIC);
        rc = step_reset(upd);
    }
    if (rc == SQLITE_DONE)
        rc = SQLITE_OK;
    sqlite3_finalize(sel);
    sqlite3_finalize(upd);
    if (out == 0 && rc != SQLITE_OK)
        out = db_error(d, rc, "filling chunk rollups", err);
    return out;
}

/* carry_rollups' statements and scratch; sums owned (cap of them). */
struct carry {
    sqlite3_stmt *rows, *parts, *ins;
    double *sums;
    size_t cap;
};

/* The parts of hour h in the stored chunks of series sid, in the order a
 * query adds them (t_min): *count their points, k->sums[0..*n) their sums. */
static int hour_parts(struct carry *k, sqlite3_int64 sid, int64_t h, uint64_t *count, size_t *n)
{
    sqlite3_bind_int64(k->parts, 1, sid);
    sqlite3_bind_int64(k->parts, 2, h - SERIES_WINDOW_MS);
    sqlite3_bind_int64(k->parts, 3, h + SERIES_ROLLUP_MS);
    sqlite3_bind_int64(k->parts, 4, h);
    int rc;
    *count = 0;
    *n = 0;
    while ((rc = sqlite3_step(k->parts)) == SQLITE_ROW) {
        struct rollup hours[SERIES_ROLL_PARTS];
        uint32_t nh;
        if (series__roll_decode(sqlite3_column_blob(k->parts, 1), (size_t)sqlite3_column_bytes(k->parts, 1),
                                sqlite3_column_int64(k->parts, 0), hours, &nh, NULL, NULL) != 0) {
            rc = SQLITE_CORRUPT;
            break;
        }
        for (uint32_t i = 0; i < nh; i++) {
            if (hours[i].bucket != h)
                continue;
            if (*n == k->cap) {
                size_t cap = k->cap ? k->cap * 2 : 16;
                double *p = realloc(k->sums, cap * sizeof *p);
                if (!p) {
                    sqlite3_reset(k->parts);
                    return SQLITE_NOMEM;
                }
                k->sums = p;
                k->cap = cap;
            }
            k->sums[(*n)++] = hours[i].sum;
            *count += hours[i].count;
        }
    }
    sqlite3_reset(k->parts);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* A sum c for the deleted points' part such that a query, which adds c and
 * then sums[0..n) in order, gets total bit for bit (or as near as a few ulps
 * around total - sums find). */
static double carry_sum(double total, const double *sums, size_t n)
{
    double c = total;
    for (size_t i = n; i-- > 0;)
        c -= sums[i];
    double up = c, down = c;
    for (int step = 0; step < 64; step++) {
        double a = up, b = down;
        for (size_t i = 0; i < n; i++) {
            a += sums[i];
            b += sums[i];
        }
        if (a == total)
            return up;
        if (b == total)
            return down;
        up = nextafter(up, INFINITY);
        down = nextafter(down, -INFINITY);
    }
    return c;
}

/* One rollup_1h row: when retention deleted some of its hour's chunks, a chunk
 * row at the hour (t_min = t_max = the hour, empty blob, so raw queries find
 * no points) whose roll is the deleted points' part: count and sum the
 * difference, min, max and last the hour's own (so combined with the parts
 * still stored they answer exactly). Format 1 deleted the oldest chunks, so
 * the ones left in the hour start after it and are added after this row. */
static int carry_hour(struct carry *k)
{
    sqlite3_int64 sid = sqlite3_column_int64(k->rows, 0);
    int64_t h = sqlite3_column_int64(k->rows, 1);
    sqlite3_int64 total = sqlite3_column_int64(k->rows, 2);
    uint64_t count;
    size_t n;
    int rc = hour_parts(k, sid, h, &count, &n);
    if (rc != SQLITE_OK || total <= 0 || (uint64_t)total <= count)
        return rc;
    struct rollup part = {h, (uint64_t)total - count,
                          carry_sum(sqlite3_column_double(k->rows, 3), k->sums, n),
                          sqlite3_column_double(k->rows, 4), sqlite3_column_double(k->rows, 5),
                          sqlite3_column_double(k->rows, 6)};
    uint8_t roll[SERIES_ROLL_MAX], *p = roll;
    *p++ = ROLL_VERSION << 4;
    *p++ = 1;
    p = put_parts(p, &part, 1, -1, h, SERIES_ROLLUP_MS);
    sqlite3_bind_int64(k->ins, 1, sid);
    sqlite3_bind_int64(k->ins, 2, h);
    sqlite3_bind_int64(k->ins, 3, (sqlite3_int64)part.count);
    sqlite3_bind_blob(k->ins, 4, roll, (int)(p - roll), SQLITE_STATIC);
    return step_reset(k->ins);
}

/* Every hour of rollup_1h that the chunk rows (their roll filled) do not
 * fully hold any more, as a chunk row of its own (carry_hour). */
static int carry_rollups(db *d, cb_error *err)
{
    sqlite3 *c = db_sqlite(d);
    struct carry k = {NULL, NULL, NULL, NULL, 0};
    int rc = sqlite3_prepare_v2(c, "SELECT series, bucket, count, sum, min, max, last FROM rollup_1h", -1,
                                &k.rows, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(c, "SELECT t_min, roll FROM chunk WHERE series = ?1 AND t_min > ?2 AND t_min < ?3 "
                                "AND t_max >= ?4 ORDER BY t_min", -1, &k.parts, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(c, "INSERT INTO chunk (series, t_min, t_max, n, roll, blob) "
                                "VALUES (?1, ?2, ?2, ?3, ?4, X'')", -1, &k.ins, NULL);
    while (rc == SQLITE_OK && (rc = sqlite3_step(k.rows)) == SQLITE_ROW)
        rc = carry_hour(&k);
    if (rc == SQLITE_DONE)
        rc = SQLITE_OK;
    sqlite3_finalize(k.rows);
    sqlite3_finalize(k.parts);
    sqlite3_finalize(k.ins);
    free(k.sums);
    return rc == SQLITE_OK ? 0 : db_error(d, rc, "carrying format 1 hourly rollups over", err);
}

/* A store written by format 1 still has rollup_1h (migration 7 keeps it): in
 * one transaction, fill roll of the old chunk rows, carry over the hours whose
 * chunks are gone, and drop the table. Later opens cost one lookup. */
static int upgrade_format_1(series *s, db *d, cb_error *err)
{
    sqlite3 *c = db_sqlite(d);
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(c, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'rollup_1h'", -1,
                                &st, NULL);
    if (rc != SQLITE_OK)
        return db_error(d, rc, "looking for format 1 rollups", err);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc == SQLITE_DONE)
        return 0;
    if (rc != SQLITE_ROW)
        return db_error(d, rc, "looking for format 1 rollups", err);
    rc = sqlite3_exec(c, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return db_error(d, rc, "upgrading format 1 series", err);
    int out = fill_rolls(s, d, err);
    if (out == 0)
        out = carry_rollups(d, err);
    if (out == 0 && (rc = sqlite3_exec(c, "DROP TABLE rollup_1h; COMMIT", NULL, NULL, NULL)) != SQLITE_OK)
        out = db_error(d, rc, "upgrading format 1 series", err);
    if (out != 0 && !sqlite3_get_autocommit(c))
        sqlite3_exec(c, "ROLLBACK", NULL, NULL, NULL);
    return out;
}

static void *flusher_main(void *arg);

/* The SQLite WAL a flush leaves on disk once checkpointed, at most (bytes). */
#define SERIES_WAL_LIMIT "67108864"

int series__open_peer(db *d, db **out, cb_error *err)
{
    const char *file = sqlite3_db_filename(db_sqlite(d), "main");
    const char *slash = file ? strrchr(file, '/') : NULL;
    char dir[4096];
    if (!slash || (size_t)(slash - file) >= sizeof dir)
        return cb_error_set(err, CB_EINTERNAL, NULL, "series: the database has no directory");
    memcpy(dir, file, (size_t)(slash - file));
    dir[slash - file] = '\0';
    return db_open(dir, out, err);
}

/* The flusher's own connection to the same database file. */
static int open_flusher(series *s, db *d, cb_error *err)
{
    int rc = series__open_peer(d, &s->fdb, err);
    if (rc == 0) { /* see flush_batch */
        sqlite3_wal_autocheckpoint(db_sqlite(s->fdb), 0);
        rc = db_exec(s->fdb, "PRAGMA journal_size_limit = " SERIES_WAL_LIMIT, err);
    }
    if (rc == 0 && pthread_create(&s->flusher, NULL, flusher_main, s) != 0)
        rc = cb_error_set(err, CB_EINTERNAL, NULL, "cannot start the series flusher thread");
    s->flusher_running = rc == 0;
    return rc;
}

int series_open(db *d, series **out, cb_error *err)
{
    series *s = calloc(1, sizeof *s);
    if (!s)
        return cb_error_set(err, CB_ENOMEM, NULL, NULL);
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);
    int rc = upgrade_format_1(s, d, err);
    if (rc == 0)
        rc = load(s, d, err);
    if (rc == 0)
        rc = load_open(s, d, err);
    if (rc == 0)
        rc = open_flusher(s, d, err);
    if (rc != 0) {
        series_close(s);
        return rc;
    }
    *out = s;
    return 0;
}

static void pending_free(struct pending *p, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        free(p[i].blob);
        free(p[i].rolls);
    }
}

/* Mutex held, or the flusher stopped. Drops the batch (committed, or at close). */
static void batch_clear(series *s)
{
    struct batch *b = &s->batch;
    pending_free(b->pend, b->npend);
    free(b->pend);
    for (uint32_t i = 0; i < b->nsnap; i++)
        free(b->snap[i].blob);
    free(b->snap);
    free(b->keys);
    memset(b, 0, sizeof *b);
    for (uint32_t i = 0; i < s->n; i++)
        s->heads[i].batch_first = SERIES_NO_PENDING;
}

void series_close(series *s)
{
    if (!s)
        return;
    if (s->flusher_running) { /* it finishes the batch in flight (one try), then stops */
        pthread_mutex_lock(&s->lock);
        s->stopping = 1;
        pthread_cond_broadcast(&s->cond);
        pthread_mutex_unlock(&s->lock);
        pthread_join(s->flusher, NULL);
    }
    db_close(s->fdb);
    batch_clear(s);
    pending_free(s->pend, s->npend);
    for (int i = 0; i < SERIES_STMT_CACHE; i++)
        series__stmts_free(&s->stmts[i]);
    db_close(s->qdb); /* after its statements */
    for (uint32_t i = 0; i < s->n; i++)
        codec_appender_free(&s->heads[i].app);
    free(s->heads);
    free(s->slots);
    free(s->pend);
    pthread_cond_destroy(&s->cond);
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
    uint8_t roll[SERIES_ROLL_MAX];
    size_t rlen = series__roll_build(s->tmp_t, s->tmp_v, n, codec_decimals(blob, len), p->roll, &p->nroll, roll);
    if (!(p->rolls = malloc(rlen))) {
        free(p->blob);
        return CB_ENOMEM;
    }
    memcpy(p->rolls, roll, rlen);
    p->rolls_len = (uint32_t)rlen;
    if (h->pend_last == SERIES_NO_PENDING)
        h->pend_first = s->npend;
    else
        s->pend[h->pend_last].next = s->npend;
    h->pend_last = s->npend++;
    h->sealed = p->st.t_max;
    h->dirty = 1;
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

static int append_locked(series *s, uint32_t sid, int64_t t, double v)
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
        h->dirty |= rc == 0;
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
    h->dirty = 1;
    return SERIES_APPENDED;
}

/* Mutex held. series_append's work, counted. */
static int append_one(series *s, uint32_t entity, uint16_t attr, int64_t t_ms, double v)
{
    uint32_t sid;
    int rc = 0;
    uint32_t slot = s->slots ? hash_find(s, entity, attr) : 0;
    if (s->slots && s->slots[slot])
        sid = s->slots[slot] - 1;
    else
        rc = add_series(s, entity, attr, &sid);
    if (rc == 0)
        rc = append_locked(s, sid, t_ms, v);
    if (rc == SERIES_APPENDED)
        s->appended++;
    else if (rc == SERIES_MERGED)
        s->merged++;
    else if (rc == SERIES_DROPPED)
        s->dropped++;
    return rc;
}

/* Mutex held: back at work after a checkpoint, so the flusher may write. */
static void flusher_go(series *s)
{
    if (s->batch.inflight && !s->batch.go) {
        s->batch.go = 1;
        pthread_cond_signal(&s->cond);
    }
}

int series_append(series *s, uint32_t entity, uint16_t attr, int64_t t_ms, double v)
{
    pthread_mutex_lock(&s->lock);
    flusher_go(s);
    int rc = append_one(s, entity, attr, t_ms, v);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/* How many points ahead series_append_many fetches each level a point
 * touches: its hash slot, its head, the tail of its chunk's buffer. With
 * many series in time order (100,000 sensors, a reading each) every level is
 * a cache miss; fetched in stages, a batch's misses overlap instead of
 * stalling the writer one after another (measured: the buffer's miss alone
 * was 45 % of the writer's time at 100,000 series). */
#define AHEAD_SLOT 24
#define AHEAD_HEAD 16
#define AHEAD_TAIL 8

/* Mutex held. Each level reads only what the previous one fetched. */
static void prefetch_point(const series *s, const struct series_point *p, int level)
{
    const uint32_t *slot = &s->slots[hash_key(p->entity, p->attr, s->mask)];
    if (level == 0) {
        __builtin_prefetch(slot);
        return;
    }
    if (*slot == 0)
        return; /* a new series, or a collision: found the slow way */
    const struct head *h = &s->heads[*slot - 1];
    if (level == 1) {
        for (size_t off = 0; off < sizeof *h; off += 64)
            __builtin_prefetch((const char *)h + off, 1);
        __builtin_prefetch((const char *)(h + 1) - 1, 1);
    } else if (h->entity == p->entity && h->attr == p->attr) {
        codec_appender_prefetch(&h->app);
    }
}

int series_append_many(series *s, const struct series_point *pts, size_t n)
{
    int rc = 0;
    pthread_mutex_lock(&s->lock);
    flusher_go(s);
    for (size_t i = 0; i < n; i++) {
        if (s->slots) {
            if (i + AHEAD_SLOT < n)
                prefetch_point(s, &pts[i + AHEAD_SLOT], 0);
            if (i + AHEAD_HEAD < n)
                prefetch_point(s, &pts[i + AHEAD_HEAD], 1);
            if (i + AHEAD_TAIL < n)
                prefetch_point(s, &pts[i + AHEAD_TAIL], 2);
        }
        if (append_one(s, pts[i].entity, pts[i].attr, pts[i].t_ms, pts[i].v) < 0)
            rc = CB_ENOMEM;
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/* ---- flush: sealed on the writer thread, stored by the flusher ----
 * series_flush moves the pending chunks and copies of the changed open
 * chunks into the batch, under the mutex, in O(series) memory work, and
 * wakes the flusher, which stores the batch in one transaction on its own
 * connection while ingest goes on (DESIGN §3). One batch is in flight at a
 * time: a checkpoint that finds the previous one still in flight seals
 * nothing, and the WAL keeps everything since the last committed batch.
 * The flusher starts writing once the writer is back at work (its next
 * append, or a second later), not during the rest of the writer's
 * checkpoint: SQLite has one writer at a time, and the writer's own
 * checkpoint transaction would wait for the flusher's. */

/* Mutex held. Closes the chunks whose window ended SERIES_IDLE_CLOSE_MS ago
 * and that took no point since the last seal, and frees their buffers. A
 * series still being fed (a backfill of past days, a device whose clock is
 * behind) keeps its chunk until it is full or its window ends: closing at
 * every checkpoint cut a bulk load's chunks into ~50-point pieces, 2.3
 * bytes a reading instead of 1.6. */
static int close_idle(series *s, int64_t now_ms)
{
    int rc = 0;
    for (uint32_t i = 0; rc == 0 && i < s->n; i++) {
        struct head *h = &s->heads[i];
        const struct codec_stats *st = codec_appender_stats(&h->app);
        if (st->n == 0 || h->dirty)
            continue;
        int64_t end = series__floor(st->t_min, SERIES_WINDOW_MS) + SERIES_WINDOW_MS;
        if (end <= INT64_MAX - SERIES_IDLE_CLOSE_MS && end + SERIES_IDLE_CLOSE_MS <= now_ms) {
            rc = close_chunk(s, i);
            if (rc == 0)
                codec_appender_free(&h->app);
        }
    }
    return rc;
}

/* Mutex held, no batch in flight. Copies of the changed open chunks (len 0:
 * the series' snapshot row goes, its chunk closed). */
static int seal_snapshots(series *s, struct batch *b)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < s->n; i++)
        n += s->heads[i].dirty && (s->heads[i].snap || codec_appender_stats(&s->heads[i].app)->n > 0);
    if (n && !(b->snap = calloc(n, sizeof *b->snap)))
        return CB_ENOMEM;
    for (uint32_t i = 0; i < s->n; i++) {
        struct head *h = &s->heads[i];
        size_t len = 0;
        if (!h->dirty || (!h->snap && codec_appender_stats(&h->app)->n == 0))
            continue;
        struct snapshot *sn = &b->snap[b->nsnap++];
        sn->sid = i;
        if (codec_appender_stats(&h->app)->n > 0) {
            const uint8_t *blob = codec_appender_blob(&h->app, &len);
            if (!(sn->blob = malloc(len)))
                return CB_ENOMEM;
            memcpy(sn->blob, blob, len);
            sn->len = (uint32_t)len;
        }
    }
    return 0;
}

int series_flush(series *s, uint64_t lsn, int64_t now_ms, cb_error *err)
{
    int rc = 0;
    pthread_mutex_lock(&s->lock);
    if (s->flush_rc) { /* the flusher's failure, reported once; it retries the batch */
        rc = s->flush_rc;
        if (err)
            *err = s->flush_err;
        s->flush_rc = 0;
    }
    if (s->batch.inflight || rc != 0) {
        pthread_mutex_unlock(&s->lock);
        return rc;
    }
    struct batch *b = &s->batch;
    if (s->n > s->persisted && !(b->keys = malloc((s->n - s->persisted) * sizeof *b->keys)))
        rc = CB_ENOMEM;
    if (rc != 0 || close_idle(s, now_ms) != 0 || seal_snapshots(s, b) != 0) {
        for (uint32_t i = 0; i < b->nsnap; i++)
            free(b->snap[i].blob);
        free(b->snap);
        free(b->keys);
        memset(b, 0, sizeof *b);
        pthread_mutex_unlock(&s->lock);
        return cb_error_set(err, CB_ENOMEM, NULL, "out of memory sealing a series flush");
    }
    b->pend = s->pend; /* the pending list moves whole; its next links stay valid */
    b->npend = s->npend;
    s->pend = NULL;
    s->npend = s->cappend = 0;
    for (uint32_t i = 0; i < s->n; i++) {
        struct head *h = &s->heads[i];
        h->batch_first = h->pend_first;
        h->pend_first = h->pend_last = SERIES_NO_PENDING;
        if (h->dirty)
            h->snap = codec_appender_stats(&h->app)->n > 0;
        h->dirty = 0;
    }
    b->ids_from = s->persisted;
    b->ids_to = s->n;
    for (uint32_t i = b->ids_from; i < b->ids_to; i++)
        b->keys[i - b->ids_from] = (struct series_key){s->heads[i].entity, s->heads[i].attr};
    b->lsn = lsn;
    b->inflight = 1;
    pthread_mutex_unlock(&s->lock);
    return 0;
}

int series_sync(series *s, cb_error *err)
{
    pthread_mutex_lock(&s->lock);
    s->batch.go = 1;
    pthread_cond_broadcast(&s->cond);
    while (s->batch.inflight && !s->flush_rc)
        pthread_cond_wait(&s->cond, &s->lock);
    int rc = s->flush_rc;
    if (rc && err)
        *err = s->flush_err;
    s->flush_rc = 0;
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

struct flush_stmts {
    sqlite3_stmt *series, *chunk, *open, *unopen, *meta;
};

static int prepare_flush(db *d, struct flush_stmts *f)
{
    sqlite3 *c = db_sqlite(d);
    memset(f, 0, sizeof *f);
    int rc = sqlite3_prepare_v2(c, "INSERT INTO series (id, entity, attr) VALUES (?1, ?2, ?3)", -1, &f->series,
                                NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(c, "INSERT INTO chunk (series, t_min, t_max, n, roll, blob) "
                                "VALUES (?1, ?2, ?3, ?4, ?5, ?6)", -1, &f->chunk, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(c, "INSERT OR REPLACE INTO open_chunk (series, blob) VALUES (?1, ?2)", -1,
                                &f->open, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(c, "DELETE FROM open_chunk WHERE series = ?1", -1, &f->unopen, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(c, "INSERT OR REPLACE INTO meta (key, value) VALUES ('series_replay_lsn', ?1)",
                                -1, &f->meta, NULL);
    return rc;
}

static void finalize_flush(struct flush_stmts *f)
{
    sqlite3_finalize(f->series);
    sqlite3_finalize(f->chunk);
    sqlite3_finalize(f->open);
    sqlite3_finalize(f->unopen);
    sqlite3_finalize(f->meta);
}

static int store_chunk(struct flush_stmts *f, const struct pending *p)
{
    sqlite3_bind_int64(f->chunk, 1, p->sid);
    sqlite3_bind_int64(f->chunk, 2, p->st.t_min);
    sqlite3_bind_int64(f->chunk, 3, p->st.t_max);
    sqlite3_bind_int64(f->chunk, 4, p->st.n);
    sqlite3_bind_blob(f->chunk, 5, p->rolls, (int)p->rolls_len, SQLITE_STATIC);
    sqlite3_bind_blob(f->chunk, 6, p->blob, (int)p->len, SQLITE_STATIC);
    return step_reset(f->chunk);
}

/* The snapshot of one series' open chunk: replaced when it changed, deleted
 * when the chunk closed (its points are in a chunk row of the same commit). */
static int store_snapshot(struct flush_stmts *f, const struct snapshot *sn)
{
    sqlite3_stmt *st = sn->len ? f->open : f->unopen;
    sqlite3_bind_int64(st, 1, sn->sid);
    if (sn->len)
        sqlite3_bind_blob(st, 2, sn->blob, (int)sn->len, SQLITE_STATIC);
    return step_reset(st);
}

/* Flusher thread, without the mutex: the batch is immutable while in flight. */
static int store_batch(struct flush_stmts *f, const struct batch *b)
{
    int rc = SQLITE_OK;
    for (uint32_t i = b->ids_from; rc == SQLITE_OK && i < b->ids_to; i++) {
        sqlite3_bind_int64(f->series, 1, i);
        sqlite3_bind_int64(f->series, 2, b->keys[i - b->ids_from].entity);
        sqlite3_bind_int64(f->series, 3, b->keys[i - b->ids_from].attr);
        rc = step_reset(f->series);
    }
    for (uint32_t i = 0; rc == SQLITE_OK && i < b->npend; i++)
        rc = store_chunk(f, &b->pend[i]);
    for (uint32_t i = 0; rc == SQLITE_OK && i < b->nsnap; i++)
        rc = store_snapshot(f, &b->snap[i]);
    char lsn[24];
    snprintf(lsn, sizeof lsn, "%llu", (unsigned long long)b->lsn + 1);
    sqlite3_bind_text(f->meta, 1, lsn, -1, SQLITE_TRANSIENT);
    return rc == SQLITE_OK ? step_reset(f->meta) : rc;
}

/* Flusher thread: one transaction for the batch, written without the mutex;
 * the commit and the drop of the batch happen under it in one step, so a
 * query (which starts its read transaction under it) sees each chunk exactly
 * once. The flusher's connection does not checkpoint SQLite's WAL inside the
 * commit (that would hold the mutex); it does so after, outside it. */
static int flush_batch(series *s, cb_error *err)
{
    sqlite3 *c = db_sqlite(s->fdb);
    struct flush_stmts f;
    pthread_mutex_lock(&s->lock);
    struct batch b = s->batch; /* a shallow copy: the arrays stay the batch's */
    pthread_mutex_unlock(&s->lock);
    int rc = prepare_flush(s->fdb, &f);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(c, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = store_batch(&f, &b);
    if (rc == SQLITE_OK) {
        pthread_mutex_lock(&s->lock);
        rc = sqlite3_exec(c, "COMMIT", NULL, NULL, NULL);
        if (rc == SQLITE_OK) {
            s->flushed_chunks += b.npend;
            s->persisted = b.ids_to;
            s->replay_lsn = b.lsn + 1;
            batch_clear(s);
        }
        pthread_mutex_unlock(&s->lock);
    }
    int out = rc == SQLITE_OK ? 0 : db_error(s->fdb, rc, "series flush", err);
    if (rc != SQLITE_OK && !sqlite3_get_autocommit(c))
        sqlite3_exec(c, "ROLLBACK", NULL, NULL, NULL);
    finalize_flush(&f);
    /* A batch can be large: give its pages back to the database file. PASSIVE
     * copies what it can without waiting (TRUNCATE would wait for every reader
     * and writer); the WAL is then reused from its start, and cut back to
     * journal_size_limit (open_flusher) when this connection restarts it. */
    if (out == 0)
        sqlite3_wal_checkpoint_v2(c, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    return out;
}

/* Flusher thread, after each stored batch: one bounded step of retention on
 * its own connection, so deleting old history never holds up ingest. */
static void retention_step(series *s, series_keep_fn keep, void *arg)
{
    uint64_t deleted = 0;
    int wrapped = 0;
    cb_error e;
    if (series_retention(s, s->fdb, clock_now_ms(), keep, arg, &deleted, &wrapped, &e) != 0)
        log_event(LOG_WARN, "retention", "error=%s msg=\"%s\"", cb_err_name(e.code), e.message);
    else if (deleted)
        log_event(LOG_INFO, "retention", "deleted_rows=%llu", (unsigned long long)deleted);
}

void series_set_retention(series *s, series_keep_fn keep, void *arg)
{
    pthread_mutex_lock(&s->lock);
    s->keep = keep;
    s->keep_arg = arg;
    pthread_mutex_unlock(&s->lock);
}

static void *flusher_main(void *arg)
{
    series *s = arg;
    pthread_mutex_lock(&s->lock);
    for (;;) {
        while (!(s->batch.inflight && s->batch.go) && !s->stopping) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += 1;
            if (pthread_cond_timedwait(&s->cond, &s->lock, &ts) != 0 && s->batch.inflight)
                s->batch.go = 1; /* an idle writer: a second after the seal */
        }
        if (!s->batch.inflight)
            break; /* stopping, nothing in flight */
        int stopping = s->stopping;
        series_keep_fn keep = s->keep;
        void *keep_arg = s->keep_arg;
        pthread_mutex_unlock(&s->lock);
        cb_error e;
        int rc = flush_batch(s, &e);
        if (rc == 0 && keep)
            retention_step(s, keep, keep_arg);
        pthread_mutex_lock(&s->lock);
        if (rc != 0) { /* kept in flight: retried in a second; the WAL still holds it */
            s->flush_rc = rc;
            s->flush_err = e;
            if (stopping)
                break;
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += 1;
            pthread_cond_timedwait(&s->cond, &s->lock, &ts);
        }
        pthread_cond_broadcast(&s->cond);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

/* ---- retention (the flusher thread, or a caller's) ----
 * A chunk row holds raw points (blob) and the rollups of its hours (roll).
 * When raw retention ends, the blob is emptied and the row stays for its
 * rollups; when the rollups' retention ends too, the row goes. */

struct retention_stmts {
    sqlite3_stmt *del, *empty;
};

/* One series; *emptied_to is how far its points were emptied (in: before
 * this step, INT64_MIN = unknown; out: after it). */
static int retention_series(struct retention_stmts *r, uint32_t sid, int64_t now_ms, const struct series_keep *k,
                            int64_t *emptied_to, uint64_t *deleted)
{
    int rc = SQLITE_OK;
    if (!k->raw_ms)
        return rc;
    int64_t raw_cut = now_ms - k->raw_ms;
    if (k->rollup_ms) { /* rows whose raw points and hours have all expired */
        int64_t roll_cut = series__floor(now_ms - k->rollup_ms, SERIES_ROLLUP_MS);
        int64_t cut = roll_cut < raw_cut ? roll_cut : raw_cut;
        sqlite3_bind_int64(r->del, 1, sid);
        sqlite3_bind_int64(r->del, 2, cut);
        sqlite3_bind_int64(r->del, 3, (sqlite3_int64)(SERIES_RETENTION_ROWS - *deleted));
        rc = step_reset(r->del);
        if (rc == SQLITE_OK)
            *deleted += (uint64_t)sqlite3_changes(sqlite3_db_handle(r->del));
    }
    if (rc != SQLITE_OK || *deleted >= SERIES_RETENTION_ROWS)
        return rc;
    uint64_t before = *deleted;
    sqlite3_bind_int64(r->empty, 1, sid);
    sqlite3_bind_int64(r->empty, 2, raw_cut);
    sqlite3_bind_int64(r->empty, 3, (sqlite3_int64)(SERIES_RETENTION_ROWS - *deleted));
    sqlite3_bind_int64(r->empty, 4, *emptied_to == INT64_MIN ? INT64_MIN : *emptied_to - SERIES_WINDOW_MS);
    rc = step_reset(r->empty);
    if (rc == SQLITE_OK)
        *deleted += (uint64_t)sqlite3_changes(sqlite3_db_handle(r->empty));
    if (rc == SQLITE_OK && *deleted - before < SERIES_RETENTION_ROWS - before)
        *emptied_to = raw_cut; /* all emptied up to it: later passes start there */
    return rc;
}

static int retention_walk(series *s, struct retention_stmts *r, int64_t now_ms, series_keep_fn keep, void *arg,
                          uint64_t *deleted, int *wrapped, cb_error *err)
{
    int rc = SQLITE_OK;
    for (uint32_t visited = 0; rc == SQLITE_OK && visited < SERIES_RETENTION_SERIES &&
                               *deleted < SERIES_RETENTION_ROWS; visited++) {
        uint32_t sid = s->retention_cursor, entity = 0;
        uint16_t attr = 0;
        int64_t emptied_to = INT64_MIN;
        pthread_mutex_lock(&s->lock); /* the heads may move while the writer adds series */
        int past_end = sid >= s->n;
        if (!past_end) {
            entity = s->heads[sid].entity;
            attr = s->heads[sid].attr;
            emptied_to = s->heads[sid].raw_cut;
        }
        pthread_mutex_unlock(&s->lock);
        if (past_end) {
            s->retention_cursor = 0;
            *wrapped = 1;
            break;
        }
        struct series_keep k = {0, 0};
        keep(arg, entity, attr, &k);
        if (k.raw_ms && k.raw_ms < SERIES_MIN_RAW_RETENTION_MS)
            return cb_error_set(err, CB_EINVALID_FIELD, "raw_ms", "raw retention of %lld ms is under one day",
                                (long long)k.raw_ms);
        rc = retention_series(r, sid, now_ms, &k, &emptied_to, deleted);
        pthread_mutex_lock(&s->lock);
        s->heads[sid].raw_cut = emptied_to;
        pthread_mutex_unlock(&s->lock);
        if (rc == SQLITE_OK && *deleted < SERIES_RETENTION_ROWS)
            s->retention_cursor++; /* else this series may hold more: come back to it */
    }
    return rc == SQLITE_OK ? 0 : rc;
}

int series_retention(series *s, db *d, int64_t now_ms, series_keep_fn keep, void *arg, uint64_t *deleted,
                     int *wrapped, cb_error *err)
{
    sqlite3 *c = db_sqlite(d);
    struct retention_stmts r = {NULL, NULL};
    uint32_t start = s->retention_cursor;
    *deleted = 0;
    *wrapped = 0;
    /* t_min < cut bounds the index range: a chunk with t_max < cut starts before it. */
    int rc = sqlite3_prepare_v2(c, "DELETE FROM chunk WHERE series = ?1 AND t_min IN (SELECT t_min FROM chunk "
                                "WHERE series = ?1 AND t_min < ?2 AND t_max < ?2 ORDER BY t_min LIMIT ?3)",
                                -1, &r.del, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(c, "UPDATE chunk SET blob = X'' WHERE series = ?1 AND t_min IN (SELECT t_min "
                                "FROM chunk WHERE series = ?1 AND t_min >= ?4 AND t_min < ?2 AND t_max < ?2 "
                                "AND length(blob) > 0 ORDER BY t_min LIMIT ?3)", -1, &r.empty, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(c, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    int out = 0;
    if (rc == SQLITE_OK) {
        rc = retention_walk(s, &r, now_ms, keep, arg, deleted, wrapped, err);
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
        /* nothing was emptied after all: the series visited start over */
        pthread_mutex_lock(&s->lock);
        for (uint32_t i = start; i < s->n && (*wrapped || i <= s->retention_cursor); i++)
            s->heads[i].raw_cut = INT64_MIN;
        pthread_mutex_unlock(&s->lock);
    }
    sqlite3_finalize(r.del);
    sqlite3_finalize(r.empty);
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
    out->pending_chunks = s->npend + s->batch.npend;
    out->flushed_chunks = s->flushed_chunks;
    out->split_aggregates = s->split_aggregates;
    out->head_bytes = sizeof *s + (size_t)s->cap * sizeof *s->heads + (s->slots ? (s->mask + 1) * 4u : 0) +
                      (size_t)s->cappend * sizeof *s->pend;
    for (uint32_t i = 0; i < s->n; i++) {
        out->open_points += codec_appender_stats(&s->heads[i].app)->n;
        out->head_bytes += codec_appender_mem(&s->heads[i].app) - sizeof(codec_appender);
    }
    for (uint32_t i = 0; i < s->npend; i++)
        out->head_bytes += s->pend[i].len + s->pend[i].rolls_len;
    for (uint32_t i = 0; i < s->batch.npend; i++)
        out->head_bytes += s->batch.pend[i].len + s->batch.pend[i].rolls_len;
    pthread_mutex_unlock(&s->lock);
}
