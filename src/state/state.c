/* state — slot array + id hash; see state.h. */
#include "state/state.h"

#include <assert.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define HASH_EMPTY UINT32_MAX
#define HASH_TOMB (UINT32_MAX - 1)

/* A slot of the id hash: the entity's number (or HASH_EMPTY, HASH_TOMB) and
 * the upper half of its id's 64-bit hash (the lower half picks the slot), so
 * a probe reads an id, a cache miss and a strcmp, only when the fingerprints
 * agree: about once per lookup that finds its entity. */
struct hash_entry {
    uint32_t no, fp;
};

struct state {
    pthread_rwlock_t lock;
    pthread_rwlock_t dir_lock;  /* slots (the array and ids), hash: taken inside lock */
    struct state_entity *slots; /* indexed by no */
    uint32_t nslots;
    struct hash_entry *hash;
    uint32_t hash_cap;          /* power of two */
    uint32_t hash_used;         /* live + tombstones */
    size_t count;
    size_t string_bytes;        /* ids and string values */
    size_t value_bytes;         /* capacity of value arrays */
};

/* 64-bit hash of an id, eight bytes a multiply (a byte at a time, as FNV
 * does, is a chain of ~45 dependent multiplies for a typical URN id), then
 * murmur3's finalizer so that every bit of the id reaches the low bits (the
 * slot) and the high half (the fingerprint). */
static uint64_t hash_id(const char *s, size_t n)
{
    uint64_t h = 0x9E3779B97F4A7C15ULL ^ n, w;
    for (; n >= 8; n -= 8, s += 8) {
        memcpy(&w, s, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdULL;
    }
    w = 0;
    memcpy(&w, s, n);
    h = (h ^ w) * 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    return h ^ (h >> 33);
}

static void hash_clear(struct hash_entry *h, uint32_t cap)
{
    for (uint32_t i = 0; i < cap; i++)
        h[i] = (struct hash_entry){HASH_EMPTY, 0};
}

int state_create(state **out, cb_error *err)
{
    state *s = calloc(1, sizeof *s);
    if (!s)
        return cb_error_set(err, CB_ENOMEM, NULL, NULL);
    s->hash_cap = 1024;
    s->hash = malloc(s->hash_cap * sizeof *s->hash);
    if (!s->hash) {
        free(s);
        return cb_error_set(err, CB_ENOMEM, NULL, NULL);
    }
    hash_clear(s->hash, s->hash_cap);
    pthread_rwlock_init(&s->lock, NULL);
    pthread_rwlock_init(&s->dir_lock, NULL);
    *out = s;
    return 0;
}

static void entity_free(struct state_entity *e)
{
    for (uint16_t i = 0; i < e->nvalues; i++)
        if (e->values[i].kind == STATE_STR)
            free(e->values[i].v.str);
    free(e->values);
    free(e->id);
    memset(e, 0, sizeof *e);
}

void state_destroy(state *s)
{
    if (!s)
        return;
    for (uint32_t i = 0; i < s->nslots; i++)
        if (s->slots[i].id)
            entity_free(&s->slots[i]);
    free(s->slots);
    free(s->hash);
    pthread_rwlock_destroy(&s->lock);
    pthread_rwlock_destroy(&s->dir_lock);
    free(s);
}

void state_rdlock(state *s) { pthread_rwlock_rdlock(&s->lock); }
int state_tryrdlock(state *s) { return pthread_rwlock_tryrdlock(&s->lock); }
void state_wrlock(state *s) { pthread_rwlock_wrlock(&s->lock); }
void state_unlock(state *s) { pthread_rwlock_unlock(&s->lock); }
void state_dir_rdlock(state *s) { pthread_rwlock_rdlock(&s->dir_lock); }
void state_dir_unlock(state *s) { pthread_rwlock_unlock(&s->dir_lock); }

/* Slot of id[0..len) (whose hash_id is h) in the hash, or of the first free
 * place where it would go. */
static uint32_t hash_slot(const state *s, const char *id, size_t len, uint64_t h, int *found)
{
    uint32_t mask = s->hash_cap - 1, pos = (uint32_t)h & mask, fp = (uint32_t)(h >> 32), free_pos = HASH_EMPTY;
    for (;;) {
        struct hash_entry e = s->hash[pos];
        if (e.no == HASH_EMPTY) {
            *found = 0;
            return free_pos != HASH_EMPTY ? free_pos : pos;
        }
        if (e.no == HASH_TOMB) {
            if (free_pos == HASH_EMPTY)
                free_pos = pos;
        } else if (e.fp == fp && s->slots[e.no].id_len == len && memcmp(s->slots[e.no].id, id, len) == 0) {
            *found = 1;
            return pos;
        }
        pos = (pos + 1) & mask;
    }
}

static int hash_grow(state *s)
{
    uint32_t old_cap = s->hash_cap;
    struct hash_entry *old = s->hash;
    uint32_t cap = s->count * 4 > old_cap ? old_cap * 2 : old_cap; /* rehash drops tombstones */
    struct hash_entry *h = malloc((size_t)cap * sizeof *h);
    if (!h)
        return CB_ENOMEM;
    hash_clear(h, cap);
    s->hash = h;
    s->hash_cap = cap;
    s->hash_used = 0;
    for (uint32_t i = 0; i < old_cap; i++) {
        if (old[i].no >= HASH_TOMB)
            continue;
        int found;
        const struct state_entity *e = &s->slots[old[i].no];
        h[hash_slot(s, e->id, e->id_len, hash_id(e->id, e->id_len), &found)] = old[i];
        s->hash_used++;
    }
    free(old);
    return 0;
}

static int slots_reserve(state *s, uint32_t no)
{
    if (no < s->nslots)
        return 0;
    uint32_t n = s->nslots ? s->nslots : 1024;
    while (n <= no)
        n = n > UINT32_MAX / 2 ? UINT32_MAX - 1 : n * 2;
    struct state_entity *p = realloc(s->slots, (size_t)n * sizeof *p);
    if (!p)
        return CB_ENOMEM;
    memset(p + s->nslots, 0, (size_t)(n - s->nslots) * sizeof *p);
    s->slots = p;
    s->nslots = n;
    return 0;
}

static void copy_meta(struct state_entity *e, const struct state_entity *meta)
{
    e->lon = meta->lon;
    e->lat = meta->lat;
    e->district = meta->district;
    e->grid = meta->grid;
    e->heartbeat_s = meta->heartbeat_s;
    e->type = meta->type;
    e->department = meta->department;
    e->dirty = STATE_DIRTY | STATE_DIRTY_PLACE;
}

static int insert_new(state *s, uint32_t no, const char *id, cb_error *err)
{
    if ((s->hash_used + 1) * 2 > s->hash_cap && hash_grow(s) != 0)
        return cb_error_set(err, CB_ENOMEM, NULL, NULL);
    struct state_entity *e = &s->slots[no];
    if (!(e->id = strdup(id)))
        return cb_error_set(err, CB_ENOMEM, NULL, NULL);
    e->id_len = (uint32_t)strlen(id);
    int found;
    uint64_t h = hash_id(id, e->id_len);
    uint32_t pos = hash_slot(s, id, e->id_len, h, &found);
    assert(!found);
    if (s->hash[pos].no == HASH_EMPTY)
        s->hash_used++;
    s->hash[pos] = (struct hash_entry){no, (uint32_t)(h >> 32)};
    s->count++;
    s->string_bytes += strlen(id) + 1;
    return 0;
}

static void remove_locked(state *s, uint32_t no);

static int put_locked(state *s, uint32_t no, const char *id, const struct state_entity *meta, cb_error *err)
{
    if (no >= STATE_NONE - 1 || slots_reserve(s, no) != 0)
        return cb_error_set(err, CB_ENOMEM, NULL, "no room for entity %u", no);
    uint32_t other = state_find(s, id);
    if (other != STATE_NONE && other != no)
        return cb_error_set(err, CB_ECONFLICT, "id", "entity '%s' already exists", id);
    struct state_entity *e = &s->slots[no];
    if (e->id && strcmp(e->id, id) != 0)
        remove_locked(s, no); /* a number re-used for another id: replace */
    if (!e->id) {
        int rc = insert_new(s, no, id, err);
        if (rc != 0)
            return rc;
    }
    copy_meta(e, meta);
    return 0;
}

int state_put(state *s, uint32_t no, const char *id, const struct state_entity *meta, cb_error *err)
{
    pthread_rwlock_wrlock(&s->dir_lock);
    int rc = put_locked(s, no, id, meta, err);
    pthread_rwlock_unlock(&s->dir_lock);
    return rc;
}

void state_remove(state *s, uint32_t no)
{
    pthread_rwlock_wrlock(&s->dir_lock);
    remove_locked(s, no);
    pthread_rwlock_unlock(&s->dir_lock);
}

static void remove_locked(state *s, uint32_t no)
{
    if (no >= s->nslots || !s->slots[no].id)
        return;
    struct state_entity *e = &s->slots[no];
    int found;
    uint32_t pos = hash_slot(s, e->id, e->id_len, hash_id(e->id, e->id_len), &found);
    assert(found && s->hash[pos].no == no);
    s->hash[pos].no = HASH_TOMB;
    s->string_bytes -= strlen(e->id) + 1;
    for (uint16_t i = 0; i < e->nvalues; i++)
        if (e->values[i].kind == STATE_STR)
            s->string_bytes -= strlen(e->values[i].v.str) + 1;
    s->value_bytes -= (size_t)e->capvalues * sizeof *e->values;
    s->count--;
    entity_free(e);
}

static struct state_value *value_slot(state *s, struct state_entity *e, uint16_t attr)
{
    for (uint16_t i = 0; i < e->nvalues; i++)
        if (e->values[i].attr == attr)
            return &e->values[i];
    if (e->nvalues == e->capvalues) {
        uint16_t cap = e->capvalues ? (uint16_t)(e->capvalues * 2) : 2;
        if (cap < e->capvalues) /* 65536 attributes: impossible with dict ids, but be safe */
            return NULL;
        struct state_value *v = realloc(e->values, cap * sizeof *v);
        if (!v)
            return NULL;
        s->value_bytes += (size_t)(cap - e->capvalues) * sizeof *v;
        e->values = v;
        e->capvalues = cap;
    }
    struct state_value *v = &e->values[e->nvalues++];
    memset(v, 0, sizeof *v);
    v->attr = attr;
    v->ts_ms = INT64_MIN;
    return v;
}

int state_set_value(state *s, uint32_t no, uint16_t attr, enum state_kind kind, int64_t ts_ms,
                    double num, const char *str, size_t len)
{
    struct state_entity *e = no < s->nslots && s->slots[no].id ? &s->slots[no] : NULL;
    if (!e)
        return 0; /* deleted since the reading was accepted */
    e->readings++;
    if (ts_ms > e->last_seen_ms)
        e->last_seen_ms = ts_ms;
    e->dirty |= STATE_DIRTY;
    struct state_value *v = value_slot(s, e, attr);
    if (!v)
        return CB_ENOMEM;
    if (ts_ms < v->ts_ms)
        return 0;
    char *copy = NULL;
    if (kind == STATE_STR && !(copy = strndup(str, len)))
        return CB_ENOMEM;
    if (v->kind == STATE_STR) {
        s->string_bytes -= strlen(v->v.str) + 1;
        free(v->v.str);
    }
    v->kind = (uint8_t)kind;
    v->ts_ms = ts_ms;
    if (kind == STATE_STR) {
        v->v.str = copy;
        s->string_bytes += strlen(copy) + 1; /* strndup stops at an embedded NUL */
    } else if (kind == STATE_BOOL) {
        v->v.boolean = num != 0;
    } else {
        v->v.num = num;
    }
    return 1;
}

void state_move(state *s, uint32_t no, int64_t ts_ms, double lon, double lat, uint32_t district,
                uint32_t grid)
{
    if (no >= s->nslots || !s->slots[no].id)
        return;
    struct state_entity *e = &s->slots[no];
    e->readings++;
    e->dirty |= STATE_DIRTY;
    if (ts_ms > e->last_seen_ms)
        e->last_seen_ms = ts_ms;
    if (ts_ms < e->moved_ms)
        return;
    e->moved_ms = ts_ms;
    e->dirty |= STATE_DIRTY_PLACE;
    e->lon = lon;
    e->lat = lat;
    e->district = district;
    e->grid = grid;
}

void state_mark_dirty(state *s, uint32_t no, uint8_t bits)
{
    if (no < s->nslots && s->slots[no].id)
        s->slots[no].dirty |= bits;
}

void state_clear_dirty(state *s, uint32_t no)
{
    if (no < s->nslots)
        s->slots[no].dirty = 0;
}

void state_set_counters(state *s, uint32_t no, uint64_t readings, int64_t last_seen_ms)
{
    if (no >= s->nslots || !s->slots[no].id)
        return;
    s->slots[no].readings = readings;
    s->slots[no].last_seen_ms = last_seen_ms;
}

uint32_t state_find_n(const state *s, const char *id, size_t len)
{
    return state_find_hashed(s, id, len, hash_id(id, len));
}

uint64_t state_hash_n(const char *id, size_t len) { return hash_id(id, len); }

void state_prefetch(const state *s, uint64_t h, int level)
{
    const struct hash_entry *e = &s->hash[(uint32_t)h & (s->hash_cap - 1)];
    if (level == 0) {
        __builtin_prefetch(e);
        return;
    }
    if (e->no >= s->nslots || e->fp != (uint32_t)(h >> 32))
        return; /* empty, a tombstone, or another id: the lookup probes on */
    const struct state_entity *ent = &s->slots[e->no];
    if (level == 1)
        __builtin_prefetch(ent);
    else if (ent->id)
        __builtin_prefetch(ent->id);
}

uint32_t state_find_hashed(const state *s, const char *id, size_t len, uint64_t h)
{
    int found; /* h is hash_id(id, len): not asserted, that would double the work */
    uint32_t pos = hash_slot(s, id, len, h, &found);
    return found ? s->hash[pos].no : STATE_NONE;
}

uint32_t state_find(const state *s, const char *id)
{
    return state_find_n(s, id, strlen(id));
}

const struct state_entity *state_get(const state *s, uint32_t no)
{
    return no < s->nslots && s->slots[no].id ? &s->slots[no] : NULL;
}

const struct state_value *state_value_of(const struct state_entity *e, uint16_t attr)
{
    for (uint16_t i = 0; i < e->nvalues; i++)
        if (e->values[i].attr == attr)
            return &e->values[i];
    return NULL;
}

uint32_t state_slots(const state *s) { return s->nslots; }
size_t state_count(const state *s) { return s->count; }

size_t state_memory(const state *s)
{
    return sizeof *s + (size_t)s->nslots * sizeof *s->slots + (size_t)s->hash_cap * sizeof *s->hash +
           s->string_bytes + s->value_bytes;
}
