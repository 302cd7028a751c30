/* dict — an append-only array per kind (id -> name) and an open-addressing
 * hash (name -> id); see dict.h. */
#include "state/dict.h"

#include "store/db.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define HASH_SLOTS (1u << 17) /* > 2 * DICT_MAX_IDS: the probe always ends */

struct dict_table {
    char **names;      /* names[id], id 1..count; owned */
    uint32_t count, cap;
    uint16_t *slots;   /* hash slots holding ids, 0 = empty */
};

struct dict {
    pthread_mutex_t lock;
    db *db;
    struct dict_table t[DICT_KIND_COUNT];
};

static const char *const kind_names[DICT_KIND_COUNT] = {"type", "attr", "department"};

static uint32_t hash_name(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    while (*s)
        h = (h ^ (unsigned char)*s++) * 16777619u;
    return h;
}

int dict_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > DICT_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == ':' || c == '-'))
            return 0;
    }
    return 1;
}

/* The slot holding name, or the empty slot where it would go. */
static uint32_t probe(const struct dict_table *t, const char *name, uint16_t *found)
{
    uint32_t pos = hash_name(name) & (HASH_SLOTS - 1);
    for (;;) {
        uint16_t id = t->slots[pos];
        if (id == 0 || strcmp(t->names[id], name) == 0) {
            *found = id;
            return pos;
        }
        pos = (pos + 1) & (HASH_SLOTS - 1);
    }
}

/* Adds (id, name) to the in-memory table; the caller holds the lock. */
static int table_add(struct dict_table *t, uint16_t id, const char *name)
{
    if (id >= t->cap) {
        uint32_t cap = t->cap ? t->cap * 2 : 64;
        while (cap <= id)
            cap *= 2;
        char **names = realloc(t->names, cap * sizeof *names);
        if (!names)
            return CB_ENOMEM;
        memset(names + t->cap, 0, (cap - t->cap) * sizeof *names);
        t->names = names;
        t->cap = cap;
    }
    char *copy = strdup(name);
    if (!copy)
        return CB_ENOMEM;
    t->names[id] = copy;
    if (id > t->count)
        t->count = id;
    uint16_t found;
    uint32_t pos = probe(t, name, &found);
    t->slots[pos] = id;
    return 0;
}

static int load(dict *d, cb_error *err)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db_sqlite(d->db), "SELECT kind, id, name FROM dict", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return db_error(d->db, rc, "loading names", err);
    int out = 0;
    while (out == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        int kind = sqlite3_column_int(st, 0), id = sqlite3_column_int(st, 1);
        const char *name = (const char *)sqlite3_column_text(st, 2);
        if (kind < 0 || kind >= DICT_KIND_COUNT || id <= 0 || id > DICT_MAX_IDS || !name)
            out = cb_error_set(err, CB_ECORRUPT, NULL, "dict row (%d, %d) is invalid", kind, id);
        else
            out = table_add(&d->t[kind], (uint16_t)id, name);
    }
    sqlite3_finalize(st);
    if (out == 0 && rc != SQLITE_DONE)
        out = db_error(d->db, rc, "loading names", err);
    return out;
}

int dict_open(const char *data_dir, dict **out, cb_error *err)
{
    dict *d = calloc(1, sizeof *d);
    if (!d)
        return cb_error_set(err, CB_ENOMEM, NULL, NULL);
    pthread_mutex_init(&d->lock, NULL);
    int rc = 0;
    for (int k = 0; k < DICT_KIND_COUNT && rc == 0; k++)
        if (!(d->t[k].slots = calloc(HASH_SLOTS, sizeof(uint16_t))))
            rc = cb_error_set(err, CB_ENOMEM, NULL, NULL);
    if (rc == 0)
        rc = db_open(data_dir, &d->db, err);
    if (rc == 0)
        rc = load(d, err);
    if (rc != 0) {
        dict_close(d);
        return rc;
    }
    *out = d;
    return 0;
}

void dict_close(dict *d)
{
    if (!d)
        return;
    for (int k = 0; k < DICT_KIND_COUNT; k++) {
        for (uint32_t i = 0; i <= d->t[k].count && d->t[k].names; i++)
            free(d->t[k].names[i]);
        free(d->t[k].names);
        free(d->t[k].slots);
    }
    db_close(d->db);
    pthread_mutex_destroy(&d->lock);
    free(d);
}

static int store_new(dict *d, enum dict_kind kind, uint16_t id, const char *name, cb_error *err)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db_sqlite(d->db), "INSERT INTO dict (kind, id, name) VALUES (?1, ?2, ?3)",
                                -1, &st, NULL);
    if (rc != SQLITE_OK)
        return db_error(d->db, rc, "storing a name", err);
    sqlite3_bind_int(st, 1, (int)kind);
    sqlite3_bind_int(st, 2, id);
    sqlite3_bind_text(st, 3, name, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : db_error(d->db, rc, "storing a name", err);
}

static int dict_id_locked(dict *d, enum dict_kind kind, const char *name, int create,
                          uint16_t *id, const char *field, cb_error *err)
{
    struct dict_table *t = &d->t[kind];
    uint16_t found;
    probe(t, name, &found);
    *id = found;
    if (found)
        return 0;
    if (!dict_name_valid(name))
        return cb_error_set(err, CB_EINVALID_FIELD, field,
                            "%s name '%.80s' must be 1..64 characters of A-Z a-z 0-9 _ . : -",
                            kind_names[kind], name);
    if (!create)
        return cb_error_set(err, CB_ENOT_FOUND, field, "unknown %s '%s'", kind_names[kind], name);
    if (t->count >= DICT_MAX_IDS)
        return cb_error_set(err, CB_ECONFLICT, field, "too many %s names (at most %d)",
                            kind_names[kind], DICT_MAX_IDS);
    uint16_t next = (uint16_t)(t->count + 1);
    int rc = store_new(d, kind, next, name, err);
    if (rc == 0)
        rc = table_add(t, next, name);
    if (rc == 0)
        *id = next;
    return rc;
}

int dict_id(dict *d, enum dict_kind kind, const char *name, int create, uint16_t *id,
            const char *field, cb_error *err)
{
    pthread_mutex_lock(&d->lock);
    int rc = dict_id_locked(d, kind, name, create, id, field, err);
    pthread_mutex_unlock(&d->lock);
    return rc;
}

const char *dict_name(dict *d, enum dict_kind kind, uint16_t id)
{
    pthread_mutex_lock(&d->lock);
    const char *n = id && id <= d->t[kind].count ? d->t[kind].names[id] : NULL;
    pthread_mutex_unlock(&d->lock);
    return n;
}

int dict_count(dict *d, enum dict_kind kind)
{
    pthread_mutex_lock(&d->lock);
    int n = (int)d->t[kind].count;
    pthread_mutex_unlock(&d->lock);
    return n;
}
