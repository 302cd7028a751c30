/* rules — 预测预警: rules over readings raise alarms (DESIGN.md §1–2).
 *
 * A rule is a JSON definition kept in SQLite (table rule) and compiled into
 * memory: {id, name, kind, scope {type?, district? | grid?, entities?},
 * attr, severity (critical|major|minor|warning), category, dedup_s?,
 * enabled?, open_case? {category}, and the parameters of its kind}. Kinds
 * (one table in rule.c drives validation, evaluation and the docs):
 *   threshold     op (> >= < <= == !=), value, clear? (hysteresis bound), for_s?
 *   rate          change_pct (-30: falls 30 %), window_s
 *   nodata        seconds (no reading of attr, or of anything without attr)
 *   geofence      polygon (GeoJSON Polygon|MultiPolygon), on (enter|exit)
 *   region_count  op, value (the condition per entity), count (at least),
 *                 window_s, group (grid|district)
 *
 * Evaluation. Readings are evaluated as the ingest writer applies them
 * (rules_applied is an ingest_observer), never by polling the store. Rules
 * are indexed by (entity type, attr) — type "any" is its own key — and
 * rules that list their entities by (entity, attr), so a reading costs a few
 * hash probes plus the rules that can apply to it;
 * each (rule, entity) keeps a small state (raised, newest reading time, when
 * the condition began) in a per-rule open-addressing table. nodata rules and
 * the windows of region_count are checked by the rules thread every second
 * against the in-memory state (last_seen), not the store: O(entities) per
 * nodata rule per second, under the state's read lock (tried, not waited
 * for while the writer applies a batch, so alarm changes never queue behind
 * a tick). Measured: 10,000
 * threshold rules, ten of which apply to each reading, cost ~0.9 µs per
 * reading on the writer thread (cache misses on the per-rule states).
 *
 * Time. A reading older than the newest one a (rule, entity) has seen is
 * ignored by that rule: it never flips an alarm. Readings replayed from the
 * WAL at start-up are evaluated like live ones; the state of each (rule,
 * entity) is first seeded from its latest alarm in SQLite (raised, and the
 * reading time of its last transition), so a replayed reading already acted
 * on is older than that and changes nothing, and one that was committed but
 * whose alarm was lost in a crash raises it now. Windows (for_s, rate,
 * region_count) restart empty after a restart. Before each checkpoint the
 * writer waits until the queued alarm changes are stored, so no reading
 * leaves the WAL before the alarm it raised is in SQLite. Editing a rule keeps its active alarms (an
 * entity that leaves the new scope keeps its alarm until cleared by hand);
 * disabling or deleting it clears them.
 *
 * Alarms: raised → acknowledged → cleared (automatically when the condition
 * clears, or by a person), one active alarm per rule × entity. The writer
 * thread only queues alarm changes. The rules thread decides each (against
 * the active alarm in SQLite — a read, which no writer blocks — and the
 * changes it has not stored yet), numbers it and publishes its "alarm" event
 * at once; then it stores what it published in one transaction on its own
 * connection as soon as SQLite's write lock is free (a history flush or a
 * checkpoint can hold it for a second; the stream does not wait for that,
 * nor for SQLite's own checkpoints, which this connection never runs), and
 * then calls the case hook, so an alarm.raised event says "case": null and
 * the case's own events follow. An alarm on the stream can thus be missing
 * from alarm_get/alarm_list for milliseconds (up to a second while the lock
 * is held). Maintenance windows suppress raising for an entity, district or
 * grid cell (and optionally one rule) between from and to.
 *
 * Crashes. A kill -9 between publishing and storing loses the stored alarm,
 * not the reading: a checkpoint waits until every queued change is stored,
 * so the reading is still in the WAL and replay evaluates it again — a
 * threshold or geofence alarm is raised again (for_s, rate and region_count
 * windows start afresh, as after any restart), a lost clear is cleared
 * again. Alarm numbers are reserved in SQLite (sqlite_sequence) before they
 * are published and numbering continues above the reservation after a
 * crash, so a number once published is never given to another alarm (a
 * clean stop hands the unused reservation back: numbers stay dense). Stream
 * clients see a gap after any restart and reload the lists, which hold
 * exactly what SQLite holds; replay never stores an alarm twice.
 *
 * Threads: every function is thread-safe. The API functions run on the
 * caller's thread with the module's own SQLite connection. */
#ifndef CB_RULES_H
#define CB_RULES_H

#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "entity/entity.h"
#include "events/events.h"
#include "ingest/batch.h"
#include "state/state.h"

#include <jansson.h>
#include <stddef.h>

#define RULE_ID_MAX 65
#define ALARM_ID_MAX 24
#define RULES_CASE_ID_MAX 64

typedef struct rules rules;

/* Loads the rules, seeds their state from the alarms in SQLite and starts the
 * rules thread. ents and ev (NULL: publish nothing) are borrowed and must
 * outlive the module. Open it before ingest, so the WAL replay is evaluated,
 * and close it after ingest, so the writer's last readings are. */
int rules_open(const struct cb_config *cfg, entities *ents, events *ev, rules **out, cb_error *err);
/* Persists every queued alarm change, stops the thread, frees. NULL-safe. */
void rules_close(rules *r);

/* The ingest_observer callbacks (ctx is the rules): evaluate a reading;
 * before a checkpoint, wait until the alarm changes queued so far are stored. */
void rules_applied(void *ctx, const struct batch_item *it, const struct state_entity *e);
void rules_checkpoint(void *ctx);

/* Runs the periodic checks (nodata, region_count windows) as of now_ms and
 * waits until every alarm change queued so far is persisted — for tests;
 * the rules thread does the same every second. */
void rules_tick(rules *r, int64_t now_ms);
void rules_flush(rules *r);

/* A rule that says open_case makes its new alarms call this on the rules
 * thread: it opens a case of category for the alarm and writes its id into
 * case_id; 0 on success. The id is stored with the alarm. */
typedef int (*rules_case_fn)(void *ctx, const json_t *alarm, const char *category, char *case_id, size_t n);
void rules_set_case_hook(rules *r, rules_case_fn open_case, void *ctx);

/* --- rules CRUD (HTTP). *out is owned by the caller. Errors name the field. --- */
int rules_list(rules *r, json_t **out, cb_error *err);           /* {"rules": [...]} */
int rules_get(rules *r, const char *id, json_t **out, cb_error *err);
int rules_create(rules *r, json_t *def, json_t **out, cb_error *err);   /* CB_ECONFLICT for a taken id */
int rules_update(rules *r, const char *id, json_t *def, json_t **out, cb_error *err);
int rules_delete(rules *r, const char *id, cb_error *err);      /* clears its active alarms */

/* --- alarms --- */
struct alarm_filter {
    const char *state, *severity, *district, *type, *entity, *rule, *limit, *cursor;
};
/* {"alarms": [ALARM...], "next_cursor": "..."|null}, newest first. */
int alarm_list(rules *r, const struct alarm_filter *f, json_t **out, cb_error *err);
/* ALARM with "history": [{action, at, by, note, value}]. */
int alarm_get(rules *r, const char *id, json_t **out, cb_error *err);
/* Acknowledge (open → acknowledged) or clear (open|acknowledged → cleared)
 * as principal `by`; CB_ECONFLICT when the alarm is not in a state that
 * allows it. *out is the alarm after the change. */
int alarm_acknowledge(rules *r, const char *id, const char *by, const char *note, json_t **out, cb_error *err);
int alarm_clear(rules *r, const char *id, const char *by, const char *note, json_t **out, cb_error *err);
/* {"total", "by_severity", "by_type", "by_district"} over alarms in state
 * (default "active"). */
int alarm_stats(rules *r, const char *state, json_t **out, cb_error *err);

/* --- maintenance windows: {entity? | district? | grid?, rule?, from, to, reason} --- */
int rules_maintenance_list(rules *r, json_t **out, cb_error *err);
int rules_maintenance_create(rules *r, json_t *def, const char *by, json_t **out, cb_error *err);
int rules_maintenance_delete(rules *r, const char *id, cb_error *err);

/* Prometheus lines: rules, evaluations, alarms raised/cleared/suppressed. NULL-safe. */
void rules_write_metrics(rules *r, buf *out);

#endif
