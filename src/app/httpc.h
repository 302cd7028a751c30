/* httpc — the CLI's narrow HTTP client (libcurl): one JSON request to a
 * running server with a bearer key, the status and body back. Not for the
 * server itself (webhooks have their own sender in src/events/webhook.c). */
#ifndef CB_APP_HTTPC_H
#define CB_APP_HTTPC_H

#include <stddef.h>

struct httpc_reply {
    long status; /* HTTP status; 0 when no answer came */
    char *body;  /* NUL-terminated, owned: httpc_reply_free */
    size_t len;
};

/* Once per process around all requests (curl_global_init/cleanup). */
int httpc_init(void);
void httpc_cleanup(void);

/* Sends METHOD base+path (path already escaped) with `Authorization: Bearer key`
 * when key is set and json_body (may be NULL) as application/json. Returns 0
 * when an answer came (any status, *out filled) or -1 on a network error
 * (message in errbuf, *out empty). timeout_s bounds the whole exchange. */
int httpc_request(const char *method, const char *base, const char *path, const char *key, const char *json_body,
                  long timeout_s, struct httpc_reply *out, char *errbuf, size_t errlen);
void httpc_reply_free(struct httpc_reply *r);

/* Appends `name=value` (value URL-escaped) to *query with '?' or '&'; the
 * string is malloc'ed and grown; returns -1 on allocation failure. */
int httpc_query_add(char **query, const char *name, const char *value);

/* URL-escapes s into a new malloc'ed string (NULL on failure). */
char *httpc_escape(const char *s);

#endif
