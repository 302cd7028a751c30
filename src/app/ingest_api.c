/* ingest_api — POST /api/v1/ingest (JSON) and POST /api/v1/write (line
 * protocol). The handler parses on the HTTP thread, hands the batch to the
 * writer and defers the reply; the writer's callback answers once the batch is
 * in the WAL and the state. */
#include "app/app.h"

#include <string.h>

struct ingest_call {
    http_request *req;
    struct ingest_report rep;
};

/* Writer thread: the batch is committed and applied (or refused). */
static void ingest_done(void *arg, int rc, const cb_error *err)
{
    struct ingest_call *call = arg;
    if (rc != 0) {
        http_reply_error(call->req, err);
    } else {
        int status;
        json_t *body = ingest_report_json(&call->rep, &status);
        http_reply_json(call->req, status, body);
    }
    ingest_report_free(&call->rep);
    http_resume(call->req);
}

static int reply_report(http_request *req, struct ingest_report *rep)
{
    int status;
    json_t *body = ingest_report_json(rep, &status);
    ingest_report_free(rep);
    return http_reply_json(req, status, body);
}

/* Submits a parsed batch and defers, or answers at once (nothing accepted, queue full). */
static int submit(struct app *a, http_request *req, batch *b, struct ingest_report *rep)
{
    if (b->count == 0) {
        batch_free(b);
        return reply_report(req, rep);
    }
    struct ingest_call *call = arena_alloc(http_arena(req), sizeof *call);
    if (!call || b->failed) {
        batch_free(b);
        ingest_report_free(rep);
        return CB_ENOMEM;
    }
    call->req = req;
    call->rep = *rep;
    if (ingest_submit(a->ingest, b, ingest_done, call) == 0)
        return HTTP_DEFERRED; /* call and req now belong to the writer's callback */
    batch_free(b);
    ingest_report_free(rep);
    http_reply_errorf(req, CB_EUNAVAILABLE, NULL, "the ingest queue is full; retry shortly");
    http_reply_header(req, "Retry-After", "1");
    return 0;
}

/* Parses the body with the door's parser, then submits. */
typedef int (*door_parse_fn)(struct app *a, http_request *req, const char *body, size_t len, batch *b,
                             struct ingest_report *rep, cb_error *err);

static int ingest_through(struct app *a, http_request *req, door_parse_fn parse)
{
    size_t len;
    const char *body = http_body(req, &len);
    batch b;
    struct ingest_report rep;
    cb_error err;
    batch_init(&b);
    ingest_report_init(&rep);
    if (parse(a, req, body, len, &b, &rep, &err) != 0) {
        batch_free(&b);
        ingest_report_free(&rep);
        return http_reply_error(req, &err);
    }
    return submit(a, req, &b, &rep);
}

static int parse_json(struct app *a, http_request *req, const char *body, size_t len, batch *b,
                      struct ingest_report *rep, cb_error *err)
{
    return ingest_parse_json(a->ingest, body, len, http_principal(req), b, rep, err);
}

static int parse_lp(struct app *a, http_request *req, const char *body, size_t len, batch *b,
                    struct ingest_report *rep, cb_error *err)
{
    return ingest_parse_lp(a->ingest, body, len, http_query(req, "precision"), http_principal(req), b, rep, err);
}

int api_ingest_json(http_request *req, void *app)
{
    return ingest_through(app, req, parse_json);
}

int api_ingest_lp(http_request *req, void *app)
{
    return ingest_through(app, req, parse_lp);
}
