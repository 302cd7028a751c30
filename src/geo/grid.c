/* grid — square cells of S metres over each district's bbox, clipped to the
 * district; see grid.h for the projection and the code scheme. Interior
 * cells are kept as rectangles (prepared "contains" test); only boundary
 * cells pay for a GEOSIntersection. */
#include "geo/grid.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "geo/region_int.h"

#define GRID_MAX_SIDE 9999u          /* rows or columns: four digits in the code */
#define GRID_SLIVER_FRACTION 0.01    /* drop cells under 1% of a full cell */
#define GRID_SUFFIX_LEN 11           /* "-G0012-0007" */

/* The district's lattice: origin at its bbox's south-west corner. */
struct lattice {
    double x0, y0, dx, dy;
    unsigned rows, cols;
    double min_km2; /* sliver threshold */
};

static int lattice_of(const region *d, double cell_m, struct lattice *l, cb_error *err)
{
    double lat0 = (d->bbox[1] + d->bbox[3]) / 2 * REGION__PI / 180.0;
    /* cos clamped so a district at a pole gives a wide cell, not a division by 0 */
    double m_per_deg_lon = REGION__M_PER_DEG_LAT * fmax(cos(lat0), 1e-6);
    l->x0 = d->bbox[0];
    l->y0 = d->bbox[1];
    l->dx = cell_m / m_per_deg_lon;
    l->dy = cell_m / REGION__M_PER_DEG_LAT;
    double rows = fmax(1, ceil((d->bbox[3] - d->bbox[1]) / l->dy));
    double cols = fmax(1, ceil((d->bbox[2] - d->bbox[0]) / l->dx));
    if (rows > GRID_MAX_SIDE || cols > GRID_MAX_SIDE)
        return cb_error_set(err, CB_EINVALID_FIELD, "cell_m",
                            "district %s needs %.0f x %.0f cells of %g m, more than %u per side",
                            d->code, rows, cols, cell_m, GRID_MAX_SIDE);
    if (strlen(d->code) + GRID_SUFFIX_LEN >= REGION_CODE_MAX)
        return cb_error_set(err, CB_EINVALID_FIELD, "district",
                            "district code %s is too long to derive cell codes from", d->code);
    l->rows = (unsigned)rows;
    l->cols = (unsigned)cols;
    l->min_km2 = GRID_SLIVER_FRACTION * cell_m * cell_m / 1e6;
    return 0;
}

/* The part of the district in the rectangle: the rectangle itself when the
 * district contains it, NULL when they share no area. Takes rect. */
static int clip(GEOSContextHandle_t ctx, const region *d, GEOSGeometry *rect, GEOSGeometry **out)
{
    *out = NULL;
    char in = GEOSPreparedContains_r(ctx, d->prep, rect);
    if (in == 1) {
        *out = rect;
        return 0;
    }
    char touch = in == 0 ? GEOSPreparedIntersects_r(ctx, d->prep, rect) : 2;
    if (touch != 1) {
        GEOSGeom_destroy_r(ctx, rect);
        return touch == 0 ? 0 : CB_EINTERNAL;
    }
    GEOSGeometry *g = GEOSIntersection_r(ctx, d->geom, rect);
    GEOSGeom_destroy_r(ctx, rect);
    if (!g)
        return CB_EINTERNAL;
    *out = region__polygonal(ctx, g); /* NULL when they only touch */
    GEOSGeom_destroy_r(ctx, g);
    return 0;
}

static int cell_push(region_set *set, const region *d, unsigned row, unsigned col,
                     GEOSGeometry *cell, struct region__batch *b, cb_error *err)
{
    /* lattice_of() checked that the code fits; the slack keeps gcc calm */
    char code[REGION_CODE_MAX + 32], name[REGION_NAME_MAX + 32];
    snprintf(code, sizeof code, "%s-G%04u-%04u", d->code, row, col);
    assert(strlen(code) < REGION_CODE_MAX && row <= GRID_MAX_SIDE && col <= GRID_MAX_SIDE);
    if (strlen(d->name) + GRID_SUFFIX_LEN + 1 < REGION_NAME_MAX)
        snprintf(name, sizeof name, "%s G%04u-%04u", d->name, row, col);
    else
        snprintf(name, sizeof name, "%s", code);
    region *r;
    int rc = region__new(set, code, name, d->code, REGION_GRID, cell, &r, err);
    if (rc == 0) {
        r->src = b->n;
        rc = region__batch_push(set, b, r, err);
    }
    return rc;
}

static int cell_make(region_set *set, const region *d, const struct lattice *l, unsigned row,
                     unsigned col, struct region__batch *b, cb_error *err)
{
    GEOSContextHandle_t ctx = region__ctx(set);
    /* Edges from the same products, so neighbours share them bit for bit. */
    GEOSGeometry *rect =
        GEOSGeom_createRectangle_r(ctx, l->x0 + col * l->dx, l->y0 + row * l->dy,
                                   l->x0 + (col + 1) * l->dx, l->y0 + (row + 1) * l->dy);
    GEOSGeometry *cell = NULL;
    int rc = rect ? clip(ctx, d, rect, &cell) : CB_ENOMEM;
    if (rc != 0)
        return cb_error_set(err, rc, NULL, "district %s: cell %u/%u: GEOS failed: %s", d->code,
                            row, col, region__geos_msg(set));
    if (!cell)
        return 0;
    double km2 = region__area_km2(ctx, cell);
    if (km2 < l->min_km2) {
        GEOSGeom_destroy_r(ctx, cell);
        return 0;
    }
    return cell_push(set, d, row, col, cell, b, err);
}

static int district_cells(region_set *set, const region *d, double cell_m,
                          struct region__batch *b, cb_error *err)
{
    struct lattice l;
    int rc = lattice_of(d, cell_m, &l, err);
    for (unsigned row = 0; rc == 0 && row < l.rows; row++)
        for (unsigned col = 0; rc == 0 && col < l.cols; col++)
            rc = cell_make(set, d, &l, row, col, b, err);
    return rc;
}

/* Sizes every lattice first, so an oversized request fails before any work. */
static int plan(const region_set *set, const region *only, double cell_m, cb_error *err)
{
    double total = 0;
    size_t n = only ? 1 : region_set_count(set, REGION_DISTRICT);
    for (size_t i = 0; i < n; i++) {
        const region *d = only ? only : region_set_at(set, REGION_DISTRICT, i);
        struct lattice l;
        int rc = lattice_of(d, cell_m, &l, err);
        if (rc != 0)
            return rc;
        total += (double)l.rows * l.cols;
    }
    if (total > GRID_MAX_CELLS)
        return cb_error_set(err, CB_ETOO_LARGE, "cell_m",
                            "%.0f cells of %g m exceed the limit of %u; use larger cells",
                            total, cell_m, GRID_MAX_CELLS);
    return 0;
}

int grid_generate(region_set *set, const char *district, double cell_m, size_t *count,
                  cb_error *err)
{
    const region *only = district ? region_set_get(set, district) : NULL;
    if (count)
        *count = 0;
    if (!(cell_m >= GRID_CELL_MIN_M && cell_m <= GRID_CELL_MAX_M))
        return cb_error_set(err, CB_EINVALID_FIELD, "cell_m",
                            "cell size must be between %g and %g m", GRID_CELL_MIN_M,
                            GRID_CELL_MAX_M);
    if (district && (!only || only->level != REGION_DISTRICT))
        return cb_error_set(err, CB_ENOT_FOUND, "district", "no district %s", district);
    int rc = plan(set, only, cell_m, err);
    if (rc != 0)
        return rc;
    struct region__batch b = {.what = "cells"};
    size_t n = only ? 1 : region_set_count(set, REGION_DISTRICT);
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = district_cells(set, only ? only : region_set_at(set, REGION_DISTRICT, i), cell_m,
                            &b, err);
    size_t made = b.n;
    if (rc == 0)
        rc = region__batch_commit(set, &b, err);
    region__batch_free(set, &b);
    if (count && rc == 0)
        *count = made;
    return rc;
}
