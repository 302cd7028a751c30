/* mqttpub — connect, publish at QoS 1, disconnect, many at once; see mqttpub.h. */
#include "mqttpub.h"

#include <mosquitto.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

#define RETRY_PAUSE_MS 2000

struct job {
    struct job *next;
    int attempts;
    int64_t not_before_ms;
    char *user, *password, *topic, *payload; /* point into the same allocation as the job */
};

enum conn_state { CONN_IDLE, CONN_CONNECTING, CONN_PUBLISHING, CONN_DONE, CONN_FAILED };

struct conn {
    struct mosquitto *m;
    struct job *job;
    enum conn_state state;
    int64_t deadline_ms;
    int connack; /* the broker's CONNACK code when it refused us */
};

struct mqttpub {
    char host[256];
    int port;
    struct conn *conns;
    size_t nconns;
    struct job *head, *tail;
    size_t queued_now;
    unsigned long long seq;
    struct mqttpub_counters n;
    int warned;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int mqttpub_new(const char *host, int port, int max_conns, mqttpub **out, char *err, size_t errlen)
{
    mqttpub *p = calloc(1, sizeof *p);
    if (p)
        p->conns = calloc((size_t)max_conns, sizeof *p->conns);
    if (!p || !p->conns) {
        free(p);
        return snprintf(err, errlen, "out of memory"), -1;
    }
    snprintf(p->host, sizeof p->host, "%s", host);
    p->port = port;
    p->nconns = (size_t)max_conns;
    *out = p;
    return 0;
}

static void conn_close(struct conn *c)
{
    if (c->m)
        mosquitto_destroy(c->m);
    c->m = NULL;
    c->state = CONN_IDLE;
}

void mqttpub_free(mqttpub *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->nconns; i++) {
        conn_close(&p->conns[i]);
        free(p->conns[i].job);
    }
    while (p->head) {
        struct job *j = p->head;
        p->head = j->next;
        free(j);
    }
    free(p->conns);
    free(p);
}

const struct mqttpub_counters *mqttpub_counters(const mqttpub *p)
{
    return &p->n;
}

static void push(mqttpub *p, struct job *j)
{
    j->next = NULL;
    if (p->tail)
        p->tail->next = j;
    else
        p->head = j;
    p->tail = j;
    p->queued_now++;
}

int mqttpub_enqueue(mqttpub *p, const char *user, const char *password, const char *topic, const char *payload)
{
    size_t lu = strlen(user) + 1, lp = strlen(password) + 1, lt = strlen(topic) + 1, lm = strlen(payload) + 1;
    struct job *j = malloc(sizeof *j + lu + lp + lt + lm);
    if (!j)
        return -1;
    memset(j, 0, sizeof *j);
    j->user = (char *)(j + 1);
    j->password = j->user + lu;
    j->topic = j->password + lp;
    j->payload = j->topic + lt;
    memcpy(j->user, user, lu);
    memcpy(j->password, password, lp);
    memcpy(j->topic, topic, lt);
    memcpy(j->payload, payload, lm);
    push(p, j);
    p->n.queued++;
    return 0;
}

static void on_connect(struct mosquitto *m, void *obj, int rc)
{
    struct conn *c = obj;
    if (rc != 0) {
        c->connack = rc;
        c->state = CONN_FAILED;
        return;
    }
    int mid;
    if (mosquitto_publish(m, &mid, c->job->topic, (int)strlen(c->job->payload), c->job->payload, 1, false) !=
        MOSQ_ERR_SUCCESS)
        c->state = CONN_FAILED;
    else
        c->state = CONN_PUBLISHING;
}

static void on_publish(struct mosquitto *m, void *obj, int mid)
{
    (void)m;
    (void)mid; /* one message per connection */
    struct conn *c = obj;
    c->state = CONN_DONE;
}

/* Opens a connection for the job at the head of the queue. */
static void conn_start(mqttpub *p, struct conn *c, int64_t now)
{
    struct job *j = p->head;
    p->head = j->next;
    if (!p->head)
        p->tail = NULL;
    p->queued_now--;
    char client_id[96];
    snprintf(client_id, sizeof client_id, "%s-%llu", j->user, ++p->seq);
    c->job = j;
    c->connack = 0;
    c->deadline_ms = now + MQTTPUB_TIMEOUT_S * 1000;
    c->m = mosquitto_new(client_id, true, c);
    if (!c->m || mosquitto_username_pw_set(c->m, j->user, j->password) != MOSQ_ERR_SUCCESS) {
        c->state = CONN_FAILED;
        return;
    }
    mosquitto_connect_callback_set(c->m, on_connect);
    mosquitto_publish_callback_set(c->m, on_publish);
    c->state = mosquitto_connect(c->m, p->host, p->port, 30) == MOSQ_ERR_SUCCESS ? CONN_CONNECTING : CONN_FAILED;
}

/* Ends a connection's job: counted done, queued again, or given up. */
static void conn_finish(mqttpub *p, struct conn *c, int64_t now)
{
    struct job *j = c->job;
    if (c->state == CONN_DONE) {
        mosquitto_disconnect(c->m);
        mosquitto_loop_write(c->m, 1);
        p->n.acked++;
        free(j);
    } else if (++j->attempts < MQTTPUB_ATTEMPTS) {
        j->not_before_ms = now + RETRY_PAUSE_MS;
        p->n.retried++;
        push(p, j);
    } else {
        if (p->warned++ < 10)
            sim_log(SIM_WARN, "mqtt_failed", "user=%s topic=%s connack=%d (%s)", j->user, j->topic, c->connack,
                    c->connack ? mosquitto_connack_string(c->connack) : "no answer");
        p->n.failed++;
        free(j);
    }
    c->job = NULL;
    conn_close(c);
}

/* Starts jobs on idle connections; returns how many are in flight. */
static size_t fill(mqttpub *p, int64_t now)
{
    size_t busy = 0;
    for (size_t i = 0; i < p->nconns; i++) {
        struct conn *c = &p->conns[i];
        if (c->state == CONN_IDLE && p->head && p->head->not_before_ms <= now)
            conn_start(p, c, now);
        if (c->state == CONN_DONE || c->state == CONN_FAILED || (c->state != CONN_IDLE && now >= c->deadline_ms))
            conn_finish(p, c, now);
        busy += c->state != CONN_IDLE;
    }
    return busy;
}

/* One poll over every open connection, up to wait_ms. */
static void pump(mqttpub *p, int wait_ms)
{
    struct pollfd fds[p->nconns];
    struct conn *owner[p->nconns];
    nfds_t n = 0;
    for (size_t i = 0; i < p->nconns; i++) {
        struct conn *c = &p->conns[i];
        int fd = c->m && c->state != CONN_IDLE ? mosquitto_socket(c->m) : -1;
        if (fd < 0)
            continue;
        fds[n] = (struct pollfd){.fd = fd, .events = POLLIN | (mosquitto_want_write(c->m) ? POLLOUT : 0)};
        owner[n++] = c;
    }
    poll(fds, n, wait_ms);
    for (nfds_t i = 0; i < n; i++) {
        struct conn *c = owner[i];
        int rc = MOSQ_ERR_SUCCESS;
        if (fds[i].revents & (POLLIN | POLLHUP | POLLERR))
            rc = mosquitto_loop_read(c->m, 1);
        if (rc == MOSQ_ERR_SUCCESS && (fds[i].revents & POLLOUT))
            rc = mosquitto_loop_write(c->m, 1);
        if (rc == MOSQ_ERR_SUCCESS)
            rc = mosquitto_loop_misc(c->m);
        if (rc != MOSQ_ERR_SUCCESS && c->state != CONN_DONE)
            c->state = CONN_FAILED;
    }
}

size_t mqttpub_run(mqttpub *p, int64_t until_ms, volatile sig_atomic_t *stop)
{
    for (;;) {
        int64_t now = now_ms();
        size_t busy = fill(p, now);
        if ((busy == 0 && p->queued_now == 0) || now >= until_ms || *stop)
            return busy + p->queued_now;
        int64_t wait = until_ms - now;
        pump(p, busy == 0 ? (int)(wait < 100 ? wait : 100) : (int)(wait < 50 ? wait : 50));
    }
}
