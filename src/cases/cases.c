/* cases — open/close and the workflow's transitions (intake.c creates the
 * cases); see cases.h. Each API call is one SQLite transaction under the
 * module's mutex; events are published after the commit, so a subscriber
 * never sees a transition that was rolled back. */
#include "cases/cases_int.h"

#include "core/clock.h"

#include <assert.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MEDIA_PER_CASE 9

const struct principal cases__system = {.id = "system", .role = ROLE_ADMIN, .name = "system"};
const struct principal cases__citizen = {.id = "citizen", .role = ROLE_CITIZEN, .name = "市民"};

/* ---- SQLite helpers shared by the module's files ---- */

sqlite3_stmt *cases__prepare(cases *c, const char *sql, cb_error *err)
{
    struct stmt_slot *victim = NULL;
    for (int i = 0; i < CASES_STMT_CACHE; i++) {
        struct stmt_slot *s = &c->stmts[i];
        if (s->sql && !s->in_use && strcmp(s->sql, sql) == 0) {
            s->in_use = 1;
            s->last_used = ++c->stmt_clock;
            return s->st;
        }
        if (!s->in_use && (!victim || !s->sql || (victim->sql && s->last_used < victim->last_used)))
            victim = s;
    }
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v3(db_sqlite(c->d), sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
    if (rc != SQLITE_OK) {
        db_error(c->d, rc, "preparing a case query", err);
        sqlite3_finalize(st);
        return NULL;
    }
    char *copy = victim ? strdup(sql) : NULL;
    if (copy) {
        free(victim->sql);
        sqlite3_finalize(victim->st);
        *victim = (struct stmt_slot){copy, st, 1, ++c->stmt_clock};
    }
    return st;
}

void cases__finish(cases *c, sqlite3_stmt *st)
{
    if (!st)
        return;
    for (int i = 0; i < CASES_STMT_CACHE; i++) {
        if (c->stmts[i].st == st) {
            assert(c->stmts[i].in_use);
            sqlite3_reset(st);
            sqlite3_clear_bindings(st);
            c->stmts[i].in_use = 0;
            return;
        }
    }
    sqlite3_finalize(st);
}

static void stmt_cache_free(cases *c)
{
    for (int i = 0; i < CASES_STMT_CACHE; i++) {
        assert(!c->stmts[i].in_use);
        sqlite3_finalize(c->stmts[i].st);
        free(c->stmts[i].sql);
        c->stmts[i] = (struct stmt_slot){NULL, NULL, 0, 0};
    }
}

int cases__step_error(cases *c, int rc, const char *what, cb_error *err)
{
    return db_error(c->d, rc, what, err);
}

void cases__bind_text(sqlite3_stmt *st, int i, const char *s)
{
    if (s && *s)
        sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, i);
}

/* ---- open, close ---- */

int cases_open(const struct cases_options *opt, cases **out, cb_error *err)
{
    cases *c = calloc(1, sizeof *c);
    if (!c)
        return cb_error_set(err, CB_ENOMEM, NULL, "cases");
    c->opt = *opt;
    c->regions = opt->regions;
    c->ev = opt->events;
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->wake, NULL);
    int rc = db_open(opt->data_dir, &c->d, err);
    if (rc == 0)
        rc = cases__load_reference(c, err);
    if (rc == 0)
        rc = cases__load_calendar(c, err);
    if (rc == 0 && opt->supervise_interval_ms > 0)
        rc = cases__supervise_start(c, err);
    if (rc != 0) {
        cases_close(c);
        return rc;
    }
    *out = c;
    return 0;
}

void cases_close(cases *c)
{
    if (!c)
        return;
    cases__supervise_stop(c);
    stmt_cache_free(c);
    db_close(c->d);
    calendar_free(c->cal);
    pthread_cond_destroy(&c->wake);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

/* ---- masking ---- */

int cases_sees_reporter(const struct principal *who)
{
    return who && (who->role == ROLE_ADMIN || who->role == ROLE_HOTLINE);
}

void cases_mask_name(const char *name, char *out, size_t n)
{
    assert(n > 0);
    size_t first = 1, len = strlen(name), j = 0;
    while (first < len && ((unsigned char)name[first] & 0xC0) == 0x80)
        first++; /* the whole first UTF-8 character */
    if (len == 0 || first + 1 > n) {
        out[0] = '\0';
        return;
    }
    memcpy(out, name, first);
    j = first;
    for (size_t i = first; i < len && j + 1 < n; i++)
        if (((unsigned char)name[i] & 0xC0) != 0x80)
            out[j++] = '*';
    if (j == first && j + 1 < n)
        out[j++] = '*'; /* a one-character name still shows it is masked */
    out[j] = '\0';
}

/* Never more than half the digits: a mobile number (11 digits, or more
 * with a country code) keeps its first 3 and last 4, a shorter number its
 * last 2, a very short one nothing. */
void cases_mask_phone(const char *phone, char *out, size_t n)
{
    size_t len = strlen(phone);
    if (len >= 11)
        snprintf(out, n, "%.3s****%s", phone, phone + len - 4);
    else if (len >= 7)
        snprintf(out, n, "****%s", phone + len - 2);
    else
        snprintf(out, n, "%s", len ? "****" : "");
}

/* ---- deadlines ---- */

static int64_t add_minutes(cases *c, int64_t t, int minutes, int natural)
{
    return natural ? calendar_add_natural(t, minutes) : calendar_add_working(c->cal, t, minutes);
}

/* Starts the timer of step (or stops it when step is NULL) in the case row. */
static int set_step(cases *c, const char *id, const char *step, int64_t start, int64_t deadline, cb_error *err)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "UPDATE cases SET step = ?2, step_started = ?3, deadline = ?4, timer = 'green'%s%s%s WHERE id = ?1",
             step ? ", " : "", step ? step : "", step ? "_deadline = ?4" : "");
    sqlite3_stmt *st = cases__prepare(c, sql, err);
    if (!st)
        return err ? err->code : CB_EINTERNAL;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    cases__bind_text(st, 2, step);
    if (step) {
        sqlite3_bind_int64(st, 3, start);
        sqlite3_bind_int64(st, 4, deadline);
    }
    int rc = sqlite3_step(st);
    cases__finish(c, st);
    return rc == SQLITE_DONE ? 0 : cases__step_error(c, rc, "setting the case timer", err);
}

static int start_handle_timer(cases *c, const struct cb_case *k, int64_t now, int extension, cb_error *err)
{
    struct category_limit lim;
    int rc = cases__category_limit(c, k->category, &lim, err);
    if (rc != 0)
        return rc;
    return set_step(c, k->id, "handle", now, add_minutes(c, now, lim.minutes + extension, lim.natural), err);
}

/* ---- history and updates ---- */

int cases__add_history(cases *c, const char *id, int from, enum case_status to, const char *action,
                       const struct principal *who, const char *department, const char *note,
                       const json_t *attachments, int64_t now, cb_error *err)
{
    sqlite3_stmt *st = cases__prepare(c,
                                      "INSERT INTO case_history (case_id, from_status, to_status, action, by_id, "
                                      "by_role, at, department, note, attachments) VALUES (?,?,?,?,?,?,?,?,?,?)",
                                      err);
    if (!st)
        return err ? err->code : CB_EINTERNAL;
    char *att = json_is_array(attachments) ? json_dumps(attachments, JSON_COMPACT) : NULL;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    cases__bind_text(st, 2, from >= 0 ? case_status_name((enum case_status)from) : NULL);
    sqlite3_bind_text(st, 3, case_status_name(to), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, action, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 5, who->id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 6, who == &cases__system ? "system" : role_name(who->role), -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 7, now);
    cases__bind_text(st, 8, department);
    sqlite3_bind_text(st, 9, note ? note : "", -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 10, att ? att : "[]", -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    cases__finish(c, st);
    free(att);
    return rc == SQLITE_DONE ? 0 : cases__step_error(c, rc, "recording the transition", err);
}

/* Runs one UPDATE of the case with ?1 = id, ?2 = now and one optional text ?3. */
int cases__update(cases *c, const char *id, const char *set, int64_t now, const char *text, cb_error *err)
{
    char sql[640];
    snprintf(sql, sizeof sql, "UPDATE cases SET updated_at = ?2, %s WHERE id = ?1", set);
    sqlite3_stmt *st = cases__prepare(c, sql, err);
    if (!st)
        return err ? err->code : CB_EINTERNAL;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, now);
    if (sqlite3_bind_parameter_count(st) >= 3)
        cases__bind_text(st, 3, text);
    int rc = sqlite3_step(st);
    cases__finish(c, st);
    return rc == SQLITE_DONE ? 0 : cases__step_error(c, rc, "updating the case", err);
}

/* ---- the effects of each transition on the row ---- */

static int effects(cases *c, struct cb_case *k, const struct case_transition *t, enum case_status to,
                   const struct case_args *a, int64_t now, cb_error *err)
{
    const char *id = k->id;
    int rc = 0;
    if (strcmp(t->action, "supervise") == 0) /* 督办 changes no state; cases__apply() records it */
        return cases__update(c, id, "status = status", now, NULL, err);
    switch (to) {
    case CASE_ACCEPTED:
        rc = cases__update(c, id, "status = 'accepted', accepted_at = coalesce(accepted_at, ?2)", now, NULL, err);
        if (rc == 0 && k->status == CASE_REJECTED) /* reopened: the intake clock starts again */
            rc = set_step(c, id, "file", now, calendar_add_natural(now, c->opt.file_limit_min), err);
        break;
    case CASE_FILED:
        rc = cases__update(c, id,
                         "status = 'filed', filed_at = ?2, duplicate_of = NULL, accepted_at = coalesce(accepted_at, "
                         "?2), filed_on_time = coalesce(filed_on_time, CASE WHEN file_deadline IS NULL OR ?2 <= "
                         "file_deadline THEN 1 ELSE 0 END)",
                         now, NULL, err);
        if (rc == 0)
            rc = set_step(c, id, "dispatch", now, calendar_add_natural(now, c->opt.dispatch_limit_min), err);
        break;
    case CASE_DISPATCHED:
        rc = cases__update(c, id,
                         "status = 'dispatched', department = ?3, dispatched_at = ?2, dispatch_count = "
                         "dispatch_count + 1, dispatched_on_time = CASE WHEN step = 'dispatch' THEN (CASE WHEN ?2 <= "
                         "deadline THEN 1 ELSE 0 END) * coalesce(dispatched_on_time, 1) ELSE dispatched_on_time END",
                         now, a->department, err);
        if (rc == 0)
            rc = start_handle_timer(c, k, now, 0, err);
        snprintf(k->department, sizeof k->department, "%s", a->department);
        break;
    case CASE_IN_PROGRESS:
        if (strcmp(t->action, "approve_extension") == 0) {
            rc = cases__update(c, id,
                             "status = 'in_progress', extension_minutes = extension_minutes + extension_request, "
                             "extension_request = NULL",
                             now, NULL, err);
            if (rc == 0) /* the same start, the longer limit */
                rc = start_handle_timer(c, k, k->step_started, k->extension_minutes + k->extension_request, err);
        } else {
            rc = cases__update(c, id,
                             "status = 'in_progress', started_at = coalesce(started_at, ?2), extension_request = NULL",
                             now, NULL, err);
        }
        break;
    case CASE_HANDLED:
        rc = cases__update(c, id,
                         "status = 'handled', handled_at = ?2, extension_request = NULL, handled_on_time = CASE WHEN "
                         "?2 <= handle_deadline THEN 1 ELSE 0 END * coalesce(handled_on_time, 1)",
                         now, NULL, err);
        if (rc == 0)
            rc = set_step(c, id, "check", now, calendar_add_working(c->cal, now, c->opt.check_limit_min), err);
        break;
    case CASE_CHECKED:
        rc = cases__update(c, id,
                         "status = 'checked', checked_at = ?2, checked_on_time = CASE WHEN ?2 <= check_deadline "
                         "THEN 1 ELSE 0 END",
                         now, NULL, err);
        if (rc == 0)
            rc = set_step(c, id, NULL, 0, 0, err);
        break;
    case CASE_REWORK:
        rc = cases__update(c, id,
                         k->status == CASE_HANDLED
                             ? "status = 'rework', rework_count = rework_count + 1, checked_at = ?2, "
                               "checked_on_time = CASE WHEN ?2 <= check_deadline THEN 1 ELSE 0 END"
                             : "status = 'rework', rework_count = rework_count + 1, closed_at = NULL, "
                               "closed_on_time = NULL",
                         now, NULL, err);
        if (rc == 0)
            rc = start_handle_timer(c, k, now, 0, err);
        break;
    case CASE_CLOSED:
        rc = cases__update(c, id, "status = 'closed', closed_at = ?2, closed_on_time = coalesce(handled_on_time, 1)",
                         now, NULL, err);
        if (rc == 0)
            rc = set_step(c, id, NULL, 0, 0, err);
        break;
    case CASE_EVALUATED:
        rc = cases__update(c, id, "status = 'evaluated', evaluated_at = ?2, rating = ?3", now, a->rating, err);
        break;
    case CASE_REJECTED:
        rc = cases__update(c, id, "status = 'rejected', rejected_at = ?2", now, NULL, err);
        if (rc == 0)
            rc = set_step(c, id, NULL, 0, 0, err);
        break;
    case CASE_RETURNED:
        rc = cases__update(c, id, "status = 'returned', return_count = return_count + 1, extension_request = NULL", now,
                         NULL, err);
        if (rc == 0)
            rc = set_step(c, id, "dispatch", now, calendar_add_natural(now, c->opt.dispatch_limit_min), err);
        break;
    case CASE_EXTENDED:
    {
        char set[96];
        snprintf(set, sizeof set, "status = 'extended', extension_request = %d", a->minutes);
        rc = cases__update(c, id, set, now, NULL, err);
        break;
    }
    case CASE_PARKED:
        rc = cases__update(c, id, "parked_from = status, status = 'parked'", now, NULL, err);
        if (rc == 0)
            rc = set_step(c, id, NULL, 0, 0, err);
        break;
    case CASE_REPORTED:
    case CASE_STATUS_COUNT:
    case CASE_PREVIOUS:
        assert(!"no transition leads here (unpark resolves CASE_PREVIOUS first)");
        break;
    }
    return rc;
}

/* The state the table's row leads to (CASE_PREVIOUS resolved). */
static enum case_status target(const struct case_transition *t, const struct cb_case *k)
{
    if (t->to != CASE_PREVIOUS)
        return (enum case_status)t->to;
    int prev = case_status_parse(k->parked_from);
    return prev >= 0 ? (enum case_status)prev : CASE_FILED;
}

/* Restarts the timer of the state a case comes back to from 挂账. */
static int unpark_timer(cases *c, struct cb_case *k, enum case_status to, int64_t now, cb_error *err)
{
    char set[96];
    snprintf(set, sizeof set, "status = '%s', parked_from = NULL", case_status_name(to));
    int rc = cases__update(c, k->id, set, now, NULL, err);
    const char *step = rc == 0 ? cases__step_of(to) : NULL;
    if (step && strcmp(step, "handle") == 0)
        rc = start_handle_timer(c, k, now, 0, err);
    else if (step && strcmp(step, "dispatch") == 0)
        rc = set_step(c, k->id, "dispatch", now, calendar_add_natural(now, c->opt.dispatch_limit_min), err);
    else if (step)
        rc = set_step(c, k->id, "file", now, calendar_add_natural(now, c->opt.file_limit_min), err);
    return rc;
}

/* Applies row t to k (already checked against role and state), records it,
 * and queues its event; k is reloaded afterwards. */
int cases__apply(cases *c, struct cb_case *k, const struct case_transition *t, const struct principal *who,
                 const struct case_args *a, int64_t now, struct case_events *ev, cb_error *err)
{
    enum case_status from = k->status, to = target(t, k);
    int rc;
    if (t->to == CASE_PREVIOUS)
        rc = unpark_timer(c, k, to, now, err);
    else
        rc = effects(c, k, t, to, a, now, err);
    if (rc == 0)
        rc = cases__add_history(c, k->id, (int)from, to, t->action, who, a->department ? a->department : k->department,
                         a->note, a->attachments, now, err);
    if (rc == 0)
        rc = cases__load(c, k->id, k, err);
    int supervise = strcmp(t->action, "supervise") == 0; /* a 督办 record, not a change of state */
    if (rc == 0 && supervise)
        rc = cases__supervision_add(c, k, "manual", a->note, now, err);
    if (rc == 0 && !supervise && ev->n < CASE_EVENTS_MAX)
        ev->types[ev->n++] = case_status_name(to);
    assert(rc != 0 || k->status == to);
    return rc;
}

/* Files a case that needs no acceptance and dispatches it when routing is unambiguous. */
int cases__auto_dispatch(cases *c, struct cb_case *k, int64_t now, struct case_events *ev, cb_error *err)
{
    char dep[CASE_CODE_MAX];
    if (k->status != CASE_FILED || !cases__route(c, k->category, k->district, k->grid, dep, sizeof dep))
        return 0;
    struct case_args a = {.department = dep, .note = "routed automatically"};
    return cases__apply(c, k, case_transition_find(CASE_FILED, "dispatch", -2), &cases__system, &a, now, ev, err);
}

/* ---- events ---- */

/* Whom an event's case is rendered for: a reader who sees callers masked. */
static const struct principal subscriber = {.id = "events", .role = ROLE_VIEWER, .name = "events"};

/* Publishes the queued events (and case.created when created); c->mu held:
 * publishing only copies into the ring, it never blocks. */
void cases__publish(cases *c, const char *id, const struct case_events *ev, int created)
{
    if (!c->ev)
        return;
    for (int i = -created; i < ev->n; i++) {
        json_t *data = cases__json(c, id, &subscriber, clock_now_ms(), 0);
        if (!data)
            return;
        json_object_del(data, "reporter"); /* subscribers need no caller, not even masked */
        const char *dist = json_string_value(json_object_get(data, "district"));
        const char *dep = json_string_value(json_object_get(data, "department"));
        struct event_scope scope = {dist, dep};
        char type[48];
        snprintf(type, sizeof type, "case.%s", i < 0 ? "created" : ev->types[i]);
        events_publish(c->ev, "case", type, &scope, data);
    }
}

/* ---- fields shared with intake.c ---- */

static int valid_media_url(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n < 7 + 64 + 4 || strncmp(s, "/media/", 7) != 0)
        return 0;
    for (size_t i = 7; i < 7 + 64; i++)
        if (!strchr("0123456789abcdef", s[i]))
            return 0;
    const char *ext = s + 7 + 64;
    return strcmp(ext, ".jpg") == 0 || strcmp(ext, ".png") == 0 || strcmp(ext, ".webp") == 0;
}

int cases__check_media(const json_t *media, const char *field, cb_error *err)
{
    size_t i;
    const json_t *m;
    if (!media)
        return 0;
    if (!json_is_array(media) || json_array_size(media) > MEDIA_PER_CASE)
        return cb_error_set(err, CB_EINVALID_FIELD, field, "%s must be an array of up to %d media URLs", field,
                            MEDIA_PER_CASE);
    json_array_foreach(media, i, m) {
        if (!valid_media_url(json_string_value(m)))
            return cb_error_set(err, CB_EINVALID_FIELD, field,
                                "%s[%zu] must be a URL from POST /api/v1/media (/media/<sha256>.jpg|png|webp)", field,
                                i);
    }
    return 0;
}

/* Text field: optional, at most max bytes. */
int cases__text_field(const json_t *body, const char *name, size_t max, int required, const char **out,
                      cb_error *err)
{
    const json_t *v = json_object_get(body, name);
    *out = NULL;
    if (!v || json_is_null(v))
        return required ? cb_error_set(err, CB_EMISSING_FIELD, name, "%s is required", name) : 0;
    if (!json_is_string(v) || json_string_length(v) > max)
        return cb_error_set(err, CB_EINVALID_FIELD, name, "%s must be text of at most %zu bytes", name, max);
    *out = json_string_value(v);
    if (required && !**out)
        return cb_error_set(err, CB_EMISSING_FIELD, name, "%s must not be empty", name);
    return 0;
}

/* ---- transitions ---- */

static int parse_args(const json_t *body, const char *action, struct case_args *a, int *to, cb_error *err)
{
    memset(a, 0, sizeof *a);
    *to = -2;
    const struct case_action *info = case_action_info(action);
    const char *why = case_action_field(info, "reason") ? "reason" : "note"; /* both land in the note */
    int rc = cases__text_field(body, why, 1000, case_action_field(info, why) == 2, &a->note, err);
    if (rc == 0 && !a->note && json_object_get(body, "note"))
        rc = cases__text_field(body, "note", 1000, 0, &a->note, err);
    if (rc == 0)
        rc = cases__check_media(a->attachments = json_object_get(body, "attachments"), "attachments", err);
    if (rc == 0 && strcmp(action, "dispatch") == 0)
        rc = cases__text_field(body, "department", CASE_CODE_MAX - 1, 0, &a->department, err);
    if (rc == 0 && strcmp(action, "check") == 0) {
        const json_t *p = json_object_get(body, "passed");
        if (!json_is_boolean(p))
            return cb_error_set(err, CB_EMISSING_FIELD, "passed", "check needs {\"passed\": true|false}");
        *to = json_is_true(p) ? CASE_CHECKED : CASE_REWORK;
    }
    if (rc == 0 && strcmp(action, "evaluate") == 0) {
        rc = cases__text_field(body, "rating", 32, 1, &a->rating, err);
        if (rc == 0 && strcmp(a->rating, "满意") != 0 && strcmp(a->rating, "基本满意") != 0 &&
            strcmp(a->rating, "不满意") != 0)
            rc = cb_error_set(err, CB_EINVALID_FIELD, "rating", "rating must be 满意, 基本满意 or 不满意");
    }
    if (rc == 0 && strcmp(action, "extend") == 0) {
        const json_t *h = json_object_get(body, "hours");
        if (!json_is_number(h) || json_number_value(h) <= 0 || json_number_value(h) > 30 * 24)
            return cb_error_set(err, CB_EINVALID_FIELD, "hours", "extend needs {\"hours\": 1..720, \"reason\"}");
        a->minutes = (int)(json_number_value(h) * 60 + 0.5);
    }
    return rc;
}

/* A grid worker's key names its area in `department` (a district or grid
 * code, or a prefix of one); empty means the whole city. */
static int in_area(const struct principal *who, const struct cb_case *k)
{
    size_t n = strlen(who->department);
    return n == 0 || strncmp(k->district, who->department, n) == 0 || strncmp(k->grid, who->department, n) == 0;
}

int cases__may(const struct principal *who, const struct cb_case *k, const struct case_transition *t, cb_error *err)
{
    if (!cases__visible(who, k))
        return cb_error_set(err, CB_ENOT_FOUND, "id", "no case %s", k->id);
    if (!(t->roles & ROLE_BIT(who->role))) {
        char roles[96];
        return cb_error_set(err, CB_EFORBIDDEN, "action", "role %s may not %s a case; allowed: %s",
                            role_name(who->role), t->action, role_mask_names(t->roles, roles, sizeof roles));
    }
    if (who->role == ROLE_GRID && !in_area(who, k))
        return cb_error_set(err, CB_EFORBIDDEN, "action", "case %s lies outside your area %s", k->id, who->department);
    if (strcmp(t->action, "unlink") == 0 && !k->duplicate_of[0])
        return cb_error_set(err, CB_ECONFLICT, "action", "case %s is not linked to another case", k->id);
    return 0;
}

static int check_allowed(const struct principal *who, const struct cb_case *k, const char *action, int to,
                         const struct case_transition **out, cb_error *err)
{
    char allowed[256];
    const struct case_transition *t = case_transition_find(k->status, action, to);
    case_actions_allowed(k->status, -1, allowed, sizeof allowed);
    if (!case_action_known(action))
        return cb_error_set(err, CB_ENOT_FOUND, "action", "unknown action '%s'; case %s is %s, allowed actions: %s",
                            action, k->id, case_status_name(k->status), allowed[0] ? allowed : "none");
    if (!t)
        return cb_error_set(err, CB_ECONFLICT, "action", "case %s is %s (%s): %s is not allowed; allowed actions: %s",
                            k->id, case_status_name(k->status), case_status_label(k->status), action,
                            allowed[0] ? allowed : "none");
    int rc = cases__may(who, k, t, err);
    if (rc == 0)
        *out = t;
    return rc;
}

static int resolve_department(cases *c, struct cb_case *k, struct case_args *a, char *routed, cb_error *err)
{
    if (a->department) {
        if (!cases__department_exists(c, a->department))
            return cb_error_set(err, CB_EINVALID_FIELD, "department", "unknown department '%s'", a->department);
        return 0;
    }
    if (cases__route(c, k->category, k->district, k->grid, routed, CASE_CODE_MAX) &&
        !(k->status == CASE_RETURNED && strcmp(routed, k->department) == 0)) {
        a->department = routed;
        return 0;
    }
    return cb_error_set(err, CB_EMISSING_FIELD, "department",
                        "routing names no single department for case %s: give {\"department\": CODE}", k->id);
}

static int transition_locked(cases *c, const struct principal *who, const char *id, const char *action,
                             const json_t *body, int64_t now, struct case_events *ev, cb_error *err)
{
    struct cb_case k;
    struct case_args a;
    const struct case_transition *t = NULL;
    char routed[CASE_CODE_MAX];
    int to;
    int rc = cases__load(c, id, &k, err);
    if (rc == 0 && !cases__visible(who, &k))
        rc = cb_error_set(err, CB_ENOT_FOUND, "id", "no case %s", id);
    if (rc == 0) /* state and role first: a wrong action is a 409/403 whatever its body */
        rc = check_allowed(who, &k, action, -2, &t, err);
    if (rc == 0)
        rc = parse_args(body, action, &a, &to, err);
    if (rc == 0 && to != -2 && !(t = case_transition_find(k.status, action, to)))
        rc = cb_error_set(err, CB_ECONFLICT, "action", "case %s cannot %s to %s", id, action,
                          case_status_name((enum case_status)to));
    if (rc == 0 && strcmp(action, "dispatch") == 0)
        rc = resolve_department(c, &k, &a, routed, err);
    if (rc != 0)
        return rc;
    rc = db_exec(c->d, "BEGIN IMMEDIATE", err);
    if (rc != 0)
        return rc;
    rc = cases__apply(c, &k, t, who, &a, now, ev, err);
    if (rc == 0 && strcmp(action, "evaluate") == 0 && strcmp(a.rating, "不满意") == 0) {
        struct case_args re = {.note = "不满意: reopened as rework"};
        /* the reopen is the system's doing, not the rater's */
        rc = cases__apply(c, &k, case_transition_find(CASE_EVALUATED, "reopen", -2), &cases__system, &re, now, ev,
                          err);
    }
    if (rc == 0 && k.status == CASE_FILED)
        rc = cases__auto_dispatch(c, &k, now, ev, err);
    int end = db_exec(c->d, rc == 0 ? "COMMIT" : "ROLLBACK", rc == 0 ? err : NULL);
    return rc != 0 ? rc : end;
}

int cases_transition(cases *c, const struct principal *who, const char *id, const char *action,
                     const json_t *body, int64_t now, json_t **out, cb_error *err)
{
    struct case_events ev = {{0}, 0};
    json_t *empty = body ? NULL : json_object();
    pthread_mutex_lock(&c->mu);
    int rc = transition_locked(c, who, id, action, body ? body : empty, now, &ev, err);
    if (rc == 0) {
        cases__publish(c, id, &ev, 0);
        *out = cases__json(c, id, who, now, 1);
    }
    pthread_mutex_unlock(&c->mu);
    json_decref(empty);
    if (rc != 0)
        return rc;
    return *out ? 0 : cb_error_set(err, CB_ENOMEM, NULL, "rendering the case");
}

/* ---- the citizen's rating with the follow secret ---- */

void cases__follow_token(char token[CASE_FOLLOW_TOKEN_MAX], unsigned char hash[CASE_FOLLOW_HASH_BYTES])
{
    unsigned char secret[16];
    char hex[sizeof secret * 2 + 1];
    randombytes_buf(secret, sizeof secret);
    sodium_bin2hex(hex, sizeof hex, secret, sizeof secret);
    snprintf(token, CASE_FOLLOW_TOKEN_MAX, "cbf_%s", hex);
    crypto_generichash(hash, CASE_FOLLOW_HASH_BYTES, (const unsigned char *)token, strlen(token), NULL, 0);
    sodium_memzero(secret, sizeof secret);
    sodium_memzero(hex, sizeof hex);
}

int cases__set_follow_hash(cases *c, const char *id, const unsigned char hash[CASE_FOLLOW_HASH_BYTES],
                           cb_error *err)
{
    sqlite3_stmt *st = cases__prepare(c, "UPDATE cases SET follow_hash = ?2 WHERE id = ?1", err);
    if (!st)
        return err ? err->code : CB_EINTERNAL;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_blob(st, 2, hash, CASE_FOLLOW_HASH_BYTES, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    cases__finish(c, st);
    return rc == SQLITE_DONE ? 0 : cases__step_error(c, rc, "storing the follow token", err);
}

/* 0 if token is the follow secret of case id; CB_EFORBIDDEN alike for a
 * missing or wrong token, an unknown case and a case without a token. */
static int follow_check(cases *c, const char *id, const char *token, cb_error *err)
{
    size_t len = token ? strlen(token) : 0;
    if (len == 0)
        return cb_error_set(err, CB_EFORBIDDEN, "access_token",
                            "access_token is required: the secret returned when the request was submitted");
    int ok = 0;
    if (len < CASE_FOLLOW_TOKEN_MAX) {
        unsigned char hash[CASE_FOLLOW_HASH_BYTES];
        crypto_generichash(hash, sizeof hash, (const unsigned char *)token, len, NULL, 0);
        sqlite3_stmt *st = cases__prepare(c, "SELECT follow_hash FROM cases WHERE id = ?1", err);
        if (!st)
            return err->code;
        sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
            ok = sqlite3_column_bytes(st, 0) == (int)sizeof hash &&
                 sodium_memcmp(sqlite3_column_blob(st, 0), hash, sizeof hash) == 0;
        cases__finish(c, st);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE)
            return cases__step_error(c, rc, "reading the follow token", err);
    }
    if (ok)
        return 0;
    return cb_error_set(err, CB_EFORBIDDEN, "access_token", "access_token does not match service request %.40s", id);
}

/* A rating needs a closed case: why this one cannot be rated. */
static int rating_state(const struct cb_case *k, cb_error *err)
{
    if (k->status == CASE_CLOSED)
        return 0;
    if (k->status == CASE_EVALUATED)
        return cb_error_set(err, CB_ECONFLICT, "rating", "service request %s has been rated already", k->id);
    if (k->status == CASE_REJECTED && k->duplicate_of[0])
        return cb_error_set(err, CB_ECONFLICT, "rating",
                            "service request %s was merged into %s: that case is handled, this one is not rated",
                            k->id, k->duplicate_of);
    if (k->status == CASE_REJECTED)
        return cb_error_set(err, CB_ECONFLICT, "rating", "service request %s was not taken up (%s): nothing to rate",
                            k->id, case_status_label(k->status));
    return cb_error_set(err, CB_ECONFLICT, "rating",
                        "service request %s is not closed yet (%s): it can be rated once it is closed", k->id,
                        case_status_label(k->status));
}

int cases_rate(cases *c, const char *id, const char *token, const json_t *body, int64_t now, cb_error *err)
{
    struct case_events ev = {{0}, 0};
    struct cb_case k;
    pthread_mutex_lock(&c->mu);
    int rc = follow_check(c, id, token, err);
    if (rc == 0)
        rc = cases__load(c, id, &k, err);
    if (rc == 0)
        rc = rating_state(&k, err);
    if (rc == 0)
        rc = transition_locked(c, &cases__citizen, id, "evaluate", body, now, &ev, err);
    if (rc == 0)
        cases__publish(c, id, &ev, 0);
    pthread_mutex_unlock(&c->mu);
    return rc;
}
