/* test_kpi — the 考核 indicators against a fixture computed by hand. Cases
 * are inserted straight into a fresh database (migrations applied by
 * db_open) with their step times and on-time flags, as the workflow would
 * have left them; kpi_compute must give exactly the numbers below.
 *
 * Times in hours after T0 (2026-01-01T00:00Z); now = 100 h; the window is
 * [0 h, 100 h) unless a test says otherwise. dA 甲部门, dB 乙部门.
 *
 * case district  reporter dept  created filed(on time) dispatched(on time) handled(on time) closed(on time) rework rating  status      step/deadline
 * c1   410802    grid     dA    1       1 (1)          2 (1)               4 (1)            5 (1)           0      满意    evaluated   -
 * c2   410802    hotline  dA    10      10 (1)         11 (1)              20 (0)           21 (0)          0      基本满意 evaluated   -
 * c3   410802    hotline  dA    30      31 (0)         32 (0)              -                -               0      -       in_progress handle/40 (overdue)
 * c4   410803    grid     dB    50      50 (1)         51->dA, returned 52, 53->dB (1)  70 (1)  71 (1)  1      -       closed      -
 * c5   410803    citizen  dB    80      81 (1)         81 (1)              85 (1)           - (不满意 reopened) 1 不满意  rework      handle/200
 * c6   410803    hotline  -     90      -              -                   -                -               0      -       reported    file/91 (overdue)
 * c7   410802    grid     dA    -1000   (outside every window: closed, on time)
 * c8   410802    grid     -     95      -              -                   -                -               0      -       rejected    -
 *
 * by=department (only dispatched cases; dispatches/returns from the history by the department acted on):
 *   key  rep fil fil_ot dsp dsp_ot dispatches returns due hdl hdl_ot cls cls_ot rework rated sat open overdue
 *   dA   3   3   2      3   2      4 (c1,c2,c3,c4) 1 (c4) 3 2  1      2   1      0      2     2   1    1
 *   dB   2   2   2      2   2      2 (c4,c5)  0       2   2   2      1   1      2      1     0   1    0
 *   dA: 处置率 2/3, 按期处置率 1/3, 结案率 2/3, 按期结案率 1/3, 返工率 0, 满意率 1, 准确派遣率 3/4,
 *       score = .15*2/3 + .25*1/3 + .10*2/3 + .15*1/3 + .15*(1-0) + .20*1 = .65 -> 65.0, rank 1
 *       mean handling (2 + 9)/2 = 5.5 h, mean close (4 + 11)/2 = 7.5 h
 *   dB: 1, 1, 1/2, 1/2, 返工率 2/2 = 1, 满意率 0/1 = 0, 准确派遣率 1;
 *       score = .15 + .25 + .05 + .075 + 0 + 0 = .525 -> 52.5, rank 2; mean handling (17 + 4)/2 = 10.5 h
 * by=district:
 *   410802 (c1 c2 c3 c8): rep 4 fil 3 fil_ot 2 dsp 3 dsp_ot 2 dispatches 3 returns 0 due 3 hdl 2 hdl_ot 1
 *          cls 2 cls_ot 1 rework 0 rated 2 sat 2 open 1 overdue 1
 *          score = .1*2/3 + .1*2/3 + .1*1 + .15*2/3 + .25*1/3 + .1*(1-0) + .2*1 = .716667 -> 71.7, rank 1
 *   410803 (c4 c5 c6): rep 3 fil 2 fil_ot 2 dsp 2 dsp_ot 2 dispatches 3 returns 1 due 2 hdl 2 hdl_ot 2
 *          cls 1 cls_ot 1 rework 2 rated 1 sat 0 open 2 overdue 1
 *          score = .1 + .1 + .1*2/3 + .15*.5 + .25*.5 + .1*(1-1) + .2*0 = .466667 -> 46.7, rank 2
 * by=role: grid (c1 c4 c8) 91.7; hotline (c2 c3 c6) 57.5; citizen (c5) 30.0 — see test_by_role.
 * summary: open c3 c5 c6 = 3, overdue c3 c6 = 2, 按期结案率 (c1 c4)/5 due = 0.4, 满意率 2/3. */
#include "cases/kpi.h"
#include "core/log.h"
#include "test.h"

#include <math.h>
#include <pthread.h>
#include <time.h>

#define T0 1767225600000LL /* 2026-01-01T00:00:00Z */
#define H 3600000LL
#define NONE -99999.0

struct fx {
    const char *id, *status, *channel, *district, *dept, *rating, *step;
    double created, filed, dispatched, handled, closed, deadline; /* hours; NONE: NULL */
    int filed_ot, dispatched_ot, handled_ot, closed_ot, rework;
    int dispatch_count, return_count; /* as the history below has them */
};

static void exec(db *d, const char *sql)
{
    cb_error err;
    int rc = db_exec(d, sql, &err);
    if (rc != 0)
        fprintf(stderr, "  sql failed: %s: %s\n", sql, err.message);
    CHECK_INT(rc, 0);
}

static void time_sql(char *out, size_t n, double h)
{
    if (h == NONE)
        snprintf(out, n, "NULL");
    else
        snprintf(out, n, "%lld", T0 + (long long)(h * H));
}

static void flag_sql(char *out, size_t n, double when, int flag)
{
    if (when == NONE)
        snprintf(out, n, "NULL");
    else
        snprintf(out, n, "%d", flag);
}

static void text_sql(char *out, size_t n, const char *s)
{
    if (s)
        snprintf(out, n, "'%s'", s);
    else
        snprintf(out, n, "NULL");
}

static void add_case(db *d, const struct fx *c)
{
    char created[32], filed[32], dispatched[32], handled[32], closed[32], deadline[32];
    char fo[8], dso[8], ho[8], co[8], district[32], dept[32], rating[32], step[32], sql[1536];
    time_sql(created, sizeof created, c->created);
    time_sql(filed, sizeof filed, c->filed);
    time_sql(dispatched, sizeof dispatched, c->dispatched);
    time_sql(handled, sizeof handled, c->handled);
    time_sql(closed, sizeof closed, c->closed);
    time_sql(deadline, sizeof deadline, c->deadline);
    flag_sql(fo, sizeof fo, c->filed, c->filed_ot);
    flag_sql(dso, sizeof dso, c->dispatched, c->dispatched_ot);
    flag_sql(ho, sizeof ho, c->handled, c->handled_ot);
    flag_sql(co, sizeof co, c->closed, c->closed_ot);
    text_sql(district, sizeof district, c->district);
    text_sql(dept, sizeof dept, c->dept);
    text_sql(rating, sizeof rating, c->rating);
    text_sql(step, sizeof step, c->step);
    snprintf(sql, sizeof sql,
             "INSERT INTO cases (id, status, category, channel, priority, district, department, reported_by, "
             "created_at, updated_at, filed_at, filed_on_time, dispatched_at, dispatched_on_time, handled_at, "
             "handled_on_time, closed_at, closed_on_time, rework_count, rating, step, deadline, handle_deadline, "
             "dispatch_count, return_count) "
             "VALUES ('%s', '%s', '01001', '%s', 'normal', %s, %s, 'k1', %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, "
             "%d, %s, %s, %s, %s, %d, %d)",
             c->id, c->status, c->channel, district, dept, created, created, filed, fo, dispatched, dso, handled, ho,
             closed, co, c->rework, rating, step, deadline, deadline, c->dispatch_count, c->return_count);
    exec(d, sql);
}

/* One history row: the intake (action report) or a dispatch/return. */
static void add_history(db *d, const char *id, const char *action, const char *role, const char *dept)
{
    char sql[512], dep[32];
    text_sql(dep, sizeof dep, dept);
    snprintf(sql, sizeof sql,
             "INSERT INTO case_history (case_id, from_status, to_status, action, by_id, by_role, at, department) "
             "VALUES ('%s', %s, 'x', '%s', 'k1', '%s', %lld, %s)",
             id, strcmp(action, "report") == 0 ? "NULL" : "'filed'", action, role, T0, dep);
    exec(d, sql);
}

static const struct fx fixture[] = {
    {"c1", "evaluated", "grid", "410802", "dA", "满意", NULL, 1, 1, 2, 4, 5, NONE, 1, 1, 1, 1, 0, 1, 0},
    {"c2", "evaluated", "hotline", "410802", "dA", "基本满意", NULL, 10, 10, 11, 20, 21, NONE, 1, 1, 0, 0, 0, 1, 0},
    {"c3", "in_progress", "hotline", "410802", "dA", NULL, "handle", 30, 31, 32, NONE, NONE, 40, 0, 0, 0, 0, 0, 1, 0},
    {"c4", "closed", "grid", "410803", "dB", NULL, NULL, 50, 50, 53, 70, 71, NONE, 1, 1, 1, 1, 1, 2, 1},
    {"c5", "rework", "citizen", "410803", "dB", "不满意", "handle", 80, 81, 81, 85, NONE, 200, 1, 1, 1, 0, 1, 1, 0},
    {"c6", "reported", "hotline", "410803", NULL, NULL, "file", 90, NONE, NONE, NONE, NONE, 91, 0, 0, 0, 0, 0, 0, 0},
    {"c7", "closed", "grid", "410802", "dA", NULL, NULL, -1000, -1000, -999, -998, -997, NONE, 1, 1, 1, 1, 0, 1, 0},
    {"c8", "rejected", "grid", "410802", NULL, NULL, NULL, 95, NONE, NONE, NONE, NONE, NONE, 0, 0, 0, 0, 0, 0, 0},
};

struct env {
    char dir[32];
    db *d;
};

static void env_open(struct env *e)
{
    cb_error err;
    log_set_level(LOG_ERROR);
    test_make_dir(e->dir);
    CHECK_INT(db_open(e->dir, &e->d, &err), 0);
    exec(e->d, "INSERT INTO department (code, name) VALUES ('dA', '甲部门'), ('dB', '乙部门')");
    exec(e->d, "INSERT INTO region (code, name, level, wkb, imported_at) VALUES ('410802', '解放区', 'district', "
               "x'00', 0)");
    for (size_t i = 0; i < sizeof fixture / sizeof fixture[0]; i++) {
        add_case(e->d, &fixture[i]);
        add_history(e->d, fixture[i].id, "report", strcmp(fixture[i].channel, "citizen") == 0 ? "hotline"
                                                                                               : fixture[i].channel,
                    NULL);
    }
    add_history(e->d, "c1", "dispatch", "system", "dA");
    add_history(e->d, "c2", "dispatch", "operator", "dA");
    add_history(e->d, "c3", "dispatch", "operator", "dA");
    add_history(e->d, "c4", "dispatch", "system", "dA");
    add_history(e->d, "c4", "return", "dept", "dA");
    add_history(e->d, "c4", "dispatch", "operator", "dB");
    add_history(e->d, "c5", "dispatch", "system", "dB");
    add_history(e->d, "c7", "dispatch", "system", "dA");
}

static void env_close(struct env *e)
{
    db_close(e->d);
    test_remove_dir(e->dir);
}

static char from_text[32], to_text[32];

static json_t *compute(struct env *e, const char *by, const char *department)
{
    snprintf(from_text, sizeof from_text, "%lld", T0);
    snprintf(to_text, sizeof to_text, "%lld", T0 + 100 * H);
    struct kpi_query q = {.by = by, .from = from_text, .to = to_text, .department = department, .now = T0 + 100 * H};
    json_t *out = NULL;
    cb_error err;
    int rc = kpi_compute(e->d, &q, &out, &err);
    if (rc != 0)
        fprintf(stderr, "  kpi_compute: %s\n", err.message);
    CHECK_INT(rc, 0);
    return out;
}

static json_t *row(json_t *out, const char *key)
{
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(out, "rows"), i, r)
        if (strcmp(json_string_value(json_object_get(r, "key")), key) == 0)
            return r;
    fprintf(stderr, "  no row %s\n", key);
    CHECK(0);
    return NULL;
}

static long long num(json_t *r, const char *name)
{
    return json_integer_value(json_object_get(r, name));
}

/* A rate (rounded to 4 decimals by kpi) or -1 for null. */
static void check_rate(json_t *r, const char *name, double expected, int line)
{
    json_t *v = json_object_get(r, name);
    int ok = expected < 0 ? json_is_null(v) : json_is_number(v) && fabs(json_number_value(v) - expected) < 0.00006;
    if (!ok) {
        fprintf(stderr, "  line %d: %s = %g, expected %g\n", line, name, json_is_number(v) ? json_number_value(v) : -1,
                expected);
        test_failed_checks_++;
    }
}
#define RATE(r, name, expected) check_rate(r, name, expected, __LINE__)

/* The counts in the order of the fixture's table. */
static void check_counts(json_t *r, const long long *want)
{
    static const char *const names[] = {"reported", "filed", "filed_on_time", "dispatched", "dispatched_on_time",
                                        "dispatches", "returns", "due", "handled", "handled_on_time", "closed",
                                        "closed_on_time", "reworked", "rated", "satisfied", "open", "overdue"};
    for (size_t i = 0; r && i < sizeof names / sizeof names[0]; i++) {
        if (num(r, names[i]) != want[i]) {
            fprintf(stderr, "  %s.%s = %lld, expected %lld\n", json_string_value(json_object_get(r, "key")), names[i],
                    num(r, names[i]), want[i]);
            test_failed_checks_++;
        }
    }
}

/* compute, and the number of rows it must give. */
static json_t *grouped(struct env *e, const char *by, const char *department, size_t rows)
{
    json_t *out = compute(e, by, department);
    CHECK_INT(json_array_size(json_object_get(out, "rows")), rows);
    return out;
}

/* The row of key in out, checked: the counts of the fixture's table, its
 * name (NULL: not checked), its score and its rank. */
static json_t *check_row(json_t *out, const char *key, const long long *counts, const char *name, double score,
                         long long rank, int line)
{
    json_t *r = row(out, key);
    check_counts(r, counts);
    if (name && (!r || strcmp(json_string_value(json_object_get(r, "name")), name) != 0)) {
        fprintf(stderr, "  line %d: %s.name, expected %s\n", line, key, name);
        test_failed_checks_++;
    }
    check_rate(r, "score", score, line);
    if (num(r, "rank") != rank) {
        fprintf(stderr, "  line %d: %s.rank = %lld, expected %lld\n", line, key, num(r, "rank"), rank);
        test_failed_checks_++;
    }
    return r;
}
#define ROW(out, key, counts, name, score, rank) check_row(out, key, counts, name, score, rank, __LINE__)

TEST(test_by_department)
{
    struct env e;
    env_open(&e);
    json_t *out = grouped(&e, "department", NULL, 2);
    CHECK_STR(json_string_value(json_object_get(out, "by")), "department");
    static const long long wa[] = {3, 3, 2, 3, 2, 4, 1, 3, 2, 1, 2, 1, 0, 2, 2, 1, 1};
    static const long long wb[] = {2, 2, 2, 2, 2, 2, 0, 2, 2, 2, 1, 1, 2, 1, 0, 1, 0};
    json_t *a = ROW(out, "dA", wa, "甲部门", 65.0, 1), *b = ROW(out, "dB", wb, NULL, 52.5, 2);
    RATE(a, "on_time_file_rate", 2.0 / 3);
    RATE(a, "on_time_dispatch_rate", 2.0 / 3);
    RATE(a, "accurate_dispatch_rate", 0.75);
    RATE(a, "handle_rate", 2.0 / 3);
    RATE(a, "on_time_handle_rate", 1.0 / 3);
    RATE(a, "close_rate", 2.0 / 3);
    RATE(a, "on_time_close_rate", 1.0 / 3);
    RATE(a, "rework_rate", 0);
    RATE(a, "satisfaction_rate", 1);
    RATE(a, "mean_handle_hours", 5.5);
    RATE(a, "mean_close_hours", 7.5);
    RATE(b, "accurate_dispatch_rate", 1);
    RATE(b, "handle_rate", 1);
    RATE(b, "on_time_handle_rate", 1);
    RATE(b, "close_rate", 0.5);
    RATE(b, "on_time_close_rate", 0.5);
    RATE(b, "rework_rate", 1);
    RATE(b, "satisfaction_rate", 0);
    RATE(b, "mean_handle_hours", 10.5);
    RATE(b, "mean_close_hours", 21);
    /* ranked: the first row is the best */
    CHECK_STR(json_string_value(json_object_get(json_array_get(json_object_get(out, "rows"), 0), "key")), "dA");
    json_decref(out);
    env_close(&e);
}

TEST(test_by_district)
{
    struct env e;
    env_open(&e);
    json_t *out = grouped(&e, "district", NULL, 2);
    static const long long wx[] = {4, 3, 2, 3, 2, 3, 0, 3, 2, 1, 2, 1, 0, 2, 2, 1, 1};
    static const long long wy[] = {3, 2, 2, 2, 2, 3, 1, 2, 2, 2, 1, 1, 2, 1, 0, 2, 1};
    json_t *x = ROW(out, "410802", wx, "解放区", 71.7, 1);
    json_t *y = ROW(out, "410803", wy, "410803", 46.7, 2); /* no region row: the name is the code */
    RATE(x, "on_time_file_rate", 2.0 / 3);
    RATE(x, "accurate_dispatch_rate", 1);
    RATE(x, "close_rate", 2.0 / 3);
    RATE(x, "on_time_close_rate", 1.0 / 3);
    RATE(x, "satisfaction_rate", 1);
    RATE(y, "accurate_dispatch_rate", 2.0 / 3);
    RATE(y, "close_rate", 0.5);
    RATE(y, "rework_rate", 1);
    RATE(y, "satisfaction_rate", 0);
    json_decref(out);
    env_close(&e);
}

/* grid (c1 c4 c8): rep 3 fil 2 fil_ot 2 dsp 2 dsp_ot 2 dispatches 3 returns 1 due 2 hdl 2 hdl_ot 2 cls 2 cls_ot 2
 *   rework 1 rated 1 sat 1 open 0 overdue 0; score .1+.1+.1*2/3+.15+.25+.1*.5+.2 = .916667 -> 91.7
 * hotline (c2 c3 c6): 3 2 1 2 1 2 0 2 1 0 1 0 0 1 1 2 2; score .05+.05+.1+.075+0+.1+.2 = .575 -> 57.5
 * citizen (c5, by channel): 1 1 1 1 1 1 0 1 1 1 0 0 1 1 0 1 0; score .1+.1+.1 = .3 -> 30.0 */
TEST(test_by_role)
{
    struct env e;
    env_open(&e);
    json_t *out = grouped(&e, "role", NULL, 3);
    static const long long wg[] = {3, 2, 2, 2, 2, 3, 1, 2, 2, 2, 2, 2, 1, 1, 1, 0, 0};
    static const long long wh[] = {3, 2, 1, 2, 1, 2, 0, 2, 1, 0, 1, 0, 0, 1, 1, 2, 2};
    static const long long wc[] = {1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 0, 0, 1, 1, 0, 1, 0};
    ROW(out, "grid", wg, "网格员", 91.7, 1);
    ROW(out, "hotline", wh, NULL, 57.5, 2);
    ROW(out, "citizen", wc, "市民", 30.0, 3);
    json_decref(out);
    env_close(&e);
}

/* A dept principal: its own department's cases only. */
TEST(test_department_scope)
{
    struct env e;
    env_open(&e);
    json_t *out = grouped(&e, "department", "dA", 1);
    static const long long wa[] = {3, 3, 2, 3, 2, 4, 1, 3, 2, 1, 2, 1, 0, 2, 2, 1, 1};
    check_counts(row(out, "dA"), wa);
    json_decref(out);
    /* other groupings over dA's cases: c1 c2 c3, all in 410802; dispatches of those cases only */
    out = grouped(&e, "district", "dA", 1);
    static const long long wx[] = {3, 3, 2, 3, 2, 3, 0, 3, 2, 1, 2, 1, 0, 2, 2, 1, 1};
    check_counts(row(out, "410802"), wx);
    json_decref(out);
    /* a dept key without a department sees nothing */
    out = grouped(&e, "department", "", 0);
    json_decref(out);
    env_close(&e);
}

TEST(test_window_and_errors)
{
    struct env e;
    env_open(&e);
    /* the default window is the 30 days up to now: the same cases as [0 h, 100 h) plus none (c7 is 1100 h back) */
    struct kpi_query q = {.by = "city", .now = T0 + 100 * H};
    json_t *out = NULL;
    cb_error err;
    CHECK_INT(kpi_compute(e.d, &q, &out, &err), 0);
    json_t *city = row(out, "city");
    CHECK_INT(num(city, "reported"), 7);
    CHECK_INT(num(city, "due"), 5);
    CHECK_STR(json_string_value(json_object_get(city, "name")), "全市");
    json_decref(out);
    /* a window around c7 alone */
    q.from = "2025-11-01T00:00:00Z";
    q.to = "2025-12-01T00:00:00Z";
    CHECK_INT(kpi_compute(e.d, &q, &out, &err), 0);
    CHECK_INT(num(row(out, "city"), "closed_on_time"), 1);
    RATE(row(out, "city"), "satisfaction_rate", -1); /* nobody rated: null */
    json_decref(out);
    struct kpi_query bad = {.by = "mayor", .now = T0};
    CHECK_INT(kpi_compute(e.d, &bad, &out, &err), CB_EINVALID_FIELD);
    CHECK_STR(err.field, "by");
    struct kpi_query inverted = {.from = "2026-02-01T00:00:00Z", .to = "2026-01-01T00:00:00Z", .now = T0};
    CHECK_INT(kpi_compute(e.d, &inverted, &out, &err), CB_EINVALID_FIELD);
    struct kpi_query garbage = {.from = "yesterday", .now = T0};
    CHECK_INT(kpi_compute(e.d, &garbage, &out, &err), CB_EINVALID_FIELD);
    CHECK_STR(err.field, "from");
    env_close(&e);
}

TEST(test_summary)
{
    struct env e;
    env_open(&e);
    json_t *s = NULL;
    cb_error err;
    CHECK_INT(kpi_summary(e.d, T0 + 100 * H, &s, &err), 0);
    CHECK_INT(json_integer_value(json_object_get(s, "open_cases")), 3);
    CHECK_INT(json_integer_value(json_object_get(s, "overdue_cases")), 2);
    RATE(s, "on_time_close_rate", 0.4);
    RATE(s, "satisfaction_rate", 2.0 / 3);
    json_decref(s);
    /* long before every case: nothing overdue yet, no case in the window, the rates null */
    CHECK_INT(kpi_summary(e.d, T0 - 2000 * H, &s, &err), 0);
    CHECK_INT(json_integer_value(json_object_get(s, "open_cases")), 3);
    CHECK_INT(json_integer_value(json_object_get(s, "overdue_cases")), 0);
    RATE(s, "on_time_close_rate", -1);
    RATE(s, "satisfaction_rate", -1);
    json_decref(s);
    env_close(&e);
}

static void wake_nop(void *ctx)
{
    (void)ctx;
}

struct answer {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int done, rc;
    json_t *out;
    cb_error err;
};

static void on_answer(void *ctx, int rc, json_t *out, const cb_error *err)
{
    struct answer *a = ctx;
    pthread_mutex_lock(&a->mu);
    a->rc = rc;
    a->out = out;
    if (err)
        a->err = *err;
    a->done = 1;
    pthread_cond_signal(&a->cond);
    pthread_mutex_unlock(&a->mu);
}

static void wait_answer(struct answer *a)
{
    pthread_mutex_lock(&a->mu);
    while (!a->done)
        pthread_cond_wait(&a->cond, &a->mu);
    pthread_mutex_unlock(&a->mu);
}

/* The worker answers queries on its own thread and publishes kpi.tick with
 * the summary (open cases: c3 c5 c6). */
TEST(test_worker)
{
    struct env e;
    env_open(&e);
    struct cb_config cfg;
    config_defaults(&cfg);
    snprintf(cfg.data_dir, sizeof cfg.data_dir, "%s", e.dir);
    events *ev = NULL;
    event_sub *sub = NULL;
    kpi_worker *w = NULL;
    cb_error err;
    struct event_filter f = {.kinds = 1u << EVENT_KPI};
    CHECK_INT(events_open(&cfg, &ev, &err), 0);
    CHECK_INT(events_subscribe(ev, &f, 0, 0, wake_nop, NULL, &sub, &err), 0);
    CHECK_INT(kpi_worker_start(e.dir, ev, 20, &w, &err), 0);
    char from[32], to[32], by[16] = "department";
    snprintf(from, sizeof from, "%lld", T0);
    snprintf(to, sizeof to, "%lld", T0 + 100 * H);
    struct kpi_query q = {.by = by, .from = from, .to = to, .now = T0 + 100 * H};
    struct answer ok = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, NULL, {0}};
    struct answer bad = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, NULL, {0}};
    CHECK_INT(kpi_worker_submit(w, &q, on_answer, &ok, &err), 0);
    strcpy(by, "mayor"); /* the worker has its own copy of the first query */
    CHECK_INT(kpi_worker_submit(w, &q, on_answer, &bad, &err), 0);
    wait_answer(&ok);
    wait_answer(&bad);
    CHECK_INT(ok.rc, 0);
    RATE(row(ok.out, "dA"), "score", 65.0);
    CHECK_INT(bad.rc, CB_EINVALID_FIELD);
    CHECK(bad.out == NULL);
    json_decref(ok.out);
    struct timespec pause = {0, 150 * 1000000L};
    nanosleep(&pause, NULL);
    kpi_worker_stop(w);
    buf out = BUF_INIT;
    CHECK(events_sse_read(ev, sub, &out, 1 << 16) >= 1);
    CHECK(out.data && strstr(out.data, "event: kpi.tick"));
    CHECK(out.data && strstr(out.data, "\"open_cases\":3"));
    buf_free(&out);
    events_unsubscribe(ev, sub);
    events_close(ev);
    env_close(&e);
}

/* The first answer holds the worker until the gate opens. */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int entered, open;
} gate = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};

static void on_gate(void *ctx, int rc, json_t *out, const cb_error *err)
{
    (void)ctx, (void)rc, (void)err;
    json_decref(out);
    pthread_mutex_lock(&gate.mu);
    gate.entered = 1;
    pthread_cond_broadcast(&gate.cond);
    while (!gate.open)
        pthread_cond_wait(&gate.cond, &gate.mu);
    pthread_mutex_unlock(&gate.mu);
}

static void on_count(void *ctx, int rc, json_t *out, const cb_error *err)
{
    (void)rc, (void)err;
    json_decref(out);
    __atomic_add_fetch((int *)ctx, 1, __ATOMIC_SEQ_CST);
}

/* KPI_QUEUE_MAX queries wait at most; one more is refused with
 * CB_EUNAVAILABLE; those still waiting at stop are dropped (and freed). */
TEST(test_worker_queue_bound)
{
    struct env e;
    env_open(&e);
    kpi_worker *w = NULL;
    cb_error err;
    int answered = 0;
    CHECK_INT(kpi_worker_start(e.dir, NULL, 0, &w, &err), 0);
    struct kpi_query q = {.by = "role", .now = T0 + 100 * H};
    CHECK_INT(kpi_worker_submit(w, &q, on_gate, NULL, &err), 0);
    pthread_mutex_lock(&gate.mu);
    while (!gate.entered)
        pthread_cond_wait(&gate.cond, &gate.mu);
    pthread_mutex_unlock(&gate.mu);
    for (int i = 0; i < KPI_QUEUE_MAX; i++)
        CHECK_INT(kpi_worker_submit(w, &q, on_count, &answered, &err), 0);
    CHECK_INT(kpi_worker_submit(w, &q, on_count, &answered, &err), CB_EUNAVAILABLE);
    pthread_mutex_lock(&gate.mu);
    gate.open = 1;
    pthread_cond_broadcast(&gate.cond);
    pthread_mutex_unlock(&gate.mu);
    kpi_worker_stop(w); /* joins: no answer comes after this */
    CHECK(__atomic_load_n(&answered, __ATOMIC_SEQ_CST) <= KPI_QUEUE_MAX);
    env_close(&e);
}

TEST_MAIN(test_by_department, test_by_district, test_by_role, test_department_scope, test_window_and_errors,
          test_summary, test_worker, test_worker_queue_bound)
