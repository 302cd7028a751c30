/* catalog — the devices, their places and their registration; see catalog.h. */
#include "catalog.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "rng.h"

#define REGISTER_BATCH 10000 /* citybrain's bulk limit (ENTITY_BULK_MAX) */
#define M_PER_DEG_LAT 111320.0

/* Shares by district kind (centre, urban, rural). Parking lots are ~30% of
 * the centre's devices; rivers and villages make water sensors and
 * streetlights relatively more common outside. Periods stay well below the
 * heartbeats citybrain gives these types, so a device that reports is online.
 * Departments are the codes of city/departments.json (the fire brigade, xfzd,
 * is not among them yet). */
const struct dev_type_info dev_types[DT_COUNT] = {
    [DT_AIR] = {"AirQualityObserved", "sthjj", {2, 2, 2}, 60, DOOR_JSON, 0, 0},
    [DT_PARKING] = {"ParkingSpot", "jjzd", {30, 14, 4}, 30, DOOR_LINE, 10, 60},
    [DT_WATER] = {"WaterLevelSensor", "slj", {3, 4, 7}, 30, DOOR_LINE, 0, 0},
    [DT_MANHOLE] = {"ManholeCover", "szgy", {9, 9, 6}, 300, DOOR_MQTT, 0, 0},
    [DT_LIGHT] = {"Streetlight", "szgy", {14, 18, 28}, 60, DOOR_LINE, 0, 0},
    [DT_SMOKE] = {"SmokeDetector", "xfzd", {12, 11, 8}, 300, DOOR_MQTT, 2, 8},
    [DT_METER] = {"SmartMeter", "gdgs", {16, 20, 26}, 60, DOOR_LINE, 0, 0},
    [DT_PIPE] = {"PipePressureSensor", "water", {5, 5, 5}, 30, DOOR_LINE, 0, 0},
    [DT_VEHICLE] = {"Vehicle", "jjzd", {9, 8, 6}, 5, DOOR_JSON, 0, 0},
};

const char *const vehicle_class_names[VC_COUNT] = {"出租车", "物流货车", "旅游包车", "危险货物运输"};

/* Devices per km² by district kind: the four 区 hold about half the city's. */
static const double density[DISTRICT_KINDS] = {8, 5, 1};

static size_t slot(size_t district, int type)
{
    return district * DT_COUNT + (size_t)type;
}

/* How many devices of each type each district gets. */
static size_t plan_counts(catalog *c, const city *ct, size_t total)
{
    double wsum = 0;
    for (size_t i = 0; i < ct->n; i++)
        wsum += ct->d[i].area_km2 * density[ct->d[i].kind];
    size_t n = 0;
    for (size_t i = 0; i < ct->n; i++) {
        const struct district *d = &ct->d[i];
        double nd = wsum > 0 ? total * d->area_km2 * density[d->kind] / wsum : (double)total / ct->n, ssum = 0;
        for (int t = 0; t < DT_COUNT; t++)
            ssum += dev_types[t].share[d->kind];
        for (int t = 0; t < DT_COUNT; t++) {
            size_t k = (size_t)llround(nd * dev_types[t].share[d->kind] / ssum);
            c->count[slot(i, t)] = k ? k : 1;
            c->base[slot(i, t)] = n;
            n += c->count[slot(i, t)];
        }
    }
    return n;
}

/* A point near (x, y), within sigma metres, still inside the district. */
static void near_point(const struct district *d, rng *r, double x, double y, double sigma, double *lon, double *lat)
{
    for (int tries = 0; tries < 20; tries++) {
        double px = x + rng_normal(r) * sigma / (M_PER_DEG_LAT * cos(y * M_PI / 180));
        double py = y + rng_normal(r) * sigma / M_PER_DEG_LAT;
        if (city_contains(d, px, py)) {
            *lon = px;
            *lat = py;
            return;
        }
    }
    *lon = x;
    *lat = y;
}

static void place(catalog *c, const city *ct, size_t di, int t, rng *r)
{
    const struct dev_type_info *ti = &dev_types[t];
    const struct district *d = &ct->d[di];
    size_t first = c->base[slot(di, t)], k = c->count[slot(di, t)], left = 0;
    double sx = 0, sy = 0;
    uint32_t site = 0;
    for (size_t j = 0; j < k; j++) {
        struct device *dv = &c->dev[first + j];
        dv->n = (uint32_t)j + 1;
        dv->type = (uint8_t)t;
        dv->district = (uint8_t)di;
        if (ti->site_max == 0) {
            city_random_point(d, r, &dv->lon, &dv->lat);
            continue;
        }
        if (left == 0) { /* a new parking lot or building */
            city_random_point(d, r, &sx, &sy);
            left = (size_t)ti->site_min + rng_below(r, (uint64_t)(ti->site_max - ti->site_min + 1));
            site++;
        }
        left--;
        dv->site = site;
        near_point(d, r, sx, sy, t == DT_PARKING ? 30 : 12, &dv->lon, &dv->lat);
    }
}

static void pick_vehicle_classes(catalog *c, rng *r)
{
    for (size_t i = 0; i < c->n; i++) {
        struct device *d = &c->dev[i];
        if (d->type != DT_VEHICLE)
            continue;
        double u = rng_unit(r);
        /* The first vehicle of each district is a hazardous-goods truck, so
         * every district has one (两客一危 supervision). */
        d->vclass = d->n == 1 || u < 0.15 ? VC_HAZMAT : u < 0.25 ? VC_COACH : u < 0.60 ? VC_TRUCK : VC_TAXI;
    }
}

static void pick_mqtt(catalog *c, size_t mqtt_max)
{
    size_t candidates = 0;
    for (size_t i = 0; i < c->ndistricts; i++)
        for (int t = 0; t < DT_COUNT; t++)
            if (dev_types[t].door == DOOR_MQTT)
                candidates += c->count[slot(i, t)];
    double f = candidates ? fmin(1.0, (double)mqtt_max / (double)candidates) : 0;
    for (size_t i = 0; i < c->n; i++) {
        struct device *d = &c->dev[i];
        size_t k = c->count[slot(d->district, d->type)];
        if (dev_types[d->type].door == DOOR_MQTT && d->n <= (size_t)floor(f * (double)k) &&
            c->mqtt_devices < mqtt_max) {
            d->flags |= DEV_MQTT;
            c->mqtt_devices++;
        }
    }
}

int catalog_build(catalog *c, const city *ct, size_t total, size_t mqtt_max, uint64_t seed)
{
    memset(c, 0, sizeof *c);
    if (ct->n > UINT8_MAX)
        return -1; /* struct device keeps its district in a byte */
    c->ndistricts = ct->n;
    c->base = calloc(ct->n * DT_COUNT, sizeof *c->base);
    c->count = calloc(ct->n * DT_COUNT, sizeof *c->count);
    if (!c->base || !c->count)
        goto fail;
    c->n = plan_counts(c, ct, total);
    c->dev = calloc(c->n, sizeof *c->dev);
    if (!c->dev)
        goto fail;
    rng r;
    rng_seed(&r, seed);
    for (size_t i = 0; i < ct->n; i++)
        for (int t = 0; t < DT_COUNT; t++)
            place(c, ct, i, t, &r);
    pick_vehicle_classes(c, &r);
    pick_mqtt(c, mqtt_max);
    return 0;
fail:
    catalog_free(c);
    return -1;
}

void catalog_free(catalog *c)
{
    for (size_t i = 0; c->dev && i < c->n; i++)
        free(c->dev[i].token);
    free(c->dev);
    free(c->base);
    free(c->count);
    memset(c, 0, sizeof *c);
}

const char *catalog_id(const city *ct, const struct device *d, char out[160])
{
    snprintf(out, 160, "urn:ngsi-ld:%s:jz-%s-%u", dev_types[d->type].name, ct->d[d->district].code, d->n);
    return out;
}

struct device *catalog_find(const catalog *c, const city *ct, const char *id)
{
    static const char prefix[] = "urn:ngsi-ld:";
    if (strncmp(id, prefix, sizeof prefix - 1) != 0)
        return NULL;
    const char *type = id + sizeof prefix - 1, *colon = strchr(type, ':');
    if (!colon || strncmp(colon, ":jz-", 4) != 0)
        return NULL;
    const char *code = colon + 4, *dash = strrchr(code, '-');
    if (!dash)
        return NULL;
    int t = 0;
    while (t < DT_COUNT && (strlen(dev_types[t].name) != (size_t)(colon - type) ||
                            strncmp(dev_types[t].name, type, (size_t)(colon - type)) != 0))
        t++;
    size_t di = 0;
    while (di < ct->n && (strlen(ct->d[di].code) != (size_t)(dash - code) ||
                          strncmp(ct->d[di].code, code, (size_t)(dash - code)) != 0))
        di++;
    char *end;
    unsigned long n = strtoul(dash + 1, &end, 10);
    if (t == DT_COUNT || di == ct->n || *end || n == 0 || n > c->count[slot(di, t)])
        return NULL;
    return &c->dev[c->base[slot(di, t)] + n - 1];
}

/* The registration record of one device. */
static json_t *entity_json(const city *ct, const struct device *d)
{
    char id[160], name[128];
    const struct district *dd = &ct->d[d->district];
    json_t *props = json_object();
    switch (d->type) {
    case DT_PARKING:
        snprintf(name, sizeof name, "%s第%u停车场", dd->name, d->site);
        json_object_set_new(props, "lot", json_string(name));
        break;
    case DT_SMOKE:
        snprintf(name, sizeof name, "%s第%u号楼", dd->name, d->site);
        json_object_set_new(props, "building", json_string(name));
        break;
    case DT_AIR:
        snprintf(name, sizeof name, "%s空气质量监测站%u", dd->name, d->n);
        json_object_set_new(props, "name", json_string(name));
        break;
    case DT_VEHICLE:
        snprintf(name, sizeof name, "豫H·%c%04u", "ABCDEFGHJK"[d->district % 10], d->n % 10000);
        json_object_set_new(props, "plate", json_string(name));
        json_object_set_new(props, "category", json_string(vehicle_class_names[d->vclass]));
        json_object_set_new(props, "hazmat", json_boolean(d->vclass == VC_HAZMAT));
        json_object_set_new(props, "corridor", json_string(dd->code)); /* licensed to run in its district */
        break;
    default:
        break;
    }
    json_t *e = json_pack("{s:s, s:s, s:[f, f], s:s, s:o}", "id", catalog_id(ct, d, id), "type",
                          dev_types[d->type].name, "location", d->lon, d->lat, "department",
                          dev_types[d->type].department, "properties", props);
    if (e && (d->flags & DEV_MQTT))
        json_object_set_new(e, "device", json_true());
    return e;
}

static int keep_token(struct device *d, const char *token)
{
    if (!token)
        return -1;
    free(d->token);
    d->token = strdup(token);
    return d->token ? 0 : -1;
}

/* Reads one bulk answer: errors by index, tokens by id. */
static void read_bulk_answer(catalog *c, const city *ct, size_t first, size_t k, json_t *ans,
                             struct register_stats *st)
{
    for (size_t j = 0; j < k; j++)
        c->dev[first + j].flags |= DEV_REGISTERED;
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(ans, "errors"), i, e) {
        size_t idx = (size_t)json_integer_value(json_object_get(e, "index"));
        const char *code = json_string_value(json_object_get(e, "code"));
        if (idx >= k)
            continue;
        if (code && !strcmp(code, "conflict")) {
            st->existing++;
            continue;
        }
        c->dev[first + idx].flags &= (uint8_t)~DEV_REGISTERED;
        if (st->failed++ < 5)
            sim_log(SIM_WARN, "register_failed", "index=%zu code=%s msg=\"%s\"", first + idx, code,
                    json_string_value(json_object_get(e, "message")));
    }
    st->created += (size_t)json_integer_value(json_object_get(ans, "created"));
    json_array_foreach(json_object_get(ans, "tokens"), i, e) {
        struct device *d = catalog_find(c, ct, json_string_value(json_object_get(e, "id")));
        if (d && keep_token(d, json_string_value(json_object_get(e, "token"))) == 0)
            st->tokens++;
    }
}

static int register_batch(catalog *c, const city *ct, api *a, size_t first, size_t k, struct register_stats *st,
                          char *err, size_t errlen)
{
    json_t *list = json_array();
    for (size_t j = 0; j < k; j++)
        json_array_append_new(list, entity_json(ct, &c->dev[first + j]));
    json_t *body = json_pack("{s:o}", "entities", list);
    int status;
    json_t *ans = api_json(a, "POST", "/api/v1/entities", body, &status, err, errlen);
    json_decref(body);
    if (!ans)
        return -1;
    int rc = 0;
    if (status == 200) {
        read_bulk_answer(c, ct, first, k, ans, st);
    } else {
        snprintf(err, errlen, "POST /api/v1/entities: HTTP %d: %.300s", status,
                 json_string_value(json_object_get(json_object_get(ans, "error"), "message")));
        rc = -1;
    }
    json_decref(ans);
    return rc;
}

/* A device that existed already has a token we never saw: issue a new one. */
static int reissue_tokens(catalog *c, const city *ct, api *a, struct register_stats *st, char *err, size_t errlen)
{
    for (size_t i = 0; i < c->n; i++) {
        struct device *d = &c->dev[i];
        if (!(d->flags & DEV_MQTT) || !(d->flags & DEV_REGISTERED) || d->token)
            continue;
        char id[160], path[200];
        int status;
        snprintf(path, sizeof path, "/api/v1/entities/%s/token", catalog_id(ct, d, id));
        json_t *ans = api_json(a, "POST", path, NULL, &status, err, errlen);
        if (!ans)
            return -1;
        if (status == 201 && keep_token(d, json_string_value(json_object_get(ans, "token"))) == 0)
            st->tokens++;
        else
            sim_log(SIM_WARN, "token_failed", "entity=%s status=%d", id, status);
        json_decref(ans);
    }
    return 0;
}

int catalog_register(catalog *c, const city *ct, api *a, struct register_stats *st, char *err, size_t errlen)
{
    memset(st, 0, sizeof *st);
    for (size_t first = 0; first < c->n; first += REGISTER_BATCH) {
        size_t k = c->n - first < REGISTER_BATCH ? c->n - first : REGISTER_BATCH;
        if (register_batch(c, ct, a, first, k, st, err, errlen) != 0)
            return -1;
    }
    return reissue_tokens(c, ct, a, st, err, errlen);
}
