/* ingest — the sensing path, "three doors, one path" (DESIGN.md §1, §6):
 * JSON batches, InfluxDB line protocol and MQTT telemetry are parsed and
 * validated into a batch on the door's thread, handed to the writer (WAL,
 * group commit), applied to the state, then acknowledged.
 *
 * Validation is per reading: an unknown entity, a value of the wrong type, a
 * time too far in the future or past, a device writing another's entity —
 * each bad reading is reported with its index and reason in an
 * ingest_report and the good readings of the batch are kept.
 *
 * A reading is one (entity, attribute, time, value); a JSON item with three
 * values is three readings. "location": [lon, lat] moves the entity (its
 * district and grid cell follow) and counts as one reading.
 *
 * Threads: the parse functions may run on any thread (they resolve ids under
 * the state's directory lock, so they run while the writer applies);
 * ingest_submit is thread-safe. */
#ifndef CB_INGEST_H
#define CB_INGEST_H

#include "auth/role.h"
#include "core/buf.h"
#include "core/config.h"
#include "entity/entity.h"
#include "ingest/batch.h"
#include "ingest/writer.h"
#include "series/series.h"

#include <jansson.h>

#define INGEST_REPORT_MAX_ERRORS 100 /* listed; the rest are counted */

typedef struct ingest ingest;

/* Opens DATA_DIR/wal, replays what the last checkpoint does not hold into
 * the state and what the series head lost into history, and starts the
 * writer thread. Every numeric reading applied also goes to history; each
 * checkpoint flushes its closed chunks. ents and history are borrowed. */
int ingest_open(const struct cb_config *cfg, entities *ents, series *history, ingest **out, cb_error *err);

/* Something that watches readings as they are applied to the state (the
 * rules engine). applied runs on the writer thread, or on the opening thread
 * for readings replayed from the WAL at start-up, with the
 * state's write lock held and e the entity after the reading; it must be
 * quick and must not take the state's lock. */
struct ingest_observer {
    void (*applied)(void *ctx, const struct batch_item *it, const struct state_entity *e);
    /* Optional; called on the writer thread before each checkpoint, so what
     * the observer made of the readings is stored before the WAL drops them. */
    void (*checkpoint)(void *ctx);
    void *ctx;
};
/* ingest_open with an observer (copied; its ctx must outlive the ingest),
 * which sees the replay and every reading applied after it. */
int ingest_open_observed(const struct cb_config *cfg, entities *ents, series *history,
                         const struct ingest_observer *obs, ingest **out, cb_error *err);
/* Stops the writer after it has committed and applied everything queued,
 * checkpoints, closes the WAL. NULL-safe. */
void ingest_close(ingest *in);

/* What a parse accepted and rejected. errors is owned by the report. */
struct ingest_report {
    size_t accepted, rejected;
    json_t *errors; /* [{index, field, code, message}], at most INGEST_REPORT_MAX_ERRORS */
};
void ingest_report_init(struct ingest_report *r);
void ingest_report_free(struct ingest_report *r);
/* {"accepted", "rejected", "errors"}; adds an "error" member when nothing was
 * accepted. Sets *status to 200, or 400 when nothing was accepted. */
json_t *ingest_report_json(const struct ingest_report *r, int *status);

/* POST /api/v1/ingest body: {"readings": [{"entity": ID, "ts": RFC3339 or
 * epoch ms (optional: now), "values": {attr: number|string|bool},
 * "location": [lon, lat] (optional)}, ...]}. Returns an error only for the
 * body as a whole (not JSON, no readings array, too many readings); p is the
 * caller (a device may write only its own entity). */
int ingest_parse_json(ingest *in, const char *body, size_t len, const struct principal *p, batch *out,
                      struct ingest_report *rep, cb_error *err);

/* Where the readings of a long body go while its parse goes on, so the writer
 * applies the first part of a body while the rest is parsed: take gets each
 * part of INGEST_PART_READINGS or more readings (first: none went before it),
 * submits it and returns 0 (b is left empty), or sets err and returns the
 * error that stops the parse. */
#define INGEST_PART_READINGS 2048
struct ingest_parts {
    int (*take)(void *arg, batch *b, int first, cb_error *err);
    void *arg;
};

/* POST /api/v1/write body (InfluxDB line protocol): the tag `id` names the
 * entity; each field is an attribute; the measurement is informational (by
 * convention the entity type); the timestamp is in `precision`
 * (ns, us, ms, s; default ns). Errors are indexed by line number. With parts
 * (NULL: none), readings go to parts->take as they are parsed and out gets
 * the last of them — unless the body might hold more than max_batch_readings
 * (lp_readings_at_most), which is then checked after the parse, with every
 * reading in out, so that a body refused as too large was never written. */
int ingest_parse_lp(ingest *in, const char *body, size_t len, const char *precision,
                    const struct principal *p, const struct ingest_parts *parts, batch *out,
                    struct ingest_report *rep, cb_error *err);

/* MQTT telemetry of one entity: a JSON object attr -> value with an optional
 * "ts" (RFC 3339 or epoch ms) and "location" [lon, lat]. */
int ingest_parse_telemetry(ingest *in, const char *entity_id, const char *payload, size_t len,
                           batch *out, struct ingest_report *rep, cb_error *err);

/* Hands a non-empty batch to the writer; see writer_submit (CB_EUNAVAILABLE
 * when the queue is full: answer 503 with Retry-After, or wait). */
int ingest_submit(ingest *in, batch *b, writer_done_fn done, void *arg);
/* ingest_submit that waits for room: writer_submit_wait. */
int ingest_submit_wait(ingest *in, batch *b, writer_done_fn done, void *arg);

/* Prometheus lines: readings, batches, queue, WAL, checkpoints. */
void ingest_write_metrics(ingest *in, buf *out);

#endif
