/* report — one round of readings through the three doors; see report.h. */
#include "report.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "log.h"
#include "signals.h"

struct round {
    struct sim *s;
    struct report_stats *st;
    buf lp;          /* line protocol body */
    size_t lp_lines;
    json_t *json;    /* the readings array of a JSON batch */
    int logged;      /* rejections logged this round */
};

static void log_rejections(struct round *rd, const char *door, json_t *ans)
{
    json_t *e = json_array_get(json_object_get(ans, "errors"), 0);
    if (!e)
        e = json_object_get(ans, "error");
    if (e && rd->logged++ < 3)
        sim_log(SIM_WARN, "rejected", "door=%s field=\"%s\" code=%s msg=\"%s\"", door,
                json_string_value(json_object_get(e, "field")), json_string_value(json_object_get(e, "code")),
                json_string_value(json_object_get(e, "message")));
}

/* Reads {"accepted": n, "rejected": m, ...} from an ingest answer. */
static void count_answer(struct round *rd, const char *door, int status, const char *body, size_t len, size_t sent)
{
    json_error_t je;
    json_t *ans = json_loadb(body, len, 0, &je);
    json_t *acc = json_object_get(ans, "accepted"), *rej = json_object_get(ans, "rejected");
    if ((status == 200 || status == 400) && json_is_integer(acc)) {
        rd->st->accepted += (size_t)json_integer_value(acc);
        rd->st->rejected += (size_t)json_integer_value(rej);
        if (json_integer_value(rej) > 0)
            log_rejections(rd, door, ans);
    } else {
        rd->st->rejected += sent;
        rd->st->failed_requests++;
        if (rd->logged++ < 3)
            sim_log(SIM_WARN, "ingest_failed", "door=%s status=%d body=\"%.200s\"", door, status, body);
    }
    json_decref(ans);
}

static void post(struct round *rd, const char *door, const char *path, const char *ctype, const char *body,
                 size_t len, size_t sent)
{
    struct httpc_response r;
    char err[256];
    if (api_call(rd->s->api, "POST", path, ctype, body, len, &r, err, sizeof err) == 0) {
        count_answer(rd, door, r.status, r.body.data, r.body.len, sent);
    } else {
        rd->st->failed_requests++;
        if (strcmp(err, "interrupted") != 0 && rd->logged++ < 3)
            sim_log(SIM_WARN, "ingest_failed", "door=%s error=\"%s\"", door, err);
    }
    httpc_response_free(&r);
}

static void flush_lp(struct round *rd)
{
    if (rd->lp_lines == 0)
        return;
    if (buf_ok(&rd->lp))
        post(rd, "line", "/api/v1/write?precision=ms", "text/plain; charset=utf-8", rd->lp.data, rd->lp.len,
             rd->lp_lines);
    buf_reset(&rd->lp);
    rd->lp_lines = 0;
}

static void flush_json(struct round *rd)
{
    size_t n = json_array_size(rd->json);
    if (n == 0)
        return;
    json_t *body = json_pack("{s:O}", "readings", rd->json);
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    if (text)
        post(rd, "json", "/api/v1/ingest", "application/json", text, strlen(text), n);
    free(text);
    json_decref(body);
    json_array_clear(rd->json);
}

static json_t *field_json(const struct field *f)
{
    switch (f->kind) {
    case FIELD_BOOL: return json_boolean(f->v != 0);
    case FIELD_INT: return json_integer((json_int_t)f->v);
    case FIELD_NUM: break;
    }
    return json_real(f->v);
}

static json_t *values_json(const struct reading *rg)
{
    json_t *v = json_object();
    for (int i = 0; i < rg->nf; i++)
        json_object_set_new(v, rg->f[i].name, field_json(&rg->f[i]));
    return v;
}

/* <Type>,id=<id> f=v,... <ms>; ids are [A-Za-z0-9:_.-], so nothing to escape. */
static void add_line(struct round *rd, const char *id, const struct device *d, const struct reading *rg, int64_t ts)
{
    buf *b = &rd->lp;
    buf_printf(b, "%s,id=%s ", dev_types[d->type].name, id);
    for (int i = 0; i < rg->nf; i++) {
        const struct field *f = &rg->f[i];
        if (f->kind == FIELD_BOOL)
            buf_printf(b, "%s%s=%s", i ? "," : "", f->name, f->v != 0 ? "true" : "false");
        else if (f->kind == FIELD_INT)
            buf_printf(b, "%s%s=%lldi", i ? "," : "", f->name, (long long)f->v);
        else
            buf_printf(b, "%s%s=%.10g", i ? "," : "", f->name, f->v);
    }
    buf_printf(b, " %lld\n", (long long)ts);
    if (++rd->lp_lines >= REPORT_BATCH)
        flush_lp(rd);
}

static void add_json(struct round *rd, const char *id, const struct reading *rg, int64_t ts)
{
    json_t *item = json_pack("{s:s, s:I, s:o}", "entity", id, "ts", (json_int_t)ts, "values", values_json(rg));
    if (item && rg->has_location)
        json_object_set_new(item, "location", json_pack("[f, f]", rg->lon, rg->lat));
    json_array_append_new(rd->json, item);
    if (json_array_size(rd->json) >= REPORT_BATCH)
        flush_json(rd);
}

static void add_mqtt(struct round *rd, const char *id, const struct device *d, const struct reading *rg, int64_t ts)
{
    json_t *v = values_json(rg);
    json_object_set_new(v, "ts", json_integer((json_int_t)ts));
    char *payload = json_dumps(v, JSON_COMPACT), topic[200], user[64];
    json_decref(v);
    const char *cut = strrchr(d->token, '_');
    size_t ul = cut ? (size_t)(cut - d->token) : strlen(d->token);
    snprintf(user, sizeof user, "%.*s", (int)(ul < sizeof user ? ul : sizeof user - 1), d->token);
    snprintf(topic, sizeof topic, "city/%s/telemetry", id);
    if (payload && mqttpub_enqueue(rd->s->mqtt, user, d->token, topic, payload) == 0)
        rd->st->mqtt_messages++;
    free(payload);
}

static void report_device(struct round *rd, struct device *d, const struct sim_time *t)
{
    struct sim *s = rd->s;
    const struct dev_type_info *ti = &dev_types[d->type];
    double period = fmax(ti->period_s, s->interval_s);
    struct reading rg;
    char id[160];
    signal_next(d, &s->city, &s->inc, t, period, &s->r, &rg);
    catalog_id(&s->city, d, id);
    if ((d->flags & DEV_MQTT) && s->mqtt && d->token)
        add_mqtt(rd, id, d, &rg, t->now_ms);
    else if (ti->door == DOOR_JSON)
        add_json(rd, id, &rg, t->now_ms);
    else
        add_line(rd, id, d, &rg, t->now_ms);
    rd->st->devices++;
    rd->st->readings += (size_t)rg.nf + (rg.has_location ? 1 : 0);
    /* The first report of a run lands at a random phase of the period, so
     * the reports of one type spread over it instead of coming in bursts. */
    double next = d->next_ms == 0 ? period * rng_unit(&s->r) : period;
    d->next_ms = t->now_ms + (int64_t)(next * 1000);
}

void report_round(struct sim *s, int64_t now_ms, int everyone, struct report_stats *st)
{
    struct round rd = {.s = s, .st = st, .json = json_array()};
    struct sim_time t;
    memset(st, 0, sizeof *st);
    buf_init(&rd.lp);
    sim_time_at(&t, now_ms);
    for (size_t i = 0; i < s->cat.n; i++) {
        struct device *d = &s->cat.dev[i];
        if (!(d->flags & DEV_REGISTERED) || (d->flags & DEV_OFFLINE) || (!everyone && d->next_ms > now_ms))
            continue;
        report_device(&rd, d, &t);
    }
    flush_lp(&rd);
    flush_json(&rd);
    buf_free(&rd.lp);
    json_decref(rd.json);
}
