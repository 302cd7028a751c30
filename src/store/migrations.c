/* migrations — see migrations.h. */
#include "store/migrations.h"

#include "cases/cases.h"
#include "events/events.h"
#include "series/series.h"

const struct migration migrations[] = {
    {1, "principals: API keys stored as Argon2id hashes",
     "CREATE TABLE api_key ("
     "  id TEXT PRIMARY KEY,"            /* public part of the key, e.g. 'k3f9a0c21d7e4' */
     "  secret_hash TEXT NOT NULL,"      /* crypto_pwhash_str (Argon2id) of the secret */
     "  role TEXT NOT NULL,"
     "  department TEXT,"
     "  name TEXT NOT NULL,"
     "  created_at INTEGER NOT NULL,"    /* ms since epoch */
     "  revoked_at INTEGER"
     ") STRICT;"},
    {2, "sensing: names, regions, entities, latest values, checkpoint",
     "CREATE TABLE dict ("                 /* small ids for types, attributes, departments */
     "  kind INTEGER NOT NULL, id INTEGER NOT NULL, name TEXT NOT NULL,"
     "  PRIMARY KEY (kind, id), UNIQUE (kind, name)"
     ") STRICT;"
     "CREATE TABLE region ("
     "  code TEXT PRIMARY KEY, name TEXT NOT NULL, level TEXT NOT NULL,"
     "  parent TEXT, wkb BLOB NOT NULL, imported_at INTEGER NOT NULL"
     ") STRICT;"
     "CREATE TABLE entity_type ("           /* per-type settings; absent = defaults */
     "  name TEXT PRIMARY KEY, heartbeat_s INTEGER NOT NULL"
     ") STRICT;"
     "CREATE TABLE entity ("
     "  no INTEGER PRIMARY KEY AUTOINCREMENT," /* dense, never reused: the WAL's entity id */
     "  id TEXT NOT NULL UNIQUE, type TEXT NOT NULL,"
     "  lon REAL, lat REAL, district TEXT, grid TEXT,"
     "  department TEXT, heartbeat_s INTEGER NOT NULL DEFAULT 0,"
     "  properties TEXT NOT NULL DEFAULT '{}',"
     "  token_hash BLOB,"                   /* BLAKE2b of the device token; NULL = none */
     "  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL"
     ") STRICT;"
     "CREATE INDEX entity_by_type ON entity (type);"
     "CREATE TABLE latest ("                /* the state's values as of meta.checkpoint_lsn */
     "  no INTEGER NOT NULL, attr INTEGER NOT NULL, kind INTEGER NOT NULL,"
     "  ts INTEGER NOT NULL, num REAL, str TEXT, PRIMARY KEY (no, attr)"
     ") STRICT, WITHOUT ROWID;"
     "CREATE TABLE entity_stat ("           /* counters and last position as of the checkpoint */
     "  no INTEGER PRIMARY KEY, readings INTEGER NOT NULL, last_seen INTEGER NOT NULL"
     ") STRICT;"
     "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;"},
    {3, "history: series ids, compressed chunks, hourly rollups", series_schema_sql},
    {4, "rules and alarms: rules, alarms with their history, maintenance windows",
     "CREATE TABLE rule ("                   /* the rule's definition as JSON (rules.h) */
     "  id TEXT PRIMARY KEY, def TEXT NOT NULL,"
     "  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL"
     ") STRICT;"
     "CREATE TABLE alarm ("                  /* one rule firing for one entity (or region) */
     "  id INTEGER PRIMARY KEY AUTOINCREMENT," /* shown as A000123 */
     "  rule TEXT NOT NULL, rule_name TEXT NOT NULL, kind TEXT NOT NULL,"
     "  entity TEXT NOT NULL, entity_type TEXT NOT NULL, attr TEXT, value REAL,"
     "  severity TEXT NOT NULL, category TEXT NOT NULL, state TEXT NOT NULL," /* open|acknowledged|cleared */
     "  district TEXT, grid TEXT, department TEXT, lon REAL, lat REAL, message TEXT NOT NULL,"
     "  raised_at INTEGER NOT NULL, acknowledged_at INTEGER, acknowledged_by TEXT,"
     "  cleared_at INTEGER, cleared_by TEXT, case_id TEXT, data TEXT"
     ") STRICT;"
     "CREATE INDEX alarm_by_rule_entity ON alarm (rule, entity, id);"
     "CREATE INDEX alarm_by_state ON alarm (state, id);"
     "CREATE TABLE alarm_event ("            /* an alarm's history: who, when, what, why */
     "  seq INTEGER PRIMARY KEY AUTOINCREMENT, alarm INTEGER NOT NULL REFERENCES alarm (id),"
     "  action TEXT NOT NULL, at INTEGER NOT NULL, actor TEXT NOT NULL, note TEXT, value REAL"
     ") STRICT;"
     "CREATE INDEX alarm_event_by_alarm ON alarm_event (alarm, seq);"
     "CREATE TABLE maintenance ("            /* windows that suppress raising */
     "  id TEXT PRIMARY KEY, entity TEXT, district TEXT, grid TEXT, rule TEXT,"
     "  from_ms INTEGER NOT NULL, to_ms INTEGER NOT NULL, reason TEXT NOT NULL,"
     "  created_by TEXT, created_at INTEGER NOT NULL"
     ") STRICT;"},
    {5, "events: webhooks", events_schema_sql},
    {6, "cases: categories, departments, routing, calendar, cases, history, supervision, FTS", cases_schema_sql},
    {7, "history format 2: hourly rollups inside the chunk rows, open chunks snapshotted", series_schema_v2_sql},
    {8, "cases: the Open311 follow token of a citizen's report (BLAKE2b hash only)",
     "ALTER TABLE cases ADD COLUMN follow_hash BLOB;"},
};

const int migration_count = (int)(sizeof migrations / sizeof migrations[0]);
