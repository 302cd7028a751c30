/* log — structured logs, one logfmt line per event on stderr:
 *   ts=2026-11-23T10:00:00.123Z level=info event=request method=GET route=/healthz status=200
 *
 * The level is process-wide (set once at start-up by `serve`); lines are written
 * with one stdio call so threads never interleave within a line. */
#ifndef CB_LOG_H
#define CB_LOG_H

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
int log_level_parse(const char *name, enum log_level *out); /* 0 or CB_EINVALID_FIELD */
const char *log_level_name(enum log_level level);

/* fmt produces the key=value pairs after ts, level and event. */
void log_event(enum log_level level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Quotes a value for logfmt when it holds spaces, quotes or '='; writes into out. */
const char *log_quote(const char *value, char *out, int outlen);

#endif
