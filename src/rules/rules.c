/* rules — opening the module, rules CRUD and maintenance windows; see
 * rules.h. A change is written to SQLite first, then swapped into the
 * evaluator under its lock (the index is rebuilt: changes are rare). */
#include "rules/rules_int.h"

#include "core/clock.h"
#include "core/log.h"

#include <assert.h>
#include <math.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void geos_quiet(const char *fmt, ...)
{
    (void)fmt; /* GEOS's messages: validation errors are reported with GEOSisValidReason */
}

/* --- loading --- */

static int add_rule(rules *R, struct rule *ru)
{
    if (R->n == R->cap) {
        size_t cap = R->cap ? R->cap * 2 : 16;
        struct rule **all = realloc(R->all, cap * sizeof *all);
        if (!all)
            return CB_ENOMEM;
        R->all = all;
        R->cap = cap;
    }
    R->all[R->n++] = ru;
    return 0;
}

static int load_rules(rules *R, cb_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db_sqlite(R->adb), "SELECT id, def FROM rule ORDER BY created_at, id", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return db_error(R->adb, rc, "loading rules", err);
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *id = (const char *)sqlite3_column_text(st, 0);
        json_t *def = json_loads((const char *)sqlite3_column_text(st, 1), 0, NULL);
        struct rule *ru = NULL;
        cb_error e;
        if (def && rules__rule_compile(R, def, id, &ru, &e) == 0 && add_rule(R, ru) != 0) {
            rules__rule_free(R, ru);
            ru = NULL;
        }
        if (!ru)
            log_event(LOG_ERROR, "rules", "rule=%s msg=\"cannot load the rule: %s\"", id, def ? e.message : "bad JSON");
        json_decref(def);
    }
    sqlite3_finalize(st);
    return 0;
}

static int text_time(const json_t *v, int64_t *ms)
{
    if (json_is_integer(v)) {
        *ms = json_integer_value(v);
        return 0;
    }
    return json_is_string(v) ? clock_parse_rfc3339(json_string_value(v), ms) : -1;
}

static int load_maintenance(rules *R, cb_error *err)
{
    sqlite3_stmt *st = NULL;
    pthread_mutex_lock(&R->alock);
    int rc = sqlite3_prepare_v2(db_sqlite(R->adb),
                                "SELECT id, entity, district, grid, rule, from_ms, to_ms FROM maintenance", -1, &st, NULL);
    if (rc != SQLITE_OK) {
        rc = db_error(R->adb, rc, "loading maintenance windows", err);
        pthread_mutex_unlock(&R->alock);
        return rc;
    }
    size_t n = 0, cap = 0;
    struct maintenance *m = NULL;
    while (sqlite3_step(st) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            struct maintenance *nm = realloc(m, cap * sizeof *nm);
            if (!nm) {
                sqlite3_finalize(st);
                pthread_mutex_unlock(&R->alock);
                free(m);
                return cb_error_set(err, CB_ENOMEM, NULL, "out of memory");
            }
            m = nm;
        }
        struct maintenance *w = &m[n++];
        memset(w, 0, sizeof *w);
        const char *s;
        snprintf(w->id, sizeof w->id, "%s", (const char *)sqlite3_column_text(st, 0));
        snprintf(w->entity, sizeof w->entity, "%s", (s = (const char *)sqlite3_column_text(st, 1)) ? s : "");
        s = (const char *)sqlite3_column_text(st, 2);
        w->district = s ? region_store_index(R->regions, REGION_DISTRICT, s) : REGION_INDEX_NONE;
        s = (const char *)sqlite3_column_text(st, 3);
        w->grid = s ? region_store_index(R->regions, REGION_GRID, s) : REGION_INDEX_NONE;
        snprintf(w->rule, sizeof w->rule, "%s", (s = (const char *)sqlite3_column_text(st, 4)) ? s : "");
        w->from_ms = sqlite3_column_int64(st, 5);
        w->to_ms = sqlite3_column_int64(st, 6);
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&R->alock);
    pthread_mutex_lock(&R->lock);
    free(R->maint);
    R->maint = m;
    R->nmaint = n;
    pthread_mutex_unlock(&R->lock);
    return 0;
}

int rules_open(const struct cb_config *cfg, entities *ents, events *ev, rules **out, cb_error *err)
{
    rules *R = calloc(1, sizeof *R);
    if (!R)
        return cb_error_set(err, CB_ENOMEM, NULL, "out of memory");
    R->cfg = cfg;
    R->ents = ents;
    R->st = entities_state(ents);
    R->names = entities_dict(ents);
    R->regions = entities_regions(ents);
    R->ev = ev;
    pthread_mutex_init(&R->lock, NULL);
    pthread_mutex_init(&R->qlock, NULL);
    pthread_mutex_init(&R->alock, NULL);
    pthread_mutex_init(&R->change_lock, NULL);
    pthread_cond_init(&R->qwake, NULL);
    pthread_cond_init(&R->qdone, NULL);
    R->last_tick_ms = clock_now_ms();
    int rc = sodium_init() < 0 ? cb_error_set(err, CB_EINTERNAL, NULL, "libsodium failed to start") : 0;
    if (rc == 0 && !(R->geos = GEOS_init_r()))
        rc = cb_error_set(err, CB_ENOMEM, NULL, "GEOS failed to start");
    if (rc == 0) {
        GEOSContext_setErrorHandler_r(R->geos, geos_quiet);
        GEOSContext_setNoticeHandler_r(R->geos, geos_quiet);
        rc = db_open(cfg->data_dir, &R->tdb, err);
    }
    if (rc == 0)
        rc = db_open(cfg->data_dir, &R->adb, err);
    if (rc == 0)
        rc = load_rules(R, err);
    if (rc == 0)
        rc = load_maintenance(R, err);
    struct seed_row *seed = NULL;
    size_t nseed = 0;
    if (rc == 0)
        rc = rules__seed_read(R, NULL, &seed, &nseed, err);
    if (rc == 0) {
        state_rdlock(R->st);
        pthread_mutex_lock(&R->lock);
        rc = rules__index_rebuild(R);
        if (rc == 0)
            rules__seed_apply(R, NULL, seed, nseed);
        pthread_mutex_unlock(&R->lock);
        state_unlock(R->st);
    }
    free(seed);
    if (rc == 0)
        rc = rules__thread_start(R, err);
    if (rc != 0) {
        rules_close(R);
        return rc;
    }
    log_event(LOG_INFO, "rules", "rules=%zu maintenance_windows=%zu", R->n, R->nmaint);
    *out = R;
    return 0;
}

void rules_close(rules *R)
{
    if (!R)
        return;
    rules__thread_stop(R);
    while (R->head) { /* the thread did not start: nothing was queued it would persist */
        struct change *c = R->head;
        R->head = c->next;
        json_decref(c->alarm);
        free(c);
    }
    for (size_t i = 0; i < R->n; i++)
        rules__rule_free(R, R->all[i]);
    free(R->all);
    for (size_t i = 0; i < R->index_cap; i++)
        free(R->index[i].v);
    free(R->index);
    free(R->nodata);
    free(R->counting);
    free(R->maint);
    if (R->geos)
        GEOS_finish_r(R->geos);
    db_close(R->tdb);
    db_close(R->adb);
    pthread_mutex_destroy(&R->lock);
    pthread_mutex_destroy(&R->qlock);
    pthread_mutex_destroy(&R->alock);
    pthread_mutex_destroy(&R->change_lock);
    pthread_cond_destroy(&R->qwake);
    pthread_cond_destroy(&R->qdone);
    free(R);
}

void rules_tick(rules *R, int64_t now_ms)
{
    state_rdlock(R->st);
    pthread_mutex_lock(&R->lock);
    rules__tick_locked(R, now_ms);
    pthread_mutex_unlock(&R->lock);
    state_unlock(R->st);
}

/* --- CRUD --- */

int rules_list(rules *R, json_t **out, cb_error *err)
{
    json_t *list = json_array();
    pthread_mutex_lock(&R->lock);
    for (size_t i = 0; list && i < R->n; i++)
        json_array_append_new(list, json_deep_copy(R->all[i]->def));
    pthread_mutex_unlock(&R->lock);
    *out = json_pack("{s:o*}", "rules", list);
    return *out ? 0 : cb_error_set(err, CB_ENOMEM, NULL, "out of memory");
}

int rules_get(rules *R, const char *id, json_t **out, cb_error *err)
{
    pthread_mutex_lock(&R->lock);
    struct rule *ru = rules__find(R, id, NULL);
    *out = ru ? json_deep_copy(ru->def) : NULL;
    pthread_mutex_unlock(&R->lock);
    return *out ? 0 : cb_error_set(err, CB_ENOT_FOUND, "id", "no rule '%s'", id);
}

static int store_rule(rules *R, const struct rule *ru, int insert, cb_error *err)
{
    char *def = json_dumps(ru->def, JSON_COMPACT);
    if (!def)
        return cb_error_set(err, CB_ENOMEM, NULL, "out of memory");
    sqlite3_stmt *st = NULL;
    int64_t now = clock_now_ms();
    pthread_mutex_lock(&R->alock);
    int rc = sqlite3_prepare_v2(db_sqlite(R->adb),
                                insert ? "INSERT INTO rule (id, def, created_at, updated_at) VALUES (?1, ?2, ?3, ?3)"
                                       : "UPDATE rule SET def = ?2, updated_at = ?3 WHERE id = ?1",
                                -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(st, 1, ru->id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, def, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, now);
        rc = sqlite3_step(st);
        rc = rc == SQLITE_DONE ? 0 : db_error(R->adb, rc, "storing the rule", err);
    } else
        rc = db_error(R->adb, rc, "storing the rule", err);
    sqlite3_finalize(st);
    pthread_mutex_unlock(&R->alock);
    free(def);
    return rc;
}

/* Compiles def under the locks the GEOS context and the dictionaries need;
 * the caller holds change_lock. */
static int compile_rule(rules *R, json_t *def, const char *id, struct rule **ru, cb_error *err)
{
    state_rdlock(R->st);
    pthread_mutex_lock(&R->lock);
    int rc = id && !rules__find(R, id, NULL) ? cb_error_set(err, CB_ENOT_FOUND, "id", "no rule '%s'", id) : 0;
    if (rc == 0)
        rc = rules__rule_compile(R, def, id, ru, err);
    if (rc == 0 && !id && rules__find(R, (*ru)->id, NULL))
        rc = cb_error_set(err, CB_ECONFLICT, "id", "rule '%s' already exists", (*ru)->id);
    if (rc != 0) {
        rules__rule_free(R, *ru); /* under R->lock: GEOS objects */
        *ru = NULL;
    }
    pthread_mutex_unlock(&R->lock);
    state_unlock(R->st);
    return rc;
}

/* Adds ru (insert) or swaps it in for the rule of its id, and seeds it from
 * rows; the replaced rule is freed under R->lock (its GEOS objects). Takes
 * ru: freed when it cannot be added; kept (SQLite has it) when only the
 * index rebuild fails, and then *out is not set. */
static int install_rule(rules *R, struct rule *ru, int insert, const struct seed_row *rows, size_t nrows,
                        json_t **out)
{
    size_t pos = 0;
    state_rdlock(R->st);
    pthread_mutex_lock(&R->lock);
    struct rule *old = insert ? NULL : rules__find(R, ru->id, &pos);
    assert(insert || old); /* change_lock held since compile_rule found it */
    int rc = 0;
    if (insert)
        rc = add_rule(R, ru);
    else
        R->all[pos] = ru;
    if (rc == 0) {
        rc = rules__index_rebuild(R);
        rules__seed_apply(R, ru, rows, nrows); /* the alarms the rule has (or had under its id) */
        if (rc == 0 && !(*out = json_deep_copy(ru->def)))
            rc = CB_ENOMEM;
        rules__rule_free(R, old);
    } else
        rules__rule_free(R, ru);
    pthread_mutex_unlock(&R->lock);
    state_unlock(R->st);
    return rc;
}

/* Compile, store (no lock but change_lock held: SQLite may wait for its
 * write lock), read the seed rows, then swap in under the locks. */
static int change_rule(rules *R, const char *id, json_t *def, json_t **out, cb_error *err)
{
    struct rule *ru = NULL;
    struct seed_row *rows = NULL;
    size_t nrows = 0;
    pthread_mutex_lock(&R->change_lock);
    int rc = compile_rule(R, def, id, &ru, err);
    if (rc == 0)
        rc = store_rule(R, ru, !id, err);
    if (rc == 0)
        rc = rules__seed_read(R, ru->id, &rows, &nrows, err);
    if (rc == 0) {
        rc = install_rule(R, ru, !id, rows, nrows, out);
        ru = NULL;
    } else if (ru) {
        pthread_mutex_lock(&R->lock);
        rules__rule_free(R, ru);
        pthread_mutex_unlock(&R->lock);
    }
    free(rows);
    pthread_mutex_unlock(&R->change_lock);
    return rc == CB_ENOMEM ? cb_error_set(err, rc, NULL, "out of memory") : rc;
}

int rules_create(rules *R, json_t *def, json_t **out, cb_error *err)
{
    int rc = change_rule(R, NULL, def, out, err);
    if (rc == 0)
        log_event(LOG_INFO, "rule_created", "rule=%s", json_string_value(json_object_get(*out, "id")));
    return rc;
}

int rules_update(rules *R, const char *id, json_t *def, json_t **out, cb_error *err)
{
    int rc = change_rule(R, id, def, out, err);
    if (rc == 0 && !json_is_true(json_object_get(*out, "enabled"))) {
        rules_flush(R); /* a raise already published is stored before the clearing */
        rules__clear_rule_alarms(R, id, "规则已停用");
    }
    return rc;
}

int rules_delete(rules *R, const char *id, cb_error *err)
{
    sqlite3_stmt *st = NULL;
    pthread_mutex_lock(&R->change_lock);
    pthread_mutex_lock(&R->lock);
    int rc = rules__find(R, id, NULL) ? 0 : cb_error_set(err, CB_ENOT_FOUND, "id", "no rule '%s'", id);
    pthread_mutex_unlock(&R->lock);
    if (rc == 0) {
        pthread_mutex_lock(&R->alock);
        rc = sqlite3_prepare_v2(db_sqlite(R->adb), "DELETE FROM rule WHERE id = ?1", -1, &st, NULL);
        if (rc == SQLITE_OK) {
            sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
            rc = sqlite3_step(st);
            rc = rc == SQLITE_DONE ? 0 : db_error(R->adb, rc, "deleting the rule", err);
        } else
            rc = db_error(R->adb, rc, "deleting the rule", err);
        sqlite3_finalize(st);
        pthread_mutex_unlock(&R->alock);
    }
    if (rc == 0) {
        size_t pos = 0;
        pthread_mutex_lock(&R->lock);
        struct rule *ru = rules__find(R, id, &pos);
        assert(ru); /* change_lock held since the check */
        R->all[pos] = R->all[--R->n];
        rc = rules__index_rebuild(R);
        rules__rule_free(R, ru);
        pthread_mutex_unlock(&R->lock);
    }
    pthread_mutex_unlock(&R->change_lock);
    if (rc == 0) {
        rules_flush(R); /* a raise already published is stored before the clearing */
        rules__clear_rule_alarms(R, id, "规则已删除");
        log_event(LOG_INFO, "rule_deleted", "rule=%s", id);
    }
    return rc;
}

/* --- maintenance windows --- */

int rules_maintenance_list(rules *R, json_t **out, cb_error *err)
{
    sqlite3_stmt *st = NULL;
    json_t *list = json_array();
    if (!list)
        return cb_error_set(err, CB_ENOMEM, NULL, "out of memory");
    pthread_mutex_lock(&R->alock);
    int rc = sqlite3_prepare_v2(db_sqlite(R->adb),
                                "SELECT id, entity, district, grid, rule, from_ms, to_ms, reason, created_by, created_at "
                                "FROM maintenance ORDER BY from_ms, id",
                                -1, &st, NULL);
    while (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
        static const char *const names[] = {"id", "entity", "district", "grid", "rule", "from", "to", "reason",
                                            "created_by", "created_at"};
        json_t *w = json_object();
        if (!w || json_array_append_new(list, w) != 0) {
            rc = cb_error_set(err, CB_ENOMEM, NULL, "out of memory");
            break;
        }
        for (int i = 0; i < 10; i++) {
            char t[CLOCK_RFC3339_MAX];
            const char *s = (const char *)sqlite3_column_text(st, i);
            json_t *v = i == 5 || i == 6 || i == 9 ? json_string(clock_format_rfc3339(sqlite3_column_int64(st, i), t))
                                                   : s ? json_string(s) : json_null();
            if (!v || json_object_set_new(w, names[i], v) != 0) {
                rc = cb_error_set(err, CB_ENOMEM, NULL, "out of memory");
                break;
            }
        }
    }
    if (rc != SQLITE_OK && rc != CB_ENOMEM)
        rc = db_error(R->adb, rc, "listing maintenance windows", err);
    sqlite3_finalize(st);
    pthread_mutex_unlock(&R->alock);
    if (rc != 0) {
        json_decref(list);
        return rc;
    }
    *out = json_pack("{s:o}", "maintenance", list); /* takes list, even on failure */
    return *out ? 0 : cb_error_set(err, CB_ENOMEM, NULL, "out of memory");
}

static int opt_text(const json_t *def, const char *name, size_t max, const char **out, cb_error *err)
{
    const json_t *v = json_object_get(def, name);
    *out = NULL;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v) || !json_string_length(v) || json_string_length(v) > max)
        return cb_error_set(err, CB_EINVALID_FIELD, name, "%s must be a non-empty string of at most %zu bytes", name, max);
    *out = json_string_value(v);
    return 0;
}

struct window_def {
    const char *entity, *district, *grid, *rule, *reason;
    int64_t from, to;
};

static int parse_window(rules *R, const json_t *def, struct window_def *w, cb_error *err)
{
    if (!json_is_object(def))
        return cb_error_set(err, CB_EINVALID_FIELD, "body", "a maintenance window is a JSON object");
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)def, key, v) {
        char padded[40];
        snprintf(padded, sizeof padded, " %s ", key);
        if (strlen(key) > 20 || !strstr(" entity district grid rule from to reason ", padded))
            return cb_error_set(err, CB_EINVALID_FIELD, key, "unknown member '%s'", key);
    }
    int rc = opt_text(def, "entity", ENTITY_ID_MAX - 1, &w->entity, err);
    if (rc == 0)
        rc = opt_text(def, "district", REGION_CODE_MAX - 1, &w->district, err);
    if (rc == 0)
        rc = opt_text(def, "grid", REGION_CODE_MAX - 1, &w->grid, err);
    if (rc == 0)
        rc = opt_text(def, "rule", RULE_ID_MAX - 1, &w->rule, err);
    if (rc == 0)
        rc = opt_text(def, "reason", 500, &w->reason, err);
    if (rc != 0)
        return rc;
    if (!w->reason)
        return cb_error_set(err, CB_EMISSING_FIELD, "reason", "reason is required");
    if (!w->entity && !w->district && !w->grid && !w->rule)
        return cb_error_set(err, CB_EMISSING_FIELD, "entity", "give an entity, district, grid or rule to suppress");
    if (!!w->entity + !!w->district + !!w->grid > 1)
        return cb_error_set(err, CB_EINVALID_FIELD, "entity", "give one of entity, district or grid");
    if (w->district && region_store_index(R->regions, REGION_DISTRICT, w->district) == REGION_INDEX_NONE)
        return cb_error_set(err, CB_EINVALID_FIELD, "district", "unknown district '%s'", w->district);
    if (w->grid && region_store_index(R->regions, REGION_GRID, w->grid) == REGION_INDEX_NONE)
        return cb_error_set(err, CB_EINVALID_FIELD, "grid", "unknown grid '%s'", w->grid);
    if (!json_object_get(def, "from"))
        return cb_error_set(err, CB_EMISSING_FIELD, "from", "from is required");
    if (text_time(json_object_get(def, "from"), &w->from) != 0)
        return cb_error_set(err, CB_EINVALID_FIELD, "from", "from must be RFC 3339 or epoch milliseconds");
    if (!json_object_get(def, "to"))
        return cb_error_set(err, CB_EMISSING_FIELD, "to", "to is required");
    if (text_time(json_object_get(def, "to"), &w->to) != 0)
        return cb_error_set(err, CB_EINVALID_FIELD, "to", "to must be RFC 3339 or epoch milliseconds");
    if (w->to <= w->from)
        return cb_error_set(err, CB_EINVALID_FIELD, "to", "to must be after from");
    return 0;
}

static void bind_opt(sqlite3_stmt *st, int i, const char *s)
{
    if (s)
        sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
}

int rules_maintenance_create(rules *R, json_t *def, const char *by, json_t **out, cb_error *err)
{
    struct window_def w = {0};
    int rc = parse_window(R, def, &w, err);
    if (rc != 0)
        return rc;
    unsigned char b[5];
    char id[24];
    randombytes_buf(b, sizeof b);
    snprintf(id, sizeof id, "m%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3], b[4]);
    sqlite3_stmt *st = NULL;
    pthread_mutex_lock(&R->alock);
    rc = sqlite3_prepare_v2(db_sqlite(R->adb),
                            "INSERT INTO maintenance (id, entity, district, grid, rule, from_ms, to_ms, reason, created_by, "
                            "created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                            -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        bind_opt(st, 2, w.entity);
        bind_opt(st, 3, w.district);
        bind_opt(st, 4, w.grid);
        bind_opt(st, 5, w.rule);
        sqlite3_bind_int64(st, 6, w.from);
        sqlite3_bind_int64(st, 7, w.to);
        sqlite3_bind_text(st, 8, w.reason, -1, SQLITE_STATIC);
        bind_opt(st, 9, by);
        sqlite3_bind_int64(st, 10, clock_now_ms());
        rc = sqlite3_step(st) == SQLITE_DONE ? 0 : db_error(R->adb, sqlite3_errcode(db_sqlite(R->adb)), "storing", err);
    } else
        rc = db_error(R->adb, rc, "storing the window", err);
    sqlite3_finalize(st);
    pthread_mutex_unlock(&R->alock);
    if (rc == 0)
        rc = load_maintenance(R, err);
    if (rc != 0)
        return rc;
    char f[CLOCK_RFC3339_MAX], t[CLOCK_RFC3339_MAX];
    *out = json_pack("{s:s, s:s?, s:s?, s:s?, s:s?, s:s, s:s, s:s, s:s?}", "id", id, "entity", w.entity, "district",
                     w.district, "grid", w.grid, "rule", w.rule, "from", clock_format_rfc3339(w.from, f), "to",
                     clock_format_rfc3339(w.to, t), "reason", w.reason, "created_by", by);
    return *out ? 0 : cb_error_set(err, CB_ENOMEM, NULL, "out of memory");
}

int rules_maintenance_delete(rules *R, const char *id, cb_error *err)
{
    sqlite3_stmt *st = NULL;
    int changed = 0;
    pthread_mutex_lock(&R->alock);
    int rc = sqlite3_prepare_v2(db_sqlite(R->adb), "DELETE FROM maintenance WHERE id = ?1", -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        rc = sqlite3_step(st) == SQLITE_DONE ? 0 : db_error(R->adb, sqlite3_errcode(db_sqlite(R->adb)), "deleting", err);
        changed = sqlite3_changes(db_sqlite(R->adb));
    } else
        rc = db_error(R->adb, rc, "deleting the window", err);
    sqlite3_finalize(st);
    pthread_mutex_unlock(&R->alock);
    if (rc == 0 && !changed)
        rc = cb_error_set(err, CB_ENOT_FOUND, "id", "no maintenance window '%s'", id);
    return rc == 0 ? load_maintenance(R, err) : rc;
}

void rules_write_metrics(rules *R, buf *out)
{
    if (!R)
        return;
    pthread_mutex_lock(&R->lock);
    size_t n = R->n;
    uint64_t evaluations = R->evaluations;
    pthread_mutex_unlock(&R->lock);
    buf_printf(out,
               "# TYPE citybrain_rules gauge\n"
               "citybrain_rules %zu\n"
               "# TYPE citybrain_rule_evaluations_total counter\n"
               "citybrain_rule_evaluations_total %llu\n"
               "# TYPE citybrain_rule_readings_out_of_order_total counter\n"
               "citybrain_rule_readings_out_of_order_total %llu\n"
               "# TYPE citybrain_alarms_total counter\n"
               "citybrain_alarms_total{change=\"raised\"} %llu\n"
               "citybrain_alarms_total{change=\"cleared\"} %llu\n"
               "citybrain_alarms_total{change=\"suppressed\"} %llu\n"
               "citybrain_alarms_total{change=\"failed\"} %llu\n",
               n, (unsigned long long)evaluations, (unsigned long long)R->stats.out_of_order,
               (unsigned long long)R->stats.raised, (unsigned long long)R->stats.cleared,
               (unsigned long long)R->stats.suppressed, (unsigned long long)R->stats.failed);
}
