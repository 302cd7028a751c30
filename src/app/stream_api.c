/* stream_api — GET /api/v1/stream (Server-Sent Events of the events ring)
 * and the webhook administration under /api/v1/webhooks. */
#include "app/app.h"

#include "core/clock.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define STREAM_RETRY_MS 3000       /* the reconnect delay browsers are told */
#define STREAM_CHUNK (64 * 1024)   /* frames produced per turn at most */

/* One SSE client; owned by its http_stream (freed in stream_done). */
struct stream_client {
    events *events;
    event_sub *sub;
    http_stream *st;
    int64_t last_write_ms;
    int keepalive_ms;
    int greeted;
};

static void stream_wake(void *ctx)
{
    struct stream_client *c = ctx;
    http_stream_wake(c->st);
}

static int stream_produce(void *ctx, buf *out)
{
    struct stream_client *c = ctx;
    int64_t now = clock_mono_ms();
    if (!c->sub)
        return HTTP_STREAM_END; /* the subscription failed and its error reply could not replace us */
    if (!c->greeted) {
        buf_printf(out, "retry: %d\n: citybrain events\n\n", STREAM_RETRY_MS);
        c->greeted = 1;
    }
    int frames = events_sse_read(c->events, c->sub, out, STREAM_CHUNK);
    if (frames > 0)
        events_count_sent(c->events, (unsigned)frames);
    else if (now - c->last_write_ms >= c->keepalive_ms)
        buf_puts(out, ": keepalive\n\n");
    if (out->len > 0)
        c->last_write_ms = now;
    return HTTP_STREAM_MORE;
}

static void stream_done(void *ctx)
{
    struct stream_client *c = ctx;
    events_unsubscribe(c->events, c->sub);
    free(c);
}

static int copy_code(char *dst, const char *src, const char *field, cb_error *err)
{
    if (!src || !*src)
        return 0;
    if (strlen(src) >= EVENT_CODE_MAX)
        return cb_error_set(err, CB_EINVALID_FIELD, field, "%s is at most %d characters", field, EVENT_CODE_MAX - 1);
    strcpy(dst, src);
    return 0;
}

/* The filter from ?kind=&district=&department=; a dept principal sees only
 * its own department's events. */
static int stream_filter(http_request *req, struct event_filter *f, cb_error *err)
{
    memset(f, 0, sizeof *f);
    const char *kinds = http_query(req, "kind");
    int rc = kinds ? events_filter_kinds(f, kinds, err) : 0;
    if (rc == 0)
        rc = copy_code(f->district, http_query(req, "district"), "district", err);
    if (rc == 0)
        rc = copy_code(f->department, http_query(req, "department"), "department", err);
    const struct principal *p = http_principal(req);
    if (rc == 0 && p->role == ROLE_DEPT) {
        if (!p->department[0])
            return cb_error_set(err, CB_EFORBIDDEN, NULL, "this department key names no department");
        if (f->department[0] && strcmp(f->department, p->department) != 0)
            return cb_error_set(err, CB_EFORBIDDEN, "department",
                                "a department key sees only its own department's events (%s)", p->department);
        strcpy(f->department, p->department);
    }
    return rc;
}

/* Last-Event-ID header, else ?last_event_id=; 0 when absent. */
static int stream_last_id(http_request *req, uint64_t *out, cb_error *err)
{
    const char *field = "Last-Event-ID";
    const char *v = http_header(req, field);
    if (!v || !*v) {
        field = "last_event_id";
        v = http_query(req, field);
    }
    *out = 0;
    if (!v || !*v)
        return 0;
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (*end || errno || v[0] == '-')
        return cb_error_set(err, CB_EINVALID_FIELD, field, "%s must be an event id (a whole number)", field);
    *out = n;
    return 0;
}

int api_stream(http_request *req, void *app)
{
    struct app *a = app;
    cb_error err;
    struct event_filter f;
    uint64_t last_id;
    if (stream_filter(req, &f, &err) != 0 || stream_last_id(req, &last_id, &err) != 0)
        return http_reply_error(req, &err);
    struct stream_client *c = calloc(1, sizeof *c);
    if (!c)
        return CB_ENOMEM;
    c->events = a->events;
    c->keepalive_ms = a->cfg.stream_keepalive * 1000;
    c->last_write_ms = clock_mono_ms();
    /* The stream first, so c->st is set before the subscription makes c
     * reachable from other threads (a keepalive beat wakes c->st). */
    int rc = http_reply_stream(req, 200, "text/event-stream; charset=utf-8", stream_produce, stream_done, c, &c->st);
    if (rc != 0) {
        free(c);
        return rc;
    }
    if (events_subscribe(a->events, &f, last_id, 1, stream_wake, c, &c->sub, &err) != 0) {
        /* The error replaces the stream reply, whose free runs stream_done(c). */
        http_reply_error(req, &err);
        return http_reply_header(req, "Retry-After", "5");
    }
    return 0;
}

/* ---- webhooks ---- */

int api_webhooks_list(http_request *req, void *app)
{
    struct app *a = app;
    cb_error err;
    json_t *out;
    if (events_webhook_list(a->events, &out, &err) != 0)
        return http_reply_error(req, &err);
    return http_reply_json(req, 200, out);
}

static int webhook_kinds(json_t *v, unsigned *kinds, cb_error *err)
{
    *kinds = 0;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_array(v))
        return cb_error_set(err, CB_EINVALID_FIELD, "kinds", "kinds is a list such as [\"alarm\", \"case\"]");
    size_t i;
    json_t *k;
    json_array_foreach(v, i, k) {
        const char *s = json_string_value(k);
        int kind = s ? events_kind_parse(s, strlen(s)) : -1;
        if (kind < 0)
            return cb_error_set(err, CB_EINVALID_FIELD, "kinds",
                                "kinds[%zu] is not one of alarm, case, supervision, kpi", i);
        *kinds |= 1u << kind;
    }
    return 0;
}

int api_webhooks_create(http_request *req, void *app)
{
    struct app *a = app;
    cb_error err;
    json_t *body = NULL, *out = NULL;
    unsigned kinds;
    int rc = http_body_json(req, &body, &err);
    if (rc != 0)
        return http_reply_error(req, &err);
    json_t *url = json_object_get(body, "url"), *secret = json_object_get(body, "secret");
    if (!url)
        rc = cb_error_set(&err, CB_EMISSING_FIELD, "url", "url is required, e.g. \"http://host:port/path\"");
    else if (!json_is_string(url))
        rc = cb_error_set(&err, CB_EINVALID_FIELD, "url", "url must be a string");
    else if (secret && !json_is_null(secret) && !json_is_string(secret))
        rc = cb_error_set(&err, CB_EINVALID_FIELD, "secret", "secret must be a string");
    if (rc == 0)
        rc = webhook_kinds(json_object_get(body, "kinds"), &kinds, &err);
    if (rc == 0)
        rc = events_webhook_create(a->events, json_string_value(url), json_string_value(secret), kinds, &out, &err);
    json_decref(body);
    if (rc != 0)
        return http_reply_error(req, &err);
    return http_reply_json(req, 201, out);
}

int api_webhook_delete(http_request *req, void *app)
{
    struct app *a = app;
    cb_error err;
    if (events_webhook_delete(a->events, http_param(req, "id"), &err) != 0)
        return http_reply_error(req, &err);
    return http_reply_json(req, 200, json_pack("{s:s, s:b}", "id", http_param(req, "id"), "deleted", 1));
}
