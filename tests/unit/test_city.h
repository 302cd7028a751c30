/* test_city — the entity side of a city in a temp data dir, opened the way
 * app_open_city does: the store (db, and rdb for the region store), the
 * region store, the name dict, the state and the entity registry. Shared by
 * test_entity and test_rules: each embeds a struct test_city in its own
 * fixture and opens what it tests on top (ingest, rules). */
#ifndef CB_TEST_CITY_H
#define CB_TEST_CITY_H

#include "core/config.h"
#include "entity/entity.h"

#include <ftw.h>
#include <stdio.h>
#include <sys/stat.h>

/* Every pointer owned; NULL when not open. */
struct test_city {
    char dir[64]; /* the data dir; made and removed by the test */
    struct cb_config cfg;
    db *db, *rdb;
    region_store *rs;
    dict *names;
    state *st;
    entities *ents;
};

/* Config defaults with data_dir = c->dir. */
static inline void test_city_config(struct test_city *c)
{
    config_defaults(&c->cfg);
    snprintf(c->cfg.data_dir, sizeof c->cfg.data_dir, "%s", c->dir);
}

/* Opens db, rdb and the region store on c->dir: 0 or a CB_E* code with err
 * filled. Regions may be imported before test_city_open_entities. */
static inline int test_city_open_store(struct test_city *c, cb_error *err)
{
    int rc = db_open(c->dir, &c->db, err);
    if (rc == 0)
        rc = db_open(c->dir, &c->rdb, err);
    if (rc == 0)
        rc = region_store_open(c->rdb, &c->rs, err);
    return rc;
}

/* Opens the dict, the state and the entity registry on the open store. */
static inline int test_city_open_entities(struct test_city *c, cb_error *err)
{
    int rc = dict_open(c->dir, &c->names, err);
    if (rc == 0)
        rc = state_create(&c->st, err);
    if (rc == 0)
        rc = entities_open(c->db, c->st, c->names, c->rs, &c->ents, err);
    return rc;
}

/* Closes what is open, newest first; the dir stays (test_remove_tree). */
static inline void test_city_close(struct test_city *c)
{
    entities_close(c->ents);
    state_destroy(c->st);
    dict_close(c->names);
    region_store_close(c->rs);
    db_close(c->rdb);
    db_close(c->db);
    c->ents = NULL;
    c->st = NULL;
    c->names = NULL;
    c->rs = NULL;
    c->rdb = c->db = NULL;
}

static inline int test_city_rm_entry_(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

/* Removes a data dir and everything below it. */
static inline void test_remove_tree(const char *dir)
{
    nftw(dir, test_city_rm_entry_, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
