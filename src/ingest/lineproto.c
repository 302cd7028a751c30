/* lineproto — InfluxDB line protocol parser; lineproto.h has the syntax it
 * accepts and who owns what it reports.
 *
 * The hot path skips the plain bytes of a name sixteen at a time (SSE2, where
 * the compiler has it; else one byte-class table lookup per byte) and makes a decimal-to-double
 * conversion that is exact without strtod when Clinger's fast path applies (at
 * most 19 significant digits, mantissa <= 2^53, power of ten within +-22: one
 * correctly rounded IEEE multiply or divide of two exact values). Everything
 * else goes to strtod_l in the C locale, so the process locale never matters. */
#include "ingest/lineproto.h"

#include <assert.h>
#include <float.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* Byte classes; a scan stops at any byte whose class meets its mask. */
enum {
    C_COMMA = 1,
    C_SPACE = 2,
    C_EQ = 4,
    C_BSLASH = 8,
    C_CTRL = 16,
    C_QUOTE = 32,
    C_NUL = 64,
};

#define C_CTRL4(b) [b] = C_CTRL, [b + 1] = C_CTRL, [b + 2] = C_CTRL, [b + 3] = C_CTRL
static const unsigned char lp_class[256] = {
    [0] = C_CTRL | C_NUL, [1] = C_CTRL, [2] = C_CTRL, [3] = C_CTRL,
    C_CTRL4(4), C_CTRL4(8), C_CTRL4(12), C_CTRL4(16), C_CTRL4(20), C_CTRL4(24), C_CTRL4(28),
    [127] = C_CTRL, [','] = C_COMMA, [' '] = C_SPACE, ['='] = C_EQ, ['\\'] = C_BSLASH,
    ['"'] = C_QUOTE,
};
#undef C_CTRL4

#define CLASS(c) lp_class[(unsigned char)(c)]

/* Terminators of each kind of name; a backslash escapes exactly these. */
#define STOP_MEASUREMENT (C_COMMA | C_SPACE)
#define STOP_KEY (C_COMMA | C_SPACE | C_EQ)

/* Up to this many fields, duplicates are found by comparing every pair, and
 * up to this many tags are sorted by insertion; more take the hash set in
 * lp_parser.slots and qsort. */
#define LP_FEW_FIELDS 8
#define LP_FEW_TAGS 16
#define LP_QUOTE_MAX 32 /* bytes of input quoted in an error message */

#if defined(FLT_EVAL_METHOD) && FLT_EVAL_METHOD == 0
#define LP_FAST_FLOAT 1
#else
#define LP_FAST_FLOAT 0 /* x87 excess precision would double-round */
#endif

struct lp_parser {
    struct lp_limits lim;
    locale_t c_locale;       /* for strtod_l */
    char *scratch;           /* max_line + 1 bytes: unescaped text, strtod copies */
    size_t scratch_used;     /* reset per line */
    struct lp_tag *tags;     /* max_tags entries */
    struct lp_field *fields; /* max_fields entries */
    uint32_t *slots;         /* nslots entries: field index + 1, or 0 when free */
    size_t nslots;           /* power of two >= 2 * max_fields */
    size_t ntags, nfields;
    const char *line;        /* start of the line being parsed, for columns */
    size_t line_no;
    cb_error err;
};

static const double lp_pow10[23] = {
    1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

static const int64_t lp_ns_per_unit[] = {
    [LP_NS] = 1, [LP_US] = 1000, [LP_MS] = 1000000, [LP_S] = 1000000000,
};

/* ---- errors ---- */

/* Copies at most LP_QUOTE_MAX bytes of s into buf as printable ASCII, so a
 * message stays valid UTF-8 and JSON-safe whatever the input was. */
static const char *lp_quote(char buf[LP_QUOTE_MAX + 4], const char *s, size_t n)
{
    size_t k = n < LP_QUOTE_MAX ? n : LP_QUOTE_MAX;
    for (size_t i = 0; i < k; i++) {
        unsigned char c = (unsigned char)s[i];
        buf[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    if (k < n) {
        memcpy(buf + k, "...", 3);
        k += 3;
    }
    buf[k] = '\0';
    return buf;
}

/* Fills p->err with "line N col C: <detail>" and returns code. */
__attribute__((format(printf, 4, 5)))
static int lp_fail(lp_parser *p, int code, const char *at, const char *fmt, ...)
{
    char detail[CB_ERROR_MESSAGE_MAX - 48];
    char field[32];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    snprintf(field, sizeof field, "line %zu", p->line_no);
    return cb_error_set(&p->err, code, field, "line %zu col %zu: %s", p->line_no,
                        (size_t)(at - p->line) + 1, detail);
}

/* Like lp_fail for a field value: names the field and quotes the token. */
static int lp_fail_value(lp_parser *p, int code, const struct lp_field *f, const char *tok,
                         size_t n, const char *what)
{
    char qk[LP_QUOTE_MAX + 4], qv[LP_QUOTE_MAX + 4];
    return lp_fail(p, code, tok, "field '%s': %s '%s'", lp_quote(qk, f->key.ptr, f->key.len),
                   what, lp_quote(qv, tok, n));
}

/* ---- names and strings ---- */

static char *scratch_take(lp_parser *p, size_t n)
{
    /* A line never needs more scratch than its own length + 1: unescaped text
     * is shorter than its source, and tokens do not overlap. */
    assert(p->scratch_used + n <= p->lim.max_line + 1);
    char *dst = p->scratch + p->scratch_used;
    p->scratch_used += n;
    return dst;
}

/* Drops the backslash of every escape pair in s; stop is the escapable set. */
static struct lp_str unescape_name(lp_parser *p, struct lp_str s, unsigned stop)
{
    char *dst = scratch_take(p, s.len), *o = dst;
    for (size_t i = 0; i < s.len; i++) {
        if (s.ptr[i] == '\\' && i + 1 < s.len && (CLASS(s.ptr[i + 1]) & stop))
            i++;
        *o++ = s.ptr[i];
    }
    p->scratch_used -= s.len - (size_t)(o - dst);
    return (struct lp_str){dst, (size_t)(o - dst)};
}

/* The first byte in [q, end) whose class meets mask (or end). SSE2 finds the
 * bytes that could (control, space, ',', '=', '\\', DEL: a superset of every
 * mask here) sixteen at a time, and the table decides. */
static const char *skip_plain(const char *q, const char *end, unsigned mask)
{
#ifdef __SSE2__
    const __m128i space = _mm_set1_epi8(' '), comma = _mm_set1_epi8(','), eq = _mm_set1_epi8('='),
                  bslash = _mm_set1_epi8('\\'), del = _mm_set1_epi8(0x7f);
    while (end - q >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)q);
        __m128i hit = _mm_cmpeq_epi8(_mm_max_epu8(v, space), space); /* <= ' ': control or space */
        hit = _mm_or_si128(hit, _mm_or_si128(_mm_cmpeq_epi8(v, comma), _mm_cmpeq_epi8(v, eq)));
        hit = _mm_or_si128(hit, _mm_or_si128(_mm_cmpeq_epi8(v, bslash), _mm_cmpeq_epi8(v, del)));
        unsigned bits = (unsigned)_mm_movemask_epi8(hit);
        while (bits) {
            const char *at = q + __builtin_ctz(bits);
            if (CLASS(*at) & mask)
                return at;
            bits &= bits - 1;
        }
        q += 16;
    }
#endif
    while (q < end && !(CLASS(*q) & mask))
        q++;
    return q;
}

/* Scans a name from *pos up to its first unescaped byte of class stop (or
 * the end). On success *pos is at that byte and out is the unescaped name. */
static int scan_name(lp_parser *p, const char **pos, const char *end, unsigned stop,
                     const char *what, struct lp_str *out)
{
    const char *start = *pos, *q = start;
    const unsigned mask = stop | C_BSLASH | C_CTRL;
    int escaped = 0;
    for (;;) {
        q = skip_plain(q, end, mask);
        if (q == end || (CLASS(*q) & stop))
            break;
        if (*q != '\\')
            return lp_fail(p, CB_EBAD_REQUEST, q, "control byte 0x%02x in %s",
                           (unsigned char)*q, what);
        if (q + 1 < end && (CLASS(q[1]) & stop)) {
            escaped = 1;
            q += 2;
        } else {
            q++; /* a backslash before anything else is literal */
        }
    }
    *pos = q;
    *out = (struct lp_str){start, (size_t)(q - start)};
    if (escaped)
        *out = unescape_name(p, *out, stop);
    return 0;
}

static struct lp_str unescape_string(lp_parser *p, struct lp_str s)
{
    char *dst = scratch_take(p, s.len), *o = dst;
    for (size_t i = 0; i < s.len; i++) {
        if (s.ptr[i] == '\\' && i + 1 < s.len && (s.ptr[i + 1] == '"' || s.ptr[i + 1] == '\\'))
            i++;
        *o++ = s.ptr[i];
    }
    p->scratch_used -= s.len - (size_t)(o - dst);
    return (struct lp_str){dst, (size_t)(o - dst)};
}

/* Scans a quoted string value; *pos is at the opening quote and ends just
 * after the closing one. */
static int scan_string(lp_parser *p, const char **pos, const char *end, struct lp_field *f)
{
    const char *open = *pos, *q = open + 1;
    int escaped = 0;
    for (;;) {
        while (q < end && !(CLASS(*q) & (C_QUOTE | C_BSLASH | C_NUL)))
            q++;
        if (q == end)
            return lp_fail_value(p, CB_EINVALID_FIELD, f, open, (size_t)(end - open),
                                 "unterminated string");
        if (*q == '"')
            break;
        if (*q != '\\')
            return lp_fail_value(p, CB_EINVALID_FIELD, f, open, (size_t)(q - open),
                                 "NUL byte in string");
        if (q + 1 < end && (q[1] == '"' || q[1] == '\\')) {
            escaped = 1;
            q += 2;
        } else {
            q++;
        }
    }
    f->type = LP_STRING;
    f->v.s = (struct lp_str){open + 1, (size_t)(q - open - 1)};
    if (escaped)
        f->v.s = unescape_string(p, f->v.s);
    *pos = q + 1;
    return 0;
}

/* ---- numbers ---- */

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Decimal digits s[0..n) into *out; -1 if not all digits or empty, -2 if
 * the value exceeds max. */
static int parse_digits(const char *s, size_t n, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    int over = 0;
    if (n == 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        uint64_t d = (uint64_t)(unsigned char)s[i] - '0';
        if (d > 9)
            return -1;
        /* Any 19 digits fit in 64 bits; only longer numbers need the checks. */
        if (i < 19)
            v = v * 10 + d;
        else
            over |= __builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, d, &v);
    }
    if (over || v > max)
        return -2;
    *out = v;
    return 0;
}

/* Optionally negative decimal integer into *out; -1 malformed, -2 range. */
static int parse_int64(const char *s, size_t n, int64_t *out)
{
    int neg = n > 0 && s[0] == '-';
    uint64_t mag;
    int rc = parse_digits(s + neg, n - (size_t)neg, neg ? (uint64_t)INT64_MAX + 1 : INT64_MAX,
                          &mag);
    if (rc < 0)
        return rc;
    /* -(2^63) has no positive int64, so negate in unsigned arithmetic. */
    *out = neg ? (int64_t)(0 - mag) : (int64_t)mag;
    return 0;
}

/* The shape of a float token, gathered while validating it. */
struct lp_decimal {
    uint64_t w;     /* first 19 significant digits */
    int nsig;       /* significant digits in w */
    int exact;      /* 0: more digits than w holds, or a huge exponent */
    long e10;       /* value = w * 10^e10 when exact */
};

/* Validates -?(digits[.digits]|.digits)([eE][+-]?digits)? and fills d. */
static int scan_decimal(const char *s, size_t n, struct lp_decimal *d)
{
    size_t i = s[0] == '-', ndig = 0;
    long frac = 0, exp = 0;
    int seen_point = 0;
    *d = (struct lp_decimal){0, 0, 1, 0};
    for (; i < n; i++) {
        if (!is_digit(s[i])) {
            if (s[i] != '.' || seen_point)
                break;
            seen_point = 1;
            continue;
        }
        ndig++;
        if (d->w == 0 && s[i] == '0') {
            frac += seen_point; /* leading zeros only move the point */
        } else if (d->nsig < 19) {
            d->w = d->w * 10 + (uint64_t)(s[i] - '0');
            d->nsig++;
            frac += seen_point;
        } else {
            d->exact = 0;
        }
    }
    if (ndig == 0)
        return -1;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        int eneg = 0;
        size_t start;
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            eneg = s[i++] == '-';
        for (start = i; i < n && is_digit(s[i]); i++) {
            if (exp < 100000)
                exp = exp * 10 + (s[i] - '0');
            else
                d->exact = 0; /* strtod knows what a huge exponent means */
        }
        if (i == start)
            return -1;
        exp = eneg ? -exp : exp;
    }
    d->e10 = exp - frac;
    return i == n ? 0 : -1;
}

/* The slow but exact path: strtod in the C locale on a NUL-terminated copy. */
static double parse_float_slow(lp_parser *p, const char *s, size_t n)
{
    char *copy = scratch_take(p, n + 1), *endp;
    memcpy(copy, s, n);
    copy[n] = '\0';
    double v = strtod_l(copy, &endp, p->c_locale);
    assert(endp == copy + n); /* scan_decimal accepts a subset of strtod's syntax */
    p->scratch_used -= n + 1;
    return v;
}

/* Returns 0 and *out, -1 when s is not a float, -2 when it overflows. */
static int parse_float(lp_parser *p, const char *s, size_t n, double *out)
{
    struct lp_decimal d;
    if (scan_decimal(s, n, &d) < 0)
        return -1;
    int neg = s[0] == '-';
    if (d.exact && d.w == 0) {
        *out = neg ? -0.0 : 0.0;
        return 0;
    }
    if (LP_FAST_FLOAT && d.exact && d.w <= (UINT64_C(1) << 53) && d.e10 >= -22 && d.e10 <= 22) {
        double v = (double)d.w;
        v = d.e10 < 0 ? v / lp_pow10[-d.e10] : v * lp_pow10[d.e10];
        *out = neg ? -v : v;
        return 0;
    }
    *out = parse_float_slow(p, s, n);
    return isfinite(*out) ? 0 : -2;
}

/* ---- field values ---- */

static int parse_bool(const char *s, size_t n, int *out)
{
    static const struct {
        const char *text;
        int value;
    } words[] = {
        {"t", 1}, {"T", 1}, {"true", 1},  {"True", 1},  {"TRUE", 1},
        {"f", 0}, {"F", 0}, {"false", 0}, {"False", 0}, {"FALSE", 0},
    };
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
        if (strlen(words[i].text) == n && memcmp(words[i].text, s, n) == 0) {
            *out = words[i].value;
            return 0;
        }
    }
    return -1;
}

/* A number or boolean token s[0..n), by its first and last byte. */
static int parse_scalar(lp_parser *p, struct lp_field *f, const char *s, size_t n)
{
    int rc;
    assert(n > 0);
    if (s[0] == 't' || s[0] == 'T' || s[0] == 'f' || s[0] == 'F') {
        f->type = LP_BOOL;
        rc = parse_bool(s, n, &f->v.b);
        return rc ? lp_fail_value(p, CB_EINVALID_FIELD, f, s, n, "invalid boolean") : 0;
    }
    if (s[n - 1] == 'i') {
        f->type = LP_INT;
        rc = parse_int64(s, n - 1, &f->v.i);
    } else if (s[n - 1] == 'u') {
        f->type = LP_UINT;
        rc = parse_digits(s, n - 1, UINT64_MAX, &f->v.u);
    } else {
        f->type = LP_FLOAT;
        rc = parse_float(p, s, n, &f->v.f);
    }
    if (rc == -2)
        return lp_fail_value(p, CB_EINVALID_FIELD, f, s, n, "number out of range");
    if (rc < 0)
        return lp_fail_value(p, CB_EINVALID_FIELD, f, s, n,
                             f->type == LP_INT    ? "invalid integer"
                             : f->type == LP_UINT ? "invalid unsigned integer"
                                                  : "invalid number");
    return 0;
}

/* Parses the value after "key="; *pos ends at ',', ' ' or the end. */
static int parse_value(lp_parser *p, const char **pos, const char *end, struct lp_field *f)
{
    const char *s = *pos, *q = s;
    if (s < end && *s == '"') {
        int rc = scan_string(p, pos, end, f);
        if (rc == 0 && *pos < end && !(CLASS(**pos) & (C_COMMA | C_SPACE)))
            return lp_fail_value(p, CB_EINVALID_FIELD, f, *pos, (size_t)(end - *pos),
                                 "text after string");
        return rc;
    }
    while (q < end && !(CLASS(*q) & (C_COMMA | C_SPACE)))
        q++;
    if (q == s) {
        char qk[LP_QUOTE_MAX + 4];
        return lp_fail(p, CB_EMISSING_FIELD, s, "field '%s': missing value",
                       lp_quote(qk, f->key.ptr, f->key.len));
    }
    *pos = q;
    return parse_scalar(p, f, s, (size_t)(q - s));
}

/* ---- tags and fields ---- */

static int str_cmp(struct lp_str a, struct lp_str b)
{
    int c = memcmp(a.ptr, b.ptr, a.len < b.len ? a.len : b.len);
    return c ? c : (a.len > b.len) - (a.len < b.len);
}

static int str_eq(struct lp_str a, struct lp_str b)
{
    /* Keys are short and usually differ early: skip the memcmp call. */
    return a.len == b.len && (a.len == 0 || a.ptr[0] == b.ptr[0]) &&
           memcmp(a.ptr, b.ptr, a.len) == 0;
}

static int tag_cmp(const void *a, const void *b)
{
    return str_cmp(((const struct lp_tag *)a)->key, ((const struct lp_tag *)b)->key);
}

/* Sorts the tags by key and rejects a repeated key. */
static int sort_tags(lp_parser *p)
{
    struct lp_tag *t = p->tags;
    size_t n = p->ntags;
    if (n > LP_FEW_TAGS) {
        qsort(t, n, sizeof *t, tag_cmp);
    } else {
        for (size_t i = 1; i < n; i++) {
            struct lp_tag x = t[i];
            size_t j = i;
            for (; j > 0 && str_cmp(t[j - 1].key, x.key) > 0; j--)
                t[j] = t[j - 1];
            t[j] = x;
        }
    }
    for (size_t i = 1; i < n; i++) {
        char q[LP_QUOTE_MAX + 4];
        if (str_eq(t[i - 1].key, t[i].key))
            return lp_fail(p, CB_EINVALID_FIELD, p->line, "duplicate tag key '%s'",
                           lp_quote(q, t[i].key.ptr, t[i].key.len));
    }
    return 0;
}

static uint32_t key_hash(struct lp_str k)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < k.len; i++)
        h = (h ^ (unsigned char)k.ptr[i]) * 16777619u;
    return h;
}

/* Index of the kept field with f's key, or -1 after recording f at index
 * next; a linear scan for few fields, the hash set for many. */
static long field_slot(lp_parser *p, size_t next, size_t mask)
{
    const struct lp_field *f = &p->fields[next];
    if (!mask) {
        for (size_t j = 0; j < next; j++)
            if (str_eq(p->fields[j].key, f->key))
                return (long)j;
        return -1;
    }
    for (size_t h = key_hash(f->key) & mask;; h = (h + 1) & mask) {
        if (p->slots[h] == 0) {
            p->slots[h] = (uint32_t)next + 1;
            return -1;
        }
        if (str_eq(p->fields[p->slots[h] - 1].key, f->key))
            return (long)p->slots[h] - 1;
    }
}

/* Keeps one field per key: the first position, the last value. */
static void dedupe_fields(lp_parser *p)
{
    size_t n = p->nfields, kept = 0, mask = 0;
    if (n > LP_FEW_FIELDS) {
        size_t nslots = 16;
        while (nslots < 2 * n)
            nslots *= 2;
        assert(nslots <= p->nslots);
        memset(p->slots, 0, nslots * sizeof *p->slots);
        mask = nslots - 1;
    }
    for (size_t i = 0; i < n; i++) {
        p->fields[kept] = p->fields[i];
        long j = field_slot(p, kept, mask);
        if (j >= 0)
            p->fields[j] = p->fields[kept]; /* same key bytes; last value wins */
        else
            kept++;
    }
    p->nfields = kept;
}

/* ---- one line ---- */

static const char *skip_spaces(const char *s, const char *end)
{
    while (s < end && *s == ' ')
        s++;
    return s;
}

static int tag_fail(lp_parser *p, int code, const char *at, const struct lp_tag *t,
                    const char *what)
{
    char q[LP_QUOTE_MAX + 4];
    return lp_fail(p, code, at, "tag '%s': %s", lp_quote(q, t->key.ptr, t->key.len), what);
}

/* "key=" of a tag or field (what is "tag key" or "field key"); *pos ends
 * after the '='. */
static int scan_key(lp_parser *p, const char **pos, const char *end, const char *what,
                    struct lp_str *key)
{
    char q[LP_QUOTE_MAX + 4];
    const char *at = *pos;
    int rc = scan_name(p, pos, end, STOP_KEY, what, key);
    if (rc < 0)
        return rc;
    if (key->len == 0)
        return lp_fail(p, CB_EMISSING_FIELD, at, "empty %s", what);
    if (*pos == end || **pos != '=')
        return lp_fail(p, CB_EMISSING_FIELD, *pos, "%s '%s' has no '=' and value", what,
                       lp_quote(q, key->ptr, key->len));
    ++*pos;
    return 0;
}

static int parse_tag(lp_parser *p, const char **pos, const char *end)
{
    struct lp_tag *t = &p->tags[p->ntags];
    if (p->ntags == p->lim.max_tags)
        return lp_fail(p, CB_ETOO_LARGE, *pos, "more than %zu tags", p->lim.max_tags);
    int rc = scan_key(p, pos, end, "tag key", &t->key);
    if (rc < 0)
        return rc;
    const char *at = *pos;
    rc = scan_name(p, pos, end, STOP_KEY, "tag value", &t->value);
    if (rc < 0)
        return rc;
    if (t->value.len == 0)
        return tag_fail(p, CB_EMISSING_FIELD, at, t, "empty value");
    if (*pos < end && **pos == '=')
        return tag_fail(p, CB_EINVALID_FIELD, *pos, t, "unescaped '=' in value");
    p->ntags++;
    return 0;
}

/* measurement[,tag=value...]; *pos ends at the space before the fields. */
static int parse_series(lp_parser *p, const char **pos, const char *end, struct lp_point *pt)
{
    const char *at = *pos;
    int rc = scan_name(p, pos, end, STOP_MEASUREMENT, "measurement", &pt->measurement);
    if (rc < 0)
        return rc;
    if (pt->measurement.len == 0)
        return lp_fail(p, CB_EMISSING_FIELD, at, "missing measurement");
    while (*pos < end && **pos == ',') {
        ++*pos;
        rc = parse_tag(p, pos, end);
        if (rc < 0)
            return rc;
    }
    return sort_tags(p);
}

static int parse_field(lp_parser *p, const char **pos, const char *end)
{
    struct lp_field *f = &p->fields[p->nfields];
    if (p->nfields == p->lim.max_fields)
        return lp_fail(p, CB_ETOO_LARGE, *pos, "more than %zu fields", p->lim.max_fields);
    int rc = scan_key(p, pos, end, "field key", &f->key);
    if (rc == 0)
        rc = parse_value(p, pos, end, f);
    if (rc < 0)
        return rc;
    p->nfields++;
    return 0;
}

static int parse_fields(lp_parser *p, const char **pos, const char *end)
{
    *pos = skip_spaces(*pos, end);
    if (*pos == end)
        return lp_fail(p, CB_EMISSING_FIELD, *pos, "missing fields");
    for (;;) {
        int rc = parse_field(p, pos, end);
        if (rc < 0)
            return rc;
        if (*pos == end || **pos != ',')
            break;
        ++*pos;
    }
    dedupe_fields(p);
    return 0;
}

static int parse_time(lp_parser *p, const char **pos, const char *end, enum lp_precision prec,
                      struct lp_point *pt)
{
    char q[LP_QUOTE_MAX + 4];
    const char *s = skip_spaces(*pos, end), *e = s;
    int64_t t;
    while (e < end && *e != ' ')
        e++;
    if (s == e)
        return 0;
    int rc = parse_int64(s, (size_t)(e - s), &t);
    if (rc == 0 && __builtin_mul_overflow(t, lp_ns_per_unit[prec], &pt->time_ns))
        rc = -2;
    if (rc < 0)
        return lp_fail(p, CB_EINVALID_FIELD, s, "%s '%s'",
                       rc == -2 ? "timestamp out of range" : "invalid timestamp",
                       lp_quote(q, s, (size_t)(e - s)));
    pt->has_time = 1;
    *pos = skip_spaces(e, end);
    if (*pos < end)
        return lp_fail(p, CB_EBAD_REQUEST, *pos, "unexpected text after the timestamp");
    return 0;
}

static int parse_line(lp_parser *p, const char *s, const char *end, enum lp_precision prec,
                      int64_t now_ns, struct lp_point *pt)
{
    int rc;
    p->scratch_used = 0;
    p->ntags = p->nfields = 0;
    pt->has_time = 0;
    pt->time_ns = now_ns;
    if ((rc = parse_series(p, &s, end, pt)) < 0 || (rc = parse_fields(p, &s, end)) < 0 ||
        (rc = parse_time(p, &s, end, prec, pt)) < 0)
        return rc;
    pt->ntags = p->ntags;
    pt->tags = p->tags;
    pt->nfields = p->nfields;
    pt->fields = p->fields;
    assert(pt->nfields >= 1 && pt->measurement.len > 0);
    return 0;
}

/* One line without its \n: skipped, parsed and reported, or reported bad. */
static int handle_line(lp_parser *p, const char *line, const char *eol, enum lp_precision prec,
                       int64_t now_ns, lp_point_fn on_point, lp_error_fn on_error, void *arg)
{
    struct lp_point pt;
    size_t len = (size_t)(eol - line);
    const char *s;
    if (eol > line && eol[-1] == '\r')
        eol--;
    s = skip_spaces(line, eol);
    if (s == eol || *s == '#')
        return 0;
    p->line = line;
    int rc = len > p->lim.max_line
                 ? lp_fail(p, CB_ETOO_LARGE, line, "line longer than %zu bytes", p->lim.max_line)
                 : parse_line(p, s, eol, prec, now_ns, &pt);
    if (rc < 0)
        return on_error(arg, p->line_no, &p->err);
    return on_point(arg, p->line_no, &pt);
}

/* ---- public ---- */

int lp_parse(lp_parser *p, const char *body, size_t len, enum lp_precision prec,
             int64_t now_ns, lp_point_fn on_point, lp_error_fn on_error, void *arg)
{
    assert(p && on_point && on_error && (body || len == 0));
    assert((unsigned)prec <= LP_S);
    if (len == 0)
        return 0;
    const char *s = body, *end = body + len;
    p->line_no = 0;
    while (s < end) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        const char *eol = nl ? nl : end;
        p->line_no++;
        int rc = handle_line(p, s, eol, prec, now_ns, on_point, on_error, arg);
        if (rc != 0)
            return rc;
        s = nl ? nl + 1 : end;
    }
    return 0;
}

size_t lp_readings_at_most(const char *body, size_t len)
{
    assert(body || len == 0);
    size_t n = 1, i = 0; /* the last line need not end in '\n' */
#ifdef __SSE2__
    const __m128i eq = _mm_set1_epi8('='), nl = _mm_set1_epi8('\n'), zero = _mm_setzero_si128();
    while (len - i >= 16) {
        /* count in bytes (each hit subtracts -1) for up to 255 blocks, then sum them */
        size_t blocks = (len - i) / 16 < 255 ? (len - i) / 16 : 255;
        __m128i acc = zero;
        for (size_t b = 0; b < blocks; b++, i += 16) {
            __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(body + i));
            acc = _mm_sub_epi8(acc, _mm_or_si128(_mm_cmpeq_epi8(v, eq), _mm_cmpeq_epi8(v, nl)));
        }
        __m128i sums = _mm_sad_epu8(acc, zero);
        n += (size_t)_mm_cvtsi128_si32(sums) + (size_t)_mm_extract_epi16(sums, 4);
    }
#endif
    for (; i < len; i++)
        n += body[i] == '=' || body[i] == '\n';
    return n;
}

int lp_precision_parse(const char *s, enum lp_precision *out, cb_error *err)
{
    static const char *const names[] = {[LP_NS] = "ns", [LP_US] = "us", [LP_MS] = "ms",
                                        [LP_S] = "s"};
    if (!s || !*s) {
        *out = LP_NS;
        return 0;
    }
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = (enum lp_precision)i;
            return 0;
        }
    }
    char q[LP_QUOTE_MAX + 4];
    return cb_error_set(err, CB_EINVALID_FIELD, "precision",
                        "precision must be ns, us, ms or s, not '%s'", lp_quote(q, s, strlen(s)));
}

static size_t limit_or(size_t v, size_t def)
{
    return v ? v : def;
}

int lp_parser_new(lp_parser **out, const struct lp_limits *limits, cb_error *err)
{
    struct lp_limits lim = limits ? *limits : (struct lp_limits){0, 0, 0};
    lim.max_line = limit_or(lim.max_line, LP_DEFAULT_MAX_LINE);
    lim.max_tags = limit_or(lim.max_tags, LP_DEFAULT_MAX_TAGS);
    lim.max_fields = limit_or(lim.max_fields, LP_DEFAULT_MAX_FIELDS);
    *out = NULL;
    if (lim.max_line > LP_LIMIT_CAP || lim.max_tags > LP_LIMIT_CAP ||
        lim.max_fields > LP_LIMIT_CAP)
        return cb_error_set(err, CB_ECONFIG, "limits", "line protocol limits above %d",
                            LP_LIMIT_CAP);
    lp_parser *p = calloc(1, sizeof *p);
    if (!p)
        return cb_error_set(err, CB_ENOMEM, NULL, NULL);
    p->lim = lim;
    p->nslots = 16;
    while (p->nslots < 2 * lim.max_fields)
        p->nslots *= 2;
    p->c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
    p->scratch = malloc(lim.max_line + 1);
    p->tags = malloc(lim.max_tags * sizeof *p->tags);
    p->fields = malloc(lim.max_fields * sizeof *p->fields);
    p->slots = malloc(p->nslots * sizeof *p->slots);
    if (!p->c_locale || !p->scratch || !p->tags || !p->fields || !p->slots) {
        lp_parser_free(p);
        return cb_error_set(err, CB_ENOMEM, NULL, NULL);
    }
    *out = p;
    return 0;
}

void lp_parser_free(lp_parser *p)
{
    if (!p)
        return;
    if (p->c_locale)
        freelocale(p->c_locale);
    free(p->scratch);
    free(p->tags);
    free(p->fields);
    free(p->slots);
    free(p);
}
