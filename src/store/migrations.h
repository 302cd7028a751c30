/* migrations — the numbered schema changes of citybrain.db, oldest first.
 * Append only: a shipped migration is never edited, a new one is added. */
#ifndef CB_MIGRATIONS_H
#define CB_MIGRATIONS_H

struct migration {
    int version;      /* 1, 2, 3, ... consecutive */
    const char *name; /* what it does, for the log */
    const char *sql;
};

extern const struct migration migrations[];
extern const int migration_count;

#endif
