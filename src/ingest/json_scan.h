/* json_scan — a strict, zero-copy JSON reader (RFC 8259) for request bodies:
 * the caller pulls one value at a time, walks into the objects and arrays it
 * wants and skips the rest. Nothing is allocated and nothing is copied:
 * strings are reported as ranges of the text and decoded on demand into the
 * caller's buffer. It replaces a whole jansson tree where the body has a known
 * shape (ingest batches, telemetry): jansson spends a malloc per value and a
 * hash per object that such a walk never needs.
 *
 * Accepted exactly as jansson 2.14's json_loadb (flags JSON_DECODE_ANY) would:
 * - whitespace is space, tab, \n, \r; literals are true, false, null;
 * - strings hold valid UTF-8 only (no overlong forms, surrogates or code
 *   points above U+10FFFF) and no raw byte below 0x20; escapes are \" \\ \/ \b
 *   \f \n \r \t and \uXXXX, a surrogate pair for code points above U+FFFF, no
 *   lone surrogate and no \u0000 (so decoded strings never hold a NUL);
 * - numbers: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?; without a fraction
 *   or exponent an integer, which must fit an int64; otherwise a real, the
 *   double strtod gives in the C locale, which must be finite (an underflow to
 *   0 or a subnormal is fine);
 * - at most JSON_SCAN_MAX_DEPTH nested values (a scalar counts: "[[1]]" is 3);
 * - any value at the top; nothing but whitespace after it.
 * (jansson without JSON_DECODE_ANY wants an object or array at the top: the
 * caller checks the root's type. jansson also drops a NUL byte right after a
 * number or literal; here a NUL byte outside a string is an error, as RFC 8259
 * says.) Repeated object keys are reported one by one in text order; jansson
 * keeps the last value at the first key's place, and callers that need that
 * apply it themselves.
 *
 * Errors stick: the first one stops the scan, and json_scan_error tells where
 * (line and column, counted in characters from 1) and what.
 *
 * Use:
 *   json_scan s; struct json_scan_value v; struct json_scan_str k;
 *   json_scan_init(&s, text, len);
 *   if (json_scan_value(&s, &v) == 0 && v.type == JSON_SCAN_OBJECT)
 *       while (json_scan_member(&s, &k, &v) == 1)
 *           json_scan_skip(&s, &v);   or walk into v with member/element
 *   json_scan_finish(&s)  ->  0, or CB_EINVALID_JSON: json_scan_error(&s, ...)
 * Every object or array a call returns is open: the caller walks it to its end
 * (member/element returning 0) or skips it, before going on outside it.
 *
 * Cost: one pass over the bytes read, O(1) state (a bit per open container).
 * Numbers of up to 19 significant digits with a power of ten within +-22 are
 * converted without strtod (Clinger's fast path: exact); others take strtod_l.
 * Not thread-safe per scanner; scanners are independent. */
#ifndef CB_JSON_SCAN_H
#define CB_JSON_SCAN_H

#include "core/err.h"

#include <stddef.h>
#include <stdint.h>

#define JSON_SCAN_MAX_DEPTH 2048 /* jansson's JSON_PARSER_MAX_DEPTH */

enum json_scan_type {
    JSON_SCAN_NULL = 1,
    JSON_SCAN_FALSE,
    JSON_SCAN_TRUE,
    JSON_SCAN_INTEGER,
    JSON_SCAN_REAL,
    JSON_SCAN_STRING,
    JSON_SCAN_ARRAY,
    JSON_SCAN_OBJECT,
};

/* A string as it stands in the text, between its quotes: ptr points into the
 * text (not NUL-terminated). dlen is its length once decoded (== len when
 * there are no escapes). */
struct json_scan_str {
    const char *ptr;
    size_t len, dlen;
    int escaped;
};

struct json_scan_value {
    enum json_scan_type type;
    const char *at; /* its first byte in the text */
    union {
        int64_t integer;          /* JSON_SCAN_INTEGER */
        double real;              /* JSON_SCAN_REAL, finite */
        struct json_scan_str str; /* JSON_SCAN_STRING */
    } u;
};

/* Scanner state; lives on the caller's stack. The text is borrowed and must
 * outlive every string and value reported from it. */
typedef struct json_scan {
    const char *text, *pos, *end;
    unsigned depth;              /* containers open around pos */
    int fresh;                   /* just after '[' or '{' */
    size_t members;              /* object members read so far */
    int error;                   /* 0 or CB_EINVALID_JSON (CB_ENOMEM: see .c) */
    const char *error_at;        /* where in the text */
    const char *error_msg;       /* a static text */
    unsigned char objects[JSON_SCAN_MAX_DEPTH / 8]; /* bit per depth: object or array */
} json_scan;

void json_scan_init(json_scan *s, const char *text, size_t len);

/* The next value where a whole value stands: the document's root, or a value
 * the caller reads again from a saved json_scan_value's `at` with a scanner
 * of its own. Returns 0 or the error code. */
int json_scan_value(json_scan *s, struct json_scan_value *v);

/* The next member of the innermost open container, an object: returns 1 with
 * its key and value, 0 once the object's '}' is read, or the error code. */
int json_scan_member(json_scan *s, struct json_scan_str *key, struct json_scan_value *v);

/* The next element of the innermost open container, an array: 1, 0 once ']'
 * is read, or the error code. */
int json_scan_element(json_scan *s, struct json_scan_value *v);

/* Reads (and checks) the rest of v when it is the innermost open container;
 * nothing for a scalar. Returns 0 or the error code. */
int json_scan_skip(json_scan *s, const struct json_scan_value *v);

/* After the root value: nothing but whitespace may follow. 0 or the error. */
int json_scan_finish(json_scan *s);

/* Fails the scan at `at` (a place in the text) with msg, a static text: for
 * a caller that finds well-formed JSON of the wrong shape. Returns the code
 * (the first error stays when there was one). */
int json_scan_fail(json_scan *s, const char *at, const char *msg);

/* Fills err with the scanner's error: code, field, and a message
 * "line L, column C: what". Returns the code. */
int json_scan_error(const json_scan *s, const char *field, cb_error *err);

/* Decodes str into buf like snprintf: at most cap - 1 bytes (cut at a byte,
 * not a character) and a NUL, when cap > 0. Returns str->dlen. */
size_t json_scan_copy(const struct json_scan_str *str, char *buf, size_t cap);

/* 1 when the decoded strings are equal (or equal to the NUL-terminated lit). */
int json_scan_str_eq(const struct json_scan_str *a, const struct json_scan_str *b);
int json_scan_str_is(const struct json_scan_str *a, const char *lit);

#endif
