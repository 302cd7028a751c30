/* alarms_api — alarms over HTTP: list with filters and a cursor, one with
 * its history, acknowledge, clear by hand, counts for the dashboard. */
#include "app/app.h"

int api_alarms_list(http_request *req, void *app)
{
    struct app *a = app;
    struct alarm_filter f = {http_query(req, "state"), http_query(req, "severity"), http_query(req, "district"),
                             http_query(req, "type"),  http_query(req, "entity"),   http_query(req, "rule"),
                             http_query(req, "limit"), http_query(req, "cursor")};
    json_t *out;
    cb_error err;
    if (alarm_list(a->rules, &f, &out, &err) != 0)
        return http_reply_error(req, &err);
    return http_reply_json(req, 200, out);
}

int api_alarms_stats(http_request *req, void *app)
{
    struct app *a = app;
    json_t *out;
    cb_error err;
    if (alarm_stats(a->rules, http_query(req, "state"), &out, &err) != 0)
        return http_reply_error(req, &err);
    return http_reply_json(req, 200, out);
}

int api_alarm_get(http_request *req, void *app)
{
    struct app *a = app;
    json_t *out;
    cb_error err;
    if (alarm_get(a->rules, http_param(req, "id"), &out, &err) != 0)
        return http_reply_error(req, &err);
    return http_reply_json(req, 200, out);
}

/* The optional {"note": "..."} of acknowledge and clear; *body (caller frees) may stay NULL. */
static int read_note(http_request *req, json_t **body, const char **note, cb_error *err)
{
    size_t len;
    *body = NULL;
    *note = NULL;
    http_body(req, &len);
    if (len == 0)
        return 0;
    int rc = http_body_json(req, body, err);
    json_t *v = rc == 0 ? json_object_get(*body, "note") : NULL;
    if (v && !json_is_null(v) && (!json_is_string(v) || json_string_length(v) > 2000))
        return cb_error_set(err, CB_EINVALID_FIELD, "note", "note must be a string of at most 2000 bytes");
    *note = json_string_value(v);
    return rc;
}

typedef int (*alarm_change_fn)(rules *r, const char *id, const char *by, const char *note, json_t **out, cb_error *err);

static int change(http_request *req, struct app *a, alarm_change_fn fn)
{
    json_t *body, *out = NULL;
    const char *note;
    cb_error err;
    int rc = read_note(req, &body, &note, &err);
    if (rc == 0)
        rc = fn(a->rules, http_param(req, "id"), http_principal(req)->id, note, &out, &err);
    json_decref(body);
    if (rc != 0)
        return http_reply_error(req, &err);
    return http_reply_json(req, 200, out);
}

int api_alarm_acknowledge(http_request *req, void *app)
{
    return change(req, app, alarm_acknowledge);
}

int api_alarm_clear(http_request *req, void *app)
{
    return change(req, app, alarm_clear);
}
