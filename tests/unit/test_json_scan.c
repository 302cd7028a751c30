/* Unit tests for ingest/json_scan: every token type, escapes and surrogate
 * pairs, UTF-8 validation, numbers (bit for bit against strtod on random
 * decimals), the depth limit, repeated keys, skipping, and error positions. */
#include "ingest/json_scan.h"

#include <math.h>

#include "test.h"

/* Checks a whole document (root, rest skipped, end); fills err on failure. */
static int check_doc(const char *text, size_t len, cb_error *err)
{
    json_scan s;
    struct json_scan_value v;
    json_scan_init(&s, text, len);
    int rc = json_scan_value(&s, &v);
    if (rc == 0)
        rc = json_scan_skip(&s, &v);
    if (rc == 0)
        rc = json_scan_finish(&s);
    if (rc != 0)
        json_scan_error(&s, "body", err);
    return rc;
}

static int check(const char *text, cb_error *err)
{
    return check_doc(text, strlen(text), err);
}

/* The error message of text, which must be invalid. */
static const char *error_of(const char *text)
{
    static cb_error err;
    memset(&err, 0, sizeof err);
    CHECK_INT(check(text, &err), CB_EINVALID_JSON);
    CHECK_STR(err.field, "body");
    return err.message;
}

static int starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* The only element of the one-element array text. */
static int element(const char *text, struct json_scan_value *v)
{
    json_scan s;
    struct json_scan_value arr, end;
    json_scan_init(&s, text, strlen(text));
    if (json_scan_value(&s, &arr) != 0 || arr.type != JSON_SCAN_ARRAY || json_scan_element(&s, v) != 1)
        return -1;
    return json_scan_element(&s, &end) == 0 && json_scan_finish(&s) == 0 ? 0 : -1;
}

/* The decoded string of ["..."] (static; "" on failure). */
static const char *decoded(const char *text, struct json_scan_value *v)
{
    static char buf[256];
    buf[0] = '\0';
    if (element(text, v) != 0 || v->type != JSON_SCAN_STRING)
        return "<not a string>";
    CHECK_INT(json_scan_copy(&v->u.str, buf, sizeof buf), v->u.str.dlen);
    CHECK_INT(strlen(buf), v->u.str.dlen);
    return buf;
}

TEST(test_tokens)
{
    const char *text = " {\"s\": \"x\", \"i\": -12, \"r\": 1.5, \"t\": true, \"f\": false, \"n\": null,"
                       " \"a\": [1, []], \"o\": {}} ";
    json_scan s;
    struct json_scan_value v, root;
    struct json_scan_str k;
    json_scan_init(&s, text, strlen(text));
    CHECK_INT(json_scan_value(&s, &root), 0);
    CHECK_INT(root.type, JSON_SCAN_OBJECT);
    CHECK(root.at == text + 1);
    static const enum json_scan_type want[] = {JSON_SCAN_STRING, JSON_SCAN_INTEGER, JSON_SCAN_REAL, JSON_SCAN_TRUE,
                                               JSON_SCAN_FALSE, JSON_SCAN_NULL, JSON_SCAN_ARRAY, JSON_SCAN_OBJECT};
    static const char *const keys[] = {"s", "i", "r", "t", "f", "n", "a", "o"};
    for (int i = 0; i < 8; i++) {
        CHECK_INT(json_scan_member(&s, &k, &v), 1);
        CHECK(json_scan_str_is(&k, keys[i]));
        CHECK_INT(v.type, want[i]);
        if (v.type == JSON_SCAN_STRING)
            CHECK(v.u.str.ptr == text + 8 && v.u.str.len == 1 && !v.u.str.escaped); /* zero-copy */
        if (v.type == JSON_SCAN_INTEGER)
            CHECK_INT(v.u.integer, -12);
        if (v.type == JSON_SCAN_REAL)
            CHECK(v.u.real == 1.5);
        if (v.type == JSON_SCAN_ARRAY) {
            struct json_scan_value e;
            CHECK_INT(json_scan_element(&s, &e), 1);
            CHECK_INT(e.type, JSON_SCAN_INTEGER);
            CHECK_INT(json_scan_element(&s, &e), 1);
            CHECK_INT(e.type, JSON_SCAN_ARRAY);
            CHECK_INT(json_scan_element(&s, &e), 0); /* the inner [] */
            CHECK_INT(json_scan_element(&s, &e), 0);
        }
        if (v.type == JSON_SCAN_OBJECT)
            CHECK_INT(json_scan_member(&s, &k, &v), 0);
    }
    CHECK_INT(json_scan_member(&s, &k, &v), 0);
    CHECK_INT(json_scan_finish(&s), 0);
    CHECK_INT(s.members, 8);

    /* any value at the top */
    cb_error err;
    CHECK_INT(check("\"x\"", &err), 0);
    CHECK_INT(check(" 12 ", &err), 0);
    CHECK_INT(check("null", &err), 0);
    CHECK_INT(check("[]", &err), 0);
    CHECK(starts_with(error_of(""), "line 1, column 1: "));
    CHECK(starts_with(error_of("  \n "), "line 2, column 2: "));
    error_of("nul");
    error_of("True");
    error_of("[truex]");
    error_of("[1 2]");
    error_of("[1,]");
    error_of("[,1]");
    error_of("{\"a\" 1}");
    error_of("{\"a\":1,}");
    error_of("{,}");
    error_of("{1:2}");
    error_of("{\"a\":1");
    error_of("[1}");
    error_of("{\"a\":1]");
    error_of("[1] [2]");
    error_of("[\v1]");
}

TEST(test_escapes)
{
    struct json_scan_value v;
    CHECK_STR(decoded("[\"a\\\"b\\\\c\\/d\\be\\ff\\ng\\rh\\ti\"]", &v), "a\"b\\c/d\be\ff\ng\rh\ti");
    CHECK(v.u.str.escaped);
    CHECK_INT(v.u.str.len, 25);
    CHECK_STR(decoded("[\"\\u0041\\u00e9\\u4E2D\"]", &v), "A\xc3\xa9\xe4\xb8\xad");
    CHECK_INT(v.u.str.dlen, 6);
    CHECK_STR(decoded("[\"\\ud83d\\ude00!\"]", &v), "\xf0\x9f\x98\x80!"); /* U+1F600 */
    CHECK_STR(decoded("[\"\\uDBFF\\uDFFF\"]", &v), "\xf4\x8f\xbf\xbf");     /* U+10FFFF */
    CHECK_STR(decoded("[\"\\u007f\\u0080\\u07ff\\u0800\\uffff\"]", &v), "\x7f\xc2\x80\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf");
    CHECK_STR(decoded("[\"plain\"]", &v), "plain");
    CHECK(!v.u.str.escaped);
    CHECK_STR(decoded("[\"\"]", &v), "");

    CHECK(strstr(error_of("[\"\\ud800\"]"), "high surrogate") != NULL);
    CHECK(strstr(error_of("[\"\\ud800\\u0041\"]"), "high surrogate") != NULL);
    CHECK(strstr(error_of("[\"\\ud800x\"]"), "high surrogate") != NULL);
    CHECK(strstr(error_of("[\"\\udc00\"]"), "low surrogate") != NULL);
    CHECK(strstr(error_of("[\"\\u0000\"]"), "\\u0000") != NULL);
    error_of("[\"\\u12\"]");
    error_of("[\"\\u12g4\"]");
    error_of("[\"\\x\"]");
    error_of("[\"\\'\"]");
    error_of("[\"\\");
    error_of("[\"abc");
    CHECK(strstr(error_of("[\"a\nb\"]"), "newline") != NULL);
    CHECK(strstr(error_of("[\"a\tb\"]"), "control") != NULL);
    CHECK(strstr(error_of("[\"a\x1f\"]"), "control") != NULL);
    cb_error err;
    CHECK_INT(check_doc("[\"a\0b\"]", 7, &err), CB_EINVALID_JSON);
    CHECK_INT(check_doc("[1\0]", 4, &err), CB_EINVALID_JSON); /* jansson would drop the NUL */
}

TEST(test_utf8)
{
    struct json_scan_value v;
    CHECK_STR(decoded("[\"caf\xc3\xa9 \xe4\xb8\xad \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf\"]", &v),
              "caf\xc3\xa9 \xe4\xb8\xad \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf");
    CHECK(!v.u.str.escaped);
    static const char *const bad[] = {
        "[\"\x80\"]",             /* a lone continuation byte */
        "[\"\xc0\xaf\"]",         /* overlong '/' */
        "[\"\xc1\xbf\"]",         /* overlong */
        "[\"\xe0\x80\xaf\"]",     /* overlong */
        "[\"\xed\xa0\x80\"]",     /* U+D800, a surrogate */
        "[\"\xf0\x80\x80\xaf\"]", /* overlong */
        "[\"\xf4\x90\x80\x80\"]", /* above U+10FFFF */
        "[\"\xf5\x80\x80\x80\"]",
        "[\"\xff\"]",
        "[\"\xe4\xb8\"]",         /* cut short by the quote */
        "[\"\xc3\x28\"]",         /* not a continuation */
        "[\xc3\xa9]",             /* outside a string */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(starts_with(error_of(bad[i]), "line 1, column "));
    CHECK(strstr(error_of("[\"\xe4\xb8\xad\xff\"]"), "column 4: invalid UTF-8") != NULL); /* 中 is one column */
    cb_error err;
    CHECK_INT(check_doc("[\"\xe4\xb8", 5, &err), CB_EINVALID_JSON); /* cut short by the end */
}

TEST(test_numbers)
{
    struct json_scan_value v;
    static const struct {
        const char *text;
        int64_t want;
    } ints[] = {{"[0]", 0}, {"[-0]", 0}, {"[7]", 7}, {"[-12]", -12}, {"[9223372036854775807]", INT64_MAX},
                {"[-9223372036854775808]", INT64_MIN}, {"[1000000000000000000]", 1000000000000000000}};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        CHECK_INT(element(ints[i].text, &v), 0);
        CHECK_INT(v.type, JSON_SCAN_INTEGER);
        CHECK(v.u.integer == ints[i].want);
    }
    CHECK(strstr(error_of("[9223372036854775808]"), "out of range") != NULL);
    CHECK(strstr(error_of("[-9223372036854775809]"), "out of range") != NULL);
    CHECK(strstr(error_of("[10000000000000000000]"), "out of range") != NULL);
    CHECK(strstr(error_of("[123456789012345678901234567890]"), "out of range") != NULL);

    static const char *const reals[] = {"1.5", "-0.0", "0.0", "1e3", "1E+3", "1e-3", "-2.5e-3", "0.1", "3.14159",
                                        "1e22", "1e23", "9007199254740993.0", "4.9e-324", "2.2250738585072011e-308",
                                        "1.7976931348623157e308", "1e-400", "0e999999999", "123456789012345678901.5",
                                        "0.000000000000000000000000000001", "1.00000000000000000000000000001"};
    for (size_t i = 0; i < sizeof reals / sizeof reals[0]; i++) {
        char text[96];
        snprintf(text, sizeof text, "[%s]", reals[i]);
        CHECK_INT(element(text, &v), 0);
        CHECK_INT(v.type, JSON_SCAN_REAL);
        double want = strtod(reals[i], NULL);
        CHECK(memcmp(&v.u.real, &want, sizeof want) == 0);
    }
    CHECK(strstr(error_of("[1e400]"), "out of range") != NULL);
    CHECK(strstr(error_of("[-1.8e308]"), "out of range") != NULL);
    static const char *const bad[] = {"[01]", "[-01]", "[-]", "[1.]", "[.5]", "[1e]", "[1e+]", "[+1]", "[--1]",
                                      "[0x10]", "[Infinity]", "[NaN]", "[-Infinity]", "[1.5.2]", "[1e5e5]", "[- 1]"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        error_of(bad[i]);
    /* a number that ends the text is converted from a copy, short or long */
    json_scan s;
    json_scan_init(&s, "2.5", 3);
    CHECK(json_scan_value(&s, &v) == 0 && v.type == JSON_SCAN_REAL && v.u.real == 2.5 && json_scan_finish(&s) == 0);
    char longnum[400];
    memset(longnum, '1', sizeof longnum);
    longnum[1] = '.';
    json_scan_init(&s, longnum, sizeof longnum);
    CHECK(json_scan_value(&s, &v) == 0 && v.type == JSON_SCAN_REAL && json_scan_finish(&s) == 0);
    CHECK(fabs(v.u.real - 1.1111111111111111) < 1e-15);
}

/* A random decimal of one of many shapes: digits, fraction, exponent, many
 * significant digits, halfway cases, extremes. */
static void random_decimal(char *o, size_t cap, unsigned *seed)
{
    static const char *const fixed[] = {"9007199254740993", "9007199254740992.5", "2.2250738585072012e-308",
                                        "1.7976931348623158e308", "4.9406564584124654e-324", "2.4703282292062327e-324",
                                        "0.30000000000000004", "123456789012345678.9"};
    int shape = rand_r(seed) % 6;
    size_t n = 0;
    if (rand_r(seed) % 3 == 0)
        o[n++] = '-';
    if (shape == 0) {
        n += (size_t)snprintf(o + n, cap - n, "%s", fixed[rand_r(seed) % 8]);
        return;
    }
    int idigits = 1 + rand_r(seed) % (shape == 1 ? 25 : 8), fdigits = shape >= 3 ? 1 + rand_r(seed) % 20 : 0;
    o[n++] = idigits == 1 && rand_r(seed) % 2 ? '0' : (char)('1' + rand_r(seed) % 9);
    for (int i = 1; i < idigits; i++)
        o[n++] = (char)('0' + rand_r(seed) % 10);
    if (fdigits || shape == 2) {
        o[n++] = '.';
        for (int i = 0; i < (fdigits ? fdigits : 1); i++)
            o[n++] = (char)('0' + rand_r(seed) % 10);
    }
    if (shape >= 4 || shape == 2)
        n += (size_t)snprintf(o + n, cap - n, "e%s%d", rand_r(seed) % 2 ? "-" : (rand_r(seed) % 2 ? "+" : ""),
                              rand_r(seed) % (shape == 5 ? 330 : 30));
    else if (!fdigits && shape != 1)
        n += (size_t)snprintf(o + n, cap - n, ".0");
    o[n] = '\0';
}

TEST(test_numbers_vs_strtod)
{
    unsigned seed = 20261123;
    int compared = 0, out_of_range = 0;
    for (int i = 0; i < 200000; i++) {
        char num[96], text[100];
        random_decimal(num, sizeof num, &seed);
        snprintf(text, sizeof text, "[%s]", num);
        struct json_scan_value v;
        double want = strtod(num, NULL);
        int is_real = strpbrk(num, ".eE") != NULL;
        if (!is_real)
            continue;
        if (!isfinite(want)) {
            error_of(text);
            out_of_range++;
            continue;
        }
        CHECK_INT(element(text, &v), 0);
        CHECK_INT(v.type, JSON_SCAN_REAL);
        if (memcmp(&v.u.real, &want, sizeof want) != 0)
            fprintf(stderr, "  %s: got %.17g, strtod %.17g\n", num, v.u.real, want);
        CHECK(memcmp(&v.u.real, &want, sizeof want) == 0);
        compared++;
    }
    CHECK(compared > 150000);
    CHECK(out_of_range > 0);
}

static void nested(char *buf, int depth, int object, const char *inner)
{
    size_t n = 0;
    for (int i = 0; i < depth; i++)
        n += (size_t)sprintf(buf + n, "%s", object ? "{\"a\":" : "[");
    n += (size_t)sprintf(buf + n, "%s", inner);
    for (int i = 0; i < depth; i++)
        buf[n++] = object ? '}' : ']';
    buf[n] = '\0';
}

TEST(test_depth)
{
    static char buf[110000];
    cb_error err;
    nested(buf, JSON_SCAN_MAX_DEPTH, 0, "");
    CHECK_INT(check(buf, &err), 0);
    nested(buf, JSON_SCAN_MAX_DEPTH - 1, 0, "1"); /* the scalar is value 2048 */
    CHECK_INT(check(buf, &err), 0);
    nested(buf, JSON_SCAN_MAX_DEPTH, 0, "1");
    CHECK(strstr(error_of(buf), "column 2049: nested too deep") != NULL);
    nested(buf, JSON_SCAN_MAX_DEPTH + 1, 0, "");
    error_of(buf);
    nested(buf, JSON_SCAN_MAX_DEPTH - 1, 1, "{}");
    CHECK_INT(check(buf, &err), 0);
    nested(buf, JSON_SCAN_MAX_DEPTH, 1, "true");
    error_of(buf);
    nested(buf, 100000 / 6, 1, "1"); /* far deeper: still an error, not a crash */
    error_of(buf);
}

TEST(test_members_and_skip)
{
    const char *text = "{\"a\": 1, \"b\": {\"c\": [1, {\"d\": [[], {}]}], \"e\": \"}\"}, \"a\": 2, \"\\u0061\": 3, \"z\": [\"]\"]}";
    json_scan s;
    struct json_scan_value root, v;
    struct json_scan_str k;
    int64_t a[3];
    int na = 0;
    json_scan_init(&s, text, strlen(text));
    CHECK_INT(json_scan_value(&s, &root), 0);
    while (json_scan_member(&s, &k, &v) == 1) {
        if (json_scan_str_is(&k, "a") && v.type == JSON_SCAN_INTEGER && na < 3)
            a[na++] = v.u.integer; /* repeated keys come one by one, in order */
        if (json_scan_str_is(&k, "b")) {
            struct json_scan_str k2;
            struct json_scan_value v2;
            CHECK_INT(json_scan_member(&s, &k2, &v2), 1); /* "c": [...], then skip the rest of "b" */
            CHECK_INT(v2.type, JSON_SCAN_ARRAY);
            CHECK_INT(json_scan_skip(&s, &v2), 0);
            CHECK_INT(json_scan_skip(&s, &v), 0);
            continue;
        }
        CHECK_INT(json_scan_skip(&s, &v), 0);
    }
    CHECK_INT(json_scan_finish(&s), 0);
    CHECK_INT(na, 3);
    CHECK(na == 3 && a[0] == 1 && a[1] == 2 && a[2] == 3);
    CHECK_INT(s.members, 8);
    CHECK_INT(json_scan_skip(&s, &(struct json_scan_value){.type = JSON_SCAN_TRUE}), 0); /* scalars: nothing */

    /* a saved value read again with a scanner of its own */
    json_scan_init(&s, text, strlen(text));
    CHECK_INT(json_scan_value(&s, &root), 0);
    json_scan_member(&s, &k, &v);
    json_scan_member(&s, &k, &v);
    CHECK_INT(v.type, JSON_SCAN_OBJECT);
    const char *at = v.at;
    CHECK_INT(json_scan_skip(&s, &v), 0);
    json_scan again;
    json_scan_init(&again, at, strlen(at));
    CHECK_INT(json_scan_value(&again, &v), 0);
    CHECK(json_scan_member(&again, &k, &v) == 1 && json_scan_str_is(&k, "c"));

    /* json_scan_fail: well-formed but the wrong shape */
    json_scan_init(&s, "\n  5", 4);
    CHECK_INT(json_scan_value(&s, &v), 0);
    CHECK_INT(json_scan_fail(&s, v.at, "'[' or '{' expected"), CB_EINVALID_JSON);
    cb_error err;
    CHECK_INT(json_scan_error(&s, "body", &err), CB_EINVALID_JSON);
    CHECK_STR(err.message, "line 2, column 3: '[' or '{' expected");
    CHECK_INT(json_scan_finish(&s), CB_EINVALID_JSON); /* errors stick */
}

TEST(test_copy_and_compare)
{
    struct json_scan_value v;
    const char *text = "[\"ab\\u00e9\\ud83d\\ude00cd\"]"; /* "abé😀cd": 2 + 2 + 4 + 2 bytes */
    CHECK_INT(element(text, &v), 0);
    CHECK_INT(v.u.str.dlen, 10);
    char buf[16];
    static const char full[] = "ab\xc3\xa9\xf0\x9f\x98\x80" "cd";
    for (size_t cap = 1; cap <= sizeof buf; cap++) {
        memset(buf, 'x', sizeof buf);
        CHECK_INT(json_scan_copy(&v.u.str, buf, cap), 10);
        size_t n = cap - 1 < 10 ? cap - 1 : 10; /* cut at a byte, like snprintf */
        CHECK(memcmp(buf, full, n) == 0 && buf[n] == '\0');
    }
    CHECK_INT(json_scan_copy(&v.u.str, buf, 0), 10);
    CHECK(json_scan_str_is(&v.u.str, full));
    CHECK(!json_scan_str_is(&v.u.str, "ab\xc3\xa9\xf0\x9f\x98\x80" "cD"));
    CHECK(!json_scan_str_is(&v.u.str, "ab"));

    struct json_scan_value w;
    CHECK_INT(element("[\"ab\xc3\xa9\xf0\x9f\x98\x80" "cd\"]", &w), 0);
    CHECK(json_scan_str_eq(&v.u.str, &w.u.str) && json_scan_str_eq(&w.u.str, &v.u.str));
    CHECK_INT(element("[\"a\\\\b\"]", &w), 0);
    CHECK(json_scan_str_is(&w.u.str, "a\\b"));
    CHECK(!json_scan_str_is(&w.u.str, "a\\\\b"));
    struct json_scan_str lit = {"a\\\\b", 4, 4, 0}; /* a backslash in an unescaped string is a byte */
    CHECK(!json_scan_str_eq(&w.u.str, &lit));
}

TEST(test_error_positions)
{
    CHECK_STR(error_of("{\n  \"a\": tru\n}"), "line 2, column 8: invalid literal: true, false or null expected");
    CHECK_STR(error_of("[1, 2,\n 3,\n]"), "line 3, column 1: invalid token: a value expected");
    CHECK_STR(error_of("{\"a\" 1}"), "line 1, column 6: ':' expected");
    CHECK_STR(error_of("{\"a\": 1 \"b\": 2}"), "line 1, column 9: ',' or '}' expected");
    CHECK_STR(error_of("[\"\xc3\xa9\xc3\xa9\", x]"), "line 1, column 8: invalid token: a value expected");
    CHECK_STR(error_of("[1] x"), "line 1, column 5: end of input expected after the value");
    CHECK_STR(error_of("[1"), "line 1, column 3: ',' or ']' expected");
    CHECK_STR(error_of("[\"ab"), "line 1, column 5: unterminated string");
    CHECK_STR(error_of("[\"a\\qb\"]"), "line 1, column 4: invalid escape");
    CHECK_STR(error_of("\r\n\r\n[01]"), "line 3, column 3: invalid number: a leading zero");
}

TEST_MAIN(test_tokens, test_escapes, test_utf8, test_numbers, test_numbers_vs_strtod, test_depth,
          test_members_and_skip, test_copy_and_compare, test_error_positions)
