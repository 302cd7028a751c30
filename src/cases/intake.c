/* intake — new cases from every channel: validation, location (district and
 * grid cell from lon/lat), numbering, duplicates (same category, near, recent,
 * still open), then accept, file and route for the channels that need no
 * acceptance; and the alarm hook of the rules module. */
#include "cases/cases_int.h"

#include "core/clock.h"
#include "core/log.h"
#include "geo/distance.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ADDRESS_MAX 400
#define DESCRIPTION_MAX 4000
#define REPORTER_MAX 64

/* The first open case of the same category near (lon, lat) within the window. */
static int find_duplicate(cases *c, const char *category, const char *self, double lon, double lat, int64_t now,
                          char *out, size_t n)
{
    double dlat = c->opt.duplicate_radius_m / 111000.0 * 1.5 + 1e-6;
    double dlon = dlat / fmax(cos(lat * M_PI / 180), 0.01);
    sqlite3_stmt *st = cases__prepare(
        c,
        "SELECT id, lon, lat FROM cases WHERE category = ?1 AND id != ?2 AND created_at >= ?3 AND lon BETWEEN ?4 "
        "AND ?5 AND lat BETWEEN ?6 AND ?7 AND status NOT IN ('closed', 'evaluated', 'rejected') ORDER BY "
        "created_at, id",
        NULL);
    int found = 0;
    if (!st)
        return 0;
    sqlite3_bind_text(st, 1, category, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, self, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 3, now - c->opt.duplicate_window_ms);
    sqlite3_bind_double(st, 4, lon - dlon);
    sqlite3_bind_double(st, 5, lon + dlon);
    sqlite3_bind_double(st, 6, lat - dlat);
    sqlite3_bind_double(st, 7, lat + dlat);
    while (!found && sqlite3_step(st) == SQLITE_ROW) {
        if (geo_distance_m(lon, lat, sqlite3_column_double(st, 1), sqlite3_column_double(st, 2)) <=
            c->opt.duplicate_radius_m) {
            snprintf(out, n, "%s", (const char *)sqlite3_column_text(st, 0));
            found = 1;
        }
    }
    cases__finish(c, st);
    return found;
}

static int channel_allowed(const struct principal *who, const char *channel)
{
    static const char *const channels[] = {"hotline", "grid", "sensor", "citizen", "department"};
    int known = 0;
    for (size_t i = 0; i < sizeof channels / sizeof channels[0]; i++)
        known |= strcmp(channel, channels[i]) == 0;
    if (!known)
        return -1;
    switch (who->role) {
    case ROLE_ADMIN:
    case ROLE_OPERATOR: return 1;
    case ROLE_HOTLINE: return strcmp(channel, "hotline") == 0; /* citizen reports are public */
    case ROLE_GRID: return strcmp(channel, "grid") == 0;
    case ROLE_DEPT: return strcmp(channel, "department") == 0;
    case ROLE_CITIZEN: return strcmp(channel, "citizen") == 0;
    default: return 0;
    }
}

struct intake {
    const char *channel, *category, *description, *address, *name, *phone, *alarm;
    char district[CASE_CODE_MAX], grid[CASE_CODE_MAX];
    int has_point, urgent;
    double lon, lat;
    const json_t *media;
};

/* A district or grid code given by hand must be one the city knows (when it
 * knows any: a city without imported regions takes codes as given). */
static int check_region(cases *c, enum region_level level, const char *code, const char *field, cb_error *err)
{
    if (!c->regions || !*code || region_store_count(c->regions, level) == 0 ||
        region_store_index(c->regions, level, code) != REGION_INDEX_NONE)
        return 0;
    return cb_error_set(err, CB_EINVALID_FIELD, field, "unknown %s '%s' (see GET /api/v1/regions)", field, code);
}

static int locate(cases *c, const json_t *body, struct intake *in, cb_error *err)
{
    const json_t *lon = json_object_get(body, "lon"), *lat = json_object_get(body, "lat");
    if (json_is_null(lon) && json_is_null(lat))
        lon = lat = NULL; /* null is "not given" */
    if (lon || lat) {
        if (!json_is_number(lon) || !json_is_number(lat) || fabs(json_number_value(lon)) > 180 ||
            fabs(json_number_value(lat)) > 90)
            return cb_error_set(err, CB_EINVALID_FIELD,
                                !json_is_number(lon) || fabs(json_number_value(lon)) > 180 ? "lon" : "lat",
                                "lon and lat must both be given, in degrees (WGS 84)");
        in->has_point = 1;
        in->lon = json_number_value(lon);
        in->lat = json_number_value(lat);
    }
    const char *d = json_string_value(json_object_get(body, "district"));
    const char *g = json_string_value(json_object_get(body, "grid"));
    snprintf(in->district, sizeof in->district, "%s", d ? d : "");
    snprintf(in->grid, sizeof in->grid, "%s", g ? g : "");
    int rc = check_region(c, REGION_DISTRICT, in->district, "district", err);
    if (rc == 0)
        rc = check_region(c, REGION_GRID, in->grid, "grid", err);
    if (rc != 0)
        return rc;
    if (in->has_point && c->regions) {
        uint32_t di, gi;
        region_store_locate(c->regions, in->lon, in->lat, &di, &gi);
        char code[REGION_CODE_MAX];
        if (di != REGION_INDEX_NONE)
            snprintf(in->district, sizeof in->district, "%s", region_store_code(c->regions, REGION_DISTRICT, di, code));
        if (gi != REGION_INDEX_NONE)
            snprintf(in->grid, sizeof in->grid, "%s", region_store_code(c->regions, REGION_GRID, gi, code));
    }
    if (!in->has_point && !in->address && !in->district[0])
        return cb_error_set(err, CB_EMISSING_FIELD, "lon", "where is it? give lon and lat, an address or a district");
    return 0;
}

static int parse_intake(cases *c, const struct principal *who, const json_t *body, struct intake *in, cb_error *err)
{
    memset(in, 0, sizeof *in);
    if (!json_is_object(body))
        return cb_error_set(err, CB_EINVALID_JSON, NULL, "a case is a JSON object");
    int rc = cases__text_field(body, "channel", 16, 1, &in->channel, err);
    if (rc == 0) {
        int ok = channel_allowed(who, in->channel);
        if (ok < 0)
            rc = cb_error_set(err, CB_EINVALID_FIELD, "channel",
                              "channel must be hotline, grid, sensor, citizen or department");
        else if (!ok)
            rc = cb_error_set(err, CB_EFORBIDDEN, "channel", "role %s may not report through channel %s",
                              role_name(who->role), in->channel);
    }
    struct category_limit lim;
    if (rc == 0)
        rc = cases__text_field(body, "category", CASE_CODE_MAX - 1, 1, &in->category, err);
    if (rc == 0)
        rc = cases__category_limit(c, in->category, &lim, err);
    if (rc == 0)
        rc = cases__text_field(body, "description", DESCRIPTION_MAX, 1, &in->description, err);
    if (rc == 0)
        rc = cases__text_field(body, "address", ADDRESS_MAX, 0, &in->address, err);
    if (rc == 0)
        rc = cases__text_field(body, "alarm", CASE_ID_MAX * 2, 0, &in->alarm, err);
    const json_t *rep = json_object_get(body, "reporter");
    if (rc == 0 && rep && !json_is_object(rep))
        rc = cb_error_set(err, CB_EINVALID_FIELD, "reporter", "reporter is {\"name\", \"phone\"}");
    if (rc == 0)
        rc = cases__text_field(rep, "name", REPORTER_MAX, 0, &in->name, err);
    if (rc == 0)
        rc = cases__text_field(rep, "phone", REPORTER_MAX, 0, &in->phone, err);
    if (rc == 0)
        rc = cases__check_media(in->media = json_object_get(body, "media"), "media", err);
    const char *priority = json_string_value(json_object_get(body, "priority"));
    if (rc == 0 && priority && strcmp(priority, "urgent") != 0 && strcmp(priority, "normal") != 0)
        rc = cb_error_set(err, CB_EINVALID_FIELD, "priority", "priority must be urgent or normal");
    in->urgent = rc == 0 && (priority ? strcmp(priority, "urgent") == 0 : lim.urgent);
    if (rc == 0)
        rc = locate(c, body, in, err);
    return rc;
}

/* "C20261123-000042": the local date and the day's next number. */
static int next_id(cases *c, int64_t now, char *out, cb_error *err)
{
    char day[11];
    calendar_format_day(calendar_local_day(now), day);
    sqlite3_stmt *st = cases__prepare(
        c, "INSERT INTO case_seq (day, n) VALUES (?1, 1) ON CONFLICT (day) DO UPDATE SET n = n + 1 RETURNING n", err);
    if (!st)
        return err ? err->code : CB_EINTERNAL;
    sqlite3_bind_text(st, 1, day, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    long long n = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    cases__finish(c, st);
    if (rc != SQLITE_ROW)
        return cases__step_error(c, rc, "numbering the case", err);
    snprintf(out, CASE_ID_MAX, "C%.4s%.2s%.2s-%06lld", day, day + 5, day + 8, n);
    return 0;
}

static int insert_case(cases *c, const struct principal *who, const struct intake *in, const char *id, int64_t now,
                       cb_error *err)
{
    sqlite3_stmt *st = cases__prepare(
        c,
        "INSERT INTO cases (id, status, category, channel, priority, description, address, lon, lat, district, grid, "
        "reporter_name, reporter_phone, reported_by, alarm, media, created_at, updated_at, step, step_started, "
        "deadline, file_deadline) VALUES (?1, 'reported', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, "
        "?15, ?16, ?16, 'file', ?16, ?17, ?17)",
        err);
    if (!st)
        return err ? err->code : CB_EINTERNAL;
    char *media = json_is_array(in->media) ? json_dumps(in->media, JSON_COMPACT) : NULL;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, in->category, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, in->channel, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 4, in->urgent ? "urgent" : "normal", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, in->description, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 6, in->address ? in->address : "", -1, SQLITE_TRANSIENT);
    if (in->has_point) {
        sqlite3_bind_double(st, 7, in->lon);
        sqlite3_bind_double(st, 8, in->lat);
    }
    cases__bind_text(st, 9, in->district);
    cases__bind_text(st, 10, in->grid);
    cases__bind_text(st, 11, in->name);
    cases__bind_text(st, 12, in->phone);
    sqlite3_bind_text(st, 13, who->id, -1, SQLITE_TRANSIENT);
    cases__bind_text(st, 14, in->alarm);
    sqlite3_bind_text(st, 15, media ? media : "[]", -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 16, now);
    sqlite3_bind_int64(st, 17, calendar_add_natural(now, c->opt.file_limit_min));
    int rc = sqlite3_step(st);
    cases__finish(c, st);
    free(media);
    return rc == SQLITE_DONE ? 0 : cases__step_error(c, rc, "storing the case", err);
}

/* After the row exists: link a duplicate, or accept, file and route. */
static int after_intake(cases *c, const struct principal *who, const struct intake *in, struct cb_case *k,
                        int64_t now, struct case_events *ev, cb_error *err)
{
    char dup[CASE_ID_MAX];
    if (in->has_point && find_duplicate(c, in->category, k->id, in->lon, in->lat, now, dup, sizeof dup)) {
        char note[96];
        snprintf(note, sizeof note, "duplicate of %s", dup);
        int rc = cases__update(c, k->id, "duplicate_of = ?3", now, dup, err);
        struct case_args a = {.note = note};
        struct case_transition merge = {CASE_REPORTED, "merge", CASE_REJECTED, 0, "duplicate"};
        return rc == 0 ? cases__apply(c, k, &merge, &cases__system, &a, now, ev, err) : rc;
    }
    if (strcmp(in->channel, "citizen") == 0)
        return 0; /* a citizen's report waits for the operations centre to accept it */
    char note[64];
    snprintf(note, sizeof note, "channel %s: accepted and filed on intake", in->channel);
    struct case_args a = {.note = note};
    int rc = cases__apply(c, k, case_transition_find(CASE_REPORTED, "accept", -2), who, &a, now, ev, err);
    if (rc == 0)
        rc = cases__apply(c, k, case_transition_find(CASE_ACCEPTED, "file", -2), who, &a, now, ev, err);
    if (rc == 0)
        rc = cases__auto_dispatch(c, k, now, ev, err);
    return rc;
}

static int intake_locked(cases *c, const struct principal *who, const json_t *body,
                         const unsigned char *follow_hash, int64_t now, char *id, struct case_events *ev, cb_error *err)
{
    struct intake in;
    int rc = parse_intake(c, who, body, &in, err);
    if (rc != 0)
        return rc;
    struct cb_case k;
    rc = db_exec(c->d, "BEGIN IMMEDIATE", err);
    if (rc != 0)
        return rc;
    rc = next_id(c, now, id, err);
    if (rc == 0)
        rc = insert_case(c, who, &in, id, now, err);
    if (rc == 0 && follow_hash)
        rc = cases__set_follow_hash(c, id, follow_hash, err);
    if (rc == 0)
        rc = cases__add_history(c, id, -1, CASE_REPORTED, "report", who, NULL, in.description, in.media, now, err);
    if (rc == 0)
        rc = cases__load(c, id, &k, err);
    if (rc == 0)
        rc = after_intake(c, who, &in, &k, now, ev, err);
    int end = db_exec(c->d, rc == 0 ? "COMMIT" : "ROLLBACK", rc == 0 ? err : NULL);
    return rc != 0 ? rc : end;
}

static int intake(cases *c, const struct principal *who, const json_t *body, const unsigned char *follow_hash,
                  int64_t now, json_t **out, cb_error *err)
{
    char id[CASE_ID_MAX];
    struct case_events ev = {{0}, 0};
    pthread_mutex_lock(&c->mu);
    int rc = intake_locked(c, who, body, follow_hash, now, id, &ev, err);
    if (rc == 0) {
        cases__publish(c, id, &ev, 1);
        *out = cases__json(c, id, who, now, 1);
    }
    pthread_mutex_unlock(&c->mu);
    if (rc != 0)
        return rc;
    return *out ? 0 : cb_error_set(err, CB_ENOMEM, NULL, "rendering the case");
}

int cases_intake(cases *c, const struct principal *who, const json_t *body, int64_t now, json_t **out,
                 cb_error *err)
{
    return intake(c, who, body, NULL, now, out, err);
}

int cases_intake_followed(cases *c, const struct principal *who, const json_t *body, int64_t now,
                          char token[CASE_FOLLOW_TOKEN_MAX], json_t **out, cb_error *err)
{
    unsigned char hash[CASE_FOLLOW_HASH_BYTES];
    cases__follow_token(token, hash);
    int rc = intake(c, who, body, hash, now, out, err);
    if (rc != 0)
        token[0] = '\0';
    return rc;
}

int cases_open_from_alarm(cases *c, const json_t *alarm, const char *category, char *case_id, size_t n)
{
    const char *id = json_string_value(json_object_get(alarm, "id"));
    const char *msg = json_string_value(json_object_get(alarm, "message"));
    json_t *body = json_pack("{s:s, s:s, s:s, s:O?, s:O?, s:O?, s:O?, s:s?}", "channel", "sensor", "category",
                             category ? category : "", "description", msg && *msg ? msg : "传感器告警", "lon",
                             json_object_get(alarm, "lon"), "lat", json_object_get(alarm, "lat"), "district",
                             json_object_get(alarm, "district"), "grid", json_object_get(alarm, "grid"), "alarm", id);
    if (!body)
        return CB_ENOMEM;
    const json_t *sev = json_object_get(alarm, "severity");
    if (json_is_string(sev) && strcmp(json_string_value(sev), "critical") == 0)
        json_object_set_new(body, "priority", json_string("urgent"));
    const char *entity = json_string_value(json_object_get(alarm, "entity"));
    if (!json_is_number(json_object_get(alarm, "lon")) && !json_is_string(json_object_get(alarm, "district"))) {
        char where[160]; /* a device without a position: the case names it, a dispatcher locates it */
        snprintf(where, sizeof where, "设备 %s", entity ? entity : "(未知)");
        json_object_set_new(body, "address", json_string(where));
    }
    json_t *out = NULL;
    cb_error err;
    int rc = cases_intake(c, &cases__system, body, clock_now_ms(), &out, &err);
    json_decref(body);
    if (rc == 0)
        snprintf(case_id, n, "%s", json_string_value(json_object_get(out, "id")));
    else
        log_event(LOG_WARN, "cases", "msg=\"no case from alarm\" alarm=%s error=%s detail=\"%s\"", id ? id : "-",
                  cb_err_name(rc), err.message);
    json_decref(out);
    return rc;
}

