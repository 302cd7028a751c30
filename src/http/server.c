/* server — libmicrohttpd glue: request lifecycle, body limits, dispatch,
 * authentication, logging and graceful shutdown. */
#include "http_int.h"

#include "core/clock.h"
#include "core/log.h"

#include <arpa/inet.h>
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static http_request *request_new(http_server *s, struct MHD_Connection *conn, const char *url,
                                 const char *method)
{
    arena *a = arena_create(4096);
    if (!a)
        return NULL;
    http_request *req = arena_alloc(a, sizeof *req);
    if (!req) {
        arena_destroy(a);
        return NULL;
    }
    memset(req, 0, sizeof *req);
    req->server = s;
    req->conn = conn;
    req->arena = a;
    req->method = arena_strdup(a, method);
    req->path = arena_strdup(a, url);
    req->route = HTTP_ROUTE_NONE;
    req->started = clock_mono_s();
    if (!req->method || !req->path) {
        arena_destroy(a);
        return NULL;
    }
    return req;
}

static void request_free(http_request *req)
{
    if (req->response)
        MHD_destroy_response(req->response);
    free(req->body);
    arena_destroy(req->arena); /* req itself lives in the arena */
}

#define BODY_PREALLOC_MAX (1 << 20)

static int body_append(http_request *req, const char *data, size_t len)
{
    long long max = req->server->opt.cfg->max_body;
    if (req->body_too_large || (long long)(req->body_len + len) > max) {
        req->body_too_large = 1;
        return 0; /* keep reading and discarding; answer 413 at the end */
    }
    if (req->body_len + len + 1 > req->body_cap) {
        /* the first piece: room for the declared length, up to BODY_PREALLOC_MAX
         * (a length declared and never sent must not cost much memory) */
        const char *cl = req->body_cap ? NULL : http_header(req, "Content-Length");
        long long declared = cl ? strtoll(cl, NULL, 10) : 0;
        size_t cap = declared > 0 && declared < BODY_PREALLOC_MAX ? (size_t)declared + 1
                     : req->body_cap                              ? req->body_cap
                                                                  : 4096;
        while (cap < req->body_len + len + 1)
            cap *= 2;
        char *p = realloc(req->body, cap);
        if (!p)
            return CB_ENOMEM;
        req->body = p;
        req->body_cap = cap;
    }
    memcpy(req->body + req->body_len, data, len);
    req->body_len += len;
    req->body[req->body_len] = '\0';
    return 0;
}

static int reply_too_large(http_request *req)
{
    return http_reply_errorf(req, CB_ETOO_LARGE, "body", "the request body exceeds %lld bytes",
                             req->server->opt.cfg->max_body);
}

/* 0 if the route's roles admit the request's principal; otherwise replied. */
static int authorize(http_request *req, const struct http_route *r)
{
    if (r->roles == ROLES_PUBLIC)
        return 0;
    const char *auth = http_header(req, "Authorization");
    if (!auth || strncasecmp(auth, "Bearer ", 7) != 0) {
        http_reply_errorf(req, CB_EUNAUTHORIZED, "Authorization",
                          "send an API key as 'Authorization: Bearer <key>'");
        http_reply_header(req, "WWW-Authenticate", "Bearer realm=\"citybrain\"");
        return CB_EUNAUTHORIZED;
    }
    cb_error err;
    const struct http_options *o = &req->server->opt;
    if (o->authenticate(o->app, auth + 7, &req->principal, &err) != 0) {
        http_reply_error(req, &err);
        http_reply_header(req, "WWW-Authenticate", "Bearer realm=\"citybrain\", error=\"invalid_token\"");
        return err.code;
    }
    req->has_principal = 1;
    if (!(r->roles & ROLE_BIT(req->principal.role))) {
        char allowed[128];
        http_reply_errorf(req, CB_EFORBIDDEN, NULL, "role %s may not %s %s (allowed: %s)",
                          role_name(req->principal.role), r->method, r->path,
                          role_mask_names(r->roles, allowed, sizeof allowed));
        return CB_EFORBIDDEN;
    }
    return 0;
}

static void dispatch(http_request *req)
{
    char allow[64];
    int route = http__route_match(req, allow, sizeof allow);
    if (route == HTTP_ROUTE_WRONG_METHOD) {
        http_reply_errorf(req, CB_EMETHOD, NULL, "%s is not allowed on %s (allowed: %s)",
                          req->method, req->path, allow);
        http_reply_header(req, "Allow", allow);
        return;
    }
    if (route == HTTP_ROUTE_NONE) {
        int is_get = strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0;
        if (is_get && strncmp(req->path, "/api/", 5) != 0 && http__static_serve(req) == 0) {
            req->route = HTTP_ROUTE_STATIC;
            return;
        }
        http_reply_errorf(req, CB_ENOT_FOUND, NULL, "no such resource: %s %s", req->method, req->path);
        return;
    }
    req->route = route;
    const struct http_route *r = &req->server->opt.routes[route];
    if (req->body_too_large) {
        reply_too_large(req);
        return;
    }
    if (authorize(req, r) != 0)
        return;
    int rc = r->handler(req, req->server->opt.app);
    if (rc == HTTP_DEFERRED) {
        req->deferred = 1;
        return;
    }
    if (!req->response) {
        assert(rc != 0 && "a handler that succeeds sets a reply");
        http_reply_errorf(req, rc ? rc : CB_EINTERNAL, NULL, "%s", cb_strerror(rc ? rc : CB_EINTERNAL));
    }
}

static enum MHD_Result queue(http_request *req)
{
    if (!req->response)
        return MHD_NO; /* out of memory even for an error: drop the connection */
    req->queued = 1;
    return MHD_queue_response(req->conn, (unsigned)req->status, req->response);
}

/* After a deferred handler: suspend until http_resume, unless the worker
 * already finished (then answer now). */
static enum MHD_Result suspend_or_queue(http_request *req)
{
    http_server *s = req->server;
    pthread_mutex_lock(&s->defer_lock);
    int done = req->resumed;
    if (!done) {
        MHD_suspend_connection(req->conn);
        req->suspended = 1;
    }
    pthread_mutex_unlock(&s->defer_lock);
    return done ? queue(req) : MHD_YES;
}

void http_resume(http_request *req)
{
    http_server *s = req->server;
    pthread_mutex_lock(&s->defer_lock);
    assert(!req->resumed);
    req->resumed = 1;
    if (req->suspended)
        MHD_resume_connection(req->conn); /* MHD calls on_request again, which queues */
    pthread_mutex_unlock(&s->defer_lock);
}

static int declared_too_large(http_request *req)
{
    const char *cl = http_header(req, "Content-Length");
    return cl && strtoll(cl, NULL, 10) > req->server->opt.cfg->max_body;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_size, void **con_cls)
{
    (void)version;
    http_server *s = cls;
    http_request *req = *con_cls;
    if (!req) {
        req = request_new(s, conn, url, method);
        if (!req)
            return MHD_NO;
        *con_cls = req;
        atomic_fetch_add(&s->in_flight, 1);
        if (declared_too_large(req)) { /* answer before reading the body */
            req->body_too_large = 1;
            reply_too_large(req);
            return queue(req);
        }
        return MHD_YES;
    }
    if (*upload_size) {
        int rc = body_append(req, upload_data, *upload_size);
        *upload_size = 0;
        return rc == 0 ? MHD_YES : MHD_NO;
    }
    if (req->queued) /* already answered (413 up front) */
        return MHD_YES;
    if (req->deferred) /* resumed: the worker has set the reply */
        return queue(req);
    dispatch(req);
    return req->deferred ? suspend_or_queue(req) : queue(req);
}

static void log_request(http_request *req, double seconds)
{
    const struct http_options *o = &req->server->opt;
    const char *route = req->route >= 0 ? o->routes[req->route].path
                        : req->route == HTTP_ROUTE_STATIC ? "static" : "unmatched";
    char qpath[512];
    log_event(req->status >= 500 ? LOG_WARN : LOG_INFO, "request",
              "method=%s route=%s path=%s status=%d dur_ms=%.3f principal=%s bytes_in=%zu",
              req->method, route, log_quote(req->path, qpath, sizeof qpath), req->status,
              seconds * 1000.0, req->has_principal ? req->principal.id : "-", req->body_len);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)conn;
    http_server *s = cls;
    http_request *req = *con_cls;
    if (!req)
        return;
    double seconds = clock_mono_s() - req->started;
    if (req->stream)
        http__stream_finished(req); /* no resume may reach this connection any more */
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && req->status == 0)
        req->status = 499; /* client went away or timed out before a reply */
    http__stats_record(s, req->route, req->status, seconds);
    log_request(req, seconds);
    request_free(req);
    *con_cls = NULL;
    atomic_fetch_sub(&s->in_flight, 1);
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    (void)conn;
    (void)socket_context;
    http_server *s = cls;
    atomic_fetch_add(&s->open_connections, code == MHD_CONNECTION_NOTIFY_STARTED ? 1 : -1);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512], q[600];
    vsnprintf(msg, sizeof msg, fmt, ap);
    msg[strcspn(msg, "\n")] = '\0';
    log_event(LOG_WARN, "http", "msg=%s", log_quote(msg, q, sizeof q));
}

static int bind_address(const struct cb_config *cfg, struct sockaddr_in *sa, cb_error *err)
{
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)cfg->port);
    if (inet_pton(AF_INET, cfg->listen, &sa->sin_addr) != 1)
        return cb_error_set(err, CB_ECONFIG, "listen", "listen: '%s' is not an IPv4 address",
                            cfg->listen);
    return 0;
}

int http_server_start(const struct http_options *opt, http_server **out, cb_error *err)
{
    struct sockaddr_in sa;
    int rc = bind_address(opt->cfg, &sa, err);
    if (rc != 0)
        return rc;
    http_server *s = calloc(1, sizeof *s);
    if (!s)
        return cb_error_set(err, CB_ENOMEM, NULL, NULL);
    s->opt = *opt;
    s->started = clock_mono_s();
    pthread_mutex_init(&s->defer_lock, NULL);
    pthread_mutex_init(&s->stream_lock, NULL);
    if ((rc = http__stats_init(s, err)) != 0) {
        free(s);
        return rc;
    }
    const struct cb_config *c = opt->cfg;
    s->daemon = MHD_start_daemon(
        MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ITC | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG,
        0, NULL, NULL, on_request, s,
        MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, s, /* first, so MHD never logs on its own */
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)c->max_connections,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)c->max_connections_per_ip,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)c->connection_timeout,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)c->max_header,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
        MHD_OPTION_END);
    if (!s->daemon) {
        http__stats_free(s);
        free(s);
        return cb_error_set(err, CB_EIO, "port", "cannot listen on %s:%d (in use or not permitted)",
                            c->listen, c->port);
    }
    *out = s;
    return 0;
}

/* Also ends the streams, which would otherwise be in flight for ever. */
void http_server_quiesce(http_server *s)
{
    http__streams_end(s);
    MHD_socket fd = MHD_quiesce_daemon(s->daemon);
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
}

int http_server_drain(http_server *s, int timeout_ms)
{
    int64_t deadline = clock_mono_ms() + timeout_ms;
    while (atomic_load(&s->in_flight) > 0 && clock_mono_ms() < deadline)
        usleep(10 * 1000);
    return atomic_load(&s->in_flight);
}

void http_server_stop(http_server *s)
{
    if (!s)
        return;
    http__streams_end(s); /* MHD must not stop with connections suspended */
    MHD_stop_daemon(s->daemon);
    http__stats_free(s);
    pthread_mutex_destroy(&s->defer_lock);
    pthread_mutex_destroy(&s->stream_lock);
    free(s);
}
