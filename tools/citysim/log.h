/* log — citysim's log lines, logfmt like citybrain's own:
 *   ts=2026-11-23T10:48:24.583Z level=info event=incident kind=rainstorm ...
 * on stderr, one line per call, so a log file reads like the server's. */
#ifndef CITYSIM_LOG_H
#define CITYSIM_LOG_H

enum sim_log_level { SIM_INFO, SIM_WARN, SIM_ERROR };

void sim_log(enum sim_log_level level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
