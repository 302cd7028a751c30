/* region — the city's districts (区/县) and grid cells (网格) in memory: import
 * from GeoJSON, a spatial index per level, point location and export. Pure
 * in-memory; store/ persists a region as its code, name, level, parent and
 * the WKB of its geometry, and reloads it with region_set_add_wkb().
 *
 * Structure. A region_set owns its regions, one GEOS context and, per level,
 * an array of regions (insertion order), a GEOS STRtree over their bounding
 * boxes and a prepared geometry per region; a hash table maps code → region.
 * Regions are added all-or-nothing (an import, a grid generation or a WKB add
 * adds every region or none) and never removed: to replace a city's regions,
 * build a new set and swap it in (DESIGN §3).
 *
 * Cost. get by code O(1); count/at O(1); an add marks its level's tree stale
 * and the next region_locate() at that level rebuilds it, O(n log n); then
 * locate is O(log n) for the tree plus O(log v) per candidate region of v
 * vertices (GEOS's indexed point-in-area test, built on a region's first
 * query).
 *
 * Threads. A set is not thread-safe: region_locate() updates caches (the
 * tree, GEOS's lazy point-in-area index, a scratch buffer), so concurrent
 * callers need a lock or a set each.
 *
 * Geometry. Coordinates are WGS84 lon/lat degrees. Areas are on a sphere of
 * radius 6371.0088 km (IUGG mean radius), each edge taken as straight in
 * lon/lat — for edges of a few km the error is far below 0.01%. The centroid
 * is the planar centroid in degrees and can lie outside a concave region. */
#ifndef CB_REGION_H
#define CB_REGION_H

#include <jansson.h>
#include <stddef.h>

#include "core/err.h"

enum region_level {
    REGION_DISTRICT = 0, /* 区/县 */
    REGION_GRID = 1,     /* 网格 */
};
#define REGION_LEVEL_COUNT 2

/* Codes are 1..63 bytes of A-Z a-z 0-9 . _ - (they appear in URLs). */
#define REGION_CODE_MAX 64
/* Names are at most 255 bytes of UTF-8. */
#define REGION_NAME_MAX 256

/* Defaults of region_import_opts' limits (used when a limit is 0). */
#define REGION_IMPORT_MAX_BYTES (64u << 20)
#define REGION_IMPORT_MAX_FEATURES 200000u
#define REGION_IMPORT_MAX_VERTICES 4000000u
/* repair accepts a fix only if it changes the area by less than this. */
#define REGION_REPAIR_MAX_AREA_CHANGE 0.001

typedef struct region_set region_set;
typedef struct region region;

const char *region_level_name(enum region_level level); /* "district", "grid" */
/* 0 and *out set, or CB_EINVALID_FIELD for anything but "district"/"grid". */
int region_level_parse(const char *s, enum region_level *out, cb_error *err);

/* NULL when out of memory. The caller owns the set; region_set_free() frees
 * it and every region in it (NULL-safe). */
region_set *region_set_create(void);
void region_set_free(region_set *set);

struct region_import_opts {
    enum region_level level;
    const char *name_prop;  /* property holding the name; NULL means "name" */
    const char *code_prop;  /* property holding the code (string or integer); NULL means "code" */
    const json_t *code_map; /* NULL, or object name → code used when code_prop is absent */
    /* Parent code of every feature, or NULL: then districts have no parent
     * and each grid cell's parent is the loaded district containing the
     * cell's interior point (GEOSPointOnSurface). A grid parent must be a
     * loaded district. */
    const char *parent;
    /* 0: an invalid geometry is an error. 1: it is repaired (GEOSMakeValid,
     * "structure" method) if the repair keeps it polygonal and changes its
     * area by less than REGION_REPAIR_MAX_AREA_CHANGE; the echarts files have
     * self-touching rings and need this. */
    int repair;
    size_t max_bytes;    /* input size; 0 = REGION_IMPORT_MAX_BYTES */
    size_t max_features; /* 0 = REGION_IMPORT_MAX_FEATURES */
    size_t max_vertices; /* total over the file; 0 = REGION_IMPORT_MAX_VERTICES */
};

struct region_import_stats {
    size_t imported; /* regions added */
    size_t repaired; /* of which had invalid geometry repaired */
    size_t vertices; /* coordinates read */
};

/* Imports a GeoJSON FeatureCollection of Polygon/MultiPolygon features.
 * All-or-nothing: returns 0 with every feature added, or a negative CB_E*
 * code with nothing added and err naming the feature and the reason, e.g.
 * "features[3] (温县): invalid geometry: Self-intersection[113.1 35.2]".
 * stats may be NULL. Cost: O(v log v) for v vertices (GEOS validation). */
int region_set_import_geojson(region_set *set, const char *data, size_t len,
                              const struct region_import_opts *opts,
                              struct region_import_stats *stats, cb_error *err);

/* Point location. *out is the region of `level` covering (lon, lat) —
 * interior or boundary — or NULL when none does (also for non-finite input).
 * On a border shared by several regions, or where regions overlap, the one
 * with the smallest code (strcmp order) wins. Returns 0, or CB_ENOMEM /
 * CB_EINTERNAL with *out NULL. The region stays owned by the set. */
int region_locate(region_set *set, double lon, double lat, enum region_level level,
                  const region **out);

/* Lookups; the regions stay owned by the set. */
const region *region_set_get(const region_set *set, const char *code); /* NULL if none */
size_t region_set_count(const region_set *set, enum region_level level);
const region *region_set_at(const region_set *set, enum region_level level, size_t i);

/* Accessors; strings live as long as the set. */
const char *region_code(const region *r);
const char *region_name(const region *r);
const char *region_parent(const region *r); /* "" when the region has none */
enum region_level region_level_of(const region *r);
void region_bbox(const region *r, double bbox[4]); /* min lon, min lat, max lon, max lat */
double region_area_km2(const region *r);
void region_centroid(const region *r, double *lon, double *lat);

/* GeoJSON export for GET /api/v1/regions/{code}: a Feature with id = code and
 * properties {code, name, level, parent, area_km2, centroid: [lon, lat]}
 * (parent null when none). The caller owns the result (json_decref); NULL
 * when out of memory. */
json_t *region_to_geojson(const region_set *set, const region *r);
/* A FeatureCollection of every region of `level`, in insertion order. */
json_t *region_set_to_geojson(const region_set *set, enum region_level level);

/* Persistence: the geometry as little-endian 2D ISO WKB. Returns a malloc'd
 * buffer the caller frees with free(), its size in *len; NULL when out of
 * memory. */
unsigned char *region_to_wkb(const region_set *set, const region *r, size_t *len);

struct region_def {
    const char *code;
    const char *name;   /* NULL or "" means the code */
    const char *parent; /* NULL or "" means none; not checked against the set */
    enum region_level level;
};

/* Adds one region from store/ (the inverse of region_to_wkb). The bytes come
 * from disk, so they are checked like an import: CB_ECORRUPT for WKB that
 * does not parse or is not a valid polygonal geometry in lon/lat range,
 * CB_EINVALID_FIELD for a bad code or name, CB_ECONFLICT for a code already
 * in the set. */
int region_set_add_wkb(region_set *set, const struct region_def *def,
                       const unsigned char *wkb, size_t len, cb_error *err);

#endif
