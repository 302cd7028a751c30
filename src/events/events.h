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

/* Opens the ring (size from cfg) and the webhook sender; webhook
 * definitions live in db (borrowed, used by the webhook thread only through
 * its own connection opened from cfg->data_dir). */
int events_open(const struct cb_config *cfg, events **out, cb_error *err);
void events_close(events *ev); /* NULL-safe; stops the webhook thread */

/* Publishes one event and returns its id (monotonic, from 1).
 * kind: "alarm", "case", "supervision", "kpi"; type: the specific event,
 * e.g. "alarm.raised", "case.dispatched". data is a JSON object describing
 * it (stolen; the event's own id/kind/type/time are added). */
uint64_t events_publish(events *ev, const char *kind, const char *type, const struct event_scope *scope,
                        json_t *data);

#endif
