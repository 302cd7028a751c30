/* http_int — the http module's insides, shared by its files only. Never
 * include this from outside src/http/. */
#ifndef CB_HTTP_INT_H
#define CB_HTTP_INT_H

#include "http/http.h"

#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>

#define HTTP_MAX_PARAMS 4
#define HTTP_STATUS_SLOTS 12  /* distinct statuses counted per route */
#define HTTP_BUCKETS 12       /* latency histogram buckets, +Inf excluded */

/* Pseudo-routes for metrics: requests that matched no route. */
enum { HTTP_ROUTE_STATIC = -2, HTTP_ROUTE_NONE = -1 };

struct http_route_stats {
    int status[HTTP_STATUS_SLOTS];
    unsigned long long count[HTTP_STATUS_SLOTS];
    unsigned long long bucket[HTTP_BUCKETS + 1]; /* cumulative at write time; +Inf last */
    double seconds_sum;
};

struct http_server {
    struct MHD_Daemon *daemon;
    struct http_options opt;
    atomic_int in_flight;          /* requests begun and not completed */
    atomic_int open_connections;
    double started;                /* clock_mono_s at start */
    pthread_mutex_t defer_lock;    /* orders suspend (MHD thread) against resume (workers) */
    pthread_mutex_t stream_lock;   /* guards streams and closing */
    struct http_stream *streams;   /* streaming replies in progress (stream.c) */
    int closing;                   /* quiescing: streams end */
    pthread_mutex_t stats_lock;    /* guards stats: written by the MHD thread, read by /metrics */
    struct http_route_stats *stats; /* nroutes + 2 (static, none), indexed by route + 2 */
};

struct http_request {
    http_server *server;
    struct MHD_Connection *conn;
    arena *arena;
    const char *method, *path;
    char *body;                    /* malloc'd, NUL-terminated; owned by the request */
    size_t body_len, body_cap;
    int body_too_large;
    int route;                     /* index into routes, or HTTP_ROUTE_* */
    const char *param_name[HTTP_MAX_PARAMS], *param_value[HTTP_MAX_PARAMS];
    int nparams;
    int has_principal;
    struct principal principal;
    struct MHD_Response *response; /* set by http_reply_*; queued by the server */
    struct http_stream *stream;    /* set by http_reply_stream */
    int status;
    int queued;                    /* the response went to MHD */
    int deferred, suspended, resumed; /* guarded by server->defer_lock */
    double started;
};

/* router.c: finds the route for method+path; fills params into req.
 * Returns the index, HTTP_ROUTE_NONE, or -3 when the path exists with
 * other methods (their names written to allow). */
#define HTTP_ROUTE_WRONG_METHOD (-3)
int http__route_match(http_request *req, char *allow, size_t allowlen);

/* static.c: serves a file under web_dir for GET/HEAD; 0 if replied. */
int http__static_serve(http_request *req);

/* request.c: sets the reply (replacing an earlier one); CB_ENOMEM if !r. */
int http__set_response(http_request *req, int status, struct MHD_Response *r);

/* stream.c: the connection of a streaming reply is gone (on_completed);
 * ends all streams (quiesce). */
void http__stream_finished(http_request *req);
void http__streams_end(http_server *s);

/* stats.c */
int http__stats_init(http_server *s, cb_error *err);
void http__stats_free(http_server *s);
void http__stats_record(http_server *s, int route, int status, double seconds);

#endif
