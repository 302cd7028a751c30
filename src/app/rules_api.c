/* rules_api — alarm rules and maintenance windows over HTTP: CRUD on
 * /api/v1/rules and /api/v1/maintenance (staff read, admin and operator
 * write); the rules module validates and names the offending field. */
#include "app/app.h"

int api_rules_list(http_request *req, void *app)
{
    struct app *a = app;
    json_t *out;
    cb_error err;
    if (rules_list(a->rules, &out, &err) != 0)
        return http_reply_error(req, &err);
    return http_reply_json(req, 200, out);
}

int api_rules_create(http_request *req, void *app)
{
    struct app *a = app;
    json_t *body, *out;
    cb_error err;
    if (http_body_json(req, &body, &err) != 0)
        return http_reply_error(req, &err);
    int rc = rules_create(a->rules, body, &out, &err);
    json_decref(body);
    if (rc != 0)
        return http_reply_error(req, &err);
    return http_reply_json(req, 201, out);
}

int api_rule_get(http_request *req, void *app)
{
    struct app *a = app;
    json_t *out;
    cb_error err;
    if (rules_get(a->rules, http_param(req, "id"), &out, &err) != 0)
        return http_reply_error(req, &err);
    return http_reply_json(req, 200, out);
}

int api_rule_update(http_request *req, void *app)
{
    struct app *a = app;
    json_t *body, *out;
    cb_error err;
    if (http_body_json(req, &body, &err) != 0)
        return http_reply_error(req, &err);
    int rc = rules_update(a->rules, http_param(req, "id"), body, &out, &err);
    json_decref(body);
    if (rc != 0)
        return http_reply_error(req, &err);
    return http_reply_json(req, 200, out);
}

int api_rule_delete(http_request *req, void *app)
{
    struct app *a = app;
    cb_error err;
    if (rules_delete(a->rules, http_param(req, "id"), &err) != 0)
        return http_reply_error(req, &err);
    return http_reply_json(req, 200, json_pack("{s:s, s:b}", "id", http_param(req, "id"), "deleted", 1));
}

int api_maintenance_list(http_request *req, void *app)
{
    struct app *a = app;
    json_t *out;
    cb_error err;
    if (rules_maintenance_list(a->rules, &out, &err) != 0)
        return http_reply_error(req, &err);
    return http_reply_json(req, 200, out);
}

int api_maintenance_create(http_request *req, void *app)
{
    struct app *a = app;
    json_t *body, *out;
    cb_error err;
    if (http_body_json(req, &body, &err) != 0)
        return http_reply_error(req, &err);
    int rc = rules_maintenance_create(a->rules, body, http_principal(req)->id, &out, &err);
    json_decref(body);
    if (rc != 0)
        return http_reply_error(req, &err);
    return http_reply_json(req, 201, out);
}

int api_maintenance_delete(http_request *req, void *app)
{
    struct app *a = app;
    cb_error err;
    if (rules_maintenance_delete(a->rules, http_param(req, "id"), &err) != 0)
        return http_reply_error(req, &err);
    return http_reply_json(req, 200, json_pack("{s:s, s:b}", "id", http_param(req, "id"), "deleted", 1));
}
