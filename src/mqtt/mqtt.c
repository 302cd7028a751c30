/* mqtt — the subscriber: our own network thread drives libmosquitto in
 * rounds (read every message the socket holds, store them all through
 * ingest, wait for the writer, then write their PUBACKs together), so a
 * PUBACK leaves only after its readings are in the WAL; see mqtt.h. */
#include "mqtt/mqtt.h"

#include "core/clock.h"
#include "core/log.h"
#include "mqtt/mqtt_auth.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <mosquitto.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define TOPIC_FILTER "city/+/telemetry"
#define KEEPALIVE_S 60       /* a round held by backpressure must not outlast 1.5× this */
#define RECONNECT_MIN_S 1
#define RECONNECT_MAX_S 30
#define BACKOFF_MIN_MS 1
#define BACKOFF_MAX_MS 100
#define ROUND_MAX 1024       /* messages a round holds unacknowledged (the broker's window is smaller) */
#define POLL_MS 1000         /* loop_misc (keepalive) runs at least this often */

/* What became of a message. */
enum outcome { OUT_STORED, OUT_BAD_TOPIC, OUT_BAD_PAYLOAD, OUT_TOO_LARGE, OUT_REFUSED, OUT_COUNT };
static const char *const outcome_names[OUT_COUNT] = {"stored", "bad_topic", "bad_payload",
                                                     "too_large", "refused"};

/* One message of the round in the writer's hands: on_done's argument. */
struct slot {
    struct mqtt_client *c;
    size_t readings;
};

struct mqtt_client {
    const struct cb_config *cfg; /* borrowed */
    ingest *in;                  /* borrowed */
    struct mosquitto *mosq;
    char password[MQTT_AUTH_PASSWORD_MAX];
    pthread_t thread;
    int wake[2]; /* pipe: mqtt_stop writes a byte to end the thread's poll */

    /* The round's messages in the writer's hands, the refusals among them,
     * and the stop request; guarded by mu, signalled on cv. */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int outstanding, refused, stopping;
    cb_error refused_err; /* the round's first refusal */

    /* Network thread only. */
    struct slot slots[ROUND_MAX];
    int nslots;
    int nack;        /* a message of this round must not be acknowledged */
    int broken;      /* the connection failed: reconnect before anything else */
    int backoff_s;   /* next reconnect delay */
    int unreachable_logged; /* this outage's failed attempts were logged */
    double last_warn_s; /* rate limit of bad-message logs */
    unsigned suppressed;

    atomic_int connected;
    atomic_ullong messages[OUT_COUNT], readings_stored, readings_rejected, backpressure_waits,
        connects, disconnects, rounds;
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

/* --- the round's messages in the writer's hands --- */

/* Writer thread: one message of the round is committed and applied (rc 0)
 * or refused. */
static void on_done(void *arg, int rc, const cb_error *err)
{
    struct slot *s = arg;
    mqtt_client *c = s->c;
    if (rc == 0) {
        atomic_fetch_add(&c->messages[OUT_STORED], 1);
        atomic_fetch_add(&c->readings_stored, s->readings);
    } else {
        atomic_fetch_add(&c->messages[OUT_REFUSED], 1);
    }
    pthread_mutex_lock(&c->mu);
    assert(c->outstanding > 0);
    if (rc != 0 && c->refused++ == 0) {
        if (err)
            c->refused_err = *err;
        else
            cb_error_clear(&c->refused_err);
        c->refused_err.code = rc;
    }
    if (--c->outstanding == 0)
        pthread_cond_broadcast(&c->cv);
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

/* Waits until the writer is done with every message of the round. Not cut
 * short by a stop: the writer runs until after mqtt_stop, and an abandoned
 * message would be stored yet never acknowledged. Then, if one of them was
 * refused, nothing of the round may be acknowledged (c->nack). */
static void wait_round(mqtt_client *c)
{
    pthread_mutex_lock(&c->mu);
    while (c->outstanding > 0)
        pthread_cond_wait(&c->cv, &c->mu);
    int refused = c->refused;
    cb_error err = c->refused_err;
    c->refused = 0;
    pthread_mutex_unlock(&c->mu);
    c->nslots = 0;
    if (!refused)
        return;
    c->nack = 1;
    char qm[CB_ERROR_MESSAGE_MAX + 16];
    log_event(LOG_WARN, "mqtt_refused", "messages=%d error=%s msg=%s", refused, cb_err_name(err.code),
              log_quote(err.message[0] ? err.message : cb_strerror(err.code), qm, sizeof qm));
}

/* Hands b to the writer, retrying while its queue is full (backpressure).
 * On 0 the writer owns b's data and will call on_done. */
static int submit(mqtt_client *c, batch *b, size_t readings)
{
    if (c->nslots == ROUND_MAX)
        wait_round(c); /* their PUBACKs still wait for the end of the round */
    struct slot *s = &c->slots[c->nslots];
    s->c = c;
    s->readings = readings;
    pthread_mutex_lock(&c->mu);
    c->outstanding++;
    pthread_mutex_unlock(&c->mu);
    int backoff = BACKOFF_MIN_MS, rc;
    while ((rc = ingest_submit(c->in, b, on_done, s)) == CB_EUNAVAILABLE) {
        atomic_fetch_add(&c->backpressure_waits, 1);
        if (pause_ms(c, backoff))
            break; /* stopping with the queue still full: the broker keeps the message */
        backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
    }
    if (rc != 0) {
        pthread_mutex_lock(&c->mu);
        c->outstanding--;
        pthread_mutex_unlock(&c->mu);
        return rc;
    }
    c->nslots++;
    return 0;
}

/* --- one message --- */

/* Logs a message that will never be stored; at most one line a second, so a
 * broken device cannot flood the log. It is dropped for good (acknowledged). */
static void drop(mqtt_client *c, enum outcome why, const char *topic, const char *msg)
{
    atomic_fetch_add(&c->messages[why], 1);
    double now = clock_mono_s();
    if (now - c->last_warn_s < 1.0) {
        c->suppressed++;
        return;
    }
    char qt[256], qm[CB_ERROR_MESSAGE_MAX + 16];
    log_event(LOG_WARN, "mqtt_dropped", "reason=%s topic=%s msg=%s suppressed=%u", outcome_names[why],
              log_quote(topic, qt, sizeof qt), log_quote(msg, qm, sizeof qm), c->suppressed);
    c->last_warn_s = now;
    c->suppressed = 0;
}

static const char *first_error(const struct ingest_report *rep)
{
    json_t *e = json_array_get(rep->errors, 0);
    const char *m = json_string_value(json_object_get(e, "message"));
    return m ? m : "no valid reading";
}

/* Refuses the round: none of its PUBACKs may leave (see turn). */
static void refuse(mqtt_client *c, int rc, const char *topic)
{
    atomic_fetch_add(&c->messages[OUT_REFUSED], 1);
    c->nack = 1;
    char qt[256];
    log_event(LOG_WARN, "mqtt_refused", "topic=%s error=%s msg=\"%s\"", log_quote(topic, qt, sizeof qt),
              cb_err_name(rc), cb_strerror(rc));
}

static void handle(mqtt_client *c, const struct mosquitto_message *m)
{
    char id[MQTT_TOPIC_ID_MAX + 1];
    if (mqtt_topic_entity(m->topic, strlen(m->topic), id) != 0) {
        drop(c, OUT_BAD_TOPIC, m->topic, "topic is not city/<entity-id>/telemetry");
        return;
    }
    if (m->payloadlen > c->cfg->mqtt_max_payload) {
        drop(c, OUT_TOO_LARGE, m->topic, "payload larger than mqtt_max_payload");
        return;
    }
    batch b;
    batch_init(&b);
    struct ingest_report rep;
    ingest_report_init(&rep);
    cb_error err;
    const char *payload = m->payload ? m->payload : "";
    int rc = ingest_parse_telemetry(c->in, id, payload, (size_t)m->payloadlen, &b, &rep, &err);
    atomic_fetch_add(&c->readings_rejected, rep.rejected);
    if (rc == CB_ENOMEM)
        refuse(c, rc, m->topic); /* may well work when the broker sends it again */
    else if (rc != 0)
        drop(c, OUT_BAD_PAYLOAD, m->topic, err.message);
    else if (b.count == 0)
        drop(c, OUT_BAD_PAYLOAD, m->topic, first_error(&rep));
    else if ((rc = submit(c, &b, rep.accepted)) != 0)
        refuse(c, rc, m->topic);
    batch_free(&b);
    ingest_report_free(&rep);
}

/* libmosquitto queued the PUBACK before calling us; it leaves with the next
 * mosquitto_loop_write, which the thread calls only at the end of the round. */
static void on_message(struct mosquitto *mosq, void *arg, const struct mosquitto_message *m)
{
    (void)mosq;
    handle(arg, m);
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
    c->backoff_s = RECONNECT_MIN_S;
    c->unreachable_logged = 0;
    log_event(LOG_INFO, "mqtt_connected", "host=%s port=%d client_id=%s", c->cfg->mqtt_host,
              c->cfg->mqtt_port, c->cfg->mqtt_client_id);
    /* The session keeps the subscription; subscribing again is for its first time. */
    rc = mosquitto_subscribe(mosq, NULL, TOPIC_FILTER, 1);
    if (rc != MOSQ_ERR_SUCCESS)
        log_event(LOG_ERROR, "mqtt_subscribe", "msg=\"%s\"", mosquitto_strerror(rc));
}

/* The connection ended, or an attempt failed: rc 0 when we asked for it.
 * Called by libmosquitto (keepalive, our DISCONNECT) and by the thread on a
 * failed read or write. Failed attempts are logged once per outage. */
static void lost(mqtt_client *c, int rc)
{
    if (!atomic_exchange(&c->connected, 0)) {
        if (rc != 0 && !c->unreachable_logged)
            log_event(LOG_WARN, "mqtt_unreachable", "host=%s port=%d msg=\"%s\" retry_s=%d..%d",
                      c->cfg->mqtt_host, c->cfg->mqtt_port,
                      rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc), RECONNECT_MIN_S,
                      RECONNECT_MAX_S);
        c->unreachable_logged = 1;
        return;
    }
    atomic_fetch_add(&c->disconnects, 1);
    if (rc != 0)
        log_event(LOG_WARN, "mqtt_disconnected", "msg=\"%s\" retry_s=%d..%d",
                  rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc), RECONNECT_MIN_S,
                  RECONNECT_MAX_S);
}

static void on_disconnect(struct mosquitto *mosq, void *arg, int rc)
{
    (void)mosq;
    lost(arg, rc);
}

/* --- the network thread --- */

static int is_stopping(mqtt_client *c)
{
    pthread_mutex_lock(&c->mu);
    int stopping = c->stopping;
    pthread_mutex_unlock(&c->mu);
    return stopping;
}

/* Waits up to ms for the socket (events) or a stop; returns the socket's revents. */
static short wait_io(mqtt_client *c, int sock, short events, int ms)
{
    struct pollfd p[2] = {{.fd = sock, .events = events}, {.fd = c->wake[0], .events = POLLIN}};
    if (poll(p, 2, ms) <= 0)
        return 0;
    return p[0].revents;
}

static int readable_now(int sock)
{
    struct pollfd p = {.fd = sock, .events = POLLIN};
    return poll(&p, 1, 0) == 1;
}

/* Reads every message the socket holds (each is parsed and handed to the
 * writer by on_message), then waits until the writer is done with all of
 * them. Their PUBACKs are queued in libmosquitto, not yet written. */
static int read_round(mqtt_client *c, int sock)
{
    int rc, n = 0;
    do
        rc = mosquitto_loop_read(c->mosq, 1);
    while (rc == MOSQ_ERR_SUCCESS && ++n < ROUND_MAX && readable_now(sock));
    wait_round(c);
    atomic_fetch_add(&c->rounds, 1);
    return rc;
}

/* One turn of the loop on a live connection: read a round, write its
 * PUBACKs (and whatever else is queued), keep the connection alive. */
static int turn(mqtt_client *c)
{
    int sock = mosquitto_socket(c->mosq);
    if (sock < 0)
        return MOSQ_ERR_NO_CONN;
    short rev = wait_io(c, sock, POLLIN | (mosquitto_want_write(c->mosq) ? POLLOUT : 0), POLL_MS);
    int rc = MOSQ_ERR_SUCCESS;
    if (rev & (POLLIN | POLLERR | POLLHUP))
        rc = read_round(c, sock);
    if (c->nack) {
        /* A message of the round is not stored: none of the round's PUBACKs may
         * leave. Shut the socket so no write can; the reconnect drops them and
         * the broker sends every unacknowledged message again. */
        c->nack = 0;
        shutdown(sock, SHUT_RDWR);
        return MOSQ_ERR_CONN_LOST;
    }
    assert(c->nslots == 0); /* every message read so far is stored: its PUBACK may go */
    if (rc == MOSQ_ERR_SUCCESS && mosquitto_want_write(c->mosq))
        rc = mosquitto_loop_write(c->mosq, 1);
    if (rc == MOSQ_ERR_SUCCESS)
        rc = mosquitto_loop_misc(c->mosq);
    return rc;
}

/* Sleeps the reconnect delay (cut short by a stop) and starts a connection. */
static void reconnect(mqtt_client *c)
{
    (void)wait_io(c, -1, 0, c->backoff_s * 1000);
    if (is_stopping(c))
        return;
    c->backoff_s = c->backoff_s * 2 > RECONNECT_MAX_S ? RECONNECT_MAX_S : c->backoff_s * 2;
    /* Closes the old socket and drops the PUBACKs still queued for it. */
    if (mosquitto_reconnect_async(c->mosq) == MOSQ_ERR_SUCCESS)
        c->broken = 0;
}

/* Sends the PUBACKs of the last round and a DISCONNECT, for up to a second. */
static void say_goodbye(mqtt_client *c)
{
    if (c->broken || mosquitto_disconnect(c->mosq) != MOSQ_ERR_SUCCESS)
        return;
    double until = clock_mono_s() + 1.0;
    int sock;
    while (mosquitto_want_write(c->mosq) && (sock = mosquitto_socket(c->mosq)) >= 0 &&
           clock_mono_s() < until) {
        struct pollfd p = {.fd = sock, .events = POLLOUT};
        if (poll(&p, 1, 100) == 1 && mosquitto_loop_write(c->mosq, 1) != MOSQ_ERR_SUCCESS)
            break;
    }
}

static void *run(void *arg)
{
    mqtt_client *c = arg;
    while (!is_stopping(c)) {
        if (c->broken) {
            reconnect(c);
            continue;
        }
        int rc = turn(c);
        if (rc != MOSQ_ERR_SUCCESS) {
            lost(c, rc);
            c->broken = 1;
        }
    }
    say_goodbye(c);
    return NULL;
}

/* --- start and stop --- */

static void client_free(mqtt_client *c)
{
    if (c->mosq)
        mosquitto_destroy(c->mosq);
    for (int i = 0; i < 2; i++)
        if (c->wake[i] >= 0)
            close(c->wake[i]);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    memset(c->password, 0, sizeof c->password);
    free(c);
}

static int configure(mqtt_client *c, cb_error *err)
{
    if (pipe2(c->wake, O_CLOEXEC | O_NONBLOCK) != 0)
        return cb_error_set(err, CB_EINTERNAL, NULL, "cannot make a pipe: %s", strerror(errno));
    c->mosq = mosquitto_new(c->cfg->mqtt_client_id, false, c); /* false: persistent session */
    if (!c->mosq)
        return cb_error_set(err, errno == ENOMEM ? CB_ENOMEM : CB_ECONFIG, "mqtt_client_id",
                            "cannot make an MQTT client: %s", strerror(errno));
    /* Our thread runs the loop: libmosquitto then never writes on its own, so
     * PUBACKs leave only when the thread calls mosquitto_loop_write. */
    mosquitto_threaded_set(c->mosq, true);
    mosquitto_int_option(c->mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
    mosquitto_int_option(c->mosq, MOSQ_OPT_TCP_NODELAY, 1);
    mosquitto_connect_callback_set(c->mosq, on_connect);
    mosquitto_disconnect_callback_set(c->mosq, on_disconnect);
    mosquitto_message_callback_set(c->mosq, on_message);
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
    c->wake[0] = c->wake[1] = -1;
    c->backoff_s = RECONNECT_MIN_S;
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    int rc = mqtt_auth_service(cfg, c->password, err);
    if (rc == 0)
        rc = configure(c, err);
    if (rc != 0) {
        client_free(c);
        return rc;
    }
    /* An unreachable broker now is not an error: the thread retries. */
    rc = mosquitto_connect_async(c->mosq, cfg->mqtt_host, cfg->mqtt_port, KEEPALIVE_S);
    if (rc != MOSQ_ERR_SUCCESS) {
        lost(c, rc);
        c->broken = 1;
    }
    rc = pthread_create(&c->thread, NULL, run, c);
    if (rc != 0) {
        client_free(c);
        return cb_error_set(err, CB_EINTERNAL, NULL, "cannot start the MQTT thread: %s", strerror(rc));
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
    (void)!write(c->wake[1], "", 1); /* a full pipe has woken the thread already */
    pthread_join(c->thread, NULL); /* once the round in hand is stored and acknowledged */
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
                    "# HELP citybrain_mqtt_rounds_total Socket reads whose messages were stored, then acknowledged together.\n"
                    "# TYPE citybrain_mqtt_rounds_total counter\n"
                    "citybrain_mqtt_rounds_total %llu\n"
                    "# HELP citybrain_mqtt_connects_total Connections made to the broker.\n"
                    "# TYPE citybrain_mqtt_connects_total counter\n"
                    "citybrain_mqtt_connects_total %llu\n"
                    "# HELP citybrain_mqtt_disconnects_total Connections lost or closed.\n"
                    "# TYPE citybrain_mqtt_disconnects_total counter\n"
                    "citybrain_mqtt_disconnects_total %llu\n",
               atomic_load(&c->readings_stored), atomic_load(&c->readings_rejected),
               atomic_load(&c->backpressure_waits), atomic_load(&c->rounds), atomic_load(&c->connects),
               atomic_load(&c->disconnects));
}
