/* open311 — the GeoReport v2 documents over the case tables (migration 6),
 * and the translation of a POST into a case intake; see open311.h. The
 * service attributes are a table (STYLE 18): components (部件) ask for their
 * condition, matters (事项) ask nothing more. */
#include "open311/open311.h"

#include "cases/workflow.h"
#include "core/clock.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHANGESET "2026-11-23T00:00:00Z" /* when these documents last changed shape */
#define IDS_MAX 100                      /* service_request_id values per GET */
#define CODES_MAX 50                     /* service_code values per GET */

/* ---- service attributes ---- */

struct attr_value {
    const char *key, *name;
};

struct attribute {
    const char *kind; /* the category kind it applies to: "component" or "matter" */
    const char *code, *description, *datatype_description;
    int required;
    const struct attr_value *values;
};

static const struct attr_value condition_values[] = {
    {"damaged", "破损"}, {"missing", "丢失"}, {"displaced", "移位"}, {"blocked", "堵塞"}, {"other", "其他"}, {NULL, NULL},
};

static const struct attribute attributes[] = {
    {"component", "condition", "部件状况", "请选择部件的状况", 1, condition_values},
};
#define NATTRIBUTES (sizeof attributes / sizeof attributes[0])

static int has_attributes(const char *kind)
{
    for (size_t i = 0; i < NATTRIBUTES; i++)
        if (strcmp(attributes[i].kind, kind) == 0)
            return 1;
    return 0;
}

static json_t *attribute_json(const struct attribute *a, int order)
{
    json_t *values = json_array();
    for (const struct attr_value *v = a->values; v->key; v++)
        json_array_append_new(values, json_pack("{s:s, s:s}", "key", v->key, "name", v->name));
    return json_pack("{s:b, s:s, s:s, s:b, s:s, s:i, s:s, s:o}", "variable", 1, "code", a->code, "datatype",
                     "singlevaluelist", "required", a->required, "datatype_description", a->datatype_description,
                     "order", order, "description", a->description, "values", values);
}

/* ---- SQL helpers ---- */

static sqlite3_stmt *prepare(db *d, const char *sql, cb_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db_sqlite(d), sql, -1, &st, NULL);
    if (rc != SQLITE_OK) {
        db_error(d, rc, "preparing an Open311 query", err);
        sqlite3_finalize(st);
        return NULL;
    }
    return st;
}

static const char *col_text(sqlite3_stmt *st, int col)
{
    const unsigned char *s = sqlite3_column_text(st, col);
    return s ? (const char *)s : NULL;
}

static json_t *time_json(sqlite3_stmt *st, int col)
{
    char t[CLOCK_RFC3339_MAX];
    if (sqlite3_column_type(st, col) == SQLITE_NULL)
        return json_null();
    return json_string(clock_format_rfc3339(sqlite3_column_int64(st, col), t));
}

/* "处置时限 2 小时（自然时间）" from the category's limit. */
static void limit_notice(int minutes, int natural, char *out, size_t n)
{
    if (minutes % 60 == 0)
        snprintf(out, n, "处置时限 %d 小时（%s）", minutes / 60, natural ? "自然时间" : "工作时间");
    else
        snprintf(out, n, "处置时限 %d 分钟（%s）", minutes, natural ? "自然时间" : "工作时间");
}

/* ---- discovery and services ---- */

json_t *open311_discovery(const char *endpoint_url)
{
    json_t *endpoint = json_pack("{s:s, s:s, s:s, s:s, s:[s, s]}", "specification", "http://wiki.open311.org/GeoReport_v2",
                                 "url", endpoint_url, "changeset", CHANGESET, "type", "production", "formats",
                                 "text/xml", "application/json");
    return json_pack("{s:s, s:s, s:s, s:[o]}", "changeset", CHANGESET, "contact",
                     "城市运行管理服务中心（12345 热线）", "key_service",
                     "API keys for POST are citizen app keys (role citizen) from the city's operations centre",
                     "endpoints", endpoint);
}

int open311_services(db *d, json_t **out, cb_error *err)
{
    sqlite3_stmt *st = prepare(d,
                               "SELECT code, name, kind, class_name, urgency, limit_minutes, limit_natural "
                               "FROM case_category WHERE enabled = 1 ORDER BY code",
                               err);
    if (!st)
        return err->code;
    json_t *list = json_array();
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *kind = col_text(st, 2), *klass = col_text(st, 3);
        int component = kind && strcmp(kind, "component") == 0;
        char limit[96], description[320], keywords[160];
        limit_notice(sqlite3_column_int(st, 5), sqlite3_column_int(st, 6), limit, sizeof limit);
        snprintf(description, sizeof description, "%s：%s（%s%s）", component ? "部件" : "事项", col_text(st, 1),
                 limit, strcmp(col_text(st, 4) ? col_text(st, 4) : "", "urgent") == 0 ? "，紧急" : "");
        snprintf(keywords, sizeof keywords, "%s,%s", component ? "部件" : "事项", klass ? klass : "");
        json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:b, s:s, s:s, s:s}", "service_code",
                                              col_text(st, 0), "service_name", col_text(st, 1), "description",
                                              description, "metadata", has_attributes(kind ? kind : ""), "type",
                                              "realtime", "keywords", keywords, "group", klass ? klass : ""));
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        json_decref(list);
        return db_error(d, rc, "listing services", err);
    }
    *out = list;
    return 0;
}

/* The kind of an enabled category, or CB_ENOT_FOUND. */
static int service_kind(db *d, const char *code, char *kind, size_t n, char *name, size_t nn, cb_error *err)
{
    sqlite3_stmt *st = prepare(d, "SELECT kind, name FROM case_category WHERE code = ? AND enabled = 1", err);
    if (!st)
        return err->code;
    sqlite3_bind_text(st, 1, code, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        snprintf(kind, n, "%s", col_text(st, 0) ? col_text(st, 0) : "");
        snprintf(name, nn, "%s", col_text(st, 1) ? col_text(st, 1) : "");
    }
    sqlite3_finalize(st);
    if (rc == SQLITE_ROW)
        return 0;
    if (rc == SQLITE_DONE)
        return cb_error_set(err, CB_ENOT_FOUND, "service_code", "no service '%s'", code);
    return db_error(d, rc, "reading a service", err);
}

int open311_service_definition(db *d, const char *code, json_t **out, cb_error *err)
{
    char kind[32], name[128];
    int rc = service_kind(d, code, kind, sizeof kind, name, sizeof name, err);
    if (rc != 0)
        return rc;
    json_t *list = json_array();
    int order = 0;
    for (size_t i = 0; i < NATTRIBUTES; i++)
        if (strcmp(attributes[i].kind, kind) == 0)
            json_array_append_new(list, attribute_json(&attributes[i], ++order));
    *out = json_pack("{s:s, s:o}", "service_code", code, "attributes", list);
    return *out ? 0 : cb_error_set(err, CB_ENOMEM, NULL, "service definition");
}

/* ---- service requests ---- */

/* Only citizens' reports are service requests: a 12345 call, a grid
 * worker's log or a sensor's alarm is not public (its description may name
 * the caller), so every query starts from channel citizen. */
#define REQUEST_SELECT                                                                                          \
    "SELECT k.id, k.status, k.category, cc.name, k.description, d.name, k.created_at, k.updated_at, "          \
    "k.handle_deadline, k.dispatched_at, k.address, k.lat, k.lon, k.media, k.duplicate_of, cc.limit_minutes, " \
    "cc.limit_natural FROM cases k LEFT JOIN case_category cc ON cc.code = k.category "                       \
    "LEFT JOIN department d ON d.code = k.department WHERE k.channel = 'citizen' "
enum {
    R_ID, R_STATUS, R_CODE, R_NAME, R_DESCRIPTION, R_AGENCY, R_CREATED, R_UPDATED, R_DEADLINE, R_DISPATCHED,
    R_ADDRESS, R_LAT, R_LON, R_MEDIA, R_DUPLICATE, R_LIMIT, R_NATURAL
};
#define OPEN_SQL "k.status NOT IN ('closed', 'evaluated', 'rejected')"

static json_t *number_json(sqlite3_stmt *st, int col)
{
    return sqlite3_column_type(st, col) == SQLITE_NULL ? json_null() : json_real(sqlite3_column_double(st, col));
}

static json_t *text_json_or_null(const char *s)
{
    return s && *s ? json_string(s) : json_null();
}

/* The first photo of the case, or null. */
static json_t *media_json(const char *media)
{
    json_t *list = media ? json_loads(media, 0, NULL) : NULL;
    const char *first = json_string_value(json_array_get(list, 0));
    json_t *out = first ? json_string(first) : json_null();
    json_decref(list);
    return out;
}

static json_t *request_json(sqlite3_stmt *st)
{
    const char *status = col_text(st, R_STATUS), *dup = col_text(st, R_DUPLICATE);
    int s = case_status_parse(status);
    int open = s >= 0 && case_status_open((enum case_status)s);
    char notes[160], notice[96];
    if (dup)
        snprintf(notes, sizeof notes, "与 %s 为同一问题，已合并办理", dup);
    else
        snprintf(notes, sizeof notes, "%s", s >= 0 ? case_status_label((enum case_status)s) : "");
    notice[0] = '\0';
    if (sqlite3_column_type(st, R_LIMIT) != SQLITE_NULL)
        limit_notice(sqlite3_column_int(st, R_LIMIT), sqlite3_column_int(st, R_NATURAL), notice, sizeof notice);
    int dispatched = sqlite3_column_type(st, R_DISPATCHED) != SQLITE_NULL;
    json_t *o = json_object();
    json_object_set_new(o, "service_request_id", json_string(col_text(st, R_ID)));
    json_object_set_new(o, "status", json_string(open ? "open" : "closed"));
    json_object_set_new(o, "status_notes", json_string(notes));
    json_object_set_new(o, "service_name", text_json_or_null(col_text(st, R_NAME)));
    json_object_set_new(o, "service_code", text_json_or_null(col_text(st, R_CODE)));
    json_object_set_new(o, "description", text_json_or_null(col_text(st, R_DESCRIPTION)));
    json_object_set_new(o, "agency_responsible", dispatched ? text_json_or_null(col_text(st, R_AGENCY)) : json_null());
    json_object_set_new(o, "service_notice", notice[0] ? json_string(notice) : json_null());
    json_object_set_new(o, "requested_datetime", time_json(st, R_CREATED));
    json_object_set_new(o, "updated_datetime", time_json(st, R_UPDATED));
    json_object_set_new(o, "expected_datetime", dispatched ? time_json(st, R_DEADLINE) : json_null());
    json_object_set_new(o, "address", text_json_or_null(col_text(st, R_ADDRESS)));
    json_object_set_new(o, "lat", number_json(st, R_LAT));
    json_object_set_new(o, "long", number_json(st, R_LON));
    json_object_set_new(o, "media_url", media_json(col_text(st, R_MEDIA)));
    return o;
}

/* Runs a bound REQUEST_SELECT (st may be NULL: err is filled) into *out. */
static int collect(db *d, sqlite3_stmt *st, json_t **out, cb_error *err)
{
    if (!st)
        return err->code;
    json_t *list = json_array();
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        json_array_append_new(list, request_json(st));
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        json_decref(list);
        return db_error(d, rc, "listing service requests", err);
    }
    *out = list;
    return 0;
}

int open311_request(db *d, const char *id, json_t **out, cb_error *err)
{
    sqlite3_stmt *st = prepare(d, REQUEST_SELECT "AND k.id = ?", err);
    if (st)
        sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    int rc = collect(d, st, out, err);
    if (rc == 0 && json_array_size(*out) == 0) {
        json_decref(*out);
        rc = cb_error_set(err, CB_ENOT_FOUND, "service_request_id", "no service request '%.40s'", id);
    }
    return rc;
}

/* Splits a comma list into at most max trimmed, non-empty items (pointers
 * into copy, which the caller frees); -1 beyond max. */
static int split(const char *list, char **copy, const char **items, int max)
{
    *copy = strdup(list);
    if (!*copy)
        return -1;
    int n = 0;
    for (char *save = NULL, *t = strtok_r(*copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        while (*t == ' ')
            t++;
        size_t len = strlen(t);
        while (len > 0 && t[len - 1] == ' ')
            t[--len] = '\0';
        if (!*t)
            continue;
        if (n == max)
            return -1;
        items[n++] = t;
    }
    return n;
}

/* start_date and end_date, defaulting to the 90 days up to now; a range may
 * not span more than 90 days. */
static int date_range(const struct open311_filter *f, int64_t *start, int64_t *end, cb_error *err)
{
    int rc = 0;
    if (f->end_date)
        rc = clock_parse_time_field(f->end_date, "end_date", end, err);
    if (rc == 0 && f->start_date)
        rc = clock_parse_time_field(f->start_date, "start_date", start, err);
    if (rc != 0)
        return rc;
    if (!f->end_date)
        *end = f->start_date ? *start + OPEN311_SPAN_MS : f->now;
    if (!f->start_date)
        *start = *end - OPEN311_SPAN_MS;
    if (*start > *end)
        return cb_error_set(err, CB_EINVALID_FIELD, "start_date", "start_date is after end_date");
    if (*end - *start > OPEN311_SPAN_MS)
        return cb_error_set(err, CB_EINVALID_FIELD, "end_date", "a date range may not span more than 90 days");
    return 0;
}

/* The status filter as SQL: "" for both, or one condition. */
static int status_sql(const char *status, const char **sql, cb_error *err)
{
    int open = 0, closed = 0;
    char *copy = NULL;
    const char *items[4];
    int n = status ? split(status, &copy, items, 4) : 0;
    for (int i = 0; i < n; i++) {
        if (strcmp(items[i], "open") == 0)
            open = 1;
        else if (strcmp(items[i], "closed") == 0)
            closed = 1;
        else
            n = -1;
    }
    free(copy);
    if (n < 0)
        return cb_error_set(err, CB_EINVALID_FIELD, "status", "status must be open, closed or open,closed");
    *sql = open == closed ? "" : open ? " AND " OPEN_SQL : " AND NOT (" OPEN_SQL ")";
    return 0;
}

static int requests_by_id(db *d, const char *ids, json_t **out, cb_error *err)
{
    char *copy = NULL;
    const char *items[IDS_MAX];
    int n = split(ids, &copy, items, IDS_MAX);
    if (n <= 0) {
        free(copy);
        return cb_error_set(err, CB_EINVALID_FIELD, "service_request_id", "service_request_id is 1..%d ids, comma-separated",
                            IDS_MAX);
    }
    buf sql = BUF_INIT;
    buf_puts(&sql, REQUEST_SELECT "AND k.id IN (");
    for (int i = 0; i < n; i++)
        buf_puts(&sql, i ? ",?" : "?");
    buf_puts(&sql, ") ORDER BY k.rowid DESC");
    sqlite3_stmt *st = buf_failed(&sql) ? NULL : prepare(d, sql.data, err);
    int failed = buf_failed(&sql);
    buf_free(&sql);
    for (int i = 0; st && i < n; i++)
        sqlite3_bind_text(st, i + 1, items[i], -1, SQLITE_TRANSIENT);
    int rc = failed ? cb_error_set(err, CB_ENOMEM, NULL, "query") : collect(d, st, out, err);
    free(copy);
    return rc;
}

int open311_requests(db *d, const struct open311_filter *f, json_t **out, cb_error *err)
{
    if (f->service_request_id)
        return requests_by_id(d, f->service_request_id, out, err);
    int64_t start = 0, end = 0;
    const char *status = "";
    int rc = date_range(f, &start, &end, err);
    if (rc == 0)
        rc = status_sql(f->status, &status, err);
    if (rc != 0)
        return rc;
    char *copy = NULL;
    const char *codes[CODES_MAX];
    int ncodes = f->service_code ? split(f->service_code, &copy, codes, CODES_MAX) : 0;
    if (ncodes < 0) {
        free(copy);
        return cb_error_set(err, CB_EINVALID_FIELD, "service_code", "at most %d service codes", CODES_MAX);
    }
    buf sql = BUF_INIT;
    buf_puts(&sql, REQUEST_SELECT "AND k.created_at >= ?1 AND k.created_at <= ?2");
    buf_puts(&sql, status);
    for (int i = 0; i < ncodes; i++)
        buf_printf(&sql, "%s?%d", i ? "," : " AND k.category IN (", i + 3);
    buf_printf(&sql, "%s ORDER BY k.created_at DESC, k.rowid DESC LIMIT %d", ncodes ? ")" : "", OPEN311_LIST_MAX);
    sqlite3_stmt *st = buf_failed(&sql) ? NULL : prepare(d, sql.data, err);
    int failed = buf_failed(&sql);
    buf_free(&sql);
    if (st) {
        sqlite3_bind_int64(st, 1, start);
        sqlite3_bind_int64(st, 2, end);
    }
    for (int i = 0; st && i < ncodes; i++)
        sqlite3_bind_text(st, i + 3, codes[i], -1, SQLITE_TRANSIENT);
    rc = failed ? cb_error_set(err, CB_ENOMEM, NULL, "query") : collect(d, st, out, err);
    free(copy);
    return rc;
}

/* ---- POST: the intake body ---- */

static int number_param(const char *s, const char *field, double lo, double hi, double *out, cb_error *err)
{
    char *end;
    double v = s && *s ? strtod(s, &end) : NAN;
    if (!s || !*s || *end || !isfinite(v) || v < lo || v > hi)
        return cb_error_set(err, CB_EINVALID_FIELD, field, "%s must be a number in %g..%g (WGS 84 degrees)", field,
                            lo, hi);
    *out = v;
    return 0;
}

/* "/media/<64 hex>.jpg", or an absolute URL whose path is that. */
static int media_path(const char *url, char *out, size_t n)
{
    const char *p = url;
    if (strncmp(p, "http://", 7) == 0 || strncmp(p, "https://", 8) == 0) {
        p = strchr(strchr(p, ':') + 3, '/');
        if (!p)
            return -1;
    }
    size_t len = strlen(p);
    if (len < 7 + 64 + 4 || strncmp(p, "/media/", 7) != 0)
        return -1;
    for (size_t i = 7; i < 7 + 64; i++)
        if (!strchr("0123456789abcdef", p[i]))
            return -1;
    const char *ext = p + 7 + 64;
    if (strcmp(ext, ".jpg") != 0 && strcmp(ext, ".png") != 0 && strcmp(ext, ".webp") != 0)
        return -1;
    snprintf(out, n, "%s", p);
    return 0;
}

/* Checks the attributes of the service and appends their answers to text. */
static int add_attributes(const char *kind, open311_param_fn param, void *ctx, buf *text, cb_error *err)
{
    for (size_t i = 0; i < NATTRIBUTES; i++) {
        const struct attribute *a = &attributes[i];
        if (strcmp(a->kind, kind) != 0)
            continue;
        char name[80];
        snprintf(name, sizeof name, "attribute[%s]", a->code);
        const char *v = param(ctx, name);
        if (!v || !*v) {
            if (a->required)
                return cb_error_set(err, CB_EMISSING_FIELD, name, "%s (%s) is required for this service", name,
                                    a->description);
            continue;
        }
        const struct attr_value *val = a->values;
        while (val->key && strcmp(val->key, v) != 0)
            val++;
        if (!val->key)
            return cb_error_set(err, CB_EINVALID_FIELD, name, "%s: '%.40s' is not one of the service definition's keys",
                                name, v);
        buf_printf(text, "【%s：%s】", a->description, val->name);
    }
    return 0;
}

/* lat/long, or an address: what the intake needs to place the case. */
static int location(json_t *body, open311_param_fn param, void *ctx, cb_error *err)
{
    const char *lat = param(ctx, "lat"), *lon = param(ctx, "long");
    const char *address = param(ctx, "address_string"), *address_id = param(ctx, "address_id");
    if (lat || lon) {
        double la, lo;
        int rc = number_param(lat, "lat", -90, 90, &la, err);
        if (rc == 0)
            rc = number_param(lon, "long", -180, 180, &lo, err);
        if (rc != 0)
            return rc;
        json_object_set_new(body, "lat", json_real(la));
        json_object_set_new(body, "lon", json_real(lo));
    }
    if (address && *address)
        json_object_set_new(body, "address", json_string(address));
    else if (address_id && *address_id)
        json_object_set_new(body, "address", json_string(address_id));
    if (!lat && !json_object_get(body, "address"))
        return cb_error_set(err, CB_EMISSING_FIELD, "lat", "give lat and long, address_string or address_id");
    return 0;
}

/* The reporter as the case keeps it (masked for most roles, never in an
 * Open311 answer): 姓 then 名. */
static void reporter(json_t *body, open311_param_fn param, void *ctx)
{
    const char *first = param(ctx, "first_name"), *last = param(ctx, "last_name"), *phone = param(ctx, "phone");
    char name[200];
    snprintf(name, sizeof name, "%s%s", last ? last : "", first ? first : "");
    if (!name[0] && !(phone && *phone))
        return;
    json_object_set_new(body, "reporter", json_pack("{s:s?, s:s?}", "name", name[0] ? name : NULL, "phone",
                                                    phone && *phone ? phone : NULL));
}

int open311_intake_body(db *d, open311_param_fn param, void *ctx, json_t **out, cb_error *err)
{
    const char *code = param(ctx, "service_code");
    if (!code || !*code)
        return cb_error_set(err, CB_EMISSING_FIELD, "service_code", "service_code is required");
    char kind[32], name[128];
    int rc = service_kind(d, code, kind, sizeof kind, name, sizeof name, err);
    if (rc == CB_ENOT_FOUND)
        return cb_error_set(err, CB_EINVALID_FIELD, "service_code", "no service '%.40s': see services.json", code);
    if (rc != 0)
        return rc;
    json_t *body = json_pack("{s:s, s:s}", "channel", "citizen", "category", code);
    buf text = BUF_INIT;
    const char *description = param(ctx, "description");
    buf_puts(&text, description && *description ? description : name);
    rc = add_attributes(kind, param, ctx, &text, err);
    if (rc == 0)
        rc = location(body, param, ctx, err);
    const char *media = param(ctx, "media_url");
    char path[128];
    if (rc == 0 && media && *media) {
        if (media_path(media, path, sizeof path) != 0)
            rc = cb_error_set(err, CB_EINVALID_FIELD, "media_url",
                              "media_url must be a photo uploaded with POST /api/v1/media (/media/<sha256>.jpg)");
        else
            json_object_set_new(body, "media", json_pack("[s]", path));
    }
    if (rc == 0 && buf_failed(&text))
        rc = cb_error_set(err, CB_ENOMEM, NULL, "description");
    if (rc == 0) {
        json_object_set_new(body, "description", json_string(text.data ? text.data : ""));
        reporter(body, param, ctx);
    }
    buf_free(&text);
    if (rc != 0) {
        json_decref(body);
        return rc;
    }
    *out = body;
    return 0;
}

json_t *open311_post_reply(const json_t *created, const char *account_id, const char *access_token)
{
    const char *id = json_string_value(json_object_get(created, "id"));
    const char *dup = json_string_value(json_object_get(created, "duplicate_of"));
    char notice[200];
    if (dup)
        snprintf(notice, sizeof notice, "与 %s 为同一问题，已合并办理，可用该编号查询进展", dup);
    else
        snprintf(notice, sizeof notice, "已收到，编号 %s，受理后派遣到责任单位办理", id ? id : "");
    return json_pack("[{s:s?, s:s, s:s?, s:s?}]", "service_request_id", id, "service_notice", notice, "account_id",
                     account_id && *account_id ? account_id : NULL, "access_token",
                     access_token && *access_token ? access_token : NULL);
}
