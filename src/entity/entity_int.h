/* entity_int — the entity module's insides; never included from outside src/entity/. */
#ifndef CB_ENTITY_INT_H
#define CB_ENTITY_INT_H

#include "entity/entity.h"

#include <pthread.h>

struct entities {
    db *db;                 /* the API's connection (HTTP thread) */
    state *st;
    dict *names;
    region_store *regions;
    int32_t heartbeat[DICT_MAX_IDS + 1]; /* by type id; 0 = the default */
    /* checkpoints (entity_persist.c); guarded by flush_lock while the flusher runs */
    pthread_mutex_t flush_lock;
    pthread_cond_t flush_cond;
    pthread_t flusher;
    int flusher_running;     /* set and cleared by the thread that starts and stops it */
    int stopping;
    db *fdb;                 /* the flusher's connection (borrowed) */
    struct seal *inflight;   /* sealed, not stored yet; owned */
    int flush_rc;            /* the flusher's last failure, until a seal reports it */
    cb_error flush_err;
    uint64_t checkpoint_lsn; /* the WAL position SQLite holds the state as of */
    uint64_t seals, stored_entities;
    double last_store_s;
};

#define ENTITY_DEFAULT_HEARTBEAT_S 600

/* entity.c */
json_t *entity__to_json(entities *e, const struct state_entity *se, int64_t now_ms);
int entity__locate(entities *e, double lon, double lat, struct state_entity *meta);

/* entity_persist.c */
int entity__load(entities *e, cb_error *err);

#endif
