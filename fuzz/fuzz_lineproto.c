/* fuzz_lineproto — libFuzzer target for ingest/lineproto.
 *
 * The first input byte picks the precision and whether tight limits apply;
 * the rest is a POST /api/v1/write body. Beyond "does not crash", every point
 * and error reported is checked against the documented contract, and every
 * point is written back as line protocol and parsed again, which must give
 * the same point bit for bit (escaping and float round trips), and the
 * readings counted never exceed lp_readings_at_most. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/lineproto.h"

#define NOW INT64_C(1732350000000000000)
#define ENC_MAX (1 << 20)

#include "require.h"

struct fuzz_state {
    size_t last_line;   /* line numbers only grow */
    size_t max_line_no; /* number of lines in the body */
    const struct lp_point *want; /* the round trip compares against this */
    int rt_points;
    size_t readings;    /* as ingest counts them: a good line's fields, a bad line 1 */
};

static lp_parser *parsers[2]; /* default and tight limits */
static lp_parser *rt_parser;  /* for the round trip; generous limits */
static char enc[ENC_MAX];

static int str_eq(struct lp_str a, struct lp_str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static int str_cmp(struct lp_str a, struct lp_str b)
{
    size_t n = a.len < b.len ? a.len : b.len;
    int c = n ? memcmp(a.ptr, b.ptr, n) : 0;
    return c ? c : (a.len > b.len) - (a.len < b.len);
}

static void check_name(struct lp_str s)
{
    REQUIRE(s.len > 0 && s.ptr);
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        REQUIRE(c >= 0x20 && c != 0x7f);
    }
}

static void check_field(const struct lp_field *f)
{
    check_name(f->key);
    switch (f->type) {
    case LP_FLOAT: REQUIRE(isfinite(f->v.f)); break;
    case LP_BOOL: REQUIRE(f->v.b == 0 || f->v.b == 1); break;
    case LP_STRING: REQUIRE(f->v.s.len == 0 || !memchr(f->v.s.ptr, 0, f->v.s.len)); break;
    case LP_INT:
    case LP_UINT: break;
    default: REQUIRE(!"unknown value type");
    }
}

static void check_point(const struct lp_point *pt)
{
    check_name(pt->measurement);
    REQUIRE(pt->measurement.ptr[0] != '#');
    REQUIRE(pt->nfields >= 1);
    for (size_t i = 0; i < pt->ntags; i++) {
        check_name(pt->tags[i].key);
        check_name(pt->tags[i].value);
        REQUIRE(i == 0 || str_cmp(pt->tags[i - 1].key, pt->tags[i].key) < 0);
    }
    for (size_t i = 0; i < pt->nfields; i++) {
        check_field(&pt->fields[i]);
        for (size_t j = 0; j < i; j++)
            REQUIRE(!str_eq(pt->fields[i].key, pt->fields[j].key));
    }
    REQUIRE(pt->has_time || pt->time_ns == NOW);
}

/* ---- writing a point back as line protocol ---- */

struct out {
    size_t len;
    int full;
};

static void emit(struct out *o, const char *s, size_t n)
{
    if (o->full || o->len + n >= ENC_MAX) {
        o->full = 1;
        return;
    }
    memcpy(enc + o->len, s, n);
    o->len += n;
}

static void emit_escaped(struct out *o, struct lp_str s, const char *special)
{
    for (size_t i = 0; i < s.len; i++) {
        if (strchr(special, s.ptr[i]))
            emit(o, "\\", 1);
        emit(o, &s.ptr[i], 1);
    }
}

static void emit_value(struct out *o, const struct lp_field *f)
{
    char num[64];
    int n = 0;
    switch (f->type) {
    case LP_FLOAT: n = snprintf(num, sizeof num, "%.17g", f->v.f); break;
    case LP_INT: n = snprintf(num, sizeof num, "%" PRId64 "i", f->v.i); break;
    case LP_UINT: n = snprintf(num, sizeof num, "%" PRIu64 "u", f->v.u); break;
    case LP_BOOL: n = snprintf(num, sizeof num, "%s", f->v.b ? "TRUE" : "f"); break;
    case LP_STRING:
        emit(o, "\"", 1);
        emit_escaped(o, f->v.s, "\"\\");
        emit(o, "\"", 1);
        return;
    }
    emit(o, num, (size_t)n);
}

static size_t encode(const struct lp_point *pt)
{
    struct out o = {0, 0};
    char ts[32];
    emit_escaped(&o, pt->measurement, ", ");
    for (size_t i = 0; i < pt->ntags; i++) {
        emit(&o, ",", 1);
        emit_escaped(&o, pt->tags[i].key, ",= ");
        emit(&o, "=", 1);
        emit_escaped(&o, pt->tags[i].value, ",= ");
    }
    for (size_t i = 0; i < pt->nfields; i++) {
        emit(&o, i ? "," : " ", 1);
        emit_escaped(&o, pt->fields[i].key, ",= ");
        emit(&o, "=", 1);
        emit_value(&o, &pt->fields[i]);
    }
    if (pt->has_time) {
        int n = snprintf(ts, sizeof ts, " %" PRId64, pt->time_ns);
        emit(&o, ts, (size_t)n);
    }
    emit(&o, "\r\n", 2);
    return o.full ? 0 : o.len;
}

static int same_field(const struct lp_field *a, const struct lp_field *b)
{
    if (!str_eq(a->key, b->key) || a->type != b->type)
        return 0;
    switch (a->type) {
    case LP_FLOAT: return memcmp(&a->v.f, &b->v.f, sizeof a->v.f) == 0;
    case LP_INT: return a->v.i == b->v.i;
    case LP_UINT: return a->v.u == b->v.u;
    case LP_BOOL: return a->v.b == b->v.b;
    case LP_STRING: return str_eq(a->v.s, b->v.s);
    }
    return 0;
}

static int rt_on_point(void *arg, size_t line_no, const struct lp_point *got)
{
    struct fuzz_state *st = arg;
    const struct lp_point *want = st->want;
    REQUIRE(line_no == 1);
    REQUIRE(str_eq(got->measurement, want->measurement));
    REQUIRE(got->ntags == want->ntags && got->nfields == want->nfields);
    for (size_t i = 0; i < got->ntags; i++)
        REQUIRE(str_eq(got->tags[i].key, want->tags[i].key) &&
                str_eq(got->tags[i].value, want->tags[i].value));
    for (size_t i = 0; i < got->nfields; i++)
        REQUIRE(same_field(&got->fields[i], &want->fields[i]));
    REQUIRE(got->has_time == want->has_time && got->time_ns == want->time_ns);
    st->rt_points++;
    return 0;
}

static int rt_on_error(void *arg, size_t line_no, const cb_error *e)
{
    (void)arg;
    fprintf(stderr, "round trip failed on line %zu: %s\n%s", line_no, e->message, enc);
    abort();
}

/* ---- the callbacks for the fuzzed body ---- */

static int on_point(void *arg, size_t line_no, const struct lp_point *pt)
{
    struct fuzz_state *st = arg;
    REQUIRE(line_no > st->last_line && line_no <= st->max_line_no);
    st->last_line = line_no;
    st->readings += pt->nfields;
    check_point(pt);
    size_t n = encode(pt);
    if (n == 0)
        return 0;
    struct fuzz_state rt = {0, 1, pt, 0, 0};
    REQUIRE(lp_parse(rt_parser, enc, n, LP_NS, NOW, rt_on_point, rt_on_error, &rt) == 0);
    REQUIRE(rt.rt_points == 1);
    return 0;
}

static int on_error(void *arg, size_t line_no, const cb_error *e)
{
    struct fuzz_state *st = arg;
    char field[32];
    REQUIRE(line_no > st->last_line && line_no <= st->max_line_no);
    st->last_line = line_no;
    st->readings++;
    REQUIRE(e->code < 0 && cb_err_valid(e->code));
    snprintf(field, sizeof field, "line %zu", line_no);
    REQUIRE(strcmp(e->field, field) == 0);
    REQUIRE(strncmp(e->message, field, strlen(field)) == 0);
    for (const char *c = e->message; *c; c++)
        REQUIRE(*c >= 0x20 && *c < 0x7f);
    return 0;
}

static void setup(void)
{
    static const struct lp_limits tight = {.max_line = 64, .max_tags = 3, .max_fields = 12};
    /* Escaping and %.17g make a line longer, never add tags or fields. */
    static const struct lp_limits roomy = {.max_line = ENC_MAX};
    REQUIRE(lp_parser_new(&parsers[0], NULL, NULL) == 0);
    REQUIRE(lp_parser_new(&parsers[1], &tight, NULL) == 0);
    REQUIRE(lp_parser_new(&rt_parser, &roomy, NULL) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!rt_parser)
        setup();
    if (size == 0)
        return 0;
    enum lp_precision prec = (enum lp_precision)(data[0] & 3);
    lp_parser *p = parsers[(data[0] >> 2) & 1];
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    struct fuzz_state st = {0, 1, NULL, 0, 0};
    for (size_t i = 0; i < len; i++)
        st.max_line_no += body[i] == '\n';
    REQUIRE(lp_parse(p, body, len, prec, NOW, on_point, on_error, &st) == 0);
    REQUIRE(st.readings <= lp_readings_at_most(body, len)); /* what ingest's part limit relies on */
    return 0;
}
