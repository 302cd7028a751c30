/* entity_persist — loading the registry into the state at start-up, and the
 * checkpoint that stores what the WAL has changed since (values, counters,
 * places of moving entities) so the WAL can be truncated. */
#include "entity_int.h"

#include <math.h>
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
    int rc = entity__load(e, err);
    if (rc != 0) {
        free(e);
        return rc;
    }
    *out = e;
    return 0;
}

void entities_close(entities *e)
{
    free(e);
}

/* --- checkpoint (writer thread) --- */

struct checkpoint_stmts {
    sqlite3_stmt *value, *stat, *place;
};

static int prepare_checkpoint(db *d, struct checkpoint_stmts *s, cb_error *err)
{
    memset(s, 0, sizeof *s);
    int rc = sqlite3_prepare_v2(db_sqlite(d),
                                "INSERT INTO latest (no, attr, kind, ts, num, str) VALUES (?1, ?2, ?3, ?4, ?5, ?6) "
                                "ON CONFLICT (no, attr) DO UPDATE SET kind = excluded.kind, ts = excluded.ts, "
                                "num = excluded.num, str = excluded.str", -1, &s->value, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(db_sqlite(d),
                                "INSERT INTO entity_stat (no, readings, last_seen) VALUES (?1, ?2, ?3) "
                                "ON CONFLICT (no) DO UPDATE SET readings = excluded.readings, "
                                "last_seen = excluded.last_seen", -1, &s->stat, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(db_sqlite(d), "UPDATE entity SET lon = ?2, lat = ?3 WHERE no = ?1 "
                                "AND (lon IS NOT ?2 OR lat IS NOT ?3)", -1, &s->place, NULL);
    return rc == SQLITE_OK ? 0 : db_error(d, rc, "preparing checkpoint", err);
}

static void finalize_checkpoint(struct checkpoint_stmts *s)
{
    sqlite3_finalize(s->value);
    sqlite3_finalize(s->stat);
    sqlite3_finalize(s->place);
}

static int step_reset(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : rc;
}

static int store_entity(struct checkpoint_stmts *s, uint32_t no, const struct state_entity *se)
{
    int rc = 0;
    for (uint16_t i = 0; rc == 0 && i < se->nvalues; i++) {
        const struct state_value *v = &se->values[i];
        sqlite3_bind_int64(s->value, 1, no);
        sqlite3_bind_int(s->value, 2, v->attr);
        sqlite3_bind_int(s->value, 3, v->kind);
        sqlite3_bind_int64(s->value, 4, v->ts_ms);
        if (v->kind == STATE_STR) {
            sqlite3_bind_null(s->value, 5);
            sqlite3_bind_text(s->value, 6, v->v.str, -1, SQLITE_STATIC);
        } else {
            sqlite3_bind_double(s->value, 5, v->kind == STATE_BOOL ? v->v.boolean : v->v.num);
            sqlite3_bind_null(s->value, 6);
        }
        rc = step_reset(s->value);
    }
    sqlite3_bind_int64(s->stat, 1, no);
    sqlite3_bind_int64(s->stat, 2, (sqlite3_int64)se->readings);
    sqlite3_bind_int64(s->stat, 3, se->last_seen_ms);
    if (rc == 0)
        rc = step_reset(s->stat);
    if (rc == 0 && !isnan(se->lon)) {
        sqlite3_bind_int64(s->place, 1, no);
        sqlite3_bind_double(s->place, 2, se->lon);
        sqlite3_bind_double(s->place, 3, se->lat);
        rc = step_reset(s->place);
    }
    return rc;
}

static int store_dirty(entities *e, db *d, struct checkpoint_stmts *s, cb_error *err)
{
    int rc = 0;
    state_rdlock(e->st);
    for (uint32_t no = 0; rc == 0 && no < state_slots(e->st); no++) {
        const struct state_entity *se = state_get(e->st, no);
        if (!se || !se->dirty)
            continue;
        rc = store_entity(s, no, se);
        if (rc == 0)
            state_clear_dirty(e->st, no); /* only the writer thread sets dirty */
    }
    state_unlock(e->st);
    return rc ? db_error(d, rc, "checkpoint", err) : 0;
}

int entity_checkpoint(entities *e, db *d, uint64_t lsn, cb_error *err)
{
    struct checkpoint_stmts s;
    int rc = prepare_checkpoint(d, &s, err);
    if (rc == 0)
        rc = db_exec(d, "BEGIN IMMEDIATE", err);
    if (rc == 0) {
        rc = store_dirty(e, d, &s, err);
        char sql[128];
        snprintf(sql, sizeof sql, "INSERT OR REPLACE INTO meta (key, value) VALUES ('checkpoint_lsn', '%llu')",
                 (unsigned long long)lsn);
        if (rc == 0)
            rc = db_exec(d, sql, err);
        if (rc == 0)
            rc = db_exec(d, "COMMIT", err);
        else
            sqlite3_exec(db_sqlite(d), "ROLLBACK", NULL, NULL, NULL);
    }
    finalize_checkpoint(&s);
    if (rc == 0)
        e->checkpoint_lsn = lsn;
    return rc;
}
