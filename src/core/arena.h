/* arena — request-scoped bump allocation (nginx pools): many small allocations,
 * one free at the end of a request or an ingest batch.
 *
 * Cost: arena_alloc is O(1) amortised; blocks grow geometrically; nothing is
 * freed before arena_destroy/arena_reset. An arena is owned by whoever created
 * it; memory it returns is owned by the arena. */
#ifndef CB_ARENA_H
#define CB_ARENA_H

#include <stddef.h>

typedef struct arena arena;

arena *arena_create(size_t first_block); /* NULL when out of memory */
void arena_destroy(arena *a);            /* NULL-safe */
void arena_reset(arena *a);              /* frees all but the first block */

void *arena_alloc(arena *a, size_t n);   /* 16-byte aligned; NULL when out of memory */
char *arena_strndup(arena *a, const char *s, size_t n); /* NUL-terminated copy */
char *arena_strdup(arena *a, const char *s);
char *arena_printf(arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
size_t arena_used(const arena *a);       /* bytes handed out, for tests and metrics */

#endif
