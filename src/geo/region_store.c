/* region_store — see region_store.h. */
#include "geo/region_store.h"

#include "core/clock.h"
#include "geo/grid.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct region_store {
    pthread_mutex_t lock;
    db *db;
    region_set *set;
    json_t *index[REGION_LEVEL_COUNT]; /* code -> index in the level */
};

static void index_from(region_store *rs, enum region_level level, size_t from)
{
    size_t n = region_set_count(rs->set, level);
    for (size_t i = from; i < n; i++)
        json_object_set_new(rs->index[level], region_code(region_set_at(rs->set, level, i)),
                            json_integer((json_int_t)i));
}

static int load_level(region_store *rs, enum region_level level, cb_error *err)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db_sqlite(rs->db),
                                "SELECT code, name, parent, wkb FROM region WHERE level = ?1 ORDER BY rowid",
                                -1, &st, NULL);
    if (rc != SQLITE_OK)
        return db_error(rs->db, rc, "loading regions", err);
    sqlite3_bind_text(st, 1, region_level_name(level), -1, SQLITE_STATIC);
    int out = 0;
    while (out == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct region_def def = {(const char *)sqlite3_column_text(st, 0),
                                 (const char *)sqlite3_column_text(st, 1),
                                 (const char *)sqlite3_column_text(st, 2), level};
        out = region_set_add_wkb(rs->set, &def, sqlite3_column_blob(st, 3),
                                 (size_t)sqlite3_column_bytes(st, 3), err);
    }
    sqlite3_finalize(st);
    if (out == 0 && rc != SQLITE_DONE)
        out = db_error(rs->db, rc, "loading regions", err);
    return out;
}

int region_store_open(db *d, region_store **out, cb_error *err)
{
    region_store *rs = calloc(1, sizeof *rs);
    if (!rs || !(rs->set = region_set_create())) {
        free(rs);
        return cb_error_set(err, CB_ENOMEM, NULL, NULL);
    }
    pthread_mutex_init(&rs->lock, NULL);
    rs->db = d;
    int rc = 0;
    for (int l = 0; l < REGION_LEVEL_COUNT && rc == 0; l++) {
        rs->index[l] = json_object();
        rc = load_level(rs, (enum region_level)l, err);
        if (rc == 0)
            index_from(rs, (enum region_level)l, 0);
    }
    if (rc != 0) {
        region_store_close(rs);
        return rc;
    }
    *out = rs;
    return 0;
}

void region_store_close(region_store *rs)
{
    if (!rs)
        return;
    for (int l = 0; l < REGION_LEVEL_COUNT; l++)
        json_decref(rs->index[l]);
    region_set_free(rs->set);
    pthread_mutex_destroy(&rs->lock);
    free(rs);
}

static int save_one(region_store *rs, sqlite3_stmt *st, const region *r, cb_error *err)
{
    size_t len;
    unsigned char *wkb = region_to_wkb(rs->set, r, &len);
    if (!wkb)
        return cb_error_set(err, CB_ENOMEM, NULL, NULL);
    sqlite3_reset(st);
    sqlite3_bind_text(st, 1, region_code(r), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, region_name(r), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, region_level_name(region_level_of(r)), -1, SQLITE_STATIC);
    if (*region_parent(r))
        sqlite3_bind_text(st, 4, region_parent(r), -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 4);
    sqlite3_bind_blob(st, 5, wkb, (int)len, free);
    sqlite3_bind_int64(st, 6, clock_now_ms());
    int rc = sqlite3_step(st);
    return rc == SQLITE_DONE ? 0 : db_error(rs->db, rc, "storing a region", err);
}

/* Stores the regions of level added since index `from`, in one transaction. */
static int save_new(region_store *rs, enum region_level level, size_t from, cb_error *err)
{
    sqlite3_stmt *st;
    int rc = db_exec(rs->db, "BEGIN IMMEDIATE", err);
    if (rc != 0)
        return rc;
    int prc = sqlite3_prepare_v2(db_sqlite(rs->db),
                                 "INSERT INTO region (code, name, level, parent, wkb, imported_at) "
                                 "VALUES (?1, ?2, ?3, ?4, ?5, ?6)", -1, &st, NULL);
    if (prc != SQLITE_OK)
        rc = db_error(rs->db, prc, "storing regions", err);
    size_t n = region_set_count(rs->set, level);
    for (size_t i = from; rc == 0 && i < n; i++)
        rc = save_one(rs, st, region_set_at(rs->set, level, i), err);
    sqlite3_finalize(st);
    if (rc == 0)
        return db_exec(rs->db, "COMMIT", err);
    sqlite3_exec(db_sqlite(rs->db), "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

int region_store_import(region_store *rs, const char *data, size_t len,
                        const struct region_import_opts *opts, struct region_import_stats *st,
                        cb_error *err)
{
    pthread_mutex_lock(&rs->lock);
    size_t before = region_set_count(rs->set, opts->level);
    int rc = region_set_import_geojson(rs->set, data, len, opts, st, err);
    if (rc == 0)
        rc = save_new(rs, opts->level, before, err);
    if (rc == 0)
        index_from(rs, opts->level, before);
    pthread_mutex_unlock(&rs->lock);
    return rc;
}

int region_store_grid(region_store *rs, const char *district, double cell_m, size_t *count,
                      cb_error *err)
{
    pthread_mutex_lock(&rs->lock);
    size_t before = region_set_count(rs->set, REGION_GRID);
    int rc = grid_generate(rs->set, district, cell_m, count, err);
    if (rc == 0)
        rc = save_new(rs, REGION_GRID, before, err);
    if (rc == 0)
        index_from(rs, REGION_GRID, before);
    pthread_mutex_unlock(&rs->lock);
    return rc;
}

static uint32_t index_locked(region_store *rs, enum region_level level, const char *code)
{
    json_t *i = json_object_get(rs->index[level], code);
    return i ? (uint32_t)json_integer_value(i) : REGION_INDEX_NONE;
}

void region_store_locate(region_store *rs, double lon, double lat, uint32_t *district,
                         uint32_t *grid)
{
    const region *d = NULL, *g = NULL;
    pthread_mutex_lock(&rs->lock);
    region_locate(rs->set, lon, lat, REGION_DISTRICT, &d);
    region_locate(rs->set, lon, lat, REGION_GRID, &g);
    *district = d ? index_locked(rs, REGION_DISTRICT, region_code(d)) : REGION_INDEX_NONE;
    *grid = g ? index_locked(rs, REGION_GRID, region_code(g)) : REGION_INDEX_NONE;
    pthread_mutex_unlock(&rs->lock);
}

uint32_t region_store_index(region_store *rs, enum region_level level, const char *code)
{
    pthread_mutex_lock(&rs->lock);
    uint32_t i = code ? index_locked(rs, level, code) : REGION_INDEX_NONE;
    pthread_mutex_unlock(&rs->lock);
    return i;
}

const char *region_store_code(region_store *rs, enum region_level level, uint32_t index,
                              char *out)
{
    out[0] = '\0';
    pthread_mutex_lock(&rs->lock);
    if (index != REGION_INDEX_NONE && index < region_set_count(rs->set, level))
        snprintf(out, REGION_CODE_MAX, "%s", region_code(region_set_at(rs->set, level, index)));
    pthread_mutex_unlock(&rs->lock);
    return out;
}

size_t region_store_count(region_store *rs, enum region_level level)
{
    pthread_mutex_lock(&rs->lock);
    size_t n = region_set_count(rs->set, level);
    pthread_mutex_unlock(&rs->lock);
    return n;
}

static json_t *summary(const region *r)
{
    double lon, lat;
    region_centroid(r, &lon, &lat);
    return json_pack("{s:s, s:s, s:s, s:s?, s:f, s:[f,f]}", "code", region_code(r), "name",
                     region_name(r), "level", region_level_name(region_level_of(r)), "parent",
                     *region_parent(r) ? region_parent(r) : NULL, "area_km2", region_area_km2(r),
                     "centroid", lon, lat);
}

json_t *region_store_list(region_store *rs, int level)
{
    json_t *arr = json_array();
    pthread_mutex_lock(&rs->lock);
    for (int l = 0; l < REGION_LEVEL_COUNT; l++) {
        if (level >= 0 && l != level)
            continue;
        size_t n = region_set_count(rs->set, (enum region_level)l);
        for (size_t i = 0; i < n; i++)
            json_array_append_new(arr, summary(region_set_at(rs->set, (enum region_level)l, i)));
    }
    pthread_mutex_unlock(&rs->lock);
    return arr;
}

json_t *region_store_geojson(region_store *rs, const char *code)
{
    pthread_mutex_lock(&rs->lock);
    const region *r = region_set_get(rs->set, code);
    json_t *out = r ? region_to_geojson(rs->set, r) : NULL;
    pthread_mutex_unlock(&rs->lock);
    return out;
}

json_t *region_store_locate_json(region_store *rs, double lon, double lat)
{
    const region *d = NULL, *g = NULL;
    pthread_mutex_lock(&rs->lock);
    region_locate(rs->set, lon, lat, REGION_DISTRICT, &d);
    region_locate(rs->set, lon, lat, REGION_GRID, &g);
    json_t *out = json_pack("{s:o, s:o}", "district", d ? summary(d) : json_null(), "grid",
                            g ? summary(g) : json_null());
    pthread_mutex_unlock(&rs->lock);
    return out;
}
