/* fuzz_json_scan — libFuzzer target for ingest/json_scan, cross-checked
 * against jansson (json_loadb with JSON_DECODE_ANY, the rules json_scan.h
 * copies): both accept or both reject, and what json_scan reads, rebuilt as a
 * jansson tree (repeated keys: last value at the first key's place), equals
 * jansson's tree bit for bit (reals compared as bits, objects in order).
 *
 * Inputs with a NUL byte are not compared: jansson drops a NUL right after a
 * number or literal, where json_scan (and RFC 8259) refuse it. Beyond that:
 * a validating skip of the whole document agrees with the walk, errors name a
 * line and column inside the text, and decoded strings survive
 * json_scan_copy's truncation and json_scan_str_eq. */
#include "ingest/json_scan.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "require.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The decoded string, malloc'd; checks copy's truncation and str_eq on it. */
static char *decode(const struct json_scan_str *str)
{
    char *full = malloc(str->dlen + 1), cut[8];
    REQUIRE(full);
    REQUIRE(json_scan_copy(str, full, str->dlen + 1) == str->dlen);
    REQUIRE(strlen(full) == str->dlen); /* no NUL inside */
    size_t cap = str->dlen % sizeof cut + 1;
    json_scan_copy(str, cut, cap);
    REQUIRE(strlen(cut) == cap - 1 && memcmp(cut, full, cap - 1) == 0);
    REQUIRE(json_scan_str_is(str, full));
    if (str->dlen > 0) {
        full[0] ^= 1;
        REQUIRE(!json_scan_str_is(str, full));
        full[0] ^= 1;
    }
    return full;
}

static json_t *build(json_scan *s, const struct json_scan_value *v);

static json_t *build_array(json_scan *s)
{
    json_t *a = json_array();
    struct json_scan_value x;
    int rc;
    while ((rc = json_scan_element(s, &x)) == 1) {
        json_t *j = build(s, &x);
        if (!j)
            break;
        json_array_append_new(a, j);
    }
    if (rc != 0) {
        json_decref(a);
        return NULL;
    }
    return a;
}

static json_t *build_object(json_scan *s)
{
    json_t *o = json_object();
    struct json_scan_str key;
    struct json_scan_value x;
    int rc;
    while ((rc = json_scan_member(s, &key, &x)) == 1) {
        char *k = decode(&key);
        json_t *j = build(s, &x);
        if (j)
            REQUIRE(json_object_setn_new(o, k, key.dlen, j) == 0);
        free(k);
        if (!j)
            break;
    }
    if (rc != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* v as a jansson value, or NULL once the scanner fails. */
static json_t *build(json_scan *s, const struct json_scan_value *v)
{
    json_t *j = NULL;
    char *text;
    switch (v->type) {
    case JSON_SCAN_NULL: return json_null();
    case JSON_SCAN_TRUE: return json_true();
    case JSON_SCAN_FALSE: return json_false();
    case JSON_SCAN_INTEGER: return json_integer(v->u.integer);
    case JSON_SCAN_REAL: return json_real(v->u.real);
    case JSON_SCAN_STRING:
        text = decode(&v->u.str);
        j = json_stringn(text, v->u.str.dlen);
        REQUIRE(j); /* valid UTF-8 */
        free(text);
        return j;
    case JSON_SCAN_ARRAY: return build_array(s);
    case JSON_SCAN_OBJECT: return build_object(s);
    }
    REQUIRE(!"unknown type");
    return NULL;
}

static int same(json_t *a, json_t *b)
{
    if (json_typeof(a) != json_typeof(b))
        return 0;
    switch (json_typeof(a)) {
    case JSON_INTEGER: return json_integer_value(a) == json_integer_value(b);
    case JSON_REAL: {
        double x = json_real_value(a), y = json_real_value(b);
        return memcmp(&x, &y, sizeof x) == 0;
    }
    case JSON_STRING:
        return json_string_length(a) == json_string_length(b) &&
               memcmp(json_string_value(a), json_string_value(b), json_string_length(a)) == 0;
    case JSON_ARRAY:
        if (json_array_size(a) != json_array_size(b))
            return 0;
        for (size_t i = 0; i < json_array_size(a); i++)
            if (!same(json_array_get(a, i), json_array_get(b, i)))
                return 0;
        return 1;
    case JSON_OBJECT: {
        if (json_object_size(a) != json_object_size(b))
            return 0;
        void *ia = json_object_iter(a), *ib = json_object_iter(b);
        for (; ia && ib; ia = json_object_iter_next(a, ia), ib = json_object_iter_next(b, ib))
            if (strcmp(json_object_iter_key(ia), json_object_iter_key(ib)) != 0 ||
                !same(json_object_iter_value(ia), json_object_iter_value(ib)))
                return 0;
        return !ia && !ib;
    }
    default: return 1; /* true, false, null */
    }
}

/* Checks an error's position and text; returns its message for comparing. */
static void check_error(const json_scan *s, const char *text, size_t size, cb_error *err)
{
    REQUIRE(s->error_at >= text && s->error_at <= text + size);
    REQUIRE(json_scan_error(s, "body", err) == CB_EINVALID_JSON || err->code == CB_ENOMEM);
    REQUIRE(strncmp(err->message, "line ", 5) == 0 && strstr(err->message, ", column ") != NULL);
    REQUIRE(strcmp(err->field, "body") == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    json_scan walk, skip;
    struct json_scan_value root, root2;
    cb_error werr, serr;

    json_scan_init(&walk, text, size);
    json_t *mine = json_scan_value(&walk, &root) == 0 ? build(&walk, &root) : NULL;
    int ok = mine && json_scan_finish(&walk) == 0;

    json_scan_init(&skip, text, size);
    int ok2 = json_scan_value(&skip, &root2) == 0 && json_scan_skip(&skip, &root2) == 0 && json_scan_finish(&skip) == 0;
    REQUIRE(ok == ok2);
    if (!ok) {
        check_error(&walk, text, size, &werr);
        check_error(&skip, text, size, &serr);
        REQUIRE(walk.error_at == skip.error_at && strcmp(werr.message, serr.message) == 0);
    } else {
        REQUIRE(walk.members == skip.members);
    }

    if (!memchr(data, 0, size)) {
        json_error_t jerr;
        json_t *theirs = json_loadb(text, size, JSON_DECODE_ANY, &jerr);
        if ((theirs != NULL) != ok)
            fprintf(stderr, "jansson %s (%s), json_scan %s (%s)\n", theirs ? "accepts" : "rejects",
                    theirs ? "" : jerr.text, ok ? "accepts" : "rejects", ok ? "" : werr.message);
        REQUIRE((theirs != NULL) == ok);
        if (ok)
            REQUIRE(same(mine, theirs));
        json_decref(theirs);
    }
    json_decref(mine);
    return 0;
}
