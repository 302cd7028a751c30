/* api — citybrain calls with the key, JSON and 503 back-off; see api.h. */
#include "api.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

struct api {
    httpc *http;
    char *key; /* owned; the key every request presents unless told otherwise */
    volatile sig_atomic_t *stop;
    struct api_counters n;
};

int api_open(const char *url, const char *key, volatile sig_atomic_t *stop, api **out, char *err, size_t errlen)
{
    api *a = calloc(1, sizeof *a);
    if (!a)
        return snprintf(err, errlen, "out of memory"), -1;
    if (httpc_open(url, &a->http, err, errlen) != 0) {
        free(a);
        return -1;
    }
    if (!(a->key = strdup(key)) || httpc_set_bearer(a->http, key) != 0) {
        api_free(a);
        return snprintf(err, errlen, "out of memory"), -1;
    }
    a->stop = stop;
    *out = a;
    return 0;
}

void api_free(api *a)
{
    if (!a)
        return;
    httpc_free(a->http);
    free(a->key);
    free(a);
}

const struct api_counters *api_counters(const api *a)
{
    return &a->n;
}

int api_sleep(api *a, double s)
{
    struct timespec left = {.tv_sec = (time_t)s, .tv_nsec = (long)((s - (double)(time_t)s) * 1e9)};
    /* Short steps, so a stop request is seen within 100 ms even if its signal
     * arrived just before the sleep began. */
    while (!*a->stop && (left.tv_sec > 0 || left.tv_nsec > 0)) {
        struct timespec step = {0, 100000000}, rem;
        if (left.tv_sec == 0 && left.tv_nsec < step.tv_nsec)
            step = left;
        if (nanosleep(&step, &rem) != 0 && errno == EINTR)
            continue;
        left.tv_nsec -= step.tv_nsec;
        if (left.tv_nsec < 0) {
            left.tv_nsec += 1000000000L;
            left.tv_sec--;
        }
    }
    return *a->stop != 0;
}

int api_call(api *a, const char *method, const char *path, const char *content_type, const char *body,
             size_t len, struct httpc_response *r, char *err, size_t errlen)
{
    memset(r, 0, sizeof *r); /* freeable whatever happens */
    for (int attempt = 0;; attempt++) {
        if (*a->stop)
            return snprintf(err, errlen, "interrupted"), -1;
        a->n.requests++;
        if (httpc_request(a->http, method, path, content_type, body, len, r, err, errlen) != 0) {
            a->n.transport_errors++;
            return -1;
        }
        if (r->status != 503 || attempt + 1 >= API_RETRY_MAX)
            return 0;
        a->n.http_503++;
        int wait = r->retry_after > 0 ? r->retry_after : 1;
        if (wait > API_RETRY_WAIT_MAX)
            wait = API_RETRY_WAIT_MAX;
        httpc_response_free(r);
        if (api_sleep(a, wait))
            return snprintf(err, errlen, "interrupted"), -1;
    }
}

int api_call_as(api *a, const char *key, const char *method, const char *path, const char *content_type,
                const char *body, size_t len, struct httpc_response *r, char *err, size_t errlen)
{
    memset(r, 0, sizeof *r);
    if (key && httpc_set_bearer(a->http, *key ? key : NULL) != 0)
        return snprintf(err, errlen, "out of memory"), -1;
    int rc = api_call(a, method, path, content_type, body, len, r, err, errlen);
    if (key && httpc_set_bearer(a->http, a->key) != 0 && rc == 0) {
        httpc_response_free(r);
        return snprintf(err, errlen, "out of memory"), -1;
    }
    return rc;
}

json_t *api_json(api *a, const char *method, const char *path, json_t *body, int *status, char *err,
                 size_t errlen)
{
    return api_json_as(a, NULL, method, path, body, status, err, errlen);
}

json_t *api_json_as(api *a, const char *key, const char *method, const char *path, json_t *body, int *status,
                    char *err, size_t errlen)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    if (body && !text)
        return snprintf(err, errlen, "out of memory"), NULL;
    struct httpc_response r;
    int rc = api_call_as(a, key, method, path, "application/json", text, text ? strlen(text) : 0, &r, err, errlen);
    free(text);
    json_t *out = NULL;
    if (rc == 0) {
        json_error_t je;
        *status = r.status;
        out = json_loadb(r.body.data, r.body.len, 0, &je);
        if (!out)
            snprintf(err, errlen, "%s %s: HTTP %d, not JSON: %.200s", method, path, r.status, r.body.data);
    }
    httpc_response_free(&r);
    return out;
}
