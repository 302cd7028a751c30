/* events_int — the events module's insides, shared by its files only. Never
 * include this from outside src/events/. */
#ifndef CB_EVENTS_INT_H
#define CB_EVENTS_INT_H

#include "events/events.h"

#include <pthread.h>
#include <stdatomic.h>

/* One event in the ring: one allocation holding the record and its text.
 * json is the event's JSON without its leading '{"id":N,' — the id is
 * written in front when it is sent, so publishing formats nothing under
 * the lock. Immutable once in the ring; refs counts the ring's own reference
 * and those of webhook deliveries (atomic). */
struct event_rec {
    uint64_t id;
    atomic_int refs;
    unsigned char kind;       /* enum event_kind */
    size_t bytes;             /* the whole allocation, for the ring's byte bound */
    const char *type, *district, *department; /* into the allocation; "" for none */
    const char *json;         /* '"kind":...,"data":{...}}' */
    size_t json_len;
};

void events__rec_unref(struct event_rec *r);

struct event_sub {
    struct event_sub *prev, *next;
    struct event_filter f;
    uint64_t pos;           /* the last id this subscriber has seen (or skipped) */
    int waiting;            /* its last read found nothing: wake on the next match */
    int stream;             /* counts against max_streams */
    void (*wake)(void *ctx);
    void *ctx;
};

struct webhooks; /* webhook.c */

struct events {
    const struct cb_config *cfg;
    pthread_mutex_t lock;          /* guards the ring and the subscribers */
    struct event_rec **slot;       /* cap slots; the oldest at head */
    size_t cap, head, count, bytes;
    uint64_t next_id;              /* id of the next event published */
    struct event_sub *subs;        /* doubly linked */
    int streams;                   /* subscribers with stream set */
    /* counters (under lock) */
    unsigned long long published[EVENT_KIND_COUNT], evicted, dropped_nomem;
    atomic_ullong sent_frames;
    db *db;                        /* the events' own connection (webhook store, id mark) */
    struct webhooks *wh;
};

/* webhook.c: the sender thread and the webhook store. */
int events__webhooks_start(events *ev, cb_error *err);
void events__webhooks_stop(events *ev);
void events__webhooks_metrics(events *ev, buf *out);

/* events.c: takes a reference to the event with id > *pos that passes f,
 * advancing *pos past what it skipped; NULL when there is none. Sets *lost
 * to the number of events that had already left the ring. */
void events__wake_all(events *ev); /* the streams' keepalive beat */
struct event_rec *events__next(events *ev, event_sub *s, uint64_t *lost);

#endif
