/* Unit tests of the case centre: the transition table (every allowed
 * transition for every role, forbidden ones), department scope, masking,
 * routing specificity, duplicates, deadlines and 督办 with an injected clock,
 * rework after 不满意, the alarm hook, lists, search and statistics. */
#include "test.h"

#include "cases/cases.h"
#include "cases/media.h"
#include "cases/workflow.h"
#include "core/clock.h"
#include "core/log.h"

#include <pthread.h>
#include <unistd.h>

#define MIN 60000LL

static char dir[64];
static int64_t now_ms;

static int64_t at(const char *local)
{
    char buf[64];
    int64_t ms = 0;
    snprintf(buf, sizeof buf, "%.10sT%s:00+08:00", local, local + 11);
    if (clock_parse_rfc3339(buf, &ms) != 0)
        exit(2);
    return ms;
}

static void write_file(const char *name, const char *text)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

/* A small city: two components, three matters; routing rules of every kind. */
static cases *open_city(void)
{
    test_make_dir(dir);
    write_file("categories.json",
               "{\"classes\": ["
               " {\"code\": \"01\", \"name\": \"市政公用设施\", \"kind\": \"component\", \"items\": ["
               "  {\"code\": \"01001\", \"name\": \"上水井盖\", \"urgency\": \"urgent\", \"limit_hours\": 2},"
               "  {\"code\": \"01002\", \"name\": \"污水井盖\", \"urgency\": \"urgent\", \"limit_hours\": 2}]},"
               " {\"code\": \"05\", \"name\": \"其他设施\", \"kind\": \"component\", \"items\": ["
               "  {\"code\": \"05001\", \"name\": \"宣传栏\", \"limit_hours\": 24}]},"
               " {\"code\": \"08\", \"name\": \"施工管理\", \"kind\": \"matter\", \"items\": ["
               "  {\"code\": \"08001\", \"name\": \"工地扬尘\", \"limit_hours\": 4}]},"
               " {\"code\": \"09\", \"name\": \"街面秩序\", \"kind\": \"matter\", \"items\": ["
               "  {\"code\": \"09002\", \"name\": \"占道经营\", \"limit_hours\": 4}]}]}");
    write_file("departments.json", "{\"departments\": [{\"code\": \"A\", \"name\": \"市政\"}, {\"code\": \"B\", "
                                   "\"name\": \"供水\"}, {\"code\": \"C\", \"name\": \"解放区城管分局\"}, {\"code\": "
                                   "\"D\", \"name\": \"城管局\"}, {\"code\": \"E\", \"name\": \"住建局\"}, {\"code\": "
                                   "\"F\", \"name\": \"生态环境局\"}, {\"code\": \"G\", \"name\": \"网格站\"}]}");
    write_file("routing.json", "{\"rules\": ["
                               "{\"category\": \"01\", \"region\": \"*\", \"department\": \"A\"},"
                               "{\"category\": \"01001\", \"region\": \"*\", \"department\": \"B\"},"
                               "{\"category\": \"09\", \"region\": \"410802\", \"department\": \"C\"},"
                               "{\"category\": \"09\", \"region\": \"*\", \"department\": \"D\"},"
                               "{\"category\": \"09\", \"region\": \"410802-G1-1\", \"department\": \"G\"},"
                               "{\"category\": \"08001\", \"region\": \"*\", \"department\": \"E\"},"
                               "{\"category\": \"08001\", \"region\": \"*\", \"department\": \"F\"}]}");
    write_file("calendar-2026.json", "{\"holidays\": [\"2026-10-01\"], \"workdays\": [\"2026-10-10\"]}");
    struct cases_options o = {.data_dir = dir, .city_dir = dir, .duplicate_radius_m = 50,
                              .duplicate_window_ms = 24 * 3600 * 1000LL, .file_limit_min = 30,
                              .dispatch_limit_min = 30, .check_limit_min = 120};
    cases *c = NULL;
    cb_error err;
    log_set_level(LOG_ERROR); /* the expected refusals log warnings */
    if (cases_open(&o, &c, &err) != 0) {
        fprintf(stderr, "cases_open: %s\n", err.message);
        exit(2);
    }
    now_ms = at("2026-11-23 10:00"); /* a Monday */
    return c;
}

static void close_city(cases *c)
{
    cases_close(c);
    test_remove_dir(dir);
}

static struct principal who(enum role r, const char *department)
{
    struct principal p;
    memset(&p, 0, sizeof p);
    snprintf(p.id, sizeof p.id, "k-%s", role_name(r));
    p.role = r;
    snprintf(p.department, sizeof p.department, "%s", department ? department : "");
    return p;
}

static const char *status_of(const json_t *o)
{
    return json_string_value(json_object_get(o, "status"));
}

/* Reports a case; returns its id in id (CASE_ID_MAX) and its JSON. */
static json_t *report(cases *c, const char *channel, const char *category, double lon, double lat,
                      const char *district, const char *grid, char *id)
{
    struct principal p = who(ROLE_ADMIN, NULL);
    json_t *body = json_pack("{s:s, s:s, s:s, s:f, s:f, s:s, s:s?, s:{s:s, s:s}}", "channel", channel, "category",
                             category, "description", "解放路与民主路交叉口井盖缺失", "lon", lon, "lat", lat,
                             "district", district, "grid", grid, "reporter", "name", "张三丰", "phone",
                             "13812345678");
    json_t *out = NULL;
    cb_error err;
    int rc = cases_intake(c, &p, body, now_ms, &out, &err);
    json_decref(body);
    if (rc != 0)
        return NULL; /* callers check */
    snprintf(id, CASE_ID_MAX, "%s", json_string_value(json_object_get(out, "id")));
    return out;
}

static int act(cases *c, const struct principal *p, const char *id, const char *action, json_t *body,
               json_t **out, cb_error *err)
{
    json_t *o = NULL;
    int rc = cases_transition(c, p, id, action, body, now_ms, &o, err);
    json_decref(body);
    if (out)
        *out = o;
    else
        json_decref(o);
    return rc;
}

static int act_ok(cases *c, const char *id, const char *action, json_t *body)
{
    struct principal p = who(ROLE_ADMIN, NULL);
    cb_error err;
    int rc = act(c, &p, id, action, body, NULL, &err);
    if (rc != 0)
        fprintf(stderr, "  %s %s: %s\n", id, action, err.message);
    return rc;
}

/* A new case (05001: no routing rule, so it waits for a dispatcher) in state s. */
static void drive(cases *c, enum case_status s, char *id, double lon)
{
    json_decref(report(c, "citizen", "05001", lon, 35.2, "410802", NULL, id));
    switch (s) {
    case CASE_REPORTED: return;
    case CASE_REJECTED: act_ok(c, id, "reject", json_pack("{s:s}", "note", "不属于城管范围")); return;
    default: break;
    }
    act_ok(c, id, "accept", NULL);
    if (s == CASE_ACCEPTED)
        return;
    act_ok(c, id, "file", NULL);
    if (s == CASE_FILED)
        return;
    if (s == CASE_PARKED) {
        act_ok(c, id, "park", NULL);
        return;
    }
    act_ok(c, id, "dispatch", json_pack("{s:s}", "department", "A"));
    if (s == CASE_DISPATCHED)
        return;
    if (s == CASE_RETURNED) {
        act_ok(c, id, "return", json_pack("{s:s}", "reason", "不是本部门职责"));
        return;
    }
    act_ok(c, id, "start", NULL);
    if (s == CASE_IN_PROGRESS)
        return;
    if (s == CASE_EXTENDED) {
        act_ok(c, id, "extend", json_pack("{s:i, s:s}", "hours", 4, "reason", "需要采购配件"));
        return;
    }
    act_ok(c, id, "handle", json_pack("{s:s}", "note", "已修复"));
    if (s == CASE_HANDLED)
        return;
    if (s == CASE_REWORK) {
        act_ok(c, id, "check", json_pack("{s:b}", "passed", 0));
        return;
    }
    act_ok(c, id, "check", json_pack("{s:b}", "passed", 1));
    if (s == CASE_CHECKED)
        return;
    act_ok(c, id, "close", NULL);
    if (s == CASE_CLOSED)
        return;
    act_ok(c, id, "evaluate", json_pack("{s:s}", "rating", "满意"));
}

static json_t *body_for(const struct case_transition *t)
{
    if (strcmp(t->action, "dispatch") == 0)
        return json_pack("{s:s}", "department", "A");
    if (strcmp(t->action, "return") == 0 || strcmp(t->action, "extend") == 0)
        return json_pack("{s:s, s:i}", "reason", "理由", "hours", 2);
    if (strcmp(t->action, "reject") == 0)
        return json_pack("{s:s}", "note", "理由");
    if (strcmp(t->action, "check") == 0)
        return json_pack("{s:b}", "passed", t->to == CASE_CHECKED);
    if (strcmp(t->action, "evaluate") == 0)
        return json_pack("{s:s}", "rating", "基本满意");
    return NULL;
}

TEST(test_table_shape)
{
    int seen[CASE_STATUS_COUNT] = {0};
    for (size_t i = 0; i < case_transition_count; i++) {
        const struct case_transition *t = &case_transitions[i];
        CHECK((unsigned)t->from < CASE_STATUS_COUNT);
        CHECK(t->to == CASE_PREVIOUS || (unsigned)t->to < CASE_STATUS_COUNT);
        CHECK(t->roles & ROLE_BIT(ROLE_ADMIN));
        CHECK(!(t->roles & ROLE_BIT(ROLE_VIEWER)) && !(t->roles & ROLE_BIT(ROLE_DEVICE)));
        CHECK(case_transition_find(t->from, t->action, t->to) == t); /* no duplicate rows */
        seen[t->from] = 1;
    }
    for (int s = 0; s < CASE_STATUS_COUNT; s++) /* no dead end: even evaluated cases can be reopened */
        CHECK(seen[s]);
    char buf[256];
    CHECK_STR(case_actions_allowed(CASE_DISPATCHED, -1, buf, sizeof buf), "start, return, dispatch, park, supervise");
    CHECK_STR(case_actions_allowed(CASE_DISPATCHED, ROLE_DEPT, buf, sizeof buf), "start, return");
    CHECK_STR(case_actions_allowed(CASE_HANDLED, -1, buf, sizeof buf), "check");
    CHECK_STR(case_status_label(CASE_DISPATCHED), "已派遣");
    CHECK_INT(case_status_parse("in_progress"), CASE_IN_PROGRESS);
    CHECK_INT(case_status_parse("nope"), -1);
}

/* Every row of the table, tried by every role: allowed ones move the case to
 * the row's state, the others are refused (403, or 404 for a department
 * that cannot see the case at all). */
TEST(test_every_transition_every_role)
{
    cases *c = open_city();
    int tried = 0;
    static const enum role roles[] = {ROLE_ADMIN, ROLE_OPERATOR, ROLE_DEPT,    ROLE_GRID,
                                      ROLE_VIEWER, ROLE_HOTLINE,  ROLE_CITIZEN};
    for (size_t i = 0; i < case_transition_count; i++) {
        const struct case_transition *t = &case_transitions[i];
        if (strcmp(t->action, "unlink") == 0)
            continue; /* needs a duplicate: test_duplicates */
        for (size_t r = 0; r < sizeof roles / sizeof roles[0]; r++) {
            char id[CASE_ID_MAX];
            drive(c, t->from, id, 113.0 + (double)tried * 0.01); /* far apart: no duplicates */
            struct principal p = who(roles[r], roles[r] == ROLE_DEPT ? "A" : NULL);
            json_t *got = NULL, *out = NULL;
            cb_error err;
            int visible = cases_get(c, &p, id, now_ms, &got, &err) == 0;
            const char *dep = visible ? json_string_value(json_object_get(got, "department")) : NULL;
            CHECK(visible == (roles[r] != ROLE_DEPT || (dep && strcmp(dep, "A") == 0)));
            if (visible)
                CHECK_STR(status_of(got), case_status_name(t->from));
            json_decref(got);
            int rc = act(c, &p, id, t->action, body_for(t), &out, &err);
            int allowed = (t->roles & ROLE_BIT(roles[r])) != 0;
            if (!visible) {
                CHECK_INT(rc, CB_ENOT_FOUND);
            } else if (allowed) {
                CHECK_INT(rc, 0);
                int want = t->to == CASE_PREVIOUS ? CASE_FILED : t->to;
                if (rc == 0 && strcmp(status_of(out), case_status_name((enum case_status)want)) != 0)
                    fprintf(stderr, "  %s by %s: %s, expected %s\n", t->action, role_name(roles[r]), status_of(out),
                            case_status_name((enum case_status)want));
                CHECK(rc == 0 && strcmp(status_of(out), case_status_name((enum case_status)want)) == 0);
                /* the history's last entry records who did it */
                json_t *h = json_object_get(out, "history");
                json_t *last = json_array_get(h, json_array_size(h) - 1);
                CHECK_STR(json_string_value(json_object_get(last, "action")), t->action);
                CHECK_STR(json_string_value(json_object_get(last, "role")), role_name(roles[r]));
            } else {
                CHECK_INT(rc, CB_EFORBIDDEN);
            }
            json_decref(out);
            tried++;
        }
    }
    CHECK(tried >= 6 * 30);
    close_city(c);
}

/* "start, return" from a case's "actions" (as case_actions_allowed writes it). */
static const char *action_names(const json_t *actions, char *out, size_t n)
{
    size_t i, len = 0;
    json_t *a;
    out[0] = '\0';
    json_array_foreach(actions, i, a)
        len += (size_t)snprintf(out + len, n - len, "%s%s", len ? ", " : "",
                                json_string_value(json_object_get(a, "action")));
    return out;
}

/* The actions of GET /api/v1/cases/{id}: for every state and role, exactly
 * the table's (unlink only on a linked duplicate), each with its name and
 * fields; none for a case the principal cannot see. */
TEST(test_actions)
{
    for (size_t i = 0; i < case_transition_count; i++) /* every action has its name and fields */
        CHECK(case_action_info(case_transitions[i].action) && case_action_info(case_transitions[i].action)->name[0]);
    CHECK(case_action_info("fly") == NULL);
    CHECK_INT(case_action_field(case_action_info("extend"), "hours"), 2);
    CHECK_INT(case_action_field(case_action_info("check"), "note"), 1);
    CHECK_INT(case_action_field(case_action_info("dispatch"), "note"), 0);
    cases *c = open_city();
    static const enum role roles[] = {ROLE_ADMIN, ROLE_OPERATOR, ROLE_DEPT,    ROLE_GRID,
                                      ROLE_VIEWER, ROLE_HOTLINE,  ROLE_CITIZEN};
    int compared = 0;
    for (int s = 0; s < CASE_STATUS_COUNT; s++) {
        char id[CASE_ID_MAX];
        drive(c, (enum case_status)s, id, 113.0 + s * 0.01);
        for (size_t r = 0; r < sizeof roles / sizeof roles[0]; r++) {
            struct principal p = who(roles[r], roles[r] == ROLE_DEPT ? "A" : NULL);
            json_t *got = NULL;
            cb_error err;
            if (cases_get(c, &p, id, now_ms, &got, &err) != 0)
                continue; /* dept A before dispatch: test_department_scope */
            char want[256], have[256];
            case_actions_allowed((enum case_status)s, (int)roles[r], want, sizeof want);
            char *unlink = strstr(want, "unlink"); /* not a duplicate */
            if (unlink)
                *(unlink > want ? unlink - 2 : unlink) = '\0';
            CHECK_STR(action_names(json_object_get(got, "actions"), have, sizeof have), want);
            json_decref(got);
            compared++;
        }
    }
    CHECK_INT(compared, CASE_STATUS_COUNT * 6 + 9); /* dept A sees the 9 states from dispatched on */

    char id[CASE_ID_MAX];
    json_t *got = NULL, *a;
    cb_error err;
    struct principal op = who(ROLE_OPERATOR, NULL), dept = who(ROLE_DEPT, "A"), other = who(ROLE_DEPT, "B"),
                     viewer = who(ROLE_VIEWER, NULL), far = who(ROLE_GRID, "410803");
    drive(c, CASE_FILED, id, 114.1);
    CHECK_INT(cases_get(c, &op, id, now_ms, &got, &err), 0);
    a = json_array_get(json_object_get(got, "actions"), 0);
    CHECK_STR(json_string_value(json_object_get(a, "action")), "dispatch");
    CHECK_STR(json_string_value(json_object_get(a, "name")), "派遣");
    CHECK_STR(json_string_value(json_array_get(json_object_get(a, "needs"), 0)), "department");
    CHECK_INT(json_array_size(json_object_get(a, "required")), 0);
    json_decref(got);
    drive(c, CASE_DISPATCHED, id, 114.2);
    CHECK_INT(cases_get(c, &dept, id, now_ms, &got, &err), 0);
    a = json_object_get(got, "actions");
    CHECK_INT(json_array_size(a), 2);
    CHECK_STR(json_string_value(json_object_get(json_array_get(a, 0), "action")), "start");
    CHECK_STR(json_string_value(json_object_get(json_array_get(a, 1), "action")), "return");
    CHECK_STR(json_string_value(json_object_get(json_array_get(a, 1), "name")), "回退");
    CHECK_STR(json_string_value(json_array_get(json_object_get(json_array_get(a, 1), "required"), 0)), "reason");
    json_decref(got);
    CHECK_INT(cases_get(c, &other, id, now_ms, &got, &err), CB_ENOT_FOUND); /* another department's case */
    CHECK_INT(cases_get(c, &viewer, id, now_ms, &got, &err), 0);
    CHECK_INT(json_array_size(json_object_get(got, "actions")), 0);
    json_decref(got);
    drive(c, CASE_HANDLED, id, 114.3); /* a grid worker outside the case's area may not check it */
    CHECK_INT(cases_get(c, &far, id, now_ms, &got, &err), 0);
    CHECK_INT(json_array_size(json_object_get(got, "actions")), 0);
    json_decref(got);
    close_city(c);
}

TEST(test_forbidden_transitions)
{
    cases *c = open_city();
    char id[CASE_ID_MAX];
    struct principal admin = who(ROLE_ADMIN, NULL);
    cb_error err;
    drive(c, CASE_REPORTED, id, 113.1);
    CHECK_INT(act(c, &admin, id, "start", NULL, NULL, &err), CB_ECONFLICT);
    CHECK(strstr(err.message, "reported") && strstr(err.message, "accept, reject"));
    CHECK_INT(act(c, &admin, id, "close", NULL, NULL, &err), CB_ECONFLICT);
    CHECK_INT(act(c, &admin, id, "fly", NULL, NULL, &err), CB_ENOT_FOUND);
    drive(c, CASE_DISPATCHED, id, 113.2);
    CHECK_INT(act(c, &admin, id, "handle", NULL, NULL, &err), CB_ECONFLICT); /* start first */
    CHECK(strstr(err.message, "start, return"));
    CHECK_INT(act(c, &admin, id, "evaluate", json_pack("{s:s}", "rating", "满意"), NULL, &err), CB_ECONFLICT);
    drive(c, CASE_HANDLED, id, 113.3);
    CHECK_INT(act(c, &admin, id, "check", NULL, NULL, &err), CB_EMISSING_FIELD); /* passed is required */
    CHECK_STR(err.field, "passed");
    drive(c, CASE_REJECTED, id, 113.4);
    CHECK_INT(act(c, &admin, id, "unlink", NULL, NULL, &err), CB_ECONFLICT); /* not a duplicate */
    drive(c, CASE_CLOSED, id, 113.5);
    CHECK_INT(act(c, &admin, id, "evaluate", json_pack("{s:s}", "rating", "还行"), NULL, &err), CB_EINVALID_FIELD);
    CHECK_INT(act(c, &admin, id, "dispatch", NULL, NULL, &err), CB_ECONFLICT);
    drive(c, CASE_DISPATCHED, id, 113.6);
    CHECK_INT(act(c, &admin, id, "return", NULL, NULL, &err), CB_EMISSING_FIELD); /* a reason is required */
    CHECK_INT(act(c, &admin, id, "extend", json_pack("{s:s}", "reason", "x"), NULL, &err), CB_ECONFLICT);
    CHECK_INT(act(c, &admin, "C20990101-000001", "accept", NULL, NULL, &err), CB_ENOT_FOUND);
    /* a grid worker checks only in their area */
    drive(c, CASE_HANDLED, id, 113.7);
    struct principal far = who(ROLE_GRID, "410803"), near = who(ROLE_GRID, "410802");
    CHECK_INT(act(c, &far, id, "check", json_pack("{s:b}", "passed", 1), NULL, &err), CB_EFORBIDDEN);
    CHECK_INT(act(c, &near, id, "check", json_pack("{s:b}", "passed", 1), NULL, &err), 0);
    close_city(c);
}

TEST(test_department_scope)
{
    cases *c = open_city();
    char mine[CASE_ID_MAX], other[CASE_ID_MAX];
    drive(c, CASE_DISPATCHED, mine, 113.1); /* to A */
    json_decref(report(c, "hotline", "01001", 113.3, 35.2, "410802", NULL, other)); /* routed to B */
    struct principal a = who(ROLE_DEPT, "A"), b = who(ROLE_DEPT, "B"), none = who(ROLE_DEPT, "");
    json_t *out = NULL;
    cb_error err;
    CHECK_INT(cases_get(c, &a, mine, now_ms, &out, &err), 0);
    json_decref(out);
    CHECK_INT(cases_get(c, &b, mine, now_ms, &out, &err), CB_ENOT_FOUND);
    CHECK_INT(cases_get(c, &none, mine, now_ms, &out, &err), CB_ENOT_FOUND);
    CHECK_INT(act(c, &b, mine, "start", NULL, NULL, &err), CB_ENOT_FOUND);
    struct case_filter f = {0};
    CHECK_INT(cases_list(c, &b, &f, now_ms, &out, &err), 0);
    CHECK_INT(json_array_size(json_object_get(out, "cases")), 1);
    CHECK_STR(json_string_value(json_object_get(json_array_get(json_object_get(out, "cases"), 0), "id")), other);
    json_decref(out);
    f.department = "A"; /* asking for another department's cases still yields only one's own */
    CHECK_INT(cases_list(c, &b, &f, now_ms, &out, &err), 0);
    CHECK_INT(json_array_size(json_object_get(out, "cases")), 0);
    json_decref(out);
    CHECK_INT(cases_stats(c, &b, NULL, now_ms, &out, &err), 0);
    CHECK_INT(json_integer_value(json_object_get(out, "open")), 1);
    json_decref(out);
    close_city(c);
}

TEST(test_masking)
{
    static const struct {
        void (*mask)(const char *, char *, size_t);
        const char *in, *want;
    } masks[] = {{cases_mask_name, "张三丰", "张**"},          {cases_mask_name, "李", "李*"},
                 {cases_mask_name, "Alice", "A****"},         {cases_mask_name, "", ""},
                 {cases_mask_phone, "13812345678", "138****5678"}, {cases_mask_phone, "12345", "****"},
                 /* never more than half the digits: a landline keeps its last 2 */
                 {cases_mask_phone, "3912345", "****45"},         {cases_mask_phone, "0391234567", "****67"},
                 {cases_mask_phone, "+8613812345678", "+86****5678"}, {cases_mask_phone, "", ""}};
    for (size_t i = 0; i < sizeof masks / sizeof masks[0]; i++) {
        char out[64];
        masks[i].mask(masks[i].in, out, sizeof out);
        CHECK_STR(out, masks[i].want);
    }
    CHECK_INT(cases_sees_reporter(NULL), 0); /* no principal sees nothing whole */
    cases *c = open_city();
    char id[CASE_ID_MAX];
    json_decref(report(c, "hotline", "01002", 113.1, 35.2, "410802", NULL, id));
    static const struct {
        enum role role;
        const char *name, *phone;
    } want[] = {{ROLE_ADMIN, "张三丰", "13812345678"}, {ROLE_HOTLINE, "张三丰", "13812345678"},
                {ROLE_OPERATOR, "张**", "138****5678"}, {ROLE_VIEWER, "张**", "138****5678"},
                {ROLE_GRID, "张**", "138****5678"},     {ROLE_DEPT, "张**", "138****5678"}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        struct principal p = who(want[i].role, "A");
        json_t *o = NULL, *list = NULL;
        cb_error err;
        CHECK_INT(cases_get(c, &p, id, now_ms, &o, &err), 0);
        json_t *rep = json_object_get(o, "reporter");
        CHECK_STR(json_string_value(json_object_get(rep, "name")), want[i].name);
        CHECK_STR(json_string_value(json_object_get(rep, "phone")), want[i].phone);
        struct case_filter f = {0};
        CHECK_INT(cases_list(c, &p, &f, now_ms, &list, &err), 0); /* lists mask the same way */
        rep = json_object_get(json_array_get(json_object_get(list, "cases"), 0), "reporter");
        CHECK_STR(json_string_value(json_object_get(rep, "phone")), want[i].phone);
        json_decref(o);
        json_decref(list);
    }
    close_city(c);
}

static const char *routed(cases *c, const char *category, const char *district, const char *grid, double lon)
{
    static char dep[40];
    char id[CASE_ID_MAX];
    json_t *o = report(c, "grid", category, lon, 35.2, district, grid, id);
    const char *d = json_string_value(json_object_get(o, "department"));
    snprintf(dep, sizeof dep, "%s/%s", status_of(o), d ? d : "-");
    json_decref(o);
    return dep;
}

TEST(test_routing_specificity)
{
    cases *c = open_city();
    CHECK_STR(routed(c, "01001", "410802", NULL, 113.01), "dispatched/B"); /* the exact code beats its class */
    CHECK_STR(routed(c, "01002", "410802", NULL, 113.02), "dispatched/A"); /* the class */
    CHECK_STR(routed(c, "09002", "410802", NULL, 113.03), "dispatched/C"); /* the district beats "*" */
    CHECK_STR(routed(c, "09002", "410803", NULL, 113.04), "dispatched/D");
    CHECK_STR(routed(c, "09002", "410802", "410802-G1-1", 113.05), "dispatched/G"); /* the grid beats the district */
    CHECK_STR(routed(c, "08001", "410802", NULL, 113.06), "filed/-"); /* two owners: a dispatcher decides */
    CHECK_STR(routed(c, "05001", "410802", NULL, 113.07), "filed/-"); /* no rule */
    /* routing is data: replace the table and the next case follows it */
    json_t *out = NULL, *rules = json_pack("{s:[{s:s, s:s, s:s}]}", "rules", "category", "05", "region", "*",
                                           "department", "E");
    cb_error err;
    CHECK_INT(cases_routing_put(c, rules, &out, &err), 0);
    CHECK_INT(json_array_size(json_object_get(out, "rules")), 1);
    json_decref(out);
    json_decref(rules);
    CHECK_STR(routed(c, "05001", "410802", NULL, 113.08), "dispatched/E");
    CHECK_STR(routed(c, "01001", "410802", NULL, 113.09), "filed/-");
    rules = json_pack("{s:[{s:s, s:s, s:s}]}", "rules", "category", "05", "region", "*", "department", "nobody");
    CHECK_INT(cases_routing_put(c, rules, &out, &err), CB_EINVALID_FIELD);
    CHECK(strstr(err.message, "nobody") != NULL);
    json_decref(rules);
    rules = json_pack("{s:[{s:s, s:s, s:s}]}", "rules", "category", "0x", "region", "*", "department", "A");
    CHECK_INT(cases_routing_put(c, rules, &out, &err), CB_EINVALID_FIELD);
    json_decref(rules);
    CHECK_INT(cases_routing(c, &out, &err), 0); /* a failed replacement changed nothing */
    CHECK_INT(json_array_size(json_object_get(out, "rules")), 1);
    json_decref(out);
    close_city(c);
}

TEST(test_duplicates)
{
    cases *c = open_city();
    char first[CASE_ID_MAX], dup[CASE_ID_MAX], far[CASE_ID_MAX], other[CASE_ID_MAX], later[CASE_ID_MAX];
    json_decref(report(c, "grid", "09002", 113.2400, 35.2200, "410802", NULL, first));
    json_t *o = report(c, "hotline", "09002", 113.2403, 35.2201, "410802", NULL, dup); /* ~30 m */
    CHECK_STR(status_of(o), "rejected");
    CHECK_STR(json_string_value(json_object_get(o, "duplicate_of")), first);
    json_decref(o);
    o = report(c, "hotline", "09002", 113.2420, 35.2200, "410802", NULL, far); /* ~180 m */
    CHECK_STR(status_of(o), "dispatched");
    json_decref(o);
    o = report(c, "hotline", "09005", 113.2400, 35.2200, "410802", NULL, other); /* unknown category */
    CHECK(o == NULL);
    o = report(c, "hotline", "01002", 113.2400, 35.2200, "410802", NULL, other); /* another category */
    CHECK(json_is_null(json_object_get(o, "duplicate_of")));
    json_decref(o);
    now_ms += 25 * 3600 * 1000LL; /* outside the window */
    o = report(c, "hotline", "09002", 113.2400, 35.2200, "410802", NULL, later);
    CHECK(json_is_null(json_object_get(o, "duplicate_of")));
    json_decref(o);
    /* unlink: not a duplicate after all; filed and routed like any case */
    json_t *out = NULL;
    cb_error err;
    struct principal op = who(ROLE_OPERATOR, NULL);
    CHECK_INT(act(c, &op, dup, "unlink", NULL, &out, &err), 0);
    CHECK_STR(status_of(out), "dispatched");
    CHECK(json_is_null(json_object_get(out, "duplicate_of")));
    json_decref(out);
    CHECK_INT(act(c, &op, dup, "unlink", NULL, NULL, &err), CB_ECONFLICT);
    close_city(c);
}

static const char *deadline_of(cases *c, const char *id, char *buf)
{
    json_t *o = NULL;
    cb_error err;
    struct principal p = who(ROLE_ADMIN, NULL);
    buf[0] = '\0';
    if (cases_get(c, &p, id, now_ms, &o, &err) == 0)
        snprintf(buf, 64, "%s %s", json_string_value(json_object_get(o, "deadline")),
                 json_string_value(json_object_get(o, "timer")));
    json_decref(o);
    return buf;
}

TEST(test_deadlines_and_supervision)
{
    cases *c = open_city();
    char id[CASE_ID_MAX], slow[CASE_ID_MAX], buf[64];
    cb_error err;
    /* urgent, natural time: a missing manhole cover at 10:00 is due by 12:00 */
    json_decref(report(c, "hotline", "01001", 113.1, 35.2, "410802", NULL, id));
    CHECK_STR(deadline_of(c, id, buf), "2026-11-23T04:00:00.000Z green");
    now_ms = at("2026-11-23 11:35");
    CHECK_INT(cases_supervise(c, now_ms, &err), 0);
    CHECK_STR(deadline_of(c, id, buf), "2026-11-23T04:00:00.000Z green");
    now_ms = at("2026-11-23 11:37"); /* past 96 of 120 minutes */
    CHECK_INT(cases_supervise(c, now_ms, &err), 1);
    CHECK_INT(cases_supervise(c, now_ms + MIN, &err), 0); /* raised once */
    CHECK_STR(deadline_of(c, id, buf), "2026-11-23T04:00:00.000Z yellow");
    now_ms = at("2026-11-23 12:01");
    CHECK_INT(cases_supervise(c, now_ms, &err), 1);
    CHECK_STR(deadline_of(c, id, buf), "2026-11-23T04:00:00.000Z red");
    json_t *out = NULL;
    struct principal admin = who(ROLE_ADMIN, NULL);
    CHECK_INT(cases_supervisions(c, &admin, id, NULL, NULL, NULL, &out, &err), 0);
    json_t *list = json_object_get(out, "supervisions");
    CHECK_INT(json_array_size(list), 2);
    CHECK_STR(json_string_value(json_object_get(json_array_get(list, 0), "level")), "red");
    CHECK_STR(json_string_value(json_object_get(json_array_get(list, 0), "escalated_to")), "admin");
    CHECK_STR(json_string_value(json_object_get(json_array_get(list, 1), "level")), "yellow");
    CHECK_STR(json_string_value(json_object_get(json_array_get(list, 1), "department")), "B");
    json_decref(out);
    struct case_filter f = {.overdue = "1"};
    CHECK_INT(cases_list(c, &admin, &f, now_ms, &out, &err), 0);
    CHECK_INT(json_array_size(json_object_get(out, "cases")), 1);
    json_decref(out);
    /* working time: 占道经营 (4 working hours) reported Friday 17:00 is due Monday 11:00 */
    now_ms = at("2026-11-27 17:00");
    json_decref(report(c, "grid", "09002", 113.3, 35.2, "410802", NULL, slow));
    CHECK_STR(deadline_of(c, slow, buf), "2026-11-30T03:00:00.000Z green");
    now_ms = at("2026-11-29 12:00"); /* Sunday: no working time has passed */
    CHECK_STR(deadline_of(c, slow, buf), "2026-11-30T03:00:00.000Z green");
    now_ms = at("2026-11-30 10:20"); /* 1 h Friday + 2 h 20 Monday = 3 h 20 of 4 h: yellow */
    CHECK_STR(deadline_of(c, slow, buf), "2026-11-30T03:00:00.000Z yellow");
    /* 延期 by 2 working hours: 11:00 + 2 h crosses lunch to 15:00 */
    struct principal dept = who(ROLE_DEPT, "C");
    CHECK_INT(act(c, &dept, slow, "start", NULL, NULL, &err), 0);
    CHECK_INT(act(c, &dept, slow, "extend", json_pack("{s:i, s:s}", "hours", 2, "reason", "等待执法"), NULL, &err), 0);
    CHECK_INT(act(c, &admin, slow, "approve_extension", NULL, NULL, &err), 0);
    CHECK_STR(deadline_of(c, slow, buf), "2026-11-30T07:00:00.000Z green");
    close_city(c);
}

/* Working time can reach 80 % long before natural time does: 9 working hours
 * from Monday 08:00 end Tuesday 09:00, and 80 % of them (7.2 h) are used by
 * Monday 17:12, when only 37 % of the natural span has passed. */
TEST(test_yellow_in_working_time)
{
    cases *c = open_city();
    char id[CASE_ID_MAX], buf[64];
    cb_error err;
    json_t *out = NULL, *body = json_pack("{s:i}", "limit_hours", 9);
    CHECK_INT(cases_category_put(c, "09002", body, &out, &err), 0);
    json_decref(out);
    json_decref(body);
    now_ms = at("2026-11-23 08:00");
    json_decref(report(c, "grid", "09002", 113.3, 35.2, "410802", NULL, id));
    CHECK_STR(deadline_of(c, id, buf), "2026-11-24T01:00:00.000Z green");
    CHECK_INT(cases_supervise(c, at("2026-11-23 17:10"), &err), 0);
    CHECK_INT(cases_supervise(c, at("2026-11-23 17:15"), &err), 1);
    /* a department sees its own supervision records only */
    struct principal mine = who(ROLE_DEPT, "C"), other = who(ROLE_DEPT, "A");
    CHECK_INT(cases_supervisions(c, &mine, NULL, NULL, NULL, NULL, &out, &err), 0);
    CHECK_INT(json_array_size(json_object_get(out, "supervisions")), 1);
    json_decref(out);
    CHECK_INT(cases_supervisions(c, &other, NULL, NULL, NULL, NULL, &out, &err), 0);
    CHECK_INT(json_array_size(json_object_get(out, "supervisions")), 0);
    json_decref(out);
    CHECK_INT(cases_supervisions(c, &mine, NULL, NULL, "0", NULL, &out, &err), CB_EINVALID_FIELD);
    close_city(c);
}

/* The supervision thread starts with the module and stops with it. */
TEST(test_supervision_thread)
{
    cases *c = open_city();
    cases_close(c);
    struct cases_options o = {.data_dir = dir, .city_dir = dir, .file_limit_min = 1, .dispatch_limit_min = 1,
                              .check_limit_min = 1, .supervise_interval_ms = 5};
    cb_error err;
    CHECK_INT(cases_open(&o, &c, &err), 0);
    char id[CASE_ID_MAX];
    now_ms = clock_now_ms() - 10 * 60 * MIN; /* reported ten hours ago: overdue at once */
    json_decref(report(c, "citizen", "05001", 113.3, 35.2, "410802", NULL, id));
    json_t *out = NULL;
    struct principal admin = who(ROLE_ADMIN, NULL);
    int found = 0;
    for (int i = 0; i < 200 && !found; i++) {
        usleep(10000);
        CHECK_INT(cases_supervisions(c, &admin, id, "red", NULL, NULL, &out, &err), 0);
        found = json_array_size(json_object_get(out, "supervisions")) == 1;
        json_decref(out);
    }
    CHECK(found);
    close_city(c);
}

TEST(test_rework_and_rating)
{
    cases *c = open_city();
    char id[CASE_ID_MAX];
    json_t *out = NULL;
    cb_error err;
    struct principal hotline = who(ROLE_HOTLINE, NULL);
    drive(c, CASE_CLOSED, id, 113.1);
    CHECK_INT(act(c, &hotline, id, "evaluate", json_pack("{s:s}", "rating", "不满意"), &out, &err), 0);
    CHECK_STR(status_of(out), "rework");
    CHECK_STR(json_string_value(json_object_get(out, "rating")), "不满意");
    CHECK_INT(json_integer_value(json_object_get(out, "rework_count")), 1);
    CHECK_STR(json_string_value(json_object_get(out, "department")), "A"); /* back to the same department */
    CHECK(json_is_null(json_object_get(out, "closed_at")));
    json_decref(out);
    CHECK_INT(act_ok(c, id, "start", NULL), 0);
    CHECK_INT(act_ok(c, id, "handle", json_pack("{s:s}", "note", "重新修复")), 0);
    CHECK_INT(act_ok(c, id, "check", json_pack("{s:b}", "passed", 0)), 0); /* failed check: rework again */
    CHECK_INT(act_ok(c, id, "handle", NULL), 0);
    CHECK_INT(act_ok(c, id, "check", json_pack("{s:b}", "passed", 1)), 0);
    CHECK_INT(act_ok(c, id, "close", NULL), 0);
    CHECK_INT(act(c, &hotline, id, "evaluate", json_pack("{s:s}", "rating", "满意"), &out, &err), 0);
    CHECK_STR(status_of(out), "evaluated");
    CHECK_INT(json_integer_value(json_object_get(out, "rework_count")), 2);
    CHECK_INT(json_array_size(json_object_get(out, "history")), 17);
    json_decref(out);
    close_city(c);
}

/* A citizen's report with its follow secret: only the secret rates it, only
 * once it is closed, once per closure, as the principal "citizen". */
TEST(test_follow_token_rating)
{
    cases *c = open_city();
    struct principal app = who(ROLE_CITIZEN, NULL);
    char token[CASE_FOLLOW_TOKEN_MAX], other[CASE_FOLLOW_TOKEN_MAX], id[CASE_ID_MAX], plain[CASE_ID_MAX];
    json_t *body = json_pack("{s:s, s:s, s:s, s:f, s:f}", "channel", "citizen", "category", "05001", "description",
                             "宣传栏倒了", "lon", 113.3, "lat", 35.2);
    json_t *out = NULL;
    cb_error err;
    CHECK_INT(cases_intake_followed(c, &app, body, now_ms, token, &out, &err), 0);
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(out, "id")));
    json_decref(out);
    CHECK_INT(strlen(token), 36);
    CHECK(strncmp(token, "cbf_", 4) == 0);
    json_object_set_new(body, "lon", json_real(113.5));
    CHECK_INT(cases_intake_followed(c, &app, body, now_ms, other, &out, &err), 0);
    json_decref(out);
    CHECK(strcmp(token, other) != 0);
    json_object_set_new(body, "channel", json_string("hotline")); /* an app key reports as a citizen only */
    CHECK_INT(cases_intake_followed(c, &app, body, now_ms, other, &out, &err), CB_EFORBIDDEN);
    CHECK_STR(other, "");
    json_decref(body);
    json_decref(report(c, "hotline", "05001", 113.7, 35.2, "410802", NULL, plain));

    json_t *good = json_pack("{s:s, s:s}", "rating", "满意", "note", "很及时");
    CHECK_INT(cases_rate(c, id, token, good, now_ms, &err), CB_ECONFLICT); /* not closed yet */
    CHECK(strstr(err.message, "not closed yet") != NULL);
    CHECK_INT(act_ok(c, id, "accept", NULL), 0);
    CHECK_INT(act_ok(c, id, "file", NULL), 0);
    CHECK_INT(act_ok(c, id, "dispatch", json_pack("{s:s}", "department", "A")), 0);
    CHECK_INT(act_ok(c, id, "start", NULL), 0);
    CHECK_INT(act_ok(c, id, "handle", NULL), 0);
    CHECK_INT(act_ok(c, id, "check", json_pack("{s:b}", "passed", 1)), 0);
    CHECK_INT(act_ok(c, id, "close", NULL), 0);
    CHECK_INT(cases_rate(c, id, NULL, good, now_ms, &err), CB_EFORBIDDEN);
    CHECK_INT(cases_rate(c, id, "", good, now_ms, &err), CB_EFORBIDDEN);
    CHECK_INT(cases_rate(c, id, other, good, now_ms, &err), CB_EFORBIDDEN);
    token[10] ^= 1;
    CHECK_INT(cases_rate(c, id, token, good, now_ms, &err), CB_EFORBIDDEN);
    token[10] ^= 1;
    CHECK_INT(cases_rate(c, plain, token, good, now_ms, &err), CB_EFORBIDDEN); /* a case without a secret */
    CHECK_INT(cases_rate(c, "C20000101-000001", token, good, now_ms, &err), CB_EFORBIDDEN);
    json_t *bad = json_pack("{s:s}", "rating", "还行");
    CHECK_INT(cases_rate(c, id, token, bad, now_ms, &err), CB_EINVALID_FIELD);
    json_decref(bad);
    CHECK_INT(cases_rate(c, id, token, good, now_ms, &err), 0);
    CHECK_INT(cases_rate(c, id, token, good, now_ms, &err), CB_ECONFLICT); /* once */
    CHECK(strstr(err.message, "rated already") != NULL);
    json_decref(good);
    struct principal admin = who(ROLE_ADMIN, NULL);
    CHECK_INT(cases_get(c, &admin, id, now_ms, &out, &err), 0);
    CHECK_STR(status_of(out), "evaluated");
    CHECK_STR(json_string_value(json_object_get(out, "rating")), "满意");
    json_t *history = json_object_get(out, "history");
    json_t *last = json_array_get(history, json_array_size(history) - 1);
    CHECK_STR(json_string_value(json_object_get(last, "action")), "evaluate");
    CHECK_STR(json_string_value(json_object_get(last, "by")), "citizen");
    CHECK_STR(json_string_value(json_object_get(last, "role")), "citizen");
    CHECK_STR(json_string_value(json_object_get(last, "note")), "很及时");
    CHECK_STR(json_string_value(json_object_get(json_array_get(history, 0), "role")), "citizen");
    json_decref(out);
    close_city(c);
}

TEST(test_returned_and_redispatched)
{
    cases *c = open_city();
    char id[CASE_ID_MAX];
    json_t *o = report(c, "hotline", "01002", 113.1, 35.2, "410802", NULL, id);
    CHECK_STR(json_string_value(json_object_get(o, "department")), "A");
    json_decref(o);
    struct principal a = who(ROLE_DEPT, "A"), op = who(ROLE_OPERATOR, NULL);
    cb_error err;
    json_t *out = NULL;
    CHECK_INT(act(c, &a, id, "return", json_pack("{s:s}", "reason", "属供水公司管辖"), &out, &err), 0);
    CHECK_STR(status_of(out), "returned");
    json_decref(out);
    /* routing names A again: the dispatcher must choose */
    CHECK_INT(act(c, &op, id, "dispatch", NULL, NULL, &err), CB_EMISSING_FIELD);
    CHECK_STR(err.field, "department");
    CHECK_INT(act(c, &op, id, "dispatch", json_pack("{s:s}", "department", "nobody"), NULL, &err), CB_EINVALID_FIELD);
    CHECK_INT(act(c, &op, id, "dispatch", json_pack("{s:s}", "department", "B"), &out, &err), 0);
    CHECK_STR(json_string_value(json_object_get(out, "department")), "B");
    CHECK_INT(json_integer_value(json_object_get(out, "return_count")), 1);
    json_decref(out);
    CHECK_INT(cases_get(c, &a, id, now_ms, &out, &err), CB_ENOT_FOUND); /* A no longer sees it */
    close_city(c);
}

TEST(test_alarm_hook)
{
    cases *c = open_city();
    char id[CASE_ID_MAX];
    json_t *alarm = json_pack("{s:s, s:s, s:f, s:f, s:s, s:s, s:s}", "id", "A000123", "message",
                              "水位 3.40 m 超过 3.2 m", "lon", 113.2, "lat", 35.2, "district", "410802", "severity",
                              "critical", "category", "01002");
    CHECK_INT(cases_open_from_alarm(c, alarm, "01002", id, sizeof id), 0);
    json_t *o = NULL;
    cb_error err;
    struct principal p = who(ROLE_OPERATOR, NULL);
    CHECK_INT(cases_get(c, &p, id, clock_now_ms(), &o, &err), 0);
    CHECK_STR(json_string_value(json_object_get(o, "channel")), "sensor");
    CHECK_STR(json_string_value(json_object_get(o, "alarm")), "A000123");
    CHECK_STR(json_string_value(json_object_get(o, "department")), "A");
    CHECK_STR(json_string_value(json_object_get(o, "priority")), "urgent");
    CHECK_STR(json_string_value(json_object_get(json_array_get(json_object_get(o, "history"), 0), "role")), "system");
    json_decref(o);
    CHECK_INT(cases_open_from_alarm(c, alarm, "99999", id, sizeof id), CB_EINVALID_FIELD);
    json_decref(alarm);
    /* a device without a position: the case still opens, named by the device, for a dispatcher */
    alarm = json_pack("{s:s, s:s, s:n, s:n, s:n, s:s}", "id", "A000124", "message", "离线", "lon", "lat", "district",
                      "entity", "pump-7");
    CHECK_INT(cases_open_from_alarm(c, alarm, "01002", id, sizeof id), 0);
    CHECK_INT(cases_get(c, &p, id, clock_now_ms(), &o, &err), 0);
    CHECK_STR(json_string_value(json_object_get(o, "address")), "设备 pump-7");
    CHECK_STR(json_string_value(json_object_get(o, "status")), "dispatched"); /* 01 x * routes without a region */
    json_decref(o);
    json_decref(alarm);
    close_city(c);
}

TEST(test_intake_validation)
{
    cases *c = open_city();
    struct principal grid = who(ROLE_GRID, NULL), admin = who(ROLE_ADMIN, NULL);
    json_t *out = NULL;
    cb_error err;
    struct {
        const char *json;
        int rc;
        const char *field;
    } bad[] = {
        {"{\"category\": \"01001\", \"description\": \"x\", \"address\": \"y\"}", CB_EMISSING_FIELD, "channel"},
        {"{\"channel\": \"fax\", \"category\": \"01001\", \"description\": \"x\", \"address\": \"y\"}",
         CB_EINVALID_FIELD, "channel"},
        {"{\"channel\": \"hotline\", \"description\": \"x\", \"address\": \"y\"}", CB_EMISSING_FIELD, "category"},
        {"{\"channel\": \"hotline\", \"category\": \"01001\", \"description\": \"\", \"address\": \"y\"}",
         CB_EMISSING_FIELD, "description"},
        {"{\"channel\": \"hotline\", \"category\": \"01001\", \"description\": \"x\"}", CB_EMISSING_FIELD, "lon"},
        {"{\"channel\": \"hotline\", \"category\": \"01001\", \"description\": \"x\", \"lon\": 113}",
         CB_EINVALID_FIELD, "lat"},
        {"{\"channel\": \"hotline\", \"category\": \"01001\", \"description\": \"x\", \"lon\": 200, \"lat\": 35}",
         CB_EINVALID_FIELD, "lon"},
        {"{\"channel\": \"hotline\", \"category\": \"01001\", \"description\": \"x\", \"address\": \"y\", "
         "\"media\": [\"http://evil/x.jpg\"]}",
         CB_EINVALID_FIELD, "media"},
        {"{\"channel\": \"hotline\", \"category\": \"01001\", \"description\": \"x\", \"address\": \"y\", "
         "\"priority\": \"asap\"}",
         CB_EINVALID_FIELD, "priority"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *body = json_loads(bad[i].json, 0, NULL);
        CHECK_INT(cases_intake(c, &admin, body, now_ms, &out, &err), bad[i].rc);
        CHECK_STR(err.field, bad[i].field);
        json_decref(body);
    }
    json_t *body = json_pack("{s:s, s:s, s:s, s:s}", "channel", "hotline", "category", "01001", "description", "x",
                             "address", "y");
    CHECK_INT(cases_intake(c, &grid, body, now_ms, &out, &err), CB_EFORBIDDEN); /* grid reports as grid */
    json_object_set_new(body, "channel", json_string("grid"));
    json_object_set_new(body, "media", json_pack("[s]", "/media/0123456789abcdef0123456789abcdef0123456789abcdef01"
                                                        "23456789abcdef.jpg"));
    CHECK_INT(cases_intake(c, &grid, body, now_ms, &out, &err), 0);
    CHECK_STR(json_string_value(json_object_get(out, "id")), "C20261123-000001");
    CHECK_INT(json_array_size(json_object_get(out, "media")), 1);
    json_decref(out);
    CHECK_INT(cases_intake(c, &grid, body, now_ms, &out, &err), 0); /* no location: never a duplicate */
    CHECK_STR(json_string_value(json_object_get(out, "id")), "C20261123-000002");
    json_decref(out);
    now_ms = at("2026-11-24 00:00"); /* numbers start again each (local) day */
    CHECK_INT(cases_intake(c, &grid, body, now_ms, &out, &err), 0);
    CHECK_STR(json_string_value(json_object_get(out, "id")), "C20261124-000001");
    json_decref(out);
    json_decref(body);
    close_city(c);
}

TEST(test_list_search_stats)
{
    cases *c = open_city();
    char id[CASE_ID_MAX], ids[5][CASE_ID_MAX];
    struct principal admin = who(ROLE_ADMIN, NULL);
    const char *texts[] = {"人民路占道经营水果摊", "解放路井盖缺失", "学校门口占道经营", "塔南路小广告",
                           "\"引号\" 和 OR 操作符"};
    for (int i = 0; i < 5; i++) {
        json_t *body = json_pack("{s:s, s:s, s:s, s:s, s:f, s:f}", "channel", i % 2 ? "grid" : "hotline", "category",
                                 i == 1 ? "01002" : "09002", "description", texts[i], "district",
                                 i < 3 ? "410802" : "410803", "lon", 113.0 + i * 0.1, "lat", 35.2);
        json_t *out = NULL;
        cb_error err;
        now_ms += MIN;
        CHECK_INT(cases_intake(c, &admin, body, now_ms, &out, &err), 0);
        snprintf(ids[i], CASE_ID_MAX, "%s", json_string_value(json_object_get(out, "id")));
        json_decref(out);
        json_decref(body);
    }
    (void)id;
    struct {
        struct case_filter f;
        int n;
    } q[] = {
        {{.q = "占道经营"}, 2},  {{.q = "井盖"}, 1}, /* two characters: below the trigram size, still found */
        {{.q = "不存在的事"}, 0}, {{.q = "\"引号\" 和 OR"}, 1}, {{.category = "09"}, 4},
        {{.category = "01002"}, 1}, {{.district = "410803"}, 2}, {{.channel = "grid"}, 2},
        {{.status = "dispatched"}, 5}, {{.status = "open"}, 5}, {{.q = "占道", .district = "410802"}, 2},
        {{.from = "2026-11-23T02:03:00Z"}, 3}, {{.to = "1795399380000"}, 2}, /* 2026-11-23T02:03:00Z in ms */
    };
    for (size_t i = 0; i < sizeof q / sizeof q[0]; i++) {
        json_t *out = NULL;
        cb_error err;
        int rc = cases_list(c, &admin, &q[i].f, now_ms, &out, &err);
        CHECK_INT(rc, 0);
        if (rc == 0 && (int)json_array_size(json_object_get(out, "cases")) != q[i].n)
            fprintf(stderr, "  query %zu: %zu cases, expected %d\n", i, json_array_size(json_object_get(out, "cases")),
                    q[i].n);
        CHECK(rc == 0 && (int)json_array_size(json_object_get(out, "cases")) == q[i].n);
        json_decref(out);
    }
    /* paging: newest first, two at a time, every case once */
    struct case_filter f = {.limit = "2"};
    int seen = 0;
    char cursor[32] = "";
    for (int page = 0; page < 4; page++) {
        json_t *out = NULL;
        cb_error err;
        f.cursor = cursor[0] ? cursor : NULL;
        CHECK_INT(cases_list(c, &admin, &f, now_ms, &out, &err), 0);
        json_t *list = json_object_get(out, "cases");
        for (size_t i = 0; i < json_array_size(list); i++, seen++)
            CHECK_STR(json_string_value(json_object_get(json_array_get(list, i), "id")), ids[4 - seen]);
        const char *next = json_string_value(json_object_get(out, "next_cursor"));
        snprintf(cursor, sizeof cursor, "%s", next ? next : "");
        json_decref(out);
        if (!next)
            break;
    }
    CHECK_INT(seen, 5);
    json_t *out = NULL;
    cb_error err;
    struct case_filter badf = {.status = "lost"};
    CHECK_INT(cases_list(c, &admin, &badf, now_ms, &out, &err), CB_EINVALID_FIELD);
    badf = (struct case_filter){.from = "yesterday"};
    CHECK_INT(cases_list(c, &admin, &badf, now_ms, &out, &err), CB_EINVALID_FIELD);
    CHECK_INT(cases_stats(c, &admin, NULL, now_ms, &out, &err), 0);
    CHECK_INT(json_integer_value(json_object_get(out, "open")), 5);
    CHECK_INT(json_integer_value(json_object_get(json_object_get(out, "by_status"), "dispatched")), 5);
    CHECK_INT(json_integer_value(json_object_get(json_object_get(out, "by_category"), "09002")), 4);
    CHECK_INT(json_integer_value(json_object_get(json_object_get(out, "by_district"), "410803")), 2);
    json_t *hours = json_object_get(out, "by_hour");
    CHECK_INT(json_array_size(hours), 24);
    CHECK_INT(json_integer_value(json_array_get(hours, 23)), 5); /* all in the last hour */
    json_decref(out);
    CHECK_INT(cases_stats(c, &admin, "410803", now_ms, &out, &err), 0);
    CHECK_INT(json_integer_value(json_object_get(out, "open")), 2);
    json_decref(out);
    close_city(c);
}

TEST(test_categories)
{
    cases *c = open_city();
    json_t *out = NULL;
    cb_error err;
    CHECK_INT(cases_categories(c, &out, &err), 0);
    json_t *list = json_object_get(out, "categories");
    CHECK_INT(json_array_size(list), 8); /* 3 components, their 3 fault matters, 2 matters */
    int found = 0;
    for (size_t i = 0; i < json_array_size(list); i++) {
        json_t *k = json_array_get(list, i);
        if (strcmp(json_string_value(json_object_get(k, "code")), "51001") == 0) {
            found = 1;
            CHECK_STR(json_string_value(json_object_get(k, "name")), "上水井盖异常");
            CHECK_STR(json_string_value(json_object_get(k, "component")), "01001");
            CHECK_STR(json_string_value(json_object_get(k, "kind")), "matter");
            CHECK_INT(json_integer_value(json_object_get(k, "limit_minutes")), 120);
            CHECK(json_is_true(json_object_get(k, "natural")));
        }
    }
    CHECK(found);
    json_decref(out);
    /* PUT: change a limit; add a category; refuse nonsense */
    json_t *body = json_pack("{s:i}", "limit_minutes", 1);
    CHECK_INT(cases_category_put(c, "09002", body, &out, &err), 0);
    CHECK_INT(json_integer_value(json_object_get(out, "limit_minutes")), 1);
    CHECK_STR(json_string_value(json_object_get(out, "name")), "占道经营");
    json_decref(out);
    json_decref(body);
    body = json_pack("{s:s, s:s, s:i}", "name", "共享单车乱停放", "urgency", "normal", "limit_hours", 2);
    CHECK_INT(cases_category_put(c, "09008", body, &out, &err), 0);
    CHECK_STR(json_string_value(json_object_get(out, "class_name")), "街面秩序");
    CHECK_STR(json_string_value(json_object_get(out, "kind")), "matter");
    json_decref(out);
    CHECK_INT(cases_category_put(c, "9x", body, &out, &err), CB_EINVALID_FIELD);
    json_decref(body);
    body = json_pack("{s:i}", "limit_hours", 2);
    CHECK_INT(cases_category_put(c, "09009", body, &out, &err), CB_EMISSING_FIELD); /* new: needs a name */
    json_decref(body);
    /* a disabled category is still there: re-enabling it needs no name and keeps its limit */
    body = json_pack("{s:b}", "enabled", 0);
    CHECK_INT(cases_category_put(c, "09002", body, &out, &err), 0);
    CHECK(json_is_false(json_object_get(out, "enabled")));
    json_decref(out);
    json_decref(body);
    body = json_pack("{s:b}", "enabled", 1);
    CHECK_INT(cases_category_put(c, "09002", body, &out, &err), 0);
    CHECK(json_is_true(json_object_get(out, "enabled")));
    CHECK_INT(json_integer_value(json_object_get(out, "limit_minutes")), 1);
    CHECK_STR(json_string_value(json_object_get(out, "name")), "占道经营");
    json_decref(out);
    json_decref(body);
    /* import: all or nothing */
    json_t *file = json_loads("{\"classes\": [{\"code\": \"06\", \"name\": \"市容环境\", \"kind\": \"matter\", "
                              "\"items\": [{\"code\": \"06001\", \"name\": \"私搭乱建\", \"limit_hours\": 40}, "
                              "{\"code\": \"07001\", \"name\": \"错的\", \"limit_hours\": 4}]}]}",
                              0, NULL);
    size_t n = 0;
    CHECK_INT(cases_import_categories(c, file, &n, &err), CB_EINVALID_FIELD);
    CHECK_STR(err.field, "classes[0].items[1]");
    json_decref(file);
    CHECK_INT(cases_categories(c, &out, &err), 0);
    CHECK_INT(json_array_size(json_object_get(out, "categories")), 9); /* unchanged, plus 09008 */
    json_decref(out);
    file = json_loads("{\"faults\": false, \"classes\": [{\"code\": \"01\", \"name\": \"市政公用设施\", \"kind\": "
                      "\"component\", \"items\": [{\"code\": \"01001\", \"name\": \"上水井盖\", \"urgency\": "
                      "\"urgent\", \"limit_hours\": 2}]}]}",
                      0, NULL);
    CHECK_INT(cases_import_categories(c, file, &n, &err), 0);
    CHECK_INT(n, 1);
    json_decref(file);
    close_city(c);
}

/* Threads uploading the same photo at once each write a temporary file of
 * their own: none fails because another renamed "its" file away. */
#define UPLOADERS 4
static const char *upload_dir;
static pthread_barrier_t upload_start;
static unsigned char photo[4096] = {0xFF, 0xD8, 0xFF, 0xE0};

static void *upload_main(void *arg)
{
    int *rc = arg;
    char name[MEDIA_NAME_MAX];
    cb_error err;
    pthread_barrier_wait(&upload_start);
    *rc = media_store(upload_dir, "image/jpeg", photo, sizeof photo, 1 << 20, name, &err);
    return NULL;
}

TEST(test_media_same_photo_at_once)
{
    char name[MEDIA_NAME_MAX], path[160], media[96];
    cb_error err;
    test_make_dir(dir);
    upload_dir = dir;
    CHECK_INT(media_store(dir, "image/jpeg", photo, sizeof photo, 1 << 20, name, &err), 0);
    snprintf(path, sizeof path, "%s/media/%s", dir, name);
    for (int round = 0; round < 30; round++) {
        unlink(path); /* each round stores it anew */
        pthread_t t[UPLOADERS];
        int rc[UPLOADERS];
        pthread_barrier_init(&upload_start, NULL, UPLOADERS);
        for (int i = 0; i < UPLOADERS; i++)
            pthread_create(&t[i], NULL, upload_main, &rc[i]);
        for (int i = 0; i < UPLOADERS; i++) {
            pthread_join(t[i], NULL);
            CHECK_INT(rc[i], 0);
        }
        pthread_barrier_destroy(&upload_start);
        CHECK_INT(access(path, R_OK), 0);
    }
    snprintf(media, sizeof media, "%s/media", dir);
    DIR *d = opendir(media);
    int files = 0;
    for (struct dirent *e; d && (e = readdir(d)) != NULL;)
        files += e->d_name[0] != '.';
    if (d)
        closedir(d);
    CHECK_INT(files, 1); /* the photo, and no temporary file left behind */
    test_remove_dir(media);
    test_remove_dir(dir);
}

TEST_MAIN(test_table_shape, test_every_transition_every_role, test_actions, test_forbidden_transitions, test_department_scope,
          test_masking, test_routing_specificity, test_duplicates, test_deadlines_and_supervision,
          test_yellow_in_working_time, test_supervision_thread,
          test_rework_and_rating, test_follow_token_rating, test_returned_and_redispatched, test_alarm_hook, test_intake_validation,
          test_list_search_stats, test_categories, test_media_same_photo_at_once)
