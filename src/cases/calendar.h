/* calendar — the city's working time: working days (Monday to Friday unless
 * a holiday; Saturdays and Sundays that are make-up working days, 调休),
 * the work periods of a working day (default 08:00-12:00 and 14:00-18:00),
 * all in Asia/Shanghai time (UTC+8, no daylight saving time).
 *
 * Pure: no I/O, no clock; times are ms since the epoch passed in. A calendar
 * is immutable once loaded, so threads may share it. Day overrides are a
 * sorted array (binary search, O(log n) per day); adding working time walks
 * day by day, O(days spanned). */
#ifndef CB_CALENDAR_H
#define CB_CALENDAR_H

#include "core/err.h"

#include <jansson.h>
#include <stdint.h>

typedef struct calendar calendar;

#define CALENDAR_MAX_PERIODS 8
#define CALENDAR_TZ_OFFSET_MS (8 * 3600 * 1000LL) /* Asia/Shanghai */

enum calendar_day_kind { CALENDAR_DEFAULT, CALENDAR_HOLIDAY, CALENDAR_WORKDAY };

/* A calendar with the default periods and no overrides; caller frees. */
calendar *calendar_create(void);
void calendar_free(calendar *c); /* NULL-safe */

/* Replaces the work periods: minutes of the local day, [start, end), in
 * ascending order, not overlapping. */
int calendar_set_periods(calendar *c, const int (*periods)[2], int n, cb_error *err);
/* Marks one local day ("YYYY-MM-DD") a holiday or a working day. */
int calendar_set_day(calendar *c, const char *day, enum calendar_day_kind kind, cb_error *err);

/* Loads {"periods": [["08:00","12:00"], ...]?, "holidays": [{"date","name"}|"date"...],
 * "workdays": [...]} (the format of city/calendar-*.json) into c. */
int calendar_load_json(calendar *c, const json_t *doc, cb_error *err);

/* 1 if the local day containing t is a working day. */
int calendar_is_workday(const calendar *c, int64_t t);
/* The time `minutes` working minutes after t (t itself when minutes <= 0;
 * a time outside work periods first moves to the next period's start).
 * INT64_MAX when no working day lies within ten years. */
int64_t calendar_add_working(const calendar *c, int64_t t, int64_t minutes);
/* Working ms in [a, b); negative when b < a. */
int64_t calendar_working_ms(const calendar *c, int64_t a, int64_t b);
/* Natural time: t + minutes. */
int64_t calendar_add_natural(int64_t t, int64_t minutes);

/* Days since 1970-01-01 of a local date, and back ("YYYY-MM-DD", 11 bytes). */
int calendar_parse_day(const char *s, int64_t *day);
void calendar_format_day(int64_t day, char out[11]);
int64_t calendar_local_day(int64_t t); /* the local day number containing t */

#endif
