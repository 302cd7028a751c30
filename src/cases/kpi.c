/* kpi — the indicators of 考核 as aggregate queries; see kpi.h. One query
 * over `cases` counts every numerator and denominator per group, a second
 * over `case_history` counts dispatches and returns (准确派遣率 belongs to the
 * department a dispatch went to, not to where the case ended up), and the
 * indicator table below turns the counts into rates and the score. */
#include "cases/kpi.h"

#include "core/clock.h"
#include "core/log.h"

#include <assert.h>
#include <math.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KEY_MAX 64
#define OPEN_SQL "k.status NOT IN ('closed', 'evaluated', 'rejected')"

/* The counts of one group. Every indicator is a ratio of two of these. */
struct kpi_row {
    char key[KEY_MAX];
    long long reported;           /* 上报数: cases created in the window */
    long long filed;              /* 立案数 */
    long long filed_on_time;      /* 按时立案数 */
    long long dispatched;         /* cases dispatched at least once */
    long long dispatched_on_time; /* 按时派遣数 */
    long long dispatches;         /* 派遣次数 (history: dispatch actions) */
    long long returns;            /* 回退次数 (history: return actions) */
    long long accurate;           /* dispatches - returns */
    long long due;                /* 应结案数: handled, or handling deadline passed unhandled */
    long long handled;            /* 处置数 */
    long long handled_on_time;    /* 按期处置数 */
    long long closed;             /* 结案数 */
    long long closed_on_time;     /* 按期结案数 */
    long long reworked;           /* 返工数: handled cases that were reworked at least once */
    long long rated;              /* 回访数 */
    long long satisfied;          /* 满意 + 基本满意 */
    long long open, overdue;      /* now, of the window's cases */
    double handle_hours;          /* mean dispatched -> handled; NAN: none */
    double close_hours;           /* mean created -> closed; NAN: none */
    double score;                 /* NAN: no indicator defined */
};

/* One rate: num / den of the row's counts, and its weight in the score for
 * department rows and for the other groupings. An inverted rate (返工率)
 * counts as 1 - rate in the score. */
struct indicator {
    const char *name, *label;
    size_t num, den;
    double w_department, w_other;
    int inverted;
};

#define F(field) offsetof(struct kpi_row, field)
static const struct indicator indicators[] = {
    {"on_time_file_rate", "按时立案率", F(filed_on_time), F(filed), 0, 0.10, 0},
    {"on_time_dispatch_rate", "按时派遣率", F(dispatched_on_time), F(dispatched), 0, 0.10, 0},
    {"accurate_dispatch_rate", "准确派遣率", F(accurate), F(dispatches), 0, 0.10, 0},
    {"handle_rate", "处置率", F(handled), F(due), 0.15, 0, 0},
    {"on_time_handle_rate", "按期处置率", F(handled_on_time), F(due), 0.25, 0, 0},
    {"close_rate", "结案率", F(closed), F(due), 0.10, 0.15, 0},
    {"on_time_close_rate", "按期结案率", F(closed_on_time), F(due), 0.15, 0.25, 0},
    {"rework_rate", "返工率", F(reworked), F(handled), 0.15, 0.10, 1},
    {"satisfaction_rate", "满意率", F(satisfied), F(rated), 0.20, 0.20, 0},
};
#define NINDICATORS (sizeof indicators / sizeof indicators[0])

/* The counts as JSON members, in this order. */
static const struct {
    const char *name;
    size_t field;
} counts[] = {
    {"reported", F(reported)}, {"filed", F(filed)}, {"filed_on_time", F(filed_on_time)},
    {"dispatched", F(dispatched)}, {"dispatched_on_time", F(dispatched_on_time)},
    {"dispatches", F(dispatches)}, {"returns", F(returns)}, {"due", F(due)}, {"handled", F(handled)},
    {"handled_on_time", F(handled_on_time)}, {"closed", F(closed)}, {"closed_on_time", F(closed_on_time)},
    {"reworked", F(reworked)}, {"rated", F(rated)}, {"satisfied", F(satisfied)}, {"open", F(open)},
    {"overdue", F(overdue)},
};
#undef F

static long long count_of(const struct kpi_row *r, size_t field)
{
    return *(const long long *)((const char *)r + field);
}

/* ---- groupings ---- */

/* The role of whoever reported the case: citizens and sensors by channel,
 * everyone else by the role on the intake row of the history. */
#define ROLE_KEY_SQL                                                                                          \
    "CASE k.channel WHEN 'citizen' THEN 'citizen' WHEN 'sensor' THEN 'sensor' ELSE coalesce((SELECT "        \
    "h0.by_role FROM case_history h0 WHERE h0.case_id = k.id ORDER BY h0.seq LIMIT 1), '') END"

struct grouping {
    const char *by;
    const char *case_key;    /* SQL over k (cases) */
    const char *only;        /* extra condition on k, "1" if none */
    int department;          /* 1: the department weights, dispatches from the history */
};

static const struct grouping groupings[] = {
    {"department", "k.department", "k.department IS NOT NULL", 1},
    {"district", "coalesce(k.district, '')", "1", 0},
    {"role", ROLE_KEY_SQL, "1", 0},
    {"city", "'city'", "1", 0},
};

static const struct {
    const char *key, *name;
} role_names[] = {
    {"citizen", "市民"},         {"sensor", "感知设备"}, {"grid", "网格员"},
    {"hotline", "12345热线"},    {"operator", "指挥中心"}, {"dept", "专业部门"},
    {"admin", "管理员"},         {"system", "系统"},
};

/* ---- rows ---- */

struct rows {
    struct kpi_row *v;
    size_t n, cap;
};

static struct kpi_row *row_get(struct rows *rs, const char *key)
{
    for (size_t i = 0; i < rs->n; i++)
        if (strcmp(rs->v[i].key, key) == 0)
            return &rs->v[i];
    if (rs->n == rs->cap) {
        size_t cap = rs->cap ? rs->cap * 2 : 16;
        struct kpi_row *v = realloc(rs->v, cap * sizeof *v);
        if (!v)
            return NULL;
        rs->v = v;
        rs->cap = cap;
    }
    struct kpi_row *r = &rs->v[rs->n++];
    memset(r, 0, sizeof *r);
    snprintf(r->key, sizeof r->key, "%s", key);
    r->handle_hours = r->close_hours = r->score = NAN;
    return r;
}

/* The window and scope of one computation: ?1 from, ?2 to, ?3 now and ?4
 * the department (when set) in every query. */
struct scope {
    int64_t from, to, now;
    const char *dep;
};

typedef void (*fill_fn)(struct kpi_row *r, sqlite3_stmt *st);

/* Runs sql (column 0: the group key) and lets fill take each group's row. */
static int each_group(db *d, const char *sql, const struct scope *sc, fill_fn fill, struct rows *rs, cb_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db_sqlite(d), sql, -1, &st, NULL);
    if (rc != SQLITE_OK) {
        sqlite3_finalize(st);
        return db_error(d, rc, "preparing a KPI query", err);
    }
    sqlite3_bind_int64(st, 1, sc->from);
    sqlite3_bind_int64(st, 2, sc->to);
    sqlite3_bind_int64(st, 3, sc->now);
    if (sc->dep)
        sqlite3_bind_text(st, 4, sc->dep, -1, SQLITE_TRANSIENT);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *key = (const char *)sqlite3_column_text(st, 0);
        struct kpi_row *r = key ? row_get(rs, key) : NULL; /* NULL key: a history row without a department */
        if (key && !r) {
            sqlite3_finalize(st);
            return cb_error_set(err, CB_ENOMEM, NULL, "KPI rows");
        }
        if (r)
            fill(r, st);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : db_error(d, rc, "computing KPIs", err);
}

static double mean_or_nan(sqlite3_stmt *st, int col)
{
    return sqlite3_column_type(st, col) == SQLITE_NULL ? NAN : sqlite3_column_double(st, col);
}

static void fill_cases(struct kpi_row *r, sqlite3_stmt *st)
{
    long long *c[] = {&r->reported, &r->filed, &r->filed_on_time, &r->dispatched, &r->dispatched_on_time,
                      &r->due, &r->handled, &r->handled_on_time, &r->closed, &r->closed_on_time,
                      &r->reworked, &r->rated, &r->satisfied, &r->open, &r->overdue};
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++)
        *c[i] = sqlite3_column_int64(st, (int)i + 1);
    r->handle_hours = mean_or_nan(st, 16);
    r->close_hours = mean_or_nan(st, 17);
    r->dispatches = sqlite3_column_int64(st, 18);
    r->returns = sqlite3_column_int64(st, 19);
}

static void fill_dispatches(struct kpi_row *r, sqlite3_stmt *st)
{
    r->dispatches = sqlite3_column_int64(st, 1);
    r->returns = sqlite3_column_int64(st, 2);
}

/* The counts of `cases` per group. A case's dispatch_count and return_count
 * serve every grouping by the case; departments take theirs from the
 * history instead, where each dispatch and return names its department. */
static int count(db *d, const struct grouping *g, const struct scope *sc, struct rows *rs, cb_error *err)
{
    char sql[2048];
    snprintf(sql, sizeof sql,
             "SELECT %s AS g, count(*), sum(k.filed_at IS NOT NULL), sum(k.filed_at IS NOT NULL AND "
             "k.filed_on_time = 1), sum(k.dispatched_at IS NOT NULL), sum(k.dispatched_at IS NOT NULL AND "
             "k.dispatched_on_time = 1), sum(k.handled_at IS NOT NULL OR (k.step = 'handle' AND k.deadline < ?3)), "
             "sum(k.handled_at IS NOT NULL), sum(k.handled_at IS NOT NULL AND k.handled_on_time = 1), "
             "sum(k.closed_at IS NOT NULL), sum(k.closed_at IS NOT NULL AND k.closed_on_time = 1), "
             "sum(k.handled_at IS NOT NULL AND k.rework_count > 0), sum(k.rating IS NOT NULL), "
             "sum(k.rating IN ('满意', '基本满意')), sum(" OPEN_SQL "), sum(k.step IS NOT NULL AND k.deadline < ?3), "
             "avg(CASE WHEN k.handled_at IS NOT NULL AND k.dispatched_at IS NOT NULL THEN k.handled_at - "
             "k.dispatched_at END) / 3600000.0, avg(CASE WHEN k.closed_at IS NOT NULL THEN k.closed_at - "
             "k.created_at END) / 3600000.0, sum(k.dispatch_count), sum(k.return_count) "
             "FROM cases k WHERE k.created_at >= ?1 AND k.created_at < ?2 AND %s%s GROUP BY g",
             g->case_key, g->only, sc->dep ? " AND k.department = ?4" : "");
    int rc = each_group(d, sql, sc, fill_cases, rs, err);
    if (rc != 0 || !g->department)
        return rc;
    for (size_t i = 0; i < rs->n; i++)
        rs->v[i].dispatches = rs->v[i].returns = 0;
    /* h.at >= from: no step of a case happens before it was created (the index on (action, at) narrows) */
    snprintf(sql, sizeof sql,
             "SELECT h.department AS g, sum(h.action = 'dispatch'), sum(h.action = 'return') FROM case_history h "
             "JOIN cases k ON k.id = h.case_id WHERE h.action IN ('dispatch', 'return') AND h.at >= ?1 AND "
             "k.created_at >= ?1 AND k.created_at < ?2%s GROUP BY g",
             sc->dep ? " AND h.department = ?4" : "");
    return each_group(d, sql, sc, fill_dispatches, rs, err);
}

/* ---- rates, score, rank ---- */

static double round_to(double x, double unit)
{
    return floor(x / unit + 0.5) * unit;
}

static double rate(const struct kpi_row *r, const struct indicator *ind)
{
    long long den = count_of(r, ind->den);
    return den > 0 ? (double)count_of(r, ind->num) / (double)den : NAN;
}

/* 100 x the weighted mean of the defined rates (weights of the undefined
 * ones left out); NAN when none is defined. */
static double score_of(const struct kpi_row *r, int department)
{
    double sum = 0, weights = 0;
    for (size_t i = 0; i < NINDICATORS; i++) {
        const struct indicator *ind = &indicators[i];
        double w = department ? ind->w_department : ind->w_other, v = rate(r, ind);
        if (w <= 0 || isnan(v))
            continue;
        sum += w * (ind->inverted ? 1 - v : v);
        weights += w;
    }
    return weights > 0 ? round_to(100 * sum / weights, 0.1) : NAN;
}

static int by_score(const void *a, const void *b)
{
    const struct kpi_row *x = a, *y = b;
    int xs = !isnan(x->score), ys = !isnan(y->score);
    if (xs != ys)
        return ys - xs;
    if (xs && x->score != y->score)
        return x->score < y->score ? 1 : -1;
    if (x->reported != y->reported)
        return x->reported < y->reported ? 1 : -1;
    return strcmp(x->key, y->key);
}

static json_t *number_or_null(double v, double unit)
{
    return isnan(v) ? json_null() : json_real(round_to(v, unit));
}

static const char *row_name(db *d, const struct grouping *g, const char *key, char *out, size_t n)
{
    if (strcmp(g->by, "city") == 0)
        return "全市";
    if (strcmp(g->by, "role") == 0) {
        for (size_t i = 0; i < sizeof role_names / sizeof role_names[0]; i++)
            if (strcmp(role_names[i].key, key) == 0)
                return role_names[i].name;
        return key;
    }
    if (!*key)
        return "未定位";
    const char *sql = g->department ? "SELECT name FROM department WHERE code = ?"
                                    : "SELECT name FROM region WHERE code = ?";
    sqlite3_stmt *st = NULL;
    snprintf(out, n, "%s", key);
    if (sqlite3_prepare_v2(db_sqlite(d), sql, -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
            snprintf(out, n, "%s", (const char *)sqlite3_column_text(st, 0));
    }
    sqlite3_finalize(st);
    return out;
}

static json_t *row_json(db *d, const struct grouping *g, const struct kpi_row *r, int rank)
{
    char name[256];
    json_t *o = json_object();
    json_object_set_new(o, "key", json_string(r->key));
    json_object_set_new(o, "name", json_string(row_name(d, g, r->key, name, sizeof name)));
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++)
        json_object_set_new(o, counts[i].name, json_integer(count_of(r, counts[i].field)));
    for (size_t i = 0; i < NINDICATORS; i++)
        json_object_set_new(o, indicators[i].name, number_or_null(rate(r, &indicators[i]), 0.0001));
    json_object_set_new(o, "mean_handle_hours", number_or_null(r->handle_hours, 0.01));
    json_object_set_new(o, "mean_close_hours", number_or_null(r->close_hours, 0.01));
    json_object_set_new(o, "score", number_or_null(r->score, 0.1));
    json_object_set_new(o, "rank", rank > 0 ? json_integer(rank) : json_null());
    return o;
}

static int window(const struct kpi_query *q, int64_t *from, int64_t *to, cb_error *err)
{
    *to = q->now;
    if (q->to && clock_parse_time_field(q->to, "to", to, err) != 0)
        return err->code;
    *from = *to - KPI_DEFAULT_WINDOW_MS;
    if (q->from && clock_parse_time_field(q->from, "from", from, err) != 0)
        return err->code;
    if (*from >= *to)
        return cb_error_set(err, CB_EINVALID_FIELD, "from", "from must be before to");
    return 0;
}

static const struct grouping *grouping_find(const char *by)
{
    for (size_t i = 0; i < sizeof groupings / sizeof groupings[0]; i++)
        if (strcmp(groupings[i].by, by ? by : "department") == 0)
            return &groupings[i];
    return NULL;
}

int kpi_compute(db *d, const struct kpi_query *q, json_t **out, cb_error *err)
{
    const struct grouping *g = grouping_find(q->by);
    if (!g)
        return cb_error_set(err, CB_EINVALID_FIELD, "by", "by must be department, district, role or city");
    int64_t from, to;
    int rc = window(q, &from, &to, err);
    if (rc != 0)
        return rc;
    /* q->department "" (a dept key without a department): nothing */
    struct scope sc = {from, to, q->now, q->department};
    struct rows rs = {NULL, 0, 0};
    rc = count(d, g, &sc, &rs, err);
    if (rc != 0) {
        free(rs.v);
        return rc;
    }
    for (size_t i = 0; i < rs.n; i++) {
        struct kpi_row *r = &rs.v[i];
        r->accurate = r->dispatches > r->returns ? r->dispatches - r->returns : 0;
        r->score = score_of(r, g->department);
    }
    if (rs.n > 1)
        qsort(rs.v, rs.n, sizeof rs.v[0], by_score);
    json_t *list = json_array();
    for (size_t i = 0; i < rs.n; i++)
        json_array_append_new(list, row_json(d, g, &rs.v[i], isnan(rs.v[i].score) ? 0 : (int)i + 1));
    free(rs.v);
    char f[CLOCK_RFC3339_MAX], t[CLOCK_RFC3339_MAX];
    *out = json_pack("{s:s, s:s, s:s, s:o}", "by", g->by, "from", clock_format_rfc3339(from, f), "to",
                     clock_format_rfc3339(to, t), "rows", list);
    return *out ? 0 : cb_error_set(err, CB_ENOMEM, NULL, "KPI rows");
}

/* The open and the overdue cases now, in one pass over the open ones. */
static int count_open(db *d, int64_t now, long long *open, long long *overdue, cb_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db_sqlite(d),
                                "SELECT count(*), coalesce(sum(k.step IS NOT NULL AND k.deadline < ?1), 0) "
                                "FROM cases k WHERE " OPEN_SQL,
                                -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, now);
        rc = sqlite3_step(st);
    }
    if (rc == SQLITE_ROW) {
        *open = sqlite3_column_int64(st, 0);
        *overdue = sqlite3_column_int64(st, 1);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : db_error(d, rc, "counting open cases", err);
}

int kpi_summary(db *d, int64_t now, json_t **out, cb_error *err)
{
    struct kpi_query q = {.by = "city", .now = now};
    json_t *city;
    long long open = 0, overdue = 0;
    int rc = count_open(d, now, &open, &overdue, err);
    if (rc == 0)
        rc = kpi_compute(d, &q, &city, err);
    if (rc != 0)
        return rc;
    /* no case in the window: no row, and the rates are undefined (null) */
    json_t *row = json_array_get(json_object_get(city, "rows"), 0), *null = json_null();
    *out = json_pack("{s:I, s:I, s:O, s:O}", "open_cases", open, "overdue_cases", overdue, "on_time_close_rate",
                     row ? json_object_get(row, "on_time_close_rate") : null, "satisfaction_rate",
                     row ? json_object_get(row, "satisfaction_rate") : null);
    json_decref(city);
    return *out ? 0 : cb_error_set(err, CB_ENOMEM, NULL, "KPI summary");
}

/* ---- the worker ---- */

/* A submitted query with its own copies of the strings. */
struct kpi_job {
    struct kpi_job *next;
    char *by, *from, *to, *department;
    int64_t now;
    kpi_done_fn done;
    void *ctx;
};

struct kpi_worker {
    db *d;              /* owned; the worker thread's connection */
    events *ev;         /* borrowed; NULL: no tick */
    int tick_ms;        /* 0: no tick */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t wake;
    struct kpi_job *head, *tail; /* FIFO; guarded by mu */
    int queued;         /* guarded by mu */
    int stopping;       /* guarded by mu */
};

static void job_free(struct kpi_job *j)
{
    free(j->by);
    free(j->from);
    free(j->to);
    free(j->department);
    free(j);
}

static void run_job(kpi_worker *w, struct kpi_job *j)
{
    struct kpi_query q = {j->by, j->from, j->to, j->department, j->now};
    json_t *out = NULL;
    cb_error err;
    int rc = kpi_compute(w->d, &q, &out, &err);
    j->done(j->ctx, rc, rc == 0 ? out : NULL, &err);
}

static void tick(kpi_worker *w)
{
    json_t *data;
    cb_error err;
    if (kpi_summary(w->d, clock_now_ms(), &data, &err) != 0) {
        log_event(LOG_WARN, "kpi", "msg=\"no kpi.tick\" error=%s detail=\"%s\"", cb_err_name(err.code), err.message);
        return;
    }
    struct event_scope scope = {NULL, NULL};
    events_publish(w->ev, "kpi", "kpi.tick", &scope, data);
}

/* Waits on the condition until the monotonic time `until` (ms; < 0: no limit). */
static void wait_until(kpi_worker *w, int64_t until)
{
    if (until < 0) {
        pthread_cond_wait(&w->wake, &w->mu);
        return;
    }
    int64_t left = until - clock_mono_ms();
    if (left <= 0)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t ns = ts.tv_nsec + (left % 1000) * 1000000LL;
    ts.tv_sec += (time_t)(left / 1000 + ns / 1000000000LL);
    ts.tv_nsec = (long)(ns % 1000000000LL);
    pthread_cond_timedwait(&w->wake, &w->mu, &ts);
}

static void *worker_main(void *arg)
{
    kpi_worker *w = arg;
    int ticking = w->ev && w->tick_ms > 0;
    int64_t next_tick = clock_mono_ms() + w->tick_ms;
    pthread_mutex_lock(&w->mu);
    while (!w->stopping) {
        struct kpi_job *j = w->head;
        if (j) {
            w->head = j->next;
            if (!w->head)
                w->tail = NULL;
            w->queued--;
            pthread_mutex_unlock(&w->mu);
            run_job(w, j);
            job_free(j);
            pthread_mutex_lock(&w->mu);
        } else if (ticking && clock_mono_ms() >= next_tick) {
            pthread_mutex_unlock(&w->mu);
            tick(w);
            next_tick += w->tick_ms;
            if (next_tick < clock_mono_ms()) /* a long stall: no burst of ticks */
                next_tick = clock_mono_ms() + w->tick_ms;
            pthread_mutex_lock(&w->mu);
        } else {
            wait_until(w, ticking ? next_tick : -1);
        }
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

int kpi_worker_start(const char *data_dir, events *ev, int tick_ms, kpi_worker **out, cb_error *err)
{
    assert(tick_ms >= 0);
    kpi_worker *w = calloc(1, sizeof *w);
    if (!w)
        return cb_error_set(err, CB_ENOMEM, NULL, "kpi worker");
    w->ev = ev;
    w->tick_ms = tick_ms;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->wake, NULL);
    int rc = db_open(data_dir, &w->d, err);
    if (rc == 0 && pthread_create(&w->thread, NULL, worker_main, w) != 0)
        rc = cb_error_set(err, CB_EINTERNAL, NULL, "cannot start the KPI thread");
    if (rc != 0) {
        db_close(w->d);
        pthread_cond_destroy(&w->wake);
        pthread_mutex_destroy(&w->mu);
        free(w);
        return rc;
    }
    *out = w;
    return 0;
}

/* strdup of an optional string: 0, or -1 when out of memory. */
static int copy(const char *s, char **out)
{
    *out = s ? strdup(s) : NULL;
    return s && !*out ? -1 : 0;
}

int kpi_worker_submit(kpi_worker *w, const struct kpi_query *q, kpi_done_fn done, void *ctx, cb_error *err)
{
    struct kpi_job *j = calloc(1, sizeof *j);
    if (!j || copy(q->by, &j->by) || copy(q->from, &j->from) || copy(q->to, &j->to) ||
        copy(q->department, &j->department)) {
        if (j)
            job_free(j);
        return cb_error_set(err, CB_ENOMEM, NULL, "kpi query");
    }
    j->now = q->now;
    j->done = done;
    j->ctx = ctx;
    pthread_mutex_lock(&w->mu);
    int full = w->queued >= KPI_QUEUE_MAX || w->stopping;
    if (!full) {
        if (w->tail)
            w->tail->next = j;
        else
            w->head = j;
        w->tail = j;
        w->queued++;
        pthread_cond_signal(&w->wake);
    }
    pthread_mutex_unlock(&w->mu);
    if (full) {
        job_free(j);
        return cb_error_set(err, CB_EUNAVAILABLE, NULL, "%d KPI queries are waiting; retry shortly", KPI_QUEUE_MAX);
    }
    return 0;
}

void kpi_worker_stop(kpi_worker *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    w->stopping = 1;
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    while (w->head) {
        struct kpi_job *j = w->head;
        w->head = j->next;
        job_free(j);
    }
    db_close(w->d);
    pthread_cond_destroy(&w->wake);
    pthread_mutex_destroy(&w->mu);
    free(w);
}
