/* nearby_api — GET /api/v1/nearby?lon=&lat=: what a citizen app may learn
 * of the city around a point (一机智享生活): the free parking bays within
 * 1 km and the nearest air-quality station's AQI within 10 km, as counts
 * and values, never the devices' ids, properties or departments. It is the
 * citizen role's only window on the sensing data: /api/v1/entities, whose
 * answers carry all of that, stays with the staff. */
#include "app/app.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define PARKING_RADIUS_M 1000
#define AIR_RADIUS_M 10000
#define PARKING_PAGES_MAX 20 /* 1,000 bays a page: more than any 1 km holds */

static int coordinate(http_request *req, const char *name, double limit, double *out, cb_error *err)
{
    const char *s = http_query(req, name);
    char *end;
    double v = s && *s ? strtod(s, &end) : NAN;
    if (!s || !*s || *end || !isfinite(v) || fabs(v) > limit)
        return cb_error_set(err, s ? CB_EINVALID_FIELD : CB_EMISSING_FIELD, name, "%s %s degrees (WGS 84) within ±%g",
                            name, s ? "must be a number of" : "is required:", limit);
    *out = v;
    return 0;
}

/* The value of attr in an entity of entity_list, or NAN. */
static double value_of(const json_t *entity, const char *attr)
{
    const json_t *v = json_object_get(json_object_get(json_object_get(entity, "values"), attr), "value");
    return json_is_number(v) ? json_number_value(v) : NAN;
}

/* {"radius_m", "total", "free"}: the bays that report `occupied`. */
static int parking(struct app *a, const char *near, json_t **out, cb_error *err)
{
    long total = 0, free_bays = 0;
    char cursor[32] = "";
    for (int page = 0; page < PARKING_PAGES_MAX; page++) {
        struct entity_filter f = {.type = "ParkingSpot", .near = near, .limit = "1000",
                                  .cursor = cursor[0] ? cursor : NULL};
        json_t *list;
        int rc = entity_list(a->entities, &f, &list, err);
        if (rc != 0)
            return rc;
        size_t i;
        json_t *e;
        json_array_foreach(json_object_get(list, "entities"), i, e) {
            double occupied = value_of(e, "occupied");
            total += !isnan(occupied);
            free_bays += occupied == 0;
        }
        const char *next = json_string_value(json_object_get(list, "next_cursor"));
        snprintf(cursor, sizeof cursor, "%s", next ? next : "");
        json_decref(list);
        if (!cursor[0])
            break;
    }
    *out = json_pack("{s:i, s:I, s:I}", "radius_m", PARKING_RADIUS_M, "total", (json_int_t)total, "free",
                     (json_int_t)free_bays);
    return 0;
}

/* {"radius_m", "aqi", "pm25", "distance_m"} of the nearest station reporting aqi, or null. */
static int air(struct app *a, const char *near, json_t **out, cb_error *err)
{
    struct entity_filter f = {.type = "AirQualityObserved", .near = near, .limit = "20"};
    json_t *list;
    int rc = entity_list(a->entities, &f, &list, err);
    if (rc != 0)
        return rc;
    *out = json_null();
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(list, "entities"), i, e) {
        double aqi = value_of(e, "aqi"), pm25 = value_of(e, "pm25");
        if (isnan(aqi))
            continue;
        *out = json_pack("{s:i, s:f, s:o, s:O?}", "radius_m", AIR_RADIUS_M, "aqi", aqi, "pm25",
                         isnan(pm25) ? json_null() : json_real(pm25), "distance_m",
                         json_object_get(e, "distance_m"));
        break;
    }
    json_decref(list);
    return 0;
}

int api_nearby(http_request *req, void *app)
{
    struct app *a = app;
    cb_error err;
    double lon, lat;
    char near[96];
    json_t *p = NULL, *q = NULL;
    int rc = coordinate(req, "lon", 180, &lon, &err);
    if (rc == 0)
        rc = coordinate(req, "lat", 90, &lat, &err);
    if (rc == 0) {
        snprintf(near, sizeof near, "%.7f,%.7f,%d", lon, lat, PARKING_RADIUS_M);
        rc = parking(a, near, &p, &err);
    }
    if (rc == 0) {
        snprintf(near, sizeof near, "%.7f,%.7f,%d", lon, lat, AIR_RADIUS_M);
        rc = air(a, near, &q, &err);
    }
    if (rc == 0 && (!p || !q))
        rc = cb_error_set(&err, CB_ENOMEM, NULL, "nearby");
    if (rc != 0) {
        json_decref(p);
        json_decref(q);
        return http_reply_error(req, &err);
    }
    return http_reply_json(req, 200, json_pack("{s:f, s:f, s:o, s:o}", "lon", lon, "lat", lat, "parking", p, "air", q));
}
