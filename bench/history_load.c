/* history_load — the workload and the peers' clients of bench/history.sh.
 *
 * The workload: -n series (entity i = urn:ngsi-ld:<Type>:bench-NNNNNNN, the
 * ids of loadgen's `create`, one attribute pm25 each), one reading a minute
 * from -s START_MS for -D days. Series i reads at second (hash(i) mod 60) of
 * every minute; its value is a per-series level + a daily cycle + an AR(1)
 * drift + Gaussian noise, rounded to 0.1 like a real sensor. Generated in
 * time order (every series' minute m before minute m+1), as it arrives.
 * Every mode generates exactly the same readings.
 *
 * Modes (one key=value line on stdout; problems on stderr):
 *   lp      POST /api/v1/write?precision=ms batches of -b lines over -c
 *           keep-alive connections (connection j sends the series i, i mod c = j);
 *           with -f PREFIX the lines come from PREFIX.<j> (lpgen), so the
 *           clock measures the server, not this generator (like COPY from a file)
 *   lpgen   writes connection j's lines to -f PREFIX.<j>, j < -c
 *   csv     the readings as CSV "series,ts,value" on stdout (for COPY)
 *   sqlite  batched inserts (-b rows a transaction) into -f DB, schema of
 *           bench/history_pg.sql (WITHOUT ROWID)
 *   sqlq / pgq  time a query: -q SQL (-f DB or -u CONNINFO), -r runs; prints
 *           the median ms and the rows of the last run
 *   cbq     time a citybrain query the way a client sees it: GET -q PATH over
 *           one keep-alive HTTP connection (like libpq's one connection),
 *           whole answer read; -r runs after one untimed warm-up; prints the
 *           median ms and the bytes of the last answer (non-200: exit 1)
 * Exit status: 0, or 1 on a wrong answer. */
#include "bench_net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *types[] = {"AirQualityObserved", "ParkingSpot",  "WaterLevelSensor", "ManholeCover",
                              "Streetlight",        "SmokeDetector", "NoiseLevelObserved", "TrafficFlowObserved"};
#define NTYPES 8

static long nseries = 20000, batch = 5000;
static int port = 8080, conns = 2, runs = 5;
static double days = 3;
static long long start_ms;
static const char *key = "", *file, *query, *conninfo;

/* --- the workload --- */

struct series_state {
    uint64_t rng;
    double level, phase, drift;
    int offset_ms;
};
static struct series_state *ss;

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

static double uniform(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return ((double)(*s >> 11) + 0.5) / 9007199254740992.0;
}

static void workload_init(void)
{
    ss = calloc((size_t)nseries, sizeof *ss);
    if (!ss)
        die("calloc");
    for (long i = 0; i < nseries; i++) {
        uint64_t h = mix((uint64_t)i + 1);
        ss[i].rng = h | 1;
        ss[i].level = 20 + (double)(h % 600) / 10;
        ss[i].phase = (double)((h >> 20) % 1000) / 1000 * 6.283;
        ss[i].offset_ms = (int)((h >> 40) % 60) * 1000;
    }
}

static long minutes(void) { return (long)(days * 1440); }

static long long reading_ts(long i, long m) { return start_ms + (long long)m * 60000 + ss[i].offset_ms; }

/* The next value of series i at minute m (call once per (i, m), m increasing). */
static double reading_value(long i, long m)
{
    struct series_state *s = &ss[i];
    double u1 = uniform(&s->rng), u2 = uniform(&s->rng);
    double gauss = sqrt(-2 * log(u1)) * cos(6.283185307 * u2);
    s->drift = 0.98 * s->drift + 0.3 * gauss;
    double v = s->level + 8 * sin(6.283185307 * (double)(m % 1440) / 1440 + s->phase) + s->drift + 0.5 * gauss;
    return round(v * 10) / 10;
}

/* --- growing buffer --- */

/* --- lp: over HTTP --- */

static int connect_server(void)
{
    return bench_connect("127.0.0.1", port);
}

/* Sends one request and checks a 200 whose "accepted" is want; retries 503. */
static int post(int fd, struct text *body, long want)
{
    char head[512], buf[65536];
    for (;;) {
        int hn = snprintf(head, sizeof head,
                          "POST /api/v1/write?precision=ms HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAuthorization: Bearer %s\r\n"
                          "Content-Type: text/plain; charset=utf-8\r\nContent-Length: %zu\r\n\r\n",
                          port, key, body->len);
        if (send_all(fd, head, (size_t)hn) || send_all(fd, body->p, body->len))
            return -1;
        size_t have = 0;
        char *end = NULL;
        while (!end || have < (size_t)(end - buf) + 4 + strtoul(strcasestr(buf, "content-length:") + 15, NULL, 10)) {
            ssize_t n = recv(fd, buf + have, sizeof buf - 1 - have, 0);
            if (n <= 0)
                return -1;
            have += (size_t)n;
            buf[have] = 0;
            if (!end && (end = strstr(buf, "\r\n\r\n")) && !strcasestr(buf, "content-length:"))
                return -1;
        }
        int status = atoi(buf + 9);
        if (status == 503) {
            usleep(50000);
            continue;
        }
        const char *acc = strstr(end, "\"accepted\":");
        if (status != 200 || !acc || strtol(acc + 11, NULL, 10) != want) {
            fprintf(stderr, "history_load: status %d, expected accepted %ld: %.300s\n", status, want, end + 4);
            return -1;
        }
        return 0;
    }
}

/* GET path on fd, whole answer read into *body; returns the status or -1. */
static int get(int fd, const char *path, struct text *body)
{
    char head[1024];
    int hn = snprintf(head, sizeof head, "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAuthorization: Bearer %s\r\n\r\n",
                      path, port, key);
    if (hn >= (int)sizeof head || send_all(fd, head, (size_t)hn))
        return -1;
    body->len = 0;
    size_t need = 0, start = 0;
    for (;;) {
        text_reserve(body, 65536);
        ssize_t n = recv(fd, body->p + body->len, body->cap - body->len - 1, 0);
        if (n <= 0)
            return -1;
        body->len += (size_t)n;
        body->p[body->len] = 0;
        if (!start) {
            char *end = strstr(body->p, "\r\n\r\n"), *cl = strcasestr(body->p, "content-length:");
            if (!end)
                continue;
            if (!cl || cl > end)
                return -1;
            start = (size_t)(end - body->p) + 4;
            need = start + strtoul(cl + 15, NULL, 10);
        }
        if (body->len >= need)
            return atoi(body->p + 9);
    }
}

struct worker {
    pthread_t t;
    int id, failed;
    long long readings, bytes;
};

static int lp_line(struct text *body, long i, long m)
{
    text_reserve(body, 160);
    int n = sprintf(body->p + body->len, "%s,id=urn:ngsi-ld:%s:bench-%07ld pm25=%.1f %lld\n", types[i % NTYPES],
                    types[i % NTYPES], i, reading_value(i, m), reading_ts(i, m));
    body->len += (size_t)n;
    return n;
}

/* Connection w->id's pre-generated lines from PREFIX.<id>, -b a request. */
static void *lp_file_worker(void *arg)
{
    struct worker *w = arg;
    char path[4096];
    snprintf(path, sizeof path, "%s.%d", file, w->id);
    int ffd = open(path, O_RDONLY);
    struct stat st;
    if (ffd < 0 || fstat(ffd, &st) != 0)
        die(path);
    const char *data = st.st_size ? mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, ffd, 0) : "";
    if (data == MAP_FAILED)
        die("mmap");
    int fd = connect_server();
    size_t at = 0, size = (size_t)st.st_size;
    while (at < size && !w->failed) {
        size_t end = at;
        long lines = 0;
        while (lines < batch && end < size) {
            const char *nl = memchr(data + end, '\n', size - end);
            end = nl ? (size_t)(nl - data) + 1 : size;
            lines++;
        }
        struct text body = {(char *)data + at, end - at, end - at};
        if (post(fd, &body, lines) != 0) {
            w->failed = 1;
            break;
        }
        w->readings += lines;
        w->bytes += (long long)(end - at);
        at = end;
    }
    close(fd);
    if (size)
        munmap((void *)data, size);
    close(ffd);
    return NULL;
}

static int mode_lpgen(void)
{
    FILE *out[64];
    for (int j = 0; j < conns; j++) {
        char path[4096];
        snprintf(path, sizeof path, "%s.%d", file, j);
        if (!(out[j] = fopen(path, "w")))
            die(path);
    }
    struct text line = {0};
    for (long m = 0; m < minutes(); m++)
        for (long i = 0; i < nseries; i++) {
            line.len = 0;
            lp_line(&line, i, m);
            fwrite(line.p, 1, line.len, out[i % conns]);
        }
    int bad = 0;
    for (int j = 0; j < conns; j++)
        bad |= fclose(out[j]) != 0;
    free(line.p);
    return bad;
}

static void *lp_worker(void *arg)
{
    struct worker *w = arg;
    int fd = connect_server();
    struct text body = {0};
    long lines = 0;
    for (long m = 0; m < minutes() && !w->failed; m++)
        for (long i = w->id; i < nseries; i += conns) {
            lp_line(&body, i, m);
            if (++lines == batch || (m == minutes() - 1 && i + conns >= nseries)) {
                if (post(fd, &body, lines) != 0) {
                    w->failed = 1;
                    break;
                }
                w->readings += lines;
                w->bytes += (long long)body.len;
                body.len = 0;
                lines = 0;
            }
        }
    close(fd);
    free(body.p);
    return NULL;
}

static int mode_lp(void)
{
    struct worker *ws = calloc((size_t)conns, sizeof *ws);
    double t0 = now_s();
    for (int j = 0; j < conns; j++) {
        ws[j].id = j;
        pthread_create(&ws[j].t, NULL, file ? lp_file_worker : lp_worker, &ws[j]);
    }
    long long readings = 0, bytes = 0;
    int failed = 0;
    for (int j = 0; j < conns; j++) {
        pthread_join(ws[j].t, NULL);
        readings += ws[j].readings;
        bytes += ws[j].bytes;
        failed |= ws[j].failed;
    }
    double s = now_s() - t0;
    printf("readings=%lld seconds=%.2f readings_per_s=%.0f bytes=%lld\n", readings, s, readings / s, bytes);
    return failed;
}

/* --- csv: for COPY --- */

static int mode_csv(void)
{
    static char out[1 << 16];
    setvbuf(stdout, out, _IOFBF, sizeof out);
    for (long m = 0; m < minutes(); m++)
        for (long i = 0; i < nseries; i++)
            printf("%ld,%lld,%.1f\n", i, reading_ts(i, m), reading_value(i, m));
    return fflush(stdout) != 0;
}

/* --- sqlite --- */

static void sq_check(sqlite3 *db, int rc, const char *what)
{
    if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW) {
        fprintf(stderr, "history_load: sqlite %s: %s\n", what, sqlite3_errmsg(db));
        exit(1);
    }
}

static int mode_sqlite(void)
{
    sqlite3 *db;
    sq_check(NULL, sqlite3_open(file, &db), "open");
    sq_check(db,
             sqlite3_exec(db,
                          "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA cache_size=-262144;"
                          "CREATE TABLE series (id INTEGER PRIMARY KEY, entity TEXT NOT NULL, district INTEGER NOT NULL);"
                          "CREATE TABLE readings (series INTEGER NOT NULL, ts INTEGER NOT NULL, value REAL NOT NULL,"
                          " PRIMARY KEY (series, ts)) WITHOUT ROWID;",
                          NULL, NULL, NULL),
             "schema");
    sqlite3_stmt *st;
    sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
    sq_check(db, sqlite3_prepare_v2(db, "INSERT INTO series VALUES (?,?,?)", -1, &st, NULL), "prepare");
    for (long i = 0; i < nseries; i++) {
        char id[96];
        snprintf(id, sizeof id, "urn:ngsi-ld:%s:bench-%07ld", types[i % NTYPES], i);
        sqlite3_bind_int64(st, 1, i);
        sqlite3_bind_text(st, 2, id, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 3, i % 10);
        sq_check(db, sqlite3_step(st), "insert series");
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    sq_check(db, sqlite3_prepare_v2(db, "INSERT INTO readings VALUES (?,?,?)", -1, &st, NULL), "prepare");
    double t0 = now_s();
    long long n = 0;
    sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
    for (long m = 0; m < minutes(); m++)
        for (long i = 0; i < nseries; i++) {
            sqlite3_bind_int64(st, 1, i);
            sqlite3_bind_int64(st, 2, reading_ts(i, m));
            sqlite3_bind_double(st, 3, reading_value(i, m));
            sq_check(db, sqlite3_step(st), "insert");
            sqlite3_reset(st);
            if (++n % batch == 0) {
                sq_check(db, sqlite3_exec(db, "COMMIT; BEGIN", NULL, NULL, NULL), "commit");
            }
        }
    sq_check(db, sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), "commit");
    double s = now_s() - t0;
    sqlite3_finalize(st);
    sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
    sqlite3_close(db);
    printf("readings=%lld seconds=%.2f readings_per_s=%.0f\n", n, s, n / s);
    return 0;
}

/* --- timed queries --- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int mode_query(int pg)
{
    double t[64];
    long rows = 0;
    sqlite3 *db = NULL;
    PGconn *pc = NULL;
    if (pg) {
        pc = PQconnectdb(conninfo);
        if (PQstatus(pc) != CONNECTION_OK) {
            fprintf(stderr, "history_load: %s", PQerrorMessage(pc));
            return 1;
        }
    } else
        sq_check(NULL, sqlite3_open_v2(file, &db, SQLITE_OPEN_READONLY, NULL), "open");
    for (int r = 0; r < runs && r < 64; r++) {
        double t0 = now_s();
        if (pg) {
            PGresult *res = PQexec(pc, query);
            if (PQresultStatus(res) != PGRES_TUPLES_OK) {
                fprintf(stderr, "history_load: %s", PQerrorMessage(pc));
                return 1;
            }
            rows = PQntuples(res);
            PQclear(res);
        } else {
            sqlite3_stmt *st;
            sq_check(db, sqlite3_prepare_v2(db, query, -1, &st, NULL), "prepare");
            int rc;
            rows = 0;
            while ((rc = sqlite3_step(st)) == SQLITE_ROW)
                rows++;
            sq_check(db, rc, "step");
            sqlite3_finalize(st);
        }
        t[r] = (now_s() - t0) * 1000;
    }
    qsort(t, (size_t)runs, sizeof *t, cmp_double);
    printf("ms=%.3f rows=%ld\n", t[runs / 2], rows);
    if (pc)
        PQfinish(pc);
    if (db)
        sqlite3_close(db);
    return 0;
}

static int mode_cbq(void)
{
    double t[64];
    struct text body = {0};
    int fd = connect_server(), status = get(fd, query, &body); /* warm-up, and the answer must be right */
    if (status != 200) {
        fprintf(stderr, "history_load: GET %s: status %d: %.300s\n", query, status, body.p ? body.p : "");
        return 1;
    }
    for (int r = 0; r < runs && r < 64; r++) {
        double t0 = now_s();
        if (get(fd, query, &body) != 200)
            return 1;
        t[r] = (now_s() - t0) * 1000;
    }
    qsort(t, (size_t)runs, sizeof *t, cmp_double);
    printf("ms=%.3f bytes=%zu\n", t[runs / 2], body.len);
    close(fd);
    free(body.p);
    return 0;
}

static void usage(void)
{
    fprintf(stderr, "usage: history_load [-n series] [-D days] -s START_MS [-p port] [-k key] [-c conns] [-b batch]\n"
                    "                    [-f file] [-q sql] [-u conninfo] [-r runs] lp|lpgen|csv|sqlite|sqlq|pgq|cbq\n");
    exit(2);
}

int main(int argc, char **argv)
{
    int c;
    while ((c = getopt(argc, argv, "n:D:s:p:k:c:b:f:q:u:r:")) != -1)
        switch (c) {
        case 'n': nseries = atol(optarg); break;
        case 'D': days = atof(optarg); break;
        case 's': start_ms = atoll(optarg); break;
        case 'p': port = atoi(optarg); break;
        case 'k': key = optarg; break;
        case 'c': conns = atoi(optarg); break;
        case 'b': batch = atol(optarg); break;
        case 'f': file = optarg; break;
        case 'q': query = optarg; break;
        case 'u': conninfo = optarg; break;
        case 'r': runs = atoi(optarg); break;
        default: usage();
        }
    if (optind != argc - 1 || nseries <= 0 || days <= 0 || conns <= 0 || conns > 64 || batch <= 0 || runs <= 0 || runs > 64)
        usage();
    const char *mode = argv[optind];
    workload_init();
    if (!strcmp(mode, "lp"))
        return mode_lp();
    if (!strcmp(mode, "lpgen") && file)
        return mode_lpgen();
    if (!strcmp(mode, "csv"))
        return mode_csv();
    if (!strcmp(mode, "sqlite") && file)
        return mode_sqlite();
    if (!strcmp(mode, "sqlq") && file && query)
        return mode_query(0);
    if (!strcmp(mode, "pgq") && conninfo && query)
        return mode_query(1);
    if (!strcmp(mode, "cbq") && query)
        return mode_cbq();
    usage();
}
