/* kpis_api — 考核 over HTTP: GET /api/v1/kpis?by=&from=&to=. A dept
 * principal sees its own department's cases only (by=department: its own
 * row). The query runs on the KPI worker (kpi.h) and the reply is deferred
 * until it answers, so the HTTP thread never waits on the aggregate. */
#include "app/app.h"

#include "cases/kpi.h"
#include "core/clock.h"

/* KPI worker thread: the answer is there. */
static void kpis_done(void *ctx, int rc, json_t *out, const cb_error *err)
{
    http_request *req = ctx;
    if (rc != 0)
        http_reply_error(req, err);
    else
        http_reply_json(req, 200, out);
    http_resume(req);
}

int api_kpis(http_request *req, void *app)
{
    struct app *a = app;
    const struct principal *who = http_principal(req);
    struct kpi_query q = {
        .by = http_query(req, "by"), .from = http_query(req, "from"), .to = http_query(req, "to"),
        .department = who && who->role == ROLE_DEPT ? who->department : NULL, .now = clock_now_ms(),
    };
    cb_error err;
    if (!a->kpi)
        return http_reply_errorf(req, CB_EUNAVAILABLE, NULL, "KPIs are not running");
    if (kpi_worker_submit(a->kpi, &q, kpis_done, req, &err) != 0)
        return http_reply_error(req, &err);
    return HTTP_DEFERRED; /* req now belongs to kpis_done */
}
