/* http — citybrain's HTTP face: libmicrohttpd (one epoll thread) plus a small
 * router driven by a route table, JSON helpers, static files and per-route
 * metrics.
 *
 * Flow of a request: headers arrive → body is collected up to max_body (413
 * beyond, answered before the body is read when Content-Length says so) → the
 * route is matched (404/405 as JSON) → the principal is authenticated when the
 * route is not public (401/403 as JSON) → the handler runs and sets exactly one
 * reply → the reply is sent, counted and logged. Request memory lives in an
 * arena freed when the request completes; handlers never free it. */
#ifndef CB_HTTP_H
#define CB_HTTP_H

#include "auth/role.h"
#include "core/arena.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"

#include <jansson.h>
#include <stddef.h>

typedef struct http_server http_server;
typedef struct http_request http_request;

/* A handler sets one reply with http_reply_* and returns 0; if it returns a
 * negative CB_E* code without replying, the code's generic error is sent.
 * A handler that hands the work to another thread returns HTTP_DEFERRED; that
 * thread later sets the reply and calls http_resume (the request, its arena
 * and its body stay valid until then). */
#define HTTP_DEFERRED 1
typedef int (*http_handler)(http_request *req, void *app);

struct http_route {
    const char *method;   /* "GET", "POST", "PUT", "PATCH", "DELETE" */
    const char *path;     /* "/api/v1/keys/{id}": {name} matches one segment */
    http_handler handler;
    unsigned roles;       /* ROLE_BIT mask; ROLES_PUBLIC needs no key */
    const char *summary;  /* one line for `citybrain routes` */
};

/* Checks a bearer key; 0 and *out filled, or CB_EUNAUTHORIZED with a reason. */
typedef int (*http_auth_fn)(void *app, const char *key, struct principal *out, cb_error *err);

struct http_options {
    const struct cb_config *cfg;      /* borrowed; must outlive the server */
    const struct http_route *routes;  /* borrowed table */
    size_t nroutes;
    http_auth_fn authenticate;
    void *app;                        /* passed to handlers and authenticate */
};

int http_server_start(const struct http_options *opt, http_server **out, cb_error *err);
void http_server_quiesce(http_server *s);               /* stop accepting connections */
int http_server_drain(http_server *s, int timeout_ms);  /* wait for in-flight requests; returns how many remain */
void http_server_stop(http_server *s);                  /* close all connections, free; NULL-safe */
void http_server_write_metrics(http_server *s, buf *out); /* Prometheus text */

/* Request accessors. Returned strings are owned by the request. */
const char *http_method(const http_request *req);
const char *http_path(const http_request *req);
const char *http_param(const http_request *req, const char *name);  /* path {name} or NULL */
const char *http_query(http_request *req, const char *name);        /* query argument or NULL */
const char *http_header(http_request *req, const char *name);       /* or NULL */
const char *http_body(const http_request *req, size_t *len);        /* "" when none */
const struct principal *http_principal(const http_request *req);    /* NULL on public routes */
arena *http_arena(http_request *req);

/* Parses the body as a JSON object; *out owned by the caller (json_decref).
 * On failure err names the position ("line 1, column 9: ...") and the code is
 * CB_EINVALID_JSON (or CB_EMEDIA_TYPE for a non-JSON Content-Type). */
int http_body_json(http_request *req, json_t **out, cb_error *err);

/* Replies. Each returns 0, or CB_ENOMEM when no response could be built. */
int http_reply_json(http_request *req, int status, json_t *body); /* steals body */
int http_reply_error(http_request *req, const cb_error *err);
int http_reply_errorf(http_request *req, int code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int http_reply_text(http_request *req, int status, const char *content_type, const char *data,
                    size_t len); /* data is copied */
/* http_reply_text of a malloc'd buffer the reply takes over (freed after it
 * is sent, or at once on failure): no copy of a large body. */
int http_reply_owned(http_request *req, int status, const char *content_type, char *data, size_t len);
/* Adds a header to the reply already set (Retry-After, Location, ...). */
int http_reply_header(http_request *req, const char *name, const char *value);

/* Streaming replies (Server-Sent Events). The reply's body comes from
 * produce, called on the HTTP thread whenever the client can take more: it
 * appends bytes to out and returns HTTP_STREAM_MORE, or HTTP_STREAM_END to
 * finish (after what it appended). When it appends nothing the connection
 * sleeps — suspended, no CPU — until http_stream_wake. done(ctx) runs once
 * when the stream is over for any reason (the client left, the server stops);
 * after it returns no wake may come. Streams end when the server quiesces, so
 * they never hold up a shutdown. *out is valid until done. */
enum { HTTP_STREAM_MORE = 0, HTTP_STREAM_END = 1 };
typedef struct http_stream http_stream;
typedef int (*http_stream_fn)(void *ctx, buf *out);
int http_reply_stream(http_request *req, int status, const char *content_type, http_stream_fn produce,
                      void (*done)(void *ctx), void *ctx, http_stream **out);
/* Asks for produce to run again soon; thread-safe, cheap, never blocks on I/O. */
void http_stream_wake(http_stream *st);

/* Sends the reply a deferred handler's worker has set; thread-safe, once. */
void http_resume(http_request *req);

/* The JSON error body of DESIGN.md §6 for err; caller owns the result. */
json_t *http_error_json(const cb_error *err);

#endif
