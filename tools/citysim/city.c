/* city — districts, their polygons and random points in them; see city.h. */
#include "city.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

/* The demo city's centre (DESIGN.md §2: Jiaozuo); other cities fall back to
 * the 区/县 rule. */
static const char *const centre_codes[] = {"410802" /* 解放区 */, "410811" /* 山阳区 */};

static enum district_kind kind_of(const char *code, const char *name)
{
    for (size_t i = 0; i < sizeof centre_codes / sizeof centre_codes[0]; i++)
        if (!strcmp(code, centre_codes[i]))
            return DISTRICT_CENTRE;
    size_t n = strlen(name);
    return n >= 3 && !strcmp(name + n - 3, "区") ? DISTRICT_URBAN : DISTRICT_RURAL;
}

const char *city_kind_name(enum district_kind k)
{
    static const char *names[] = {"centre", "urban", "rural"};
    return k < DISTRICT_KINDS ? names[k] : "?";
}

/* Appends the rings of one GeoJSON Polygon's coordinates. */
static int add_polygon(struct district *d, json_t *rings, buf *xy, buf *ends)
{
    size_t i, j;
    json_t *ring, *pt;
    json_array_foreach(rings, i, ring) {
        json_array_foreach(ring, j, pt) {
            double p[2] = {json_number_value(json_array_get(pt, 0)), json_number_value(json_array_get(pt, 1))};
            buf_append(xy, p, sizeof p);
            d->minx = fmin(d->minx, p[0]);
            d->maxx = fmax(d->maxx, p[0]);
            d->miny = fmin(d->miny, p[1]);
            d->maxy = fmax(d->maxy, p[1]);
        }
        size_t end = xy->len / (2 * sizeof(double));
        buf_append(ends, &end, sizeof end);
    }
    return buf_ok(xy) && buf_ok(ends) ? 0 : -1;
}

static int load_geometry(api *a, struct district *d, char *err, size_t errlen)
{
    char path[96];
    int status;
    snprintf(path, sizeof path, "/api/v1/regions/%s", d->code);
    json_t *f = api_json(a, "GET", path, NULL, &status, err, errlen);
    if (!f)
        return -1;
    json_t *g = json_object_get(f, "geometry"), *coords = json_object_get(g, "coordinates");
    const char *type = json_string_value(json_object_get(g, "type"));
    buf xy, ends;
    buf_init(&xy);
    buf_init(&ends);
    d->minx = d->miny = INFINITY;
    d->maxx = d->maxy = -INFINITY;
    int rc = -1;
    if (status != 200 || !type || !json_is_array(coords)) {
        snprintf(err, errlen, "GET %s: HTTP %d, no geometry", path, status);
    } else if (!strcmp(type, "Polygon")) {
        rc = add_polygon(d, coords, &xy, &ends);
    } else if (!strcmp(type, "MultiPolygon")) {
        size_t i;
        json_t *poly;
        rc = 0;
        json_array_foreach(coords, i, poly) rc |= add_polygon(d, poly, &xy, &ends);
    } else {
        snprintf(err, errlen, "region %s: geometry %s is not a polygon", d->code, type);
    }
    json_decref(f);
    if (rc == 0 && (ends.len == 0 || d->minx >= d->maxx || d->miny >= d->maxy)) {
        snprintf(err, errlen, "region %s: empty geometry", d->code);
        rc = -1;
    }
    if (rc != 0) {
        buf_free(&xy);
        buf_free(&ends);
        return -1;
    }
    d->xy = (double *)xy.data;
    d->ring_end = (size_t *)ends.data;
    d->nrings = ends.len / sizeof(size_t);
    return 0;
}

int city_load(api *a, city *c, char *err, size_t errlen)
{
    int status;
    memset(c, 0, sizeof *c);
    json_t *list = api_json(a, "GET", "/api/v1/regions?level=district", NULL, &status, err, errlen);
    if (!list)
        return -1;
    json_t *regions = json_object_get(list, "regions");
    size_t n = json_array_size(regions);
    if (status != 200 || n == 0) {
        snprintf(err, errlen, "GET /api/v1/regions?level=district: HTTP %d, %zu districts (import regions first)",
                 status, n);
        json_decref(list);
        return -1;
    }
    c->d = calloc(n, sizeof *c->d);
    int rc = c->d ? 0 : -1;
    size_t i;
    json_t *r;
    json_array_foreach(regions, i, r) {
        if (rc != 0)
            break;
        struct district *d = &c->d[c->n++];
        snprintf(d->code, sizeof d->code, "%s", json_string_value(json_object_get(r, "code")));
        snprintf(d->name, sizeof d->name, "%s", json_string_value(json_object_get(r, "name")));
        d->kind = kind_of(d->code, d->name);
        d->area_km2 = json_number_value(json_object_get(r, "area_km2"));
        d->cx = json_number_value(json_array_get(json_object_get(r, "centroid"), 0));
        d->cy = json_number_value(json_array_get(json_object_get(r, "centroid"), 1));
        rc = load_geometry(a, d, err, errlen);
    }
    json_decref(list);
    if (rc != 0)
        city_free(c);
    return rc;
}

void city_free(city *c)
{
    for (size_t i = 0; c->d && i < c->n; i++) {
        free(c->d[i].xy);
        free(c->d[i].ring_end);
    }
    free(c->d);
    memset(c, 0, sizeof *c);
}

int city_contains(const struct district *d, double x, double y)
{
    if (x < d->minx || x > d->maxx || y < d->miny || y > d->maxy)
        return 0;
    int inside = 0;
    size_t start = 0;
    for (size_t r = 0; r < d->nrings; r++) {
        size_t end = d->ring_end[r];
        for (size_t i = start, j = end - 1; i < end; j = i++) {
            double xi = d->xy[2 * i], yi = d->xy[2 * i + 1], xj = d->xy[2 * j], yj = d->xy[2 * j + 1];
            if ((yi > y) != (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi)
                inside = !inside;
        }
        start = end;
    }
    return inside;
}

void city_random_point(const struct district *d, rng *r, double *lon, double *lat)
{
    double x, y;
    int tries = 0;
    do {
        x = rng_range(r, d->minx, d->maxx);
        y = rng_range(r, d->miny, d->maxy);
    } while (!city_contains(d, x, y) && ++tries < 10000);
    if (tries >= 10000) { /* a sliver of a polygon: its centroid will do */
        x = d->cx;
        y = d->cy;
    }
    *lon = x;
    *lat = y;
}

int city_locate(const city *c, double lon, double lat)
{
    for (size_t i = 0; i < c->n; i++)
        if (city_contains(&c->d[i], lon, lat))
            return (int)i;
    return -1;
}
