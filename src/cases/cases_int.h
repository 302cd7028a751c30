/* cases_int — what the files of src/cases share; never included from another
 * folder. The cases struct, the case record and the helpers between
 * cases.c (intake, transitions), case_json.c (rendering, queries),
 * catalog.c (categories, departments, routing, calendar data) and
 * supervise.c (timers, 督办). */
#ifndef CB_CASES_INT_H
#define CB_CASES_INT_H

#include "cases/calendar.h"
#include "cases/cases.h"
#include "cases/workflow.h"

#include <pthread.h>
#include <sqlite3.h>

#define CASE_CODE_MAX 40 /* category, department, district and grid codes */
#define CASES_STMT_CACHE 64 /* prepared statements kept, by SQL text */

/* One cached statement: parsing SQL was half of an intake's time. */
struct stmt_slot {
    char *sql;          /* owned copy of the text; NULL: free slot */
    sqlite3_stmt *st;   /* owned */
    int in_use;         /* handed out by cases__prepare, not yet finished */
    uint64_t last_used; /* for evicting the least recently used */
};

struct cases {
    pthread_mutex_t mu;          /* guards d and every table below */
    db *d;                       /* owned */
    calendar *cal;               /* owned; loaded from calendar_day at open */
    region_store *regions;       /* borrowed */
    events *ev;                  /* borrowed */
    struct cases_options opt;    /* strings borrowed from the caller (the config) */
    pthread_t thread;
    pthread_cond_t wake;
    int running, stopping;
    struct stmt_slot stmts[CASES_STMT_CACHE]; /* guarded by mu, like d */
    uint64_t stmt_clock;
};

/* The workflow-relevant part of a case row (descriptions and reporter stay
 * in SQLite; case_json.c renders them). A plain value. */
struct cb_case {
    char id[CASE_ID_MAX];
    enum case_status status;
    char category[CASE_CODE_MAX], channel[16];
    char department[CASE_CODE_MAX], district[CASE_CODE_MAX], grid[CASE_CODE_MAX];
    char duplicate_of[CASE_ID_MAX], parked_from[16], step[16];
    int64_t created_at, step_started, deadline;
    int64_t file_deadline, dispatch_deadline, handle_deadline;
    int has_deadline, handled_on_time; /* handled_on_time: -1 NULL */
    int extension_minutes, extension_request;
    int rework_count;
};

#define CASE_EVENTS_MAX 8

/* Events of one call, queued during its transaction and published after
 * the commit. types point to static names. */
struct case_events {
    const char *types[CASE_EVENTS_MAX];
    int n;
};

/* The arguments of an action, borrowed from its JSON body. */
struct case_args {
    const char *department; /* dispatch */
    const char *note;       /* every action: why */
    const char *rating;     /* evaluate */
    int minutes;            /* extend */
    const json_t *attachments;
};

/* Who the system acts as: automatic acceptance, routing, duplicate links. */
extern const struct principal cases__system;
/* Who a citizen rating with the follow token acts as (cases_rate). */
extern const struct principal cases__citizen;

/* The follow secret of a citizen's report: token "cbf_<32 hex>" and the
 * BLAKE2b hash of its text, which is all the case keeps. */
#define CASE_FOLLOW_HASH_BYTES 32
void cases__follow_token(char token[CASE_FOLLOW_TOKEN_MAX], unsigned char hash[CASE_FOLLOW_HASH_BYTES]);
/* Stores hash as the case's follow_hash; c->mu held, inside a transaction. */
int cases__set_follow_hash(cases *c, const char *id, const unsigned char hash[CASE_FOLLOW_HASH_BYTES],
                           cb_error *err);

/* The handling limit of a category: minutes and whether natural time. */
struct category_limit {
    int minutes;
    int natural;
    int urgent;
};

/* A statement for sql on the cases connection, from the cache or newly
 * prepared; NULL with err filled. Give it back with cases__finish (which
 * resets it and clears its bindings, or finalizes one the cache has no room
 * for). c->mu held, or the module not yet shared (cases_open). */
sqlite3_stmt *cases__prepare(cases *c, const char *sql, cb_error *err);
void cases__finish(cases *c, sqlite3_stmt *st); /* NULL-safe */
int cases__step_error(cases *c, int rc, const char *what, cb_error *err);
/* Binds text or NULL for "" / NULL. */
void cases__bind_text(sqlite3_stmt *st, int i, const char *s);

/* cases.c: the transition machinery, c->mu held and inside a transaction */
int cases__apply(cases *c, struct cb_case *k, const struct case_transition *t, const struct principal *who,
                 const struct case_args *a, int64_t now, struct case_events *ev, cb_error *err);
int cases__auto_dispatch(cases *c, struct cb_case *k, int64_t now, struct case_events *ev, cb_error *err);
int cases__add_history(cases *c, const char *id, int from, enum case_status to, const char *action,
                       const struct principal *who, const char *department, const char *note,
                       const json_t *attachments, int64_t now, cb_error *err);
/* UPDATE cases SET updated_at = ?2, <set> WHERE id = ?1, with ?3 = text when set uses it. */
int cases__update(cases *c, const char *id, const char *set, int64_t now, const char *text, cb_error *err);
void cases__publish(cases *c, const char *id, const struct case_events *ev, int created);
/* Body fields: optional text of at most max bytes; media URLs from POST /api/v1/media. */
int cases__text_field(const json_t *body, const char *name, size_t max, int required, const char **out,
                      cb_error *err);
int cases__check_media(const json_t *media, const char *field, cb_error *err);

/* catalog.c */
int cases__load_reference(cases *c, cb_error *err); /* first start: city_dir → tables */
int cases__load_calendar(cases *c, cb_error *err);  /* calendar_day → c->cal */
int cases__category_limit(cases *c, const char *code, struct category_limit *out, cb_error *err);
int cases__department_exists(cases *c, const char *code);
/* The department routing names for (category, district, grid): 1 and out
 * filled when exactly one most specific rule matches, 0 when none or
 * ambiguous. */
int cases__route(cases *c, const char *category, const char *district, const char *grid, char *out, size_t n);

/* case_json.c */
int cases__load(cases *c, const char *id, struct cb_case *out, cb_error *err);
/* The case as `who` may see it (NULL who: everything); c->mu held. */
json_t *cases__json(cases *c, const char *id, const struct principal *who, int64_t now, int detail);
int cases__visible(const struct principal *who, const struct cb_case *k);
/* 0 when who may take t on k (t->from being k's state): k visible to who
 * (dept: its own department's cases), who's role among t->roles, a grid
 * worker's case inside its area, unlink only of a linked duplicate; else the
 * CB_E* code with err filled (err may be NULL). Drives the transitions and
 * the "actions" of a case. */
int cases__may(const struct principal *who, const struct cb_case *k, const struct case_transition *t,
               cb_error *err);
const char *cases__step_of(enum case_status s); /* "file", "dispatch", "handle", "check" or NULL */

/* supervise.c */
int cases__supervise_start(cases *c, cb_error *err);
void cases__supervise_stop(cases *c);
/* Timer colour of the running step at now: "green", "yellow" or "red". */
const char *cases__timer(cases *c, const char *step, const char *category, int64_t started, int64_t deadline,
                         int64_t now);
int cases__supervision_add(cases *c, const struct cb_case *k, const char *level, const char *note, int64_t now,
                           cb_error *err);

#endif
