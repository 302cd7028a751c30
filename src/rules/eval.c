/* eval — the rules on the hot path: the (type, attr) index, the state of each
 * (rule, entity), one evaluator per kind, and the periodic checks (nodata,
 * region_count windows). Everything here runs with R->lock held; the writer
 * also holds the state's write lock, the tick its read lock. */
#include "rules/rules_int.h"

#include "core/clock.h"
#include "core/log.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- per-(rule, key) state --- */

static uint32_t hash32(uint32_t x)
{
    x ^= x >> 16;
    x *= 0x7feb352dU;
    x ^= x >> 15;
    x *= 0x846ca68bU;
    x ^= x >> 16;
    return x;
}

static int map_grow(struct state_map *m)
{
    uint32_t cap = m->cap ? m->cap * 2 : 8;
    struct rstate *slots = malloc((size_t)cap * sizeof *slots);
    if (!slots)
        return -1;
    for (uint32_t i = 0; i < cap; i++)
        slots[i].key = RULES_KEY_FREE;
    for (uint32_t i = 0; i < m->cap; i++) {
        if (m->slots[i].key == RULES_KEY_FREE)
            continue;
        uint32_t j = hash32(m->slots[i].key) & (cap - 1);
        while (slots[j].key != RULES_KEY_FREE)
            j = (j + 1) & (cap - 1);
        slots[j] = m->slots[i];
    }
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
    return 0;
}

struct rstate *rules__state(struct rule *ru, uint32_t key, int create)
{
    struct state_map *m = &ru->states;
    assert(key != RULES_KEY_FREE);
    if (m->cap) {
        for (uint32_t j = hash32(key) & (m->cap - 1);; j = (j + 1) & (m->cap - 1)) {
            if (m->slots[j].key == key)
                return &m->slots[j];
            if (m->slots[j].key == RULES_KEY_FREE)
                break;
        }
    }
    if (!create || ((m->n + 1) * 2 > m->cap && map_grow(m) != 0))
        return NULL;
    uint32_t j = hash32(key) & (m->cap - 1);
    while (m->slots[j].key != RULES_KEY_FREE)
        j = (j + 1) & (m->cap - 1);
    struct rstate *s = &m->slots[j];
    memset(s, 0, sizeof *s);
    s->key = key;
    s->newest_ts = INT64_MIN;
    s->clear_ts = INT64_MIN;
    m->n++;
    return s;
}

void rules__state_map_free(struct state_map *m)
{
    for (uint32_t i = 0; i < m->cap; i++) {
        if (m->slots[i].key == RULES_KEY_FREE)
            continue;
        free(m->slots[i].win);
        free(m->slots[i].members);
    }
    free(m->slots);
    memset(m, 0, sizeof *m);
}

/* --- the index: (type, attr) → rules --- */

static uint32_t hash64(uint64_t k)
{
    return hash32((uint32_t)k ^ hash32((uint32_t)(k >> 32)));
}

static struct index_entry *index_slot(rules *R, uint64_t key, int create)
{
    if (!R->index_cap)
        return NULL;
    size_t j = hash64(key) & (R->index_cap - 1);
    while (R->index[j].key && R->index[j].key != key)
        j = (j + 1) & (R->index_cap - 1);
    if (!R->index[j].key) {
        if (!create)
            return NULL;
        R->index[j].key = key;
    }
    return &R->index[j];
}

static void index_free(rules *R)
{
    for (size_t i = 0; i < R->index_cap; i++)
        free(R->index[i].v);
    free(R->index);
    R->index = NULL;
    R->index_cap = 0; /* indexed keeps its count: a reading meanwhile waits for the lock, and the new index */
    free(R->nodata);
    free(R->counting);
    R->nodata = R->counting = NULL;
    R->nnodata = R->ncounting = 0;
}

static int push_rule(struct rule ***v, size_t *n, size_t *cap, struct rule *ru)
{
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 4;
        struct rule **nv = realloc(*v, c * sizeof *nv);
        if (!nv)
            return -1;
        *v = nv;
        *cap = c;
    }
    (*v)[(*n)++] = ru;
    return 0;
}

static uint32_t rule_attr_key(const struct rule *ru)
{
    if (ru->kind == RULE_GEOFENCE)
        return 0;
    if (ru->kind == RULE_NODATA && ru->attr == DICT_NONE)
        return RULES_ATTR_ANY;
    return ru->attr;
}

/* A rule listing its entities is indexed under each of them (a hash of the
 * id and the attr), so 10,000 rules of one type and attr, one per sensor, cost
 * a reading one of them rather than all. */
static uint64_t entity_key(const char *id, uint32_t attr)
{
    uint64_t h = 1469598103934665603ULL;
    for (const unsigned char *p = (const unsigned char *)id; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    return (1ULL << 63) | ((h & 0xffffffffULL) << 20) | attr;
}

static int index_push(rules *R, uint64_t key, struct rule *ru)
{
    struct index_entry *ie = index_slot(R, key, 1);
    if (ie->n && ie->v[ie->n - 1] == ru)
        return 0; /* two of its entities share a hash */
    return push_rule(&ie->v, &ie->n, &ie->cap, ru);
}

/* Rebuilt whole after every change of the rules: changes are rare, lookups
 * are not. Cost O(rules). */
int rules__index_rebuild(rules *R)
{
    index_free(R);
    size_t cap = 16, ncount = 0, nnod = 0, keys = 0, enabled = 0;
    for (size_t i = 0; i < R->n; i++)
        keys += R->all[i]->entities ? R->all[i]->nentities : 1;
    while (cap < keys * 2 + 2)
        cap *= 2;
    if (!(R->index = calloc(cap, sizeof *R->index)))
        return CB_ENOMEM;
    R->index_cap = cap;
    R->entity_scoped = 0;
    for (size_t i = 0; i < R->n; i++) {
        struct rule *ru = R->all[i];
        if (!ru->enabled)
            continue;
        int rc = 0;
        for (size_t k = 0; ru->entities && k < ru->nentities && rc == 0; k++)
            rc = index_push(R, entity_key(ru->entities[k], rule_attr_key(ru)), ru);
        if (ru->entities)
            R->entity_scoped++;
        else
            rc = index_push(R, RULES_INDEX_KEY(ru->type, rule_attr_key(ru)), ru);
        if (rc != 0 || (ru->kind == RULE_NODATA && push_rule(&R->nodata, &R->nnodata, &nnod, ru) != 0) ||
            (ru->kind == RULE_REGION_COUNT && push_rule(&R->counting, &R->ncounting, &ncount, ru) != 0))
            return CB_ENOMEM;
        enabled++;
    }
    atomic_store(&R->indexed, enabled); /* once, at the end: never 0 while rules are being re-indexed */
    return 0;
}

struct rule *rules__find(rules *R, const char *id, size_t *pos)
{
    for (size_t i = 0; i < R->n; i++)
        if (strcmp(R->all[i]->id, id) == 0) {
            if (pos)
                *pos = i;
            return R->all[i];
        }
    return NULL;
}

static int cmp_id(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int in_entities(const struct rule *ru, const char *id)
{
    return bsearch(&id, ru->entities, ru->nentities, sizeof *ru->entities, cmp_id) != NULL;
}

static int matches(const struct rule *ru, const struct state_entity *e)
{
    if (ru->type != DICT_NONE && ru->type != e->type)
        return 0;
    if (ru->district != REGION_INDEX_NONE && ru->district != e->district)
        return 0;
    if (ru->grid != REGION_INDEX_NONE && ru->grid != e->grid)
        return 0;
    return !ru->entities || in_entities(ru, e->id);
}

static void eval_list(rules *R, uint64_t key, const struct batch_item *it, const struct state_entity *e)
{
    struct index_entry *ie = index_slot(R, key, 0);
    for (size_t i = 0; ie && i < ie->n; i++) {
        struct rule *ru = ie->v[i];
        if (!matches(ru, e))
            continue;
        R->evaluations++;
        rules__kinds[ru->kind].eval(R, ru, it, e);
    }
}

void rules_applied(void *ctx, const struct batch_item *it, const struct state_entity *e)
{
    rules *R = ctx; /* replayed readings are evaluated too; see rules.h "Time" */
    if (!e || !e->id)
        return;
    if (atomic_load_explicit(&R->indexed, memory_order_relaxed) == 0)
        return; /* no rules: a rule made meanwhile sees the readings after it */
    uint16_t attr = it->kind == BATCH_LOC ? 0 : it->attr;
    pthread_mutex_lock(&R->lock);
    if (R->index_cap) {
        eval_list(R, RULES_INDEX_KEY(e->type, attr), it, e);
        eval_list(R, RULES_INDEX_KEY(DICT_NONE, attr), it, e);
        eval_list(R, RULES_INDEX_KEY(e->type, RULES_ATTR_ANY), it, e);
        eval_list(R, RULES_INDEX_KEY(DICT_NONE, RULES_ATTR_ANY), it, e);
    }
    if (R->entity_scoped) {
        eval_list(R, entity_key(e->id, attr), it, e);
        eval_list(R, entity_key(e->id, RULES_ATTR_ANY), it, e);
    }
    pthread_mutex_unlock(&R->lock);
}

/* --- helpers of the evaluators --- */

int rules__op_test(enum rule_op op, double v, double ref)
{
    switch (op) {
    case OP_GT: return v > ref;
    case OP_GE: return v >= ref;
    case OP_LT: return v < ref;
    case OP_LE: return v <= ref;
    case OP_EQ: return v == ref;
    case OP_NE: return v != ref;
    default: assert(0); return 0;
    }
}

static const char *const op_words[OP_COUNT] = {"超过", "达到", "低于", "不高于", "等于", "不等于"};

static int numeric(const struct batch_item *it)
{
    return it->kind == BATCH_NUM || it->kind == BATCH_BOOL;
}

/* The state of (ru, entity) for a reading at ts, or NULL when the reading is
 * older than one the rule has seen for it (it then changes nothing). */
static struct rstate *fresh_state(rules *R, struct rule *ru, uint32_t key, int64_t ts)
{
    struct rstate *s = rules__state(ru, key, 1);
    if (!s)
        return NULL; /* out of memory: this reading goes unevaluated */
    if (ts < s->newest_ts) {
        atomic_fetch_add_explicit(&R->stats.out_of_order, 1, memory_order_relaxed);
        return NULL;
    }
    s->newest_ts = ts;
    return s;
}

static void duration_text(int64_t ms, char *out, size_t n)
{
    long long s = ms / 1000;
    if (s % 3600 == 0 && s >= 3600)
        snprintf(out, n, "%lld 小时", s / 3600);
    else if (s % 60 == 0 && s >= 60)
        snprintf(out, n, "%lld 分钟", s / 60);
    else
        snprintf(out, n, "%lld 秒", s);
}

/* --- the kinds --- */

void rules__eval_threshold(rules *R, struct rule *ru, const struct batch_item *it, const struct state_entity *e)
{
    if (!numeric(it))
        return;
    struct rstate *s = fresh_state(R, ru, it->entity, it->ts_ms);
    if (!s)
        return;
    double v = it->num;
    int cond = rules__op_test(ru->op, v, ru->value);
    const char *unit, *label;
    char msg[512];
    if (s->raised) {
        int clear = ru->has_clear ? (ru->op <= OP_GE ? v < ru->clear : v > ru->clear) : !cond;
        if (clear) {
            label = rules__attr_label(ru->attr_name, &unit);
            snprintf(msg, sizeof msg, "已恢复：%s %.2f%s", label, v, unit);
            rules__clear(R, ru, s, e->id, it->ts_ms, v, msg);
        }
        return;
    }
    if (!cond) {
        s->holding = 0;
        return;
    }
    if (!s->holding) {
        s->holding = 1;
        s->since_ts = it->ts_ms;
    }
    if (it->ts_ms - s->since_ts < ru->for_ms)
        return;
    label = rules__attr_label(ru->attr_name, &unit);
    if (ru->for_ms) {
        char d[32];
        duration_text(ru->for_ms, d, sizeof d);
        snprintf(msg, sizeof msg, "%s %.2f%s %s阈值 %g%s（持续 %s）", label, v, unit, op_words[ru->op], ru->value, unit, d);
    } else {
        snprintf(msg, sizeof msg, "%s %.2f%s %s阈值 %g%s", label, v, unit, op_words[ru->op], ru->value, unit);
    }
    rules__raise(R, ru, s, e, e->id, it->ts_ms, v, msg, NULL);
}

/* The window keeps, oldest first, the samples that can still be the window's
 * maximum (a fall is measured from it) or minimum (a rise): a monotonic
 * deque, RULES_WINDOW_MAX long at most (the oldest goes when full). */
#define WIN_AT(s, i) ((s)->win[((s)->headwin + (i)) % RULES_WINDOW_MAX])

void rules__eval_rate(rules *R, struct rule *ru, const struct batch_item *it, const struct state_entity *e)
{
    if (!numeric(it))
        return;
    struct rstate *s = fresh_state(R, ru, it->entity, it->ts_ms);
    if (!s || (!s->win && !(s->win = malloc(RULES_WINDOW_MAX * sizeof *s->win))))
        return;
    int fall = ru->change_pct < 0;
    double v = it->num;
    while (s->nwin && WIN_AT(s, 0).ts < it->ts_ms - ru->window_ms) {
        s->headwin = (uint8_t)((s->headwin + 1) % RULES_WINDOW_MAX);
        s->nwin--;
    }
    double base = s->nwin ? WIN_AT(s, 0).v : NAN;
    double pct = s->nwin && base != 0 ? (v - base) / fabs(base) * 100 : 0;
    int cond = s->nwin && base != 0 && (fall ? pct <= ru->change_pct : pct >= ru->change_pct);
    while (s->nwin && (fall ? WIN_AT(s, s->nwin - 1).v <= v : WIN_AT(s, s->nwin - 1).v >= v))
        s->nwin--;
    if (s->nwin == RULES_WINDOW_MAX) {
        s->headwin = (uint8_t)((s->headwin + 1) % RULES_WINDOW_MAX);
        s->nwin--;
    }
    WIN_AT(s, s->nwin) = (struct sample){it->ts_ms, v};
    s->nwin++;
    if (s->raised == cond)
        return;
    const char *unit, *label = rules__attr_label(ru->attr_name, &unit);
    char msg[512], d[32];
    if (s->raised && !cond) {
        snprintf(msg, sizeof msg, "已恢复：%s %.2f%s", label, v, unit);
        rules__clear(R, ru, s, e->id, it->ts_ms, v, msg);
    } else if (!s->raised && cond) {
        duration_text(ru->window_ms, d, sizeof d);
        snprintf(msg, sizeof msg, "%s %s内%s %.1f%%（%.2f%s → %.2f%s）", label, d, fall ? "下降" : "上升", fabs(pct), base,
                 unit, v, unit);
        rules__raise(R, ru, s, e, e->id, it->ts_ms, v, msg, NULL);
    }
}

/* A reading of an offline entity brings it back; going offline is found by
 * the tick. */
void rules__eval_nodata(rules *R, struct rule *ru, const struct batch_item *it, const struct state_entity *e)
{
    struct rstate *s = rules__state(ru, it->entity, 0);
    if (!s || !s->raised || it->ts_ms <= s->newest_ts)
        return;
    s->newest_ts = it->ts_ms;
    rules__clear(R, ru, s, e->id, it->ts_ms, NAN, "已恢复：设备重新上报数据");
}

void rules__eval_geofence(rules *R, struct rule *ru, const struct batch_item *it, const struct state_entity *e)
{
    if (it->kind != BATCH_LOC)
        return;
    struct rstate *s = fresh_state(R, ru, it->entity, it->ts_ms);
    if (!s)
        return;
    GEOSGeometry *pt = GEOSGeom_createPointFromXY_r(R->geos, it->num, it->lat);
    if (!pt)
        return;
    int inside = GEOSPreparedIntersects_r(R->geos, ru->prep, pt) == 1;
    GEOSGeom_destroy_r(R->geos, pt);
    int cond = ru->on_exit ? !inside : inside;
    char msg[512];
    if (s->raised && !cond) {
        snprintf(msg, sizeof msg, "已恢复：%s电子围栏「%s」", inside ? "回到" : "离开", ru->name);
        rules__clear(R, ru, s, e->id, it->ts_ms, NAN, msg);
    } else if (!s->raised && cond) {
        snprintf(msg, sizeof msg, "%s电子围栏「%s」（%.5f, %.5f）", ru->on_exit ? "驶出" : "驶入", ru->name, it->num,
                 it->lat);
        json_t *data = json_pack("{s:[f,f]}", "location", it->num, it->lat);
        rules__raise(R, ru, s, e, e->id, it->ts_ms, NAN, msg, data);
    }
}

static long count_recent(struct rstate *s, int64_t since)
{
    long n = 0;
    for (uint16_t i = 0; i < s->nmembers; i++)
        n += s->members[i].ts >= since;
    return n;
}

static void drop_member(struct rstate *s, uint16_t i)
{
    s->members[i] = s->members[--s->nmembers];
}

/* Marks entity's condition in the cell's list: set (cond) or dropped.
 * Returns 0, or -1 for a reading older than the entity's entry. */
static int mark_member(struct rstate *s, uint32_t entity, int64_t ts, int cond)
{
    for (uint16_t i = 0; i < s->nmembers; i++) {
        if (s->members[i].entity != entity)
            continue;
        if (ts < s->members[i].ts)
            return -1;
        if (cond)
            s->members[i].ts = ts;
        else
            drop_member(s, i);
        return 0;
    }
    if (!cond)
        return 0;
    if (s->nmembers == s->capmembers) {
        uint16_t cap = s->capmembers ? (uint16_t)(s->capmembers * 2) : 4;
        struct member *m = cap > s->capmembers ? realloc(s->members, cap * sizeof *m) : NULL;
        if (!m)
            return 0; /* full (or out of memory): this entity is not counted */
        s->members = m;
        s->capmembers = cap;
    }
    s->members[s->nmembers++] = (struct member){entity, ts};
    return 0;
}

static void region_count_message(rules *R, struct rule *ru, const char *code, long n, char *msg, size_t len)
{
    const char *unit, *label = rules__attr_label(ru->attr_name, &unit);
    char d[32];
    (void)R;
    duration_text(ru->window_ms, d, sizeof d);
    snprintf(msg, len, "%s %s：%s内 %ld 个设备%s %s %g%s（阈值 %lld 个）", ru->group == REGION_GRID ? "网格" : "区县", code, d,
             n, label, op_words[ru->op], ru->value, unit, ru->count);
}

static json_t *members_json(rules *R, struct rstate *s, int64_t since)
{
    json_t *a = json_array();
    for (uint16_t i = 0; a && i < s->nmembers; i++) {
        const struct state_entity *m = s->members[i].ts >= since ? state_get(R->st, s->members[i].entity) : NULL;
        if (m)
            json_array_append_new(a, json_string(m->id));
    }
    return json_pack("{s:o*}", "entities", a);
}

void rules__eval_region_count(rules *R, struct rule *ru, const struct batch_item *it, const struct state_entity *e)
{
    if (!numeric(it))
        return;
    uint32_t cell = ru->group == REGION_GRID ? e->grid : e->district;
    if (cell == STATE_REGION_NONE)
        return;
    struct rstate *s = rules__state(ru, cell, 1);
    if (!s || mark_member(s, it->entity, it->ts_ms, rules__op_test(ru->op, it->num, ru->value)) != 0)
        return;
    if (it->ts_ms > s->newest_ts)
        s->newest_ts = it->ts_ms;
    int64_t since = s->newest_ts - ru->window_ms;
    long n = count_recent(s, since);
    char code[REGION_CODE_MAX], msg[512];
    region_store_code(R->regions, ru->group, cell, code);
    if (!s->raised && n >= ru->count) {
        region_count_message(R, ru, code, n, msg, sizeof msg);
        rules__raise(R, ru, s, e, code, it->ts_ms, (double)n, msg, members_json(R, s, since));
    } else if (s->raised && n < ru->count) {
        snprintf(msg, sizeof msg, "已恢复：%s 内告警设备 %ld 个", code, n);
        rules__clear(R, ru, s, code, it->ts_ms, (double)n, msg);
    }
}

/* --- the periodic checks --- */

static void tick_nodata(rules *R, struct rule *ru, int64_t now_ms)
{
    uint32_t slots = state_slots(R->st);
    for (uint32_t no = 0; no < slots; no++) {
        const struct state_entity *e = state_get(R->st, no);
        if (!e || !matches(ru, e))
            continue;
        const struct state_value *v = ru->attr != DICT_NONE ? state_value_of(e, ru->attr) : NULL;
        int64_t last = ru->attr != DICT_NONE ? (v ? v->ts_ms : 0) : e->last_seen_ms;
        if (last == 0 || now_ms - last < ru->nodata_ms)
            continue; /* never reported (not offline: not yet online), or fresh */
        struct rstate *s = rules__state(ru, no, 1);
        if (!s || s->raised || last < s->newest_ts)
            continue;
        s->newest_ts = last;
        char msg[512], d[32];
        duration_text(ru->nodata_ms, d, sizeof d);
        snprintf(msg, sizeof msg, "%s 已 %lld 秒无数据（离线，阈值 %s）", e->id, (long long)((now_ms - last) / 1000), d);
        rules__raise(R, ru, s, e, e->id, now_ms, (double)(now_ms - last) / 1000, msg, NULL);
    }
}

static void tick_region_count(rules *R, struct rule *ru, int64_t now_ms)
{
    for (uint32_t i = 0; i < ru->states.cap; i++) {
        struct rstate *s = &ru->states.slots[i];
        if (s->key == RULES_KEY_FREE)
            continue;
        int64_t since = now_ms - ru->window_ms;
        for (uint16_t j = 0; j < s->nmembers;)
            if (s->members[j].ts < since)
                drop_member(s, j);
            else
                j++;
        long n = s->nmembers;
        if (s->raised && n < ru->count) {
            char code[REGION_CODE_MAX], msg[256];
            region_store_code(R->regions, ru->group, s->key, code);
            snprintf(msg, sizeof msg, "已恢复：%s 内告警设备 %ld 个（窗口已过）", code, n);
            rules__clear(R, ru, s, code, now_ms, (double)n, msg);
        }
    }
}

void rules__tick_locked(rules *R, int64_t now_ms)
{
    for (size_t i = 0; i < R->nnodata; i++)
        tick_nodata(R, R->nodata[i], now_ms);
    for (size_t i = 0; i < R->ncounting; i++)
        tick_region_count(R, R->counting[i], now_ms);
}

int rules__region_key(rules *R, const struct rule *ru, const char *code, uint32_t *key)
{
    *key = region_store_index(R->regions, ru->group, code);
    return *key == REGION_INDEX_NONE ? -1 : 0;
}

/* --- raising and clearing: the state changes here, the alarm on the rules thread --- */

static int maintained(rules *R, const struct rule *ru, const struct state_entity *e, int64_t ts)
{
    for (size_t i = 0; i < R->nmaint; i++) {
        const struct maintenance *m = &R->maint[i];
        if (ts < m->from_ms || ts >= m->to_ms || (m->rule[0] && strcmp(m->rule, ru->id) != 0))
            continue;
        if ((m->entity[0] && e && strcmp(m->entity, e->id) == 0) ||
            (m->district != REGION_INDEX_NONE && e && m->district == e->district) ||
            (m->grid != REGION_INDEX_NONE && e && m->grid == e->grid) ||
            (!m->entity[0] && m->district == REGION_INDEX_NONE && m->grid == REGION_INDEX_NONE))
            return 1;
    }
    return 0;
}

static void set_code(json_t *o, const char *name, rules *R, enum region_level level, uint32_t index)
{
    char code[REGION_CODE_MAX];
    if (index != STATE_REGION_NONE && *region_store_code(R->regions, level, index, code))
        json_object_set_new(o, name, json_string(code));
    else
        json_object_set_new(o, name, json_null());
}

static json_t *alarm_fields(rules *R, const struct rule *ru, const struct state_entity *e, const char *key,
                            int64_t ts, double value, const char *message)
{
    const char *type = ru->kind == RULE_REGION_COUNT ? region_level_name(ru->group) : dict_name(R->names, DICT_TYPE, e->type);
    const char *dept = dict_name(R->names, DICT_DEPARTMENT, e->department);
    json_t *a = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I}", "rule", ru->id, "rule_name", ru->name, "kind",
                          rules__kinds[ru->kind].name, "entity", key, "entity_type", type ? type : "", "severity",
                          rules__severity_names[ru->severity], "category", ru->category, "message", message, "raised_at",
                          (json_int_t)ts);
    if (!a)
        return NULL;
    json_object_set_new(a, "attr", ru->attr_name[0] ? json_string(ru->attr_name) : json_null());
    json_object_set_new(a, "value", isfinite(value) ? json_real(value) : json_null());
    json_object_set_new(a, "department", dept ? json_string(dept) : json_null());
    set_code(a, "district", R, REGION_DISTRICT, e->district);
    if (ru->kind == RULE_REGION_COUNT && ru->group == REGION_GRID)
        json_object_set_new(a, "grid", json_string(key));
    else
        set_code(a, "grid", R, REGION_GRID, ru->kind == RULE_REGION_COUNT ? STATE_REGION_NONE : e->grid);
    json_object_set_new(a, "lon", isfinite(e->lon) ? json_real(e->lon) : json_null());
    json_object_set_new(a, "lat", isfinite(e->lat) ? json_real(e->lat) : json_null());
    return a;
}

void rules__raise(rules *R, struct rule *ru, struct rstate *s, const struct state_entity *e, const char *key,
                  int64_t ts, double value, const char *message, json_t *data)
{
    assert(!s->raised);
    if ((s->clear_ts != INT64_MIN && ts - s->clear_ts < ru->dedup_ms) || maintained(R, ru, e, ts)) {
        atomic_fetch_add_explicit(&R->stats.suppressed, 1, memory_order_relaxed);
        json_decref(data);
        return;
    }
    struct change *c = calloc(1, sizeof *c);
    json_t *a = c ? alarm_fields(R, ru, e, key, ts, value, message) : NULL;
    if (!a) {
        free(c);
        json_decref(data);
        atomic_fetch_add_explicit(&R->stats.failed, 1, memory_order_relaxed);
        return;
    }
    if (data)
        json_object_set_new(a, "data", data);
    c->op = CHANGE_RAISE;
    snprintf(c->rule, sizeof c->rule, "%s", ru->id);
    snprintf(c->key, sizeof c->key, "%s", key);
    snprintf(c->open_case, sizeof c->open_case, "%s", ru->open_case);
    c->alarm = a;
    c->ts = ts;
    c->value = value;
    s->raised = 1;
    s->holding = 0;
    atomic_fetch_add_explicit(&R->stats.raised, 1, memory_order_relaxed);
    rules__enqueue(R, c);
}

void rules__clear(rules *R, struct rule *ru, struct rstate *s, const char *key, int64_t ts, double value,
                  const char *note)
{
    assert(s->raised);
    s->raised = 0;
    s->holding = 0;
    s->clear_ts = ts;
    struct change *c = calloc(1, sizeof *c);
    if (!c) {
        atomic_fetch_add_explicit(&R->stats.failed, 1, memory_order_relaxed);
        return;
    }
    c->op = CHANGE_CLEAR;
    snprintf(c->rule, sizeof c->rule, "%s", ru->id);
    snprintf(c->key, sizeof c->key, "%s", key);
    snprintf(c->note, sizeof c->note, "%s", note);
    c->ts = ts;
    c->value = value;
    atomic_fetch_add_explicit(&R->stats.cleared, 1, memory_order_relaxed);
    rules__enqueue(R, c);
}
