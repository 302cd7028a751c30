/* state — the live city in memory: every entity with its location, district,
 * grid cell and the latest value of each attribute (DESIGN.md §2).
 *
 * Entities live in a slot array indexed by their persistent number (`no`,
 * assigned by SQLite, never reused), so the WAL and queries address them by a
 * dense 32-bit id; an open-addressing hash (load <= 1/2) maps the string id
 * to the number, each slot holding the number and a 32-bit fingerprint of the
 * id's hash, so a lookup compares (and reads) an id only when the fingerprint
 * agrees: about one strcmp per lookup that finds its entity, none for most
 * that do not. Costs: find O(1) expected, set a value O(attributes of the
 * entity), scan O(slots). Memory: ~72 bytes per entity + 16-32 for its hash
 * slots + ~32 per attribute value + its id.
 *
 * Concurrency: one rwlock. The ingest writer and the entity API mutate under
 * state_wrlock; queries read under state_rdlock. Every function below says
 * which lock its caller must hold. Strings in entities are owned by the state.
 * A second rwlock guards the directory alone (the id hash, the slot array and
 * the ids): state_put and state_remove change it, under both locks. A parse
 * that only resolves ids holds the directory's read lock, so it runs while the
 * writer applies readings under the write lock (DESIGN.md §12). */
#ifndef CB_STATE_H
#define CB_STATE_H

#include "core/err.h"

#include <stddef.h>
#include <stdint.h>

#define STATE_NONE UINT32_MAX         /* no such entity */
#define STATE_REGION_NONE UINT32_MAX  /* not inside any district/grid cell */

enum state_kind { STATE_NUM = 1, STATE_STR = 2, STATE_BOOL = 3 };

/* What a checkpoint must store of an entity: its values and counters, and
 * its place when that changed (a move, a change through the API). */
#define STATE_DIRTY 1
#define STATE_DIRTY_PLACE 2

struct state_value {
    int64_t ts_ms;
    union {
        double num;
        char *str;     /* owned by the state */
        int boolean;
    } v;
    uint16_t attr;     /* dict id (DICT_ATTR) */
    uint8_t kind;      /* enum state_kind */
};

struct state_entity {
    char *id;                   /* NULL when the slot is free */
    struct state_value *values; /* nvalues used of capvalues */
    double lon, lat;            /* NAN when unknown */
    int64_t last_seen_ms;       /* time of the newest reading, 0 = never */
    int64_t moved_ms;           /* time of the location in lon/lat; an older move is ignored */
    uint64_t readings;          /* readings applied since creation */
    uint32_t district, grid;    /* region indexes or STATE_REGION_NONE */
    int32_t heartbeat_s;        /* 0: the type's default */
    uint16_t type, department;  /* dict ids */
    uint16_t nvalues, capvalues;
    uint32_t id_len;            /* strlen(id) */
    uint8_t dirty;              /* STATE_DIRTY bits: changed since the last checkpoint */
};

typedef struct state state;

int state_create(state **out, cb_error *err);
void state_destroy(state *s); /* NULL-safe; frees every entity */

void state_rdlock(state *s);
int state_tryrdlock(state *s); /* 0: the read lock is held; else it was not free */
void state_wrlock(state *s);
void state_unlock(state *s);
/* The directory's read lock: enough for state_find, and nothing else. */
void state_dir_rdlock(state *s);
void state_dir_unlock(state *s);

/* --- callers hold the write lock --- */

/* Inserts entity `no` or updates its metadata (id, type, department, place,
 * heartbeat) keeping its values. CB_ECONFLICT if id belongs to another no. */
int state_put(state *s, uint32_t no, const char *id, const struct state_entity *meta,
              cb_error *err);
void state_remove(state *s, uint32_t no);
/* Sets the latest value of attr if ts_ms is not older than the stored one
 * (last write wins on equal times); counts the reading either way. str is
 * copied (len bytes) for STATE_STR. Returns 1 if the value changed, 0 if it
 * was older, CB_ENOMEM. */
int state_set_value(state *s, uint32_t no, uint16_t attr, enum state_kind kind, int64_t ts_ms,
                    double num, const char *str, size_t len);
/* Moves the entity unless ts_ms is older than its current location (last
 * write wins, as for values); a move is a reading either way (counted,
 * last_seen advanced). */
void state_move(state *s, uint32_t no, int64_t ts_ms, double lon, double lat, uint32_t district,
                uint32_t grid);
void state_clear_dirty(state *s, uint32_t no);
void state_mark_dirty(state *s, uint32_t no, uint8_t bits);
/* Restores counters saved by a checkpoint (load time). */
void state_set_counters(state *s, uint32_t no, uint64_t readings, int64_t last_seen_ms);

/* --- callers hold either lock --- */
uint32_t state_find(const state *s, const char *id); /* or the directory's read lock */
/* state_find of the len bytes at id (need not end in NUL; one with a NUL
 * byte names no entity). */
uint32_t state_find_n(const state *s, const char *id, size_t len);
/* state_find_n in parts, for a caller resolving many ids in a row that can
 * overlap their cache misses (each lookup among 100,000 entities misses the
 * hash entry, the entity and its id): the id's hash once, then
 * state_prefetch at level 0 (the hash entry), 1 (the entity; after level
 * 0's line arrived) and 2 (its id) a few lookups ahead, then
 * state_find_hashed. Prefetching is only a hint: any order gives the same
 * answers. Same locks as state_find_n. */
uint64_t state_hash_n(const char *id, size_t len);
void state_prefetch(const state *s, uint64_t h, int level);
uint32_t state_find_hashed(const state *s, const char *id, size_t len, uint64_t h);
const struct state_entity *state_get(const state *s, uint32_t no); /* NULL if free */
const struct state_value *state_value_of(const struct state_entity *e, uint16_t attr);
uint32_t state_slots(const state *s);  /* iterate no in [0, state_slots) */
size_t state_count(const state *s);
size_t state_memory(const state *s);   /* bytes held, for metrics and benchmarks */

#endif
