/* request — what handlers see of a request, and the replies they set. */
#include "http_int.h"

#include "core/text.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

const char *http_method(const http_request *req) { return req->method; }
const char *http_path(const http_request *req) { return req->path; }
arena *http_arena(http_request *req) { return req->arena; }

const struct principal *http_principal(const http_request *req)
{
    return req->has_principal ? &req->principal : NULL;
}

const char *http_param(const http_request *req, const char *name)
{
    for (int i = 0; i < req->nparams; i++)
        if (strcmp(req->param_name[i], name) == 0)
            return req->param_value[i];
    return NULL;
}

const char *http_query(http_request *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *http_header(http_request *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *http_body(const http_request *req, size_t *len)
{
    if (len)
        *len = req->body_len;
    return req->body ? req->body : "";
}

static int content_type_is_json(const char *ct)
{
    if (!ct)
        return 1; /* curl -d without -H: be lenient, the body decides */
    while (*ct == ' ')
        ct++;
    return strncasecmp(ct, "application/json", 16) == 0 ||
           strncasecmp(ct, "application/x-www-form-urlencoded", 33) == 0;
}

int http_body_json(http_request *req, json_t **out, cb_error *err)
{
    if (!content_type_is_json(http_header(req, "Content-Type")))
        return cb_error_set(err, CB_EMEDIA_TYPE, "Content-Type",
                            "expected Content-Type: application/json");
    if (req->body_len == 0)
        return cb_error_set(err, CB_EINVALID_JSON, "body", "the request body is empty");
    json_error_t je;
    json_t *j = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &je);
    if (!j)
        return cb_error_set(err, CB_EINVALID_JSON, "body", "line %d, column %d: %s", je.line,
                            je.column, je.text);
    if (!json_is_object(j)) {
        json_decref(j);
        return cb_error_set(err, CB_EINVALID_JSON, "body", "the body must be a JSON object");
    }
    *out = j;
    return 0;
}

int http__set_response(http_request *req, int status, struct MHD_Response *r)
{
    if (!r)
        return CB_ENOMEM;
    if (req->response)
        MHD_destroy_response(req->response); /* a later reply replaces an earlier one */
    req->stream = NULL;                      /* ... and a stream's ended with it */
    req->response = r;
    req->status = status;
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    return 0;
}

int http_reply_text(http_request *req, int status, const char *content_type, const char *data,
                    size_t len)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_MUST_COPY);
    int rc = http__set_response(req, status, r);
    if (rc == 0)
        MHD_add_response_header(r, "Content-Type", content_type);
    return rc;
}

int http_reply_owned(http_request *req, int status, const char *content_type, char *data, size_t len)
{
    struct MHD_Response *r = MHD_create_response_from_buffer_with_free_callback(len, data, free);
    if (!r)
        free(data);
    int rc = http__set_response(req, status, r);
    if (rc == 0)
        MHD_add_response_header(r, "Content-Type", content_type);
    return rc;
}

int http_reply_json(http_request *req, int status, json_t *body)
{
    char *text = body ? json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(12)) : NULL;
    json_decref(body);
    if (!text)
        return CB_ENOMEM;
    size_t len = strlen(text);
    struct MHD_Response *r = MHD_create_response_from_buffer_with_free_callback(len, text, free);
    if (!r)
        free(text);
    int rc = http__set_response(req, status, r);
    if (rc == 0)
        MHD_add_response_header(r, "Content-Type", "application/json; charset=utf-8");
    return rc;
}

json_t *http_error_json(const cb_error *err)
{
    json_t *e = json_object();
    json_object_set_new(e, "code", json_string(cb_err_name(err->code)));
    json_object_set_new(e, "message", text_json(err->message[0] ? err->message : cb_strerror(err->code)));
    if (err->field[0])
        json_object_set_new(e, "field", text_json(err->field));
    json_t *body = json_object();
    json_object_set_new(body, "error", e);
    return body;
}

int http_reply_error(http_request *req, const cb_error *err)
{
    return http_reply_json(req, cb_err_http_status(err->code), http_error_json(err));
}

int http_reply_errorf(http_request *req, int code, const char *field, const char *fmt, ...)
{
    cb_error err;
    cb_error_set(&err, code, field, NULL);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err.message, sizeof err.message, fmt, ap);
    va_end(ap);
    return http_reply_error(req, &err);
}

int http_reply_header(http_request *req, const char *name, const char *value)
{
    if (!req->response)
        return CB_EINTERNAL;
    return MHD_add_response_header(req->response, name, value) == MHD_YES ? 0 : CB_ENOMEM;
}
