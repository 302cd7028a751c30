/* httpc — see httpc.h. */
#include "app/httpc.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int httpc_init(void)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

void httpc_cleanup(void)
{
    curl_global_cleanup();
}

static size_t on_body(char *data, size_t size, size_t n, void *ud)
{
    struct httpc_reply *r = ud;
    size_t add = size * n;
    char *p = realloc(r->body, r->len + add + 1);
    if (!p)
        return 0; /* aborts the transfer */
    memcpy(p + r->len, data, add);
    r->len += add;
    p[r->len] = '\0';
    r->body = p;
    return add;
}

int httpc_request(const char *method, const char *base, const char *path, const char *key, const char *json_body,
                  long timeout_s, struct httpc_reply *out, char *errbuf, size_t errlen)
{
    memset(out, 0, sizeof *out);
    int rc = -1;
    char *url = NULL, *auth = NULL;
    struct curl_slist *h = NULL;
    char cerr[CURL_ERROR_SIZE] = "";
    CURL *c = curl_easy_init();
    size_t blen = strlen(base);
    while (blen > 0 && base[blen - 1] == '/')
        blen--;
    url = malloc(blen + strlen(path) + 1);
    if (!c || !url) {
        snprintf(errbuf, errlen, "out of memory");
        goto out;
    }
    memcpy(url, base, blen);
    strcpy(url + blen, path);
    if (key && key[0]) {
        auth = malloc(strlen(key) + 32);
        if (!auth) {
            snprintf(errbuf, errlen, "out of memory");
            goto out;
        }
        sprintf(auth, "Authorization: Bearer %s", key);
        h = curl_slist_append(h, auth);
    }
    h = curl_slist_append(h, "Accept: application/json");
    if (json_body)
        h = curl_slist_append(h, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, timeout_s);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, timeout_s);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "citybrain-cli/" CB_VERSION);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, json_body ? json_body : "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)(json_body ? strlen(json_body) : 0));
    }
    CURLcode cc = curl_easy_perform(c);
    if (cc != CURLE_OK) {
        snprintf(errbuf, errlen, "%s: %s", url, cerr[0] ? cerr : curl_easy_strerror(cc));
        httpc_reply_free(out);
        goto out;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
    if (!out->body) {
        out->body = calloc(1, 1);
        if (!out->body) {
            snprintf(errbuf, errlen, "out of memory");
            goto out;
        }
    }
    rc = 0;
out:
    curl_slist_free_all(h);
    if (c)
        curl_easy_cleanup(c);
    free(auth);
    free(url);
    return rc;
}

void httpc_reply_free(struct httpc_reply *r)
{
    free(r->body);
    memset(r, 0, sizeof *r);
}

char *httpc_escape(const char *s)
{
    char *e = curl_easy_escape(NULL, s, 0);
    char *copy = e ? strdup(e) : NULL;
    curl_free(e);
    return copy;
}

int httpc_query_add(char **query, const char *name, const char *value)
{
    char *e = httpc_escape(value);
    if (!e)
        return -1;
    size_t old = *query ? strlen(*query) : 0;
    char *q = realloc(*query, old + strlen(name) + strlen(e) + 3);
    if (!q) {
        free(e);
        return -1;
    }
    sprintf(q + old, "%c%s=%s", old ? '&' : '?', name, e);
    *query = q;
    free(e);
    return 0;
}
