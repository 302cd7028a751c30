/* mqtt — the MQTT door of ingest (DESIGN.md §3, §4, §6). Devices publish a
 * JSON object of attribute -> value to city/<entity-id>/telemetry on
 * Mosquitto; citybrain subscribes at QoS 1 under a persistent session
 * (clean_session false, client id mqtt_client_id), so the broker queues
 * telemetry while citybrain is down or reconnecting.
 *
 * Acknowledgement after the WAL: libmosquitto 2.0 has no manual acknowledge;
 * it queues the PUBACK of a QoS 1 message when the message callback is
 * entered and its network thread writes it only after the callback returns.
 * So the callback parses, hands the batch to the writer and waits for the
 * writer's done callback: a PUBACK on the wire means the readings are in the
 * WAL. A message that cannot be stored now (writer failed, shutting down) is
 * refused by shutting the socket down inside the callback: the PUBACK never
 * leaves, the broker keeps the message and sends it again after the
 * reconnect. A message that can never be stored (topic not city/<id>/telemetry,
 * not JSON, no valid reading, over mqtt_max_payload) is logged, counted and
 * acknowledged — sending it again would fail again forever.
 *
 * Backpressure: when the writer's queue is full, the callback retries the
 * same batch with a growing pause (1..100 ms); meanwhile no PUBACK goes out,
 * so the broker's in-flight window fills and it stops sending.
 *
 * Threads: one libmosquitto network thread runs the callbacks; messages are
 * handled one at a time, in order. mqtt_write_metrics may be called from any
 * thread. */
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
 * connects in the background — an absent broker is logged and retried with
 * backoff (1..30 s), never waited for. cfg and in are borrowed and must
 * outlive the client. *out is freed by mqtt_stop. */
int mqtt_start(const struct cb_config *cfg, ingest *in, mqtt_client **out, cb_error *err);

/* Finishes the message in hand (its batch is committed first, so stop before
 * ingest_close), disconnects and frees. NULL-safe. */
void mqtt_stop(mqtt_client *c);

/* Prometheus lines: connection state, messages by outcome, readings. NULL-safe. */
void mqtt_write_metrics(mqtt_client *c, buf *out);

/* The entity id of a telemetry topic "city/<id>/telemetry", copied into id
 * (NUL-terminated). The id is 1..MQTT_TOPIC_ID_MAX characters of
 * [A-Za-z0-9:_.-]. CB_EINVALID_FIELD otherwise. */
int mqtt_topic_entity(const char *topic, size_t len, char id[MQTT_TOPIC_ID_MAX + 1]);

#endif
