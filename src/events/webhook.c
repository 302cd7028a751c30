/* webhook — POSTs events to other systems (departments' work-order systems,
 * the 12345 hotline platform): definitions in SQLite (migration 5), one
 * sender thread that reads the ring like any subscriber, a bounded queue of
 * deliveries (the oldest dropped and counted beyond webhook_queue), retries
 * with backoff 1 s, 2 s, 4 s … up to webhook_max_attempts, and an HMAC-SHA256
 * signature of "<timestamp>.<body>" with the webhook's secret.
 *
 * HTTP goes through libcurl: https receivers, timeouts on every phase
 * (including name lookup) and connection reuse, without a client of our own.
 * The thread doubles as the keepalive beat of the SSE streams (once a second
 * it wakes the subscribers). */
#include "events_int.h"

#include "core/clock.h"
#include "core/log.h"

#include <assert.h>
#include <curl/curl.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char events_schema_sql[] =
    "CREATE TABLE webhook ("
    "  id TEXT PRIMARY KEY,"
    "  url TEXT NOT NULL,"
    "  secret TEXT NOT NULL,"       /* kept in clear: needed to sign; shown only at creation */
    "  kinds INTEGER NOT NULL,"     /* bit per enum event_kind; 0: all */
    "  created_at INTEGER NOT NULL" /* ms since epoch */
    ") STRICT;";

#define WEBHOOK_ID_MAX 24
#define WEBHOOK_SECRET_MAX 129
#define BEAT_MS 1000

struct webhook {
    struct webhook *next;
    char id[WEBHOOK_ID_MAX];
    char url[WEBHOOK_URL_MAX];
    char secret[WEBHOOK_SECRET_MAX];
    unsigned kinds;
    int64_t created_at;
    int deleted;              /* kept until stop: queued deliveries may point here */
    unsigned long long delivered, failed_attempts, dropped;
    long last_status;         /* HTTP status of the last attempt; 0: none or no answer */
    int64_t last_attempt_at;
};

struct delivery {
    struct delivery *next;
    struct webhook *wh;
    struct event_rec *rec;    /* a reference */
    int attempts;
    int64_t due_ms;           /* monotonic */
};

struct webhooks {
    pthread_t thread;
    pthread_mutex_t lock;     /* guards everything below but the curl handle */
    pthread_cond_t cond;
    atomic_int stop;          /* also read by the transfer in progress, to abort it */
    int woken;
    struct webhook *list;     /* newest first, deleted ones included */
    struct delivery *head, *tail;
    size_t queued;
    unsigned long long queue_dropped, missed; /* evicted from the queue; left the ring unread */
    event_sub *sub;
    CURL *curl;               /* the sender thread's only */
    int64_t beat_at;          /* the sender thread's only: next keepalive beat (monotonic) */
};

/* ---- the store ---- */

static int load_webhooks(events *ev, cb_error *err)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db_sqlite(ev->db), "SELECT id, url, secret, kinds, created_at FROM webhook ORDER BY created_at",
                                -1, &st, NULL);
    if (rc != SQLITE_OK)
        return db_error(ev->db, rc, "loading webhooks", err);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct webhook *w = calloc(1, sizeof *w);
        if (!w) {
            sqlite3_finalize(st);
            return cb_error_set(err, CB_ENOMEM, NULL, NULL);
        }
        snprintf(w->id, sizeof w->id, "%s", sqlite3_column_text(st, 0));
        snprintf(w->url, sizeof w->url, "%s", sqlite3_column_text(st, 1));
        snprintf(w->secret, sizeof w->secret, "%s", sqlite3_column_text(st, 2));
        w->kinds = (unsigned)sqlite3_column_int(st, 3);
        w->created_at = sqlite3_column_int64(st, 4);
        w->next = ev->wh->list;
        ev->wh->list = w;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : db_error(ev->db, rc, "loading webhooks", err);
}

static int valid_url(const char *url)
{
    const char *host = strncmp(url, "http://", 7) == 0 ? url + 7 : strncmp(url, "https://", 8) == 0 ? url + 8 : NULL;
    if (!host || !*host || *host == '/' || *host == ':' || strlen(url) >= WEBHOOK_URL_MAX)
        return 0;
    for (const unsigned char *p = (const unsigned char *)url; *p; p++)
        if (*p <= ' ' || *p == 0x7f)
            return 0;
    return 1;
}

static json_t *kinds_json(unsigned kinds)
{
    json_t *a = json_array();
    for (int k = 0; k < EVENT_KIND_COUNT; k++)
        if (!kinds || (kinds & (1u << k)))
            json_array_append_new(a, json_string(events_kind_name((enum event_kind)k)));
    return a;
}

/* Under wh->lock. */
static json_t *webhook_json(const struct webhook *w)
{
    char created[CLOCK_RFC3339_MAX], last[CLOCK_RFC3339_MAX];
    clock_format_rfc3339(w->created_at, created);
    if (w->last_attempt_at)
        clock_format_rfc3339(w->last_attempt_at, last);
    return json_pack("{s:s, s:s, s:o, s:s, s:I, s:I, s:I, s:o?, s:s?}", "id", w->id, "url", w->url, "kinds",
                     kinds_json(w->kinds), "created_at", created, "delivered", (json_int_t)w->delivered, "failed",
                     (json_int_t)w->failed_attempts, "dropped", (json_int_t)w->dropped, "last_status",
                     w->last_status ? json_integer(w->last_status) : NULL,
                     "last_attempt_at", w->last_attempt_at ? last : NULL);
}

int events_webhook_create(events *ev, const char *url, const char *secret, unsigned kinds, json_t **out,
                          cb_error *err)
{
    if (!valid_url(url))
        return cb_error_set(err, CB_EINVALID_FIELD, "url",
                            "url must be http:// or https:// with a host, without spaces, under %d bytes",
                            WEBHOOK_URL_MAX);
    if (secret && *secret && (strlen(secret) < 16 || strlen(secret) >= WEBHOOK_SECRET_MAX))
        return cb_error_set(err, CB_EINVALID_FIELD, "secret", "secret must be 16..%d characters",
                            WEBHOOK_SECRET_MAX - 1);
    struct webhook *w = calloc(1, sizeof *w);
    if (!w)
        return cb_error_set(err, CB_ENOMEM, NULL, NULL);
    unsigned char rnd[32];
    randombytes_buf(rnd, 6);
    strcpy(w->id, "wh");
    sodium_bin2hex(w->id + 2, sizeof w->id - 2, rnd, 6);
    if (secret && *secret) {
        strcpy(w->secret, secret);
    } else {
        randombytes_buf(rnd, sizeof rnd);
        sodium_bin2hex(w->secret, sizeof w->secret, rnd, sizeof rnd);
    }
    strcpy(w->url, url);
    w->kinds = kinds;
    w->created_at = clock_now_ms();
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db_sqlite(ev->db), "INSERT INTO webhook (id, url, secret, kinds, created_at) VALUES (?, ?, ?, ?, ?)",
                                -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(st, 1, w->id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, w->url, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, w->secret, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 4, (int)w->kinds);
        sqlite3_bind_int64(st, 5, w->created_at);
        rc = sqlite3_step(st);
        sqlite3_finalize(st);
    }
    if (rc != SQLITE_DONE) {
        free(w);
        return db_error(ev->db, rc, "storing the webhook", err);
    }
    struct webhooks *wh = ev->wh;
    pthread_mutex_lock(&wh->lock);
    json_t *j = webhook_json(w);
    w->next = wh->list;
    wh->list = w;
    pthread_mutex_unlock(&wh->lock);
    json_object_set_new(j, "secret", json_string(w->secret));
    json_object_set_new(j, "note", json_string("the secret is shown only now; receivers check X-Citybrain-Signature with it"));
    *out = j;
    log_event(LOG_INFO, "webhook", "action=created id=%s kinds=%u", w->id, kinds);
    return 0;
}

int events_webhook_list(events *ev, json_t **out, cb_error *err)
{
    struct webhooks *wh = ev->wh;
    json_t *a = json_array();
    if (!a)
        return cb_error_set(err, CB_ENOMEM, NULL, NULL);
    pthread_mutex_lock(&wh->lock);
    for (const struct webhook *w = wh->list; w; w = w->next)
        if (!w->deleted)
            json_array_insert_new(a, 0, webhook_json(w)); /* oldest first */
    pthread_mutex_unlock(&wh->lock);
    *out = json_pack("{s:o}", "webhooks", a);
    return *out ? 0 : cb_error_set(err, CB_ENOMEM, NULL, NULL);
}

int events_webhook_delete(events *ev, const char *id, cb_error *err)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db_sqlite(ev->db), "DELETE FROM webhook WHERE id = ?", -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        sqlite3_finalize(st);
    }
    if (rc != SQLITE_DONE)
        return db_error(ev->db, rc, "deleting the webhook", err);
    if (sqlite3_changes(db_sqlite(ev->db)) == 0)
        return cb_error_set(err, CB_ENOT_FOUND, "id", "no webhook '%s'", id);
    struct webhooks *wh = ev->wh;
    pthread_mutex_lock(&wh->lock);
    for (struct webhook *w = wh->list; w; w = w->next)
        if (strcmp(w->id, id) == 0)
            w->deleted = 1;
    pthread_mutex_unlock(&wh->lock);
    log_event(LOG_INFO, "webhook", "action=deleted id=%s", id);
    return 0;
}

/* ---- the queue (under wh->lock) ---- */

static void delivery_free(struct delivery *d)
{
    events__rec_unref(d->rec);
    free(d);
}

/* Puts d at the end of the delivery queue (caller holds wh->lock). */
static void queue_append(struct webhooks *wh, struct delivery *d)
{
    d->next = NULL;
    if (wh->tail)
        wh->tail->next = d;
    else
        wh->head = d;
    wh->tail = d;
    wh->queued++;
}

static void enqueue(events *ev, struct webhook *w, struct event_rec *rec)
{
    struct webhooks *wh = ev->wh;
    struct delivery *d = calloc(1, sizeof *d);
    if (!d) {
        w->dropped++;
        return;
    }
    atomic_fetch_add(&rec->refs, 1);
    d->wh = w;
    d->rec = rec;
    d->due_ms = clock_mono_ms();
    if (wh->queued >= (size_t)ev->cfg->webhook_queue) { /* the oldest makes room */
        struct delivery *old = wh->head;
        wh->head = old->next;
        if (!wh->head)
            wh->tail = NULL;
        wh->queued--;
        old->wh->dropped++;
        wh->queue_dropped++;
        delivery_free(old);
    }
    queue_append(wh, d);
}

/* Takes the first delivery that is due off the queue; NULL if none, with
 * *next_due the earliest due time of the rest. */
static struct delivery *dequeue_due(struct webhooks *wh, int64_t now, int64_t *next_due)
{
    struct delivery **pp = &wh->head, *prev = NULL;
    for (struct delivery *d = wh->head; d; prev = d, d = d->next) {
        if (d->due_ms <= now || d->wh->deleted) {
            *pp = d->next;
            if (wh->tail == d)
                wh->tail = prev;
            wh->queued--;
            d->next = NULL;
            return d;
        }
        if (d->due_ms < *next_due)
            *next_due = d->due_ms;
        pp = &d->next;
    }
    return NULL;
}

/* ---- sending ---- */

static size_t discard(char *ptr, size_t size, size_t n, void *ud)
{
    (void)ptr;
    (void)ud;
    return size * n;
}

/* The streams' keepalive beat, about once a second: between deliveries and
 * from inside a transfer too, so a slow receiver never silences the streams. */
static void beat(events *ev)
{
    struct webhooks *wh = ev->wh;
    int64_t now = clock_mono_ms();
    if (now >= wh->beat_at) {
        events__wake_all(ev);
        wh->beat_at = now + BEAT_MS;
    }
}

/* libcurl calls this at least once a second during a transfer: beat, and
 * abort when the server stops, so a slow receiver never holds up the
 * shutdown for webhook_timeout. */
static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    events *ev = ud;
    beat(ev);
    return atomic_load(&ev->wh->stop);
}

/* One attempt; returns the HTTP status, or 0 when there was no answer. */
static long post(events *ev, const struct webhook *w, const struct event_rec *rec, int timeout_s)
{
    buf body = BUF_INIT;
    buf_printf(&body, "{\"id\":%" PRIu64 ",", rec->id);
    buf_append(&body, rec->json, rec->json_len);
    if (buf_failed(&body))
        return 0;
    char ts[24], hdr[4][160];
    snprintf(ts, sizeof ts, "%lld", (long long)(clock_now_ms() / 1000));
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, (const unsigned char *)w->secret, strlen(w->secret));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)ts, strlen(ts));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)".", 1);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)body.data, body.len);
    crypto_auth_hmacsha256_final(&st, mac);
    char hex[2 * sizeof mac + 1];
    sodium_bin2hex(hex, sizeof hex, mac, sizeof mac);
    snprintf(hdr[0], sizeof hdr[0], "X-Citybrain-Event: %s", rec->type);
    snprintf(hdr[1], sizeof hdr[1], "X-Citybrain-Delivery: %" PRIu64, rec->id);
    snprintf(hdr[2], sizeof hdr[2], "X-Citybrain-Timestamp: %s", ts);
    snprintf(hdr[3], sizeof hdr[3], "X-Citybrain-Signature: sha256=%s", hex);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    for (int i = 0; i < 4 && h; i++)
        h = curl_slist_append(h, hdr[i]);
    long status = 0;
    CURL *c = ev->wh->curl;
    if (h) {
        curl_easy_reset(c);
        curl_easy_setopt(c, CURLOPT_URL, w->url);
        curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)timeout_s);
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, (long)timeout_s);
        curl_easy_setopt(c, CURLOPT_USERAGENT, "citybrain/" CB_VERSION);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.data);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)body.len);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
        curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(c, CURLOPT_XFERINFODATA, ev);
        if (curl_easy_perform(c) == CURLE_OK)
            curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    }
    curl_slist_free_all(h);
    buf_free(&body);
    return status;
}

/* Sends one due delivery; requeues it with backoff or lets it go. */
static void deliver(events *ev, struct delivery *d)
{
    struct webhooks *wh = ev->wh;
    pthread_mutex_lock(&wh->lock);
    int gone = d->wh->deleted;
    pthread_mutex_unlock(&wh->lock);
    long status = gone ? -1 : post(ev, d->wh, d->rec, ev->cfg->webhook_timeout); /* url, secret: immutable */
    pthread_mutex_lock(&wh->lock);
    struct webhook *w = d->wh;
    if (status < 0) {
        delivery_free(d); /* its webhook is gone */
    } else if (status >= 200 && status < 300) {
        w->delivered++;
        w->last_status = status;
        w->last_attempt_at = clock_now_ms();
        delivery_free(d);
    } else {
        w->failed_attempts++;
        w->last_status = status;
        w->last_attempt_at = clock_now_ms();
        if (++d->attempts >= ev->cfg->webhook_max_attempts) {
            w->dropped++;
            log_event(LOG_WARN, "webhook", "msg=\"delivery given up\" id=%s event=%" PRIu64 " attempts=%d status=%ld",
                      w->id, d->rec->id, d->attempts, status);
            delivery_free(d);
        } else {
            d->due_ms = clock_mono_ms() + 1000LL * (1LL << (d->attempts - 1)); /* 1 s, 2 s, 4 s, ... */
            queue_append(wh, d);
        }
    }
    pthread_mutex_unlock(&wh->lock);
}

/* New events from the ring into the queue, one delivery per matching webhook. */
static void take_new_events(events *ev)
{
    struct webhooks *wh = ev->wh;
    uint64_t lost;
    struct event_rec *r;
    while ((r = events__next(ev, wh->sub, &lost)) != NULL || lost) {
        pthread_mutex_lock(&wh->lock);
        wh->missed += lost;
        for (struct webhook *w = wh->list; r && w; w = w->next)
            if (!w->deleted && (!w->kinds || (w->kinds & (1u << r->kind))))
                enqueue(ev, w, r);
        pthread_mutex_unlock(&wh->lock);
        events__rec_unref(r);
    }
}

static void sender_wake(void *ctx)
{
    struct webhooks *wh = ctx;
    pthread_mutex_lock(&wh->lock);
    wh->woken = 1;
    pthread_cond_signal(&wh->cond);
    pthread_mutex_unlock(&wh->lock);
}

static void *sender_main(void *arg)
{
    events *ev = arg;
    struct webhooks *wh = ev->wh;
    wh->beat_at = clock_mono_ms() + BEAT_MS;
    pthread_mutex_lock(&wh->lock);
    while (!wh->stop) {
        pthread_mutex_unlock(&wh->lock);
        take_new_events(ev);
        beat(ev);
        pthread_mutex_lock(&wh->lock);
        int64_t next = wh->beat_at;
        struct delivery *d;
        while (!wh->stop && (d = dequeue_due(wh, clock_mono_ms(), &next)) != NULL) {
            pthread_mutex_unlock(&wh->lock);
            if (!wh->curl)
                wh->curl = curl_easy_init();
            if (wh->curl) {
                deliver(ev, d);
            } else {
                pthread_mutex_lock(&wh->lock);
                d->wh->dropped++;
                pthread_mutex_unlock(&wh->lock);
                delivery_free(d);
            }
            take_new_events(ev);
            beat(ev);
            pthread_mutex_lock(&wh->lock);
            next = wh->beat_at;
        }
        if (!wh->stop && !wh->woken) {
            int64_t wait_ms = next - clock_mono_ms();
            if (wait_ms > 0) {
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_sec += wait_ms / 1000;
                ts.tv_nsec += (wait_ms % 1000) * 1000000L;
                if (ts.tv_nsec >= 1000000000L) {
                    ts.tv_sec++;
                    ts.tv_nsec -= 1000000000L;
                }
                pthread_cond_timedwait(&wh->cond, &wh->lock, &ts);
            }
        }
        wh->woken = 0;
    }
    pthread_mutex_unlock(&wh->lock);
    return NULL;
}

int events__webhooks_start(events *ev, cb_error *err)
{
    struct webhooks *wh = calloc(1, sizeof *wh);
    if (!wh)
        return cb_error_set(err, CB_ENOMEM, NULL, NULL);
    ev->wh = wh;
    pthread_mutex_init(&wh->lock, NULL);
    pthread_cond_init(&wh->cond, NULL);
    struct event_filter all;
    memset(&all, 0, sizeof all);
    int rc = load_webhooks(ev, err);
    if (rc == 0 && curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        rc = cb_error_set(err, CB_EINTERNAL, NULL, "libcurl did not initialise");
    if (rc == 0)
        rc = events_subscribe(ev, &all, 0, 0, sender_wake, wh, &wh->sub, err);
    if (rc == 0 && pthread_create(&wh->thread, NULL, sender_main, ev) != 0) {
        events_unsubscribe(ev, wh->sub);
        rc = cb_error_set(err, CB_EINTERNAL, NULL, "cannot start the webhook thread");
    }
    if (rc != 0) {
        ev->wh = NULL;
        for (struct webhook *w = wh->list, *n; w; w = n) {
            n = w->next;
            free(w);
        }
        pthread_cond_destroy(&wh->cond);
        pthread_mutex_destroy(&wh->lock);
        free(wh);
    }
    return rc;
}

void events__webhooks_stop(events *ev)
{
    struct webhooks *wh = ev->wh;
    if (!wh)
        return;
    pthread_mutex_lock(&wh->lock);
    wh->stop = 1;
    pthread_cond_signal(&wh->cond);
    pthread_mutex_unlock(&wh->lock);
    pthread_join(wh->thread, NULL);
    events_unsubscribe(ev, wh->sub);
    if (wh->queued)
        log_event(LOG_WARN, "webhook", "msg=\"deliveries not sent at shutdown\" queued=%zu", wh->queued);
    for (struct delivery *d = wh->head, *n; d; d = n) {
        n = d->next;
        delivery_free(d);
    }
    for (struct webhook *w = wh->list, *n; w; w = n) {
        n = w->next;
        free(w);
    }
    if (wh->curl)
        curl_easy_cleanup(wh->curl);
    curl_global_cleanup();
    pthread_cond_destroy(&wh->cond);
    pthread_mutex_destroy(&wh->lock);
    free(wh);
    ev->wh = NULL;
}

void events__webhooks_metrics(events *ev, buf *out)
{
    struct webhooks *wh = ev->wh;
    pthread_mutex_lock(&wh->lock);
    buf_printf(out,
               "# HELP citybrain_webhook_queue Webhook deliveries waiting or retrying.\n"
               "# TYPE citybrain_webhook_queue gauge\ncitybrain_webhook_queue %zu\n"
               "# HELP citybrain_webhook_queue_dropped_total Deliveries dropped because the queue was full.\n"
               "# TYPE citybrain_webhook_queue_dropped_total counter\ncitybrain_webhook_queue_dropped_total %llu\n"
               "# HELP citybrain_webhook_missed_total Events that left the ring before the sender read them.\n"
               "# TYPE citybrain_webhook_missed_total counter\ncitybrain_webhook_missed_total %llu\n"
               "# HELP citybrain_webhook_deliveries_total Webhook deliveries by outcome "
               "(delivered; failed: attempts that failed; dropped: given up).\n"
               "# TYPE citybrain_webhook_deliveries_total counter\n",
               wh->queued, wh->queue_dropped, wh->missed);
    for (const struct webhook *w = wh->list; w; w = w->next) {
        if (w->deleted)
            continue;
        buf_printf(out,
                   "citybrain_webhook_deliveries_total{webhook=\"%s\",outcome=\"delivered\"} %llu\n"
                   "citybrain_webhook_deliveries_total{webhook=\"%s\",outcome=\"failed\"} %llu\n"
                   "citybrain_webhook_deliveries_total{webhook=\"%s\",outcome=\"dropped\"} %llu\n",
                   w->id, w->delivered, w->id, w->failed_attempts, w->id, w->dropped);
    }
    pthread_mutex_unlock(&wh->lock);
}
