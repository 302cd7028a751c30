/* codec_ref.h — a second decoder of the chunk format, written from codec.h's
 * description alone, one bit at a time, for differential checks: the fuzzer
 * and the unit tests require codec_decode (with its fast paths) to agree with
 * it on every input — the same points bit for bit, or both refusing. Slow on
 * purpose: no shortcut it takes can hide one of codec.c's. */
#ifndef CB_CODEC_REF_H
#define CB_CODEC_REF_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct ref_bits {
    const uint8_t *p;
    size_t nbits, pos;
    int bad;
};

static uint64_t ref_get(struct ref_bits *b, unsigned n)
{
    uint64_t u = 0;
    for (unsigned i = 0; i < n; i++, b->pos++) {
        if (b->pos >= b->nbits) {
            b->bad = 1;
            return 0;
        }
        u = u << 1 | (uint64_t)(b->p[b->pos >> 3] >> (7 - (b->pos & 7)) & 1);
    }
    return u;
}

static uint64_t ref_wide(struct ref_bits *b)
{
    unsigned len = (unsigned)ref_get(b, 7);
    if (len > 64)
        b->bad = 1;
    return b->bad ? 0 : ref_get(b, len);
}

static uint64_t ref_unzigzag(uint64_t u) { return (u >> 1) ^ (0 - (u & 1)); }

static uint64_t ref_rice(struct ref_bits *b, uint16_t *s)
{
    unsigned k = (*s + 4u) >> 4, q = 0;
    k = k > 62 ? 62 : k;
    while (q < 20 && !b->bad && ref_get(b, 1))
        q++;
    uint64_t u = q == 20 ? ref_wide(b) : (uint64_t)q << k | ref_get(b, k);
    unsigned len = 0;
    for (uint64_t x = u; x; x >>= 1)
        len++;
    *s = (uint16_t)((3u * *s + 16u * len) >> 2);
    return u;
}

/* 0 and *n points in t[], v[] (room for cap), or -1 for a blob codec_decode
 * must refuse (a chunk with more than cap points counts as refused). */
static int codec_ref_decode(const uint8_t *blob, size_t len, int64_t *t, double *v, size_t cap, size_t *n)
{
    static const double pow10[] = {1.0, 10.0, 100.0, 1000.0, 10000.0};
    *n = 0;
    if (len < 3 || blob[0] >> 4 != 1 || (blob[0] & 15) > 5)
        return -1;
    unsigned enc = blob[0] & 15;
    size_t count = (size_t)blob[1] | (size_t)blob[2] << 8;
    if (count == 0 || count > cap)
        return -1;
    struct ref_bits b = {blob, len * 8, 24, 0};
    uint64_t dt = 0, m = 0, bits = 0;
    int64_t tt = 0;
    uint16_t st = 0, sv = 0;
    unsigned lead = 0, sig = 0;
    for (size_t i = 0; i < count && !b.bad; i++) {
        if (i == 0) {
            tt = (int64_t)ref_unzigzag(ref_wide(&b));
        } else {
            dt = i == 1 ? ref_wide(&b) : dt + ref_unzigzag(ref_rice(&b, &st));
            if (dt == 0 || dt > (uint64_t)INT64_MAX - (uint64_t)tt)
                return -1;
            tt = (int64_t)((uint64_t)tt + dt);
        }
        t[i] = tt;
        if (enc < 5) {
            m = i == 0 ? ref_unzigzag(ref_wide(&b)) : m + ref_unzigzag(ref_rice(&b, &sv));
            if ((int64_t)m < -(INT64_C(1) << 53) || (int64_t)m > INT64_C(1) << 53)
                return -1;
            v[i] = (double)(int64_t)m / pow10[enc];
            continue;
        }
        if (i == 0) {
            bits = ref_get(&b, 64);
        } else if (ref_get(&b, 1)) {
            if (ref_get(&b, 1)) {
                lead = (unsigned)ref_get(&b, 5);
                sig = (unsigned)ref_get(&b, 6);
                sig = sig ? sig : 64;
                if (lead + sig > 64)
                    return -1;
            } else if (sig == 0) {
                return -1;
            }
            bits ^= ref_get(&b, sig) << (64 - lead - sig); /* sig + lead <= 64 */
        }
        memcpy(&v[i], &bits, sizeof bits);
    }
    if (b.bad || b.nbits - b.pos >= 8 || ref_get(&b, (unsigned)(b.nbits - b.pos)) != 0)
        return -1;
    *n = count;
    return 0;
}

#endif
