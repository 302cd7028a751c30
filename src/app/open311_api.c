/* open311_api — Open311 GeoReport v2 at /open311/v2/ (open311.h): every
 * document as .json or .xml by its suffix, errors in the standard's format
 * ([{"code", "description"}] or <errors>), public reads of citizens'
 * reports, POST requests with an api_key that is a citybrain API key of a
 * citizen app (GeoReport's api_key is an application's key; staff report
 * through /api/v1/cases, never into the public list), answered with the request's follow secret (access_token), and the
 * extension requests/{id}/rating.json through which the citizen who holds
 * that secret rates the closed request. The router matches whole segments,
 * so "services.json" arrives as one {doc} and is split here. */
#include "app/app.h"

#include "core/clock.h"
#include "open311/open311.h"

#include <ctype.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

enum format { FORMAT_JSON, FORMAT_XML };

/* "services.json" → name "services", FORMAT_JSON; -1 without a known suffix. */
static int split_suffix(const char *file, char *name, size_t n, enum format *f)
{
    const char *dot = file ? strrchr(file, '.') : NULL;
    if (!dot || dot == file || (size_t)(dot - file) >= n)
        return -1;
    if (strcmp(dot, ".json") == 0)
        *f = FORMAT_JSON;
    else if (strcmp(dot, ".xml") == 0)
        *f = FORMAT_XML;
    else
        return -1;
    memcpy(name, file, (size_t)(dot - file));
    name[dot - file] = '\0';
    return 0;
}

/* Sends v (stolen) as JSON, or as XML under <root>. */
static int reply(http_request *req, enum format f, int status, const char *root, json_t *v)
{
    if (!v)
        return CB_ENOMEM;
    if (f == FORMAT_JSON)
        return http_reply_json(req, status, v);
    buf b = BUF_INIT;
    open311_xml(&b, root, v);
    json_decref(v);
    int rc = buf_failed(&b) ? CB_ENOMEM : http_reply_text(req, status, "text/xml; charset=utf-8", b.data, b.len);
    buf_free(&b);
    return rc;
}

/* The standard's error: [{"code": 400, "description": "..."}]. */
static int reply_error(http_request *req, enum format f, const cb_error *err)
{
    int status = cb_err_http_status(err->code);
    const char *msg = err->message[0] ? err->message : cb_strerror(err->code);
    return reply(req, f, status, "errors", json_pack("[{s:i, s:s}]", "code", status, "description", msg));
}

static int reply_errorf(http_request *req, enum format f, int code, const char *field, const char *msg)
{
    cb_error err;
    cb_error_set(&err, code, field, "%s", msg);
    return reply_error(req, f, &err);
}

/* The absolute URL of the endpoint for discovery, from the Host header. */
static void endpoint_url(http_request *req, char *out, size_t n)
{
    const char *host = http_header(req, "Host");
    int ok = host && *host && strlen(host) < 200;
    for (const char *p = host; ok && *p; p++)
        ok = isalnum((unsigned char)*p) || strchr(".-:[]", *p);
    snprintf(out, n, "%s%s/open311/v2", ok ? "http://" : "", ok ? host : "");
}

int api_open311_get(http_request *req, void *app)
{
    struct app *a = app;
    char name[32];
    enum format f = FORMAT_JSON;
    json_t *out = NULL;
    cb_error err;
    int rc;
    if (split_suffix(http_param(req, "doc"), name, sizeof name, &f) != 0)
        return reply_errorf(req, f, CB_ENOT_FOUND, "path", "no such document: use discovery, services or requests with .json or .xml");
    if (strcmp(name, "discovery") == 0) {
        char url[256];
        endpoint_url(req, url, sizeof url);
        return reply(req, f, 200, "discovery", open311_discovery(url));
    }
    if (strcmp(name, "services") == 0)
        rc = open311_services(a->db, &out, &err);
    else if (strcmp(name, "requests") == 0) {
        struct open311_filter flt = {
            .service_request_id = http_query(req, "service_request_id"),
            .service_code = http_query(req, "service_code"), .start_date = http_query(req, "start_date"),
            .end_date = http_query(req, "end_date"), .status = http_query(req, "status"), .now = clock_now_ms(),
        };
        rc = open311_requests(a->db, &flt, &out, &err);
    } else
        return reply_errorf(req, f, CB_ENOT_FOUND, "path", "no such document: use discovery, services or requests");
    if (rc != 0)
        return reply_error(req, f, &err);
    return reply(req, f, 200, strcmp(name, "services") == 0 ? "services" : "service_requests", out);
}

int api_open311_service(http_request *req, void *app)
{
    struct app *a = app;
    char code[48];
    enum format f = FORMAT_JSON;
    json_t *out;
    cb_error err;
    if (split_suffix(http_param(req, "file"), code, sizeof code, &f) != 0)
        return reply_errorf(req, f, CB_ENOT_FOUND, "path", "use services/{service_code}.json or .xml");
    if (open311_service_definition(a->db, code, &out, &err) != 0)
        return reply_error(req, f, &err);
    return reply(req, f, 200, "service_definition", out);
}

/* One request, or (token) the request a token stands for: requests are
 * created at once, so a token is the request's id itself. */
static int one_request(http_request *req, struct app *a, int token)
{
    char id[CASE_ID_MAX * 2];
    enum format f = FORMAT_JSON;
    json_t *out;
    cb_error err;
    if (split_suffix(http_param(req, "file"), id, sizeof id, &f) != 0)
        return reply_errorf(req, f, CB_ENOT_FOUND, "path", "use {id}.json or {id}.xml");
    if (open311_request(a->db, id, &out, &err) != 0) {
        if (token && err.code == CB_ENOT_FOUND)
            cb_error_set(&err, CB_ENOT_FOUND, "token", "no token '%.40s'", id);
        return reply_error(req, f, &err);
    }
    if (token) {
        json_decref(out);
        out = json_pack("[{s:s, s:s}]", "service_request_id", id, "token", id);
    }
    return reply(req, f, 200, "service_requests", out);
}

int api_open311_request(http_request *req, void *app)
{
    return one_request(req, app, 0);
}

int api_open311_token(http_request *req, void *app)
{
    return one_request(req, app, 1);
}

/* A POST's parameters: the form body first, then the query string; the
 * secrets (api_key, access_token) from the body only, as GeoReport v2 posts
 * them, so they never land in a proxy's or server's access log. */
struct post_params {
    http_request *req;
    struct open311_form form;
};

static const char *post_param(void *ctx, const char *name)
{
    struct post_params *p = ctx;
    const char *v = open311_form_get(&p->form, name);
    if (v || strcmp(name, "api_key") == 0 || strcmp(name, "access_token") == 0)
        return v;
    return http_query(p->req, name);
}

/* The api_key's principal: a citizen app's key, and no other. Requests are
 * public (channel citizen), so a staff key is refused: what a 12345 operator
 * types about a caller must not reach GET requests. */
static int check_key(struct app *a, const char *key, struct principal *who, cb_error *err)
{
    if (!key || !*key)
        return cb_error_set(err, CB_EFORBIDDEN, "api_key", "api_key is required to submit a service request");
    if (strncmp(key, "cbd_", 4) == 0 || apikey_authenticate(a->keys, key, who, err) != 0)
        return cb_error_set(err, CB_EFORBIDDEN, "api_key", "invalid api_key");
    if (who->role != ROLE_CITIZEN)
        return cb_error_set(err, CB_EFORBIDDEN, "api_key",
                            "an api_key of role %s may not submit service requests: use a citizen app's key "
                            "(staff report through POST /api/v1/cases)",
                            role_name(who->role));
    return 0;
}

static int post_requests(http_request *req, struct app *a, enum format f)
{
    const char *ct = http_header(req, "Content-Type");
    size_t len;
    const char *body = http_body(req, &len);
    struct post_params p = {req, {0, NULL, NULL, NULL}};
    cb_error err;
    if (ct && strncasecmp(ct, "application/x-www-form-urlencoded", 33) != 0 && len > 0)
        return reply_errorf(req, f, CB_EMEDIA_TYPE, "Content-Type",
                            "a service request is posted as application/x-www-form-urlencoded");
    struct principal who;
    json_t *intake = NULL, *created = NULL;
    char token[CASE_FOLLOW_TOKEN_MAX] = "";
    int rc = open311_form_parse(body, len, &p.form, &err);
    if (rc == 0)
        rc = check_key(a, post_param(&p, "api_key"), &who, &err);
    if (rc == 0)
        rc = open311_intake_body(a->db, post_param, &p, &intake, &err);
    if (rc == 0)
        rc = cases_intake_followed(a->cases, &who, intake, clock_now_ms(), token, &created, &err);
    json_t *out = rc == 0 ? open311_post_reply(created, post_param(&p, "account_id"), token) : NULL;
    sodium_memzero(token, sizeof token);
    json_decref(intake);
    json_decref(created);
    open311_form_free(&p.form);
    if (rc != 0)
        return reply_error(req, f, &err);
    return reply(req, f, 201, "service_requests", out);
}

int api_open311_post(http_request *req, void *app)
{
    char name[32];
    enum format f = FORMAT_JSON;
    if (split_suffix(http_param(req, "doc"), name, sizeof name, &f) != 0 || strcmp(name, "requests") != 0)
        return reply_errorf(req, f, CB_EMETHOD, "path", "only requests.json and requests.xml take a POST");
    return post_requests(req, app, f);
}

/* POST requests/{id}/rating.json|.xml (an extension of the standard): the
 * citizen who holds the request's access_token rates it once it is closed:
 * form access_token, rating (满意, 基本满意 or 不满意), comment?. The answer
 * is the request as GET shows it. */
#define COMMENT_MAX 500 /* bytes */

int api_open311_rating(http_request *req, void *app)
{
    struct app *a = app;
    char name[32], id[CASE_ID_MAX * 2];
    enum format f = FORMAT_JSON;
    if (split_suffix(http_param(req, "doc"), name, sizeof name, &f) != 0 || strcmp(name, "rating") != 0)
        return reply_errorf(req, f, CB_ENOT_FOUND, "path", "use requests/{service_request_id}/rating.json or .xml");
    snprintf(id, sizeof id, "%s", http_param(req, "id"));
    const char *ct = http_header(req, "Content-Type");
    size_t len;
    const char *body = http_body(req, &len);
    if (ct && strncasecmp(ct, "application/x-www-form-urlencoded", 33) != 0 && len > 0)
        return reply_errorf(req, f, CB_EMEDIA_TYPE, "Content-Type",
                            "a rating is posted as application/x-www-form-urlencoded");
    struct post_params p = {req, {0, NULL, NULL, NULL}};
    cb_error err;
    json_t *args = NULL, *out = NULL;
    int rc = open311_form_parse(body, len, &p.form, &err);
    const char *rating = rc == 0 ? post_param(&p, "rating") : NULL;
    const char *comment = rc == 0 ? post_param(&p, "comment") : NULL;
    if (rc == 0 && comment && strlen(comment) > COMMENT_MAX)
        rc = cb_error_set(&err, CB_EINVALID_FIELD, "comment", "comment may have at most %d bytes", COMMENT_MAX);
    if (rc == 0 && !(args = json_pack("{s:s?, s:s?}", "rating", rating && *rating ? rating : NULL, "note",
                                      comment && *comment ? comment : NULL)))
        rc = cb_error_set(&err, CB_ENOMEM, NULL, "rating");
    if (rc == 0)
        rc = cases_rate(a->cases, id, post_param(&p, "access_token"), args, clock_now_ms(), &err);
    if (rc == 0)
        rc = open311_request(a->db, id, &out, &err);
    json_decref(args);
    open311_form_free(&p.form);
    if (rc != 0)
        return reply_error(req, f, &err);
    return reply(req, f, 200, "service_requests", out);
}
