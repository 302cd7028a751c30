/* db — the embedded relational store: one SQLite database (WAL mode) in the
 * data directory, brought to the latest schema by numbered migrations at open.
 *
 * A db handle is used by one thread at a time (SQLite's connection rule); a
 * thread that needs the store concurrently opens its own handle. Modules keep
 * their prepared statements next to their code and reach SQLite via db_sqlite(). */
#ifndef CB_DB_H
#define CB_DB_H

#include "core/err.h"

#include <sqlite3.h>

typedef struct db db;

/* Opens (creating if needed) DATA_DIR/citybrain.db and applies pending
 * migrations in one transaction each. *out is owned by the caller: db_close. */
int db_open(const char *data_dir, db **out, cb_error *err);
void db_close(db *d); /* NULL-safe */

sqlite3 *db_sqlite(db *d);
int db_schema_version(db *d);        /* the migration number the file is at */
int db_schema_latest(void);          /* the newest migration this binary knows */

/* Runs SQL without results (DDL, pragmas); err gets SQLite's message. */
int db_exec(db *d, const char *sql, cb_error *err);

/* Maps a SQLite result code to a CB_E* code and fills err with the context. */
int db_error(db *d, int sqlite_rc, const char *what, cb_error *err);

#endif
