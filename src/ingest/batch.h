/* batch — readings on their way from a door (JSON, line protocol, MQTT) to the
 * WAL and the state, in the binary form the WAL stores (DESIGN.md §4):
 *
 *   u8 version (1) · u32 count · count × item
 *   item: u32 entity no · u16 attr · u8 kind · i64 ts_ms · value
 *   value: NUM f64 | BOOL u8 | STR u16 len + bytes | LOC f64 lon + f64 lat
 *
 * all little-endian. A LOC item moves the entity (attr 0). A batch is built by
 * one thread, then handed whole to the writer, which owns and frees it.
 * Cost: appends are amortised O(1); decoding is one pass. */
#ifndef CB_BATCH_H
#define CB_BATCH_H

#include "core/err.h"

#include <stddef.h>
#include <stdint.h>

enum batch_kind { BATCH_NUM = 1, BATCH_STR = 2, BATCH_BOOL = 3, BATCH_LOC = 4 };

#define BATCH_STR_MAX 4096 /* longest string value */

struct batch_item {
    uint32_t entity;
    uint16_t attr;
    uint8_t kind;      /* enum batch_kind */
    int64_t ts_ms;
    double num;        /* NUM; BOOL as 0/1; LOC: lon */
    double lat;        /* LOC */
    const char *str;   /* STR: points into the payload, not NUL-terminated */
    size_t len;
};

typedef struct batch {
    unsigned char *data; /* malloc'd; owned by the batch */
    size_t len, cap;
    uint32_t count;
    int failed;          /* an append ran out of memory */
} batch;

void batch_init(batch *b);
void batch_free(batch *b);
void batch_add(batch *b, const struct batch_item *it);
/* Calls fn for each item of an encoded payload (from the WAL: checked, so a
 * damaged payload gives CB_ECORRUPT before fn sees any item, never a crash).
 * fn returning non-zero stops. */
int batch_decode(const void *payload, size_t len,
                 int (*fn)(void *arg, const struct batch_item *it), void *arg, cb_error *err);
/* batch_decode of a payload this process built with batch_add and never
 * wrote out and read back (the writer's live batches): one pass, without the
 * check first. Damage would be a bug; it still stops at the damaged item. */
int batch_decode_built(const void *payload, size_t len,
                       int (*fn)(void *arg, const struct batch_item *it), void *arg, cb_error *err);
/* Room for about bytes of items, so a batch of known size grows once. */
void batch_reserve(batch *b, size_t bytes);

#endif
