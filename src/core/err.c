/* err — the tables behind cb_strerror() and friends; see err.h. */
#include "core/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

struct err_row {
    const char *wire;
    int http;
    const char *message;
};

static const struct err_row err_rows[CB_ERR_COUNT] = {
#define CB_ERR_ROW(name, wire, http, msg) {wire, http, msg},
    CB_ERR_MAP(CB_ERR_ROW)
#undef CB_ERR_ROW
};

static const struct err_row *err_row_of(int code)
{
    if (code >= 0 || code < -CB_ERR_COUNT)
        return NULL;
    return &err_rows[-code - 1];
}

int cb_err_valid(int code)
{
    return code == 0 || err_row_of(code) != NULL;
}

const char *cb_strerror(int code)
{
    const struct err_row *r = err_row_of(code);
    if (code == 0)
        return "ok";
    return r ? r->message : "unknown error";
}

const char *cb_err_name(int code)
{
    const struct err_row *r = err_row_of(code);
    if (code == 0)
        return "ok";
    return r ? r->wire : "internal";
}

int cb_err_http_status(int code)
{
    const struct err_row *r = err_row_of(code);
    if (code == 0)
        return 200;
    return r ? r->http : 500;
}

void cb_error_clear(cb_error *err)
{
    if (!err)
        return;
    err->code = 0;
    err->field[0] = '\0';
    err->message[0] = '\0';
}

int cb_error_set(cb_error *err, int code, const char *field, const char *fmt, ...)
{
    if (!err)
        return code;
    err->code = code;
    snprintf(err->field, sizeof err->field, "%s", field ? field : "");
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    } else {
        snprintf(err->message, sizeof err->message, "%s", cb_strerror(code));
    }
    return code;
}
