/* test_state — the in-memory city: the id hash under growth and tombstones,
 * numbers re-used for other ids, last-write-wins values of every kind, moves,
 * dirty flags, counters and the memory accounting the metrics report. */
#include "state/state.h"
#include "test.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

static struct state_entity meta_at(double lon, double lat, uint32_t district, uint16_t type)
{
    struct state_entity m;
    memset(&m, 0, sizeof m);
    m.lon = lon;
    m.lat = lat;
    m.district = district;
    m.grid = STATE_REGION_NONE;
    m.type = type;
    m.department = 3;
    m.heartbeat_s = 60;
    return m;
}

static state *new_state(void)
{
    state *s = NULL;
    cb_error err;
    CHECK_INT(state_create(&s, &err), 0);
    if (!s)
        exit(2);
    return s;
}

static int put(state *s, uint32_t no, const char *id)
{
    struct state_entity m = meta_at(NAN, NAN, STATE_REGION_NONE, 1);
    return state_put(s, no, id, &m, NULL);
}

TEST(test_put_find_get_remove)
{
    state *s = new_state();
    struct state_entity m = meta_at(113.23, 35.24, 4, 7);
    cb_error err;
    CHECK_INT(state_count(s), 0);
    CHECK_INT(state_find(s, "a"), STATE_NONE);
    CHECK(state_get(s, 0) == NULL);
    CHECK(state_get(s, 123456) == NULL); /* beyond the slots */
    CHECK_INT(state_put(s, 1, "a", &m, &err), 0);
    CHECK_INT(state_put(s, 5000, "b", &m, &err), 0); /* slots grow past the first 1024 */
    CHECK(state_slots(s) > 5000);
    CHECK_INT(state_count(s), 2);
    CHECK_INT(state_find(s, "a"), 1);
    CHECK_INT(state_find(s, "b"), 5000);
    CHECK_INT(state_find(s, "c"), STATE_NONE);
    CHECK_INT(state_find(s, ""), STATE_NONE);
    const struct state_entity *e = state_get(s, 1);
    CHECK(e != NULL);
    if (e) {
        CHECK_STR(e->id, "a");
        CHECK(e->lon == 113.23 && e->lat == 35.24);
        CHECK_INT(e->district, 4);
        CHECK_INT(e->grid, STATE_REGION_NONE);
        CHECK_INT(e->type, 7);
        CHECK_INT(e->department, 3);
        CHECK_INT(e->heartbeat_s, 60);
        CHECK_INT(e->nvalues, 0);
        CHECK_INT(e->readings, 0);
        CHECK_INT(e->last_seen_ms, 0);
    }
    CHECK(state_get(s, 2) == NULL);
    state_remove(s, 1);
    CHECK_INT(state_count(s), 1);
    CHECK_INT(state_find(s, "a"), STATE_NONE);
    CHECK(state_get(s, 1) == NULL);
    CHECK_INT(state_find(s, "b"), 5000);
    state_remove(s, 1);          /* already gone: no-op */
    state_remove(s, 99999999);   /* beyond the slots: no-op */
    CHECK_INT(state_count(s), 1);
    /* the id may come back under another number */
    CHECK_INT(state_put(s, 2, "a", &m, &err), 0);
    CHECK_INT(state_find(s, "a"), 2);
    CHECK_INT(state_count(s), 2);
    /* numbers the module reserves are refused, not stored */
    CHECK(state_put(s, STATE_NONE, "z", &m, &err) < 0);
    CHECK(state_put(s, STATE_NONE - 1, "z", &m, &err) < 0);
    CHECK_INT(state_find(s, "z"), STATE_NONE);
    state_destroy(s);
    state_destroy(NULL);
}

TEST(test_hash_growth_100k_with_tombstones)
{
    enum { N = 100000 };
    state *s = new_state();
    char id[32];
    int bad = 0;
    for (uint32_t i = 0; i < N; i++) {
        snprintf(id, sizeof id, "urn:e:%u", i);
        bad += put(s, i + 1, id) != 0;
    }
    CHECK_INT(bad, 0);
    CHECK_INT(state_count(s), N);
    for (uint32_t i = 0; i < N; i++) {
        snprintf(id, sizeof id, "urn:e:%u", i);
        bad += state_find(s, id) != i + 1;
    }
    CHECK_INT(bad, 0);
    for (uint32_t i = 0; i < N; i += 2) /* remove half: tombstones everywhere */
        state_remove(s, i + 1);
    CHECK_INT(state_count(s), N / 2);
    for (uint32_t i = 0; i < N; i++) {
        snprintf(id, sizeof id, "urn:e:%u", i);
        bad += state_find(s, id) != (i % 2 == 0 ? STATE_NONE : i + 1);
    }
    CHECK_INT(bad, 0);
    for (uint32_t i = 0; i < N; i += 2) { /* re-add under fresh numbers */
        snprintf(id, sizeof id, "urn:e:%u", i);
        bad += put(s, N + 1 + i, id) != 0;
    }
    CHECK_INT(bad, 0);
    CHECK_INT(state_count(s), N);
    for (uint32_t i = 0; i < N; i++) {
        snprintf(id, sizeof id, "urn:e:%u", i);
        uint32_t want = i % 2 == 0 ? N + 1 + i : i + 1;
        uint32_t no = state_find(s, id);
        bad += no != want;
        const struct state_entity *e = state_get(s, want);
        bad += !e || strcmp(e->id, id) != 0;
    }
    CHECK_INT(bad, 0);
    /* churn: many remove/insert rounds at a constant population must not fill
     * the table with tombstones (a full table would make a miss loop forever) */
    uint32_t next = 2 * N + 10;
    for (int round = 0; round < 50; round++) {
        for (uint32_t i = 0; i < 2000; i++) {
            uint32_t k = (uint32_t)(round * 2000 + i) % N;
            snprintf(id, sizeof id, "urn:e:%u", k);
            uint32_t no = state_find(s, id);
            state_remove(s, no);
            bad += put(s, next++, id) != 0;
        }
    }
    CHECK_INT(bad, 0);
    CHECK_INT(state_count(s), N);
    CHECK_INT(state_find(s, "urn:e:nope"), STATE_NONE);
    for (uint32_t i = 0; i < N; i++) {
        snprintf(id, sizeof id, "urn:e:%u", i);
        uint32_t no = state_find(s, id);
        const struct state_entity *e = no == STATE_NONE ? NULL : state_get(s, no);
        bad += !e || strcmp(e->id, id) != 0;
    }
    CHECK_INT(bad, 0);
    /* the split lookup, prefetching at every level (on ids present, absent,
     * and over tombstones), answers as state_find does */
    for (uint32_t i = 0; i < N + 1000; i++) {
        snprintf(id, sizeof id, i < N ? "urn:e:%u" : "urn:e:absent-%u", i);
        uint64_t h = state_hash_n(id, strlen(id));
        for (int level = 0; level < 3; level++)
            state_prefetch(s, h, level);
        bad += state_find_hashed(s, id, strlen(id), h) != state_find(s, id);
        bad += (i < N) != (state_find(s, id) != STATE_NONE);
    }
    CHECK_INT(bad, 0);
    state_destroy(s);
}

TEST(test_number_reused_for_another_id)
{
    state *s = new_state();
    CHECK_INT(put(s, 7, "old"), 0);
    CHECK_INT(state_set_value(s, 7, 1, STATE_STR, 10, 0, "text", 4), 1);
    CHECK_INT(state_set_value(s, 7, 2, STATE_NUM, 10, 1.5, NULL, 0), 1);
    size_t with_old = state_memory(s);
    CHECK_INT(put(s, 7, "new"), 0);
    CHECK_INT(state_find(s, "old"), STATE_NONE);
    CHECK_INT(state_find(s, "new"), 7);
    CHECK_INT(state_count(s), 1);
    const struct state_entity *e = state_get(s, 7);
    CHECK(e != NULL);
    if (e) {
        CHECK_STR(e->id, "new");
        CHECK_INT(e->nvalues, 0);   /* the old entity's values went with it */
        CHECK_INT(e->readings, 0);
        CHECK(state_value_of(e, 1) == NULL);
    }
    CHECK(state_memory(s) < with_old);
    state_destroy(s);
}

TEST(test_put_conflict_and_update_keeps_values)
{
    state *s = new_state();
    cb_error err;
    struct state_entity m = meta_at(1, 2, 3, 4);
    CHECK_INT(state_put(s, 1, "a", &m, &err), 0);
    CHECK_INT(state_set_value(s, 1, 9, STATE_NUM, 100, 42, NULL, 0), 1);
    cb_error_clear(&err);
    CHECK_INT(state_put(s, 2, "a", &m, &err), CB_ECONFLICT);
    CHECK_INT(err.code, CB_ECONFLICT);
    CHECK_STR(err.field, "id");
    CHECK(strstr(err.message, "'a'") != NULL);
    CHECK(state_get(s, 2) == NULL);
    CHECK_INT(state_find(s, "a"), 1);
    CHECK_INT(state_count(s), 1);
    /* same number, same id: metadata changes, values and counters stay */
    struct state_entity m2 = meta_at(5, 6, 7, 8);
    m2.heartbeat_s = 900;
    CHECK_INT(state_put(s, 1, "a", &m2, &err), 0);
    const struct state_entity *e = state_get(s, 1);
    CHECK(e && e->lon == 5 && e->lat == 6 && e->district == 7 && e->type == 8 && e->heartbeat_s == 900);
    const struct state_value *v = e ? state_value_of(e, 9) : NULL;
    CHECK(v && v->kind == STATE_NUM && v->v.num == 42 && v->ts_ms == 100);
    CHECK(e && e->readings == 1 && e->last_seen_ms == 100);
    CHECK_INT(state_count(s), 1);
    state_destroy(s);
}

TEST(test_set_value_last_write_wins)
{
    state *s = new_state();
    CHECK_INT(put(s, 3, "x"), 0);
    CHECK_INT(state_set_value(s, 3, 1, STATE_NUM, 1000, 1.0, NULL, 0), 1);
    CHECK_INT(state_set_value(s, 3, 1, STATE_NUM, 500, 2.0, NULL, 0), 0); /* older: ignored */
    const struct state_entity *e = state_get(s, 3);
    const struct state_value *v = state_value_of(e, 1);
    CHECK(v && v->v.num == 1.0 && v->ts_ms == 1000);
    CHECK_INT(e->readings, 2);           /* ... but counted */
    CHECK_INT(e->last_seen_ms, 1000);    /* and last_seen never goes back */
    CHECK_INT(state_set_value(s, 3, 1, STATE_NUM, 1000, 3.0, NULL, 0), 1); /* equal time overwrites */
    v = state_value_of(e, 1);
    CHECK(v && v->v.num == 3.0);
    CHECK_INT(state_set_value(s, 3, 1, STATE_NUM, 2000, 4.0, NULL, 0), 1);
    v = state_value_of(e, 1);
    CHECK(v && v->v.num == 4.0 && v->ts_ms == 2000);
    CHECK_INT(e->readings, 4);
    CHECK_INT(e->last_seen_ms, 2000);
    CHECK_INT(e->nvalues, 1);
    /* an older reading of another attribute is still that attribute's first value */
    CHECK_INT(state_set_value(s, 3, 2, STATE_NUM, 10, 7.0, NULL, 0), 1);
    v = state_value_of(e, 2);
    CHECK(v && v->v.num == 7.0 && v->ts_ms == 10);
    CHECK_INT(e->last_seen_ms, 2000);
    /* negative times (before 1970) are ordered too */
    CHECK_INT(state_set_value(s, 3, 5, STATE_NUM, -100, 1.0, NULL, 0), 1);
    CHECK_INT(state_set_value(s, 3, 5, STATE_NUM, -200, 2.0, NULL, 0), 0);
    v = state_value_of(e, 5);
    CHECK(v && v->v.num == 1.0 && v->ts_ms == -100);
    /* an entity deleted since its reading was accepted: nothing happens */
    CHECK_INT(state_set_value(s, 4, 1, STATE_NUM, 1, 1, NULL, 0), 0);
    CHECK_INT(state_set_value(s, 4000000, 1, STATE_NUM, 1, 1, NULL, 0), 0);
    CHECK(state_get(s, 4) == NULL);
    state_destroy(s);
}

TEST(test_string_values_replaced_and_freed)
{
    state *s = new_state();
    CHECK_INT(put(s, 1, "s"), 0);
    size_t m0 = state_memory(s);
    const char buf[] = "hello, world";
    CHECK_INT(state_set_value(s, 1, 1, STATE_STR, 1, 0, buf, 5), 1); /* only len bytes are copied */
    const struct state_entity *e = state_get(s, 1);
    const struct state_value *v = state_value_of(e, 1);
    CHECK(v && v->kind == STATE_STR);
    if (v) {
        CHECK_STR(v->v.str, "hello");
        CHECK(v->v.str != buf);
    }
    size_t m1 = state_memory(s);
    CHECK(m1 >= m0 + 6);
    CHECK_INT(state_set_value(s, 1, 1, STATE_STR, 2, 0, "a much longer text value", 24), 1);
    v = state_value_of(e, 1);
    CHECK(v && strcmp(v->v.str, "a much longer text value") == 0);
    CHECK_INT(state_memory(s), m1 - 6 + 25);
    CHECK_INT(state_set_value(s, 1, 1, STATE_STR, 3, 0, "", 0), 1); /* empty string */
    v = state_value_of(e, 1);
    CHECK(v && v->kind == STATE_STR && strcmp(v->v.str, "") == 0);
    CHECK_INT(state_set_value(s, 1, 1, STATE_STR, 2, 0, "older", 5), 0);
    v = state_value_of(e, 1);
    CHECK(v && strcmp(v->v.str, "") == 0);
    /* text replaced by a number: the string is freed (valgrind) and not counted */
    CHECK_INT(state_set_value(s, 1, 1, STATE_NUM, 4, 12.5, NULL, 0), 1);
    v = state_value_of(e, 1);
    CHECK(v && v->kind == STATE_NUM && v->v.num == 12.5);
    size_t m_num = state_memory(s);
    /* a text with an embedded NUL is stored up to the NUL; the accounting
     * must give back what it took when the text goes */
    CHECK_INT(state_set_value(s, 1, 1, STATE_STR, 5, 0, "ab\0cdef", 7), 1);
    v = state_value_of(e, 1);
    CHECK(v && strcmp(v->v.str, "ab") == 0);
    CHECK_INT(state_set_value(s, 1, 1, STATE_NUM, 6, 1, NULL, 0), 1);
    CHECK_INT(state_memory(s), m_num);
    /* and a number replaced by text again, left for state_destroy to free */
    CHECK_INT(state_set_value(s, 1, 1, STATE_STR, 7, 0, "kept", 4), 1);
    CHECK_INT(state_set_value(s, 1, 2, STATE_STR, 7, 0, "also kept", 9), 1);
    state_destroy(s);
}

TEST(test_bool_and_num_kinds)
{
    state *s = new_state();
    CHECK_INT(put(s, 2, "k"), 0);
    const struct state_entity *e = state_get(s, 2);
    CHECK_INT(state_set_value(s, 2, 1, STATE_BOOL, 1, 1, NULL, 0), 1);
    const struct state_value *v = state_value_of(e, 1);
    CHECK(v && v->kind == STATE_BOOL && v->v.boolean == 1);
    CHECK_INT(state_set_value(s, 2, 1, STATE_BOOL, 2, 0, NULL, 0), 1);
    v = state_value_of(e, 1);
    CHECK(v && v->v.boolean == 0);
    CHECK_INT(state_set_value(s, 2, 1, STATE_BOOL, 3, 2.5, NULL, 0), 1); /* non-zero is true */
    v = state_value_of(e, 1);
    CHECK(v && v->v.boolean == 1);
    CHECK_INT(state_set_value(s, 2, 1, STATE_NUM, 4, -0.25, NULL, 0), 1); /* kind may change */
    v = state_value_of(e, 1);
    CHECK(v && v->kind == STATE_NUM && v->v.num == -0.25);
    CHECK_INT(state_set_value(s, 2, 3, STATE_NUM, 4, NAN, NULL, 0), 1);
    v = state_value_of(e, 3);
    CHECK(v && isnan(v->v.num));
    CHECK_INT(state_set_value(s, 2, 4, STATE_NUM, 4, INFINITY, NULL, 0), 1);
    v = state_value_of(e, 4);
    CHECK(v && isinf(v->v.num));
    /* many attributes: the value array grows, each value stays its own */
    int bad = 0;
    for (uint16_t a = 10; a < 300; a++)
        bad += state_set_value(s, 2, a, a % 3 == 0 ? STATE_BOOL : STATE_NUM, 5, a, NULL, 0) != 1;
    CHECK_INT(bad, 0);
    e = state_get(s, 2);
    CHECK_INT(e->nvalues, 290 + 3);
    CHECK(e->capvalues >= e->nvalues);
    for (uint16_t a = 10; a < 300; a++) {
        v = state_value_of(e, a);
        if (a % 3 == 0)
            bad += !v || v->kind != STATE_BOOL || v->v.boolean != 1;
        else
            bad += !v || v->kind != STATE_NUM || v->v.num != a;
    }
    CHECK_INT(bad, 0);
    CHECK(state_value_of(e, 2) == NULL);
    CHECK(state_value_of(e, 300) == NULL);
    state_destroy(s);
}

TEST(test_move)
{
    state *s = new_state();
    struct state_entity m = meta_at(113.0, 35.0, 1, 1);
    CHECK_INT(state_put(s, 9, "car", &m, NULL), 0);
    state_clear_dirty(s, 9);
    state_move(s, 9, 5000, 113.5, 35.5, 2, 77);
    const struct state_entity *e = state_get(s, 9);
    CHECK(e->lon == 113.5 && e->lat == 35.5);
    CHECK_INT(e->district, 2);
    CHECK_INT(e->grid, 77);
    CHECK_INT(e->readings, 1);
    CHECK_INT(e->last_seen_ms, 5000);
    CHECK_INT(e->dirty, STATE_DIRTY | STATE_DIRTY_PLACE);
    CHECK_INT(e->nvalues, 0); /* a move is not an attribute value */
    state_clear_dirty(s, 9);
    state_move(s, 9, 4000, 113.6, 35.6, STATE_REGION_NONE, STATE_REGION_NONE);
    CHECK_INT(e->readings, 2);
    CHECK_INT(e->dirty, STATE_DIRTY); /* counted, but an older place is not taken: nothing to store of it */
    CHECK(e->lon == 113.5);
    CHECK_INT(e->last_seen_ms, 5000); /* last_seen never goes back */
    state_move(s, 10, 1, 0, 0, 0, 0);  /* unknown: no-op */
    state_move(s, 1u << 30, 1, 0, 0, 0, 0);
    CHECK(state_get(s, 10) == NULL);
    CHECK_INT(state_count(s), 1);
    state_destroy(s);
}

TEST(test_dirty_flags)
{
    state *s = new_state();
    CHECK_INT(put(s, 1, "d"), 0);
    CHECK_INT(put(s, 2, "e"), 0);
    CHECK_INT(state_get(s, 1)->dirty, STATE_DIRTY | STATE_DIRTY_PLACE); /* new */
    state_clear_dirty(s, 1);
    state_clear_dirty(s, 2);
    CHECK_INT(state_get(s, 1)->dirty, 0);
    CHECK_INT(state_set_value(s, 1, 1, STATE_NUM, 10, 1, NULL, 0), 1);
    CHECK_INT(state_get(s, 1)->dirty, 1);
    CHECK_INT(state_get(s, 2)->dirty, 0); /* only the one changed */
    state_clear_dirty(s, 1);
    /* an older reading changes no value but the counter, which a checkpoint stores */
    CHECK_INT(state_set_value(s, 1, 1, STATE_NUM, 5, 1, NULL, 0), 0);
    CHECK_INT(state_get(s, 1)->dirty, 1);
    state_clear_dirty(s, 1);
    CHECK_INT(put(s, 1, "d"), 0); /* metadata change */
    CHECK_INT(state_get(s, 1)->dirty, STATE_DIRTY | STATE_DIRTY_PLACE);
    state_clear_dirty(s, 1);
    state_mark_dirty(s, 1, STATE_DIRTY_PLACE); /* a failed checkpoint marks again */
    CHECK_INT(state_get(s, 1)->dirty, STATE_DIRTY_PLACE);
    state_mark_dirty(s, 3, STATE_DIRTY); /* a free slot: no-op */
    CHECK(state_get(s, 3) == NULL);
    state_clear_dirty(s, 1);
    state_set_counters(s, 1, 5, 5); /* restoring at load does not dirty */
    CHECK_INT(state_get(s, 1)->dirty, 0);
    state_clear_dirty(s, 4000000); /* out of range: no-op */
    state_destroy(s);
}

TEST(test_memory_grows_and_shrinks)
{
    enum { N = 3000 };
    state *s = new_state();
    size_t m_empty = state_memory(s);
    CHECK(m_empty > 0);
    char id[32];
    size_t id_bytes = 0;
    for (uint32_t i = 0; i < N; i++) {
        snprintf(id, sizeof id, "entity-%u", i);
        id_bytes += strlen(id) + 1;
        CHECK_INT(put(s, i, id), 0);
    }
    size_t m_ids = state_memory(s);
    CHECK(m_ids >= m_empty + id_bytes + (size_t)N * sizeof(struct state_entity) / 2);
    size_t text = 0;
    for (uint32_t i = 0; i < N; i++) {
        CHECK_INT(state_set_value(s, i, 1, STATE_NUM, 1, i, NULL, 0), 1);
        CHECK_INT(state_set_value(s, i, 2, STATE_STR, 1, 0, "some text value", 15), 1);
        text += 16;
    }
    size_t m_vals = state_memory(s);
    CHECK(m_vals >= m_ids + text + (size_t)N * 2 * sizeof(struct state_value));
    /* the ~72 + ~32 per value + id estimate of the header holds within 2x */
    CHECK(m_vals < m_empty + (size_t)N * (200 + 2 * 64 + 32));
    for (uint32_t i = 0; i < N; i++)
        state_remove(s, i);
    CHECK_INT(state_count(s), 0);
    /* slots and hash stay allocated; every id, value array and text is given back */
    CHECK_INT(state_memory(s), m_ids - id_bytes);
    state_destroy(s);
}

TEST(test_counters_restore)
{
    state *s = new_state();
    CHECK_INT(put(s, 4, "c"), 0);
    state_set_counters(s, 4, 123456789012ULL, 1700000000000LL);
    const struct state_entity *e = state_get(s, 4);
    CHECK(e->readings == 123456789012ULL);
    CHECK_INT(e->last_seen_ms, 1700000000000LL);
    CHECK_INT(state_set_value(s, 4, 1, STATE_NUM, 1600000000000LL, 1, NULL, 0), 1);
    CHECK(e->readings == 123456789013ULL);
    CHECK_INT(e->last_seen_ms, 1700000000000LL);
    state_move(s, 4, 1800000000000LL, 1, 1, 0, 0);
    CHECK(e->readings == 123456789014ULL);
    CHECK_INT(e->last_seen_ms, 1800000000000LL);
    state_set_counters(s, 5, 1, 1);       /* no such entity: ignored */
    state_set_counters(s, 1u << 30, 1, 1);
    CHECK(state_get(s, 5) == NULL);
    state_destroy(s);
}

TEST(test_locks_usable)
{
    state *s = new_state();
    state_wrlock(s);
    CHECK_INT(put(s, 1, "l"), 0);
    state_unlock(s);
    state_rdlock(s);
    state_rdlock(s); /* readers share */
    CHECK_INT(state_find(s, "l"), 1);
    state_unlock(s);
    state_unlock(s);
    state_destroy(s);
}

TEST(test_find_n)
{
    state *s = new_state();
    CHECK_INT(put(s, 1, "urn:a"), 0);
    CHECK_INT(state_find_n(s, "urn:a-and-more", 5), 1); /* needs no NUL */
    CHECK_INT(state_find_n(s, "urn:", 4), STATE_NONE);
    CHECK_INT(state_find_n(s, "urn:a\0", 6), STATE_NONE); /* a NUL names nothing */
    CHECK_INT(state_find_n(s, "urn:ab", 6), STATE_NONE);
    state_destroy(s);
}

struct dir_reader {
    state *s;
    atomic_int found; /* the number found + 1, 0 while looking */
};

static void *find_under_dir_lock(void *arg)
{
    struct dir_reader *r = arg;
    state_dir_rdlock(r->s);
    uint32_t no = state_find(r->s, "urn:d");
    state_dir_unlock(r->s);
    atomic_store(&r->found, (int)no + 1);
    return NULL;
}

/* A parse resolves ids under the directory lock while the writer holds the
 * state's write lock: it must not wait for it. */
TEST(test_directory_lock_beside_write_lock)
{
    state *s = new_state();
    CHECK_INT(put(s, 9, "urn:d"), 0);
    struct dir_reader r = {.s = s};
    state_wrlock(s);
    pthread_t t;
    CHECK_INT(pthread_create(&t, NULL, find_under_dir_lock, &r), 0);
    for (int i = 0; i < 5000 && !atomic_load(&r.found); i++)
        usleep(1000);
    CHECK_INT(atomic_load(&r.found), 10); /* found while the write lock is held */
    state_unlock(s);
    pthread_join(t, NULL);
    state_destroy(s);
}

TEST_MAIN(test_put_find_get_remove, test_hash_growth_100k_with_tombstones,
          test_number_reused_for_another_id, test_put_conflict_and_update_keeps_values,
          test_set_value_last_write_wins, test_string_values_replaced_and_freed,
          test_bool_and_num_kinds, test_move, test_dirty_flags, test_memory_grows_and_shrinks,
          test_counters_restore, test_locks_usable, test_find_n, test_directory_lock_beside_write_lock)
