/* fuzz_open311_form — the Open311 POST body parser must accept or refuse any
 * bytes without crashing; what it accepts is at most OPEN311_FORM_MAX_PAIRS
 * pairs of NUL-free UTF-8 text, and encoding those pairs again and parsing
 * the result gives the same pairs (the decoder loses nothing it keeps). */
#include "open311/open311.h"

#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static void encode(buf *out, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || strchr("-_.~", c))
            buf_append(out, s, 1);
        else
            buf_printf(out, "%%%02X", c);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct open311_form f, g;
    cb_error err;
    if (open311_form_parse((const char *)data, size, &f, &err) != 0) {
        assert(f.n == 0);
        open311_form_free(&f);
        return 0;
    }
    assert(f.n <= OPEN311_FORM_MAX_PAIRS);
    buf again = BUF_INIT;
    for (size_t i = 0; i < f.n; i++) {
        if (i)
            buf_puts(&again, "&");
        encode(&again, f.name[i]);
        buf_puts(&again, "=");
        encode(&again, f.value[i]);
    }
    int rc = open311_form_parse(again.data ? again.data : "", again.len, &g, &err);
    assert(rc == 0);
    /* empty names and values are kept; an empty pair ("=") encodes back as "=" and stays */
    assert(g.n == f.n);
    for (size_t i = 0; i < f.n; i++)
        assert(strcmp(f.name[i], g.name[i]) == 0 && strcmp(f.value[i], g.value[i]) == 0);
    open311_form_free(&g);
    open311_form_free(&f);
    buf_free(&again);
    return 0;
}
