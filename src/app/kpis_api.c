/* kpis_api — 考核 over HTTP: GET /api/v1/kpis?by=&from=&to=. A dept
 * principal sees its own department's cases only (by=department: its own
 * row). Runs on the HTTP thread with its connection (kpi.h). */
#include "app/app.h"

#include "cases/kpi.h"
#include "core/clock.h"

int api_kpis(http_request *req, void *app)
{
    struct app *a = app;
    const struct principal *who = http_principal(req);
    struct kpi_query q = {
        .by = http_query(req, "by"), .from = http_query(req, "from"), .to = http_query(req, "to"),
        .department = who && who->role == ROLE_DEPT ? who->department : NULL, .now = clock_now_ms(),
    };
    json_t *out;
    cb_error err;
    if (kpi_compute(a->db, &q, &out, &err) != 0)
        return http_reply_error(req, &err);
    return http_reply_json(req, 200, out);
}
