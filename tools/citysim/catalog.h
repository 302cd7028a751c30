/* catalog — the devices citysim plays: which ones exist, where, and their
 * registration with citybrain (bulk POST /api/v1/entities, idempotent).
 *
 * The catalogue is a pure function of (districts, --devices, --seed): a
 * restart builds the same ids at the same places, so registering again meets
 * 409 conflicts, which count as registered. Devices are stored in one array
 * ordered by (district, type, n), so an id maps back to its slot in O(1)
 * (catalog_find) and a million devices cost ~80 MB.
 *
 * Ids: urn:ngsi-ld:<Type>:jz-<district code>-<n>, n from 1 within (type,
 * district). Every district gets at least one device of every type. */
#ifndef CITYSIM_CATALOG_H
#define CITYSIM_CATALOG_H

#include <stddef.h>
#include <stdint.h>

#include "api.h"
#include "city.h"

enum dev_type {
    DT_AIR, DT_PARKING, DT_WATER, DT_MANHOLE, DT_LIGHT, DT_SMOKE, DT_METER, DT_PIPE, DT_VEHICLE, DT_COUNT
};

/* How a type's readings reach citybrain. DOOR_MQTT types go by line protocol
 * when MQTT is off or the device is beyond the --mqtt-devices cap. */
enum door { DOOR_LINE, DOOR_JSON, DOOR_MQTT };

struct dev_type_info {
    const char *name;               /* FIWARE Smart Data Models type */
    const char *department;         /* owning department's code */
    double share[DISTRICT_KINDS];   /* relative share of a district's devices, by its kind */
    int period_s;                   /* seconds between reports (below the type's heartbeat) */
    enum door door;
    int site_min, site_max;         /* devices per site (parking lot, building); 0: no sites */
};

extern const struct dev_type_info dev_types[DT_COUNT];

enum vehicle_class { VC_TAXI, VC_TRUCK, VC_COACH, VC_HAZMAT, VC_COUNT };
extern const char *const vehicle_class_names[VC_COUNT]; /* 出租车, ..., 危险货物运输 */

enum dev_flag {
    DEV_REGISTERED = 1 << 0, /* citybrain has it (created now or before) */
    DEV_MQTT = 1 << 1,       /* reports over MQTT with its token */
    DEV_OFFLINE = 1 << 2,    /* an incident silenced it */
    DEV_ALARM = 1 << 3,      /* an incident drives its alarm signal */
    DEV_ESCAPE = 1 << 4,     /* a vehicle leaving its district (incident) */
    DEV_STATE = 1 << 5,      /* a two-state model's state: parking occupied, ... */
};

struct device {
    double lon, lat;
    double m[2];     /* the signal model's state (signals.c says what per type) */
    int64_t next_ms; /* when it reports next */
    char *token;     /* MQTT device token; owned, NULL until issued */
    uint32_t n;      /* number within (type, district), from 1 */
    uint32_t site;   /* parking lot or building number within (type, district), from 1; 0: none */
    uint8_t type, district, flags, vclass;
};

typedef struct {
    struct device *dev; /* owned; ordered by (district, type, n) */
    size_t n;
    size_t *base;       /* [district * DT_COUNT + type]: index of its first device; owned */
    size_t *count;      /* same layout: how many; owned */
    size_t ndistricts;
    size_t mqtt_devices;
} catalog;

/* Builds the catalogue for total devices (at least one per type and
 * district) with at most mqtt_max MQTT devices (0: none). 0 or -1 (memory). */
int catalog_build(catalog *c, const city *ct, size_t total, size_t mqtt_max, uint64_t seed);
void catalog_free(catalog *c);
/* Writes d's entity id into out and returns out. */
const char *catalog_id(const city *ct, const struct device *d, char out[160]);
/* The device with this id, or NULL. */
struct device *catalog_find(const catalog *c, const city *ct, const char *id);

struct register_stats {
    size_t created, existing, failed, tokens;
};
/* Registers every device (batches of 10,000) and gets tokens for the MQTT
 * devices (from creation, or issued anew for ones that existed). Devices
 * that could not be registered stay without DEV_REGISTERED and are not
 * played. Returns 0, or -1 with err when citybrain cannot be reached. */
int catalog_register(catalog *c, const city *ct, api *a, struct register_stats *st, char *err, size_t errlen);

#endif
