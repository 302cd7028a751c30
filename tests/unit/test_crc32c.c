/* test_crc32c — known vectors (RFC 3720 B.4), chaining, and the hardware and
 * table paths against each other and a bit-at-a-time reference. */
#include "core/crc32c.h"
#include "test.h"

static uint32_t crc_bitwise(const unsigned char *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    while (n--) {
        c ^= *p++;
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1)));
    }
    return ~c;
}

/* xorshift64*: deterministic, so a failure reproduces. */
static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1DULL;
}

TEST(test_known_vectors)
{
    unsigned char buf[48];
    CHECK_INT(crc32c(0, "123456789", 9), 0xE3069283u);
    CHECK_INT(crc32c_sw(0, "123456789", 9), 0xE3069283u);
    CHECK_INT(crc32c(0, "", 0), 0);
    memset(buf, 0, 32);
    CHECK_INT(crc32c(0, buf, 32), 0x8A9136AAu);
    CHECK_INT(crc32c_sw(0, buf, 32), 0x8A9136AAu);
    memset(buf, 0xff, 32);
    CHECK_INT(crc32c(0, buf, 32), 0x62A8AB43u);
    CHECK_INT(crc32c_sw(0, buf, 32), 0x62A8AB43u);
    for (int i = 0; i < 32; i++)
        buf[i] = (unsigned char)i;
    CHECK_INT(crc32c(0, buf, 32), 0x46DD794Eu);
    CHECK_INT(crc32c_sw(0, buf, 32), 0x46DD794Eu);
    for (int i = 0; i < 32; i++)
        buf[i] = (unsigned char)(31 - i);
    CHECK_INT(crc32c(0, buf, 32), 0x113FDB5Cu);
    CHECK_INT(crc32c_sw(0, buf, 32), 0x113FDB5Cu);
}

TEST(test_chaining)
{
    const char *s = "The quick brown fox jumps over the lazy dog";
    size_t n = strlen(s);
    uint32_t whole = crc32c(0, s, n);
    for (size_t cut = 0; cut <= n; cut++) {
        CHECK_INT(crc32c(crc32c(0, s, cut), s + cut, n - cut), whole);
        CHECK_INT(crc32c_sw(crc32c_sw(0, s, cut), s + cut, n - cut), whole);
    }
}

/* Random lengths and start offsets, so both the 8-byte loops and the byte
 * tails run at every alignment; and random split points for chaining. */
TEST(test_paths_agree_on_random_buffers)
{
    enum { MAX = 4096 + 16 };
    static unsigned char buf[MAX];
    uint64_t seed = 0x9E3779B97F4A7C15ULL;
    for (size_t i = 0; i < MAX; i++)
        buf[i] = (unsigned char)rng_next(&seed);
    int mismatches = 0;
    for (int round = 0; round < 2000; round++) {
        size_t off = rng_next(&seed) % 16;
        size_t len = rng_next(&seed) % (MAX - off);
        size_t cut = len ? rng_next(&seed) % (len + 1) : 0;
        const unsigned char *p = buf + off;
        uint32_t ref = crc_bitwise(p, len);
        mismatches += crc32c(0, p, len) != ref;
        mismatches += crc32c_sw(0, p, len) != ref;
        mismatches += crc32c(crc32c_sw(0, p, cut), p + cut, len - cut) != ref;
    }
    CHECK_INT(mismatches, 0);
    if (!crc32c_hw_available())
        fprintf(stderr, "  note: no SSE4.2 here, only the table path was exercised\n");
}

TEST(test_detects_single_bit_flips)
{
    unsigned char buf[64];
    for (int i = 0; i < 64; i++)
        buf[i] = (unsigned char)(i * 7);
    uint32_t good = crc32c(0, buf, sizeof buf);
    int undetected = 0;
    for (int bit = 0; bit < 64 * 8; bit++) {
        buf[bit / 8] ^= (unsigned char)(1u << (bit % 8));
        undetected += crc32c(0, buf, sizeof buf) == good;
        buf[bit / 8] ^= (unsigned char)(1u << (bit % 8));
    }
    CHECK_INT(undetected, 0);
}

TEST_MAIN(test_known_vectors, test_chaining, test_paths_agree_on_random_buffers,
          test_detects_single_bit_flips)
