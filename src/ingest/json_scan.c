/* json_scan — a strict, zero-copy JSON reader; json_scan.h has the grammar
 * and the rules for walking a document.
 *
 * The hot paths: strings are skipped eight bytes at a time while no byte
 * needs a look (a quote, a backslash, a control byte or non-ASCII), and
 * numbers are converted exactly without strtod when Clinger's fast path
 * applies. Everything else is one byte at a time. */
#include "ingest/json_scan.h"

#include <assert.h>
#include <float.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#if defined(FLT_EVAL_METHOD) && FLT_EVAL_METHOD == 0
#define FAST_FLOAT 1
#else
#define FAST_FLOAT 0 /* x87 excess precision would double-round */
#endif

#define SHORT_NUMBER 64 /* a number ending the text is copied for strtod up to this long */

static const double pow10_exact[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                       1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                       1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* strtod_l's C locale, so the process locale never matters: made once and
 * never changed or freed, a constant of the process rather than state. */
static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;
static locale_t c_locale;

static void c_locale_make(void)
{
    c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
}

static int fail(json_scan *s, const void *at, const char *msg)
{
    if (!s->error) {
        s->error = CB_EINVALID_JSON;
        s->error_at = at;
        s->error_msg = msg;
    }
    return s->error;
}

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    return p;
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

void json_scan_init(json_scan *s, const char *text, size_t len)
{
    s->text = s->pos = text;
    s->end = text + len;
    s->depth = 0;
    s->fresh = 0;
    s->members = 0;
    s->error = 0;
    s->error_at = NULL;
    s->error_msg = NULL;
}

/* ---- containers ---- */

static void open_container(json_scan *s, int object)
{
    unsigned d = s->depth++;
    unsigned char bit = (unsigned char)(1u << (d & 7));
    if (object)
        s->objects[d >> 3] |= bit;
    else
        s->objects[d >> 3] &= (unsigned char)~bit;
    s->fresh = 1;
}

static int innermost_is_object(const json_scan *s)
{
    unsigned d = s->depth - 1;
    return s->objects[d >> 3] >> (d & 7) & 1;
}

static void close_container(json_scan *s, const char *p)
{
    s->pos = p + 1;
    s->depth--;
    s->fresh = 0;
}

/* ---- strings ---- */

/* Bytes a string holds as they are: printable ASCII but '"' and '\'. */
static const unsigned char plain[256] = {[0x20 ... 0x21] = 1, [0x23 ... 0x5b] = 1, [0x5d ... 0x7f] = 1};

#define ONES UINT64_C(0x0101010101010101)
#define HIGHS UINT64_C(0x8080808080808080)

/* Non-zero when one of the eight bytes in w is not plain (may say so of a
 * plain byte after one that is not: the byte loop then decides). */
static uint64_t needs_look(uint64_t w)
{
    uint64_t quote = w ^ (ONES * '"'), bslash = w ^ (ONES * '\\');
    uint64_t ctrl = (w - ONES * 0x20) & ~w;
    uint64_t q = (quote - ONES) & ~quote, b = (bslash - ONES) & ~bslash;
    return (ctrl | q | b | w) & HIGHS;
}

static int hex_digit(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Four hex digits at p, or -1. */
static long hex4(const unsigned char *p, const unsigned char *end)
{
    long v = 0;
    if (end - p < 4)
        return -1;
    for (int i = 0; i < 4; i++) {
        int d = hex_digit(p[i]);
        if (d < 0)
            return -1;
        v = v << 4 | d;
    }
    return v;
}

static size_t utf8_len(long cp)
{
    return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
}

static size_t utf8_put(long cp, char *out)
{
    size_t n = utf8_len(cp);
    static const unsigned char lead[5] = {0, 0, 0xC0, 0xE0, 0xF0};
    for (size_t i = n - 1; i > 0; i--) {
        out[i] = (char)(0x80 | (cp & 0x3F));
        cp >>= 6;
    }
    out[0] = (char)(n == 1 ? cp : (lead[n] | cp));
    return n;
}

/* Length of the valid UTF-8 sequence of two to four bytes at p, or 0. */
static size_t utf8_seq(const unsigned char *p, const unsigned char *end)
{
    unsigned c = p[0], lo = 0x80, hi = 0xBF;
    size_t n;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        lo = c == 0xE0 ? 0xA0 : lo; /* overlong */
        hi = c == 0xED ? 0x9F : hi; /* surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        lo = c == 0xF0 ? 0x90 : lo; /* overlong */
        hi = c == 0xF4 ? 0x8F : hi; /* above U+10FFFF */
    } else {
        return 0;
    }
    if ((size_t)(end - p) < n || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if ((p[i] & 0xC0) != 0x80)
            return 0;
    return n;
}

/* Checks the escape at *pp (a backslash) and moves past it; *shrink grows by
 * the bytes decoding saves. */
static int read_escape(json_scan *s, const unsigned char **pp, const unsigned char *end, size_t *shrink)
{
    const unsigned char *p = *pp;
    if (end - p < 2)
        return fail(s, end, "unterminated string");
    switch (p[1]) {
    case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
        *pp = p + 2;
        *shrink += 1;
        return 0;
    case 'u':
        break;
    default:
        return fail(s, p, "invalid escape");
    }
    long cp = hex4(p + 2, end);
    size_t used = 6;
    if (cp < 0)
        return fail(s, p, "invalid \\u escape: four hex digits expected");
    if (cp == 0)
        return fail(s, p, "\\u0000 is not allowed");
    if (cp >= 0xDC00 && cp <= 0xDFFF)
        return fail(s, p, "invalid \\u escape: a low surrogate without its high half");
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        long low = end - p >= 12 && p[6] == '\\' && p[7] == 'u' ? hex4(p + 8, end) : -1;
        if (low < 0xDC00 || low > 0xDFFF)
            return fail(s, p, "invalid \\u escape: a high surrogate without its low half");
        cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
        used = 12;
    }
    *shrink += used - utf8_len(cp);
    *pp = p + used;
    return 0;
}

/* The string whose opening quote is at s->pos. */
static int read_string(json_scan *s, struct json_scan_str *out)
{
    const unsigned char *p = (const unsigned char *)s->pos + 1, *end = (const unsigned char *)s->end;
    size_t shrink = 0;
    out->ptr = (const char *)p;
    out->escaped = 0;
    for (;;) {
        uint64_t w;
        while (end - p >= 8 && (memcpy(&w, p, 8), !needs_look(w)))
            p += 8;
        while (p < end && plain[*p])
            p++;
        if (p == end)
            return fail(s, p, "unterminated string");
        if (*p == '"')
            break;
        if (*p == '\\') {
            out->escaped = 1;
            if (read_escape(s, &p, end, &shrink) != 0)
                return s->error;
        } else if (*p < 0x20) {
            return fail(s, p, *p == '\n' ? "newline in a string" : "control byte in a string");
        } else {
            size_t n = utf8_seq(p, end);
            if (n == 0)
                return fail(s, p, "invalid UTF-8");
            p += n;
        }
    }
    out->len = (size_t)((const char *)p - out->ptr);
    out->dlen = out->len - shrink;
    s->pos = (const char *)p + 1;
    return 0;
}

/* ---- numbers ---- */

/* The digits of a number: value = w * 10^e10 when exact. */
struct decimal {
    uint64_t w;    /* first 19 significant digits */
    int nsig;      /* significant digits in w */
    int exact;     /* 0: more digits than w holds, or a huge exponent */
    long e10;
    size_t ndig;   /* digits before the point */
};

static const char *scan_digits(const char *p, const char *end, struct decimal *d, int after_point)
{
    for (; p < end && is_digit(*p); p++) {
        if (!after_point)
            d->ndig++;
        if (d->w == 0 && *p == '0') {
            d->e10 -= after_point; /* leading zeros only move the point */
        } else if (d->nsig < 19) {
            d->w = d->w * 10 + (uint64_t)(*p - '0');
            d->nsig++;
            d->e10 -= after_point;
        } else {
            d->exact = 0; /* strtod takes the whole text */
        }
    }
    return p;
}

static int integer_value(json_scan *s, const char *start, int neg, const struct decimal *d, int64_t *out)
{
    uint64_t max = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    if (d->ndig > 19 || d->w > max)
        return fail(s, start, neg ? "integer out of range (below -2^63)" : "integer out of range (above 2^63 - 1)");
    *out = neg ? (int64_t)(0 - d->w) : (int64_t)d->w; /* -(2^63) has no positive int64 */
    return 0;
}

/* strtod_l on the number text[0..n): in place when a byte follows it (strtod
 * stops there), else on a copy. */
static int strtod_value(json_scan *s, const char *text, size_t n, double *out)
{
    char small[SHORT_NUMBER], *copy = NULL, *endp;
    const char *arg = text;
    if (text + n == s->end) {
        copy = n < sizeof small ? small : malloc(n + 1);
        if (!copy) {
            fail(s, text, "out of memory");
            s->error = CB_ENOMEM;
            return s->error;
        }
        memcpy(copy, text, n);
        copy[n] = '\0';
        arg = copy;
    }
    pthread_once(&c_locale_once, c_locale_make);
    /* Without a C locale object (out of memory at first use) the process
     * locale is used; citybrain never sets one, so it is "C" too. */
    *out = c_locale ? strtod_l(arg, &endp, c_locale) : strtod(arg, &endp);
    assert(endp == arg + n);
    if (copy != small)
        free(copy);
    return 0;
}

static int real_value(json_scan *s, const char *start, const char *p, int neg, const struct decimal *d, double *out)
{
    if (d->exact && d->w == 0) {
        *out = neg ? -0.0 : 0.0;
        return 0;
    }
    if (FAST_FLOAT && d->exact && d->w <= (UINT64_C(1) << 53) && d->e10 >= -22 && d->e10 <= 22) {
        double v = (double)d->w;
        v = d->e10 < 0 ? v / pow10_exact[-d->e10] : v * pow10_exact[d->e10];
        *out = neg ? -v : v;
        return 0;
    }
    if (strtod_value(s, start, (size_t)(p - start), out) != 0)
        return s->error;
    return isfinite(*out) ? 0 : fail(s, start, "number out of range");
}

/* The number starting at s->pos. */
static int read_number(json_scan *s, struct json_scan_value *v)
{
    const char *start = s->pos, *p = start, *end = s->end;
    struct decimal d = {0, 0, 1, 0, 0};
    int neg = *p == '-', real = 0;
    p += neg;
    if (p == end || !is_digit(*p))
        return fail(s, p, "invalid number: a digit expected");
    if (*p == '0' && p + 1 < end && is_digit(p[1]))
        return fail(s, p + 1, "invalid number: a leading zero");
    p = scan_digits(p, end, &d, 0);
    if (p < end && *p == '.') {
        const char *frac = ++p;
        real = 1;
        p = scan_digits(p, end, &d, 1);
        if (p == frac)
            return fail(s, p, "invalid number: a digit expected after '.'");
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        long exp = 0;
        int eneg = 0;
        real = 1;
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            eneg = *p++ == '-';
        if (p == end || !is_digit(*p))
            return fail(s, p, "invalid number: a digit expected in the exponent");
        for (; p < end && is_digit(*p); p++) {
            if (exp < 100000)
                exp = exp * 10 + (*p - '0');
            else
                d.exact = 0; /* strtod knows what a huge exponent means */
        }
        d.e10 += eneg ? -exp : exp;
    }
    s->pos = p;
    if (!real) {
        v->type = JSON_SCAN_INTEGER;
        return integer_value(s, start, neg, &d, &v->u.integer);
    }
    v->type = JSON_SCAN_REAL;
    return real_value(s, start, p, neg, &d, &v->u.real);
}

/* ---- values ---- */

static int literal(json_scan *s, struct json_scan_value *v, const char *word, size_t n, enum json_scan_type type)
{
    if ((size_t)(s->end - s->pos) < n || memcmp(s->pos, word, n) != 0)
        return fail(s, s->pos, "invalid literal: true, false or null expected");
    v->type = type;
    s->pos += n;
    return 0;
}

static int read_value(json_scan *s, struct json_scan_value *v)
{
    const char *p = skip_ws(s->pos, s->end);
    s->pos = p;
    if (p == s->end)
        return fail(s, p, "unexpected end of input: a value expected");
    if (s->depth >= JSON_SCAN_MAX_DEPTH)
        return fail(s, p, "nested too deep (at most 2048 values)");
    v->at = p;
    s->fresh = 0;
    switch (*p) {
    case '{':
    case '[':
        v->type = *p == '{' ? JSON_SCAN_OBJECT : JSON_SCAN_ARRAY;
        s->pos = p + 1;
        open_container(s, *p == '{');
        return 0;
    case '"':
        v->type = JSON_SCAN_STRING;
        return read_string(s, &v->u.str);
    case 't':
        return literal(s, v, "true", 4, JSON_SCAN_TRUE);
    case 'f':
        return literal(s, v, "false", 5, JSON_SCAN_FALSE);
    case 'n':
        return literal(s, v, "null", 4, JSON_SCAN_NULL);
    default:
        if (*p == '-' || is_digit(*p))
            return read_number(s, v);
        return fail(s, p, "invalid token: a value expected");
    }
}

int json_scan_value(json_scan *s, struct json_scan_value *v)
{
    return s->error ? s->error : read_value(s, v);
}

int json_scan_member(json_scan *s, struct json_scan_str *key, struct json_scan_value *v)
{
    if (s->error)
        return s->error;
    assert(s->depth > 0 && innermost_is_object(s));
    const char *p = skip_ws(s->pos, s->end);
    if (p < s->end && *p == '}') {
        close_container(s, p);
        return 0;
    }
    if (!s->fresh) {
        if (p == s->end || *p != ',')
            return fail(s, p, "',' or '}' expected");
        p = skip_ws(p + 1, s->end);
    }
    if (p == s->end || *p != '"')
        return fail(s, p, s->fresh ? "a string key or '}' expected" : "a string key expected");
    s->pos = p;
    if (read_string(s, key) != 0)
        return s->error;
    p = skip_ws(s->pos, s->end);
    if (p == s->end || *p != ':')
        return fail(s, p, "':' expected");
    s->pos = p + 1;
    s->members++;
    return read_value(s, v) == 0 ? 1 : s->error;
}

int json_scan_element(json_scan *s, struct json_scan_value *v)
{
    if (s->error)
        return s->error;
    assert(s->depth > 0 && !innermost_is_object(s));
    const char *p = skip_ws(s->pos, s->end);
    if (p < s->end && *p == ']') {
        close_container(s, p);
        return 0;
    }
    if (!s->fresh) {
        if (p == s->end || *p != ',')
            return fail(s, p, "',' or ']' expected");
        p++;
    }
    s->pos = p;
    return read_value(s, v) == 0 ? 1 : s->error;
}

int json_scan_skip(json_scan *s, const struct json_scan_value *v)
{
    if (s->error || (v->type != JSON_SCAN_OBJECT && v->type != JSON_SCAN_ARRAY))
        return s->error;
    assert(s->depth > 0);
    unsigned outside = s->depth - 1;
    while (s->depth > outside) {
        struct json_scan_str key;
        struct json_scan_value inner;
        int rc = innermost_is_object(s) ? json_scan_member(s, &key, &inner) : json_scan_element(s, &inner);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int json_scan_finish(json_scan *s)
{
    if (s->error)
        return s->error;
    assert(s->depth == 0);
    const char *p = skip_ws(s->pos, s->end);
    return p == s->end ? 0 : fail(s, p, "end of input expected after the value");
}

int json_scan_fail(json_scan *s, const char *at, const char *msg)
{
    assert(at >= s->text && at <= s->end);
    return fail(s, at, msg);
}

int json_scan_error(const json_scan *s, const char *field, cb_error *err)
{
    assert(s->error && s->error_at);
    size_t line = 1, column = 1;
    for (const char *p = s->text; p < s->error_at; p++) {
        if (*p == '\n')
            line++, column = 1;
        else if (((unsigned char)*p & 0xC0) != 0x80) /* count characters, not bytes */
            column++;
    }
    return cb_error_set(err, s->error, field, "line %zu, column %zu: %s", line, column, s->error_msg);
}

/* ---- decoding (of strings read_string accepted) ---- */

/* Decodes the escape at p into out (1-4 bytes, *n of them); returns its length
 * in the text. */
static size_t decode_escape(const char *p, char out[4], size_t *n)
{
    static const char simple[128] = {['"'] = '"', ['\\'] = '\\', ['/'] = '/', ['b'] = '\b',
                                     ['f'] = '\f', ['n'] = '\n', ['r'] = '\r', ['t'] = '\t'};
    const unsigned char *u = (const unsigned char *)p;
    if (p[1] != 'u') {
        out[0] = simple[u[1] & 0x7F];
        *n = 1;
        return 2;
    }
    long cp = hex4(u + 2, u + 6);
    size_t used = 6;
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        cp = 0x10000 + ((cp - 0xD800) << 10) + (hex4(u + 8, u + 12) - 0xDC00);
        used = 12;
    }
    *n = utf8_put(cp, out);
    return used;
}

size_t json_scan_copy(const struct json_scan_str *str, char *buf, size_t cap)
{
    if (cap == 0)
        return str->dlen;
    const char *p = str->ptr, *end = str->ptr + str->len;
    size_t o = 0, room = cap - 1;
    while (p < end && o < room) {
        const char *bs = str->escaped ? memchr(p, '\\', (size_t)(end - p)) : NULL;
        size_t run = (size_t)((bs ? bs : end) - p);
        run = run < room - o ? run : room - o;
        memcpy(buf + o, p, run);
        o += run;
        p += run;
        if (!bs || p != bs || o == room)
            continue;
        char unit[4];
        size_t n;
        p += decode_escape(p, unit, &n);
        n = n < room - o ? n : room - o;
        memcpy(buf + o, unit, n);
        o += n;
    }
    buf[o] = '\0';
    return str->dlen;
}

/* Decoded bytes of a string, one at a time. */
struct decoder {
    const char *p, *end;
    int escaped;
    char unit[4];
    size_t n, i;
};

static int decoder_next(struct decoder *d)
{
    if (d->i == d->n) {
        if (d->p == d->end)
            return -1;
        if (d->escaped && *d->p == '\\') {
            d->p += decode_escape(d->p, d->unit, &d->n);
        } else {
            d->unit[0] = *d->p++;
            d->n = 1;
        }
        d->i = 0;
    }
    return (unsigned char)d->unit[d->i++];
}

int json_scan_str_eq(const struct json_scan_str *a, const struct json_scan_str *b)
{
    if (a->dlen != b->dlen)
        return 0;
    if (!a->escaped && !b->escaped)
        return memcmp(a->ptr, b->ptr, a->len) == 0;
    struct decoder da = {a->ptr, a->ptr + a->len, a->escaped, {0}, 0, 0};
    struct decoder db = {b->ptr, b->ptr + b->len, b->escaped, {0}, 0, 0};
    int ca;
    while ((ca = decoder_next(&da)) >= 0)
        if (ca != decoder_next(&db))
            return 0;
    return 1;
}

int json_scan_str_is(const struct json_scan_str *a, const char *lit)
{
    size_t n = strlen(lit);
    struct json_scan_str b = {lit, n, n, 0};
    return json_scan_str_eq(a, &b);
}
