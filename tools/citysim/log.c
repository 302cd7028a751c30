/* log — logfmt lines on stderr; see log.h. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

void sim_log(enum sim_log_level level, const char *event, const char *fmt, ...)
{
    static const char *names[] = {"info", "warn", "error"};
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    char when[32];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    char line[2048];
    int n = snprintf(line, sizeof line, "ts=%s.%03ldZ level=%s event=%s ", when, ts.tv_nsec / 1000000,
                     names[level], event);
    va_list ap;
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof line)
        vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s\n", line); /* one write per line: lines of a log file never interleave */
    fflush(stderr);
}
