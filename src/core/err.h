/* err — citybrain's one error table.
 *
 * Every fallible function returns 0 or a negative CB_E* code and, when the
 * caller passes a cb_error, fills it with the detail (which field, what was
 * wrong). The X-macro table below generates the enum, the names used in JSON
 * error bodies, the HTTP status of each code and `citybrain errors`. */
#ifndef CB_ERR_H
#define CB_ERR_H

#include <stddef.h>

/*  X(enum suffix, wire name,          HTTP, default message) */
#define CB_ERR_MAP(X)                                                              \
    X(INVALID_FIELD,   "invalid_field",     400, "a field has an invalid value")   \
    X(MISSING_FIELD,   "missing_field",     400, "a required field is missing")    \
    X(INVALID_JSON,    "invalid_json",      400, "the body is not valid JSON")     \
    X(BAD_REQUEST,     "bad_request",       400, "the request is malformed")       \
    X(UNAUTHORIZED,    "unauthorized",      401, "a valid API key is required")    \
    X(FORBIDDEN,       "forbidden",         403, "your role may not do this")      \
    X(NOT_FOUND,       "not_found",         404, "no such resource")               \
    X(METHOD,          "method_not_allowed",405, "method not allowed here")        \
    X(CONFLICT,        "conflict",          409, "conflicts with the current state")\
    X(TOO_LARGE,       "payload_too_large", 413, "the request body is too large")  \
    X(MEDIA_TYPE,      "unsupported_media_type", 415, "unsupported content type")  \
    X(RATE_LIMITED,    "rate_limited",      429, "too many requests")              \
    X(INTERNAL,        "internal",          500, "internal error")                 \
    X(IO,              "io_error",          500, "input/output error")             \
    X(CORRUPT,         "corrupt",           500, "stored data is corrupt")         \
    X(NOMEM,           "out_of_memory",     503, "out of memory")                  \
    X(UNAVAILABLE,     "unavailable",       503, "temporarily unavailable")        \
    X(STORAGE_FULL,    "storage_full",      507, "no space left for the write")    \
    X(CONFIG,          "invalid_config",    400, "invalid configuration")

#define CB_OK 0

/* Row index of each code in the table, from 0. */
enum cb_err_index {
#define CB_ERR_ENUM(name, wire, http, msg) CB_ERR_ENUM_##name,
    CB_ERR_MAP(CB_ERR_ENUM)
#undef CB_ERR_ENUM
    CB_ERR_COUNT
};

/* Negative codes: CB_E<NAME> == -(1 + index in the table). */
#define CB_ERR_CODE(name, wire, http, msg) CB_E##name = -(1 + CB_ERR_ENUM_##name),
enum { CB_ERR_MAP(CB_ERR_CODE) CB_E_LAST_ = 0 };
#undef CB_ERR_CODE

#define CB_ERROR_FIELD_MAX 128
#define CB_ERROR_MESSAGE_MAX 384

/* Detail of the last error; owned by the caller, usually on its stack. */
typedef struct cb_error {
    int code;                           /* 0 or a CB_E* code */
    char field[CB_ERROR_FIELD_MAX];     /* "" or the offending field, e.g. "readings[3].value" */
    char message[CB_ERROR_MESSAGE_MAX]; /* human-readable detail */
} cb_error;

/* Fills err (which may be NULL) and returns code, so callers can write
 * `return cb_error_set(err, CB_EINVALID_FIELD, "role", "unknown role '%s'", r);`.
 * field may be NULL. */
int cb_error_set(cb_error *err, int code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void cb_error_clear(cb_error *err);

const char *cb_strerror(int code);  /* default message; "unknown error" if not a code */
const char *cb_err_name(int code);  /* wire name, e.g. "invalid_field" */
int cb_err_http_status(int code);   /* HTTP status for the code, 500 if unknown */
int cb_err_valid(int code);         /* 1 if code is 0 or a CB_E* code */

#endif
