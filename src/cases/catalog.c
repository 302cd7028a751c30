/* catalog — the case centre's reference data: the category tree (GB/T
 * 47678.5), departments, the routing table and the city calendar. Loaded
 * from the city directory's JSON files on first start (an empty table),
 * then edited through the API or `citybrain import categories`. */
#include "cases/cases_int.h"

#include "core/log.h"

#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FAULT_CLASS_OFFSET 50 /* component CCsss -> fault matter (CC+50)sss */

static int all_digits(const char *s, size_t n)
{
    if (!s || strlen(s) != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i]))
            return 0;
    return 1;
}

static int table_empty(cases *c, const char *table)
{
    char sql[96];
    snprintf(sql, sizeof sql, "SELECT NOT EXISTS (SELECT 1 FROM %s)", table);
    sqlite3_stmt *st = cases__prepare(c, sql, NULL);
    int empty = st && sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0);
    cases__finish(c, st);
    return empty;
}

/* ---- categories ---- */

struct cat_row {
    char code[8], class_code[4], component[8];
    const char *name, *kind, *class_name, *urgency;
    char fault_name[160], fault_class_name[160];
    int minutes, natural, enabled;
};

static int insert_category(sqlite3_stmt *st, const char *code, const char *name, const char *kind,
                           const char *class_code, const char *class_name, const char *component,
                           const char *urgency, int minutes, int natural, int enabled)
{
    sqlite3_reset(st);
    sqlite3_bind_text(st, 1, code, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, class_code, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 5, class_name, -1, SQLITE_TRANSIENT);
    cases__bind_text(st, 6, component);
    sqlite3_bind_text(st, 7, urgency, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 8, minutes);
    sqlite3_bind_int(st, 9, natural);
    sqlite3_bind_int(st, 10, enabled);
    return sqlite3_step(st);
}

/* The limit of an item: limit_minutes or limit_hours; natural defaults to urgent. */
static int parse_limit(const json_t *it, const char *field, int urgent, int *minutes, int *natural, cb_error *err)
{
    const json_t *m = json_object_get(it, "limit_minutes"), *h = json_object_get(it, "limit_hours");
    double v = m ? json_number_value(m) : h ? json_number_value(h) * 60 : 0;
    if ((m && !json_is_number(m)) || (h && !json_is_number(h)) || v < 1 || v > 365 * 24 * 60)
        return cb_error_set(err, CB_EINVALID_FIELD, field, "%s needs limit_hours or limit_minutes (1 minute to a year)",
                            field);
    *minutes = (int)(v + 0.5);
    const json_t *nat = json_object_get(it, "natural");
    *natural = nat ? json_is_true(nat) : urgent;
    return 0;
}

static int import_item(sqlite3_stmt *st, const json_t *cls, const json_t *it, size_t ci, size_t ii, int faults,
                       size_t *count, cb_error *err)
{
    char field[64];
    snprintf(field, sizeof field, "classes[%zu].items[%zu]", ci, ii);
    const char *class_code = json_string_value(json_object_get(cls, "code"));
    const char *class_name = json_string_value(json_object_get(cls, "name"));
    const char *kind = json_string_value(json_object_get(cls, "kind"));
    const char *code = json_string_value(json_object_get(it, "code"));
    const char *name = json_string_value(json_object_get(it, "name"));
    const char *urgency = json_string_value(json_object_get(it, "urgency"));
    if (!all_digits(code, 5) || strncmp(code, class_code, 2) != 0)
        return cb_error_set(err, CB_EINVALID_FIELD, field, "%s: code must be 5 digits starting with the class code %s",
                            field, class_code);
    if (!name || !*name)
        return cb_error_set(err, CB_EMISSING_FIELD, field, "%s: name is required", field);
    if (!urgency)
        urgency = "normal";
    if (strcmp(urgency, "urgent") != 0 && strcmp(urgency, "normal") != 0)
        return cb_error_set(err, CB_EINVALID_FIELD, field, "%s: urgency must be urgent or normal", field);
    int minutes, natural, urgent = urgency[0] == 'u';
    int rc = parse_limit(it, field, urgent, &minutes, &natural, err);
    if (rc != 0)
        return rc;
    const char *u = urgent ? "urgent" : "normal";
    if (insert_category(st, code, name, kind, class_code, class_name, NULL, u, minutes, natural, 1) != SQLITE_DONE)
        return cb_error_set(err, CB_EINVALID_FIELD, field, "%s: code %s appears twice", field, code);
    (*count)++;
    if (!faults || strcmp(kind, "component") != 0)
        return 0;
    char fcode[8], fclass[4], fname[160], fclass_name[160];
    int cc = atoi(class_code) + FAULT_CLASS_OFFSET;
    snprintf(fcode, sizeof fcode, "%02d%s", cc % 100, code + 2);
    snprintf(fclass, sizeof fclass, "%02d", cc % 100);
    snprintf(fname, sizeof fname, "%s异常", name);
    snprintf(fclass_name, sizeof fclass_name, "%s异常", class_name);
    if (insert_category(st, fcode, fname, "matter", fclass, fclass_name, code, u, minutes, natural, 1) != SQLITE_DONE)
        return cb_error_set(err, CB_EINVALID_FIELD, field, "%s: fault matter %s appears twice", field, fcode);
    (*count)++;
    return 0;
}

static int import_class(sqlite3_stmt *st, const json_t *cls, size_t ci, int faults, size_t *count, cb_error *err)
{
    char field[32];
    snprintf(field, sizeof field, "classes[%zu]", ci);
    const char *code = json_string_value(json_object_get(cls, "code"));
    const char *name = json_string_value(json_object_get(cls, "name"));
    const char *kind = json_string_value(json_object_get(cls, "kind"));
    const json_t *items = json_object_get(cls, "items");
    if (!all_digits(code, 2) || atoi(code) >= FAULT_CLASS_OFFSET)
        return cb_error_set(err, CB_EINVALID_FIELD, field, "%s: code must be two digits below 50", field);
    if (!name || !kind || (strcmp(kind, "component") != 0 && strcmp(kind, "matter") != 0) || !json_is_array(items))
        return cb_error_set(err, CB_EINVALID_FIELD, field,
                            "%s needs name, kind (component or matter) and an items array", field);
    size_t i;
    const json_t *it;
    json_array_foreach(items, i, it) {
        int rc = import_item(st, cls, it, ci, i, faults, count, err);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int import_categories_locked(cases *c, const json_t *doc, size_t *count, cb_error *err)
{
    const json_t *classes = json_object_get(doc, "classes");
    if (!json_is_array(classes))
        return cb_error_set(err, CB_EINVALID_FIELD, "classes", "a categories file has a \"classes\" array");
    int faults = !json_is_false(json_object_get(doc, "faults"));
    int rc = db_exec(c->d, "BEGIN IMMEDIATE", err);
    if (rc != 0)
        return rc;
    sqlite3_stmt *st = NULL;
    rc = db_exec(c->d, "DELETE FROM case_category", err);
    if (rc == 0 && !(st = cases__prepare(c,
                                         "INSERT INTO case_category (code, name, kind, class, class_name, component, "
                                         "urgency, limit_minutes, limit_natural, enabled) VALUES (?,?,?,?,?,?,?,?,?,?)",
                                         err)))
        rc = err ? err->code : CB_EINTERNAL;
    size_t i;
    const json_t *cls;
    *count = 0;
    json_array_foreach(classes, i, cls) {
        if (rc == 0)
            rc = import_class(st, cls, i, faults, count, err);
    }
    cases__finish(c, st);
    if (rc == 0 && *count == 0)
        rc = cb_error_set(err, CB_EINVALID_FIELD, "classes", "the file holds no categories");
    db_exec(c->d, rc == 0 ? "COMMIT" : "ROLLBACK", NULL);
    return rc;
}

int cases_import_categories(cases *c, const json_t *doc, size_t *count, cb_error *err)
{
    pthread_mutex_lock(&c->mu);
    int rc = import_categories_locked(c, doc, count, err);
    pthread_mutex_unlock(&c->mu);
    return rc;
}

static json_t *category_json(sqlite3_stmt *st)
{
    const char *component = (const char *)sqlite3_column_text(st, 5);
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s?, s:s, s:i, s:b, s:b}", "code", sqlite3_column_text(st, 0),
                     "name", sqlite3_column_text(st, 1), "kind", sqlite3_column_text(st, 2), "class",
                     sqlite3_column_text(st, 3), "class_name", sqlite3_column_text(st, 4), "component", component,
                     "urgency", sqlite3_column_text(st, 6), "limit_minutes", sqlite3_column_int(st, 7), "natural",
                     sqlite3_column_int(st, 8), "enabled", sqlite3_column_int(st, 9));
}

#define CATEGORY_COLUMNS "code, name, kind, class, class_name, component, urgency, limit_minutes, limit_natural, enabled"

int cases_categories(cases *c, json_t **out, cb_error *err)
{
    pthread_mutex_lock(&c->mu);
    sqlite3_stmt *st = cases__prepare(c, "SELECT " CATEGORY_COLUMNS " FROM case_category ORDER BY code", err);
    json_t *list = json_array();
    int rc = st ? 0 : CB_EINTERNAL;
    while (rc == 0 && sqlite3_step(st) == SQLITE_ROW)
        json_array_append_new(list, category_json(st));
    cases__finish(c, st);
    pthread_mutex_unlock(&c->mu);
    if (rc != 0) {
        json_decref(list);
        return err && err->code ? err->code : rc;
    }
    *out = json_pack("{s:o}", "categories", list);
    return 0;
}

/* The limits of category code, enabled or (enabled_only 0) not: 0, or
 * CB_ENOT_FOUND without a word in err, or a database error. */
static int category_lookup(cases *c, const char *code, int enabled_only, struct category_limit *out, cb_error *err)
{
    sqlite3_stmt *st = cases__prepare(
        c,
        enabled_only
            ? "SELECT limit_minutes, limit_natural, urgency = 'urgent' FROM case_category WHERE code = ? AND enabled"
            : "SELECT limit_minutes, limit_natural, urgency = 'urgent' FROM case_category WHERE code = ?",
        err);
    if (!st)
        return err ? err->code : CB_EINTERNAL;
    sqlite3_bind_text(st, 1, code, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st) == SQLITE_ROW ? 0 : CB_ENOT_FOUND;
    if (rc == 0)
        *out = (struct category_limit){sqlite3_column_int(st, 0), sqlite3_column_int(st, 1), sqlite3_column_int(st, 2)};
    cases__finish(c, st);
    return rc;
}

/* PUT /api/v1/categories/{code}: changes the given fields of a category, or
 * adds one (name required; kind and class follow from the code). */
static int category_put_locked(cases *c, const char *code, const json_t *body, cb_error *err)
{
    if (!all_digits(code, 5))
        return cb_error_set(err, CB_EINVALID_FIELD, "code", "a category code is 5 digits, e.g. 01001");
    struct category_limit old;
    int exists = category_lookup(c, code, 0, &old, NULL) == 0; /* a disabled one too: re-enabling keeps it */
    const char *name = json_string_value(json_object_get(body, "name"));
    const char *urgency = json_string_value(json_object_get(body, "urgency"));
    const json_t *enabled = json_object_get(body, "enabled");
    if (!exists && (!name || !*name))
        return cb_error_set(err, CB_EMISSING_FIELD, "name", "a new category needs a name");
    if (urgency && strcmp(urgency, "urgent") != 0 && strcmp(urgency, "normal") != 0)
        return cb_error_set(err, CB_EINVALID_FIELD, "urgency", "urgency must be urgent or normal");
    if (enabled && !json_is_boolean(enabled))
        return cb_error_set(err, CB_EINVALID_FIELD, "enabled", "enabled must be true or false");
    int urgent = urgency ? urgency[0] == 'u' : exists ? old.urgent : 0;
    int minutes = exists ? old.minutes : 0, natural = exists ? old.natural : urgent;
    if (json_object_get(body, "limit_minutes") || json_object_get(body, "limit_hours") || !exists) {
        int rc = parse_limit(body, "limit", urgent, &minutes, &natural, err);
        if (rc != 0)
            return rc;
    } else if (json_object_get(body, "natural")) {
        natural = json_is_true(json_object_get(body, "natural"));
    }
    int cls = (code[0] - '0') * 10 + (code[1] - '0');
    const char *kind = cls >= 1 && cls <= 5 ? "component" : "matter";
    sqlite3_stmt *st = cases__prepare(
        c,
        "INSERT INTO case_category (code, name, kind, class, class_name, urgency, limit_minutes, limit_natural, "
        "enabled) VALUES (?1, coalesce(?2, (SELECT name FROM case_category WHERE code = ?1)), ?3, substr(?1, 1, 2), "
        "coalesce((SELECT class_name FROM case_category WHERE "
        "class = substr(?1, 1, 2) LIMIT 1), ''), ?4, ?5, ?6, coalesce(?7, 1)) ON CONFLICT (code) DO UPDATE SET "
        "name = coalesce(?2, name), urgency = ?4, limit_minutes = ?5, limit_natural = ?6, enabled = "
        "coalesce(?7, enabled)",
        err);
    if (!st)
        return err ? err->code : CB_EINTERNAL;
    cases__bind_text(st, 2, name);
    sqlite3_bind_text(st, 1, code, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, urgent ? "urgent" : "normal", -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 5, minutes);
    sqlite3_bind_int(st, 6, natural);
    if (enabled)
        sqlite3_bind_int(st, 7, json_is_true(enabled));
    int rc = sqlite3_step(st);
    cases__finish(c, st);
    return rc == SQLITE_DONE ? 0 : cases__step_error(c, rc, "storing the category", err);
}

int cases_category_put(cases *c, const char *code, const json_t *body, json_t **out, cb_error *err)
{
    *out = NULL;
    pthread_mutex_lock(&c->mu);
    int rc = category_put_locked(c, code, body, err);
    sqlite3_stmt *st = rc == 0 ? cases__prepare(c, "SELECT " CATEGORY_COLUMNS " FROM case_category WHERE code = ?", err)
                               : NULL;
    if (st) {
        sqlite3_bind_text(st, 1, code, -1, SQLITE_TRANSIENT);
        *out = sqlite3_step(st) == SQLITE_ROW ? category_json(st) : NULL;
        cases__finish(c, st);
    }
    pthread_mutex_unlock(&c->mu);
    return rc;
}

int cases__category_limit(cases *c, const char *code, struct category_limit *out, cb_error *err)
{
    int rc = category_lookup(c, code, 1, out, err);
    if (rc == CB_ENOT_FOUND)
        return cb_error_set(err, CB_EINVALID_FIELD, "category", "unknown category '%s' (see GET /api/v1/categories)",
                            code);
    return rc;
}

/* ---- departments ---- */

static int import_departments(cases *c, const json_t *doc, cb_error *err)
{
    const json_t *list = json_object_get(doc, "departments"), *d;
    if (!json_is_array(list))
        return cb_error_set(err, CB_EINVALID_FIELD, "departments", "a departments file has a \"departments\" array");
    sqlite3_stmt *st = cases__prepare(
        c, "INSERT OR REPLACE INTO department (code, name, parent, district, phone) VALUES (?,?,?,?,?)", err);
    if (!st)
        return err ? err->code : CB_EINTERNAL;
    size_t i;
    int rc = 0;
    json_array_foreach(list, i, d) {
        const char *code = json_string_value(json_object_get(d, "code"));
        const char *name = json_string_value(json_object_get(d, "name"));
        if (!code || !*code || strlen(code) >= CASE_CODE_MAX || !name) {
            rc = cb_error_set(err, CB_EINVALID_FIELD, "departments", "departments[%zu] needs a code and a name", i);
            break;
        }
        sqlite3_reset(st);
        sqlite3_bind_text(st, 1, code, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 2, name, -1, SQLITE_TRANSIENT);
        cases__bind_text(st, 3, json_string_value(json_object_get(d, "parent")));
        cases__bind_text(st, 4, json_string_value(json_object_get(d, "district")));
        cases__bind_text(st, 5, json_string_value(json_object_get(d, "phone")));
        if (sqlite3_step(st) != SQLITE_DONE) {
            rc = cases__step_error(c, SQLITE_ERROR, "storing a department", err);
            break;
        }
    }
    cases__finish(c, st);
    return rc;
}

int cases__department_exists(cases *c, const char *code)
{
    sqlite3_stmt *st = cases__prepare(c, "SELECT 1 FROM department WHERE code = ?", NULL);
    if (!st)
        return 0;
    sqlite3_bind_text(st, 1, code, -1, SQLITE_TRANSIENT);
    int found = sqlite3_step(st) == SQLITE_ROW;
    cases__finish(c, st);
    return found;
}

int cases_departments(cases *c, json_t **out, cb_error *err)
{
    pthread_mutex_lock(&c->mu);
    sqlite3_stmt *st =
        cases__prepare(c, "SELECT code, name, parent, district, phone FROM department ORDER BY code", err);
    json_t *list = json_array();
    while (st && sqlite3_step(st) == SQLITE_ROW)
        json_array_append_new(list, json_pack("{s:s, s:s, s:s?, s:s?, s:s?}", "code", sqlite3_column_text(st, 0),
                                              "name", sqlite3_column_text(st, 1), "parent",
                                              sqlite3_column_text(st, 2), "district", sqlite3_column_text(st, 3),
                                              "phone", sqlite3_column_text(st, 4)));
    int rc = st ? 0 : err ? err->code : CB_EINTERNAL;
    cases__finish(c, st);
    pthread_mutex_unlock(&c->mu);
    if (rc != 0) {
        json_decref(list);
        return rc;
    }
    *out = json_pack("{s:o}", "departments", list);
    return 0;
}

/* ---- routing ---- */

static int valid_category_pattern(const char *s)
{
    if (!s)
        return 0;
    if (strcmp(s, "*") == 0)
        return 1;
    size_t n = strlen(s);
    return n >= 1 && n <= 5 && all_digits(s, n);
}

/* Replaces the routing table with rules (validated first). */
static int routing_replace(cases *c, const json_t *rules, cb_error *err)
{
    size_t i;
    const json_t *r;
    if (!json_is_array(rules))
        return cb_error_set(err, CB_EINVALID_FIELD, "rules", "routing is {\"rules\": [{category, region, department}]}");
    json_array_foreach(rules, i, r) {
        const char *cat = json_string_value(json_object_get(r, "category"));
        const char *reg = json_string_value(json_object_get(r, "region"));
        const char *dep = json_string_value(json_object_get(r, "department"));
        char field[32];
        snprintf(field, sizeof field, "rules[%zu]", i);
        if (!valid_category_pattern(cat))
            return cb_error_set(err, CB_EINVALID_FIELD, field,
                                "%s.category must be a category code, a class prefix or \"*\"", field);
        if (!reg || !*reg || strlen(reg) >= CASE_CODE_MAX)
            return cb_error_set(err, CB_EINVALID_FIELD, field, "%s.region must be a grid or district code or \"*\"",
                                field);
        if (!dep || !cases__department_exists(c, dep))
            return cb_error_set(err, CB_EINVALID_FIELD, field, "%s.department '%s' is not a known department", field,
                                dep ? dep : "");
    }
    int rc = db_exec(c->d, "BEGIN IMMEDIATE", err);
    if (rc != 0)
        return rc;
    rc = db_exec(c->d, "DELETE FROM routing", err);
    sqlite3_stmt *st =
        rc == 0 ? cases__prepare(c, "INSERT OR IGNORE INTO routing (category, region, department) VALUES (?,?,?)", err)
                : NULL;
    if (rc == 0 && !st)
        rc = err ? err->code : CB_EINTERNAL;
    json_array_foreach(rules, i, r) {
        if (rc != 0)
            break;
        sqlite3_reset(st);
        for (int k = 0; k < 3; k++)
            sqlite3_bind_text(st, k + 1,
                              json_string_value(json_object_get(r, k == 0 ? "category" : k == 1 ? "region"
                                                                                                  : "department")),
                              -1, SQLITE_TRANSIENT);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = cases__step_error(c, SQLITE_ERROR, "storing a routing rule", err);
    }
    cases__finish(c, st);
    db_exec(c->d, rc == 0 ? "COMMIT" : "ROLLBACK", NULL);
    return rc;
}

static json_t *routing_json(cases *c)
{
    sqlite3_stmt *st = cases__prepare(
        c,
        "SELECT r.category, r.region, r.department, d.name FROM routing r LEFT JOIN department d ON d.code = "
        "r.department ORDER BY r.category, r.region, r.department",
        NULL);
    json_t *list = json_array();
    while (st && sqlite3_step(st) == SQLITE_ROW)
        json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:s?}", "category", sqlite3_column_text(st, 0),
                                              "region", sqlite3_column_text(st, 1), "department",
                                              sqlite3_column_text(st, 2), "department_name",
                                              sqlite3_column_text(st, 3)));
    cases__finish(c, st);
    return json_pack("{s:o}", "rules", list);
}

int cases_routing(cases *c, json_t **out, cb_error *err)
{
    (void)err;
    pthread_mutex_lock(&c->mu);
    *out = routing_json(c);
    pthread_mutex_unlock(&c->mu);
    return *out ? 0 : CB_ENOMEM;
}

int cases_routing_put(cases *c, const json_t *body, json_t **out, cb_error *err)
{
    pthread_mutex_lock(&c->mu);
    int rc = routing_replace(c, json_object_get(body, "rules"), err);
    if (rc == 0)
        *out = routing_json(c);
    pthread_mutex_unlock(&c->mu);
    return rc;
}

/* Specificity of a rule: the category pattern's length (5 exact, 1-4 a
 * prefix, 0 "*") weighs first, then the region: grid 2, district 1, "*" 0. */
int cases__route(cases *c, const char *category, const char *district, const char *grid, char *out, size_t n)
{
    sqlite3_stmt *st = cases__prepare(
        c,
        "SELECT department, CASE WHEN category = '*' THEN 0 ELSE length(category) END * 4 + "
        "CASE WHEN region = ?3 THEN 2 WHEN region = ?2 THEN 1 ELSE 0 END AS score FROM routing "
        "WHERE (category = '*' OR substr(?1, 1, length(category)) = category) "
        "AND (region = '*' OR region = ?2 OR region = ?3) ORDER BY score DESC, department",
        NULL);
    if (!st)
        return 0;
    sqlite3_bind_text(st, 1, category, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, district && *district ? district : "\x01", -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, grid && *grid ? grid : "\x01", -1, SQLITE_TRANSIENT);
    int found = 0, best = -1;
    while (sqlite3_step(st) == SQLITE_ROW) {
        int score = sqlite3_column_int(st, 1);
        const char *dep = (const char *)sqlite3_column_text(st, 0);
        if (best < 0) {
            best = score;
            snprintf(out, n, "%s", dep);
            found = 1;
        } else if (score == best && strcmp(out, dep) != 0) {
            found = 0; /* two departments equally specific: a dispatcher decides */
            break;
        } else {
            break;
        }
    }
    cases__finish(c, st);
    if (!found)
        out[0] = '\0';
    return found;
}

/* ---- calendar ---- */

static int import_calendar(cases *c, const json_t *doc, cb_error *err)
{
    calendar *probe = calendar_create(); /* validates the whole file before storing any of it */
    int rc = probe ? calendar_load_json(probe, doc, err) : cb_error_set(err, CB_ENOMEM, NULL, "calendar");
    calendar_free(probe);
    if (rc != 0)
        return rc;
    const json_t *periods = json_object_get(doc, "periods"), *p;
    size_t i;
    if (periods) {
        rc = db_exec(c->d, "DELETE FROM calendar_period", err);
        json_array_foreach(periods, i, p) {
            int h1, m1, h2, m2;
            sscanf(json_string_value(json_array_get(p, 0)), "%d:%d", &h1, &m1);
            sscanf(json_string_value(json_array_get(p, 1)), "%d:%d", &h2, &m2);
            char sql[128];
            snprintf(sql, sizeof sql, "INSERT INTO calendar_period VALUES (%d, %d)", h1 * 60 + m1, h2 * 60 + m2);
            if (rc == 0)
                rc = db_exec(c->d, sql, err);
        }
    }
    sqlite3_stmt *st = cases__prepare(c, "INSERT OR REPLACE INTO calendar_day (day, kind, name) VALUES (?,?,?)", err);
    for (int k = 0; k < 2 && st && rc == 0; k++) {
        const json_t *list = json_object_get(doc, k ? "workdays" : "holidays"), *d;
        json_array_foreach(list, i, d) {
            sqlite3_reset(st);
            sqlite3_bind_text(st, 1, json_is_object(d) ? json_string_value(json_object_get(d, "date"))
                                                       : json_string_value(d), -1, SQLITE_TRANSIENT);
            sqlite3_bind_text(st, 2, k ? "workday" : "holiday", -1, SQLITE_STATIC);
            const char *name = json_string_value(json_object_get(d, "name"));
            sqlite3_bind_text(st, 3, name ? name : "", -1, SQLITE_TRANSIENT);
            if (sqlite3_step(st) != SQLITE_DONE)
                rc = cases__step_error(c, SQLITE_ERROR, "storing a calendar day", err);
        }
    }
    cases__finish(c, st);
    return rc;
}

int cases__load_calendar(cases *c, cb_error *err)
{
    calendar *cal = calendar_create();
    if (!cal)
        return cb_error_set(err, CB_ENOMEM, NULL, "calendar");
    int p[CALENDAR_MAX_PERIODS][2], n = 0, rc = 0;
    sqlite3_stmt *st = cases__prepare(c, "SELECT start_min, end_min FROM calendar_period ORDER BY start_min", err);
    while (st && sqlite3_step(st) == SQLITE_ROW && n < CALENDAR_MAX_PERIODS) {
        p[n][0] = sqlite3_column_int(st, 0);
        p[n][1] = sqlite3_column_int(st, 1);
        n++;
    }
    cases__finish(c, st);
    if (n > 0)
        rc = calendar_set_periods(cal, (const int (*)[2])p, n, err);
    st = rc == 0 ? cases__prepare(c, "SELECT day, kind FROM calendar_day", err) : NULL;
    while (st && rc == 0 && sqlite3_step(st) == SQLITE_ROW)
        rc = calendar_set_day(cal, (const char *)sqlite3_column_text(st, 0),
                              strcmp((const char *)sqlite3_column_text(st, 1), "workday") == 0 ? CALENDAR_WORKDAY
                                                                                                : CALENDAR_HOLIDAY,
                              err);
    cases__finish(c, st);
    if (rc != 0) {
        calendar_free(cal);
        return rc;
    }
    calendar_free(c->cal);
    c->cal = cal;
    return 0;
}

/* ---- first start ---- */

static json_t *read_city_file(const char *dir, const char *name)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    json_error_t je;
    json_t *doc = json_load_file(path, 0, &je);
    if (!doc)
        log_event(LOG_WARN, "cases", "msg=\"city data not loaded\" file=%s error=\"%s\"", path, je.text);
    return doc;
}

static int load_file(cases *c, const char *name, int (*import)(cases *, const json_t *, cb_error *), cb_error *err)
{
    json_t *doc = read_city_file(c->opt.city_dir, name);
    if (!doc)
        return 0; /* a city without the file starts empty */
    int rc = import(c, doc, err);
    json_decref(doc);
    if (rc != 0)
        return cb_error_set(err, rc, err->field, "%s/%s: %s", c->opt.city_dir, name, err->message);
    log_event(LOG_INFO, "cases", "msg=\"city data loaded\" file=%s/%s", c->opt.city_dir, name);
    return 0;
}

static int import_categories_file(cases *c, const json_t *doc, cb_error *err)
{
    size_t n;
    return import_categories_locked(c, doc, &n, err);
}

static int import_calendars(cases *c, cb_error *err)
{
    DIR *d = opendir(c->opt.city_dir);
    struct dirent *e;
    int rc = 0;
    while (d && rc == 0 && (e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (strncmp(e->d_name, "calendar", 8) == 0 && len > 5 && strcmp(e->d_name + len - 5, ".json") == 0)
            rc = load_file(c, e->d_name, import_calendar, err);
    }
    if (d)
        closedir(d);
    return rc;
}

int cases__load_reference(cases *c, cb_error *err)
{
    int rc = 0;
    if (!c->opt.city_dir || !*c->opt.city_dir)
        return 0;
    if (table_empty(c, "case_category"))
        rc = load_file(c, "categories.json", import_categories_file, err);
    if (rc == 0 && table_empty(c, "department"))
        rc = load_file(c, "departments.json", import_departments, err);
    if (rc == 0 && table_empty(c, "routing")) {
        json_t *doc = read_city_file(c->opt.city_dir, "routing.json");
        if (doc)
            rc = routing_replace(c, json_object_get(doc, "rules"), err);
        json_decref(doc);
    }
    if (rc == 0 && table_empty(c, "calendar_day") && table_empty(c, "calendar_period"))
        rc = import_calendars(c, err);
    return rc;
}
