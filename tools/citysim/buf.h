/* buf — a growable byte string for request bodies and responses.
 *
 * The bytes are always NUL-terminated (data[len] == 0), so a body can be
 * handed to string functions. The struct owns data; buf_free releases it.
 * Appends are amortised O(n); an allocation failure sets oom, later appends
 * do nothing, and the caller checks buf_ok() once at the end. */
#ifndef CITYSIM_BUF_H
#define CITYSIM_BUF_H

#include <stddef.h>

typedef struct {
    char *data;
    size_t len, cap;
    int oom;
} buf;

void buf_init(buf *b);
void buf_free(buf *b);
void buf_reset(buf *b); /* empty and usable again (oom cleared), keeps the memory */
int buf_ok(const buf *b);
void buf_append(buf *b, const void *p, size_t n);
void buf_puts(buf *b, const char *s);
void buf_printf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Makes room for n more bytes; returns the place to write them or NULL. */
char *buf_reserve(buf *b, size_t n);

#endif
