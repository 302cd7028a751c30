/* events — the live event stream of the operations centre (DESIGN.md §6):
 * alarms, case transitions, supervision (督办) and KPI ticks are published
 * here by the modules that cause them, kept in a bounded ring of recent
 * events (so an SSE client reconnecting with Last-Event-ID gets what it
 * missed, or an explicit "gap"), served as Server-Sent Events at
 * GET /api/v1/stream, and POSTed to configured webhooks (HMAC-SHA256 signed,
 * retried with backoff on a thread of their own).
 *
 * Publishing never blocks on the network and never fails the caller's work:
 * it copies the event into the ring and wakes the waiters. Thread-safe. */
#ifndef CB_EVENTS_H
#define CB_EVENTS_H

#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "store/db.h"

#include <jansson.h>
#include <stdint.h>

typedef struct events events;

/* What a subscriber may filter on; strings may be NULL or "" (none). */
struct event_scope {
    const char *district;   /* district code, e.g. "410802" */
    const char *department; /* department code */
};

/* Opens the ring (events_buffer, events_buffer_bytes) and starts the webhook
 * sender thread; webhook definitions and the id mark live in SQLite, reached
 * through the module's own connection opened from cfg->data_dir. cfg is
 * borrowed and must outlive ev. */
int events_open(const struct cb_config *cfg, events **out, cb_error *err);
void events_close(events *ev); /* NULL-safe; stops the webhook thread; every subscriber gone */

/* Publishes one event and returns its id: monotonic, and larger than any id
 * of an earlier run (ids start at max(last id stored at the last clean stop,
 * epoch ms * 1000) + 1), so a Last-Event-ID from before a restart yields a
 * gap, never other events. Returns 0 only when out of memory (the event is
 * then dropped and counted). The event's JSON, sent on the stream and to
 * webhooks, is {"id", "kind", "type", "time", "district", "department",
 * "data": data}. O(1) but for waking idle subscribers; never does I/O.
 * kind: "alarm", "case", "supervision", "kpi"; type: the specific event,
 * e.g. "alarm.raised", "case.dispatched". data is a JSON object describing
 * it (stolen; it becomes the "data" member above). */
uint64_t events_publish(events *ev, const char *kind, const char *type, const struct event_scope *scope,
                        json_t *data);

/* ---- subscribing (the SSE stream, the webhook sender) ---- */

enum event_kind { EVENT_ALARM, EVENT_CASE, EVENT_SUPERVISION, EVENT_KPI, EVENT_KIND_COUNT };
#define EVENT_CODE_MAX 33

/* Which events a subscriber gets. */
struct event_filter {
    unsigned kinds;                   /* bit (1u << enum event_kind) per kind; 0: all */
    char district[EVENT_CODE_MAX];    /* "": any */
    char department[EVENT_CODE_MAX];  /* "": any; else only events of that department */
};

/* "alarm" → EVENT_ALARM; -1 if unknown. */
int events_kind_parse(const char *name, size_t len);
const char *events_kind_name(enum event_kind k);
/* Parses "alarm,case" into f->kinds; CB_EINVALID_FIELD naming the bad kind. */
int events_filter_kinds(struct event_filter *f, const char *list, cb_error *err);

typedef struct event_sub event_sub;

/* Subscribes after last_id (0: from now on). wake(ctx) is called — under the
 * events lock, so it must be quick and must not call back into events — when
 * an event arrives for a subscriber whose last read found nothing, and about
 * once a second otherwise when count_as_stream (for keepalives). CB_EUNAVAILABLE when max_streams
 * streams exist and count_as_stream is set. *out is freed by events_unsubscribe. */
int events_subscribe(events *ev, const struct event_filter *f, uint64_t last_id, int count_as_stream,
                     void (*wake)(void *ctx), void *ctx, event_sub **out, cb_error *err);
void events_unsubscribe(events *ev, event_sub *s); /* NULL-safe */

/* Appends Server-Sent Events frames ("id:", "event:", "data:", blank line)
 * for the subscriber's next matching events to out, until about max bytes;
 * first an "event: gap" frame {"from", "to"} when events after its position
 * have left the ring. Returns the number of frames appended; 0 means nothing
 * new, and wake will be called when there is. */
int events_sse_read(events *ev, event_sub *s, buf *out, size_t max);

/* Id of the newest event, 0 if none yet. */
uint64_t events_last_id(events *ev);

/* Prometheus text: published events by kind, ring size, streams, webhooks. */
void events_write_metrics(events *ev, buf *out);
/* Counts frames sent to stream clients (for the metrics). */
void events_count_sent(events *ev, unsigned frames);

/* ---- webhooks (definitions in SQLite, migration 5) ---- */

#define WEBHOOK_URL_MAX 1024

/* Creates a webhook: url (http:// or https://), secret ("" or NULL: 32
 * random bytes as hex), kinds (0: all). *out is the JSON of the webhook
 * including the secret (the only time it is shown); caller owns it. */
int events_webhook_create(events *ev, const char *url, const char *secret, unsigned kinds, json_t **out,
                          cb_error *err);
/* {"webhooks": [...]} without secrets, with delivered/failed/dropped counters. */
int events_webhook_list(events *ev, json_t **out, cb_error *err);
int events_webhook_delete(events *ev, const char *id, cb_error *err); /* CB_ENOT_FOUND */

/* The webhooks' table (migration 5). */
extern const char events_schema_sql[];

#endif
