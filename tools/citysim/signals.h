/* signals — what each device measures, as a function of local time (UTC+8),
 * season, its own state and the incidents under way. Pure models: no I/O.
 *
 *   traffic, parking   peaks at 8–9 and 17–19, quiet at night
 *   air quality        worse at night and on winter mornings, ozone on summer
 *                      afternoons; AQI from PM2.5/PM10 (HJ 633-2012 IAQI)
 *   water level        a base level with noise; a rainstorm raises it above 3.2 m
 *   smart meters       monotonic kWh with a day/night household load
 *   streetlights       on from dusk to dawn (sunset moves with the season)
 *   vehicles           a random walk inside their district (their corridor)
 *
 * Each device's model state lives in its struct device (m[], DEV_STATE). */
#ifndef CITYSIM_SIGNALS_H
#define CITYSIM_SIGNALS_H

#include <stdint.h>

#include "catalog.h"
#include "city.h"
#include "incident.h"
#include "rng.h"

#define SIGNAL_FIELDS_MAX 6

struct sim_time {
    int64_t now_ms;
    double hour;   /* local hour of day, 0 <= hour < 24 */
    double winter; /* 1 in mid-January, 0 in mid-July */
};

enum field_kind { FIELD_NUM, FIELD_INT, FIELD_BOOL };

struct field {
    const char *name; /* static */
    enum field_kind kind;
    double v;
};

struct reading {
    struct field f[SIGNAL_FIELDS_MAX];
    int nf;
    int has_location;
    double lon, lat;
};

void sim_time_at(struct sim_time *t, int64_t now_ms);
/* Gives every device its initial model state. */
void signal_init(catalog *c, rng *r);
/* The next reading of d, dt_s seconds after its previous one; advances d's
 * state (meter counter, vehicle position, ...). */
void signal_next(struct device *d, const city *ct, const incidents *inc, const struct sim_time *t, double dt_s,
                 rng *r, struct reading *out);

#endif
