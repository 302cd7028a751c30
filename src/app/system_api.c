/* system_api — /healthz, /metrics and /api/v1/whoami. */
#include "app/app.h"

#include "core/clock.h"

static int db_ping(struct app *a)
{
    return sqlite3_exec(db_sqlite(a->db), "SELECT 1", NULL, NULL, NULL) == SQLITE_OK;
}

int api_healthz(http_request *req, void *app)
{
    struct app *a = app;
    int ok = db_ping(a);
    json_t *body = json_pack("{s:s, s:s, s:i, s:f}", "status", ok ? "ok" : "degraded",
                             "version", CB_VERSION, "schema_version", db_schema_version(a->db),
                             "uptime_s", clock_mono_s() - a->started);
    return http_reply_json(req, ok ? 200 : 503, body);
}

int api_metrics(http_request *req, void *app)
{
    struct app *a = app;
    buf out = BUF_INIT;
    http_server_write_metrics(a->http, &out);
    mqtt_write_metrics(a->mqtt, &out);
    ingest_write_metrics(a->ingest, &out);
    rules_write_metrics(a->rules, &out);
    events_write_metrics(a->events, &out);
    state_rdlock(a->state);
    size_t entities = state_count(a->state), bytes = state_memory(a->state);
    state_unlock(a->state);
    buf_printf(&out, "# HELP citybrain_ingest_parsed_off_thread_total Ingest bodies parsed by a parse worker.\n"
                     "# TYPE citybrain_ingest_parsed_off_thread_total counter\n"
                     "citybrain_ingest_parsed_off_thread_total %llu\n", workers_done(a->parsers));
    buf_printf(&out, "# TYPE citybrain_entities gauge\ncitybrain_entities %zu\n"
                     "# TYPE citybrain_state_bytes gauge\ncitybrain_state_bytes %zu\n", entities, bytes);
    buf_printf(&out,
               "# HELP citybrain_build_info Build of the running server.\n"
               "# TYPE citybrain_build_info gauge\n"
               "citybrain_build_info{version=\"%s\",commit=\"%s\"} 1\n"
               "# HELP citybrain_schema_version Migration the database is at.\n"
               "# TYPE citybrain_schema_version gauge\n"
               "citybrain_schema_version %d\n"
               "# HELP citybrain_api_keys_active API keys not revoked.\n"
               "# TYPE citybrain_api_keys_active gauge\n"
               "citybrain_api_keys_active %d\n",
               CB_VERSION, CB_COMMIT, db_schema_version(a->db), apikey_count_active(a->keys));
    int rc = buf_failed(&out) ? CB_ENOMEM
                              : http_reply_text(req, 200, "text/plain; version=0.0.4; charset=utf-8",
                                                out.data, out.len);
    buf_free(&out);
    return rc;
}

int api_whoami(http_request *req, void *app)
{
    (void)app;
    const struct principal *p = http_principal(req);
    json_t *body = json_pack("{s:s, s:s, s:s, s:s?}", "id", p->id, "role", role_name(p->role),
                             "name", p->name, "department", p->department[0] ? p->department : NULL);
    return http_reply_json(req, 200, body);
}
