/* workflow — the one transition table; see workflow.h. Admin may take every
 * action; the other roles as DESIGN.md §7 assigns the work: the operations
 * centre (operator) accepts, files, dispatches, checks, closes and
 * supervises; departments (dept) start, handle, return and ask for more
 * time; grid workers check in their area; 12345 operators (hotline) accept
 * calls and record the caller's rating; a citizen rates their own closed
 * case (only through Open311 with the request's follow token: no route lets
 * a citizen key call the case API). */
#include "cases/workflow.h"

#include <stdio.h>
#include <string.h>

#define ADMIN ROLE_BIT(ROLE_ADMIN)
#define OPS (ADMIN | ROLE_BIT(ROLE_OPERATOR))
#define INTAKE (OPS | ROLE_BIT(ROLE_HOTLINE))
#define DEPT (ADMIN | ROLE_BIT(ROLE_DEPT))
#define CHECKERS (OPS | ROLE_BIT(ROLE_GRID))
#define RATERS (INTAKE | ROLE_BIT(ROLE_CITIZEN))

const struct case_transition case_transitions[] = {
    {CASE_REPORTED, "accept", CASE_ACCEPTED, INTAKE, "受理: the report is a case for the city"},
    {CASE_REPORTED, "reject", CASE_REJECTED, INTAKE, "不予受理: not a case (note says why)"},
    {CASE_ACCEPTED, "file", CASE_FILED, OPS, "立案: filed; dispatched at once when routing is unambiguous"},
    {CASE_ACCEPTED, "reject", CASE_REJECTED, OPS, "作废"},
    {CASE_FILED, "dispatch", CASE_DISPATCHED, OPS, "派遣 to {department} (or the routed one)"},
    {CASE_FILED, "reject", CASE_REJECTED, OPS, "作废"},
    {CASE_FILED, "park", CASE_PARKED, OPS, "挂账: cannot be handled now"},
    {CASE_RETURNED, "dispatch", CASE_DISPATCHED, OPS, "派遣 again, to another department"},
    {CASE_RETURNED, "reject", CASE_REJECTED, OPS, "作废"},
    {CASE_RETURNED, "park", CASE_PARKED, OPS, "挂账"},
    {CASE_DISPATCHED, "start", CASE_IN_PROGRESS, DEPT, "处置 begins"},
    {CASE_DISPATCHED, "return", CASE_RETURNED, DEPT, "回退: not this department's job {reason}"},
    {CASE_DISPATCHED, "dispatch", CASE_DISPATCHED, OPS, "改派 to another department"},
    {CASE_DISPATCHED, "park", CASE_PARKED, OPS, "挂账"},
    {CASE_DISPATCHED, "supervise", CASE_DISPATCHED, OPS, "督办 by hand {note}"},
    {CASE_IN_PROGRESS, "handle", CASE_HANDLED, DEPT, "处置反馈 {note, attachments}"},
    {CASE_IN_PROGRESS, "return", CASE_RETURNED, DEPT, "回退 {reason}"},
    {CASE_IN_PROGRESS, "extend", CASE_EXTENDED, DEPT, "延期 requested {hours, reason}"},
    {CASE_IN_PROGRESS, "park", CASE_PARKED, OPS, "挂账"},
    {CASE_IN_PROGRESS, "supervise", CASE_IN_PROGRESS, OPS, "督办 by hand"},
    {CASE_EXTENDED, "approve_extension", CASE_IN_PROGRESS, OPS, "延期 approved: the deadline moves"},
    {CASE_EXTENDED, "deny_extension", CASE_IN_PROGRESS, OPS, "延期 denied"},
    {CASE_EXTENDED, "handle", CASE_HANDLED, DEPT, "处置反馈 while the request is pending"},
    {CASE_EXTENDED, "supervise", CASE_EXTENDED, OPS, "督办 by hand"},
    {CASE_REWORK, "start", CASE_IN_PROGRESS, DEPT, "返工 begins"},
    {CASE_REWORK, "handle", CASE_HANDLED, DEPT, "处置反馈 of the rework"},
    {CASE_REWORK, "supervise", CASE_REWORK, OPS, "督办 by hand"},
    {CASE_HANDLED, "check", CASE_CHECKED, CHECKERS, "核查 passed {passed: true}"},
    {CASE_HANDLED, "check", CASE_REWORK, CHECKERS, "核查 failed {passed: false}: 返工, same department"},
    {CASE_CHECKED, "close", CASE_CLOSED, OPS, "结案"},
    {CASE_CLOSED, "evaluate", CASE_EVALUATED, RATERS, "回访/评价 {rating}; 不满意 reopens as rework"},
    {CASE_CLOSED, "reopen", CASE_REWORK, OPS, "reopened: 返工"},
    {CASE_EVALUATED, "reopen", CASE_REWORK, INTAKE, "reopened after 不满意: 返工"},
    {CASE_REJECTED, "reopen", CASE_ACCEPTED, OPS, "wrongly rejected: accepted again"},
    {CASE_REJECTED, "unlink", CASE_FILED, OPS, "not a duplicate after all: filed and routed"},
    {CASE_PARKED, "unpark", CASE_PREVIOUS, OPS, "back to the state it was parked from"},
};

const size_t case_transition_count = sizeof case_transitions / sizeof case_transitions[0];

#define REQ(i) (1u << (i))

const struct case_action case_actions[] = {
    {"report", "上报", {NULL}, 0},
    {"accept", "受理", {NULL}, 0},
    {"reject", "不予受理/作废", {"note"}, REQ(0)},
    {"file", "立案", {NULL}, 0},
    {"dispatch", "派遣", {"department"}, 0},
    {"return", "回退", {"reason"}, REQ(0)},
    {"start", "开始处置", {NULL}, 0},
    {"handle", "处置反馈", {"note"}, 0},
    {"extend", "申请延期", {"hours", "reason"}, REQ(0) | REQ(1)},
    {"approve_extension", "批准延期", {NULL}, 0},
    {"deny_extension", "驳回延期", {NULL}, 0},
    {"supervise", "督办", {"note"}, 0},
    {"check", "核查", {"passed", "note"}, REQ(0)},
    {"close", "结案", {NULL}, 0},
    {"evaluate", "回访评价", {"rating"}, REQ(0)},
    {"park", "挂账", {"note"}, 0},
    {"unpark", "取消挂账", {NULL}, 0},
    {"reopen", "重新办理", {"note"}, 0},
    {"unlink", "取消合并", {NULL}, 0},
};

const size_t case_action_count = sizeof case_actions / sizeof case_actions[0];

static const char *const status_names[CASE_STATUS_COUNT] = {
    "reported", "accepted", "filed",    "dispatched", "in_progress", "handled", "checked",
    "closed",   "evaluated", "rejected", "returned",   "extended",    "parked",  "rework"};
static const char *const status_labels[CASE_STATUS_COUNT] = {
    "已上报", "已受理", "已立案", "已派遣", "处置中", "已处置", "已核查",
    "已结案", "已评价", "不予受理", "已回退", "延期申请中", "挂账", "返工"};

const char *case_status_name(enum case_status s)
{
    return (unsigned)s < CASE_STATUS_COUNT ? status_names[s] : "unknown";
}

const char *case_status_label(enum case_status s)
{
    return (unsigned)s < CASE_STATUS_COUNT ? status_labels[s] : "未知";
}

int case_status_parse(const char *name)
{
    for (int i = 0; name && i < CASE_STATUS_COUNT; i++)
        if (strcmp(name, status_names[i]) == 0)
            return i;
    return -1;
}

int case_status_open(enum case_status s)
{
    return s != CASE_CLOSED && s != CASE_EVALUATED && s != CASE_REJECTED;
}

const struct case_transition *case_transition_find(enum case_status from, const char *action, int to)
{
    for (size_t i = 0; i < case_transition_count; i++) {
        const struct case_transition *t = &case_transitions[i];
        if (t->from == from && strcmp(t->action, action) == 0 && (to == -2 || t->to == to))
            return t;
    }
    return NULL;
}

int case_action_known(const char *action)
{
    for (size_t i = 0; i < case_transition_count; i++)
        if (strcmp(case_transitions[i].action, action) == 0)
            return 1;
    return 0;
}

size_t case_actions_for(enum case_status from, int role, const struct case_transition **out, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < case_transition_count && k < n; i++) {
        const struct case_transition *t = &case_transitions[i];
        if (t->from != from || (role >= 0 && !(t->roles & ROLE_BIT(role))))
            continue;
        if (i > 0 && case_transitions[i - 1].from == from && strcmp(case_transitions[i - 1].action, t->action) == 0)
            continue; /* one name for the two outcomes of check */
        out[k++] = t;
    }
    return k;
}

const char *case_actions_allowed(enum case_status from, int role, char *out, size_t n)
{
    const struct case_transition *rows[16];
    size_t count = case_actions_for(from, role, rows, sizeof rows / sizeof rows[0]);
    size_t len = 0;
    out[0] = '\0';
    for (size_t i = 0; i < count; i++) {
        int w = snprintf(out + len, n - len, "%s%s", len ? ", " : "", rows[i]->action);
        if (w < 0 || (size_t)w >= n - len)
            break;
        len += (size_t)w;
    }
    return out;
}

const struct case_action *case_action_info(const char *action)
{
    for (size_t i = 0; action && i < case_action_count; i++)
        if (strcmp(case_actions[i].action, action) == 0)
            return &case_actions[i];
    return NULL;
}

int case_action_field(const struct case_action *a, const char *field)
{
    for (int i = 0; a && i < CASE_ACTION_FIELDS && a->needs[i]; i++)
        if (strcmp(a->needs[i], field) == 0)
            return a->required & (1u << i) ? 2 : 1;
    return 0;
}
