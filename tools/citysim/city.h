/* city — the districts citysim plays, as citybrain knows them: fetched from
 * GET /api/v1/regions?level=district and GET /api/v1/regions/{code}
 * (GeoJSON Polygon or MultiPolygon), with point-in-polygon by ray casting
 * (even-odd over all rings, so holes and islands count right) and uniform
 * random points inside a district (rejection sampling in its bounding box).
 *
 * Each district gets a kind that sets device density and mix: the demo
 * city's centre is a small table of codes (解放区, 山阳区 in Jiaozuo); any other
 * 区 is urban, and 县 and county-level 市 are rural.
 * Cost: city_contains O(vertices); city_random_point O(vertices) expected
 * times bbox area / polygon area. */
#ifndef CITYSIM_CITY_H
#define CITYSIM_CITY_H

#include <stddef.h>

#include "api.h"
#include "rng.h"

enum district_kind { DISTRICT_CENTRE, DISTRICT_URBAN, DISTRICT_RURAL, DISTRICT_KINDS };

struct district {
    char code[32];
    char name[64];
    enum district_kind kind;
    double area_km2;
    double cx, cy;                      /* centroid, lon/lat */
    double minx, miny, maxx, maxy;      /* bounding box */
    double *xy;                         /* all rings' vertices, x y x y ...; owned */
    size_t *ring_end;                   /* ring i spans vertices [ring_end[i-1], ring_end[i]); owned */
    size_t nrings;
};

typedef struct {
    struct district *d; /* owned */
    size_t n;
} city;

/* Loads the districts; 0, or -1 with err (no districts: citybrain has no
 * regions — run `citybrain import regions` first). Free with city_free. */
int city_load(api *a, city *c, char *err, size_t errlen);
void city_free(city *c);
int city_contains(const struct district *d, double lon, double lat);
void city_random_point(const struct district *d, rng *r, double *lon, double *lat);
/* The district holding a point, or -1. */
int city_locate(const city *c, double lon, double lat);
const char *city_kind_name(enum district_kind k);

#endif
