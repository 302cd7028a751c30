/* stats — per-route request counts by status and latency histograms, written
 * as Prometheus text exposition. */
#include "http_int.h"

#include "core/clock.h"

#include <stdio.h>
#include <stdlib.h>

static const double bucket_le[HTTP_BUCKETS] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                               0.05,   0.1,   0.25,   0.5,   1,    2.5};

int http__stats_init(http_server *s, cb_error *err)
{
    s->stats = calloc(s->opt.nroutes + 2, sizeof *s->stats);
    if (!s->stats)
        return cb_error_set(err, CB_ENOMEM, NULL, NULL);
    pthread_mutex_init(&s->stats_lock, NULL);
    return 0;
}

void http__stats_free(http_server *s)
{
    if (!s->stats)
        return;
    pthread_mutex_destroy(&s->stats_lock);
    free(s->stats);
    s->stats = NULL;
}

static struct http_route_stats *stats_for(http_server *s, int route)
{
    int i = route + 2; /* STATIC -> 0, NONE -> 1, routes from 2 */
    if (i < 0 || (size_t)i >= s->opt.nroutes + 2)
        i = 1;
    return &s->stats[i];
}

void http__stats_record(http_server *s, int route, int status, double seconds)
{
    pthread_mutex_lock(&s->stats_lock);
    struct http_route_stats *st = stats_for(s, route);
    for (int i = 0; i < HTTP_STATUS_SLOTS; i++) {
        if (st->status[i] == status || st->status[i] == 0 || i == HTTP_STATUS_SLOTS - 1) {
            st->status[i] = st->status[i] ? st->status[i] : status;
            st->count[i]++;
            break;
        }
    }
    int b = 0;
    while (b < HTTP_BUCKETS && seconds > bucket_le[b])
        b++;
    st->bucket[b]++;
    st->seconds_sum += seconds;
    pthread_mutex_unlock(&s->stats_lock);
}

static const char *route_label(http_server *s, size_t i, char *out, size_t outlen)
{
    if (i == 0)
        return "static";
    if (i == 1)
        return "unmatched";
    const struct http_route *r = &s->opt.routes[i - 2];
    snprintf(out, outlen, "%s %s", r->method, r->path);
    return out;
}

static void write_route(http_server *s, size_t i, buf *out)
{
    const struct http_route_stats *st = &s->stats[i];
    char label[256];
    route_label(s, i, label, sizeof label);
    unsigned long long total = 0;
    for (int k = 0; k < HTTP_STATUS_SLOTS && st->status[k]; k++)
        buf_printf(out, "citybrain_http_requests_total{route=\"%s\",status=\"%d\"} %llu\n", label,
                   st->status[k], st->count[k]);
    for (int b = 0; b <= HTTP_BUCKETS; b++) {
        total += st->bucket[b];
        if (b < HTTP_BUCKETS)
            buf_printf(out, "citybrain_http_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} %llu\n",
                       label, bucket_le[b], total);
        else
            buf_printf(out, "citybrain_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n",
                       label, total);
    }
    buf_printf(out, "citybrain_http_request_duration_seconds_sum{route=\"%s\"} %.6f\n", label,
               st->seconds_sum);
    buf_printf(out, "citybrain_http_request_duration_seconds_count{route=\"%s\"} %llu\n", label, total);
}

void http_server_write_metrics(http_server *s, buf *out)
{
    buf_puts(out, "# HELP citybrain_http_requests_total HTTP requests by route and status.\n"
                  "# TYPE citybrain_http_requests_total counter\n"
                  "# HELP citybrain_http_request_duration_seconds HTTP request latency by route.\n"
                  "# TYPE citybrain_http_request_duration_seconds histogram\n");
    pthread_mutex_lock(&s->stats_lock);
    for (size_t i = 0; i < s->opt.nroutes + 2; i++)
        if (s->stats[i].status[0] != 0) /* only routes that saw a request */
            write_route(s, i, out);
    pthread_mutex_unlock(&s->stats_lock);
    buf_printf(out, "# HELP citybrain_http_open_connections Open HTTP connections.\n"
                    "# TYPE citybrain_http_open_connections gauge\n"
                    "citybrain_http_open_connections %d\n",
               atomic_load(&s->open_connections));
    buf_printf(out, "# HELP citybrain_uptime_seconds Seconds since the server started.\n"
                    "# TYPE citybrain_uptime_seconds gauge\n"
                    "citybrain_uptime_seconds %.3f\n",
               clock_mono_s() - s->started);
}
