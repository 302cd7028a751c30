/* codec — the chunk codec of the time-series engine (DESIGN §5): turns the
 * points (t, v) of one series into the compressed blob of one chunk row
 * (series, t_min, t_max, n, min, max, sum, blob) and back. Pure: no I/O, no
 * globals; the head owns one open appender per series, the store owns blobs.
 *
 * Points: t is an int64 (milliseconds in citybrain, any unit to the codec),
 * strictly increasing within a chunk — a series has one value per instant, so
 * the head drops duplicates and sends late points elsewhere before appending.
 * Any int64 t round-trips, so do jumps across the whole range. v is any
 * double and comes back bit for bit (NaN payloads, -0.0, ±inf, subnormals).
 *
 * Blob format, version 1:
 *   byte 0      version (1) << 4 | encoding: 0..4 = DECIMAL with that many
 *               digits after the point, 5 = XOR
 *   bytes 1-2   n, little-endian, 1..CODEC_MAX_POINTS
 *   then a bit stream, most significant bit first, zero-padded to a byte:
 *   times       t0 as wide(zigzag t0); t1 - t0 as wide; then each
 *               delta-of-delta as rice(zigzag dod) — ~1 bit at a steady cadence
 *   values      DECIMAL d: every v of the chunk is exactly m / 10^d for an
 *               integer |m| <= 2^53 (checked bit for bit, so lossless by
 *               construction): m0 as wide(zigzag), then rice(zigzag of each
 *               delta of m). Sensor readings with 1-2 decimals cost ~4-6 bits;
 *               -0.0, NaN, ±inf and 5+ decimals need XOR for the whole chunk.
 *               XOR: Gorilla — v0 as 64 raw bits, then '0' (same value), '10'
 *               + meaningful bits in the previous window, or '11' + 5 bits
 *               leading zeros + 6 bits length + the bits.
 *   Points are interleaved: t0 v0 t1 v1 ...
 *   wide(u)   7 bits bit-length L (0..64), then u in L bits.
 *   rice(u)   adaptive Rice code: q = u >> k as q ones and a zero, then the
 *             low k bits; q >= 20 escapes as 20 ones + wide(u). Each stream
 *             (times, values) keeps s, a running average of bit lengths in
 *             1/16 bits, 0 at the start of a chunk: k = min(62, (s + 4) >> 4),
 *             then s = (3s + 16 bitlen(u)) >> 2 — one outlier costs a few
 *             points, not the rest of the chunk.
 * The appender picks the smallest encoding that fits every point so far and
 * re-encodes the chunk when a point needs a wider one (DECIMAL 0 → ... →
 * DECIMAL 4 → XOR, at most 5 times a chunk), so appends are amortised O(1).
 *
 * Stats (struct codec_stats, the row's columns): n counts every point; min,
 * max and sum skip NaN (min and max are NaN, sum 0, when every value is NaN —
 * store those as NULL; SQLite turns NaN into NULL anyway). ±inf take part, so
 * sum may be ±inf, or NaN once both infinities occur. sum adds in time order.
 *
 * Measured (tests/unit/test_codec.c, 120-point chunks, 60 s cadence): bytes
 * per point 0.73 for a 1-decimal random walk, 1.1 for 2 decimals, 1.03 for
 * integer counters, 0.375 constant, 8.5 random doubles (plain Gorilla: 6.0
 * and 6.7 on the two walks). A time at an exact cadence costs 1 bit, one
 * with ±500 ms of jitter ~11 bits.
 *
 * Threads: none inside; an appender or blob is used by one thread at a time. */
#ifndef CB_CODEC_H
#define CB_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define CODEC_MAX_POINTS 65535u /* n is 16 bits; the head closes at ~120 */

struct codec_stats {
    uint32_t n;          /* points */
    int64_t t_min, t_max; /* first and last t */
    double min, max, sum; /* over the non-NaN values, see above */
};

/* The open chunk of one series. Declared here, not opaque, so the head can
 * embed one per series without a second allocation; the fields are private
 * to codec.c. Owns buf. Zero-initialised (or codec_appender_init) = empty. */
typedef struct codec_appender {
    uint8_t *buf;             /* the blob being built, cap bytes, zero past the bits */
    uint32_t cap, nbits;      /* bytes allocated; bits written, header included */
    struct codec_stats stats; /* stats.t_max is the previous t */
    uint64_t dt;              /* previous time delta */
    uint64_t v;               /* previous value: m (DECIMAL) or its bits (XOR) */
    uint16_t rice_t, rice_v;  /* Rice adaptation state of each stream */
    uint8_t enc;              /* encoding, as in byte 0 */
    uint8_t lead, sig;        /* XOR window: leading zeros, meaningful bits (0 = none) */
} codec_appender;

/* Memory of an open chunk: sizeof(codec_appender) (88 bytes) + cap, where cap
 * is within 25 % above the blob size — about 210 bytes at 120 points of
 * 1-decimal readings a minute (21 MB for 100,000 open series). */

void codec_appender_init(codec_appender *a);

/* Appends one point. O(1) amortised: a point that needs a wider encoding
 * re-encodes the chunk, O(n), at most 5 times per chunk.
 * Errors, the appender unchanged: CB_EINVALID_FIELD when t is not greater
 * than the previous t; CB_ETOO_LARGE when the chunk has CODEC_MAX_POINTS;
 * CB_ENOMEM. */
int codec_append(codec_appender *a, int64_t t, double v, cb_error *err);

/* The chunk so far as a blob of *len bytes, valid until the next call on a.
 * Owned by the appender: copy it (or write it to SQLite) before appending or
 * resetting. Requires at least one point. O(1). */
const uint8_t *codec_appender_blob(const codec_appender *a, size_t *len);

/* Stats of the points appended so far, O(1); owned by the appender. */
const struct codec_stats *codec_appender_stats(const codec_appender *a);

/* Bytes of memory the appender holds (struct + buffer), for the head's metrics. */
size_t codec_appender_mem(const codec_appender *a);

/* Hints the CPU to fetch the bytes the next append writes, for a caller that
 * knows its next appenders ahead (a batch over many series). No effect on
 * the appender; any appender, empty ones too. */
void codec_appender_prefetch(const codec_appender *a);

/* Empties the appender for the next chunk, keeping its buffer. O(blob size). */
void codec_appender_reset(codec_appender *a);

/* Frees the buffer; the appender is empty again and may be reused. */
void codec_appender_free(codec_appender *a);

/* Reads the point count of a blob from its header, O(1), so the caller can
 * size arrays for codec_decode. CB_ECORRUPT on a bad header. */
int codec_count(const uint8_t *blob, size_t len, size_t *n, cb_error *err);

/* The number of decimals d (0..4) when every value of the blob is exactly
 * m / 10^d for an integer |m| <= 2^53 (its DECIMAL encoding), -1 when its
 * values are raw doubles (XOR) or the header is bad. O(1), from the header. */
int codec_decimals(const uint8_t *blob, size_t len);

/* Decodes a whole blob into t[] and v[] (cap entries each; the blob's n must
 * be <= cap, else CB_EINVALID_FIELD) and sets *n. Validates all it reads:
 * a bad header, truncation, trailing bytes, non-zero padding, times not
 * increasing or past int64, a DECIMAL m beyond 2^53, bad lengths give
 * CB_ECORRUPT; it never reads outside blob[0..len). Well-formed but
 * non-canonical streams (an escape where a short code would do) decode, so
 * compare points, never blobs. O(n), no allocation. On error the arrays
 * hold garbage and *n is 0. */
int codec_decode(const uint8_t *blob, size_t len, int64_t *t, double *v, size_t cap,
                 size_t *n, cb_error *err);

/* Stats helpers, for the appender and for anyone recomputing a row from
 * decoded points: init to empty, then add each point in time order. */
void codec_stats_init(struct codec_stats *s);
void codec_stats_add(struct codec_stats *s, int64_t t, double v);

#endif
