/* events — the ring of recent events and its subscribers.
 *
 * The ring is an array of cap slots holding contiguous ids, so the event
 * with id n sits at (head + n - first id) % cap: a reconnecting client finds
 * its place in O(1). It is bounded by count (events_buffer) and by bytes
 * (events_buffer_bytes); the oldest events leave first. Publishing formats
 * the event outside the lock and under it only assigns the id, stores the
 * pointer and wakes idle subscribers. */
#include "events_int.h"

#include "core/clock.h"
#include "core/log.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const kind_names[EVENT_KIND_COUNT] = {"alarm", "case", "supervision", "kpi"};

const char *events_kind_name(enum event_kind k)
{
    assert(k < EVENT_KIND_COUNT);
    return kind_names[k];
}

int events_kind_parse(const char *name, size_t len)
{
    for (int k = 0; k < EVENT_KIND_COUNT; k++)
        if (strlen(kind_names[k]) == len && memcmp(kind_names[k], name, len) == 0)
            return k;
    return -1;
}

int events_filter_kinds(struct event_filter *f, const char *list, cb_error *err)
{
    f->kinds = 0;
    for (const char *p = list; *p;) {
        size_t n = strcspn(p, ",");
        int k = events_kind_parse(p, n);
        if (k < 0)
            return cb_error_set(err, CB_EINVALID_FIELD, "kind",
                                "unknown event kind '%.*s': use alarm, case, supervision or kpi", (int)(n > 40 ? 40 : n), p);
        f->kinds |= 1u << k;
        p += n;
        if (*p == ',')
            p++;
    }
    return 0;
}

/* ---- the id high-water mark, kept across restarts ---- */

static uint64_t stored_last_id(db *d)
{
    sqlite3_stmt *st;
    uint64_t id = 0;
    if (sqlite3_prepare_v2(db_sqlite(d), "SELECT value FROM meta WHERE key = 'events_last_id'", -1, &st, NULL) != SQLITE_OK)
        return 0;
    if (sqlite3_step(st) == SQLITE_ROW)
        id = strtoull((const char *)sqlite3_column_text(st, 0), NULL, 10);
    sqlite3_finalize(st);
    return id;
}

static void store_last_id(events *ev)
{
    char sql[128];
    snprintf(sql, sizeof sql, "INSERT OR REPLACE INTO meta (key, value) VALUES ('events_last_id', '%" PRIu64 "')",
             ev->next_id - 1);
    cb_error err;
    if (db_exec(ev->db, sql, &err) != 0)
        log_event(LOG_WARN, "events", "msg=\"cannot store the last event id\" error=\"%s\"", err.message);
}

/* ---- open, close ---- */

int events_open(const struct cb_config *cfg, events **out, cb_error *err)
{
    events *ev = calloc(1, sizeof *ev);
    if (!ev)
        return cb_error_set(err, CB_ENOMEM, NULL, NULL);
    ev->cfg = cfg;
    ev->cap = (size_t)cfg->events_buffer;
    pthread_mutex_init(&ev->lock, NULL);
    int rc = CB_ENOMEM;
    ev->slot = calloc(ev->cap, sizeof *ev->slot);
    if (!ev->slot) {
        cb_error_set(err, rc, "events_buffer", "no memory for %zu events", ev->cap);
        goto fail;
    }
    if ((rc = db_open(cfg->data_dir, &ev->db, err)) != 0)
        goto fail;
    /* Ids of this run start above any of an earlier one: above the mark of
     * the last clean stop and above the clock (epoch ms × 1000, which stays
     * below 2^53 — exact in JavaScript — until the year 2255). */
    uint64_t base = (uint64_t)clock_now_ms() * 1000;
    uint64_t last = stored_last_id(ev->db);
    ev->next_id = (last > base ? last : base) + 1;
    if ((rc = events__webhooks_start(ev, err)) != 0)
        goto fail;
    *out = ev;
    return 0;
fail:
    db_close(ev->db);
    free(ev->slot);
    pthread_mutex_destroy(&ev->lock);
    free(ev);
    return rc;
}

void events_close(events *ev)
{
    if (!ev)
        return;
    events__webhooks_stop(ev);
    assert(ev->subs == NULL && "every subscriber unsubscribed before close");
    store_last_id(ev);
    for (size_t i = 0; i < ev->count; i++)
        events__rec_unref(ev->slot[(ev->head + i) % ev->cap]);
    free(ev->slot);
    db_close(ev->db);
    pthread_mutex_destroy(&ev->lock);
    free(ev);
}

/* ---- publishing ---- */

void events__rec_unref(struct event_rec *r)
{
    if (r && atomic_fetch_sub(&r->refs, 1) == 1)
        free(r);
}

/* The record with its strings in one allocation; NULL when out of memory. */
static struct event_rec *rec_build(int kind, const char *type, const struct event_scope *scope, json_t *data)
{
    const char *district = scope && scope->district ? scope->district : "";
    const char *department = scope && scope->department ? scope->department : "";
    char time[CLOCK_RFC3339_MAX];
    clock_format_rfc3339(clock_now_ms(), time);
    json_t *o = json_pack("{s:s, s:s, s:s, s:s?, s:s?, s:O}", "kind", kind_names[kind], "type", type,
                          "time", time, "district", *district ? district : NULL,
                          "department", *department ? department : NULL, "data", data);
    char *text = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(12)) : NULL;
    json_decref(o);
    if (!text)
        return NULL;
    assert(text[0] == '{');
    size_t tl = strlen(type) + 1, dl = strlen(district) + 1, pl = strlen(department) + 1;
    size_t jl = strlen(text + 1);
    size_t bytes = sizeof(struct event_rec) + tl + dl + pl + jl + 1;
    struct event_rec *r = malloc(bytes);
    if (r) {
        char *p = (char *)(r + 1);
        r->type = memcpy(p, type, tl), p += tl;
        r->district = memcpy(p, district, dl), p += dl;
        r->department = memcpy(p, department, pl), p += pl;
        r->json = memcpy(p, text + 1, jl + 1);
        r->json_len = jl;
        r->kind = (unsigned char)kind;
        r->bytes = bytes;
        atomic_init(&r->refs, 1);
    }
    free(text);
    return r;
}

static int filter_match(const struct event_filter *f, const struct event_rec *r)
{
    if (f->kinds && !(f->kinds & (1u << r->kind)))
        return 0;
    if (f->district[0] && strcmp(f->district, r->district) != 0)
        return 0;
    if (f->department[0] && strcmp(f->department, r->department) != 0)
        return 0;
    return 1;
}

/* Under the lock: the oldest event leaves; returned for unref outside it. */
static struct event_rec *ring_pop(events *ev)
{
    assert(ev->count > 0);
    struct event_rec *r = ev->slot[ev->head];
    ev->slot[ev->head] = NULL;
    ev->head = (ev->head + 1) % ev->cap;
    ev->count--;
    ev->bytes -= r->bytes;
    ev->evicted++;
    return r;
}

uint64_t events_publish(events *ev, const char *kind, const char *type, const struct event_scope *scope,
                        json_t *data)
{
    int k = events_kind_parse(kind, strlen(kind));
    assert(k >= 0 && "events_publish: kind is alarm, case, supervision or kpi");
    struct event_rec *r = rec_build(k, type, scope, data);
    json_decref(data);
    /* Usually one old event leaves; at most the few a large one displaces. */
    struct event_rec *gone[8];
    int ngone = 0;
    uint64_t id = 0;
    pthread_mutex_lock(&ev->lock);
    if (!r) {
        ev->dropped_nomem++;
        goto out;
    }
    while (ev->count > 0 && ngone < 8 &&
           (ev->count == ev->cap || ev->bytes + r->bytes > (size_t)ev->cfg->events_buffer_bytes))
        gone[ngone++] = ring_pop(ev);
    assert(ev->count < ev->cap); /* a byte-bound beyond gone[] may overshoot, a count never */
    id = r->id = ev->next_id++;
    ev->slot[(ev->head + ev->count) % ev->cap] = r;
    ev->count++;
    ev->bytes += r->bytes;
    ev->published[k]++;
    for (event_sub *s = ev->subs; s; s = s->next) {
        if (s->waiting && filter_match(&s->f, r)) {
            s->waiting = 0;
            s->wake(s->ctx);
        }
    }
out:
    pthread_mutex_unlock(&ev->lock);
    for (int i = 0; i < ngone; i++)
        events__rec_unref(gone[i]);
    return id;
}

uint64_t events_last_id(events *ev)
{
    pthread_mutex_lock(&ev->lock);
    uint64_t id = ev->count ? ev->next_id - 1 : 0;
    pthread_mutex_unlock(&ev->lock);
    return id;
}

/* ---- subscribers ---- */

int events_subscribe(events *ev, const struct event_filter *f, uint64_t last_id, int count_as_stream,
                     void (*wake)(void *ctx), void *ctx, event_sub **out, cb_error *err)
{
    event_sub *s = calloc(1, sizeof *s);
    if (!s)
        return cb_error_set(err, CB_ENOMEM, NULL, NULL);
    s->f = *f;
    s->wake = wake;
    s->ctx = ctx;
    s->stream = count_as_stream;
    pthread_mutex_lock(&ev->lock);
    if (count_as_stream && ev->streams >= ev->cfg->max_streams) {
        pthread_mutex_unlock(&ev->lock);
        free(s);
        return cb_error_set(err, CB_EUNAVAILABLE, NULL, "%d stream clients already (max_streams); try again later",
                            ev->cfg->max_streams);
    }
    /* A position at or beyond the newest event (a client of a newer run,
     * or a clock set back) simply starts from now. */
    s->pos = last_id && last_id < ev->next_id ? last_id : ev->next_id - 1;
    s->next = ev->subs;
    if (ev->subs)
        ev->subs->prev = s;
    ev->subs = s;
    ev->streams += count_as_stream;
    pthread_mutex_unlock(&ev->lock);
    *out = s;
    return 0;
}

void events_unsubscribe(events *ev, event_sub *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&ev->lock);
    if (s->prev)
        s->prev->next = s->next;
    else
        ev->subs = s->next;
    if (s->next)
        s->next->prev = s->prev;
    ev->streams -= s->stream;
    assert(ev->streams >= 0);
    pthread_mutex_unlock(&ev->lock);
    free(s);
}

/* Wakes every stream (the keepalive beat). */
void events__wake_all(events *ev)
{
    pthread_mutex_lock(&ev->lock);
    for (event_sub *s = ev->subs; s; s = s->next)
        if (s->stream)
            s->wake(s->ctx);
    pthread_mutex_unlock(&ev->lock);
}

/* Under the lock: the oldest id in the ring, or the next one when empty. */
static uint64_t oldest_id(const events *ev)
{
    return ev->next_id - ev->count;
}

static struct event_rec *ring_get(const events *ev, uint64_t id)
{
    assert(id >= oldest_id(ev) && id < ev->next_id);
    return ev->slot[(ev->head + (id - oldest_id(ev))) % ev->cap];
}

struct event_rec *events__next(events *ev, event_sub *s, uint64_t *lost)
{
    struct event_rec *found = NULL;
    *lost = 0;
    pthread_mutex_lock(&ev->lock);
    if (s->pos + 1 < oldest_id(ev)) {
        *lost = oldest_id(ev) - (s->pos + 1);
        s->pos = oldest_id(ev) - 1;
    }
    while (s->pos + 1 < ev->next_id) {
        struct event_rec *r = ring_get(ev, ++s->pos);
        if (filter_match(&s->f, r)) {
            atomic_fetch_add(&r->refs, 1);
            found = r;
            break;
        }
    }
    if (!found)
        s->waiting = 1;
    pthread_mutex_unlock(&ev->lock);
    return found;
}

static void sse_frame(buf *out, const struct event_rec *r)
{
    buf_printf(out, "id: %" PRIu64 "\nevent: %s\ndata: {\"id\":%" PRIu64 ",", r->id, r->type, r->id);
    buf_append(out, r->json, r->json_len);
    buf_puts(out, "\n\n");
}

int events_sse_read(events *ev, event_sub *s, buf *out, size_t max)
{
    int frames = 0;
    size_t start = out->len;
    pthread_mutex_lock(&ev->lock);
    if (s->pos + 1 < oldest_id(ev)) {
        /* Events after the position have left the ring: say which, then go on
         * from the oldest one still held. The gap frame has no id, so a
         * client reconnecting keeps its position. */
        buf_printf(out, "event: gap\ndata: {\"from\":%" PRIu64 ",\"to\":%" PRIu64 "}\n\n", s->pos + 1, oldest_id(ev));
        s->pos = oldest_id(ev) - 1;
        frames++;
    }
    while (s->pos + 1 < ev->next_id && out->len - start < max) {
        const struct event_rec *r = ring_get(ev, ++s->pos);
        if (filter_match(&s->f, r)) {
            sse_frame(out, r);
            frames++;
        }
    }
    if (frames == 0)
        s->waiting = 1;
    pthread_mutex_unlock(&ev->lock);
    return frames;
}

void events_count_sent(events *ev, unsigned frames)
{
    atomic_fetch_add(&ev->sent_frames, frames);
}

void events_write_metrics(events *ev, buf *out)
{
    if (!ev)
        return;
    pthread_mutex_lock(&ev->lock);
    buf_puts(out, "# HELP citybrain_events_published_total Events published, by kind.\n"
                  "# TYPE citybrain_events_published_total counter\n");
    for (int k = 0; k < EVENT_KIND_COUNT; k++)
        buf_printf(out, "citybrain_events_published_total{kind=\"%s\"} %llu\n", kind_names[k], ev->published[k]);
    buf_printf(out,
               "# HELP citybrain_events_dropped_total Events lost for want of memory.\n"
               "# TYPE citybrain_events_dropped_total counter\ncitybrain_events_dropped_total %llu\n"
               "# HELP citybrain_events_evicted_total Events that left the ring to make room.\n"
               "# TYPE citybrain_events_evicted_total counter\ncitybrain_events_evicted_total %llu\n"
               "# HELP citybrain_events_buffered Events held for reconnecting clients, and their bytes.\n"
               "# TYPE citybrain_events_buffered gauge\ncitybrain_events_buffered %zu\n"
               "# TYPE citybrain_events_buffered_bytes gauge\ncitybrain_events_buffered_bytes %zu\n"
               "# HELP citybrain_events_last_id Id of the newest event.\n"
               "# TYPE citybrain_events_last_id gauge\ncitybrain_events_last_id %" PRIu64 "\n"
               "# HELP citybrain_stream_clients SSE clients connected to /api/v1/stream.\n"
               "# TYPE citybrain_stream_clients gauge\ncitybrain_stream_clients %d\n",
               ev->dropped_nomem, ev->evicted, ev->count, ev->bytes, ev->count ? ev->next_id - 1 : 0, ev->streams);
    pthread_mutex_unlock(&ev->lock);
    buf_printf(out,
               "# HELP citybrain_stream_events_sent_total SSE frames sent to stream clients.\n"
               "# TYPE citybrain_stream_events_sent_total counter\ncitybrain_stream_events_sent_total %llu\n",
               (unsigned long long)atomic_load(&ev->sent_frames));
    events__webhooks_metrics(ev, out);
}
