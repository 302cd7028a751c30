/* Unit tests for the events ring: ids across restarts, wraparound, filters,
 * gap frames, the byte bound, waking idle subscribers, max_streams and the
 * webhook store's validation. */
#include "core/clock.h"
#include "core/log.h"
#include "events/events.h"
#include "test.h"

static char dir[64];
static struct cb_config cfg;

/* Opens a ring in dir (made by the test with test_make_dir). */
static events *open_ring(long long n, long long bytes)
{
    log_set_level(LOG_ERROR);
    config_defaults(&cfg);
    snprintf(cfg.data_dir, sizeof cfg.data_dir, "%s", dir);
    cfg.events_buffer = n;
    cfg.events_buffer_bytes = bytes;
    cfg.max_streams = 2;
    events *ev = NULL;
    cb_error err;
    if (events_open(&cfg, &ev, &err) != 0)
        fprintf(stderr, "events_open: %s\n", err.message);
    return ev;
}

/* A fresh dir and a ring in it; close_ring closes both. */
static events *new_ring(long long n, long long bytes)
{
    test_make_dir(dir);
    return open_ring(n, bytes);
}

static void close_ring(events *ev)
{
    events_close(ev);
    test_remove_dir(dir);
}

static uint64_t pub(events *ev, const char *kind, const char *type, const char *district, const char *dep, int n)
{
    struct event_scope sc = {district, dep};
    return events_publish(ev, kind, type, &sc, json_pack("{s:i}", "n", n));
}

static void nop_wake(void *ctx)
{
    (*(int *)ctx)++;
}

/* Subscribes with a filter given as text; NULL on failure. */
static event_sub *sub(events *ev, const char *kinds, const char *district, const char *dep, uint64_t last,
                      int *wakes)
{
    struct event_filter f;
    memset(&f, 0, sizeof f);
    cb_error err;
    if (kinds && events_filter_kinds(&f, kinds, &err) != 0)
        return NULL;
    snprintf(f.district, sizeof f.district, "%s", district ? district : "");
    snprintf(f.department, sizeof f.department, "%s", dep ? dep : "");
    event_sub *s = NULL;
    events_subscribe(ev, &f, last, 0, nop_wake, wakes, &s, &err);
    return s;
}

/* Reads the frames s has now into out, emptied first; returns how many. */
static int read_new(events *ev, event_sub *s, buf *out)
{
    out->len = 0;
    return events_sse_read(ev, s, out, 1 << 20);
}

static int count_of(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

TEST(test_ids_monotonic_and_above_the_clock)
{
    uint64_t before = (uint64_t)clock_now_ms() * 1000;
    events *ev = new_ring(100, 1 << 20);
    CHECK(ev != NULL);
    uint64_t a = pub(ev, "alarm", "alarm.raised", "410802", "CGJ", 1);
    uint64_t b = pub(ev, "case", "case.created", "410802", "CGJ", 2);
    CHECK(a >= before);
    CHECK(a < (1ULL << 53)); /* exact in JavaScript */
    CHECK_INT(b, a + 1);
    CHECK_INT(events_last_id(ev), b);
    events_close(ev);
    /* a restart continues above the last id, even with the clock behind it */
    ev = open_ring(100, 1 << 20);
    uint64_t c = pub(ev, "kpi", "kpi.tick", NULL, NULL, 3);
    CHECK(c > b);
    close_ring(ev);
}

TEST(test_frames_and_resume_after_last_id)
{
    events *ev = new_ring(100, 1 << 20);
    int wakes = 0;
    uint64_t first = pub(ev, "alarm", "alarm.raised", "410802", "CGJ", 1);
    pub(ev, "alarm", "alarm.cleared", "410802", "CGJ", 2);
    pub(ev, "case", "case.created", "410803", "JTJ", 3);
    event_sub *s = sub(ev, NULL, NULL, NULL, first, &wakes);
    buf out = BUF_INIT;
    CHECK_INT(read_new(ev, s, &out), 2);
    char want[256];
    snprintf(want, sizeof want, "id: %llu\nevent: alarm.cleared\ndata: {\"id\":%llu,\"kind\":\"alarm\",",
             (unsigned long long)first + 1, (unsigned long long)first + 1);
    CHECK(strncmp(out.data, want, strlen(want)) == 0);
    CHECK(strstr(out.data, "\"data\":{\"n\":2}}\n\n") != NULL);
    CHECK(strstr(out.data, "event: case.created\n") != NULL);
    CHECK(strstr(out.data, "\"district\":\"410803\",\"department\":\"JTJ\"") != NULL);
    CHECK_INT(count_of(out.data, "\n\n"), 2);
    /* nothing new: 0, and the next matching publish wakes it once */
    CHECK_INT(read_new(ev, s, &out), 0);
    CHECK_INT(wakes, 0);
    pub(ev, "kpi", "kpi.tick", NULL, NULL, 4);
    pub(ev, "kpi", "kpi.tick", NULL, NULL, 5);
    CHECK_INT(wakes, 1);
    CHECK_INT(read_new(ev, s, &out), 2);
    buf_free(&out);
    events_unsubscribe(ev, s);
    close_ring(ev);
}

TEST(test_filters)
{
    events *ev = new_ring(100, 1 << 20);
    int w1 = 0, w2 = 0, w3 = 0;
    event_sub *alarms = sub(ev, "alarm,supervision", NULL, NULL, 0, &w1);
    event_sub *district = sub(ev, NULL, "410802", NULL, 0, &w2);
    event_sub *dept = sub(ev, "case", NULL, "CGJ", 0, &w3);
    CHECK(alarms && district && dept);
    cb_error err;
    struct event_filter f;
    CHECK_INT(events_filter_kinds(&f, "alarm,parade", &err), CB_EINVALID_FIELD);
    CHECK(strstr(err.message, "parade") != NULL);
    pub(ev, "alarm", "alarm.raised", "410802", "CGJ", 1);
    pub(ev, "case", "case.created", "410802", "CGJ", 2);
    pub(ev, "case", "case.created", "410803", "SWJ", 3);
    pub(ev, "supervision", "supervision.red", "410803", "CGJ", 4);
    pub(ev, "kpi", "kpi.tick", NULL, NULL, 5);
    buf out = BUF_INIT;
    CHECK_INT(read_new(ev, alarms, &out), 2);
    CHECK(strstr(out.data, "alarm.raised") && strstr(out.data, "supervision.red") && !strstr(out.data, "case."));
    CHECK_INT(read_new(ev, district, &out), 2);
    CHECK(strstr(out.data, "\"n\":1") && strstr(out.data, "\"n\":2") && !strstr(out.data, "kpi"));
    CHECK_INT(read_new(ev, dept, &out), 1);
    CHECK(strstr(out.data, "\"n\":2") != NULL);
    buf_free(&out);
    events_unsubscribe(ev, alarms);
    events_unsubscribe(ev, district);
    events_unsubscribe(ev, dept);
    close_ring(ev);
}

TEST(test_wraparound_and_gap)
{
    events *ev = new_ring(16, 1 << 20);
    int wakes = 0;
    uint64_t first = pub(ev, "alarm", "alarm.raised", NULL, NULL, 0);
    for (int i = 1; i < 40; i++)
        pub(ev, "alarm", "alarm.raised", NULL, NULL, i);
    /* ids first..first+39; the ring holds the last 16: first+24.. */
    event_sub *s = sub(ev, NULL, NULL, NULL, first + 2, &wakes);
    buf out = BUF_INIT;
    CHECK_INT(read_new(ev, s, &out), 17);
    char want[128];
    snprintf(want, sizeof want, "event: gap\ndata: {\"from\":%llu,\"to\":%llu}\n\n", (unsigned long long)first + 3,
             (unsigned long long)first + 24);
    CHECK(strncmp(out.data, want, strlen(want)) == 0);
    CHECK(strstr(out.data, "\"n\":24}") && strstr(out.data, "\"n\":39}") && !strstr(out.data, "\"n\":23}"));
    CHECK_INT(count_of(out.data, "id: "), 16);
    /* a reader that falls behind while connected gets a gap too */
    for (int i = 40; i < 60; i++)
        pub(ev, "alarm", "alarm.raised", NULL, NULL, i);
    CHECK_INT(read_new(ev, s, &out), 17);
    snprintf(want, sizeof want, "{\"from\":%llu,\"to\":%llu}", (unsigned long long)first + 40,
             (unsigned long long)first + 44);
    CHECK(strstr(out.data, want) != NULL);
    /* a position still in the ring has no gap; one beyond the newest starts live */
    event_sub *in = sub(ev, NULL, NULL, NULL, first + 50, &wakes);
    event_sub *future = sub(ev, NULL, NULL, NULL, first + 1000, &wakes);
    CHECK_INT(read_new(ev, in, &out), 9);
    CHECK(strstr(out.data, "gap") == NULL);
    CHECK_INT(read_new(ev, future, &out), 0);
    /* max limits one read; the rest comes on the next */
    event_sub *slow = sub(ev, NULL, NULL, NULL, first + 50, &wakes);
    out.len = 0;
    CHECK_INT(events_sse_read(ev, slow, &out, 10), 1);
    CHECK_INT(events_sse_read(ev, slow, &out, 1 << 20), 8);
    buf_free(&out);
    events_unsubscribe(ev, s);
    events_unsubscribe(ev, in);
    events_unsubscribe(ev, future);
    events_unsubscribe(ev, slow);
    close_ring(ev);
}

static long long metric(events *ev, const char *name)
{
    buf m = BUF_INIT;
    events_write_metrics(ev, &m);
    long long v = -1;
    char key[128];
    snprintf(key, sizeof key, "\n%s ", name);
    const char *p = m.data ? strstr(m.data, key) : NULL;
    if (p)
        v = atoll(p + strlen(key));
    buf_free(&m);
    return v;
}

TEST(test_byte_bound)
{
    events *ev = new_ring(10000, 64 * 1024);
    char big[4000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    for (int i = 0; i < 100; i++)
        events_publish(ev, "case", "case.created", NULL, json_pack("{s:s}", "description", big));
    long long held = metric(ev, "citybrain_events_buffered");
    long long bytes = metric(ev, "citybrain_events_buffered_bytes");
    CHECK(held >= 14 && held <= 16); /* 64 KB / ~4.1 KB */
    CHECK(bytes <= 64 * 1024 && bytes > 60 * 1024);
    CHECK_INT(metric(ev, "citybrain_events_last_id"), (long long)events_last_id(ev));
    close_ring(ev);
}

TEST(test_max_streams)
{
    events *ev = new_ring(100, 1 << 20);
    struct event_filter f;
    memset(&f, 0, sizeof f);
    int wakes = 0;
    event_sub *a = NULL, *b = NULL, *c = NULL, *other = NULL;
    cb_error err;
    CHECK_INT(events_subscribe(ev, &f, 0, 1, nop_wake, &wakes, &a, &err), 0);
    CHECK_INT(events_subscribe(ev, &f, 0, 1, nop_wake, &wakes, &b, &err), 0);
    CHECK_INT(events_subscribe(ev, &f, 0, 1, nop_wake, &wakes, &c, &err), CB_EUNAVAILABLE);
    CHECK_INT(events_subscribe(ev, &f, 0, 0, nop_wake, &wakes, &other, &err), 0); /* not a stream */
    CHECK_INT(metric(ev, "citybrain_stream_clients"), 2);
    events_unsubscribe(ev, a);
    CHECK_INT(events_subscribe(ev, &f, 0, 1, nop_wake, &wakes, &c, &err), 0);
    events_unsubscribe(ev, b);
    events_unsubscribe(ev, c);
    events_unsubscribe(ev, other);
    close_ring(ev);
}

TEST(test_webhook_store)
{
    events *ev = new_ring(100, 1 << 20);
    cb_error err;
    json_t *out = NULL;
    CHECK_INT(events_webhook_create(ev, "ftp://x/y", NULL, 0, &out, &err), CB_EINVALID_FIELD);
    CHECK_STR(err.field, "url");
    CHECK_INT(events_webhook_create(ev, "http:///nohost", NULL, 0, &out, &err), CB_EINVALID_FIELD);
    CHECK_INT(events_webhook_create(ev, "http://a b/", NULL, 0, &out, &err), CB_EINVALID_FIELD);
    CHECK_INT(events_webhook_create(ev, "http://127.0.0.1:9/h", "short", 0, &out, &err), CB_EINVALID_FIELD);
    CHECK_STR(err.field, "secret");
    CHECK_INT(events_webhook_create(ev, "http://127.0.0.1:9/h", NULL, 1u << EVENT_ALARM, &out, &err), 0);
    char id[32];
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(out, "id")));
    CHECK_INT(strlen(json_string_value(json_object_get(out, "secret"))), 64);
    json_decref(out);
    events_close(ev);
    /* it survives a restart, without its secret in the list */
    ev = open_ring(100, 1 << 20);
    CHECK_INT(events_webhook_list(ev, &out, &err), 0);
    json_t *hooks = json_object_get(out, "webhooks");
    CHECK_INT(json_array_size(hooks), 1);
    json_t *h = json_array_get(hooks, 0);
    CHECK_STR(json_string_value(json_object_get(h, "id")), id);
    CHECK(json_object_get(h, "secret") == NULL);
    CHECK_STR(json_string_value(json_array_get(json_object_get(h, "kinds"), 0)), "alarm");
    json_decref(out);
    CHECK_INT(events_webhook_delete(ev, "whnope", &err), CB_ENOT_FOUND);
    CHECK_INT(events_webhook_delete(ev, id, &err), 0);
    CHECK_INT(events_webhook_list(ev, &out, &err), 0);
    CHECK_INT(json_array_size(json_object_get(out, "webhooks")), 0);
    json_decref(out);
    close_ring(ev);
}

TEST_MAIN(test_ids_monotonic_and_above_the_clock, test_frames_and_resume_after_last_id, test_filters,
          test_wraparound_and_gap, test_byte_bound, test_max_streams, test_webhook_store)
