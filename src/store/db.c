/* db — SQLite open, pragmas and migrations; see db.h. */
#include "store/db.h"

#include "core/log.h"
#include "store/migrations.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>

struct db {
    sqlite3 *conn;
};

int db_error(db *d, int sqlite_rc, const char *what, cb_error *err)
{
    int code = CB_EIO;
    switch (sqlite_rc & 0xff) {
    case SQLITE_FULL: code = CB_ESTORAGE_FULL; break;
    case SQLITE_NOMEM: code = CB_ENOMEM; break;
    case SQLITE_BUSY:
    case SQLITE_LOCKED: code = CB_EUNAVAILABLE; break;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB: code = CB_ECORRUPT; break;
    case SQLITE_CONSTRAINT: code = CB_ECONFLICT; break;
    }
    return cb_error_set(err, code, NULL, "%s: %s", what,
                        d && d->conn ? sqlite3_errmsg(d->conn) : sqlite3_errstr(sqlite_rc));
}

int db_exec(db *d, const char *sql, cb_error *err)
{
    int rc = sqlite3_exec(d->conn, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : db_error(d, rc, "sql", err);
}

static int user_version(db *d)
{
    sqlite3_stmt *st;
    int v = -1;
    if (sqlite3_prepare_v2(d->conn, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
        return -1;
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return v;
}

static int migrate_one(db *d, const struct migration *m, cb_error *err)
{
    char bump[64];
    snprintf(bump, sizeof bump, "PRAGMA user_version = %d", m->version);
    int rc = db_exec(d, "BEGIN IMMEDIATE", err);
    if (rc == 0)
        rc = db_exec(d, m->sql, err);
    if (rc == 0)
        rc = db_exec(d, bump, err);
    if (rc == 0)
        rc = db_exec(d, "COMMIT", err);
    if (rc != 0) {
        sqlite3_exec(d->conn, "ROLLBACK", NULL, NULL, NULL);
        return cb_error_set(err, rc, NULL, "migration %d (%s) failed: %s", m->version, m->name,
                            err ? err->message : "");
    }
    log_event(LOG_INFO, "migration", "version=%d name=\"%s\"", m->version, m->name);
    return 0;
}

static int migrate(db *d, cb_error *err)
{
    int have = user_version(d);
    if (have < 0)
        return db_error(d, sqlite3_errcode(d->conn), "reading schema version", err);
    if (have > db_schema_latest())
        return cb_error_set(err, CB_ECONFLICT, NULL,
                            "database schema %d is newer than this binary (%d): upgrade citybrain",
                            have, db_schema_latest());
    for (int i = 0; i < migration_count; i++) {
        assert(i == 0 || migrations[i].version > migrations[i - 1].version);
        if (migrations[i].version <= have)
            continue;
        int rc = migrate_one(d, &migrations[i], err);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int ensure_dir(const char *dir, cb_error *err)
{
    if (mkdir(dir, 0750) == 0 || errno == EEXIST)
        return 0;
    return cb_error_set(err, CB_EIO, "data_dir", "cannot create %s: %s", dir, strerror(errno));
}

/* Before SQLite initialises (the first open): no memory statistics, which
 * cost a global mutex on every allocation of every connection. */
static void configure_sqlite(void)
{
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

int db_open(const char *data_dir, db **out, cb_error *err)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, configure_sqlite);
    char path[1200];
    int rc = ensure_dir(data_dir, err);
    if (rc != 0)
        return rc;
    snprintf(path, sizeof path, "%s/citybrain.db", data_dir);
    db *d = calloc(1, sizeof *d);
    if (!d)
        return cb_error_set(err, CB_ENOMEM, NULL, NULL);
    int src = sqlite3_open_v2(path, &d->conn, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    if (src != SQLITE_OK) {
        rc = db_error(d, src, path, err);
        goto fail;
    }
    sqlite3_busy_timeout(d->conn, 5000);
    /* WAL lets readers run beside the writer; NORMAL sync is safe in WAL mode
     * (a crash loses no committed transaction, power loss at most the last ones). */
    rc = db_exec(d, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; "
                    "PRAGMA mmap_size=2147418112;", err);
    if (rc == 0)
        rc = migrate(d, err);
    if (rc != 0)
        goto fail;
    *out = d;
    return 0;
fail:
    db_close(d);
    return rc;
}

void db_close(db *d)
{
    if (!d)
        return;
    sqlite3_close_v2(d->conn);
    free(d);
}

sqlite3 *db_sqlite(db *d)
{
    return d->conn;
}

int db_schema_version(db *d)
{
    return user_version(d);
}

int db_schema_latest(void)
{
    return migrations[migration_count - 1].version;
}
