/* region_export — regions out as GeoJSON (for the API) and as WKB (for
 * store/), and back in from WKB. WKB rather than GeoJSON on disk because it
 * is exact, compact and what PostGIS/SpatiaLite read (DESIGN §11). */
#include <stdlib.h>
#include <string.h>

#include "geo/region.h"
#include "geo/region_int.h"

/* ---- GeoJSON ----------------------------------------------------------- */

static json_t *ring_json(GEOSContextHandle_t ctx, const GEOSGeometry *ring)
{
    const GEOSCoordSequence *cs = GEOSGeom_getCoordSeq_r(ctx, ring);
    unsigned int n;
    json_t *a = json_array();
    if (!a || !cs || !GEOSCoordSeq_getSize_r(ctx, cs, &n)) {
        json_decref(a);
        return NULL;
    }
    double x, y;
    for (unsigned int i = 0; i < n; i++) {
        if (!GEOSCoordSeq_getXY_r(ctx, cs, i, &x, &y) ||
            json_array_append_new(a, json_pack("[ff]", x, y)) != 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

static json_t *polygon_json(GEOSContextHandle_t ctx, const GEOSGeometry *poly)
{
    int holes = GEOSGetNumInteriorRings_r(ctx, poly);
    json_t *a = json_array();
    if (!a || holes < 0 || json_array_append_new(a, ring_json(ctx, GEOSGetExteriorRing_r(ctx, poly))))
        goto fail;
    for (int i = 0; i < holes; i++)
        if (json_array_append_new(a, ring_json(ctx, GEOSGetInteriorRingN_r(ctx, poly, i))))
            goto fail;
    return a;
fail:
    json_decref(a);
    return NULL;
}

static json_t *geometry_json(GEOSContextHandle_t ctx, const GEOSGeometry *g)
{
    if (GEOSGeomTypeId_r(ctx, g) == GEOS_POLYGON)
        return json_pack("{s:s, s:o}", "type", "Polygon", "coordinates", polygon_json(ctx, g));
    int n = GEOSGetNumGeometries_r(ctx, g);
    json_t *a = json_array();
    for (int i = 0; a && i < n; i++)
        if (json_array_append_new(a, polygon_json(ctx, GEOSGetGeometryN_r(ctx, g, i)))) {
            json_decref(a);
            a = NULL;
        }
    return json_pack("{s:s, s:o}", "type", "MultiPolygon", "coordinates", a);
}

json_t *region_to_geojson(const region_set *set, const region *r)
{
    json_t *parent = r->parent[0] ? json_string(r->parent) : json_null();
    json_t *props = json_pack("{s:s, s:s, s:s, s:o, s:f, s:[ff]}", "code", r->code, "name",
                              r->name, "level", region_level_name(r->level), "parent", parent,
                              "area_km2", r->area_km2, "centroid", r->centroid[0],
                              r->centroid[1]);
    return json_pack("{s:s, s:s, s:o, s:o}", "type", "Feature", "id", r->code, "properties",
                     props, "geometry", geometry_json(region__ctx(set), r->geom));
}

json_t *region_set_to_geojson(const region_set *set, enum region_level level)
{
    json_t *fs = json_array();
    size_t n = region_set_count(set, level);
    for (size_t i = 0; fs && i < n; i++)
        if (json_array_append_new(fs, region_to_geojson(set, region_set_at(set, level, i)))) {
            json_decref(fs);
            fs = NULL;
        }
    return json_pack("{s:s, s:o}", "type", "FeatureCollection", "features", fs);
}

/* ---- WKB --------------------------------------------------------------- */

unsigned char *region_to_wkb(const region_set *set, const region *r, size_t *len)
{
    GEOSContextHandle_t ctx = region__ctx(set);
    GEOSWKBWriter *w = GEOSWKBWriter_create_r(ctx);
    if (!w)
        return NULL;
    GEOSWKBWriter_setByteOrder_r(ctx, w, GEOS_WKB_NDR);
    GEOSWKBWriter_setOutputDimension_r(ctx, w, 2);
    size_t n = 0;
    unsigned char *g = GEOSWKBWriter_write_r(ctx, w, r->geom, &n);
    GEOSWKBWriter_destroy_r(ctx, w);
    /* Copied so that the caller frees with plain free(), not GEOSFree_r. */
    unsigned char *out = g ? malloc(n) : NULL;
    if (out) {
        memcpy(out, g, n);
        *len = n;
    }
    if (g)
        GEOSFree_r(ctx, g);
    return out;
}

static int def_check(const struct region_def *def, cb_error *err)
{
    if (def->level != REGION_DISTRICT && def->level != REGION_GRID)
        return cb_error_set(err, CB_EINVALID_FIELD, "level", "unknown region level %d",
                            (int)def->level);
    if (!def->code || !region__code_ok(def->code))
        return cb_error_set(err, CB_EINVALID_FIELD, "code",
                            "code must be 1..%d characters of A-Z a-z 0-9 . _ -",
                            REGION_CODE_MAX - 1);
    if (def->parent && def->parent[0] && !region__code_ok(def->parent))
        return cb_error_set(err, CB_EINVALID_FIELD, "parent", "region %s: bad parent code",
                            def->code);
    if (def->name && strlen(def->name) >= REGION_NAME_MAX)
        return cb_error_set(err, CB_EINVALID_FIELD, "name", "region %s: name longer than %d bytes",
                            def->code, REGION_NAME_MAX - 1);
    return 0;
}

/* Stored bytes are input: the geometry must be what an import would accept. */
static int wkb_geom_check(GEOSContextHandle_t ctx, const GEOSGeometry *g)
{
    int type = GEOSGeomTypeId_r(ctx, g);
    double x0, y0, x1, y1, area = 0;
    if ((type != GEOS_POLYGON && type != GEOS_MULTIPOLYGON) || GEOSisEmpty_r(ctx, g) != 0)
        return 0;
    if (!GEOSGeom_getExtent_r(ctx, g, &x0, &y0, &x1, &y1) || !(x0 >= -180 && x1 <= 180) ||
        !(y0 >= -90 && y1 <= 90))
        return 0;
    return GEOSisValid_r(ctx, g) == 1 && GEOSArea_r(ctx, g, &area) && area > 0;
}

int region_set_add_wkb(region_set *set, const struct region_def *def,
                       const unsigned char *wkb, size_t len, cb_error *err)
{
    int rc = def_check(def, err);
    if (rc != 0)
        return rc;
    if (region_set_get(set, def->code))
        return cb_error_set(err, CB_ECONFLICT, "code", "region %s is already loaded", def->code);
    GEOSContextHandle_t ctx = region__ctx(set);
    GEOSWKBReader *rd = GEOSWKBReader_create_r(ctx);
    GEOSGeometry *g = rd ? GEOSWKBReader_read_r(ctx, rd, wkb, len) : NULL;
    if (rd)
        GEOSWKBReader_destroy_r(ctx, rd);
    if (!g || !wkb_geom_check(ctx, g)) {
        if (g)
            GEOSGeom_destroy_r(ctx, g);
        return cb_error_set(err, CB_ECORRUPT, "geometry",
                            "region %s: stored geometry is not a valid lon/lat polygon",
                            def->code);
    }
    const char *name = def->name && def->name[0] ? def->name : def->code;
    region *r;
    struct region__batch b = {.what = "region"};
    rc = region__new(set, def->code, name, def->parent ? def->parent : "", def->level, g, &r,
                     err);
    if (rc == 0)
        rc = region__batch_push(set, &b, r, err);
    if (rc == 0)
        rc = region__batch_commit(set, &b, err);
    region__batch_free(set, &b);
    return rc;
}
