/* series_api — history queries: GET /api/v1/series (one entity's attribute,
 * raw or downsampled) and GET /api/v1/series/aggregate (many series grouped
 * by district, grid cell or type), as JSON or CSV (format=csv or
 * Accept: text/csv). */
#include "app/app.h"

#include "core/clock.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DEFAULT_SPAN_MS (24 * 3600 * 1000LL)

/* "90s", "5m", "1h", "1d" or milliseconds. */
static int parse_step(const char *text, int64_t *out, cb_error *err)
{
    char *end;
    long long n = strtoll(text, &end, 10);
    long long unit = !*end ? 1 : !strcmp(end, "s") ? 1000 : !strcmp(end, "m") ? 60000
                   : !strcmp(end, "h") ? 3600000 : !strcmp(end, "d") ? 86400000 : 0;
    if (end == text || unit == 0 || n <= 0 || n > INT64_MAX / unit)
        return cb_error_set(err, CB_EINVALID_FIELD, "step", "step must be a positive duration like 60s, 5m, 1h, 1d");
    *out = n * unit;
    return 0;
}

static int parse_range(http_request *req, struct series_range *r, cb_error *err)
{
    const char *from = http_query(req, "from"), *to = http_query(req, "to"), *step = http_query(req, "step");
    const char *agg = http_query(req, "agg");
    memset(r, 0, sizeof *r);
    r->to = clock_now_ms();
    int rc = to ? clock_parse_time_field(to, "to", &r->to, err) : 0;
    r->from = r->to - DEFAULT_SPAN_MS;
    if (rc == 0 && from)
        rc = clock_parse_time_field(from, "from", &r->from, err);
    if (rc == 0 && r->from > r->to)
        rc = cb_error_set(err, CB_EINVALID_FIELD, "from", "from is after to");
    if (rc == 0 && step)
        rc = parse_step(step, &r->step, err);
    r->agg = SERIES_AGG_AVG;
    if (rc == 0 && agg && series_agg_parse(agg, &r->agg) != 0)
        rc = cb_error_set(err, CB_EINVALID_FIELD, "agg", "agg must be avg, min, max, sum, count or last");
    return rc;
}

static int wants_csv(http_request *req)
{
    const char *format = http_query(req, "format"), *accept = http_header(req, "Accept");
    return (format && !strcmp(format, "csv")) || (accept && strstr(accept, "text/csv"));
}

static json_t *number_or_null(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

/* ---- fast JSON for points: a raw answer is thousands of [time, value]
 * pairs, and building a jansson node per pair cost more than the query. ---- */

/* "YYYY-MM-DDThh:mm:ss.fffZ" (quoted) like clock_format_rfc3339, with the
 * date part formatted once per day (*day caches which day prefix holds).
 * Writes 26 bytes at p; returns the end. */
static char *put_time(char *p, int64_t ms, int64_t *day, char prefix[16])
{
    int64_t d = ms / 86400000, rem = ms % 86400000;
    if (rem < 0) {
        rem += 86400000;
        d--;
    }
    if (d != *day) {
        char t[CLOCK_RFC3339_MAX];
        clock_format_rfc3339(d * 86400000, t);
        memcpy(prefix, t, 11); /* "YYYY-MM-DDT" */
        *day = d;
    }
    int sec = (int)(rem / 1000), frac = (int)(rem % 1000);
    int h = sec / 3600, mi = sec / 60 % 60, se = sec % 60;
    *p++ = '"';
    memcpy(p, prefix, 11);
    p += 11;
    *p++ = (char)('0' + h / 10), *p++ = (char)('0' + h % 10), *p++ = ':';
    *p++ = (char)('0' + mi / 10), *p++ = (char)('0' + mi % 10), *p++ = ':';
    *p++ = (char)('0' + se / 10), *p++ = (char)('0' + se % 10), *p++ = '.';
    *p++ = (char)('0' + frac / 100), *p++ = (char)('0' + frac / 10 % 10), *p++ = (char)('0' + frac % 10);
    *p++ = 'Z', *p++ = '"';
    return p;
}

#define NUMBER_MAX 40 /* bytes put_number writes at most */

/* A JSON number as http_reply_json writes it (12 significant digits, n.0 for
 * integers), fast for the common case: the exact decimal m / 10^d with d <= 4
 * and |m| < 10^12 (sensor readings) is printed digit by digit; else %.12g.
 * m and d come from one rounding of v * 10^4 with its trailing zeros dropped
 * (the shortest such decimal), checked with one division. null when not
 * finite. Returns the end. */
static char *put_number(char *out, double v)
{
    static const double pow10[] = {1, 10, 100, 1000, 10000};
    if (!isfinite(v)) {
        memcpy(out, "null", 4);
        return out + 4;
    }
    double x = v * 10000; /* rounded below by hand: the check makes any rounding exact, and libm's is a call */
    if (fabs(x) < 9e15 && !(fabs(x) < 0.5 && signbit(v))) {
        unsigned long long u = (unsigned long long)(fabs(x) + 0.5);
        int d = 4;
        while (d > 0 && u % 10 == 0)
            u /= 10, d--;
        double back = (double)u / pow10[d];
        if (u < 1000000000000ULL && (x < 0 ? -back : back) == v) {
            char t[32], *p = t + sizeof t;
            int digits = 0;
            do {
                *--p = (char)('0' + u % 10);
                u /= 10;
                if (++digits == d)
                    *--p = '.';
            } while (u || digits <= d);
            if (x < 0)
                *--p = '-';
            size_t n = (size_t)(t + sizeof t - p);
            memcpy(out, p, n);
            out += n;
            if (d == 0) { /* integers print as n.0, as jansson does */
                memcpy(out, ".0", 2);
                out += 2;
            }
            return out;
        }
    }
    int n = snprintf(out, NUMBER_MAX - 2, "%.12g", v);
    out += n;
    if (!memchr(out - n, '.', (size_t)n) && !memchr(out - n, 'e', (size_t)n)) {
        memcpy(out, ".0", 2);
        out += 2;
    }
    return out;
}

/* Sends o (consumed) with "points": [[time, value], ...] added as its last
 * member, written straight into one buffer: a raw answer is thousands of
 * pairs, and a jansson node per pair cost more than the query. */
static int reply_with_points(http_request *req, json_t *o, const int64_t *t, const double *v, size_t n)
{
    char *head = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(12));
    json_decref(o);
    size_t hl = head ? strlen(head) : 0;
    char *body = head && hl >= 2 && n < SIZE_MAX / 128 ? malloc(hl + 16 + n * (30 + NUMBER_MAX)) : NULL;
    if (!body) {
        free(head);
        return CB_ENOMEM;
    }
    char *p = body, prefix[16];
    int64_t day = INT64_MIN;
    memcpy(p, head, hl - 1); /* without the closing brace */
    p += hl - 1;
    p += sprintf(p, "%s\"points\":[", hl > 2 ? "," : "");
    for (size_t i = 0; i < n; i++) {
        if (i)
            *p++ = ',';
        *p++ = '[';
        p = put_time(p, t[i], &day, prefix);
        *p++ = ',';
        p = put_number(p, v[i]);
        *p++ = ']';
    }
    *p++ = ']';
    *p++ = '}';
    free(head);
    return http_reply_owned(req, 200, "application/json; charset=utf-8", body, (size_t)(p - body));
}

static int reply_points(http_request *req, const char *entity, const char *attr, const struct series_range *r,
                        const struct series_points *p)
{
    char t[CLOCK_RFC3339_MAX];
    if (wants_csv(req)) {
        buf out = BUF_INIT;
        buf_puts(&out, "time,entity,attribute,value\n");
        for (size_t i = 0; i < p->n; i++)
            buf_printf(&out, "%s,%s,%s,%.17g\n", clock_format_rfc3339(p->t[i], t), entity, attr, p->v[i]);
        int rc = buf_failed(&out) ? CB_ENOMEM : http_reply_text(req, 200, "text/csv; charset=utf-8", out.data ? out.data : "", out.len);
        buf_free(&out);
        return rc;
    }
    json_t *o = json_pack("{s:s, s:s, s:s}", "entity", entity, "attr", attr, "plan", series_plan_name(p->plan));
    json_object_set_new(o, "from", json_string(clock_format_rfc3339(r->from, t)));
    json_object_set_new(o, "to", json_string(clock_format_rfc3339(r->to, t)));
    if (r->step) {
        json_object_set_new(o, "step_ms", json_integer(r->step));
        json_object_set_new(o, "agg", json_string(series_agg_name(r->agg)));
    }
    return reply_with_points(req, o, p->t, p->v, p->n);
}

/* The series id of ?entity=&attr=. */
static int resolve_series(struct app *a, const char *entity, const char *attr, uint32_t *id, cb_error *err)
{
    if (!entity || !attr)
        return cb_error_set(err, CB_EMISSING_FIELD, entity ? "attr" : "entity", "%s is required",
                            entity ? "attr" : "entity");
    uint16_t attr_id;
    state_rdlock(a->state);
    uint32_t no = state_find(a->state, entity);
    state_unlock(a->state);
    if (no == STATE_NONE)
        return cb_error_set(err, CB_ENOT_FOUND, "entity", "no entity '%s'", entity);
    if (dict_id(a->names, DICT_ATTR, attr, 0, &attr_id, "attr", NULL) != 0 ||
        series_id(a->series, no, attr_id, 0, id, NULL) != 0)
        return cb_error_set(err, CB_ENOT_FOUND, "attr", "entity '%s' has no numeric history of '%s'", entity, attr);
    return 0;
}

int api_series_get(http_request *req, void *app)
{
    struct app *a = app;
    const char *entity = http_query(req, "entity"), *attr = http_query(req, "attr");
    struct series_range r;
    struct series_points p = {0};
    cb_error err;
    uint32_t id;
    if (parse_range(req, &r, &err) != 0 || resolve_series(a, entity, attr, &id, &err) != 0 ||
        series_query(a->series, a->db, id, &r, &p, &err) != 0)
        return http_reply_error(req, &err);
    int rc = reply_points(req, entity, attr, &r, &p);
    series_points_free(&p);
    return rc;
}

/* --- aggregates over many series --- */

enum group_by { GROUP_DISTRICT, GROUP_GRID, GROUP_TYPE };

struct selection {
    uint32_t *ids, *groups; /* parallel, n of them */
    size_t n;
    uint32_t *keys;         /* group index -> district/grid index or type id */
    size_t ngroups;
};

static void selection_free(struct selection *sel)
{
    free(sel->ids);
    free(sel->groups);
    free(sel->keys);
}

static uint32_t group_key(const struct state_entity *se, enum group_by by)
{
    return by == GROUP_DISTRICT ? se->district : by == GROUP_GRID ? se->grid : se->type;
}

/* The group index of key, adding a group for a key not seen before. */
static uint32_t group_of(struct selection *sel, uint32_t key, json_t *index)
{
    char k[16];
    snprintf(k, sizeof k, "%u", key);
    json_t *at = json_object_get(index, k);
    if (at)
        return (uint32_t)json_integer_value(at);
    sel->keys[sel->ngroups] = key;
    json_object_set_new(index, k, json_integer((json_int_t)sel->ngroups));
    return (uint32_t)sel->ngroups++;
}

/* Every series of attr among entities of type (0: any) in district (NONE: any). */
static int select_series(struct app *a, uint16_t type, uint32_t district, uint16_t attr, enum group_by by,
                         struct selection *sel)
{
    memset(sel, 0, sizeof *sel);
    json_t *index = json_object();
    state_rdlock(a->state);
    size_t cap = state_count(a->state) + 1;
    sel->ids = malloc(cap * sizeof *sel->ids);
    sel->groups = malloc(cap * sizeof *sel->groups);
    sel->keys = malloc(cap * sizeof *sel->keys);
    for (uint32_t no = 0; sel->ids && sel->groups && sel->keys && no < state_slots(a->state); no++) {
        const struct state_entity *se = state_get(a->state, no);
        uint32_t id;
        if (!se || (type && se->type != type) || (district != REGION_INDEX_NONE && se->district != district) ||
            series_id(a->series, no, attr, 0, &id, NULL) != 0)
            continue;
        sel->ids[sel->n] = id;
        sel->groups[sel->n++] = group_of(sel, group_key(se, by), index);
    }
    state_unlock(a->state);
    json_decref(index);
    return sel->ids && sel->groups && sel->keys ? 0 : CB_ENOMEM;
}

struct aggregate_args {
    uint16_t type, attr;
    uint32_t district;
    enum group_by by;
    const char *attr_name;
};

static int parse_aggregate(struct app *a, http_request *req, struct aggregate_args *x, cb_error *err)
{
    const char *type = http_query(req, "type"), *attr = http_query(req, "attr"), *group = http_query(req, "group");
    const char *district = http_query(req, "district");
    memset(x, 0, sizeof *x);
    x->attr_name = attr;
    x->district = REGION_INDEX_NONE;
    if (!attr)
        return cb_error_set(err, CB_EMISSING_FIELD, "attr", "attr is required");
    if (dict_id(a->names, DICT_ATTR, attr, 0, &x->attr, "attr", NULL) != 0)
        return cb_error_set(err, CB_EINVALID_FIELD, "attr", "no entity has an attribute '%s'", attr);
    if (type && dict_id(a->names, DICT_TYPE, type, 0, &x->type, "type", NULL) != 0)
        return cb_error_set(err, CB_EINVALID_FIELD, "type", "unknown type '%s'", type);
    if (district && (x->district = region_store_index(a->regions, REGION_DISTRICT, district)) == REGION_INDEX_NONE)
        return cb_error_set(err, CB_EINVALID_FIELD, "district", "unknown district '%s'", district);
    if (!group || !strcmp(group, "district"))
        x->by = GROUP_DISTRICT;
    else if (!strcmp(group, "grid"))
        x->by = GROUP_GRID;
    else if (!strcmp(group, "type"))
        x->by = GROUP_TYPE;
    else
        return cb_error_set(err, CB_EINVALID_FIELD, "group", "group must be district, grid or type");
    return 0;
}

static const char *group_label(struct app *a, enum group_by by, uint32_t key, char *out)
{
    if (by == GROUP_TYPE) {
        const char *name = dict_name(a->names, DICT_TYPE, (uint16_t)key);
        snprintf(out, REGION_CODE_MAX, "%s", name ? name : "");
        return out;
    }
    return region_store_code(a->regions, by == GROUP_DISTRICT ? REGION_DISTRICT : REGION_GRID, key, out);
}

static int reply_grid(struct app *a, http_request *req, const struct aggregate_args *x, const struct selection *sel,
                      const struct series_grid *g)
{
    static const char *const by_names[] = {"district", "grid", "type"};
    char t[CLOCK_RFC3339_MAX], label[REGION_CODE_MAX];
    int csv = wants_csv(req);
    buf out = BUF_INIT;
    json_t *groups = json_array();
    if (csv)
        buf_printf(&out, "time,%s,attribute,value\n", by_names[x->by]);
    for (size_t gi = 0; gi < g->ngroups; gi++) {
        group_label(a, x->by, sel->keys[gi], label);
        json_t *points = json_array();
        for (size_t k = 0; k < g->nbuckets; k++) {
            double v = g->v[gi * g->nbuckets + k];
            clock_format_rfc3339(g->from + (int64_t)k * g->step, t);
            if (csv && isfinite(v))
                buf_printf(&out, "%s,%s,%s,%.17g\n", t, *label ? label : "-", x->attr_name, v);
            else if (!csv)
                json_array_append_new(points, json_pack("[s,o]", t, number_or_null(v)));
        }
        json_array_append_new(groups, json_pack("{s:o, s:o}", by_names[x->by], *label ? json_string(label) : json_null(),
                                                "points", points));
    }
    int rc;
    if (csv) {
        json_decref(groups);
        rc = buf_failed(&out) ? CB_ENOMEM : http_reply_text(req, 200, "text/csv; charset=utf-8", out.data ? out.data : "", out.len);
    } else {
        rc = http_reply_json(req, 200, json_pack("{s:s, s:s, s:I, s:I, s:o, s:s}", "attr", x->attr_name, "group",
                                                 by_names[x->by], "series", (json_int_t)sel->n, "step_ms",
                                                 (json_int_t)g->step, "groups", groups, "plan",
                                                 series_plan_name(g->plan)));
    }
    buf_free(&out);
    return rc;
}

int api_series_aggregate(http_request *req, void *app)
{
    struct app *a = app;
    struct aggregate_args x;
    struct series_range r;
    struct selection sel = {0};
    struct series_grid g = {0};
    cb_error err;
    int rc = parse_range(req, &r, &err);
    if (rc == 0)
        rc = parse_aggregate(a, req, &x, &err);
    if (rc == 0 && (rc = select_series(a, x.type, x.district, x.attr, x.by, &sel)) != 0)
        cb_error_set(&err, rc, NULL, NULL);
    if (rc == 0)
        rc = series_aggregate(a->series, a->db, sel.ids, sel.groups, sel.n, sel.ngroups, &r, &g, &err);
    rc = rc == 0 ? reply_grid(a, req, &x, &sel, &g) : http_reply_error(req, &err);
    series_grid_free(&g);
    selection_free(&sel);
    return rc;
}
