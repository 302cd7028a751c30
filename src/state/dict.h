/* dict — small dense ids for the names the city repeats millions of times:
 * entity types, attribute names and department codes. An id is assigned the
 * first time a name is seen, stored in SQLite (table dict) and never changes,
 * so the WAL and the in-memory state can carry 16-bit ids instead of strings.
 *
 * Thread-safe: one mutex; lookups of known names cost a hash probe, a new
 * name costs one SQLite insert on the dict's own connection. Names are
 * validated: 1..64 bytes of [A-Za-z0-9_.:-]. */
#ifndef CB_DICT_H
#define CB_DICT_H

#include "core/err.h"

#include <stdint.h>

enum dict_kind { DICT_TYPE, DICT_ATTR, DICT_DEPARTMENT, DICT_KIND_COUNT };

#define DICT_NAME_MAX 64
#define DICT_NONE 0          /* id 0 is never assigned: "no name" */
#define DICT_MAX_IDS 65535   /* per kind */

typedef struct dict dict;

/* Opens DATA_DIR's database on its own connection and loads every name. */
int dict_open(const char *data_dir, dict **out, cb_error *err);
void dict_close(dict *d); /* NULL-safe */

/* Id of name, assigning and storing a new one when create is set; DICT_NONE
 * and CB_ENOT_FOUND when absent and !create. field names the input in errors. */
int dict_id(dict *d, enum dict_kind kind, const char *name, int create, uint16_t *id,
            const char *field, cb_error *err);

/* The name of id, or NULL. The pointer stays valid until dict_close. */
const char *dict_name(dict *d, enum dict_kind kind, uint16_t id);
int dict_count(dict *d, enum dict_kind kind);

int dict_name_valid(const char *name);

#endif
