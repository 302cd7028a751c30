/* region_int — what region.c, region_import.c and grid.c share; never
 * included from outside src/geo/. New regions are built into a batch and
 * committed all at once, so every add is all-or-nothing. */
#ifndef CB_REGION_INT_H
#define CB_REGION_INT_H

#include <geos_c.h>

#include "geo/region.h"

#define REGION__EARTH_RADIUS_M 6371008.8
#define REGION__PI 3.14159265358979323846
#define REGION__M_PER_DEG_LAT (REGION__EARTH_RADIUS_M * REGION__PI / 180.0)

/* Owned by its set once committed, by its batch before. */
struct region {
    char code[REGION_CODE_MAX];
    char parent[REGION_CODE_MAX];
    char *name;                       /* malloc'd */
    enum region_level level;
    GEOSGeometry *geom;               /* owned; valid, polygonal */
    const GEOSPreparedGeometry *prep; /* owned */
    double bbox[4];
    double area_km2;
    double centroid[2];
    size_t src;                       /* index in its input, for error messages */
};

/* Regions built but not yet in a set; `what` names the input in messages
 * ("features", "cells"). */
struct region__batch {
    region **v;
    size_t n, cap;
    const char *what;
};

GEOSContextHandle_t region__ctx(const region_set *set);

/* Builds a region taking ownership of geom (freed on failure too); geom must
 * be valid and polygonal. Returns 0 and *out, or CB_ENOMEM/CB_EINTERNAL. */
int region__new(region_set *set, const char *code, const char *name, const char *parent,
                enum region_level level, GEOSGeometry *geom, region **out, cb_error *err);
void region__free(region_set *set, region *r);

/* Push takes ownership of r (freed on failure). */
int region__batch_push(region_set *set, struct region__batch *b, region *r, cb_error *err);
/* Adds every region of the batch or none: CB_ECONFLICT on a code repeated in
 * the batch or already in the set. The batch is empty afterwards either way. */
int region__batch_commit(region_set *set, struct region__batch *b, cb_error *err);
void region__batch_free(region_set *set, struct region__batch *b);

/* 1 if s is a well-formed code (see REGION_CODE_MAX). */
int region__code_ok(const char *s);
/* Area of a polygonal geometry on the sphere, km²; negative on GEOS failure. */
double region__area_km2(GEOSContextHandle_t ctx, const GEOSGeometry *g);
/* The polygonal part of g as a new Polygon/MultiPolygon, NULL if it has none
 * (or on failure). g stays the caller's. */
GEOSGeometry *region__polygonal(GEOSContextHandle_t ctx, const GEOSGeometry *g);
/* The last message GEOS reported on the set's context ("" if none). */
const char *region__geos_msg(const region_set *set);

#endif
