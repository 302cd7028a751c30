/* xml — the .xml variants of the GeoReport documents: the same JSON the
 * .json variants send, written as elements. Element names come from our own
 * keys and the container table below; only text needs escaping. */
#include "open311/open311.h"

#include <string.h>

/* The element of one item of an array, by the array's element name. */
static const struct {
    const char *container, *item;
} items[] = {
    {"services", "service"},     {"service_requests", "request"}, {"errors", "error"},
    {"attributes", "attribute"}, {"values", "value"},             {"endpoints", "endpoint"},
    {"formats", "format"},
};

static const char *item_name(const char *container)
{
    for (size_t i = 0; i < sizeof items / sizeof items[0]; i++)
        if (strcmp(items[i].container, container) == 0)
            return items[i].item;
    return "item";
}

/* Escapes markup and drops what XML 1.0 cannot hold: C0 controls other than
 * tab, newline and carriage return (the input is UTF-8 from jansson). */
static void text(buf *out, const char *s)
{
    const char *run = s;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        const char *rep = NULL;
        switch (c) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = "&quot;"; break;
        case '\'': rep = "&apos;"; break;
        default:
            if (c >= 0x20 || c == '\t' || c == '\n' || c == '\r')
                continue;
            rep = "";
        }
        buf_append(out, run, (size_t)(s - run));
        buf_puts(out, rep);
        run = s + 1;
    }
    buf_append(out, run, (size_t)(s - run));
}

static void element(buf *out, const char *name, const json_t *v)
{
    if (json_is_null(v) || !v) {
        buf_printf(out, "<%s/>", name);
        return;
    }
    buf_printf(out, "<%s>", name);
    if (json_is_object(v)) {
        const char *k;
        const json_t *m;
        json_object_foreach((json_t *)v, k, m)
            element(out, k, m);
    } else if (json_is_array(v)) {
        size_t i;
        const json_t *m;
        const char *item = item_name(name);
        json_array_foreach(v, i, m)
            element(out, item, m);
    } else if (json_is_string(v)) {
        text(out, json_string_value(v));
    } else if (json_is_boolean(v)) {
        buf_puts(out, json_is_true(v) ? "true" : "false");
    } else if (json_is_integer(v)) {
        buf_printf(out, "%lld", (long long)json_integer_value(v));
    } else {
        buf_printf(out, "%.15g", json_real_value(v));
    }
    buf_printf(out, "</%s>", name);
}

void open311_xml(buf *out, const char *root, const json_t *v)
{
    buf_puts(out, "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n");
    element(out, root, v);
    buf_puts(out, "\n");
}
