/* kpi — 考核: the case centre's performance indicators per department,
 * district or reporting role, computed by aggregate queries over the rows
 * of `cases` and `case_history` (migration 6; schema.c lays each case's step
 * times, deadlines and on-time flags out for exactly this). The formulas and
 * the composite score's weights are in README "KPIs" and in the indicator
 * table of kpi.c.
 *
 * kpi reads only: kpi_compute and kpi_summary borrow a db connection of the
 * calling thread. The server runs them on the KPI worker, a thread with a
 * connection of its own, so the HTTP thread never waits on an aggregate
 * (about 0.2-0.4 s of CPU over 100,000 cases in the window); the worker
 * also publishes kpi.tick. `now` is a parameter everywhere, so tests
 * inject the clock. */
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

/* The KPI worker: one thread with its own connection to data_dir that
 * answers submitted queries in order and publishes kpi.tick (kind "kpi",
 * data = kpi_summary) every tick_ms (ev NULL or tick_ms 0: no tick). ev is
 * borrowed and must outlive the worker. *out owned by the caller:
 * kpi_worker_stop. */
typedef struct kpi_worker kpi_worker;
int kpi_worker_start(const char *data_dir, events *ev, int tick_ms, kpi_worker **out, cb_error *err);

#define KPI_QUEUE_MAX 64 /* queries waiting; CB_EUNAVAILABLE beyond */
/* The answer to a submitted query, on the worker thread: rc 0 and out
 * (owned by the callee), or rc < 0 and err. */
typedef void (*kpi_done_fn)(void *ctx, int rc, json_t *out, const cb_error *err);
/* Queues q (its strings are copied); done(ctx, ...) runs on the worker. */
int kpi_worker_submit(kpi_worker *w, const struct kpi_query *q, kpi_done_fn done, void *ctx, cb_error *err);
/* NULL-safe; joins the thread. Queries still waiting are dropped without
 * their done: stop the worker after the HTTP server has drained. */
void kpi_worker_stop(kpi_worker *w);

#endif
