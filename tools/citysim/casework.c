/* casework — the centre, the departments, grid workers and 回访 working the
 * cases; see casework.h. */
#include "casework.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "phrasebook.h"
#include "rng.h"

#define POLL_S 15          /* seconds between passes */
#define PAGES_MAX 10       /* pages of 100 cases per state and pass */
#define ONCE_PASSES_MAX 24 /* --once: passes until nothing acts */

/* What a hash decides besides the delay. */
enum salt { SALT_DELAY, SALT_CHOICE, SALT_MISS, SALT_TEXT };

struct pass {
    casework *w;
    api *a;
    const city *ct;
    const staff *st;
    int64_t now_ms;
    unsigned long actions;
};

/* One case as the list gives it; the strings are borrowed from its JSON. */
struct item {
    json_t *json;
    const char *id, *status, *updated, *department, *district, *category, *deadline;
};

typedef void (*act_fn)(struct pass *p, const struct item *it);

/* ---- time and hashing ---- */

/* RFC 3339 ("2026-11-23T10:00:00.123Z", "...+08:00") to ms; -1 if not. */
static int64_t parse_time(const char *s)
{
    int y, mo, d, h, mi, sec, n = 0;
    if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6)
        return -1;
    struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi, .tm_sec = sec};
    int64_t ms = (int64_t)timegm(&tm) * 1000;
    const char *p = s + n;
    if (*p == '.') {
        int64_t scale = 100;
        for (p++; *p >= '0' && *p <= '9'; p++, scale /= 10)
            ms += (*p - '0') * scale;
    }
    int oh, om;
    if (*p == '+' || *p == '-') {
        if (sscanf(p + 1, "%2d:%2d", &oh, &om) != 2)
            return -1;
        ms -= (*p == '+' ? 1 : -1) * (int64_t)(oh * 60 + om) * 60000;
    } else if (*p != 'Z') {
        return -1;
    }
    return ms;
}

/* A uniform number in [0, 1) fixed by the case's step and what it decides. */
static double decide(const struct item *it, enum salt salt)
{
    uint64_t h = 1469598103934665603ULL ^ (uint64_t)salt;
    const char *parts[] = {it->id, it->status, it->updated};
    for (size_t i = 0; i < 3; i++)
        for (const unsigned char *c = (const unsigned char *)(parts[i] ? parts[i] : ""); *c; c++)
            h = (h ^ *c) * 1099511628211ULL;
    return (double)(rng__splitmix(&h) >> 11) * 0x1.0p-53;
}

/* Words for the notes, also fixed by the case's step. */
static void text_rng(const struct item *it, rng *r)
{
    rng_seed(r, (uint64_t)(decide(it, SALT_TEXT) * 0x1.0p53));
}

/* ---- acting ---- */

/* POST /api/v1/cases/{id}/{action} with key as role; body is stolen. */
static int act(struct pass *p, const char *key, const char *role, const struct item *it, const char *action,
               json_t *body)
{
    char path[160], err[512] = "out of memory";
    int status = 0;
    snprintf(path, sizeof path, "/api/v1/cases/%s/%s", it->id, action);
    json_t *ans = body ? api_json_as(p->a, key, "POST", path, body, &status, err, sizeof err) : NULL;
    json_decref(body);
    int rc = status == 200 ? 0 : -1;
    if (rc == 0) {
        p->actions++;
        p->w->n.actions++;
        const char *to = json_string_value(json_object_get(ans, "status"));
        const char *dept = json_string_value(json_object_get(ans, "department"));
        sim_log(SIM_INFO, "case_action", "id=%s action=%s role=%s status=%s department=%s", it->id, action, role,
                to ? to : "?", dept ? dept : "-");
    } else if (status == 409) {
        p->w->n.conflicts++; /* someone acted first (a person on the dashboard) */
    } else {
        p->w->n.failed++;
        if (ans)
            snprintf(err, sizeof err, "HTTP %d %s", status,
                     json_string_value(json_object_get(json_object_get(ans, "error"), "message")));
        if (strcmp(err, "interrupted") != 0)
            sim_log(SIM_WARN, "case_action_failed", "id=%s action=%s role=%s error=\"%s\"", it->id, action, role,
                    err);
    }
    json_decref(ans);
    return rc;
}

static const char *dept_key(const struct pass *p, const struct item *it)
{
    const struct department *d = staff_department(p->st, it->department);
    return d ? d->key : NULL;
}

static int department_known(const struct pass *p, const char *code)
{
    return staff_department(p->st, code) != NULL;
}

/* The first of the candidates citybrain knows that is not `not`. */
static const char *first_known(const struct pass *p, const char *const *cand, size_t n, const char *not)
{
    for (size_t i = 0; i < n; i++)
        if (cand[i] && *cand[i] && department_known(p, cand[i]) && (!not || strcmp(cand[i], not) != 0))
            return cand[i];
    return NULL;
}

/* 上报 (citizens' reports): 受理, or now and then 不予受理. */
static void act_accept(struct pass *p, const struct item *it)
{
    if (!p->w->once && decide(it, SALT_CHOICE) < 0.04) {
        act(p, p->st->operator_key, "operator", it, "reject",
            json_pack("{s:s}", "note", "经核实，该问题已有工单在办理，不予重复受理"));
        return;
    }
    act(p, p->st->operator_key, "operator", it, "accept", json_pack("{s:s}", "note", "受理"));
}

static void act_file(struct pass *p, const struct item *it)
{
    act(p, p->st->operator_key, "operator", it, "file", json_pack("{s:s}", "note", "立案"));
}

/* 派遣 of what routing left open: 工地扬尘 goes to the environment bureau,
 * the rest to the district's 城管分局, else the city's 城管局. */
static void act_dispatch(struct pass *p, const struct item *it)
{
    char local[STAFF_CODE_MAX + 8];
    snprintf(local, sizeof local, "cg-%s", it->district ? it->district : "");
    const char *env = it->category && strcmp(it->category, "08001") == 0 ? "sthjj" : NULL;
    const char *cand[] = {env, local, "cgj"};
    const char *to = first_known(p, cand, sizeof cand / sizeof cand[0], NULL);
    if (to)
        act(p, p->st->operator_key, "operator", it, "dispatch", json_pack("{s:s}", "department", to));
}

/* 回退 came back: another department — the returning one's parent, the
 * district's 城管分局, the 城管局, the 住建局. */
static void act_redispatch(struct pass *p, const struct item *it)
{
    const struct department *prev = staff_department(p->st, it->department);
    char local[STAFF_CODE_MAX + 8];
    snprintf(local, sizeof local, "cg-%s", it->district ? it->district : "");
    const char *cand[] = {prev ? prev->parent : NULL, local, "cgj", "zjj"};
    const char *to = first_known(p, cand, sizeof cand / sizeof cand[0], it->department);
    if (to)
        act(p, p->st->operator_key, "operator", it, "dispatch", json_pack("{s:s}", "department", to));
}

/* The department starts, or (8 %, and once in --once) returns it. */
static void act_start(struct pass *p, const struct item *it)
{
    const char *key = dept_key(p, it);
    if (!key)
        return;
    int give_back = p->w->once ? p->w->n.returned == 0 : decide(it, SALT_CHOICE) < 0.08;
    if (give_back && strcmp(it->status, "dispatched") == 0) {
        rng r;
        text_rng(it, &r);
        if (act(p, key, "dept", it, "return", json_pack("{s:s}", "reason", phrasebook_note(NOTE_RETURN, &r))) == 0)
            p->w->n.returned++;
        return;
    }
    act(p, key, "dept", it, "start", json_pack("{s:s}", "note", "已安排人员前往现场"));
}

/* Handling done (处置反馈), or (5 %) more time asked for (延期). */
static void act_handle(struct pass *p, const struct item *it)
{
    const char *key = dept_key(p, it);
    if (!key)
        return;
    rng r;
    text_rng(it, &r);
    if (!p->w->once && strcmp(it->status, "in_progress") == 0 && decide(it, SALT_CHOICE) < 0.05) {
        act(p, key, "dept", it, "extend", json_pack("{s:i, s:s}", "hours", 24, "reason", phrasebook_note(NOTE_EXTEND, &r)));
        return;
    }
    act(p, key, "dept", it, "handle", json_pack("{s:s}", "note", phrasebook_handled(it->category ? it->category : "", &r)));
}

static void act_approve(struct pass *p, const struct item *it)
{
    act(p, p->st->operator_key, "operator", it, "approve_extension", json_pack("{s:s}", "note", "同意延期"));
}

/* 核查 by the district's grid worker (half the time) or the centre; 10 %
 * (and once in --once) fail: 返工. */
static void act_check(struct pass *p, const struct item *it)
{
    int fail = p->w->once ? p->w->n.reworked == 0 : decide(it, SALT_CHOICE) < 0.10;
    int di = -1;
    for (size_t i = 0; it->district && i < p->ct->n && i < p->st->ngrid; i++)
        if (strcmp(p->ct->d[i].code, it->district) == 0)
            di = (int)i;
    int by_grid = di >= 0 && decide(it, SALT_MISS) < 0.5;
    rng r;
    text_rng(it, &r);
    json_t *body = json_pack("{s:b, s:s}", "passed", !fail, "note", fail ? phrasebook_note(NOTE_CHECK_FAILED, &r) : "核查通过");
    if (act(p, by_grid ? p->st->grid_keys[di] : p->st->operator_key, by_grid ? "grid" : "operator", it, "check",
            body) == 0 &&
        fail)
        p->w->n.reworked++;
}

static void act_close(struct pass *p, const struct item *it)
{
    if (act(p, p->st->operator_key, "operator", it, "close", json_pack("{s:s}", "note", "结案")) == 0)
        p->w->n.closed++;
}

/* 12345 回访: 满意 85 %, 基本满意 12 %, 不满意 3 % (never in --once). */
static void act_evaluate(struct pass *p, const struct item *it)
{
    double u = decide(it, SALT_CHOICE);
    const char *rating = u < 0.85 ? "满意" : u < 0.97 || p->w->once ? "基本满意" : "不满意";
    if (act(p, p->st->hotline_key, "hotline", it, "evaluate", json_pack("{s:s, s:s}", "rating", rating, "note",
                                                                         "电话回访")) == 0)
        p->w->n.evaluated++;
}

/* ---- the pass ---- */

/* Each waiting state, who acts and after how long (seconds, before pace). */
static const struct step {
    const char *status;
    double min_s, max_s;
    act_fn act;
} steps[] = {
    {"reported", 20, 120, act_accept},    {"accepted", 10, 60, act_file},
    {"filed", 20, 120, act_dispatch},     {"returned", 30, 180, act_redispatch},
    {"dispatched", 30, 300, act_start},   {"rework", 60, 600, act_start},
    {"in_progress", 120, 900, act_handle}, {"extended", 30, 180, act_approve},
    {"handled", 30, 300, act_check},      {"checked", 10, 120, act_close},
    {"closed", 60, 600, act_evaluate},
};

/* When the step's delay is up; a department that lets the deadline pass
 * (10 % of handling) acts a few minutes after it. */
static int64_t due(const struct pass *p, const struct step *s, const struct item *it)
{
    int64_t since = parse_time(it->updated);
    if (p->w->once || since < 0)
        return p->now_ms;
    int64_t deadline = parse_time(it->deadline);
    if (strcmp(s->status, "in_progress") == 0 && deadline > 0 && decide(it, SALT_MISS) < 0.10)
        return deadline + (int64_t)((60 + 540 * decide(it, SALT_DELAY)) * 1000);
    double delay_s = (s->min_s + (s->max_s - s->min_s) * decide(it, SALT_DELAY)) / p->w->pace;
    return since + (int64_t)(delay_s * 1000);
}

static void item_of(json_t *c, struct item *it)
{
    it->json = c;
    it->id = json_string_value(json_object_get(c, "id"));
    it->status = json_string_value(json_object_get(c, "status"));
    it->updated = json_string_value(json_object_get(c, "updated_at"));
    it->department = json_string_value(json_object_get(c, "department"));
    it->district = json_string_value(json_object_get(c, "district"));
    it->category = json_string_value(json_object_get(c, "category"));
    it->deadline = json_string_value(json_object_get(c, "deadline"));
}

/* The cases waiting in s's state; those due get s's action. */
static void run_step(struct pass *p, const struct step *s)
{
    char path[256], err[256] = "", cursor[128] = "";
    for (int page = 0; page < PAGES_MAX; page++) {
        snprintf(path, sizeof path, "/api/v1/cases?status=%s&limit=100%s%s", s->status, *cursor ? "&cursor=" : "",
                 cursor);
        int status = 0;
        json_t *ans = api_json_as(p->a, p->st->operator_key, "GET", path, NULL, &status, err, sizeof err);
        if (status != 200) {
            if (ans || strcmp(err, "interrupted") != 0)
                sim_log(SIM_WARN, "cases_list_failed", "status=%s http=%d error=\"%s\"", s->status, status,
                        ans ? "unexpected answer" : err);
            json_decref(ans);
            p->w->n.failed++;
            return;
        }
        size_t i;
        json_t *c;
        json_array_foreach(json_object_get(ans, "cases"), i, c) {
            struct item it;
            item_of(c, &it);
            if (it.id && it.status && strcmp(it.status, s->status) == 0 && due(p, s, &it) <= p->now_ms)
                s->act(p, &it);
        }
        const char *next = json_string_value(json_object_get(ans, "next_cursor"));
        snprintf(cursor, sizeof cursor, "%s", next ? next : "");
        json_decref(ans);
        if (!*cursor)
            return;
    }
}

void casework_init(casework *w, double pace, int once, int64_t now_ms)
{
    memset(w, 0, sizeof *w);
    w->pace = pace > 0 ? pace : 1;
    w->once = once;
    w->next_poll_ms = now_ms;
}

unsigned long casework_tick(casework *w, api *a, const city *ct, const staff *st, int64_t now_ms)
{
    if (now_ms < w->next_poll_ms)
        return 0;
    w->next_poll_ms = now_ms + POLL_S * 1000;
    unsigned long total = 0;
    for (int pass = 0; pass < (w->once ? ONCE_PASSES_MAX : 1); pass++) {
        struct pass p = {.w = w, .a = a, .ct = ct, .st = st, .now_ms = now_ms};
        for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++)
            run_step(&p, &steps[i]);
        total += p.actions;
        if (p.actions == 0)
            break;
    }
    return total;
}
