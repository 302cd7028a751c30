/* ingest — parse and validate the three doors into batches, replay, apply,
 * checkpoint; see ingest.h.
 *
 * JSON is read with json_scan in place, never as a tree: a first pass checks
 * the whole text (invalid JSON anywhere refuses the body, as jansson did), a
 * second validates the readings. Error fields are named only for readings
 * that are rejected. */
#include "ingest/ingest.h"

#include "core/clock.h"
#include "core/log.h"
#include "core/text.h"
#include "ingest/json_scan.h"
#include "ingest/lineproto.h"

#include <assert.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define INGEST_LP_PARSERS 4 /* parses of line protocol at once: the HTTP thread's and the workers' */

struct ingest {
    const struct cb_config *cfg;
    entities *ents;
    state *st;
    dict *names;
    wal *wal;
    writer *writer;
    db *ckpt_db;                /* checkpoints: the entity flusher's while it runs, else the opening/closing thread's */
    struct {                    /* line protocol parsers, one per parse at a time */
        pthread_mutex_t lock;
        lp_parser *p;
    } lp[INGEST_LP_PARSERS];
    atomic_ullong rejected;     /* readings refused by validation */
    uint64_t replayed;          /* records replayed at start */
    series *series;             /* history; borrowed */
    uint64_t apply_lsn;         /* the record being applied (writer thread, or start-up) */
    int apply_state;            /* 0 while replaying records the checkpoint already holds */
    struct series_point *points; /* the record's numeric readings, for history; grown, owned */
    size_t npoints, cap_points;
    struct ingest_observer obs; /* applied == NULL: none */
};

#define ATTR_CACHE 32     /* attribute names remembered by one parse (a power of two) */
#define FEW_MEMBERS 16    /* objects up to this size find repeated keys pair by pair */

/* An attribute id a parse has already asked the dict for, so that a batch
 * repeating a few names takes the dict's mutex once per name. The parse keeps
 * ATTR_CACHE of them, direct-mapped by a hash of the name; len 0 is empty. */
struct attr_entry {
    uint8_t len;
    uint16_t id;
    char name[DICT_NAME_MAX];
};

/* A member of a JSON object as read from the (already checked) text. */
struct member {
    struct json_scan_str key;
    struct json_scan_value value;
};

/* What one parse needs; the state's read lock is held while readings are
 * validated. The scratch and members buffers are the parse's own (malloc'd,
 * grown, freed by ctx_free). */
/* Lines of a line-protocol body whose entity lookups run ahead of the parse:
 * a line's hash entry is fetched AHEAD lines before the parse reaches it,
 * its entity AHEAD/2 before, its id AHEAD/4 before. Among 100,000 entities
 * each is a cache miss, and the parse thread spent ~40 % of its time
 * waiting on them one after another. */
#define AHEAD 16

struct ahead_id {
    const char *id; /* into the body */
    size_t len;
    uint64_t h;     /* state_hash_n */
};

struct lookahead {
    const char *body, *next, *end; /* the body; the next line to peek at; the body's end */
    struct ahead_id ring[AHEAD];
    unsigned first, count;
};

struct parse_ctx {
    ingest *in;
    struct lookahead *ahead;    /* line protocol only, else NULL */
    const struct principal *p;
    batch *out;
    struct ingest_report *rep;
    const struct ingest_parts *parts; /* line protocol, a long body: NULL unless parts go on early */
    size_t nparts;              /* parts taken so far */
    cb_error *err;              /* the error that stopped the parse, when a part's take failed */
    int64_t now_ms;
    int telemetry;              /* errors name "payload.x" rather than "readings[i].values.x" */
    const char *text_end;       /* end of the JSON text, to read a saved value again */
    char *scratch;              /* decoded JSON strings, one at a time */
    size_t scratch_cap;
    struct member *members;     /* the object collect_members read last */
    size_t members_cap;
    int nomem;                  /* a buffer could not grow: the parse fails with CB_ENOMEM */
    struct attr_entry attrs[ATTR_CACHE];
};

static void ctx_free(struct parse_ctx *c)
{
    free(c->scratch);
    free(c->members);
}

/* --- reports --- */

void ingest_report_init(struct ingest_report *r)
{
    r->accepted = r->rejected = 0;
    r->errors = json_array();
}

void ingest_report_free(struct ingest_report *r)
{
    json_decref(r->errors);
    r->errors = NULL;
}

static int report_full(const struct parse_ctx *c)
{
    return json_array_size(c->rep->errors) >= INGEST_REPORT_MAX_ERRORS;
}

static void reject(struct parse_ctx *c, size_t index, size_t readings, const cb_error *e)
{
    c->rep->rejected += readings;
    atomic_fetch_add(&c->in->rejected, readings);
    if (!report_full(c))
        json_array_append_new(c->rep->errors,
                              json_pack("{s:I, s:o, s:s, s:o}", "index", (json_int_t)index, "field",
                                        text_json(e->field), "code", cb_err_name(e->code), "message",
                                        text_json(e->message)));
}

/* reject() naming the field only now: good readings never pay for the text. */
static void reject_at(struct parse_ctx *c, size_t index, size_t readings, cb_error *e, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void reject_at(struct parse_ctx *c, size_t index, size_t readings, cb_error *e, const char *fmt, ...)
{
    if (!report_full(c)) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->field, sizeof e->field, fmt, ap);
        va_end(ap);
    }
    reject(c, index, readings, e);
}

json_t *ingest_report_json(const struct ingest_report *r, int *status)
{
    json_t *o = json_pack("{s:I, s:I, s:O}", "accepted", (json_int_t)r->accepted, "rejected",
                          (json_int_t)r->rejected, "errors", r->errors);
    *status = 200;
    if (r->accepted > 0)
        return o;
    json_t *first = json_array_get(r->errors, 0);
    const char *field = first ? json_string_value(json_object_get(first, "field")) : "readings";
    char msg[128];
    snprintf(msg, sizeof msg, r->rejected ? "no reading was accepted: %zu rejected (see errors)"
                                          : "the batch holds no readings", r->rejected);
    json_object_set_new(o, "error", json_pack("{s:s, s:s, s:s}", "code", cb_err_name(CB_EINVALID_FIELD),
                                              "message", msg, "field", field));
    *status = 400;
    return o;
}

/* --- shared validation; errors leave the field to reject_at --- */

static int check_time(struct parse_ctx *c, int64_t ts, cb_error *e)
{
    if (ts > c->now_ms + (int64_t)c->in->cfg->max_future_s * 1000)
        return cb_error_set(e, CB_EINVALID_FIELD, NULL, "time is more than %d s in the future",
                            c->in->cfg->max_future_s);
    if (ts < c->now_ms - (int64_t)c->in->cfg->max_past_s * 1000)
        return cb_error_set(e, CB_EINVALID_FIELD, NULL, "time is more than %d s in the past",
                            c->in->cfg->max_past_s);
    return 0;
}

/* The entity id of a line-protocol line at p, when it is a plain tag value
 * (no escapes; the parse finds the others itself); *next is the next line. */
static int peek_lp_id(const char *p, const char *end, const char **id, size_t *len, const char **next)
{
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *eol = nl ? nl : end, *sp = memchr(p, ' ', (size_t)(eol - p));
    const char *keys_end = sp ? sp : eol;
    *next = nl ? nl + 1 : end;
    for (const char *q = memchr(p, ',', (size_t)(keys_end - p)); q;
         q = memchr(q + 1, ',', (size_t)(keys_end - q - 1))) {
        size_t room = (size_t)(keys_end - q - 1), key = room > 3 && !memcmp(q + 1, "id=", 3) ? 3
                                                       : room > 7 && !memcmp(q + 1, "entity=", 7) ? 7 : 0;
        if (!key)
            continue;
        const char *v = q + 1 + key, *ve = memchr(v, ',', (size_t)(keys_end - v));
        ve = ve ? ve : keys_end;
        *id = v;
        *len = (size_t)(ve - v);
        return ve > v && !memchr(v, '\\', *len);
    }
    return 0;
}

/* Keeps AHEAD lines' ids peeked and hashed, and moves each one's prefetch a
 * level on as the parse nears it. */
static void lookahead_advance(struct lookahead *la, const state *st)
{
    while (la->count < AHEAD && la->next < la->end) {
        struct ahead_id *a = &la->ring[(la->first + la->count) % AHEAD];
        if (!peek_lp_id(la->next, la->end, &a->id, &a->len, &la->next))
            continue;
        a->h = state_hash_n(a->id, a->len);
        state_prefetch(st, a->h, 0);
        la->count++;
    }
    if (la->count > AHEAD / 2)
        state_prefetch(st, la->ring[(la->first + AHEAD / 2) % AHEAD].h, 1);
    if (la->count > AHEAD / 4)
        state_prefetch(st, la->ring[(la->first + AHEAD / 4) % AHEAD].h, 2);
}

/* state_find_n, with the hash the lookahead already has when id is the
 * token it peeked (the same bytes of the body; an unescaped copy is not). */
static uint32_t lookahead_find(struct lookahead *la, const state *st, const char *id, size_t len)
{
    uintptr_t at = (uintptr_t)id;
    if (at < (uintptr_t)la->body || at >= (uintptr_t)la->end)
        return state_find_n(st, id, len);
    while (la->count && (uintptr_t)la->ring[la->first].id < at) { /* lines the parse rejected */
        la->first = (la->first + 1) % AHEAD;
        la->count--;
    }
    if (!la->count || la->ring[la->first].id != id || la->ring[la->first].len != len)
        return state_find_n(st, id, len);
    uint64_t h = la->ring[la->first].h;
    la->first = (la->first + 1) % AHEAD;
    la->count--;
    return state_find_hashed(st, id, len, h);
}

/* The entity named by id[0..len) (NULL: none given). */
static int resolve_entity(struct parse_ctx *c, const char *id, size_t len, uint32_t *no, cb_error *e)
{
    *no = !id ? STATE_NONE : c->ahead ? lookahead_find(c->ahead, c->in->st, id, len) : state_find_n(c->in->st, id, len);
    if (*no == STATE_NONE)
        return cb_error_set(e, CB_ENOT_FOUND, NULL, "unknown entity '%.*s'", id ? (int)(len < 128 ? len : 128) : 0,
                            id ? id : "");
    if (c->p && c->p->role == ROLE_DEVICE && c->p->entity != *no)
        return cb_error_set(e, CB_EFORBIDDEN, NULL, "a device may write only its own entity");
    return 0;
}

static uint32_t name_hash(const char *s, size_t n)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

/* The dict id of the attribute name[0..len), len <= DICT_NAME_MAX (not
 * NUL-terminated), through the parse's cache. */
static int attr_id(struct parse_ctx *c, const char *name, size_t len, uint16_t *id, cb_error *e)
{
    assert(len <= DICT_NAME_MAX);
    struct attr_entry *slot = &c->attrs[name_hash(name, len) & (ATTR_CACHE - 1)];
    if (len > 0 && slot->len == len && memcmp(slot->name, name, len) == 0) {
        *id = slot->id;
        return 0;
    }
    char copy[DICT_NAME_MAX + 1];
    memcpy(copy, name, len);
    copy[len] = '\0';
    int rc = dict_id(c->in->names, DICT_ATTR, copy, 1, id, NULL, e);
    if (rc == 0) {
        slot->len = (uint8_t)len;
        slot->id = *id;
        memcpy(slot->name, name, len);
    }
    return rc;
}

/* --- JSON: decoded strings and objects --- */

static char *scratch_take(struct parse_ctx *c, size_t n)
{
    if (n > c->scratch_cap) {
        size_t cap = c->scratch_cap ? c->scratch_cap : 256;
        while (cap < n)
            cap *= 2;
        char *p = realloc(c->scratch, cap);
        if (!p) {
            c->nomem = 1;
            return NULL;
        }
        c->scratch = p;
        c->scratch_cap = cap;
    }
    return c->scratch;
}

/* The decoded text of s, NUL-terminated, in the scratch (valid until the
 * next call); NULL when out of memory. */
static const char *text_of(struct parse_ctx *c, const struct json_scan_str *s)
{
    char *t = scratch_take(c, s->dlen + 1);
    if (t)
        json_scan_copy(s, t, s->dlen + 1);
    return t;
}

/* A scanner positioned to read the saved value v again (its text was checked
 * when it was first read, so the walk cannot fail). */
static void scan_again(struct parse_ctx *c, json_scan *s, const struct json_scan_value *v)
{
    struct json_scan_value again;
    json_scan_init(s, v->at, (size_t)(c->text_end - v->at));
    int rc = json_scan_value(s, &again);
    assert(rc == 0 && again.type == v->type);
    (void)rc;
}

static uint32_t key_hash(struct parse_ctx *c, const struct json_scan_str *k)
{
    const char *t = k->escaped ? text_of(c, k) : k->ptr;
    return t ? name_hash(t, k->dlen) : 0; /* out of memory: any hash will do, the parse fails */
}

/* Folds repeated keys in m[0..n) as jansson does: one entry per key, at its
 * first place, holding its last value. Returns the entries kept. */
static size_t fold_few(struct member *m, size_t n)
{
    size_t kept = 0;
    for (size_t j = 0; j < n; j++) {
        size_t i = 0;
        while (i < kept && !json_scan_str_eq(&m[i].key, &m[j].key))
            i++;
        if (i < kept)
            m[i].value = m[j].value;
        else
            m[kept++] = m[j];
    }
    return kept;
}

/* fold_few for large objects: a hash table of the kept entries. */
static size_t fold_many(struct parse_ctx *c, struct member *m, size_t n)
{
    size_t cap = 64, kept = 0;
    while (cap < 2 * n)
        cap *= 2;
    uint32_t *slots = malloc(cap * sizeof *slots);
    if (!slots) {
        c->nomem = 1;
        return 0;
    }
    memset(slots, 0xff, cap * sizeof *slots);
    for (size_t j = 0; j < n; j++) {
        size_t pos = key_hash(c, &m[j].key) & (cap - 1);
        while (slots[pos] != UINT32_MAX && !json_scan_str_eq(&m[slots[pos]].key, &m[j].key))
            pos = (pos + 1) & (cap - 1);
        if (slots[pos] != UINT32_MAX) {
            m[slots[pos]].value = m[j].value;
        } else {
            slots[pos] = (uint32_t)kept;
            m[kept++] = m[j];
        }
    }
    free(slots);
    return kept;
}

/* Reads the members of the object open on s (to its end) into c->members,
 * repeated keys folded; returns how many (0 and c->nomem when out of
 * memory). Member values that are objects or arrays are skipped: scan_again
 * reads them. */
static size_t collect_members(struct parse_ctx *c, json_scan *s)
{
    struct member m;
    size_t n = 0;
    while (json_scan_member(s, &m.key, &m.value) == 1) {
        json_scan_skip(s, &m.value);
        if (n == c->members_cap) {
            size_t cap = c->members_cap ? c->members_cap * 2 : 64;
            struct member *grown = realloc(c->members, cap * sizeof *grown);
            if (!grown) {
                c->nomem = 1; /* read on to the object's end all the same: the parse fails */
                continue;
            }
            c->members = grown;
            c->members_cap = cap;
        }
        c->members[n++] = m;
    }
    if (c->nomem)
        return 0;
    return n <= FEW_MEMBERS ? fold_few(c->members, n) : fold_many(c, c->members, n);
}

static double number_of(const struct json_scan_value *v)
{
    return v->type == JSON_SCAN_INTEGER ? (double)v->u.integer : v->u.real;
}

static int is_number(const struct json_scan_value *v)
{
    return v->type == JSON_SCAN_INTEGER || v->type == JSON_SCAN_REAL;
}

/* --- JSON: readings --- */

/* RFC 3339 text or epoch milliseconds; absent (NULL) means now. */
static int json_ts(struct parse_ctx *c, const struct json_scan_value *v, int64_t *ts, cb_error *e)
{
    const char *text;
    if (!v) {
        *ts = c->now_ms;
        return 0;
    }
    if (v->type == JSON_SCAN_INTEGER)
        *ts = v->u.integer;
    else if (v->type != JSON_SCAN_STRING || !(text = text_of(c, &v->u.str)) || clock_parse_rfc3339(text, ts) != 0)
        return cb_error_set(e, CB_EINVALID_FIELD, NULL, "ts must be RFC 3339 text or epoch milliseconds");
    return check_time(c, *ts, e);
}

static int json_attr_id(struct parse_ctx *c, const struct json_scan_str *key, uint16_t *id, cb_error *e)
{
    char name[DICT_NAME_MAX + 1];
    if (key->dlen <= DICT_NAME_MAX) {
        if (key->escaped)
            json_scan_copy(key, name, sizeof name);
        return attr_id(c, key->escaped ? name : key->ptr, key->dlen, id, e);
    }
    const char *text = text_of(c, key); /* too long a name: the dict says so */
    return text ? dict_id(c->in->names, DICT_ATTR, text, 1, id, NULL, e) : cb_error_set(e, CB_ENOMEM, NULL, NULL);
}

/* One attribute value into an item. */
static int value_item(struct parse_ctx *c, const struct member *m, uint32_t no, int64_t ts, struct batch_item *it,
                      cb_error *e)
{
    const struct json_scan_value *v = &m->value;
    *it = (struct batch_item){.entity = no, .ts_ms = ts, .kind = BATCH_NUM};
    int rc = json_attr_id(c, &m->key, &it->attr, e);
    if (rc != 0)
        return rc;
    switch (v->type) {
    case JSON_SCAN_INTEGER:
    case JSON_SCAN_REAL:
        it->num = number_of(v);
        return 0;
    case JSON_SCAN_TRUE:
    case JSON_SCAN_FALSE:
        it->kind = BATCH_BOOL;
        it->num = v->type == JSON_SCAN_TRUE;
        return 0;
    case JSON_SCAN_STRING:
        if (v->u.str.dlen > BATCH_STR_MAX)
            return cb_error_set(e, CB_EINVALID_FIELD, NULL, "text values are at most 4096 bytes");
        it->kind = BATCH_STR;
        it->str = v->u.str.escaped ? text_of(c, &v->u.str) : v->u.str.ptr;
        it->len = v->u.str.dlen;
        return it->str ? 0 : cb_error_set(e, CB_ENOMEM, NULL, NULL);
    default:
        return cb_error_set(e, CB_EINVALID_FIELD, NULL, "a value must be a number, text or true/false");
    }
}

/* Adds every member of c->members[0..n) (but ts/location in telemetry) as readings. */
static void add_values(struct parse_ctx *c, size_t index, size_t n, uint32_t no, int64_t ts)
{
    for (size_t i = 0; i < n; i++) {
        const struct member *m = &c->members[i];
        if (c->telemetry && (json_scan_str_is(&m->key, "ts") || json_scan_str_is(&m->key, "location")))
            continue;
        struct batch_item it;
        cb_error e;
        if (value_item(c, m, no, ts, &it, &e) != 0) {
            char attr[DICT_NAME_MAX + 1]; /* the field quotes at most 64 bytes of the name */
            json_scan_copy(&m->key, attr, sizeof attr);
            if (c->telemetry)
                reject_at(c, index, 1, &e, "payload.%s", attr);
            else
                reject_at(c, index, 1, &e, "readings[%zu].values.%s", index, attr);
            continue;
        }
        batch_add(c->out, &it);
        c->rep->accepted++;
    }
}

static int location_item(struct parse_ctx *c, const struct json_scan_value *v, uint32_t no, int64_t ts,
                         struct batch_item *it, cb_error *e)
{
    struct json_scan_value ll[2], x;
    size_t n = 0;
    if (v->type == JSON_SCAN_ARRAY) {
        json_scan s;
        scan_again(c, &s, v);
        for (; n <= 2 && json_scan_element(&s, &x) == 1; n++) {
            if (n < 2)
                ll[n] = x;
            json_scan_skip(&s, &x); /* a third element is enough to know; the rest is not read */
        }
    }
    if (n != 2 || !is_number(&ll[0]) || !is_number(&ll[1]))
        return cb_error_set(e, CB_EINVALID_FIELD, NULL, "location must be [lon, lat]");
    double lon = number_of(&ll[0]), lat = number_of(&ll[1]);
    if (!(lon >= -180 && lon <= 180 && lat >= -90 && lat <= 90))
        return cb_error_set(e, CB_EINVALID_FIELD, NULL, "location [%g, %g] is out of range", lon, lat);
    *it = (struct batch_item){.entity = no, .kind = BATCH_LOC, .ts_ms = ts, .num = lon, .lat = lat};
    return 0;
}

static void add_location(struct parse_ctx *c, size_t index, const struct json_scan_value *loc, uint32_t no, int64_t ts)
{
    struct batch_item it;
    cb_error e;
    if (location_item(c, loc, no, ts, &it, &e) != 0) {
        if (c->telemetry)
            reject_at(c, index, 1, &e, "payload.location");
        else
            reject_at(c, index, 1, &e, "readings[%zu].location", index);
        return;
    }
    batch_add(c->out, &it);
    c->rep->accepted++;
}

/* The members of a reading that matter, each the last of its name
 * (type 0: absent); the attributes of the last "values" are in c->members. */
struct item {
    int is_object;
    struct json_scan_value entity, ts, values, location;
    size_t nvalues; /* distinct attributes in values */
};

/* Reads the reading v from the list scanner s, up to its end. */
static void read_item(struct parse_ctx *c, json_scan *s, const struct json_scan_value *v, struct item *it)
{
    struct json_scan_str key;
    struct json_scan_value m;
    memset(it, 0, sizeof *it);
    it->is_object = v->type == JSON_SCAN_OBJECT;
    if (!it->is_object) {
        json_scan_skip(s, v);
        return;
    }
    while (json_scan_member(s, &key, &m) == 1) {
        if (json_scan_str_is(&key, "entity")) {
            it->entity = m;
        } else if (json_scan_str_is(&key, "ts")) {
            it->ts = m;
        } else if (json_scan_str_is(&key, "values")) {
            it->values = m;
            it->nvalues = 0;
            if (m.type == JSON_SCAN_OBJECT) {
                it->nvalues = collect_members(c, s); /* reads it to its end */
                continue;
            }
        } else if (json_scan_str_is(&key, "location")) {
            it->location = m;
        }
        json_scan_skip(s, &m);
    }
}

static void parse_item(struct parse_ctx *c, size_t i, const struct item *it)
{
    size_t nvalues = it->nvalues, n = nvalues + (it->location.type != 0);
    const char *id = it->entity.type == JSON_SCAN_STRING ? text_of(c, &it->entity.u.str) : NULL;
    uint32_t no;
    int64_t ts;
    cb_error e;
    if (!it->is_object || (it->values.type != JSON_SCAN_OBJECT && !it->location.type)) {
        cb_error_set(&e, CB_EINVALID_FIELD, NULL, "a reading is {\"entity\", \"ts\"?, \"values\": {...}, \"location\"?}");
        reject_at(c, i, n ? n : 1, &e, "readings[%zu]", i);
    } else if (resolve_entity(c, id, id ? strlen(id) : 0, &no, &e) != 0) {
        reject_at(c, i, n ? n : 1, &e, "readings[%zu].entity", i);
    } else if (json_ts(c, it->ts.type ? &it->ts : NULL, &ts, &e) != 0) {
        reject_at(c, i, n ? n : 1, &e, "readings[%zu].ts", i);
    } else {
        add_values(c, i, nvalues, no, ts);
        if (it->location.type)
            add_location(c, i, &it->location, no, ts);
    }
}

/* Checks the whole body and finds its list of readings: the root array, or
 * the last "readings" member of the root object (jansson keeps the last).
 * *members counts the object members of the whole body. */
static int find_readings(const char *body, size_t len, struct json_scan_value *list, size_t *members, cb_error *err)
{
    json_scan s;
    struct json_scan_value root, v;
    struct json_scan_str key;
    json_scan_init(&s, body, len);
    list->type = 0;
    if (json_scan_value(&s, &root) == 0 && root.type != JSON_SCAN_OBJECT && root.type != JSON_SCAN_ARRAY)
        json_scan_fail(&s, root.at, "'[' or '{' expected");
    if (!s.error && root.type == JSON_SCAN_ARRAY) {
        *list = root;
        json_scan_skip(&s, &root);
    } else if (!s.error) {
        while (json_scan_member(&s, &key, &v) == 1) {
            if (json_scan_str_is(&key, "readings"))
                *list = v;
            json_scan_skip(&s, &v);
        }
    }
    if (json_scan_finish(&s) != 0)
        return json_scan_error(&s, "body", err);
    *members = s.members;
    if (list->type != JSON_SCAN_ARRAY)
        return cb_error_set(err, CB_EMISSING_FIELD, "readings", "the body must be {\"readings\": [...]}");
    return 0;
}

/* Readings in the list, when its members may hold more than max. */
static int count_readings(struct parse_ctx *c, const struct json_scan_value *list, long long max, cb_error *err)
{
    json_scan s;
    struct json_scan_value v;
    struct item it;
    size_t n = 0;
    scan_again(c, &s, list);
    while (json_scan_element(&s, &v) == 1) {
        read_item(c, &s, &v, &it);
        n += it.nvalues + (it.location.type != 0);
    }
    if (c->nomem)
        return cb_error_set(err, CB_ENOMEM, NULL, NULL);
    if ((long long)n > max)
        return cb_error_set(err, CB_ETOO_LARGE, "readings", "%zu readings in one request; at most %lld", n, max);
    return 0;
}

int ingest_parse_json(ingest *in, const char *body, size_t len, const struct principal *p, batch *out,
                      struct ingest_report *rep, cb_error *err)
{
    struct json_scan_value list;
    size_t members = 0;
    int rc = find_readings(body, len, &list, &members, err);
    if (rc != 0)
        return rc;
    struct parse_ctx c = {.in = in, .p = p, .out = out, .rep = rep, .now_ms = clock_now_ms(), .text_end = body + len};
    /* Every reading is a member (an attribute, or a location): few members, few readings. */
    if ((long long)members > in->cfg->max_batch_readings)
        rc = count_readings(&c, &list, in->cfg->max_batch_readings, err);
    if (rc == 0) {
        json_scan s;
        struct json_scan_value v;
        struct item it;
        scan_again(&c, &s, &list);
        state_dir_rdlock(in->st);
        for (size_t i = 0; json_scan_element(&s, &v) == 1; i++) {
            read_item(&c, &s, &v, &it);
            parse_item(&c, i, &it);
        }
        state_dir_unlock(in->st);
        if (c.nomem)
            rc = cb_error_set(err, CB_ENOMEM, NULL, NULL);
    }
    ctx_free(&c);
    return rc;
}

/* The member named name among c->members[0..n), or NULL. */
static const struct json_scan_value *member_named(struct parse_ctx *c, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (json_scan_str_is(&c->members[i].key, name))
            return &c->members[i].value;
    return NULL;
}

int ingest_parse_telemetry(ingest *in, const char *entity_id, const char *payload, size_t len, batch *out,
                           struct ingest_report *rep, cb_error *err)
{
    json_scan s;
    struct json_scan_value obj;
    json_scan_init(&s, payload, len);
    if (json_scan_value(&s, &obj) != 0 || obj.type != JSON_SCAN_OBJECT || json_scan_skip(&s, &obj) != 0 ||
        json_scan_finish(&s) != 0)
        return cb_error_set(err, CB_EINVALID_JSON, "payload", "telemetry must be a JSON object of attribute: value");
    struct parse_ctx c = {.in = in, .out = out, .rep = rep, .now_ms = clock_now_ms(), .telemetry = 1,
                          .text_end = payload + len};
    scan_again(&c, &s, &obj);
    size_t n = collect_members(&c, &s);
    const struct json_scan_value *ts_v = member_named(&c, n, "ts"), *loc = member_named(&c, n, "location");
    uint32_t no;
    int64_t ts;
    cb_error e;
    state_dir_rdlock(in->st);
    if (resolve_entity(&c, entity_id, entity_id ? strlen(entity_id) : 0, &no, &e) != 0) {
        reject_at(&c, 0, n ? n : 1, &e, "topic");
    } else if (json_ts(&c, ts_v, &ts, &e) != 0) {
        reject_at(&c, 0, n ? n : 1, &e, "ts");
    } else {
        add_values(&c, 0, n, no, ts);
        if (loc)
            add_location(&c, 0, loc, no, ts);
    }
    state_dir_unlock(in->st);
    int rc = c.nomem ? cb_error_set(err, CB_ENOMEM, NULL, NULL) : 0;
    ctx_free(&c);
    return rc;
}

/* --- line protocol --- */

static const struct lp_str *lp_entity_tag(const struct lp_point *pt)
{
    for (size_t i = 0; i < pt->ntags; i++) {
        const struct lp_str *k = &pt->tags[i].key;
        if ((k->len == 2 && !memcmp(k->ptr, "id", 2)) || (k->len == 6 && !memcmp(k->ptr, "entity", 6)))
            return &pt->tags[i].value;
    }
    return NULL;
}

static int lp_field_item(struct parse_ctx *c, const struct lp_field *f, uint32_t no, int64_t ts,
                         struct batch_item *it, cb_error *e)
{
    if (f->key.len > DICT_NAME_MAX)
        return cb_error_set(e, CB_EINVALID_FIELD, NULL, "attribute names are at most %d bytes", DICT_NAME_MAX);
    *it = (struct batch_item){.entity = no, .ts_ms = ts, .kind = BATCH_NUM};
    int rc = attr_id(c, f->key.ptr, f->key.len, &it->attr, e);
    if (rc != 0)
        return rc;
    switch (f->type) {
    case LP_FLOAT: it->num = f->v.f; break;
    case LP_INT: it->num = (double)f->v.i; break;
    case LP_UINT: it->num = (double)f->v.u; break;
    case LP_BOOL: it->kind = BATCH_BOOL; it->num = f->v.b; break;
    case LP_STRING:
        if (f->v.s.len > BATCH_STR_MAX)
            return cb_error_set(e, CB_EINVALID_FIELD, NULL, "text values are at most 4096 bytes");
        it->kind = BATCH_STR;
        it->str = f->v.s.ptr;
        it->len = f->v.s.len;
    }
    return 0;
}

/* Room for a part: its readings and a line's more; items of a number are 23 bytes. */
#define PART_BYTES ((INGEST_PART_READINGS + 64) * 24)

/* A part's readings (whole lines) go to the writer while the parse goes on.
 * The directory lock is let go meanwhile: take may wait for the writer, and
 * the writer may wait for an entity's creation, which waits for that lock. */
static int take_part(struct parse_ctx *c)
{
    if (c->out->failed)
        return cb_error_set(c->err, CB_ENOMEM, NULL, NULL);
    state_dir_unlock(c->in->st);
    int rc = c->parts->take(c->parts->arg, c->out, c->nparts == 0, c->err);
    state_dir_rdlock(c->in->st);
    if (rc != 0)
        return rc;
    assert(c->out->count == 0);
    c->nparts++;
    batch_reserve(c->out, PART_BYTES);
    return 0;
}

static int lp_on_point(void *arg, size_t line, const struct lp_point *pt)
{
    struct parse_ctx *c = arg;
    lookahead_advance(c->ahead, c->in->st);
    const struct lp_str *tag = lp_entity_tag(pt);
    uint32_t no;
    cb_error e;
    int64_t ts = pt->time_ns / 1000000;
    if (!tag) {
        cb_error_set(&e, CB_EMISSING_FIELD, NULL, "line %zu: tag 'id' naming the entity is missing", line);
        reject_at(c, line, pt->nfields, &e, "line %zu", line);
    } else if (resolve_entity(c, tag->ptr, tag->len, &no, &e) != 0 || check_time(c, ts, &e) != 0) {
        reject_at(c, line, pt->nfields, &e, "line %zu", line);
    } else {
        for (size_t i = 0; i < pt->nfields; i++) {
            struct batch_item it;
            if (lp_field_item(c, &pt->fields[i], no, ts, &it, &e) != 0) {
                reject_at(c, line, 1, &e, "line %zu", line);
                continue;
            }
            batch_add(c->out, &it);
            c->rep->accepted++;
        }
    }
    return c->parts && c->out->count >= INGEST_PART_READINGS ? take_part(c) : 0;
}

static int lp_on_error(void *arg, size_t line, const cb_error *e)
{
    reject(arg, line, 1, e);
    return 0;
}

int ingest_parse_lp(ingest *in, const char *body, size_t len, const char *precision, const struct principal *p,
                    const struct ingest_parts *parts, batch *out, struct ingest_report *rep, cb_error *err)
{
    enum lp_precision prec;
    int rc = lp_precision_parse(precision, &prec, err);
    if (rc != 0)
        return rc;
    if (parts && (long long)lp_readings_at_most(body, len) > in->cfg->max_batch_readings)
        parts = NULL;
    struct lookahead ahead = {.body = body, .next = body, .end = body + len};
    struct parse_ctx c = {.in = in, .ahead = &ahead, .p = p, .out = out, .rep = rep, .parts = parts, .err = err,
                          .now_ms = clock_now_ms()};
    if (parts)
        batch_reserve(out, PART_BYTES);
    else
        batch_reserve(out, len / 3); /* a numeric line of ~70 bytes is a 23-byte item: grown once, if ever */
    size_t k = 0; /* a free parser, else wait for the first */
    while (k < INGEST_LP_PARSERS && pthread_mutex_trylock(&in->lp[k].lock) != 0)
        k++;
    if (k == INGEST_LP_PARSERS)
        pthread_mutex_lock(&in->lp[k = 0].lock);
    state_dir_rdlock(in->st); /* ids only: the writer keeps applying meanwhile */
    rc = lp_parse(in->lp[k].p, body, len, prec, c.now_ms * 1000000, lp_on_point, lp_on_error, &c);
    state_dir_unlock(in->st);
    pthread_mutex_unlock(&in->lp[k].lock);
    if (rc == 0 && (long long)(rep->accepted + rep->rejected) > in->cfg->max_batch_readings)
        rc = cb_error_set(err, CB_ETOO_LARGE, "body", "%zu readings in one request; at most %lld",
                          rep->accepted + rep->rejected, in->cfg->max_batch_readings);
    return rc;
}

/* --- the writer's side: apply and checkpoint --- */

/* Keeps a numeric reading for history, which takes the record's at once. */
static int keep_point(ingest *in, const struct batch_item *it)
{
    if (in->npoints == in->cap_points) {
        size_t cap = in->cap_points ? in->cap_points * 2 : 1024;
        struct series_point *p = realloc(in->points, cap * sizeof *p);
        if (!p)
            return series_append(in->series, it->entity, it->attr, it->ts_ms, it->num) < 0 ? CB_ENOMEM : 0;
        in->points = p;
        in->cap_points = cap;
    }
    in->points[in->npoints++] = (struct series_point){it->entity, it->attr, it->ts_ms, it->num};
    return 0;
}

static int apply_item(void *arg, const struct batch_item *it)
{
    ingest *in = arg;
    if (it->kind == BATCH_NUM && keep_point(in, it) != 0)
        return CB_ENOMEM;
    if (!in->apply_state)
        return 0;
    if (it->kind == BATCH_LOC) {
        uint32_t district, grid;
        region_store_locate(entities_regions(in->ents), it->num, it->lat, &district, &grid);
        state_move(in->st, it->entity, it->ts_ms, it->num, it->lat, district, grid);
    } else {
        enum state_kind kind = it->kind == BATCH_STR ? STATE_STR : it->kind == BATCH_BOOL ? STATE_BOOL : STATE_NUM;
        if (state_set_value(in->st, it->entity, it->attr, kind, it->ts_ms, it->num, it->str, it->len) < 0)
            return CB_ENOMEM;
    }
    if (in->obs.applied)
        in->obs.applied(in->obs.ctx, it, state_get(in->st, it->entity));
    return 0;
}

/* A record of the WAL; built: made by this process's batch_add (the writer's
 * live batches), else read back from disk and checked whole first. */
static int apply_payload(ingest *in, uint64_t lsn, const void *payload, size_t len, int built)
{
    cb_error err;
    in->apply_lsn = lsn;
    in->npoints = 0;
    state_wrlock(in->st);
    int rc = built ? batch_decode_built(payload, len, apply_item, in, &err)
                   : batch_decode(payload, len, apply_item, in, &err);
    state_unlock(in->st);
    if (series_append_many(in->series, in->points, in->npoints) != 0 && rc == 0)
        rc = CB_ENOMEM;
    if (rc != 0)
        log_event(LOG_ERROR, "apply", "lsn=%llu error=%s msg=\"%s\"", (unsigned long long)lsn, cb_err_name(rc),
                  rc == CB_ENOMEM ? "out of memory" : err.message);
    return 0; /* a damaged record is logged and skipped; the rest of the log still applies */
}

/* The writer's callback: its live batches. */
static int apply_record(void *ctx, uint64_t lsn, const void *payload, size_t len)
{
    return apply_payload(ctx, lsn, payload, len, 1);
}

static int replay_record(void *ctx, uint64_t lsn, const void *payload, size_t len)
{
    ingest *in = ctx;
    in->replayed++;
    in->apply_state = lsn > entities_checkpoint_lsn(in->ents); /* older ones rebuild the series head only */
    int rc = apply_payload(in, lsn, payload, len, 0);
    in->apply_state = 1;
    return rc;
}

/* One retention rule for the whole city for now (per-type rules come with the
 * rules engine's configuration). */
static void history_keep(void *arg, uint32_t entity, uint16_t attr, struct series_keep *keep)
{
    const struct cb_config *cfg = arg;
    (void)entity;
    (void)attr;
    keep->raw_ms = (int64_t)cfg->history_raw_days * 86400000LL;
    keep->rollup_ms = (int64_t)cfg->history_rollup_days * 86400000LL;
}

/* The series' batch to its flusher thread first (no I/O here), then the
 * state; the WAL keeps everything since the last batch the flusher stored. */
static int checkpoint(void *ctx, uint64_t lsn, uint64_t *trim_lsn, cb_error *err)
{
    ingest *in = ctx;
    if (in->obs.checkpoint)
        in->obs.checkpoint(in->obs.ctx);
    int rc = series_flush(in->series, lsn, clock_now_ms(), err);
    if (rc == 0)
        rc = entity_checkpoint_seal(in->ents, lsn, err);
    /* the WAL keeps what either flusher has not stored yet */
    uint64_t keep = series_replay_lsn(in->series), stored = entities_checkpoint_lsn(in->ents);
    if (keep && keep - 1 < *trim_lsn)
        *trim_lsn = keep - 1;
    if (stored < *trim_lsn)
        *trim_lsn = stored;
    return rc; /* retention runs on the series' flusher thread (series_set_retention) */
}

/* Where replay starts: after the checkpoint, or earlier for the series head. */
static uint64_t replay_from(ingest *in)
{
    uint64_t from = entities_checkpoint_lsn(in->ents) + 1, keep = series_replay_lsn(in->series);
    return keep && keep < from ? keep : from;
}

/* A WAL behind the checkpoint was lost or replaced: keep it aside, start a
 * fresh one and restart the count, since SQLite holds everything up to the checkpoint. */
static int wal_behind_checkpoint(ingest *in, const char *dir, const struct wal_options *wo, cb_error *err)
{
    char aside[CONFIG_PATH_MAX + 64];
    snprintf(aside, sizeof aside, "%s.behind-%lld", dir, (long long)clock_now_ms());
    log_event(LOG_WARN, "wal", "msg=\"WAL is behind the checkpoint; moved aside\" next_lsn=%llu checkpoint_lsn=%llu aside=%s",
              (unsigned long long)wal_next_lsn(in->wal), (unsigned long long)entities_checkpoint_lsn(in->ents), aside);
    wal_close(in->wal);
    in->wal = NULL;
    if (rename(dir, aside) != 0)
        return cb_error_set(err, CB_EIO, "data_dir", "cannot move %s aside", dir);
    int rc = wal_open(dir, wo, &in->wal, err);
    return rc == 0 ? entity_checkpoint(in->ents, in->ckpt_db, 0, err) : rc;
}

static int open_wal(ingest *in, cb_error *err)
{
    char dir[CONFIG_PATH_MAX + 8];
    snprintf(dir, sizeof dir, "%s/wal", in->cfg->data_dir);
    struct wal_options wo = {(enum wal_fsync)in->cfg->wal_fsync, 0};
    int rc = wal_open(dir, &wo, &in->wal, err);
    if (rc == 0 && wal_next_lsn(in->wal) <= entities_checkpoint_lsn(in->ents))
        rc = wal_behind_checkpoint(in, dir, &wo, err);
    if (rc != 0)
        return rc;
    struct wal_replay_stats st;
    double t0 = clock_mono_s();
    rc = wal_replay(in->wal, replay_from(in), replay_record, in, &st, err);
    if (rc == 0)
        log_event(st.stop == WAL_STOP_NONE ? LOG_INFO : LOG_WARN, "replay",
                  "records=%llu from_lsn=%llu took_ms=%.1f stop=%s segment=%s offset=%llu",
                  (unsigned long long)in->replayed, (unsigned long long)replay_from(in),
                  (clock_mono_s() - t0) * 1000, wal_stop_name(st.stop), st.stop_segment[0] ? st.stop_segment : "-",
                  (unsigned long long)st.stop_offset);
    return rc;
}

int ingest_open(const struct cb_config *cfg, entities *ents, series *history, ingest **out, cb_error *err)
{
    return ingest_open_observed(cfg, ents, history, NULL, out, err);
}

int ingest_open_observed(const struct cb_config *cfg, entities *ents, series *history,
                         const struct ingest_observer *obs, ingest **out, cb_error *err)
{
    ingest *in = calloc(1, sizeof *in);
    if (!in)
        return cb_error_set(err, CB_ENOMEM, NULL, NULL);
    if (obs)
        in->obs = *obs;
    in->cfg = cfg;
    in->ents = ents;
    in->series = history;
    in->apply_state = 1;
    in->st = entities_state(ents);
    in->names = entities_dict(ents);
    int rc = 0;
    for (size_t k = 0; k < INGEST_LP_PARSERS; k++) {
        pthread_mutex_init(&in->lp[k].lock, NULL);
        if (rc == 0)
            rc = lp_parser_new(&in->lp[k].p, NULL, err);
    }
    if (rc == 0)
        rc = db_open(cfg->data_dir, &in->ckpt_db, err);
    if (rc == 0)
        rc = open_wal(in, err);
    if (rc == 0)
        series_set_retention(history, history_keep, (void *)cfg);
    if (rc == 0) /* from here the checkpoint connection is the entity flusher's */
        rc = entity_flusher_start(ents, in->ckpt_db, err);
    struct writer_options wo = {in->wal, (uint64_t)cfg->ingest_queue, cfg->checkpoint_interval, apply_record,
                                checkpoint, in};
    if (rc == 0)
        rc = writer_start(&wo, &in->writer, err);
    if (rc != 0) {
        ingest_close(in);
        return rc;
    }
    *out = in;
    return 0;
}

void ingest_close(ingest *in)
{
    if (!in)
        return;
    writer_stop(in->writer); /* its last checkpoint seals what it can */
    entity_flusher_stop(in->ents);
    if (in->wal && in->ckpt_db) { /* what that checkpoint could not seal (one was in flight) */
        cb_error err;
        uint64_t lsn = wal_next_lsn(in->wal) - 1;
        if (lsn > entities_checkpoint_lsn(in->ents) && entity_checkpoint(in->ents, in->ckpt_db, lsn, &err) != 0)
            log_event(LOG_ERROR, "checkpoint", "error=%s msg=\"%s\"", cb_err_name(err.code), err.message);
    }
    wal_close(in->wal);
    db_close(in->ckpt_db);
    for (size_t k = 0; k < INGEST_LP_PARSERS; k++) {
        lp_parser_free(in->lp[k].p);
        pthread_mutex_destroy(&in->lp[k].lock);
    }
    free(in->points);
    free(in);
}

int ingest_submit(ingest *in, batch *b, writer_done_fn done, void *arg)
{
    if (b->failed)
        return CB_ENOMEM;
    return writer_submit(in->writer, b, done, arg);
}

int ingest_submit_wait(ingest *in, batch *b, writer_done_fn done, void *arg)
{
    if (b->failed)
        return CB_ENOMEM;
    return writer_submit_wait(in->writer, b, done, arg);
}

void ingest_write_metrics(ingest *in, buf *out)
{
    struct writer_stats ws;
    struct wal_stats wl;
    writer_get_stats(in->writer, &ws);
    wal_get_stats(in->wal, &wl); /* plain counters read racily: fine for metrics */
    struct entity_flusher_stats es;
    entity_flusher_stats(in->ents, &es);
    buf_printf(out,
               "# TYPE citybrain_ingest_readings_total counter\n"
               "citybrain_ingest_readings_total{result=\"accepted\"} %llu\n"
               "citybrain_ingest_readings_total{result=\"rejected\"} %llu\n"
               "# TYPE citybrain_ingest_batches_total counter\n"
               "citybrain_ingest_batches_total{result=\"committed\"} %llu\n"
               "citybrain_ingest_batches_total{result=\"refused_queue_full\"} %llu\n"
               "citybrain_ingest_batches_total{result=\"failed\"} %llu\n"
               "# TYPE citybrain_ingest_queue_readings gauge\n"
               "citybrain_ingest_queue_readings %llu\n"
               "# TYPE citybrain_wal_bytes_written_total counter\n"
               "citybrain_wal_bytes_written_total %llu\n"
               "# TYPE citybrain_wal_fsyncs_total counter\n"
               "citybrain_wal_fsyncs_total %llu\n"
               "# TYPE citybrain_wal_segments gauge\n"
               "citybrain_wal_segments %llu\n"
               "# TYPE citybrain_checkpoints_total counter\n"
               "citybrain_checkpoints_total %llu\n"
               "# TYPE citybrain_checkpoint_seconds gauge\n"
               "citybrain_checkpoint_seconds %.6f\n"
               "# TYPE citybrain_checkpoint_store_seconds gauge\n"
               "citybrain_checkpoint_store_seconds %.6f\n"
               "# TYPE citybrain_checkpoint_stored_entities_total counter\n"
               "citybrain_checkpoint_stored_entities_total %llu\n",
               (unsigned long long)ws.readings, (unsigned long long)atomic_load(&in->rejected),
               (unsigned long long)ws.batches, (unsigned long long)ws.refused_full, (unsigned long long)ws.failed,
               (unsigned long long)ws.queued_readings, (unsigned long long)wl.bytes_written,
               (unsigned long long)wl.fsyncs, (unsigned long long)wl.segments, (unsigned long long)ws.checkpoints,
               ws.last_checkpoint_s, es.last_store_s, (unsigned long long)es.stored_entities);
}
