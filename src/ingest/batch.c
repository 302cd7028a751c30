/* batch — encoding of readings for the WAL; see batch.h. */
#include "ingest/batch.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#define BATCH_VERSION 1
#define HEADER_BYTES 5

void batch_init(batch *b)
{
    memset(b, 0, sizeof *b);
}

void batch_free(batch *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

static int reserve(batch *b, size_t n)
{
    if (b->failed)
        return -1;
    if (b->len + n <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap * 2 : 4096;
    while (cap < b->len + n)
        cap *= 2;
    unsigned char *p = realloc(b->data, cap);
    if (!p) {
        b->failed = 1;
        return -1;
    }
    b->data = p;
    b->cap = cap;
    if (b->len == 0) { /* header first */
        b->data[0] = BATCH_VERSION;
        memset(b->data + 1, 0, 4);
        b->len = HEADER_BYTES;
    }
    return 0;
}

/* On little-endian hosts a field is one memcpy, which compiles to one load
 * or store (the writer decodes every reading twice: check, then apply). */
static void put_le(unsigned char *p, uint64_t v, int bytes)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    memcpy(p, &v, (size_t)bytes);
#else
    for (int i = 0; i < bytes; i++)
        p[i] = (unsigned char)(v >> (8 * i));
#endif
}

static uint64_t get_le(const unsigned char *p, int bytes)
{
    uint64_t v = 0;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    memcpy(&v, p, (size_t)bytes);
#else
    for (int i = 0; i < bytes; i++)
        v |= (uint64_t)p[i] << (8 * i);
#endif
    return v;
}

static void put_f64(unsigned char *p, double d)
{
    uint64_t u;
    memcpy(&u, &d, 8);
    put_le(p, u, 8);
}

static double get_f64(const unsigned char *p)
{
    uint64_t u = get_le(p, 8);
    double d;
    memcpy(&d, &u, 8);
    return d;
}

static size_t value_bytes(const struct batch_item *it)
{
    switch (it->kind) {
    case BATCH_NUM: return 8;
    case BATCH_BOOL: return 1;
    case BATCH_STR: return 2 + it->len;
    default: return 16;
    }
}

void batch_add(batch *b, const struct batch_item *it)
{
    assert(it->kind >= BATCH_NUM && it->kind <= BATCH_LOC);
    assert(it->kind != BATCH_STR || it->len <= BATCH_STR_MAX);
    if (reserve(b, HEADER_BYTES + 15 + value_bytes(it)) != 0)
        return;
    unsigned char *p = b->data + b->len;
    put_le(p, it->entity, 4);
    put_le(p + 4, it->attr, 2);
    p[6] = it->kind;
    put_le(p + 7, (uint64_t)it->ts_ms, 8);
    p += 15;
    switch (it->kind) {
    case BATCH_NUM: put_f64(p, it->num); break;
    case BATCH_BOOL: p[0] = it->num != 0; break;
    case BATCH_STR:
        put_le(p, it->len, 2);
        memcpy(p + 2, it->str, it->len);
        break;
    default:
        put_f64(p, it->num);
        put_f64(p + 8, it->lat);
    }
    b->len += 15 + value_bytes(it);
    b->count++;
    put_le(b->data + 1, b->count, 4);
}

/* Reads one item at p (avail bytes); returns its size or 0 if damaged. */
static size_t decode_item(const unsigned char *p, size_t avail, struct batch_item *it)
{
    if (avail < 15)
        return 0;
    memset(it, 0, sizeof *it);
    it->entity = (uint32_t)get_le(p, 4);
    it->attr = (uint16_t)get_le(p + 4, 2);
    it->kind = p[6];
    it->ts_ms = (int64_t)get_le(p + 7, 8);
    p += 15;
    avail -= 15;
    switch (it->kind) {
    case BATCH_NUM:
        if (avail < 8)
            return 0;
        it->num = get_f64(p);
        return 23;
    case BATCH_BOOL:
        if (avail < 1 || p[0] > 1)
            return 0;
        it->num = p[0];
        return 16;
    case BATCH_STR:
        if (avail < 2 || (it->len = get_le(p, 2)) > BATCH_STR_MAX || avail < 2 + it->len)
            return 0;
        it->str = (const char *)p + 2;
        return 17 + it->len;
    case BATCH_LOC:
        if (avail < 16)
            return 0;
        it->num = get_f64(p);
        it->lat = get_f64(p + 8);
        return 31;
    }
    return 0;
}

/* Walks every item, calling fn (when set) for each. */
static int walk(const unsigned char *p, size_t len, int (*fn)(void *arg, const struct batch_item *it),
                void *arg, cb_error *err)
{
    uint32_t count = (uint32_t)get_le(p + 1, 4);
    size_t off = HEADER_BYTES;
    for (uint32_t i = 0; i < count; i++) {
        struct batch_item it;
        size_t n = decode_item(p + off, len - off, &it);
        if (n == 0)
            return cb_error_set(err, CB_ECORRUPT, NULL, "batch: item %u of %u is damaged", i, count);
        off += n;
        int rc = fn ? fn(arg, &it) : 0;
        if (rc != 0)
            return rc;
    }
    if (off != len)
        return cb_error_set(err, CB_ECORRUPT, NULL, "batch: %zu trailing bytes", len - off);
    return 0;
}

int batch_decode(const void *payload, size_t len,
                 int (*fn)(void *arg, const struct batch_item *it), void *arg, cb_error *err)
{
    const unsigned char *p = payload;
    if (len < HEADER_BYTES || p[0] != BATCH_VERSION)
        return cb_error_set(err, CB_ECORRUPT, NULL, "batch: bad header");
    /* The whole payload is checked before fn sees an item, so a damaged
     * record applies nothing rather than its first half. */
    int rc = walk(p, len, NULL, NULL, err);
    return rc != 0 ? rc : walk(p, len, fn, arg, err);
}

int batch_decode_built(const void *payload, size_t len,
                       int (*fn)(void *arg, const struct batch_item *it), void *arg, cb_error *err)
{
    const unsigned char *p = payload;
    assert(len >= HEADER_BYTES && p[0] == BATCH_VERSION);
    return walk(p, len, fn, arg, err);
}

void batch_reserve(batch *b, size_t bytes)
{
    reserve(b, bytes);
}
