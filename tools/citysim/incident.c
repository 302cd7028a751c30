/* incident — rainstorms, open manholes, smoke, a truck off its corridor, a
 * silent device; see incident.h. */
#include "incident.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define M_PER_DEG_LAT 111320.0
#define SMOKE_MIN_DETECTORS 3

/* How long each kind lasts, in seconds. */
static const struct {
    const char *name;
    int duration_s;
} kinds[INC_KINDS] = {
    [INC_RAINSTORM] = {"rainstorm", 600},   [INC_MANHOLE] = {"manhole_open", 900},
    [INC_SMOKE] = {"smoke_alarm", 300},     [INC_HAZMAT] = {"hazmat_off_corridor", 600},
    [INC_OFFLINE] = {"device_offline", 1200},
};

const char *incident_name(enum incident_kind k)
{
    return k < INC_KINDS ? kinds[k].name : "?";
}

static void schedule(incidents *in, int64_t now_ms)
{
    in->next_ms = now_ms + (int64_t)(in->every_s * rng_range(&in->r, 0.5, 1.5) * 1000);
}

void incidents_init(incidents *in, double every_s, uint64_t seed, int64_t now_ms)
{
    memset(in, 0, sizeof *in);
    in->every_s = every_s;
    rng_seed(&in->r, seed);
    schedule(in, now_ms);
}

static void end(struct incident *x, uint8_t flag)
{
    for (size_t i = 0; i < x->ndevs; i++)
        x->devs[i]->flags &= (uint8_t)~flag;
    free(x->devs);
    memset(x, 0, sizeof *x);
}

void incidents_free(incidents *in)
{
    for (int k = 0; k < INC_KINDS; k++)
        free(in->k[k].devs);
    memset(in, 0, sizeof *in);
}

/* A random registered device of type t (in district di, or anywhere: -1). */
static struct device *pick(catalog *c, rng *r, int t, int di)
{
    for (int tries = 0; tries < 1000; tries++) {
        size_t d = di >= 0 ? (size_t)di : (size_t)rng_below(r, c->ndistricts);
        size_t k = c->count[d * DT_COUNT + (size_t)t];
        assert(k > 0); /* catalog_build gives every district every type */
        struct device *dv = &c->dev[c->base[d * DT_COUNT + (size_t)t] + rng_below(r, k)];
        if ((dv->flags & DEV_REGISTERED) && !(dv->flags & (DEV_ALARM | DEV_OFFLINE | DEV_ESCAPE)))
            return dv;
    }
    return NULL;
}

/* Takes the devices an incident drives (an owned copy of the list). */
static int drive(struct incident *x, struct device **devs, size_t n, uint8_t flag, int64_t now_ms)
{
    x->devs = malloc((n ? n : 1) * sizeof *devs);
    if (!x->devs)
        return -1;
    memcpy(x->devs, devs, n * sizeof *devs);
    x->ndevs = n;
    for (size_t i = 0; i < n; i++) {
        devs[i]->flags |= flag;
        devs[i]->next_ms = now_ms; /* alarms are reported at once, not at the next heartbeat */
    }
    return 0;
}

static int start_rainstorm(incidents *in, struct incident *x, const city *ct)
{
    x->district = (int)rng_below(&in->r, ct->n);
    sim_log(SIM_INFO, "incident", "kind=rainstorm district=%s name=%s minutes=%d", ct->d[x->district].code,
            ct->d[x->district].name, kinds[INC_RAINSTORM].duration_s / 60);
    return 0;
}

static int start_manhole(incidents *in, struct incident *x, catalog *c, const city *ct, int64_t now_ms)
{
    struct device *d = pick(c, &in->r, DT_MANHOLE, -1);
    char id[160];
    if (!d || drive(x, &d, 1, DEV_ALARM, now_ms) != 0)
        return -1;
    sim_log(SIM_INFO, "incident", "kind=manhole_open entity=%s district=%s lon=%.6f lat=%.6f mqtt=%d",
            catalog_id(ct, d, id), ct->d[d->district].code, d->lon, d->lat, (d->flags & DEV_MQTT) != 0);
    return 0;
}

/* The smoke detectors citybrain places in the grid cell of d (its own
 * building's when the city has no grid cells). */
static size_t cell_detectors(catalog *c, const city *ct, api *a, struct device *d, struct device **out, size_t max)
{
    char path[256], err[256], grid[64] = "";
    int status;
    snprintf(path, sizeof path, "/api/v1/regions/locate?lon=%.7f&lat=%.7f", d->lon, d->lat);
    json_t *ans = api_json(a, "GET", path, NULL, &status, err, sizeof err);
    const char *code = json_string_value(json_object_get(json_object_get(ans, "grid"), "code"));
    if (code)
        snprintf(grid, sizeof grid, "%s", code);
    json_decref(ans);
    size_t n = 0;
    if (*grid) {
        snprintf(path, sizeof path, "/api/v1/entities?type=SmokeDetector&grid=%s&limit=%zu", grid, max);
        ans = api_json(a, "GET", path, NULL, &status, err, sizeof err);
        size_t i;
        json_t *e;
        json_array_foreach(json_object_get(ans, "entities"), i, e) {
            struct device *x = catalog_find(c, ct, json_string_value(json_object_get(e, "id")));
            if (x && n < max && (x->flags & DEV_REGISTERED) && !(x->flags & DEV_OFFLINE))
                out[n++] = x;
        }
        json_decref(ans);
    }
    if (n == 0) { /* no grid: the detectors of its building */
        size_t first = c->base[d->district * DT_COUNT + DT_SMOKE], k = c->count[d->district * DT_COUNT + DT_SMOKE];
        for (size_t i = first; i < first + k && n < max; i++)
            if (c->dev[i].site == d->site && !(c->dev[i].flags & DEV_OFFLINE))
                out[n++] = &c->dev[i];
    }
    return n;
}

/* A grid cell with at least SMOKE_MIN_DETECTORS detectors (a region_count
 * rule counts them), the best of a few tries otherwise. */
static int start_smoke(incidents *in, struct incident *x, catalog *c, const city *ct, api *a, int64_t now_ms)
{
    struct device *d = NULL, *cell[256];
    size_t n = 0;
    for (int tries = 0; tries < 6 && n < SMOKE_MIN_DETECTORS; tries++) {
        struct device *cand = pick(c, &in->r, DT_SMOKE, -1), *found[256];
        size_t k = cand ? cell_detectors(c, ct, a, cand, found, sizeof found / sizeof found[0]) : 0;
        if (k > n) {
            d = cand;
            n = k;
            memcpy(cell, found, k * sizeof *found);
        }
    }
    char id[160];
    if (n == 0 || drive(x, cell, n, DEV_ALARM, now_ms) != 0)
        return -1;
    sim_log(SIM_INFO, "incident", "kind=smoke_alarm detectors=%zu first=%s district=%s lon=%.6f lat=%.6f", n,
            catalog_id(ct, d, id), ct->d[d->district].code, d->lon, d->lat);
    return 0;
}

/* Metres a vehicle must drive straight away from its district's middle to
 * leave it (INFINITY when it would not within 30 km). */
static double exit_distance(const struct district *home, const struct device *d, double heading)
{
    double coslat = cos(d->lat * M_PI / 180);
    for (double m = 100; m <= 30000; m += 100) {
        double x = d->lon + m * sin(heading) / (M_PER_DEG_LAT * coslat), y = d->lat + m * cos(heading) / M_PER_DEG_LAT;
        if (!city_contains(home, x, y))
            return m;
    }
    return INFINITY;
}

/* Of the first trucks (urn:ngsi-ld:Vehicle:jz-<district>-1, always hazardous
 * goods, so a corridor rule can name them) of a few districts, the one
 * nearest its border leaves. */
static int start_hazmat(incidents *in, struct incident *x, catalog *c, const city *ct, int64_t now_ms)
{
    struct device *best = NULL;
    double best_m = INFINITY, best_heading = 0;
    size_t first = (size_t)rng_below(&in->r, c->ndistricts);
    for (size_t k = 0; k < 4 && k < c->ndistricts; k++) {
        size_t di = (first + k) % c->ndistricts;
        struct device *d = &c->dev[c->base[di * DT_COUNT + DT_VEHICLE]];
        assert(d->n == 1 && d->vclass == VC_HAZMAT);
        if (!(d->flags & DEV_REGISTERED) || (d->flags & (DEV_OFFLINE | DEV_ESCAPE)))
            continue;
        const struct district *home = &ct->d[d->district];
        double heading = atan2((d->lon - home->cx) * cos(d->lat * M_PI / 180), d->lat - home->cy);
        double m = exit_distance(home, d, heading);
        if (m < best_m) {
            best = d;
            best_m = m;
            best_heading = heading;
        }
    }
    char id[160];
    if (!best || drive(x, &best, 1, DEV_ESCAPE, now_ms) != 0)
        return -1;
    best->m[0] = best_heading;
    sim_log(SIM_INFO, "incident", "kind=hazmat_off_corridor entity=%s corridor=%s leaves_in_m=%.0f",
            catalog_id(ct, best, id), ct->d[best->district].code, best_m);
    return 0;
}

static int start_offline(incidents *in, struct incident *x, catalog *c, const city *ct, int64_t now_ms)
{
    /* A river gauge: the demo's nodata rule watches them (scripts/demo-rules.py,
     * 300 s), and their heartbeat is well inside the silence. */
    struct device *d = pick(c, &in->r, DT_WATER, -1);
    char id[160];
    if (!d || drive(x, &d, 1, DEV_OFFLINE, now_ms) != 0)
        return -1;
    sim_log(SIM_INFO, "incident", "kind=device_offline entity=%s district=%s minutes=%d", catalog_id(ct, d, id),
            ct->d[d->district].code, kinds[INC_OFFLINE].duration_s / 60);
    return 0;
}

static const uint8_t end_flag[INC_KINDS] = {
    [INC_RAINSTORM] = 0, [INC_MANHOLE] = DEV_ALARM, [INC_SMOKE] = DEV_ALARM,
    [INC_HAZMAT] = DEV_ESCAPE, [INC_OFFLINE] = DEV_OFFLINE,
};

static int start(incidents *in, enum incident_kind k, catalog *c, const city *ct, api *a, int64_t now_ms)
{
    struct incident *x = &in->k[k];
    int rc = -1;
    switch (k) {
    case INC_RAINSTORM: rc = start_rainstorm(in, x, ct); break;
    case INC_MANHOLE: rc = start_manhole(in, x, c, ct, now_ms); break;
    case INC_SMOKE: rc = start_smoke(in, x, c, ct, a, now_ms); break;
    case INC_HAZMAT: rc = start_hazmat(in, x, c, ct, now_ms); break;
    case INC_OFFLINE: rc = start_offline(in, x, c, ct, now_ms); break;
    case INC_KINDS: break;
    }
    if (rc != 0)
        return rc;
    x->active = 1;
    x->start_ms = now_ms;
    x->end_ms = now_ms + kinds[k].duration_s * 1000LL;
    return 0;
}

void incidents_tick(incidents *in, catalog *c, const city *ct, api *a, int64_t now_ms)
{
    for (int k = 0; k < INC_KINDS; k++) {
        struct incident *x = &in->k[k];
        if (x->active && now_ms >= x->end_ms) {
            sim_log(SIM_INFO, "incident_end", "kind=%s", kinds[k].name);
            for (size_t i = 0; i < x->ndevs; i++)
                x->devs[i]->next_ms = now_ms; /* the all-clear is reported at once too */
            end(x, end_flag[k]);
        }
    }
    if (in->every_s <= 0 || now_ms < in->next_ms)
        return;
    schedule(in, now_ms);
    enum incident_kind idle[INC_KINDS];
    size_t n = 0;
    for (int k = 0; k < INC_KINDS; k++)
        if (!in->k[k].active)
            idle[n++] = (enum incident_kind)k;
    if (n > 0)
        start(in, idle[rng_below(&in->r, n)], c, ct, a, now_ms);
}

void incidents_start_now(incidents *in, catalog *c, const city *ct, api *a, int64_t now_ms)
{
    static const enum incident_kind now[] = {INC_RAINSTORM, INC_MANHOLE, INC_SMOKE};
    for (size_t i = 0; i < sizeof now / sizeof now[0]; i++)
        if (!in->k[now[i]].active)
            start(in, now[i], c, ct, a, now_ms);
    struct incident *rain = &in->k[INC_RAINSTORM];
    if (rain->active) { /* half-way: at the peak */
        int64_t half = (rain->end_ms - rain->start_ms) / 2;
        rain->start_ms -= half;
        rain->end_ms -= half;
    }
}

double incident_rain(const incidents *in, int district, int64_t now_ms)
{
    const struct incident *x = &in->k[INC_RAINSTORM];
    if (!x->active || x->district != district || now_ms < x->start_ms)
        return 0;
    /* Up over the first 25% (gauges pass 3.2 m after 2–3 minutes), held,
     * down over the last 30%. */
    double f = (double)(now_ms - x->start_ms) / (double)(x->end_ms - x->start_ms);
    return f < 0.25 ? f / 0.25 : f < 0.7 ? 1 : fmax(0, (1 - f) / 0.3);
}

void incidents_summary(const incidents *in, const city *ct, char *out, size_t outlen)
{
    size_t used = 0;
    out[0] = 0;
    for (int k = 0; k < INC_KINDS && used < outlen; k++) {
        const struct incident *x = &in->k[k];
        if (!x->active)
            continue;
        int n = k == INC_RAINSTORM ? snprintf(out + used, outlen - used, "%s%s:%s", used ? "," : "",
                                              kinds[k].name, ct->d[x->district].name)
                                   : snprintf(out + used, outlen - used, "%s%s:%zu", used ? "," : "",
                                              kinds[k].name, x->ndevs);
        used += n > 0 ? (size_t)n : 0;
    }
    if (!out[0])
        snprintf(out, outlen, "-");
}
