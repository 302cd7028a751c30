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

#endif
