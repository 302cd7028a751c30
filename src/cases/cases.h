/* cases — the unified case centre (一体运行联动, DESIGN.md §7): intake from
 * every channel (12345 hotline, grid workers, sensors' alarms, citizens,
 * departments), the workflow of workflow.h, routing to departments
 * (catalog.h), deadlines from the city calendar (calendar.h), 督办
 * supervision of the timers, duplicates, ratings and full-text search.
 *
 * A cases handle owns its own SQLite connection (opened on data_dir) behind
 * a mutex, so the HTTP thread, the supervision thread and the rules module's
 * alarm hook may call it concurrently. Every function that depends on time
 * takes `now` (ms since the epoch) so tests inject the clock; only the
 * supervision thread reads the wall clock itself.
 *
 * Storage (migration 6, see cases_schema_sql): tables case_category,
 * department, routing, calendar_day, cases, case_history, supervision,
 * case_fts; migration 8 adds cases.follow_hash. All times are ms since the
 * epoch (UTC); NULL = not (yet).
 *
 * Ownership: every `json_t **out` receives a new reference the caller
 * json_decrefs; on error there is nothing to free. Functions return 0 or a
 * CB_E* code with err filled (field and message). `who` is borrowed. */
#ifndef CB_CASES_H
#define CB_CASES_H

#include "auth/role.h"
#include "core/err.h"
#include "events/events.h"
#include "geo/region_store.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

typedef struct cases cases;

#define CASE_ID_MAX 24 /* "C20261123-000042" + NUL, with room */
#define CASE_FOLLOW_TOKEN_MAX 40 /* "cbf_" + 32 hex digits + NUL, with room */

/* The SQL of migration 6 (src/store/migrations.c). */
extern const char cases_schema_sql[];

struct cases_options {
    const char *data_dir;        /* the store; cases opens a connection of its own */
    const char *city_dir;        /* reference data loaded on first start (categories.json,
                                    departments.json, routing.json, calendar-*.json); NULL or
                                    missing files: start empty (logged) */
    region_store *regions;       /* borrowed; NULL: cases are not located */
    events *events;              /* borrowed; NULL: no events published */
    double duplicate_radius_m;   /* same category within this distance ... */
    int64_t duplicate_window_ms; /* ... and this time of an open case is a duplicate */
    int file_limit_min;          /* 受理+立案: minutes, natural time, from intake */
    int dispatch_limit_min;      /* 派遣: minutes, natural time, from filing or return */
    int check_limit_min;         /* 核查: working minutes from the handling feedback */
    int supervise_interval_ms;   /* timer pass period; 0: no thread (call cases_supervise) */
};

/* Opens the module; *out owned by the caller (cases_close). */
int cases_open(const struct cases_options *opt, cases **out, cb_error *err);
void cases_close(cases *c); /* NULL-safe; stops the supervision thread */

/* Intake (POST /api/v1/cases). body: {"channel", "category", "description",
 * "address"?, "lon"?, "lat"?, "district"?, "grid"?, "reporter": {"name","phone"}?,
 * "media": ["/media/<sha>.jpg", ...]?, "priority"?, "alarm"?}. Channels other
 * than citizen are accepted and filed at once; a filed case is dispatched
 * when routing names exactly one department; a duplicate of an open case is
 * linked (status rejected, duplicate_of set) instead. *out: the case as `who`
 * may see it (caller owns). */
int cases_intake(cases *c, const struct principal *who, const json_t *body, int64_t now, json_t **out,
                 cb_error *err);

/* cases_intake for a report its citizen follows themself (Open311 POST):
 * also makes a random follow secret, stores only its BLAKE2b hash with the
 * case (column follow_hash, migration 8) and writes the secret into token
 * ("cbf_<32 hex>", shown once; "" on error). With it the citizen may rate
 * the case once closed (cases_rate). */
int cases_intake_followed(cases *c, const struct principal *who, const json_t *body, int64_t now,
                          char token[CASE_FOLLOW_TOKEN_MAX], json_t **out, cb_error *err);

/* The citizen's rating of their own case, with the follow secret from
 * cases_intake_followed: the workflow's evaluate action (不满意 reopens the
 * case as rework) acting as the principal "citizen" (role citizen), with
 * comment (may be NULL) as the note. body: {"rating", "note"?} as for
 * evaluate. CB_EFORBIDDEN when token is missing or not the case's (also for
 * an unknown case or one without a token: the answer says nothing about
 * which); then CB_ECONFLICT unless the case is closed (the message says
 * whether it is still being handled or rated already); CB_EINVALID_FIELD for
 * a bad rating. The checks and the transition run under the module's lock. */
int cases_rate(cases *c, const char *id, const char *token, const json_t *body, int64_t now, cb_error *err);

/* The alarm hook for the rules module: opens a case (channel sensor) at the
 * alarm's lon/lat/district/grid with its message as the description and
 * "alarm" set to the alarm's id. case_id receives the new (or linked) id. */
int cases_open_from_alarm(cases *c, const json_t *alarm, const char *category, char *case_id, size_t n);

/* One workflow action (POST /api/v1/cases/{id}/{action}); body may be NULL.
 * Errors: CB_ENOT_FOUND (no such case, or outside a dept principal's scope),
 * CB_EFORBIDDEN (role not allowed), CB_ECONFLICT (not allowed in the current
 * state: the message names the state and the allowed actions). */
int cases_transition(cases *c, const struct principal *who, const char *id, const char *action,
                     const json_t *body, int64_t now, json_t **out, cb_error *err);

/* One case with "history" and "media" (caller owns *out). */
int cases_get(cases *c, const struct principal *who, const char *id, int64_t now, json_t **out,
              cb_error *err);

/* Filters of GET /api/v1/cases as text from the query; NULL = unset. */
struct case_filter {
    const char *status, *category, *department, *district, *grid, *channel;
    const char *q;        /* full text over description and address (FTS5 trigram) */
    const char *from, *to; /* created_at range: RFC 3339 or epoch ms */
    const char *overdue;  /* "1": only cases past their current step's deadline */
    const char *limit, *cursor;
};

/* {"cases": [...], "next_cursor": ...}; newest first. */
int cases_list(cases *c, const struct principal *who, const struct case_filter *f, int64_t now,
               json_t **out, cb_error *err);
/* {"open", "overdue", "by_status", "by_category", "by_district", "by_hour"[24]}. */
int cases_stats(cases *c, const struct principal *who, const char *district, int64_t now, json_t **out,
                cb_error *err);

/* One pass over the open cases' timers: yellow at 80 %, red at 100 % of the
 * current step's limit; each new level stores a supervision record and
 * publishes supervision.yellow/.red. Returns how many were raised (>= 0) or
 * a CB_E* code. */
int cases_supervise(cases *c, int64_t now, cb_error *err);
/* {"supervisions": [...], "next_cursor"}, newest first; filters may be NULL.
 * A dept principal sees its own department's records only. */
int cases_supervisions(cases *c, const struct principal *who, const char *case_id, const char *level,
                       const char *limit, const char *cursor, json_t **out, cb_error *err);

/* Reference data. cases_category_put changes the fields given (or adds the
 * category); cases_routing_put replaces the whole table, validated first. */
int cases_categories(cases *c, json_t **out, cb_error *err);
int cases_category_put(cases *c, const char *code, const json_t *body, json_t **out, cb_error *err);
/* Imports a categories file (format in README "Cases"); all or nothing. */
int cases_import_categories(cases *c, const json_t *file, size_t *count, cb_error *err);
int cases_departments(cases *c, json_t **out, cb_error *err);
int cases_routing(cases *c, json_t **out, cb_error *err);
int cases_routing_put(cases *c, const json_t *body, json_t **out, cb_error *err); /* {"rules":[...]} */

/* Caller name and phone as `who` may see them: hotline and admin see them
 * whole, everyone else (and a NULL who) 张** and 138****5678 (a number of
 * 7 to 10 digits ****78, a shorter one ****). out has n bytes (NUL-terminated). */
void cases_mask_name(const char *name, char *out, size_t n);
void cases_mask_phone(const char *phone, char *out, size_t n);
int cases_sees_reporter(const struct principal *who);

#endif
