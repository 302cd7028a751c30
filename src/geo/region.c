/* region — the region set: ownership, the code hash, batches, the per-level
 * STRtree and point location. Import lives in region_import.c, export and
 * WKB in region_export.c, grid generation in grid.c; see region.h. */
#include "geo/region.h"

#include <assert.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "geo/region_int.h"

#define STRTREE_NODE_CAPACITY 10

struct level_index {
    region **v;          /* insertion order; owned */
    size_t n, cap;
    GEOSSTRtree *tree;   /* NULL when stale */
    double bbox[4];      /* union of the regions' boxes, valid with tree */
};

struct region_set {
    GEOSContextHandle_t ctx;
    struct level_index lv[REGION_LEVEL_COUNT];
    region **slots;      /* open addressing by code, linear probing, load <= 1/2 */
    size_t slot_cap, count;
    const region **hits; /* locate() scratch: candidate regions */
    size_t hit_n, hit_cap;
    int hit_oom;
    char geos_msg[256];
};

static void geos_on_error(const char *msg, void *userdata)
{
    region_set *set = userdata;
    snprintf(set->geos_msg, sizeof set->geos_msg, "%s", msg);
}

static void geos_on_notice(const char *msg, void *userdata)
{
    (void)msg; /* GEOS notices are diagnostics we already report as errors */
    (void)userdata;
}

region_set *region_set_create(void)
{
    region_set *set = calloc(1, sizeof *set);
    if (!set)
        return NULL;
    set->ctx = GEOS_init_r();
    if (!set->ctx) {
        free(set);
        return NULL;
    }
    GEOSContext_setErrorMessageHandler_r(set->ctx, geos_on_error, set);
    GEOSContext_setNoticeMessageHandler_r(set->ctx, geos_on_notice, set);
    return set;
}

void region_set_free(region_set *set)
{
    if (!set)
        return;
    for (int l = 0; l < REGION_LEVEL_COUNT; l++) {
        struct level_index *li = &set->lv[l];
        if (li->tree)
            GEOSSTRtree_destroy_r(set->ctx, li->tree);
        for (size_t i = 0; i < li->n; i++)
            region__free(set, li->v[i]);
        free(li->v);
    }
    free(set->slots);
    free(set->hits);
    GEOS_finish_r(set->ctx);
    free(set);
}

GEOSContextHandle_t region__ctx(const region_set *set)
{
    return set->ctx;
}

const char *region__geos_msg(const region_set *set)
{
    return set->geos_msg;
}

const char *region_level_name(enum region_level level)
{
    return level == REGION_GRID ? "grid" : "district";
}

int region_level_parse(const char *s, enum region_level *out, cb_error *err)
{
    if (s && strcmp(s, "district") == 0)
        *out = REGION_DISTRICT;
    else if (s && strcmp(s, "grid") == 0)
        *out = REGION_GRID;
    else
        return cb_error_set(err, CB_EINVALID_FIELD, "level",
                            "level must be \"district\" or \"grid\"");
    return 0;
}

int region__code_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= REGION_CODE_MAX)
        return 0;
    return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

/* ---- code → region hash ---------------------------------------------- */

static uint64_t code_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static region **slot_of(const region_set *set, const char *code)
{
    size_t mask = set->slot_cap - 1;
    size_t i = code_hash(code) & mask;
    while (set->slots[i] && strcmp(set->slots[i]->code, code) != 0)
        i = (i + 1) & mask;
    return &set->slots[i];
}

/* Makes room for `extra` more codes so that inserting them cannot fail. */
static int slots_reserve(region_set *set, size_t extra)
{
    size_t need = set->count + extra, cap = set->slot_cap ? set->slot_cap : 16;
    while (cap / 2 < need)
        cap *= 2;
    if (cap == set->slot_cap)
        return 0;
    region **old = set->slots;
    size_t old_cap = set->slot_cap;
    set->slots = calloc(cap, sizeof *set->slots);
    if (!set->slots) {
        set->slots = old;
        return CB_ENOMEM;
    }
    set->slot_cap = cap;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i])
            *slot_of(set, old[i]->code) = old[i];
    free(old);
    return 0;
}

const region *region_set_get(const region_set *set, const char *code)
{
    if (!set->slot_cap || !code)
        return NULL;
    return *slot_of(set, code);
}

/* ---- regions and batches --------------------------------------------- */

static int region_measure(region_set *set, region *r)
{
    GEOSContextHandle_t ctx = set->ctx;
    GEOSGeometry *c = GEOSGetCentroid_r(ctx, r->geom);
    int ok = c && GEOSGeom_getExtent_r(ctx, r->geom, &r->bbox[0], &r->bbox[1], &r->bbox[2],
                                       &r->bbox[3]) &&
             GEOSGeomGetX_r(ctx, c, &r->centroid[0]) && GEOSGeomGetY_r(ctx, c, &r->centroid[1]);
    if (c)
        GEOSGeom_destroy_r(ctx, c);
    r->area_km2 = region__area_km2(ctx, r->geom);
    return ok && r->area_km2 >= 0 ? 0 : CB_EINTERNAL;
}

int region__new(region_set *set, const char *code, const char *name, const char *parent,
                enum region_level level, GEOSGeometry *geom, region **out, cb_error *err)
{
    assert(region__code_ok(code) && strlen(parent) < REGION_CODE_MAX);
    region *r = calloc(1, sizeof *r);
    if (!r || !(r->name = strdup(name))) {
        free(r);
        GEOSGeom_destroy_r(set->ctx, geom);
        return cb_error_set(err, CB_ENOMEM, NULL, "out of memory building region %s", code);
    }
    snprintf(r->code, sizeof r->code, "%s", code);
    snprintf(r->parent, sizeof r->parent, "%s", parent);
    r->level = level;
    r->geom = geom;
    r->prep = GEOSPrepare_r(set->ctx, geom);
    if (!r->prep || region_measure(set, r) != 0) {
        region__free(set, r);
        return cb_error_set(err, CB_EINTERNAL, NULL, "region %s: GEOS failed: %s", code,
                            set->geos_msg);
    }
    *out = r;
    return 0;
}

void region__free(region_set *set, region *r)
{
    if (!r)
        return;
    if (r->prep)
        GEOSPreparedGeom_destroy_r(set->ctx, r->prep);
    if (r->geom)
        GEOSGeom_destroy_r(set->ctx, r->geom);
    free(r->name);
    free(r);
}

int region__batch_push(region_set *set, struct region__batch *b, region *r, cb_error *err)
{
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 16;
        region **v = realloc(b->v, cap * sizeof *v);
        if (!v) {
            region__free(set, r);
            return cb_error_set(err, CB_ENOMEM, NULL, "out of memory");
        }
        b->v = v;
        b->cap = cap;
    }
    b->v[b->n++] = r;
    return 0;
}

void region__batch_free(region_set *set, struct region__batch *b)
{
    for (size_t i = 0; i < b->n; i++)
        region__free(set, b->v[i]);
    free(b->v);
    b->v = NULL;
    b->n = b->cap = 0;
}

static int by_code(const void *a, const void *b)
{
    const region *x = *(const region *const *)a, *y = *(const region *const *)b;
    int c = strcmp(x->code, y->code);
    if (c)
        return c;
    return x->src < y->src ? -1 : x->src > y->src;
}

static int conflict(const struct region__batch *b, const region *r, const char *why,
                    cb_error *err)
{
    char field[64];
    snprintf(field, sizeof field, "%s[%zu]", b->what, r->src);
    return cb_error_set(err, CB_ECONFLICT, field, "%s (%s): duplicate code %s: %s", field,
                        r->name, r->code, why);
}

/* Checks that the batch's codes are unique among themselves and new to the
 * set; sorts a copy so the first duplicate in input order is reported. */
static int batch_check_codes(region_set *set, const struct region__batch *b, cb_error *err)
{
    region **s = malloc(b->n * sizeof *s);
    if (!s)
        return cb_error_set(err, CB_ENOMEM, NULL, "out of memory");
    memcpy(s, b->v, b->n * sizeof *s);
    qsort(s, b->n, sizeof *s, by_code);
    int rc = 0;
    char why[96];
    for (size_t i = 1; i < b->n && rc == 0; i++) {
        if (strcmp(s[i - 1]->code, s[i]->code) != 0)
            continue;
        snprintf(why, sizeof why, "%s[%zu] has it too", b->what, s[i - 1]->src);
        rc = conflict(b, s[i], why, err);
    }
    for (size_t i = 0; i < b->n && rc == 0; i++)
        if (region_set_get(set, b->v[i]->code))
            rc = conflict(b, b->v[i], "already loaded", err);
    free(s);
    return rc;
}

static int level_reserve(struct level_index *li, size_t extra)
{
    if (li->n + extra <= li->cap)
        return 0;
    size_t cap = li->cap ? li->cap : 16;
    while (cap < li->n + extra)
        cap *= 2;
    region **v = realloc(li->v, cap * sizeof *v);
    if (!v)
        return CB_ENOMEM;
    li->v = v;
    li->cap = cap;
    return 0;
}

static void level_mark_stale(region_set *set, struct level_index *li)
{
    if (li->tree)
        GEOSSTRtree_destroy_r(set->ctx, li->tree);
    li->tree = NULL;
}

int region__batch_commit(region_set *set, struct region__batch *b, cb_error *err)
{
    size_t per_level[REGION_LEVEL_COUNT] = {0};
    int rc = batch_check_codes(set, b, err);
    for (size_t i = 0; i < b->n; i++)
        per_level[b->v[i]->level]++;
    for (int l = 0; l < REGION_LEVEL_COUNT && rc == 0; l++)
        rc = level_reserve(&set->lv[l], per_level[l]);
    if (rc == 0)
        rc = slots_reserve(set, b->n);
    if (rc != 0) {
        if (rc == CB_ENOMEM)
            cb_error_set(err, rc, NULL, "out of memory");
        region__batch_free(set, b);
        return rc;
    }
    for (size_t i = 0; i < b->n; i++) {
        region *r = b->v[i];
        struct level_index *li = &set->lv[r->level];
        assert(li->n < li->cap);
        li->v[li->n++] = r;
        *slot_of(set, r->code) = r;
        set->count++;
    }
    for (int l = 0; l < REGION_LEVEL_COUNT; l++)
        if (per_level[l])
            level_mark_stale(set, &set->lv[l]);
    b->n = 0;
    region__batch_free(set, b);
    return 0;
}

size_t region_set_count(const region_set *set, enum region_level level)
{
    assert(level < REGION_LEVEL_COUNT);
    return set->lv[level].n;
}

const region *region_set_at(const region_set *set, enum region_level level, size_t i)
{
    assert(level < REGION_LEVEL_COUNT);
    return i < set->lv[level].n ? set->lv[level].v[i] : NULL;
}

/* ---- geometry helpers -------------------------------------------------- */

/* Twice the signed spherical area of a ring over R², by the line-integral
 * formula of Chamberlain & Duquette (2007), as in OpenLayers and turf. */
static int ring_area2(GEOSContextHandle_t ctx, const GEOSGeometry *ring, double *out)
{
    const GEOSCoordSequence *cs = GEOSGeom_getCoordSeq_r(ctx, ring);
    unsigned int n;
    if (!cs || !GEOSCoordSeq_getSize_r(ctx, cs, &n))
        return -1;
    double sum = 0, x0, y0, x1, y1, d = REGION__PI / 180.0;
    for (unsigned int i = 0; i + 1 < n; i++) {
        if (!GEOSCoordSeq_getXY_r(ctx, cs, i, &x0, &y0) ||
            !GEOSCoordSeq_getXY_r(ctx, cs, i + 1, &x1, &y1))
            return -1;
        sum += (x1 - x0) * d * (2 + sin(y0 * d) + sin(y1 * d));
    }
    *out = fabs(sum);
    return 0;
}

static double polygon_area2(GEOSContextHandle_t ctx, const GEOSGeometry *poly)
{
    double total, hole;
    int nholes = GEOSGetNumInteriorRings_r(ctx, poly);
    if (nholes < 0 || ring_area2(ctx, GEOSGetExteriorRing_r(ctx, poly), &total) != 0)
        return -1;
    for (int i = 0; i < nholes; i++) {
        if (ring_area2(ctx, GEOSGetInteriorRingN_r(ctx, poly, i), &hole) != 0)
            return -1;
        total -= hole;
    }
    return total;
}

double region__area_km2(GEOSContextHandle_t ctx, const GEOSGeometry *g)
{
    int n = GEOSGetNumGeometries_r(ctx, g);
    double sum = 0;
    for (int i = 0; i < n; i++) {
        const GEOSGeometry *part = GEOSGetGeometryN_r(ctx, g, i);
        if (GEOSGeomTypeId_r(ctx, part) != GEOS_POLYGON)
            return -1;
        double a = polygon_area2(ctx, part);
        if (a < 0)
            return -1;
        sum += a;
    }
    double r_km = REGION__EARTH_RADIUS_M / 1000.0;
    return n < 0 ? -1 : sum * r_km * r_km / 2;
}

static GEOSGeometry *collect_polygons(GEOSContextHandle_t ctx, GEOSGeometry **parts, int k)
{
    if (k == 1)
        return parts[0];
    /* The collection owns its parts on success; on failure they are ours. */
    GEOSGeometry *out =
        k > 1 ? GEOSGeom_createCollection_r(ctx, GEOS_MULTIPOLYGON, parts, (unsigned)k) : NULL;
    if (!out)
        for (int i = 0; i < k; i++)
            GEOSGeom_destroy_r(ctx, parts[i]);
    return out;
}

GEOSGeometry *region__polygonal(GEOSContextHandle_t ctx, const GEOSGeometry *g)
{
    int type = GEOSGeomTypeId_r(ctx, g);
    if (type == GEOS_POLYGON || type == GEOS_MULTIPOLYGON)
        return GEOSisEmpty_r(ctx, g) == 0 ? GEOSGeom_clone_r(ctx, g) : NULL;
    if (type != GEOS_GEOMETRYCOLLECTION)
        return NULL;
    int n = GEOSGetNumGeometries_r(ctx, g), k = 0, failed = 0;
    GEOSGeometry **parts = n > 0 ? malloc((size_t)n * sizeof *parts) : NULL;
    if (!parts)
        return NULL;
    for (int i = 0; i < n && !failed; i++) {
        const GEOSGeometry *p = GEOSGetGeometryN_r(ctx, g, i);
        if (GEOSGeomTypeId_r(ctx, p) != GEOS_POLYGON || GEOSisEmpty_r(ctx, p) != 0)
            continue;
        if (!(parts[k] = GEOSGeom_clone_r(ctx, p)))
            failed = 1;
        else
            k++;
    }
    if (failed)
        for (int i = 0; i < k; i++)
            GEOSGeom_destroy_r(ctx, parts[i]);
    GEOSGeometry *out = failed ? NULL : collect_polygons(ctx, parts, k);
    free(parts);
    return out;
}

/* ---- point location ---------------------------------------------------- */

static int level_build(region_set *set, struct level_index *li)
{
    GEOSSTRtree *t = GEOSSTRtree_create_r(set->ctx, STRTREE_NODE_CAPACITY);
    if (!t)
        return CB_ENOMEM;
    double b[4] = {INFINITY, INFINITY, -INFINITY, -INFINITY};
    for (size_t i = 0; i < li->n; i++) {
        const region *r = li->v[i];
        GEOSSTRtree_insert_r(set->ctx, t, r->geom, (void *)r);
        b[0] = fmin(b[0], r->bbox[0]);
        b[1] = fmin(b[1], r->bbox[1]);
        b[2] = fmax(b[2], r->bbox[2]);
        b[3] = fmax(b[3], r->bbox[3]);
    }
    memcpy(li->bbox, b, sizeof b);
    li->tree = t;
    return 0;
}

static void locate_collect(void *item, void *userdata)
{
    region_set *set = userdata;
    if (set->hit_n == set->hit_cap) {
        size_t cap = set->hit_cap ? set->hit_cap * 2 : 16;
        const region **h = realloc(set->hits, cap * sizeof *h);
        if (!h) {
            set->hit_oom = 1;
            return;
        }
        set->hits = h;
        set->hit_cap = cap;
    }
    set->hits[set->hit_n++] = item;
}

/* Insertion sort by code: candidates are a handful, and testing them in code
 * order makes the smallest covering code win on shared borders. */
static void hits_sort(const region **h, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        const region *r = h[i];
        size_t j = i;
        for (; j > 0 && strcmp(h[j - 1]->code, r->code) > 0; j--)
            h[j] = h[j - 1];
        h[j] = r;
    }
}

/* The first candidate, in code order, whose region covers pt: *out is NULL
 * when none does. */
static int first_covering(region_set *set, const GEOSGeometry *pt, const region **out)
{
    hits_sort(set->hits, set->hit_n);
    for (size_t i = 0; i < set->hit_n; i++) {
        char in = GEOSPreparedIntersects_r(set->ctx, set->hits[i]->prep, pt);
        if (in == 2)
            return CB_EINTERNAL;
        if (in == 1) {
            *out = set->hits[i];
            return 0;
        }
    }
    return 0;
}

int region_locate(region_set *set, double lon, double lat, enum region_level level,
                  const region **out)
{
    assert(level < REGION_LEVEL_COUNT);
    struct level_index *li = &set->lv[level];
    *out = NULL;
    if (li->n == 0 || !isfinite(lon) || !isfinite(lat))
        return 0;
    if (!li->tree && level_build(set, li) != 0)
        return CB_ENOMEM;
    if (lon < li->bbox[0] || lat < li->bbox[1] || lon > li->bbox[2] || lat > li->bbox[3])
        return 0;
    GEOSGeometry *pt = GEOSGeom_createPointFromXY_r(set->ctx, lon, lat);
    if (!pt)
        return CB_ENOMEM;
    set->hit_n = 0;
    set->hit_oom = 0;
    GEOSSTRtree_query_r(set->ctx, li->tree, pt, locate_collect, set);
    int rc = set->hit_oom ? CB_ENOMEM : first_covering(set, pt, out);
    GEOSGeom_destroy_r(set->ctx, pt);
    return rc;
}

/* ---- accessors --------------------------------------------------------- */

const char *region_code(const region *r) { return r->code; }
const char *region_name(const region *r) { return r->name; }
const char *region_parent(const region *r) { return r->parent; }
enum region_level region_level_of(const region *r) { return r->level; }
double region_area_km2(const region *r) { return r->area_km2; }

void region_bbox(const region *r, double bbox[4])
{
    memcpy(bbox, r->bbox, sizeof r->bbox);
}

void region_centroid(const region *r, double *lon, double *lat)
{
    *lon = r->centroid[0];
    *lat = r->centroid[1];
}
