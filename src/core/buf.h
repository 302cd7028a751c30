/* buf — a growable byte buffer for building text responses (metrics, CSV, logs).
 *
 * Appends are amortised O(1). A buf is owned by whoever declared it; buf_free
 * releases its memory. After an allocation failure the buf is marked failed,
 * later appends do nothing and buf_failed() says so: callers check once at the end. */
#ifndef CB_BUF_H
#define CB_BUF_H

#include <stddef.h>

typedef struct buf {
    char *data;   /* NUL-terminated when len > 0 */
    size_t len, cap;
    int failed;
} buf;

#define BUF_INIT {NULL, 0, 0, 0}

void buf_append(buf *b, const void *data, size_t len);
void buf_puts(buf *b, const char *s);
void buf_printf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int buf_failed(const buf *b);
void buf_free(buf *b);

#endif
