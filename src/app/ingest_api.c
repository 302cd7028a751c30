/* ingest_api — POST /api/v1/ingest (JSON) and POST /api/v1/write (line
 * protocol). A small body is parsed on the HTTP thread, a large one on a
 * parse worker; the batch goes to the writer and the reply is deferred: the
 * writer's callback answers once the batch is in the WAL and the state. A
 * large line-protocol body goes to the writer in parts as it is parsed, so
 * the writer applies its start while the worker parses the rest; the answer
 * waits for the last part. */
#include "app/app.h"

#include <assert.h>
#include <stdatomic.h>
#include <string.h>

/* What a request's answer waits for: the end of its parse and every part of
 * its readings the writer took. The last to finish answers. */
struct ingest_call {
    http_request *req;
    struct ingest_report rep;
    atomic_uint pending;  /* parts in the writer, + 1 held by the parse (then by its last part) */
    atomic_int failed;    /* set once, by whoever writes err */
    cb_error err;
};

/* An error answer; a full queue also says when to come back. */
static int reply_error(http_request *req, const cb_error *err)
{
    int rc = http_reply_error(req, err);
    if (err->code == CB_EUNAVAILABLE)
        http_reply_header(req, "Retry-After", "1");
    return rc;
}

static int reply_report(http_request *req, struct ingest_report *rep)
{
    int status;
    json_t *body = ingest_report_json(rep, &status);
    ingest_report_free(rep);
    return http_reply_json(req, status, body);
}

/* Keeps the first failure: the request answers with it (parts before it
 * may be stored; resending them is safe, a duplicate time is last-write-wins). */
static void call_fail(struct ingest_call *call, const cb_error *err)
{
    int none = 0;
    if (atomic_compare_exchange_strong(&call->failed, &none, 1))
        call->err = *err;
}

/* Drops one hold; the last answers and resumes the request, which may then be
 * gone: the caller must not touch it after this. */
static void call_release(struct ingest_call *call)
{
    if (atomic_fetch_sub_explicit(&call->pending, 1, memory_order_acq_rel) != 1)
        return;
    if (atomic_load(&call->failed)) {
        reply_error(call->req, &call->err);
        ingest_report_free(&call->rep);
    } else {
        reply_report(call->req, &call->rep);
    }
    http_resume(call->req);
}

/* Writer thread: a part is committed and applied (or refused). */
static void ingest_done(void *arg, int rc, const cb_error *err)
{
    struct ingest_call *call = arg;
    if (rc != 0)
        call_fail(call, err);
    call_release(call);
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
    size_t parts;           /* parts the writer took */
    struct ingest_call call;
};

/* Bodies at least this large are parsed on a worker (app.parsers), so the
 * HTTP thread goes back to reading the next one. */
#define PARSE_OFF_THREAD_BYTES (64 * 1024)

/* Hands a part to the writer. The first may be refused (a full queue: 503,
 * nothing stored); later ones wait for room, as a 503 could not undo the
 * first. The last part carries the parse's hold (last), so the writer answers. */
static int submit_part(struct door *d, batch *b, int last, cb_error *err)
{
    if (!last)
        atomic_fetch_add(&d->call.pending, 1);
    int rc = d->parts == 0 ? ingest_submit(d->a->ingest, b, ingest_done, &d->call)
                           : ingest_submit_wait(d->a->ingest, b, ingest_done, &d->call);
    if (rc != 0) {
        if (!last)
            atomic_fetch_sub(&d->call.pending, 1); /* never the last hold: the parse keeps one */
        return rc == CB_EUNAVAILABLE ? cb_error_set(err, rc, NULL, "the ingest queue is full; retry shortly")
                                     : cb_error_set(err, rc, NULL, NULL);
    }
    if (!last) /* after the last, d may be gone: the writer may have answered */
        d->parts++;
    return 0;
}

static int take_part(void *arg, batch *b, int first, cb_error *err)
{
    struct door *d = arg;
    assert(first == (d->parts == 0));
    (void)first;
    return submit_part(d, b, 0, err);
}

/* Parses the body with the door's parser (on a worker, line protocol goes to
 * the writer in parts as it is parsed) and submits what is left. Returns 0
 * (answered), HTTP_DEFERRED (the last hold answers), or an error code. */
static int ingest_through(struct door *d, int on_worker)
{
    struct ingest_call *call = &d->call;
    *call = (struct ingest_call){.req = d->req};
    atomic_init(&call->pending, 1);
    atomic_init(&call->failed, 0);
    ingest_report_init(&call->rep);
    struct ingest_parts parts = {take_part, d};
    batch b;
    cb_error err;
    batch_init(&b);
    int rc = d->line_protocol
                 ? ingest_parse_lp(d->a->ingest, d->body, d->len, d->precision, d->who, on_worker ? &parts : NULL,
                                   &b, &call->rep, &err)
                 : ingest_parse_json(d->a->ingest, d->body, d->len, d->who, &b, &call->rep, &err);
    if (rc == 0 && b.count > 0) {
        rc = submit_part(d, &b, 1, &err);
        if (rc == 0)
            return HTTP_DEFERRED; /* the writer answers: the request may be gone already */
    }
    batch_free(&b);
    if (d->parts == 0) { /* the writer has nothing of it: answer here */
        if (rc == 0)
            return reply_report(d->req, &call->rep);
        ingest_report_free(&call->rep);
        return reply_error(d->req, &err);
    }
    if (rc != 0)
        call_fail(call, &err);
    call_release(call); /* the parse's hold: the request may be gone after it */
    return HTTP_DEFERRED;
}

/* A worker: the request is deferred, so this answers it unless the writer will. */
static void parse_on_worker(struct workers_job *job)
{
    struct door *d = (struct door *)job;
    http_request *req = d->req;
    int rc = ingest_through(d, 1);
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
    return ingest_through(d, 0); /* small, or the workers are busy: here */
}

int api_ingest_json(http_request *req, void *app)
{
    return ingest_door(req, app, 0);
}

int api_ingest_lp(http_request *req, void *app)
{
    return ingest_door(req, app, 1);
}
