/* calendar — working time in Asia/Shanghai; see calendar.h. */
#include "cases/calendar.h"

#include "core/clock.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DAY_MS 86400000LL
#define MIN_MS 60000LL
#define MAX_DAYS_SEARCHED 3660

struct day_override {
    int64_t day;
    enum calendar_day_kind kind;
};

struct calendar {
    int periods[CALENDAR_MAX_PERIODS][2]; /* local minutes [start, end) */
    int nperiods;
    struct day_override *days; /* sorted by day */
    size_t ndays, cap;
};

calendar *calendar_create(void)
{
    calendar *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->periods[0][0] = 8 * 60;
    c->periods[0][1] = 12 * 60;
    c->periods[1][0] = 14 * 60;
    c->periods[1][1] = 18 * 60;
    c->nperiods = 2;
    return c;
}

void calendar_free(calendar *c)
{
    if (!c)
        return;
    free(c->days);
    free(c);
}

int calendar_set_periods(calendar *c, const int (*periods)[2], int n, cb_error *err)
{
    if (n < 1 || n > CALENDAR_MAX_PERIODS)
        return cb_error_set(err, CB_EINVALID_FIELD, "periods", "a working day needs 1 to %d periods",
                            CALENDAR_MAX_PERIODS);
    for (int i = 0; i < n; i++) {
        int lo = i ? periods[i - 1][1] : 0;
        if (periods[i][0] < lo || periods[i][1] <= periods[i][0] || periods[i][1] > 24 * 60)
            return cb_error_set(err, CB_EINVALID_FIELD, "periods",
                                "period %d must start after the previous one and end after it starts", i + 1);
    }
    memcpy(c->periods, periods, (size_t)n * sizeof periods[0]);
    c->nperiods = n;
    return 0;
}

/* Howard Hinnant's civil_from_days (its inverse is clock_days_from_civil). */
void calendar_format_day(int64_t z, char out[11])
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = (int64_t)yoe + era * 400;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    unsigned d = doy - (153 * mp + 2) / 5 + 1;
    unsigned m = mp < 10 ? mp + 3 : mp - 9;
    char tmp[40];
    snprintf(tmp, sizeof tmp, "%04d-%02u-%02u", (int)((y + (m <= 2)) % 10000), m, d);
    memcpy(out, tmp, 10);
    out[10] = '\0';
}

int calendar_parse_day(const char *s, int64_t *day)
{
    int y, m, d, n = 0;
    if (!s || sscanf(s, "%4d-%2d-%2d%n", &y, &m, &d, &n) != 3 || n != 10 || s[10] != '\0')
        return -1;
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (y < 1970 || m < 1 || m > 12 || d < 1 || d > mdays[m - 1])
        return -1;
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (m == 2 && d == 29 && !leap)
        return -1;
    *day = clock_days_from_civil(y, m, d);
    return 0;
}

int64_t calendar_local_day(int64_t t)
{
    int64_t l = t + CALENDAR_TZ_OFFSET_MS;
    return l >= 0 ? l / DAY_MS : -((-l + DAY_MS - 1) / DAY_MS);
}

static int64_t day_start(int64_t day)
{
    return day * DAY_MS - CALENDAR_TZ_OFFSET_MS;
}

static const struct day_override *find_day(const calendar *c, int64_t day)
{
    size_t lo = 0, hi = c->ndays;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (c->days[mid].day == day)
            return &c->days[mid];
        if (c->days[mid].day < day)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

int calendar_set_day(calendar *c, const char *text, enum calendar_day_kind kind, cb_error *err)
{
    int64_t day;
    if (calendar_parse_day(text, &day) != 0)
        return cb_error_set(err, CB_EINVALID_FIELD, "date", "'%s' is not a date YYYY-MM-DD", text ? text : "");
    struct day_override *o = (struct day_override *)find_day(c, day);
    if (o) {
        o->kind = kind;
        return 0;
    }
    if (c->ndays == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 32;
        void *p = realloc(c->days, cap * sizeof *c->days);
        if (!p)
            return cb_error_set(err, CB_ENOMEM, NULL, "calendar days");
        c->days = p;
        c->cap = cap;
    }
    size_t i = c->ndays;
    while (i > 0 && c->days[i - 1].day > day) {
        c->days[i] = c->days[i - 1];
        i--;
    }
    c->days[i] = (struct day_override){day, kind};
    c->ndays++;
    return 0;
}

static int day_is_workday(const calendar *c, int64_t day)
{
    const struct day_override *o = find_day(c, day);
    if (o && o->kind != CALENDAR_DEFAULT)
        return o->kind == CALENDAR_WORKDAY;
    int64_t wd = ((day % 7) + 7 + 3) % 7; /* 1970-01-01 was a Thursday: 0 = Monday */
    return wd < 5;
}

int calendar_is_workday(const calendar *c, int64_t t)
{
    return day_is_workday(c, calendar_local_day(t));
}

int64_t calendar_add_natural(int64_t t, int64_t minutes)
{
    return t + minutes * MIN_MS;
}

int64_t calendar_add_working(const calendar *c, int64_t t, int64_t minutes)
{
    int64_t left = minutes * MIN_MS;
    if (left <= 0)
        return t;
    int64_t day = calendar_local_day(t);
    for (int n = 0; n < MAX_DAYS_SEARCHED; n++, day++) {
        if (!day_is_workday(c, day))
            continue;
        int64_t base = day_start(day);
        for (int i = 0; i < c->nperiods; i++) {
            int64_t start = base + c->periods[i][0] * MIN_MS, end = base + c->periods[i][1] * MIN_MS;
            if (t >= end)
                continue;
            if (t < start)
                t = start;
            if (left <= end - t)
                return t + left;
            left -= end - t;
            t = end;
        }
    }
    return INT64_MAX;
}

int64_t calendar_working_ms(const calendar *c, int64_t a, int64_t b)
{
    if (b < a)
        return -calendar_working_ms(c, b, a);
    int64_t sum = 0;
    for (int64_t day = calendar_local_day(a); day <= calendar_local_day(b); day++) {
        if (!day_is_workday(c, day))
            continue;
        int64_t base = day_start(day);
        for (int i = 0; i < c->nperiods; i++) {
            int64_t start = base + c->periods[i][0] * MIN_MS, end = base + c->periods[i][1] * MIN_MS;
            int64_t lo = a > start ? a : start, hi = b < end ? b : end;
            if (hi > lo)
                sum += hi - lo;
        }
    }
    return sum;
}

static int parse_hhmm(const char *s, int *min)
{
    int h, m, n = 0;
    if (!s || sscanf(s, "%2d:%2d%n", &h, &m, &n) != 2 || s[n] != '\0' || h < 0 || h > 24 || m < 0 || m > 59 ||
        (h == 24 && m != 0))
        return -1;
    *min = h * 60 + m;
    return 0;
}

static int load_periods(calendar *c, const json_t *list, cb_error *err)
{
    int p[CALENDAR_MAX_PERIODS][2];
    size_t i, n = json_array_size(list);
    if (!json_is_array(list) || n == 0 || n > CALENDAR_MAX_PERIODS)
        return cb_error_set(err, CB_EINVALID_FIELD, "periods", "periods must be 1 to %d [\"HH:MM\", \"HH:MM\"] pairs",
                            CALENDAR_MAX_PERIODS);
    for (i = 0; i < n; i++) {
        const json_t *pair = json_array_get(list, i);
        if (json_array_size(pair) != 2 || parse_hhmm(json_string_value(json_array_get(pair, 0)), &p[i][0]) != 0 ||
            parse_hhmm(json_string_value(json_array_get(pair, 1)), &p[i][1]) != 0)
            return cb_error_set(err, CB_EINVALID_FIELD, "periods", "period %zu must be [\"HH:MM\", \"HH:MM\"]", i + 1);
    }
    return calendar_set_periods(c, (const int (*)[2])p, (int)n, err);
}

static int load_days(calendar *c, const json_t *list, const char *field, enum calendar_day_kind kind, cb_error *err)
{
    size_t i;
    const json_t *d;
    if (list && !json_is_array(list))
        return cb_error_set(err, CB_EINVALID_FIELD, field, "%s must be an array of dates", field);
    json_array_foreach(list, i, d) {
        const char *date = json_is_object(d) ? json_string_value(json_object_get(d, "date")) : json_string_value(d);
        int rc = calendar_set_day(c, date, kind, err);
        if (rc != 0) {
            if (err)
                snprintf(err->field, sizeof err->field, "%s[%zu]", field, i);
            return rc;
        }
    }
    return 0;
}

int calendar_load_json(calendar *c, const json_t *doc, cb_error *err)
{
    if (!json_is_object(doc))
        return cb_error_set(err, CB_EINVALID_FIELD, NULL, "a calendar is a JSON object");
    const json_t *p = json_object_get(doc, "periods");
    int rc = p ? load_periods(c, p, err) : 0;
    if (rc == 0)
        rc = load_days(c, json_object_get(doc, "holidays"), "holidays", CALENDAR_HOLIDAY, err);
    if (rc == 0)
        rc = load_days(c, json_object_get(doc, "workdays"), "workdays", CALENDAR_WORKDAY, err);
    assert(rc != 0 || c->nperiods > 0);
    return rc;
}
