/* entities_api — the entity registry over HTTP: create (one or a bulk list),
 * read, list with filters, aggregate, update, delete, device tokens, types. */
#include "app/app.h"

#include "mqtt/mqtt_auth.h"

#include <stdlib.h>
#include <string.h>

static void filter_from_query(http_request *req, struct entity_filter *f)
{
    f->type = http_query(req, "type");
    f->district = http_query(req, "district");
    f->grid = http_query(req, "grid");
    f->bbox = http_query(req, "bbox");
    f->near = http_query(req, "near");
    f->q = http_query(req, "q");
    f->online = http_query(req, "online");
    f->cursor = http_query(req, "cursor");
    f->limit = http_query(req, "limit");
}

int api_entities_list(http_request *req, void *app)
{
    struct app *a = app;
    struct entity_filter f;
    json_t *out;
    cb_error err;
    filter_from_query(req, &f);
    if (entity_list(a->entities, &f, &out, &err) != 0)
        return http_reply_error(req, &err);
    return http_reply_json(req, 200, out);
}

int api_entities_stats(http_request *req, void *app)
{
    struct app *a = app;
    struct entity_filter f;
    json_t *out;
    cb_error err;
    filter_from_query(req, &f);
    f.cursor = f.limit = NULL;
    if (entity_stats(a->entities, &f, http_query(req, "by"), http_query(req, "attr"), &out, &err) != 0)
        return http_reply_error(req, &err);
    return http_reply_json(req, 200, out);
}

/* Tells the MQTT broker about a device's new token (its password there), or
 * that the device has none any more (token NULL). */
static void publish_token(struct app *a, const char *id, const char *token)
{
    cb_error err;
    if ((token ? mqtt_auth_set(&a->cfg, id, token, &err) : mqtt_auth_remove(&a->cfg, id, &err)) != 0)
        log_event(LOG_ERROR, "mqtt_auth", "entity=%s error=%s msg=\"%s\"", id, cb_err_name(err.code), err.message);
}

/* One rewrite of the broker's files for the whole bulk create. */
static void publish_bulk_tokens(struct app *a, json_t *tokens)
{
    if (json_array_size(tokens) == 0)
        return;
    size_t i;
    json_t *t;
    mqtt_auth *ma = NULL;
    cb_error err;
    int rc = mqtt_auth_begin(&a->cfg, &ma, &err);
    json_array_foreach(tokens, i, t) {
        if (rc == 0)
            rc = mqtt_auth_put(ma, json_string_value(json_object_get(t, "id")),
                               json_string_value(json_object_get(t, "token")), &err);
    }
    if (rc == 0)
        rc = mqtt_auth_commit(ma, &err); /* frees ma */
    else
        mqtt_auth_abort(ma);
    if (rc != 0)
        log_event(LOG_ERROR, "mqtt_auth", "error=%s msg=\"%s\"", cb_err_name(rc), err.message);
}

int api_entities_create(http_request *req, void *app)
{
    struct app *a = app;
    json_t *body, *out = NULL, *list;
    cb_error err;
    if (http_body_json(req, &body, &err) != 0)
        return http_reply_error(req, &err);
    int bulk = (list = json_object_get(body, "entities")) != NULL;
    int rc;
    if (bulk && !json_is_array(list))
        rc = cb_error_set(&err, CB_EINVALID_FIELD, "entities", "entities must be an array");
    else
        rc = bulk ? entity_create_bulk(a->entities, list, &out, &err) : entity_create(a->entities, body, "", &out, &err);
    json_decref(body);
    if (rc != 0)
        return http_reply_error(req, &err);
    if (bulk)
        publish_bulk_tokens(a, json_object_get(out, "tokens"));
    else if (json_object_get(out, "token"))
        publish_token(a, json_string_value(json_object_get(out, "id")), json_string_value(json_object_get(out, "token")));
    return http_reply_json(req, bulk ? 200 : 201, out);
}

int api_entity_get(http_request *req, void *app)
{
    struct app *a = app;
    json_t *out;
    cb_error err;
    if (entity_get(a->entities, http_param(req, "id"), &out, &err) != 0)
        return http_reply_error(req, &err);
    return http_reply_json(req, 200, out);
}

int api_entity_update(http_request *req, void *app)
{
    struct app *a = app;
    json_t *body, *out;
    cb_error err;
    if (http_body_json(req, &body, &err) != 0)
        return http_reply_error(req, &err);
    int rc = entity_update(a->entities, http_param(req, "id"), body, &out, &err);
    json_decref(body);
    return rc != 0 ? http_reply_error(req, &err) : http_reply_json(req, 200, out);
}

int api_entity_delete(http_request *req, void *app)
{
    struct app *a = app;
    cb_error err;
    const char *id = http_param(req, "id");
    if (entity_delete(a->entities, id, &err) != 0)
        return http_reply_error(req, &err);
    publish_token(a, id, NULL);
    return http_reply_json(req, 200, json_pack("{s:s, s:b}", "id", id, "deleted", 1));
}

int api_entity_token_issue(http_request *req, void *app)
{
    struct app *a = app;
    cb_error err;
    char token[ENTITY_TOKEN_MAX];
    const char *id = http_param(req, "id");
    if (entity_token_issue(a->entities, id, token, &err) != 0)
        return http_reply_error(req, &err);
    publish_token(a, id, token);
    return http_reply_json(req, 201, json_pack("{s:s, s:s, s:s}", "id", id, "token", token, "note",
                                               "the token is shown only now; the previous one no longer works"));
}

int api_entity_token_revoke(http_request *req, void *app)
{
    struct app *a = app;
    cb_error err;
    const char *id = http_param(req, "id");
    if (entity_token_revoke(a->entities, id, &err) != 0)
        return http_reply_error(req, &err);
    publish_token(a, id, NULL);
    return http_reply_json(req, 200, json_pack("{s:s, s:b}", "id", id, "revoked", 1));
}

int api_types_list(http_request *req, void *app)
{
    struct app *a = app;
    return http_reply_json(req, 200, json_pack("{s:o}", "types", entity_types_json(a->entities)));
}

int api_type_set(http_request *req, void *app)
{
    struct app *a = app;
    json_t *body;
    cb_error err;
    if (http_body_json(req, &body, &err) != 0)
        return http_reply_error(req, &err);
    json_t *hb = json_object_get(body, "heartbeat_s");
    json_int_t seconds = json_integer_value(hb); /* read before body (and hb with it) is freed */
    int in_range = json_is_integer(hb) && seconds >= 1 && seconds <= 30 * 86400; /* before the cast to int */
    int rc = in_range ? entity_type_set(a->entities, http_param(req, "type"), (int)seconds, &err)
                      : cb_error_set(&err, CB_EINVALID_FIELD, "heartbeat_s", "heartbeat_s must be 1..2592000 seconds");
    json_decref(body);
    if (rc != 0)
        return http_reply_error(req, &err);
    return http_reply_json(req, 200, json_pack("{s:s, s:I}", "type", http_param(req, "type"), "heartbeat_s", seconds));
}
