/* fuzz_geojson — arbitrary bytes into the GeoJSON region importer, first as
 * districts, then (if any loaded) as grid cells with derived parents; every
 * region that loads is exported as GeoJSON and round-tripped through WKB.
 * Limits are small so each input stays fast; must never crash or leak. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "geo/region.h"

/* GEOS 3.11's buffer code (run by GEOSMakeValid when repairing a ring) leaks
 * its BufferSubgraph objects when it hits an internal exception on hostile
 * rings — see corpus file geos-buffer-leak.json. That one GEOS frame is
 * suppressed for LeakSanitizer, here rather than in a global file so every
 * other leak still fails the fuzzer and `make asan`. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:geos::operation::buffer::BufferBuilder::createSubgraphs\n";
}

static void round_trip(region_set *set)
{
    region_set *copy = region_set_create();
    for (size_t i = 0; copy && i < region_set_count(set, REGION_DISTRICT); i++) {
        const region *r = region_set_at(set, REGION_DISTRICT, i);
        size_t len = 0;
        unsigned char *wkb = region_to_wkb(set, r, &len);
        struct region_def def = {region_code(r), region_name(r), region_parent(r),
                                 REGION_DISTRICT};
        if (wkb && region_set_add_wkb(copy, &def, wkb, len, NULL) != 0)
            abort(); /* what we wrote must load back */
        free(wkb);
    }
    region_set_free(copy);
    json_decref(region_set_to_geojson(set, REGION_DISTRICT));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    region_set *set = region_set_create();
    if (!set)
        return 0;
    struct region_import_opts o = {.level = REGION_DISTRICT, .repair = size & 1,
                                   .max_bytes = 1 << 20, .max_features = 64,
                                   .max_vertices = 20000};
    const region *hit;
    if (region_set_import_geojson(set, (const char *)data, size, &o, NULL, NULL) == 0) {
        round_trip(set);
        region_locate(set, 0.5, 0.5, REGION_DISTRICT, &hit);
        o.level = REGION_GRID;
        region_set_import_geojson(set, (const char *)data, size, &o, NULL, NULL);
        region_locate(set, 0.5, 0.5, REGION_GRID, &hit);
    }
    region_set_free(set);
    return 0;
}
