/* ingest — parse and validate the three doors into batches, replay, apply,
 * checkpoint; see ingest.h. */
#include "ingest/ingest.h"

#include "core/clock.h"
#include "core/log.h"
#include "ingest/lineproto.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ingest {
    const struct cb_config *cfg;
    entities *ents;
    state *st;
    dict *names;
    wal *wal;
    writer *writer;
    db *ckpt_db;                /* the writer thread's connection for checkpoints */
    pthread_mutex_t lp_lock;    /* one line protocol parser, shared by HTTP requests */
    lp_parser *lp;
    atomic_ullong rejected;     /* readings refused by validation */
    uint64_t replayed;          /* records replayed at start */
};

/* What one parse needs; the state's read lock is held throughout. */
struct parse_ctx {
    ingest *in;
    const struct principal *p;
    batch *out;
    struct ingest_report *rep;
    int64_t now_ms;
};

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

/* Error texts quote the input cut at a byte limit, which can split a UTF-8
 * character (or quote raw line protocol bytes): jansson refuses such text, and
 * the error would vanish from the report. Non-ASCII bytes become '?' then. */
static json_t *report_string(const char *text)
{
    json_t *j = json_string(text);
    if (j)
        return j;
    char copy[CB_ERROR_MESSAGE_MAX];
    snprintf(copy, sizeof copy, "%s", text);
    for (char *ch = copy; *ch; ch++)
        if ((unsigned char)*ch >= 0x80)
            *ch = '?';
    return json_string(copy);
}

static void reject(struct parse_ctx *c, size_t index, size_t readings, const cb_error *e)
{
    c->rep->rejected += readings;
    atomic_fetch_add(&c->in->rejected, readings);
    if (json_array_size(c->rep->errors) < INGEST_REPORT_MAX_ERRORS)
        json_array_append_new(c->rep->errors,
                              json_pack("{s:I, s:o, s:s, s:o}", "index", (json_int_t)index, "field",
                                        report_string(e->field), "code", cb_err_name(e->code), "message",
                                        report_string(e->message)));
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

/* --- shared validation --- */

static int check_time(struct parse_ctx *c, int64_t ts, const char *field, cb_error *e)
{
    if (ts > c->now_ms + (int64_t)c->in->cfg->max_future_s * 1000)
        return cb_error_set(e, CB_EINVALID_FIELD, field, "time is more than %d s in the future",
                            c->in->cfg->max_future_s);
    if (ts < c->now_ms - (int64_t)c->in->cfg->max_past_s * 1000)
        return cb_error_set(e, CB_EINVALID_FIELD, field, "time is more than %d s in the past",
                            c->in->cfg->max_past_s);
    return 0;
}

/* RFC 3339 text or epoch milliseconds; absent means now. */
static int parse_ts(struct parse_ctx *c, json_t *v, const char *field, int64_t *ts, cb_error *e)
{
    if (!v) {
        *ts = c->now_ms;
        return 0;
    }
    if (json_is_integer(v))
        *ts = json_integer_value(v);
    else if (!json_is_string(v) || clock_parse_rfc3339(json_string_value(v), ts) != 0)
        return cb_error_set(e, CB_EINVALID_FIELD, field, "ts must be RFC 3339 text or epoch milliseconds");
    return check_time(c, *ts, field, e);
}

static int resolve_entity(struct parse_ctx *c, const char *id, const char *field, uint32_t *no, cb_error *e)
{
    *no = id ? state_find(c->in->st, id) : STATE_NONE;
    if (*no == STATE_NONE)
        return cb_error_set(e, CB_ENOT_FOUND, field, "unknown entity '%.128s'", id ? id : "");
    if (c->p && c->p->role == ROLE_DEVICE && c->p->entity != *no)
        return cb_error_set(e, CB_EFORBIDDEN, field, "a device may write only its own entity");
    return 0;
}

static int location_item(json_t *v, uint32_t no, int64_t ts, const char *field, struct batch_item *it, cb_error *e)
{
    double lon, lat;
    if (!json_is_array(v) || json_array_size(v) != 2 || !json_is_number(json_array_get(v, 0)) ||
        !json_is_number(json_array_get(v, 1)))
        return cb_error_set(e, CB_EINVALID_FIELD, field, "location must be [lon, lat]");
    lon = json_number_value(json_array_get(v, 0));
    lat = json_number_value(json_array_get(v, 1));
    if (!(lon >= -180 && lon <= 180 && lat >= -90 && lat <= 90))
        return cb_error_set(e, CB_EINVALID_FIELD, field, "location [%g, %g] is out of range", lon, lat);
    *it = (struct batch_item){.entity = no, .kind = BATCH_LOC, .ts_ms = ts, .num = lon, .lat = lat};
    return 0;
}

/* One attribute value into an item; e names the field. */
static int value_item(struct parse_ctx *c, const char *attr, json_t *v, uint32_t no, int64_t ts, const char *field,
                      struct batch_item *it, cb_error *e)
{
    *it = (struct batch_item){.entity = no, .ts_ms = ts};
    int rc = dict_id(c->in->names, DICT_ATTR, attr, 1, &it->attr, field, e);
    if (rc != 0)
        return rc;
    if (json_is_number(v)) {
        it->kind = BATCH_NUM;
        it->num = json_number_value(v);
    } else if (json_is_boolean(v)) {
        it->kind = BATCH_BOOL;
        it->num = json_is_true(v);
    } else if (json_is_string(v) && json_string_length(v) <= BATCH_STR_MAX) {
        it->kind = BATCH_STR;
        it->str = json_string_value(v);
        it->len = json_string_length(v);
    } else {
        return cb_error_set(e, CB_EINVALID_FIELD, field,
                            json_is_string(v) ? "text values are at most 4096 bytes"
                                              : "a value must be a number, text or true/false");
    }
    return 0;
}

/* Adds every member of values (but ts/location when skip_meta) as readings. */
static void add_values(struct parse_ctx *c, size_t index, const char *prefix, json_t *values, uint32_t no,
                       int64_t ts, int skip_meta)
{
    const char *attr;
    json_t *v;
    json_object_foreach(values, attr, v) {
        if (skip_meta && (!strcmp(attr, "ts") || !strcmp(attr, "location")))
            continue;
        char field[CB_ERROR_FIELD_MAX];
        snprintf(field, sizeof field, "%s.%.64s", prefix, attr);
        struct batch_item it;
        cb_error e;
        if (value_item(c, attr, v, no, ts, field, &it, &e) != 0) {
            reject(c, index, 1, &e);
            continue;
        }
        batch_add(c->out, &it);
        c->rep->accepted++;
    }
}

static void add_location(struct parse_ctx *c, size_t index, const char *prefix, json_t *loc, uint32_t no, int64_t ts)
{
    char field[CB_ERROR_FIELD_MAX];
    snprintf(field, sizeof field, "%s.location", prefix);
    struct batch_item it;
    cb_error e;
    if (location_item(loc, no, ts, field, &it, &e) != 0) {
        reject(c, index, 1, &e);
        return;
    }
    batch_add(c->out, &it);
    c->rep->accepted++;
}

/* --- JSON batches --- */

static void parse_item(struct parse_ctx *c, size_t i, json_t *item)
{
    char prefix[48], field[CB_ERROR_FIELD_MAX];
    snprintf(prefix, sizeof prefix, "readings[%zu]", i);
    cb_error e;
    json_t *values = json_object_get(item, "values"), *loc = json_object_get(item, "location");
    size_t n = json_object_size(values) + (loc != NULL);
    uint32_t no;
    int64_t ts;
    if (!json_is_object(item) || (!json_is_object(values) && !loc)) {
        cb_error_set(&e, CB_EINVALID_FIELD, prefix, "a reading is {\"entity\", \"ts\"?, \"values\": {...}, \"location\"?}");
        reject(c, i, n ? n : 1, &e);
        return;
    }
    snprintf(field, sizeof field, "%s.entity", prefix);
    if (resolve_entity(c, json_string_value(json_object_get(item, "entity")), field, &no, &e) != 0) {
        reject(c, i, n ? n : 1, &e);
        return;
    }
    snprintf(field, sizeof field, "%s.ts", prefix);
    if (parse_ts(c, json_object_get(item, "ts"), field, &ts, &e) != 0) {
        reject(c, i, n ? n : 1, &e);
        return;
    }
    snprintf(field, sizeof field, "%s.values", prefix);
    if (values)
        add_values(c, i, field, values, no, ts, 0);
    if (loc)
        add_location(c, i, prefix, loc, no, ts);
}

static int count_readings(json_t *list, long long max, cb_error *err)
{
    size_t n = 0, i;
    json_t *item;
    json_array_foreach(list, i, item)
        n += json_object_size(json_object_get(item, "values")) + (json_object_get(item, "location") != NULL);
    if ((long long)n > max)
        return cb_error_set(err, CB_ETOO_LARGE, "readings", "%zu readings in one request; at most %lld",
                            n, max);
    return 0;
}

int ingest_parse_json(ingest *in, const char *body, size_t len, const struct principal *p, batch *out,
                      struct ingest_report *rep, cb_error *err)
{
    json_error_t je;
    json_t *root = json_loadb(body, len, 0, &je);
    if (!root)
        return cb_error_set(err, CB_EINVALID_JSON, "body", "line %d, column %d: %s", je.line, je.column, je.text);
    json_t *list = json_is_array(root) ? root : json_object_get(root, "readings");
    int rc = json_is_array(list) ? count_readings(list, in->cfg->max_batch_readings, err)
                                 : cb_error_set(err, CB_EMISSING_FIELD, "readings",
                                                "the body must be {\"readings\": [...]}");
    if (rc == 0) {
        struct parse_ctx c = {in, p, out, rep, clock_now_ms()};
        size_t i;
        json_t *item;
        state_rdlock(in->st);
        json_array_foreach(list, i, item)
            parse_item(&c, i, item);
        state_unlock(in->st);
    }
    json_decref(root);
    return rc;
}

int ingest_parse_telemetry(ingest *in, const char *entity_id, const char *payload, size_t len, batch *out,
                           struct ingest_report *rep, cb_error *err)
{
    json_error_t je;
    json_t *obj = json_loadb(payload, len, 0, &je);
    if (!json_is_object(obj)) {
        json_decref(obj);
        return cb_error_set(err, CB_EINVALID_JSON, "payload", "telemetry must be a JSON object of attribute: value");
    }
    struct parse_ctx c = {in, NULL, out, rep, clock_now_ms()};
    uint32_t no;
    int64_t ts;
    cb_error e;
    json_t *loc = json_object_get(obj, "location");
    size_t n = json_object_size(obj);
    state_rdlock(in->st);
    if (resolve_entity(&c, entity_id, "topic", &no, &e) != 0 || parse_ts(&c, json_object_get(obj, "ts"), "ts", &ts, &e) != 0) {
        reject(&c, 0, n ? n : 1, &e);
    } else {
        add_values(&c, 0, "payload", obj, no, ts, 1);
        if (loc)
            add_location(&c, 0, "payload", loc, no, ts);
    }
    state_unlock(in->st);
    json_decref(obj);
    return 0;
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
                         const char *field, struct batch_item *it, cb_error *e)
{
    char attr[DICT_NAME_MAX + 1];
    if (f->key.len > DICT_NAME_MAX)
        return cb_error_set(e, CB_EINVALID_FIELD, field, "attribute names are at most %d bytes", DICT_NAME_MAX);
    memcpy(attr, f->key.ptr, f->key.len);
    attr[f->key.len] = '\0';
    *it = (struct batch_item){.entity = no, .ts_ms = ts, .kind = BATCH_NUM};
    int rc = dict_id(c->in->names, DICT_ATTR, attr, 1, &it->attr, field, e);
    if (rc != 0)
        return rc;
    switch (f->type) {
    case LP_FLOAT: it->num = f->v.f; break;
    case LP_INT: it->num = (double)f->v.i; break;
    case LP_UINT: it->num = (double)f->v.u; break;
    case LP_BOOL: it->kind = BATCH_BOOL; it->num = f->v.b; break;
    case LP_STRING:
        if (f->v.s.len > BATCH_STR_MAX)
            return cb_error_set(e, CB_EINVALID_FIELD, field, "text values are at most 4096 bytes");
        it->kind = BATCH_STR;
        it->str = f->v.s.ptr;
        it->len = f->v.s.len;
    }
    return 0;
}

static int lp_on_point(void *arg, size_t line, const struct lp_point *pt)
{
    struct parse_ctx *c = arg;
    char field[CB_ERROR_FIELD_MAX], id[ENTITY_ID_MAX + 1] = "";
    snprintf(field, sizeof field, "line %zu", line);
    const struct lp_str *tag = lp_entity_tag(pt);
    if (tag && tag->len <= ENTITY_ID_MAX)
        memcpy(id, tag->ptr, tag->len), id[tag->len] = '\0';
    uint32_t no;
    cb_error e;
    int64_t ts = pt->time_ns / 1000000;
    if (!tag) {
        cb_error_set(&e, CB_EMISSING_FIELD, field, "line %zu: tag 'id' naming the entity is missing", line);
        reject(c, line, pt->nfields, &e);
    } else if (resolve_entity(c, id, field, &no, &e) != 0 || check_time(c, ts, field, &e) != 0) {
        reject(c, line, pt->nfields, &e);
    } else {
        for (size_t i = 0; i < pt->nfields; i++) {
            struct batch_item it;
            if (lp_field_item(c, &pt->fields[i], no, ts, field, &it, &e) != 0) {
                reject(c, line, 1, &e);
                continue;
            }
            batch_add(c->out, &it);
            c->rep->accepted++;
        }
    }
    return 0;
}

static int lp_on_error(void *arg, size_t line, const cb_error *e)
{
    reject(arg, line, 1, e);
    return 0;
}

int ingest_parse_lp(ingest *in, const char *body, size_t len, const char *precision, const struct principal *p,
                    batch *out, struct ingest_report *rep, cb_error *err)
{
    enum lp_precision prec;
    int rc = lp_precision_parse(precision, &prec, err);
    if (rc != 0)
        return rc;
    struct parse_ctx c = {in, p, out, rep, clock_now_ms()};
    pthread_mutex_lock(&in->lp_lock);
    state_rdlock(in->st);
    rc = lp_parse(in->lp, body, len, prec, c.now_ms * 1000000, lp_on_point, lp_on_error, &c);
    state_unlock(in->st);
    pthread_mutex_unlock(&in->lp_lock);
    if (rc == 0 && (long long)(rep->accepted + rep->rejected) > in->cfg->max_batch_readings)
        rc = cb_error_set(err, CB_ETOO_LARGE, "body", "%zu readings in one request; at most %lld",
                          rep->accepted + rep->rejected, in->cfg->max_batch_readings);
    return rc;
}

/* --- the writer's side: apply and checkpoint --- */

static int apply_item(void *arg, const struct batch_item *it)
{
    ingest *in = arg;
    if (it->kind == BATCH_LOC) {
        uint32_t district, grid;
        region_store_locate(entities_regions(in->ents), it->num, it->lat, &district, &grid);
        state_move(in->st, it->entity, it->ts_ms, it->num, it->lat, district, grid);
        return 0;
    }
    enum state_kind kind = it->kind == BATCH_STR ? STATE_STR : it->kind == BATCH_BOOL ? STATE_BOOL : STATE_NUM;
    return state_set_value(in->st, it->entity, it->attr, kind, it->ts_ms, it->num, it->str, it->len) < 0 ? CB_ENOMEM : 0;
}

static int apply_record(void *ctx, uint64_t lsn, const void *payload, size_t len)
{
    ingest *in = ctx;
    cb_error err;
    state_wrlock(in->st);
    int rc = batch_decode(payload, len, apply_item, in, &err);
    state_unlock(in->st);
    if (rc != 0)
        log_event(LOG_ERROR, "apply", "lsn=%llu error=%s msg=\"%s\"", (unsigned long long)lsn, cb_err_name(rc),
                  rc == CB_ENOMEM ? "out of memory" : err.message);
    return 0; /* a damaged record is logged and skipped; the rest of the log still applies */
}

static int replay_record(void *ctx, uint64_t lsn, const void *payload, size_t len)
{
    ingest *in = ctx;
    in->replayed++;
    return apply_record(ctx, lsn, payload, len);
}

static int checkpoint(void *ctx, uint64_t lsn, cb_error *err)
{
    ingest *in = ctx;
    return entity_checkpoint(in->ents, in->ckpt_db, lsn, err);
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
    rc = wal_replay(in->wal, entities_checkpoint_lsn(in->ents) + 1, replay_record, in, &st, err);
    if (rc == 0)
        log_event(st.stop == WAL_STOP_NONE ? LOG_INFO : LOG_WARN, "replay",
                  "records=%llu from_lsn=%llu took_ms=%.1f stop=%s segment=%s offset=%llu",
                  (unsigned long long)in->replayed, (unsigned long long)entities_checkpoint_lsn(in->ents) + 1,
                  (clock_mono_s() - t0) * 1000, wal_stop_name(st.stop), st.stop_segment[0] ? st.stop_segment : "-",
                  (unsigned long long)st.stop_offset);
    return rc;
}

int ingest_open(const struct cb_config *cfg, entities *ents, ingest **out, cb_error *err)
{
    ingest *in = calloc(1, sizeof *in);
    if (!in)
        return cb_error_set(err, CB_ENOMEM, NULL, NULL);
    in->cfg = cfg;
    in->ents = ents;
    in->st = entities_state(ents);
    in->names = entities_dict(ents);
    pthread_mutex_init(&in->lp_lock, NULL);
    int rc = lp_parser_new(&in->lp, NULL, err);
    if (rc == 0)
        rc = db_open(cfg->data_dir, &in->ckpt_db, err);
    if (rc == 0)
        rc = open_wal(in, err);
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
    writer_stop(in->writer);
    wal_close(in->wal);
    db_close(in->ckpt_db);
    lp_parser_free(in->lp);
    pthread_mutex_destroy(&in->lp_lock);
    free(in);
}

int ingest_submit(ingest *in, batch *b, writer_done_fn done, void *arg)
{
    if (b->failed)
        return CB_ENOMEM;
    return writer_submit(in->writer, b, done, arg);
}

void ingest_write_metrics(ingest *in, buf *out)
{
    struct writer_stats ws;
    struct wal_stats wl;
    writer_get_stats(in->writer, &ws);
    wal_get_stats(in->wal, &wl); /* plain counters read racily: fine for metrics */
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
               "citybrain_checkpoint_seconds %.6f\n",
               (unsigned long long)ws.readings, (unsigned long long)atomic_load(&in->rejected),
               (unsigned long long)ws.batches, (unsigned long long)ws.refused_full, (unsigned long long)ws.failed,
               (unsigned long long)ws.queued_readings, (unsigned long long)wl.bytes_written,
               (unsigned long long)wl.fsyncs, (unsigned long long)wl.segments, (unsigned long long)ws.checkpoints,
               ws.last_checkpoint_s);
}
