/* stream — streaming replies (Server-Sent Events) on the one epoll thread.
 *
 * libmicrohttpd pulls a streaming body through a content reader. In internal
 * polling mode a reader that returns 0 is called again at once (a busy loop),
 * so when the producer has nothing the reader suspends the connection
 * (allowed from a content reader, MHD 0.9.x) and returns 0; a wake resumes
 * it. Suspend and resume are ordered by the server's stream_lock with a
 * pending flag, so a wake between "nothing to send" and the suspend is never
 * lost. Suspended connections do not time out and do not notice a client
 * that left; the producer's keepalives (woken by its owner) find out. */
#include "http_int.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#define STREAM_BLOCK (16 * 1024)

struct http_stream {
    http_server *server;
    struct MHD_Connection *conn;
    struct http_stream *prev, *next; /* server->streams, under stream_lock */
    http_stream_fn produce;
    void (*done)(void *ctx);
    void *ctx;
    buf out;                         /* produced, not yet handed to MHD: out.data[off..len) */
    size_t off;
    int ending;                      /* produce said END: send the rest, then end */
    int suspended, pending, finished; /* under stream_lock */
};

static ssize_t take(http_stream *st, char *dst, size_t max)
{
    size_t n = st->out.len - st->off;
    if (n > max)
        n = max;
    memcpy(dst, st->out.data + st->off, n);
    st->off += n;
    if (st->off == st->out.len)
        st->off = st->out.len = 0; /* keep the capacity */
    return (ssize_t)n;
}

/* 1 when the stream may sleep: nothing pending and the server not closing;
 * then it is suspended before the lock is released. */
static int suspend_unless_pending(http_stream *st)
{
    http_server *s = st->server;
    pthread_mutex_lock(&s->stream_lock);
    int sleep = !st->pending && !s->closing;
    if (sleep) {
        MHD_suspend_connection(st->conn);
        st->suspended = 1;
    }
    pthread_mutex_unlock(&s->stream_lock);
    return sleep;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *dst, size_t max)
{
    (void)pos;
    http_stream *st = cls;
    http_server *s = st->server;
    for (;;) {
        if (st->off < st->out.len)
            return take(st, dst, max);
        if (st->ending)
            return MHD_CONTENT_READER_END_OF_STREAM;
        pthread_mutex_lock(&s->stream_lock);
        int closing = s->closing;
        st->pending = 0;
        pthread_mutex_unlock(&s->stream_lock);
        if (closing)
            return MHD_CONTENT_READER_END_OF_STREAM;
        if (st->produce(st->ctx, &st->out) == HTTP_STREAM_END)
            st->ending = 1;
        if (buf_failed(&st->out))
            return MHD_CONTENT_READER_END_WITH_ERROR;
        if (st->out.len > 0 || st->ending)
            continue;
        if (suspend_unless_pending(st))
            return 0; /* legal only because the connection is suspended */
    }
}

static void stream_free(void *cls)
{
    http_stream *st = cls;
    http_server *s = st->server;
    pthread_mutex_lock(&s->stream_lock);
    assert(!st->suspended || st->finished);
    st->finished = 1;
    if (st->prev)
        st->prev->next = st->next;
    else
        s->streams = st->next;
    if (st->next)
        st->next->prev = st->prev;
    pthread_mutex_unlock(&s->stream_lock);
    st->done(st->ctx); /* after this no wake comes */
    buf_free(&st->out);
    free(st);
}

int http_reply_stream(http_request *req, int status, const char *content_type, http_stream_fn produce,
                      void (*done)(void *ctx), void *ctx, http_stream **out)
{
    http_server *s = req->server;
    http_stream *st = calloc(1, sizeof *st);
    if (!st)
        return CB_ENOMEM;
    st->server = s;
    st->conn = req->conn;
    st->produce = produce;
    st->done = done;
    st->ctx = ctx;
    /* From here nothing fails: the free callback (and so done) runs once. */
    struct MHD_Response *r =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, STREAM_BLOCK, stream_read, st, stream_free);
    if (!r) {
        free(st);
        return CB_ENOMEM;
    }
    pthread_mutex_lock(&s->stream_lock);
    st->next = s->streams;
    if (s->streams)
        s->streams->prev = st;
    s->streams = st;
    pthread_mutex_unlock(&s->stream_lock);
    int rc = http__set_response(req, status, r);
    assert(rc == 0);
    req->stream = st;
    MHD_add_response_header(r, "Content-Type", content_type);
    MHD_add_response_header(r, "Cache-Control", "no-store");
    MHD_add_response_header(r, "X-Accel-Buffering", "no"); /* nginx: do not buffer the stream */
    *out = st;
    return rc;
}

/* Resumes a sleeping stream, or marks one that is awake so its next read
 * does not go to sleep (caller holds stream_lock): no wake is lost between
 * "nothing to send" and the suspend. */
static void wake_locked(http_stream *st)
{
    if (st->suspended && !st->finished) {
        st->suspended = 0;
        MHD_resume_connection(st->conn);
    } else {
        st->pending = 1;
    }
}

void http_stream_wake(http_stream *st)
{
    http_server *s = st->server;
    pthread_mutex_lock(&s->stream_lock);
    wake_locked(st);
    pthread_mutex_unlock(&s->stream_lock);
}

void http__stream_finished(http_request *req)
{
    http_server *s = req->server;
    pthread_mutex_lock(&s->stream_lock);
    req->stream->finished = 1;
    pthread_mutex_unlock(&s->stream_lock);
    req->stream = NULL;
}

void http__streams_end(http_server *s)
{
    pthread_mutex_lock(&s->stream_lock);
    s->closing = 1;
    for (http_stream *st = s->streams; st; st = st->next)
        wake_locked(st);
    pthread_mutex_unlock(&s->stream_lock);
}
