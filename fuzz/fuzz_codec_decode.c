/* fuzz_codec_decode — libFuzzer target for series/codec's decoder.
 *
 * The input is a chunk blob as read from SQLite. Decoding must end in 0 or
 * CB_ECORRUPT without reading outside the input; a blob that decodes must
 * keep the contract (1..CODEC_MAX_POINTS points, times increasing), and its
 * points, appended again, must make a blob that decodes to the same points
 * bit for bit with the same stats. Every input must get the answer of
 * codec_ref.h, a bit-at-a-time decoder written from the format alone: the
 * same points, or a refusal from both — so the decoder's fast paths can
 * neither take a blob the format refuses nor read one differently. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "series/codec.h"

#include "codec_ref.h"
#include "require.h"

static int64_t t1[CODEC_MAX_POINTS], t2[CODEC_MAX_POINTS], t3[CODEC_MAX_POINTS];
static double v1[CODEC_MAX_POINTS], v2[CODEC_MAX_POINTS], v3[CODEC_MAX_POINTS];

/* Field by field: memcmp would compare the struct's padding. */
static int same_stats(const struct codec_stats *a, const struct codec_stats *b)
{
    return a->n == b->n && a->t_min == b->t_min && a->t_max == b->t_max &&
           memcmp(&a->min, &b->min, sizeof a->min) == 0 &&
           memcmp(&a->max, &b->max, sizeof a->max) == 0 &&
           memcmp(&a->sum, &b->sum, sizeof a->sum) == 0;
}

static void check_reencode(size_t n)
{
    codec_appender a;
    struct codec_stats st;
    size_t len, n2;
    codec_appender_init(&a);
    codec_stats_init(&st);
    for (size_t i = 0; i < n; i++) {
        REQUIRE(codec_append(&a, t1[i], v1[i], NULL) == 0);
        codec_stats_add(&st, t1[i], v1[i]);
    }
    const uint8_t *blob = codec_appender_blob(&a, &len);
    REQUIRE(codec_decode(blob, len, t2, v2, CODEC_MAX_POINTS, &n2, NULL) == 0);
    REQUIRE(n2 == n);
    REQUIRE(memcmp(t1, t2, n * sizeof *t1) == 0);
    REQUIRE(memcmp(v1, v2, n * sizeof *v1) == 0);
    REQUIRE(same_stats(&st, codec_appender_stats(&a)));
    codec_appender_free(&a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t n = 1, count = 0;
    cb_error err;
    int rc = codec_decode(data, size, t1, v1, CODEC_MAX_POINTS, &n, &err);
    REQUIRE(rc == 0 || rc == CB_ECORRUPT);
    REQUIRE(rc == 0 || (n == 0 && err.code == CB_ECORRUPT && err.message[0]));
    size_t n3;
    REQUIRE(codec_ref_decode(data, size, t3, v3, CODEC_MAX_POINTS, &n3) == (rc == 0 ? 0 : -1));
    if (rc != 0)
        return 0;
    REQUIRE(n3 == n && memcmp(t1, t3, n * sizeof *t1) == 0 && memcmp(v1, v3, n * sizeof *v1) == 0);
    REQUIRE(codec_count(data, size, &count, NULL) == 0 && count == n);
    REQUIRE(n >= 1 && n <= CODEC_MAX_POINTS);
    for (size_t i = 1; i < n; i++)
        REQUIRE(t1[i] > t1[i - 1]);
    check_reencode(n);
    return 0;
}
