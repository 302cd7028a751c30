/* intake — the people who report the city's problems as cases:
 *   hotline  12345 operators taking calls (POST /api/v1/cases, channel
 *            hotline, with the caller's name and phone, the hotline key)
 *   grid     grid workers on their rounds (channel grid, their district's key)
 *   citizen  citizens on their phones: Open311 GeoReport v2 (POST
 *            /open311/v2/requests.json, form-encoded, api_key the citizen
 *            app's key) when citybrain serves it (answering the service
 *            definition's required attributes from the description's words:
 *            "破损" → damaged), else POST /api/v1/cases with channel citizen
 *            and the operator's key (the hotline reports as hotline only)
 * about per_min reports a minute on average (exponential gaps), split
 * hotline 45 % / grid 35 % / citizen 20 %, in districts weighted by kind
 * (the centre reports most), at random points inside them, with the
 * phrasebook's descriptions and addresses. */
#ifndef CITYSIM_INTAKE_H
#define CITYSIM_INTAKE_H

#include <stdint.h>

#include "api.h"
#include "city.h"
#include "rng.h"
#include "staff.h"

enum channel { CH_HOTLINE, CH_GRID, CH_CITIZEN, CH_COUNT };

struct intake_counters {
    unsigned long filed[CH_COUNT]; /* created (duplicates included) */
    unsigned long open311;         /* citizen reports that went through Open311 */
    unsigned long failed;          /* refused or unanswered */
};

typedef struct {
    double per_min;  /* 0: none */
    int64_t next_ms; /* the next report */
    int open311;     /* -1: not asked yet; 0: citybrain has no Open311; 1: it has */
    json_t *services; /* Open311 service code -> its attributes, as fetched; owned */
    rng r;
    struct intake_counters n;
} intake;

void intake_init(intake *in, double per_min, uint64_t seed, int64_t now_ms);
void intake_free(intake *in);
/* Files the reports due by now_ms; every_channel (--once): one through each
 * channel instead. Failures are logged and counted; the run goes on. */
void intake_tick(intake *in, api *a, const city *ct, const staff *st, int64_t now_ms, int every_channel);
const char *intake_channel_name(enum channel ch);

#endif
