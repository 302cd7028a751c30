/* alarm — alarms in SQLite: the rules thread persists what the evaluator
 * queued (one active alarm per rule × entity, checked again here), calls the
 * case hook, then publishes "alarm" events; the API lists, shows,
 * acknowledges, clears and counts them on its own connection. */
#include "rules/rules_int.h"

#include "core/clock.h"
#include "core/log.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ALARM_COLS                                                                                           \
    "id, rule, rule_name, kind, entity, entity_type, attr, value, severity, category, state, district, grid, " \
    "department, lon, lat, message, raised_at, acknowledged_at, acknowledged_by, cleared_at, cleared_by, "    \
    "case_id, data"
#define LIST_MAX 1000
#define LIST_DEFAULT 50

void rules__alarm_id(long long no, char out[ALARM_ID_MAX])
{
    snprintf(out, ALARM_ID_MAX, "A%06lld", no);
}

static long long alarm_no(const char *id)
{
    if (!id)
        return -1;
    if (*id == 'A' || *id == 'a')
        id++;
    char *end;
    errno = 0;
    long long n = strtoll(id, &end, 10);
    return *id && !*end && !errno && n > 0 ? n : -1;
}

/* --- rows as ALARM JSON --- */

static json_t *col_text(sqlite3_stmt *st, int i)
{
    const char *s = (const char *)sqlite3_column_text(st, i);
    return s ? json_string(s) : json_null();
}

static json_t *col_real(sqlite3_stmt *st, int i)
{
    return sqlite3_column_type(st, i) == SQLITE_NULL ? json_null() : json_real(sqlite3_column_double(st, i));
}

static json_t *col_time(sqlite3_stmt *st, int i)
{
    char t[CLOCK_RFC3339_MAX];
    return sqlite3_column_type(st, i) == SQLITE_NULL ? json_null()
                                                      : json_string(clock_format_rfc3339(sqlite3_column_int64(st, i), t));
}

static json_t *row_json(sqlite3_stmt *st)
{
    static const char *const names[] = {"id",          "rule",     "rule_name", "kind",       "entity",     "entity_type",
                                        "attr",        "value",    "severity",  "category",   "state",      "district",
                                        "grid",        "department", "lon",     "lat",        "message",    "raised_at",
                                        "acknowledged_at", "acknowledged_by", "cleared_at", "cleared_by", "case", "data"};
    json_t *a = json_object();
    char id[ALARM_ID_MAX];
    rules__alarm_id(sqlite3_column_int64(st, 0), id);
    json_object_set_new(a, "id", json_string(id));
    for (int i = 1; i < (int)(sizeof names / sizeof names[0]); i++) {
        json_t *v;
        if (i == 7 || i == 14 || i == 15)
            v = col_real(st, i);
        else if (i == 17 || i == 18 || i == 20)
            v = col_time(st, i);
        else if (i == 23) {
            const char *d = (const char *)sqlite3_column_text(st, i);
            v = d ? json_loads(d, 0, NULL) : NULL;
            if (!v)
                continue;
        } else
            v = col_text(st, i);
        json_object_set_new(a, names[i], v);
    }
    return a;
}

/* The alarm no as JSON (caller owns), or NULL. */
static json_t *load_alarm(db *d, long long no, int history)
{
    sqlite3_stmt *st = NULL;
    json_t *a = NULL;
    if (sqlite3_prepare_v2(db_sqlite(d), "SELECT " ALARM_COLS " FROM alarm WHERE id = ?1", -1, &st, NULL) != SQLITE_OK)
        return NULL;
    sqlite3_bind_int64(st, 1, no);
    if (sqlite3_step(st) == SQLITE_ROW)
        a = row_json(st);
    sqlite3_finalize(st);
    if (!a || !history)
        return a;
    json_t *h = json_array();
    if (sqlite3_prepare_v2(db_sqlite(d), "SELECT action, at, actor, note, value FROM alarm_event WHERE alarm = ?1 ORDER BY seq",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, no);
        while (sqlite3_step(st) == SQLITE_ROW)
            json_array_append_new(h, json_pack("{s:o, s:o, s:o, s:o, s:o}", "action", col_text(st, 0), "at", col_time(st, 1),
                                               "by", col_text(st, 2), "note", col_text(st, 3), "value", col_real(st, 4)));
        sqlite3_finalize(st);
    }
    json_object_set_new(a, "history", h);
    return a;
}

static int add_event(db *d, long long no, const char *action, int64_t at, const char *actor, const char *note,
                     double value)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db_sqlite(d),
                                "INSERT INTO alarm_event (alarm, action, at, actor, note, value) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                                -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, no);
        sqlite3_bind_text(st, 2, action, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, at);
        sqlite3_bind_text(st, 4, actor, -1, SQLITE_STATIC);
        if (note && *note)
            sqlite3_bind_text(st, 5, note, -1, SQLITE_STATIC);
        if (isfinite(value))
            sqlite3_bind_double(st, 6, value);
        rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_OK ? 0 : CB_EIO;
}

static void publish(rules *R, db *d, long long no, const char *type)
{
    if (!R->ev)
        return;
    json_t *a = load_alarm(d, no, 0);
    if (!a)
        return;
    struct event_scope scope = {json_string_value(json_object_get(a, "district")),
                                json_string_value(json_object_get(a, "department"))};
    events_publish(R->ev, "alarm", type, &scope, a);
}

/* --- the rules thread: persisting what the evaluator queued --- */

void rules__enqueue(rules *R, struct change *c)
{
    pthread_mutex_lock(&R->qlock);
    c->next = NULL;
    if (R->tail)
        R->tail->next = c;
    else
        R->head = c;
    R->tail = c;
    R->queued++;
    pthread_cond_signal(&R->qwake);
    pthread_mutex_unlock(&R->qlock);
}

static long long active_alarm(db *d, const char *rule, const char *key)
{
    sqlite3_stmt *st = NULL;
    long long no = 0;
    if (sqlite3_prepare_v2(db_sqlite(d), "SELECT id FROM alarm WHERE rule = ?1 AND entity = ?2 AND state != 'cleared' "
                                         "ORDER BY id DESC LIMIT 1", -1, &st, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_text(st, 1, rule, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW)
        no = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return no;
}

static void bind_json_text(sqlite3_stmt *st, int i, const json_t *o, const char *name)
{
    const char *s = json_string_value(json_object_get(o, name));
    if (s)
        sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
}

static void bind_json_real(sqlite3_stmt *st, int i, const json_t *o, const char *name)
{
    const json_t *v = json_object_get(o, name);
    if (json_is_number(v))
        sqlite3_bind_double(st, i, json_number_value(v));
}

/* Inserts the RAISE as alarm number no; no, or -1. */
static long long insert_alarm(db *d, const struct change *c, long long no)
{
    sqlite3_stmt *st = NULL;
    const json_t *a = c->alarm;
    if (sqlite3_prepare_v2(db_sqlite(d),
                           "INSERT INTO alarm (rule, rule_name, kind, entity, entity_type, attr, value, severity, category, "
                           "state, district, grid, department, lon, lat, message, raised_at, data, id) VALUES (?1, ?2, ?3, ?4, "
                           "?5, ?6, ?7, ?8, ?9, 'open', ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)",
                           -1, &st, NULL) != SQLITE_OK)
        return -1;
    static const char *const text[] = {"rule", "rule_name", "kind", "entity", "entity_type", "attr"};
    for (int i = 0; i < 6; i++)
        bind_json_text(st, i + 1, a, text[i]);
    bind_json_real(st, 7, a, "value");
    bind_json_text(st, 8, a, "severity");
    bind_json_text(st, 9, a, "category");
    bind_json_text(st, 10, a, "district");
    bind_json_text(st, 11, a, "grid");
    bind_json_text(st, 12, a, "department");
    bind_json_real(st, 13, a, "lon");
    bind_json_real(st, 14, a, "lat");
    bind_json_text(st, 15, a, "message");
    sqlite3_bind_int64(st, 16, c->ts);
    char *data = json_object_get(a, "data") ? json_dumps(json_object_get(a, "data"), JSON_COMPACT) : NULL;
    if (data)
        sqlite3_bind_text(st, 17, data, -1, free);
    sqlite3_bind_int64(st, 18, no);
    no = sqlite3_step(st) == SQLITE_DONE ? no : -1;
    sqlite3_finalize(st);
    return no;
}

static void open_case(rules *R, db *d, long long no, const char *category)
{
    pthread_mutex_lock(&R->qlock);
    rules_case_fn fn = R->case_fn;
    void *ctx = R->case_ctx;
    pthread_mutex_unlock(&R->qlock);
    if (!fn)
        return;
    json_t *a = load_alarm(d, no, 0);
    char case_id[RULES_CASE_ID_MAX] = "";
    int rc = a ? fn(ctx, a, category, case_id, sizeof case_id) : CB_ENOMEM;
    json_decref(a);
    if (rc != 0 || !case_id[0]) {
        log_event(LOG_WARN, "alarm_case", "alarm=%lld category=%s msg=\"the case hook failed\"", no, category);
        return;
    }
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db_sqlite(d), "UPDATE alarm SET case_id = ?2 WHERE id = ?1", -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, no);
        sqlite3_bind_text(st, 2, case_id, -1, SQLITE_STATIC);
        sqlite3_step(st);
    }
    sqlite3_finalize(st);
    add_event(d, no, "case_opened", clock_now_ms(), "system", case_id, NAN);
}

static long long clear_no(db *d, long long no, int64_t at, const char *by, const char *note, double value);

/* Clears the active alarm of (rule, key) as `by`; its number, 0 when none. */
static long long clear_active(db *d, const char *rule, const char *key, int64_t at, const char *by, const char *note,
                              double value)
{
    long long no = active_alarm(d, rule, key);
    return no <= 0 ? no : clear_no(d, no, at, by, note, value);
}

/* Clears alarm no as `by`: no; 0 when someone cleared it already; -1 on error. */
static long long clear_no(db *d, long long no, int64_t at, const char *by, const char *note, double value)
{
    sqlite3_stmt *st = NULL;
    int ok = sqlite3_prepare_v2(db_sqlite(d), "UPDATE alarm SET state = 'cleared', cleared_at = ?2, cleared_by = ?3 "
                                              "WHERE id = ?1 AND state != 'cleared'", -1, &st, NULL) == SQLITE_OK;
    if (ok) {
        sqlite3_bind_int64(st, 1, no);
        sqlite3_bind_int64(st, 2, at);
        sqlite3_bind_text(st, 3, by, -1, SQLITE_STATIC);
        ok = sqlite3_step(st) == SQLITE_DONE;
    }
    int changed = ok && sqlite3_changes(db_sqlite(d)) == 1;
    sqlite3_finalize(st);
    if (!ok || (changed && add_event(d, no, "cleared", at, by, note, value) != 0))
        return -1;
    return changed ? no : 0;
}

#define RESERVE_BLOCK 1024  /* alarm numbers reserved in SQLite at a time */

/* The ALARM JSON of a RAISE numbered no, as load_alarm would read it back. */
static json_t *raised_json(const struct change *c, long long no)
{
    json_t *a = json_deep_copy(c->alarm);
    char id[ALARM_ID_MAX], t[CLOCK_RFC3339_MAX];
    rules__alarm_id(no, id);
    if (a && json_object_set_new(a, "id", json_string(id)) == 0) {
        json_object_set_new(a, "state", json_string("open"));
        json_object_set_new(a, "raised_at", json_string(clock_format_rfc3339(c->ts, t)));
        static const char *const none[] = {"acknowledged_at", "acknowledged_by", "cleared_at", "cleared_by", "case"};
        for (size_t i = 0; i < sizeof none / sizeof none[0]; i++)
            json_object_set_new(a, none[i], json_null());
    }
    return a;
}

static void publish_json(rules *R, json_t *a, const char *type)
{
    if (!R->ev || !a)
        return;
    struct event_scope scope = {json_string_value(json_object_get(a, "district")),
                                json_string_value(json_object_get(a, "department"))};
    events_publish(R->ev, "alarm", type, &scope, json_incref(a));
}

/* Reserves alarm numbers up to at least `to` in sqlite_sequence, inside the
 * caller's transaction, so that no number published before a crash is ever
 * given to another alarm after it (rules.h, "Alarms"). */
static int reserve_numbers(rules *R, db *d, long long to)
{
    if (to <= R->reserved_to)
        return 0;
    sqlite3_stmt *st = NULL;
    long long upto = to + RESERVE_BLOCK;
    int rc = sqlite3_prepare_v2(db_sqlite(d), "UPDATE sqlite_sequence SET seq = max(seq, ?1) WHERE name = 'alarm'", -1,
                                &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, upto);
        rc = sqlite3_step(st) == SQLITE_DONE && sqlite3_changes(db_sqlite(d)) == 1 ? SQLITE_OK : SQLITE_ERROR;
    }
    if (rc != SQLITE_OK) { /* no row yet: the first alarm ever */
        sqlite3_finalize(st);
        st = NULL;
        rc = sqlite3_prepare_v2(db_sqlite(d), "INSERT INTO sqlite_sequence (name, seq) VALUES ('alarm', ?1)", -1, &st, NULL);
        if (rc == SQLITE_OK) {
            sqlite3_bind_int64(st, 1, upto);
            rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
        }
    }
    sqlite3_finalize(st);
    if (rc == SQLITE_OK)
        R->reserved_to = upto;
    return rc == SQLITE_OK ? 0 : -1;
}

/* Decides change c — dedup against the active alarm of its (rule, key): an
 * earlier change not stored yet, else SQLite (a read, which no writer
 * blocks) — numbers and publishes it, and adds it to the changes to store.
 * Publishing does not wait for the store: SQLite's write lock can be held
 * for a second by a history flush or a checkpoint (rules.h, "Alarms"). */
static void decide(rules *R, struct change *c)
{
    assert(R->npend < PEND_MAX);
    struct pending *p = &R->pend[R->npend++];
    long long active = -2;
    const json_t *prior = NULL; /* the active alarm's JSON, when not stored yet */
    for (size_t j = R->npend - 1; j-- > 0;)
        if (strcmp(R->pend[j].c->rule, c->rule) == 0 && strcmp(R->pend[j].c->key, c->key) == 0) {
            active = R->pend[j].active;
            prior = R->pend[j].no > 0 && R->pend[j].c->op == CHANGE_RAISE ? R->pend[j].js : NULL;
            break;
        }
    if (active == -2)
        active = active_alarm(R->tdb, c->rule, c->key);
    *p = (struct pending){c, -1, -1, NULL};
    if (active < 0)
        return;
    if (c->op == CHANGE_RAISE) {
        /* already active (a replayed reading, or a rule edited while raised): dedup */
        if (active > 0) {
            p->no = 0;
            p->active = active;
        } else if (R->next_no <= R->reserved_to) { /* else SQLite failed to reserve more: fail */
            p->no = p->active = R->next_no++;
            publish_json(R, p->js = raised_json(c, p->no), "alarm.raised");
        }
        return;
    }
    p->no = active;
    p->active = 0;
    if (active > 0) {
        char t[CLOCK_RFC3339_MAX];
        p->js = prior ? json_deep_copy(prior) : load_alarm(R->tdb, active, 0);
        if (p->js) {
            json_object_set_new(p->js, "state", json_string("cleared"));
            json_object_set_new(p->js, "cleared_at", json_string(clock_format_rfc3339(c->ts, t)));
            json_object_set_new(p->js, "cleared_by", json_string("auto"));
        }
        publish_json(R, p->js, "alarm.cleared");
    }
}

/* Stores the decided changes in one transaction, then opens cases (after
 * the commit: the case hook writes on another connection) and counts them
 * done. With wait 0 it gives up at once while another connection holds
 * SQLite's write lock (0: try again soon); else it waits up to 5 s. 1 when
 * nothing is left to store. */
static int store_pending(rules *R, int wait)
{
    db *d = R->tdb;
    size_t n = R->npend;
    if (n == 0)
        return 1;
    R->try_only = !wait;
    int rc = sqlite3_exec(db_sqlite(d), "BEGIN IMMEDIATE", NULL, NULL, NULL);
    R->try_only = 0;
    if ((rc & 0xff) == SQLITE_BUSY && !wait)
        return 0;
    int ok = rc == SQLITE_OK;
    for (size_t i = 0; ok && i < n; i++) { /* each in a savepoint: one that fails leaves the others */
        struct pending *p = &R->pend[i];
        if (p->no <= 0)
            continue;
        if (db_exec(d, "SAVEPOINT change", NULL) != 0) {
            p->no = -1;
            continue;
        }
        int done = p->c->op == CHANGE_RAISE
                       ? insert_alarm(d, p->c, p->no) > 0 &&
                             add_event(d, p->no, "raised", p->c->ts, "system",
                                       json_string_value(json_object_get(p->c->alarm, "message")), p->c->value) == 0
                       : clear_no(d, p->no, p->c->ts, "auto", p->c->note, p->c->value) >= 0;
        if (!done) {
            log_event(LOG_ERROR, "alarm", "rule=%s entity=%s msg=\"cannot store the alarm change: %s\"", p->c->rule,
                      p->c->key, sqlite3_errmsg(db_sqlite(d)));
            p->no = -1;
        }
        db_exec(d, done ? "RELEASE change" : "ROLLBACK TO change; RELEASE change", NULL);
    }
    if (ok && R->reserved_to - R->next_no < PEND_MAX)
        ok = reserve_numbers(R, d, R->next_no + PEND_MAX) == 0;
    if (ok)
        ok = db_exec(d, "COMMIT", NULL) == 0;
    if (!ok) {
        /* Published but not stored: an I/O error. Logged and counted; the
         * evaluator keeps them raised, as when storing failed before. */
        log_event(LOG_ERROR, "alarm", "changes=%zu msg=\"cannot store the alarm changes: %s\"", n,
                  sqlite3_errmsg(db_sqlite(d)));
        if (!sqlite3_get_autocommit(db_sqlite(d)))
            db_exec(d, "ROLLBACK", NULL);
    }
    for (size_t i = 0; i < n; i++) {
        struct pending *p = &R->pend[i];
        if (p->no < 0 || (p->no > 0 && !ok))
            atomic_fetch_add_explicit(&R->stats.failed, 1, memory_order_relaxed);
        else if (p->no > 0) {
            atomic_fetch_add_explicit(&R->stats.persisted, 1, memory_order_relaxed);
            if (p->c->op == CHANGE_RAISE) {
                char id[ALARM_ID_MAX];
                rules__alarm_id(p->no, id);
                log_event(LOG_INFO, "alarm_raised", "alarm=%s rule=%s entity=%s", id, p->c->rule, p->c->key);
                if (p->c->open_case[0])
                    open_case(R, d, p->no, p->c->open_case);
            }
        }
        json_decref(p->js);
        json_decref(p->c->alarm);
        free(p->c);
    }
    R->npend = 0;
    pthread_mutex_lock(&R->qlock);
    R->done += n;
    pthread_cond_broadcast(&R->qdone);
    pthread_mutex_unlock(&R->qlock);
    return 1;
}

/* The periodic checks (nodata, windows) without keeping alarm changes
 * waiting behind them: the state's read lock is only tried — the writer
 * holds the write lock while it applies a batch, milliseconds — unless the
 * tick is already late. 1 if it ran. */
static int tick(rules *R, int64_t now, int late)
{
    if (late)
        state_rdlock(R->st);
    else if (state_tryrdlock(R->st) != 0)
        return 0;
    pthread_mutex_lock(&R->lock);
    rules__tick_locked(R, now);
    pthread_mutex_unlock(&R->lock);
    state_unlock(R->st);
    return 1;
}

static void *thread_main(void *arg)
{
    rules *R = arg;
    int tick_due = 0;
    for (;;) {
        pthread_mutex_lock(&R->qlock);
        if (!R->head && !R->stopping) {
            /* changes the write lock kept from SQLite are tried again in 1 ms;
             * a tick that found the state busy in 2 ms */
            long ms = R->npend ? 1 : tick_due ? 2 : 1000;
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += ms * 1000000L;
            ts.tv_sec += ts.tv_nsec / 1000000000L;
            ts.tv_nsec %= 1000000000L;
            pthread_cond_timedwait(&R->qwake, &R->qlock, &ts);
        }
        struct change *list = R->head;
        R->head = R->tail = NULL;
        int stopping = R->stopping;
        pthread_mutex_unlock(&R->qlock);
        int any = list != NULL;
        while (list) {
            struct change *next = list->next;
            decide(R, list);
            list = next;
            if (R->npend == PEND_MAX)
                store_pending(R, 1);
        }
        store_pending(R, stopping);
        if (stopping && !any && !R->npend)
            break;
        int64_t now = clock_now_ms();
        tick_due = !stopping && now - R->last_tick_ms >= 1000;
        if (tick_due && tick(R, now, now - R->last_tick_ms >= 1250)) {
            R->last_tick_ms = now;
            tick_due = 0;
        }
    }
    return NULL;
}

/* SQLite's own busy handler sleeps 1, 2, 5, … 100 ms between tries, so a
 * write lock another connection holds for a few milliseconds (the series
 * flusher's batch) could keep an alarm waiting 100 ms more; the rules thread
 * tries again every 0.25 ms instead, for up to 5 s as the others do. */
static int busy_retry(void *arg, int tries)
{
    rules *R = arg;
    if (R->try_only)
        return 0;
    if (tries >= 20000)
        return 0;
    struct timespec ts = {0, 250000};
    nanosleep(&ts, NULL);
    return 1;
}

/* The next alarm number: above every alarm and every number reserved (and
 * so perhaps published) before a crash; then a fresh reservation. */
static int numbers_init(rules *R, cb_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db_sqlite(R->tdb),
                                "SELECT max((SELECT coalesce(max(id), 0) FROM alarm), "
                                "coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'alarm'), 0))",
                                -1, &st, NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        R->next_no = sqlite3_column_int64(st, 0) + 1;
        R->reserved_to = R->next_no - 1;
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_OK)
        return db_error(R->tdb, rc, "reading the alarm numbers", err);
    rc = db_exec(R->tdb, "BEGIN IMMEDIATE", err);
    if (rc == 0 && reserve_numbers(R, R->tdb, R->next_no + PEND_MAX) != 0)
        rc = db_error(R->tdb, sqlite3_errcode(db_sqlite(R->tdb)), "reserving alarm numbers", err);
    if (rc == 0)
        rc = db_exec(R->tdb, "COMMIT", err);
    if (rc != 0 && !sqlite3_get_autocommit(db_sqlite(R->tdb)))
        db_exec(R->tdb, "ROLLBACK", NULL);
    return rc;
}

int rules__thread_start(rules *R, cb_error *err)
{
    int rc = numbers_init(R, err);
    if (rc != 0)
        return rc;
    sqlite3_busy_handler(db_sqlite(R->tdb), busy_retry, R);
    /* SQLite's WAL is checkpointed by the other connections (the ingest
     * checkpoint's, the series flusher's), never inside an alarm's commit:
     * copying pages back and syncing took up to 120 ms there. */
    sqlite3_wal_autocheckpoint(db_sqlite(R->tdb), 0);
    if (pthread_create(&R->thread, NULL, thread_main, R) != 0)
        return cb_error_set(err, CB_EINTERNAL, NULL, "cannot start the rules thread");
    R->started = 1;
    return 0;
}

void rules__thread_stop(rules *R)
{
    if (!R->started)
        return;
    pthread_mutex_lock(&R->qlock);
    R->stopping = 1;
    pthread_cond_signal(&R->qwake);
    pthread_mutex_unlock(&R->qlock);
    pthread_join(R->thread, NULL);
    R->started = 0;
    /* A clean stop hands the unused reservation back: numbers stay dense. */
    db_exec(R->tdb, "UPDATE sqlite_sequence SET seq = (SELECT coalesce(max(id), 0) FROM alarm) WHERE name = 'alarm'", NULL);
}

void rules_flush(rules *R)
{
    pthread_mutex_lock(&R->qlock);
    uint64_t target = R->queued;
    while (R->done < target && R->started)
        pthread_cond_wait(&R->qdone, &R->qlock);
    pthread_mutex_unlock(&R->qlock);
}

void rules_checkpoint(void *ctx)
{
    rules_flush(ctx);
}

void rules_set_case_hook(rules *R, rules_case_fn fn, void *ctx)
{
    pthread_mutex_lock(&R->qlock);
    R->case_fn = fn;
    R->case_ctx = ctx;
    pthread_mutex_unlock(&R->qlock);
}

/* --- seeding the evaluator from the alarms (see rules.h "Time") --- */

static void seed_one(rules *R, struct rule *ru, const char *key, int active, int64_t raised_at, int64_t cleared_at)
{
    uint32_t k;
    if (ru->kind == RULE_REGION_COUNT) {
        if (rules__region_key(R, ru, key, &k) != 0)
            return;
    } else if ((k = state_find(R->st, key)) == STATE_NONE)
        return;
    struct rstate *s = rules__state(ru, k, 1);
    if (!s)
        return;
    s->raised = (uint8_t)active;
    s->newest_ts = active ? raised_at : cleared_at;
    if (!active)
        s->clear_ts = cleared_at;
}

int rules__seed_read(rules *R, const char *rule, struct seed_row **out, size_t *n, cb_error *err)
{
    sqlite3_stmt *st = NULL;
    struct seed_row *rows = NULL;
    size_t cap = 0;
    *n = 0;
    pthread_mutex_lock(&R->alock);
    int rc = sqlite3_prepare_v2(db_sqlite(R->adb),
                                "SELECT rule, entity, state != 'cleared', raised_at, coalesce(cleared_at, raised_at) FROM alarm "
                                "WHERE id IN (SELECT max(id) FROM alarm WHERE ?1 IS NULL OR rule = ?1 GROUP BY rule, entity)",
                                -1, &st, NULL);
    if (rc == SQLITE_OK && rule)
        sqlite3_bind_text(st, 1, rule, -1, SQLITE_STATIC);
    while (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            struct seed_row *nr = realloc(rows, cap * sizeof *nr);
            if (!nr) {
                rc = cb_error_set(err, CB_ENOMEM, NULL, "out of memory");
                break;
            }
            rows = nr;
        }
        struct seed_row *r = &rows[(*n)++];
        snprintf(r->rule, sizeof r->rule, "%s", (const char *)sqlite3_column_text(st, 0));
        snprintf(r->entity, sizeof r->entity, "%s", (const char *)sqlite3_column_text(st, 1));
        r->active = sqlite3_column_int(st, 2);
        r->raised_at = sqlite3_column_int64(st, 3);
        r->cleared_at = sqlite3_column_int64(st, 4);
    }
    if (rc != SQLITE_OK && rc != CB_ENOMEM)
        rc = db_error(R->adb, rc, "loading alarms", err);
    sqlite3_finalize(st);
    pthread_mutex_unlock(&R->alock);
    if (rc != 0) {
        free(rows);
        *n = 0;
        return rc;
    }
    *out = rows;
    return 0;
}

void rules__seed_apply(rules *R, struct rule *only, const struct seed_row *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct rule *ru = only ? only : rules__find(R, rows[i].rule, NULL);
        if (ru)
            seed_one(R, ru, rows[i].entity, rows[i].active, rows[i].raised_at, rows[i].cleared_at);
    }
}

int rules__clear_rule_alarms(rules *R, const char *rule, const char *note)
{
    sqlite3_stmt *st = NULL;
    pthread_mutex_lock(&R->alock);
    db *d = R->adb;
    int64_t now = clock_now_ms();
    int n = 0;
    if (sqlite3_prepare_v2(db_sqlite(d), "SELECT entity FROM alarm WHERE rule = ?1 AND state != 'cleared'", -1, &st,
                           NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, rule, -1, SQLITE_STATIC);
        while (sqlite3_step(st) == SQLITE_ROW) {
            char key[ENTITY_ID_MAX];
            snprintf(key, sizeof key, "%s", (const char *)sqlite3_column_text(st, 0));
            long long no = clear_active(d, rule, key, now, "auto", note, NAN);
            if (no > 0) {
                publish(R, d, no, "alarm.cleared");
                n++;
            }
        }
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&R->alock);
    return n;
}

/* --- the API --- */

static const char *const state_names[] = {"open", "acknowledged", "cleared", "active"};

static int check_choice(const char *v, const char *field, const char *const *names, size_t n, cb_error *err)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v, names[i]) == 0)
            return 0;
    return cb_error_set(err, CB_EINVALID_FIELD, field, "unknown %s '%s'", field, v);
}

/* Appends "AND column = ?N" for a filter; binds later in order. */
struct where {
    char sql[1024];
    const char *args[12];
    int n;
};

static void where_eq(struct where *w, const char *column, const char *value)
{
    if (!value || !*value)
        return;
    snprintf(w->sql + strlen(w->sql), sizeof w->sql - strlen(w->sql), " AND %s = ?%d", column, w->n + 1);
    w->args[w->n++] = value;
}

static int where_state(struct where *w, const char *state, cb_error *err)
{
    if (!state || !*state)
        return 0;
    int rc = check_choice(state, "state", state_names, 4, err);
    if (rc == 0 && strcmp(state, "active") == 0)
        strcat(w->sql, " AND state != 'cleared'");
    else if (rc == 0)
        where_eq(w, "state", state);
    return rc;
}

static void where_bind(const struct where *w, sqlite3_stmt *st)
{
    for (int i = 0; i < w->n; i++)
        sqlite3_bind_text(st, i + 1, w->args[i], -1, SQLITE_STATIC);
}

static int parse_limit(const char *s, long *out, cb_error *err)
{
    *out = LIST_DEFAULT;
    if (!s)
        return 0;
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < 1 || v > LIST_MAX)
        return cb_error_set(err, CB_EINVALID_FIELD, "limit", "limit must be 1 to %d", LIST_MAX);
    *out = v;
    return 0;
}

int alarm_list(rules *R, const struct alarm_filter *f, json_t **out, cb_error *err)
{
    struct where w = {" WHERE 1", {0}, 0};
    long limit;
    long long cursor = 0;
    int rc = where_state(&w, f->state, err);
    if (rc == 0 && f->severity && *f->severity)
        rc = check_choice(f->severity, "severity", rules__severity_names, SEV_COUNT, err);
    if (rc == 0)
        rc = parse_limit(f->limit, &limit, err);
    if (rc == 0 && f->cursor && *f->cursor && (cursor = alarm_no(f->cursor)) <= 0)
        rc = cb_error_set(err, CB_EINVALID_FIELD, "cursor", "cursor must come from next_cursor");
    if (rc != 0)
        return rc;
    where_eq(&w, "severity", f->severity);
    where_eq(&w, "district", f->district);
    where_eq(&w, "entity_type", f->type);
    where_eq(&w, "entity", f->entity);
    where_eq(&w, "rule", f->rule);
    char sql[1400];
    snprintf(sql, sizeof sql, "SELECT " ALARM_COLS " FROM alarm%s%s ORDER BY id DESC LIMIT %ld", w.sql,
             cursor ? " AND id < ?12" : "", limit);
    sqlite3_stmt *st = NULL;
    pthread_mutex_lock(&R->alock);
    rc = sqlite3_prepare_v2(db_sqlite(R->adb), sql, -1, &st, NULL);
    json_t *list = json_array();
    long long last = 0;
    if (rc == SQLITE_OK) {
        where_bind(&w, st);
        if (cursor)
            sqlite3_bind_int64(st, 12, cursor);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            last = sqlite3_column_int64(st, 0);
            json_array_append_new(list, row_json(st));
        }
        rc = rc == SQLITE_DONE ? 0 : db_error(R->adb, rc, "listing alarms", err);
    } else
        rc = db_error(R->adb, rc, "listing alarms", err);
    sqlite3_finalize(st);
    pthread_mutex_unlock(&R->alock);
    if (rc != 0) {
        json_decref(list);
        return rc;
    }
    char next[ALARM_ID_MAX];
    rules__alarm_id(last, next);
    *out = json_pack("{s:o, s:o}", "alarms", list, "next_cursor",
                     (long)json_array_size(list) == limit && last > 1 ? json_string(next) : json_null());
    return *out ? 0 : cb_error_set(err, CB_ENOMEM, NULL, "out of memory");
}

int alarm_get(rules *R, const char *id, json_t **out, cb_error *err)
{
    long long no = alarm_no(id);
    pthread_mutex_lock(&R->alock);
    *out = no > 0 ? load_alarm(R->adb, no, 1) : NULL;
    pthread_mutex_unlock(&R->alock);
    return *out ? 0 : cb_error_set(err, CB_ENOT_FOUND, "id", "no alarm '%s'", id);
}

/* Moves alarm no from one of the states in `from` to `to` as `by`. */
static int transition(rules *R, long long no, const char *from_sql, const char *to, const char *by, const char *note,
                      cb_error *err)
{
    char sql[256];
    int64_t now = clock_now_ms();
    snprintf(sql, sizeof sql, "UPDATE alarm SET state = '%s', %s_at = ?2, %s_by = ?3 WHERE id = ?1 AND state IN (%s)",
             to, to, to, from_sql);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db_sqlite(R->adb), sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, no);
        sqlite3_bind_int64(st, 2, now);
        sqlite3_bind_text(st, 3, by, -1, SQLITE_STATIC);
        rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
    }
    int changed = rc == SQLITE_OK && sqlite3_changes(db_sqlite(R->adb)) == 1;
    sqlite3_finalize(st);
    if (rc != SQLITE_OK)
        return db_error(R->adb, rc, "changing the alarm", err);
    if (!changed) {
        json_t *a = load_alarm(R->adb, no, 0);
        char id[ALARM_ID_MAX];
        rules__alarm_id(no, id);
        rc = a ? cb_error_set(err, CB_ECONFLICT, "state", "alarm %s is %s: it cannot be %s", id,
                              json_string_value(json_object_get(a, "state")), to)
               : cb_error_set(err, CB_ENOT_FOUND, "id", "no alarm '%s'", id);
        json_decref(a);
        return rc;
    }
    return add_event(R->adb, no, to, now, by, note, NAN);
}

int alarm_acknowledge(rules *R, const char *id, const char *by, const char *note, json_t **out, cb_error *err)
{
    long long no = alarm_no(id);
    if (no <= 0)
        return cb_error_set(err, CB_ENOT_FOUND, "id", "no alarm '%s'", id);
    pthread_mutex_lock(&R->alock);
    int rc = transition(R, no, "'open'", "acknowledged", by, note, err);
    if (rc == 0) {
        publish(R, R->adb, no, "alarm.acknowledged");
        *out = load_alarm(R->adb, no, 1);
    }
    pthread_mutex_unlock(&R->alock);
    return rc;
}

/* After a person clears an alarm, the rule starts afresh for its entity: a
 * condition that still holds raises a new alarm with the next reading. */
static void forget_raised(rules *R, const char *rule, const char *key, int64_t at)
{
    state_rdlock(R->st);
    pthread_mutex_lock(&R->lock);
    struct rule *ru = rules__find(R, rule, NULL);
    uint32_t k = STATE_NONE;
    if (ru && ru->kind == RULE_REGION_COUNT)
        rules__region_key(R, ru, key, &k);
    else if (ru)
        k = state_find(R->st, key);
    struct rstate *s = ru && k != STATE_NONE ? rules__state(ru, k, 0) : NULL;
    if (s && s->raised) {
        s->raised = 0;
        s->holding = 0;
        s->clear_ts = at;
    }
    pthread_mutex_unlock(&R->lock);
    state_unlock(R->st);
}

int alarm_clear(rules *R, const char *id, const char *by, const char *note, json_t **out, cb_error *err)
{
    long long no = alarm_no(id);
    if (no <= 0)
        return cb_error_set(err, CB_ENOT_FOUND, "id", "no alarm '%s'", id);
    pthread_mutex_lock(&R->alock);
    int rc = transition(R, no, "'open', 'acknowledged'", "cleared", by, note, err);
    if (rc == 0) {
        publish(R, R->adb, no, "alarm.cleared");
        *out = load_alarm(R->adb, no, 1);
    }
    pthread_mutex_unlock(&R->alock);
    if (rc == 0 && *out)
        forget_raised(R, json_string_value(json_object_get(*out, "rule")), json_string_value(json_object_get(*out, "entity")),
                      clock_now_ms());
    return rc;
}

static int count_by(db *d, const struct where *w, const char *column, json_t *into, cb_error *err)
{
    char sql[1300];
    snprintf(sql, sizeof sql, "SELECT coalesce(%s, ''), count(*) FROM alarm%s GROUP BY 1 ORDER BY 1", column, w->sql);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db_sqlite(d), sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        where_bind(w, st);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW)
            json_object_set_new(into, (const char *)sqlite3_column_text(st, 0), json_integer(sqlite3_column_int64(st, 1)));
        rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_OK ? 0 : db_error(d, rc, "counting alarms", err);
}

int alarm_stats(rules *R, const char *state, json_t **out, cb_error *err)
{
    struct where w = {" WHERE 1", {0}, 0};
    int rc = where_state(&w, state && *state ? state : "active", err);
    if (rc != 0)
        return rc;
    json_t *sev = json_object(), *type = json_object(), *dist = json_object();
    for (int i = 0; i < SEV_COUNT; i++)
        json_object_set_new(sev, rules__severity_names[i], json_integer(0));
    pthread_mutex_lock(&R->alock);
    rc = count_by(R->adb, &w, "severity", sev, err);
    if (rc == 0)
        rc = count_by(R->adb, &w, "entity_type", type, err);
    if (rc == 0)
        rc = count_by(R->adb, &w, "district", dist, err);
    pthread_mutex_unlock(&R->alock);
    json_int_t total = 0;
    const char *k;
    json_t *v;
    json_object_foreach(sev, k, v) total += json_integer_value(v);
    *out = json_pack("{s:I, s:o, s:o, s:o}", "total", total, "by_severity", sev, "by_type", type, "by_district", dist);
    if (rc != 0) {
        json_decref(*out);
        *out = NULL;
    }
    return rc;
}
