/* test_rules — the rules engine through its public API on a real data dir:
 * two square districts with 2 km grid cells, entities made by the registry,
 * readings applied to the state and handed to rules_applied the way the
 * ingest writer does, alarms read back from SQLite after rules_flush. */
#include "core/clock.h"
#include "core/log.h"
#include "entity/entity.h"
#include "rules/rules.h"
#include "test.h"
#include "test_city.h"

#include <math.h>

/* D1 is [113.0, 113.1] × [35.0, 35.1], D2 east of it. */
static const char squares[] =
    "{\"type\":\"FeatureCollection\",\"features\":["
    "{\"type\":\"Feature\",\"properties\":{\"code\":\"D1\",\"name\":\"一区\"},\"geometry\":{\"type\":\"Polygon\","
    "\"coordinates\":[[[113.0,35.0],[113.1,35.0],[113.1,35.1],[113.0,35.1],[113.0,35.0]]]}},"
    "{\"type\":\"Feature\",\"properties\":{\"code\":\"D2\",\"name\":\"二区\"},\"geometry\":{\"type\":\"Polygon\","
    "\"coordinates\":[[[113.1,35.0],[113.2,35.0],[113.2,35.1],[113.1,35.1],[113.1,35.0]]]}}]}";

struct city {
    struct test_city base;
    rules *r;
};

static int open_rules(struct city *c)
{
    cb_error err;
    int rc = rules_open(&c->base.cfg, c->base.ents, NULL, &c->r, &err);
    if (rc != 0)
        fprintf(stderr, "  rules_open: %s\n", err.message);
    return rc;
}

static int city_open(struct city *c)
{
    cb_error err;
    struct region_import_opts o = {.level = REGION_DISTRICT};
    size_t cells = 0;
    test_make_dir(c->base.dir);
    test_city_config(&c->base);
    int rc = test_city_open_store(&c->base, &err);
    if (rc == 0)
        rc = region_store_import(c->base.rs, squares, strlen(squares), &o, NULL, &err);
    if (rc == 0)
        rc = region_store_grid(c->base.rs, NULL, 2000, &cells, &err);
    if (rc == 0)
        rc = test_city_open_entities(&c->base, &err);
    if (rc != 0)
        fprintf(stderr, "  opening the city: %s\n", err.message);
    if (rc == 0)
        rc = open_rules(c);
    CHECK_INT(rc, 0);
    return rc;
}

static void city_close(struct city *c)
{
    rules_close(c->r);
    test_city_close(&c->base);
    test_remove_tree(c->base.dir);
}

static void entity(struct city *c, const char *id, const char *type, double lon, double lat)
{
    char text[512];
    snprintf(text, sizeof text, "{\"id\":\"%s\",\"type\":\"%s\",\"location\":[%f,%f],\"department\":\"SLJ\"}", id, type,
             lon, lat);
    json_t *in = json_loads(text, 0, NULL), *out = NULL;
    cb_error err;
    int rc = entity_create(c->base.ents, in, "", &out, &err);
    if (rc != 0)
        fprintf(stderr, "  entity_create %s: %s\n", id, err.message);
    CHECK_INT(rc, 0);
    json_decref(in);
    json_decref(out);
}

/* Applies one reading to the state and the rules, as ingest's writer does. */
static void feed(struct city *c, const struct batch_item *it)
{
    state_wrlock(c->base.st);
    if (it->kind == BATCH_LOC) {
        uint32_t d, g;
        region_store_locate(c->base.rs, it->num, it->lat, &d, &g);
        state_move(c->base.st, it->entity, it->ts_ms, it->num, it->lat, d, g);
    } else {
        state_set_value(c->base.st, it->entity, it->attr, it->kind == BATCH_BOOL ? STATE_BOOL : STATE_NUM, it->ts_ms, it->num,
                        NULL, 0);
    }
    rules_applied(c->r, it, state_get(c->base.st, it->entity));
    state_unlock(c->base.st);
}

static void num(struct city *c, const char *id, const char *attr, int64_t ts, double v)
{
    uint16_t a = 0;
    CHECK_INT(dict_id(c->base.names, DICT_ATTR, attr, 1, &a, "attr", NULL), 0);
    state_rdlock(c->base.st);
    uint32_t no = state_find(c->base.st, id);
    state_unlock(c->base.st);
    CHECK(no != STATE_NONE);
    struct batch_item it = {.entity = no, .attr = a, .kind = BATCH_NUM, .ts_ms = ts, .num = v};
    feed(c, &it);
}

static void loc(struct city *c, const char *id, int64_t ts, double lon, double lat)
{
    state_rdlock(c->base.st);
    uint32_t no = state_find(c->base.st, id);
    state_unlock(c->base.st);
    struct batch_item it = {.entity = no, .kind = BATCH_LOC, .ts_ms = ts, .num = lon, .lat = lat};
    feed(c, &it);
}

static int add_rule(struct city *c, const char *text, cb_error *err)
{
    json_t *def = json_loads(text, 0, NULL), *out = NULL;
    CHECK(def != NULL);
    int rc = rules_create(c->r, def, &out, err);
    json_decref(def);
    json_decref(out);
    return rc;
}

static void rule(struct city *c, const char *text)
{
    cb_error err;
    int rc = add_rule(c, text, &err);
    if (rc != 0)
        fprintf(stderr, "  rules_create: %s (%s)\n", err.message, err.field);
    CHECK_INT(rc, 0);
}

/* Alarms of rule in state (NULL: any), newest first; caller frees. */
static json_t *alarms(struct city *c, const char *rule_id, const char *st)
{
    rules_flush(c->r);
    struct alarm_filter f = {.state = st, .rule = rule_id};
    json_t *out = NULL;
    cb_error err;
    CHECK_INT(alarm_list(c->r, &f, &out, &err), 0);
    json_t *list = json_incref(json_object_get(out, "alarms"));
    json_decref(out);
    return list;
}

static size_t count(struct city *c, const char *rule_id, const char *st)
{
    json_t *a = alarms(c, rule_id, st);
    size_t n = json_array_size(a);
    json_decref(a);
    return n;
}

static const char *field_of(const json_t *list, size_t i, const char *name)
{
    return json_string_value(json_object_get(json_array_get(list, i), name));
}

#define WATER "{\"id\":\"water\",\"name\":\"水位超限\",\"kind\":\"threshold\",\"scope\":{\"type\":\"WaterLevelSensor\"}," \
              "\"attr\":\"level_m\",\"op\":\">\",\"value\":3.2,\"clear\":3.0,\"severity\":\"critical\",\"category\":\"防汛\""

/* --- tests --- */

/* The start of most tests: the city, one rule and one entity (id, type) at
 * 113.05, 35.05 in D1; *t is now. Non-zero: the city did not open (checked),
 * the test is over. */
static int city_start(struct city *c, const char *rule_text, const char *id, const char *type, int64_t *t)
{
    if (city_open(c) != 0)
        return -1;
    rule(c, rule_text);
    entity(c, id, type, 113.05, 35.05);
    *t = clock_now_ms();
    return 0;
}

static void expect_error(struct city *c, const char *text, int code, const char *field)
{
    cb_error err;
    int rc = add_rule(c, text, &err);
    CHECK_INT(rc, code);
    if (rc == code && strcmp(err.field, field) != 0)
        fprintf(stderr, "  field '%s', expected '%s' (%s)\n", err.field, field, err.message);
    CHECK_STR(err.field, field);
}

TEST(test_validation)
{
    struct city c = {0};
    if (city_open(&c) != 0)
        return;
    expect_error(&c, "{\"kind\":\"threshold\",\"attr\":\"a\",\"op\":\">\",\"value\":1,\"severity\":\"major\",\"category\":\"x\"}",
                 CB_EMISSING_FIELD, "name");
    expect_error(&c, "{\"name\":\"n\",\"kind\":\"magic\",\"severity\":\"major\",\"category\":\"x\"}", CB_EINVALID_FIELD, "kind");
    expect_error(&c, "{\"name\":\"n\",\"kind\":\"threshold\",\"attr\":\"a\",\"op\":\">\",\"value\":1,\"severity\":\"huge\","
                     "\"category\":\"x\"}", CB_EINVALID_FIELD, "severity");
    expect_error(&c, "{\"name\":\"n\",\"kind\":\"threshold\",\"attr\":\"a\",\"op\":\">\",\"value\":\"high\","
                     "\"severity\":\"major\",\"category\":\"x\"}", CB_EINVALID_FIELD, "value");
    expect_error(&c, "{\"name\":\"n\",\"kind\":\"threshold\",\"attr\":\"a\",\"op\":\">\",\"value\":3.2,\"clear\":3.5,"
                     "\"severity\":\"major\",\"category\":\"x\"}", CB_EINVALID_FIELD, "clear");
    expect_error(&c, "{\"name\":\"n\",\"kind\":\"threshold\",\"attr\":\"a\",\"op\":\">\",\"value\":1,\"window_s\":5,"
                     "\"severity\":\"major\",\"category\":\"x\"}", CB_EINVALID_FIELD, "window_s");
    expect_error(&c, "{\"name\":\"n\",\"kind\":\"threshold\",\"attr\":\"a\",\"op\":\">\",\"value\":1,\"severity\":\"major\","
                     "\"category\":\"x\",\"scope\":{\"district\":\"D9\"}}", CB_EINVALID_FIELD, "scope.district");
    expect_error(&c, "{\"name\":\"n\",\"kind\":\"geofence\",\"on\":\"exit\",\"severity\":\"major\",\"category\":\"x\","
                     "\"polygon\":{\"type\":\"Polygon\",\"coordinates\":[[[113,35],[113.1,35.1],[113.1,35],[113,35.1],[113,35]]]}}",
                 CB_EINVALID_FIELD, "polygon");
    expect_error(&c, "{\"name\":\"n\",\"kind\":\"geofence\",\"on\":\"exit\",\"severity\":\"major\",\"category\":\"x\","
                     "\"polygon\":{\"type\":\"Point\",\"coordinates\":[113,35]}}", CB_EINVALID_FIELD, "polygon");
    expect_error(&c, "{\"name\":\"n\",\"kind\":\"region_count\",\"attr\":\"smoke\",\"op\":\"==\",\"value\":1,\"count\":0,"
                     "\"window_s\":60,\"severity\":\"major\",\"category\":\"x\"}", CB_EINVALID_FIELD, "count");
    expect_error(&c, "{\"name\":\"n\",\"kind\":\"nodata\",\"severity\":\"major\",\"category\":\"x\"}", CB_EMISSING_FIELD,
                 "seconds");
    rule(&c, WATER "}");
    expect_error(&c, WATER "}", CB_ECONFLICT, "id");
    json_t *got = NULL;
    cb_error err;
    CHECK_INT(rules_get(c.r, "water", &got, &err), 0);
    CHECK_INT(json_is_true(json_object_get(got, "enabled")), 1);
    json_decref(got);
    CHECK_INT(rules_get(c.r, "nope", &got, &err), CB_ENOT_FOUND);
    city_close(&c);
}

TEST(test_threshold_hysteresis)
{
    struct city c = {0};
    int64_t t;
    if (city_start(&c, WATER "}", "w1", "WaterLevelSensor", &t) != 0)
        return;
    entity(&c, "a1", "AirQualityObserved", 113.05, 35.05); /* another type: not in scope */
    num(&c, "a1", "level_m", t, 9);
    num(&c, "w1", "level_m", t, 3.1);
    CHECK_INT(count(&c, "water", NULL), 0);
    num(&c, "w1", "level_m", t + 1000, 3.4);
    json_t *a = alarms(&c, "water", "open");
    CHECK_INT(json_array_size(a), 1);
    CHECK_STR(field_of(a, 0, "message"), "水位 3.40 m 超过阈值 3.2 m");
    CHECK_STR(field_of(a, 0, "district"), "D1");
    CHECK_STR(field_of(a, 0, "severity"), "critical");
    json_decref(a);
    num(&c, "w1", "level_m", t + 2000, 3.5);  /* still raised: no second alarm */
    num(&c, "w1", "level_m", t + 3000, 3.1);  /* between clear and value: stays */
    CHECK_INT(count(&c, "water", "active"), 1);
    num(&c, "w1", "level_m", t + 4000, 2.9);  /* below clear */
    CHECK_INT(count(&c, "water", "active"), 0);
    CHECK_INT(count(&c, "water", "cleared"), 1);
    num(&c, "w1", "level_m", t + 5000, 3.3);
    CHECK_INT(count(&c, "water", "open"), 1);
    CHECK_INT(count(&c, "water", NULL), 2);
    city_close(&c);
}

TEST(test_for_s_and_out_of_order)
{
    struct city c = {0};
    int64_t t;
    if (city_start(&c, "{\"id\":\"tilt\",\"name\":\"井盖倾斜\",\"kind\":\"threshold\",\"attr\":\"tilt_deg\",\"op\":\">=\",\"value\":15,"
             "\"for_s\":60,\"severity\":\"major\",\"category\":\"市政\"}", "m1", "ManholeCover", &t) != 0)
        return;
    num(&c, "m1", "tilt_deg", t, 20);
    num(&c, "m1", "tilt_deg", t + 30000, 25);
    CHECK_INT(count(&c, "tilt", NULL), 0);
    num(&c, "m1", "tilt_deg", t + 59999, 25); /* 1 ms short of for_s */
    CHECK_INT(count(&c, "tilt", NULL), 0);
    num(&c, "m1", "tilt_deg", t + 60000, 25); /* exactly for_s: raises */
    CHECK_INT(count(&c, "tilt", "open"), 1);
    num(&c, "m1", "tilt_deg", t + 10000, 1);  /* older than the newest: ignored */
    CHECK_INT(count(&c, "tilt", "open"), 1);
    num(&c, "m1", "tilt_deg", t + 70000, 1);  /* newer: clears */
    CHECK_INT(count(&c, "tilt", "open"), 0);
    /* a break in the condition restarts for_s */
    num(&c, "m1", "tilt_deg", t + 100000, 20);
    num(&c, "m1", "tilt_deg", t + 130000, 10);
    num(&c, "m1", "tilt_deg", t + 160000, 20);
    CHECK_INT(count(&c, "tilt", "open"), 0);
    num(&c, "m1", "tilt_deg", t + 220000, 20);
    CHECK_INT(count(&c, "tilt", "open"), 1);
    city_close(&c);
}

TEST(test_rate)
{
    struct city c = {0};
    int64_t t;
    if (city_start(&c, "{\"id\":\"drop\",\"name\":\"压力骤降\",\"kind\":\"rate\",\"attr\":\"pressure_mpa\",\"change_pct\":-30,"
             "\"window_s\":600,\"severity\":\"major\",\"category\":\"供水\"}", "p1", "PipePressure", &t) != 0)
        return;
    num(&c, "p1", "pressure_mpa", t, 0.40);
    num(&c, "p1", "pressure_mpa", t + 60000, 0.42);
    num(&c, "p1", "pressure_mpa", t + 120000, 0.30); /* -28.6 % from the max 0.42 */
    CHECK_INT(count(&c, "drop", NULL), 0);
    num(&c, "p1", "pressure_mpa", t + 180000, 0.29); /* -31 % */
    json_t *a = alarms(&c, "drop", "open");
    CHECK_INT(json_array_size(a), 1);
    CHECK(strstr(field_of(a, 0, "message") ? field_of(a, 0, "message") : "", "下降 31.0%") != NULL);
    json_decref(a);
    /* the 0.42 leaves the window: the drop is no longer within 10 minutes */
    num(&c, "p1", "pressure_mpa", t + 60000 + 600001, 0.29);
    CHECK_INT(count(&c, "drop", "active"), 0);
    /* a slow fall never raises */
    num(&c, "p1", "pressure_mpa", t + 2000000, 0.40);
    for (int i = 1; i <= 10; i++)
        num(&c, "p1", "pressure_mpa", t + 2000000 + i * 600000LL, 0.40 - 0.02 * i);
    CHECK_INT(count(&c, "drop", NULL), 1);
    city_close(&c);
}

TEST(test_nodata)
{
    struct city c = {0};
    int64_t t;
    if (city_start(&c, "{\"id\":\"offline\",\"name\":\"设备离线\",\"kind\":\"nodata\",\"seconds\":5,\"scope\":{\"type\":\"WaterLevelSensor\"},"
             "\"severity\":\"minor\",\"category\":\"运维\"}", "w1", "WaterLevelSensor", &t) != 0)
        return;
    entity(&c, "w2", "WaterLevelSensor", 113.05, 35.05); /* never reports: not offline */
    num(&c, "w1", "level_m", t, 1);
    rules_tick(c.r, t + 4000);
    CHECK_INT(count(&c, "offline", NULL), 0);
    rules_tick(c.r, t + 6000);
    json_t *a = alarms(&c, "offline", "open");
    CHECK_INT(json_array_size(a), 1);
    CHECK_STR(field_of(a, 0, "entity"), "w1");
    json_decref(a);
    rules_tick(c.r, t + 9000); /* still offline: one alarm */
    CHECK_INT(count(&c, "offline", NULL), 1);
    num(&c, "w1", "level_m", t + 10000, 1);
    CHECK_INT(count(&c, "offline", "active"), 0);
    CHECK_INT(count(&c, "offline", "cleared"), 1);
    city_close(&c);
}

#define CORRIDOR "{\"type\":\"Polygon\",\"coordinates\":[[[113.02,35.02],[113.08,35.02],[113.08,35.08],[113.02,35.08],[113.02,35.02]]]}"

TEST(test_geofence)
{
    struct city c = {0};
    if (city_open(&c) != 0)
        return;
    rule(&c, "{\"id\":\"out\",\"name\":\"危化品车辆走廊\",\"kind\":\"geofence\",\"on\":\"exit\",\"scope\":{\"entities\":[\"v1\"]},"
             "\"severity\":\"critical\",\"category\":\"危化品运输\",\"polygon\":" CORRIDOR "}");
    rule(&c, "{\"id\":\"in\",\"name\":\"禁行区\",\"kind\":\"geofence\",\"on\":\"enter\",\"scope\":{\"type\":\"Vehicle\"},"
             "\"severity\":\"major\",\"category\":\"交通\",\"polygon\":" CORRIDOR "}");
    entity(&c, "v1", "Vehicle", 113.05, 35.05);
    entity(&c, "v2", "Vehicle", 113.09, 35.05);
    int64_t t = clock_now_ms();
    loc(&c, "v1", t, 113.05, 35.05);         /* inside */
    loc(&c, "v2", t, 113.09, 35.05);         /* outside; v2 is not in "out"'s scope */
    CHECK_INT(count(&c, "out", NULL), 0);
    CHECK_INT(count(&c, "in", "open"), 1);   /* v1 is inside the no-go area */
    loc(&c, "v1", t + 1000, 113.09, 35.05);  /* leaves */
    json_t *a = alarms(&c, "out", "open");
    CHECK_INT(json_array_size(a), 1);
    CHECK(field_of(a, 0, "message") && strstr(field_of(a, 0, "message"), "驶出电子围栏") != NULL);
    json_decref(a);
    CHECK_INT(count(&c, "in", "active"), 0); /* v1 left the no-go area */
    loc(&c, "v1", t + 500, 113.05, 35.05);   /* late position: changes nothing */
    CHECK_INT(count(&c, "out", "active"), 1);
    loc(&c, "v1", t + 2000, 113.06, 35.06);  /* back in */
    CHECK_INT(count(&c, "out", "active"), 0);
    CHECK_INT(count(&c, "out", "cleared"), 1);
    loc(&c, "v2", t + 3000, 113.07, 35.05);  /* v2 enters (and v1 is back in too) */
    a = alarms(&c, "in", "open");
    CHECK_INT(json_array_size(a), 2);
    CHECK_STR(field_of(a, 0, "entity"), "v2");
    CHECK_STR(field_of(a, 1, "entity"), "v1");
    json_decref(a);
    city_close(&c);
}

TEST(test_region_count)
{
    struct city c = {0};
    if (city_open(&c) != 0)
        return;
    rule(&c, "{\"id\":\"fire\",\"name\":\"网格火情\",\"kind\":\"region_count\",\"attr\":\"smoke\",\"op\":\"==\",\"value\":1,"
             "\"count\":3,\"window_s\":60,\"scope\":{\"type\":\"SmokeDetector\"},\"severity\":\"critical\",\"category\":\"消防\"}");
    entity(&c, "s1", "SmokeDetector", 113.051, 35.051);
    entity(&c, "s2", "SmokeDetector", 113.052, 35.051);
    entity(&c, "s3", "SmokeDetector", 113.051, 35.052);
    entity(&c, "s4", "SmokeDetector", 113.151, 35.051); /* another district, another cell */
    int64_t t = clock_now_ms();
    num(&c, "s1", "smoke", t, 1);
    num(&c, "s2", "smoke", t + 10000, 1);
    num(&c, "s4", "smoke", t + 10000, 1);
    num(&c, "s3", "smoke", t + 61000, 1); /* s1's is out of the window: two in it */
    CHECK_INT(count(&c, "fire", NULL), 0);
    num(&c, "s1", "smoke", t + 62000, 1); /* three within 60 s */
    json_t *a = alarms(&c, "fire", "open");
    CHECK_INT(json_array_size(a), 1);
    CHECK_STR(field_of(a, 0, "entity_type"), "grid");
    CHECK_STR(field_of(a, 0, "district"), "D1");
    CHECK_INT(json_array_size(json_object_get(json_object_get(json_array_get(a, 0), "data"), "entities")), 3);
    json_decref(a);
    num(&c, "s2", "smoke", t + 63000, 0); /* two left */
    CHECK_INT(count(&c, "fire", "active"), 0);
    num(&c, "s2", "smoke", t + 64000, 1);
    CHECK_INT(count(&c, "fire", "active"), 1);
    rules_tick(c.r, t + 64000 + 61000); /* the window passes */
    CHECK_INT(count(&c, "fire", "active"), 0);
    CHECK_INT(count(&c, "fire", NULL), 2);
    city_close(&c);
}

TEST(test_dedup_window)
{
    struct city c = {0};
    int64_t t;
    if (city_start(&c, WATER ",\"dedup_s\":300}", "w1", "WaterLevelSensor", &t) != 0)
        return;
    num(&c, "w1", "level_m", t, 3.4);
    num(&c, "w1", "level_m", t + 1000, 2.0);
    num(&c, "w1", "level_m", t + 2000, 3.4); /* flapping within 300 s of the clear: suppressed */
    CHECK_INT(count(&c, "water", NULL), 1);
    num(&c, "w1", "level_m", t + 1000 + 300000, 3.4);
    CHECK_INT(count(&c, "water", NULL), 2);
    city_close(&c);
}

TEST(test_maintenance)
{
    struct city c = {0};
    int64_t t;
    if (city_start(&c, WATER "}", "w1", "WaterLevelSensor", &t) != 0)
        return;
    entity(&c, "w2", "WaterLevelSensor", 113.15, 35.05);
    char text[256];
    snprintf(text, sizeof text, "{\"district\":\"D1\",\"from\":%lld,\"to\":%lld,\"reason\":\"泵站检修\"}", (long long)t,
             (long long)(t + 60000));
    json_t *def = json_loads(text, 0, NULL), *out = NULL;
    cb_error err;
    CHECK_INT(rules_maintenance_create(c.r, def, "k1", &out, &err), 0);
    json_decref(def);
    json_decref(out);
    def = json_loads("{\"district\":\"D1\",\"from\":1,\"to\":0,\"reason\":\"x\"}", 0, NULL);
    CHECK_INT(rules_maintenance_create(c.r, def, "k1", &out, &err), CB_EINVALID_FIELD);
    CHECK_STR(err.field, "to");
    json_decref(def);
    num(&c, "w1", "level_m", t + 1000, 3.4); /* in D1, in the window */
    num(&c, "w2", "level_m", t + 1000, 3.4); /* D2: raises */
    json_t *a = alarms(&c, "water", NULL);
    CHECK_INT(json_array_size(a), 1);
    CHECK_STR(field_of(a, 0, "entity"), "w2");
    json_decref(a);
    num(&c, "w1", "level_m", t + 60000, 3.5); /* the window is over: the condition still holds */
    CHECK_INT(count(&c, "water", NULL), 2);
    CHECK_INT(rules_maintenance_list(c.r, &out, &err), 0);
    const char *id = json_string_value(json_object_get(json_array_get(json_object_get(out, "maintenance"), 0), "id"));
    CHECK_INT(rules_maintenance_delete(c.r, id, &err), 0);
    CHECK_INT(rules_maintenance_delete(c.r, "m-none", &err), CB_ENOT_FOUND);
    json_decref(out);
    city_close(&c);
}

static int hook_calls;
static char hook_category[16];

static int fake_case(void *ctx, const json_t *alarm, const char *category, char *case_id, size_t n)
{
    (void)ctx;
    hook_calls++;
    snprintf(hook_category, sizeof hook_category, "%s", category);
    snprintf(case_id, n, "C-%s", json_string_value(json_object_get(alarm, "id")));
    return 0;
}

TEST(test_case_hook)
{
    struct city c = {0};
    if (city_open(&c) != 0)
        return;
    rules_set_case_hook(c.r, fake_case, NULL);
    rule(&c, WATER ",\"open_case\":{\"category\":\"01001\"}}");
    rule(&c, "{\"id\":\"quiet\",\"name\":\"低水位\",\"kind\":\"threshold\",\"attr\":\"level_m\",\"op\":\"<\",\"value\":0.1,"
             "\"severity\":\"warning\",\"category\":\"防汛\"}");
    entity(&c, "w1", "WaterLevelSensor", 113.05, 35.05);
    int64_t t = clock_now_ms();
    num(&c, "w1", "level_m", t, 3.4);
    num(&c, "w1", "level_m", t + 1000, 0.05); /* clears "water", raises "quiet": no case */
    json_t *a = alarms(&c, "water", NULL);
    CHECK_INT(hook_calls, 1);
    CHECK_STR(hook_category, "01001");
    CHECK_STR(field_of(a, 0, "case"), "C-A000001");
    json_decref(a);
    a = alarms(&c, "quiet", NULL);
    CHECK(json_is_null(json_object_get(json_array_get(a, 0), "case")));
    json_decref(a);
    city_close(&c);
}

TEST(test_restart_keeps_alarms)
{
    struct city c = {0};
    int64_t t;
    if (city_start(&c, WATER "}", "w1", "WaterLevelSensor", &t) != 0)
        return;
    num(&c, "w1", "level_m", t, 3.4);
    rules_close(c.r);
    c.r = NULL;
    if (open_rules(&c) != 0)
        return;
    num(&c, "w1", "level_m", t, 3.4);        /* the same reading replayed: nothing new */
    num(&c, "w1", "level_m", t + 1000, 3.6); /* newer, still high: the alarm stays the one */
    CHECK_INT(count(&c, "water", NULL), 1);
    num(&c, "w1", "level_m", t + 2000, 2.0);
    CHECK_INT(count(&c, "water", "cleared"), 1);
    rules_close(c.r);
    c.r = NULL;
    if (open_rules(&c) != 0)
        return;
    num(&c, "w1", "level_m", t, 3.4);        /* replayed from before the clear: ignored */
    CHECK_INT(count(&c, "water", NULL), 1);
    json_t *list = NULL;
    cb_error err;
    CHECK_INT(rules_list(c.r, &list, &err), 0);
    CHECK_INT(json_array_size(json_object_get(list, "rules")), 1);
    json_decref(list);
    city_close(&c);
}

static long long alarm_seq(struct city *c)
{
    sqlite3_stmt *st = NULL;
    long long seq = -1;
    if (sqlite3_prepare_v2(db_sqlite(c->base.db), "SELECT seq FROM sqlite_sequence WHERE name = 'alarm'", -1, &st, NULL) ==
            SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        seq = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return seq;
}

/* Alarms are published before they are stored, so the numbers handed out
 * are reserved in SQLite first: after a crash (the reservation left in
 * place) no number is given twice; after a clean stop they stay dense. Changes
 * queued together (raise, clear, raise of one rule × entity) dedup against
 * each other before any is stored. */
TEST(test_alarm_numbers)
{
    struct city c = {0};
    int64_t t;
    if (city_start(&c, WATER "}", "w1", "WaterLevelSensor", &t) != 0)
        return;
    num(&c, "w1", "level_m", t, 3.4);
    num(&c, "w1", "level_m", t + 1, 3.5); /* still raised: nothing */
    num(&c, "w1", "level_m", t + 2, 1.0);
    num(&c, "w1", "level_m", t + 3, 3.6);
    CHECK_INT(count(&c, "water", NULL), 2);
    CHECK_INT(count(&c, "water", "active"), 1);
    CHECK(alarm_seq(&c) > 2); /* reserved ahead */
    rules_close(c.r);
    c.r = NULL;
    CHECK_INT(alarm_seq(&c), 2); /* handed back */
    CHECK_INT(sqlite3_exec(db_sqlite(c.base.db), "UPDATE sqlite_sequence SET seq = 5000 WHERE name = 'alarm'", NULL, NULL,
                           NULL), SQLITE_OK); /* as a kill -9 leaves it */
    if (open_rules(&c) != 0)
        return;
    num(&c, "w1", "level_m", t + 4, 1.0);
    num(&c, "w1", "level_m", t + 5, 3.7);
    json_t *a = alarms(&c, "water", "active");
    CHECK_STR(field_of(a, 0, "id"), "A005001");
    json_decref(a);
    city_close(&c);
}

TEST(test_acknowledge_clear_and_lists)
{
    struct city c = {0};
    int64_t t;
    if (city_start(&c, WATER "}", "w1", "WaterLevelSensor", &t) != 0)
        return;
    entity(&c, "w2", "WaterLevelSensor", 113.15, 35.05);
    entity(&c, "w3", "WaterLevelSensor", 113.15, 35.06);
    num(&c, "w1", "level_m", t, 3.4);
    num(&c, "w2", "level_m", t, 3.4);
    num(&c, "w3", "level_m", t, 3.4);
    rules_flush(c.r);
    json_t *out = NULL;
    cb_error err;
    CHECK_INT(alarm_acknowledge(c.r, "A000001", "k1", "已通知泵站", &out, &err), 0);
    CHECK_STR(json_string_value(json_object_get(out, "state")), "acknowledged");
    CHECK_STR(json_string_value(json_object_get(out, "acknowledged_by")), "k1");
    CHECK_INT(json_array_size(json_object_get(out, "history")), 2);
    json_decref(out);
    CHECK_INT(alarm_acknowledge(c.r, "A000001", "k1", NULL, &out, &err), CB_ECONFLICT);
    CHECK_INT(alarm_acknowledge(c.r, "A000099", "k1", NULL, &out, &err), CB_ENOT_FOUND);
    CHECK_INT(alarm_clear(c.r, "A000001", "k2", "现场已处置", &out, &err), 0);
    CHECK_STR(json_string_value(json_object_get(out, "cleared_by")), "k2");
    json_decref(out);
    CHECK_INT(alarm_clear(c.r, "A000001", "k2", NULL, &out, &err), CB_ECONFLICT);
    /* cleared by hand while still high: the next reading raises afresh */
    num(&c, "w1", "level_m", t + 1000, 3.5);
    CHECK_INT(count(&c, "water", "open"), 3);
    /* paging: newest first, two at a time */
    struct alarm_filter f = {.limit = "2"};
    CHECK_INT(alarm_list(c.r, &f, &out, &err), 0);
    CHECK_INT(json_array_size(json_object_get(out, "alarms")), 2);
    CHECK_STR(field_of(json_object_get(out, "alarms"), 0, "id"), "A000004");
    char cursor[32];
    snprintf(cursor, sizeof cursor, "%s", json_string_value(json_object_get(out, "next_cursor")));
    json_decref(out);
    f.cursor = cursor;
    CHECK_INT(alarm_list(c.r, &f, &out, &err), 0);
    CHECK_INT(json_array_size(json_object_get(out, "alarms")), 2);
    CHECK_STR(field_of(json_object_get(out, "alarms"), 1, "id"), "A000001");
    json_decref(out);
    struct alarm_filter bad = {.state = "burning"};
    CHECK_INT(alarm_list(c.r, &bad, &out, &err), CB_EINVALID_FIELD);
    CHECK_STR(err.field, "state");
    struct alarm_filter d2 = {.district = "D2"};
    CHECK_INT(alarm_list(c.r, &d2, &out, &err), 0);
    CHECK_INT(json_array_size(json_object_get(out, "alarms")), 2);
    json_decref(out);
    CHECK_INT(alarm_stats(c.r, NULL, &out, &err), 0);
    CHECK_INT(json_integer_value(json_object_get(out, "total")), 3);
    CHECK_INT(json_integer_value(json_object_get(json_object_get(out, "by_severity"), "critical")), 3);
    CHECK_INT(json_integer_value(json_object_get(json_object_get(out, "by_district"), "D2")), 2);
    json_decref(out);
    /* deleting the rule clears its active alarms */
    CHECK_INT(rules_delete(c.r, "water", &err), 0);
    CHECK_INT(count(&c, NULL, "active"), 0);
    CHECK_INT(rules_delete(c.r, "water", &err), CB_ENOT_FOUND);
    city_close(&c);
}

/* Rules that list their entities are indexed by entity: each sees only its own. */
TEST(test_entity_scoped_rules)
{
    struct city c = {0};
    if (city_open(&c) != 0)
        return;
    char text[512], id[16];
    for (int i = 0; i < 50; i++) {
        snprintf(text, sizeof text, "{\"id\":\"s%d\",\"name\":\"水位 %d\",\"kind\":\"threshold\",\"scope\":"
                 "{\"type\":\"WaterLevelSensor\",\"entities\":[\"w%d\"]},\"attr\":\"level_m\",\"op\":\">\","
                 "\"value\":%d,\"severity\":\"major\",\"category\":\"防汛\"}", i, i, i, 10 + i);
        rule(&c, text);
    }
    for (int i = 0; i < 3; i++) {
        snprintf(id, sizeof id, "w%d", i);
        entity(&c, id, "WaterLevelSensor", 113.05, 35.05);
    }
    int64_t t = clock_now_ms();
    num(&c, "w1", "level_m", t, 10.5);  /* above s0's 10, below s1's 11: nothing */
    CHECK_INT(count(&c, NULL, NULL), 0);
    num(&c, "w1", "level_m", t + 1, 11.5);
    json_t *a = alarms(&c, NULL, NULL);
    CHECK_INT(json_array_size(a), 1);
    CHECK_STR(field_of(a, 0, "rule"), "s1");
    json_decref(a);
    cb_error err;
    CHECK_INT(rules_delete(c.r, "s1", &err), 0);
    num(&c, "w1", "level_m", t + 2, 50);
    CHECK_INT(count(&c, NULL, "active"), 0);
    city_close(&c);
}

/* A rule deleted or disabled right after a raise (published, maybe not yet
 * stored by the rules thread) leaves no open alarm. */
TEST(test_delete_right_after_raise)
{
    struct city c = {0};
    if (city_open(&c) != 0)
        return;
    entity(&c, "w0", "WaterLevelSensor", 113.05, 35.05);
    const char *def = "{\"id\":\"%s\",\"name\":\"水位\",\"kind\":\"threshold\",\"scope\":{\"type\":"
                      "\"WaterLevelSensor\"},\"attr\":\"level_m\",\"op\":\">\",\"value\":10,\"severity\":"
                      "\"major\",\"category\":\"防汛\"%s}";
    char text[512], id[16];
    int64_t t = clock_now_ms();
    cb_error err;
    for (int i = 0; i < 40; i++) {
        snprintf(id, sizeof id, "r%d", i);
        snprintf(text, sizeof text, def, id, "");
        rule(&c, text);
        num(&c, "w0", "level_m", t + 2 * i, 20);
        if (i % 2 == 0) {
            CHECK_INT(rules_delete(c.r, id, &err), 0);
        } else {
            snprintf(text, sizeof text, def, id, ",\"enabled\":false");
            json_t *d = json_loads(text, 0, NULL), *out = NULL;
            CHECK_INT(rules_update(c.r, id, d, &out, &err), 0);
            json_decref(d);
            json_decref(out);
        }
        num(&c, "w0", "level_m", t + 2 * i + 1, 5); /* clears nothing of the rules above: none left enabled */
        CHECK_INT(count(&c, id, "active"), 0);
    }
    city_close(&c);
}

TEST_MAIN(test_validation, test_threshold_hysteresis, test_for_s_and_out_of_order, test_rate, test_nodata, test_geofence,
          test_region_count, test_dedup_window, test_maintenance, test_case_hook, test_restart_keeps_alarms,
          test_alarm_numbers, test_acknowledge_clear_and_lists, test_entity_scoped_rules,
          test_delete_right_after_raise)
