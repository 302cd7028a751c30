/* case_json — reading cases: one case as JSON (masked for the role), the
 * filtered list with full-text search, and the statistics of the dashboard. */
#include "cases/cases_int.h"

#include "core/clock.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIST_DEFAULT 50
#define LIST_MAX 500
#define HOUR_MS 3600000LL

#define CASE_SELECT                                                                                            \
    "SELECT k.id, k.status, k.category, cc.name, k.channel, k.description, k.address, k.lon, k.lat, "         \
    "k.district, r.name, k.grid, k.department, d.name, k.priority, k.reporter_name, k.reporter_phone, "       \
    "k.created_at, k.updated_at, k.deadline, k.step, k.step_started, k.duplicate_of, k.rating, k.alarm, "    \
    "k.media, k.rework_count, k.accepted_at, k.filed_at, k.dispatched_at, k.started_at, k.handled_at, "      \
    "k.checked_at, k.closed_at, k.evaluated_at, k.return_count, k.extension_request, k.rowid "               \
    "FROM cases k LEFT JOIN case_category cc ON cc.code = k.category "                                      \
    "LEFT JOIN department d ON d.code = k.department LEFT JOIN region r ON r.code = k.district "
enum {
    COL_ID, COL_STATUS, COL_CATEGORY, COL_CATEGORY_NAME, COL_CHANNEL, COL_DESCRIPTION, COL_ADDRESS, COL_LON,
    COL_LAT, COL_DISTRICT, COL_DISTRICT_NAME, COL_GRID, COL_DEPARTMENT, COL_DEPARTMENT_NAME, COL_PRIORITY,
    COL_REPORTER_NAME, COL_REPORTER_PHONE, COL_CREATED, COL_UPDATED, COL_DEADLINE, COL_STEP, COL_STEP_STARTED,
    COL_DUPLICATE_OF, COL_RATING, COL_ALARM, COL_MEDIA, COL_REWORK, COL_ACCEPTED, COL_FILED, COL_DISPATCHED,
    COL_STARTED, COL_HANDLED, COL_CHECKED, COL_CLOSED, COL_EVALUATED, COL_RETURNS, COL_EXT_REQUEST, COL_ROWID
};
static const char *const step_times[] = {"accepted_at", "filed_at",  "dispatched_at", "started_at",
                                         "handled_at",  "checked_at", "closed_at",    "evaluated_at"};

static void copy_col(sqlite3_stmt *st, int col, char *out, size_t n)
{
    const unsigned char *s = sqlite3_column_text(st, col);
    snprintf(out, n, "%s", s ? (const char *)s : "");
}

int cases__load(cases *c, const char *id, struct cb_case *k, cb_error *err)
{
    sqlite3_stmt *st = cases__prepare(
        c,
        "SELECT id, status, category, channel, department, district, grid, duplicate_of, parked_from, step, "
        "created_at, step_started, deadline, file_deadline, dispatch_deadline, handle_deadline, handled_on_time, "
        "extension_minutes, extension_request, rework_count FROM cases WHERE id = ?",
        err);
    if (!st)
        return err ? err->code : CB_EINTERNAL;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        cases__finish(c, st);
        return rc == SQLITE_DONE ? cb_error_set(err, CB_ENOT_FOUND, "id", "no case %s", id)
                                 : cases__step_error(c, rc, "reading the case", err);
    }
    memset(k, 0, sizeof *k);
    copy_col(st, 0, k->id, sizeof k->id);
    k->status = (enum case_status)case_status_parse((const char *)sqlite3_column_text(st, 1));
    copy_col(st, 2, k->category, sizeof k->category);
    copy_col(st, 3, k->channel, sizeof k->channel);
    copy_col(st, 4, k->department, sizeof k->department);
    copy_col(st, 5, k->district, sizeof k->district);
    copy_col(st, 6, k->grid, sizeof k->grid);
    copy_col(st, 7, k->duplicate_of, sizeof k->duplicate_of);
    copy_col(st, 8, k->parked_from, sizeof k->parked_from);
    copy_col(st, 9, k->step, sizeof k->step);
    k->created_at = sqlite3_column_int64(st, 10);
    k->step_started = sqlite3_column_int64(st, 11);
    k->has_deadline = sqlite3_column_type(st, 12) != SQLITE_NULL;
    k->deadline = sqlite3_column_int64(st, 12);
    k->file_deadline = sqlite3_column_int64(st, 13);
    k->dispatch_deadline = sqlite3_column_int64(st, 14);
    k->handle_deadline = sqlite3_column_int64(st, 15);
    k->handled_on_time = sqlite3_column_type(st, 16) == SQLITE_NULL ? -1 : sqlite3_column_int(st, 16);
    k->extension_minutes = sqlite3_column_int(st, 17);
    k->extension_request = sqlite3_column_int(st, 18);
    k->rework_count = sqlite3_column_int(st, 19);
    cases__finish(c, st);
    if ((int)k->status < 0)
        return cb_error_set(err, CB_ECORRUPT, "status", "case %s has an unknown status", id);
    return 0;
}

/* Whether who may see case k; no principal sees none (internal callers
 * name theirs, cases__system). */
int cases__visible(const struct principal *who, const struct cb_case *k)
{
    if (!who)
        return 0;
    if (who->role == ROLE_DEPT)
        return who->department[0] && strcmp(who->department, k->department) == 0;
    return 1;
}

const char *cases__step_of(enum case_status s)
{
    switch (s) {
    case CASE_REPORTED:
    case CASE_ACCEPTED: return "file";
    case CASE_FILED:
    case CASE_RETURNED: return "dispatch";
    case CASE_DISPATCHED:
    case CASE_IN_PROGRESS:
    case CASE_EXTENDED:
    case CASE_REWORK: return "handle";
    case CASE_HANDLED: return "check";
    default: return NULL;
    }
}

static json_t *time_or_null(sqlite3_stmt *st, int col)
{
    char buf[CLOCK_RFC3339_MAX];
    if (sqlite3_column_type(st, col) == SQLITE_NULL)
        return json_null();
    return json_string(clock_format_rfc3339(sqlite3_column_int64(st, col), buf));
}

static json_t *text_or_null(sqlite3_stmt *st, int col)
{
    const unsigned char *s = sqlite3_column_text(st, col);
    return s ? json_string((const char *)s) : json_null();
}

static json_t *reporter_json(sqlite3_stmt *st, const struct principal *who)
{
    const char *name = (const char *)sqlite3_column_text(st, COL_REPORTER_NAME);
    const char *phone = (const char *)sqlite3_column_text(st, COL_REPORTER_PHONE);
    if (!name && !phone)
        return json_null();
    char mn[3 * 64 + 2], mp[64 + 2];
    if (!cases_sees_reporter(who)) {
        cases_mask_name(name ? name : "", mn, sizeof mn);
        cases_mask_phone(phone ? phone : "", mp, sizeof mp);
        name = name ? mn : NULL;
        phone = phone ? mp : NULL;
    }
    return json_pack("{s:s?, s:s?}", "name", name, "phone", phone);
}

static json_t *strings_json(const char *const *s, size_t n, unsigned mask)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n && s[i]; i++)
        if (mask & (1u << i))
            json_array_append_new(a, json_string(s[i]));
    return a;
}

/* The actions who may take on the case of this row now (cases__may over the
 * table's rows for its status), each with its name and body fields. */
static json_t *actions_json(sqlite3_stmt *st, enum case_status status, const struct principal *who)
{
    struct cb_case k;
    const struct case_transition *rows[16];
    memset(&k, 0, sizeof k);
    k.status = status;
    copy_col(st, COL_ID, k.id, sizeof k.id);
    copy_col(st, COL_DEPARTMENT, k.department, sizeof k.department);
    copy_col(st, COL_DISTRICT, k.district, sizeof k.district);
    copy_col(st, COL_GRID, k.grid, sizeof k.grid);
    copy_col(st, COL_DUPLICATE_OF, k.duplicate_of, sizeof k.duplicate_of);
    size_t n = case_actions_for(status, who->role, rows, sizeof rows / sizeof rows[0]);
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++) {
        const struct case_action *a = case_action_info(rows[i]->action);
        assert(a); /* every action of the table has its row (test_cases) */
        if (cases__may(who, &k, rows[i], NULL) != 0)
            continue;
        json_array_append_new(list, json_pack("{s:s, s:s, s:o, s:o}", "action", a->action, "name", a->name, "needs",
                                              strings_json(a->needs, CASE_ACTION_FIELDS, ~0u), "required",
                                              strings_json(a->needs, CASE_ACTION_FIELDS, a->required)));
    }
    return list;
}

/* One row of CASE_SELECT as the API's CASE object. */
static json_t *row_json(cases *c, sqlite3_stmt *st, const struct principal *who, int64_t now, int detail)
{
    const char *step = (const char *)sqlite3_column_text(st, COL_STEP);
    int64_t deadline = sqlite3_column_int64(st, COL_DEADLINE);
    int status = case_status_parse((const char *)sqlite3_column_text(st, COL_STATUS));
    const char *timer = cases__timer(c, step, (const char *)sqlite3_column_text(st, COL_CATEGORY),
                                     sqlite3_column_int64(st, COL_STEP_STARTED), deadline, now);
    json_t *o = json_object();
    json_object_set_new(o, "id", text_or_null(st, COL_ID));
    json_object_set_new(o, "status", text_or_null(st, COL_STATUS));
    json_object_set_new(o, "status_name", json_string(case_status_label((enum case_status)status)));
    json_object_set_new(o, "category", text_or_null(st, COL_CATEGORY));
    json_object_set_new(o, "category_name", text_or_null(st, COL_CATEGORY_NAME));
    json_object_set_new(o, "channel", text_or_null(st, COL_CHANNEL));
    json_object_set_new(o, "description", text_or_null(st, COL_DESCRIPTION));
    json_object_set_new(o, "address", text_or_null(st, COL_ADDRESS));
    json_object_set_new(o, "lon", sqlite3_column_type(st, COL_LON) == SQLITE_NULL
                                      ? json_null() : json_real(sqlite3_column_double(st, COL_LON)));
    json_object_set_new(o, "lat", sqlite3_column_type(st, COL_LAT) == SQLITE_NULL
                                      ? json_null() : json_real(sqlite3_column_double(st, COL_LAT)));
    json_object_set_new(o, "district", text_or_null(st, COL_DISTRICT));
    json_object_set_new(o, "district_name", text_or_null(st, COL_DISTRICT_NAME));
    json_object_set_new(o, "grid", text_or_null(st, COL_GRID));
    json_object_set_new(o, "department", text_or_null(st, COL_DEPARTMENT));
    json_object_set_new(o, "department_name", text_or_null(st, COL_DEPARTMENT_NAME));
    json_object_set_new(o, "priority", text_or_null(st, COL_PRIORITY));
    json_object_set_new(o, "reporter", reporter_json(st, who));
    json_object_set_new(o, "created_at", time_or_null(st, COL_CREATED));
    json_object_set_new(o, "updated_at", time_or_null(st, COL_UPDATED));
    json_object_set_new(o, "step", text_or_null(st, COL_STEP));
    json_object_set_new(o, "deadline", step ? time_or_null(st, COL_DEADLINE) : json_null());
    json_object_set_new(o, "timer", json_string(timer));
    json_object_set_new(o, "overdue", json_boolean(step && now > deadline));
    json_object_set_new(o, "duplicate_of", text_or_null(st, COL_DUPLICATE_OF));
    json_object_set_new(o, "rating", text_or_null(st, COL_RATING));
    json_object_set_new(o, "alarm", text_or_null(st, COL_ALARM));
    json_object_set_new(o, "rework_count", json_integer(sqlite3_column_int(st, COL_REWORK)));
    if (!detail)
        return o;
    for (int i = 0; i < 8; i++)
        json_object_set_new(o, step_times[i], time_or_null(st, COL_ACCEPTED + i));
    json_object_set_new(o, "return_count", json_integer(sqlite3_column_int(st, COL_RETURNS)));
    json_object_set_new(o, "extension_requested_hours",
                        sqlite3_column_type(st, COL_EXT_REQUEST) == SQLITE_NULL
                            ? json_null() : json_real(sqlite3_column_int(st, COL_EXT_REQUEST) / 60.0));
    const char *media = (const char *)sqlite3_column_text(st, COL_MEDIA);
    json_t *m = media ? json_loads(media, 0, NULL) : NULL;
    json_object_set_new(o, "media", m ? m : json_array());
    if (who && status >= 0)
        json_object_set_new(o, "actions", actions_json(st, (enum case_status)status, who));
    return o;
}

static json_t *history_json(cases *c, const char *id)
{
    sqlite3_stmt *st = cases__prepare(c,
                                      "SELECT from_status, to_status, action, by_id, by_role, at, note, attachments, "
                                      "department FROM case_history WHERE case_id = ? ORDER BY seq",
                                      NULL);
    json_t *list = json_array();
    if (!st)
        return list;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *att = (const char *)sqlite3_column_text(st, 7);
        json_t *a = att ? json_loads(att, 0, NULL) : NULL;
        const struct case_action *info = case_action_info((const char *)sqlite3_column_text(st, 2));
        int to = case_status_parse((const char *)sqlite3_column_text(st, 1));
        json_array_append_new(list, json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:s?, s:s?}", "from",
                                              text_or_null(st, 0), "to", text_or_null(st, 1), "action",
                                              text_or_null(st, 2), "by", text_or_null(st, 3), "role",
                                              text_or_null(st, 4), "at", time_or_null(st, 5), "note",
                                              text_or_null(st, 6), "attachments", a ? a : json_array(),
                                              "department", text_or_null(st, 8), "action_name",
                                              info ? info->name : NULL, "to_name",
                                              to >= 0 ? case_status_label((enum case_status)to) : NULL));
    }
    cases__finish(c, st);
    return list;
}

json_t *cases__json(cases *c, const char *id, const struct principal *who, int64_t now, int detail)
{
    sqlite3_stmt *st = cases__prepare(c, CASE_SELECT "WHERE k.id = ?", NULL);
    if (!st)
        return NULL;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    json_t *o = sqlite3_step(st) == SQLITE_ROW ? row_json(c, st, who, now, detail) : NULL;
    cases__finish(c, st);
    if (o && detail)
        json_object_set_new(o, "history", history_json(c, id));
    return o;
}

int cases_get(cases *c, const struct principal *who, const char *id, int64_t now, json_t **out, cb_error *err)
{
    struct cb_case k;
    pthread_mutex_lock(&c->mu);
    int rc = cases__load(c, id, &k, err);
    if (rc == 0 && !cases__visible(who, &k))
        rc = cb_error_set(err, CB_ENOT_FOUND, "id", "no case %s", id);
    if (rc == 0 && !(*out = cases__json(c, id, who, now, 1)))
        rc = cb_error_set(err, CB_ENOMEM, NULL, "rendering the case");
    pthread_mutex_unlock(&c->mu);
    return rc;
}

/* ---- the list ---- */

/* A WHERE clause under construction with its text parameters. */
#define WHERE_MAX 16
struct where {
    char sql[1536];
    size_t len;
    const char *text[WHERE_MAX];
    int64_t num[WHERE_MAX];
    int is_num[WHERE_MAX];
    int n;
};

static void where_add(struct where *w, const char *cond, const char *text, const int64_t *num)
{
    if (w->n >= WHERE_MAX)
        return;
    int i = w->n++;
    w->text[i] = text;
    w->is_num[i] = num != NULL;
    w->num[i] = num ? *num : 0;
    char c[256];
    snprintf(c, sizeof c, cond, i + 1); /* cond holds one ?%d */
    w->len += (size_t)snprintf(w->sql + w->len, sizeof w->sql - w->len, "%s%s", w->len ? " AND " : "WHERE ", c);
}

static void where_bind(const struct where *w, sqlite3_stmt *st)
{
    for (int i = 0; i < w->n; i++) {
        if (w->is_num[i])
            sqlite3_bind_int64(st, i + 1, w->num[i]);
        else
            sqlite3_bind_text(st, i + 1, w->text[i], -1, SQLITE_TRANSIENT);
    }
}

/* Scope of the principal: a department sees its own cases only. */
static void where_scope(struct where *w, const struct principal *who)
{
    assert(who); /* every list is someone's: internal callers name cases__system */
    if (who->role == ROLE_DEPT)
        where_add(w, "k.department = ?%d", who->department, NULL);
}

/* "?q=" as an FTS5 phrase (trigram tokens need 3 characters; shorter text is a LIKE). */
static int utf8_chars(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

static int where_filters(struct where *w, const struct case_filter *f, int64_t now, char *phrase, size_t np,
                         int64_t *times, cb_error *err)
{
    if (f->status && strcmp(f->status, "open") == 0)
        where_add(w, "k.status NOT IN ('closed', 'evaluated', 'rejected') AND ?%d IS NOT NULL", "open", NULL);
    else if (f->status && case_status_parse(f->status) < 0)
        return cb_error_set(err, CB_EINVALID_FIELD, "status", "unknown status '%s'", f->status);
    else if (f->status)
        where_add(w, "k.status = ?%d", f->status, NULL);
    if (f->category)
        where_add(w, "k.category LIKE ?%d || '%%'", f->category, NULL);
    if (f->department)
        where_add(w, "k.department = ?%d", f->department, NULL);
    if (f->district)
        where_add(w, "k.district = ?%d", f->district, NULL);
    if (f->grid)
        where_add(w, "k.grid = ?%d", f->grid, NULL);
    if (f->channel)
        where_add(w, "k.channel = ?%d", f->channel, NULL);
    int rc = 0;
    if (f->from && (rc = clock_parse_time_field(f->from, "from", &times[0], err)) == 0)
        where_add(w, "k.created_at >= ?%d", NULL, &times[0]);
    if (rc == 0 && f->to && (rc = clock_parse_time_field(f->to, "to", &times[1], err)) == 0)
        where_add(w, "k.created_at < ?%d", NULL, &times[1]);
    if (rc == 0 && f->overdue && strcmp(f->overdue, "1") == 0) {
        times[2] = now;
        where_add(w, "k.step IS NOT NULL AND k.deadline < ?%d", NULL, &times[2]);
    }
    if (rc == 0 && f->q && *f->q) {
        if (utf8_chars(f->q) >= 3) {
            size_t j = 0;
            phrase[j++] = '"';
            for (const char *p = f->q; *p && j + 3 < np; p++) {
                if (*p == '"')
                    phrase[j++] = '"';
                phrase[j++] = *p;
            }
            phrase[j++] = '"';
            phrase[j] = '\0';
            where_add(w, "k.rowid IN (SELECT rowid FROM case_fts WHERE case_fts MATCH ?%d)", phrase, NULL);
        } else {
            where_add(w, "instr(k.description || ' ' || k.address, ?%d) > 0", f->q, NULL);
        }
    }
    return rc;
}

int cases_list(cases *c, const struct principal *who, const struct case_filter *f, int64_t now, json_t **out,
               cb_error *err)
{
    struct where w = {.len = 0, .n = 0};
    char phrase[1200];
    int64_t times[4];
    long limit = LIST_DEFAULT;
    if (f->limit) {
        char *end;
        limit = strtol(f->limit, &end, 10);
        if (*end || limit < 1 || limit > LIST_MAX)
            return cb_error_set(err, CB_EINVALID_FIELD, "limit", "limit must be 1..%d", LIST_MAX);
    }
    where_scope(&w, who);
    int rc = where_filters(&w, f, now, phrase, sizeof phrase, times, err);
    if (rc == 0 && f->cursor) {
        char *end;
        times[3] = strtoll(f->cursor, &end, 10);
        if (*end || !*f->cursor)
            return cb_error_set(err, CB_EINVALID_FIELD, "cursor", "cursor must come from next_cursor");
        where_add(&w, "k.rowid < ?%d", NULL, &times[3]);
    }
    if (rc != 0)
        return rc;
    char sql[2560];
    /* the page's rowids first: sorting bare integers, not whole joined rows */
    snprintf(sql, sizeof sql,
             CASE_SELECT "WHERE k.rowid IN (SELECT k.rowid FROM cases k %s ORDER BY k.rowid DESC LIMIT %ld) "
                         "ORDER BY k.rowid DESC",
             w.sql, limit + 1);
    pthread_mutex_lock(&c->mu);
    sqlite3_stmt *st = cases__prepare(c, sql, err);
    json_t *list = json_array();
    long n = 0;
    int64_t last = 0;
    int more = 0;
    if (st) {
        where_bind(&w, st);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            if (n == limit) {
                more = 1;
                break;
            }
            json_array_append_new(list, row_json(c, st, who, now, 0));
            last = sqlite3_column_int64(st, COL_ROWID);
            n++;
        }
        rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : cases__step_error(c, rc, "listing cases", err);
    } else {
        rc = err ? err->code : CB_EINTERNAL;
    }
    cases__finish(c, st);
    pthread_mutex_unlock(&c->mu);
    if (rc != 0) {
        json_decref(list);
        return rc;
    }
    char cur[32];
    snprintf(cur, sizeof cur, "%lld", (long long)last);
    *out = json_pack("{s:o, s:s?}", "cases", list, "next_cursor", more ? cur : NULL);
    return 0;
}

/* ---- stats ---- */

static json_t *count_by(cases *c, const char *column, const struct where *w, const char *extra)
{
    char sql[2048];
    snprintf(sql, sizeof sql, "SELECT %s, count(*) FROM cases k %s%s%s GROUP BY 1", column, w->sql,
             w->len ? " AND " : "WHERE ", extra);
    sqlite3_stmt *st = cases__prepare(c, sql, NULL);
    json_t *o = json_object();
    if (!st)
        return o;
    where_bind(w, st);
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *k = (const char *)sqlite3_column_text(st, 0);
        json_object_set_new(o, k ? k : "", json_integer(sqlite3_column_int64(st, 1)));
    }
    cases__finish(c, st);
    return o;
}

static long long count_where(cases *c, const struct where *w, const char *extra, int64_t now)
{
    char sql[2048];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM cases k %s%s%s", w->sql, w->len ? " AND " : "WHERE ", extra);
    sqlite3_stmt *st = cases__prepare(c, sql, NULL);
    long long n = 0;
    if (!st)
        return 0;
    where_bind(w, st);
    if (sqlite3_bind_parameter_index(st, "?99"))
        sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, "?99"), now);
    if (sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    cases__finish(c, st);
    return n;
}

#define OPEN_SQL "k.status NOT IN ('closed', 'evaluated', 'rejected')"

int cases_stats(cases *c, const struct principal *who, const char *district, int64_t now, json_t **out,
                cb_error *err)
{
    (void)err;
    struct where w = {.len = 0, .n = 0};
    where_scope(&w, who);
    if (district && *district)
        where_add(&w, "k.district = ?%d", district, NULL);
    pthread_mutex_lock(&c->mu);
    long long open = count_where(c, &w, OPEN_SQL, now);
    long long overdue = count_where(c, &w, "k.step IS NOT NULL AND k.deadline < ?99", now);
    json_t *by_status = count_by(c, "k.status", &w, "1");
    json_t *by_category = count_by(c, "k.category", &w, OPEN_SQL);
    json_t *by_district = count_by(c, "coalesce(k.district, '')", &w, OPEN_SQL);
    json_t *by_hour = json_array();
    char sql[2048];
    snprintf(sql, sizeof sql, "SELECT (k.created_at - ?98) / %lld, count(*) FROM cases k %s%sk.created_at >= ?98 "
                              "AND k.created_at <= ?99 GROUP BY 1",
             HOUR_MS, w.sql, w.len ? " AND " : "WHERE ");
    long long hours[24] = {0};
    sqlite3_stmt *st = cases__prepare(c, sql, NULL);
    if (st) {
        where_bind(&w, st);
        sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, "?98"), now - 24 * HOUR_MS);
        sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, "?99"), now);
        while (sqlite3_step(st) == SQLITE_ROW) {
            long long h = sqlite3_column_int64(st, 0);
            if (h >= 0 && h <= 24)
                hours[h < 24 ? h : 23] += sqlite3_column_int64(st, 1); /* created at `now` itself: the last hour */
        }
    }
    cases__finish(c, st);
    pthread_mutex_unlock(&c->mu);
    for (int i = 0; i < 24; i++)
        json_array_append_new(by_hour, json_integer(hours[i]));
    *out = json_pack("{s:I, s:I, s:o, s:o, s:o, s:o}", "open", open, "overdue", overdue, "by_status", by_status,
                     "by_category", by_category, "by_district", by_district, "by_hour", by_hour);
    return *out ? 0 : CB_ENOMEM;
}
