/* loadgen — the HTTP load generator of bench/ingest.sh: plain sockets,
 * keep-alive connections (one thread each) and request bodies built before
 * the clock starts, so the client costs the server's cores as little as it can.
 *
 * A batch is R readings (default 5,000) of AirQualityObserved-style entities:
 * a line protocol line or a JSON item carries three attributes (pm25, pm10,
 * no2), i.e. three readings; the last line of a batch carries the remainder.
 * Only 200 responses whose "accepted" equals the batch's readings count.
 *
 * Modes:
 *   create  bulk-create -n entities (POST /api/v1/entities, -B per request)
 *   lp      line protocol load (POST /api/v1/write?precision=ms) for -d seconds
 *   json    JSON load (POST /api/v1/ingest) for -d seconds
 *   lp-once one reading of three attributes to each of the -n entities, then stop
 *   disk    write(2) the line-protocol bodies to -f FILE for -d seconds with an
 *           fsync once a second from another thread (the WAL's everysec ceiling)
 *
 * -R paces lp/json to a rate (bench/alarm_latency.sh: a steady background).
 *
 * Each connection owns its own slice of entities (bodies k with k mod c = j),
 * and every pass over its bodies moves their timestamps one second forward, so
 * each entity sees increasing times, as from a real device.
 *
 * Output: one line of key=value pairs (readings, seconds, readings_per_s,
 * requests, errors, refused, bytes) on stdout; problems on stderr.
 * Exit status: 0, or 1 when any response was wrong. */
#include "bench_net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TS_DIGITS 13 /* epoch milliseconds until the year 2286 */
#define RESP_MAX (1 << 20)

static const char *types[] = {"AirQualityObserved", "ParkingSpot",  "WaterLevelSensor", "ManholeCover",
                              "Streetlight",        "SmokeDetector", "NoiseLevelObserved", "TrafficFlowObserved"};
#define NTYPES (sizeof types / sizeof types[0])

struct opts {
    const char *mode, *host, *key, *file;
    int port, conns, batch_readings, bulk;
    double seconds, warmup;
    long entities;
    double rate;           /* readings/s over all connections; 0: as fast as it goes */
};
static struct opts o = {.host = "127.0.0.1", .port = 8080, .conns = 4, .batch_readings = 5000,
                        .bulk = 10000, .seconds = 10, .warmup = 1, .entities = 100000};

/* A pre-built request: head + body in one buffer, with the offsets of every
 * timestamp so a pass can move them without rebuilding. */
struct request {
    char *data;
    size_t len;
    size_t *ts_off;
    size_t nts;
    long readings;
};

struct worker {
    pthread_t thread;
    int id;
    struct request *reqs;
    size_t nreqs;
    long long readings, requests, errors, refused, bytes;
};

static atomic_int counting, stopping, complaints;

/* --- growing text buffer --- */

static void text_printf(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void text_printf(struct text *t, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    text_add(t, tmp, (size_t)n);
}

static void entity_id(long i, char *out, size_t cap)
{
    snprintf(out, cap, "urn:ngsi-ld:%s:bench-%07ld", types[i % NTYPES], i);
}

/* --- building requests --- */

static const char *attrs[] = {"pm25", "pm10", "no2"};

/* The body of readings [first, last) of the flattened list (entity 0 pm25,
 * entity 0 pm10, entity 0 no2, entity 1 pm25, ...) wrapped around the
 * entities, so each entity gets its three values in order. */
static void build_body(int json, long first, long last, int64_t ts, struct text *body, size_t **ts_off,
                       size_t *nts)
{
    size_t cap = (size_t)(last - first) / 3 + 2, n = 0;
    *ts_off = malloc(cap * sizeof **ts_off);
    if (!*ts_off)
        die("malloc");
    if (json)
        text_add(body, "{\"readings\":[", 13);
    for (long r = first; r < last;) {
        long ent = (r / 3) % o.entities;
        int a0 = (int)(r % 3), a1 = a0 + (int)(last - r < 3 - a0 ? last - r : 3 - a0);
        char id[96];
        entity_id(ent, id, sizeof id);
        if (json) {
            text_printf(body, "%s{\"entity\":\"%s\",\"ts\":", r == first ? "" : ",", id);
            (*ts_off)[n++] = body->len;
            text_printf(body, "%013lld,\"values\":{", (long long)ts);
            for (int a = a0; a < a1; a++)
                text_printf(body, "%s\"%s\":%d.%d", a == a0 ? "" : ",", attrs[a], (int)(ent % 97) + a, (int)(r % 10));
            text_add(body, "}}", 2);
        } else {
            text_printf(body, "%s,id=%s ", types[ent % NTYPES], id);
            for (int a = a0; a < a1; a++)
                text_printf(body, "%s%s=%d.%d", a == a0 ? "" : ",", attrs[a], (int)(ent % 97) + a, (int)(r % 10));
            text_add(body, " ", 1);
            (*ts_off)[n++] = body->len;
            text_printf(body, "%013lld\n", (long long)ts);
        }
        r += a1 - a0;
    }
    if (json)
        text_add(body, "]}", 2);
    *nts = n;
}

static void build_request(int json, long first, long last, int64_t ts, struct request *rq)
{
    struct text body = {0}, all = {0};
    size_t *off, n;
    build_body(json, first, last, ts, &body, &off, &n);
    text_printf(&all,
                "POST %s HTTP/1.1\r\nHost: %s:%d\r\nAuthorization: Bearer %s\r\n"
                "Content-Type: %s\r\nContent-Length: %zu\r\n\r\n",
                json ? "/api/v1/ingest" : "/api/v1/write?precision=ms", o.host, o.port, o.key ? o.key : "",
                json ? "application/json" : "text/plain; charset=utf-8", body.len);
    size_t head = all.len;
    text_add(&all, body.p, body.len);
    for (size_t i = 0; i < n; i++)
        off[i] += head;
    free(body.p);
    rq->data = all.p;
    rq->len = all.len;
    rq->ts_off = off;
    rq->nts = n;
    rq->readings = last - first;
}

/* Moves every timestamp of rq to ts (fixed width, so nothing shifts). */
static void set_ts(struct request *rq, int64_t ts)
{
    char digits[TS_DIGITS + 1];
    snprintf(digits, sizeof digits, "%013lld", (long long)ts);
    for (size_t i = 0; i < rq->nts; i++)
        memcpy(rq->data + rq->ts_off[i], digits, TS_DIGITS);
}

static void build_bulk(long first, long n, struct request *rq)
{
    struct text body = {0}, all = {0};
    text_add(&body, "{\"entities\":[", 13);
    for (long i = first; i < first + n; i++) {
        char id[96];
        entity_id(i, id, sizeof id);
        /* A deterministic spread over the Jiaozuo bbox: lon 112.6-113.7, lat 34.8-35.5. */
        uint64_t h = (uint64_t)i * 0x9E3779B97F4A7C15ull;
        double lon = 112.6 + 1.1 * (double)(h >> 40) / (double)(1ull << 24);
        double lat = 34.8 + 0.7 * (double)((h >> 16) & 0xFFFFFF) / (double)(1ull << 24);
        text_printf(&body, "%s{\"id\":\"%s\",\"type\":\"%s\",\"location\":[%.6f,%.6f]}", i == first ? "" : ",", id,
                    types[i % NTYPES], lon, lat);
    }
    text_add(&body, "]}", 2);
    text_printf(&all,
                "POST /api/v1/entities HTTP/1.1\r\nHost: %s:%d\r\nAuthorization: Bearer %s\r\n"
                "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                o.host, o.port, o.key ? o.key : "", body.len);
    text_add(&all, body.p, body.len);
    free(body.p);
    rq->data = all.p;
    rq->len = all.len;
    rq->ts_off = NULL;
    rq->nts = 0;
    rq->readings = n;
}

/* --- HTTP over a plain socket --- */

static int connect_server(void)
{
    int fd = bench_connect(o.host, o.port);
    if (fd < 0) {
        fprintf(stderr, "loadgen: -H takes an IPv4 address, got %s\n", o.host);
        exit(2);
    }
    return fd;
}

struct response {
    int status, close;
    char *body; /* into the buffer, NUL-terminated */
    size_t body_len;
};

static const char *find_header(const char *head, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = strstr(head, "\r\n"); p && p[2] != '\r'; p = strstr(p + 2, "\r\n"))
        if (strncasecmp(p + 2, name, n) == 0 && p[2 + n] == ':')
            return p + 3 + n;
    return NULL;
}

/* Reads one response into buf (RESP_MAX). Handles Content-Length and chunked. */
static int read_response(int fd, char *buf, struct response *r)
{
    size_t have = 0;
    char *end = NULL;
    while (!end) {
        if (have + 1 >= RESP_MAX)
            return -1;
        ssize_t n = recv(fd, buf + have, RESP_MAX - 1 - have, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        have += (size_t)n;
        buf[have] = 0;
        end = strstr(buf, "\r\n\r\n");
    }
    *end = 0;
    r->status = atoi(buf + 9);
    const char *conn = find_header(buf, "Connection");
    r->close = conn && strncasecmp(conn + strspn(conn, " "), "close", 5) == 0;
    const char *cl = find_header(buf, "Content-Length"), *te = find_header(buf, "Transfer-Encoding");
    char *body = end + 4;
    size_t got = have - (size_t)(body - buf);
    if (te && strstr(te, "chunked")) {
        /* Read until the terminating 0-size chunk, then de-chunk in place. */
        while (!strstr(body, "\r\n0\r\n\r\n") && strncmp(body, "0\r\n\r\n", 5) != 0) {
            if (have + 1 >= RESP_MAX)
                return -1;
            ssize_t n = recv(fd, buf + have, RESP_MAX - 1 - have, 0);
            if (n <= 0)
                return -1;
            have += (size_t)n;
            buf[have] = 0;
        }
        char *in = body, *out = body;
        for (;;) {
            size_t sz = strtoul(in, &in, 16);
            in = strstr(in, "\r\n") + 2;
            if (sz == 0)
                break;
            memmove(out, in, sz);
            out += sz;
            in += sz + 2;
        }
        *out = 0;
        r->body = body;
        r->body_len = (size_t)(out - body);
        return 0;
    }
    size_t want = cl ? strtoul(cl, NULL, 10) : 0;
    if ((size_t)(body - buf) + want + 1 >= RESP_MAX)
        return -1;
    while (got < want) {
        ssize_t n = recv(fd, body + got, want - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        got += (size_t)n;
    }
    body[want] = 0;
    r->body = body;
    r->body_len = want;
    return 0;
}

/* The number after "key": in a JSON body, or -1. */
static long json_number(const char *body, const char *key)
{
    const char *p = strstr(body, key);
    if (!p)
        return -1;
    p += strlen(key);
    p += strspn(p, " \t\r\n");
    if (*p != ':')
        return -1;
    return strtol(p + 1, NULL, 10);
}

/* One request/response. Returns 1 when it counted, 0 refused (503), -1 wrong. */
static int exchange(struct worker *w, int *fd, char *buf, const struct request *rq, const char *count_key)
{
    struct response r;
    if (*fd < 0)
        *fd = connect_server();
    if (send_all(*fd, rq->data, rq->len) != 0 || read_response(*fd, buf, &r) != 0) {
        if (atomic_load(&stopping))
            return 0;
        fprintf(stderr, "loadgen: connection %d: the server closed the connection\n", w->id);
        close(*fd);
        *fd = -1;
        return -1;
    }
    if (r.close) {
        close(*fd);
        *fd = -1;
    }
    if (r.status == 503) {
        usleep(1000);
        return 0;
    }
    long n = r.status == 200 ? json_number(r.body, count_key) : -1;
    if (n != rq->readings) {
        if (atomic_fetch_add(&complaints, 1) < 5)
            fprintf(stderr, "loadgen: connection %d: status %d, expected %s %ld: %.300s\n", w->id, r.status,
                    count_key, rq->readings, r.body);
        return -1;
    }
    w->bytes += (long long)rq->len;
    return 1;
}

/* --- modes --- */

static void *run_load(void *arg)
{
    struct worker *w = arg;
    char *buf = malloc(RESP_MAX);
    if (!buf)
        die("malloc");
    int fd = -1;
    int64_t ts = 0;
    size_t i = 0;
    double t_start = now_s(), sent = 0; /* for -R: readings sent by this connection */
    while (!atomic_load(&stopping) && w->nreqs) {
        if (o.rate > 0) { /* paced: never ahead of rate/conns readings a second */
            double ahead = t_start + sent / (o.rate / o.conns) - now_s();
            if (ahead > 0)
                usleep((useconds_t)(ahead * 1e6));
        }
        struct request *rq = &w->reqs[i];
        if (i == 0 && w->reqs[0].nts) { /* a new pass: one second later */
            ts = ts ? ts + 1000 : (int64_t)time(NULL) * 1000 - 86400000;
            for (size_t k = 0; k < w->nreqs; k++)
                set_ts(&w->reqs[k], ts);
        }
        int rc = exchange(w, &fd, buf, rq, "\"accepted\"");
        sent += rq->readings;
        if (atomic_load(&counting)) {
            w->requests++;
            if (rc > 0)
                w->readings += rq->readings;
            else if (rc == 0)
                w->refused++;
            else
                w->errors++;
        }
        i = (i + 1) % w->nreqs;
        if (w->errors > 100)
            break;
    }
    if (fd >= 0)
        close(fd);
    free(buf);
    return NULL;
}

/* Runs every request of every worker once (create, lp-once). */
static void *run_once(void *arg)
{
    struct worker *w = arg;
    char *buf = malloc(RESP_MAX);
    if (!buf)
        die("malloc");
    int fd = -1;
    for (size_t i = 0; i < w->nreqs;) {
        struct request *rq = &w->reqs[i];
        if (rq->nts && i == 0)
            for (size_t k = 0; k < w->nreqs; k++)
                set_ts(&w->reqs[k], (int64_t)time(NULL) * 1000 - 60000);
        int rc = exchange(w, &fd, buf, rq, rq->nts ? "\"accepted\"" : "\"created\"");
        w->requests++;
        if (rc == 0) {
            w->refused++;
            continue; /* retry the same request */
        }
        if (rc > 0)
            w->readings += rq->readings;
        else
            w->errors++;
        i++;
    }
    if (fd >= 0)
        close(fd);
    free(buf);
    return NULL;
}

static void *disk_syncer(void *arg)
{
    int fd = *(int *)arg;
    while (!atomic_load(&stopping)) {
        usleep(1000000);
        if (fdatasync(fd) != 0)
            die("fdatasync");
    }
    return NULL;
}

/* One thread writes the bodies back to back; another fsyncs once a second. */
static void *run_disk(void *arg)
{
    struct worker *w = arg;
    int fd = open(o.file, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        die(o.file);
    pthread_t syncer;
    pthread_create(&syncer, NULL, disk_syncer, &fd);
    off_t pos = 0;
    for (size_t i = 0; !atomic_load(&stopping); i = (i + 1) % w->nreqs) {
        const struct request *rq = &w->reqs[i];
        const char *p = rq->data; /* the whole request: what a WAL of the raw input would hold */
        size_t n = rq->len;
        while (n) {
            ssize_t k = write(fd, p, n);
            if (k < 0 && errno == EINTR)
                continue;
            if (k < 0)
                die("write");
            p += k;
            n -= (size_t)k;
        }
        pos += (off_t)rq->len;
        if (pos > (off_t)1 << 30) { /* keep the file at 1 GiB, like a WAL that checkpoints */
            lseek(fd, 0, SEEK_SET);
            pos = 0;
        }
        if (atomic_load(&counting)) {
            w->requests++;
            w->readings += rq->readings;
            w->bytes += (long long)rq->len;
        }
    }
    pthread_join(syncer, NULL);
    close(fd);
    unlink(o.file);
    return NULL;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: loadgen [flags] create|lp|json|lp-once|disk\n"
            "  -H ADDR   server IPv4 address (127.0.0.1)\n"
            "  -p PORT   server port (8080)\n"
            "  -k KEY    API key (Bearer)\n"
            "  -c N      connections, one thread each (4)\n"
            "  -d S      seconds measured (10)\n"
            "  -w S      warm-up seconds before measuring (1)\n"
            "  -n N      entities urn:ngsi-ld:<Type>:bench-NNNNNNN (100000)\n"
            "  -r N      readings per batch (5000)\n"
            "  -B N      entities per bulk create request (10000)\n"
            "  -R N      lp/json: at most N readings/s over all connections (0: unpaced)\n"
            "  -f FILE   the file of the disk mode\n");
    exit(2);
}

int main(int argc, char **argv)
{
    int c;
    while ((c = getopt(argc, argv, "H:p:k:c:d:w:n:r:B:f:R:")) != -1) {
        switch (c) {
        case 'H': o.host = optarg; break;
        case 'p': o.port = atoi(optarg); break;
        case 'k': o.key = optarg; break;
        case 'c': o.conns = atoi(optarg); break;
        case 'd': o.seconds = atof(optarg); break;
        case 'w': o.warmup = atof(optarg); break;
        case 'n': o.entities = atol(optarg); break;
        case 'r': o.batch_readings = atoi(optarg); break;
        case 'B': o.bulk = atoi(optarg); break;
        case 'f': o.file = optarg; break;
        case 'R': o.rate = atof(optarg); break;
        default: usage();
        }
    }
    if (optind != argc - 1 || o.conns < 1 || o.entities < 1 || o.batch_readings < 1 || o.bulk < 1)
        usage();
    o.mode = argv[optind];
    int create = !strcmp(o.mode, "create"), once = !strcmp(o.mode, "lp-once"), disk = !strcmp(o.mode, "disk");
    int json = !strcmp(o.mode, "json");
    if (!create && !once && !disk && !json && strcmp(o.mode, "lp"))
        usage();
    if (disk && !o.file)
        usage();
    if (disk)
        o.conns = 1;

    /* Requests: enough batches to cover every entity once. */
    long nreq = create ? (o.entities + o.bulk - 1) / o.bulk
                       : (o.entities * 3 + o.batch_readings - 1) / o.batch_readings;
    if (!once && !create && nreq < o.conns)
        nreq = o.conns;
    struct worker *w = calloc((size_t)o.conns, sizeof *w);
    struct request *reqs = calloc((size_t)nreq, sizeof *reqs);
    if (!w || !reqs)
        die("calloc");
    int64_t ts0 = (int64_t)time(NULL) * 1000 - 86400000;
    for (long k = 0; k < nreq; k++) {
        if (create) {
            build_bulk(k * o.bulk, k * o.bulk + o.bulk > o.entities ? o.entities - k * o.bulk : o.bulk, &reqs[k]);
        } else {
            /* lp-once: exactly one reading of three attributes per entity, so the last batch may be short. */
            long first = k * o.batch_readings, last = first + o.batch_readings;
            if (once && last > o.entities * 3)
                last = o.entities * 3;
            build_request(json, first, last, ts0, &reqs[k]);
        }
    }
    /* Deal the requests round-robin to the connections. */
    for (int j = 0; j < o.conns; j++) {
        w[j].id = j;
        w[j].reqs = calloc((size_t)nreq / (size_t)o.conns + 1, sizeof *w[j].reqs);
        if (!w[j].reqs)
            die("calloc");
    }
    for (long k = 0; k < nreq; k++) {
        struct worker *x = &w[k % o.conns];
        x->reqs[x->nreqs++] = reqs[k];
    }

    void *(*fn)(void *) = disk ? run_disk : (create || once) ? run_once : run_load;
    double t0 = now_s(), t1 = t0;
    if (create || once)
        atomic_store(&counting, 1);
    for (int j = 0; j < o.conns; j++)
        if (pthread_create(&w[j].thread, NULL, fn, &w[j]) != 0)
            die("pthread_create");
    if (!create && !once) {
        usleep((useconds_t)(o.warmup * 1e6));
        t0 = now_s();
        atomic_store(&counting, 1);
        usleep((useconds_t)(o.seconds * 1e6));
        atomic_store(&counting, 0);
        t1 = now_s();
        atomic_store(&stopping, 1); /* each connection ends after its request in flight */
    }
    for (int j = 0; j < o.conns; j++)
        pthread_join(w[j].thread, NULL);
    if (create || once)
        t1 = now_s();

    long long readings = 0, requests = 0, errors = 0, refused = 0, bytes = 0;
    for (int j = 0; j < o.conns; j++) {
        readings += w[j].readings;
        requests += w[j].requests;
        errors += w[j].errors;
        refused += w[j].refused;
        bytes += w[j].bytes;
    }
    double secs = t1 - t0;
    printf("mode=%s readings=%lld seconds=%.3f readings_per_s=%.0f requests=%lld errors=%lld refused=%lld "
           "bytes=%lld mb_per_s=%.1f connections=%d batch=%d\n",
           o.mode, readings, secs, readings / secs, requests, errors, refused, bytes, bytes / secs / 1e6, o.conns,
           create ? o.bulk : o.batch_readings);
    return errors ? 1 : 0;
}
