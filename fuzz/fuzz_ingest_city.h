/* fuzz_ingest_city — the small city the ingest fuzzers parse against: a
 * temporary data directory with three entities (urn:fz:0 is a device) and an
 * ingest context, opened through the public APIs in app_open_city's order,
 * once per process, and removed at exit. Shared by fuzz_ingest_json.c and
 * fuzz_ingest_telemetry.c; each includes it once (static functions). */
#ifndef FUZZ_INGEST_CITY_H
#define FUZZ_INGEST_CITY_H

#include "core/config.h"
#include "core/log.h"
#include "entity/entity.h"
#include "geo/region_store.h"
#include "ingest/ingest.h"
#include "state/dict.h"
#include "state/state.h"
#include "store/db.h"

#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "require.h"

#define CITY_ENTITIES 3

static struct fuzz_city {
    char dir[64];
    struct cb_config cfg;
    db *db, *regions_db;
    region_store *regions;
    dict *names;
    state *st;
    entities *ents;
    ingest *in;
    series *hist;
    uint32_t no[CITY_ENTITIES]; /* entity numbers of urn:fz:0..2 */
    struct principal device;    /* urn:fz:0's token */
} city;

static int city_rm(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static void city_close(void)
{
    ingest_close(city.in);
    series_close(city.hist);
    entities_close(city.ents);
    state_destroy(city.st);
    dict_close(city.names);
    region_store_close(city.regions);
    db_close(city.regions_db);
    db_close(city.db);
    nftw(city.dir, city_rm, 16, FTW_DEPTH | FTW_PHYS);
}

static void city_open(void)
{
    cb_error err;
    log_set_level(LOG_ERROR);
    snprintf(city.dir, sizeof city.dir, "/tmp/cb_fuzz_ingest_XXXXXX");
    REQUIRE(mkdtemp(city.dir));
    atexit(city_close);
    config_defaults(&city.cfg);
    snprintf(city.cfg.data_dir, sizeof city.cfg.data_dir, "%s", city.dir);
    city.cfg.wal_fsync = WAL_FSYNC_OFF; /* nothing is submitted, but the WAL opens */
    REQUIRE(db_open(city.dir, &city.db, &err) == 0);
    REQUIRE(db_open(city.dir, &city.regions_db, &err) == 0);
    REQUIRE(region_store_open(city.regions_db, &city.regions, &err) == 0);
    REQUIRE(dict_open(city.dir, &city.names, &err) == 0);
    REQUIRE(state_create(&city.st, &err) == 0);
    REQUIRE(entities_open(city.db, city.st, city.names, city.regions, &city.ents, &err) == 0);
    for (int i = 0; i < CITY_ENTITIES; i++) {
        char id[32];
        snprintf(id, sizeof id, "urn:fz:%d", i);
        json_t *in = json_pack("{s:s, s:s, s:[f,f], s:b}", "id", id, "type", i ? "Vehicle" : "AirQualityObserved",
                               "location", 113.23, 35.24, "device", i == 0), *out = NULL;
        REQUIRE(entity_create(city.ents, in, "", &out, &err) == 0);
        if (i == 0)
            REQUIRE(entity_authenticate(city.ents, json_string_value(json_object_get(out, "token")), &city.device,
                                        &err) == 0);
        json_decref(in);
        json_decref(out);
        city.no[i] = state_find(city.st, id);
        REQUIRE(city.no[i] != STATE_NONE);
    }
    REQUIRE(city.device.role == ROLE_DEVICE && city.device.entity == city.no[0]);
    REQUIRE(series_open(city.db, &city.hist, &err) == 0);
    REQUIRE(ingest_open(&city.cfg, city.ents, city.hist, &city.in, &err) == 0);
}

/* What every accepted reading must look like once decoded from the batch. */
struct city_check {
    uint32_t only_entity; /* STATE_NONE: any of the city's */
    int64_t lo, hi;       /* the time window ingest enforces */
    size_t items;
};

static int city_check_item(void *arg, const struct batch_item *it)
{
    struct city_check *c = arg;
    c->items++;
    REQUIRE(c->only_entity == STATE_NONE || it->entity == c->only_entity);
    int known = 0;
    for (int i = 0; i < CITY_ENTITIES; i++)
        known |= it->entity == city.no[i];
    REQUIRE(known);
    REQUIRE(it->ts_ms >= c->lo && it->ts_ms <= c->hi);
    switch (it->kind) {
    case BATCH_NUM: REQUIRE(isfinite(it->num)); break;
    case BATCH_BOOL: REQUIRE(it->num == 0 || it->num == 1); break;
    case BATCH_STR: REQUIRE(it->len <= BATCH_STR_MAX && (it->len == 0 || it->str)); break;
    case BATCH_LOC: REQUIRE(it->num >= -180 && it->num <= 180 && it->lat >= -90 && it->lat <= 90); break;
    default: REQUIRE(!"unknown kind");
    }
    if (it->kind != BATCH_LOC)
        REQUIRE(dict_name(city.names, DICT_ATTR, it->attr) != NULL);
    return 0;
}

/* Checks a parse's result: the report against the batch, the batch decoded
 * back item by item, the report's JSON; then frees both. */
static void city_check_parse(int rc, const cb_error *err, batch *b, struct ingest_report *rep, uint32_t only_entity,
                             int64_t t0, int64_t t1)
{
    if (rc != 0) {
        REQUIRE(cb_err_valid(rc) && err->code == rc && err->message[0]);
        REQUIRE(b->count == 0 || rc == CB_ETOO_LARGE);
    } else if (!b->failed) {
        REQUIRE(b->count == rep->accepted);
        struct city_check c = {only_entity, t0 - (int64_t)city.cfg.max_past_s * 1000,
                               t1 + (int64_t)city.cfg.max_future_s * 1000, 0};
        cb_error derr;
        if (b->count)
            REQUIRE(batch_decode(b->data, b->len, city_check_item, &c, &derr) == 0);
        REQUIRE(c.items == b->count);
        size_t nerr = json_array_size(rep->errors);
        REQUIRE(nerr <= INGEST_REPORT_MAX_ERRORS && nerr <= rep->rejected);
        REQUIRE(rep->rejected == 0 || nerr > 0); /* a rejection is never silent */
        size_t i;
        json_t *e;
        json_array_foreach(rep->errors, i, e)
            REQUIRE(json_is_integer(json_object_get(e, "index")) && json_is_string(json_object_get(e, "field")) &&
                    json_string_length(json_object_get(e, "message")) > 0);
        int status;
        json_t *body = ingest_report_json(rep, &status);
        REQUIRE(body && (status == 200) == (rep->accepted > 0));
        REQUIRE((json_object_get(body, "error") != NULL) == (status == 400));
        char *text = json_dumps(body, JSON_COMPACT);
        REQUIRE(text);
        free(text);
        json_decref(body);
    }
    batch_free(b);
    ingest_report_free(rep);
}

#endif
