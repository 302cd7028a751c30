/* mqttpub — devices publishing telemetry the way battery-powered NB-IoT
 * devices do: wake, connect with their own credentials, publish one message
 * at QoS 1, wait for the broker's PUBACK, disconnect.
 *
 * Messages wait in a FIFO; at most max_conns connections are open at once,
 * all driven by one poll() loop in the caller's thread (libmosquitto's
 * external-loop functions, no threads), so file descriptors stay bounded
 * whatever the number of devices. A failed attempt (refused, lost, no PUBACK
 * within MQTTPUB_TIMEOUT_S) is tried again after a pause, up to
 * MQTTPUB_ATTEMPTS times. Not thread-safe. */
#ifndef CITYSIM_MQTTPUB_H
#define CITYSIM_MQTTPUB_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#define MQTTPUB_TIMEOUT_S 10
#define MQTTPUB_ATTEMPTS 3

typedef struct mqttpub mqttpub;

struct mqttpub_counters {
    unsigned long long queued, acked, failed, retried;
};

/* Needs mosquitto_lib_init() done by the caller. Returns 0, or -1 with err. */
int mqttpub_new(const char *host, int port, int max_conns, mqttpub **out, char *err, size_t errlen);
void mqttpub_free(mqttpub *p); /* NULL-safe; drops what is still queued */
/* Queues one message; the strings are copied. 0, or -1 (out of memory). */
int mqttpub_enqueue(mqttpub *p, const char *user, const char *password, const char *topic, const char *payload);
/* Drives connections until the queue is empty and nothing is in flight, the
 * clock (CLOCK_REALTIME, ms) reaches until_ms, or *stop is set. Returns the
 * number of messages still queued or in flight. */
size_t mqttpub_run(mqttpub *p, int64_t until_ms, volatile sig_atomic_t *stop);
const struct mqttpub_counters *mqttpub_counters(const mqttpub *p);

#endif
