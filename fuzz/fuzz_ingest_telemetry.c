/* fuzz_ingest_telemetry — libFuzzer target for MQTT telemetry payloads
 * (ingest_parse_telemetry) against a small city (fuzz_ingest_city.h).
 *
 * The first byte picks the topic's entity (one of the city's, an unknown one,
 * an empty or over-long id); the rest is the payload. The checks are those of
 * fuzz_ingest_json, and every accepted reading belongs to the topic's entity. */
#include "fuzz_ingest_city.h"

#include "core/clock.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!city.in)
        city_open();
    if (size == 0)
        return 0;
    static char long_id[ENTITY_ID_MAX * 2];
    if (!long_id[0])
        memset(long_id, 'x', sizeof long_id - 1);
    static const char *const ids[] = {"urn:fz:0", "urn:fz:1", "urn:fz:2", "urn:fz:nobody", "", long_id};
    unsigned pick = data[0] % (sizeof ids / sizeof ids[0]);
    batch b;
    struct ingest_report rep;
    cb_error err;
    batch_init(&b);
    ingest_report_init(&rep);
    int64_t t0 = clock_now_ms();
    int rc = ingest_parse_telemetry(city.in, ids[pick], (const char *)data + 1, size - 1, &b, &rep, &err);
    if (pick >= CITY_ENTITIES)
        REQUIRE(b.count == 0 && (rc != 0 || rep.rejected > 0));
    city_check_parse(rc, &err, &b, &rep, pick < CITY_ENTITIES ? city.no[pick] : STATE_NONE, t0, clock_now_ms());
    return 0;
}
