/* fuzz_series_roll — libFuzzer target for the roll column of a stored chunk
 * (series/series.c: series__roll_build and series__roll_decode).
 *
 * First byte even: the rest is t_min (8 bytes, little-endian, kept within
 * +-2^50 ms like any stored time) and a roll blob as read from SQLite.
 * Decoding must end in 0 or CB_ECORRUPT without reading outside the input;
 * what decodes keeps the contract: 1..SERIES_ROLL_PARTS hour parts and at
 * most SERIES_ROLL_MINUTES minute parts, each aligned, ascending, from
 * t_min's hour (minute) on, none empty.
 * First byte odd: the rest makes the points of one chunk (ascending times
 * inside one window, values m / 10^d for a decimals byte d in 0..4, or any
 * finite double for -1); build, then decode, must give back exactly the
 * rollups of those points (series__rollups), bit for bit. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "series/series_int.h"

#include "require.h"

static struct rollup hours[SERIES_ROLL_PARTS], minutes[SERIES_ROLL_MINUTES];
static struct rollup want_h[SERIES_ROLL_PARTS], want_m[SERIES_ROLL_MINUTES];
static int64_t t[SERIES_CHUNK_MAX];
static double v[SERIES_CHUNK_MAX];
static uint8_t roll[SERIES_ROLL_MAX];

static uint64_t take(const uint8_t **p, const uint8_t *end, size_t n)
{
    uint64_t u = 0;
    for (size_t i = 0; i < n && *p < end; i++)
        u |= (uint64_t)*(*p)++ << (8 * i);
    return u;
}

static void check_parts(const struct rollup *r, uint32_t n, int64_t first, int64_t unit)
{
    for (uint32_t i = 0; i < n; i++) {
        REQUIRE(r[i].bucket % unit == 0 && r[i].bucket >= first);
        REQUIRE(i == 0 || r[i].bucket > r[i - 1].bucket);
        REQUIRE(r[i].count >= 1);
    }
}

static void decode_only(const uint8_t *p, const uint8_t *end)
{
    int64_t t_min = (int64_t)(take(&p, end, 8) & ((1ULL << 51) - 1)) - (1LL << 50);
    uint32_t nh = 99, nm = 99;
    int rc = series__roll_decode(p, (size_t)(end - p), t_min, hours, &nh, minutes, &nm);
    REQUIRE(rc == 0 || rc == CB_ECORRUPT);
    if (rc != 0)
        return;
    REQUIRE(nh >= 1 && nh <= SERIES_ROLL_PARTS && nm <= SERIES_ROLL_MINUTES);
    check_parts(hours, nh, series__floor(t_min, SERIES_ROLLUP_MS), SERIES_ROLLUP_MS);
    check_parts(minutes, nm, series__floor(t_min, SERIES_ROLLUP_1M_MS), SERIES_ROLLUP_1M_MS);
}

static int same(const struct rollup *a, const struct rollup *b, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        if (a[i].bucket != b[i].bucket || a[i].count != b[i].count || memcmp(&a[i].sum, &b[i].sum, 8) ||
            memcmp(&a[i].min, &b[i].min, 8) || memcmp(&a[i].max, &b[i].max, 8) || memcmp(&a[i].last, &b[i].last, 8))
            return 0;
    return 1;
}

static void build_and_decode(const uint8_t *p, const uint8_t *end)
{
    static const double pow10[] = {1, 10, 100, 1000, 10000};
    int d = (int)(take(&p, end, 1) % 6) - 1;
    int64_t window = (int64_t)(take(&p, end, 2) % 500000) * SERIES_WINDOW_MS; /* up to ~114 years on */
    int64_t at = window + (int64_t)(take(&p, end, 3) % (uint64_t)SERIES_WINDOW_MS);
    size_t n = 0;
    while (n < SERIES_CHUNK_MAX && p < end && at < window + SERIES_WINDOW_MS) {
        t[n] = at;
        if (d >= 0) {
            v[n] = (double)(int16_t)take(&p, end, 2) / pow10[d];
        } else {
            uint64_t bits = take(&p, end, 8);
            memcpy(&v[n], &bits, 8);
            if (!isfinite(v[n]))
                v[n] = (double)(bits >> 12);
        }
        n++;
        at += 1 + (int64_t)(take(&p, end, 2) % 120000);
    }
    if (n == 0)
        return;
    uint32_t nh, nh2, nm2;
    size_t len = series__roll_build(t, v, n, d, hours, &nh, roll);
    REQUIRE(len >= 2 && len <= SERIES_ROLL_MAX);
    uint32_t wh = series__rollups(t, v, n, d, SERIES_ROLLUP_MS, want_h, SERIES_ROLL_PARTS);
    uint32_t wm = series__rollups(t, v, n, d, SERIES_ROLLUP_1M_MS, want_m, SERIES_ROLL_MINUTES);
    REQUIRE(nh == wh && same(hours, want_h, wh));
    REQUIRE(series__roll_decode(roll, len, t[0], hours, &nh2, minutes, &nm2) == 0);
    REQUIRE(nh2 == wh && same(hours, want_h, wh));
    REQUIRE(nm2 == 0 || (nm2 == wm && same(minutes, want_m, wm))); /* 0: a sparse chunk keeps no minute parts */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    if (data[0] & 1)
        build_and_decode(data + 1, data + size);
    else
        decode_only(data + 1, data + size);
    return 0;
}
