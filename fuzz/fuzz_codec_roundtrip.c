/* fuzz_codec_roundtrip — libFuzzer target for series/codec's encoder.
 *
 * The input is read as records, each a control byte and its payload:
 *   bit 0     time: 1 = previous t + 1 + the next byte, 0 = the next 8 bytes
 *             as t (raised to previous t + 1 when not after it; the series
 *             ends when no later t exists)
 *   bits 1-2  value: 0 = the next 8 bytes as a double's bits, 1 = the next
 *             2 bytes as an int16 over 10^(bits 3-5 mod 5), 2 = the previous
 *             value again, 3 = the previous value plus an int8 over the same
 * so time jumps, all doubles and the decimal encodings with their switches
 * are all reachable. Every point is appended (the chunk is closed and
 * checked whenever it is full); decoding must give the points back bit for
 * bit, and the appender's stats must match stats recomputed from them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "series/codec.h"

#include "require.h"

#define MAX_POINTS 4096 /* per chunk here; the limit itself is a unit test */

struct input {
    const uint8_t *p;
    size_t left;
};

static int64_t want_t[MAX_POINTS], got_t[MAX_POINTS];
static double want_v[MAX_POINTS], got_v[MAX_POINTS];

static uint64_t take(struct input *in, size_t bytes)
{
    uint64_t u = 0;
    for (size_t i = 0; i < bytes && in->left; i++, in->left--)
        u = u << 8 | *in->p++;
    return u;
}

/* Field by field: memcmp would compare the struct's padding. */
static int same_stats(const struct codec_stats *a, const struct codec_stats *b)
{
    return a->n == b->n && a->t_min == b->t_min && a->t_max == b->t_max &&
           memcmp(&a->min, &b->min, sizeof a->min) == 0 &&
           memcmp(&a->max, &b->max, sizeof a->max) == 0 &&
           memcmp(&a->sum, &b->sum, sizeof a->sum) == 0;
}

static void check_chunk(codec_appender *a, size_t n)
{
    size_t len, got;
    struct codec_stats st;
    const uint8_t *blob = codec_appender_blob(a, &len);
    REQUIRE(codec_decode(blob, len, got_t, got_v, MAX_POINTS, &got, NULL) == 0);
    REQUIRE(got == n);
    REQUIRE(memcmp(want_t, got_t, n * sizeof *got_t) == 0);
    REQUIRE(memcmp(want_v, got_v, n * sizeof *got_v) == 0);
    codec_stats_init(&st);
    for (size_t i = 0; i < n; i++)
        codec_stats_add(&st, got_t[i], got_v[i]);
    REQUIRE(same_stats(&st, codec_appender_stats(a)));
    codec_appender_reset(a);
}

static double scaled(int64_t m, unsigned ctrl)
{
    static const double pow10[5] = {1, 10, 100, 1000, 10000};
    return (double)m / pow10[(ctrl >> 3) % 5];
}

/* The next point, or 0 when the input or the time range is used up. */
static int next_point(struct input *in, size_t n, int64_t *t, double *v)
{
    if (in->left == 0)
        return 0;
    unsigned ctrl = (unsigned)take(in, 1);
    int64_t prev = n ? want_t[n - 1] : 0;
    if (n && prev == INT64_MAX)
        return 0;
    if (ctrl & 1) {
        uint64_t step = 1 + take(in, 1);
        uint64_t room = n ? (uint64_t)INT64_MAX - (uint64_t)prev : UINT64_MAX;
        *t = (int64_t)((uint64_t)prev + (step < room ? step : room));
    } else {
        *t = (int64_t)take(in, 8);
        if (n && *t <= prev)
            *t = prev + 1;
    }
    double last = n ? want_v[n - 1] : 0;
    uint64_t bits;
    switch ((ctrl >> 1) & 3) {
    case 0: bits = take(in, 8); memcpy(v, &bits, sizeof *v); break;
    case 1: *v = scaled((int16_t)take(in, 2), ctrl); break;
    case 2: *v = last; break;
    default: *v = last + scaled((int8_t)take(in, 1), ctrl); break;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct input in = {data, size};
    codec_appender a;
    size_t n = 0;
    int64_t t;
    double v;
    codec_appender_init(&a);
    while (next_point(&in, n, &t, &v)) {
        REQUIRE(codec_append(&a, t, v, NULL) == 0);
        want_t[n] = t;
        want_v[n++] = v;
        if (n == MAX_POINTS) {
            check_chunk(&a, n);
            n = 0;
        }
    }
    if (n)
        check_chunk(&a, n);
    codec_appender_free(&a);
    return 0;
}
