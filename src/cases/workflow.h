/* workflow — the case workflow of DESIGN.md §7 as one table (STYLE 18):
 * (from state, action, to state, roles). The code, the 409 messages naming
 * the allowed actions, `citybrain cases workflow` and the README's table all
 * come from it. Pure data and lookups; no I/O. */
#ifndef CB_WORKFLOW_H
#define CB_WORKFLOW_H

#include "auth/role.h"

#include <stddef.h>

enum case_status {
    CASE_REPORTED,    /* 上报 */
    CASE_ACCEPTED,    /* 受理 */
    CASE_FILED,       /* 立案 */
    CASE_DISPATCHED,  /* 派遣 */
    CASE_IN_PROGRESS, /* 处置 */
    CASE_HANDLED,     /* 处置反馈 */
    CASE_CHECKED,     /* 核查 */
    CASE_CLOSED,      /* 结案 */
    CASE_EVALUATED,   /* 回访/评价 */
    CASE_REJECTED,    /* 不予受理/作废 (also merged duplicates) */
    CASE_RETURNED,    /* 回退: back to the dispatcher */
    CASE_EXTENDED,    /* 延期申请中 */
    CASE_PARKED,      /* 挂账 */
    CASE_REWORK,      /* 返工 */
    CASE_STATUS_COUNT,
    CASE_PREVIOUS = -1 /* a table `to`: the state the case was parked from */
};

struct case_transition {
    enum case_status from;
    const char *action;
    int to;          /* enum case_status or CASE_PREVIOUS */
    unsigned roles;  /* ROLE_BIT mask */
    const char *summary;
};

extern const struct case_transition case_transitions[];
extern const size_t case_transition_count;

const char *case_status_name(enum case_status s);  /* "dispatched" */
const char *case_status_label(enum case_status s); /* "已派遣" */
int case_status_parse(const char *name);           /* enum value or -1 */
int case_status_open(enum case_status s);          /* 1 unless closed, evaluated or rejected */

/* The row for (from, action) whose `to` is `to` (-2: the first row of the
 * pair); NULL when the action is not allowed in `from` at all. */
const struct case_transition *case_transition_find(enum case_status from, const char *action, int to);
/* 1 if any row has this action. */
int case_action_known(const char *action);
/* "accept, reject" — the actions `role` may take in `from` (all roles when
 * role < 0); returns out. */
const char *case_actions_allowed(enum case_status from, int role, char *out, size_t n);
/* The rows of those actions, each action once (check's two outcomes are one),
 * in table order: up to n pointers into case_transitions in out; returns how
 * many. */
size_t case_actions_for(enum case_status from, int role, const struct case_transition **out, size_t n);

/* What an action is called and what its body takes: the case desk builds
 * its buttons and forms from these (GET /api/v1/cases/{id} "actions"), and
 * cases.c reads the body by them. One row per action of case_transitions,
 * plus "report" (intake, history only). */
#define CASE_ACTION_FIELDS 3
struct case_action {
    const char *action;                    /* "dispatch" */
    const char *name;                      /* "派遣": the button */
    const char *needs[CASE_ACTION_FIELDS]; /* body fields the form asks for, in order; NULL ends */
    unsigned required;                     /* bit i: needs[i] must be given */
};

extern const struct case_action case_actions[];
extern const size_t case_action_count;

const struct case_action *case_action_info(const char *action); /* NULL: no such action */
/* 0: the action does not take field; 1: optional; 2: required. */
int case_action_field(const struct case_action *a, const char *field);

#endif
