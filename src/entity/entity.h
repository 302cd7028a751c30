/* entity — the things of the city (DESIGN.md §2): registry, device tokens,
 * queries. An entity lives in SQLite (table entity: the record of truth for
 * its id, type, place, department, properties and token hash) and in the
 * in-memory state (what queries and ingest read: place, regions, latest
 * values). Creating, changing and deleting write SQLite first, then the state.
 *
 * JSON in:  {"id": "urn:ngsi-ld:AirQualityObserved:jz-0001",
 *            "type": "AirQualityObserved", "location": [113.24, 35.21],
 *            "department": "HBJ", "heartbeat_s": 600, "properties": {...},
 *            "device": true}
 * JSON out: the same plus district, grid, online, last_seen, readings and
 *           values {attr: {value, ts}}; a device gets its token once.
 *
 * Threads: the entity API (HTTP thread) uses the entities' own connection;
 * checkpoints are sealed on the writer thread and stored by a flusher thread
 * on the connection it is given (see entity_checkpoint_seal). */
#ifndef CB_ENTITY_H
#define CB_ENTITY_H

#include "auth/role.h"
#include "core/err.h"
#include "geo/region_store.h"
#include "state/dict.h"
#include "state/state.h"
#include "store/db.h"

#include <jansson.h>

#define ENTITY_ID_MAX 128
#define ENTITY_BULK_MAX 10000
#define ENTITY_TOKEN_MAX 64

typedef struct entities entities;

/* Loads every entity, its latest values and counters into st. All pointers
 * are borrowed and must outlive the registry. */
int entities_open(db *d, state *st, dict *names, region_store *regions, entities **out,
                  cb_error *err);
void entities_close(entities *e); /* NULL-safe */

/* The WAL position SQLite holds the state as of (meta.checkpoint_lsn): the
 * loaded one, then the last stored checkpoint's. Thread-safe. */
uint64_t entities_checkpoint_lsn(entities *e);

/* Creates one entity from JSON; *out (caller owns) is the entity, with
 * "token" when it is a device. field prefixes error fields ("entities[3]"). */
int entity_create(entities *e, json_t *in, const char *field, json_t **out, cb_error *err);
/* Creates up to ENTITY_BULK_MAX; good ones are kept, bad ones reported:
 * {"created": n, "rejected": m, "errors": [...], "tokens": [{id, token}]}. */
int entity_create_bulk(entities *e, json_t *list, json_t **out, cb_error *err);
/* Changes location, department, heartbeat_s, properties (type and id are fixed). */
int entity_update(entities *e, const char *id, json_t *in, json_t **out, cb_error *err);
int entity_delete(entities *e, const char *id, cb_error *err);
/* The entity with properties and values; CB_ENOT_FOUND. */
int entity_get(entities *e, const char *id, json_t **out, cb_error *err);

/* Issues a new device token (the old one stops working) or revokes it. */
int entity_token_issue(entities *e, const char *id, char token[ENTITY_TOKEN_MAX], cb_error *err);
int entity_token_revoke(entities *e, const char *id, cb_error *err);
/* Checks "cbd_..." and fills a device principal. */
int entity_authenticate(entities *e, const char *token, struct principal *out, cb_error *err);

/* Heartbeat of a type (seconds; online when a reading came within it). */
int entity_type_heartbeat(entities *e, uint16_t type);
int entity_type_set(entities *e, const char *type, int heartbeat_s, cb_error *err);
json_t *entity_types_json(entities *e);
int entity_online(entities *e, const struct state_entity *se, int64_t now_ms);

/* Queries, for GET /api/v1/entities and /api/v1/entities/stats. The filter
 * text comes from the query string; errors name the parameter. */
struct entity_filter {
    const char *type, *district, *grid, *bbox, *near, *q, *online, *cursor, *limit;
};
int entity_list(entities *e, const struct entity_filter *f, json_t **out, cb_error *err);
int entity_stats(entities *e, const struct entity_filter *f, const char *by, const char *attr,
                 json_t **out, cb_error *err);

/* Checkpoints store what the WAL changed since the last one — values,
 * counters, places that moved — so the WAL can be trimmed, in two steps so
 * that the writer never waits for SQLite: entity_checkpoint_seal copies the
 * changed entities on the writer thread (memory work, under the state's read
 * lock) and the flusher thread stores the copy in one transaction on its own
 * connection, with meta.checkpoint_lsn. One seal is in flight at a time.
 * A copy whose entity was deleted meanwhile is dropped, not stored. */

/* Seals and stores as of lsn at once, on d (start-up, shutdown, tests); not
 * while the flusher runs. A failure leaves the changes marked. */
int entity_checkpoint(entities *e, db *d, uint64_t lsn, cb_error *err);
/* Starts the flusher on d (borrowed until entity_flusher_stop). */
int entity_flusher_start(entities *e, db *d, cb_error *err);
/* Writer thread: seals as of lsn and wakes the flusher. Seals nothing while
 * the previous seal is not stored yet (the WAL keeps those changes), and
 * returns the flusher's last failure once (it retries every second). */
int entity_checkpoint_seal(entities *e, uint64_t lsn, cb_error *err);
/* Lets the flusher store the seal in flight (one try) and joins it; a seal
 * it could not store is marked again, for entity_checkpoint. NULL-safe. */
void entity_flusher_stop(entities *e);
struct entity_flusher_stats {
    uint64_t seals, stored_entities;
    double last_store_s; /* the last store's transaction, seconds */
    int inflight;
};
void entity_flusher_stats(entities *e, struct entity_flusher_stats *out);

/* For ingest: the entity number of id (STATE_NONE) and the state (borrowed). */
state *entities_state(entities *e);
dict *entities_dict(entities *e);
region_store *entities_regions(entities *e);

#endif
