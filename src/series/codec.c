/* codec — chunk encoding for the time-series engine; the format and its
 * reasons are in codec.h. The encoder writes into the appender's buffer bit
 * by bit; the decoder mirrors every encoder step over a bounds-checked reader
 * with a sticky error flag, so a corrupt blob can only end in CB_ECORRUPT.
 * Re-encoding a chunk into a wider encoding reuses the decoder. */
#include "series/codec.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#define CODEC_VERSION 1
#define ENC_XOR 5             /* encodings 0..4 are DECIMAL with that many digits */
#define HEADER_BYTES 3
#define RICE_QMAX 20          /* longer quotients escape to wide() */
#define POINT_MAX_BYTES 24    /* worst point: rice escape t (91 bits) + v (91 bits) */
#define DECIMAL_MAX_M (INT64_C(1) << 53) /* every |m| up to it is an exact double */
#define DECIMAL_LIMIT 9007199254740992.0  /* the same, as a double */

static const double pow10_tab[ENC_XOR] = {1.0, 10.0, 100.0, 1000.0, 10000.0};

/* ---- integers ---- */

static uint64_t zigzag(uint64_t d)
{
    return (d << 1) ^ (0 - (d >> 63));
}

static uint64_t unzigzag(uint64_t u)
{
    return (u >> 1) ^ (0 - (u & 1));
}

static unsigned bit_length(uint64_t u)
{
    return u ? 64 - (unsigned)__builtin_clzll(u) : 0;
}

static uint64_t double_bits(double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    return u;
}

static double bits_double(uint64_t u)
{
    double v;
    memcpy(&v, &u, sizeof v);
    return v;
}

/* Rice parameter from the stream's state: a running average of the bit
 * lengths of recent values, in 1/16 bits. k = that average, rounded up from
 * .75, measured best on sensor deltas (two-sided geometric noise); it forgets
 * with weight 1/4 per value, so one gap in the data costs a few points. */
static unsigned rice_k(uint16_t s)
{
    unsigned k = (s + 4u) >> 4;
    return k > 62 ? 62 : k;
}

static void rice_update(uint16_t *s, uint64_t u)
{
    *s = (uint16_t)((3u * *s + 16u * bit_length(u)) >> 2);
}

/* Exact decimal test: m with m / 10^d == v bit for bit. The division is the
 * one the decoder does, so a match is lossless whatever rounding led here. */
static int decimal_fits(double v, unsigned d, int64_t *m)
{
    double x = v * pow10_tab[d];
    if (!(x >= -DECIMAL_LIMIT && x <= DECIMAL_LIMIT))
        return 0; /* NaN, inf or too large for an exact m */
    int64_t r = (int64_t)(x < 0 ? x - 0.5 : x + 0.5);
    if (double_bits((double)r / pow10_tab[d]) != double_bits(v))
        return 0;
    *m = r;
    return 1;
}

static int encoding_fits(double v, unsigned enc)
{
    int64_t m;
    return enc == ENC_XOR || decimal_fits(v, enc, &m);
}

/* The narrowest encoding from `from` up that holds v. */
static unsigned encoding_for(double v, unsigned from)
{
    while (from < ENC_XOR && !encoding_fits(v, from))
        from++;
    return from;
}

/* ---- writing ---- */

static void put_bits(codec_appender *a, uint64_t u, unsigned n)
{
    assert(n <= 64 && (n == 64 || u >> n == 0));
    assert(a->nbits + n <= a->cap * 8u);
    if (n >= 1 && n <= 57 && (a->nbits >> 3) + 8 <= a->cap) {
        /* the common case: OR the bits into one big-endian word (the buffer is
         * zero past the bits, and append_point reserved the word's bytes) */
        uint8_t *b = a->buf + (a->nbits >> 3);
        uint64_t w;
        memcpy(&w, b, sizeof w);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        w = __builtin_bswap64(w) | u << (64 - (a->nbits & 7) - n);
        w = __builtin_bswap64(w);
#else
        w |= u << (64 - (a->nbits & 7) - n);
#endif
        memcpy(b, &w, sizeof w);
        a->nbits += n;
        return;
    }
    while (n) {
        unsigned used = a->nbits & 7, room = 8 - used;
        unsigned take = n < room ? n : room;
        unsigned chunk = (unsigned)(u >> (n - take)) & ((1u << take) - 1);
        a->buf[a->nbits >> 3] |= (uint8_t)(chunk << (room - take));
        a->nbits += take;
        n -= take;
    }
}

static void put_wide(codec_appender *a, uint64_t u)
{
    unsigned len = bit_length(u);
    put_bits(a, len, 7);
    put_bits(a, u, len);
}

static void put_rice(codec_appender *a, uint16_t *s, uint64_t u)
{
    unsigned k = rice_k(*s);
    uint64_t q = u >> k;
    if (q < RICE_QMAX) {
        put_bits(a, ((UINT64_C(1) << q) - 1) << 1, (unsigned)q + 1);
        put_bits(a, u & ((UINT64_C(1) << k) - 1), k);
    } else {
        put_bits(a, (UINT64_C(1) << RICE_QMAX) - 1, RICE_QMAX);
        put_wide(a, u);
    }
    rice_update(s, u);
}

static void put_time(codec_appender *a, int64_t t)
{
    if (a->stats.n == 0) {
        put_wide(a, zigzag((uint64_t)t));
        return;
    }
    uint64_t dt = (uint64_t)t - (uint64_t)a->stats.t_max;
    if (a->stats.n == 1)
        put_wide(a, dt);
    else
        put_rice(a, &a->rice_t, zigzag(dt - a->dt));
    a->dt = dt;
}

static void put_decimal(codec_appender *a, double v)
{
    int64_t m = 0;
    int ok = decimal_fits(v, a->enc, &m); /* the caller chose enc to fit v */
    assert(ok);
    (void)ok;
    if (a->stats.n == 0)
        put_wide(a, zigzag((uint64_t)m));
    else
        put_rice(a, &a->rice_v, zigzag((uint64_t)m - a->v));
    a->v = (uint64_t)m;
}

/* Gorilla: reuse the previous window of meaningful bits when the XOR fits. */
static void put_xor(codec_appender *a, double v)
{
    uint64_t bits = double_bits(v), x = bits ^ a->v;
    a->v = bits;
    if (a->stats.n == 0) {
        put_bits(a, bits, 64);
        return;
    }
    if (x == 0) {
        put_bits(a, 0, 1);
        return;
    }
    unsigned lz = (unsigned)__builtin_clzll(x), tz = (unsigned)__builtin_ctzll(x);
    if (a->sig && lz >= a->lead && tz >= 64u - a->lead - a->sig) {
        put_bits(a, 2, 2);
        put_bits(a, x >> (64u - a->lead - a->sig), a->sig);
        return;
    }
    a->lead = (uint8_t)(lz > 31 ? 31 : lz);
    a->sig = (uint8_t)(64 - a->lead - tz);
    put_bits(a, 3, 2);
    put_bits(a, a->lead, 5);
    put_bits(a, a->sig & 63, 6); /* 64 is written as 0 */
    put_bits(a, x >> tz, a->sig);
}

static int reserve(codec_appender *a, size_t bytes, cb_error *err)
{
    size_t need = (a->nbits + 7) / 8 + bytes;
    if (need <= a->cap)
        return 0;
    size_t cap = a->cap + a->cap / 4; /* small steps: 100,000 chunks stay open */
    if (cap < need)
        cap = need;
    cap = (cap + 15) & ~(size_t)15;
    uint8_t *grown = realloc(a->buf, cap);
    if (!grown)
        return cb_error_set(err, CB_ENOMEM, "chunk", "cannot grow a chunk to %zu bytes", cap);
    memset(grown + a->cap, 0, cap - a->cap);
    a->buf = grown;
    a->cap = (uint32_t)cap;
    return 0;
}

/* Encodes a point in a's encoding, which must hold v; only fails on memory. */
static int append_point(codec_appender *a, int64_t t, double v, cb_error *err)
{
    int rc = reserve(a, POINT_MAX_BYTES + 8 + (a->stats.n ? 0 : HEADER_BYTES), err); /* + put_bits' word */
    if (rc)
        return rc;
    if (a->stats.n == 0) {
        a->buf[0] = (uint8_t)(CODEC_VERSION << 4 | a->enc);
        a->nbits = HEADER_BYTES * 8;
        codec_stats_init(&a->stats); /* so a zeroed appender works too */
    }
    put_time(a, t);
    if (a->enc == ENC_XOR)
        put_xor(a, v);
    else
        put_decimal(a, v);
    codec_stats_add(&a->stats, t, v);
    a->buf[1] = (uint8_t)(a->stats.n & 0xff);
    a->buf[2] = (uint8_t)(a->stats.n >> 8);
    return 0;
}

/* ---- reading ---- */

struct cursor {
    const uint8_t *p;
    size_t nbits, pos;
    int bad;           /* set by any read past the end; checked per point */
    unsigned enc;
    uint32_t n, i;
    int64_t t;
    uint64_t dt, v;
    uint16_t rice_t, rice_v;
    unsigned lead, sig;
};

/* The next 64 bits from pos, most significant first; the top 57 are valid.
 * Only when 8 whole bytes from pos's byte are inside the blob (has_word). */
static inline uint64_t peek_at(const uint8_t *p, size_t pos)
{
    uint64_t w;
    memcpy(&w, p + (pos >> 3), sizeof w);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    w = __builtin_bswap64(w);
#endif
    return w << (pos & 7);
}

static inline uint64_t peek_word(const struct cursor *c)
{
    return peek_at(c->p, c->pos);
}

/* One Rice value from word w, whose top `valid` bits are the stream from
 * the value on, when it is short (no escape, q + 1 + k <= valid bits): its
 * length in bits, else 0. */
static inline unsigned rice_short_in(uint64_t w, unsigned valid, uint16_t s, uint64_t *u)
{
    unsigned k = rice_k(s), q = (unsigned)__builtin_clzll(~w | 1); /* ~w | 1 is never 0 */
    if (q >= RICE_QMAX || q + 1 + k > valid)
        return 0;
    *u = ((uint64_t)q << k) | (k ? (w << (q + 1)) >> (64 - k) : 0);
    return q + 1 + k;
}

/* rice_short_in of a word from peek_word (57 valid bits). */
static inline unsigned rice_short(uint64_t w, uint16_t s, uint64_t *u)
{
    return rice_short_in(w, 57, s, u);
}

static inline int has_word(const struct cursor *c)
{
    return (c->pos >> 3) + 8 <= c->nbits >> 3;
}

static uint64_t get_bits(struct cursor *c, unsigned n)
{
    if (n >= 1 && n <= 57 && has_word(c)) { /* the common case: one load, two shifts */
        uint64_t u = peek_word(c) >> (64 - n);
        c->pos += n;
        return u;
    }
    if (n > c->nbits - c->pos) {
        c->bad = 1;
        return 0;
    }
    uint64_t u = 0;
    while (n) {
        unsigned used = c->pos & 7, room = 8 - used;
        unsigned take = n < room ? n : room;
        unsigned byte = c->p[c->pos >> 3];
        u = (u << take) | ((byte >> (room - take)) & ((1u << take) - 1));
        c->pos += take;
        n -= take;
    }
    return u;
}

static uint64_t get_wide(struct cursor *c)
{
    unsigned len = (unsigned)get_bits(c, 7);
    if (len > 64) {
        c->bad = 1;
        return 0;
    }
    return get_bits(c, len);
}

static uint64_t get_rice(struct cursor *c, uint16_t *s)
{
    unsigned k = rice_k(*s), q = 0;
    if (has_word(c)) { /* the unary ones and the k bits from one word */
        uint64_t w = peek_word(c), u;
        unsigned len = rice_short(w, *s, &u);
        if (len) {
            c->pos += len;
            rice_update(s, u);
            return u;
        }
        q = (unsigned)__builtin_clzll(~w | 1);
        q = q < RICE_QMAX ? q : RICE_QMAX;
        c->pos += q + (q < RICE_QMAX); /* and the terminating zero */
    } else {
        while (q < RICE_QMAX && get_bits(c, 1))
            q++;
    }
    uint64_t u = q == RICE_QMAX ? get_wide(c) : ((uint64_t)q << k) | get_bits(c, k);
    rice_update(s, u);
    return u;
}

/* Times must increase and stay within int64: 1 <= dt <= INT64_MAX - t. */
static void get_time(struct cursor *c)
{
    if (c->i == 0) {
        c->t = (int64_t)unzigzag(get_wide(c));
        return;
    }
    if (c->i == 1)
        c->dt = get_wide(c);
    else
        c->dt += unzigzag(get_rice(c, &c->rice_t));
    if (c->dt == 0 || c->dt > (uint64_t)INT64_MAX - (uint64_t)c->t)
        c->bad = 1;
    else
        c->t = (int64_t)((uint64_t)c->t + c->dt);
}

static double get_decimal(struct cursor *c)
{
    if (c->i == 0)
        c->v = unzigzag(get_wide(c));
    else
        c->v += unzigzag(get_rice(c, &c->rice_v));
    int64_t m = (int64_t)c->v;
    if (m < -DECIMAL_MAX_M || m > DECIMAL_MAX_M)
        c->bad = 1; /* the encoder never writes one: a corrupt chunk */
    return (double)m / pow10_tab[c->enc];
}

static double get_xor(struct cursor *c)
{
    if (c->i == 0) {
        c->v = get_bits(c, 64);
        return bits_double(c->v);
    }
    if (get_bits(c, 1) == 0)
        return bits_double(c->v);
    if (get_bits(c, 1) == 1) {
        c->lead = (unsigned)get_bits(c, 5);
        c->sig = (unsigned)get_bits(c, 6);
        c->sig = c->sig ? c->sig : 64;
        if (c->lead + c->sig > 64)
            c->bad = 1;
    } else if (c->sig == 0) {
        c->bad = 1; /* '10' before any window was set */
    }
    if (c->bad)
        return 0;
    c->v ^= get_bits(c, c->sig) << (64 - c->lead - c->sig);
    return bits_double(c->v);
}

static int cursor_open(struct cursor *c, const uint8_t *blob, size_t len, cb_error *err)
{
    memset(c, 0, sizeof *c);
    if (len < HEADER_BYTES)
        return cb_error_set(err, CB_ECORRUPT, "chunk", "chunk of %zu bytes has no header", len);
    if (blob[0] >> 4 != CODEC_VERSION || (blob[0] & 15) > ENC_XOR)
        return cb_error_set(err, CB_ECORRUPT, "chunk", "unknown chunk format 0x%02x", blob[0]);
    c->n = (uint32_t)blob[1] | (uint32_t)blob[2] << 8;
    if (c->n == 0)
        return cb_error_set(err, CB_ECORRUPT, "chunk", "chunk has no points");
    if (len > SIZE_MAX / 8)
        return cb_error_set(err, CB_ECORRUPT, "chunk", "chunk of %zu bytes is too large", len);
    c->p = blob;
    c->nbits = len * 8;
    c->pos = HEADER_BYTES * 8;
    c->enc = blob[0] & 15;
    return 0;
}

static int cursor_next(struct cursor *c, int64_t *t, double *v, cb_error *err)
{
    assert(c->i < c->n);
    get_time(c);
    *v = c->enc == ENC_XOR ? get_xor(c) : get_decimal(c);
    *t = c->t;
    if (c->bad)
        return cb_error_set(err, CB_ECORRUPT, "chunk", "point %u of %u is corrupt", c->i, c->n);
    c->i++;
    return 0;
}

/* The fast path of codec_decode: the points of a DECIMAL chunk after its
 * first two, with the state in locals and one word load per value. It reads
 * buf (the blob, or a zero-padded copy of its tail) while 16 bytes are left
 * in it, so two short values (at most 114 bits) never need a bounds check,
 * and takes a point only when it ends within the data's nbits. A point it
 * cannot take whole — a long or escaped code, a time or value out of range,
 * past the data — it leaves to cursor_next, which decodes or reports it as
 * before. Almost every point of a scan comes this way. */
static void decimal_run(struct cursor *c, const uint8_t *buf, size_t buf_bytes, size_t pos, size_t nbits,
                        int64_t *t, double *v)
{
    size_t pos0 = pos;
    uint32_t i = c->i;
    uint64_t dt = c->dt, m = c->v;
    int64_t tt = c->t;
    uint16_t rt = c->rice_t, rv = c->rice_v;
    const double scale = pow10_tab[c->enc];
    for (; i < c->n && (pos >> 3) + 16 <= buf_bytes; i++) {
        uint64_t ut, uv, w = peek_at(buf, pos);
        unsigned lt = rice_short(w, rt, &ut);
        if (!lt)
            break;
        /* the value from the same word when it is in the bits read: a load
         * less on the chain from one point's position to the next */
        unsigned lv = rice_short_in(w << lt, 57 - lt, rv, &uv);
        if (!lv)
            lv = rice_short(peek_at(buf, pos + lt), rv, &uv);
        if (!lv || pos + lt + lv > nbits)
            break;
        uint64_t dt2 = dt + unzigzag(ut), m2 = m + unzigzag(uv);
        if (dt2 == 0 || dt2 > (uint64_t)INT64_MAX - (uint64_t)tt || (int64_t)m2 < -DECIMAL_MAX_M ||
            (int64_t)m2 > DECIMAL_MAX_M)
            break;
        rice_update(&rt, ut);
        rice_update(&rv, uv);
        pos += lt + lv;
        dt = dt2;
        m = m2;
        tt = (int64_t)((uint64_t)tt + dt);
        t[i] = tt;
        v[i] = (double)(int64_t)m / scale;
    }
    c->pos += pos - pos0;
    c->i = i;
    c->dt = dt;
    c->v = m;
    c->t = tt;
    c->rice_t = rt;
    c->rice_v = rv;
}

/* decimal_run over the blob in place, then over a zero-padded copy of the
 * last bytes, where the in-place run must stop. */
static void decode_decimal_run(struct cursor *c, int64_t *t, double *v)
{
    assert(c->enc != ENC_XOR && c->i >= 2);
    size_t nbytes = c->nbits >> 3;
    decimal_run(c, c->p, nbytes, c->pos, c->nbits, t, v);
    size_t from = c->pos >> 3;
    if (c->i == c->n || nbytes - from >= 16)
        return;
    uint8_t tail[32] = {0};
    memcpy(tail, c->p + from, nbytes - from);
    decimal_run(c, tail, sizeof tail, c->pos - from * 8, c->nbits - from * 8, t, v);
}

/* After the last point: only zero padding up to the end of the last byte. */
static int cursor_close(struct cursor *c, cb_error *err)
{
    assert(c->i == c->n);
    size_t rest = c->nbits - c->pos;
    if (rest >= 8 || (rest && get_bits(c, (unsigned)rest) != 0))
        return cb_error_set(err, CB_ECORRUPT, "chunk", "%zu stray bits after the last point", rest);
    return 0;
}

/* ---- the appender ---- */

void codec_appender_init(codec_appender *a)
{
    memset(a, 0, sizeof *a);
    codec_stats_init(&a->stats);
}

/* The encoding that holds all of a's points, starting from enc: a value
 * that fits a narrower DECIMAL but not enc is too large once scaled, and
 * so is it for every wider DECIMAL: only XOR is left. */
static unsigned encoding_for_all(const codec_appender *a, unsigned enc)
{
    struct cursor c;
    int64_t t;
    double v;
    int rc = cursor_open(&c, a->buf, (a->nbits + 7) / 8, NULL);
    while (rc == 0 && enc != ENC_XOR && c.i < c.n) {
        rc = cursor_next(&c, &t, &v, NULL);
        if (!encoding_fits(v, enc))
            enc = ENC_XOR;
    }
    assert(rc == 0); /* our own blob */
    return enc;
}

/* Re-encodes a's points in encoding enc, or XOR if one of them does not fit,
 * then swaps the new chunk in; a is unchanged on failure. */
static int reencode(codec_appender *a, unsigned enc, cb_error *err)
{
    codec_appender b;
    struct cursor c;
    int64_t t;
    double v;
    codec_appender_init(&b);
    b.enc = (uint8_t)encoding_for_all(a, enc);
    int rc = cursor_open(&c, a->buf, (a->nbits + 7) / 8, NULL);
    while (rc == 0 && c.i < c.n) {
        rc = cursor_next(&c, &t, &v, NULL);
        assert(rc == 0);
        rc = append_point(&b, t, v, err);
    }
    if (rc) {
        codec_appender_free(&b);
        return rc;
    }
    free(a->buf);
    *a = b;
    return 0;
}

int codec_append(codec_appender *a, int64_t t, double v, cb_error *err)
{
    if (a->stats.n == CODEC_MAX_POINTS)
        return cb_error_set(err, CB_ETOO_LARGE, "chunk", "chunk already has %u points",
                            CODEC_MAX_POINTS);
    if (a->stats.n == 0) {
        a->enc = (uint8_t)encoding_for(v, 0);
        return append_point(a, t, v, err);
    }
    if (t <= a->stats.t_max)
        return cb_error_set(err, CB_EINVALID_FIELD, "t",
                            "time %lld is not after the previous point's %lld", (long long)t,
                            (long long)a->stats.t_max);
    if (!encoding_fits(v, a->enc)) {
        int rc = reencode(a, encoding_for(v, a->enc), err);
        if (rc)
            return rc;
    }
    return append_point(a, t, v, err);
}

const uint8_t *codec_appender_blob(const codec_appender *a, size_t *len)
{
    assert(a->stats.n > 0);
    *len = (a->nbits + 7) / 8;
    return a->buf;
}

const struct codec_stats *codec_appender_stats(const codec_appender *a)
{
    return &a->stats;
}

size_t codec_appender_mem(const codec_appender *a)
{
    return sizeof *a + a->cap;
}

void codec_appender_prefetch(const codec_appender *a)
{
    if (a->buf)
        __builtin_prefetch(a->buf + (a->nbits >> 3), 1);
}

void codec_appender_reset(codec_appender *a)
{
    uint8_t *buf = a->buf;
    uint32_t cap = a->cap;
    if (buf)
        memset(buf, 0, (a->nbits + 7) / 8);
    codec_appender_init(a);
    a->buf = buf;
    a->cap = cap;
}

void codec_appender_free(codec_appender *a)
{
    free(a->buf);
    codec_appender_init(a);
}

/* ---- decoding ---- */

int codec_count(const uint8_t *blob, size_t len, size_t *n, cb_error *err)
{
    struct cursor c;
    int rc = cursor_open(&c, blob, len, err);
    *n = rc ? 0 : c.n;
    return rc;
}

int codec_decimals(const uint8_t *blob, size_t len)
{
    struct cursor c;
    return cursor_open(&c, blob, len, NULL) != 0 || c.enc == ENC_XOR ? -1 : (int)c.enc;
}

int codec_decode(const uint8_t *blob, size_t len, int64_t *t, double *v, size_t cap,
                 size_t *n, cb_error *err)
{
    struct cursor c;
    *n = 0;
    int rc = cursor_open(&c, blob, len, err);
    if (rc)
        return rc;
    if (c.n > cap)
        return cb_error_set(err, CB_EINVALID_FIELD, "cap", "chunk has %u points, room for %zu",
                            c.n, cap);
    while (rc == 0 && c.i < c.n) {
        if (c.enc != ENC_XOR && c.i >= 2)
            decode_decimal_run(&c, t, v);
        if (c.i < c.n)
            rc = cursor_next(&c, &t[c.i], &v[c.i], err);
    }
    if (rc == 0)
        rc = cursor_close(&c, err);
    if (rc == 0)
        *n = c.n;
    return rc;
}

/* ---- stats ---- */

void codec_stats_init(struct codec_stats *s)
{
    s->n = 0;
    s->t_min = s->t_max = 0;
    s->min = s->max = __builtin_nan("");
    s->sum = 0;
}

void codec_stats_add(struct codec_stats *s, int64_t t, double v)
{
    if (s->n++ == 0)
        s->t_min = t;
    s->t_max = t;
    if (v != v)
        return;
    if (!(v >= s->min))
        s->min = v; /* also the first non-NaN value, min being NaN until then */
    if (!(v <= s->max))
        s->max = v;
    s->sum += v;
}
