/* migrations — see migrations.h. */
#include "store/migrations.h"

const struct migration migrations[] = {
    {1, "principals: API keys stored as Argon2id hashes",
     "CREATE TABLE api_key ("
     "  id TEXT PRIMARY KEY,"            /* public part of the key, e.g. 'k3f9a0c21d7e4' */
     "  secret_hash TEXT NOT NULL,"      /* crypto_pwhash_str (Argon2id) of the secret */
     "  role TEXT NOT NULL,"
     "  department TEXT,"
     "  name TEXT NOT NULL,"
     "  created_at INTEGER NOT NULL,"    /* ms since epoch */
     "  revoked_at INTEGER"
     ") STRICT;"},
};

const int migration_count = (int)(sizeof migrations / sizeof migrations[0]);
