/* mqttpub — the MQTT load of bench/mqtt.sh, on libmosquitto (faster than
 * mosquitto_pub, which connects once per message batch and prints).
 *
 * Each line of the credentials file is "user password topic": one client
 * connection per line publishes its share of -n messages at QoS 1 to its
 * topic. A payload is a JSON object of three attributes and an increasing
 * "ts" (epoch ms), as a device sends (~70 bytes; the topic adds ~50).
 *
 *   mqttpub -p PORT -f CREDS -n N            publish, wait for every PUBACK
 *   mqttpub -p PORT -f CREDS -n N -S TOPIC   also subscribe to TOPIC (QoS 1)
 *                                            and wait until N messages arrived:
 *                                            the broker-only publish→subscribe rate
 *
 * Output: one line "messages=N seconds=S messages_per_s=R" (seconds from the
 * first publish to the last PUBACK, or to the last message received with -S). */
#include "bench_net.h"

#include <mosquitto.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_CLIENTS 64

struct client {
    struct mosquitto *m;
    char user[160], password[160], topic[200];
    atomic_int connected;
};

static atomic_long acked, received;
static atomic_int subscribed;

static void on_connect(struct mosquitto *m, void *arg, int rc)
{
    (void)m;
    struct client *c = arg;
    if (rc != 0) {
        fprintf(stderr, "mqttpub: %s: connection refused: %s\n", c->user, mosquitto_connack_string(rc));
        exit(1);
    }
    atomic_store(&c->connected, 1);
}

static void on_publish(struct mosquitto *m, void *arg, int mid)
{
    (void)m, (void)arg, (void)mid;
    atomic_fetch_add(&acked, 1);
}

static void on_subscribe(struct mosquitto *m, void *arg, int mid, int n, const int *granted)
{
    (void)m, (void)arg, (void)mid;
    if (n < 1 || granted[0] > 2) {
        fprintf(stderr, "mqttpub: subscription refused\n");
        exit(1);
    }
    atomic_store(&subscribed, 1);
}

static void on_message(struct mosquitto *m, void *arg, const struct mosquitto_message *msg)
{
    (void)m, (void)arg, (void)msg;
    atomic_fetch_add(&received, 1);
}

static struct mosquitto *start(struct client *c, int port, int clean)
{
    struct mosquitto *m = mosquitto_new(NULL, clean, c);
    if (!m)
        return NULL;
    mosquitto_int_option(m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
    mosquitto_max_inflight_messages_set(m, 100); /* the broker's max_inflight_messages */
    mosquitto_int_option(m, MOSQ_OPT_TCP_NODELAY, 1);
    if (c->user[0])
        mosquitto_username_pw_set(m, c->user, c->password);
    mosquitto_connect_callback_set(m, on_connect);
    mosquitto_publish_callback_set(m, on_publish);
    mosquitto_subscribe_callback_set(m, on_subscribe);
    mosquitto_message_callback_set(m, on_message);
    if (mosquitto_connect(m, "127.0.0.1", port, 60) != MOSQ_ERR_SUCCESS || mosquitto_loop_start(m) != MOSQ_ERR_SUCCESS) {
        fprintf(stderr, "mqttpub: cannot connect to 127.0.0.1:%d\n", port);
        exit(1);
    }
    return m;
}

static void wait_for(atomic_int *flag, const char *what)
{
    for (int i = 0; i < 1000 && !atomic_load(flag); i++)
        usleep(10000);
    if (!atomic_load(flag)) {
        fprintf(stderr, "mqttpub: timed out waiting for %s\n", what);
        exit(1);
    }
}

int main(int argc, char **argv)
{
    int port = 1883, opt;
    long n = 100000;
    const char *creds = NULL, *sub_topic = NULL;
    while ((opt = getopt(argc, argv, "p:f:n:S:")) != -1) {
        switch (opt) {
        case 'p': port = atoi(optarg); break;
        case 'f': creds = optarg; break;
        case 'n': n = atol(optarg); break;
        case 'S': sub_topic = optarg; break;
        default:
            fprintf(stderr, "usage: mqttpub -p PORT -f CREDS -n N [-S TOPIC]\n");
            return 2;
        }
    }
    static struct client cl[MAX_CLIENTS], sub;
    int nc = 0;
    FILE *f = creds ? fopen(creds, "r") : NULL;
    if (!f) {
        fprintf(stderr, "mqttpub: -f CREDS: a file of \"user password topic\" lines\n");
        return 2;
    }
    while (nc < MAX_CLIENTS && fscanf(f, "%159s %159s %199s", cl[nc].user, cl[nc].password, cl[nc].topic) == 3) {
        if (!strcmp(cl[nc].user, "-")) /* anonymous */
            cl[nc].user[0] = 0;
        nc++;
    }
    fclose(f);
    if (nc == 0) {
        fprintf(stderr, "mqttpub: no credentials in %s\n", creds);
        return 2;
    }
    mosquitto_lib_init();
    if (sub_topic) {
        sub.m = start(&sub, port, 1);
        wait_for(&sub.connected, "the subscriber's CONNACK");
        mosquitto_subscribe(sub.m, NULL, sub_topic, 1);
        wait_for(&subscribed, "the SUBACK");
    }
    for (int i = 0; i < nc; i++)
        cl[i].m = start(&cl[i], port, 1);
    for (int i = 0; i < nc; i++)
        wait_for(&cl[i].connected, "a publisher's CONNACK");

    long long ts = (long long)time(NULL) * 1000 - 3600000;
    double t0 = now_s();
    for (long k = 0; k < n; k++) {
        char payload[160];
        int len = snprintf(payload, sizeof payload, "{\"ts\":%lld,\"pm25\":%ld.%04ld,\"pm10\":%ld.%04ld,\"no2\":%ld.%04ld}",
                           ts + k / nc, 10 + k % 90, k % 10000, 20 + k % 80, (k * 7) % 10000, 5 + k % 60, (k * 13) % 10000);
        struct client *c = &cl[k % nc];
        int rc;
        while ((rc = mosquitto_publish(c->m, NULL, c->topic, len, payload, 1, false)) == MOSQ_ERR_OVERSIZE_PACKET ||
               rc == MOSQ_ERR_NOMEM)
            usleep(1000);
        if (rc != MOSQ_ERR_SUCCESS) {
            fprintf(stderr, "mqttpub: publish: %s\n", mosquitto_strerror(rc));
            return 1;
        }
        /* Keep libmosquitto's own queue short: at most ~10,000 messages ahead of the PUBACKs. */
        while (k - atomic_load(&acked) > 10000)
            usleep(200);
    }
    atomic_long *done = sub_topic ? &received : &acked;
    double last_change = now_s();
    long seen = -1;
    while (atomic_load(done) < n) {
        long cur = atomic_load(done);
        if (cur != seen)
            seen = cur, last_change = now_s();
        else if (now_s() - last_change > 30) {
            fprintf(stderr, "mqttpub: stalled at %ld of %ld\n", cur, n);
            return 1;
        }
        usleep(200);
    }
    double secs = now_s() - t0;
    printf("messages=%ld seconds=%.3f messages_per_s=%.0f clients=%d\n", n, secs, n / secs, nc);
    fflush(stdout);
    for (int i = 0; i < nc; i++) {
        mosquitto_disconnect(cl[i].m);
        mosquitto_loop_stop(cl[i].m, false);
        mosquitto_destroy(cl[i].m);
    }
    if (sub_topic) {
        mosquitto_disconnect(sub.m);
        mosquitto_loop_stop(sub.m, false);
        mosquitto_destroy(sub.m);
    }
    mosquitto_lib_cleanup();
    return 0;
}
