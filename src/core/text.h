/* text — putting text we did not write into JSON. jansson refuses strings
 * that are not UTF-8, and error messages quote input (a name cut at 64 bytes
 * inside a character, raw line protocol bytes); rather than lose the message,
 * such text goes out with its non-ASCII bytes replaced by '?'. */
#ifndef CB_TEXT_H
#define CB_TEXT_H

#include <jansson.h>

/* A JSON string of text, lossy only when text is not UTF-8; NULL only when
 * out of memory. The caller owns the result. */
json_t *text_json(const char *text);

#endif
