/* region_store — the city's regions as the server uses them: one region_set
 * behind a mutex (region_locate is not thread-safe), persisted in SQLite
 * (table region: code, name, level, parent, WKB) and loaded at start-up.
 *
 * Entities carry their district and grid cell as a dense index per level
 * (the set's insertion order, which loading preserves), so ten million
 * entities hold two u32s rather than two codes. */
#ifndef CB_REGION_STORE_H
#define CB_REGION_STORE_H

#include "geo/region.h"
#include "store/db.h"

#include <jansson.h>
#include <stdint.h>

#define REGION_INDEX_NONE UINT32_MAX

typedef struct region_store region_store;

/* Loads every stored region. The store borrows d for the whole of its life and
 * uses it only under its own mutex; give it a connection of its own. */
int region_store_open(db *d, region_store **out, cb_error *err);
void region_store_close(region_store *rs); /* NULL-safe */

/* Imports a GeoJSON file all-or-nothing and stores the new regions. */
int region_store_import(region_store *rs, const char *data, size_t len,
                        const struct region_import_opts *opts, struct region_import_stats *st,
                        cb_error *err);
/* Generates grid cells of cell_m metres in one district (or all when NULL) and stores them. */
int region_store_grid(region_store *rs, const char *district, double cell_m, size_t *count,
                      cb_error *err);

/* District and grid cell indexes of a point (REGION_INDEX_NONE outside). */
void region_store_locate(region_store *rs, double lon, double lat, uint32_t *district,
                         uint32_t *grid);
/* Index of code at level, or REGION_INDEX_NONE. */
uint32_t region_store_index(region_store *rs, enum region_level level, const char *code);
/* Code of an index, copied into out (REGION_CODE_MAX); "" when none. */
const char *region_store_code(region_store *rs, enum region_level level, uint32_t index,
                              char *out);
size_t region_store_count(region_store *rs, enum region_level level);

/* JSON for the API; the caller owns the result. NULL + CB_ENOT_FOUND for an unknown code. */
json_t *region_store_list(region_store *rs, int level /* -1: all */);
json_t *region_store_geojson(region_store *rs, const char *code);
json_t *region_store_locate_json(region_store *rs, double lon, double lat);

#endif
