/* signals — daily patterns of the city's devices; see signals.h. */
#include "signals.h"

#include <math.h>
#include <time.h>

#define M_PER_DEG_LAT 111320.0
#define LOCAL_OFFSET_S (8 * 3600) /* China Standard Time, UTC+8 */

void sim_time_at(struct sim_time *t, int64_t now_ms)
{
    int64_t local_s = now_ms / 1000 + LOCAL_OFFSET_S;
    time_t secs = (time_t)local_s;
    struct tm tm;
    gmtime_r(&secs, &tm);
    t->now_ms = now_ms;
    t->hour = (double)(local_s % 86400) / 3600.0;
    t->winter = 0.5 + 0.5 * cos(2 * M_PI * (tm.tm_yday - 15) / 365.0);
}

/* A bump centred at hour c of width w, wrapping around midnight. */
static double bump(double h, double c, double w)
{
    double d = fabs(h - c);
    if (d > 12)
        d = 24 - d;
    return exp(-0.5 * (d / w) * (d / w));
}

static double clamp(double v, double lo, double hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

static double round_to(double v, double step)
{
    return round(v / step) * step;
}

/* Rush hours: 8–9 in the morning, 17–19 in the evening. */
static double rush(double h)
{
    return fmax(bump(h, 8.5, 0.7), bump(h, 18.0, 1.0));
}

/* 0 at night, 1 from about 8 to 21, smooth in between. */
static double daytime(double h)
{
    return clamp((h - 6) / 2, 0, 1) * clamp((23 - h) / 2, 0, 1);
}

static void put(struct reading *out, const char *name, enum field_kind kind, double v)
{
    out->f[out->nf++] = (struct field){name, kind, v};
}

void signal_init(catalog *c, rng *r)
{
    for (size_t i = 0; i < c->n; i++) {
        struct device *d = &c->dev[i];
        switch (d->type) {
        case DT_AIR: /* m0: the station's level against the district's; m1: log-noise */
            d->m[0] = rng_range(r, 0.85, 1.2);
            break;
        case DT_WATER: /* m0: base level (m); m1: noise */
            d->m[0] = rng_range(r, 0.4, 2.5);
            break;
        case DT_MANHOLE: /* m0: resting tilt (deg); m1: tilt while open */
            d->m[0] = rng_range(r, 0.2, 1.5);
            d->m[1] = rng_range(r, 18, 40);
            break;
        case DT_LIGHT: /* m0: rated power (W); m1: 1 for a failed lamp */
            d->m[0] = 60 + 10 * (double)rng_below(r, 20);
            d->m[1] = rng_unit(r) < 0.01;
            break;
        case DT_SMOKE: /* m0: battery (%) */
            d->m[0] = rng_range(r, 55, 100);
            break;
        case DT_METER: /* m0: kWh counter; m1: the household's load scale (kW) */
            d->m[0] = rng_range(r, 500, 20000);
            d->m[1] = rng_range(r, 0.5, 3.5);
            break;
        case DT_PIPE: /* m0: the station's offset (MPa) */
            d->m[0] = rng_range(r, -0.03, 0.03);
            break;
        case DT_VEHICLE: /* m0: heading (radians); m1: speed (km/h) */
            d->m[0] = rng_range(r, 0, 2 * M_PI);
            break;
        case DT_PARKING: /* DEV_STATE: occupied */
            if (rng_unit(r) < 0.5)
                d->flags |= DEV_STATE;
            break;
        default:
            break;
        }
    }
}

/* IAQI from a concentration by the HJ 633-2012 breakpoints (24 h). */
static double iaqi(double c, const double *bp)
{
    static const double index[] = {0, 50, 100, 150, 200, 300, 400, 500};
    for (int i = 1; i < 8; i++)
        if (c <= bp[i])
            return index[i - 1] + (index[i] - index[i - 1]) * (c - bp[i - 1]) / (bp[i] - bp[i - 1]);
    return 500;
}

static void air(struct device *d, const city *ct, const struct sim_time *t, rng *r, struct reading *out)
{
    static const double pm25_bp[] = {0, 35, 75, 115, 150, 250, 350, 500};
    static const double pm10_bp[] = {0, 50, 150, 250, 350, 420, 500, 600};
    double h = t->hour, w = t->winter;
    /* Night and early morning trap pollution (inversion), winter mornings
     * most; each district drifts on its own slow wave. */
    double diurnal = 1 + 0.35 * cos(2 * M_PI * (h - 3) / 24) + 0.4 * w * bump(h, 8, 1.5) + 0.15 * rush(h);
    double wave = 1 + 0.15 * sin((double)t->now_ms / 3.6e6 / 3 + d->district);
    d->m[1] = 0.9 * d->m[1] + 0.05 * rng_normal(r);
    double kind = ct->d[d->district].kind == DISTRICT_RURAL ? 0.85 : 1.0;
    double pm25 = (30 + 70 * w) * diurnal * wave * kind * d->m[0] * exp(d->m[1]);
    double pm10 = pm25 * (1.5 + 0.1 * rng_normal(r)) + 10;
    double no2 = (15 + 35 * (0.3 + rush(h))) * d->m[0] + 3 * rng_normal(r);
    double o3 = 20 + 120 * bump(h, 14.5, 2.5) * (1 - 0.6 * w) + 5 * rng_normal(r);
    put(out, "pm25", FIELD_NUM, round_to(pm25, 0.1));
    put(out, "pm10", FIELD_NUM, round_to(pm10, 0.1));
    put(out, "no2", FIELD_NUM, round_to(fmax(1, no2), 0.1));
    put(out, "o3", FIELD_NUM, round_to(fmax(1, o3), 0.1));
    put(out, "aqi", FIELD_INT, ceil(fmax(iaqi(pm25, pm25_bp), iaqi(pm10, pm10_bp))));
}

/* Occupancy follows a target that peaks with the rush hours: a spot fills
 * with probability k*p and empties with k*(1-p), so p is its long-run share. */
static void parking(struct device *d, const city *ct, const struct sim_time *t, double dt, rng *r,
                    struct reading *out)
{
    double h = t->hour;
    double p = 0.15 + 0.45 * daytime(h) + 0.35 * rush(h);
    if (ct->d[d->district].kind != DISTRICT_CENTRE)
        p -= 0.15;
    p = clamp(p, 0.05, 0.97);
    double k = 1 - exp(-dt / 900);
    int occupied = (d->flags & DEV_STATE) != 0;
    if (rng_unit(r) < (occupied ? k * (1 - p) : k * p))
        d->flags ^= DEV_STATE;
    put(out, "occupied", FIELD_INT, (d->flags & DEV_STATE) != 0);
}

static void water(struct device *d, const incidents *inc, const struct sim_time *t, rng *r, struct reading *out)
{
    d->m[1] = 0.8 * d->m[1] + 0.01 * rng_normal(r);
    /* Each station's rise differs with its place on the river; at its peak a
     * rainstorm lifts every station of the district above the 3.2 m warning
     * level (the demo's alarm rule), some well above. */
    double place = fmod(d->n * 0.618, 1.0);
    double peak = fmax(0.8 + 0.8 * place, 3.3 + 0.6 * place - d->m[0]);
    double rise = incident_rain(inc, d->district, t->now_ms) * peak;
    double level = d->m[0] + 0.03 * sin(2 * M_PI * t->hour / 24) + d->m[1] + rise;
    put(out, "level_m", FIELD_NUM, round_to(fmax(0, level), 0.001));
}

static void manhole(struct device *d, rng *r, struct reading *out)
{
    int open = (d->flags & DEV_ALARM) != 0;
    double tilt = open ? d->m[1] + rng_normal(r) : d->m[0] + 0.15 * fabs(rng_normal(r));
    put(out, "tilt_deg", FIELD_NUM, round_to(tilt, 0.1));
    put(out, "open", FIELD_BOOL, open);
}

static void streetlight(struct device *d, const struct sim_time *t, rng *r, struct reading *out)
{
    /* Jiaozuo: sunset ~17:15 in winter, ~19:40 in summer; sunrise ~7:20 and ~5:15. */
    double sunset = 17.25 + 2.4 * (1 - t->winter), sunrise = 7.3 - 2.1 * (1 - t->winter);
    int on = t->hour >= sunset - 0.15 || t->hour < sunrise + 0.15;
    double power = !on ? 0.8 : d->m[1] > 0 ? 0 : d->m[0] * (1 + 0.02 * rng_normal(r));
    put(out, "on", FIELD_BOOL, on);
    put(out, "power_w", FIELD_NUM, round_to(power, 0.1));
}

static void smoke(struct device *d, struct reading *out)
{
    d->m[0] = fmax(0, d->m[0] - 0.002);
    put(out, "smoke", FIELD_BOOL, (d->flags & DEV_ALARM) != 0);
    put(out, "battery", FIELD_NUM, round_to(d->m[0], 0.1));
}

static void meter(struct device *d, const struct sim_time *t, double dt, rng *r, struct reading *out)
{
    double h = t->hour;
    double load = d->m[1] * (0.15 + 0.35 * bump(h, 7.5, 1) + 0.25 * bump(h, 12, 1.2) + 0.8 * bump(h, 20, 1.8));
    load *= 1 + 0.1 * rng_normal(r);
    load = fmax(0.02, load);
    d->m[0] += load * dt / 3600;
    put(out, "kwh", FIELD_NUM, round_to(d->m[0], 0.001));
    put(out, "power_kw", FIELD_NUM, round_to(load, 0.001));
}

static void pipe_pressure(struct device *d, const struct sim_time *t, rng *r, struct reading *out)
{
    double h = t->hour;
    double demand = fmax(fmax(bump(h, 7.5, 1), bump(h, 12, 1)), bump(h, 19.5, 1.5));
    double p = 0.38 - 0.07 * demand + d->m[0] + 0.004 * rng_normal(r);
    put(out, "pressure_mpa", FIELD_NUM, round_to(p, 0.001));
}

/* Moves a vehicle dt seconds: a random walk that turns back at its
 * district's border; one leaving its corridor (DEV_ESCAPE) keeps going. */
static void vehicle(struct device *d, const city *ct, const struct sim_time *t, double dt, rng *r,
                    struct reading *out)
{
    const struct district *home = &ct->d[d->district];
    static const double cruise[VC_COUNT] = {38, 45, 60, 50};
    int escaping = (d->flags & DEV_ESCAPE) != 0;
    double congestion = home->kind == DISTRICT_RURAL ? 0.2 : 0.55;
    double speed = cruise[d->vclass] * (1 - congestion * rush(t->hour)) + 6 * rng_normal(r);
    if (!escaping && home->kind != DISTRICT_RURAL && rng_unit(r) < 0.12)
        speed = 0; /* at a light */
    if (escaping)
        speed = 70 + 5 * rng_normal(r);
    else
        d->m[0] += 0.35 * rng_normal(r);
    speed = clamp(speed, 0, 110);
    double m = speed / 3.6 * dt, coslat = cos(d->lat * M_PI / 180);
    double x = d->lon + m * sin(d->m[0]) / (M_PER_DEG_LAT * coslat), y = d->lat + m * cos(d->m[0]) / M_PER_DEG_LAT;
    if (escaping || city_contains(home, x, y)) {
        d->lon = x;
        d->lat = y;
    } else { /* the border (or back from an escape): turn towards the middle */
        d->m[0] = atan2((home->cx - d->lon) * coslat, home->cy - d->lat) + 0.4 * rng_normal(r);
        if (!city_contains(home, d->lon, d->lat)) {
            d->lon += m * sin(d->m[0]) / (M_PER_DEG_LAT * coslat);
            d->lat += m * cos(d->m[0]) / M_PER_DEG_LAT;
        }
    }
    d->m[1] = speed;
    double heading = fmod(d->m[0] * 180 / M_PI, 360);
    put(out, "speed_kmh", FIELD_NUM, round_to(speed, 0.1));
    put(out, "heading", FIELD_NUM, round_to(heading < 0 ? heading + 360 : heading, 0.1));
    out->has_location = 1;
    out->lon = d->lon;
    out->lat = d->lat;
}

void signal_next(struct device *d, const city *ct, const incidents *inc, const struct sim_time *t, double dt_s,
                 rng *r, struct reading *out)
{
    out->nf = 0;
    out->has_location = 0;
    switch ((enum dev_type)d->type) {
    case DT_AIR: air(d, ct, t, r, out); break;
    case DT_PARKING: parking(d, ct, t, dt_s, r, out); break;
    case DT_WATER: water(d, inc, t, r, out); break;
    case DT_MANHOLE: manhole(d, r, out); break;
    case DT_LIGHT: streetlight(d, t, r, out); break;
    case DT_SMOKE: smoke(d, out); break;
    case DT_METER: meter(d, t, dt_s, r, out); break;
    case DT_PIPE: pipe_pressure(d, t, r, out); break;
    case DT_VEHICLE: vehicle(d, ct, t, dt_s, r, out); break;
    case DT_COUNT: break;
    }
}
