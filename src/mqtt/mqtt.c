/* mqtt — the subscriber: libmosquitto's network thread delivers each
 * telemetry message to on_message, which stores it through ingest and only
 * then returns (that return is what lets the PUBACK out); see mqtt.h. */
#include "mqtt/mqtt.h"

#include "core/clock.h"
#include "core/log.h"
#include "mqtt/mqtt_auth.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <mosquitto.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define TOPIC_FILTER "city/+/telemetry"
#define KEEPALIVE_S 60       /* a callback held by backpressure must not outlast 1.5× this */
#define RECONNECT_MIN_S 1
#define RECONNECT_MAX_S 30
#define BACKOFF_MIN_MS 1
#define BACKOFF_MAX_MS 100

/* What became of a message. */
enum outcome { OUT_STORED, OUT_BAD_TOPIC, OUT_BAD_PAYLOAD, OUT_TOO_LARGE, OUT_REFUSED, OUT_COUNT };
static const char *const outcome_names[OUT_COUNT] = {"stored", "bad_topic", "bad_payload",
                                                     "too_large", "refused"};

enum verdict { ACK, NACK };

struct mqtt_client {
    const struct cb_config *cfg; /* borrowed */
    ingest *in;                  /* borrowed */
    struct mosquitto *mosq;
    char password[MQTT_AUTH_PASSWORD_MAX];

    /* The one message in the writer's hands (the network thread handles one
     * at a time), and the stop request; guarded by mu. */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int in_flight, done, done_rc, stopping;
    cb_error done_err;

    double last_warn_s;  /* network thread only: rate limit of bad-message logs */
    unsigned suppressed; /* network thread only */

    atomic_int connected;
    atomic_ullong messages[OUT_COUNT], readings_stored, readings_rejected, backpressure_waits,
        connects, disconnects;
};

/* --- topic --- */

int mqtt_topic_entity(const char *topic, size_t len, char id[MQTT_TOPIC_ID_MAX + 1])
{
    static const char prefix[] = "city/", suffix[] = "/telemetry";
    const size_t pre = sizeof prefix - 1, suf = sizeof suffix - 1;
    if (len <= pre + suf || memcmp(topic, prefix, pre) != 0 ||
        memcmp(topic + len - suf, suffix, suf) != 0)
        return CB_EINVALID_FIELD;
    size_t n = len - pre - suf;
    if (n > MQTT_TOPIC_ID_MAX)
        return CB_EINVALID_FIELD;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)topic[pre + i];
        if (!isalnum(ch) && ch != ':' && ch != '_' && ch != '.' && ch != '-')
            return CB_EINVALID_FIELD;
    }
    memcpy(id, topic + pre, n);
    id[n] = '\0';
    return 0;
}

/* --- waiting for the writer --- */

/* Writer thread: the batch is committed and applied (rc 0) or refused. */
static void on_done(void *arg, int rc, const cb_error *err)
{
    mqtt_client *c = arg;
    pthread_mutex_lock(&c->mu);
    assert(c->in_flight && !c->done);
    c->done = 1;
    c->done_rc = rc;
    if (rc != 0 && err)
        c->done_err = *err;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

/* Sleeps ms unless a stop is requested; returns 1 when stopping. */
static int pause_ms(mqtt_client *c, int ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += ms * 1000000L;
    ts.tv_sec += ts.tv_nsec / 1000000000L;
    ts.tv_nsec %= 1000000000L;
    pthread_mutex_lock(&c->mu);
    if (!c->stopping)
        pthread_cond_timedwait(&c->cv, &c->mu, &ts);
    int stopping = c->stopping;
    pthread_mutex_unlock(&c->mu);
    return stopping;
}

/* Hands b to the writer, retrying while its queue is full (backpressure).
 * On 0 the writer owns b's data. */
static int submit(mqtt_client *c, batch *b)
{
    int backoff = BACKOFF_MIN_MS;
    pthread_mutex_lock(&c->mu);
    c->in_flight = 1;
    c->done = 0;
    pthread_mutex_unlock(&c->mu);
    int rc;
    while ((rc = ingest_submit(c->in, b, on_done, c)) == CB_EUNAVAILABLE) {
        atomic_fetch_add(&c->backpressure_waits, 1);
        if (pause_ms(c, backoff))
            break; /* stopping with the queue still full: the broker keeps the message */
        backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
    }
    if (rc != 0) {
        pthread_mutex_lock(&c->mu);
        c->in_flight = 0;
        pthread_mutex_unlock(&c->mu);
    }
    return rc;
}

/* Waits for on_done. Not cut short by a stop: the writer runs until after
 * mqtt_stop, and an abandoned batch would be stored yet never acknowledged. */
static int wait_done(mqtt_client *c, cb_error *err)
{
    pthread_mutex_lock(&c->mu);
    while (!c->done)
        pthread_cond_wait(&c->cv, &c->mu);
    int rc = c->done_rc;
    if (rc != 0)
        *err = c->done_err;
    c->in_flight = 0;
    pthread_mutex_unlock(&c->mu);
    return rc;
}

/* --- one message --- */

/* Logs a message that will never be stored; at most one line a second, so a
 * broken device cannot flood the log. Returns ACK: it is dropped for good. */
static enum verdict drop(mqtt_client *c, enum outcome why, const char *topic, const char *msg)
{
    atomic_fetch_add(&c->messages[why], 1);
    double now = clock_mono_s();
    if (now - c->last_warn_s < 1.0) {
        c->suppressed++;
        return ACK;
    }
    char qt[256], qm[CB_ERROR_MESSAGE_MAX + 16];
    log_event(LOG_WARN, "mqtt_dropped", "reason=%s topic=%s msg=%s suppressed=%u", outcome_names[why],
              log_quote(topic, qt, sizeof qt), log_quote(msg, qm, sizeof qm), c->suppressed);
    c->last_warn_s = now;
    c->suppressed = 0;
    return ACK;
}

static const char *first_error(const struct ingest_report *rep)
{
    json_t *e = json_array_get(rep->errors, 0);
    const char *m = json_string_value(json_object_get(e, "message"));
    return m ? m : "no valid reading";
}

/* Stores a parsed batch; ACK once it is in the WAL, NACK if it is not. */
static enum verdict store(mqtt_client *c, batch *b, const char *topic)
{
    cb_error err;
    cb_error_clear(&err);
    int rc = submit(c, b);
    if (rc == 0)
        rc = wait_done(c, &err);
    if (rc == 0) {
        atomic_fetch_add(&c->messages[OUT_STORED], 1);
        return ACK;
    }
    atomic_fetch_add(&c->messages[OUT_REFUSED], 1);
    char qt[256], qm[CB_ERROR_MESSAGE_MAX + 16];
    log_event(LOG_WARN, "mqtt_refused", "topic=%s error=%s msg=%s", log_quote(topic, qt, sizeof qt),
              cb_err_name(rc), log_quote(err.message[0] ? err.message : cb_strerror(rc), qm, sizeof qm));
    return NACK;
}

static enum verdict handle(mqtt_client *c, const struct mosquitto_message *m)
{
    char id[MQTT_TOPIC_ID_MAX + 1];
    if (mqtt_topic_entity(m->topic, strlen(m->topic), id) != 0)
        return drop(c, OUT_BAD_TOPIC, m->topic, "topic is not city/<entity-id>/telemetry");
    if (m->payloadlen > c->cfg->mqtt_max_payload)
        return drop(c, OUT_TOO_LARGE, m->topic, "payload larger than mqtt_max_payload");
    batch b;
    batch_init(&b);
    struct ingest_report rep;
    ingest_report_init(&rep);
    cb_error err;
    const char *payload = m->payload ? m->payload : "";
    int rc = ingest_parse_telemetry(c->in, id, payload, (size_t)m->payloadlen, &b, &rep, &err);
    atomic_fetch_add(&c->readings_rejected, rep.rejected);
    enum verdict v;
    if (rc == CB_ENOMEM)
        v = NACK; /* may well work when the broker sends it again */
    else if (rc != 0)
        v = drop(c, OUT_BAD_PAYLOAD, m->topic, err.message);
    else if (b.count == 0)
        v = drop(c, OUT_BAD_PAYLOAD, m->topic, first_error(&rep));
    else if ((v = store(c, &b, m->topic)) == ACK)
        atomic_fetch_add(&c->readings_stored, rep.accepted);
    batch_free(&b);
    ingest_report_free(&rep);
    return v;
}

/* libmosquitto queued the PUBACK before calling us and writes it after we
 * return. To refuse, shut the socket down first: the write fails, the
 * connection drops, and the broker redelivers on reconnect (MQTT 3.1.1 has
 * no negative acknowledgement). */
static void on_message(struct mosquitto *mosq, void *arg, const struct mosquitto_message *m)
{
    mqtt_client *c = arg;
    if (handle(c, m) == NACK)
        shutdown(mosquitto_socket(mosq), SHUT_RDWR);
}

/* --- connection --- */

static void on_connect(struct mosquitto *mosq, void *arg, int rc)
{
    mqtt_client *c = arg;
    if (rc != 0) {
        log_event(LOG_WARN, "mqtt_refused_connection", "host=%s port=%d user=%s msg=\"%s\"",
                  c->cfg->mqtt_host, c->cfg->mqtt_port, c->cfg->mqtt_user, mosquitto_connack_string(rc));
        return;
    }
    atomic_store(&c->connected, 1);
    atomic_fetch_add(&c->connects, 1);
    log_event(LOG_INFO, "mqtt_connected", "host=%s port=%d client_id=%s", c->cfg->mqtt_host,
              c->cfg->mqtt_port, c->cfg->mqtt_client_id);
    /* The session keeps the subscription; subscribing again is for its first time. */
    rc = mosquitto_subscribe(mosq, NULL, TOPIC_FILTER, 1);
    if (rc != MOSQ_ERR_SUCCESS)
        log_event(LOG_ERROR, "mqtt_subscribe", "msg=\"%s\"", mosquitto_strerror(rc));
}

static void on_disconnect(struct mosquitto *mosq, void *arg, int rc)
{
    (void)mosq;
    mqtt_client *c = arg;
    if (!atomic_exchange(&c->connected, 0))
        return;
    atomic_fetch_add(&c->disconnects, 1);
    if (rc != 0) /* 0: we asked for it */
        log_event(LOG_WARN, "mqtt_disconnected", "msg=\"%s\" retry_s=%d..%d", mosquitto_strerror(rc),
                  RECONNECT_MIN_S, RECONNECT_MAX_S);
}

static void client_free(mqtt_client *c)
{
    if (c->mosq)
        mosquitto_destroy(c->mosq);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    memset(c->password, 0, sizeof c->password);
    free(c);
}

static int configure(mqtt_client *c, cb_error *err)
{
    c->mosq = mosquitto_new(c->cfg->mqtt_client_id, false, c); /* false: persistent session */
    if (!c->mosq)
        return cb_error_set(err, errno == ENOMEM ? CB_ENOMEM : CB_ECONFIG, "mqtt_client_id",
                            "cannot make an MQTT client: %s", strerror(errno));
    mosquitto_int_option(c->mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
    mosquitto_connect_callback_set(c->mosq, on_connect);
    mosquitto_disconnect_callback_set(c->mosq, on_disconnect);
    mosquitto_message_callback_set(c->mosq, on_message);
    mosquitto_reconnect_delay_set(c->mosq, RECONNECT_MIN_S, RECONNECT_MAX_S, true);
    int rc = mosquitto_username_pw_set(c->mosq, c->cfg->mqtt_user, c->password);
    if (rc != MOSQ_ERR_SUCCESS)
        return cb_error_set(err, CB_ECONFIG, "mqtt_user", "%s", mosquitto_strerror(rc));
    return 0;
}

int mqtt_start(const struct cb_config *cfg, ingest *in, mqtt_client **out, cb_error *err)
{
    *out = NULL;
    if (!cfg->mqtt)
        return 0;
    mosquitto_lib_init(); /* idempotent */
    mqtt_client *c = calloc(1, sizeof *c);
    if (!c)
        return cb_error_set(err, CB_ENOMEM, NULL, "out of memory");
    c->cfg = cfg;
    c->in = in;
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    int rc = mqtt_auth_service(cfg, c->password, err);
    if (rc == 0)
        rc = configure(c, err);
    if (rc != 0) {
        client_free(c);
        return rc;
    }
    /* An unreachable broker now is not an error: the network thread retries. */
    rc = mosquitto_connect_async(c->mosq, cfg->mqtt_host, cfg->mqtt_port, KEEPALIVE_S);
    if (rc != MOSQ_ERR_SUCCESS)
        log_event(LOG_WARN, "mqtt_unreachable", "host=%s port=%d msg=\"%s\" retry_s=%d..%d", cfg->mqtt_host,
                  cfg->mqtt_port, rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc),
                  RECONNECT_MIN_S, RECONNECT_MAX_S);
    rc = mosquitto_loop_start(c->mosq);
    if (rc != MOSQ_ERR_SUCCESS) {
        client_free(c);
        return cb_error_set(err, CB_EINTERNAL, NULL, "cannot start the MQTT thread: %s", mosquitto_strerror(rc));
    }
    *out = c;
    return 0;
}

void mqtt_stop(mqtt_client *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    c->stopping = 1;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    mosquitto_disconnect(c->mosq);
    mosquitto_loop_stop(c->mosq, false); /* joins once the message in hand is done */
    client_free(c);
}

void mqtt_write_metrics(mqtt_client *c, buf *out)
{
    if (!c)
        return;
    buf_printf(out, "# HELP citybrain_mqtt_connected 1 while connected to the MQTT broker.\n"
                    "# TYPE citybrain_mqtt_connected gauge\n"
                    "citybrain_mqtt_connected %d\n"
                    "# HELP citybrain_mqtt_messages_total MQTT telemetry messages by outcome "
                    "(refused ones stay at the broker and come again).\n"
                    "# TYPE citybrain_mqtt_messages_total counter\n",
               atomic_load(&c->connected));
    for (int i = 0; i < OUT_COUNT; i++)
        buf_printf(out, "citybrain_mqtt_messages_total{outcome=\"%s\"} %llu\n", outcome_names[i],
                   atomic_load(&c->messages[i]));
    buf_printf(out, "# HELP citybrain_mqtt_readings_total Readings of MQTT messages, stored or rejected.\n"
                    "# TYPE citybrain_mqtt_readings_total counter\n"
                    "citybrain_mqtt_readings_total{result=\"stored\"} %llu\n"
                    "citybrain_mqtt_readings_total{result=\"rejected\"} %llu\n"
                    "# HELP citybrain_mqtt_backpressure_waits_total Pauses while the WAL writer's queue was full.\n"
                    "# TYPE citybrain_mqtt_backpressure_waits_total counter\n"
                    "citybrain_mqtt_backpressure_waits_total %llu\n"
                    "# HELP citybrain_mqtt_connects_total Connections made to the broker.\n"
                    "# TYPE citybrain_mqtt_connects_total counter\n"
                    "citybrain_mqtt_connects_total %llu\n"
                    "# HELP citybrain_mqtt_disconnects_total Connections lost or closed.\n"
                    "# TYPE citybrain_mqtt_disconnects_total counter\n"
                    "citybrain_mqtt_disconnects_total %llu\n",
               atomic_load(&c->readings_stored), atomic_load(&c->readings_rejected),
               atomic_load(&c->backpressure_waits), atomic_load(&c->connects),
               atomic_load(&c->disconnects));
}
