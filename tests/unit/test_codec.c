/* Unit and property tests for series/codec: encode→decode is the identity bit
 * for bit on random, constant, special, huge-jump and realistic series; any
 * truncated or bit-flipped blob decodes to CB_ECORRUPT or to points that keep
 * the contract; the realistic sets stay under measured size bounds.
 * The PRNG seed comes from CODEC_SEED or the clock and is printed on failure. */
#include <float.h>
#include <math.h>
#include <time.h>

#include "series/codec.h"

#include "../../fuzz/codec_ref.h"
#include "test.h"

#define MAX_N 1024
#define CHUNK 120
#define T0 INT64_C(1732350000000) /* 2024-11-23, in ms */
#define MINUTE 60000

static uint64_t seed, rng_state;

/* Records a failed check together with the seed that reproduces it. */
#define PCHECK(cond, what)                                                             \
    do {                                                                               \
        int ok_ = (cond);                                                              \
        if (!ok_)                                                                      \
            fprintf(stderr, "  seed %llu (CODEC_SEED=%llu to replay), %s:\n",          \
                    (unsigned long long)seed, (unsigned long long)seed, what);         \
        CHECK(ok_ && #cond);                                                           \
    } while (0)

static uint64_t rnd(void) /* splitmix64 */
{
    uint64_t z = (rng_state += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static uint64_t below(uint64_t n)
{
    return rnd() % n;
}

/* Roughly normal, mean 0, standard deviation sd (Irwin-Hall of 12). */
static double noise(double sd)
{
    double s = 0;
    for (int i = 0; i < 12; i++)
        s += (double)(rnd() >> 11) / 9007199254740992.0;
    return (s - 6.0) * sd;
}

static double from_bits(uint64_t u)
{
    double v;
    memcpy(&v, &u, sizeof v);
    return v;
}

static int same_double(double a, double b)
{
    return memcmp(&a, &b, sizeof a) == 0;
}

static int same_stats(const struct codec_stats *a, const struct codec_stats *b)
{
    return a->n == b->n && a->t_min == b->t_min && a->t_max == b->t_max &&
           same_double(a->min, b->min) && same_double(a->max, b->max) &&
           same_double(a->sum, b->sum);
}

struct series {
    size_t n;
    int64_t t[MAX_N];
    double v[MAX_N];
};

static struct series in;
static struct { /* room for any chunk, so corrupt counts never hit the cap */
    int64_t t[CODEC_MAX_POINTS];
    double v[CODEC_MAX_POINTS];
} out;
#define OUT_CAP CODEC_MAX_POINTS

/* codec_decode's answer (rc, n points in out) is the reference decoder's:
 * the same points bit for bit, or a refusal from both. */
static void check_like_ref(const uint8_t *blob, size_t len, int rc, size_t n, const char *what)
{
    static int64_t rt[CODEC_MAX_POINTS];
    static double rv[CODEC_MAX_POINTS];
    size_t rn;
    int ref = codec_ref_decode(blob, len, rt, rv, OUT_CAP, &rn);
    PCHECK(ref == (rc == 0 ? 0 : -1), what);
    PCHECK(ref != 0 || (rn == n && memcmp(rt, out.t, n * sizeof *rt) == 0 && memcmp(rv, out.v, n * sizeof *rv) == 0),
           what);
}

/* Appends in[0..n) to a fresh appender; returns 0 or the first error. */
static int encode(codec_appender *a, const struct series *s)
{
    codec_appender_init(a);
    for (size_t i = 0; i < s->n; i++) {
        int rc = codec_append(a, s->t[i], s->v[i], NULL);
        if (rc)
            return rc;
    }
    return 0;
}

/* Encodes and decodes s, checks identity and stats; returns the blob size. */
static size_t roundtrip(const struct series *s, const char *what)
{
    codec_appender a;
    size_t len = 0, n = 0;
    PCHECK(encode(&a, s) == 0, what);
    const uint8_t *blob = codec_appender_blob(&a, &len);
    PCHECK(codec_decode(blob, len, out.t, out.v, OUT_CAP, &n, NULL) == 0, what);
    PCHECK(n == s->n, what);
    check_like_ref(blob, len, 0, n, what);
    struct codec_stats st;
    codec_stats_init(&st);
    for (size_t i = 0; i < n && i < s->n; i++) {
        PCHECK(out.t[i] == s->t[i] && same_double(out.v[i], s->v[i]), what);
        codec_stats_add(&st, out.t[i], out.v[i]);
    }
    PCHECK(same_stats(&st, codec_appender_stats(&a)), what);
    codec_appender_free(&a);
    return len;
}

/* ---- generators: fill `in` with n points ---- */

static void times_regular(size_t n, int64_t jitter_ms)
{
    in.n = n;
    for (size_t i = 0; i < n; i++) {
        int64_t j = jitter_ms ? (int64_t)below(2 * (uint64_t)jitter_ms + 1) - jitter_ms : 0;
        in.t[i] = T0 + (int64_t)i * MINUTE + j;
    }
}

/* Strictly increasing times with deltas of every size, from 1 to 2^62; the
 * series ends early when the next time would pass INT64_MAX. */
static void times_wild(size_t n)
{
    int64_t t = (int64_t)rnd();
    in.n = 0;
    while (in.n < n) {
        in.t[in.n++] = t;
        uint64_t step = 1 + (rnd() >> (2 + below(62)));
        if (step > (uint64_t)INT64_MAX - (uint64_t)t)
            break;
        t = (int64_t)((uint64_t)t + step);
    }
}

/* A random walk on m / 10^d with normal steps of sd units. */
static void values_walk(unsigned d, double sd, double start)
{
    double scale = pow(10, d);
    int64_t m = (int64_t)(start * scale);
    for (size_t i = 0; i < in.n; i++) {
        m += (int64_t)llround(noise(sd));
        in.v[i] = (double)m / scale;
    }
}

static void values_counter(void)
{
    int64_t m = (int64_t)below(1000000);
    for (size_t i = 0; i < in.n; i++) {
        m += (int64_t)below(21);
        in.v[i] = (double)m;
    }
}

static void values_bits(void)
{
    for (size_t i = 0; i < in.n; i++)
        in.v[i] = from_bits(rnd());
}

static const double specials[] = {
    0.0, -0.0, 1.0, -1.0, INFINITY, -INFINITY, NAN, -NAN, DBL_MIN, -DBL_MIN, DBL_MAX,
    -DBL_MAX, DBL_TRUE_MIN, -DBL_TRUE_MIN, 4.9e-320, 9007199254740992.0, 9007199254740993.0,
    0.1, 21.5, -3.25, 1e300, 1e-300,
};
#define NSPECIALS (sizeof specials / sizeof specials[0])

static double special(void)
{
    if (below(4) == 0) /* NaN with a random payload and sign */
        return from_bits(UINT64_C(0x7ff0000000000001) | (rnd() & UINT64_C(0x800fffffffffffff)));
    return specials[below(NSPECIALS)];
}

/* One of every kind above, for the corruption tests. */
static void make_any(unsigned kind, size_t n)
{
    switch (kind % 6) {
    case 0: times_regular(n, 0); values_walk(1, 3, 21.5); break;
    case 1: times_regular(n, 500); values_walk(2, 20, -5); break;
    case 2: times_regular(n, 0); values_counter(); break;
    case 3: times_wild(n); values_bits(); break;
    case 4: times_wild(n); for (size_t i = 0; i < n; i++) in.v[i] = special(); break;
    default: times_regular(n, 2); values_walk(4, 1000, 0.5); break;
    }
}

/* ---- round trips ---- */

TEST(test_single_point)
{
    codec_appender a;
    size_t len, n;
    int64_t t;
    double v;
    codec_appender_init(&a);
    CHECK_INT(codec_append(&a, INT64_MIN, -0.0, NULL), 0);
    const uint8_t *blob = codec_appender_blob(&a, &len);
    CHECK_INT(blob[0], 0x15); /* version 1, XOR: -0.0 is no decimal */
    CHECK_INT(codec_count(blob, len, &n, NULL), 0);
    CHECK_INT(n, 1);
    CHECK_INT(codec_decode(blob, len, &t, &v, 1, &n, NULL), 0);
    CHECK(t == INT64_MIN && same_double(v, -0.0));
    codec_appender_free(&a);
}

TEST(test_random_bits)
{
    for (int round = 0; round < 300; round++) {
        times_wild(1 + below(MAX_N));
        values_bits();
        roundtrip(&in, "random bits");
    }
}

TEST(test_constant)
{
    for (size_t k = 0; k < NSPECIALS; k++) {
        times_regular(CHUNK, 0);
        for (size_t i = 0; i < in.n; i++)
            in.v[i] = specials[k];
        size_t len = roundtrip(&in, "constant");
        PCHECK(len < 64, "constant chunk size"); /* 2 bits a point + first point */
    }
}

TEST(test_special_values)
{
    for (int round = 0; round < 300; round++) {
        times_wild(1 + below(300));
        for (size_t i = 0; i < in.n; i++)
            in.v[i] = below(3) ? special() : (double)(int64_t)below(100) / 10;
        roundtrip(&in, "specials");
    }
}

TEST(test_huge_time_jumps)
{
    static const int64_t edges[][4] = {
        {INT64_MIN, INT64_MIN + 1, INT64_MAX - 1, INT64_MAX},
        {INT64_MIN, -1, 0, INT64_MAX},
        {INT64_MIN, INT64_MAX - 2, INT64_MAX - 1, INT64_MAX},
        {INT64_MIN, INT64_MIN + 1, INT64_MIN + 2, INT64_MAX},
        {-2, -1, 0, 1},
    };
    for (size_t k = 0; k < sizeof edges / sizeof edges[0]; k++) {
        in.n = 4;
        for (size_t i = 0; i < 4; i++) {
            in.t[i] = edges[k][i];
            in.v[i] = (double)i;
        }
        roundtrip(&in, "int64 edges");
    }
    for (int round = 0; round < 200; round++) { /* tiny and huge deltas alternating */
        in.n = 2 + below(100);
        uint64_t room = (uint64_t)INT64_MAX - (uint64_t)INT64_MIN;
        int64_t t = INT64_MIN + (int64_t)below(1000);
        for (size_t i = 0; i < in.n; i++) {
            in.t[i] = t;
            in.v[i] = 20.5;
            uint64_t left = (uint64_t)INT64_MAX - (uint64_t)t;
            uint64_t step = below(2) ? 1 + below(3) : 1 + rnd() % (room / (in.n + 1));
            if (step > left) {
                in.n = i + 1;
                break;
            }
            t = (int64_t)((uint64_t)t + step);
        }
        roundtrip(&in, "huge jumps");
    }
}

TEST(test_cadence_jitter)
{
    int64_t jitters[] = {0, 1, 50, 500, 5000};
    for (size_t k = 0; k < sizeof jitters / sizeof jitters[0]; k++) {
        for (int round = 0; round < 20; round++) {
            times_regular(CHUNK, jitters[k]);
            values_walk(1, 3, 15);
            if (below(4) == 0) { /* a missed reading: a gap of several minutes */
                size_t from = 1 + below(CHUNK - 1);
                int64_t gap = (int64_t)(1 + below(30)) * MINUTE;
                for (size_t i = from; i < in.n; i++)
                    in.t[i] += gap;
            }
            roundtrip(&in, "cadence with jitter");
        }
    }
}

/* Bytes per point over `chunks` chunks of CHUNK points made by gen(). */
static double bytes_per_point(void (*gen)(void), int chunks, const char *what)
{
    size_t bytes = 0;
    for (int c = 0; c < chunks; c++) {
        gen();
        bytes += roundtrip(&in, what);
    }
    return (double)bytes / ((double)chunks * CHUNK);
}

static void gen_decimal1(void) { times_regular(CHUNK, 0); values_walk(1, 3, 21.5); }
static void gen_decimal2(void) { times_regular(CHUNK, 0); values_walk(2, 20, 21.5); }
static void gen_counter(void) { times_regular(CHUNK, 0); values_counter(); }
static void gen_bits(void) { times_regular(CHUNK, 0); values_bits(); }
static void gen_jitter(void) { times_regular(CHUNK, 500); values_walk(1, 3, 21.5); }

static void gen_constant(void)
{
    times_regular(CHUNK, 0);
    for (size_t i = 0; i < in.n; i++)
        in.v[i] = 1013.25;
}

/* pm2.5-like: white noise of sd 2 µg/m³ around a slow drift, 1 decimal. */
static void gen_pm25(void)
{
    times_regular(CHUNK, 0);
    double base = 35 + noise(10);
    for (size_t i = 0; i < in.n; i++) {
        base += noise(0.2);
        in.v[i] = (double)llround((base + noise(2)) * 10) / 10;
    }
}

/* The bounds are about 1.3x what was measured, so a regression fails. */
TEST(test_realistic_ratio)
{
    static const struct {
        const char *name;
        void (*gen)(void);
        double bound;
    } sets[] = {
        {"1-decimal walk, sd 0.3", gen_decimal1, 1.0},
        {"2-decimal walk, sd 0.2", gen_decimal2, 1.5},
        {"integer counter", gen_counter, 1.4},
        {"random doubles", gen_bits, 10.0},
        {"constant", gen_constant, 0.5},
        {"pm2.5 noise sd 2, 1 decimal", gen_pm25, 1.6},
        {"1-decimal walk, 500 ms jitter", gen_jitter, 2.8},
    };
    for (size_t k = 0; k < sizeof sets / sizeof sets[0]; k++) {
        double bpp = bytes_per_point(sets[k].gen, 50, sets[k].name);
        printf("  codec: %-30s %.3f bytes/point\n", sets[k].name, bpp);
        PCHECK(bpp < sets[k].bound, sets[k].name);
    }
}

TEST(test_mixed)
{
    for (int round = 0; round < 300; round++) {
        in.n = 1 + below(MAX_N);
        times_wild(in.n);
        for (size_t i = 0; i < in.n; i++) {
            switch (below(5)) {
            case 0: in.v[i] = from_bits(rnd()); break;
            case 1: in.v[i] = special(); break;
            case 2: in.v[i] = i ? in.v[i - 1] : 0; break;
            default: in.v[i] = (double)((int64_t)below(200000) - 100000) / pow(10, below(6));
            }
        }
        roundtrip(&in, "mixed");
    }
}

/* ---- encodings ---- */

static int blob_encoding(const codec_appender *a)
{
    size_t len;
    return codec_appender_blob(a, &len)[0] & 15;
}

TEST(test_encoding_escalation)
{
    static const double steps[] = {3, 2.5, 2.25, 2.125, 2.0625, 0.1 + 0.2};
    codec_appender a;
    codec_appender_init(&a);
    in.n = 0;
    for (int step = 0; step < 6; step++) {
        for (int i = 0; i < 20; i++) { /* the wider value arrives late */
            double v = i == 19 ? steps[step] : 7;
            in.t[in.n] = T0 + (int64_t)in.n * MINUTE;
            in.v[in.n++] = v;
            CHECK_INT(codec_append(&a, in.t[in.n - 1], v, NULL), 0);
        }
        CHECK_INT(blob_encoding(&a), step);
    }
    roundtrip(&in, "escalation");
    codec_appender_free(&a);
}

TEST(test_decimal_edges)
{
    static const double chunks[][4] = {
        {9007199254740992.0, -9007199254740992.0, 0, 1},       /* ±2^53: DECIMAL 0 */
        {900719925474099.2, 1, 2, 3},                          /* 2^53 / 10: DECIMAL 1 */
        {9007199254740992.0, 0.5, 1, 2},                       /* m beyond 2^53 at d=1: XOR */
        {1e16, 1, 2, 3},                                       /* beyond 2^53: XOR */
        {21.3, -0.0, 21.4, 21.5},                              /* -0.0 forces XOR */
        {0.0001, -0.0001, 99999.9999, -123.4567},              /* DECIMAL 4 */
        {0.00001, 1, 2, 3},                                    /* five digits: XOR */
    };
    static const int want[] = {0, 1, 5, 5, 5, 4, 5};
    for (size_t k = 0; k < sizeof chunks / sizeof chunks[0]; k++) {
        codec_appender a;
        times_regular(4, 0);
        memcpy(in.v, chunks[k], sizeof chunks[k]);
        CHECK_INT(encode(&a, &in), 0);
        CHECK_INT(blob_encoding(&a), want[k]);
        codec_appender_free(&a);
        roundtrip(&in, "decimal edges");
    }
}

TEST(test_out_of_order)
{
    codec_appender a;
    cb_error err;
    size_t len, n;
    codec_appender_init(&a);
    CHECK_INT(codec_append(&a, 1000, 1.5, NULL), 0);
    CHECK_INT(codec_append(&a, 1000, 2.5, &err), CB_EINVALID_FIELD);
    CHECK_STR(err.field, "t");
    CHECK_INT(codec_append(&a, 999, 2.5, NULL), CB_EINVALID_FIELD);
    CHECK_INT(codec_append(&a, INT64_MIN, 2.5, NULL), CB_EINVALID_FIELD);
    CHECK_INT(codec_appender_stats(&a)->n, 1);
    CHECK_INT(codec_append(&a, 1001, 2.5, NULL), 0);
    const uint8_t *blob = codec_appender_blob(&a, &len);
    CHECK_INT(codec_decode(blob, len, out.t, out.v, OUT_CAP, &n, NULL), 0);
    CHECK(n == 2 && out.t[1] == 1001 && out.v[1] == 2.5);
    codec_appender_free(&a);
}

TEST(test_max_points)
{
    codec_appender a;
    cb_error err;
    size_t len, n;
    codec_appender_init(&a);
    for (uint32_t i = 0; i < CODEC_MAX_POINTS; i++)
        CHECK_INT(codec_append(&a, (int64_t)i * MINUTE, (double)(i % 7), NULL), 0);
    CHECK_INT(codec_append(&a, INT64_MAX, 1, &err), CB_ETOO_LARGE);
    const uint8_t *blob = codec_appender_blob(&a, &len);
    CHECK_INT(codec_count(blob, len, &n, NULL), 0);
    CHECK_INT(n, CODEC_MAX_POINTS);
    int64_t *t = malloc(CODEC_MAX_POINTS * sizeof *t);
    double *v = malloc(CODEC_MAX_POINTS * sizeof *v);
    CHECK(t && v);
    if (t && v) {
        CHECK_INT(codec_decode(blob, len, t, v, CODEC_MAX_POINTS, &n, NULL), 0);
        CHECK(n == CODEC_MAX_POINTS && t[n - 1] == (int64_t)(n - 1) * MINUTE && v[n - 1] == 0);
        CHECK_INT(codec_decode(blob, len, t, v, CODEC_MAX_POINTS - 1, &n, NULL), CB_EINVALID_FIELD);
        CHECK_INT(n, 0);
    }
    free(t);
    free(v);
    codec_appender_free(&a);
}

/* ---- corruption ---- */

/* A decode that succeeded must still keep the contract. */
static void check_valid_decode(size_t n, const char *what)
{
    PCHECK(n >= 1 && n <= CODEC_MAX_POINTS, what);
    for (size_t i = 1; i < n; i++)
        PCHECK(out.t[i] > out.t[i - 1], what);
}

TEST(test_truncation)
{
    static uint8_t copy[MAX_N * 24];
    for (unsigned kind = 0; kind < 60; kind++) {
        codec_appender a;
        size_t len, n;
        make_any(kind, 1 + below(200));
        CHECK_INT(encode(&a, &in), 0);
        const uint8_t *blob = codec_appender_blob(&a, &len);
        for (size_t cut = 0; cut < len; cut++) {
            /* A fresh heap copy of exactly `cut` bytes, so ASan sees any over-read. */
            uint8_t *part = malloc(cut ? cut : 1);
            memcpy(part, blob, cut);
            PCHECK(codec_decode(part, cut, out.t, out.v, OUT_CAP, &n, NULL) == CB_ECORRUPT,
                   "truncated chunk");
            free(part);
        }
        memcpy(copy, blob, len);
        copy[len] = 0; /* one trailing byte */
        PCHECK(codec_decode(copy, len + 1, out.t, out.v, OUT_CAP, &n, NULL) == CB_ECORRUPT,
               "trailing byte");
        codec_appender_free(&a);
    }
}

TEST(test_bit_flips)
{
    int corrupt = 0, decoded = 0;
    for (unsigned round = 0; round < 3000; round++) {
        codec_appender a;
        size_t len, n;
        make_any(round, 1 + below(200));
        CHECK_INT(encode(&a, &in), 0);
        const uint8_t *blob = codec_appender_blob(&a, &len);
        uint8_t *copy = malloc(len);
        memcpy(copy, blob, len);
        for (uint64_t flips = 1 + below(3); flips; flips--) {
            size_t bit = below(len * 8);
            copy[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        }
        int rc = codec_decode(copy, len, out.t, out.v, OUT_CAP, &n, NULL);
        PCHECK(rc == 0 || rc == CB_ECORRUPT, "bit flip");
        check_like_ref(copy, len, rc, n, "bit flip, against the reference");
        if (rc == 0) {
            decoded++;
            check_valid_decode(n, "bit flip");
        } else {
            corrupt++;
        }
        free(copy);
        codec_appender_free(&a);
    }
    CHECK(corrupt > 0 && decoded > 0); /* both paths were exercised */
}

TEST(test_garbage)
{
    for (int round = 0; round < 20000; round++) {
        size_t len = below(64), n;
        uint8_t *g = malloc(len ? len : 1);
        for (size_t i = 0; i < len; i++)
            g[i] = (uint8_t)rnd();
        if (len >= 3 && below(2)) { /* a plausible header, so the body gets parsed */
            g[0] = (uint8_t)(0x10 | below(6));
            g[1] = (uint8_t)below(8);
            g[2] = 0;
        }
        int rc = codec_decode(g, len, out.t, out.v, OUT_CAP, &n, NULL);
        PCHECK(rc == 0 || rc == CB_ECORRUPT, "garbage");
        check_like_ref(g, len, rc, n, "garbage, against the reference");
        if (rc == 0)
            check_valid_decode(n, "garbage");
        free(g);
    }
}

TEST(test_bad_header)
{
    uint8_t blob[] = {0x10, 0x01, 0x00, 0x00, 0x00};
    size_t n;
    cb_error err;
    CHECK_INT(codec_count(blob, 2, &n, &err), CB_ECORRUPT);
    CHECK_STR(err.field, "chunk");
    blob[0] = 0x20; /* version 2 */
    CHECK_INT(codec_count(blob, sizeof blob, &n, NULL), CB_ECORRUPT);
    blob[0] = 0x16; /* encoding 6 */
    CHECK_INT(codec_count(blob, sizeof blob, &n, NULL), CB_ECORRUPT);
    blob[0] = 0x10;
    blob[1] = 0; /* no points */
    CHECK_INT(codec_count(blob, sizeof blob, &n, NULL), CB_ECORRUPT);
    CHECK_INT(n, 0);

    /* One DECIMAL 0 point t=0, v=0: wide(0) wide(0) = 14 zero bits, so 2 bytes. */
    uint8_t one[] = {0x10, 0x01, 0x00, 0x00, 0x00};
    int64_t t;
    double v;
    CHECK_INT(codec_decode(one, sizeof one, &t, &v, 1, &n, NULL), 0);
    CHECK(n == 1 && t == 0 && same_double(v, 0.0));
    one[4] = 0x01; /* a padding bit set */
    CHECK_INT(codec_decode(one, sizeof one, &t, &v, 1, &n, NULL), CB_ECORRUPT);
    one[4] = 0x0c; /* the value's length becomes 3: its bits run past the end */
    CHECK_INT(codec_decode(one, sizeof one, &t, &v, 1, &n, NULL), CB_ECORRUPT);
}

/* Writes the n low bits of u at bit *pos of b, most significant first. */
static void put(uint8_t *b, size_t *pos, uint64_t u, unsigned n)
{
    while (n--) {
        if ((u >> n) & 1)
            b[*pos / 8] |= (uint8_t)(0x80 >> (*pos % 8));
        (*pos)++;
    }
}

/* One DECIMAL 0 point t=0, v=m, built by hand: m beyond ±2^53 is corrupt. */
static int decode_decimal_m(uint64_t zigzag_m, double *v)
{
    uint8_t blob[16] = {0x10, 0x01, 0x00};
    size_t pos = 24, n;
    int64_t t;
    unsigned len = 64 - (unsigned)__builtin_clzll(zigzag_m);
    put(blob, &pos, 0, 7);      /* t0: wide(0) */
    put(blob, &pos, len, 7);    /* v0: wide(zigzag m) */
    put(blob, &pos, zigzag_m, len);
    return codec_decode(blob, (pos + 7) / 8, &t, v, 1, &n, NULL);
}

TEST(test_decimal_range_checked)
{
    double v = 0;
    CHECK_INT(decode_decimal_m((UINT64_C(1) << 54) + 2, &v), CB_ECORRUPT); /* 2^53 + 1 */
    CHECK_INT(decode_decimal_m((UINT64_C(1) << 54) + 1, &v), CB_ECORRUPT); /* -2^53 - 1 */
    CHECK_INT(decode_decimal_m(UINT64_C(1) << 54, &v), 0);                 /* 2^53 */
    CHECK(v == 9007199254740992.0);
    CHECK_INT(decode_decimal_m((UINT64_C(1) << 54) - 1, &v), 0);           /* -2^53 */
    CHECK(v == -9007199254740992.0);
}

/* ---- stats and appender life ---- */

TEST(test_stats)
{
    static const double v[] = {NAN, 2.5, -INFINITY, -0.0, NAN, 7};
    struct codec_stats s;
    codec_stats_init(&s);
    CHECK(s.n == 0 && isnan(s.min) && isnan(s.max) && s.sum == 0);
    codec_stats_add(&s, 5, NAN);
    CHECK(s.n == 1 && s.t_min == 5 && s.t_max == 5 && isnan(s.min) && s.sum == 0);
    codec_stats_init(&s);
    for (int i = 0; i < 6; i++)
        codec_stats_add(&s, 10 + i, v[i]);
    CHECK(s.n == 6 && s.t_min == 10 && s.t_max == 15);
    CHECK(s.min == -INFINITY && s.max == 7 && s.sum == -INFINITY);
    codec_stats_add(&s, 20, INFINITY);
    CHECK(s.max == INFINITY && isnan(s.sum));
}

TEST(test_reset_and_memory)
{
    codec_appender a;
    size_t mem = 0, len;
    codec_appender_init(&a);
    CHECK_INT(codec_appender_mem(&a), sizeof a);
    for (int chunk = 0; chunk < 100; chunk++) {
        gen_decimal1();
        for (size_t i = 0; i < in.n; i++)
            CHECK_INT(codec_append(&a, in.t[i], in.v[i], NULL), 0);
        mem += codec_appender_mem(&a);
        /* Decoding what the reused buffer holds proves the reset left no stale bits. */
        size_t n;
        const uint8_t *blob = codec_appender_blob(&a, &len);
        CHECK_INT(codec_decode(blob, len, out.t, out.v, OUT_CAP, &n, NULL), 0);
        CHECK(n == CHUNK && same_double(out.v[CHUNK - 1], in.v[CHUNK - 1]));
        codec_appender_reset(&a);
        CHECK_INT(codec_appender_stats(&a)->n, 0);
    }
    printf("  codec: open appender at %d points of 1-decimal walk: %zu bytes\n", CHUNK,
           mem / 100);
    CHECK(mem / 100 < 320);
    codec_appender_free(&a);
    CHECK(codec_appender_mem(&a) == sizeof a);
}

TEST(test_zeroed_appender)
{
    codec_appender a;
    size_t len, n;
    memset(&a, 0, sizeof a); /* the head may calloc its series */
    CHECK_INT(codec_append(&a, 10, 4.5, NULL), 0);
    CHECK_INT(codec_append(&a, 20, 2.5, NULL), 0);
    const struct codec_stats *st = codec_appender_stats(&a);
    CHECK(st->n == 2 && st->t_min == 10 && st->t_max == 20);
    CHECK(st->min == 2.5 && st->max == 4.5 && st->sum == 7.0);
    const uint8_t *blob = codec_appender_blob(&a, &len);
    CHECK_INT(codec_decode(blob, len, out.t, out.v, OUT_CAP, &n, NULL), 0);
    CHECK(n == 2 && out.v[0] == 4.5 && out.v[1] == 2.5);
    codec_appender_free(&a);
}

TEST(test_speed)
{
    enum { CHUNKS = 200 };
    static uint8_t blobs[CHUNKS][400];
    static size_t lens[CHUNKS];
    codec_appender a;
    codec_appender_init(&a);
    gen_decimal1();
    clock_t c0 = clock();
    for (int c = 0; c < CHUNKS; c++) {
        size_t len;
        codec_appender_reset(&a);
        for (size_t i = 0; i < CHUNK; i++)
            codec_append(&a, in.t[i], in.v[i], NULL);
        const uint8_t *blob = codec_appender_blob(&a, &len);
        lens[c] = len < sizeof blobs[c] ? len : 0;
        memcpy(blobs[c], blob, lens[c]);
    }
    clock_t c1 = clock();
    for (int c = 0; c < CHUNKS; c++) {
        size_t n;
        CHECK_INT(codec_decode(blobs[c], lens[c], out.t, out.v, OUT_CAP, &n, NULL), 0);
    }
    clock_t c2 = clock();
    double pts = (double)CHUNKS * CHUNK;
    printf("  codec: encode %.1f M points/s, decode %.1f M points/s (1-decimal walk)\n",
           pts / 1e6 / ((double)(c1 - c0 + 1) / CLOCKS_PER_SEC),
           pts / 1e6 / ((double)(c2 - c1 + 1) / CLOCKS_PER_SEC));
    codec_appender_free(&a);
}

static void seed_rng(void)
{
    const char *env = getenv("CODEC_SEED");
    seed = env ? strtoull(env, NULL, 10) : (uint64_t)time(NULL);
    rng_state = seed;
}

TEST(test_seed) /* runs first: seeds the PRNG for the property tests */
{
    seed_rng();
    printf("  codec: seed %llu\n", (unsigned long long)seed);
}

TEST_MAIN(test_seed, test_single_point, test_random_bits, test_constant, test_special_values,
          test_huge_time_jumps, test_cadence_jitter, test_realistic_ratio, test_mixed,
          test_encoding_escalation, test_decimal_edges, test_out_of_order, test_max_points,
          test_truncation, test_bit_flips, test_garbage, test_bad_header,
          test_decimal_range_checked, test_stats, test_reset_and_memory, test_zeroed_appender,
          test_speed)
