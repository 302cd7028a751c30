/* httpc — a minimal HTTP/1.1 client over plain sockets with keep-alive.
 *
 * One connection to one server (http:// only), reused across requests and
 * reopened when the server closed it. A request on a reused connection that
 * fails before any byte of the answer is sent again once on a new connection
 * (the server closed the idle socket). Answers with Content-Length or chunked
 * bodies are read whole. Not thread-safe: one httpc per thread.
 *
 * Blocking I/O with a timeout (HTTPC_TIMEOUT_S). A signal without SA_RESTART
 * interrupts a request: it fails with "interrupted". */
#ifndef CITYSIM_HTTPC_H
#define CITYSIM_HTTPC_H

#include <stddef.h>

#include "buf.h"

#define HTTPC_TIMEOUT_S 60

typedef struct httpc httpc;

struct httpc_response {
    int status;
    int retry_after; /* seconds from Retry-After, -1 when absent */
    buf body;        /* owned; httpc_response_free */
};

/* Parses url ("http://host[:port][/]") into a new client (not yet connected);
 * *out is freed by httpc_free. Returns 0, or -1 with err filled. */
int httpc_open(const char *url, httpc **out, char *err, size_t errlen);
void httpc_free(httpc *c); /* NULL-safe */
/* The value for an "Authorization: Bearer" header on every request, copied;
 * NULL for none. */
int httpc_set_bearer(httpc *c, const char *token);

/* Sends one request (body may be NULL) and reads the answer into r, which
 * the caller frees with httpc_response_free (also after a failure). Returns
 * 0 when an answer arrived, whatever its status; -1 with err on a transport
 * failure. */
int httpc_request(httpc *c, const char *method, const char *path, const char *content_type,
                  const char *body, size_t body_len, struct httpc_response *r, char *err, size_t errlen);
void httpc_response_free(struct httpc_response *r);

#endif
