/* entity — create, read, update, delete, device tokens, types; see entity.h. */
#include "entity_int.h"

#include "core/clock.h"
#include "core/text.h"

#include <ctype.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Default heartbeats of the FIWARE types the demo city uses, in seconds. */
static const struct {
    const char *type;
    int heartbeat_s;
} default_heartbeats[] = {
    {"AirQualityObserved", 600}, {"ParkingSpot", 300},  {"WaterLevelSensor", 300},
    {"FloodMonitoring", 300},    {"ManholeCover", 3600}, {"Streetlight", 3600},
    {"SmokeDetector", 3600},     {"Vehicle", 60},        {"SmartMeter", 3600},
    {"PipePressureSensor", 300},
};

static int id_valid(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > ENTITY_ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)id[i];
        if (!isalnum(c) && !strchr(":_.-", c))
            return 0;
    }
    return 1;
}

int entity_type_heartbeat(entities *e, uint16_t type)
{
    int h = e->heartbeat[type];
    if (h > 0)
        return h;
    const char *name = dict_name(e->names, DICT_TYPE, type);
    for (size_t i = 0; name && i < sizeof default_heartbeats / sizeof default_heartbeats[0]; i++)
        if (strcmp(name, default_heartbeats[i].type) == 0)
            return default_heartbeats[i].heartbeat_s;
    return ENTITY_DEFAULT_HEARTBEAT_S;
}

int entity_online(entities *e, const struct state_entity *se, int64_t now_ms)
{
    int h = se->heartbeat_s > 0 ? se->heartbeat_s : entity_type_heartbeat(e, se->type);
    return se->last_seen_ms > 0 && now_ms - se->last_seen_ms <= (int64_t)h * 1000;
}

int entity__locate(entities *e, double lon, double lat, struct state_entity *meta)
{
    meta->lon = lon;
    meta->lat = lat;
    if (isnan(lon)) {
        meta->district = meta->grid = STATE_REGION_NONE;
        return 0;
    }
    region_store_locate(e->regions, lon, lat, &meta->district, &meta->grid);
    return 0;
}

static json_t *value_json(const struct state_value *v)
{
    switch (v->kind) {
    case STATE_STR: return json_string(v->v.str);
    case STATE_BOOL: return json_boolean(v->v.boolean);
    default: return isfinite(v->v.num) ? json_real(v->v.num) : json_null();
    }
}

json_t *entity__to_json(entities *e, const struct state_entity *se, int64_t now_ms)
{
    char t[CLOCK_RFC3339_MAX], dcode[REGION_CODE_MAX], gcode[REGION_CODE_MAX];
    json_t *o = json_pack("{s:s, s:s?}", "id", se->id, "type", dict_name(e->names, DICT_TYPE, se->type));
    json_object_set_new(o, "location", isnan(se->lon) ? json_null() : json_pack("[f,f]", se->lon, se->lat));
    region_store_code(e->regions, REGION_DISTRICT, se->district, dcode);
    region_store_code(e->regions, REGION_GRID, se->grid, gcode);
    json_object_set_new(o, "district", *dcode ? json_string(dcode) : json_null());
    json_object_set_new(o, "grid", *gcode ? json_string(gcode) : json_null());
    const char *dep = dict_name(e->names, DICT_DEPARTMENT, se->department);
    json_object_set_new(o, "department", dep ? json_string(dep) : json_null());
    json_object_set_new(o, "heartbeat_s", json_integer(se->heartbeat_s > 0 ? se->heartbeat_s
                                                        : entity_type_heartbeat(e, se->type)));
    json_object_set_new(o, "online", json_boolean(entity_online(e, se, now_ms)));
    json_object_set_new(o, "last_seen", se->last_seen_ms ? json_string(clock_format_rfc3339(se->last_seen_ms, t)) : json_null());
    json_object_set_new(o, "readings", json_integer((json_int_t)se->readings));
    json_t *values = json_object();
    for (uint16_t i = 0; i < se->nvalues; i++) {
        const struct state_value *v = &se->values[i];
        const char *attr = dict_name(e->names, DICT_ATTR, v->attr);
        if (attr)
            json_object_set_new(values, attr, json_pack("{s:o, s:s}", "value", value_json(v), "ts",
                                                         clock_format_rfc3339(v->ts_ms, t)));
    }
    json_object_set_new(o, "values", values);
    return o;
}

/* --- input validation --- */

struct entity_input {
    const char *id, *type, *department;
    double lon, lat;      /* NAN when absent */
    int heartbeat_s;
    json_t *properties;   /* borrowed; NULL when absent */
    int device;
    int has_location, has_department, has_heartbeat;
};

static int parse_location(json_t *v, const char *field, double *lon, double *lat, cb_error *err)
{
    json_t *coords = v;
    if (json_is_object(v)) /* GeoJSON Point */
        coords = json_object_get(v, "coordinates");
    if (!json_is_array(coords) || json_array_size(coords) != 2 ||
        !json_is_number(json_array_get(coords, 0)) || !json_is_number(json_array_get(coords, 1)))
        return cb_error_set(err, CB_EINVALID_FIELD, field,
                            "location must be [lon, lat] or a GeoJSON Point");
    *lon = json_number_value(json_array_get(coords, 0));
    *lat = json_number_value(json_array_get(coords, 1));
    if (!(*lon >= -180 && *lon <= 180 && *lat >= -90 && *lat <= 90))
        return cb_error_set(err, CB_EINVALID_FIELD, field,
                            "location [%g, %g] is outside WGS84 lon/lat ranges", *lon, *lat);
    return 0;
}

/* An error on member `name` of the object at `prefix` ("entities[3]"). */
static int field_err(cb_error *err, int code, const char *prefix, const char *name, const char *msg)
{
    char f[CB_ERROR_FIELD_MAX];
    snprintf(f, sizeof f, "%s%s%s", prefix, *prefix ? "." : "", name);
    return cb_error_set(err, code, f, "%s", msg);
}

static int parse_strings(json_t *in, const char *prefix, struct entity_input *x, int creating, cb_error *err)
{
    json_t *id = json_object_get(in, "id"), *type = json_object_get(in, "type");
    if (creating) {
        if (!id)
            return field_err(err, CB_EMISSING_FIELD, prefix, "id", "id is required");
        if (!json_is_string(id) || !id_valid(json_string_value(id)))
            return field_err(err, CB_EINVALID_FIELD, prefix, "id",
                             "id must be 1..128 characters of A-Z a-z 0-9 : _ . -");
        if (!type)
            return field_err(err, CB_EMISSING_FIELD, prefix, "type", "type is required");
        if (!json_is_string(type) || !dict_name_valid(json_string_value(type)))
            return field_err(err, CB_EINVALID_FIELD, prefix, "type",
                             "type must be a name like AirQualityObserved");
        x->id = json_string_value(id);
        x->type = json_string_value(type);
    }
    json_t *dep = json_object_get(in, "department");
    if (dep && !json_is_null(dep)) {
        if (!json_is_string(dep) || !dict_name_valid(json_string_value(dep)))
            return field_err(err, CB_EINVALID_FIELD, prefix, "department",
                             "department must be a code of A-Z a-z 0-9 _ . : -");
        x->department = json_string_value(dep);
    }
    x->has_department = dep != NULL;
    return 0;
}

static int parse_input(json_t *in, const char *prefix, struct entity_input *x, int creating, cb_error *err)
{
    memset(x, 0, sizeof *x);
    x->lon = x->lat = NAN;
    if (!json_is_object(in))
        return cb_error_set(err, CB_EINVALID_FIELD, *prefix ? prefix : "body", "an entity must be a JSON object");
    int rc = parse_strings(in, prefix, x, creating, err);
    if (rc != 0)
        return rc;
    json_t *loc = json_object_get(in, "location"), *hb = json_object_get(in, "heartbeat_s");
    json_t *props = json_object_get(in, "properties"), *dev = json_object_get(in, "device");
    char f[CB_ERROR_FIELD_MAX];
    snprintf(f, sizeof f, "%s%slocation", prefix, *prefix ? "." : "");
    if (loc && !json_is_null(loc) && (rc = parse_location(loc, f, &x->lon, &x->lat, err)) != 0)
        return rc;
    x->has_location = loc != NULL;
    if (hb && (!json_is_integer(hb) || json_integer_value(hb) < 0 || json_integer_value(hb) > 30 * 86400))
        return field_err(err, CB_EINVALID_FIELD, prefix, "heartbeat_s",
                         "heartbeat_s must be whole seconds, 0..2592000 (0: the type's)");
    x->heartbeat_s = hb ? (int)json_integer_value(hb) : 0;
    x->has_heartbeat = hb != NULL;
    if (props && !json_is_object(props))
        return field_err(err, CB_EINVALID_FIELD, prefix, "properties", "properties must be an object");
    x->properties = props;
    if (dev && !json_is_boolean(dev))
        return field_err(err, CB_EINVALID_FIELD, prefix, "device", "device must be true or false");
    x->device = json_is_true(dev);
    return 0;
}

/* --- tokens --- */

static void token_make(uint32_t no, char token[ENTITY_TOKEN_MAX], unsigned char hash[32])
{
    unsigned char secret[16];
    char hex[33];
    randombytes_buf(secret, sizeof secret);
    sodium_bin2hex(hex, sizeof hex, secret, sizeof secret);
    snprintf(token, ENTITY_TOKEN_MAX, "cbd_%08x_%s", no, hex);
    crypto_generichash(hash, 32, (const unsigned char *)hex, 32, NULL, 0);
    sodium_memzero(secret, sizeof secret);
}

static int store_token(entities *e, uint32_t no, const unsigned char *hash, cb_error *err)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db_sqlite(e->db), "UPDATE entity SET token_hash = ?2 WHERE no = ?1", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return db_error(e->db, rc, "storing token", err);
    sqlite3_bind_int64(st, 1, no);
    if (hash)
        sqlite3_bind_blob(st, 2, hash, 32, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, 2);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : db_error(e->db, rc, "storing token", err);
}

static uint32_t find_no(entities *e, const char *id)
{
    state_rdlock(e->st);
    uint32_t no = state_find(e->st, id);
    state_unlock(e->st);
    return no;
}

int entity_token_issue(entities *e, const char *id, char token[ENTITY_TOKEN_MAX], cb_error *err)
{
    uint32_t no = find_no(e, id);
    if (no == STATE_NONE)
        return cb_error_set(err, CB_ENOT_FOUND, "id", "no entity '%s'", id);
    unsigned char hash[32];
    token_make(no, token, hash);
    return store_token(e, no, hash, err);
}

int entity_token_revoke(entities *e, const char *id, cb_error *err)
{
    uint32_t no = find_no(e, id);
    if (no == STATE_NONE)
        return cb_error_set(err, CB_ENOT_FOUND, "id", "no entity '%s'", id);
    return store_token(e, no, NULL, err);
}

int entity_authenticate(entities *e, const char *token, struct principal *out, cb_error *err)
{
    unsigned int no;
    char hex[33];
    if (strlen(token) != 45 || sscanf(token, "cbd_%8x_%32[0-9a-f]", &no, hex) != 2 || strlen(hex) != 32)
        return cb_error_set(err, CB_EUNAUTHORIZED, "Authorization", "malformed device token");
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db_sqlite(e->db), "SELECT id, token_hash, department FROM entity WHERE no = ?1",
                                -1, &st, NULL);
    if (rc != SQLITE_OK)
        return db_error(e->db, rc, "checking token", err);
    sqlite3_bind_int64(st, 1, no);
    unsigned char hash[32];
    crypto_generichash(hash, 32, (const unsigned char *)hex, 32, NULL, 0);
    rc = CB_EUNAUTHORIZED;
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_bytes(st, 1) == 32 &&
        sodium_memcmp(sqlite3_column_blob(st, 1), hash, 32) == 0) {
        memset(out, 0, sizeof *out);
        out->role = ROLE_DEVICE;
        out->entity = no;
        snprintf(out->id, sizeof out->id, "device:%u", no);
        snprintf(out->name, sizeof out->name, "%s", (const char *)sqlite3_column_text(st, 0));
        rc = 0;
    }
    sqlite3_finalize(st);
    return rc == 0 ? 0 : cb_error_set(err, rc, "Authorization", "unknown or revoked device token");
}

/* --- create --- */

static int insert_row(entities *e, const struct entity_input *x, const unsigned char *token_hash,
                      uint32_t *no, cb_error *err)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db_sqlite(e->db),
                                "INSERT INTO entity (id, type, lon, lat, department, heartbeat_s, "
                                "properties, token_hash, created_at, updated_at) "
                                "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return db_error(e->db, rc, "creating entity", err);
    char *props = x->properties ? json_dumps(x->properties, JSON_COMPACT) : NULL;
    sqlite3_bind_text(st, 1, x->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, x->type, -1, SQLITE_STATIC);
    if (!isnan(x->lon)) {
        sqlite3_bind_double(st, 3, x->lon);
        sqlite3_bind_double(st, 4, x->lat);
    }
    if (x->department)
        sqlite3_bind_text(st, 5, x->department, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 6, x->heartbeat_s);
    sqlite3_bind_text(st, 7, props ? props : "{}", -1, SQLITE_STATIC);
    if (token_hash)
        sqlite3_bind_blob(st, 8, token_hash, 32, SQLITE_STATIC);
    sqlite3_bind_int64(st, 9, clock_now_ms());
    rc = sqlite3_step(st);
    free(props);
    sqlite3_finalize(st);
    if (rc == SQLITE_CONSTRAINT)
        return cb_error_set(err, CB_ECONFLICT, "id", "entity '%s' already exists", x->id);
    if (rc != SQLITE_DONE)
        return db_error(e->db, rc, "creating entity", err);
    *no = (uint32_t)sqlite3_last_insert_rowid(db_sqlite(e->db));
    return 0;
}

static int meta_from_input(entities *e, const struct entity_input *x, const char *prefix,
                           struct state_entity *meta, cb_error *err)
{
    memset(meta, 0, sizeof *meta);
    char f[CB_ERROR_FIELD_MAX];
    snprintf(f, sizeof f, "%s%stype", prefix, *prefix ? "." : "");
    int rc = dict_id(e->names, DICT_TYPE, x->type, 1, &meta->type, f, err);
    snprintf(f, sizeof f, "%s%sdepartment", prefix, *prefix ? "." : "");
    if (rc == 0 && x->department)
        rc = dict_id(e->names, DICT_DEPARTMENT, x->department, 1, &meta->department, f, err);
    meta->heartbeat_s = x->heartbeat_s;
    entity__locate(e, x->lon, x->lat, meta);
    return rc;
}

/* Validates and inserts one entity (no state change). */
static int create_row(entities *e, json_t *in, const char *prefix, struct state_entity *meta,
                      uint32_t *no, char token[ENTITY_TOKEN_MAX], struct entity_input *x, cb_error *err)
{
    int rc = parse_input(in, prefix, x, 1, err);
    if (rc == 0)
        rc = meta_from_input(e, x, prefix, meta, err);
    if (rc != 0)
        return rc;
    unsigned char hash[32];
    if (x->device)
        token_make(0, token, hash);
    rc = insert_row(e, x, x->device ? hash : NULL, no, err);
    if (rc == 0 && x->device) { /* the token names the entity number, known only now */
        token_make(*no, token, hash);
        rc = store_token(e, *no, hash, err);
    }
    if (rc != 0 && rc != CB_ECONFLICT && prefix[0]) {
        char message[CB_ERROR_MESSAGE_MAX]; /* cb_error_set must not read what it writes */
        memcpy(message, err->message, sizeof message);
        cb_error_set(err, rc, prefix, "%s", message);
    }
    return rc;
}

static int put_state(entities *e, uint32_t no, const char *id, const struct state_entity *meta, cb_error *err)
{
    state_wrlock(e->st);
    int rc = state_put(e->st, no, id, meta, err);
    state_unlock(e->st);
    return rc;
}

int entity_create(entities *e, json_t *in, const char *field, json_t **out, cb_error *err)
{
    struct state_entity meta;
    struct entity_input x;
    uint32_t no;
    char token[ENTITY_TOKEN_MAX] = "";
    int rc = create_row(e, in, field, &meta, &no, token, &x, err);
    if (rc == 0)
        rc = put_state(e, no, x.id, &meta, err);
    if (rc != 0)
        return rc;
    return entity_get(e, x.id, out, err) == 0 && *token
               ? (json_object_set_new(*out, "token", json_string(token)), 0)
               : 0;
}

static json_t *error_item(size_t index, const cb_error *err)
{
    return json_pack("{s:I, s:o, s:s, s:o}", "index", (json_int_t)index, "field", text_json(err->field),
                     "code", cb_err_name(err->code), "message", text_json(err->message));
}

struct pending {
    uint32_t no;
    struct state_entity meta;
    const char *id;
};

/* New type and department names are stored on the dict's own connection,
 * which cannot write while ours holds the bulk transaction (it would wait out
 * the busy timeout and fail): register them before it begins. Invalid names
 * are skipped here and reported by create_row. */
static void register_bulk_names(entities *e, json_t *list)
{
    size_t i;
    json_t *item;
    uint16_t id;
    json_array_foreach(list, i, item) {
        const char *type = json_string_value(json_object_get(item, "type"));
        const char *dep = json_string_value(json_object_get(item, "department"));
        if (type && dict_name_valid(type))
            dict_id(e->names, DICT_TYPE, type, 1, &id, NULL, NULL);
        if (dep && dict_name_valid(dep))
            dict_id(e->names, DICT_DEPARTMENT, dep, 1, &id, NULL, NULL);
    }
}

int entity_create_bulk(entities *e, json_t *list, json_t **out, cb_error *err)
{
    size_t n = json_array_size(list);
    if (n > ENTITY_BULK_MAX)
        return cb_error_set(err, CB_ETOO_LARGE, "entities", "at most %d entities per request, got %zu",
                            ENTITY_BULK_MAX, n);
    struct pending *ok = calloc(n ? n : 1, sizeof *ok);
    if (!ok)
        return cb_error_set(err, CB_ENOMEM, NULL, NULL);
    json_t *errors = json_array(), *tokens = json_array();
    size_t created = 0;
    register_bulk_names(e, list);
    int rc = db_exec(e->db, "BEGIN IMMEDIATE", err);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        char prefix[32], token[ENTITY_TOKEN_MAX] = "";
        struct entity_input x;
        cb_error item;
        snprintf(prefix, sizeof prefix, "entities[%zu]", i);
        if (create_row(e, json_array_get(list, i), prefix, &ok[created].meta, &ok[created].no, token, &x, &item) != 0) {
            json_array_append_new(errors, error_item(i, &item));
            continue;
        }
        ok[created++].id = x.id;
        if (*token)
            json_array_append_new(tokens, json_pack("{s:s, s:s}", "id", x.id, "token", token));
    }
    if (rc == 0)
        rc = db_exec(e->db, "COMMIT", err);
    if (rc != 0) {
        sqlite3_exec(db_sqlite(e->db), "ROLLBACK", NULL, NULL, NULL);
        created = 0;
    }
    state_wrlock(e->st);
    for (size_t i = 0; i < created; i++)
        state_put(e->st, ok[i].no, ok[i].id, &ok[i].meta, NULL);
    state_unlock(e->st);
    free(ok);
    if (rc != 0) {
        json_decref(errors);
        json_decref(tokens);
        return rc;
    }
    *out = json_pack("{s:I, s:I, s:o, s:o}", "created", (json_int_t)created, "rejected",
                     (json_int_t)json_array_size(errors), "errors", errors, "tokens", tokens);
    return 0;
}

/* --- read, update, delete --- */

static json_t *load_properties(entities *e, uint32_t no)
{
    sqlite3_stmt *st;
    json_t *p = NULL;
    if (sqlite3_prepare_v2(db_sqlite(e->db), "SELECT properties FROM entity WHERE no = ?1", -1, &st, NULL) != SQLITE_OK)
        return json_object();
    sqlite3_bind_int64(st, 1, no);
    if (sqlite3_step(st) == SQLITE_ROW)
        p = json_loads((const char *)sqlite3_column_text(st, 0), 0, NULL);
    sqlite3_finalize(st);
    return p ? p : json_object();
}

int entity_get(entities *e, const char *id, json_t **out, cb_error *err)
{
    state_rdlock(e->st);
    uint32_t no = state_find(e->st, id);
    const struct state_entity *se = no == STATE_NONE ? NULL : state_get(e->st, no);
    json_t *o = se ? entity__to_json(e, se, clock_now_ms()) : NULL;
    state_unlock(e->st);
    if (!o)
        return cb_error_set(err, CB_ENOT_FOUND, "id", "no entity '%s'", id);
    json_object_set_new(o, "properties", load_properties(e, no));
    *out = o;
    return 0;
}

static int update_row(entities *e, uint32_t no, const struct entity_input *x, const struct state_entity *meta,
                      cb_error *err)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db_sqlite(e->db),
                                "UPDATE entity SET lon = ?2, lat = ?3, department = ?4, heartbeat_s = ?5, "
                                "properties = coalesce(?6, properties), updated_at = ?7 WHERE no = ?1",
                                -1, &st, NULL);
    if (rc != SQLITE_OK)
        return db_error(e->db, rc, "updating entity", err);
    char *props = x->properties ? json_dumps(x->properties, JSON_COMPACT) : NULL;
    sqlite3_bind_int64(st, 1, no);
    if (!isnan(meta->lon)) {
        sqlite3_bind_double(st, 2, meta->lon);
        sqlite3_bind_double(st, 3, meta->lat);
    }
    const char *dep = dict_name(e->names, DICT_DEPARTMENT, meta->department);
    if (dep)
        sqlite3_bind_text(st, 4, dep, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 5, meta->heartbeat_s);
    if (props)
        sqlite3_bind_text(st, 6, props, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 7, clock_now_ms());
    rc = sqlite3_step(st);
    free(props);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : db_error(e->db, rc, "updating entity", err);
}

/* The new metadata: the stored one with the given fields replaced. */
static int merge_meta(entities *e, uint32_t no, const struct entity_input *x, struct state_entity *meta, cb_error *err)
{
    state_rdlock(e->st);
    const struct state_entity *se = state_get(e->st, no);
    if (se)
        *meta = *se;
    state_unlock(e->st);
    if (!se)
        return cb_error_set(err, CB_ENOT_FOUND, "id", "entity was deleted");
    meta->values = NULL;
    if (x->has_location)
        entity__locate(e, x->lon, x->lat, meta);
    if (x->has_heartbeat)
        meta->heartbeat_s = x->heartbeat_s;
    if (x->has_department) {
        meta->department = DICT_NONE;
        if (x->department)
            return dict_id(e->names, DICT_DEPARTMENT, x->department, 1, &meta->department, "department", err);
    }
    return 0;
}

int entity_update(entities *e, const char *id, json_t *in, json_t **out, cb_error *err)
{
    uint32_t no = find_no(e, id);
    if (no == STATE_NONE)
        return cb_error_set(err, CB_ENOT_FOUND, "id", "no entity '%s'", id);
    if (json_object_get(in, "type") || json_object_get(in, "id"))
        return cb_error_set(err, CB_EINVALID_FIELD, json_object_get(in, "type") ? "type" : "id",
                            "id and type cannot change; delete and re-create the entity");
    struct entity_input x;
    struct state_entity meta;
    int rc = parse_input(in, "", &x, 0, err);
    if (rc == 0)
        rc = merge_meta(e, no, &x, &meta, err);
    if (rc == 0)
        rc = update_row(e, no, &x, &meta, err);
    if (rc == 0)
        rc = put_state(e, no, id, &meta, err);
    return rc == 0 ? entity_get(e, id, out, err) : rc;
}

int entity_delete(entities *e, const char *id, cb_error *err)
{
    uint32_t no = find_no(e, id);
    if (no == STATE_NONE)
        return cb_error_set(err, CB_ENOT_FOUND, "id", "no entity '%s'", id);
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db_sqlite(e->db),
                                "DELETE FROM entity WHERE no = ?1; ", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return db_error(e->db, rc, "deleting entity", err);
    sqlite3_bind_int64(st, 1, no);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return db_error(e->db, rc, "deleting entity", err);
    char sql[160];
    snprintf(sql, sizeof sql, "DELETE FROM latest WHERE no = %u; DELETE FROM entity_stat WHERE no = %u;", no, no);
    db_exec(e->db, sql, NULL);
    state_wrlock(e->st);
    state_remove(e->st, no);
    state_unlock(e->st);
    return 0;
}

/* --- types --- */

int entity_type_set(entities *e, const char *type, int heartbeat_s, cb_error *err)
{
    uint16_t id;
    int rc = dict_id(e->names, DICT_TYPE, type, 1, &id, "type", err);
    if (rc != 0)
        return rc;
    if (heartbeat_s < 1 || heartbeat_s > 30 * 86400)
        return cb_error_set(err, CB_EINVALID_FIELD, "heartbeat_s", "heartbeat_s must be 1..2592000 seconds");
    sqlite3_stmt *st;
    rc = sqlite3_prepare_v2(db_sqlite(e->db),
                            "INSERT INTO entity_type (name, heartbeat_s) VALUES (?1, ?2) "
                            "ON CONFLICT (name) DO UPDATE SET heartbeat_s = excluded.heartbeat_s", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return db_error(e->db, rc, "storing type", err);
    sqlite3_bind_text(st, 1, type, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, heartbeat_s);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return db_error(e->db, rc, "storing type", err);
    e->heartbeat[id] = heartbeat_s;
    return 0;
}

json_t *entity_types_json(entities *e)
{
    json_t *arr = json_array();
    int n = dict_count(e->names, DICT_TYPE);
    for (int i = 1; i <= n; i++)
        json_array_append_new(arr, json_pack("{s:s, s:i}", "type", dict_name(e->names, DICT_TYPE, (uint16_t)i),
                                             "heartbeat_s", entity_type_heartbeat(e, (uint16_t)i)));
    return arr;
}

state *entities_state(entities *e) { return e->st; }
dict *entities_dict(entities *e) { return e->names; }
region_store *entities_regions(entities *e) { return e->regions; }
