/* entity_persist — loading the registry into the state at start-up, and the
 * checkpoint that stores what the WAL has changed since (values, counters,
 * places of moving entities) so the WAL can be truncated. */
#include "entity_int.h"

#include "core/clock.h"

#include <assert.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int load_types(entities *e, cb_error *err)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db_sqlite(e->db), "SELECT name, heartbeat_s FROM entity_type", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return db_error(e->db, rc, "loading types", err);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        uint16_t id;
        if (dict_id(e->names, DICT_TYPE, (const char *)sqlite3_column_text(st, 0), 1, &id, "type", NULL) == 0)
            e->heartbeat[id] = sqlite3_column_int(st, 1);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : db_error(e->db, rc, "loading types", err);
}

static int load_one(entities *e, sqlite3_stmt *st, cb_error *err)
{
    struct state_entity meta;
    memset(&meta, 0, sizeof meta);
    uint32_t no = (uint32_t)sqlite3_column_int64(st, 0);
    const char *id = (const char *)sqlite3_column_text(st, 1);
    int rc = dict_id(e->names, DICT_TYPE, (const char *)sqlite3_column_text(st, 2), 1, &meta.type, "type", err);
    if (rc == 0 && sqlite3_column_type(st, 5) != SQLITE_NULL)
        rc = dict_id(e->names, DICT_DEPARTMENT, (const char *)sqlite3_column_text(st, 5), 1,
                     &meta.department, "department", err);
    if (rc != 0)
        return rc;
    int has_loc = sqlite3_column_type(st, 3) != SQLITE_NULL;
    entity__locate(e, has_loc ? sqlite3_column_double(st, 3) : NAN,
                   has_loc ? sqlite3_column_double(st, 4) : NAN, &meta);
    meta.heartbeat_s = sqlite3_column_int(st, 6);
    return state_put(e->st, no, id, &meta, err);
}

static int load_entities(entities *e, cb_error *err)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db_sqlite(e->db),
                                "SELECT no, id, type, lon, lat, department, heartbeat_s FROM entity ORDER BY no",
                                -1, &st, NULL);
    if (rc != SQLITE_OK)
        return db_error(e->db, rc, "loading entities", err);
    int out = 0;
    while (out == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW)
        out = load_one(e, st, err);
    sqlite3_finalize(st);
    return out ? out : rc == SQLITE_DONE ? 0 : db_error(e->db, rc, "loading entities", err);
}

static int load_values(entities *e, cb_error *err)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db_sqlite(e->db), "SELECT no, attr, kind, ts, num, str FROM latest", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return db_error(e->db, rc, "loading values", err);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int kind = sqlite3_column_int(st, 2);
        const char *str = (const char *)sqlite3_column_text(st, 5);
        if (kind < STATE_NUM || kind > STATE_BOOL || (kind == STATE_STR && !str))
            continue;
        state_set_value(e->st, (uint32_t)sqlite3_column_int64(st, 0), (uint16_t)sqlite3_column_int(st, 1),
                        (enum state_kind)kind, sqlite3_column_int64(st, 3), sqlite3_column_double(st, 4),
                        str, str ? strlen(str) : 0);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return db_error(e->db, rc, "loading values", err);
    rc = sqlite3_prepare_v2(db_sqlite(e->db), "SELECT no, readings, last_seen FROM entity_stat", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return db_error(e->db, rc, "loading counters", err);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        state_set_counters(e->st, (uint32_t)sqlite3_column_int64(st, 0), (uint64_t)sqlite3_column_int64(st, 1),
                           sqlite3_column_int64(st, 2));
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : db_error(e->db, rc, "loading counters", err);
}

static int load_checkpoint_lsn(entities *e, cb_error *err)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db_sqlite(e->db), "SELECT value FROM meta WHERE key = 'checkpoint_lsn'", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return db_error(e->db, rc, "loading checkpoint", err);
    if (sqlite3_step(st) == SQLITE_ROW)
        e->checkpoint_lsn = strtoull((const char *)sqlite3_column_text(st, 0), NULL, 10);
    sqlite3_finalize(st);
    return 0;
}

int entity__load(entities *e, cb_error *err)
{
    state_wrlock(e->st);
    int rc = load_types(e, err);
    if (rc == 0)
        rc = load_entities(e, err);
    if (rc == 0)
        rc = load_values(e, err);
    if (rc == 0)
        rc = load_checkpoint_lsn(e, err);
    for (uint32_t no = 0; rc == 0 && no < state_slots(e->st); no++)
        state_clear_dirty(e->st, no);
    state_unlock(e->st);
    return rc;
}

int entities_open(db *d, state *st, dict *names, region_store *regions, entities **out, cb_error *err)
{
    entities *e = calloc(1, sizeof *e);
    if (!e)
        return cb_error_set(err, CB_ENOMEM, NULL, NULL);
    e->db = d;
    e->st = st;
    e->names = names;
    e->regions = regions;
    pthread_mutex_init(&e->flush_lock, NULL);
    pthread_cond_init(&e->flush_cond, NULL);
    int rc = entity__load(e, err);
    if (rc != 0) {
        entities_close(e);
        return rc;
    }
    *out = e;
    return 0;
}

void entities_close(entities *e)
{
    if (!e)
        return;
    entity_flusher_stop(e);
    pthread_cond_destroy(&e->flush_cond);
    pthread_mutex_destroy(&e->flush_lock);
    free(e);
}

/* --- checkpoints: sealed on the writer thread, stored by the flusher ---
 * A seal is a flat copy of what changed: one row per entity, its values in
 * one array and their strings in one text buffer, so sealing 100,000
 * entities is a few allocations and memcpy, and storing it needs no lock of
 * the state. Storing 100,000 entities takes SQLite ~0.3 s; done on the writer
 * thread it held up ingest for that long at every checkpoint. */

struct sealed_value {
    int64_t ts_ms;
    double num;        /* NUM, BOOL as 0/1 */
    size_t str;        /* STR: offset of its NUL-terminated copy in text */
    uint16_t attr;
    uint8_t kind;
};

struct sealed_entity {
    uint32_t no;
    uint32_t nvalues;
    size_t first;      /* its values: vals[first .. first + nvalues) */
    uint64_t readings;
    int64_t last_seen_ms;
    double lon, lat;   /* stored only with place */
    int place;
};

struct seal {
    uint64_t lsn;
    /* A place edited through the API after this millisecond (updated_at) is
     * not overwritten. An edit within it may be, until the next checkpoint:
     * the edit marked the entity again, and its place is stored then. */
    int64_t sealed_ms;
    struct sealed_entity *ents;
    size_t nents, capents;
    struct sealed_value *vals;
    size_t nvals, capvals;
    char *text;
    size_t ntext, captext;
    int nomem;
};

static void seal_free(struct seal *sl)
{
    if (!sl)
        return;
    free(sl->ents);
    free(sl->vals);
    free(sl->text);
    free(sl);
}

/* Room in *arr for `more` elements of `size` bytes after `used`: 0, or -1 (nomem set). */
static int grow(void **arr, size_t *cap, size_t used, size_t more, size_t size, int *nomem)
{
    if (used + more <= *cap)
        return 0;
    size_t c = *cap ? *cap : 1024;
    while (c < used + more)
        c *= 2;
    void *p = realloc(*arr, c * size);
    if (!p) {
        *nomem = 1;
        return -1;
    }
    *arr = p;
    *cap = c;
    return 0;
}

static void seal_entity(struct seal *sl, uint32_t no, const struct state_entity *se)
{
    if (grow((void **)&sl->ents, &sl->capents, sl->nents, 1, sizeof *sl->ents, &sl->nomem) ||
        grow((void **)&sl->vals, &sl->capvals, sl->nvals, se->nvalues, sizeof *sl->vals, &sl->nomem))
        return;
    struct sealed_entity *out = &sl->ents[sl->nents++];
    *out = (struct sealed_entity){.no = no, .nvalues = se->nvalues, .first = sl->nvals, .readings = se->readings,
                                  .last_seen_ms = se->last_seen_ms, .lon = se->lon, .lat = se->lat,
                                  .place = (se->dirty & STATE_DIRTY_PLACE) && !isnan(se->lon)};
    for (uint16_t i = 0; i < se->nvalues; i++) {
        const struct state_value *v = &se->values[i];
        struct sealed_value *sv = &sl->vals[sl->nvals++];
        *sv = (struct sealed_value){.ts_ms = v->ts_ms, .attr = v->attr, .kind = v->kind,
                                    .num = v->kind == STATE_BOOL ? v->v.boolean
                                           : v->kind == STATE_NUM ? v->v.num : 0};
        if (v->kind != STATE_STR)
            continue;
        size_t len = strlen(v->v.str) + 1;
        if (grow((void **)&sl->text, &sl->captext, sl->ntext, len, 1, &sl->nomem))
            return;
        memcpy(sl->text + sl->ntext, v->v.str, len);
        sv->str = sl->ntext;
        sl->ntext += len;
    }
}

/* Copies the changed entities as of lsn and clears their marks (writer
 * thread: only it and state_put, under the write lock, set them). NULL on
 * memory, with every mark kept. */
static struct seal *seal_dirty(entities *e, uint64_t lsn)
{
    struct seal *sl = calloc(1, sizeof *sl);
    if (!sl)
        return NULL;
    sl->lsn = lsn;
    sl->sealed_ms = clock_now_ms();
    state_rdlock(e->st);
    uint32_t n = state_slots(e->st);
    for (uint32_t no = 0; no < n && !sl->nomem; no++) {
        const struct state_entity *se = state_get(e->st, no);
        if (se && se->dirty)
            seal_entity(sl, no, se);
    }
    if (!sl->nomem)
        for (size_t i = 0; i < sl->nents; i++)
            state_clear_dirty(e->st, sl->ents[i].no);
    state_unlock(e->st);
    if (sl->nomem) {
        seal_free(sl);
        return NULL;
    }
    return sl;
}

struct store_stmts {
    sqlite3_stmt *exists, *value, *stat, *place, *lsn;
};

static void finalize_store(struct store_stmts *s)
{
    sqlite3_finalize(s->exists);
    sqlite3_finalize(s->value);
    sqlite3_finalize(s->stat);
    sqlite3_finalize(s->place);
    sqlite3_finalize(s->lsn);
}

static int prepare_store(db *d, struct store_stmts *s)
{
    static const char *const sql[5] = {
        "SELECT 1 FROM entity WHERE no = ?1",
        "INSERT INTO latest (no, attr, kind, ts, num, str) VALUES (?1, ?2, ?3, ?4, ?5, ?6) "
        "ON CONFLICT (no, attr) DO UPDATE SET kind = excluded.kind, ts = excluded.ts, "
        "num = excluded.num, str = excluded.str",
        "INSERT INTO entity_stat (no, readings, last_seen) VALUES (?1, ?2, ?3) "
        "ON CONFLICT (no) DO UPDATE SET readings = excluded.readings, last_seen = excluded.last_seen",
        "UPDATE entity SET lon = ?2, lat = ?3 WHERE no = ?1 AND (lon IS NOT ?2 OR lat IS NOT ?3) "
        "AND updated_at <= ?4",
        "INSERT OR REPLACE INTO meta (key, value) VALUES ('checkpoint_lsn', ?1)",
    };
    sqlite3_stmt **out[5] = {&s->exists, &s->value, &s->stat, &s->place, &s->lsn};
    memset(s, 0, sizeof *s);
    int rc = SQLITE_OK;
    for (int i = 0; i < 5 && rc == SQLITE_OK; i++)
        rc = sqlite3_prepare_v2(db_sqlite(d), sql[i], -1, out[i], NULL);
    return rc;
}

static int step_reset(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : rc;
}

/* One sealed entity, unless it was deleted since the seal (its rows went
 * with it, and must not come back). */
static int store_entity(struct store_stmts *s, const struct seal *sl, const struct sealed_entity *se)
{
    sqlite3_bind_int64(s->exists, 1, se->no);
    int rc = sqlite3_step(s->exists);
    sqlite3_reset(s->exists);
    if (rc != SQLITE_ROW)
        return rc == SQLITE_DONE ? 0 : rc;
    rc = 0;
    for (uint32_t i = 0; rc == 0 && i < se->nvalues; i++) {
        const struct sealed_value *v = &sl->vals[se->first + i];
        sqlite3_bind_int64(s->value, 1, se->no);
        sqlite3_bind_int(s->value, 2, v->attr);
        sqlite3_bind_int(s->value, 3, v->kind);
        sqlite3_bind_int64(s->value, 4, v->ts_ms);
        if (v->kind == STATE_STR) {
            sqlite3_bind_null(s->value, 5);
            sqlite3_bind_text(s->value, 6, sl->text + v->str, -1, SQLITE_STATIC);
        } else {
            sqlite3_bind_double(s->value, 5, v->num);
            sqlite3_bind_null(s->value, 6);
        }
        rc = step_reset(s->value);
    }
    sqlite3_bind_int64(s->stat, 1, se->no);
    sqlite3_bind_int64(s->stat, 2, (sqlite3_int64)se->readings);
    sqlite3_bind_int64(s->stat, 3, se->last_seen_ms);
    if (rc == 0)
        rc = step_reset(s->stat);
    if (rc == 0 && se->place) {
        sqlite3_bind_int64(s->place, 1, se->no);
        sqlite3_bind_double(s->place, 2, se->lon);
        sqlite3_bind_double(s->place, 3, se->lat);
        sqlite3_bind_int64(s->place, 4, sl->sealed_ms);
        rc = step_reset(s->place);
    }
    return rc;
}

/* Stores a seal in one transaction on d, with meta.checkpoint_lsn. */
static int store_seal(db *d, const struct seal *sl, cb_error *err)
{
    struct store_stmts s;
    int rc = prepare_store(d, &s);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db_sqlite(d), "BEGIN IMMEDIATE", NULL, NULL, NULL);
    for (size_t i = 0; rc == SQLITE_OK && i < sl->nents; i++)
        rc = store_entity(&s, sl, &sl->ents[i]);
    if (rc == SQLITE_OK) {
        char lsn[24];
        snprintf(lsn, sizeof lsn, "%llu", (unsigned long long)sl->lsn);
        sqlite3_bind_text(s.lsn, 1, lsn, -1, SQLITE_TRANSIENT);
        rc = step_reset(s.lsn);
    }
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db_sqlite(d), "COMMIT", NULL, NULL, NULL);
    int out = rc == SQLITE_OK ? 0 : db_error(d, rc, "checkpoint", err);
    if (!sqlite3_get_autocommit(db_sqlite(d)))
        sqlite3_exec(db_sqlite(d), "ROLLBACK", NULL, NULL, NULL);
    finalize_store(&s);
    return out;
}

/* A failed store: its entities are marked again, so the next seal has them. */
static void unseal(entities *e, const struct seal *sl)
{
    state_wrlock(e->st);
    for (size_t i = 0; i < sl->nents; i++)
        state_mark_dirty(e->st, sl->ents[i].no, sl->ents[i].place ? STATE_DIRTY | STATE_DIRTY_PLACE : STATE_DIRTY);
    state_unlock(e->st);
}

int entity_checkpoint(entities *e, db *d, uint64_t lsn, cb_error *err)
{
    assert(!e->flusher_running);
    struct seal *sl = seal_dirty(e, lsn);
    if (!sl)
        return cb_error_set(err, CB_ENOMEM, NULL, "out of memory sealing a checkpoint");
    int rc = store_seal(d, sl, err);
    if (rc == 0)
        e->checkpoint_lsn = lsn;
    else
        unseal(e, sl);
    seal_free(sl);
    return rc;
}

/* --- the flusher thread --- */

static void *flusher_main(void *arg)
{
    entities *e = arg;
    pthread_mutex_lock(&e->flush_lock);
    for (;;) {
        while (!e->inflight && !e->stopping)
            pthread_cond_wait(&e->flush_cond, &e->flush_lock);
        if (!e->inflight)
            break; /* stopping, nothing in flight */
        struct seal *sl = e->inflight;
        int stopping = e->stopping;
        pthread_mutex_unlock(&e->flush_lock);
        cb_error err;
        double t0 = clock_mono_s();
        int rc = store_seal(e->fdb, sl, &err);
        double took = clock_mono_s() - t0;
        pthread_mutex_lock(&e->flush_lock);
        e->last_store_s = took;
        if (rc == 0) {
            e->checkpoint_lsn = sl->lsn;
            e->stored_entities += sl->nents;
            e->inflight = NULL;
            seal_free(sl);
        } else { /* kept in flight and retried in a second; the WAL still holds it */
            e->flush_rc = rc;
            e->flush_err = err;
            if (stopping)
                break;
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += 1;
            pthread_cond_timedwait(&e->flush_cond, &e->flush_lock, &ts);
        }
        pthread_cond_broadcast(&e->flush_cond);
    }
    pthread_mutex_unlock(&e->flush_lock);
    return NULL;
}

int entity_flusher_start(entities *e, db *d, cb_error *err)
{
    assert(!e->flusher_running);
    e->fdb = d;
    e->stopping = 0;
    if (pthread_create(&e->flusher, NULL, flusher_main, e) != 0)
        return cb_error_set(err, CB_EINTERNAL, NULL, "cannot start the entity flusher thread");
    e->flusher_running = 1;
    return 0;
}

int entity_checkpoint_seal(entities *e, uint64_t lsn, cb_error *err)
{
    assert(e->flusher_running);
    pthread_mutex_lock(&e->flush_lock);
    int rc = e->flush_rc; /* the flusher's failure, reported once; it retries */
    if (rc != 0 && err)
        *err = e->flush_err;
    e->flush_rc = 0;
    int busy = e->inflight != NULL;
    pthread_mutex_unlock(&e->flush_lock);
    if (rc != 0 || busy)
        return rc; /* sealed nothing: the marks stay for the next checkpoint */
    struct seal *sl = seal_dirty(e, lsn);
    if (!sl)
        return cb_error_set(err, CB_ENOMEM, NULL, "out of memory sealing a checkpoint");
    pthread_mutex_lock(&e->flush_lock);
    e->inflight = sl;
    e->seals++;
    pthread_cond_broadcast(&e->flush_cond);
    pthread_mutex_unlock(&e->flush_lock);
    return 0;
}

void entity_flusher_stop(entities *e)
{
    if (!e || !e->flusher_running)
        return;
    pthread_mutex_lock(&e->flush_lock);
    e->stopping = 1;
    pthread_cond_broadcast(&e->flush_cond);
    pthread_mutex_unlock(&e->flush_lock);
    pthread_join(e->flusher, NULL);
    e->flusher_running = 0;
    if (e->inflight) { /* its store failed: mark its entities again for a last checkpoint */
        unseal(e, e->inflight);
        seal_free(e->inflight);
        e->inflight = NULL;
    }
}

uint64_t entities_checkpoint_lsn(entities *e)
{
    pthread_mutex_lock(&e->flush_lock);
    uint64_t lsn = e->checkpoint_lsn;
    pthread_mutex_unlock(&e->flush_lock);
    return lsn;
}

void entity_flusher_stats(entities *e, struct entity_flusher_stats *out)
{
    pthread_mutex_lock(&e->flush_lock);
    *out = (struct entity_flusher_stats){e->seals, e->stored_entities, e->last_store_s, e->inflight != NULL};
    pthread_mutex_unlock(&e->flush_lock);
}
