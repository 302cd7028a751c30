/* fuzz_calendar — libFuzzer target for the city calendar (cases/calendar.c).
 *
 * The input is a calendar file (city/calendar-*.json). Loading must end in 0
 * or CB_EINVALID_FIELD; a calendar that loads must keep the working-time
 * contract from any start: adding N working minutes and measuring back gives
 * N, the result never lies before the start, and measuring is antisymmetric. */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cases/calendar.h"

#include "require.h"

#define MIN_MS 60000LL

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *doc = json_loadb((const char *)data, size, 0, NULL);
    if (!doc)
        return 0;
    calendar *c = calendar_create();
    REQUIRE(c);
    cb_error err;
    int rc = calendar_load_json(c, doc, &err);
    REQUIRE(rc == 0 || rc == CB_EINVALID_FIELD);
    if (rc == 0) {
        uint64_t x = 0x9e3779b97f4a7c15ULL ^ size;
        for (size_t i = 0; i < size && i < 64; i++)
            x = (x ^ data[i]) * 0x100000001b3ULL;
        for (int i = 0; i < 16; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            int64_t t = 1767196800000LL + (int64_t)(x % (400ULL * 86400)) * 1000; /* 2026 and a bit */
            int64_t minutes = (int64_t)((x >> 24) % 20000);
            int64_t end = calendar_add_working(c, t, minutes);
            if (end == INT64_MAX)
                continue; /* no working day within ten years */
            REQUIRE(end >= t);
            REQUIRE(calendar_working_ms(c, t, end) == minutes * MIN_MS);
            REQUIRE(calendar_working_ms(c, end, t) == -minutes * MIN_MS);
        }
    }
    calendar_free(c);
    json_decref(doc);
    return 0;
}
