/* form — application/x-www-form-urlencoded, the body format of an Open311
 * POST. One pass decodes in place into a copy of the body: decoded text is
 * never longer than its encoding, so names and values fit in len + 1 bytes
 * and the pairs point into that one buffer. */
#include "open311/open311.h"

#include <stdlib.h>
#include <string.h>

static int hex(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* 1 if s[0..n) is well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF). */
static int utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t len;
        unsigned min, cp;
        if (c < 0x80) {
            i++;
            continue;
        }
        if ((c & 0xE0) == 0xC0)
            len = 2, min = 0x80, cp = c & 0x1F;
        else if ((c & 0xF0) == 0xE0)
            len = 3, min = 0x800, cp = c & 0x0F;
        else if ((c & 0xF8) == 0xF0)
            len = 4, min = 0x10000, cp = c & 0x07;
        else
            return 0;
        if (i + len > n)
            return 0;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += len;
    }
    return 1;
}

/* Decodes src[0..n) into dst (NUL-terminated); returns the decoded length or
 * -1 for a bad escape or a NUL byte. */
static long decode(const char *src, size_t n, char *dst)
{
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)src[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            int hi = i + 2 < n ? hex((unsigned char)src[i + 1]) : -1;
            int lo = i + 2 < n ? hex((unsigned char)src[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                return -1;
            c = hi * 16 + lo;
            i += 2;
        }
        if (c == 0)
            return -1;
        dst[j++] = (char)c;
    }
    dst[j] = '\0';
    return (long)j;
}

void open311_form_free(struct open311_form *f)
{
    if (!f)
        return;
    free(f->name);
    free(f->value);
    free(f->buf);
    memset(f, 0, sizeof *f);
}

static int fail(struct open311_form *f, cb_error *err, size_t pair, const char *what)
{
    open311_form_free(f);
    return cb_error_set(err, CB_EINVALID_FIELD, "body", "form pair %zu: %s", pair + 1, what);
}

int open311_form_parse(const char *body, size_t len, struct open311_form *out, cb_error *err)
{
    memset(out, 0, sizeof *out);
    if (len == 0)
        return 0;
    size_t pairs = 1;
    for (size_t i = 0; i < len; i++)
        pairs += body[i] == '&';
    if (pairs > OPEN311_FORM_MAX_PAIRS * 4) /* even the empty ones: a bound on the work */
        return fail(out, err, OPEN311_FORM_MAX_PAIRS, "too many pairs");
    out->buf = malloc(len + 1);
    out->name = malloc(pairs * sizeof *out->name);
    out->value = malloc(pairs * sizeof *out->value);
    if (!out->buf || !out->name || !out->value) {
        open311_form_free(out);
        return cb_error_set(err, CB_ENOMEM, "body", "form of %zu bytes", len);
    }
    char *dst = out->buf;
    size_t start = 0, index = 0;
    while (start <= len) {
        const char *amp = memchr(body + start, '&', len - start);
        size_t end = amp ? (size_t)(amp - body) : len;
        if (end > start) {
            if (out->n == OPEN311_FORM_MAX_PAIRS)
                return fail(out, err, index, "too many pairs");
            const char *eq = memchr(body + start, '=', end - start);
            size_t nlen = eq ? (size_t)(eq - body) - start : end - start;
            long dn = decode(body + start, nlen, dst);
            if (dn < 0 || !utf8_valid((unsigned char *)dst, (size_t)dn))
                return fail(out, err, index, "the name is not %-encoded UTF-8");
            out->name[out->n] = dst;
            dst += dn + 1;
            if (eq) {
                long dv = decode(eq + 1, end - nlen - start - 1, dst);
                if (dv < 0 || !utf8_valid((unsigned char *)dst, (size_t)dv))
                    return fail(out, err, index, "the value is not %-encoded UTF-8");
                out->value[out->n] = dst;
                dst += dv + 1;
            } else {
                out->value[out->n] = "";
            }
            out->n++;
            index++;
        }
        start = end + 1;
    }
    return 0;
}

const char *open311_form_get(const struct open311_form *f, const char *name)
{
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->name[i], name) == 0)
            return f->value[i];
    return NULL;
}
