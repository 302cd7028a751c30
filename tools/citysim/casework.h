/* casework — the people who work the cases, through the cases API with
 * their own role keys (staff.h):
 *   the operations centre (operator)  accepts citizens' reports, files them,
 *       dispatches what routing left open and re-dispatches what a
 *       department returned, approves 延期, checks the handling (sometimes
 *       it fails: 返工) and closes;
 *   grid workers (grid)                check half of the handled cases in
 *       their district;
 *   the departments (dept)             start and handle what they were
 *       dispatched, sometimes return it (回退, with a reason), ask for more
 *       time or let the deadline pass;
 *   12345 回访 (hotline)               records the reporter's rating, mostly
 *       满意 (不满意 reopens the case as 返工).
 *
 * Every few seconds it lists the cases waiting in each state (GET
 * /api/v1/cases?status=) and acts on those whose delay is up. The delay and
 * every decision are a hash of (case, state, time of its last change), so
 * they need no memory, survive a restart and never act twice on one step;
 * delays are realistic minutes divided by the pace. --once acts without
 * delay, repeating until nothing waits, and shows each side path (回退,
 * 返工) once. */
#ifndef CITYSIM_CASEWORK_H
#define CITYSIM_CASEWORK_H

#include <stddef.h>
#include <stdint.h>

#include "api.h"
#include "city.h"
#include "staff.h"

struct casework_counters {
    unsigned long actions;   /* transitions made */
    unsigned long conflicts; /* 409: someone else was faster; fine */
    unsigned long failed;    /* anything else */
    unsigned long returned, reworked, closed, evaluated;
};

typedef struct {
    double pace;          /* delays are divided by it */
    int once;             /* act at once, each side path once */
    int64_t next_poll_ms;
    struct casework_counters n;
} casework;

void casework_init(casework *w, double pace, int once, int64_t now_ms);
/* When the poll is due: one pass over the waiting cases (--once: passes
 * until none acts). Returns the actions taken. */
unsigned long casework_tick(casework *w, api *a, const city *ct, const staff *st, int64_t now_ms);

#endif
