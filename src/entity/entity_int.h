/* entity_int — the entity module's insides; never included from outside src/entity/. */
#ifndef CB_ENTITY_INT_H
#define CB_ENTITY_INT_H

#include "entity/entity.h"

struct entities {
    db *db;                 /* the API's connection (HTTP thread) */
    state *st;
    dict *names;
    region_store *regions;
    int32_t heartbeat[DICT_MAX_IDS + 1]; /* by type id; 0 = the default */
    uint64_t checkpoint_lsn;
};

#define ENTITY_DEFAULT_HEARTBEAT_S 600

/* entity.c */
json_t *entity__to_json(entities *e, const struct state_entity *se, int64_t now_ms);
int entity__locate(entities *e, double lon, double lat, struct state_entity *meta);

/* entity_persist.c */
int entity__load(entities *e, cb_error *err);

#endif
