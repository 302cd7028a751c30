/* kpi — 考核: the case centre's performance indicators per department,
 * district or reporting role, computed by aggregate queries over the rows
 * of `cases` and `case_history` (migration 6; schema.c lays each case's step
 * times, deadlines and on-time flags out for exactly this). The formulas and
 * the composite score's weights are in README "KPIs" and in the indicator
 * table of kpi.c.
 *
 * kpi reads only: kpi_compute and kpi_summary borrow a db connection of the
 * calling thread (the HTTP thread's app->db). The ticker publishes kpi.tick
 * every interval from a thread with a connection of its own. `now` is a
 * parameter everywhere, so tests inject the clock. */
#ifndef CB_KPI_H
#define CB_KPI_H

#include "core/err.h"
#include "events/events.h"
#include "store/db.h"

#include <jansson.h>
#include <stdint.h>

#define KPI_DEFAULT_WINDOW_MS (30LL * 24 * 3600 * 1000) /* from = to - 30 days */
#define KPI_TICK_MS 60000 /* kpi.tick period of `citybrain serve` */

/* What to compute. Strings are borrowed; NULL = unset. */
struct kpi_query {
    const char *by;          /* "department", "district", "role" or "city"; NULL: department */
    const char *from, *to;   /* created_at window [from, to): RFC 3339 or epoch ms;
                                defaults: to = now, from = to - 30 days */
    const char *department;  /* scope: only this department's cases (a dept principal) */
    int64_t now;             /* ms since the epoch: what "overdue" is measured against */
};

/* {"by", "from", "to", "rows": [ROW...]} ranked by score (rows without a
 * score last). ROW = {"key", "name", counts ..., rates ..., "score", "rank"};
 * a rate whose denominator is 0 is null. *out owned by the caller.
 * CB_EINVALID_FIELD for a bad by/from/to. */
int kpi_compute(db *d, const struct kpi_query *q, json_t **out, cb_error *err);

/* The city at a glance (the kpi.tick data): {"open_cases", "overdue_cases",
 * "on_time_close_rate", "satisfaction_rate"}; the rates over the last 30
 * days. *out owned by the caller. */
int kpi_summary(db *d, int64_t now, json_t **out, cb_error *err);

/* Publishes kpi.tick (kind "kpi", data = kpi_summary) every interval_ms
 * from a thread that opens its own connection to data_dir. ev borrowed, must
 * outlive the ticker. *out owned by the caller: kpi_ticker_stop. */
typedef struct kpi_ticker kpi_ticker;
int kpi_ticker_start(const char *data_dir, events *ev, int interval_ms, kpi_ticker **out, cb_error *err);
void kpi_ticker_stop(kpi_ticker *t); /* NULL-safe; joins the thread */

#endif
