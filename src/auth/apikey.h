/* apikey — API keys: created once and shown once, stored only as Argon2id
 * hashes (libsodium crypto_pwhash_str), listed, revoked, and checked on every
 * request.
 *
 * A key reads `cb_<id>_<secret>`: the id (12 hex digits) finds the row with one
 * indexed lookup, the 256-bit secret is verified against the hash. Argon2id
 * costs ~50 ms by design, so a verified key is remembered in a small in-memory
 * cache (BLAKE2b digest of the secret, never the secret); the row is still read
 * on every request, so a revocation made by another process (the CLI) takes
 * effect at once. Cost per request: one SQLite point lookup plus a hash.
 *
 * An apikey_store is used by one thread at a time (the HTTP thread); it borrows
 * the db handle, which must outlive it. */
#ifndef CB_APIKEY_H
#define CB_APIKEY_H

#include "auth/role.h"
#include "core/err.h"
#include "store/db.h"

#include <jansson.h>

#define APIKEY_MAX 80 /* buffer size for a whole key string, NUL included */

typedef struct apikey_store apikey_store;

int apikey_store_open(db *d, apikey_store **out, cb_error *err);
void apikey_store_close(apikey_store *s); /* NULL-safe */

/* Creates a key; writes the whole key (shown to the user once) into key_out
 * and the new principal into created (may be NULL). A dept key needs a
 * department code ([A-Za-z0-9_-], 1..32); name is free text (may be NULL). */
int apikey_create(apikey_store *s, enum role role, const char *department, const char *name,
                  char key_out[APIKEY_MAX], struct principal *created, cb_error *err);

/* All keys, newest first, as a JSON array of {id, role, department, name,
 * created_at, revoked_at}; *out is owned by the caller (json_decref). */
int apikey_list(apikey_store *s, json_t **out, cb_error *err);

/* Revokes key id; CB_ENOT_FOUND if there is no such key, CB_ECONFLICT if it
 * was already revoked. */
int apikey_revoke(apikey_store *s, const char *id, cb_error *err);

/* Checks a presented key; CB_EUNAUTHORIZED (with a reason) when it is
 * malformed, unknown, revoked or wrong. */
int apikey_authenticate(apikey_store *s, const char *key, struct principal *out, cb_error *err);

/* Number of keys that are not revoked, for `citybrain info`. */
int apikey_count_active(apikey_store *s);

#endif
