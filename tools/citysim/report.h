/* report — one round of readings: every device that is due measures
 * (signals.c) and its reading goes through its door — line protocol batches
 * (POST /api/v1/write?precision=ms, ≤ REPORT_BATCH lines), JSON batches
 * (POST /api/v1/ingest, air quality and vehicles, which carry a location),
 * or MQTT (city/<id>/telemetry with the device's token). Counts what
 * citybrain accepted and rejected. */
#ifndef CITYSIM_REPORT_H
#define CITYSIM_REPORT_H

#include <stddef.h>
#include <stdint.h>

#include "api.h"
#include "catalog.h"
#include "city.h"
#include "incident.h"
#include "mqttpub.h"
#include "rng.h"

#define REPORT_BATCH 5000

/* Everything a round reads and changes; owned by main. */
struct sim {
    api *api;
    city city;
    catalog cat;
    incidents inc;
    mqttpub *mqtt; /* NULL: MQTT off, MQTT devices use line protocol */
    rng r;
    double interval_s;
};

struct report_stats {
    size_t devices;            /* that reported */
    size_t readings;           /* attribute values sent, all doors */
    size_t accepted, rejected; /* by citybrain over HTTP */
    size_t mqtt_messages;      /* queued for the broker */
    size_t failed_requests;    /* transport errors, unexpected statuses */
};

/* Sends the readings of every device due at now_ms (all registered ones when
 * everyone is set) and schedules their next report. Requests that fail are
 * counted and logged; the round goes on. */
void report_round(struct sim *s, int64_t now_ms, int everyone, struct report_stats *st);

#endif
