/* incident — the things that go wrong in the city, now and then, so the
 * signals have something to tell: a rainstorm over one district (water
 * levels rise above 3.2 m for minutes), a manhole cover tilting open (18–40°),
 * smoke alarms in one grid cell (at least 3 detectors when the cell has
 * them), a hazardous-goods truck (urn:ngsi-ld:Vehicle:jz-<district>-1)
 * leaving its corridor (its district), a river gauge falling silent for
 * 20 minutes. Each start is logged (event=incident). The demo's alarm rules
 * (scripts/demo-rules.py) match each of them.
 *
 * Incidents act on devices through their flags (DEV_ALARM, DEV_OFFLINE,
 * DEV_ESCAPE) and, for rain, through incident_rain(); signals.c reads both.
 * At most one incident of each kind runs at a time. */
#ifndef CITYSIM_INCIDENT_H
#define CITYSIM_INCIDENT_H

#include <stddef.h>
#include <stdint.h>

#include "api.h"
#include "catalog.h"
#include "city.h"
#include "rng.h"

enum incident_kind { INC_RAINSTORM, INC_MANHOLE, INC_SMOKE, INC_HAZMAT, INC_OFFLINE, INC_KINDS };

struct incident {
    int active;
    int64_t start_ms, end_ms;
    int district;         /* rainstorm: where */
    struct device **devs; /* the devices it drives; owned array, borrowed devices */
    size_t ndevs;
};

typedef struct {
    struct incident k[INC_KINDS];
    int64_t next_ms; /* when the next one may start */
    double every_s;  /* mean seconds between starts; 0: never */
    rng r;
} incidents;

void incidents_init(incidents *in, double every_s, uint64_t seed, int64_t now_ms);
void incidents_free(incidents *in);
/* Ends incidents whose time is up and, when one is due, starts another. The
 * smoke incident asks citybrain which detectors share a grid cell. */
void incidents_tick(incidents *in, catalog *c, const city *ct, api *a, int64_t now_ms);
/* For --once: starts at once the incidents a single round can show — a
 * rainstorm already at its peak, an open manhole, smoke in one grid cell
 * (a truck needs minutes to leave its corridor, a silent device minutes to
 * be missed). */
void incidents_start_now(incidents *in, catalog *c, const city *ct, api *a, int64_t now_ms);
/* How far a rainstorm over district has got, 0 (none) to 1 (peak). */
double incident_rain(const incidents *in, int district, int64_t now_ms);
/* "rainstorm:温县,smoke:3" for the status line; "-" when none. */
void incidents_summary(const incidents *in, const city *ct, char *out, size_t outlen);
const char *incident_name(enum incident_kind k);

#endif
