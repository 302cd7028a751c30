/* intake — reports through the hotline, grid workers and citizens; see
 * intake.h. */
#include "intake.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "log.h"
#include "phrasebook.h"

#define CATCH_UP_MAX 5 /* reports at most per tick after a long pause */

static const char *const channel_names[CH_COUNT] = {"hotline", "grid", "citizen"};
static const double channel_share[CH_COUNT] = {0.45, 0.35, 0.20};
/* How each channel words it: the 12345 work order, the grid worker's log, the citizen. */
static const char *const opening[CH_COUNT] = {"市民来电反映：", "网格巡查发现：", ""};
static const char *const closing[CH_COUNT] = {"，请相关部门尽快处理。", "。", "，希望尽快解决！"};
static const double kind_weight[DISTRICT_KINDS] = {5, 2, 1}; /* centre, urban, rural */

const char *intake_channel_name(enum channel ch)
{
    return ch < CH_COUNT ? channel_names[ch] : "?";
}

static void schedule(intake *in, int64_t from_ms)
{
    double gap_s = -log(1 - rng_unit(&in->r)) * 60 / in->per_min;
    in->next_ms = from_ms + (int64_t)(gap_s * 1000);
}

void intake_init(intake *in, double per_min, uint64_t seed, int64_t now_ms)
{
    memset(in, 0, sizeof *in);
    in->per_min = per_min;
    in->open311 = -1;
    in->services = json_object();
    rng_seed(&in->r, seed);
    if (per_min > 0)
        schedule(in, now_ms);
}

void intake_free(intake *in)
{
    json_decref(in->services);
    in->services = NULL;
}

static size_t pick_district(intake *in, const city *ct)
{
    double sum = 0;
    for (size_t i = 0; i < ct->n; i++)
        sum += kind_weight[ct->d[i].kind];
    double u = rng_unit(&in->r) * sum;
    for (size_t i = 0; i < ct->n; i++)
        if ((u -= kind_weight[ct->d[i].kind]) < 0)
            return i;
    return ct->n - 1;
}

static enum channel pick_channel(intake *in)
{
    double u = rng_unit(&in->r);
    for (int ch = 0; ch < CH_COUNT - 1; ch++)
        if ((u -= channel_share[ch]) < 0)
            return (enum channel)ch;
    return CH_CITIZEN;
}

/* One problem, where it is and who tells. */
struct report {
    enum channel ch;
    const struct district *d;
    size_t di;
    struct complaint what;
    double lon, lat;
    char name[32], phone[16];
};

/* Does citybrain serve Open311? Asked once (GET services.json is public). */
static int has_open311(intake *in, api *a)
{
    if (in->open311 < 0) {
        struct httpc_response r;
        char err[256];
        int rc = api_call_as(a, "", "GET", "/open311/v2/services.json", NULL, NULL, 0, &r, err, sizeof err);
        in->open311 = rc == 0 && r.status == 200;
        httpc_response_free(&r);
        sim_log(SIM_INFO, "open311", "available=%d", in->open311);
    }
    return in->open311 > 0;
}

static void form_field(buf *b, const char *name, const char *value)
{
    static const char hex[] = "0123456789ABCDEF";
    buf_printf(b, "%s%s=", b->len ? "&" : "", name);
    for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || strchr("-._~", *p)) {
            buf_append(b, p, 1);
        } else {
            char esc[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            buf_append(b, esc, 3);
        }
    }
}

/* The attributes of a service's definition (cached; borrowed), or NULL. */
static json_t *service_attributes(intake *in, api *a, const char *code)
{
    json_t *attrs = json_object_get(in->services, code);
    if (attrs)
        return attrs;
    char path[128], err[256];
    int status = 0;
    snprintf(path, sizeof path, "/open311/v2/services/%s.json", code);
    json_t *def = api_json_as(a, "", "GET", path, NULL, &status, err, sizeof err);
    attrs = json_object_get(def, "attributes");
    if (status == 200 && json_is_array(attrs))
        json_object_set(in->services, code, attrs);
    json_decref(def);
    return json_object_get(in->services, code);
}

/* A citizen answers each required list attribute with the value the
 * description names ("破损" → damaged), else "other", else the first. */
static void answer_attributes(buf *b, json_t *attrs, const char *description)
{
    size_t i, j;
    json_t *at, *v;
    json_array_foreach(attrs, i, at) {
        json_t *values = json_object_get(at, "values");
        const char *code = json_string_value(json_object_get(at, "code"));
        if (!code || !json_is_true(json_object_get(at, "required")) || json_array_size(values) == 0)
            continue;
        const char *pick = NULL, *other = NULL;
        json_array_foreach(values, j, v) {
            const char *key = json_string_value(json_object_get(v, "key"));
            const char *name = json_string_value(json_object_get(v, "name"));
            if (key && name && *name && strstr(description, name) && !pick)
                pick = key;
            if (key && strcmp(key, "other") == 0)
                other = key;
        }
        if (!pick)
            pick = other ? other : json_string_value(json_object_get(json_array_get(values, 0), "key"));
        char name[96];
        snprintf(name, sizeof name, "attribute[%s]", code);
        form_field(b, name, pick ? pick : "");
    }
}

/* GeoReport v2: the surname is last_name, the rest first_name. Returns the
 * service request id in id, or -1 with err. */
static int file_open311(intake *in, api *a, const staff *st, const struct report *rp, char *id, size_t idlen,
                        char *err, size_t errlen)
{
    char num[32];
    size_t first = 1;
    while (rp->name[first] && ((unsigned char)rp->name[first] & 0xC0) == 0x80)
        first++; /* the surname's whole UTF-8 character */
    char last[8];
    snprintf(last, sizeof last, "%.*s", (int)first, rp->name);
    buf b;
    buf_init(&b);
    form_field(&b, "api_key", st->citizen_key);
    form_field(&b, "service_code", rp->what.category);
    snprintf(num, sizeof num, "%.7f", rp->lat);
    form_field(&b, "lat", num);
    snprintf(num, sizeof num, "%.7f", rp->lon);
    form_field(&b, "long", num);
    form_field(&b, "address_string", rp->what.address);
    form_field(&b, "description", rp->what.description);
    form_field(&b, "first_name", rp->name + first);
    form_field(&b, "last_name", last);
    form_field(&b, "phone", rp->phone);
    answer_attributes(&b, service_attributes(in, a, rp->what.category), rp->what.description);
    struct httpc_response r;
    int rc = -1;
    if (!buf_ok(&b)) {
        snprintf(err, errlen, "out of memory");
        memset(&r, 0, sizeof r);
    } else if (api_call_as(a, "", "POST", "/open311/v2/requests.json", "application/x-www-form-urlencoded", b.data,
                           b.len, &r, err, errlen) == 0) {
        json_error_t je;
        json_t *ans = json_loadb(r.body.data, r.body.len, 0, &je);
        json_t *req = json_array_get(ans, 0);
        const char *sid = json_string_value(json_object_get(req, "service_request_id"));
        if ((r.status == 200 || r.status == 201) && sid) {
            snprintf(id, idlen, "%s", sid);
            rc = 0;
        } else {
            snprintf(err, errlen, "HTTP %d %.200s", r.status, r.body.data);
        }
        json_decref(ans);
    }
    httpc_response_free(&r);
    buf_free(&b);
    return rc;
}

static int file_case(api *a, const staff *st, const struct report *rp, char *id, size_t idlen, char *err,
                     size_t errlen)
{
    /* without Open311 a citizen's report is entered by the operations centre:
     * the hotline reports through channel hotline only */
    const char *key = rp->ch == CH_GRID && st->grid_keys ? st->grid_keys[rp->di]
                      : rp->ch == CH_CITIZEN       ? st->operator_key
                                                   : st->hotline_key;
    json_t *body = json_pack("{s:s, s:s, s:s, s:s, s:f, s:f, s:{s:s, s:s}}", "channel", channel_names[rp->ch],
                             "category", rp->what.category, "description", rp->what.description, "address",
                             rp->what.address, "lon", rp->lon, "lat", rp->lat, "reporter", "name", rp->name, "phone",
                             rp->phone);
    int status = 0;
    json_t *ans = body ? api_json_as(a, key, "POST", "/api/v1/cases", body, &status, err, errlen) : NULL;
    if (!body)
        snprintf(err, errlen, "out of memory");
    const char *cid = json_string_value(json_object_get(ans, "id"));
    int rc = status == 201 && cid ? 0 : -1;
    if (rc == 0)
        snprintf(id, idlen, "%s", cid);
    else if (ans)
        snprintf(err, errlen, "HTTP %d %s", status,
                 json_string_value(json_object_get(json_object_get(ans, "error"), "message")));
    json_decref(ans);
    json_decref(body);
    return rc;
}

static void file_report(intake *in, api *a, const city *ct, const staff *st, enum channel ch)
{
    struct report rp = {.ch = ch};
    rp.di = pick_district(in, ct);
    rp.d = &ct->d[rp.di];
    phrasebook_complaint(rp.d, &in->r, &rp.what);
    city_random_point(rp.d, &in->r, &rp.lon, &rp.lat);
    phrasebook_person(&in->r, rp.name, sizeof rp.name, rp.phone, sizeof rp.phone);
    char text[sizeof rp.what.description];
    snprintf(text, sizeof text, "%s%s%s", opening[ch], rp.what.description, closing[ch]);
    memcpy(rp.what.description, text, sizeof text);
    char id[64] = "", err[512] = "";
    int open311 = ch == CH_CITIZEN && has_open311(in, a);
    int rc = open311 ? file_open311(in, a, st, &rp, id, sizeof id, err, sizeof err)
                     : file_case(a, st, &rp, id, sizeof id, err, sizeof err);
    if (rc != 0) {
        in->n.failed++;
        if (strcmp(err, "interrupted") != 0)
            sim_log(SIM_WARN, "report_failed", "channel=%s via=%s category=%s error=\"%s\"", channel_names[ch],
                    open311 ? "open311" : "cases", rp.what.category, err);
        return;
    }
    in->n.filed[ch]++;
    in->n.open311 += open311;
    sim_log(SIM_INFO, "case_reported", "channel=%s via=%s id=%s category=%s district=%s description=\"%s\"",
            channel_names[ch], open311 ? "open311" : "cases", id, rp.what.category, rp.d->code,
            rp.what.description);
}

void intake_tick(intake *in, api *a, const city *ct, const staff *st, int64_t now_ms, int every_channel)
{
    if (ct->n == 0)
        return;
    if (every_channel) {
        for (int ch = 0; ch < CH_COUNT; ch++)
            file_report(in, a, ct, st, (enum channel)ch);
        return;
    }
    for (int k = 0; in->per_min > 0 && in->next_ms <= now_ms; k++) {
        if (k < CATCH_UP_MAX)
            file_report(in, a, ct, st, pick_channel(in));
        schedule(in, k < CATCH_UP_MAX ? in->next_ms : now_ms);
    }
}
