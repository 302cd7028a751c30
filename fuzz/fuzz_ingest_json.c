/* fuzz_ingest_json — libFuzzer target for POST /api/v1/ingest bodies
 * (ingest_parse_json) against a small city (fuzz_ingest_city.h).
 *
 * The first byte picks the caller: an operator, or urn:fz:0's device token
 * (which may write only its own entity); the rest is the body. Beyond "does
 * not crash": the report agrees with the batch, every accepted reading decodes
 * back from the batch's WAL encoding with a known entity, a known attribute,
 * a time inside the window and a value of its kind, and no rejection is silent. */
#include "fuzz_ingest_city.h"

#include "core/clock.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!city.in)
        city_open();
    if (size == 0)
        return 0;
    struct principal op = {.role = ROLE_OPERATOR};
    const struct principal *p = data[0] & 1 ? &city.device : &op;
    batch b;
    struct ingest_report rep;
    cb_error err;
    batch_init(&b);
    ingest_report_init(&rep);
    int64_t t0 = clock_now_ms();
    int rc = ingest_parse_json(city.in, (const char *)data + 1, size - 1, p, &b, &rep, &err);
    city_check_parse(rc, &err, &b, &rep, p == &city.device ? city.no[0] : STATE_NONE, t0, clock_now_ms());
    return 0;
}
