/* keys_api — API key administration over HTTP (admin only). */
#include "app/app.h"

#include <string.h>

int api_keys_list(http_request *req, void *app)
{
    struct app *a = app;
    cb_error err;
    json_t *keys;
    if (apikey_list(a->keys, &keys, &err) != 0)
        return http_reply_error(req, &err);
    return http_reply_json(req, 200, json_pack("{s:o}", "keys", keys));
}

/* Reads an optional string member; CB_EINVALID_FIELD if present but not a string. */
static int optional_string(json_t *body, const char *name, const char **out, cb_error *err)
{
    json_t *v = json_object_get(body, name);
    *out = NULL;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return cb_error_set(err, CB_EINVALID_FIELD, name, "%s must be a string", name);
    *out = json_string_value(v);
    return 0;
}

static int parse_create(json_t *body, enum role *role, const char **dep, const char **name,
                        cb_error *err)
{
    const char *role_text;
    int rc = optional_string(body, "role", &role_text, err);
    if (rc == 0 && !role_text)
        rc = cb_error_set(err, CB_EMISSING_FIELD, "role",
                          "role is required: admin, operator, dept, grid, viewer, hotline or citizen");
    if (rc == 0 && role_parse(role_text, role) != 0)
        rc = cb_error_set(err, CB_EINVALID_FIELD, "role",
                          "unknown role '%s': use admin, operator, dept, grid, viewer, hotline or citizen",
                          role_text);
    if (rc == 0)
        rc = optional_string(body, "department", dep, err);
    if (rc == 0)
        rc = optional_string(body, "name", name, err);
    return rc;
}

int api_keys_create(http_request *req, void *app)
{
    struct app *a = app;
    cb_error err;
    json_t *body = NULL;
    enum role role;
    const char *dep, *name;
    char key[APIKEY_MAX];
    struct principal p;
    int rc = http_body_json(req, &body, &err);
    if (rc == 0)
        rc = parse_create(body, &role, &dep, &name, &err);
    if (rc == 0)
        rc = apikey_create(a->keys, role, dep, name, key, &p, &err);
    json_decref(body);
    if (rc != 0)
        return http_reply_error(req, &err);
    json_t *out = json_pack("{s:s, s:s, s:s, s:s, s:s?, s:s}", "id", p.id, "key", key, "role",
                            role_name(p.role), "name", p.name, "department",
                            p.department[0] ? p.department : NULL, "note",
                            "the key is shown only now; store it safely");
    memset(key, 0, sizeof key);
    return http_reply_json(req, 201, out);
}

int api_keys_revoke(http_request *req, void *app)
{
    struct app *a = app;
    cb_error err;
    const char *id = http_param(req, "id");
    if (apikey_revoke(a->keys, id, &err) != 0)
        return http_reply_error(req, &err);
    return http_reply_json(req, 200, json_pack("{s:s, s:b}", "id", id, "revoked", 1));
}
