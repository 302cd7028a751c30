/* buf — a growable byte string; see buf.h. */
#include "buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void buf_init(buf *b)
{
    memset(b, 0, sizeof *b);
}

void buf_free(buf *b)
{
    free(b->data);
    buf_init(b);
}

void buf_reset(buf *b)
{
    b->len = 0;
    b->oom = 0;
    if (b->data)
        b->data[0] = 0;
}

int buf_ok(const buf *b)
{
    return !b->oom;
}

char *buf_reserve(buf *b, size_t n)
{
    if (b->oom)
        return NULL;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d) {
            b->oom = 1;
            return NULL;
        }
        b->data = d;
        b->cap = cap;
    }
    return b->data + b->len;
}

void buf_append(buf *b, const void *p, size_t n)
{
    char *at = buf_reserve(b, n);
    if (!at)
        return;
    memcpy(at, p, n);
    b->len += n;
    b->data[b->len] = 0;
}

void buf_puts(buf *b, const char *s)
{
    buf_append(b, s, strlen(s));
}

void buf_printf(buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *at = n < 0 ? NULL : buf_reserve(b, (size_t)n);
    if (!at)
        return;
    va_start(ap, fmt);
    vsnprintf(at, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}
