/* test_batch — the binary form of readings in the WAL: every kind round-trips
 * bit for bit (edge values included), and a damaged payload — cut at any
 * byte, a bad version, a bad kind, a lying length, extra bytes, random bit
 * flips — is refused with CB_ECORRUPT before any item reaches the callback,
 * never a crash (run under ASan/valgrind: every decode reads an exactly-sized
 * heap copy, so an over-read is caught). */
#include "ingest/batch.h"
#include "test.h"

#include <math.h>

struct collected {
    struct batch_item items[64];
    char text[64][BATCH_STR_MAX + 1]; /* str copied: it points into the payload */
    size_t n;
    int stop_after;                   /* > 0: return 7 after this many items */
};

static int collect(void *arg, const struct batch_item *it)
{
    struct collected *c = arg;
    if (c->n < 64) {
        c->items[c->n] = *it;
        if (it->kind == BATCH_STR) {
            memcpy(c->text[c->n], it->str, it->len);
            c->text[c->n][it->len] = '\0';
        }
    }
    c->n++;
    return c->stop_after && (int)c->n >= c->stop_after ? 7 : 0;
}

static int count_only(void *arg, const struct batch_item *it)
{
    (void)it;
    (*(size_t *)arg)++;
    return 0;
}

/* Decodes an exactly-sized heap copy of the first len bytes of p. */
static int decode_copy(const void *p, size_t len, int (*fn)(void *, const struct batch_item *), void *arg,
                       cb_error *err)
{
    unsigned char *copy = malloc(len ? len : 1);
    if (len)
        memcpy(copy, p, len);
    int rc = batch_decode(copy, len, fn, arg, err);
    free(copy);
    return rc;
}

static int same_bits(double a, double b)
{
    return memcmp(&a, &b, sizeof a) == 0;
}

static struct batch_item num_item(uint32_t e, uint16_t a, int64_t ts, double v)
{
    return (struct batch_item){.entity = e, .attr = a, .kind = BATCH_NUM, .ts_ms = ts, .num = v};
}

/* One item of every kind, with edge values. */
static void build_mixed(batch *b, char *big)
{
    memset(big, 'x', BATCH_STR_MAX);
    big[0] = '<';
    big[BATCH_STR_MAX - 1] = '>';
    struct batch_item items[] = {
        num_item(1, 2, 1700000000123LL, 21.5),
        {.entity = 3, .attr = 4, .kind = BATCH_STR, .ts_ms = -5, .str = "héllo\0x", .len = 8},
        {.entity = 5, .attr = 6, .kind = BATCH_STR, .ts_ms = 0, .str = "", .len = 0},
        {.entity = 7, .attr = 8, .kind = BATCH_STR, .ts_ms = 1, .str = big, .len = BATCH_STR_MAX},
        {.entity = 9, .attr = 10, .kind = BATCH_BOOL, .ts_ms = 2, .num = 1},
        {.entity = 11, .attr = 12, .kind = BATCH_BOOL, .ts_ms = 3, .num = 0},
        {.entity = UINT32_MAX, .attr = 0, .kind = BATCH_LOC, .ts_ms = INT64_MIN, .num = 113.230816, .lat = 35.240282},
        num_item(0, UINT16_MAX, INT64_MAX, -0.0),
    };
    for (size_t i = 0; i < sizeof items / sizeof items[0]; i++)
        batch_add(b, &items[i]);
}

TEST(test_round_trip_every_kind)
{
    static char big[BATCH_STR_MAX];
    static struct collected c;
    batch b;
    batch_init(&b);
    CHECK(b.data == NULL && b.len == 0 && b.count == 0 && !b.failed);
    build_mixed(&b, big);
    CHECK_INT(b.count, 8);
    CHECK(!b.failed);
    CHECK_INT(b.len, 5 + 23 + (17 + 8) + 17 + (17 + BATCH_STR_MAX) + 16 + 16 + 31 + 23);
    CHECK_INT(b.data[0], 1);                      /* version */
    CHECK_INT(b.data[1] | b.data[2] << 8, 8);      /* count, little-endian */
    memset(&c, 0, sizeof c);
    cb_error err;
    CHECK_INT(decode_copy(b.data, b.len, collect, &c, &err), 0);
    CHECK_INT(c.n, 8);
    struct batch_item *it = c.items;
    CHECK(it[0].entity == 1 && it[0].attr == 2 && it[0].kind == BATCH_NUM && it[0].ts_ms == 1700000000123LL &&
          it[0].num == 21.5);
    CHECK(it[1].kind == BATCH_STR && it[1].len == 8 && memcmp(c.text[1], "héllo\0x", 8) == 0 && it[1].ts_ms == -5);
    CHECK(it[2].kind == BATCH_STR && it[2].len == 0 && it[2].entity == 5 && it[2].ts_ms == 0);
    CHECK(it[3].kind == BATCH_STR && it[3].len == BATCH_STR_MAX && memcmp(c.text[3], big, BATCH_STR_MAX) == 0);
    CHECK(it[4].kind == BATCH_BOOL && it[4].num == 1 && it[4].entity == 9);
    CHECK(it[5].kind == BATCH_BOOL && it[5].num == 0);
    CHECK(it[6].kind == BATCH_LOC && it[6].entity == UINT32_MAX && it[6].ts_ms == INT64_MIN &&
          it[6].num == 113.230816 && it[6].lat == 35.240282 && it[6].attr == 0);
    CHECK(it[7].kind == BATCH_NUM && it[7].attr == UINT16_MAX && it[7].ts_ms == INT64_MAX && same_bits(it[7].num, -0.0));
    batch_free(&b);
    CHECK(b.data == NULL && b.len == 0 && b.count == 0);
    /* a freed batch is an empty one and may be used again */
    struct batch_item one = num_item(1, 1, 1, 1);
    batch_add(&b, &one);
    CHECK_INT(b.count, 1);
    CHECK_INT(b.len, 5 + 23);
    batch_free(&b);
}

/* NaN and the infinities are stored bit for bit: the batch does not judge
 * values (the doors do: JSON has no NaN; the state and the API print a
 * non-finite number as null). */
TEST(test_non_finite_numbers_kept_bit_for_bit)
{
    double vals[] = {NAN, -NAN, INFINITY, -INFINITY, 5e-324, 1.7976931348623157e308};
    static struct collected c;
    batch b;
    batch_init(&b);
    for (size_t i = 0; i < 6; i++) {
        struct batch_item it = num_item((uint32_t)i, 1, -(int64_t)i * 1000, vals[i]);
        batch_add(&b, &it);
    }
    struct batch_item loc = {.entity = 9, .kind = BATCH_LOC, .num = NAN, .lat = INFINITY};
    batch_add(&b, &loc);
    /* a BOOL built from NaN is true (NaN != 0) */
    struct batch_item bn = {.entity = 10, .kind = BATCH_BOOL, .num = NAN};
    batch_add(&b, &bn);
    memset(&c, 0, sizeof c);
    CHECK_INT(decode_copy(b.data, b.len, collect, &c, NULL), 0);
    CHECK_INT(c.n, 8);
    for (size_t i = 0; i < 6; i++) {
        CHECK(same_bits(c.items[i].num, vals[i]));
        CHECK_INT(c.items[i].ts_ms, -(int64_t)i * 1000);
    }
    CHECK(isnan(c.items[0].num));
    CHECK(isinf(c.items[2].num) && c.items[2].num > 0);
    CHECK(isinf(c.items[3].num) && c.items[3].num < 0);
    CHECK(isnan(c.items[6].num) && isinf(c.items[6].lat));
    CHECK(c.items[7].kind == BATCH_BOOL && c.items[7].num == 1);
    batch_free(&b);
}

TEST(test_truncation_at_every_offset)
{
    static char big[BATCH_STR_MAX];
    batch b;
    batch_init(&b);
    build_mixed(&b, big);
    int bad = 0;
    for (size_t cut = 0; cut < b.len; cut++) {
        size_t called = 0;
        cb_error err;
        int rc = decode_copy(b.data, cut, count_only, &called, &err);
        bad += rc != CB_ECORRUPT;
        bad += called != 0; /* a damaged payload applies nothing */
    }
    CHECK_INT(bad, 0);
    size_t called = 0;
    CHECK_INT(decode_copy(b.data, b.len, count_only, &called, NULL), 0);
    CHECK_INT(called, 8);
    CHECK_INT(batch_decode(NULL, 0, count_only, &called, NULL), CB_ECORRUPT);
    batch_free(&b);
}

TEST(test_bad_header_and_trailing_bytes)
{
    batch b;
    batch_init(&b);
    struct batch_item it = num_item(1, 2, 3, 4);
    batch_add(&b, &it);
    batch_add(&b, &it);
    unsigned char *p = malloc(b.len + 1);
    size_t called = 0;
    cb_error err;
    for (int v = 0; v < 256; v++) {
        if (v == 1)
            continue;
        memcpy(p, b.data, b.len);
        p[0] = (unsigned char)v;
        called = 0;
        CHECK_INT(decode_copy(p, b.len, count_only, &called, &err), CB_ECORRUPT);
        CHECK_INT(called, 0);
    }
    CHECK(strstr(err.message, "header") != NULL);
    /* one byte too many */
    memcpy(p, b.data, b.len);
    p[b.len] = 0;
    called = 0;
    CHECK_INT(decode_copy(p, b.len + 1, count_only, &called, &err), CB_ECORRUPT);
    CHECK(strstr(err.message, "trailing") != NULL);
    CHECK_INT(called, 0);
    /* a count that says fewer items than there are: the rest is trailing */
    memcpy(p, b.data, b.len);
    p[1] = 1;
    called = 0;
    CHECK_INT(decode_copy(p, b.len, count_only, &called, &err), CB_ECORRUPT);
    CHECK_INT(called, 0);
    /* ... or more than there are */
    p[1] = 3;
    CHECK_INT(decode_copy(p, b.len, count_only, &called, &err), CB_ECORRUPT);
    p[1] = 0xff, p[2] = 0xff, p[3] = 0xff, p[4] = 0xff;
    CHECK_INT(decode_copy(p, b.len, count_only, &called, &err), CB_ECORRUPT);
    CHECK_INT(called, 0);
    /* the header alone with count 0 is a valid empty batch */
    unsigned char empty[5] = {1, 0, 0, 0, 0};
    CHECK_INT(decode_copy(empty, 5, count_only, &called, &err), 0);
    CHECK_INT(called, 0);
    /* a batch nothing was added to has no header yet (the writer never takes one) */
    batch none;
    batch_init(&none);
    CHECK_INT(batch_decode(none.data, none.len, count_only, &called, &err), CB_ECORRUPT);
    free(p);
    batch_free(&b);
}

/* Offsets inside one item: entity 0..3, attr 4..5, kind 6, ts 7..14, value 15.. */
TEST(test_bad_items)
{
    batch b;
    batch_init(&b);
    cb_error err;
    size_t called = 0;
    struct batch_item bo = {.entity = 1, .attr = 1, .kind = BATCH_BOOL, .num = 1};
    batch_add(&b, &bo);
    for (int v = 2; v < 256; v++) { /* bool > 1 */
        b.data[5 + 15] = (unsigned char)v;
        CHECK_INT(decode_copy(b.data, b.len, count_only, &called, &err), CB_ECORRUPT);
    }
    b.data[5 + 15] = 1;
    CHECK_INT(decode_copy(b.data, b.len, count_only, &called, &err), 0);
    /* unknown kinds */
    int kinds[] = {0, 5, 6, 255};
    for (int i = 0; i < 4; i++) {
        b.data[5 + 6] = (unsigned char)kinds[i];
        CHECK_INT(decode_copy(b.data, b.len, count_only, &called, &err), CB_ECORRUPT);
    }
    CHECK(strstr(err.message, "item 0 of 1") != NULL);
    batch_free(&b);

    /* a string length beyond the payload, and beyond BATCH_STR_MAX */
    batch_init(&b);
    struct batch_item s = {.entity = 1, .attr = 1, .kind = BATCH_STR, .str = "abcd", .len = 4};
    batch_add(&b, &s);
    size_t at = 5 + 15;
    for (unsigned n = 5; n < 70000; n = n * 3 + 1) {
        unsigned len = n > 0xffff ? 0xffff : n;
        b.data[at] = (unsigned char)len;
        b.data[at + 1] = (unsigned char)(len >> 8);
        called = 0;
        CHECK_INT(decode_copy(b.data, b.len, count_only, &called, &err), CB_ECORRUPT);
        CHECK_INT(called, 0);
    }
    /* a shorter length leaves the rest as trailing bytes */
    b.data[at] = 3;
    b.data[at + 1] = 0;
    CHECK_INT(decode_copy(b.data, b.len, count_only, &called, &err), CB_ECORRUPT);
    batch_free(&b);

    /* 4097 bytes present and claimed: still refused, longer than any string may be */
    static unsigned char raw[5 + 17 + BATCH_STR_MAX + 1];
    memset(raw, 'y', sizeof raw);
    raw[0] = 1, raw[1] = 1, raw[2] = raw[3] = raw[4] = 0;
    memset(raw + 5, 0, 15);
    raw[5 + 6] = BATCH_STR;
    raw[5 + 15] = (BATCH_STR_MAX + 1) & 0xff;
    raw[5 + 16] = (BATCH_STR_MAX + 1) >> 8;
    CHECK_INT(decode_copy(raw, sizeof raw, count_only, &called, &err), CB_ECORRUPT);
    raw[5 + 15] = BATCH_STR_MAX & 0xff; /* and accepted at exactly the maximum (+1 trailing byte: refused) */
    raw[5 + 16] = BATCH_STR_MAX >> 8;
    CHECK_INT(decode_copy(raw, sizeof raw - 1, count_only, &called, &err), 0);
    CHECK_INT(decode_copy(raw, sizeof raw, count_only, &called, &err), CB_ECORRUPT);
}

TEST(test_callback_stops_the_decode)
{
    batch b;
    batch_init(&b);
    for (int i = 0; i < 10; i++) {
        struct batch_item it = num_item((uint32_t)i, 1, i, i);
        batch_add(&b, &it);
    }
    static struct collected c;
    memset(&c, 0, sizeof c);
    c.stop_after = 4;
    CHECK_INT(decode_copy(b.data, b.len, collect, &c, NULL), 7);
    CHECK_INT(c.n, 4);
    CHECK_INT(c.items[3].entity, 3);
    batch_free(&b);
}

/* Random damage: flipped bytes and random cuts decode or fail, never crash,
 * and never call the callback for a payload they refuse. */
TEST(test_random_damage_never_crashes)
{
    static char big[BATCH_STR_MAX];
    batch b;
    batch_init(&b);
    build_mixed(&b, big);
    unsigned char *p = malloc(b.len);
    uint64_t x = 88172645463325252ULL;
    int bad = 0, refused = 0;
    for (int round = 0; round < 3000; round++) {
        memcpy(p, b.data, b.len);
        int flips = 1 + round % 4;
        for (int f = 0; f < flips; f++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            /* half the flips hit the small items at the front, where the structure is */
            size_t pos = (x >> 8) % (round % 2 ? b.len : 120);
            p[pos] ^= (unsigned char)(1u << (x % 8));
        }
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        size_t len = round % 3 == 0 ? (size_t)(x % (b.len + 1)) : b.len;
        size_t called = 0;
        int rc = decode_copy(p, len, count_only, &called, NULL);
        bad += rc != 0 && rc != CB_ECORRUPT;
        bad += rc != 0 && called != 0;
        refused += rc != 0;
    }
    CHECK_INT(bad, 0);
    CHECK(refused > 1000);
    free(p);
    batch_free(&b);
}

static int check_big(void *arg, const struct batch_item *it)
{
    size_t *i = arg;
    uint32_t k = (uint32_t)*i;
    int ok = it->entity == k && it->attr == (uint16_t)(k % 1000) && it->ts_ms == 1700000000000LL + k;
    switch (k % 4) {
    case 0: ok = ok && it->kind == BATCH_NUM && it->num == k * 0.5; break;
    case 1: ok = ok && it->kind == BATCH_BOOL && it->num == (k / 4) % 2; break;
    case 2: ok = ok && it->kind == BATCH_STR && it->len == k % 17 && memcmp(it->str, "abcdefghijklmnopq", it->len) == 0; break;
    default: ok = ok && it->kind == BATCH_LOC && it->num == 113 + k * 1e-6 && it->lat == 35 - k * 1e-6;
    }
    (*i)++;
    return ok ? 0 : 1;
}

TEST(test_100k_items)
{
    enum { N = 100000 };
    batch b;
    batch_init(&b);
    for (uint32_t k = 0; k < N; k++) {
        struct batch_item it = {.entity = k, .attr = (uint16_t)(k % 1000), .ts_ms = 1700000000000LL + k};
        switch (k % 4) {
        case 0: it.kind = BATCH_NUM; it.num = k * 0.5; break;
        case 1: it.kind = BATCH_BOOL; it.num = (k / 4) % 2; break;
        case 2: it.kind = BATCH_STR; it.str = "abcdefghijklmnopq"; it.len = k % 17; break;
        default: it.kind = BATCH_LOC; it.num = 113 + k * 1e-6; it.lat = 35 - k * 1e-6;
        }
        batch_add(&b, &it);
    }
    CHECK(!b.failed);
    CHECK_INT(b.count, N);
    CHECK(b.cap >= b.len);
    size_t i = 0;
    cb_error err;
    CHECK_INT(batch_decode(b.data, b.len, check_big, &i, &err), 0);
    CHECK_INT(i, N);
    CHECK(b.len < (size_t)N * 32 + 5);
    batch_free(&b);
}

TEST_MAIN(test_round_trip_every_kind, test_non_finite_numbers_kept_bit_for_bit,
          test_truncation_at_every_offset, test_bad_header_and_trailing_bytes, test_bad_items,
          test_callback_stops_the_decode, test_random_damage_never_crashes, test_100k_items)
