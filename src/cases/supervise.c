/* supervise — 督办: the timers of the open cases' current steps. Yellow at
 * 80 % of a step's limit, red at 100 %; each new level stores a supervision
 * record, escalates (yellow: the operations centre, red: the leadership,
 * role admin) and publishes supervision.yellow / supervision.red. A thread
 * runs one pass every supervise_interval_ms; tests call cases_supervise with
 * their own clock. */
#include "cases/cases_int.h"

#include "core/clock.h"
#include "core/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define YELLOW_PERMILLE 800
#define PASS_MAX 1000 /* cases raised per pass and level; the rest in the next pass */

/* Natural time for intake, dispatch and urgent categories; working time for
 * the check and the other categories' handling. */
static int step_natural(cases *c, const char *step, const char *category)
{
    if (strcmp(step, "file") == 0 || strcmp(step, "dispatch") == 0)
        return 1;
    if (strcmp(step, "check") == 0)
        return 0;
    struct category_limit lim;
    return cases__category_limit(c, category, &lim, NULL) == 0 ? lim.natural : 1;
}

static const char *timer_of(cases *c, int natural, int64_t started, int64_t deadline, int64_t now)
{
    if (now >= deadline)
        return "red";
    int64_t used = natural ? now - started : calendar_working_ms(c->cal, started, now);
    int64_t total = natural ? deadline - started : calendar_working_ms(c->cal, started, deadline);
    return total > 0 && used * 1000 >= total * YELLOW_PERMILLE ? "yellow" : "green";
}

const char *cases__timer(cases *c, const char *step, const char *category, int64_t started, int64_t deadline,
                         int64_t now)
{
    return step ? timer_of(c, step_natural(c, step, category), started, deadline, now) : "green";
}

static const char *escalation(const char *level)
{
    return strcmp(level, "red") == 0 ? "admin" : "operator";
}

int cases__supervision_add(cases *c, const struct cb_case *k, const char *level, const char *note, int64_t now,
                           cb_error *err)
{
    sqlite3_stmt *st = cases__prepare(c,
                                      "INSERT OR IGNORE INTO supervision (case_id, step, level, deadline, department, "
                                      "district, escalated_to, note, created_at) VALUES (?,?,?,?,?,?,?,?,?)",
                                      err);
    if (!st)
        return err ? err->code : CB_EINTERNAL;
    sqlite3_bind_text(st, 1, k->id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, k->step[0] ? k->step : "none", -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, level, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 4, k->has_deadline ? k->deadline : now);
    cases__bind_text(st, 5, k->department);
    cases__bind_text(st, 6, k->district);
    sqlite3_bind_text(st, 7, escalation(level), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 8, note ? note : "", -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 9, now);
    int rc = sqlite3_step(st);
    cases__finish(c, st);
    return rc == SQLITE_DONE ? 0 : cases__step_error(c, rc, "storing a supervision record", err);
}

/* The data of a supervision event, queued until the pass commits. */
static json_t *supervision_json(const struct cb_case *k, const char *level)
{
    char deadline[CLOCK_RFC3339_MAX];
    return json_pack("{s:s, s:s, s:s, s:s, s:s?, s:s?, s:s}", "case", k->id, "step", k->step, "level", level,
                     "deadline", clock_format_rfc3339(k->deadline, deadline), "department",
                     k->department[0] ? k->department : NULL, "district", k->district[0] ? k->district : NULL,
                     "escalated_to", escalation(level));
}

/* Publishes the queued events after the commit, so a subscriber never sees
 * a supervision that was rolled back; c->mu held. */
static void publish_supervisions(cases *c, json_t *queued)
{
    size_t i;
    json_t *data;
    if (!c->ev)
        return;
    json_array_foreach(queued, i, data) {
        char type[32];
        snprintf(type, sizeof type, "supervision.%s", json_string_value(json_object_get(data, "level")));
        struct event_scope scope = {json_string_value(json_object_get(data, "district")),
                                    json_string_value(json_object_get(data, "department"))};
        events_publish(c->ev, "supervision", type, &scope, json_incref(data));
    }
}

/* Raises `level` on every open case whose timer reached it, queueing its
 * event on queued; returns the count. */
static int raise_level(cases *c, const char *level, int64_t now, json_t *queued, cb_error *err)
{
    /* every running timer below the level: working-time limits may turn yellow
     * before 80 % of the natural span, so no cheaper pre-filter is exact */
    sqlite3_stmt *st = cases__prepare(
        c,
        "SELECT k.id, CASE WHEN k.step IN ('file', 'dispatch') THEN 1 WHEN k.step = 'check' THEN 0 ELSE "
        "coalesce(cc.limit_natural, 1) END, k.step_started, k.deadline FROM cases k LEFT JOIN case_category cc ON "
        "cc.code = k.category WHERE k.step IS NOT NULL AND k.timer != 'red' AND (?1 = 'red' OR k.timer = 'green') "
        "ORDER BY k.deadline",
        err);
    if (!st)
        return err ? err->code : CB_EINTERNAL;
    sqlite3_bind_text(st, 1, level, -1, SQLITE_STATIC);
    char (*ids)[CASE_ID_MAX] = malloc(PASS_MAX * sizeof *ids);
    if (!ids) {
        cases__finish(c, st);
        return cb_error_set(err, CB_ENOMEM, NULL, "supervision pass");
    }
    int n = 0;
    while (n < PASS_MAX && sqlite3_step(st) == SQLITE_ROW) {
        const char *timer = timer_of(c, sqlite3_column_int(st, 1), sqlite3_column_int64(st, 2),
                                     sqlite3_column_int64(st, 3), now);
        if (strcmp(timer, level) == 0)
            snprintf(ids[n++], CASE_ID_MAX, "%s", (const char *)sqlite3_column_text(st, 0));
    }
    cases__finish(c, st);
    int raised = 0;
    for (int i = 0; i < n; i++) {
        struct cb_case k;
        int rc = cases__load(c, ids[i], &k, err);
        if (rc == 0)
            rc = cases__supervision_add(c, &k, level, NULL, now, err);
        if (rc == 0) {
            char set[64];
            snprintf(set, sizeof set, "UPDATE cases SET timer = '%s' WHERE id = ?", level);
            sqlite3_stmt *u = cases__prepare(c, set, err);
            if (!u)
                rc = err ? err->code : CB_EINTERNAL;
            else {
                sqlite3_bind_text(u, 1, ids[i], -1, SQLITE_TRANSIENT);
                int step = sqlite3_step(u);
                rc = step == SQLITE_DONE ? 0 : cases__step_error(c, step, "setting the case timer", err);
                cases__finish(c, u);
            }
        }
        if (rc == 0 && json_array_append_new(queued, supervision_json(&k, level)) != 0)
            rc = cb_error_set(err, CB_ENOMEM, NULL, "supervision event");
        if (rc != 0) {
            free(ids);
            return rc;
        }
        raised++;
    }
    free(ids);
    return raised;
}

int cases_supervise(cases *c, int64_t now, cb_error *err)
{
    json_t *queued = json_array();
    if (!queued)
        return cb_error_set(err, CB_ENOMEM, NULL, "supervision pass");
    pthread_mutex_lock(&c->mu);
    int red = 0, yellow = 0, rc = db_exec(c->d, "BEGIN IMMEDIATE", err);
    if (rc == 0) {
        rc = red = raise_level(c, "red", now, queued, err);
        if (rc >= 0)
            rc = yellow = raise_level(c, "yellow", now, queued, err);
        int end = db_exec(c->d, rc >= 0 ? "COMMIT" : "ROLLBACK", rc >= 0 ? err : NULL);
        if (rc >= 0 && end != 0)
            rc = end;
        if (rc >= 0)
            publish_supervisions(c, queued);
    }
    pthread_mutex_unlock(&c->mu);
    json_decref(queued);
    return rc < 0 ? rc : red + yellow;
}

static void *supervise_main(void *arg)
{
    cases *c = arg;
    pthread_mutex_lock(&c->mu);
    while (!c->stopping) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t ns = ts.tv_nsec + (int64_t)c->opt.supervise_interval_ms * 1000000;
        ts.tv_sec += (time_t)(ns / 1000000000);
        ts.tv_nsec = (long)(ns % 1000000000);
        pthread_cond_timedwait(&c->wake, &c->mu, &ts);
        if (c->stopping)
            break;
        pthread_mutex_unlock(&c->mu);
        cb_error err;
        int rc = cases_supervise(c, clock_now_ms(), &err);
        if (rc < 0)
            log_event(LOG_WARN, "supervise", "error=%s msg=\"%s\"", cb_err_name(rc), err.message);
        else if (rc > 0)
            log_event(LOG_INFO, "supervise", "raised=%d", rc);
        pthread_mutex_lock(&c->mu);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

int cases__supervise_start(cases *c, cb_error *err)
{
    int rc = pthread_create(&c->thread, NULL, supervise_main, c);
    if (rc != 0)
        return cb_error_set(err, CB_EINTERNAL, NULL, "starting the supervision thread: %s", strerror(rc));
    c->running = 1;
    return 0;
}

void cases__supervise_stop(cases *c)
{
    if (!c->running)
        return;
    pthread_mutex_lock(&c->mu);
    c->stopping = 1;
    pthread_cond_signal(&c->wake);
    pthread_mutex_unlock(&c->mu);
    pthread_join(c->thread, NULL);
    c->running = 0;
}

int cases_supervisions(cases *c, const struct principal *who, const char *case_id, const char *level,
                       const char *limit, const char *cursor, json_t **out, cb_error *err)
{
    long lim = 100;
    long long cur = 0;
    char *end;
    if (limit && ((lim = strtol(limit, &end, 10)) < 1 || lim > 1000 || *end))
        return cb_error_set(err, CB_EINVALID_FIELD, "limit", "limit must be 1..1000");
    if (cursor && ((cur = strtoll(cursor, &end, 10)) < 1 || *end))
        return cb_error_set(err, CB_EINVALID_FIELD, "cursor", "cursor must come from next_cursor");
    pthread_mutex_lock(&c->mu);
    sqlite3_stmt *st = cases__prepare(
        c,
        "SELECT id, case_id, step, level, deadline, department, district, escalated_to, note, created_at FROM "
        "supervision WHERE (?1 IS NULL OR case_id = ?1) AND (?2 IS NULL OR level = ?2) AND (?3 IS NULL OR "
        "department = ?3) AND (?4 = 0 OR id < ?4) ORDER BY id DESC LIMIT ?5",
        err);
    json_t *list = json_array();
    long long last = 0;
    long n = 0;
    if (st) {
        cases__bind_text(st, 1, case_id);
        cases__bind_text(st, 2, level);
        cases__bind_text(st, 3, who && who->role == ROLE_DEPT ? who->department : NULL);
        if (who && who->role == ROLE_DEPT && !who->department[0])
            sqlite3_bind_text(st, 3, "\x01", -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, cur);
        sqlite3_bind_int64(st, 5, lim + 1);
        while (n < lim && sqlite3_step(st) == SQLITE_ROW) {
            char t1[CLOCK_RFC3339_MAX], t2[CLOCK_RFC3339_MAX];
            last = sqlite3_column_int64(st, 0);
            n++;
            json_array_append_new(
                list, json_pack("{s:I, s:s, s:s, s:s, s:s, s:s?, s:s?, s:s, s:s, s:s}", "id", last, "case",
                                sqlite3_column_text(st, 1), "step", sqlite3_column_text(st, 2), "level",
                                sqlite3_column_text(st, 3), "deadline",
                                clock_format_rfc3339(sqlite3_column_int64(st, 4), t1), "department",
                                sqlite3_column_text(st, 5), "district", sqlite3_column_text(st, 6), "escalated_to",
                                sqlite3_column_text(st, 7), "note", sqlite3_column_text(st, 8), "created_at",
                                clock_format_rfc3339(sqlite3_column_int64(st, 9), t2)));
        }
    }
    int more = st && n == lim && sqlite3_step(st) == SQLITE_ROW;
    int rc = st ? 0 : err ? err->code : CB_EINTERNAL;
    cases__finish(c, st);
    pthread_mutex_unlock(&c->mu);
    if (rc != 0) {
        json_decref(list);
        return rc;
    }
    char next[32];
    snprintf(next, sizeof next, "%lld", last);
    *out = json_pack("{s:o, s:s?}", "supervisions", list, "next_cursor", more ? next : NULL);
    return 0;
}
