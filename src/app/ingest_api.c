/* ingest_api — POST /api/v1/ingest (JSON) and POST /api/v1/write (line
 * protocol). A small body is parsed on the HTTP thread, a large one on a
 * parse worker; the batch goes to the writer and the reply is deferred: the
 * writer's callback answers once the batch is in the WAL and the state. */
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

/* A request to one of the doors: what its parse needs, read on the HTTP
 * thread, so the parse may run on a worker. */
struct door {
    struct workers_job job; /* first: a parse off the HTTP thread */
    struct app *a;
    http_request *req;
    const char *body;
    size_t len;
    int line_protocol;      /* else JSON */
    const char *precision;  /* line protocol's ?precision=, or NULL */
    const struct principal *who;
};

/* Bodies at least this large are parsed on a worker (app.parsers), so the
 * HTTP thread goes back to reading the next one. */
#define PARSE_OFF_THREAD_BYTES (64 * 1024)

/* Parses the body with the door's parser, then submits. */
static int ingest_through(struct door *d)
{
    batch b;
    struct ingest_report rep;
    cb_error err;
    batch_init(&b);
    ingest_report_init(&rep);
    int rc = d->line_protocol ? ingest_parse_lp(d->a->ingest, d->body, d->len, d->precision, d->who, &b, &rep, &err)
                              : ingest_parse_json(d->a->ingest, d->body, d->len, d->who, &b, &rep, &err);
    if (rc != 0) {
        batch_free(&b);
        ingest_report_free(&rep);
        return http_reply_error(d->req, &err);
    }
    return submit(d->a, d->req, &b, &rep);
}

/* A worker: the request is deferred, so this answers it unless the writer will. */
static void parse_on_worker(struct workers_job *job)
{
    struct door *d = (struct door *)job;
    http_request *req = d->req;
    int rc = ingest_through(d);
    if (rc == HTTP_DEFERRED)
        return;
    if (rc < 0)
        http_reply_errorf(req, rc, NULL, "%s", cb_strerror(rc));
    http_resume(req);
}

static int ingest_door(http_request *req, struct app *a, int line_protocol)
{
    struct door *d = arena_alloc(http_arena(req), sizeof *d);
    if (!d)
        return CB_ENOMEM;
    *d = (struct door){.a = a, .req = req, .line_protocol = line_protocol, .who = http_principal(req)};
    d->body = http_body(req, &d->len);
    d->precision = line_protocol ? http_query(req, "precision") : NULL;
    d->job.run = parse_on_worker;
    if (a->parsers && d->len >= PARSE_OFF_THREAD_BYTES && workers_submit(a->parsers, &d->job) == 0)
        return HTTP_DEFERRED;
    return ingest_through(d); /* small, or the workers are busy: here */
}

int api_ingest_json(http_request *req, void *app)
{
    return ingest_door(req, app, 0);
}

int api_ingest_lp(http_request *req, void *app)
{
    return ingest_door(req, app, 1);
}
