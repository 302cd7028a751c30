/* lineproto — a strict, zero-copy parser for InfluxDB line protocol, the body
 * of POST /api/v1/write (existing gateways and Telegraf send it).
 *
 * lp_parse() walks a whole body line by line. Each good line goes to a
 * callback as an lp_point; each bad line goes to another callback with its
 * 1-based line number and the reason, and parsing goes on with the next line,
 * so the good readings of a batch are kept. Tokens without escapes point
 * straight into the body; escaped ones are unescaped into the parser's scratch
 * buffer. Nothing is allocated while parsing.
 *
 * Syntax (InfluxDB v2 reference), one point per line:
 *
 *   measurement[,tag=value...] field=value[,field=value...] [timestamp]
 *
 * - Sections are separated by one or more spaces; leading and trailing spaces
 *   are ignored. Lines end with \n or \r\n; a newline always ends a line, also
 *   inside a quoted string (line protocol has no newlines in values). Blank
 *   lines and lines whose first non-space byte is '#' are skipped.
 * - Escapes: a backslash before ',' or ' ' in the measurement, before ',', '='
 *   or ' ' in tag keys, tag values and field keys, and before '"' or '\' in
 *   string field values stands for that byte. A backslash before any other
 *   byte is literal (so "a\b" is the three bytes a, \, b).
 * - Names (measurement, tag keys and values, field keys) are never empty and
 *   contain no control bytes (0x00-0x1f, 0x7f); string values contain no NUL.
 *   Bytes >= 0x80 are passed through; UTF-8 validity is the caller's concern.
 *   An unescaped '=' in a tag value is an error.
 * - Field values: float "-1.5", "1e3", "1." (inf and nan are rejected, and so
 *   is a float that overflows a double; underflow rounds to 0 or a subnormal,
 *   like strtod); integer "12i" (int64); unsigned "12u" (uint64); string
 *   "\"...\""; boolean t T true True TRUE f F false False FALSE. No leading '+'.
 *   Floats are exact: the same double as strtod in the C locale.
 * - Timestamp: an optionally negative integer in the request's precision,
 *   converted to int64 nanoseconds; out of range is an error. Absent means the
 *   caller's now_ns.
 * - Tags are reported sorted by key (bytewise, shorter first on a tie), so one
 *   series always has one tag order; a repeated tag key is an error.
 * - A repeated field key: the last value wins; the field keeps the position of
 *   its first occurrence. Fields are otherwise reported in input order.
 * - Limits (struct lp_limits): a longer line, or one with more tags or fields,
 *   is reported as a bad line (CB_ETOO_LARGE) and skipped.
 *
 * Error codes on bad lines: CB_EINVALID_FIELD (a value is malformed or out of
 * range, a repeated tag key, an unescaped '=' in a tag value), CB_EMISSING_FIELD (no measurement, no fields, a key without value),
 * CB_EBAD_REQUEST (control bytes, text after the timestamp), CB_ETOO_LARGE
 * (limits). The message reads like "line 3 col 21: field 'temp': invalid
 * number '1.2.3'"; err->field is "line 3".
 *
 * Cost: O(length of the body) per lp_parse; per line O(tags log tags) for the
 * sort and O(fields) expected for duplicate detection. A parser is not
 * thread-safe; use one per thread. */
#ifndef CB_LINEPROTO_H
#define CB_LINEPROTO_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

enum lp_precision { LP_NS, LP_US, LP_MS, LP_S };

enum lp_value_type { LP_FLOAT, LP_INT, LP_UINT, LP_STRING, LP_BOOL };

/* A byte range, not NUL-terminated. Points into the body or the parser's
 * scratch buffer; see lp_point for how long it lives. */
struct lp_str {
    const char *ptr;
    size_t len;
};

struct lp_tag {
    struct lp_str key;
    struct lp_str value;
};

struct lp_field {
    struct lp_str key;
    enum lp_value_type type;
    union {
        double f;        /* LP_FLOAT, always finite */
        int64_t i;       /* LP_INT */
        uint64_t u;      /* LP_UINT */
        int b;           /* LP_BOOL, 0 or 1 */
        struct lp_str s; /* LP_STRING, unescaped, may be empty */
    } v;
};

/* One parsed line. Every pointer in it (strings, tags, fields) is valid only
 * during the on_point callback that receives it; copy what you keep. */
struct lp_point {
    struct lp_str measurement;
    size_t ntags;               /* may be 0 */
    const struct lp_tag *tags;  /* sorted by key, keys unique */
    size_t nfields;             /* >= 1 */
    const struct lp_field *fields; /* keys unique */
    int64_t time_ns;            /* nanoseconds since the epoch */
    int has_time;               /* 0: time_ns is the now_ns given to lp_parse */
};

#define LP_DEFAULT_MAX_LINE (64 * 1024) /* bytes, without the \n */
#define LP_DEFAULT_MAX_TAGS 256
#define LP_DEFAULT_MAX_FIELDS 1000
#define LP_LIMIT_CAP (64 * 1024 * 1024) /* no limit may exceed this */

/* A zero member means its default. */
struct lp_limits {
    size_t max_line;
    size_t max_tags;
    size_t max_fields;
};

/* Parser context: the limits, a scratch buffer of max_line + 1 bytes and the
 * tag and field arrays, all allocated once by lp_parser_new (about 120 KiB
 * with the default limits) and reused by every lp_parse. */
typedef struct lp_parser lp_parser;

/* Creates a parser; limits may be NULL for the defaults. Returns 0, CB_ENOMEM
 * or CB_ECONFIG (a limit above LP_LIMIT_CAP). The caller owns *out and frees it
 * with lp_parser_free. */
int lp_parser_new(lp_parser **out, const struct lp_limits *limits, cb_error *err);
void lp_parser_free(lp_parser *p); /* NULL-safe */

/* "ns", "us", "ms" or "s"; NULL or "" mean ns. Returns 0 or CB_EINVALID_FIELD
 * (err->field "precision"). */
/* An upper bound on the readings lp_parse can count in body[0..len) — a
 * reading is a field of a good line (each has a '=') or a bad line — so a
 * caller can enforce a limit before it parses. One pass, 16 bytes at a time. */
size_t lp_readings_at_most(const char *body, size_t len);

int lp_precision_parse(const char *s, enum lp_precision *out, cb_error *err);

/* Callbacks return 0 to go on; any other value stops lp_parse, which returns
 * it (a negative CB_E* code, by convention). err is the parser's and is
 * valid only during the call. */
typedef int (*lp_point_fn)(void *arg, size_t line_no, const struct lp_point *pt);
typedef int (*lp_error_fn)(void *arg, size_t line_no, const cb_error *err);

/* Parses body[0..len) (need not be NUL-terminated), calling on_point for each
 * good line and on_error for each bad one, in line order. Both callbacks are
 * required. Returns 0 once the body is consumed, even if some lines were bad,
 * or the first non-zero callback result. */
int lp_parse(lp_parser *p, const char *body, size_t len, enum lp_precision prec,
             int64_t now_ns, lp_point_fn on_point, lp_error_fn on_error, void *arg);

#endif
