/* router — matches a request path against the route table. Linear in the
 * number of routes, which stays in the dozens; each comparison stops at the
 * first differing segment. */
#include "http_int.h"

#include <string.h>

/* Matches pattern against path segment by segment; {name} captures one
 * non-empty segment. Captures go into req only when commit is set. */
static int path_matches(http_request *req, const char *pattern, const char *path, int commit)
{
    int n = 0;
    while (*pattern && *path) {
        if (*pattern == '{') {
            const char *close = strchr(pattern, '}');
            const char *seg_end = strchr(path, '/');
            size_t seg_len = seg_end ? (size_t)(seg_end - path) : strlen(path);
            if (!close || seg_len == 0 || n >= HTTP_MAX_PARAMS)
                return 0;
            if (commit) {
                req->param_name[n] = arena_strndup(req->arena, pattern + 1, (size_t)(close - pattern - 1));
                req->param_value[n] = arena_strndup(req->arena, path, seg_len);
            }
            n++;
            pattern = close + 1;
            path += seg_len;
            continue;
        }
        if (*pattern != *path)
            return 0;
        pattern++;
        path++;
    }
    if (*pattern || *path)
        return 0;
    if (commit)
        req->nparams = n;
    return 1;
}

int http__route_match(http_request *req, char *allow, size_t allowlen)
{
    const struct http_options *o = &req->server->opt;
    const char *method = strcmp(req->method, "HEAD") == 0 ? "GET" : req->method;
    int wrong_method = 0;
    allow[0] = '\0';
    for (size_t i = 0; i < o->nroutes; i++) {
        const struct http_route *r = &o->routes[i];
        if (!path_matches(req, r->path, req->path, 0))
            continue;
        if (strcmp(r->method, method) == 0) {
            path_matches(req, r->path, req->path, 1);
            return (int)i;
        }
        wrong_method = 1;
        if (!strstr(allow, r->method)) {
            strncat(allow, *allow ? ", " : "", allowlen - strlen(allow) - 1);
            strncat(allow, r->method, allowlen - strlen(allow) - 1);
        }
    }
    return wrong_method ? HTTP_ROUTE_WRONG_METHOD : HTTP_ROUTE_NONE;
}
