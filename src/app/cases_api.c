/* cases_api — the case centre over HTTP: intake, the workflow's actions,
 * reading and searching cases, statistics, supervision records, the
 * reference data (categories, departments, routing) and photo upload. */
#include "app/app.h"

#include "cases/media.h"
#include "core/clock.h"

#include <stdlib.h>
#include <string.h>

void app_cases_options(struct app *a, int interval_ms, struct cases_options *o)
{
    memset(o, 0, sizeof *o);
    o->data_dir = a->cfg.data_dir;
    o->city_dir = a->cfg.city_dir;
    o->regions = a->regions;
    o->events = a->events;
    o->duplicate_radius_m = a->cfg.duplicate_radius_m;
    o->duplicate_window_ms = (int64_t)a->cfg.duplicate_window * 1000;
    o->file_limit_min = a->cfg.case_file_limit;
    o->dispatch_limit_min = a->cfg.case_dispatch_limit;
    o->check_limit_min = a->cfg.case_check_limit;
    o->supervise_interval_ms = interval_ms;
}

int api_cases_create(http_request *req, void *app)
{
    struct app *a = app;
    json_t *body, *out;
    cb_error err;
    if (http_body_json(req, &body, &err) != 0)
        return http_reply_error(req, &err);
    int rc = cases_intake(a->cases, http_principal(req), body, clock_now_ms(), &out, &err);
    json_decref(body);
    if (rc != 0)
        return http_reply_error(req, &err);
    char loc[96];
    snprintf(loc, sizeof loc, "/api/v1/cases/%s", json_string_value(json_object_get(out, "id")));
    rc = http_reply_json(req, 201, out);
    if (rc == 0)
        http_reply_header(req, "Location", loc);
    return rc;
}

int api_cases_list(http_request *req, void *app)
{
    struct app *a = app;
    struct case_filter f = {
        .status = http_query(req, "status"), .category = http_query(req, "category"),
        .department = http_query(req, "department"), .district = http_query(req, "district"),
        .grid = http_query(req, "grid"), .channel = http_query(req, "channel"), .q = http_query(req, "q"),
        .from = http_query(req, "from"), .to = http_query(req, "to"), .overdue = http_query(req, "overdue"),
        .limit = http_query(req, "limit"), .cursor = http_query(req, "cursor"),
    };
    json_t *out;
    cb_error err;
    if (cases_list(a->cases, http_principal(req), &f, clock_now_ms(), &out, &err) != 0)
        return http_reply_error(req, &err);
    return http_reply_json(req, 200, out);
}

int api_cases_stats(http_request *req, void *app)
{
    struct app *a = app;
    json_t *out;
    cb_error err;
    if (cases_stats(a->cases, http_principal(req), http_query(req, "district"), clock_now_ms(), &out, &err) != 0)
        return http_reply_error(req, &err);
    return http_reply_json(req, 200, out);
}

int api_case_get(http_request *req, void *app)
{
    struct app *a = app;
    json_t *out;
    cb_error err;
    if (cases_get(a->cases, http_principal(req), http_param(req, "id"), clock_now_ms(), &out, &err) != 0)
        return http_reply_error(req, &err);
    return http_reply_json(req, 200, out);
}

int api_case_action(http_request *req, void *app)
{
    struct app *a = app;
    json_t *body = NULL, *out;
    cb_error err;
    size_t len;
    http_body(req, &len);
    if (len > 0 && http_body_json(req, &body, &err) != 0)
        return http_reply_error(req, &err);
    int rc = cases_transition(a->cases, http_principal(req), http_param(req, "id"), http_param(req, "action"), body,
                              clock_now_ms(), &out, &err);
    json_decref(body);
    return rc != 0 ? http_reply_error(req, &err) : http_reply_json(req, 200, out);
}

int api_supervisions_list(http_request *req, void *app)
{
    struct app *a = app;
    json_t *out;
    cb_error err;
    if (cases_supervisions(a->cases, http_principal(req), http_query(req, "case"), http_query(req, "level"),
                           http_query(req, "limit"), http_query(req, "cursor"), &out, &err) != 0)
        return http_reply_error(req, &err);
    return http_reply_json(req, 200, out);
}

int api_categories_list(http_request *req, void *app)
{
    struct app *a = app;
    json_t *out;
    cb_error err;
    if (cases_categories(a->cases, &out, &err) != 0)
        return http_reply_error(req, &err);
    return http_reply_json(req, 200, out);
}

int api_category_put(http_request *req, void *app)
{
    struct app *a = app;
    json_t *body, *out = NULL;
    cb_error err;
    if (http_body_json(req, &body, &err) != 0)
        return http_reply_error(req, &err);
    int rc = cases_category_put(a->cases, http_param(req, "code"), body, &out, &err);
    json_decref(body);
    return rc != 0 ? http_reply_error(req, &err) : http_reply_json(req, 200, out);
}

int api_departments_list(http_request *req, void *app)
{
    struct app *a = app;
    json_t *out;
    cb_error err;
    if (cases_departments(a->cases, &out, &err) != 0)
        return http_reply_error(req, &err);
    return http_reply_json(req, 200, out);
}

int api_routing_get(http_request *req, void *app)
{
    struct app *a = app;
    json_t *out;
    cb_error err;
    if (cases_routing(a->cases, &out, &err) != 0)
        return http_reply_error(req, &err);
    return http_reply_json(req, 200, out);
}

int api_routing_put(http_request *req, void *app)
{
    struct app *a = app;
    json_t *body, *out = NULL;
    cb_error err;
    if (http_body_json(req, &body, &err) != 0)
        return http_reply_error(req, &err);
    int rc = cases_routing_put(a->cases, body, &out, &err);
    json_decref(body);
    return rc != 0 ? http_reply_error(req, &err) : http_reply_json(req, 200, out);
}

int api_media_upload(http_request *req, void *app)
{
    struct app *a = app;
    char name[MEDIA_NAME_MAX], url[MEDIA_NAME_MAX + 8];
    cb_error err;
    size_t len;
    const char *data = http_body(req, &len);
    if (len == 0)
        return http_reply_errorf(req, CB_EMISSING_FIELD, NULL, "the body is the photo itself (raw bytes)");
    if (media_store(a->cfg.data_dir, http_header(req, "Content-Type"), data, len, a->cfg.media_max, name, &err) != 0)
        return http_reply_error(req, &err);
    snprintf(url, sizeof url, "/media/%s", name);
    return http_reply_json(req, 201, json_pack("{s:s, s:I}", "url", url, "bytes", (json_int_t)len));
}

int api_media_get(http_request *req, void *app)
{
    struct app *a = app;
    char *data;
    size_t len;
    const char *type;
    cb_error err;
    if (media_load(a->cfg.data_dir, http_param(req, "name"), &data, &len, &type, &err) != 0)
        return http_reply_error(req, &err);
    int rc = http_reply_text(req, 200, type, data, len);
    free(data);
    if (rc == 0) /* content-addressed: the bytes behind a name never change */
        http_reply_header(req, "Cache-Control", "public, max-age=31536000, immutable");
    return rc;
}
