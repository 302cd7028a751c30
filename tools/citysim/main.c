/* citysim — plays a city against citybrain through its public interfaces
 * (HTTP, line protocol, MQTT, Open311): registers the city's devices, sends
 * their readings round after round with daily patterns, injects incidents,
 * files citizens' problems as cases and works them through the workflow.
 * main.c holds the flags, the round loop and the status line; the rest is in
 * catalog.c (devices), signals.c (what they measure), incident.c, report.c
 * (the doors), mqttpub.c, city.c (districts), api.c/httpc.c (HTTP), and for
 * the cases staff.c (role keys), intake.c with phrasebook.c (reports),
 * casework.c (the centre and the departments). */
#include <errno.h>
#include <mosquitto.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "casework.h"
#include "catalog.h"
#include "city.h"
#include "incident.h"
#include "intake.h"
#include "log.h"
#include "mqttpub.h"
#include "report.h"
#include "signals.h"
#include "staff.h"

#define MQTT_CONNECTIONS 32 /* connections open at once to the broker */

struct options {
    const char *url, *key_file, *key_env, *mqtt_host, *keys_dir;
    long devices, mqtt_port, mqtt_devices, seed;
    double interval, duration, incident_every, reports_per_min, case_pace;
    int no_incidents, no_cases, no_reports, no_casework, once, help;
};

enum opt_kind { OPT_STR, OPT_LONG, OPT_DOUBLE, OPT_FLAG };

/* The one table behind parsing and --help (STYLE 18). */
static const struct opt {
    const char *name, *arg, *deflt, *doc;
    enum opt_kind kind;
    size_t offset;
    double min, max;
} opts[] = {
    {"url", "URL", "http://127.0.0.1:8080", "citybrain's address (http:// only)", OPT_STR,
     offsetof(struct options, url), 0, 0},
    {"key", "FILE", NULL, "file holding an admin API key (e.g. data/demo-admin.key); an operator's will do with --no-cases", OPT_STR,
     offsetof(struct options, key_file), 0, 0},
    {"key-env", "VAR", NULL, "environment variable holding the key, instead of --key", OPT_STR,
     offsetof(struct options, key_env), 0, 0},
    {"devices", "N", "3000", "devices to play, spread over the districts (millions work; ~80 B each)", OPT_LONG,
     offsetof(struct options, devices), 1, 50000000},
    {"interval", "SECONDS", "5", "seconds between rounds; each type reports at its own period or this, if longer",
     OPT_DOUBLE, offsetof(struct options, interval), 0.1, 86400},
    {"mqtt-host", "HOST", "127.0.0.1", "the MQTT broker's host", OPT_STR, offsetof(struct options, mqtt_host), 0,
     0},
    {"mqtt-port", "PORT", "1883", "the MQTT broker's port; 0: no MQTT (those devices use line protocol)",
     OPT_LONG, offsetof(struct options, mqtt_port), 0, 65535},
    {"mqtt-devices", "N", "300",
     "at most this many devices (smoke detectors, manhole covers) report over MQTT; each needs a new token at start",
     OPT_LONG, offsetof(struct options, mqtt_devices), 0, 1000000},
    {"duration", "SECONDS", "0", "stop after this long; 0: run until SIGTERM or SIGINT", OPT_DOUBLE,
     offsetof(struct options, duration), 0, 1e9},
    {"seed", "N", "1", "the city's seed: same seed and --devices, same devices (restarts are idempotent); readings and incidents vary per run",
     OPT_LONG, offsetof(struct options, seed), 0, 1e18},
    {"incident-every", "SECONDS", "90", "mean seconds between incidents (one at a time of each kind); 0: none",
     OPT_DOUBLE, offsetof(struct options, incident_every), 0, 1e9},
    {"no-incidents", NULL, NULL, "no incidents (as --incident-every 0)", OPT_FLAG,
     offsetof(struct options, no_incidents), 0, 0},
    {"reports-per-min", "N", "3",
     "cases reported a minute on average: 12345 hotline 45%, grid workers 35%, citizens 20% (Open311 when served)",
     OPT_DOUBLE, offsetof(struct options, reports_per_min), 0, 600},
    {"case-pace", "X", "1", "the case workflow's speed: the centre's and departments' delays (minutes) divided by X",
     OPT_DOUBLE, offsetof(struct options, case_pace), 0.01, 10000},
    {"keys-dir", "DIR", NULL,
     "keep the role keys citysim makes for the workflow (operator, hotline, citizen, grid, dept) here and reuse them; "
     "without it each run makes new ones",
     OPT_STR, offsetof(struct options, keys_dir), 0, 0},
    {"no-reports", NULL, NULL, "file no reports (the workflow still works the cases there are)", OPT_FLAG,
     offsetof(struct options, no_reports), 0, 0},
    {"no-casework", NULL, NULL, "do not play the operations centre and the departments", OPT_FLAG,
     offsetof(struct options, no_casework), 0, 0},
    {"no-cases", NULL, NULL, "no cases at all: --no-reports and --no-casework (then any key that may write will do)",
     OPT_FLAG, offsetof(struct options, no_cases), 0, 0},
    {"once", NULL, NULL,
     "register, send one round (every device) with a rainstorm, an open manhole and smoke under way, file one "
     "report per channel, work every waiting case to its end, wait for MQTT, exit (1 if anything failed)",
     OPT_FLAG, offsetof(struct options, once), 0, 0},
    {"help", NULL, NULL, "this text", OPT_FLAG, offsetof(struct options, help), 0, 0},
};
#define NOPTS (sizeof opts / sizeof opts[0])

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: citysim --key FILE [options]\n\n"
               "Plays the demo city (Jiaozuo) against a running citybrain through its public\n"
               "interfaces: registers devices of every type in every district, sends readings\n"
               "with daily patterns over line protocol, JSON and MQTT, and injects incidents\n"
               "(rainstorm, open manhole, smoke, hazardous-goods truck off its corridor,\n"
               "device offline). Files problems as cases through the 12345 hotline, grid\n"
               "workers and citizens (Open311), and plays the operations centre and the\n"
               "departments working them (accept, dispatch, handle, return, check, close, rate)\n"
               "with role keys it makes through POST /api/v1/keys: the workflow needs an\n"
               "admin key. Prints a status line per round; SIGTERM/SIGINT stop it (exit 0).\n\n");
    for (size_t i = 0; i < NOPTS; i++) {
        char left[48];
        snprintf(left, sizeof left, "--%s%s%s", opts[i].name, opts[i].arg ? " " : "", opts[i].arg ? opts[i].arg : "");
        fprintf(f, "  %-26s %s", left, opts[i].doc);
        if (opts[i].deflt)
            fprintf(f, " [%s]", opts[i].deflt);
        fputc('\n', f);
    }
}

static int set_option(struct options *o, const struct opt *op, const char *v)
{
    char *at = (char *)o + op->offset, *end;
    if (op->kind == OPT_STR) {
        *(const char **)at = v;
        return 0;
    }
    errno = 0;
    double x = strtod(v, &end);
    if (end == v || *end || errno || x < op->min || x > op->max || (op->kind == OPT_LONG && x != (long)x)) {
        fprintf(stderr, "citysim: --%s must be a%s number in [%g, %g], got '%s'\n", op->name,
                op->kind == OPT_LONG ? " whole" : "", op->min, op->max, v);
        return -1;
    }
    if (op->kind == OPT_LONG)
        *(long *)at = (long)x;
    else
        *(double *)at = x;
    return 0;
}

static int parse_args(int argc, char **argv, struct options *o)
{
    memset(o, 0, sizeof *o);
    for (size_t i = 0; i < NOPTS; i++)
        if (opts[i].deflt && set_option(o, &opts[i], opts[i].deflt) != 0)
            return -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *eq = strchr(a, '=');
        size_t len = eq ? (size_t)(eq - a) : strlen(a);
        const struct opt *op = NULL;
        for (size_t j = 0; j < NOPTS && a[0] == '-' && a[1] == '-'; j++)
            if (strlen(opts[j].name) == len - 2 && !strncmp(a + 2, opts[j].name, len - 2))
                op = &opts[j];
        if (!op) {
            fprintf(stderr, "citysim: unknown option '%s' (see --help)\n", a);
            return -1;
        }
        if (op->kind == OPT_FLAG) {
            *(int *)((char *)o + op->offset) = 1;
            continue;
        }
        const char *v = eq ? eq + 1 : i + 1 < argc ? argv[++i] : NULL;
        if (!v) {
            fprintf(stderr, "citysim: --%s needs a value\n", op->name);
            return -1;
        }
        if (set_option(o, op, v) != 0)
            return -1;
    }
    return 0;
}

/* The key from --key FILE (first line) or --key-env; into out. */
static int read_key(const struct options *o, char *out, size_t outlen)
{
    const char *v = NULL;
    if (o->key_env && !(v = getenv(o->key_env))) {
        fprintf(stderr, "citysim: environment variable %s is not set\n", o->key_env);
        return -1;
    }
    if (v) {
        snprintf(out, outlen, "%s", v);
    } else if (o->key_file) {
        FILE *f = fopen(o->key_file, "r");
        if (!f || !fgets(out, (int)outlen, f)) {
            fprintf(stderr, "citysim: cannot read a key from %s: %s\n", o->key_file, f ? "empty" : strerror(errno));
            if (f)
                fclose(f);
            return -1;
        }
        fclose(f);
    } else {
        fprintf(stderr, "citysim: give an admin key with --key FILE or --key-env VAR\n");
        return -1;
    }
    out[strcspn(out, " \t\r\n")] = 0;
    return *out ? 0 : -1;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Districts, retried for a while: citysim may start as citybrain does. */
static int load_city(struct sim *s, char *err, size_t errlen)
{
    for (int attempt = 0; attempt < 30 && !stop_flag; attempt++) {
        if (city_load(s->api, &s->city, err, errlen) == 0)
            return 0;
        if (api_counters(s->api)->transport_errors == 0)
            return -1; /* citybrain answered: waiting will not help */
        api_sleep(s->api, 1);
    }
    return -1;
}

/* The case part: the staff's keys, the reports and the casework. */
struct people {
    int on;      /* the staff's keys are in hand */
    int working; /* the casework is played */
    staff st;
    intake in;
    casework cw;
};

static int setup_people(struct people *pp, struct sim *s, const struct options *o, uint64_t play)
{
    char err[512] = "";
    if (o->no_cases || (o->no_reports && o->no_casework))
        return 0;
    if (staff_load(&pp->st, s->api, &s->city, o->keys_dir, err, sizeof err) != 0) {
        if (!stop_flag)
            sim_log(o->once ? SIM_ERROR : SIM_WARN, "cases_off", "error=\"%s\"", err);
        return o->once && !stop_flag ? -1 : 0;
    }
    pp->on = 1;
    pp->working = !o->no_casework;
    intake_init(&pp->in, o->no_reports ? 0 : o->reports_per_min, play + 2, now_ms());
    casework_init(&pp->cw, o->case_pace, o->once, now_ms());
    return 0;
}

static int setup(struct sim *s, struct people *pp, const struct options *o, const char *key)
{
    char err[512];
    struct register_stats rs;
    if (api_open(o->url, key, &stop_flag, &s->api, err, sizeof err) != 0 || load_city(s, err, sizeof err) != 0)
        goto fail;
    if (catalog_build(&s->cat, &s->city, (size_t)o->devices, o->mqtt_port ? (size_t)o->mqtt_devices : 0,
                      (uint64_t)o->seed) != 0) {
        snprintf(err, sizeof err, "out of memory for %ld devices", o->devices);
        goto fail;
    }
    /* The devices follow from the seed; their readings and incidents differ
     * from run to run. */
    uint64_t play = (uint64_t)o->seed ^ (uint64_t)now_ms() ^ ((uint64_t)getpid() << 32);
    rng_seed(&s->r, play);
    signal_init(&s->cat, &s->r);
    int64_t t0 = now_ms();
    if (catalog_register(&s->cat, &s->city, s->api, &rs, err, sizeof err) != 0)
        goto fail;
    sim_log(SIM_INFO, "registered", "devices=%zu created=%zu existing=%zu failed=%zu tokens=%zu mqtt_devices=%zu "
            "districts=%zu took_ms=%lld", s->cat.n, rs.created, rs.existing, rs.failed, rs.tokens,
            s->cat.mqtt_devices, s->city.n, (long long)(now_ms() - t0));
    if (o->mqtt_port && mqttpub_new(o->mqtt_host, (int)o->mqtt_port, MQTT_CONNECTIONS, &s->mqtt, err, sizeof err) != 0)
        goto fail;
    incidents_init(&s->inc, o->once || o->no_incidents ? 0 : o->incident_every, play + 1, now_ms());
    return setup_people(pp, s, o, play);
fail:
    if (!stop_flag)
        sim_log(SIM_ERROR, "start_failed", "url=%s error=\"%s\"", o->url, err);
    return -1;
}

static void teardown(struct sim *s, struct people *pp)
{
    staff_free(&pp->st);
    intake_free(&pp->in);
    mqttpub_free(s->mqtt);
    incidents_free(&s->inc);
    catalog_free(&s->cat);
    city_free(&s->city);
    api_free(s->api);
}

/* Sums over the run, and the cumulative counters as of the last status line
 * (the line shows per-round differences). */
struct totals {
    unsigned long long readings, accepted, rejected, failed_requests;
    unsigned long long http_503, mqtt_acked, mqtt_failed;
};

static unsigned long cases_reported(const struct people *pp)
{
    unsigned long n = 0;
    for (int ch = 0; ch < CH_COUNT; ch++)
        n += pp->in.n.filed[ch];
    return n;
}

static void status_line(struct sim *s, const struct people *pp, unsigned long round, const struct report_stats *st,
                        double secs, struct totals *tot)
{
    const struct api_counters *ac = api_counters(s->api);
    const struct mqttpub_counters *mc = s->mqtt ? mqttpub_counters(s->mqtt) : NULL;
    char inc[256];
    tot->readings += st->readings;
    tot->accepted += st->accepted;
    tot->rejected += st->rejected;
    tot->failed_requests += st->failed_requests;
    unsigned long long acked = mc ? mc->acked : 0, failed = mc ? mc->failed : 0;
    incidents_summary(&s->inc, &s->city, inc, sizeof inc);
    sim_log(SIM_INFO, "round",
            "n=%lu devices=%zu reported=%zu sent=%zu accepted=%zu rejected=%zu http_503=%llu failed_requests=%zu "
            "mqtt_queued=%zu mqtt_acked=%llu mqtt_failed=%llu readings_per_s=%.0f incidents=%s cases_reported=%lu "
            "case_actions=%lu",
            round, s->cat.n, st->devices, st->readings, st->accepted, st->rejected, ac->http_503 - tot->http_503,
            st->failed_requests, st->mqtt_messages, acked - tot->mqtt_acked, failed - tot->mqtt_failed,
            secs > 0 ? (double)st->readings / secs : 0, inc, cases_reported(pp), pp->cw.n.actions);
    tot->http_503 = ac->http_503;
    tot->mqtt_acked = acked;
    tot->mqtt_failed = failed;
}

/* Waits for the next round, meanwhile publishing over MQTT. */
static void wait_until(struct sim *s, int64_t until_ms)
{
    if (s->mqtt)
        mqttpub_run(s->mqtt, until_ms, &stop_flag);
    int64_t left = until_ms - now_ms();
    if (left > 0 && !stop_flag)
        api_sleep(s->api, (double)left / 1000);
}

/* The case part's turn in a round: reports due, then the casework. */
static void people_round(struct people *pp, struct sim *s, int once)
{
    if (!pp->on)
        return;
    intake_tick(&pp->in, s->api, &s->city, &pp->st, now_ms(), once && pp->in.per_min > 0);
    if (pp->working)
        casework_tick(&pp->cw, s->api, &s->city, &pp->st, now_ms());
}

static void people_summary(const struct people *pp)
{
    if (!pp->on)
        return;
    const struct intake_counters *in = &pp->in.n;
    const struct casework_counters *cw = &pp->cw.n;
    sim_log(SIM_INFO, "cases", "hotline=%lu grid=%lu citizen=%lu open311=%lu report_failed=%lu actions=%lu "
            "returned=%lu reworked=%lu closed=%lu evaluated=%lu conflicts=%lu action_failed=%lu",
            in->filed[CH_HOTLINE], in->filed[CH_GRID], in->filed[CH_CITIZEN], in->open311, in->failed, cw->actions,
            cw->returned, cw->reworked, cw->closed, cw->evaluated, cw->conflicts, cw->failed);
}

static int run(struct sim *s, struct people *pp, const struct options *o)
{
    struct totals tot = {0};
    int64_t start = now_ms(), last = start;
    if (o->once && !o->no_incidents && o->incident_every > 0)
        incidents_start_now(&s->inc, &s->cat, &s->city, s->api, start);
    for (unsigned long round = 1; !stop_flag; round++) {
        int64_t t = now_ms();
        struct report_stats st;
        incidents_tick(&s->inc, &s->cat, &s->city, s->api, t);
        report_round(s, t, o->once || round == 1, &st);
        people_round(pp, s, o->once);
        if (o->once && s->mqtt && mqttpub_run(s->mqtt, now_ms() + 60000, &stop_flag) > 0)
            sim_log(SIM_WARN, "mqtt_unfinished", "messages still queued after 60 s");
        int64_t done = now_ms();
        /* A rate over the time the round stands for: since the last one began. */
        status_line(s, pp, round, &st, round == 1 ? o->interval : (double)(t - last) / 1000, &tot);
        last = t;
        if (o->once) {
            unsigned long long mqtt_failed = s->mqtt ? mqttpub_counters(s->mqtt)->failed : 0;
            people_summary(pp);
            return tot.rejected || tot.failed_requests || mqtt_failed || pp->in.n.failed || pp->cw.n.failed ? 1 : 0;
        }
        if (o->duration > 0 && done - start >= (int64_t)(o->duration * 1000)) {
            if (s->mqtt) /* the last round's messages, before going */
                mqttpub_run(s->mqtt, now_ms() + 10000, &stop_flag);
            break;
        }
        int64_t next = t + (int64_t)(o->interval * 1000);
        if (o->duration > 0 && next > start + (int64_t)(o->duration * 1000))
            next = start + (int64_t)(o->duration * 1000);
        wait_until(s, next);
    }
    unsigned long long mqtt_acked = s->mqtt ? mqttpub_counters(s->mqtt)->acked : 0;
    people_summary(pp);
    sim_log(SIM_INFO, "stopped", "readings=%llu accepted=%llu rejected=%llu mqtt_acked=%llu", tot.readings,
            tot.accepted, tot.rejected, mqtt_acked);
    return 0;
}

int main(int argc, char **argv)
{
    struct options o;
    if (parse_args(argc, argv, &o) != 0)
        return 2;
    if (o.help) {
        usage(stdout);
        return 0;
    }
    char key[512];
    if (read_key(&o, key, sizeof key) != 0)
        return 2;
    struct sigaction sa = {.sa_handler = on_signal}; /* no SA_RESTART: a blocked recv or poll returns */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    mosquitto_lib_init();
    struct sim s = {.interval_s = o.interval};
    struct people pp = {0};
    int rc = setup(&s, &pp, &o, key) == 0 ? run(&s, &pp, &o) : stop_flag ? 0 : 1;
    teardown(&s, &pp);
    mosquitto_lib_cleanup();
    return rc;
}
