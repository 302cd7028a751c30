/* media — photos attached to cases and their steps: JPEG, PNG or WebP files
 * stored content-addressed under DATA_DIR/media as <sha256>.<ext>, so the
 * same photo uploaded twice is one file and a name can never point at
 * another file. Served at /media/<name>. */
#ifndef CB_MEDIA_H
#define CB_MEDIA_H

#include "core/err.h"

#include <stddef.h>

#define MEDIA_NAME_MAX 80 /* 64 hex digits + ".webp" + NUL, with room */

/* Checks the type (content_type and the file's magic bytes must agree) and
 * size (<= max), then stores data; name receives "<sha256>.jpg". */
int media_store(const char *data_dir, const char *content_type, const void *data, size_t len, long long max,
                char name[MEDIA_NAME_MAX], cb_error *err);

/* Reads a stored file; *data is malloc'd (caller frees), *content_type static.
 * CB_ENOT_FOUND for a name that is not one media_store gives out. */
int media_load(const char *data_dir, const char *name, char **data, size_t *len, const char **content_type,
               cb_error *err);

#endif
