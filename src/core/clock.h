/* clock — wall and monotonic time in milliseconds, and RFC 3339 text. */
#ifndef CB_CLOCK_H
#define CB_CLOCK_H

#include "core/err.h"

#include <stdint.h>

#define CLOCK_RFC3339_MAX 64

int64_t clock_now_ms(void);   /* CLOCK_REALTIME, ms since the epoch */
int64_t clock_mono_ms(void);  /* CLOCK_MONOTONIC, ms; for durations */
double clock_mono_s(void);    /* CLOCK_MONOTONIC, seconds with ns resolution */

/* "2026-11-23T10:00:00.123Z"; returns out. */
const char *clock_format_rfc3339(int64_t ms, char out[CLOCK_RFC3339_MAX]);

/* Parses "2026-11-23T10:00:00Z", with optional fraction (ms kept) and a "Z"
 * or "+08:00" offset; also a space for the T. 0 and *ms, or -1. */
int clock_parse_rfc3339(const char *s, int64_t *ms);

/* A time given by a client: epoch milliseconds, or RFC 3339 (a space
 * where a query string's '+' of "+08:00" was decoded is taken as '+').
 * 0 and *ms, or -1. */
int clock_parse_time(const char *s, int64_t *ms);
/* clock_parse_time for the request field `field`: CB_EINVALID_FIELD naming
 * it when s is neither form. */
int clock_parse_time_field(const char *s, const char *field, int64_t *ms, cb_error *err);
/* Days since 1970-01-01 of the proleptic Gregorian date y-m-d (m 1..12,
 * d 1..31; Howard Hinnant's days_from_civil), negative before. */
int64_t clock_days_from_civil(int64_t y, int m, int d);

#endif
