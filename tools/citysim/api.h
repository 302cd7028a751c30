/* api — citybrain's public HTTP API as citysim uses it: the bearer key, JSON
 * in and out, and patience with an overloaded server (503 + Retry-After:
 * wait, send again). Counts what it saw for the status line.
 *
 * Owns one httpc; not thread-safe. The stop flag is borrowed: when it becomes
 * non-zero, waits end and calls fail with "interrupted". */
#ifndef CITYSIM_API_H
#define CITYSIM_API_H

#include <jansson.h>
#include <signal.h>
#include <stddef.h>

#include "httpc.h"

#define API_RETRY_MAX 60      /* 503 answers in a row before a call gives up */
#define API_RETRY_WAIT_MAX 30 /* seconds: a larger Retry-After is capped */

typedef struct api api;

struct api_counters {
    unsigned long long requests, http_503, transport_errors;
};

int api_open(const char *url, const char *key, volatile sig_atomic_t *stop, api **out, char *err, size_t errlen);
void api_free(api *a); /* NULL-safe */
const struct api_counters *api_counters(const api *a);

/* One request, repeated while the answer is 503. r as in httpc_request (the
 * caller frees it). Returns 0 with the final answer, or -1 with err. */
int api_call(api *a, const char *method, const char *path, const char *content_type, const char *body,
             size_t len, struct httpc_response *r, char *err, size_t errlen);

/* A JSON request (body borrowed, may be NULL) whose answer is parsed: returns
 * a new reference the caller decrefs, or NULL with err (transport, non-JSON).
 * *status is the HTTP status. */
json_t *api_json(api *a, const char *method, const char *path, json_t *body, int *status, char *err,
                 size_t errlen);

/* As api_call and api_json, presenting another key for this one request
 * (borrowed; NULL: the api's own key; "": no Authorization header, for the
 * public endpoints). */
int api_call_as(api *a, const char *key, const char *method, const char *path, const char *content_type,
                const char *body, size_t len, struct httpc_response *r, char *err, size_t errlen);
json_t *api_json_as(api *a, const char *key, const char *method, const char *path, json_t *body, int *status,
                    char *err, size_t errlen);

/* Sleeps s seconds unless the stop flag rises; returns non-zero if it did. */
int api_sleep(api *a, double s);

#endif
