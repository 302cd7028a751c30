/* schema — the case centre's tables (migration 6). Every time is ms since the
 * epoch (UTC); a NULL time means the step has not happened (yet). Columns are
 * laid out for KPI queries: one row per case carries each step's time, its
 * deadline and whether it was on time, so 按时立案率 and friends are single
 * aggregate queries over `cases` (see README "Cases"). */
#include "cases/cases.h"

const char cases_schema_sql[] =
    "CREATE TABLE case_category ("
    "  code TEXT PRIMARY KEY,"              /* 2-digit class + 3-digit subclass, e.g. '01001' */
    "  name TEXT NOT NULL,"
    "  kind TEXT NOT NULL,"                 /* 'component' (部件) or 'matter' (事项) */
    "  class TEXT NOT NULL,"                /* '01'..'10'; fault matters: their component's class */
    "  class_name TEXT NOT NULL,"
    "  component TEXT,"                     /* a fault matter: the component's code */
    "  urgency TEXT NOT NULL,"              /* 'urgent' or 'normal' */
    "  limit_minutes INTEGER NOT NULL,"     /* 处置 time limit */
    "  limit_natural INTEGER NOT NULL,"     /* 1: natural minutes; 0: working minutes */
    "  enabled INTEGER NOT NULL DEFAULT 1"
    ") STRICT;"
    "CREATE TABLE department ("
    "  code TEXT PRIMARY KEY, name TEXT NOT NULL, parent TEXT, district TEXT, phone TEXT"
    ") STRICT;"
    "CREATE TABLE routing ("                /* (category or class prefix or '*') x (region or '*') */
    "  category TEXT NOT NULL, region TEXT NOT NULL, department TEXT NOT NULL,"
    "  PRIMARY KEY (category, region, department)"
    ") STRICT;"
    "CREATE TABLE calendar_day ("           /* overrides of the Monday-Friday week */
    "  day TEXT PRIMARY KEY,"               /* 'YYYY-MM-DD', Asia/Shanghai */
    "  kind TEXT NOT NULL,"                 /* 'holiday' or 'workday' (调休 make-up day) */
    "  name TEXT NOT NULL DEFAULT ''"
    ") STRICT;"
    "CREATE TABLE calendar_period ("        /* work periods of a working day, local minutes */
    "  start_min INTEGER NOT NULL, end_min INTEGER NOT NULL, PRIMARY KEY (start_min)"
    ") STRICT;"
    "CREATE TABLE case_seq (day TEXT PRIMARY KEY, n INTEGER NOT NULL) STRICT;"
    "CREATE TABLE cases ("
    "  id TEXT NOT NULL UNIQUE,"            /* 'C20261123-000042' (local date + daily number) */
    "  status TEXT NOT NULL,"               /* workflow.h names: reported, accepted, ... */
    "  category TEXT NOT NULL, channel TEXT NOT NULL,"
    "  priority TEXT NOT NULL,"             /* 'urgent' or 'normal' */
    "  description TEXT NOT NULL DEFAULT '', address TEXT NOT NULL DEFAULT '',"
    "  lon REAL, lat REAL, district TEXT, grid TEXT,"
    "  department TEXT,"                    /* current (last dispatched) department */
    "  reporter_name TEXT, reporter_phone TEXT,"
    "  reported_by TEXT NOT NULL,"          /* principal id, or 'system' */
    "  alarm TEXT, duplicate_of TEXT,"
    "  media TEXT NOT NULL DEFAULT '[]',"   /* JSON array of media URLs */
    "  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,"
    "  accepted_at INTEGER, filed_at INTEGER, dispatched_at INTEGER, started_at INTEGER,"
    "  handled_at INTEGER, checked_at INTEGER, closed_at INTEGER, evaluated_at INTEGER,"
    "  rejected_at INTEGER,"
    /* deadlines of the timed steps (latest cycle) and whether the step met it (NULL: not done) */
    "  file_deadline INTEGER, filed_on_time INTEGER,"         /* intake -> filed */
    "  dispatch_deadline INTEGER, dispatched_on_time INTEGER," /* filed/returned -> dispatched */
    "  handle_deadline INTEGER, handled_on_time INTEGER,"     /* dispatched/rework -> handled */
    "  check_deadline INTEGER, checked_on_time INTEGER,"      /* handled -> checked */
    "  closed_on_time INTEGER,"             /* closed, and every handling met its deadline */
    "  step TEXT,"                          /* the running timer: file|dispatch|handle|check|NULL */
    "  step_started INTEGER,"               /* when the running timer started */
    "  deadline INTEGER,"                   /* its deadline (= one of the *_deadline) */
    "  timer TEXT NOT NULL DEFAULT 'green',"/* green|yellow|red: level reached in this step */
    "  dispatch_count INTEGER NOT NULL DEFAULT 0,"
    "  return_count INTEGER NOT NULL DEFAULT 0,"  /* 回退: dispatched to the wrong department */
    "  rework_count INTEGER NOT NULL DEFAULT 0,"  /* 返工: failed checks and 不满意 reopenings */
    "  extension_minutes INTEGER NOT NULL DEFAULT 0," /* approved 延期, summed */
    "  extension_request INTEGER,"          /* pending request, minutes */
    "  parked_from TEXT,"                   /* the state a parked (挂账) case returns to */
    "  rating TEXT"                         /* 满意|基本满意|不满意 */
    ") STRICT;"
    "CREATE INDEX cases_by_status ON cases (status, created_at);"
    "CREATE INDEX cases_by_department ON cases (department, created_at);"
    "CREATE INDEX cases_by_district ON cases (district, created_at);"
    "CREATE INDEX cases_by_created ON cases (created_at);"
    "CREATE INDEX cases_by_category ON cases (category, created_at);"
    "CREATE INDEX cases_open_timers ON cases (deadline) WHERE step IS NOT NULL;"
    "CREATE TABLE case_history ("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT, case_id TEXT NOT NULL,"
    "  from_status TEXT,"                   /* NULL for the intake row */
    "  to_status TEXT NOT NULL, action TEXT NOT NULL,"
    "  by_id TEXT NOT NULL, by_role TEXT NOT NULL, at INTEGER NOT NULL,"
    "  department TEXT,"                    /* the case's department after the action */
    "  note TEXT NOT NULL DEFAULT '', attachments TEXT NOT NULL DEFAULT '[]'"
    ") STRICT;"
    "CREATE INDEX case_history_by_case ON case_history (case_id, seq);"
    "CREATE INDEX case_history_by_action ON case_history (action, at);"
    "CREATE TABLE supervision ("           /* 督办 records */
    "  id INTEGER PRIMARY KEY AUTOINCREMENT, case_id TEXT NOT NULL,"
    "  step TEXT NOT NULL, level TEXT NOT NULL,"  /* level: yellow|red|manual */
    "  deadline INTEGER NOT NULL, department TEXT, district TEXT,"
    "  escalated_to TEXT NOT NULL,"         /* the role now watching: operator (yellow), admin (red) */
    "  note TEXT NOT NULL DEFAULT '', created_at INTEGER NOT NULL,"
    "  UNIQUE (case_id, step, level, deadline)"
    ") STRICT;"
    "CREATE TABLE case_media ("             /* uploaded photos, content-addressed */
    "  name TEXT PRIMARY KEY, content_type TEXT NOT NULL, bytes INTEGER NOT NULL,"
    "  created_at INTEGER NOT NULL"
    ") STRICT;"
    "CREATE VIRTUAL TABLE case_fts USING fts5(description, address, content='cases',"
    "  content_rowid='rowid', tokenize='trigram');"
    "CREATE TRIGGER cases_fts_insert AFTER INSERT ON cases BEGIN"
    "  INSERT INTO case_fts (rowid, description, address) VALUES (new.rowid, new.description, new.address);"
    " END;"
    "CREATE TRIGGER cases_fts_update AFTER UPDATE OF description, address ON cases BEGIN"
    "  INSERT INTO case_fts (case_fts, rowid, description, address)"
    "    VALUES ('delete', old.rowid, old.description, old.address);"
    "  INSERT INTO case_fts (rowid, description, address) VALUES (new.rowid, new.description, new.address);"
    " END;";
