/* regions_api — districts and grid cells: list, one as GeoJSON, locate a point. */
#include "app/app.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int api_regions_list(http_request *req, void *app)
{
    struct app *a = app;
    const char *level = http_query(req, "level");
    enum region_level l = REGION_DISTRICT;
    cb_error err;
    if (level && region_level_parse(level, &l, &err) != 0)
        return http_reply_errorf(req, CB_EINVALID_FIELD, "level", "level must be district or grid");
    json_t *list = region_store_list(a->regions, level ? (int)l : -1);
    return http_reply_json(req, 200, json_pack("{s:I, s:o}", "count", (json_int_t)json_array_size(list),
                                               "regions", list));
}

int api_region_get(http_request *req, void *app)
{
    struct app *a = app;
    const char *code = http_param(req, "code");
    json_t *f = region_store_geojson(a->regions, code);
    if (!f)
        return http_reply_errorf(req, CB_ENOT_FOUND, "code", "no region with code '%s'", code);
    return http_reply_json(req, 200, f);
}

static int query_coordinate(http_request *req, const char *name, double lo, double hi, double *out)
{
    const char *v = http_query(req, name);
    char *end;
    /* http_reply_errorf returns 0 once the reply is set: return the code, so
     * the caller stops instead of replacing the error with a 200. */
    if (!v) {
        http_reply_errorf(req, CB_EMISSING_FIELD, name, "%s is required", name);
        return CB_EMISSING_FIELD;
    }
    *out = strtod(v, &end);
    if (end == v || *end || !(*out >= lo && *out <= hi)) {
        http_reply_errorf(req, CB_EINVALID_FIELD, name, "%s must be a number in [%g, %g]", name, lo, hi);
        return CB_EINVALID_FIELD;
    }
    return 0;
}

int api_regions_locate(http_request *req, void *app)
{
    struct app *a = app;
    double lon, lat;
    if (query_coordinate(req, "lon", -180, 180, &lon) != 0 || query_coordinate(req, "lat", -90, 90, &lat) != 0)
        return 0; /* replied */
    json_t *out = region_store_locate_json(a->regions, lon, lat);
    json_object_set_new(out, "lon", json_real(lon));
    json_object_set_new(out, "lat", json_real(lat));
    return http_reply_json(req, 200, out);
}
