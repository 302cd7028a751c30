/* Unit tests for db (migrations) and apikey (create, verify, revoke). */
#include "auth/apikey.h"
#include "core/log.h"
#include "store/db.h"
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static char dir[64];

static db *open_fresh(void)
{
    log_set_level(LOG_WARN);
    snprintf(dir, sizeof dir, "/tmp/cb_test_store_XXXXXX");
    if (!mkdtemp(dir))
        return NULL;
    db *d = NULL;
    cb_error e;
    if (db_open(dir, &d, &e) != 0) {
        fprintf(stderr, "db_open: %s\n", e.message);
        return NULL;
    }
    return d;
}

static void remove_dir(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK_INT(system(cmd), 0);
}

TEST(migrations_bring_a_new_file_to_the_latest_schema)
{
    db *d = open_fresh();
    CHECK(d != NULL);
    CHECK(db_schema_latest() >= 1);
    CHECK_INT(db_schema_version(d), db_schema_latest());
    db_close(d);
    cb_error e;
    CHECK_INT(db_open(dir, &d, &e), 0); /* reopening applies nothing twice */
    CHECK_INT(db_schema_version(d), db_schema_latest());
    CHECK_INT(db_exec(d, "PRAGMA user_version = 999", &e), 0);
    db_close(d);
    CHECK_INT(db_open(dir, &d, &e), CB_ECONFLICT);
    CHECK(strstr(e.message, "newer than this binary") != NULL);
    remove_dir();
}

TEST(db_errors_carry_sqlite_messages)
{
    db *d = open_fresh();
    cb_error e;
    CHECK_INT(db_exec(d, "SELECT * FROM no_such_table", &e), CB_EIO);
    CHECK(strstr(e.message, "no such table") != NULL);
    CHECK_INT(db_open("/proc/cb_cannot_create", &(db *){NULL}, &e), CB_EIO);
    db_close(d);
    remove_dir();
}

TEST(key_create_authenticate_revoke)
{
    db *d = open_fresh();
    apikey_store *s;
    cb_error e;
    CHECK_INT(apikey_store_open(d, &s, &e), 0);
    char key[APIKEY_MAX];
    struct principal created, p;
    CHECK_INT(apikey_create(s, ROLE_DEPT, "CGJ", "城管局 desk", key, &created, &e), 0);
    CHECK(strncmp(key, "cb_", 3) == 0);
    CHECK_INT(strlen(key), 59);
    CHECK_INT(apikey_authenticate(s, key, &p, &e), 0);
    CHECK_STR(p.id, created.id);
    CHECK_INT(p.role, ROLE_DEPT);
    CHECK_STR(p.department, "CGJ");
    CHECK_STR(p.name, "城管局 desk");
    CHECK_INT(apikey_authenticate(s, key, &p, &e), 0); /* cached path */
    CHECK_INT(apikey_count_active(s), 1);

    char wrong[APIKEY_MAX];
    memcpy(wrong, key, sizeof wrong);
    wrong[40] = wrong[40] == 'A' ? 'B' : 'A';
    CHECK_INT(apikey_authenticate(s, wrong, &p, &e), CB_EUNAUTHORIZED);
    CHECK_STR(e.message, "wrong API key");
    CHECK_INT(apikey_authenticate(s, key, &p, &e), 0); /* a wrong try does not evict */

    CHECK_INT(apikey_revoke(s, created.id, &e), 0);
    CHECK_INT(apikey_authenticate(s, key, &p, &e), CB_EUNAUTHORIZED);
    CHECK(strstr(e.message, "revoked") != NULL);
    CHECK_INT(apikey_revoke(s, created.id, &e), CB_ECONFLICT);
    CHECK_INT(apikey_revoke(s, "000000000000", &e), CB_ENOT_FOUND);
    CHECK_INT(apikey_count_active(s), 0);
    apikey_store_close(s);
    db_close(d);
    remove_dir();
}

TEST(key_input_is_validated)
{
    db *d = open_fresh();
    apikey_store *s;
    cb_error e;
    CHECK_INT(apikey_store_open(d, &s, &e), 0);
    char key[APIKEY_MAX];
    struct principal p;
    CHECK_INT(apikey_create(s, ROLE_DEPT, NULL, "x", key, NULL, &e), CB_EMISSING_FIELD);
    CHECK_STR(e.field, "department");
    CHECK_INT(apikey_create(s, ROLE_OPERATOR, "bad code!", "x", key, NULL, &e), CB_EINVALID_FIELD);
    CHECK_INT(apikey_create(s, ROLE_DEVICE, NULL, "x", key, NULL, &e), CB_EINVALID_FIELD);
    CHECK_INT(apikey_authenticate(s, "", &p, &e), CB_EUNAUTHORIZED);
    CHECK_INT(apikey_authenticate(s, "cb_zzzzzzzzzzzz_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", &p, &e),
              CB_EUNAUTHORIZED);
    CHECK_STR(e.message, "malformed API key");
    CHECK_INT(apikey_authenticate(s, "cb_0123456789ab_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", &p, &e),
              CB_EUNAUTHORIZED);
    CHECK_STR(e.message, "unknown API key");
    CHECK_INT(apikey_count_active(s), 0);
    apikey_store_close(s);
    db_close(d);
    remove_dir();
}

TEST(key_list_never_shows_secrets)
{
    db *d = open_fresh();
    apikey_store *s;
    cb_error e;
    CHECK_INT(apikey_store_open(d, &s, &e), 0);
    char key[APIKEY_MAX];
    CHECK_INT(apikey_create(s, ROLE_VIEWER, NULL, "screen", key, NULL, &e), 0);
    json_t *list;
    CHECK_INT(apikey_list(s, &list, &e), 0);
    CHECK_INT(json_array_size(list), 1);
    char *text = json_dumps(list, 0);
    CHECK(strstr(text, key + 16) == NULL);
    CHECK(strstr(text, "argon2") == NULL);
    CHECK(strstr(text, "\"viewer\"") != NULL);
    free(text);
    json_decref(list);
    apikey_store_close(s);
    db_close(d);
    remove_dir();
}

TEST_MAIN(migrations_bring_a_new_file_to_the_latest_schema, db_errors_carry_sqlite_messages,
          key_create_authenticate_revoke, key_input_is_validated, key_list_never_shows_secrets)
