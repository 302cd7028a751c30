/* region_import — GeoJSON FeatureCollection → regions. Every feature is
 * parsed and checked (shape of the JSON, lon/lat range, closed rings, GEOS
 * validity, code syntax and uniqueness) into a batch that is committed only
 * when all are good. Input is hostile: sizes are capped before GEOS sees it,
 * and every message names the feature, e.g. "features[3] (温县): ...". */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "geo/region.h"
#include "geo/region_int.h"

struct imp {
    region_set *set;
    GEOSContextHandle_t ctx;
    const struct region_import_opts *o;
    const char *name_prop, *code_prop;
    size_t max_vertices, vertices, repaired;
    size_t index;      /* the feature being read */
    int rc;            /* code of the last fail(), for functions returning NULL */
    char label[320];   /* "features[3] (温县)" */
    cb_error *err;
};

/* Fails the import with a message naming the current feature; `sub` is the
 * field below the feature, e.g. ".geometry.coordinates[0][5]". */
__attribute__((format(printf, 4, 5)))
static int fail(struct imp *im, int code, const char *sub, const char *fmt, ...)
{
    char field[CB_ERROR_FIELD_MAX], msg[CB_ERROR_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(field, sizeof field, "features[%zu]%s", im->index, sub ? sub : "");
    im->rc = code;
    return cb_error_set(im->err, code, field, "%s: %s", im->label, msg);
}

/* ".geometry.coordinates[p][r][k]" with the parts that are >= 0. */
static const char *coord_path(char *buf, size_t n, long poly, long ring, long pos)
{
    int len = snprintf(buf, n, ".geometry.coordinates");
    long idx[3] = {poly, ring, pos};
    for (int i = 0; i < 3 && len > 0 && (size_t)len < n; i++)
        if (idx[i] >= 0)
            len += snprintf(buf + len, n - (size_t)len, "[%ld]", idx[i]);
    return buf;
}

/* ---- geometry ---------------------------------------------------------- */

static int parse_position(struct imp *im, const json_t *pos, const char *path, double *x,
                          double *y)
{
    if (!json_is_array(pos) || json_array_size(pos) < 2 ||
        !json_is_number(json_array_get(pos, 0)) || !json_is_number(json_array_get(pos, 1)))
        return fail(im, CB_EINVALID_FIELD, path, "a position must be [longitude, latitude]");
    *x = json_number_value(json_array_get(pos, 0));
    *y = json_number_value(json_array_get(pos, 1));
    if (!(*x >= -180 && *x <= 180))
        return fail(im, CB_EINVALID_FIELD, path,
                    "longitude %g out of range [-180, 180] (coordinates must be WGS84 lon/lat)",
                    *x);
    if (!(*y >= -90 && *y <= 90))
        return fail(im, CB_EINVALID_FIELD, path,
                    "latitude %g out of range [-90, 90] (coordinates must be WGS84 lon/lat)", *y);
    return 0;
}

static int ring_fill(struct imp *im, const json_t *ring, long poly, long ri,
                     GEOSCoordSequence *cs)
{
    char path[96];
    double x = 0, y = 0, x0 = 0, y0 = 0;
    size_t n = json_array_size(ring);
    for (size_t k = 0; k < n; k++) {
        coord_path(path, sizeof path, poly, ri, (long)k);
        int rc = parse_position(im, json_array_get(ring, k), path, &x, &y);
        if (rc != 0)
            return rc;
        if (!GEOSCoordSeq_setXY_r(im->ctx, cs, (unsigned)k, x, y))
            return fail(im, CB_ENOMEM, NULL, "out of memory");
        if (k == 0)
            x0 = x, y0 = y;
    }
    if (x != x0 || y != y0)
        return fail(im, CB_EINVALID_FIELD, coord_path(path, sizeof path, poly, ri, -1),
                    "ring is not closed (its first and last positions differ)");
    return 0;
}

static GEOSGeometry *parse_ring(struct imp *im, const json_t *ring, long poly, long ri)
{
    char path[96];
    coord_path(path, sizeof path, poly, ri, -1);
    size_t n = json_array_size(ring);
    if (!json_is_array(ring) || n < 4) {
        fail(im, CB_EINVALID_FIELD, path, "a ring must be an array of at least 4 positions");
        return NULL;
    }
    if (n > im->max_vertices - im->vertices) {
        fail(im, CB_ETOO_LARGE, path, "more than %zu vertices in the file", im->max_vertices);
        return NULL;
    }
    im->vertices += n;
    GEOSCoordSequence *cs = GEOSCoordSeq_create_r(im->ctx, (unsigned)n, 2);
    if (!cs) {
        fail(im, CB_ENOMEM, NULL, "out of memory");
        return NULL;
    }
    if (ring_fill(im, ring, poly, ri, cs) != 0) {
        GEOSCoordSeq_destroy_r(im->ctx, cs);
        return NULL;
    }
    GEOSGeometry *g = GEOSGeom_createLinearRing_r(im->ctx, cs); /* owns cs */
    if (!g)
        fail(im, CB_EINVALID_FIELD, path, "bad ring: %s", region__geos_msg(im->set));
    return g;
}

static GEOSGeometry *parse_polygon(struct imp *im, const json_t *rings, long poly)
{
    char path[96];
    size_t n = json_array_size(rings);
    if (!json_is_array(rings) || n == 0) {
        fail(im, CB_EINVALID_FIELD, coord_path(path, sizeof path, poly, -1, -1),
             "a polygon must be a non-empty array of rings");
        return NULL;
    }
    GEOSGeometry **r = calloc(n, sizeof *r);
    if (!r) {
        fail(im, CB_ENOMEM, NULL, "out of memory");
        return NULL;
    }
    size_t k = 0;
    while (k < n && (r[k] = parse_ring(im, json_array_get(rings, k), poly, (long)k)))
        k++;
    GEOSGeometry *g = NULL;
    if (k == n) /* the polygon owns the rings, also when it fails */
        g = GEOSGeom_createPolygon_r(im->ctx, r[0], r + 1, (unsigned)(n - 1));
    else
        for (size_t i = 0; i < k; i++)
            GEOSGeom_destroy_r(im->ctx, r[i]);
    if (k == n && !g)
        fail(im, CB_ENOMEM, NULL, "cannot build polygon: %s", region__geos_msg(im->set));
    free(r);
    return g;
}

static GEOSGeometry *parse_multipolygon(struct imp *im, const json_t *polys)
{
    size_t n = json_array_size(polys);
    if (!json_is_array(polys) || n == 0) {
        fail(im, CB_EINVALID_FIELD, ".geometry.coordinates",
             "a MultiPolygon must be a non-empty array of polygons");
        return NULL;
    }
    GEOSGeometry **p = calloc(n, sizeof *p);
    if (!p) {
        fail(im, CB_ENOMEM, NULL, "out of memory");
        return NULL;
    }
    size_t k = 0;
    while (k < n && (p[k] = parse_polygon(im, json_array_get(polys, k), (long)k)))
        k++;
    GEOSGeometry *g = NULL;
    if (k == n)
        g = GEOSGeom_createCollection_r(im->ctx, GEOS_MULTIPOLYGON, p, (unsigned)n);
    if (!g) /* on failure the parts are still ours */
        for (size_t i = 0; i < k; i++)
            GEOSGeom_destroy_r(im->ctx, p[i]);
    if (k == n && !g)
        fail(im, CB_ENOMEM, NULL, "cannot build multipolygon: %s", region__geos_msg(im->set));
    free(p);
    return g;
}

static GEOSGeometry *parse_geometry(struct imp *im, const json_t *geom)
{
    if (!json_is_object(geom)) {
        fail(im, CB_EMISSING_FIELD, ".geometry", "no geometry object");
        return NULL;
    }
    const char *type = json_string_value(json_object_get(geom, "type"));
    const json_t *coords = json_object_get(geom, "coordinates");
    if (type && strcmp(type, "Polygon") == 0)
        return parse_polygon(im, coords, -1);
    if (type && strcmp(type, "MultiPolygon") == 0)
        return parse_multipolygon(im, coords);
    fail(im, CB_EINVALID_FIELD, ".geometry.type",
         "geometry type %s%.40s%s is not Polygon or MultiPolygon", type ? "\"" : "",
         type ? type : "(missing)", type ? "\"" : "");
    return NULL;
}

/* ---- validity ---------------------------------------------------------- */

/* Replaces *g by its GEOSMakeValid repair when that stays polygonal and
 * keeps the area: a repair that changes the area means the polygon's
 * meaning was ambiguous (a bow-tie), which a person must resolve. */
static int repair(struct imp *im, GEOSGeometry **g, const char *why)
{
    GEOSMakeValidParams *p = GEOSMakeValidParams_create_r(im->ctx);
    if (!p || !GEOSMakeValidParams_setMethod_r(im->ctx, p, GEOS_MAKE_VALID_STRUCTURE)) {
        GEOSMakeValidParams_destroy_r(im->ctx, p);
        return fail(im, CB_ENOMEM, NULL, "out of memory");
    }
    GEOSGeometry *fixed = GEOSMakeValidWithParams_r(im->ctx, *g, p);
    GEOSMakeValidParams_destroy_r(im->ctx, p);
    GEOSGeometry *poly = fixed ? region__polygonal(im->ctx, fixed) : NULL;
    if (fixed)
        GEOSGeom_destroy_r(im->ctx, fixed);
    double before = 0, after = 0;
    GEOSArea_r(im->ctx, *g, &before);
    if (poly)
        GEOSArea_r(im->ctx, poly, &after);
    if (!poly || GEOSisValid_r(im->ctx, poly) != 1 ||
        !(fabs(after - before) <= REGION_REPAIR_MAX_AREA_CHANGE * before)) {
        if (poly)
            GEOSGeom_destroy_r(im->ctx, poly);
        return fail(im, CB_EINVALID_FIELD, ".geometry",
                    "invalid geometry: %s (not repaired: repair would change the area from "
                    "%.3g to %.3g square degrees)", why, before, after);
    }
    GEOSGeom_destroy_r(im->ctx, *g);
    *g = poly;
    im->repaired++;
    return 0;
}

static int check_valid(struct imp *im, GEOSGeometry **g)
{
    char valid = GEOSisValid_r(im->ctx, *g);
    if (valid == 1)
        return 0;
    if (valid != 0)
        return fail(im, CB_EINTERNAL, ".geometry", "GEOS cannot check validity: %s",
                    region__geos_msg(im->set));
    char *why = GEOSisValidReason_r(im->ctx, *g);
    const char *reason = why ? why : "unknown reason";
    int rc = im->o->repair
                 ? repair(im, g, reason)
                 : fail(im, CB_EINVALID_FIELD, ".geometry", "invalid geometry: %s", reason);
    if (why)
        GEOSFree_r(im->ctx, why);
    return rc;
}

/* ---- properties -------------------------------------------------------- */

static int feature_name(struct imp *im, const json_t *props, const char **name)
{
    const json_t *v = props ? json_object_get(props, im->name_prop) : NULL;
    *name = json_string_value(v);
    if (v && !json_is_null(v) && !*name)
        return fail(im, CB_EINVALID_FIELD, ".properties", "property \"%s\" must be a string",
                    im->name_prop);
    if (*name && strlen(*name) >= REGION_NAME_MAX)
        return fail(im, CB_EINVALID_FIELD, ".properties", "name longer than %d bytes",
                    REGION_NAME_MAX - 1);
    if (*name && !**name)
        *name = NULL;
    if (*name)
        snprintf(im->label, sizeof im->label, "features[%zu] (%s)", im->index, *name);
    return 0;
}

static int code_from_map(struct imp *im, const char *name, const char **code)
{
    if (!im->o->code_map)
        return fail(im, CB_EMISSING_FIELD, ".properties",
                    "no \"%s\" property and no code map given", im->code_prop);
    *code = name ? json_string_value(json_object_get(im->o->code_map, name)) : NULL;
    if (!*code)
        return fail(im, CB_EMISSING_FIELD, ".properties",
                    "no \"%s\" property and the code map has no entry for %s%s%s",
                    im->code_prop, name ? "\"" : "", name ? name : "a feature without a name",
                    name ? "\"" : "");
    return 0;
}

static int feature_code(struct imp *im, const json_t *props, const char *name,
                        char code[REGION_CODE_MAX])
{
    const json_t *v = props ? json_object_get(props, im->code_prop) : NULL;
    const char *s = NULL;
    char num[32];
    int rc = 0;
    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        s = num;
    } else if (json_is_string(v)) {
        s = json_string_value(v);
    } else if (v && !json_is_null(v)) {
        return fail(im, CB_EINVALID_FIELD, ".properties",
                    "property \"%s\" must be a string or a non-negative integer", im->code_prop);
    } else {
        rc = code_from_map(im, name, &s);
    }
    if (rc == 0 && !region__code_ok(s))
        return fail(im, CB_EINVALID_FIELD, ".properties",
                    "code \"%.63s\" must be 1..%d characters of A-Z a-z 0-9 . _ -", s,
                    REGION_CODE_MAX - 1);
    if (rc == 0)
        snprintf(code, REGION_CODE_MAX, "%s", s);
    return rc;
}

static int feature_parent(struct imp *im, const GEOSGeometry *g, char parent[REGION_CODE_MAX])
{
    parent[0] = '\0';
    if (im->o->parent)
        snprintf(parent, REGION_CODE_MAX, "%s", im->o->parent);
    if (im->o->parent || im->o->level != REGION_GRID)
        return 0;
    double x = 0, y = 0;
    const region *d = NULL;
    GEOSGeometry *pt = GEOSPointOnSurface_r(im->ctx, g);
    int ok = pt && GEOSGeomGetX_r(im->ctx, pt, &x) && GEOSGeomGetY_r(im->ctx, pt, &y);
    if (pt)
        GEOSGeom_destroy_r(im->ctx, pt);
    if (!ok || region_locate(im->set, x, y, REGION_DISTRICT, &d) != 0)
        return fail(im, CB_EINTERNAL, ".geometry", "cannot find an interior point: %s",
                    region__geos_msg(im->set));
    if (!d)
        return fail(im, CB_EINVALID_FIELD, ".geometry",
                    "its interior point (%.6f, %.6f) is in no loaded district", x, y);
    snprintf(parent, REGION_CODE_MAX, "%s", region_code(d));
    return 0;
}

/* ---- features ---------------------------------------------------------- */

static int import_feature(struct imp *im, const json_t *f, struct region__batch *b)
{
    snprintf(im->label, sizeof im->label, "features[%zu]", im->index);
    const json_t *props = json_object_get(f, "properties");
    const char *name, *type = json_string_value(json_object_get(f, "type"));
    char code[REGION_CODE_MAX], parent[REGION_CODE_MAX];
    if (!json_is_object(f) || !type || strcmp(type, "Feature") != 0)
        return fail(im, CB_EINVALID_FIELD, ".type", "not a GeoJSON Feature");
    if (props && !json_is_object(props) && !json_is_null(props))
        return fail(im, CB_EINVALID_FIELD, ".properties", "properties must be an object");
    int rc = feature_name(im, props, &name);
    if (rc == 0)
        rc = feature_code(im, props, name, code);
    if (rc != 0)
        return rc;
    GEOSGeometry *g = parse_geometry(im, json_object_get(f, "geometry"));
    if (!g)
        return im->rc;
    rc = check_valid(im, &g);
    if (rc == 0)
        rc = feature_parent(im, g, parent);
    if (rc != 0) {
        GEOSGeom_destroy_r(im->ctx, g);
        return rc;
    }
    region *r;
    rc = region__new(im->set, code, name ? name : code, parent, im->o->level, g, &r, im->err);
    if (rc == 0) {
        r->src = im->index;
        rc = region__batch_push(im->set, b, r, im->err);
    }
    return rc;
}

static int check_opts(region_set *set, const struct region_import_opts *o, cb_error *err)
{
    const region *p = o->parent ? region_set_get(set, o->parent) : NULL;
    if (o->level != REGION_DISTRICT && o->level != REGION_GRID)
        return cb_error_set(err, CB_EINVALID_FIELD, "level", "unknown region level %d",
                            (int)o->level);
    if (o->parent && !region__code_ok(o->parent))
        return cb_error_set(err, CB_EINVALID_FIELD, "parent",
                            "parent code must be 1..%d characters of A-Z a-z 0-9 . _ -",
                            REGION_CODE_MAX - 1);
    if (o->parent && o->level == REGION_GRID && (!p || region_level_of(p) != REGION_DISTRICT))
        return cb_error_set(err, CB_EINVALID_FIELD, "parent",
                            "parent %s of grid cells is not a loaded district", o->parent);
    if (o->code_map && !json_is_object(o->code_map))
        return cb_error_set(err, CB_EINVALID_FIELD, "code_map",
                            "the code map must be a JSON object of name to code");
    return 0;
}

static int check_collection(const json_t *root, size_t max_features, cb_error *err)
{
    const char *type = json_string_value(json_object_get(root, "type"));
    const json_t *fs = json_object_get(root, "features");
    if (!type || strcmp(type, "FeatureCollection") != 0)
        return cb_error_set(err, CB_EINVALID_FIELD, "type",
                            "not a GeoJSON FeatureCollection (type is %s%.40s%s)",
                            type ? "\"" : "", type ? type : "missing", type ? "\"" : "");
    if (!json_is_array(fs) || json_array_size(fs) == 0)
        return cb_error_set(err, CB_EINVALID_FIELD, "features",
                            "a FeatureCollection needs a non-empty \"features\" array");
    if (json_array_size(fs) > max_features)
        return cb_error_set(err, CB_ETOO_LARGE, "features", "%zu features, the limit is %zu",
                            json_array_size(fs), max_features);
    return 0;
}

static int import_all(struct imp *im, const json_t *fs, struct region__batch *b)
{
    int rc = 0;
    for (im->index = 0; im->index < json_array_size(fs) && rc == 0; im->index++)
        rc = import_feature(im, json_array_get(fs, im->index), b);
    return rc;
}

int region_set_import_geojson(region_set *set, const char *data, size_t len,
                              const struct region_import_opts *opts,
                              struct region_import_stats *stats, cb_error *err)
{
    size_t max_bytes = opts->max_bytes ? opts->max_bytes : REGION_IMPORT_MAX_BYTES;
    size_t max_features = opts->max_features ? opts->max_features : REGION_IMPORT_MAX_FEATURES;
    if (len > max_bytes)
        return cb_error_set(err, CB_ETOO_LARGE, NULL, "the GeoJSON is %zu bytes, the limit is %zu",
                            len, max_bytes);
    int rc = check_opts(set, opts, err);
    if (rc != 0)
        return rc;
    json_error_t jerr;
    json_t *root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return cb_error_set(err, CB_EINVALID_JSON, NULL, "invalid JSON at line %d column %d: %s",
                            jerr.line, jerr.column, jerr.text);
    struct imp im = {
        .set = set, .ctx = region__ctx(set), .o = opts, .err = err,
        .name_prop = opts->name_prop ? opts->name_prop : "name",
        .code_prop = opts->code_prop ? opts->code_prop : "code",
        .max_vertices = opts->max_vertices ? opts->max_vertices : REGION_IMPORT_MAX_VERTICES,
    };
    struct region__batch b = {.what = "features"};
    rc = check_collection(root, max_features, err);
    if (rc == 0)
        rc = import_all(&im, json_object_get(root, "features"), &b);
    size_t n = b.n;
    if (rc == 0)
        rc = region__batch_commit(set, &b, err);
    region__batch_free(set, &b);
    json_decref(root);
    if (rc == 0 && stats)
        *stats = (struct region_import_stats){n, im.repaired, im.vertices};
    return rc;
}
