/* apikey — key creation, storage and verification; see apikey.h. */
#include "auth/apikey.h"

#include "core/clock.h"

#include <assert.h>
#include <ctype.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY_PREFIX "cb_"
#define KEY_ID_BYTES 6                    /* 12 hex digits */
#define KEY_ID_LEN (KEY_ID_BYTES * 2)
#define KEY_SECRET_BYTES 32               /* 256 bits */
#define KEY_SECRET_LEN 43                 /* base64url without padding */
#define KEY_LEN (3 + KEY_ID_LEN + 1 + KEY_SECRET_LEN)
#define CACHE_SLOTS 256                   /* direct-mapped by id */

struct cache_slot {
    char id[KEY_ID_LEN + 1];
    unsigned char digest[crypto_generichash_BYTES];
};

struct apikey_store {
    db *d;
    sqlite3_stmt *by_id;
    struct cache_slot cache[CACHE_SLOTS];
};

static int prepare(apikey_store *s, cb_error *err)
{
    int rc = sqlite3_prepare_v3(db_sqlite(s->d),
                                "SELECT secret_hash, role, department, name, revoked_at "
                                "FROM api_key WHERE id = ?1",
                                -1, SQLITE_PREPARE_PERSISTENT, &s->by_id, NULL);
    return rc == SQLITE_OK ? 0 : db_error(s->d, rc, "preparing key lookup", err);
}

int apikey_store_open(db *d, apikey_store **out, cb_error *err)
{
    if (sodium_init() < 0)
        return cb_error_set(err, CB_EINTERNAL, NULL, "libsodium failed to initialise");
    apikey_store *s = calloc(1, sizeof *s);
    if (!s)
        return cb_error_set(err, CB_ENOMEM, NULL, NULL);
    s->d = d;
    int rc = prepare(s, err);
    if (rc != 0) {
        apikey_store_close(s);
        return rc;
    }
    *out = s;
    return 0;
}

void apikey_store_close(apikey_store *s)
{
    if (!s)
        return;
    sqlite3_finalize(s->by_id);
    sodium_memzero(s->cache, sizeof s->cache);
    free(s);
}

static int department_valid(const char *dep)
{
    size_t n = strlen(dep);
    if (n == 0 || n >= DEPARTMENT_CODE_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)dep[i]) && dep[i] != '_' && dep[i] != '-')
            return 0;
    return 1;
}

static int check_create_args(enum role role, const char *department, const char *name,
                             cb_error *err)
{
    if ((unsigned)role >= ROLE_COUNT)
        return cb_error_set(err, CB_EINVALID_FIELD, "role", "unknown role");
    if (role == ROLE_DEVICE)
        return cb_error_set(err, CB_EINVALID_FIELD, "role",
                            "device credentials are tokens issued with the device, not API keys");
    if (role == ROLE_DEPT && (!department || !*department))
        return cb_error_set(err, CB_EMISSING_FIELD, "department",
                            "a dept key needs the code of its department");
    if (department && *department && !department_valid(department))
        return cb_error_set(err, CB_EINVALID_FIELD, "department",
                            "department code must be 1..32 of A-Z a-z 0-9 _ -");
    if (name && strlen(name) >= PRINCIPAL_NAME_MAX)
        return cb_error_set(err, CB_EINVALID_FIELD, "name", "name must be under %d bytes",
                            PRINCIPAL_NAME_MAX);
    return 0;
}

static int insert_key(apikey_store *s, const char *id, const char *hash, enum role role,
                      const char *department, const char *name, cb_error *err)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db_sqlite(s->d),
                                "INSERT INTO api_key (id, secret_hash, role, department, name, "
                                "created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                                -1, &st, NULL);
    if (rc != SQLITE_OK)
        return db_error(s->d, rc, "preparing key insert", err);
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, hash, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, role_name(role), -1, SQLITE_STATIC);
    if (department && *department)
        sqlite3_bind_text(st, 4, department, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, name ? name : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, clock_now_ms());
    rc = sqlite3_step(st);
    int out = rc == SQLITE_DONE ? 0 : db_error(s->d, rc, "storing key", err);
    sqlite3_finalize(st);
    return out;
}

int apikey_create(apikey_store *s, enum role role, const char *department, const char *name,
                  char key_out[APIKEY_MAX], struct principal *created, cb_error *err)
{
    int rc = check_create_args(role, department, name, err);
    if (rc != 0)
        return rc;
    unsigned char id_bytes[KEY_ID_BYTES], secret[KEY_SECRET_BYTES];
    char id[KEY_ID_LEN + 1], secret_text[KEY_SECRET_LEN + 1], hash[crypto_pwhash_STRBYTES];
    randombytes_buf(id_bytes, sizeof id_bytes);
    randombytes_buf(secret, sizeof secret);
    sodium_bin2hex(id, sizeof id, id_bytes, sizeof id_bytes);
    sodium_bin2base64(secret_text, sizeof secret_text, secret, sizeof secret,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    if (crypto_pwhash_str(hash, secret_text, KEY_SECRET_LEN, crypto_pwhash_OPSLIMIT_INTERACTIVE,
                          crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0) {
        rc = cb_error_set(err, CB_ENOMEM, NULL, "not enough memory to hash the key");
        goto out;
    }
    rc = insert_key(s, id, hash, role, department, name, err);
    if (rc != 0)
        goto out;
    snprintf(key_out, APIKEY_MAX, KEY_PREFIX "%s_%s", id, secret_text);
    assert(strlen(key_out) == KEY_LEN);
    if (created) {
        memset(created, 0, sizeof *created);
        snprintf(created->id, sizeof created->id, "%s", id);
        created->role = role;
        snprintf(created->name, sizeof created->name, "%s", name ? name : "");
        snprintf(created->department, sizeof created->department, "%s",
                 department ? department : "");
    }
out:
    sodium_memzero(secret, sizeof secret);
    sodium_memzero(secret_text, sizeof secret_text);
    return rc;
}

static json_t *key_row_json(sqlite3_stmt *st)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string((const char *)sqlite3_column_text(st, 0)));
    json_object_set_new(o, "role", json_string((const char *)sqlite3_column_text(st, 1)));
    const char *dep = (const char *)sqlite3_column_text(st, 2);
    json_object_set_new(o, "department", dep ? json_string(dep) : json_null());
    json_object_set_new(o, "name", json_string((const char *)sqlite3_column_text(st, 3)));
    char t[CLOCK_RFC3339_MAX];
    json_object_set_new(o, "created_at",
                        json_string(clock_format_rfc3339(sqlite3_column_int64(st, 4), t)));
    json_object_set_new(o, "revoked_at",
                        sqlite3_column_type(st, 5) == SQLITE_NULL
                            ? json_null()
                            : json_string(clock_format_rfc3339(sqlite3_column_int64(st, 5), t)));
    return o;
}

int apikey_list(apikey_store *s, json_t **out, cb_error *err)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db_sqlite(s->d),
                                "SELECT id, role, department, name, created_at, revoked_at "
                                "FROM api_key ORDER BY created_at DESC, id",
                                -1, &st, NULL);
    if (rc != SQLITE_OK)
        return db_error(s->d, rc, "listing keys", err);
    json_t *arr = json_array();
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        json_array_append_new(arr, key_row_json(st));
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        json_decref(arr);
        return db_error(s->d, rc, "listing keys", err);
    }
    *out = arr;
    return 0;
}

int apikey_revoke(apikey_store *s, const char *id, cb_error *err)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db_sqlite(s->d),
                                "UPDATE api_key SET revoked_at = ?2 WHERE id = ?1 "
                                "AND revoked_at IS NULL",
                                -1, &st, NULL);
    if (rc != SQLITE_OK)
        return db_error(s->d, rc, "revoking key", err);
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, clock_now_ms());
    rc = sqlite3_step(st);
    int changed = sqlite3_changes(db_sqlite(s->d));
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return db_error(s->d, rc, "revoking key", err);
    if (changed == 1)
        return 0;
    /* Nothing changed: unknown id or revoked before — tell which. */
    rc = sqlite3_prepare_v2(db_sqlite(s->d), "SELECT 1 FROM api_key WHERE id = ?1", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return db_error(s->d, rc, "revoking key", err);
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    int exists = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    return exists ? cb_error_set(err, CB_ECONFLICT, "id", "key %s is already revoked", id)
                  : cb_error_set(err, CB_ENOT_FOUND, "id", "no key with id '%s'", id);
}

int apikey_count_active(apikey_store *s)
{
    sqlite3_stmt *st;
    int n = -1;
    if (sqlite3_prepare_v2(db_sqlite(s->d),
                           "SELECT count(*) FROM api_key WHERE revoked_at IS NULL", -1, &st,
                           NULL) != SQLITE_OK)
        return -1;
    if (sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return n;
}

/* Splits "cb_<id>_<secret>"; 0 if the shape is right. */
static int key_split(const char *key, char id[KEY_ID_LEN + 1], const char **secret)
{
    if (strlen(key) != KEY_LEN || strncmp(key, KEY_PREFIX, 3) != 0 || key[3 + KEY_ID_LEN] != '_')
        return -1;
    for (int i = 0; i < KEY_ID_LEN; i++) {
        char c = key[3 + i];
        if (!isdigit((unsigned char)c) && !(c >= 'a' && c <= 'f'))
            return -1;
    }
    memcpy(id, key + 3, KEY_ID_LEN);
    id[KEY_ID_LEN] = '\0';
    *secret = key + 3 + KEY_ID_LEN + 1;
    return 0;
}

static struct cache_slot *cache_slot_for(apikey_store *s, const char *id)
{
    return &s->cache[strtoul(id + KEY_ID_LEN - 4, NULL, 16) % CACHE_SLOTS];
}

static int secret_verify(apikey_store *s, const char *id, const char *secret, const char *hash)
{
    unsigned char digest[crypto_generichash_BYTES];
    crypto_generichash(digest, sizeof digest, (const unsigned char *)secret, KEY_SECRET_LEN, NULL, 0);
    struct cache_slot *slot = cache_slot_for(s, id);
    if (strcmp(slot->id, id) == 0 && sodium_memcmp(slot->digest, digest, sizeof digest) == 0)
        return 0;
    if (crypto_pwhash_str_verify(hash, secret, KEY_SECRET_LEN) != 0)
        return -1;
    memcpy(slot->id, id, sizeof slot->id);
    memcpy(slot->digest, digest, sizeof digest);
    return 0;
}

static int fill_principal(sqlite3_stmt *st, const char *id, struct principal *out, cb_error *err)
{
    memset(out, 0, sizeof *out);
    snprintf(out->id, sizeof out->id, "%s", id);
    if (role_parse((const char *)sqlite3_column_text(st, 1), &out->role) != 0)
        return cb_error_set(err, CB_ECORRUPT, NULL, "key %s has an unknown role", id);
    const char *dep = (const char *)sqlite3_column_text(st, 2);
    snprintf(out->department, sizeof out->department, "%s", dep ? dep : "");
    snprintf(out->name, sizeof out->name, "%s", (const char *)sqlite3_column_text(st, 3));
    return 0;
}

int apikey_authenticate(apikey_store *s, const char *key, struct principal *out, cb_error *err)
{
    char id[KEY_ID_LEN + 1];
    const char *secret;
    if (key_split(key, id, &secret) != 0)
        return cb_error_set(err, CB_EUNAUTHORIZED, "Authorization", "malformed API key");
    sqlite3_stmt *st = s->by_id;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(st);
        if (rc == SQLITE_DONE)
            return cb_error_set(err, CB_EUNAUTHORIZED, "Authorization", "unknown API key");
        return db_error(s->d, rc, "looking up key", err);
    }
    if (sqlite3_column_type(st, 4) != SQLITE_NULL)
        rc = cb_error_set(err, CB_EUNAUTHORIZED, "Authorization", "API key %s was revoked", id);
    else if (secret_verify(s, id, secret, (const char *)sqlite3_column_text(st, 0)) != 0)
        rc = cb_error_set(err, CB_EUNAUTHORIZED, "Authorization", "wrong API key");
    else
        rc = fill_principal(st, id, out, err);
    sqlite3_reset(st);
    return rc;
}
