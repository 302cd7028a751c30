/* log — logfmt lines on stderr; see log.h. */
#include "core/log.h"

#include "core/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static const char *const level_names[] = {"debug", "info", "warn", "error"};

/* Process-wide on purpose: set once before threads start, read-only after. */
static enum log_level current_level = LOG_INFO;

void log_set_level(enum log_level level)
{
    current_level = level;
}

enum log_level log_get_level(void)
{
    return current_level;
}

const char *log_level_name(enum log_level level)
{
    return (unsigned)level < 4 ? level_names[level] : "info";
}

int log_level_parse(const char *name, enum log_level *out)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(name, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    return CB_EINVALID_FIELD;
}

const char *log_quote(const char *value, char *out, int outlen)
{
    if (!value || !*value)
        return "-";
    if (strpbrk(value, " \"=\t\n") == NULL)
        return value;
    int j = 0;
    out[j++] = '"';
    for (const char *p = value; *p && j < outlen - 3; p++) {
        if (*p == '"' || *p == '\\')
            out[j++] = '\\';
        out[j++] = (*p == '\n' || *p == '\t') ? ' ' : *p;
    }
    out[j++] = '"';
    out[j] = '\0';
    return out;
}

void log_event(enum log_level level, const char *event, const char *fmt, ...)
{
    if (level < current_level)
        return;
    char line[2048];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s event=%s",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000, log_level_name(level), event);
    if (n > 0 && (size_t)n < sizeof line - 2 && fmt && *fmt) {
        line[n++] = ' ';
        va_list ap;
        va_start(ap, fmt);
        int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
        va_end(ap);
        n = m < 0 ? n : n + m;
    }
    if (n < 0 || (size_t)n >= sizeof line - 1)
        n = (int)sizeof line - 2;
    line[n++] = '\n';
    line[n] = '\0';
    fputs(line, stderr);
}
