/* Unit tests for ingest/lineproto: every value type and escape rule, errors
 * with their line and column, limits, and floats bit-for-bit against strtod. */
#include "ingest/lineproto.h"

#include <locale.h>
#include <math.h>
#include <stdarg.h>

#include "test.h"

#define NOW INT64_C(42)

/* What the callbacks saw, one text line per point or error. */
struct seen {
    char text[16384];
    size_t len;
    int points, errors;
    int stop_at_point;   /* > 0: on_point returns stop_code on that point */
    int stop_code;
    int error_code_stop; /* != 0: on_error returns it */
};

static void put(struct seen *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct seen *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(s->text + s->len, sizeof s->text - s->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        s->len += (size_t)n < sizeof s->text - s->len ? (size_t)n : sizeof s->text - s->len - 1;
}

static void put_str(struct seen *s, struct lp_str x)
{
    put(s, "%.*s", (int)x.len, x.ptr);
}

static void put_field(struct seen *s, const struct lp_field *f)
{
    put_str(s, f->key);
    put(s, "=");
    switch (f->type) {
    case LP_FLOAT: put(s, "%.17g", f->v.f); break;
    case LP_INT: put(s, "%" PRId64 "i", f->v.i); break;
    case LP_UINT: put(s, "%" PRIu64 "u", f->v.u); break;
    case LP_BOOL: put(s, "%s", f->v.b ? "true" : "false"); break;
    case LP_STRING: put(s, "\""); put_str(s, f->v.s); put(s, "\""); break;
    }
}

/* Canonical form: meas[,k=v...] f=v[,f=v...] @time|@now */
static int on_point(void *arg, size_t line_no, const struct lp_point *pt)
{
    struct seen *s = arg;
    if (s->len)
        put(s, "\n");
    put(s, "%zu: ", line_no);
    put_str(s, pt->measurement);
    for (size_t i = 0; i < pt->ntags; i++) {
        put(s, ",");
        put_str(s, pt->tags[i].key);
        put(s, "=");
        put_str(s, pt->tags[i].value);
    }
    for (size_t i = 0; i < pt->nfields; i++) {
        put(s, i ? "," : " ");
        put_field(s, &pt->fields[i]);
    }
    if (pt->has_time)
        put(s, " @%" PRId64, pt->time_ns);
    else
        put(s, " @now%s", pt->time_ns == NOW ? "" : "(wrong)");
    s->points++;
    return s->points == s->stop_at_point ? s->stop_code : 0;
}

static int on_error(void *arg, size_t line_no, const cb_error *e)
{
    struct seen *s = arg;
    if (s->len)
        put(s, "\n");
    put(s, "%zu! %s [%s] %s", line_no, cb_err_name(e->code), e->field, e->message);
    s->errors++;
    return s->error_code_stop;
}

static int run_with(const struct lp_limits *lim, struct seen *s, const char *body, size_t len,
                    enum lp_precision prec)
{
    lp_parser *p;
    cb_error err;
    if (lp_parser_new(&p, lim, &err) != 0)
        return -1000;
    int rc = lp_parse(p, body, len, prec, NOW, on_point, on_error, s);
    lp_parser_free(p);
    return rc;
}

/* Parses body with default limits and ns precision; returns what was seen
 * without the "1: " prefix of a one-line body. */
static const char *one_prec(const char *body, enum lp_precision prec)
{
    static struct seen s;
    memset(&s, 0, sizeof s);
    if (run_with(NULL, &s, body, strlen(body), prec) != 0)
        return "(lp_parse failed)";
    return strncmp(s.text, "1: ", 3) == 0 ? s.text + 3 : s.text;
}

static const char *one(const char *body)
{
    return one_prec(body, LP_NS);
}

/* 1 if parsing body gives exactly one error whose message contains needle. */
static int fails_with(const char *body, const char *code_name, const char *needle)
{
    struct seen s = {0};
    if (run_with(NULL, &s, body, strlen(body), LP_NS) != 0 || s.errors != 1 || s.points != 0)
        return 0;
    if (!strstr(s.text, code_name) || !strstr(s.text, needle)) {
        fprintf(stderr, "    got: %s\n", s.text);
        return 0;
    }
    return 1;
}

TEST(test_value_types)
{
    CHECK_STR(one("m f=1.5,i=-3i,u=7u,s=\"hi\",b=t,B=FALSE"),
              "m f=1.5,i=-3i,u=7u,s=\"hi\",b=true,B=false @now");
    CHECK_STR(one("cpu,host=a usage=0.25 1700000000000000000"),
              "cpu,host=a usage=0.25 @1700000000000000000");
    CHECK_STR(one("m i=0i,u=0u,f=0,g=-0"), "m i=0i,u=0u,f=0,g=-0 @now");
}

TEST(test_booleans)
{
    CHECK_STR(one("m a=t,b=T,c=true,d=True,e=TRUE"), "m a=true,b=true,c=true,d=true,e=true @now");
    CHECK_STR(one("m a=f,b=F,c=false,d=False,e=FALSE"),
              "m a=false,b=false,c=false,d=false,e=false @now");
    CHECK(fails_with("m a=tru", "invalid_field", "field 'a': invalid boolean 'tru'"));
    CHECK(fails_with("m a=tRUE", "invalid_field", "invalid boolean"));
    CHECK(fails_with("m a=yes", "invalid_field", "invalid number 'yes'"));
    CHECK(fails_with("m a=falsey", "invalid_field", "invalid boolean"));
}

TEST(test_float_forms)
{
    CHECK_STR(one("m a=1,b=-1.5,c=1e3,d=1E-2,e=1.,f=.5,g=-.5,h=2e+2,i=007.50"),
              "m a=1,b=-1.5,c=1000,d=0.01,e=1,f=0.5,g=-0.5,h=200,i=7.5 @now");
    CHECK_STR(one("m u=1e-400,z=0e999999999999"), "m u=0,z=0 @now");
    const char *bad[] = {"inf", "-inf", "nan", "NaN", "Infinity", "+1", "1.2.3", "1e", "1e+",
                         "--1", ".", "-", "0x10", "1_000", "1e5.0", "e5", "1.5f"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char body[64];
        snprintf(body, sizeof body, "m v=%s", bad[i]);
        CHECK(fails_with(body, "invalid_field", "field 'v': invalid"));
    }
    CHECK(fails_with("m v=1e400", "invalid_field", "number out of range '1e400'"));
    CHECK(fails_with("m v=-1.8e308", "invalid_field", "out of range"));
    CHECK(fails_with("m temp=1.2.3", "invalid_field", "field 'temp': invalid number '1.2.3'"));
    /* -0 keeps its sign on both paths. */
    CHECK_STR(one("m a=-0.0,b=-0e-400,c=-0.00000000000000000000000"), "m a=-0,b=-0,c=-0 @now");
}

/* Random decimal strings of many shapes, each compared with strtod bit for
 * bit; overflow must be an error. Uses one body of many lines. */
static uint64_t rng_state = 0x9e3779b97f4a7c15u;
static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void random_decimal(char *o, size_t cap)
{
    size_t n = 0, ndig = 1 + rng() % (rng() % 4 == 0 ? 30 : 17);
    size_t point = rng() % (ndig + 2);
    if (rng() % 3 == 0)
        o[n++] = '-';
    for (size_t i = 0; i < ndig; i++) {
        if (i == point)
            o[n++] = '.';
        o[n++] = (char)('0' + (rng() % 5 == 0 ? 0 : rng() % 10));
    }
    if (rng() % 2) {
        int e = (int)(rng() % 700) - 350;
        if (rng() % 2)
            e = (int)(rng() % 50) - 25;
        n += (size_t)snprintf(o + n, cap - n, "%c%d", rng() % 2 ? 'e' : 'E', e);
    }
    o[n] = '\0';
}

#define NRANDOM 50000
static char rnd_text[NRANDOM][64];
static int on_random_point(void *arg, size_t line_no, const struct lp_point *pt)
{
    int *bad = arg;
    double want = strtod(rnd_text[line_no - 1], NULL);
    uint64_t a, b;
    memcpy(&a, &pt->fields[0].v.f, 8);
    memcpy(&b, &want, 8);
    if (pt->fields[0].type != LP_FLOAT || a != b) {
        if (*bad < 5)
            fprintf(stderr, "    '%s': got %.17g want %.17g\n", rnd_text[line_no - 1],
                    pt->fields[0].v.f, want);
        ++*bad;
    }
    return 0;
}

static int on_random_error(void *arg, size_t line_no, const cb_error *e)
{
    int *bad = arg;
    if (isfinite(strtod(rnd_text[line_no - 1], NULL)) || !strstr(e->message, "out of range")) {
        if (*bad < 5)
            fprintf(stderr, "    '%s': %s\n", rnd_text[line_no - 1], e->message);
        ++*bad;
    }
    return 0;
}

TEST(test_float_exact_vs_strtod)
{
    static const char *hard[] = {
        "9007199254740993", "9007199254740992", "0.1", "0.30000000000000004",
        "2.2250738585072011e-308", "2.2250738585072014e-308", "1.7976931348623157e308",
        "1.7976931348623159e308", "4.9e-324", "2.4703282292062327e-324",
        "2.4703282292062328e-324", "123456789012345678901234567890", "1e22", "1e23",
        "8.98846567431158e307", "0.000000000000000000000000000000001234567",
        "1.00000000000000011102230246251565404236316680908203125",
        "1.00000000000000011102230246251565404236316680908203124", "35.2", "61", "20.5",
    };
    size_t nhard = sizeof hard / sizeof hard[0];
    static char body[NRANDOM * 72];
    size_t len = 0;
    for (size_t i = 0; i < NRANDOM; i++) {
        if (i < nhard)
            snprintf(rnd_text[i], sizeof rnd_text[i], "%s", hard[i]);
        else
            random_decimal(rnd_text[i], sizeof rnd_text[i]);
        len += (size_t)sprintf(body + len, "m f=%s\n", rnd_text[i]);
    }
    lp_parser *p;
    CHECK_INT(lp_parser_new(&p, NULL, NULL), 0);
    int bad = 0;
    CHECK_INT(lp_parse(p, body, len, LP_NS, NOW, on_random_point, on_random_error, &bad), 0);
    CHECK_INT(bad, 0);
    lp_parser_free(p);
}

TEST(test_integer_bounds)
{
    CHECK_STR(one("m a=9223372036854775807i,b=-9223372036854775808i"),
              "m a=9223372036854775807i,b=-9223372036854775808i @now");
    CHECK_STR(one("m a=18446744073709551615u,b=0u,c=-0i,d=000012i"),
              "m a=18446744073709551615u,b=0u,c=0i,d=12i @now");
    CHECK(fails_with("m a=9223372036854775808i", "invalid_field", "number out of range"));
    CHECK(fails_with("m a=-9223372036854775809i", "invalid_field", "number out of range"));
    CHECK(fails_with("m a=18446744073709551616u", "invalid_field", "number out of range"));
    CHECK(fails_with("m a=99999999999999999999999u", "invalid_field", "out of range"));
    CHECK(fails_with("m a=-1u", "invalid_field", "invalid unsigned integer '-1u'"));
    CHECK(fails_with("m a=1.0i", "invalid_field", "invalid integer '1.0i'"));
    CHECK(fails_with("m a=+1i", "invalid_field", "invalid integer"));
    CHECK(fails_with("m a=i", "invalid_field", "invalid integer"));
    CHECK(fails_with("m a=-i", "invalid_field", "invalid integer"));
    CHECK(fails_with("m a=1e3i", "invalid_field", "invalid integer"));
    CHECK(fails_with("m a=u", "invalid_field", "invalid unsigned"));
}

TEST(test_escapes_measurement)
{
    CHECK_STR(one("my\\ meas\\,ure f=1"), "my meas,ure f=1 @now");
    CHECK_STR(one("a\\=b f=1"), "a\\=b f=1 @now");    /* '=' is not escapable here */
    CHECK_STR(one("a\\b f=1"), "a\\b f=1 @now");      /* literal backslash */
    CHECK_STR(one("a\\\\,t=v f=1"), "a\\,t=v f=1 @now"); /* "\\" is no escape: \ then \, */
    CHECK_STR(one("a=b\"c f=1"), "a=b\"c f=1 @now");  /* '=' and '"' are literal */
    CHECK_STR(one("\\ lead f=1"), " lead f=1 @now");
    CHECK_STR(one("trail\\  f=1"), "trail  f=1 @now");
}

TEST(test_escapes_tags_and_keys)
{
    CHECK_STR(one("m,t\\ k\\=x\\,y=v\\ a\\,b\\=c f\\ k\\=\\,=1"),
              "m,t k=x,y=v a,b=c f k=,=1 @now");
    CHECK_STR(one("m,t=a\\b f\\x=1"), "m,t=a\\b f\\x=1 @now");
    CHECK_STR(one("m,t=a\" f\"=\"q\""), "m,t=a\" f\"=\"q\" @now");
    /* "\\" is no escape in a tag: a literal backslash, then an escaped space. */
    CHECK(fails_with("m,t=end\\\\ f=1", "invalid_field", "tag 't': unescaped '=' in value"));
    /* A backslash right before the line end is literal. */
    CHECK(fails_with("m f=1,g\\", "missing_field", "field key 'g\\' has no '='"));
}

TEST(test_string_values)
{
    CHECK_STR(one("m s=\"a b,c=d\",e=\"say \\\"hi\\\"\",p=\"C:\\\\dir\",q=\"a\\b\",z=\"\""),
              "m s=\"a b,c=d\",e=\"say \"hi\"\",p=\"C:\\dir\",q=\"a\\b\",z=\"\" @now");
    CHECK_STR(one("m s=\"x\\\\\" 5"), "m s=\"x\\\" @5");
    CHECK_STR(one("m s=\"tab\there # not a comment\""),
              "m s=\"tab\there # not a comment\" @now");
    CHECK(fails_with("m s=\"abc", "invalid_field", "field 's': unterminated string '\"abc'"));
    CHECK(fails_with("m s=\"abc\\\"", "invalid_field", "unterminated string"));
    CHECK(fails_with("m s=\"a\"b", "invalid_field", "text after string"));
    CHECK(fails_with("m s=\"line\nbreak\"", "invalid_field", "unterminated string") == 0);
    static const char nul_body[] = "m s=\"a\0b\"";
    struct seen s = {0};
    run_with(NULL, &s, nul_body, sizeof nul_body - 1, LP_NS);
    CHECK_INT(s.errors, 1);
    CHECK(strstr(s.text, "NUL byte in string") != NULL);
}

TEST(test_newline_in_string_splits_lines)
{
    struct seen s = {0};
    const char *body = "m s=\"line\nbreak\"";
    run_with(NULL, &s, body, strlen(body), LP_NS);
    CHECK_INT(s.errors, 2);
    CHECK(strstr(s.text, "1! invalid_field [line 1]") != NULL);
    CHECK(strstr(s.text, "2! missing_field [line 2]") != NULL);
}

TEST(test_tags_sorted)
{
    CHECK_STR(one("m,z=1,a=2,m=3 f=1"), "m,a=2,m=3,z=1 f=1 @now");
    CHECK_STR(one("m,a=2,m=3,z=1 f=1"), "m,a=2,m=3,z=1 f=1 @now");
    CHECK_STR(one("m,ab=1,a=2,b=3 f=1"), "m,a=2,ab=1,b=3 f=1 @now");
    CHECK(fails_with("m,a=1,b=2,a=3 f=1", "invalid_field", "duplicate tag key 'a'"));
    /* More than a handful of tags takes the qsort path. */
    char body[512];
    size_t n = (size_t)sprintf(body, "m");
    for (int i = 29; i >= 0; i--)
        n += (size_t)sprintf(body + n, ",k%02d=%d", i, i);
    sprintf(body + n, " f=1");
    const char *got = one(body);
    CHECK(strncmp(got, "m,k00=0,k01=1,k02=2,", 20) == 0);
    CHECK(strstr(got, ",k28=28,k29=29 f=1 @now") != NULL);
    sprintf(body + n, ",k07=x f=1");
    CHECK(fails_with(body, "invalid_field", "duplicate tag key 'k07'"));
}

TEST(test_missing_parts)
{
    CHECK(fails_with("m", "missing_field", "line 1 col 2: missing fields"));
    CHECK(fails_with("m   ", "missing_field", "missing fields"));
    CHECK(fails_with("m,t=1", "missing_field", "missing fields"));
    CHECK(fails_with("m,t=v,f=1", "missing_field", "missing fields"));
    CHECK(fails_with(",t=1 f=1", "missing_field", "col 1: missing measurement"));
    CHECK(fails_with(" f=1", "missing_field", "missing fields"));
    CHECK(fails_with("m,t f=1", "missing_field", "tag key 't' has no '=' and value"));
    CHECK(fails_with("m,t= f=1", "missing_field", "tag 't': empty value"));
    CHECK(fails_with("m,=v f=1", "missing_field", "empty tag key"));
    CHECK(fails_with("m, f=1", "missing_field", "empty tag key"));
    CHECK(fails_with("m f", "missing_field", "field key 'f' has no '=' and value"));
    CHECK(fails_with("m f=", "missing_field", "field 'f': missing value"));
    CHECK(fails_with("m f=,g=1", "missing_field", "field 'f': missing value"));
    CHECK(fails_with("m =1", "missing_field", "empty field key"));
    CHECK(fails_with("m f=1,", "missing_field", "empty field key"));
    CHECK(fails_with("m f=1,,g=2", "missing_field", "empty field key"));
    CHECK(fails_with("m,t=a=b f=1", "invalid_field", "tag 't': unescaped '=' in value"));
}

TEST(test_trailing_garbage)
{
    CHECK(fails_with("m f=1 123 456", "bad_request", "col 11: unexpected text after the timestamp"));
    CHECK(fails_with("m f=1 12a", "invalid_field", "invalid timestamp '12a'"));
    CHECK(fails_with("m f=1 x=2", "invalid_field", "invalid timestamp 'x=2'"));
    CHECK(fails_with("m f=1x", "invalid_field", "invalid number '1x'"));
    CHECK(fails_with("m f=1 +5", "invalid_field", "invalid timestamp"));
    CHECK(fails_with("m f=1 1.5", "invalid_field", "invalid timestamp"));
    CHECK_STR(one("m f=1 5   "), "m f=1 @5");
    CHECK_STR(one("m   f=1    5"), "m f=1 @5");
    CHECK_STR(one("m f=1   "), "m f=1 @now");
    CHECK_STR(one("   m f=1"), "m f=1 @now");
}

TEST(test_timestamps_precision)
{
    CHECK_STR(one_prec("m f=1 1732350000000", LP_MS), "m f=1 @1732350000000000000");
    CHECK_STR(one_prec("m f=1 1732350000", LP_S), "m f=1 @1732350000000000000");
    CHECK_STR(one_prec("m f=1 1732350000000000", LP_US), "m f=1 @1732350000000000000");
    CHECK_STR(one_prec("m f=1 1732350000000000000", LP_NS), "m f=1 @1732350000000000000");
    CHECK_STR(one_prec("m f=1 -5", LP_S), "m f=1 @-5000000000");
    CHECK_STR(one_prec("m f=1 0", LP_MS), "m f=1 @0");
    CHECK_STR(one_prec("m f=1", LP_S), "m f=1 @now");
}

TEST(test_timestamp_overflow)
{
    CHECK_STR(one_prec("m f=1 9223372036", LP_S), "m f=1 @9223372036000000000");
    CHECK_STR(one_prec("m f=1 9223372036854775807", LP_NS), "m f=1 @9223372036854775807");
    CHECK_STR(one_prec("m f=1 -9223372036854775808", LP_NS), "m f=1 @-9223372036854775808");
    CHECK_STR(one_prec("m f=1 -9223372036", LP_S), "m f=1 @-9223372036000000000");
    const char *why = "timestamp out of range";
    CHECK(strstr(one_prec("m f=1 9223372037", LP_S), why) != NULL);
    CHECK(strstr(one_prec("m f=1 -9223372037", LP_S), why) != NULL);
    CHECK(strstr(one_prec("m f=1 9223372036855", LP_MS), why) != NULL);
    CHECK(strstr(one_prec("m f=1 9223372036854776", LP_US), why) != NULL);
    CHECK(strstr(one_prec("m f=1 9223372036854775808", LP_NS), why) != NULL);
    CHECK(strstr(one_prec("m f=1 -9223372036854775809", LP_NS), why) != NULL);
    CHECK(strstr(one_prec("m f=1 99999999999999999999999", LP_NS), why) != NULL);
}

TEST(test_precision_parse)
{
    enum lp_precision p = LP_S;
    cb_error err;
    CHECK_INT(lp_precision_parse(NULL, &p, &err), 0);
    CHECK_INT(p, LP_NS);
    p = LP_S;
    CHECK_INT(lp_precision_parse("", &p, &err), 0);
    CHECK_INT(p, LP_NS);
    CHECK_INT(lp_precision_parse("ns", &p, &err), 0);
    CHECK_INT(p, LP_NS);
    CHECK_INT(lp_precision_parse("us", &p, &err), 0);
    CHECK_INT(p, LP_US);
    CHECK_INT(lp_precision_parse("ms", &p, &err), 0);
    CHECK_INT(p, LP_MS);
    CHECK_INT(lp_precision_parse("s", &p, &err), 0);
    CHECK_INT(p, LP_S);
    const char *bad[] = {"n", "h", "MS", "ns ", "m"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cb_error_clear(&err);
        CHECK_INT(lp_precision_parse(bad[i], &p, &err), CB_EINVALID_FIELD);
        CHECK_STR(err.field, "precision");
    }
    CHECK_INT(lp_precision_parse("x", &p, NULL), CB_EINVALID_FIELD);
}

TEST(test_crlf_comments_blank)
{
    const char *body = "# comment\r\n\r\nm f=1\r\n  # indented comment\n\nm f=2 5\r\n   \r\n"
                       "m f=3\r\r\n#last";
    struct seen s = {0};
    CHECK_INT(run_with(NULL, &s, body, strlen(body), LP_NS), 0);
    CHECK_INT(s.points, 2);
    CHECK_INT(s.errors, 1);
    CHECK(strstr(s.text, "3: m f=1 @now\n6: m f=2 @5\n8! invalid_field [line 8]") != NULL);
    CHECK(strstr(s.text, "invalid number '3?'") != NULL);
    CHECK_STR(one("m f=1\r"), "m f=1 @now");
    CHECK_STR(one("m f=\"a\"\r\n"), "m f=\"a\" @now");
}

TEST(test_error_position_and_continue)
{
    const char *body = "m f=1\nm f=2\nm,t=a temp=1.2.3\nm f=4\nbad\nm f=6 6";
    struct seen s = {0};
    CHECK_INT(run_with(NULL, &s, body, strlen(body), LP_NS), 0);
    CHECK_STR(s.text, "1: m f=1 @now\n"
                      "2: m f=2 @now\n"
                      "3! invalid_field [line 3] line 3 col 12: field 'temp': invalid number '1.2.3'\n"
                      "4: m f=4 @now\n"
                      "5! missing_field [line 5] line 5 col 4: missing fields\n"
                      "6: m f=6 @6");
    CHECK_INT(s.points, 4);
    CHECK_INT(s.errors, 2);
}

TEST(test_callback_abort)
{
    const char *body = "m f=1\nm f=2\nbad\nm f=4\n";
    struct seen s = {0};
    s.stop_at_point = 2;
    s.stop_code = -42;
    CHECK_INT(run_with(NULL, &s, body, strlen(body), LP_NS), -42);
    CHECK_INT(s.points, 2);
    CHECK_INT(s.errors, 0);

    struct seen e = {0};
    e.error_code_stop = CB_EBAD_REQUEST;
    CHECK_INT(run_with(NULL, &e, body, strlen(body), LP_NS), CB_EBAD_REQUEST);
    CHECK_INT(e.points, 2);
    CHECK_INT(e.errors, 1);
}

TEST(test_duplicate_fields_last_wins)
{
    CHECK_STR(one("m a=1,b=2,a=3i"), "m a=3i,b=2 @now");
    CHECK_STR(one("m a=1,a=\"x\",a=t"), "m a=true @now");
    /* Many fields use the hash set. */
    char body[1024];
    size_t n = (size_t)sprintf(body, "m ");
    for (int i = 0; i < 30; i++)
        n += (size_t)sprintf(body + n, "%sk%d=%di", i ? "," : "", i % 10, i);
    CHECK_STR(one(body), "m k0=20i,k1=21i,k2=22i,k3=23i,k4=24i,k5=25i,k6=26i,k7=27i,k8=28i,"
                         "k9=29i @now");
}

static struct lp_limits small_limits = {.max_line = 32, .max_tags = 2, .max_fields = 3};

TEST(test_limits)
{
    struct seen s = {0};
    /* exactly 32 bytes before the newline, then 33 */
    const char *body = "m f=1,g=2,h=3 123456789012345678\n"
                       "m f=1,g=2,h=3 1234567890123456789\n"
                       "m f=1,g=2,h=3,i=4\n"
                       "m,a=1,b=2,c=3 f=1\n"
                       "m,a=1,b=2 f=1\n";
    CHECK_INT(run_with(&small_limits, &s, body, strlen(body), LP_NS), 0);
    CHECK_INT(s.points, 2);
    CHECK_INT(s.errors, 3);
    CHECK(strstr(s.text, "2! payload_too_large [line 2] line 2 col 1: line longer than 32 bytes"));
    CHECK(strstr(s.text, "3! payload_too_large [line 3] line 3 col 15: more than 3 fields"));
    CHECK(strstr(s.text, "4! payload_too_large [line 4] line 4 col 11: more than 2 tags"));
    CHECK(strstr(s.text, "5: m,a=1,b=2 f=1 @now"));

    lp_parser *p = (lp_parser *)1;
    cb_error err;
    struct lp_limits huge = {.max_line = (size_t)LP_LIMIT_CAP + 1};
    CHECK_INT(lp_parser_new(&p, &huge, &err), CB_ECONFIG);
    CHECK(p == NULL);
}

TEST(test_default_field_limit)
{
    static char body[16384];
    size_t n = (size_t)sprintf(body, "m ");
    for (int i = 0; i < LP_DEFAULT_MAX_FIELDS; i++)
        n += (size_t)sprintf(body + n, "%sf%d=%d", i ? "," : "", i, i);
    struct seen s = {0};
    CHECK_INT(run_with(NULL, &s, body, n, LP_NS), 0);
    CHECK_INT(s.points, 1);
    n += (size_t)sprintf(body + n, ",one_more=1");
    memset(&s, 0, sizeof s);
    CHECK_INT(run_with(NULL, &s, body, n, LP_NS), 0);
    CHECK_INT(s.errors, 1);
    CHECK(strstr(s.text, "more than 1000 fields") != NULL);
}

TEST(test_control_bytes)
{
    CHECK(fails_with("m\tx f=1", "bad_request", "col 2: control byte 0x09 in measurement"));
    CHECK(fails_with("m,t=a\x01 f=1", "bad_request", "control byte 0x01 in tag value"));
    CHECK(fails_with("m,\x7f=a f=1", "bad_request", "control byte 0x7f in tag key"));
    CHECK(fails_with("m f\x1b=1", "bad_request", "in field key"));
    CHECK(fails_with("m f=1\t", "invalid_field", "invalid number '1?'"));
    static const char nul_name[] = "m\0 f=1";
    struct seen s = {0};
    run_with(NULL, &s, nul_name, sizeof nul_name - 1, LP_NS);
    CHECK_INT(s.errors, 1);
    CHECK(strstr(s.text, "control byte 0x00") != NULL);
}

/* Names are scanned sixteen bytes at a time: every special byte at every
 * position of a 40-byte tag value and measurement must still be seen. */
TEST(test_long_names_every_position)
{
    static const struct {
        const char *in, *out; /* out NULL: a bad line whose message has err */
        const char *err;
    } cases[] = {
        {"\\,", ",", NULL},       {"\\ ", " ", NULL},      {"\\=", "=", NULL},
        {"\\x", "\\x", NULL},     {"\xc3\xa9", "\xc3\xa9", NULL}, {"\"", "\"", NULL},
        {"\x01", NULL, "control byte 0x01 in tag value"}, {"\x7f", NULL, "control byte 0x7f in tag value"},
        {"\x1f", NULL, "control byte 0x1f in tag value"}, {"=", NULL, "unescaped '=' in value"},
    };
    char body[256], want[256], a[41];
    for (int i = 0; i < 40; i++)
        a[i] = (char)('a' + i % 26);
    a[40] = '\0';
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        for (int k = 0; k <= 40; k++) {
            snprintf(body, sizeof body, "m,t=%.*s%s%s f=1", k, a, cases[c].in, a + k);
            if (cases[c].out) {
                snprintf(want, sizeof want, "m,t=%.*s%s%s f=1 @now", k, a, cases[c].out, a + k);
                CHECK_STR(one(body), want);
            } else if (k > 0 || cases[c].in[0] != '=') { /* "t==..." is an empty value */
                CHECK(fails_with(body, "", cases[c].err));
            }
        }
    }
    for (int k = 0; k <= 40; k++) { /* the measurement: its own stops */
        snprintf(body, sizeof body, "%.*s\\ %s,t=v f=1", k, a, a + k);
        snprintf(want, sizeof want, "%.*s %s,t=v f=1 @now", k, a, a + k);
        CHECK_STR(one(body), want);
        snprintf(body, sizeof body, "%.*s=%s f=1", k, a, a + k); /* '=' is plain in a measurement */
        snprintf(want, sizeof want, "%.*s=%s f=1 @now", k, a, a + k);
        CHECK_STR(one(body), want);
    }
}

static int check_zero_copy(void *arg, size_t line_no, const struct lp_point *pt)
{
    const char *body = arg;
    size_t len = strlen(body);
    int in_body = pt->measurement.ptr >= body && pt->measurement.ptr < body + len;
    CHECK_INT(in_body, line_no == 1); /* line 2 has an escape */
    CHECK(pt->fields[0].key.ptr >= body && pt->fields[0].key.ptr < body + len);
    return 0;
}

static int fail_on_error(void *arg, size_t line_no, const cb_error *e)
{
    (void)arg;
    fprintf(stderr, "    unexpected error on line %zu: %s\n", line_no, e->message);
    test_failed_checks_++;
    return 0;
}

TEST(test_zero_copy)
{
    const char *body = "plain f=1\nesc\\ aped f=2";
    lp_parser *p;
    CHECK_INT(lp_parser_new(&p, NULL, NULL), 0);
    CHECK_INT(lp_parse(p, body, strlen(body), LP_NS, NOW, check_zero_copy, fail_on_error,
                       (void *)body), 0);
    /* the parser is reusable */
    CHECK_INT(lp_parse(p, body, strlen(body), LP_NS, NOW, check_zero_copy, fail_on_error,
                       (void *)body), 0);
    lp_parser_free(p);
    lp_parser_free(NULL);
}

TEST(test_empty_bodies)
{
    struct seen s = {0};
    CHECK_INT(run_with(NULL, &s, NULL, 0, LP_NS), 0);
    CHECK_INT(run_with(NULL, &s, "\n\n\r\n", 4, LP_NS), 0);
    CHECK_INT(run_with(NULL, &s, "#\n#", 3, LP_NS), 0);
    CHECK_INT(s.points + s.errors, 0);
    /* line numbers count every \n, blank or not */
    CHECK_INT(run_with(NULL, &s, "\n\n\nm f=1", 8, LP_NS), 0);
    CHECK_STR(s.text, "4: m f=1 @now");
}

TEST(test_messages_are_printable)
{
    CHECK(fails_with("m f\xc3\xa9=1\xff", "invalid_field", "field 'f?" "?': invalid number '1?'"));
    CHECK(fails_with("m f=123456789012345678901234567890123456789x", "invalid_field",
                     "invalid number '12345678901234567890123456789012...'"));
    /* but names pass non-ASCII bytes through */
    CHECK_STR(one("caf\xc3\xa9,lieu=f\xc3\xaate f=1"), "caf\xc3\xa9,lieu=f\xc3\xaate f=1 @now");
}

TEST(test_float_ignores_locale)
{
    const char *locales[] = {"de_DE.UTF-8", "de_DE", "fr_FR.UTF-8", "C.UTF-8"};
    for (size_t i = 0; i < sizeof locales / sizeof locales[0]; i++)
        if (setlocale(LC_NUMERIC, locales[i]))
            break;
    CHECK_STR(one("m a=1.5,b=1.5e300,c=0.1234567890123456789012"),
              "m a=1.5,b=1.5000000000000001e+300,c=0.12345678901234568 @now");
    setlocale(LC_NUMERIC, "C");
}

TEST(test_telegraf_like)
{
    const char *body =
        "AirQualityObserved,id=urn:aq:0001 pm25=35.2,pm10=61,no2=20.5 1732350000000\n"
        "cpu,cpu=cpu-total,host=gw-01 usage_idle=98.5,usage_user=1.2 1732350000000\n"
        "weather,station=ws\\ 12 temp=-3.25,desc=\"light snow, windy\",ok=true 1732350000000\n";
    struct seen s = {0};
    CHECK_INT(run_with(NULL, &s, body, strlen(body), LP_MS), 0);
    CHECK_STR(s.text,
              "1: AirQualityObserved,id=urn:aq:0001 pm25=35.200000000000003,pm10=61,no2=20.5 "
              "@1732350000000000000\n"
              "2: cpu,cpu=cpu-total,host=gw-01 usage_idle=98.5,usage_user=1.2 "
              "@1732350000000000000\n"
              "3: weather,station=ws 12 temp=-3.25,desc=\"light snow, windy\",ok=true "
              "@1732350000000000000");
}

/* The readings ingest counts: a good line's fields, a bad line one. */
static int count_fields(void *arg, size_t line_no, const struct lp_point *pt)
{
    (void)line_no;
    *(size_t *)arg += pt->nfields;
    return 0;
}

static int count_bad(void *arg, size_t line_no, const cb_error *e)
{
    (void)line_no;
    (void)e;
    *(size_t *)arg += 1;
    return 0;
}

static uint64_t next_rand(uint64_t *s) /* xorshift64*: a failure reproduces */
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * UINT64_C(2685821657736338717);
}

static size_t readings_of(lp_parser *p, const char *body, size_t len)
{
    size_t n = 0;
    lp_parse(p, body, len, LP_NS, NOW, count_fields, count_bad, &n);
    return n;
}

TEST(test_readings_at_most)
{
    /* '=' and newlines, counted 16 bytes at a time and in the tail, plus the last line */
    CHECK_INT(lp_readings_at_most("", 0), 1);
    CHECK_INT(lp_readings_at_most("m a=1", 5), 2);
    const char *two = "m,id=x a=1,b=2 1\nm,id=y c=3\n"; /* 3 + 2 '=', 2 newlines, 1 */
    CHECK_INT(lp_readings_at_most(two, strlen(two)), 8);
    lp_parser *p;
    CHECK_INT(lp_parser_new(&p, NULL, NULL), 0);
    /* a bound for any body, at every length around the 16-byte blocks and the 255-block sums */
    static char body[16 * 255 * 2 + 40];
    static const char alphabet[] = "m,=a 1\n\\\"x=";
    uint64_t seed = 7;
    int bad = 0;
    for (int round = 0; round < 300; round++) {
        size_t len = round < 100 ? (size_t)round : (size_t)(next_rand(&seed) % sizeof body);
        for (size_t i = 0; i < len; i++)
            body[i] = alphabet[next_rand(&seed) % (sizeof alphabet - 1)];
        size_t eq = 1;
        for (size_t i = 0; i < len; i++)
            eq += body[i] == '=' || body[i] == '\n';
        bad += lp_readings_at_most(body, len) != eq || readings_of(p, body, len) > eq;
    }
    CHECK_INT(bad, 0);
    /* the common body: one field a line, so about two lines' worth of '=' and '\n' */
    char lines[4096];
    size_t len = 0;
    for (int i = 0; i < 40; i++)
        len += (size_t)snprintf(lines + len, sizeof lines - len, "AirQualityObserved,id=aq-%d pm25=%d.5 %d\n", i, i, i);
    CHECK_INT(readings_of(p, lines, len), 40);
    CHECK_INT(lp_readings_at_most(lines, len), 121);
    lp_parser_free(p);
}

TEST_MAIN(test_value_types, test_booleans, test_float_forms, test_float_exact_vs_strtod,
          test_integer_bounds, test_escapes_measurement, test_escapes_tags_and_keys,
          test_string_values, test_newline_in_string_splits_lines, test_tags_sorted,
          test_missing_parts, test_trailing_garbage, test_timestamps_precision,
          test_timestamp_overflow, test_precision_parse, test_crlf_comments_blank,
          test_error_position_and_continue, test_callback_abort, test_duplicate_fields_last_wins,
          test_limits, test_default_field_limit, test_control_bytes, test_long_names_every_position, test_zero_copy,
          test_empty_bodies, test_messages_are_printable, test_float_ignores_locale,
          test_telegraf_like, test_readings_at_most)
