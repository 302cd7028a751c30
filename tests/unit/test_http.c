/* Unit tests for the http module: a real server on a loopback port with a
 * test route table, spoken to over a plain socket. */
#include "core/log.h"
#include "http/http.h"
#include "test.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <stdatomic.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static int test_port;
static char web_dir[64];

static int echo_param(http_request *req, void *app)
{
    (void)app;
    return http_reply_json(req, 200, json_pack("{s:s, s:s?}", "id", http_param(req, "id"),
                                               "q", http_query(req, "q")));
}

static int echo_body(http_request *req, void *app)
{
    (void)app;
    json_t *body;
    cb_error e;
    if (http_body_json(req, &body, &e) != 0)
        return http_reply_error(req, &e);
    const struct principal *p = http_principal(req);
    json_object_set_new(body, "principal", json_string(p ? p->id : "-"));
    return http_reply_json(req, 201, body);
}

static int fails_without_reply(http_request *req, void *app)
{
    (void)req;
    (void)app;
    return CB_EUNAVAILABLE;
}

static int fake_auth(void *app, const char *key, struct principal *out, cb_error *err)
{
    (void)app;
    memset(out, 0, sizeof *out);
    if (strcmp(key, "admin-key") == 0) {
        strcpy(out->id, "kadmin");
        out->role = ROLE_ADMIN;
        return 0;
    }
    if (strcmp(key, "viewer-key") == 0) {
        strcpy(out->id, "kviewer");
        out->role = ROLE_VIEWER;
        return 0;
    }
    return cb_error_set(err, CB_EUNAUTHORIZED, "Authorization", "unknown API key");
}

/* A streaming reply: one line per wake (ticks_wanted counts them), then the
 * end after three; done records that the stream was released. */
static http_stream *_Atomic ticks_stream;
static atomic_int ticks_wanted, ticks_done;
static int ticks_sent;

static int ticks_produce(void *ctx, buf *out)
{
    (void)ctx;
    while (ticks_sent < atomic_load(&ticks_wanted))
        buf_printf(out, "tick %d\n", ticks_sent++);
    return ticks_sent == 3 ? HTTP_STREAM_END : HTTP_STREAM_MORE;
}

static void ticks_release(void *ctx)
{
    (void)ctx;
    atomic_store(&ticks_stream, NULL);
    atomic_store(&ticks_done, 1);
}

static int ticks(http_request *req, void *app)
{
    (void)app;
    http_stream *st;
    int rc = http_reply_stream(req, 200, "text/plain", ticks_produce, ticks_release, NULL, &st);
    if (rc == 0)
        atomic_store(&ticks_stream, st);
    return rc;
}

static const struct http_route routes[] = {
    {"GET", "/api/v1/ticks", ticks, ROLES_PUBLIC, "a stream"},
    {"GET", "/api/v1/things/{id}", echo_param, ROLES_PUBLIC, "echo"},
    {"DELETE", "/api/v1/things/{id}", echo_param, ROLE_BIT(ROLE_ADMIN), "delete"},
    {"POST", "/api/v1/things", echo_body, ROLE_BIT(ROLE_ADMIN), "create"},
    {"GET", "/api/v1/broken", fails_without_reply, ROLES_PUBLIC, "fails"},
};

struct reply {
    int status;
    char head[4096];
    char body[8192];
};

/* Sends raw request text, reads the whole response (Connection: close). */
static int exchange(const char *request, size_t len, struct reply *r)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)test_port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    size_t sent = 0;
    while (sent < len) {
        ssize_t n = send(fd, request + sent, len - sent, MSG_NOSIGNAL);
        if (n <= 0)
            break;
        sent += (size_t)n;
    }
    static char raw[1 << 16];
    size_t got = 0;
    ssize_t n;
    while (got < sizeof raw - 1 && (n = recv(fd, raw + got, sizeof raw - 1 - got, 0)) > 0)
        got += (size_t)n;
    raw[got] = '\0';
    close(fd);
    memset(r, 0, sizeof *r);
    if (sscanf(raw, "HTTP/1.1 %d", &r->status) != 1)
        return -1;
    char *split = strstr(raw, "\r\n\r\n");
    if (!split)
        return -1;
    snprintf(r->head, sizeof r->head, "%.*s", (int)(split - raw), raw);
    snprintf(r->body, sizeof r->body, "%s", split + 4);
    return 0;
}

static int request(const char *method, const char *path, const char *auth, const char *body,
                   struct reply *r)
{
    char req[16384];
    int n = snprintf(req, sizeof req,
                     "%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n%s%s%s"
                     "Content-Length: %zu\r\n\r\n%s",
                     method, path, auth ? "Authorization: Bearer " : "", auth ? auth : "",
                     auth ? "\r\n" : "", body ? strlen(body) : 0, body ? body : "");
    return exchange(req, (size_t)n, r);
}

static http_server *start(struct cb_config *cfg)
{
    log_set_level(LOG_ERROR);
    config_defaults(cfg);
    strcpy(cfg->listen, "127.0.0.1");
    snprintf(web_dir, sizeof web_dir, "/tmp/cb_test_web_XXXXXX");
    if (!mkdtemp(web_dir))
        return NULL;
    strcpy(cfg->web_dir, web_dir);
    char path[128];
    snprintf(path, sizeof path, "%s/index.html", web_dir);
    FILE *f = fopen(path, "w");
    fputs("<h1>城市大脑</h1>", f);
    fclose(f);
    snprintf(path, sizeof path, "%s/.secret", web_dir);
    f = fopen(path, "w");
    fputs("hidden", f);
    fclose(f);
    cfg->max_body = 1024;
    struct http_options o = {cfg, routes, sizeof routes / sizeof routes[0], fake_auth, NULL};
    for (int attempt = 0; attempt < 20; attempt++) {
        cfg->port = 20000 + (getpid() * 7 + attempt * 131) % 30000;
        http_server *s;
        if (http_server_start(&o, &s, NULL) == 0) {
            test_port = cfg->port;
            return s;
        }
    }
    return NULL;
}

static void stop(http_server *s)
{
    http_server_stop(s);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", web_dir);
    CHECK_INT(system(cmd), 0);
}

TEST(routes_match_with_params_and_query)
{
    struct cb_config cfg;
    http_server *s = start(&cfg);
    CHECK(s != NULL);
    struct reply r;
    CHECK_INT(request("GET", "/api/v1/things/ab-12?q=%E6%B0%B4", NULL, NULL, &r), 0);
    CHECK_INT(r.status, 200);
    CHECK_STR(r.body, "{\"id\":\"ab-12\",\"q\":\"水\"}");
    CHECK(strstr(r.head, "application/json") != NULL);
    CHECK_INT(request("GET", "/api/v1/things/", NULL, NULL, &r), 0);
    CHECK_INT(r.status, 404);
    CHECK(strstr(r.body, "\"code\":\"not_found\"") != NULL);
    CHECK_INT(request("PUT", "/api/v1/things/x", NULL, NULL, &r), 0);
    CHECK_INT(r.status, 405);
    CHECK(strstr(r.head, "Allow: GET, DELETE") != NULL);
    CHECK(strstr(r.body, "method_not_allowed") != NULL);
    stop(s);
}

TEST(auth_gives_401_403_and_principal)
{
    struct cb_config cfg;
    http_server *s = start(&cfg);
    struct reply r;
    CHECK_INT(request("POST", "/api/v1/things", NULL, "{\"a\":1}", &r), 0);
    CHECK_INT(r.status, 401);
    CHECK(strstr(r.body, "\"code\":\"unauthorized\"") != NULL);
    CHECK(strstr(r.head, "WWW-Authenticate: Bearer") != NULL);
    CHECK_INT(request("POST", "/api/v1/things", "nope", "{\"a\":1}", &r), 0);
    CHECK_INT(r.status, 401);
    CHECK(strstr(r.body, "unknown API key") != NULL);
    CHECK_INT(request("POST", "/api/v1/things", "viewer-key", "{\"a\":1}", &r), 0);
    CHECK_INT(r.status, 403);
    CHECK(strstr(r.body, "role viewer may not POST /api/v1/things (allowed: admin)") != NULL);
    CHECK_INT(request("POST", "/api/v1/things", "admin-key", "{\"a\":1}", &r), 0);
    CHECK_INT(r.status, 201);
    CHECK_STR(r.body, "{\"a\":1,\"principal\":\"kadmin\"}");
    stop(s);
}

TEST(bad_bodies_get_json_errors)
{
    struct cb_config cfg;
    http_server *s = start(&cfg);
    struct reply r;
    CHECK_INT(request("POST", "/api/v1/things", "admin-key", "{\"a\":", &r), 0);
    CHECK_INT(r.status, 400);
    CHECK(strstr(r.body, "\"code\":\"invalid_json\"") != NULL);
    CHECK(strstr(r.body, "line 1, column") != NULL);
    CHECK_INT(request("POST", "/api/v1/things", "admin-key", "[1,2]", &r), 0);
    CHECK_INT(r.status, 400);
    CHECK(strstr(r.body, "must be a JSON object") != NULL);
    CHECK_INT(request("POST", "/api/v1/things", "admin-key", "{\"a\":1,\"a\":2}", &r), 0);
    CHECK_INT(r.status, 400);
    char big[2048];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    CHECK_INT(request("POST", "/api/v1/things", "admin-key", big, &r), 0);
    CHECK_INT(r.status, 413);
    CHECK(strstr(r.body, "exceeds 1024 bytes") != NULL);
    /* Chunked bodies have no Content-Length: the limit applies as they stream. */
    char chunked[4096];
    int n = snprintf(chunked, sizeof chunked,
                     "POST /api/v1/things HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                     "Authorization: Bearer admin-key\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "800\r\n%s\r\n0\r\n\r\n", big);
    CHECK_INT(exchange(chunked, (size_t)n, &r), 0);
    CHECK_INT(r.status, 413);
    CHECK_INT(request("GET", "/api/v1/broken", NULL, NULL, &r), 0);
    CHECK_INT(r.status, 503);
    CHECK(strstr(r.body, "\"code\":\"unavailable\"") != NULL);
    stop(s);
}

TEST(static_files_are_served_and_confined)
{
    struct cb_config cfg;
    http_server *s = start(&cfg);
    struct reply r;
    CHECK_INT(request("GET", "/", NULL, NULL, &r), 0);
    CHECK_INT(r.status, 200);
    CHECK_STR(r.body, "<h1>城市大脑</h1>");
    CHECK(strstr(r.head, "text/html; charset=utf-8") != NULL);
    CHECK_INT(request("GET", "/.secret", NULL, NULL, &r), 0);
    CHECK_INT(r.status, 404);
    CHECK_INT(request("GET", "/../../etc/passwd", NULL, NULL, &r), 0);
    CHECK_INT(r.status, 404);
    CHECK_INT(request("GET", "/%2e%2e/%2e%2e/etc/passwd", NULL, NULL, &r), 0);
    CHECK_INT(r.status, 404);
    CHECK(strstr(r.body, "root:") == NULL);
    CHECK_INT(request("GET", "/api/nothing", NULL, NULL, &r), 0);
    CHECK_INT(r.status, 404);
    CHECK(strstr(r.body, "\"error\"") != NULL);
    stop(s);
}

TEST(metrics_count_requests_by_route_and_status)
{
    struct cb_config cfg;
    http_server *s = start(&cfg);
    struct reply r;
    request("GET", "/api/v1/things/a", NULL, NULL, &r);
    request("GET", "/api/v1/things/b", NULL, NULL, &r);
    request("POST", "/api/v1/things", NULL, "{}", &r);
    buf m = BUF_INIT;
    http_server_write_metrics(s, &m);
    CHECK(strstr(m.data, "citybrain_http_requests_total{route=\"GET /api/v1/things/{id}\",status=\"200\"} 2") != NULL);
    CHECK(strstr(m.data, "citybrain_http_requests_total{route=\"POST /api/v1/things\",status=\"401\"} 1") != NULL);
    CHECK(strstr(m.data, "citybrain_http_request_duration_seconds_count{route=\"GET /api/v1/things/{id}\"} 2") != NULL);
    CHECK(strstr(m.data, "citybrain_http_open_connections") != NULL);
    buf_free(&m);
    stop(s);
}

/* Wakes the stream `n` times, 50 ms apart, once it exists. */
static void *waker(void *arg)
{
    int n = *(int *)arg;
    for (int i = 0; i < 200 && !atomic_load(&ticks_stream); i++)
        usleep(10 * 1000);
    for (int i = 0; i < n; i++) {
        usleep(50 * 1000);
        atomic_fetch_add(&ticks_wanted, 1);
        http_stream *st = atomic_load(&ticks_stream);
        if (st)
            http_stream_wake(st);
    }
    return NULL;
}

static void ticks_reset(void)
{
    atomic_store(&ticks_stream, NULL);
    atomic_store(&ticks_wanted, 0);
    atomic_store(&ticks_done, 0);
    ticks_sent = 0;
}

TEST(streams_sleep_until_woken_and_end)
{
    struct cb_config cfg;
    http_server *s = start(&cfg);
    ticks_reset();
    pthread_t t;
    int n = 3;
    pthread_create(&t, NULL, waker, &n);
    struct reply r;
    CHECK_INT(request("GET", "/api/v1/ticks", NULL, NULL, &r), 0);
    pthread_join(t, NULL);
    CHECK_INT(r.status, 200);
    CHECK(strstr(r.head, "Transfer-Encoding: chunked") != NULL);
    CHECK(strstr(r.body, "tick 0\n") && strstr(r.body, "tick 1\n") && strstr(r.body, "tick 2\n"));
    CHECK(strstr(r.body, "\r\n0\r\n\r\n") != NULL); /* the last chunk: the stream ended */
    CHECK_INT(atomic_load(&ticks_done), 1);
    stop(s);
}

static void *ticks_client(void *arg)
{
    request("GET", "/api/v1/ticks", NULL, NULL, arg);
    return NULL;
}

TEST(an_idle_stream_ends_when_the_server_quiesces)
{
    struct cb_config cfg;
    http_server *s = start(&cfg);
    ticks_reset();
    struct reply r;
    pthread_t t;
    pthread_create(&t, NULL, ticks_client, &r);
    for (int i = 0; i < 200 && !atomic_load(&ticks_stream); i++)
        usleep(10 * 1000);
    CHECK(atomic_load(&ticks_stream) != NULL);
    http_server_quiesce(s);
    CHECK_INT(http_server_drain(s, 2000), 0); /* the stream does not hold up the shutdown */
    pthread_join(t, NULL);
    CHECK_INT(r.status, 200);
    CHECK(strstr(r.body, "tick") == NULL);
    CHECK_INT(atomic_load(&ticks_done), 1);
    stop(s);
}

TEST_MAIN(routes_match_with_params_and_query, auth_gives_401_403_and_principal,
          bad_bodies_get_json_errors, static_files_are_served_and_confined,
          metrics_count_requests_by_route_and_status, streams_sleep_until_woken_and_end,
          an_idle_stream_ends_when_the_server_quiesces)
