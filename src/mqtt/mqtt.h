/* mqtt — the MQTT door of ingest (DESIGN.md §3, §4, §6). Devices publish a
 * JSON object of attribute -> value to city/<entity-id>/telemetry on
 * Mosquitto; citybrain subscribes at QoS 1 under a persistent session
 * (clean_session false, client id mqtt_client_id), so the broker queues
 * telemetry while citybrain is down or reconnecting.
 *
 * Acknowledgement after the WAL, in rounds: libmosquitto 2.0 has no manual
 * acknowledge; it queues the PUBACK of a QoS 1 message before the message
 * callback runs. With its own loop thread (mosquitto_loop_start) the PUBACK
 * is written as soon as the callback returns, so the callback had to wait
 * for the WAL: one message in flight, one group commit per message. Instead
 * our thread drives the loop (mosquitto_threaded_set: libmosquitto then
 * never writes by itself) in rounds:
 *   1. read every message the socket holds (up to ROUND_MAX; the broker's
 *      max_inflight_messages bounds it), each parsed and handed to the writer
 *      by the callback, which returns at once;
 *   2. wait until the writer is done with all of them (one or a few group
 *      commits for the round);
 *   3. mosquitto_loop_write: the round's PUBACKs leave together.
 * A PUBACK on the wire still means the readings are in the WAL, and the
 * broker keeps up to its window of messages in flight to us.
 *
 * A message that cannot be stored now (writer failed, shutting down, out of
 * memory) refuses its whole round: the socket is shut down before step 3, the
 * reconnect drops the queued PUBACKs and the broker sends every
 * unacknowledged message again — the refused one and any of the round that
 * were stored, which are then stored twice (QoS 1 is at-least-once). A
 * message that can never be stored (topic not city/<id>/telemetry, not
 * JSON, no valid reading, over mqtt_max_payload) is logged, counted and
 * acknowledged — sending it again would fail again forever.
 *
 * Why not several connections: a Mosquitto 2.0 shared subscription
 * ($share/citybrain/city/+/telemetry over N persistent sessions) would give
 * N messages in flight too, but 2.0.11 does not persist shared
 * subscriptions (persist__subs_save walks only the plain ones): after a
 * broker restart no session is subscribed until citybrain subscribes again,
 * and telemetry published meanwhile is dropped. It would also deliver one
 * device's messages to different sessions, out of order.
 *
 * Backpressure: when the writer's queue is full, the round retries the same
 * batch with a growing pause (1..100 ms); meanwhile no PUBACK goes out, so the
 * broker's in-flight window fills and it stops sending.
 *
 * Threads: one network thread of ours runs libmosquitto and its callbacks;
 * messages are handled in order, and one device's readings stay in order.
 * mqtt_write_metrics may be called from any thread. */
#ifndef CB_MQTT_H
#define CB_MQTT_H

#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "ingest/ingest.h"

#include <stddef.h>

#define MQTT_TOPIC_ID_MAX 128 /* ENTITY_ID_MAX */

typedef struct mqtt_client mqtt_client;

/* Starts the client when cfg->mqtt is on (else *out = NULL and 0): makes
 * sure the service account is in DATA_DIR/mosquitto/{passwd,acl}, then
 * connects on its thread — an absent broker is logged (once an outage) and
 * retried with backoff (1..30 s), never waited for. cfg and in are borrowed and must
 * outlive the client. *out is freed by mqtt_stop. */
int mqtt_start(const struct cb_config *cfg, ingest *in, mqtt_client **out, cb_error *err);

/* Finishes the round in hand (its batches are committed and acknowledged
 * first, so stop before ingest_close), disconnects, joins the thread and
 * frees. NULL-safe. */
void mqtt_stop(mqtt_client *c);

/* Prometheus lines: connection state, messages by outcome, readings, rounds. NULL-safe. */
void mqtt_write_metrics(mqtt_client *c, buf *out);

/* The entity id of a telemetry topic "city/<id>/telemetry", copied into id
 * (NUL-terminated). The id is 1..MQTT_TOPIC_ID_MAX characters of
 * [A-Za-z0-9:_.-]. CB_EINVALID_FIELD otherwise. */
int mqtt_topic_entity(const char *topic, size_t len, char id[MQTT_TOPIC_ID_MAX + 1]);

#endif
